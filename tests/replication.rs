//! Replicated partitions on a cluster of corelog processes: acknowledged
//! messages survive leader kills, failover is timed, killed brokers rejoin
//! the ISR and get their leaderships back by preferred election, consumer
//! groups keep their committed offsets across a coordinator failure,
//! min.insync.replicas refuses acks=all when too few copies are in sync, a
//! returning leader cuts the tail it wrote alone, and a rolling restart by
//! SIGTERM hands leaderships over (controlled shutdown) without errors.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::cluster::{create_topic, eventually, Cluster};
use common::load::{
    create_durable_topic, durable_producer, flush_without_failures, fully_in_sync, read_all,
    send_numbered, SteadyLoad,
};
use common::raw::Conn;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ElectLeadersRequest, ElectLeadersResponse, FindCoordinatorRequest, FindCoordinatorResponse,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{Message, TopicPartitionList};

fn elect_preferred(cluster: &Cluster, i: usize) -> ElectLeadersResponse {
    let mut conn = Conn::connect(cluster.addr(i));
    let request = ElectLeadersRequest::default()
        .with_election_type(0)
        .with_topic_partitions(None)
        .with_timeout_ms(30_000);
    conn.call(1, &request)
}

#[test]
fn acknowledged_messages_survive_leader_kills_and_leaders_come_back() {
    let mut cluster = Cluster::start(3);
    let topic = "durable";
    let partitions = 3;
    create_topic(&cluster.bootstrap(0), topic, partitions, 3, &[]).expect("create");
    eventually("all replicas in sync", Duration::from_secs(30), || {
        fully_in_sync(&cluster, topic, 3)
    });

    let total: u64 = 50_000;
    let producer = Arc::new(durable_producer(&cluster.bootstrap_all()));
    let sending = Arc::new(AtomicBool::new(true));
    let sender = {
        let producer = producer.clone();
        let sending = sending.clone();
        thread::spawn(move || {
            // About 2,500 messages a second, round robin over the partitions,
            // so the kills below land in the middle of the stream.
            let start = Instant::now();
            for n in 0..total {
                send_numbered(&producer, topic, partitions, n);
                let due = start + Duration::from_micros(n * 400);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    thread::sleep(wait);
                }
            }
            sending.store(false, Ordering::SeqCst);
        })
    };

    let mut failovers = Vec::new();
    for partition in 0..partitions {
        thread::sleep(Duration::from_secs(2));
        let leader = cluster.partitions_from_any(topic)[partition as usize].leader;
        let victim = cluster.index_of(leader);
        cluster.kill9(victim);
        let killed_at = Instant::now();
        // Produce to that partition succeeds again once a message sent after
        // the kill is acknowledged.
        let mut failover = None;
        eventually(
            "produce to the partition succeeds again",
            Duration::from_secs(30),
            || {
                failover = producer
                    .context()
                    .acked
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|(p, _, at)| *p == partition && *at > killed_at)
                    .map(|(_, _, at)| *at - killed_at)
                    .nth(50);
                failover.is_some()
            },
        );
        let failover = failover.unwrap();
        println!(
            "failover of partition {partition} (broker {leader} killed): produce acknowledged again after {failover:?}"
        );
        failovers.push(failover);
        cluster.spawn(victim);
        cluster.wait_ready(victim);
        eventually(
            "the restarted broker rejoins every ISR",
            Duration::from_secs(60),
            || fully_in_sync(&cluster, topic, 3),
        );
    }
    sender.join().unwrap();
    assert!(!sending.load(Ordering::SeqCst));
    flush_without_failures(&producer, Duration::from_secs(120));
    for f in &failovers {
        assert!(
            *f < Duration::from_secs(10),
            "failover took {f:?} (limit 10 s)"
        );
    }

    // Preferred-leader election gives every partition back to its first replica.
    let response = elect_preferred(&cluster, 0);
    assert_eq!(response.error_code, 0, "{response:?}");
    eventually(
        "preferred replicas lead again",
        Duration::from_secs(20),
        || {
            cluster
                .partitions(1, topic)
                .iter()
                .all(|p| p.leader == p.replicas[0] && p.isr.len() == 3)
        },
    );
    let leaders: HashSet<i32> = cluster
        .partitions(2, topic)
        .iter()
        .map(|p| p.leader)
        .collect();
    assert_eq!(leaders.len(), 3, "leaders spread again: {leaders:?}");

    // Every acknowledged message is there exactly once, in order per partition.
    let acked: HashSet<(i32, u64)> = producer
        .context()
        .acked
        .lock()
        .unwrap()
        .iter()
        .map(|(p, s, _)| (*p, *s))
        .collect();
    assert_eq!(acked.len() as u64, total);
    let read = read_all(&cluster.bootstrap_all(), topic, partitions, total as usize);
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    let mut seen = HashSet::new();
    for (partition, value) in &read {
        let (p, seq) = value.split_once(':').expect("p:seq");
        let (p, seq): (i32, i64) = (p.parse().unwrap(), seq.parse().unwrap());
        assert_eq!(p, *partition, "message in its partition");
        assert!(seen.insert((p, seq)), "{p}:{seq} read twice");
        let prev = last.insert(p, seq).unwrap_or(-1);
        assert!(
            seq > prev,
            "partition {p}: {seq} after {prev}: out of order"
        );
    }
    let missing: Vec<_> = acked
        .iter()
        .filter(|k| !seen.contains(&(k.0, k.1 as i64)))
        .take(5)
        .collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    assert_eq!(read.len() as u64, total);
}

