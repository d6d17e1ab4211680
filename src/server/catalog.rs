//! Changes to the topic catalog, made only on shard 0: create and delete
//! topics, allocate producer ids. A change is persisted before it is
//! broadcast, and answered only after every shard applied it, so a client
//! that saw CreateTopics succeed can produce to any partition at once.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use glommio::sync::Semaphore;

use super::broker::Broker;
use super::routing::ApplyCatalog;
use crate::cluster::node::SubmitError;
use crate::cluster::records::{self, CatalogDelta, MetadataRecord};
use crate::config::validate_topic_config;
use crate::io::DmaDisk;
use crate::limits;
use crate::metadata::{validate_topic_name, Catalog, ReplicaSet, TopicMeta, PRODUCER_ID_BLOCK};
use crate::partition::replica::IsrChange;
use crate::shard::ShardId;

mod acls;
mod changes;

pub use acls::{CreateAcls, DeleteAcls};

/// Why a catalog change is refused. Each variant is one Kafka error code
/// (`server::errors`); the text is the message the client gets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("Topic '{0}' already exists.")]
    TopicAlreadyExists(String),
    #[error("{0}")]
    InvalidTopic(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("Topic '{0}' does not exist.")]
    UnknownTopic(String),
    #[error("{0}")]
    Storage(String),
    /// Shard 0, the catalog's writer, could not be reached (it is stopping).
    #[error("{0}")]
    Unavailable(String),
}

/// What a CreateTopics entry asks for, after defaults are applied.
#[derive(Clone, Debug)]
pub struct NewTopic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

/// Only on shard 0.
pub struct CatalogOwner {
    catalog: RefCell<Catalog>,
    /// One change at a time: persist and broadcast await.
    changing: Semaphore,
    next_producer_id: Cell<i64>,
    /// In a cluster, the producer id block this broker reserved: [next, end).
    cluster_block: Cell<(i64, i64)>,
    /// One producer id reservation at a time in a cluster. Not `changing`:
    /// a reservation waits until the committed image reaches the local
    /// catalog, and applying that image takes `changing`.
    reserving: Semaphore,
    /// Whether a controller quorum runs the metadata (changes are proposed).
    cluster: bool,
}

impl CatalogOwner {
    pub fn new(catalog: &Catalog, cluster: bool) -> CatalogOwner {
        CatalogOwner {
            catalog: RefCell::new(catalog.clone()),
            changing: Semaphore::new(1),
            // Ids of the block in use when the broker stopped may have been
            // handed out: start after it.
            next_producer_id: Cell::new(catalog.producer_id_block_end),
            cluster_block: Cell::new((0, 0)),
            reserving: Semaphore::new(1),
            cluster,
        }
    }

    /// Checks a new topic without creating it (also CreateTopics' validate_only).
    pub fn validate(&self, topic: &NewTopic) -> Result<(), CatalogError> {
        validate_topic_name(&topic.name).map_err(|e| CatalogError::InvalidTopic(e.to_string()))?;
        if self.catalog.borrow().topics.contains_key(&topic.name) {
            return Err(CatalogError::TopicAlreadyExists(topic.name.clone()));
        }
        if topic.partitions < 1 || topic.partitions > limits::TOPIC_PARTITIONS_MAX {
            return Err(CatalogError::InvalidPartitions(format!(
                "Number of partitions must be in [1, {}], got {}.",
                limits::TOPIC_PARTITIONS_MAX,
                topic.partitions
            )));
        }
        self.check_replication_factor(topic.replication_factor)?;
        if self.catalog.borrow().topics.len() >= limits::TOPICS_MAX {
            return Err(CatalogError::InvalidConfig(format!(
                "at most {} topics",
                limits::TOPICS_MAX
            )));
        }
        for (key, value) in &topic.configs {
            validate_topic_config(key, value).map_err(|e| {
                CatalogError::InvalidConfig(format!("Invalid config {key}={value}: {e}"))
            })?;
        }
        Ok(())
    }

