//! Upgrades: this binary starts on data directories written by earlier
//! corelog versions (tests/fixtures/data-<commit>/, each made once with
//! that version's binary by tests/fixtures/make-data.sh and never
//! regenerated) and reads every record and committed offset back; `storage
//! info` shows the formats it found; and a directory marked with a newer
//! storage format than this binary's is refused before anything in it is
//! opened.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::cluster::{copy_dir, eventually, Cluster};
use common::{corelog, corelog_ok, Broker, BrokerOptions};

/// The fixtures, oldest first, with what each was written by.
const FIXTURES: &[(&str, &str)] = &[(
    "data-8488efc",
    "commit 8488efc: storage format 1, before meta.properties named it",
)];

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Every record of `topic` as the fixture's records.txt has them: "<topic>
/// Partition:<p>\tOffset:<o>\t<key>\t<value>", sorted.
fn read_topic(bootstrap: &str, topic: &str, expected: usize) -> Vec<String> {
    let run = corelog_ok(
        &[
            "console-consumer",
            "--bootstrap-server",
            bootstrap,
            "--topic",
            topic,
            "--from-beginning",
            "--max-messages",
            &expected.to_string(),
            "--timeout-ms",
            "20000",
            "--property",
            "print.partition=true",
            "--property",
            "print.offset=true",
            "--property",
            "print.key=true",
        ],
        "",
    );
    run.stdout
        .lines()
        .map(|line| format!("{topic} {line}"))
        .collect()
}

/// The group's committed offsets as "topic partition offset" lines,
/// sorted, from `consumer-groups --describe`.
fn committed(bootstrap: &str, group: &str) -> Vec<String> {
    let run = corelog_ok(
        &[
            "consumer-groups",
            "--bootstrap-server",
            bootstrap,
            "--describe",
            "--group",
            group,
        ],
        "",
    );
    let mut lines: Vec<String> = run
        .stdout
        .lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // GROUP TOPIC PARTITION CURRENT-OFFSET ...
            (cols.len() >= 4 && cols[0] == group)
                .then(|| format!("{} {} {}", cols[1], cols[2], cols[3]))
        })
        .collect();
    lines.sort();
    lines
}

/// Appends one record to the fixture's compacted topic (10 records, offsets
/// 0-9) and reads it back at offset 10: the log goes on where the earlier
/// version left it.
fn writes_on(bootstrap: &str, name: &str) {
    let run = corelog_ok(
        &[
            "console-producer",
            "--bootstrap-server",
            bootstrap,
            "--topic",
            "compacted",
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=:",
        ],
        "key-9:after-the-upgrade\n",
    );
    assert!(run.success());
    let after = read_topic(bootstrap, "compacted", 11);
    assert!(
        after
            .last()
            .is_some_and(|r| r.ends_with("Offset:10\tkey-9\tafter-the-upgrade")),
        "{name}: {after:?}"
    );
}

#[test]
fn this_binary_reads_every_record_and_offset_earlier_versions_wrote() {
    for (name, written_by) in FIXTURES {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        copy_dir(&fixture(name).join("data"), &data);
        let (expected_records, expected_offsets) = expected(name);
        assert!(expected_records.len() >= 70, "{name}: records.txt");

        // Two shards, though it was written by one: placements move.
        let mut broker = Broker::start_with(
            BrokerOptions::default()
                .data_dir(data.clone())
                .create_data_dir(false)
                .shards(2),
        );
        assert_eq!(
            read_records(&broker.bootstrap(), &expected_records),
            expected_records,
            "{name} ({written_by}): records"
        );
        assert_eq!(
            committed(&broker.bootstrap(), "fixture-group"),
            expected_offsets,
            "{name} ({written_by}): committed offsets"
        );
        // The log goes on where the old version left it.
        writes_on(&broker.bootstrap(), name);
        let (status, _) = broker.terminate();
        assert!(status.success(), "{name}: broker exit {status}");

        // Started once, the directory names its storage format.
        let properties = dir.path().join("node.properties");
        fs::write(
            &properties,
            format!("node.id=1\nlog.dirs={}\n", data.display()),
        )
        .unwrap();
        let info = corelog_ok(
            &["storage", "info", "--config", properties.to_str().unwrap()],
            "",
        );
        for line in [
            "storage format (meta.properties): format 1 (1 file)",
            "segments (.log): batch magic 2",
            "topic catalog (corelog-metadata.json): format 1 (1 file)",
            "partition.metadata: version 0",
        ] {
            assert!(
                info.stdout.contains(line),
                "{name}: no {line:?} in\n{}",
                info.stdout
            );
        }
    }
}

