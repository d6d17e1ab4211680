//! Kafka's server.properties and storage identity, through the binary:
//! `corelog storage random-uuid | format | info`, `corelog serve --config
//! FILE.properties` (refusals and a librdkafka round trip, also from a
//! ZooKeeper-era file), the embedded
//! default formatting itself, a data dir written before meta.properties
//! existed, and `corelog dev-cluster`.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::raw::Conn;
use common::{consume, flush, free_port, logged_producer, send_record, Broker, BrokerOptions, Run};
use rdkafka::producer::{BaseRecord, Producer};

/// Runs `corelog args...` with no input, to completion (bounded).
fn corelog(args: &[&str]) -> Run {
    common::corelog(args, "")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn random_uuid() -> String {
    let run = corelog(&["storage", "random-uuid"]);
    assert!(run.status.success(), "{}", run.stderr);
    run.stdout.trim().to_string()
}

/// A single node's server.properties: broker and controller, the quorum
/// `voters` (empty: none configured), data in `data`.
fn single_node_properties(port: u16, controller_port: u16, data: &Path, voters: &str) -> String {
    let voters = if voters.is_empty() {
        String::new()
    } else {
        format!("controller.quorum.voters={voters}\n")
    };
    format!(
        "# a Kafka-style server.properties\n\
         process.roles=broker,controller\n\
         node.id=1\n\
         {voters}\
         listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}\n\
         advertised.listeners=PLAINTEXT://localhost:{port}\n\
         controller.listener.names=CONTROLLER\n\
         listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
         log.dirs={}\n\
         num.partitions=2\n\
         log.retention.hours=168\n\
         num.network.threads=3\n\
         socket.send.buffer.bytes=102400\n",
        data.display()
    )
}

/// A single node's files: a temporary directory with its data dir
/// (`node1`) and server.properties, on ports that were free.
struct NodeFiles {
    data: PathBuf,
    config: PathBuf,
    port: u16,
    controller_port: u16,
    /// Removes the files when the test is over.
    _dir: tempfile::TempDir,
}

impl NodeFiles {
    fn new() -> NodeFiles {
        let dir = tempfile::tempdir().unwrap();
        NodeFiles {
            data: dir.path().join("node1"),
            config: dir.path().join("node1.properties"),
            port: free_port(),
            controller_port: free_port(),
            _dir: dir,
        }
    }

    /// Writes the properties with `voters` (empty: none) and `extra`
    /// lines, which win over the same keys above them.
    fn write(&self, voters: &str, extra: &str) {
        let text = single_node_properties(self.port, self.controller_port, &self.data, voters);
        fs::write(&self.config, text + extra).unwrap();
    }

    /// This node alone as the quorum.
    fn own_voter(&self) -> String {
        format!("1@127.0.0.1:{}", self.controller_port)
    }

    fn config_arg(&self) -> &str {
        path_str(&self.config)
    }

    fn start(&self) -> Broker {
        Broker::start_with(
            BrokerOptions::default()
                .data_dir(self.data.clone())
                .config_file(self.config.clone(), self.port),
        )
    }
}

fn meta_properties(dir: &Path) -> String {
    fs::read_to_string(dir.join("meta.properties")).unwrap_or_else(|e| {
        panic!("no meta.properties in {}: {e}", dir.display());
    })
}

fn meta_value(dir: &Path, key: &str) -> String {
    meta_properties(dir)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {key} in {}", dir.display()))
}

/// The cluster id Metadata reports.
fn served_cluster_id(broker: &Broker) -> String {
    let mut conn = Conn::connect(broker.addr());
    let metadata = conn.metadata(12, &[]);
    metadata
        .cluster_id
        .map(|id| id.to_string())
        .expect("Metadata has a cluster id")
}

fn round_trip(broker: &Broker, topic: &str, messages: usize) {
    let producer = logged_producer(&broker.producer_config());
    let payloads: Vec<String> = (0..messages)
        .map(|i| format!("{topic} value {i}"))
        .collect();
    for (i, payload) in payloads.iter().enumerate() {
        send_record(
            &producer,
            BaseRecord::<(), String, usize>::with_opaque_to(topic, i)
                .partition((i % 2) as i32)
                .payload(payload),
        );
    }
    flush(&producer, Duration::from_secs(30));
    let results = producer.context().results.lock().unwrap().clone();
    for i in 0..messages {
        match results.get(&i) {
            Some(Ok(_)) => {}
            other => panic!("message {i} not delivered: {other:?}"),
        }
    }
    let consumed = consume(broker, topic, 2, messages, Duration::from_secs(30));
    let mut values: Vec<String> = consumed
        .iter()
        .map(|m| String::from_utf8(m.value.clone().unwrap_or_default()).unwrap())
        .collect();
    values.sort();
    let mut expected = payloads;
    expected.sort();
    assert_eq!(values, expected);
}

#[test]
fn random_uuid_prints_kafka_cluster_ids() {
    let first = random_uuid();
    let second = random_uuid();
    for id in [&first, &second] {
        assert_eq!(id.len(), 22, "{id:?}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{id:?}"
        );
        assert!(!id.starts_with('-'), "{id:?}");
    }
    assert_ne!(first, second);
}

#[test]
fn format_then_info() {
    let node = NodeFiles::new();
    node.write(&node.own_voter(), "");
    let (data, config_arg) = (&node.data, node.config_arg());

    let info = corelog(&["storage", "info", "-c", config_arg]);
    assert!(!info.status.success());
    assert!(info.stdout.contains("is not formatted"), "{}", info.stdout);

    let bad = corelog(&["storage", "format", "-t", "not-a-uuid", "-c", config_arg]);
    assert!(!bad.status.success());
    assert!(
        bad.stderr.contains("not a valid Kafka Uuid"),
        "{}",
        bad.stderr
    );
    assert!(!data.join("meta.properties").exists());

    let id = random_uuid();
    let format = corelog(&["storage", "format", "-t", &id, "-c", config_arg]);
    assert!(format.status.success(), "{}", format.stderr);
    assert!(format.stdout.contains(&id), "{}", format.stdout);
    assert_eq!(meta_value(data, "cluster.id"), id);
    assert_eq!(meta_value(data, "node.id"), "1");
    assert_eq!(meta_value(data, "version"), "1");
    assert_eq!(meta_value(data, "directory.id").len(), 22);
    // The ignored keys are warned about once per run, in one line.
    assert_eq!(
        format.stderr.matches("ignoring 2 config(s)").count(),
        1,
        "{}",
        format.stderr
    );
    assert!(
        format
            .stderr
            .contains("num.network.threads, socket.send.buffer.bytes"),
        "{}",
        format.stderr
    );

    let info = corelog(&["storage", "info", "-c", config_arg]);
    assert!(info.status.success(), "{}{}", info.stdout, info.stderr);
    assert!(
        info.stdout.contains(&format!("cluster.id={id}")) && info.stdout.contains("node.id=1"),
        "{}",
        info.stdout
    );

    let written = meta_properties(data);
    let again = corelog(&["storage", "format", "-t", &random_uuid(), "-c", config_arg]);
    assert!(!again.status.success());
    assert!(
        again.stderr.contains("already formatted"),
        "{}",
        again.stderr
    );
    let ignored = corelog(&[
        "storage",
        "format",
        "-t",
        &random_uuid(),
        "-c",
        config_arg,
        "--ignore-formatted",
    ]);
    assert!(ignored.status.success(), "{}", ignored.stderr);
    assert_eq!(
        meta_properties(data),
        written,
        "--ignore-formatted left it alone"
    );
}

#[test]
fn refuses_storage_of_another_cluster_or_node() {
    let node = NodeFiles::new();
    let data = node.data.clone();
    // An embedded-default node formats itself and writes its catalog.
    let mut broker = Broker::start_with(BrokerOptions::default().data_dir(data.clone()));
    broker.create_topic("kept", 1, &[]);
    let (status, _) = broker.terminate();
    assert!(status.success());
    let own_id = meta_value(&data, "cluster.id");

    // meta.properties of another cluster (a copied or mixed-up directory).
    let other_id = random_uuid();
    let meta = meta_properties(&data).replace(&own_id, &other_id);
    fs::write(data.join("meta.properties"), meta).unwrap();
    let listen = format!("127.0.0.1:{}", node.port);
    let serve = ["serve", "--listen", &listen, "--data-dir", path_str(&data)];
    let run = corelog(&serve);
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains(&own_id) && run.stderr.contains(&other_id),
        "{}",
        run.stderr
    );
    assert!(
        !common::listening(listen.parse().unwrap()),
        "nothing listens"
    );

    // Formatting that directory for the other cluster is refused too.
    fs::remove_file(data.join("meta.properties")).unwrap();
    node.write("", "");
    let format = corelog(&[
        "storage",
        "format",
        "-t",
        &other_id,
        "-c",
        node.config_arg(),
    ]);
    assert!(!format.status.success());
    assert!(format.stderr.contains(&own_id), "{}", format.stderr);

    // Storage formatted for node 1 refuses to start as node 2.
    let format = corelog(&["storage", "format", "-t", &own_id, "-c", node.config_arg()]);
    assert!(format.status.success(), "{}", format.stderr);
    let run = corelog(&[&serve[..], &["--override", "node.id=2"]].concat());
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("node.id 1"), "{}", run.stderr);
}

