//! A rolling upgrade: a cluster (3 broker+controller nodes and a
//! broker-only one) written and run by an earlier release's binary is
//! upgraded to this build one node at a time (SIGTERM, start the new binary
//! on the same data directory) under a steady acks=all load. Nothing
//! acknowledged is lost or read twice, a consumer group's committed offsets
//! survive, and the cluster stays at the feature level every node supports
//! (`src/features.rs`) until the last node runs the new binary, then goes
//! up by itself. The broker-only node goes last, so the active controller
//! runs the new binary while one broker still runs the old one. Going back
//! to the earlier binary afterwards is refused, with the reason.
//!
//! The earlier release is built from this clone's history by
//! `tests/upgrade/old-binary.sh` (cached in target/upgrade-from).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::cluster::{eventually, Cluster};
use common::load::{
    create_durable_topic, flush_without_failures, fully_in_sync, read_all, SteadyLoad,
};
use common::raw::Conn;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

/// The release upgraded from: the last commit before feature levels.
const FROM_COMMIT: &str = "c797b756112205ab4c7bde551d27f787d68daebe";
/// One debug build of that commit, on a busy 2-core machine.
const BUILD_TIMEOUT: Duration = Duration::from_secs(20 * 60);
const FEATURE: &str = "corelog.metadata.version";
/// The newest feature level of the binary under test.
const NEW_LEVEL: i16 = corelog::features::METADATA_VERSION_MAX as i16;

