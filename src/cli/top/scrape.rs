//! One node's `/metrics`, fetched over plain HTTP/1.1 with bounded waits
//! and size, and parsed from Prometheus' text exposition format into
//! samples. Only what `top` reads is kept: sample lines (name, labels,
//! value); comments, timestamps and exemplars are skipped.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long connecting to a node's HTTP listener may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one read or write on it may block.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read: a node with `metrics.partition.limit` (5000 by
/// default) partitions renders a few MB.
const ANSWER_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    /// In the order the line gives them.
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// GETs `http://{address}/metrics`: its body, or why not (one line).
pub fn fetch(address: &str) -> Result<String, String> {
    let socket = address
        .to_socket_addrs()
        .map_err(|e| format!("{address}: {e}"))?
        .next()
        .ok_or_else(|| format!("{address} does not resolve"))?;
    let mut stream = TcpStream::connect_timeout(&socket, CONNECT_TIMEOUT)
        .map_err(|e| format!("cannot connect: {e}"))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut answer = Vec::new();
    stream
        .take(ANSWER_BYTES_MAX + 1)
        .read_to_end(&mut answer)
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    if answer.len() as u64 > ANSWER_BYTES_MAX {
        return Err(format!("answer over {ANSWER_BYTES_MAX} bytes"));
    }
    body_of(&answer)
}

/// The body of a complete HTTP/1.1 answer, which must be 200.
fn body_of(answer: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("not an HTTP answer (no end of head)")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .ok_or("not an HTTP answer (no status)")?;
    if status != "200" {
        let reason = body.lines().next().unwrap_or("").trim();
        return Err(format!("HTTP {status} {reason}").trim_end().to_string());
    }
    let chunked = head.lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
        })
    });
    if chunked {
        dechunk(body)
    } else {
        Ok(body.to_string())
    }
}

/// A chunked body's content.
fn dechunk(mut body: &str) -> Result<String, String> {
    let mut out = String::new();
    loop {
        let (size_line, rest) = body.split_once("\r\n").ok_or("truncated chunk size")?;
        let size_text = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest.get(..size).ok_or("truncated chunk")?;
        out.push_str(chunk);
        body = rest
            .get(size..)
            .and_then(|r| r.strip_prefix("\r\n"))
            .ok_or("chunk not followed by CRLF")?;
    }
}

/// The samples of a text exposition; a line that does not parse is
/// skipped (a newer node may write what this parser does not know).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(parse_line)
        .collect()
}

/// `name{label="value",...} value [timestamp]`.
fn parse_line(line: &str) -> Option<Sample> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inside) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inside)?;
        labels = parsed;
        rest = after;
    }
    let value = parse_value(rest.split_whitespace().next()?)?;
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Labels up to the closing brace, and what follows it.
fn parse_labels(mut text: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start();
        if let Some(after) = text.strip_prefix('}') {
            return Some((labels, after));
        }
        let (name, rest) = text.split_once('=')?;
        let rest = rest.trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((name.trim().to_string(), value));
        text = rest[end + 1..].trim_start();
        text = text.strip_prefix(',').unwrap_or(text);
    }
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_with_and_without_labels_parse() {
        let text = "# HELP corelog_uptime_seconds Seconds.\n\
                    # TYPE corelog_uptime_seconds gauge\n\
                    corelog_uptime_seconds 12.5\n\
                    corelog_shard_busy_seconds_total{shard=\"1\"} 3\n\
                    corelog_api_request_duration_seconds_bucket{api=\"Produce\",le=\"+Inf\"} 7 1700000000\n\
                    corelog_partition_log_end_offset{topic=\"a \\\"b\\\" \\\\ c\",partition=\"0\",} 42\n\
                    garbage{unterminated=\"x 1\n";
        let samples = parse(text);
        assert_eq!(samples.len(), 4, "{samples:?}");
        assert_eq!(samples[0].name, "corelog_uptime_seconds");
        assert_eq!(samples[0].value, 12.5);
        assert_eq!(samples[1].label("shard"), Some("1"));
        assert_eq!(samples[2].label("le"), Some("+Inf"));
        assert_eq!(samples[2].value, 7.0);
        assert_eq!(samples[3].label("topic"), Some("a \"b\" \\ c"));
        assert_eq!(samples[3].label("partition"), Some("0"));
        assert_eq!(samples[3].value, 42.0);
    }

    #[test]
    fn answers_other_than_200_and_chunked_bodies() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\na 1\n";
        assert_eq!(body_of(ok).unwrap(), "a 1\n");
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\na 1\n\r\n4\r\nb 2\n\r\n0\r\n\r\n";
        assert_eq!(body_of(chunked).unwrap(), "a 1\nb 2\n");
        let starting = b"HTTP/1.1 503 Service Unavailable\r\n\r\nshard 0 is starting\n";
        assert_eq!(
            body_of(starting).unwrap_err(),
            "HTTP 503 shard 0 is starting"
        );
        assert!(body_of(b"SSH-2.0-OpenSSH").is_err());
        assert!(body_of(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err());
    }
}
