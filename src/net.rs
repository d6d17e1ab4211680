//! The network seam (docs/architecture.md, section 9): how a broker opens a
//! connection to another broker. `Tcp` is the real network (glommio sockets
//! on the calling shard); `MemNetwork` is an in-process network of bounded
//! pipes that tests use to drive the real client code through connection
//! faults (refused connections, a peer that closes inside a response, cut
//! links) deterministically and without sockets.
//!
//! What goes through it today: the replication client
//! (`replication::client::BrokerConnection`, a follower's fetches), over
//! [`BrokerNetwork`]: TCP, or TLS when the inter-broker listener uses it. The
//! controller quorum's Raft links stay on TCP: the simulation drives the
//! quorum's sans-I/O core (`cluster::quorum::voter`) instead.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::channel::mpsc;
use futures::StreamExt;
use futures_lite::{AsyncRead, AsyncWrite};

/// Opens byte-stream connections to peers.
pub trait Network: 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + 'static;
    /// A connection to `addr`, or the reason there is none within
    /// `deadline`.
    fn connect(
        &self,
        addr: SocketAddr,
        deadline: Duration,
    ) -> impl Future<Output = io::Result<Self::Stream>>;
}

/// The real network: TCP with Nagle off (a broker's requests are whole
/// frames written at once).
#[derive(Clone, Copy, Debug, Default)]
pub struct Tcp;

impl Network for Tcp {
    type Stream = glommio::net::TcpStream;

    async fn connect(&self, addr: SocketAddr, deadline: Duration) -> io::Result<Self::Stream> {
        let stream = glommio::net::TcpStream::connect_timeout(addr, deadline)
            .await
            .map_err(io::Error::from)?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// The network brokers reach each other on: TCP, wrapped in TLS when the
/// inter-broker listener uses it (the node's keystore is its client
/// certificate, its truststore says which brokers to trust; the peer's
/// certificate must name its IP address unless
/// `ssl.endpoint.identification.algorithm` is empty).
#[derive(Clone, Debug, Default)]
pub struct BrokerNetwork {
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl BrokerNetwork {
    pub fn tls(config: Arc<rustls::ClientConfig>) -> BrokerNetwork {
        BrokerNetwork { tls: Some(config) }
    }
}

/// Set once on the main thread before any shard starts, read only after.
static BROKER_NETWORK: OnceLock<BrokerNetwork> = OnceLock::new();

/// Sets the network every shard's replication client uses (once).
pub fn set_broker_network(network: BrokerNetwork) {
    let _ = BROKER_NETWORK.set(network);
}

/// The network set by [`set_broker_network`]; plain TCP when none was.
pub fn broker_network() -> &'static BrokerNetwork {
    BROKER_NETWORK.get_or_init(BrokerNetwork::default)
}

/// A connection to another broker: plain TCP, or TLS over it.
pub enum BrokerStream {
    Plain(glommio::net::TcpStream),
    Tls(Box<futures_rustls::client::TlsStream<glommio::net::TcpStream>>),
}

impl Network for BrokerNetwork {
    type Stream = BrokerStream;

    async fn connect(&self, addr: SocketAddr, deadline: Duration) -> io::Result<BrokerStream> {
        let started = std::time::Instant::now();
        let tcp = Tcp.connect(addr, deadline).await?;
        let Some(config) = &self.tls else {
            return Ok(BrokerStream::Plain(tcp));
        };
        let connector = futures_rustls::TlsConnector::from(config.clone());
        let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
        let left = deadline.saturating_sub(started.elapsed());
        let handshake = connector.connect(name, tcp);
        let late = async {
            glommio::timer::sleep(left).await;
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no TLS handshake with {addr} within {deadline:?}"),
            ))
        };
        let tls = futures_lite::future::or(handshake, late).await?;
        Ok(BrokerStream::Tls(Box::new(tls)))
    }
}

impl AsyncRead for BrokerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            BrokerStream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            BrokerStream::Tls(tls) => Pin::new(&mut **tls).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for BrokerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            BrokerStream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            BrokerStream::Tls(tls) => Pin::new(&mut **tls).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BrokerStream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            BrokerStream::Tls(tls) => Pin::new(&mut **tls).poll_flush(cx),
        }
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BrokerStream::Plain(tcp) => Pin::new(tcp).poll_close(cx),
            BrokerStream::Tls(tls) => Pin::new(&mut **tls).poll_close(cx),
        }
    }
}

