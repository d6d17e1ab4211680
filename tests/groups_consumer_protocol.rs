//! KIP-848 consumer groups end to end: librdkafka consumers with
//! `group.protocol=consumer` (ConsumerGroupHeartbeat v1, server-side
//! assignment), raw ConsumerGroupHeartbeat/ConsumerGroupDescribe requests
//! for what librdkafka cannot be made to do (step through a revocation,
//! send fenced epochs), durability across restarts, and the CLI.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::raw::{str_bytes, topic_name, Conn};
use common::{assigned, produce_numbered as produce, Broker, BrokerOptions};
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse, CreatePartitionsRequest, CreatePartitionsResponse,
    DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse,
    GroupId, JoinGroupRequest, JoinGroupResponse, ListGroupsRequest, ListGroupsResponse,
    MetadataRequest, MetadataResponse, OffsetCommitRequest, OffsetCommitResponse,
};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use uuid::Uuid;

const UNKNOWN_MEMBER_ID: i16 = 25;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const INVALID_REQUEST: i16 = 42;
const GROUP_ID_NOT_FOUND: i16 = 69;
const FENCED_MEMBER_EPOCH: i16 = 110;
const UNRELEASED_INSTANCE_ID: i16 = 111;
const UNSUPPORTED_ASSIGNOR: i16 = 112;
const STALE_MEMBER_EPOCH: i16 = 113;
const INVALID_REGULAR_EXPRESSION: i16 = 128;

/// How long a group may take to converge (members heartbeat every 300 ms).
const CONVERGE: Duration = Duration::from_secs(60);

/// Two shards (groups are routed across the mesh), a small offsets topic,
/// and a short heartbeat interval so reconciliation steps come quickly.
fn kip848_broker() -> Broker {
    Broker::start_with(
        BrokerOptions::default()
            .shards(2)
            .override_config("offsets.topic.num.partitions", "4")
            .override_config("group.consumer.heartbeat.interval.ms", "300")
            .override_config("group.consumer.session.timeout.ms", "10000"),
    )
}

fn consumer(broker: &Broker, group: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut config = broker.client_config();
    config
        .set("group.id", group)
        .set("group.protocol", "consumer")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    let consumer: BaseConsumer = config.create().expect("create consumer");
    consumer
}

/// What each consumer read: (consumer index, partition, offset).
type Seen = Vec<(usize, i32, i64)>;

/// Polls every consumer in turn until `done` holds or `timeout` passes.
fn poll_until(
    consumers: &[&BaseConsumer],
    seen: &mut Seen,
    timeout: Duration,
    done: impl Fn(&[&BaseConsumer], &Seen) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        for (i, c) in consumers.iter().enumerate() {
            while let Some(result) = c.poll(Duration::from_millis(20)) {
                match result {
                    Ok(m) => seen.push((i, m.partition(), m.offset())),
                    Err(e) => eprintln!("consumer {i}: {e} (continuing)"),
                }
            }
        }
        if done(consumers, seen) {
            return true;
        }
    }
    false
}

/// Waits until the consumers hold disjoint assignments of the given sizes
/// that together cover `0..partitions`.
fn wait_split(consumers: &[&BaseConsumer], seen: &mut Seen, sizes: &[usize], partitions: i32) {
    let converged = poll_until(consumers, seen, CONVERGE, |cs, _| {
        let sets: Vec<BTreeSet<i32>> = cs.iter().map(|c| assigned(c)).collect();
        let union: BTreeSet<i32> = sets.iter().flatten().copied().collect();
        let total: usize = sets.iter().map(BTreeSet::len).sum();
        sets.iter().map(BTreeSet::len).collect::<Vec<_>>() == sizes
            && total == union.len()
            && union == (0..partitions).collect()
    });
    let now: Vec<BTreeSet<i32>> = consumers.iter().map(|c| assigned(c)).collect();
    assert!(
        converged,
        "assignments did not converge to {sizes:?}: {now:?}"
    );
}

