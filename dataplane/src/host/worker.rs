//! The poll-mode worker: one thread that owns the ports and the [`Pipeline`].
//!
//! Each loop iteration ([`Worker::run_once`]):
//! 1. applies queued [`SessionCommand`]s from the control thread (one empty check per loop),
//!    then answers queued counter reads ([`WorkerShared::queries`]) for the PFCP agent;
//! 2. receives a burst of up to [`BURST`] frames from each port into the port's own buffers
//!    ([`BufferPort::recv_buffers`]; on DPDK the received mbufs themselves), runs
//!    [`Pipeline::process_burst`] on them in place and dispatches the verdicts: `Forward` ->
//!    [`BufferPort::send_buffer`] (on DPDK the same mbuf goes to the transmit queue),
//!    `ToControlPlane` -> a copy into the preallocated queue toward the GTP-U sender (dropped
//!    and counted when full), `Drop` -> already counted by the pipeline; then releases what
//!    was not sent and flushes the ports, so that a burst leaves before the next port's
//!    receive;
//! 3. transmits frames the CP sent back (queue from the GTP-U receiver) on the access port
//!    their TEID named;
//! 4. sends what the pipeline generated itself (next-hop ARP requests);
//! 5. drains the downstream shaper: up to [`BURST`] frames whose subscriber's token bucket
//!    allows them now ([`Pipeline::drain_shaped`]; `Queued` verdicts in step 2 put them
//!    there);
//! 6. flushes every port again, for what steps 2b to 5 queued.
//!
//! Several workers: each owns one receive and one transmit queue of every port, its own
//! pipeline (session table, counters, shaper) and its own [`WorkerShared`]. A session lives
//! in the worker [`crate::rss::WorkerMap`] names for its IPv4 address; a worker that
//! receives a frame of a session it does not own (the NIC's hash differs, or the device
//! spreads nothing) copies it into the owner's [`WorkerShared::handoff_in`] queue in step 2
//! and the owner processes it in its next loop ([`Handoff`]), so a flow's frames, which
//! arrive on one queue, stay in order. [`WorkerGroup`] is the control thread's handle on all
//! of them.
//!
//! Clock: [`Worker::run`] reads `std::time::Instant` (CLOCK_MONOTONIC through the vDSO,
//! tens of ns) once per loop iteration and passes nanoseconds since the worker started to
//! everything in that iteration: the redirect limiter, the policers and the shaper.
//!
//! Counters are plain integers inside the pipeline; every `stats_interval` the worker copies
//! them into [`PublishedStats`] (relaxed atomic stores; the per-session QoS counters into a
//! reused vector behind a `try_lock`, skipped if the metrics thread holds it), which the
//! metrics thread reads. Nothing is locked, allocated or logged per packet. When idle for
//! `busy_poll` the worker sleeps in `ppoll(2)` on its port sockets and an eventfd
//! ([`IdleWaker`]) for at most `poll_timeout`, and never past the shaper's next release
//! ([`idle_timeout`]): a backlogged shaper whose subscribers wait for tokens neither keeps
//! the worker spinning nor waits a whole poll timeout.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::thread::Thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_queue::ArrayQueue;

use crate::acl::AclSet;
use crate::host::afpacket::AfPacketPort;
use crate::host::channel::FrameQueue;
use crate::host::metrics::{NAT_STATS, PortSample};
use crate::host::pfcp_agent::SessionBackend;
use crate::host::wake::IdleWaker;
use crate::nat::NatLogEvent;
use crate::packet::{Frame, MAX_PORTS, PacketBuffer, PortId};
use crate::pipeline::{
    BURST, Counters, DropReason, Pipeline, SessionCommand, SessionQosStats, Verdict,
};
use crate::port::{BufferPort, MemoryPort, PortError};
use crate::rss::{Ipv6OwnerChange, Ipv6Owners, Owner, WorkerMap, frame_owner};
use crate::session::{SessionEntry, SessionId, SessionIpv6, UsageCounters};

/// A port the worker can drive: a [`BufferPort`] that may be moved to the worker thread and
/// may offer a file descriptor to sleep on.
pub trait WorkerPort: BufferPort<Buffer: Send> + Send {
    /// A descriptor that becomes readable when frames arrive (None: the worker only wakes
    /// on its timeout for this port).
    fn poll_fd(&self) -> Option<RawFd> {
        None
    }

    /// Frames the port lost before the pipeline saw them (ring full, truncated), cumulative.
    /// Called once per counter publication, not per packet.
    fn rx_lost(&mut self) -> u64 {
        0
    }
}

impl WorkerPort for AfPacketPort {
    fn poll_fd(&self) -> Option<RawFd> {
        Some(self.as_raw_fd())
    }

    fn rx_lost(&mut self) -> u64 {
        self.refresh_kernel_stats();
        let s = self.stats();
        s.rx_kernel_drops + s.rx_truncated + s.rx_bad_slot
    }
}

impl WorkerPort for MemoryPort {}

crate::impl_buffer_port_with_frames!(AfPacketPort);

/// Counters the worker publishes for the metrics exporter (relaxed atomics, one writer).
#[derive(Debug)]
pub struct PublishedStats {
    ports: [[AtomicU64; 5]; MAX_PORTS],
    drops: [AtomicU64; DropReason::COUNT],
    redirected: AtomicU64,
    injected: AtomicU64,
    inject_failed: AtomicU64,
    arp_replies: AtomicU64,
    arp_requests: AtomicU64,
    /// Neighbour advertisements sent and solicitations sent on the core port.
    nd: [AtomicU64; 2],
    sessions: AtomicU64,
    sleeps: AtomicU64,
    /// ICMP errors the pipeline sent, and those its rate limit suppressed.
    icmp_errors: [AtomicU64; 2],
    /// NAT: as [`crate::host::metrics::Snapshot::nat`], for this worker.
    nat: [AtomicU64; NAT_STATS],
    /// Frames handed to other workers, taken from them, lost to a full queue.
    handoffs: [AtomicU64; 3],
    /// Shaper: [backlog packets, free pool frames, pool frames, unshaped sessions].
    qos_totals: [AtomicU64; 4],
    /// Per-session QoS counters (reused buffer; the worker only `try_lock`s it).
    qos_sessions: Mutex<Vec<SessionQosStats>>,
    /// The ACLs in force and their rule hit counters (the worker only `try_lock`s it).
    acl_hits: Mutex<(Arc<AclSet>, Vec<u64>)>,
}

impl Default for PublishedStats {
    fn default() -> Self {
        PublishedStats {
            ports: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            drops: std::array::from_fn(|_| AtomicU64::new(0)),
            redirected: AtomicU64::new(0),
            injected: AtomicU64::new(0),
            inject_failed: AtomicU64::new(0),
            arp_replies: AtomicU64::new(0),
            arp_requests: AtomicU64::new(0),
            nd: std::array::from_fn(|_| AtomicU64::new(0)),
            sessions: AtomicU64::new(0),
            sleeps: AtomicU64::new(0),
            icmp_errors: std::array::from_fn(|_| AtomicU64::new(0)),
            nat: std::array::from_fn(|_| AtomicU64::new(0)),
            handoffs: std::array::from_fn(|_| AtomicU64::new(0)),
            qos_totals: std::array::from_fn(|_| AtomicU64::new(0)),
            qos_sessions: Mutex::new(Vec::new()),
            acl_hits: Mutex::new((Arc::new(AclSet::empty()), Vec::new())),
        }
    }
}

/// Worker-side totals that are not in the pipeline's [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostCounters {
    /// Frames from the CP that could not be transmitted.
    pub inject_failed: u64,
    /// Times the worker slept in poll(2).
    pub sleeps: u64,
    /// Frames handed to the worker owning their session.
    pub handoff_out: u64,
    /// Frames other workers handed to this one.
    pub handoff_in: u64,
    /// Frames lost because the owner's handoff queue was full.
    pub handoff_dropped: u64,
}

impl PublishedStats {
    /// Worker: copies the current values in.
    /// `rx_lost[i]` is port i's [`WorkerPort::rx_lost`].
    pub fn publish(&self, c: &Counters, sessions: usize, host: &HostCounters, rx_lost: &[u64]) {
        let r = Ordering::Relaxed;
        for (i, (dst, src)) in self.ports.iter().zip(c.ports.iter()).enumerate() {
            dst[0].store(src.rx_packets, r);
            dst[1].store(src.rx_bytes, r);
            dst[2].store(src.tx_packets, r);
            dst[3].store(src.tx_bytes, r);
            dst[4].store(rx_lost.get(i).copied().unwrap_or(0), r);
        }
        for (dst, &src) in self.drops.iter().zip(c.drops.iter()) {
            dst.store(src, r);
        }
        self.redirected.store(c.redirected, r);
        self.injected.store(c.injected, r);
        self.arp_replies.store(c.arp_replies, r);
        self.arp_requests.store(c.arp_requests, r);
        self.nd[0].store(c.nd_replies, r);
        self.nd[1].store(c.nd_requests, r);
        self.icmp_errors[0].store(c.icmp_errors_sent, r);
        self.icmp_errors[1].store(c.icmp_errors_rate_limited, r);
        self.sessions.store(sessions as u64, r);
        self.inject_failed.store(host.inject_failed, r);
        self.sleeps.store(host.sleeps, r);
        self.handoffs[0].store(host.handoff_out, r);
        self.handoffs[1].store(host.handoff_in, r);
        self.handoffs[2].store(host.handoff_dropped, r);
    }

    /// Frames (handed to other workers, taken from other workers, lost to a full queue).
    pub fn handoffs(&self) -> [u64; 3] {
        self.handoffs.each_ref().map(|v| v.load(Ordering::Relaxed))
    }

