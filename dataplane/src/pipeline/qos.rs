//! Per-subscriber QoS inside the pipeline: the downstream shaper (a [`Scheduler`] over a
//! preallocated frame pool) and the upstream policer (one srTCM per rated session).
//!
//! Downstream, a frame of a session with a downlink rate is first offered to the scheduler's
//! conformant fast path ([`Scheduler::try_bypass`]): if the subscriber has nothing queued
//! and its bucket holds the tokens, they are taken, the frame is counted conformed and it is
//! forwarded at once like an unshaped one. Otherwise it is not sent at once: the pipeline
//! rewrites it as usual, then moves it out of the caller's burst array into a free pool buffer
//! ([`PacketBuffer::move_into`]: a [`Frame`] is swapped in O(1) and the caller gets the
//! spare empty buffer back; a port's own buffer is copied and its owner frees it) and
//! enqueues the pool index in the scheduler under the subscriber and the class of its DSCP.
//! [`super::Pipeline::drain_shaped`] later sends what the token buckets allow and returns
//! the buffers to the free list. The pool and the scheduler have the same capacity
//! (`SchedulerConfig::max_packets`), so nothing is allocated per packet.
//!
//! Subscriber ids of the scheduler are a dense range `0..max_subscribers`, handed out to
//! sessions with a downlink rate and taken back on removal. Lifting a session's limit while
//! packets wait keeps their order: the subscriber turns unshaped in the scheduler (rate 0),
//! new packets queue behind the old ones until the queue is empty (one or two drain
//! budgets), then the session leaves the scheduler and its frames bypass it again.
//!
//! Upstream, a session with an uplink rate has an srTCM (RFC 2697) in colour-blind mode with
//! CBS = EBS = [`policer_burst_bytes`] (100 ms at the rate); green and yellow pass, red is
//! dropped and counted as [`DropReason::Policed`]. A policer cannot queue, so its burst must
//! cover a TCP sender's window: with the shaper's 5 ms burst a policed TCP flow collapses to
//! a few percent of its rate.

use alloc::vec::Vec;
use core::fmt;

use vbng_qos::class::{CLASSES, DscpMap};
use vbng_qos::default_burst_bytes;
use vbng_qos::policer::{Color, SrTcm};
use vbng_qos::scheduler::{ClassCounters, Scheduler, SchedulerConfig, SubscriberId};

use super::{Counters, DropReason};

/// Time at the rate that the uplink policer's committed and excess bursts each hold.
pub const POLICER_BURST_MS: u64 = 100;

/// CBS and EBS of the uplink policer at `rate_bps`: [`POLICER_BURST_MS`] of traffic at
/// the rate, and never less than the shaper's default burst.
pub fn policer_burst_bytes(rate_bps: u64) -> u32 {
    let bytes = rate_bps / 8 * POLICER_BURST_MS / 1000;
    u32::try_from(bytes)
        .unwrap_or(u32::MAX)
        .max(default_burst_bytes(rate_bps))
}
use crate::packet::{DATA_CAPACITY, Frame, PacketBuffer, PortId};
use crate::session::{SessionEntry, SessionId, SessionQos, SessionTable, Slot};

/// "No scheduler subscriber".
pub(super) const NO_SUB: SubscriberId = SubscriberId::MAX;
/// "No pool buffer".
const NO_BUFFER: u32 = u32::MAX;

/// QoS counters and settings of one session, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionQosStats {
    /// The session.
    pub id: SessionId,
    /// Its configured rates.
    pub qos: SessionQos,
    /// Downstream per-class counters while the session has a shaper (None when the session
    /// has no downlink rate, or no shaper was free for it).
    pub classes: Option<[ClassCounters; CLASSES]>,
    /// Upstream packets dropped by the policer (red).
    pub policed_packets: u64,
    /// Upstream packets the policer let through (green or yellow).
    pub policer_passed_packets: u64,
}

/// Outcome of offering a rewritten downstream frame to the shaper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shaped {
    /// The session is not shaped: forward now.
    Bypass,
    /// Shaped, but the subscriber has no backlog and its bucket held the tokens: the
    /// scheduler's conformant fast path took them and counted the frame conformed; forward
    /// now.
    Conformed,
    /// Queued: moved into the pool ([`PacketBuffer::move_into`]).
    Queued,
    /// The class queue or the pool is full: drop.
    Full,
}

