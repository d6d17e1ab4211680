//! Group commit for one shard: every partition appended to since the last
//! round is flushed in the next round, all of a round's files written and
//! `fdatasync`ed concurrently; appends that arrive during a round wait for
//! the next one. One round in flight at a time per shard, one flush job per
//! partition per round, so each fdatasync is shared by every append of its
//! partition since the previous round.
//!
//! A group-commit window (tuning `group_commit_window_us`) makes a round
//! wait that long after the append that woke it, so more appends share its
//! write and fdatasync: fewer, larger disk operations for more latency.
//! Without one (the default) a round starts as soon as the previous one
//! ends, which already gathers everything that arrived meanwhile.
//!
//! One per shard. Knows partitions only through `take_flush` /
//! `complete_flush`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};

use super::Partition;
use crate::limits;

pub struct Committer {
    dirty: RefCell<Vec<Rc<Partition>>>,
    /// Capacity one: a pending wake-up is all the loop needs to know.
    wake: LocalSender<()>,
    /// How long a round waits for more appends before it starts.
    window: Duration,
    /// Rounds run so far (each one write + fdatasync per dirty partition).
    rounds: Cell<u64>,
    /// Microseconds spent in rounds so far, from a round's start (after the
    /// window) until its last flush completed: the time appends of this
    /// shard waited on the disk.
    round_us: Cell<u64>,
}

impl Committer {
    /// Creates the committer and spawns its loop on the current executor, in
    /// the given task queue.
    pub fn start(queue: glommio::TaskQueueHandle, window: Duration) -> Rc<Committer> {
        let (wake, woken) = local_channel::new_bounded(1);
        let committer = Rc::new(Committer {
            dirty: RefCell::new(Vec::new()),
            wake,
            window,
            rounds: Cell::new(0),
            round_us: Cell::new(0),
        });
        let looping = committer.clone();
        glommio::spawn_local_into(async move { looping.run(woken).await }, queue)
            .expect("task queue exists")
            .detach();
        committer
    }

    /// Queues a partition that has unflushed appends for the next round.
    pub fn schedule(&self, partition: &Rc<Partition>) {
        if partition.mark_queued() {
            let mut dirty = self.dirty.borrow_mut();
            assert!(
                dirty.len() < limits::COMMIT_WAITERS_PER_SHARD_MAX * 16,
                "dirty list is bounded by partitions"
            );
            dirty.push(partition.clone());
        }
        // Full means a wake-up is already pending.
        let _ = self.wake.try_send(());
    }

    /// True when no partition waits for a flush.
    pub fn is_idle(&self) -> bool {
        self.dirty.borrow().is_empty()
    }

    /// Commit rounds run so far.
    pub fn rounds(&self) -> u64 {
        self.rounds.get()
    }

    /// Microseconds spent in commit rounds so far (writes and fdatasyncs).
    pub fn round_us(&self) -> u64 {
        self.round_us.get()
    }

    async fn run(self: Rc<Self>, woken: LocalReceiver<()>) {
        while woken.recv().await.is_some() {
            loop {
                if !self.window.is_zero() && !self.is_idle() {
                    glommio::timer::sleep(self.window).await;
                }
                let round = std::mem::take(&mut *self.dirty.borrow_mut());
                if round.is_empty() {
                    break;
                }
                let jobs: Vec<_> = round
                    .into_iter()
                    .filter_map(|p| p.take_flush().map(|job| (p, job)))
                    .collect();
                self.rounds.set(self.rounds.get() + 1);
                let started = std::time::Instant::now();
                let this = &self;
                let flushes = jobs.into_iter().map(|(partition, job)| async move {
                    partition.apply_flush(job.run(true).await).await;
                    // Appends made while this flush ran were left unflushed:
                    // queue the partition again for the next round.
                    if partition.has_unflushed()
                        && !partition.is_deleted()
                        && partition.mark_queued()
                    {
                        this.dirty.borrow_mut().push(partition.clone());
                    }
                });
                futures::future::join_all(flushes).await;
                let us = started.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
                self.round_us.set(self.round_us.get().saturating_add(us));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TopicConfig;
    use crate::log::CacheBudget;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    fn one_record_batch(value: &str) -> Bytes {
        let record = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: 1,
            key: None,
            value: Some(Bytes::from(value.to_string())),
            headers: Default::default(),
        };
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, &[record], &options).unwrap();
        buf.freeze()
    }

    /// Appends `count` batches a millisecond apart, each scheduled on the
    /// committer, waits until all are durable and returns the rounds run.
    fn rounds_for_spaced_appends(window: Duration, count: usize) -> u64 {
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let root = tempfile::tempdir().unwrap();
                crate::io::prepare_disk(root.path()).await.unwrap();
                let partition = Rc::new(
                    Partition::open(
                        root.path(),
                        "t",
                        0,
                        uuid::Uuid::new_v4(),
                        TopicConfig::resolve(&Default::default(), &Default::default()),
                        CacheBudget::disabled(),
                    )
                    .await
                    .unwrap(),
                );
                let queue = glommio::executor().current_task_queue();
                let committer = Committer::start(queue, window);
                let mut waits = Vec::new();
                for i in 0..count {
                    let (_, wait) = partition
                        .append(&one_record_batch(&i.to_string()), 1)
                        .unwrap();
                    committer.schedule(&partition);
                    waits.push(wait.expect("a new batch waits for its commit"));
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                }
                for wait in waits {
                    wait.await.unwrap().unwrap();
                }
                assert_eq!(partition.high_watermark(), count as i64);
                assert!(committer.round_us() > 0, "a durable round takes time");
                committer.rounds()
            })
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn a_window_gathers_appends_into_one_round() {
        // Ten appends over about 10 ms, inside one 2 s window: one round
        // (write + fdatasync) makes them all durable.
        assert_eq!(rounds_for_spaced_appends(Duration::from_secs(2), 10), 1);
    }

    #[test]
    fn without_a_window_a_round_starts_at_once() {
        // The first append's round starts before the second append exists,
        // so the second needs a round of its own.
        assert!(rounds_for_spaced_appends(Duration::ZERO, 2) >= 2);
    }
}
