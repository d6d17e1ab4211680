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

mod cache;
mod cleaner;
mod jobs;
mod recovery;
pub mod reserve;
mod scrub;
mod segment;
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
use jobs::{
    scan, CheckpointWrite, Finalize, FlushCommit, FlushFailure, ScanRange, ScanStop, SegmentFlush,
    StartCheckpoint,
};
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

/// The error a read of a segment's unreadable offsets gets.
fn corrupt_range<F: DiskFile>(dir: &Path, seg: &Segment<F>, c: &Corruption) -> LogError {
    corrupt(format!(
        "{}: offsets [{}, {}) are unreadable: the batch at position {} failed verification ({})",
        log_path(dir, seg.base_offset).display(),
        c.offset,
        seg.next_offset,
        c.position,
        c.reason
    ))
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

    /// Copies ONE validated batch into the active segment's write buffers,
    /// with baseOffset = `end_offset()` (and LogAppendTime if asked) patched
    /// in the copy. Rolls first when the segment is full or too old; the new
    /// segment's file is created by the next flush job.
    pub fn append(
        &mut self,
        batch: &[u8],
        log_append_time_ms: Option<i64>,
    ) -> Result<AppendInfo, LogError> {
        self.append_stamped(batch, log_append_time_ms, None)
    }

    /// [`append`](Self::append), also stamping the batch's partition leader
    /// epoch (a replicated partition's leader). The epoch is outside the
    /// CRC, so the copy stays valid.
    pub fn append_stamped(
        &mut self,
        batch: &[u8],
        log_append_time_ms: Option<i64>,
        leader_epoch: Option<i32>,
    ) -> Result<AppendInfo, LogError> {
        self.append_with(
            batch,
            Stamp {
                log_append_time_ms,
                leader_epoch,
                max_timestamp: None,
            },
        )
    }

    /// [`append`](Self::append) with every stamp the copy may need.
    pub fn append_with(&mut self, batch: &[u8], stamp: Stamp) -> Result<AppendInfo, LogError> {
        let Stamp {
            log_append_time_ms,
            leader_epoch,
            max_timestamp,
        } = stamp;
        if self.failed {
            return Err(LogError::Failed);
        }
        if self.truncating {
            return Err(LogError::Busy);
        }
        let header = BatchHeader::parse(batch).map_err(|e| corrupt(e.to_string()))?;
        assert_eq!(
            header.total_bytes(),
            batch.len(),
            "append takes exactly one whole batch"
        );
        let len = batch.len() as u64;
        let now = log_append_time_ms.unwrap_or_else(now_ms);
        let base = self.end_offset();
        // The log end after this batch (last + 1) must be an offset too.
        let last = base
            .checked_add(i64::from(header.last_offset_delta))
            .filter(|last| *last < i64::MAX)
            .ok_or(LogError::OffsetOverflow {
                end: base,
                last_offset_delta: header.last_offset_delta,
            })?;
        let rolled_to = self.should_roll(len, last, now).then(|| self.roll(now));

        let mut head = [0u8; BATCH_HEADER_BYTES];
        head.copy_from_slice(&batch[..BATCH_HEADER_BYTES]);
        batch::patch_base_offset(&mut head, base);
        if let Some(epoch) = leader_epoch {
            batch::patch_partition_leader_epoch(&mut head, epoch);
        }
        let records = &batch[BATCH_HEADER_BYTES..];
        if let Some(ts) = log_append_time_ms {
            batch::set_log_append_time_parts(&mut head, records, ts);
        } else if let Some(ts) = max_timestamp {
            batch::set_max_timestamp_parts(&mut head, records, ts);
        }
        let stored = BatchHeader::parse(&head).expect("patched header parses");
        let interval = self.config.index_interval_bytes;
        let alloc = self.alloc_file.clone();
        let seg = self.active_mut();
        if seg.is_empty() {
            seg.rolling_ms = now;
        }
        let position = seg.size;
        seg.chain_copy(&alloc, &head, batch.len());
        seg.chain_copy(&alloc, records, records.len());
        seg.account(position, &stored, len, interval);
        self.cache
            .borrow_mut()
            .on_append(base, last + 1, &head, records);
        Ok(AppendInfo {
            base_offset: base,
            last_offset: last,
            max_timestamp: stored.max_timestamp,
            rolled_to,
        })
    }

    fn should_roll(&self, len: u64, last_offset: i64, now: i64) -> bool {
        let seg = self.active();
        !seg.is_empty()
            && (seg.size + len > self.config.segment_bytes
                || now - seg.rolling_ms > self.config.segment_ms
                || last_offset - seg.base_offset > SEGMENT_OFFSETS_MAX)
    }

    /// Closes the active segment and starts a new one at `end_offset()`.
    fn roll(&mut self, now: i64) -> i64 {
        let base = self.end_offset();
        let seg = self.active_mut();
        assert!(!seg.is_empty() && !seg.closed);
        seg.closed = true;
        // Kafka appends a last time-index entry when a segment goes inactive.
        seg.maybe_push_time();
        if seg.verified_at_ms.is_some() && !seg.scrub_pending() {
            // Everything in it was verified or written (validated) here.
            seg.verified_at_ms = Some(now);
        }
        self.segments.push_back(Segment::new(base, None, now));
        self.cache.borrow_mut().on_roll();
        base
    }

    /// segment.ms check, from a periodic task. True when it rolled: the
    /// closed segment is finalized on disk by the next flush job.
    pub fn maybe_roll(&mut self, now_ms: i64) -> bool {
        if self.failed || self.truncating {
            return false;
        }
        let seg = self.active();
        if !seg.is_empty() && now_ms - seg.rolling_ms > self.config.segment_ms {
            self.roll(now_ms);
            return true;
        }
        false
    }

    /// The pending writes as a job, or None when there is nothing to do or a
    /// flush is already in flight (one at a time per log).
    pub fn take_flush(&mut self) -> Option<FlushJob<D>> {
        if self.failed
            || self.flush_in_flight
            || self.truncating
            || !self.segments.iter().any(|s| s.needs_flush())
        {
            return None;
        }
        let mut work = Vec::new();
        let mut commit = FlushCommit {
            end_offset: self.end_offset(),
            segments: Vec::new(),
        };
        for seg in self.segments.iter_mut().filter(|s| s.needs_flush()) {
            let pre_size = seg.flushed.map_or(0, |s| s.size);
            let (writes, tail) = seg.take_chain();
            let finalize = (seg.closed && !seg.finalized).then(|| Finalize {
                exact_len: seg.size,
                index: seg.index_bytes(),
                time_index: seg.time_index_bytes(),
                // A corrupt segment gets no index files, so the next open
                // rebuilds them by scanning and finds the corruption again.
                write_indexes: seg.corrupt.is_none(),
            });
            let mut snap = seg.snapshot();
            snap.finalized = seg.closed;
            commit.segments.push((seg.base_offset, snap, tail.clone()));
            seg.tail = Some(tail);
            work.push(SegmentFlush {
                base_offset: seg.base_offset,
                file: seg.file.clone(),
                writes,
                pre_size,
                finalize,
            });
        }
        self.flush_in_flight = true;
        Some(FlushJob {
            disk: self.disk.clone(),
            dir: self.dir.clone(),
            segments: work,
            commit,
        })
    }

    /// Applies a finished flush. Ok: the new flushed offset. ENOSPC: the
    /// unflushed appends are discarded (`end_offset` goes back) and
    /// `NoSpace` returned; later appends work again. Any other failure:
    /// the same rollback, and the log refuses appends from now on (`Failed`).
    pub fn complete_flush(&mut self, outcome: FlushOutcome<D>) -> Result<i64, LogError> {
        assert!(
            self.flush_in_flight,
            "complete_flush without a flush in flight"
        );
        self.flush_in_flight = false;
        let FlushOutcome {
            commit,
            created,
            result,
        } = outcome;
        let synced = match result {
            Ok(synced) => synced,
            Err(failure) => {
                let error = match failure {
                    FlushFailure::NoSpace(e) => {
                        throttled::log("log-flush-no-space", log::Level::Warn, || {
                            format!(
                                "{}: flush failed, device full (unflushed appends discarded, \
                                 producers get KAFKA_STORAGE_ERROR until space returns): {e}",
                                self.dir.display()
                            )
                        });
                        LogError::NoSpace
                    }
                    FlushFailure::Failed(e) => {
                        throttled::log("log-flush-failed", log::Level::Error, || {
                            format!("{}: flush failed, log offline: {e}", self.dir.display())
                        });
                        self.failed = true;
                        LogError::Failed
                    }
                };
                self.rollback();
                return Err(error);
            }
        };
        for (base, file) in created {
            let seg = self
                .segment_mut(base)
                .expect("created segments are still in the log");
            assert!(seg.file.is_none());
            seg.file = Some(file.clone());
            self.alloc_file = file;
        }
        for (base, snap, tail) in commit.segments {
            let seg = self
                .segment_mut(base)
                .expect("flushed segments are still in the log");
            assert!(snap.size <= seg.size && seg.taken_size >= snap.size);
            seg.finalized = snap.finalized;
            seg.unsynced = !synced;
            seg.flushed = Some(snap);
            if seg.taken_size == snap.size {
                seg.tail = None;
            }
            seg.flushed_tail = if snap.finalized { Vec::new() } else { tail };
        }
        assert!(commit.end_offset >= self.written_offset);
        self.written_offset = commit.end_offset;
        if synced {
            self.flushed_offset = commit.end_offset;
        }
        self.check_invariants();
        Ok(self.flushed_offset)
    }

    fn segment_mut(&mut self, base: i64) -> Option<&mut Segment<D::File>> {
        self.segments.iter_mut().find(|s| s.base_offset == base)
    }

    /// Back to the state of the last successful flush.
    fn rollback(&mut self) {
        while self.segments.len() > 1 && self.segments.back().is_some_and(|s| s.flushed.is_none()) {
            self.segments.pop_back();
        }
        for seg in self.segments.iter_mut() {
            let snap = seg
                .flushed
                .expect("segments left after rollback were flushed");
            seg.restore(snap);
        }
        self.cache.borrow_mut().drop_tail();
        assert_eq!(self.end_offset(), self.written_offset);
        self.check_invariants();
    }

    /// Plans reading whole batches from the batch containing `offset`, up to
    /// `max_bytes` (at least one batch), below `upper_offset` (exclusive; at
    /// most the flushed offset). Batches come from one segment.
    pub fn plan_read(
        &self,
        offset: i64,
        max_bytes: usize,
        upper_offset: i64,
    ) -> Result<ReadJob<D>, LogError> {
        let (start, end) = (self.start_offset(), self.end_offset());
        if offset < start || offset > end {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                start,
                end,
            });
        }
        assert!(
            upper_offset <= self.written_offset,
            "reads stay below written data"
        );
        let seg = self.segment_for(offset);
        let upper_offset = match &seg.corrupt {
            Some(c) if offset >= c.offset => return Err(corrupt_range(&self.dir, seg, c)),
            Some(c) => upper_offset.min(c.offset),
            None => upper_offset,
        };
        let empty = offset >= upper_offset || offset >= seg.next_offset;
        let mut cache = self.cache.borrow_mut();
        if offset >= upper_offset {
            cache.note_caught_up();
        }
        let served = if empty {
            cache::Served::Miss { position: None }
        } else {
            let view = cache::SegmentView {
                base_offset: seg.base_offset,
                file: seg.file.as_ref(),
                next_offset: seg.next_offset,
            };
            cache.serve(offset, max_bytes, upper_offset, view)
        };
        let (ready, position) = match served {
            cache::Served::Hit(bytes) => (Some(bytes), None),
            cache::Served::Miss { position } => (None, position),
        };
        Ok(ReadJob {
            ready,
            file: if empty { None } else { seg.file.clone() },
            segment_base: seg.base_offset,
            start_position: position.unwrap_or_else(|| seg.position_for_offset(offset)),
            limit_position: seg.readable_size(),
            offset,
            upper_offset,
            max_bytes,
            read_ahead_bytes: cache.read_ahead_bytes(),
            cache: self.cache.clone(),
            prefetch: cache.take_prefetch().map(|plan| PrefetchJob {
                plan,
                cache: self.cache.clone(),
            }),
        })
    }

    /// The segment holding `offset` (the last one whose base is <= it).
    fn segment_for(&self, offset: i64) -> &Segment<D::File> {
        let at = self.segments.partition_point(|s| s.base_offset <= offset);
        &self.segments[at.saturating_sub(1)]
    }

    /// ListOffsets by timestamp: the first batch below `upper_offset` whose
    /// max timestamp is >= `ts` (its base offset and max timestamp).
    pub fn plan_offset_for_timestamp(&self, ts: i64, upper_offset: i64) -> TimestampJob<D> {
        let start = self.log_start;
        let ranges = self
            .segments
            .iter()
            .filter(|s| s.next_offset > start)
            // A corrupt segment whose largest timestamp is unknown past the
            // damage is searched, so the search stops there with an error
            // instead of skipping to a later segment.
            .filter(|s| {
                let unknown = s.corrupt.as_ref().is_some_and(|c| !c.timestamps_known);
                s.base_offset < upper_offset && (s.max_timestamp >= ts || unknown)
            })
            .filter_map(|s| {
                Some(ScanRange {
                    file: s.file.clone()?,
                    start_position: s.position_for_timestamp(ts),
                    limit_position: s.readable_size(),
                    // The answer may lie in the unreadable part: say so
                    // rather than answer with a later offset.
                    stop_error: s.corrupt.as_ref().map(|c| corrupt_range(&self.dir, s, c)),
                })
            })
            .collect();
        TimestampJob {
            ranges,
            timestamp: ts,
            lower_offset: start,
            upper_offset,
        }
    }

    /// The first offset past the unreadable range holding `offset`, if it
    /// is in one (a reader that must go on, like the group load, resumes
    /// there after reporting the loss).
    pub fn unreadable_end(&self, offset: i64) -> Option<i64> {
        let seg = self.segment_for(offset);
        seg.corrupt
            .as_ref()
            .filter(|c| offset >= c.offset && offset < seg.next_offset)
            .map(|_| seg.next_offset)
    }

    /// (segment base, first unreadable offset, segment end) of every
    /// segment marked corrupt.
    pub fn corrupt_ranges(&self) -> Vec<(i64, i64, i64)> {
        self.segments
            .iter()
            .filter_map(|s| {
                s.corrupt
                    .as_ref()
                    .map(|c| (s.base_offset, c.offset, s.next_offset))
            })
            .collect()
    }

    /// A reader found a bad batch at `offset`: the segment holding it is
    /// scrubbed next (from its start), so it gets marked with the exact
    /// position.
    pub fn request_scrub(&mut self, offset: i64) {
        if offset < self.log_start || offset >= self.end_offset() {
            return;
        }
        let at = self.segments.partition_point(|s| s.base_offset <= offset);
        let seg = &mut self.segments[at.saturating_sub(1)];
        if seg.corrupt.is_none() && seg.file.is_some() {
            seg.scrub_pos = 0;
            seg.scrub_offset = seg.base_offset;
            seg.scrub_end = seg.scrub_end.max(seg.flushed.map_or(0, |f| f.size));
            seg.verified_at_ms = None;
        }
    }

    /// Largest batch max timestamp and the base offset of its batch
    /// (unflushed appends included).
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let mut best: Option<(i64, i64)> = None;
        for s in &self.segments {
            if s.max_timestamp >= 0 && best.is_none_or(|(ts, _)| s.max_timestamp > ts) {
                best = Some((s.max_timestamp, s.max_timestamp_offset));
            }
        }
        best
    }

    /// Headers of every batch with base offset >= `from`, below the flushed
    /// offset. Reads every segment that may hold one: pass a recent `from`.
    pub fn plan_scan_headers(&self, from: i64) -> ScanJob<D> {
        let ranges = self
            .segments
            .iter()
            .filter(|s| s.next_offset > from && s.base_offset < self.flushed_offset)
            .filter_map(|s| {
                Some(ScanRange {
                    file: s.file.clone()?,
                    start_position: s.position_for_offset(from),
                    limit_position: s.readable_size(),
                    stop_error: None,
                })
            })
            .collect();
        ScanJob {
            ranges,
            from_offset: from,
            upper_offset: self.flushed_offset,
        }
    }

    /// Retention over closed, durable segments (never the active one),
    /// oldest first: segments wholly below the log start offset, then (with
    /// cleanup.policy `delete`) by retention.ms on the segment's largest
    /// timestamp and by retention.bytes. Removes them now; the job deletes
    /// their files. Nothing while a clean job is out (it holds them).
    pub fn take_retention(&mut self, now_ms: i64) -> Option<RetentionJob<D>> {
        if self.clean_in_flight || self.truncating {
            return None;
        }
        let mut total = self.size_bytes() as i64;
        let mut doomed = 0;
        let delete = self.config.cleanup_delete;
        for seg in self.segments.iter().take(self.segments.len() - 1) {
            if !seg.is_settled() {
                break;
            }
            let below_start = seg.next_offset <= self.log_start;
            let by_time = delete
                && self.config.retention_ms >= 0
                && seg.max_timestamp >= 0
                && now_ms - seg.max_timestamp > self.config.retention_ms;
            let by_size = delete
                && self.config.retention_bytes >= 0
                && total - seg.size as i64 >= self.config.retention_bytes;
            if !(below_start || by_time || by_size) {
                break;
            }
            total -= seg.size as i64;
            doomed += 1;
        }
        if doomed == 0 {
            return None;
        }
        let (paths, files) = self.drain_front(doomed);
        self.check_invariants();
        Some(RetentionJob {
            disk: self.disk.clone(),
            paths,
            files,
            checkpoint: None,
            _out: self.retention_out.clone(),
        })
    }

    /// Removes the `n` oldest segments (never the active one) and moves the
    /// log start to the new first segment if it was below it. Returns the
    /// paths to delete (a cleaned segment's swap names too, in case its swap
    /// is unfinished) and the handles to close after.
    fn drain_front(&mut self, n: usize) -> (Vec<PathBuf>, Vec<Rc<D::File>>) {
        assert!(n < self.segments.len(), "the active segment stays");
        assert!(!self.clean_in_flight, "a clean job holds these segments");
        let mut paths = Vec::with_capacity(n * 3);
        let mut files = Vec::with_capacity(n);
        for seg in self.segments.drain(..n) {
            let base = seg.base_offset;
            let names = [
                log_path(&self.dir, base),
                index_path(&self.dir, base),
                time_index_path(&self.dir, base),
            ];
            if seg.cleaned {
                paths.extend(names.iter().map(|p| cleaner::swap_path(p)));
            }
            paths.extend(names);
            files.extend(seg.file);
        }
        let first = self.segments.front().expect("never empty").base_offset;
        self.log_start = self.log_start.max(first);
        self.cleaned_upto = self.cleaned_upto.max(self.log_start);
        self.cache.borrow_mut().drop_window();
        (paths, files)
    }

    /// DeleteRecords: moves the log start offset to `offset` (which may fall
    /// inside a segment) so reads below it are out of range, and removes the
    /// segments wholly below it. The returned job first makes the new start
    /// durable (an atomic checkpoint-file replace), then deletes their files;
    /// the caller answers after it ran. `offset` above the flushed offset
    /// (the high watermark on one node) is out of range; at or below the
    /// current start nothing changes (None), as in Kafka.
    pub fn delete_records_before(
        &mut self,
        offset: i64,
    ) -> Result<Option<RetentionJob<D>>, LogError> {
        if self.truncating {
            return Err(LogError::Busy);
        }
        let (start, upper) = (self.start_offset(), self.flushed_offset);
        if offset < 0 || offset > upper {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                start,
                end: upper,
            });
        }
        if offset <= start {
            return Ok(None);
        }
        self.log_start = offset;
        self.cleaned_upto = self.cleaned_upto.max(offset);
        self.checkpoint.want(offset);
        self.cache.borrow_mut().drop_window();
        // Settled segments wholly below the new start go now; others (still
        // being finalized, or held by a clean job) at the next retention.
        let doomed = if self.clean_in_flight {
            0
        } else {
            self.segments
                .iter()
                .take(self.segments.len() - 1)
                .take_while(|s| s.is_settled() && s.next_offset <= offset)
                .count()
        };
        let (paths, files) = if doomed > 0 {
            self.drain_front(doomed)
        } else {
            (Vec::new(), Vec::new())
        };
        self.check_invariants();
        Ok(Some(RetentionJob {
            disk: self.disk.clone(),
            paths,
            files,
            checkpoint: Some(CheckpointWrite {
                disk: self.disk.clone(),
                dir: self.dir.clone(),
                shared: self.checkpoint.clone(),
            }),
            _out: self.retention_out.clone(),
        }))
    }

    /// Why a truncation cannot start now: the log failed, or something is
    /// out or unflushed (`Busy`: flush, and complete the jobs out, first).
    fn truncate_refusal(&self) -> Option<LogError> {
        if self.failed {
            return Some(LogError::Failed);
        }
        let busy = self.flush_in_flight
            || self.clean_in_flight
            || self.truncating
            // A swap recovery will finish at the next open may cover
            // offsets a truncation removes.
            || self.cleaner_stopped
            || Rc::strong_count(&self.retention_out) > 1
            || self.flushed_offset != self.end_offset()
            || self.segments.iter().any(|s| s.needs_flush());
        busy.then_some(LogError::Busy)
    }

    /// Plans cutting the log so every batch whose last offset is >=
    /// `offset` is removed (a batch straddling `offset` goes too, as in
    /// Kafka), so afterwards `end_offset() <= offset`. At or below the
    /// first segment's base it is [`PartitionLog::plan_reset`] (Kafka's
    /// `truncateTo` does the same). At or past the end the job does nothing.
    /// The log start offset moves back to the new end if it was above it.
    ///
    /// Requires no flush, clean, truncation or retention job out and
    /// nothing unflushed (`flushed_offset() == end_offset()`), else `Busy`;
    /// `Failed` on a failed log. Until `complete_truncate`, appends get
    /// `Busy`, `take_flush`, `take_retention` and `plan_clean` give None.
    pub fn plan_truncate(&mut self, offset: i64) -> Result<TruncateJob<D>, LogError> {
        if let Some(refusal) = self.truncate_refusal() {
            return Err(refusal);
        }
        if offset < 0 {
            return Err(self.out_of_range(offset));
        }
        if offset >= self.end_offset() {
            self.truncating = true;
            return Ok(TruncateJob { work: None });
        }
        if offset <= self.segments.front().expect("never empty").base_offset {
            return self.plan_reset(offset);
        }
        let at = self.segments.partition_point(|s| s.base_offset <= offset) - 1;
        let seg = &self.segments[at];
        let base = seg.base_offset;
        let below = |rel: u32| base + i64::from(rel) < offset;
        let hint = truncate::Hint {
            base,
            file: seg.file.clone().expect("flushed segments have files"),
            size: seg.size,
            scan_from: seg.position_for_offset(offset),
            index: seg
                .index
                .iter()
                .filter(|e| below(e.rel_offset))
                .copied()
                .collect(),
            time_index: seg
                .time_index
                .iter()
                .filter(|t| below(t.rel_offset))
                .copied()
                .collect(),
        };
        assert_eq!(seg.closed, at + 1 < self.segments.len());
        let intent = truncate::Intent::Truncate {
            offset,
            closed: seg.closed,
        };
        Ok(self.truncate_job(intent, Some(hint)))
    }

    /// Like [`PartitionLog::plan_truncate`], but removes everything and
    /// starts an empty log whose start and end offset are `offset` (Kafka's
    /// `truncateFullyAndStartAt`); `offset` may be above the current end.
    pub fn plan_reset(&mut self, offset: i64) -> Result<TruncateJob<D>, LogError> {
        if let Some(refusal) = self.truncate_refusal() {
            return Err(refusal);
        }
        if offset < 0 {
            return Err(self.out_of_range(offset));
        }
        Ok(self.truncate_job(truncate::Intent::Reset { offset }, None))
    }

    fn out_of_range(&self, offset: i64) -> LogError {
        LogError::OffsetOutOfRange {
            requested: offset,
            start: self.start_offset(),
            end: self.end_offset(),
        }
    }

    fn truncate_job(
        &mut self,
        intent: truncate::Intent,
        hint: Option<truncate::Hint<D::File>>,
    ) -> TruncateJob<D> {
        self.truncating = true;
        TruncateJob {
            work: Some(truncate::TruncateWork {
                disk: self.disk.clone(),
                dir: self.dir.clone(),
                config: self.config.clone(),
                intent,
                hint,
            }),
        }
    }

    /// Applies a finished truncation: Ok(the new end offset). On an I/O
    /// failure the log goes offline (as after a failed flush: no appends;
    /// the next open finishes the cut) and keeps its old segments in
    /// memory, and the error is returned.
    pub fn complete_truncate(&mut self, outcome: TruncateOutcome<D>) -> Result<i64, LogError> {
        assert!(
            self.truncating,
            "complete_truncate without a truncation out"
        );
        self.truncating = false;
        let done = match outcome.result {
            Ok(None) => return Ok(self.end_offset()),
            Ok(Some(done)) => done,
            Err(e) => {
                log::error!(
                    "{}: truncation failed, log offline: {e}",
                    self.dir.display()
                );
                self.failed = true;
                return Err(LogError::Io(e));
            }
        };
        let first_new = done.segments[0].base_offset;
        match done.intent {
            truncate::Intent::Reset { .. } => self.segments.clear(),
            truncate::Intent::Truncate { .. } => {
                while self
                    .segments
                    .back()
                    .is_some_and(|s| s.base_offset >= first_new)
                {
                    self.segments.pop_back();
                }
                let prev = self.segments.back().map(|s| s.next_offset);
                assert!(prev.is_none_or(|next| next == first_new));
            }
        }
        self.segments.extend(done.segments);
        let end = self.end_offset();
        let start = match done.intent {
            truncate::Intent::Truncate { offset, .. } => {
                assert!(end <= offset, "the cut removed every batch at or past it");
                self.checkpoint.clamp_to(end);
                self.log_start.min(end)
            }
            truncate::Intent::Reset { offset } => {
                assert_eq!(end, offset);
                self.checkpoint.rewrite(offset);
                offset
            }
        };
        self.log_start = start;
        self.cleaned_upto = self.cleaned_upto.min(end).max(start);
        self.flushed_offset = end;
        self.written_offset = end;
        self.alloc_file = self
            .active()
            .file
            .clone()
            .expect("loaded segments have files");
        let mut cache = self.cache.borrow_mut();
        cache.drop_tail();
        cache.drop_window();
        drop(cache);
        self.check_invariants();
        Ok(end)
    }

    /// True while a truncation job is out.
    pub fn truncate_in_flight(&self) -> bool {
        self.truncating
    }

    /// Plans a log-compaction pass (cleanup.policy has `compact`): None when
    /// there is nothing to do, a clean is already out, or the dirty share
    /// of the cleanable segments is below min.cleanable.dirty.ratio.
    /// Cleanable: the closed, durable segments before the active one, up to
    /// the first holding a record younger than min.compaction.lag.ms.
    /// Dirty: those not cleaned since they closed (at most
    /// `CLEANER_SEGMENTS_PER_PASS_MAX` per pass). The pass rewrites every
    /// cleanable segment up to the last dirty one, as Kafka's cleaner does.
    pub fn plan_clean(&mut self, now_ms: i64) -> Option<CleanJob<D>> {
        if !self.config.cleanup_compact
            || self.clean_in_flight
            || self.truncating
            || self.cleaner_stopped
            || self.failed
        {
            return None;
        }
        let lag = self.config.min_compaction_lag_ms;
        let cleanable = self
            .segments
            .iter()
            .take(self.segments.len() - 1)
            .take_while(|s| s.is_settled() && s.closed && s.corrupt.is_none())
            .take_while(|s| lag <= 0 || s.max_timestamp <= now_ms.saturating_sub(lag))
            .count();
        let first_dirty = self
            .segments
            .iter()
            .take(cleanable)
            .position(|s| s.next_offset > self.cleaned_upto)?;
        let total: u64 = self.segments.iter().take(cleanable).map(|s| s.size).sum();
        let dirty: u64 = self
            .segments
            .iter()
            .take(cleanable)
            .skip(first_dirty)
            .map(|s| s.size)
            .sum();
        if (dirty as f64) < self.config.min_cleanable_dirty_ratio * total as f64 {
            return None;
        }
        let end = cleanable.min(first_dirty + crate::limits::CLEANER_SEGMENTS_PER_PASS_MAX);
        let inputs: Vec<Rc<cleaner::SegInput<D::File>>> = self
            .segments
            .iter()
            .take(end)
            .map(|s| {
                Rc::new(cleaner::SegInput {
                    base: s.base_offset,
                    next_offset: s.next_offset,
                    size: s.size,
                    max_timestamp: s.max_timestamp,
                    file: s.file.clone().expect("settled segments have files"),
                })
            })
            .collect();
        // Groups: consecutive inputs whose sizes fit one segment and whose
        // offsets fit its relative u32 offsets.
        let mut groups: Vec<Vec<Rc<cleaner::SegInput<D::File>>>> = Vec::new();
        let mut bytes = 0;
        for input in &inputs {
            let fits = groups.last().is_some_and(|g| {
                bytes + input.size <= self.config.segment_bytes
                    && input.next_offset - g[0].base <= SEGMENT_OFFSETS_MAX
            });
            if fits {
                bytes += input.size;
                groups.last_mut().expect("checked").push(input.clone());
            } else {
                bytes = input.size;
                groups.push(vec![input.clone()]);
            }
        }
        self.clean_in_flight = true;
        Some(CleanJob {
            disk: self.disk.clone(),
            dir: self.dir.clone(),
            dirty_from: self.cleaned_upto.max(self.log_start),
            dirty: inputs[first_dirty..].to_vec(),
            groups,
            now_ms,
            delete_retention_ms: self.config.delete_retention_ms,
            index_interval_bytes: self.config.index_interval_bytes,
        })
    }

    /// Applies a finished clean: each swapped group replaces its input
    /// segments. Err when the job failed part way (what it swapped in is
    /// applied all the same); a failure after a swap's commit point stops
    /// the cleaner until the next open finishes that swap.
    pub fn complete_clean(&mut self, outcome: CleanOutcome<D>) -> Result<CleanStats, LogError> {
        assert!(self.clean_in_flight, "complete_clean without a clean out");
        self.clean_in_flight = false;
        for swapped in outcome.swapped {
            let at = self
                .segments
                .iter()
                .position(|s| s.base_offset == swapped.inputs[0])
                .expect("segments stay while a clean is out");
            let n = swapped.inputs.len();
            for (seg, base) in self.segments.range(at..at + n).zip(&swapped.inputs) {
                assert!(
                    seg.base_offset == *base && seg.closed,
                    "clean inputs are unchanged"
                );
            }
            assert!(
                at + n < self.segments.len(),
                "the active segment is never cleaned"
            );
            assert_eq!(
                swapped.segment.next_offset,
                self.segments[at + n - 1].next_offset
            );
            self.segments.drain(at..at + n);
            self.segments.insert(at, swapped.segment);
            self.cache.borrow_mut().drop_window();
        }
        self.check_invariants();
        match outcome.error {
            None => {
                self.cleaned_upto = self.cleaned_upto.max(outcome.map_end);
                Ok(outcome.stats)
            }
            Some(e) => {
                if outcome.swap_unfinished {
                    log::error!(
                        "{}: a cleaned segment swap failed after its commit point ({e}); \
                         cleaning stops until the next open finishes it",
                        self.dir.display()
                    );
                    self.cleaner_stopped = true;
                }
                Err(LogError::Io(e))
            }
        }
    }

    /// True while a clean job is out.
    pub fn clean_in_flight(&self) -> bool {
        self.clean_in_flight
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
            // No index files: the next open rescans it and finds the damage.
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
