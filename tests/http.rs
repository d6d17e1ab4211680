//! The node's HTTP listener (`http.listeners`): `/health`, `/ready` and
//! `/metrics` in Prometheus' text format, parsed by a real Prometheus
//! parser after real clients produced and consumed; its bounds against bad
//! and too many clients; and turning it off. Every wait is bounded.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::http::{parse, Answer};
use common::{
    consume, flush, listening, logged_producer, produce_numbered, send_record, Broker,
    BrokerOptions,
};
use rdkafka::consumer::{BaseConsumer, Consumer};

/// How long one HTTP exchange may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

/// Sends `request` (raw bytes) and reads until the server closes the
/// connection or `HTTP_TIMEOUT` passes.
fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    common::http::exchange(addr, request, HTTP_TIMEOUT)
}

/// `method path` with `Connection: close`, and the answer.
fn request(addr: SocketAddr, method: &str, path: &str) -> Answer {
    let text = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    parse(&exchange(addr, text.as_bytes()))
}

fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path)
}

/// The families documented in docs/metrics.md (its table's first column).
fn documented_families() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md"))
        .expect("docs/metrics.md");
    doc.lines()
        .filter_map(|line| line.strip_prefix("| `corelog_"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(name, _)| format!("corelog_{name}"))
        .collect()
}

/// The sum of `metric`'s samples whose labels include all of `labels`.
fn sum(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            other => panic!("{metric} is not a number: {other:?}"),
        })
        .sum()
}

#[test]
fn metrics_count_what_clients_did() {
    const RECORDS: usize = 300;
    let broker = Broker::start_with(
        BrokerOptions::default()
            .shards(2)
            .override_config("auto.create.topics.enable", "false"),
    );
    let http = broker.http_addr();
    assert!(
        broker.stderr().contains(&format!(
            "HTTP on http://{http} (/metrics, /health, /ready)"
        )),
        "{}",
        broker.stderr()
    );
    broker.create_topic("metered", 2, &[]);
    produce_numbered(&broker, "metered", 2, 0, RECORDS);
    let consumed = consume(&broker, "metered", 2, RECORDS, Duration::from_secs(30));
    assert_eq!(consumed.len(), RECORDS);
    // One answer with an error code: Metadata of a topic that is not there.
    let client: BaseConsumer = broker.consumer_config().create().unwrap();
    let _ = client.fetch_metadata(Some("no-such-topic"), Duration::from_secs(10));

    let answer = get(http, "/metrics");
    assert_eq!(answer.status, 200, "{answer:?}");
    let content_type = answer.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let lines = answer.body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text parses");

    // Every documented family is exported, and nothing else.
    let exported: BTreeSet<String> = scrape.docs.keys().cloned().collect();
    assert_eq!(exported, documented_families());
    let sampled: BTreeSet<&str> = scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    // What a single node without consumer groups has nothing to say about
    // (tests/http_cluster.rs covers them).
    let unsampled_here = |family: &str| {
        family.starts_with("corelog_raft_")
            || family.starts_with("corelog_follower_lag_")
            || family.starts_with("corelog_group_")
    };
    for family in exported.iter().filter(|f| !unsampled_here(f)) {
        assert!(
            sampled.iter().any(|m| m.starts_with(family.as_str())),
            "{family} has no sample:\n{}",
            answer.body
        );
    }

    let build = scrape
        .samples
        .iter()
        .find(|s| s.metric == "corelog_build_info")
        .expect("build_info");
    assert_eq!(build.labels.get("version"), Some(env!("CARGO_PKG_VERSION")));

    // The log end offsets of the topic's partitions add up to the records.
    let ends: BTreeMap<String, f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "corelog_partition_log_end_offset")
        .filter(|s| s.labels.get("topic") == Some("metered"))
        .map(|s| match s.value {
            prometheus_parse::Value::Gauge(v) => {
                (s.labels.get("partition").unwrap().to_string(), v)
            }
            ref other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ends.len(), 2, "{ends:?}");
    assert_eq!(ends.values().sum::<f64>(), RECORDS as f64);
    let topic = [("topic", "metered")];
    assert_eq!(
        sum(&scrape, "corelog_partition_high_watermark", &topic),
        RECORDS as f64
    );
    assert_eq!(
        sum(&scrape, "corelog_partition_records_in_total", &topic),
        RECORDS as f64
    );
    assert!(sum(&scrape, "corelog_partition_bytes_in_total", &topic) > RECORDS as f64);
    assert!(sum(&scrape, "corelog_partition_log_size_bytes", &topic) > RECORDS as f64);
    assert_eq!(sum(&scrape, "corelog_partition_segments", &topic), 2.0);

    // Requests per API, their latencies and errors.
    let produces = sum(&scrape, "corelog_api_requests_total", &[("api", "Produce")]);
    assert!(produces > 0.0, "{}", answer.body);
    assert!(sum(&scrape, "corelog_api_requests_total", &[("api", "Fetch")]) > 0.0);
    assert!(
        sum(
            &scrape,
            "corelog_api_errors_total",
            &[("api", "Metadata"), ("error_code", "3")]
        ) >= 1.0,
        "UNKNOWN_TOPIC_OR_PARTITION counted:\n{}",
        answer.body
    );
    let produce_latency = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "corelog_api_request_duration_seconds"
                && s.labels.get("api") == Some("Produce")
        })
        .expect("a Produce latency histogram");
    match &produce_latency.value {
        prometheus_parse::Value::Histogram(buckets) => {
            let last = buckets.last().expect("buckets");
            assert!(last.less_than.is_infinite());
            assert_eq!(last.count, produces, "every Produce is in +Inf");
        }
        other => panic!("not a histogram: {other:?}"),
    }

    // Per shard: both shards answered.
    let shards: BTreeSet<&str> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "corelog_shard_requests_total")
        .filter_map(|s| s.labels.get("shard"))
        .collect();
    assert_eq!(shards, BTreeSet::from(["0", "1"]));
    // Every partition held (the consumer's group made __consumer_offsets)
    // is exported: far below the limit.
    let exported_partitions = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "corelog_partition_log_end_offset")
        .count();
    assert!(exported_partitions > 2);
    assert_eq!(
        sum(&scrape, "corelog_shard_partitions", &[]),
        exported_partitions as f64
    );
    assert_eq!(sum(&scrape, "corelog_metrics_partitions_omitted", &[]), 0.0);
    assert!(
        sum(
            &scrape,
            "corelog_shard_requests_total",
            &[("kind", "produce")]
        ) >= produces
    );
    assert!(sum(&scrape, "corelog_shard_cache_budget_bytes", &[]) > 0.0);
}

