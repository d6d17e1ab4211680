//! What the admin tools share: naming a Kafka error in one line, parsing
//! `key=value` options, progress on a terminal, and `Cluster`, which reaches
//! the broker that leads a partition (or any named node) the way Kafka's own
//! clients do: from the bootstrap broker's Metadata, by advertised address.
//!
//! It holds no broker internals: everything here is learned over the wire.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{
    ApiKey, BrokerId, FindCoordinatorRequest, ListOffsetsRequest, MetadataRequest,
    MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::client::{fail, CliError, CliResult, KafkaClient};

/// How often a tool re-reads Metadata after a partition's leader moved
/// (NOT_LEADER_OR_FOLLOWER and other retriable errors) before giving up.
pub const LEADER_ATTEMPTS_MAX: u32 = 5;
/// Tries to find a group coordinator that is still loading or being created.
pub const COORDINATOR_ATTEMPTS_MAX: u32 = 25;
/// Pause between retries of a retriable error.
pub const RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// Metadata v12 is the last version that names topics in requests the way
/// the tools do; v10+ carries topic ids.
const METADATA_VERSION_MAX: i16 = 12;

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

pub fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// Kafka's name for an error code (`TOPIC_ALREADY_EXISTS`).
pub use crate::protocol::error_name;

/// One line naming the cause of a failed request: the broker's own message
/// when it sent one (Kafka's tools print exactly that), else Kafka's default
/// text for the code, with the code's name so the line can be searched for.
pub fn error_text(code: i16, message: Option<&StrBytes>) -> String {
    if let Some(message) = message.filter(|m| !m.is_empty()) {
        return message.to_string();
    }
    let default = match code {
        1 => "The requested offset is not within the range of offsets maintained by the server.",
        3 => "This server does not host this topic-partition.",
        6 => "This is not the correct leader for the partition.",
        7 => "The request timed out.",
        10 => "The request included a message larger than the max message size the server will accept.",
        15 => "The coordinator is not available.",
        16 => "This is not the correct coordinator.",
        17 => "The request attempted to perform an operation on an invalid topic.",
        29 => "Topic authorization failed.",
        35 => "The version of API is not supported.",
        36 => "Topic with this name already exists.",
        37 => "Number of partitions is below 1.",
        38 => "Replication factor is below 1 or larger than the number of available brokers.",
        40 => "Configuration is invalid.",
        41 => "This is not the correct controller for this cluster.",
        42 => "This most likely occurs because of a request being malformed by the client library or the message was sent to an incompatible broker.",
        56 => "Disk error when trying to access log file on the disk.",
        100 => "This server does not host this topic ID.",
        _ => "",
    };
    let name = error_name(code);
    if default.is_empty() {
        name
    } else {
        format!("{default} ({name})")
    }
}

/// Splits repeatable `key=value` options (`--property`, `--config`) into a
/// map; the last value given for a key wins, as in Kafka's tools.
pub fn parse_key_values(pairs: &[String], option: &str) -> CliResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            return fail(format!("{option} {pair:?} is not of the form key=value"));
        };
        out.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(out)
}

/// Reads a boolean property (`print.key=true`); absent means `false`.
pub fn flag(properties: &BTreeMap<String, String>, key: &str) -> CliResult<bool> {
    match properties.get(key).map(|v| v.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => fail(format!("property {key} must be true or false, not {v:?}")),
    }
}

/// Progress of a long operation, on stderr and only when stderr is a
/// terminal, so pipes and test logs stay clean. Redrawn at most 5 times a
/// second on one line.
pub struct Progress {
    enabled: bool,
    drawn_at: Option<Instant>,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            enabled: std::io::stderr().is_terminal(),
            drawn_at: None,
        }
    }

    pub fn update(&mut self, line: impl FnOnce() -> String) {
        if !self.enabled {
            return;
        }
        let due = self
            .drawn_at
            .is_none_or(|at| at.elapsed() >= Duration::from_millis(200));
        if due {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{}", line());
            let _ = err.flush();
            self.drawn_at = Some(Instant::now());
        }
    }

    /// Clears the progress line.
    pub fn finish(&mut self) {
        if self.enabled && self.drawn_at.is_some() {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
            self.drawn_at = None;
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

/// A Metadata response's topic, found by name.
pub fn find_topic<'a>(
    metadata: &'a MetadataResponse,
    topic: &str,
) -> Option<&'a MetadataResponseTopic> {
    metadata
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
}

/// The bootstrap connection plus one connection per other node, opened on
/// first use at the address the cluster advertises for it.
pub struct Cluster {
    pub bootstrap: KafkaClient,
    /// Advertised `host:port` of every node the last Metadata named.
    nodes: BTreeMap<i32, (String, i32, Option<String>)>,
    connections: HashMap<i32, KafkaClient>,
}

