//! The shard's read caches seen from a client: a caught-up consumer's
//! fetches are served from the partition's tail cache, a consumer catching
//! up reads the disk in read-ahead steps, and either way a fetch returns
//! exactly what was produced. With the caches off (`shard_memory_bytes = 0`,
//! or no read-ahead) the same fetches go to disk. `shard-stats` at shutdown
//! counts reads served from memory (`cache_hits`) and from disk
//! (`cache_misses`).

mod common;

use common::raw::{code, decode_records, now_ms, simple_batch, topic_name, Conn};
use common::{parse_shard_stats, Broker, BrokerOptions, ShardStats};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse};

const CACHES_OFF: &str = "shard_memory_bytes = 0\nfetch_read_ahead_bytes = 0\n";
const NO_READ_AHEAD: &str = "fetch_read_ahead_bytes = 0\n";

fn start(tuning: Option<&str>, topic: &str) -> Broker {
    let mut options = BrokerOptions::default();
    if let Some(t) = tuning {
        options = options.tuning(t);
    }
    let broker = Broker::start_with(options);
    broker.create_topic(topic, 1, &[]);
    broker
}

fn stop(mut broker: Broker) -> ShardStats {
    let (status, output) = broker.terminate();
    assert!(status.success(), "broker exit status {status}");
    let stats = parse_shard_stats(&output);
    assert_eq!(stats.len(), 1, "{output}");
    stats[0]
}

/// One fetch of `topic`-0 from `offset`, at most `max_bytes` from the
/// partition, not waiting: (high watermark, record values and offsets).
fn fetch(
    conn: &mut Conn,
    version: i16,
    topic: &str,
    offset: i64,
    max_bytes: i32,
) -> (i64, Vec<(i64, Vec<u8>)>) {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(64 << 20)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(max_bytes)])]);
    let response: FetchResponse = conn.call(version, &request);
    let data = &response.responses[0].partitions[0];
    assert_eq!(data.error_code, code::NONE, "fetch {topic}@{offset}");
    let records = decode_records(data.records.clone().unwrap_or_default())
        .into_iter()
        .map(|r| (r.offset, r.value.map(|v| v.to_vec()).unwrap_or_default()))
        .collect();
    (data.high_watermark, records)
}

/// A consumer that keeps up: each produce is followed by a fetch of just
/// that batch, then a fetch at the log end that finds nothing.
fn caught_up_reader(tuning: Option<&str>) -> ShardStats {
    const ROUNDS: usize = 50;
    const PER_BATCH: usize = 5;
    let topic = "read-cache-tail";
    let broker = start(tuning, topic);
    let mut conn = Conn::connect(broker.addr());
    let versions = conn.api_versions();
    let (fetch_v, produce_v) = (
        versions.pick(ApiKey::Fetch, 12).min(12),
        versions.pick(ApiKey::Produce, 9),
    );
    let mut next = 0i64;
    assert!(fetch(&mut conn, fetch_v, topic, next, 1 << 20).1.is_empty());
    for round in 0..ROUNDS {
        let prefix = format!("r{round}");
        let batch = simple_batch(&prefix, PER_BATCH, 200, now_ms());
        let (error, base) = conn.produce(produce_v, topic, 0, batch.clone());
        assert_eq!((error, base), (code::NONE, next));
        let (hw, records) = fetch(&mut conn, fetch_v, topic, next, 1 << 20);
        assert_eq!(hw, next + PER_BATCH as i64);
        let expected: Vec<(i64, Vec<u8>)> = decode_records(batch)
            .into_iter()
            .enumerate()
            .map(|(i, r)| (next + i as i64, r.value.unwrap().to_vec()))
            .collect();
        assert_eq!(records, expected, "round {round}");
        next = hw;
        assert!(fetch(&mut conn, fetch_v, topic, next, 1 << 20).1.is_empty());
    }
    drop(conn);
    stop(broker)
}

#[test]
fn caught_up_consumer_is_served_from_the_tail_cache() {
    let cached = caught_up_reader(None);
    assert!(cached.cache_hits >= 50, "{cached:?}");
    assert_eq!(cached.cache_misses, 0, "{cached:?}");
    let uncached = caught_up_reader(Some(CACHES_OFF));
    assert_eq!(uncached.cache_hits, 0, "{uncached:?}");
    assert!(uncached.cache_misses >= 50, "{uncached:?}");
}

/// Writes about 4 MB of history, then reads it from the start in fetches
/// of at most 64 KiB, checking every record.
fn catch_up_reader(tuning: Option<&str>) -> ShardStats {
    const BATCHES: usize = 400;
    const PER_BATCH: usize = 10;
    let topic = "read-cache-catch-up";
    let broker = start(tuning, topic);
    let mut conn = Conn::connect(broker.addr());
    let versions = conn.api_versions();
    let (fetch_v, produce_v) = (
        versions.pick(ApiKey::Fetch, 12).min(12),
        versions.pick(ApiKey::Produce, 9),
    );
    let mut expected = Vec::new();
    for b in 0..BATCHES {
        let batch = simple_batch(&format!("b{b}"), PER_BATCH, 1000, now_ms());
        let (error, base) = conn.produce(produce_v, topic, 0, batch.clone());
        assert_eq!(error, code::NONE);
        for (i, r) in decode_records(batch).into_iter().enumerate() {
            expected.push((base + i as i64, r.value.unwrap().to_vec()));
        }
    }
    let mut got = Vec::new();
    let mut next = 0;
    for _ in 0..10_000 {
        let (hw, records) = fetch(&mut conn, fetch_v, topic, next, 64 * 1024);
        if next >= hw {
            break;
        }
        assert!(!records.is_empty(), "fetch at {next} below {hw} is empty");
        let from = next;
        for r in records.into_iter().filter(|r| r.0 >= from) {
            next = r.0 + 1;
            got.push(r);
        }
    }
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "catch-up read returns what was produced");
    drop(conn);
    stop(broker)
}

#[test]
fn catch_up_reads_are_served_from_read_ahead() {
    let ahead = catch_up_reader(None);
    // About 64 fetches of 64 KiB; with 4 MiB of read-ahead most come from
    // memory.
    assert!(
        ahead.cache_hits > 4 * ahead.cache_misses,
        "read-ahead: {ahead:?}"
    );
    let none = catch_up_reader(Some(NO_READ_AHEAD));
    assert_eq!(none.cache_hits, 0, "no read-ahead: {none:?}");
    assert!(none.cache_misses > 50, "no read-ahead: {none:?}");
}
