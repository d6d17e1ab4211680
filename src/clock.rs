//! The clock seam: every decision the storage and replication code makes
//! from time (a follower's lag, a producer's timestamp bounds, a segment's
//! age) reads it here, so the deterministic simulation (`crate::sim`) can
//! run a cluster on a clock it moves itself.
//!
//! On a broker this is `Instant::now()` and the system clock. Inside
//! [`Simulated`] (per thread: each shard is one thread, and the simulation
//! runs on one) both read the simulated time instead, which only moves when
//! the simulation calls [`Simulated::advance`]. Timers that park a task
//! (`glommio::timer`) are not covered: code the simulation drives does not
//! sleep, it is stepped.

use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy)]
struct SimTime {
    /// What `now()` answered when the simulation started.
    base: Instant,
    /// Wall-clock milliseconds at the start of the simulation.
    base_ms: i64,
    /// Simulated time elapsed since then.
    elapsed: Duration,
}

thread_local! {
    static SIMULATED: Cell<Option<SimTime>> = const { Cell::new(None) };
}

/// The monotonic clock.
pub fn now() -> Instant {
    match SIMULATED.with(Cell::get) {
        Some(sim) => sim.base + sim.elapsed,
        None => Instant::now(),
    }
}

/// Milliseconds since the Unix epoch (record timestamps, segment ages).
pub fn now_ms() -> i64 {
    match SIMULATED.with(Cell::get) {
        Some(sim) => sim.base_ms + sim.elapsed.as_millis() as i64,
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
    }
}

/// Time elapsed since `earlier`, by this clock.
pub fn since(earlier: Instant) -> Duration {
    now().saturating_duration_since(earlier)
}

/// Moves this thread's simulated time forward; panics when the thread runs
/// on real time.
pub fn advance_simulated(by: Duration) {
    SIMULATED.with(|sim| {
        let mut time = sim.get().expect("simulated time is running");
        time.elapsed += by;
        sim.set(Some(time));
    });
}

/// Simulated time on this thread while the value lives.
pub struct Simulated {
    // Not Send: the simulated clock belongs to the thread that set it.
    _thread: std::marker::PhantomData<*const ()>,
}

impl Simulated {
    /// Starts simulated time at `base_ms` milliseconds since the epoch.
    /// Panics if this thread already runs on simulated time.
    pub fn start(base_ms: i64) -> Simulated {
        SIMULATED.with(|sim| {
            assert!(sim.get().is_none(), "simulated time is already running");
            sim.set(Some(SimTime {
                base: Instant::now(),
                base_ms,
                elapsed: Duration::ZERO,
            }));
        });
        Simulated {
            _thread: std::marker::PhantomData,
        }
    }

    /// Moves simulated time forward.
    pub fn advance(&self, by: Duration) {
        advance_simulated(by);
    }

    /// Simulated time elapsed since [`Simulated::start`].
    pub fn elapsed(&self) -> Duration {
        SIMULATED.with(|sim| sim.get().expect("simulated time is running").elapsed)
    }
}

impl Drop for Simulated {
    fn drop(&mut self) {
        SIMULATED.with(|sim| sim.set(None));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_time_moves_only_when_advanced() {
        let sim = Simulated::start(1_000_000);
        let t0 = now();
        assert_eq!(now_ms(), 1_000_000);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(now(), t0, "real time does not move the simulated clock");
        sim.advance(Duration::from_millis(250));
        assert_eq!(since(t0), Duration::from_millis(250));
        assert_eq!(now_ms(), 1_000_250);
        drop(sim);
        assert!(now_ms() > 1_600_000_000_000, "the system clock is back");
    }
}
