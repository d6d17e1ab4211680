//! What re-reading the configuration changes (SIGHUP, `server::reload`):
//! which changed keys a running broker applies and which need a restart,
//! and the static broker configs it runs with afterwards.
//!
//! A broker key whose value (or whether it is written) differs between the
//! configs in force and the re-read ones is *applied* when the key table
//! marks it dynamic (`ConfigKey::is_dynamic_broker`, the keys
//! IncrementalAlterConfigs may change) and *needs a restart* otherwise, as
//! do the node's other settings (listeners, data directory, shards, cores,
//! tuning profile, roles and quorum). Pure: no I/O, no state; the caller
//! logs and publishes what this returns.

use super::keys::{self, ConfigKey};
use super::{BrokerDefaults, Config, Tuning};

/// What a re-read configuration changes against the one in force.
#[derive(Clone, Debug)]
pub struct ConfigChanges {
    /// Dynamic broker keys whose static value changed, in key-table order:
    /// a running broker takes them.
    pub applied: Vec<&'static str>,
    /// Changed keys and settings a running broker cannot take; they need a
    /// restart and are not applied.
    pub needs_restart: Vec<String>,
    /// The static broker configs to run with: those in force with the
    /// `applied` keys' new values, read-only ones unchanged (they keep
    /// what the process started with until it restarts).
    pub broker: BrokerDefaults,
}

impl ConfigChanges {
    /// Compares the configs in force with `reread` (built from the same
    /// command line and files, `Config::build`).
    pub fn between(in_force: &Config, reread: &Config) -> ConfigChanges {
        let mut applied = Vec::new();
        let mut needs_restart = Vec::new();
        let mut broker = in_force.broker.clone();
        for key in keys::reported_broker_keys() {
            if !broker_key_changed(key, &in_force.broker, &reread.broker) {
                continue;
            }
            if key.is_dynamic_broker() {
                take_broker_key(key, &mut broker, &reread.broker);
                applied.push(key.name);
            } else {
                needs_restart.push(key.name.to_string());
            }
        }
        needs_restart.extend(
            node_settings_changed(in_force, reread)
                .into_iter()
                .map(str::to_string),
        );
        ConfigChanges {
            applied,
            needs_restart,
            broker,
        }
    }
}

/// Whether `key` differs: its value, or what the file wrote for it or for
/// its coarser units (`log.retention.hours` for `log.retention.ms`), which
/// DescribeConfigs reports as the value's source.
fn broker_key_changed(key: &ConfigKey, before: &BrokerDefaults, after: &BrokerDefaults) -> bool {
    key.get_broker(before) != key.get_broker(after)
        || written_names(key).any(|name| before.explicit.get(name) != after.explicit.get(name))
}

/// Copies `key`'s value, and what was written for it, from `from` into
/// `into`.
fn take_broker_key(key: &ConfigKey, into: &mut BrokerDefaults, from: &BrokerDefaults) {
    if let Some(value) = key.get_broker(from) {
        key.set_broker(into, &value);
    }
    for name in written_names(key) {
        match from.explicit.get(name) {
            Some(written) => into.explicit.insert(name.to_string(), written.clone()),
            None => into.explicit.remove(name),
        };
    }
}

/// The names a file may write `key`'s value under: its own and its
/// coarser units'.
fn written_names(key: &ConfigKey) -> impl Iterator<Item = &'static str> {
    std::iter::once(key.name).chain(key.synonyms.iter().copied())
}

/// The node settings outside the broker keys that differ, by the names a
/// server file writes them under; all are read at start only.
fn node_settings_changed(in_force: &Config, reread: &Config) -> Vec<&'static str> {
    let (a, b) = (in_force, reread);
    let (ca, cb) = (&a.cluster, &b.cluster);
    [
        (
            a.listen != b.listen || ca.listeners != cb.listeners,
            "listeners",
        ),
        // Files named by the keys are re-read when they change (tls);
        // the keys themselves are read at start.
        (a.ssl != b.ssl, "ssl.*"),
        (
            ca.controller_listen != cb.controller_listen,
            "listeners (CONTROLLER)",
        ),
        (ca.advertised != cb.advertised, "advertised.listeners"),
        (
            (ca.broker_role, ca.controller_role) != (cb.broker_role, cb.controller_role),
            "process.roles",
        ),
        (ca.voters != cb.voters, "controller.quorum.voters"),
        (a.data_dir != b.data_dir, "log.dirs"),
        (a.shards != b.shards, "shards"),
        (a.cores != b.cores, "cores"),
        (tuning_changed(&a.tuning, &b.tuning), "tuning profile"),
    ]
    .into_iter()
    .filter_map(|(changed, name)| changed.then_some(name))
    .collect()
}

