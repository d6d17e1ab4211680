//! Read caches of one partition log, and the per-shard memory budget they
//! share.
//!
//! Two caches per log, both holding whole batches exactly as stored:
//!
//! - the **tail**: batches appended to the active segment, copied as they
//!   are appended. It is kept only once a fetch found nothing new (its
//!   consumer is caught up), so a producer with no reader at the log end
//!   pays no copy, and a caught-up consumer is served from memory instead of
//!   a DMA read per fetch (docs/architecture.md, section 4).
//! - the **read-ahead window**: what a fetch that went to disk read beyond
//!   what it returned (tuning `fetch_read_ahead_bytes`), served to the
//!   partition's next fetches, so a consumer catching up reads the disk in
//!   large steps. When a fetch served from the window leaves less than two
//!   more fetches in it, the next window is read in the background from
//!   the window's end (a prefetch, one at a time per log) and kept as the
//!   *next* window, served once reads reach it: the disk read overlaps the
//!   client's processing instead of delaying the next fetch, and nothing
//!   the window holds is read twice (prefetching from the window's cursor
//!   re-read up to two fetches' worth: 1.78x the bytes delivered for one
//!   consumer of 8 partitions, 1.10x now). A window belongs to the
//!   reader whose fetches it serves: a disk read by another reader of the
//!   partition (elsewhere in it) reads no further ahead and leaves the
//!   window alone, so several consumers of one partition do not throw
//!   away each other's windows before they are served.
//! - the **recent windows**: windows its reader has moved past, kept (a few
//!   per log, while the shard's caches use less than half the budget) for
//!   the partition's other readers, which usually trail the first one: four
//!   consumers reading the same 8 partitions from the start read 3.2 GB
//!   from disk to send 2.4 GB when each window served one reader.
//!
//! Lives inside its `PartitionLog`, on the partition's owner shard, as an
//! `Rc<RefCell<..>>` shared with the log's read jobs; every borrow is in
//! synchronous code. All memory is charged to the shard's [`CacheBudget`]
//! (tuning `shard_memory_bytes`): a cache that cannot get memory is not
//! kept, and the read goes to disk as it would without caches.
//!
//! Invariants (asserted): a cache serves only offsets below the read's upper
//! offset, which is at most the flushed offset, so unflushed (and possibly
//! rolled back) appends are never served. The tail ends exactly at the log
//! end and starts inside the active segment; a roll restarts it and a
//! flush failure's rollback drops it. A window is tied to its segment's file
//! handle (`Rc` identity), so a segment that left the log (retention,
//! DeleteRecords) or was swapped by the cleaner never matches; the log also
//! drops the window at those points so its memory returns at once.

#![forbid(unsafe_code)]

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;

use bytes::Bytes;

use crate::limits;
use crate::protocol::batch::{BatchHeader, BatchIter};

/// Memory a shard's caches may use, shared by every partition of the shard.
/// One per shard.
pub struct CacheBudget {
    limit_bytes: usize,
    used_bytes: Cell<usize>,
    read_ahead_bytes: usize,
    /// Reads served from a cache, and reads that went to disk.
    hits: Cell<u64>,
    misses: Cell<u64>,
}

impl CacheBudget {
    pub fn new(limit_bytes: usize, read_ahead_bytes: usize) -> Rc<CacheBudget> {
        assert!(
            read_ahead_bytes <= limit_bytes / 2,
            "read-ahead fits the budget twice (config validates it)"
        );
        Rc::new(CacheBudget {
            limit_bytes,
            used_bytes: Cell::new(0),
            read_ahead_bytes,
            hits: Cell::new(0),
            misses: Cell::new(0),
        })
    }

    /// No caches: every read goes to disk.
    pub fn disabled() -> Rc<CacheBudget> {
        CacheBudget::new(0, 0)
    }

    pub fn used_bytes(&self) -> usize {
        self.used_bytes.get()
    }

