//! [`Scheduler`]: queues, shaping, priority, DRR and the active ring.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use super::wheel::{Links, NIL, SLOTS, TICK_SHIFT, Wheel};
use super::{ClassCounters, EnqueueError, SchedulerConfig, SubscriberId};
use crate::bucket::{TokenBucket, UNITS_PER_BYTE};
use crate::class::{CLASSES, ClassId};

/// List 0 of [`Links`] is the active ring; lists `1..=SLOTS` are the wheel slots.
const RING: u32 = 0;

/// Bytes a subscriber may send per visit of the round robin (deficit round robin among
/// subscribers: unused quantum carries over to the next visit while the subscriber stays in
/// the ring). A visit always sends at least one packet, whatever its size.
pub(crate) const VISIT_QUANTUM_BYTES: u32 = 2 * 1514;

#[inline]
fn slot_list(slot: usize) -> u32 {
    1 + slot as u32
}

/// One queued packet in the shared pool.
#[derive(Debug, Clone, Copy)]
struct Node<P> {
    /// Next node in the class queue, or in the free list.
    next: u32,
    len: u32,
    pkt: Option<P>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No backlog: in no list.
    Idle,
    /// Backlog and (probably) tokens: in the active ring.
    Active,
    /// Backlog, waiting for tokens: in this wheel slot.
    Parked(u32),
}

/// Laid out so that everything [`Scheduler::try_bypass`] reads and writes (the flags, the
/// state, the bucket, `drr_cur`) sits in the first 64-byte cache line.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
struct Sub {
    bucket: TokenBucket,
    state: State,
    present: bool,
    /// Rate 0: no subscriber shaping (the port shaper still applies).
    unshaped: bool,
    /// The DRR class being served (1..CLASSES), 0 before the first round.
    drr_cur: u8,
    head: [u32; CLASSES],
    tail: [u32; CLASSES],
    deficit: [u64; CLASSES],
    /// Bit `c` set: class `c` has backlog (`head[c] != NIL`).
    classes: u8,
    /// Bytes left of this subscriber's round-robin quantum (see [`VISIT_QUANTUM_BYTES`]).
    visit_deficit: u32,
    backlog_packets: u32,
    backlog_bytes: u64,
}

// The hot fields of `Sub` share its first cache line.
const _: () = assert!(core::mem::offset_of!(Sub, drr_cur) < 64);

impl Sub {
    fn absent() -> Self {
        Sub {
            present: false,
            unshaped: true,
            state: State::Idle,
            bucket: TokenBucket::new(0, 0, 0),
            head: [NIL; CLASSES],
            tail: [NIL; CLASSES],
            deficit: [0; CLASSES],
            classes: 0,
            drr_cur: 0,
            visit_deficit: 0,
            backlog_packets: 0,
            backlog_bytes: 0,
        }
    }
}

/// The port -> subscriber -> class scheduler (see the [module docs](super)).
///
/// Packets are opaque handles `P` (the user plane uses an index into its frame pool). Every
/// handle given to [`Scheduler::enqueue`] comes back exactly once: in the `Err` of `enqueue`,
/// through the `out` callback of [`Scheduler::dequeue`] or the `drop` callback of
/// [`Scheduler::remove_subscriber`].
pub struct Scheduler<P: Copy> {
    nodes: Vec<Node<P>>,
    free: u32,
    used: u32,
    /// Scheduling state per subscriber (kept apart from the counters: smaller, so more of
    /// it stays in cache).
    subs: Vec<Sub>,
    /// Counters per subscriber and class (zeroed when a subscriber is added).
    counters: Vec<[ClassCounters; CLASSES]>,
    links: Links,
    wheel: Wheel,
    port: Option<TokenBucket>,
    /// When the port shaper blocked the last `dequeue`: the time it will allow the packet.
    port_ready_ns: u64,
    /// The subscriber whose round-robin visit is under way (at the front of the ring, cut
    /// short by the budget or the port shaper), or `NIL`.
    visit: u32,
    last_now: u64,
    queue_limit: [u32; CLASSES],
    quantum: [u64; CLASSES],
}

