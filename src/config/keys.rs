//! The one table of config keys corelog knows: every broker and topic config
//! by its Kafka name, with its type, default, bounds, whether it may change
//! at run time, its Kafka synonyms and a line of documentation.
//!
//! Everything that reads or reports a config is driven from [`KEYS`]:
//! server files and `--override` (through [`super::BrokerDefaults::set`]),
//! topic configs ([`super::TopicConfig`], [`super::validate_topic_config`]),
//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs
//! (`server/configs.rs`, `server/handlers/`), and `docs/configuration.md`
//! ([`markdown`]). The typed structs keep the values the data path reads; an
//! entry's `set` and `get` are the only code that knows which field holds it.
//!
//! A plain table, read on the main thread at start and on config requests
//! (never on the produce or fetch path); it has no state.
//!
//! Why one file of about 900 lines (over the 800 the project aims for): it
//! is one concern, the table and what reads it. A third is the [`KEYS`]
//! table, one entry per Kafka key, kept whole so that a key is added,
//! bounded and documented in one place, in Kafka's order; the rest is the
//! entry's types, the parsing and checking all entries share, the lookups
//! and the Markdown writer, none of which means anything apart from the
//! table.

use std::fmt;

use super::{BrokerDefaults, HttpListener, IpOverrides, TopicConfig, ValueError};
use crate::limits;

/// Kafka's config types, as DescribeConfigs v3+ reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Short,
    Long,
    Double,
    List,
}

impl ConfigType {
    /// Kafka's `ConfigType` code.
    pub const fn code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Short => 4,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
        }
    }

    /// Kafka's name for the type, as its documentation prints it.
    pub const fn name(self) -> &'static str {
        match self {
            ConfigType::Boolean => "boolean",
            ConfigType::String => "string",
            ConfigType::Int => "int",
            ConfigType::Short => "short",
            ConfigType::Long => "long",
            ConfigType::Double => "double",
            ConfigType::List => "list",
        }
    }
}

/// A key's default, as Kafka documents it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DefaultValue {
    /// No default: the key is unset unless given (Kafka's `null`).
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    Text(&'static str),
}

/// The values a key accepts, beyond being of its type.
#[derive(Clone, Copy, Debug)]
pub enum Valid {
    /// Any value of the type.
    Any,
    /// A whole number in [min, max].
    Range(i64, i64),
    /// -1 (meaning the word given: unbounded, never) or a whole number of
    /// at least `min`.
    MinusOneOrAtLeast(i64, &'static str),
    /// A number in [min, max].
    DoubleRange(f64, f64),
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// A non-empty comma-separated list of these words.
    ListOf(&'static [&'static str]),
    /// A format of its own, parsed by the function; the text describes it.
    Parse(fn(&str) -> Result<Value, ValueError>, &'static str),
}

/// How a broker config may change while the broker runs (Kafka's
/// DynamicBrokerConfig modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// Only in the server file or `--override`, read at start.
    ReadOnly,
    /// Also by IncrementalAlterConfigs on one broker.
    PerBroker,
    /// Also by IncrementalAlterConfigs for the cluster.
    ClusterWide,
}

impl Update {
    pub const fn name(self) -> &'static str {
        match self {
            Update::ReadOnly => "read-only",
            Update::PerBroker => "per-broker",
            Update::ClusterWide => "cluster-wide",
        }
    }
}

/// What a key is and which typed field holds its value.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// A broker config held in [`BrokerDefaults`]. `get` is None for a key
    /// that is another's alias or coarser unit (`broker.id`,
    /// `log.retention.hours`): it sets the other's field and is not
    /// reported on its own.
    Broker {
        update: Update,
        set: fn(&mut BrokerDefaults, &Value),
        get: Option<fn(&BrokerDefaults) -> Value>,
    },
    /// A topic config held in [`TopicConfig`]; it defaults to its first
    /// synonym when that is a broker config corelog has.
    Topic { set: fn(&mut TopicConfig, &Value) },
    /// A node config read by `config/properties.rs` from a server file
    /// (roles, listeners, quorum, data directory); static.
    Node,
    /// A Kafka broker config a server file may carry that corelog has no use
    /// for (thread pools, socket buffers): accepted and ignored.
    Ignored,
}

/// One config key.
#[derive(Clone, Copy, Debug)]
pub struct ConfigKey {
    /// Kafka's name.
    pub name: &'static str,
    pub config_type: ConfigType,
    pub default: DefaultValue,
    pub valid: Valid,
    pub kind: Kind,
    /// Kafka's synonyms in precedence order: for a topic config the broker
    /// config it defaults to; for a broker config its coarser units
    /// (`log.retention.minutes`, `log.retention.hours`).
    pub synonyms: &'static [&'static str],
    pub doc: &'static str,
}

/// A parsed config value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    Long(i64),
    Double(f64),
    Text(String),
    IpOverrides(IpOverrides),
    HttpListener(HttpListener),
}

impl Value {
    /// The whole number; the table's parse gives one for every integer key.
    pub fn long(&self) -> i64 {
        match self {
            Value::Long(v) => *v,
            other => panic!("config value {other:?} is not a number"),
        }
    }

    pub fn bool(&self) -> bool {
        match self {
            Value::Bool(v) => *v,
            other => panic!("config value {other:?} is not a boolean"),
        }
    }

    pub fn double(&self) -> f64 {
        match self {
            Value::Double(v) => *v,
            other => panic!("config value {other:?} is not a double"),
        }
    }

    pub fn text(&self) -> &str {
        match self {
            Value::Text(v) => v,
            other => panic!("config value {other:?} is not text"),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(v) => write!(f, "{v}"),
            Value::Long(v) => write!(f, "{v}"),
            Value::Double(v) => write!(f, "{v}"),
            Value::Text(v) => f.write_str(v),
            Value::IpOverrides(v) => f.write_str(&v.written),
            Value::HttpListener(v) => f.write_str(&v.written),
        }
    }
}

impl DefaultValue {
    /// The default as a value of its key (None for `null`).
    pub fn value(self) -> Option<Value> {
        Some(match self {
            DefaultValue::Null => return None,
            DefaultValue::Bool(v) => Value::Bool(v),
            DefaultValue::Long(v) => Value::Long(v),
            DefaultValue::Double(v) => Value::Double(v),
            DefaultValue::Text(v) => Value::Text(v.to_string()),
        })
    }

    /// The default as Kafka's documentation writes it.
    pub fn text(self) -> String {
        match self {
            DefaultValue::Null => "null".into(),
            DefaultValue::Bool(v) => v.to_string(),
            DefaultValue::Long(v) => v.to_string(),
            DefaultValue::Double(v) => v.to_string(),
            DefaultValue::Text(v) => v.to_string(),
        }
    }
}

