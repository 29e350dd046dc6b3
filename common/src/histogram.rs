//! Latency histograms with fixed buckets, for recording on the datapath
//! and merging off it.
//!
//! A gateway core or a shard records into its own [`LatencyHistogram`]
//! (plain numbers, no atomics, no allocation: a bucket search over
//! [`LATENCY_BOUNDS_US`] and two additions), copies it into a slot a few
//! times a second with the rest of its counters, and the metrics thread
//! merges the copies at scrape time ([`LatencyHistogram::merge`]) and
//! renders them as Prometheus histograms (cumulative `le` buckets, `_sum`,
//! `_count`) or as percentiles for the status page
//! ([`LatencyHistogram::quantile_us`]).
//!
//! The buckets run 1-2-5 from 5 µs to 10 s: fine enough to tell a
//! microsecond-scale gateway from a millisecond-scale tick, coarse enough
//! that a scrape of every lane and shard stays a few hundred series. A
//! percentile is interpolated inside its bucket, so it is exact to the
//! bucket's width (at worst 2.5× between neighbouring bounds); the
//! histogram's `_sum` is exact.

use std::time::Duration;

/// Upper bounds of the finite buckets, in microseconds (Prometheus `le`:
/// a bucket counts the values at or below its bound and above the one
/// before). Values past the last land in the `+Inf` bucket.
pub const LATENCY_BOUNDS_US: [u64; 22] = [
    5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000,
    500_000, 1_000_000, 2_000_000, 5_000_000, 10_000_000, 20_000_000, 50_000_000,
];

/// Buckets including `+Inf`.
pub const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_US.len() + 1;

/// Counts of durations by bucket, and their exact sum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: [u64; LATENCY_BUCKETS],
    sum_us: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            counts: [0; LATENCY_BUCKETS],
            sum_us: 0,
        }
    }
}

impl LatencyHistogram {
    /// Records one duration.
    #[inline]
    pub fn record(&mut self, d: Duration) {
        self.record_us(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    /// Records one duration given in microseconds.
    #[inline]
    pub fn record_us(&mut self, us: u64) {
        let bucket = LATENCY_BOUNDS_US.partition_point(|&bound| bound < us);
        self.counts[bucket] += 1;
        self.sum_us = self.sum_us.saturating_add(us);
    }

    /// Adds `other`'s counts to these (another core's, another shard's).
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (c, o) in self.counts.iter_mut().zip(other.counts) {
            *c += o;
        }
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The exact sum of the values, in microseconds.
    pub fn sum_us(&self) -> u64 {
        self.sum_us
    }

    /// Count per bucket (not cumulative), the last one `+Inf`.
    pub fn counts(&self) -> &[u64; LATENCY_BUCKETS] {
        &self.counts
    }

    /// What was recorded since `earlier` (a copy of this histogram taken
    /// before): the window between two snapshots.
    pub fn since(&self, earlier: &LatencyHistogram) -> LatencyHistogram {
        let mut out = *self;
        for (c, e) in out.counts.iter_mut().zip(earlier.counts) {
            *c = c.saturating_sub(e);
        }
        out.sum_us = out.sum_us.saturating_sub(earlier.sum_us);
        out
    }

    /// The `q` quantile (0 to 1) in microseconds, interpolated linearly
    /// inside its bucket; `None` when nothing was recorded. A quantile in
    /// the `+Inf` bucket is reported as the last finite bound.
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0u64;
        for (i, &n) in self.counts.iter().enumerate() {
            if n == 0 {
                continue;
            }
            if (below + n) as f64 >= rank {
                let lo = if i == 0 { 0 } else { LATENCY_BOUNDS_US[i - 1] };
                let Some(&hi) = LATENCY_BOUNDS_US.get(i) else {
                    return Some(lo as f64);
                };
                let within = ((rank - below as f64) / n as f64).clamp(0.0, 1.0);
                return Some(lo as f64 + within * (hi - lo) as f64);
            }
            below += n;
        }
        LATENCY_BOUNDS_US.last().map(|&b| b as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_value_lands_in_the_bucket_of_its_upper_bound() {
        let mut h = LatencyHistogram::default();
        h.record_us(0);
        h.record_us(5);
        h.record_us(6);
        h.record_us(1_000);
        h.record_us(60_000_000);
        let c = h.counts();
        assert_eq!(c[0], 2, "0 and 5 are at or below 5");
        assert_eq!(c[1], 1, "6 is in (5, 10]");
        assert_eq!(c[7], 1, "1000 is in (500, 1000]");
        assert_eq!(c[LATENCY_BUCKETS - 1], 1, "past 50 s is +Inf");
        assert_eq!(h.count(), 5);
        assert_eq!(h.sum_us(), 60_001_011);
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.quantile_us(0.5), None);
        // 100 values in (100, 200]: the median is half way.
        for _ in 0..100 {
            h.record_us(150);
        }
        assert_eq!(h.quantile_us(0.5), Some(150.0));
        assert_eq!(h.quantile_us(1.0), Some(200.0));
        // One outlier in (5 ms, 10 ms] moves p99 not at all, the max to it.
        h.record_us(7_000);
        assert!(h.quantile_us(0.99).unwrap() <= 200.0);
        assert!(h.quantile_us(1.0).unwrap() > 5_000.0);
    }

    #[test]
    fn merge_and_since_are_inverse() {
        let (mut a, mut b) = (LatencyHistogram::default(), LatencyHistogram::default());
        a.record(Duration::from_micros(30));
        b.record(Duration::from_millis(3));
        let before = a;
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.since(&before), b);
    }

    proptest! {
        #[test]
        fn quantiles_are_monotonic_and_within_the_range(values in proptest::collection::vec(0u64..100_000_000, 1..200)) {
            let mut h = LatencyHistogram::default();
            for &v in &values {
                h.record_us(v);
            }
            prop_assert_eq!(h.count(), values.len() as u64);
            let mut last = 0.0;
            for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0] {
                let x = h.quantile_us(q).unwrap();
                prop_assert!(x >= last, "q {} gave {} after {}", q, x, last);
                prop_assert!(x <= *LATENCY_BOUNDS_US.last().unwrap() as f64);
                last = x;
            }
        }
    }
}
