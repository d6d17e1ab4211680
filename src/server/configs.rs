//! Describing configs the way Kafka does: each config with its value, where
//! the value comes from (topic override, dynamic broker config, static
//! broker config, default), and its synonyms in precedence order. Used by
//! DescribeConfigs and by CreateTopics v5+. Which keys exist, their types,
//! synonyms, documentation and whether they may change come from the key
//! table (`config/keys.rs`).
//!
//! Dynamic broker configs come in two layers, as in Kafka: the cluster-wide
//! defaults (`Catalog::broker_configs`, written on the broker resource ""
//! by `kafka-configs --entity-default`), described as
//! DYNAMIC_DEFAULT_BROKER_CONFIG, and one broker's own
//! (`Catalog::per_broker_configs`, written on resource "N"), described as
//! DYNAMIC_BROKER_CONFIG; a broker's own value wins over the default, which
//! wins over the static config file.

use crate::config::keys::{self, ConfigKey};
use crate::config::{BrokerDefaults, TopicConfig};
use crate::metadata::{Catalog, TopicMeta};

/// Kafka's `ConfigSource` codes.
pub const SOURCE_DYNAMIC_TOPIC: i8 = 1;
pub const SOURCE_DYNAMIC_BROKER: i8 = 2;
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

/// Which broker configs a description is about: the cluster-wide dynamic
/// defaults (resource name "") or every config of one broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerScope {
    ClusterDefault,
    Node(i32),
}

/// Every value `key` has for broker `node`, in precedence order: its own
/// dynamic value, the cluster-wide dynamic one, the static one (or the
/// built-in default).
fn broker_values(
    static_defaults: &BrokerDefaults,
    catalog: &Catalog,
    node: i32,
    key: &str,
) -> Vec<Synonym> {
    let dynamic = |value: Option<&String>, source| {
        value.map(|v| Synonym {
            name: key.to_string(),
            value: Some(v.clone()),
            source,
        })
    };
    let own = catalog
        .per_broker_configs
        .get(&node)
        .and_then(|c| c.get(key));
    [
        dynamic(own, SOURCE_DYNAMIC_BROKER),
        dynamic(
            catalog.broker_configs.get(key),
            SOURCE_DYNAMIC_DEFAULT_BROKER,
        ),
        static_value(static_defaults, key),
    ]
    .into_iter()
    .flatten()
    .collect()
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
    let node = static_defaults.node_id;
    let effective = static_defaults.with_dynamic(&catalog.dynamic_broker_configs(node));
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
            let broker_values = broker_synonym
                .map(|b| broker_values(static_defaults, catalog, node, b))
                .unwrap_or_default();
            match broker_values.last().cloned() {
                Some(last) => {
                    synonyms.extend(broker_values);
                    if last.source != SOURCE_DEFAULT {
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

/// The configs of `scope`, optionally only the `keys` asked for: for a
/// broker every config with its value in force and the values under it
/// as synonyms; for the cluster default only the dynamic defaults set.
pub fn broker_entries(
    static_defaults: &BrokerDefaults,
    catalog: &Catalog,
    scope: BrokerScope,
    keys: Option<&[String]>,
) -> Vec<ConfigEntry> {
    keys::reported_broker_keys()
        .filter(|key| wanted(keys, key))
        .filter_map(|config| {
            let key = config.name;
            let synonyms = match scope {
                BrokerScope::Node(node) => broker_values(static_defaults, catalog, node, key),
                // The dynamic default and what lies under it; no broker's own.
                BrokerScope::ClusterDefault if catalog.broker_configs.contains_key(key) => {
                    broker_values(static_defaults, catalog, static_defaults.node_id, key)
                        .into_iter()
                        .filter(|s| s.source != SOURCE_DYNAMIC_BROKER)
                        .collect()
                }
                BrokerScope::ClusterDefault => Vec::new(),
            };
            let current = synonyms.first()?.clone();
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
