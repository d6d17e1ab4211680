//! The per-shard side of connection handling: the shard's share of
//! `queued.max.request.bytes` and the bounds every connection applies.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use glommio::sync::{Semaphore, StaticPermit};

use crate::limits;
use crate::server::broker::Broker;

/// The per-shard side of connection handling: the shard's request memory
/// and the bounds every connection of the shard applies. One per shard.
pub struct ShardConnections {
    pub(super) memory: RequestMemory,
    pub(super) frame_bytes_max: usize,
    pub(super) max_idle: Option<Duration>,
    pub(super) frame_read_max: Duration,
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

    pub(super) fn add_freed(&self, bytes: usize) {
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
pub(super) struct RequestMemory {
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
    pub(super) async fn reserve(&self, bytes: u64) -> Option<StaticPermit> {
        let share = self.share?;
        // The semaphore is never closed, so acquiring cannot fail.
        self.semaphore
            .acquire_static_permit(bytes.clamp(1, share.max(1)))
            .await
            .ok()
    }
}
