//! The operator CLI against a multi-node cluster: `metadata-quorum describe`
//! on three controller+broker nodes; a broker-only node (`process.roles=
//! broker`) that registers, leads partitions and serves clients; and the
//! data-path tools (console producer and consumer, delete-records,
//! consumer-groups) reaching each partition's leader and each group's
//! coordinator whichever broker they bootstrap from.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::cluster::{eventually, Cluster};
use common::raw::Conn;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::Message;

use common::{cli_create_topic as create_topic, corelog_ok as ok};

/// `Key:   value` lines of `describe --status`.
fn status(bootstrap: &str) -> BTreeMap<String, String> {
    let run = ok(
        &[
            "metadata-quorum",
            "--bootstrap-server",
            bootstrap,
            "describe",
            "--status",
        ],
        "",
    );
    run.stdout
        .lines()
        .map(|line| {
            let (key, value) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("not a key: value line: {line:?}\n{run:?}"));
            (key.to_string(), value.trim().to_string())
        })
        .collect()
}

/// The `"id": N` entries of a CurrentVoters / CurrentObservers list.
fn ids(list: &str) -> BTreeSet<i32> {
    list.split("\"id\": ")
        .skip(1)
        .map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().expect("an id")
        })
        .collect()
}

struct ReplicationRow {
    node: i32,
    directory: String,
    log_end_offset: i64,
    lag: i64,
    last_fetch: i64,
    status: String,
}

/// The table of `describe --replication`.
fn replication(bootstrap: &str) -> Vec<ReplicationRow> {
    let run = ok(
        &[
            "metadata-quorum",
            "--bootstrap-server",
            bootstrap,
            "describe",
            "--replication",
        ],
        "",
    );
    let mut lines = run.stdout.lines();
    let header: Vec<&str> = lines.next().expect("a header").split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NodeId",
            "DirectoryId",
            "LogEndOffset",
            "Lag",
            "LastFetchTimestamp",
            "LastCaughtUpTimestamp",
            "Status"
        ],
        "{run:?}"
    );
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cells.len(), 7, "{line:?}");
            let number = |i: usize| -> i64 {
                cells[i]
                    .parse()
                    .unwrap_or_else(|_| panic!("column {} of {line:?} is a number", header[i]))
            };
            ReplicationRow {
                node: number(0) as i32,
                directory: cells[1].to_string(),
                log_end_offset: number(2),
                lag: number(3),
                last_fetch: number(4),
                status: cells[6].to_string(),
            }
        })
        .collect()
}

/// Each node's log directory id, as `describe --replication` shows it.
fn directory_ids(bootstrap: &str) -> BTreeMap<i32, String> {
    replication(bootstrap)
        .into_iter()
        .map(|r| (r.node, r.directory))
        .collect()
}

#[test]
fn metadata_quorum_shows_each_nodes_directory_id_across_restarts() {
    let mut cluster = Cluster::start_with(3, 0, 1, &[]);
    let mut before = BTreeMap::new();
    eventually(
        "every voter's directory id",
        Duration::from_secs(30),
        || {
            before = directory_ids(&cluster.bootstrap(0));
            before.len() == 3 && before.values().all(|d| d != "AAAAAAAAAAAAAAAAAAAAAA")
        },
    );
    let distinct: BTreeSet<&String> = before.values().collect();
    assert_eq!(distinct.len(), 3, "{before:?}");
    for (node, id) in &before {
        assert_eq!(id.len(), 22, "{before:?}");
        let meta =
            std::fs::read_to_string(cluster.data_dir(*node).join("meta.properties")).unwrap();
        assert!(meta.contains(&format!("directory.id={id}")), "{meta}");
    }
    // A restarted node keeps its id.
    assert!(cluster.terminate(2));
    cluster.spawn(2);
    cluster.wait_ready(2);
    let mut after = BTreeMap::new();
    eventually("the ids after a restart", Duration::from_secs(30), || {
        after = directory_ids(&cluster.bootstrap(0));
        after == before
    });
}

