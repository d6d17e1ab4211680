//! The operator CLI, run as a subprocess (`corelog topics`, `configs`,
//! `delete-records`, `broker-api-versions`, `log-dirs`) against a real
//! broker, with its output checked against the shapes Kafka's own tools
//! print; the console tools are in `cli_console.rs`. Every run has a
//! deadline.

mod common;

use std::collections::BTreeSet;

use common::raw::{code, Conn};
use common::{free_port, Broker, Run};

use common::{corelog_fails_in_one_line as fails, corelog_ok as ok};

fn topics(broker: &Broker, rest: &[&str]) -> Run {
    let bootstrap = broker.bootstrap();
    let mut args = vec!["topics", "--bootstrap-server", &bootstrap];
    args.extend_from_slice(rest);
    ok(&args, "")
}

fn listed(broker: &Broker) -> BTreeSet<String> {
    topics(broker, &["--list"])
        .stdout
        .lines()
        .map(str::to_string)
        .collect()
}

/// Partition lines of `topics --describe`, as (partition, leader).
fn described_partitions(broker: &Broker, topic: &str) -> (String, Vec<String>) {
    let out = topics(broker, &["--describe", "--topic", topic]).stdout;
    let mut lines = out.lines();
    let header = lines.next().expect("a header line").to_string();
    (header, lines.map(str::to_string).collect())
}

fn create(broker: &Broker, topic: &str, partitions: &str) {
    common::cli_create_topic(&broker.bootstrap(), topic, partitions);
}

#[test]
fn topics_create_list_describe_alter_delete() {
    let broker = Broker::start();
    let run = topics(
        &broker,
        &[
            "--create",
            "--topic",
            "orders",
            "--partitions",
            "3",
            "--replication-factor",
            "1",
            "--config",
            "retention.ms=123456",
        ],
    );
    assert_eq!(run.stdout, "Created topic orders.\n");
    assert!(listed(&broker).contains("orders"));

    let (header, partitions) = described_partitions(&broker, "orders");
    assert!(header.starts_with("Topic: orders\tTopicId: "), "{header}");
    assert!(
        header.contains("\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: "),
        "{header}"
    );
    assert!(header.contains("retention.ms=123456"), "{header}");
    assert_eq!(partitions.len(), 3, "{partitions:?}");
    for (i, line) in partitions.iter().enumerate() {
        assert!(
            line.starts_with(&format!("\tTopic: orders\tPartition: {i}\tLeader: ")),
            "{line}"
        );
        assert!(
            line.contains("\tReplicas: ") && line.contains("\tIsr: "),
            "{line}"
        );
    }

    topics(
        &broker,
        &["--alter", "--topic", "orders", "--partitions", "6"],
    );
    let (header, partitions) = described_partitions(&broker, "orders");
    assert!(header.contains("\tPartitionCount: 6\t"), "{header}");
    assert_eq!(partitions.len(), 6, "{partitions:?}");

    // A decrease is the broker's INVALID_PARTITIONS, printed in one line.
    let bootstrap = broker.bootstrap();
    let error = fails(&[
        "topics",
        "--bootstrap-server",
        &bootstrap,
        "--alter",
        "--topic",
        "orders",
        "--partitions",
        "2",
    ]);
    assert!(
        error.starts_with("Error while executing topic command : "),
        "{error}"
    );

    topics(&broker, &["--delete", "--topic", "orders"]);
    assert!(!listed(&broker).contains("orders"));
    let error = fails(&[
        "topics",
        "--bootstrap-server",
        &bootstrap,
        "--describe",
        "--topic",
        "orders",
    ]);
    assert!(error.contains("Topic 'orders' does not exist"), "{error}");
}

#[test]
fn creating_an_existing_topic_fails_in_one_line() {
    let broker = Broker::start();
    create(&broker, "twice", "1");
    let bootstrap = broker.bootstrap();
    let args = [
        "topics",
        "--bootstrap-server",
        &bootstrap,
        "--create",
        "--topic",
        "twice",
        "--partitions",
        "1",
    ];
    let error = fails(&args);
    assert_eq!(
        error,
        "Error while executing topic command : Topic 'twice' already exists."
    );
    // --if-not-exists makes it a success.
    let mut quiet = args.to_vec();
    quiet.push("--if-not-exists");
    ok(&quiet, "");
}

