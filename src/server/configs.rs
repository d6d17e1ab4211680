//! Describing configs the way Kafka does: each config with its value, where
//! the value comes from (topic override, dynamic broker config, static
//! broker config, default), and its synonyms in precedence order. Used by
//! DescribeConfigs and by CreateTopics v5+.

use crate::config::{
    broker_synonym, BrokerDefaults, TopicConfig, DYNAMIC_BROKER_KEYS, TOPIC_CONFIG_KEYS,
};
use crate::metadata::{Catalog, TopicMeta};

/// Kafka's `ConfigSource` codes.
pub const SOURCE_DYNAMIC_TOPIC: i8 = 1;
pub const SOURCE_DYNAMIC_BROKER: i8 = 2;
pub const SOURCE_STATIC_BROKER: i8 = 4;
pub const SOURCE_DEFAULT: i8 = 5;

/// Kafka's `ConfigType` codes (DescribeConfigs v3+).
const TYPE_BOOLEAN: i8 = 1;
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_SHORT: i8 = 4;
const TYPE_LONG: i8 = 5;
const TYPE_LIST: i8 = 7;

/// Kafka's resource type codes.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

#[derive(Clone, Debug)]
pub struct Synonym {
    pub name: String,
    pub value: Option<String>,
    pub source: i8,
}

#[derive(Clone, Debug)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub source: i8,
    pub read_only: bool,
    pub config_type: i8,
    pub synonyms: Vec<Synonym>,
}

fn config_type(key: &str) -> i8 {
    match key {
        "cleanup.policy" => TYPE_LIST,
        "compression.type"
        | "message.timestamp.type"
        | "log.message.timestamp.type"
        | "log.cleanup.policy" => TYPE_STRING,
        "auto.create.topics.enable"
        | "auto.leader.rebalance.enable"
        | "unclean.leader.election.enable" => TYPE_BOOLEAN,
        "offsets.topic.replication.factor" | "default.replication.factor" => TYPE_SHORT,
        "segment.bytes"
        | "max.message.bytes"
        | "min.insync.replicas"
        | "index.interval.bytes"
        | "node.id"
        | "num.partitions"
        | "log.segment.bytes"
        | "message.max.bytes"
        | "log.index.interval.bytes"
        | "broker.heartbeat.interval.ms"
        | "broker.session.timeout.ms"
        | "controller.quorum.election.timeout.ms"
        | "controller.quorum.fetch.timeout.ms"
        | "replica.fetch.max.bytes"
        | "replica.fetch.wait.max.ms"
        | "offsets.topic.num.partitions"
        | "group.initial.rebalance.delay.ms"
        | "group.min.session.timeout.ms"
        | "group.max.session.timeout.ms"
        | "group.consumer.session.timeout.ms"
        | "group.consumer.heartbeat.interval.ms" => TYPE_INT,
        _ => TYPE_LONG,
    }
}

/// Where a broker config's value comes from, and that value.
fn broker_value(static_defaults: &BrokerDefaults, catalog: &Catalog, key: &str) -> Option<Synonym> {
    if let Some(value) = catalog.broker_configs.get(key) {
        return Some(Synonym {
            name: key.to_string(),
            value: Some(value.clone()),
            source: SOURCE_DYNAMIC_BROKER,
        });
    }
    static_value(static_defaults, key)
}

/// A broker config's value without dynamic overrides.
fn static_value(static_defaults: &BrokerDefaults, key: &str) -> Option<Synonym> {
    let value = static_defaults.get(key)?;
    let source = if static_defaults.explicit.contains_key(key) {
        SOURCE_STATIC_BROKER
    } else {
        SOURCE_DEFAULT
    };
    Some(Synonym {
        name: key.to_string(),
        value: Some(value),
        source,
    })
}

/// Every topic config of `topic`, optionally only the `keys` asked for.
pub fn topic_entries(
    static_defaults: &BrokerDefaults,
    catalog: &Catalog,
    topic: &TopicMeta,
    keys: Option<&[String]>,
) -> Vec<ConfigEntry> {
    let effective = static_defaults.with_dynamic(&catalog.broker_configs);
    TOPIC_CONFIG_KEYS
        .iter()
        .filter(|key| keys.is_none_or(|wanted| wanted.iter().any(|w| w == *key)))
        .map(|key| {
            let mut synonyms = Vec::new();
            if let Some(value) = topic.configs.get(*key) {
                synonyms.push(Synonym {
                    name: key.to_string(),
                    value: Some(value.clone()),
                    source: SOURCE_DYNAMIC_TOPIC,
                });
            }
            let default_value = TopicConfig::default_value(&effective, key);
            match broker_synonym(key).and_then(|b| broker_value(static_defaults, catalog, b)) {
                Some(broker) => {
                    let known_default = broker.source != SOURCE_DEFAULT;
                    synonyms.push(broker);
                    if known_default {
                        if let Some(b) = broker_synonym(key) {
                            synonyms.push(Synonym {
                                name: b.to_string(),
                                value: BrokerDefaults::default().get(b),
                                source: SOURCE_DEFAULT,
                            });
                        }
                    }
                }
                None => synonyms.push(Synonym {
                    name: broker_synonym(key).unwrap_or(key).to_string(),
                    value: default_value.clone(),
                    source: SOURCE_DEFAULT,
                }),
            }
            let first = synonyms[0].clone();
            ConfigEntry {
                name: key.to_string(),
                value: if first.source == SOURCE_DYNAMIC_TOPIC {
                    first.value
                } else {
                    default_value
                },
                source: first.source,
                read_only: false,
                config_type: config_type(key),
                synonyms,
            }
        })
        .collect()
}

/// The broker's configs, optionally only the `keys` asked for.
pub fn broker_entries(
    static_defaults: &BrokerDefaults,
    catalog: &Catalog,
    keys: Option<&[String]>,
) -> Vec<ConfigEntry> {
    BrokerDefaults::KEYS
        .iter()
        .filter(|key| keys.is_none_or(|wanted| wanted.iter().any(|w| w == *key)))
        .filter_map(|key| {
            let current = broker_value(static_defaults, catalog, key)?;
            let mut synonyms = vec![current.clone()];
            if current.source == SOURCE_DYNAMIC_BROKER {
                if let Some(s) = static_value(static_defaults, key) {
                    synonyms.push(s);
                }
            }
            Some(ConfigEntry {
                name: key.to_string(),
                value: current.value,
                source: current.source,
                read_only: !DYNAMIC_BROKER_KEYS.contains(key),
                config_type: config_type(key),
                synonyms,
            })
        })
        .collect()
}
