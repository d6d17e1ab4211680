//! Consumer groups end to end: librdkafka consumers that `subscribe()`,
//! raw-protocol members for what librdkafka cannot be made to do (stop
//! heartbeating, send stale generations), durability of committed offsets
//! across restarts, and the lag reported by `corelog consumer-groups`.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use common::raw::{str_bytes, topic_name, Conn};
use common::{assigned, Broker, BrokerOptions};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, DeleteGroupsRequest,
    DeleteGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse, GroupId,
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest,
    SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::Encodable;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

const UNKNOWN_MEMBER_ID: i16 = 25;
const ILLEGAL_GENERATION: i16 = 22;
const REBALANCE_IN_PROGRESS: i16 = 27;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const MEMBER_ID_REQUIRED: i16 = 79;
const INVALID_SESSION_TIMEOUT: i16 = 26;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;
const FENCED_INSTANCE_ID: i16 = 82;

/// Two shards (groups are routed across the mesh), a small offsets topic,
/// short session timeouts allowed, and the given initial rebalance delay.
fn group_broker(initial_delay_ms: u32) -> Broker {
    Broker::start_with(
        BrokerOptions::default()
            .shards(2)
            .override_config("offsets.topic.num.partitions", "4")
            .override_config("group.min.session.timeout.ms", "500")
            .override_config(
                "group.initial.rebalance.delay.ms",
                &initial_delay_ms.to_string(),
            ),
    )
}

fn group_consumer(broker: &Broker, group: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut config = broker.client_config();
    config
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "300")
        .set("fetch.wait.max.ms", "100");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config.create().expect("create group consumer")
}

fn produce(broker: &Broker, topic: &str, partitions: i32, count: usize) {
    common::produce_numbered(broker, topic, partitions, 0, count);
}

#[test]
fn two_consumers_split_six_partitions_and_read_everything_once() {
    // A short initial delay lets both consumers join the first rebalance.
    let broker = group_broker(1500);
    broker.create_topic("split", 6, &[]);
    produce(&broker, "split", 6, 10_000);
    let seen: Arc<Mutex<Vec<(usize, i32, i64)>>> = Arc::default();
    let assignments: Arc<Mutex<Vec<BTreeSet<i32>>>> = Arc::default();
    let workers: Vec<_> = (0..2)
        .map(|who| {
            let consumer = group_consumer(&broker, "split-group", &[]);
            consumer.subscribe(&["split"]).expect("subscribe");
            let seen = seen.clone();
            let assignments = assignments.clone();
            thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(40);
                while seen.lock().unwrap().len() < 10_000 && Instant::now() < deadline {
                    match consumer.poll(Duration::from_millis(100)) {
                        Some(Ok(m)) => seen.lock().unwrap().push((who, m.partition(), m.offset())),
                        Some(Err(e)) => eprintln!("consumer {who}: {e}"),
                        None => {}
                    }
                }
                assignments.lock().unwrap().push(assigned(&consumer));
            })
        })
        .collect();
    for w in workers {
        w.join().expect("consumer thread");
    }
    let seen = seen.lock().unwrap();
    let unique: BTreeSet<(i32, i64)> = seen.iter().map(|(_, p, o)| (*p, *o)).collect();
    assert_eq!(seen.len(), 10_000, "every message once, no duplicates");
    assert_eq!(unique.len(), 10_000);
    let assignments = assignments.lock().unwrap();
    assert_eq!(assignments.len(), 2);
    for a in assignments.iter() {
        assert_eq!(
            a.len(),
            3,
            "each consumer owns 3 of 6 partitions: {assignments:?}"
        );
    }
    let union: BTreeSet<i32> = assignments.iter().flatten().copied().collect();
    assert_eq!(union.len(), 6);
    // Each partition was read by one consumer only.
    let mut readers: HashMap<i32, BTreeSet<usize>> = HashMap::new();
    for (who, p, _) in seen.iter() {
        readers.entry(*p).or_default().insert(*who);
    }
    assert!(readers.values().all(|r| r.len() == 1), "{readers:?}");
}

