//! `corelog leader-election` (kafka-leader-election.sh) against a real
//! broker and a three-node cluster: its scopes (`--topic --partition`,
//! `--path-to-json-file`, `--all-topic-partitions`), election types, Kafka's
//! output lines, and its one-line refusals. Every CLI run has a deadline.

mod common;

use std::time::Duration;

use common::cluster::{create_topic, eventually, Cluster};
use common::{corelog, Broker, Run};

fn elect(bootstrap: &str, rest: &[&str]) -> Run {
    let mut args = vec!["leader-election", "--bootstrap-server", bootstrap];
    args.extend_from_slice(rest);
    corelog(&args, "")
}

#[test]
fn leader_election_scopes_outputs_and_refusals_on_one_broker() {
    let broker = Broker::start();
    broker.create_topic("solo", 2, &[]);
    let bootstrap = broker.bootstrap();

    // One broker: every partition already has its preferred leader.
    let run = elect(
        &bootstrap,
        &[
            "--election-type",
            "PREFERRED",
            "--topic",
            "solo",
            "--partition",
            "0",
        ],
    );
    assert!(run.success(), "{run:?}");
    assert_eq!(
        run.stdout,
        "Valid replica already elected for partitions solo-0\n"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("election.json");
    std::fs::write(
        &file,
        r#"{"partitions": [{"topic": "solo", "partition": 1}, {"topic": "solo", "partition": 0}]}"#,
    )
    .expect("write json");
    let path = file.to_str().expect("utf-8 path");
    let run = elect(
        &bootstrap,
        &["--election-type", "preferred", "--path-to-json-file", path],
    );
    assert!(run.success(), "{run:?}");
    assert_eq!(
        run.stdout,
        "Valid replica already elected for partitions solo-0, solo-1\n"
    );
    // All partitions: the broker answers only those it had to move.
    let run = elect(
        &bootstrap,
        &["--election-type", "PREFERRED", "--all-topic-partitions"],
    );
    assert!(run.success(), "{run:?}");
    assert_eq!(run.stdout, "");

    // A partition that does not exist fails the command, Kafka's way.
    let run = elect(
        &bootstrap,
        &[
            "--election-type",
            "PREFERRED",
            "--topic",
            "solo",
            "--partition",
            "9",
        ],
    );
    assert!(!run.success(), "{run:?}");
    assert!(
        run.stdout.starts_with(
            "Error completing leader election (PREFERRED) for partition: solo-9: UnknownTopicOrPartitionException: "
        ),
        "{run:?}"
    );
    assert_eq!(run.stderr, "Error: 1 replica(s) could not be elected\n");
    // Unclean election on request is refused by corelog's broker.
    let run = elect(
        &bootstrap,
        &[
            "--election-type",
            "UNCLEAN",
            "--topic",
            "solo",
            "--partition",
            "0",
        ],
    );
    assert!(!run.success(), "{run:?}");
    assert!(
        run.stdout
            .starts_with("Error completing leader election (UNCLEAN) for partition: solo-0: "),
        "{run:?}"
    );

    // Bad invocations: one line each.
    let refusals: [(&[&str], &str); 6] = [
        (
            &["--topic", "solo", "--partition", "0"],
            "Missing required option(s): election-type",
        ),
        (
            &["--election-type", "PREFERRED"],
            "One and only one of the following options is required: topic, all-topic-partitions, path-to-json-file",
        ),
        (
            &["--election-type", "PREFERRED", "--topic", "solo", "--all-topic-partitions"],
            "One and only one of the following options is required",
        ),
        (
            &["--election-type", "PREFERRED", "--topic", "solo"],
            "Missing required option(s): partition",
        ),
        (
            &["--election-type", "PREFERRED", "--all-topic-partitions", "--partition", "0"],
            "Option partition is only allowed if topic is used",
        ),
        (
            &["--election-type", "FASTEST", "--all-topic-partitions"],
            "--election-type must be PREFERRED or UNCLEAN",
        ),
    ];
    for (args, expected) in refusals {
        let run = elect(&bootstrap, args);
        assert!(!run.success(), "{args:?}: {run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {run:?}");
        assert!(run.stderr.contains(expected), "{args:?}: {run:?}");
    }
    std::fs::write(
        &file,
        r#"{"partitions": [{"topic": "solo", "partition": 1}, {"topic": "solo", "partition": 1}]}"#,
    )
    .expect("write json");
    let run = elect(
        &bootstrap,
        &["--election-type", "PREFERRED", "--path-to-json-file", path],
    );
    assert!(!run.success(), "{run:?}");
    assert!(
        run.stderr
            .contains("Replica election data contains duplicate partitions: solo-1"),
        "{run:?}"
    );
}

#[test]
fn preferred_election_gives_a_partition_back_to_its_first_replica() {
    // No automatic rebalance: only the tool moves the leader back.
    let mut cluster = Cluster::start_with(3, 0, 1, &["auto.leader.rebalance.enable=false"]);
    create_topic(&cluster.bootstrap(0), "moved", 1, 3, &[]).expect("create moved");
    eventually("in sync", Duration::from_secs(30), || {
        cluster
            .partitions_from_any("moved")
            .first()
            .is_some_and(|p| p.isr.len() == 3 && p.leader > 0)
    });
    let before = cluster.partitions_from_any("moved")[0].clone();
    let preferred = before.replicas[0];
    assert_eq!(before.leader, preferred, "{before:?}");

    // Its first replica dies and comes back: another replica leads now.
    let index = cluster.index_of(preferred);
    cluster.kill9(index);
    eventually("a new leader", Duration::from_secs(30), || {
        cluster
            .partitions_from_any("moved")
            .first()
            .is_some_and(|p| p.leader > 0 && p.leader != preferred)
    });
    cluster.spawn(index);
    cluster.wait_ready(index);
    eventually("back in sync", Duration::from_secs(30), || {
        cluster
            .partitions_from_any("moved")
            .first()
            .is_some_and(|p| p.isr.contains(&preferred))
    });
    assert_ne!(cluster.partitions_from_any("moved")[0].leader, preferred);

    let bootstrap = cluster.bootstrap((index + 1) % 3);
    let run = elect(
        &bootstrap,
        &["--election-type", "PREFERRED", "--all-topic-partitions"],
    );
    assert!(run.success(), "{run:?}");
    assert_eq!(
        run.stdout,
        "Successfully completed leader election (PREFERRED) for partitions moved-0\n"
    );
    eventually("the first replica leads", Duration::from_secs(30), || {
        cluster
            .partitions_from_any("moved")
            .first()
            .is_some_and(|p| p.leader == preferred)
    });
    let run = elect(
        &bootstrap,
        &[
            "--election-type",
            "PREFERRED",
            "--topic",
            "moved",
            "--partition",
            "0",
        ],
    );
    assert!(run.success(), "{run:?}");
    assert_eq!(
        run.stdout,
        "Valid replica already elected for partitions moved-0\n"
    );
}
