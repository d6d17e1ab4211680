//! The I/O halves of log operations: `'static` jobs that own `Rc` clones of
//! file handles and buffers, never a borrow of the log, so the partition
//! never holds its `RefCell` across an `.await`.
//!
//! A job is planned by a synchronous `PartitionLog` method, runs on the same
//! shard (`run(self)`), and, for flushes, is applied back by
//! `PartitionLog::complete_flush`. Jobs read or write only bytes the log
//! handed them: reads never go past the `upper_offset` they were planned
//! with, which the caller keeps at or below the flushed offset.

#![forbid(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::io;
use std::path::PathBuf;
use std::rc::Rc;

use bytes::Bytes;

use super::cache::{PrefetchPlan, ReadAheadCharge, ReadCache, WindowFill};
use super::segment::{index_path, log_path, time_index_path, SegSnap};
use super::LogError;
use crate::io::{
    is_no_space, remove_if_exists, replace_file, short_write, write_whole_file, Disk, DiskFile,
    DmaDisk,
};
use crate::protocol::batch::{BatchError, BatchHeader, BatchIter, IterStop, BATCH_HEADER_BYTES};

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

// ---------------------------------------------------------------------------
// Flush

/// A closed segment's on-disk close: cut the .log, write its indexes.
pub(crate) struct Finalize {
    pub exact_len: u64,
    pub index: Vec<u8>,
    pub time_index: Vec<u8>,
    /// False for a segment marked corrupt: without index files the next
    /// open rescans it and finds the damage again.
    pub write_indexes: bool,
}

pub(crate) struct SegmentFlush<F: DiskFile> {
    pub base_offset: i64,
    /// None: create the file.
    pub file: Option<Rc<F>>,
    pub writes: Vec<(u64, F::Buf)>,
    /// Length on disk before this job, to cut back to if it fails.
    pub pre_size: u64,
    pub finalize: Option<Finalize>,
}

/// What a successful flush makes true, applied by `complete_flush`.
/// A segment a failing flush may have to undo: (base offset, the file if it
/// existed before the job, its length before the job, whether the job
/// finalized it).
type Touched<F> = (i64, Option<Rc<F>>, u64, bool);

pub(crate) struct FlushCommit {
    pub end_offset: i64,
    /// (segment base, state at take, tail block at take).
    pub segments: Vec<(i64, SegSnap, Vec<u8>)>,
}

/// Writes taken from a log by `PartitionLog::take_flush`.
pub struct FlushJob<D: Disk = DmaDisk> {
    pub(crate) disk: D,
    pub(crate) dir: PathBuf,
    pub(crate) segments: Vec<SegmentFlush<D::File>>,
    pub(crate) commit: FlushCommit,
}

/// How a flush failed.
#[derive(Debug)]
pub(crate) enum FlushFailure {
    /// ENOSPC while writing; the job undid its writes.
    NoSpace(io::Error),
    /// Anything else (fdatasync, undo failed): the log goes offline.
    Failed(io::Error),
}

/// The result of [`FlushJob::run`], to hand to `PartitionLog::complete_flush`.
pub struct FlushOutcome<D: Disk = DmaDisk> {
    pub(crate) commit: FlushCommit,
    pub(crate) created: Vec<(i64, Rc<D::File>)>,
    pub(crate) result: Result<bool, FlushFailure>,
}

impl<D: Disk> FlushOutcome<D> {
    /// True when the flush succeeded (before `complete_flush` applies it).
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }
}

impl<D: Disk> FlushJob<D> {
    /// The offset this job makes durable when it succeeds.
    pub fn end_offset(&self) -> i64 {
        self.commit.end_offset
    }

