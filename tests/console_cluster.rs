//! The console's API and group lag across a 3-node cluster, all read from
//! ONE node's API: a topic's offsets and sizes for partitions each of the
//! three brokers leads, records of a partition another broker leads, a
//! group another broker coordinates listed, described (members, exact
//! lag) and its offsets reset; `/metrics` of the group's coordinator with
//! the lag of partitions other brokers lead, each (group, partition) lag
//! series exported by exactly one node; and with one broker stalled
//! (SIGSTOP: connections taken, nothing answered) and then stopped, the
//! API and the scrape still answering within their deadlines, marking what
//! is missing. Every wait is bounded.

mod common;

#[path = "console/http.rs"]
mod http;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::cluster::{create_topic, eventually, Cluster};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};

const TOPIC: &str = "spread";
const WAIT: Duration = Duration::from_secs(60);

fn api(cluster: &Cluster, i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], cluster.nodes[i].http_port))
}

/// GET of the API, which must answer 200, as JSON.
fn get_ok(addr: SocketAddr, path: &str) -> Value {
    let answer = http::get(addr, path);
    assert_eq!(answer.status, 200, "GET {path}: {answer:?}");
    answer.json()
}

/// Records produced to partition p: 10 (p + 1).
fn end(p: i32) -> i64 {
    10 * i64::from(p + 1)
}

fn consumer(cluster: &Cluster, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_all())
        .set("broker.address.family", "v4")
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "10000")
        .create()
        .unwrap()
}

fn commit(consumer: &BaseConsumer, offsets: &[(i32, i64)]) {
    let mut list = TopicPartitionList::new();
    for (p, o) in offsets {
        list.add_partition_offset(TOPIC, *p, Offset::Offset(*o))
            .unwrap();
    }
    consumer.commit(&list, CommitMode::Sync).expect("commit");
}

/// Every `corelog_group_lag` sample of a scrape: (group, topic,
/// partition) to its value.
fn lags(addr: SocketAddr) -> BTreeMap<(String, String, String), f64> {
    let text = http::get(addr, "/metrics");
    assert_eq!(text.status, 200, "{text:?}");
    let lines = text.body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text parses");
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == "corelog_group_lag")
        .map(|s| {
            let label = |k: &str| s.labels.get(k).unwrap_or("").to_string();
            let value = match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                ref other => panic!("not a gauge: {other:?}"),
            };
            ((label("group"), label("topic"), label("partition")), value)
        })
        .collect()
}

/// The one sample of an unlabelled family in a scrape.
fn gauge(addr: SocketAddr, metric: &str) -> f64 {
    let text = http::get(addr, "/metrics");
    let lines = text.body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text parses");
    let found: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .map(|s| match s.value {
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("not a gauge: {other:?}"),
        })
        .collect();
    assert_eq!(found.len(), 1, "{metric}: {found:?}");
    found[0]
}

