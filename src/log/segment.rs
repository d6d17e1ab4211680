//! One segment of a partition log: its file, its sparse indexes in memory,
//! its unflushed write buffers, and the state it had at the last successful
//! flush (to roll back to when a flush fails).
//!
//! Lives inside its `PartitionLog`, on the partition's owner shard.
//!
//! Index semantics follow Kafka's `LogSegment.append`: before a batch is
//! appended, if more than `index_interval_bytes` were appended since the last
//! entry, an offset-index entry (batch LAST offset - base, batch position) is
//! added, and a time-index entry (largest timestamp so far, offset of the
//! batch holding it - base) when that timestamp grew. The time index stores
//! the BASE offset of the batch holding the maximum, since the log never
//! decodes records.
//!
//! Invariants (asserted): batch offsets strictly increase (contiguous in
//! appended segments; a segment written by the cleaner has gaps, and its
//! last batch still ends just before the next segment's base); positions
//! increase; `taken_size <= size`; the write chain
//! covers exactly `[align_down(taken_size), size)`.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::io::{align_down, align_up, DiskBuf, DiskFile, BLOCK_BYTES};
use crate::protocol::batch::BatchHeader;

/// Bytes of one `.index` entry: relative offset u32, position u32.
pub const INDEX_ENTRY_BYTES: usize = 8;
/// Bytes of one `.timeindex` entry: timestamp i64, relative offset u32.
pub const TIME_INDEX_ENTRY_BYTES: usize = 12;
/// Smallest write buffer a chain allocates.
pub const WRITE_BUFFER_BYTES_MIN: usize = 16 * 1024;
/// Largest single write buffer; bigger appends chain several.
pub const WRITE_BUFFER_BYTES_MAX: usize = 1024 * 1024;

const _: () = assert!(WRITE_BUFFER_BYTES_MIN.is_multiple_of(BLOCK_BYTES));
const _: () = assert!(WRITE_BUFFER_BYTES_MAX.is_multiple_of(BLOCK_BYTES));

pub fn log_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

pub fn index_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}.index"))
}

pub fn time_index_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}.timeindex"))
}

/// Creates a new segment's `.timeindex` and `.index` empty (durably), so
/// they exist from the start, as Kafka's do (`dump-log` and operators find
/// them). They hold nothing until the segment closes and its entries are
/// written whole; recovery treats empty ones of the active segment as no
/// entries, and a closed segment's are always rewritten before a later
/// segment exists.
pub async fn create_empty_indexes<D: crate::io::Disk>(
    disk: &D,
    dir: &Path,
    base: i64,
) -> std::io::Result<()> {
    crate::io::write_whole_file(disk, &time_index_path(dir, base), &[]).await?;
    crate::io::write_whole_file(disk, &index_path(dir, base), &[]).await
}

/// The base offset of a `<20 digits>.log` file name.
pub fn parse_log_name(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// Last offset of the batch, minus the segment's base offset.
    pub rel_offset: u32,
    /// File position where that batch starts.
    pub position: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp: i64,
    /// Base offset of the batch holding `timestamp`, minus the segment base.
    pub rel_offset: u32,
}

/// A segment's metadata at one instant, for rollback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegSnap {
    pub size: u64,
    pub next_offset: i64,
    pub index_len: usize,
    pub time_index_len: usize,
    pub max_timestamp: i64,
    pub max_timestamp_offset: i64,
    pub bytes_since_index: u64,
    pub closed: bool,
    pub finalized: bool,
}

/// Bytes of a segment that failed verification: from `position` to the
/// end of the file nothing is trusted, and offsets from `offset` to the
/// segment's end are unreadable (reads get `LogError::Corrupt`, never the
/// bytes and never a silent skip) until retention or DeleteRecords
/// removes the segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corruption {
    pub position: u64,
    pub offset: i64,
    pub reason: String,
    /// The segment's largest timestamp is known past the damage (its time
    /// index was written before it): a timestamp search above it can skip
    /// the segment. False when the segment was only ever read up to the
    /// damage, so the unreadable records could hold any timestamp.
    pub timestamps_known: bool,
}

/// One aligned write buffer covering `[position, position + capacity)` of the file.
pub struct ChainBuf<B> {
    pub position: u64,
    pub buf: B,
    pub fill: usize,
}

