//! Disk faults: segments damaged while the broker was down are found (at
//! start or by the background scrub), logged with file, position and
//! offset, and readers get KAFKA_STORAGE_ERROR instead of a crash or a
//! silent skip; a log that cannot be opened takes only its partition
//! offline; and on a real full filesystem (a small tmpfs) produce fails
//! cleanly, fetches go on, DeleteRecords and DeleteTopics still free space,
//! repeated failures are logged once per interval, and nothing
//! acknowledged is lost.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::raw::{code, now_ms, simple_batch, topic_name, Conn};
use common::{parse_segment, partition_dir, segment_logs, Broker, BrokerOptions, TmpfsMount};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::{
    ApiKey, DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

const SCRUB_WAIT: Duration = Duration::from_secs(30);

/// A broker whose scrub reads fast (tests) and that rolls small segments.
fn scrubbing_broker(rate: &str) -> Broker {
    Broker::start_with(
        BrokerOptions::default().override_config("log.scrub.io.max.bytes.per.second", rate),
    )
}

/// Produces `batches` batches of 4 records of 1000 bytes, each batch 10 ms
/// (of record time) after the previous; returns the acknowledged record
/// count.
fn fill(conn: &mut Conn, produce: i16, topic: &str, batches: usize) -> i64 {
    let start = now_ms() - 3_600_000;
    for b in 0..batches {
        let (e, offset) = conn.produce(
            produce,
            topic,
            0,
            simple_batch(&format!("b{b}"), 4, 1000, start + b as i64 * 10),
        );
        assert_eq!((e, offset), (code::NONE, (b * 4) as i64));
    }
    (batches * 4) as i64
}

/// Waits (bounded) until the broker's output has a line containing `what`.
fn wait_for_log(broker: &Broker, what: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(line) = broker.stderr().lines().find(|l| l.contains(what)) {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {what:?} within {timeout:?}; output:\n{}",
            broker.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The fetch error code at `offset` and the offsets of the records it returned.
fn fetch_at(conn: &mut Conn, version: i16, topic: &str, offset: i64) -> (i16, Vec<i64>) {
    let response = conn.fetch(version, topic, 0, offset, 0);
    let p = &response.responses[0].partitions[0];
    let records = common::raw::decode_records(p.records.clone().unwrap_or_default());
    (p.error_code, records.iter().map(|r| r.offset).collect())
}

/// Flips one byte of record data near the end of the `n`th batch of the
/// segment at `path`; returns that batch's base offset.
fn flip_in_batch(path: &Path, n: usize) -> i64 {
    let batch = parse_segment(path)[n];
    let mut bytes = fs::read(path).unwrap();
    bytes[batch.position + batch.size - 10] ^= 0x5a;
    fs::write(path, &bytes).unwrap();
    batch.base_offset
}

#[test]
fn damaged_closed_segment_is_found_by_the_scrub_and_never_skipped() {
    let mut broker = scrubbing_broker("104857600");
    broker.create_topic("scrubbed", 1, &[("segment.bytes", "20000")]);
    let mut conn = Conn::connect(broker.addr());
    let versions = conn.api_versions();
    let produce = versions.pick(ApiKey::Produce, 9);
    let list = versions.pick(ApiKey::ListOffsets, 7);
    let fetch = versions.pick(ApiKey::Fetch, 12).min(12);
    let total = fill(&mut conn, produce, "scrubbed", 40);
    drop(conn);
    let (status, _) = broker.terminate();
    assert!(status.success());

    let logs = segment_logs(&partition_dir(&broker, "scrubbed", 0));
    assert!(logs.len() >= 4, "segments: {logs:?}");
    let damaged = &logs[1];
    let next_base = parse_segment(&logs[2])[0].base_offset;
    let bad = flip_in_batch(damaged, 2);
    let segment_base = parse_segment(damaged)[0].base_offset;

    broker.restart();
    let line = wait_for_log(&broker, "scrub: batch at position", SCRUB_WAIT);
    assert!(
        line.contains(&format!(
            "{}",
            damaged.file_name().unwrap().to_string_lossy()
        )) && line.contains(&format!("(offset {bad})")),
        "names the file and offset: {line}"
    );
    let mut conn = Conn::connect(broker.addr());
    assert_eq!(
        conn.list_offset(list, "scrubbed", 0, -1),
        (code::NONE, total)
    );
    // Before the damage: served up to it, never past it.
    let (e, offsets) = fetch_at(&mut conn, fetch, "scrubbed", segment_base);
    assert_eq!(e, code::NONE);
    assert_eq!(offsets.last().copied(), Some(bad - 1));
    // At it and after it in that segment: an error, not a skip.
    for offset in [bad, next_base - 1] {
        assert_eq!(
            fetch_at(&mut conn, fetch, "scrubbed", offset).0,
            code::KAFKA_STORAGE_ERROR,
            "fetch at {offset}"
        );
    }
    // Later segments serve.
    let (e, offsets) = fetch_at(&mut conn, fetch, "scrubbed", next_base);
    assert_eq!((e, offsets.first().copied()), (code::NONE, Some(next_base)));

    // A default librdkafka consumer reads everything before the damage and
    // nothing after it: it waits at the damaged offset, it does not skip.
    let consumer: BaseConsumer = broker
        .consumer_config()
        .set("group.id", "scrub-reader")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("scrubbed", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut read = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            read.push(m.offset());
        }
    }
    drop(consumer);
    assert_eq!(
        read,
        (0..bad).collect::<Vec<_>>(),
        "read up to the damage only"
    );

    // The next start finds it by itself (its index files were removed).
    drop(conn);
    broker.restart();
    let mut conn = Conn::connect(broker.addr());
    assert_eq!(
        fetch_at(&mut conn, fetch, "scrubbed", bad).0,
        code::KAFKA_STORAGE_ERROR
    );
    assert!(
        broker
            .stderr()
            .matches(&format!("(offset {bad}) is corrupt"))
            .count()
            >= 2,
        "logged by the scrub and again at open"
    );
    // DeleteRecords past the damaged segment makes the partition whole.
    let deleted: DeleteRecordsResponse = conn.call(
        1,
        &DeleteRecordsRequest::default()
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(topic_name("scrubbed"))
                .with_partitions(vec![DeleteRecordsPartition::default()
                    .with_partition_index(0)
                    .with_offset(next_base)])])
            .with_timeout_ms(10_000),
    );
    assert_eq!(deleted.topics[0].partitions[0].error_code, code::NONE);
    assert_eq!(
        conn.fetch_all(fetch, "scrubbed", 0, next_base).len() as i64,
        total - next_base
    );
    broker.assert_running();
}