    /// Worker: copies the pipeline's QoS counters in. The per-session list is skipped (left
    /// as it was) if the metrics thread is reading it; its buffer is reused, so it only
    /// allocates when the number of rated sessions grows.
    pub fn publish_qos(&self, p: &Pipeline) {
        let r = Ordering::Relaxed;
        let (free, total) = p.qos_pool().unwrap_or((0, 0));
        self.qos_totals[0].store(u64::from(p.shaped_backlog()), r);
        self.qos_totals[1].store(free as u64, r);
        self.qos_totals[2].store(total as u64, r);
        self.qos_totals[3].store(p.counters().qos_unshaped, r);
        if let Ok(mut v) = self.qos_sessions.try_lock() {
            v.clear();
            v.extend(p.qos_stats());
        }
    }

    /// Worker: copies the NAT's gauges and refusal counters in.
    pub fn publish_nat(&self, p: &Pipeline) {
        let Some(nat) = p.nat() else {
            return;
        };
        let r = Ordering::Relaxed;
        self.nat[0].store(nat.mappings_active() as u64, r);
        self.nat[1].store(nat.blocks_in_use(), r);
        self.nat[2].store(nat.subscribers_active() as u64, r);
        self.nat[3].store(nat.counters().hairpins, r);
        self.nat[4].store(nat.counters().hairpins_elsewhere, r);
        for (dst, &src) in self.nat[5..].iter().zip(nat.counters().drops.iter()) {
            dst.store(src, r);
        }
    }

    /// NAT: as [`crate::host::metrics::Snapshot::nat`], for this worker.
    pub fn nat(&self) -> [u64; NAT_STATS] {
        self.nat.each_ref().map(|v| v.load(Ordering::Relaxed))
    }

    /// Worker: copies the ACL rule hit counters in (skipped if the metrics thread holds
    /// them; allocates only when an ACL set with more rules arrived).
    pub fn publish_acls(&self, p: &Pipeline) {
        if let Ok(mut g) = self.acl_hits.try_lock() {
            let (set, hits) = &mut *g;
            if !Arc::ptr_eq(set, p.acls()) {
                *set = p.acls().clone();
            }
            hits.clear();
            hits.extend_from_slice(p.acl_hits());
        }
    }

    /// The ACL set last published and its rule hit counters.
    pub fn acl_hits(&self) -> (Arc<AclSet>, Vec<u64>) {
        self.acl_hits
            .lock()
            .map(|g| (g.0.clone(), g.1.clone()))
            .unwrap_or_else(|_| (Arc::new(AclSet::empty()), Vec::new()))
    }

    /// Shaper totals: (backlog packets, free pool frames, pool frames, unshaped sessions).
    pub fn qos_totals(&self) -> [u64; 4] {
        let r = Ordering::Relaxed;
        self.qos_totals.each_ref().map(|v| v.load(r))
    }

    /// The per-session QoS counters last published.
    pub fn qos_sessions(&self) -> Vec<SessionQosStats> {
        self.qos_sessions
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    /// Counters of port `port`.
    pub fn port(&self, port: PortId) -> PortSample {
        let Some(p) = self.ports.get(usize::from(port)) else {
            return PortSample::default();
        };
        let r = Ordering::Relaxed;
        PortSample {
            rx_packets: p[0].load(r),
            rx_bytes: p[1].load(r),
            tx_packets: p[2].load(r),
            tx_bytes: p[3].load(r),
            rx_lost: p[4].load(r),
        }
    }

    /// Drops per reason, indexed like [`DropReason::ALL`].
    pub fn drops(&self) -> Vec<u64> {
        self.drops
            .iter()
            .map(|d| d.load(Ordering::Relaxed))
            .collect()
    }

    /// (redirected, injected, inject_failed, arp_replies, arp_requests, sessions, sleeps,
    /// ICMP errors sent, ICMP errors rate-limited, neighbour advertisements sent, neighbour
    /// solicitations sent).
    pub fn totals(&self) -> [u64; 11] {
        let r = Ordering::Relaxed;
        [
            self.redirected.load(r),
            self.injected.load(r),
            self.inject_failed.load(r),
            self.arp_replies.load(r),
            self.arp_requests.load(r),
            self.sessions.load(r),
            self.sleeps.load(r),
            self.icmp_errors[0].load(r),
            self.icmp_errors[1].load(r),
            self.nd[0].load(r),
            self.nd[1].load(r),
        ]
    }
}

/// State shared between the worker and the other threads.
#[derive(Debug)]
pub struct WorkerShared {
    /// Control thread -> worker: a new ACL set, installed before the session commands
    /// queued after it (the control thread waits until the worker took it).
    pub acls: ArrayQueue<Arc<AclSet>>,
    /// Control thread -> worker: session changes.
    pub commands: ArrayQueue<SessionCommand>,
    /// Control thread -> worker: which worker owns each session IPv6 prefix (only with
    /// several workers: [`Handoff`] steers IPv6 frames by it).
    pub ipv6_owners: ArrayQueue<Ipv6OwnerChange>,
    /// Worker -> control thread: final counters of removed sessions.
    pub removed: ArrayQueue<(SessionId, Option<UsageCounters>)>,
    /// Control thread -> worker: counter reads of live sessions, each with a ticket that
    /// its answer repeats.
    pub queries: ArrayQueue<(u64, SessionId)>,
    /// Worker -> control thread: the counters asked for (None: no such session).
    pub queried: ArrayQueue<(u64, Option<UsageCounters>)>,
    /// Worker -> GTP-U sender: frames for the CP.
    pub to_cp: Arc<FrameQueue>,
    /// GTP-U receiver -> worker: frames from the CP (port = access port to send on).
    pub from_cp: Arc<FrameQueue>,
    /// Other workers -> this worker: frames of sessions this worker owns (port = the port
    /// they arrived on). One slot when there is a single worker.
    pub handoff_in: FrameQueue,
    /// Wakes the worker when it sleeps.
    pub waker: Arc<IdleWaker>,
    /// Counters for the metrics exporter.
    pub stats: PublishedStats,
    /// Set to stop the worker.
    pub stop: AtomicBool,
}

impl WorkerShared {
    /// Shared state with `queue_len` frame buffers per direction, for a single worker.
    pub fn new(queue_len: usize) -> std::io::Result<WorkerShared> {
        Self::with_handoff(queue_len, 1)
    }

    /// Shared state of one of several workers: `handoff_len` buffers for frames other
    /// workers hand over.
    pub fn with_handoff(queue_len: usize, handoff_len: usize) -> std::io::Result<WorkerShared> {
        Ok(WorkerShared {
            handoff_in: FrameQueue::new(handoff_len.max(1)),
            acls: ArrayQueue::new(1),
            commands: ArrayQueue::new(1024),
            ipv6_owners: ArrayQueue::new(1024),
            removed: ArrayQueue::new(1024),
            queries: ArrayQueue::new(1024),
            queried: ArrayQueue::new(1024),
            to_cp: Arc::new(FrameQueue::new(queue_len)),
            from_cp: Arc::new(FrameQueue::new(queue_len)),
            waker: Arc::new(IdleWaker::new()?),
            stats: PublishedStats::default(),
            stop: AtomicBool::new(false),
        })
    }
}

/// Worker timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerTiming {
    /// Busy-poll this long after the last work before sleeping.
    pub busy_poll: Duration,
    /// Longest sleep.
    pub poll_timeout: Duration,
    /// Counter publication interval.
    pub stats_interval: Duration,
}

/// The poll-mode worker.
#[derive(Debug)]
pub struct Worker<P: WorkerPort> {
    pipeline: Pipeline,
    ports: Vec<P>,
    access_ports: usize,
    shared: Arc<WorkerShared>,
    redirect_thread: Option<Thread>,
    /// The receive burst, in the ports' own buffers (empty between loops).
    bufs: Vec<P::Buffer>,
    /// Frames handed over by other workers.
    frames: Vec<Frame>,
    verdicts: [Verdict; BURST],
    host: HostCounters,
    handoff: Option<Handoff>,
    /// Where the NAT's port-block log goes ([`Worker::with_nat_log`]).
    nat_log: Option<Sender<NatLogRecord>>,
    /// Unix time in nanoseconds at which the worker's clock read 0 (set by
    /// [`Worker::run`]).
    unix_base_ns: u64,
}

/// One port-block log event of a worker's NAT, with what turns its time into Unix time
/// ([`crate::nat::NatLogEvent::write_json`]).
#[derive(Debug, Clone, Copy)]
pub struct NatLogRecord {
    /// Unix time in nanoseconds at which the worker's clock read 0.
    pub unix_base_ns: u64,
    /// The event.
    pub event: NatLogEvent,
}

/// A worker's place among several: its index, the session map, every worker's shared state
/// (to reach their handoff queues and wake them).
#[derive(Debug)]
pub struct Handoff {
    index: usize,
    map: Arc<WorkerMap>,
    /// This worker's copy of the IPv6 prefix owners.
    ipv6: Ipv6Owners,
    peers: Vec<Arc<WorkerShared>>,
    /// Peers that were handed frames in this loop (woken once at its end).
    to_wake: Vec<bool>,
}

impl Handoff {
    /// Worker `index` of `peers.len()` workers sharing `map`.
    pub fn new(index: usize, map: Arc<WorkerMap>, peers: Vec<Arc<WorkerShared>>) -> Handoff {
        let to_wake = vec![false; peers.len()];
        Handoff {
            index,
            map,
            ipv6: Ipv6Owners::new(),
            peers,
            to_wake,
        }
    }

    fn give<B: PacketBuffer>(&mut self, owner: usize, frame: &B, host: &mut HostCounters) {
        self.give_as(owner, frame.port(), frame.data(), host);
    }

