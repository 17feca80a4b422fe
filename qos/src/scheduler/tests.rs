//! Scheduler tests on a simulated clock: rates, bursts, priority, DRR, live rate changes,
//! queue limits and handle conservation.

extern crate std;

use alloc::vec::Vec;
use std::collections::BTreeSet;

use super::*;
use crate::default_burst_bytes;

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

/// One sent packet (dequeued, or let through by `try_bypass`): time, subscriber, class
/// (from the handle), length, handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sent {
    t: u64,
    sub: u32,
    class: usize,
    len: u32,
    h: u64,
}

/// A scheduler driven by an event-driven simulated clock. Handles encode the class in the
/// low two bits and a unique serial above them.
struct Sim {
    s: Scheduler<u64>,
    now: u64,
    serial: u64,
    log: Vec<Sent>,
    /// Packets sent by `try_bypass` (through [`Sim::offer`]).
    bypassed: u64,
}

impl Sim {
    fn new(cfg: SchedulerConfig) -> Self {
        Sim {
            s: Scheduler::new(cfg),
            now: 0,
            serial: 0,
            log: Vec::new(),
            bypassed: 0,
        }
    }

    fn enqueue(&mut self, sub: u32, class: usize, len: u32) -> Result<(), EnqueueError> {
        self.serial += 1;
        let h = (self.serial << 2) | class as u64;
        self.s
            .enqueue(self.now, sub, ClassId(class as u8), len, h)
            .map_err(|(p, e)| {
                assert_eq!(p, h);
                e
            })
    }

    /// Offers a packet the way the user plane does: sent at once by the conformant fast
    /// path if it applies (logged at `now`, returns `Ok(true)`), else enqueued.
    fn offer(&mut self, sub: u32, class: usize, len: u32) -> Result<bool, EnqueueError> {
        if self.s.try_bypass(self.now, sub, ClassId(class as u8), len) {
            self.serial += 1;
            self.bypassed += 1;
            self.log.push(Sent {
                t: self.now,
                sub,
                class,
                len,
                h: (self.serial << 2) | class as u64,
            });
            return Ok(true);
        }
        self.enqueue(sub, class, len).map(|()| false)
    }

    /// Tops the class queue of `sub` up to `depth` packets with lengths from `lens`.
    fn fill(&mut self, sub: u32, class: usize, depth: u32, lens: &mut impl Iterator<Item = u32>) {
        while self.s.counters(sub).unwrap()[class].depth_packets < depth {
            self.enqueue(sub, class, lens.next().unwrap()).unwrap();
        }
    }

    /// Advances the clock to the next wake-up (not beyond `limit`) and dequeues.
    fn step(&mut self, budget: usize, limit: u64) -> bool {
        let Some(t) = self.s.next_wakeup_ns() else {
            return false;
        };
        if t > limit {
            return false;
        }
        self.now = self.now.max(t);
        self.poll(budget);
        true
    }

    fn poll(&mut self, budget: usize) -> usize {
        let now = self.now;
        let log = &mut self.log;
        self.s.dequeue(now, budget, &mut |sub, h, len| {
            log.push(Sent {
                t: now,
                sub,
                class: (h & 3) as usize,
                len,
                h,
            });
        })
    }

    fn bytes(&self, sub: Option<u32>, from: u64, to: u64) -> u64 {
        self.log
            .iter()
            .filter(|e| sub.is_none_or(|s| e.sub == s) && e.t >= from && e.t < to)
            .map(|e| u64::from(e.len))
            .sum()
    }
}

fn cfg(max_subscribers: u32) -> SchedulerConfig {
    SchedulerConfig {
        max_subscribers,
        max_packets: 1 << 16,
        class_queue_limit: [64, 256, 256, 256],
        ..SchedulerConfig::default()
    }
}

fn mixed() -> impl Iterator<Item = u32> {
    [64u32, 1500, 576, 1500, 40, 1280, 1500, 333]
        .into_iter()
        .cycle()
}

fn rate_of(bytes: u64, ns: u64) -> f64 {
    bytes as f64 * 8.0 * S as f64 / ns as f64
}

fn assert_within(measured: f64, want: f64, tol: f64, what: &str) {
    let err = (measured - want).abs() / want;
    assert!(
        err <= tol,
        "{what}: measured {measured:.0} bit/s, want {want:.0} (error {err:.4})"
    );
}

/// Saturates one subscriber for `warmup + 1 s` and returns the simulator.
fn saturated_run(rate: u64, lens: &mut impl Iterator<Item = u32>, warmup: u64) -> Sim {
    let mut sim = Sim::new(cfg(4));
    sim.s.set_subscriber(2, rate, default_burst_bytes(rate), 0);
    let end = warmup + S;
    loop {
        sim.fill(2, 3, 256, lens);
        if !sim.step(32, end) {
            break;
        }
    }
    sim
}

