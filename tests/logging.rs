//! Log output: `--log-format json` writes one JSON object per line, and a
//! line logged while a request is handled carries the request's span
//! (shard, connection, peer, API, version, correlation id, client id), so an operator can tell which client a warning was about.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use common::{Broker, BrokerOptions};

/// A Metadata v1 request with client id "boom", which the broker's test
/// hook (`CORELOG_TEST_PANIC_CLIENT_ID`) makes panic in its handler.
fn panicking_metadata_request() -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_i16(3); // Metadata
    body.put_i16(1);
    body.put_i32(42); // correlation id
    body.put_i16(4);
    body.put_slice(b"boom");
    body.put_i32(0); // no topics
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

#[test]
fn json_lines_carry_the_request_span() {
    let mut broker = Broker::start_with(
        BrokerOptions::default()
            .arg("--log-format")
            .arg("json")
            .env("RUST_LOG", "corelog=info")
            .env("CORELOG_TEST_PANIC_CLIENT_ID", "boom"),
    );
    let mut stream = TcpStream::connect(broker.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(&panicking_metadata_request()).unwrap();
    // The broker closes the connection of a panicking request.
    let mut buf = [0u8; 64];
    assert!(matches!(stream.read(&mut buf), Ok(0) | Err(_)));

    let (status, out) = broker.terminate();
    assert!(status.success(), "{out}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!lines.is_empty(), "no JSON log lines: {out}");
    for line in &lines {
        for key in ["timestamp", "level", "target", "fields"] {
            assert!(line.get(key).is_some(), "{key} missing: {line}");
        }
    }
    let panicked = lines
        .iter()
        .find(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("panicked"))
        })
        .unwrap_or_else(|| panic!("no line about the panic: {out}"));
    assert_eq!(panicked["level"], "ERROR", "{panicked}");
    let spans = panicked["spans"].as_array().expect("spans");
    let request = spans
        .iter()
        .find(|s| s["name"] == "request")
        .expect("request span");
    assert_eq!(request["shard"], 0, "{panicked}");
    assert!(request["conn"].as_u64().is_some(), "{panicked}");
    assert!(request["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(request["api"], "Metadata", "{panicked}");
    assert_eq!(request["version"], 1, "{panicked}");
    assert_eq!(request["correlation_id"], 42, "{panicked}");
    assert_eq!(request["client_id"], "boom", "{panicked}");
}

/// The lines of `out` at `level` (the text format puts the level after
/// the timestamp).
fn at_level<'a>(out: &'a str, level: &str) -> Vec<&'a str> {
    let tag = format!(" {level} ");
    out.lines().filter(|l| l.contains(&tag)).collect()
}

fn topics(broker: &Broker, rest: &[&str]) {
    let bootstrap = broker.bootstrap();
    let args = [&["topics", "--bootstrap-server", &bootstrap][..], rest].concat();
    let run = common::corelog(&args, "");
    assert!(run.success(), "{run:?}");
}

