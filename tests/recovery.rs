//! Recovery at start-up on a real disk: a segment cut mid-batch or with a
//! flipped byte in its last batch is truncated to the last valid batch, and
//! missing indexes are rebuilt. The broker serves everything before the
//! damage and appends new batches right after it.

mod common;

use std::fs::{self, OpenOptions};
use std::path::PathBuf;

use common::raw::{code, now_ms, padded_value, simple_batch, Conn};
use common::{parse_segment, partition_dir, segment_logs, BatchPosition, Broker};
use kafka_protocol::messages::ApiKey;

const TOPIC: &str = "recovery";
const BATCHES: usize = 200;
const RECORDS_PER_BATCH: usize = 16;
const VALUE_BYTES: usize = 1024;
/// Kafka's smallest broker-wide segment size; 200 batches of ~17 KB fill
/// about four segments.
const SEGMENT_BYTES: &str = "1048576";

struct Versions {
    produce: i16,
    fetch: i16,
    list_offsets: i16,
}

fn versions(conn: &mut Conn) -> Versions {
    let v = conn.api_versions();
    Versions {
        produce: v.pick(ApiKey::Produce, 9),
        fetch: v.pick(ApiKey::Fetch, 12).min(12),
        list_offsets: v.pick(ApiKey::ListOffsets, 7),
    }
}

fn batch_timestamp(base: i64, batch: usize) -> i64 {
    base + batch as i64 * 100
}

/// A broker holding `BATCHES` batches of `RECORDS_PER_BATCH` records each,
/// stopped with SIGTERM; returns it with the base timestamp.
fn broker_with_data() -> (Broker, i64) {
    let mut broker = Broker::start();
    broker.create_topic(TOPIC, 1, &[("segment.bytes", SEGMENT_BYTES)]);
    let mut conn = Conn::connect(broker.addr());
    let v = versions(&mut conn);
    let base = now_ms() - 3_600_000;
    for b in 0..BATCHES {
        let batch = simple_batch(
            &format!("b{b}"),
            RECORDS_PER_BATCH,
            VALUE_BYTES,
            batch_timestamp(base, b),
        );
        let (error, offset) = conn.produce(v.produce, TOPIC, 0, batch);
        assert_eq!(error, code::NONE, "produce batch {b}");
        assert_eq!(
            offset,
            (b * RECORDS_PER_BATCH) as i64,
            "base offset of batch {b}"
        );
    }
    let (status, out) = broker.terminate();
    assert!(status.success(), "broker exit {status}:\n{out}");
    let logs = segment_logs(&partition_dir(&broker, TOPIC, 0));
    assert!(logs.len() >= 3, "expected several segments, found {logs:?}");
    (broker, base)
}

/// Asserts the partition holds exactly batches `0..batches` as produced.
fn assert_batches(conn: &mut Conn, v: &Versions, base: i64, batches: usize) {
    let records = conn.fetch_all(v.fetch, TOPIC, 0, 0);
    assert_eq!(
        records.len(),
        batches * RECORDS_PER_BATCH,
        "records served from offset 0"
    );
    for (n, record) in records.iter().enumerate() {
        let (b, i) = (n / RECORDS_PER_BATCH, n % RECORDS_PER_BATCH);
        assert_eq!(record.offset, n as i64, "offset of record {n}");
        assert_eq!(
            record.value.as_deref(),
            Some(&padded_value(&format!("b{b}"), i, VALUE_BYTES)[..]),
            "value at offset {n}"
        );
        assert_eq!(
            record.timestamp,
            batch_timestamp(base, b) + i as i64,
            "timestamp at offset {n}"
        );
    }
    let (error, end) = conn.list_offset(v.list_offsets, TOPIC, 0, -1);
    assert_eq!(error, code::NONE, "ListOffsets latest");
    assert_eq!(end, (batches * RECORDS_PER_BATCH) as i64, "log end offset");
}

/// The last batch of the active (last) segment and that segment's path.
fn last_batch(broker: &Broker) -> (PathBuf, BatchPosition) {
    let logs = segment_logs(&partition_dir(broker, TOPIC, 0));
    let active = logs.last().expect("a segment").clone();
    let batch = *parse_segment(&active)
        .last()
        .expect("a batch in the active segment");
    assert_eq!(
        batch.base_offset,
        ((BATCHES - 1) * RECORDS_PER_BATCH) as i64,
        "the last batch on disk is the last one produced"
    );
    (active, batch)
}