fn old_binary() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/upgrade/old-binary.sh");
    let mut child = Command::new("bash")
        .arg(&script)
        .arg(FROM_COMMIT)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run old-binary.sh");
    let status = common::wait_bounded(&mut child, BUILD_TIMEOUT)
        .unwrap_or_else(|| panic!("building {FROM_COMMIT} took over {BUILD_TIMEOUT:?}"));
    let output = child.wait_with_output().expect("old-binary.sh output");
    assert!(
        status.success(),
        "cannot build the release upgraded from ({FROM_COMMIT}): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// (supported max, finalized level) of corelog's feature as node `i`
/// reports it in ApiVersions; None from a binary without feature levels.
fn feature_levels(cluster: &Cluster, i: usize) -> Option<(i16, i16)> {
    let mut conn = Conn::connect(cluster.addr(i));
    let response: ApiVersionsResponse = conn.call(3, &ApiVersionsRequest::default());
    assert_eq!(response.error_code, 0, "ApiVersions from node {i}");
    let supported = response
        .supported_features
        .iter()
        .find(|f| f.name.as_str() == FEATURE)?;
    let finalized = response
        .finalized_features
        .iter()
        .find(|f| f.name.as_str() == FEATURE)
        .map_or(0, |f| f.max_version_level);
    Some((supported.max_version, finalized))
}

fn group_consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

/// The group's committed offset of each of `partitions` partitions.
fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<Offset> {
    let consumer = group_consumer(bootstrap, group);
    let mut wanted = TopicPartitionList::new();
    for p in 0..partitions {
        wanted.add_partition(topic, p);
    }
    let offsets = consumer
        .committed_offsets(wanted, Duration::from_secs(30))
        .expect("committed offsets");
    (0..partitions)
        .map(|p| offsets.find_partition(topic, p).unwrap().offset())
        .collect()
}

#[test]
fn a_rolling_upgrade_under_acks_all_load_loses_nothing_and_raises_the_feature_level_last() {
    let old = old_binary();
    let new = PathBuf::from(env!("CARGO_BIN_EXE_corelog"));
    let mut cluster = Cluster::start_with_binary(3, 1, 1, &[], &old);
    let topic = "upgraded";
    let partitions = 6;
    create_durable_topic(&cluster, topic, partitions);
    assert_eq!(
        feature_levels(&cluster, 0),
        None,
        "the earlier release has no feature levels"
    );

    // A group commits offsets through the old binaries.
    let group = "upgrade-group";
    let wanted: Vec<Offset> = (0..partitions)
        .map(|p| Offset::Offset(p as i64 + 1))
        .collect();
    {
        let consumer = group_consumer(&cluster.bootstrap_all(), group);
        let mut offsets = TopicPartitionList::new();
        for (p, offset) in wanted.iter().enumerate() {
            offsets
                .add_partition_offset(topic, p as i32, *offset)
                .unwrap();
        }
        consumer
            .commit(&offsets, CommitMode::Sync)
            .expect("commit through the old cluster");
    }

    let load = SteadyLoad::start(&cluster.bootstrap_all(), topic, partitions);
    let count = cluster.nodes.len();
    for i in 0..count {
        thread::sleep(Duration::from_secs(2));
        let id = cluster.nodes[i].id;
        let acked_before = load.producer.context().acked.lock().unwrap().len();
        assert!(cluster.terminate(i), "node {id} exits cleanly on SIGTERM");
        cluster.set_binary(i, &new);
        cluster.spawn(i);
        cluster.wait_ready(i);
        eventually(
            "the upgraded broker rejoins every ISR",
            Duration::from_secs(90),
            || fully_in_sync(&cluster, topic, 3),
        );
        let acked_after = load.producer.context().acked.lock().unwrap().len();
        println!(
            "node {id} upgraded: {} messages acknowledged meanwhile",
            acked_after - acked_before
        );
        if i + 1 < count {
            // An old binary is still in the cluster: every upgraded node
            // supports the new level and reports the cluster at level 1. Once
            // every voter runs the new binary the active controller does
            // too: it must keep waiting for the broker-only node.
            let hold = if i + 2 == count {
                Duration::from_secs(3)
            } else {
                Duration::ZERO
            };
            let until = Instant::now() + hold;
            loop {
                for upgraded in 0..=i {
                    assert_eq!(
                        feature_levels(&cluster, upgraded),
                        Some((NEW_LEVEL, 1)),
                        "node {} while node {} runs the earlier release",
                        cluster.nodes[upgraded].id,
                        cluster.nodes[count - 1].id
                    );
                }
                if Instant::now() >= until {
                    break;
                }
                thread::sleep(Duration::from_millis(200));
            }
        }
    }
    // Every node runs the new binary: the active controller finalizes
    // the new level by itself, and every node reports it.
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 0..count {
        eventually(
            "every node reports the cluster at the new level",
            deadline.saturating_duration_since(Instant::now()),
            || feature_levels(&cluster, i) == Some((NEW_LEVEL, NEW_LEVEL)),
        );
    }
    let described = common::corelog_ok(
        &[
            "features",
            "--bootstrap-server",
            &cluster.bootstrap(1),
            "describe",
        ],
        "",
    );
    assert!(
        described.stdout.contains(&format!(
            "Feature: corelog.metadata.version\tSupportedMinVersion: 1\t\
             SupportedMaxVersion: {NEW_LEVEL}\tFinalizedVersionLevel: {NEW_LEVEL}\tEpoch: "
        )),
        "{}",
        described.stdout
    );

    let (producer, total) = load.stop();
    flush_without_failures(&producer, Duration::from_secs(120));
    let acked = producer.context().acked.lock().unwrap().len() as u64;
    assert_eq!(acked, total, "every message sent was acknowledged");
    let read = read_all(&cluster.bootstrap_all(), topic, partitions, total as usize);
    let seen: std::collections::HashSet<&String> = read.iter().map(|(_, v)| v).collect();
    assert_eq!(
        seen.len() as u64,
        total,
        "every acknowledged message is read back"
    );
    assert_eq!(read.len() as u64, total, "and only once");
    assert_eq!(
        committed(&cluster.bootstrap_all(), group, topic, partitions),
        wanted,
        "the offsets committed through the earlier release"
    );

    // Going back is refused: the metadata log holds a record the earlier
    // release cannot read, so its binary may not register.
    let last = count - 1;
    assert!(cluster.terminate(last), "node 4 exits cleanly on SIGTERM");
    cluster.set_binary(last, &old);
    cluster.spawn(last);
    eventually(
        "the earlier release is told why it cannot join",
        Duration::from_secs(30),
        || {
            cluster
                .output(last)
                .contains("downgrades are not supported")
        },
    );
    assert!(
        (0..last).any(|i| cluster.output(i).contains("refusing broker 4")),
        "the active controller says whom it refused"
    );
}
