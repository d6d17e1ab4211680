//! What recording one request's metrics costs (`metrics.enabled=true`):
//! the per-request work of `server::api_stats` as the connection and
//! dispatch code do it for a produce request — read (size histogram,
//! in-flight), the handler's poll timing (two clock reads per poll, three
//! polls: start, after the append, after the fsync), handled (version
//! count, queue / whole / local / wait histograms, response size), the
//! answer's error codes walked, sent (send histogram), left — against the
//! same with recording off. bench/metrics-cost.sh divides it by the
//! broker's CPU per produce request measured in the same run.

use std::hint::black_box;
use std::time::Instant;

use corelog::server::api_stats::{ApiStats, Handled};
use kafka_protocol::messages::produce_response::{
    PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{bench, Opts};

const PRODUCE: i16 = 0;
const POLLS: usize = 3;

fn one_request(api: &ApiStats, answer: &ProduceResponse, n: u64) {
    api.started(PRODUCE, black_box(1_200));
    if !api.enabled() {
        // dispatch::handle skips the poll timing when recording is off.
        black_box(n);
        api.handled(PRODUCE, Handled::default());
        api.errors_in(PRODUCE, answer);
        api.sent(PRODUCE, black_box(n % 30));
        api.left(PRODUCE);
        return;
    }
    let mut local = std::time::Duration::ZERO;
    let mut started = None;
    let mut ended = Instant::now();
    for _ in 0..POLLS {
        let polled = Instant::now();
        started.get_or_insert(polled);
        black_box(n);
        ended = Instant::now();
        local += ended.saturating_duration_since(polled);
    }
    let started = started.unwrap_or(ended);
    api.handled(
        PRODUCE,
        Handled {
            version: 9,
            queue_us: black_box(n % 50),
            total_us: ended.saturating_duration_since(started).as_micros() as u64
                + black_box(n % 3_000),
            local_us: local.as_micros() as u64 + black_box(n % 40),
            response_bytes: Some(black_box(70)),
        },
    );
    api.errors_in(PRODUCE, answer);
    api.sent(PRODUCE, black_box(n % 30));
    api.left(PRODUCE);
}

pub fn recording_case(o: &Opts, rounds: usize) {
    let answer = ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
        .with_name(StrBytes::from_static_str("bench").into())
        .with_partition_responses(vec![
            PartitionProduceResponse::default().with_index(0),
            PartitionProduceResponse::default().with_index(1),
        ])]);
    for enabled in [true, false] {
        let api = ApiStats::default();
        api.set_enabled(enabled);
        let mut n = 0u64;
        let label = if enabled { "on" } else { "off" };
        bench(
            &format!("metrics recording per produce request, {label}"),
            0,
            o.scale(2_000_000),
            rounds,
            || {
                n = n.wrapping_add(7_919);
                one_request(&api, &answer, n);
            },
        );
    }
}
