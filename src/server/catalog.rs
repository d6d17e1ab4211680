//! Changes to the topic catalog, made only on shard 0: create and delete
//! topics, allocate producer ids. A change is persisted before it is
//! broadcast, and answered only after every shard applied it, so a client
//! that saw CreateTopics succeed can produce to any partition at once.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use glommio::sync::Semaphore;

use super::broker::Broker;
use super::routing::{ShardReply, ShardRequest};
use crate::config::validate_topic_config;
use crate::limits;
use crate::metadata::{validate_topic_name, Catalog, TopicMeta, PRODUCER_ID_BLOCK};
use crate::shard::ShardId;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogError {
    TopicAlreadyExists(String),
    InvalidTopic(String),
    InvalidPartitions(String),
    InvalidReplicationFactor(String),
    InvalidConfig(String),
    UnknownTopic(String),
    Storage(String),
}

impl std::fmt::Display for CatalogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CatalogError::TopicAlreadyExists(name) => write!(f, "Topic '{name}' already exists."),
            CatalogError::UnknownTopic(name) => write!(f, "Topic '{name}' does not exist."),
            CatalogError::InvalidTopic(m)
            | CatalogError::InvalidPartitions(m)
            | CatalogError::InvalidReplicationFactor(m)
            | CatalogError::InvalidConfig(m)
            | CatalogError::Storage(m) => f.write_str(m),
        }
    }
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
}

impl CatalogOwner {
    pub fn new(catalog: &Catalog) -> CatalogOwner {
        CatalogOwner {
            catalog: RefCell::new(catalog.clone()),
            changing: Semaphore::new(1),
            // Ids of the block in use when the broker stopped may have been
            // handed out: start after it.
            next_producer_id: Cell::new(catalog.producer_id_block_end),
        }
    }

    /// Checks a new topic without creating it (also CreateTopics' validate_only).
    pub fn validate(&self, topic: &NewTopic) -> Result<(), CatalogError> {
        validate_topic_name(&topic.name).map_err(CatalogError::InvalidTopic)?;
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
        if topic.replication_factor != 1 {
            return Err(CatalogError::InvalidReplicationFactor(format!(
                "Replication factor: {} larger than available brokers: 1.",
                topic.replication_factor
            )));
        }
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
            Ok(catalog
                .add_topic(&topic.name, topic.partitions, topic.configs.clone(), shards)
                .clone())
        })
        .await
    }

    pub async fn delete_topic(broker: &Rc<Broker>, name: &str) -> Result<TopicMeta, CatalogError> {
        Self::change(broker, false, |catalog| {
            catalog
                .remove_topic(name)
                .ok_or_else(|| CatalogError::UnknownTopic(name.to_string()))
        })
        .await
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

    /// Replaces the dynamic broker configs (already validated by the caller).
    pub async fn set_broker_configs(
        broker: &Rc<Broker>,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), CatalogError> {
        Self::change(broker, validate_only, |catalog| {
            catalog.broker_configs = configs;
            catalog.version += 1;
            Ok(())
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
        let owner = broker
            .owner
            .as_ref()
            .expect("catalog changes run on shard 0");
        let _one_at_a_time = owner
            .changing
            .acquire_permit(1)
            .await
            .expect("semaphore never closes");
        let mut next = owner.catalog.borrow().clone();
        let result = apply(&mut next)?;
        if validate_only {
            return Ok(result);
        }
        persist(broker, next.clone()).await?;
        *owner.catalog.borrow_mut() = next.clone();
        broadcast(broker, next).await?;
        Ok(result)
    }

    /// A producer id never handed out before, even across restarts.
    pub async fn allocate_producer_id(broker: &Rc<Broker>) -> Result<i64, CatalogError> {
        let owner = broker
            .owner
            .as_ref()
            .expect("producer ids come from shard 0");
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

async fn persist(broker: &Rc<Broker>, catalog: Catalog) -> Result<(), CatalogError> {
    let dir = broker.config.data_dir.clone();
    glommio::executor()
        .spawn_blocking(move || catalog.persist(&dir))
        .await
        .map_err(|e| CatalogError::Storage(format!("cannot persist the topic catalog: {e}")))
}

/// Has every shard apply a persisted catalog.
async fn broadcast(broker: &Rc<Broker>, catalog: Catalog) -> Result<(), CatalogError> {
    let shards = broker.mesh().shard_count();
    let applies = (0..shards).map(|shard| {
        let catalog = catalog.clone();
        async move {
            match broker
                .route(
                    ShardId(shard),
                    ShardRequest::ApplyCatalog(Box::new(catalog)),
                )
                .await
            {
                ShardReply::Applied(Ok(())) => Ok(()),
                ShardReply::Applied(Err(e)) => Err(CatalogError::Storage(e)),
                other => Err(CatalogError::Storage(format!("shard {shard}: {other:?}"))),
            }
        }
    });
    for result in futures::future::join_all(applies).await {
        result?;
    }
    Ok(())
}
