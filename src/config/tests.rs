//! Tests of building a [`Config`](super::Config) from flags, files and overrides.

use super::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

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
    assert!(Config::build(&args)
        .unwrap_err()
        .to_string()
        .contains("num.partitions"));
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
    let err = defaults
        .set("min.insync.replicas", "0")
        .unwrap_err()
        .to_string();
    assert!(err.contains("min.insync.replicas"), "{err}");
    let err = defaults
        .set("auto.leader.rebalance.enable", "yes")
        .unwrap_err()
        .to_string();
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
        let err = b.set(key, bad).unwrap_err().to_string();
        assert!(err.contains(key), "{key}={bad}: {err}");
    }
    // As Kafka: a bounded pool must hold one request of the largest size.
    b.set("queued.max.request.bytes", "2097152").unwrap();
    b.set("socket.request.max.bytes", "4194304").unwrap();
    assert!(b
        .check()
        .unwrap_err()
        .to_string()
        .contains("queued.max.request.bytes"));
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
    .unwrap_err()
    .to_string();
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
    .map_err(|e| e.to_string())
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
    let err = build_from(&bad_value, "n.properties", ServeArgs::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("num.partitions") && err.contains("n.properties"),
        "{err}"
    );
    let not_a_voter = NODE1.replace("node.id=1", "node.id=7");
    let err = build_from(&not_a_voter, "n.properties", ServeArgs::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("node.id 7"), "{err}");
    let broker_only = "process.roles=broker\nlisteners=PLAINTEXT://127.0.0.1:9092\n";
    let err = build_from(broker_only, "n.properties", ServeArgs::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("controller.quorum.voters"), "{err}");
    let wildcard = "listeners=PLAINTEXT://0.0.0.0:9092,CONTROLLER://127.0.0.1:9093\n\
                    controller.listener.names=CONTROLLER\n";
    let err = build_from(wildcard, "n.properties", ServeArgs::default())
        .unwrap_err()
        .to_string();
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
    let err = build_from("[kafka]\nbogus = 1\n", "s.toml", ServeArgs::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("bogus"), "{err}");
}

#[test]
fn tuning_knobs_are_validated_with_their_names() {
    let bad = |text: &str, key: &str| {
        let tuning: Tuning = toml::from_str(text).unwrap();
        let e = tuning.validate().unwrap_err().to_string();
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
    let off: Tuning = toml::from_str("shard_memory_bytes = 0\nfetch_read_ahead_bytes = 0").unwrap();
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

/// `shard_memory_bytes = "auto"`: a quarter of the memory
/// over the shards, never below 64 MiB or twice the read-ahead, never
/// above the bound; a size stays as given; other words are refused.
#[test]
fn shard_memory_auto_takes_a_share_of_the_machine() {
    const GIB: usize = 1024 * 1024 * 1024;
    let mut auto: Tuning = toml::from_str("shard_memory_bytes = \"auto\"").unwrap();
    auto.validate().unwrap();
    assert_eq!(auto.shard_memory, ShardMemory::Auto);
    auto.resolve_shard_memory(2, 24 * GIB);
    assert_eq!(auto.shard_memory_bytes, 3 * GIB);
    auto.resolve_shard_memory(64, 256 * GIB);
    assert_eq!(auto.shard_memory_bytes, GIB);
    auto.resolve_shard_memory(16, GIB);
    assert_eq!(auto.shard_memory_bytes, 64 * 1024 * 1024);
    auto.resolve_shard_memory(1, 1024 * GIB);
    assert_eq!(
        auto.shard_memory_bytes,
        crate::limits::SHARD_MEMORY_BYTES_MAX
    );
    let mut big_window: Tuning =
        toml::from_str("shard_memory_bytes = \"auto\"\nfetch_read_ahead_bytes = 134217728")
            .unwrap();
    big_window.resolve_shard_memory(16, GIB);
    assert_eq!(big_window.shard_memory_bytes, 256 * 1024 * 1024);
    assert_eq!(Tuning::default().shard_memory, ShardMemory::Auto);

    let mut fixed: Tuning = toml::from_str("shard_memory_bytes = 33554432").unwrap();
    fixed.resolve_shard_memory(2, 24 * GIB);
    assert_eq!(fixed.shard_memory_bytes, 32 * 1024 * 1024);
    let e = toml::from_str::<Tuning>("shard_memory_bytes = \"lots\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"auto\""), "{e}");
    // The machine's memory is read (this machine has some).
    assert!(process_memory_bytes() >= 64 * 1024 * 1024);
}

#[test]
fn every_shipped_tuning_profile_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tuning");
    let mut loaded = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let tuning = Tuning::load(&path).unwrap_or_else(|e| panic!("{e}"));
            // Named after its file, as /metrics reports it.
            let stem = path.file_stem().unwrap().to_string_lossy();
            assert_eq!(tuning.profile, stem);
            loaded += 1;
        }
    }
    assert!(loaded >= 2);
    assert_eq!(Tuning::default().profile, "default");
}

