//! Incremental fetch sessions (KIP-227) over raw Fetch frames: a session
//! answers only the partitions that changed, takes partitions in and
//! forgets them, refuses wrong epochs and unknown ids with Kafka's codes,
//! closes on epoch -1, answers without a session when the cache is full,
//! and does not survive a restart.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::raw::{code, decode_records, now_ms, simple_batch, topic_name, Conn};
use common::{Broker, BrokerOptions};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse};
use uuid::Uuid;

const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
const FETCH_SESSION_TOPIC_ID_ERROR: i16 = 106;

/// Fetch by topic name: the last version without topic ids.
const BY_NAME: i16 = 12;

/// How a test names a topic in a request: by name (v12) or id (v13+).
#[derive(Clone, Copy)]
enum Topic<'a> {
    Name(&'a str),
    Id(Uuid),
}

/// One Fetch with session fields: `partitions` are (topic, partition,
/// fetch offset); `forgotten` are (topic, partition).
fn fetch(
    session_id: i32,
    epoch: i32,
    partitions: &[(Topic, i32, i64)],
    forgotten: &[(Topic, i32)],
    max_wait_ms: i32,
) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for &(topic, partition, offset) in partitions {
        let p = FetchPartition::default()
            .with_partition(partition)
            .with_fetch_offset(offset)
            .with_log_start_offset(-1)
            .with_partition_max_bytes(1 << 20);
        let t = match topic {
            Topic::Name(name) => FetchTopic::default().with_topic(topic_name(name)),
            Topic::Id(id) => FetchTopic::default().with_topic_id(id),
        };
        match topics.last_mut() {
            Some(last) if last.topic == t.topic && last.topic_id == t.topic_id => {
                last.partitions.push(p)
            }
            _ => topics.push(t.with_partitions(vec![p])),
        }
    }
    let forgotten = forgotten
        .iter()
        .map(|&(topic, partition)| {
            let t = match topic {
                Topic::Name(name) => ForgottenTopic::default().with_topic(topic_name(name)),
                Topic::Id(id) => ForgottenTopic::default().with_topic_id(id),
            };
            t.with_partitions(vec![partition])
        })
        .collect();
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(16 << 20)
        .with_session_id(session_id)
        .with_session_epoch(epoch)
        .with_topics(topics)
        .with_forgotten_topics_data(forgotten)
}

/// (partition, high watermark, records) of every partition in a response,
/// in response order.
fn answered(response: &FetchResponse) -> Vec<(i32, i64, usize)> {
    response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| {
            assert_eq!(p.error_code, code::NONE, "partition {}", p.partition_index);
            let records = decode_records(p.records.clone().unwrap_or_default());
            (p.partition_index, p.high_watermark, records.len())
        })
        .collect()
}

fn produce(conn: &mut Conn, version: i16, topic: &str, partition: i32, count: usize) {
    let batch = simple_batch("s", count, 10, now_ms());
    let (error, _) = conn.produce(version, topic, partition, batch);
    assert_eq!(error, code::NONE, "produce to {topic}-{partition}");
}

fn all(topic: &str, partitions: i32) -> Vec<(Topic<'_>, i32, i64)> {
    (0..partitions)
        .map(|p| (Topic::Name(topic), p, 0))
        .collect()
}