impl Cluster {
    pub fn connect(bootstrap: &str) -> CliResult<Cluster> {
        Ok(Cluster {
            bootstrap: KafkaClient::connect(bootstrap)?,
            nodes: BTreeMap::new(),
            connections: HashMap::new(),
        })
    }

    /// Metadata for the named topics (all topics when `topics` is `None`),
    /// never creating one. Remembers the brokers it lists.
    pub fn metadata(&mut self, topics: Option<&[String]>) -> CliResult<MetadataResponse> {
        self.metadata_with(topics, false)
    }

    /// Metadata that may auto-create the named topics where the broker
    /// allows it, as a Kafka producer's does (`allow.auto.create.topics`).
    pub fn metadata_with(
        &mut self,
        topics: Option<&[String]>,
        allow_auto_create: bool,
    ) -> CliResult<MetadataResponse> {
        let version = self
            .bootstrap
            .version(ApiKey::Metadata, METADATA_VERSION_MAX)?;
        let topics = match topics {
            None if version == 0 => Some(Vec::new()),
            None => None,
            Some(names) => Some(
                names
                    .iter()
                    .map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n))))
                    .collect(),
            ),
        };
        let request = MetadataRequest::default()
            .with_topics(topics)
            .with_allow_auto_topic_creation(allow_auto_create);
        let response = self.bootstrap.call(version, &request)?;
        self.nodes = response
            .brokers
            .iter()
            .map(|b| {
                let rack = b.rack.as_ref().map(|r| r.to_string());
                (b.node_id.0, (b.host.to_string(), b.port, rack))
            })
            .collect();
        Ok(response)
    }

    /// Node ids with their `host:port` and rack, as the last Metadata listed them.
    pub fn nodes(&self) -> impl Iterator<Item = (i32, String, Option<&str>)> + '_ {
        self.nodes
            .iter()
            .map(|(id, (host, port, rack))| (*id, format!("{host}:{port}"), rack.as_deref()))
    }

    /// The connection to node `id`, opened on first use. Call `metadata`
    /// first so the node's address is known.
    pub fn node(&mut self, id: i32) -> CliResult<&mut KafkaClient> {
        if !self.connections.contains_key(&id) {
            let Some((host, port, _)) = self.nodes.get(&id) else {
                return fail(format!("the cluster metadata names no broker {id}"));
            };
            let address = format!("{host}:{port}");
            let client = KafkaClient::connect(&address)
                .map_err(|e| CliError(format!("broker {id}: {e}")))?;
            self.connections.insert(id, client);
        }
        Ok(self.connections.get_mut(&id).expect("inserted above"))
    }

    /// Forgets node connections (after an I/O error or a leader change), so
    /// the next `node` call reconnects.
    pub fn drop_connections(&mut self) {
        self.connections.clear();
    }

    /// The leader of each named partition from fresh Metadata; partitions
    /// without a leader (or of unknown topics) are left out.
    pub fn leaders(
        &mut self,
        partitions: &BTreeSet<(String, i32)>,
    ) -> CliResult<BTreeMap<(String, i32), i32>> {
        let topics: Vec<String> = partitions
            .iter()
            .map(|(t, _)| t.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let metadata = self.metadata(Some(&topics))?;
        let mut out = BTreeMap::new();
        for (topic, partition) in partitions {
            let leader = find_topic(&metadata, topic)
                .filter(|t| t.error_code == 0)
                .and_then(|t| {
                    t.partitions
                        .iter()
                        .find(|p| p.partition_index == *partition)
                })
                .map(|p| p.leader_id.0)
                .filter(|l| *l >= 0);
            if let Some(leader) = leader {
                out.insert((topic.clone(), *partition), leader);
            }
        }
        Ok(out)
    }

    /// ListOffsets at one timestamp (-1 latest, -2 earliest) for every
    /// partition, each asked of its leader; a leader that moved meanwhile
    /// means fresh Metadata and another try (bounded). A partition that
    /// still fails gets its last error code (LEADER_NOT_AVAILABLE when no
    /// leader answered).
    pub fn list_offsets(
        &mut self,
        partitions: &BTreeSet<(String, i32)>,
        timestamp: i64,
    ) -> CliResult<BTreeMap<(String, i32), Result<i64, i16>>> {
        let mut out = BTreeMap::new();
        let mut errors: BTreeMap<(String, i32), i16> = BTreeMap::new();
        let mut left = partitions.clone();
        for attempt in 1..=LEADER_ATTEMPTS_MAX {
            if left.is_empty() {
                break;
            }
            if attempt > 1 {
                std::thread::sleep(RETRY_BACKOFF);
                self.drop_connections();
            }
            let mut by_leader: BTreeMap<i32, BTreeSet<(String, i32)>> = BTreeMap::new();
            for (key, leader) in self.leaders(&left)? {
                by_leader.entry(leader).or_default().insert(key);
            }
            // Partitions with a final (not retriable) error are not asked again.
            let mut failed = BTreeSet::new();
            for (leader, keys) in by_leader {
                let answers = match self.list_offsets_on(leader, &keys, timestamp) {
                    Ok(answers) => answers,
                    // The leader went away: ask again after a refresh.
                    Err(_) if attempt < LEADER_ATTEMPTS_MAX => continue,
                    Err(e) => return Err(e),
                };
                for (key, (code, offset)) in answers {
                    if code == 0 {
                        out.insert(key, offset);
                    } else {
                        if !is_retriable(code) {
                            failed.insert(key.clone());
                        }
                        errors.insert(key, code);
                    }
                }
            }
            // What is left (moved leaders, no leader yet) is asked again.
            left.retain(|k| !out.contains_key(k) && !failed.contains(k));
        }
        Ok(partitions
            .iter()
            .map(|key| {
                let result = match out.get(key) {
                    Some(offset) => Ok(*offset),
                    None => Err(errors
                        .get(key)
                        .copied()
                        .unwrap_or(ResponseError::LeaderNotAvailable.code())),
                };
                (key.clone(), result)
            })
            .collect())
    }

    /// `list_offsets` keeping only the partitions that answered.
    pub fn list_offsets_found(
        &mut self,
        partitions: &BTreeSet<(String, i32)>,
        timestamp: i64,
    ) -> CliResult<BTreeMap<(String, i32), i64>> {
        Ok(self
            .list_offsets(partitions, timestamp)?
            .into_iter()
            .filter_map(|(key, result)| result.ok().map(|offset| (key, offset)))
            .collect())
    }

    /// One ListOffsets request to `leader`: (error code, offset) per partition.
    fn list_offsets_on(
        &mut self,
        leader: i32,
        keys: &BTreeSet<(String, i32)>,
        timestamp: i64,
    ) -> CliResult<BTreeMap<(String, i32), (i16, i64)>> {
        let mut by_topic: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
        for (topic, partition) in keys {
            by_topic.entry(topic).or_default().push(
                ListOffsetsPartition::default()
                    .with_partition_index(*partition)
                    .with_current_leader_epoch(-1)
                    .with_timestamp(timestamp),
            );
        }
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(topic, partitions)| {
                        ListOffsetsTopic::default()
                            .with_name(topic_name(topic))
                            .with_partitions(partitions)
                    })
                    .collect(),
            );
        let client = self.node(leader)?;
        // v1 is the first with one offset per partition (not a list).
        let version = client.version(ApiKey::ListOffsets, 7)?.max(1);
        let response = client.call(version, &request)?;
        let mut out = BTreeMap::new();
        for topic in response.topics {
            for p in topic.partitions {
                out.insert(
                    (topic.name.0.to_string(), p.partition_index),
                    (p.error_code, p.offset),
                );
            }
        }
        Ok(out)
    }
}