#[test]
fn shaped_rate_within_one_percent() {
    for rate in [1_000_000u64, 10_000_000, 100_000_000, 1_000_000_000] {
        for mix in [false, true] {
            let mut lens: std::boxed::Box<dyn Iterator<Item = u32>> = if mix {
                std::boxed::Box::new(mixed())
            } else {
                std::boxed::Box::new(core::iter::repeat(1500))
            };
            // Steady state over one second after the initial burst has drained.
            let warmup = 50 * MS;
            let sim = saturated_run(rate, &mut lens, warmup);
            let steady = sim.bytes(Some(2), warmup, warmup + S);
            assert_within(rate_of(steady, S), rate as f64, 0.01, "steady second");
            // From the first packet on, the one second holds at most the burst more.
            let first = sim.bytes(Some(2), 0, S);
            let ideal = rate / 8;
            let burst = u64::from(default_burst_bytes(rate));
            assert!(
                first <= ideal + burst,
                "rate {rate}: {first} > {ideal} + {burst}"
            );
            assert!(first + 1500 >= ideal, "rate {rate}: {first} < {ideal}");
            // Measured from dequeue times: bytes after the first packet over the elapsed time.
            let log: Vec<_> = sim.log.iter().filter(|e| e.t >= warmup).collect();
            let span = log.last().unwrap().t - log[0].t;
            let after_first: u64 = log[1..].iter().map(|e| u64::from(e.len)).sum();
            assert_within(
                rate_of(after_first, span),
                rate as f64,
                0.01,
                "dequeue times",
            );
        }
    }
}

#[test]
fn shaped_rate_with_fixed_poll_interval() {
    // The user plane polls at its own pace rather than at next_wakeup_ns.
    for (rate, poll) in [
        (10_000_000u64, 50_000u64),
        (100_000_000, 20_000),
        (1_000_000_000, 7_000),
    ] {
        let mut sim = Sim::new(cfg(1));
        sim.s.set_subscriber(0, rate, default_burst_bytes(rate), 0);
        let mut lens = mixed();
        while sim.now < 1100 * MS {
            sim.fill(0, 3, 256, &mut lens);
            sim.poll(64);
            sim.now += poll;
        }
        let steady = sim.bytes(Some(0), 100 * MS, 1100 * MS);
        assert_within(rate_of(steady, S), rate as f64, 0.01, "polled");
    }
}

#[test]
fn bursts_never_exceed_burst_size() {
    let rate = 10_000_000;
    let burst = 20_000;
    let mut sim = Sim::new(cfg(1));
    sim.s.set_subscriber(0, rate, burst, 0);
    // Idle periods of various lengths, each followed by a flood in one instant.
    let mut lens = mixed();
    for idle in [S, 3 * MS, 40 * MS, 17 * MS, 2 * S] {
        sim.now += idle;
        sim.fill(0, 3, 200, &mut lens);
        let start = sim.log.len();
        sim.poll(10_000);
        let instant: u64 = sim.log[start..].iter().map(|e| u64::from(e.len)).sum();
        assert!(
            instant <= u64::from(burst),
            "{instant} bytes released at once"
        );
        let end = sim.now + 200 * MS;
        while sim.step(10_000, end) {}
    }
    // In every window, output <= burst + rate * window.
    let log = &sim.log;
    for i in 0..log.len() {
        let mut sum = 0u64;
        for e in &log[i..] {
            sum += u64::from(e.len);
            let allowed = u64::from(burst) + (e.t - log[i].t) * rate / (8 * S);
            assert!(
                sum <= allowed + 1,
                "window from {}: {sum} > {allowed}",
                log[i].t
            );
        }
    }
}

#[test]
fn port_shaper_caps_the_sum_and_shares() {
    let port = 50_000_000;
    let mut sim = Sim::new(SchedulerConfig {
        port_rate_bps: Some(port),
        ..cfg(4)
    });
    for sub in 0..3 {
        sim.s.set_subscriber(sub, 100_000_000, 100_000, 0);
    }
    let mut lens = core::iter::repeat(1000);
    loop {
        for sub in 0..3 {
            sim.fill(sub, 3, 64, &mut lens);
        }
        if !sim.step(32, 1100 * MS) {
            break;
        }
    }
    let total = sim.bytes(None, 100 * MS, 1100 * MS);
    assert_within(rate_of(total, S), port as f64, 0.01, "port");
    for sub in 0..3 {
        let b = sim.bytes(Some(sub), 100 * MS, 1100 * MS);
        assert_within(rate_of(b, S), port as f64 / 3.0, 0.01, "subscriber share");
    }
}