/// Rewrites the `n`th batch of a segment in place as a CRC-valid batch
/// claiming 2^31-1 records (the poisoned batch that used to abort the
/// broker on ListOffsets by timestamp); returns (base offset, max timestamp).
fn poison_in_place(path: &Path, n: usize) -> (i64, i64) {
    let batch = parse_segment(path)[n];
    let mut bytes = fs::read(path).unwrap();
    let b = &mut bytes[batch.position..batch.position + batch.size];
    b[23..27].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
    b[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    let max_ts = i64::from_be_bytes(b[35..43].try_into().unwrap());
    fs::write(path, &bytes).unwrap();
    (batch.base_offset, max_ts)
}

#[test]
fn poisoned_stored_batch_gets_an_error_not_an_abort() {
    // No scrub at first: the reader meets the batch before any check did.
    let mut broker = scrubbing_broker("0");
    broker.create_topic("poisoned", 1, &[("segment.bytes", "20000")]);
    let mut conn = Conn::connect(broker.addr());
    let versions = conn.api_versions();
    let produce = versions.pick(ApiKey::Produce, 9);
    let list = versions.pick(ApiKey::ListOffsets, 7);
    let fetch = versions.pick(ApiKey::Fetch, 12).min(12);
    let total = fill(&mut conn, produce, "poisoned", 40);
    drop(conn);
    broker.terminate();
    let logs = segment_logs(&partition_dir(&broker, "poisoned", 0));
    let (bad, max_ts) = poison_in_place(&logs[1], 1);

    broker.restart();
    let mut conn = Conn::connect(broker.addr());
    for _ in 0..3 {
        assert_eq!(
            conn.list_offset(list, "poisoned", 0, max_ts).0,
            code::KAFKA_STORAGE_ERROR,
            "ListOffsets by timestamp at the poisoned batch"
        );
    }
    broker.assert_running();
    assert_eq!(conn.list_offset(list, "poisoned", 0, 0), (code::NONE, 0));
    assert_eq!(
        conn.list_offset(list, "poisoned", 0, -1),
        (code::NONE, total)
    );
    let out = broker.stderr();
    assert!(
        out.matches("read at").count() <= 2,
        "repeated read failures are logged once per interval: {out}"
    );

    // With the scrub on, the batch is found and marked: fetches there get
    // an error too.
    drop(conn);
    broker.terminate();
    broker.options.overrides = vec![(
        "log.scrub.io.max.bytes.per.second".into(),
        "104857600".into(),
    )];
    broker.restart();
    let line = wait_for_log(&broker, "scrub: batch at position", SCRUB_WAIT);
    assert!(line.contains(&format!("(offset {bad})")), "{line}");
    assert!(line.contains("recordsCount"), "says why: {line}");
    let mut conn = Conn::connect(broker.addr());
    assert_eq!(
        fetch_at(&mut conn, fetch, "poisoned", bad).0,
        code::KAFKA_STORAGE_ERROR
    );
    broker.assert_running();
}

#[test]
fn poisoned_tail_of_the_active_segment_is_cut_at_start() {
    let mut broker = Broker::start();
    broker.create_topic("tail", 1, &[]);
    let mut conn = Conn::connect(broker.addr());
    let versions = conn.api_versions();
    let produce = versions.pick(ApiKey::Produce, 9);
    let list = versions.pick(ApiKey::ListOffsets, 7);
    let total = fill(&mut conn, produce, "tail", 5);
    drop(conn);
    broker.terminate();
    // A CRC-valid batch at the right offset that claims two records and
    // holds one: only the record walk can tell.
    let active = segment_logs(&partition_dir(&broker, "tail", 0))
        .pop()
        .unwrap();
    let size_before = fs::metadata(&active).unwrap().len();
    let mut batch = simple_batch("poison", 1, 50, now_ms()).to_vec();
    batch[..8].copy_from_slice(&total.to_be_bytes());
    batch[23..27].copy_from_slice(&1i32.to_be_bytes());
    batch[57..61].copy_from_slice(&2i32.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    OpenOptions::new()
        .append(true)
        .open(&active)
        .unwrap()
        .write_all(&batch)
        .unwrap();

    broker.restart();
    let line = wait_for_log(&broker, "cutting", Duration::from_secs(5));
    assert!(
        line.contains(&format!("at position {size_before} (offset {total})")),
        "names position and offset: {line}"
    );
    assert_eq!(fs::metadata(&active).unwrap().len(), size_before);
    let mut conn = Conn::connect(broker.addr());
    assert_eq!(conn.list_offset(list, "tail", 0, -1), (code::NONE, total));
    assert_eq!(
        conn.produce(produce, "tail", 0, simple_batch("after", 1, 10, now_ms())),
        (code::NONE, total)
    );
}

#[test]
fn a_log_that_cannot_be_opened_takes_only_its_partition_offline() {
    let mut broker = Broker::start();
    broker.create_topic("half", 2, &[]);
    let mut conn = Conn::connect(broker.addr());
    let versions = conn.api_versions();
    let produce = versions.pick(ApiKey::Produce, 9);
    let fetch = versions.pick(ApiKey::Fetch, 12).min(12);
    for p in 0..2 {
        assert_eq!(
            conn.produce(produce, "half", p, simple_batch("x", 2, 10, now_ms()))
                .0,
            code::NONE
        );
    }
    drop(conn);
    broker.terminate();
    // Partition 0's segment becomes something no file open can read.
    let dir = partition_dir(&broker, "half", 0);
    let log = segment_logs(&dir).pop().unwrap();
    fs::remove_file(&log).unwrap();
    fs::create_dir(&log).unwrap();

    broker.restart();
    let mut conn = Conn::connect(broker.addr());
    assert_eq!(
        conn.produce(produce, "half", 0, simple_batch("y", 1, 10, now_ms()))
            .0,
        code::KAFKA_STORAGE_ERROR
    );
    assert_eq!(
        fetch_at(&mut conn, fetch, "half", 0).0,
        code::KAFKA_STORAGE_ERROR
    );
    assert_eq!(
        conn.produce(produce, "half", 1, simple_batch("y", 1, 10, now_ms())),
        (code::NONE, 2)
    );
    assert_eq!(conn.fetch_all(fetch, "half", 1, 0).len(), 3);
    assert!(broker
        .stderr()
        .contains("cannot open half-0, it is offline"));
    broker.assert_running();
}

fn delete_records(conn: &mut Conn, topic: &str, offset: i64) -> (i16, i64) {
    let r: DeleteRecordsResponse = conn.call(
        1,
        &DeleteRecordsRequest::default()
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![DeleteRecordsPartition::default()
                    .with_partition_index(0)
                    .with_offset(offset)])])
            .with_timeout_ms(10_000),
    );
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.low_watermark)
}

