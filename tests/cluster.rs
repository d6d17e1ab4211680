//! Three corelog processes on loopback form one cluster through their Raft
//! controller quorum (each node is broker and controller, configured with
//! Kafka's server.properties keys). librdkafka and raw requests check what a
//! client sees: every broker answers for the whole cluster, partition
//! leaders are spread over the brokers, produce and consume work through
//! any bootstrap broker, and the quorum survives the loss of its leader.

mod common;

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::raw::{topic_name, Conn};
use common::{free_port, READY_TIMEOUT};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{
    DescribeQuorumRequest, DescribeQuorumResponse, MetadataRequest, MetadataResponse,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::Message;

struct Node {
    id: i32,
    port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

struct Cluster {
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn start(count: usize) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("corelog-cluster-")
            .tempdir()
            .unwrap();
        let ports: Vec<(u16, u16)> = (0..count).map(|_| (free_port(), free_port())).collect();
        let voters: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, c))| format!("{}@127.0.0.1:{c}", i + 1))
            .collect();
        let mut nodes = Vec::new();
        for (i, (port, controller)) in ports.iter().enumerate() {
            let id = i as i32 + 1;
            let config = dir.path().join(format!("node{id}.properties"));
            fs::write(
                &config,
                format!(
                    "process.roles=broker,controller\nnode.id={id}\n\
                     controller.quorum.voters={}\n\
                     listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}\n\
                     advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
                     controller.listener.names=CONTROLLER\n\
                     log.dirs={}\n",
                    voters.join(","),
                    dir.path().join(format!("node{id}")).display()
                ),
            )
            .unwrap();
            nodes.push(Node {
                id,
                port: *port,
                config,
                log: dir.path().join(format!("node{id}.log")),
                child: None,
            });
        }
        // As kafka-storage.sh: one cluster id, every node's storage formatted.
        let bin = env!("CARGO_BIN_EXE_corelog");
        let id = Command::new(bin)
            .args(["storage", "random-uuid"])
            .output()
            .expect("storage random-uuid");
        assert!(id.status.success(), "random-uuid: {id:?}");
        let id = String::from_utf8(id.stdout).unwrap().trim().to_string();
        for node in &nodes {
            let formatted = Command::new(bin)
                .args(["storage", "format", "-t", &id, "-c"])
                .arg(&node.config)
                .output()
                .expect("storage format");
            assert!(formatted.status.success(), "format: {formatted:?}");
        }
        let mut cluster = Cluster { nodes, _dir: dir };
        // All at once: a node registers only once a quorum of controllers runs.
        for i in 0..count {
            cluster.spawn(i);
        }
        for i in 0..count {
            cluster.wait_ready(i);
        }
        cluster
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_corelog"))
            .arg("serve")
            .arg("--config")
            .arg(&node.config)
            .arg("--shards")
            .arg("2")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn corelog");
        node.child = Some(child);
    }

    fn wait_ready(&mut self, i: usize) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr = self.addr(i);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "node {} not ready after {READY_TIMEOUT:?}; its output:\n{}",
                self.nodes[i].id,
                self.output(i)
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn output(&self, i: usize) -> String {
        fs::read_to_string(&self.nodes[i].log).unwrap_or_default()
    }

    fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.nodes[i].port))
    }

    fn bootstrap(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.nodes[i].port)
    }

    fn kill9(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The active controller as node `i` reports it (None while electing).
    fn quorum_leader(&self, i: usize) -> Option<i32> {
        let mut conn = Conn::connect(self.addr(i));
        let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
            .with_topic_name(topic_name("__cluster_metadata"))
            .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
        let response: DescribeQuorumResponse = conn.call(1, &request);
        if response.error_code != 0 {
            return None;
        }
        let partition = &response.topics[0].partitions[0];
        (partition.error_code == 0 && partition.leader_id.0 > 0).then_some(partition.leader_id.0)
    }

    fn metadata(&self, i: usize, topic: &str) -> MetadataResponse {
        let mut conn = Conn::connect(self.addr(i));
        let request = MetadataRequest::default().with_topics(Some(vec![
            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(topic_name(topic))),
        ]));
        conn.call(9, &request)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            if std::thread::panicking() {
                eprintln!(
                    "---- node {} output ----\n{}",
                    self.nodes[i].id,
                    self.output(i)
                );
            }
            self.kill9(i);
        }
    }
}

fn create_topic(bootstrap: &str, name: &str, partitions: i32) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let results = runtime
        .block_on(admin.create_topics([&topic], &options))
        .map_err(|e| e.to_string())?;
    match &results[0] {
        Ok(_) => Ok(()),
        Err((_, code)) => Err(format!("{code:?}")),
    }
}

/// Waits (bounded) until `check` holds, re-evaluating every 100 ms.
fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        thread::sleep(Duration::from_millis(100));
    }
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
        // Known gap: librdkafka's idempotent producer times out against a
        // cluster (kafka-python's works); see the cluster issue's note.
        .set("enable.idempotence", "false")
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