#[test]
fn metadata_quorum_describes_the_voters_and_their_leader() {
    let cluster = Cluster::start(3);
    let mut leader = None;
    eventually("a controller is elected", Duration::from_secs(20), || {
        leader = cluster.quorum_leader(0);
        leader.is_some()
    });
    let leader = leader.unwrap();
    let mut cluster_ids = BTreeSet::new();
    for i in 0..3 {
        // Any broker answers for the active controller.
        let status = status(&cluster.bootstrap(i));
        let number = |key: &str| -> i64 {
            status
                .get(key)
                .unwrap_or_else(|| panic!("{key} missing: {status:?}"))
                .parse()
                .unwrap_or_else(|_| panic!("{key} is a number: {status:?}"))
        };
        cluster_ids.insert(status["ClusterId"].clone());
        assert_eq!(number("LeaderId"), leader as i64, "{status:?}");
        assert!(number("LeaderEpoch") >= 1, "{status:?}");
        assert!(number("HighWatermark") > 0, "{status:?}");
        assert!(number("MaxFollowerLag") >= 0, "{status:?}");
        assert!(number("MaxFollowerLagTimeMs") >= -1, "{status:?}");
        assert_eq!(
            ids(&status["CurrentVoters"]),
            BTreeSet::from([1, 2, 3]),
            "{status:?}"
        );
        assert!(
            status["CurrentVoters"].contains("CONTROLLER://127.0.0.1:"),
            "voters name their controller endpoints: {status:?}"
        );
        assert_eq!(status["CurrentObservers"], "[]", "{status:?}");
    }
    assert_eq!(cluster_ids.len(), 1, "one cluster id: {cluster_ids:?}");
    assert_eq!(cluster_ids.first().unwrap().len(), 22);

    let rows = replication(&cluster.bootstrap(1));
    assert_eq!(rows.len(), 3);
    let leaders: Vec<&ReplicationRow> = rows.iter().filter(|r| r.status == "Leader").collect();
    assert_eq!(leaders.len(), 1, "one leader");
    assert_eq!(leaders[0].node, leader);
    assert_eq!(leaders[0].lag, 0);
    assert_eq!(rows[0].status, "Leader", "the leader comes first");
    let followers: BTreeSet<i32> = rows
        .iter()
        .filter(|r| r.status == "Follower")
        .map(|r| r.node)
        .collect();
    let expected: BTreeSet<i32> = (1..=3).filter(|id| *id != leader).collect();
    assert_eq!(followers, expected);
    for row in &rows {
        assert!(row.log_end_offset > 0, "node {}", row.node);
        assert_eq!(
            row.lag,
            leaders[0].log_end_offset - row.log_end_offset,
            "lag is the distance to the leader's log end"
        );
        assert!(row.lag >= 0 && row.last_fetch > 0, "node {}", row.node);
    }
}

#[test]
fn a_broker_only_node_registers_leads_partitions_and_serves_clients() {
    let cluster = Cluster::start_with_brokers(3, 1);
    let broker_only = cluster.index_of(4);
    assert!(!cluster.nodes[broker_only].controller);
    // Every broker, the broker-only one included, lists all four.
    for i in 0..4 {
        eventually(
            "every broker lists the broker-only node",
            Duration::from_secs(20),
            || cluster.brokers(i) == [1, 2, 3, 4],
        );
    }
    // Topics created through it get leaders on it too.
    let bootstrap = cluster.bootstrap(broker_only);
    create_topic(&bootstrap, "edge", "8");
    for i in 0..4 {
        eventually("the topic is known", Duration::from_secs(10), || {
            cluster.metadata(i, "edge").topics[0].error_code == 0
        });
        let leaders = cluster.leaders(i, "edge");
        let led_by_4 = leaders.iter().filter(|(_, l)| *l == 4).count();
        assert_eq!(led_by_4, 2, "node {i}: leaders spread: {leaders:?}");
    }
    // It is an observer of the metadata quorum, not a voter.
    eventually(
        "the broker-only node shows as an observer",
        Duration::from_secs(10),
        || ids(&status(&bootstrap)["CurrentObservers"]) == BTreeSet::from([4]),
    );
    let status = status(&bootstrap);
    assert_eq!(ids(&status["CurrentVoters"]), BTreeSet::from([1, 2, 3]));
    // Its progress arrives with its heartbeats: the first one (at
    // registration) reports no metadata applied yet.
    eventually(
        "the observer reports the metadata it applied",
        Duration::from_secs(10),
        || {
            let rows = replication(&cluster.bootstrap(0));
            let observers: Vec<&ReplicationRow> =
                rows.iter().filter(|r| r.status == "Observer").collect();
            assert_eq!(observers.len(), 1);
            assert_eq!(observers[0].node, 4);
            assert!(observers[0].lag >= 0);
            observers[0].log_end_offset > 0
        },
    );

    // librdkafka bootstrapped at the broker-only node alone: idempotent
    // acks=all produce to every partition, then a group consumer reads it.
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "30000")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let total = 800;
    for i in 0..total {
        let value = format!("v{i}");
        producer
            .send(
                BaseRecord::<(), _>::to("edge")
                    .partition(i % 8)
                    .payload(&value),
            )
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).expect("all acked");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "edge-readers")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["edge"]).unwrap();
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < total as usize && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.expect("no consume error");
            let value = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
            assert!(seen.insert(value), "each message once");
        }
    }
    assert_eq!(
        seen.len(),
        total as usize,
        "every acknowledged message is read"
    );
    // The partitions it leads hold their share on its own disk.
    let mut conn = Conn::connect(cluster.addr(broker_only));
    for (partition, leader) in cluster.leaders(broker_only, "edge") {
        if leader == 4 {
            let (error, end) = conn.list_offset(1, "edge", partition, -1);
            assert_eq!((error, end), (0, 100), "edge-{partition}");
        }
    }
}

