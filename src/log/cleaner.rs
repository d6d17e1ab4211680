//! Log compaction (`cleanup.policy=compact`): rewrites closed segments
//! keeping the newest record per key, as Kafka's `LogCleaner` does.
//!
//! Shape (the log's sync-plan / async-job / sync-complete pattern):
//! `PartitionLog::plan_clean` picks the cleanable closed segments and hands
//! a [`CleanJob`] their `Rc` files; [`CleanJob::run`] builds a bounded map
//! (128-bit key hash -> newest offset) over the dirty segments, rewrites the
//! segments in groups (one output segment per group of inputs whose sizes
//! add up to at most `segment.bytes`) and swaps each output in on disk;
//! `PartitionLog::complete_clean` replaces the group's segments in memory.
//! While a job is out no segment may leave the log (retention waits,
//! DeleteRecords only moves the start offset), so the job's inputs are still
//! the log's segments when it completes. Produce and fetch never wait for
//! it: appends go to the active segment, which is never cleaned, and a read
//! job planned on an old segment keeps its open file after the swap.
//!
//! Kept, per record: the newest record of its key (offset >= the map's
//! offset for the key, or a key the map has not seen). Dropped: older
//! records of a key, records without a key (Kafka's cleaner drops them too;
//! produce refuses them on compacted topics), and tombstones (null value)
//! in a segment whose newest timestamp is older than `delete.retention.ms`
//! (Kafka before KIP-534 measured from the segment's last modification, the
//! same idea). Control batches are kept whole.
//!
//! Offsets never move: a batch that loses some records is rebuilt with the
//! same baseOffset, lastOffsetDelta, timestamps, producer id, epoch and base
//! sequence (its surviving records keep their bytes, which are relative to
//! those); a batch that loses all of them disappears, except the last batch
//! of a group, kept as an empty batch (recordsCount 0) so every segment
//! still ends at the offset before the next segment's base. Reads therefore
//! always find a batch in the segment holding the offset they ask for, and
//! recovery can tell from a swapped-in file alone which old segments it
//! replaces.
//!
//! Idempotent producers: their state lives in the producer snapshots taken
//! at every roll (they cover every closed segment) and in the active
//! segment, which is never cleaned; a batch dropped here is only missed if
//! every snapshot is lost, and then the producer is re-learned from its
//! next batch (an unknown producer may start at any sequence).
//!
//! On-disk swap, per group, as Kafka: write `<base>.log.cleaned` and its
//! `.index.cleaned`/`.timeindex.cleaned`, fdatasync them; rename the indexes
//! then the log to `.swap` (the `.log.swap` rename is the commit point);
//! remove the replaced segments' files; rename the `.swap` files to the
//! final names. [`recover_swaps`] at open deletes `.cleaned` files (an
//! unfinished clean, rolled back) and finishes every `.log.swap` (removes
//! the old segments it covers, renames it in; its indexes are rebuilt).
//!
//! Bounds: the key map holds at most `CLEANER_KEYS_MAX` keys (a dirty
//! section with more is cleaned over several passes); a pass maps at most
//! `CLEANER_SEGMENTS_PER_PASS_MAX` dirty segments; output is written in
//! 1 MiB aligned chunks; the job yields after every chunk and segment.
//! One job per partition at a time; the shard runs them one after another
//! from its background housekeeping task.

#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::Hasher;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::jobs::{scan, ScanStop};
use super::segment::{index_path, log_path, parse_log_name, time_index_path, Segment};
use super::{DmaDisk, LogError, PartitionLog, SEGMENT_OFFSETS_MAX};
use crate::io::{
    align_down, align_up, remove_if_exists, write_whole_file, Disk, DiskBuf, DiskFile,
};
use crate::limits;
use crate::protocol::batch::{self, BatchHeader, Codec, RecordsError};

/// Output bytes buffered before an aligned write.
const OUT_CHUNK_BYTES: usize = 1024 * 1024;

/// `<path>.cleaned`: a cleaner output not yet committed.
pub fn cleaned_path(path: &Path) -> PathBuf {
    suffixed(path, ".cleaned")
}

