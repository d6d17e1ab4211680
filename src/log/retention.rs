//! Removing segments from the front of a partition log: retention
//! (retention.ms, retention.bytes, segments below the log start offset) and
//! DeleteRecords, which moves the log start offset and makes it durable in
//! the `log-start-offset-checkpoint` file before any segment file goes.
//! Both hand the files to delete to a [`RetentionJob`].

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::rc::Rc;

use super::jobs::CheckpointWrite;
use super::segment::{index_path, log_path, time_index_path};
use super::{cleaner, LogError, PartitionLog, RetentionJob};
use crate::io::Disk;

impl<D: Disk> PartitionLog<D> {
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
        let mut doomed_bytes = 0u64;
        // Why the segments go, in Kafka's words, each reason once.
        let mut reasons: Vec<String> = Vec::new();
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
            let reason = if below_start {
                format!("log start offset {} breach", self.log_start)
            } else if by_time {
                format!("retention time {} ms breach", self.config.retention_ms)
            } else {
                format!(
                    "retention size {} bytes breach",
                    self.config.retention_bytes
                )
            };
            if !reasons.contains(&reason) {
                reasons.push(reason);
            }
            total -= seg.size as i64;
            doomed_bytes += seg.size;
            doomed += 1;
        }
        if doomed == 0 {
            return None;
        }
        let (paths, files) = self.drain_front(doomed);
        super::stats::retention_deleted(doomed as u64, doomed_bytes);
        log::info!(
            "{}: deleting {doomed} segments ({}) due to {}; the log now starts at offset {}",
            self.dir.display(),
            super::progress::bytes_text(doomed_bytes),
            reasons.join(" and "),
            self.log_start
        );
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
}