/// What one consumer read: (partition, offset, committed after reading).
type Reads = Arc<Mutex<Vec<(i32, i64, bool)>>>;

fn consume_committing(consumer: &BaseConsumer, reads: &Reads, stop: impl Fn(usize) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut count = 0;
    while !stop(count) && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
            count += 1;
            let committed = consumer.commit_message(&m, CommitMode::Sync).is_ok();
            reads
                .lock()
                .unwrap()
                .push((m.partition(), m.offset(), committed));
        }
    }
}

#[test]
fn survivor_takes_over_when_a_member_leaves() {
    let broker = group_broker(1500);
    broker.create_topic("leave", 4, &[]);
    produce(&broker, "leave", 4, 800);
    let (a_reads, b_reads): (Reads, Reads) = Default::default();
    let a = group_consumer(&broker, "leave-group", &[]);
    let b = group_consumer(&broker, "leave-group", &[]);
    a.subscribe(&["leave"]).unwrap();
    b.subscribe(&["leave"]).unwrap();
    let b_thread = {
        let b_reads = b_reads.clone();
        thread::spawn(move || {
            consume_committing(&b, &b_reads, |n| n >= 150);
            // Dropping closes the consumer: LeaveGroup, and a rebalance.
            drop(b);
        })
    };
    let total = || {
        let mut all: BTreeSet<(i32, i64)> = BTreeSet::new();
        all.extend(a_reads.lock().unwrap().iter().map(|r| (r.0, r.1)));
        all.extend(b_reads.lock().unwrap().iter().map(|r| (r.0, r.1)));
        all.len()
    };
    consume_committing(&a, &a_reads, |_| total() >= 800 && b_thread.is_finished());
    b_thread.join().unwrap();
    assert_eq!(total(), 800, "no message skipped");
    assert_eq!(assigned(&a).len(), 4, "the survivor owns every partition");
    let b_reads = b_reads.lock().unwrap();
    assert!(
        !b_reads.is_empty(),
        "the leaver read something before leaving"
    );
    // A message read twice was read first by a member that had not
    // committed it: duplicates only after the last commit.
    let committed: BTreeSet<(i32, i64)> = b_reads
        .iter()
        .chain(a_reads.lock().unwrap().iter())
        .filter(|r| r.2)
        .map(|r| (r.0, r.1))
        .collect();
    let mut counts: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for r in b_reads.iter().chain(a_reads.lock().unwrap().iter()) {
        *counts.entry((r.0, r.1)).or_default() += 1;
    }
    let bad: Vec<_> = counts
        .iter()
        .filter(|(k, n)| **n > 1 && committed.contains(k))
        .collect();
    assert!(bad.len() <= 4, "committed messages read again: {bad:?}");
}

/// A consumer-protocol subscription (version 0) to `topics`.
fn subscription(topics: &[&str]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    ConsumerProtocolSubscription::default()
        .with_topics(topics.iter().map(|t| str_bytes(t)).collect())
        .encode(&mut buf, 0)
        .unwrap();
    buf.freeze()
}

fn assignment(topic: &str, partitions: Vec<i32>) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    ConsumerProtocolAssignment::default()
        .with_assigned_partitions(vec![AssignedTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(partitions)])
        .encode(&mut buf, 0)
        .unwrap();
    buf.freeze()
}

fn find_coordinator(conn: &mut Conn, group: &str) -> FindCoordinatorResponse {
    conn.call(
        3,
        &FindCoordinatorRequest::default().with_key(str_bytes(group)),
    )
}

fn join_request(group: &str, member: &str, topic: &str, session_ms: i32) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_session_timeout_ms(session_ms)
        .with_rebalance_timeout_ms(session_ms)
        .with_member_id(str_bytes(member))
        .with_protocol_type(str_bytes("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(str_bytes("range"))
            .with_metadata(subscription(&[topic]))])
}