/// QoS state of one session (indexed by its session-table slot).
#[derive(Debug, Clone)]
struct SlotQos {
    id: SessionId,
    qos: SessionQos,
    /// Scheduler subscriber, or [`NO_SUB`].
    sub: SubscriberId,
    /// True while the subscriber drains after its limit was lifted.
    draining: bool,
    policer: Option<SrTcm>,
    policed: u64,
    passed: u64,
}

/// The QoS state a pipeline owns when built with [`super::Pipeline::with_qos`].
pub(super) struct QosState {
    sched: Scheduler<u32>,
    /// Frame buffers: the free ones and the ones queued in `sched` (by index).
    pool: Vec<Frame>,
    /// Free pool indexes (capacity = pool size, never grows).
    free: Vec<u32>,
    dscp: DscpMap,
    /// Per session-table slot.
    slots: Vec<Option<SlotQos>>,
    /// Per session-table slot: its scheduler subscriber (`SlotQos::sub`), or [`NO_SUB`].
    /// A dense copy for the per-packet path (4 bytes a session instead of a `SlotQos`).
    shaper_of: Vec<SubscriberId>,
    /// Session slot of each scheduler subscriber.
    sub_slot: Vec<Slot>,
    /// Free scheduler subscriber ids.
    free_subs: Vec<SubscriberId>,
    /// Subscribers draining after their limit was lifted.
    draining: Vec<SubscriberId>,
}

impl fmt::Debug for QosState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QosState")
            .field("pool", &self.pool.len())
            .field("free", &self.free.len())
            .field("shaped", &(self.sub_slot.len() - self.free_subs.len()))
            .field("draining", &self.draining.len())
            .finish()
    }
}

impl QosState {
    /// Allocates everything: the scheduler, `cfg.max_packets` frames, the free lists.
    pub(super) fn new(cfg: SchedulerConfig) -> Self {
        let packets = cfg.max_packets;
        let subs = cfg.max_subscribers;
        QosState {
            sched: Scheduler::new(cfg),
            pool: (0..packets).map(|_| Frame::new()).collect(),
            free: (0..packets).rev().collect(),
            dscp: DscpMap::default(),
            slots: Vec::new(),
            shaper_of: Vec::new(),
            sub_slot: alloc::vec![Slot::MAX; subs as usize],
            free_subs: (0..subs).rev().collect(),
            draining: Vec::with_capacity(subs as usize),
        }
    }

    /// Free and total frame buffers of the pool.
    pub(super) fn pool(&self) -> (usize, usize) {
        (self.free.len(), self.pool.len())
    }

    /// Packets waiting in the shaper.
    pub(super) fn backlog(&self) -> u32 {
        self.sched.backlog_packets()
    }

    /// The earliest time a waiting subscriber may send again.
    pub(super) fn next_wakeup_ns(&self) -> Option<u64> {
        self.sched.next_wakeup_ns()
    }

    /// True if frames of sessions without a downlink rate may still have to queue (a
    /// session whose limit was lifted drains first).
    #[inline]
    pub(super) fn any_draining(&self) -> bool {
        !self.draining.is_empty()
    }

