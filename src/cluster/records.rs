//! The records of the replicated metadata log and how they change the
//! metadata image (a [`Catalog`] with brokers and replica sets).
//!
//! Applying a record is deterministic: every controller applies the same
//! committed records in the same order and reaches the same image. Node-local
//! facts (which shard owns a partition) are not part of the image: each node
//! places the partitions it holds when it syncs its own catalog.
//!
//! Bytes from the log, a snapshot or a peer are never trusted: they become a
//! record or an image only through [`decode_record`] and [`decode_image`],
//! which bound the JSON (serde_json stops nesting at 128 levels; every
//! string, array and map is as large as the bytes that hold it, and the
//! bytes are bounded by `CONTROLLER_FRAME_BYTES_MAX`) and then check every
//! count and every relation the image relies on (partition counts, replica
//! sets, names), so applying a record can refuse it but never panic.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::acl::{AclBinding, InvalidAcl};
use crate::limits;
use crate::metadata::{BrokerRecord, Catalog, ReplicaSet, TopicMeta};
use crate::sasl::{ScramCredential, ScramMechanism};

/// One change of the metadata image, as committed in the Raft log.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum MetadataRecord {
    /// A catalog change made by an admin request: applied whole or not at all.
    Catalog(Vec<CatalogDelta>),
    /// A broker (re)registered: a new process or a new endpoint.
    RegisterBroker { id: i32, broker: BrokerRecord },
    /// A broker stopped heartbeating, or (`controlled_shutdown`) is
    /// stopping: it leads nothing.
    FenceBroker {
        id: i32,
        #[serde(default)]
        controlled_shutdown: bool,
    },
    /// A fenced broker heartbeats again.
    UnfenceBroker { id: i32 },
    /// Leader, ISR or epoch changes of partitions (elections, ISR moves).
    Partitions(Vec<PartitionChange>),
    /// Every registered broker supports this feature level: the cluster
    /// runs at it from here on (`features.rs`). Level 2 and up only: a
    /// binary from before feature levels cannot read this record, so it is
    /// written only once every broker supports level 2.
    FinalizeFeatures { metadata_version: u16 },
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
    /// Replaces one broker's own dynamic configs (empty: none left).
    OneBrokerConfigs {
        broker: i32,
        configs: BTreeMap<String, String>,
    },
    /// Reserves producer ids [from, to) for the proposing broker.
    ProducerIdBlock {
        from: i64,
        to: i64,
    },
    /// Adds ACLs (those already present stay as they are). Written only
    /// at `features::METADATA_VERSION_SECURITY` and up.
    CreateAcls(Vec<AclBinding>),
    /// Removes these ACLs (those already gone are skipped).
    DeleteAcls(Vec<AclBinding>),
    /// Creates or replaces `user`'s credential for its mechanism (feature
    /// level `METADATA_VERSION_SECURITY` and up).
    UpsertScramCredential {
        user: String,
        credential: ScramCredential,
    },
    /// Removes `user`'s credential for `mechanism` (level
    /// `METADATA_VERSION_SECURITY` and up).
    DeleteScramCredential {
        user: String,
        mechanism: ScramMechanism,
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
    /// The broker process that asked for the change (a leader's ISR
    /// change; None: the controller's own elections). Kafka's broker-epoch
    /// check: a change from a process the broker has since restarted
    /// past (a newer registration is in the image) is refused, so an ISR
    /// change the old process sent cannot land after the new one took its
    /// roles from an image that did not have it.
    #[serde(default)]
    pub proposer: Option<Proposer>,
}

/// One process of one broker, as its registration names it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Proposer {
    pub broker: i32,
    pub incarnation: Uuid,
}

/// Why a record did not change the image.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// Another change got there first: recompute and propose again.
    #[error("conflicting metadata change: {0}")]
    Conflict(String),
    /// The record breaks a rule of the image (a leader outside its ISR, an
    /// epoch going back): no controller applies it.
    #[error("invalid metadata change: {0}")]
    Invalid(String),
}

/// Why bytes were not a valid record or image.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("a metadata {what} of {len} bytes")]
    TooLarge { what: &'static str, len: usize },
    #[error("unreadable metadata {what}: {source}")]
    Unreadable {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("invalid metadata {what}: {source}")]
    Invalid {
        what: &'static str,
        source: InvalidMetadata,
    },
}

