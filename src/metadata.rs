//! The topic catalog: topic names and ids, partition counts and their shard
//! placement, topic config overrides, and the producer id allocator.
//!
//! Owner: shard 0 is the only writer. It persists the catalog (write a temp
//! file, fdatasync, rename, sync the directory) before it broadcasts the new
//! version to every shard; each shard keeps a read-only copy. Placement is a
//! table, not a hash, so partitions can later move between cores.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::acl::{AclBinding, InvalidAcl};
use crate::limits;
use crate::sasl::{ScramCredential, ScramMechanism};

/// Why a topic name is refused (Kafka's own messages, which clients show).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TopicNameError {
    #[error("Topic name is illegal, it can't be empty")]
    Empty,
    #[error("Topic name cannot be \".\" or \"..\"")]
    Dots,
    #[error("Topic name is illegal, it can't be longer than {0} characters")]
    TooLong(usize),
    #[error(
        "Topic name {name:?} is illegal, it contains a character other than ASCII \
         alphanumerics, '.', '_' and '-' ({character:?})"
    )]
    IllegalCharacter { name: String, character: char },
}

/// Why a catalog read from disk is not trusted.
#[derive(Debug, thiserror::Error)]
pub enum StoredCatalogError {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("{count} topics, more than the {max} a broker holds")]
    TooManyTopics { count: usize, max: usize },
    #[error("topic {name:?} is filed under {key:?}")]
    Misfiled { name: String, key: String },
    #[error("topic entry {key:?}: {source}")]
    BadName { key: String, source: TopicNameError },
    #[error("topic {key:?} has {partitions} partitions")]
    Partitions { key: String, partitions: usize },
    #[error("ACL {acl}: {source}")]
    Acl { acl: String, source: InvalidAcl },
    #[error("SCRAM credentials: {0}")]
    ScramCredentials(String),
}

pub const CATALOG_FILE: &str = "corelog-metadata.json";

/// The catalog file's format (`format` in it; docs/storage-formats.md).
pub const CATALOG_FORMAT: u32 = 1;
/// A catalog written before the field existed.
pub const CATALOG_FORMAT_UNMARKED: u32 = 1;

/// The `format` a stored catalog declares (`CATALOG_FORMAT_UNMARKED` when
/// it has none): read before the whole catalog, so a newer one is refused
/// with its version rather than as a catalog that does not parse.
pub fn stored_catalog_format(bytes: &[u8]) -> Result<u32, serde_json::Error> {
    #[derive(Deserialize)]
    struct FormatOnly {
        #[serde(default = "catalog_format_unmarked")]
        format: u32,
    }
    serde_json::from_slice::<FormatOnly>(bytes).map(|f| f.format)
}

fn catalog_format_unmarked() -> u32 {
    CATALOG_FORMAT_UNMARKED
}

/// Producer ids are reserved from the persisted catalog in blocks so that an
/// InitProducerId does not cost a disk write, and a restart never hands out
/// an id twice.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TopicMeta {
    pub name: String,
    pub id: Uuid,
    /// Owner shard of each partition, indexed by partition number.
    pub shards: Vec<u32>,
    pub configs: BTreeMap<String, String>,
    /// In a cluster, each partition's replicas, ISR, leader and leader epoch,
    /// indexed by partition number; empty on a single node, which holds and
    /// leads every partition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<ReplicaSet>,
}

/// Where one partition lives in a cluster (Kafka's PartitionRecord).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReplicaSet {
    /// Brokers holding a copy, the preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas; the leader is always one of them.
    pub isr: Vec<i32>,
    /// -1 when no replica can lead (all offline).
    pub leader: i32,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// Bumped on every change of this set (leader or ISR): an ISR change a
    /// leader proposes names the epoch it saw, so a stale one is refused.
    #[serde(default)]
    pub partition_epoch: i32,
}

impl TopicMeta {
    pub fn partition_count(&self) -> i32 {
        self.shards.len() as i32
    }

    /// Copies of each partition (1 on a single node).
    pub fn replication_factor(&self) -> i16 {
        self.replicas
            .first()
            .map_or(1, |set| set.replicas.len() as i16)
    }

