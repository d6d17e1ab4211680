//! The storage and scheduling families of a scrape: per shard from each
//! shard's figures (the log's `log::stats`, the scheduling probe's
//! histogram), per log directory from statvfs on the scraping shard, and
//! the node's log recovery time.

use std::path::Path;

use super::ShardFigures;
use crate::limits;
use crate::log::progress::RecoveryProgress;
use crate::metrics::families as f;
use crate::metrics::{Exposition, Family};

// The help texts of the scheduling families name these.
const _: () = assert!(limits::SCHED_PROBE_INTERVAL_MS == 25);
const _: () = assert!(limits::SCHED_STALL_US == 10_000);

/// A family with one counter per shard, and how to read it.
type ShardCount = (&'static Family, fn(&ShardFigures) -> u64);

pub(super) fn render_shards(e: &mut Exposition, reports: &[ShardFigures]) {
    let shards: Vec<String> = reports.iter().map(|r| r.shard.to_string()).collect();
    let mut w = e.family(&f::SHARD_TASK_DELAY);
    for (r, shard) in reports.iter().zip(&shards) {
        w.histogram(&[shard], &r.task_delay);
    }
    let mut w = e.family(&f::SHARD_STALLS);
    for (r, shard) in reports.iter().zip(&shards) {
        w.int(&[shard], r.load.sched_stalls);
    }
    let mut w = e.family(&f::STORAGE_FSYNC);
    for (r, shard) in reports.iter().zip(&shards) {
        w.histogram(&[shard], &r.storage.fsync);
    }
    let mut w = e.family(&f::STORAGE_FSYNC_SIZE);
    for (r, shard) in reports.iter().zip(&shards) {
        w.histogram(&[shard], &r.storage.fsync_bytes);
    }
    let counts: [ShardCount; 5] = [
        (&f::STORAGE_ROLLS, |r| r.storage.rolls),
        (&f::STORAGE_RETENTION_SEGMENTS, |r| {
            r.storage.retention_segments
        }),
        (&f::STORAGE_RETENTION_BYTES, |r| r.storage.retention_bytes),
        (&f::STORAGE_COMPACTION_RUNS, |r| r.storage.compaction_runs),
        (&f::STORAGE_COMPACTION_REMOVED, |r| {
            r.storage.compaction_bytes_removed
        }),
    ];
    for (family, value) in counts {
        let mut w = e.family(family);
        for (r, shard) in reports.iter().zip(&shards) {
            w.int(&[shard], value(r));
        }
    }
}

/// The log directory's file system (free and total bytes) and the
/// recovery time. statvfs is one system call on the scraping shard.
pub(super) fn render_node(e: &mut Exposition, log_dir: &Path, recovery: &RecoveryProgress) {
    let space = nix::sys::statvfs::statvfs(log_dir)
        .map_err(|e| log::debug!("metrics: statvfs {}: {e}", log_dir.display()))
        .ok();
    let dir = log_dir.display().to_string();
    let mut w = e.family(&f::LOG_DIR_FREE);
    if let Some(s) = &space {
        w.int(
            &[&dir],
            s.blocks_available().saturating_mul(s.fragment_size()),
        );
    }
    let mut w = e.family(&f::LOG_DIR_TOTAL);
    if let Some(s) = &space {
        w.int(&[&dir], s.blocks().saturating_mul(s.fragment_size()));
    }
    let mut w = e.family(&f::STORAGE_RECOVERY);
    if let Some(took) = recovery.took() {
        w.float(&[], took.as_secs_f64());
    }
}
