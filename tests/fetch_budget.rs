//! A Fetch over many partitions spends its response budget (max_bytes) in
//! request order, as Kafka does: partitions with less data than their share
//! pass what they leave to the partitions after them in the same response,
//! the response never holds more than the budget (except a first batch that
//! is larger on its own, KIP-74), and every partition answers its offsets
//! even when the budget left it no records. Two shards, so the partitions
//! of one fetch live on both.

mod common;

use common::raw::{code, decode_records, now_ms, simple_batch, topic_name, Conn};
use common::{parse_shard_stats, Broker, BrokerOptions};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse};

const PARTITIONS: i32 = 16;

/// One sessionless fetch of every partition from offset 0, each with
/// `partition_max` bytes, within `max_bytes`.
fn fetch_every_partition(
    conn: &mut Conn,
    version: i16,
    topic: &str,
    max_bytes: i32,
    partition_max: i32,
) -> FetchResponse {
    let partitions = (0..PARTITIONS)
        .map(|p| {
            FetchPartition::default()
                .with_partition(p)
                .with_fetch_offset(0)
                .with_partition_max_bytes(partition_max)
        })
        .collect();
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(partitions)]);
    conn.call(version, &request)
}

/// (partition, records, high watermark, error) for each answered partition.
fn answered(response: &FetchResponse) -> Vec<(i32, usize, usize, i64, i16)> {
    response.responses[0]
        .partitions
        .iter()
        .map(|p| {
            let bytes = p.records.clone().unwrap_or_default();
            let len = bytes.len();
            let records = decode_records(bytes).len();
            (
                p.partition_index,
                records,
                len,
                p.high_watermark,
                p.error_code,
            )
        })
        .collect()
}

fn produce_everywhere(broker: &Broker, topic: &str, records: usize, value_bytes: usize) {
    broker.create_topic(topic, PARTITIONS, &[]);
    let mut conn = Conn::connect(broker.addr());
    let produce_version = conn.api_versions().pick(ApiKey::Produce, 9);
    for p in 0..PARTITIONS {
        let batch = simple_batch(&format!("p{p}"), records, value_bytes, now_ms());
        let (error, offset) = conn.produce(produce_version, topic, p, batch);
        assert_eq!((error, offset), (code::NONE, 0), "produce to partition {p}");
    }
}

#[test]
fn small_partitions_leave_their_share_to_the_ones_after_them() {
    let broker = Broker::start_with(BrokerOptions::default().shards(2));
    let topic = "budget-small";
    // 16 partitions of ~10 KB each; the budget (1 MiB) covers only the
    // first partition's share (1 MiB) up front, but everything fits.
    produce_everywhere(&broker, topic, 10, 1000);
    let mut conn = Conn::connect(broker.addr());
    let version = conn.api_versions().pick(ApiKey::Fetch, 12).min(12);
    let response = fetch_every_partition(&mut conn, version, topic, 1 << 20, 1 << 20);
    let got = answered(&response);
    assert_eq!(got.len(), PARTITIONS as usize, "every partition answers");
    for (p, records, _, hw, error) in got {
        assert_eq!(error, code::NONE, "partition {p}");
        assert_eq!(hw, 10, "partition {p}: high watermark");
        assert_eq!(
            records, 10,
            "partition {p}: all its records in the one response (what the partitions \
             before it left unspent)"
        );
    }
}

#[test]
fn the_response_stays_within_its_budget_and_the_rest_answer_offsets() {
    let broker = Broker::start_with(BrokerOptions::default().shards(2));
    let topic = "budget-full";
    // 16 partitions of ~100 KB (one batch each); a budget of 250 KB holds
    // two whole batches.
    produce_everywhere(&broker, topic, 100, 1000);
    let mut conn = Conn::connect(broker.addr());
    let version = conn.api_versions().pick(ApiKey::Fetch, 12).min(12);
    let budget = 250_000;
    let response = fetch_every_partition(&mut conn, version, topic, budget, 1 << 20);
    let got = answered(&response);
    assert_eq!(got.len(), PARTITIONS as usize, "every partition answers");
    let total: usize = got.iter().map(|g| g.2).sum();
    assert!(
        total <= budget as usize,
        "{total} record bytes in a response of at most {budget}"
    );
    let with_records: Vec<i32> = got.iter().filter(|g| g.1 > 0).map(|g| g.0).collect();
    assert_eq!(
        with_records,
        vec![0, 1],
        "the budget goes to partitions in request order"
    );
    for (p, _, _, hw, error) in &got {
        assert_eq!(*error, code::NONE, "partition {p}");
        assert_eq!(*hw, 100, "partition {p}: offsets even without records");
    }

    // A budget smaller than one batch still returns the first batch whole
    // (KIP-74), and only it.
    let response = fetch_every_partition(&mut conn, version, topic, 1000, 1 << 20);
    let got = answered(&response);
    let with_records: Vec<(i32, usize)> =
        got.iter().filter(|g| g.1 > 0).map(|g| (g.0, g.1)).collect();
    assert_eq!(with_records, vec![(0, 100)], "one whole batch, the first");
}