    /// Hands `data` to worker `owner` as a frame received on `port`.
    fn give_as(&mut self, owner: usize, port: PortId, data: &[u8], host: &mut HostCounters) {
        if let Some(peer) = self.peers.get(owner) {
            if peer.handoff_in.push(port, data) {
                host.handoff_out += 1;
                self.to_wake[owner] = true;
            } else {
                host.handoff_dropped += 1;
            }
        }
    }

    /// Hands the frames of `frames[..n]` owned by other workers to them (copies) and keeps
    /// the rest, in their order, at the front; returns how many were kept. The frames handed
    /// over end up in `frames[kept..n]`, for the caller to release.
    fn keep_local<B: PacketBuffer>(
        &mut self,
        frames: &mut [B],
        n: usize,
        from_access: bool,
        host: &mut HostCounters,
    ) -> usize {
        let mut kept = 0;
        for i in 0..n {
            let keep = match frame_owner(&self.map, &self.ipv6, frames[i].data(), from_access) {
                Owner::Local => true,
                Owner::Worker(owner) if owner == self.index => true,
                Owner::Worker(owner) => {
                    self.give(owner, &frames[i], host);
                    false
                }
                Owner::All => {
                    for peer in 0..self.peers.len() {
                        if peer != self.index {
                            self.give(peer, &frames[i], host);
                        }
                    }
                    true
                }
            };
            if keep {
                // Frames before `i` that stay are already at the front: order is kept.
                frames.swap(kept, i);
                kept += 1;
            }
        }
        kept
    }

    /// A frame the pipeline rewrote as received on `port` ([`Verdict::Handoff`]): to the
    /// worker owning it. One that this worker would own itself is dropped as not for us (it
    /// would come back here without end).
    fn hand_over<B: PacketBuffer>(
        &mut self,
        port: PortId,
        frame: &B,
        pipeline: &mut Pipeline,
        host: &mut HostCounters,
    ) {
        match frame_owner(&self.map, &self.ipv6, frame.data(), false) {
            Owner::Worker(owner) if owner != self.index => {
                self.give_as(owner, port, frame.data(), host);
            }
            _ => pipeline.counters_mut().count_drop(DropReason::NotForUs),
        }
    }

    fn wake_peers(&mut self) {
        for (peer, wake) in self.peers.iter().zip(self.to_wake.iter_mut()) {
            if std::mem::take(wake) {
                peer.waker.wake();
            }
        }
    }
}

impl<P: WorkerPort> Worker<P> {
    /// A worker over `ports` (index = port id; the first `access_ports` are access ports).
    /// `redirect_thread` is unparked after a loop that queued frames for the CP.
    pub fn new(
        pipeline: Pipeline,
        ports: Vec<P>,
        access_ports: usize,
        shared: Arc<WorkerShared>,
        redirect_thread: Option<Thread>,
    ) -> Self {
        // Every port of a worker is of one backend: any of them makes the slots.
        let bufs = match ports.first() {
            Some(p) => (0..BURST).map(|_| p.empty_buffer()).collect(),
            None => Vec::new(),
        };
        Worker {
            pipeline,
            ports,
            access_ports,
            shared,
            redirect_thread,
            bufs,
            frames: (0..BURST).map(|_| Frame::new()).collect(),
            verdicts: [Verdict::Drop(DropReason::Malformed); BURST],
            host: HostCounters::default(),
            handoff: None,
            nat_log: None,
            unix_base_ns: 0,
        }
    }

    /// Sends the pipeline NAT's port-block log events to `log` (drained with the counters,
    /// every stats interval, and on exit). Events wait in the NAT's own queue until then;
    /// when that queue is full the NAT refuses new blocks rather than lose an event.
    pub fn with_nat_log(mut self, log: Sender<NatLogRecord>) -> Self {
        self.nat_log = Some(log);
        self
    }

    /// Makes this worker one of several (see [`Handoff`]).
    pub fn with_handoff(mut self, handoff: Handoff) -> Self {
        self.handoff = (handoff.peers.len() > 1).then_some(handoff);
        self
    }

    /// The pipeline (tests and final reporting).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The ports (tests).
    pub fn ports_mut(&mut self) -> &mut [P] {
        &mut self.ports
    }

    /// Copies the counters to [`PublishedStats`].
    pub fn publish(&mut self) {
        let mut lost = [0u64; MAX_PORTS];
        for (dst, port) in lost.iter_mut().zip(self.ports.iter_mut()) {
            *dst = port.rx_lost();
        }
        self.shared.stats.publish(
            self.pipeline.counters(),
            self.pipeline.session_count(),
            &self.host,
            &lost,
        );
        self.shared.stats.publish_qos(&self.pipeline);
        self.shared.stats.publish_acls(&self.pipeline);
        self.shared.stats.publish_nat(&self.pipeline);
        if let (Some(log), Some(nat)) = (&self.nat_log, self.pipeline.nat_mut()) {
            let unix_base_ns = self.unix_base_ns;
            nat.drain_events(|e| {
                // A closed log (the logger stopped at shutdown) has nowhere to write.
                let _ = log.send(NatLogRecord {
                    unix_base_ns,
                    event: *e,
                });
            });
        }
    }

    /// One loop iteration at `now_ns`; returns the number of frames handled (0 = idle).
    pub fn run_once(&mut self, now_ns: u64) -> usize {
        let Worker {
            pipeline,
            ports,
            access_ports,
            shared,
            redirect_thread,
            bufs,
            frames,
            verdicts,
            host,
            handoff,
            ..
        } = self;
        let mut work = 0;

        // 1. A new ACL set, then session commands (one empty check each per loop).
        if let Some(acls) = shared.acls.pop() {
            work += 1;
            pipeline.set_acls(acls);
        }
        while let Some(cmd) = shared.commands.pop() {
            work += 1;
            if let SessionCommand::Remove(id) = cmd {
                let counters = pipeline.apply_at(now_ns, cmd);
                // The control thread waits for this; never lose it to a full queue.
                let _ = shared.removed.force_push((id, counters));
            } else {
                pipeline.apply_at(now_ns, cmd);
            }
        }
        // IPv6 prefix owners (queued only with several workers, where there is a handoff).
        while let Some(change) = shared.ipv6_owners.pop() {
            work += 1;
            if let Some(h) = handoff.as_mut() {
                h.ipv6.apply(change);
            }
        }
        // Counter reads, after the commands queued before them: the session is untouched.
        while let Some((ticket, id)) = shared.queries.pop() {
            work += 1;
            let _ = shared
                .queried
                .force_push((ticket, pipeline.session_counters(id)));
        }

        // 2. Receive, hand over what other workers own, process, dispatch.
        let mut queued_for_cp = false;
        for p in 0..ports.len() {
            let got = ports[p].recv_buffers(bufs);
            if got == 0 {
                continue;
            }
            work += got;
            let mut n = got;
            if let Some(h) = handoff.as_mut() {
                n = h.keep_local(bufs, got, p < *access_ports, host);
            }
            if n > 0 {
                queued_for_cp |= process_and_dispatch(
                    now_ns,
                    pipeline,
                    ports,
                    &shared.to_cp,
                    &mut bufs[..n],
                    verdicts,
                    |port, buf| port.send_buffer(buf),
                    (handoff.as_mut(), host),
                );
            }
            ports[p].release(&mut bufs[..got]);
            // Each burst leaves as soon as it is processed: its buffers go back to the pool
            // before the next port's receive takes new ones, so the loop keeps reusing the
            // same few buffers, still in cache.
            for port in ports.iter_mut() {
                port.flush();
            }
        }
        // 2b. Frames other workers handed over, at most one burst per loop.
        if let Some(h) = handoff.as_mut() {
            h.wake_peers();
            let mut n = 0;
            while n < frames.len() {
                let Some(buf) = shared.handoff_in.pop() else {
                    break;
                };
                if frames[n].set_data(buf.data()).is_ok() {
                    frames[n].port = buf.port();
                    n += 1;
                }
                shared.handoff_in.recycle(buf);
            }
            if n > 0 {
                work += n;
                host.handoff_in += n as u64;
                queued_for_cp |= process_and_dispatch(
                    now_ns,
                    pipeline,
                    ports,
                    &shared.to_cp,
                    &mut frames[..n],
                    verdicts,
                    |port, frame| port.send(frame.data()),
                    (Some(h), host),
                );
            }
        }

        // 3. Frames from the CP, at most one burst per loop.
        for _ in 0..BURST {
            let Some(buf) = shared.from_cp.pop() else {
                break;
            };
            work += 1;
            let port = buf.port();
            let counters = pipeline.counters_mut();
            let sent = usize::from(port) < *access_ports
                && ports
                    .get_mut(usize::from(port))
                    .is_some_and(|p| p.send(buf.data()).is_ok());
            if sent {
                counters.count_tx(port, buf.data().len());
                counters.injected += 1;
            } else {
                host.inject_failed += 1;
            }
            shared.from_cp.recycle(buf);
        }

        // 4. Frames the pipeline generates (next-hop ARP); at most a few per call.
        let mut generated: [(PortId, usize, bool); 4] = [(0, 0, false); 4];
        let mut n_generated = 0;
        pipeline.drain_generated(now_ns, &mut |port, data| {
            let ok = ports
                .get_mut(usize::from(port))
                .is_some_and(|p| p.send(data).is_ok());
            if let Some(slot) = generated.get_mut(n_generated) {
                *slot = (port, data.len(), ok);
                n_generated += 1;
            }
        });
        for &(port, len, ok) in &generated[..n_generated] {
            let counters = pipeline.counters_mut();
            if ok {
                counters.count_tx(port, len);
            } else {
                counters.count_tx_error(port);
            }
        }

        // 5. The downstream shaper, within the burst budget.
        work += pipeline.drain_shaped(now_ns, BURST, &mut |port, data| {
            ports
                .get_mut(usize::from(port))
                .is_some_and(|p| p.send(data).is_ok())
        });

        // 6. One kick per port, for what steps 2b to 5 queued.
        for port in ports.iter_mut() {
            port.flush();
        }
        if let Some(t) = redirect_thread.as_ref().filter(|_| queued_for_cp) {
            t.unpark();
        }
        work
    }

