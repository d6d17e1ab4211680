//! Server configuration: command-line flags, an optional server file
//! (Kafka's `server.properties` format, or TOML when it ends in `.toml`),
//! Kafka-named overrides and a tuning profile, folded into one validated
//! [`Config`]. `properties` reads the Kafka file; `listeners` parses the
//! values of its cluster keys (roles, listeners, voters).
//!
//! The config is built once on the main thread before any shard starts and
//! each shard gets its own clone; nothing here changes at run time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::limits;

pub mod keys;
mod listeners;
mod properties;

pub use listeners::{parse_listeners, parse_voters, Roles};
pub use properties::parse_properties;

/// Broker-wide defaults, named after Kafka's broker configs. Topic configs
/// override the log-related ones per topic (see [`TopicConfig`]).
#[derive(Clone, Debug)]
pub struct BrokerDefaults {
    pub node_id: i32,
    pub auto_create_topics_enable: bool,
    pub num_partitions: i32,
    pub log_segment_bytes: u64,
    pub log_roll_ms: i64,
    pub log_retention_ms: i64,
    pub log_retention_bytes: i64,
    pub log_index_interval_bytes: u32,
    pub message_max_bytes: u32,
    pub log_message_timestamp_type_log_append: bool,
    /// How far in the past / future (ms) a CreateTime record timestamp may
    /// be from the broker's clock (KIP-937; Kafka 4's defaults).
    pub log_message_timestamp_before_max_ms: i64,
    pub log_message_timestamp_after_max_ms: i64,
    /// Bytes of stored segments each shard verifies per second in the
    /// background (0: no scrub).
    pub log_scrub_io_max_bytes_per_second: u64,
    /// How long a verified segment goes before it is verified again.
    pub log_scrub_interval_ms: i64,
    pub log_retention_check_interval_ms: u64,
    /// Partitions of `__consumer_offsets` when it is created (Kafka default 50).
    pub offsets_topic_num_partitions: i32,
    /// How long the first rebalance of an empty group waits for more members.
    pub group_initial_rebalance_delay_ms: u64,
    /// Session timeouts a classic group member may ask for.
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    /// KIP-848 groups: the session timeout and heartbeat interval the
    /// coordinator gives its members.
    pub group_consumer_session_timeout_ms: i32,
    pub group_consumer_heartbeat_interval_ms: i32,
    /// Replicas of a topic created without an explicit replication factor.
    pub default_replication_factor: i16,
    /// Replicas that must have a batch before `acks=all` answers; the
    /// default for the topic config of the same name.
    pub min_insync_replicas: i32,
    /// Replicas of `__consumer_offsets`, capped at creation to the live
    /// brokers ([`BrokerDefaults::offsets_topic_replicas`]).
    pub offsets_topic_replication_factor: i16,
    /// A follower that has not caught up for this long leaves the ISR.
    pub replica_lag_time_max_ms: i64,
    /// Whether a replica outside the ISR may become leader (losing data).
    pub unclean_leader_election_enable: bool,
    /// How often a broker heartbeats to the controller quorum.
    pub broker_heartbeat_interval_ms: i32,
    /// A broker whose heartbeats stop for this long is fenced.
    pub broker_session_timeout_ms: i32,
    /// Raft: how long a voter waits without a leader before it stands.
    pub controller_quorum_election_timeout_ms: i32,
    /// Raft: how long a follower waits for the leader's answer before it
    /// starts an election.
    pub controller_quorum_fetch_timeout_ms: i32,
    /// Bytes a follower asks for per partition in one replica fetch.
    pub replica_fetch_max_bytes: i32,
    /// How long a replica fetch waits at the leader for new data.
    pub replica_fetch_wait_max_ms: i32,
    /// Whether the controller moves leadership back to preferred replicas.
    pub auto_leader_rebalance_enable: bool,
    /// How often the controller checks the leader balance.
    pub leader_imbalance_check_interval_seconds: i64,
    /// Largest request frame a client may send (`socket.request.max.bytes`).
    pub socket_request_max_bytes: usize,
    /// Request bytes being read or waiting for their answer on the whole
    /// node, split evenly between the shards; -1: unbounded, as Kafka's
    /// default (`queued.max.request.bytes`).
    pub queued_max_request_bytes: i64,
    /// A connection with no request or response traffic for this long is
    /// closed; -1: never (`connections.max.idle.ms`).
    pub connections_max_idle_ms: i64,
    /// Client connections the node keeps open; one more is closed right
    /// after accept (`max.connections`).
    pub max_connections: i32,
    /// Client connections from one address (`max.connections.per.ip`).
    pub max_connections_per_ip: i32,
    /// Per-address exceptions to `max.connections.per.ip`, as written
    /// (`host:count,...`) and resolved to addresses.
    pub max_connections_per_ip_overrides: IpOverrides,
    /// The configs that were set explicitly (file, --override or dynamic),
    /// by Kafka name: DescribeConfigs reports them with their source.
    pub explicit: BTreeMap<String, String>,
}

impl Default for BrokerDefaults {
    /// Kafka's defaults (and corelog's where it differs), from the key table.
    fn default() -> Self {
        let mut defaults = BrokerDefaults::unset();
        for key in keys::KEYS {
            if let (keys::Kind::Broker { set, .. }, Some(value)) = (key.kind, key.default_value()) {
                set(&mut defaults, &value);
            }
        }
        defaults
    }
}

