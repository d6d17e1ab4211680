//! Client connections of one shard: admission (`max.connections`,
//! `max.connections.per.ip`), reading frames, starting each request as its
//! own task (so pipelined requests proceed concurrently), and writing the
//! responses back strictly in request order, as Kafka clients require.
//!
//! Everything here is bounded, and a client that breaks a bound loses its
//! connection (logged), never the broker:
//! - a frame's memory is taken as its bytes arrive, in steps that grow with
//!   what was received, never on the strength of its 4-byte length prefix;
//!   the prefix is checked against `socket.request.max.bytes`;
//! - request bytes being read or waiting for their answer are reserved from
//!   the shard's share of `queued.max.request.bytes` ([`RequestMemory`])
//!   as soon as a frame's length is known; when the share is taken the
//!   connection stops reading (backpressure) until answered requests give
//!   their bytes back;
//! - at most `CONNECTION_REQUESTS_IN_FLIGHT_MAX` requests and
//!   `CONNECTION_BYTES_IN_FLIGHT_MAX` request bytes are in flight per
//!   connection, and at most `CONNECTION_RESPONSE_BYTES_QUEUED_MAX` bytes of
//!   answers wait for a client that does not read them; past any of these
//!   the reader stops reading;
//! - a connection silent for `connections.max.idle.ms` with nothing in
//!   flight is closed; a frame that started must arrive within
//!   `FRAME_READ_MS_MAX` (or the idle bound, if smaller: slowloris); a
//!   client that reads none of its answers for the idle bound is closed.
//!
//! A panic while one request is handled closes that connection with a log
//! line naming the API, version and client id; other connections and the
//! shard go on. What that does and does not make safe is written at
//! [`guarded`].
//!
//! State: one [`ShardConnections`] per shard (made by the accept loop); the
//! node-wide connection counts in [`NodeConnections`] are the only state
//! shared between shards, touched on accept and close only.
//!
//! Split by concern: `shard` (the shard's request memory and bounds),
//! `admission` (the node-wide connection counts), `reader` (frames in,
//! requests started), `writer` (answers out, in order); this file runs one
//! connection and one request.

use std::cell::{Cell, RefCell};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use futures_lite::{AsyncRead, AsyncWrite};
use glommio::channels::local_channel;
use glommio::net::TcpStream;
use glommio::sync::{Semaphore, StaticPermit};
use glommio::Task;
use tracing::Instrument;

use super::broker::{micros, Broker};
use super::dispatch::{self, Outcome, Parsed, RequestError};
use crate::config::Tuning;
use crate::limits;
use crate::protocol::frame::FrameError;
use crate::security::{SecurityProtocol, Session};
use crate::tls::ServerTls;

mod admission;
mod reader;
mod shard;
mod writer;

pub use admission::{take_counts, ConnectionCounts, ConnectionSlot, NodeConnections, Refusal};
pub use shard::ShardConnections;

use reader::Reader;
use writer::write_responses;

/// A client connection's byte stream: plain TCP, or TLS over it (the
/// handshake done). The plaintext path pays one match per poll.
pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<futures_rustls::server::TlsStream<TlsSocket>>),
}

/// The socket under a TLS stream, read through a buffer: rustls asks for
/// about 4 KiB at a time, and a receive per 4 KiB costs more than the
/// decryption at produce rates. The buffer holds two full TLS records.
type TlsSocket = futures::io::BufReader<TcpStream>;

/// Bytes of a TLS connection's read buffer ([`TlsSocket`]).
const TLS_READ_BUFFER_BYTES: usize = 2 * 17 * 1024;

impl Stream {
    /// The socket under it (timeouts, addresses).
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => tls.get_ref().0.get_ref(),
        }
    }
}

/// Both halves of a connection share the stream on one thread; each poll
/// borrows it only for the duration of the (synchronous) poll call. Over
/// TLS the reading half only reads records and the writing half only
/// writes them, so neither half's poll takes the other's waker.
struct Half(Rc<RefCell<Stream>>);

impl AsyncRead for Half {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        match &mut *self.0.borrow_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(&mut **tls).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Half {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match &mut *self.0.borrow_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(&mut **tls).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut *self.0.borrow_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(&mut **tls).poll_flush(cx),
        }
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut *self.0.borrow_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_close(cx),
            Stream::Tls(tls) => Pin::new(&mut **tls).poll_close(cx),
        }
    }
}