    /// Runs until [`WorkerShared::stop`] is set; publishes counters a last time on exit.
    pub fn run(mut self, timing: WorkerTiming) -> Self {
        let start = Instant::now();
        self.unix_base_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let busy_ns = timing.busy_poll.as_nanos() as u64;
        let stats_ns = timing.stats_interval.as_nanos() as u64;
        let poll_timeout = timing
            .poll_timeout
            .clamp(Duration::from_millis(1), Duration::from_secs(1));
        let fds: Vec<RawFd> = self.ports.iter().filter_map(|p| p.poll_fd()).collect();
        let mut pollfds = Vec::with_capacity(fds.len() + 1);
        let mut last_work = 0u64;
        let mut last_publish = 0u64;
        while !self.shared.stop.load(Ordering::Relaxed) {
            let now = start.elapsed().as_nanos() as u64;
            if self.run_once(now) > 0 {
                last_work = now;
            } else if now.saturating_sub(last_work) >= busy_ns
                && let Some(timeout) = idle_timeout(
                    now,
                    self.pipeline.shaper_next_wakeup_ns(),
                    self.pipeline.shaped_backlog(),
                    poll_timeout,
                )
            {
                let waker = &self.shared.waker;
                waker.prepare_sleep();
                if self.shared.commands.is_empty()
                    && self.shared.acls.is_empty()
                    && self.shared.from_cp.is_empty()
                    && self.shared.handoff_in.is_empty()
                    && !self.shared.stop.load(Ordering::Relaxed)
                {
                    self.host.sleeps += 1;
                    waker.sleep_for(&fds, &mut pollfds, timeout);
                } else {
                    waker.awake();
                }
            }
            if now.saturating_sub(last_publish) >= stats_ns {
                last_publish = now;
                self.publish();
            }
        }
        self.publish();
        self
    }
}

/// Runs the pipeline over `frames` at `now_ns` and acts on its verdicts: `Forward` -> the
/// port's transmit queue through `send` (which may take the packet out of its buffer),
/// `ToControlPlane` -> a copy toward the GTP-U sender, `Handoff` -> a copy to the worker
/// owning it through `handoff` (dropped without one). Returns whether anything was queued
/// for the CP.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn process_and_dispatch<P: WorkerPort, B: PacketBuffer>(
    now_ns: u64,
    pipeline: &mut Pipeline,
    ports: &mut [P],
    to_cp: &FrameQueue,
    frames: &mut [B],
    verdicts: &mut [Verdict],
    mut send: impl FnMut(&mut P, &mut B) -> Result<(), PortError>,
    (mut handoff, host): (Option<&mut Handoff>, &mut HostCounters),
) -> bool {
    let n = frames.len().min(verdicts.len());
    let (frames, verdicts) = (&mut frames[..n], &mut verdicts[..n]);
    pipeline.process_burst(now_ns, frames, verdicts);
    let mut queued_for_cp = false;
    for (frame, verdict) in frames.iter_mut().zip(verdicts.iter()) {
        match *verdict {
            Verdict::Forward(out) => {
                let counters = pipeline.counters_mut();
                match ports.get_mut(usize::from(out)) {
                    Some(port) => {
                        let len = frame.len();
                        match send(port, frame) {
                            Ok(()) => counters.count_tx(out, len),
                            Err(_) => counters.count_tx_error(out),
                        }
                    }
                    None => counters.count_drop(DropReason::NotForUs),
                }
            }
            Verdict::ToControlPlane => {
                // A full queue is counted by the queue itself.
                queued_for_cp |= to_cp.push(frame.port(), frame.data());
            }
            Verdict::Handoff(port) => match handoff.as_deref_mut() {
                Some(h) => h.hand_over(port, frame, pipeline, host),
                None => pipeline.counters_mut().count_drop(DropReason::NotForUs),
            },
            // In the shaper (moved out of the slot); released by the caller.
            Verdict::Queued | Verdict::Drop(_) => {}
        }
    }
    queued_for_cp
}

/// Sleeps shorter than this are not worth a syscall (the kernel's default timer slack): the
/// worker keeps polling instead.
pub const MIN_SLEEP: Duration = Duration::from_micros(50);

/// How long an idle worker may sleep at `now_ns`: `poll_timeout`, cut short to the shaper's
/// next release `next_wakeup_ns` so that a backlogged subscriber is served on time; `None`
/// (keep polling) when that release is less than [`MIN_SLEEP`] away. A backlog without a
/// known release time (the scheduler reports none) re-checks after at most 1 ms. Pure.
pub fn idle_timeout(
    now_ns: u64,
    next_wakeup_ns: Option<u64>,
    backlog: u32,
    poll_timeout: Duration,
) -> Option<Duration> {
    match next_wakeup_ns {
        None if backlog == 0 => Some(poll_timeout),
        None => Some(poll_timeout.min(Duration::from_millis(1))),
        Some(t) => {
            let wait = Duration::from_nanos(t.saturating_sub(now_ns));
            (wait >= MIN_SLEEP).then(|| wait.min(poll_timeout))
        }
    }
}

/// The control thread's handle on the worker: queues commands and waits for the final
/// counters of removed sessions and the current counters of queried ones.
#[derive(Debug)]
pub struct WorkerHandle {
    shared: Arc<WorkerShared>,
    deletion_wait: Duration,
    next_ticket: u64,
}

impl WorkerHandle {
    /// A handle that waits at most `deletion_wait` for a removed session's counters (and as
    /// long for a queried session's).
    pub fn new(shared: Arc<WorkerShared>, deletion_wait: Duration) -> Self {
        WorkerHandle {
            shared,
            deletion_wait,
            next_ticket: 0,
        }
    }

    /// Queues a command, retrying briefly while the queue is full.
    fn push(&self, cmd: SessionCommand) -> bool {
        self.push_to(&self.shared.commands, cmd)
    }

    /// Queues an IPv6 prefix owner change, retrying briefly while the queue is full.
    fn push_ipv6_owner(&self, change: Ipv6OwnerChange) -> bool {
        self.push_to(&self.shared.ipv6_owners, change)
    }

    /// Pushes `item` to `queue` (one of the worker's), waking the worker, for at most 50 ms
    /// while the queue is full.
    fn push_to<T>(&self, queue: &ArrayQueue<T>, mut item: T) -> bool {
        let deadline = Instant::now() + Duration::from_millis(50);
        loop {
            match queue.push(item) {
                Ok(()) => {
                    self.shared.waker.wake();
                    return true;
                }
                Err(back) if Instant::now() < deadline => {
                    item = back;
                    self.shared.waker.wake();
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err(_) => return false,
            }
        }
    }
}

impl SessionBackend for WorkerHandle {
    fn upsert(&mut self, entry: SessionEntry) -> bool {
        self.push(SessionCommand::Upsert(entry))
    }

    fn remove(&mut self, id: SessionId) -> Option<UsageCounters> {
        if !self.push(SessionCommand::Remove(id)) {
            return None;
        }
        self.wait_answer(&self.shared.removed, id)
    }

    fn set_acls(&mut self, acls: Arc<AclSet>) -> bool {
        // One set in flight at a time: the agent sends the next only after this returns.
        let deadline = Instant::now() + self.deletion_wait;
        let mut set = acls;
        while let Err(back) = self.shared.acls.push(set) {
            if Instant::now() >= deadline {
                return false;
            }
            set = back;
            self.shared.waker.wake();
            std::thread::sleep(Duration::from_micros(200));
        }
        // Session commands queued from now on may name new ids: let the worker take the set
        // first (it always takes the set before the commands of the same loop).
        while !self.shared.acls.is_empty() && Instant::now() < deadline {
            self.shared.waker.wake();
            std::thread::sleep(Duration::from_micros(200));
        }
        true
    }

