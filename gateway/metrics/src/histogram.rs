//! A lock-free latency histogram: fixed buckets of atomics, so that observing on the request path is a few
//! relaxed increments (`prometheus-client`'s own histogram takes a write lock per observation).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds (the last, `+Inf`, is implicit): 0.5 ms to 10 s, covering a proxied
/// call on loopback as well as a national system's slow answer.
pub const BOUNDS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The bounds in nanoseconds, compared on the request path (no float arithmetic per observation).
const BOUNDS_NANOS: [u64; 14] = [
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Counts per bucket (not cumulative; the last is `+Inf`) and the sum in nanoseconds; the count is the sum of
/// the buckets (one atomic add fewer per observation).
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
}

/// What a histogram held at one moment (for encoding).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramValue {
    /// Sum of the observations, in seconds.
    pub sum: f64,
    pub count: u64,
    /// `(upper bound, count in this bucket)`, not cumulative; the last bound is `f64::MAX` (`+Inf`).
    pub buckets: Vec<(f64, u64)>,
}

impl LatencyHistogram {
    /// Records one duration.
    pub fn observe(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let index = BOUNDS_NANOS.iter().position(|bound| nanos <= *bound).unwrap_or(BOUNDS.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// How many durations were recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The current counts.
    pub fn value(&self) -> HistogramValue {
        let buckets = BOUNDS
            .iter()
            .copied()
            .chain([f64::MAX])
            .zip(&self.buckets)
            .map(|(bound, count)| (bound, count.load(Ordering::Relaxed)))
            .collect::<Vec<_>>();
        // The count is the sum of the buckets read, so that `+Inf` always equals `_count`.
        let count = buckets.iter().map(|(_, c)| c).sum();
        HistogramValue { sum: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9, count, buckets }
    }
}

impl HistogramValue {
    /// The counts of several histograms added up (the shards of one series).
    pub fn sum<'h>(histograms: impl IntoIterator<Item = &'h LatencyHistogram>) -> HistogramValue {
        let mut total = HistogramValue::default();
        for histogram in histograms {
            let value = histogram.value();
            if total.buckets.is_empty() {
                total = value;
                continue;
            }
            for (into, (_, count)) in total.buckets.iter_mut().zip(value.buckets) {
                into.1 += count;
            }
            total.sum += value.sum;
            total.count += value.count;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_fall_in_their_bucket() {
        let h = LatencyHistogram::default();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(1));
        h.observe(Duration::from_millis(30));
        h.observe(Duration::from_secs(60));
        let v = h.value();
        assert_eq!(v.count, 4);
        assert_eq!(v.buckets[0], (0.0005, 1));
        assert_eq!(v.buckets[1], (0.001, 1), "a bound is inclusive");
        assert_eq!(v.buckets[6], (0.05, 1));
        assert_eq!(v.buckets[14], (f64::MAX, 1));
        assert!((v.sum - 60.0313).abs() < 1e-9, "{}", v.sum);
        let other = LatencyHistogram::default();
        other.observe(Duration::from_millis(1));
        let both = HistogramValue::sum([&h, &other]);
        assert_eq!((both.count, both.buckets[1], both.buckets[14]), (5, (0.001, 2), (f64::MAX, 1)));
        assert!((both.sum - 60.0323).abs() < 1e-9, "{}", both.sum);
    }
}
