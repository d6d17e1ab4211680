//! The per-API families of a scrape: every shard's `ApiStats` figures
//! added up per API.

use std::collections::BTreeMap;

use crate::metrics::families as f;
use crate::metrics::{Exposition, Family, HistogramSnapshot};
use crate::server::api_stats::ApiFigures;
use crate::server::dispatch::ApiName;

/// One API's figures over the node's shards.
#[derive(Default)]
struct Merged {
    /// Requests by version (None: unknown).
    versions: BTreeMap<Option<i16>, u64>,
    errors: BTreeMap<i16, u64>,
    in_flight: u64,
    duration: HistogramSnapshot,
    queue: HistogramSnapshot,
    local: HistogramSnapshot,
    wait: HistogramSnapshot,
    send: HistogramSnapshot,
    request_bytes: Option<HistogramSnapshot>,
    response_bytes: Option<HistogramSnapshot>,
}

fn merge_into(into: &mut Option<HistogramSnapshot>, h: &HistogramSnapshot) {
    match into {
        Some(merged) => merged.merge(h),
        None => *into = Some(*h),
    }
}

/// A histogram family and how to read it from an API's figures.
type ApiHistogram = (&'static Family, fn(&Merged) -> Option<&HistogramSnapshot>);

pub(super) fn render<'a>(e: &mut Exposition, apis: impl Iterator<Item = &'a ApiFigures>) {
    let mut merged: BTreeMap<i16, Merged> = BTreeMap::new();
    for api in apis {
        let m = merged.entry(api.key).or_default();
        for &(version, n) in &api.versions {
            *m.versions.entry(version).or_default() += n;
        }
        for &(code, n) in &api.errors {
            *m.errors.entry(code).or_default() += n;
        }
        m.in_flight += api.in_flight;
        m.duration.merge(&api.duration);
        m.queue.merge(&api.queue);
        m.local.merge(&api.local);
        m.wait.merge(&api.wait);
        m.send.merge(&api.send);
        merge_into(&mut m.request_bytes, &api.request_bytes);
        merge_into(&mut m.response_bytes, &api.response_bytes);
    }
    let names: BTreeMap<i16, String> = merged
        .keys()
        .map(|&k| (k, ApiName(k).to_string()))
        .collect();
    let mut w = e.family(&f::API_REQUESTS);
    for (key, m) in &merged {
        for (version, n) in &m.versions {
            let version = version.map_or_else(|| "unknown".to_string(), |v| v.to_string());
            w.int(&[&names[key], &version], *n);
        }
    }
    let mut w = e.family(&f::API_ERRORS);
    for (key, m) in &merged {
        for (code, n) in &m.errors {
            w.int(&[&names[key], &code.to_string()], *n);
        }
    }
    let histograms: [ApiHistogram; 7] = [
        (&f::API_DURATION, |m| Some(&m.duration)),
        (&f::API_QUEUE, |m| Some(&m.queue)),
        (&f::API_LOCAL, |m| Some(&m.local)),
        (&f::API_WAIT, |m| Some(&m.wait)),
        (&f::API_SEND, |m| Some(&m.send)),
        (&f::API_REQUEST_SIZE, |m| m.request_bytes.as_ref()),
        (&f::API_RESPONSE_SIZE, |m| m.response_bytes.as_ref()),
    ];
    for (family, histogram) in histograms {
        let mut w = e.family(family);
        for (key, m) in &merged {
            if let Some(h) = histogram(m) {
                w.histogram(&[&names[key]], h);
            }
        }
    }
    let mut w = e.family(&f::API_IN_FLIGHT);
    for (key, m) in &merged {
        w.int(&[&names[key]], m.in_flight);
    }
}
