//! The read path of a partition log: planning reads of whole batches
//! (served from the caches or handed to a [`ReadJob`]), the timestamp
//! search of ListOffsets, header scans, and what is known of unreadable
//! (corrupt) ranges. Reads never change the log's segments; they stay below
//! the offsets their caller passes (at most the flushed offset).

#![forbid(unsafe_code)]

use std::path::Path;

use super::jobs::ScanRange;
use super::segment::{log_path, Segment};
use super::{
    cache, corrupt, Corruption, LogError, PartitionLog, PrefetchJob, ReadJob, ScanJob, TimestampJob,
};
use crate::io::{Disk, DiskFile};

/// See [`PartitionLog::read_size_hint`].
#[derive(Clone, Copy, Debug)]
pub struct ReadSizeHint {
    /// At most the bytes a read can return: from the index entry at or
    /// below the offset to the end of its segment (a read stays in one).
    pub max_bytes: u64,
    /// The segment's bytes per offset, rounded up (None: it is empty).
    pub bytes_per_record: Option<u64>,
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

impl<D: Disk> PartitionLog<D> {
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
        // Only a read that goes to disk reads ahead, and not over another
        // reader's window.
        let read_ahead = if ready.is_none() && !empty && !cache.serves_another_reader(offset) {
            cache.reserve_read_ahead()
        } else {
            None
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
            read_ahead,
            cache: self.cache.clone(),
            prefetch: cache.take_prefetch().map(|plan| PrefetchJob {
                plan,
                cache: self.cache.clone(),
            }),
            min_one: true,
        })
    }

    /// What a read from `offset` can return now, to size a fetch's share
    /// before reading (one segment lookup).
    pub fn read_size_hint(&self, offset: i64) -> ReadSizeHint {
        if offset < self.start_offset() || offset >= self.end_offset() {
            return ReadSizeHint {
                max_bytes: 0,
                bytes_per_record: None,
            };
        }
        let seg = self.segment_for(offset);
        let offsets = u64::try_from(seg.next_offset - seg.base_offset).unwrap_or(0);
        ReadSizeHint {
            max_bytes: seg
                .readable_size()
                .saturating_sub(seg.position_for_offset(offset)),
            bytes_per_record: (offsets > 0 && seg.size > 0).then(|| seg.size.div_ceil(offsets)),
        }
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

    /// ListOffsets v0's answer (Kafka's `legacyFetchOffsetsBefore`): the
    /// base offset of each segment (not below the log start) with the
    /// segment's last write time, plus the log end when the active segment
    /// holds anything; from the last entry (latest, -1), the first
    /// (earliest, -2) or the last one written at or before `timestamp`,
    /// at most `max_offsets` of them going back, largest first. Kafka took
    /// a segment's file modification time; the segment's largest record
    /// timestamp is that time as the records tell it. Bounded by the
    /// segment count, whatever `max_offsets` says.
    pub fn legacy_offsets_before(
        &self,
        timestamp: i64,
        max_offsets: usize,
        now_ms: i64,
    ) -> Vec<i64> {
        let mut entries: Vec<(i64, i64)> = self
            .segments
            .iter()
            .map(|s| {
                let written = if s.max_timestamp >= 0 {
                    s.max_timestamp
                } else {
                    s.rolling_ms
                };
                (s.base_offset.max(self.log_start), written)
            })
            .collect();
        if self.active().size > 0 {
            entries.push((self.end_offset(), now_ms));
        }
        let start = match timestamp {
            -1 => entries.len().checked_sub(1),
            -2 => (!entries.is_empty()).then_some(0),
            ts => entries.iter().rposition(|&(_, written)| written <= ts),
        };
        let Some(start) = start else {
            return Vec::new();
        };
        let mut offsets: Vec<i64> = entries[..=start]
            .iter()
            .rev()
            .take(max_offsets)
            .map(|&(offset, _)| offset)
            .collect();
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        offsets
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
}