/// Shards bind with SO_REUSEPORT, which would let a second broker share
/// the port unnoticed (the kernel splitting connections between the two):
/// it must refuse to start instead, and the first keeps serving.
#[test]
fn refuses_a_port_another_broker_listens_on() {
    let first = Broker::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let run = corelog(&[
        "serve",
        "--listen",
        &first.bootstrap(),
        "--data-dir",
        path_str(&data),
        "--shards",
        "1",
    ]);
    assert!(!run.success(), "{run:?}");
    // The error names the process that holds the port.
    let holder = format!("process {} (corelog) listens there", first.pid());
    assert!(run.stderr.contains(&holder), "{run:?}");
    first.create_topic("still-mine", 2, &[]);
    round_trip(&first, "still-mine", 10);
}

/// Placement: a listed core this process may not run on is refused at
/// start with the reason (pinning there would escape `taskset` or fail),
/// and `--cores none` serves unpinned, saying so in its start-up log.
#[test]
fn cores_outside_the_allowed_set_are_refused_and_none_serves_unpinned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let listen = format!("127.0.0.1:{}", free_port());
    let run = corelog(&[
        "serve",
        "--listen",
        &listen,
        "--data-dir",
        path_str(&data),
        "--cores",
        "4095",
    ]);
    assert!(!run.success(), "{run:?}");
    assert!(
        run.stderr
            .contains("core 4095 is not one this process may run on"),
        "{run:?}"
    );
    let run = corelog(&["serve", "--cores", "0,0"]);
    assert!(!run.success() && run.stderr.contains("twice"), "{run:?}");
    // The tests' brokers run with --cores none (tests/common).
    let mut broker = Broker::start_with(
        BrokerOptions::default()
            .shards(2)
            .env("RUST_LOG", "corelog=info"),
    );
    broker.create_topic("unpinned", 2, &[]);
    round_trip(&broker, "unpinned", 10);
    let (status, out) = broker.terminate();
    assert!(status.success(), "{status}\n{out}");
    assert!(
        out.contains("placement: 2 shards, not pinned (cores = none)"),
        "{out}"
    );
}