impl BrokerDefaults {
    /// Every field zero or empty; [`Default`] fills them from the key table.
    fn unset() -> BrokerDefaults {
        BrokerDefaults {
            node_id: 0,
            auto_create_topics_enable: false,
            num_partitions: 0,
            log_segment_bytes: 0,
            log_roll_ms: 0,
            log_retention_ms: 0,
            log_retention_bytes: 0,
            log_index_interval_bytes: 0,
            message_max_bytes: 0,
            log_message_timestamp_type_log_append: false,
            log_message_timestamp_before_max_ms: 0,
            log_message_timestamp_after_max_ms: 0,
            log_scrub_io_max_bytes_per_second: 0,
            log_scrub_interval_ms: 0,
            log_retention_check_interval_ms: 0,
            offsets_topic_num_partitions: 0,
            group_initial_rebalance_delay_ms: 0,
            group_min_session_timeout_ms: 0,
            group_max_session_timeout_ms: 0,
            group_consumer_session_timeout_ms: 0,
            group_consumer_heartbeat_interval_ms: 0,
            default_replication_factor: 0,
            min_insync_replicas: 0,
            offsets_topic_replication_factor: 0,
            replica_lag_time_max_ms: 0,
            unclean_leader_election_enable: false,
            broker_heartbeat_interval_ms: 0,
            broker_session_timeout_ms: 0,
            controller_quorum_election_timeout_ms: 0,
            controller_quorum_fetch_timeout_ms: 0,
            replica_fetch_max_bytes: 0,
            replica_fetch_wait_max_ms: 0,
            auto_leader_rebalance_enable: false,
            leader_imbalance_check_interval_seconds: 0,
            socket_request_max_bytes: 0,
            queued_max_request_bytes: 0,
            connections_max_idle_ms: 0,
            max_connections: 0,
            max_connections_per_ip: 0,
            max_connections_per_ip_overrides: IpOverrides::default(),
            explicit: BTreeMap::new(),
        }
    }

    /// Applies one Kafka broker config (`server.properties` name and value):
    /// an error naming the key for an unknown key or a bad value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let config = keys::broker_key(key)
            .ok_or_else(|| format!("unknown or unsupported broker config {key:?}"))?;
        let parsed = config
            .parse(value)
            .map_err(|e| format!("invalid value {value:?} for {key}: {e}"))?;
        config.set_broker(self, &parsed);
        self.explicit.insert(key.to_string(), value.to_string());
        Ok(())
    }

    /// Whether `key` is a broker config corelog takes (by `set`).
    pub fn knows(key: &str) -> bool {
        keys::broker_key(key).is_some()
    }

    /// The current value of a broker config by its Kafka name, for the keys
    /// DescribeConfigs reports.
    pub fn get(&self, key: &str) -> Option<String> {
        keys::broker_key(key)?
            .get_broker(self)
            .map(|v| v.to_string())
    }
    /// Rules between broker configs, checked once all of them are set.
    /// As Kafka: a bounded `queued.max.request.bytes` must hold at least one
    /// request of the largest size.
    pub fn check(&self) -> Result<(), String> {
        if self.queued_max_request_bytes != -1
            && (self.queued_max_request_bytes as u64) < self.socket_request_max_bytes as u64
        {
            return Err(format!(
                "queued.max.request.bytes ({}) must be -1 or at least socket.request.max.bytes ({})",
                self.queued_max_request_bytes, self.socket_request_max_bytes
            ));
        }
        Ok(())
    }

    /// The request memory one of `shards` shards may hold: its even share
    /// of `queued.max.request.bytes` (None: unbounded). A frame larger than
    /// the share is still read, alone, when the shard holds no other
    /// request (server/connection.rs), so one shard holds at most
    /// max(share, socket.request.max.bytes).
    pub fn queued_request_bytes_per_shard(&self, shards: usize) -> Option<u64> {
        (self.queued_max_request_bytes >= 0)
            .then(|| self.queued_max_request_bytes as u64 / shards.max(1) as u64)
    }

    /// How long a connection may stay silent (None: for ever).
    pub fn connections_max_idle(&self) -> Option<Duration> {
        (self.connections_max_idle_ms >= 0)
            .then(|| Duration::from_millis(self.connections_max_idle_ms as u64))
    }

    /// The most connections `ip` may have open at once.
    pub fn max_connections_for(&self, ip: std::net::IpAddr) -> usize {
        let limit = self
            .max_connections_per_ip_overrides
            .limits
            .get(&ip)
            .copied()
            .unwrap_or(self.max_connections_per_ip);
        limit.max(0) as usize
    }

    /// The replication factor `__consumer_offsets` gets when it is created
    /// with `live_brokers` brokers up: the configured one, capped to the
    /// live brokers so a single node (or a cluster still coming up) can
    /// create it, as Kafka does.
    pub fn offsets_topic_replicas(&self, live_brokers: usize) -> i16 {
        let live = i16::try_from(live_brokers).unwrap_or(i16::MAX).max(1);
        self.offsets_topic_replication_factor.min(live)
    }

    /// These defaults with dynamic broker configs applied on top. Stored
    /// dynamic configs were validated when set; one that no longer parses
    /// is skipped.
    pub fn with_dynamic(&self, dynamic: &BTreeMap<String, String>) -> BrokerDefaults {
        let mut effective = self.clone();
        for (key, value) in dynamic {
            if effective.set(key, value).is_err() {
                log::warn!("ignoring stored dynamic broker config {key}={value}");
            }
        }
        effective
    }
}

/// `max.connections.per.ip.overrides`: `host:count` pairs, comma separated,
/// where a host is an IP address or a name resolved once at start (all its
/// addresses get the count), as Kafka reads it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IpOverrides {
    /// The value as written, for DescribeConfigs.
    pub written: String,
    pub limits: BTreeMap<std::net::IpAddr, i32>,
}

impl IpOverrides {
    fn parse(value: &str) -> Result<IpOverrides, String> {
        use std::net::ToSocketAddrs;
        let mut limits = BTreeMap::new();
        let entries: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        if entries.len() > limits::CONNECTION_IP_OVERRIDES_MAX {
            return Err(format!(
                "at most {} entries",
                limits::CONNECTION_IP_OVERRIDES_MAX
            ));
        }
        for entry in entries {
            let (host, count) = entry
                .rsplit_once(':')
                .ok_or_else(|| format!("{entry:?} is not host:count"))?;
            let count: i32 = parse_in(count, 0, i32::MAX)?;
            let host = host.trim().trim_start_matches('[').trim_end_matches(']');
            let addrs: Vec<std::net::IpAddr> = match host.parse() {
                Ok(ip) => vec![ip],
                Err(_) => (host, 0)
                    .to_socket_addrs()
                    .map_err(|e| format!("cannot resolve {host:?}: {e}"))?
                    .map(|a| a.ip())
                    .collect(),
            };
            for ip in addrs {
                limits.insert(ip, count);
            }
        }
        Ok(IpOverrides {
            written: value.trim().to_string(),
            limits,
        })
    }
}

