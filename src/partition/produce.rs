//! The produce path of a partition: validating a produced batch (Kafka's
//! LogValidator rules, idempotent-producer sequences), appending its stored
//! form to the log, and the produces waiting for the group commit (acks=1:
//! the flush that covers them) or for the high watermark (acks=all). Flushes
//! are taken by the shard committer (`commit`) and applied here.

use futures::channel::oneshot;

use super::files::write_snapshots;
use super::producers::SequenceCheck;
use super::{
    now_ms, replica, storage_error, Appended, CommitWait, CommitWaiter, Partition, PartitionError,
    SnapshotsDue, State,
};
use crate::config::TopicConfig;
use crate::io::Disk;
use crate::log::{throttled, Stamp};
use crate::protocol::batch::{self, ProduceBatchError};
use crate::protocol::records::{self, ProduceRules};

fn batch_error(e: ProduceBatchError) -> PartitionError {
    match e {
        ProduceBatchError::TooLarge { size, max } => PartitionError::MessageTooLarge { size, max },
        other => PartitionError::Batch(other),
    }
}

impl<D: Disk> Partition<D> {
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
        let count = (info.last_offset - info.base_offset + 1).max(0) as u64;
        self.produced.add(records.len() as u64, count);
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

    pub(super) fn wait_commit(
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

    /// Flushes pending writes outside the shard committer (the committer
    /// may hold this partition in its list; its own take then finds
    /// nothing, or the next appends).
    pub(super) async fn flush_now(&self) {
        let Some(job) = self.state.borrow_mut().log.take_flush() else {
            return;
        };
        self.apply_flush(job.run(true).await).await;
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