fn partition(detail: &Value, p: i32) -> &Value {
    detail["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["partition"] == p)
        .unwrap_or_else(|| panic!("partition {p} in {detail}"))
}

fn group_offset(detail: &Value, p: i32) -> &Value {
    detail["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["topic"] == TOPIC && x["partition"] == p)
        .unwrap_or_else(|| panic!("{TOPIC}-{p} in {detail}"))
}

#[test]
fn one_nodes_console_answers_for_the_whole_cluster() {
    // A long broker session: a stopped broker stays registered (not
    // fenced, its partitions not moved) for the whole test, so the API
    // must say it did not answer.
    let mut cluster = Cluster::start_with(
        3,
        0,
        1,
        &[
            "http.console.enable=true",
            "broker.session.timeout.ms=120000",
        ],
    );
    let ids: Vec<i32> = cluster.nodes.iter().map(|n| n.id).collect();
    let here = api(&cluster, 0);
    // Three partitions over three brokers: each leads one (the
    // controller places leaders round-robin, as Kafka does).
    create_topic(&cluster.bootstrap(0), TOPIC, 3, 2, &[]).expect("create spread");
    let mut leaders: Vec<i32> = Vec::new();
    eventually("each partition has a leader, in sync", WAIT, || {
        let parts = cluster.partitions_from_any(TOPIC);
        leaders = parts.iter().map(|p| p.leader).collect();
        parts.len() == 3 && parts.iter().all(|p| p.leader > 0 && p.isr.len() == 2)
    });
    let led: BTreeSet<i32> = leaders.iter().copied().collect();
    assert_eq!(led, ids.iter().copied().collect(), "{leaders:?}");
    let producer = common::logged_producer(
        ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_all())
            .set("broker.address.family", "v4")
            .set("acks", "all")
            .set("message.timeout.ms", "30000"),
    );
    for p in 0..3 {
        for i in 0..end(p) as usize {
            let value = format!("p{p}-{i}");
            common::send_record(
                &producer,
                rdkafka::producer::BaseRecord::<str, str, usize>::with_opaque_to(TOPIC, i)
                    .partition(p)
                    .payload(value.as_str()),
            );
        }
    }
    common::flush(&producer, Duration::from_secs(30));

    // Offsets and sizes of partitions led by each of the three nodes, from
    // node 1's API.
    let detail = get_ok(here, &format!("/api/v1/topics/{TOPIC}"));
    assert_eq!(detail["unavailable"], json!([]), "{detail}");
    let mut sizes = 0;
    for p in 0..3 {
        let part = partition(&detail, p);
        assert_eq!(part["leader"], leaders[p as usize], "{part}");
        assert_eq!(part["log_start_offset"], 0, "{part}");
        assert_eq!(part["log_end_offset"], end(p), "{part}");
        let size = part["size_bytes"].as_i64().unwrap_or(0);
        assert!(size > 0, "partition {p} has a size on its leader: {part}");
        sizes += size;
    }
    let topics = get_ok(here, "/api/v1/topics");
    let listed = topics["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == TOPIC)
        .cloned()
        .unwrap();
    assert_eq!(listed["size_bytes"], sizes, "{listed}");
    assert_eq!(topics["unavailable"], json!([]));

    // Records of partitions led by the other nodes.
    for p in (0..3).filter(|p| leaders[*p as usize] != ids[0]) {
        let page = get_ok(
            here,
            &format!("/api/v1/topics/{TOPIC}/messages?partition={p}&offset=2&max=3"),
        );
        assert_eq!(page["leader"], leaders[p as usize], "{page}");
        assert_eq!(page["log_end_offset"], end(p), "{page}");
        let values: Vec<&str> = page["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["value"]["data"].as_str().unwrap())
            .collect();
        let wanted: Vec<String> = (2..5).map(|i| format!("p{p}-{i}")).collect();
        assert_eq!(values, wanted, "{page}");
        assert_eq!(page["next_offset"], 5);
    }

    // Groups with a commit each, spread over the coordinators; node 1's
    // list holds every one, with its coordinator.
    let candidates: Vec<String> = (0..12).map(|k| format!("watchers-{k}")).collect();
    for group in &candidates {
        commit(&consumer(&cluster, group), &[(0, 1)]);
    }
    let mut coordinators: BTreeMap<String, i64> = BTreeMap::new();
    eventually("node 1 lists every group", WAIT, || {
        let list = get_ok(here, "/api/v1/groups");
        coordinators = list["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| candidates.iter().any(|c| g["group_id"] == c.as_str()))
            .map(|g| {
                let id = g["group_id"].as_str().unwrap().to_string();
                (id, g["coordinator"].as_i64().unwrap())
            })
            .collect();
        coordinators.len() == candidates.len()
    });
    let (group, coordinator) = coordinators
        .iter()
        .find(|(_, c)| **c != i64::from(ids[0]))
        .map(|(g, c)| (g.clone(), *c as i32))
        .unwrap_or_else(|| panic!("every group on node 1: {coordinators:?}"));
    let coordinator_index = cluster.index_of(coordinator);

    // A consumer in that group, with exact commits: partition p at 3 + p.
    let member = consumer(&cluster, &group);
    member.subscribe(&[TOPIC]).unwrap();
    eventually("the member gets every partition", WAIT, || {
        member.poll(Duration::from_millis(100));
        common::assigned(&member).len() == 3
    });
    commit(&member, &[(0, 3), (1, 4), (2, 5)]);
    let described = get_ok(here, &format!("/api/v1/groups/{group}"));
    assert_eq!(described["coordinator"], coordinator, "{described}");
    assert_eq!(described["state"], "Stable", "{described}");
    assert_eq!(described["members"].as_array().unwrap().len(), 1);
    assert_eq!(described["unavailable"], json!([]));
    for p in 0..3 {
        let o = group_offset(&described, p);
        assert_eq!(o["committed_offset"], 3 + i64::from(p), "{o}");
        assert_eq!(o["log_end_offset"], end(p), "{o}");
        assert_eq!(o["lag"], end(p) - 3 - i64::from(p), "{o}");
        assert!(o["member_id"].is_string(), "assigned: {o}");
    }
    let total: i64 = (0..3).map(|p| end(p) - 3 - i64::from(p)).sum();
    assert_eq!(described["lag"], total);

    // /metrics: the coordinator exports the lag of every partition of the
    // group, those the two other nodes lead among them; every (group,
    // partition) lag series comes from exactly one node.
    let mut seen: BTreeMap<(String, String, String), Vec<(usize, f64)>> = BTreeMap::new();
    eventually("every lag exported once", WAIT, || {
        seen.clear();
        for i in 0..3 {
            for (key, value) in lags(api(&cluster, i)) {
                seen.entry(key).or_default().push((i, value));
            }
        }
        let ours = (0..3).all(|p| seen.contains_key(&(group.clone(), TOPIC.into(), p.to_string())));
        let theirs = candidates
            .iter()
            .filter(|g| **g != group)
            .all(|g| seen.contains_key(&(g.clone(), TOPIC.into(), "0".into())));
        ours && theirs
    });
    for (key, samples) in &seen {
        assert_eq!(samples.len(), 1, "{key:?} exported by {samples:?}");
    }
    for p in 0..3 {
        let key = (group.clone(), TOPIC.to_string(), p.to_string());
        assert_eq!(
            seen[&key],
            [(coordinator_index, (end(p) - 3 - i64::from(p)) as f64)],
            "{key:?}"
        );
    }
    for g in candidates.iter().filter(|g| **g != group) {
        let key = (g.clone(), TOPIC.to_string(), "0".to_string());
        let owner = cluster.index_of(coordinators[g] as i32);
        assert_eq!(seen[&key], [(owner, (end(0) - 1) as f64)], "{key:?}");
    }
    let coordinator_http = api(&cluster, coordinator_index);
    assert_eq!(
        gauge(coordinator_http, "corelog_group_lag_unavailable"),
        0.0
    );

    // A reset needs the group empty: refused while the member is in it,
    // done from node 1 once it left.
    let refused = http::change(
        here,
        "POST",
        &format!("/api/v1/groups/{group}/offsets"),
        &json!({"topic": TOPIC, "to": "earliest"}),
    );
    assert_eq!(
        (refused.status, refused.error().as_str()),
        (409, "GROUP_NOT_INACTIVE"),
        "{refused:?}"
    );
    drop(member);
    eventually("the group is empty", WAIT, || {
        get_ok(here, &format!("/api/v1/groups/{group}"))["state"] == "Empty"
    });
    let reset = http::change(
        here,
        "POST",
        &format!("/api/v1/groups/{group}/offsets"),
        &json!({"topic": TOPIC, "partitions": [1, 2], "to": "offset", "offset": 7}),
    );
    assert_eq!(reset.status, 200, "{reset:?}");
    assert_eq!(
        reset.json()["offsets"],
        json!([{"partition": 1, "offset": 7}, {"partition": 2, "offset": 7}])
    );
    let described = get_ok(here, &format!("/api/v1/groups/{group}"));
    assert_eq!(described["members"], json!([]));
    for (p, committed) in [(0, 3), (1, 7), (2, 7)] {
        let o = group_offset(&described, p);
        assert_eq!(o["committed_offset"], committed, "{o}");
        assert_eq!(o["lag"], end(p) - committed, "{o}");
    }
    let lag = lags(coordinator_http);
    assert_eq!(
        lag[&(group.clone(), TOPIC.to_string(), "2".to_string())],
        (end(2) - 7) as f64
    );

    // The third node (neither node 1 nor the coordinator) stalls: its
    // ports take connections, it answers nothing. Node 1's API answers
    // within its deadline, what that node holds missing and marked; the
    // coordinator's scrape leaves that lag out and says so.
    let stopped = (0..3).find(|i| *i != 0 && *i != coordinator_index).unwrap();
    let stopped_id = ids[stopped];
    let stopped_partition = leaders.iter().position(|l| *l == stopped_id).unwrap() as i32;
    let lag_key = (
        group.clone(),
        TOPIC.to_string(),
        stopped_partition.to_string(),
    );
    let partial = |cluster: &Cluster| {
        let asked = Instant::now();
        let detail = get_ok(api(cluster, 0), &format!("/api/v1/topics/{TOPIC}"));
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "{:?}",
            asked.elapsed()
        );
        assert_eq!(detail["unavailable"], json!([stopped_id]), "{detail}");
        for p in 0..3 {
            let part = partition(&detail, p);
            if p == stopped_partition {
                assert!(part["log_end_offset"].is_null(), "{part}");
                assert!(part["size_bytes"].is_null(), "{part}");
            } else {
                assert_eq!(part["log_end_offset"], end(p), "{part}");
            }
        }
        let asked = Instant::now();
        let lag = lags(coordinator_http);
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "{:?}",
            asked.elapsed()
        );
        assert!(!lag.contains_key(&lag_key), "{lag:?}");
        assert_eq!(
            gauge(coordinator_http, "corelog_group_lag_unavailable"),
            1.0
        );
    };
    cluster.pause(stopped, true);
    partial(&cluster);
    // Back: the next calls ask it again and get everything.
    cluster.pause(stopped, false);
    eventually("the stalled node answers again", WAIT, || {
        let detail = get_ok(here, &format!("/api/v1/topics/{TOPIC}"));
        detail["unavailable"] == json!([])
            && partition(&detail, stopped_partition)["log_end_offset"] == end(stopped_partition)
    });
    let committed_now = [3, 7, 7][stopped_partition as usize];
    assert_eq!(
        lags(coordinator_http)[&lag_key],
        (end(stopped_partition) - committed_now) as f64
    );

    // It stops (its connections refused): the same, at once.
    cluster.kill9(stopped);
    partial(&cluster);
    let list = get_ok(here, "/api/v1/groups");
    assert_eq!(list["unavailable"], json!([stopped_id]), "{list}");
    let still: BTreeSet<&str> = list["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["group_id"].as_str())
        .collect();
    for (g, c) in &coordinators {
        if *c != i64::from(stopped_id) {
            assert!(still.contains(g.as_str()), "{g} still listed: {list}");
        }
    }
    let described = get_ok(here, &format!("/api/v1/groups/{group}"));
    assert_eq!(described["unavailable"], json!([stopped_id]), "{described}");
    let o = group_offset(&described, stopped_partition);
    assert!(o["lag"].is_null() && o["log_end_offset"].is_null(), "{o}");
    assert_eq!(o["committed_offset"], committed_now, "{o}");
    let browse = http::get(
        here,
        &format!("/api/v1/topics/{TOPIC}/messages?partition={stopped_partition}"),
    );
    assert_eq!(
        (browse.status, browse.error().as_str()),
        (503, "BROKER_NOT_AVAILABLE"),
        "{browse:?}"
    );
}