    /// Whether `node` keeps a copy of `partition` (every partition on a single node).
    pub fn is_replica(&self, partition: usize, node: i32) -> bool {
        match self.replicas.get(partition) {
            Some(set) => set.replicas.contains(&node),
            None => self.replicas.is_empty(),
        }
    }

    /// The partition's leader: `node` itself on a single node.
    pub fn leader(&self, partition: usize, node: i32) -> i32 {
        match self.replicas.get(partition) {
            Some(set) => set.leader,
            None if self.replicas.is_empty() => node,
            None => -1,
        }
    }
}

/// A registered broker (Kafka's RegisterBrokerRecord plus fencing).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BrokerRecord {
    pub host: String,
    pub port: u16,
    /// Changes on every process start, so a restart is told from a heartbeat.
    pub incarnation: Uuid,
    /// Fenced brokers missed their heartbeats, or are in controlled
    /// shutdown: they lead nothing and may not join an ISR.
    pub fenced: bool,
    /// Fenced by its controlled shutdown: still listed in Metadata (as
    /// Kafka lists a broker in controlled shutdown), so clients moving its
    /// partitions to their new leaders do not drop its connection
    /// half-way; unlisted once its session ends.
    #[serde(default)]
    pub in_controlled_shutdown: bool,
    /// Its log directory's id (`directory.id` in meta.properties), for
    /// DescribeQuorum; None from a broker that did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_id: Option<Uuid>,
    /// The newest feature level its binary supports (`features.rs`); a
    /// binary from before feature levels does not say, and runs the
    /// baseline.
    #[serde(default = "metadata_version_baseline")]
    pub max_metadata_version: u16,
    /// Every client listener's advertised endpoint (Kafka's
    /// RegisterBrokerRecord endpoints); `host`/`port` above are the
    /// inter-broker listener's. A binary from before listeners were
    /// several skips the field (unknown fields are ignored) and reads
    /// `host`/`port`; a record without it has that one endpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<BrokerEndpoint>,
}

/// One advertised listener of a broker.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BrokerEndpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    /// `PLAINTEXT`, `SSL`, ... (Kafka's security protocol name).
    pub protocol: String,
}

impl BrokerRecord {
    /// Where a client of `listener` reaches this broker: that listener's
    /// endpoint, else (a broker without it, or from an older binary) the
    /// main one.
    pub fn endpoint(&self, listener: &str) -> (&str, u16) {
        self.endpoints
            .iter()
            .find(|e| e.name == listener)
            .map_or((self.host.as_str(), self.port), |e| {
                (e.host.as_str(), e.port)
            })
    }
}

