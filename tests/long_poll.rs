//! Long-poll: a Fetch waiting on an empty partition (max_wait 10 s) is
//! answered as soon as a message is produced 1 s later, on either shard; and
//! a Fetch that finds nothing returns after its max_wait, not never.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::raw::{code, decode_records, fetch_request, now_ms, simple_batch, Conn};
use common::{parse_shard_stats, Broker, BrokerOptions};
use kafka_protocol::messages::ApiKey;

const TOPIC: &str = "long-poll";
const PARTITIONS: i32 = 2;

#[test]
fn waiting_fetch_wakes_on_produce() {
    // Two shards and two partitions, so one of them is usually owned by the
    // shard that did not accept the fetch's connection.
    let broker = Broker::start_with(BrokerOptions::default().shards(2));
    broker.create_topic(TOPIC, PARTITIONS, &[]);
    let mut probe = Conn::connect(broker.addr());
    let versions = probe.api_versions();
    let fetch_version = versions.pick(ApiKey::Fetch, 12).min(12);
    let produce_version = versions.pick(ApiKey::Produce, 9);

    for partition in 0..PARTITIONS {
        let addr = broker.addr();
        let waiter = thread::spawn(move || {
            let mut conn = Conn::connect(addr);
            conn.set_timeout(Duration::from_secs(20));
            let started = Instant::now();
            let response = conn.fetch(fetch_version, TOPIC, partition, 0, 10_000);
            (started.elapsed(), response)
        });
        thread::sleep(Duration::from_secs(1));
        let mut producer = Conn::connect(broker.addr());
        let (error, offset) = producer.produce(
            produce_version,
            TOPIC,
            partition,
            simple_batch("wake", 1, 100, now_ms()),
        );
        assert_eq!((error, offset), (code::NONE, 0), "produce to {partition}");

        let (elapsed, response) = waiter.join().expect("fetch thread");
        let data = &response.responses[0].partitions[0];
        assert_eq!(
            data.error_code,
            code::NONE,
            "partition {partition}: fetch error"
        );
        let records = decode_records(data.records.clone().unwrap_or_default());
        assert_eq!(
            records.len(),
            1,
            "partition {partition}: records in the woken fetch"
        );
        assert_eq!(
            records[0].value.as_deref().map(|v| &v[..5]),
            Some(&b"wake-"[..])
        );
        assert!(
            elapsed >= Duration::from_millis(900),
            "partition {partition}: fetch returned after {elapsed:?}, before anything was produced"
        );
        assert!(
            elapsed < Duration::from_secs(5),
            "partition {partition}: fetch took {elapsed:?}; it should wake on the produce"
        );
    }
}

#[test]
fn fetch_on_empty_partition_returns_after_max_wait() {
    let broker = Broker::start();
    broker.create_topic("long-poll-empty", 1, &[]);
    let mut conn = Conn::connect(broker.addr());
    let fetch_version = conn.api_versions().pick(ApiKey::Fetch, 12).min(12);
    let started = Instant::now();
    let response = conn.fetch(fetch_version, "long-poll-empty", 0, 0, 500);
    let elapsed = started.elapsed();
    let data = &response.responses[0].partitions[0];
    assert_eq!(data.error_code, code::NONE);
    assert_eq!(data.high_watermark, 0);
    assert!(
        decode_records(data.records.clone().unwrap_or_default()).is_empty(),
        "records from an empty partition"
    );
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(3),
        "fetch with max_wait 500 ms returned after {elapsed:?}"
    );
}