impl ConfigKey {
    /// Parses and checks a value of this key. The error says what is wrong
    /// with the value; callers name the key.
    pub fn parse(&self, value: &str) -> Result<Value, ValueError> {
        if let Valid::Parse(parse, _) = self.valid {
            return parse(value);
        }
        match self.config_type {
            ConfigType::Boolean => match value.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(ValueError::NotBoolean),
            },
            ConfigType::Int | ConfigType::Short | ConfigType::Long => {
                let v: i64 = value
                    .trim()
                    .parse()
                    .map_err(|_| ValueError::NotNumber(value.to_string()))?;
                self.check_long(v).map(|()| Value::Long(v))
            }
            ConfigType::Double => {
                let v: f64 = value
                    .trim()
                    .parse()
                    .map_err(|_| ValueError::NotNumber(value.to_string()))?;
                match self.valid {
                    Valid::DoubleRange(min, max) if !(min..=max).contains(&v) => {
                        Err(ValueError::out_of_range(v, min, max))
                    }
                    _ => Ok(Value::Double(v)),
                }
            }
            ConfigType::String | ConfigType::List => self.check_words(value),
        }
    }

    fn check_long(&self, v: i64) -> Result<(), ValueError> {
        match self.valid {
            Valid::Range(min, max) if v < min || v > max => {
                Err(ValueError::out_of_range(v, min, max))
            }
            Valid::MinusOneOrAtLeast(min, meaning) if v != -1 && v < min => {
                Err(ValueError::MinusOneOrAtLeast { min, meaning })
            }
            _ => Ok(()),
        }
    }

    fn check_words(&self, value: &str) -> Result<Value, ValueError> {
        let value = value.trim();
        match self.valid {
            Valid::OneOf(words) if !words.contains(&value) => {
                Err(ValueError::NotOneOf(either(words)))
            }
            Valid::ListOf(words) => {
                let items: Vec<&str> = value.split(',').map(str::trim).collect();
                if items.iter().any(|i| !words.contains(i)) {
                    return Err(ValueError::NotListOf(either(words)));
                }
                Ok(Value::Text(items.join(",")))
            }
            _ => Ok(Value::Text(value.to_string())),
        }
    }

    /// Stores a value this broker config parsed into its field.
    pub fn set_broker(&self, defaults: &mut BrokerDefaults, value: &Value) {
        match self.kind {
            Kind::Broker { set, .. } => set(defaults, value),
            _ => panic!("{} is not a broker config", self.name),
        }
    }

    /// This broker config's value, if it is reported on its own.
    pub fn get_broker(&self, defaults: &BrokerDefaults) -> Option<Value> {
        match self.kind {
            Kind::Broker { get: Some(get), .. } => Some(get(defaults)),
            _ => None,
        }
    }

    /// Stores a value this topic config parsed into its field.
    pub fn set_topic(&self, config: &mut TopicConfig, value: &Value) {
        match self.kind {
            Kind::Topic { set } => set(config, value),
            _ => panic!("{} is not a topic config", self.name),
        }
    }

    /// The key's default as a value (None for `null`); a key with a format
    /// of its own parses its default.
    pub fn default_value(&self) -> Option<Value> {
        match (self.valid, self.default) {
            (Valid::Parse(parse, _), DefaultValue::Text(text)) => {
                Some(parse(text).expect("the key table's defaults parse"))
            }
            (_, default) => default.value(),
        }
    }

    /// A broker config that changes at run time.
    pub fn is_dynamic_broker(&self) -> bool {
        matches!(self.kind, Kind::Broker { update, .. } if update != Update::ReadOnly)
    }

    /// Bounds and formats as the documentation states them.
    pub fn valid_text(&self) -> String {
        match self.valid {
            Valid::Any => String::new(),
            Valid::Range(min, max) => format!("[{}, {}]", bound(min), bound(max)),
            Valid::MinusOneOrAtLeast(min, meaning) => format!("-1 ({meaning}) or [{min}, ...]"),
            Valid::DoubleRange(min, max) => format!("[{min}, {max}]"),
            Valid::OneOf(words) => words.join(", "),
            Valid::ListOf(words) => format!("list of {}", words.join(", ")),
            Valid::Parse(_, what) => what.to_string(),
        }
    }
}

/// `a, b or c`.
fn either(words: &[&str]) -> String {
    match words.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// A bound, with the extremes of Kafka's types by name.
fn bound(v: i64) -> String {
    match v {
        i64::MAX => "Long.MAX".into(),
        v if v == i32::MAX as i64 => "Int.MAX".into(),
        v => v.to_string(),
    }
}

/// The key named `name` of any kind (a topic config and a broker config
/// may share a name: then the broker config).
pub fn find(name: &str) -> Option<&'static ConfigKey> {
    KEYS.iter().find(|k| k.name == name)
}

/// The broker config named `name`, if corelog takes it.
pub fn broker_key(name: &str) -> Option<&'static ConfigKey> {
    KEYS.iter()
        .find(|k| k.name == name && matches!(k.kind, Kind::Broker { .. }))
}

/// The topic config named `name`, if corelog takes it.
pub fn topic_key(name: &str) -> Option<&'static ConfigKey> {
    KEYS.iter()
        .find(|k| k.name == name && matches!(k.kind, Kind::Topic { .. }))
}

/// The broker keys DescribeConfigs reports, in table order (by name).
pub fn reported_broker_keys() -> impl Iterator<Item = &'static ConfigKey> {
    KEYS.iter()
        .filter(|k| matches!(k.kind, Kind::Broker { get: Some(_), .. }))
}

/// Every topic config, in table order (by name).
pub fn topic_keys() -> impl Iterator<Item = &'static ConfigKey> {
    KEYS.iter().filter(|k| matches!(k.kind, Kind::Topic { .. }))
}

/// Where a broker key is applied among those that set the same field:
/// coarser units first, so the finest given wins whatever the order in the
/// file (`log.retention.ms` over `.minutes` over `.hours`), as Kafka does.
pub fn unit_precedence(name: &str) -> usize {
    let broker_keys = || {
        KEYS.iter()
            .filter(|k| matches!(k.kind, Kind::Broker { .. }))
    };
    for key in broker_keys() {
        if let Some(i) = key.synonyms.iter().position(|s| *s == name) {
            return key.synonyms.len() - 1 - i;
        }
    }
    broker_key(name).map_or(0, |key| key.synonyms.len())
}

// One argument per column of the table, so each entry reads as a row.
#[allow(clippy::too_many_arguments)]
const fn broker(
    name: &'static str,
    config_type: ConfigType,
    default: DefaultValue,
    valid: Valid,
    update: Update,
    set: fn(&mut BrokerDefaults, &Value),
    get: fn(&BrokerDefaults) -> Value,
    doc: &'static str,
) -> ConfigKey {
    ConfigKey {
        name,
        config_type,
        default,
        valid,
        kind: Kind::Broker {
            update,
            set,
            get: Some(get),
        },
        synonyms: &[],
        doc,
    }
}

/// A broker key that sets another's field (an alias or a coarser unit).
const fn alias(
    name: &'static str,
    config_type: ConfigType,
    default: DefaultValue,
    valid: Valid,
    set: fn(&mut BrokerDefaults, &Value),
    doc: &'static str,
) -> ConfigKey {
    ConfigKey {
        name,
        config_type,
        default,
        valid,
        kind: Kind::Broker {
            update: Update::ReadOnly,
            set,
            get: None,
        },
        synonyms: &[],
        doc,
    }
}

const fn topic(
    name: &'static str,
    config_type: ConfigType,
    default: DefaultValue,
    valid: Valid,
    synonym: &'static [&'static str],
    set: fn(&mut TopicConfig, &Value),
    doc: &'static str,
) -> ConfigKey {
    ConfigKey {
        name,
        config_type,
        default,
        valid,
        kind: Kind::Topic { set },
        synonyms: synonym,
        doc,
    }
}

const fn node(
    name: &'static str,
    config_type: ConfigType,
    default: DefaultValue,
    doc: &'static str,
) -> ConfigKey {
    ConfigKey {
        name,
        config_type,
        default,
        valid: Valid::Any,
        kind: Kind::Node,
        synonyms: &[],
        doc,
    }
}

