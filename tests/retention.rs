//! The log start offset moves: by retention (`retention.bytes` with small
//! `segment.bytes`: old segments disappear) and by DeleteRecords (anywhere,
//! durably); consumers from the beginning start at the new earliest offset.

mod common;

use std::time::{Duration, Instant};

use common::raw::{topic_name, Conn};
use common::{
    consume, flush, logged_producer, partition_dir, segment_logs, send_record, Broker,
    BrokerOptions,
};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::{ApiKey, DeleteRecordsRequest, DeleteRecordsResponse};
use rdkafka::producer::BaseRecord;

fn produce(broker: &Broker, topic: &str, count: usize, value_bytes: usize) {
    let mut config = broker.producer_config();
    // Small batches, so small segments hold several.
    config.set("batch.num.messages", "5");
    let producer = logged_producer(&config);
    for i in 0..count {
        let value = format!("{i:08}-{}", "r".repeat(value_bytes));
        send_record(
            &producer,
            BaseRecord::<(), String, usize>::with_opaque_to(topic, i).payload(&value),
        );
    }
    flush(&producer, Duration::from_secs(60));
}

fn first_number(value: &[u8]) -> usize {
    std::str::from_utf8(&value[..8]).unwrap().parse().unwrap()
}

#[test]
fn retention_bytes_deletes_old_segments_and_consumers_start_at_the_new_earliest() {
    let broker = Broker::start_with(
        BrokerOptions::default().override_config("log.retention.check.interval.ms", "200"),
    );
    let topic = "retained";
    let (segment_bytes, retention_bytes) = (4096u64, 16_384u64);
    broker.create_topic(
        topic,
        1,
        &[("segment.bytes", "4096"), ("retention.bytes", "16384")],
    );
    const N: usize = 2_000;
    produce(&broker, topic, N, 200);

    let mut conn = Conn::connect(broker.addr());
    let list_version = conn.api_versions().pick(ApiKey::ListOffsets, 5);
    let dir = partition_dir(&broker, topic, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let (earliest, bytes) = loop {
        let (code, earliest) = conn.list_offset(list_version, topic, 0, -2);
        assert_eq!(code, 0);
        let bytes: u64 = segment_logs(&dir)
            .iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum();
        if (earliest > 0 && bytes <= retention_bytes + 2 * segment_bytes)
            || Instant::now() > deadline
        {
            break (earliest, bytes);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(earliest > 0, "retention moved the earliest offset");
    assert!(
        bytes <= retention_bytes + 2 * segment_bytes,
        "old segments were deleted: {bytes} bytes left"
    );
    let (_, latest) = conn.list_offset(list_version, topic, 0, -1);
    assert_eq!(latest, N as i64);

    let expected = (latest - earliest) as usize;
    let consumed = consume(&broker, topic, 1, expected, Duration::from_secs(30));
    assert_eq!(consumed.len(), expected);
    assert_eq!(consumed[0].offset, earliest, "starts at the new earliest");
    for (i, m) in consumed.iter().enumerate() {
        let offset = earliest + i as i64;
        assert_eq!(m.offset, offset);
        assert_eq!(first_number(m.value.as_deref().unwrap()), offset as usize);
    }
}

fn delete_records(conn: &mut Conn, topic: &str, before: i64) -> (i16, i64) {
    let version = conn.api_versions().pick(ApiKey::DeleteRecords, 2);
    let request = DeleteRecordsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(0)
                .with_offset(before)])]);
    let response: DeleteRecordsResponse = conn.call(version, &request);
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.low_watermark)
}

#[test]
fn delete_records_moves_the_earliest_offset_mid_segment_durably() {
    let mut broker = Broker::start();
    let topic = "trimmed";
    broker.create_topic(topic, 1, &[("segment.bytes", "8192")]);
    const N: usize = 300;
    produce(&broker, topic, N, 100);
    let mut conn = Conn::connect(broker.addr());
    let list_version = conn.api_versions().pick(ApiKey::ListOffsets, 5);
    let fetch_version = conn.api_versions().pick(ApiKey::Fetch, 12).min(12);
    let segments = segment_logs(&partition_dir(&broker, topic, 0)).len();
    assert!(segments > 2);

    assert_eq!(
        delete_records(&mut conn, topic, N as i64 + 1).0,
        1,
        "OFFSET_OUT_OF_RANGE"
    );
    // 201 is inside some segment (and likely inside a batch).
    assert_eq!(delete_records(&mut conn, topic, 201), (0, 201));
    assert_eq!(conn.list_offset(list_version, topic, 0, -2), (0, 201));
    assert!(
        segment_logs(&partition_dir(&broker, topic, 0)).len() < segments,
        "segments wholly below the new start are deleted"
    );
    let response = conn.fetch(fetch_version, topic, 0, 200, 0);
    assert_eq!(response.responses[0].partitions[0].error_code, 1);
    let consumed = consume(&broker, topic, 1, N - 201, Duration::from_secs(30));
    assert_eq!(consumed.len(), N - 201);
    assert_eq!(consumed[0].offset, 201);
    // Below the start is a no-op answering the current start, as in Kafka.
    assert_eq!(delete_records(&mut conn, topic, 5), (0, 201));

    drop(conn);
    broker.graceful_restart();
    let mut conn = Conn::connect(broker.addr());
    assert_eq!(
        conn.list_offset(list_version, topic, 0, -2),
        (0, 201),
        "the log start offset survives a restart"
    );
    broker.kill9();
    broker.restart();
    let mut conn = Conn::connect(broker.addr());
    assert_eq!(
        conn.list_offset(list_version, topic, 0, -2),
        (0, 201),
        "and a crash"
    );
}
