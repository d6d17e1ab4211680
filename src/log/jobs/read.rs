//! Read jobs for fetches: whole batches from a segment, served from the read
//! caches or the disk, and the background prefetch of the next read-ahead
//! window.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;

use super::super::cache::{PrefetchPlan, ReadAheadCharge, ReadCache, WindowFill};
use super::super::LogError;
use super::*;
use crate::io::{Disk, DiskFile, DmaDisk};
use crate::protocol::batch::{BatchHeader, BatchIter, IterStop, BATCH_HEADER_BYTES};

/// Reads whole batches for a fetch; planned by `PartitionLog::plan_read`.
pub struct ReadJob<D: Disk = DmaDisk> {
    /// Served from the log's cache at planning: no I/O.
    pub(crate) ready: Option<Bytes>,
    pub(crate) file: Option<Rc<D::File>>,
    pub(crate) segment_base: i64,
    pub(crate) start_position: u64,
    pub(crate) limit_position: u64,
    pub(crate) offset: i64,
    pub(crate) upper_offset: i64,
    pub(crate) max_bytes: usize,
    /// Extra bytes to read and keep in the cache for the next fetches,
    /// held against the shard's cache budget while the read runs.
    pub(crate) read_ahead: Option<ReadAheadCharge>,
    pub(crate) cache: Rc<RefCell<ReadCache<D::File>>>,
    /// The next read-ahead window to read in the background.
    pub(crate) prefetch: Option<PrefetchJob<D>>,
    /// At least one batch, even one larger than `max_bytes` (KIP-74).
    pub(crate) min_one: bool,
}

/// Where the batches a read wants lie in the bytes it read.
enum Located {
    /// `[first, served)`: what the read returns; `[first, whole)`: every
    /// whole batch below the upper offset (the read-ahead window).
    Found {
        first: usize,
        served: usize,
        whole: usize,
    },
    /// A batch at or past the upper offset comes before any wanted one.
    Nothing,
    /// The bytes end (or stop being batches) before a wanted batch is whole;
    /// `resume`: where in them the cut batch starts and how many bytes
    /// from there complete it, when its header says.
    Short { resume: Option<(usize, usize)> },
}

impl<D: Disk> ReadJob<D> {
    /// Returns only batches that fit `max_bytes` together: nothing when
    /// the first is larger (Kafka's reads past a response's first
    /// partition), and no second read for a batch the first cut.
    pub fn within_max_bytes(mut self) -> Self {
        self.min_one = false;
        self
    }

    /// Whether the caches answered it at planning (it needs no I/O).
    pub fn is_ready(&self) -> bool {
        self.ready.is_some()
    }

    /// The background read this fetch made due, for the caller to spawn
    /// (the log does not spawn tasks). Dropping it is harmless.
    pub fn take_prefetch(&mut self) -> Option<PrefetchJob<D>> {
        self.prefetch.take()
    }

    /// Whole batches from the one containing `offset`, below `upper_offset`,
    /// at most `max_bytes` unless the first batch alone is larger (KIP-74).
    /// Empty when there is nothing to read.
    ///
    /// One disk read of `max_bytes` plus the read-ahead from the indexed
    /// position usually holds the batch wanted and all the fetch returns;
    /// what it holds beyond that is kept for the next fetch. A batch too
    /// large for that read falls back to scanning for it.
    pub async fn run(mut self) -> Result<Bytes, LogError> {
        if let Some(bytes) = self.ready.take() {
            return Ok(self.fitting(bytes));
        }
        let Some(file) = self.file.clone() else {
            return Ok(Bytes::new());
        };
        let span = self.limit_position - self.start_position;
        let read_ahead_bytes = self.read_ahead.as_ref().map_or(0, ReadAheadCharge::bytes);
        let want = (self.max_bytes.max(BATCH_HEADER_BYTES) as u64 + read_ahead_bytes as u64)
            .min(span) as usize;
        let buf = file.read_at(self.start_position, want).await?;
        // The window (if any) charges what it keeps from here on.
        self.read_ahead = None;
        let located = locate(&buf, self.offset, self.upper_offset, self.max_bytes);
        match located {
            Located::Found {
                first,
                served,
                whole,
            } => {
                if whole > served && read_ahead_bytes > 0 {
                    self.keep_window(file, &buf, first, served, whole);
                }
                Ok(self.fitting(buf.slice(first..served)))
            }
            Located::Nothing => Ok(Bytes::new()),
            // The batch was cut by the read's end (larger than the read):
            // read again from its start, large enough to hold it (and,
            // when it comes before the wanted one, `max_bytes` more). A
            // read within `max_bytes` returns nothing if the wanted batch
            // alone is larger.
            Located::Short {
                resume: Some((at, needed)),
            } => {
                let wanted =
                    BatchHeader::parse(&buf[at..]).is_ok_and(|h| h.last_offset() >= self.offset);
                if wanted && !self.min_one && needed > self.max_bytes {
                    return Ok(Bytes::new());
                }
                let pos = self.start_position + at as u64;
                let want = if wanted {
                    self.max_bytes.max(needed)
                } else {
                    needed + self.max_bytes
                }
                .min((self.limit_position - pos) as usize);
                let buf = file.read_at(pos, want).await?;
                match locate(&buf, self.offset, self.upper_offset, self.max_bytes) {
                    Located::Found { first, served, .. } => {
                        Ok(self.fitting(buf.slice(first..served)))
                    }
                    Located::Nothing => Ok(Bytes::new()),
                    Located::Short { .. } => self.run_scanning(file).await,
                }
            }
            Located::Short { resume: None } => self.run_scanning(file).await,
        }
    }

