//! `/metrics`' replication, quorum, group and profile families after known
//! traffic, with exact values: a group's committed offsets and lag
//! against the partitions' ends, its members and state while a consumer
//! is in it and after it left; a 3-node cluster's under-replicated
//! partitions, ISR shrinks, Raft figures and offline partitions as
//! brokers stop. Every wait is bounded.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::cluster::{create_topic, eventually, Cluster};
use common::{produce_numbered, Broker, BrokerOptions};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

/// GET /metrics, parsed by a real Prometheus parser; None when the node
/// does not answer 200 (stopped, starting).
fn try_scrape(addr: SocketAddr) -> Option<prometheus_parse::Scrape> {
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT).ok()?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT)).ok()?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT)).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut out = Vec::new();
    stream.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    let lines = body.lines().map(|l| Ok(l.to_string()));
    Some(prometheus_parse::Scrape::parse(lines).expect("Prometheus text parses"))
}

fn scrape(addr: SocketAddr) -> prometheus_parse::Scrape {
    try_scrape(addr).unwrap_or_else(|| panic!("no 200 from http://{addr}/metrics"))
}

fn number(value: &prometheus_parse::Value) -> f64 {
    match value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => *v,
        other => panic!("not a number: {other:?}"),
    }
}

/// The values of `metric`'s samples whose labels include all of `labels`.
fn values(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| number(&s.value))
        .collect()
}

/// The one sample of `metric` with `labels`; panics unless exactly one.
fn one(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let found = values(scrape, metric, labels);
    assert_eq!(found.len(), 1, "{metric} {labels:?}: {found:?}");
    found[0]
}

/// Each `state` label of `group`'s state samples, with its value.
fn group_states(scrape: &prometheus_parse::Scrape, group: &str) -> BTreeMap<String, f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == "corelog_group_state" && s.labels.get("group") == Some(group))
        .map(|s| (s.labels.get("state").unwrap().to_string(), number(&s.value)))
        .collect()
}

#[test]
fn a_groups_offsets_lag_members_and_state_are_exact() {
    const PARTITIONS: i32 = 4;
    const RECORDS: usize = 103;
    let broker = Broker::start_with(BrokerOptions::default().shards(2));
    let http = broker.http_addr();
    let topic = "lagged";
    broker.create_topic(topic, PARTITIONS, &[]);
    // Record i goes to partition i % 4: ends 26, 26, 26, 25.
    produce_numbered(&broker, topic, PARTITIONS, 0, RECORDS);
    let end = |p: i32| (RECORDS as i32 - p + PARTITIONS - 1) / PARTITIONS;

    let group = "lag-watchers";
    let consumer: BaseConsumer = broker
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "10000")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while common::assigned(&consumer).len() < PARTITIONS as usize {
        assert!(Instant::now() < deadline, "no assignment within 30 s");
        consumer.poll(Duration::from_millis(100));
    }
    // Committed offset of partition p: 3 + 5p (partition 3: 18 of 25).
    let committed = |p: i32| i64::from(3 + 5 * p);
    let mut offsets = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        offsets
            .add_partition_offset(topic, p, Offset::Offset(committed(p)))
            .unwrap();
    }
    consumer.commit(&offsets, CommitMode::Sync).unwrap();

    let s = scrape(http);
    for p in 0..PARTITIONS {
        let labels = [
            ("group", group),
            ("topic", topic),
            ("partition", &p.to_string()),
        ];
        let labels: Vec<(&str, &str)> = labels.to_vec();
        assert_eq!(
            one(&s, "corelog_group_committed_offset", &labels),
            committed(p) as f64
        );
        assert_eq!(
            one(&s, "corelog_group_lag", &labels),
            (i64::from(end(p)) - committed(p)) as f64,
            "partition {p}: end {} minus committed {}",
            end(p),
            committed(p)
        );
        // The lag's end is the partition's high watermark.
        assert_eq!(
            one(
                &s,
                "corelog_partition_high_watermark",
                &[("topic", topic), ("partition", &p.to_string())]
            ),
            f64::from(end(p))
        );
    }
    assert_eq!(one(&s, "corelog_group_members", &[("group", group)]), 1.0);
    assert_eq!(
        group_states(&s, group),
        BTreeMap::from([("Stable".to_string(), 1.0)]),
        "one sample per group, 1 for its state"
    );
    let rebalances = one(&s, "corelog_group_rebalances_total", &[("group", group)]);
    assert!(rebalances >= 1.0, "the join was a rebalance");
    // A single node leads everything and replicates nothing.
    assert_eq!(one(&s, "corelog_partitions_under_replicated", &[]), 0.0);
    assert_eq!(one(&s, "corelog_partitions_under_min_isr", &[]), 0.0);
    assert_eq!(one(&s, "corelog_partitions_offline", &[]), 0.0);
    assert_eq!(
        one(&s, "corelog_partitions_leader", &[]),
        values(&s, "corelog_shard_partitions", &[])
            .iter()
            .sum::<f64>()
    );
    assert!(values(&s, "corelog_follower_lag_records", &[]).is_empty());
    assert!(values(&s, "corelog_raft_term", &[]).is_empty(), "no quorum");
    assert_eq!(one(&s, "corelog_leader_elections_total", &[]), 0.0);
    assert_eq!(
        one(&s, "corelog_config_profile_info", &[("profile", "default")]),
        1.0
    );

    // The consumer leaves: the group is empty, its offsets stay.
    drop(consumer);
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let s = loop {
        let s = scrape(http);
        let states = group_states(&s, group);
        if states == BTreeMap::from([("Empty".to_string(), 1.0)]) {
            break s;
        }
        assert!(Instant::now() < deadline, "not Empty within 30 s: {last}");
        last = format!("{states:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(one(&s, "corelog_group_members", &[("group", group)]), 0.0);
    assert!(one(&s, "corelog_group_rebalances_total", &[("group", group)]) > rebalances);
    let lag3 = [("group", group), ("topic", topic), ("partition", "3")];
    assert_eq!(one(&s, "corelog_group_lag", &lag3), (25 - 18) as f64);
}

#[test]
fn the_profile_is_named_after_its_file() {
    let broker = Broker::start_with(BrokerOptions::default().tuning("ring_depth = 256\n"));
    let s = scrape(broker.http_addr());
    // The test harness writes the profile as tuning.toml.
    assert_eq!(
        one(&s, "corelog_config_profile_info", &[("profile", "tuning")]),
        1.0
    );
    assert_eq!(values(&s, "corelog_config_profile_info", &[]).len(), 1);
}

fn http(cluster: &Cluster, i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], cluster.nodes[i].http_port))
}

