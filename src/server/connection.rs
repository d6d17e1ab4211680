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

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use futures::FutureExt;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::channels::local_channel;
use glommio::net::TcpStream;
use glommio::sync::{Semaphore, StaticPermit};
use glommio::Task;
use tracing::Instrument;

use super::broker::Broker;
use super::dispatch::{self, Outcome, Parsed};
use crate::config::Tuning;
use crate::limits;
use crate::protocol::frame;

/// The per-shard side of connection handling: the shard's request memory
/// and the bounds every connection of the shard applies. One per shard.
pub struct ShardConnections {
    memory: RequestMemory,
    frame_bytes_max: usize,
    max_idle: Option<Duration>,
    frame_read_max: Duration,
    /// Bytes freed (closed connections, large frames) since the last
    /// `malloc_trim` (see [`crate::memory`]), estimated.
    freed: Cell<u64>,
}

impl ShardConnections {
    pub fn new(broker: &Broker) -> ShardConnections {
        let config = &broker.config.broker;
        let max_idle = config.connections_max_idle();
        let frame_read_max =
            Duration::from_millis(limits::FRAME_READ_MS_MAX).min(max_idle.unwrap_or(Duration::MAX));
        ShardConnections {
            memory: RequestMemory::new(config.queued_request_bytes_per_shard(broker.config.shards)),
            frame_bytes_max: config.socket_request_max_bytes,
            max_idle,
            frame_read_max,
            freed: Cell::new(0),
        }
    }

    /// Whether enough memory was freed since the last time it said so to
    /// be worth handing back to the kernel (and starts counting again).
    /// Below `MEMORY_TRIM_FREED_BYTES_MIN` the trim's cost (a walk over the
    /// allocator's free lists) is not worth it.
    pub fn take_freed(&self) -> bool {
        let enough = self.freed.get() >= limits::MEMORY_TRIM_FREED_BYTES_MIN;
        if enough {
            self.freed.set(0);
        }
        enough
    }

    fn add_freed(&self, bytes: usize) {
        self.freed
            .set(self.freed.get().saturating_add(bytes as u64));
    }
}

/// The shard's share of `queued.max.request.bytes`: request bytes being read
/// or waiting for an answer. A frame reserves its whole size (for requests
/// other than Produce, a multiple of it: what they take once decoded, see
/// `frame::announced_request`) once its prefix and api key are known,
/// before its body is read, and gives it back when its
/// request is done. Reserving whole frames (not bytes as they arrive) means
/// two half-read frames can never wait on each other for the rest of the
/// share; the memory itself is still only taken as bytes arrive, so a
/// reservation held by a client that sends nothing costs no memory and ends
/// at the frame deadline.
///
/// A frame larger than the share reserves the whole share: it is read
/// alone, once nothing else holds request memory on the shard, so a shard
/// holds at most max(share, socket.request.max.bytes). glommio's semaphore
/// wakes the waiters that fit, so small requests pass a large one that
/// waits for the share to drain.
///
/// A request holds its reservation until it is answered, so a share filled
/// with `acks=all` produce requests that wait for followers also holds back
/// the followers' (small) fetches on this shard until some produce request
/// completes or times out: a stall bounded by the produce timeout, as with
/// Kafka's own request memory pool on a shared listener.
struct RequestMemory {
    /// None: unbounded (`queued.max.request.bytes=-1`).
    share: Option<u64>,
    semaphore: Rc<Semaphore>,
}

impl RequestMemory {
    fn new(share: Option<u64>) -> RequestMemory {
        RequestMemory {
            share,
            semaphore: Rc::new(Semaphore::new(share.unwrap_or(0))),
        }
    }

    /// Waits until `bytes` (at most the whole share) can be reserved.
    async fn reserve(&self, bytes: u64) -> Option<StaticPermit> {
        let share = self.share?;
        // The semaphore is never closed, so acquiring cannot fail.
        self.semaphore
            .acquire_static_permit(bytes.clamp(1, share.max(1)))
            .await
            .ok()
    }
}

/// Open client connections of the whole node, by peer address. Shards
/// accept connections independently (SO_REUSEPORT spreads them by a hash
/// of the peer, not by load), so a per-shard share of `max.connections`
/// would refuse connections on one shard while another has room; instead
/// the shards share these counts. They are touched once on accept and once
/// on close, never on the data path, so a mutex is cheap here. One broker
/// per process (corelog runs one; `dev-cluster` runs each node as its own
/// process).
static NODE_CONNECTIONS: Mutex<NodeConnections> = Mutex::new(NodeConnections {
    total: 0,
    per_ip: BTreeMap::new(),
});

