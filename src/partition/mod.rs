//! One partition: its log, high watermark, idempotent-producer state, produce
//! requests waiting for their group commit and fetches waiting for data.
//!
//! State lives on the partition's owner shard only (`Rc`, `RefCell`); the
//! partition is the only writer of its log. Every method keeps its `RefCell`
//! borrow inside synchronous code: I/O runs as jobs taken from the log, so no
//! borrow is ever held across an `.await`.
//!
//! Invariants: `log_start <= high_watermark <= flushed <= log_end`. On a
//! single node the high watermark is the durable end of the log, so a
//! consumer never reads what a crash could take back. With replicas
//! (`replica`), the leader's high watermark is also at most the durable end
//! of every in-sync follower.
//!
//! Files: this one holds the partition's state, its errors, housekeeping,
//! DeleteRecords and deletion; `files` opens a partition and owns its files
//! beside the log (producer snapshots, `partition.metadata`); `produce` the
//! produce path and its commit waiters; `read` the fetch and ListOffsets
//! paths; `replica` replication; `scrub` the background verification.

pub mod commit;
pub mod epochs;
mod files;
mod produce;
pub mod producers;
mod read;
pub mod replica;
pub mod scrub;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use futures::channel::oneshot;
use uuid::Uuid;

use crate::config::TopicConfig;
use crate::io::{Disk, DmaDisk};
use crate::log::{LogConfig, LogError, PartitionLog, ReadJob};
use crate::protocol::batch;
use files::{prune_snapshots, remove_snapshots_after};
use producers::ProducerStates;

/// Why a partition refused a request. Mapped to Kafka codes once, in
/// `server::errors`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartitionError {
    /// A produced batch failed validation (Kafka's LogValidator rules).
    Batch(batch::ProduceBatchError),
    InvalidRecord(String),
    MessageTooLarge {
        size: usize,
        max: usize,
    },
    StaleProducerEpoch,
    OutOfOrderSequence {
        expected: i32,
        got: i32,
    },
    Storage(String),
    OffsetOutOfRange {
        requested: i64,
        start: i64,
        end: i64,
    },
    /// The partition was deleted (or moved) while the request waited.
    Gone,
    /// Another broker leads this partition.
    NotLeader,
    /// acks=all with fewer in-sync replicas than min.insync.replicas: not stored.
    NotEnoughReplicas {
        isr: usize,
        min: i32,
    },
    /// Stored, but the ISR shrank below min.insync.replicas before it was replicated.
    NotEnoughReplicasAfterAppend {
        isr: usize,
        min: i32,
    },
    /// The request's leader epoch is older than the partition's.
    FencedLeaderEpoch {
        requested: i32,
        current: i32,
    },
    /// The request's leader epoch is newer than this broker knows (its metadata lags).
    UnknownLeaderEpoch {
        requested: i32,
        current: i32,
    },
    /// acks=all waited longer than the request's timeout.
    TimedOut,
    /// A new leader's high watermark has not reached the start of its
    /// epoch yet (KIP-207): offsets asked now could go back.
    OffsetNotAvailable {
        high_watermark: i64,
        leader_epoch: i32,
    },
}

impl std::fmt::Display for PartitionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PartitionError::Batch(e) => e.fmt(f),
            PartitionError::InvalidRecord(m) => f.write_str(m),
            PartitionError::MessageTooLarge { size, max } => {
                write!(
                    f,
                    "batch of {size} bytes is larger than max.message.bytes {max}"
                )
            }
            PartitionError::StaleProducerEpoch => {
                f.write_str("producer epoch is older than the current one")
            }
            PartitionError::OutOfOrderSequence { expected, got } => {
                write!(f, "out of order sequence: expected {expected}, got {got}")
            }
            PartitionError::Storage(m) => write!(f, "storage error: {m}"),
            PartitionError::OffsetOutOfRange {
                requested,
                start,
                end,
            } => {
                write!(f, "offset {requested} is outside [{start}, {end}]")
            }
            PartitionError::Gone => f.write_str("partition is no longer hosted here"),
            PartitionError::NotLeader => f.write_str("another broker leads this partition"),
            PartitionError::NotEnoughReplicas { isr, min } => write!(
                f,
                "{isr} in-sync replicas, fewer than min.insync.replicas {min}"
            ),
            PartitionError::NotEnoughReplicasAfterAppend { isr, min } => write!(
                f,
                "written, but the in-sync replicas fell to {isr}, below min.insync.replicas {min}"
            ),
            PartitionError::FencedLeaderEpoch { requested, current } => {
                write!(f, "leader epoch {requested} is older than {current}")
            }
            PartitionError::UnknownLeaderEpoch { requested, current } => {
                write!(f, "leader epoch {requested} is newer than {current}")
            }
            PartitionError::TimedOut => {
                f.write_str("the in-sync replicas did not confirm the batch in time")
            }
            PartitionError::OffsetNotAvailable {
                high_watermark,
                leader_epoch,
            } => write!(
                f,
                "the high watermark ({high_watermark}) has not reached the start of leader epoch \
                 {leader_epoch} yet"
            ),
        }
    }
}