#[test]
fn many_subscribers_each_at_their_rate() {
    // Rates from 0.5 to 10 Mbit/s: slow ones wait longer than the wheel horizon.
    let n = 100u32;
    let mut sim = Sim::new(cfg(n));
    let rate = |i: u32| 500_000 + u64::from(i) * 95_000;
    for i in 0..n {
        sim.s
            .set_subscriber(i, rate(i), default_burst_bytes(rate(i)), 0);
    }
    let mut lens = mixed();
    loop {
        for i in 0..n {
            sim.fill(i, 3, 8, &mut lens);
        }
        if !sim.step(64, 1100 * MS) {
            break;
        }
    }
    for i in 0..n {
        let b = sim.bytes(Some(i), 100 * MS, 1100 * MS);
        // One mixed-size packet of slack at the slowest rate is about 2.4 per cent.
        let tol = if rate(i) < 2_000_000 { 0.025 } else { 0.01 };
        assert_within(rate_of(b, S), rate(i) as f64, tol, "subscriber");
    }
}

#[test]
fn priority_class_keeps_its_latency() {
    let rate = 10_000_000;
    let mut sim = Sim::new(cfg(1));
    sim.s.set_subscriber(0, rate, default_burst_bytes(rate), 0);
    let mut bulk = core::iter::repeat(1500);
    let mut arrivals = Vec::new();
    let mut next_voice = 5 * MS;
    let end = 1100 * MS;
    loop {
        sim.fill(0, 3, 256, &mut bulk);
        let wake = sim.s.next_wakeup_ns().unwrap();
        if wake.min(next_voice) > end {
            break;
        }
        if next_voice <= wake {
            sim.now = sim.now.max(next_voice);
            sim.enqueue(0, 0, 200).unwrap();
            arrivals.push(sim.now);
            next_voice += 10 * MS + 37_000;
        } else {
            sim.now = sim.now.max(wake);
        }
        sim.poll(32);
    }
    let voice: Vec<u64> = sim
        .log
        .iter()
        .filter(|e| e.class == 0)
        .map(|e| e.t)
        .collect();
    assert_eq!(voice.len(), arrivals.len());
    // One packet time of the subscriber rate for a full-size bulk packet.
    let packet_time = 1500 * 8 * S / rate;
    let own_time = 200 * 8 * S / rate + 1024;
    for (a, d) in arrivals.iter().zip(&voice) {
        assert!(d - a <= packet_time, "voice waited {} ns", d - a);
        assert!(d - a <= own_time, "voice waited {} ns", d - a);
    }
    // Bulk gets the rest: the subscriber stays saturated at its rate.
    let voice_bytes = 200 * arrivals.len() as u64;
    let bulk: u64 = sim
        .log
        .iter()
        .filter(|e| e.class == 3)
        .map(|e| u64::from(e.len))
        .sum();
    let ideal = rate / 8 * end / S;
    let burst = u64::from(default_burst_bytes(rate));
    assert!(
        bulk + voice_bytes + 1500 >= ideal,
        "bulk {bulk} + voice {voice_bytes} < {ideal}"
    );
    assert!(bulk + voice_bytes <= ideal + burst);
}

fn drr_shares(quantum: [u32; CLASSES], lens: fn() -> std::boxed::Box<dyn Iterator<Item = u32>>) {
    let rate = 100_000_000;
    let mut sim = Sim::new(SchedulerConfig {
        drr_quantum: quantum,
        ..cfg(1)
    });
    sim.s.set_subscriber(0, rate, default_burst_bytes(rate), 0);
    let mut l = [lens(), lens(), lens()];
    loop {
        for c in 1..CLASSES {
            sim.fill(0, c, 64, &mut l[c - 1]);
        }
        if !sim.step(32, S) {
            break;
        }
    }
    let per_class: Vec<u64> = (1..CLASSES)
        .map(|c| {
            sim.log
                .iter()
                .filter(|e| e.class == c)
                .map(|e| u64::from(e.len))
                .sum()
        })
        .collect();
    let total: u64 = per_class.iter().sum();
    let qsum: u32 = quantum[1..].iter().sum();
    for c in 1..CLASSES {
        let share = per_class[c - 1] as f64 / total as f64;
        let want = f64::from(quantum[c]) / f64::from(qsum);
        assert!(
            (share - want).abs() / want <= 0.02,
            "class {c}: share {share:.4}, want {want:.4}"
        );
    }
}

#[test]
fn drr_shares_follow_quanta() {
    drr_shares([0, 3000, 2000, 1000], || {
        std::boxed::Box::new(core::iter::repeat(1500))
    });
    drr_shares([0, 4542, 3028, 1514], || std::boxed::Box::new(mixed()));
    // Quanta far below the packet size: whole rounds are skipped at once.
    drr_shares([0, 300, 200, 100], || std::boxed::Box::new(mixed()));
    drr_shares([0, 1, 1, 2], || {
        std::boxed::Box::new(core::iter::repeat(1500))
    });
}

