//! What shards ask of each other, one type per kind of call, and how the
//! shard that receives a call serves it.
//!
//! Handlers reach partitions through [`PartitionClient`]: async operations
//! that run on whichever shard owns the partition (a fetch's calls in
//! `routing/fetch.rs`).
//!
//! Each call is a struct implementing [`ShardCall`] on the per-shard
//! [`Broker`]: its reply type is part of its type, and what a caller gets
//! when the target shard cannot be reached (it is stopping) is decided once,
//! in its `unreachable`. Callers go through [`Broker::call`], a direct call
//! when the target is this shard, the mesh otherwise.
//!
//! The calls a service makes of its own kind on other shards live in that
//! service, generic over its host trait (`replication::AlterIsr`,
//! `group::GroupShardCall`); the
//! broker serves them through the trait.
//!
//! Partition calls name partitions by topic and index; the owner looks them
//! up in its own registry. A partition that is not (or no longer) here
//! answers `PartitionError::Gone`, which clients see as
//! UNKNOWN_TOPIC_OR_PARTITION and retry after refreshing metadata; an owner
//! shard that cannot be reached answers `PartitionError::NotLeader`
//! (NOT_LEADER_OR_FOLLOWER: refresh metadata and retry). Catalog calls go to
//! shard 0; an unreachable shard 0 answers `CatalogError::Unavailable`.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::LocalBoxFuture;

use super::broker::{Broker, Roles};
use super::catalog::{CatalogError, CatalogOwner, NewTopic};
use crate::cluster::calls::ControllerError;
use crate::cluster::quorum::{ElectionOutcome, QuorumStatus};
use crate::metadata::{Catalog, TopicMeta};
use crate::partition::{Appended, PartitionError};
use crate::shard::mesh::{MeshError, ShardCall};
use crate::shard::ShardId;

mod fetch;
pub use fetch::FetchPosition;

/// Where a partition lives: its topic, its index and the shard of this node
/// that owns it, resolved from the catalog.
#[derive(Clone, Debug)]
pub struct PartitionAddr {
    pub topic: String,
    pub index: i32,
    owner: ShardId,
}

impl PartitionAddr {
    /// The partition `index` of `topic`, or `None` if the topic has no such
    /// partition (each API answers that with its own error code).
    pub fn locate(topic: &TopicMeta, index: i32) -> Option<PartitionAddr> {
        let owner = *topic.shards.get(usize::try_from(index).ok()?)?;
        Some(PartitionAddr {
            topic: topic.name.clone(),
            index,
            owner: ShardId(owner as usize),
        })
    }
}

/// A partition's operations, callable from any shard: each runs on the
/// shard that owns the partition (a direct call when that is this one) and
/// answers that shard's typed result, so no handler decides where a
/// partition is served. Record bytes cross shards as `Bytes`, the request
/// frame's own allocation, never copied.
pub struct PartitionClient<'a> {
    broker: &'a Rc<Broker>,
}

impl<'a> PartitionClient<'a> {
    pub fn new(broker: &'a Rc<Broker>) -> Self {
        PartitionClient { broker }
    }

    /// Appends one batch; answers when durable (acks 1), replicated to the
    /// ISR within `timeout_ms` (acks all), or appended (acks 0).
    pub async fn produce(
        &self,
        at: &PartitionAddr,
        records: Bytes,
        acks: i16,
        timeout_ms: u64,
    ) -> Result<Appended, PartitionError> {
        let stats = &self.broker.stats;
        let counter = if at.owner == self.broker.shard() {
            &stats.produce_local
        } else {
            &stats.produce_forwarded
        };
        counter.set(counter.get() + 1);
        let call = Produce {
            topic: at.topic.clone(),
            partition: at.index,
            records,
            acks,
            timeout_ms,
        };
        self.broker.call(at.owner, call).await
    }