/// The per-topic configs corelog honours, resolved against the broker defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub index_interval_bytes: u32,
    pub max_message_bytes: u32,
    pub timestamp_type_log_append: bool,
    /// message.timestamp.before.max.ms / after.max.ms: how far a CreateTime
    /// record timestamp may lie before / after the broker's clock.
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    /// cleanup.policy contains `delete`: retention by time and size applies.
    pub cleanup_delete: bool,
    /// cleanup.policy contains `compact`: the log cleaner keeps the newest
    /// record per key; produce without a key is refused.
    pub cleanup_compact: bool,
    /// delete.retention.ms: how long a tombstone survives compaction.
    pub delete_retention_ms: i64,
    /// min.compaction.lag.ms: records younger than this are not compacted.
    pub min_compaction_lag_ms: i64,
    /// min.cleanable.dirty.ratio: dirty share of the log that starts a clean.
    pub min_cleanable_dirty_ratio: f64,
    /// compression.type: None keeps the producer's codec (`producer`), a
    /// codec makes the broker store batches in it.
    pub compression: Option<crate::protocol::batch::Codec>,
    /// min.insync.replicas: the ISR size `acks=all` needs.
    pub min_insync_replicas: i32,
    /// unclean.leader.election.enable: a replica outside the ISR may lead.
    pub unclean_leader_election_enable: bool,
}

impl TopicConfig {
    /// Resolves a topic's overrides against the broker defaults: each topic
    /// config takes the topic's override, else the broker config it is a
    /// synonym of, else its own default (all from the key table). The
    /// overrides were validated by [`validate_topic_config`] when stored; one
    /// that no longer parses keeps the default rather than failing start-up.
    pub fn resolve(defaults: &BrokerDefaults, overrides: &BTreeMap<String, String>) -> TopicConfig {
        let mut config = TopicConfig::unset();
        for key in keys::topic_keys() {
            let value = overrides
                .get(key.name)
                .and_then(|v| key.parse(v).ok())
                .unwrap_or_else(|| TopicConfig::inherited(defaults, key));
            key.set_topic(&mut config, &value);
        }
        config
    }

    /// Every field zero or empty; [`TopicConfig::resolve`] sets them all.
    fn unset() -> TopicConfig {
        TopicConfig {
            segment_bytes: 0,
            segment_ms: 0,
            retention_ms: 0,
            retention_bytes: 0,
            index_interval_bytes: 0,
            max_message_bytes: 0,
            timestamp_type_log_append: false,
            timestamp_before_max_ms: 0,
            timestamp_after_max_ms: 0,
            cleanup_delete: false,
            cleanup_compact: false,
            delete_retention_ms: 0,
            min_compaction_lag_ms: 0,
            min_cleanable_dirty_ratio: 0.0,
            compression: None,
            min_insync_replicas: 0,
            unclean_leader_election_enable: false,
        }
    }

    /// A topic config's value without an override: its broker synonym's,
    /// else its own default.
    fn inherited(defaults: &BrokerDefaults, key: &keys::ConfigKey) -> keys::Value {
        key.synonyms
            .first()
            .and_then(|name| keys::broker_key(name))
            .and_then(|broker| broker.get_broker(defaults))
            .or_else(|| key.default_value())
            .expect("the key table gives every topic config a default")
    }

    /// The value Kafka would show for `key` on a topic without an override.
    pub fn default_value(defaults: &BrokerDefaults, key: &str) -> Option<String> {
        let key = keys::topic_key(key)?;
        Some(TopicConfig::inherited(defaults, key).to_string())
    }
}

/// Checks one topic config from a client. Unknown names and values corelog
/// cannot honour yet are refused (INVALID_CONFIG) rather than stored and ignored.
pub fn validate_topic_config(key: &str, value: &str) -> Result<(), String> {
    match keys::topic_key(key) {
        Some(config) => config.parse(value).map(drop),
        None => Err(format!("unknown topic config {key:?}")),
    }
}
pub fn timestamp_type_name(log_append: bool) -> &'static str {
    if log_append {
        "LogAppendTime"
    } else {
        "CreateTime"
    }
}

fn parse_in<T>(value: &str, min: T, max: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let v: T = value
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} is not a number"))?;
    if v < min || v > max {
        return Err(format!("{v} is outside [{min}, {max}]"));
    }
    Ok(v)
}

