//! Histograms with fixed buckets, recorded on one shard with plain cells
//! (no atomics: a shard's counters never cross threads) and copied out as
//! a [`HistogramSnapshot`], which merges with the other shards' at scrape
//! time.
//!
//! A histogram's buckets are a [`Scale`]: its upper bounds in whole units
//! (microseconds for latencies, bytes for sizes) and how many units make
//! the exported unit (seconds, bytes). Every scale has at most
//! [`BOUNDS_MAX`] bounds, so a histogram is one fixed array whatever it
//! measures, and recording is a search over at most 16 bounds and two
//! cell updates.

use std::cell::Cell;

/// Most bounds a scale has; a histogram has one more bucket, `+Inf`.
pub const BOUNDS_MAX: usize = 16;

/// Buckets of every histogram's array, `+Inf` included (a scale with
/// fewer bounds leaves the last ones empty).
pub const BUCKETS: usize = BOUNDS_MAX + 1;

/// A histogram's buckets.
#[derive(Debug, PartialEq)]
pub struct Scale {
    /// Upper bounds (Prometheus' `le`), rising, in whole units; at most
    /// [`BOUNDS_MAX`].
    pub bounds: &'static [u64],
    /// Units in one exported unit: `le` and `_sum` are divided by it.
    pub units_per_export: f64,
}

/// Latencies, recorded in microseconds and exported in seconds: from
/// 100 µs, a produce answered from memory, to 10 s, beyond any fetch's
/// long poll.
pub static LATENCY: Scale = Scale {
    bounds: &[
        100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
        1_000_000, 2_500_000, 5_000_000, 10_000_000,
    ],
    units_per_export: 1e6,
};

/// Sizes in bytes, powers of 4 from 64 B to 256 MiB: a heartbeat's
/// request, a batch of small records, up to the largest frame.
pub static BYTES: Scale = Scale {
    bounds: &[
        64,
        256,
        1 << 10,
        4 << 10,
        16 << 10,
        64 << 10,
        256 << 10,
        1 << 20,
        4 << 20,
        16 << 20,
        64 << 20,
        256 << 20,
    ],
    units_per_export: 1.0,
};

/// One shard's histogram: observations per bucket (not cumulative), their
/// count and their sum, in the scale's units.
pub struct Histogram {
    scale: &'static Scale,
    buckets: [Cell<u64>; BUCKETS],
    sum: Cell<u64>,
}

/// The latency histogram the request path records whole-request times in.
pub type LatencyHistogram = Histogram;

impl Default for Histogram {
    /// A latency histogram.
    fn default() -> Self {
        Histogram::new(&LATENCY)
    }
}

impl Histogram {
    pub fn new(scale: &'static Scale) -> Histogram {
        debug_assert!(scale.bounds.len() <= BOUNDS_MAX);
        Histogram {
            scale,
            buckets: Default::default(),
            sum: Cell::new(0),
        }
    }

    /// A histogram of sizes in bytes.
    pub fn bytes() -> Histogram {
        Histogram::new(&BYTES)
    }

    /// Records one observation of `value` units (microseconds, bytes).
    pub fn record(&self, value: u64) {
        let at = self.scale.bounds.partition_point(|&bound| bound < value);
        let bucket = &self.buckets[at];
        bucket.set(bucket.get().saturating_add(1));
        self.sum.set(self.sum.get().saturating_add(value));
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(Cell::get).sum()
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            scale: self.scale,
            buckets: std::array::from_fn(|i| self.buckets[i].get()),
            sum: self.sum.get(),
        }
    }
}

/// A histogram's figures at one moment, to send across shards and merge.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HistogramSnapshot {
    pub scale: &'static Scale,
    /// Observations per bucket (not cumulative), `+Inf` at the scale's
    /// number of bounds.
    pub buckets: [u64; BUCKETS],
    /// In the scale's units.
    pub sum: u64,
}

impl Default for HistogramSnapshot {
    /// An empty latency histogram.
    fn default() -> Self {
        HistogramSnapshot::empty(&LATENCY)
    }
}

