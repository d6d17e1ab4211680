//! The read path of a partition: fetches of whole batches up to the high
//! watermark (or the durable end, for a new leader's group load and for
//! replica checks), fetches parked until data arrives, ListOffsets by
//! timestamp, and what is known of unreadable ranges. Every read plans its
//! job under a short borrow of the state and runs it after the borrow ends.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;

use super::{storage_error, Fetched, Partition, PartitionError, ReadLimit};
use crate::io::Disk;
use crate::log::{throttled, LogError};
use crate::protocol::records;

impl<D: Disk> Partition<D> {
    /// Reads whole batches from `offset`, never past the high watermark
    /// (consumers; only the leader serves them).
    pub async fn read(&self, offset: i64, limit: ReadLimit) -> Result<Fetched, PartitionError> {
        self.read_upto(offset, limit, false).await
    }

    /// What a read from `offset` can return now (data past the high
    /// watermark counted too: an upper bound), to size a fetch's share.
    pub fn read_size_hint(&self, offset: i64) -> crate::log::ReadSizeHint {
        self.state.borrow().log.read_size_hint(offset)
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
        self.read_upto(offset, ReadLimit::Upto(max_bytes), true)
            .await
    }

    async fn read_upto(
        &self,
        offset: i64,
        read_limit: ReadLimit,
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
            // Past the high watermark but within the log (a new leader's
            // high watermark catching up): nothing to read yet, not an
            // error (Kafka answers the same; an error would make consumers
            // reset their position).
            let nothing = Fetched {
                records: Bytes::new(),
                high_watermark: hw,
                log_start_offset: start,
            };
            if offset > limit {
                return Ok(nothing);
            }
            let job = match read_limit.plan(&state.log, offset, limit) {
                Ok(Some(job)) => job,
                Ok(None) => return Ok(nothing),
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

    /// ListOffsets v0: the log's legacy offset list (segment bases and the
    /// log end, `PartitionLog::legacy_offsets_before`), as a consumer sees
    /// it: nothing past the high watermark, which takes the place of what
    /// lies beyond it (Kafka's `fetchOffsetsBefore` for a consumer).
    pub fn legacy_offsets_before(
        &self,
        timestamp: i64,
        max_offsets: usize,
    ) -> Result<Vec<i64>, PartitionError> {
        let state = self.state.borrow();
        if !state.replica.is_leader() {
            return Err(PartitionError::NotLeader);
        }
        let hw = state.high_watermark;
        let offsets = state
            .log
            .legacy_offsets_before(timestamp, max_offsets, super::now_ms());
        if offsets.first().is_some_and(|&o| o > hw) {
            let mut capped = vec![hw];
            capped.extend(offsets.into_iter().filter(|&o| o < hw));
            capped.truncate(max_offsets);
            return Ok(capped);
        }
        Ok(offsets)
    }

    /// ListOffsets for one timestamp: -1 latest, -2 earliest, -3 max
    /// timestamp, else the first record whose timestamp is at or after it.
    /// The log finds the batch from its time index; the one batch is then
    /// decoded to answer with the exact record, as Kafka does.
    pub async fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>, PartitionError> {
        let (job, lagging) = {
            let state = self.state.borrow();
            if !state.replica.is_leader() {
                return Err(PartitionError::NotLeader);
            }
            // KIP-207: a new leader's high watermark starts below the
            // start of its epoch (it is re-established from the followers'
            // fetches). Until it gets there, "latest" and a lookup past it
            // would answer an offset older than what was already visible:
            // OFFSET_NOT_AVAILABLE, which clients retry, as Kafka answers.
            let lagging = state.replica.replicated
                && state
                    .epochs
                    .entries()
                    .last()
                    .is_some_and(|&(epoch, start)| {
                        epoch == state.replica.leader_epoch && start > state.high_watermark
                    });
            let not_available = || PartitionError::OffsetNotAvailable {
                high_watermark: state.high_watermark,
                leader_epoch: state.replica.leader_epoch,
            };
            let job = match timestamp {
                -1 if lagging => return Err(not_available()),
                -1 => return Ok(Some((state.high_watermark, -1))),
                -2 => return Ok(Some((state.log.start_offset(), -1))),
                -3 => match state.log.max_timestamp() {
                    Some((ts, offset)) if offset < state.high_watermark => {
                        Err((offset, RecordWanted::Exactly(ts)))
                    }
                    _ if lagging => return Err(not_available()),
                    _ => return Ok(Some((-1, -1))),
                },
                ts => Ok(state
                    .log
                    .plan_offset_for_timestamp(ts, state.high_watermark)),
            };
            (job, lagging.then(not_available))
        };
        let (batch_offset, wanted) = match job {
            Err(known) => known,
            Ok(job) => match job.run().await {
                Ok(Some((offset, _))) => (offset, RecordWanted::AtLeast(timestamp)),
                Ok(None) => return lagging.map_or(Ok(None), Err),
                Err(e) => return Err(self.read_failed(timestamp, e)),
            },
        };
        let batch = self.read(batch_offset, ReadLimit::Upto(1)).await?.records;
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
}

#[derive(Clone, Copy)]
enum RecordWanted {
    AtLeast(i64),
    Exactly(i64),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TopicConfig;
    use crate::io::MemDisk;
    use crate::log::CacheBudget;
    use crate::partition::replica::ReplicaState;
    use std::path::Path;

    /// KIP-207: a restarted leader's high watermark starts at the log start
    /// and climbs back from its followers' fetches; meanwhile "latest"
    /// must not answer an older offset than clients already saw.
    #[test]
    fn latest_is_not_available_until_a_new_leaders_high_watermark_reaches_its_epoch() {
        glommio::LocalExecutorBuilder::default()
            .make()
            .unwrap()
            .run(async {
                let partition = Partition::open_on(
                    MemDisk::new(),
                    Path::new("/data"),
                    "t",
                    0,
                    uuid::Uuid::from_u128(7),
                    TopicConfig::resolve(&Default::default(), &Default::default()),
                    CacheBudget::disabled(),
                )
                .await
                .unwrap();
                // Three records, durable, as a single node writes them.
                for i in 0..3 {
                    let value = bytes::Bytes::from(format!("v{i}"));
                    let batch = crate::group::records::batch(&[(value.clone(), Some(value))], 1);
                    partition.append(&batch, 1).unwrap();
                }
                let job = partition.take_flush().expect("a flush is due");
                partition.apply_flush(job.run(true).await).await;
                assert_eq!(partition.offset_for_timestamp(-1).await, Ok(Some((3, -1))));
                // The broker restarts into a cluster and leads epoch 1 with
                // a follower that has not fetched yet.
                partition.set_replica_state(ReplicaState::unassigned(1));
                partition.set_replica_state(ReplicaState {
                    me: 1,
                    leader: 1,
                    leader_epoch: 1,
                    partition_epoch: 0,
                    replicas: vec![1, 2],
                    isr: vec![1, 2],
                    replicated: true,
                });
                let not_available = partition.offset_for_timestamp(-1).await;
                assert!(
                    matches!(
                        not_available,
                        Err(PartitionError::OffsetNotAvailable { .. })
                    ),
                    "{not_available:?}"
                );
                // A timestamp lookup that finds nothing below the high
                // watermark is not available either; earliest is.
                assert!(partition.offset_for_timestamp(0).await.is_err());
                assert_eq!(partition.offset_for_timestamp(-2).await, Ok(Some((0, -1))));
                // The follower fetches from the leader's end: the high
                // watermark is back, and so is "latest".
                partition
                    .read_for_replica(2, 3, ReadLimit::Upto(1024), 1, true)
                    .await
                    .expect("the follower's fetch");
                assert_eq!(partition.high_watermark(), 3);
                assert_eq!(partition.offset_for_timestamp(-1).await, Ok(Some((3, -1))));
            });
    }
}