    pub fn limit_bytes(&self) -> usize {
        self.limit_bytes
    }

    pub fn read_ahead_bytes(&self) -> usize {
        self.read_ahead_bytes
    }

    /// Reads served from memory so far.
    pub fn hits(&self) -> u64 {
        self.hits.get()
    }

    /// Reads that went to disk so far.
    pub fn misses(&self) -> u64 {
        self.misses.get()
    }

    fn count(&self, served: &Served) {
        let counter = match served {
            Served::Hit(_) => &self.hits,
            Served::Miss { .. } => &self.misses,
        };
        counter.set(counter.get() + 1);
    }

    /// Largest tail one partition keeps: a slice of the budget, so a few
    /// busy partitions cannot take all of it.
    fn tail_bytes_max(&self) -> usize {
        (self.limit_bytes / 8).min(limits::TAIL_CACHE_BYTES_MAX)
    }

    /// Whether used-up windows may stay for trailing readers: only while
    /// the shard's caches use less than half the budget, so they never
    /// take the room of the windows and tails being read.
    fn keeps_recent(&self) -> bool {
        self.used_bytes.get() < self.limit_bytes / 2
    }

    fn charge(self: &Rc<Self>, bytes: usize) -> Option<Charge> {
        let mut charge = Charge {
            budget: self.clone(),
            bytes: 0,
        };
        charge.resize(bytes).then_some(charge)
    }
}

/// A read's read-ahead, held against the budget until the read drops it
/// (before installing the window it read, which charges for itself). While
/// it lives its log plans no other read-ahead (`ReadCache::window_filling`).
pub struct ReadAheadCharge {
    charge: Charge,
    filling: Rc<Cell<bool>>,
}

impl ReadAheadCharge {
    pub fn bytes(&self) -> usize {
        self.charge.bytes
    }
}

impl Drop for ReadAheadCharge {
    fn drop(&mut self) {
        self.filling.set(false);
    }
}

/// Bytes taken from a [`CacheBudget`], given back on drop.
struct Charge {
    budget: Rc<CacheBudget>,
    bytes: usize,
}

impl Charge {
    /// Changes the charge to `bytes`; false (and unchanged) past the limit.
    fn resize(&mut self, bytes: usize) -> bool {
        let others = self.budget.used_bytes.get() - self.bytes;
        if others + bytes > self.budget.limit_bytes {
            return false;
        }
        self.budget.used_bytes.set(others + bytes);
        self.bytes = bytes;
        true
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        let used = self.budget.used_bytes.get();
        assert!(used >= self.bytes, "charges balance");
        self.budget.used_bytes.set(used - self.bytes);
    }
}

/// Batches appended to the active segment since the tail started.
struct Tail {
    /// Base offset of the first batch held; `next_offset` when empty.
    first_offset: i64,
    /// One past the last offset held: always the log end.
    next_offset: i64,
    bytes: Vec<u8>,
    /// (base offset, position in `bytes`) of every batch held.
    batches: Vec<(i64, usize)>,
    charge: Charge,
    /// Fetches served since the last trim; none means nobody keeps up.
    hits: u32,
}

const TAIL_BATCH_ENTRY_BYTES: usize = std::mem::size_of::<(i64, usize)>();

impl Tail {
    fn charged_bytes(&self) -> usize {
        self.bytes.capacity() + self.batches.capacity() * TAIL_BATCH_ENTRY_BYTES
    }

    /// Drops the oldest batches until `room` more bytes fit in `max`.
    fn trim_for(&mut self, room: usize, max: usize) {
        let keep_to = max.saturating_sub(room) / 2;
        let len = self.bytes.len();
        let cut = self
            .batches
            .iter()
            .position(|&(_, pos)| len - pos <= keep_to)
            .unwrap_or(self.batches.len());
        let cut_pos = self.batches.get(cut).map_or(len, |&(_, pos)| pos);
        self.bytes.drain(..cut_pos);
        self.batches.drain(..cut);
        for entry in &mut self.batches {
            entry.1 -= cut_pos;
        }
        self.first_offset = self.batches.first().map_or(self.next_offset, |b| b.0);
        self.hits = 0;
    }