/// A raw member joins (with the MEMBER_ID_REQUIRED round trip) and, alone
/// in the group, becomes leader and takes `partitions`. Returns (member
/// id, generation).
fn raw_member_joins(
    conn: &mut Conn,
    group: &str,
    topic: &str,
    partitions: Vec<i32>,
    session_ms: i32,
) -> (String, i32) {
    let first: JoinGroupResponse = conn.call(5, &join_request(group, "", topic, session_ms));
    assert_eq!(first.error_code, MEMBER_ID_REQUIRED);
    let member = first.member_id.to_string();
    let joined: JoinGroupResponse = conn.call(5, &join_request(group, &member, topic, session_ms));
    assert_eq!(joined.error_code, 0, "join: {joined:?}");
    assert_eq!(joined.leader.as_str(), member, "alone, it leads");
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_generation_id(joined.generation_id)
        .with_member_id(str_bytes(&member))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(str_bytes(&member))
            .with_assignment(assignment(topic, partitions))]);
    let synced: SyncGroupResponse = conn.call(3, &sync);
    assert_eq!(synced.error_code, 0);
    (member, joined.generation_id)
}

fn commit(
    conn: &mut Conn,
    group: &str,
    member: &str,
    generation: i32,
    topic: &str,
    offsets: &[(i32, i64)],
) -> OffsetCommitResponse {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(str_bytes(member))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(
                offsets
                    .iter()
                    .map(|(p, o)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(*p)
                            .with_committed_offset(*o)
                    })
                    .collect(),
            )]);
    conn.call(8, &request)
}

fn fetch_offsets(conn: &mut Conn, group: &str, topic: &str, partitions: Vec<i32>) -> Vec<i64> {
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partition_indexes(partitions)]));
    let response: OffsetFetchResponse = conn.call(7, &request);
    assert_eq!(response.error_code, 0);
    response.topics[0]
        .partitions
        .iter()
        .map(|p| p.committed_offset)
        .collect()
}

#[test]
fn survivor_takes_over_when_a_member_dies_and_resumes_at_its_commits() {
    let broker = group_broker(0);
    broker.create_topic("death", 2, &[]);
    produce(&broker, "death", 2, 60);
    let mut conn = Conn::connect(broker.addr());
    assert_eq!(find_coordinator(&mut conn, "death-group").error_code, 0);
    let (member, generation) =
        raw_member_joins(&mut conn, "death-group", "death", vec![0, 1], 1000);
    let committed = commit(
        &mut conn,
        "death-group",
        &member,
        generation,
        "death",
        &[(0, 10), (1, 20)],
    );
    assert!(
        committed.topics[0]
            .partitions
            .iter()
            .all(|p| p.error_code == 0),
        "{committed:?}"
    );
    // The raw member now stops heartbeating: its session (1 s) expires while
    // the librdkafka consumer joins, and the survivor gets both partitions.
    let started = Instant::now();
    let survivor = group_consumer(&broker, "death-group", &[]);
    survivor.subscribe(&["death"]).unwrap();
    let mut first: BTreeMap<i32, i64> = BTreeMap::new();
    let mut count = 0;
    while count < 30 && started.elapsed() < Duration::from_secs(30) {
        if let Some(Ok(m)) = survivor.poll(Duration::from_millis(100)) {
            first.entry(m.partition()).or_insert(m.offset());
            count += 1;
        }
    }
    assert_eq!(
        count, 30,
        "the survivor reads what the dead member had not committed"
    );
    assert_eq!(
        first,
        BTreeMap::from([(0, 10), (1, 20)]),
        "resumes at the commits"
    );
    assert_eq!(assigned(&survivor).len(), 2);
    // The dead member is gone: its heartbeat is refused.
    let hb: HeartbeatResponse = conn.call(
        3,
        &HeartbeatRequest::default()
            .with_group_id(GroupId(str_bytes("death-group")))
            .with_generation_id(generation)
            .with_member_id(str_bytes(&member)),
    );
    assert!(
        hb.error_code == UNKNOWN_MEMBER_ID || hb.error_code == ILLEGAL_GENERATION,
        "{hb:?}"
    );
}

fn first_offset_read(broker: &Broker, group: &str, topic: &str) -> i64 {
    let consumer = group_consumer(broker, group, &[]);
    consumer.subscribe(&[topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            return m.offset();
        }
    }
    panic!("no message read from {topic}");
}

