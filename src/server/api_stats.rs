//! Per-API request figures of one shard: requests, error codes in the
//! answers and a latency histogram of whole-request time, recorded by
//! `dispatch` with plain cells (a shard's own, never shared) and read by
//! the metrics scrape (`server::http`).

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::metrics::{HistogramSnapshot, LatencyHistogram};

/// API keys tracked: Kafka's keys are below this (the highest served is
/// in the seventies); a request of a higher key is not recorded.
pub const API_KEYS: usize = 128;

/// One shard's per-API figures.
pub struct ApiStats {
    /// By API key: requests handled and their latencies (the histogram's
    /// count is the request count).
    latency: Box<[LatencyHistogram]>,
    /// Error codes in answers, by (API key, error code), NONE excluded.
    /// Bounded by the codes the handlers answer with (about 120 per API),
    /// never by what clients send.
    errors: RefCell<BTreeMap<(i16, i16), u64>>,
}

impl Default for ApiStats {
    fn default() -> Self {
        ApiStats {
            latency: (0..API_KEYS).map(|_| LatencyHistogram::default()).collect(),
            errors: RefCell::default(),
        }
    }
}

/// One API's figures on one shard, as the scrape carries them.
#[derive(Clone, Debug)]
pub struct ApiFigures {
    pub key: i16,
    pub latency: HistogramSnapshot,
    /// (error code, answers that carried it).
    pub errors: Vec<(i16, u64)>,
}

impl ApiStats {
    /// One request of API `key` took `us` microseconds.
    pub fn record(&self, key: i16, us: u64) {
        if let Some(h) = usize::try_from(key).ok().and_then(|k| self.latency.get(k)) {
            h.record(us);
        }
    }

    /// The answer to a request of API `key` carried `codes` (NONE is
    /// skipped).
    pub fn errors(&self, key: i16, codes: impl IntoIterator<Item = i16>) {
        let mut errors = self.errors.borrow_mut();
        for code in codes.into_iter().filter(|&c| c != 0) {
            *errors.entry((key, code)).or_default() += 1;
        }
    }

    /// The APIs with at least one request, by key.
    pub fn figures(&self) -> Vec<ApiFigures> {
        let errors = self.errors.borrow();
        self.latency
            .iter()
            .enumerate()
            .filter(|(_, h)| h.count() > 0)
            .map(|(key, h)| {
                let key = key as i16;
                ApiFigures {
                    key,
                    latency: h.snapshot(),
                    errors: errors
                        .range((key, i16::MIN)..=(key, i16::MAX))
                        .map(|(&(_, code), &n)| (code, n))
                        .collect(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_errors_are_kept_per_api() {
        let stats = ApiStats::default();
        stats.record(0, 500);
        stats.record(0, 700);
        stats.record(3, 10);
        stats.record(-1, 10);
        stats.record(API_KEYS as i16, 10);
        stats.errors(0, [0, 6, 6, 3]);
        stats.errors(3, [0]);
        let figures = stats.figures();
        assert_eq!(figures.len(), 2, "unknown keys are not recorded");
        assert_eq!(figures[0].key, 0);
        assert_eq!(figures[0].latency.count(), 2);
        assert_eq!(figures[0].errors, vec![(3, 1), (6, 2)]);
        assert_eq!(figures[1].key, 3);
        assert!(figures[1].errors.is_empty(), "NONE is not an error");
    }
}