/// Per-core tuning, from a TOML profile under `tuning/`. Every knob has a
/// default that suits a small shared machine.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tuning {
    /// Cores that run shards, one shard each. Empty: one shard per online core.
    pub cores: Vec<usize>,
    /// Memory each executor registers with io_uring for DMA buffers.
    pub io_memory_bytes: usize,
    /// io_uring submission queue depth per executor.
    pub ring_depth: usize,
    /// Busy-poll before parking a reactor; 0 parks at once (best on shared cores).
    pub spin_before_park_us: u64,
    /// How long a task queue runs before it must yield to a more urgent one.
    pub preempt_timer_ms: u64,
    /// Depth of every cross-shard channel, in messages.
    pub mesh_channel_depth: usize,
    /// How long the shard's committer may wait, once woken by an append, to
    /// gather more appends into the same write and fdatasync (microseconds).
    /// 0 starts a round as soon as the previous one ends.
    pub group_commit_window_us: u64,
    /// SO_SNDBUF set on every accepted connection (bytes); 0 keeps the
    /// kernel's default and its auto-tuning.
    pub socket_send_buffer_bytes: usize,
    /// SO_RCVBUF set on every accepted connection (bytes); 0 keeps the
    /// kernel's default and its auto-tuning.
    pub socket_receive_buffer_bytes: usize,
    /// Bytes a fetch that goes to disk reads beyond what it asked for; kept
    /// (within `shard_memory_bytes`) to serve the partition's next fetches.
    pub fetch_read_ahead_bytes: usize,
    /// Memory each shard may spend on its partitions' tail caches and
    /// read-ahead windows (bytes). 0 turns both off: every fetch reads disk.
    pub shard_memory_bytes: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            cores: Vec::new(),
            io_memory_bytes: 10 * 1024 * 1024,
            ring_depth: 128,
            spin_before_park_us: 0,
            preempt_timer_ms: 10,
            mesh_channel_depth: limits::MESH_CHANNEL_DEPTH,
            group_commit_window_us: 0,
            socket_send_buffer_bytes: 0,
            socket_receive_buffer_bytes: 0,
            fetch_read_ahead_bytes: 4 * 1024 * 1024,
            shard_memory_bytes: 64 * 1024 * 1024,
        }
    }
}

impl Tuning {
    pub fn load(path: &Path) -> Result<Tuning, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read tuning profile {}: {e}", path.display()))?;
        let tuning: Tuning =
            toml::from_str(&text).map_err(|e| format!("tuning profile {}: {e}", path.display()))?;
        tuning.validate()?;
        Ok(tuning)
    }

    fn validate(&self) -> Result<(), String> {
        if self.cores.len() > limits::SHARDS_MAX {
            return Err(format!("tuning: at most {} cores", limits::SHARDS_MAX));
        }
        if !(1024 * 1024..=1024 * 1024 * 1024).contains(&self.io_memory_bytes) {
            return Err("tuning: io_memory_bytes must be in [1 MiB, 1 GiB]".into());
        }
        if !self.ring_depth.is_power_of_two() || !(16..=4096).contains(&self.ring_depth) {
            return Err("tuning: ring_depth must be a power of two in [16, 4096]".into());
        }
        if !(limits::CONNECTION_REQUESTS_IN_FLIGHT_MAX..=65_536).contains(&self.mesh_channel_depth)
        {
            return Err(format!(
                "tuning: mesh_channel_depth must be in [{}, 65536]",
                limits::CONNECTION_REQUESTS_IN_FLIGHT_MAX
            ));
        }
        if self.preempt_timer_ms == 0 || self.preempt_timer_ms > 1000 {
            return Err("tuning: preempt_timer_ms must be in [1, 1000]".into());
        }
        if self.group_commit_window_us > limits::GROUP_COMMIT_WINDOW_US_MAX {
            return Err(format!(
                "tuning: group_commit_window_us must be in [0, {}]",
                limits::GROUP_COMMIT_WINDOW_US_MAX
            ));
        }
        for (key, value) in [
            ("socket_send_buffer_bytes", self.socket_send_buffer_bytes),
            (
                "socket_receive_buffer_bytes",
                self.socket_receive_buffer_bytes,
            ),
        ] {
            let range = limits::SOCKET_BUFFER_BYTES_MIN..=limits::SOCKET_BUFFER_BYTES_MAX;
            if value != 0 && !range.contains(&value) {
                return Err(format!(
                    "tuning: {key} must be 0 (kernel default) or in [{}, {}]",
                    range.start(),
                    range.end()
                ));
            }
        }
        if self.shard_memory_bytes > limits::SHARD_MEMORY_BYTES_MAX {
            return Err(format!(
                "tuning: shard_memory_bytes must be in [0, {}]",
                limits::SHARD_MEMORY_BYTES_MAX
            ));
        }
        // A window bigger than half the budget would leave no room for the
        // tail caches or for a second reading partition.
        if self.fetch_read_ahead_bytes > limits::FETCH_READ_AHEAD_BYTES_MAX {
            return Err(format!(
                "tuning: fetch_read_ahead_bytes must be in [0, {}]",
                limits::FETCH_READ_AHEAD_BYTES_MAX
            ));
        }
        if self.fetch_read_ahead_bytes > self.shard_memory_bytes / 2 {
            return Err(
                "tuning: fetch_read_ahead_bytes must be at most half of shard_memory_bytes".into(),
            );
        }
        Ok(())
    }

    pub fn group_commit_window(&self) -> Duration {
        Duration::from_micros(self.group_commit_window_us)
    }

    pub fn preempt_timer(&self) -> Duration {
        Duration::from_millis(self.preempt_timer_ms)
    }
}

/// One controller quorum voter (`controller.quorum.voters`: `id@host:port`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Voter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

/// One listener (`listeners`, `advertised.listeners`: `NAME://host:port`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// This node's place in a cluster, KRaft style.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// process.roles contains broker: the node serves clients' partitions.
    pub broker_role: bool,
    /// process.roles contains controller: the node is a metadata quorum voter.
    pub controller_role: bool,
    /// Address this node's CONTROLLER listener binds (controllers only).
    pub controller_listen: Option<SocketAddr>,
    /// controller.quorum.voters (or controller.quorum.bootstrap.servers
    /// resolved to voters); empty = single node on embedded defaults, its
    /// own quorum of one.
    pub voters: Vec<Voter>,
    /// The client listener clients are told about (advertised.listeners,
    /// else listeners).
    pub advertised: Listener,
}

impl ClusterConfig {
    /// A single node that is both broker and controller, its own quorum of
    /// one, advertising `host` and `port` to clients: what `corelog serve`
    /// runs without a config file.
    pub fn single_node(host: String, port: u16) -> ClusterConfig {
        ClusterConfig {
            broker_role: true,
            controller_role: true,
            controller_listen: None,
            voters: Vec::new(),
            advertised: Listener {
                name: "PLAINTEXT".into(),
                host,
                port,
            },
        }
    }