pub struct NodeConnections {
    total: usize,
    per_ip: BTreeMap<IpAddr, usize>,
}

/// Why a new connection was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    MaxConnections(usize),
    MaxConnectionsPerIp(usize),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::MaxConnections(n) => write!(f, "max.connections ({n}) reached"),
            Refusal::MaxConnectionsPerIp(n) => {
                write!(f, "max.connections.per.ip ({n}) reached for this address")
            }
        }
    }
}

/// One admitted connection's place in [`NODE_CONNECTIONS`]; dropping it
/// (when the connection's task ends, however it ends) frees the place.
pub struct ConnectionSlot {
    ip: IpAddr,
}

impl ConnectionSlot {
    pub fn admit(ip: IpAddr, max_total: usize, max_for_ip: usize) -> Result<Self, Refusal> {
        let mut node = NODE_CONNECTIONS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if node.total >= max_total {
            return Err(Refusal::MaxConnections(max_total));
        }
        let from_ip = node.per_ip.get(&ip).copied().unwrap_or(0);
        if from_ip >= max_for_ip {
            return Err(Refusal::MaxConnectionsPerIp(max_for_ip));
        }
        node.total += 1;
        node.per_ip.insert(ip, from_ip + 1);
        Ok(ConnectionSlot { ip })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut node = NODE_CONNECTIONS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        node.total = node.total.saturating_sub(1);
        if let Some(count) = node.per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                node.per_ip.remove(&self.ip);
            }
        }
    }
}

/// Both halves of a connection share the stream on one thread; each poll
/// borrows it only for the duration of the (synchronous) poll call.
struct Half(Rc<RefCell<TcpStream>>);

impl AsyncRead for Half {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_read(cx, buf)
    }
}

impl AsyncWrite for Half {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_flush(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_close(cx)
    }
}

/// A request in flight: its response task and the bytes it holds.
struct InFlight {
    response: Task<Outcome>,
    bytes: u64,
}

/// What the reader and the writer of one connection share.
struct Shared {
    /// Requests read and not yet answered (written or dropped).
    in_flight: Cell<usize>,
    /// Bytes of answers made but not yet written.
    responses_queued: Cell<usize>,
}

/// How a connection ended, for the log.
enum Ending {
    /// The client closed, or went away: routine.
    Clean,
    /// Idle for the idle bound: routine, logged at debug as Kafka does.
    Idle(Duration),
    /// Anything else: logged as a warning with the reason.
    Closed(String),
}

