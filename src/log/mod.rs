//! Storage of one partition: segments, sparse indexes, recovery, retention,
//! the log start offset (DeleteRecords; `log-start-offset-checkpoint`) and
//! compaction (`cleaner`: `.cleaned` / `.swap` files, finished or rolled back
//! at open) and truncation for replication (`truncate`: an intent file,
//! finished at open).
//!
//! Owns the partition's directory (`<base:020>.log`, `.index`, `.timeindex`,
//! Kafka's names and formats) and every byte written to it. One
//! [`PartitionLog`] per partition lives on the shard that owns the partition
//! (`!Send`, inside the partition's `Rc<RefCell<..>>`); it must not know
//! about sockets, requests or Kafka error codes, and does I/O only through
//! [`io`], the disk seam.
//!
//! Shape: every operation is either synchronous, or a synchronous planning
//! method that returns a `'static` job (owning `Rc`s of files and buffers,
//! never borrowing the log) whose `run` does the I/O, followed for flushes by
//! a synchronous `complete_flush`. The caller never holds a borrow across an
//! `.await`; appends keep landing while a flush job runs (group commit).
//!
//! Files: this one holds the log's state, its opening and closing; each
//! concern's `PartitionLog` methods sit beside that concern's jobs:
//! `append` (append, roll, flush), `read` (reads, timestamp search, header
//! scans, unreadable ranges), `retention` (retention and DeleteRecords),
//! `truncate`, `cleaner` and `scrub`; `recovery` loads segments at open.
//!
//! Write path: `append` copies the batch once, into aligned write buffers
//! (allocated lazily from a file of this log, released after each flush);
//! only the partial last block (< 4 KiB) stays in memory, to be rewritten in
//! place by the next flush (docs/architecture.md, section 3: no `DmaStreamWriter`).
//!
//! Stored bytes are never trusted. Recovery scans with the CRC, the
//! header's consistency and the stored-batch parser (`protocol::records`):
//! a bad batch in the active segment cuts the tail there (logged with file,
//! position and offset); in a closed segment (whose later batches were
//! acknowledged) it marks the segment corrupt from that batch instead of
//! cutting. The `scrub` verifies, in the background, what recovery trusted
//! (closed segments' index files, the active segment before its resume
//! point) and marks what it finds the same way. A marked segment's offsets
//! from the bad batch on answer `LogError::Corrupt` (never the bytes, never
//! a skip to later offsets); it is not cleaned, gets no index files (so
//! every open finds the damage again) and leaves with retention or
//! DeleteRecords. Repeated failures are logged through `throttled`; the
//! data directory's disk `reserve` lets DeleteRecords free space on a full
//! disk.
//!
//! Invariants (asserted, on in release): `start_offset <= flushed_offset <=
//! written_offset <= end_offset`; segment base offsets strictly increase and
//! each segment's batches are contiguous, back to back; at most one flush job
//! in flight; a failed log (fdatasync error) never appends again.

#![forbid(unsafe_code)]

mod append;
mod cache;
mod cleaner;
mod jobs;
pub mod progress;
mod read;
pub use read::ReadSizeHint;
mod recovery;
pub mod reserve;
mod retention;
mod scrub;
mod segment;
pub mod stats;
pub mod throttled;
mod truncate;

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

pub use cache::CacheBudget;
pub use cleaner::{CleanJob, CleanOutcome, CleanStats};
pub use jobs::{FlushJob, FlushOutcome, PrefetchJob, ReadJob, RetentionJob, ScanJob, TimestampJob};
pub use scrub::{ScrubJob, ScrubOutcome};
pub use segment::Corruption;
pub use truncate::{TruncateJob, TruncateOutcome, TRUNCATE_INTENT_FILE};

use crate::io::{
    align_down, read_whole_file, remove_if_exists, write_whole_file, Disk, DiskFile, DmaDisk,
};
use crate::protocol::batch::{self, BatchHeader, BATCH_HEADER_BYTES};
use crate::protocol::records;
use jobs::{scan, ScanStop, StartCheckpoint};
use segment::{
    index_path, log_path, parse_index, parse_log_name, parse_time_index, time_index_path, Segment,
};