/// `<path>.swap`: a cleaner output committed but not yet renamed in.
pub fn swap_path(path: &Path) -> PathBuf {
    suffixed(path, ".swap")
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// One closed segment a clean job reads.
pub(crate) struct SegInput<F> {
    pub base: i64,
    pub next_offset: i64,
    pub size: u64,
    pub max_timestamp: i64,
    pub file: Rc<F>,
}

/// A clean planned by `PartitionLog::plan_clean`.
pub struct CleanJob<D: Disk = DmaDisk> {
    pub(crate) disk: D,
    pub(crate) dir: PathBuf,
    /// Offsets at or after this in `dirty` feed the key map.
    pub(crate) dirty_from: i64,
    /// The dirty segments, oldest first (also members of `groups`).
    pub(crate) dirty: Vec<Rc<SegInput<D::File>>>,
    /// Every segment to rewrite, grouped; each group becomes one segment.
    pub(crate) groups: Vec<Vec<Rc<SegInput<D::File>>>>,
    pub(crate) now_ms: i64,
    pub(crate) delete_retention_ms: i64,
    pub(crate) index_interval_bytes: u32,
}

/// What a clean did, for logs and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CleanStats {
    pub segments_in: usize,
    pub segments_out: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub records_kept: u64,
    pub records_dropped: u64,
}

/// A group swapped in on disk (fully, or past its commit point).
pub(crate) struct Swapped<F: DiskFile> {
    pub inputs: Vec<i64>,
    pub segment: Segment<F>,
}

/// The result of [`CleanJob::run`], for `PartitionLog::complete_clean`.
pub struct CleanOutcome<D: Disk = DmaDisk> {
    pub(crate) swapped: Vec<Swapped<D::File>>,
    /// The first offset the key map did not cover.
    pub(crate) map_end: i64,
    pub(crate) stats: CleanStats,
    pub(crate) error: Option<io::Error>,
    /// The error came after a swap's commit point: names on disk are left
    /// for recovery to finish.
    pub(crate) swap_unfinished: bool,
}

/// Newest offset per key hash, bounded.
struct KeyMap {
    offsets: HashMap<u128, i64>,
}

