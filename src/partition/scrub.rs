//! The shard's storage upkeep task: paces the scrub of its partitions'
//! stored segments (`log::scrub`) to `log.scrub.io.max.bytes.per.second`,
//! keeps the data directory's disk reserve (`log::reserve`, on one shard)
//! and writes the summaries of repeated failures (`log::throttled`).
//!
//! One task per shard, in the background task queue; it reads one scrub
//! step of one partition at a time, round robin, and sleeps off each
//! step's share of the rate, so a shard's scrub reads at most the
//! configured bytes per second whatever the number of partitions.

use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{now_ms, Partition};
use crate::io::{Disk, DmaDisk};
use crate::limits;
use crate::log::{reserve, throttled};

/// How long the task sleeps when no partition has a scrub step due.
const IDLE: Duration = Duration::from_secs(1);
/// How often the shard that keeps the disk reserve checks it.
const RESERVE_CHECK: Duration = Duration::from_secs(10);

/// What the upkeep task of one shard does.
#[derive(Clone, Debug)]
pub struct Upkeep {
    /// Bytes per second the scrub may read (0: no scrub).
    pub scrub_bytes_per_second: u64,
    /// How long a verified segment goes before it is verified again.
    pub scrub_interval_ms: i64,
    /// The data directory whose disk reserve this shard keeps (one shard
    /// per process does).
    pub reserve_dir: Option<PathBuf>,
}

/// Runs until dropped.
pub async fn upkeep_loop(partitions: impl Fn() -> Vec<Rc<Partition>>, upkeep: Upkeep) {
    let mut reserve_checked: Option<Instant> = None;
    loop {
        throttled::flush_due();
        if let Some(dir) = &upkeep.reserve_dir {
            if reserve_checked.is_none_or(|t| t.elapsed() >= RESERVE_CHECK) {
                reserve_checked = Some(Instant::now());
                keep_reserve(dir.clone()).await;
            }
        }
        if upkeep.scrub_bytes_per_second == 0 {
            glommio::timer::sleep(IDLE).await;
            continue;
        }
        let mut stepped = false;
        for partition in partitions() {
            let Some(bytes) = partition
                .scrub_step(now_ms(), upkeep.scrub_interval_ms)
                .await
            else {
                continue;
            };
            stepped = true;
            let share = bytes as f64 / upkeep.scrub_bytes_per_second as f64;
            glommio::timer::sleep(Duration::from_secs_f64(share)).await;
        }
        if !stepped {
            glommio::timer::sleep(IDLE).await;
        }
    }
}

/// Recreates the disk reserve if it is missing and there is room.
async fn keep_reserve(dir: PathBuf) {
    let made = reserve::ensure(&DmaDisk, &dir, limits::DISK_RESERVE_BYTES).await;
    match made {
        Ok(true) => log::info!(
            "{}: disk reserve {} ({} bytes) in place",
            dir.display(),
            reserve::RESERVE_FILE,
            limits::DISK_RESERVE_BYTES
        ),
        Ok(false) => {}
        Err(e) => {
            throttled::log("disk-reserve", log::Level::Warn, || {
                format!("the disk reserve cannot be created (it is retried): {e}")
            });
        }
    }
}

impl<D: Disk> Partition<D> {
    /// One step of the background scrub of this partition's stored
    /// segments (see `log::scrub`): None when nothing is due, else the
    /// bytes it read, for the caller's pacing.
    pub async fn scrub_step(&self, now: i64, interval_ms: i64) -> Option<u64> {
        if self.deleted.get() {
            return None;
        }
        let job = self.state.borrow_mut().log.plan_scrub(now, interval_ms)?;
        let outcome = job.run().await;
        if let Some(e) = &outcome.io_error {
            throttled::log("partition-scrub-io", log::Level::Error, || {
                format!("{}-{}: scrub read failed: {e}", self.topic, self.index)
            });
        }
        let bytes = outcome.bytes.max(1);
        let rolled = self.state.borrow_mut().log.complete_scrub(outcome, now);
        if rolled {
            // The corrupt active segment was rolled: finalize it now.
            self.flush_now().await;
        }
        Some(bytes)
    }

    /// A reader found a bad stored batch at `offset`: its segment is
    /// scrubbed next, so it gets marked.
    pub fn request_scrub(&self, offset: i64) {
        self.state.borrow_mut().log.request_scrub(offset);
    }
}
