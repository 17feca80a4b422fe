//! Three-colour markers: the single-rate srTCM (RFC 2697) and the two-rate trTCM (RFC 2698).
//!
//! Both run in colour-blind mode (the pre-colour is ignored) or colour-aware mode (the packet
//! arrives pre-coloured and is never marked greener than it came). Tokens use the exact
//! integer units of [`crate::bucket`].

use crate::bucket::{TokenBucket, UNITS_PER_BYTE};

/// A packet colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Color {
    /// Conforms to the committed rate/burst.
    Green,
    /// Exceeds the committed burst (srTCM) or the committed rate (trTCM) but not the excess.
    Yellow,
    /// Exceeds both.
    Red,
}

/// The single rate three colour marker of RFC 2697.
///
/// Two buckets share one rate, the Committed Information Rate: the committed bucket C of
/// depth CBS and the excess bucket E of depth EBS. Both start full. RFC 2697 section 3 adds
/// CIR tokens per second, one at a time, to C while C is below CBS, otherwise to E while E is
/// below EBS, otherwise nowhere. Here the update is done lazily and exactly: the tokens earned
/// since the last packet fill C first and the overflow goes to E.
#[derive(Debug, Clone)]
pub struct SrTcm {
    tc: u128,
    te: u128,
    cbs: u128,
    ebs: u128,
    cir_bps: u64,
    last_ns: u64,
}

impl SrTcm {
    /// A marker with both buckets full.
    pub fn new(cir_bps: u64, cbs_bytes: u32, ebs_bytes: u32, now_ns: u64) -> Self {
        let cbs = units(cbs_bytes);
        let ebs = units(ebs_bytes);
        SrTcm {
            tc: cbs,
            te: ebs,
            cbs,
            ebs,
            cir_bps,
            last_ns: now_ns,
        }
    }

    /// Changes CIR, CBS and EBS live; tokens earned so far are kept (capped at the new depths).
    pub fn set_rate(&mut self, cir_bps: u64, cbs_bytes: u32, ebs_bytes: u32, now_ns: u64) {
        self.refill(now_ns);
        self.cir_bps = cir_bps;
        self.cbs = units(cbs_bytes);
        self.ebs = units(ebs_bytes);
        self.tc = self.tc.min(self.cbs);
        self.te = self.te.min(self.ebs);
    }

    /// The committed information rate in bit/s.
    pub fn cir_bps(&self) -> u64 {
        self.cir_bps
    }

    /// Colour-blind metering (RFC 2697 section 3): green if C holds `bytes` (taken from C),
    /// else yellow if E holds them (taken from E), else red (nothing taken).
    #[inline]
    pub fn color_blind(&mut self, now_ns: u64, bytes: u32) -> Color {
        self.color_aware(now_ns, bytes, Color::Green)
    }

    /// Colour-aware metering (RFC 2697 section 3): green only if pre-coloured green and C holds
    /// `bytes` (taken from C); else yellow if pre-coloured green or yellow and E holds them
    /// (taken from E); else red (nothing taken). A packet never leaves greener than it came.
    #[inline]
    pub fn color_aware(&mut self, now_ns: u64, bytes: u32, pre: Color) -> Color {
        self.refill(now_ns);
        let b = units(bytes);
        if pre == Color::Green && self.tc >= b {
            self.tc -= b;
            Color::Green
        } else if pre != Color::Red && self.te >= b {
            self.te -= b;
            Color::Yellow
        } else {
            Color::Red
        }
    }

    fn refill(&mut self, now_ns: u64) {
        let dt = now_ns.saturating_sub(self.last_ns);
        self.last_ns = self.last_ns.max(now_ns);
        if dt == 0 {
            return;
        }
        let add = u128::from(dt) * u128::from(self.cir_bps);
        let c_room = self.cbs - self.tc;
        if add <= c_room {
            self.tc += add;
        } else {
            self.tc = self.cbs;
            let over = add - c_room;
            self.te = self.te.saturating_add(over).min(self.ebs);
        }
    }
}

/// The two rate three colour marker of RFC 2698.
///
/// The peak bucket P (depth PBS) fills at the Peak Information Rate and the committed bucket
/// C (depth CBS) at the Committed Information Rate, independently; both start full. RFC 2698
/// expects PIR >= CIR; other values are accepted and simply applied.
#[derive(Debug, Clone)]
pub struct TrTcm {
    p: TokenBucket,
    c: TokenBucket,
}