fn storage_error(e: &LogError) -> PartitionError {
    match e {
        LogError::OffsetOutOfRange {
            requested,
            start,
            end,
        } => PartitionError::OffsetOutOfRange {
            requested: *requested,
            start: *start,
            end: *end,
        },
        other => PartitionError::Storage(other.to_string()),
    }
}
/// What a successful produce of one batch answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: i64,
    /// The broker's timestamp for LogAppendTime topics, else -1.
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
}

/// How much a read may return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadLimit {
    /// Whole batches up to this many bytes (at least one batch, KIP-74).
    Upto(usize),
    /// Whole batches that fit in this many bytes, none if the first does
    /// not (Kafka's reads for all but a response's first partition).
    Within(usize),
    /// Like `Upto`, but only what the log's caches hold: no disk read,
    /// and no memory beyond the cache's own (a fetch's partitions past its
    /// budget, whose records are kept only if the response has room).
    CachedUpto(usize),
    /// No records, only the checks and the offsets.
    Nothing,
}

impl ReadLimit {
    /// Plans the read this limit asks for, from `offset` below `upper`:
    /// `None` when it asks for no records, or only cached ones and the
    /// caches do not hold them.
    fn plan<D: Disk>(
        self,
        log: &PartitionLog<D>,
        offset: i64,
        upper: i64,
    ) -> Result<Option<ReadJob<D>>, LogError> {
        let (max_bytes, cached_only, min_one) = match self {
            ReadLimit::Nothing => return Ok(None),
            ReadLimit::Upto(max_bytes) => (max_bytes, false, true),
            ReadLimit::Within(max_bytes) => (max_bytes, false, false),
            ReadLimit::CachedUpto(max_bytes) => (max_bytes, true, true),
        };
        let job = log.plan_read(offset, max_bytes, upper)?;
        if cached_only && !job.is_ready() {
            return Ok(None);
        }
        Ok(Some(if min_one { job } else { job.within_max_bytes() }))
    }
}

/// What a read returns: whole batches plus the offsets a Fetch reports.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub records: Bytes,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

/// Resolves when a produced batch is durable, or its flush failed.
pub type CommitWait = oneshot::Receiver<Result<(), PartitionError>>;

/// Producer-state snapshots to write after a flush: the partition directory
/// and (offset, bytes) pairs.
pub type SnapshotsDue = (PathBuf, Vec<(i64, Vec<u8>)>);

struct CommitWaiter {
    last_offset: i64,
    done: oneshot::Sender<Result<(), PartitionError>>,
}

