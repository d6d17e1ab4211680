//! A cluster of corelog processes on loopback, each broker and controller
//! (Kafka's server.properties keys, storage formatted with one cluster id
//! as kafka-storage.sh does), for the cluster and replication tests.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    DescribeQuorumRequest, DescribeQuorumResponse, MetadataRequest, MetadataResponse,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

use super::raw::{topic_name, Conn};
use super::{free_port, READY_TIMEOUT};

pub struct Node {
    pub id: i32,
    pub port: u16,
    /// Its HTTP listener's port (`http.listeners`).
    pub http_port: u16,
    /// Whether this node is a controller (a quorum voter) too.
    pub controller: bool,
    /// The corelog binary it runs (this build's, or an older release's for
    /// the upgrade test).
    bin: PathBuf,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    shards: usize,
    _dir: tempfile::TempDir,
}

/// One partition as Metadata reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionView {
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

impl Cluster {
    pub fn start(count: usize) -> Cluster {
        Cluster::start_with(count, 0, 2, &[])
    }

    /// `controllers` broker+controller nodes (ids 1..) and `brokers`
    /// broker-only nodes after them, all started at once.
    pub fn start_with_brokers(controllers: usize, brokers: usize) -> Cluster {
        Cluster::start_with(controllers, brokers, 2, &[])
    }

    /// `controllers` broker+controller nodes and `brokers` broker-only
    /// nodes, with `shards` shards each and `extra` server.properties lines.
    pub fn start_with(
        controllers: usize,
        brokers: usize,
        shards: usize,
        extra: &[&str],
    ) -> Cluster {
        let bin = Path::new(env!("CARGO_BIN_EXE_corelog"));
        Cluster::start_with_binary(controllers, brokers, shards, extra, bin)
    }

    /// As [`Cluster::start_with`], every node running (and formatted by)
    /// the corelog binary `bin`.
    pub fn start_with_binary(
        controllers: usize,
        brokers: usize,
        shards: usize,
        extra: &[&str],
        bin: &Path,
    ) -> Cluster {
        Cluster::start_inner(controllers, brokers, shards, extra, bin, None)
    }

    /// `controllers` broker+controller nodes on copies of the data
    /// directories `fixture/node<id>` (written by an earlier release, see
    /// tests/fixtures/make-cluster-data.sh), with new ports.
    pub fn start_from_fixture(
        fixture: &Path,
        controllers: usize,
        shards: usize,
        extra: &[&str],
    ) -> Cluster {
        let bin = Path::new(env!("CARGO_BIN_EXE_corelog"));
        Cluster::start_inner(controllers, 0, shards, extra, bin, Some(fixture))
    }