impl HistogramSnapshot {
    pub fn empty(scale: &'static Scale) -> HistogramSnapshot {
        HistogramSnapshot {
            scale,
            buckets: [0; BUCKETS],
            sum: 0,
        }
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The sum in the exported unit (seconds, bytes).
    pub fn exported_sum(&self) -> f64 {
        self.sum as f64 / self.scale.units_per_export
    }

    /// Adds `other`'s observations (of the same scale) to these.
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        debug_assert_eq!(self.scale, other.scale);
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine = mine.saturating_add(theirs);
        }
        self.sum = self.sum.saturating_add(other.sum);
    }

    /// (upper bound in the exported unit, observations at or below it),
    /// `+Inf` last: Prometheus' cumulative buckets.
    pub fn cumulative(&self) -> impl Iterator<Item = (Option<f64>, u64)> + '_ {
        let mut total = 0u64;
        let scale = self.scale;
        self.buckets[..=scale.bounds.len()]
            .iter()
            .enumerate()
            .map(move |(i, &n)| {
                total = total.saturating_add(n);
                let bound = scale
                    .bounds
                    .get(i)
                    .map(|&b| b as f64 / scale.units_per_export);
                (bound, total)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = LatencyHistogram::default();
        for us in [
            0,
            100,
            101,
            250,
            9_999_999,
            10_000_000,
            10_000_001,
            u64::MAX,
        ] {
            h.record(us);
        }
        let s = h.snapshot();
        assert_eq!(s.buckets[0], 2, "0 and 100 are at or below 100 µs");
        assert_eq!(s.buckets[1], 2, "101 and 250");
        assert_eq!(s.buckets[15], 2, "up to 10 s");
        assert_eq!(s.buckets[16], 2, "+Inf");
        assert_eq!(s.count(), 8);
        assert_eq!(h.count(), 8);
        assert_eq!(s.sum, u64::MAX, "the sum saturates");
    }

    #[test]
    fn cumulative_buckets_end_with_the_count_and_merge_adds() {
        let h = LatencyHistogram::default();
        h.record(300);
        h.record(2_000);
        h.record(20_000_000);
        let mut s = h.snapshot();
        let other = s;
        s.merge(&other);
        let cumulative: Vec<(Option<f64>, u64)> = s.cumulative().collect();
        assert_eq!(cumulative.len(), BUCKETS);
        assert_eq!(cumulative[0], (Some(0.0001), 0));
        assert_eq!(cumulative[2], (Some(0.0005), 2));
        assert_eq!(cumulative[3], (Some(0.001), 2));
        assert_eq!(cumulative[4], (Some(0.0025), 4));
        assert_eq!(cumulative[15], (Some(10.0), 4));
        assert_eq!(cumulative[16], (None, 6));
        assert_eq!(s.sum, 2 * 20_002_300);
        assert_eq!(s.exported_sum(), 40.0046);
        // Never decreasing.
        assert!(cumulative.windows(2).all(|w| w[0].1 <= w[1].1));
    }

    #[test]
    fn a_byte_scale_has_its_own_bounds_and_fewer_buckets() {
        let h = Histogram::bytes();
        for bytes in [0, 64, 65, 1_000, 300 << 20] {
            h.record(bytes);
        }
        let s = h.snapshot();
        let cumulative: Vec<(Option<f64>, u64)> = s.cumulative().collect();
        assert_eq!(cumulative.len(), BYTES.bounds.len() + 1);
        assert_eq!(cumulative[0], (Some(64.0), 2));
        assert_eq!(cumulative[1], (Some(256.0), 3));
        assert_eq!(cumulative[2], (Some(1024.0), 4));
        assert_eq!(cumulative[11], (Some((256 << 20) as f64), 4));
        assert_eq!(cumulative[12], (None, 5), "+Inf: 300 MiB");
        assert_eq!(s.exported_sum(), (1_129 + (300u64 << 20)) as f64);
    }

    #[test]
    fn every_scale_fits_the_array_and_rises() {
        for scale in [&LATENCY, &BYTES] {
            assert!(scale.bounds.len() <= BOUNDS_MAX);
            assert!(scale.bounds.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
