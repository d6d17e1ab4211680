//! Unit tests of the log: the real DMA disk for the glommio traps and
//! on-disk recovery, the memory twin for faults and the random-operation fuzz.

use std::future::Future;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};

use super::*;
use crate::io::MemDisk;
use crate::protocol::batch::{patch_base_offset, set_log_append_time, BatchIter};

// ---------------------------------------------------------------------------
// helpers

/// A valid v2 batch of `count` keyless records with every timestamp `ts`,
/// whose records section is `payload` bytes when that many can hold the
/// records exactly (else as close below as varint widths allow, and never
/// less than the smallest records), values filled with `fill`.
fn make_batch(count: i32, ts: i64, payload: usize, fill: u8) -> Vec<u8> {
    fn varint_len(v: i64) -> usize {
        let mut u = ((v << 1) ^ (v >> 63)) as u64;
        let mut n = 1;
        while u >= 0x80 {
            u >>= 7;
            n += 1;
        }
        n
    }
    fn put(out: &mut Vec<u8>, v: i64) {
        let mut u = ((v << 1) ^ (v >> 63)) as u64;
        while u >= 0x80 {
            out.push((u as u8) | 0x80);
            u >>= 7;
        }
        out.push(u as u8);
    }
    // attributes, timestamp delta, offset delta, null key, value, no headers
    let body = |i: i32, vlen: usize| 4 + varint_len(i64::from(i)) + varint_len(vlen as i64) + vlen;
    let size = |i: i32, vlen: usize| varint_len(body(i, vlen) as i64) + body(i, vlen);
    let mut vlens = vec![0usize; count as usize];
    let fixed: usize = (0..count - 1).map(|i| size(i, 0)).sum();
    let last = count - 1;
    let room = payload.saturating_sub(fixed);
    vlens[last as usize] = (0..=room)
        .rev()
        .find(|&v| size(last, v) <= room)
        .unwrap_or(0);
    let mut section = Vec::with_capacity(payload);
    for i in 0..count {
        let vlen = vlens[i as usize];
        put(&mut section, body(i, vlen) as i64);
        section.push(0);
        put(&mut section, 0);
        put(&mut section, i64::from(i));
        put(&mut section, -1);
        put(&mut section, vlen as i64);
        section.resize(section.len() + vlen, fill);
        put(&mut section, 0);
    }
    let total = BATCH_HEADER_BYTES + section.len();
    let mut b = vec![0u8; BATCH_HEADER_BYTES];
    b.extend_from_slice(&section);
    b[8..12].copy_from_slice(&((total - 12) as i32).to_be_bytes());
    b[16] = 2;
    b[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    b[27..35].copy_from_slice(&ts.to_be_bytes());
    b[35..43].copy_from_slice(&ts.to_be_bytes());
    b[43..51].copy_from_slice(&(-1i64).to_be_bytes());
    b[51..53].copy_from_slice(&(-1i16).to_be_bytes());
    b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    b[57..61].copy_from_slice(&count.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    crate::protocol::records::check_stored_batch(&b).expect("test batch is valid");
    b
}

/// What the log stores for `batch` appended at `base`.
fn stored(batch: &[u8], base: i64, log_append_time: Option<i64>) -> Vec<u8> {
    let mut b = batch.to_vec();
    patch_base_offset(&mut b, base);
    if let Some(ts) = log_append_time {
        set_log_append_time(&mut b, ts);
    }
    b
}

fn kafka_batch(n: usize, ts: i64) -> Vec<u8> {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32,
            timestamp: ts,
            key: None,
            value: Some(Bytes::from(format!("value-{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    buf.to_vec()
}

fn on_glommio<F, Fut>(f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    glommio::LocalExecutorBuilder::default()
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

async fn flush<D: Disk>(log: &mut PartitionLog<D>) -> Result<i64, LogError> {
    match log.take_flush() {
        Some(job) => {
            let outcome = job.run(true).await;
            log.complete_flush(outcome)
        }
        None => Ok(log.flushed_offset()),
    }
}

/// Every batch from `from` to the flushed offset, read in `max_bytes` steps.
async fn read_all<D: Disk>(log: &PartitionLog<D>, from: i64, max_bytes: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = from;
    let upper = log.flushed_offset();
    while offset < upper {
        let bytes = log
            .plan_read(offset, max_bytes, upper)
            .unwrap()
            .run()
            .await
            .unwrap();
        assert!(
            !bytes.is_empty(),
            "read at {offset} below {upper} returned nothing"
        );
        let mut it = BatchIter::new(&bytes, true);
        for (_, h) in it.by_ref() {
            offset = h.last_offset() + 1;
        }
        assert_eq!(
            it.position(),
            bytes.len(),
            "reads return whole valid batches"
        );
        out.extend_from_slice(&bytes);
    }
    out
}

fn temp_dir(name: &str) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::Builder::new()
        .prefix("corelog-log-")
        .tempdir()
        .unwrap();
    let dir = root.path().join(name);
    (root, dir)
}

fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 8 * 1024,
        index_interval_bytes: 512,
        ..LogConfig::default()
    }
}

fn names(dir: &Path, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(ext))
        .collect();
    v.sort();
    v
}

fn block_on<T>(f: impl Future<Output = T>) -> T {
    futures_lite::future::block_on(f)
}

// ---------------------------------------------------------------------------
// real disk (glommio DMA)

/// First-DMA-file regression (docs/architecture.md, glommio facts): a fresh directory, then read back by DMA.
#[test]
fn dma_fresh_dir_append_flush_read_back_byte_exact() {
    on_glommio(|| async move {
        let (_root, dir) = temp_dir("t-0");
        let mut log = PartitionLog::open(&dir, LogConfig::default())
            .await
            .unwrap();
        assert_eq!(
            (log.start_offset(), log.end_offset(), log.flushed_offset()),
            (0, 0, 0)
        );
        let mut expected = Vec::new();
        for i in 0..3 {
            let b = kafka_batch(5, 1_000 + i);
            let info = log.append(&b, None).unwrap();
            assert_eq!(info.base_offset, i * 5);
            assert_eq!(info.last_offset, i * 5 + 4);
            expected.extend(stored(&b, info.base_offset, None));
        }
        assert_eq!(log.flushed_offset(), 0);
        assert_eq!(flush(&mut log).await.unwrap(), 15);
        assert_eq!(read_all(&log, 0, 1 << 20).await, expected);
        let mut bytes = Bytes::from(read_all(&log, 0, 1 << 20).await);
        let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut bytes).unwrap();
        let offsets: Vec<i64> = sets
            .iter()
            .flat_map(|s| s.records.iter().map(|r| r.offset))
            .collect();
        assert_eq!(offsets, (0..15).collect::<Vec<_>>());
        // Appends after a flush rewrite the partial tail block in place.
        let b = kafka_batch(2, 2_000);
        log.append(&b, Some(5_000)).unwrap();
        expected.extend(stored(&b, 15, Some(5_000)));
        flush(&mut log).await.unwrap();
        assert_eq!(read_all(&log, 0, 100).await, expected);
        log.close().await.unwrap();
        assert_eq!(
            std::fs::metadata(dir.join("00000000000000000000.log"))
                .unwrap()
                .len(),
            expected.len() as u64
        );
        let log = PartitionLog::open(&dir, LogConfig::default())
            .await
            .unwrap();
        assert_eq!(log.end_offset(), 17);
        assert_eq!(read_all(&log, 0, 1 << 20).await, expected);
        assert_eq!(log.max_timestamp(), Some((5_000, 15)));
    });
}

#[test]
fn dma_roll_reads_across_segments_reopen_and_rebuild_indexes() {
    on_glommio(|| async move {
        let (_root, dir) = temp_dir("t-1");
        let mut log = PartitionLog::open(&dir, small_config()).await.unwrap();
        let mut expected = Vec::new();
        for i in 0..120 {
            let b = make_batch(
                1 + (i % 3),
                10_000 + i as i64,
                100 + (i as usize * 37) % 400,
                i as u8,
            );
            let info = log.append(&b, None).unwrap();
            expected.extend(stored(&b, info.base_offset, None));
            if i % 7 == 0 {
                flush(&mut log).await.unwrap();
            }
        }
        flush(&mut log).await.unwrap();
        let end = log.end_offset();
        assert!(
            log.segment_count() >= 4,
            "rolled into {} segments",
            log.segment_count()
        );
        assert_eq!(read_all(&log, 0, 1_000).await, expected);
        // A read from the middle of a batch starts at that batch.
        let mid = log.plan_read(5, 1, end).unwrap().run().await.unwrap();
        let h = BatchHeader::parse(&mid).unwrap();
        assert!(h.base_offset <= 5 && h.last_offset() >= 5 && mid.len() == h.total_bytes());
        assert!(log
            .plan_read(end, 100, end)
            .unwrap()
            .run()
            .await
            .unwrap()
            .is_empty());
        assert!(matches!(
            log.plan_read(end + 1, 100, end),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        let segments = log.segment_count();
        log.close().await.unwrap();
        assert_eq!(names(&dir, ".log").len(), segments);
        assert_eq!(names(&dir, ".index").len(), segments);
        assert_eq!(names(&dir, ".timeindex").len(), segments);

        let log = PartitionLog::open(&dir, small_config()).await.unwrap();
        assert_eq!((log.end_offset(), log.segment_count()), (end, segments));
        assert_eq!(read_all(&log, 0, 3_000).await, expected);
        drop(log);

        let index_before = std::fs::read(dir.join(&names(&dir, ".index")[1])).unwrap();
        for n in names(&dir, ".index") {
            std::fs::remove_file(dir.join(n)).unwrap();
        }
        std::fs::write(dir.join(&names(&dir, ".timeindex")[0]), b"garbage").unwrap();
        let log = PartitionLog::open(&dir, small_config()).await.unwrap();
        assert_eq!(log.end_offset(), end);
        assert_eq!(read_all(&log, 0, 2_000).await, expected);
        // Closed segments' indexes were rebuilt identically.
        assert_eq!(
            std::fs::read(dir.join(&names(&dir, ".index")[1])).unwrap(),
            index_before
        );
        let ts = log
            .plan_offset_for_timestamp(10_050, end)
            .run()
            .await
            .unwrap();
        let (offset, t) = ts.unwrap();
        assert_eq!(t, 10_050);
        let b = log.plan_read(offset, 1, end).unwrap().run().await.unwrap();
        assert_eq!(BatchHeader::parse(&b).unwrap().max_timestamp, 10_050);
    });
}

#[test]
fn dma_torn_tail_and_flipped_byte_are_cut_on_reopen() {
    on_glommio(|| async move {
        let (_root, dir) = temp_dir("t-2");
        let mut log = PartitionLog::open(&dir, LogConfig::default())
            .await
            .unwrap();
        let mut bounds = vec![0usize];
        let mut expected = Vec::new();
        for i in 0..10 {
            let b = make_batch(2, 1_000 + i, 300, i as u8);
            let info = log.append(&b, None).unwrap();
            expected.extend(stored(&b, info.base_offset, None));
            bounds.push(expected.len());
        }
        flush(&mut log).await.unwrap();
        drop(log); // a crash: no clean close; the file ends on a block boundary
        let path = dir.join("00000000000000000000.log");
        assert_eq!(std::fs::metadata(&path).unwrap().len() % 4096, 0);

        // Torn: cut in the middle of the last batch.
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len((bounds[9] + 100) as u64).unwrap();
        drop(f);
        let mut log = PartitionLog::open(&dir, LogConfig::default())
            .await
            .unwrap();
        assert_eq!(log.end_offset(), 18);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), bounds[9] as u64);
        assert_eq!(read_all(&log, 0, 1 << 20).await, expected[..bounds[9]]);
        // It keeps working after recovery.
        let b = make_batch(2, 5_000, 300, 9);
        log.append(&b, None).unwrap();
        flush(&mut log).await.unwrap();
        log.close().await.unwrap();

        // Flipped byte inside the (new) last batch.
        let mut raw = std::fs::read(&path).unwrap();
        assert_eq!(raw.len(), bounds[10]);
        raw[bounds[9] + 200] ^= 0xff;
        std::fs::write(&path, &raw).unwrap();
        let log = PartitionLog::open(&dir, LogConfig::default())
            .await
            .unwrap();
        assert_eq!(log.end_offset(), 18);
        assert_eq!(
            read_all(&log, 3, 1 << 20).await,
            expected[bounds[1]..bounds[9]]
        );
    });
}

// ---------------------------------------------------------------------------
// memory twin: retention, timestamps, faults

fn mem_dir() -> PathBuf {
    PathBuf::from("/mem/topic-0")
}

fn fill_segments(log: &mut PartitionLog<MemDisk>, batches: i64, ts0: i64) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    for i in 0..batches {
        let b = make_batch(3, ts0 + i * 10, 500, i as u8);
        let info = log.append(&b, None).unwrap();
        out.push((info.base_offset, stored(&b, info.base_offset, None)));
        if i % 3 == 0 {
            block_on(flush(log)).unwrap();
        }
    }
    block_on(flush(log)).unwrap();
    out
}