/// Whether the profiles differ as written: `shard_memory_bytes = "auto"`
/// resolves against the machine's memory at each build, which may move
/// without anyone editing the profile.
fn tuning_changed(in_force: &Tuning, reread: &Tuning) -> bool {
    let as_written = |tuning: &Tuning| Tuning {
        shard_memory_bytes: 0,
        ..tuning.clone()
    };
    as_written(in_force) != as_written(reread)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServeArgs;

    /// A config built as `serve` builds it, from `overrides` only.
    fn built(overrides: &[&str]) -> Config {
        Config::build(&ServeArgs {
            overrides: overrides.iter().map(|o| o.to_string()).collect(),
            shards: Some(1),
            ..ServeArgs::default()
        })
        .expect("a valid config")
    }

    #[test]
    fn the_same_config_changes_nothing() {
        let config = built(&["log.retention.ms=3600000", "num.partitions=3"]);
        let changes = ConfigChanges::between(&config, &config.clone());
        assert!(changes.applied.is_empty(), "{:?}", changes.applied);
        assert!(
            changes.needs_restart.is_empty(),
            "{:?}",
            changes.needs_restart
        );
        assert_eq!(changes.broker.log_retention_ms, 3_600_000);
    }

    #[test]
    fn dynamic_keys_are_applied_and_read_only_ones_need_a_restart() {
        let in_force = built(&["log.retention.ms=3600000", "num.partitions=3"]);
        let reread = built(&[
            "log.retention.ms=60000",
            "log.segment.bytes=1048576",
            "num.partitions=5",
            "node.id=7",
        ]);
        let changes = ConfigChanges::between(&in_force, &reread);
        assert_eq!(changes.applied, ["log.retention.ms", "log.segment.bytes"]);
        assert_eq!(changes.needs_restart, ["node.id", "num.partitions"]);
        // The dynamic keys take the new values, written as the file has
        // them (DescribeConfigs reports them as static configs) ...
        assert_eq!(changes.broker.log_retention_ms, 60_000);
        assert_eq!(changes.broker.log_segment_bytes, 1_048_576);
        assert_eq!(
            changes
                .broker
                .explicit
                .get("log.segment.bytes")
                .map(String::as_str),
            Some("1048576")
        );
        // ... the read-only ones keep what the broker started with.
        assert_eq!(changes.broker.num_partitions, 3);
        assert_eq!(changes.broker.node_id, in_force.broker.node_id);
        assert_eq!(
            changes
                .broker
                .explicit
                .get("num.partitions")
                .map(String::as_str),
            Some("3")
        );
        assert!(!changes.broker.explicit.contains_key("node.id"));
    }

    #[test]
    fn a_dynamic_key_removed_from_the_file_goes_back_to_its_default() {
        let in_force = built(&["log.retention.bytes=1000000"]);
        let changes = ConfigChanges::between(&in_force, &built(&[]));
        assert_eq!(changes.applied, ["log.retention.bytes"]);
        assert_eq!(
            changes.broker.log_retention_bytes,
            BrokerDefaults::default().log_retention_bytes
        );
        assert!(!changes.broker.explicit.contains_key("log.retention.bytes"));
    }

    #[test]
    fn a_coarser_unit_changes_the_key_it_sets() {
        let in_force = built(&["log.retention.hours=168"]);
        let changes = ConfigChanges::between(&in_force, &built(&["log.retention.hours=24"]));
        assert_eq!(changes.applied, ["log.retention.ms"]);
        assert!(
            changes.needs_restart.is_empty(),
            "{:?}",
            changes.needs_restart
        );
        assert_eq!(changes.broker.log_retention_ms, 24 * 3_600_000);
        assert_eq!(
            changes
                .broker
                .explicit
                .get("log.retention.hours")
                .map(String::as_str),
            Some("24")
        );
        // The same value written differently is a change of source only,
        // still taken so DescribeConfigs tells what the file says.
        let changes = ConfigChanges::between(&in_force, &built(&["log.retention.ms=604800000"]));
        assert_eq!(changes.applied, ["log.retention.ms"]);
        assert_eq!(changes.broker.log_retention_ms, 604_800_000);
        assert!(!changes.broker.explicit.contains_key("log.retention.hours"));
    }

    #[test]
    fn node_settings_need_a_restart() {
        let in_force = built(&[]);
        // The "auto" cache budget follows the machine's memory: not an edit.
        let mut resized = in_force.clone();
        resized.tuning.shard_memory_bytes += 4096;
        let changes = ConfigChanges::between(&in_force, &resized);
        assert!(
            changes.needs_restart.is_empty(),
            "{:?}",
            changes.needs_restart
        );
        let mut reread = in_force.clone();
        reread.listen = "127.0.0.1:9999".parse().unwrap();
        reread.data_dir = "/elsewhere".into();
        reread.shards = 4;
        reread.tuning.ring_depth *= 2;
        reread.cluster.voters.push(crate::config::Voter {
            id: 1,
            host: "localhost".into(),
            port: 9093,
        });
        let changes = ConfigChanges::between(&in_force, &reread);
        assert!(changes.applied.is_empty(), "{:?}", changes.applied);
        assert_eq!(
            changes.needs_restart,
            [
                "listeners",
                "controller.quorum.voters",
                "log.dirs",
                "shards",
                "tuning profile"
            ]
        );
    }

    #[test]
    fn every_dynamic_key_is_applied_and_no_read_only_one_is() {
        let in_force = built(&[]);
        let (mut dynamic, mut read_only) = (0, 0);
        for key in keys::reported_broker_keys() {
            let Some(value) = other_value(key) else {
                continue;
            };
            if key.is_dynamic_broker() {
                dynamic += 1;
            } else {
                read_only += 1;
            }
            let mut reread = in_force.clone();
            reread.broker.set(key.name, &value).unwrap();
            let changes = ConfigChanges::between(&in_force, &reread);
            if key.is_dynamic_broker() {
                assert_eq!(changes.applied, [key.name]);
                assert!(changes.needs_restart.is_empty(), "{}", key.name);
                assert_eq!(
                    changes.broker.get(key.name).as_deref(),
                    Some(value.as_str())
                );
            } else {
                assert!(changes.applied.is_empty(), "{}", key.name);
                assert_eq!(changes.needs_restart, [key.name], "{}", key.name);
                assert_eq!(changes.broker.get(key.name), in_force.broker.get(key.name));
            }
        }
        // Every dynamic key was tried, and most read-only ones.
        let dynamic_keys = keys::KEYS.iter().filter(|k| k.is_dynamic_broker()).count();
        assert_eq!(dynamic, dynamic_keys);
        assert!(read_only >= 20, "{read_only} read-only keys tried");
    }

    /// A valid value of `key` other than its default, for the key types
    /// the table has (None for a free-form one).
    fn other_value(key: &ConfigKey) -> Option<String> {
        use crate::config::keys::{ConfigType, Valid};
        let candidates: Vec<String> = match (key.config_type, key.valid) {
            (ConfigType::Boolean, _) => vec!["true".into(), "false".into()],
            (_, Valid::OneOf(words)) => words.iter().map(|w| w.to_string()).collect(),
            (_, Valid::Range(min, max)) => [min.max(0) + 7, min.max(0) + 8]
                .into_iter()
                .filter(|v| *v <= max)
                .map(|v| v.to_string())
                .collect(),
            (_, Valid::MinusOneOrAtLeast(min, _)) => {
                vec![(min.max(0) + 7).to_string(), (min.max(0) + 8).to_string()]
            }
            _ => Vec::new(),
        };
        let default = key.default_value().map(|v| v.to_string());
        candidates.into_iter().find(|c| Some(c) != default.as_ref())
    }
}