/// Why a record or an image breaks a rule every image keeps.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMetadata {
    #[error("{0} topics")]
    TooManyTopics(usize),
    #[error("{0} brokers")]
    TooManyBrokers(usize),
    #[error("ACL {acl}: {problem}")]
    Acl { acl: String, problem: InvalidAcl },
    #[error("topic \"{name}\" filed under \"{key}\"")]
    TopicFiledElsewhere { name: String, key: String },
    /// Kafka's rule for topic names, as `metadata::validate_topic_name`
    /// words it.
    #[error("{0}")]
    TopicName(String),
    #[error("topic {topic} has {partitions} partitions")]
    PartitionCount { topic: String, partitions: usize },
    #[error("topic {topic} has {partitions} partitions but {sets} replica sets")]
    ReplicaSetCount {
        topic: String,
        partitions: usize,
        sets: usize,
    },
    #[error("partition {0}")]
    PartitionIndex(usize),
    #[error("{topic}-{partition}: {problem}")]
    ReplicaSet {
        topic: String,
        partition: usize,
        problem: ReplicaSetProblem,
    },
    #[error("producer id block [{from}, {to})")]
    ProducerIdBlock { from: i64, to: i64 },
    #[error("broker id {0}")]
    BrokerId(i32),
    #[error("a host name of {0} bytes")]
    HostName(usize),
    #[error("{0}")]
    ScramCredential(String),
    #[error(
        "the metadata is at {feature} level {level}, and this binary supports levels {min} to \
         {max}: run a binary that supports it",
        feature = crate::features::METADATA_VERSION_FEATURE,
        min = crate::features::METADATA_VERSION_BASELINE,
        max = crate::features::METADATA_VERSION_MAX
    )]
    FeatureLevel { level: u16 },
}

/// What is wrong with one partition's replica set.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplicaSetProblem {
    #[error("{0} replicas")]
    ReplicationFactor(usize),
    #[error("broker id {0}")]
    BrokerId(i32),
    #[error("replica {0} listed twice")]
    ListedTwice(i32),
    #[error("ISR {isr:?} is not within {replicas:?}")]
    IsrOutsideReplicas { isr: Vec<i32>, replicas: Vec<i32> },
    #[error("leader {0} is not in the ISR")]
    LeaderOutsideIsr(i32),
    #[error("a negative epoch")]
    NegativeEpoch,
}

/// A metadata record from a Raft entry's data (or a proposal), checked.
pub fn decode_record(bytes: &[u8]) -> Result<MetadataRecord, DecodeError> {
    decode_checked("record", bytes, validate_record)
}

/// The metadata image held by a snapshot, checked.
pub fn decode_image(bytes: &[u8]) -> Result<Catalog, DecodeError> {
    decode_checked("image", bytes, validate_image)
}

fn decode_checked<T: serde::de::DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
    validate: impl FnOnce(&T) -> Result<(), InvalidMetadata>,
) -> Result<T, DecodeError> {
    if bytes.len() > limits::CONTROLLER_FRAME_BYTES_MAX {
        return Err(DecodeError::TooLarge {
            what,
            len: bytes.len(),
        });
    }
    let value: T =
        serde_json::from_slice(bytes).map_err(|source| DecodeError::Unreadable { what, source })?;
    validate(&value).map_err(|source| DecodeError::Invalid { what, source })?;
    Ok(value)
}

/// Every count and relation an image relies on.
pub fn validate_image(image: &Catalog) -> Result<(), InvalidMetadata> {
    if image.topics.len() > limits::TOPICS_MAX {
        return Err(InvalidMetadata::TooManyTopics(image.topics.len()));
    }
    if image.brokers.len() > limits::CLUSTER_BROKERS_MAX {
        return Err(InvalidMetadata::TooManyBrokers(image.brokers.len()));
    }
    for (name, topic) in &image.topics {
        if *name != topic.name {
            return Err(InvalidMetadata::TopicFiledElsewhere {
                name: topic.name.clone(),
                key: name.clone(),
            });
        }
        validate_topic(topic)?;
    }
    for (id, broker) in &image.brokers {
        validate_broker(*id, broker)?;
    }
    if image.per_broker_configs.len() > limits::CLUSTER_BROKERS_MAX {
        return Err(InvalidMetadata::TooManyBrokers(
            image.per_broker_configs.len(),
        ));
    }
    for id in image.per_broker_configs.keys() {
        validate_broker_id(*id)?;
    }
    validate_acls(&image.acls)?;
    crate::metadata::validate_scram_credentials(&image.scram_credentials)
        .map_err(InvalidMetadata::ScramCredential)?;
    validate_feature_level(image.metadata_version)
}