#[test]
fn live_rate_change_keeps_packets_and_applies_at_once() {
    let mut sim = Sim::new(cfg(1));
    sim.s
        .set_subscriber(0, 10_000_000, default_burst_bytes(10_000_000), 0);
    let mut lens = core::iter::repeat(1500);
    loop {
        sim.fill(0, 3, 256, &mut lens);
        if !sim.step(32, 500 * MS) {
            break;
        }
    }
    let change = 500 * MS;
    sim.now = change;
    let queued = sim.s.backlog_packets();
    assert_eq!(queued, 256);
    sim.s
        .set_subscriber(0, 20_000_000, default_burst_bytes(20_000_000), change);
    assert_eq!(sim.s.backlog_packets(), queued);
    assert_eq!(sim.s.subscriber_rate_bps(0), Some(20_000_000));
    // The queued packets leave at the new rate right away (no burst was saved up).
    let before = sim.log.len();
    while sim.step(32, change + 100 * MS) {}
    let sent: Vec<_> = sim.log[before..].to_vec();
    assert!(sent[0].t - change <= 1500 * 8 * S / 20_000_000 + 1024);
    let b: u64 = sent.iter().map(|e| u64::from(e.len)).sum();
    assert_within(rate_of(b, 100 * MS), 20_000_000.0, 0.01, "after the change");
    assert_eq!(sent.len(), 167);
    // And back down, with saturation: the old (slow) wake-up does not hold the packets.
    let mut sim = Sim::new(cfg(1));
    sim.s.set_subscriber(0, 1_000_000, 3028, 0);
    sim.fill(0, 3, 10, &mut lens);
    sim.poll(100); // two packets of burst, then parked for 12 ms
    assert_eq!(sim.log.len(), 2);
    sim.now = MS;
    sim.s.set_subscriber(0, 1_000_000_000, 3028, MS);
    while sim.step(100, 2 * MS) {}
    assert_eq!(sim.log.len(), 10, "all queued packets sent at the new rate");
    assert!(sim.log[9].t < MS + 200_000);
}

#[test]
fn queue_limits_and_pool_drop_with_counters() {
    let mut sim = Sim::new(SchedulerConfig {
        max_subscribers: 2,
        max_packets: 6,
        class_queue_limit: [4, 4, 4, 4],
        ..SchedulerConfig::default()
    });
    assert_eq!(sim.enqueue(0, 3, 100), Err(EnqueueError::NoSubscriber));
    assert_eq!(sim.enqueue(9, 3, 100), Err(EnqueueError::NoSubscriber));
    sim.s.set_subscriber(0, 1_000_000, 3000, 0);
    sim.s.set_subscriber(1, 1_000_000, 3000, 0);
    for _ in 0..4 {
        sim.enqueue(0, 3, 100).unwrap();
    }
    assert_eq!(sim.enqueue(0, 3, 100), Err(EnqueueError::QueueFull));
    assert_eq!(sim.enqueue(0, 3, 50), Err(EnqueueError::QueueFull));
    sim.enqueue(0, 1, 100).unwrap();
    sim.enqueue(1, 2, 100).unwrap();
    assert_eq!(sim.enqueue(1, 2, 70), Err(EnqueueError::PoolExhausted));
    let c = sim.s.counters(0).unwrap();
    assert_eq!((c[3].dropped_packets, c[3].dropped_bytes), (2, 150));
    assert_eq!((c[3].depth_packets, c[3].depth_bytes), (4, 400));
    assert_eq!(sim.s.counters(1).unwrap()[2].dropped_packets, 1);
    assert_eq!(sim.s.backlog_packets(), 6);
    // Drain: everything conformed (3000 bytes of burst, then 1 Mbit/s).
    while sim.step(8, 10 * S) {}
    let c = sim.s.counters(0).unwrap();
    assert_eq!(
        (
            c[3].conformed_packets,
            c[3].conformed_bytes,
            c[3].depth_packets
        ),
        (4, 400, 0)
    );
    assert_eq!(c[1].conformed_packets, 1);
    assert_eq!(sim.s.backlog_packets(), 0);
    assert_eq!(sim.s.next_wakeup_ns(), None);
}

#[test]
fn exceeded_counts_packets_that_had_to_wait() {
    let mut sim = Sim::new(cfg(1));
    sim.s.set_subscriber(0, 8_000_000, 3000, 0);
    // 3000 bytes of burst: the first two 1500-byte packets conform, the rest wait.
    for _ in 0..5 {
        sim.enqueue(0, 3, 1500).unwrap();
    }
    let c = sim.s.counters(0).unwrap()[3];
    assert_eq!(c.exceeded_packets, 3);
    while sim.step(8, S) {}
    assert_eq!(sim.s.counters(0).unwrap()[3].conformed_packets, 5);
}

