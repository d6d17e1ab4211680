//! `corelog consumer-groups` with the flags Kafka users type: the
//! `--describe` views (`--offsets`, `--members [--verbose]`, `--state`),
//! `--all-groups` with `--describe`, `--reset-offsets` and `--delete`,
//! `--list --state`, and every reset spec and scope with `--export` /
//! `--from-file`, against a real broker with librdkafka members. Every CLI
//! run has a deadline.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{assigned, corelog, produce_numbered, Broker, BrokerOptions, Run};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};

/// A broker whose groups rebalance at once.
fn broker() -> Broker {
    Broker::start_with(
        BrokerOptions::default()
            .shards(2)
            .override_config("offsets.topic.num.partitions", "4")
            .override_config("group.initial.rebalance.delay.ms", "0"),
    )
}

/// `corelog consumer-groups --bootstrap-server B <args>`.
fn groups(broker: &Broker, args: &[&str]) -> Run {
    let bootstrap = broker.bootstrap();
    let mut all = vec!["consumer-groups", "--bootstrap-server", &bootstrap];
    all.extend_from_slice(args);
    corelog(&all, "")
}

/// Runs `consumer-groups` with `args`, which must succeed.
fn ok(broker: &Broker, args: &[&str]) -> Run {
    let run = groups(broker, args);
    assert!(run.success(), "consumer-groups {args:?} failed:\n{run:?}");
    run
}

/// Runs `consumer-groups` with `args`, which must fail; its stderr.
fn fails(broker: &Broker, args: &[&str]) -> String {
    let run = groups(broker, args);
    assert!(
        !run.success(),
        "consumer-groups {args:?} should fail:\n{run:?}"
    );
    run.stderr
}

/// The whitespace-separated cells of each stdout line that starts with `first`.
fn rows<'a>(out: &'a str, first: &str) -> Vec<Vec<&'a str>> {
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cells| cells.first() == Some(&first))
        .collect()
}

/// The header line starting with GROUP, split.
fn header(out: &str) -> Vec<&str> {
    out.lines()
        .find(|l| l.starts_with("GROUP"))
        .unwrap_or_else(|| panic!("no header in:\n{out}"))
        .split_whitespace()
        .collect()
}

/// Committed offsets of `group` by partition of `topic`, from `--describe`.
fn committed(broker: &Broker, group: &str) -> BTreeMap<i32, String> {
    let run = ok(broker, &["--describe", "--group", group]);
    rows(&run.stdout, group)
        .into_iter()
        .map(|cells| (cells[2].parse().expect("partition"), cells[3].to_string()))
        .collect()
}

fn create(broker: &Broker, topic: &str, partitions: i32) {
    broker.create_topic(topic, partitions, &[]);
}

/// A librdkafka member of `group` subscribed to `topic`, once it owns
/// `partitions` partitions, after reading and committing `records`.
fn member(
    broker: &Broker,
    group: &str,
    topic: &str,
    partitions: usize,
    records: usize,
) -> BaseConsumer {
    let mut config = broker.client_config();
    config
        .set("group.id", group)
        .set("client.id", "views-client")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100");
    let consumer: BaseConsumer = config.create().expect("create consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut read = 0;
    while (read < records || assigned(&consumer).len() < partitions) && Instant::now() < deadline {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
            read += 1;
        }
    }
    assert_eq!(read, records, "records read");
    assert_eq!(assigned(&consumer).len(), partitions, "partitions owned");
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");
    consumer
}