#[test]
fn an_unreachable_bootstrap_server_fails_in_one_line() {
    let nobody = format!("127.0.0.1:{}", free_port());
    for args in [
        vec!["topics", "--bootstrap-server", &nobody, "--list"],
        vec!["broker-api-versions", "--bootstrap-server", &nobody],
        vec![
            "console-consumer",
            "--bootstrap-server",
            &nobody,
            "--topic",
            "t",
        ],
    ] {
        let error = fails(&args);
        assert!(error.contains(&nobody), "{error}");
    }
    let error = fails(&[
        "topics",
        "--bootstrap-server",
        "no-such-host.invalid:9092",
        "--list",
    ]);
    assert!(error.contains("no-such-host.invalid"), "{error}");
}

fn configs(broker: &Broker, rest: &[&str]) -> Run {
    let bootstrap = broker.bootstrap();
    let mut args = vec!["configs", "--bootstrap-server", &bootstrap];
    args.extend_from_slice(rest);
    ok(&args, "")
}

#[test]
fn configs_alter_is_described_and_survives_a_restart() {
    let mut broker = Broker::start();
    create(&broker, "tuned", "1");
    let topic = ["--entity-type", "topics", "--entity-name", "tuned"];
    let mut alter = topic.to_vec();
    alter.extend([
        "--alter",
        "--add-config",
        "retention.ms=86400000,segment.bytes=1048576",
    ]);
    let run = configs(&broker, &alter);
    assert_eq!(run.stdout, "Completed updating config for topic tuned.\n");

    let mut describe = topic.to_vec();
    describe.push("--describe");
    let expect = |out: &str| {
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "Dynamic configs for topic tuned are:", "{out}");
        assert_eq!(lines.len(), 3, "{out}");
        assert!(
            lines[1].starts_with(
                "  retention.ms=86400000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=86400000"
            ),
            "{out}"
        );
        assert!(
            lines[2].starts_with("  segment.bytes=1048576 sensitive=false synonyms={"),
            "{out}"
        );
    };
    expect(&configs(&broker, &describe).stdout);
    broker.graceful_restart();
    expect(&configs(&broker, &describe).stdout);

    let mut all = describe.clone();
    all.push("--all");
    let out = configs(&broker, &all).stdout;
    assert!(
        out.starts_with("All configs for topic tuned are:\n"),
        "{out}"
    );
    assert!(
        out.contains("\n  cleanup.policy=delete sensitive=false"),
        "{out}"
    );

    let mut delete = topic.to_vec();
    delete.extend(["--alter", "--delete-config", "segment.bytes"]);
    configs(&broker, &delete);
    let out = configs(&broker, &describe).stdout;
    assert!(
        out.contains("retention.ms=86400000") && !out.contains("segment.bytes"),
        "{out}"
    );
    // Deleting a config the topic does not set is refused, as Kafka does.
    let bootstrap = broker.bootstrap();
    let mut args = vec!["configs", "--bootstrap-server", &bootstrap];
    args.extend(delete);
    let error = fails(&args);
    assert!(
        error.contains("Invalid config(s): segment.bytes"),
        "{error}"
    );
}

#[test]
fn delete_records_moves_the_earliest_offset() {
    let broker = Broker::start();
    create(&broker, "trimmed", "1");
    let bootstrap = broker.bootstrap();
    let input: String = (0..10).map(|i| format!("r{i}\n")).collect();
    ok(
        &[
            "console-producer",
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            "trimmed",
        ],
        &input,
    );
    let run = ok(
        &[
            "delete-records",
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            "trimmed",
            "--partition",
            "0",
            "--before-offset",
            "4",
        ],
        "",
    );
    assert_eq!(
        run.stdout,
        "Executing records delete operation\nRecords delete operation completed:\npartition: trimmed-0\tlow_watermark: 4\n"
    );
    let mut conn = Conn::connect(broker.addr());
    let (error, earliest) = conn.list_offset(1, "trimmed", 0, -2);
    assert_eq!(error, code::NONE);
    assert_eq!(earliest, 4);
    let run = ok(
        &[
            "console-consumer",
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            "trimmed",
            "--from-beginning",
            "--timeout-ms",
            "1500",
        ],
        "",
    );
    let got: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(got, ["r4", "r5", "r6", "r7", "r8", "r9"]);

    // Kafka's JSON file works too.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("offsets.json");
    std::fs::write(
        &file,
        r#"{"partitions":[{"topic":"trimmed","partition":0,"offset":6}],"version":1}"#,
    )
    .expect("write json");
    let run = ok(
        &[
            "delete-records",
            "--bootstrap-server",
            &bootstrap,
            "--offset-json-file",
            file.to_str().expect("utf-8 path"),
        ],
        "",
    );
    assert!(
        run.stdout
            .contains("partition: trimmed-0\tlow_watermark: 6"),
        "{run:?}"
    );
}