/// Every count and relation a record relies on (its preconditions against
/// the image are checked when it is applied).
pub fn validate_record(record: &MetadataRecord) -> Result<(), InvalidMetadata> {
    match record {
        MetadataRecord::Catalog(deltas) => {
            for delta in deltas {
                match delta {
                    CatalogDelta::UpsertTopic { topic, .. } => validate_topic(topic)?,
                    CatalogDelta::RemoveTopic { name, .. } => validate_topic_name(name)?,
                    CatalogDelta::BrokerConfigs(_) => {}
                    CatalogDelta::OneBrokerConfigs { broker, .. } => validate_broker_id(*broker)?,
                    CatalogDelta::CreateAcls(acls) | CatalogDelta::DeleteAcls(acls) => {
                        validate_acls(acls)?
                    }
                    CatalogDelta::ProducerIdBlock { from, to } => {
                        if !(0 <= *from && from < to) {
                            return Err(InvalidMetadata::ProducerIdBlock {
                                from: *from,
                                to: *to,
                            });
                        }
                    }
                    CatalogDelta::UpsertScramCredential { user, credential } => {
                        crate::metadata::validate_scram_user(user)
                            .map_err(InvalidMetadata::ScramCredential)?;
                        credential.validate().map_err(|e| {
                            InvalidMetadata::ScramCredential(format!("user {user:?}: {e}"))
                        })?;
                    }
                    CatalogDelta::DeleteScramCredential { user, .. } => {
                        crate::metadata::validate_scram_user(user)
                            .map_err(InvalidMetadata::ScramCredential)?;
                    }
                }
            }
            Ok(())
        }
        MetadataRecord::RegisterBroker { id, broker } => validate_broker(*id, broker),
        MetadataRecord::FenceBroker { id, .. } | MetadataRecord::UnfenceBroker { id } => {
            validate_broker_id(*id).map_err(|_| InvalidMetadata::BrokerId(*id))
        }
        MetadataRecord::FinalizeFeatures { metadata_version } => {
            validate_feature_level(*metadata_version)
        }
        MetadataRecord::Partitions(changes) => {
            for change in changes {
                validate_topic_name(&change.topic)?;
                if change.partition >= limits::TOPIC_PARTITIONS_MAX as usize {
                    return Err(InvalidMetadata::PartitionIndex(change.partition));
                }
                validate_replica_set(&change.set).map_err(|problem| {
                    InvalidMetadata::ReplicaSet {
                        topic: change.topic.clone(),
                        partition: change.partition,
                        problem,
                    }
                })?;
            }
            Ok(())
        }
    }
}

/// At most `acl::ACLS_MAX` ACLs, each one CreateAcls could have made.
fn validate_acls<'a>(
    acls: impl IntoIterator<Item = &'a AclBinding> + Clone,
) -> Result<(), InvalidMetadata> {
    crate::metadata::validate_acls(acls).map_err(|(acl, problem)| InvalidMetadata::Acl {
        acl: acl.to_string(),
        problem,
    })
}

/// Kafka's rule for topic names: brokers make a directory of each name,
/// so a name from the log, a snapshot or a peer that Kafka would refuse
/// (`/`, `..`) is refused here too.
fn validate_topic_name(name: &str) -> Result<(), InvalidMetadata> {
    crate::metadata::validate_topic_name(name)
        .map_err(|e| InvalidMetadata::TopicName(e.to_string()))
}