#[test]
fn refuses_unformatted_controller_storage() {
    let node = NodeFiles::new();
    node.write(
        &format!("{},2@127.0.0.1:1,3@127.0.0.1:2", node.own_voter()),
        "",
    );
    let run = corelog(&["serve", "--config", node.config_arg(), "--shards", "1"]);
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("is not formatted"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "corelog storage format -t <cluster-id> -c {}",
            node.config.display()
        )),
        "{}",
        run.stderr
    );
    assert!(!node.data.join("meta.properties").exists());
}

#[test]
fn serve_single_node_from_server_properties() {
    for voters in ["own", "none"] {
        let node = NodeFiles::new();
        let (data, port) = (&node.data, node.port);
        if voters == "own" {
            node.write(&node.own_voter(), "");
            let id = random_uuid();
            let format = corelog(&["storage", "format", "-t", &id, "-c", node.config_arg()]);
            assert!(format.status.success(), "{}", format.stderr);
        } else {
            node.write("", "");
        }
        let broker = node.start();
        // Auto-created with the file's num.partitions (2); the client
        // follows advertised.listeners (localhost) after bootstrapping.
        round_trip(&broker, &format!("props-{voters}"), 200);
        assert_eq!(served_cluster_id(&broker), meta_value(data, "cluster.id"));
        let mut conn = Conn::connect(broker.addr());
        let metadata = conn.metadata(12, &[&format!("props-{voters}")]);
        assert_eq!(metadata.topics[0].partitions.len(), 2);
        assert_eq!(metadata.brokers[0].host.as_str(), "localhost");
        assert_eq!(metadata.brokers[0].port, i32::from(port));
        assert!(data.join(format!("props-{voters}-0")).is_dir());
        let stderr = broker.stderr();
        assert_eq!(
            stderr.matches("ignoring 2 config(s)").count(),
            1,
            "{stderr}"
        );
    }
}

