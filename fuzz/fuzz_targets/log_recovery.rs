//! Opening a partition log over damaged files: segments, offset and time
//! indexes, the log-start-offset checkpoint, a truncation intent and the
//! cleaner's `.cleaned` / `.swap` files, on the in-memory disk
//! (`io::MemDisk`). A log that opens must serve reads, ListOffsets and
//! header scans without panicking, accept an append and flush it, and open
//! again to the same offsets (recovery is idempotent; nothing flushed is
//! lost).
//!
//! Input: `[control u8]` then up to 16 files, each
//! `[kind u8][base offset i64 LE][length u32 LE][content]`; the kind picks
//! the file name (see `name`). Control bit 0 recomputes the CRC of every
//! batch in segment files; bits 1-2 pick segment.bytes and
//! index.interval.bytes; bit 3 closes the log cleanly before reopening
//! (otherwise it is dropped, as in a crash).

#![no_main]

use std::path::{Path, PathBuf};

use corelog::io::{write_whole_file, Disk, MemDisk};
use corelog::log::{LogConfig, LogError, PartitionLog, START_CHECKPOINT_FILE, TRUNCATE_INTENT_FILE};
use corelog_fuzz::{block_on, flush, read_like_clients, valid_batch, Reader, MEM_DIR};
use libfuzzer_sys::fuzz_target;

const FILES_MAX: usize = 16;

fn name(kind: u8, base: i64) -> (String, bool) {
    let base = base & i64::MAX;
    match kind % 9 {
        0 => (format!("{base:020}.log"), true),
        1 => (format!("{base:020}.index"), false),
        2 => (format!("{base:020}.timeindex"), false),
        3 => (START_CHECKPOINT_FILE.to_string(), false),
        4 => (TRUNCATE_INTENT_FILE.to_string(), false),
        5 => (format!("{base:020}.log.swap"), true),
        6 => (format!("{base:020}.log.cleaned"), true),
        7 => (format!("{base:020}.index.swap"), false),
        _ => (format!("{TRUNCATE_INTENT_FILE}.tmp"), false),
    }
}

fn config(control: u8) -> LogConfig {
    let (segment_bytes, index_interval_bytes) = match (control >> 1) & 3 {
        0 => (1024 * 1024 * 1024, 4096),
        1 => (1024, 1),
        2 => (16 * 1024, 512),
        _ => (100, 64),
    };
    LogConfig {
        segment_bytes,
        index_interval_bytes,
        ..LogConfig::default()
    }
}

async fn run(data: &[u8]) {
    let mut input = Reader::new(data);
    let control = input.u8();
    let dir = PathBuf::from(MEM_DIR);
    let disk = MemDisk::new();
    disk.create_dir_all(&dir).await.expect("memory disk");
    for _ in 0..FILES_MAX {
        if input.is_empty() {
            break;
        }
        let kind = input.u8();
        let base = input.i64();
        let mut content = input.field().to_vec();
        let (file, holds_batches) = name(kind, base);
        if holds_batches && control & 1 != 0 {
            corelog_fuzz::fix_batch_crcs(&mut content);
        }
        write_whole_file(&disk, &Path::new(MEM_DIR).join(file), &content)
            .await
            .expect("memory disk");
    }
    let config = config(control);
    let Ok(mut log) = PartitionLog::open_on(disk.clone(), &dir, config.clone()).await else {
        return;
    };
    read_like_clients(&log, 64 * 1024).await;
    // A recovered log takes appends again (unless the offset space is
    // exhausted), and they survive a reopen.
    let before = log.end_offset();
    let appended = match log.append(&valid_batch(3, 1_700_000_000_000), None) {
        Ok(info) => {
            assert_eq!((info.base_offset, info.last_offset), (before, before + 2));
            true
        }
        Err(LogError::OffsetOverflow { .. }) => {
            assert!(before > i64::MAX - 3, "offsets overflow at {before}");
            false
        }
        Err(_) => false,
    };
    let flushed = flush(&mut log).await;
    if appended && flushed.is_ok() {
        assert_eq!(
            log.flushed_offset(),
            before + 3,
            "a flushed append is durable"
        );
    }
    let (start, end) = (log.start_offset(), log.flushed_offset());
    if control & 8 != 0 {
        if log.close().await.is_err() {
            return;
        }
    } else {
        drop(log);
    }
    let again = PartitionLog::open_on(disk, &dir, config)
        .await
        .expect("a log that opened and flushed opens again");
    assert_eq!(again.start_offset(), start, "reopen moved the log start");
    assert_eq!(again.end_offset(), end, "reopen changed the log end");
    read_like_clients(&again, 1024).await;
}

fuzz_target!(|data: &[u8]| {
    block_on(run(data));
});