fn total(cluster: &Cluster, i: usize, metric: &str) -> f64 {
    values(&scrape(http(cluster, i)), metric, &[]).iter().sum()
}

#[test]
fn a_clusters_replication_and_quorum_figures() {
    // A short lag time so the ISR shrinks within the test.
    let mut cluster = Cluster::start_with(3, 0, 1, &["replica.lag.time.max.ms=3000"]);
    for i in 0..3 {
        cluster.wait_ready(i);
    }
    let topic = "watched";
    create_topic(
        &cluster.bootstrap(0),
        topic,
        1,
        3,
        &[("min.insync.replicas", "2")],
    )
    .expect("create watched");
    eventually("watched in sync", Duration::from_secs(60), || {
        let parts = cluster.partitions_from_any(topic);
        parts.len() == 1 && parts[0].isr.len() == 3
    });
    // Ten records, acknowledged by the whole ISR.
    let producer = common::logged_producer(
        rdkafka::ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_all())
            .set("broker.address.family", "v4")
            .set("acks", "all")
            .set("message.timeout.ms", "30000"),
    );
    for i in 0..10usize {
        let value = i.to_string();
        common::send_record(
            &producer,
            rdkafka::producer::BaseRecord::<str, str, usize>::with_opaque_to(topic, i)
                .partition(0)
                .payload(value.as_str()),
        );
    }
    common::flush(&producer, Duration::from_secs(30));
    let view = cluster.partitions_from_any(topic)[0].clone();
    let leader = cluster.index_of(view.leader);

    // Healthy: nothing under-replicated or offline, and every voter agrees
    // on the active controller and its term.
    let mut scrapes = Vec::new();
    eventually(
        "every node reports a healthy cluster with one controller",
        Duration::from_secs(30),
        || {
            scrapes = (0..3)
                .filter_map(|i| try_scrape(http(&cluster, i)))
                .collect();
            let agreed = |metric: &str| {
                let seen: Vec<Vec<f64>> = scrapes.iter().map(|s| values(s, metric, &[])).collect();
                seen.len() == 3 && seen.iter().all(|v| v.len() == 1 && v == &seen[0])
            };
            scrapes.len() == 3
                && scrapes.iter().all(|s| {
                    values(s, "corelog_partitions_under_replicated", &[]) == [0.0]
                        && values(s, "corelog_partitions_offline", &[]) == [0.0]
                })
                && agreed("corelog_raft_leader")
                && agreed("corelog_raft_term")
        },
    );
    let controller = one(&scrapes[0], "corelog_raft_leader", &[]);
    assert!(
        (1.0..=3.0).contains(&controller),
        "a known active controller: {controller}"
    );
    for s in &scrapes {
        let term = one(s, "corelog_raft_term", &[]);
        let commit = one(s, "corelog_raft_commit_index", &[]);
        let applied = one(s, "corelog_raft_applied_index", &[]);
        assert!(term >= 1.0 && commit >= 1.0, "term {term}, commit {commit}");
        assert!(applied <= commit, "applied {applied} <= commit {commit}");
        assert_eq!(one(s, "corelog_raft_apply_lag", &[]), commit - applied);
    }
    // The partition is led once, by its leader.
    let led: Vec<f64> = scrapes
        .iter()
        .map(|s| one(s, "corelog_partitions_leader", &[]))
        .collect();
    assert_eq!(led.iter().sum::<f64>(), 1.0, "{led:?}");
    assert_eq!(led[leader], 1.0, "{led:?}");
    // The leader sees both followers, caught up.
    let leader_scrape = &scrapes[leader];
    for follower in view.replicas.iter().filter(|r| **r != view.leader) {
        let labels = [
            ("topic", topic),
            ("partition", "0"),
            ("replica", &follower.to_string()),
        ];
        let labels: Vec<(&str, &str)> = labels.to_vec();
        assert_eq!(
            one(leader_scrape, "corelog_follower_lag_records", &labels),
            0.0
        );
        // At most the time since its last fetch, far below the lag time.
        let behind = one(leader_scrape, "corelog_follower_lag_seconds", &labels);
        assert!((0.0..3.0).contains(&behind), "{behind}");
    }
    let shrinks_before = one(leader_scrape, "corelog_isr_shrinks_total", &[]);

    // A follower broker stops: its partition is under-replicated on the
    // leader, which counts the ISR shrink.
    let stopped = (0..3).find(|i| *i != leader).unwrap();
    cluster.kill9(stopped);
    eventually(
        "the leader reports the partition under-replicated",
        Duration::from_secs(30),
        || total(&cluster, leader, "corelog_partitions_under_replicated") == 1.0,
    );
    eventually(
        "the leader counts the ISR shrink",
        Duration::from_secs(30),
        || total(&cluster, leader, "corelog_isr_shrinks_total") == shrinks_before + 1.0,
    );
    let s = scrape(http(&cluster, leader));
    assert_eq!(
        one(&s, "corelog_partitions_under_min_isr", &[]),
        0.0,
        "two of three in sync meet min.insync.replicas=2"
    );
    // The stopped follower fetches no more: its lag in time grows past the
    // lag time (which is what takes it out of the ISR).
    let stopped_id = cluster.nodes[stopped].id.to_string();
    let labels = [
        ("topic", topic),
        ("partition", "0"),
        ("replica", stopped_id.as_str()),
    ];
    eventually(
        "the stopped follower's lag passes the lag time",
        Duration::from_secs(30),
        || {
            one(
                &scrape(http(&cluster, leader)),
                "corelog_follower_lag_seconds",
                &labels,
            ) > 3.0
        },
    );

    // It comes back and rejoins: healthy again.
    cluster.spawn(stopped);
    cluster.wait_ready(stopped);
    eventually("the follower rejoins", Duration::from_secs(60), || {
        total(&cluster, leader, "corelog_partitions_under_replicated") == 0.0
            && total(&cluster, leader, "corelog_isr_expands_total") >= 1.0
    });

    // The partition's leader stops. It also holds the only replica of one
    // of `lonely`'s partitions (RF=1, three partitions spread one per
    // broker): that one has no live leader, and the two running nodes (a
    // controller majority) count it offline once the controller fenced the
    // broker; the controller elects a new leader of `watched`, one
    // election.
    let lonely = "lonely";
    create_topic(&cluster.bootstrap(0), lonely, 3, 1, &[]).expect("create lonely");
    let doomed_id = cluster.partitions_from_any(topic)[0].leader;
    let mut doomed_lonely = 0;
    eventually("lonely has leaders", Duration::from_secs(30), || {
        let parts = cluster.partitions_from_any(lonely);
        doomed_lonely = parts.iter().filter(|p| p.leader == doomed_id).count();
        parts.len() == 3 && parts.iter().all(|p| p.leader > 0) && doomed_lonely > 0
    });
    let doomed = cluster.index_of(doomed_id);
    let running: Vec<usize> = (0..3).filter(|i| *i != doomed).collect();
    for i in &running {
        assert_eq!(total(&cluster, *i, "corelog_partitions_offline"), 0.0);
    }
    let elections = |cluster: &Cluster| -> f64 {
        running
            .iter()
            .map(|i| total(cluster, *i, "corelog_leader_elections_total"))
            .sum()
    };
    assert_eq!(elections(&cluster), 0.0, "no leader moved yet");
    cluster.kill9(doomed);
    eventually(
        "the partition counts as offline on the running nodes",
        Duration::from_secs(60),
        || {
            running
                .iter()
                .all(|i| total(&cluster, *i, "corelog_partitions_offline") == doomed_lonely as f64)
        },
    );
    eventually(
        "the controller counts the election",
        Duration::from_secs(30),
        || elections(&cluster) == 1.0,
    );
    let new_leader = cluster.partitions(running[0], topic)[0].leader;
    assert!(new_leader != doomed_id && new_leader > 0);
}