fn key_hash(key: &[u8]) -> u128 {
    // Two SipHash-1-3 runs with different prefixes: 128 bits, so a
    // collision (which would drop a live record) is as unlikely as with
    // Kafka's MD5-keyed map.
    let mut a = std::collections::hash_map::DefaultHasher::new();
    a.write_u8(0xa5);
    a.write(key);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    b.write_u8(0x5a);
    b.write(key);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

fn records_error(e: RecordsError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl<D: Disk> CleanJob<D> {
    pub async fn run(self) -> CleanOutcome<D> {
        let mut outcome = CleanOutcome {
            swapped: Vec::new(),
            map_end: self.dirty_from,
            stats: CleanStats::default(),
            error: None,
            swap_unfinished: false,
        };
        let map = match self.build_map(&mut outcome.map_end).await {
            Ok(map) => map,
            Err(e) => {
                outcome.error = Some(e);
                return outcome;
            }
        };
        for group in &self.groups {
            if group[0].base >= outcome.map_end {
                break;
            }
            match self.clean_group(group, &map, &mut outcome.stats).await {
                Ok(segment) => match self.swap_in(group).await {
                    Ok(()) => outcome.swapped.push(Swapped {
                        inputs: group.iter().map(|s| s.base).collect(),
                        segment,
                    }),
                    Err((committed, e)) => {
                        if committed {
                            outcome.swapped.push(Swapped {
                                inputs: group.iter().map(|s| s.base).collect(),
                                segment,
                            });
                            outcome.swap_unfinished = true;
                        }
                        outcome.error = Some(e);
                        break;
                    }
                },
                Err(e) => {
                    self.remove_cleaned(group[0].base).await;
                    outcome.error = Some(e);
                    break;
                }
            }
            futures_lite::future::yield_now().await;
        }
        outcome
    }

    /// Maps each key of the dirty section to its newest offset, stopping
    /// before a batch that would overflow the map; `map_end` ends up just
    /// past the last batch mapped.
    async fn build_map(&self, map_end: &mut i64) -> io::Result<KeyMap> {
        let mut map = KeyMap {
            offsets: HashMap::new(),
        };
        let from = self.dirty_from;
        for seg in &self.dirty {
            let mut full = false;
            let mut error = None;
            let end = scan(&*seg.file, 0, seg.size, false, |_, h, bytes| {
                if h.last_offset() < from {
                    return true;
                }
                if h.is_control() {
                    *map_end = h.last_offset() + 1;
                    return true;
                }
                if map.offsets.len() + h.records_count.max(0) as usize > limits::CLEANER_KEYS_MAX {
                    full = true;
                    return false;
                }
                let section = match crate::protocol::records::records_section(bytes, h) {
                    Ok(s) => s,
                    Err(e) => {
                        error = Some(records_error(e));
                        return false;
                    }
                };
                match crate::protocol::records::parse_records(&section, h) {
                    Ok(records) => {
                        for r in records {
                            let offset = h.base_offset + i64::from(r.offset_delta);
                            if let (Some(key), true) = (r.key, offset >= from) {
                                map.offsets.insert(key_hash(key), offset);
                            }
                        }
                    }
                    Err(e) => {
                        error = Some(records_error(e));
                        return false;
                    }
                }
                *map_end = h.last_offset() + 1;
                true
            })
            .await?;
            if let Some(e) = error {
                return Err(e);
            }
            if full {
                break;
            }
            if !matches!(end.stop, ScanStop::End) || end.end != seg.size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("segment {} does not scan to its end", seg.base),
                ));
            }
            *map_end = (*map_end).max(seg.next_offset);
            futures_lite::future::yield_now().await;
        }
        Ok(map)
    }

    /// Writes the group's kept batches to `<base>.log.cleaned` (and its
    /// indexes), durably, and returns the segment they make.
    async fn clean_group(
        &self,
        group: &[Rc<SegInput<D::File>>],
        map: &KeyMap,
        stats: &mut CleanStats,
    ) -> io::Result<Segment<D::File>> {
        let base = group[0].base;
        let path = cleaned_path(&log_path(&self.dir, base));
        let file = Rc::new(self.disk.create(&path).await?);
        let mut out = OutWriter {
            file: file.clone(),
            pending: Vec::new(),
            written: 0,
        };
        let mut seg = Segment::new(base, Some(file.clone()), self.now_ms);
        seg.cleaned = true;
        let interval = self.index_interval_bytes;
        for (i, input) in group.iter().enumerate() {
            let last_input = i + 1 == group.len();
            let tombstones_expire = input.max_timestamp >= 0
                && input.max_timestamp <= self.now_ms.saturating_sub(self.delete_retention_ms);
            let mut pos = 0;
            while pos < input.size {
                let mut error = None;
                let end = scan(&*input.file, pos, input.size, false, |at, h, bytes| {
                    if out.pending.len() >= OUT_CHUNK_BYTES {
                        return false;
                    }
                    let last_batch = last_input && at + bytes.len() as u64 == input.size;
                    let kept = match filter_batch(h, bytes, map, tombstones_expire, last_batch) {
                        Ok(k) => k,
                        Err(e) => {
                            error = Some(records_error(e));
                            return false;
                        }
                    };
                    stats.records_kept += kept.kept;
                    stats.records_dropped += kept.dropped;
                    if let Some(batch) = kept.batch {
                        let header = BatchHeader::parse(&batch).expect("kept batches parse");
                        seg.account(seg.size, &header, batch.len() as u64, interval);
                        out.pending.extend_from_slice(&batch);
                    }
                    true
                })
                .await?;
                if let Some(e) = error {
                    return Err(e);
                }
                if matches!(end.stop, ScanStop::Torn | ScanStop::Invalid(_)) || end.end <= pos {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("segment {} is damaged at {}", input.base, end.end),
                    ));
                }
                pos = end.end;
                out.write_full_blocks().await?;
                futures_lite::future::yield_now().await;
            }
            stats.segments_in += 1;
            stats.bytes_in += input.size;
        }
        let group_end = group.last().expect("groups are not empty").next_offset;
        assert_eq!(
            seg.next_offset, group_end,
            "a cleaned group keeps its last batch, so its offsets end where the group did"
        );
        let size = out.finish().await?;
        assert_eq!(size, seg.size);
        seg.maybe_push_time();
        write_whole_file(
            &self.disk,
            &cleaned_path(&time_index_path(&self.dir, base)),
            &seg.time_index_bytes(),
        )
        .await?;
        write_whole_file(
            &self.disk,
            &cleaned_path(&index_path(&self.dir, base)),
            &seg.index_bytes(),
        )
        .await?;
        seg.taken_size = seg.size;
        seg.closed = true;
        seg.finalized = true;
        seg.flushed = Some(seg.snapshot());
        stats.segments_out += 1;
        stats.bytes_out += seg.size;
        Ok(seg)
    }

    /// Renames the group's cleaned files in. Err((true, _)): failed after
    /// the commit point (the `.log.swap` exists; recovery finishes it).
    async fn swap_in(&self, group: &[Rc<SegInput<D::File>>]) -> Result<(), (bool, io::Error)> {
        let (disk, dir) = (&self.disk, &self.dir);
        let base = group[0].base;
        let names = [
            time_index_path(dir, base),
            index_path(dir, base),
            log_path(dir, base),
        ];
        let before = async {
            for name in &names {
                disk.rename(&cleaned_path(name), &swap_path(name)).await?;
            }
            disk.sync_dir(dir).await
        }
        .await;
        if let Err(e) = before {
            self.remove_cleaned(base).await;
            return Err((false, e));
        }
        let after = async {
            for old in group.iter().skip(1) {
                for path in [
                    log_path(dir, old.base),
                    index_path(dir, old.base),
                    time_index_path(dir, old.base),
                ] {
                    remove_if_exists(disk, &path).await?;
                }
            }
            remove_if_exists(disk, &index_path(dir, base)).await?;
            remove_if_exists(disk, &time_index_path(dir, base)).await?;
            disk.sync_dir(dir).await?;
            // The log first: an index on disk then always matches its log.
            for name in names.iter().rev() {
                disk.rename(&swap_path(name), name).await?;
            }
            disk.sync_dir(dir).await
        }
        .await;
        after.map_err(|e| (true, e))
    }

    /// Best effort: an abandoned group's outputs (recovery removes leftovers).
    async fn remove_cleaned(&self, base: i64) {
        for name in [
            log_path(&self.dir, base),
            index_path(&self.dir, base),
            time_index_path(&self.dir, base),
        ] {
            for path in [cleaned_path(&name), swap_path(&name)] {
                let _ = remove_if_exists(&self.disk, &path).await;
            }
        }
    }
}