/// The longest time between two acknowledgements of one partition, over
/// the acknowledgements that came after `from`, and when it began (after
/// `from`).
fn longest_ack_gap(acked: &[(i32, u64, Instant)], from: Instant) -> (Duration, Duration, i32) {
    let mut last: HashMap<i32, Instant> = HashMap::new();
    let mut longest = (Duration::ZERO, Duration::ZERO, -1);
    let mut times: Vec<(i32, Instant)> = acked
        .iter()
        .filter(|(_, _, at)| *at > from)
        .map(|(p, _, at)| (*p, *at))
        .collect();
    times.sort_by_key(|(_, at)| *at);
    for (p, at) in times {
        if let Some(prev) = last.insert(p, at) {
            if at - prev > longest.0 {
                longest = (at - prev, prev - from, p);
            }
        }
    }
    longest
}

#[test]
fn a_rolling_restart_under_acks_all_load_moves_leaders_without_errors() {
    let mut cluster = Cluster::start(3);
    let topic = "rolling";
    let partitions = 6;
    create_durable_topic(&cluster, topic, partitions);

    let load = SteadyLoad::start(&cluster.bootstrap_all(), topic, partitions);

    let mut stalls = Vec::new();
    for i in 0..cluster.nodes.len() {
        thread::sleep(Duration::from_secs(2));
        let id = cluster.nodes[i].id;
        let leaders_before: Vec<i32> = cluster
            .partitions_from_any(topic)
            .iter()
            .map(|p| p.leader)
            .collect();
        let led = leaders_before.iter().filter(|&&l| l == id).count();
        let stopped_at = Instant::now();
        assert!(cluster.terminate(i), "node {id} exits cleanly on SIGTERM");
        let stopped = stopped_at.elapsed();
        let output = cluster.output(i);
        assert!(
            led == 0 || output.contains("controlled shutdown: leaderships moved"),
            "node {id} led {led} partitions and stopped without handing them over:\n{output}"
        );
        // Produce goes on while the node is down.
        thread::sleep(Duration::from_secs(2));
        cluster.spawn(i);
        cluster.wait_ready(i);
        let back = stopped_at.elapsed();
        eventually(
            "the restarted broker rejoins every ISR",
            Duration::from_secs(60),
            || fully_in_sync(&cluster, topic, 3),
        );
        let (stall, began, partition) =
            longest_ack_gap(&load.producer.context().acked.lock().unwrap(), stopped_at);
        println!(
            "rolling restart of node {id} (leading {led}): longest produce stall {stall:?} \
             (partition {partition}, led by {}), {began:?} after the SIGTERM (stopped after \
             {stopped:?}, back after {back:?})",
            leaders_before[partition.max(0) as usize]
        );
        stalls.push(stall);
    }
    let (producer, total) = load.stop();
    flush_without_failures(&producer, Duration::from_secs(60));
    // Without the handover a partition's producers stalled 2.3-2.9 s per
    // restart here (until the stopped node came back: a follower proposed
    // for the ISR held the high watermark); with it, about 120 ms (a
    // metadata refresh). The bound leaves room for a loaded test machine;
    // the figures are printed above.
    for stall in &stalls {
        assert!(
            *stall < Duration::from_millis(1000),
            "a rolling restart stalled produce for {stall:?}: {stalls:?}"
        );
    }
    let acked = producer.context().acked.lock().unwrap().len() as u64;
    assert_eq!(acked, total, "every message sent was acknowledged");
    let read = read_all(&cluster.bootstrap_all(), topic, partitions, total as usize);
    let seen: HashSet<&String> = read.iter().map(|(_, v)| v).collect();
    assert_eq!(
        seen.len() as u64,
        total,
        "every acknowledged message is read back"
    );
    assert_eq!(read.len() as u64, total, "and only once");
}

