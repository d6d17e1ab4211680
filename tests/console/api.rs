//! The console's JSON admin API over raw HTTP: its guards (the console's
//! header, the origin, the host), its bounds (body size, records per
//! request) and its answers to bad input, with Kafka's error names.

use serde_json::json;

use super::common::{produce_numbered, Broker, BrokerOptions};
use super::http::{change, get, send};

#[test]
fn the_api_answers_and_changes_the_cluster_as_kafka_does() {
    let broker = Broker::start();
    let http = broker.http_addr();
    let created = change(
        http,
        "POST",
        "/api/v1/topics",
        &json!({"name": "api-made", "partitions": 2, "configs": {"retention.ms": "3600000"}}),
    );
    assert_eq!(created.status, 200, "{created:?}");
    assert_eq!(created.json()["partitions"], 2);
    let again = change(http, "POST", "/api/v1/topics", &json!({"name": "api-made"}));
    assert_eq!(
        (again.status, again.error().as_str()),
        (409, "TOPIC_ALREADY_EXISTS")
    );
    let bad_name = change(http, "POST", "/api/v1/topics", &json!({"name": "bad/name"}));
    assert_eq!(
        (bad_name.status, bad_name.error().as_str()),
        (400, "INVALID_TOPIC_EXCEPTION")
    );

    let detail = get(http, "/api/v1/topics/api-made").json();
    assert_eq!(detail["partitions"].as_array().unwrap().len(), 2);
    let retention = detail["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "retention.ms")
        .cloned()
        .unwrap();
    assert_eq!(retention["value"], "3600000");
    assert_eq!(retention["source"], "DYNAMIC_TOPIC_CONFIG");

    let grown = change(
        http,
        "POST",
        "/api/v1/topics/api-made/partitions",
        &json!({"count": 4}),
    );
    assert_eq!(grown.status, 200, "{grown:?}");
    let shrunk = change(
        http,
        "POST",
        "/api/v1/topics/api-made/partitions",
        &json!({"count": 1}),
    );
    assert_eq!(
        (shrunk.status, shrunk.error().as_str()),
        (400, "INVALID_PARTITIONS")
    );
    let altered = change(
        http,
        "POST",
        "/api/v1/topics/api-made/configs",
        &json!({"set": {"cleanup.policy": "compact"}, "delete": ["retention.ms"]}),
    );
    assert_eq!(altered.status, 200, "{altered:?}");
    let bad_config = change(
        http,
        "POST",
        "/api/v1/topics/api-made/configs",
        &json!({"set": {"retention.ms": "soon"}}),
    );
    assert_eq!(
        (bad_config.status, bad_config.error().as_str()),
        (400, "INVALID_CONFIG")
    );
    let detail = get(http, "/api/v1/topics/api-made").json();
    assert_eq!(detail["partitions"].as_array().unwrap().len(), 4);
    let config = |name: &str| {
        detail["configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(config("cleanup.policy")["value"], "compact");
    assert_eq!(config("retention.ms")["source"], "DEFAULT_CONFIG");

    // A lagging group, then its offsets reset to the log end.
    broker.create_topic("lagged", 2, &[]);
    produce_numbered(&broker, "lagged", 2, 0, 20);
    let reset = change(
        http,
        "POST",
        "/api/v1/groups/resetting/offsets",
        &json!({"topic": "lagged", "to": "offset", "offset": 3}),
    );
    assert_eq!(reset.status, 200, "{reset:?}");
    let group = get(http, "/api/v1/groups/resetting").json();
    assert_eq!(group["state"], "Empty");
    assert_eq!(group["lag"], 14, "{group}");
    let offsets = group["offsets"].as_array().unwrap();
    assert_eq!(offsets.len(), 2);
    assert_eq!(offsets[0]["committed_offset"], 3);
    assert_eq!(offsets[0]["log_end_offset"], 10);
    assert_eq!(offsets[0]["lag"], 7);
    let listed = get(http, "/api/v1/groups").json();
    let listed = listed["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group_id"] == "resetting")
        .cloned()
        .unwrap();
    assert_eq!(listed["lag"], 14);
    let to_end = change(
        http,
        "POST",
        "/api/v1/groups/resetting/offsets",
        &json!({"topic": "lagged", "to": "latest"}),
    );
    assert_eq!(to_end.status, 200);
    assert_eq!(get(http, "/api/v1/groups/resetting").json()["lag"], 0);
    let unknown_group = get(http, "/api/v1/groups/never-seen");
    assert_eq!(unknown_group.status, 404, "{unknown_group:?}");

    let deleted = change(http, "DELETE", "/api/v1/topics/api-made", &json!({}));
    assert_eq!(deleted.status, 200, "{deleted:?}");
    let gone = change(http, "DELETE", "/api/v1/topics/api-made", &json!({}));
    assert_eq!(
        (gone.status, gone.error().as_str()),
        (404, "UNKNOWN_TOPIC_OR_PARTITION")
    );

    let cluster = get(http, "/api/v1/cluster").json();
    assert_eq!(cluster["brokers"][0]["state"], "RUNNING");
    assert_eq!(cluster["controller_id"], cluster["node_id"]);
    assert_eq!(cluster["read_only"], false);
    let node = cluster["node_id"].as_i64().unwrap();
    let configs = get(http, &format!("/api/v1/brokers/{node}/configs")).json();
    assert!(configs["configs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "http.console.read.only" && c["value"] == "false"));
}

#[test]
fn the_api_refuses_bad_input_and_stays_bounded() {
    let broker = Broker::start();
    let http = broker.http_addr();

    let unknown = get(http, "/api/v1/topics/no-such-topic");
    assert_eq!(
        (unknown.status, unknown.error().as_str()),
        (404, "UNKNOWN_TOPIC_OR_PARTITION")
    );
    assert_eq!(
        unknown.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(get(http, "/api/v1/nothing-here").status, 404);

    let bad_json = change(http, "POST", "/api/v1/topics", &json!("not an object"));
    assert_eq!(
        (bad_json.status, bad_json.error().as_str()),
        (400, "BAD_JSON")
    );
    let broken = send(
        http,
        "POST",
        "/api/v1/topics",
        &[("X-Corelog-Console", "1")],
        b"{\"name\": ",
    );
    assert_eq!((broken.status, broken.error().as_str()), (400, "BAD_JSON"));
    let unknown_field = change(
        http,
        "POST",
        "/api/v1/topics",
        &json!({"name": "a", "colour": 1}),
    );
    assert_eq!(unknown_field.status, 400);

    // A changing call without the console's header, or from another site.
    let body = br#"{"name": "csrf"}"#;
    let no_header = send(http, "POST", "/api/v1/topics", &[], body);
    assert_eq!(
        (no_header.status, no_header.error().as_str()),
        (403, "CONSOLE_HEADER_MISSING")
    );
    let cross = send(
        http,
        "POST",
        "/api/v1/topics",
        &[
            ("X-Corelog-Console", "1"),
            ("Origin", "http://evil.example"),
        ],
        body,
    );
    assert_eq!((cross.status, cross.error().as_str()), (403, "CROSS_SITE"));
    let rebound = send(
        http,
        "GET",
        "/api/v1/cluster",
        &[("Host", "evil.example:9644")],
        b"",
    );
    assert_eq!(
        (rebound.status, rebound.error().as_str()),
        (403, "UNKNOWN_HOST")
    );
    assert_eq!(
        get(http, "/api/v1/topics/csrf").status,
        404,
        "nothing was created"
    );
    let put = send(
        http,
        "PUT",
        "/api/v1/topics",
        &[("X-Corelog-Console", "1")],
        body,
    );
    assert_eq!(put.status, 405);

    // Bodies: over the API's bound, or chunked, get 413 and a closed connection.
    let big = vec![b' '; 64 * 1024 + 1];
    let too_large = send(
        http,
        "POST",
        "/api/v1/topics",
        &[("X-Corelog-Console", "1")],
        &big,
    );
    assert_eq!(
        (too_large.status, too_large.error().as_str()),
        (413, "BODY_TOO_LARGE")
    );
    assert_eq!(too_large.header("connection").as_deref(), Some("close"));
    let claimed = send(
        http,
        "POST",
        "/api/v1/topics",
        &[("X-Corelog-Console", "1"), ("Content-Length", "10000000")],
        b"",
    );
    assert_eq!(claimed.status, 413);
    let chunked = send(
        http,
        "POST",
        "/api/v1/topics",
        &[("X-Corelog-Console", "1"), ("Transfer-Encoding", "chunked")],
        b"5\r\nhello\r\n0\r\n\r\n",
    );
    assert_eq!(chunked.status, 413);
    // The listener's own 1 KiB bound still holds outside /api.
    let other = send(http, "POST", "/", &[], &vec![b'x'; 2048]);
    assert!(matches!(other.status, 405 | 413), "{other:?}");

    // The message browser: bad parameters, and its record bound.
    broker.create_topic("many", 1, &[]);
    produce_numbered(&broker, "many", 1, 0, 150);
    let bad = get(http, "/api/v1/topics/many/messages?partition=zero");
    assert_eq!((bad.status, bad.error().as_str()), (400, "BAD_REQUEST"));
    let no_partition = get(http, "/api/v1/topics/many/messages?partition=7");
    assert_eq!(
        (no_partition.status, no_partition.error().as_str()),
        (404, "UNKNOWN_TOPIC_OR_PARTITION")
    );
    let capped = get(
        http,
        "/api/v1/topics/many/messages?partition=0&offset=0&max=100000",
    )
    .json();
    assert_eq!(
        capped["records"].as_array().unwrap().len(),
        100,
        "at most 100 records"
    );
    assert_eq!(capped["records"][0]["offset"], 0);
    assert_eq!(capped["records"][0]["value"]["data"], "0");
    assert_eq!(capped["next_offset"], 100);
    let newest = get(http, "/api/v1/topics/many/messages?partition=0").json();
    let records = newest["records"].as_array().unwrap();
    assert_eq!(records.len(), 20, "the newest 20 by default");
    assert_eq!(records[19]["offset"], 149);
    let past_end = get(http, "/api/v1/topics/many/messages?partition=0&offset=500").json();
    assert_eq!(past_end["records"].as_array().unwrap().len(), 0);
    let later = get(
        http,
        "/api/v1/topics/many/messages?partition=0&timestamp=99999999999999",
    )
    .json();
    assert_eq!(later["records"].as_array().unwrap().len(), 0);
    let from_start = get(
        http,
        "/api/v1/topics/many/messages?partition=0&timestamp=0&max=1",
    )
    .json();
    assert_eq!(from_start["records"][0]["offset"], 0);

    // Reset refused while a group has members is covered by its state
    // check; an unknown topic is Kafka's error.
    let reset = change(
        http,
        "POST",
        "/api/v1/groups/g/offsets",
        &json!({"topic": "absent", "to": "earliest"}),
    );
    assert_eq!(
        (reset.status, reset.error().as_str()),
        (404, "UNKNOWN_TOPIC_OR_PARTITION")
    );
    let bad_to = change(
        http,
        "POST",
        "/api/v1/groups/g/offsets",
        &json!({"topic": "many", "to": "soon"}),
    );
    assert_eq!(bad_to.status, 400);
}

#[test]
fn the_console_is_served_with_a_strict_policy_and_can_be_turned_off() {
    let broker = Broker::start();
    let http = broker.http_addr();
    let page = get(http, "/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    let policy = page.header("content-security-policy").unwrap_or_default();
    assert!(
        policy.contains("default-src 'self'") && policy.contains("script-src 'self'"),
        "{policy}"
    );
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    // No inline script: every <script> names its file.
    assert_eq!(
        page.body.matches("<script").count(),
        page.body.matches("<script src=").count()
    );
    for script in ["util.js", "chart.js", "pages.js", "groups.js", "app.js"] {
        let js = get(http, &format!("/console/{script}"));
        assert_eq!(js.status, 200, "{script}");
        assert_eq!(
            js.header("content-type").as_deref(),
            Some("text/javascript; charset=utf-8")
        );
        assert!(!js.body.contains("innerHTML"), "{script} writes markup");
    }
    assert_eq!(
        get(http, "/console/console.css")
            .header("content-type")
            .as_deref(),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(get(http, "/console/missing.js").status, 404);

    let off = Broker::start_with(
        BrokerOptions::default().override_config("http.console.enable", "false"),
    );
    let http = off.http_addr();
    assert_eq!(get(http, "/").status, 404);
    let api = get(http, "/api/v1/cluster");
    assert_eq!(
        (api.status, api.error().as_str()),
        (404, "CONSOLE_DISABLED")
    );
    assert_eq!(
        get(http, "/health").status,
        200,
        "the rest of the listener stays"
    );
    assert!(
        !off.stderr().contains("console: http://"),
        "{}",
        off.stderr()
    );
}