/// What the cleaner keeps of one batch.
struct Kept<'a> {
    batch: Option<Cow<'a, [u8]>>,
    kept: u64,
    dropped: u64,
}

fn filter_batch<'a>(
    h: &BatchHeader,
    bytes: &'a [u8],
    map: &KeyMap,
    tombstones_expire: bool,
    last_batch: bool,
) -> Result<Kept<'a>, RecordsError> {
    if h.is_control() || h.records_count == 0 {
        return Ok(Kept {
            batch: Some(Cow::Borrowed(bytes)),
            kept: 0,
            dropped: 0,
        });
    }
    let section = crate::protocol::records::records_section(bytes, h)?;
    let records = crate::protocol::records::parse_records(&section, h)?;
    let keep = |r: &crate::protocol::records::RecordView<'_>| {
        let Some(key) = r.key else {
            return false;
        };
        let offset = h.base_offset + i64::from(r.offset_delta);
        let newest = map
            .offsets
            .get(&key_hash(key))
            .is_none_or(|&latest| offset >= latest);
        newest && !(r.value.is_none() && tombstones_expire)
    };
    let kept: Vec<&crate::protocol::records::RecordView<'_>> =
        records.iter().filter(|r| keep(r)).collect();
    let (n_kept, dropped) = (kept.len() as u64, (records.len() - kept.len()) as u64);
    let batch = if kept.len() == records.len() {
        Some(Cow::Borrowed(bytes))
    } else if kept.is_empty() && !last_batch {
        None
    } else {
        let mut raw = Vec::with_capacity(kept.iter().map(|r| r.raw.len()).sum());
        for r in &kept {
            raw.extend_from_slice(r.raw);
        }
        let codec = if kept.is_empty() {
            Codec::None
        } else {
            Codec::from_id(h.compression()).ok_or(RecordsError::UnknownCodec(h.compression()))?
        };
        Some(Cow::Owned(batch::build_batch(
            h,
            codec,
            kept.len() as i32,
            &raw,
        )?))
    };
    Ok(Kept {
        batch,
        kept: n_kept,
        dropped,
    })
}

/// Buffers output and writes it in whole aligned blocks.
struct OutWriter<F: DiskFile> {
    file: Rc<F>,
    pending: Vec<u8>,
    written: u64,
}

impl<F: DiskFile> OutWriter<F> {
    async fn write_full_blocks(&mut self) -> io::Result<()> {
        let n = align_down(self.pending.len() as u64) as usize;
        if n == 0 {
            return Ok(());
        }
        self.write(n, n).await?;
        self.pending.drain(..n);
        Ok(())
    }