#[test]
fn the_brokers_fetch_max_bytes_caps_a_consumers_response() {
    // Kafka's broker-side `fetch.max.bytes` (KIP-541): 16 partitions of
    // ~100 KB, a consumer asking for 16 MiB gets at most 250,000 bytes.
    let broker = Broker::start_with(
        BrokerOptions::default()
            .shards(2)
            .override_config("fetch.max.bytes", "250000"),
    );
    let topic = "budget-broker-cap";
    produce_everywhere(&broker, topic, 100, 1000);
    let mut conn = Conn::connect(broker.addr());
    let version = conn.api_versions().pick(ApiKey::Fetch, 12).min(12);
    let response = fetch_every_partition(&mut conn, version, topic, 16 << 20, 1 << 20);
    let got = answered(&response);
    let total: usize = got.iter().map(|g| g.2).sum();
    assert!(total > 0, "some records come back");
    assert!(
        total <= 250_000,
        "{total} record bytes; the broker caps a response at 250,000"
    );
    let with_records = got.iter().filter(|g| g.1 > 0).count();
    assert_eq!(with_records, 2, "two whole batches of ~100 KB fit");
}

#[test]
fn batches_that_cannot_fit_what_is_left_are_not_read() {
    // Caches off: every read goes to disk and `shard-stats` counts it. 16
    // partitions of one ~100 KB batch; a budget of 250 KB holds two. What
    // the two leave (about 50 KB) fits no other batch: the partitions after
    // them must not be read (each read would come back empty, round after
    // round: 4 consumers of 512 partitions read 9x what they were sent).
    let mut broker = Broker::start_with(
        BrokerOptions::default()
            .shards(2)
            .tuning("shard_memory_bytes = 0\nfetch_read_ahead_bytes = 0\n"),
    );
    let topic = "budget-no-waste";
    produce_everywhere(&broker, topic, 100, 1000);
    let mut conn = Conn::connect(broker.addr());
    let version = conn.api_versions().pick(ApiKey::Fetch, 12).min(12);
    let mut sent = 0;
    for _ in 0..3 {
        let response = fetch_every_partition(&mut conn, version, topic, 250_000, 1 << 20);
        let got = answered(&response);
        let with_records: Vec<i32> = got.iter().filter(|g| g.1 > 0).map(|g| g.0).collect();
        assert_eq!(with_records, vec![0, 1], "two whole batches fit");
        sent += got.iter().map(|g| g.2).sum::<usize>();
    }
    drop(conn);
    let (status, output) = broker.terminate();
    assert!(status.success(), "broker exit status {status}");
    let read: u64 = parse_shard_stats(&output)
        .iter()
        .map(|s| s.disk_read_bytes)
        .sum();
    // What was sent, plus the start-up probe (a block per shard) and
    // reads rounded to whole blocks.
    assert!(
        read <= sent as u64 + 64 * 1024,
        "{read} bytes read from disk to send {sent}"
    );
}

#[test]
fn a_consumers_response_holds_at_most_about_32k_records() {
    // Small records: 16 partitions of one 4,000-record batch (64,000 in
    // all, about 1 MB). A response bounded by bytes alone carries them all,
    // which fills librdkafka's consumer queue past `queued.min.messages`
    // (100,000 records) within two fetches and stops it for a second; the
    // broker sends about 32k records per response instead, whole batches in
    // request order.
    let broker = Broker::start_with(BrokerOptions::default().shards(2));
    let topic = "budget-records";
    produce_everywhere(&broker, topic, 4000, 10);
    let mut conn = Conn::connect(broker.addr());
    let version = conn.api_versions().pick(ApiKey::Fetch, 12).min(12);
    let response = fetch_every_partition(&mut conn, version, topic, 16 << 20, 1 << 20);
    let got = answered(&response);
    let records: usize = got.iter().map(|g| g.1).sum();
    let with_records: Vec<i32> = got.iter().filter(|g| g.1 > 0).map(|g| g.0).collect();
    assert_eq!(
        with_records,
        (0..8).collect::<Vec<i32>>(),
        "the first 8 batches of 4,000 records ({records} records sent)"
    );
    assert!(records <= 32_768, "{records} records in one response");
    for (p, _, _, hw, error) in &got {
        assert_eq!(*error, code::NONE, "partition {p}");
        assert_eq!(*hw, 4000, "partition {p}: offsets even without records");
    }
}
