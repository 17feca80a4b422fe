//! `vbng-perf qos`: the cost of per-subscriber shaping and scheduling, beside the pipeline
//! without QoS, and the rate accuracy of the shaper.
//!
//! Workloads (all single-threaded, simulated clock, bursts of [`BURST`] frames):
//! - [`pipeline::PipelineBench`] without QoS: the downstream path of
//!   `vbng_dataplane::pipeline::Pipeline` (core -> subscriber) over N sessions, the frames of
//!   each burst spread across the sessions. This is the baseline.
//! - the same with every session shaped and receiving traffic below its rate (offered load
//!   [`UNDER_RATE_LOAD`] times the rate): all N subscribers are active, and their frames pass
//!   straight through the shaper (its conformant fast path: sent at once). This is
//!   the steady state of "10k active subscribers" the goal is judged on: the added cost per
//!   packet (with minus without) must be at most [`GOAL_NS`] ns per packet.
//! - the worst case, reported beside it: rates chosen so that the offered load of every
//!   subscriber is [`OVERLOAD`] times its rate, so all N subscribers stay backlogged (queues
//!   full, buckets empty) for the whole measurement.
//! - [`scheduler::SchedulerBench`]: the scheduler alone, `try_bypass` or enqueue, and
//!   dequeue, of opaque handles under both loads.
//! - [`accuracy`]: measured versus configured rate at 1, 10, 100 and 1000 Mbit/s.
//!
//! Every timed repetition goes through one `#[inline(never)]` function per workload
//! ([`measure_baseline`], [`measure_qos_unshaped`], [`measure_shaped_under_rate`],
//! [`measure_shaped`], [`measure_scheduler_under_rate`], [`measure_scheduler`]) so that
//! callgrind can
//! count the instructions of exactly those calls (`--toggle-collect`, see perf/README.md).

pub mod accuracy;
pub mod pipeline;
pub mod scheduler;

use std::hint::black_box;

use crate::report::Figure;
use crate::timing::{Machine, Stats, Workload, ns_per_packet};
use pipeline::Mode;

/// Frames per burst (the poll loop's rx burst and its scheduler drain budget).
pub const BURST: usize = 32;
/// The goal: shaping plus scheduling costs at most this many ns per packet per core.
pub const GOAL_NS: f64 = 25.0;
/// Offered load of every shaped subscriber divided by its rate, backlogged workloads.
pub const OVERLOAD: f64 = 1.02;
/// Offered load of every shaped subscriber divided by its rate, under-rate workloads.
pub const UNDER_RATE_LOAD: f64 = 0.8;
/// Simulated time per burst of [`BURST`] frames, in ns (32 Mpps offered in total).
pub const SIM_NS_PER_BURST: u64 = 1_000;
/// Ethernet frame length of the benchmark frames (without FCS): minimum-size frames.
pub const FRAME_BYTES: usize = 60;
/// IPv4 total length of the benchmark packets (what the shaper counts).
pub const IP_BYTES: u32 = 46;
/// Per-class queue limit (packets) of every subscriber: the standing queue of a backlogged
/// subscriber.
pub const QUEUE_LIMIT: u32 = 8;

/// Parameters of `vbng-perf qos`.
#[derive(Debug, Clone, PartialEq)]
pub struct QosArgs {
    /// Active sessions / subscribers.
    pub subscribers: u32,
    /// Packets per timed repetition of each workload.
    pub packets: u64,
    /// Timed repetitions (the median is reported).
    pub reps: usize,
    /// Callgrind mode: one timed repetition per workload and no rate-accuracy runs; prints
    /// how to read the instruction counts.
    pub callgrind: bool,
    /// Simulated seconds measured per rate in the accuracy runs (after as long a warm-up).
    pub accuracy_seconds: f64,
}

impl Default for QosArgs {
    fn default() -> Self {
        QosArgs {
            subscribers: 10_000,
            packets: 2_000_000,
            reps: 7,
            callgrind: false,
            accuracy_seconds: 1.0,
        }
    }
}

/// The per-subscriber shaping rate at which `subscribers` subscribers, sharing the offered
/// load of one [`BURST`] per [`SIM_NS_PER_BURST`], each see [`OVERLOAD`] times their rate.
pub fn shaped_rate_bps(subscribers: u32) -> u64 {
    (offered_bps(subscribers) / OVERLOAD) as u64
}

/// The per-subscriber shaping rate at which every subscriber's offered load is
/// [`UNDER_RATE_LOAD`] times its rate (packets pass straight through).
pub fn under_rate_bps(subscribers: u32) -> u64 {
    (offered_bps(subscribers) / UNDER_RATE_LOAD) as u64
}

