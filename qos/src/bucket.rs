//! An exact integer token bucket.
//!
//! Tokens are counted in units of 1/8e9 byte (one bit-nanosecond): a rate of `r` bit/s adds
//! exactly `r` units per elapsed nanosecond and one byte costs [`UNITS_PER_BYTE`] units. The
//! refill is a single multiplication, there is no division on the per-packet path and no
//! rounding, so a bucket never drifts however long it runs.

/// Token units per byte: 8 bits times 1e9 nanoseconds per second.
pub const UNITS_PER_BYTE: i128 = 8_000_000_000;

/// A token bucket of `burst_bytes` depth filled at `rate_bps`.
///
/// The bucket starts full. Time is monotonic nanoseconds supplied by the caller; a timestamp
/// older than the last one seen counts as no elapsed time.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Current tokens in units; negative only after [`TokenBucket::take`] went into debt.
    /// The depth in units is [`TokenBucket::cap`] (computed, to keep the bucket small: the
    /// scheduler keeps it in one cache line with the subscriber's state).
    tokens: i128,
    rate_bps: u64,
    burst_bytes: u32,
    last_ns: u64,
}

impl TokenBucket {
    /// A full bucket of `burst_bytes` filled at `rate_bps`. A rate of 0 never refills.
    pub fn new(rate_bps: u64, burst_bytes: u32, now_ns: u64) -> Self {
        TokenBucket {
            tokens: i128::from(burst_bytes) * UNITS_PER_BYTE,
            rate_bps,
            burst_bytes,
            last_ns: now_ns,
        }
    }

    /// Changes rate and depth live: the tokens earned so far at the old rate are kept (capped
    /// at the new depth) and the new rate applies from `now_ns` on.
    pub fn set_rate(&mut self, rate_bps: u64, burst_bytes: u32, now_ns: u64) {
        self.refill(now_ns);
        self.rate_bps = rate_bps;
        self.burst_bytes = burst_bytes;
        self.tokens = self.tokens.min(self.cap());
    }

    /// Takes `bytes` tokens if the bucket holds them at `now_ns`. A packet larger than the
    /// burst never conforms.
    #[inline]
    pub fn try_consume(&mut self, now_ns: u64, bytes: u32) -> bool {
        self.refill(now_ns);
        let need = i128::from(bytes) * UNITS_PER_BYTE;
        if self.tokens >= need {
            self.tokens -= need;
            true
        } else {
            false
        }
    }

    /// Nanoseconds from `now_ns` until `bytes` conform: 0 if they conform now, `u64::MAX` if
    /// they never will (more than the burst, or a rate of 0).
    pub fn ns_until(&self, now_ns: u64, bytes: u32) -> u64 {
        if bytes > self.burst_bytes {
            return u64::MAX;
        }
        self.wait_for(now_ns, i128::from(bytes) * UNITS_PER_BYTE)
    }

    /// The configured rate in bit/s.
    #[inline]
    pub fn rate_bps(&self) -> u64 {
        self.rate_bps
    }

    /// The configured depth in bytes.
    #[inline]
    pub fn burst_bytes(&self) -> u32 {
        self.burst_bytes
    }

    /// Whole bytes available at `now_ns` (0 while in debt).
    pub fn available_bytes(&self, now_ns: u64) -> u64 {
        let t = self.tokens_at(now_ns).max(0) / UNITS_PER_BYTE;
        u64::try_from(t).unwrap_or(u64::MAX)
    }

    /// Depth in units.
    #[inline]
    fn cap(&self) -> i128 {
        i128::from(self.burst_bytes) * UNITS_PER_BYTE
    }

    /// Brings the bucket up to `now_ns`.
    #[inline]
    pub(crate) fn refill(&mut self, now_ns: u64) {
        self.tokens = self.tokens_at(now_ns);
        self.last_ns = self.last_ns.max(now_ns);
    }