pub struct Segment<F: DiskFile> {
    pub base_offset: i64,
    /// None until a flush job creates the file (segments made by a roll).
    pub file: Option<Rc<F>>,
    /// Logical length, unflushed appends included.
    pub size: u64,
    /// Bytes handed to flush jobs (in flight or done).
    pub taken_size: u64,
    pub next_offset: i64,
    pub index: Vec<IndexEntry>,
    pub time_index: Vec<TimeEntry>,
    /// Largest batch max timestamp, -1 when none.
    pub max_timestamp: i64,
    pub max_timestamp_offset: i64,
    pub bytes_since_index: u64,
    /// Wall-clock ms when the segment got its first batch (or the log
    /// opened), for segment.ms.
    pub rolling_ms: i64,
    /// No more appends (rolled).
    pub closed: bool,
    /// Closed on disk: .log cut to its exact length, index files written.
    pub finalized: bool,
    /// Written by a successful flush that did not fdatasync.
    pub unsynced: bool,
    /// Unflushed bytes in aligned buffers.
    pub chain: Vec<ChainBuf<F::Buf>>,
    /// Bytes `[align_down(taken_size), taken_size)` when they differ from
    /// `flushed_tail` (None: same as it).
    pub tail: Option<Vec<u8>>,
    /// Bytes `[align_down(flushed.size), flushed.size)`: the partial last
    /// block, rewritten in place by the next flush.
    pub flushed_tail: Vec<u8>,
    /// State at the last successful flush; None if no flush ever covered it.
    pub flushed: Option<SegSnap>,
    /// Written by the log cleaner (its batches may have offset gaps).
    pub cleaned: bool,
    /// Set when a batch of this segment failed verification.
    pub corrupt: Option<Corruption>,
    /// The scrub's current pass over this segment: `[scrub_pos,
    /// scrub_end)` of the file is still to verify (none when equal).
    pub scrub_pos: u64,
    pub scrub_end: u64,
    /// The offset of the batch at `scrub_pos` (a lower bound in a
    /// cleaned segment).
    pub scrub_offset: i64,
    /// When every byte of the segment was last known good (verified, or
    /// written by this process after validation); None: never, so the
    /// scrub takes it as soon as it can.
    pub verified_at_ms: Option<i64>,
}

impl<F: DiskFile> Segment<F> {
    pub fn new(base_offset: i64, file: Option<Rc<F>>, rolling_ms: i64) -> Segment<F> {
        Segment {
            base_offset,
            file,
            size: 0,
            taken_size: 0,
            next_offset: base_offset,
            index: Vec::new(),
            time_index: Vec::new(),
            max_timestamp: -1,
            max_timestamp_offset: -1,
            bytes_since_index: 0,
            rolling_ms,
            closed: false,
            finalized: false,
            unsynced: false,
            chain: Vec::new(),
            tail: None,
            flushed_tail: Vec::new(),
            flushed: None,
            cleaned: false,
            corrupt: None,
            scrub_pos: 0,
            scrub_end: 0,
            scrub_offset: base_offset,
            verified_at_ms: Some(rolling_ms),
        }
    }

    /// Where reads and scans of this segment must stop: before the
    /// corruption, if any.
    pub fn readable_size(&self) -> u64 {
        self.corrupt
            .as_ref()
            .map_or(self.size, |c| c.position.min(self.size))
    }

    /// True while a scrub pass over this segment is unfinished.
    pub fn scrub_pending(&self) -> bool {
        self.scrub_pos < self.scrub_end
    }

    pub fn snapshot(&self) -> SegSnap {
        SegSnap {
            size: self.size,
            next_offset: self.next_offset,
            index_len: self.index.len(),
            time_index_len: self.time_index.len(),
            max_timestamp: self.max_timestamp,
            max_timestamp_offset: self.max_timestamp_offset,
            bytes_since_index: self.bytes_since_index,
            closed: self.closed,
            finalized: self.finalized,
        }
    }