fn coordinator_of(cluster: &Cluster, i: usize, group: &str) -> i32 {
    let response = find_coordinator(cluster, i, group);
    assert_eq!(response.error_code, 0, "{response:?}");
    response.node_id.0
}

fn find_coordinator(cluster: &Cluster, i: usize, group: &str) -> FindCoordinatorResponse {
    let mut conn = Conn::connect(cluster.addr(i));
    let request = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(group.to_string()))
        .with_key_type(0);
    conn.call(3, &request)
}

#[test]
fn a_consumer_group_keeps_its_committed_offsets_across_a_coordinator_failure() {
    let mut cluster = Cluster::start(3);
    let topic = "orders";
    create_topic(&cluster.bootstrap(0), topic, 3, 3, &[]).expect("create");
    let total = 3000;
    let producer = durable_producer(&cluster.bootstrap_all());
    for n in 0..total {
        let payload = format!("order-{n}");
        producer
            .send(
                BaseRecord::<(), String, _>::with_opaque_to(topic, Box::new((0, n as u64)))
                    .payload(&payload),
            )
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(60)).expect("produced");

    let group = "order-readers";
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_all())
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "10000")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let poll_until = |consumer: &BaseConsumer, seen: &mut HashMap<String, usize>, count: usize| {
        let deadline = Instant::now() + Duration::from_secs(90);
        while seen.len() < count && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                let value = String::from_utf8(m.payload().unwrap().to_vec()).unwrap();
                *seen.entry(value).or_default() += 1;
            }
        }
    };
    poll_until(&consumer, &mut seen, total / 2);
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");
    let committed_before: i64 = consumer
        .committed(Duration::from_secs(10))
        .unwrap()
        .elements()
        .iter()
        .map(|e| e.offset().to_raw().unwrap_or(0).max(0))
        .sum();
    assert_eq!(
        committed_before as usize,
        seen.len(),
        "commit covers what was read"
    );

    let coordinator = coordinator_of(&cluster, 0, group);
    cluster.kill9(cluster.index_of(coordinator));
    let survivor = (0..3).find(|i| cluster.is_running(*i)).unwrap();
    // Between the fencing of the dead broker and the election of a new
    // leader for the group's partition, the answer is the retriable
    // COORDINATOR_NOT_AVAILABLE, as in Kafka.
    eventually("a new coordinator", Duration::from_secs(30), || {
        let response = find_coordinator(&cluster, survivor, group);
        let retriable = ResponseError::CoordinatorNotAvailable.code();
        assert!(
            [0, retriable].contains(&response.error_code),
            "{response:?}"
        );
        response.error_code == 0 && response.node_id.0 != coordinator
    });

    poll_until(&consumer, &mut seen, total);
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit after failover");
    assert_eq!(seen.len(), total, "every message read");
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(
        twice.is_empty(),
        "read again after the failover (committed offsets lost?): {twice:?}"
    );
    // A new member of the group starts from the committed end.
    drop(consumer);
    let fresh: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_all())
        .set("group.id", group)
        .create()
        .unwrap();
    let mut wanted = TopicPartitionList::new();
    for p in 0..3 {
        wanted.add_partition(topic, p);
    }
    let committed: i64 = fresh
        .committed_offsets(wanted, Duration::from_secs(10))
        .unwrap()
        .elements()
        .iter()
        .map(|e| e.offset().to_raw().unwrap_or(0).max(0))
        .sum();
    assert_eq!(
        committed as usize, total,
        "committed offsets survived the failover"
    );
}