    /// Writes `pending[..n]` padded with zeros to `len` bytes.
    async fn write(&mut self, n: usize, len: usize) -> io::Result<()> {
        let mut buf = self.file.alloc_buf(len);
        buf.bytes_mut()[..n].copy_from_slice(&self.pending[..n]);
        buf.bytes_mut()[n..].fill(0);
        let written = self.file.write_at(buf, self.written).await?;
        if written != len {
            return Err(crate::io::short_write(written, len));
        }
        self.written += n as u64;
        Ok(())
    }

    /// Writes the rest, cuts the file to its exact length, fdatasyncs it.
    async fn finish(mut self) -> io::Result<u64> {
        self.write_full_blocks().await?;
        let rest = self.pending.len();
        if rest > 0 {
            self.write(rest, align_up(rest as u64) as usize).await?;
        }
        self.file.truncate(self.written).await?;
        self.file.fdatasync().await?;
        Ok(self.written)
    }
}

/// At open, before segments load: removes unfinished cleaner outputs and
/// finishes committed swaps (see the module doc).
pub async fn recover_swaps<D: Disk>(disk: &D, dir: &Path) -> Result<(), LogError> {
    let names = disk.list_dir(dir).await?;
    for name in names.iter().filter(|n| n.ends_with(".cleaned")) {
        remove_if_exists(disk, &dir.join(name)).await?;
    }
    let mut swaps: Vec<i64> = names
        .iter()
        .filter_map(|n| parse_log_name(n.strip_suffix(".swap")?))
        .collect();
    swaps.sort_unstable();
    let logs: Vec<i64> = names.iter().filter_map(|n| parse_log_name(n)).collect();
    for &base in &swaps {
        let swap = swap_path(&log_path(dir, base));
        let file = disk.open(&swap).await?;
        let size = file.size().await?;
        let mut last = base - 1;
        scan(&file, 0, size, true, |_, h, _| {
            last = h.last_offset();
            true
        })
        .await?;
        drop(file);
        log::info!(
            "{}: finishing the swap of cleaned segment {base} (offsets up to {last})",
            dir.display()
        );
        for &old in logs.iter().filter(|&&o| o > base && o <= last) {
            for path in [
                log_path(dir, old),
                index_path(dir, old),
                time_index_path(dir, old),
            ] {
                remove_if_exists(disk, &path).await?;
            }
        }
        disk.sync_dir(dir).await?;
        disk.rename(&swap, &log_path(dir, base)).await?;
    }
    // Index swaps are never trusted: the segment's indexes are rebuilt.
    for name in names.iter().filter(|n| n.ends_with("index.swap")) {
        let Some(base) = name
            .split('.')
            .next()
            .filter(|d| d.len() == 20)
            .and_then(|d| d.parse::<i64>().ok())
        else {
            continue;
        };
        remove_if_exists(disk, &dir.join(name)).await?;
        remove_if_exists(disk, &index_path(dir, base)).await?;
        remove_if_exists(disk, &time_index_path(dir, base)).await?;
    }
    for &base in &swaps {
        remove_if_exists(disk, &index_path(dir, base)).await?;
        remove_if_exists(disk, &time_index_path(dir, base)).await?;
    }
    disk.sync_dir(dir).await?;
    Ok(())
}

