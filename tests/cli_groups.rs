//! `corelog console-consumer --group` as a member of a consumer group
//! (Kafka's classic protocol, range assignment, committed offsets), beside
//! other console consumers and librdkafka consumers, as
//! `corelog consumer-groups` shows it. Every CLI run has a deadline.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::cluster::eventually;
use common::{assigned, corelog, produce_numbered, wait_bounded, Broker, BrokerOptions, Run};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;

/// How long a test waits for a group to settle or records to arrive.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(40);
/// How long a consumer may take to exit after a signal.
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs a command that must succeed.
fn ok(args: &[&str]) -> Run {
    common::corelog_ok(args, "")
}

/// A broker whose groups wait 1 s for more members before the first
/// rebalance, so consumers started together join one generation.
fn broker() -> Broker {
    Broker::start_with(
        BrokerOptions::default()
            .shards(2)
            .override_config("offsets.topic.num.partitions", "4")
            .override_config("group.initial.rebalance.delay.ms", "1000"),
    )
}

fn create(broker: &Broker, topic: &str, partitions: &str) {
    common::cli_create_topic(&broker.bootstrap(), topic, partitions);
}

/// A `corelog console-consumer` running in the background; its stdout
/// lines are collected as they come.
struct Background {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stdout: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<String>>,
}

impl Background {
    fn consumer(broker: &Broker, topic: &str, group: &str, extra: &[&str]) -> Background {
        let mut child = Command::new(env!("CARGO_BIN_EXE_corelog"))
            .args([
                "console-consumer",
                "--bootstrap-server",
                &broker.bootstrap(),
                "--topic",
                topic,
                "--group",
                group,
                "--property",
                "print.partition=true",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn corelog console-consumer");
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let out = child.stdout.take().expect("stdout");
        let sink = Arc::clone(&lines);
        let stdout = thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let mut err = child.stderr.take().expect("stderr");
        let stderr = thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Background {
            child,
            lines,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// (partition, value) of every record printed so far.
    fn records(&self) -> Vec<(i32, String)> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|line| parse_printed(line))
            .collect()
    }

    /// Sends `signal`, waits (bounded) for the exit; the status and stderr.
    fn stop(mut self, signal: libc::c_int) -> (ExitStatus, String) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: plain kill(2) on our own child, which has not been reaped yet.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill failed");
        let status = wait_bounded(&mut self.child, EXIT_TIMEOUT);
        let stderr = self.stderr.take().expect("once").join().unwrap_or_default();
        let status =
            status.unwrap_or_else(|| panic!("no exit within {EXIT_TIMEOUT:?}; stderr:\n{stderr}"));
        if let Some(stdout) = self.stdout.take() {
            stdout.join().expect("stdout reader");
        }
        (status, stderr)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `Partition:P<TAB>value` as printed with print.partition=true.
fn parse_printed(line: &str) -> (i32, String) {
    let (partition, value) = line
        .strip_prefix("Partition:")
        .and_then(|rest| rest.split_once('\t'))
        .unwrap_or_else(|| panic!("not a printed record: {line:?}"));
    (
        partition.parse().expect("a partition number"),
        value.to_string(),
    )
}

/// One row of `consumer-groups --describe`.
#[derive(Debug, Clone)]
struct Row {
    partition: i32,
    current: String,
    end: String,
    lag: String,
    consumer_id: String,
    host: String,
    client_id: String,
}

fn describe(broker: &Broker, group: &str) -> (String, Vec<Row>) {
    let bootstrap = broker.bootstrap();
    let run = ok(&[
        "consumer-groups",
        "--bootstrap-server",
        &bootstrap,
        "--describe",
        "--group",
        group,
    ]);
    (run.stdout.clone(), rows_of(&run.stdout, group))
}

/// The partition rows of a `--describe` output.
fn rows_of(stdout: &str, group: &str) -> Vec<Row> {
    stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cells| cells.first() == Some(&group) && cells.len() == 9)
        .map(|cells| Row {
            partition: cells[2].parse().expect("partition"),
            current: cells[3].to_string(),
            end: cells[4].to_string(),
            lag: cells[5].to_string(),
            consumer_id: cells[6].to_string(),
            host: cells[7].to_string(),
            client_id: cells[8].to_string(),
        })
        .collect()
}

/// Partitions by owning member, as `--describe` shows them.
fn owners(rows: &[Row]) -> BTreeMap<String, BTreeSet<i32>> {
    let mut out: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.consumer_id != "-") {
        out.entry(row.consumer_id.clone())
            .or_default()
            .insert(row.partition);
    }
    out
}

/// Waits until the group's members own `partitions` partitions in total,
/// `members` of them with `per_member` each; answers the ownership.
fn wait_for_split(
    broker: &Broker,
    group: &str,
    members: usize,
    per_member: usize,
) -> BTreeMap<String, BTreeSet<i32>> {
    let mut last;
    let settled = {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            // Until a member joins, the group does not exist.
            let bootstrap = broker.bootstrap();
            let run = corelog(
                &[
                    "consumer-groups",
                    "--bootstrap-server",
                    &bootstrap,
                    "--describe",
                    "--group",
                    group,
                ],
                "",
            );
            let out = format!("{run:?}");
            let owned = owners(&rows_of(&run.stdout, group));
            let split = owned.len() == members && owned.values().all(|p| p.len() == per_member);
            last = (out, owned);
            if split || Instant::now() > deadline {
                break split;
            }
            thread::sleep(Duration::from_millis(200));
        }
    };
    assert!(
        settled,
        "group {group} did not settle on {members} members of {per_member} partitions:\n{}",
        last.0
    );
    last.1
}

