//! Per-client-MAC token buckets, so that one flooding client cannot starve
//! the others of the control plane's DHCP service.

use std::collections::HashMap;

/// Token buckets keyed by client MAC. Tokens are kept in thousandths so
/// that sub-second refills are exact with integer arithmetic.
#[derive(Debug)]
pub struct MacLimiter {
    rate_per_s: u64,
    burst_milli: u64,
    max_tracked: usize,
    buckets: HashMap<[u8; 6], Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens_milli: u64,
    last_ms: u64,
}

impl MacLimiter {
    /// `rate_per_s` frames per second per MAC, `burst` frames of depth, at
    /// most `max_tracked` MACs tracked (new MACs beyond it are refused
    /// until idle buckets are pruned).
    pub fn new(rate_per_s: u32, burst: u32, max_tracked: usize) -> Self {
        MacLimiter {
            rate_per_s: u64::from(rate_per_s.max(1)),
            burst_milli: u64::from(burst.max(1)) * 1000,
            max_tracked: max_tracked.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Take one token for `mac` at `now_ms`; false when the MAC is over its rate.
    pub fn allow(&mut self, mac: [u8; 6], now_ms: u64) -> bool {
        if !self.buckets.contains_key(&mac) && self.buckets.len() >= self.max_tracked {
            self.prune(now_ms);
            if self.buckets.len() >= self.max_tracked {
                return false;
            }
        }
        let (rate, burst) = (self.rate_per_s, self.burst_milli);
        let b = self.buckets.entry(mac).or_insert(Bucket {
            tokens_milli: burst,
            last_ms: now_ms,
        });
        refill(b, now_ms, rate, burst);
        if b.tokens_milli >= 1000 {
            b.tokens_milli -= 1000;
            true
        } else {
            false
        }
    }

    /// Forget MACs whose bucket has refilled completely (idle clients).
    pub fn prune(&mut self, now_ms: u64) {
        let (rate, burst) = (self.rate_per_s, self.burst_milli);
        self.buckets.retain(|_, b| {
            refill(b, now_ms, rate, burst);
            b.tokens_milli < burst
        });
    }

    /// Number of MACs tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

fn refill(b: &mut Bucket, now_ms: u64, rate: u64, burst: u64) {
    let elapsed = now_ms.saturating_sub(b.last_ms);
    // elapsed ms * rate tokens/s = elapsed * rate milli-tokens.
    b.tokens_milli = b
        .tokens_milli
        .saturating_add(elapsed.saturating_mul(rate))
        .min(burst);
    b.last_ms = b.last_ms.max(now_ms);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let mut l = MacLimiter::new(10, 5, 100);
        let a = [2, 0, 0, 0, 0, 1];
        assert_eq!((0..10).filter(|_| l.allow(a, 0)).count(), 5);
        // 10/s: one token per 100 ms.
        assert!(!l.allow(a, 99));
        assert!(l.allow(a, 100));
        assert!(!l.allow(a, 100));
        assert_eq!((0..20).filter(|_| l.allow(a, 10_000)).count(), 5);
    }

    #[test]
    fn flood_from_one_mac_does_not_starve_another() {
        let mut l = MacLimiter::new(10, 5, 100);
        for i in 0..10_000 {
            l.allow([2, 0, 0, 0, 0, 1], i / 10);
        }
        assert!(l.allow([2, 0, 0, 0, 0, 2], 1000));
    }

    #[test]
    fn table_size_is_bounded_and_pruned() {
        let mut l = MacLimiter::new(10, 2, 2);
        assert!(l.allow([1; 6], 0));
        assert!(l.allow([2; 6], 0));
        assert!(!l.allow([3; 6], 0));
        assert_eq!(l.tracked(), 2);
        // After the buckets refill, idle entries are pruned to make room.
        assert!(l.allow([3; 6], 10_000));
        assert!(l.tracked() <= 2);
    }
}
