//! librdkafka produces 100,000 keyed messages with headers and timestamps to
//! an 8-partition topic on a 2-shard broker; a consumer reads every one back
//! in order per partition, byte-exact. The shard statistics printed at
//! SIGTERM show both shards own partitions and some produce crossed shards.
//! A transactional producer is refused at once, with a message that says
//! why (until transactions land).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{
    consume, flush, logged_producer, parse_shard_stats, send_record, Broker, BrokerOptions,
    Consumed,
};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer};

const MESSAGES: usize = 100_000;
const PARTITIONS: i32 = 8;
const TOPIC: &str = "produce-consume";

/// What message `i` is made of; deterministic so the reader can rebuild it.
struct Expected {
    key: Vec<u8>,
    value: Vec<u8>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    timestamp: i64,
}

fn expected(i: usize, base_timestamp: i64) -> Expected {
    // Values of varying length with every byte value, not just text.
    let len = 20 + (i * 7919) % 180;
    let mut value = format!("value-{i}-").into_bytes();
    value.extend((0..len).map(|j| ((i * 31 + j * 17) % 256) as u8));
    Expected {
        key: format!("key-{i}").into_bytes(),
        value,
        headers: vec![
            ("seq".to_string(), Some(i.to_string().into_bytes())),
            ("bin".to_string(), Some(vec![(i % 256) as u8, 0, 255])),
            ("empty".to_string(), Some(Vec::new())),
            ("null".to_string(), None),
        ],
        timestamp: base_timestamp + i as i64,
    }
}

fn headers_of(e: &Expected) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new();
    for (key, value) in &e.headers {
        headers = headers.insert(Header {
            key: key.as_str(),
            value: value.as_deref(),
        });
    }
    headers
}