const fn ignored(name: &'static str, config_type: ConfigType, doc: &'static str) -> ConfigKey {
    ConfigKey {
        name,
        config_type,
        default: DefaultValue::Null,
        valid: Valid::Any,
        kind: Kind::Ignored,
        synonyms: &[],
        doc,
    }
}

use ConfigType::{Boolean, Double, Int, List, Long, Short, String as Str};
use DefaultValue::{Bool as B, Long as L, Null, Text as T};
use Update::{ClusterWide, ReadOnly};

const INT_MAX: i64 = i32::MAX as i64;
const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;
const WEEK_MS: i64 = 7 * 24 * HOUR_MS;
const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];
const CLEANUP_POLICIES: &[&str] = &["delete", "compact"];
const COMPRESSION_TYPES: &[&str] = &["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"];

fn is_log_append(v: &Value) -> bool {
    v.text() == "LogAppendTime"
}

fn timestamp_type(log_append: bool) -> Value {
    Value::Text(super::timestamp_type_name(log_append).into())
}

fn parse_ip_overrides(value: &str) -> Result<Value, ValueError> {
    IpOverrides::parse(value).map(Value::IpOverrides)
}

fn parse_authorizer_class_name(value: &str) -> Result<Value, ValueError> {
    if crate::acl::authorizer::valid_class_name(value) {
        Ok(Value::Text(value.trim().to_string()))
    } else {
        Err(ValueError::NotOneOf(format!(
            "nothing (no ACL checks), {}",
            crate::acl::authorizer::AUTHORIZER_CLASS_NAMES.join(" or ")
        )))
    }
}

/// `sasl.enabled.mechanisms`: GSSAPI (Kafka's default) is accepted, so a
/// copied server file still loads, and left out.
fn parse_sasl_mechanisms(value: &str) -> Result<Value, ValueError> {
    let served: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty() && *m != "GSSAPI")
        .collect();
    crate::sasl::Mechanism::parse_list(&served.join(","))
        .map_err(|_| ValueError::NotListOf("PLAIN, SCRAM-SHA-256, SCRAM-SHA-512".into()))?;
    Ok(Value::Text(served.join(",")))
}

fn parse_http_listener(value: &str) -> Result<Value, ValueError> {
    HttpListener::parse(value).map(Value::HttpListener)
}