/// The scrape of `broker`, parsed.
fn scrape(broker: &Broker) -> (prometheus_parse::Scrape, String) {
    let answer = get(broker.http_addr(), "/metrics");
    assert_eq!(answer.status, 200, "{answer:?}");
    let lines = answer.body.lines().map(|l| Ok(l.to_string()));
    let parsed = prometheus_parse::Scrape::parse(lines).expect("Prometheus text parses");
    (parsed, answer.body)
}

/// Known traffic, then the figures that can be exact: records of a known
/// size produced one per request (acks=all) to a topic with small
/// segments, read once by a consumer, and a CreateTopics that fails.
#[test]
fn metrics_split_requests_and_count_storage_and_reads_exactly() {
    const RECORDS: usize = 24;
    const VALUE_BYTES: usize = 200;
    let broker = Broker::start_with(
        BrokerOptions::default()
            .shards(2)
            .override_config("auto.create.topics.enable", "false"),
    );
    broker.create_topic("sized", 1, &[("segment.bytes", "1024")]);
    {
        let producer = logged_producer(&broker.producer_config());
        let value = [b'v'; VALUE_BYTES];
        for i in 0..RECORDS {
            // One record per Produce request: sent and acknowledged alone.
            send_record(
                &producer,
                rdkafka::producer::BaseRecord::<[u8], [u8], usize>::with_opaque_to("sized", i)
                    .partition(0)
                    .payload(&value[..]),
            );
            flush(&producer, Duration::from_secs(30));
        }
    }
    let consumed = consume(&broker, "sized", 1, RECORDS, Duration::from_secs(30));
    assert_eq!(consumed.len(), RECORDS);
    assert!(consumed
        .iter()
        .all(|c| c.value.as_deref() == Some(&[b'v'; VALUE_BYTES][..])));
    // CreateTopics of an existing topic: TOPIC_ALREADY_EXISTS (36).
    let err = broker.try_create_topic("sized", 1, &[]).unwrap_err();
    assert!(err.to_lowercase().contains("exist"), "{err}");

    // The consumer's last long-poll fetch ends within its wait after the
    // consumer closed: then nothing is in flight.
    let deadline = Instant::now() + Duration::from_secs(15);
    let (scrape, body) = loop {
        let (scrape, body) = scrape(&broker);
        let in_flight = sum(&scrape, "corelog_api_requests_in_flight", &[]);
        if in_flight == 0.0 {
            break (scrape, body);
        }
        assert!(
            Instant::now() < deadline,
            "{in_flight} requests in flight:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let topic = [("topic", "sized")];
    let produce = [("api", "Produce")];
    // Every Produce request, by version; one per record.
    let versions: Vec<&str> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "corelog_api_requests_total")
        .filter(|s| s.labels.get("api") == Some("Produce"))
        .map(|s| s.labels.get("version").unwrap())
        .collect();
    assert!(!versions.is_empty(), "{body}");
    for version in &versions {
        assert!(version.parse::<i16>().is_ok(), "{version}");
    }
    assert_eq!(
        sum(&scrape, "corelog_api_requests_total", &produce),
        RECORDS as f64,
        "{body}"
    );
    assert_eq!(
        sum(
            &scrape,
            "corelog_api_errors_total",
            &[("api", "CreateTopics"), ("error_code", "36")]
        ),
        1.0,
        "{body}"
    );
    // Every histogram of a request counts each request of its API once
    // (but the send time: see below).
    let mut unsent = 0.0;
    let apis: BTreeSet<&str> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "corelog_api_requests_total")
        .filter_map(|s| s.labels.get("api"))
        .collect();
    assert!(
        apis.contains("CreateTopics") && apis.contains("Fetch"),
        "{apis:?}"
    );
    for api in &apis {
        let labels = [("api", *api)];
        let requests = sum(&scrape, "corelog_api_requests_total", &labels);
        for histogram in [
            "corelog_api_request_duration_seconds",
            "corelog_api_request_queue_seconds",
            "corelog_api_request_local_seconds",
            "corelog_api_request_wait_seconds",
            "corelog_api_request_size_bytes",
            "corelog_api_response_size_bytes",
        ] {
            assert_eq!(
                sum(&scrape, &format!("{histogram}_count"), &labels),
                requests,
                "{histogram} of {api}:\n{body}"
            );
        }
        let sent = sum(&scrape, "corelog_api_response_send_seconds_count", &labels);
        assert!(sent <= requests, "{sent} of {requests} {api} answers sent");
        unsent += requests - sent;
    }
    // An answer is not sent when its client hung up first: at most the
    // last one of each of the three clients (producer, consumer, admin).
    assert!(unsent <= 3.0, "{unsent} answers not sent:\n{body}");
    // Each request is at least a header; answers to acks=all produce
    // are more than the size prefix.
    assert!(
        sum(&scrape, "corelog_api_request_size_bytes_sum", &produce)
            > (RECORDS * VALUE_BYTES) as f64
    );
    assert!(sum(&scrape, "corelog_api_response_size_bytes_sum", &produce) > (RECORDS * 4) as f64);
    // The waits and local work add up to the whole time.
    let whole = sum(
        &scrape,
        "corelog_api_request_duration_seconds_sum",
        &produce,
    );
    let parts = sum(&scrape, "corelog_api_request_local_seconds_sum", &produce)
        + sum(&scrape, "corelog_api_request_wait_seconds_sum", &produce);
    assert!((whole - parts).abs() < 1e-3, "{whole} vs {parts}");

    // Read once: what went out is what came in.
    let records_in = sum(&scrape, "corelog_partition_records_in_total", &topic);
    assert_eq!(records_in, RECORDS as f64);
    assert_eq!(
        sum(&scrape, "corelog_partition_records_out_total", &topic),
        records_in
    );
    assert_eq!(
        sum(&scrape, "corelog_partition_bytes_out_total", &topic),
        sum(&scrape, "corelog_partition_bytes_in_total", &topic),
        "{body}"
    );

    // Storage: acks=all produce fsyncs; every segment past a partition's
    // first was rolled in this process.
    assert!(
        sum(&scrape, "corelog_storage_fsync_seconds_count", &[]) >= 1.0,
        "{body}"
    );
    assert_eq!(
        sum(&scrape, "corelog_storage_fsync_seconds_count", &[]),
        sum(&scrape, "corelog_storage_fsync_size_bytes_count", &[])
    );
    let segments = sum(&scrape, "corelog_partition_segments", &topic);
    assert!(
        segments >= 3.0,
        "{RECORDS} batches over 1 KiB segments: {segments}"
    );
    let partitions = sum(&scrape, "corelog_shard_partitions", &[]);
    assert_eq!(
        sum(&scrape, "corelog_storage_segment_rolls_total", &[]),
        sum(&scrape, "corelog_partition_segments", &[]) - partitions,
        "{body}"
    );
    assert_eq!(
        sum(
            &scrape,
            "corelog_storage_retention_segments_deleted_total",
            &[]
        ),
        0.0
    );
    let total = sum(&scrape, "corelog_log_dir_total_bytes", &[]);
    let free = sum(&scrape, "corelog_log_dir_free_bytes", &[]);
    assert!(
        total > 0.0 && free > 0.0 && free <= total,
        "{free} of {total}"
    );
    assert!(sum(&scrape, "corelog_storage_recovery_seconds", &[]) >= 0.0);
    // The scheduling probe woke on both shards.
    let probes = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "corelog_shard_task_delay_seconds_count")
        .count();
    assert_eq!(probes, 2);
    assert!(sum(&scrape, "corelog_shard_task_delay_seconds_count", &[]) >= 1.0);
}