    /// Whole batches from the one holding `offset`, below `upper`, at most
    /// `max_bytes` unless the first alone is larger. None when `offset` is
    /// not held or nothing is below `upper`.
    fn serve(&mut self, offset: i64, max_bytes: usize, upper: i64) -> Option<Bytes> {
        if offset < self.first_offset || offset >= self.next_offset.min(upper) {
            return None;
        }
        let at = self.batches.partition_point(|&(base, _)| base <= offset) - 1;
        let from = self.batches[at].1;
        let mut to = from;
        for (i, &(base, pos)) in self.batches.iter().enumerate().skip(at) {
            if base >= upper {
                break;
            }
            let end = self.batches.get(i + 1).map_or(self.bytes.len(), |b| b.1);
            if pos > from && end - from > max_bytes {
                break;
            }
            to = end;
        }
        assert!(to > from, "offset below upper is inside a held batch");
        self.hits = self.hits.saturating_add(1);
        Some(Bytes::copy_from_slice(&self.bytes[from..to]))
    }
}

/// Whole batches of one segment, read from disk ahead of the fetches.
struct Window<F> {
    /// The segment's file when read: identity, not I/O.
    file: Rc<F>,
    segment_base: i64,
    /// File position of `bytes[0]`.
    position: u64,
    /// Base offset of the first batch.
    first_offset: i64,
    /// Last offset of the last batch, plus one.
    next_offset: i64,
    bytes: Bytes,
    /// Where the last fetch served from here ended (offset, index in
    /// `bytes`), so sequential fetches do not walk the window from its start.
    cursor: (i64, usize),
    _charge: Charge,
}

/// The answer of [`ReadCache::serve`].
pub(crate) enum Served {
    Hit(Bytes),
    /// Read the disk; from this file position when the cache knows where
    /// the batch holding the offset starts.
    Miss {
        position: Option<u64>,
    },
}

/// A read-ahead window to keep, built by a read job from what it read.
pub(crate) struct WindowFill<F> {
    pub file: Rc<F>,
    pub segment_base: i64,
    pub position: u64,
    /// Whole batches, the first holding `cursor.0`.
    pub bytes: Bytes,
    /// Bytes of the allocation `bytes` keeps alive.
    pub allocated_bytes: usize,
    pub cursor: (i64, usize),
}

/// A background read of the next read-ahead window: whole batches from
/// `position` (a batch boundary holding `offset`) below `upper`.
pub(crate) struct PrefetchPlan<F> {
    pub file: Rc<F>,
    pub segment_base: i64,
    pub position: u64,
    pub offset: i64,
    pub upper: i64,
    pub len: usize,
    /// The cache's generation when planned: a window dropped since
    /// (segments removed or swapped) must not come back.
    pub generation: u64,
}

/// The segment a read falls in, as the log sees it now.
pub(crate) struct SegmentView<'a, F> {
    pub base_offset: i64,
    pub file: Option<&'a Rc<F>>,
    /// End of the segment's offsets (unflushed appends included).
    pub next_offset: i64,
}