/// A long poll over partitions of both shards: the owner that wakes reads
/// its partitions in the same trip (`WaitThenRead`), so the response holds
/// the woken partition's record and the others answer without error and
/// with their high watermarks; a wait that runs out answers every
/// partition's current high watermark.
#[test]
fn a_long_poll_over_both_shards_wakes_with_the_woken_partitions_records() {
    const TOPIC: &str = "long-poll-both";
    const PARTITIONS: i32 = 4;
    let mut broker = Broker::start_with(BrokerOptions::default().shards(2));
    broker.create_topic(TOPIC, PARTITIONS, &[]);
    let mut probe = Conn::connect(broker.addr());
    let versions = probe.api_versions();
    let fetch_version = versions.pick(ApiKey::Fetch, 12).min(12);
    let produce_version = versions.pick(ApiKey::Produce, 9);
    let request = |ends: &[i64], max_wait_ms: i32| {
        let mut request = fetch_request(TOPIC, 0, ends[0], max_wait_ms);
        let topic = &mut request.topics[0];
        let template = topic.partitions[0].clone();
        topic.partitions = (0..PARTITIONS)
            .map(|p| {
                template
                    .clone()
                    .with_partition(p)
                    .with_fetch_offset(ends[p as usize])
            })
            .collect();
        request
    };
    let mut ends = vec![0i64; PARTITIONS as usize];
    for round in 0..2 * PARTITIONS {
        let target = round % PARTITIONS;
        let addr = broker.addr();
        let fetch = request(&ends, 10_000);
        let waiter = thread::spawn(move || {
            let mut conn = Conn::connect(addr);
            conn.set_timeout(Duration::from_secs(20));
            let started = Instant::now();
            let response = conn.call(fetch_version, &fetch);
            (started.elapsed(), response)
        });
        thread::sleep(Duration::from_millis(500));
        let mut producer = Conn::connect(broker.addr());
        let batch = simple_batch(&format!("wake{round}"), 1, 100, now_ms());
        let (error, offset) = producer.produce(produce_version, TOPIC, target, batch);
        assert_eq!((error, offset), (code::NONE, ends[target as usize]));
        ends[target as usize] += 1;

        let (elapsed, response) = waiter.join().expect("fetch thread");
        assert!(
            elapsed < Duration::from_secs(5),
            "round {round}: the fetch took {elapsed:?}; it should wake on the produce"
        );
        let answered = &response.responses[0].partitions;
        assert_eq!(answered.len(), PARTITIONS as usize, "round {round}");
        for data in answered {
            let p = data.partition_index;
            assert_eq!(data.error_code, code::NONE, "round {round}, partition {p}");
            let records = decode_records(data.records.clone().unwrap_or_default());
            if p == target {
                assert_eq!(
                    records.len(),
                    1,
                    "round {round}: the woken partition's record"
                );
                assert_eq!(records[0].offset, ends[p as usize] - 1);
                assert!(records[0]
                    .value
                    .as_deref()
                    .is_some_and(|v| v.starts_with(format!("wake{round}-").as_bytes())));
                assert_eq!(data.high_watermark, ends[p as usize]);
            } else {
                assert!(records.is_empty(), "round {round}: records from {p}");
                // Answered from before the wait or by its owner's read:
                // never past the log end, never behind the fetch offset.
                assert_eq!(data.high_watermark, ends[p as usize], "round {round}, {p}");
            }
        }
    }
    let started = Instant::now();
    let response = probe.call(fetch_version, &request(&ends, 300));
    assert!(started.elapsed() >= Duration::from_millis(250));
    for data in &response.responses[0].partitions {
        assert_eq!(data.error_code, code::NONE);
        assert_eq!(data.high_watermark, ends[data.partition_index as usize]);
        assert!(decode_records(data.records.clone().unwrap_or_default()).is_empty());
    }
    // The shard stats count every partition read, the long poll's too:
    // each woken round read its 4 partitions before the wait and again when
    // woken, and the last fetch a third time after its wait ran out.
    let (status, output) = broker.terminate();
    assert!(status.success(), "broker exit status {status}");
    let reads: u64 = parse_shard_stats(&output)
        .iter()
        .map(|s| s.fetch_local + s.fetch_forwarded)
        .sum();
    let partitions = PARTITIONS as u64;
    let expected = 2 * partitions * 2 * partitions + 3 * partitions;
    assert!(
        reads >= expected,
        "{reads} partition reads counted, at least {expected} made:\n{output}"
    );
}
