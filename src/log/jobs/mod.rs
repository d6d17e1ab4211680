//! The I/O halves of log operations: `'static` jobs that own `Rc` clones of
//! file handles and buffers, never a borrow of the log, so the partition
//! never holds its `RefCell` across an `.await`.
//!
//! A job is planned by a synchronous `PartitionLog` method, runs on the same
//! shard (`run(self)`), and, for flushes, is applied back by
//! `PartitionLog::complete_flush`. Jobs read or write only bytes the log
//! handed them: reads never go past the `upper_offset` they were planned
//! with, which the caller keeps at or below the flushed offset.
//!
//! By kind: `flush` (commit rounds and segment finalization), `read`
//! (fetch reads and prefetch), `scan` (timestamp lookups and header
//! scans), `retention` (file deletion); the header scan they share is here.

#![forbid(unsafe_code)]

use std::io;

use crate::io::DiskFile;
use crate::protocol::batch::{BatchError, BatchHeader, BatchIter, IterStop, BATCH_HEADER_BYTES};

mod flush;
mod read;
mod retention;
mod scan;

pub use flush::*;
pub use read::*;
pub use retention::*;
pub use scan::*;

/// Bytes read per step when scanning batch headers.
pub const SCAN_WINDOW_BYTES: usize = 1024 * 1024;

// ---------------------------------------------------------------------------
// Scanning

/// Why a scan ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanStop {
    /// Reached the limit (or end of file) at a batch boundary.
    End,
    /// The visitor asked to stop at the batch it was shown.
    Visitor,
    /// A batch runs past the limit or end of file (a torn write).
    Torn,
    /// Bytes that are not a valid batch (bad length, magic, CRC; zeros).
    Invalid(BatchError),
}

/// Where and why a scan ended; `end` is just past the last accepted batch
/// (or, for `Visitor`, where the refused batch starts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanEnd {
    pub end: u64,
    pub stop: ScanStop,
}

/// Walks batches back to back from `start` up to `limit`, reading in
/// windows, and shows each `(position, header, whole batch bytes)` to
/// `visit`, which returns false to stop.
pub async fn scan<F: DiskFile>(
    file: &F,
    start: u64,
    limit: u64,
    verify_crc: bool,
    mut visit: impl FnMut(u64, &BatchHeader, &[u8]) -> bool,
) -> io::Result<ScanEnd> {
    let mut pos = start;
    let mut want = SCAN_WINDOW_BYTES;
    loop {
        if pos >= limit {
            return Ok(ScanEnd {
                end: pos,
                stop: ScanStop::End,
            });
        }
        let len = (want as u64).min(limit - pos) as usize;
        let buf = file.read_at(pos, len).await?;
        let eof = buf.len() < len || pos + buf.len() as u64 >= limit;
        let mut it = BatchIter::new(&buf, verify_crc);
        for (at, header) in it.by_ref() {
            let bytes = &buf[at..at + header.total_bytes()];
            if !visit(pos + at as u64, &header, bytes) {
                return Ok(ScanEnd {
                    end: pos + at as u64,
                    stop: ScanStop::Visitor,
                });
            }
        }
        let advanced = it.position() as u64;
        match it.stop().expect("iteration ended") {
            IterStop::End => {
                pos += advanced;
                if eof {
                    return Ok(ScanEnd {
                        end: pos,
                        stop: ScanStop::End,
                    });
                }
                want = SCAN_WINDOW_BYTES;
            }
            IterStop::Incomplete { needed } => {
                if eof {
                    return Ok(ScanEnd {
                        end: pos + advanced,
                        stop: ScanStop::Torn,
                    });
                }
                pos += advanced;
                // A batch larger than the window: read it whole next time.
                want = needed.unwrap_or(BATCH_HEADER_BYTES).max(SCAN_WINDOW_BYTES);
            }
            IterStop::Invalid(e) => {
                return Ok(ScanEnd {
                    end: pos + advanced,
                    stop: ScanStop::Invalid(e),
                })
            }
        }
    }
}