/// One partition log's caches.
pub(crate) struct ReadCache<F> {
    budget: Rc<CacheBudget>,
    tail: Option<Tail>,
    /// A fetch found nothing new: start a tail at the next append.
    tail_wanted: bool,
    window: Option<Window<F>>,
    /// The prefetched bytes that follow `window` (from its end), served
    /// once reads move past it: a prefetch never reads again what the
    /// window still holds.
    next_window: Option<Window<F>>,
    /// Windows reads moved past, newest first (at most
    /// `limits::RECENT_WINDOWS_MAX`), served to readers that trail.
    recent: VecDeque<Window<F>>,
    /// Served or filled since the last [`ReadCache::release_idle`].
    used: bool,
    /// A prefetch is planned or running (at most one per log).
    prefetching: bool,
    /// A prefetch planned by the last lookup, for the read job to carry.
    pending_prefetch: Option<PrefetchPlan<F>>,
    /// Bumped whenever windows are dropped for a change of the segments.
    generation: u64,
    /// A read with read-ahead is planned or running (at most one per log,
    /// cleared when its [`ReadAheadCharge`] drops): fetches pipelined
    /// behind it read exactly their own bytes instead of each filling a
    /// window of its own (a client with 64 fetches of one offset in flight
    /// had 64 windows read and charged at once).
    window_filling: Rc<Cell<bool>>,
}

impl<F> ReadCache<F> {
    pub fn new(budget: Rc<CacheBudget>) -> ReadCache<F> {
        ReadCache {
            budget,
            tail: None,
            tail_wanted: false,
            window: None,
            next_window: None,
            recent: VecDeque::new(),
            used: false,
            prefetching: false,
            pending_prefetch: None,
            generation: 0,
            window_filling: Rc::new(Cell::new(false)),
        }
    }

    /// The read-ahead a disk read may add, charged to the shard's budget
    /// from planning until the read ends: `None` when caching is off or
    /// the budget has no room for another window (what is read could not
    /// be kept). Charged at planning, so reads planned together (a fetch
    /// over hundreds of partitions) cannot all count on the same room.
    pub fn reserve_read_ahead(&self) -> Option<ReadAheadCharge> {
        let ahead = self.budget.read_ahead_bytes();
        if ahead == 0 || self.window_filling.get() {
            return None;
        }
        let charge = self.budget.charge(ahead)?;
        self.window_filling.set(true);
        Some(ReadAheadCharge {
            charge,
            filling: self.window_filling.clone(),
        })
    }

    /// Whether the windows serve another reader than one at `offset`: the
    /// current window is not used up and its last fetch ended elsewhere. A
    /// disk read at `offset` then reads no further ahead and keeps no
    /// window, since replacing them would discard what that reader's next
    /// fetches need before they come (4 consumers of the same 512
    /// partitions replaced each other's windows unserved: 2.1x the bytes
    /// sent were read from disk).
    pub fn serves_another_reader(&self, offset: i64) -> bool {
        self.window
            .as_ref()
            .is_some_and(|w| w.cursor.0 != offset && w.cursor.1 < w.bytes.len())
    }

    /// Bytes currently charged by this log's caches.
    pub fn charged_bytes(&self) -> usize {
        self.tail.as_ref().map_or(0, |t| t.charge.bytes)
            + self.window.as_ref().map_or(0, |w| w._charge.bytes)
            + self.next_window.as_ref().map_or(0, |w| w._charge.bytes)
            + self.recent.iter().map(|w| w._charge.bytes).sum::<usize>()
    }

    /// A fetch at the log's readable end found nothing: its consumer is
    /// caught up, so keep appends in memory from now on.
    pub fn note_caught_up(&mut self) {
        if self.budget.tail_bytes_max() > 0 {
            self.tail_wanted = true;
        }
    }