impl<P: Copy> fmt::Debug for Scheduler<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("max_subscribers", &self.subs.len())
            .field("max_packets", &self.nodes.len())
            .field("backlog_packets", &self.used)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl<P: Copy> Scheduler<P> {
    /// Allocates all memory for `cfg`: nothing is allocated afterwards.
    ///
    /// # Panics
    /// If `max_subscribers` or `max_packets` do not fit the 32-bit indices (above about 4e9).
    pub fn new(cfg: SchedulerConfig) -> Self {
        assert!(cfg.max_packets < NIL, "max_packets must be below u32::MAX");
        let lists = 1 + SLOTS as u32;
        assert!(
            cfg.max_subscribers
                .checked_add(lists)
                .is_some_and(|n| n < NIL),
            "max_subscribers too large for 32-bit indices"
        );
        let nodes = (0..cfg.max_packets)
            .map(|i| Node {
                next: if i + 1 < cfg.max_packets { i + 1 } else { NIL },
                len: 0,
                pkt: None,
            })
            .collect();
        let subs = (0..cfg.max_subscribers).map(|_| Sub::absent()).collect();
        let counters = vec![[ClassCounters::default(); CLASSES]; cfg.max_subscribers as usize];
        let port = cfg
            .port_rate_bps
            .map(|r| TokenBucket::new(r, crate::default_burst_bytes(r), 0));
        Scheduler {
            nodes,
            free: if cfg.max_packets > 0 { 0 } else { NIL },
            used: 0,
            subs,
            counters,
            links: Links::new(cfg.max_subscribers, lists),
            wheel: Wheel::new(),
            port,
            port_ready_ns: 0,
            visit: NIL,
            last_now: 0,
            queue_limit: cfg.class_queue_limit,
            quantum: cfg.drr_quantum.map(|q| u64::from(q.max(1))),
        }
    }

    /// Adds subscriber `sub` or changes its shaper live. A new subscriber starts with a full
    /// bucket and zero counters; an existing one keeps its queued packets, its counters and
    /// the tokens earned so far (capped at the new burst), and the new rate applies from
    /// `now_ns`. `rate_bps == 0` means unshaped (only the port shaper applies). Ids
    /// `>= max_subscribers` are ignored (they stay absent).
    pub fn set_subscriber(
        &mut self,
        sub: SubscriberId,
        rate_bps: u64,
        burst_bytes: u32,
        now_ns: u64,
    ) {
        let Some(s) = self.subs.get_mut(sub as usize) else {
            return;
        };
        if !s.present {
            *s = Sub::absent();
            s.present = true;
            self.counters[sub as usize] = [ClassCounters::default(); CLASSES];
            s.bucket = TokenBucket::new(rate_bps, burst_bytes, now_ns);
        } else if s.unshaped && rate_bps != 0 {
            s.bucket = TokenBucket::new(rate_bps, burst_bytes, now_ns);
        } else {
            s.bucket.set_rate(rate_bps, burst_bytes, now_ns);
        }
        s.unshaped = rate_bps == 0;
        if let State::Parked(slot) = s.state {
            // Its wake-up time was computed at the old rate: let dequeue recompute it.
            s.state = State::Active;
            unlink_parked(&mut self.links, &mut self.wheel, sub, slot as usize);
            self.links.push_back(RING, sub);
        }
    }

    /// Removes subscriber `sub`, handing every queued packet to `drop` (in class order, FIFO
    /// within a class). Unknown ids are ignored.
    pub fn remove_subscriber(&mut self, sub: SubscriberId, drop: &mut dyn FnMut(P)) {
        let Some(s) = self.subs.get_mut(sub as usize) else {
            return;
        };
        if !s.present {
            return;
        }
        if self.visit == sub {
            self.visit = NIL;
        }
        match s.state {
            State::Idle => {}
            State::Active => self.links.unlink(sub),
            State::Parked(slot) => {
                unlink_parked(&mut self.links, &mut self.wheel, sub, slot as usize)
            }
        }
        for c in 0..CLASSES {
            let mut n = s.head[c];
            while n != NIL {
                let node = &mut self.nodes[n as usize];
                let next = node.next;
                if let Some(p) = node.pkt.take() {
                    drop(p);
                }
                node.next = self.free;
                self.free = n;
                self.used -= 1;
                n = next;
            }
        }
        *s = Sub::absent();
    }

    /// Whether `sub` is set.
    pub fn has_subscriber(&self, sub: SubscriberId) -> bool {
        self.subs.get(sub as usize).is_some_and(|s| s.present)
    }

    /// Queues `pkt` of `len` bytes in class `class` of subscriber `sub`. On refusal the packet
    /// is handed back with the reason (and counted dropped when the subscriber exists).
    pub fn enqueue(
        &mut self,
        now_ns: u64,
        sub: SubscriberId,
        class: ClassId,
        len: u32,
        pkt: P,
    ) -> Result<(), (P, EnqueueError)> {
        let Some(s) = self.subs.get_mut(sub as usize).filter(|s| s.present) else {
            return Err((pkt, EnqueueError::NoSubscriber));
        };
        let c = class.index();
        let ks = &mut self.counters[sub as usize];
        let err = if ks[c].depth_packets >= self.queue_limit[c] {
            Some(EnqueueError::QueueFull)
        } else if self.free == NIL {
            Some(EnqueueError::PoolExhausted)
        } else {
            None
        };
        if let Some(e) = err {
            let k = &mut ks[c];
            k.dropped_packets += 1;
            k.dropped_bytes += u64::from(len);
            return Err((pkt, e));
        }
        // Idle and short of tokens for this (its only) packet: park it at once.
        let mut park_in = None;
        if !s.unshaped {
            let need = i128::from(s.backlog_bytes + u64::from(len)) * UNITS_PER_BYTE;
            let have = s.bucket.tokens_at(now_ns);
            if have < need {
                ks[c].exceeded_packets += 1;
                if s.state == State::Idle && have < s.bucket.shaper_need(len) {
                    park_in = Some(s.bucket.shaper_wait(now_ns, len));
                }
            }
        }
        let n = self.free;
        let node = &mut self.nodes[n as usize];
        self.free = node.next;
        *node = Node {
            next: NIL,
            len,
            pkt: Some(pkt),
        };
        self.used += 1;
        let was_empty = s.head[c] == NIL;
        if was_empty {
            s.head[c] = n;
            s.classes |= 1 << c;
        } else {
            self.nodes[s.tail[c] as usize].next = n;
        }
        s.tail[c] = n;
        let k = &mut ks[c];
        k.depth_packets += 1;
        k.depth_bytes = k.depth_bytes.saturating_add(len);
        s.backlog_packets += 1;
        s.backlog_bytes += u64::from(len);
        match s.state {
            State::Idle => match park_in {
                None => {
                    s.state = State::Active;
                    self.links.push_back(RING, sub);
                }
                Some(wait) => {
                    let slot = self.wheel.slot_for(now_ns.saturating_add(wait));
                    s.state = State::Parked(slot as u32);
                    self.links.push_back(slot_list(slot), sub);
                    self.wheel.set(slot);
                }
            },
            State::Parked(slot) if c == 0 && was_empty => {
                // The new packet jumps ahead of the one the wake-up was computed for.
                s.state = State::Active;
                unlink_parked(&mut self.links, &mut self.wheel, sub, slot as usize);
                self.links.push_back(RING, sub);
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether `sub` is set and has nothing queued, so that [`Scheduler::try_bypass`] may
    /// apply (if its tokens allow). A false answer stays false until the next `dequeue`
    /// (only `dequeue` and `remove_subscriber` empty a subscriber's queues), so a caller
    /// may read this ahead for a whole burst, which also brings the subscriber's state
    /// into the cache before `try_bypass` needs it.
    #[inline]
    pub fn is_idle(&self, sub: SubscriberId) -> bool {
        self.subs
            .get(sub as usize)
            .is_some_and(|s| s.present && s.state == State::Idle)
    }

    /// The conformant fast path: sends a packet of `len` bytes in class `class` of `sub` at
    /// once, without queueing it, if nothing would make it wait. Returns true if the caller
    /// is to send the packet now; false if it is to [`Scheduler::enqueue`] it as usual.
    ///
    /// It applies when `sub` is set, has no packet queued in any class (so it is neither in
    /// the round robin nor parked), its token bucket allows `len` at `now_ns` (unshaped
    /// subscribers always pass), and, with a port shaper, no subscriber is waiting in the
    /// round robin and the port's bucket allows `len` too. It then takes the tokens exactly as
    /// `dequeue` would for this packet and counts it conformed in its class. Priority and
    /// DRR are unaffected (nothing of the subscriber is queued), and order within the
    /// subscriber is kept (it never applies while the subscriber has a backlog). O(1), and
    /// it reads and writes one cache line of subscriber state plus one class counter.
    #[inline]
    pub fn try_bypass(&mut self, now_ns: u64, sub: SubscriberId, class: ClassId, len: u32) -> bool {
        let Some(s) = self.subs.get_mut(sub as usize) else {
            return false;
        };
        if !s.present || s.state != State::Idle {
            return false;
        }
        debug_assert_eq!(s.backlog_packets, 0);
        if let Some(port) = &mut self.port {
            // Subscribers in the ring (maybe held back by the port) go first.
            if !self.links.is_empty(RING) {
                return false;
            }
            port.refill(now_ns);
            if !port.shaper_ready(len) {
                return false;
            }
        }
        if !s.unshaped && !s.bucket.shaper_send(now_ns, len) {
            return false;
        }
        if let Some(port) = &mut self.port {
            port.take(len);
        }
        let c = class.index();
        if c != 0 {
            // As `pick_class` does for a class served alone: the next contended DRR round
            // starts where it would have had the packet gone through the queue.
            s.drr_cur = c as u8;
        }
        let k = &mut self.counters[sub as usize][c];
        k.conformed_packets += 1;
        k.conformed_bytes += u64::from(len);
        true
    }

    /// Sends at most `budget` packets that their subscriber's (and the port's) token bucket
    /// allows: strict priority for class 0 then DRR among 1..3 within a subscriber, deficit
    /// round robin among subscribers (up to [`VISIT_QUANTUM_BYTES`] per visit, at least one
    /// packet). Returns the number sent.
    ///
    /// A visit sends every packet the subscriber's tokens and quantum allow; when the next
    /// packet lacks tokens the subscriber is parked in the wheel at once, at the time its
    /// bucket will hold them, so it is not visited again before it can send.
    pub fn dequeue(
        &mut self,
        now_ns: u64,
        budget: usize,
        out: &mut dyn FnMut(SubscriberId, P, u32),
    ) -> usize {
        self.last_now = now_ns;
        self.advance_wheel(now_ns);
        if let Some(port) = &mut self.port {
            port.refill(now_ns);
        }
        let mut sent = 0;
        'visits: while sent < budget {
            let Some(id) = self.links.front(RING) else {
                break;
            };
            let s = &mut self.subs[id as usize];
            let mut fresh = false;
            if self.visit != id {
                self.visit = id;
                s.visit_deficit = s.visit_deficit.saturating_add(VISIT_QUANTUM_BYTES);
                fresh = true;
            }
            if !s.unshaped {
                s.bucket.refill(now_ns);
            }
            loop {
                let c = pick_class(s, &self.nodes, &self.quantum);
                let head = s.head[c];
                let len = self.nodes[head as usize].len;
                if len > s.visit_deficit {
                    if !fresh {
                        // Quantum spent: on to the next subscriber, the rest carries over.
                        self.visit = NIL;
                        self.links.unlink(id);
                        self.links.push_back(RING, id);
                        continue 'visits;
                    }
                    // A visit sends at least one packet.
                    s.visit_deficit = len;
                }
                if !s.unshaped && !s.bucket.shaper_ready(len) {
                    let at = now_ns.saturating_add(s.bucket.shaper_wait(now_ns, len));
                    let slot = self.wheel.slot_for(at);
                    s.state = State::Parked(slot as u32);
                    s.visit_deficit = 0;
                    self.visit = NIL;
                    self.links.unlink(id);
                    self.links.push_back(slot_list(slot), id);
                    self.wheel.set(slot);
                    continue 'visits;
                }
                if let Some(port) = &mut self.port {
                    if !port.shaper_ready(len) {
                        // The visit resumes when the port allows.
                        self.port_ready_ns = now_ns.saturating_add(port.shaper_wait(now_ns, len));
                        break 'visits;
                    }
                    port.take(len);
                }
                self.port_ready_ns = 0;
                if !s.unshaped {
                    s.bucket.take(len);
                }
                let node = &mut self.nodes[head as usize];
                let pkt = node.pkt.take();
                s.head[c] = node.next;
                node.next = self.free;
                self.free = head;
                self.used -= 1;
                if s.head[c] == NIL {
                    s.tail[c] = NIL;
                    s.deficit[c] = 0;
                    s.classes &= !(1 << c);
                } else if c != 0 {
                    // Saturating: a class served alone sends without deficit accounting.
                    s.deficit[c] = s.deficit[c].saturating_sub(u64::from(len));
                }
                let k = &mut self.counters[id as usize][c];
                k.conformed_packets += 1;
                k.conformed_bytes += u64::from(len);
                k.depth_packets -= 1;
                k.depth_bytes = k.depth_bytes.saturating_sub(len);
                s.backlog_packets -= 1;
                s.backlog_bytes -= u64::from(len);
                s.visit_deficit -= len;
                fresh = false;
                if let Some(p) = pkt {
                    out(id, p, len);
                }
                sent += 1;
                if s.backlog_packets == 0 {
                    s.state = State::Idle;
                    s.visit_deficit = 0;
                    self.visit = NIL;
                    self.links.unlink(id);
                    continue 'visits;
                }
                if sent == budget {
                    // The visit resumes at the next call.
                    break 'visits;
                }
            }
        }
        sent
    }

    /// The earliest time at which `dequeue` may have work: the last `now_ns` if some subscriber
    /// is eligible now, the port shaper's time if it is what blocks, else the earliest wheel
    /// slot (rounded up to the 1.024 us wheel tick; a subscriber waiting longer than the
    /// 16.8 ms horizon is woken at the horizon and parked again). `None` with no backlog.
    pub fn next_wakeup_ns(&self) -> Option<u64> {
        let ring = (!self.links.is_empty(RING)).then(|| self.last_now.max(self.port_ready_ns));
        let wheel = self.wheel.next_due().map(|(_, tick)| tick << TICK_SHIFT);
        match (ring, wheel) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Packets queued over all subscribers.
    pub fn backlog_packets(&self) -> u32 {
        self.used
    }

    /// The per-class counters of `sub`, `None` if it is not set.
    pub fn counters(&self, sub: SubscriberId) -> Option<&[ClassCounters; CLASSES]> {
        self.subs
            .get(sub as usize)
            .filter(|s| s.present)
            .map(|_| &self.counters[sub as usize])
    }

    /// The shaper rate of `sub` in bit/s (0 = unshaped), `None` if it is not set.
    pub fn subscriber_rate_bps(&self, sub: SubscriberId) -> Option<u64> {
        self.subs
            .get(sub as usize)
            .filter(|s| s.present)
            .map(|s| if s.unshaped { 0 } else { s.bucket.rate_bps() })
    }

    /// Moves every subscriber whose wheel slot is due at `now_ns` to the active ring.
    fn advance_wheel(&mut self, now_ns: u64) {
        let now_tick = now_ns >> TICK_SHIFT;
        if now_tick <= self.wheel.tick {
            return;
        }
        while let Some((slot, tick)) = self.wheel.next_due() {
            if tick > now_tick {
                break;
            }
            let list = slot_list(slot);
            while let Some(id) = self.links.front(list) {
                self.links.unlink(id);
                self.links.push_back(RING, id);
                self.subs[id as usize].state = State::Active;
            }
            self.wheel.clear(slot);
            self.wheel.tick = tick;
        }
        self.wheel.tick = now_tick;
    }
}

fn unlink_parked(links: &mut Links, wheel: &mut Wheel, id: u32, slot: usize) {
    links.unlink(id);
    if links.is_empty(slot_list(slot)) {
        wheel.clear(slot);
    }
}

/// The class whose head packet `s` sends next: class 0 if it has backlog, else deficit round
/// robin over the backlogged classes 1..CLASSES. `s` must have backlog.
///
/// DRR (Shreedhar and Varghese): a class may send while its deficit covers its head packet;
/// moving on to the next backlogged class grants that class one quantum; an emptied class
/// loses its deficit. When a whole round grants every class a quantum and none can send
/// (quanta smaller than packets), the rounds still needed are added at once, which gives the
/// same choice as running them one by one in O(1).
///
/// A class backlogged alone is served without deficit accounting: DRR would give it every
/// turn anyway, and it starts the next contended round with the deficit it had (less what it
/// sent, never below 0).
#[inline]
fn pick_class<P>(s: &mut Sub, nodes: &[Node<P>], quantum: &[u64; CLASSES]) -> usize {
    if s.classes & 1 != 0 {
        return 0;
    }
    let drr = s.classes & !1;
    if drr.is_power_of_two() {
        // One class backlogged (`s` has backlog, so `drr != 0`).
        let c = drr.trailing_zeros() as usize;
        s.drr_cur = c as u8;
        return c;
    }
    let need = |s: &Sub, c: usize| u64::from(nodes[s.head[c] as usize].len);
    let mut c = usize::from(s.drr_cur);
    if c != 0 && s.head[c] != NIL && s.deficit[c] >= need(s, c) {
        return c;
    }
    let active = drr.count_ones() as usize;
    let mut visits = 0;
    loop {
        c = c % (CLASSES - 1) + 1;
        if s.head[c] == NIL {
            continue;
        }
        s.deficit[c] += quantum[c];
        s.drr_cur = c as u8;
        if s.deficit[c] >= need(s, c) {
            return c;
        }
        visits += 1;
        if visits == active {
            let rounds = (1..CLASSES)
                .filter(|&k| s.head[k] != NIL)
                .map(|k| (need(s, k) - s.deficit[k]).div_ceil(quantum[k]))
                .min()
                .unwrap_or(1);
            for (k, q) in quantum.iter().enumerate().skip(1) {
                if s.head[k] != NIL {
                    s.deficit[k] += (rounds - 1) * q;
                }
            }
        }
    }
}