/// Kafka's topic-level log settings this module applies.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// segment.bytes: roll when the active segment would exceed this.
    pub segment_bytes: u64,
    /// segment.ms: roll when the active segment's first append is older.
    pub segment_ms: i64,
    /// retention.bytes: -1 unlimited.
    pub retention_bytes: i64,
    /// retention.ms: -1 unlimited.
    pub retention_ms: i64,
    /// index.interval.bytes: bytes between sparse index entries.
    pub index_interval_bytes: u32,
    /// cleanup.policy has `delete`: retention.ms and retention.bytes apply.
    pub cleanup_delete: bool,
    /// cleanup.policy has `compact`: the cleaner keeps the newest record per key.
    pub cleanup_compact: bool,
    /// delete.retention.ms: tombstones in a segment whose newest timestamp
    /// is older than this are dropped by the cleaner.
    pub delete_retention_ms: i64,
    /// min.compaction.lag.ms: segments holding a record younger than this
    /// are not cleaned yet.
    pub min_compaction_lag_ms: i64,
    /// min.cleanable.dirty.ratio: dirty bytes / cleanable bytes that start a clean.
    pub min_cleanable_dirty_ratio: f64,
}

/// Largest segment: positions in the index are u32, Kafka caps at i32::MAX.
pub const SEGMENT_BYTES_MAX: u64 = i32::MAX as u64;
/// Offsets one segment may span (relative offsets are u32; Kafka: i32::MAX).
pub const SEGMENT_OFFSETS_MAX: i64 = i32::MAX as i64;

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            index_interval_bytes: 4096,
            cleanup_delete: true,
            cleanup_compact: false,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_compaction_lag_ms: 0,
            min_cleanable_dirty_ratio: 0.5,
        }
    }
}

#[derive(Debug)]
pub enum LogError {
    Io(std::io::Error),
    /// The device is full; the unflushed appends were discarded.
    NoSpace,
    /// An fdatasync (or undo) failed: the log is offline for appends.
    Failed,
    OffsetOutOfRange {
        requested: i64,
        start: i64,
        end: i64,
    },
    Corrupt(String),
    /// Another job (flush, clean, retention, truncation) is out, or appends
    /// are unflushed: retry once it completed.
    Busy,
    /// The batch's offsets would not fit: its last offset, or the log end
    /// after it, would pass i64::MAX (a log whose segment names start near
    /// the end of the offset space). Nothing is appended.
    OffsetOverflow {
        end: i64,
        last_offset_delta: i32,
    },
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Io(e) => write!(f, "log I/O error: {e}"),
            LogError::NoSpace => write!(f, "no space left on the log's device"),
            LogError::Failed => write!(f, "log is offline after a failed disk sync"),
            LogError::OffsetOutOfRange {
                requested,
                start,
                end,
            } => write!(f, "offset {requested} is outside the log [{start}, {end}]"),
            LogError::Corrupt(what) => write!(f, "log is corrupt: {what}"),
            LogError::Busy => write!(f, "log is busy"),
            LogError::OffsetOverflow {
                end,
                last_offset_delta,
            } => write!(
                f,
                "a batch of {} offsets at log end {end} would pass the largest offset {}",
                i64::from(*last_offset_delta) + 1,
                i64::MAX
            ),
        }
    }
}

impl std::error::Error for LogError {}

impl From<std::io::Error> for LogError {
    fn from(e: std::io::Error) -> LogError {
        LogError::Io(e)
    }
}

/// What one append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The batch's max timestamp as stored (the append time for LogAppendTime).
    pub max_timestamp: i64,
    /// Base offset of the new active segment when this append rolled.
    pub rolled_to: Option<i64>,
}

/// How an append stamps its stored copy of a batch: fields outside the
/// CRC, or re-sealed under it. The caller's bytes are never changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    /// LogAppendTime: the batch's maxTimestamp becomes this and its
    /// timestamp type LogAppendTime.
    pub log_append_time_ms: Option<i64>,
    /// A replicated partition's leader epoch.
    pub leader_epoch: Option<i32>,
    /// CreateTime: the batch's maxTimestamp when the producer's was wrong
    /// (Kafka's validator sets it to the largest record timestamp).
    pub max_timestamp: Option<i64>,
}

/// One partition's log. Lives on the partition's owner shard.
pub struct PartitionLog<D: Disk = DmaDisk> {
    disk: D,
    dir: PathBuf,
    config: LogConfig,
    /// Oldest first; never empty; the last one is active.
    segments: VecDeque<Segment<D::File>>,
    /// Any open file of this log: DMA buffers are allocated from it.
    alloc_file: Rc<D::File>,
    /// Below this: written and fdatasync'd.
    flushed_offset: i64,
    /// Below this: written by a successful flush (synced or not).
    written_offset: i64,
    flush_in_flight: bool,
    failed: bool,
    /// The log start offset: reads below it are out of range. At or after
    /// the first segment's base; DeleteRecords may put it inside a segment.
    /// Persisted in [`START_CHECKPOINT_FILE`] when DeleteRecords moves it.
    log_start: i64,
    checkpoint: Rc<StartCheckpoint>,
    /// Below this offset every closed segment was cleaned since it closed
    /// (Kafka's cleaner checkpoint; kept in memory, so a restart cleans once
    /// more).
    cleaned_upto: i64,
    /// A clean job is out: no segment may leave the log until it completes.
    clean_in_flight: bool,
    /// A swap failed after its commit point; recovery finishes it at the
    /// next open. No more cleaning until then.
    cleaner_stopped: bool,
    /// Tail cache and read-ahead window (`cache`), shared with read jobs.
    cache: Rc<RefCell<cache::ReadCache<D::File>>>,
    /// A truncation job is out: no appends, flushes, rolls, retention,
    /// DeleteRecords or cleaning until it completes.
    truncating: bool,
    /// Cloned into every retention job: more than one owner means one is
    /// out, and the log does not truncate.
    retention_out: Rc<()>,
}