    /// Applies `entry.qos` to the session in `slot` (inserted or updated) at `now_ns`: live
    /// rate changes keep the queued packets and the policer's tokens.
    pub(super) fn configure(
        &mut self,
        now_ns: u64,
        slot: Slot,
        entry: &SessionEntry,
        counters: &mut Counters,
    ) {
        let i = slot as usize;
        if self.slots.len() <= i {
            if entry.qos == SessionQos::UNLIMITED {
                return;
            }
            self.slots.resize(i + 1, None);
            self.shaper_of.resize(i + 1, NO_SUB);
        }
        let QosState {
            sched,
            slots,
            shaper_of,
            sub_slot,
            free_subs,
            draining,
            ..
        } = self;
        let st = match &mut slots[i] {
            Some(st) => st,
            None if entry.qos == SessionQos::UNLIMITED => return,
            empty => empty.insert(SlotQos {
                id: entry.id,
                qos: SessionQos::UNLIMITED,
                sub: NO_SUB,
                draining: false,
                policer: None,
                policed: 0,
                passed: 0,
            }),
        };
        st.id = entry.id;
        st.qos = entry.qos;

        // Downlink shaper.
        match (entry.qos.dl_rate_bps, st.sub) {
            (Some(rate), NO_SUB) => match free_subs.pop() {
                Some(sub) => {
                    sched.set_subscriber(sub, rate, default_burst_bytes(rate), now_ns);
                    sub_slot[sub as usize] = slot;
                    st.sub = sub;
                    shaper_of[i] = sub;
                }
                None => counters.qos_unshaped += 1,
            },
            (Some(rate), sub) => {
                sched.set_subscriber(sub, rate, default_burst_bytes(rate), now_ns);
                if st.draining {
                    st.draining = false;
                    draining.retain(|&d| d != sub);
                }
            }
            (None, NO_SUB) => {}
            (None, sub) => {
                if depth(sched, sub) == 0 {
                    sched.remove_subscriber(sub, &mut |_| {});
                    sub_slot[sub as usize] = Slot::MAX;
                    free_subs.push(sub);
                    st.sub = NO_SUB;
                    shaper_of[i] = NO_SUB;
                } else if !st.draining {
                    // Rate 0: unshaped, the queue drains within the burst budget.
                    sched.set_subscriber(sub, 0, default_burst_bytes(0), now_ns);
                    st.draining = true;
                    draining.push(sub);
                }
            }
        }

        // Uplink policer.
        st.policer = match (entry.qos.ul_rate_bps, st.policer.take()) {
            (Some(rate), Some(mut p)) => {
                let b = policer_burst_bytes(rate);
                p.set_rate(rate, b, b, now_ns);
                Some(p)
            }
            (Some(rate), None) => {
                let b = policer_burst_bytes(rate);
                Some(SrTcm::new(rate, b, b, now_ns))
            }
            (None, _) => None,
        };
    }

    /// Forgets the session in `slot`; its queued frames go back to the pool (counted as
    /// `NoSession` drops: their session is gone).
    pub(super) fn remove(&mut self, slot: Slot, counters: &mut Counters) {
        let Some(st) = self.slots.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        if st.sub == NO_SUB {
            return;
        }
        self.shaper_of[slot as usize] = NO_SUB;
        let free = &mut self.free;
        self.sched.remove_subscriber(st.sub, &mut |idx| {
            free.push(idx);
            counters.count_drop(DropReason::NoSession);
        });
        self.sub_slot[st.sub as usize] = Slot::MAX;
        self.free_subs.push(st.sub);
        if st.draining {
            self.draining.retain(|&d| d != st.sub);
        }
    }

