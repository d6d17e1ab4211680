//! Partition replication between brokers, per shard: the leader's side of a
//! follower's fetch (ISR expansion), the periodic ISR shrink check, and the
//! follower's fetchers (`fetcher`: one task per leader broker, fetching
//! every partition this shard follows from that broker in one request).
//!
//! The partitions keep the replication state (`partition::replica`); this
//! module moves data and proposes ISR changes. ISR changes go to shard 0,
//! which commits them through the controller quorum (Kafka's
//! AlterPartition); the new ISR reaches the partition with the catalog.
//!
//! What replication may read and do on its shard is [`ReplicationHost`],
//! implemented by the server's broker: it never sees the broker itself.

pub mod client;
pub mod fetcher;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use futures::future::LocalBoxFuture;
use glommio::TaskQueueHandle;

use crate::config::BrokerDefaults;
use crate::metadata::Catalog;
use crate::net::Network;
use crate::partition::replica::{IsrChange, ReplicaState};
use crate::partition::{Fetched, Partition, PartitionError, ReadLimit};
use crate::shard::mesh::{MeshError, ShardCall};
use crate::shard::ShardId;

/// What replication needs of its shard: the partitions it holds, the
/// catalog, the static broker settings, the task queues and the calls to
/// other shards. One per shard (the server's broker implements it).
pub trait ReplicationHost: Sized + 'static {
    /// This node's broker id.
    fn node_id(&self) -> i32;
    fn shard(&self) -> ShardId;
    /// The broker settings from the node's configuration (not the dynamic
    /// ones from the catalog).
    fn broker_config(&self) -> &BrokerDefaults;
    /// Whether the node is in a cluster (has a controller quorum).
    fn cluster_mode(&self) -> bool;
    fn catalog(&self) -> Rc<Catalog>;
    /// Every partition this shard holds (led or followed).
    fn local_partitions(&self) -> Vec<Rc<Partition>>;
    /// This shard's replication state.
    fn replication(&self) -> &Replication;
    /// Has the shard's group commit make `partition`'s appends durable.
    fn schedule_commit(&self, partition: &Rc<Partition>);
    /// The queue requests are served in (fetchers run there: acks=all
    /// waits on them).
    fn requests_queue(&self) -> TaskQueueHandle;
    /// The queue for work that must not delay requests.
    fn background_queue(&self) -> TaskQueueHandle;
    /// Serves `call` on shard `to`: directly when it is this shard, over
    /// the mesh otherwise.
    fn call<C: ShardCall<Self>>(
        self: &Rc<Self>,
        to: ShardId,
        call: C,
    ) -> impl Future<Output = C::Reply>;
    /// Only on shard 0: has the controller commit a leader's ISR change.
    fn alter_isr(
        self: &Rc<Self>,
        topic: String,
        partition: i32,
        change: IsrChange,
    ) -> impl Future<Output = Result<(), IsrChangeError>>;
    /// The network the fetchers connect to leaders over (`net::Tcp` in
    /// the broker).
    type Network: Network;
    fn network(&self) -> &Self::Network;
}

/// Why a leader's ISR change was not committed. The controller side's
/// reason is kept as its text: replication sits below the server and
/// cannot name its errors.
#[derive(Debug, thiserror::Error)]
pub enum IsrChangeError {
    #[error("shard 0 did not answer: {0}")]
    Unreachable(#[from] MeshError),
    #[error("the controller refused it: {0}")]
    Refused(String),
}

/// To shard 0: have the controller commit a leader's ISR change.
pub struct AlterIsr {
    pub topic: String,
    pub partition: i32,
    pub change: IsrChange,
}

impl<H: ReplicationHost> ShardCall<H> for AlterIsr {
    type Reply = Result<(), IsrChangeError>;
    fn serve(self, host: Rc<H>) -> LocalBoxFuture<'static, Self::Reply> {
        Box::pin(async move {
            host.alter_isr(self.topic, self.partition, self.change)
                .await
        })
    }
    fn unreachable(e: MeshError) -> Self::Reply {
        Err(IsrChangeError::Unreachable(e))
    }
}

/// One per shard.
#[derive(Default)]
pub struct Replication {
    /// Leader brokers this shard runs a fetcher for.
    fetchers: RefCell<HashSet<i32>>,
    /// Partitions (topic, index) with an ISR change on its way to the controller.
    isr_pending: RefCell<HashSet<(String, i32)>>,
    /// Committed ISR changes that reached this shard's leaders, taking
    /// members out (shrinks) or in (expands).
    isr_shrinks: Cell<u64>,
    isr_expands: Cell<u64>,
}

impl Replication {
    /// Starts a fetcher for every leader this shard now follows a partition
    /// of (after each catalog change). Fetchers stop by themselves when they
    /// have nothing left to follow.
    pub fn sync<H: ReplicationHost>(host: &Rc<H>) {
        let leaders: HashSet<i32> = host
            .local_partitions()
            .iter()
            .filter_map(|p| p.replica_state().followed_leader())
            .collect();
        for leader in leaders {
            if host.replication().fetchers.borrow_mut().insert(leader) {
                let queue = host.requests_queue();
                glommio::spawn_local_into(fetcher::run(host.clone(), leader), queue)
                    .expect("task queue exists")
                    .detach();
            }
        }
    }