#[test]
fn remove_subscriber_returns_every_handle() {
    let mut sim = Sim::new(cfg(3));
    for sub in 0..3 {
        sim.s.set_subscriber(sub, 1_000_000, 3028, 0);
    }
    let mut lens = mixed();
    for c in 0..CLASSES {
        sim.fill(1, c, 10, &mut lens);
        sim.fill(2, c, 3, &mut lens);
    }
    sim.poll(5); // subscriber 1 ends up parked, 2 active or parked
    let mut back = Vec::new();
    sim.s.remove_subscriber(1, &mut |h| back.push(h));
    assert!(!sim.s.has_subscriber(1));
    assert!(sim.s.counters(1).is_none());
    let sent1 = sim.log.iter().filter(|e| e.sub == 1).count();
    assert_eq!(back.len() + sent1, 40);
    let set: BTreeSet<u64> = back.iter().copied().collect();
    assert_eq!(set.len(), back.len());
    assert_eq!(sim.enqueue(1, 3, 100), Err(EnqueueError::NoSubscriber));
    // Re-adding starts afresh; the others are untouched.
    sim.s.set_subscriber(1, 1_000_000, 3028, sim.now);
    assert_eq!(sim.s.counters(1).unwrap()[0], ClassCounters::default());
    while sim.step(64, 10 * S) {}
    assert_eq!(sim.log.iter().filter(|e| e.sub == 2).count(), 12);
    assert_eq!(sim.s.backlog_packets(), 0);
}

#[test]
fn unshaped_and_oversize_packets() {
    let mut sim = Sim::new(cfg(2));
    sim.s.set_subscriber(0, 0, 0, 0);
    for _ in 0..100 {
        sim.enqueue(0, 3, 9000).unwrap();
    }
    assert_eq!(sim.poll(1000), 100);
    // Packets larger than the burst still leave, at the configured rate.
    sim.s.set_subscriber(1, 8_000_000, 1000, 0);
    let start = sim.log.len();
    for _ in 0..101 {
        sim.enqueue(1, 3, 5000).unwrap();
    }
    while sim.step(8, 10 * S) {}
    let log = &sim.log[start..];
    assert_eq!(log.len(), 101);
    // 5000 bytes at 1 MB/s: one packet per 5 ms.
    let span = log[100].t - log[0].t;
    assert_within(rate_of(500_000, span), 8_000_000.0, 0.01, "oversize");
}

#[test]
fn budget_is_respected() {
    let mut sim = Sim::new(cfg(8));
    for sub in 0..8 {
        sim.s.set_subscriber(sub, 0, 0, 0);
        sim.fill(sub, 3, 10, &mut core::iter::repeat(1000));
    }
    assert_eq!(sim.poll(7), 7);
    // Round robin by quantum: three 1000-byte packets (3000 <= 2 * 1514 bytes) per visit.
    let subs: Vec<u32> = sim.log.iter().map(|e| e.sub).collect();
    assert_eq!(subs, [0, 0, 0, 1, 1, 1, 2]);
    assert_eq!(sim.s.next_wakeup_ns(), Some(sim.now));
    // A visit cut short by the budget resumes at the next call.
    assert_eq!(sim.poll(1), 1);
    assert_eq!(sim.log.last().unwrap().sub, 2);
    assert_eq!(sim.poll(1), 1);
    assert_eq!(sim.log.last().unwrap().sub, 2);
    assert_eq!(sim.poll(1), 1);
    assert_eq!(sim.log.last().unwrap().sub, 3);
    assert_eq!(sim.poll(1000), 70);
}

#[test]
fn round_robin_is_byte_fair_over_a_round() {
    // Unshaped, always backlogged subscribers with very different packet sizes, drained by
    // small budgets (visits cut short and resumed): every subscriber is visited once per
    // round, and each visit sends one quantum of bytes (the rest carries over), except that
    // a visit always sends at least one packet (the jumbo subscriber).
    const Q: u64 = 2 * 1514;
    let sizes: [&[u32]; 4] = [&[64], &[1500], &[40, 1280, 576], &[9000]];
    let mut sim = Sim::new(cfg(4));
    let mut lens: Vec<_> = sizes.iter().map(|l| l.iter().copied().cycle()).collect();
    for sub in 0..4 {
        sim.s.set_subscriber(sub, 0, 0, 0);
    }
    for _ in 0..2000 {
        for sub in 0..4u32 {
            sim.fill(sub, 3, 250, &mut lens[sub as usize]);
        }
        sim.poll(7);
    }
    let mut visits = [0u64; 4];
    let mut bytes = [0u64; 4];
    let mut order = Vec::new();
    let mut prev = None;
    for e in &sim.log {
        if prev != Some(e.sub) {
            visits[e.sub as usize] += 1;
            order.push(e.sub);
        }
        prev = Some(e.sub);
        bytes[e.sub as usize] += u64::from(e.len);
    }
    // Strict rotation 0, 1, 2, 3, 0, 1, ...
    for (i, sub) in order.iter().enumerate() {
        assert_eq!(*sub as usize, i % 4, "visit {i}");
    }
    assert!(visits[0] > 200, "{visits:?}");
    for sub in 0..3 {
        let want = visits[sub] * Q;
        assert!(
            bytes[sub].abs_diff(want) <= Q + 1500,
            "subscriber {sub}: {} bytes in {} visits",
            bytes[sub],
            visits[sub]
        );
    }
    assert_eq!(bytes[3], visits[3] * 9000);
}

