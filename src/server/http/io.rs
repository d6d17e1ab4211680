//! hyper's I/O traits over glommio's TCP stream: hyper reads into its own
//! buffer through a cursor of possibly uninitialised bytes, glommio reads
//! into initialised slices, so reads go through a small buffer of the
//! adapter's and are copied into hyper's (a few KB per request: nothing
//! next to building a scrape, and no unsafe code).
//!
//! The stream is shared with the connection's task, which takes it back
//! once hyper is done with it to close it gently ([`linger`]).

use std::cell::RefCell;
use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite};
use glommio::net::TcpStream;
use hyper::rt::ReadBufCursor;

use crate::limits;

/// Bytes one read takes from the socket at most.
const READ_CHUNK_BYTES: usize = 8 * 1024;

/// A glommio TCP stream as hyper's `Read` and `Write`.
pub struct HttpIo {
    /// Borrowed only within one poll, never across an await.
    stream: Rc<RefCell<TcpStream>>,
    scratch: Box<[u8]>,
}

impl HttpIo {
    pub fn new(stream: Rc<RefCell<TcpStream>>) -> HttpIo {
        HttpIo {
            stream,
            scratch: vec![0; READ_CHUNK_BYTES].into_boxed_slice(),
        }
    }
}

impl hyper::rt::Read for HttpIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let room = buf.remaining().min(this.scratch.len());
        let mut stream = this.stream.borrow_mut();
        match Pin::new(&mut *stream).poll_read(cx, &mut this.scratch[..room]) {
            Poll::Ready(Ok(n)) => {
                buf.put_slice(&this.scratch[..n]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl hyper::rt::Write for HttpIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.stream.borrow_mut()).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.stream.borrow_mut()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.stream.borrow_mut()).poll_close(cx)
    }
}

/// Closes a connection whose answer may still be unread by its client:
/// ends the sending side (the client reads the answer, then end of
/// stream), then reads and drops what the client still sends, bounded by
/// `limits::HTTP_LINGER_MS` and `limits::HTTP_LINGER_BYTES_MAX`, so the
/// socket is not closed with unread bytes (which resets it, and a reset
/// can destroy the answer in the client's buffers).
pub async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write).await;
    let drain = async {
        let mut buf = [0u8; 4096];
        let mut drained = 0;
        while drained < limits::HTTP_LINGER_BYTES_MAX {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    };
    let bound = glommio::timer::sleep(Duration::from_millis(limits::HTTP_LINGER_MS));
    futures_lite::future::or(drain, async {
        bound.await;
    })
    .await;
}