fn validate_topic(topic: &TopicMeta) -> Result<(), InvalidMetadata> {
    validate_topic_name(&topic.name)?;
    let partitions = topic.shards.len();
    if partitions == 0 || partitions > limits::TOPIC_PARTITIONS_MAX as usize {
        return Err(InvalidMetadata::PartitionCount {
            topic: topic.name.clone(),
            partitions,
        });
    }
    if !topic.replicas.is_empty() && topic.replicas.len() != partitions {
        return Err(InvalidMetadata::ReplicaSetCount {
            topic: topic.name.clone(),
            partitions,
            sets: topic.replicas.len(),
        });
    }
    for (partition, set) in topic.replicas.iter().enumerate() {
        validate_replica_set(set).map_err(|problem| InvalidMetadata::ReplicaSet {
            topic: topic.name.clone(),
            partition,
            problem,
        })?;
    }
    Ok(())
}

fn validate_replica_set(set: &ReplicaSet) -> Result<(), ReplicaSetProblem> {
    let factor = set.replicas.len();
    if factor == 0 || factor > limits::REPLICATION_FACTOR_MAX as usize {
        return Err(ReplicaSetProblem::ReplicationFactor(factor));
    }
    for (i, replica) in set.replicas.iter().enumerate() {
        validate_broker_id(*replica).map_err(|_| ReplicaSetProblem::BrokerId(*replica))?;
        if set.replicas[..i].contains(replica) {
            return Err(ReplicaSetProblem::ListedTwice(*replica));
        }
    }
    if set.isr.len() > factor || set.isr.iter().any(|r| !set.replicas.contains(r)) {
        return Err(ReplicaSetProblem::IsrOutsideReplicas {
            isr: set.isr.clone(),
            replicas: set.replicas.clone(),
        });
    }
    if set.leader != -1 && !set.isr.contains(&set.leader) {
        return Err(ReplicaSetProblem::LeaderOutsideIsr(set.leader));
    }
    if set.leader_epoch < 0 || set.partition_epoch < 0 {
        return Err(ReplicaSetProblem::NegativeEpoch);
    }
    Ok(())
}

/// A broker id is never negative (-1 means "none" in Kafka's messages).
fn validate_broker_id(id: i32) -> Result<(), InvalidMetadata> {
    if id < 0 {
        return Err(InvalidMetadata::BrokerId(id));
    }
    Ok(())
}

fn validate_broker(id: i32, broker: &BrokerRecord) -> Result<(), InvalidMetadata> {
    validate_broker_id(id)?;
    if broker.host.is_empty() || broker.host.len() > limits::HOST_NAME_BYTES_MAX {
        return Err(InvalidMetadata::HostName(broker.host.len()));
    }
    // A broker has a handful of listeners; names and protocols are short.
    if broker.endpoints.len() > 64 {
        return Err(InvalidMetadata::HostName(broker.endpoints.len()));
    }
    for endpoint in &broker.endpoints {
        if endpoint.host.is_empty()
            || endpoint.host.len() > limits::HOST_NAME_BYTES_MAX
            || endpoint.name.len() > limits::HOST_NAME_BYTES_MAX
            || endpoint.protocol.len() > limits::HOST_NAME_BYTES_MAX
        {
            return Err(InvalidMetadata::HostName(endpoint.host.len()));
        }
    }
    // A newer binary may support more levels than this one knows; none
    // supports fewer than the baseline.
    if broker.max_metadata_version < crate::features::METADATA_VERSION_BASELINE {
        return Err(InvalidMetadata::FeatureLevel {
            level: broker.max_metadata_version,
        });
    }
    Ok(())
}

/// A level this binary can run: an image or a record at a higher one was
/// written by a newer binary, whose records this one may not understand.
fn validate_feature_level(level: u16) -> Result<(), InvalidMetadata> {
    use crate::features::{METADATA_VERSION_BASELINE, METADATA_VERSION_MAX};
    if !(METADATA_VERSION_BASELINE..=METADATA_VERSION_MAX).contains(&level) {
        return Err(InvalidMetadata::FeatureLevel { level });
    }
    Ok(())
}

/// Applies one committed record at log index `index`. A record that breaks
/// a rule of the image (see [`validate_record`]) is refused whole.
pub fn apply(image: &mut Catalog, record: &MetadataRecord, index: u64) -> Result<(), Rejected> {
    let result = match validate_record(record) {
        Err(e) => Err(Rejected::Invalid(e.to_string())),
        Ok(()) => apply_valid(image, record, index),
    };
    // Every committed entry moves the version, so nodes compare images by it.
    image.version = index;
    result
}

