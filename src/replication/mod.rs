//! Partition replication between brokers, per shard: the leader's side of a
//! follower's fetch (ISR expansion), the periodic ISR shrink check, and the
//! follower's fetchers (`fetcher`: one task per leader broker, fetching
//! every partition this shard follows from that broker in one request).
//!
//! The partitions keep the replication state (`partition::replica`); this
//! module moves data and proposes ISR changes. ISR changes go to shard 0,
//! which commits them through the controller quorum (Kafka's
//! AlterPartition); the new ISR reaches the partition with the catalog.

pub mod client;
pub mod fetcher;

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;

use crate::partition::replica::IsrChange;
use crate::partition::{Fetched, Partition, PartitionError};
use crate::server::broker::Broker;
use crate::server::routing::AlterIsr;
use crate::shard::ShardId;

/// One per shard.
#[derive(Default)]
pub struct Replication {
    /// Leader brokers this shard runs a fetcher for.
    fetchers: RefCell<HashSet<i32>>,
    /// Partitions (topic, index) with an ISR change on its way to the controller.
    isr_pending: RefCell<HashSet<(String, i32)>>,
}

impl Replication {
    /// Starts a fetcher for every leader this shard now follows a partition
    /// of (after each catalog change). Fetchers stop by themselves when they
    /// have nothing left to follow.
    pub fn sync(broker: &Rc<Broker>) {
        let leaders: HashSet<i32> = broker
            .local_partitions()
            .iter()
            .filter_map(|p| p.replica_state().followed_leader())
            .collect();
        for leader in leaders {
            if broker.replication.fetchers.borrow_mut().insert(leader) {
                let queue = broker.requests;
                glommio::spawn_local_into(fetcher::run(broker.clone(), leader), queue)
                    .expect("task queue exists")
                    .detach();
            }
        }
    }

    /// A fetcher found nothing left to follow from `leader`.
    pub(crate) fn fetcher_stopped(&self, leader: i32) {
        self.fetchers.borrow_mut().remove(&leader);
    }

    /// Sends an ISR change to the controller (through shard 0) unless one
    /// for the same partition is already on its way.
    pub fn propose_isr(broker: &Rc<Broker>, partition: &Partition, change: IsrChange) {
        let key = (partition.topic.clone(), partition.index);
        if !broker
            .replication
            .isr_pending
            .borrow_mut()
            .insert(key.clone())
        {
            return;
        }
        log::info!(
            "{}-{}: proposing ISR {:?} (leader epoch {})",
            key.0,
            key.1,
            change.isr,
            change.leader_epoch
        );
        let broker = broker.clone();
        let queue = broker.background;
        glommio::spawn_local_into(
            async move {
                let call = AlterIsr {
                    topic: key.0.clone(),
                    partition: key.1,
                    change,
                };
                if let Err(e) = broker.call(ShardId(0), call).await {
                    log::info!("{}-{}: ISR change not made: {e}", key.0, key.1);
                }
                broker.replication.isr_pending.borrow_mut().remove(&key);
            },
            queue,
        )
        .expect("task queue exists")
        .detach();
    }
}

/// A follower's fetch on the leader's owner shard.
pub async fn serve_follower_fetch(
    broker: &Rc<Broker>,
    partition: &Rc<Partition>,
    replica: i32,
    offset: i64,
    max_bytes: usize,
    current_leader_epoch: i32,
) -> Result<Fetched, PartitionError> {
    let read = partition
        .read_for_replica(replica, offset, max_bytes, current_leader_epoch)
        .await?;
    if let Some(change) = read.isr_change {
        Replication::propose_isr(broker, partition, change);
    }
    Ok(read.fetched)
}

/// The leader's periodic ISR check (Kafka runs it every half lag time):
/// followers that stopped catching up leave the ISR.
pub async fn isr_shrink_loop(broker: Rc<Broker>) {
    let lag_max =
        Duration::from_millis(broker.config.broker.replica_lag_time_max_ms.max(100) as u64);
    let every = (lag_max / 2).clamp(Duration::from_millis(50), Duration::from_secs(5));
    while !crate::shard::shutdown::requested() {
        glommio::timer::sleep(every).await;
        if broker.cluster_mode() {
            for partition in broker.local_partitions() {
                if let Some(change) = partition.isr_shrink_wanted(lag_max) {
                    Replication::propose_isr(&broker, &partition, change);
                }
            }
        }
    }
}