    /// Tokens (units) the bucket holds at `now_ns`, without changing it.
    #[inline]
    pub(crate) fn tokens_at(&self, now_ns: u64) -> i128 {
        let cap = self.cap();
        if self.tokens >= cap {
            return cap;
        }
        let dt = now_ns.saturating_sub(self.last_ns);
        let add = u128::from(dt) * u128::from(self.rate_bps);
        // `cap - tokens` is positive here; the sum is only formed when it stays below `cap`.
        let room = cap.abs_diff(self.tokens);
        if add >= room {
            cap
        } else {
            self.tokens + add as i128
        }
    }

    /// Units a shaper needs before sending `bytes`: the packet itself, or a full bucket for a
    /// packet larger than the burst (which then leaves the bucket in debt).
    #[inline]
    pub(crate) fn shaper_need(&self, bytes: u32) -> i128 {
        i128::from(bytes.min(self.burst_bytes)) * UNITS_PER_BYTE
    }

    /// Whether a shaper may send `bytes` now (call [`TokenBucket::refill`] first).
    #[inline]
    pub(crate) fn shaper_ready(&self, bytes: u32) -> bool {
        self.tokens >= self.shaper_need(bytes)
    }

    /// Takes `bytes` tokens unconditionally (may go into debt; see `shaper_need`).
    #[inline]
    pub(crate) fn take(&mut self, bytes: u32) {
        self.tokens -= i128::from(bytes) * UNITS_PER_BYTE;
    }

    /// What a shaper's send of `bytes` at `now_ns` does, in one call: refill, check
    /// [`TokenBucket::shaper_ready`] and [`TokenBucket::take`]; false (bucket refilled but
    /// nothing taken) if the bytes do not conform. The result is exactly that of the three
    /// calls.
    ///
    /// A bucket left full skips the refill arithmetic (it stays full however much time has
    /// passed). Otherwise the refill must come first, even when the tokens already cover
    /// the packet: it caps at the depth, so taking before refilling would credit the time
    /// the bucket spent full. The refill is one 64 x 64 -> 128-bit multiplication and two
    /// comparisons, no division.
    #[inline]
    pub(crate) fn shaper_send(&mut self, now_ns: u64, bytes: u32) -> bool {
        let cap = self.cap();
        if self.tokens >= cap {
            // `shaper_need(bytes) <= cap`: a full bucket always allows the send.
            self.tokens = cap - i128::from(bytes) * UNITS_PER_BYTE;
            self.last_ns = self.last_ns.max(now_ns);
            return true;
        }
        self.refill(now_ns);
        if self.shaper_ready(bytes) {
            self.take(bytes);
            true
        } else {
            false
        }
    }

    /// Nanoseconds until a shaper may send `bytes` (`u64::MAX` at a rate of 0).
    #[inline]
    pub(crate) fn shaper_wait(&self, now_ns: u64, bytes: u32) -> u64 {
        self.wait_for(now_ns, self.shaper_need(bytes))
    }

    /// Raw unit count, for the policers and tests.
    #[inline]
    pub(crate) fn units(&self) -> i128 {
        self.tokens
    }