#[test]
fn retention_by_bytes_and_ms_moves_start_and_deletes_files() {
    block_on(async {
        let disk = MemDisk::new();
        let dir = mem_dir();
        let mut log = PartitionLog::open_on(disk.clone(), &dir, small_config())
            .await
            .unwrap();
        fill_segments(&mut log, 60, 1_000);
        let segments = log.segment_count();
        assert!(segments >= 4);
        let end = log.end_offset();
        assert!(log.take_retention(10_000).is_none(), "defaults keep a week");

        let mut config = small_config();
        config.retention_bytes = 20 * 1024;
        log.set_config(config.clone());
        let job = log.take_retention(2_000).expect("over retention.bytes");
        let removed = job.paths().len() / 3;
        job.run().await.unwrap();
        assert!(log.size_bytes() <= 20 * 1024 + small_config().segment_bytes);
        assert!(log.size_bytes() >= 20 * 1024);
        assert_eq!(log.segment_count(), segments - removed);
        assert_eq!(
            disk.names(&dir)
                .iter()
                .filter(|n| n.ends_with(".log"))
                .count(),
            log.segment_count()
        );
        let start = log.start_offset();
        assert!(start > 0);
        assert!(matches!(
            log.plan_read(start - 1, 10, end),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert!(!log
            .plan_read(start, 10, end)
            .unwrap()
            .run()
            .await
            .unwrap()
            .is_empty());

        config.retention_bytes = -1;
        config.retention_ms = 100;
        log.set_config(config);
        let newest_ts = 1_000 + 59 * 10;
        let job = log
            .take_retention(newest_ts + 101)
            .expect("all closed segments expired");
        job.run().await.unwrap();
        assert_eq!(log.segment_count(), 1, "only the active segment is left");
        assert_eq!(log.end_offset(), end);
        assert!(
            log.take_retention(i64::MAX / 2).is_none(),
            "the active segment is never deleted"
        );
        drop(log);
        let log = PartitionLog::open_on(disk.clone(), &dir, small_config())
            .await
            .unwrap();
        assert_eq!(log.segment_count(), 1);
        assert_eq!(log.end_offset(), end);
    });
}

#[test]
fn offset_for_timestamp_and_max_timestamp() {
    block_on(async {
        let disk = MemDisk::new();
        let mut log = PartitionLog::open_on(disk, &mem_dir(), small_config())
            .await
            .unwrap();
        let batches = fill_segments(&mut log, 50, 1_000);
        let end = log.end_offset();
        for ts in [0, 1_000, 1_001, 1_005, 1_250, 1_490, 1_491] {
            let got = log.plan_offset_for_timestamp(ts, end).run().await.unwrap();
            let want = batches
                .iter()
                .map(|(base, b)| (*base, BatchHeader::parse(b).unwrap().max_timestamp))
                .find(|(_, t)| *t >= ts);
            assert_eq!(got, want, "timestamp {ts}");
        }
        assert_eq!(
            log.plan_offset_for_timestamp(1_250, 30)
                .run()
                .await
                .unwrap(),
            None
        );
        assert_eq!(log.max_timestamp(), Some((1_490, batches[49].0)));
    });
}

/// ListOffsets v0's list: segment bases then the log end, largest first,
/// from the entry the timestamp picks, at most the count asked for.
#[test]
fn legacy_offsets_list_segment_bases_from_the_latest_or_a_timestamp() {
    block_on(async {
        let disk = MemDisk::new();
        let mut log = PartitionLog::open_on(disk, &mem_dir(), small_config())
            .await
            .unwrap();
        fill_segments(&mut log, 50, 1_000);
        assert!(log.segment_count() > 2);
        let end = log.end_offset();
        let bases: Vec<i64> = log.segments.iter().map(|s| s.base_offset).collect();
        let mut all: Vec<i64> = bases.clone();
        if log.active().size > 0 {
            all.push(end);
        }
        all.reverse();
        let now = 10_000;
        assert_eq!(log.legacy_offsets_before(-1, usize::MAX, now), all);
        assert_eq!(log.legacy_offsets_before(-1, 1, now), vec![all[0]]);
        assert_eq!(log.legacy_offsets_before(-2, 5, now), vec![0]);
        assert!(log.legacy_offsets_before(0, 5, now).is_empty());
        // A time between the first and second segments' last records: the
        // first segment's base only.
        let first_last = log.segments[0].max_timestamp;
        assert_eq!(log.legacy_offsets_before(first_last, 5, now), vec![0]);
        assert_eq!(
            log.legacy_offsets_before(log.segments[1].max_timestamp, 5, now),
            vec![bases[1], 0]
        );
        assert_eq!(log.legacy_offsets_before(-1, 0, now), Vec::<i64>::new());
    });
}

/// A log whose segment names start near the end of the offset space hands
/// out offsets up to i64::MAX - 1 (so the log end, i64::MAX, is still an
/// offset) and refuses the batch that would pass it, without appending.
#[test]
fn appends_never_pass_the_largest_offset() {
    block_on(async {
        let disk = MemDisk::new();
        let dir = mem_dir();
        disk.create_dir_all(&dir).await.unwrap();
        let base = i64::MAX - 2;
        write_whole_file(&disk, &dir.join(format!("{base:020}.log")), &[])
            .await
            .unwrap();
        let mut log = PartitionLog::open_on(disk.clone(), &dir, small_config())
            .await
            .unwrap();
        assert_eq!(log.end_offset(), base);
        assert!(matches!(
            log.append(&make_batch(3, 1_000, 100, 1), None),
            Err(LogError::OffsetOverflow { end, last_offset_delta: 2 }) if end == base
        ));
        assert_eq!(log.end_offset(), base);
        let info = log.append(&make_batch(2, 1_000, 100, 1), None).unwrap();
        assert_eq!((info.base_offset, info.last_offset), (base, i64::MAX - 1));
        assert_eq!(log.end_offset(), i64::MAX);
        assert!(matches!(
            log.append(&make_batch(1, 1_000, 100, 1), None),
            Err(LogError::OffsetOverflow { .. })
        ));
        assert_eq!(flush(&mut log).await.unwrap(), i64::MAX);
        drop(log);
        let log = PartitionLog::open_on(disk, &dir, small_config())
            .await
            .unwrap();
        assert_eq!(log.end_offset(), i64::MAX);
    });
}

/// fuzz target `log_recovery`: a log-start checkpoint ahead of a log whose
/// tail recovery cut. The first open clamped the start to the end in memory
/// only; records appended after it were hidden by the next open, which
/// moved the start past them. As in Kafka's LogLoader, such a log starts
/// over, empty, at the checkpoint, and what is appended then stays.
#[test]
fn a_log_that_ends_before_its_start_checkpoint_starts_over_there() {
    block_on(async {
        let disk = MemDisk::new();
        let dir = mem_dir();
        let mut log = PartitionLog::open_on(disk.clone(), &dir, small_config())
            .await
            .unwrap();
        log.append(&make_batch(3, 1_000, 100, 1), None).unwrap();
        assert_eq!(flush(&mut log).await.unwrap(), 3);
        drop(log);
        write_whole_file(&disk, &dir.join(START_CHECKPOINT_FILE), b"0\n5\n")
            .await
            .unwrap();
        for _ in 0..2 {
            let log = PartitionLog::open_on(disk.clone(), &dir, small_config())
                .await
                .unwrap();
            assert_eq!((log.start_offset(), log.end_offset()), (5, 5));
        }
        assert!(!disk
            .names(&dir)
            .iter()
            .any(|n| n.starts_with("00000000000000000000")));
        let mut log = PartitionLog::open_on(disk.clone(), &dir, small_config())
            .await
            .unwrap();
        let b = make_batch(3, 1_000, 100, 2);
        let info = log.append(&b, None).unwrap();
        assert_eq!(info.base_offset, 5);
        assert_eq!(flush(&mut log).await.unwrap(), 8);
        drop(log);
        let log = PartitionLog::open_on(disk.clone(), &dir, small_config())
            .await
            .unwrap();
        assert_eq!((log.start_offset(), log.end_offset()), (5, 8));
        assert_eq!(read_all(&log, 5, 4096).await, stored(&b, 5, None));
    });
}

#[test]
fn no_space_discards_unflushed_and_later_appends_work() {
    block_on(async {
        let disk = MemDisk::new();
        let dir = mem_dir();
        let mut log = PartitionLog::open_on(disk.clone(), &dir, small_config())
            .await
            .unwrap();
        let kept = fill_segments(&mut log, 10, 1_000);
        let flushed = log.flushed_offset();
        let segments = log.segment_count();
        // Enough to roll a few times, then the disk is full.
        for i in 0..40 {
            log.append(&make_batch(1, 9_000, 600, i), None).unwrap();
        }
        assert!(log.segment_count() > segments);
        disk.faults(|f| f.full = true);
        assert!(matches!(flush(&mut log).await, Err(LogError::NoSpace)));
        assert_eq!((log.end_offset(), log.flushed_offset()), (flushed, flushed));
        assert_eq!(log.segment_count(), segments);
        assert!(!log.is_failed());
        let logs = disk
            .names(&dir)
            .iter()
            .filter(|n| n.ends_with(".log"))
            .count();
        assert_eq!(
            logs, segments,
            "files created by the failed flush are removed"
        );
        // Space returns.
        disk.faults(|f| f.full = false);
        let mut expected: Vec<u8> = kept.iter().flat_map(|(_, b)| b.clone()).collect();
        for i in 0..40 {
            let b = make_batch(1, 9_000, 600, i);
            let info = log.append(&b, None).unwrap();
            expected.extend(stored(&b, info.base_offset, None));
        }
        assert_eq!(flush(&mut log).await.unwrap(), log.end_offset());
        assert_eq!(read_all(&log, 0, 4096).await, expected);
        disk.crash(None);
        let log = PartitionLog::open_on(disk.clone(), &dir, small_config())
            .await
            .unwrap();
        assert_eq!(read_all(&log, 0, 4096).await, expected);
    });
}

#[test]
fn fsync_failure_takes_the_log_offline_but_reads_work() {
    block_on(async {
        let disk = MemDisk::new();
        let mut log = PartitionLog::open_on(disk.clone(), &mem_dir(), LogConfig::default())
            .await
            .unwrap();
        let kept = fill_segments(&mut log, 5, 1_000);
        log.append(&make_batch(1, 1, 100, 1), None).unwrap();
        disk.faults(|f| f.fail_syncs = 1);
        assert!(matches!(flush(&mut log).await, Err(LogError::Failed)));
        assert!(log.is_failed());
        assert_eq!(log.end_offset(), log.flushed_offset());
        assert!(matches!(
            log.append(&make_batch(1, 1, 100, 1), None),
            Err(LogError::Failed)
        ));
        assert!(log.take_flush().is_none());
        let expected: Vec<u8> = kept.iter().flat_map(|(_, b)| b.clone()).collect();
        assert_eq!(read_all(&log, 0, 1 << 20).await, expected);
    });
}

#[test]
fn appends_continue_while_a_flush_is_in_flight() {
    block_on(async {
        let disk = MemDisk::new();
        let mut log = PartitionLog::open_on(disk, &mem_dir(), small_config())
            .await
            .unwrap();
        let mut expected = Vec::new();
        let mut job = None;
        for i in 0..200u8 {
            let b = make_batch(2, i64::from(i), 50 + usize::from(i) * 13 % 700, i);
            let info = log.append(&b, None).unwrap();
            expected.extend(stored(&b, info.base_offset, None));
            if i % 5 == 0 {
                if let Some(j) = job.take() {
                    let j: FlushJob<MemDisk> = j;
                    let end = j.end_offset();
                    let outcome = j.run(true).await;
                    assert_eq!(log.complete_flush(outcome).unwrap(), end);
                }
                job = log.take_flush();
                assert!(log.take_flush().is_none(), "one flush in flight");
            }
        }
        if let Some(j) = job {
            let outcome = j.run(true).await;
            log.complete_flush(outcome).unwrap();
        }
        flush(&mut log).await.unwrap();
        assert_eq!(read_all(&log, 0, 5_000).await, expected);
    });
}

// ---------------------------------------------------------------------------
// fuzz

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The trivial model: every batch the log should hold, in order.
struct Model {
    batches: Vec<(i64, Vec<u8>)>,
    /// Batches below this index are fdatasync'd.
    flushed: usize,
    /// Batches below this index are written by a successful flush.
    written: usize,
    /// The log start offset (moved by retention).
    start: i64,
    /// Batches discarded by a flush that failed its fdatasync: their bytes
    /// may still be on disk and come back at the next open.
    maybe: Vec<(i64, Vec<u8>)>,
}

impl Model {
    /// After a reopen at `end`: keep what survived, take back what resurfaced.
    fn reopened(&mut self, end: i64) {
        let maybe = std::mem::take(&mut self.maybe);
        if end > self.end() {
            for b in maybe {
                if b.0 < end {
                    self.batches.push(b);
                }
            }
            assert_eq!(self.end(), end, "resurfaced data ends on a batch boundary");
        }
        let i = self.index_of_offset(end);
        assert!(i == self.batches.len() || self.batches[i].0 == end);
        self.batches.truncate(i);
    }
}

impl Model {
    fn end(&self) -> i64 {
        self.batches.last().map_or(self.start, |(b, bytes)| {
            b + i64::from(BatchHeader::parse(bytes).unwrap().last_offset_delta) + 1
        })
    }
    fn index_of_offset(&self, offset: i64) -> usize {
        self.batches.partition_point(|(b, _)| *b < offset)
    }
}

fn fuzz_one(seed: u64) {
    let mut rng = Rng(seed);
    let disk = MemDisk::new();
    let dir = mem_dir();
    let mut config = LogConfig {
        segment_bytes: 2048 + rng.below(16 * 1024),
        segment_ms: 1_000 + rng.below(100_000) as i64,
        retention_bytes: -1,
        retention_ms: -1,
        index_interval_bytes: 64 + rng.below(2048) as u32,
        ..LogConfig::default()
    };
    // Caches on for most seeds, from tiny (often refused) to ample, so
    // reads are served from the tail and read-ahead windows across rolls,
    // failed flushes, retention and crashes.
    let budget = match rng.below(4) {
        0 => CacheBudget::disabled(),
        1 => CacheBudget::new(16 * 1024, 4096),
        _ => CacheBudget::new(4 << 20, rng.below(64 * 1024) as usize),
    };
    let open = |disk: &MemDisk, config: &LogConfig| {
        let mut log = block_on(PartitionLog::open_on(disk.clone(), &dir, config.clone())).unwrap();
        log.set_cache_budget(budget.clone());
        log
    };
    let mut log = open(&disk, &config);
    // The model holds only offsets >= base_dropped (retention).
    let mut model = Model {
        batches: Vec::new(),
        flushed: 0,
        written: 0,
        start: 0,
        maybe: Vec::new(),
    };
    let mut now = 1_000_000i64;
    let mut job: Option<FlushJob<MemDisk>> = None;
    let mut prefetch: Option<PrefetchJob<MemDisk>> = None;
    let trace = std::env::var("CORELOG_FUZZ_TRACE").is_ok();
    for step in 0..1_500 {
        let op = rng.below(100);
        if trace {
            let files: Vec<(String, Option<usize>)> = disk
                .names(&dir)
                .into_iter()
                .map(|n| {
                    let len = disk.file_len(&dir.join(&n));
                    (n[15..].to_string(), len)
                })
                .collect();
            eprintln!(
                "step {step} op {op} end {} flushed {} written {} start {} {:?}",
                log.end_offset(),
                log.flushed_offset(),
                log.written_offset(),
                log.start_offset(),
                files
            );
        }
        match op {
            0..=44 => {
                if log.is_failed() {
                    continue;
                }
                let count = 1 + rng.below(5) as i32;
                let ts = now - 500 + rng.below(1_000) as i64;
                let payload_max = if rng.chance(5) { 9_000 } else { 700 };
                let payload = rng.below(payload_max) as usize;
                let b = make_batch(count, ts, payload, rng.next() as u8);
                let lat = rng.chance(20).then_some(now);
                let info = log.append(&b, lat).unwrap();
                assert_eq!(info.base_offset, model.end());
                model
                    .batches
                    .push((info.base_offset, stored(&b, info.base_offset, lat)));
            }
            45..=54 => {
                // take a flush job (maybe keep it in flight) or finish one
                if let Some(j) = job.take() {
                    finish(&mut log, &mut model, &disk, &mut rng, j);
                } else if let Some(j) = log.take_flush() {
                    if rng.chance(50) {
                        job = Some(j);
                    } else {
                        finish(&mut log, &mut model, &disk, &mut rng, j);
                    }
                }
            }
            55..=69 => {
                let upper = log.flushed_offset();
                let start = model.start;
                assert!(upper >= start);
                // Often at the readable end: a caught-up reader, which
                // starts the tail cache.
                let offset = if rng.chance(25) {
                    upper
                } else {
                    start + rng.below((upper - start + 1) as u64) as i64
                };
                let max_bytes = 1 + rng.below(6_000) as usize;
                let mut read = log.plan_read(offset, max_bytes, upper).unwrap();
                // Prefetches run at once, later (after rolls, retention,
                // failed flushes, crashes) or never.
                if let Some(p) = read.take_prefetch() {
                    match rng.below(3) {
                        0 => block_on(p.run()),
                        1 => prefetch = Some(p),
                        _ => drop(p),
                    }
                }
                let bytes = block_on(read.run()).unwrap();
                check_read(&model, offset, max_bytes, upper, &bytes);
            }
            70..=74 => {
                now += rng.below(config.segment_ms as u64 * 2) as i64;
                log.maybe_roll(now);
            }
            75..=81 => {
                if rng.chance(50) {
                    config.retention_bytes = rng.below(64 * 1024) as i64;
                    config.retention_ms = -1;
                } else {
                    config.retention_bytes = -1;
                    config.retention_ms = rng.below(2_000) as i64;
                }
                log.set_config(config.clone());
                if let Some(r) = log.take_retention(now) {
                    block_on(r.run()).unwrap();
                }
                let new_start = log.start_offset();
                assert!(new_start >= model.start);
                let i = model.index_of_offset(new_start);
                assert!(i == model.batches.len() || model.batches[i].0 == new_start);
                assert!(i <= model.flushed.min(model.written));
                model.batches.drain(..i);
                model.flushed -= i;
                model.written -= i;
                model.start = new_start;
            }
            82..=87 => {
                let upper = log.flushed_offset();
                let ts = now - 800 + rng.below(1_600) as i64;
                let got = block_on(log.plan_offset_for_timestamp(ts, upper).run()).unwrap();
                let want = model
                    .batches
                    .iter()
                    .take_while(|(b, _)| *b < upper)
                    .map(|(b, bytes)| (*b, BatchHeader::parse(bytes).unwrap().max_timestamp))
                    .find(|(_, t)| *t >= ts);
                assert_eq!(got, want, "offset for timestamp {ts}");
            }
            88..=89 => {
                // a follower's truncation (or reset), after a full flush
                if log.is_failed() {
                    assert!(matches!(log.plan_truncate(0), Err(LogError::Failed)));
                    continue;
                }
                if let Some(j) = job.take() {
                    assert!(matches!(log.plan_truncate(0), Err(LogError::Busy)));
                    finish(&mut log, &mut model, &disk, &mut rng, j);
                    if log.is_failed() {
                        continue;
                    }
                }
                block_on(flush(&mut log)).unwrap();
                model.flushed = model.batches.len();
                model.written = model.batches.len();
                let end = model.end();
                let reset = rng.chance(15);
                let planned = if reset {
                    let offset = rng.below(end as u64 + 100) as i64;
                    model.batches.clear();
                    model.start = offset;
                    log.plan_reset(offset)
                } else {
                    // Above the start (a segment base here), so never a reset.
                    let offset = model.start + 1 + rng.below((end - model.start + 5) as u64) as i64;
                    model
                        .batches
                        .retain(|(_, b)| BatchHeader::parse(b).unwrap().last_offset() < offset);
                    log.plan_truncate(offset)
                };
                let outcome = block_on(planned.unwrap().run());
                assert_eq!(log.complete_truncate(outcome).unwrap(), model.end());
                model.flushed = model.batches.len();
                model.written = model.batches.len();
            }
            90..=95 => {
                // crash (maybe torn) and reopen
                drop(job.take());
                drop(log);
                disk.crash(rng.chance(50).then(|| rng.next()));
                log = open(&disk, &config);
                let end = log.end_offset();
                let i = model.index_of_offset(end);
                assert!(i >= model.flushed, "synced data survives: end {end}");
                model.reopened(end);
                model.flushed = model.batches.len();
                model.written = model.batches.len();
                assert_eq!(log.start_offset(), model.start);
                assert_eq!(
                    block_on(read_all(&log, model.start, 8_192)),
                    concat(&model.batches)
                );
            }
            _ => {
                // clean close and reopen
                if let Some(j) = job.take() {
                    finish(&mut log, &mut model, &disk, &mut rng, j);
                }
                let failed = log.is_failed();
                let closed = block_on(log.close());
                assert_eq!(closed.is_err(), failed);
                log = open(&disk, &config);
                if failed {
                    model.reopened(log.end_offset());
                }
                model.flushed = model.batches.len();
                model.written = model.batches.len();
                assert_eq!(log.end_offset(), model.end());
                assert_eq!(
                    block_on(read_all(&log, model.start, 8_192)),
                    concat(&model.batches)
                );
            }
        }
        assert_eq!(log.end_offset(), model.end());
        assert_eq!(log.start_offset(), model.start);
        if rng.chance(10) {
            if let Some(p) = prefetch.take() {
                block_on(p.run());
            }
        }
        if prefetch.is_none() {
            assert_eq!(
                budget.used_bytes(),
                log.cached_bytes(),
                "one log charges the budget"
            );
        }
        if rng.chance(2) {
            log.release_idle_cache();
        }
    }
    drop(prefetch);
    drop(job);
    drop(log);
    assert_eq!(budget.used_bytes(), 0, "cache charges balance");
}

fn finish(
    log: &mut PartitionLog<MemDisk>,
    model: &mut Model,
    disk: &MemDisk,
    rng: &mut Rng,
    job: FlushJob<MemDisk>,
) {
    if rng.chance(8) {
        disk.faults(|f| f.fail_writes = 1 + rng.below(3) as u32);
    }
    if rng.chance(1) {
        disk.faults(|f| f.fail_syncs = 1);
    }
    let sync = !rng.chance(20);
    let upto = job.end_offset();
    let outcome = block_on(job.run(sync));
    disk.faults(|f| {
        f.fail_writes = 0;
        f.fail_syncs = 0;
    });
    match log.complete_flush(outcome) {
        Ok(flushed) => {
            let i = model.index_of_offset(upto);
            assert!(i == model.batches.len() || model.batches[i].0 == upto);
            model.written = i;
            if sync {
                model.flushed = i;
                assert_eq!(flushed, upto);
            }
        }
        Err(LogError::NoSpace) => {
            model.batches.truncate(model.written);
        }
        Err(LogError::Failed) => {
            model.maybe = model.batches.split_off(model.written);
        }
        Err(e) => panic!("unexpected flush error {e}"),
    }
}

fn concat(batches: &[(i64, Vec<u8>)]) -> Vec<u8> {
    batches
        .iter()
        .flat_map(|(_, b)| b.iter().copied())
        .collect()
}

fn check_read(model: &Model, offset: i64, max_bytes: usize, upper: i64, bytes: &[u8]) {
    if offset >= upper {
        assert!(bytes.is_empty());
        return;
    }
    let first = model
        .batches
        .iter()
        .position(|(b, bytes)| {
            *b + i64::from(BatchHeader::parse(bytes).unwrap().last_offset_delta) >= offset
        })
        .expect("offset below upper is in the model");
    assert!(
        !bytes.is_empty(),
        "read at {offset} (upper {upper}) is empty"
    );
    let mut at = 0;
    let mut i = first;
    while at < bytes.len() {
        let want = &model.batches[i].1;
        assert!(model.batches[i].0 < upper);
        assert_eq!(
            &bytes[at..at + want.len()],
            &want[..],
            "batch {i} read back"
        );
        at += want.len();
        i += 1;
    }
    assert!(
        at == model.batches[first].1.len() || at <= max_bytes,
        "max_bytes respected"
    );
}

#[test]
fn fuzz_random_operations_against_a_model() {
    let seeds: Vec<u64> = match std::env::var("CORELOG_FUZZ_SEED") {
        Ok(s) => vec![s.parse().expect("CORELOG_FUZZ_SEED is a u64")],
        Err(_) => {
            let base = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            (0..8).map(|i| base.wrapping_add(i * 7919)).collect()
        }
    };
    for seed in seeds {
        let result = std::panic::catch_unwind(|| fuzz_one(seed));
        if let Err(e) = result {
            eprintln!("log fuzz failed; replay with CORELOG_FUZZ_SEED={seed}");
            std::panic::resume_unwind(e);
        }
    }
}

// ---------------------------------------------------------------------------
// DeleteRecords, cleanup.policy, compaction (memory twin)

#[test]
fn delete_records_moves_start_mid_segment_durably() {
    block_on(async {
        let disk = MemDisk::new();
        let dir = mem_dir();
        let mut log = PartitionLog::open_on(disk.clone(), &dir, small_config())
            .await
            .unwrap();
        fill_segments(&mut log, 40, 1_000);
        let (segments, end) = (log.segment_count(), log.end_offset());
        assert!(matches!(
            log.delete_records_before(end + 1),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert!(log.delete_records_before(0).unwrap().is_none());
        // Inside a batch (batches hold 3 records) and past some segments.
        let target = end / 2 + 1;
        let job = log.delete_records_before(target).unwrap().expect("moves");
        job.run().await.unwrap();
        assert_eq!(log.start_offset(), target);
        assert!(log.segment_count() < segments);
        assert!(matches!(
            log.plan_read(target - 1, 10, end),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        let first = log.plan_read(target, 1, end).unwrap().run().await.unwrap();
        let h = BatchHeader::parse(&first).unwrap();
        assert!(h.base_offset <= target && h.last_offset() >= target);
        let bases: Vec<i64> = disk
            .names(&dir)
            .iter()
            .filter_map(|n| segment::parse_log_name(n))
            .collect();
        assert_eq!(bases.len(), log.segment_count());
        assert!(log.delete_records_before(target - 1).unwrap().is_none());
        let ts = log
            .plan_offset_for_timestamp(0, end)
            .run()
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            ts.0, target,
            "ListOffsets by timestamp never answers below the start"
        );
        drop(log);
        disk.crash(None);
        let log = PartitionLog::open_on(disk.clone(), &dir, small_config())
            .await
            .unwrap();
        assert_eq!(log.start_offset(), target, "the start survives a crash");
        assert_eq!(log.end_offset(), end);
        // To the very end: everything is gone but the active segment.
        let mut log = log;
        let job = log.delete_records_before(end).unwrap().unwrap();
        job.run().await.unwrap();
        assert_eq!((log.start_offset(), log.end_offset()), (end, end));
        drop(log);
        let log = PartitionLog::open_on(disk, &dir, small_config())
            .await
            .unwrap();
        assert_eq!((log.start_offset(), log.end_offset()), (end, end));
    });
}

#[test]
fn compact_only_policy_keeps_old_segments() {
    block_on(async {
        let disk = MemDisk::new();
        let mut config = small_config();
        config.cleanup_delete = false;
        config.retention_bytes = 1;
        config.retention_ms = 1;
        let mut log = PartitionLog::open_on(disk, &mem_dir(), config.clone())
            .await
            .unwrap();
        fill_segments(&mut log, 40, 1_000);
        assert!(log.take_retention(i64::MAX / 2).is_none());
        config.cleanup_delete = true;
        config.cleanup_compact = true;
        log.set_config(config);
        assert!(
            log.take_retention(i64::MAX / 2).is_some(),
            "compact,delete deletes"
        );
    });
}

/// One record of the compaction model.
#[derive(Clone, Debug, PartialEq, Eq)]
struct KeyedRecord {
    offset: i64,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

fn keyed_batch(records: &[(Vec<u8>, Option<Vec<u8>>)], ts: i64, compression: u8) -> Vec<u8> {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32,
            timestamp: ts + i as i64,
            key: Some(Bytes::from(k.clone())),
            value: v.clone().map(Bytes::from),
            headers: Default::default(),
        })
        .collect();
    let compression = match compression {
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        4 => Compression::Zstd,
        _ => Compression::None,
    };
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    buf.to_vec()
}

/// Appends `batches` keyed batches (over `keys` keys, every 7th record a
/// tombstone) and returns the model of every record.
fn fill_keyed(log: &mut PartitionLog<MemDisk>, batches: usize, keys: usize) -> Vec<KeyedRecord> {
    let mut model = Vec::new();
    let mut n = 0usize;
    for b in 0..batches {
        let count = 1 + b % 4;
        let records: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..count)
            .map(|i| {
                let r = n + i;
                let key = format!("key-{}", (r * 7 + r / 5) % keys).into_bytes();
                let value = (r % 7 != 3).then(|| format!("value-{r}-{}", "x".repeat(r % 40)));
                (key, value.map(String::into_bytes))
            })
            .collect();
        n += count;
        let batch = keyed_batch(&records, 1_000 + b as i64, (b % 5) as u8);
        let info = log.append(&batch, None).unwrap();
        for (i, (key, value)) in records.into_iter().enumerate() {
            model.push(KeyedRecord {
                offset: info.base_offset + i as i64,
                key,
                value,
            });
        }
        if b % 5 == 0 {
            block_on(flush(log)).unwrap();
        }
    }
    block_on(flush(log)).unwrap();
    model
}

/// Every record readable from the log start, decoded.
async fn read_records<D: Disk>(log: &PartitionLog<D>) -> Vec<KeyedRecord> {
    let bytes = read_all(log, log.start_offset(), 64 * 1024).await;
    let mut out = Vec::new();
    for (at, h) in BatchIter::new(&bytes, true) {
        let batch = &bytes[at..at + h.total_bytes()];
        let section = crate::protocol::records::records_section(batch, &h).unwrap();
        for r in crate::protocol::records::parse_records(&section, &h).unwrap() {
            out.push(KeyedRecord {
                offset: h.base_offset + i64::from(r.offset_delta),
                key: r.key.unwrap().to_vec(),
                value: r.value.map(<[u8]>::to_vec),
            });
        }
    }
    out
}

fn compact_config() -> LogConfig {
    LogConfig {
        segment_bytes: 4 * 1024,
        index_interval_bytes: 256,
        cleanup_delete: false,
        cleanup_compact: true,
        delete_retention_ms: 0,
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    }
}

/// Runs cleaner passes until there is nothing left to clean.
async fn clean_fully<D: Disk>(log: &mut PartitionLog<D>, now: i64) -> CleanStats {
    let mut total = CleanStats::default();
    for _ in 0..100 {
        let Some(job) = log.plan_clean(now) else {
            return total;
        };
        let stats = log.complete_clean(job.run().await).unwrap();
        total.records_dropped += stats.records_dropped;
        total.segments_in += stats.segments_in;
        total.segments_out += stats.segments_out;
    }
    panic!("the cleaner never finished");
}

/// The newest record of each key whose newest record is not a tombstone.
fn newest_live(model: &[KeyedRecord]) -> std::collections::BTreeMap<Vec<u8>, KeyedRecord> {
    let mut newest = std::collections::BTreeMap::new();
    for r in model {
        newest.insert(r.key.clone(), r.clone());
    }
    newest.retain(|_, r| r.value.is_some());
    newest
}

/// The log's records are original records, in offset order, and for every
/// key the last one read is the model's newest (or, for a key whose newest
/// record is a tombstone, that tombstone or nothing).
fn check_newest_semantics(read: &[KeyedRecord], model: &[KeyedRecord]) {
    let by_offset: std::collections::HashMap<i64, &KeyedRecord> =
        model.iter().map(|r| (r.offset, r)).collect();
    for pair in read.windows(2) {
        assert!(pair[0].offset < pair[1].offset, "offsets increase");
    }
    for r in read {
        assert_eq!(Some(&r), by_offset.get(&r.offset), "records are unchanged");
    }
    let mut last_read = std::collections::BTreeMap::new();
    for r in read {
        last_read.insert(r.key.clone(), r.clone());
    }
    let mut newest = std::collections::BTreeMap::new();
    for r in model {
        newest.insert(r.key.clone(), r.clone());
    }
    for (key, r) in &newest {
        match (r.value.is_some(), last_read.get(key)) {
            (true, got) => assert_eq!(got, Some(r), "key {key:?}"),
            (false, None) => {}
            (false, Some(got)) => assert_eq!(got, r, "key {key:?}"),
        }
    }
}

#[test]
fn compaction_keeps_the_newest_record_per_key() {
    block_on(async {
        let disk = MemDisk::new();
        let dir = mem_dir();
        let mut log = PartitionLog::open_on(disk.clone(), &dir, compact_config())
            .await
            .unwrap();
        let model = fill_keyed(&mut log, 400, 30);
        assert!(log.maybe_roll(i64::MAX / 2));
        flush(&mut log).await.unwrap();
        let (start, end, segments) = (log.start_offset(), log.end_offset(), log.segment_count());
        assert!(segments > 10);
        // A read-ahead window over a segment the cleaner swaps must not
        // serve the old bytes afterwards.
        log.set_cache_budget(CacheBudget::new(1 << 20, 256 * 1024));
        let first = log.plan_read(start, 64, end).unwrap().run().await.unwrap();
        assert!(!first.is_empty());
        assert!(log.cached_bytes() > 0, "the read kept a window");
        // A read job planned before the clean keeps working after it.
        let early = log.plan_read(0, 1 << 20, end).unwrap();
        let now = 10_000_000;
        let stats = clean_fully(&mut log, now).await;
        assert_eq!(log.cached_bytes(), 0, "the swap dropped the window");
        assert!(stats.records_dropped > 0 && stats.segments_out <= stats.segments_in);
        assert!(!early.run().await.unwrap().is_empty());
        assert_eq!((log.start_offset(), log.end_offset()), (start, end));
        let live = newest_live(&model);
        let read = read_records(&log).await;
        assert_eq!(
            read,
            live.values().cloned().collect::<Vec<_>>().tap_sort(),
            "exactly the newest live record of each key"
        );
        // Every offset still reads: a batch at or after it, never nothing.
        for offset in start..end {
            let bytes = log.plan_read(offset, 1, end).unwrap().run().await.unwrap();
            let h = BatchHeader::parse(&bytes).unwrap();
            assert!(h.last_offset() >= offset, "offset {offset}");
        }
        assert!(log.plan_clean(now).is_none(), "nothing dirty is left");
        // More appends, roll, clean again: the new segment is dirty.
        let more = fill_keyed(&mut log, 50, 30);
        assert!(log.maybe_roll(i64::MAX / 2));
        flush(&mut log).await.unwrap();
        clean_fully(&mut log, now).await;
        let all: Vec<KeyedRecord> = model.iter().chain(&more).cloned().collect();
        let read = read_records(&log).await;
        assert_eq!(
            read,
            newest_live(&all)
                .values()
                .cloned()
                .collect::<Vec<_>>()
                .tap_sort()
        );
        drop(log);
        let log = PartitionLog::open_on(disk, &dir, compact_config())
            .await
            .unwrap();
        assert_eq!(read_records(&log).await, read, "the cleaned log reopens");
    });
}

#[test]
fn compaction_respects_lag_and_tombstone_retention() {
    block_on(async {
        let disk = MemDisk::new();
        let mut config = compact_config();
        // At 1_500_000 every record (~1_000-2_000 ms) is past the lag and
        // every tombstone within delete.retention.ms.
        config.delete_retention_ms = 1_499_000;
        config.min_compaction_lag_ms = 1_000_000;
        let mut log = PartitionLog::open_on(disk, &mem_dir(), config.clone())
            .await
            .unwrap();
        let mut model = fill_keyed(&mut log, 200, 10);
        let dead: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..3)
            .map(|k| (format!("key-{k}").into_bytes(), None))
            .collect();
        let info = log.append(&keyed_batch(&dead, 2_000, 0), None).unwrap();
        for (i, (key, value)) in dead.into_iter().enumerate() {
            model.push(KeyedRecord {
                offset: info.base_offset + i as i64,
                key,
                value,
            });
        }
        assert!(log.maybe_roll(i64::MAX / 2));
        flush(&mut log).await.unwrap();
        // Records are at ~1_000 ms: within the lag at 500_000.
        assert!(log.plan_clean(500_000).is_none());
        clean_fully(&mut log, 1_500_000).await;
        let read = read_records(&log).await;
        check_newest_semantics(&read, &model);
        let tombstones = read.iter().filter(|r| r.value.is_none()).count();
        assert!(
            tombstones > 0,
            "tombstones younger than delete.retention.ms stay"
        );
        config.delete_retention_ms = 0;
        log.set_config(config);
        // Nothing is dirty; a restart (or new data) triggers the next pass.
        assert!(log.plan_clean(1_500_000).is_none());
    });
}

#[test]
fn compaction_swap_interrupted_at_every_step_recovers() {
    for renames in 0..16 {
        block_on(async {
            let disk = MemDisk::new();
            let dir = mem_dir();
            let mut config = compact_config();
            config.segment_bytes = 8 * 1024;
            let mut log = PartitionLog::open_on(disk.clone(), &dir, config.clone())
                .await
                .unwrap();
            let model = fill_keyed(&mut log, 150, 12);
            assert!(log.maybe_roll(i64::MAX / 2));
            flush(&mut log).await.unwrap();
            let end = log.end_offset();
            disk.faults(|f| f.renames_left = Some(renames));
            let job = log.plan_clean(10_000_000).unwrap();
            let outcome = job.run().await;
            let _ = log.complete_clean(outcome);
            // The running log reads right whatever happened on disk.
            check_newest_semantics(&read_records(&log).await, &model);
            drop(log);
            disk.faults(|f| f.renames_left = None);
            disk.crash(None);
            let mut log = PartitionLog::open_on(disk.clone(), &dir, config.clone())
                .await
                .unwrap_or_else(|e| panic!("reopen after {renames} renames: {e}"));
            assert_eq!(log.end_offset(), end);
            let names = disk.names(&dir);
            assert!(
                names
                    .iter()
                    .all(|n| !n.ends_with(".swap") && !n.ends_with(".cleaned")),
                "recovery leaves no swap files: {names:?}"
            );
            check_newest_semantics(&read_records(&log).await, &model);
            clean_fully(&mut log, 10_000_000).await;
            let read = read_records(&log).await;
            assert_eq!(
                read,
                newest_live(&model)
                    .values()
                    .cloned()
                    .collect::<Vec<_>>()
                    .tap_sort()
            );
        });
    }
}

trait TapSort {
    fn tap_sort(self) -> Self;
}

impl TapSort for Vec<KeyedRecord> {
    fn tap_sort(mut self) -> Self {
        self.sort_by_key(|r| r.offset);
        self
    }
}

// ---------------------------------------------------------------------------
// truncation (replication: Kafka's truncateTo and truncateFullyAndStartAt)

async fn truncate_to<D: Disk>(log: &mut PartitionLog<D>, offset: i64) -> Result<i64, LogError> {
    let job = log.plan_truncate(offset)?;
    assert!(log.truncate_in_flight());
    let outcome = job.run().await;
    log.complete_truncate(outcome)
}

async fn reset_to<D: Disk>(log: &mut PartitionLog<D>, offset: i64) -> Result<i64, LogError> {
    let job = log.plan_reset(offset)?;
    let outcome = job.run().await;
    log.complete_truncate(outcome)
}

fn last_offset(batch: &[u8]) -> i64 {
    BatchHeader::parse(batch).unwrap().last_offset()
}

fn max_ts(batch: &[u8]) -> i64 {
    BatchHeader::parse(batch).unwrap().max_timestamp
}

/// Appends `n` batches of 3 records (timestamps increasing from `ts0`),
/// flushing every few, and returns them as stored.
async fn append_batches<D: Disk>(
    log: &mut PartitionLog<D>,
    n: i64,
    ts0: i64,
    payload: usize,
) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    for i in 0..n {
        let b = make_batch(3, ts0 + i * 10, payload, i as u8);
        let info = log.append(&b, None).unwrap();
        out.push((info.base_offset, stored(&b, info.base_offset, None)));
        if i % 4 == 3 {
            flush(log).await.unwrap();
        }
    }
    flush(log).await.unwrap();
    out
}

/// The batches of `batches` that a truncation at `offset` keeps.
fn kept(batches: &[(i64, Vec<u8>)], offset: i64) -> Vec<(i64, Vec<u8>)> {
    batches
        .iter()
        .filter(|(_, b)| last_offset(b) < offset)
        .cloned()
        .collect()
}

/// The log holds exactly `batches` from its start: reads from every batch's
/// offsets, timestamp lookups, the max timestamp and the end agree.
async fn check_holds<D: Disk>(log: &PartitionLog<D>, batches: &[(i64, Vec<u8>)]) {
    let start = log.start_offset();
    let end = batches.last().map_or(start, |(_, b)| last_offset(b) + 1);
    assert_eq!(log.end_offset(), end, "end offset");
    assert_eq!(log.flushed_offset(), end, "flushed offset");
    let want = concat(batches);
    // (assert! rather than assert_eq!: a failure would print megabytes.)
    assert!(read_all(log, start, 1 << 20).await == want, "read back");
    assert!(
        read_all(log, start, 1).await == want,
        "read back batch by batch"
    );
    for (i, (base, b)) in batches.iter().enumerate() {
        for offset in [*base, last_offset(b)] {
            let got = log.plan_read(offset, 1, end).unwrap().run().await.unwrap();
            assert!(got[..] == b[..], "read at {offset}");
        }
        let ts = max_ts(b);
        let want = batches[..=i]
            .iter()
            .map(|(o, b)| (*o, max_ts(b)))
            .find(|(_, t)| *t >= ts);
        let got = log.plan_offset_for_timestamp(ts, end).run().await.unwrap();
        assert_eq!(got, want, "offset for timestamp {ts}");
    }
    let past = batches.iter().map(|(_, b)| max_ts(b)).max().unwrap_or(0) + 1;
    assert_eq!(
        log.plan_offset_for_timestamp(past, end)
            .run()
            .await
            .unwrap(),
        None
    );
    let want_max =
        batches
            .iter()
            .map(|(o, b)| (max_ts(b), *o))
            .fold(None, |best: Option<(i64, i64)>, x| match best {
                Some(b) if b.0 >= x.0 => Some(b),
                _ => Some(x),
            });
    assert_eq!(log.max_timestamp(), want_max, "max timestamp");
    let got = log
        .plan_read(end, 1 << 20, end)
        .unwrap()
        .run()
        .await
        .unwrap();
    assert!(got.is_empty(), "nothing past the end");
}

/// Appends after a truncation land at the new end and, with the kept
/// batches, survive a reopen (clean close, or a crash with `crash`).
async fn append_and_reopen(
    disk: &MemDisk,
    mut log: PartitionLog<MemDisk>,
    config: &LogConfig,
    mut batches: Vec<(i64, Vec<u8>)>,
    crash: bool,
) -> (PartitionLog<MemDisk>, Vec<(i64, Vec<u8>)>) {
    let end = log.end_offset();
    let more = append_batches(&mut log, 5, 50_000, 300).await;
    assert_eq!(more[0].0, end, "appends continue at the new end");
    batches.extend(more);
    check_holds(&log, &batches).await;
    if crash {
        drop(log);
        disk.crash(None);
    } else {
        log.close().await.unwrap();
    }
    let log = PartitionLog::open_on(disk.clone(), &mem_dir(), config.clone())
        .await
        .unwrap();
    check_holds(&log, &batches).await;
    (log, batches)
}

fn big_segments() -> LogConfig {
    LogConfig {
        index_interval_bytes: 512,
        ..LogConfig::default()
    }
}

#[test]
fn truncate_in_the_active_segment_straddling_at_a_boundary_and_no_op() {
    block_on(async {
        let disk = MemDisk::new();
        let config = big_segments();
        let mut log = PartitionLog::open_on(disk.clone(), &mem_dir(), config.clone())
            .await
            .unwrap();
        log.set_cache_budget(CacheBudget::new(4 << 20, 64 * 1024));
        let batches = append_batches(&mut log, 40, 1_000, 500).await;
        assert_eq!(log.segment_count(), 1);
        // Caught up, so the tail cache holds the last batches.
        read_all(&log, 0, 1 << 20).await;
        log.plan_read(log.end_offset(), 100, log.end_offset())
            .unwrap();
        log.append(&make_batch(1, 1, 10, 1), None).unwrap();
        assert!(matches!(log.plan_truncate(5), Err(LogError::Busy)));
        flush(&mut log).await.unwrap();
        let mut batches = batches;
        batches.push((120, stored(&make_batch(1, 1, 10, 1), 120, None)));

        // Inside a batch (offsets 90..=92): it goes too.
        assert_eq!(truncate_to(&mut log, 91).await.unwrap(), 90);
        let batches = kept(&batches, 91);
        check_holds(&log, &batches).await;
        // At or past the end: nothing to do.
        assert_eq!(truncate_to(&mut log, 90).await.unwrap(), 90);
        assert_eq!(truncate_to(&mut log, 1_000).await.unwrap(), 90);
        // Exactly at a batch boundary.
        assert_eq!(truncate_to(&mut log, 45).await.unwrap(), 45);
        let batches = kept(&batches, 45);
        check_holds(&log, &batches).await;
        assert_eq!(log.segment_count(), 1);
        // Inside the first batch: an empty log at its base.
        let (log, batches) = append_and_reopen(&disk, log, &config, batches, false).await;
        let (mut log, _) = append_and_reopen(&disk, log, &config, batches, true).await;
        assert_eq!(truncate_to(&mut log, 1).await.unwrap(), 0);
        check_holds(&log, &[]).await;
        let (_log, batches) = append_and_reopen(&disk, log, &config, Vec::new(), true).await;
        assert_eq!(batches[0].0, 0);
        assert!(!disk
            .names(&mem_dir())
            .contains(&TRUNCATE_INTENT_FILE.to_string()));
    });
}

#[test]
fn truncate_across_rolled_segments() {
    block_on(async {
        let disk = MemDisk::new();
        let dir = mem_dir();
        let config = small_config();
        let mut log = PartitionLog::open_on(disk.clone(), &dir, config.clone())
            .await
            .unwrap();
        let batches = append_batches(&mut log, 60, 1_000, 500).await;
        let segments = log.segment_count();
        assert!(segments >= 5, "{segments} segments");
        let log_files = |disk: &MemDisk| -> Vec<i64> {
            let mut v: Vec<i64> = disk
                .names(&dir)
                .iter()
                .filter_map(|n| segment::parse_log_name(n))
                .collect();
            v.sort_unstable();
            v
        };
        let bases = log_files(&disk);
        assert_eq!(bases.len(), segments);

        // Exactly at the base of the fourth segment: it stays as the empty
        // active segment; the ones after it go.
        let cut = bases[3];
        assert_eq!(truncate_to(&mut log, cut).await.unwrap(), cut);
        let batches = kept(&batches, cut);
        check_holds(&log, &batches).await;
        assert_eq!(log.segment_count(), 4);
        assert_eq!(log_files(&disk), bases[..4].to_vec());

        // Inside a closed segment (the second): it stays closed, cut, and a
        // new empty active segment starts at the new end.
        let cut = bases[1] + 7;
        let end = truncate_to(&mut log, cut).await.unwrap();
        assert_eq!(end, bases[1] + 6, "the straddling batch went");
        let batches = kept(&batches, cut);
        check_holds(&log, &batches).await;
        assert_eq!(log.segment_count(), 3);
        assert_eq!(log_files(&disk), vec![bases[0], bases[1], end]);
        for name in disk.names(&dir) {
            if let Some(base) = name
                .strip_suffix(".index")
                .or_else(|| name.strip_suffix(".timeindex"))
            {
                let base: i64 = base.parse().unwrap();
                assert!(base <= end, "index files of removed segments go: {name}");
            }
        }
        let (log, batches) = append_and_reopen(&disk, log, &config, batches, true).await;
        let (mut log, batches) = append_and_reopen(&disk, log, &config, batches, false).await;
        // At the first segment's base: a reset there.
        assert_eq!(truncate_to(&mut log, 0).await.unwrap(), 0);
        check_holds(&log, &[]).await;
        assert_eq!(log.segment_count(), 1);
        assert_eq!(log_files(&disk), vec![0]);
        drop(batches);
        append_and_reopen(&disk, log, &config, Vec::new(), true).await;
    });
}

#[test]
fn reset_above_and_below_the_end() {
    block_on(async {
        let disk = MemDisk::new();
        let dir = mem_dir();
        let config = small_config();
        let mut log = PartitionLog::open_on(disk.clone(), &dir, config.clone())
            .await
            .unwrap();
        append_batches(&mut log, 30, 1_000, 500).await;
        let end = log.end_offset();
        assert_eq!(reset_to(&mut log, end + 1_000).await.unwrap(), end + 1_000);
        assert_eq!(log.start_offset(), end + 1_000);
        assert_eq!(log.segment_count(), 1);
        check_holds(&log, &[]).await;
        assert!(matches!(
            log.plan_read(end, 10, end + 1_000),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        let (mut log, batches) = append_and_reopen(&disk, log, &config, Vec::new(), true).await;
        assert_eq!(log.start_offset(), end + 1_000);
        assert_eq!(batches[0].0, end + 1_000);
        let more = append_batches(&mut log, 30, 2_000, 500).await;
        assert!(log.segment_count() > 1);
        drop(more);
        // Below the end but above the first base: everything goes still.
        assert_eq!(reset_to(&mut log, end + 1_010).await.unwrap(), end + 1_010);
        assert_eq!(log.start_offset(), end + 1_010);
        check_holds(&log, &[]).await;
        let (log, batches) = append_and_reopen(&disk, log, &config, Vec::new(), true).await;
        assert_eq!(log.start_offset(), end + 1_010);
        let (mut log, _) = append_and_reopen(&disk, log, &config, batches, false).await;
        // Below the first base.
        assert_eq!(reset_to(&mut log, 3).await.unwrap(), 3);
        let (log, _) = append_and_reopen(&disk, log, &config, Vec::new(), true).await;
        assert_eq!(log.start_offset(), 3);
        let logs: Vec<String> = disk
            .names(&dir)
            .into_iter()
            .filter(|n| n.ends_with(".log"))
            .collect();
        assert_eq!(logs.len(), log.segment_count());
    });
}

#[test]
fn truncate_below_the_log_start_moves_it_back_durably() {
    block_on(async {
        let disk = MemDisk::new();
        let config = small_config();
        let mut log = PartitionLog::open_on(disk.clone(), &mem_dir(), config.clone())
            .await
            .unwrap();
        append_batches(&mut log, 40, 1_000, 500).await;
        let job = log.delete_records_before(90).unwrap().unwrap();
        assert!(
            matches!(log.plan_truncate(60), Err(LogError::Busy)),
            "a retention job is out"
        );
        job.run().await.unwrap();
        assert_eq!(log.start_offset(), 90);
        let first = disk
            .names(&mem_dir())
            .iter()
            .filter_map(|n| segment::parse_log_name(n))
            .min()
            .unwrap();
        assert!(first > 0 && first < 87, "first segment base {first}");
        // Above the first segment, below the start: the start follows the end.
        assert_eq!(truncate_to(&mut log, 87).await.unwrap(), 87);
        assert_eq!(log.start_offset(), 87);
        // (Batches below the start stay in their segment: no check_holds,
        // whose max timestamp would be theirs.)
        assert!(read_all(&log, 87, 1 << 20).await.is_empty());
        // Appends past the old start survive a reopen from the new start.
        let (mut log, batches) = append_and_reopen(&disk, log, &config, Vec::new(), true).await;
        assert_eq!(log.start_offset(), 87);
        assert_eq!(batches[0].0, 87);
        // DeleteRecords works again from there.
        log.delete_records_before(90)
            .unwrap()
            .unwrap()
            .run()
            .await
            .unwrap();
        assert_eq!(log.start_offset(), 90);
    });
}

#[test]
fn truncate_is_refused_while_busy_and_blocks_other_work() {
    block_on(async {
        let disk = MemDisk::new();
        let mut config = small_config();
        config.cleanup_compact = true;
        let mut log = PartitionLog::open_on(disk.clone(), &mem_dir(), config)
            .await
            .unwrap();
        let batches = append_batches(&mut log, 30, 1_000, 500).await;
        log.append(&make_batch(1, 1, 10, 1), None).unwrap();
        let flush_job = log.take_flush().unwrap();
        assert!(matches!(log.plan_truncate(10), Err(LogError::Busy)));
        assert!(matches!(log.plan_reset(10), Err(LogError::Busy)));
        let outcome = flush_job.run(false).await;
        log.complete_flush(outcome).unwrap();
        assert!(
            matches!(log.plan_truncate(10), Err(LogError::Busy)),
            "written but not synced"
        );
        flush(&mut log).await.unwrap();
        assert!(log.maybe_roll(i64::MAX / 2));
        assert!(
            matches!(log.plan_truncate(10), Err(LogError::Busy)),
            "a roll not yet flushed"
        );
        flush(&mut log).await.unwrap();

        let job = log.plan_truncate(10).unwrap();
        assert!(matches!(log.plan_truncate(10), Err(LogError::Busy)));
        assert!(matches!(
            log.append(&make_batch(1, 1, 10, 1), None),
            Err(LogError::Busy)
        ));
        assert!(log.take_flush().is_none());
        assert!(log.take_retention(i64::MAX / 2).is_none());
        assert!(log.plan_clean(i64::MAX / 2).is_none());
        assert!(!log.maybe_roll(i64::MAX / 2));
        assert!(matches!(log.delete_records_before(5), Err(LogError::Busy)));
        let outcome = job.run().await;
        assert!(outcome.is_ok());
        assert_eq!(log.complete_truncate(outcome).unwrap(), 9);
        check_holds(&log, &kept(&batches, 10)).await;
        assert_eq!(LogError::Busy.to_string(), "log is busy");
    });
}

#[test]
fn truncate_io_failure_takes_the_log_offline_and_reopen_finishes_it() {
    for changes in [0, 3, 6, 9, 14] {
        block_on(async {
            let disk = MemDisk::new();
            let config = small_config();
            let mut log = PartitionLog::open_on(disk.clone(), &mem_dir(), config.clone())
                .await
                .unwrap();
            let batches = append_batches(&mut log, 60, 1_000, 500).await;
            let old_end = log.end_offset();
            disk.faults(|f| f.changes_left = Some(changes));
            let err = truncate_to(&mut log, 40).await.unwrap_err();
            assert!(matches!(err, LogError::Io(_)), "{err}");
            assert!(log.is_failed());
            assert_eq!(log.end_offset(), old_end, "memory is not half cut");
            assert!(matches!(
                log.append(&make_batch(1, 1, 10, 1), None),
                Err(LogError::Failed)
            ));
            assert!(log.take_flush().is_none());
            assert!(matches!(log.plan_truncate(40), Err(LogError::Failed)));
            drop(log);
            disk.faults(|f| f.changes_left = None);
            let intent_left = disk
                .names(&mem_dir())
                .contains(&TRUNCATE_INTENT_FILE.to_string());
            let log = PartitionLog::open_on(disk.clone(), &mem_dir(), config.clone())
                .await
                .unwrap();
            // The intent on disk: the reopen finishes the cut.
            let is_new = log.end_offset() != old_end;
            assert!(is_new || !intent_left);
            assert!(
                is_new || changes < 5,
                "the intent is durable after 5 changes"
            );
            let want = if is_new {
                kept(&batches, 40)
            } else {
                batches.clone()
            };
            check_holds(&log, &want).await;
        });
    }
}

/// A crash at every step of a truncation (or reset) reopens to the old log
/// or the cut one, never anything in between, and appends then work.
fn crash_at_every_step(cut: impl Fn(&[i64]) -> (i64, bool)) {
    let mut finished = false;
    for changes in 0..200 {
        block_on(async {
            let disk = MemDisk::new();
            let dir = mem_dir();
            let config = small_config();
            let mut log = PartitionLog::open_on(disk.clone(), &dir, config.clone())
                .await
                .unwrap();
            let batches = append_batches(&mut log, 60, 1_000, 500).await;
            let mut bases: Vec<i64> = disk
                .names(&dir)
                .iter()
                .filter_map(|n| segment::parse_log_name(n))
                .collect();
            bases.sort_unstable();
            let (offset, reset) = cut(&bases);
            let old = batches.clone();
            let new = if reset {
                Vec::new()
            } else {
                kept(&batches, offset)
            };
            disk.faults(|f| f.changes_left = Some(changes));
            let job = if reset {
                log.plan_reset(offset)
            } else {
                log.plan_truncate(offset)
            };
            let outcome = job.unwrap().run().await;
            let done = log.complete_truncate(outcome);
            disk.faults(|f| f.changes_left = None);
            let intent_left = disk.names(&dir).contains(&TRUNCATE_INTENT_FILE.to_string());
            if done.is_ok() {
                finished = true;
            }
            drop(log);
            disk.crash(None);
            let log = PartitionLog::open_on(disk.clone(), &dir, config.clone())
                .await
                .unwrap_or_else(|e| panic!("reopen after {changes} changes: {e}"));
            let old_end = old.last().map_or(0, |(_, b)| last_offset(b) + 1);
            let is_new = if reset {
                log.start_offset() == offset
            } else {
                log.end_offset() != old_end
            };
            if done.is_ok() || intent_left {
                assert!(is_new, "after {changes} changes");
            }
            let holds = if is_new { new } else { old };
            check_holds(&log, &holds).await;
            let names = disk.names(&dir);
            assert!(!names.contains(&TRUNCATE_INTENT_FILE.to_string()));
            append_and_reopen(&disk, log, &config, holds, true).await;
        });
        if finished {
            return;
        }
    }
    panic!("the job never finished");
}

#[test]
fn truncate_in_the_active_segment_crash_at_every_step() {
    crash_at_every_step(|bases| (bases[bases.len() - 1] + 4, false));
}

#[test]
fn truncate_in_a_closed_segment_crash_at_every_step() {
    crash_at_every_step(|bases| (bases[1] + 4, false));
}

#[test]
fn reset_crash_at_every_step() {
    crash_at_every_step(|_| (7, true));
}

#[test]
fn dma_truncate_append_and_reopen() {
    on_glommio(|| async move {
        let (_root, dir) = temp_dir("t-trunc");
        let config = LogConfig {
            segment_bytes: 16 * 1024,
            index_interval_bytes: 1024,
            ..LogConfig::default()
        };
        let mut log = PartitionLog::open(&dir, config.clone()).await.unwrap();
        let batches = append_batches(&mut log, 40, 1_000, 700).await;
        assert!(log.segment_count() >= 2);
        // In the active segment, inside a batch.
        let cut = log.end_offset() - 5;
        let end = truncate_to(&mut log, cut).await.unwrap();
        let mut batches = kept(&batches, cut);
        check_holds(&log, &batches).await;
        // Into the first (closed) segment.
        let cut = 10;
        assert_eq!(truncate_to(&mut log, cut).await.unwrap(), 9);
        assert!(end > 9);
        batches = kept(&batches, cut);
        check_holds(&log, &batches).await;
        let more = append_batches(&mut log, 30, 9_000, 700).await;
        batches.extend(more);
        check_holds(&log, &batches).await;
        log.close().await.unwrap();
        let log = PartitionLog::open(&dir, config.clone()).await.unwrap();
        check_holds(&log, &batches).await;
        // A crash-like stop (no close) right after a truncation.
        let mut log = log;
        assert_eq!(truncate_to(&mut log, 50).await.unwrap(), 48);
        batches = kept(&batches, 50);
        drop(log);
        let mut log = PartitionLog::open(&dir, config.clone()).await.unwrap();
        check_holds(&log, &batches).await;
        assert_eq!(reset_to(&mut log, 500).await.unwrap(), 500);
        let more = append_batches(&mut log, 3, 9_000, 700).await;
        drop(log);
        let log = PartitionLog::open(&dir, config).await.unwrap();
        assert_eq!(log.start_offset(), 500);
        check_holds(&log, &more).await;
        assert_eq!(names(&dir, ".log"), vec![format!("{:020}.log", 500)]);
    });
}

// ---------------------------------------------------------------------------
// Stored bytes are never trusted: recovery, marking, scrub

/// A CRC-valid batch whose header claims two records while it holds one:
/// the header is consistent, only the record walk finds it short.
fn poisoned_batch() -> Vec<u8> {
    let mut b = make_batch(1, 7_000, 40, 0xee);
    b[23..27].copy_from_slice(&1i32.to_be_bytes());
    b[57..61].copy_from_slice(&2i32.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    assert!(BatchHeader::parse(&b).unwrap().check_consistent().is_ok());
    assert!(crate::protocol::records::check_stored_batch(&b).is_err());
    b
}

fn mem_open(disk: &MemDisk, config: &LogConfig) -> PartitionLog<MemDisk> {
    block_on(PartitionLog::open_on(
        disk.clone(),
        &mem_dir(),
        config.clone(),
    ))
    .unwrap()
}

/// Segment bases of the log's directory.
fn bases(disk: &MemDisk) -> Vec<i64> {
    let mut v: Vec<i64> = disk
        .names(&mem_dir())
        .iter()
        .filter_map(|n| segment::parse_log_name(n))
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn poisoned_batch_in_the_active_tail_is_cut_at_open() {
    let disk = MemDisk::new();
    let mut log = mem_open(&disk, &small_config());
    for i in 0..4 {
        log.append(&make_batch(2, 5_000 + i, 100, i as u8), None)
            .unwrap();
    }
    block_on(flush(&mut log)).unwrap();
    let good_end = log.end_offset();
    // Stored as an older broker would have stored it (no validation).
    log.append(&poisoned_batch(), None).unwrap();
    block_on(flush(&mut log)).unwrap();
    let path = log_path(&mem_dir(), 0);
    let poisoned_len = disk.file_len(&path).unwrap();
    drop(log); // a crash: the active segment has no index files
    let mut log = mem_open(&disk, &small_config());
    assert_eq!(log.end_offset(), good_end, "the poisoned batch was cut");
    assert!(disk.file_len(&path).unwrap() < poisoned_len);
    let all = block_on(read_all(&log, 0, 4096));
    assert_eq!(BatchIter::new(&all, true).count(), 4);
    // The log goes on from there.
    log.append(&make_batch(1, 6_000, 10, 1), None).unwrap();
    assert_eq!(block_on(flush(&mut log)).unwrap(), good_end + 1);
}

/// Fills a few closed segments, closes the log cleanly (index files
/// written) and returns the stored batches.
fn closed_segments(disk: &MemDisk) -> Vec<(i64, Vec<u8>)> {
    let mut log = mem_open(disk, &small_config());
    let batches = fill_segments(&mut log, 60, 1_000);
    assert!(log.segment_count() >= 4);
    block_on(log.close()).unwrap();
    batches
}

/// Flips a byte in the records of the `n`th batch of segment `base`;
/// returns that batch's (base offset, position in the file).
fn damage_batch(
    disk: &MemDisk,
    batches: &[(i64, Vec<u8>)],
    base: i64,
    next: i64,
    n: usize,
) -> (i64, u64) {
    let mut position = 0u64;
    let in_segment: Vec<_> = batches
        .iter()
        .filter(|(b, _)| *b >= base && *b < next)
        .collect();
    for (_, bytes) in in_segment.iter().take(n) {
        position += bytes.len() as u64;
    }
    let (offset, bytes) = in_segment[n];
    disk.flip_byte(
        &log_path(&mem_dir(), base),
        position as usize + bytes.len() - 5,
    );
    (*offset, position)
}

#[test]
fn corrupt_closed_segment_found_at_open_is_marked_not_cut() {
    let disk = MemDisk::new();
    let batches = closed_segments(&disk);
    let segs = bases(&disk);
    let (base, next) = (segs[1], segs[2]);
    let (bad, position) = damage_batch(&disk, &batches, base, next, 2);
    let size_before = disk.file_len(&log_path(&mem_dir(), base)).unwrap();
    // Without index files the open rebuilds them by scanning and finds it.
    block_on(disk.remove(&index_path(&mem_dir(), base))).unwrap();
    let log = mem_open(&disk, &small_config());
    let upper = log.flushed_offset();
    assert_eq!(log.corrupt_ranges(), vec![(base, bad, next)]);
    assert_eq!(
        disk.file_len(&log_path(&mem_dir(), base)).unwrap(),
        size_before,
        "acknowledged batches after the damage are kept on disk"
    );
    assert!(!disk
        .names(&mem_dir())
        .contains(&format!("{base:020}.index")));
    // Before the damage: served, and never past it.
    let before = block_on(log.plan_read(base, 1 << 20, upper).unwrap().run()).unwrap();
    assert_eq!(before.len() as u64, position);
    assert_eq!(
        BatchIter::new(&before, true)
            .last()
            .unwrap()
            .1
            .last_offset(),
        bad - 1
    );
    // At and after it, within the segment: an error, not a skip.
    for offset in [bad, next - 1] {
        assert!(matches!(
            log.plan_read(offset, 1 << 20, upper),
            Err(LogError::Corrupt(_))
        ));
    }
    assert_eq!(log.unreadable_end(bad), Some(next));
    assert_eq!(log.unreadable_end(bad - 1), None);
    // The next segments serve as before.
    let after = block_on(read_all(&log, next, 4096));
    let expected: Vec<u8> = concat(
        &batches
            .iter()
            .filter(|(b, _)| *b >= next)
            .cloned()
            .collect::<Vec<_>>(),
    );
    assert_eq!(after, expected);
    // A timestamp whose answer may lie in the damage is an error too.
    let damaged_ts = 1_000 + (bad / 3) * 10;
    let found = block_on(log.plan_offset_for_timestamp(damaged_ts, upper).run());
    assert!(matches!(found, Err(LogError::Corrupt(_))), "{found:?}");
    // Found at open, the damaged records' timestamps were never known: a
    // later timestamp could be among them, so it is an error too.
    let later = block_on(
        log.plan_offset_for_timestamp(1_000 + (next / 3) * 10, upper)
            .run(),
    );
    assert!(matches!(later, Err(LogError::Corrupt(_))), "{later:?}");
    // The cleaner leaves it alone; the mark survives a reopen.
    drop(log);
    let mut log = mem_open(&disk, &small_config());
    assert_eq!(log.corrupt_ranges(), vec![(base, bad, next)]);
    // DeleteRecords past it makes the log whole again.
    let job = log.delete_records_before(next).unwrap().unwrap();
    block_on(job.run()).unwrap();
    assert!(log.corrupt_ranges().is_empty());
    assert_eq!(block_on(read_all(&log, next, 4096)), expected);
}

/// Runs scrub steps until none is due; returns (steps, rolled).
fn scrub_all(log: &mut PartitionLog<MemDisk>, now: i64) -> (usize, bool) {
    let mut steps = 0;
    let mut rolled = false;
    while let Some(job) = log.plan_scrub(now, 1_000_000) {
        let outcome = block_on(job.run());
        assert!(outcome.io_error.is_none());
        rolled |= log.complete_scrub(outcome, now);
        steps += 1;
        assert!(steps < 10_000, "the scrub makes progress");
    }
    (steps, rolled)
}

#[test]
fn scrub_finds_damage_in_a_trusted_closed_segment() {
    let disk = MemDisk::new();
    let batches = closed_segments(&disk);
    let segs = bases(&disk);
    let (base, next) = (segs[2], segs[3]);
    let (bad, _) = damage_batch(&disk, &batches, base, next, 1);
    let mut log = mem_open(&disk, &small_config());
    assert!(
        log.corrupt_ranges().is_empty(),
        "index files were trusted: nothing read yet"
    );
    let (steps, rolled) = scrub_all(&mut log, 10_000);
    assert!(steps >= segs.len() - 1, "every closed segment is scrubbed");
    assert!(!rolled);
    assert_eq!(log.corrupt_ranges(), vec![(base, bad, next)]);
    assert!(!disk
        .names(&mem_dir())
        .contains(&format!("{base:020}.index")));
    assert!(matches!(
        log.plan_read(bad, 100, log.flushed_offset()),
        Err(LogError::Corrupt(_))
    ));
    // Its time index was known before the damage was: a timestamp past
    // the segment is answered from the next one, one inside it is an error.
    let upper = log.flushed_offset();
    let inside = block_on(
        log.plan_offset_for_timestamp(1_000 + (bad / 3) * 10, upper)
            .run(),
    );
    assert!(matches!(inside, Err(LogError::Corrupt(_))), "{inside:?}");
    let after = block_on(
        log.plan_offset_for_timestamp(1_000 + (next / 3) * 10, upper)
            .run(),
    );
    assert_eq!(after.unwrap().map(|(offset, _)| offset), Some(next));
    // Verified segments are not read again until the interval passed.
    assert!(log.plan_scrub(10_001, 1_000_000).is_none());
    assert!(log.plan_scrub(10_000 + 1_000_000, 1_000_000).is_some());
    // The next open finds it by itself (the index files are gone).
    drop(log);
    let log = mem_open(&disk, &small_config());
    assert_eq!(log.corrupt_ranges(), vec![(base, bad, next)]);
}

#[test]
fn scrub_verifies_the_active_prefix_and_rolls_away_from_damage() {
    let disk = MemDisk::new();
    let config = LogConfig {
        segment_bytes: 1 << 20,
        index_interval_bytes: 512,
        ..LogConfig::default()
    };
    let mut log = mem_open(&disk, &config);
    let mut batches = Vec::new();
    for i in 0..30 {
        // The newest timestamps early in the segment: recovery resumes
        // from the last index entry only when no time-index entry lies
        // past it.
        let ts = if i < 10 { 2_000 + i } else { 1_000 };
        let b = make_batch(2, ts, 300, i as u8);
        let info = log.append(&b, None).unwrap();
        batches.push((info.base_offset, stored(&b, info.base_offset, None)));
    }
    block_on(flush(&mut log)).unwrap();
    block_on(log.close()).unwrap();
    let (bad, _) = damage_batch(&disk, &batches, 0, i64::MAX, 3);
    let mut log = mem_open(&disk, &config);
    assert_eq!(log.segment_count(), 1);
    assert!(log.corrupt_ranges().is_empty(), "recovery resumed past it");
    let end = log.end_offset();
    assert_eq!(end, batches.len() as i64 * 2, "recovery resumed past it");
    assert!(log.segments.back().unwrap().scrub_pending());
    let (_, rolled) = scrub_all(&mut log, 50_000);
    assert!(rolled, "a damaged active segment is rolled");
    block_on(flush(&mut log)).unwrap();
    assert_eq!(log.segment_count(), 2);
    assert_eq!(log.corrupt_ranges(), vec![(0, bad, end)]);
    // New appends land in a readable segment.
    let b = make_batch(1, 9_000, 50, 1);
    let info = log.append(&b, None).unwrap();
    assert_eq!(info.base_offset, end);
    block_on(flush(&mut log)).unwrap();
    let read = block_on(
        log.plan_read(end, 4096, log.flushed_offset())
            .unwrap()
            .run(),
    )
    .unwrap();
    assert_eq!(&read[..], &stored(&b, end, None)[..]);
    // The damaged segment was finalized without index files.
    assert!(!disk.names(&mem_dir()).contains(&format!("{:020}.index", 0)));
    drop(log);
    let log = mem_open(&disk, &config);
    assert_eq!(log.corrupt_ranges(), vec![(0, bad, end)]);
}

#[test]
fn failing_reads_are_errors_and_leave_no_mark() {
    let disk = MemDisk::new();
    closed_segments(&disk);
    let mut log = mem_open(&disk, &small_config());
    disk.faults(|f| f.fail_reads = true);
    let upper = log.flushed_offset();
    let read = block_on(log.plan_read(0, 100, upper).unwrap().run());
    assert!(matches!(read, Err(LogError::Io(_))), "{read:?}");
    let job = log.plan_scrub(1, 1_000).expect("a segment to scrub");
    let outcome = block_on(job.run());
    assert!(outcome.io_error.is_some());
    assert!(!log.complete_scrub(outcome, 1));
    assert!(
        log.corrupt_ranges().is_empty(),
        "an I/O error is not corruption"
    );
    disk.faults(|f| f.fail_reads = false);
    assert!(!block_on(log.plan_read(0, 100, upper).unwrap().run())
        .unwrap()
        .is_empty());
}

/// A read smaller than the batch it starts at: by default it returns that
/// batch whole (KIP-74) from one more read at the batch (not a scan);
/// `within_max_bytes` returns nothing instead. With room, both return
/// every batch that fits.
#[test]
fn a_read_smaller_than_its_batch_returns_it_whole_or_nothing_within() {
    block_on(async {
        let disk = MemDisk::new();
        let dir = mem_dir();
        let mut log = PartitionLog::open_on(disk.clone(), &dir, small_config())
            .await
            .unwrap();
        let big = make_batch(5, 1_000, 4_000, 1);
        let small = make_batch(1, 1_000, 10, 2);
        let first = log.append(&big, None).unwrap().base_offset;
        let second = log.append(&small, None).unwrap().base_offset;
        flush(&mut log).await.unwrap();
        let end = log.end_offset();
        let big_stored = stored(&big, first, None);
        let small_stored = stored(&small, second, None);

        let whole = log.plan_read(first, 100, end).unwrap().run().await.unwrap();
        assert_eq!(&whole[..], &big_stored[..], "the first batch, whole");
        let within = log
            .plan_read(first, 100, end)
            .unwrap()
            .within_max_bytes()
            .run()
            .await
            .unwrap();
        assert!(within.is_empty(), "nothing fits 100 bytes");

        let room = big_stored.len() + small_stored.len();
        let both = log
            .plan_read(first, room, end)
            .unwrap()
            .within_max_bytes()
            .run()
            .await
            .unwrap();
        assert_eq!(both.len(), room, "both batches fit");
        let small_only = log
            .plan_read(second, small_stored.len(), end)
            .unwrap()
            .within_max_bytes()
            .run()
            .await
            .unwrap();
        assert_eq!(&small_only[..], &small_stored[..]);
    });
}