    /// One batch appended at `base` (ending before `next`), as stored:
    /// its patched header and its records.
    pub fn on_append(&mut self, base: i64, next: i64, head: &[u8], records: &[u8]) {
        if self.tail.is_none() && self.tail_wanted {
            self.tail = self.budget.charge(0).map(|charge| Tail {
                first_offset: base,
                next_offset: base,
                bytes: Vec::new(),
                batches: Vec::new(),
                charge,
                hits: 0,
            });
        }
        let Some(tail) = self.tail.as_mut() else {
            return;
        };
        assert_eq!(tail.next_offset, base, "the tail ends at the log end");
        let len = head.len() + records.len();
        let max = self.budget.tail_bytes_max();
        if tail.bytes.len() + len > max {
            if tail.hits == 0 && !tail.batches.is_empty() {
                // A whole tail went by without a reader: stop copying.
                self.tail = None;
                self.tail_wanted = false;
                return;
            }
            tail.trim_for(len, max);
        }
        if len > max {
            // Too large to keep: the tail restarts after it.
            tail.first_offset = next;
            tail.next_offset = next;
            return;
        }
        let needed = tail.bytes.len() + len;
        if needed > tail.bytes.capacity() {
            let capacity = needed.max(tail.bytes.capacity() * 2).min(max);
            tail.bytes.reserve_exact(capacity - tail.bytes.len());
        }
        if tail.batches.len() == tail.batches.capacity() {
            tail.batches.reserve(tail.batches.len().max(16));
        }
        if !tail.charge.resize(tail.charged_bytes()) {
            // The shard's budget is spent: no tail for this partition.
            self.tail = None;
            return;
        }
        tail.batches.push((base, tail.bytes.len()));
        tail.bytes.extend_from_slice(head);
        tail.bytes.extend_from_slice(records);
        tail.next_offset = next;
    }

    /// The active segment rolled: the tail restarts in the new one.
    pub fn on_roll(&mut self) {
        if self.tail.take().is_some() {
            self.tail_wanted = true;
        }
    }

    /// Appends were discarded (a failed flush): the tail may hold them.
    pub fn drop_tail(&mut self) {
        self.tail = None;
    }

    /// Segments left the log or were replaced.
    pub fn drop_window(&mut self) {
        self.window = None;
        self.next_window = None;
        self.recent.clear();
        self.generation += 1;
    }

    /// Keeps a window reads moved past for trailing readers, if the budget
    /// allows; the oldest goes first.
    fn retire(&mut self, window: Option<Window<F>>) {
        let Some(window) = window else {
            return;
        };
        if !self.budget.keeps_recent() {
            return;
        }
        self.recent.push_front(window);
        self.recent.truncate(limits::RECENT_WINDOWS_MAX);
    }

    /// Serves a reader that trails from a recent window of the segment.
    fn serve_recent(
        &mut self,
        offset: i64,
        max_bytes: usize,
        upper: i64,
        seg: &SegmentView<'_, F>,
    ) -> Option<Bytes> {
        let same_file = |w: &Window<F>| {
            w.segment_base == seg.base_offset && seg.file.is_some_and(|f| Rc::ptr_eq(f, &w.file))
        };
        // A segment swapped or removed since: those windows never serve.
        self.recent
            .retain(|w| w.segment_base != seg.base_offset || same_file(w));
        let window = self
            .recent
            .iter_mut()
            .find(|w| same_file(w) && offset >= w.first_offset && offset < w.next_offset)?;
        // A short answer is fine: the next fetch goes on from the next
        // window (recent or current) or from disk.
        let (bytes, _, _) = window.serve(offset, max_bytes, upper, seg.next_offset, true);
        bytes
    }

    /// The prefetch the last lookup planned, if any.
    pub fn take_prefetch(&mut self) -> Option<PrefetchPlan<F>> {
        self.pending_prefetch.take()
    }

    /// A prefetch finished (or was dropped): another may be planned.
    pub fn prefetch_done(&mut self) {
        self.prefetching = false;
    }

    /// Keeps a prefetched window unless the segments changed since it was
    /// planned or the current window already reaches further: as the next
    /// window when it starts where the current one ends.
    pub fn install_prefetched(&mut self, generation: u64, fill: WindowFill<F>) {
        if generation != self.generation {
            return;
        }
        let follows = self.window.as_ref().is_some_and(|w| {
            Rc::ptr_eq(&w.file, &fill.file) && w.position + w.bytes.len() as u64 == fill.position
        });
        if follows {
            self.next_window = self.make_window(fill);
            return;
        }
        let mut next_offset = fill.cursor.0;
        for (_, h) in BatchIter::new(&fill.bytes, false) {
            next_offset = h.last_offset() + 1;
        }
        let current_reaches = self
            .window
            .as_ref()
            .is_some_and(|w| w.segment_base == fill.segment_base && w.next_offset >= next_offset);
        if !current_reaches {
            self.install_window(fill);
        }
    }

