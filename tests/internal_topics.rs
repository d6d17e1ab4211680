//! Internal topics refuse client writes and the changes that would break
//! them, as Kafka does, while the broker's own writes (the group
//! coordinator's commits) keep working; and what a `__consumer_offsets`
//! load cannot replay is counted and reported, not skipped silently.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::time::{Duration, Instant};

use common::raw::{code, now_ms, str_bytes, topic_name, Conn};
use common::{partition_dir, segment_logs, Broker, BrokerOptions};
use kafka_protocol::messages::alter_configs_request::{
    AlterConfigsResource, AlterableConfig as FullConfig,
};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource as IncrementalResource, AlterableConfig,
};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, ApiKey, CreatePartitionsRequest,
    CreatePartitionsResponse, DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, FindCoordinatorRequest, FindCoordinatorResponse, GroupId,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
};

const OFFSETS: &str = "__consumer_offsets";
const INVALID_CONFIG: i16 = 40;
const RESOURCE_TOPIC: i8 = 2;

/// A broker whose `__consumer_offsets` has one partition (every group
/// lands on partition 0).
fn offsets_broker() -> Broker {
    Broker::start_with(
        BrokerOptions::default().override_config("offsets.topic.num.partitions", "1"),
    )
}

/// Finds the coordinator (creating `__consumer_offsets`), retrying while
/// it loads.
fn coordinator_ready(conn: &mut Conn, group: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r: FindCoordinatorResponse = conn.call(
            3,
            &FindCoordinatorRequest::default().with_key(str_bytes(group)),
        );
        if r.error_code == code::NONE {
            return;
        }
        assert!(Instant::now() < deadline, "no coordinator: {r:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An admin commit (no member, generation -1) of one offset; returns its code.
fn commit(conn: &mut Conn, group: &str, topic: &str, offset: i64) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(str_bytes(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)])]);
    let r: OffsetCommitResponse = conn.call(8, &request);
    r.topics[0].partitions[0].error_code
}

fn committed(conn: &mut Conn, group: &str, topic: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(str_bytes(group)))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partition_indexes(vec![0])]));
        let r: OffsetFetchResponse = conn.call(7, &request);
        if r.error_code == code::NONE {
            return r.topics[0].partitions[0].committed_offset;
        }
        assert!(Instant::now() < deadline, "offset fetch: {r:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn clients_cannot_write_or_break_consumer_offsets() {
    let mut broker = offsets_broker();
    broker.create_topic("t", 1, &[]);
    let mut conn = Conn::connect(broker.addr());
    let versions = conn.api_versions();
    let produce = versions.pick(ApiKey::Produce, 9);
    let list = versions.pick(ApiKey::ListOffsets, 7);
    coordinator_ready(&mut conn, "g");
    assert_eq!(commit(&mut conn, "g", "t", 42), code::NONE);
    let (_, end) = conn.list_offset(list, OFFSETS, 0, -1);

    // A well-formed OffsetCommit record, as the coordinator writes them.
    let forged = corelog::group::records::batch(
        &[(
            corelog::group::records::offset_key("g", "t", 0),
            Some(corelog::group::records::offset_value(
                &corelog::group::records::OffsetValue {
                    offset: 999_999,
                    leader_epoch: -1,
                    metadata: String::new(),
                    commit_timestamp_ms: now_ms(),
                    expire_timestamp_ms: None,
                },
            )),
        )],
        now_ms(),
    );
    let (error, offset) = conn.produce(produce, OFFSETS, 0, forged);
    assert_eq!((error, offset), (code::INVALID_TOPIC_EXCEPTION, -1));
    assert_eq!(conn.list_offset(list, OFFSETS, 0, -1), (code::NONE, end));

    // Changes that would break the topic.
    let deleted: DeleteTopicsResponse = conn.call(
        4,
        &DeleteTopicsRequest::default()
            .with_topic_names(vec![topic_name(OFFSETS)])
            .with_timeout_ms(10_000),
    );
    assert_eq!(
        deleted.responses[0].error_code,
        code::INVALID_TOPIC_EXCEPTION
    );
    let grown: CreatePartitionsResponse = conn.call(
        1,
        &CreatePartitionsRequest::default()
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic_name(OFFSETS))
                .with_count(5)])
            .with_timeout_ms(10_000),
    );
    assert_eq!(grown.results[0].error_code, code::INVALID_TOPIC_EXCEPTION);
    let incremental = |op: i8, value: Option<&str>| {
        IncrementalAlterConfigsRequest::default().with_resources(vec![
            IncrementalResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(str_bytes(OFFSETS))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(str_bytes("cleanup.policy"))
                    .with_config_operation(op)
                    .with_value(value.map(str_bytes))]),
        ])
    };
    for (op, value) in [(0, Some("delete")), (0, Some("compact,delete")), (1, None)] {
        let r: IncrementalAlterConfigsResponse = conn.call(1, &incremental(op, value));
        assert_eq!(
            r.responses[0].error_code, INVALID_CONFIG,
            "op {op} {value:?}"
        );
    }
    let r: IncrementalAlterConfigsResponse = conn.call(1, &incremental(0, Some("compact")));
    assert_eq!(
        r.responses[0].error_code,
        code::NONE,
        "compact stays allowed"
    );
    // A whole-set AlterConfigs without cleanup.policy would reset it.
    let full: AlterConfigsResponse = conn.call(
        1,
        &AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(str_bytes(OFFSETS))
            .with_configs(vec![FullConfig::default()
                .with_name(str_bytes("retention.ms"))
                .with_value(Some(str_bytes("-1")))])]),
    );
    assert_eq!(full.responses[0].error_code, INVALID_CONFIG);
    let trimmed: DeleteRecordsResponse = conn.call(
        1,
        &DeleteRecordsRequest::default()
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(topic_name(OFFSETS))
                .with_partitions(vec![DeleteRecordsPartition::default()
                    .with_partition_index(0)
                    .with_offset(end)])])
            .with_timeout_ms(10_000),
    );
    assert_eq!(
        trimmed.topics[0].partitions[0].error_code,
        code::INVALID_TOPIC_EXCEPTION
    );
    let metadata = conn.metadata(versions.pick(ApiKey::Metadata, 12), &[OFFSETS]);
    assert_eq!(metadata.topics[0].error_code, code::NONE, "still there");
    assert_eq!(metadata.topics[0].partitions.len(), 1);

    // The coordinator's own writes go on, and nothing forged took effect.
    assert_eq!(commit(&mut conn, "g", "t", 43), code::NONE);
    broker.restart();
    let mut conn = Conn::connect(broker.addr());
    coordinator_ready(&mut conn, "g");
    assert_eq!(committed(&mut conn, "g", "t"), 43);
}