#[test]
fn fetch_session_slots_have_kafkas_name_default_and_a_bound() {
    let defaults = BrokerDefaults::default();
    assert_eq!(
        defaults
            .get("max.incremental.fetch.session.cache.slots")
            .unwrap(),
        "1000"
    );
    let mut b = BrokerDefaults::default();
    b.set("max.incremental.fetch.session.cache.slots", "0")
        .unwrap();
    assert_eq!(b.max_incremental_fetch_session_cache_slots, 0);
    for bad in ["-1", "100001"] {
        let err = b
            .set("max.incremental.fetch.session.cache.slots", bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains(bad), "{bad}: {err}");
    }
}

#[test]
fn the_sample_configs_build() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/config");
    // (file, broker role, controller role)
    for (file, broker, controller) in [
        ("server.properties", true, true),
        ("kraft/server.properties", true, true),
        ("kraft/broker.properties", true, false),
        ("kraft/controller.properties", false, true),
    ] {
        let args = ServeArgs {
            config: Some(samples.join(file)),
            ..ServeArgs::default()
        };
        let config = Config::build(&args).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(config.cluster.broker_role, broker, "{file}");
        assert_eq!(config.cluster.controller_role, controller, "{file}");
        assert!(config.cluster.has_quorum(), "{file} names its quorum");
    }
}

#[test]
fn the_http_listener_is_one_address_of_this_machine_or_off() {
    let mut b = BrokerDefaults::default();
    assert_eq!(
        b.http_listener.addr,
        Some("127.0.0.1:9644".parse().unwrap()),
        "Redpanda's admin port, on loopback"
    );
    assert_eq!(
        b.metrics_partition_limit,
        crate::limits::METRICS_PARTITIONS_DEFAULT
    );
    for (written, bound) in [
        ("0.0.0.0:9700", "0.0.0.0:9700"),
        (":9700", "0.0.0.0:9700"),
        ("http://localhost:9701", "127.0.0.1:9701"),
        ("[::1]:9702", "[::1]:9702"),
        (" 10.1.2.3:9703 ", "10.1.2.3:9703"),
    ] {
        b.set("http.listeners", written).unwrap();
        assert_eq!(
            b.http_listener.addr,
            Some(bound.parse().unwrap()),
            "{written}"
        );
        assert_eq!(b.get("http.listeners").unwrap(), written.trim());
    }
    b.set("http.listeners", "").unwrap();
    assert_eq!(b.http_listener.addr, None, "empty: off");
    for bad in [
        "9644",
        "host.example:9644",
        "127.0.0.1:99999",
        "127.0.0.1:",
        "ftp://1.2.3.4:1",
    ] {
        let err = b.set("http.listeners", bad).unwrap_err().to_string();
        assert!(
            err.contains("http.listeners") && err.contains("host:port"),
            "{bad}: {err}"
        );
    }
    b.set("metrics.partition.limit", "0").unwrap();
    assert_eq!(b.metrics_partition_limit, 0);
    assert!(b.set("metrics.partition.limit", "-1").is_err());
}