    /// Serves a read from the tail or the window when they hold enough.
    pub fn serve(
        &mut self,
        offset: i64,
        max_bytes: usize,
        upper: i64,
        seg: SegmentView<'_, F>,
    ) -> Served {
        let served = self.lookup(offset, max_bytes, upper, seg);
        self.budget.count(&served);
        served
    }

    fn lookup(
        &mut self,
        offset: i64,
        max_bytes: usize,
        upper: i64,
        seg: SegmentView<'_, F>,
    ) -> Served {
        if let Some(bytes) = self
            .tail
            .as_mut()
            .and_then(|t| t.serve(offset, max_bytes, upper))
        {
            self.used = true;
            return Served::Hit(bytes);
        }
        // Reads moved on into the prefetched window (or the current one
        // is gone): it becomes the current one.
        let promote = self.next_window.as_ref().is_some_and(|n| {
            self.window.is_none() || (offset >= n.first_offset && offset < n.next_offset)
        });
        if promote {
            let passed = std::mem::replace(&mut self.window, self.next_window.take());
            self.retire(passed);
        }
        let in_window = self
            .window
            .as_ref()
            .is_some_and(|w| offset >= w.first_offset && offset < w.next_offset);
        if !in_window {
            if let Some(bytes) = self.serve_recent(offset, max_bytes, upper, &seg) {
                self.used = true;
                return Served::Hit(bytes);
            }
        }
        let followed = self.next_window.is_some();
        let Some(window) = self.window.as_mut() else {
            return Served::Miss { position: None };
        };
        let same_segment = window.segment_base == seg.base_offset
            && seg.file.is_some_and(|f| Rc::ptr_eq(f, &window.file));
        if !same_segment {
            // The segment it came from left the log or was swapped.
            self.window = None;
            self.next_window = None;
            return Served::Miss { position: None };
        }
        if offset < window.first_offset || offset >= window.next_offset {
            return Served::Miss { position: None };
        }
        let reaches_end = window.next_offset >= upper.min(seg.next_offset);
        let (bytes, position, exhausted) =
            window.serve(offset, max_bytes, upper, seg.next_offset, followed);
        let left = window.bytes.len() - window.cursor.1;
        let read_ahead = self.budget.read_ahead_bytes();
        let planned = self.prefetching || self.next_window.is_some();
        if bytes.is_some() && !reaches_end && left < 2 * max_bytes && !planned {
            // From the window's end (a batch boundary): what it still
            // holds is not read again.
            self.prefetching = true;
            self.pending_prefetch = Some(PrefetchPlan {
                file: window.file.clone(),
                segment_base: window.segment_base,
                position: window.position + window.bytes.len() as u64,
                offset: window.next_offset,
                upper,
                len: read_ahead + max_bytes,
                generation: self.generation,
            });
        }
        if exhausted {
            let passed = std::mem::replace(&mut self.window, self.next_window.take());
            self.retire(passed);
        }
        match bytes {
            Some(bytes) => {
                self.used = true;
                Served::Hit(bytes)
            }
            None => Served::Miss {
                position: Some(position),
            },
        }
    }

    /// Keeps what a disk read read ahead, if the budget allows (in place
    /// of both windows).
    pub fn install_window(&mut self, fill: WindowFill<F>) {
        self.next_window = None;
        let passed = self.window.take();
        self.retire(passed);
        self.window = self.make_window(fill);
    }

