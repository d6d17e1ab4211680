//! The records of the replicated metadata log and how they change the
//! metadata image (a [`Catalog`] with brokers and replica sets).
//!
//! Applying a record is deterministic: every controller applies the same
//! committed records in the same order and reaches the same image. Node-local
//! facts (which shard owns a partition) are not part of the image: each node
//! places the partitions it holds when it syncs its own catalog.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::metadata::{BrokerRecord, Catalog, ReplicaSet, TopicMeta};

/// One change of the metadata image, as committed in the Raft log.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum MetadataRecord {
    /// A catalog change made by an admin request: applied whole or not at all.
    Catalog(Vec<CatalogDelta>),
    /// A broker (re)registered: a new process or a new endpoint.
    RegisterBroker { id: i32, broker: BrokerRecord },
    /// A broker stopped heartbeating (or shut down): it leads nothing.
    FenceBroker { id: i32 },
    /// A fenced broker heartbeats again.
    UnfenceBroker { id: i32 },
    /// Leader, ISR or epoch changes of partitions (elections, ISR moves).
    Partitions(Vec<PartitionChange>),
}

/// One part of an admin change, with the precondition that keeps two
/// racing proposals from overwriting each other.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum CatalogDelta {
    /// Creates the topic (`expect` = None) or replaces the topic that still
    /// has id `expect`.
    UpsertTopic {
        topic: TopicMeta,
        expect: Option<Uuid>,
    },
    RemoveTopic {
        name: String,
        id: Uuid,
    },
    BrokerConfigs(BTreeMap<String, String>),
    /// Reserves producer ids [from, to) for the proposing broker.
    ProducerIdBlock {
        from: i64,
        to: i64,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionChange {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: usize,
    pub set: ReplicaSet,
    /// Kafka's AlterPartition check: applied only while the set's partition
    /// epoch is still this one (None: the controller's own elections).
    #[serde(default)]
    pub expect_partition_epoch: Option<i32>,
}

/// Why a record did not change the image.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Rejected {
    /// Another change got there first: recompute and propose again.
    Conflict(String),
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejected::Conflict(m) => write!(f, "conflicting metadata change: {m}"),
        }
    }
}

/// Applies one committed record at log index `index`.
pub fn apply(image: &mut Catalog, record: &MetadataRecord, index: u64) -> Result<(), Rejected> {
    let result = match record {
        MetadataRecord::Catalog(deltas) => apply_deltas(image, deltas),
        MetadataRecord::RegisterBroker { id, broker } => {
            image.brokers.insert(*id, broker.clone());
            Ok(())
        }
        MetadataRecord::FenceBroker { id } => {
            if let Some(b) = image.brokers.get_mut(id) {
                b.fenced = true;
            }
            Ok(())
        }
        MetadataRecord::UnfenceBroker { id } => {
            if let Some(b) = image.brokers.get_mut(id) {
                b.fenced = false;
            }
            Ok(())
        }
        MetadataRecord::Partitions(changes) => apply_partition_changes(image, changes),
    };
    // Every committed entry moves the version, so nodes compare images by it.
    image.version = index;
    result
}

/// Leader/ISR changes, all or nothing: a change whose expected partition
/// epoch is stale rejects the whole record.
fn apply_partition_changes(
    image: &mut Catalog,
    changes: &[PartitionChange],
) -> Result<(), Rejected> {
    for change in changes {
        let current = image
            .topics
            .get(&change.topic)
            .filter(|t| t.id == change.topic_id)
            .and_then(|t| t.replicas.get(change.partition));
        if let (Some(expect), Some(set)) = (change.expect_partition_epoch, current) {
            if set.partition_epoch != expect {
                return Err(Rejected::Conflict(format!(
                    "{}-{} is at partition epoch {}, not {expect}",
                    change.topic, change.partition, set.partition_epoch
                )));
            }
        }
    }
    for change in changes {
        let Some(topic) = image.topics.get_mut(&change.topic) else {
            continue;
        };
        if topic.id != change.topic_id {
            continue;
        }
        if let Some(set) = topic.replicas.get_mut(change.partition) {
            assert!(
                change.set.leader == -1 || change.set.isr.contains(&change.set.leader),
                "a leader is always in the ISR"
            );
            assert!(
                change.set.leader_epoch >= set.leader_epoch,
                "leader epochs never go back"
            );
            let partition_epoch = set.partition_epoch + 1;
            *set = ReplicaSet {
                partition_epoch,
                ..change.set.clone()
            };
        }
    }
    Ok(())
}

