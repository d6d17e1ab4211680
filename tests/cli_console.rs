//! The console tools as a subprocess against a real broker:
//! `console-producer` and `console-consumer` round trips with keys (the
//! producer's partitioner is Kafka's), one partition from an offset,
//! compressed records with every header, a group resuming at its commits,
//! and the producer's `>` prompt at a terminal (through a pseudo-terminal).
//! Every run has a deadline.

mod common;

use std::collections::BTreeSet;

use common::{corelog_ok as ok, Broker, BrokerOptions};
use corelog::cli::console_producer::partition_for_key;

fn create(broker: &Broker, topic: &str, partitions: &str) {
    common::cli_create_topic(&broker.bootstrap(), topic, partitions);
}

#[test]
fn console_producer_then_consumer_round_trip_with_keys() {
    let broker = Broker::start_with(common::BrokerOptions::default().shards(2));
    create(&broker, "keyed", "3");
    let bootstrap = broker.bootstrap();
    let lines: Vec<String> = (0..50)
        .map(|i| format!("key-{}:value {i}", i % 7))
        .collect();
    let input = lines.join("\n") + "\n";
    ok(
        &[
            "console-producer",
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            "keyed",
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=:",
        ],
        &input,
    );
    let run = ok(
        &[
            "console-consumer",
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            "keyed",
            "--from-beginning",
            "--max-messages",
            "50",
            "--timeout-ms",
            "10000",
            "--property",
            "print.key=true",
            "--property",
            "print.partition=true",
        ],
        "",
    );
    assert!(
        run.stderr.contains("Processed a total of 50 messages"),
        "{run:?}"
    );
    let mut got = BTreeSet::new();
    let mut per_key_order: std::collections::HashMap<String, Vec<u32>> = Default::default();
    for line in run.stdout.lines() {
        // Partition:P \t key \t value
        let fields: Vec<&str> = line.splitn(3, '\t').collect();
        assert_eq!(fields.len(), 3, "{line}");
        let partition: i32 = fields[0]
            .strip_prefix("Partition:")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        assert_eq!(
            partition,
            partition_for_key(fields[1].as_bytes(), 3),
            "key {} is in the partition Kafka's partitioner picks",
            fields[1]
        );
        let n: u32 = fields[2].trim_start_matches("value ").parse().expect("n");
        per_key_order
            .entry(fields[1].to_string())
            .or_default()
            .push(n);
        got.insert(format!("{}:{}", fields[1], fields[2]));
    }
    let want: BTreeSet<String> = lines.into_iter().collect();
    assert_eq!(got, want);
    for (key, order) in per_key_order {
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{key}: {order:?}");
    }
}

#[test]
fn console_consumer_reads_one_partition_from_an_offset() {
    let broker = Broker::start();
    create(&broker, "single", "1");
    let bootstrap = broker.bootstrap();
    let input: String = (0..10).map(|i| format!("line {i}\n")).collect();
    ok(
        &[
            "console-producer",
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            "single",
        ],
        &input,
    );
    let run = ok(
        &[
            "console-consumer",
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            "single",
            "--partition",
            "0",
            "--offset",
            "7",
            "--timeout-ms",
            "1500",
            "--property",
            "print.offset=true",
            "--property",
            "print.timestamp=true",
        ],
        "",
    );
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{run:?}");
    for (line, n) in lines.iter().zip(7..) {
        assert!(line.starts_with("CreateTime:"), "{line}");
        assert!(line.ends_with(&format!("\tOffset:{n}\tline {n}")), "{line}");
    }
}