    /// Writes the buffers (creating files of rolled segments, closing rolled
    /// ones on disk) and, if `sync`, fdatasyncs every file written. Segments
    /// are handled in order and each one synced before the next is created,
    /// so a newer segment never exists on disk ahead of an older one's data.
    pub async fn run(self, sync: bool) -> FlushOutcome<D> {
        let FlushJob {
            disk,
            dir,
            segments,
            commit,
        } = self;
        let mut created: Vec<(i64, Rc<D::File>)> = Vec::new();
        let mut touched: Vec<Touched<D::File>> = Vec::new();
        let mut result = Ok(sync);
        for seg in segments {
            let base = seg.base_offset;
            let pre_size = seg.pre_size;
            let finalizes = seg.finalize.is_some();
            let file = match &seg.file {
                Some(f) => f.clone(),
                None => match create_segment_files(&disk, &dir, base).await {
                    Ok(f) => {
                        let f = Rc::new(f);
                        created.push((base, f.clone()));
                        f
                    }
                    Err(e) => {
                        result = Err(classify_write(e));
                        break;
                    }
                },
            };
            let was_created = seg.file.is_none();
            touched.push((
                base,
                (!was_created).then(|| file.clone()),
                pre_size,
                finalizes,
            ));
            if let Err(failure) = flush_segment(&disk, &dir, &file, seg, sync).await {
                result = Err(failure);
                break;
            }
        }
        if result.is_ok() && sync && !created.is_empty() {
            if let Err(e) = disk.sync_dir(&dir).await {
                result = Err(FlushFailure::Failed(e));
            }
        }
        if let Err(FlushFailure::NoSpace(e)) = result {
            result = Err(undo(&disk, &dir, &touched, e).await);
            created.clear();
        }
        FlushOutcome {
            commit,
            created,
            result,
        }
    }
}

fn classify_write(e: io::Error) -> FlushFailure {
    if is_no_space(&e) {
        FlushFailure::NoSpace(e)
    } else {
        FlushFailure::Failed(e)
    }
}

async fn flush_segment<D: Disk>(
    disk: &D,
    dir: &std::path::Path,
    file: &Rc<D::File>,
    seg: SegmentFlush<D::File>,
    sync: bool,
) -> Result<(), FlushFailure> {
    let finalized = seg.finalize.is_some();
    // One write that must be durable: make it durable itself, one disk
    // operation instead of a write and then an fdatasync.
    let durable_write = sync && !finalized && seg.writes.len() == 1;
    for (pos, buf) in seg.writes {
        let len = crate::io::DiskBuf::bytes(&buf).len();
        let written = if durable_write {
            file.write_at_durable(buf, pos).await
        } else {
            file.write_at(buf, pos).await
        };
        match written {
            Ok(n) if n == len => {}
            Ok(n) => return Err(classify_write(short_write(n, len))),
            Err(e) => return Err(classify_write(e)),
        }
    }
    if let Some(fin) = seg.finalize {
        // Cut first, then the indexes: an index file on disk means the .log
        // has its exact length. Time index before offset index: a segment
        // with an .index also has a whole .timeindex.
        // The .log is synced here even when the flush is not: index files on
        // disk promise a whole, durable segment, and recovery trusts them.
        file.truncate(fin.exact_len)
            .await
            .map_err(FlushFailure::Failed)?;
        file.fdatasync().await.map_err(FlushFailure::Failed)?;
        let base = seg.base_offset;
        if fin.write_indexes {
            write_whole_file(disk, &time_index_path(dir, base), &fin.time_index)
                .await
                .map_err(classify_write)?;
            write_whole_file(disk, &index_path(dir, base), &fin.index)
                .await
                .map_err(classify_write)?;
        } else {
            // The empty index files it was created with go too.
            remove_if_exists(disk, &index_path(dir, base))
                .await
                .map_err(FlushFailure::Failed)?;
            remove_if_exists(disk, &time_index_path(dir, base))
                .await
                .map_err(FlushFailure::Failed)?;
        }
    }
    if sync && !finalized && !durable_write {
        file.fdatasync().await.map_err(FlushFailure::Failed)?;
    }
    Ok(())
}

/// After ENOSPC: cut every file this job wrote back to its length before
/// the job, remove files and indexes it created, so nothing discarded can
/// resurface at recovery. If that fails too, the log must go offline.
/// A new segment's `.log`, with its `.index` and `.timeindex` created
/// empty beside it (the segment's entries are written whole when it
/// closes), so every segment on disk has its three files, as in Kafka.
async fn create_segment_files<D: Disk>(
    disk: &D,
    dir: &std::path::Path,
    base: i64,
) -> io::Result<D::File> {
    let file = disk.create(&log_path(dir, base)).await?;
    super::segment::create_empty_indexes(disk, dir, base).await?;
    Ok(file)
}

async fn undo<D: Disk>(
    disk: &D,
    dir: &std::path::Path,
    touched: &[Touched<D::File>],
    cause: io::Error,
) -> FlushFailure {
    for (base, file, pre_size, finalized) in touched.iter().rev() {
        let undone = async {
            if *finalized {
                remove_if_exists(disk, &index_path(dir, *base)).await?;
                remove_if_exists(disk, &time_index_path(dir, *base)).await?;
            }
            match file {
                Some(f) => {
                    f.truncate(*pre_size).await?;
                    f.fdatasync().await
                }
                None => {
                    remove_if_exists(disk, &index_path(dir, *base)).await?;
                    remove_if_exists(disk, &time_index_path(dir, *base)).await?;
                    remove_if_exists(disk, &log_path(dir, *base)).await
                }
            }
        }
        .await;
        if let Err(e) = undone {
            return FlushFailure::Failed(io::Error::new(
                e.kind(),
                format!("undoing a flush after `{cause}` failed: {e}"),
            ));
        }
    }
    FlushFailure::NoSpace(cause)
}