fn metadata_version_baseline() -> u16 {
    crate::features::METADATA_VERSION_BASELINE
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Catalog {
    /// The file's format ([`CATALOG_FORMAT`]); catalogs
    /// written before the field existed are format 1.
    #[serde(default = "catalog_format_unmarked")]
    pub format: u32,
    pub cluster_id: String,
    /// Bumped on every change so shards can tell an old broadcast from a new one.
    pub version: u64,
    pub topics: BTreeMap<String, TopicMeta>,
    /// Producer ids below this may have been handed out.
    pub producer_id_block_end: i64,
    /// Dynamic broker configs (IncrementalAlterConfigs on the broker), by
    /// Kafka name; they override the static ones.
    #[serde(default)]
    pub broker_configs: BTreeMap<String, String>,
    /// Dynamic configs of one broker (IncrementalAlterConfigs on broker
    /// N), by broker id; over the cluster-wide ones for that broker only.
    #[serde(default)]
    pub per_broker_configs: BTreeMap<i32, BTreeMap<String, String>>,
    /// Brokers registered with the controller quorum (empty on a single node).
    #[serde(default)]
    pub brokers: BTreeMap<i32, BrokerRecord>,
    /// The cluster's finalized feature level (`features.rs`): the baseline
    /// until a controller records a higher one.
    #[serde(default = "metadata_version_baseline")]
    pub metadata_version: u16,
    /// The metadata log index that finalized `metadata_version` (0: never
    /// recorded, the baseline); ApiVersions' finalized features epoch.
    #[serde(default)]
    pub features_epoch: u64,
    /// The cluster's ACLs (CreateAcls, DeleteAcls), the same on every
    /// node; each shard's authorizer is built from its copy.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub acls: BTreeSet<AclBinding>,
    /// SCRAM credentials by user and mechanism (salted and hashed; never a
    /// password). In a cluster they come from the metadata log at feature
    /// level `METADATA_VERSION_SECURITY` and up.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scram_credentials: ScramCredentials,
}

/// SCRAM credentials by user name, then by mechanism.
pub type ScramCredentials = BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>;

/// Users whose SCRAM credentials a catalog holds, at most.
pub const SCRAM_USERS_MAX: usize = 100_000;

/// Why a stored SCRAM credential is refused (the catalog file, the
/// metadata log, a snapshot).
pub fn validate_scram_credentials(credentials: &ScramCredentials) -> Result<(), String> {
    if credentials.len() > SCRAM_USERS_MAX {
        return Err(format!("{} SCRAM users", credentials.len()));
    }
    for (user, by_mechanism) in credentials {
        validate_scram_user(user)?;
        for (mechanism, credential) in by_mechanism {
            if credential.mechanism != *mechanism {
                return Err(format!(
                    "user {user:?}: a {} credential filed under {mechanism}",
                    credential.mechanism
                ));
            }
            credential
                .validate()
                .map_err(|e| format!("user {user:?}, {mechanism}: {e}"))?;
        }
    }
    Ok(())
}

/// A SCRAM user name: not empty, bounded.
pub fn validate_scram_user(user: &str) -> Result<(), String> {
    if user.is_empty() || user.len() > crate::sasl::scram::USER_NAME_BYTES_MAX {
        return Err(format!("a SCRAM user name of {} bytes", user.len()));
    }
    Ok(())
}

impl Catalog {
    pub fn new(cluster_id: &str) -> Catalog {
        Catalog {
            format: CATALOG_FORMAT,
            cluster_id: cluster_id.to_string(),
            version: 0,
            topics: BTreeMap::new(),
            producer_id_block_end: 0,
            broker_configs: BTreeMap::new(),
            per_broker_configs: BTreeMap::new(),
            brokers: BTreeMap::new(),
            metadata_version: crate::features::METADATA_VERSION_BASELINE,
            features_epoch: 0,
            acls: BTreeSet::new(),
            scram_credentials: BTreeMap::new(),
        }
    }

    /// The dynamic configs broker `node` applies: the cluster-wide ones,
    /// then its own on top.
    pub fn dynamic_broker_configs(&self, node: i32) -> BTreeMap<String, String> {
        let mut configs = self.broker_configs.clone();
        if let Some(own) = self.per_broker_configs.get(&node) {
            configs.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        configs
    }

    /// Loads the catalog of `data_dir`, creating an empty one for
    /// `cluster_id` (meta.properties' id) on first start; a stored catalog
    /// of another cluster is refused. Placements that name a shard beyond
    /// `shards` (the broker was restarted with fewer cores) are moved to the
    /// least-loaded shard.
    pub fn load_or_create(
        data_dir: &Path,
        shards: usize,
        cluster_id: &str,
    ) -> std::io::Result<Catalog> {
        crate::io::create_dir_all_blocking(data_dir)?;
        let mut catalog = match Catalog::read(data_dir)? {
            Some(catalog) => catalog,
            None => Catalog::new(cluster_id),
        };
        if catalog.cluster_id != cluster_id {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the topic catalog belongs to cluster {}, but meta.properties says {cluster_id}",
                    catalog.cluster_id
                ),
            ));
        }
        if catalog.rebalance_onto(shards) {
            catalog.version += 1;
        }
        catalog.persist(data_dir)?;
        Ok(catalog)
    }

    /// The stored catalog of `data_dir`, if there is one.
    fn read(data_dir: &Path) -> std::io::Result<Option<Catalog>> {
        let path = data_dir.join(CATALOG_FILE);
        let damaged = |why: StoredCatalogError| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is damaged: {why}", path.display()),
            )
        };
        match crate::io::read_whole_file_blocking(&path)? {
            Some(bytes) => {
                let format = stored_catalog_format(&bytes).map_err(|e| damaged(e.into()))?;
                if format > CATALOG_FORMAT {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "{} is catalog format {format}, written by a newer corelog; this \
                             binary reads formats up to {CATALOG_FORMAT}",
                            path.display()
                        ),
                    ));
                }
                let catalog: Catalog =
                    serde_json::from_slice(&bytes).map_err(|e| damaged(e.into()))?;
                catalog.check_stored().map_err(damaged)?;
                Ok(Some(catalog))
            }
            None => Ok(None),
        }
    }

    /// The cluster id of the catalog stored in `data_dir`, if there is one
    /// (data dirs written before meta.properties existed carry it here).
    pub fn stored_cluster_id(data_dir: &Path) -> std::io::Result<Option<String>> {
        Ok(Catalog::read(data_dir)?.map(|c| c.cluster_id))
    }

    /// A catalog read from disk is not trusted: each shard opens
    /// `<data dir>/<topic>-<partition>` for the topics in it, so every topic
    /// must be filed under its own name, the name must be one Kafka accepts
    /// (no `/`, not `.` or `..`: never a path outside the data directory)
    /// and its partition count within the broker's bounds. A bad entry
    /// refuses the whole file, naming the entry, rather than dropping the
    /// topic (the next persist would lose it for good).
    fn check_stored(&self) -> Result<(), StoredCatalogError> {
        if self.topics.len() > limits::TOPICS_MAX {
            return Err(StoredCatalogError::TooManyTopics {
                count: self.topics.len(),
                max: limits::TOPICS_MAX,
            });
        }
        for (key, topic) in &self.topics {
            if *key != topic.name {
                return Err(StoredCatalogError::Misfiled {
                    name: topic.name.clone(),
                    key: key.clone(),
                });
            }
            validate_topic_name(key).map_err(|source| StoredCatalogError::BadName {
                key: key.clone(),
                source,
            })?;
            let partitions = topic.shards.len();
            if partitions == 0 || partitions > limits::TOPIC_PARTITIONS_MAX as usize {
                return Err(StoredCatalogError::Partitions {
                    key: key.clone(),
                    partitions,
                });
            }
        }
        validate_acls(&self.acls).map_err(|(acl, source)| StoredCatalogError::Acl {
            acl: acl.to_string(),
            source,
        })?;
        validate_scram_credentials(&self.scram_credentials)
            .map_err(StoredCatalogError::ScramCredentials)
    }

    fn rebalance_onto(&mut self, shards: usize) -> bool {
        let mut load = self.shard_load(shards);
        let mut moved = false;
        for topic in self.topics.values_mut() {
            for shard in topic.shards.iter_mut() {
                if (*shard as usize) >= shards {
                    let target = least_loaded(&load);
                    load[target] += 1;
                    *shard = target as u32;
                    moved = true;
                }
            }
        }
        moved
    }

    fn shard_load(&self, shards: usize) -> Vec<usize> {
        let mut load = vec![0usize; shards];
        for topic in self.topics.values() {
            for &shard in &topic.shards {
                if let Some(n) = load.get_mut(shard as usize) {
                    *n += 1;
                }
            }
        }
        load
    }

    /// Writes the catalog atomically and durably, before the executors run
    /// (start-up); a running broker uses [`Catalog::persist_on`].
    pub fn persist(&self, data_dir: &Path) -> std::io::Result<()> {
        crate::io::replace_file_blocking(data_dir, CATALOG_FILE, &self.stored_bytes()?)
    }

    /// Writes the catalog atomically and durably through the disk seam.
    pub async fn persist_on<D: crate::io::Disk>(
        &self,
        disk: &D,
        data_dir: &Path,
    ) -> std::io::Result<()> {
        let bytes = self.stored_bytes()?;
        crate::io::replace_file(disk, data_dir, CATALOG_FILE, &bytes).await
    }

    fn stored_bytes(&self) -> std::io::Result<Vec<u8>> {
        serde_json::to_vec_pretty(self).map_err(std::io::Error::other)
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<&TopicMeta> {
        self.topics.values().find(|t| t.id == id)
    }

    /// Adds a topic, placing each partition on the least-loaded shard.
    /// The caller validated name, count and configs.
    pub fn add_topic(
        &mut self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        shards: usize,
    ) -> &mut TopicMeta {
        assert!(!self.topics.contains_key(name));
        assert!((1..=limits::TOPIC_PARTITIONS_MAX).contains(&partitions));
        let mut load = self.shard_load(shards);
        let placement = (0..partitions)
            .map(|_| {
                let target = least_loaded(&load);
                load[target] += 1;
                target as u32
            })
            .collect();
        let mut id = Uuid::new_v4();
        while id.is_nil() || self.topic_by_id(id).is_some() {
            id = Uuid::new_v4();
        }
        self.version += 1;
        self.topics.entry(name.to_string()).or_insert(TopicMeta {
            name: name.to_string(),
            id,
            shards: placement,
            configs,
            replicas: Vec::new(),
        })
    }

    /// Places every partition without a shard (new in a synced image) on
    /// the least-loaded shard.
    pub fn place_unplaced(&mut self, shards: usize) {
        let mut load = self.shard_load(shards);
        for topic in self.topics.values_mut() {
            let count = topic.replicas.len().max(topic.shards.len());
            while topic.shards.len() < count {
                let target = least_loaded(&load);
                load[target] += 1;
                topic.shards.push(target as u32);
            }
        }
    }

    /// Adds partitions to a topic up to `count`, each on the least-loaded shard.
    pub fn add_partitions(&mut self, name: &str, count: i32, shards: usize) {
        let mut load = self.shard_load(shards);
        let topic = self
            .topics
            .get_mut(name)
            .expect("caller checked the topic exists");
        assert!(
            count as usize > topic.shards.len(),
            "partitions are only ever added"
        );
        while (topic.shards.len() as i32) < count {
            let target = least_loaded(&load);
            load[target] += 1;
            topic.shards.push(target as u32);
        }
        self.version += 1;
    }

    pub fn remove_topic(&mut self, name: &str) -> Option<TopicMeta> {
        let removed = self.topics.remove(name);
        if removed.is_some() {
            self.version += 1;
        }
        removed
    }
}