/// At the default level (no RUST_LOG) the broker tells what an operator
/// tails Kafka's server.log for, and nothing at DEBUG: its start, the
/// topics created and deleted with their shape, log recovery at the next
/// start, the connection counts, and the steps of its stop.
#[test]
fn the_default_level_tells_topics_recovery_connections_and_stops() {
    let mut broker = Broker::start_with(
        BrokerOptions::default()
            .env("RUST_LOG", "")
            .env("CORELOG_CONNECTION_SUMMARY_MS", "300"),
    );
    topics(
        &broker,
        &["--create", "--topic", "logged", "--partitions", "3"],
    );
    topics(&broker, &["--create", "--topic", "doomed"]);
    topics(&broker, &["--delete", "--topic", "doomed"]);
    common::produce_numbered(&broker, "logged", 3, 0, 30);
    // The summary comes within its (shortened) interval.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !broker.stderr().contains("connections: ") {
        assert!(
            std::time::Instant::now() < deadline,
            "no connection summary: {}",
            broker.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    broker.graceful_restart();
    let (status, out) = broker.terminate();
    assert!(status.success(), "{out}");

    let info = at_level(&out, "INFO").join("\n");
    for expected in [
        "starting node ",
        ": serving clients on ",
        "Created topic logged with topic id ",
        ": 3 partitions, replication factor 1",
        "Created topic doomed with topic id ",
        "Deleted topic doomed with topic id ",
        " opened, ",
        // The first start had nothing to recover; the second opened the
        // three partitions and their records.
        "log recovery: opened 0 partitions (0 bytes) in ",
        "log recovery: opened 3 partitions (",
        ": stopping: handing its work over",
        "shard 0: closed 3 partitions in ",
        " stopped",
    ] {
        assert!(
            info.contains(expected),
            "no INFO line with {expected:?}:\n{out}"
        );
    }
    let summary = at_level(&out, "INFO")
        .into_iter()
        .find(|l| l.contains("connections: "))
        .unwrap();
    assert!(
        regex_like_connections(summary),
        "the connection summary counts: {summary}"
    );
    // Connections are counted, not logged one by one; no DEBUG line at all.
    assert!(at_level(&out, "DEBUG").is_empty(), "{out}");
    assert!(!out.contains("accepted connection from"), "{out}");
}

/// "connections: N opened, M closed in the last S s; K open" with N > 0.
fn regex_like_connections(line: &str) -> bool {
    let Some(rest) = line.split("connections: ").nth(1) else {
        return false;
    };
    let opened: Option<u64> = rest.split(' ').next().and_then(|n| n.parse().ok());
    opened.is_some_and(|n| n > 0) && rest.contains(" closed") && rest.contains(" open")
}

/// RUST_LOG filters by module as documented: DEBUG for the connection
/// module shows each connection, and nothing else at DEBUG.
#[test]
fn rust_log_turns_on_debug_for_one_module() {
    let mut broker = Broker::start_with(BrokerOptions::default().env(
        "RUST_LOG",
        "warn,corelog=info,corelog::server::connection=debug",
    ));
    topics(&broker, &["--list"]);
    let (status, out) = broker.terminate();
    assert!(status.success(), "{out}");
    let debug = at_level(&out, "DEBUG");
    assert!(
        debug
            .iter()
            .any(|l| l.contains("accepted connection from 127.0.0.1:")),
        "{out}"
    );
    assert!(
        debug
            .iter()
            .all(|l| l.contains("corelog::server::connection")),
        "{out}"
    );
}

/// A cluster's nodes log the controller election, the broker
/// registrations, the topic's creation with its replicas, and the leader
/// and ISR change when the leader's node dies (topic-partition, leader,
/// leader epoch, ISR).
#[test]
fn a_cluster_logs_elections_registrations_and_leader_changes() {
    let mut cluster = common::cluster::Cluster::start_with(3, 0, 1, &[]);
    common::cluster::create_topic(&cluster.bootstrap_all(), "led", 1, 3, &[]).unwrap();
    let mut first = None;
    common::cluster::eventually("a leader for led-0", Duration::from_secs(30), || {
        first = cluster
            .partitions_from_any("led")
            .first()
            .filter(|p| p.leader > 0 && p.isr.len() == 3)
            .cloned();
        first.is_some()
    });
    let first = first.unwrap();
    let dead = cluster.index_of(first.leader);
    cluster.kill9(dead);
    let mut next = None;
    common::cluster::eventually("a new leader for led-0", Duration::from_secs(30), || {
        next = cluster
            .partitions_from_any("led")
            .first()
            .filter(|p| p.leader > 0 && p.leader != first.leader)
            .cloned();
        next.is_some()
    });
    let next = next.unwrap();
    let survivor = (0..3).find(|&i| i != dead).unwrap();
    let expected = format!(
        "Partition led-0: leader {} at leader epoch {}, ISR ",
        next.leader, next.leader_epoch
    );
    common::cluster::eventually(
        "the leader change in the log",
        Duration::from_secs(10),
        || cluster.output(survivor).contains(&expected),
    );
    let out = cluster.output(survivor);
    for line in [
        "is the active controller at epoch ",
        "registered with the controller quorum",
        "Created topic led with topic id ",
        ": 1 partitions, replication factor 3",
    ] {
        assert!(out.contains(line), "no {line:?} in:\n{out}");
    }
    let all: String = (0..3).map(|i| cluster.output(i)).collect();
    assert!(all.contains("controller: registering broker "), "{all}");
}
