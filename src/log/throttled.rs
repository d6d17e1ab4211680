//! Log lines for failures that repeat (a flush on a full disk, reads of a
//! corrupt segment): the first occurrence is logged at once, later ones
//! under the same key are counted, and at most one line per
//! `limits::LOG_REPEAT_INTERVAL_MS` reports how many happened and the
//! latest reason. A full disk used to log a line per failed flush (380 a
//! minute); now it logs one, then one every interval.
//!
//! State is per shard (thread-local): each shard reports its own counts.
//! Keys are static call-site names, so the map stays as small as the
//! number of call sites.

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::limits;

struct Site {
    level: log::Level,
    /// When the last line for this key was written.
    logged_at: Instant,
    /// Occurrences since then that were not logged.
    suppressed: u64,
    /// The newest of them.
    latest: String,
}

thread_local! {
    static SITES: RefCell<HashMap<&'static str, Site>> = RefCell::new(HashMap::new());
}

fn interval() -> Duration {
    Duration::from_millis(limits::LOG_REPEAT_INTERVAL_MS)
}

fn summary(site: &Site, now: Instant) -> String {
    format!(
        "{} (and {} more like it in the last {} s)",
        site.latest,
        site.suppressed,
        now.duration_since(site.logged_at).as_secs()
    )
}

/// Logs `message()` at `level` under `key`, or counts it when a line for
/// `key` was written less than an interval ago. Returns whether a line
/// was written.
pub fn log(key: &'static str, level: log::Level, message: impl FnOnce() -> String) -> bool {
    let now = Instant::now();
    SITES.with(|sites| {
        let mut sites = sites.borrow_mut();
        match sites.get_mut(key) {
            Some(site) if now.duration_since(site.logged_at) < interval() => {
                site.suppressed += 1;
                site.latest = message();
                false
            }
            Some(site) => {
                site.latest = message();
                let line = if site.suppressed > 0 {
                    // This occurrence is the newest of the batch it reports.
                    site.suppressed += 1;
                    summary(site, now)
                } else {
                    site.latest.clone()
                };
                log::log!(site.level, "{line}");
                site.logged_at = now;
                site.suppressed = 0;
                true
            }
            None => {
                let latest = message();
                log::log!(level, "{latest}");
                sites.insert(
                    key,
                    Site {
                        level,
                        logged_at: now,
                        suppressed: 0,
                        latest,
                    },
                );
                true
            }
        }
    })
}

/// Writes the summary line of every key whose interval has passed with
/// occurrences not yet reported (called from the shard's background
/// loop, so a failure that stopped repeating still gets its count).
pub fn flush_due() {
    let now = Instant::now();
    SITES.with(|sites| {
        for site in sites.borrow_mut().values_mut() {
            if site.suppressed > 0 && now.duration_since(site.logged_at) >= interval() {
                log::log!(site.level, "{}", summary(site, now));
                site.logged_at = now;
                site.suppressed = 0;
            }
        }
    });
}

/// Occurrences of `key` not yet reported (tests).
pub fn suppressed(key: &'static str) -> u64 {
    SITES.with(|sites| sites.borrow().get(key).map_or(0, |s| s.suppressed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_counted_not_logged() {
        assert!(log("throttled-test", log::Level::Warn, || "first".into()));
        for i in 0..100 {
            assert!(!log("throttled-test", log::Level::Warn, || format!(
                "again {i}"
            )));
        }
        assert_eq!(suppressed("throttled-test"), 100);
        // Another key has its own budget.
        assert!(log("throttled-test-2", log::Level::Warn, || "other".into()));
        // Not yet due: the summary waits for the interval.
        flush_due();
        assert_eq!(suppressed("throttled-test"), 100);
    }
}