/// A v2 batch at `base_offset` holding `records` (key, value) with no
/// validation: what a damaged or hand-written log could contain.
fn raw_batch(base_offset: i64, records: &[(Option<&[u8]>, &[u8])]) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, v: i64) {
        let mut u = ((v << 1) ^ (v >> 63)) as u64;
        while u >= 0x80 {
            out.push((u as u8) | 0x80);
            u >>= 7;
        }
        out.push(u as u8);
    }
    let mut section = Vec::new();
    for (i, (key, value)) in records.iter().enumerate() {
        let mut body = vec![0u8];
        put(&mut body, 0);
        put(&mut body, i as i64);
        match key {
            Some(k) => {
                put(&mut body, k.len() as i64);
                body.extend_from_slice(k);
            }
            None => put(&mut body, -1),
        }
        put(&mut body, value.len() as i64);
        body.extend_from_slice(value);
        put(&mut body, 0);
        put(&mut section, body.len() as i64);
        section.extend_from_slice(&body);
    }
    let n = records.len() as i32;
    let mut b = vec![0u8; 61];
    b.extend_from_slice(&section);
    let len = (b.len() - 12) as i32;
    b[..8].copy_from_slice(&base_offset.to_be_bytes());
    b[8..12].copy_from_slice(&len.to_be_bytes());
    b[16] = 2;
    b[23..27].copy_from_slice(&(n - 1).to_be_bytes());
    b[27..35].copy_from_slice(&now_ms().to_be_bytes());
    b[35..43].copy_from_slice(&now_ms().to_be_bytes());
    b[43..51].copy_from_slice(&(-1i64).to_be_bytes());
    b[51..53].copy_from_slice(&(-1i16).to_be_bytes());
    b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    b[57..61].copy_from_slice(&n.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

#[test]
fn undecodable_offsets_records_are_counted_and_reported_at_load() {
    let mut broker = offsets_broker();
    broker.create_topic("t", 1, &[]);
    let mut conn = Conn::connect(broker.addr());
    let list = conn.api_versions().pick(ApiKey::ListOffsets, 7);
    coordinator_ready(&mut conn, "g");
    assert_eq!(commit(&mut conn, "g", "t", 42), code::NONE);
    let (_, end) = conn.list_offset(list, OFFSETS, 0, -1);
    drop(conn);
    let (status, _) = broker.terminate();
    assert!(status.success());

    // Garbage appended where the coordinator's next batch would go: a
    // keyless record and an OffsetCommit key cut short.
    let dir = partition_dir(&broker, OFFSETS, 0);
    let active = segment_logs(&dir).pop().expect("a segment");
    let short_key: &[u8] = &[0, 1, 0, 9, b'g'];
    let garbage = raw_batch(end, &[(None, &b"junk"[..]), (Some(short_key), &b"v"[..])]);
    OpenOptions::new()
        .append(true)
        .open(&active)
        .unwrap()
        .write_all(&garbage)
        .unwrap();

    broker.restart();
    let mut conn = Conn::connect(broker.addr());
    coordinator_ready(&mut conn, "g");
    assert_eq!(committed(&mut conn, "g", "t"), 42, "the good commit loaded");
    let out = broker.stderr();
    let reports: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("could not be replayed"))
        .collect();
    assert_eq!(reports.len(), 1, "one line per load: {out}");
    assert!(
        reports[0].contains("2 records") && reports[0].contains(&format!("offset {end}")),
        "count and first offset: {}",
        reports[0]
    );
    // New commits land after the garbage and win.
    assert_eq!(commit(&mut conn, "g", "t", 50), code::NONE);
    broker.restart();
    let mut conn = Conn::connect(broker.addr());
    coordinator_ready(&mut conn, "g");
    assert_eq!(committed(&mut conn, "g", "t"), 50);
}
