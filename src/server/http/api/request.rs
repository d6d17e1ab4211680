//! What the admin API checks of a request before it runs (module doc of
//! `api`), its errors, its bounded body and its query string.

use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, HOST, ORIGIN, TRANSFER_ENCODING};
use hyper::{Request, StatusCode};
use serde::de::DeserializeOwned;

use crate::limits;
use crate::server::broker::Broker;

/// The header every changing call must carry (value `1`): a page of
/// another site cannot send it without a CORS preflight, never granted.
pub const CONSOLE_HEADER: &str = "x-corelog-console";

/// A refused or failed call: its HTTP status, a name (Kafka's error name
/// when a Kafka handler refused it) and a sentence for the operator.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub name: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, name: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            name: name.to_string(),
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }
}

/// Whether the request carries a body (of a length other than 0, or
/// chunked).
pub fn carries_body(request: &Request<Incoming>) -> bool {
    let headers = request.headers();
    headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .is_some_and(|l| l.to_str().map_or(true, |l| l.trim() != "0"))
}

/// The Host header names this machine: an IP address, `localhost` or the
/// advertised host. A page whose DNS name was rebound to this address
/// sends its own name, and is refused.
pub fn check_host(broker: &Broker, request: &Request<Incoming>) -> Result<(), ApiError> {
    let Some(host) = request.headers().get(HOST) else {
        return Ok(());
    };
    let host = host.to_str().unwrap_or("");
    let name = host_without_port(host);
    let known = name.parse::<std::net::IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || name.eq_ignore_ascii_case(&broker.config.cluster.advertised.host);
    if known {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "UNKNOWN_HOST",
        format!(
            "Host {host:?} is not this node: open the console by IP address, localhost or {}",
            broker.config.cluster.advertised.host
        ),
    ))
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` without its port and brackets.
fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// A changing call is allowed: not read-only, the console's header, and
/// no other site's origin.
pub fn check_may_change(broker: &Broker, request: &Request<Incoming>) -> Result<(), ApiError> {
    if broker.config.broker.http_console_read_only {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "READ_ONLY",
            "the console is read-only (serve --read-only, http.console.read.only=true): \
             changes are refused",
        ));
    }
    let headers = request.headers();
    if headers.get(CONSOLE_HEADER).is_none_or(|v| v != "1") {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "CONSOLE_HEADER_MISSING",
            "a changing call must carry the header X-Corelog-Console: 1",
        ));
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let host = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let origin = origin.to_str().unwrap_or("");
        let same = origin
            .strip_prefix("http://")
            .is_some_and(|o| o.eq_ignore_ascii_case(host));
        if !same {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "CROSS_SITE",
                format!("a request from {origin:?} may not change this node"),
            ));
        }
    }
    Ok(())
}

/// The request's body, at most `HTTP_API_BODY_BYTES_MAX` bytes of a known
/// length, read within `HTTP_REQUEST_HEAD_MS`.
pub async fn read_body(request: Request<Incoming>) -> Result<bytes::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BODY_TOO_LARGE",
            format!(
                "the body must be a JSON object of at most {} bytes, with a Content-Length",
                limits::HTTP_API_BODY_BYTES_MAX
            ),
        )
    };
    let headers = request.headers();
    if headers.contains_key(TRANSFER_ENCODING) {
        return Err(too_large());
    }
    let length = match headers.get(CONTENT_LENGTH) {
        None => 0,
        Some(l) => l
            .to_str()
            .ok()
            .and_then(|l| l.trim().parse::<u64>().ok())
            .ok_or_else(too_large)?,
    };
    if length > limits::HTTP_API_BODY_BYTES_MAX {
        return Err(too_large());
    }
    let limited = Limited::new(
        request.into_body(),
        limits::HTTP_API_BODY_BYTES_MAX as usize,
    );
    let read = async { Some(limited.collect().await) };
    let late = async {
        glommio::timer::sleep(Duration::from_millis(limits::HTTP_REQUEST_HEAD_MS)).await;
        None
    };
    match futures_lite::future::or(read, late).await {
        Some(Ok(collected)) => Ok(collected.to_bytes()),
        Some(Err(e)) => Err(ApiError::bad_request(format!("reading the body: {e}"))),
        None => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "BODY_TIMEOUT",
            "the body did not arrive in time",
        )),
    }
}

/// The body as `T` (unknown fields refused by `T`'s serde attributes).
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "BAD_JSON",
            format!("the body is not the JSON this call takes: {e}"),
        )
    })
}

/// `%XX` escapes decoded (and `+` kept: only query strings use it).
pub fn percent_decode(text: &str) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| ApiError::bad_request(format!("bad %-escape in {text:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ApiError::bad_request(format!("{text:?} is not UTF-8")))
}

/// A request's query string, decoded.
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(query: &str) -> Result<Query, ApiError> {
        let mut pairs = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            pairs.push((
                percent_decode(&key.replace('+', " "))?,
                percent_decode(&value.replace('+', " "))?,
            ));
        }
        Ok(Query(pairs))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The parameter as a number, None when absent or empty.
    pub fn number<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, ApiError> {
        match self.get(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("query parameter {key}={v:?} is not a number"))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_hosts() {
        assert_eq!(percent_decode("a%2Fb%20c").unwrap(), "a/b c");
        assert!(percent_decode("%zz").is_err());
        assert!(percent_decode("%ff").is_err());
        assert_eq!(host_without_port("127.0.0.1:9644"), "127.0.0.1");
        assert_eq!(host_without_port("[::1]:9644"), "::1");
        assert_eq!(host_without_port("localhost"), "localhost");
        let q = Query::parse("partition=1&offset=&topic=a+b%21").unwrap();
        assert_eq!(q.number::<i32>("partition").unwrap(), Some(1));
        assert_eq!(q.number::<i64>("offset").unwrap(), None);
        assert_eq!(q.get("topic"), Some("a b!"));
        assert!(q.number::<i32>("topic").is_err());
    }
}
