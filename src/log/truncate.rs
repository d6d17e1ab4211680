//! Log truncation, for replication: Kafka's `Log.truncateTo` (a follower
//! cuts the divergent tail of its log) and `truncateFullyAndStartAt` (a
//! follower whose log is wholly below or divergent from the leader's start
//! empties it and starts again at an offset).
//!
//! Shape (the log's plan / run / complete pattern):
//! `PartitionLog::plan_truncate` / `plan_reset` check that nothing else is
//! in flight and nothing is unflushed, and hand a [`TruncateJob`] the file
//! of the segment holding the cut and that segment's kept index entries;
//! [`TruncateJob::run`] does the disk work and loads the segments that end
//! the log afterwards exactly as recovery would; `complete_truncate` puts
//! them in place of the old tail. While a job is out the log refuses
//! appends, flushes, rolls, retention, DeleteRecords and cleaning.
//!
//! Crash safety: an intent file ([`TRUNCATE_INTENT_FILE`], replaced
//! atomically) is made durable before the first file changes and removed
//! (durably) after the last change is durable. Recovery finds an intent
//! left by a crash and performs the same cut again ([`cut_files`] is
//! idempotent and needs nothing but the intent and the files), so a reopen
//! sees either the old log or the cut one, never a log that ends part way.
//!
//! On disk, a cut at offset T:
//! - removes the files of every segment whose base is above that of the
//!   segment S holding the cut (S: the last with base <= T), highest first;
//! - cuts S's `.log` at the start of the first batch whose last offset is
//!   >= T (a batch straddling T goes too, as in Kafka) and fdatasyncs it;
//! - writes S's indexes again with the kept entries only (recovery, which
//!   does not know them, removes them instead, to be rebuilt by scanning):
//!   a stale entry past the new end never survives;
//! - if S was closed and keeps batches, it stays closed and a new empty
//!   active segment starts at the new end. A closed segment may have been
//!   written by the cleaner, with offset gaps, and the active segment's
//!   recovery insists on contiguous offsets, so turning it into the active
//!   segment could cut kept batches at the next open. A cut in the active
//!   segment (the usual case: a follower's divergent tail is recent) keeps
//!   it active;
//! - rewrites the log start checkpoint when it holds an offset above the
//!   new end (else a later open would move the start past records appended
//!   after the cut).
//!
//! A reset at T removes every segment's files, creates an empty
//! `<T>.log` and writes T as the log start checkpoint.
//!
//! Runs on the partition's shard; the job owns `Rc`s of files, never a
//! borrow of the log. Producer snapshots and the leader-epoch cache are the
//! partition's, not this module's.

#![forbid(unsafe_code)]

use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::jobs::scan;
use super::recovery;
use super::segment::{
    index_path, log_path, parse_log_name, time_index_path, IndexEntry, Segment, TimeEntry,
};
use super::{LogConfig, LogError, PartitionLog, START_CHECKPOINT_FILE};
use crate::io::{
    read_whole_file, remove_if_exists, replace_file, write_whole_file, Disk, DiskFile, DmaDisk,
};

/// The partition-directory file that says a truncation is under way, so
/// recovery finishes it. Text: a version line `0`, then
/// `truncate <offset> active|closed` or `reset <offset>`.
pub const TRUNCATE_INTENT_FILE: &str = "log-truncation-intent";

/// What a truncation does, as its intent file records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Intent {
    /// Remove every batch whose last offset is >= `offset`. `closed`: the
    /// segment holding the cut is a closed one and stays closed.
    Truncate { offset: i64, closed: bool },
    /// Remove every segment; an empty log starts at `offset`.
    Reset { offset: i64 },
}

impl Intent {
    fn encode(&self) -> String {
        match self {
            Intent::Truncate { offset, closed } => {
                let kind = if *closed { "closed" } else { "active" };
                format!("0\ntruncate {offset} {kind}\n")
            }
            Intent::Reset { offset } => format!("0\nreset {offset}\n"),
        }
    }

    fn decode(text: &str) -> Option<Intent> {
        let mut lines = text.lines();
        if lines.next()? != "0" {
            return None;
        }
        let words: Vec<&str> = lines.next()?.split_whitespace().collect();
        match words.as_slice() {
            ["truncate", offset, kind] => Some(Intent::Truncate {
                offset: offset.parse().ok().filter(|o: &i64| *o >= 0)?,
                closed: match *kind {
                    "closed" => true,
                    "active" => false,
                    _ => return None,
                },
            }),
            ["reset", offset] => Some(Intent::Reset {
                offset: offset.parse().ok().filter(|o: &i64| *o >= 0)?,
            }),
            _ => None,
        }
    }

    fn offset(&self) -> i64 {
        match self {
            Intent::Truncate { offset, .. } | Intent::Reset { offset } => *offset,
        }
    }
}