    fn wait_for(&self, now_ns: u64, need: i128) -> u64 {
        let have = self.tokens_at(now_ns);
        if have >= need {
            return 0;
        }
        if self.rate_bps == 0 {
            return u64::MAX;
        }
        let missing = need.abs_diff(have);
        // A 64-bit division whenever the shortfall fits (bursts below about 2 GB).
        match u64::try_from(missing) {
            Ok(m) => m.div_ceil(self.rate_bps),
            Err(_) => {
                u64::try_from(missing.div_ceil(u128::from(self.rate_bps))).unwrap_or(u64::MAX)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn starts_full_and_drains() {
        let mut b = TokenBucket::new(8_000_000, 3000, 0);
        assert!(b.try_consume(0, 1500));
        assert!(b.try_consume(0, 1500));
        assert!(!b.try_consume(0, 1));
        // 1 MB/s: one byte per microsecond.
        assert_eq!(b.ns_until(0, 1500), 1_500_000);
        assert!(!b.try_consume(1_499_999, 1500));
        assert!(b.try_consume(1_500_000, 1500));
        assert_eq!(b.rate_bps(), 8_000_000);
        assert_eq!(b.burst_bytes(), 3000);
    }

    #[test]
    fn never_exceeds_burst_after_idle() {
        let mut b = TokenBucket::new(1_000_000_000, 10_000, 0);
        assert!(b.try_consume(0, 10_000));
        assert_eq!(b.available_bytes(1000 * S), 10_000);
        assert!(!b.try_consume(1000 * S, 10_001));
        assert!(b.try_consume(1000 * S, 10_000));
    }

    #[test]
    fn oversize_and_zero_rate_never_conform() {
        let mut b = TokenBucket::new(1000, 100, 0);
        assert_eq!(b.ns_until(0, 101), u64::MAX);
        assert!(!b.try_consume(u64::MAX, 101));
        let mut z = TokenBucket::new(0, 100, 0);
        assert!(z.try_consume(0, 100));
        assert_eq!(z.ns_until(5, 1), u64::MAX);
        assert!(!z.try_consume(10 * S, 1));
    }

    #[test]
    fn no_drift_over_long_irregular_runs() {
        // An odd rate and odd steps: every unit earned is accounted for exactly.
        let rate = 1_000_003;
        let mut b = TokenBucket::new(rate, 1500, 0);
        let mut now = 0u64;
        let mut taken: i128 = 0;
        // Drain first, so that no step finds the bucket full (which would cap it).
        while b.try_consume(0, 97) {
            taken += 97 * UNITS_PER_BYTE;
        }
        for i in 0..200_000u64 {
            now += 999_983 + (i % 7) * 13;
            while b.try_consume(now, 97) {
                taken += 97 * UNITS_PER_BYTE;
            }
        }
        let earned = i128::from(now) * i128::from(rate);
        assert_eq!(taken + b.units(), 1500 * UNITS_PER_BYTE + earned);
    }

    #[test]
    fn time_going_backwards_is_harmless() {
        let mut b = TokenBucket::new(8_000, 10, 1000);
        assert!(b.try_consume(1000, 10));
        assert!(!b.try_consume(10, 1));
        assert!(b.try_consume(1000 + 1_000_000, 1));
    }

    #[test]
    fn shaper_send_is_refill_ready_take() {
        // Against the three-step sequence, from full, partly drained, in debt (oversize
        // packet), with time standing still, moving and going backwards.
        let mut a = TokenBucket::new(10_000_000, 3000, 0);
        let mut b = a.clone();
        let mut now = 0u64;
        for (i, len) in [1500u32, 64, 3001, 40, 1500, 1500, 9000, 576, 1, 1500]
            .into_iter()
            .cycle()
            .take(400)
            .enumerate()
        {
            now = match i % 5 {
                0 => now,
                1 => now + 1_000_000,
                2 => now.saturating_sub(500),
                3 => now + 37_123,
                _ => now + 5 * S,
            };
            let sent = a.shaper_send(now, len);
            b.refill(now);
            let ready = b.shaper_ready(len);
            if ready {
                b.take(len);
            }
            assert_eq!(sent, ready, "step {i}");
            assert_eq!((a.tokens, a.last_ns), (b.tokens, b.last_ns), "step {i}");
        }
    }

    #[test]
    fn set_rate_keeps_tokens_capped() {
        let mut b = TokenBucket::new(8_000_000, 10_000, 0);
        assert!(b.try_consume(0, 4000));
        b.set_rate(80_000_000, 20_000, 0);
        assert_eq!(b.available_bytes(0), 6000);
        b.set_rate(80_000_000, 5000, 0);
        assert_eq!(b.available_bytes(0), 5000);
        // 10 MB/s from now on: 100 ns per byte.
        assert!(b.try_consume(0, 5000));
        assert_eq!(b.ns_until(0, 1000), 100_000);
    }
}