/// The node index leading partition 0 of `topic`, once some node reports one.
fn leader_index(cluster: &Cluster, topic: &str) -> usize {
    let mut leader = -1;
    eventually("a leader", Duration::from_secs(30), || {
        leader = cluster.partitions_from_any(topic)[0].leader;
        leader > 0
    });
    cluster.index_of(leader)
}

/// Node indexes of the replicas of partition 0 of `topic` other than its
/// leader (node index `leader`).
fn follower_indexes(cluster: &Cluster, leader: usize, topic: &str) -> Vec<usize> {
    cluster.partitions(leader, topic)[0]
        .replicas
        .iter()
        .map(|id| cluster.index_of(*id))
        .filter(|i| *i != leader)
        .collect()
}

/// Values of partition 0 of `topic`, read through every running node.
fn values(cluster: &Cluster, topic: &str, expected: usize) -> Vec<String> {
    let bootstrap: Vec<String> = (0..cluster.nodes.len())
        .filter(|i| cluster.is_running(*i))
        .map(|i| cluster.bootstrap(i))
        .collect();
    read_all(&bootstrap.join(","), topic, 1, expected)
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

fn batch(prefix: &str, count: usize) -> bytes::Bytes {
    common::raw::simple_batch(prefix, count, 0, common::raw::now_ms())
}

#[test]
fn min_insync_replicas_and_a_diverging_tail() {
    // Five controllers, so killing two brokers keeps a controller majority;
    // a short replica.lag.time.max.ms so a stalled follower leaves the ISR
    // within the test.
    let mut cluster = Cluster::start_with(5, 0, 1, &["replica.lag.time.max.ms=3000"]);

    // A follower that stalls (SIGSTOP: its port stays open, so it is not
    // fenced) leaves the ISR after the lag time and rejoins once it catches up.
    let slow = "slow";
    create_topic(&cluster.bootstrap(0), slow, 1, 3, &[]).expect("create slow");
    eventually("slow in sync", Duration::from_secs(30), || {
        fully_in_sync(&cluster, slow, 3)
    });
    let leader = leader_index(&cluster, slow);
    let stalled = follower_indexes(&cluster, leader, slow)[0];
    let stalled_id = cluster.nodes[stalled].id;
    cluster.pause(stalled, true);
    let mut conn = Conn::connect(cluster.addr(leader));
    assert_eq!(conn.produce(9, slow, 0, batch("while-stalled", 10)).0, 0);
    eventually(
        "the stalled follower leaves the ISR",
        Duration::from_secs(20),
        || {
            !cluster.partitions(leader, slow)[0]
                .isr
                .contains(&stalled_id)
        },
    );
    cluster.pause(stalled, false);
    eventually("it rejoins once caught up", Duration::from_secs(30), || {
        cluster.partitions(leader, slow)[0]
            .isr
            .contains(&stalled_id)
    });

    // min.insync.replicas=2 with two of three replicas down: acks=all is
    // refused with NOT_ENOUGH_REPLICAS and nothing is stored or lost.
    let guarded = "guarded";
    create_durable_topic(&cluster, guarded, 1);
    let leader = leader_index(&cluster, guarded);
    let mut conn = Conn::connect(cluster.addr(leader));
    assert_eq!(conn.produce(9, guarded, 0, batch("kept", 10)).0, 0);
    let followers = follower_indexes(&cluster, leader, guarded);
    for f in &followers {
        cluster.kill9(*f);
    }
    let leader_id = cluster.nodes[leader].id;
    eventually(
        "the ISR shrinks to the leader",
        Duration::from_secs(30),
        || cluster.partitions(leader, guarded)[0].isr == vec![leader_id],
    );
    let (code, _) = conn.produce(9, guarded, 0, batch("refused", 5));
    assert_eq!(code, 19, "NOT_ENOUGH_REPLICAS with one in-sync replica");
    let (code, _) = conn.produce_acks(9, guarded, 0, batch("acks1", 5), 1);
    assert_eq!(code, 0, "acks=1 does not need the ISR");
    for f in &followers {
        cluster.spawn(*f);
        cluster.wait_ready(*f);
    }
    eventually("the followers rejoin", Duration::from_secs(60), || {
        fully_in_sync(&cluster, guarded, 3)
    });
    assert_eq!(conn.produce(9, guarded, 0, batch("after", 5)).0, 0);
    let got = values(&cluster, guarded, 20);
    assert_eq!(got.len(), 20, "{got:?}");
    assert!(got.iter().all(|v| !v.starts_with("refused")), "{got:?}");

    // A leader that wrote a tail nobody copied (its followers stalled), then
    // died, cuts that tail when it returns as a follower of the new leader.
    let topic = "diverge";
    create_topic(&cluster.bootstrap(0), topic, 1, 3, &[]).expect("create diverge");
    eventually("diverge in sync", Duration::from_secs(30), || {
        fully_in_sync(&cluster, topic, 3)
    });
    let old = leader_index(&cluster, topic);
    let old_id = cluster.nodes[old].id;
    let mut conn = Conn::connect(cluster.addr(old));
    assert_eq!(conn.produce(9, topic, 0, batch("before", 10)).0, 0);
    let followers = follower_indexes(&cluster, old, topic);
    for f in &followers {
        cluster.pause(*f, true);
    }
    // A fetch the followers sent before they stopped may be parked on the
    // leader: let it expire (replica.fetch.wait.max.ms, 500 ms) so its
    // answer cannot carry the batch below to them.
    thread::sleep(Duration::from_millis(1200));
    let (code, _) = conn.produce_acks(9, topic, 0, batch("lost", 5), 1);
    assert_eq!(code, 0, "acks=1 is answered by the leader alone");
    cluster.kill9(old);
    for f in &followers {
        cluster.pause(*f, false);
    }
    let mut new_leader = -1;
    eventually("a follower takes over", Duration::from_secs(30), || {
        new_leader = cluster.partitions_from_any(topic)[0].leader;
        new_leader > 0 && new_leader != old_id
    });
    let mut conn = Conn::connect(cluster.addr(cluster.index_of(new_leader)));
    eventually(
        "the new leader takes acks=all",
        Duration::from_secs(30),
        || conn.produce(9, topic, 0, batch("after", 5)).0 == 0,
    );
    cluster.spawn(old);
    cluster.wait_ready(old);
    eventually(
        "the old leader rejoins the ISR",
        Duration::from_secs(60),
        || fully_in_sync(&cluster, topic, 3),
    );
    assert!(
        cluster.output(old).contains("truncated to offset 10"),
        "the returning replica cut its divergent tail:\n{}",
        cluster.output(old)
    );
    // It leads again (preferred election) and serves the new leader's history.
    let response = elect_preferred(&cluster, 0);
    assert_eq!(response.error_code, 0, "{response:?}");
    eventually(
        "the old leader leads again",
        Duration::from_secs(20),
        || cluster.partitions_from_any(topic)[0].leader == old_id,
    );
    let got = values(&cluster, topic, 15);
    let expected: Vec<String> = (0..10)
        .map(|i| format!("before-{i}"))
        .chain((0..5).map(|i| format!("after-{i}")))
        .collect();
    assert_eq!(got, expected, "the divergent tail is gone, nothing else");
}