/// The load offered to each of `subscribers` subscribers, bit/s.
fn offered_bps(subscribers: u32) -> f64 {
    (BURST as f64 * f64::from(IP_BYTES) * 8.0 * 1e9)
        / (f64::from(subscribers.max(1)) * SIM_NS_PER_BURST as f64)
}

/// Visits `0..n` in a fixed scattered order: `i -> (i + stride) mod n` with `stride`
/// coprime to `n` near `0.618 n`, so consecutive frames go to far-apart sessions and every
/// session gets exactly one frame per `n`.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    n: u32,
    stride: u32,
    at: u32,
}

impl Spread {
    /// A walk over `0..n` (n >= 1) starting at 0.
    pub fn new(n: u32) -> Spread {
        let n = n.max(1);
        let mut stride = ((f64::from(n) * 0.618) as u32).max(1);
        while gcd(stride, n) != 1 {
            stride += 1;
        }
        Spread {
            n,
            stride: stride % n,
            at: 0,
        }
    }

    /// The next index.
    #[inline(always)]
    pub fn next_index(&mut self) -> u32 {
        let i = self.at;
        self.at += self.stride;
        if self.at >= self.n {
            self.at -= self.n;
        }
        i
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Times the pipeline without QoS. A separate symbol for callgrind's `--toggle-collect`.
#[inline(never)]
pub fn measure_baseline(w: &mut pipeline::PipelineBench, packets: u64) -> u64 {
    // Distinct bodies: identical functions could be merged into one symbol.
    black_box("baseline");
    w.run(packets)
}

/// Times the pipeline with every session shaped and under its rate.
#[inline(never)]
pub fn measure_shaped_under_rate(w: &mut pipeline::PipelineBench, packets: u64) -> u64 {
    // Distinct bodies: identical functions could be merged into one symbol.
    black_box("shaped_under_rate");
    w.run(packets)
}

/// Times the pipeline with every session shaped and backlogged.
#[inline(never)]
pub fn measure_shaped(w: &mut pipeline::PipelineBench, packets: u64) -> u64 {
    // Distinct bodies: identical functions could be merged into one symbol.
    black_box("shaped");
    w.run(packets)
}

/// Times the pipeline built with QoS whose sessions have no rate.
#[inline(never)]
pub fn measure_qos_unshaped(w: &mut pipeline::PipelineBench, packets: u64) -> u64 {
    // Distinct bodies: identical functions could be merged into one symbol.
    black_box("qos_unshaped");
    w.run(packets)
}

/// Times the scheduler alone, under the rate.
#[inline(never)]
pub fn measure_scheduler_under_rate(w: &mut scheduler::SchedulerBench, packets: u64) -> u64 {
    // Distinct bodies: identical functions could be merged into one symbol.
    black_box("scheduler_under_rate");
    w.run(packets)
}

/// Times the scheduler alone, backlogged.
#[inline(never)]
pub fn measure_scheduler(w: &mut scheduler::SchedulerBench, packets: u64) -> u64 {
    // Distinct bodies: identical functions could be merged into one symbol.
    black_box("scheduler");
    w.run(packets)
}

/// Runs every `qos` workload and returns its figures (the order the table prints).
pub fn run(args: &QosArgs) -> Vec<Figure> {
    let machine = Machine::detect();
    let n = args.subscribers.max(1);
    let packets = args.packets.max(BURST as u64);
    let reps = if args.callgrind { 1 } else { args.reps.max(1) };

    let mut base = pipeline::PipelineBench::new(n, Mode::Plain);
    let mut unshaped = pipeline::PipelineBench::new(n, Mode::QosUnshaped);
    let mut under = pipeline::PipelineBench::new(n, Mode::ShapedUnderRate);
    let mut shaped = pipeline::PipelineBench::new(n, Mode::Shaped);
    let mut sched_under = scheduler::SchedulerBench::under_rate(n);
    let mut sched = scheduler::SchedulerBench::new(n);

    // Warm-up: reach the steady state (backlogged: buckets drained, queues full: see
    // `prime`), then one untimed pass of each workload.
    base.prime();
    under.prime();
    shaped.prime();
    sched_under.prime();
    sched.prime();
    let warm = packets.min(1_000_000);
    black_box(base.run(warm));
    black_box(unshaped.run(warm));
    black_box(under.run(warm));
    black_box(shaped.run(warm));
    black_box(sched_under.run(warm));
    black_box(sched.run(warm));
    let before = [
        base.tally(),
        under.tally(),
        shaped.tally(),
        sched_under.tally(),
        sched.tally(),
    ];

    let mut t: [Vec<f64>; 6] = Default::default();
    for _ in 0..reps {
        t[0].push(ns_per_packet(packets, |m| measure_baseline(&mut base, m)));
        t[1].push(ns_per_packet(packets, |m| {
            measure_qos_unshaped(&mut unshaped, m)
        }));
        t[2].push(ns_per_packet(packets, |m| {
            measure_shaped_under_rate(&mut under, m)
        }));
        t[3].push(ns_per_packet(packets, |m| measure_shaped(&mut shaped, m)));
        t[4].push(ns_per_packet(packets, |m| {
            measure_scheduler_under_rate(&mut sched_under, m)
        }));
        t[5].push(ns_per_packet(packets, |m| measure_scheduler(&mut sched, m)));
    }
    let [sb, su, sr, ss, sqr, sq] = t.map(|v| Stats::from_samples(&v));
    let base_tally = base.tally().since(&before[0]);
    let under_tally = under.tally().since(&before[1]);
    let shaped_tally = shaped.tally().since(&before[2]);
    let sched_under_tally = sched_under.tally().since(&before[3]);
    let sched_tally = sched.tally().since(&before[4]);

    let common = |f: Figure| {
        f.param("subscribers", n)
            .param("packets", packets)
            .param("reps", reps)
            .param("cpu", machine.cpu.as_str())
            .param("release_build", machine.optimised)
    };
    let timing = |f: Figure, s: &Stats| {
        f.param("min_ns", s.min)
            .param("max_ns", s.max)
            .param("stat", "median of reps")
    };
    let load = |f: Figure| {
        f.param("burst", BURST)
            .param("frame_bytes", FRAME_BYTES)
            .param("ip_bytes", IP_BYTES)
            .param("sim_ns_per_burst", SIM_NS_PER_BURST)
    };
    let under_rate = |f: Figure| {
        f.param("rate_bps_per_subscriber", under_rate_bps(n))
            .param("offered_over_rate", UNDER_RATE_LOAD)
            .param("class_queue_limit", QUEUE_LIMIT)
            .param("frame_pool", scheduler::bench_config(n).max_packets)
    };
    let shaping = |f: Figure| {
        f.param("rate_bps_per_subscriber", shaped_rate_bps(n))
            .param("offered_over_rate", OVERLOAD)
            .param("class_queue_limit", QUEUE_LIMIT)
            .param("frame_pool", scheduler::bench_config(n).max_packets)
    };

    let base_name = "qos.pipeline_downstream_no_qos";
    let mut figs = Vec::new();
    figs.push(common(load(timing(
        Figure::new(base_name, sb.median, "ns/packet")
            .param(
                "note",
                format!("baseline: N sessions, QoS off; {}", base_tally.describe()),
            )
            .param("forwarded_fraction", base_tally.sent_fraction()),
        &sb,
    ))));
    figs.push(common(under_rate(load(timing(
        Figure::new(
            "qos.pipeline_downstream_with_qos_under_rate",
            sr.median,
            "ns/packet",
        )
        .with_baseline(base_name, sb.median)
        .param(
            "note",
            format!(
                "every session shaped, traffic below the rate; {}",
                under_tally.describe()
            ),
        )
        .param("method", under.method())
        .param("sent_fraction", under_tally.sent_fraction())
        .param("dropped_fraction", under_tally.dropped_fraction()),
        &sr,
    )))));
    figs.push(common(shaping(load(timing(
        Figure::new(
            "qos.pipeline_downstream_with_qos_backlogged",
            ss.median,
            "ns/packet",
        )
        .with_baseline(base_name, sb.median)
        .param(
            "note",
            format!(
                "every session shaped, all backlogged; {}",
                shaped_tally.describe()
            ),
        )
        .param("method", shaped.method())
        .param("sent_fraction", shaped_tally.sent_fraction())
        .param("dropped_fraction", shaped_tally.dropped_fraction()),
        &ss,
    )))));
    figs.push(common(load(timing(
        Figure::new(
            "qos.pipeline_downstream_qos_unshaped",
            su.median,
            "ns/packet",
        )
        .with_baseline(base_name, sb.median)
        .param("note", "QoS built in, sessions without a rate")
        .param("method", unshaped.method()),
        &su,
    ))));
    let added = sr.median - sb.median;
    figs.push(common(under_rate(load(
        Figure::new(
            "qos.shaping_scheduling_added_under_rate",
            added,
            "ns/packet",
        )
        .with_baseline(base_name, sb.median)
        .param(
            "note",
            format!(
                "THE GOAL FIGURE (N active subscribers, under their rates): <= {GOAL_NS} ns: {}",
                if added <= GOAL_NS { "met" } else { "NOT met" }
            ),
        )
        .param("goal_ns", GOAL_NS)
        .param("goal_met", added <= GOAL_NS)
        .param("method", "median(with qos, under rate) - median(without)"),
    ))));
    let added_bl = ss.median - sb.median;
    figs.push(common(shaping(load(
        Figure::new(
            "qos.shaping_scheduling_added_backlogged",
            added_bl,
            "ns/packet",
        )
        .with_baseline(base_name, sb.median)
        .param(
            "note",
            format!(
                "worst case, all N backlogged (goal judged on _under_rate): {}",
                if added_bl <= GOAL_NS {
                    "within 25 ns too"
                } else {
                    "above 25 ns"
                }
            ),
        )
        .param("goal_ns", GOAL_NS)
        .param("method", "median(with qos, backlogged) - median(without)"),
    ))));
    figs.push(common(under_rate(timing(
        Figure::new(
            "qos.scheduler_enqueue_dequeue_under_rate",
            sqr.median,
            "ns/packet",
        )
        .with_baseline(base_name, sb.median)
        .param(
            "note",
            format!(
                "scheduler alone, under the rate; {}",
                sched_under_tally.describe()
            ),
        )
        .param("burst", BURST)
        .param("ip_bytes", IP_BYTES)
        .param("sent_fraction", sched_under_tally.sent_fraction())
        .param("dropped_fraction", sched_under_tally.dropped_fraction()),
        &sqr,
    ))));
    figs.push(common(shaping(timing(
        Figure::new(
            "qos.scheduler_enqueue_dequeue_backlogged",
            sq.median,
            "ns/packet",
        )
        .with_baseline(base_name, sb.median)
        .param(
            "note",
            format!("scheduler alone, backlogged; {}", sched_tally.describe()),
        )
        .param("burst", BURST)
        .param("ip_bytes", IP_BYTES)
        .param("sent_fraction", sched_tally.sent_fraction())
        .param("dropped_fraction", sched_tally.dropped_fraction()),
        &sq,
    ))));

    if !args.callgrind {
        for r in accuracy::RATES_MBPS {
            let a = accuracy::measure(r * 1_000_000, args.accuracy_seconds);
            figs.push(common(a.figure()));
        }
    }
    figs
}

/// What a workload did with its packets (for the notes and the sanity of the figures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Packets offered to the path.
    pub offered: u64,
    /// Packets that left it (forwarded or dequeued).
    pub sent: u64,
    /// Packets dropped (queue full, pool exhausted, pipeline drop).
    pub dropped: u64,
}

impl Tally {
    /// The difference to an earlier tally of the same workload.
    pub fn since(&self, earlier: &Tally) -> Tally {
        Tally {
            offered: self.offered - earlier.offered,
            sent: self.sent - earlier.sent,
            dropped: self.dropped - earlier.dropped,
        }
    }