#[test]
fn describe_views_and_all_groups() {
    let broker = broker();
    create(&broker, "views", 3);
    produce_numbered(&broker, "views", 3, 0, 30);
    let viewer = member(&broker, "viewers", "views", 3, 30);
    // A second group with committed offsets and no members.
    ok(
        &broker,
        &[
            "--reset-offsets",
            "--group",
            "idle",
            "--topic",
            "views:0",
            "--to-offset",
            "4",
            "--execute",
        ],
    );

    // --members: one row per member.
    let run = ok(&broker, &["--describe", "--group", "viewers", "--members"]);
    assert_eq!(
        header(&run.stdout),
        ["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS"],
        "{run:?}"
    );
    let members = rows(&run.stdout, "viewers");
    assert_eq!(members.len(), 1, "{run:?}");
    assert!(members[0][1].starts_with("views-client-"), "{run:?}");
    assert_eq!(
        members[0][2..],
        ["/127.0.0.1", "views-client", "3"],
        "{run:?}"
    );
    // --members --verbose: and the assignment, Kafka's way.
    let run = ok(
        &broker,
        &["--describe", "--group", "viewers", "--members", "--verbose"],
    );
    assert_eq!(header(&run.stdout).last(), Some(&"ASSIGNMENT"), "{run:?}");
    assert_eq!(
        rows(&run.stdout, "viewers")[0][5],
        "views(0,1,2)",
        "{run:?}"
    );

    // --state: coordinator, assignor, state, members.
    let run = ok(&broker, &["--describe", "--group", "viewers", "--state"]);
    assert_eq!(
        header(&run.stdout),
        [
            "GROUP",
            "COORDINATOR",
            "(ID)",
            "ASSIGNMENT-STRATEGY",
            "STATE",
            "#MEMBERS"
        ],
        "{run:?}"
    );
    let state = &rows(&run.stdout, "viewers")[0];
    assert_eq!(state[1], broker.bootstrap(), "{run:?}");
    assert!(
        state[2].starts_with('(') && state[2].ends_with(')'),
        "{run:?}"
    );
    assert_eq!(state[3..], ["range", "Stable", "1"], "{run:?}");

    // --offsets is the default view; --verbose adds the leader epoch.
    let default = ok(&broker, &["--describe", "--group", "viewers"]);
    let offsets = ok(&broker, &["--describe", "--group", "viewers", "--offsets"]);
    assert_eq!(default.stdout, offsets.stdout);
    let partitions = rows(&offsets.stdout, "viewers");
    assert_eq!(partitions.len(), 3, "{offsets:?}");
    for cells in &partitions {
        assert_eq!(cells[3..6], ["10", "10", "0"], "{offsets:?}");
        assert_eq!(cells[6], members[0][1], "{offsets:?}");
    }
    let verbose = ok(
        &broker,
        &["--describe", "--group", "viewers", "--offsets", "--verbose"],
    );
    assert_eq!(
        header(&verbose.stdout),
        [
            "GROUP",
            "TOPIC",
            "PARTITION",
            "LEADER-EPOCH",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID"
        ],
        "{verbose:?}"
    );
    assert_eq!(rows(&verbose.stdout, "viewers")[0].len(), 10, "{verbose:?}");

    // --all-groups: every group's table, and what Kafka says of the idle one.
    let run = ok(&broker, &["--describe", "--all-groups"]);
    assert_eq!(rows(&run.stdout, "viewers").len(), 3, "{run:?}");
    assert_eq!(
        rows(&run.stdout, "idle"),
        [["idle", "views", "0", "4", "10", "6", "-", "-", "-"]],
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("Consumer group 'idle' has no active members."),
        "{run:?}"
    );
    let run = ok(&broker, &["--describe", "--all-groups", "--state"]);
    assert_eq!(
        rows(&run.stdout, "idle")[0][3..],
        ["-", "Empty", "0"],
        "{run:?}"
    );
    assert_eq!(rows(&run.stdout, "viewers")[0][4], "Stable", "{run:?}");
    let run = ok(&broker, &["--describe", "--all-groups", "--members"]);
    assert_eq!(rows(&run.stdout, "viewers").len(), 1, "{run:?}");
    assert!(rows(&run.stdout, "idle").is_empty(), "{run:?}");

    // --list --state, all or only some states.
    let run = ok(&broker, &["--list", "--state"]);
    assert_eq!(header(&run.stdout), ["GROUP", "STATE"], "{run:?}");
    assert_eq!(rows(&run.stdout, "idle"), [["idle", "Empty"]], "{run:?}");
    assert_eq!(
        rows(&run.stdout, "viewers"),
        [["viewers", "Stable"]],
        "{run:?}"
    );
    let run = ok(&broker, &["--list", "--state", "empty"]);
    assert_eq!(run.stdout.lines().count(), 2, "{run:?}");
    assert_eq!(rows(&run.stdout, "idle").len(), 1, "{run:?}");

    // One view at a time, and --describe --state takes no value.
    fails(
        &broker,
        &["--describe", "--group", "viewers", "--members", "--state"],
    );
    let error = fails(
        &broker,
        &["--describe", "--group", "viewers", "--state=Stable"],
    );
    assert!(error.contains("does not take a value"), "{error}");
    drop(viewer);
}