/// metrics.enabled=false: the same traffic records no request or storage
/// figures, and the families are still exported.
#[test]
fn metrics_enabled_false_records_no_requests() {
    let broker = Broker::start_with(
        BrokerOptions::default()
            .shards(1)
            .override_config("metrics.enabled", "false"),
    );
    broker.create_topic("quiet", 1, &[]);
    produce_numbered(&broker, "quiet", 1, 0, 10);
    let (scrape, body) = scrape(&broker);
    assert_eq!(
        sum(&scrape, "corelog_api_requests_total", &[]),
        0.0,
        "{body}"
    );
    assert_eq!(
        sum(&scrape, "corelog_storage_fsync_seconds_count", &[]),
        0.0
    );
    assert!(scrape.docs.contains_key("corelog_api_request_wait_seconds"));
    // What partitions hold is still known.
    assert_eq!(
        sum(
            &scrape,
            "corelog_partition_records_in_total",
            &[("topic", "quiet")]
        ),
        10.0
    );
}

#[test]
fn the_partition_families_stop_at_their_limit() {
    let broker = Broker::start_with(
        BrokerOptions::default()
            .shards(2)
            .override_config("metrics.partition.limit", "3"),
    );
    broker.create_topic("a-many", 4, &[]);
    broker.create_topic("b-many", 4, &[]);
    let answer = get(broker.http_addr(), "/metrics");
    assert_eq!(answer.status, 200);
    let lines = answer.body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let exported: Vec<(String, String)> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "corelog_partition_log_end_offset")
        .map(|s| {
            (
                s.labels.get("topic").unwrap().to_string(),
                s.labels.get("partition").unwrap().to_string(),
            )
        })
        .collect();
    let first_three: Vec<(String, String)> = (0..3)
        .map(|p| ("a-many".to_string(), p.to_string()))
        .collect();
    assert_eq!(exported, first_three, "the first by topic and partition");
    assert_eq!(sum(&scrape, "corelog_metrics_partitions_omitted", &[]), 5.0);
}

