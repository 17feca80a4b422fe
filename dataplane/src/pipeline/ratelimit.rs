//! A token bucket in integer nano-tokens (no floating point, no division per packet).

/// Nano-tokens per token.
const SCALE: u64 = 1_000_000_000;

/// Token bucket of `rate` tokens per second with a burst of `rate` tokens; starts full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    rate: u64,
    capacity: u64,
    tokens: u64,
    last_ns: Option<u64>,
}

impl TokenBucket {
    /// A full bucket of `rate` tokens per second (0 = never conforms).
    pub fn new(rate: u32) -> Self {
        let capacity = u64::from(rate) * SCALE;
        TokenBucket {
            rate: u64::from(rate),
            capacity,
            tokens: capacity,
            last_ns: None,
        }
    }

    fn refill(&mut self, now_ns: u64) {
        match self.last_ns {
            None => self.last_ns = Some(now_ns),
            Some(last) if now_ns > last => {
                // rate tokens/s == rate nano-tokens/ns.
                let add = (now_ns - last).saturating_mul(self.rate);
                self.tokens = self.tokens.saturating_add(add).min(self.capacity);
                self.last_ns = Some(now_ns);
            }
            // Time going backwards: keep the old reference, add nothing.
            Some(_) => {}
        }
    }

    /// Takes one token at time `now_ns`; false if the bucket is empty.
    #[inline]
    pub fn take(&mut self, now_ns: u64) -> bool {
        self.refill(now_ns);
        if self.tokens >= SCALE {
            self.tokens -= SCALE;
            true
        } else {
            false
        }
    }

    /// Whole tokens available at the last update.
    pub fn available(&self) -> u64 {
        self.tokens / SCALE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_burst() {
        let mut b = TokenBucket::new(10);
        let t0 = 5_000_000_000;
        let n = (0..100).filter(|_| b.take(t0)).count();
        assert_eq!(n, 10);
        // 100 ms later: one more token.
        assert!(b.take(t0 + 100_000_000));
        assert!(!b.take(t0 + 100_000_000));
        // Far in the future: capped at the burst.
        let n = (0..100).filter(|_| b.take(u64::MAX)).count();
        assert_eq!(n, 10);
        // Time going backwards adds nothing.
        assert!(!b.take(0));
    }

    #[test]
    fn zero_rate_never_conforms() {
        let mut b = TokenBucket::new(0);
        assert!(!b.take(0));
        assert!(!b.take(u64::MAX));
        assert_eq!(b.available(), 0);
    }
}
