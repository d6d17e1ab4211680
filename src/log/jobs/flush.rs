//! Flush jobs: the appends of a commit round written to their segments, closed
//! segments finalized, and the result applied back by
//! `PartitionLog::complete_flush`.

use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

use super::super::segment::{index_path, log_path, time_index_path, SegSnap};
use super::super::stats;
use crate::io::{
    is_no_space, remove_if_exists, short_write, write_whole_file, Disk, DiskFile, DmaDisk,
};

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
    // What the fsync below makes durable (the metrics' bytes per fsync).
    let written_bytes: u64 = seg
        .writes
        .iter()
        .map(|(_, buf)| crate::io::DiskBuf::bytes(buf).len() as u64)
        .sum();
    for (pos, buf) in seg.writes {
        let len = crate::io::DiskBuf::bytes(&buf).len();
        let started = Instant::now();
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
        if durable_write {
            stats::fsynced(started.elapsed(), written_bytes);
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
        let started = Instant::now();
        file.fdatasync().await.map_err(FlushFailure::Failed)?;
        stats::fsynced(started.elapsed(), written_bytes);
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
        let started = Instant::now();
        file.fdatasync().await.map_err(FlushFailure::Failed)?;
        stats::fsynced(started.elapsed(), written_bytes);
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
    super::super::segment::create_empty_indexes(disk, dir, base).await?;
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