pub async fn serve(
    broker: Rc<Broker>,
    shard: Rc<ShardConnections>,
    stream: TcpStream,
    slot: ConnectionSlot,
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
    // Kafka shows a member's host as "/<ip>" (DescribeGroups, the CLI).
    let client_host: Rc<str> = format!("/{}", slot.ip).into();
    let _ = stream.set_nodelay(true);
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
    let (close_tx, close_rx) = local_channel::new_bounded::<String>(1);
    let writer = glommio::spawn_local(write_responses(
        Half(stream.clone()),
        shard.max_idle,
        responses,
        budget.clone(),
        shared.clone(),
        close_tx,
    ));
    let reader = Reader {
        broker: &broker,
        shard: &shard,
        client_host: &client_host,
        conn: &conn,
        stream: &stream,
        queue: &queue,
        budget: &budget,
        shared: &shared,
    };
    let closed = async {
        Ending::Closed(
            close_rx
                .recv()
                .await
                .unwrap_or_else(|| "response writer stopped".into()),
        )
    };
    let ending = futures_lite::future::or(reader.run(), closed).await;
    shard.add_freed(limits::CONNECTION_FREED_BYTES_ESTIMATE);
    match ending {
        Ending::Clean => {
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

struct Reader<'a> {
    broker: &'a Rc<Broker>,
    shard: &'a Rc<ShardConnections>,
    client_host: &'a Rc<str>,
    conn: &'a ConnLabel,
    stream: &'a Rc<RefCell<TcpStream>>,
    queue: &'a local_channel::LocalSender<InFlight>,
    budget: &'a Rc<Semaphore>,
    shared: &'a Rc<Shared>,
}

/// The frame being read: its size and its reservation, once its prefix is
/// in; and when its first byte arrived (less any time spent waiting for
/// request memory, which is not the client's doing).
struct Partial {
    started: Instant,
    size: Option<usize>,
    memory: Option<StaticPermit>,
}

impl Reader<'_> {
    async fn run(self) -> Ending {
        let mut buf = BytesMut::new();
        let mut partial: Option<Partial> = None;
        let mut reader = Half(self.stream.clone());
        loop {
            if let Err(reason) = self.start_frames(&mut buf, &mut partial).await {
                return Ending::Closed(reason);
            }
            if buf.is_empty() && buf.capacity() > 0 {
                // Frames moved out of the buffer share its allocation;
                // keeping the (empty) rest would keep all of it alive for
                // as long as the connection waits. The next read starts a
                // small one.
                buf = BytesMut::new();
            }
            self.wait_for_answers_read().await;
            let timeout = match &partial {
                Some(p) => {
                    let left = self
                        .shard
                        .frame_read_max
                        .saturating_sub(p.started.elapsed());
                    if left.is_zero() {
                        self.broker.stats.frames_timed_out.bump();
                        return Ending::Closed(format!(
                            "a request frame did not arrive within {:?} ({} of {} bytes read)",
                            self.shard.frame_read_max,
                            buf.len(),
                            p.size
                                .map_or_else(|| "?".to_string(), |s| (s + 4).to_string())
                        ));
                    }
                    Some(left)
                }
                None => self.shard.max_idle,
            };
            let _ = self.stream.borrow().set_read_timeout(timeout);
            let start = buf.len();
            let wanted = read_size(partial.as_ref().and_then(|p| p.size), start);
            buf.resize(start + wanted, 0);
            let read = reader.read(&mut buf[start..]).await;
            match read {
                Ok(0) => {
                    buf.truncate(start);
                    return if buf.is_empty() {
                        Ending::Clean
                    } else {
                        Ending::Closed(format!(
                            "connection closed inside a frame ({} bytes unread)",
                            buf.len()
                        ))
                    };
                }
                Ok(n) => {
                    buf.truncate(start + n);
                    if partial.is_none() {
                        partial = Some(Partial {
                            started: Instant::now(),
                            size: None,
                            memory: None,
                        });
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    buf.truncate(start);
                    // Silent with nothing in flight: idle. A request being
                    // handled (a long-poll fetch) is not idleness; the
                    // frame deadline is checked at the top of the loop.
                    if partial.is_none() && self.shared.in_flight.get() == 0 {
                        if let Some(idle) = self.shard.max_idle {
                            return Ending::Idle(idle);
                        }
                    }
                }
                // A client that goes away mid-stream is routine, not an error.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                    ) =>
                {
                    return Ending::Clean
                }
                Err(e) => return Ending::Closed(format!("read failed: {e}")),
            }
        }
    }

    /// Starts every request whose frame is complete in `buf`, reserving
    /// each frame's request memory as soon as its size is known (waiting
    /// for it: backpressure).
    async fn start_frames(
        &self,
        buf: &mut BytesMut,
        partial: &mut Option<Partial>,
    ) -> Result<(), String> {
        loop {
            let Some(current) = partial.as_mut() else {
                return Ok(());
            };
            if current.size.is_none() {
                let Some(announced) = frame::announced_request(buf, self.shard.frame_bytes_max)
                    .map_err(|e| e.to_string())?
                else {
                    return Ok(());
                };
                current.size = Some(announced.size);
                let waiting = Instant::now();
                current.memory = self.shard.memory.reserve(4 + announced.memory).await;
                current.started += waiting.elapsed();
            }
            let size = current.size.unwrap_or(0);
            if buf.len() < 4 + size {
                return Ok(());
            }
            let memory = current.memory.take();
            buf.advance(4);
            let request = buf.split_to(size).freeze();
            *partial = (!buf.is_empty()).then(|| Partial {
                started: Instant::now(),
                size: None,
                memory: None,
            });
            if size > limits::CONNECTION_LARGE_FRAME_BYTES {
                self.shard.add_freed(size);
            }
            let bytes = request.len() as u64;
            // Backpressure: wait until earlier requests' bytes are answered.
            self.budget
                .acquire(bytes)
                .await
                .map_err(|e| e.to_string())?;
            let response = start_request(
                self.broker,
                self.client_host,
                self.conn,
                self.shared,
                request,
                memory,
            )?;
            self.shared.in_flight.set(self.shared.in_flight.get() + 1);
            if self.queue.send(InFlight { response, bytes }).await.is_err() {
                return Err("writer stopped".into());
            }
        }
    }

    /// Holds the reader while the client leaves too many answers unread.
    /// The writer closes the connection if the client reads nothing for
    /// the idle bound, which ends this wait with the connection.
    async fn wait_for_answers_read(&self) {
        while self.shared.responses_queued.get() > limits::CONNECTION_RESPONSE_BYTES_QUEUED_MAX {
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// How many bytes the next read may bring: the rest of the frame when its
/// size is known, but never more than the bytes already received (plus the
/// minimum), so the buffer grows with what arrives, in bounded steps.
fn read_size(frame_size: Option<usize>, buffered: usize) -> usize {
    let step = buffered.clamp(
        limits::CONNECTION_READ_BYTES_MIN,
        limits::CONNECTION_READ_STEP_BYTES_MAX,
    );
    match frame_size {
        Some(size) => (4 + size)
            .saturating_sub(buffered)
            .clamp(1, step)
            // Room for the start of a pipelined next frame costs nothing extra.
            .max(limits::CONNECTION_READ_BYTES_MIN.min(step)),
        None => step,
    }
}

/// Writes the answers in the order their requests came. A client that
/// does not take a whole answer within the idle bound is cut off: it does
/// not read (or reads so little that its answers would pile up). "No
/// progress for the idle bound" is not enough: the kernel buffers of a
/// client that reads nothing keep taking a few hundred KB every few seconds
/// (seen on loopback under CPU load), which would keep such a connection,
/// and the answers queued for it, alive for ever.
async fn write_responses(
    mut writer: Half,
    take_within: Option<Duration>,
    responses: local_channel::LocalReceiver<InFlight>,
    budget: Rc<Semaphore>,
    shared: Rc<Shared>,
    close: local_channel::LocalSender<String>,
) {
    while let Some(in_flight) = responses.recv().await {
        let outcome = in_flight.response.await;
        budget.signal(in_flight.bytes);
        let result = match outcome {
            Outcome::Reply(response) => {
                let written = write_within(&mut writer, &response, take_within).await;
                shared
                    .responses_queued
                    .set(shared.responses_queued.get().saturating_sub(response.len()));
                written
            }
            Outcome::NoReply => Ok(()),
            Outcome::Close(reason) => Err(reason),
        };
        shared
            .in_flight
            .set(shared.in_flight.get().saturating_sub(1));
        if let Err(reason) = result {
            let _ = close.try_send(reason);
            return;
        }
    }
}

/// Writes one answer whole, or says why not: the client went away, or did
/// not take it within `limit`.
async fn write_within(
    writer: &mut Half,
    response: &[u8],
    limit: Option<Duration>,
) -> Result<(), String> {
    let write = async {
        writer
            .write_all(response)
            .await
            .map_err(|e| format!("write failed: {e}"))
    };
    let Some(limit) = limit else {
        return write.await;
    };
    // Most answers fit in the socket buffer at once: no timer for those.
    let mut write = std::pin::pin!(write);
    if let Some(done) = futures_lite::future::poll_once(&mut write).await {
        return done;
    }
    let late = async {
        glommio::timer::sleep(limit).await;
        Err(format!(
            "the client did not read a {}-byte response within connections.max.idle.ms ({limit:?})",
            response.len()
        ))
    };
    futures_lite::future::or(write, late).await
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

/// Decodes the header and body and starts the request as its own task,
/// which holds the frame's request memory until it is done. A frame that
/// cannot be decoded, or an API that is not served, closes the connection.
fn start_request(
    broker: &Rc<Broker>,
    client_host: &Rc<str>,
    conn: &ConnLabel,
    shared: &Rc<Shared>,
    request: Bytes,
    memory: Option<StaticPermit>,
) -> Result<Task<Outcome>, String> {
    // Decoding runs on the reader, outside any task's unwind guard: a
    // decoder panic must end this connection, not the shard.
    let parsed = std::panic::catch_unwind(AssertUnwindSafe(|| dispatch::parse(request)))
        .map_err(|panic| format!("request decoding panicked: {}", panic_message(&*panic)))??;
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
    let client_host = client_host.clone();
    let shared = shared.clone();
    let request = async move {
        let outcome = guarded(&broker, &client_host, parsed).await;
        // The request is done: its bytes no longer count against the
        // shard's request memory (its answer is bounded per connection).
        drop(memory);
        if let Outcome::Reply(response) = &outcome {
            shared
                .responses_queued
                .set(shared.responses_queued.get() + response.len());
        }
        outcome
    };
    Ok(glommio::spawn_local(request.instrument(span)))
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
async fn guarded(broker: &Rc<Broker>, client_host: &str, parsed: Parsed) -> Outcome {
    let what = parsed.label();
    let handled = AssertUnwindSafe(async {
        if injected_panic(&parsed) {
            panic!("panic injected for a test ({INJECT_PANIC_ENV})");
        }
        dispatch::handle(broker, client_host, parsed).await
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
mod tests {
    use super::*;
    use glommio::net::TcpListener;

    fn buffer_sizes(stream: &TcpStream) -> (usize, usize) {
        let socket = socket2::SockRef::from(stream);
        (
            socket.send_buffer_size().unwrap(),
            socket.recv_buffer_size().unwrap(),
        )
    }

    #[test]
    fn tuning_sets_socket_buffers_of_accepted_connections() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                let accept = || async {
                    let (accepted, _client) =
                        futures::join!(async { listener.accept().await.unwrap() }, async {
                            TcpStream::connect(addr).await.unwrap()
                        });
                    (accepted, _client)
                };
                // 0 keeps the kernel's sizes.
                let (plain, _c1) = accept().await;
                let before = buffer_sizes(&plain);
                set_buffer_sizes(&plain, &Tuning::default()).unwrap();
                assert_eq!(buffer_sizes(&plain), before);
                // Sizes unlike the kernel's defaults here (16 KiB send,
                // 128 KiB receive); Linux reports twice what was set.
                let wanted = 48 * 1024;
                let tuning = Tuning {
                    socket_send_buffer_bytes: wanted,
                    socket_receive_buffer_bytes: wanted,
                    ..Tuning::default()
                };
                let (tuned, _c2) = accept().await;
                set_buffer_sizes(&tuned, &tuning).unwrap();
                let (send, receive) = buffer_sizes(&tuned);
                assert!(send >= wanted && send != before.0, "SO_SNDBUF {send}");
                assert!(
                    receive >= wanted && receive != before.1,
                    "SO_RCVBUF {receive}"
                );
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn reads_grow_with_the_bytes_received() {
        let min = limits::CONNECTION_READ_BYTES_MIN;
        let step = limits::CONNECTION_READ_STEP_BYTES_MAX;
        // Nothing known yet: the minimum.
        assert_eq!(read_size(None, 0), min);
        // A 100 MiB prefix alone takes no more than the minimum.
        assert_eq!(read_size(Some(100 << 20), 4), min);
        // The buffer at most doubles per read, and steps are capped.
        assert_eq!(read_size(Some(100 << 20), 64 << 10), 64 << 10);
        assert_eq!(read_size(Some(100 << 20), 50 << 20), step);
        // The end of a frame: its rest, or the minimum to catch what
        // follows it.
        assert_eq!(read_size(Some(10_000), 9_000), min);
        assert_eq!(read_size(Some(100), 50), min);
        // Summing steps from a bare prefix, a 100 MiB frame never holds more
        // than twice what it received.
        let (mut buffered, size) = (4usize, 100usize << 20);
        while buffered < size + 4 {
            let next = read_size(Some(size), buffered);
            assert!(next <= buffered.max(min), "{next} after {buffered}");
            buffered += next.min(size + 4 - buffered);
        }
    }

    #[test]
    fn node_connection_counts_refuse_past_their_limits() {
        // A documentation address of its own, so other tests' counts do
        // not mix in.
        let ip: IpAddr = "192.0.2.77".parse().unwrap();
        let other: IpAddr = "192.0.2.78".parse().unwrap();
        let a = ConnectionSlot::admit(ip, usize::MAX, 2).unwrap();
        let b = ConnectionSlot::admit(ip, usize::MAX, 2).unwrap();
        assert_eq!(
            ConnectionSlot::admit(ip, usize::MAX, 2).err(),
            Some(Refusal::MaxConnectionsPerIp(2))
        );
        let c = ConnectionSlot::admit(other, usize::MAX, 2).unwrap();
        drop(a);
        let d = ConnectionSlot::admit(ip, usize::MAX, 2).unwrap();
        let total = NODE_CONNECTIONS.lock().unwrap().total;
        assert_eq!(
            ConnectionSlot::admit(other, total, usize::MAX).err(),
            Some(Refusal::MaxConnections(total))
        );
        drop((b, c, d));
        assert!(!NODE_CONNECTIONS.lock().unwrap().per_ip.contains_key(&ip));
    }
}