    /// Brokers that may take new replicas: the unfenced registered ones in
    /// a cluster (sorted), none on a single node.
    fn live_brokers(&self) -> Vec<i32> {
        let catalog = self.catalog.borrow();
        catalog
            .brokers
            .iter()
            .filter(|(_, b)| !b.fenced)
            .map(|(id, _)| *id)
            .collect()
    }

    fn check_replication_factor(&self, factor: i16) -> Result<(), CatalogError> {
        let live = if self.cluster {
            self.live_brokers().len()
        } else {
            1
        };
        if factor < 1 || factor as usize > live {
            return Err(CatalogError::InvalidReplicationFactor(format!(
                "Replication factor: {factor} larger than available brokers: {live}."
            )));
        }
        Ok(())
    }

    /// Replica sets for partitions [first, first + count) of a topic in a
    /// cluster, spread over the live brokers; none on a single node.
    fn place(&self, first: usize, count: usize, factor: usize, salt: usize) -> Vec<ReplicaSet> {
        if !self.cluster {
            return Vec::new();
        }
        let brokers = self.live_brokers();
        records::place_replicas(&brokers, first, count, factor, salt % brokers.len().max(1))
    }

    pub async fn create_topic(
        broker: &Rc<Broker>,
        topic: NewTopic,
    ) -> Result<TopicMeta, CatalogError> {
        let owner = broker
            .owner
            .as_ref()
            .expect("catalog changes run on shard 0");
        let shards = broker.mesh().shard_count();
        Self::change(broker, false, |catalog| {
            owner.validate(&topic)?;
            let salt = catalog.topics.len();
            let meta =
                catalog.add_topic(&topic.name, topic.partitions, topic.configs.clone(), shards);
            meta.replicas = owner.place(
                0,
                topic.partitions as usize,
                topic.replication_factor as usize,
                salt,
            );
            Ok(meta.clone())
        })
        .await
    }

    /// Removes a topic. On a full disk the catalog rewrite may use the
    /// data directory's reserve (`log::reserve`): a delete is how an
    /// operator frees space, so it must not need free space itself.
    pub async fn delete_topic(broker: &Rc<Broker>, name: &str) -> Result<TopicMeta, CatalogError> {
        let deleted = Self::change_with(broker, false, Persist::MayUseReserve, |catalog| {
            catalog
                .remove_topic(name)
                .ok_or_else(|| CatalogError::UnknownTopic(name.to_string()))
        })
        .await;
        if let Err(CatalogError::Storage(reason)) = &deleted {
            log::warn!("DeleteTopics {name} refused: {reason}");
        }
        deleted
    }

    /// Replaces a topic's config overrides (already validated by the caller).
    pub async fn set_topic_configs(
        broker: &Rc<Broker>,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), CatalogError> {
        Self::change(broker, validate_only, |catalog| {
            let topic = catalog
                .topics
                .get_mut(name)
                .ok_or_else(|| CatalogError::UnknownTopic(name.to_string()))?;
            topic.configs = configs;
            catalog.version += 1;
            Ok(())
        })
        .await
    }

    /// Replaces the dynamic broker configs (already validated by the
    /// caller): the cluster-wide ones (`node` None) or one broker's.
    pub async fn set_broker_configs(
        broker: &Rc<Broker>,
        node: Option<i32>,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), CatalogError> {
        Self::change(broker, validate_only, |catalog| {
            match node {
                None => catalog.broker_configs = configs,
                Some(id) if configs.is_empty() => {
                    catalog.per_broker_configs.remove(&id);
                }
                Some(id) => {
                    catalog.per_broker_configs.insert(id, configs);
                }
            }
            catalog.version += 1;
            Ok(())
        })
        .await
    }