impl TrTcm {
    /// A marker with both buckets full.
    pub fn new(cir_bps: u64, pir_bps: u64, cbs_bytes: u32, pbs_bytes: u32, now_ns: u64) -> Self {
        TrTcm {
            p: TokenBucket::new(pir_bps, pbs_bytes, now_ns),
            c: TokenBucket::new(cir_bps, cbs_bytes, now_ns),
        }
    }

    /// Changes the rates and depths live; tokens earned so far are kept (capped).
    pub fn set_rate(
        &mut self,
        cir_bps: u64,
        pir_bps: u64,
        cbs_bytes: u32,
        pbs_bytes: u32,
        now_ns: u64,
    ) {
        self.p.set_rate(pir_bps, pbs_bytes, now_ns);
        self.c.set_rate(cir_bps, cbs_bytes, now_ns);
    }

    /// The committed information rate in bit/s.
    pub fn cir_bps(&self) -> u64 {
        self.c.rate_bps()
    }

    /// The peak information rate in bit/s.
    pub fn pir_bps(&self) -> u64 {
        self.p.rate_bps()
    }

    /// Colour-blind metering (RFC 2698 section 3): red if P lacks `bytes` (nothing taken);
    /// else yellow if C lacks them (taken from P); else green (taken from P and C).
    #[inline]
    pub fn color_blind(&mut self, now_ns: u64, bytes: u32) -> Color {
        self.color_aware(now_ns, bytes, Color::Green)
    }

    /// Colour-aware metering (RFC 2698 section 3): red if pre-coloured red or P lacks `bytes`
    /// (nothing taken); else yellow if pre-coloured yellow or C lacks them (taken from P);
    /// else green (taken from P and C). A packet never leaves greener than it came.
    #[inline]
    pub fn color_aware(&mut self, now_ns: u64, bytes: u32, pre: Color) -> Color {
        self.p.refill(now_ns);
        self.c.refill(now_ns);
        let b = i128::from(bytes) * UNITS_PER_BYTE;
        if pre == Color::Red || self.p.units() < b {
            Color::Red
        } else if pre == Color::Yellow || self.c.units() < b {
            self.p.take(bytes);
            Color::Yellow
        } else {
            self.p.take(bytes);
            self.c.take(bytes);
            Color::Green
        }
    }
}

#[inline]
fn units(bytes: u32) -> u128 {
    u128::from(bytes) * UNITS_PER_BYTE as u128
}

#[cfg(test)]
mod tests {
    use super::Color::{Green, Red, Yellow};
    use super::*;

    const MS: u64 = 1_000_000;

    // CIR 8 kbit/s = 1000 bytes/s = one byte per millisecond.
    const CIR: u64 = 8_000;

    #[test]
    fn srtcm_color_blind() {
        let mut m = SrTcm::new(CIR, 1000, 500, 0);
        // Both buckets start full: Tc = 1000, Te = 500.
        assert_eq!(m.color_blind(0, 600), Green); // Tc 400
        assert_eq!(m.color_blind(0, 600), Red); // Tc 400, Te 500: neither holds 600
        assert_eq!(m.color_blind(0, 500), Yellow); // Te 0
        assert_eq!(m.color_blind(0, 400), Green); // Tc 0
        assert_eq!(m.color_blind(0, 1), Red);
        // Tokens go to C first: after 300 ms, Tc 300 and Te still 0.
        assert_eq!(m.color_blind(300 * MS, 301), Red);
        assert_eq!(m.color_blind(300 * MS, 300), Green);
        // C fills up (1000 ms), then the overflow goes to E (200 ms more): Tc 1000, Te 200.
        let t = 1500 * MS;
        assert_eq!(m.color_blind(t, 1000), Green);
        assert_eq!(m.color_blind(t, 201), Red);
        assert_eq!(m.color_blind(t, 200), Yellow);
        // Long idle: both buckets full again, never more.
        let t = t + 3600 * 1000 * MS;
        assert_eq!(m.color_blind(t, 1000), Green);
        assert_eq!(m.color_blind(t, 500), Yellow);
        assert_eq!(m.color_blind(t, 1), Red);
    }