#[test]
fn health_ready_and_the_answers_to_bad_requests() {
    let broker = Broker::start();
    let http = broker.http_addr();
    let health = get(http, "/health");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let ready = get(http, "/ready");
    assert_eq!(ready.status, 200, "{ready:?}");
    let json: serde_json::Value = serde_json::from_str(&ready.body).expect("JSON");
    assert_eq!(json["ready"], true, "{json}");
    assert_eq!(request(http, "HEAD", "/health").status, 200);

    assert_eq!(get(http, "/nothing-here").status, 404);
    let post = request(http, "POST", "/metrics");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow").as_deref(), Some("GET, HEAD"));

    // A body over the limit: 413, and the connection is closed (the
    // exchange ends without `Connection: close` from the client).
    let big = exchange(
        http,
        b"GET /health HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\nxyz",
    );
    assert!(big.starts_with("HTTP/1.1 413"), "{big}");

    // Malformed: 400, then closed (read_to_end returned).
    let garbage = exchange(http, b"NOT HTTP AT ALL\r\n\r\n");
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage:?}");
    let bad_version = exchange(http, b"GET /health HTTP/9.9\r\n\r\n");
    assert!(
        bad_version.starts_with("HTTP/1.1 400") || bad_version.starts_with("HTTP/1.1 505"),
        "{bad_version:?}"
    );

    // A head past the limit: 431 (or 400), then closed.
    let huge = format!(
        "GET /health HTTP/1.1\r\nHost: t\r\nX-Huge: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let answer = exchange(http, huge.as_bytes());
    assert!(
        answer.starts_with("HTTP/1.1 431") || answer.starts_with("HTTP/1.1 400"),
        "{answer:?}"
    );
    let many_headers: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let answer = exchange(
        http,
        format!("GET /health HTTP/1.1\r\nHost: t\r\n{many_headers}\r\n").as_bytes(),
    );
    assert!(
        answer.starts_with("HTTP/1.1 431") || answer.starts_with("HTTP/1.1 400"),
        "{answer:?}"
    );

    // Keep-alive: two requests on one connection.
    let two = exchange(
        http,
        b"GET /health HTTP/1.1\r\nHost: t\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(two.matches("HTTP/1.1 200").count(), 2, "{two}");

    // After all that, it still serves, and so does the broker.
    assert_eq!(get(http, "/health").status, 200);
    broker.create_topic("after-bad-http", 1, &[]);
    produce_numbered(&broker, "after-bad-http", 1, 0, 10);
    assert_eq!(
        consume(&broker, "after-bad-http", 1, 10, Duration::from_secs(30)).len(),
        10
    );
}

#[test]
fn connections_past_the_limit_are_refused_and_idle_ones_closed() {
    let broker = Broker::start();
    let http = broker.http_addr();
    // 64 connections that send nothing.
    let mut idle: Vec<TcpStream> = (0..64)
        .map(|_| TcpStream::connect_timeout(&http, HTTP_TIMEOUT).expect("connect"))
        .collect();
    // The 65th is accepted after them (the kernel's accept queue is in
    // order) and closed at once, with no answer.
    let refused = exchange(http, b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(refused, "", "the 65th connection is closed unanswered");

    // Kafka clients are served all the while.
    broker.create_topic("while-full", 1, &[]);
    produce_numbered(&broker, "while-full", 1, 0, 10);
    assert_eq!(
        consume(&broker, "while-full", 1, 10, Duration::from_secs(30)).len(),
        10
    );

    // Idle connections are closed once no request head came within 10 s.
    let started = Instant::now();
    let first = &mut idle[0];
    first.set_read_timeout(Some(HTTP_TIMEOUT)).unwrap();
    let mut buf = [0u8; 64];
    let read = first.read(&mut buf);
    assert!(
        matches!(read, Ok(0)) || read.is_err() && started.elapsed() < HTTP_TIMEOUT,
        "an idle connection is closed: {read:?}"
    );
    assert!(started.elapsed() < HTTP_TIMEOUT, "closed within the bound");
    drop(idle);
    // Then there is room again.
    let deadline = Instant::now() + HTTP_TIMEOUT;
    loop {
        let answer = exchange(
            http,
            b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        );
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no room after the idle ones closed: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_empty_http_listeners_turns_it_off() {
    let default_port = SocketAddr::from(([127, 0, 0, 1], 9644));
    let default_was_free = !listening(default_port);
    let broker = Broker::start_with(BrokerOptions::default().override_config("http.listeners", ""));
    assert_eq!(broker.http_port, None);
    let out = broker.stderr();
    assert!(!out.contains("HTTP on"), "{out}");
    if default_was_free {
        assert!(
            !listening(default_port),
            "nothing listens on the default port"
        );
    }
    // Given a port of its own, a broker listens there until it stops.
    let port = common::free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let on = Broker::start_with(
        BrokerOptions::default().override_config("http.listeners", &format!("127.0.0.1:{port}")),
    );
    assert_eq!(get(addr, "/health").status, 200);
    drop(on);
    let deadline = Instant::now() + HTTP_TIMEOUT;
    while listening(addr) {
        assert!(
            Instant::now() < deadline,
            "the stopped broker's HTTP port still accepts"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_cluster_node_is_ready_once_registered_with_an_image() {
    let cluster = Cluster::start_with(1, 0, 1, &[]);
    let http = SocketAddr::from(([127, 0, 0, 1], cluster.nodes[0].http_port));
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        let ready = get(http, "/ready");
        if ready.status == 200 || Instant::now() > deadline {
            break ready;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(ready.status, 200, "{ready:?}\n{}", cluster.output(0));
    assert_eq!(get(http, "/health").status, 200);
    let metrics = get(http, "/metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.body.contains("corelog_build_info{"),
        "{}",
        metrics.body
    );
}
