//! What shards ask of each other, and how the owner of a partition serves it.
//!
//! Requests name partitions by topic and index; the owner looks them up in
//! its own registry. A partition that is not (or no longer) here answers
//! `PartitionError::Gone`, which clients see as UNKNOWN_TOPIC_OR_PARTITION and
//! retry after refreshing metadata.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

use super::broker::Broker;
use super::catalog::{CatalogError, CatalogOwner, NewTopic};
use crate::metadata::{Catalog, TopicMeta};
use crate::partition::{Appended, Fetched, PartitionError};
use crate::shard::ShardId;

#[derive(Debug)]
pub enum ShardRequest {
    /// Append one batch; answered when durable (acks 1/all) or appended (acks 0).
    Produce {
        topic: String,
        partition: i32,
        records: Bytes,
        acks: i16,
        /// How long acks=all may wait for the in-sync replicas.
        timeout_ms: u64,
    },
    Read {
        topic: String,
        partition: i32,
        offset: i64,
        max_bytes: usize,
        /// A follower's fetch: its broker id and the leader epoch it follows.
        replica: Option<(i32, i32)>,
    },
    /// Answered when the partition's high watermark (a follower: its
    /// flushed end) passes `offset` or the wait ends.
    WaitForData {
        topic: String,
        partition: i32,
        offset: i64,
        wait_ms: u64,
        replica: bool,
    },
    /// OffsetForLeaderEpoch on the leader.
    EpochEndOffset {
        topic: String,
        partition: i32,
        current_leader_epoch: i32,
        leader_epoch: i32,
    },
    /// To shard 0: have the controller commit a leader's ISR change.
    AlterIsr {
        topic: String,
        partition: i32,
        change: crate::partition::replica::IsrChange,
    },
    /// To shard 0: preferred-leader election (ElectLeaders); None: every partition.
    ElectPreferred(Option<Vec<(String, i32)>>),
    ListOffset {
        topic: String,
        partition: i32,
        timestamp: i64,
    },
    /// To shard 0 only.
    CreateTopic(NewTopic, bool),
    DeleteTopic(String),
    AllocateProducerId,
    SetTopicConfigs {
        topic: String,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    },
    SetBrokerConfigs {
        configs: BTreeMap<String, String>,
        validate_only: bool,
    },
    CreatePartitions {
        topic: String,
        count: i32,
        validate_only: bool,
    },
    /// From shard 0 to every shard.
    ApplyCatalog(Box<Catalog>),
    /// To a partition's owner: move its log start offset.
    DeleteRecords {
        topic: String,
        partition: i32,
        offset: i64,
    },
    /// To every shard: (topic, partition, bytes) of each partition it owns.
    PartitionSizes,
    /// The controller quorum's state (shard 0; None on a single node).
    QuorumStatus,
    /// To the shard that coordinates a consumer group (or every shard, for ListGroups).
    Group(Box<crate::group::GroupCall>),
}

#[derive(Debug)]
pub enum ShardReply {
    Produced(Result<Appended, PartitionError>),
    Read(Result<Fetched, PartitionError>),
    DataReady,
    Offset(Result<Option<(i64, i64)>, PartitionError>),
    Topic(Result<TopicMeta, CatalogError>),
    Changed(Result<(), CatalogError>),
    PartitionSizes(Vec<(String, i32, u64)>),
    QuorumStatus(Result<Option<crate::cluster::quorum::QuorumStatus>, String>),
    RecordsDeleted(Result<i64, PartitionError>),
    EpochEnd(Result<(i32, i64), PartitionError>),
    Elected(Result<Vec<(String, i32, crate::cluster::quorum::ElectionOutcome)>, String>),
    ProducerId(Result<i64, CatalogError>),
    Applied(Result<(), String>),
    /// A group coordinator's answer, or a Kafka error code for the whole group.
    Group(Result<Box<crate::group::GroupAnswer>, i16>),
    /// The owner shard could not be reached.
    Unavailable(String),
}