/// The partition-directory file holding the log start offset DeleteRecords
/// set (Kafka keeps one `log-start-offset-checkpoint` per log directory;
/// corelog keeps it beside the partition's segments). Text: a version line
/// `0`, then the offset.
pub const START_CHECKPOINT_FILE: &str = "log-start-offset-checkpoint";

fn start_checkpoint_text(offset: i64) -> String {
    format!("0\n{offset}\n")
}

/// The offset in a [`START_CHECKPOINT_FILE`]; None when unreadable.
fn parse_start_checkpoint(bytes: &[u8]) -> Option<i64> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.lines();
    match (lines.next(), lines.next().map(|l| l.trim().parse::<i64>())) {
        (Some("0"), Some(Ok(offset))) => Some(offset),
        _ => None,
    }
}

use crate::clock::now_ms;

fn corrupt(what: impl Into<String>) -> LogError {
    LogError::Corrupt(what.into())
}

impl PartitionLog<DmaDisk> {
    /// Opens (recovering) or creates the log in `dir` on the DMA disk.
    pub async fn open(dir: &Path, config: LogConfig) -> Result<PartitionLog, LogError> {
        PartitionLog::open_on(DmaDisk, dir, config).await
    }
}

impl<D: Disk> PartitionLog<D> {
    /// Creates `dir` if absent; otherwise recovers: loads closed segments'
    /// indexes (rebuilding a missing or damaged one by scanning its
    /// segment), scans only the active segment from its last index entry and
    /// cuts a torn or corrupt tail back to the last valid batch.
    pub async fn open_on(
        disk: D,
        dir: &Path,
        config: LogConfig,
    ) -> Result<PartitionLog<D>, LogError> {
        disk.prepare(dir).await?;
        disk.create_dir_all(dir).await?;
        cleaner::recover_swaps(&disk, dir).await?;
        truncate::recover(&disk, dir).await?;
        let mut bases: Vec<i64> = disk
            .list_dir(dir)
            .await?
            .iter()
            .filter_map(|n| parse_log_name(n))
            .collect();
        bases.sort_unstable();
        let config = clamp_config(config);
        let mut segments: VecDeque<Segment<D::File>> = VecDeque::new();
        if bases.is_empty() {
            let file = Rc::new(disk.create(&log_path(dir, 0)).await?);
            segment::create_empty_indexes(&disk, dir, 0).await?;
            disk.sync_dir(dir).await?;
            let mut seg = Segment::new(0, Some(file), now_ms());
            seg.flushed = Some(seg.snapshot());
            segments.push_back(seg);
        } else {
            let mut i = 0;
            while i + 1 < bases.len() {
                if let Some(seg) =
                    recovery::load_closed(&disk, dir, bases[i], bases[i + 1], &config).await?
                {
                    segments.push_back(seg);
                }
                i += 1;
            }
            let active_base = *bases.last().expect("not empty");
            let active = recovery::load_active(&disk, dir, active_base, &config).await?;
            // An empty last segment after a gap (a roll whose older data did
            // not survive a crash) is dropped so offsets stay contiguous.
            let gap = segments
                .back()
                .is_some_and(|prev| prev.next_offset != active_base);
            if active.is_empty() && gap {
                let prev = segments.pop_back().expect("gap implies a previous segment");
                for path in [
                    log_path(dir, active_base),
                    index_path(dir, active_base),
                    time_index_path(dir, active_base),
                ] {
                    remove_if_exists(&disk, &path).await?;
                }
                let reopened = recovery::load_active(&disk, dir, prev.base_offset, &config).await?;
                segments.push_back(reopened);
            } else {
                if gap {
                    log::warn!(
                        "{}: offsets missing between {} and {}",
                        dir.display(),
                        segments.back().map_or(0, |s| s.next_offset),
                        active_base
                    );
                }
                segments.push_back(active);
            }
        }
        let log_start = recovery::load_start_checkpoint(&disk, dir, &mut segments).await?;
        let active = segments.back().expect("never empty");
        let end = active.next_offset;
        let alloc_file = active.file.clone().expect("recovered segments have files");
        let log = PartitionLog {
            disk,
            dir: dir.to_path_buf(),
            config,
            segments,
            alloc_file,
            flushed_offset: end,
            written_offset: end,
            flush_in_flight: false,
            failed: false,
            log_start,
            checkpoint: Rc::new(StartCheckpoint::new(log_start)),
            cleaned_upto: log_start,
            clean_in_flight: false,
            cleaner_stopped: false,
            cache: Rc::new(RefCell::new(cache::ReadCache::new(CacheBudget::disabled()))),
            truncating: false,
            retention_out: Rc::new(()),
        };
        log.check_invariants();
        Ok(log)
    }