    /// ListOffsets: (offset, timestamp) for `timestamp`, `None` if no record
    /// matches.
    pub async fn list_offsets(
        &self,
        at: &PartitionAddr,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>, PartitionError> {
        let call = ListOffset {
            topic: at.topic.clone(),
            partition: at.index,
            timestamp,
        };
        self.broker.call(at.owner, call).await
    }

    /// ListOffsets v0: the legacy offset list for `timestamp`, at most
    /// `max_offsets` long.
    pub async fn legacy_offsets(
        &self,
        at: &PartitionAddr,
        timestamp: i64,
        max_offsets: usize,
    ) -> Result<Vec<i64>, PartitionError> {
        let call = LegacyOffsets {
            topic: at.topic.clone(),
            partition: at.index,
            timestamp,
            max_offsets,
        };
        self.broker.call(at.owner, call).await
    }

    /// OffsetForLeaderEpoch: (epoch, end offset) of `leader_epoch`.
    pub async fn epoch_end(
        &self,
        at: &PartitionAddr,
        current_leader_epoch: i32,
        leader_epoch: i32,
    ) -> Result<(i32, i64), PartitionError> {
        let call = EpochEnd {
            topic: at.topic.clone(),
            partition: at.index,
            current_leader_epoch,
            leader_epoch,
        };
        self.broker.call(at.owner, call).await
    }

    /// DeleteRecords: moves the log start offset; answers the low watermark.
    pub async fn delete_records(
        &self,
        at: &PartitionAddr,
        offset: i64,
    ) -> Result<i64, PartitionError> {
        let call = DeleteRecords {
            topic: at.topic.clone(),
            partition: at.index,
            offset,
        };
        self.broker.call(at.owner, call).await
    }
}

/// Append one batch to a partition; answered when durable (acks 1/all) or
/// appended (acks 0).
struct Produce {
    topic: String,
    partition: i32,
    /// The batch as it came in the request frame: shared, never copied.
    records: Bytes,
    acks: i16,
    /// How long acks=all may wait for the in-sync replicas.
    timeout_ms: u64,
}

impl ShardCall<Broker> for Produce {
    type Reply = Result<Appended, PartitionError>;
    fn serve(self, broker: Rc<Broker>) -> LocalBoxFuture<'static, Self::Reply> {
        Box::pin(async move {
            let Produce {
                topic,
                partition,
                records,
                acks,
                timeout_ms,
            } = self;
            produce(&broker, &topic, partition, &records, acks, timeout_ms).await
        })
    }
    fn unreachable(_: MeshError) -> Self::Reply {
        Err(PartitionError::NotLeader)
    }
}

/// OffsetForLeaderEpoch on the leader: (epoch, end offset).
struct EpochEnd {
    topic: String,
    partition: i32,
    current_leader_epoch: i32,
    leader_epoch: i32,
}

impl ShardCall<Broker> for EpochEnd {
    type Reply = Result<(i32, i64), PartitionError>;
    fn serve(self, broker: Rc<Broker>) -> LocalBoxFuture<'static, Self::Reply> {
        Box::pin(async move {
            local(&broker, &self.topic, self.partition)?
                .end_offset_for_epoch(self.current_leader_epoch, self.leader_epoch)
        })
    }
    fn unreachable(_: MeshError) -> Self::Reply {
        Err(PartitionError::NotLeader)
    }
}

/// ListOffsets v0 on the leader: the legacy offset list.
struct LegacyOffsets {
    topic: String,
    partition: i32,
    timestamp: i64,
    max_offsets: usize,
}

impl ShardCall<Broker> for LegacyOffsets {
    type Reply = Result<Vec<i64>, PartitionError>;
    fn serve(self, broker: Rc<Broker>) -> LocalBoxFuture<'static, Self::Reply> {
        Box::pin(async move {
            local(&broker, &self.topic, self.partition)?
                .legacy_offsets_before(self.timestamp, self.max_offsets)
        })
    }
    fn unreachable(_: MeshError) -> Self::Reply {
        Err(PartitionError::NotLeader)
    }
}

/// ListOffsets: the (offset, timestamp) of the first record at or after
/// `timestamp` (or the special -1 latest / -2 earliest / -3 max timestamp).
struct ListOffset {
    topic: String,
    partition: i32,
    timestamp: i64,
}

impl ShardCall<Broker> for ListOffset {
    type Reply = Result<Option<(i64, i64)>, PartitionError>;
    fn serve(self, broker: Rc<Broker>) -> LocalBoxFuture<'static, Self::Reply> {
        Box::pin(async move {
            local(&broker, &self.topic, self.partition)?
                .offset_for_timestamp(self.timestamp)
                .await
        })
    }
    fn unreachable(_: MeshError) -> Self::Reply {
        Err(PartitionError::NotLeader)
    }
}

/// DeleteRecords on a partition's owner: moves its log start offset;
/// answers the new low watermark.
struct DeleteRecords {
    topic: String,
    partition: i32,
    offset: i64,
}

impl ShardCall<Broker> for DeleteRecords {
    type Reply = Result<i64, PartitionError>;
    fn serve(self, broker: Rc<Broker>) -> LocalBoxFuture<'static, Self::Reply> {
        Box::pin(async move {
            local(&broker, &self.topic, self.partition)?
                .delete_records(self.offset)
                .await
        })
    }
    fn unreachable(_: MeshError) -> Self::Reply {
        Err(PartitionError::NotLeader)
    }
}

/// To every shard: (topic, partition, bytes on disk) of each partition it
/// holds.
pub struct PartitionSizes;

