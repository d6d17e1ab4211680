//! The write path of a partition log: `append` copies a batch into the
//! active segment's write buffers, `roll` closes a full or old segment,
//! and `take_flush` / `complete_flush` hand the pending writes to a
//! [`FlushJob`] and apply its outcome (rolling back to the last successful
//! flush when it failed). The shape and invariants are in the parent
//! module's docs.

#![forbid(unsafe_code)]

use super::jobs::{Finalize, FlushCommit, FlushFailure, SegmentFlush};
use super::segment::Segment;
use super::{
    corrupt, throttled, AppendInfo, FlushJob, FlushOutcome, LogError, PartitionLog, Stamp,
    SEGMENT_OFFSETS_MAX,
};
use crate::clock::now_ms;
use crate::io::Disk;
use crate::protocol::batch::{self, BatchHeader, BATCH_HEADER_BYTES};

impl<D: Disk> PartitionLog<D> {
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
    pub(super) fn roll(&mut self, now: i64) -> i64 {
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
        super::stats::rolled();
        log::debug!(
            "{}: rolled a new segment at offset {base}",
            self.dir.display()
        );
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
}