#[test]
fn an_incremental_fetch_answers_only_what_changed() {
    // Two shards: the session's partitions live on both, whichever shard
    // holds the connection.
    let broker = Broker::start_with(BrokerOptions::default().shards(2));
    broker.create_topic("eight", 8, &[]);
    let mut conn = Conn::connect(broker.addr());
    let produce_version = conn.api_versions().pick(ApiKey::Produce, 9);

    let full: FetchResponse = conn.call(BY_NAME, &fetch(0, 0, &all("eight", 8), &[], 0));
    assert_eq!(full.error_code, code::NONE);
    let id = full.session_id;
    assert_ne!(id, 0, "a full fetch at epoch 0 opens a session");
    assert_eq!(
        answered(&full).len(),
        8,
        "a full fetch answers every partition"
    );

    let mut producer = Conn::connect(broker.addr());
    produce(&mut producer, produce_version, "eight", 2, 3);
    produce(&mut producer, produce_version, "eight", 5, 4);
    let next: FetchResponse = conn.call(BY_NAME, &fetch(id, 1, &[], &[], 0));
    assert_eq!((next.error_code, next.session_id), (code::NONE, id));
    let mut got = answered(&next);
    got.sort();
    assert_eq!(
        got,
        [(2, 3, 3), (5, 4, 4)],
        "only the partitions produced to"
    );

    // The client moves its offsets on; nothing new: an empty answer after
    // the wait.
    let moved = [(Topic::Name("eight"), 2, 3), (Topic::Name("eight"), 5, 4)];
    let started = Instant::now();
    let quiet: FetchResponse = conn.call(BY_NAME, &fetch(id, 2, &moved, &[], 300));
    assert_eq!((quiet.error_code, quiet.session_id), (code::NONE, id));
    assert!(answered(&quiet).is_empty(), "{:?}", answered(&quiet));
    assert!(started.elapsed() >= Duration::from_millis(250));

    // A long poll over the session wakes on a partition the request did
    // not name.
    let waiter = thread::spawn(move || {
        let mut conn = conn;
        conn.set_timeout(Duration::from_secs(20));
        let started = Instant::now();
        let response: FetchResponse = conn.call(BY_NAME, &fetch(id, 3, &[], &[], 10_000));
        (started.elapsed(), response)
    });
    thread::sleep(Duration::from_millis(500));
    produce(&mut producer, produce_version, "eight", 7, 1);
    let (elapsed, woken) = waiter.join().expect("fetch thread");
    assert_eq!(answered(&woken), [(7, 1, 1)]);
    assert!(
        elapsed < Duration::from_secs(5),
        "woken after {elapsed:?}, not by the produce"
    );
}

#[test]
fn partitions_join_and_leave_a_session() {
    let broker = Broker::start();
    broker.create_topic("joins", 3, &[]);
    let mut conn = Conn::connect(broker.addr());
    let produce_version = conn.api_versions().pick(ApiKey::Produce, 9);
    let first = [(Topic::Name("joins"), 0, 0), (Topic::Name("joins"), 1, 0)];
    let full: FetchResponse = conn.call(BY_NAME, &fetch(0, 0, &first, &[], 0));
    let id = full.session_id;
    assert_ne!(id, 0);

    // Partition 2 joins and partition 0 leaves: the newcomer is answered
    // the first time whatever it holds.
    let join = [(Topic::Name("joins"), 2, 0)];
    let leave = [(Topic::Name("joins"), 0)];
    let next: FetchResponse = conn.call(BY_NAME, &fetch(id, 1, &join, &leave, 0));
    assert_eq!(answered(&next), [(2, 0, 0)]);

    let mut producer = Conn::connect(broker.addr());
    for partition in 0..3 {
        produce(&mut producer, produce_version, "joins", partition, 2);
    }
    let next: FetchResponse = conn.call(BY_NAME, &fetch(id, 2, &[], &[], 0));
    let mut got = answered(&next);
    got.sort();
    assert_eq!(got, [(1, 2, 2), (2, 2, 2)], "partition 0 was forgotten");

    // Forgetting the rest closes the session: the answer names none.
    let rest = [(Topic::Name("joins"), 1), (Topic::Name("joins"), 2)];
    let last: FetchResponse = conn.call(BY_NAME, &fetch(id, 3, &[], &rest, 0));
    assert_eq!((last.error_code, last.session_id), (code::NONE, 0));
    let gone: FetchResponse = conn.call(BY_NAME, &fetch(id, 4, &[], &[], 0));
    assert_eq!(gone.error_code, FETCH_SESSION_ID_NOT_FOUND);
}