/// Every (partition, offset) once; returns the per-consumer counts.
fn assert_exactly_once(seen: &Seen, expected: usize, consumers: usize) -> Vec<usize> {
    let unique: BTreeSet<(i32, i64)> = seen.iter().map(|(_, p, o)| (*p, *o)).collect();
    assert_eq!(unique.len(), seen.len(), "some messages were read twice");
    assert_eq!(seen.len(), expected, "messages read");
    (0..consumers)
        .map(|i| seen.iter().filter(|s| s.0 == i).count())
        .collect()
}

#[test]
fn two_consumers_split_six_partitions_and_read_exactly_once() {
    let broker = kip848_broker();
    broker.create_topic("kip848-split", 6, &[]);
    let a = consumer(&broker, "split", &[]);
    let b = consumer(&broker, "split", &[]);
    a.subscribe(&["kip848-split"]).expect("subscribe");
    b.subscribe(&["kip848-split"]).expect("subscribe");
    let mut seen = Seen::new();
    wait_split(&[&a, &b], &mut seen, &[3, 3], 6);
    produce(&broker, "kip848-split", 6, 0, 10_000);
    let read_all = poll_until(&[&a, &b], &mut seen, CONVERGE, |_, s| s.len() >= 10_000);
    assert!(read_all, "read {} of 10000", seen.len());
    // A moment more: nothing is read twice late.
    poll_until(&[&a, &b], &mut seen, Duration::from_millis(500), |_, _| {
        false
    });
    let counts = assert_exactly_once(&seen, 10_000, 2);
    assert!(
        counts.iter().all(|c| *c > 0),
        "both consumers read: {counts:?}"
    );
    // Each consumer read only its own partitions.
    let (pa, pb) = (assigned(&a), assigned(&b));
    for (i, p, _) in &seen {
        let mine = if *i == 0 { &pa } else { &pb };
        assert!(mine.contains(p), "consumer {i} read partition {p}");
    }
}

#[test]
fn survivor_takes_over_at_committed_offsets() {
    let broker = kip848_broker();
    broker.create_topic("kip848-takeover", 6, &[]);
    let a = consumer(&broker, "takeover", &[]);
    let b = consumer(&broker, "takeover", &[]);
    a.subscribe(&["kip848-takeover"]).expect("subscribe");
    b.subscribe(&["kip848-takeover"]).expect("subscribe");
    let mut seen = Seen::new();
    wait_split(&[&a, &b], &mut seen, &[3, 3], 6);
    produce(&broker, "kip848-takeover", 6, 0, 3_000);
    assert!(poll_until(&[&a, &b], &mut seen, CONVERGE, |_, s| s.len() >= 3_000));
    a.commit_consumer_state(CommitMode::Sync).expect("commit a");
    b.commit_consumer_state(CommitMode::Sync).expect("commit b");
    let b_partitions = assigned(&b);
    let committed: BTreeMap<i32, i64> = b
        .committed(Duration::from_secs(10))
        .expect("committed offsets")
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect();
    assert_eq!(
        committed.keys().copied().collect::<BTreeSet<_>>(),
        b_partitions,
        "b committed each of its partitions"
    );
    drop(b);
    produce(&broker, "kip848-takeover", 6, 3_000, 1_200);
    let mut after = Seen::new();
    let took_over = poll_until(&[&a], &mut after, CONVERGE, |cs, s| {
        assigned(cs[0]).len() == 6 && s.len() >= 1_200
    });
    assert!(
        took_over,
        "survivor holds {:?} and read {} of 1200",
        assigned(&a),
        after.len()
    );
    // The survivor starts each of b's partitions exactly at b's commit.
    for p in &b_partitions {
        let first = after.iter().filter(|s| s.1 == *p).map(|s| s.2).min();
        assert_eq!(
            first,
            Some(committed[p]),
            "partition {p} resumed at the commit"
        );
    }
    seen.extend(after);
    assert_exactly_once(&seen, 4_200, 1);
    // Nothing skipped: every partition read densely from 0 to its end.
    for p in 0..6 {
        let offsets: Vec<i64> = seen
            .iter()
            .filter(|s| s.1 == p)
            .map(|s| s.2)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(
            offsets,
            (0..offsets.len() as i64).collect::<Vec<_>>(),
            "partition {p}"
        );
    }
}