    fn start_inner(
        controllers: usize,
        brokers: usize,
        shards: usize,
        extra: &[&str],
        bin: &Path,
        fixture: Option<&Path>,
    ) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("corelog-cluster-")
            .tempdir()
            .unwrap();
        let count = controllers + brokers;
        let ports: Vec<(u16, u16)> = (0..count).map(|_| (free_port(), free_port())).collect();
        let http_ports: Vec<u16> = (0..count).map(|_| free_port()).collect();
        let voters: Vec<String> = ports[..controllers]
            .iter()
            .enumerate()
            .map(|(i, (_, c))| format!("{}@127.0.0.1:{c}", i + 1))
            .collect();
        let mut nodes = Vec::new();
        for (i, (port, controller_port)) in ports.iter().enumerate() {
            let id = i as i32 + 1;
            let controller = i < controllers;
            let (roles, listeners) = if controller {
                (
                    "broker,controller",
                    format!(
                        "PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}"
                    ),
                )
            } else {
                ("broker", format!("PLAINTEXT://127.0.0.1:{port}"))
            };
            let config = dir.path().join(format!("node{id}.properties"));
            let mut text = format!(
                "process.roles={roles}\nnode.id={id}\n\
                 controller.quorum.voters={}\n\
                 listeners={listeners}\n\
                 advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
                 controller.listener.names=CONTROLLER\n\
                 http.listeners=127.0.0.1:{}\n\
                 log.dirs={}\n",
                voters.join(","),
                http_ports[i],
                dir.path().join(format!("node{id}")).display()
            );
            for line in extra {
                text.push_str(line);
                text.push('\n');
            }
            fs::write(&config, text).unwrap();
            nodes.push(Node {
                id,
                port: *port,
                http_port: http_ports[i],
                controller,
                bin: bin.to_path_buf(),
                config,
                log: dir.path().join(format!("node{id}.log")),
                child: None,
            });
        }
        if let Some(fixture) = fixture {
            for node in &nodes {
                let name = format!("node{}", node.id);
                copy_dir(&fixture.join(&name), &dir.path().join(&name));
            }
        }
        let id = Command::new(bin)
            .args(["storage", "random-uuid"])
            .output()
            .expect("storage random-uuid");
        assert!(id.status.success(), "random-uuid: {id:?}");
        let id = String::from_utf8(id.stdout).unwrap().trim().to_string();
        for node in nodes.iter().filter(|_| fixture.is_none()) {
            let formatted = Command::new(bin)
                .args(["storage", "format", "-t", &id, "-c"])
                .arg(&node.config)
                .output()
                .expect("storage format");
            assert!(formatted.status.success(), "format: {formatted:?}");
        }
        let mut cluster = Cluster {
            nodes,
            shards,
            _dir: dir,
        };
        // All at once: a node registers only once a quorum of controllers runs.
        for i in 0..count {
            cluster.spawn(i);
        }
        for i in 0..count {
            cluster.wait_ready(i);
        }
        cluster
    }

    /// Node `i` runs `bin` from its next start on (an upgrade).
    pub fn set_binary(&mut self, i: usize, bin: &Path) {
        self.nodes[i].bin = bin.to_path_buf();
    }

    pub fn spawn(&mut self, i: usize) {
        let shards = self.shards.to_string();
        let node = &mut self.nodes[i];
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .unwrap();
        let child = Command::new(&node.bin)
            .arg("serve")
            .arg("--config")
            .arg(&node.config)
            .arg("--shards")
            .arg(&shards)
            // The nodes share this machine's cores: pinned, every node's
            // shard 0 would run on the first one (as dev-cluster decides).
            .arg("--cores")
            .arg("none")
            .env("RUST_LOG", "corelog=info")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn corelog");
        node.child = Some(child);
    }

    pub fn wait_ready(&mut self, i: usize) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr = self.addr(i);
        while !super::listening(addr) {
            assert!(
                Instant::now() < deadline,
                "node {} not ready after {READY_TIMEOUT:?}; its output:\n{}",
                self.nodes[i].id,
                self.output(i)
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Node `id`'s data directory (its `log.dirs`).
    pub fn data_dir(&self, id: i32) -> PathBuf {
        self._dir.path().join(format!("node{id}"))
    }

    pub fn output(&self, i: usize) -> String {
        fs::read_to_string(&self.nodes[i].log).unwrap_or_default()
    }

    pub fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.nodes[i].port))
    }

    pub fn bootstrap(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.nodes[i].port)
    }

    /// Every running node's address, for a client's bootstrap list.
    pub fn bootstrap_all(&self) -> String {
        (0..self.nodes.len())
            .map(|i| self.bootstrap(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn index_of(&self, id: i32) -> usize {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .expect("known node id")
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    pub fn kill9(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, as an operator stops a node, and waits (bounded by
    /// `EXIT_TIMEOUT`) for it to exit: whether it exited cleanly.
    pub fn terminate(&mut self, i: usize) -> bool {
        let mut child = self.nodes[i].child.take().expect("node runs");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        match super::wait_bounded(&mut child, super::EXIT_TIMEOUT) {
            Some(status) => status.success(),
            None => panic!(
                "node {} did not exit within {:?} of SIGTERM:\n{}",
                self.nodes[i].id,
                super::EXIT_TIMEOUT,
                self.output(i)
            ),
        }
    }

    /// SIGSTOP / SIGCONT: the process stalls with its ports still open.
    pub fn pause(&self, i: usize, paused: bool) {
        let child = self.nodes[i].child.as_ref().expect("node runs");
        let signal = if paused {
            nix::sys::signal::Signal::SIGSTOP
        } else {
            nix::sys::signal::Signal::SIGCONT
        };
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    }

    /// The active controller as node `i` reports it (None while electing).
    pub fn quorum_leader(&self, i: usize) -> Option<i32> {
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

    pub fn metadata(&self, i: usize, topic: &str) -> MetadataResponse {
        let mut conn = Conn::connect(self.addr(i));
        let request = MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name(topic))),
        ]));
        conn.call(9, &request)
    }

    /// The broker ids node `i` lists in Metadata, sorted.
    pub fn brokers(&self, i: usize) -> Vec<i32> {
        let mut conn = Conn::connect(self.addr(i));
        let request = MetadataRequest::default()
            .with_topics(Some(Vec::new()))
            .with_allow_auto_topic_creation(false);
        let response: MetadataResponse = conn.call(9, &request);
        let mut ids: Vec<i32> = response.brokers.iter().map(|b| b.node_id.0).collect();
        ids.sort();
        ids
    }

    /// (partition, leader) of `topic` as node `i` reports it, sorted.
    pub fn leaders(&self, i: usize, topic: &str) -> Vec<(i32, i32)> {
        self.partitions(i, topic)
            .iter()
            .enumerate()
            .map(|(p, view)| (p as i32, view.leader))
            .collect()
    }

    /// The partitions of `topic` as node `i` reports them, by index.
    pub fn partitions(&self, i: usize, topic: &str) -> Vec<PartitionView> {
        let response = self.metadata(i, topic);
        let mut parts: Vec<(i32, PartitionView)> = response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| {
                (
                    p.partition_index,
                    PartitionView {
                        leader: p.leader_id.0,
                        leader_epoch: p.leader_epoch,
                        replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                        isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                    },
                )
            })
            .collect();
        parts.sort_by_key(|(i, _)| *i);
        parts.into_iter().map(|(_, p)| p).collect()
    }

    /// Some running node's view of `topic`'s partitions.
    pub fn partitions_from_any(&self, topic: &str) -> Vec<PartitionView> {
        let i = (0..self.nodes.len())
            .find(|i| self.is_running(*i))
            .expect("a node runs");
        self.partitions(i, topic)
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
            if self.nodes[i].child.is_some() {
                // A paused node cannot die of SIGKILL while stopped on some
                // kernels' accounting; continue it first.
                self.pause(i, false);
            }
            self.kill9(i);
        }
    }
}

pub fn create_topic(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    replication: i32,
    configs: &[(&str, &str)],
) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
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
pub fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        thread::sleep(Duration::from_millis(100));
    }
}

/// Copies a directory tree (a fixture's data directory).
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}