    /// Committed ISR changes of this shard's leaders: (shrinks, expands).
    pub fn isr_changes(&self) -> (u64, u64) {
        (self.isr_shrinks.get(), self.isr_expands.get())
    }

    /// Counts a committed ISR change as it reaches a leader of this shard
    /// (`before` and `after`: its replica state, same leader and epoch):
    /// the leader's own proposals and the controller's, which takes a
    /// fenced broker out of every ISR, alike.
    pub fn note_isr_change(&self, before: &ReplicaState, after: &ReplicaState) {
        let leads = |s: &ReplicaState| s.replicated && s.leader == s.me;
        if !leads(before) || !leads(after) || before.leader_epoch != after.leader_epoch {
            return;
        }
        let bump = |c: &Cell<u64>, changed: bool| c.set(c.get() + u64::from(changed));
        bump(
            &self.isr_shrinks,
            before.isr.iter().any(|id| !after.isr.contains(id)),
        );
        bump(
            &self.isr_expands,
            after.isr.iter().any(|id| !before.isr.contains(id)),
        );
    }

    /// A fetcher found nothing left to follow from `leader`.
    pub(crate) fn fetcher_stopped(&self, leader: i32) {
        self.fetchers.borrow_mut().remove(&leader);
    }

    /// Sends an ISR change to the controller (through shard 0) unless one
    /// for the same partition is already on its way.
    pub fn propose_isr<H: ReplicationHost>(host: &Rc<H>, partition: &Partition, change: IsrChange) {
        let key = (partition.topic.clone(), partition.index);
        if !host
            .replication()
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
        let host = host.clone();
        let queue = host.background_queue();
        glommio::spawn_local_into(
            async move {
                let call = AlterIsr {
                    topic: key.0.clone(),
                    partition: key.1,
                    change,
                };
                if let Err(e) = host.call(ShardId(0), call).await {
                    // An expansion that failed (or timed out) still holds
                    // the high watermark: it may have been taken
                    // (`Partition::isr_shrink_wanted` ends the wait).
                    log::info!("{}-{}: ISR change not made: {e}", key.0, key.1);
                }
                host.replication().isr_pending.borrow_mut().remove(&key);
            },
            queue,
        )
        .expect("task queue exists")
        .detach();
    }
}

/// A follower's fetch on the leader's owner shard.
pub async fn serve_follower_fetch<H: ReplicationHost>(
    host: &Rc<H>,
    partition: &Rc<Partition>,
    replica: i32,
    offset: i64,
    limit: ReadLimit,
    current_leader_epoch: i32,
) -> Result<Fetched, PartitionError> {
    let may_join_isr = host
        .catalog()
        .brokers
        .get(&replica)
        .is_some_and(|b| !b.fenced);
    let read = partition
        .read_for_replica(replica, offset, limit, current_leader_epoch, may_join_isr)
        .await?;
    if let Some(change) = read.isr_change {
        Replication::propose_isr(host, partition, change);
    }
    Ok(read.fetched)
}

/// The leader's periodic ISR check (Kafka runs it every half lag time):
/// followers that stopped catching up leave the ISR.
pub async fn isr_shrink_loop<H: ReplicationHost>(host: Rc<H>) {
    let lag_max =
        Duration::from_millis(host.broker_config().replica_lag_time_max_ms.max(100) as u64);
    let every = (lag_max / 2).clamp(Duration::from_millis(50), Duration::from_secs(5));
    while !crate::shard::shutdown::requested() {
        glommio::timer::sleep(every).await;
        if host.cluster_mode() {
            for partition in host.local_partitions() {
                if let Some(change) = partition.isr_shrink_wanted(lag_max) {
                    Replication::propose_isr(&host, &partition, change);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leading(isr: &[i32], leader: i32, epoch: i32) -> ReplicaState {
        ReplicaState {
            me: 1,
            leader,
            leader_epoch: epoch,
            partition_epoch: 0,
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            replicated: true,
        }
    }

    #[test]
    fn isr_changes_count_where_a_leader_keeps_its_epoch() {
        let r = Replication::default();
        r.note_isr_change(&leading(&[1, 2, 3], 1, 4), &leading(&[1, 3], 1, 4));
        assert_eq!(r.isr_changes(), (1, 0));
        r.note_isr_change(&leading(&[1, 3], 1, 4), &leading(&[1, 3, 2], 1, 4));
        assert_eq!(r.isr_changes(), (1, 1));
        // The same ISR, a new leader or epoch, a follower, a single node,
        // a replica that had no role yet: nothing counted.
        r.note_isr_change(&leading(&[1, 3], 1, 4), &leading(&[1, 3], 1, 4));
        r.note_isr_change(&leading(&[1, 2, 3], 1, 4), &leading(&[1], 1, 5));
        r.note_isr_change(&leading(&[2, 3], 2, 4), &leading(&[2], 2, 4));
        r.note_isr_change(&ReplicaState::single(), &ReplicaState::single());
        r.note_isr_change(&ReplicaState::unassigned(1), &leading(&[1], 1, 4));
        assert_eq!(r.isr_changes(), (1, 1));
    }
}
