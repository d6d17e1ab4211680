//! SIGHUP (`systemctl reload corelog`, `server/reload.rs`) through the
//! binary: a broker started from a properties file re-reads it, takes the
//! dynamic broker configs that changed on every shard (DescribeConfigs
//! reports them as static configs, topics without overrides resolve them,
//! partitions roll at the new segment size), keeps dynamic configs set by
//! IncrementalAlterConfigs on top, and keeps serving; a file that no longer
//! builds, and read-only keys, change nothing.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use common::raw::{code, now_ms, simple_batch, str_bytes, Conn};
use common::{free_port, partition_dir, segment_logs, Broker, BrokerOptions};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_STATIC_BROKER: i8 = 4;
/// How long a reload may take to show on every shard.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(15);
/// Fresh connections that must agree before a value counts as applied:
/// connections spread over the shards (SO_REUSEPORT), so eight in a row
/// seeing it leaves one shard unchecked with odds of 1 in 128.
const AGREEING_CONNECTIONS: usize = 8;
const SHARDS: usize = 2;
const PARTITIONS: i32 = 4;

/// A broker run from a server.properties in its own directory.
struct FileBroker {
    broker: Broker,
    config: PathBuf,
    data: PathBuf,
    port: u16,
    /// Removes the file and the data when the test is over (after `broker`).
    _dir: tempfile::TempDir,
}

impl FileBroker {
    /// Starts a broker from a file holding `broker_lines` (Kafka broker
    /// configs, one per line) under its listener and data directory.
    fn start(broker_lines: &str) -> FileBroker {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("server.properties");
        let data = dir.path().join("data");
        let port = free_port();
        write_properties(&config, port, &data, broker_lines);
        let broker = Broker::start_with(
            BrokerOptions::default()
                .shards(SHARDS)
                .data_dir(data.clone())
                .config_file(config.clone(), port),
        );
        FileBroker {
            broker,
            config,
            data,
            port,
            _dir: dir,
        }
    }

    /// Rewrites the file with the same listener and data directory.
    fn rewrite(&self, broker_lines: &str) {
        write_properties(&self.config, self.port, &self.data, broker_lines);
    }

    fn sighup(&self) {
        let pid = libc::pid_t::try_from(self.broker.pid()).expect("pid fits pid_t");
        // SAFETY: plain kill(2) on our own child, which has not been reaped.
        let rc = unsafe { libc::kill(pid, libc::SIGHUP) };
        assert_eq!(rc, 0, "kill(SIGHUP) failed");
    }

