//! Per-topic configs, resolved against the broker defaults through the key
//! table, and the check of one topic config a client sends.

use std::collections::BTreeMap;

use super::{keys, BrokerDefaults, ConfigError};

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
pub fn validate_topic_config(key: &str, value: &str) -> Result<(), ConfigError> {
    match keys::topic_key(key) {
        Some(config) => config.parse(value).map(drop).map_err(ConfigError::Value),
        None => Err(ConfigError::UnknownTopicConfig(key.to_string())),
    }
}
pub fn timestamp_type_name(log_append: bool) -> &'static str {
    if log_append {
        "LogAppendTime"
    } else {
        "CreateTime"
    }
}