#[derive(Debug, Clone)]
enum Op {
    Enqueue { sub: u32, class: u8, len: u32 },
    Dequeue { dt: u64, budget: usize },
    Remove { sub: u32 },
    SetRate { sub: u32, rate: u64, burst: u32 },
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        6 => (0u32..5, 0u8..6, 1u32..3000).prop_map(|(sub, class, len)| Op::Enqueue { sub, class, len }),
        3 => (0u64..3_000_000, 0usize..20).prop_map(|(dt, budget)| Op::Dequeue { dt, budget }),
        1 => (0u32..5).prop_map(|sub| Op::Remove { sub }),
        1 => (0u32..5, prop_oneof![Just(0u64), 100_000u64..100_000_000], 0u32..5000)
            .prop_map(|(sub, rate, burst)| Op::SetRate { sub, rate, burst }),
    ]
}

proptest::proptest! {
    #[test]
    fn no_handle_lost_or_duplicated(ops in proptest::collection::vec(op(), 1..400)) {
        let mut s: Scheduler<u64> = Scheduler::new(SchedulerConfig {
            max_subscribers: 4,
            max_packets: 40,
            class_queue_limit: [3, 8, 8, 8],
            drr_quantum: [0, 700, 300, 100],
            port_rate_bps: Some(200_000_000),
        });
        let mut now = 0u64;
        let mut next = 0u64;
        let mut outstanding = BTreeSet::new();
        let mut seen = BTreeSet::new();
        let come_back = |h: u64, seen: &mut BTreeSet<u64>, out: &mut BTreeSet<u64>| {
            assert!(out.remove(&h), "handle {h} came back but was not outstanding");
            assert!(seen.insert(h), "handle {h} came back twice");
        };
        for op in ops {
            match op {
                Op::Enqueue { sub, class, len } => {
                    next += 1;
                    outstanding.insert(next);
                    if let Err((h, _)) = s.enqueue(now, sub, ClassId(class), len, next) {
                        come_back(h, &mut seen, &mut outstanding);
                    }
                }
                Op::Dequeue { dt, budget } => {
                    now += dt;
                    let mut got = Vec::new();
                    let n = s.dequeue(now, budget, &mut |_, h, _| got.push(h));
                    proptest::prop_assert!(n <= budget);
                    proptest::prop_assert_eq!(n, got.len());
                    for h in got {
                        come_back(h, &mut seen, &mut outstanding);
                    }
                }
                Op::Remove { sub } => {
                    let mut got = Vec::new();
                    s.remove_subscriber(sub, &mut |h| got.push(h));
                    for h in got {
                        come_back(h, &mut seen, &mut outstanding);
                    }
                }
                Op::SetRate { sub, rate, burst } => s.set_subscriber(sub, rate, burst, now),
            }
            proptest::prop_assert_eq!(s.backlog_packets() as usize, outstanding.len());
            let depth: u32 = (0..4)
                .filter_map(|sub| s.counters(sub))
                .flat_map(|c| c.iter().map(|k| k.depth_packets))
                .sum();
            proptest::prop_assert_eq!(depth as usize, outstanding.len());
        }
        // Drain whatever is left: every subscriber has a positive rate or is unshaped, so
        // everything leaves eventually; then nothing is outstanding.
        let mut guard = 0;
        while let Some(t) = s.next_wakeup_ns() {
            now = now.max(t);
            let mut got = Vec::new();
            s.dequeue(now, 64, &mut |_, h, _| got.push(h));
            for h in got {
                come_back(h, &mut seen, &mut outstanding);
            }
            guard += 1;
            proptest::prop_assert!(guard < 1_000_000);
        }
        proptest::prop_assert!(outstanding.is_empty());
        proptest::prop_assert_eq!(s.backlog_packets(), 0);
    }
}

/// A small deterministic generator for the tests' traffic (64-bit LCG, high bits).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// Asserts that `log` (one subscriber's output, in time order) conforms to a token bucket
/// of `rate` and `burst` that starts full: in exact integer units, so every window of it
/// holds at most `burst + rate * window`.
fn assert_conforms(log: &[Sent], rate: u64, burst: u32) {
    let unit = 8 * u128::from(S);
    let cap = u128::from(burst) * unit;
    let (mut tokens, mut last) = (cap, 0u64);
    for (i, e) in log.iter().enumerate() {
        tokens = (tokens + u128::from(e.t - last) * u128::from(rate)).min(cap);
        last = e.t;
        let need = u128::from(e.len) * unit;
        assert!(
            tokens >= need,
            "packet {i} ({} bytes at {} ns) exceeds the bucket",
            e.len,
            e.t
        );
        tokens -= need;
    }
}

