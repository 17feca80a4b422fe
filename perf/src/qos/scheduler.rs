//! [`SchedulerBench`]: the `vbng-qos` scheduler alone, used as the user plane uses it
//! (`try_bypass`, else enqueue; dequeue per burst) at N subscribers, backlogged (offered
//! load above their rate) or under their rate.

use vbng_qos::class::{CLASSES, ClassId};
use vbng_qos::default_burst_bytes;
use vbng_qos::scheduler::{Scheduler, SchedulerConfig};

use super::{
    BURST, IP_BYTES, QUEUE_LIMIT, SIM_NS_PER_BURST, Spread, Tally, shaped_rate_bps, under_rate_bps,
};
use crate::timing::Workload;

/// The scheduler configuration the benchmarks use for `subscribers` subscribers: every
/// class queue holds [`QUEUE_LIMIT`] packets, the pool holds a full class queue per
/// subscriber plus one burst, no port shaper.
pub fn bench_config(subscribers: u32) -> SchedulerConfig {
    SchedulerConfig {
        max_subscribers: subscribers,
        max_packets: subscribers.saturating_mul(QUEUE_LIMIT) + 2 * BURST as u32,
        class_queue_limit: [QUEUE_LIMIT; CLASSES],
        drr_quantum: [1514; CLASSES],
        port_rate_bps: None,
    }
}

/// Packets offered to every subscriber, with the clock stopped, to empty its initially full
/// bucket and then fill its queue: twice what that takes, as the round robin reaches a
/// subscriber's queue only after the others of the burst.
pub fn priming_packets_per_subscriber(rate_bps: u64) -> u64 {
    2 * (u64::from(default_burst_bytes(rate_bps) / IP_BYTES) + u64::from(QUEUE_LIMIT)) + 4
}

/// The poll loop reduced to the scheduler: per burst, [`BURST`] packets (u32 handles) are
/// offered to subscribers in [`Spread`] order, best-effort class: sent at once by
/// `try_bypass` when it applies, else enqueued; then up to [`BURST`] are dequeued; the
/// simulated clock advances by [`SIM_NS_PER_BURST`].
#[derive(Debug)]
pub struct SchedulerBench {
    sched: Scheduler<u32>,
    spread: Spread,
    now_ns: u64,
    step_ns: u64,
    handle: u32,
    tally: Tally,
    backlogged: bool,
}

impl SchedulerBench {
    /// N subscribers, each shaped to [`shaped_rate_bps`]: backlogged (after [`Self::prime`]).
    pub fn new(subscribers: u32) -> SchedulerBench {
        Self::with_rate(subscribers, shaped_rate_bps(subscribers.max(1)), true)
    }

    /// N subscribers, each shaped to [`under_rate_bps`]: the offered load stays below every
    /// rate, so each packet is sent at once by the conformant fast path (`try_bypass`).
    pub fn under_rate(subscribers: u32) -> SchedulerBench {
        Self::with_rate(subscribers, under_rate_bps(subscribers.max(1)), false)
    }

    fn with_rate(subscribers: u32, rate: u64, backlogged: bool) -> SchedulerBench {
        let n = subscribers.max(1);
        let mut sched = Scheduler::new(bench_config(n));
        for s in 0..n {
            sched.set_subscriber(s, rate, default_burst_bytes(rate), 0);
        }
        SchedulerBench {
            sched,
            spread: Spread::new(n),
            now_ns: 0,
            step_ns: SIM_NS_PER_BURST,
            handle: 0,
            tally: Tally::default(),
            backlogged,
        }
    }

    /// Backlogged: brings every subscriber to the steady state with the clock stopped: its
    /// bucket's initial burst is spent and its queue is full. Under the rate: nothing (the
    /// buckets stay full).
    pub fn prime(&mut self) {
        if !self.backlogged {
            return;
        }
        let n = u64::from(self.spread.n);
        let per_sub = priming_packets_per_subscriber(shaped_rate_bps(self.spread.n));
        self.step_ns = 0;
        self.run(n * per_sub);
        self.step_ns = SIM_NS_PER_BURST;
    }

    /// Packets offered, sent and dropped so far.
    pub fn tally(&self) -> Tally {
        self.tally
    }

    /// The scheduler (for checks).
    pub fn scheduler(&self) -> &Scheduler<u32> {
        &self.sched
    }
}

impl Workload for SchedulerBench {
    fn run(&mut self, packets: u64) -> u64 {
        let mut left = packets;
        let mut acc = 0u64;
        let mut sent = 0u64;
        while left > 0 {
            let k = left.min(BURST as u64);
            for _ in 0..k {
                let sub = self.spread.next_index();
                self.handle = self.handle.wrapping_add(1);
                if self
                    .sched
                    .try_bypass(self.now_ns, sub, ClassId::BEST_EFFORT, IP_BYTES)
                {
                    acc = acc.wrapping_add(u64::from(sub ^ self.handle) + u64::from(IP_BYTES));
                    sent += 1;
                } else if self
                    .sched
                    .enqueue(
                        self.now_ns,
                        sub,
                        ClassId::BEST_EFFORT,
                        IP_BYTES,
                        self.handle,
                    )
                    .is_err()
                {
                    self.tally.dropped += 1;
                }
            }
            sent += self.sched.dequeue(self.now_ns, BURST, &mut |sub, h, len| {
                acc = acc.wrapping_add(u64::from(sub ^ h) + u64::from(len));
            }) as u64;
            self.now_ns += self.step_ns;
            left -= k;
        }
        self.tally.offered += packets;
        self.tally.sent += sent;
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primed_subscribers_stay_backlogged() {
        let n = 50;
        let mut b = SchedulerBench::new(n);
        b.prime();
        // Every queue is full after priming.
        assert_eq!(b.scheduler().backlog_packets(), n * QUEUE_LIMIT);
        let (before, backlog_before) = (b.tally(), b.scheduler().backlog_packets());
        b.run(100_000);
        let t = b.tally().since(&before);
        let backlog = b.scheduler().backlog_packets();
        // Sent at the shaped rate: offered / OVERLOAD (within 1%), the rest dropped.
        let expect = t.offered as f64 / super::super::OVERLOAD;
        assert!(
            (t.sent as f64 - expect).abs() < 0.01 * expect,
            "{t:?} expected {expect}"
        );
        assert_eq!(
            t.offered + u64::from(backlog_before),
            t.sent + t.dropped + u64::from(backlog)
        );
        // Every subscriber is still active with a standing queue.
        for sub in 0..n {
            let depth: u32 = b
                .scheduler()
                .counters(sub)
                .unwrap()
                .iter()
                .map(|c| c.depth_packets)
                .sum();
            assert!(depth >= QUEUE_LIMIT / 2, "subscriber {sub}: depth {depth}");
        }
        assert!(t.dropped > 0, "{t:?}");
    }

    #[test]
    fn under_rate_packets_leave_at_once() {
        let n = 50;
        let mut b = SchedulerBench::under_rate(n);
        b.prime();
        for _ in 0..2000 {
            b.run(BURST as u64);
            assert_eq!(b.scheduler().backlog_packets(), 0);
        }
        let t = b.tally();
        assert_eq!((t.sent, t.dropped), (t.offered, 0), "{t:?}");
        for sub in 0..n {
            let c = b.scheduler().counters(sub).unwrap();
            assert_eq!(c.iter().map(|k| k.exceeded_packets).sum::<u64>(), 0);
            assert_eq!(c[3].conformed_packets, 2000 * BURST as u64 / u64::from(n));
        }
    }
}
