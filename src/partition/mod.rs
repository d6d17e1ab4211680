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

pub mod commit;
pub mod epochs;
pub mod producers;
pub mod replica;
pub mod scrub;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;
use uuid::Uuid;

use crate::config::TopicConfig;
use crate::io::{Disk, DiskFile, DmaDisk};
use crate::log::{throttled, CacheBudget, LogConfig, LogError, PartitionLog, Stamp};
use crate::protocol::batch::{self, ProduceBatchError};
use crate::protocol::records::{self, ProduceRules};
use producers::{ProducerStates, SequenceCheck};

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

fn batch_error(e: ProduceBatchError) -> PartitionError {
    match e {
        ProduceBatchError::TooLarge { size, max } => PartitionError::MessageTooLarge { size, max },
        other => PartitionError::Batch(other),
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

const SNAPSHOT_SUFFIX: &str = ".snapshot";

impl Partition<DmaDisk> {
    pub fn dir_name(topic: &str, index: i32) -> String {
        format!("{topic}-{index}")
    }

    /// Opens (recovering if needed) the partition's log under `data_dir` and
    /// rebuilds its producer state from the newest snapshot plus the batches
    /// after it.
    pub async fn open(
        data_dir: &Path,
        topic: &str,
        index: i32,
        topic_id: Uuid,
        config: TopicConfig,
        cache_budget: Rc<CacheBudget>,
    ) -> Result<Partition, LogError> {
        Partition::open_on(
            DmaDisk,
            data_dir,
            topic,
            index,
            topic_id,
            config,
            cache_budget,
        )
        .await
    }
}

impl<D: Disk> Partition<D> {
    /// [`Partition::open`] on a given disk.
    pub async fn open_on(
        disk: D,
        data_dir: &Path,
        topic: &str,
        index: i32,
        topic_id: Uuid,
        config: TopicConfig,
        cache_budget: Rc<CacheBudget>,
    ) -> Result<Partition<D>, LogError> {
        let dir = data_dir.join(Partition::dir_name(topic, index));
        let mut log = PartitionLog::open_on(disk.clone(), &dir, log_config(&config)).await?;
        log.set_cache_budget(cache_budget);
        write_partition_metadata(&disk, &dir, topic_id).await?;
        let (mut producers, from) =
            load_newest_snapshot(&disk, &dir, log.start_offset(), log.end_offset()).await;
        let headers = log.plan_scan_headers(from).run().await?;
        for h in &headers {
            if producers.check(h) == SequenceCheck::Append {
                producers.record(h, h.base_offset, h.last_offset(), h.max_timestamp);
            }
        }
        let high_watermark = log.flushed_offset();
        let mut epochs = epochs::LeaderEpochs::load(&disk, &dir).await;
        if epochs.truncate_from_end(log.end_offset()) {
            // The log lost a torn tail the checkpoint had already seen.
            epochs::LeaderEpochs::write(&disk, &dir, &epochs.to_text())
                .await
                .map_err(LogError::Io)?;
        }
        Ok(Partition {
            topic: topic.to_string(),
            index,
            topic_id,
            dir,
            disk,
            state: RefCell::new(State {
                log,
                config,
                producers,
                high_watermark,
                replica: replica::ReplicaState::single(),
                followers: replica::Followers::default(),
                isr_proposed: None,
                isr_join_floor: 0,
                leader_high_watermark: high_watermark,
                epochs,
                commit_waiters: VecDeque::new(),
                replica_waiters: VecDeque::new(),
                data_waiters: Vec::new(),
                snapshots_due: Vec::new(),
            }),
            queued_for_commit: Cell::new(false),
            deleted: Cell::new(false),
            maintenance: glommio::sync::Semaphore::new(1),
        })
    }

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

    /// Validates and appends one produced batch; the returned receiver
    /// resolves once the batch is durable here (acks 0 and 1) or on every
    /// in-sync replica (acks=all: -1), or failed. `None` for a duplicate
    /// that already is.
    pub fn append(
        &self,
        records: &[u8],
        acks: i16,
    ) -> Result<(Appended, Option<CommitWait>), PartitionError> {
        if self.deleted.get() {
            return Err(PartitionError::Gone);
        }
        let mut state = self.state.borrow_mut();
        if !state.replica.is_leader() {
            return Err(PartitionError::NotLeader);
        }
        let all = acks == -1;
        let min_isr = state.config.min_insync_replicas;
        if all && (state.replica.isr.len() as i32) < min_isr && state.replica.replicated {
            return Err(PartitionError::NotEnoughReplicas {
                isr: state.replica.isr.len(),
                min: min_isr,
            });
        }
        let now = now_ms();
        let config = &state.config;
        let rules = ProduceRules {
            max_message_bytes: config.max_message_bytes as usize,
            now_ms: now,
            log_append_time: config.timestamp_type_log_append,
            timestamp_before_max_ms: config.timestamp_before_max_ms,
            timestamp_after_max_ms: config.timestamp_after_max_ms,
            require_keys: config.cleanup_compact,
            // The produce handler judges the request version (KIP-110).
            zstd_allowed: true,
        };
        let valid = records::validate_produce(records, &rules).map_err(batch_error)?;
        let header = valid.header;
        let log_start_offset = state.log.start_offset();
        let log_append_time = state.config.timestamp_type_log_append.then_some(now);
        match state.producers.check(&header) {
            SequenceCheck::Append => {}
            SequenceCheck::Duplicate(meta) => {
                let appended = Appended {
                    base_offset: meta.first_offset,
                    log_append_time_ms: if log_append_time.is_some() {
                        meta.max_timestamp
                    } else {
                        -1
                    },
                    log_start_offset,
                };
                let durable = if all {
                    state.high_watermark
                } else {
                    state.log.flushed_offset()
                };
                let waiter = (meta.last_offset >= durable)
                    .then(|| Self::wait_commit(&mut state, meta.last_offset, all));
                return Ok((appended, waiter));
            }
            SequenceCheck::StaleEpoch => return Err(PartitionError::StaleProducerEpoch),
            SequenceCheck::OutOfOrder { expected, got } => {
                return Err(PartitionError::OutOfOrderSequence { expected, got })
            }
        }
        let stored = stored_form(&state.config, &header, records)?;
        let stamp = Stamp {
            log_append_time_ms: log_append_time,
            leader_epoch: state
                .replica
                .replicated
                .then_some(state.replica.leader_epoch),
            // Kafka's validator makes maxTimestamp the largest record
            // timestamp whatever the producer wrote; so does the copy.
            max_timestamp: (valid.max_timestamp != header.max_timestamp)
                .then_some(valid.max_timestamp),
        };
        let info = state
            .log
            .append_with(stored.as_deref().unwrap_or(records), stamp)
            .map_err(|e| storage_error(&e))?;
        state.producers.record(
            &header,
            info.base_offset,
            info.last_offset,
            info.max_timestamp,
        );
        if info.rolled_to.is_some() {
            // Snapshot when the log rolls (as Kafka does), so recovery replays
            // at most the active segment. It covers every offset up to and
            // including this batch.
            let snapshot = state.producers.to_snapshot();
            state.snapshots_due.push((info.last_offset + 1, snapshot));
        }
        let waiter = Self::wait_commit(&mut state, info.last_offset, all);
        Ok((
            Appended {
                base_offset: info.base_offset,
                log_append_time_ms: log_append_time.unwrap_or(-1),
                log_start_offset,
            },
            Some(waiter),
        ))
    }

    fn wait_commit(
        state: &mut State<D>,
        last_offset: i64,
        all_replicas: bool,
    ) -> oneshot::Receiver<Result<(), PartitionError>> {
        let (done, wait) = oneshot::channel();
        let waiters = if all_replicas {
            &mut state.replica_waiters
        } else {
            &mut state.commit_waiters
        };
        // Produces that timed out dropped their receivers: forget them
        // before the queue grows past what in-flight requests can explain.
        if waiters.len() >= crate::limits::COMMIT_WAITERS_PER_SHARD_MAX {
            waiters.retain(|w| !w.done.is_canceled());
        }
        // Waiters stay in offset order: a duplicate's offset may be older than
        // the newest waiter, so insert where it belongs.
        let at = waiters.partition_point(|w| w.last_offset <= last_offset);
        waiters.insert(at, CommitWaiter { last_offset, done });
        wait
    }

    /// Takes the log's pending writes as a job for the shard committer.
    pub fn take_flush(&self) -> Option<crate::log::FlushJob<D>> {
        self.queued_for_commit.set(false);
        self.state.borrow_mut().log.take_flush()
    }

    /// Applies a finished flush: moves the high watermark, answers the
    /// produces it covered and wakes waiting fetches; on failure answers the
    /// discarded produces with a storage error and forgets their producer state.
    pub(crate) fn complete_flush(
        &self,
        outcome: crate::log::FlushOutcome<D>,
    ) -> Option<SnapshotsDue> {
        let mut state = self.state.borrow_mut();
        match state.log.complete_flush(outcome) {
            Ok(flushed) => {
                assert!(
                    flushed >= state.high_watermark,
                    "the high watermark is at most the flushed offset"
                );
                while state
                    .commit_waiters
                    .front()
                    .is_some_and(|w| w.last_offset < flushed)
                {
                    let waiter = state.commit_waiters.pop_front().expect("front exists");
                    let _ = waiter.done.send(Ok(()));
                }
                replica::advance_high_watermark(&mut state);
                // Followers wait for flushed data, consumers for the high
                // watermark: both re-check when woken.
                for waiter in state.data_waiters.drain(..) {
                    let _ = waiter.send(());
                }
            }
            Err(e) => {
                let kept = state.log.end_offset();
                throttled::log("partition-flush-failed", log::Level::Error, || {
                    format!(
                        "{}-{}: flush failed, produces since the last flush answered \
                         KAFKA_STORAGE_ERROR: {e}",
                        self.topic, self.index
                    )
                });
                state.producers.truncate_from(kept);
                let error = storage_error(&e);
                let state = &mut *state;
                for waiters in [&mut state.commit_waiters, &mut state.replica_waiters] {
                    while waiters.back().is_some_and(|w| w.last_offset >= kept) {
                        let waiter = waiters.pop_back().expect("back exists");
                        let _ = waiter.done.send(Err(error.clone()));
                    }
                }
                state.snapshots_due.retain(|(base, _)| *base < kept);
            }
        }
        let due = std::mem::take(&mut state.snapshots_due);
        (!due.is_empty()).then(|| (self.dir.clone(), due))
    }

    /// Applies a finished flush and writes the producer snapshots it made due.
    pub async fn apply_flush(&self, outcome: crate::log::FlushOutcome<D>) {
        if let Some((dir, due)) = self.complete_flush(outcome) {
            if let Err(e) = write_snapshots(&self.disk, &dir, &due).await {
                log::warn!(
                    "{}-{}: producer snapshot not written: {e}",
                    self.topic,
                    self.index
                );
            }
        }
    }

    /// Marks the partition as queued; returns false if it already was.
    pub(crate) fn mark_queued(&self) -> bool {
        !self.queued_for_commit.replace(true)
    }

    /// Reads whole batches from `offset`, never past the high watermark
    /// (consumers; only the leader serves them).
    pub async fn read(&self, offset: i64, max_bytes: usize) -> Result<Fetched, PartitionError> {
        self.read_upto(offset, max_bytes, false).await
    }

    /// The durable end of the log (at or past the high watermark).
    pub fn flushed_offset(&self) -> i64 {
        self.state.borrow().log.flushed_offset()
    }

    /// Reads up to the durable end rather than the high watermark: a new
    /// leader loading state from what it holds (the group coordinator; as
    /// Kafka's, it reads to the log end: what the old leader acknowledged
    /// is there even before this broker's high watermark shows it).
    pub async fn read_durable(
        &self,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Fetched, PartitionError> {
        self.read_upto(offset, max_bytes, true).await
    }

    async fn read_upto(
        &self,
        offset: i64,
        max_bytes: usize,
        durable_end: bool,
    ) -> Result<Fetched, PartitionError> {
        let (mut job, high_watermark, log_start_offset) = {
            let state = self.state.borrow();
            if !state.replica.is_leader() {
                return Err(PartitionError::NotLeader);
            }
            let hw = state.high_watermark;
            let limit = if durable_end {
                state.log.flushed_offset()
            } else {
                hw
            };
            let start = state.log.start_offset();
            let end = state.log.end_offset();
            if offset < start || offset > end {
                return Err(PartitionError::OffsetOutOfRange {
                    requested: offset,
                    start,
                    end,
                });
            }
            if offset > limit {
                // Past the high watermark but within the log (a new
                // leader's high watermark catching up): nothing to read
                // yet, not an error (Kafka answers the same; an error
                // would make consumers reset their position).
                return Ok(Fetched {
                    records: Bytes::new(),
                    high_watermark: hw,
                    log_start_offset: start,
                });
            }
            let job = match state.log.plan_read(offset, max_bytes, limit) {
                Ok(job) => job,
                Err(e) => {
                    drop(state);
                    return Err(self.read_failed(offset, e));
                }
            };
            (job, hw, start)
        };
        if let Some(prefetch) = job.take_prefetch() {
            glommio::spawn_local(prefetch.run()).detach();
        }
        let records = job.run().await.map_err(|e| self.read_failed(offset, e))?;
        Ok(Fetched {
            records,
            high_watermark,
            log_start_offset,
        })
    }

    /// The stored batches from `offset` up to the durable end, whatever
    /// this broker's role (checks that compare replicas, and tools).
    pub async fn read_stored(
        &self,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Bytes, PartitionError> {
        let job = {
            let state = self.state.borrow();
            let (start, end) = (state.log.start_offset(), state.log.flushed_offset());
            if offset < start || offset > end {
                return Err(PartitionError::OffsetOutOfRange {
                    requested: offset,
                    start,
                    end,
                });
            }
            if offset == end {
                return Ok(Bytes::new());
            }
            state
                .log
                .plan_read(offset, max_bytes, end)
                .map_err(|e| storage_error(&e))?
        };
        job.run().await.map_err(|e| storage_error(&e))
    }

    /// Waits until the high watermark (a follower's fetch: the flushed
    /// end) passes `offset`, the partition changes role, or `timeout` elapses.
    pub async fn wait_for_data(&self, offset: i64, timeout: Duration, replica: bool) {
        let deadline = Instant::now() + timeout;
        let wait = {
            let mut state = self.state.borrow_mut();
            let end = if replica {
                state.log.flushed_offset()
            } else {
                state.high_watermark
            };
            if end > offset || self.deleted.get() || !state.replica.is_leader() {
                return;
            }
            // Waiters whose fetch already timed out are dropped here, so an
            // idle partition polled for hours does not collect them.
            state.data_waiters.retain(|w| !w.is_canceled());
            let (tx, rx) = oneshot::channel();
            state.data_waiters.push(tx);
            rx
        };
        let sleep = glommio::timer::sleep(deadline.saturating_duration_since(Instant::now()));
        futures_lite::future::or(
            async {
                let _ = wait.await;
            },
            sleep,
        )
        .await;
    }

    /// ListOffsets for one timestamp: -1 latest, -2 earliest, -3 max
    /// timestamp, else the first record whose timestamp is at or after it.
    /// The log finds the batch from its time index; the one batch is then
    /// decoded to answer with the exact record, as Kafka does.
    pub async fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>, PartitionError> {
        let job = {
            let state = self.state.borrow();
            if !state.replica.is_leader() {
                return Err(PartitionError::NotLeader);
            }
            match timestamp {
                -1 => return Ok(Some((state.high_watermark, -1))),
                -2 => return Ok(Some((state.log.start_offset(), -1))),
                -3 => match state.log.max_timestamp() {
                    Some((ts, offset)) if offset < state.high_watermark => {
                        Err((offset, RecordWanted::Exactly(ts)))
                    }
                    _ => return Ok(Some((-1, -1))),
                },
                ts => Ok(state
                    .log
                    .plan_offset_for_timestamp(ts, state.high_watermark)),
            }
        };
        let (batch_offset, wanted) = match job {
            Err(known) => known,
            Ok(job) => match job.run().await {
                Ok(Some((offset, _))) => (offset, RecordWanted::AtLeast(timestamp)),
                Ok(None) => return Ok(None),
                Err(e) => return Err(self.read_failed(timestamp, e)),
            },
        };
        let batch = self.read(batch_offset, 1).await?.records;
        let accept = |ts: i64| match wanted {
            RecordWanted::AtLeast(t) => ts >= t,
            RecordWanted::Exactly(t) => ts == t,
        };
        match records::find_record(&batch, accept) {
            Ok(found) => Ok(Some(found.unwrap_or((batch_offset, timestamp.max(-1))))),
            Err(e) => {
                // The stored batch does not parse: never decoded on trust
                // (it used to abort the broker), and its segment is
                // scrubbed next so readers get an error, not the batch.
                self.state.borrow_mut().log.request_scrub(batch_offset);
                Err(self.read_failed(
                    batch_offset,
                    LogError::Corrupt(format!("batch at offset {batch_offset}: {e}")),
                ))
            }
        }
    }

    /// A read that failed: logged (once per interval for repeats) and
    /// turned into the partition's error (KAFKA_STORAGE_ERROR for I/O
    /// errors and corrupt data).
    fn read_failed(&self, offset: i64, e: LogError) -> PartitionError {
        if matches!(e, LogError::Corrupt(_) | LogError::Io(_)) {
            throttled::log("partition-read-failed", log::Level::Error, || {
                format!(
                    "{}-{}: read at {offset} failed: {e}",
                    self.topic, self.index
                )
            });
        }
        storage_error(&e)
    }

    /// One step of the background scrub of this partition's stored
    /// segments (see `log::scrub`): None when nothing is due, else the
    /// bytes it read, for the caller's pacing.
    pub async fn scrub_step(&self, now: i64, interval_ms: i64) -> Option<u64> {
        if self.deleted.get() {
            return None;
        }
        let job = self.state.borrow_mut().log.plan_scrub(now, interval_ms)?;
        let outcome = job.run().await;
        if let Some(e) = &outcome.io_error {
            throttled::log("partition-scrub-io", log::Level::Error, || {
                format!("{}-{}: scrub read failed: {e}", self.topic, self.index)
            });
        }
        let bytes = outcome.bytes.max(1);
        let rolled = self.state.borrow_mut().log.complete_scrub(outcome, now);
        if rolled {
            // The corrupt active segment was rolled: finalize it now.
            self.flush_now().await;
        }
        Some(bytes)
    }

    /// A reader found a bad stored batch at `offset`: its segment is
    /// scrubbed next, so it gets marked.
    pub fn request_scrub(&self, offset: i64) {
        self.state.borrow_mut().log.request_scrub(offset);
    }

    /// When `offset` lies in a range marked unreadable, the first offset
    /// after it.
    pub fn unreadable_end(&self, offset: i64) -> Option<i64> {
        self.state.borrow().log.unreadable_end(offset)
    }

    /// (segment base, first unreadable offset, segment end) of every
    /// segment marked corrupt.
    pub fn corrupt_ranges(&self) -> Vec<(i64, i64, i64)> {
        self.state.borrow().log.corrupt_ranges()
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
                Ok(stats) => log::info!("{}-{}: cleaned: {stats:?}", self.topic, self.index),
                Err(e) => log::warn!("{}-{}: log cleaner: {e}", self.topic, self.index),
            }
        }
    }

    /// Flushes pending writes outside the shard committer (the committer
    /// may hold this partition in its list; its own take then finds
    /// nothing, or the next appends).
    async fn flush_now(&self) {
        let Some(job) = self.state.borrow_mut().log.take_flush() else {
            return;
        };
        self.apply_flush(job.run(true).await).await;
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

/// The batch to store for a validated produced one, when it differs:
/// re-encoded in the topic's compression.type codec when that is not the
/// producer's.
fn stored_form(
    config: &TopicConfig,
    header: &batch::BatchHeader,
    records: &[u8],
) -> Result<Option<Vec<u8>>, PartitionError> {
    let invalid = |e: batch::RecordsError| PartitionError::Batch(ProduceBatchError::Records(e));
    match config.compression {
        Some(codec) if codec as u8 != header.compression() => {
            crate::protocol::records::recompress(records, codec)
                .map(Some)
                .map_err(invalid)
        }
        _ => Ok(None),
    }
}

#[derive(Clone, Copy)]
enum RecordWanted {
    AtLeast(i64),
    Exactly(i64),
}

fn snapshot_name(offset: i64) -> String {
    format!("{offset:020}{SNAPSHOT_SUFFIX}")
}

fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(snapshot_name(offset))
}

/// Writes producer-state snapshots, each atomically and durably (a torn
/// write is never mistaken for a snapshot), then prunes old ones.
async fn write_snapshots<D: Disk>(
    disk: &D,
    dir: &Path,
    due: &[(i64, Vec<u8>)],
) -> std::io::Result<()> {
    for (offset, bytes) in due {
        crate::io::replace_file(disk, dir, &snapshot_name(*offset), bytes).await?;
    }
    prune_snapshots(disk, dir, 0).await;
    Ok(())
}

async fn list_snapshots<D: Disk>(disk: &D, dir: &Path) -> Vec<i64> {
    let mut offsets: Vec<i64> = disk
        .list_dir(dir)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|name| name.strip_suffix(SNAPSHOT_SUFFIX)?.parse().ok())
        .collect();
    offsets.sort_unstable();
    offsets
}

/// Removes producer snapshots past `end` (the log was cut there).
async fn remove_snapshots_after<D: Disk>(disk: &D, dir: &Path, end: i64) {
    for offset in list_snapshots(disk, dir).await {
        if offset > end {
            let _ = crate::io::remove_if_exists(disk, &snapshot_path(dir, offset)).await;
        }
    }
}

/// Keeps the three newest snapshots and none below the log start.
async fn prune_snapshots<D: Disk>(disk: &D, dir: &Path, log_start: i64) {
    let offsets = list_snapshots(disk, dir).await;
    let keep_from = offsets.len().saturating_sub(3);
    for (i, offset) in offsets.iter().enumerate() {
        if i < keep_from || (*offset < log_start && i + 1 < offsets.len()) {
            let _ = crate::io::remove_if_exists(disk, &snapshot_path(dir, *offset)).await;
        }
    }
}

/// The newest readable snapshot at or below the log end, and the offset to
/// replay batch headers from. Without one, replay starts at the log start.
async fn load_newest_snapshot<D: Disk>(
    disk: &D,
    dir: &Path,
    log_start: i64,
    log_end: i64,
) -> (ProducerStates, i64) {
    for offset in list_snapshots(disk, dir).await.into_iter().rev() {
        if offset > log_end || offset < log_start {
            continue;
        }
        let path = snapshot_path(dir, offset);
        let read = read_snapshot(disk, &path)
            .await
            .and_then(|b| ProducerStates::from_snapshot(&b, offset));
        match read {
            Ok(states) => return (states, offset),
            // Kafka drops a corrupt snapshot too: the state comes back
            // from an older snapshot, or from the log itself.
            Err(why) => log::warn!(
                "{}: producer snapshot ignored ({why}); rebuilding the producer state \
                 from an older snapshot or the log",
                path.display()
            ),
        }
    }
    (ProducerStates::default(), log_start)
}

/// A snapshot file's bytes. A snapshot holds at most
/// PRODUCERS_PER_PARTITION_MAX producers: a file far larger is not one, and
/// is not read into memory.
async fn read_snapshot<D: Disk>(disk: &D, path: &Path) -> Result<Vec<u8>, String> {
    let file = disk.open(path).await.map_err(|e| e.to_string())?;
    let size = file.size().await.map_err(|e| e.to_string())?;
    if size > crate::limits::PRODUCER_SNAPSHOT_BYTES_MAX {
        return Err(format!(
            "{size} bytes is more than a producer snapshot can be"
        ));
    }
    file.read_at(0, size as usize)
        .await
        .map_err(|e| e.to_string())
}

/// Kafka's `partition.metadata`: the topic id of the directory's partition,
/// written (atomically) only when it is missing or says something else.
async fn write_partition_metadata<D: Disk>(
    disk: &D,
    dir: &Path,
    topic_id: Uuid,
) -> Result<(), LogError> {
    let text = format!(
        "version: 0\ntopic_id: {}\n",
        crate::metadata::kafka_uuid(topic_id)
    );
    let path = dir.join(PARTITION_METADATA_FILE);
    // Anything larger than the expected text is not it; not read whole.
    let current = match disk.open(&path).await {
        Ok(file) => match file.size().await {
            Ok(size) if size == text.len() as u64 => file.read_at(0, text.len()).await.ok(),
            _ => None,
        },
        Err(_) => None,
    };
    if current.as_deref() == Some(text.as_bytes()) {
        return Ok(());
    }
    crate::io::replace_file(disk, dir, PARTITION_METADATA_FILE, text.as_bytes())
        .await
        .map_err(LogError::Io)
}

const PARTITION_METADATA_FILE: &str = "partition.metadata";

/// A partition shared by the tasks of its owner shard.
pub type PartitionRef = Rc<Partition>;