/// Every key corelog knows: broker configs, topic configs, node configs read
/// from server files, and Kafka configs accepted and ignored; each section
/// sorted by name. Laid out as a table, one entry per key, so rustfmt
/// leaves it alone.
#[rustfmt::skip]
pub const KEYS: &[ConfigKey] = &[
    // Broker configs.
    // ACL checks (docs/security/acls.md).
    broker("allow.everyone.if.no.acl.found", Boolean, B(false), Valid::Any, ReadOnly,
        |b, v| b.allow_everyone_if_no_acl_found = v.bool(),
        |b| Value::Bool(b.allow_everyone_if_no_acl_found),
        "With an authorizer set: a resource that no ACL names may be used by every principal (Kafka's default: false, denied)."),
    broker("authorizer.class.name", Str, T(""), Valid::Parse(parse_authorizer_class_name,
            "empty, org.apache.kafka.metadata.authorizer.StandardAuthorizer or kafka.security.authorizer.AclAuthorizer"), ReadOnly,
        |b, v| b.authorizer_class_name = v.text().trim().to_string(),
        |b| Value::Text(b.authorizer_class_name.clone()),
        "The authorizer: empty, no ACL checks; either of Kafka's authorizers turns ACL checks on for every request (both behave as Kafka's StandardAuthorizer)."),
    broker("auto.create.topics.enable", Boolean, B(true), Valid::Any, ReadOnly,
        |b, v| b.auto_create_topics_enable = v.bool(),
        |b| Value::Bool(b.auto_create_topics_enable),
        "Enable auto creation of topics on the server (by Metadata requests for unknown topics)."),
    broker("auto.leader.rebalance.enable", Boolean, B(true), Valid::Any, ReadOnly,
        |b, v| b.auto_leader_rebalance_enable = v.bool(),
        |b| Value::Bool(b.auto_leader_rebalance_enable),
        "Enables auto leader balancing: the controller moves leadership back to preferred replicas."),
    broker("broker.heartbeat.interval.ms", Int, L(2000), Valid::Range(1, INT_MAX), ReadOnly,
        |b, v| b.broker_heartbeat_interval_ms = v.long() as i32,
        |b| Value::Long(b.broker_heartbeat_interval_ms as i64),
        "The length of time in milliseconds between broker heartbeats to the controller quorum."),
    alias("broker.id", Int, Null, Valid::Range(0, INT_MAX),
        |b, v| b.node_id = v.long() as i32,
        "The older name of node.id."),
    broker("broker.session.timeout.ms", Int, L(9000), Valid::Range(1, INT_MAX), ReadOnly,
        |b, v| b.broker_session_timeout_ms = v.long() as i32,
        |b| Value::Long(b.broker_session_timeout_ms as i64),
        "The length of time in milliseconds that a broker lease lasts if no heartbeats are made; then the broker is fenced."),
    broker("connections.max.idle.ms", Long, L(limits::CONNECTIONS_IDLE_MS_DEFAULT as i64),
        Valid::MinusOneOrAtLeast(limits::CONNECTIONS_IDLE_MS_MIN as i64, "never"), ReadOnly,
        |b, v| b.connections_max_idle_ms = v.long(),
        |b| Value::Long(b.connections_max_idle_ms),
        "Idle connections timeout: a connection with no request or response traffic for this long is closed."),
    broker("controller.quorum.election.timeout.ms", Int, L(1000), Valid::Range(1, INT_MAX), ReadOnly,
        |b, v| b.controller_quorum_election_timeout_ms = v.long() as i32,
        |b| Value::Long(b.controller_quorum_election_timeout_ms as i64),
        "Maximum time in milliseconds to wait without being able to fetch from the leader before triggering a new election."),
    broker("controller.quorum.fetch.timeout.ms", Int, L(2000), Valid::Range(1, INT_MAX), ReadOnly,
        |b, v| b.controller_quorum_fetch_timeout_ms = v.long() as i32,
        |b| Value::Long(b.controller_quorum_fetch_timeout_ms as i64),
        "Maximum time without a successful fetch from the current leader before a voter becomes a candidate."),
    broker("default.replication.factor", Int, L(1), Valid::Range(1, limits::REPLICATION_FACTOR_MAX as i64), ReadOnly,
        |b, v| b.default_replication_factor = v.long() as i16,
        |b| Value::Long(b.default_replication_factor as i64),
        "The replication factor for automatically created topics, and for topics created with -1 as the replication factor."),
    broker("fetch.max.bytes", Int, L(limits::FETCH_MAX_BYTES_DEFAULT as i64),
        Valid::Range(1024, limits::FETCH_RESPONSE_BYTES_MAX as i64), ReadOnly,
        |b, v| b.fetch_max_bytes = v.long() as u32,
        |b| Value::Long(b.fetch_max_bytes as i64),
        "The maximum number of bytes returned for a consumer's fetch request (Kafka's default: 57671680; corelog's is 16 MiB: a response is read into memory whole before it is sent, and smaller ones read faster from disk)."),
    broker("group.consumer.heartbeat.interval.ms", Int, L(5000), Valid::Range(1, HOUR_MS), ReadOnly,
        |b, v| b.group_consumer_heartbeat_interval_ms = v.long() as i32,
        |b| Value::Long(b.group_consumer_heartbeat_interval_ms as i64),
        "The heartbeat interval given to the members of consumer-protocol (KIP-848) groups."),
    broker("group.consumer.session.timeout.ms", Int, L(45_000), Valid::Range(1, HOUR_MS), ReadOnly,
        |b, v| b.group_consumer_session_timeout_ms = v.long() as i32,
        |b| Value::Long(b.group_consumer_session_timeout_ms as i64),
        "The timeout to detect client failures when using the consumer group protocol (KIP-848)."),
    broker("group.initial.rebalance.delay.ms", Int, L(3000), Valid::Range(0, 300_000), ReadOnly,
        |b, v| b.group_initial_rebalance_delay_ms = v.long() as u64,
        |b| Value::Long(b.group_initial_rebalance_delay_ms as i64),
        "The amount of time the group coordinator will wait for more consumers to join a new group before performing the first rebalance."),
    broker("group.max.session.timeout.ms", Int, L(1_800_000), Valid::Range(1, INT_MAX), ReadOnly,
        |b, v| b.group_max_session_timeout_ms = v.long() as i32,
        |b| Value::Long(b.group_max_session_timeout_ms as i64),
        "The maximum allowed session timeout for registered consumers of classic groups."),
    broker("group.min.session.timeout.ms", Int, L(6000), Valid::Range(1, INT_MAX), ReadOnly,
        |b, v| b.group_min_session_timeout_ms = v.long() as i32,
        |b| Value::Long(b.group_min_session_timeout_ms as i64),
        "The minimum allowed session timeout for registered consumers of classic groups."),
    broker("http.console.enable", Boolean, B(true), Valid::Any, ReadOnly,
        |b, v| b.http_console_enable = v.bool(),
        |b| Value::Bool(b.http_console_enable),
        "corelog: serve the web console at the HTTP listener's root and the JSON admin API it uses (/api/v1; docs/console.md)."),
    broker("http.console.read.only", Boolean, B(false), Valid::Any, ReadOnly,
        |b, v| b.http_console_read_only = v.bool(),
        |b| Value::Bool(b.http_console_read_only),
        "corelog: the console shows the cluster but changes nothing: its API answers 403 to creating, deleting and altering topics and to resetting offsets (also `serve --read-only`)."),
    broker("http.listeners", Str, T("127.0.0.1:9644"),
        Valid::Parse(parse_http_listener, "host:port (an IP address, localhost or empty for every address), or empty: off"), ReadOnly,
        |b, v| match v {
            Value::HttpListener(l) => b.http_listener = l.clone(),
            other => panic!("http.listeners given {other:?}"),
        },
        |b| Value::HttpListener(b.http_listener.clone()),
        "corelog: the address of the node's HTTP listener (on shard 0): /health, /ready and /metrics (Prometheus text format, docs/metrics.md); empty turns it off."),
    broker("leader.imbalance.check.interval.seconds", Long, L(300), Valid::Range(1, i64::MAX / 1000), ReadOnly,
        |b, v| b.leader_imbalance_check_interval_seconds = v.long(),
        |b| Value::Long(b.leader_imbalance_check_interval_seconds),
        "The frequency with which the partition rebalance check is triggered by the controller."),
    broker("log.index.interval.bytes", Int, L(4096), Valid::Range(0, INT_MAX), ClusterWide,
        |b, v| b.log_index_interval_bytes = v.long() as u32,
        |b| Value::Long(b.log_index_interval_bytes as i64),
        "The interval with which an entry is added to the offset index."),
    broker("log.message.timestamp.after.max.ms", Long, L(HOUR_MS), Valid::Range(0, i64::MAX), ClusterWide,
        |b, v| b.log_message_timestamp_after_max_ms = v.long(),
        |b| Value::Long(b.log_message_timestamp_after_max_ms),
        "How far (ms) a CreateTime record timestamp may be ahead of the broker's clock."),
    broker("log.message.timestamp.before.max.ms", Long, L(i64::MAX), Valid::Range(0, i64::MAX), ClusterWide,
        |b, v| b.log_message_timestamp_before_max_ms = v.long(),
        |b| Value::Long(b.log_message_timestamp_before_max_ms),
        "How far (ms) a CreateTime record timestamp may be behind the broker's clock."),
    broker("log.message.timestamp.type", Str, T("CreateTime"), Valid::OneOf(TIMESTAMP_TYPES), ClusterWide,
        |b, v| b.log_message_timestamp_type_log_append = is_log_append(v),
        |b| timestamp_type(b.log_message_timestamp_type_log_append),
        "Whether the timestamp in a stored record is the producer's (CreateTime) or the broker's append time (LogAppendTime)."),
    broker("log.retention.bytes", Long, L(-1), Valid::Range(-1, i64::MAX), ClusterWide,
        |b, v| b.log_retention_bytes = v.long(),
        |b| Value::Long(b.log_retention_bytes),
        "The maximum size of a partition's log before old segments are deleted; -1: no limit."),
    broker("log.retention.check.interval.ms", Long, L(5 * MINUTE_MS), Valid::Range(1, i64::MAX), ReadOnly,
        |b, v| b.log_retention_check_interval_ms = v.long() as u64,
        |b| Value::Long(b.log_retention_check_interval_ms as i64),
        "The frequency in milliseconds that the log cleaner checks whether any log is eligible for deletion."),
    alias("log.retention.hours", Int, L(168), Valid::Range(-1, i64::MAX / HOUR_MS),
        |b, v| b.log_retention_ms = if v.long() < 0 { -1 } else { v.long() * HOUR_MS },
        "The number of hours to keep a log segment before deleting it; below log.retention.minutes and log.retention.ms."),
    alias("log.retention.minutes", Int, Null, Valid::Range(-1, i64::MAX / MINUTE_MS),
        |b, v| b.log_retention_ms = if v.long() < 0 { -1 } else { v.long() * MINUTE_MS },
        "The number of minutes to keep a log segment before deleting it; over log.retention.hours, below log.retention.ms."),
    ConfigKey {
        synonyms: &["log.retention.minutes", "log.retention.hours"],
        ..broker("log.retention.ms", Long, L(WEEK_MS), Valid::Range(-1, i64::MAX), ClusterWide,
            |b, v| b.log_retention_ms = v.long(),
            |b| Value::Long(b.log_retention_ms),
            "The number of milliseconds to keep a log segment before deleting it; -1: no time limit.")
    },
    alias("log.roll.hours", Int, L(168), Valid::Range(1, i64::MAX / HOUR_MS),
        |b, v| b.log_roll_ms = v.long() * HOUR_MS,
        "The maximum time in hours before a new log segment is rolled out; below log.roll.ms."),
    ConfigKey {
        synonyms: &["log.roll.hours"],
        ..broker("log.roll.ms", Long, L(WEEK_MS), Valid::Range(1, i64::MAX), ClusterWide,
            |b, v| b.log_roll_ms = v.long(),
            |b| Value::Long(b.log_roll_ms),
            "The maximum time in milliseconds before a new log segment is rolled out.")
    },
    broker("log.scrub.interval.ms", Long, L(limits::SCRUB_INTERVAL_MS_DEFAULT), Valid::Range(1, i64::MAX), ReadOnly,
        |b, v| b.log_scrub_interval_ms = v.long(),
        |b| Value::Long(b.log_scrub_interval_ms),
        "corelog: how long a verified segment goes before the background scrub verifies it again."),
    broker("log.scrub.io.max.bytes.per.second", Long, L(limits::SCRUB_BYTES_PER_SECOND_DEFAULT as i64),
        Valid::Range(0, limits::SCRUB_BYTES_PER_SECOND_MAX as i64), ReadOnly,
        |b, v| b.log_scrub_io_max_bytes_per_second = v.long() as u64,
        |b| Value::Long(b.log_scrub_io_max_bytes_per_second as i64),
        "corelog: bytes of stored segments each shard verifies per second in the background; 0: no scrub."),
    broker("log.segment.bytes", Int, L(1 << 30), Valid::Range(14, u32::MAX as i64), ClusterWide,
        |b, v| b.log_segment_bytes = v.long() as u64,
        |b| Value::Long(b.log_segment_bytes as i64),
        "The maximum size of a single log file."),
    broker("max.connections", Int, L(INT_MAX), Valid::Range(0, INT_MAX), ReadOnly,
        |b, v| b.max_connections = v.long() as i32,
        |b| Value::Long(b.max_connections as i64),
        "The maximum number of client connections the broker keeps open; one more is closed right after accept."),
    broker("max.connections.per.ip", Int, L(INT_MAX), Valid::Range(0, INT_MAX), ReadOnly,
        |b, v| b.max_connections_per_ip = v.long() as i32,
        |b| Value::Long(b.max_connections_per_ip as i64),
        "The maximum number of connections allowed from each ip address."),
    broker("max.connections.per.ip.overrides", Str, T(""),
        Valid::Parse(parse_ip_overrides, "host:count,... (at most 1024 entries)"), ReadOnly,
        |b, v| match v {
            Value::IpOverrides(o) => b.max_connections_per_ip_overrides = o.clone(),
            other => panic!("max.connections.per.ip.overrides given {other:?}"),
        },
        |b| Value::IpOverrides(b.max_connections_per_ip_overrides.clone()),
        "A comma-separated list of per-ip or hostname overrides to the default maximum number of connections."),
    broker("max.incremental.fetch.session.cache.slots", Int, L(limits::FETCH_SESSION_CACHE_SLOTS_DEFAULT as i64),
        Valid::Range(0, limits::FETCH_SESSION_CACHE_SLOTS_MAX as i64), ReadOnly,
        |b, v| b.max_incremental_fetch_session_cache_slots = v.long() as usize,
        |b| Value::Long(b.max_incremental_fetch_session_cache_slots as i64),
        "The maximum number of incremental fetch sessions the broker keeps, split evenly between its shards."),
    broker("message.max.bytes", Int, L(1024 * 1024 + 12), Valid::Range(0, limits::FRAME_BYTES_MAX as i64), ClusterWide,
        |b, v| b.message_max_bytes = v.long() as u32,
        |b| Value::Long(b.message_max_bytes as i64),
        "The largest record batch size allowed."),
    broker("metrics.enabled", Boolean, B(true), Valid::Any, ReadOnly,
        |b, v| b.metrics_enabled = v.bool(),
        |b| Value::Bool(b.metrics_enabled),
        "corelog: record each request's figures (requests by version, error codes, queue, local, waiting and send times, sizes) and the storage's (fsyncs, rolls, retention, compaction) for /metrics; false leaves those families at zero, to measure what recording costs."),
    broker("metrics.partition.limit", Int, L(limits::METRICS_PARTITIONS_DEFAULT as i64),
        Valid::Range(0, limits::METRICS_PARTITIONS_MAX as i64), ClusterWide,
        |b, v| b.metrics_partition_limit = v.long() as usize,
        |b| Value::Long(b.metrics_partition_limit as i64),
        "corelog: partitions whose per-partition families (follower lags included) a /metrics scrape exports, the first by topic and partition; also the most groups and group-partitions it exports, the first by name; 0: none."),
    broker("min.insync.replicas", Int, L(1), Valid::Range(1, INT_MAX), ClusterWide,
        |b, v| b.min_insync_replicas = v.long() as i32,
        |b| Value::Long(b.min_insync_replicas as i64),
        "The minimum number of replicas that must acknowledge a write with acks=all for it to succeed."),
    broker("node.id", Int, L(1), Valid::Range(0, INT_MAX), ReadOnly,
        |b, v| b.node_id = v.long() as i32,
        |b| Value::Long(b.node_id as i64),
        "The node ID of this server: its broker id, and its voter id when it is a controller."),
    broker("num.partitions", Int, L(1), Valid::Range(1, limits::TOPIC_PARTITIONS_MAX as i64), ReadOnly,
        |b, v| b.num_partitions = v.long() as i32,
        |b| Value::Long(b.num_partitions as i64),
        "The default number of log partitions per topic."),
    broker("offsets.retention.check.interval.ms", Long, L(600_000), Valid::Range(1, i64::MAX), ReadOnly,
        |b, v| b.offsets_retention_check_interval_ms = v.long() as u64,
        |b| Value::Long(b.offsets_retention_check_interval_ms as i64),
        "Frequency at which to check for stale offsets."),
    broker("offsets.retention.minutes", Int, L(10_080), Valid::Range(1, INT_MAX), ReadOnly,
        |b, v| b.offsets_retention_ms = v.long() * 60_000,
        |b| Value::Long(b.offsets_retention_ms / 60_000),
        "For subscribed consumers, committed offset of a specific partition will be expired and discarded when 1) this retention period has elapsed after the consumer group loses all its consumers (i.e. becomes empty); 2) this retention period has elapsed since the last time an offset is committed for the partition and the group is no longer subscribed to the corresponding topic. For standalone consumers (using manual assignment), offsets will be expired after this retention period has elapsed since the time of last commit. Note that when a group is deleted via the delete-group request, its committed offsets will also be deleted without extra retention period; also when a topic is deleted via the delete-topic request, upon propagated metadata update any group's committed offsets for that topic will also be deleted without extra retention period. An offset commit that names its own retention (OffsetCommit v2-v4) expires at that time instead."),
    broker("offsets.topic.num.partitions", Int, L(50), Valid::Range(1, limits::OFFSETS_TOPIC_PARTITIONS_MAX as i64), ReadOnly,
        |b, v| b.offsets_topic_num_partitions = v.long() as i32,
        |b| Value::Long(b.offsets_topic_num_partitions as i64),
        "The number of partitions for the offset commit topic (should not change after deployment)."),
    broker("offsets.topic.replication.factor", Short, L(3), Valid::Range(1, limits::REPLICATION_FACTOR_MAX as i64), ReadOnly,
        |b, v| b.offsets_topic_replication_factor = v.long() as i16,
        |b| Value::Long(b.offsets_topic_replication_factor as i64),
        "The replication factor for the offsets topic, capped to the live brokers when it is created."),
    broker("queued.max.request.bytes", Long, L(limits::QUEUED_REQUEST_BYTES_DEFAULT as i64),
        Valid::MinusOneOrAtLeast(limits::QUEUED_REQUEST_BYTES_MIN as i64, "unbounded"), ReadOnly,
        |b, v| b.queued_max_request_bytes = v.long(),
        |b| Value::Long(b.queued_max_request_bytes),
        "The number of queued bytes allowed before no more requests are read, split evenly between the shards (Kafka's default: -1)."),
    broker("replica.fetch.max.bytes", Int, L(1024 * 1024), Valid::Range(0, limits::FRAME_BYTES_MAX as i64), ReadOnly,
        |b, v| b.replica_fetch_max_bytes = v.long() as i32,
        |b| Value::Long(b.replica_fetch_max_bytes as i64),
        "The number of bytes of messages to attempt to fetch for each partition."),
    broker("replica.fetch.wait.max.ms", Int, L(500), Valid::Range(0, INT_MAX), ReadOnly,
        |b, v| b.replica_fetch_wait_max_ms = v.long() as i32,
        |b| Value::Long(b.replica_fetch_wait_max_ms as i64),
        "The maximum wait time for each fetcher request issued by follower replicas."),
    broker("replica.lag.time.max.ms", Long, L(30_000), Valid::Range(1, i64::MAX), ReadOnly,
        |b, v| b.replica_lag_time_max_ms = v.long(),
        |b| Value::Long(b.replica_lag_time_max_ms),
        "A follower that has not caught up to the leader's log end for at least this time is removed from the ISR."),
    broker("socket.request.max.bytes", Int, L(limits::SOCKET_REQUEST_BYTES_DEFAULT as i64),
        Valid::Range(limits::SOCKET_REQUEST_BYTES_MIN as i64, limits::FRAME_BYTES_MAX as i64), ReadOnly,
        |b, v| b.socket_request_max_bytes = v.long() as usize,
        |b| Value::Long(b.socket_request_max_bytes as i64),
        "The maximum number of bytes in a socket request."),
    broker("super.users", Str, T(""), Valid::Any, ReadOnly,
        |b, v| b.super_users = v.text().to_string(),
        |b| Value::Text(b.super_users.clone()),
        "Principals that pass every ACL check, separated by semicolons (User:admin;User:broker). The brokers' own principal belongs here (or needs ClusterAction on the cluster)."),
    broker("unclean.leader.election.enable", Boolean, B(false), Valid::Any, ClusterWide,
        |b, v| b.unclean_leader_election_enable = v.bool(),
        |b| Value::Bool(b.unclean_leader_election_enable),
        "Whether replicas not in the ISR may be elected as leader as a last resort, even though doing so may result in data loss."),
    // Topic configs.
    topic("cleanup.policy", List, T("delete"), Valid::ListOf(CLEANUP_POLICIES), &["log.cleanup.policy"],
        |t, v| {
            let text = v.text();
            t.cleanup_delete = text.split(',').any(|p| p == "delete");
            t.cleanup_compact = text.split(',').any(|p| p == "compact");
        },
        "delete: old segments are discarded by retention time or size; compact: the newest record per key is kept."),
    topic("compression.type", Str, T("producer"), Valid::OneOf(COMPRESSION_TYPES), &["compression.type"],
        |t, v| t.compression = crate::protocol::batch::Codec::from_topic_config(v.text()),
        "The final compression type of the topic: producer keeps the producer's codec, a codec makes the broker store batches in it."),
    topic("delete.retention.ms", Long, L(24 * HOUR_MS), Valid::Range(0, i64::MAX), &["log.cleaner.delete.retention.ms"],
        |t, v| t.delete_retention_ms = v.long(),
        "The amount of time to retain tombstone markers for compacted topics."),
    topic("flush.messages", Long, L(i64::MAX), Valid::Range(0, i64::MAX), &["log.flush.interval.messages"],
        |_, _| {},
        "Accepted and reported, not honoured: corelog does not relax durability per topic."),
    topic("flush.ms", Long, L(i64::MAX), Valid::Range(0, i64::MAX), &["log.flush.interval.ms"],
        |_, _| {},
        "Accepted and reported, not honoured: corelog does not relax durability per topic."),
    topic("index.interval.bytes", Int, L(4096), Valid::Range(0, INT_MAX), &["log.index.interval.bytes"],
        |t, v| t.index_interval_bytes = v.long() as u32,
        "How frequently an index entry is added to the offset index."),
    topic("max.message.bytes", Int, L(1024 * 1024 + 12), Valid::Range(0, limits::FRAME_BYTES_MAX as i64), &["message.max.bytes"],
        |t, v| t.max_message_bytes = v.long() as u32,
        "The largest record batch size allowed for this topic."),
    topic("message.timestamp.after.max.ms", Long, L(HOUR_MS), Valid::Range(0, i64::MAX), &["log.message.timestamp.after.max.ms"],
        |t, v| t.timestamp_after_max_ms = v.long(),
        "How far (ms) a CreateTime record timestamp may be ahead of the broker's clock."),
    topic("message.timestamp.before.max.ms", Long, L(i64::MAX), Valid::Range(0, i64::MAX), &["log.message.timestamp.before.max.ms"],
        |t, v| t.timestamp_before_max_ms = v.long(),
        "How far (ms) a CreateTime record timestamp may be behind the broker's clock."),
    topic("message.timestamp.type", Str, T("CreateTime"), Valid::OneOf(TIMESTAMP_TYPES), &["log.message.timestamp.type"],
        |t, v| t.timestamp_type_log_append = is_log_append(v),
        "Whether a stored record's timestamp is the producer's (CreateTime) or the broker's append time (LogAppendTime)."),
    topic("min.cleanable.dirty.ratio", Double, DefaultValue::Double(0.5), Valid::DoubleRange(0.0, 1.0), &["log.cleaner.min.cleanable.ratio"],
        |t, v| t.min_cleanable_dirty_ratio = v.double(),
        "The dirty share of the log at which the log cleaner starts compacting it."),
    topic("min.compaction.lag.ms", Long, L(0), Valid::Range(0, i64::MAX), &["log.cleaner.min.compaction.lag.ms"],
        |t, v| t.min_compaction_lag_ms = v.long(),
        "The minimum time a record remains uncompacted in the log."),
    topic("min.insync.replicas", Int, L(1), Valid::Range(1, INT_MAX), &["min.insync.replicas"],
        |t, v| t.min_insync_replicas = v.long() as i32,
        "The minimum number of replicas that must acknowledge a write with acks=all for it to succeed."),
    topic("retention.bytes", Long, L(-1), Valid::Range(-1, i64::MAX), &["log.retention.bytes"],
        |t, v| t.retention_bytes = v.long(),
        "The maximum size a partition can grow to before old segments are discarded; -1: no limit."),
    topic("retention.ms", Long, L(WEEK_MS), Valid::Range(-1, i64::MAX), &["log.retention.ms"],
        |t, v| t.retention_ms = v.long(),
        "The maximum time a log segment is retained before it is discarded; -1: no time limit."),
    topic("segment.bytes", Int, L(1 << 30), Valid::Range(14, INT_MAX), &["log.segment.bytes"],
        |t, v| t.segment_bytes = v.long() as u64,
        "The segment file size for the log."),
    topic("segment.ms", Long, L(WEEK_MS), Valid::Range(1, i64::MAX), &["log.roll.ms"],
        |t, v| t.segment_ms = v.long(),
        "The period of time after which a segment is rolled even if it is not full."),
    topic("unclean.leader.election.enable", Boolean, B(false), Valid::Any, &["unclean.leader.election.enable"],
        |t, v| t.unclean_leader_election_enable = v.bool(),
        "Whether replicas not in the ISR may be elected as leader as a last resort, even though doing so may result in data loss."),
    // SASL (docs/security/sasl.md).
    broker("connections.max.reauth.ms", Long, L(0), Valid::Range(0, i64::MAX), ReadOnly,
        |b, v| b.connections_max_reauth_ms = v.long(),
        |b| Value::Long(b.connections_max_reauth_ms),
        "The lifetime of an authenticated SASL session (KIP-368): the client re-authenticates before it ends, or its connection is closed at its next request. 0: no limit."),
    broker("sasl.enabled.mechanisms", List, T("SCRAM-SHA-256,SCRAM-SHA-512"), Valid::Parse(parse_sasl_mechanisms, "a list of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"), ReadOnly,
        |b, v| b.sasl_enabled_mechanisms = v.text().to_string(),
        |b| Value::Text(b.sasl_enabled_mechanisms.clone()),
        "The SASL mechanisms a SASL listener accepts: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (PLAIN checks the password against the SCRAM credentials). Kafka's default is GSSAPI (Kerberos), which corelog does not serve; it is accepted in the list and ignored."),
    // Node configs, read from a server file by config/properties.rs.
    node("advertised.listeners", List, Null,
        "The client listener's address given to clients, if not the one in listeners."),
    node("controller.listener.names", List, Null,
        "The names of the listeners used by the controller."),
    node("controller.quorum.bootstrap.servers", List, Null,
        "host:port of the controllers, resolved to the voters when controller.quorum.voters is not set."),
    node("controller.quorum.voters", List, Null,
        "The voters of the controller quorum: id@host:port,... Unset: a single node, its own quorum."),
    node("inter.broker.listener.name", Str, Null,
        "The client listener brokers reach each other on (followers' fetches); unset, the first client listener."),
    node("listener.security.protocol.map", Str, Null,
        "Listener names to security protocols (PLAINTEXT, SSL, SASL_SSL); a listener named as a protocol needs no entry."),
    node("listeners", List, T("PLAINTEXT://:9092"),
        "The client listeners (several, one port each) and, on a controller, the controller listener: NAME://host:port,..."),
    node("log.dir", Str, Null, "The data directory, when log.dirs is not set."),
    node("log.dirs", List, Null,
        "The data directory (corelog keeps one per node)."),
    node("process.roles", List, T("broker,controller"),
        "The roles this node plays: broker, controller, or both."),
    // TLS keys, read by the tls module (docs/security/tls.md). Each may
    // also be given for one listener as listener.name.<name>.<key>.
    node("ssl.client.auth", Str, T("none"),
        "Whether a TLS listener asks clients for a certificate: none, requested or required."),
    node("ssl.enabled.protocols", List, T("TLSv1.2,TLSv1.3"),
        "The TLS versions a listener accepts and a client offers: TLSv1.2 and/or TLSv1.3."),
    node("ssl.endpoint.identification.algorithm", Str, T("https"),
        "https: a TLS client checks the server's name (or IP address) against its certificate; empty: it does not."),
    node("ssl.keystore.certificate.chain", Str, Null,
        "The listener's certificate chain as PEM text (with ssl.keystore.key, instead of ssl.keystore.location)."),
    node("ssl.keystore.key", Str, Null,
        "The listener's unencrypted PKCS#8 private key as PEM text (with ssl.keystore.certificate.chain)."),
    node("ssl.keystore.location", Str, Null,
        "A PEM file with the listener's unencrypted PKCS#8 private key and its certificate chain; re-read when it changes."),
    node("ssl.keystore.type", Str, T("PEM"),
        "The keystore's format; corelog reads PEM only."),
    node("ssl.principal.mapping.rules", Str, T("DEFAULT"),
        "How a client certificate's subject (RFC 2253) becomes a principal's name: RULE:pattern/replacement/[LU],...,DEFAULT."),
    node("ssl.truststore.certificates", Str, Null,
        "The trusted CA certificates as PEM text (instead of ssl.truststore.location)."),
    node("ssl.truststore.location", Str, Null,
        "A PEM file of the CA certificates trusted for client certificates and for other brokers; re-read when it changes."),
    node("ssl.truststore.type", Str, T("PEM"),
        "The truststore's format; corelog reads PEM only."),
    // Kafka configs accepted in a server file and ignored.
    ignored("background.threads", Int,
        "Accepted and ignored: each shard does its background work itself."),
    ignored("log.cleaner.threads", Int,
        "Accepted and ignored: each shard runs its own log cleaner."),
    ignored("num.io.threads", Int,
        "Accepted and ignored: corelog runs one thread per shard."),
    ignored("num.network.threads", Int,
        "Accepted and ignored: corelog runs one thread per shard."),
    ignored("num.recovery.threads.per.data.dir", Int,
        "Accepted and ignored: each shard recovers its own partitions."),
    ignored("num.replica.fetchers", Int,
        "Accepted and ignored: each shard fetches for its own partitions."),
    ignored("socket.receive.buffer.bytes", Int,
        "Accepted and ignored: set SO_RCVBUF in the tuning profile (socket_receive_buffer_bytes)."),
    ignored("socket.send.buffer.bytes", Int,
        "Accepted and ignored: set SO_SNDBUF in the tuning profile (socket_send_buffer_bytes)."),
    ignored("transaction.state.log.min.isr", Int,
        "Accepted and ignored: corelog has no transactions yet."),
    ignored("transaction.state.log.replication.factor", Short,
        "Accepted and ignored: corelog has no transactions yet."),
];