#[test]
fn committed_offset_survives_graceful_and_hard_restarts() {
    let mut broker = group_broker(0);
    broker.create_topic("durable", 1, &[]);
    produce(&broker, "durable", 1, 100);
    {
        let consumer = group_consumer(&broker, "durable-group", &[]);
        consumer.subscribe(&["durable"]).unwrap();
        let mut read = 0;
        let deadline = Instant::now() + Duration::from_secs(20);
        while read < 37 && Instant::now() < deadline {
            if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
                read += 1;
            }
        }
        assert_eq!(read, 37);
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset("durable", 0, Offset::Offset(37))
            .unwrap();
        consumer.commit(&offsets, CommitMode::Sync).expect("commit");
    }
    broker.graceful_restart();
    assert_eq!(first_offset_read(&broker, "durable-group", "durable"), 37);
    let mut conn = Conn::connect(broker.addr());
    assert_eq!(find_coordinator(&mut conn, "durable-group").error_code, 0);
    let c = commit(&mut conn, "durable-group", "", -1, "durable", &[(0, 61)]);
    // The group may still hold the last consumer as a member until its
    // session ends; commit as an admin once it is empty.
    if c.topics[0].partitions[0].error_code != 0 {
        thread::sleep(Duration::from_secs(7));
        let c = commit(&mut conn, "durable-group", "", -1, "durable", &[(0, 61)]);
        assert_eq!(c.topics[0].partitions[0].error_code, 0, "{c:?}");
    }
    broker.restart();
    let mut conn = Conn::connect(broker.addr());
    assert_eq!(
        fetch_offsets(&mut conn, "durable-group", "durable", vec![0]),
        vec![61]
    );
    assert_eq!(first_offset_read(&broker, "durable-group", "durable"), 61);
}