/// Waits until the consumers printed `count` records between them.
fn wait_for_records(consumers: &[&Background], count: usize) {
    eventually(&format!("{count} records printed"), SETTLE_TIMEOUT, || {
        consumers.iter().map(|c| c.records().len()).sum::<usize>() >= count
    });
}

#[test]
fn a_console_consumer_in_a_group_is_a_member_with_its_partitions() {
    let broker = broker();
    create(&broker, "members", "3");
    let consumer = Background::consumer(&broker, "members", "shown", &[]);
    let owned = wait_for_split(&broker, "shown", 1, 3);
    let (_, rows) = describe(&broker, "shown");
    let member = owned.keys().next().expect("one member");
    assert!(member.starts_with("console-consumer-"), "{rows:?}");
    for row in &rows {
        assert_eq!(row.host, "/127.0.0.1", "{rows:?}");
        assert_eq!(row.client_id, "console-consumer", "{rows:?}");
    }

    let (status, stderr) = consumer.stop(libc::SIGINT);
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("Processed a total of 0 messages"),
        "{stderr}"
    );
    // It left: the group is empty at once, not after its session timeout.
    let bootstrap = broker.bootstrap();
    let run = ok(&[
        "consumer-groups",
        "--bootstrap-server",
        &bootstrap,
        "--describe",
        "--group",
        "shown",
    ]);
    assert!(
        run.stderr
            .contains("Consumer group 'shown' has no active members."),
        "{run:?}"
    );
    assert!(owners(&rows_of(&run.stdout, "shown")).is_empty(), "{run:?}");

    // As in Kafka's tool, a group member cannot also pick its partition.
    let run = corelog(
        &[
            "console-consumer",
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            "members",
            "--group",
            "shown",
            "--partition",
            "0",
        ],
        "",
    );
    assert!(!run.success(), "{run:?}");
    assert_eq!(
        run.stderr.trim(),
        "Error: Options group and partition cannot be specified together.",
        "{run:?}"
    );
}