    #[test]
    fn srtcm_color_aware() {
        let mut m = SrTcm::new(CIR, 1000, 500, 0);
        // Yellow and red never become greener, even with full buckets.
        assert_eq!(m.color_aware(0, 100, Red), Red);
        assert_eq!(m.color_aware(0, 100, Yellow), Yellow); // taken from E: Te 400
        assert_eq!(m.color_aware(0, 900, Green), Green); // Tc 100
        // Green finds C short: E decides.
        assert_eq!(m.color_aware(0, 200, Green), Yellow); // Te 200
        assert_eq!(m.color_aware(0, 100, Green), Green); // Tc 0
        assert_eq!(m.color_aware(0, 300, Yellow), Red); // Te 200 < 300
        assert_eq!(m.color_aware(0, 200, Yellow), Yellow); // Te 0
        assert_eq!(m.color_aware(0, 1, Green), Red);
        // A red packet takes nothing: after refill the green packet gets all of C.
        assert_eq!(m.color_aware(1000 * MS, 1000, Red), Red);
        assert_eq!(m.color_aware(1000 * MS, 1000, Green), Green);
    }

    #[test]
    fn trtcm_color_blind() {
        // CIR 1000 B/s, PIR 2000 B/s, CBS 1000, PBS 2000.
        let mut m = TrTcm::new(CIR, 2 * CIR, 1000, 2000, 0);
        assert_eq!(m.color_blind(0, 1000), Green); // Tp 1000, Tc 0
        assert_eq!(m.color_blind(0, 500), Yellow); // Tp 500
        assert_eq!(m.color_blind(0, 600), Red); // nothing taken
        assert_eq!(m.color_blind(0, 500), Yellow); // Tp 0
        assert_eq!(m.color_blind(0, 1), Red);
        // 250 ms: Tp 500, Tc 250.
        let t = 250 * MS;
        assert_eq!(m.color_blind(t, 300), Yellow); // Tc 250 < 300; Tp 200
        assert_eq!(m.color_blind(t, 200), Green); // Tp 0, Tc 50
        assert_eq!(m.color_blind(t, 1), Red);
        // The buckets fill independently and cap at PBS / CBS.
        let t = t + 10_000 * MS;
        assert_eq!(m.color_blind(t, 1000), Green);
        assert_eq!(m.color_blind(t, 1000), Yellow);
        assert_eq!(m.color_blind(t, 1), Red);
    }

    #[test]
    fn trtcm_color_aware() {
        let mut m = TrTcm::new(CIR, 2 * CIR, 1000, 2000, 0);
        assert_eq!(m.color_aware(0, 100, Red), Red); // full buckets, still red
        assert_eq!(m.color_aware(0, 1000, Yellow), Yellow); // Tp 1000; Tc untouched
        assert_eq!(m.color_aware(0, 1000, Green), Green); // Tp 0, Tc 0
        assert_eq!(m.color_aware(0, 1, Green), Red);
        // 500 ms: Tp 1000, Tc 500.
        let t = 500 * MS;
        assert_eq!(m.color_aware(t, 600, Green), Yellow); // Tc short; Tp 400
        assert_eq!(m.color_aware(t, 400, Green), Green); // Tp 0, Tc 100
        assert_eq!(m.color_aware(t, 1, Yellow), Red);
    }

    #[test]
    fn set_rate_live() {
        let mut m = SrTcm::new(CIR, 1000, 0, 0);
        assert_eq!(m.color_blind(0, 1000), Green);
        m.set_rate(10 * CIR, 1000, 0, 0);
        assert_eq!(m.cir_bps(), 10 * CIR);
        // Ten bytes per millisecond from the change on.
        assert_eq!(m.color_blind(100 * MS, 1000), Green);
        let mut t = TrTcm::new(CIR, CIR, 1000, 1000, 0);
        assert_eq!(t.color_blind(0, 1000), Green);
        t.set_rate(CIR, 4 * CIR, 1000, 4000, 0);
        assert_eq!((t.cir_bps(), t.pir_bps()), (CIR, 4 * CIR));
        assert_eq!(t.color_blind(250 * MS, 1000), Yellow);
    }

    fn rank(c: Color) -> u8 {
        match c {
            Green => 0,
            Yellow => 1,
            Red => 2,
        }
    }

    proptest::proptest! {
        #[test]
        fn aware_never_greener(ops in proptest::collection::vec((0u64..5_000_000, 1u32..1500, 0u8..3), 1..300)) {
            let mut sr = SrTcm::new(1_000_000, 3000, 3000, 0);
            let mut tr = TrTcm::new(1_000_000, 2_000_000, 3000, 6000, 0);
            let mut now = 0;
            for (dt, len, pre) in ops {
                now += dt;
                let pre = [Green, Yellow, Red][usize::from(pre)];
                proptest::prop_assert!(rank(sr.color_aware(now, len, pre)) >= rank(pre));
                proptest::prop_assert!(rank(tr.color_aware(now, len, pre)) >= rank(pre));
            }
        }
    }
}
