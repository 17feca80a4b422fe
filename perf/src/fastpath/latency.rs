//! [`Histogram`]: burst latencies in nanoseconds, preallocated, recorded without allocation.
//!
//! Buckets: exact below 64 ns, then 32 buckets per power of two (3 % resolution) up to
//! 2^40 ns (18 minutes); longer values land in the last bucket. A percentile is reported as
//! the middle of its bucket.

/// Values below this are counted exactly.
const LINEAR: u64 = 64;
/// Sub-buckets per power of two above [`LINEAR`] (2^5).
const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
/// Highest power of two covered (2^40 ns).
const MAX_EXP: u32 = 40;
/// Number of buckets.
const BUCKETS: usize = LINEAR as usize + (MAX_EXP as usize - 6 + 1) * SUB;

/// A latency histogram (fixed size, no allocation after [`Histogram::new`]).
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
            max: 0,
        }
    }

    #[inline]
    fn bucket(v: u64) -> usize {
        if v < LINEAR {
            return v as usize;
        }
        let exp = 63 - v.leading_zeros(); // >= 6
        if exp > MAX_EXP {
            return BUCKETS - 1;
        }
        let sub = ((v >> (exp - SUB_BITS)) as usize) & (SUB - 1);
        LINEAR as usize + (exp as usize - 6) * SUB + sub
    }

    /// Lowest and highest value of bucket `b`.
    fn bounds(b: usize) -> (u64, u64) {
        if b < LINEAR as usize {
            return (b as u64, b as u64);
        }
        let exp = (b - LINEAR as usize) / SUB + 6;
        let sub = ((b - LINEAR as usize) % SUB) as u64;
        let step = 1u64 << (exp - SUB_BITS as usize);
        let low = (1u64 << exp) + sub * step;
        (low, low + step - 1)
    }

    /// Counts one value.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.counts[Self::bucket(ns)] += 1;
        self.total += 1;
        self.max = self.max.max(ns);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.counts.fill(0);
        self.total = 0;
        self.max = 0;
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The value below which `q` (0..=1) of the recorded values lie (the middle of the
    /// bucket that holds it; the largest value for the last rank); 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        if rank >= self.total {
            return self.max;
        }
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, hi) = Self::bounds(b);
                return (lo + (hi - lo) / 2).min(self.max);
            }
        }
        self.max
    }

    /// Non-empty buckets as `(low, count)` pairs (to send a histogram between processes).
    #[cfg_attr(not(feature = "dpdk"), allow(dead_code))]
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(b, c)| (Self::bounds(b).0, *c))
    }

    /// Counts `count` values of `low` (the inverse of [`Histogram::buckets`]).
    pub fn add_bucket(&mut self, low: u64, count: u64) {
        self.counts[Self::bucket(low)] += count;
        self.total += count;
        self.max = self.max.max(low);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values_in_order() {
        let mut last = 0;
        for v in [
            0u64,
            1,
            63,
            64,
            65,
            100,
            1000,
            123_456,
            1 << 39,
            (1 << 41) + 5,
        ] {
            let b = Histogram::bucket(v);
            assert!(b >= last, "{v}");
            last = b;
            let (lo, hi) = Histogram::bounds(b);
            if v < 1 << 41 {
                assert!(lo <= v && v <= hi, "{v}: {lo}..{hi}");
            }
        }
    }

    #[test]
    fn quantiles_within_resolution() {
        let mut h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record(v * 10);
        }
        let p50 = h.quantile(0.5) as f64;
        let p99 = h.quantile(0.99) as f64;
        assert!((p50 - 50_000.0).abs() / 50_000.0 < 0.04, "{p50}");
        assert!((p99 - 99_000.0).abs() / 99_000.0 < 0.04, "{p99}");
        assert_eq!(h.quantile(1.0), 100_000);
        let mut copy = Histogram::new();
        for (low, c) in h.buckets() {
            copy.add_bucket(low, c);
        }
        assert_eq!(copy.count(), h.count());
        assert_eq!(copy.quantile(0.5), h.quantile(0.5));
    }
}