    /// Back to the state of the last successful flush.
    pub fn restore(&mut self, snap: SegSnap) {
        assert!(snap.size <= self.size && snap.index_len <= self.index.len());
        self.size = snap.size;
        self.taken_size = snap.size;
        self.next_offset = snap.next_offset;
        self.index.truncate(snap.index_len);
        self.time_index.truncate(snap.time_index_len);
        self.max_timestamp = snap.max_timestamp;
        self.max_timestamp_offset = snap.max_timestamp_offset;
        self.bytes_since_index = snap.bytes_since_index;
        self.closed = snap.closed;
        self.finalized = snap.finalized;
        self.chain.clear();
        self.tail = None;
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Fully durable and closed on disk: retention may delete it.
    pub fn is_settled(&self) -> bool {
        self.finalized
            && !self.unsynced
            && self.chain.is_empty()
            && self
                .flushed
                .is_some_and(|s| s.size == self.size && s.finalized)
    }

    /// Something for a flush job to do.
    pub fn needs_flush(&self) -> bool {
        !self.chain.is_empty()
            || self.file.is_none()
            || (self.closed && !self.finalized)
            || self.unsynced
    }

    /// Accounts one batch of `len` bytes appended at `position` (the append
    /// path and recovery share this, so rebuilt indexes equal written ones).
    pub fn account(&mut self, position: u64, header: &BatchHeader, len: u64, interval: u32) {
        assert_eq!(position, self.size, "batches are back to back");
        // Appends are contiguous by construction (and recovery checks it for
        // the active segment); cleaned segments keep offsets with gaps.
        assert!(
            self.size == 0 || header.base_offset >= self.next_offset,
            "offsets increase: batch {} after next offset {}",
            header.base_offset,
            self.next_offset
        );
        assert!(header.base_offset >= self.base_offset);
        let last = header.last_offset();
        assert!(last >= header.base_offset);
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.max_timestamp_offset = header.base_offset;
        }
        if self.bytes_since_index > u64::from(interval) {
            self.push_index(last, position);
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += len;
        self.size += len;
        self.next_offset = last + 1;
    }

    fn push_index(&mut self, last_offset: i64, position: u64) {
        let rel = self.rel(last_offset);
        if let Some(prev) = self.index.last() {
            assert!(rel > prev.rel_offset && position > u64::from(prev.position));
        }
        self.index.push(IndexEntry {
            rel_offset: rel,
            position: u32::try_from(position).expect("segment positions fit u32"),
        });
        self.maybe_push_time();
    }

    /// Adds a time-index entry when the largest timestamp grew.
    pub fn maybe_push_time(&mut self) {
        if self.max_timestamp < 0 {
            return;
        }
        if self
            .time_index
            .last()
            .is_some_and(|t| t.timestamp >= self.max_timestamp)
        {
            return;
        }
        let rel = self.rel(self.max_timestamp_offset);
        self.time_index.push(TimeEntry {
            timestamp: self.max_timestamp,
            rel_offset: rel,
        });
    }

    fn rel(&self, offset: i64) -> u32 {
        u32::try_from(offset - self.base_offset).expect("relative offsets fit u32")
    }

    /// Position from which to scan for the batch containing `offset`.
    pub fn position_for_offset(&self, offset: i64) -> u64 {
        let at = self
            .index
            .partition_point(|e| self.base_offset + i64::from(e.rel_offset) < offset);
        if at == 0 {
            0
        } else {
            u64::from(self.index[at - 1].position)
        }
    }

    /// Position from which to scan for the first batch with max timestamp >= ts.
    pub fn position_for_timestamp(&self, ts: i64) -> u64 {
        let at = self.time_index.partition_point(|t| t.timestamp < ts);
        if at == 0 {
            return 0;
        }
        let offset = self.base_offset + i64::from(self.time_index[at - 1].rel_offset);
        self.position_for_offset(offset)
    }

    pub fn index_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.index.len() * INDEX_ENTRY_BYTES);
        for e in &self.index {
            out.extend_from_slice(&e.rel_offset.to_be_bytes());
            out.extend_from_slice(&e.position.to_be_bytes());
        }
        out
    }

    pub fn time_index_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.time_index.len() * TIME_INDEX_ENTRY_BYTES);
        for t in &self.time_index {
            out.extend_from_slice(&t.timestamp.to_be_bytes());
            out.extend_from_slice(&t.rel_offset.to_be_bytes());
        }
        out
    }

    /// The current tail block bytes `[align_down(taken_size), taken_size)`.
    pub fn current_tail(&self) -> &[u8] {
        self.tail.as_deref().unwrap_or(&self.flushed_tail)
    }

    /// Copies `bytes` into the write chain (allocating aligned buffers from
    /// `alloc`, a file of this log). `reserve` is how many more bytes this
    /// append will copy, to size a new buffer once.
    pub fn chain_copy(&mut self, alloc: &F, bytes: &[u8], mut reserve: usize) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let need_buf = self
                .chain
                .last()
                .is_none_or(|c| c.fill == c.buf.bytes().len());
            if need_buf {
                self.push_buf(alloc, reserve);
            }
            let c = self.chain.last_mut().expect("chain has a buffer");
            let n = rest.len().min(c.buf.bytes().len() - c.fill);
            c.buf.bytes_mut()[c.fill..c.fill + n].copy_from_slice(&rest[..n]);
            c.fill += n;
            rest = &rest[n..];
            reserve = reserve.saturating_sub(n);
        }
    }

    fn push_buf(&mut self, alloc: &F, reserve: usize) {
        let (position, prefix, grow) = match self.chain.last() {
            Some(c) => (
                c.position + c.buf.bytes().len() as u64,
                0,
                c.buf.bytes().len() * 2,
            ),
            None => {
                let tail = self.current_tail().len();
                assert_eq!(align_down(self.taken_size) + tail as u64, self.taken_size);
                (align_down(self.taken_size), tail, 0)
            }
        };
        let want = align_up((prefix + reserve) as u64) as usize;
        let len = want
            .max(grow)
            .clamp(WRITE_BUFFER_BYTES_MIN, WRITE_BUFFER_BYTES_MAX);
        let mut buf = alloc.alloc_buf(len);
        if prefix > 0 {
            // The partial block already on disk (or in flight) is rewritten
            // in place, so its bytes lead the first buffer: the one re-copy,
            // under one block per flush.
            let tail = self.current_tail();
            buf.bytes_mut()[..prefix].copy_from_slice(tail);
        }
        self.chain.push(ChainBuf {
            position,
            buf,
            fill: prefix,
        });
    }

    /// Moves the write chain out for a flush job: each buffer trimmed to
    /// whole blocks with zeroed padding, and the new tail block remembered.
    pub fn take_chain(&mut self) -> (Vec<(u64, F::Buf)>, Vec<u8>) {
        let mut writes = Vec::with_capacity(self.chain.len());
        let mut tail = self.current_tail().to_vec();
        let chain = std::mem::take(&mut self.chain);
        if let Some(last) = chain.last() {
            assert_eq!(
                last.position + last.fill as u64,
                self.size,
                "chain ends at size"
            );
        }
        for mut c in chain {
            let end = c.position + c.fill as u64;
            let block = align_down(end);
            if end == self.size {
                let from = (block.max(c.position) - c.position) as usize;
                if block >= c.position {
                    tail = c.buf.bytes()[from..c.fill].to_vec();
                }
            }
            let len = align_up(c.fill as u64) as usize;
            // Padding is zeroed so a crash never leaves stale bytes that could
            // parse as a batch after the end.
            c.buf.bytes_mut()[c.fill..len].fill(0);
            c.buf.trim(len);
            writes.push((c.position, c.buf));
        }
        self.taken_size = self.size;
        (writes, tail)
    }
}