#[test]
fn produce_consume_100k_two_shards() {
    let mut broker = Broker::start_with(BrokerOptions::default().shards(2));
    broker.create_topic(TOPIC, PARTITIONS, &[]);

    // An hour ago, so no timestamp is mistaken for the append time.
    let base_timestamp = common::raw::now_ms() - 3_600_000;
    let producer = logged_producer(&broker.producer_config());
    for i in 0..MESSAGES {
        let e = expected(i, base_timestamp);
        let record = BaseRecord::with_opaque_to(TOPIC, i)
            .key(&e.key)
            .payload(&e.value)
            .headers(headers_of(&e))
            .timestamp(e.timestamp);
        send_record(&producer, record);
        if i % 1000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    flush(&producer, Duration::from_secs(90));

    // Where each message landed, from the delivery reports.
    let results = producer.context().results.lock().unwrap().clone();
    assert_eq!(results.len(), MESSAGES, "delivery reports");
    let mut per_partition: HashMap<i32, Vec<(usize, i64)>> = HashMap::new();
    for i in 0..MESSAGES {
        match &results[&i] {
            Ok((partition, offset)) => per_partition
                .entry(*partition)
                .or_default()
                .push((i, *offset)),
            Err(err) => panic!("message {i} not delivered: {err}"),
        }
    }
    assert!(
        per_partition.len() as i32 == PARTITIONS,
        "keys spread over {} partitions, expected {PARTITIONS}",
        per_partition.len()
    );

    let consumed = consume(
        &broker,
        TOPIC,
        PARTITIONS,
        MESSAGES,
        Duration::from_secs(90),
    );
    assert_eq!(consumed.len(), MESSAGES, "messages consumed");
    let mut consumed_per_partition: HashMap<i32, Vec<Consumed>> = HashMap::new();
    for message in consumed {
        consumed_per_partition
            .entry(message.partition)
            .or_default()
            .push(message);
    }
    for (partition, produced) in &per_partition {
        let got = consumed_per_partition.remove(partition).unwrap_or_default();
        assert_eq!(
            got.len(),
            produced.len(),
            "partition {partition}: message count"
        );
        for (k, ((i, offset), message)) in produced.iter().zip(&got).enumerate() {
            let e = expected(*i, base_timestamp);
            let context = format!("partition {partition}, position {k}, message {i}");
            assert_eq!(message.offset, *offset, "{context}: offset");
            assert_eq!(message.key.as_deref(), Some(&e.key[..]), "{context}: key");
            assert_eq!(
                message.value.as_deref(),
                Some(&e.value[..]),
                "{context}: value"
            );
            assert_eq!(message.headers, e.headers, "{context}: headers");
            assert_eq!(message.timestamp, Some(e.timestamp), "{context}: timestamp");
        }
    }
    assert!(
        consumed_per_partition.is_empty(),
        "messages from unexpected partitions"
    );

    let (status, output) = broker.terminate();
    assert!(status.success(), "broker exit status {status}");
    let stats = parse_shard_stats(&output);
    assert_eq!(stats.len(), 2, "one shard-stats line per shard:\n{output}");
    let mut shards: Vec<u64> = stats.iter().map(|s| s.shard).collect();
    shards.sort_unstable();
    assert_eq!(shards, vec![0, 1], "shard ids:\n{output}");
    for s in &stats {
        assert!(
            s.partitions > 0,
            "shard {} owns no partitions: {stats:?}",
            s.shard
        );
    }
    let partitions: u64 = stats.iter().map(|s| s.partitions).sum();
    assert!(
        partitions >= PARTITIONS as u64,
        "partitions owned: {stats:?}"
    );
    let forwarded: u64 = stats.iter().map(|s| s.produce_forwarded).sum();
    let local: u64 = stats.iter().map(|s| s.produce_local).sum();
    assert!(forwarded > 0, "no produce crossed shards: {stats:?}");
    assert!(local > 0, "no produce stayed on its shard: {stats:?}");
    // The consumer's fetches name every partition: its connection's shard
    // reads some itself and asks the other shard for the rest.
    let fetch_local: u64 = stats.iter().map(|s| s.fetch_local).sum();
    let fetch_forwarded: u64 = stats.iter().map(|s| s.fetch_forwarded).sum();
    assert!(
        fetch_local > 0 && fetch_forwarded > 0,
        "fetches over both shards' partitions read on both: {stats:?}"
    );
    load_figures_are_plausible(&stats);
}

/// The load figures in `shard-stats` after a produce-then-consume run on
/// two shards: every kind of work and wait shows, and the parts fit inside
/// their wholes.
fn load_figures_are_plausible(stats: &[common::ShardStats]) {
    let sum = |f: fn(&common::ShardStats) -> u64| stats.iter().map(f).sum::<u64>();
    assert!(sum(|s| s.requests_produce) > 0, "{stats:?}");
    assert!(sum(|s| s.requests_fetch) > 0, "{stats:?}");
    assert!(sum(|s| s.requests_other) > 0, "metadata etc.: {stats:?}");
    // Produce requests crossed shards, so calls were sent and served, each
    // once on each side.
    assert_eq!(sum(|s| s.mesh_sent), sum(|s| s.mesh_received), "{stats:?}");
    assert!(sum(|s| s.mesh_sent) >= sum(|s| s.produce_forwarded));
    // librdkafka's default acks=all: every produce request waited.
    assert_eq!(sum(|s| s.produce_waits), sum(|s| s.requests_produce));
    assert!(sum(|s| s.produce_wait_us) > 0, "{stats:?}");
    assert!(sum(|s| s.commit_us) > 0, "{stats:?}");
    // The consumer caught up and then long-polled at the end of the log.
    assert!(sum(|s| s.fetch_waits) > 0, "{stats:?}");
    assert!(sum(|s| s.fetch_wait_us) > 0, "{stats:?}");
    for s in stats {
        assert!(s.busy_us > 0 && s.cpu_us > 0, "{s:?}");
        assert!(s.busy_requests_us <= s.busy_us, "{s:?}");
        assert!(s.sched_probes > 0, "{s:?}");
        assert!(
            s.mesh_delay_us <= s.mesh_received.max(1) * 30_000_000,
            "mesh delay within the run: {s:?}"
        );
    }
}

#[test]
fn a_transactional_producer_fails_at_once_with_a_clear_error() {
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::BaseProducer;
    use std::time::Instant;

    let broker = Broker::start();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("transactional.id", "txn-1")
        .create()
        .expect("producer");
    let started = Instant::now();
    let outcome = producer.init_transactions(Duration::from_secs(30));
    let took = started.elapsed();
    let error = outcome.expect_err("transactions are refused").to_string();
    assert!(
        error.contains("does not serve Kafka transactions"),
        "the error says why: {error}"
    );
    // Refused on the first answer, not retried until the 30 s timeout.
    assert!(took < Duration::from_secs(15), "took {took:?}: {error}");
}
