//! Timestamp lookups (ListOffsets) and header scans over segment ranges.

use std::rc::Rc;

use super::super::LogError;
use super::*;
use crate::io::{Disk, DmaDisk};
use crate::protocol::batch::BatchHeader;

/// One segment range to scan.
pub(crate) struct ScanRange<F> {
    pub file: Rc<F>,
    pub start_position: u64,
    pub limit_position: u64,
    /// Set when the range stops early at a corrupt batch: a search that
    /// reaches the limit without its answer fails with this error rather
    /// than go on past unreadable records.
    pub stop_error: Option<LogError>,
}

/// ListOffsets by timestamp; planned by `PartitionLog::plan_offset_for_timestamp`.
pub struct TimestampJob<D: Disk = DmaDisk> {
    pub(crate) ranges: Vec<ScanRange<D::File>>,
    pub(crate) timestamp: i64,
    /// The log start offset when planned: batches wholly below it are skipped.
    pub(crate) lower_offset: i64,
    pub(crate) upper_offset: i64,
}

impl<D: Disk> TimestampJob<D> {
    /// `(offset, timestamp)` of the first batch below the upper offset whose
    /// max timestamp is >= the target: its base offset and max timestamp
    /// (batch granularity: records are not decoded). None if there is none.
    pub async fn run(self) -> Result<Option<(i64, i64)>, LogError> {
        let (ts, lower, upper) = (self.timestamp, self.lower_offset, self.upper_offset);
        for range in self.ranges {
            let mut found = None;
            let mut past_upper = false;
            scan(
                &*range.file,
                range.start_position,
                range.limit_position,
                false,
                |_, h, _| {
                    if h.base_offset >= upper {
                        past_upper = true;
                        return false;
                    }
                    if h.max_timestamp >= ts && h.last_offset() >= lower {
                        found = Some((h.base_offset.max(lower), h.max_timestamp));
                        return false;
                    }
                    true
                },
            )
            .await?;
            if found.is_some() || past_upper {
                return Ok(found);
            }
            if let Some(e) = range.stop_error {
                return Err(e);
            }
        }
        Ok(None)
    }
}

/// Headers of every batch from an offset; planned by `PartitionLog::plan_scan_headers`.
pub struct ScanJob<D: Disk = DmaDisk> {
    pub(crate) ranges: Vec<ScanRange<D::File>>,
    pub(crate) from_offset: i64,
    pub(crate) upper_offset: i64,
}

impl<D: Disk> ScanJob<D> {
    pub async fn run(self) -> Result<Vec<BatchHeader>, LogError> {
        let (from, upper) = (self.from_offset, self.upper_offset);
        let mut out = Vec::new();
        for range in self.ranges {
            scan(
                &*range.file,
                range.start_position,
                range.limit_position,
                false,
                |_, h, _| {
                    if h.base_offset >= upper {
                        return false;
                    }
                    if h.base_offset >= from {
                        out.push(*h);
                    }
                    true
                },
            )
            .await?;
        }
        Ok(out)
    }
}