/// Decodes and checks an `.index` file against a segment of `size` bytes
/// whose relative offsets are below `rel_limit`. None when damaged.
pub fn parse_index(bytes: &[u8], size: u64, rel_limit: Option<u64>) -> Option<Vec<IndexEntry>> {
    if !bytes.len().is_multiple_of(INDEX_ENTRY_BYTES) {
        return None;
    }
    let mut out: Vec<IndexEntry> = Vec::with_capacity(bytes.len() / INDEX_ENTRY_BYTES);
    for chunk in bytes.chunks_exact(INDEX_ENTRY_BYTES) {
        let rel = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let pos = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        let increasing = out
            .last()
            .is_none_or(|p| rel > p.rel_offset && pos > p.position);
        if !increasing || u64::from(pos) >= size || rel_limit.is_some_and(|l| u64::from(rel) >= l) {
            return None;
        }
        out.push(IndexEntry {
            rel_offset: rel,
            position: pos,
        });
    }
    Some(out)
}

/// Decodes and checks a `.timeindex` file. None when damaged.
pub fn parse_time_index(bytes: &[u8], rel_limit: Option<u64>) -> Option<Vec<TimeEntry>> {
    if !bytes.len().is_multiple_of(TIME_INDEX_ENTRY_BYTES) {
        return None;
    }
    let mut out: Vec<TimeEntry> = Vec::with_capacity(bytes.len() / TIME_INDEX_ENTRY_BYTES);
    for chunk in bytes.chunks_exact(TIME_INDEX_ENTRY_BYTES) {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&chunk[..8]);
        let timestamp = i64::from_be_bytes(ts);
        let rel = u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]);
        let increasing = out
            .last()
            .is_none_or(|p| timestamp > p.timestamp && rel >= p.rel_offset);
        if !increasing || timestamp < 0 || rel_limit.is_some_and(|l| u64::from(rel) >= l) {
            return None;
        }
        out.push(TimeEntry {
            timestamp,
            rel_offset: rel,
        });
    }
    Some(out)
}
