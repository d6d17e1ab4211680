//! A latency histogram with fixed buckets, recorded on one shard with
//! plain cells (no atomics: a shard's counters never cross threads) and
//! copied out as a [`HistogramSnapshot`], which merges with the other
//! shards' at scrape time.

use std::cell::Cell;

/// Upper bounds of the buckets, in microseconds (Prometheus' `le`, in
/// seconds, is these over a million): from 100 µs, a produce answered
/// from memory, to 10 s, beyond any fetch's long poll. A last bucket,
/// `+Inf`, takes the rest.
pub const BUCKET_BOUNDS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Buckets, `+Inf` included.
pub const BUCKETS: usize = BUCKET_BOUNDS_US.len() + 1;

/// One shard's histogram: observations per bucket (not cumulative), their
/// count and their sum.
#[derive(Default)]
pub struct LatencyHistogram {
    buckets: [Cell<u64>; BUCKETS],
    sum_us: Cell<u64>,
}

impl LatencyHistogram {
    /// Records one observation of `us` microseconds: a search over 16
    /// bounds and two cell updates.
    pub fn record(&self, us: u64) {
        let at = BUCKET_BOUNDS_US.partition_point(|&bound| bound < us);
        let bucket = &self.buckets[at];
        bucket.set(bucket.get().saturating_add(1));
        self.sum_us.set(self.sum_us.get().saturating_add(us));
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(Cell::get).sum()
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].get()),
            sum_us: self.sum_us.get(),
        }
    }
}

/// A histogram's figures at one moment, to send across shards and merge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Observations per bucket (not cumulative), `+Inf` last.
    pub buckets: [u64; BUCKETS],
    pub sum_us: u64,
}

impl HistogramSnapshot {
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Adds `other`'s observations to these.
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine = mine.saturating_add(theirs);
        }
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
    }

    /// (upper bound in seconds, observations at or below it), `+Inf`
    /// last: Prometheus' cumulative buckets.
    pub fn cumulative(&self) -> impl Iterator<Item = (Option<f64>, u64)> + '_ {
        let mut total = 0u64;
        self.buckets.iter().enumerate().map(move |(i, &n)| {
            total = total.saturating_add(n);
            let bound = BUCKET_BOUNDS_US.get(i).map(|&us| us as f64 / 1e6);
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
        assert_eq!(s.sum_us, u64::MAX, "the sum saturates");
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
        assert_eq!(s.sum_us, 2 * 20_002_300);
        // Never decreasing.
        assert!(cumulative.windows(2).all(|w| w[0].1 <= w[1].1));
    }
}