/// After damage to the last batch: everything before it is served, new
/// batches go right after it, and that survives another restart.
fn assert_recovered_without_last_batch(broker: &mut Broker, base: i64) {
    let mut conn = Conn::connect(broker.addr());
    let v = versions(&mut conn);
    let kept = BATCHES - 1;
    assert_batches(&mut conn, &v, base, kept);

    let batch = simple_batch(
        &format!("b{kept}"),
        RECORDS_PER_BATCH,
        VALUE_BYTES,
        batch_timestamp(base, kept),
    );
    let (error, offset) = conn.produce(v.produce, TOPIC, 0, batch);
    assert_eq!(error, code::NONE, "produce after recovery");
    assert_eq!(
        offset,
        (kept * RECORDS_PER_BATCH) as i64,
        "the new batch takes the damaged batch's offset"
    );
    assert_batches(&mut conn, &v, base, BATCHES);
    drop(conn);

    // The truncation and the new batch are on disk, cleanly.
    broker.graceful_restart();
    let mut conn = Conn::connect(broker.addr());
    assert_batches(&mut conn, &v, base, BATCHES);
    let (status, out) = broker.terminate();
    assert!(status.success(), "broker exit {status}:\n{out}");
    for log in segment_logs(&partition_dir(broker, TOPIC, 0)) {
        parse_segment(&log);
    }
}

#[test]
fn tail_cut_mid_batch_is_truncated() {
    let (mut broker, base) = broker_with_data();
    let (log, batch) = last_batch(&broker);
    let cut = (batch.position + batch.size / 2) as u64;
    OpenOptions::new()
        .write(true)
        .open(&log)
        .and_then(|f| f.set_len(cut))
        .expect("truncate segment");

    broker.restart();
    assert_recovered_without_last_batch(&mut broker, base);
}

#[test]
fn flipped_byte_in_last_batch_is_truncated() {
    let (mut broker, base) = broker_with_data();
    let (log, batch) = last_batch(&broker);
    let mut bytes = fs::read(&log).expect("read segment");
    // A byte inside the records, past the 61-byte batch header.
    let at = batch.position + 61 + (batch.size - 61) / 2;
    bytes[at] ^= 0xff;
    fs::write(&log, &bytes).expect("write segment");

    broker.restart();
    assert_recovered_without_last_batch(&mut broker, base);
}

#[test]
fn missing_indexes_are_rebuilt() {
    let (mut broker, base) = broker_with_data();
    let dir = partition_dir(&broker, TOPIC, 0);
    let mut removed = 0;
    for entry in fs::read_dir(&dir).expect("read partition dir") {
        let path = entry.expect("entry").path();
        if path
            .extension()
            .is_some_and(|ext| ext == "index" || ext == "timeindex")
        {
            fs::remove_file(&path).expect("remove index");
            removed += 1;
        }
    }
    assert!(removed >= 2, "expected index files in {}", dir.display());

    broker.restart();
    let mut conn = Conn::connect(broker.addr());
    let v = versions(&mut conn);
    assert_batches(&mut conn, &v, base, BATCHES);

    // Offset lookups in every segment, not only from the start.
    for b in [1, BATCHES / 3, BATCHES / 2, BATCHES - 2] {
        let offset = (b * RECORDS_PER_BATCH + 5) as i64;
        let records = conn.fetch_all(v.fetch, TOPIC, 0, offset);
        assert_eq!(
            records.first().map(|r| r.offset),
            Some(offset),
            "fetch from offset {offset}"
        );
        assert_eq!(
            records.len(),
            BATCHES * RECORDS_PER_BATCH - offset as usize,
            "records from offset {offset}"
        );
        // Time lookups need the time index.
        let (error, found) =
            conn.list_offset(v.list_offsets, TOPIC, 0, batch_timestamp(base, b) + 5);
        assert_eq!(error, code::NONE, "ListOffsets by timestamp");
        assert_eq!(
            found, offset,
            "ListOffsets for the timestamp of offset {offset}"
        );
    }
    drop(conn);

    let (status, out) = broker.terminate();
    assert!(status.success(), "broker exit {status}:\n{out}");
    for log in segment_logs(&dir) {
        assert!(
            log.with_extension("index").exists(),
            "{} has no .index after the restart",
            log.display()
        );
        assert!(
            log.with_extension("timeindex").exists(),
            "{} has no .timeindex after the restart",
            log.display()
        );
    }
}