    fn query(&mut self, id: SessionId) -> Option<UsageCounters> {
        let ticket = self.next_ticket;
        self.next_ticket = self.next_ticket.wrapping_add(1);
        if self.shared.queries.push((ticket, id)).is_err() {
            return None;
        }
        self.shared.waker.wake();
        self.wait_answer(&self.shared.queried, ticket)
    }
}

impl WorkerHandle {
    /// Waits up to the deletion wait for the worker's answer tagged `tag`
    /// on `answers`. Answers with other tags are late ones to requests that
    /// timed out: nobody waits for them, they are dropped.
    fn wait_answer(
        &self,
        answers: &ArrayQueue<(u64, Option<UsageCounters>)>,
        tag: u64,
    ) -> Option<UsageCounters> {
        let deadline = Instant::now() + self.deletion_wait;
        loop {
            while let Some((t, counters)) = answers.pop() {
                if t == tag {
                    return counters;
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// The control thread's handle on several workers: each session goes to the worker owning
/// its IPv4 address ([`WorkerMap::owner_of_ipv4`]), and follows it there if a modification
/// changes the address (its counters move with it); ACL sets go to every worker. Every
/// worker learns which worker owns each session IPv6 prefix, to hand IPv6 frames over.
#[derive(Debug)]
pub struct WorkerGroup {
    handles: Vec<WorkerHandle>,
    map: Arc<WorkerMap>,
    owners: std::collections::HashMap<SessionId, usize>,
    /// The IPv6 prefixes of each session that has any.
    session_prefixes: std::collections::HashMap<SessionId, SessionIpv6>,
    /// Session and owner of each IPv6 prefix, as the workers were told.
    prefix_owners: std::collections::HashMap<(u64, u8), (SessionId, usize)>,
    /// IPv6 owner changes no worker queue took (full for 50 ms); counted for the operator.
    ipv6_owner_changes_lost: u64,
}

impl WorkerGroup {
    /// A group over `workers` (index = worker index of `map`), waiting at most
    /// `deletion_wait` for a worker's answer.
    pub fn new(
        workers: &[Arc<WorkerShared>],
        map: Arc<WorkerMap>,
        deletion_wait: Duration,
    ) -> Self {
        WorkerGroup {
            handles: workers
                .iter()
                .map(|w| WorkerHandle::new(w.clone(), deletion_wait))
                .collect(),
            map,
            owners: std::collections::HashMap::new(),
            session_prefixes: std::collections::HashMap::new(),
            prefix_owners: std::collections::HashMap::new(),
            ipv6_owner_changes_lost: 0,
        }
    }

    /// IPv6 prefix owner changes that a worker's queue did not take.
    pub fn ipv6_owner_changes_lost(&self) -> u64 {
        self.ipv6_owner_changes_lost
    }

    /// Tells every worker that prefix `key` is owned by `owner`.
    fn announce_ipv6(&mut self, (top, len): (u64, u8), owner: Option<usize>) {
        let change = Ipv6OwnerChange {
            top,
            len,
            owner: owner.map(|w| w as u8),
        };
        for (worker, handle) in self.handles.iter().enumerate() {
            if !handle.push_ipv6_owner(change) {
                self.ipv6_owner_changes_lost += 1;
                crate::up_warn!(
                    "worker {worker} took no IPv6 owner change for 50 ms: its IPv6 frames of \
                     prefix {}/{len} stay where they arrive",
                    core::net::Ipv6Addr::from_bits(u128::from(top) << 64)
                );
            }
        }
    }

    /// Records that session `id` now holds the IPv6 prefixes of `ipv6` (none: `NONE`) at
    /// worker `owner`, and tells the workers what changed.
    fn track_ipv6(&mut self, id: SessionId, ipv6: SessionIpv6, owner: usize) {
        if self.handles.len() < 2 {
            // One worker receives everything: nothing to steer, nothing to remember.
            return;
        }
        let old = self
            .session_prefixes
            .get(&id)
            .copied()
            .unwrap_or(SessionIpv6::NONE);
        for key in old.prefixes() {
            let kept = ipv6.prefixes().any(|p| p == key);
            if !kept && self.prefix_owners.get(&key).is_some_and(|&(s, _)| s == id) {
                self.prefix_owners.remove(&key);
                self.announce_ipv6(key, None);
            }
        }
        for key in ipv6.prefixes() {
            if self.prefix_owners.get(&key) != Some(&(id, owner)) {
                self.prefix_owners.insert(key, (id, owner));
                self.announce_ipv6(key, Some(owner));
            }
        }
        if ipv6.prefixes().next().is_some() {
            self.session_prefixes.insert(id, ipv6);
        } else {
            self.session_prefixes.remove(&id);
        }
    }

    /// The worker holding session `id`, if the group installed it.
    pub fn owner(&self, id: SessionId) -> Option<usize> {
        self.owners.get(&id).copied()
    }

    fn owner_of(&self, entry: &SessionEntry) -> usize {
        if entry.ipv4.is_unspecified() {
            // No address to hash (not forwarded yet): any fixed choice works.
            (entry.id as usize) % self.handles.len()
        } else {
            self.map.owner_of_ipv4(entry.ipv4) % self.handles.len()
        }
    }
}

impl SessionBackend for WorkerGroup {
    fn upsert(&mut self, mut entry: SessionEntry) -> bool {
        let owner = self.owner_of(&entry);
        if let Some(&previous) = self.owners.get(&entry.id)
            && previous != owner
        {
            // The address moved the session to another worker: take its counters along.
            if let Some(counters) = self.handles[previous].remove(entry.id) {
                entry.counters = counters;
            }
            self.owners.remove(&entry.id);
        }
        let (id, ipv6) = (entry.id, entry.ipv6);
        let ok = self.handles[owner].upsert(entry);
        if ok {
            self.owners.insert(id, owner);
            self.track_ipv6(id, ipv6, owner);
        } else if !self.owners.contains_key(&id) {
            // Gone from its old worker and refused by the new one: no prefixes either. A
            // session still where it was keeps its prefixes as they are.
            self.track_ipv6(id, SessionIpv6::NONE, owner);
        }
        ok
    }

    fn remove(&mut self, id: SessionId) -> Option<UsageCounters> {
        self.track_ipv6(id, SessionIpv6::NONE, 0);
        let owner = self.owners.remove(&id)?;
        self.handles[owner].remove(id)
    }

    fn set_acls(&mut self, acls: Arc<AclSet>) -> bool {
        let mut all = true;
        for handle in &mut self.handles {
            all &= handle.set_acls(acls.clone());
        }
        all
    }

    fn query(&mut self, id: SessionId) -> Option<UsageCounters> {
        let owner = *self.owners.get(&id)?;
        self.handles[owner].query(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{PipelineConfig, SchedulerConfig};
    use crate::session::{AccessKey, SessionQos};
    use crate::wire::EtherType;
    use crate::wire::EthernetAddress;
    use crate::wire::frame::{L2Header, build_ipv4_udp};
    use std::net::Ipv4Addr;

    const GW: EthernetAddress = EthernetAddress([0x02, 0, 0x5e, 0, 1, 1]);
    const CORE_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0xc0, 0x01]);
    const SUB_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x11]);

    fn worker() -> (Worker<MemoryPort>, Arc<WorkerShared>) {
        worker_with(None)
    }

    fn worker_with(qos: Option<SchedulerConfig>) -> (Worker<MemoryPort>, Arc<WorkerShared>) {
        let cfg = PipelineConfig {
            access_ports: vec![0],
            core_port: 1,
            core_mac: CORE_MAC,
            core_ipv4: Ipv4Addr::new(198, 51, 100, 2),
            core_prefix_len: 24,
            next_hop: Ipv4Addr::new(198, 51, 100, 1),
            gateway_mac: GW,
            redirect_pps: 1000,
            arp_retry_ns: 1_000_000_000,
        };
        let shared = Arc::new(WorkerShared::new(8).unwrap());
        let ports = vec![
            MemoryPort::new(0, EthernetAddress([2, 0, 0, 0, 0xa0, 0])),
            MemoryPort::new(1, CORE_MAC),
        ];
        let pipeline = match qos {
            Some(q) => Pipeline::with_qos(cfg, 7, q),
            None => Pipeline::new(cfg, 7),
        };
        let w = Worker::new(pipeline, ports, 1, shared.clone(), None);
        (w, shared)
    }

    /// A broadcast ARP request from the subscriber (goes to the CP).
    fn arp_request() -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&SUB_MAC.0);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&SUB_MAC.0);
        f.extend_from_slice(&[100, 64, 0, 10]);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&[100, 64, 0, 1]);
        f
    }

    #[test]
    fn arp_goes_to_cp_and_cp_frames_go_out() {
        let (mut w, shared) = worker();
        w.ports_mut()[0].inject(&arp_request());
        assert!(w.run_once(1) > 0);
        let buf = shared.to_cp.pop().expect("frame for the CP");
        assert_eq!((buf.port(), buf.data()), (0, &arp_request()[..]));
        shared.to_cp.recycle(buf);

        // The CP answers on port 0; a frame for a non-access port is refused.
        assert!(shared.from_cp.push(0, b"0123456789abcdef"));
        assert!(shared.from_cp.push(1, b"0123456789abcdef"));
        w.run_once(2);
        assert_eq!(
            w.ports_mut()[0].pop_sent().as_deref(),
            Some(&b"0123456789abcdef"[..])
        );
        assert!(
            w.ports_mut()[1]
                .pop_sent()
                .is_some_and(|f| f[12..14] == [0x08, 0x06])
        );
        w.publish();
        let [redirected, injected, inject_failed, ..] = shared.stats.totals();
        assert_eq!((redirected, injected, inject_failed), (1, 1, 1));
        assert_eq!(shared.stats.port(0).tx_packets, 1);
        assert_eq!(shared.stats.port(0).rx_packets, 1);
    }

    /// An open, unlimited session of `SUB_MAC` on port 0.
    fn sub_entry(id: SessionId, cvlan: u16, ip_last: u8) -> SessionEntry {
        SessionEntry {
            id,
            access: AccessKey {
                port: 0,
                svlan: 0,
                cvlan,
                mac: SUB_MAC,
                pppoe_session: 0,
            },
            ipv4: Ipv4Addr::new(100, 64, 0, ip_last),
            gate_open: true,
            qos: crate::session::SessionQos::UNLIMITED,
            mtu: 0,
            mss_clamp: 0,
            acl: crate::acl::NO_ACL,
            counters: UsageCounters::default(),
            ipv6: SessionIpv6::NONE,
        }
    }

    #[test]
    fn commands_are_applied_and_removals_answered() {
        let (mut w, shared) = worker();
        let entry = sub_entry(5, 100, 10);
        shared.commands.push(SessionCommand::Upsert(entry)).unwrap();
        w.run_once(1);
        assert_eq!(w.pipeline().session_count(), 1);
        shared.commands.push(SessionCommand::Remove(5)).unwrap();
        w.run_once(2);
        assert_eq!(w.pipeline().session_count(), 0);
        assert_eq!(
            shared.removed.pop(),
            Some((5, Some(UsageCounters::default())))
        );
    }