    /// Whether this node is configured with a controller quorum (so its
    /// storage must be formatted with the cluster's id before it starts).
    pub fn has_quorum(&self) -> bool {
        !self.voters.is_empty()
    }

    /// Kafka's rules between roles, node id and voters.
    fn check_quorum(&self, node_id: i32) -> Result<(), String> {
        let listed = self.voters.iter().find(|v| v.id == node_id);
        if self.controller_role && self.has_quorum() {
            let Some(own) = listed else {
                return Err(format!(
                    "process.roles contains controller, so node.id {node_id} must be one of \
                     controller.quorum.voters"
                ));
            };
            if let Some(bind) = self.controller_listen {
                if bind.port() != own.port {
                    log::warn!(
                        "controller.quorum.voters gives node {node_id} port {} but its \
                         controller listener binds port {}",
                        own.port,
                        bind.port()
                    );
                }
            }
        }
        if !self.controller_role {
            if !self.has_quorum() {
                return Err("process.roles=broker needs the controllers: set \
                            controller.quorum.voters=id@host:port,..."
                    .into());
            }
            if listed.is_some() {
                return Err(format!(
                    "node.id {node_id} is listed in controller.quorum.voters but \
                     process.roles does not contain controller"
                ));
            }
        }
        Ok(())
    }
}

/// The one validated configuration every shard runs with.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the client listener binds (every shard, SO_REUSEPORT).
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Shards to run; each one a glommio executor, pinned when cores are known.
    pub shards: usize,
    pub tuning: Tuning,
    pub broker: BrokerDefaults,
    pub cluster: ClusterConfig,
    /// The cluster id from this node's `meta.properties`, filled in at start
    /// once the storage identity is checked (None until then).
    pub cluster_id: Option<String>,
}

/// Everything `corelog serve` takes from its command line.
#[derive(Clone, Debug, Default)]
pub struct ServeArgs {
    pub config: Option<PathBuf>,
    pub tuning: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub advertised_host: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub shards: Option<usize>,
    pub overrides: Vec<String>,
}

/// What a server file sets, whichever its format (properties or TOML).
/// Flags go over it; it goes over the embedded defaults.
#[derive(Debug, Default)]
pub struct FileSettings {
    /// Where the client listener binds.
    pub listen: Option<SocketAddr>,
    /// The client listener's name and host as `listeners` writes them.
    pub listener_name: Option<String>,
    pub listener_host: Option<String>,
    /// What clients are told (advertised.listeners, TOML advertised_host).
    pub advertised_host: Option<String>,
    pub advertised_port: Option<u16>,
    pub data_dir: Option<PathBuf>,
    pub shards: Option<usize>,
    pub tuning: Option<PathBuf>,
    /// Broker configs by Kafka name, in the order they apply.
    pub broker: Vec<(String, String)>,
    pub roles: Option<Roles>,
    pub controller_listen: Option<SocketAddr>,
    pub voters: Vec<Voter>,
}

impl FileSettings {
    /// Reads `--config FILE`: TOML when the name ends in `.toml`, else
    /// Kafka's properties format. Keys a properties file sets that corelog
    /// does not use are reported in one warning.
    pub fn load(path: &Path) -> Result<FileSettings, String> {
        let text = read_config_file(path)?;
        let in_file = |e: String| format!("{}: {e}", path.display());
        if path.extension().is_some_and(|e| e == "toml") {
            let file: ServerFile = toml::from_str(&text).map_err(|e| in_file(e.to_string()))?;
            return Ok(file.into_settings());
        }
        let entries = properties::parse_properties(&text).map_err(in_file)?;
        let (settings, ignored) =
            properties::settings_from_properties(&entries).map_err(in_file)?;
        if !ignored.is_empty() {
            log::warn!(
                "{}: ignoring {} config(s) corelog does not use: {}",
                path.display(),
                ignored.len(),
                ignored.join(", ")
            );
        }
        Ok(settings)
    }
}

/// A config file's text, bounded in size; a file that is not UTF-8 is
/// read as ISO-8859-1, java.util.Properties' own encoding.
fn read_config_file(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(cannot)?
        .take(limits::CONFIG_FILE_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > limits::CONFIG_FILE_BYTES_MAX {
        return Err(format!(
            "{} is larger than {} bytes",
            path.display(),
            limits::CONFIG_FILE_BYTES_MAX
        ));
    }
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => encoding_rs::WINDOWS_1252
            .decode(e.as_bytes())
            .0
            .into_owned(),
    })
}

/// The TOML server file (`--config FILE.toml`): the same settings as the
/// flags, and Kafka broker configs by their `server.properties` names.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerFile {
    pub listen: Option<SocketAddr>,
    pub advertised_host: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub shards: Option<usize>,
    pub tuning: Option<PathBuf>,
    pub kafka: BTreeMap<String, toml::Value>,
}

impl ServerFile {
    fn into_settings(self) -> FileSettings {
        let broker = self
            .kafka
            .into_iter()
            .map(|(key, value)| {
                let value = match value {
                    toml::Value::String(s) => s,
                    other => other.to_string(),
                };
                (key, value)
            })
            .collect();
        FileSettings {
            listen: self.listen,
            advertised_host: self.advertised_host,
            data_dir: self.data_dir,
            shards: self.shards,
            tuning: self.tuning,
            broker,
            ..FileSettings::default()
        }
    }
}