fn least_loaded(load: &[usize]) -> usize {
    load.iter()
        .enumerate()
        .min_by_key(|(i, n)| (**n, *i))
        .map(|(i, _)| i)
        .unwrap_or(0)
}

/// How Kafka prints a Uuid (topic ids, cluster ids): URL-safe base64 of its
/// 16 bytes without padding.
pub fn kafka_uuid(id: Uuid) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.into_bytes();
    let mut out = String::with_capacity(22);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | b as u32;
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}

/// A Uuid from the way Kafka prints it ([`kafka_uuid`]); None when `text`
/// is not 22 characters of URL-safe base64.
pub fn parse_kafka_uuid(text: &str) -> Option<Uuid> {
    if text.len() != 22 {
        return None;
    }
    let mut bytes = Vec::with_capacity(17);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((acc >> bits) as u8);
        }
    }
    Uuid::from_slice(&bytes[..16]).ok()
}

/// The ACLs an image or a catalog file may hold: at most
/// [`crate::acl::ACLS_MAX`], each one CreateAcls could have made.
pub fn validate_acls<'a>(
    acls: impl IntoIterator<Item = &'a AclBinding> + Clone,
) -> Result<(), (&'a AclBinding, InvalidAcl)> {
    if let Some(acl) = acls.clone().into_iter().nth(crate::acl::ACLS_MAX) {
        return Err((acl, InvalidAcl::TooMany));
    }
    for acl in acls {
        acl.validate().map_err(|e| (acl, e))?;
    }
    Ok(())
}