fn apply_deltas(image: &mut Catalog, deltas: &[CatalogDelta]) -> Result<(), Rejected> {
    for delta in deltas {
        match delta {
            CatalogDelta::UpsertTopic { topic, expect } => {
                let current = image.topics.get(&topic.name).map(|t| t.id);
                if current != *expect {
                    return Err(Rejected::Conflict(format!(
                        "topic {} changed meanwhile",
                        topic.name
                    )));
                }
                if expect.is_none() && image.topics.values().any(|t| t.id == topic.id) {
                    return Err(Rejected::Conflict("topic id in use".into()));
                }
            }
            CatalogDelta::RemoveTopic { name, id } => {
                if image.topics.get(name).map(|t| t.id) != Some(*id) {
                    return Err(Rejected::Conflict(format!(
                        "topic {name} changed meanwhile"
                    )));
                }
            }
            CatalogDelta::ProducerIdBlock { from, .. } => {
                if image.producer_id_block_end != *from {
                    return Err(Rejected::Conflict("producer id block taken".into()));
                }
            }
            CatalogDelta::BrokerConfigs(_) => {}
        }
    }
    for delta in deltas {
        match delta {
            CatalogDelta::UpsertTopic { topic, .. } => {
                // Leaders and ISRs of existing partitions belong to the
                // Partitions records: an admin change computed on an older
                // copy must not take them back. New partitions bring theirs.
                let mut topic = topic.clone();
                if let Some(current) = image.topics.get(&topic.name) {
                    for (set, now) in topic.replicas.iter_mut().zip(&current.replicas) {
                        *set = now.clone();
                    }
                }
                image.topics.insert(topic.name.clone(), topic);
            }
            CatalogDelta::RemoveTopic { name, .. } => {
                image.topics.remove(name);
            }
            CatalogDelta::BrokerConfigs(configs) => image.broker_configs = configs.clone(),
            CatalogDelta::ProducerIdBlock { to, .. } => image.producer_id_block_end = *to,
        }
    }
    Ok(())
}

/// The deltas that turn `old` into `new` (an admin change computed on a copy).
pub fn diff(old: &Catalog, new: &Catalog) -> Vec<CatalogDelta> {
    let mut deltas = Vec::new();
    for (name, topic) in &new.topics {
        let before = old.topics.get(name);
        if before != Some(topic) {
            deltas.push(CatalogDelta::UpsertTopic {
                topic: topic.clone(),
                expect: before.map(|t| t.id),
            });
        }
    }
    for (name, topic) in &old.topics {
        if !new.topics.contains_key(name) {
            deltas.push(CatalogDelta::RemoveTopic {
                name: name.clone(),
                id: topic.id,
            });
        }
    }
    if new.broker_configs != old.broker_configs {
        deltas.push(CatalogDelta::BrokerConfigs(new.broker_configs.clone()));
    }
    if new.producer_id_block_end != old.producer_id_block_end {
        deltas.push(CatalogDelta::ProducerIdBlock {
            from: old.producer_id_block_end,
            to: new.producer_id_block_end,
        });
    }
    deltas
}

/// Spreads `partitions` x `replication_factor` replicas over `brokers`
/// (sorted ids of live brokers) as Kafka does without racks: partition p
/// starts at broker (start + p) and takes the next ones, so leaders (the
/// first replica) are balanced.
pub fn place_replicas(
    brokers: &[i32],
    first_partition: usize,
    partitions: usize,
    replication_factor: usize,
    start: usize,
) -> Vec<ReplicaSet> {
    assert!(replication_factor >= 1 && replication_factor <= brokers.len());
    (first_partition..first_partition + partitions)
        .map(|p| {
            let replicas: Vec<i32> = (0..replication_factor)
                .map(|r| brokers[(start + p + r) % brokers.len()])
                .collect();
            ReplicaSet {
                leader: replicas[0],
                isr: replicas.clone(),
                replicas,
                leader_epoch: 0,
                partition_epoch: 0,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, partitions: usize) -> TopicMeta {
        TopicMeta {
            name: name.into(),
            id: Uuid::new_v4(),
            shards: vec![0; partitions],
            configs: BTreeMap::new(),
            replicas: place_replicas(&[1, 2, 3], 0, partitions, 3, 0),
        }
    }

    #[test]
    fn diff_then_apply_reproduces_the_change_and_conflicts_are_all_or_nothing() {
        let old = Catalog::new("test");
        let mut new = old.clone();
        new.topics.insert("a".into(), topic("a", 3));
        new.producer_id_block_end = 1000;
        let deltas = diff(&old, &new);
        let mut image = old.clone();
        apply(&mut image, &MetadataRecord::Catalog(deltas.clone()), 7).unwrap();
        assert_eq!(image.topics, new.topics);
        assert_eq!(image.version, 7);
        // The same creation again conflicts and changes nothing.
        let before = image.clone();
        let err = apply(&mut image, &MetadataRecord::Catalog(deltas), 8).unwrap_err();
        assert!(matches!(err, Rejected::Conflict(_)));
        assert_eq!(image.topics, before.topics);
        assert_eq!(image.producer_id_block_end, 1000);
    }

    #[test]
    fn replicas_spread_and_leaders_balance() {
        let sets = place_replicas(&[1, 2, 3], 0, 3, 3, 0);
        let leaders: Vec<i32> = sets.iter().map(|s| s.leader).collect();
        assert_eq!(leaders, vec![1, 2, 3]);
        for s in &sets {
            let mut r = s.replicas.clone();
            r.sort();
            assert_eq!(r, vec![1, 2, 3]);
            assert_eq!(s.isr, s.replicas);
        }
    }
}