#[test]
fn reset_specs_scopes_export_from_file_and_all_groups() {
    let broker = broker();
    create(&broker, "resets", 2);
    produce_numbered(&broker, "resets", 2, 0, 40);
    let reset = |args: &[&str]| {
        let mut all = vec!["--reset-offsets"];
        all.extend_from_slice(args);
        ok(&broker, &all)
    };
    let offsets =
        |group: &str| -> Vec<String> { committed(&broker, group).into_values().collect() };

    reset(&[
        "--group",
        "r1",
        "--topic",
        "resets",
        "--to-offset",
        "10",
        "--execute",
    ]);
    assert_eq!(offsets("r1"), ["10", "10"]);
    // --shift-by over --all-topics (what the group committed).
    reset(&[
        "--group",
        "r1",
        "--all-topics",
        "--shift-by",
        "-3",
        "--execute",
    ]);
    assert_eq!(offsets("r1"), ["7", "7"]);
    // Past the end: clamped, with Kafka's warning.
    let run = reset(&[
        "--group",
        "r1",
        "--all-topics",
        "--shift-by",
        "100",
        "--execute",
    ]);
    assert!(
        run.stderr
            .contains("New offset (107) is higher than latest offset for topic partition resets-0. Value will be set to 20."),
        "{run:?}"
    );
    assert_eq!(offsets("r1"), ["20", "20"]);
    reset(&[
        "--group",
        "r1",
        "--topic",
        "resets:1",
        "--to-offset",
        "5",
        "--execute",
    ]);
    assert_eq!(offsets("r1"), ["20", "5"]);

    // --to-current: the committed offset, else the log end.
    reset(&[
        "--group",
        "r2",
        "--topic",
        "resets:0",
        "--to-offset",
        "3",
        "--execute",
    ]);
    let run = reset(&[
        "--group",
        "r2",
        "--topic",
        "resets",
        "--to-current",
        "--dry-run",
    ]);
    let planned: Vec<&str> = rows(&run.stdout, "r2").iter().map(|r| r[3]).collect();
    assert_eq!(planned, ["3", "20"], "{run:?}");
    assert_eq!(offsets("r2"), ["3"], "a dry run commits nothing");

    // --by-duration: records of the last hour start at 0; an hour ahead
    // there are none, so the log end, as Kafka falls back.
    let run = reset(&[
        "--group",
        "r2",
        "--topic",
        "resets",
        "--by-duration",
        "PT1H",
        "--dry-run",
    ]);
    let planned: Vec<&str> = rows(&run.stdout, "r2").iter().map(|r| r[3]).collect();
    assert_eq!(planned, ["0", "0"], "{run:?}");
    let run = reset(&[
        "--group",
        "r2",
        "--topic",
        "resets",
        "--by-duration",
        "-PT1H",
        "--dry-run",
    ]);
    let planned: Vec<&str> = rows(&run.stdout, "r2").iter().map(|r| r[3]).collect();
    assert_eq!(planned, ["20", "20"], "{run:?}");
    assert!(
        run.stderr.contains("Falling back to latest known offset"),
        "{run:?}"
    );
    let error = fails(
        &broker,
        &[
            "--reset-offsets",
            "--group",
            "r2",
            "--topic",
            "resets",
            "--by-duration",
            "1 hour",
        ],
    );
    assert!(error.contains("PnDTnHnMnS"), "{error}");

    // --export writes Kafka's CSV (no group column for one group) and
    // --from-file reads it back.
    let run = reset(&[
        "--group",
        "r1",
        "--all-topics",
        "--to-current",
        "--export",
        "--dry-run",
    ]);
    assert_eq!(run.stdout, "resets,0,20\nresets,1,5\n\n", "{run:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = dir.path().join("r1.csv");
    std::fs::write(&plan, &run.stdout).expect("write plan");
    reset(&[
        "--group",
        "r1",
        "--all-topics",
        "--to-earliest",
        "--execute",
    ]);
    assert_eq!(offsets("r1"), ["0", "0"]);
    let plan_arg = plan.to_str().expect("utf-8 path");
    reset(&["--group", "r1", "--from-file", plan_arg, "--execute"]);
    assert_eq!(offsets("r1"), ["20", "5"]);

    // --all-groups: every group, the CSV with a group column.
    let run = reset(&[
        "--all-groups",
        "--all-topics",
        "--to-current",
        "--export",
        "--dry-run",
    ]);
    assert_eq!(
        run.stdout, "r1,resets,0,20\nr1,resets,1,5\nr2,resets,0,3\n\n",
        "{run:?}"
    );
    let all_plan = dir.path().join("all.csv");
    std::fs::write(&all_plan, &run.stdout).expect("write plan");
    let run = reset(&["--all-groups", "--all-topics", "--to-earliest", "--execute"]);
    assert_eq!(
        rows(&run.stdout, "r1").len() + rows(&run.stdout, "r2").len(),
        3,
        "{run:?}"
    );
    assert_eq!(offsets("r1"), ["0", "0"]);
    assert_eq!(offsets("r2"), ["0"]);
    let all_arg = all_plan.to_str().expect("utf-8 path");
    reset(&["--all-groups", "--from-file", all_arg, "--execute"]);
    assert_eq!(offsets("r1"), ["20", "5"]);
    assert_eq!(offsets("r2"), ["3"]);

    // Bad scopes and specs are one-line errors.
    let error = fails(
        &broker,
        &["--reset-offsets", "--group", "r1", "--to-earliest"],
    );
    assert!(
        error.contains("One of the reset scopes should be defined"),
        "{error}"
    );
    let error = fails(
        &broker,
        &[
            "--reset-offsets",
            "--group",
            "r1",
            "--topic",
            "resets:7",
            "--to-earliest",
        ],
    );
    assert!(error.contains("\"resets-7\" do not exist"), "{error}");
    let error = fails(
        &broker,
        &[
            "--reset-offsets",
            "--group",
            "r2",
            "--topic",
            "resets",
            "--shift-by",
            "1",
        ],
    );
    assert!(
        error.contains(
            "Cannot shift offset for partition resets-1 since there is no current committed offset"
        ),
        "{error}"
    );

    // --delete --all-groups deletes every (empty) group.
    let run = ok(&broker, &["--delete", "--all-groups"]);
    assert_eq!(
        run.stdout,
        "Deletion of requested consumer groups ('r1', 'r2') was successful.\n"
    );
    assert_eq!(ok(&broker, &["--list"]).stdout, "");
}
