//! vbng-qos: per-subscriber quality of service for the vbng user plane.
//!
//! `no_std` + `alloc`, no unsafe code. Time is always passed in by the caller as monotonic
//! nanoseconds (`now_ns`): the TSC in the user plane, a simulated clock in tests. Rates are
//! bits per second on the IPv4 packet (IPv4 total length, no L2 overhead); sizes are bytes.
//!
//! # Module map
//! - [`bucket`]: [`bucket::TokenBucket`], an exact integer token bucket (shaper building block).
//! - [`policer`]: the single-rate (RFC 2697, [`policer::SrTcm`]) and two-rate (RFC 2698,
//!   [`policer::TrTcm`]) three-colour markers, colour-blind and colour-aware.
//! - [`class`]: the four scheduling classes and the DSCP to class map ([`class::DscpMap`]).
//! - [`scheduler`]: the hierarchical port -> subscriber -> class scheduler
//!   ([`scheduler::Scheduler`]): per-subscriber shaping, strict priority for class 0, DRR among
//!   classes 1..3, round robin among subscribers, optional port shaper, per-class queue limits
//!   and counters. All memory is allocated in [`scheduler::Scheduler::new`]; every operation
//!   afterwards is O(1) per packet and never allocates.
//!
//! Token arithmetic is integer only: a bucket counts tokens in units of 1/8e9 byte, so a rate
//! of `r` bit/s adds exactly `r` units per nanosecond and long runs never drift.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod bucket;
pub mod class;
pub mod policer;
pub mod scheduler;

/// Burst used when none is configured: 5 ms at `rate_bps`, but at least two full-size
/// Ethernet frames (2 * 1514 bytes), saturated to `u32::MAX`.
///
/// `rate_bps / 8` bytes per second times 5 ms is `rate_bps / 1600` bytes.
pub fn default_burst_bytes(rate_bps: u64) -> u32 {
    let five_ms = rate_bps / 1600;
    u32::try_from(five_ms.max(2 * 1514)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_burst() {
        assert_eq!(default_burst_bytes(0), 3028);
        assert_eq!(default_burst_bytes(1_000_000), 3028);
        assert_eq!(default_burst_bytes(10_000_000), 6250);
        assert_eq!(default_burst_bytes(1_000_000_000), 625_000);
        assert_eq!(default_burst_bytes(u64::MAX), u32::MAX);
    }
}
