//! Latency quantiles in bounded memory: a fixed log-bucket histogram of microseconds. Values below 64 µs have a
//! bucket each; above, every power of two is cut into 32 equal sub-buckets, so a bucket spans at most 1/32 of
//! its lower bound. A quantile is answered with the middle of its bucket: the relative error is at most
//! ±1.6 % (1/64) of the true value, whatever the number of records. 1,184 counters (about 9 KiB) cover 0 µs
//! to 2^40 µs (12 days); larger values count in the last bucket. Histograms add up exactly ([`Histogram::merge`]).

/// Sub-buckets per power of two (2^5).
const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
/// Values below this have a bucket each.
const LINEAR: u64 = 64;
/// Powers of two covered above [`LINEAR`]: 2^6 .. 2^40.
const OCTAVES: usize = 35;
const BUCKETS: usize = LINEAR as usize + OCTAVES * SUB;

/// The relative error bound of a quantile, as the report states it.
pub const RELATIVE_ERROR: f64 = 1.0 / 64.0;

/// Counts of latencies by bucket.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: Box::new([0; BUCKETS]), total: 0, max: 0 }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Histogram {{ total: {}, max: {} }}", self.total, self.max)
    }
}

fn bucket(value: u64) -> usize {
    if value < LINEAR {
        return value as usize;
    }
    let octave = 63 - value.leading_zeros(); // >= 6
    let sub = (value >> (octave - SUB_BITS)) as usize & (SUB - 1);
    let index = LINEAR as usize + (octave as usize - 6) * SUB + sub;
    index.min(BUCKETS - 1)
}

/// The lower bound and width of bucket `index`.
fn bounds(index: usize) -> (u64, u64) {
    if index < LINEAR as usize {
        return (index as u64, 1);
    }
    let octave = (index - LINEAR as usize) / SUB + 6;
    let sub = ((index - LINEAR as usize) % SUB) as u64;
    let width = 1u64 << (octave - SUB_BITS as usize);
    ((1u64 << octave) + sub * width, width)
}

impl Histogram {
    pub fn record(&mut self, value: u64) {
        self.counts[bucket(value)] += 1;
        self.total += 1;
        self.max = self.max.max(value);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The `q` quantile (0 < q ≤ 1) by the nearest-rank rule: the middle of the bucket holding the
    /// ⌈q·n⌉-th smallest value (never above the largest value seen); `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (low, width) = bounds(index);
                return Some((low + width / 2).min(self.max));
            }
        }
        Some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order_within_the_bound() {
        let mut last = 0;
        for value in (0..5000).chain([1 << 20, (1 << 20) + 12345, 1 << 39, u64::MAX]) {
            let index = bucket(value);
            assert!(index >= last || value > 5000, "{value}");
            last = index;
            let (low, width) = bounds(index);
            if value < 1 << 41 {
                assert!(low <= value && value < low + width, "{value}: {low}+{width}");
                let mid = low + width / 2;
                assert!((mid as f64 - value as f64).abs() <= value as f64 * RELATIVE_ERROR + 0.5, "{value}");
            }
        }
    }

    #[test]
    fn quantiles_are_within_the_stated_error_of_the_exact_ones() {
        let mut values: Vec<u64> = (0..100_000u64).map(|i| (i * 7919 % 100_000) * 37 + 50).collect();
        let mut h = Histogram::default();
        for v in &values {
            h.record(*v);
        }
        values.sort_unstable();
        for q in [0.5, 0.95, 0.99] {
            let exact = values[(q * values.len() as f64).ceil() as usize - 1] as f64;
            let got = h.quantile(q).unwrap() as f64;
            assert!((got - exact).abs() <= exact * RELATIVE_ERROR + 1.0, "q{q}: {got} vs {exact}");
        }
        let mut other = Histogram::default();
        other.record(10);
        h.merge(&other);
        assert_eq!(h.count(), 100_001);
        assert_eq!(Histogram::default().quantile(0.5), None);
    }
}
