//! `corelog top` against a real broker: after a librdkafka producer wrote
//! to a topic and two groups committed offsets (one behind, one caught
//! up), two refreshes name the node's shards with their busy share, the
//! topic's partitions among the hottest, and each group with its exact
//! lag; a node whose HTTP listener does not answer shows as DOWN and ends
//! nothing. Not a terminal, so frames follow one another. Every run has a
//! deadline (common::corelog).

mod common;

use common::{corelog, free_port, produce_numbered, Broker, BrokerOptions};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "hot";
/// Records per partition (produce_numbered spreads them round robin).
const PER_PARTITION: i64 = 50;

/// Commits `offsets` (partition, offset) of TOPIC for `group` as a
/// standalone librdkafka consumer does (no membership).
fn commit(broker: &Broker, group: &str, offsets: &[(i32, i64)]) {
    let mut config = broker.client_config();
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = config.create().expect("create consumer");
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets {
        list.add_partition_offset(TOPIC, *partition, Offset::Offset(*offset))
            .expect("add partition");
    }
    consumer.commit(&list, CommitMode::Sync).expect("commit");
}

/// The lines of `frame`'s section `title`, header first, up to the blank
/// line after it.
fn section<'a>(frame: &'a str, title: &str) -> Vec<&'a str> {
    frame
        .lines()
        .skip_while(|line| *line != title)
        .skip(1)
        .take_while(|line| !line.is_empty())
        .collect()
}

fn cells(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

#[test]
fn top_shows_shards_hottest_partitions_groups_and_down_nodes() {
    let broker = Broker::start_with(
        BrokerOptions::default()
            .shards(2)
            .override_config("offsets.topic.num.partitions", "2"),
    );
    broker.create_topic(TOPIC, 2, &[]);
    produce_numbered(&broker, TOPIC, 2, 0, 2 * PER_PARTITION as usize);
    // behind: 20 + 5 records of lag; caught-up: none.
    commit(&broker, "behind", &[(0, 30), (1, 45)]);
    commit(
        &broker,
        "caught-up",
        &[(0, PER_PARTITION), (1, PER_PARTITION)],
    );

    let http = broker.http_addr().to_string();
    // A port nothing listens on (free_port binds it, then lets it go).
    let down = format!("127.0.0.1:{}", free_port());
    let nodes = format!("{http},{down}");
    let bootstrap = broker.bootstrap();
    let run = corelog(
        &[
            "top",
            "--bootstrap-server",
            &bootstrap,
            "--http",
            &nodes,
            "--iterations",
            "2",
            "--interval",
            "1",
        ],
        "",
    );
    assert!(run.success(), "{run:?}");
    let frames: Vec<&str> = run
        .stdout
        .split("corelog top  refresh")
        .filter(|f| !f.trim().is_empty())
        .collect();
    assert_eq!(frames.len(), 2, "two frames expected:\n{}", run.stdout);
    // No terminal: no escape sequences.
    assert!(!run.stdout.contains('\x1b'), "{}", run.stdout);
    let last = frames[1];

    let nodes_rows = section(last, "NODES");
    assert!(
        nodes_rows
            .iter()
            .any(|l| cells(l).first() == Some(&http.as_str()) && cells(l)[1] == "up"),
        "{last}"
    );
    assert!(
        nodes_rows
            .iter()
            .any(|l| cells(l)[0] == down && l.contains("DOWN: cannot connect")),
        "{last}"
    );

    // One row per shard, each with a busy share now that two scrapes
    // give a rate.
    let shards = section(last, "SHARDS");
    assert_eq!(
        cells(shards[0]),
        ["NODE", "SHARD", "BUSY%", "REQ/S", "CONNS", "CACHE", "BUDGET", "CACHE%"]
    );
    for shard in ["0", "1"] {
        let row = shards
            .iter()
            .map(|l| cells(l))
            .find(|c| c[0] == http && c[1] == shard)
            .unwrap_or_else(|| panic!("no row for shard {shard}:\n{last}"));
        let busy: f64 = row[2]
            .parse()
            .unwrap_or_else(|_| panic!("busy share of shard {shard}: {row:?}"));
        assert!((0.0..=100.0).contains(&busy), "{row:?}");
    }

    // Both partitions of the topic, with what was produced to each.
    let hottest = section(last, "HOTTEST PARTITIONS");
    for partition in ["0", "1"] {
        let row = hottest
            .iter()
            .map(|l| cells(l))
            .find(|c| c[0] == TOPIC && c[1] == partition)
            .unwrap_or_else(|| panic!("{TOPIC}-{partition} not among the hottest:\n{last}"));
        assert_eq!(row.last(), Some(&"50"), "log end offset: {row:?}");
    }

    // The group behind first, with its exact lag, then the caught-up one.
    let groups: Vec<Vec<&str>> = section(last, "GROUPS BY LAG")
        .iter()
        .map(|l| cells(l))
        .collect();
    assert_eq!(groups[0], ["GROUP", "STATE", "LAG", "PARTITIONS", "TOPICS"]);
    assert_eq!(groups[1][0], "behind", "{last}");
    assert_eq!(groups[1][2], "25", "{last}");
    assert_eq!(groups[1][3], "2", "{last}");
    assert_eq!(groups[1][4], TOPIC, "{last}");
    assert_eq!(groups[2][0], "caught-up", "{last}");
    assert_eq!(groups[2][2], "0", "{last}");
}

#[test]
fn top_refuses_bad_flags_in_one_line() {
    for (flag, value, expected) in [
        ("--interval", "0", "--interval must be over 0"),
        ("--iterations", "0", "--iterations must be at least 1"),
        ("--http", ",", "--http names no node"),
    ] {
        let run = corelog(
            &["top", "--bootstrap-server", "127.0.0.1:1", flag, value],
            "",
        );
        assert!(!run.success(), "{run:?}");
        assert!(run.stderr.contains(expected), "{flag} {value}: {run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    }
}

/// Without a reachable broker or node, `top` still draws its frames, each
/// saying what is unreachable, and ends after its iterations.
#[test]
fn top_without_any_reachable_node_shows_them_down_and_exits() {
    let nowhere = format!("127.0.0.1:{}", free_port());
    let run = corelog(
        &[
            "top",
            "--bootstrap-server",
            &nowhere,
            "--http",
            &nowhere,
            "--iterations",
            "1",
            "--interval",
            "0.1",
        ],
        "",
    );
    assert!(run.success(), "{run:?}");
    assert!(
        section(&run.stdout, "NODES")
            .iter()
            .any(|l| cells(l)[0] == nowhere && l.contains("DOWN: cannot connect")),
        "{}",
        run.stdout
    );
    let groups = section(&run.stdout, "GROUPS BY LAG");
    assert!(
        groups
            .first()
            .is_some_and(|l| l.starts_with("unavailable: cannot reach a broker")),
        "{}",
        run.stdout
    );
}