impl Config {
    /// Folds flags over the file over the embedded defaults, then validates.
    pub fn build(args: &ServeArgs) -> Result<Config, String> {
        let file = match &args.config {
            Some(path) => FileSettings::load(path)?,
            None => FileSettings::default(),
        };
        let tuning = match args.tuning.as_ref().or(file.tuning.as_ref()) {
            Some(path) => Tuning::load(path)?,
            None => Tuning::default(),
        };
        let mut broker = BrokerDefaults::default();
        for (key, value) in &file.broker {
            broker.set(key, value).map_err(|e| match &args.config {
                Some(path) => format!("{}: {e}", path.display()),
                None => e,
            })?;
        }
        for pair in &args.overrides {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("--override expects key=value, got {pair:?}"))?;
            broker.set(key.trim(), value.trim())?;
        }
        broker.check()?;
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9092)));
        let shards = shard_count(args.shards.or(file.shards), &tuning)?;
        let advertised_host = match args.advertised_host.clone().or(file.advertised_host) {
            Some(host) => host,
            None if args.listen.is_some() => listen.ip().to_string(),
            None => advertised_from_listener(file.listener_host.as_deref(), listen)?,
        };
        let roles = file.roles.unwrap_or(Roles::BOTH);
        let cluster = ClusterConfig {
            broker_role: roles.broker,
            controller_role: roles.controller,
            controller_listen: file.controller_listen,
            voters: file.voters,
            advertised: Listener {
                name: file.listener_name.unwrap_or_else(|| "PLAINTEXT".into()),
                host: advertised_host,
                port: file.advertised_port.unwrap_or(listen.port()),
            },
        };
        cluster.check_quorum(broker.node_id)?;
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("data"));
        // Absolute: glommio's directory sync fails with EBADF on a relative
        // path, which made every topic creation under the default `data`
        // fail with KAFKA_STORAGE_ERROR.
        let data_dir = std::path::absolute(&data_dir)
            .map_err(|e| format!("data directory {}: {e}", data_dir.display()))?;
        Ok(Config {
            listen,
            cluster,
            cluster_id: None,
            data_dir,
            shards,
            tuning,
            broker,
        })
    }
}

/// Shards asked for (flag or file), else one per tuning core, else one per
/// online core.
fn shard_count(asked: Option<usize>, tuning: &Tuning) -> Result<usize, String> {
    let online = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let shards = asked.unwrap_or(if tuning.cores.is_empty() {
        online
    } else {
        tuning.cores.len()
    });
    if shards == 0 || shards > limits::SHARDS_MAX {
        return Err(format!("shards must be in [1, {}]", limits::SHARDS_MAX));
    }
    if !tuning.cores.is_empty() && tuning.cores.len() != shards {
        return Err(format!(
            "the tuning profile names {} cores but {shards} shards were asked for",
            tuning.cores.len()
        ));
    }
    Ok(shards)
}

/// The host clients are told when advertised.listeners does not name one:
/// the host `listeners` wrote, or this machine's host name for an empty
/// host (as Kafka does). A wildcard address cannot be advertised.
fn advertised_from_listener(written: Option<&str>, listen: SocketAddr) -> Result<String, String> {
    match written {
        None => Ok(listen.ip().to_string()),
        Some("") => Ok(machine_host_name()),
        Some(host)
            if host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_unspecified()) =>
        {
            Err(format!(
                "listeners binds {host}, which clients cannot connect to: set \
                 advertised.listeners to the address clients should use"
            ))
        }
        Some(host) => Ok(host.to_string()),
    }
}