#[test]
fn two_console_consumers_split_the_partitions_and_read_each_record_once() {
    let broker = broker();
    create(&broker, "halves", "4");
    let a = Background::consumer(&broker, "halves", "pair", &["--from-beginning"]);
    let b = Background::consumer(&broker, "halves", "pair", &["--from-beginning"]);
    let owned = wait_for_split(&broker, "pair", 2, 2);

    produce_numbered(&broker, "halves", 4, 0, 40);
    wait_for_records(&[&a, &b], 40);
    // Anything printed twice would show up in this time.
    thread::sleep(Duration::from_millis(500));
    let (from_a, from_b) = (a.records(), b.records());
    let all: Vec<&(i32, String)> = from_a.iter().chain(&from_b).collect();
    let unique: BTreeSet<&String> = all.iter().map(|(_, v)| v).collect();
    assert_eq!(all.len(), 40, "each record once: {from_a:?} {from_b:?}");
    assert_eq!(unique.len(), 40);
    for (partition, value) in &all {
        let i: i32 = value.parse().expect("a number");
        assert_eq!(i % 4, *partition, "record {i} came from its partition");
    }
    // Each printed exactly the records of the partitions it owns.
    let mut printed: Vec<BTreeSet<i32>> = [&from_a, &from_b]
        .iter()
        .map(|records| records.iter().map(|(p, _)| *p).collect())
        .collect();
    printed.sort();
    let mut expected: Vec<BTreeSet<i32>> = owned.values().cloned().collect();
    expected.sort();
    assert_eq!(printed, expected, "{owned:?}");

    for consumer in [a, b] {
        let (status, stderr) = consumer.stop(libc::SIGTERM);
        assert!(status.success(), "{status}: {stderr}");
        assert!(
            stderr.contains("Processed a total of 20 messages"),
            "{stderr}"
        );
    }
    // The offsets were committed on exit: all read, no lag.
    let (out, rows) = describe(&broker, "pair");
    assert_eq!(rows.len(), 4, "{out}");
    for row in &rows {
        assert_eq!(row.current, "10", "{out}");
        assert_eq!(row.end, "10", "{out}");
        assert_eq!(row.lag, "0", "{out}");
    }

    // A restart in the same group resumes there: old records are not read
    // again, new ones are.
    produce_numbered(&broker, "halves", 4, 40, 8);
    let bootstrap = broker.bootstrap();
    let resumed = ok(&[
        "console-consumer",
        "--bootstrap-server",
        &bootstrap,
        "--topic",
        "halves",
        "--group",
        "pair",
        "--from-beginning",
        "--timeout-ms",
        "4000",
    ]);
    let mut values: Vec<i32> = resumed
        .stdout
        .lines()
        .map(|l| l.parse().expect("a number"))
        .collect();
    values.sort_unstable();
    assert_eq!(values, (40..48).collect::<Vec<_>>(), "{resumed:?}");
    let (out, rows) = describe(&broker, "pair");
    assert!(rows.iter().all(|r| r.current == "12"), "{out}");
}

/// A librdkafka consumer that subscribes and polls on its own thread
/// until told to stop, keeping what it read.
struct Librdkafka {
    stop: Arc<AtomicBool>,
    records: Arc<Mutex<Vec<(i32, String)>>>,
    thread: Option<JoinHandle<BTreeSet<i32>>>,
}

impl Librdkafka {
    fn subscribe(broker: &Broker, topic: &str, group: &str) -> Librdkafka {
        let mut config = broker.client_config();
        config
            .set("group.id", group)
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("auto.commit.interval.ms", "200")
            .set("fetch.wait.max.ms", "100");
        let consumer: BaseConsumer = config.create().expect("create consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let stop = Arc::new(AtomicBool::new(false));
        let records: Arc<Mutex<Vec<(i32, String)>>> = Arc::default();
        let thread = {
            let stop = Arc::clone(&stop);
            let records = Arc::clone(&records);
            thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(120);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                        let value = String::from_utf8_lossy(m.payload().unwrap_or_default());
                        records
                            .lock()
                            .unwrap()
                            .push((m.partition(), value.to_string()));
                    }
                }
                let owned = assigned(&consumer);
                // Dropping the consumer commits and leaves the group.
                drop(consumer);
                owned
            })
        };
        Librdkafka {
            stop,
            records,
            thread: Some(thread),
        }
    }

    fn records(&self) -> Vec<(i32, String)> {
        self.records.lock().unwrap().clone()
    }

    /// Stops polling, leaves the group; the partitions it held last.
    fn close(mut self) -> BTreeSet<i32> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .expect("once")
            .join()
            .expect("consumer thread")
    }
}