#[test]
fn range_assignor_gives_contiguous_ranges() {
    let broker = kip848_broker();
    broker.create_topic("kip848-range", 6, &[]);
    let extra = [("group.remote.assignor", "range")];
    let a = consumer(&broker, "range", &extra);
    let b = consumer(&broker, "range", &extra);
    a.subscribe(&["kip848-range"]).expect("subscribe");
    b.subscribe(&["kip848-range"]).expect("subscribe");
    let mut seen = Seen::new();
    wait_split(&[&a, &b], &mut seen, &[3, 3], 6);
    let mut ranges = [assigned(&a), assigned(&b)];
    ranges.sort();
    assert_eq!(ranges[0], BTreeSet::from([0, 1, 2]));
    assert_eq!(ranges[1], BTreeSet::from([3, 4, 5]));
    let described = describe(&mut Conn::connect(broker.addr()), "range", 1);
    assert_eq!(described.groups[0].assignor_name.as_str(), "range");
}

#[test]
fn committed_offset_and_group_epochs_survive_a_restart() {
    let mut broker = kip848_broker();
    broker.create_topic("kip848-restart", 1, &[]);
    produce(&broker, "kip848-restart", 1, 0, 100);
    let c = consumer(&broker, "restart", &[]);
    c.subscribe(&["kip848-restart"]).expect("subscribe");
    let mut seen = Seen::new();
    assert!(poll_until(&[&c], &mut seen, CONVERGE, |_, s| s.len() >= 100));
    let mut commit = TopicPartitionList::new();
    commit
        .add_partition_offset("kip848-restart", 0, Offset::Offset(60))
        .expect("add partition");
    c.commit(&commit, CommitMode::Sync).expect("commit 60");
    drop(c);
    // A raw member stays in the group across the restart.
    let mut conn = Conn::connect(broker.addr());
    find_coordinator(&mut conn, "restart");
    let joined = heartbeat(
        &mut conn,
        "restart",
        "stayer",
        0,
        Some(&["kip848-restart"]),
        Some(vec![]),
    );
    assert_eq!(joined.error_code, 0, "{:?}", joined.error_message);
    let before = describe(&mut conn, "restart", 1).groups.remove(0);
    broker.restart();
    let mut conn = Conn::connect(broker.addr());
    let after = wait_for_coordinator(&mut conn, "restart");
    assert_eq!(after.group_epoch, before.group_epoch, "group epoch rebuilt");
    assert_eq!(
        after.assignment_epoch, before.assignment_epoch,
        "assignment epoch rebuilt"
    );
    assert_eq!(after.members.len(), 1);
    assert_eq!(
        after.members[0].member_epoch,
        before.members[0].member_epoch
    );
    assert_eq!(after.members[0].assignment, before.members[0].assignment);
    // The member goes on at its epoch: nothing was lost.
    let beat = heartbeat(
        &mut conn,
        "restart",
        "stayer",
        joined.member_epoch,
        None,
        None,
    );
    assert_eq!(beat.error_code, 0, "{:?}", beat.error_message);
    assert_eq!(beat.member_epoch, joined.member_epoch);
    let leave = heartbeat(&mut conn, "restart", "stayer", -1, None, None);
    assert_eq!(leave.error_code, 0);
    // A new consumer in the group starts at the commit.
    let c = consumer(&broker, "restart", &[]);
    c.subscribe(&["kip848-restart"]).expect("subscribe");
    let mut seen = Seen::new();
    assert!(poll_until(&[&c], &mut seen, CONVERGE, |_, s| s.len() >= 40));
    assert_eq!(
        seen.iter().map(|s| s.2).min(),
        Some(60),
        "starts at the commit"
    );
    assert_eq!(seen.len(), 40);
}