    fn make_window(&mut self, fill: WindowFill<F>) -> Option<Window<F>> {
        // Windows being read come before recent ones.
        let charge = loop {
            match self.budget.charge(fill.allocated_bytes) {
                Some(charge) => break charge,
                None if !self.recent.is_empty() => {
                    self.recent.pop_back();
                }
                None => return None,
            }
        };
        let mut first_offset = None;
        let mut next_offset = fill.cursor.0;
        for (_, h) in BatchIter::new(&fill.bytes, false) {
            first_offset.get_or_insert(h.base_offset);
            next_offset = h.last_offset() + 1;
        }
        let first_offset = first_offset?;
        self.used = true;
        Some(Window {
            file: fill.file,
            segment_base: fill.segment_base,
            position: fill.position,
            first_offset,
            next_offset,
            bytes: fill.bytes,
            cursor: fill.cursor,
            _charge: charge,
        })
    }

    /// Frees caches nobody used since the last call (from housekeeping).
    pub fn release_idle(&mut self) {
        if !self.used {
            self.tail = None;
            self.tail_wanted = false;
            self.window = None;
            self.next_window = None;
            self.recent.clear();
        }
        self.used = false;
    }

    /// The tail's invariants against the log's end and active segment base.
    pub fn check(&self, end_offset: i64, active_base: i64) {
        if let Some(t) = &self.tail {
            assert_eq!(t.next_offset, end_offset, "the tail ends at the log end");
            assert!(
                t.first_offset >= active_base,
                "the tail is in the active segment"
            );
            assert!(t.first_offset <= t.next_offset);
            assert_eq!(t.batches.is_empty(), t.bytes.is_empty());
        }
    }
}

impl<F> Window<F> {
    /// Whole batches from the one holding `offset` (inside the window),
    /// below `upper`, at most `max_bytes` unless the first alone is larger.
    /// None when the window holds less than the fetch could get from disk
    /// (unless `followed`: the next window holds the rest, for the next
    /// fetch). Also: the file position of that batch, and whether the
    /// window is used up.
    fn serve(
        &mut self,
        offset: i64,
        max_bytes: usize,
        upper: i64,
        segment_next: i64,
        followed: bool,
    ) -> (Option<Bytes>, u64, bool) {
        let start = if self.cursor.0 <= offset {
            self.cursor.1
        } else {
            0
        };
        let mut from = None;
        let mut to = 0;
        let mut enough = false;
        for (at, h) in BatchIter::new(&self.bytes[start..], false) {
            let (at, next) = (start + at, start + at + h.total_bytes());
            if from.is_none() {
                if h.last_offset() < offset {
                    continue;
                }
                from = Some(at);
                to = at;
            }
            let first = from.expect("set above");
            if h.base_offset >= upper || (at > first && next - first > max_bytes) {
                enough = true;
                break;
            }
            to = next;
        }
        let from = from.expect("offset is inside the window");
        let position = self.position + from as u64;
        // The window ran out before max_bytes: serve it if it still holds
        // half a fetch (a fetch is one round trip; a slightly short one
        // costs less than reading the disk again) or the disk has nothing
        // more either (the window reaches upper or the segment's end).
        let reaches_end = self.next_offset >= upper.min(segment_next);
        let half_a_fetch = (to - from) >= max_bytes / 2;
        if to == from || !(enough || reaches_end || half_a_fetch || followed) {
            return (None, position, false);
        }
        let last = BatchHeader::parse(&self.bytes[last_batch_start(&self.bytes, from, to)..])
            .expect("window holds whole batches");
        self.cursor = (last.last_offset() + 1, to);
        (
            Some(self.bytes.slice(from..to)),
            position,
            to == self.bytes.len(),
        )
    }
}

/// Start of the last batch of the whole batches `bytes[from..to]`.
fn last_batch_start(bytes: &[u8], from: usize, to: usize) -> usize {
    let mut last = from;
    for (at, _) in BatchIter::new(&bytes[from..to], false) {
        last = from + at;
    }
    last
}

#[cfg(test)]
mod tests;
