//! What shards ask of each other, one type per kind of call, and how the
//! shard that receives a call serves it.
//!
//! Handlers reach partitions through [`PartitionClient`]: async operations
//! that run on whichever shard owns the partition.
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
use futures::stream::{FuturesUnordered, StreamExt};

use super::broker::{Broker, Roles};
use super::catalog::{CatalogError, CatalogOwner, NewTopic};
use crate::cluster::calls::ControllerError;
use crate::cluster::quorum::{ElectionOutcome, QuorumStatus};
use crate::limits;
use crate::metadata::{Catalog, TopicMeta};
use crate::partition::{Appended, Fetched, PartitionError, ReadLimit};
use crate::protocol::batch::count_records;
use crate::shard::mesh::{MeshError, ShardCall};
use crate::shard::ShardId;

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

    /// Reads partitions of one fetch: one call per owner shard, each with
    /// an equal part of `budget`, which it spends on its partitions in
    /// order (see `ReadMany`). `replica`: a follower's broker id. Results
    /// are in `parts`' order.
    pub async fn fetch_many(
        &self,
        parts: &[(&PartitionAddr, FetchPosition)],
        budget: usize,
        records: usize,
        whole_shares: bool,
        replica: Option<i32>,
    ) -> Vec<Result<Fetched, PartitionError>> {
        let by_owner = group_by_owner(parts.iter().map(|(at, _)| *at));
        let owner_budget = budget / by_owner.len().max(1);
        let owner_records = records / by_owner.len().max(1);
        let stats = &self.broker.stats;
        for (&owner, indices) in &by_owner {
            let counter = if owner == self.broker.shard() {
                &stats.fetch_local
            } else {
                &stats.fetch_forwarded
            };
            counter.set(counter.get() + indices.len() as u64);
        }
        let calls = by_owner.iter().map(|(&owner, indices)| {
            let call = ReadMany {
                parts: indices
                    .iter()
                    .map(|&i| {
                        let (at, position) = &parts[i];
                        (at.topic.clone(), at.index, *position)
                    })
                    .collect(),
                budget: owner_budget,
                records: owner_records,
                whole_shares,
                replica,
            };
            self.broker.call(owner, call)
        });
        let replies = futures::future::join_all(calls).await;
        let mut results: Vec<Option<Result<Fetched, PartitionError>>> =
            (0..parts.len()).map(|_| None).collect();
        for ((_, indices), reply) in by_owner.iter().zip(replies) {
            if reply.len() != indices.len() {
                // The owner could not be reached (it is stopping).
                for &i in indices {
                    results[i] = Some(Err(PartitionError::NotLeader));
                }
                continue;
            }
            for (&i, result) in indices.iter().zip(reply) {
                results[i] = Some(result);
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every partition answered"))
            .collect()
    }

    /// Returns once one of `parts` has data past its offset (a follower:
    /// its flushed end) or `wait_ms` passed: one call per owner shard.
    pub async fn wait_for_any(&self, parts: &[(&PartitionAddr, i64)], wait_ms: u64, replica: bool) {
        let by_owner = group_by_owner(parts.iter().map(|(at, _)| *at));
        let waits: Vec<_> = by_owner
            .iter()
            .map(|(&owner, indices)| {
                let call = WaitForAny {
                    parts: indices
                        .iter()
                        .map(|&i| (parts[i].0.topic.clone(), parts[i].0.index, parts[i].1))
                        .collect(),
                    wait_ms,
                    replica,
                };
                Box::pin(self.broker.call(owner, call))
            })
            .collect();
        if waits.is_empty() {
            return;
        }
        futures::future::select_all(waits).await;
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

/// Where one partition of a fetch reads from.
#[derive(Clone, Copy, Debug)]
pub struct FetchPosition {
    pub offset: i64,
    /// The partition's own limit (Kafka's partition_max_bytes).
    pub max_bytes: usize,
    /// The leader epoch a follower's fetch names (-1: none).
    pub current_leader_epoch: i32,
}

/// The indices of `addrs` grouped by owner shard, in order within each.
fn group_by_owner<'p>(
    addrs: impl Iterator<Item = &'p PartitionAddr>,
) -> BTreeMap<ShardId, Vec<usize>> {
    let mut by_owner: BTreeMap<ShardId, Vec<usize>> = BTreeMap::new();
    for (i, at) in addrs.enumerate() {
        by_owner.entry(at.owner).or_default().push(i);
    }
    by_owner
}

/// Reads the partitions of one fetch that one shard owns, concurrently,
/// within this owner's part of the response budget (shares taken in
/// request order, see `serve`): a consumer's fetch, or a follower's
/// (`replica`: its broker id). What is read into memory follows the
/// budget, not the partition count. One reply per partition, in order.
struct ReadMany {
    parts: Vec<(String, i32, FetchPosition)>,
    budget: usize,
    /// About how many records the reads may return (see
    /// `limits::FETCH_RESPONSE_RECORDS_MAX`): a partition's share in bytes
    /// is at most what is left of it times the partition's bytes per record.
    records: usize,
    /// Shares are whole limits (but the first, which returns at least one
    /// batch): the response's first round. Later rounds serve partitions
    /// known to have data with what is left, batches that fit it only.
    whole_shares: bool,
    replica: Option<i32>,
}

impl ShardCall<Broker> for ReadMany {
    type Reply = Vec<Result<Fetched, PartitionError>>;
    fn serve(self, broker: Rc<Broker>) -> LocalBoxFuture<'static, Self::Reply> {
        Box::pin(async move {
            let ReadMany {
                parts,
                budget,
                records,
                whole_shares,
                replica,
            } = self;
            // Reads run concurrently, each holding a share of the budget
            // taken in order. In the first round a share is its
            // partition's whole limit, so one read holds what it returns
            // (a smaller share cuts large batches and costs a second read,
            // which a catch-up read of many partitions would pay on most
            // of them); the first partition may take less (it returns at
            // least one batch, KIP-74). Later rounds serve partitions known
            // to have data with whatever is left, and only with batches
            // that fit it (nothing read past it). A read that returns less
            // gives the rest back to the partitions after it. Once no share
            // fits and nothing in flight can give any back, the rest get
            // only what the caches hold (no I/O, no memory beyond the
            // cache's). So at most the budget (plus one batch) is read into
            // memory, however many partitions the fetch names, and disk
            // reads still overlap.
            let mut replies: Vec<Option<Result<Fetched, PartitionError>>> =
                (0..parts.len()).map(|_| None).collect();
            let mut unreserved = budget;
            let mut records_unreserved = records;
            let mut reading = FuturesUnordered::new();
            let mut started_any = false;
            let mut next = 0;
            let reads_until =
                crate::clock::now() + Duration::from_millis(limits::FETCH_DISK_READ_MS);
            let mut got_records = false;
            loop {
                // Once it holds records, a fetch starts no disk reads past
                // its time (`FETCH_DISK_READ_MS`): as if the budget were spent.
                let late = got_records && crate::clock::now() >= reads_until;
                let start = parts.get(next).and_then(|(topic, partition, position)| {
                    // A partition with less than its limit left reserves
                    // only what it has (an upper bound, so all of it fits):
                    // the tails of a catch-up read then run side by side
                    // instead of a few at a time.
                    let hint = broker
                        .partition(topic, *partition)
                        .map(|p| p.read_size_hint(position.offset));
                    let left = hint.map_or(position.max_bytes, |h| {
                        usize::try_from(h.max_bytes).unwrap_or(usize::MAX)
                    });
                    // What is left of the record budget, in this
                    // partition's bytes.
                    let per_record = hint
                        .and_then(|h| h.bytes_per_record)
                        .and_then(|b| usize::try_from(b).ok())
                        .unwrap_or(usize::MAX)
                        .max(1);
                    let unreserved = unreserved.min(records_unreserved.saturating_mul(per_record));
                    let short = left < position.max_bytes;
                    let need = position.max_bytes.min(left);
                    let whole = unreserved >= need || !started_any;
                    if late {
                        reading
                            .is_empty()
                            .then_some((ReadLimit::CachedUpto(position.max_bytes), 0))
                    } else if short && unreserved >= need {
                        Some((ReadLimit::Within(need), need))
                    } else if !whole_shares {
                        // Later rounds read only partitions whose data all
                        // fits (above): a read whose first batch is larger
                        // than its share returns nothing, and every round
                        // would read it again (measured: 4 consumers of 512
                        // partitions read 9x the bytes they were sent).
                        Some((ReadLimit::Nothing, 0))
                    } else if unreserved > 0 && whole {
                        let share = position.max_bytes.min(unreserved);
                        Some((ReadLimit::Upto(share), share))
                    } else if reading.is_empty() {
                        Some((ReadLimit::CachedUpto(position.max_bytes), 0))
                    } else {
                        None // wait for a read in flight to give budget back
                    }
                    .map(|(limit, share)| (limit, share, share.div_ceil(per_record)))
                });
                if let Some((limit, share, share_records)) = start {
                    let (topic, partition, position) = &parts[next];
                    started_any |= share > 0;
                    unreserved -= share;
                    records_unreserved = records_unreserved.saturating_sub(share_records);
                    let (broker, i) = (&broker, next);
                    reading.push(async move {
                        let reply =
                            read_one(broker, topic, *partition, position, limit, replica).await;
                        (i, share, share_records, reply)
                    });
                    next += 1;
                    continue;
                }
                let Some((i, share, share_records, reply)) = reading.next().await else {
                    break;
                };
                let used = reply.as_ref().map_or(0, |f| f.records.len());
                unreserved = (unreserved + share).saturating_sub(used);
                // Followers have no record budget: no need to count.
                let used_records = match (replica, &reply) {
                    (None, Ok(f)) => count_records(&f.records),
                    _ => 0,
                };
                records_unreserved =
                    (records_unreserved + share_records).saturating_sub(used_records);
                got_records |= used > 0;
                replies[i] = Some(reply);
            }
            replies
                .into_iter()
                .map(|r| r.expect("every partition read"))
                .collect()
        })
    }
    /// No replies: `fetch_many` answers NOT_LEADER_OR_FOLLOWER for each of
    /// the owner's partitions.
    fn unreachable(_: MeshError) -> Self::Reply {
        Vec::new()
    }
}

async fn read_one(
    broker: &Rc<Broker>,
    topic: &str,
    partition: i32,
    position: &FetchPosition,
    limit: ReadLimit,
    replica: Option<i32>,
) -> Result<Fetched, PartitionError> {
    let p = local(broker, topic, partition)?;
    match replica {
        None => p.read(position.offset, limit).await,
        Some(replica) => {
            crate::replication::serve_follower_fetch(
                broker,
                &p,
                replica,
                position.offset,
                limit,
                position.current_leader_epoch,
            )
            .await
        }
    }
}

/// Answered when one of the partitions' high watermark (a follower: its
/// flushed end) passes its offset, or the wait ends.
struct WaitForAny {
    parts: Vec<(String, i32, i64)>,
    wait_ms: u64,
    replica: bool,
}

impl ShardCall<Broker> for WaitForAny {
    type Reply = ();
    fn serve(self, broker: Rc<Broker>) -> LocalBoxFuture<'static, ()> {
        Box::pin(async move {
            let wait = Duration::from_millis(self.wait_ms);
            let waits: Vec<_> = self
                .parts
                .iter()
                .filter_map(|(topic, partition, offset)| {
                    let p = broker.partition(topic, *partition)?;
                    Some(Box::pin(async move {
                        p.wait_for_data(*offset, wait, self.replica).await
                    }))
                })
                .take(limits::FETCH_WAITS_PER_CALL_MAX)
                .collect();
            if waits.is_empty() {
                return;
            }
            futures::future::select_all(waits).await;
        })
    }
    /// The fetch reads again and reports what it finds.
    fn unreachable(_: MeshError) {}
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
    Broker {
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
                    configs,
                    validate_only,
                } => CatalogOwner::set_broker_configs(&broker, configs, validate_only).await,
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