/// What the log knows about the segment holding the cut, which recovery
/// finds by scanning instead.
pub(crate) struct Hint<F> {
    pub base: i64,
    pub file: Rc<F>,
    /// Bytes of data in the segment.
    pub size: u64,
    /// A batch boundary at or before the cut (the last kept index entry).
    pub scan_from: u64,
    /// Index entries of kept batches (last offset below the cut).
    pub index: Vec<IndexEntry>,
    /// Time index entries whose batch starts below the cut.
    pub time_index: Vec<TimeEntry>,
}

/// Disk work planned by `PartitionLog::plan_truncate` / `plan_reset`.
pub struct TruncateJob<D: Disk = DmaDisk> {
    pub(crate) work: Option<TruncateWork<D>>,
}

pub(crate) struct TruncateWork<D: Disk> {
    pub disk: D,
    pub dir: PathBuf,
    pub config: LogConfig,
    pub intent: Intent,
    pub hint: Option<Hint<D::File>>,
}

/// The result of [`TruncateJob::run`], for `PartitionLog::complete_truncate`.
pub struct TruncateOutcome<D: Disk = DmaDisk> {
    /// Ok(None): nothing to do. Ok(Some): the segments that now end the log.
    pub(crate) result: io::Result<Option<Truncated<D::File>>>,
}

pub(crate) struct Truncated<F: DiskFile> {
    pub intent: Intent,
    /// Loaded from disk as recovery loads them: the segment holding the cut
    /// (or the reset's empty one) and, if it stayed closed, the new active.
    pub segments: Vec<Segment<F>>,
}

impl<D: Disk> TruncateOutcome<D> {
    /// True when the job succeeded (before `complete_truncate` applies it).
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }
}

impl<D: Disk> TruncateJob<D> {
    /// Makes the intent durable, cuts the files, removes the intent, then
    /// loads the log's new last segments.
    pub async fn run(self) -> TruncateOutcome<D> {
        let Some(work) = self.work else {
            return TruncateOutcome { result: Ok(None) };
        };
        TruncateOutcome {
            result: work.run().await.map(Some),
        }
    }
}

impl<D: Disk> TruncateWork<D> {
    async fn run(self) -> io::Result<Truncated<D::File>> {
        let TruncateWork {
            disk,
            dir,
            config,
            intent,
            hint,
        } = self;
        replace_file(
            &disk,
            &dir,
            TRUNCATE_INTENT_FILE,
            intent.encode().as_bytes(),
        )
        .await?;
        let cut = cut_files(&disk, &dir, intent, hint).await?;
        // Durably gone before anything is appended after the cut: an intent
        // found at the next open would cut those appends too.
        remove_if_exists(&disk, &dir.join(TRUNCATE_INTENT_FILE)).await?;
        disk.sync_dir(&dir).await?;
        let segments = load(&disk, &dir, &config, cut).await?;
        Ok(Truncated { intent, segments })
    }
}

/// Where a cut left the files.
#[derive(Clone, Copy, Debug)]
struct Cut {
    /// Base of the segment holding the cut (the reset's segment).
    base: i64,
    new_end: i64,
    /// The segment stayed closed and a new active one starts at `new_end`.
    closed: bool,
}

async fn load<D: Disk>(
    disk: &D,
    dir: &Path,
    config: &LogConfig,
    cut: Cut,
) -> io::Result<Vec<Segment<D::File>>> {
    let as_io = |e: LogError| match e {
        LogError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    };
    let mut segments = Vec::with_capacity(2);
    if cut.closed {
        let seg = recovery::load_closed(disk, dir, cut.base, cut.new_end, config)
            .await
            .map_err(as_io)?
            .ok_or_else(|| io::Error::other("the cut closed segment is empty"))?;
        segments.push(seg);
    }
    let active_base = if cut.closed { cut.new_end } else { cut.base };
    let active = recovery::load_active(disk, dir, active_base, config)
        .await
        .map_err(as_io)?;
    if active.next_offset != cut.new_end {
        return Err(io::Error::other(format!(
            "after the cut, segment {active_base} ends at {} instead of {}",
            active.next_offset, cut.new_end
        )));
    }
    segments.push(active);
    Ok(segments)
}