/// A directory a newer corelog wrote (storage format 2 in meta.properties)
/// is refused at start with the versions named, and nothing in it changes.
#[test]
fn a_directory_of_a_newer_storage_format_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&fixture(FIXTURES[0].0).join("data"), &data);
    let meta = data.join("meta.properties");
    let text = fs::read_to_string(&meta).unwrap();
    fs::write(&meta, format!("{text}corelog.storage.format.version=2\n")).unwrap();
    let segment = data.join("orders-0/00000000000000000000.log");
    let before = fs::read(&segment).unwrap();
    let run = corelog(
        &[
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", common::free_port()),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        "",
    );
    assert!(!run.success(), "{run:?}");
    assert!(
        run.stderr
            .contains("storage format 2, written by a newer corelog")
            && run.stderr.contains("reads formats 1 to 1"),
        "{}",
        run.stderr
    );
    assert_eq!(fs::read(&segment).unwrap(), before);
    assert_eq!(
        fs::read_to_string(&meta).unwrap(),
        format!("{text}corelog.storage.format.version=2\n")
    );
}

/// The cluster fixtures, oldest first: the data directories of three
/// broker+controller nodes (tests/fixtures/make-cluster-data.sh).
const CLUSTER_FIXTURES: &[(&str, &str)] = &[(
    "cluster-c797b75",
    "commit c797b75: 3 nodes, replication factor 3, Raft logs compacted into snapshots",
)];

/// A fixture's records.txt and (sorted) offsets.txt.
fn expected(name: &str) -> (Vec<String>, Vec<String>) {
    let lines = |file: &str| -> Vec<String> {
        fs::read_to_string(fixture(name).join(file))
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    };
    let mut offsets = lines("offsets.txt");
    offsets.sort();
    (lines("records.txt"), offsets)
}

/// Every record of the fixture's two topics, sorted as records.txt.
fn read_records(bootstrap: &str, expected_records: &[String]) -> Vec<String> {
    let mut records = Vec::new();
    for topic in ["compacted", "orders"] {
        let count = expected_records
            .iter()
            .filter(|r| r.starts_with(&format!("{topic} ")))
            .count();
        records.extend(read_topic(bootstrap, topic, count));
    }
    records.sort();
    records
}

#[test]
fn a_cluster_an_earlier_release_wrote_comes_back_with_every_record_and_offset() {
    for (name, written_by) in CLUSTER_FIXTURES {
        let (expected_records, expected_offsets) = expected(name);
        assert!(expected_records.len() >= 70, "{name}: records.txt");
        // Two shards, though it was written by one: placements move. The
        // group coordinator's partition count is the one the cluster was
        // made with (a config an operator keeps across an upgrade).
        let cluster =
            Cluster::start_from_fixture(&fixture(name), 3, 2, &["offsets.topic.num.partitions=1"]);
        for topic in ["orders", "compacted"] {
            eventually(
                &format!("{name}: every replica of {topic} in sync"),
                Duration::from_secs(60),
                || {
                    let parts = cluster.partitions(0, topic);
                    !parts.is_empty() && parts.iter().all(|p| p.isr.len() == 3 && p.leader > 0)
                },
            );
        }
        let bootstrap = cluster.bootstrap_all();
        assert_eq!(
            read_records(&bootstrap, &expected_records),
            expected_records,
            "{name} ({written_by}): records"
        );
        assert_eq!(
            committed(&bootstrap, "fixture-group"),
            expected_offsets,
            "{name} ({written_by}): committed offsets"
        );
        // The image came back from the snapshot and the log after it: the
        // broker config the last change left, every node listed.
        assert_eq!(cluster.brokers(1), vec![1, 2, 3], "{name}: brokers");
        let described = corelog_ok(
            &[
                "configs",
                "--bootstrap-server",
                &bootstrap,
                "--entity-type",
                "brokers",
                "--entity-default",
                "--describe",
            ],
            "",
        );
        assert!(
            described.stdout.contains("log.retention.bytes=10000000000"),
            "{name}: the dynamic config the fixture's last change set:\n{}",
            described.stdout
        );
        // Replicated writes go on where the old version left them.
        writes_on(&bootstrap, name);
        let properties = cluster.data_dir(1).with_extension("info.properties");
        fs::write(
            &properties,
            format!("node.id=1\nlog.dirs={}\n", cluster.data_dir(1).display()),
        )
        .unwrap();
        let info = corelog_ok(
            &["storage", "info", "--config", properties.to_str().unwrap()],
            "",
        );
        for line in [
            "controller raft.log: frames, storage format (1 file)",
            "controller snapshot: frames, storage format (1 file)",
            "leader-epoch-checkpoint: ",
        ] {
            assert!(
                info.stdout.contains(line),
                "{name}: no {line:?} in\n{}",
                info.stdout
            );
        }
    }
}