#[test]
fn serve_a_zookeeper_era_server_properties() {
    // The quickstart file of Kafka before KRaft: broker.id, zookeeper.connect,
    // no process.roles, no controller listener.
    let node = NodeFiles::new();
    let text = format!(
        "broker.id=0\n\
         listeners=PLAINTEXT://127.0.0.1:{}\n\
         num.network.threads=3\n\
         log.dirs={}\n\
         num.partitions=2\n\
         offsets.topic.replication.factor=1\n\
         log.retention.hours=168\n\
         zookeeper.connect=localhost:2181\n\
         zookeeper.connection.timeout.ms=18000\n",
        node.port,
        node.data.display()
    );
    fs::write(&node.config, text).unwrap();
    let broker = node.start();
    round_trip(&broker, "zk-era", 50);
    assert_eq!(
        meta_value(&node.data, "node.id"),
        "0",
        "broker.id is node.id"
    );
    let stderr = broker.stderr();
    assert!(
        stderr.contains("zookeeper.connect is ignored"),
        "a clear word about ZooKeeper: {stderr}"
    );
    assert!(
        !stderr.contains("controller.listener.names"),
        "nothing about keys the file does not have: {stderr}"
    );
}

#[test]
fn embedded_default_formats_itself() {
    let mut broker = Broker::start();
    let data = broker.data_dir().to_path_buf();
    let id = meta_value(&data, "cluster.id");
    assert_eq!(id.len(), 22);
    assert_eq!(meta_value(&data, "node.id"), "1");
    assert_eq!(served_cluster_id(&broker), id);
    broker.graceful_restart();
    assert_eq!(meta_value(&data, "cluster.id"), id, "kept across restarts");
    assert_eq!(served_cluster_id(&broker), id);
}

#[test]
fn pre_meta_properties_data_dir_keeps_its_topics() {
    let mut broker = Broker::start();
    let data = broker.data_dir().to_path_buf();
    broker.create_topic("old", 2, &[]);
    round_trip(&broker, "old", 50);
    let id = served_cluster_id(&broker);
    let (status, _) = broker.terminate();
    assert!(status.success());
    // A data dir from before meta.properties: the catalog alone.
    fs::remove_file(data.join("meta.properties")).unwrap();

    broker.restart();
    assert_eq!(meta_value(&data, "cluster.id"), id, "the catalog's id");
    assert_eq!(served_cluster_id(&broker), id);
    let consumed = consume(&broker, "old", 2, 50, Duration::from_secs(30));
    assert_eq!(consumed.len(), 50, "the old topic's data is still there");
}

/// A base port where `nodes` dev-cluster nodes find their client,
/// controller and HTTP ports free.
fn dev_cluster_base_port(nodes: u16) -> u16 {
    for _ in 0..50 {
        let base = free_port();
        if base > 65_000 {
            continue;
        }
        let ports = (0..nodes).flat_map(|i| [base + i, base + 101 + i, base + 201 + i]);
        let held: Result<Vec<TcpListener>, _> = ports
            .map(|p| TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], p))))
            .collect();
        if held.is_ok() {
            return base;
        }
    }
    panic!("no free port range for a dev cluster");
}

/// Kills the dev-cluster process (and so its nodes' supervisor) if the
/// test fails before it stops cleanly.
struct DevCluster(Option<Child>);