#[test]
fn partitions_move_only_after_revocation() {
    let broker = kip848_broker();
    broker.create_topic("kip848-steps", 4, &[]);
    let mut conn = Conn::connect(broker.addr());
    find_coordinator(&mut conn, "steps");
    let topic = topic_id(&mut conn, "kip848-steps");
    let a = heartbeat(
        &mut conn,
        "steps",
        "a",
        0,
        Some(&["kip848-steps"]),
        Some(vec![]),
    );
    assert_eq!(a.error_code, 0, "{:?}", a.error_message);
    assert_eq!(partitions_of(&a), BTreeSet::from([0, 1, 2, 3]));
    let epoch_a = a.member_epoch;
    // b joins: the target splits 2/2, but a still owns everything.
    let b = heartbeat(
        &mut conn,
        "steps",
        "b",
        0,
        Some(&["kip848-steps"]),
        Some(vec![]),
    );
    assert_eq!(b.error_code, 0);
    assert!(partitions_of(&b).is_empty(), "nothing is free yet: {b:?}");
    assert!(b.member_epoch > epoch_a, "b is at the new target epoch");
    // a is asked to revoke two partitions and stays at its epoch.
    let owned_all = vec![(topic, vec![0, 1, 2, 3])];
    let a2 = heartbeat(&mut conn, "steps", "a", epoch_a, None, Some(owned_all));
    assert_eq!(a2.error_code, 0);
    assert_eq!(a2.member_epoch, epoch_a, "revoke before moving on");
    let kept: Vec<i32> = partitions_of(&a2).into_iter().collect();
    assert_eq!(kept.len(), 2);
    let state = describe(&mut conn, "steps", 1).groups.remove(0);
    assert_eq!(state.group_state.as_str(), "Reconciling");
    // b still gets nothing while a has not acknowledged.
    let b2 = heartbeat(&mut conn, "steps", "b", b.member_epoch, None, None);
    assert!(partitions_of(&b2).is_empty() && b2.assignment.is_none());
    // a acknowledges (reports only what it kept): it reaches the epoch...
    let a3 = heartbeat(
        &mut conn,
        "steps",
        "a",
        epoch_a,
        None,
        Some(vec![(topic, kept.clone())]),
    );
    assert_eq!(a3.member_epoch, b.member_epoch);
    // ...and b receives the released partitions.
    let b3 = heartbeat(&mut conn, "steps", "b", b.member_epoch, None, None);
    let released: BTreeSet<i32> = (0..4).filter(|p| !kept.contains(p)).collect();
    assert_eq!(partitions_of(&b3), released);
    let state = describe(&mut conn, "steps", 1).groups.remove(0);
    assert_eq!(state.group_state.as_str(), "Stable");
    // New partitions reach the members with a new epoch.
    let created: CreatePartitionsResponse = conn.call(
        3,
        &CreatePartitionsRequest::default()
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic_name("kip848-steps"))
                .with_count(6)])
            .with_timeout_ms(10_000),
    );
    assert_eq!(created.results[0].error_code, 0);
    let a4 = heartbeat(&mut conn, "steps", "a", a3.member_epoch, None, None);
    assert!(
        a4.member_epoch > a3.member_epoch,
        "partition count change bumps the epoch"
    );
    let b4 = heartbeat(&mut conn, "steps", "b", b3.member_epoch, None, None);
    let all: BTreeSet<i32> = partitions_of(&a4)
        .union(&partitions_of(&b4))
        .copied()
        .collect();
    assert_eq!(all, (0..6).collect(), "a {a4:?} b {b4:?}");
}

