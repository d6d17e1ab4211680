//! The node's HTTP listener from the bytes a client sends: the input is
//! one connection's byte stream, served by hyper's HTTP/1.1 server built as
//! the listener builds it (`server::http::connection_builder`: head size
//! and header count bounds) with a service that runs the listener's own
//! request checks (`server::http::routes::route`: path, method, body
//! limit). The endpoints' answers need a running broker, so an accepted
//! request gets a fixed answer instead.
//!
//! The first input byte sets how many bytes each socket read returns (0:
//! as many as hyper asks for), so requests split across reads at every
//! place; the rest is the stream, then end of stream. Checked: nothing
//! panics, the connection ends (no read returns "pending", so an endless
//! loop is a libFuzzer timeout), whatever the server writes starts with an
//! HTTP/1.x status line, and a request `route` accepts is GET or HEAD of
//! one of the three paths with a body within the limit.

#![no_main]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use corelog::limits::HTTP_BODY_BYTES_MAX;
use corelog::server::http::routes::{route, Endpoint};
use corelog::server::http::{connection_builder, console};
use http_body_util::Full;
use hyper::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use hyper::{Method, Request, Response};
use libfuzzer_sys::fuzz_target;

/// What the server may write for one input at most (answers to pipelined
/// requests): more means it answers more than the input asked for.
const OUTPUT_BYTES_MAX: usize = 4 * 1024 * 1024;

/// A connection whose client sent `input` and then closed its side.
struct Connection<'a> {
    input: &'a [u8],
    /// Bytes one read returns at most; 0 for no bound.
    chunk: usize,
    output: Vec<u8>,
}

impl hyper::rt::Read for Connection<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut n = buf.remaining().min(this.input.len());
        if this.chunk > 0 {
            n = n.min(this.chunk);
        }
        // Zero bytes when the input is used up: end of stream.
        buf.put_slice(&this.input[..n]);
        this.input = &this.input[n..];
        Poll::Ready(Ok(()))
    }
}

impl hyper::rt::Write for Connection<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        assert!(
            this.output.len() + buf.len() <= OUTPUT_BYTES_MAX,
            "the server wrote over {OUTPUT_BYTES_MAX} bytes"
        );
        this.output.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// What `route` lets through must be what the listener serves: the admin
/// API (which checks its own methods and bodies), or a GET or HEAD of a
/// known path.
fn check_accepted<B>(request: &Request<B>, endpoint: Endpoint) {
    let path = request.uri().path();
    if path.starts_with("/api/") {
        assert_eq!(endpoint, Endpoint::Api);
        return;
    }
    assert!(
        request.method() == Method::GET || request.method() == Method::HEAD,
        "{} accepted",
        request.method()
    );
    let expected = match path {
        "/health" => Endpoint::Health,
        "/ready" => Endpoint::Ready,
        "/metrics" => Endpoint::Metrics,
        other => match console::asset(other) {
            Some(asset) => Endpoint::Console(asset),
            None => panic!("path {other:?} accepted"),
        },
    };
    assert_eq!(endpoint, expected);
    assert!(!request.headers().contains_key(TRANSFER_ENCODING));
    if let Some(length) = request.headers().get(CONTENT_LENGTH) {
        let length: u64 = length
            .to_str()
            .expect("an accepted Content-Length is text")
            .trim()
            .parse()
            .expect("an accepted Content-Length is a number");
        assert!(length <= HTTP_BODY_BYTES_MAX);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    let mut connection = Connection {
        input,
        chunk: usize::from(chunk),
        output: Vec::new(),
    };
    let service =
        hyper::service::service_fn(|request: Request<hyper::body::Incoming>| async move {
            let answer = match route(&request) {
                Ok(endpoint) => {
                    check_accepted(&request, endpoint);
                    Response::new(Full::new(Bytes::from_static(b"accepted\n")))
                }
                Err(refusal) => refusal,
            };
            Ok::<_, std::convert::Infallible>(answer)
        });
    let served = connection_builder().serve_connection(&mut connection, service);
    // A malformed or over-limit request ends the connection with an error
    // (after hyper's 400 or 431): an answer, not a finding.
    let _ = futures_lite::future::block_on(served);
    if !connection.output.is_empty() {
        assert!(
            connection.output.starts_with(b"HTTP/1."),
            "the server wrote {:?}",
            String::from_utf8_lossy(&connection.output[..connection.output.len().min(64)])
        );
    }
});