    fn active(&self) -> &Segment<D::File> {
        self.segments.back().expect("a log has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment<D::File> {
        self.segments
            .back_mut()
            .expect("a log has an active segment")
    }

    fn check_invariants(&self) {
        assert!(self.segments.front().expect("never empty").base_offset <= self.log_start);
        assert!(self.start_offset() <= self.flushed_offset);
        assert!(self.flushed_offset <= self.written_offset);
        assert!(self.written_offset <= self.end_offset());
        self.cache
            .borrow()
            .check(self.end_offset(), self.active().base_offset);
    }

    /// Lets this log keep a tail cache and read-ahead windows, charged to
    /// the shard's budget (without one, every read goes to disk).
    pub fn set_cache_budget(&mut self, budget: Rc<CacheBudget>) {
        *self.cache.borrow_mut() = cache::ReadCache::new(budget);
    }

    /// Bytes this log's caches hold.
    pub fn cached_bytes(&self) -> usize {
        self.cache.borrow().charged_bytes()
    }

    /// Frees caches no read used since the previous call (housekeeping).
    pub fn release_idle_cache(&mut self) {
        self.cache.borrow_mut().release_idle();
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// The log start offset: moved forward by retention (to a segment
    /// base) and by DeleteRecords (to any offset up to the flushed offset).
    pub fn start_offset(&self) -> i64 {
        self.log_start
    }

    /// Next offset to assign, unflushed appends included.
    pub fn end_offset(&self) -> i64 {
        self.active().next_offset
    }

    /// Everything below is written and fdatasync'd.
    pub fn flushed_offset(&self) -> i64 {
        self.flushed_offset
    }

    /// Everything below is written to the files (maybe not yet synced).
    pub fn written_offset(&self) -> i64 {
        self.written_offset
    }

    /// True after an fdatasync failure: appends are refused, reads work.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// Takes the log offline for appends, as a failed fdatasync does: a
    /// file the log's meaning depends on (the partition's leader-epoch
    /// checkpoint) could not be made durable.
    pub fn mark_failed(&mut self) {
        self.failed = true;
    }

    pub fn flush_in_flight(&self) -> bool {
        self.flush_in_flight
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Bytes of all segments, unflushed appends included.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    pub fn set_config(&mut self, config: LogConfig) {
        self.config = clamp_config(config);
    }

    /// Clean shutdown: flushes what is pending (no job may be in flight),
    /// then cuts the active .log to its exact length and writes its indexes.
    pub async fn close(mut self) -> Result<(), LogError> {
        assert!(!self.flush_in_flight, "close with a flush job in flight");
        assert!(!self.truncating, "close with a truncation job out");
        if self.failed {
            return Err(LogError::Failed);
        }
        if let Some(job) = self.take_flush() {
            let outcome = job.run(true).await;
            self.complete_flush(outcome)?;
        }
        let dir = self.dir.clone();
        let disk = self.disk.clone();
        let active = self.active_mut();
        active.maybe_push_time();
        let file = active
            .file
            .clone()
            .expect("flushed active segment has a file");
        file.truncate(active.size).await?;
        file.fdatasync().await?;
        if active.corrupt.is_some() {
            // No index files (not even the empty ones it was created
            // with): the next open rescans it and finds the damage.
            let base = active.base_offset;
            remove_if_exists(&disk, &index_path(&dir, base)).await?;
            remove_if_exists(&disk, &time_index_path(&dir, base)).await?;
            return Ok(());
        }
        let base = active.base_offset;
        write_whole_file(
            &disk,
            &time_index_path(&dir, base),
            &active.time_index_bytes(),
        )
        .await?;
        write_whole_file(&disk, &index_path(&dir, base), &active.index_bytes()).await?;
        Ok(())
    }
}

fn clamp_config(mut config: LogConfig) -> LogConfig {
    config.segment_bytes = config
        .segment_bytes
        .clamp(BATCH_HEADER_BYTES as u64, SEGMENT_BYTES_MAX);
    config.index_interval_bytes = config.index_interval_bytes.max(1);
    config
}
