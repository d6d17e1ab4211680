//! Progress of log recovery at start, for the operator: every shard opens
//! (recovering) its partitions at once, counting here, and the supervisor
//! thread reports the node's progress at INFO every
//! [`limits::RECOVERY_PROGRESS_INTERVAL_MS`] while it runs (Kafka's
//! "Recovery progress" lines), then one summary line. Each partition is
//! told at DEBUG by the shard that opened it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::limits;

/// [`RecoveryProgress::took_us`] while recovery runs.
const RUNNING: u64 = u64::MAX;

/// The node's partitions opened so far at start, shared by the shards (one
/// per process).
#[derive(Debug)]
pub struct RecoveryProgress {
    /// Partitions this node holds by its stored catalog.
    expected: usize,
    opened: AtomicUsize,
    failed: AtomicUsize,
    bytes: AtomicU64,
    started: Instant,
    /// Microseconds from `started` until every expected partition was
    /// done (or every shard served); [`RUNNING`] until then.
    took_us: AtomicU64,
    /// When progress was last reported; None once the summary is out.
    last_report: Mutex<Option<Instant>>,
}

impl RecoveryProgress {
    pub fn new(expected: usize) -> RecoveryProgress {
        let now = Instant::now();
        RecoveryProgress {
            expected,
            opened: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            bytes: AtomicU64::new(0),
            started: now,
            took_us: AtomicU64::new(if expected == 0 { 0 } else { RUNNING }),
            last_report: Mutex::new(Some(now)),
        }
    }

    /// A partition was opened with `bytes` in its log.
    pub fn opened(&self, bytes: u64) {
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.finish_if_done();
    }

    /// A partition could not be opened (it is offline).
    pub fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.finish_if_done();
    }

    fn finish_if_done(&self) {
        if self.remaining().is_none() {
            self.finish();
        }
    }

    /// Sets the recovery time, once.
    fn finish(&self) {
        let took = self
            .started
            .elapsed()
            .as_micros()
            .min(u128::from(RUNNING - 1)) as u64;
        let _ = self
            .took_us
            .compare_exchange(RUNNING, took, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// How long recovery took at this start; None while it runs.
    pub fn took(&self) -> Option<Duration> {
        let us = self.took_us.load(Ordering::Relaxed);
        (us != RUNNING).then(|| Duration::from_micros(us))
    }

    /// While recovery runs: (partitions opened or failed, partitions
    /// expected); None once every expected partition is done.
    pub fn remaining(&self) -> Option<(usize, usize)> {
        let done = self.opened.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed);
        (done < self.expected).then_some((done, self.expected))
    }

    /// The supervisor's call on every tick: the summary once every
    /// expected partition is open or `all_started` (every shard serves),
    /// else the progress when the interval has passed since the last line.
    pub fn report(&self, all_started: bool) {
        let done = self.opened.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed);
        if all_started || done >= self.expected {
            self.report_done();
        } else {
            self.report_if_due();
        }
    }

    fn report_if_due(&self) {
        let mut last = self.last_report.lock().unwrap_or_else(|e| e.into_inner());
        let interval = Duration::from_millis(limits::RECOVERY_PROGRESS_INTERVAL_MS);
        let Some(at) = *last else { return };
        if at.elapsed() < interval {
            return;
        }
        *last = Some(Instant::now());
        let done = self.opened.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed);
        log::info!(
            "log recovery: {done} of {} partitions opened ({}) after {:.1} s",
            self.expected,
            bytes_text(self.bytes.load(Ordering::Relaxed)),
            self.started.elapsed().as_secs_f64()
        );
    }

    /// Logs the summary, once.
    fn report_done(&self) {
        self.finish();
        let mut last = self.last_report.lock().unwrap_or_else(|e| e.into_inner());
        if last.take().is_none() {
            return;
        }
        let failed = self.failed.load(Ordering::Relaxed);
        let summary = format!(
            "log recovery: opened {} partitions ({}) in {} ms",
            self.opened.load(Ordering::Relaxed),
            bytes_text(self.bytes.load(Ordering::Relaxed)),
            self.started.elapsed().as_millis()
        );
        if failed > 0 {
            log::warn!("{summary}; {failed} could not be opened and are offline");
        } else {
            log::info!("{summary}");
        }
    }
}

/// Bytes as an operator reads them: 1536 -> "1.5 KiB".
pub fn bytes_text(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_an_operator_reads_them() {
        assert_eq!(bytes_text(0), "0 bytes");
        assert_eq!(bytes_text(1536), "1.5 KiB");
        assert_eq!(bytes_text(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn the_summary_is_told_once() {
        let progress = RecoveryProgress::new(3);
        progress.opened(10);
        progress.failed();
        progress.report(false);
        assert!(progress.last_report.lock().unwrap().is_some(), "1 to go");
        assert_eq!(progress.took(), None, "still running");
        progress.opened(10);
        let took = progress.took().expect("done with the last partition");
        assert!(took <= progress.started.elapsed());
        progress.report(false);
        assert!(progress.last_report.lock().unwrap().is_none());
        // Later calls are no-ops.
        progress.report(true);
    }
}