#[test]
fn cli_reports_lag() {
    let broker = group_broker(0);
    broker.create_topic("lagging", 1, &[]);
    produce(&broker, "lagging", 1, 1000);
    let consumer = group_consumer(&broker, "lag-group", &[("client.id", "lag-client")]);
    consumer.subscribe(&["lagging"]).unwrap();
    let mut read = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while read < 400 && Instant::now() < deadline {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
            read += 1;
        }
    }
    assert_eq!(read, 400);
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("lagging", 0, Offset::Offset(400))
        .unwrap();
    consumer.commit(&offsets, CommitMode::Sync).expect("commit");
    // Heartbeats (served by poll) keep the member in the group.
    consumer.poll(Duration::from_millis(100));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_corelog"))
        .args(["consumer-groups", "--bootstrap-server", &broker.bootstrap()])
        .args(["--describe", "--group", "lag-group"])
        .output()
        .expect("run corelog consumer-groups");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let header = stdout
        .lines()
        .find(|l| l.starts_with("GROUP"))
        .unwrap_or_else(|| panic!("no header in:\n{stdout}"));
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        columns,
        [
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID"
        ]
    );
    let row: Vec<&str> = stdout
        .lines()
        .find(|l| l.starts_with("lag-group"))
        .unwrap_or_else(|| panic!("no row in:\n{stdout}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        &row[..6],
        ["lag-group", "lagging", "0", "400", "1000", "600"],
        "{stdout}"
    );
    assert!(row[6].starts_with("lag-client-"), "member id in {stdout}");
    assert_eq!(row[8], "lag-client", "{stdout}");
    assert_eq!(row[7], "/127.0.0.1", "member host in {stdout}");

    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_corelog"))
        .args(["consumer-groups", "--bootstrap-server", &broker.bootstrap()])
        .args(["--describe", "--group", "no-such-group"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");

    let list = std::process::Command::new(env!("CARGO_BIN_EXE_corelog"))
        .args([
            "consumer-groups",
            "--bootstrap-server",
            &broker.bootstrap(),
            "--list",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&list.stdout)
        .lines()
        .any(|l| l == "lag-group"));
}

#[test]
fn error_codes_by_raw_protocol() {
    let broker = group_broker(0);
    broker.create_topic("errors", 2, &[]);
    let mut conn = Conn::connect(broker.addr());
    // Before any FindCoordinator there is no offsets topic: no coordinator.
    let early: JoinGroupResponse = conn.call(5, &join_request("g", "", "errors", 6000));
    assert_eq!(early.error_code, COORDINATOR_NOT_AVAILABLE);
    let found = find_coordinator(&mut conn, "g");
    assert_eq!(found.error_code, 0);
    assert_eq!(found.port, i32::from(broker.port));
    assert_eq!(
        conn.call::<JoinGroupRequest>(5, &join_request("g", "", "errors", 10))
            .error_code,
        INVALID_SESSION_TIMEOUT
    );
    let (member, generation) = raw_member_joins(&mut conn, "g", "errors", vec![0, 1], 6000);
    let heartbeat = |conn: &mut Conn, member: &str, generation: i32| -> i16 {
        let r: HeartbeatResponse = conn.call(
            4,
            &HeartbeatRequest::default()
                .with_group_id(GroupId(str_bytes("g")))
                .with_generation_id(generation)
                .with_member_id(str_bytes(member)),
        );
        r.error_code
    };
    assert_eq!(heartbeat(&mut conn, &member, generation), 0);
    assert_eq!(
        heartbeat(&mut conn, "nobody", generation),
        UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        heartbeat(&mut conn, &member, generation + 1),
        ILLEGAL_GENERATION
    );
    let stale = commit(&mut conn, "g", &member, generation - 1, "errors", &[(0, 1)]);
    assert_eq!(stale.topics[0].partitions[0].error_code, ILLEGAL_GENERATION);
    let unknown = commit(&mut conn, "g", "nobody", generation, "errors", &[(0, 1)]);
    assert_eq!(
        unknown.topics[0].partitions[0].error_code,
        UNKNOWN_MEMBER_ID
    );
    let no_topic = commit(
        &mut conn,
        "g",
        &member,
        generation,
        "no-such-topic",
        &[(0, 1)],
    );
    assert_eq!(no_topic.topics[0].partitions[0].error_code, 3);

    // A second member joins: the group rebalances and the first member's
    // heartbeat says so.
    let mut other = Conn::connect(broker.addr());
    let first: JoinGroupResponse = other.call(5, &join_request("g", "", "errors", 6000));
    let second_id = first.member_id.to_string();
    let joining = thread::spawn(move || {
        let r: JoinGroupResponse = other.call(5, &join_request("g", &second_id, "errors", 6000));
        r
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut code = 0;
    while code != REBALANCE_IN_PROGRESS && Instant::now() < deadline {
        code = heartbeat(&mut conn, &member, generation);
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(code, REBALANCE_IN_PROGRESS);
    let rejoined: JoinGroupResponse = conn.call(5, &join_request("g", &member, "errors", 6000));
    assert_eq!(rejoined.error_code, 0);
    assert_eq!(rejoined.generation_id, generation + 1);
    assert_eq!(rejoined.members.len(), 2, "the leader sees both members");
    let second = joining.join().unwrap();
    assert_eq!(second.error_code, 0);
    assert!(second.members.is_empty(), "followers get no member list");

    // Deleting a group with members is refused; an unknown group is not found.
    let deleted: DeleteGroupsResponse = conn.call(
        2,
        &DeleteGroupsRequest::default().with_groups_names(vec![
            GroupId(str_bytes("g")),
            GroupId(str_bytes("never-seen")),
        ]),
    );
    assert_eq!(deleted.results[0].error_code, NON_EMPTY_GROUP);
    assert_eq!(deleted.results[1].error_code, GROUP_ID_NOT_FOUND);

    // Static membership: a second member claiming a taken instance id with
    // another member id is fenced.
    let mut static_conn = Conn::connect(broker.addr());
    let join_static = |conn: &mut Conn, member: &str| -> JoinGroupResponse {
        conn.call(
            5,
            &join_request("static-g", member, "errors", 6000)
                .with_group_instance_id(Some(str_bytes("instance-1"))),
        )
    };
    let joined = join_static(&mut static_conn, "");
    assert_eq!(
        joined.error_code, 0,
        "static members skip MEMBER_ID_REQUIRED"
    );
    assert_eq!(
        join_static(&mut static_conn, "impostor").error_code,
        FENCED_INSTANCE_ID
    );
    let _ = TopicName::default();
}

/// Runs `corelog consumer-groups` with `args`; returns (success, stdout, stderr).
fn consumer_groups(broker: &Broker, args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_corelog"))
        .args(["consumer-groups", "--bootstrap-server", &broker.bootstrap()])
        .args(args)
        .output()
        .expect("run corelog consumer-groups");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The CURRENT-OFFSET and LAG columns of `group`'s row for partition 0.
fn current_and_lag(broker: &Broker, group: &str) -> (String, String) {
    let (ok, out, err) = consumer_groups(broker, &["--describe", "--group", group]);
    assert!(ok, "{out}\n{err}");
    let row: Vec<String> = out
        .lines()
        .find(|l| l.starts_with(group))
        .unwrap_or_else(|| panic!("no row in:\n{out}"))
        .split_whitespace()
        .map(String::from)
        .collect();
    (row[3].clone(), row[5].clone())
}

#[test]
fn cli_resets_offsets_and_deletes_groups() {
    let broker = group_broker(0);
    broker.create_topic("resets", 1, &[]);
    produce(&broker, "resets", 1, 100);
    let reset = |target: &[&str], execute: bool| {
        let mut args = vec![
            "--reset-offsets",
            "--group",
            "reset-group",
            "--topic",
            "resets",
        ];
        args.extend_from_slice(target);
        if execute {
            args.push("--execute");
        }
        let (ok, out, err) = consumer_groups(&broker, &args);
        assert!(ok, "{args:?}: {out}\n{err}");
        // Without --execute nothing happens, and the tool says so.
        assert_eq!(
            err.contains("No action will be performed"),
            !execute,
            "{args:?}: {err}"
        );
        let row: Vec<String> = out
            .lines()
            .find(|l| l.starts_with("reset-group"))
            .unwrap_or_else(|| panic!("no plan row in:\n{out}"))
            .split_whitespace()
            .map(String::from)
            .collect();
        row[3].clone()
    };
    assert_eq!(reset(&["--to-offset", "40"], true), "40");
    assert_eq!(
        current_and_lag(&broker, "reset-group"),
        ("40".into(), "60".into())
    );
    // A dry run plans without committing.
    assert_eq!(reset(&["--to-latest"], false), "100");
    assert_eq!(
        current_and_lag(&broker, "reset-group"),
        ("40".into(), "60".into())
    );
    assert_eq!(reset(&["--to-earliest"], true), "0");
    assert_eq!(
        current_and_lag(&broker, "reset-group"),
        ("0".into(), "100".into())
    );
    // Out of range offsets are clamped; a time after the last record means the end.
    assert_eq!(reset(&["--to-offset", "5000"], true), "100");
    assert_eq!(
        reset(&["--to-datetime", "2999-01-01T00:00:00.000"], true),
        "100"
    );
    assert_eq!(reset(&["--to-datetime", "2000-01-01T00:00:00"], true), "0");

    let (ok, out, err) = consumer_groups(&broker, &["--delete", "--group", "reset-group"]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("was successful"), "{out}");
    let (ok, out, _) = consumer_groups(&broker, &["--list"]);
    assert!(ok);
    assert!(!out.lines().any(|l| l.trim() == "reset-group"), "{out}");
    // Neither a reset nor a delete is allowed while the group has members.
    let consumer = group_consumer(&broker, "busy-group", &[]);
    consumer.subscribe(&["resets"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while consumer.assignment().map(|a| a.count()).unwrap_or(0) == 0 && Instant::now() < deadline {
        consumer.poll(Duration::from_millis(100));
    }
    let (ok, _, err) = consumer_groups(
        &broker,
        &[
            "--reset-offsets",
            "--group",
            "busy-group",
            "--topic",
            "resets",
            "--to-earliest",
            "--execute",
        ],
    );
    assert!(!ok && err.contains("inactive"), "{err}");
    let (ok, _, err) = consumer_groups(&broker, &["--delete", "--group", "busy-group"]);
    assert!(!ok && err.contains("NonEmptyGroup"), "{err}");
}