fn apply_valid(image: &mut Catalog, record: &MetadataRecord, index: u64) -> Result<(), Rejected> {
    match record {
        MetadataRecord::FinalizeFeatures { metadata_version } => {
            let level = *metadata_version;
            if level < image.metadata_version {
                // Kafka refuses a downgrade without --unsafe; corelog has
                // no downgrade: a lower level's binaries cannot read what
                // the log holds since.
                return Err(Rejected::Invalid(format!(
                    "{} cannot go down from {} to {level}",
                    crate::features::METADATA_VERSION_FEATURE,
                    image.metadata_version
                )));
            }
            if level > image.metadata_version {
                image.metadata_version = level;
                image.features_epoch = index;
            }
            Ok(())
        }
        MetadataRecord::Catalog(deltas) => apply_deltas(image, deltas),
        MetadataRecord::RegisterBroker { id, broker } => {
            if !image.brokers.contains_key(id) && image.brokers.len() >= limits::CLUSTER_BROKERS_MAX
            {
                return Err(Rejected::Invalid("too many brokers".into()));
            }
            image.brokers.insert(*id, broker.clone());
            Ok(())
        }
        MetadataRecord::FenceBroker {
            id,
            controlled_shutdown,
        } => {
            if let Some(b) = image.brokers.get_mut(id) {
                b.fenced = true;
                b.in_controlled_shutdown = *controlled_shutdown;
            }
            Ok(())
        }
        MetadataRecord::UnfenceBroker { id } => {
            if let Some(b) = image.brokers.get_mut(id) {
                b.fenced = false;
                b.in_controlled_shutdown = false;
            }
            Ok(())
        }
        MetadataRecord::Partitions(changes) => apply_partition_changes(image, changes),
    }
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
        if let Some(proposer) = change.proposer {
            let registered = image.brokers.get(&proposer.broker).map(|b| b.incarnation);
            if registered != Some(proposer.incarnation) {
                return Err(Rejected::Conflict(format!(
                    "{}-{}: the change comes from an earlier process of broker {}",
                    change.topic, change.partition, proposer.broker
                )));
            }
        }
        if let (Some(expect), Some(set)) = (change.expect_partition_epoch, current) {
            if set.partition_epoch != expect {
                return Err(Rejected::Conflict(format!(
                    "{}-{} is at partition epoch {}, not {expect}",
                    change.topic, change.partition, set.partition_epoch
                )));
            }
        }
        if let (Some(_), Some(set)) = (change.proposer, current) {
            // A leader's expansion may not add a broker that is fenced or
            // in controlled shutdown (Kafka's ineligible replicas, KIP-841):
            // the leader's high watermark would wait for a broker that is
            // going away.
            let joining = change.set.isr.iter().filter(|r| !set.isr.contains(r));
            if let Some(id) = joining
                .copied()
                .find(|id| image.brokers.get(id).is_none_or(|b| b.fenced))
            {
                return Err(Rejected::Invalid(format!(
                    "{}-{}: broker {id} is fenced or shutting down and may not join the ISR",
                    change.topic, change.partition
                )));
            }
        }
        if let Some(set) = current {
            if change.set.leader_epoch < set.leader_epoch {
                return Err(Rejected::Invalid(format!(
                    "{}-{}: leader epoch {} would go back from {}",
                    change.topic, change.partition, change.set.leader_epoch, set.leader_epoch
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
            // Both held by the checks above (validate_record: the leader is
            // in the ISR; the first pass: epochs never go back).
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
                if expect.is_none() && image.topics.len() >= limits::TOPICS_MAX {
                    return Err(Rejected::Invalid("too many topics".into()));
                }
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
            CatalogDelta::CreateAcls(acls) => {
                // An older binary cannot read ACL records: none is applied
                // before every broker runs a binary that can.
                if image.metadata_version < crate::features::METADATA_VERSION_SECURITY {
                    return Err(Rejected::Invalid(format!(
                        "ACLs need {} {} (the cluster is at {})",
                        crate::features::METADATA_VERSION_FEATURE,
                        crate::features::METADATA_VERSION_SECURITY,
                        image.metadata_version
                    )));
                }
                let new = acls.iter().filter(|a| !image.acls.contains(*a)).count();
                if image.acls.len() + new > crate::acl::ACLS_MAX {
                    return Err(Rejected::Invalid(format!(
                        "at most {} ACLs",
                        crate::acl::ACLS_MAX
                    )));
                }
            }
            CatalogDelta::DeleteAcls(_) => {}
            CatalogDelta::BrokerConfigs(_) | CatalogDelta::OneBrokerConfigs { .. } => {}
            CatalogDelta::UpsertScramCredential { user, .. }
            | CatalogDelta::DeleteScramCredential { user, .. } => {
                // An older binary cannot read these records: written only
                // once every node runs at the level that has them.
                if image.metadata_version < crate::features::METADATA_VERSION_SECURITY {
                    return Err(Rejected::Invalid(format!(
                        "SCRAM credentials need {} level {}",
                        crate::features::METADATA_VERSION_FEATURE,
                        crate::features::METADATA_VERSION_SECURITY
                    )));
                }
                if !image.scram_credentials.contains_key(user)
                    && image.scram_credentials.len() >= crate::metadata::SCRAM_USERS_MAX
                {
                    return Err(Rejected::Invalid("too many SCRAM users".into()));
                }
            }
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
            CatalogDelta::OneBrokerConfigs { broker, configs } => {
                if configs.is_empty() {
                    image.per_broker_configs.remove(broker);
                } else {
                    image.per_broker_configs.insert(*broker, configs.clone());
                }
            }
            CatalogDelta::ProducerIdBlock { to, .. } => image.producer_id_block_end = *to,
            CatalogDelta::CreateAcls(acls) => image.acls.extend(acls.iter().cloned()),
            CatalogDelta::DeleteAcls(acls) => {
                for acl in acls {
                    image.acls.remove(acl);
                }
            }
            CatalogDelta::UpsertScramCredential { user, credential } => {
                image
                    .scram_credentials
                    .entry(user.clone())
                    .or_default()
                    .insert(credential.mechanism, credential.clone());
            }
            CatalogDelta::DeleteScramCredential { user, mechanism } => {
                if let Some(by_mechanism) = image.scram_credentials.get_mut(user) {
                    by_mechanism.remove(mechanism);
                    if by_mechanism.is_empty() {
                        image.scram_credentials.remove(user);
                    }
                }
            }
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
    let brokers: BTreeSet<i32> = old
        .per_broker_configs
        .keys()
        .chain(new.per_broker_configs.keys())
        .copied()
        .collect();
    for broker in brokers {
        let configs = new.per_broker_configs.get(&broker);
        if configs != old.per_broker_configs.get(&broker) {
            deltas.push(CatalogDelta::OneBrokerConfigs {
                broker,
                configs: configs.cloned().unwrap_or_default(),
            });
        }
    }
    let created: Vec<AclBinding> = new.acls.difference(&old.acls).cloned().collect();
    if !created.is_empty() {
        deltas.push(CatalogDelta::CreateAcls(created));
    }
    let deleted: Vec<AclBinding> = old.acls.difference(&new.acls).cloned().collect();
    if !deleted.is_empty() {
        deltas.push(CatalogDelta::DeleteAcls(deleted));
    }
    diff_scram_credentials(old, new, &mut deltas);
    if new.producer_id_block_end != old.producer_id_block_end {
        deltas.push(CatalogDelta::ProducerIdBlock {
            from: old.producer_id_block_end,
            to: new.producer_id_block_end,
        });
    }
    deltas
}

/// The SCRAM credential changes from `old` to `new`.
fn diff_scram_credentials(old: &Catalog, new: &Catalog, deltas: &mut Vec<CatalogDelta>) {
    let empty = BTreeMap::new();
    let users: BTreeSet<&String> = old
        .scram_credentials
        .keys()
        .chain(new.scram_credentials.keys())
        .collect();
    for user in users {
        let before = old.scram_credentials.get(user).unwrap_or(&empty);
        let after = new.scram_credentials.get(user).unwrap_or(&empty);
        for (mechanism, credential) in after {
            if before.get(mechanism) != Some(credential) {
                deltas.push(CatalogDelta::UpsertScramCredential {
                    user: user.clone(),
                    credential: credential.clone(),
                });
            }
        }
        for mechanism in before.keys() {
            if !after.contains_key(mechanism) {
                deltas.push(CatalogDelta::DeleteScramCredential {
                    user: user.clone(),
                    mechanism: *mechanism,
                });
            }
        }
    }
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
mod tests;
