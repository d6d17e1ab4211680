//! Kafka's broker configs (`server.properties` names) as one typed struct,
//! filled from the key table, and the rules between them.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{keys, parse_in, ConfigError, ValueError};
use crate::limits;

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
    /// Largest response to a consumer's fetch, whatever it asks
    /// (`fetch.max.bytes`, KIP-541).
    pub fetch_max_bytes: u32,
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
    /// How long a committed offset is kept once its group has no members
    /// (from the commit for a group that never had any), unless the commit
    /// named its own retention (OffsetCommit v2-v4).
    pub offsets_retention_ms: i64,
    /// How often the coordinator looks for expired offsets.
    pub offsets_retention_check_interval_ms: u64,
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
    /// Incremental fetch sessions (KIP-227) the node keeps, split evenly
    /// between the shards (`max.incremental.fetch.session.cache.slots`).
    pub max_incremental_fetch_session_cache_slots: usize,
    /// Where the node's HTTP listener (health, readiness, metrics) binds,
    /// on shard 0; none when `http.listeners` is empty.
    pub http_listener: HttpListener,
    /// The web console and its JSON admin API on the HTTP listener
    /// (`http.console.enable`).
    pub http_console_enable: bool,
    /// The console shows but changes nothing: its API refuses every
    /// changing call (`http.console.read.only`, `serve --read-only`).
    pub http_console_read_only: bool,
    /// Partitions whose families one metrics scrape exports (0: none).
    pub metrics_partition_limit: usize,
    /// Whether requests and storage operations are recorded for /metrics
    /// (`metrics.enabled`; off only to measure what recording costs).
    pub metrics_enabled: bool,
    /// `authorizer.class.name`: empty (no ACL checks) or one of Kafka's
    /// authorizers (`acl::authorizer::AUTHORIZER_CLASS_NAMES`).
    pub authorizer_class_name: String,
    /// `super.users`: `;`-separated principals that pass every ACL check.
    pub super_users: String,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_everyone_if_no_acl_found: bool,
    /// The configs that were set explicitly (file, --override or dynamic),
    /// by Kafka name: DescribeConfigs reports them with their source.
    pub explicit: BTreeMap<String, String>,
    /// The SASL mechanisms a SASL listener accepts, comma-separated
    /// (`sasl.enabled.mechanisms`).
    pub sasl_enabled_mechanisms: String,
    /// The lifetime of an authenticated SASL session; past it the client
    /// must re-authenticate (KIP-368). 0: no limit
    /// (`connections.max.reauth.ms`).
    pub connections_max_reauth_ms: i64,
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
    pub(super) fn unset() -> BrokerDefaults {
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
            fetch_max_bytes: 0,
            log_message_timestamp_type_log_append: false,
            log_message_timestamp_before_max_ms: 0,
            log_message_timestamp_after_max_ms: 0,
            log_scrub_io_max_bytes_per_second: 0,
            log_scrub_interval_ms: 0,
            log_retention_check_interval_ms: 0,
            offsets_topic_num_partitions: 0,
            offsets_retention_ms: 0,
            offsets_retention_check_interval_ms: 0,
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
            max_incremental_fetch_session_cache_slots: 0,
            http_listener: HttpListener::default(),
            http_console_enable: false,
            http_console_read_only: false,
            metrics_partition_limit: 0,
            metrics_enabled: false,
            authorizer_class_name: String::new(),
            super_users: String::new(),
            allow_everyone_if_no_acl_found: false,
            explicit: BTreeMap::new(),
            sasl_enabled_mechanisms: String::new(),
            connections_max_reauth_ms: 0,
        }
    }

    /// Applies one Kafka broker config (`server.properties` name and value):
    /// an error naming the key for an unknown key or a bad value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let config = keys::broker_key(key)
            .ok_or_else(|| ConfigError::UnknownBrokerConfig(key.to_string()))?;
        let parsed = config
            .parse(value)
            .map_err(|e| ConfigError::invalid(key, value, e))?;
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
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.queued_max_request_bytes != -1
            && (self.queued_max_request_bytes as u64) < self.socket_request_max_bytes as u64
        {
            return Err(ConfigError::QueuedBelowRequestMax {
                queued: self.queued_max_request_bytes,
                request_max: self.socket_request_max_bytes,
            });
        }
        Ok(())
    }

    /// The request memory one of `shards` shards may hold: its even share
    /// of `queued.max.request.bytes` (None: unbounded). A frame larger than
    /// the share is still read, alone, when the shard holds no other
    /// request (server/connection/reader.rs), so one shard holds at most
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
    pub(super) fn parse(value: &str) -> Result<IpOverrides, ValueError> {
        use std::net::ToSocketAddrs;
        let mut limits = BTreeMap::new();
        let entries: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        if entries.len() > limits::CONNECTION_IP_OVERRIDES_MAX {
            return Err(ValueError::TooManyEntries(
                limits::CONNECTION_IP_OVERRIDES_MAX,
            ));
        }
        for entry in entries {
            let (host, count) = entry
                .rsplit_once(':')
                .ok_or_else(|| ValueError::NotHostCount(entry.to_string()))?;
            let count: i32 = parse_in(count, 0, i32::MAX)?;
            let host = host.trim().trim_start_matches('[').trim_end_matches(']');
            let addrs: Vec<std::net::IpAddr> = match host.parse() {
                Ok(ip) => vec![ip],
                Err(_) => (host, 0)
                    .to_socket_addrs()
                    .map_err(|source| ValueError::Resolve {
                        host: host.to_string(),
                        source,
                    })?
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

/// `http.listeners`: the address of the node's HTTP listener, as written
/// and as bound. One address, of this machine: an IP address, `localhost`
/// or nothing (every address), and a port, optionally after `http://`;
/// empty turns the listener off. No names are resolved: it binds, it does
/// not connect.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HttpListener {
    /// The value as written, for DescribeConfigs.
    pub written: String,
    pub addr: Option<std::net::SocketAddr>,
}

impl HttpListener {
    pub(super) fn parse(value: &str) -> Result<HttpListener, ValueError> {
        use std::net::{IpAddr, Ipv4Addr, SocketAddr};
        let written = value.trim();
        if written.is_empty() {
            return Ok(HttpListener::default());
        }
        let wrong = || ValueError::NotHttpListener(written.to_string());
        let lower = written.to_ascii_lowercase();
        let bare = match lower.strip_prefix("http://") {
            Some(_) => &written["http://".len()..],
            None => written,
        };
        let (host, port) = bare.rsplit_once(':').ok_or_else(wrong)?;
        let port: u16 = port.parse().map_err(|_| wrong())?;
        let ip: IpAddr = match host {
            "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            _ => host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host)
                .parse()
                .map_err(|_| wrong())?,
        };
        Ok(HttpListener {
            written: written.to_string(),
            addr: Some(SocketAddr::new(ip, port)),
        })
    }
}
