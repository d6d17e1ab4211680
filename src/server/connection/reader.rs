//! The reading side of a connection: frames read in bounded steps, each
//! frame's request memory reserved once its size is known, and each
//! complete request started as its own task.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use futures_lite::AsyncReadExt;
use glommio::channels::local_channel;
use glommio::sync::{Semaphore, StaticPermit};

use super::{
    start_request, CloseReason, ConnLabel, Ending, Half, InFlight, ShardConnections, Shared,
};
use crate::limits;
use crate::protocol::frame;
use crate::security::Session;
use crate::server::broker::Broker;

pub(super) struct Reader<'a> {
    pub(super) broker: &'a Rc<Broker>,
    pub(super) shard: &'a Rc<ShardConnections>,
    pub(super) session: &'a Rc<Session>,
    pub(super) conn: &'a ConnLabel,
    pub(super) stream: &'a Rc<RefCell<super::Stream>>,
    pub(super) queue: &'a local_channel::LocalSender<InFlight>,
    pub(super) budget: &'a Rc<Semaphore>,
    pub(super) shared: &'a Rc<Shared>,
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
    pub(super) async fn run(self) -> Ending {
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
                        return Ending::Closed(CloseReason::FrameLate {
                            limit: self.shard.frame_read_max,
                            read: buf.len(),
                            size: p
                                .size
                                .map_or_else(|| "?".to_string(), |s| (s + 4).to_string()),
                        });
                    }
                    Some(left)
                }
                None => self.shard.max_idle,
            };
            let _ = self.stream.borrow().tcp().set_read_timeout(timeout);
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
                        Ending::Closed(CloseReason::ClosedInFrame(buf.len()))
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
                // A TLS client that goes without close_notify (most do):
                // an end of stream like a TCP close.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    buf.truncate(start);
                    return if buf.is_empty() {
                        Ending::Clean
                    } else {
                        Ending::Closed(CloseReason::ClosedInFrame(buf.len()))
                    };
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
                Err(e) => return Ending::Closed(CloseReason::Read(e)),
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
    ) -> Result<(), CloseReason> {
        loop {
            let Some(current) = partial.as_mut() else {
                return Ok(());
            };
            if current.size.is_none() {
                let Some(announced) = frame::announced_request(buf, self.shard.frame_bytes_max)?
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
            let read_at = Instant::now();
            // Backpressure: wait until earlier requests' bytes are answered.
            self.budget.acquire(bytes).await?;
            let (response, meter) = start_request(
                self.broker,
                self.session,
                self.conn,
                self.shared,
                request,
                memory,
                read_at,
            )?;
            self.shared.in_flight.set(self.shared.in_flight.get() + 1);
            let in_flight = InFlight {
                response,
                bytes,
                meter,
            };
            if self.queue.send(in_flight).await.is_err() {
                return Err(CloseReason::WriterStopped);
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
pub(super) fn read_size(frame_size: Option<usize>, buffered: usize) -> usize {
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
