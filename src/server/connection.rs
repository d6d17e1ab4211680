//! One client connection: read frames, start each request as its own task
//! (so pipelined requests proceed concurrently), and write the responses back
//! strictly in request order, as Kafka clients require.
//!
//! Bounded: at most `CONNECTION_REQUESTS_IN_FLIGHT_MAX` requests and
//! `CONNECTION_BYTES_IN_FLIGHT_MAX` request bytes are in flight; past either
//! the reader stops reading the socket. A malformed or oversized frame closes
//! the connection (logged), never the broker.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::channels::local_channel;
use glommio::net::TcpStream;
use glommio::sync::Semaphore;
use glommio::Task;

use super::broker::Broker;
use super::dispatch::{self, Outcome};
use crate::config::Tuning;
use crate::limits;
use crate::protocol::frame;

/// Smallest socket read. The buffer space of each read is zeroed first (safe
/// Rust cannot read into uninitialised memory), so it stays small for small
/// requests; a large frame is read into space sized for its remainder.
const READ_CHUNK_BYTES: usize = 16 * 1024;

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

pub async fn serve(broker: Rc<Broker>, stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    // Kafka shows a member's host as "/<ip>" (DescribeGroups, the CLI).
    let client_host: Rc<str> = stream
        .peer_addr()
        .map(|a| format!("/{}", a.ip()))
        .unwrap_or_default()
        .into();
    let _ = stream.set_nodelay(true);
    let stream = Rc::new(RefCell::new(stream));
    let (queue, responses) =
        local_channel::new_bounded::<InFlight>(limits::CONNECTION_REQUESTS_IN_FLIGHT_MAX);
    let budget = Rc::new(Semaphore::new(
        limits::CONNECTION_BYTES_IN_FLIGHT_MAX as u64,
    ));
    let writer_budget = budget.clone();
    let mut writer_half = Half(stream.clone());
    // The writer tells the reader to stop when a response cannot be made.
    let (close_tx, close_rx) = local_channel::new_bounded::<String>(1);
    let writer = glommio::spawn_local(async move {
        while let Some(in_flight) = responses.recv().await {
            let outcome = in_flight.response.await;
            writer_budget.signal(in_flight.bytes);
            match outcome {
                Outcome::Reply(response) => {
                    if writer_half.write_all(&response).await.is_err() {
                        return;
                    }
                }
                Outcome::NoReply => {}
                Outcome::Close(reason) => {
                    let _ = close_tx.try_send(reason);
                    return;
                }
            }
        }
    });
    let mut reader = Half(stream.clone());
    let closed = async {
        Err(close_rx
            .recv()
            .await
            .unwrap_or_else(|| "response writer stopped".into()))
    };
    let outcome = futures_lite::future::or(
        read_requests(&broker, &client_host, &mut reader, &queue, &budget),
        closed,
    )
    .await;
    if let Err(reason) = outcome {
        log::warn!("closing connection from {peer}: {reason}");
        // Dropping the writer task and both halves closes the socket.
        drop(queue);
        drop(writer);
        return;
    }
    // Clean end of stream: let the writer answer what was already asked.
    drop(queue);
    writer.await;
}

async fn read_requests(
    broker: &Rc<Broker>,
    client_host: &Rc<str>,
    reader: &mut Half,
    queue: &local_channel::LocalSender<InFlight>,
    budget: &Rc<Semaphore>,
) -> Result<(), String> {
    let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    loop {
        while let Some(request) =
            frame::split_frame(&mut buf, limits::FRAME_BYTES_MAX).map_err(|e| e.to_string())?
        {
            let bytes = request.len() as u64;
            // Backpressure: wait until earlier requests' bytes are answered.
            budget.acquire(bytes).await.map_err(|e| e.to_string())?;
            let response = start_request(broker, client_host, request)?;
            if queue.send(InFlight { response, bytes }).await.is_err() {
                return Err("writer stopped".into());
            }
        }
        // Read straight into the frame buffer; make room for the whole
        // announced frame so a large produce is read without re-copying.
        let wanted = match frame::announced_size(&buf, limits::FRAME_BYTES_MAX)
            .map_err(|e| e.to_string())?
        {
            Some(size) => (4 + size).saturating_sub(buf.len()).max(READ_CHUNK_BYTES),
            None => READ_CHUNK_BYTES,
        };
        buf.reserve(wanted);
        let start = buf.len();
        buf.resize(start + wanted, 0);
        let read = reader.read(&mut buf[start..]).await;
        match read {
            Ok(0) => {
                buf.truncate(start);
                return if buf.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "connection closed inside a frame ({} bytes unread)",
                        buf.len()
                    ))
                };
            }
            Ok(n) => buf.truncate(start + n),
            // A client that goes away mid-stream is routine, not an error.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                return Ok(())
            }
            Err(e) => return Err(format!("read failed: {e}")),
        }
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

/// Decodes the header and starts the request as its own task. A header that
/// cannot be decoded, or an API that is not served, closes the connection.
fn start_request(
    broker: &Rc<Broker>,
    client_host: &Rc<str>,
    request: Bytes,
) -> Result<Task<Outcome>, String> {
    let parsed = dispatch::parse(request)?;
    let broker = broker.clone();
    let client_host = client_host.clone();
    Ok(glommio::spawn_local(async move {
        dispatch::handle(&broker, &client_host, parsed).await
    }))
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
}
