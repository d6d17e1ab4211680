//! Raw HTTP/1.1 exchanges with the broker's HTTP listener, for the admin
//! API's bounds and bad input (each bounded by `HTTP_TIMEOUT`).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

pub use crate::common::http::Answer;

/// Sends a request (`Connection: close` added) and reads the whole answer.
pub fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    crate::common::http::parse(&crate::common::http::exchange(addr, &request, HTTP_TIMEOUT))
}

pub fn get(addr: SocketAddr, path: &str) -> Answer {
    send(addr, "GET", path, &[], b"")
}

/// A changing call as the console makes it (its header, a JSON body).
pub fn change(addr: SocketAddr, method: &str, path: &str, body: &Value) -> Answer {
    let body = serde_json::to_vec(body).unwrap();
    send(
        addr,
        method,
        path,
        &[
            ("X-Corelog-Console", "1"),
            ("Content-Type", "application/json"),
        ],
        &body,
    )
}
