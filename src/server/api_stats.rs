//! Per-API request figures of one shard, recorded with plain cells (a
//! shard's own, never shared) and read by the metrics scrape
//! (`server::http`):
//!
//! - when a request's frame is read (`connection`): its size, and one more
//!   in flight ([`ApiStats::started`]);
//! - when its handler is done (`dispatch::handle`): its API version, its
//!   queue, local, waiting and whole times and its answer's size
//!   ([`ApiStats::handled`]), and the error codes in the answer
//!   ([`ApiStats::errors_in`], every `error_code` field of every API's
//!   answer, `error_codes`);
//! - when its answer is written, or dropped with its connection: the send
//!   time, and one fewer in flight ([`ApiStats::sent`], [`ApiStats::left`]).
//!
//! An API's figures are allocated at its first request, so a shard holds
//! them only for the APIs its clients use. `metrics.enabled` false turns
//! all of it off (to measure what recording costs).

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::BTreeMap;

use super::error_codes::ErrorCodes;
use crate::metrics::{Histogram, HistogramSnapshot};

/// API keys tracked: Kafka's keys are below this (the highest served is
/// in the seventies); a request of a higher key is not recorded.
pub const API_KEYS: usize = 128;

/// Versions counted one by one; a request of a version outside
/// `0..VERSIONS` (ApiVersions at a version the broker does not know) is
/// counted as `unknown`. Above every served version (a test checks).
pub const VERSIONS: usize = 32;

/// One API's figures on one shard.
struct ApiSlot {
    /// Requests handled by version; the last slot is versions outside
    /// `0..VERSIONS`.
    versions: [Cell<u64>; VERSIONS + 1],
    /// Decoded request to encoded answer (its count is the requests).
    duration: Histogram,
    /// Frame read off the socket to the handler's start.
    queue: Histogram,
    /// The handler's own work: time spent polling its future.
    local: Histogram,
    /// The handler's time not spent in its own polls: waiting.
    wait: Histogram,
    /// Answer encoded to written to the socket.
    send: Histogram,
    request_bytes: Histogram,
    response_bytes: Histogram,
    /// Requests read and not yet answered (written or dropped).
    in_flight: Cell<u64>,
}

impl Default for ApiSlot {
    fn default() -> Self {
        ApiSlot {
            versions: std::array::from_fn(|_| Cell::new(0)),
            duration: Histogram::default(),
            queue: Histogram::default(),
            local: Histogram::default(),
            wait: Histogram::default(),
            send: Histogram::default(),
            request_bytes: Histogram::bytes(),
            response_bytes: Histogram::bytes(),
            in_flight: Cell::new(0),
        }
    }
}

/// One shard's per-API figures.
pub struct ApiStats {
    enabled: Cell<bool>,
    apis: Box<[OnceCell<Box<ApiSlot>>]>,
    /// Error codes in answers, by (API key, error code), NONE excluded.
    /// Bounded by the codes the handlers answer with (about 120 per API),
    /// never by what clients send.
    errors: RefCell<BTreeMap<(i16, i16), u64>>,
}

impl Default for ApiStats {
    fn default() -> Self {
        ApiStats {
            enabled: Cell::new(true),
            apis: (0..API_KEYS).map(|_| OnceCell::new()).collect(),
            errors: RefCell::default(),
        }
    }
}

/// A handled request's times (microseconds) and answer.
#[derive(Clone, Copy, Debug, Default)]
pub struct Handled {
    pub version: i16,
    /// Frame read to handler start.
    pub queue_us: u64,
    /// Handler start to answer encoded.
    pub total_us: u64,
    /// The part of `total_us` spent in the handler's own polls.
    pub local_us: u64,
    /// The answer's frame, size prefix included; None: no answer (acks=0
    /// produce) or the connection is closed instead.
    pub response_bytes: Option<usize>,
}

/// One API's figures on one shard, as the scrape carries them.
#[derive(Clone, Debug)]
pub struct ApiFigures {
    pub key: i16,
    /// (version, requests handled); None: a version outside `0..VERSIONS`.
    pub versions: Vec<(Option<i16>, u64)>,
    pub duration: HistogramSnapshot,
    pub queue: HistogramSnapshot,
    pub local: HistogramSnapshot,
    pub wait: HistogramSnapshot,
    pub send: HistogramSnapshot,
    pub request_bytes: HistogramSnapshot,
    pub response_bytes: HistogramSnapshot,
    pub in_flight: u64,
    /// (error code, answers that carried it).
    pub errors: Vec<(i16, u64)>,
}

