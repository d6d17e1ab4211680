//! Storage figures of one shard for the metrics scrape: fsyncs of the
//! log's flushes (their latency and the bytes each made durable), segment
//! rolls, segments and bytes retention deleted, compaction runs and the
//! bytes they removed.
//!
//! Counted where the log does the work, in plain cells of a thread-local:
//! a shard is one thread and owns its logs, so these are the shard's own
//! and never touched by another core (as the DMA read totals of
//! `crate::io`). The log imports nothing from the server; the scrape reads
//! [`figures`] on each shard. `metrics.enabled` false turns recording off
//! ([`set_enabled`]).

use std::cell::Cell;
use std::time::Duration;

use crate::metrics::{Histogram, HistogramSnapshot};

struct StorageStats {
    enabled: Cell<bool>,
    fsync: Histogram,
    fsync_bytes: Histogram,
    rolls: Cell<u64>,
    retention_segments: Cell<u64>,
    retention_bytes: Cell<u64>,
    compaction_runs: Cell<u64>,
    compaction_bytes_removed: Cell<u64>,
}

thread_local! {
    static STATS: StorageStats = StorageStats {
        enabled: Cell::new(true),
        fsync: Histogram::default(),
        fsync_bytes: Histogram::bytes(),
        rolls: Cell::new(0),
        retention_segments: Cell::new(0),
        retention_bytes: Cell::new(0),
        compaction_runs: Cell::new(0),
        compaction_bytes_removed: Cell::new(0),
    };
}

/// This shard's storage figures at one moment.
#[derive(Clone, Copy, Debug)]
pub struct StorageFigures {
    /// Each fsync's latency (an fdatasync, or a write made durable by
    /// itself), microseconds.
    pub fsync: HistogramSnapshot,
    /// Bytes each of those fsyncs made durable: the bytes its flush wrote
    /// to the file (whole blocks: a partly filled last block is written
    /// again by the next flush).
    pub fsync_bytes: HistogramSnapshot,
    pub rolls: u64,
    pub retention_segments: u64,
    pub retention_bytes: u64,
    pub compaction_runs: u64,
    pub compaction_bytes_removed: u64,
}

/// Whether this thread records (`metrics.enabled`); set when the shard
/// starts.
pub fn set_enabled(enabled: bool) {
    STATS.with(|s| s.enabled.set(enabled));
}

fn record(f: impl FnOnce(&StorageStats)) {
    STATS.with(|s| {
        if s.enabled.get() {
            f(s)
        }
    });
}

fn add(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get().saturating_add(n));
}

/// A flush's fsync took `took` and made `bytes` durable.
pub(super) fn fsynced(took: Duration, bytes: u64) {
    record(|s| {
        s.fsync
            .record(took.as_micros().min(u64::MAX as u128) as u64);
        s.fsync_bytes.record(bytes);
    });
}

/// A log rolled a new segment.
pub(super) fn rolled() {
    record(|s| add(&s.rolls, 1));
}

/// Retention removed `segments` segments of `bytes` bytes.
pub(super) fn retention_deleted(segments: u64, bytes: u64) {
    record(|s| {
        add(&s.retention_segments, segments);
        add(&s.retention_bytes, bytes);
    });
}

/// A compaction run finished (applied), `bytes_removed` smaller than its
/// input.
pub(super) fn compacted(bytes_removed: u64) {
    record(|s| {
        add(&s.compaction_runs, 1);
        add(&s.compaction_bytes_removed, bytes_removed);
    });
}

/// This thread's figures.
pub fn figures() -> StorageFigures {
    STATS.with(|s| StorageFigures {
        fsync: s.fsync.snapshot(),
        fsync_bytes: s.fsync_bytes.snapshot(),
        rolls: s.rolls.get(),
        retention_segments: s.retention_segments.get(),
        retention_bytes: s.retention_bytes.get(),
        compaction_runs: s.compaction_runs.get(),
        compaction_bytes_removed: s.compaction_bytes_removed.get(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_add_up_on_this_thread_and_stop_when_disabled() {
        // A thread of its own: the figures are per thread.
        std::thread::spawn(|| {
            fsynced(Duration::from_micros(300), 8192);
            rolled();
            rolled();
            retention_deleted(2, 1000);
            compacted(500);
            set_enabled(false);
            rolled();
            compacted(1);
            let f = figures();
            assert_eq!(f.fsync.count(), 1);
            assert_eq!(f.fsync.sum, 300);
            assert_eq!(f.fsync_bytes.sum, 8192);
            assert_eq!(f.rolls, 2);
            assert_eq!((f.retention_segments, f.retention_bytes), (2, 1000));
            assert_eq!((f.compaction_runs, f.compaction_bytes_removed), (1, 500));
        })
        .join()
        .unwrap();
    }
}