/// Whether a Kafka error code says "try again" (a leader moved, a
/// coordinator is loading, ...).
pub fn is_retriable(code: i16) -> bool {
    ResponseError::try_from_code(code).is_some_and(|e| e.is_retriable())
}

/// A group's coordinator as FindCoordinator names it.
pub struct CoordinatorNode {
    pub id: i32,
    pub host: String,
    pub port: i32,
}

impl CoordinatorNode {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Finds a consumer group's coordinator through `bootstrap` (retrying,
/// bounded, while it loads or is being created) and connects to it at the
/// address the cluster advertises for it.
pub fn find_coordinator(bootstrap: &mut KafkaClient, group: &str) -> CliResult<KafkaClient> {
    let node = find_coordinator_node(bootstrap, group)?;
    KafkaClient::connect(&node.address())
}

/// Which broker coordinates `group` (retrying, bounded, while it loads or
/// is being created).
pub fn find_coordinator_node(
    bootstrap: &mut KafkaClient,
    group: &str,
) -> CliResult<CoordinatorNode> {
    let version = bootstrap.version(ApiKey::FindCoordinator, 4)?;
    let mut request = FindCoordinatorRequest::default().with_key_type(0);
    if version >= 4 {
        request.coordinator_keys = vec![str_bytes(group)];
    } else {
        request.key = str_bytes(group);
    }
    for attempt in 1..=COORDINATOR_ATTEMPTS_MAX {
        let response = bootstrap.call(version, &request)?;
        let (code, message, node) = match response.coordinators.into_iter().next() {
            Some(c) => (c.error_code, c.error_message, (c.node_id.0, c.host, c.port)),
            None => (
                response.error_code,
                response.error_message,
                (response.node_id.0, response.host, response.port),
            ),
        };
        if code == 0 {
            return Ok(CoordinatorNode {
                id: node.0,
                host: node.1.to_string(),
                port: node.2,
            });
        }
        if !is_retriable(code) || attempt == COORDINATOR_ATTEMPTS_MAX {
            return fail(format!(
                "cannot find the coordinator of group {group}: {}",
                error_text(code, message.as_ref())
            ));
        }
        std::thread::sleep(RETRY_BACKOFF);
    }
    unreachable!("the last attempt returns")
}