#[test]
fn sessions_by_topic_id_forget_by_id_and_refuse_names() {
    let broker = Broker::start();
    broker.create_topic("by-id", 2, &[]);
    let mut conn = Conn::connect(broker.addr());
    let versions = conn.api_versions();
    let version = versions.pick(ApiKey::Fetch, 16);
    assert!(version >= 13, "Fetch v{version} has no topic ids");
    let metadata = conn.metadata(versions.pick(ApiKey::Metadata, 12), &["by-id"]);
    let topic = Topic::Id(metadata.topics[0].topic_id);
    let both = [(topic, 0, 0), (topic, 1, 0)];
    let full: FetchResponse = conn.call(version, &fetch(0, 0, &both, &[], 0));
    let id = full.session_id;
    assert_ne!(id, 0);
    assert_eq!(answered(&full).len(), 2);

    let mut producer = Conn::connect(broker.addr());
    let produce_version = versions.pick(ApiKey::Produce, 9);
    produce(&mut producer, produce_version, "by-id", 0, 1);
    produce(&mut producer, produce_version, "by-id", 1, 1);
    let next: FetchResponse = conn.call(version, &fetch(id, 1, &[], &[(topic, 0)], 0));
    assert_eq!(
        answered(&next),
        [(1, 1, 1)],
        "partition 0 was forgotten by id"
    );
    assert_eq!(next.responses[0].topic_id, metadata.topics[0].topic_id);

    // A session made by topic id cannot be continued by name.
    let by_name: FetchResponse = conn.call(BY_NAME, &fetch(id, 2, &[], &[], 0));
    assert_eq!(by_name.error_code, FETCH_SESSION_TOPIC_ID_ERROR);
    assert_eq!(by_name.session_id, 0);
    assert!(by_name.responses.is_empty());
}

#[test]
fn wrong_epochs_and_unknown_ids_are_refused_and_epoch_minus_one_closes() {
    let broker = Broker::start();
    broker.create_topic("errors", 2, &[]);
    let mut conn = Conn::connect(broker.addr());
    let full: FetchResponse = conn.call(BY_NAME, &fetch(0, 0, &all("errors", 2), &[], 0));
    let id = full.session_id;
    assert_ne!(id, 0);

    for epoch in [2, 7] {
        let wrong: FetchResponse = conn.call(BY_NAME, &fetch(id, epoch, &[], &[], 0));
        assert_eq!(
            wrong.error_code, INVALID_FETCH_SESSION_EPOCH,
            "epoch {epoch}"
        );
        assert_eq!(wrong.session_id, 0);
        assert!(wrong.responses.is_empty());
    }
    let unknown: FetchResponse = conn.call(BY_NAME, &fetch(id ^ 1, 1, &[], &[], 0));
    assert_eq!(unknown.error_code, FETCH_SESSION_ID_NOT_FOUND);
    assert!(unknown.responses.is_empty());
    // The refusals left the session as it was.
    let right: FetchResponse = conn.call(BY_NAME, &fetch(id, 1, &[], &[], 0));
    assert_eq!((right.error_code, right.session_id), (code::NONE, id));

    // Epoch -1 with the session's id: closed, answered without a session.
    let one = [(Topic::Name("errors"), 1, 0)];
    let close: FetchResponse = conn.call(BY_NAME, &fetch(id, -1, &one, &[], 0));
    assert_eq!((close.error_code, close.session_id), (code::NONE, 0));
    assert_eq!(answered(&close), [(1, 0, 0)]);
    let closed: FetchResponse = conn.call(BY_NAME, &fetch(id, 2, &[], &[], 0));
    assert_eq!(closed.error_code, FETCH_SESSION_ID_NOT_FOUND);
}