#[test]
fn bypass_takes_tokens_exactly_like_a_send() {
    // Two schedulers see the same traffic at the same times: one through the fast path
    // (queueing only what it refuses), the other always through enqueue + dequeue. Every
    // packet must leave at the same time in the same order, with the same counters.
    for port in [None, Some(30_000_000)] {
        let c = SchedulerConfig {
            port_rate_bps: port,
            ..cfg(3)
        };
        let (mut a, mut b) = (Sim::new(c.clone()), Sim::new(c));
        for sim in [&mut a, &mut b] {
            sim.s.set_subscriber(0, 10_000_000, 20_000, 0);
            sim.s
                .set_subscriber(1, 4_000_000, default_burst_bytes(4_000_000), 0);
            sim.s.set_subscriber(2, 0, 0, 0);
        }
        let mut rng = Lcg(7);
        let mut lens = mixed();
        let (mut now, mut queued) = (0u64, 0u64);
        for i in 0..20_000u32 {
            // Stretches of close arrivals (over the rates) between sparse ones (under).
            let r = rng.next();
            now += if i % 500 < 100 {
                r % 20_000
            } else {
                r % 2_000_000
            };
            let (sub, class) = ((r >> 8) as u32 % 3, (r >> 12) as usize % CLASSES);
            let len = lens.next().unwrap();
            a.now = now;
            b.now = now;
            let ra = a.offer(sub, class, len);
            let rb = b.enqueue(sub, class, len);
            assert_eq!(ra.err(), rb.err(), "event {i}");
            queued += u64::from(ra == Ok(false));
            a.poll(100_000);
            b.poll(100_000);
            assert_eq!(a.log.len(), b.log.len(), "event {i}");
        }
        assert!(a.log == b.log, "port {port:?}: different departures");
        for sub in 0..3 {
            assert_eq!(a.s.counters(sub), b.s.counters(sub), "subscriber {sub}");
        }
        assert!(
            a.bypassed > 1000 && queued > 1000,
            "port {port:?}: {} bypassed, {queued} queued",
            a.bypassed
        );
    }
}

#[test]
fn bypass_never_applies_with_a_backlog() {
    let mut sim = Sim::new(cfg(2));
    // 8 Mbit/s: one byte per microsecond; 3000-byte burst.
    sim.s.set_subscriber(0, 8_000_000, 3000, 0);
    assert!(!sim.s.try_bypass(0, 1, ClassId(3), 100), "unset subscriber");
    assert!(!sim.s.try_bypass(0, 9, ClassId(3), 100), "out of range");
    assert_eq!(sim.offer(0, 3, 1500), Ok(true));
    assert_eq!(sim.offer(0, 3, 1500), Ok(true));
    let k = sim.s.counters(0).unwrap()[3];
    assert_eq!((k.conformed_packets, k.conformed_bytes), (2, 3000));
    // The bucket is empty: the next packet waits (parked).
    assert_eq!(sim.offer(0, 3, 1500), Ok(false));
    // A second later the bucket is full again, but a packet waits: later ones queue behind
    // it, whatever their class.
    sim.now = S;
    for _ in 0..3 {
        assert_eq!(sim.offer(0, 3, 40), Ok(false));
    }
    assert_eq!(sim.offer(0, 1, 40), Ok(false));
    assert_eq!(sim.poll(100), 5);
    // FIFO within the class, the waiting packet first (the class 1 packet takes its DRR
    // turn among them).
    let order: Vec<u64> = sim
        .log
        .iter()
        .filter(|e| e.class == 3)
        .map(|e| e.h >> 2)
        .collect();
    assert_eq!(order, [1, 2, 3, 4, 5, 6]);
    // Drained: the fast path applies again.
    assert_eq!(sim.offer(0, 3, 40), Ok(true));
    assert_eq!(sim.s.backlog_packets(), 0);

    // An unshaped subscriber in the round robin: no bypass until it is served.
    sim.s.set_subscriber(1, 0, 0, 0);
    sim.enqueue(1, 2, 100).unwrap();
    assert!(!sim.s.try_bypass(sim.now, 1, ClassId(2), 100));
    assert_eq!(sim.poll(10), 1);
    assert!(sim.s.try_bypass(sim.now, 1, ClassId(2), 100));
    let k = sim.s.counters(0).unwrap()[3];
    assert_eq!((k.conformed_packets, k.exceeded_packets), (7, 1));
}

