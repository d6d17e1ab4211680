//! The process-wide request to stop: one flag, set by the signal thread, by
//! a shard that failed or by the supervisor, and polled by every shard's
//! long-running loops (connections, the controller, replication fetchers),
//! which then finish what they are doing and return.
//!
//! It lives in the runtime, below the services, because stopping is a
//! property of the shard's life, not of any service: a service asks whether
//! to go on and knows nothing of who asked it to stop.

use std::sync::atomic::{AtomicBool, Ordering};

/// One per process, shared by every shard and the supervising thread.
static SHUTDOWN: AtomicBool = AtomicBool::new(false);

/// An operator's stop (SIGTERM, SIGINT), not yet the stop itself: shard 0
/// first hands the node's work over (a controlled shutdown in a cluster)
/// while every shard still serves, then calls [`request`]. The supervisor
/// calls it when that takes too long.
static ASKED: AtomicBool = AtomicBool::new(false);

/// Asks the broker to stop the way an operator does: hand over, then stop.
pub fn ask() {
    ASKED.store(true, Ordering::SeqCst);
}

/// Whether a stop has been asked for (or already requested).
pub fn asked() -> bool {
    ASKED.load(Ordering::Relaxed) || requested()
}

/// Asks every shard to stop cleanly. Never undone within a process.
pub fn request() {
    SHUTDOWN.store(true, Ordering::SeqCst);
}

/// Whether a stop has been asked for.
pub fn requested() -> bool {
    SHUTDOWN.load(Ordering::Relaxed)
}