    /// Waits (bounded) until the broker's output holds `count` lines
    /// containing `text`, and returns the output.
    fn wait_for_log(&mut self, text: &str, count: usize) -> String {
        let deadline = Instant::now() + RELOAD_TIMEOUT;
        loop {
            self.broker.assert_running();
            let output = self.broker.stderr();
            if output.lines().filter(|l| l.contains(text)).count() >= count {
                return output;
            }
            assert!(
                Instant::now() < deadline,
                "no {count} line(s) with {text:?} within {RELOAD_TIMEOUT:?}; output:\n{output}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

fn write_properties(path: &Path, port: u16, data: &Path, broker_lines: &str) {
    let text = format!(
        "node.id=1\n\
         listeners=PLAINTEXT://127.0.0.1:{port}\n\
         log.dirs={}\n\
         {broker_lines}",
        data.display()
    );
    fs::write(path, text).unwrap();
}

/// One config of one resource, described on a fresh connection (so on
/// whichever shard the kernel gives it), with its synonyms.
fn describe(broker: &Broker, kind: i8, name: &str, key: &str) -> DescribeConfigsResourceResult {
    let mut conn = Conn::connect(broker.addr());
    let version = conn.api_versions().pick(ApiKey::DescribeConfigs, 4);
    let request = DescribeConfigsRequest::default()
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(kind)
            .with_resource_name(str_bytes(name))
            .with_configuration_keys(Some(vec![str_bytes(key)]))])
        .with_include_synonyms(true);
    let response: DescribeConfigsResponse = conn.call(version, &request);
    let result = response.results.into_iter().next().expect("one result");
    assert_eq!(result.error_code, code::NONE, "describe {name} {key}");
    let [config] = <[_; 1]>::try_from(result.configs).unwrap_or_else(|configs| {
        panic!("describe {name} {key}: one config expected, got {configs:?}")
    });
    config
}

/// (value, source) of `key` as one fresh connection describes it.
fn value_and_source(broker: &Broker, kind: i8, name: &str, key: &str) -> (String, i8) {
    let config = describe(broker, kind, name, key);
    (
        config.value.map(|v| v.to_string()).unwrap_or_default(),
        config.config_source,
    )
}

/// Waits (bounded) until `AGREEING_CONNECTIONS` fresh connections in a row
/// describe `key` of the resource as `expected` (value, source).
fn wait_described(broker: &Broker, kind: i8, name: &str, key: &str, expected: (&str, i8)) {
    let deadline = Instant::now() + RELOAD_TIMEOUT;
    let mut agreeing = 0;
    while agreeing < AGREEING_CONNECTIONS {
        let (value, source) = value_and_source(broker, kind, name, key);
        if (value.as_str(), source) == expected {
            agreeing += 1;
            continue;
        }
        agreeing = 0;
        assert!(
            Instant::now() < deadline,
            "{name} {key}: expected {expected:?} within {RELOAD_TIMEOUT:?}, last described \
             ({value:?}, {source}); broker output:\n{}",
            broker.stderr()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts that `AGREEING_CONNECTIONS` fresh connections describe `key` as
/// `expected` now.
fn assert_described(broker: &Broker, kind: i8, name: &str, key: &str, expected: (&str, i8)) {
    for _ in 0..AGREEING_CONNECTIONS {
        let (value, source) = value_and_source(broker, kind, name, key);
        assert_eq!(
            (value.as_str(), source),
            expected,
            "{name} {key}; broker output:\n{}",
            broker.stderr()
        );
    }
}

/// Sets a cluster-wide dynamic broker config (IncrementalAlterConfigs).
fn alter_cluster_default(broker: &Broker, key: &str, value: &str) {
    let mut conn = Conn::connect(broker.addr());
    let version = conn.api_versions().pick(ApiKey::IncrementalAlterConfigs, 1);
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(RESOURCE_BROKER)
            .with_resource_name(str_bytes(""))
            .with_configs(vec![AlterableConfig::default()
                .with_name(str_bytes(key))
                .with_config_operation(0)
                .with_value(Some(str_bytes(value)))]),
    ]);
    let response: IncrementalAlterConfigsResponse = conn.call(version, &request);
    let result = &response.responses[0];
    assert_eq!(
        result.error_code,
        code::NONE,
        "{key}={value}: {:?}",
        result.error_message
    );
}

/// Produces `batches` batches of one 1000-byte record to each partition of
/// `topic`.
fn produce_batches(broker: &Broker, topic: &str, batches: usize) {
    let mut conn = Conn::connect(broker.addr());
    let version = conn.api_versions().pick(ApiKey::Produce, 9);
    for partition in 0..PARTITIONS {
        for _ in 0..batches {
            let batch = simple_batch("reload", 1, 1000, now_ms());
            let (error, _) = conn.produce(version, topic, partition, batch);
            assert_eq!(error, code::NONE, "produce to {topic}-{partition}");
        }
    }
}

/// Records each partition of `topic` returns when fetched from the start.
fn fetched_per_partition(broker: &Broker, topic: &str) -> Vec<usize> {
    let mut conn = Conn::connect(broker.addr());
    let version = conn.api_versions().pick(ApiKey::Fetch, 12);
    (0..PARTITIONS)
        .map(|p| conn.fetch_all(version, topic, p, 0).len())
        .collect()
}

fn segments_per_partition(broker: &Broker, topic: &str) -> Vec<usize> {
    (0..PARTITIONS)
        .map(|p| segment_logs(&partition_dir(broker, topic, p)).len())
        .collect()
}

#[test]
fn sighup_applies_changed_dynamic_configs_on_every_shard() {
    let mut node = FileBroker::start(
        "log.retention.ms=3600000\n\
         log.retention.bytes=1000000000\n",
    );
    let broker = &node.broker;
    broker.create_topic("earlier", PARTITIONS, &[]);
    broker.create_topic("overridden", 1, &[("retention.ms", "123456")]);
    // A dynamic config set through the wire wins over the file, before and
    // after the reload.
    alter_cluster_default(broker, "log.retention.bytes", "555555555");
    produce_batches(broker, "earlier", 10);
    assert_eq!(segments_per_partition(broker, "earlier"), [1; 4]);
    assert_described(
        broker,
        RESOURCE_BROKER,
        "1",
        "log.retention.ms",
        ("3600000", SOURCE_STATIC_BROKER),
    );

    node.rewrite(
        "log.retention.ms=7200000\n\
         log.retention.bytes=2000000000\n\
         log.segment.bytes=4096\n",
    );
    node.sighup();
    let output = node.wait_for_log("SIGHUP: reloaded", 1);
    assert!(
        output.contains("applying log.retention.bytes=2000000000, log.retention.ms=7200000, log.segment.bytes=4096"),
        "{output}"
    );
    let broker = &node.broker;
    wait_described(
        broker,
        RESOURCE_BROKER,
        "1",
        "log.retention.ms",
        ("7200000", SOURCE_STATIC_BROKER),
    );
    wait_described(
        broker,
        RESOURCE_BROKER,
        "1",
        "log.segment.bytes",
        ("4096", SOURCE_STATIC_BROKER),
    );
    // A topic created before, without overrides, resolves the new value.
    wait_described(
        broker,
        RESOURCE_TOPIC,
        "earlier",
        "retention.ms",
        ("7200000", SOURCE_STATIC_BROKER),
    );
    // A topic's own config and the dynamic broker config stay on top of
    // the file; the file's new value lies under the dynamic one.
    assert_described(
        broker,
        RESOURCE_TOPIC,
        "overridden",
        "retention.ms",
        ("123456", SOURCE_DYNAMIC_TOPIC),
    );
    assert_described(
        broker,
        RESOURCE_BROKER,
        "1",
        "log.retention.bytes",
        ("555555555", SOURCE_DYNAMIC_DEFAULT_BROKER),
    );
    let synonyms: Vec<(String, i8)> = describe(broker, RESOURCE_BROKER, "1", "log.retention.bytes")
        .synonyms
        .into_iter()
        .map(|s| (s.value.map(|v| v.to_string()).unwrap_or_default(), s.source))
        .collect();
    assert_eq!(
        synonyms,
        [
            ("555555555".to_string(), SOURCE_DYNAMIC_DEFAULT_BROKER),
            ("2000000000".to_string(), SOURCE_STATIC_BROKER),
        ]
    );

    // Every partition, on every shard, took the new segment size: the
    // 10 KB already in each active segment is past it, so the next appends
    // roll.
    produce_batches(broker, "earlier", 10);
    for (partition, segments) in segments_per_partition(broker, "earlier")
        .into_iter()
        .enumerate()
    {
        assert!(
            segments > 1,
            "earlier-{partition} did not roll at log.segment.bytes=4096: {segments} segment(s)"
        );
    }
    assert_eq!(fetched_per_partition(broker, "earlier"), [20; 4]);
    node.broker.assert_running();
}

#[test]
fn sighup_with_a_bad_file_or_a_read_only_change_keeps_what_is_in_force() {
    let mut node = FileBroker::start(
        "log.retention.ms=3600000\n\
         num.partitions=3\n",
    );
    node.broker.create_topic("served", PARTITIONS, &[]);

    // A file that no longer builds: nothing of it is taken, not even its
    // valid new value.
    node.rewrite(
        "log.retention.ms=7200000\n\
         log.segment.bytes=lots\n\
         num.partitions=3\n",
    );
    node.sighup();
    let output = node.wait_for_log("SIGHUP: cannot reload", 1);
    let line = output
        .lines()
        .find(|l| l.contains("SIGHUP: cannot reload"))
        .unwrap();
    assert!(
        line.contains(&node.config.display().to_string()) && line.contains("log.segment.bytes"),
        "the error names neither the file nor the key: {line}"
    );
    // Give every shard the time a reload takes to show, then check none
    // took anything.
    thread::sleep(Duration::from_millis(500));
    assert_described(
        &node.broker,
        RESOURCE_BROKER,
        "1",
        "log.retention.ms",
        ("3600000", SOURCE_STATIC_BROKER),
    );
    produce_batches(&node.broker, "served", 2);
    assert_eq!(fetched_per_partition(&node.broker, "served"), [2; 4]);

    // A read-only key changed beside a dynamic one: the dynamic one is
    // applied (so the reload did happen), the read-only one waits for a
    // restart.
    node.rewrite(
        "log.retention.ms=7200000\n\
         num.partitions=5\n",
    );
    node.sighup();
    let output = node.wait_for_log("needs a restart", 1);
    assert!(
        output
            .lines()
            .any(|l| l.contains("num.partitions changed but needs a restart")),
        "{output}"
    );
    wait_described(
        &node.broker,
        RESOURCE_BROKER,
        "1",
        "log.retention.ms",
        ("7200000", SOURCE_STATIC_BROKER),
    );
    assert_described(
        &node.broker,
        RESOURCE_BROKER,
        "1",
        "num.partitions",
        ("3", SOURCE_STATIC_BROKER),
    );
    let described = describe(&node.broker, RESOURCE_BROKER, "1", "num.partitions");
    assert!(described.read_only);
    produce_batches(&node.broker, "served", 2);
    assert_eq!(fetched_per_partition(&node.broker, "served"), [4; 4]);

    // The same file again: still pending a restart, nothing new applied.
    node.sighup();
    node.wait_for_log("needs a restart", 2);
    node.wait_for_log("no dynamic broker config changed", 1);
    node.broker.assert_running();
}
