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

/// Asks every shard to stop cleanly. Never undone within a process.
pub fn request() {
    SHUTDOWN.store(true, Ordering::SeqCst);
}

/// Whether a stop has been asked for.
pub fn requested() -> bool {
    SHUTDOWN.load(Ordering::Relaxed)
}