impl ShardCall<Broker> for PartitionSizes {
    type Reply = Vec<(String, i32, u64)>;
    fn serve(self, broker: Rc<Broker>) -> LocalBoxFuture<'static, Self::Reply> {
        Box::pin(async move { broker.partition_sizes() })
    }
    /// A stopping shard's partitions are left out of DescribeLogDirs.
    fn unreachable(_: MeshError) -> Self::Reply {
        Vec::new()
    }
}

/// From shard 0 to every shard: make the partitions match this catalog.
pub struct ApplyCatalog(pub Box<Catalog>);

impl ShardCall<Broker> for ApplyCatalog {
    type Reply = Result<(), CatalogError>;
    fn serve(self, broker: Rc<Broker>) -> LocalBoxFuture<'static, Self::Reply> {
        Box::pin(async move {
            broker
                .apply_catalog(Rc::new(*self.0), Roles::FromCatalog)
                .await;
            Ok(())
        })
    }
    fn unreachable(e: MeshError) -> Self::Reply {
        Err(CatalogError::Unavailable(e.to_string()))
    }
}

/// To shard 0: create a topic, or only check that it could be
/// (`validate_only`).
pub struct CreateTopic {
    pub topic: NewTopic,
    pub validate_only: bool,
}

impl ShardCall<Broker> for CreateTopic {
    type Reply = Result<TopicMeta, CatalogError>;
    fn serve(self, broker: Rc<Broker>) -> LocalBoxFuture<'static, Self::Reply> {
        Box::pin(async move {
            let topic = self.topic;
            if !self.validate_only {
                return CatalogOwner::create_topic(&broker, topic).await;
            }
            let owner = broker
                .owner
                .as_ref()
                .expect("catalog requests go to shard 0");
            owner.validate(&topic).map(|_| TopicMeta {
                name: topic.name.clone(),
                id: uuid::Uuid::nil(),
                shards: vec![0; topic.partitions.max(0) as usize],
                configs: topic.configs.clone(),
                replicas: Vec::new(),
            })
        })
    }
    fn unreachable(e: MeshError) -> Self::Reply {
        Err(CatalogError::Unavailable(e.to_string()))
    }
}

/// To shard 0: delete a topic; answers what it was.
pub struct DeleteTopic(pub String);

impl ShardCall<Broker> for DeleteTopic {
    type Reply = Result<TopicMeta, CatalogError>;
    fn serve(self, broker: Rc<Broker>) -> LocalBoxFuture<'static, Self::Reply> {
        Box::pin(async move { CatalogOwner::delete_topic(&broker, &self.0).await })
    }
    fn unreachable(e: MeshError) -> Self::Reply {
        Err(CatalogError::Unavailable(e.to_string()))
    }
}

/// To shard 0: grow a topic to `count` partitions.
pub struct CreatePartitions {
    pub topic: String,
    pub count: i32,
    pub validate_only: bool,
}

impl ShardCall<Broker> for CreatePartitions {
    type Reply = Result<(), CatalogError>;
    fn serve(self, broker: Rc<Broker>) -> LocalBoxFuture<'static, Self::Reply> {
        Box::pin(async move {
            CatalogOwner::create_partitions(&broker, &self.topic, self.count, self.validate_only)
                .await
        })
    }
    fn unreachable(e: MeshError) -> Self::Reply {
        Err(CatalogError::Unavailable(e.to_string()))
    }
}

/// To shard 0: replace a topic's or the broker's dynamic configs (already
/// validated by the caller).
pub enum SetConfigs {
    Topic {
        topic: String,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    },
    /// The cluster-wide broker configs (`node` None) or one broker's.
    Broker {
        node: Option<i32>,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    },
}

impl ShardCall<Broker> for SetConfigs {
    type Reply = Result<(), CatalogError>;
    fn serve(self, broker: Rc<Broker>) -> LocalBoxFuture<'static, Self::Reply> {
        Box::pin(async move {
            match self {
                SetConfigs::Topic {
                    topic,
                    configs,
                    validate_only,
                } => CatalogOwner::set_topic_configs(&broker, &topic, configs, validate_only).await,
                SetConfigs::Broker {
                    node,
                    configs,
                    validate_only,
                } => CatalogOwner::set_broker_configs(&broker, node, configs, validate_only).await,
            }
        })
    }
    fn unreachable(e: MeshError) -> Self::Reply {
        Err(CatalogError::Unavailable(e.to_string()))
    }
}

/// To shard 0: a producer id never handed out before.
pub struct AllocateProducerId;

