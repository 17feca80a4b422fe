//! [`LoopClock`]: the poll loops' nanoseconds since their start, read several times a loop
//! iteration (the pipeline's `now` and the burst latency stamps).
//!
//! `Instant::now()` goes through the vDSO's `clock_gettime`, and `elapsed().as_nanos()` adds
//! a subtraction with checks and a 128-bit conversion: in a `perf record` of the IPoE
//! pipeline child, the three reads of each iteration held 2.6% of the samples, time that
//! testpmd, which reads no clock, never spends. Where the CPU's time-stamp counter is
//! invariant (`constant_tsc` and `nonstop_tsc` in `/proc/cpuinfo`), the clock reads it
//! instead and scales the ticks with a factor measured against `Instant` when the clock is
//! made; elsewhere it falls back to `Instant`. The figures' elapsed times stay measured with
//! `Instant` ([`super::worker::Mark`]), so a calibration error cannot change a rate.

use std::time::{Duration, Instant};

/// How long [`LoopClock::start`] measures the counter's rate against `Instant`.
const CALIBRATION: Duration = Duration::from_millis(5);

/// Nanoseconds since the clock was made: from the time-stamp counter or from `Instant`.
#[derive(Debug, Clone, Copy)]
pub struct LoopClock {
    start: Instant,
    /// The counter at `start` and nanoseconds per tick as a 32.32 fixed-point factor, when
    /// the counter is used.
    tsc: Option<(u64, u64)>,
}

impl LoopClock {
    /// A clock starting now (after a 5 ms calibration where the counter is used).
    pub fn start() -> LoopClock {
        let tsc = invariant_tsc().then(calibrate).flatten();
        let start = Instant::now();
        let tsc = tsc.map(|factor| (read_tsc(), factor));
        LoopClock { start, tsc }
    }

    /// Nanoseconds since [`LoopClock::start`].
    #[inline(always)]
    pub fn now_ns(&self) -> u64 {
        match self.tsc {
            Some((start, factor)) => {
                let ticks = read_tsc().wrapping_sub(start);
                ((u128::from(ticks) * u128::from(factor)) >> 32) as u64
            }
            None => self.start.elapsed().as_nanos() as u64,
        }
    }

    /// True if the clock reads the time-stamp counter.
    pub fn uses_tsc(&self) -> bool {
        self.tsc.is_some()
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn read_tsc() -> u64 {
    // SAFETY: RDTSC exists on every x86-64 CPU and only reads the counter.
    #[allow(unused_unsafe)]
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn read_tsc() -> u64 {
    0
}

/// True if the CPU says its time-stamp counter ticks at a constant rate in every state
/// (the loop clocks then read it).
pub fn invariant_tsc() -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    let Ok(cpuinfo) = std::fs::read_to_string("/proc/cpuinfo") else {
        return false;
    };
    let flags = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or("");
    let has = |flag: &str| flags.split_whitespace().any(|f| f == flag);
    has("constant_tsc") && has("nonstop_tsc")
}

/// Nanoseconds per counter tick as a 32.32 fixed-point factor, measured over
/// [`CALIBRATION`]; None if the counter did not advance.
fn calibrate() -> Option<u64> {
    let (t0, c0) = (Instant::now(), read_tsc());
    while t0.elapsed() < CALIBRATION {
        std::hint::spin_loop();
    }
    let (c1, ns) = (read_tsc(), t0.elapsed().as_nanos());
    let ticks = u128::from(c1.checked_sub(c0).filter(|&t| t > 0)?);
    u64::try_from((ns << 32) / ticks).ok().filter(|&f| f > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_instant_within_a_percent() {
        let clock = LoopClock::start();
        // Each read of the clock is bracketed by two of Instant, so that a preemption
        // between them widens the allowed interval instead of failing the test.
        let (t0, a, t1) = (Instant::now(), clock.now_ns(), Instant::now());
        std::thread::sleep(Duration::from_millis(50));
        let (t2, b, t3) = (Instant::now(), clock.now_ns(), Instant::now());
        let shortest = (t2 - t1).as_nanos() as f64 * 0.99;
        let longest = (t3 - t0).as_nanos() as f64 * 1.01;
        let measured = b.checked_sub(a).expect("the clock went backwards") as f64;
        assert!(
            (shortest..=longest).contains(&measured),
            "clock (tsc: {}) measured {measured} ns, Instant {shortest}..{longest} ns",
            clock.uses_tsc()
        );
    }
}
