//! Appending fetched batches to a follower's log, as the fetcher and
//! `append_replicated` do with a leader's Fetch response
//! (`partition/replica.rs`): the set is checked by `FetchedBatches::check`
//! (the stored-batch parser on every batch) and each batch that continues
//! the log is appended as it is. Also the leader's path, where a batch is
//! appended only after produce validation (`records::validate_produce`).
//! Then flush, crash (keeping only what was synced), reopen and read: what
//! was flushed must come back, at the offsets it was appended at.
//!
//! Input: `[control u8]` then up to 8 fetched record sets, each
//! `[length u32 LE][records]`. Control bit 0 recomputes batch CRCs, bit 1
//! takes the leader's path (validate, then append with LogAppendTime when
//! bit 2 is set), bits 3-4 pick segment.bytes and index.interval.bytes.

#![no_main]

use std::path::PathBuf;

use corelog::io::MemDisk;
use corelog::log::{LogConfig, PartitionLog};
use corelog::partition::replica::FetchedBatches;
use corelog::protocol::batch::BatchIter;
use corelog::protocol::records::{validate_produce, ProduceRules};
use corelog_fuzz::{block_on, flush, read_like_clients, Reader, MEM_DIR};
use libfuzzer_sys::fuzz_target;

const FETCHES_MAX: usize = 8;

fn config(control: u8) -> LogConfig {
    let (segment_bytes, index_interval_bytes) = match (control >> 3) & 3 {
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
    let leader = control & 2 != 0;
    let dir = PathBuf::from(MEM_DIR);
    let disk = MemDisk::new();
    let config = config(control);
    let mut log = PartitionLog::open_on(disk.clone(), &dir, config.clone())
        .await
        .expect("an empty log opens");
    // (base, last) of every batch the log acknowledged as flushed.
    let mut flushed: Vec<(i64, i64)> = Vec::new();
    let mut pending: Vec<(i64, i64)> = Vec::new();
    for _ in 0..FETCHES_MAX {
        if input.is_empty() {
            break;
        }
        let mut records = input.field().to_vec();
        if control & 1 != 0 {
            corelog_fuzz::fix_batch_crcs(&mut records);
        }
        if leader {
            for (at, header) in BatchIter::new(&records, true) {
                let bytes = &records[at..at + header.total_bytes()];
                let rules = ProduceRules {
                    max_message_bytes: usize::MAX,
                    now_ms: 1_700_000_000_000,
                    log_append_time: control & 4 != 0,
                    timestamp_before_max_ms: i64::MAX,
                    timestamp_after_max_ms: i64::MAX,
                    require_keys: false,
                    zstd_allowed: true,
                };
                if validate_produce(bytes, &rules).is_err() {
                    continue;
                }
                let append_time = (control & 4 != 0).then_some(1_700_000_000_000);
                let Ok(info) = log.append(bytes, append_time) else {
                    break;
                };
                assert!(
                    info.last_offset >= info.base_offset,
                    "an appended batch covers offsets"
                );
                pending.push((info.base_offset, info.last_offset));
            }
        } else {
            // What the fetcher and `append_replicated` do: the whole set is
            // checked first, then each batch that continues the log is
            // appended at the leader's offsets.
            let Ok(fetched) = FetchedBatches::check(&records) else {
                continue;
            };
            let mut at = 0;
            for header in fetched.headers() {
                let bytes = &records[at..at + header.total_bytes()];
                at += header.total_bytes();
                if header.base_offset != log.end_offset() {
                    break;
                }
                let Ok(info) = log.append(bytes, None) else {
                    break;
                };
                assert_eq!(
                    (info.base_offset, info.last_offset),
                    (header.base_offset, header.last_offset()),
                    "a follower keeps the leader's offsets"
                );
                pending.push((info.base_offset, info.last_offset));
            }
        }
        if flush(&mut log).await.is_ok() {
            flushed.append(&mut pending);
        } else {
            pending.clear();
        }
    }
    let end = log.flushed_offset();
    drop(log);
    disk.crash(None);
    let again = PartitionLog::open_on(disk, &dir, config)
        .await
        .expect("a log written by appends opens again");
    assert_eq!(
        again.end_offset(),
        end,
        "a crash lost or invented flushed offsets"
    );
    let read = read_like_clients(&again, 1024 * 1024).await;
    assert_eq!(
        read, flushed,
        "reads return the flushed batches at their offsets"
    );
}

fuzz_target!(|data: &[u8]| {
    block_on(run(data));
});