/// Records from a librdkafka producer, compressed and with headers (a key
/// twice, a null value), print as Kafka's DefaultMessageFormatter prints
/// them: every header in order, duplicates kept.
#[test]
fn console_consumer_prints_compressed_records_and_every_header() {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    use std::time::Duration;

    let broker = Broker::start();
    create(&broker, "headers", "1");
    for codec in ["lz4", "gzip", "zstd"] {
        let producer: ThreadedProducer<DefaultProducerContext> = broker
            .producer_config()
            .set("compression.type", codec)
            .create()
            .unwrap();
        for i in 0..3 {
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "a",
                    value: Some(codec),
                })
                .insert(Header {
                    key: "a",
                    value: Some(&format!("{i}")),
                })
                .insert(Header {
                    key: "n",
                    value: None::<&[u8]>,
                });
            let value = format!("{codec} {i}");
            producer
                .send(
                    BaseRecord::to("headers")
                        .key("k")
                        .payload(&value)
                        .headers(headers),
                )
                .map_err(|(e, _)| e)
                .unwrap();
        }
        producer.flush(Duration::from_secs(30)).unwrap();
    }
    let bootstrap = broker.bootstrap();
    let run = ok(
        &[
            "console-consumer",
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            "headers",
            "--from-beginning",
            "--max-messages",
            "9",
            "--timeout-ms",
            "10000",
            "--property",
            "print.headers=true",
            "--property",
            "print.key=true",
        ],
        "",
    );
    let expected: Vec<String> = ["lz4", "gzip", "zstd"]
        .iter()
        .flat_map(|codec| (0..3).map(move |i| format!("a:{codec},a:{i},n:null\tk\t{codec} {i}")))
        .collect();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines, expected, "{run:?}");
}

#[test]
fn console_consumer_group_resumes_from_committed_offsets() {
    // The consumer joins the group within its --timeout-ms only when the
    // first rebalance does not wait for more members (Kafka's quickstart
    // server.properties sets the same).
    let broker = Broker::start_with(
        BrokerOptions::default().override_config("group.initial.rebalance.delay.ms", "0"),
    );
    create(&broker, "grouped", "2");
    let bootstrap = broker.bootstrap();
    let input: String = (0..10).map(|i| format!("m{i}\n")).collect();
    ok(
        &[
            "console-producer",
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            "grouped",
        ],
        &input,
    );
    let consume = |max: &str| {
        ok(
            &[
                "console-consumer",
                "--bootstrap-server",
                &bootstrap,
                "--topic",
                "grouped",
                "--group",
                "g1",
                "--from-beginning",
                "--max-messages",
                max,
                "--timeout-ms",
                "3000",
            ],
            "",
        )
        .stdout
        .lines()
        .map(str::to_string)
        .collect::<Vec<_>>()
    };
    let first = consume("4");
    assert_eq!(first.len(), 4);
    let rest = consume("100");
    assert_eq!(
        rest.len(),
        6,
        "resumed after the committed offsets: {rest:?}"
    );
    let all: BTreeSet<String> = first.into_iter().chain(rest).collect();
    assert_eq!(all.len(), 10);
}

#[test]
fn console_producer_prompts_at_a_terminal() {
    use std::fs::File;
    use std::io::{Read, Write};
    use std::os::fd::FromRawFd;
    use std::process::{Command, Stdio};

    let broker = Broker::start();
    create(&broker, "prompted", "1");
    let bootstrap = broker.bootstrap();
    let (mut master, slave) = {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty writes two new descriptors into the two ints; each
        // is owned by exactly one File below.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty");
        unsafe { (File::from_raw_fd(master), File::from_raw_fd(slave)) }
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_corelog"))
        .args([
            "console-producer",
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            "prompted",
        ])
        .stdin(Stdio::from(slave))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn corelog");
    // A line, then Ctrl-D: the end of input at a terminal.
    master
        .write_all(b"typed\n\x04")
        .expect("type into the terminal");
    let status = common::wait_bounded(&mut child, common::RUN_TIMEOUT)
        .expect("console-producer ends at the end of its input");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status:?}: {err}");
    assert_eq!(
        out, ">>",
        "a prompt before each line and before the end: {out:?}"
    );
    let run = ok(
        &[
            "console-consumer",
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            "prompted",
            "--from-beginning",
            "--max-messages",
            "1",
        ],
        "",
    );
    assert_eq!(run.stdout, "typed\n");
}