impl Drop for DevCluster {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            signal(&child, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(30);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: kill(2) on our own child, which has not been reaped yet.
    unsafe { libc::kill(pid, sig) };
}

#[test]
fn dev_cluster_formats_and_runs_nodes_and_forwards_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let base = dev_cluster_base_port(2);
    let child = Command::new(env!("CARGO_BIN_EXE_corelog"))
        .args([
            "dev-cluster",
            "--nodes",
            "2",
            "--base-port",
            &base.to_string(),
        ])
        .arg("--dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn dev-cluster");
    let mut cluster = DevCluster(Some(child));
    let stdout = cluster.0.as_mut().unwrap().stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    let bootstrap = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Some(list) = line.strip_prefix("bootstrap servers: ") {
                    break list.to_string();
                }
            }
            Err(e) => panic!("no bootstrap list from dev-cluster: {e}"),
        }
    };
    assert_eq!(
        bootstrap,
        format!("127.0.0.1:{},127.0.0.1:{}", base, base + 1)
    );
    let id = meta_value(&dir.path().join("node1"), "cluster.id");
    assert_eq!(meta_value(&dir.path().join("node2"), "cluster.id"), id);
    assert_eq!(meta_value(&dir.path().join("node2"), "node.id"), "2");
    let node2 = fs::read_to_string(dir.path().join("node2.properties")).unwrap();
    assert!(
        node2.contains(&format!(
            "controller.quorum.voters=1@127.0.0.1:{},2@127.0.0.1:{}",
            base + 101,
            base + 102
        )),
        "{node2}"
    );
    for port in [base, base + 1] {
        let mut conn = Conn::connect(SocketAddr::from(([127, 0, 0, 1], port)));
        let metadata = conn.metadata(12, &[]);
        assert_eq!(metadata.cluster_id.map(|c| c.to_string()), Some(id.clone()));
    }

    let mut child = cluster.0.take().unwrap();
    signal(&child, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            cluster.0 = Some(child);
            panic!("dev-cluster did not stop within 60 s of SIGTERM");
        }
        thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "dev-cluster exited with {status}");
    for node in ["node1.log", "node2.log"] {
        let log = fs::read_to_string(dir.path().join(node)).unwrap();
        assert!(
            log.contains("shard-stats"),
            "{node} did not stop cleanly:\n{log}"
        );
    }
    let listening: Vec<u16> = [base, base + 1]
        .into_iter()
        .filter(|p| common::listening(SocketAddr::from(([127, 0, 0, 1], *p))))
        .collect();
    assert!(listening.is_empty(), "nodes still listening: {listening:?}");
}

#[test]
fn cluster_configs_from_the_file_are_described_and_topic_ones_altered() {
    let node = NodeFiles::new();
    node.write("", "min.insync.replicas=2\nreplica.lag.time.max.ms=12345\n");
    let broker = node.start();
    let bootstrap = broker.bootstrap();
    let configs = |rest: &[&str]| {
        let args = [&["configs", "--bootstrap-server", &bootstrap][..], rest].concat();
        corelog(&args)
    };
    let brokers = ["--entity-type", "brokers", "--entity-name", "1"];
    let described = configs(&[&brokers[..], &["--describe", "--all"]].concat());
    assert!(described.success(), "{}", described.stderr);
    for line in [
        "min.insync.replicas=2 sensitive=false synonyms={STATIC_BROKER_CONFIG:min.insync.replicas=2",
        "replica.lag.time.max.ms=12345 sensitive=false synonyms={STATIC_BROKER_CONFIG:",
        "unclean.leader.election.enable=false sensitive=false synonyms={DEFAULT_CONFIG:",
        "offsets.topic.replication.factor=3 sensitive=false",
        "default.replication.factor=1 sensitive=false",
    ] {
        assert!(described.stdout.contains(line), "no {line:?} in\n{}", described.stdout);
    }

    broker.create_topic("guarded", 1, &[("unclean.leader.election.enable", "true")]);
    let topic = ["--entity-type", "topics", "--entity-name", "guarded"];
    let altered = configs(
        &[
            &topic[..],
            &["--alter", "--add-config", "min.insync.replicas=3"],
        ]
        .concat(),
    );
    assert!(altered.success(), "{}", altered.stderr);
    let described = configs(&[&topic[..], &["--describe", "--all"]].concat());
    for line in [
        "min.insync.replicas=3 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:min.insync.replicas=3, STATIC_BROKER_CONFIG:min.insync.replicas=2",
        "unclean.leader.election.enable=true sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:",
    ] {
        assert!(described.stdout.contains(line), "no {line:?} in\n{}", described.stdout);
    }
    for bad in [
        "min.insync.replicas=0",
        "unclean.leader.election.enable=maybe",
    ] {
        let refused = configs(&[&topic[..], &["--alter", "--add-config", bad]].concat());
        assert!(!refused.success(), "{bad} was accepted");
        assert!(
            refused.stderr.contains("Invalid config"),
            "{}",
            refused.stderr
        );
    }
}