fn machine_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_use_kafka_names_and_reject_bad_values() {
        let mut args = ServeArgs {
            overrides: vec![
                "auto.create.topics.enable=false".into(),
                "num.partitions=8".into(),
            ],
            shards: Some(2),
            ..ServeArgs::default()
        };
        let config = Config::build(&args).unwrap();
        assert!(config.data_dir.is_absolute() && config.data_dir.ends_with("data"));
        assert!(!config.broker.auto_create_topics_enable);
        assert_eq!(config.broker.num_partitions, 8);
        assert_eq!(config.listen.port(), 9092);
        args.overrides = vec!["num.partitions=0".into()];
        assert!(Config::build(&args).unwrap_err().contains("num.partitions"));
        args.overrides = vec!["no.such.key=1".into()];
        assert!(Config::build(&args).is_err());
    }

    #[test]
    fn topic_configs_resolve_over_defaults() {
        let defaults = BrokerDefaults::default();
        let mut overrides = BTreeMap::new();
        overrides.insert("max.message.bytes".to_string(), "1024".to_string());
        overrides.insert(
            "message.timestamp.type".to_string(),
            "LogAppendTime".to_string(),
        );
        let config = TopicConfig::resolve(&defaults, &overrides);
        assert_eq!(config.max_message_bytes, 1024);
        assert!(config.timestamp_type_log_append);
        assert_eq!(config.segment_bytes, defaults.log_segment_bytes);
        assert!(validate_topic_config("retention.ms", "-1").is_ok());
        assert!(validate_topic_config("retention.ms", "x").is_err());
        assert!(validate_topic_config("bogus", "1").is_err());
        for ok in ["compact", "compact,delete", "delete, compact", "delete"] {
            assert!(validate_topic_config("cleanup.policy", ok).is_ok(), "{ok}");
        }
        assert!(validate_topic_config("cleanup.policy", "compact,shred").is_err());
        assert!(validate_topic_config("cleanup.policy", "").is_err());
        assert!(validate_topic_config("compression.type", "zstd").is_ok());
        assert!(validate_topic_config("compression.type", "brotli").is_err());
        assert!(validate_topic_config("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(validate_topic_config("delete.retention.ms", "0").is_ok());
        let mut overrides = BTreeMap::new();
        overrides.insert("cleanup.policy".to_string(), "compact".to_string());
        overrides.insert("compression.type".to_string(), "zstd".to_string());
        let config = TopicConfig::resolve(&defaults, &overrides);
        assert!(config.cleanup_compact && !config.cleanup_delete);
        assert_eq!(
            config.compression,
            Some(crate::protocol::batch::Codec::Zstd)
        );
    }

    #[test]
    fn cluster_keys_have_kafka_defaults_and_round_trip() {
        let mut defaults = BrokerDefaults::default();
        for key in keys::reported_broker_keys().map(|k| k.name) {
            let value = defaults
                .get(key)
                .unwrap_or_else(|| panic!("{key} has no value"));
            defaults.set(key, &value).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(defaults.get("default.replication.factor").unwrap(), "1");
        assert_eq!(
            defaults.get("offsets.topic.replication.factor").unwrap(),
            "3"
        );
        assert_eq!(
            defaults.get("unclean.leader.election.enable").unwrap(),
            "false"
        );
        assert_eq!(defaults.get("replica.fetch.max.bytes").unwrap(), "1048576");
        assert_eq!(defaults.offsets_topic_replicas(1), 1);
        assert_eq!(defaults.offsets_topic_replicas(5), 3);
        let err = defaults.set("min.insync.replicas", "0").unwrap_err();
        assert!(err.contains("min.insync.replicas"), "{err}");
        let err = defaults
            .set("auto.leader.rebalance.enable", "yes")
            .unwrap_err();
        assert!(err.contains("auto.leader.rebalance.enable"), "{err}");
        defaults
            .set("unclean.leader.election.enable", "TRUE")
            .unwrap();
        defaults.set("min.insync.replicas", "2").unwrap();
        let topic = TopicConfig::resolve(&defaults, &BTreeMap::new());
        assert_eq!(topic.min_insync_replicas, 2);
        assert!(topic.unclean_leader_election_enable);
        let mut overrides = BTreeMap::new();
        overrides.insert("min.insync.replicas".to_string(), "3".to_string());
        overrides.insert(
            "unclean.leader.election.enable".to_string(),
            "false".to_string(),
        );
        let topic = TopicConfig::resolve(&defaults, &overrides);
        assert_eq!(topic.min_insync_replicas, 3);
        assert!(!topic.unclean_leader_election_enable);
        assert!(validate_topic_config("min.insync.replicas", "0").is_err());
        assert!(validate_topic_config("unclean.leader.election.enable", "maybe").is_err());
        assert_eq!(
            TopicConfig::default_value(&defaults, "min.insync.replicas").unwrap(),
            "2"
        );
    }

    #[test]
    fn connection_keys_have_kafka_names_defaults_and_bounds() {
        let defaults = BrokerDefaults::default();
        assert_eq!(
            defaults.get("socket.request.max.bytes").unwrap(),
            "104857600"
        );
        assert_eq!(defaults.get("connections.max.idle.ms").unwrap(), "600000");
        assert_eq!(defaults.get("max.connections").unwrap(), "2147483647");
        assert_eq!(
            defaults.get("max.connections.per.ip").unwrap(),
            "2147483647"
        );
        assert_eq!(
            defaults.get("max.connections.per.ip.overrides").unwrap(),
            ""
        );
        // Bounded, unlike Kafka's -1: 256 MiB split between the shards.
        assert_eq!(defaults.queued_request_bytes_per_shard(2), Some(128 << 20));
        let mut b = BrokerDefaults::default();
        b.set("queued.max.request.bytes", "-1").unwrap();
        assert_eq!(b.queued_request_bytes_per_shard(4), None);
        for (key, bad) in [
            ("socket.request.max.bytes", "104857601"),
            ("socket.request.max.bytes", "10"),
            ("queued.max.request.bytes", "0"),
            ("queued.max.request.bytes", "-2"),
            ("connections.max.idle.ms", "5"),
            ("max.connections", "-1"),
            ("max.connections.per.ip.overrides", "127.0.0.1"),
            ("max.connections.per.ip.overrides", "127.0.0.1:x"),
        ] {
            let err = b.set(key, bad).unwrap_err();
            assert!(err.contains(key), "{key}={bad}: {err}");
        }
        // As Kafka: a bounded pool must hold one request of the largest size.
        b.set("queued.max.request.bytes", "2097152").unwrap();
        b.set("socket.request.max.bytes", "4194304").unwrap();
        assert!(b.check().unwrap_err().contains("queued.max.request.bytes"));
        b.set("socket.request.max.bytes", "1048576").unwrap();
        b.check().unwrap();
        b.set("connections.max.idle.ms", "-1").unwrap();
        assert_eq!(b.connections_max_idle(), None);
        // Overrides by address, else the per-ip limit.
        b.set("max.connections.per.ip", "10").unwrap();
        b.set(
            "max.connections.per.ip.overrides",
            "127.0.0.1:200, localhost:7,[::1]:0",
        )
        .unwrap();
        assert_eq!(b.max_connections_for("127.0.0.1".parse().unwrap()), 7);
        assert_eq!(b.max_connections_for("::1".parse().unwrap()), 0);
        assert_eq!(b.max_connections_for("10.1.2.3".parse().unwrap()), 10);
        b.set("max.connections.per.ip.overrides", "192.0.2.1:0")
            .unwrap();
        assert_eq!(b.max_connections_for("192.0.2.1".parse().unwrap()), 0);
        // And through server files: properties (with the single-node
        // listeners) and TOML.
        let config = build_from(
            "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093\n\
             controller.listener.names=CONTROLLER\n\
             socket.request.max.bytes=1048576\nqueued.max.request.bytes=8388608\n\
             connections.max.idle.ms=30000\nmax.connections.per.ip=3\n",
            "s.properties",
            ServeArgs::default(),
        )
        .unwrap();
        assert_eq!(config.broker.max_connections_per_ip, 3);
        assert_eq!(config.broker.socket_request_max_bytes, 1 << 20);
        assert_eq!(
            config.broker.queued_request_bytes_per_shard(1),
            Some(8 << 20)
        );
        assert_eq!(
            config.broker.connections_max_idle(),
            Some(Duration::from_secs(30))
        );
        let err = build_from(
            "[kafka]\n\"queued.max.request.bytes\" = 1048576\n",
            "s.toml",
            ServeArgs::default(),
        )
        .unwrap_err();
        assert!(err.contains("socket.request.max.bytes"), "{err}");
    }

    fn build_from(text: &str, name: &str, args: ServeArgs) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        Config::build(&ServeArgs {
            config: Some(path),
            shards: Some(1),
            ..args
        })
    }

    const NODE1: &str = "process.roles=broker,controller\n\
                         node.id=1\n\
                         controller.quorum.voters=1@127.0.0.1:9193,2@127.0.0.1:9194\n\
                         listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9193\n\
                         controller.listener.names=CONTROLLER\n\
                         log.dirs=/tmp/corelog-node1\n\
                         default.replication.factor=2\n\
                         min.insync.replicas=2\n";

    #[test]
    fn properties_file_builds_a_cluster_config_and_flags_win() {
        let config = build_from(NODE1, "node1.properties", ServeArgs::default()).unwrap();
        assert_eq!(config.broker.node_id, 1);
        assert_eq!(config.broker.default_replication_factor, 2);
        assert_eq!(config.broker.min_insync_replicas, 2);
        assert_eq!(config.listen, "127.0.0.1:9092".parse().unwrap());
        assert_eq!(config.data_dir, PathBuf::from("/tmp/corelog-node1"));
        let cluster = &config.cluster;
        assert!(cluster.broker_role && cluster.controller_role);
        assert_eq!(
            cluster.controller_listen,
            Some("127.0.0.1:9193".parse().unwrap())
        );
        assert_eq!(cluster.voters.len(), 2);
        assert_eq!(
            cluster.advertised,
            Listener {
                name: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 9092
            }
        );
        assert!(config.broker.explicit.contains_key("min.insync.replicas"));

        let flags = ServeArgs {
            listen: Some("127.0.0.1:9999".parse().unwrap()),
            data_dir: Some(PathBuf::from("elsewhere")),
            overrides: vec!["min.insync.replicas=1".into()],
            ..ServeArgs::default()
        };
        let config = build_from(NODE1, "node1.properties", flags).unwrap();
        assert_eq!(config.listen.port(), 9999);
        assert_eq!(config.cluster.advertised.port, 9999);
        assert!(config.data_dir.is_absolute() && config.data_dir.ends_with("elsewhere"));
        assert_eq!(config.broker.min_insync_replicas, 1);
    }

    #[test]
    fn properties_file_errors_name_the_key() {
        let bad_value = format!("{NODE1}num.partitions=lots\n");
        let err = build_from(&bad_value, "n.properties", ServeArgs::default()).unwrap_err();
        assert!(
            err.contains("num.partitions") && err.contains("n.properties"),
            "{err}"
        );
        let not_a_voter = NODE1.replace("node.id=1", "node.id=7");
        let err = build_from(&not_a_voter, "n.properties", ServeArgs::default()).unwrap_err();
        assert!(err.contains("node.id 7"), "{err}");
        let broker_only = "process.roles=broker\nlisteners=PLAINTEXT://127.0.0.1:9092\n";
        let err = build_from(broker_only, "n.properties", ServeArgs::default()).unwrap_err();
        assert!(err.contains("controller.quorum.voters"), "{err}");
        let wildcard = "listeners=PLAINTEXT://0.0.0.0:9092,CONTROLLER://127.0.0.1:9093\n\
                        controller.listener.names=CONTROLLER\n";
        let err = build_from(wildcard, "n.properties", ServeArgs::default()).unwrap_err();
        assert!(err.contains("advertised.listeners"), "{err}");
        let empty_host = "listeners=PLAINTEXT://:9092,CONTROLLER://:9093\n\
                          controller.listener.names=CONTROLLER\n";
        let config = build_from(empty_host, "n.properties", ServeArgs::default()).unwrap();
        assert!(config.listen.ip().is_unspecified());
        assert_eq!(config.cluster.advertised.host, machine_host_name());
    }

    #[test]
    fn toml_server_files_still_work() {
        let text = "listen = \"127.0.0.1:9300\"\nadvertised_host = \"h\"\n\
                    [kafka]\n\"num.partitions\" = 4\n";
        let config = build_from(text, "server.toml", ServeArgs::default()).unwrap();
        assert_eq!(config.listen.port(), 9300);
        assert_eq!(config.broker.num_partitions, 4);
        assert_eq!(config.cluster.advertised.host, "h");
        assert!(config.cluster.voters.is_empty());
        let err = build_from("[kafka]\nbogus = 1\n", "s.toml", ServeArgs::default()).unwrap_err();
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn tuning_knobs_are_validated_with_their_names() {
        let bad = |text: &str, key: &str| {
            let tuning: Tuning = toml::from_str(text).unwrap();
            let e = tuning.validate().unwrap_err();
            assert!(e.contains(key), "{text}: {e}");
        };
        bad("group_commit_window_us = 100001", "group_commit_window_us");
        bad("socket_send_buffer_bytes = 100", "socket_send_buffer_bytes");
        bad(
            "socket_receive_buffer_bytes = 1073741824",
            "socket_receive_buffer_bytes",
        );
        bad(
            "shard_memory_bytes = 8388608\nfetch_read_ahead_bytes = 8388608",
            "fetch_read_ahead_bytes",
        );
        bad(
            "fetch_read_ahead_bytes = 1073741824\nshard_memory_bytes = 4294967296",
            "fetch_read_ahead_bytes",
        );
        // 0 turns the caches (and so the read-ahead) off.
        let off: Tuning =
            toml::from_str("shard_memory_bytes = 0\nfetch_read_ahead_bytes = 0").unwrap();
        off.validate().unwrap();
        let tuned: Tuning = toml::from_str(
            "group_commit_window_us = 500\nsocket_send_buffer_bytes = 1048576\n\
             socket_receive_buffer_bytes = 0",
        )
        .unwrap();
        tuned.validate().unwrap();
        assert_eq!(tuned.group_commit_window(), Duration::from_micros(500));
        assert!(toml::from_str::<Tuning>("group_commit_window = 1").is_err());
    }

    #[test]
    fn every_shipped_tuning_profile_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tuning");
        let mut loaded = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Tuning::load(&path).unwrap_or_else(|e| panic!("{e}"));
                loaded += 1;
            }
        }
        assert!(loaded >= 2);
    }
}