/// `docs/configuration.md`: the table as Markdown, one section per kind.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Configuration\n\n\
         Generated from `src/config/keys.rs` (the one table of config keys) by\n\
         `CORELOG_WRITE_DOCS=1 cargo test --release --lib config::keys`; a test fails when\n\
         this file differs from what the table generates.\n\n\
         Broker configs are set in the server file (`--config`) or with\n\
         `--override key=value`; the dynamic ones also at run time with\n\
         `corelog configs --entity-type brokers --alter`, or by editing the server\n\
         file and sending the broker SIGHUP (`systemctl reload corelog`), which\n\
         applies the dynamic ones that changed (the others need a restart).\n\
         Topic configs are set at creation or with\n\
         `corelog configs --entity-type topics --alter`.\n",
    );
    for title in SECTIONS {
        out.push_str(&format!(
            "\n## {title}\n\n| name | type | default | valid values | update | synonyms | description |\n\
             |---|---|---|---|---|---|---|\n"
        ));
        for key in KEYS.iter().filter(|k| section(&k.kind) == title) {
            let update = match key.kind {
                Kind::Broker { update, .. } => update.name(),
                Kind::Topic { .. } => "per-topic",
                Kind::Node | Kind::Ignored => "read-only",
            };
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} | {} |\n",
                key.name,
                key.config_type.name(),
                cell(&key.default.text()),
                cell(&key.valid_text()),
                update,
                cell(&synonym_chain(key).join(", ")),
                key.doc
            ));
        }
    }
    out
}

