//! The old client libraries themselves, not only their frames: kafka-python
//! 2.0.2 as a client of 0.8.2, 0.9, 0.10.0 and 0.10.1 brokers, Sarama
//! 1.22.1 in its default configuration (0.8.2: magic 0, OffsetCommit v1)
//! and as a 0.10.2 consumer group, and segmentio kafka-go 0.2.1. Each
//! driver (tests/clients/) produces keyed records, reads them back in a
//! group over two sittings (the second must resume at the first one's
//! commit, so a lost commit re-reads records and fails) and checks every
//! record; then librdkafka, speaking today's versions, must read the same
//! records the old client wrote.
//!
//! The drivers are installed by tests/clients/setup.sh (run by .ci/run).
//! Without them the test says so and passes outside CI; in CI it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{consume, in_ci, wait_bounded, Broker};

/// Records each driver produces and reads back.
const COUNT: usize = 100;
/// The bound on one driver run (each of its waits is bounded at 60 s).
const DRIVER_TIMEOUT: Duration = Duration::from_secs(180);

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/clients")
}

/// The driver's command line, or None (with the reason printed, or a
/// panic in CI) when setup.sh has not installed it.
fn driver(program: &Path, script: Option<&Path>) -> Option<Command> {
    if !program.exists() {
        let why = format!(
            "{} is missing: run `bash tests/clients/setup.sh` to install the old client libraries",
            program.display()
        );
        assert!(!in_ci(), "{why}");
        eprintln!("SKIPPED: {why}");
        return None;
    }
    let mut command = Command::new(program);
    if let Some(script) = script {
        command.arg(script);
    }
    Some(command)
}

/// Runs one driver over a fresh two-partition topic and checks its report,
/// then reads the topic with librdkafka.
fn run_driver(broker: &Broker, mut command: Command, name: &str, args: &[&str]) {
    let topic = format!("old-{name}");
    broker.create_topic(&topic, 2, &[]);
    let group = format!("group-{name}");
    let count = COUNT.to_string();
    let bootstrap = broker.bootstrap();
    let mut child = command
        .args(args)
        .args([&bootstrap, &topic, &group, &count])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start the {name} driver: {e}"));
    let status = wait_bounded(&mut child, DRIVER_TIMEOUT);
    let output = child.wait_with_output().expect("driver output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        status.is_some_and(|s| s.success()),
        "{name}: driver ended with {status:?}\nstdout: {stdout}\nstderr: {stderr}\nbroker: {}",
        broker.stderr()
    );
    let third = COUNT / 3;
    assert!(
        stdout.contains(&format!("\"produced\": {COUNT}"))
            || stdout.contains(&format!("\"produced\":{COUNT}")),
        "{name}: {stdout}"
    );
    assert!(
        stdout.contains(&format!("\"first_sitting\": {third}"))
            || stdout.contains(&format!("\"first_sitting\":{third}")),
        "{name}: {stdout}"
    );

    // Today's client reads what the old one wrote: every key once, with
    // its value.
    let read = consume(broker, &topic, 2, COUNT, Duration::from_secs(30));
    assert_eq!(read.len(), COUNT, "{name}: librdkafka read {read:?}");
    let mut indexes: Vec<usize> = read
        .iter()
        .map(|r| {
            let key = String::from_utf8(r.key.clone().expect("keyed")).unwrap();
            let i: usize = key.trim_start_matches("key-").parse().unwrap();
            let value = format!("value-{i}-{}", "x".repeat(i % 50));
            assert_eq!(r.value.as_deref(), Some(value.as_bytes()), "{name}: {key}");
            i
        })
        .collect();
    indexes.sort_unstable();
    assert_eq!(indexes, (0..COUNT).collect::<Vec<_>>(), "{name}");
}

#[test]
fn kafka_python_of_each_old_generation_produces_and_resumes_at_its_commits() {
    let dir = clients_dir();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/kafka_python_old.py");
    let broker = Broker::start();
    for version in ["0.8.2", "0.9", "0.10.0", "0.10.1"] {
        let Some(command) = driver(&dir.join("py/bin/python"), Some(&script)) else {
            return;
        };
        let name = format!("kafka-python-{}", version.replace('.', "-"));
        run_driver(&broker, command, &name, &[version]);
    }
}

#[test]
fn sarama_and_kafka_go_produce_and_resume_at_their_commits() {
    let program = clients_dir().join("go_old");
    let broker = Broker::start();
    for client in ["sarama-default", "sarama-group", "kafka-go"] {
        let Some(command) = driver(&program, None) else {
            return;
        };
        run_driver(&broker, command, client, &[client]);
    }
}