#[test]
fn a_full_cache_answers_a_full_fetch_without_a_session() {
    let mut broker = Broker::start_with(
        BrokerOptions::default().override_config("max.incremental.fetch.session.cache.slots", "1"),
    );
    broker.create_topic("full", 4, &[]);
    let mut producer = Conn::connect(broker.addr());
    let produce_version = producer.api_versions().pick(ApiKey::Produce, 9);
    for partition in 0..4 {
        produce(&mut producer, produce_version, "full", partition, 2);
    }
    let mut first = Conn::connect(broker.addr());
    let opened: FetchResponse = first.call(BY_NAME, &fetch(0, 0, &all("full", 4), &[], 0));
    assert_ne!(opened.session_id, 0);

    let mut second = Conn::connect(broker.addr());
    let full: FetchResponse = second.call(BY_NAME, &fetch(0, 0, &all("full", 4), &[], 0));
    assert_eq!((full.error_code, full.session_id), (code::NONE, 0));
    assert_eq!(
        answered(&full),
        [(0, 2, 2), (1, 2, 2), (2, 2, 2), (3, 2, 2)],
        "every partition with its records"
    );
    // The first client's session lives on.
    let next: FetchResponse = first.call(BY_NAME, &fetch(opened.session_id, 1, &[], &[], 0));
    assert_eq!(
        (next.error_code, next.session_id),
        (code::NONE, opened.session_id)
    );
    // The shard reports its sessions at shutdown.
    let (_, out) = broker.terminate();
    assert!(
        out.contains("fetch_sessions=1 fetch_session_partitions=4 fetch_session_evictions=0"),
        "{out}"
    );
}

#[test]
fn no_session_survives_a_restart() {
    let mut broker = Broker::start();
    broker.create_topic("restart", 1, &[]);
    let mut conn = Conn::connect(broker.addr());
    let full: FetchResponse = conn.call(BY_NAME, &fetch(0, 0, &all("restart", 1), &[], 0));
    let id = full.session_id;
    assert_ne!(id, 0);
    broker.restart();
    let mut conn = Conn::connect(broker.addr());
    let after: FetchResponse = conn.call(BY_NAME, &fetch(id, 1, &[], &[], 0));
    assert_eq!(after.error_code, FETCH_SESSION_ID_NOT_FOUND);
    assert_eq!(after.session_id, 0);
    // The client starts over with a full fetch and gets a new session.
    let again: FetchResponse = conn.call(BY_NAME, &fetch(0, 0, &all("restart", 1), &[], 0));
    assert_eq!(again.error_code, code::NONE);
    assert_ne!(again.session_id, 0);
}

#[test]
fn a_session_is_unknown_on_another_shard() {
    // Each shard hands out ids from its half of the id space, which tells
    // the test which shard accepted a connection.
    let broker = Broker::start_with(BrokerOptions::default().shards(2));
    broker.create_topic("shards", 2, &[]);
    let half = i32::MAX / 2;
    let open = |conn: &mut Conn| -> i32 {
        let full: FetchResponse = conn.call(BY_NAME, &fetch(0, 0, &all("shards", 2), &[], 0));
        assert_ne!(full.session_id, 0);
        full.session_id
    };
    let mut first = Conn::connect(broker.addr());
    let id = open(&mut first);
    // The kernel spreads connections between the shards by their ports:
    // 64 tries all landing on one shard would be a 2^-64 event.
    for _ in 0..64 {
        let mut other = Conn::connect(broker.addr());
        let own = open(&mut other);
        if (own <= half) == (id <= half) {
            continue;
        }
        let elsewhere: FetchResponse = other.call(BY_NAME, &fetch(id, 1, &[], &[], 0));
        assert_eq!(elsewhere.error_code, FETCH_SESSION_ID_NOT_FOUND);
        // On its own shard the session is fine.
        let home: FetchResponse = first.call(BY_NAME, &fetch(id, 1, &[], &[], 0));
        assert_eq!((home.error_code, home.session_id), (code::NONE, id));
        return;
    }
    panic!("64 connections all landed on the shard of session {id}");
}