/// How long a client may take over its TLS handshake. The handshake is
/// async I/O on the shard (other connections go on while it waits), and
/// its CPU is one key exchange and signature: bounded per connection.
const TLS_HANDSHAKE_MS_MAX: u64 = 10_000;

/// A client listener as one shard serves it: its name, its protocol and,
/// for a TLS listener, its server side.
pub struct ServedListener {
    pub name: Rc<str>,
    pub protocol: SecurityProtocol,
    pub tls: Option<ServerTls>,
}

/// A request in flight: its response task, the bytes it holds and its
/// place in its API's in-flight count.
struct InFlight {
    response: Task<Answered>,
    bytes: u64,
    meter: Metered,
}

/// A request's outcome and when it was made (its answer encoded).
struct Answered {
    outcome: Outcome,
    at: Instant,
}

/// One request of API `key` in its API's in-flight count (`ApiStats`),
/// from its frame read until its answer is written or the connection
/// drops it.
struct Metered {
    broker: Rc<Broker>,
    key: i16,
}

impl Metered {
    fn start(broker: &Rc<Broker>, key: i16, bytes: usize) -> Metered {
        broker.stats.api.started(key, bytes);
        Metered {
            broker: broker.clone(),
            key,
        }
    }

    /// The answer made at `answered` is written.
    fn sent(&self, answered: Instant) {
        self.broker
            .stats
            .api
            .sent(self.key, micros(answered.elapsed()));
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        self.broker.stats.api.left(self.key);
    }
}

/// What the reader and the writer of one connection share.
struct Shared {
    /// Requests read and not yet answered (written or dropped).
    in_flight: Cell<usize>,
    /// Bytes of answers made but not yet written.
    responses_queued: Cell<usize>,
}

/// Why a connection is closed; logged as a warning with its peer.
#[derive(Debug, thiserror::Error)]
pub enum CloseReason {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("request decoding panicked: {0}")]
    DecodePanic(String),
    /// The connection's in-flight byte budget was closed.
    #[error(transparent)]
    Budget(#[from] glommio::GlommioError<()>),
    #[error("writer stopped")]
    WriterStopped,
    #[error("response writer stopped")]
    WriterGone,
    #[error("a request frame did not arrive within {limit:?} ({read} of {size} bytes read)")]
    FrameLate {
        limit: Duration,
        read: usize,
        /// The frame's whole size, "?" while its prefix is incomplete.
        size: String,
    },
    #[error("connection closed inside a frame ({0} bytes unread)")]
    ClosedInFrame(usize),
    #[error("read failed: {0}")]
    Read(std::io::Error),
    #[error("write failed: {0}")]
    Write(std::io::Error),
    #[error(
        "the client did not read a {bytes}-byte response within connections.max.idle.ms \
         ({limit:?})"
    )]
    Unread { bytes: usize, limit: Duration },
    /// The request's handling ended the connection (a panic, a response
    /// that cannot be encoded).
    #[error("{0}")]
    Handler(String),
}

/// How a connection ended, for the log.
enum Ending {
    /// The client closed, or went away: routine.
    Clean,
    /// Idle for the idle bound: routine, logged at debug as Kafka does.
    Idle(Duration),
    /// Anything else: logged as a warning with the reason.
    Closed(CloseReason),
}