/// The documentation's sections, in order.
const SECTIONS: [&str; 4] = [
    "Broker configs",
    "Topic configs",
    "Node configs (server file only)",
    "Accepted and ignored",
];

fn section(kind: &Kind) -> &'static str {
    match kind {
        Kind::Broker { .. } => SECTIONS[0],
        Kind::Topic { .. } => SECTIONS[1],
        Kind::Node => SECTIONS[2],
        Kind::Ignored => SECTIONS[3],
    }
}

/// A key's synonyms in Kafka's order, following a topic config's broker
/// synonym to that key's own coarser units.
pub fn synonym_chain(key: &ConfigKey) -> Vec<&'static str> {
    let mut chain = key.synonyms.to_vec();
    if let (Kind::Topic { .. }, Some(first)) = (key.kind, key.synonyms.first()) {
        if let Some(broker) = find(first).filter(|b| matches!(b.kind, Kind::Broker { .. })) {
            chain.extend(broker.synonyms);
        }
    }
    chain
}

fn cell(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!("`{}`", text.replace('|', "\\|"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn names_are_unique_per_kind_and_sorted_per_section() {
        let mut seen = std::collections::HashSet::new();
        for key in KEYS {
            let kind = std::mem::discriminant(&key.kind);
            assert!(
                seen.insert((key.name, kind)),
                "{} is listed twice",
                key.name
            );
            assert!(!key.doc.is_empty(), "{} has no documentation", key.name);
        }
        for pair in KEYS.windows(2) {
            let same =
                std::mem::discriminant(&pair[0].kind) == std::mem::discriminant(&pair[1].kind);
            assert!(
                !same || pair[0].name < pair[1].name,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn every_default_parses_within_its_bounds() {
        for key in KEYS {
            let Some(value) = key.default_value() else {
                continue;
            };
            if matches!(key.kind, Kind::Node | Kind::Ignored) {
                continue;
            }
            let text = value.to_string();
            let parsed = key
                .parse(&text)
                .unwrap_or_else(|e| panic!("{} default {text}: {e}", key.name));
            assert_eq!(parsed.to_string(), text, "{}", key.name);
        }
        // And the typed structs start from those defaults.
        let defaults = BrokerDefaults::default();
        for key in reported_broker_keys() {
            assert_eq!(
                key.get_broker(&defaults).unwrap().to_string(),
                key.default.text(),
                "{}",
                key.name
            );
        }
        let topic = TopicConfig::resolve(&defaults, &BTreeMap::new());
        assert_eq!(topic.segment_bytes, 1 << 30);
        assert_eq!(topic.delete_retention_ms, 24 * HOUR_MS);
        assert!(topic.cleanup_delete && !topic.cleanup_compact);
        assert_eq!(topic.min_cleanable_dirty_ratio, 0.5);
        assert_eq!(topic.compression, None);
    }

    #[test]
    fn a_topic_default_is_its_broker_synonyms() {
        for key in topic_keys() {
            let synonym = key.synonyms.first().expect("a topic config has a synonym");
            if let Some(broker) = broker_key(synonym) {
                assert!(
                    broker.get_broker(&BrokerDefaults::default()).is_some(),
                    "{synonym}"
                );
                assert_eq!(key.default, broker.default, "{} and {synonym}", key.name);
                assert_eq!(
                    key.config_type, broker.config_type,
                    "{} and {synonym}",
                    key.name
                );
            }
        }
    }

    #[test]
    fn values_out_of_bounds_are_refused_naming_the_key() {
        let mut defaults = BrokerDefaults::default();
        for (key, bad) in [
            ("num.partitions", "0"),
            ("num.partitions", "lots"),
            ("log.segment.bytes", "13"),
            ("log.message.timestamp.type", "Wallclock"),
            ("auto.create.topics.enable", "yes"),
            ("queued.max.request.bytes", "5"),
            ("connections.max.idle.ms", "-2"),
        ] {
            let err = defaults.set(key, bad).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains(bad), "{key}={bad}: {err}");
        }
        let err = defaults
            .set("queued.max.request.bytes", "5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be -1 (unbounded) or at least"), "{err}");
        let err = defaults.set("num.partitions", "0").unwrap_err().to_string();
        assert!(err.ends_with("0 is outside [1, 10000]"), "{err}");
        assert!(defaults.set("no.such.key", "1").is_err());
        // Node and ignored keys are not broker configs.
        assert!(defaults.set("num.network.threads", "3").is_err());
        assert!(defaults.set("listeners", "PLAINTEXT://:9092").is_err());
    }

    #[test]
    fn every_dynamic_key_round_trips_through_alter_and_describe() {
        let dynamic: Vec<&ConfigKey> = KEYS.iter().filter(|k| k.is_dynamic_broker()).collect();
        let names: Vec<&str> = dynamic.iter().map(|k| k.name).collect();
        // The dynamic broker configs: Kafka's, and corelog's metrics cap.
        assert_eq!(
            names,
            [
                "log.index.interval.bytes",
                "log.message.timestamp.after.max.ms",
                "log.message.timestamp.before.max.ms",
                "log.message.timestamp.type",
                "log.retention.bytes",
                "log.retention.ms",
                "log.roll.ms",
                "log.segment.bytes",
                "message.max.bytes",
                "metrics.partition.limit",
                "min.insync.replicas",
                "unclean.leader.election.enable",
            ]
        );
        let static_defaults = BrokerDefaults::default();
        for key in dynamic {
            let value = match key.config_type {
                ConfigType::Boolean => "true".to_string(),
                ConfigType::String => "LogAppendTime".to_string(),
                _ => match key.valid {
                    Valid::Range(min, _) => (min.max(0) + 7).to_string(),
                    other => panic!("{}: {other:?}", key.name),
                },
            };
            // Alter: the value is validated as the handler does, then stored
            // and applied over the static configs as the broker does.
            let mut probe = BrokerDefaults::default();
            probe.set(key.name, &value).unwrap();
            let stored = BTreeMap::from([(key.name.to_string(), value.clone())]);
            let effective = static_defaults.with_dynamic(&stored);
            // Describe: the broker config reads back what was set.
            assert_eq!(
                effective.get(key.name).as_deref(),
                Some(value.as_str()),
                "{}",
                key.name
            );
            assert_ne!(
                static_defaults.get(key.name).as_deref(),
                Some(value.as_str()),
                "{}",
                key.name
            );
            // A topic config it is the synonym of inherits it.
            for topic in topic_keys().filter(|t| t.synonyms.first() == Some(&key.name)) {
                assert_eq!(
                    TopicConfig::default_value(&effective, topic.name).as_deref(),
                    Some(value.as_str()),
                    "{}",
                    topic.name
                );
            }
        }
    }

    #[test]
    fn synonyms_resolve_in_kafkas_order() {
        assert_eq!(
            synonym_chain(topic_key("retention.ms").unwrap()),
            [
                "log.retention.ms",
                "log.retention.minutes",
                "log.retention.hours"
            ]
        );
        assert_eq!(
            synonym_chain(topic_key("segment.ms").unwrap()),
            ["log.roll.ms", "log.roll.hours"]
        );
        // The finest unit is applied last, so it wins whatever the order given.
        let order = |k: &str| unit_precedence(k);
        assert!(order("log.retention.hours") < order("log.retention.minutes"));
        assert!(order("log.retention.minutes") < order("log.retention.ms"));
        assert!(order("log.roll.hours") < order("log.roll.ms"));
        let mut defaults = BrokerDefaults::default();
        let mut given = [
            ("log.retention.ms", "1000"),
            ("log.retention.hours", "2"),
            ("log.retention.minutes", "3"),
        ];
        given.sort_by_key(|(k, _)| order(k));
        for (key, value) in given {
            defaults.set(key, value).unwrap();
        }
        assert_eq!(defaults.log_retention_ms, 1000);
        defaults.set("log.retention.minutes", "3").unwrap();
        assert_eq!(defaults.log_retention_ms, 3 * MINUTE_MS);
        defaults.set("log.retention.hours", "-1").unwrap();
        assert_eq!(defaults.log_retention_ms, -1);
        defaults.set("log.roll.hours", "2").unwrap();
        assert_eq!(defaults.log_roll_ms, 2 * HOUR_MS);
        // A topic config resolves: its override, else its broker synonym.
        defaults.set("log.retention.ms", "5000").unwrap();
        let topic = TopicConfig::resolve(&defaults, &BTreeMap::new());
        assert_eq!(topic.retention_ms, 5000);
        let overrides = BTreeMap::from([("retention.ms".to_string(), "7".to_string())]);
        assert_eq!(TopicConfig::resolve(&defaults, &overrides).retention_ms, 7);
    }

    /// `docs/configuration.md` is what the table generates; with
    /// `CORELOG_WRITE_DOCS=1` this test writes it instead.
    #[test]
    fn configuration_docs_match_the_table() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
        let generated = markdown();
        if std::env::var_os("CORELOG_WRITE_DOCS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} differs from the key table: run CORELOG_WRITE_DOCS=1 cargo test --release --lib \
             config::keys and commit it",
            path.display()
        );
    }
}