/// At open, before segments are listed: finishes a truncation a crash
/// interrupted. No intent file: nothing to do.
pub(crate) async fn recover<D: Disk>(disk: &D, dir: &Path) -> Result<(), LogError> {
    let path = dir.join(TRUNCATE_INTENT_FILE);
    // An intent that never replaced the file: its truncation never began.
    remove_if_exists(disk, &dir.join(format!("{TRUNCATE_INTENT_FILE}.tmp"))).await?;
    let Some(bytes) = read_whole_file(disk, &path).await? else {
        return Ok(());
    };
    let intent = Intent::decode(&String::from_utf8_lossy(&bytes)).ok_or_else(|| {
        LogError::Corrupt(format!(
            "unreadable {TRUNCATE_INTENT_FILE} in {}",
            dir.display()
        ))
    })?;
    log::warn!(
        "{}: finishing a truncation a crash interrupted ({intent:?})",
        dir.display()
    );
    cut_files(disk, dir, intent, None).await?;
    remove_if_exists(disk, &path).await?;
    disk.sync_dir(dir).await?;
    Ok(())
}

async fn remove_segment<D: Disk>(disk: &D, dir: &Path, base: i64) -> io::Result<()> {
    // The .log last: a segment with a .log but no index is rebuilt, never
    // trusted.
    for path in [
        index_path(dir, base),
        time_index_path(dir, base),
        log_path(dir, base),
    ] {
        remove_if_exists(disk, &path).await?;
    }
    Ok(())
}

/// Makes the files say what `intent` asks, from any state an interrupted
/// earlier attempt left (idempotent). `hint`: what the live log knows (the
/// segment holding the cut and its kept index entries); recovery passes
/// None and scans.
async fn cut_files<D: Disk>(
    disk: &D,
    dir: &Path,
    intent: Intent,
    hint: Option<Hint<D::File>>,
) -> io::Result<Cut> {
    let mut bases: Vec<i64> = disk
        .list_dir(dir)
        .await?
        .iter()
        .filter_map(|n| parse_log_name(n))
        .collect();
    bases.sort_unstable();
    let offset = intent.offset();
    let holder = match intent {
        Intent::Truncate { .. } => bases.iter().rev().find(|&&b| b <= offset).copied(),
        Intent::Reset { .. } => None,
    };
    let Some(base) = holder else {
        // A reset (a cut below every segment is one too).
        for &b in bases.iter().rev() {
            remove_segment(disk, dir, b).await?;
        }
        drop(disk.create(&log_path(dir, offset)).await?);
        super::segment::create_empty_indexes(disk, dir, offset).await?;
        write_start_checkpoint(disk, dir, offset).await?;
        disk.sync_dir(dir).await?;
        return Ok(Cut {
            base: offset,
            new_end: offset,
            closed: false,
        });
    };
    for &b in bases.iter().rev().take_while(|&&b| b > base) {
        remove_segment(disk, dir, b).await?;
    }
    let hint = hint.filter(|h| h.base == base);
    let file = match &hint {
        Some(h) => h.file.clone(),
        None => Rc::new(disk.open(&log_path(dir, base)).await?),
    };
    let size = file.size().await?;
    // The live log knows the data's length; the file may be longer (an
    // active segment's file ends on a whole block until it is closed).
    let (scan_from, limit) = hint
        .as_ref()
        .map_or((0, size), |h| (h.scan_from, h.size.min(size)));
    let found = find_cut(&*file, base, scan_from, limit, offset).await?;
    if hint.is_some() && !found.at_batch {
        // The log's memory says a batch at or past the cut is there.
        return Err(io::Error::other(format!(
            "segment {base}: no batch at offset {offset} where the index points"
        )));
    }
    if size > found.position {
        file.truncate(found.position).await?;
    }
    file.fdatasync().await?;
    let closed = matches!(intent, Intent::Truncate { closed: true, .. }) && found.position > 0;
    match hint {
        Some(h) if found.position > 0 => {
            let (index, time_index) = kept_indexes(h, &found, closed);
            // Time index first, as a flush's finalize: a segment with an
            // .index has a whole .timeindex.
            write_whole_file(disk, &time_index_path(dir, base), &time_index).await?;
            write_whole_file(disk, &index_path(dir, base), &index).await?;
        }
        _ => {
            remove_if_exists(disk, &index_path(dir, base)).await?;
            remove_if_exists(disk, &time_index_path(dir, base)).await?;
        }
    }
    if closed {
        drop(disk.create(&log_path(dir, found.new_end)).await?);
        super::segment::create_empty_indexes(disk, dir, found.new_end).await?;
    }
    let checkpoint = read_whole_file(disk, &dir.join(START_CHECKPOINT_FILE)).await?;
    if checkpoint
        .and_then(|b| super::parse_start_checkpoint(&b))
        .is_some_and(|start| start > found.new_end)
    {
        write_start_checkpoint(disk, dir, found.new_end).await?;
    }
    disk.sync_dir(dir).await?;
    Ok(Cut {
        base,
        new_end: found.new_end,
        closed,
    })
}

async fn write_start_checkpoint<D: Disk>(disk: &D, dir: &Path, offset: i64) -> io::Result<()> {
    let text = super::start_checkpoint_text(offset);
    replace_file(disk, dir, START_CHECKPOINT_FILE, text.as_bytes()).await
}