#[test]
fn broker_api_versions_lists_produce() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let run = ok(
        &["broker-api-versions", "--bootstrap-server", &bootstrap],
        "",
    );
    let first = run.stdout.lines().next().unwrap_or_default();
    assert!(
        first.ends_with("(id: 1 rack: null) -> (") || first.contains(" rack: null) -> ("),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("\n\tProduce(0): 0 to 11 [usable: "),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("\n\tApiVersions(18): 0 to 3 [usable: 3]"),
        "{run:?}"
    );
    assert!(run.stdout.ends_with("\n)\n"), "{run:?}");
}

#[test]
fn log_dirs_describes_the_topics_partitions() {
    let broker = Broker::start();
    create(&broker, "dirs", "2");
    create(&broker, "other", "1");
    let bootstrap = broker.bootstrap();
    let run = ok(
        &[
            "log-dirs",
            "--bootstrap-server",
            &bootstrap,
            "--describe",
            "--topic-list",
            "dirs",
        ],
        "",
    );
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], "Querying brokers for log directories information");
    assert!(lines[1].starts_with("Received log directory information from brokers "));
    let json: serde_json::Value = serde_json::from_str(lines[2]).expect("JSON on line 3");
    assert_eq!(json["version"], 1);
    let dirs = json["brokers"][0]["logDirs"].as_array().expect("logDirs");
    let partitions: BTreeSet<String> = dirs
        .iter()
        .flat_map(|d| d["partitions"].as_array().cloned().unwrap_or_default())
        .map(|p| p["partition"].as_str().expect("partition").to_string())
        .collect();
    assert_eq!(
        partitions,
        BTreeSet::from(["dirs-0".to_string(), "dirs-1".to_string()])
    );
}

/// Runs `corelog <args>` with its stdout already closed by the reader and
/// stdin closed: the tool must end (quietly, by SIGPIPE, or with success),
/// never panic.
fn runs_into_closed_pipes(args: &[&str]) {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};

    let mut child = Command::new(env!("CARGO_BIN_EXE_corelog"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn corelog");
    drop(child.stdout.take());
    let mut err = child.stderr.take().expect("stderr");
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = common::wait_bounded(&mut child, common::RUN_TIMEOUT)
        .unwrap_or_else(|| panic!("corelog {args:?} did not end with its stdout closed"));
    let stderr = stderr.join().expect("stderr reader");
    assert!(!stderr.contains("panicked"), "corelog {args:?}:\n{stderr}");
    assert!(
        status.success() || status.signal() == Some(libc::SIGPIPE),
        "corelog {args:?} ended with {status:?}:\n{stderr}"
    );
}

#[test]
fn no_tool_panics_on_a_closed_stdout_or_stdin() {
    let broker = Broker::start();
    create(&broker, "piped", "2");
    let bootstrap = broker.bootstrap();
    let b = bootstrap.as_str();
    ok(
        &[
            "console-producer",
            "--bootstrap-server",
            b,
            "--topic",
            "piped",
        ],
        "one\ntwo\nthree\n",
    );
    for args in [
        &["log-dirs", "--bootstrap-server", b, "--describe"][..],
        &["topics", "--bootstrap-server", b, "--list"],
        &["topics", "--bootstrap-server", b, "--describe"],
        &["broker-api-versions", "--bootstrap-server", b],
        &["consumer-groups", "--bootstrap-server", b, "--list"],
        &[
            "configs",
            "--bootstrap-server",
            b,
            "--describe",
            "--entity-type",
            "topics",
            "--entity-name",
            "piped",
        ],
        &[
            "console-consumer",
            "--bootstrap-server",
            b,
            "--topic",
            "piped",
            "--from-beginning",
            "--max-messages",
            "3",
        ],
        // stdin closed at once: nothing to send, and no panic.
        &[
            "console-producer",
            "--bootstrap-server",
            b,
            "--topic",
            "piped",
        ],
    ] {
        runs_into_closed_pipes(args);
    }
}

#[test]
fn every_command_has_help() {
    for command in [
        "topics",
        "console-producer",
        "console-consumer",
        "configs",
        "delete-records",
        "broker-api-versions",
        "log-dirs",
        "leader-election",
    ] {
        let run = ok(&[command, "--help"], "");
        assert!(
            run.stdout.contains("--bootstrap-server"),
            "{command}: {run:?}"
        );
    }
    // The host tools take serve's deployment inputs instead of a broker.
    for command in ["doctor", "tune"] {
        let run = ok(&[command, "--help"], "");
        assert!(
            run.stdout.contains("--data-dir") && run.stdout.contains("--host-root"),
            "{command}: {run:?}"
        );
    }
}