// ---------------------------------------------------------------------------
// Read

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

// ---------------------------------------------------------------------------
// Timestamp lookup and header scans

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

// ---------------------------------------------------------------------------
// Retention

/// Deletes the files of segments retention or DeleteRecords removed from
/// the log, after making a moved log start offset durable.
pub struct RetentionJob<D: Disk = DmaDisk> {
    pub(crate) disk: D,
    pub(crate) paths: Vec<PathBuf>,
    /// Open handles, dropped (closed) once the names are gone.
    pub(crate) files: Vec<Rc<D::File>>,
    /// A clone of the log's token: while a job is out the log will not
    /// truncate (a reset could make a file of a name this job deletes).
    pub(crate) _out: Rc<()>,
    /// DeleteRecords: the log start offset checkpoint to write first.
    pub(crate) checkpoint: Option<CheckpointWrite<D>>,
}

/// The log start offset checkpoint of one log, shared by the log and the
/// jobs that write it. Lives on the partition's shard.
pub(crate) struct StartCheckpoint {
    /// The newest log start offset that must become durable.
    wanted: Cell<i64>,
    /// The value the file holds.
    written: Cell<i64>,
    /// One writer at a time, so an older value never lands after a newer one.
    lock: futures::lock::Mutex<()>,
}

impl StartCheckpoint {
    pub fn new(durable: i64) -> StartCheckpoint {
        StartCheckpoint {
            wanted: Cell::new(durable),
            written: Cell::new(durable),
            lock: futures::lock::Mutex::new(()),
        }
    }

    /// A truncation (or reset) put `offset` in the checkpoint file; no
    /// checkpoint write may be out (the log refuses to truncate then).
    pub fn rewrite(&self, offset: i64) {
        self.wanted.set(offset);
        self.written.set(offset);
    }

    /// A truncation to `end` rewrote a checkpoint file above it (if any).
    pub fn clamp_to(&self, end: i64) {
        self.wanted.set(self.wanted.get().min(end));
        self.written.set(self.written.get().min(end));
    }

    pub fn want(&self, offset: i64) {
        assert!(
            offset >= self.wanted.get(),
            "the log start never moves back"
        );
        self.wanted.set(offset);
    }
}

/// Writes the newest wanted log start offset: a temp file (written and
/// fdatasync'd), renamed over the checkpoint, then the directory synced.
pub(crate) struct CheckpointWrite<D: Disk> {
    pub disk: D,
    pub dir: PathBuf,
    pub shared: Rc<StartCheckpoint>,
}

impl<D: Disk> CheckpointWrite<D> {
    async fn run(self) -> io::Result<()> {
        let _one_writer = self.shared.lock.lock().await;
        let want = self.shared.wanted.get();
        if want <= self.shared.written.get() {
            return Ok(()); // a later job already wrote it
        }
        let text = super::start_checkpoint_text(want);
        // DeleteRecords frees space only once this is written: on a full
        // disk the data directory's reserve makes room for it.
        let data_dir = self.dir.parent().unwrap_or(&self.dir);
        let what = format!("{} of {}", super::START_CHECKPOINT_FILE, self.dir.display());
        super::reserve::with_reserve(&self.disk, data_dir, &what, || {
            replace_file(
                &self.disk,
                &self.dir,
                super::START_CHECKPOINT_FILE,
                text.as_bytes(),
            )
        })
        .await?;
        self.shared.written.set(want);
        Ok(())
    }
}

impl<D: Disk> RetentionJob<D> {
    /// Paths this job removes.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    pub async fn run(self) -> Result<(), LogError> {
        if let Some(checkpoint) = self.checkpoint {
            // Files go only once the new start is durable: a crash between
            // the two must not bring deleted records back at the next open.
            checkpoint.run().await?;
        }
        let mut first_error = None;
        for path in &self.paths {
            if let Err(e) = remove_if_exists(&self.disk, path).await {
                first_error.get_or_insert(e);
            }
        }
        drop(self.files);
        match first_error {
            Some(e) => Err(LogError::Io(e)),
            None => Ok(()),
        }
    }
}
