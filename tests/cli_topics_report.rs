//! `corelog topics --describe` with Kafka's report filters
//! (`--under-replicated-partitions`, `--unavailable-partitions`,
//! `--under-min-isr-partitions`, `--at-min-isr-partitions`,
//! `--topics-with-overrides`) on a three-node cluster, before and after a
//! node dies. Every CLI run has a deadline.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::cluster::{create_topic, eventually, Cluster};
use common::{corelog, Run};

/// One partition line of `--describe`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Line {
    topic: String,
    partition: i32,
    leader: String,
    replicas: Vec<i32>,
    isr: Vec<i32>,
}

fn ids(text: &str) -> Vec<i32> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("a node id"))
        .collect()
}

/// The partition lines of an output (tab-indented), parsed.
fn partition_lines(out: &str) -> Vec<Line> {
    out.lines()
        .filter(|l| l.starts_with("\tTopic: "))
        .map(|l| {
            let field = |name: &str| {
                l.split('\t')
                    .find_map(|f| f.strip_prefix(name))
                    .unwrap_or_else(|| panic!("no {name} in {l:?}"))
                    .to_string()
            };
            Line {
                topic: field("Topic: "),
                partition: field("Partition: ").parse().expect("partition"),
                leader: field("Leader: "),
                replicas: ids(&field("Replicas: ")),
                isr: ids(&field("Isr: ")),
            }
        })
        .collect()
}

/// The topics of the output's topic lines.
fn topic_lines(out: &str) -> BTreeSet<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix("Topic: "))
        .map(|rest| rest.split('\t').next().unwrap_or_default().to_string())
        .collect()
}

fn describe(bootstrap: &str, filters: &[&str]) -> Run {
    let mut args = vec![
        "topics",
        "--bootstrap-server",
        bootstrap,
        "--describe",
        "--exclude-internal",
    ];
    args.extend_from_slice(filters);
    let run = corelog(&args, "");
    assert!(run.success(), "topics {filters:?}:\n{run:?}");
    run
}

/// (topic, partition) of each line.
fn keys(lines: &[Line]) -> BTreeSet<(String, i32)> {
    lines
        .iter()
        .map(|l| (l.topic.clone(), l.partition))
        .collect()
}

#[test]
fn describe_reports_partitions_by_replica_health() {
    // A short lag time so the dead node leaves the ISR within the test.
    let mut cluster = Cluster::start_with(3, 0, 1, &["replica.lag.time.max.ms=3000"]);
    let bootstrap = cluster.bootstrap(0);
    create_topic(&bootstrap, "plain", 1, 3, &[]).expect("create plain");
    create_topic(&bootstrap, "guarded", 1, 3, &[("min.insync.replicas", "2")])
        .expect("create guarded");
    create_topic(&bootstrap, "strict", 1, 3, &[("min.insync.replicas", "3")])
        .expect("create strict");
    create_topic(&bootstrap, "single", 3, 1, &[]).expect("create single");
    eventually("every replica in sync", Duration::from_secs(30), || {
        let lines = partition_lines(&describe(&bootstrap, &[]).stdout);
        lines.len() == 6 && lines.iter().all(|l| l.isr.len() == l.replicas.len())
    });

    // All healthy: nothing under-replicated, unavailable or under its minimum.
    for filter in [
        "--under-replicated-partitions",
        "--unavailable-partitions",
        "--under-min-isr-partitions",
    ] {
        let run = describe(&bootstrap, &[filter]);
        assert_eq!(run.stdout, "", "{filter}: {run:?}");
    }
    // At the minimum: strict (3 of 3) and the single-replica partitions
    // (1 of 1), with no topic lines.
    let run = describe(&bootstrap, &["--at-min-isr-partitions"]);
    assert!(topic_lines(&run.stdout).is_empty(), "{run:?}");
    let single: BTreeSet<(String, i32)> = (0..3).map(|p| ("single".to_string(), p)).collect();
    let mut expected = single.clone();
    expected.insert(("strict".to_string(), 0));
    assert_eq!(keys(&partition_lines(&run.stdout)), expected, "{run:?}");
    // Overrides: topic lines only, of the topics with configs of their own.
    let run = describe(&bootstrap, &["--topics-with-overrides"]);
    assert_eq!(
        topic_lines(&run.stdout),
        BTreeSet::from(["guarded".to_string(), "strict".to_string()]),
        "{run:?}"
    );
    assert!(partition_lines(&run.stdout).is_empty(), "{run:?}");

    // A node dies: the node that holds single-0.
    let all = partition_lines(&describe(&bootstrap, &[]).stdout);
    let victim_id = all
        .iter()
        .find(|l| l.topic == "single" && l.partition == 0)
        .map(|l| l.replicas[0])
        .expect("single-0");
    let victim = cluster.index_of(victim_id);
    let survivor = cluster.bootstrap((victim + 1) % 3);
    cluster.kill9(victim);
    let on_victim: BTreeSet<(String, i32)> = all
        .iter()
        .filter(|l| l.topic == "single" && l.replicas == [victim_id])
        .map(|l| (l.topic.clone(), l.partition))
        .collect();
    let replicated: BTreeSet<(String, i32)> = ["plain", "guarded", "strict"]
        .iter()
        .map(|t| (t.to_string(), 0))
        .collect();
    eventually(
        "the dead node leaves the ISRs",
        Duration::from_secs(40),
        || {
            let run = describe(&survivor, &["--under-replicated-partitions"]);
            keys(&partition_lines(&run.stdout)).is_superset(&replicated)
        },
    );

    let run = describe(&survivor, &["--under-replicated-partitions"]);
    assert!(topic_lines(&run.stdout).is_empty(), "{run:?}");
    for line in partition_lines(&run.stdout) {
        assert!(line.isr.len() < line.replicas.len(), "{line:?} in {run:?}");
    }

    // Unavailable: exactly the single-replica partitions the dead node held.
    let run = describe(&survivor, &["--unavailable-partitions"]);
    let unavailable = partition_lines(&run.stdout);
    assert_eq!(keys(&unavailable), on_victim, "{run:?}");
    assert!(unavailable.iter().all(|l| l.leader == "none"), "{run:?}");

    // Under the minimum: strict (2 of 3) and the leaderless ones.
    let run = describe(&survivor, &["--under-min-isr-partitions"]);
    let mut expected = on_victim.clone();
    expected.insert(("strict".to_string(), 0));
    assert_eq!(keys(&partition_lines(&run.stdout)), expected, "{run:?}");

    // At the minimum: guarded (2 of 2) and the live single-replica ones;
    // not strict or plain.
    let run = describe(&survivor, &["--at-min-isr-partitions"]);
    let at_min = keys(&partition_lines(&run.stdout));
    assert!(at_min.contains(&("guarded".to_string(), 0)), "{run:?}");
    for p in single.difference(&on_victim) {
        assert!(at_min.contains(p), "{p:?} in {run:?}");
    }
    assert!(!at_min.contains(&("strict".to_string(), 0)), "{run:?}");
    assert!(!at_min.contains(&("plain".to_string(), 0)), "{run:?}");

    // Filters combine: a partition shows when any of them matches.
    let run = describe(
        &survivor,
        &["--unavailable-partitions", "--under-min-isr-partitions"],
    );
    assert_eq!(keys(&partition_lines(&run.stdout)), expected, "{run:?}");

    // --topics-with-overrides is its own view.
    let run = corelog(
        &[
            "topics",
            "--bootstrap-server",
            &survivor,
            "--describe",
            "--topics-with-overrides",
            "--under-replicated-partitions",
        ],
        "",
    );
    assert!(!run.success(), "{run:?}");
}