/// Serves a request on the shard that owns its target.
pub async fn serve(broker: Rc<Broker>, _from: ShardId, request: ShardRequest) -> ShardReply {
    match request {
        ShardRequest::Produce {
            topic,
            partition,
            records,
            acks,
            timeout_ms,
        } => ShardReply::Produced(
            produce(&broker, &topic, partition, &records, acks, timeout_ms).await,
        ),
        ShardRequest::Read {
            topic,
            partition,
            offset,
            max_bytes,
            replica,
        } => match (broker.partition(&topic, partition), replica) {
            (Some(p), None) => ShardReply::Read(p.read(offset, max_bytes).await),
            (Some(p), Some((replica, epoch))) => ShardReply::Read(
                crate::replication::serve_follower_fetch(
                    &broker, &p, replica, offset, max_bytes, epoch,
                )
                .await,
            ),
            (None, _) => ShardReply::Read(Err(missing(&broker, &topic, partition))),
        },
        ShardRequest::WaitForData {
            topic,
            partition,
            offset,
            wait_ms,
            replica,
        } => {
            if let Some(p) = broker.partition(&topic, partition) {
                p.wait_for_data(offset, Duration::from_millis(wait_ms), replica)
                    .await;
            }
            ShardReply::DataReady
        }
        ShardRequest::EpochEndOffset {
            topic,
            partition,
            current_leader_epoch,
            leader_epoch,
        } => match broker.partition(&topic, partition) {
            Some(p) => {
                ShardReply::EpochEnd(p.end_offset_for_epoch(current_leader_epoch, leader_epoch))
            }
            None => ShardReply::EpochEnd(Err(missing(&broker, &topic, partition))),
        },
        ShardRequest::AlterIsr {
            topic,
            partition,
            change,
        } => ShardReply::Changed(CatalogOwner::alter_isr(&broker, &topic, partition, change).await),
        ShardRequest::ElectPreferred(wanted) => ShardReply::Elected(match broker.cluster() {
            Some(node) => node.elect_preferred(wanted).await,
            // A single node is every partition's only (and preferred) replica.
            None => Ok(single_node_elections(&broker.catalog(), wanted)),
        }),
        ShardRequest::ListOffset {
            topic,
            partition,
            timestamp,
        } => match broker.partition(&topic, partition) {
            Some(p) => ShardReply::Offset(p.offset_for_timestamp(timestamp).await),
            None => ShardReply::Offset(Err(missing(&broker, &topic, partition))),
        },
        ShardRequest::CreateTopic(topic, validate_only) => {
            if validate_only {
                let owner = broker
                    .owner
                    .as_ref()
                    .expect("catalog requests go to shard 0");
                ShardReply::Topic(owner.validate(&topic).map(|_| TopicMeta {
                    name: topic.name.clone(),
                    id: uuid::Uuid::nil(),
                    shards: vec![0; topic.partitions.max(0) as usize],
                    configs: topic.configs.clone(),
                    replicas: Vec::new(),
                }))
            } else {
                ShardReply::Topic(CatalogOwner::create_topic(&broker, topic).await)
            }
        }
        ShardRequest::DeleteTopic(name) => {
            ShardReply::Topic(CatalogOwner::delete_topic(&broker, &name).await)
        }
        ShardRequest::AllocateProducerId => {
            ShardReply::ProducerId(CatalogOwner::allocate_producer_id(&broker).await)
        }
        ShardRequest::SetTopicConfigs {
            topic,
            configs,
            validate_only,
        } => ShardReply::Changed(
            CatalogOwner::set_topic_configs(&broker, &topic, configs, validate_only).await,
        ),
        ShardRequest::SetBrokerConfigs {
            configs,
            validate_only,
        } => ShardReply::Changed(
            CatalogOwner::set_broker_configs(&broker, configs, validate_only).await,
        ),
        ShardRequest::CreatePartitions {
            topic,
            count,
            validate_only,
        } => ShardReply::Changed(
            CatalogOwner::create_partitions(&broker, &topic, count, validate_only).await,
        ),
        ShardRequest::PartitionSizes => ShardReply::PartitionSizes(broker.partition_sizes()),
        ShardRequest::QuorumStatus => ShardReply::QuorumStatus(match broker.cluster() {
            Some(node) => node.status().await.map(Some),
            None => Ok(None),
        }),
        ShardRequest::DeleteRecords {
            topic,
            partition,
            offset,
        } => match broker.partition(&topic, partition) {
            Some(p) => ShardReply::RecordsDeleted(p.delete_records(offset).await),
            None => ShardReply::RecordsDeleted(Err(missing(&broker, &topic, partition))),
        },
        ShardRequest::ApplyCatalog(catalog) => {
            ShardReply::Applied(broker.apply_catalog(Rc::new(*catalog)).await)
        }
        ShardRequest::Group(call) => ShardReply::Group(
            crate::group::GroupCoordinator::serve(&broker, *call)
                .await
                .map(Box::new),
        ),
    }
}

/// ElectLeaders on a single node: nothing to move.
fn single_node_elections(
    catalog: &Catalog,
    wanted: Option<Vec<(String, i32)>>,
) -> Vec<(String, i32, crate::cluster::quorum::ElectionOutcome)> {
    use crate::cluster::quorum::ElectionOutcome;
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