impl ApiStats {
    /// Whether requests are recorded (`metrics.enabled`); set once, when
    /// the shard starts.
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.set(enabled);
    }

    pub fn enabled(&self) -> bool {
        self.enabled.get()
    }

    fn slot(&self, key: i16) -> Option<&ApiSlot> {
        if !self.enabled.get() {
            return None;
        }
        let cell = self.apis.get(usize::try_from(key).ok()?)?;
        Some(cell.get_or_init(Box::default))
    }

    /// A request of API `key`, `bytes` long (its frame, size prefix
    /// included), was read: one more in flight until [`ApiStats::left`].
    pub fn started(&self, key: i16, bytes: usize) {
        if let Some(api) = self.slot(key) {
            api.request_bytes.record(bytes as u64);
            api.in_flight.set(api.in_flight.get() + 1);
        }
    }

    /// A request of API `key` was handled.
    pub fn handled(&self, key: i16, h: Handled) {
        let Some(api) = self.slot(key) else { return };
        let version = usize::try_from(h.version)
            .ok()
            .filter(|&v| v < VERSIONS)
            .unwrap_or(VERSIONS);
        let n = &api.versions[version];
        n.set(n.get() + 1);
        api.queue.record(h.queue_us);
        api.duration.record(h.total_us);
        api.local.record(h.local_us);
        api.wait.record(h.total_us.saturating_sub(h.local_us));
        if let Some(bytes) = h.response_bytes {
            api.response_bytes.record(bytes as u64);
        }
    }

    /// The answer to a request of API `key` took `us` microseconds from
    /// encoded to written.
    pub fn sent(&self, key: i16, us: u64) {
        if let Some(api) = self.slot(key) {
            api.send.record(us);
        }
    }

    /// A request of API `key` [`started`](ApiStats::started) is answered
    /// or dropped.
    pub fn left(&self, key: i16) {
        if let Some(api) = self.slot(key) {
            api.in_flight.set(api.in_flight.get().saturating_sub(1));
        }
    }

    /// The answer to a request of API `key` carried `codes` (NONE is
    /// skipped).
    pub fn errors(&self, key: i16, codes: impl IntoIterator<Item = i16>) {
        if !self.enabled.get() {
            return;
        }
        let mut errors = self.errors.borrow_mut();
        for code in codes.into_iter().filter(|&c| c != 0) {
            *errors.entry((key, code)).or_default() += 1;
        }
    }

    /// Counts every error code in `answer`, an answer of API `key`: a walk
    /// over its error code fields, a map update per code other than NONE.
    pub fn errors_in(&self, key: i16, answer: &impl ErrorCodes) {
        if !self.enabled.get() {
            return;
        }
        let mut errors = self.errors.borrow_mut();
        answer.error_codes(&mut |code| {
            if code != 0 {
                *errors.entry((key, code)).or_default() += 1;
            }
        });
    }

    /// The APIs with at least one request read, by key.
    pub fn figures(&self) -> Vec<ApiFigures> {
        let errors = self.errors.borrow();
        self.apis
            .iter()
            .enumerate()
            .filter_map(|(key, api)| Some((key as i16, api.get()?)))
            .map(|(key, api)| ApiFigures {
                key,
                versions: api
                    .versions
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| n.get() > 0)
                    .map(|(v, n)| ((v < VERSIONS).then_some(v as i16), n.get()))
                    .collect(),
                duration: api.duration.snapshot(),
                queue: api.queue.snapshot(),
                local: api.local.snapshot(),
                wait: api.wait.snapshot(),
                send: api.send.snapshot(),
                request_bytes: api.request_bytes.snapshot(),
                response_bytes: api.response_bytes.snapshot(),
                in_flight: api.in_flight.get(),
                errors: errors
                    .range((key, i16::MIN)..=(key, i16::MAX))
                    .map(|(&(_, code), &n)| (code, n))
                    .collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handled(version: i16, total_us: u64, local_us: u64) -> Handled {
        Handled {
            version,
            queue_us: 5,
            total_us,
            local_us,
            response_bytes: Some(100),
        }
    }

    #[test]
    fn requests_and_errors_are_kept_per_api_and_version() {
        let stats = ApiStats::default();
        stats.started(0, 1_000);
        stats.handled(0, handled(9, 500, 100));
        stats.handled(0, handled(9, 700, 700));
        stats.handled(0, handled(3, 700, 800));
        stats.handled(18, handled(99, 10, 1));
        stats.handled(3, handled(12, 10, 1));
        stats.handled(-1, handled(0, 10, 1));
        stats.handled(API_KEYS as i16, handled(0, 10, 1));
        stats.errors(0, [0, 6, 6, 3]);
        stats.errors(3, [0]);
        let figures = stats.figures();
        assert_eq!(figures.len(), 3, "unknown keys are not recorded");
        let produce = &figures[0];
        assert_eq!(produce.key, 0);
        assert_eq!(produce.versions, vec![(Some(3), 1), (Some(9), 2)]);
        assert_eq!(produce.duration.count(), 3);
        assert_eq!(produce.duration.sum, 1_900);
        assert_eq!(produce.local.sum, 1_600);
        assert_eq!(produce.wait.sum, 400, "local never exceeds total");
        assert_eq!(produce.queue.sum, 15);
        assert_eq!(produce.request_bytes.count(), 1);
        assert_eq!(produce.response_bytes.count(), 3);
        assert_eq!(produce.in_flight, 1);
        assert_eq!(produce.errors, vec![(3, 1), (6, 2)]);
        assert_eq!(figures[1].key, 3);
        assert!(figures[1].errors.is_empty(), "NONE is not an error");
        assert_eq!(figures[2].versions, vec![(None, 1)], "v99 is unknown");
        stats.sent(0, 40);
        stats.left(0);
        let produce = &stats.figures()[0];
        assert_eq!((produce.in_flight, produce.send.count()), (0, 1));
    }

    #[test]
    fn disabled_stats_record_nothing() {
        let stats = ApiStats::default();
        stats.set_enabled(false);
        stats.started(0, 10);
        stats.handled(0, handled(1, 10, 1));
        stats.errors(0, [6]);
        assert!(stats.figures().is_empty());
    }

    #[test]
    fn every_served_version_is_counted_by_itself() {
        for api in crate::protocol::apis::SERVED_APIS {
            assert!((api.max_version as usize) < VERSIONS, "{:?}", api.key);
        }
    }
}