#[test]
fn data_path_tools_follow_partition_leaders_and_group_coordinators() {
    let cluster = Cluster::start(3);
    let first = cluster.bootstrap(0);
    create_topic(&first, "routed", "6");
    let mut leaders = Vec::new();
    eventually("leaders everywhere", Duration::from_secs(10), || {
        leaders = cluster.leaders(0, "routed");
        leaders.len() == 6 && leaders.iter().all(|(_, l)| *l > 0)
    });
    let led_by: BTreeSet<i32> = leaders.iter().map(|(_, l)| *l).collect();
    assert_eq!(led_by, BTreeSet::from([1, 2, 3]), "{leaders:?}");

    // The producer bootstraps at node 1 only and writes every partition.
    let input: String = (0..600).map(|i| format!("k{i}:m{i}\n")).collect();
    ok(
        &[
            "console-producer",
            "--bootstrap-server",
            &first,
            "--topic",
            "routed",
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=:",
        ],
        &input,
    );
    let mut conn = Conn::connect(cluster.addr(0));
    let mut ends = BTreeMap::new();
    for &(partition, leader) in &leaders {
        let mut at_leader = Conn::connect(cluster.addr(cluster.index_of(leader)));
        let (error, end) = at_leader.list_offset(1, "routed", partition, -1);
        assert_eq!(error, 0, "routed-{partition} at its leader {leader}");
        assert!(end > 0, "routed-{partition} got records");
        ends.insert(partition, end);
    }
    assert_eq!(ends.values().sum::<i64>(), 600);

    // The consumer bootstraps at node 2 and reads all of it, then commits
    // as a group through the group's coordinator.
    let consumed = ok(
        &[
            "console-consumer",
            "--bootstrap-server",
            &cluster.bootstrap(1),
            "--topic",
            "routed",
            "--group",
            "routed-readers",
            "--from-beginning",
            "--max-messages",
            "600",
            "--timeout-ms",
            "10000",
        ],
        "",
    );
    let got: BTreeSet<&str> = consumed.stdout.lines().collect();
    let wanted: BTreeSet<String> = (0..600).map(|i| format!("m{i}")).collect();
    assert_eq!(got.len(), 600, "{consumed:?}");
    assert!(wanted.iter().all(|w| got.contains(w.as_str())));

    // consumer-groups through every broker: the committed offsets are the
    // log ends, whichever broker is asked.
    for i in 0..3 {
        let run = ok(
            &[
                "consumer-groups",
                "--bootstrap-server",
                &cluster.bootstrap(i),
                "--describe",
                "--group",
                "routed-readers",
            ],
            "",
        );
        let rows: Vec<Vec<&str>> = run
            .stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|cells| cells.first() == Some(&"routed-readers"))
            .collect();
        assert_eq!(rows.len(), 6, "node {i}: {run:?}");
        for cells in rows {
            let partition: i32 = cells[2].parse().unwrap();
            assert_eq!(cells[3], ends[&partition].to_string(), "{run:?}");
            assert_eq!(cells[5], "0", "no lag: {run:?}");
        }
        let listed = ok(
            &[
                "consumer-groups",
                "--bootstrap-server",
                &cluster.bootstrap(i),
                "--list",
            ],
            "",
        );
        assert!(
            listed.stdout.lines().any(|l| l == "routed-readers"),
            "node {i} lists the group: {listed:?}"
        );
    }

    // delete-records on a partition that node 1 does not lead.
    let (partition, leader) = *leaders
        .iter()
        .find(|(_, l)| *l != 1)
        .expect("a partition led elsewhere");
    let run = ok(
        &[
            "delete-records",
            "--bootstrap-server",
            &first,
            "--topic",
            "routed",
            "--partition",
            &partition.to_string(),
            "--before-offset",
            "3",
        ],
        "",
    );
    assert!(
        run.stdout
            .contains(&format!("partition: routed-{partition}\tlow_watermark: 3")),
        "{run:?}"
    );
    let mut at_leader = Conn::connect(cluster.addr(cluster.index_of(leader)));
    assert_eq!(at_leader.list_offset(1, "routed", partition, -2), (0, 3));
    // The bootstrap broker does not lead it: it says so rather than answer.
    let (error, _) = conn.list_offset(1, "routed", partition, -2);
    assert_eq!(error, 6, "NOT_LEADER_OR_FOLLOWER from a non-leader");
}