#[test]
fn describe_list_and_cli_show_consumer_groups() {
    let broker = kip848_broker();
    broker.create_topic("kip848-describe", 2, &[]);
    let mut conn = Conn::connect(broker.addr());
    find_coordinator(&mut conn, "described");
    let joined = heartbeat(
        &mut conn,
        "described",
        "member-1",
        0,
        Some(&["kip848-describe"]),
        Some(vec![]),
    );
    assert_eq!(joined.error_code, 0);
    for version in 0..=1 {
        let response = describe(&mut conn, "described", version);
        let g = &response.groups[0];
        assert_eq!(g.error_code, 0, "v{version}");
        assert_eq!(g.group_state.as_str(), "Stable");
        assert_eq!(g.assignor_name.as_str(), "uniform");
        assert!(g.group_epoch >= 1);
        assert_eq!(g.assignment_epoch, g.group_epoch);
        let m = &g.members[0];
        assert_eq!(m.member_id.as_str(), "member-1");
        assert_eq!(m.member_epoch, joined.member_epoch);
        assert_eq!(m.client_host.as_str(), "/127.0.0.1");
        assert_eq!(m.subscribed_topic_names[0].0.as_str(), "kip848-describe");
        let t = &m.assignment.topic_partitions[0];
        assert_eq!(t.topic_name.0.as_str(), "kip848-describe");
        assert_eq!(t.partitions, vec![0, 1]);
        assert_eq!(m.target_assignment, m.assignment);
        if version >= 1 {
            assert_eq!(m.member_type, 1, "a consumer protocol member");
        }
    }
    // Unknown and classic groups are not consumer groups.
    assert_eq!(
        describe(&mut conn, "nobody", 0).groups[0].error_code,
        GROUP_ID_NOT_FOUND
    );
    // ListGroups v5 filters by type.
    for (types, listed) in [(vec!["consumer"], true), (vec!["classic"], false)] {
        let response: ListGroupsResponse = conn.call(
            5,
            &ListGroupsRequest::default()
                .with_types_filter(types.iter().map(|t| str_bytes(t)).collect()),
        );
        let found = response
            .groups
            .iter()
            .find(|g| g.group_id.0.as_str() == "described");
        assert_eq!(found.is_some(), listed, "{types:?}");
        if let Some(g) = found {
            assert_eq!(g.group_type.as_str(), "consumer");
            assert_eq!(g.protocol_type.as_str(), "consumer");
            assert_eq!(g.group_state.as_str(), "Stable");
        }
    }
    // DescribeGroups (classic) calls it Dead, as Kafka does below v6.
    let classic: DescribeGroupsResponse = conn.call(
        5,
        &DescribeGroupsRequest::default().with_groups(vec![GroupId(str_bytes("described"))]),
    );
    assert_eq!(classic.groups[0].group_state.as_str(), "Dead");
    // A commit at the member's epoch; the CLI shows it with the owner.
    let committed = commit(
        &mut conn,
        "described",
        "member-1",
        joined.member_epoch,
        "kip848-describe",
        0,
        5,
    );
    assert_eq!(committed, 0);
    produce(&broker, "kip848-describe", 2, 0, 20);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_corelog"))
        .args(["consumer-groups", "--bootstrap-server", &broker.bootstrap()])
        .args(["--describe", "--group", "described"])
        .output()
        .expect("run corelog consumer-groups");
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let row: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("described") && l.split_whitespace().nth(2) == Some("0"))
        .unwrap_or_else(|| panic!("no row for partition 0 in:\n{out}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        &row[1..7],
        ["kip848-describe", "0", "5", "10", "5", "member-1"],
        "{out}"
    );
    assert_eq!(row[7], "/127.0.0.1");
    assert!(
        out.lines()
            .any(|l| l.contains(" 1 ") && l.contains("member-1")),
        "{out}"
    );
}