    /// Changes SCRAM credentials (AlterUserScramCredentials): `apply` edits
    /// a copy of them and says what it did; the change is then persisted
    /// (a single node) or committed through the quorum (a cluster), as
    /// every catalog change.
    pub async fn change_scram_credentials<T>(
        broker: &Rc<Broker>,
        apply: impl FnOnce(&mut crate::metadata::ScramCredentials) -> T,
    ) -> Result<T, CatalogError> {
        Self::change(broker, false, |catalog| {
            let result = apply(&mut catalog.scram_credentials);
            catalog.version += 1;
            Ok(result)
        })
        .await
    }

    /// Grows a topic to `count` partitions; Kafka never shrinks one.
    pub async fn create_partitions(
        broker: &Rc<Broker>,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), CatalogError> {
        let shards = broker.mesh().shard_count();
        let owner = broker
            .owner
            .as_ref()
            .expect("catalog changes run on shard 0");
        Self::change(broker, validate_only, |catalog| {
            let current = catalog
                .topics
                .get(name)
                .ok_or_else(|| CatalogError::UnknownTopic(name.to_string()))?
                .partition_count();
            if count == current {
                return Err(CatalogError::InvalidPartitions(format!(
                    "Topic already has {current} partitions."
                )));
            }
            if count < current {
                return Err(CatalogError::InvalidPartitions(format!(
                    "Topic currently has {current} partitions, which is higher than the requested {count}."
                )));
            }
            if count > limits::TOPIC_PARTITIONS_MAX {
                return Err(CatalogError::InvalidPartitions(format!(
                    "Number of partitions must be at most {}.",
                    limits::TOPIC_PARTITIONS_MAX
                )));
            }
            catalog.add_partitions(name, count, shards);
            let topic = catalog.topics.get_mut(name).expect("checked above");
            if !topic.replicas.is_empty() {
                let factor = topic.replication_factor() as usize;
                let added = owner.place(current as usize, (count - current) as usize, factor, 0);
                topic.replicas.extend(added);
            }
            Ok(())
        })
        .await
    }

    /// One catalog change: applied to a copy, persisted, then made current
    /// and broadcast to every shard. A failed check or a failed write leaves
    /// the catalog as it was. `validate_only` runs the check alone.
    async fn change<T>(
        broker: &Rc<Broker>,
        validate_only: bool,
        apply: impl FnOnce(&mut Catalog) -> Result<T, CatalogError>,
    ) -> Result<T, CatalogError> {
        Self::change_with(broker, validate_only, Persist::Plain, apply).await
    }

    async fn change_with<T>(
        broker: &Rc<Broker>,
        validate_only: bool,
        how: Persist,
        apply: impl FnOnce(&mut Catalog) -> Result<T, CatalogError>,
    ) -> Result<T, CatalogError> {
        let owner = broker
            .owner
            .as_ref()
            .expect("catalog changes run on shard 0");
        let _one_at_a_time = owner
            .changing
            .acquire_permit(1)
            .await
            .expect("semaphore never closes");
        let current = owner.catalog.borrow().clone();
        let mut next = current.clone();
        let result = apply(&mut next)?;
        if validate_only {
            return Ok(result);
        }
        if let Some(node) = broker.cluster() {
            // In a cluster the change is committed through the controller
            // quorum; the local catalog follows the committed image.
            drop(_one_at_a_time);
            let deltas = records::diff(&current, &next);
            if !deltas.is_empty() {
                node.submit(MetadataRecord::Catalog(deltas))
                    .await
                    .map_err(|e| CatalogError::Storage(e.to_string()))?;
            }
            return Ok(result);
        }
        persist_with(broker, next.clone(), how).await?;
        changes::log_changes(&current, &next, None);
        *owner.catalog.borrow_mut() = next.clone();
        broadcast(broker, next).await?;
        Ok(result)
    }