impl<D: Disk> PartitionLog<D> {
    /// Plans a log-compaction pass (cleanup.policy has `compact`): None when
    /// there is nothing to do, a clean is already out, or the dirty share
    /// of the cleanable segments is below min.cleanable.dirty.ratio.
    /// Cleanable: the closed, durable segments before the active one, up to
    /// the first holding a record younger than min.compaction.lag.ms.
    /// Dirty: those not cleaned since they closed (at most
    /// `CLEANER_SEGMENTS_PER_PASS_MAX` per pass). The pass rewrites every
    /// cleanable segment up to the last dirty one, as Kafka's cleaner does.
    pub fn plan_clean(&mut self, now_ms: i64) -> Option<CleanJob<D>> {
        if !self.config.cleanup_compact
            || self.clean_in_flight
            || self.truncating
            || self.cleaner_stopped
            || self.failed
        {
            return None;
        }
        let lag = self.config.min_compaction_lag_ms;
        let cleanable = self
            .segments
            .iter()
            .take(self.segments.len() - 1)
            .take_while(|s| s.is_settled() && s.closed && s.corrupt.is_none())
            .take_while(|s| lag <= 0 || s.max_timestamp <= now_ms.saturating_sub(lag))
            .count();
        let first_dirty = self
            .segments
            .iter()
            .take(cleanable)
            .position(|s| s.next_offset > self.cleaned_upto)?;
        let total: u64 = self.segments.iter().take(cleanable).map(|s| s.size).sum();
        let dirty: u64 = self
            .segments
            .iter()
            .take(cleanable)
            .skip(first_dirty)
            .map(|s| s.size)
            .sum();
        if (dirty as f64) < self.config.min_cleanable_dirty_ratio * total as f64 {
            return None;
        }
        let end = cleanable.min(first_dirty + crate::limits::CLEANER_SEGMENTS_PER_PASS_MAX);
        let inputs: Vec<Rc<SegInput<D::File>>> = self
            .segments
            .iter()
            .take(end)
            .map(|s| {
                Rc::new(SegInput {
                    base: s.base_offset,
                    next_offset: s.next_offset,
                    size: s.size,
                    max_timestamp: s.max_timestamp,
                    file: s.file.clone().expect("settled segments have files"),
                })
            })
            .collect();
        // Groups: consecutive inputs whose sizes fit one segment and whose
        // offsets fit its relative u32 offsets.
        let mut groups: Vec<Vec<Rc<SegInput<D::File>>>> = Vec::new();
        let mut bytes = 0;
        for input in &inputs {
            let fits = groups.last().is_some_and(|g| {
                bytes + input.size <= self.config.segment_bytes
                    && input.next_offset - g[0].base <= SEGMENT_OFFSETS_MAX
            });
            if fits {
                bytes += input.size;
                groups.last_mut().expect("checked").push(input.clone());
            } else {
                bytes = input.size;
                groups.push(vec![input.clone()]);
            }
        }
        self.clean_in_flight = true;
        Some(CleanJob {
            disk: self.disk.clone(),
            dir: self.dir.clone(),
            dirty_from: self.cleaned_upto.max(self.log_start),
            dirty: inputs[first_dirty..].to_vec(),
            groups,
            now_ms,
            delete_retention_ms: self.config.delete_retention_ms,
            index_interval_bytes: self.config.index_interval_bytes,
        })
    }

    /// Applies a finished clean: each swapped group replaces its input
    /// segments. Err when the job failed part way (what it swapped in is
    /// applied all the same); a failure after a swap's commit point stops
    /// the cleaner until the next open finishes that swap.
    pub fn complete_clean(&mut self, outcome: CleanOutcome<D>) -> Result<CleanStats, LogError> {
        assert!(self.clean_in_flight, "complete_clean without a clean out");
        self.clean_in_flight = false;
        for swapped in outcome.swapped {
            let at = self
                .segments
                .iter()
                .position(|s| s.base_offset == swapped.inputs[0])
                .expect("segments stay while a clean is out");
            let n = swapped.inputs.len();
            for (seg, base) in self.segments.range(at..at + n).zip(&swapped.inputs) {
                assert!(
                    seg.base_offset == *base && seg.closed,
                    "clean inputs are unchanged"
                );
            }
            assert!(
                at + n < self.segments.len(),
                "the active segment is never cleaned"
            );
            assert_eq!(
                swapped.segment.next_offset,
                self.segments[at + n - 1].next_offset
            );
            self.segments.drain(at..at + n);
            self.segments.insert(at, swapped.segment);
            self.cache.borrow_mut().drop_window();
        }
        self.check_invariants();
        match outcome.error {
            None => {
                self.cleaned_upto = self.cleaned_upto.max(outcome.map_end);
                let stats = &outcome.stats;
                super::stats::compacted(stats.bytes_in.saturating_sub(stats.bytes_out));
                Ok(outcome.stats)
            }
            Some(e) => {
                if outcome.swap_unfinished {
                    log::error!(
                        "{}: a cleaned segment swap failed after its commit point ({e}); \
                         cleaning stops until the next open finishes it",
                        self.dir.display()
                    );
                    self.cleaner_stopped = true;
                }
                Err(LogError::Io(e))
            }
        }
    }

    /// True while a clean job is out.
    pub fn clean_in_flight(&self) -> bool {
        self.clean_in_flight
    }
}