#[test]
fn bad_heartbeats_get_kafka_error_codes() {
    let mut broker = kip848_broker();
    broker.create_topic("kip848-bad", 2, &[]);
    let mut conn = Conn::connect(broker.addr());
    find_coordinator(&mut conn, "bad");
    let topics = Some(&["kip848-bad"][..]);
    // A heartbeat for a group that does not exist.
    assert_eq!(
        heartbeat(&mut conn, "bad", "x", 3, None, None).error_code,
        GROUP_ID_NOT_FOUND
    );
    let joined = heartbeat(&mut conn, "bad", "m", 0, topics, Some(vec![]));
    assert_eq!(joined.error_code, 0);
    let epoch = joined.member_epoch;
    // Unknown member, and epochs the coordinator did not give.
    assert_eq!(
        heartbeat(&mut conn, "bad", "ghost", 1, None, None).error_code,
        UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        heartbeat(&mut conn, "bad", "m", epoch + 5, None, None).error_code,
        FENCED_MEMBER_EPOCH
    );
    // Bad first heartbeats.
    let first = |member: &str| {
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(str_bytes("bad")))
            .with_member_id(str_bytes(member))
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names(Some(vec![topic_name("kip848-bad")]))
            .with_topic_partitions(Some(vec![]))
    };
    let cases = [
        (first("n").with_rebalance_timeout_ms(-1), INVALID_REQUEST),
        (first("n").with_topic_partitions(None), INVALID_REQUEST),
        (
            first("n").with_subscribed_topic_names(None),
            INVALID_REQUEST,
        ),
        (first(""), INVALID_REQUEST),
        (first("n").with_member_epoch(-3), INVALID_REQUEST),
        (
            first("n").with_server_assignor(Some(str_bytes("sticky"))),
            UNSUPPORTED_ASSIGNOR,
        ),
        (
            first("n").with_subscribed_topic_regex(Some(str_bytes("kip848-("))),
            INVALID_REGULAR_EXPRESSION,
        ),
    ];
    for (request, expected) in cases {
        let response: ConsumerGroupHeartbeatResponse = conn.call(1, &request);
        assert_eq!(response.error_code, expected, "{request:?}");
        assert!(response.error_message.is_some());
    }
    // A static member's instance id is taken until it leaves with -2.
    let static_join = |conn: &mut Conn, member: &str| -> ConsumerGroupHeartbeatResponse {
        conn.call(
            1,
            &first(member).with_instance_id(Some(str_bytes("instance-1"))),
        )
    };
    let holder = static_join(&mut conn, "s1");
    assert_eq!(holder.error_code, 0);
    assert_eq!(
        static_join(&mut conn, "s2").error_code,
        UNRELEASED_INSTANCE_ID
    );
    let left: ConsumerGroupHeartbeatResponse = conn.call(
        1,
        &ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(str_bytes("bad")))
            .with_member_id(str_bytes("s1"))
            .with_member_epoch(-2)
            .with_instance_id(Some(str_bytes("instance-1"))),
    );
    assert_eq!((left.error_code, left.member_epoch), (0, -2));
    let replaced = static_join(&mut conn, "s2");
    assert_eq!(replaced.error_code, 0, "{:?}", replaced.error_message);
    assert_eq!(
        partitions_of(&replaced),
        partitions_of(&holder),
        "takes over the assignment"
    );
    // OffsetCommit v9 checks the member epoch.
    let current = heartbeat(&mut conn, "bad", "m", epoch, None, None).member_epoch;
    assert_eq!(
        commit(&mut conn, "bad", "m", current + 1, "kip848-bad", 0, 1),
        STALE_MEMBER_EPOCH
    );
    assert_eq!(
        commit(&mut conn, "bad", "ghost", current, "kip848-bad", 0, 1),
        UNKNOWN_MEMBER_ID
    );
    // The classic protocol cannot join a consumer group with members...
    let classic: JoinGroupResponse = conn.call(
        5,
        &JoinGroupRequest::default()
            .with_group_id(GroupId(str_bytes("bad")))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(str_bytes("classic-1"))
            .with_protocol_type(str_bytes("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default().with_name(str_bytes("range"))
            ]),
    );
    assert_eq!(classic.error_code, INCONSISTENT_GROUP_PROTOCOL);
    // ...and a consumer heartbeat cannot join a classic group with members.
    let classic_group: JoinGroupResponse = conn.call(
        3,
        &JoinGroupRequest::default()
            .with_group_id(GroupId(str_bytes("classic-only")))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_protocol_type(str_bytes("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default().with_name(str_bytes("range"))
            ]),
    );
    assert_eq!(classic_group.error_code, 0);
    assert_eq!(
        heartbeat(&mut conn, "classic-only", "k", 0, topics, Some(vec![])).error_code,
        GROUP_ID_NOT_FOUND
    );
    // A member that left is unknown afterwards.
    assert_eq!(
        heartbeat(&mut conn, "bad", "m", -1, None, None).error_code,
        0
    );
    assert_eq!(
        heartbeat(&mut conn, "bad", "m", current, None, None).error_code,
        UNKNOWN_MEMBER_ID
    );
    broker.assert_running();
}