    #[test]
    fn handle_waits_for_worker_thread() {
        let (w, shared) = worker();
        let timing = WorkerTiming {
            busy_poll: Duration::from_micros(50),
            poll_timeout: Duration::from_millis(5),
            stats_interval: Duration::from_millis(1),
        };
        let t = std::thread::spawn(move || w.run(timing));
        let mut h = WorkerHandle::new(shared.clone(), Duration::from_secs(10));
        let entry = sub_entry(9, 0, 11);
        assert!(h.upsert(entry));
        assert_eq!(h.remove(9), Some(UsageCounters::default()));
        assert_eq!(h.remove(9), None, "already gone");
        shared.stop.store(true, Ordering::Relaxed);
        shared.waker.wake();
        let w = t.join().unwrap();
        assert_eq!(w.pipeline().session_count(), 0);
    }

    #[test]
    fn queries_read_live_counters_without_disturbing_the_session() {
        let (mut w, shared) = worker();
        let entry = sub_entry(5, 100, 10);
        shared.commands.push(SessionCommand::Upsert(entry)).unwrap();
        shared.queries.push((1, 5)).unwrap();
        shared.queries.push((2, 6)).unwrap();
        w.run_once(1);
        // The query queued after the upsert sees the new session; an unknown one gets None.
        assert_eq!(
            shared.queried.pop(),
            Some((1, Some(UsageCounters::default())))
        );
        assert_eq!(shared.queried.pop(), Some((2, None)));
        let l2 = L2Header {
            dst: CORE_MAC,
            src: EthernetAddress([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]),
            svlan: None,
            cvlan: None,
            ethertype: EtherType::Ipv4,
        };
        let frame = build_ipv4_udp(
            &l2,
            Ipv4Addr::new(203, 0, 113, 5),
            entry.ipv4,
            53,
            40000,
            64,
            &[0u8; 100],
        );
        let mut last = UsageCounters::default();
        for round in 1..=3u64 {
            for _ in 0..2 {
                w.ports_mut()[1].inject(&frame);
            }
            w.run_once(10 * round);
            assert_eq!(w.ports_mut()[0].drain().len(), 2, "still forwarding");
            shared.queries.push((10 + round, 5)).unwrap();
            w.run_once(10 * round + 1);
            let (ticket, counters) = shared.queried.pop().unwrap();
            let c = counters.unwrap();
            assert_eq!(ticket, 10 + round);
            assert_eq!(c.dl_packets, 2 * round, "cumulative since the upsert");
            assert!(c.dl_bytes > last.dl_bytes);
            last = c;
        }
        assert_eq!(w.pipeline().session_count(), 1);
        shared.commands.push(SessionCommand::Remove(5)).unwrap();
        w.run_once(100);
        assert_eq!(shared.removed.pop(), Some((5, Some(last))));
    }

    #[test]
    fn handle_queries_through_worker_thread() {
        let (w, shared) = worker();
        let timing = WorkerTiming {
            busy_poll: Duration::from_micros(50),
            poll_timeout: Duration::from_millis(5),
            stats_interval: Duration::from_millis(1),
        };
        // A late answer to a query nobody waits for any more must not be taken for ours.
        shared.queried.push((u64::MAX, None)).unwrap();
        let t = std::thread::spawn(move || w.run(timing));
        let mut h = WorkerHandle::new(shared.clone(), Duration::from_secs(10));
        let entry = sub_entry(9, 0, 11);
        assert!(h.upsert(entry));
        assert_eq!(h.query(9), Some(UsageCounters::default()));
        assert_eq!(h.query(9), Some(UsageCounters::default()));
        assert_eq!(h.query(10), None, "no such session");
        assert_eq!(h.remove(9), Some(UsageCounters::default()));
        assert_eq!(h.query(9), None, "gone");
        shared.stop.store(true, Ordering::Relaxed);
        shared.waker.wake();
        t.join().unwrap();
    }

    #[test]
    fn idle_timeout_follows_the_shaper() {
        let poll = Duration::from_millis(5);
        // Nothing queued: the configured poll timeout.
        assert_eq!(idle_timeout(1_000, None, 0, poll), Some(poll));
        // A release in 300 us: sleep exactly until then, not a whole poll timeout.
        assert_eq!(
            idle_timeout(1_000, Some(301_000), 3, poll),
            Some(Duration::from_micros(300))
        );
        // A release later than the poll timeout: the poll timeout.
        assert_eq!(idle_timeout(0, Some(50_000_000), 3, poll), Some(poll));
        // A release due now or within the timer slack: keep polling.
        assert_eq!(idle_timeout(1_000, Some(1_000), 3, poll), None);
        assert_eq!(idle_timeout(1_000, Some(500), 3, poll), None);
        assert_eq!(idle_timeout(0, Some(49_999), 3, poll), None);
        assert_eq!(
            idle_timeout(0, Some(50_000), 3, poll),
            Some(Duration::from_micros(50))
        );
        // Backlog without a known release time: re-check within 1 ms.
        assert_eq!(
            idle_timeout(0, None, 3, poll),
            Some(Duration::from_millis(1))
        );
    }