    /// `sent / offered`.
    pub fn sent_fraction(&self) -> f64 {
        self.sent as f64 / self.offered.max(1) as f64
    }

    /// `dropped / offered`.
    pub fn dropped_fraction(&self) -> f64 {
        self.dropped as f64 / self.offered.max(1) as f64
    }

    /// `sent 98.0%, dropped 2.0%`.
    pub fn describe(&self) -> String {
        format!(
            "sent {:.1}%, dropped {:.1}%",
            100.0 * self.sent_fraction(),
            100.0 * self.dropped_fraction()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_visits_every_index_once_per_round() {
        for n in [1u32, 2, 3, 10, 64, 1000, 10_000] {
            let mut s = Spread::new(n);
            let mut seen = vec![false; n as usize];
            for _ in 0..n {
                let i = s.next_index() as usize;
                assert!(!seen[i], "n={n} i={i}");
                seen[i] = true;
            }
            assert_eq!(s.next_index(), 0, "n={n}: back to the start");
        }
    }

    #[test]
    fn shaped_rate_is_below_the_offered_load() {
        let r = shaped_rate_bps(10_000);
        // 32 frames of 46 IPv4 bytes per us over 10k subscribers: 1.1776 Mbit/s offered.
        assert_eq!(r, (1_177_600.0 / OVERLOAD) as u64);
        assert!(shaped_rate_bps(1) > shaped_rate_bps(2));
    }
}