#[test]
fn bypass_respects_the_port_shaper() {
    let port = 8_000_000;
    let burst = default_burst_bytes(port);
    let mut sim = Sim::new(SchedulerConfig {
        port_rate_bps: Some(port),
        ..cfg(2)
    });
    sim.s.set_subscriber(0, 0, 0, 0);
    sim.s.set_subscriber(1, 0, 0, 0);
    // The port's burst goes through at once, then the port holds packets back.
    let mut sent = 0;
    while sim.offer(0, 3, 1000).unwrap() {
        sent += 1000;
    }
    assert!(sent <= burst && sent + 1000 > burst, "{sent}");
    // Subscriber 1 has no backlog of its own, but subscriber 0 waits for the port.
    sim.now += 10 * MS;
    assert_eq!(sim.offer(1, 3, 40), Ok(false));
    while sim.step(64, S) {}
    assert_eq!(sim.s.backlog_packets(), 0);
    sim.now += 10 * MS;
    assert_eq!(sim.offer(1, 3, 40), Ok(true));
    assert_conforms(&sim.log, port, burst);
}

#[test]
fn shaped_rate_within_one_percent_with_the_fast_path() {
    // Offered load alternating below the rate (half of it: the fast path sends, after
    // whatever waited has gone) and above it (queue topped up, offered the same way), for
    // two rounds: the rate over each backlogged second stays within 1% and the whole output
    // conforms to the bucket (burst bound included).
    for rate in [1_000_000u64, 10_000_000, 100_000_000, 1_000_000_000] {
        let burst = default_burst_bytes(rate);
        let mut sim = Sim::new(cfg(1));
        sim.s.set_subscriber(0, rate, burst, 0);
        let gap = 2 * 1500 * 8 * S / rate;
        let mut offered_under = 0u64;
        for round in 0..2 {
            // Below the rate for half a second.
            let (bypassed, start) = (sim.bypassed, sim.now);
            let end = start + S / 2;
            let mut queued = 0;
            while sim.now < end {
                queued += u64::from(!sim.offer(0, 3, 1500).unwrap());
                offered_under += 1;
                sim.poll(32);
                let next = sim.now + gap;
                while sim.step(32, next) {}
                sim.now = next;
            }
            let bypassed = sim.bypassed - bypassed;
            assert!(bypassed > 0, "rate {rate} round {round}: nothing bypassed");
            if round > 0 {
                assert!(
                    queued > 0,
                    "rate {rate}: the backlog of round 0 did not wait"
                );
            }
            // Above the rate: 200 ms of warm-up, then one second measured.
            let warm_end = sim.now + 200 * MS;
            let end = warm_end + S;
            loop {
                while sim.s.counters(0).unwrap()[3].depth_packets < 8 {
                    sim.offer(0, 3, 1500).unwrap();
                }
                if !sim.step(32, end) {
                    break;
                }
            }
            let what = std::format!("rate {rate} round {round}");
            let steady = sim.bytes(Some(0), warm_end, end);
            assert_within(rate_of(steady, S), rate as f64, 0.01, &what);
            let log: Vec<_> = sim
                .log
                .iter()
                .filter(|e| e.t >= warm_end && e.t < end)
                .collect();
            let span = log.last().unwrap().t - log[0].t;
            let after_first: u64 = log[1..].iter().map(|e| u64::from(e.len)).sum();
            assert_within(rate_of(after_first, span), rate as f64, 0.01, &what);
            sim.now = end;
        }
        assert!(offered_under > 0);
        assert_conforms(&sim.log, rate, burst);
    }
}

#[test]
fn bursts_never_exceed_burst_size_with_the_fast_path() {
    let rate = 10_000_000;
    let burst = 20_000;
    let mut sim = Sim::new(cfg(1));
    sim.s.set_subscriber(0, rate, burst, 0);
    // Idle periods of various lengths, each followed by a flood in one instant, offered
    // through the fast path first.
    let mut lens = mixed();
    for idle in [S, 3 * MS, 40 * MS, 17 * MS, 2 * S] {
        sim.now += idle;
        let (start, bypassed) = (sim.log.len(), sim.bypassed);
        for _ in 0..200 {
            sim.offer(0, 3, lens.next().unwrap()).unwrap();
        }
        assert!(sim.bypassed > bypassed, "idle {idle}: nothing bypassed");
        sim.poll(10_000);
        let instant: u64 = sim.log[start..].iter().map(|e| u64::from(e.len)).sum();
        assert!(
            instant <= u64::from(burst),
            "{instant} bytes released at once"
        );
        let end = sim.now + 200 * MS;
        while sim.step(10_000, end) {}
    }
    assert_conforms(&sim.log, rate, burst);
}

#[test]
fn debug_impl_does_not_need_debug_handles() {
    #[derive(Clone, Copy)]
    struct Opaque;
    let s: Scheduler<Opaque> = Scheduler::new(cfg(1));
    let text = std::format!("{s:?}");
    assert!(text.contains("Scheduler"));
}
