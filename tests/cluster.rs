//! Three corelog processes on loopback form one cluster through their Raft
//! controller quorum (each node is broker and controller, configured with
//! Kafka's server.properties keys). librdkafka and raw requests check what a
//! client sees: every broker answers for the whole cluster, partition
//! leaders are spread over the brokers, produce and consume work through
//! any bootstrap broker, and the quorum survives the loss of its leader.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{self, eventually, Cluster};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::Message;

fn create_topic(bootstrap: &str, name: &str, partitions: i32) -> Result<(), String> {
    cluster::create_topic(bootstrap, name, partitions, 1, &[])
}

#[test]
fn three_brokers_spread_leaders_and_serve_clients_through_any_of_them() {
    let cluster = Cluster::start(3);
    create_topic(&cluster.bootstrap(1), "spread", 6).expect("create topic");
    // Every broker answers for the whole cluster, with the same leaders.
    let mut leaders_seen = None;
    for i in 0..3 {
        eventually("metadata lists the topic", Duration::from_secs(10), || {
            cluster.metadata(i, "spread").topics[0].error_code == 0
        });
        let response = cluster.metadata(i, "spread");
        let mut brokers: Vec<i32> = response.brokers.iter().map(|b| b.node_id.0).collect();
        brokers.sort();
        assert_eq!(brokers, vec![1, 2, 3], "node {i} lists every broker");
        let mut leaders: Vec<(i32, i32)> = response.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.leader_id.0))
            .collect();
        leaders.sort();
        let per_broker = |b: i32| leaders.iter().filter(|(_, l)| *l == b).count();
        assert_eq!(
            (per_broker(1), per_broker(2), per_broker(3)),
            (2, 2, 2),
            "leaders spread evenly: {leaders:?}"
        );
        match &leaders_seen {
            None => leaders_seen = Some(leaders),
            Some(seen) => assert_eq!(seen, &leaders, "node {i} agrees on the leaders"),
        }
    }
    // librdkafka bootstrapped at one broker reaches every partition leader.
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap(0))
        .set("acks", "all")
        .set("enable.idempotence", "true")
        // Bounded: a producer that cannot get a producer id fails the test
        // instead of retrying forever.
        .set("message.timeout.ms", "30000")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let total = 3000;
    for i in 0..total {
        let key = format!("k{i}");
        let value = format!("v{i}");
        producer
            .send(BaseRecord::to("spread").key(&key).payload(&value))
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).expect("all acked");
    // A group consumer bootstrapped at another broker reads all of it once.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap(2))
        .set("group.id", "spread-readers")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["spread"]).unwrap();
    let mut seen = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < total && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.expect("no consume error");
            let value = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
            assert!(seen.insert(value), "each message once");
        }
    }
    assert_eq!(seen.len(), total, "every acknowledged message is read");
}

#[test]
fn the_quorum_elects_a_new_controller_and_topic_creation_works_again() {
    let mut cluster = Cluster::start(3);
    let mut leader = None;
    eventually("a controller is elected", Duration::from_secs(20), || {
        leader = cluster.quorum_leader(0);
        leader.is_some()
    });
    let leader = leader.unwrap();
    for i in 0..3 {
        assert_eq!(cluster.quorum_leader(i), Some(leader), "node {i} agrees");
    }
    create_topic(&cluster.bootstrap(0), "before", 3).expect("create before");
    let killed = (leader - 1) as usize;
    cluster.kill9(killed);
    let survivor = (killed + 1) % 3;
    let mut new_leader = None;
    eventually(
        "a new controller is elected",
        Duration::from_secs(20),
        || {
            new_leader = cluster.quorum_leader(survivor).filter(|l| *l != leader);
            new_leader.is_some()
        },
    );
    create_topic(&cluster.bootstrap(survivor), "after", 3).expect("create after failover");
    let other = (killed + 2) % 3;
    eventually(
        "the other survivor sees the topic",
        Duration::from_secs(10),
        || cluster.metadata(other, "after").topics[0].error_code == 0,
    );
    // The killed broker is fenced: no longer listed to clients.
    eventually("the dead broker is fenced", Duration::from_secs(20), || {
        !cluster
            .metadata(survivor, "after")
            .brokers
            .iter()
            .any(|b| b.node_id.0 == leader)
    });
    // It comes back, catches up on the metadata it missed, and serves it.
    cluster.spawn(killed);
    cluster.wait_ready(killed);
    eventually(
        "the restarted broker knows the new topic",
        Duration::from_secs(20),
        || cluster.metadata(killed, "after").topics[0].error_code == 0,
    );
}