impl ShardCall<Broker> for AllocateProducerId {
    type Reply = Result<i64, CatalogError>;
    fn serve(self, broker: Rc<Broker>) -> LocalBoxFuture<'static, Self::Reply> {
        Box::pin(async move { CatalogOwner::allocate_producer_id(&broker).await })
    }
    fn unreachable(e: MeshError) -> Self::Reply {
        Err(CatalogError::Unavailable(e.to_string()))
    }
}

/// To shard 0: preferred-leader election (ElectLeaders); `None`: every
/// partition.
pub struct ElectPreferred(pub Option<Vec<(String, i32)>>);

impl ShardCall<Broker> for ElectPreferred {
    type Reply = Result<Vec<(String, i32, ElectionOutcome)>, ControllerError>;
    fn serve(self, broker: Rc<Broker>) -> LocalBoxFuture<'static, Self::Reply> {
        Box::pin(async move {
            match broker.cluster() {
                Some(node) => node.elect_preferred(self.0).await,
                // A single node is every partition's only (and preferred) replica.
                None => Ok(single_node_elections(&broker.catalog(), self.0)),
            }
        })
    }
    /// Shard 0 is gone only when the broker stops.
    fn unreachable(_: MeshError) -> Self::Reply {
        Err(ControllerError::ShuttingDown)
    }
}

/// To shard 0: the controller quorum's state (`None` on a single node).
pub struct QuorumState;

impl ShardCall<Broker> for QuorumState {
    type Reply = Result<Option<QuorumStatus>, ControllerError>;
    fn serve(self, broker: Rc<Broker>) -> LocalBoxFuture<'static, Self::Reply> {
        Box::pin(async move {
            match broker.cluster() {
                Some(node) => node.status().await.map(Some),
                None => Ok(None),
            }
        })
    }
    /// Shard 0 is gone only when the broker stops.
    fn unreachable(_: MeshError) -> Self::Reply {
        Err(ControllerError::ShuttingDown)
    }
}

/// ElectLeaders on a single node: nothing to move.
fn single_node_elections(
    catalog: &Catalog,
    wanted: Option<Vec<(String, i32)>>,
) -> Vec<(String, i32, ElectionOutcome)> {
    wanted
        .unwrap_or_default()
        .into_iter()
        .map(|(topic, partition)| {
            let exists = catalog
                .topics
                .get(&topic)
                .is_some_and(|t| partition >= 0 && partition < t.partition_count());
            let outcome = if exists {
                ElectionOutcome::NotNeeded
            } else {
                ElectionOutcome::UnknownPartition
            };
            (topic, partition, outcome)
        })
        .collect()
}

/// The partition if this shard holds it, or why not.
fn local(
    broker: &Broker,
    topic: &str,
    index: i32,
) -> Result<Rc<crate::partition::Partition>, PartitionError> {
    broker
        .partition(topic, index)
        .ok_or_else(|| missing(broker, topic, index))
}

/// Why a partition is not open here: in a cluster, another broker leads
/// it (clients refresh metadata and go there); otherwise it is gone.
fn missing(broker: &Broker, topic: &str, index: i32) -> PartitionError {
    if let Some(reason) = broker.offline_reason(topic, index) {
        return PartitionError::Storage(format!("partition is offline: {reason}"));
    }
    let catalog = broker.catalog();
    let node = broker.config.broker.node_id;
    match catalog.topics.get(topic) {
        Some(t)
            if index >= 0
                && index < t.partition_count()
                && t.leader(index as usize, node) != node =>
        {
            PartitionError::NotLeader
        }
        _ => PartitionError::Gone,
    }
}

/// Appends on the owner shard and waits for durability when the client asked
/// for an acknowledgement: here (acks=1), or on every in-sync replica
/// (acks=all), the latter bounded by the request's timeout.
async fn produce(
    broker: &Rc<Broker>,
    topic: &str,
    index: i32,
    records: &[u8],
    acks: i16,
    timeout_ms: u64,
) -> Result<Appended, PartitionError> {
    let partition = broker
        .partition(topic, index)
        .ok_or_else(|| missing(broker, topic, index))?;
    let (appended, commit) = partition.append(records, acks)?;
    if commit.is_some() {
        broker.committer.schedule(&partition);
    }
    drop(partition);
    let Some(commit) = commit.filter(|_| acks != 0) else {
        return Ok(appended);
    };
    let wait = async { commit.await.unwrap_or(Err(PartitionError::Gone)) };
    if acks != -1 {
        return wait.await.map(|_| appended);
    }
    let timeout = async {
        glommio::timer::sleep(Duration::from_millis(timeout_ms)).await;
        Err(PartitionError::TimedOut)
    };
    futures_lite::future::or(wait, timeout)
        .await
        .map(|_| appended)
}
