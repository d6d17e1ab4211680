//! The scrub: background verification of stored segments with the
//! stored-batch parser (CRC, header consistency, offset order, every
//! record), so damage done to files while the broker was down (or bit rot
//! since) is found, logged with file, position and offset, and marked,
//! instead of being served to consumers.
//!
//! What it reads: every closed segment whose contents this process has
//! not verified (at start, all of them: their index files were trusted),
//! and again each `log.scrub.interval.ms`; the active segment's bytes
//! before the point recovery resumed from (recovery itself checked the
//! rest). Batches appended by this process were validated on the way in.
//!
//! Shape: the log's plan / job / complete pattern. `plan_scrub` hands out
//! one step ([`limits::SCRUB_STEP_BYTES`] at most, ending at a batch
//! boundary) of one segment; [`ScrubJob::run`] reads and checks it;
//! `complete_scrub` moves the segment's scrub cursor or marks it corrupt.
//! The caller paces the steps (bytes per second per shard). A job holds
//! only an `Rc` of the segment's file: if the segment was replaced or
//! removed meanwhile (retention, cleaner, truncation) its outcome is
//! dropped.
//!
//! Marking: a corrupt closed segment loses its index files (so every
//! later open rescans it and finds the damage again); a corrupt active
//! segment is rolled so new appends go to a readable segment (the caller
//! flushes, which finalizes it without index files).

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::rc::Rc;

use super::jobs::{scan, ScanStop};
use super::segment::{index_path, log_path, time_index_path, Corruption};
use super::{PartitionLog, SEGMENT_OFFSETS_MAX};
use crate::io::{remove_if_exists, Disk, DmaDisk};
use crate::limits;
use crate::protocol::batch::RecordsError;
use crate::protocol::records;

/// One step of a scrub pass over one segment.
pub struct ScrubJob<D: Disk = DmaDisk> {
    disk: D,
    dir: PathBuf,
    file: Rc<D::File>,
    base: i64,
    /// The pass covers `[start, end)`; this step stops at the first batch
    /// boundary at or after `stop`.
    start: u64,
    stop: u64,
    end: u64,
    /// The offset the batch at `start` must have (a lower bound in a
    /// cleaned segment).
    offset: i64,
    contiguous: bool,
    /// The segment's offsets end before this.
    offset_limit: i64,
}

/// What a scrub step found, for `PartitionLog::complete_scrub`.
pub struct ScrubOutcome<D: Disk = DmaDisk> {
    file: Rc<D::File>,
    base: i64,
    /// Position and offset just past the last batch verified.
    reached: u64,
    next_offset: i64,
    /// Bytes read (the caller's pacing).
    pub bytes: u64,
    corrupt: Option<Corruption>,
    /// A read failed: nothing is marked, the step is retried later.
    pub io_error: Option<std::io::Error>,
}

impl<D: Disk> ScrubJob<D> {
    pub async fn run(self) -> ScrubOutcome<D> {
        use std::cell::{Cell, RefCell};
        let next_offset = Cell::new(self.offset);
        let reached = Cell::new(self.start);
        let refused: RefCell<Option<String>> = RefCell::new(None);
        let stop_at = Cell::new(self.stop);
        let mut visit = |pos: u64, h: &crate::protocol::batch::BatchHeader, bytes: &[u8]| {
            if pos >= stop_at.get() {
                return false;
            }
            let expected = next_offset.get();
            let in_order = if self.contiguous {
                h.base_offset == expected
            } else {
                h.base_offset >= expected
            };
            let why = if !in_order {
                Some(format!(
                    "batch base offset {} where {expected} was expected",
                    h.base_offset
                ))
            } else if h.last_offset() >= self.offset_limit
                || h.last_offset() - self.base > SEGMENT_OFFSETS_MAX
            {
                Some(format!(
                    "batch last offset {} is past the segment's offsets",
                    h.last_offset()
                ))
            } else {
                records::walk(bytes, h, records::Origin::Stored, |_| {
                    Ok::<(), RecordsError>(())
                })
                .err()
                .map(|e| e.to_string())
            };
            if let Some(why) = why {
                *refused.borrow_mut() = Some(why);
                return false;
            }
            next_offset.set(h.last_offset() + 1);
            reached.set(pos + bytes.len() as u64);
            true
        };
        // One step reads at most SCRUB_STEP_BYTES; a batch crossing the
        // step's end is left whole to the next step, and one larger than a
        // whole step is read alone.
        let limit = self.end.min(self.stop);
        let mut scanned = scan(&*self.file, self.start, limit, true, &mut visit).await;
        let crossed = matches!(&scanned, Ok(e) if e.stop == ScanStop::Torn && limit < self.end);
        if crossed && reached.get() == self.start {
            stop_at.set(self.start + 1);
            scanned = scan(&*self.file, self.start, self.end, true, &mut visit).await;
        }
        let (reached, next_offset) = (reached.get(), next_offset.get());
        let refused = refused.into_inner();
        let mut outcome = ScrubOutcome {
            file: self.file.clone(),
            base: self.base,
            reached,
            next_offset,
            bytes: 0,
            corrupt: None,
            io_error: None,
        };
        let ended = match scanned {
            Ok(ended) => ended,
            Err(e) => {
                outcome.io_error = Some(e);
                return outcome;
            }
        };
        outcome.bytes = reached.saturating_sub(self.start).max(1);
        let reason = match ended.stop {
            _ if refused.is_some() => refused,
            ScanStop::End if reached >= self.end || limit < self.end => None,
            ScanStop::Visitor => None, // reached the step's end
            ScanStop::Torn if limit < self.end && reached > self.start => None,
            ScanStop::Torn => Some("a batch runs past the end of the segment".to_string()),
            ScanStop::Invalid(e) => Some(e.to_string()),
            ScanStop::End => Some("the segment ends early".to_string()),
        };
        if let Some(reason) = reason {
            outcome.corrupt = Some(Corruption {
                position: reached,
                offset: next_offset,
                reason,
                // The segment's time index was loaded (or built by appends)
                // before the scrub read it.
                timestamps_known: true,
            });
            // Without index files the next open rebuilds them by scanning,
            // and finds this again (an active segment's files are left from
            // the last clean close: stale, and going too).
            for path in [
                time_index_path(&self.dir, self.base),
                index_path(&self.dir, self.base),
            ] {
                if let Err(e) = remove_if_exists(&self.disk, &path).await {
                    log::warn!("{}: cannot remove: {e}", path.display());
                }
            }
        }
        outcome
    }
}