fn find_coordinator(conn: &mut Conn, group: &str) {
    let response: FindCoordinatorResponse = conn.call(
        3,
        &FindCoordinatorRequest::default().with_key(str_bytes(group)),
    );
    assert_eq!(response.error_code, 0, "FindCoordinator");
}

/// After a restart the coordinator answers once it replayed its groups.
fn wait_for_coordinator(
    conn: &mut Conn,
    group: &str,
) -> kafka_protocol::messages::consumer_group_describe_response::DescribedGroup {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut response = describe(conn, group, 1);
        if response.groups[0].error_code == 0 || Instant::now() > deadline {
            let g = response.groups.remove(0);
            assert_eq!(g.error_code, 0, "ConsumerGroupDescribe after restart");
            return g;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn topic_id(conn: &mut Conn, topic: &str) -> Uuid {
    let response: MetadataResponse = conn.call(
        12,
        &MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name(topic)))
        ])),
    );
    response.topics[0].topic_id
}

/// One ConsumerGroupHeartbeat v1. Epoch 0 joins (with a rebalance timeout).
fn heartbeat(
    conn: &mut Conn,
    group: &str,
    member: &str,
    epoch: i32,
    topics: Option<&[&str]>,
    owned: Option<Vec<(Uuid, Vec<i32>)>>,
) -> ConsumerGroupHeartbeatResponse {
    let request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_member_id(str_bytes(member))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(if epoch == 0 { 30_000 } else { -1 })
        .with_subscribed_topic_names(topics.map(|ts| ts.iter().map(|t| topic_name(t)).collect()))
        .with_topic_partitions(owned.map(|o| {
            o.into_iter()
                .map(|(id, ps)| {
                    TopicPartitions::default()
                        .with_topic_id(id)
                        .with_partitions(ps)
                })
                .collect()
        }));
    conn.call(1, &request)
}

fn partitions_of(r: &ConsumerGroupHeartbeatResponse) -> BTreeSet<i32> {
    r.assignment
        .iter()
        .flat_map(|a| a.topic_partitions.iter())
        .flat_map(|t| t.partitions.iter().copied())
        .collect()
}

fn describe(conn: &mut Conn, group: &str, version: i16) -> ConsumerGroupDescribeResponse {
    conn.call(
        version,
        &ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(str_bytes(group))]),
    )
}

/// OffsetCommit v9 from a KIP-848 member; the partition's error code.
fn commit(
    conn: &mut Conn,
    group: &str,
    member: &str,
    epoch: i32,
    topic: &str,
    partition: i32,
    offset: i64,
) -> i16 {
    let response: OffsetCommitResponse = conn.call(
        9,
        &OffsetCommitRequest::default()
            .with_group_id(GroupId(str_bytes(group)))
            .with_member_id(str_bytes(member))
            .with_generation_id_or_member_epoch(epoch)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(partition)
                    .with_committed_offset(offset)])]),
    );
    response.topics[0].partitions[0].error_code
}