pub async fn serve(
    broker: Rc<Broker>,
    shard: Rc<ShardConnections>,
    stream: TcpStream,
    slot: ConnectionSlot,
    listener: Rc<ServedListener>,
) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let conn = ConnLabel {
        shard: broker.shard().0,
        id: broker.stats.connections.get(),
        peer: peer.as_str().into(),
    };
    let session = Rc::new(Session::new(&listener.name, listener.protocol, slot.ip));
    let _ = stream.set_nodelay(true);
    let stream = match &listener.tls {
        None => Stream::Plain(stream),
        Some(tls) => {
            // Within the idle bound too: a client that connects and says
            // nothing holds its slot no longer than an idle one.
            let deadline = Duration::from_millis(TLS_HANDSHAKE_MS_MAX)
                .min(shard.max_idle.unwrap_or(Duration::MAX));
            let socket = TlsSocket::with_capacity(TLS_READ_BUFFER_BYTES, stream);
            match crate::tls::handshake(tls, socket, deadline).await {
                Ok(done) => {
                    session.set_principal(done.principal);
                    Stream::Tls(Box::new(done.stream))
                }
                Err(reason) => {
                    conn.span().in_scope(|| {
                        log::info!(
                            "closing connection from {peer} on listener {}: TLS handshake \
                             failed: {reason}",
                            listener.name
                        )
                    });
                    drop(slot);
                    return;
                }
            }
        }
    };
    if listener.protocol.uses_tls() {
        conn.span().in_scope(|| {
            session.with_principal(|p| {
                log::debug!(
                    "TLS connection from {peer} on listener {} as {p}",
                    listener.name
                )
            })
        });
    }
    let stream = Rc::new(RefCell::new(stream));
    let (queue, responses) =
        local_channel::new_bounded::<InFlight>(limits::CONNECTION_REQUESTS_IN_FLIGHT_MAX);
    let budget = Rc::new(Semaphore::new(
        limits::CONNECTION_BYTES_IN_FLIGHT_MAX as u64,
    ));
    let shared = Rc::new(Shared {
        in_flight: Cell::new(0),
        responses_queued: Cell::new(0),
    });
    // The writer tells the reader to stop when a response cannot be made
    // or written.
    let (close_tx, close_rx) = local_channel::new_bounded::<CloseReason>(1);
    let writer = glommio::spawn_local(write_responses(
        Half(stream.clone()),
        shard.clone(),
        responses,
        budget.clone(),
        shared.clone(),
        close_tx,
    ));
    let reader = Reader {
        broker: &broker,
        shard: &shard,
        session: &session,
        conn: &conn,
        stream: &stream,
        queue: &queue,
        budget: &budget,
        shared: &shared,
    };
    let closed = async { Ending::Closed(close_rx.recv().await.unwrap_or(CloseReason::WriterGone)) };
    conn.span()
        .in_scope(|| log::debug!("accepted connection from {peer}"));
    let ending = futures_lite::future::or(reader.run(), closed).await;
    shard.add_freed(limits::CONNECTION_FREED_BYTES_ESTIMATE);
    match ending {
        Ending::Clean => {
            conn.span()
                .in_scope(|| log::debug!("connection from {peer} closed by the client"));
            // Let the writer answer what was already asked.
            drop(queue);
            writer.await;
        }
        Ending::Idle(idle) => {
            conn.span()
                .in_scope(|| log::debug!("closing connection from {peer}: idle for {idle:?}"));
            broker.stats.connections_idle_closed.bump();
        }
        Ending::Closed(reason) => {
            conn.span()
                .in_scope(|| log::warn!("closing connection from {peer}: {reason}"));
            // Dropping the writer task and both halves closes the socket.
        }
    }
    drop(slot);
}

/// What log lines about a connection say about it (see `logging`). Spans
/// live only as long as one request, or one log line about the connection:
/// the tracing registry keeps the memory of as many spans as were ever
/// alive at once, so a span per idle connection would pin memory for the
/// peak number of connections.
struct ConnLabel {
    shard: usize,
    /// The shard's accept count when it was accepted.
    id: u64,
    peer: Rc<str>,
}

impl ConnLabel {
    fn span(&self) -> tracing::Span {
        tracing::warn_span!(
            "conn",
            shard = self.shard,
            conn = self.id,
            peer = &*self.peer
        )
    }
}

/// Applies the tuning profile's SO_SNDBUF / SO_RCVBUF to an accepted
/// connection (0 keeps the kernel's default and its auto-tuning).
pub fn set_buffer_sizes(stream: &TcpStream, tuning: &Tuning) -> std::io::Result<()> {
    let socket = socket2::SockRef::from(stream);
    if tuning.socket_send_buffer_bytes > 0 {
        socket.set_send_buffer_size(tuning.socket_send_buffer_bytes)?;
    }
    if tuning.socket_receive_buffer_bytes > 0 {
        socket.set_recv_buffer_size(tuning.socket_receive_buffer_bytes)?;
    }
    Ok(())
}