struct State<D: Disk> {
    log: PartitionLog<D>,
    config: TopicConfig,
    producers: ProducerStates,
    high_watermark: i64,
    /// This broker's part in replication, and what the leader knows of its followers.
    replica: replica::ReplicaState,
    followers: replica::Followers,
    /// On the leader: an ISR expansion sent to the controller and not yet
    /// answered. Until it is, the high watermark counts the joining
    /// follower too (Kafka's "maximal ISR"), so it joins holding every
    /// record below the high watermark.
    isr_proposed: Option<replica::IsrChange>,
    /// On a replica: the durable end at open, while the high watermark is
    /// being re-established. Any committed record lies below it, so a
    /// follower joins the ISR only once it has this much too.
    isr_join_floor: i64,
    /// On a follower: the leader's high watermark as of the last fetch.
    leader_high_watermark: i64,
    epochs: epochs::LeaderEpochs,
    /// Produces (acks=1) waiting for the flush that covers their last offset, in offset order.
    commit_waiters: VecDeque<CommitWaiter>,
    /// Produces (acks=all) waiting for the high watermark to pass their last offset.
    replica_waiters: VecDeque<CommitWaiter>,
    /// Fetches waiting for the high watermark to move.
    data_waiters: Vec<oneshot::Sender<()>>,
    /// Snapshots of producer state waiting to be written, by base offset.
    snapshots_due: Vec<(i64, Vec<u8>)>,
}

/// Generic over the disk so the simulation (`crate::sim`) runs the same
/// code on a simulated one; the broker's partitions are `Partition<DmaDisk>`.
pub struct Partition<D: Disk = DmaDisk> {
    pub topic: String,
    pub index: i32,
    pub topic_id: Uuid,
    dir: PathBuf,
    /// Every file of the partition goes through it: segments and indexes
    /// (in the log), producer snapshots, the leader-epoch checkpoint and
    /// `partition.metadata`.
    disk: D,
    state: RefCell<State<D>>,
    /// Set while the partition sits in the shard committer's dirty list.
    queued_for_commit: Cell<bool>,
    deleted: Cell<bool>,
    /// Held by housekeeping and truncation: neither runs while the other does.
    maintenance: glommio::sync::Semaphore,
    /// What producers appended here since it was opened (metrics).
    produced: Flow,
    /// What consumers' fetches were served from here since it was opened
    /// (metrics; followers' fetches are not counted).
    served: Flow,
}

/// Batches' bytes and records through a partition since it was opened:
/// appended by producers (a leader's appends, duplicates not counted) or
/// served to consumers.
#[derive(Default)]
pub struct Flow {
    pub bytes: std::cell::Cell<u64>,
    pub records: std::cell::Cell<u64>,
}

impl Flow {
    /// Counts `bytes` bytes holding `records` records.
    pub fn add(&self, bytes: u64, records: u64) {
        self.bytes.set(self.bytes.get().saturating_add(bytes));
        self.records.set(self.records.get().saturating_add(records));
    }
}

pub fn log_config(config: &TopicConfig) -> LogConfig {
    LogConfig {
        segment_bytes: config.segment_bytes,
        segment_ms: config.segment_ms,
        retention_bytes: config.retention_bytes,
        retention_ms: config.retention_ms,
        index_interval_bytes: config.index_interval_bytes,
        cleanup_delete: config.cleanup_delete,
        cleanup_compact: config.cleanup_compact,
        delete_retention_ms: config.delete_retention_ms,
        min_compaction_lag_ms: config.min_compaction_lag_ms,
        min_cleanable_dirty_ratio: config.min_cleanable_dirty_ratio,
    }
}

pub use crate::clock::now_ms;

impl<D: Disk> Partition<D> {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn high_watermark(&self) -> i64 {
        self.state.borrow().high_watermark
    }

    pub fn log_start_offset(&self) -> i64 {
        self.state.borrow().log.start_offset()
    }

    pub fn size_bytes(&self) -> u64 {
        self.state.borrow().log.size_bytes()
    }

    /// Segments of the log, the active one included.
    pub fn segment_count(&self) -> usize {
        self.state.borrow().log.segment_count()
    }

    /// What producers appended here since the partition was opened.
    pub fn produced(&self) -> &Flow {
        &self.produced
    }

    /// What consumers' fetches were served from here since the partition
    /// was opened: the bytes of the batches read for them and the records
    /// those batches hold (a first batch that starts before the fetched
    /// offset counts whole, as it is sent whole).
    pub fn served(&self) -> &Flow {
        &self.served
    }

    pub fn log_end_offset(&self) -> i64 {
        self.state.borrow().log.end_offset()
    }

    pub fn config(&self) -> TopicConfig {
        self.state.borrow().config.clone()
    }

    pub fn set_config(&self, config: TopicConfig) {
        let mut state = self.state.borrow_mut();
        state.log.set_config(log_config(&config));
        state.config = config;
    }