/// Produces until the disk refuses even a one-record batch; returns the
/// records acknowledged (with their batch sizes, for the checks).
fn fill_disk(conn: &mut Conn, produce: i16, topic: &str, next: &mut i64) -> usize {
    let mut refused = 0;
    for (size, count) in [(16_000usize, 4usize), (1_000, 1), (10, 1)] {
        for b in 0..2_000 {
            let batch = simple_batch(&format!("f{next}-{b}"), count, size, now_ms());
            let (e, offset) = conn.produce(produce, topic, 0, batch);
            if e == code::KAFKA_STORAGE_ERROR {
                refused += 1;
                break;
            }
            assert_eq!((e, offset), (code::NONE, *next), "produce while filling");
            *next += count as i64;
        }
    }
    refused
}

fn reserve_exists(data: &Path) -> bool {
    data.join(".corelog-reserve").exists()
}

#[test]
fn full_tmpfs_refuses_produce_and_still_frees_space_through_kafka() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    let mount = match TmpfsMount::mount(&data, "24m") {
        Ok(mount) => mount,
        Err(reason) if !common::in_ci() => {
            eprintln!(
                "SKIPPED full_tmpfs_refuses_produce_and_still_frees_space_through_kafka: {reason}"
            );
            return;
        }
        Err(reason) => panic!("cannot mount a tmpfs in CI: {reason}"),
    };
    let mut broker = Broker::start_with(BrokerOptions::default().data_dir(mount.path.clone()));
    broker.create_topic("fill", 1, &[("segment.bytes", "1048576")]);
    broker.create_topic("victim", 1, &[]);
    let mut conn = Conn::connect(broker.addr());
    let versions = conn.api_versions();
    let produce = versions.pick(ApiKey::Produce, 9);
    let list = versions.pick(ApiKey::ListOffsets, 7);
    let fetch = versions.pick(ApiKey::Fetch, 12).min(12);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !reserve_exists(&mount.path) {
        assert!(
            Instant::now() < deadline,
            "the disk reserve is created at start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for b in 0..100 {
        let batch = simple_batch(&format!("v{b}"), 4, 10_000, now_ms());
        assert_eq!(conn.produce(produce, "victim", 0, batch).0, code::NONE);
    }

    let mut next = 0i64;
    assert!(fill_disk(&mut conn, produce, "fill", &mut next) > 0);
    // Full: every produce is refused, each with a clean error ...
    for _ in 0..30 {
        let (e, _) = conn.produce(produce, "fill", 0, simple_batch("no", 1, 10, now_ms()));
        assert_eq!(e, code::KAFKA_STORAGE_ERROR);
    }
    // ... logged once per interval, not once per failure.
    let out = broker.stderr();
    let lines = out.lines().filter(|l| l.contains("device full")).count();
    assert!(
        (1..=2).contains(&lines),
        "{lines} lines about the full device:\n{out}"
    );
    // Fetches go on and hold exactly what was acknowledged.
    assert_eq!(conn.list_offset(list, "fill", 0, -1), (code::NONE, next));
    assert_eq!(conn.fetch_all(fetch, "fill", 0, 0).len() as i64, next);

    // DeleteRecords frees space on the full disk (its checkpoint uses the reserve).
    let released = |broker: &Broker| broker.stderr().matches("released the").count();
    let cut = next / 2;
    let (e, low) = delete_records(&mut conn, "fill", cut);
    assert_eq!(e, code::NONE, "DeleteRecords on a full disk");
    assert_eq!(low, cut);
    assert_eq!(released(&broker), 1, "the reserve made room, and said so");
    // Produce resumes once space returned.
    let (e, offset) = conn.produce(produce, "fill", 0, simple_batch("back", 1, 10, now_ms()));
    assert_eq!((e, offset), (code::NONE, next));
    next += 1;
    // The reserve comes back when there is room for it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !reserve_exists(&mount.path) {
        assert!(Instant::now() < deadline, "the reserve is recreated");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Full again: DeleteTopics still works (its catalog rewrite uses the reserve).
    fill_disk(&mut conn, produce, "fill", &mut next);
    let deleted: DeleteTopicsResponse = conn.call(
        4,
        &DeleteTopicsRequest::default()
            .with_topic_names(vec![topic_name("victim")])
            .with_timeout_ms(10_000),
    );
    assert_eq!(deleted.responses[0].error_code, code::NONE, "{deleted:?}");
    assert_eq!(released(&broker), 2, "the reserve made room again");
    let (e, offset) = conn.produce(produce, "fill", 0, simple_batch("again", 1, 10, now_ms()));
    assert_eq!((e, offset), (code::NONE, next));
    next += 1;

    // Nothing acknowledged was lost, nothing half-written is visible, and
    // a restart agrees.
    let records = conn.fetch_all(fetch, "fill", 0, cut);
    assert_eq!(records.len() as i64, next - cut);
    drop(conn);
    broker.restart();
    let mut conn = Conn::connect(broker.addr());
    assert_eq!(conn.list_offset(list, "fill", 0, -1), (code::NONE, next));
    assert_eq!(conn.list_offset(list, "fill", 0, -2), (code::NONE, cut));
    assert_eq!(
        conn.fetch_all(fetch, "fill", 0, cut).len() as i64,
        next - cut
    );
    // (ListOffsets, unlike Metadata, never auto-creates the topic.)
    assert_eq!(
        conn.list_offset(list, "victim", 0, -1).0,
        code::UNKNOWN_TOPIC_OR_PARTITION,
        "the deleted topic stays deleted"
    );
    drop(conn);
    drop(broker);
    drop(mount);
}