    /// Makes the local catalog match a committed metadata image: topics,
    /// replica sets, brokers and configs from the image, shard placement
    /// kept for known partitions and chosen for new ones.
    pub async fn sync_image(broker: &Rc<Broker>, image: &Catalog) -> Result<(), CatalogError> {
        let shards = broker.mesh().shard_count();
        Self::change_local(broker, |catalog| {
            let mut next = image.clone();
            next.cluster_id = catalog.cluster_id.clone();
            next.version = catalog.version + 1;
            for topic in next.topics.values_mut() {
                let known = catalog
                    .topics
                    .get(&topic.name)
                    .filter(|t| t.id == topic.id)
                    .map(|t| t.shards.clone())
                    .unwrap_or_default();
                topic.shards = known;
            }
            next.place_unplaced(shards);
            *catalog = next;
            Ok(())
        })
        .await
    }

    /// A leader's ISR change (Kafka's AlterPartition), committed through
    /// the controller only if the partition did not change meanwhile.
    pub async fn alter_isr(
        broker: &Rc<Broker>,
        topic: &str,
        partition: i32,
        change: IsrChange,
    ) -> Result<(), CatalogError> {
        let node = broker
            .cluster()
            .ok_or_else(|| CatalogError::Storage("ISR changes need a cluster".into()))?;
        let catalog = broker.catalog();
        let meta = catalog
            .topics
            .get(topic)
            .ok_or_else(|| CatalogError::UnknownTopic(topic.to_string()))?;
        let set = usize::try_from(partition)
            .ok()
            .and_then(|p| meta.replicas.get(p))
            .ok_or_else(|| CatalogError::UnknownTopic(topic.to_string()))?;
        let me = broker.config.broker.node_id;
        if set.leader != me
            || set.leader_epoch != change.leader_epoch
            || set.partition_epoch != change.partition_epoch
        {
            return Err(CatalogError::Storage(format!(
                "{topic}-{partition} changed before its ISR change was sent"
            )));
        }
        assert!(
            change.isr.contains(&me),
            "a leader never drops itself from the ISR"
        );
        let record = MetadataRecord::Partitions(vec![records::PartitionChange {
            topic: topic.to_string(),
            topic_id: meta.id,
            partition: partition as usize,
            set: ReplicaSet {
                isr: change.isr,
                ..set.clone()
            },
            expect_partition_epoch: Some(change.partition_epoch),
            proposer: Some(records::Proposer {
                broker: me,
                incarnation: node.incarnation,
            }),
        }]);
        node.submit(record)
            .await
            .map_err(|e| CatalogError::Storage(e.to_string()))
    }

    /// A producer id never handed out before, even across restarts.
    pub async fn allocate_producer_id(broker: &Rc<Broker>) -> Result<i64, CatalogError> {
        let owner = broker
            .owner
            .as_ref()
            .expect("producer ids come from shard 0");
        if broker.cluster().is_some() {
            return Self::allocate_producer_id_in_cluster(broker, owner).await;
        }
        let _one_at_a_time = owner
            .changing
            .acquire_permit(1)
            .await
            .expect("semaphore never closes");
        let id = owner.next_producer_id.get();
        if id >= owner.catalog.borrow().producer_id_block_end {
            let snapshot = {
                let mut catalog = owner.catalog.borrow_mut();
                catalog.producer_id_block_end = id + PRODUCER_ID_BLOCK;
                catalog.version += 1;
                catalog.clone()
            };
            persist(broker, snapshot).await?;
        }
        owner.next_producer_id.set(id + 1);
        Ok(id)
    }
}

impl CatalogOwner {
    /// A change of this node's own catalog (no quorum involved).
    async fn change_local(
        broker: &Rc<Broker>,
        apply: impl FnOnce(&mut Catalog) -> Result<(), CatalogError>,
    ) -> Result<(), CatalogError> {
        let owner = broker
            .owner
            .as_ref()
            .expect("catalog changes run on shard 0");
        let _one_at_a_time = owner
            .changing
            .acquire_permit(1)
            .await
            .expect("semaphore never closes");
        let current = owner.catalog.borrow().clone();
        let mut next = current.clone();
        apply(&mut next)?;
        persist(broker, next.clone()).await?;
        let node = broker
            .cluster_mode()
            .then_some(broker.config.broker.node_id);
        changes::log_changes(&current, &next, node);
        *owner.catalog.borrow_mut() = next.clone();
        broadcast(broker, next).await
    }

