//! Describing configs the way Kafka does: each config with its value, where
//! the value comes from (topic override, dynamic broker config, static
//! broker config, default), and its synonyms in precedence order. Used by
//! DescribeConfigs and by CreateTopics v5+. Which keys exist, their types,
//! synonyms, documentation and whether they may change come from the key
//! table (`config/keys.rs`).
//!
//! Dynamic broker configs (`Catalog::broker_configs`) are one map for the
//! whole cluster: every broker applies them, whichever broker they were
//! written for. They are therefore described as Kafka describes cluster-wide
//! defaults, DYNAMIC_DEFAULT_BROKER_CONFIG: a broker asked about itself names
//! that source, and `kafka-configs --entity-default --describe` lists them.

use crate::config::keys::{self, ConfigKey};
use crate::config::{BrokerDefaults, TopicConfig};
use crate::metadata::{Catalog, TopicMeta};

/// Kafka's `ConfigSource` codes.
pub const SOURCE_DYNAMIC_TOPIC: i8 = 1;
pub const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
pub const SOURCE_STATIC_BROKER: i8 = 4;
pub const SOURCE_DEFAULT: i8 = 5;

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
    /// The key's documentation line (sent when a client asks for it).
    pub documentation: &'static str,
}

/// Where a broker config's value comes from (the cluster-wide dynamic
/// configs, then the static ones), and that value.
fn broker_value(static_defaults: &BrokerDefaults, catalog: &Catalog, key: &str) -> Option<Synonym> {
    if let Some(value) = catalog.broker_configs.get(key) {
        return Some(Synonym {
            name: key.to_string(),
            value: Some(value.clone()),
            source: SOURCE_DYNAMIC_DEFAULT_BROKER,
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
    keys::topic_keys()
        .filter(|key| wanted(keys, key))
        .map(|config| {
            let key = config.name;
            let broker_synonym = config.synonyms.first().copied();
            let mut synonyms = Vec::new();
            if let Some(value) = topic.configs.get(key) {
                synonyms.push(Synonym {
                    name: key.to_string(),
                    value: Some(value.clone()),
                    source: SOURCE_DYNAMIC_TOPIC,
                });
            }
            let default_value = TopicConfig::default_value(&effective, key);
            match broker_synonym.and_then(|b| broker_value(static_defaults, catalog, b)) {
                Some(broker) => {
                    let known_default = broker.source != SOURCE_DEFAULT;
                    synonyms.push(broker);
                    if known_default {
                        if let Some(b) = broker_synonym {
                            synonyms.push(Synonym {
                                name: b.to_string(),
                                value: keys::broker_key(b)
                                    .and_then(|k| k.default_value())
                                    .map(|v| v.to_string()),
                                source: SOURCE_DEFAULT,
                            });
                        }
                    }
                }
                None => synonyms.push(Synonym {
                    name: broker_synonym.unwrap_or(key).to_string(),
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
                config_type: config.config_type.code(),
                synonyms,
                documentation: config.doc,
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
    keys::reported_broker_keys()
        .filter(|key| wanted(keys, key))
        .filter_map(|config| {
            let key = config.name;
            let current = broker_value(static_defaults, catalog, key)?;
            let mut synonyms = vec![current.clone()];
            if current.source == SOURCE_DYNAMIC_DEFAULT_BROKER {
                if let Some(s) = static_value(static_defaults, key) {
                    synonyms.push(s);
                }
            }
            Some(ConfigEntry {
                name: key.to_string(),
                value: current.value,
                source: current.source,
                read_only: !config.is_dynamic_broker(),
                config_type: config.config_type.code(),
                synonyms,
                documentation: config.doc,
            })
        })
        .collect()
}

/// Whether `key` is among the keys a request asks for (all when None).
fn wanted(asked: Option<&[String]>, key: &ConfigKey) -> bool {
    asked.is_none_or(|asked| asked.iter().any(|a| a == key.name))
}
