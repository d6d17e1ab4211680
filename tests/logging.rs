//! Log output: `--log-format json` writes one JSON object per line, and a
//! line logged while a request is handled carries the request's span
//! (shard, connection, peer, API, version, correlation id, client id), so an operator can tell which client a warning was about.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use common::{Broker, BrokerOptions};

/// A Metadata v1 request with client id "boom", which the broker's test
/// hook (`CORELOG_TEST_PANIC_CLIENT_ID`) makes panic in its handler.
fn panicking_metadata_request() -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_i16(3); // Metadata
    body.put_i16(1);
    body.put_i32(42); // correlation id
    body.put_i16(4);
    body.put_slice(b"boom");
    body.put_i32(0); // no topics
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

#[test]
fn json_lines_carry_the_request_span() {
    let mut broker = Broker::start_with(
        BrokerOptions::default()
            .arg("--log-format")
            .arg("json")
            .env("RUST_LOG", "corelog=info")
            .env("CORELOG_TEST_PANIC_CLIENT_ID", "boom"),
    );
    let mut stream = TcpStream::connect(broker.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(&panicking_metadata_request()).unwrap();
    // The broker closes the connection of a panicking request.
    let mut buf = [0u8; 64];
    assert!(matches!(stream.read(&mut buf), Ok(0) | Err(_)));

    let (status, out) = broker.terminate();
    assert!(status.success(), "{out}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!lines.is_empty(), "no JSON log lines: {out}");
    for line in &lines {
        for key in ["timestamp", "level", "target", "fields"] {
            assert!(line.get(key).is_some(), "{key} missing: {line}");
        }
    }
    let panicked = lines
        .iter()
        .find(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("panicked"))
        })
        .unwrap_or_else(|| panic!("no line about the panic: {out}"));
    assert_eq!(panicked["level"], "ERROR", "{panicked}");
    let spans = panicked["spans"].as_array().expect("spans");
    let request = spans
        .iter()
        .find(|s| s["name"] == "request")
        .expect("request span");
    assert_eq!(request["shard"], 0, "{panicked}");
    assert!(request["conn"].as_u64().is_some(), "{panicked}");
    assert!(request["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(request["api"], "Metadata", "{panicked}");
    assert_eq!(request["version"], 1, "{panicked}");
    assert_eq!(request["correlation_id"], 42, "{panicked}");
    assert_eq!(request["client_id"], "boom", "{panicked}");
}