    /// Producer ids in a cluster: each broker reserves blocks through the
    /// quorum (Kafka's AllocateProducerIds) and hands them out locally.
    async fn allocate_producer_id_in_cluster(
        broker: &Rc<Broker>,
        owner: &CatalogOwner,
    ) -> Result<i64, CatalogError> {
        // Not `changing`: `submit` returns once this node's catalog shows
        // the committed block, and following the image into the catalog
        // (`sync_image`) takes `changing`. Holding it here deadlocked every
        // reservation until `submit` gave up (15 s, KAFKA_STORAGE_ERROR),
        // so idempotent producers never got an id in a cluster.
        let _one_at_a_time = owner
            .reserving
            .acquire_permit(1)
            .await
            .expect("semaphore never closes");
        let (next, end) = owner.cluster_block.get();
        if next < end {
            owner.cluster_block.set((next + 1, end));
            return Ok(next);
        }
        let node = broker.cluster().expect("checked by the caller");
        // Another broker may take the block we aim at: aim again, bounded.
        for _ in 0..16 {
            let from = owner.catalog.borrow().producer_id_block_end;
            let to = from + PRODUCER_ID_BLOCK;
            let record = MetadataRecord::Catalog(vec![CatalogDelta::ProducerIdBlock { from, to }]);
            match node.submit(record).await {
                Ok(()) => {
                    log::info!("reserved producer ids [{from}, {to}) through the quorum");
                    owner.cluster_block.set((from + 1, to));
                    return Ok(from);
                }
                Err(SubmitError::Rejected(_)) => {
                    // The block that won is committed but may not have
                    // reached this node's catalog yet: wait (bounded) for
                    // it, so the next aim is not the same taken block.
                    for _ in 0..100 {
                        if owner.catalog.borrow().producer_id_block_end != from {
                            break;
                        }
                        glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
                    }
                }
                Err(e) => return Err(CatalogError::Storage(e.to_string())),
            }
        }
        Err(CatalogError::Storage(
            "could not reserve producer ids: too many brokers competing".into(),
        ))
    }
}

/// Whether a catalog write may take the disk reserve when the disk is full.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Persist {
    Plain,
    /// Changes that free space (DeleteTopics): the reserve is released to
    /// make room for the catalog file, then recreated once space returns.
    MayUseReserve,
}

async fn persist(broker: &Rc<Broker>, catalog: Catalog) -> Result<(), CatalogError> {
    persist_with(broker, catalog, Persist::Plain).await
}

async fn persist_with(
    broker: &Rc<Broker>,
    catalog: Catalog,
    how: Persist,
) -> Result<(), CatalogError> {
    let dir = &broker.config.data_dir;
    let written = match how {
        Persist::Plain => catalog.persist_on(&DmaDisk, dir).await,
        Persist::MayUseReserve => {
            crate::log::reserve::with_reserve(&DmaDisk, dir, "the topic catalog", || {
                catalog.persist_on(&DmaDisk, dir)
            })
            .await
        }
    };
    written.map_err(|e| CatalogError::Storage(format!("cannot persist the topic catalog: {e}")))
}

/// Has every shard apply a persisted catalog.
async fn broadcast(broker: &Rc<Broker>, catalog: Catalog) -> Result<(), CatalogError> {
    let shards = broker.mesh().shard_count();
    let applies = (0..shards).map(|shard| {
        let catalog = catalog.clone();
        broker.call(ShardId(shard), ApplyCatalog(Box::new(catalog)))
    });
    for result in futures::future::join_all(applies).await {
        result?;
    }
    Ok(())
}
