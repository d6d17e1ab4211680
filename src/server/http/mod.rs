//! The node's HTTP listener (`http.listeners`, default 127.0.0.1:9644):
//! `/health`, `/ready` and `/metrics` (Prometheus' text format, the
//! families of `crate::metrics::families`), for operators, load balancers
//! and Prometheus; and the web console at `/` (`console`) with the JSON
//! admin API it uses under `/api/v1` (`api`), docs/console.md.
//!
//! One listener per node, on shard 0's executor, in a task queue of its
//! own with small shares so a scrape never delays requests. It is bound as
//! soon as shard 0 has joined the mesh, before partitions are opened, so
//! `/health` answers and `/ready` tells what it waits for during a long
//! log recovery.
//!
//! HTTP/1.1 by hyper over glommio's TCP stream (`io`); hyper's HTTP/1
//! server spawns nothing, so it needs no executor, and instead of its
//! timer (whose sleeps must be `Send`, which glommio's are not) each
//! connection has a watchdog (`Deadline`): a request head must arrive
//! within `limits::HTTP_REQUEST_HEAD_MS` of connecting or of the previous
//! answer, so idle and slow clients are closed. Bounds: at most
//! `limits::HTTP_CONNECTIONS_MAX` connections (one more is closed at
//! accept), request heads of at most `limits::HTTP_HEAD_BYTES_MAX` bytes
//! and `limits::HTTP_HEADERS_MAX` lines (431, closed), bodies of at most
//! `limits::HTTP_BODY_BYTES_MAX` (413, closed); a malformed request gets
//! 400 from hyper and is closed.

pub mod api;
pub mod console;
mod io;
mod ready;
pub mod routes;
mod scrape;

use std::cell::{Cell, OnceCell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::net::{TcpListener, TcpStream};
use glommio::TaskQueueHandle;

use super::broker::Broker;
use crate::limits;
use crate::log::progress::RecoveryProgress;

/// What the listener answers from: the shard's broker once it exists, and
/// the node's start-up state before.
pub struct HttpState {
    /// Shard 0's broker, set when it is built (before its partitions open).
    pub broker: Rc<OnceCell<Rc<Broker>>>,
    pub recovery: Arc<RecoveryProgress>,
    /// Set once shard 0 listens for Kafka clients (every shard started).
    serving: Cell<bool>,
    /// When the listener started: the node's uptime.
    started: Instant,
    /// Open HTTP connections.
    connections: Cell<usize>,
}

impl HttpState {
    pub fn new(broker: Rc<OnceCell<Rc<Broker>>>, recovery: Arc<RecoveryProgress>) -> Rc<Self> {
        Rc::new(HttpState {
            broker,
            recovery,
            serving: Cell::new(false),
            started: Instant::now(),
            connections: Cell::new(0),
        })
    }

    /// Every shard serves and the Kafka listener is bound.
    pub fn set_serving(&self) {
        self.serving.set(true);
    }
}

/// Binds `addr` and serves it in `queue` until the returned task is
/// dropped; logs the console's address when it is on.
pub fn start(
    state: Rc<HttpState>,
    addr: SocketAddr,
    queue: TaskQueueHandle,
    console: bool,
) -> Result<glommio::Task<()>, glommio::GlommioError<()>> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr().unwrap_or(addr);
    log::info!("HTTP on http://{bound} (/metrics, /health, /ready)");
    if console {
        log::info!("console: http://{bound}/");
    }
    Ok(
        glommio::spawn_local_into(accept_loop(state, listener, queue), queue)
            .expect("task queue exists"),
    )
}

async fn accept_loop(state: Rc<HttpState>, listener: TcpListener, queue: TaskQueueHandle) {
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(e) => {
                log::warn!("HTTP accept failed: {e}");
                // Out of file descriptors and the like: do not spin.
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if state.connections.get() >= limits::HTTP_CONNECTIONS_MAX {
            log::debug!(
                "HTTP: refusing a connection: {} are open",
                limits::HTTP_CONNECTIONS_MAX
            );
            // Dropping the stream closes it.
            continue;
        }
        let open = OpenConnection::count(&state);
        glommio::spawn_local_into(serve(open, stream), queue)
            .expect("task queue exists")
            .detach();
    }
}

/// One connection in [`HttpState::connections`] until dropped.
struct OpenConnection(Rc<HttpState>);

impl OpenConnection {
    fn count(state: &Rc<HttpState>) -> OpenConnection {
        state.connections.set(state.connections.get() + 1);
        OpenConnection(state.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        let open = &self.0.connections;
        open.set(open.get().saturating_sub(1));
    }
}

/// When the connection's next request head must have arrived; None while
/// a request is being answered (the handlers bound their own waits).
struct Deadline(Cell<Option<Instant>>);

impl Deadline {
    fn arm(&self) {
        let within = Duration::from_millis(limits::HTTP_REQUEST_HEAD_MS);
        self.0.set(Some(Instant::now() + within));
    }

    fn clear(&self) {
        self.0.set(None);
    }

    /// Returns once the deadline has passed.
    async fn passed(&self) {
        loop {
            let now = Instant::now();
            match self.0.get() {
                Some(at) if at <= now => return,
                Some(at) => glommio::timer::sleep(at - now).await,
                // Answering: look again soon, a new deadline comes with
                // the answer.
                None => glommio::timer::sleep(Duration::from_secs(1)).await,
            }
        }
    }
}

/// hyper's HTTP/1 server as every connection runs it (its bounds; the HTTP
/// fuzz target serves its inputs with the same).
pub fn connection_builder() -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .max_buf_size(limits::HTTP_HEAD_BYTES_MAX)
        .max_headers(limits::HTTP_HEADERS_MAX)
        // Bounded by the watchdog instead (module doc).
        .header_read_timeout(None)
        .keep_alive(true);
    builder
}

/// Serves one connection until the client closes it, hyper closes it (an
/// error, `Connection: close`) or its deadline passes.
async fn serve(open: OpenConnection, stream: TcpStream) {
    let state = open.0.clone();
    let peer = stream.peer_addr().ok();
    let deadline = Rc::new(Deadline(Cell::new(None)));
    deadline.arm();
    let answering = deadline.clone();
    let service = hyper::service::service_fn(move |request| {
        answering.clear();
        let (state, answering) = (state.clone(), answering.clone());
        async move {
            let response = routes::respond(&state, request).await;
            answering.arm();
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let builder = connection_builder();
    let stream = Rc::new(RefCell::new(stream));
    let connection = builder.serve_connection(io::HttpIo::new(stream.clone()), service);
    let ending = futures_lite::future::or(async { Some(connection.await) }, async {
        deadline.passed().await;
        None
    })
    .await;
    // hyper is done with the stream (its connection is dropped): close it
    // gently after an answer, at once after a deadline.
    if let (Some(_), Ok(stream)) = (&ending, Rc::try_unwrap(stream)) {
        io::linger(stream.into_inner()).await;
    }
    match ending {
        Some(Ok(())) => {}
        Some(Err(e)) => log::debug!("HTTP connection from {peer:?} ended: {e}"),
        None => log::debug!(
            "HTTP connection from {peer:?} closed: no request within {} ms",
            limits::HTTP_REQUEST_HEAD_MS
        ),
    }
    drop(open);
}