impl Drop for Librdkafka {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A console consumer and a librdkafka consumer in one group, the one
/// that joins first leading (and so assigning), then the console consumer
/// alone after the other leaves.
fn share_a_group_with_librdkafka(console_first: bool) {
    let broker = broker();
    create(&broker, "mixed", "4");
    let (console, rdkafka) = if console_first {
        let console = Background::consumer(&broker, "mixed", "mixed-group", &["--from-beginning"]);
        wait_for_split(&broker, "mixed-group", 1, 4);
        let rdkafka = Librdkafka::subscribe(&broker, "mixed", "mixed-group");
        (console, rdkafka)
    } else {
        let rdkafka = Librdkafka::subscribe(&broker, "mixed", "mixed-group");
        wait_for_split(&broker, "mixed-group", 1, 4);
        let console = Background::consumer(&broker, "mixed", "mixed-group", &["--from-beginning"]);
        (console, rdkafka)
    };
    let owned = wait_for_split(&broker, "mixed-group", 2, 2);
    let console_id = owned
        .keys()
        .find(|id| id.starts_with("console-consumer-"))
        .unwrap_or_else(|| panic!("no console consumer among {owned:?}"))
        .clone();

    produce_numbered(&broker, "mixed", 4, 0, 40);
    eventually("40 records read", SETTLE_TIMEOUT, || {
        console.records().len() + rdkafka.records().len() >= 40
    });
    thread::sleep(Duration::from_millis(500));
    let from_console = console.records();
    let from_rdkafka = rdkafka.records();
    let console_partitions: BTreeSet<i32> = from_console.iter().map(|(p, _)| *p).collect();
    assert_eq!(console_partitions, owned[&console_id], "{owned:?}");
    let all: Vec<&String> = from_console
        .iter()
        .chain(&from_rdkafka)
        .map(|(_, v)| v)
        .collect();
    let unique: BTreeSet<&String> = all.iter().copied().collect();
    assert_eq!(
        all.len(),
        40,
        "each record once: {from_console:?} {from_rdkafka:?}"
    );
    assert_eq!(unique.len(), 40);

    // librdkafka leaves: the console consumer rejoins and takes all four.
    let held = rdkafka.close();
    assert_eq!(held.len(), 2, "{held:?}");
    wait_for_split(&broker, "mixed-group", 1, 4);
    produce_numbered(&broker, "mixed", 4, 40, 8);
    wait_for_records(&[&console], from_console.len() + 8);
    thread::sleep(Duration::from_millis(500));
    let mut late: Vec<i32> = console.records()[from_console.len()..]
        .iter()
        .map(|(_, v)| v.parse().expect("a number"))
        .collect();
    late.sort_unstable();
    assert_eq!(
        late,
        (40..48).collect::<Vec<_>>(),
        "only the new records, once each"
    );
    let (status, stderr) = console.stop(libc::SIGTERM);
    assert!(status.success(), "{status}: {stderr}");
}

#[test]
fn a_console_consumer_leads_a_group_with_a_librdkafka_member() {
    share_a_group_with_librdkafka(true);
}

#[test]
fn a_console_consumer_follows_a_librdkafka_leader() {
    share_a_group_with_librdkafka(false);
}

#[test]
fn a_console_consumer_waiting_to_join_stops_at_a_signal_or_its_timeout() {
    // The first rebalance waits 20 s for more members: the consumer is
    // still waiting for its JoinGroup answer when it is told to stop.
    let broker = Broker::start_with(
        BrokerOptions::default().override_config("group.initial.rebalance.delay.ms", "20000"),
    );
    create(&broker, "slow", "1");
    let consumer = Background::consumer(&broker, "slow", "slow-group", &[]);
    thread::sleep(Duration::from_secs(1));
    let stopped_at = Instant::now();
    let (status, stderr) = consumer.stop(libc::SIGTERM);
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stopped_at.elapsed() < Duration::from_secs(5),
        "{:?} to stop",
        stopped_at.elapsed()
    );
    assert!(
        stderr.contains("Processed a total of 0 messages"),
        "{stderr}"
    );

    let started = Instant::now();
    let run = ok(&[
        "console-consumer",
        "--bootstrap-server",
        &broker.bootstrap(),
        "--topic",
        "slow",
        "--group",
        "slow-group",
        "--timeout-ms",
        "1500",
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "--timeout-ms 1500 took {:?}",
        started.elapsed()
    );
    assert!(
        run.stderr.contains("Processed a total of 0 messages"),
        "{run:?}"
    );
}