impl<D: Disk> PartitionLog<D> {
    /// The next scrub step of this log, oldest segment first: a pass in
    /// progress, or a new pass over a settled closed segment not verified
    /// within `interval_ms`. None when nothing is due.
    pub fn plan_scrub(&mut self, now_ms: i64, interval_ms: i64) -> Option<ScrubJob<D>> {
        if self.truncating || self.failed {
            return None;
        }
        let last = self.segments.len() - 1;
        let at = self.segments.iter().enumerate().position(|(i, s)| {
            s.corrupt.is_none()
                && s.file.is_some()
                && (s.scrub_pending()
                    || (i < last
                        && s.is_settled()
                        && s.verified_at_ms
                            .is_none_or(|t| now_ms.saturating_sub(t) >= interval_ms)))
        })?;
        let seg = &mut self.segments[at];
        if !seg.scrub_pending() {
            seg.scrub_pos = 0;
            seg.scrub_end = seg.size;
            seg.scrub_offset = seg.base_offset;
        }
        Some(ScrubJob {
            disk: self.disk.clone(),
            dir: self.dir.clone(),
            file: seg.file.clone().expect("checked above"),
            base: seg.base_offset,
            start: seg.scrub_pos,
            stop: seg.scrub_pos + limits::SCRUB_STEP_BYTES,
            end: seg.scrub_end,
            offset: seg.scrub_offset,
            contiguous: !seg.cleaned,
            offset_limit: seg.next_offset,
        })
    }

    /// Applies a scrub step. Returns true when it marked the active
    /// segment corrupt and rolled it: the caller flushes, so the closed
    /// segment is finalized (without index files).
    pub fn complete_scrub(&mut self, outcome: ScrubOutcome<D>, now_ms: i64) -> bool {
        let last = self.segments.len() - 1;
        let Some(at) = self.segments.iter().position(|s| {
            s.base_offset == outcome.base
                && s.file
                    .as_ref()
                    .is_some_and(|f| Rc::ptr_eq(f, &outcome.file))
        }) else {
            return false; // replaced or removed meanwhile
        };
        if outcome.io_error.is_some() {
            return false;
        }
        let seg = &mut self.segments[at];
        if !seg.scrub_pending() || seg.corrupt.is_some() {
            return false;
        }
        let Some(c) = outcome.corrupt else {
            seg.scrub_pos = outcome.reached;
            seg.scrub_offset = outcome.next_offset;
            if seg.scrub_pos >= seg.scrub_end {
                seg.verified_at_ms = Some(now_ms);
            }
            return false;
        };
        log::error!(
            "{}: scrub: batch at position {} (offset {}) is corrupt: {}; offsets [{}, {}) are \
             unreadable (reads get KAFKA_STORAGE_ERROR) until retention or DeleteRecords \
             removes the segment",
            log_path(&self.dir, seg.base_offset).display(),
            c.position,
            c.offset,
            c.reason,
            c.offset,
            seg.next_offset
        );
        seg.scrub_pos = seg.scrub_end;
        seg.corrupt = Some(c);
        self.cache.borrow_mut().drop_window();
        if at == last && !self.truncating && !self.failed {
            self.roll(now_ms);
            return true;
        }
        false
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
}