/// Kafka's rule for topic names: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), TopicNameError> {
    if name.is_empty() {
        return Err(TopicNameError::Empty);
    }
    if name == "." || name == ".." {
        return Err(TopicNameError::Dots);
    }
    if name.len() > limits::TOPIC_NAME_BYTES_MAX {
        return Err(TopicNameError::TooLong(limits::TOPIC_NAME_BYTES_MAX));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '_' || *c == '-'))
    {
        return Err(TopicNameError::IllegalCharacter {
            name: name.to_string(),
            character: c,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catalog_without_a_format_is_format_1_and_a_newer_one_says_so() {
        assert_eq!(stored_catalog_format(br#"{"cluster_id":"x"}"#).unwrap(), 1);
        assert_eq!(
            stored_catalog_format(br#"{"format":7,"topics":{}}"#).unwrap(),
            7
        );
        assert!(stored_catalog_format(b"not json").is_err());
    }
    use std::fs;

    #[test]
    fn kafka_uuids_read_back() {
        for _ in 0..100 {
            let id = Uuid::new_v4();
            assert_eq!(parse_kafka_uuid(&kafka_uuid(id)), Some(id));
        }
        assert_eq!(
            parse_kafka_uuid("AAAAAAAAAAAAAAAAAAAAAA"),
            Some(Uuid::nil())
        );
        assert_eq!(parse_kafka_uuid("short"), None);
        assert_eq!(parse_kafka_uuid("MkU3OEVBNTcwNTJENDM2Q+"), None);
    }

    #[test]
    fn placement_spreads_and_survives_fewer_shards() {
        let dir = tempfile::tempdir().unwrap();
        let cluster_id = "MkU3OEVBNTcwNTJENDM2Qg";
        let mut catalog = Catalog::load_or_create(dir.path(), 2, cluster_id).unwrap();
        catalog.add_topic("orders", 8, BTreeMap::new(), 2);
        let shards = &catalog.topics["orders"].shards;
        assert_eq!(shards.iter().filter(|s| **s == 0).count(), 4);
        catalog.persist(dir.path()).unwrap();
        let reloaded = Catalog::load_or_create(dir.path(), 1, cluster_id).unwrap();
        assert!(reloaded.topics["orders"].shards.iter().all(|s| *s == 0));
        assert_eq!(reloaded.topics["orders"].id, catalog.topics["orders"].id);
        assert_eq!(reloaded.cluster_id, cluster_id);
        let err = Catalog::load_or_create(dir.path(), 1, "OtherClusterIdAAAAAAAA").unwrap_err();
        assert!(err.to_string().contains(cluster_id), "{err}");
        assert_eq!(
            Catalog::stored_cluster_id(dir.path()).unwrap().as_deref(),
            Some(cluster_id)
        );
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_a-b").is_ok());
        assert!(validate_topic_name("bad/name").is_err());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
        assert!(validate_topic_name(&"a".repeat(249)).is_ok());
    }

    /// fuzz target `partition_files` (catalog mode): a stored catalog naming
    /// topic `../escape` loaded, and the broker created `<data
    /// dir>/../escape-0`. A catalog entry that is not a topic the broker
    /// could have created refuses the file, naming the entry, and the file
    /// is left as it was for the operator.
    #[test]
    fn a_stored_catalog_with_a_bad_entry_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cluster_id = "MkU3OEVBNTcwNTJENDM2Qg";
        let mut catalog = Catalog::load_or_create(dir.path(), 1, cluster_id).unwrap();
        catalog.add_topic("inside", 1, BTreeMap::new(), 1);
        catalog.persist(dir.path()).unwrap();
        let good = fs::read(dir.path().join(CATALOG_FILE)).unwrap();
        let damage = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
            edit(&mut v);
            let bytes = serde_json::to_vec(&v).unwrap();
            fs::write(dir.path().join(CATALOG_FILE), &bytes).unwrap();
            let err = Catalog::load_or_create(dir.path(), 1, cluster_id).unwrap_err();
            assert_eq!(fs::read(dir.path().join(CATALOG_FILE)).unwrap(), bytes);
            err.to_string()
        };
        let err = damage(&|v| {
            let mut topic = v["topics"]["inside"].clone();
            topic["name"] = "../escape".into();
            v["topics"]["../escape"] = topic;
        });
        assert!(err.contains("../escape"), "{err}");
        let err = damage(&|v| v["topics"]["inside"]["name"] = "other".into());
        assert!(err.contains("filed under"), "{err}");
        let err = damage(&|v| v["topics"]["inside"]["shards"] = serde_json::json!([]));
        assert!(err.contains("0 partitions"), "{err}");
        fs::write(dir.path().join(CATALOG_FILE), &good).unwrap();
        assert!(Catalog::load_or_create(dir.path(), 1, cluster_id).is_ok());
        assert!(!dir.path().join("..").join("escape-0").exists());
    }
}