/// Decodes the header and body and starts the request (its frame read
/// at `read_at`) as its own task, which holds the frame's request memory
/// until it is done. A frame that cannot be decoded, or an API that is
/// not served, closes the connection.
fn start_request(
    broker: &Rc<Broker>,
    session: &Rc<Session>,
    conn: &ConnLabel,
    shared: &Rc<Shared>,
    request: Bytes,
    memory: Option<StaticPermit>,
    read_at: Instant,
) -> Result<(Task<Answered>, Metered), CloseReason> {
    // With its size prefix, as the answer's size is counted.
    let bytes = 4 + request.len();
    // Decoding runs on the reader, outside any task's unwind guard: a
    // decoder panic must end this connection, not the shard.
    let parsed = std::panic::catch_unwind(AssertUnwindSafe(|| dispatch::parse(request)))
        .map_err(|panic| CloseReason::DecodePanic(panic_message(&*panic)))??;
    let meter = Metered::start(broker, parsed.key_version().0, bytes);
    let label = parsed.label();
    let span = tracing::warn_span!(
        "request",
        shard = conn.shard,
        conn = conn.id,
        peer = &*conn.peer,
        api = %dispatch::ApiName(label.key),
        version = label.version.unwrap_or(-1),
        correlation_id = label.correlation_id,
        client_id = label.client_id.as_deref().unwrap_or(""),
    );
    let broker = broker.clone();
    let session = session.clone();
    let shared = shared.clone();
    let request = async move {
        let outcome = guarded(&broker, &session, parsed, read_at).await;
        // The request is done: its bytes no longer count against the
        // shard's request memory (its answer is bounded per connection).
        drop(memory);
        if let Some(response) = outcome.reply() {
            shared
                .responses_queued
                .set(shared.responses_queued.get() + response.len());
        }
        Answered {
            outcome,
            at: Instant::now(),
        }
    };
    Ok((glommio::spawn_local(request.instrument(span)), meter))
}

/// Handles one request with its panics caught: a panic closes the
/// connection with a log line naming the API, version and client id.
///
/// What is safe: everything the request owns (its decoded body, buffers,
/// the futures it awaits) is dropped by the unwind, and `RefCell` borrows
/// held at the panic are released by their guards (RefCell does not
/// poison), so later requests do not trip over them. The shard's
/// executor, its other connections and its other partitions carry on.
/// What is not: shared state the handler was changing when it panicked (a
/// partition, a group, the catalog copy) may be left half-changed, and a
/// task the handler spawned is not covered (a panic there still stops the
/// shard). corelog panics only on a broken invariant, so the panic is
/// logged as an error to be investigated, not as routine.
async fn guarded(
    broker: &Rc<Broker>,
    session: &Session,
    parsed: Parsed,
    read_at: Instant,
) -> Outcome {
    let what = parsed.label();
    let handled = AssertUnwindSafe(async {
        if injected_panic(&parsed) {
            panic!("panic injected for a test ({INJECT_PANIC_ENV})");
        }
        dispatch::handle(broker, session, parsed, read_at).await
    })
    .catch_unwind()
    .await;
    match handled {
        Ok(outcome) => outcome,
        Err(panic) => {
            broker.stats.request_panics.bump();
            let message = panic_message(&*panic);
            log::error!("{what} panicked: {message}; closing its connection");
            Outcome::Close(format!("{what} panicked"))
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Test-only fault injection: when this environment variable is set (read
/// once), a request whose client id equals its value panics inside its
/// handler, so tests can check that a panic closes only that connection.
/// Unset in production; it changes nothing unless set.
pub const INJECT_PANIC_ENV: &str = "CORELOG_TEST_PANIC_CLIENT_ID";

fn injected_panic(parsed: &Parsed) -> bool {
    static CLIENT_ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let wanted = CLIENT_ID.get_or_init(|| {
        std::env::var(INJECT_PANIC_ENV)
            .ok()
            .filter(|v| !v.is_empty())
    });
    match (wanted, parsed) {
        (Some(wanted), Parsed::Request { header, .. }) => {
            header.client_id.as_deref() == Some(wanted.as_str())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