/// Where the cut falls in the segment holding it.
struct Found {
    /// File position of the first removed batch (the segment's new size).
    position: u64,
    /// One past the last kept batch (the base when none is kept).
    new_end: i64,
    /// The scan stopped at a batch reaching the cut (not at the file end).
    at_batch: bool,
    /// Largest max timestamp of the kept batches scanned, with the base
    /// offset of its batch.
    max_scanned: Option<(i64, i64)>,
}

async fn find_cut<F: DiskFile>(
    file: &F,
    base: i64,
    from: u64,
    size: u64,
    offset: i64,
) -> io::Result<Found> {
    let mut new_end = base;
    let mut max_scanned: Option<(i64, i64)> = None;
    let mut reached = false;
    let ended = scan(file, from, size, true, |_, h, _| {
        // A batch going back in offsets ends the valid data, as at recovery.
        if h.base_offset < new_end {
            return false;
        }
        if h.last_offset() >= offset {
            reached = true;
            return false;
        }
        new_end = h.last_offset() + 1;
        if max_scanned.is_none_or(|(ts, _)| h.max_timestamp > ts) {
            max_scanned = Some((h.max_timestamp, h.base_offset));
        }
        true
    })
    .await?;
    if from > 0 && new_end == base {
        return Err(io::Error::other(format!(
            "segment {base}: no kept batch at position {from}"
        )));
    }
    Ok(Found {
        position: ended.end,
        new_end,
        at_batch: reached,
        max_scanned,
    })
}

/// The index files of the cut segment, from the entries the log kept.
/// Offset index: entries of kept batches. Time index, for a segment that
/// stays active: entries up to the last offset-index entry's batch, as
/// recovery resumes from there and accounts the rest again; for one that
/// stays closed: every entry of a kept batch, then one for the largest
/// timestamp kept, which a closed segment's loader takes as its maximum.
fn kept_indexes<F: DiskFile>(hint: Hint<F>, found: &Found, closed: bool) -> (Vec<u8>, Vec<u8>) {
    let Hint {
        base,
        mut index,
        mut time_index,
        ..
    } = hint;
    index.retain(|e| base + i64::from(e.rel_offset) < found.new_end);
    if closed {
        time_index.retain(|t| base + i64::from(t.rel_offset) < found.new_end);
        if let Some((ts, at)) = found.max_scanned {
            if ts >= 0 && time_index.last().is_none_or(|t| ts > t.timestamp) {
                let rel = u32::try_from(at - base).expect("relative offsets fit u32");
                assert!(time_index.last().is_none_or(|t| rel >= t.rel_offset));
                time_index.push(TimeEntry {
                    timestamp: ts,
                    rel_offset: rel,
                });
            }
        }
    } else {
        let last = index.last().map_or(-1, |e| i64::from(e.rel_offset));
        time_index.retain(|t| i64::from(t.rel_offset) <= last);
    }
    let mut seg: Segment<F> = Segment::new(base, None, 0);
    seg.index = index;
    seg.time_index = time_index;
    (seg.index_bytes(), seg.time_index_bytes())
}

impl<D: Disk> PartitionLog<D> {
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
        let hint = Hint {
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
        let intent = Intent::Truncate {
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
        Ok(self.truncate_job(Intent::Reset { offset }, None))
    }

    fn out_of_range(&self, offset: i64) -> LogError {
        LogError::OffsetOutOfRange {
            requested: offset,
            start: self.start_offset(),
            end: self.end_offset(),
        }
    }

    fn truncate_job(&mut self, intent: Intent, hint: Option<Hint<D::File>>) -> TruncateJob<D> {
        self.truncating = true;
        TruncateJob {
            work: Some(TruncateWork {
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
            Intent::Reset { .. } => self.segments.clear(),
            Intent::Truncate { .. } => {
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
            Intent::Truncate { offset, .. } => {
                assert!(end <= offset, "the cut removed every batch at or past it");
                self.checkpoint.clamp_to(end);
                self.log_start.min(end)
            }
            Intent::Reset { offset } => {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intent_round_trips_and_rejects_garbage() {
        for intent in [
            Intent::Truncate {
                offset: 42,
                closed: true,
            },
            Intent::Truncate {
                offset: 0,
                closed: false,
            },
            Intent::Reset { offset: 7 },
        ] {
            assert_eq!(Intent::decode(&intent.encode()), Some(intent));
        }
        for bad in [
            "",
            "1\nreset 4\n",
            "0\nreset -4\n",
            "0\ntruncate 4\n",
            "0\nx 1\n",
        ] {
            assert_eq!(Intent::decode(bad), None, "{bad:?}");
        }
    }
}
