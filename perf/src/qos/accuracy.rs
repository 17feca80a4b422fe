//! Rate accuracy: measured versus configured rate of one backlogged, shaped subscriber on a
//! simulated clock.
//!
//! The poll loop is simulated with irregular poll intervals (pseudo-random, uniform in
//! [`POLL_MIN_NS`]..[`POLL_MAX_NS`]), so departures are late by a varying fraction of a
//! poll, as in a real loop, and the shaper has to carry the remainder: at every poll the
//! subscriber's queue is topped up (offered load far above the rate) and the scheduler is
//! drained with the burst budget. The first `seconds` are a warm-up (they include the bucket's initial
//! burst); the next `seconds` are measured.
//!
//! The figure is the rate between the first and the last departure of the measured window
//! (bytes of all departures but the last, divided by the time between first and last), so it
//! does not depend on where the window boundaries cut the packet train: counting whole
//! 1500-byte packets in one second at 1 Mbit/s alone would quantise by 1.2%. The plain count
//! over the window is in the params as well (`window_count_mbps`), and so is the first
//! second from a full bucket (`first_window_mbps`, burst included).

use vbng_qos::class::{CLASSES, ClassId};
use vbng_qos::default_burst_bytes;
use vbng_qos::scheduler::{Scheduler, SchedulerConfig};

use super::BURST;
use crate::report::Figure;

/// Rates measured, in Mbit/s.
pub const RATES_MBPS: [u64; 4] = [1, 10, 100, 1000];
/// IPv4 total length of the packets (full-size frames, as iperf3 sends).
pub const PACKET_BYTES: u32 = 1500;
/// Shortest simulated poll interval.
pub const POLL_MIN_NS: u64 = 700;
/// Longest simulated poll interval (exclusive).
pub const POLL_MAX_NS: u64 = 1_400;
const QUEUE: u32 = 64;

/// Result of one accuracy run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accuracy {
    /// Configured rate, bit/s.
    pub configured_bps: u64,
    /// Measured rate between the first and last departure of the window, bit/s.
    pub measured_bps: f64,
    /// Bytes sent in the measured window, times 8, divided by its length, bit/s.
    pub window_count_bps: f64,
    /// Same for the first window (from a full bucket), bit/s.
    pub first_window_bps: f64,
    /// Window length, seconds.
    pub seconds: f64,
    /// Packets sent in the measured window.
    pub packets: u64,
    /// Configured burst, bytes.
    pub burst_bytes: u32,
}

impl Accuracy {
    /// Relative error of `measured_bps`, percent.
    pub fn error_pct(&self) -> f64 {
        100.0 * (self.measured_bps - self.configured_bps as f64) / self.configured_bps as f64
    }

    /// The figure `qos.rate_accuracy_<R>mbps`: measured Mbit/s against configured Mbit/s.
    pub fn figure(&self) -> Figure {
        let conf = self.configured_bps as f64 / 1e6;
        Figure::new(
            &format!("qos.rate_accuracy_{}mbps", self.configured_bps / 1_000_000),
            self.measured_bps / 1e6,
            "Mbit/s",
        )
        .with_baseline("configured", conf)
        .param(
            "note",
            format!(
                "error {:+.4}% (window count {:+.3}%, first window with burst {:+.3}%)",
                self.error_pct(),
                pct(self.window_count_bps, conf * 1e6),
                pct(self.first_window_bps, conf * 1e6)
            ),
        )
        .param("error_pct", self.error_pct())
        .param("window_count_mbps", self.window_count_bps / 1e6)
        .param("first_window_mbps", self.first_window_bps / 1e6)
        .param("window_s", self.seconds)
        .param("window_packets", self.packets)
        .param("packet_ip_bytes", PACKET_BYTES)
        .param("burst_bytes", self.burst_bytes)
        .param("poll_min_ns", POLL_MIN_NS)
        .param("poll_max_ns", POLL_MAX_NS)
        .param("clock", "simulated")
    }
}

fn pct(measured: f64, configured: f64) -> f64 {
    100.0 * (measured - configured) / configured
}

/// Shapes one backlogged subscriber to `rate_bps` (default burst) for `2 * seconds` of
/// simulated time and measures the second half.
pub fn measure(rate_bps: u64, seconds: f64) -> Accuracy {
    let mut sched: Scheduler<u32> = Scheduler::new(SchedulerConfig {
        max_subscribers: 1,
        max_packets: QUEUE + BURST as u32,
        class_queue_limit: [QUEUE; CLASSES],
        drr_quantum: [1514; CLASSES],
        port_rate_bps: None,
    });
    let burst = default_burst_bytes(rate_bps);
    sched.set_subscriber(0, rate_bps, burst, 0);
    let window_ns = (seconds * 1e9) as u64;
    let (mut first_bytes, mut bytes, mut packets) = (0u64, 0u64, 0u64);
    let (mut t_first, mut t_last, mut last_len) = (None, 0u64, 0u64);
    let mut handle = 0u32;
    let mut now = 0u64;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    while now < 2 * window_ns {
        while sched.backlog_packets() < QUEUE {
            handle = handle.wrapping_add(1);
            if sched
                .enqueue(now, 0, ClassId::BEST_EFFORT, PACKET_BYTES, handle)
                .is_err()
            {
                break;
            }
        }
        sched.dequeue(now, BURST, &mut |_, _, len| {
            let len = u64::from(len);
            if now < window_ns {
                first_bytes += len;
            } else {
                bytes += len;
                packets += 1;
                t_first.get_or_insert(now);
                t_last = now;
                last_len = len;
            }
        });
        // xorshift64: a fixed, reproducible sequence of poll intervals.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        now += POLL_MIN_NS + rng % (POLL_MAX_NS - POLL_MIN_NS);
    }
    let secs = window_ns as f64 / 1e9;
    let measured_bps = match t_first {
        Some(t0) if t_last > t0 => (bytes - last_len) as f64 * 8.0 * 1e9 / (t_last - t0) as f64,
        _ => 0.0,
    };
    Accuracy {
        configured_bps: rate_bps,
        measured_bps,
        window_count_bps: bytes as f64 * 8.0 / secs,
        first_window_bps: first_bytes as f64 * 8.0 / secs,
        seconds: secs,
        packets,
        burst_bytes: burst,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shaped_rate_within_one_percent() {
        for mbps in [10u64, 100] {
            let a = measure(mbps * 1_000_000, 0.02);
            assert!(a.error_pct().abs() < 1.0, "{a:?}");
            assert!(a.packets > 10, "{a:?}");
            let f = a.figure();
            assert_eq!(f.figure, format!("qos.rate_accuracy_{mbps}mbps"));
            assert_eq!(f.baseline.as_ref().map(|b| b.value), Some(mbps as f64));
        }
    }
}