    /// Upstream: true if the session in `slot` may send `bytes` now (no policer, green or
    /// yellow); false (red) counts the drop against the session.
    #[inline]
    pub(super) fn police(&mut self, now_ns: u64, slot: Slot, bytes: u32) -> bool {
        let Some(st) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) else {
            return true;
        };
        let Some(p) = st.policer.as_mut() else {
            return true;
        };
        if p.color_blind(now_ns, bytes) == Color::Red {
            st.policed += 1;
            false
        } else {
            st.passed += 1;
            true
        }
    }

    /// Read ahead for a burst, before its frames are rewritten: the scheduler subscriber
    /// of the session in `slot` ([`NO_SUB`] if it is not shaped) and whether the fast path
    /// may apply to it ([`Scheduler::is_idle`]). Done for every frame of a burst first, the
    /// loads of the burst overlap instead of stalling one frame at a time.
    #[inline]
    pub(super) fn lookahead(&self, slot: Slot) -> (SubscriberId, bool) {
        match self.shaper_of.get(slot as usize) {
            Some(&sub) if sub != NO_SUB => (sub, self.sched.is_idle(sub)),
            _ => (NO_SUB, false),
        }
    }

    /// Downstream: offers the rewritten `frame` (IPv4 length `len`, DSCP `dscp`, to send on
    /// `port`) to the shaper if the session is shaped: `ahead` is what
    /// [`QosState::lookahead`] said for its slot earlier in the burst. A frame the shaper
    /// lets through at once (no backlog, tokens available) stays where it is
    /// ([`Shaped::Conformed`]); otherwise it is queued, moved into a free pool buffer.
    #[inline]
    pub(super) fn enqueue<B: PacketBuffer>(
        &mut self,
        now_ns: u64,
        ahead: (SubscriberId, bool),
        frame: &mut B,
        len: u32,
        dscp: u8,
        port: PortId,
    ) -> Shaped {
        let (sub, idle) = ahead;
        if sub == NO_SUB {
            return Shaped::Bypass;
        }
        let class = self.dscp.class_of(dscp);
        // Conformant fast path: nothing queued for the subscriber and the tokens are there,
        // so the frame leaves at once and never touches the pool.
        if idle && self.sched.try_bypass(now_ns, sub, class, len) {
            return Shaped::Conformed;
        }
        // A pool frame cannot hold it (only a port's own, larger buffer can): it cannot wait.
        if frame.len() > DATA_CAPACITY {
            return Shaped::Full;
        }
        // The pool and the scheduler's node pool have the same size, so with no buffer free
        // the scheduler is full too: offering it a dummy handle makes it count the drop in
        // the class's counters (PoolExhausted) like any other.
        let idx = self.free.pop().unwrap_or(NO_BUFFER);
        match self.sched.enqueue(now_ns, sub, class, len, idx) {
            Ok(()) => {
                // Always Some: a dummy handle cannot be accepted (see above). The move
                // cannot fail: the length was checked.
                if let Some(buf) = self.pool.get_mut(idx as usize) {
                    frame.move_into(buf);
                    buf.port = port;
                }
                Shaped::Queued
            }
            Err((idx, _)) => {
                if idx != NO_BUFFER {
                    self.free.push(idx);
                }
                Shaped::Full
            }
        }
    }

    /// Sends up to `budget` queued frames the token buckets allow at `now_ns` through
    /// `out(port, bytes) -> accepted`; counts tx, usage and forwarding like the direct path.
    /// Returns the number of frames dequeued.
    pub(super) fn drain(
        &mut self,
        now_ns: u64,
        budget: usize,
        sessions: &mut SessionTable,
        counters: &mut Counters,
        out: &mut dyn FnMut(PortId, &[u8]) -> bool,
    ) -> usize {
        let QosState {
            sched,
            pool,
            free,
            slots,
            shaper_of,
            sub_slot,
            free_subs,
            draining,
            ..
        } = self;
        let n = sched.dequeue(now_ns, budget, &mut |sub, idx, len| {
            if let Some(f) = pool.get_mut(idx as usize) {
                let port = f.port;
                if out(port, f.data()) {
                    counters.count_tx(port, f.len());
                } else {
                    counters.count_tx_error(port);
                }
                f.reset();
                counters.dl_forwarded += 1;
                if let Some(e) = sub_slot
                    .get(sub as usize)
                    .and_then(|&s| sessions.entry_mut(s))
                {
                    e.counters.dl_packets += 1;
                    e.counters.dl_bytes += u64::from(len);
                }
                free.push(idx);
            }
        });
        if !draining.is_empty() {
            draining.retain(|&sub| {
                if depth(sched, sub) > 0 {
                    return true;
                }
                sched.remove_subscriber(sub, &mut |_| {});
                let slot = core::mem::replace(&mut sub_slot[sub as usize], Slot::MAX);
                if let Some(Some(st)) = slots.get_mut(slot as usize) {
                    st.sub = NO_SUB;
                    st.draining = false;
                    shaper_of[slot as usize] = NO_SUB;
                }
                free_subs.push(sub);
                false
            });
        }
        n
    }

    /// QoS counters of every session that has (or had) a rate.
    pub(super) fn stats(&self) -> impl Iterator<Item = SessionQosStats> + '_ {
        self.slots.iter().flatten().map(|st| SessionQosStats {
            id: st.id,
            qos: st.qos,
            classes: if st.sub == NO_SUB {
                None
            } else {
                self.sched.counters(st.sub).copied()
            },
            policed_packets: st.policed,
            policer_passed_packets: st.passed,
        })
    }
}

/// Packets queued for `sub` across its classes.
fn depth(sched: &Scheduler<u32>, sub: SubscriberId) -> u32 {
    sched
        .counters(sub)
        .map_or(0, |c| c.iter().map(|k| k.depth_packets).sum())
}

#[cfg(test)]
mod tests;