/// Bytes one direction of an in-memory connection buffers before its
/// writer waits, as a socket's send buffer bounds a TCP writer.
pub const PIPE_BYTES: usize = 256 * 1024;
/// Connections a `MemListener` holds before it accepts them; past it a
/// connect is refused, as a full TCP backlog drops a SYN.
const BACKLOG: usize = 16;

/// One direction of an in-memory connection.
#[derive(Default)]
struct Pipe {
    bytes: VecDeque<u8>,
    /// The writer closed (or dropped) its end: the reader gets end of
    /// stream once the bytes are read.
    write_closed: bool,
    /// The reader dropped its end, or the link was cut: writes fail.
    read_closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl Pipe {
    fn wake_all(&mut self) {
        if let Some(w) = self.reader.take() {
            w.wake();
        }
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }
}

/// One end of an in-memory connection.
pub struct MemStream {
    incoming: Rc<RefCell<Pipe>>,
    outgoing: Rc<RefCell<Pipe>>,
}

impl MemStream {
    fn pair() -> (MemStream, MemStream) {
        let a_to_b = Rc::new(RefCell::new(Pipe::default()));
        let b_to_a = Rc::new(RefCell::new(Pipe::default()));
        (
            MemStream {
                incoming: b_to_a.clone(),
                outgoing: a_to_b.clone(),
            },
            MemStream {
                incoming: a_to_b,
                outgoing: b_to_a,
            },
        )
    }
}

impl AsyncRead for MemStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut pipe = self.incoming.borrow_mut();
        if pipe.read_closed {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        if pipe.bytes.is_empty() {
            if pipe.write_closed {
                return Poll::Ready(Ok(0));
            }
            pipe.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(pipe.bytes.len());
        for (slot, byte) in buf.iter_mut().zip(pipe.bytes.drain(..n)) {
            *slot = byte;
        }
        if let Some(w) = pipe.writer.take() {
            w.wake();
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for MemStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut pipe = self.outgoing.borrow_mut();
        if pipe.read_closed || pipe.write_closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let room = PIPE_BYTES - pipe.bytes.len();
        if room == 0 {
            pipe.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(room);
        pipe.bytes.extend(&buf[..n]);
        if let Some(w) = pipe.reader.take() {
            w.wake();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut pipe = self.outgoing.borrow_mut();
        pipe.write_closed = true;
        pipe.wake_all();
        Poll::Ready(Ok(()))
    }
}

impl Drop for MemStream {
    fn drop(&mut self) {
        let mut out = self.outgoing.borrow_mut();
        out.write_closed = true;
        out.wake_all();
        drop(out);
        let mut inc = self.incoming.borrow_mut();
        inc.read_closed = true;
        inc.wake_all();
    }
}

#[derive(Default)]
struct Endpoints {
    listeners: HashMap<SocketAddr, mpsc::Sender<MemStream>>,
    /// The pipes of every connection made to an address, for `cut`.
    links: HashMap<SocketAddr, Vec<Weak<RefCell<Pipe>>>>,
}

/// An in-process network: addresses are names, connections are pairs of
/// bounded pipes. Single-threaded, like the shard that uses it.
#[derive(Clone, Default)]
pub struct MemNetwork {
    endpoints: Rc<RefCell<Endpoints>>,
}

/// What `MemNetwork::listen` gives: the connections made to its address.
pub struct MemListener {
    incoming: mpsc::Receiver<MemStream>,
}

impl MemListener {
    /// The next connection; None once the network dropped the address.
    pub async fn accept(&mut self) -> Option<MemStream> {
        self.incoming.next().await
    }
}

impl MemNetwork {
    /// Listens on `addr` (replacing an earlier listener there).
    pub fn listen(&self, addr: SocketAddr) -> MemListener {
        let (tx, rx) = mpsc::channel(BACKLOG);
        self.endpoints.borrow_mut().listeners.insert(addr, tx);
        MemListener { incoming: rx }
    }

    /// Stops listening on `addr`: new connections are refused.
    pub fn close(&self, addr: SocketAddr) {
        self.endpoints.borrow_mut().listeners.remove(&addr);
    }

    /// Cuts every open connection to `addr`, as a failed link does: both
    /// ends' reads fail with a reset and their writes with a broken pipe,
    /// whatever was in flight is lost.
    pub fn cut(&self, addr: SocketAddr) {
        let links = self
            .endpoints
            .borrow_mut()
            .links
            .remove(&addr)
            .unwrap_or_default();
        for pipe in links.iter().filter_map(Weak::upgrade) {
            let mut pipe = pipe.borrow_mut();
            pipe.bytes.clear();
            pipe.read_closed = true;
            pipe.write_closed = true;
            pipe.wake_all();
        }
    }
}

impl Network for MemNetwork {
    type Stream = MemStream;

    async fn connect(&self, addr: SocketAddr, _deadline: Duration) -> io::Result<MemStream> {
        let mut endpoints = self.endpoints.borrow_mut();
        let Some(listener) = endpoints.listeners.get_mut(&addr) else {
            return Err(io::ErrorKind::ConnectionRefused.into());
        };
        let (client, server) = MemStream::pair();
        let pipes = [
            Rc::downgrade(&client.incoming),
            Rc::downgrade(&client.outgoing),
        ];
        if listener.try_send(server).is_err() {
            return Err(io::ErrorKind::ConnectionRefused.into());
        }
        let links = endpoints.links.entry(addr).or_default();
        links.retain(|p| p.strong_count() > 0);
        links.extend(pipes);
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::{AsyncReadExt, AsyncWriteExt};

    fn run(test: impl Future<Output = ()> + 'static) {
        glommio::LocalExecutorBuilder::default()
            .make()
            .unwrap()
            .run(test);
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    #[test]
    fn bytes_cross_in_order_and_a_closed_end_reads_as_end_of_stream() {
        run(async {
            let net = MemNetwork::default();
            let mut listener = net.listen(addr(1));
            let mut client = net.connect(addr(1), Duration::ZERO).await.unwrap();
            let mut server = listener.accept().await.unwrap();
            // More than a pipe holds: the writer waits for the reader.
            let sent: Vec<u8> = (0..PIPE_BYTES * 2 + 7).map(|i| i as u8).collect();
            let writer = glommio::spawn_local({
                let sent = sent.clone();
                async move {
                    client.write_all(&sent).await.unwrap();
                    client.close().await.unwrap();
                    client
                }
            });
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, sent);
            drop(writer.await);
        });
    }

    #[test]
    fn nothing_listening_refuses_and_a_cut_link_fails_both_ends() {
        run(async {
            let net = MemNetwork::default();
            let refused = net.connect(addr(2), Duration::ZERO).await.err().unwrap();
            assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
            let mut listener = net.listen(addr(2));
            let mut client = net.connect(addr(2), Duration::ZERO).await.unwrap();
            let mut server = listener.accept().await.unwrap();
            client.write_all(b"lost").await.unwrap();
            net.cut(addr(2));
            let mut buf = [0u8; 4];
            let read = server.read(&mut buf).await.err().unwrap();
            assert_eq!(read.kind(), io::ErrorKind::ConnectionReset);
            let write = client.write_all(b"x").await.err().unwrap();
            assert_eq!(write.kind(), io::ErrorKind::BrokenPipe);
            net.close(addr(2));
            let refused = net.connect(addr(2), Duration::ZERO).await.err().unwrap();
            assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
        });
    }
}

/// Whether a listener accepts a connection to `addr` within `timeout`
/// (blocking; for start-up checks and tools, never on a shard). A connect
/// to a local port nobody listens on can still succeed: when the kernel
/// picks that same port as the ephemeral source port, the socket connects
/// to itself (TCP simultaneous open). Ports taken from the ephemeral range,
/// as tests and dev clusters take them, meet this now and then, so such a
/// connection counts as nobody listening.
pub fn listener_accepts(addr: SocketAddr, timeout: Duration) -> bool {
    std::net::TcpStream::connect_timeout(&addr, timeout)
        .is_ok_and(|stream| !connected_to_itself(&stream))
}

/// Whether a connection's two ends are the same socket (or cannot be told).
fn connected_to_itself(stream: &std::net::TcpStream) -> bool {
    match (stream.local_addr(), stream.peer_addr()) {
        (Ok(local), Ok(peer)) => local == peer,
        _ => true,
    }
}

#[cfg(test)]
mod listener_tests {
    use super::*;

    #[test]
    fn a_listener_accepts_and_a_closed_port_does_not() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(listener_accepts(addr, Duration::from_secs(1)));
        drop(listener);
        assert!(!listener_accepts(addr, Duration::from_secs(1)));
    }

    /// A socket bound to port P connecting to 127.0.0.1:P connects to
    /// itself; that is not a listener.
    #[test]
    fn a_self_connection_is_not_a_listener() {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        let addr = socket.local_addr().unwrap().as_socket().unwrap();
        // The same self-connection the kernel may make when it picks P as
        // the source port of a connect to P.
        socket.connect(&addr.into()).unwrap();
        let stream: std::net::TcpStream = socket.into();
        assert!(connected_to_itself(&stream));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let other = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert!(!connected_to_itself(&other));
    }
}