    /// Rolls by segment.ms, applies retention and compacts (one bounded
    /// cleaner pass); runs from the shard's background housekeeping task,
    /// one partition at a time, so a shard cleans one log at a time.
    pub async fn housekeep(&self, now: i64) {
        if self.deleted.get() {
            return;
        }
        let _one_at_a_time = self
            .maintenance
            .acquire_permit(1)
            .await
            .expect("semaphore never closes");
        self.state.borrow_mut().log.release_idle_cache();
        let rolled = self.state.borrow_mut().log.maybe_roll(now);
        if rolled {
            // An idle partition has no produce to trigger the flush that
            // finalizes the segment it just closed: do it here, so
            // retention and the cleaner can take it.
            self.flush_now().await;
        }
        let job = self.state.borrow_mut().log.take_retention(now);
        if let Some(job) = job {
            if let Err(e) = job.run().await {
                log::warn!(
                    "{}-{}: retention could not delete files: {e}",
                    self.topic,
                    self.index
                );
            }
            prune_snapshots(&self.disk, &self.dir, self.log_start_offset()).await;
        }
        let clean = self.state.borrow_mut().log.plan_clean(now);
        if let Some(job) = clean {
            let outcome = job.run().await;
            let applied = self.state.borrow_mut().log.complete_clean(outcome);
            match applied {
                Ok(stats) => log::info!(
                    "{}-{}: log cleaner compacted {} segments ({}) into {} ({}): {} records \
                     kept, {} removed",
                    self.topic,
                    self.index,
                    stats.segments_in,
                    crate::log::progress::bytes_text(stats.bytes_in),
                    stats.segments_out,
                    crate::log::progress::bytes_text(stats.bytes_out),
                    stats.records_kept,
                    stats.records_dropped
                ),
                Err(e) => log::warn!("{}-{}: log cleaner: {e}", self.topic, self.index),
            }
        }
    }

    /// DeleteRecords: moves the log start offset to `offset` (-1: the high
    /// watermark) and answers the new low watermark once it is durable.
    pub async fn delete_records(&self, offset: i64) -> Result<i64, PartitionError> {
        let job = {
            let mut state = self.state.borrow_mut();
            if !state.replica.is_leader() {
                return Err(PartitionError::NotLeader);
            }
            let offset = if offset == -1 {
                state.high_watermark
            } else {
                offset
            };
            if offset > state.high_watermark {
                return Err(PartitionError::OffsetOutOfRange {
                    requested: offset,
                    start: state.log.start_offset(),
                    end: state.high_watermark,
                });
            }
            state
                .log
                .delete_records_before(offset)
                .map_err(|e| storage_error(&e))?
        };
        if let Some(job) = job {
            job.run().await.map_err(|e| storage_error(&e))?;
            prune_snapshots(&self.disk, &self.dir, self.log_start_offset()).await;
        }
        Ok(self.log_start_offset())
    }

    /// Fails every waiter and marks the partition deleted; the caller then
    /// closes the log and removes the directory.
    pub fn mark_deleted(&self) {
        self.deleted.set(true);
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        for waiter in state
            .commit_waiters
            .drain(..)
            .chain(state.replica_waiters.drain(..))
        {
            let _ = waiter.done.send(Err(PartitionError::Gone));
        }
        for waiter in state.data_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }

    /// Wakes every parked fetch (they re-read and answer); used at shutdown.
    pub fn wake_fetches(&self) {
        for waiter in self.state.borrow_mut().data_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.get()
    }

    /// An fdatasync failed: the log takes no more appends (reads go on)
    /// until the broker restarts and recovers it.
    pub fn is_failed(&self) -> bool {
        self.state.borrow().log.is_failed()
    }

    pub fn has_unflushed(&self) -> bool {
        let state = self.state.borrow();
        state.log.flushed_offset() < state.log.end_offset()
    }

    /// Consumes the partition at shutdown or deletion: closes the log cleanly.
    pub async fn close(self) -> Result<(), LogError> {
        self.state.into_inner().log.close().await
    }
}

/// A partition shared by the tasks of its owner shard.
pub type PartitionRef = Rc<Partition>;