    /// `bytes` (whole batches from the first wanted), or nothing when
    /// they exceed `max_bytes` and this read may not go past it (they are
    /// then one batch).
    fn fitting(&self, bytes: Bytes) -> Bytes {
        if self.min_one || bytes.len() <= self.max_bytes {
            bytes
        } else {
            Bytes::new()
        }
    }

    fn keep_window(
        &self,
        file: Rc<D::File>,
        buf: &Bytes,
        first: usize,
        served: usize,
        whole: usize,
    ) {
        let served_bytes = &buf[first..served];
        let mut next_offset = self.offset;
        for (_, h) in BatchIter::new(served_bytes, false) {
            next_offset = h.last_offset() + 1;
        }
        self.cache.borrow_mut().install_window(WindowFill {
            file,
            segment_base: self.segment_base,
            position: self.start_position + first as u64,
            bytes: buf.slice(first..whole),
            allocated_bytes: buf.len(),
            cursor: (next_offset, served - first),
        });
    }

    /// The read for batches the first read could not hold: scan for the
    /// first wanted batch, then read from it.
    async fn run_scanning(self, file: Rc<D::File>) -> Result<Bytes, LogError> {
        let (offset, upper) = (self.offset, self.upper_offset);
        let mut first: Option<(u64, BatchHeader)> = None;
        scan(
            &*file,
            self.start_position,
            self.limit_position,
            false,
            |pos, h, _| {
                if h.base_offset >= upper {
                    return false;
                }
                if h.last_offset() >= offset {
                    first = Some((pos, *h));
                    return false;
                }
                true
            },
        )
        .await?;
        let Some((pos, header)) = first else {
            return Ok(Bytes::new());
        };
        let want = self
            .max_bytes
            .max(header.total_bytes())
            .min((self.limit_position - pos) as usize);
        let buf = file.read_at(pos, want).await?;
        match locate(&buf, offset, upper, self.max_bytes) {
            Located::Found { first, served, .. } => Ok(self.fitting(buf.slice(first..served))),
            Located::Nothing | Located::Short { .. } => Err(LogError::Corrupt(format!(
                "batch at position {pos} could not be read back"
            ))),
        }
    }
}

/// Reads the next read-ahead window of a partition in the background;
/// planned by `PartitionLog::plan_read` when a fetch left its window
/// nearly used up.
pub struct PrefetchJob<D: Disk = DmaDisk> {
    pub(crate) plan: PrefetchPlan<D::File>,
    pub(crate) cache: Rc<RefCell<ReadCache<D::File>>>,
}

impl<D: Disk> PrefetchJob<D> {
    pub async fn run(self) {
        let plan = &self.plan;
        let read = plan.file.read_at(plan.position, plan.len).await;
        let Ok(buf) = read else {
            // The fetch that needs these bytes reads them itself.
            return;
        };
        if let Located::Found { first, whole, .. } =
            locate(&buf, plan.offset, plan.upper, usize::MAX)
        {
            assert_eq!(first, 0, "a prefetch starts at a batch boundary");
            let fill = WindowFill {
                file: plan.file.clone(),
                segment_base: plan.segment_base,
                position: plan.position,
                bytes: buf.slice(..whole),
                allocated_bytes: buf.len(),
                cursor: (plan.offset, 0),
            };
            self.cache
                .borrow_mut()
                .install_prefetched(plan.generation, fill);
        }
    }
}

impl<D: Disk> Drop for PrefetchJob<D> {
    fn drop(&mut self) {
        self.cache.borrow_mut().prefetch_done();
    }
}

/// Finds, in bytes read from a batch boundary, the batch holding `offset`
/// and what a read of `max_bytes` below `upper` returns from there.
fn locate(buf: &[u8], offset: i64, upper: i64, max_bytes: usize) -> Located {
    let mut first = None;
    let (mut served, mut whole) = (0, 0);
    let mut serving = true;
    let mut it = BatchIter::new(buf, false);
    for (at, h) in it.by_ref() {
        if h.base_offset >= upper {
            break;
        }
        let next = at + h.total_bytes();
        match first {
            None if h.last_offset() < offset => continue,
            None => {
                first = Some(at);
                served = next;
            }
            Some(start) => {
                serving = serving && next - start <= max_bytes;
                if serving {
                    served = next;
                }
            }
        }
        whole = next;
    }
    match first {
        Some(first) => Located::Found {
            first,
            served,
            whole,
        },
        // Stopped early: at a batch at or past the upper offset.
        None if it.stop().is_none() => Located::Nothing,
        None => Located::Short {
            resume: match it.stop() {
                Some(IterStop::Incomplete { needed: Some(n) }) => Some((it.position(), n)),
                _ => None,
            },
        },
    }
}