    #[test]
    fn shaped_downstream_leaves_at_the_rate_through_run_once() {
        let (mut w, shared) = worker_with(Some(SchedulerConfig {
            max_subscribers: 4,
            max_packets: 64,
            ..SchedulerConfig::default()
        }));
        let entry = SessionEntry {
            id: 5,
            access: AccessKey {
                port: 0,
                svlan: 0,
                cvlan: 100,
                mac: SUB_MAC,
                pppoe_session: 0,
            },
            ipv4: Ipv4Addr::new(100, 64, 0, 10),
            gate_open: true,
            qos: SessionQos {
                dl_rate_bps: Some(1_000_000),
                ul_rate_bps: None,
            },
            mtu: 0,
            mss_clamp: 0,
            acl: crate::acl::NO_ACL,
            counters: UsageCounters::default(),
            ipv6: SessionIpv6::NONE,
        };
        shared.commands.push(SessionCommand::Upsert(entry)).unwrap();
        w.run_once(0);
        // Five 1028-byte IPv4 packets from the next hop.
        let l2 = L2Header {
            dst: CORE_MAC,
            src: EthernetAddress([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]),
            svlan: None,
            cvlan: None,
            ethertype: EtherType::Ipv4,
        };
        let frame = build_ipv4_udp(
            &l2,
            Ipv4Addr::new(203, 0, 113, 5),
            entry.ipv4,
            53,
            40000,
            64,
            &[0u8; 1000],
        );
        for _ in 0..5 {
            w.ports_mut()[1].inject(&frame);
        }
        // The full bucket (3028 bytes) lets two go at once, the rest wait for tokens.
        assert!(w.run_once(1_000) > 0);
        assert_eq!(w.ports_mut()[0].drain().len(), 2);
        assert_eq!(w.pipeline().shaped_backlog(), 3);
        let next = w.pipeline().shaper_next_wakeup_ns().unwrap();
        assert!(next > 1_000);
        assert_eq!(w.run_once(next - 2_048), 0, "idle until the release");
        assert_eq!(w.ports_mut()[0].drain().len(), 0);
        // At the release time one more leaves: 1028 bytes every 8.224 ms at 1 Mbit/s.
        assert_eq!(w.run_once(next), 1);
        assert_eq!(w.ports_mut()[0].drain().len(), 1);
        let after = w.pipeline().shaper_next_wakeup_ns().unwrap();
        assert!(
            (after - next).abs_diff(8_224_000) <= 1_024,
            "{}",
            after - next
        );
        w.publish();
        let [backlog, free, pool, unshaped] = shared.stats.qos_totals();
        assert_eq!((backlog, free, pool, unshaped), (2, 62, 64, 0));
        let q = shared.stats.qos_sessions();
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].classes.unwrap()[3].conformed_packets, 3);
        assert_eq!(shared.stats.port(0).tx_packets, 3);
        // Removal hands the queued frames back to the pool.
        shared.commands.push(SessionCommand::Remove(5)).unwrap();
        w.run_once(next + 1);
        assert_eq!(w.pipeline().qos_pool(), Some((64, 64)));
        assert_eq!(
            shared
                .removed
                .pop()
                .map(|(id, c)| (id, c.map(|c| c.dl_packets))),
            Some((5, Some(3)))
        );
    }

    /// Installs `sessions` through `group` and lets `workers` take them; returns each
    /// session's owner (both workers own some).
    fn install(
        map: &WorkerMap,
        workers: &mut [Worker<MemoryPort>],
        group: &mut WorkerGroup,
        sessions: &[SessionEntry],
    ) -> Vec<usize> {
        for e in sessions {
            assert!(group.upsert(*e));
        }
        let owners: Vec<usize> = sessions.iter().map(|e| map.owner_of_ipv4(e.ipv4)).collect();
        assert!(owners.contains(&0) && owners.contains(&1));
        for w in workers {
            w.run_once(1);
        }
        owners
    }

    /// The next hop's MAC in the two-worker tests.
    const NEXT_HOP_MAC: EthernetAddress = EthernetAddress([2, 0, 0x5e, 0, 2, 1]);

    /// Two workers over memory ports, with handoff queues of `handoff_len` frames, each
    /// pipeline knowing the next hop's MAC and then passed to `setup`; their session map and
    /// the control thread's group over them.
    fn two_workers(
        handoff_len: usize,
        setup: impl Fn(&mut Pipeline),
    ) -> (Arc<WorkerMap>, Vec<Worker<MemoryPort>>, WorkerGroup) {
        let map = Arc::new(WorkerMap::new(&crate::rss::DEFAULT_RSS_KEY, 2));
        let shared: Vec<Arc<WorkerShared>> = (0..2)
            .map(|_| Arc::new(WorkerShared::with_handoff(8, handoff_len).unwrap()))
            .collect();
        let workers =
            (0..2)
                .map(|i| {
                    let (w, _) = worker();
                    let mut pipeline = Pipeline::new(w.pipeline().config().clone(), 7);
                    pipeline.set_next_hop_mac(Some(NEXT_HOP_MAC));
                    setup(&mut pipeline);
                    let ports = vec![
                        MemoryPort::new(0, EthernetAddress([2, 0, 0, 0, 0xa0, 0])),
                        MemoryPort::new(1, CORE_MAC),
                    ];
                    Worker::new(pipeline, ports, 1, shared[i].clone(), None)
                        .with_handoff(Handoff::new(i, map.clone(), shared.clone()))
                })
                .collect();
        let group = WorkerGroup::new(&shared, map.clone(), Duration::from_millis(200));
        (map, workers, group)
    }

    /// Two workers; every frame arrives at worker 0 (a device that spreads nothing) or at the
    /// wrong worker, and still each session's frames are processed by its owner, none lost,
    /// each flow in order.
    #[test]
    fn two_workers_split_sessions_without_loss_or_reordering() {
        let (map, mut workers, mut group) = two_workers(256, |_| {});
        let sessions: Vec<SessionEntry> = (0..20u8)
            .map(|i| sub_entry(SessionId::from(i) + 1, 100 + u16::from(i), 10 + i))
            .collect();
        let owners = install(&map, &mut workers, &mut group, &sessions);
        assert_eq!(
            workers
                .iter()
                .map(|w| w.pipeline().session_count())
                .sum::<usize>(),
            20
        );

        // Five frames per session and direction, numbered in the UDP destination port.
        // Upstream all reach worker 0, downstream all reach worker 1.
        for seq in 0..5u16 {
            for e in &sessions {
                let l2 = L2Header {
                    dst: GW,
                    src: SUB_MAC,
                    svlan: None,
                    cvlan: Some(e.access.cvlan),
                    ethertype: EtherType::Ipv4,
                };
                let server = Ipv4Addr::new(203, 0, 113, 1);
                let up = build_ipv4_udp(&l2, e.ipv4, server, 7000, 5000 + seq, 64, &[0; 8]);
                workers[0].ports_mut()[0].inject(&up);
                let l2 = L2Header {
                    dst: CORE_MAC,
                    src: NEXT_HOP_MAC,
                    svlan: None,
                    cvlan: None,
                    ethertype: EtherType::Ipv4,
                };
                let down = build_ipv4_udp(&l2, server, e.ipv4, 7000, 5000 + seq, 64, &[0; 8]);
                workers[1].ports_mut()[1].inject(&down);
            }
        }
        for round in 0..20 {
            for w in &mut workers {
                w.run_once(10 + round);
            }
        }

        // (owner worker, sequence numbers) per session address, per direction.
        let mut seen: std::collections::HashMap<(bool, Ipv4Addr), (usize, Vec<u16>)> =
            std::collections::HashMap::new();
        for (index, w) in workers.iter_mut().enumerate() {
            for (port, upstream) in [(1usize, true), (0usize, false)] {
                while let Some(f) = w.ports_mut()[port].pop_sent() {
                    let (l2, l3) = L2Header::parse(&f).unwrap();
                    if l2.ethertype != EtherType::Ipv4 {
                        continue; // next-hop ARP
                    }
                    let ip = crate::wire::ipv4::Header::parse(&f[l3..]).unwrap();
                    let sub = if upstream { ip.src() } else { ip.dst() };
                    let seq = u16::from_be_bytes([f[l3 + 22], f[l3 + 23]]) - 5000;
                    let slot = seen.entry((upstream, sub)).or_insert((index, Vec::new()));
                    assert_eq!(slot.0, index, "{sub} forwarded by two workers");
                    slot.1.push(seq);
                }
            }
        }
        for (e, &owner) in sessions.iter().zip(&owners) {
            for upstream in [true, false] {
                let (by, seqs) = &seen[&(upstream, e.ipv4)];
                assert_eq!(*by, owner, "{} processed by its owner", e.ipv4);
                assert_eq!(seqs, &[0, 1, 2, 3, 4], "{} in order, none lost", e.ipv4);
            }
        }
        let handed_up = owners.iter().filter(|&&o| o == 1).count() as u64 * 5;
        let handed_down = owners.iter().filter(|&&o| o == 0).count() as u64 * 5;
        assert_eq!(workers[0].host.handoff_out, handed_up);
        assert_eq!(workers[1].host.handoff_out, handed_down);
        assert_eq!(workers[1].host.handoff_in, handed_up);
        assert_eq!(workers[0].host.handoff_in, handed_down);

        // Removal and queries reach the owner.
        let id = sessions[3].id;
        assert!(group.owner(id).is_some());
        let counters = std::thread::scope(|scope| {
            let t = scope.spawn(|| group.remove(id));
            while !t.is_finished() {
                for w in &mut workers {
                    w.run_once(100);
                }
            }
            t.join().unwrap()
        });
        assert_eq!(counters.map(|c| (c.ul_packets, c.dl_packets)), Some((5, 5)));
    }

    /// An IPv6 UDP packet from `src` port 7000 to `dst` port `dport`, checksums filled.
    fn udp6(src: std::net::Ipv6Addr, dst: std::net::Ipv6Addr, dport: u16) -> Vec<u8> {
        use crate::wire::checksum;
        let mut p = vec![0u8; 40 + 16];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&16u16.to_be_bytes());
        p[6] = 17;
        p[7] = 64;
        p[8..24].copy_from_slice(&src.octets());
        p[24..40].copy_from_slice(&dst.octets());
        p[40..42].copy_from_slice(&7000u16.to_be_bytes());
        p[42..44].copy_from_slice(&dport.to_be_bytes());
        p[44..46].copy_from_slice(&16u16.to_be_bytes());
        let ph = crate::wire::ipv6::pseudo_header(&src, &dst, 17, 16);
        let c = !checksum::fold(checksum::combine(ph, checksum::sum(&p[40..])));
        p[46..48].copy_from_slice(&c.to_be_bytes());
        p
    }

    fn ipv6_frame(l2: &L2Header, ip: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; l2.buffer_len()];
        l2.emit(&mut f);
        f.extend_from_slice(ip);
        f.resize(f.len().max(60), 0);
        f
    }

    /// With two workers, IPv6 frames (from a session's /64 and from its delegated prefix,
    /// upstream all arriving at worker 0 and downstream all at worker 1) are processed by
    /// the worker owning the session, none lost, each flow in order; the next hop's
    /// neighbour advertisement reaches both workers; a removed session's prefixes leave
    /// every worker's table.
    #[test]
    fn two_workers_steer_ipv6_to_the_session_owner() {
        use std::net::Ipv6Addr;
        const CORE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 2);
        const NH6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1);
        const SERVER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xeeee, 0, 0, 0, 0, 5);
        let (map, mut workers, mut group) = two_workers(512, |p| p.set_ipv6(CORE6, NH6));
        // Session i: 2001:db8:100:i::/64 and the delegated 2001:db8:8000:i00::/56.
        let slash64 = |i: u16| Ipv6Addr::new(0x2001, 0xdb8, 0x100, i, 0, 0, 0, 0);
        let slash56 = |i: u16| Ipv6Addr::new(0x2001, 0xdb8, 0x8000, i << 8, 0, 0, 0, 0);
        let sessions: Vec<SessionEntry> = (0..20u8)
            .map(|i| {
                let mut e = sub_entry(SessionId::from(i) + 1, 100 + u16::from(i), 10 + i);
                let n = u16::from(i);
                e.ipv6 = SessionIpv6::new(Some((slash64(n), 64)), Some((slash56(n), 56))).unwrap();
                e
            })
            .collect();
        let owners = install(&map, &mut workers, &mut group, &sessions);
        for w in &workers {
            assert_eq!(w.handoff.as_ref().unwrap().ipv6.len(), 40);
        }

        // The next hop's advertisement arrives at worker 1 only; both learn its MAC.
        let mut na = vec![0u8; 40 + 32];
        na[0] = 0x60;
        na[4..6].copy_from_slice(&32u16.to_be_bytes());
        na[6] = 58;
        na[7] = 255;
        na[8..24].copy_from_slice(&NH6.octets());
        na[24..40].copy_from_slice(&CORE6.octets());
        na[40] = 136;
        na[44] = 0xe0;
        na[48..64].copy_from_slice(&NH6.octets());
        na[64] = 2;
        na[65] = 1;
        na[66..72].copy_from_slice(&NEXT_HOP_MAC.0);
        let c = crate::wire::icmpv6::compute_checksum(&NH6, &CORE6, &na[40..]);
        na[42..44].copy_from_slice(&c.to_be_bytes());
        let core_l2 = L2Header {
            dst: CORE_MAC,
            src: NEXT_HOP_MAC,
            svlan: None,
            cvlan: None,
            ethertype: EtherType::Ipv6,
        };
        workers[1].ports_mut()[1].inject(&ipv6_frame(&core_l2, &na));
        for round in 0..3 {
            for w in &mut workers {
                w.run_once(2 + round);
            }
        }
        for w in &workers {
            assert_eq!(w.pipeline().ipv6_next_hop_mac(), Some(NEXT_HOP_MAC));
        }

        // Five frames per session and direction, numbered in the UDP destination port;
        // even ones from (to) a host of the /64, odd ones of the delegated prefix.
        let host = |i: usize, seq: u16| {
            let base = if seq.is_multiple_of(2) {
                slash64(i as u16)
            } else {
                slash56(i as u16)
            };
            Ipv6Addr::from_bits(base.to_bits() | 0x10)
        };
        for seq in 0..5u16 {
            for (i, e) in sessions.iter().enumerate() {
                let up_l2 = L2Header {
                    dst: GW,
                    src: SUB_MAC,
                    svlan: None,
                    cvlan: Some(e.access.cvlan),
                    ethertype: EtherType::Ipv6,
                };
                let up = udp6(host(i, seq), SERVER6, 5000 + seq);
                workers[0].ports_mut()[0].inject(&ipv6_frame(&up_l2, &up));
                let down = udp6(SERVER6, host(i, seq), 5000 + seq);
                workers[1].ports_mut()[1].inject(&ipv6_frame(&core_l2, &down));
            }
        }
        for round in 0..20 {
            for w in &mut workers {
                w.run_once(10 + round);
            }
        }

        // (worker, sequence numbers) per session index and direction.
        let session_of = |addr: Ipv6Addr| {
            (0..sessions.len()).find(|&i| host(i, 0) == addr || host(i, 1) == addr)
        };
        let mut seen: std::collections::HashMap<(bool, usize), (usize, Vec<u16>)> =
            std::collections::HashMap::new();
        for (index, w) in workers.iter_mut().enumerate() {
            for (port, upstream) in [(1usize, true), (0usize, false)] {
                while let Some(f) = w.ports_mut()[port].pop_sent() {
                    let (l2, l3) = L2Header::parse(&f).unwrap();
                    if l2.ethertype != EtherType::Ipv6 || f[l3 + 6] != 17 {
                        continue; // neighbour discovery
                    }
                    let addr = |at: usize| {
                        Ipv6Addr::from(<[u8; 16]>::try_from(&f[l3 + at..l3 + at + 16]).unwrap())
                    };
                    let sub = if upstream { addr(8) } else { addr(24) };
                    let i = session_of(sub).expect("a session's address");
                    let seq = u16::from_be_bytes([f[l3 + 42], f[l3 + 43]]) - 5000;
                    let slot = seen.entry((upstream, i)).or_insert((index, Vec::new()));
                    assert_eq!(slot.0, index, "session {i} forwarded by two workers");
                    slot.1.push(seq);
                }
            }
        }
        for (i, &owner) in owners.iter().enumerate() {
            for upstream in [true, false] {
                let (by, seqs) = &seen[&(upstream, i)];
                assert_eq!(*by, owner, "session {i} processed by its owner");
                assert_eq!(seqs, &[0, 1, 2, 3, 4], "session {i} in order, none lost");
            }
        }
        let handed_up = owners.iter().filter(|&&o| o == 1).count() as u64 * 5;
        let handed_down = owners.iter().filter(|&&o| o == 0).count() as u64 * 5;
        // Worker 1 also handed the advertisement to worker 0.
        assert_eq!(workers[0].host.handoff_out, handed_up);
        assert_eq!(workers[1].host.handoff_out, handed_down + 1);

        // A removed session's prefixes leave both tables; its frames then stay where they
        // arrive.
        let id = sessions[3].id;
        std::thread::scope(|scope| {
            let t = scope.spawn(|| group.remove(id));
            while !t.is_finished() {
                for w in &mut workers {
                    w.run_once(100);
                }
            }
            t.join().unwrap()
        });
        for w in &mut workers {
            w.run_once(101);
            let h = w.handoff.as_ref().unwrap();
            assert_eq!(h.ipv6.len(), 38);
            assert_eq!(h.ipv6.owner_of(host(3, 0).to_bits()), None);
            assert_eq!(h.ipv6.owner_of(host(4, 1).to_bits()), Some(owners[4]));
        }
        assert_eq!(group.ipv6_owner_changes_lost(), 0);
    }

    /// The UDP endpoints (source, source port, destination, destination port) and TTL of
    /// the untagged IPv4 frame `f`.
    fn udp4_endpoints(f: &[u8]) -> ((Ipv4Addr, u16), (Ipv4Addr, u16), u8) {
        let (_, l3) = L2Header::parse(f).unwrap();
        let ip = crate::wire::ipv4::Header::parse(&f[l3..]).unwrap();
        let port = |at: usize| u16::from_be_bytes([f[l3 + at], f[l3 + at + 1]]);
        ((ip.src(), port(20)), (ip.dst(), port(22)), f[l3 + 8])
    }

    /// With two workers each holding part of the NAT pool (as vbng-up splits it), a packet
    /// from one subscriber to another's outside mapping on the other worker is translated
    /// by the sender's worker, handed to the worker holding the destination address, and
    /// delivered to the receiving subscriber, both ways: hairpinning without a trip
    /// through the next hop.
    #[test]
    fn two_workers_hairpin_between_their_nat_pools() {
        use crate::nat::{Ipv4Prefix, Nat, NatConfig};
        const INTERNET: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
        let pool = Ipv4Prefix::new(Ipv4Addr::new(192, 0, 2, 0), 28);
        let inside = Ipv4Prefix::new(Ipv4Addr::new(100, 64, 0, 0), 10);
        let owner_map = WorkerMap::new(&crate::rss::DEFAULT_RSS_KEY, 2);
        let worker_index = std::sync::atomic::AtomicUsize::new(0);
        let (map, mut workers, mut group) = two_workers(64, |p| {
            let me = worker_index.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let cfg = NatConfig {
                block_size: 1024,
                ..NatConfig::with_pool(vec![pool])
            };
            let nat =
                Nat::with_address_filter(&cfg, 9, |a| owner_map.owner_of_ipv4(a) == me).unwrap();
            assert!(nat.addresses() > 0);
            p.set_nat(nat, vec![inside]);
        });
        let sessions: Vec<SessionEntry> = (0..20u8)
            .map(|i| sub_entry(SessionId::from(i) + 1, 100 + u16::from(i), 10 + i))
            .collect();
        let owners = install(&map, &mut workers, &mut group, &sessions);
        let on = |w: usize| sessions[owners.iter().position(|&o| o == w).unwrap()];
        let (a, b) = (on(0), on(1));
        let up = |s: &SessionEntry, dst: (Ipv4Addr, u16), sport: u16| {
            let l2 = L2Header {
                dst: GW,
                src: SUB_MAC,
                svlan: None,
                cvlan: Some(s.access.cvlan),
                ethertype: EtherType::Ipv4,
            };
            build_ipv4_udp(&l2, s.ipv4, dst.0, sport, dst.1, 64, b"hairpin")
        };
        let run = |workers: &mut [Worker<MemoryPort>]| {
            for round in 0..6 {
                for w in workers.iter_mut() {
                    w.run_once(1_000_000_000 + round);
                }
            }
        };
        // Each subscriber opens a mapping toward the Internet; both frames arrive at worker
        // 0 and leave through their owners' core ports.
        workers[0].ports_mut()[0].inject(&up(&a, (INTERNET, 53), 40000));
        workers[0].ports_mut()[0].inject(&up(&b, (INTERNET, 53), 41000));
        run(&mut workers);
        let a_out = udp4_endpoints(&workers[0].ports_mut()[1].pop_sent().unwrap()).0;
        let b_out = udp4_endpoints(&workers[1].ports_mut()[1].pop_sent().unwrap()).0;
        assert_eq!(owner_map.owner_of_ipv4(a_out.0), 0);
        assert_eq!(owner_map.owner_of_ipv4(b_out.0), 1);

        // B (worker 1) to A's outside endpoint: translated by worker 1, delivered by worker
        // 0 to A's inside endpoint, from B's outside endpoint.
        let handed = workers[1].host.handoff_out;
        workers[1].ports_mut()[0].inject(&up(&b, a_out, 41000));
        run(&mut workers);
        assert_eq!(workers[1].host.handoff_out, handed + 1);
        assert!(
            workers[1].ports_mut()[1].pop_sent().is_none(),
            "not to the next hop"
        );
        let f = workers[0].ports_mut()[0]
            .pop_sent()
            .expect("delivered to A");
        let (l2, _) = L2Header::parse(&f).unwrap();
        assert_eq!((l2.dst, l2.cvlan), (SUB_MAC, Some(a.access.cvlan)));
        assert_eq!(udp4_endpoints(&f), (b_out, (a.ipv4, 40000), 63));
        // And A answers to B's outside endpoint the other way round.
        workers[0].ports_mut()[0].inject(&up(&a, b_out, 40000));
        run(&mut workers);
        assert!(
            workers[0].ports_mut()[1].pop_sent().is_none(),
            "not to the next hop"
        );
        let f = workers[1].ports_mut()[0]
            .pop_sent()
            .expect("delivered to B");
        assert_eq!(udp4_endpoints(&f), (a_out, (b.ipv4, 41000), 63));
        // Each sender's upload counts its packet to the Internet and its hairpinned one,
        // each receiver's download the hairpinned one, in the owner's usage counters.
        let usage = |w: usize, s: &SessionEntry| {
            let c = workers[w].pipeline().session_counters(s.id).unwrap();
            (c.ul_packets, c.dl_packets)
        };
        assert_eq!((usage(0, &a), usage(1, &b)), ((2, 1), (2, 1)));
        // A datagram from B to A in two fragments: both handed over and delivered, the
        // second found through the first's passage in worker 0's NAT.
        let whole = up(&b, a_out, 41000);
        let (first, second) = crate::wire::frame::split_ipv4(&whole, 18, 8);
        let handed = workers[1].host.handoff_out;
        workers[1].ports_mut()[0].inject(&first);
        workers[1].ports_mut()[0].inject(&second);
        run(&mut workers);
        assert_eq!(workers[1].host.handoff_out, handed + 2);
        for _ in 0..2 {
            let f = workers[0].ports_mut()[0]
                .pop_sent()
                .expect("a fragment delivered to A");
            let (_, l3) = L2Header::parse(&f).unwrap();
            let ip = crate::wire::ipv4::Header::parse(&f[l3..]).unwrap();
            assert_eq!((ip.src(), ip.dst()), (b_out.0, a.ipv4));
        }
        for w in &workers {
            assert_eq!(
                w.pipeline().counters().drop_count(DropReason::NatRefused),
                0
            );
        }
    }
}
