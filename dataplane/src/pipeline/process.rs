//! [`Pipeline`]: the per-worker state and the burst loop.

use core::net::Ipv4Addr;

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

pub(super) mod ipv6;

use super::qos::{NO_SUB, QosState, SessionQosStats, Shaped};
use super::{
    BURST, Counters, DropReason, PipelineConfig, SchedulerConfig, SessionCommand, StaticRoute,
    TokenBucket, Verdict,
};
use crate::acl::{AclAction, AclId, AclSet, Direction, FlowV4, FlowV6, NO_ACL};
use crate::isa::{Isa, Kernel};
use crate::nat::{Ipv4Prefix, NO_OWNER, Nat, Outbound};
use crate::packet::{MAX_PORTS, PacketBuffer, PortId};
use crate::route::icmp_error::{
    IPV4_ERROR_MAX_LEN, IcmpErrorLimiter, Icmpv4ErrorKind, Icmpv6ErrorKind, icmpv4_error,
    icmpv4_error_eligible,
};
use crate::route::{Lpm4, NextHop, RouteError};
use crate::session::{
    AccessKey, SessionEntry, SessionError, SessionId, SessionTable, Slot, UsageCounters,
    pack_access,
};
use crate::wire::arp::{self, ArpOperation, ArpRepr};
use crate::wire::frame::{L2Header, write_arp};
use crate::wire::ipv4::{self, IpProtocol};
use crate::wire::pppoe::{self, PppProtocol, SessionRepr};
use crate::wire::{EtherType, EthernetAddress, ethernet, tcp, vlan};

/// DHCP server port (RFC 2131): subscriber frames to it go to the control plane.
const DHCP_SERVER_PORT: u16 = 67;
const NO_SLOT: Slot = Slot::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Verdict already decided in the classify stage.
    Done,
    /// Access-port IPv4 frame: look up by access key.
    Upstream,
    /// Core-port IPv4 frame: look up by destination address.
    Downstream,
}

/// Per-frame scratch state carried between the stages of one burst.
#[derive(Debug, Clone, Copy)]
struct Meta {
    stage: Stage,
    /// Offset of the IPv4 header in the frame (at most 2 tags + PPPoE: a few dozen bytes;
    /// u16 keeps the burst's scratch small).
    l3: u16,
    /// Packed access key (upstream) or destination address (downstream).
    key: u128,
    /// The key's hash in its session index.
    hash: u64,
    /// Upstream: the frame is PPP data in a PPPoE session.
    pppoe: bool,
    /// Downstream: `slot` is what the NAT mapping remembered of its session, not an
    /// index's answer; stage 3 checks it against the frame's address before use.
    hinted: bool,
    slot: Slot,
    /// Downstream with QoS: the session's shaper subscriber and whether the shaper's fast
    /// path may apply ([`QosState::lookahead`]).
    shaper: (u32, bool),
    /// With NAT: the hash of the frame's mapping key ([`Nat::prefetch_lookup`]), whose
    /// mapping stage 2 asks for; None when the frame has no mapping to look up.
    nat_hash: Option<u64>,
}

/// The positions of the set bits of `mask`, lowest first.
#[inline(always)]
fn set_bits(mut mask: u64) -> impl Iterator<Item = usize> {
    core::iter::from_fn(move || {
        let i = (mask != 0).then(|| mask.trailing_zeros() as usize)?;
        mask &= mask - 1;
        Some(i)
    })
}

const META_INIT: Meta = Meta {
    stage: Stage::Done,
    l3: 0,
    key: 0,
    hash: 0,
    nat_hash: None,
    pppoe: false,
    hinted: false,
    slot: NO_SLOT,
    shaper: (NO_SUB, false),
};

/// One worker's pipeline: configuration, session table, next-hop state, counters, and
/// optionally the QoS state (shaper, frame pool, policers).
/// Single-threaded; the host applies [`SessionCommand`]s between bursts.
#[derive(Debug)]
pub struct Pipeline {
    cfg: PipelineConfig,
    access_mask: u32,
    sessions: SessionTable,
    counters: Counters,
    /// The next hops on the core link; 0 is [`PipelineConfig::next_hop`], the default
    /// route's.
    neighbors: Vec<Neighbor>,
    /// Static routes to `neighbors` indexes; `None` while the default route is the only
    /// one, so that upstream packets skip the lookup.
    routes: Option<Box<Lpm4>>,
    /// The default next hop's MAC while it is the only next hop and resolved: the whole
    /// routing decision of an upstream packet in one load.
    direct_mac: Option<EthernetAddress>,
    redirect: TokenBucket,
    /// Redirect budget of the sessions the user plane already holds (their PPP control
    /// and IPv6 set-up): a storm of new subscribers (PADIs, DHCP) spends `redirect`
    /// and cannot starve the LCP echoes that keep established sessions up.
    session_redirect: TokenBucket,
    qos: Option<Box<QosState>>,
    /// Compiled ACLs; replaced whole by [`Pipeline::set_acls`].
    acls: Arc<AclSet>,
    /// Matches per rule of `acls`, indexed as [`AclSet::counter_labels`] says.
    acl_hits: Vec<u64>,
    /// Latest time seen (for commands applied without one).
    now_ns: u64,
    /// Bounds the ICMP errors this pipeline originates.
    icmp_limiter: IcmpErrorLimiter,
    /// IP identification of the next ICMP error.
    icmp_ident: u16,
    /// NAT44 ([`Pipeline::set_nat`]).
    nat: Option<Box<NatStage>>,
    /// IPv6 forwarding ([`Pipeline::set_ipv6`]).
    ipv6: Option<Box<ipv6::CoreIpv6>>,
    /// The instruction set bursts run on ([`Pipeline::set_isa`]).
    isa: Isa,
}

/// One call of [`Pipeline::process_burst`], as the [`Kernel`] its instruction set runs.
struct Burst<'a, B> {
    pipeline: &'a mut Pipeline,
    now_ns: u64,
    frames: &'a mut [B],
    verdicts: &'a mut [Verdict],
}

impl<B: PacketBuffer> Kernel for Burst<'_, B> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        self.pipeline
            .process_frames(self.now_ns, self.frames, self.verdicts);
    }
}

/// The pipeline's NAT: the engine and which subscriber addresses it translates.
#[derive(Debug)]
struct NatStage {
    nat: Nat,
    /// The inside prefixes as inclusive address ranges (no mask computed per packet).
    inside: Vec<(u32, u32)>,
    /// The pool's prefixes ([`Nat::pool_prefixes`]) as inclusive address ranges.
    outside: Vec<(u32, u32)>,
    /// When the engine's idle scan last ran.
    last_expire_ns: u64,
}

/// Nanoseconds between two runs of the NAT's idle scan, and the period in which the scan
/// passes every slot once: a mapping or block outlives its timeout by at most that.
const NAT_EXPIRE_EVERY_NS: u64 = 1_000_000;
const NAT_SWEEP_NS: u64 = 2_000_000_000;

impl NatStage {
    #[inline(always)]
    fn translates(&self, subscriber: Ipv4Addr) -> bool {
        in_ranges(&self.inside, subscriber)
    }

    /// The upstream IPv4 packet at `l3` of `frame`, if this NAT translates its source.
    #[inline(always)]
    fn outbound_packet<'a>(&self, frame: &'a [u8], l3: usize) -> Option<&'a [u8]> {
        let ip = frame.get(l3..)?;
        let src = ip.get(12..16)?;
        self.translates(Ipv4Addr::new(src[0], src[1], src[2], src[3]))
            .then_some(ip)
    }

    /// True for an address of the configured pool, whichever worker holds it.
    #[inline(always)]
    fn is_outside(&self, addr: Ipv4Addr) -> bool {
        in_ranges(&self.outside, addr)
    }
}

/// True if `addr` lies in one of the inclusive `ranges`.
#[inline(always)]
fn in_ranges(ranges: &[(u32, u32)], addr: Ipv4Addr) -> bool {
    let a = addr.to_bits();
    ranges.iter().any(|&(first, last)| first <= a && a <= last)
}

/// A next hop on the core link: its address and, once it answered ARP, its MAC.
#[derive(Debug, Clone, Copy)]
struct Neighbor {
    ip: Ipv4Addr,
    mac: Option<EthernetAddress>,
    last_arp_ns: Option<u64>,
}

/// Where an ICMP error about a packet goes: back to the subscriber who sent it, or out of
/// the core port to the next hop.
#[derive(Debug, Clone, Copy)]
enum ErrorPath {
    Subscriber(AccessKey),
    Core,
}

/// Room for the longest header in front of an ICMP error: Ethernet with two tags, PPPoE
/// and PPP.
const MAX_SESSION_L2: usize = ethernet::HEADER_LEN + 2 * vlan::TAG_LEN + pppoe::SESSION_HEADER_LEN;

impl Pipeline {
    /// A pipeline with an empty session table hashed with `hash_seed`, without QoS: session
    /// rates are ignored.
    pub fn new(cfg: PipelineConfig, hash_seed: u64) -> Self {
        let next_hop = cfg.next_hop;
        let access_mask = cfg
            .access_ports
            .iter()
            .filter(|p| usize::from(**p) < MAX_PORTS)
            .fold(0u32, |m, p| m | 1 << p);
        Pipeline {
            redirect: TokenBucket::new(cfg.redirect_pps),
            session_redirect: TokenBucket::new(cfg.redirect_pps),
            cfg,
            access_mask,
            sessions: SessionTable::new(hash_seed),
            counters: Counters::default(),
            neighbors: vec![Neighbor {
                ip: next_hop,
                mac: None,
                last_arp_ns: None,
            }],
            routes: None,
            direct_mac: None,
            qos: None,
            acls: Arc::new(AclSet::empty()),
            acl_hits: Vec::new(),
            now_ns: 0,
            icmp_limiter: IcmpErrorLimiter::new(
                IcmpErrorLimiter::DEFAULT_RATE,
                IcmpErrorLimiter::DEFAULT_BURST,
            ),
            icmp_ident: 0,
            nat: None,
            ipv6: None,
            isa: Isa::detect(),
        }
    }

    /// Runs bursts on `isa` instead of the widest set the CPU has ([`Isa::detect`], the
    /// default): to measure one against the other.
    pub fn set_isa(&mut self, isa: Isa) {
        self.isa = isa;
    }

    /// The instruction set bursts run on.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// A pipeline that applies session rates ([`crate::session::SessionQos`]): downstream
    /// shaping through a scheduler built from `qos` and a pool of `qos.max_packets` frame
    /// buffers (all allocated here, [`crate::packet::BUFFER_LEN`] bytes each), upstream
    /// policing. At most `qos.max_subscribers` sessions are shaped at once.
    pub fn with_qos(cfg: PipelineConfig, hash_seed: u64, qos: SchedulerConfig) -> Self {
        let mut p = Pipeline::new(cfg, hash_seed);
        p.qos = Some(Box::new(QosState::new(qos)));
        p
    }

    /// True if the pipeline was built with QoS.
    pub fn has_qos(&self) -> bool {
        self.qos.is_some()
    }

    /// Makes room for `sessions` sessions in this pipeline's table now, so that installing
    /// them never stalls the worker on a table growth ([`SessionTable::reserve`]).
    pub fn reserve_sessions(&mut self, sessions: usize) {
        self.sessions.reserve(sessions);
    }

    /// Sets the rate of the ICMP errors (time exceeded, fragmentation needed) the pipeline
    /// originates: `per_second` on average, at most `burst` back to back (RFC 1812 section
    /// 4.3.2.8). The default is Linux's, 1000 per second with bursts of 50. A burst of 0
    /// turns them off.
    pub fn set_icmp_error_rate(&mut self, per_second: u32, burst: u32) {
        self.icmp_limiter = IcmpErrorLimiter::new(per_second, burst);
    }

    /// Turns NAT44 on (between bursts): upstream packets of sessions whose address is in
    /// one of the `inside` prefixes leave with their source translated by `nat` (or, to one
    /// of its outside mappings, hairpinned down to the receiving subscriber); downstream
    /// packets to `nat`'s configured pool ([`Nat::pool_prefixes`], the addresses other
    /// workers hold included, so that a stray one is refused, not looked up as a session)
    /// are translated back before the session lookup. Refusals are counted as [`DropReason::NatRefused`] and, by
    /// cause, in the engine's counters. A session's mappings and port blocks are released
    /// when it is removed. The host drains the port-block log through
    /// [`Pipeline::nat_mut`].
    pub fn set_nat(&mut self, nat: Nat, inside: Vec<Ipv4Prefix>) {
        let outside = nat.pool_prefixes().iter().map(Ipv4Prefix::range).collect();
        self.nat = Some(Box::new(NatStage {
            nat,
            inside: inside.iter().map(Ipv4Prefix::range).collect(),
            outside,
            last_expire_ns: self.now_ns,
        }));
    }

    /// The NAT engine, if NAT is on.
    pub fn nat(&self) -> Option<&Nat> {
        self.nat.as_deref().map(|n| &n.nat)
    }

    /// The NAT engine, for draining its port-block log.
    pub fn nat_mut(&mut self) -> Option<&mut Nat> {
        self.nat.as_deref_mut().map(|n| &mut n.nat)
    }

    /// The configuration.
    pub fn config(&self) -> &PipelineConfig {
        &self.cfg
    }

    /// Replaces the ACLs (between bursts; the rule hit counters restart from 0). Sessions
    /// keep their [`crate::session::SessionEntry::acl`] ids, so `acls` must give every id in
    /// use the ACL it names ([`AclSet::build`] with the previous set keeps ids stable).
    pub fn set_acls(&mut self, acls: Arc<AclSet>) {
        self.acl_hits = vec![0; acls.counter_len()];
        self.acls = acls;
    }

    /// The ACLs in force.
    pub fn acls(&self) -> &Arc<AclSet> {
        &self.acls
    }

    /// Matches per ACL rule since the last [`Pipeline::set_acls`], indexed as
    /// [`AclSet::counter_labels`] describes.
    pub fn acl_hits(&self) -> &[u64] {
        &self.acl_hits
    }

    /// The session table (read-only; change it with [`Pipeline::apply`]).
    pub fn sessions(&self) -> &SessionTable {
        &self.sessions
    }

    /// The next hop's MAC, once learned.
    pub fn next_hop_mac(&self) -> Option<EthernetAddress> {
        self.neighbors.first().and_then(|n| n.mac)
    }

    /// Sets (or forgets) the next hop's MAC, e.g. from static configuration.
    pub fn set_next_hop_mac(&mut self, mac: Option<EthernetAddress>) {
        if let Some(n) = self.neighbors.first_mut() {
            n.mac = mac;
        }
        self.refresh_direct_mac();
    }

    fn refresh_direct_mac(&mut self) {
        self.direct_mac = match self.routes {
            None => self.neighbors.first().and_then(|n| n.mac),
            Some(_) => None,
        };
    }

    /// Replaces the static routes (between bursts). Upstream packets go to the next hop of
    /// the longest prefix that holds their destination; a route whose next hop is new is
    /// resolved by ARP like [`PipelineConfig::next_hop`], and MACs already learned are kept.
    /// Unless one of `routes` is a /0, the default route stays, through
    /// [`PipelineConfig::next_hop`] (when it is set). An upstream packet no route covers is
    /// answered with ICMP net unreachable and counted as [`DropReason::NoRoute`]. On error
    /// (more next hops than a [`NextHop`] numbers) nothing changes.
    pub fn set_routes(&mut self, routes: &[StaticRoute]) -> Result<(), RouteError> {
        let default_nh = self.cfg.next_hop;
        let known = |ip: Ipv4Addr| {
            self.neighbors
                .iter()
                .find(|n| n.ip == ip)
                .and_then(|n| n.mac)
        };
        let mut neighbors = vec![Neighbor {
            ip: default_nh,
            mac: known(default_nh),
            last_arp_ns: None,
        }];
        // Each route longer than /16 needs at most two groups of the 16-8-8 layout.
        let groups = u32::try_from(routes.len().saturating_mul(2))
            .unwrap_or(u32::MAX)
            .max(1);
        let mut table = Lpm4::with_first_stride(16, groups)?;
        let mut has_default = false;
        for r in routes {
            let index = next_hop_index(
                &mut neighbors,
                |n| n.ip == r.next_hop,
                || Neighbor {
                    ip: r.next_hop,
                    mac: known(r.next_hop),
                    last_arp_ns: None,
                },
            )?;
            table.insert(r.prefix, r.len, index)?;
            has_default |= r.len == 0;
        }
        if !has_default && default_nh != Ipv4Addr::UNSPECIFIED {
            table.insert(Ipv4Addr::UNSPECIFIED, 0, 0)?;
        }
        self.routes = if routes.is_empty() {
            None
        } else {
            Some(Box::new(table))
        };
        self.neighbors = neighbors;
        self.refresh_direct_mac();
        Ok(())
    }

    /// The MAC of the next hop toward `dst`: `Err(NoRoute)` if no route covers it,
    /// `Err(NextHopUnresolved)` while that next hop has not answered ARP. The upstream path
    /// reads `direct_mac` first and comes here only with routes or an
    /// unresolved next hop.
    #[inline(never)]
    fn routed_next_hop(&self, dst: [u8; 4]) -> Result<EthernetAddress, DropReason> {
        let index = match self.routes.as_deref() {
            None => 0,
            Some(t) => usize::from(t.lookup(Ipv4Addr::from(dst)).ok_or(DropReason::NoRoute)?),
        };
        self.neighbors
            .get(index)
            .and_then(|n| n.mac)
            .ok_or(DropReason::NextHopUnresolved)
    }

    /// True if `port` is an access port.
    #[inline]
    pub fn is_access_port(&self, port: PortId) -> bool {
        usize::from(port) < MAX_PORTS && self.access_mask & (1 << port) != 0
    }

    /// Counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Counters, writable (the host counts tx and injected frames).
    pub fn counters_mut(&mut self) -> &mut Counters {
        &mut self.counters
    }

    /// Number of sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Usage counters of session `id`.
    pub fn session_counters(&self, id: SessionId) -> Option<UsageCounters> {
        self.sessions.get(id).map(|e| e.counters)
    }

    /// Applies a session command. `Remove` returns the session's final counters (None if it
    /// did not exist); `Upsert` returns None (a rejected upsert is counted in
    /// [`Counters::session_rejects`]; use [`Pipeline::try_upsert`] to see the error).
    /// Rate changes take effect at the latest time the pipeline has seen; see
    /// [`Pipeline::apply_at`].
    pub fn apply(&mut self, cmd: SessionCommand) -> Option<UsageCounters> {
        match cmd {
            SessionCommand::Upsert(e) => {
                // Counted inside try_upsert.
                let _ = self.try_upsert(e);
                None
            }
            SessionCommand::Remove(id) => {
                if let (Some(q), Some(slot)) = (self.qos.as_mut(), self.sessions.lookup_id(id)) {
                    q.remove(slot, &mut self.counters);
                }
                let removed = self.sessions.remove(id)?;
                self.nat_release(removed.ipv4);
                Some(removed.counters)
            }
        }
    }

    /// [`Pipeline::apply`] at time `now_ns` (the clock of [`Pipeline::process_burst`]):
    /// a new or changed rate starts from a full bucket / keeps its tokens as of `now_ns`.
    pub fn apply_at(&mut self, now_ns: u64, cmd: SessionCommand) -> Option<UsageCounters> {
        self.tick(now_ns);
        self.apply(cmd)
    }

    /// Inserts or updates a session, returning why it was refused. With QoS, the entry's
    /// rates apply at once; a changed downlink rate keeps the packets already queued.
    pub fn try_upsert(&mut self, entry: SessionEntry) -> Result<(), SessionError> {
        let old_ipv4 = self.sessions.get(entry.id).map(|e| e.ipv4);
        match self.sessions.upsert(entry) {
            Ok(slot) => {
                // A session that changed address leaves its old translations behind.
                if let Some(old) = old_ipv4
                    && old != entry.ipv4
                {
                    self.nat_release(old);
                }
                if let Some(q) = self.qos.as_mut() {
                    q.configure(self.now_ns, slot, &entry, &mut self.counters);
                }
                Ok(())
            }
            Err(e) => {
                self.counters.session_rejects += 1;
                Err(e)
            }
        }
    }

    #[inline]
    fn tick(&mut self, now_ns: u64) {
        self.now_ns = self.now_ns.max(now_ns);
        if let Some(n) = self.nat.as_deref_mut() {
            let elapsed = self.now_ns - n.last_expire_ns.min(self.now_ns);
            if elapsed >= NAT_EXPIRE_EVERY_NS {
                n.last_expire_ns = self.now_ns;
                // Work in proportion to time, not to calls: the same share of the table
                // whether bursts come every microsecond or every second.
                let slots = n.nat.housekeeping_slots() as u128;
                let budget = slots * u128::from(elapsed) / u128::from(NAT_SWEEP_NS);
                n.nat.expire(
                    self.now_ns,
                    usize::try_from(budget).unwrap_or(usize::MAX) + 1,
                );
            }
        }
    }

    /// Releases the NAT mappings and port blocks of subscriber address `ipv4`.
    fn nat_release(&mut self, ipv4: Ipv4Addr) {
        let now = self.now_ns;
        if let Some(n) = self.nat.as_deref_mut()
            && n.translates(ipv4)
        {
            n.nat.release_subscriber(ipv4, now);
        }
    }

    /// Sends up to `budget` shaped frames whose subscriber's token bucket allows them at
    /// `now_ns` (strict priority for class 0, DRR among the others, round robin among
    /// subscribers) through `out(port, frame bytes)`, which returns whether the port took
    /// the frame; tx, tx errors and usage are counted here. Returns the frames dequeued.
    /// Without QoS, does nothing. Never allocates.
    pub fn drain_shaped(
        &mut self,
        now_ns: u64,
        budget: usize,
        out: &mut dyn FnMut(PortId, &[u8]) -> bool,
    ) -> usize {
        self.tick(now_ns);
        match self.qos.as_mut() {
            Some(q) if q.backlog() > 0 => {
                q.drain(now_ns, budget, &mut self.sessions, &mut self.counters, out)
            }
            _ => 0,
        }
    }

    /// Frames waiting in the shaper (0 without QoS).
    pub fn shaped_backlog(&self) -> u32 {
        self.qos.as_ref().map_or(0, |q| q.backlog())
    }

    /// When [`Pipeline::drain_shaped`] can next send something, if frames wait for tokens:
    /// the host sleeps no longer than this.
    pub fn shaper_next_wakeup_ns(&self) -> Option<u64> {
        self.qos
            .as_ref()
            .filter(|q| q.backlog() > 0)
            .and_then(|q| q.next_wakeup_ns())
    }

    /// Free and total buffers of the shaper's frame pool (None without QoS).
    pub fn qos_pool(&self) -> Option<(usize, usize)> {
        self.qos.as_ref().map(|q| q.pool())
    }

    /// QoS counters of every session that has a rate (or had one: counters survive a lifted
    /// limit until the session is removed). Empty without QoS.
    pub fn qos_stats(&self) -> impl Iterator<Item = SessionQosStats> + '_ {
        self.qos.iter().flat_map(|q| q.stats())
    }

    /// Processes `frames[..n]` in place, writing `verdicts[..n]`, where
    /// `n = min(frames.len(), verdicts.len())`. Frames with `Forward` were rewritten and are
    /// ready to send; `ToControlPlane` frames are unchanged; a `Queued` frame was moved into
    /// the shaper ([`PacketBuffer::move_into`]: a `Frame` slot holds a spare buffer, any other
    /// still holds the bytes, for its owner to free). Never panics, never allocates.
    ///
    /// The burst runs through [`PacketBuffer::process_burst`]: for a [`crate::packet::Frame`]
    /// or a DPDK slot, one copy compiled in this crate.
    #[inline(always)]
    pub fn process_burst<B: PacketBuffer>(
        &mut self,
        now_ns: u64,
        frames: &mut [B],
        verdicts: &mut [Verdict],
    ) {
        B::process_burst(self, now_ns, frames, verdicts);
    }

    /// [`Pipeline::process_burst`]'s body, compiled wherever `B` is chosen (see
    /// [`PacketBuffer::process_burst`]).
    #[inline(always)]
    pub(crate) fn run_burst<B: PacketBuffer>(
        &mut self,
        now_ns: u64,
        frames: &mut [B],
        verdicts: &mut [Verdict],
    ) {
        let isa = self.isa;
        isa.run(Burst {
            pipeline: self,
            now_ns,
            frames,
            verdicts,
        });
    }

    /// [`Pipeline::process_burst`], compiled into each instruction set's entry point.
    #[inline(always)]
    fn process_frames<B: PacketBuffer>(
        &mut self,
        now_ns: u64,
        frames: &mut [B],
        verdicts: &mut [Verdict],
    ) {
        self.tick(now_ns);
        let n = frames.len().min(verdicts.len());
        let mut start = 0;
        while start < n {
            let end = (start + BURST).min(n);
            let (f, v) = (&mut frames[start..end], &mut verdicts[start..end]);
            if self.nat.is_some() {
                self.process_chunk::<B, true>(now_ns, f, v);
            } else {
                self.process_chunk::<B, false>(now_ns, f, v);
            }
            start = end;
        }
    }

    /// One chunk of at most [`BURST`] frames; `NAT` says whether the pipeline has a NAT,
    /// so that a pipeline without one runs its stages without the NAT's tests.
    #[inline(always)]
    fn process_chunk<B: PacketBuffer, const NAT: bool>(
        &mut self,
        now_ns: u64,
        frames: &mut [B],
        verdicts: &mut [Verdict],
    ) {
        let n = frames.len().min(verdicts.len()).min(BURST);
        let mut meta = [META_INIT; BURST];
        let meta = &mut meta[..n];
        // Downstream frames to a NAT outside address (bit i: frame i). Their session is
        // known once the NAT translated them: their mapping is looked up in stages 1 and 2
        // and they are translated in stage 2a, then looked up like the others.
        let mut nat_inbound: u64 = 0;
        const _: () = assert!(BURST <= 64);
        // Stage 1: parse and classify; decide everything that needs no table lookup. Hash
        // each key and ask for its index bucket, read in stage 2; the same for NAT mappings.
        for (i, ((m, f), v)) in meta
            .iter_mut()
            .zip(frames.iter_mut())
            .zip(verdicts.iter_mut())
            .enumerate()
        {
            self.classify(now_ns, f, v, m);
            match m.stage {
                Stage::Upstream => {
                    m.hash = self.sessions.hash_access(m.key);
                    self.sessions.prefetch_access(m.hash);
                    if NAT
                        && let Some(n) = self.nat.as_deref()
                        && let Some(ip) = n.outbound_packet(f.data(), usize::from(m.l3))
                    {
                        m.nat_hash = n.nat.prefetch_lookup(ip, false);
                    }
                }
                Stage::Downstream => {
                    if NAT
                        && let Some(n) = self.nat.as_deref()
                        && n.is_outside(Ipv4Addr::from_bits(m.key as u32))
                    {
                        if let Some(ip) = f.data().get(usize::from(m.l3)..) {
                            m.nat_hash = n.nat.prefetch_lookup(ip, true);
                        }
                        nat_inbound |= 1 << i;
                        continue;
                    }
                    m.hash = self.sessions.hash_ipv4(m.key as u32);
                    self.sessions.prefetch_ipv4(m.hash);
                }
                Stage::Done => {}
            }
        }
        // The entry's second line holds the rates, which QoS reads both ways, and the
        // session id, which NAT reads upstream.
        let second_line_down = self.qos.is_some();
        let second_line_up = second_line_down || NAT;
        // Stage 2: probe, and ask for each session's entry, read in stage 3. An upstream
        // slot is a candidate until stage 3 compares the entry's key. Ask for the NAT
        // mappings the same way.
        for (i, m) in meta.iter_mut().enumerate() {
            if NAT && nat_inbound & 1 << i != 0 {
                if let (Some(n), Some(h)) = (self.nat.as_deref(), m.nat_hash) {
                    n.nat.prefetch_mapping(h, true);
                }
                continue;
            }
            m.slot = match m.stage {
                Stage::Upstream => self.sessions.access_candidate(m.hash),
                Stage::Downstream => self.sessions.find_ipv4(m.hash, m.key as u32),
                Stage::Done => None,
            }
            .unwrap_or(NO_SLOT);
            let second_line = match m.stage {
                Stage::Upstream => second_line_up,
                _ => second_line_down,
            };
            self.sessions.prefetch_entry(m.slot, second_line);
            if NAT
                && m.stage == Stage::Upstream
                && let (Some(n), Some(h)) = (self.nat.as_deref(), m.nat_hash)
            {
                n.nat.prefetch_mapping(h, false);
            }
        }
        // Stage 2a (NAT): translate the frames to inside addresses. The mapping remembers
        // its session's slot: ask for that entry, checked in stage 3. Without one, hash the
        // inside address and ask for its bucket; then probe and ask for the entry.
        if NAT && nat_inbound != 0 {
            let mut unknown: u64 = 0;
            for i in set_bits(nat_inbound) {
                let m = &mut meta[i];
                if self.nat_inbound(now_ns, &mut frames[i], &mut verdicts[i], m) {
                    if m.hinted {
                        self.sessions.prefetch_entry(m.slot, second_line_down);
                    } else {
                        m.hash = self.sessions.hash_ipv4(m.key as u32);
                        self.sessions.prefetch_ipv4(m.hash);
                        unknown |= 1 << i;
                    }
                }
            }
            for i in set_bits(unknown) {
                let m = &mut meta[i];
                m.slot = self
                    .sessions
                    .find_ipv4(m.hash, m.key as u32)
                    .unwrap_or(NO_SLOT);
                self.sessions.prefetch_entry(m.slot, second_line_down);
            }
        }
        // Stage 2b (QoS): the shapers of the burst's downstream sessions.
        if let Some(q) = self.qos.as_deref() {
            for m in meta.iter_mut() {
                if m.stage == Stage::Downstream && m.slot != NO_SLOT {
                    m.shaper = q.lookahead(m.slot);
                }
            }
        }
        // Stage 3: check and rewrite.
        for ((m, f), v) in meta.iter().zip(frames.iter_mut()).zip(verdicts.iter_mut()) {
            match m.stage {
                Stage::Done => {}
                Stage::Upstream => *v = self.upstream(now_ns, f, m),
                Stage::Downstream => *v = self.downstream(now_ns, f, m),
            }
        }
    }

    #[inline]
    fn drop(&mut self, reason: DropReason) -> Verdict {
        self.counters.count_drop(reason);
        Verdict::Drop(reason)
    }

    /// Redirects a PPPoE session's control frame: one of a session the user plane holds
    /// spends the established sessions' budget, any other (a session still negotiating,
    /// or a forged id) the shared one.
    fn redirect_session_control(
        &mut self,
        now_ns: u64,
        port: PortId,
        l2: &L2Header,
        session_id: u16,
    ) -> Verdict {
        let key = AccessKey::from_l2(port, l2).with_pppoe_session(session_id);
        let established = session_id != 0 && self.sessions.lookup_access(&key).is_some();
        self.redirect_control(now_ns, established)
    }

    /// Redirects an IPoE subscriber's control frame (ARP, DHCP, an IPv6 solicitation or
    /// DHCPv6): one from the access key of a session the user plane holds spends the
    /// established sessions' budget, so that a DHCP or ARP flood from unknown clients
    /// cannot starve a subscriber's lease renewals and gateway resolution; any other the
    /// shared one.
    #[cold]
    fn redirect_ipoe_control(&mut self, now_ns: u64, port: PortId, l2: &L2Header) -> Verdict {
        let key = AccessKey::from_l2(port, l2);
        let established = self.sessions.lookup_access(&key).is_some();
        self.redirect_control(now_ns, established)
    }

    /// A control frame to the control plane, through the established sessions' budget or
    /// (for anything else) the shared one.
    fn redirect_control(&mut self, now_ns: u64, established: bool) -> Verdict {
        if !established {
            return self.redirect(now_ns);
        }
        if self.session_redirect.take(now_ns) {
            self.counters.redirected += 1;
            Verdict::ToControlPlane
        } else {
            self.drop(DropReason::RedirectRateLimited)
        }
    }

    #[inline]
    fn redirect(&mut self, now_ns: u64) -> Verdict {
        if self.redirect.take(now_ns) {
            self.counters.redirected += 1;
            Verdict::ToControlPlane
        } else {
            self.drop(DropReason::RedirectRateLimited)
        }
    }

    #[inline(always)]
    fn classify<B: PacketBuffer>(
        &mut self,
        now_ns: u64,
        frame: &mut B,
        out: &mut Verdict,
        m: &mut Meta,
    ) {
        let port = frame.port();
        self.counters.count_rx(port, frame.len());
        if self.classify_fast(frame.data(), port, m).is_none() {
            *m = self.classify_slow(now_ns, frame, out);
        }
    }

    /// A downstream packet to one of the NAT's outside addresses (stage 1 checked that):
    /// translated back to the inside endpoint, which becomes the key of its session lookup;
    /// dropped as [`DropReason::NatRefused`] without a mapping, or answered with time
    /// exceeded, untranslated, when its TTL is spent (false: the stage is then done).
    #[inline(never)]
    fn nat_inbound<B: PacketBuffer>(
        &mut self,
        now_ns: u64,
        frame: &mut B,
        out: &mut Verdict,
        m: &mut Meta,
    ) -> bool {
        let l3 = usize::from(m.l3);
        // A packet that dies here is answered as it arrived. Translated first, its error
        // would quote the subscriber's inside address and port to the Internet sender.
        if frame.data().get(l3 + 8).is_some_and(|ttl| *ttl <= 1) {
            m.stage = Stage::Done;
            *out = self.time_exceeded_to_core(now_ns, frame, l3);
            return false;
        }
        let Some(n) = self.nat.as_deref_mut() else {
            return true;
        };
        let translated = match frame.data_mut().get_mut(l3..) {
            Some(ip) => n.nat.translate_inbound(now_ns, ip).ok(),
            None => None,
        };
        match translated {
            Some(t) => {
                m.key = u128::from(t.inside.to_bits());
                if t.owner != NO_OWNER {
                    (m.slot, m.hinted) = (t.owner, true);
                }
                true
            }
            None => {
                m.stage = Stage::Done;
                *out = self.drop(DropReason::NatRefused);
                false
            }
        }
    }

    /// The common cases of [`Pipeline::classify`] without building an [`L2Header`]: a valid
    /// IPv4 packet for the core MAC on the core port, or a valid IPv4 packet (not DHCP to
    /// the server) on an access port, untagged, with one tag or QinQ, for an access port also
    /// in a PPPoE session. Writes into `m` (which holds [`META_INIT`]) exactly the [`Meta`]
    /// the general path would, or returns None, `m` untouched, for everything else (which
    /// the general path then handles: drops, redirects, ARP).
    #[inline(always)]
    fn classify_fast(&self, data: &[u8], port: PortId, m: &mut Meta) -> Option<()> {
        const IPV4: u16 = 0x0800;
        const PPPOE_SESSION: u16 = 0x8864;
        const CTAG: u16 = 0x8100;
        const STAG: u16 = 0x88a8;
        let eth = data.first_chunk::<{ ethernet::HEADER_LEN }>()?;
        let be16 = |b: &[u8], at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
        // As `L2Header::parse`: (ethertype, svlan, cvlan, l3), absent tags as 0.
        let t0 = be16(eth, 12);
        let (ethertype, svlan, cvlan, l3) = if t0 != CTAG && t0 != STAG {
            (t0, 0, 0, ethernet::HEADER_LEN)
        } else {
            let tags = data.get(..ethernet::HEADER_LEN + 2 * vlan::TAG_LEN);
            let tag = data.get(..ethernet::HEADER_LEN + vlan::TAG_LEN)?;
            let vid0 = be16(tag, 14) & vlan::VID_MASK;
            let t1 = be16(tag, 16);
            if t1 == STAG {
                return None;
            }
            if t1 != CTAG {
                let l3 = ethernet::HEADER_LEN + vlan::TAG_LEN;
                if t0 == STAG {
                    (t1, vid0, 0, l3)
                } else {
                    (t1, 0, vid0, l3)
                }
            } else {
                let tags = tags?;
                let t2 = be16(tags, 20);
                if t2 == CTAG || t2 == STAG {
                    return None;
                }
                let vid1 = be16(tags, 18) & vlan::VID_MASK;
                (t2, vid0, vid1, ethernet::HEADER_LEN + 2 * vlan::TAG_LEN)
            }
        };
        if port == self.cfg.core_port {
            if ethertype != IPV4 || eth[..6] != self.cfg.core_mac.0 {
                return None;
            }
            let h = valid_ipv4(data, l3)?;
            m.stage = Stage::Downstream;
            m.key = u128::from(h.dst().to_bits());
            m.l3 = l3 as u16;
            return Some(());
        }
        if !self.is_access_port(port) {
            return None;
        }
        // The source MAC is bytes 6..12: the low 48 bits of the big-endian word at 4.
        let mac48 = u64::from_be_bytes([
            eth[4], eth[5], eth[6], eth[7], eth[8], eth[9], eth[10], eth[11],
        ]);
        let key = |pppoe_session| pack_access(port, svlan, cvlan, mac48, pppoe_session);
        match ethertype {
            IPV4 => {
                valid_ipv4(data, l3)?;
                if is_dhcp_to_server(&data[l3..]) {
                    return None;
                }
                m.key = key(0);
                m.l3 = l3 as u16;
            }
            PPPOE_SESSION => {
                let h = data.get(l3..).and_then(|b| pppoe::Header::parse(b).ok())?;
                let (session_id, ppp_len) = (h.session_id(), h.payload_len());
                if h.protocol() != PppProtocol::Ipv4 || session_id == 0 {
                    return None;
                }
                let ip = l3 + pppoe::SESSION_HEADER_LEN;
                let ih = valid_ipv4(data, ip)?;
                if usize::from(ih.total_len()) > ppp_len {
                    return None;
                }
                m.key = key(session_id);
                m.l3 = ip as u16;
                m.pppoe = true;
            }
            _ => return None,
        }
        m.stage = Stage::Upstream;
        Some(())
    }

    /// [`Pipeline::classify`] for every frame (after the receive counter).
    #[inline(never)]
    fn classify_slow<B: PacketBuffer>(
        &mut self,
        now_ns: u64,
        frame: &mut B,
        out: &mut Verdict,
    ) -> Meta {
        let port = frame.port();
        let mut m = META_INIT;
        let Ok((l2, l3)) = L2Header::parse(frame.data()) else {
            *out = self.drop(DropReason::Malformed);
            return m;
        };
        if port == self.cfg.core_port {
            match l2.ethertype {
                EtherType::Arp => *out = self.core_arp(frame, &l2, l3),
                EtherType::Ipv4 => {
                    if l2.dst != self.cfg.core_mac {
                        *out = self.drop(DropReason::NotForUs);
                        return m;
                    }
                    match valid_ipv4(frame.data(), l3) {
                        Some(h) => {
                            m.stage = Stage::Downstream;
                            m.key = u128::from(h.dst().to_bits());
                            m.l3 = l3 as u16;
                        }
                        None => *out = self.drop(DropReason::Malformed),
                    }
                }
                EtherType::Ipv6 => {
                    *out = self.core_ipv6(now_ns, frame, &l2, l3);
                }
                _ => *out = self.drop(DropReason::UnsupportedEtherType),
            }
        } else if self.is_access_port(port) {
            match l2.ethertype {
                EtherType::Arp => *out = self.redirect_ipoe_control(now_ns, port, &l2),
                EtherType::PppoeDiscovery => *out = self.redirect(now_ns),
                EtherType::PppoeSession => {
                    if let Some((ip, key, ppp_len)) = ipv6_in_pppoe(frame.data(), port, &l2, l3) {
                        *out = self.access_ipv6(now_ns, frame, ip, key, Some(ppp_len));
                    } else if let Some(v) =
                        self.classify_pppoe(now_ns, frame.data(), port, &l2, l3, &mut m)
                    {
                        *out = v;
                    }
                }
                EtherType::Ipv4 => match valid_ipv4(frame.data(), l3) {
                    Some(_) if is_dhcp_to_server(&frame.data()[l3..]) => {
                        *out = self.redirect_ipoe_control(now_ns, port, &l2);
                    }
                    Some(_) => {
                        m.stage = Stage::Upstream;
                        m.key = AccessKey::from_l2(port, &l2).pack();
                        m.l3 = l3 as u16;
                    }
                    None => *out = self.drop(DropReason::Malformed),
                },
                EtherType::Ipv6 => {
                    if is_ipv6_control(frame.data().get(l3..).unwrap_or(&[])) {
                        // Router and neighbour solicitations, DHCPv6: the control plane's.
                        *out = self.redirect_ipoe_control(now_ns, port, &l2);
                    } else {
                        let key = AccessKey::from_l2(port, &l2).pack();
                        *out = self.access_ipv6(now_ns, frame, l3, key, None);
                    }
                }
                _ => *out = self.drop(DropReason::UnsupportedEtherType),
            }
        } else {
            *out = self.drop(DropReason::NotForUs);
        }
        m
    }

    /// A PPPoE session frame on an access port (RFC 2516 section 4): PPP control protocols
    /// go to the control plane, IPv4 data continues to the upstream stage with the PPPoE
    /// session in its key (the verdict is `None` then), anything else is dropped.
    fn classify_pppoe(
        &mut self,
        now_ns: u64,
        data: &[u8],
        port: PortId,
        l2: &L2Header,
        l3: usize,
        m: &mut Meta,
    ) -> Option<Verdict> {
        let Some(h) = data.get(l3..).and_then(|b| pppoe::Header::parse(b).ok()) else {
            return Some(self.drop(DropReason::Malformed));
        };
        let protocol = h.protocol();
        let session_id = h.session_id();
        if protocol.is_control() {
            return Some(self.redirect_session_control(now_ns, port, l2, session_id));
        }
        if protocol == PppProtocol::Ipv6 {
            // The session's IPv6 set-up (router and neighbour solicitations, DHCPv6) is the
            // control plane's; the rest is data.
            let ip = l3 + pppoe::SESSION_HEADER_LEN;
            if is_ipv6_control(data.get(ip..).unwrap_or(&[])) {
                return Some(self.redirect_session_control(now_ns, port, l2, session_id));
            }
            // Data: taken before this function ([`ipv6_in_pppoe`]); session id 0 left.
            return Some(self.drop(DropReason::Malformed));
        }
        if protocol != PppProtocol::Ipv4 {
            return Some(self.drop(DropReason::UnsupportedPppProtocol));
        }
        let (session_id, ppp_len) = (h.session_id(), h.payload_len());
        let ip = l3 + pppoe::SESSION_HEADER_LEN;
        // Session id 0 would alias the IPoE key of the same MAC; RFC 2516 reserves it
        // (and 0xffff) for the discovery stage.
        match valid_ipv4(data, ip) {
            Some(h) if session_id != 0 && usize::from(h.total_len()) <= ppp_len => {
                m.stage = Stage::Upstream;
                m.key = AccessKey::from_l2(port, l2)
                    .with_pppoe_session(session_id)
                    .pack();
                m.l3 = ip as u16;
                m.pppoe = true;
                None
            }
            _ => Some(self.drop(DropReason::Malformed)),
        }
    }

    #[inline(always)]
    fn upstream<B: PacketBuffer>(&mut self, now_ns: u64, frame: &mut B, m: &Meta) -> Verdict {
        let found = if m.slot == NO_SLOT {
            None
        } else {
            self.sessions.confirm_access(m.slot, m.key)
        };
        let Some((slot, entry)) = found else {
            if m.pppoe {
                // PPP data can only belong to a session the control plane installed.
                return self.drop(DropReason::NoSession);
            }
            // Unknown subscriber: the control plane decides (DHCP, PPPoE, or nothing).
            return self.redirect(now_ns);
        };
        let (sess_ip, gate_open, mss_clamp, acl) =
            (entry.ipv4, entry.gate_open, entry.mss_clamp, entry.acl);
        // Without QoS the entry's second line (its rates) is never read.
        let policed = self.qos.is_some() && entry.qos.ul_rate_bps.is_some();
        let l3 = usize::from(m.l3);
        let data = frame.data();
        if data.get(..6) != Some(&self.cfg.gateway_mac.0[..]) {
            return self.drop(DropReason::NotForUs);
        }
        // Validated (checksum included) in the classify stage: only its fields are read.
        let Some(h) = ipv4_fields(data, l3) else {
            return self.drop(DropReason::Malformed);
        };
        if h.src != sess_ip.octets() {
            return self.drop(DropReason::AntiSpoof);
        }
        if !gate_open {
            return self.drop(DropReason::GateClosed);
        }
        if !acls_permit(
            &self.acls,
            &mut self.acl_hits,
            acl,
            Direction::Ingress,
            &data[l3..],
        ) {
            return self.drop(DropReason::AclDenied);
        }
        if h.ttl <= 1 {
            let (kind, reason) = (Icmpv4ErrorKind::TimeExceeded, DropReason::TtlExceeded);
            return self.icmp_error_to_subscriber(now_ns, frame, l3, slot, kind, reason);
        }
        // One branch without NAT: everything else is out of line.
        if self.nat.is_some() {
            match self.nat_outbound(now_ns, frame, l3, slot, sess_ip) {
                Ok(None) => {}
                Ok(Some(hairpin)) => {
                    return self.hairpin(now_ns, frame, &hairpin, slot, h.total_len);
                }
                Err(v) => return v,
            }
        }
        let routed = match self.direct_mac {
            Some(mac) => Ok(mac),
            None => {
                let dst = frame.data().get(l3 + 16..l3 + 20).unwrap_or(&[0; 4]);
                self.routed_next_hop([dst[0], dst[1], dst[2], dst[3]])
            }
        };
        let nh_mac = match routed {
            Ok(mac) => mac,
            Err(DropReason::NoRoute) => {
                let (kind, reason) = (Icmpv4ErrorKind::NetUnreachable, DropReason::NoRoute);
                return self.icmp_error_to_subscriber(now_ns, frame, l3, slot, kind, reason);
            }
            Err(reason) => return self.drop(reason),
        };
        let departure = Departure {
            slot,
            total: usize::from(h.total_len),
            nh_mac,
            policed,
            mss_clamp,
            ipv6: false,
        };
        self.depart(now_ns, frame, l3, departure)
    }

    /// The end of the upstream stage, both IP versions: the packet at `frame.data()[l3..]`
    /// (`d.total` bytes) passes the session's policer if `d.policed`, loses its Ethernet
    /// padding, has its TTL or hop limit decremented (and MSS clamped), and its tagged
    /// header (and the PPPoE and PPP headers of a PPPoE session) is replaced by an untagged
    /// one to the next hop, ending right before the IP header.
    #[inline(always)]
    fn depart<B: PacketBuffer>(
        &mut self,
        now_ns: u64,
        frame: &mut B,
        l3: usize,
        d: Departure,
    ) -> Verdict {
        let Departure {
            slot,
            total,
            nh_mac,
            policed,
            mss_clamp,
            ipv6,
        } = d;
        if policed && !self.passes_upload_policer(now_ns, slot, total) {
            return self.drop(DropReason::Policed);
        }
        frame.truncate(l3 + total);
        let ethertype = if ipv6 {
            ipv6::rewrite_ipv6(frame.data_mut(), l3, mss_clamp);
            EtherType::Ipv6
        } else {
            rewrite_ipv4(frame.data_mut(), l3, mss_clamp);
            EtherType::Ipv4
        };
        frame.pull_front(l3 - ethernet::HEADER_LEN);
        let Some(eth) = frame
            .data_mut()
            .first_chunk_mut::<{ ethernet::HEADER_LEN }>()
        else {
            return self.drop(DropReason::Malformed);
        };
        eth[0..6].copy_from_slice(&nh_mac.0);
        eth[6..12].copy_from_slice(&self.cfg.core_mac.0);
        eth[12..14].copy_from_slice(&u16::from(ethertype).to_be_bytes());
        self.count_upload(slot, total);
        self.counters.ul_forwarded += 1;
        Verdict::Forward(self.cfg.core_port)
    }

    /// The QoS lookahead of a downstream frame's session in `slot` (none without QoS or
    /// a session).
    #[inline(always)]
    fn shaper_of(&self, slot: Slot) -> (u32, bool) {
        match self.qos.as_deref() {
            Some(q) if slot != NO_SLOT => q.lookahead(slot),
            _ => META_INIT.shaper,
        }
    }

    /// `m` with the IPv4 index's slot in place of a hinted slot that no longer holds the
    /// frame's address, and that slot's QoS lookahead.
    #[cold]
    #[inline(never)]
    fn rehint(&self, m: &Meta) -> Meta {
        let ip = Ipv4Addr::from_bits(m.key as u32);
        let slot = self.sessions.lookup_ipv4(ip).unwrap_or(NO_SLOT);
        Meta {
            hinted: false,
            slot,
            shaper: self.shaper_of(slot),
            ..*m
        }
    }

    // Inlined at both call sites (the burst loop and a hairpinned upstream packet), as
    // `upstream` is: outlined, the two cost the burst loop 27 instructions a packet.
    #[inline(always)]
    fn downstream<B: PacketBuffer>(&mut self, now_ns: u64, frame: &mut B, m: &Meta) -> Verdict {
        // A hinted slot must hold a live session of the frame's address; the index's slot
        // replaces one that does not.
        let rehinted;
        let m = if m.hinted && !self.sessions.holds_ipv4(m.slot, m.key as u32) {
            rehinted = self.rehint(m);
            &rehinted
        } else {
            m
        };
        // The slot came from the IPv4 index in this burst, or was checked (or is NO_SLOT).
        let Some(entry) = self.sessions.indexed_entry(m.slot) else {
            return self.drop(DropReason::NoSession);
        };
        let (access, gate_open) = (entry.access, entry.gate_open);
        let (mtu, mss_clamp, acl) = (entry.mtu, entry.mss_clamp, entry.acl);
        // Shaped: the session has a downlink rate, or a lifted limit is still draining (its
        // new frames queue behind the old ones to keep their order).
        let shaped = self
            .qos
            .as_ref()
            .is_some_and(|q| entry.qos.dl_rate_bps.is_some() || q.any_draining());
        if !gate_open {
            return self.drop(DropReason::GateClosed);
        }
        let l3 = usize::from(m.l3);
        // Validated (checksum included) in the classify stage: only its fields are read.
        let Some(h) = ipv4_fields(frame.data(), l3) else {
            return self.drop(DropReason::Malformed);
        };
        if !acls_permit(
            &self.acls,
            &mut self.acl_hits,
            acl,
            Direction::Egress,
            &frame.data()[l3..],
        ) {
            return self.drop(DropReason::AclDenied);
        }
        if h.ttl <= 1 {
            return self.time_exceeded_to_core(now_ns, frame, l3);
        }
        let total = usize::from(h.total_len);
        if mtu != 0 && total > usize::from(mtu) {
            // RFC 1191: a packet that may not be fragmented is answered with the MTU it
            // must fit; the others are dropped (the user plane does not fragment).
            let dont_fragment = frame.data().get(l3 + 6).is_some_and(|f| f & 0x40 != 0);
            if dont_fragment {
                let kind = Icmpv4ErrorKind::FragmentationNeeded { next_hop_mtu: mtu };
                return self.icmp_error(
                    now_ns,
                    frame,
                    l3,
                    kind,
                    ErrorPath::Core,
                    DropReason::MtuExceeded,
                );
            }
            return self.drop(DropReason::MtuExceeded);
        }
        let dscp = h.tos >> 2;
        self.deliver(
            now_ns,
            frame,
            m,
            l3,
            Delivery {
                access,
                total,
                dscp,
                mss_clamp,
                shaped,
                ipv6: false,
            },
        )
    }

    /// The end of the downstream stage, both IP versions: the packet at `frame.data()[l3..]`
    /// (`d.total` bytes) loses its Ethernet padding, has its TTL or hop limit decremented
    /// (and MSS clamped), gets the session's L2 headers and leaves for the subscriber,
    /// through the shaper if `d.shaped`.
    #[inline(always)]
    fn deliver<B: PacketBuffer>(
        &mut self,
        now_ns: u64,
        frame: &mut B,
        m: &Meta,
        l3: usize,
        d: Delivery,
    ) -> Verdict {
        let Delivery {
            access,
            total,
            dscp,
            mss_clamp,
            shaped,
            ipv6,
        } = d;
        frame.truncate(l3 + total);
        if ipv6 {
            ipv6::rewrite_ipv6(frame.data_mut(), l3, mss_clamp);
        } else {
            rewrite_ipv4(frame.data_mut(), l3, mss_clamp);
        }
        // A PPPoE session's packets carry the PPPoE session header and PPP protocol between
        // the Ethernet header and the IP packet (RFC 2516 section 5.4).
        let (l2_len, new_len) = session_l2_len(&access);
        if new_len > l3 {
            if frame.push_front(new_len - l3).is_none() {
                return self.drop(DropReason::Malformed);
            }
        } else {
            frame.pull_front(l3 - new_len);
        }
        let Some(hdr) = frame.data_mut().get_mut(..new_len) else {
            return self.drop(DropReason::Malformed);
        };
        write_session_l2(
            hdr,
            &access,
            self.cfg.gateway_mac,
            l2_len,
            total as u16,
            ipv6,
        );
        if shaped && let Some(q) = self.qos.as_mut() {
            match q.enqueue(now_ns, m.shaper, frame, total as u32, dscp, access.port) {
                // Usage and forwarding are counted when the frame leaves the shaper.
                Shaped::Queued => return Verdict::Queued,
                Shaped::Full => return self.drop(DropReason::QosQueueFull),
                Shaped::Bypass | Shaped::Conformed => {}
            }
        }
        self.sessions.count_usage(m.slot, |c| {
            c.dl_packets += 1;
            c.dl_bytes += total as u64;
        });
        self.counters.dl_forwarded += 1;
        Verdict::Forward(access.port)
    }

    /// A hairpinned packet (`total` bytes of IP) as its sender's upload, in `slot`: it
    /// passes the sender's policer, as it would on its way to the core, and counts in the
    /// sender's upload usage; its receiver's download counts it on the downstream path.
    /// False if the policer drops it.
    #[cold]
    fn sender_upload(&mut self, now_ns: u64, slot: Slot, total: usize) -> bool {
        let policed = self
            .sessions
            .entry(slot)
            .is_some_and(|e| e.qos.ul_rate_bps.is_some());
        if policed && !self.passes_upload_policer(now_ns, slot, total) {
            return false;
        }
        self.count_upload(slot, total);
        true
    }

    /// The upstream policer of the session in `slot` (one with an upload rate) for a
    /// packet of `total` bytes of IP: false if it drops the packet.
    #[inline(always)]
    fn passes_upload_policer(&mut self, now_ns: u64, slot: Slot, total: usize) -> bool {
        match self.qos.as_mut() {
            Some(q) => q.police(now_ns, slot, total as u32),
            None => true,
        }
    }

    /// A packet of `total` bytes of IP in the upload usage of the session in `slot`.
    #[inline(always)]
    fn count_upload(&mut self, slot: Slot, total: usize) {
        self.sessions.count_usage(slot, |c| {
            c.ul_packets += 1;
            c.ul_bytes += total as u64;
        });
    }

    /// A hairpinned packet ([`Pipeline::nat_outbound`]) of `total` bytes of IP, from the
    /// session in `sender`, takes the downstream path once it passed as the sender's
    /// upload. Out of line, so that the upstream path does not carry a second copy of the
    /// downstream one.
    #[inline(never)]
    fn hairpin<B: PacketBuffer>(
        &mut self,
        now_ns: u64,
        frame: &mut B,
        m: &Meta,
        sender: Slot,
        total: u16,
    ) -> Verdict {
        if !self.sender_upload(now_ns, sender, usize::from(total)) {
            return self.drop(DropReason::Policed);
        }
        self.downstream(now_ns, frame, m)
    }

    /// Translates the source of the upstream packet at `frame.data()[l3..]` of the session in
    /// `slot`, whose address is `inside`, if the NAT translates that address. `Ok(None)`: on
    /// to the core. `Ok(Some(meta))`: it was addressed to another subscriber's outside
    /// mapping and now goes down to that subscriber, as `meta` says. `Err`: the verdict of a
    /// refused packet.
    #[inline(never)]
    fn nat_outbound<B: PacketBuffer>(
        &mut self,
        now_ns: u64,
        frame: &mut B,
        l3: usize,
        slot: Slot,
        inside: Ipv4Addr,
    ) -> Result<Option<Meta>, Verdict> {
        // The NAT logs port blocks by session id (in the entry's second line).
        let tag = match self.sessions.indexed_entry(slot) {
            Some(e) => e.id,
            None => return Ok(None),
        };
        let Some(n) = self.nat.as_deref_mut() else {
            return Ok(None);
        };
        if !n.translates(inside) {
            return Ok(None);
        }
        let translated = match frame.data_mut().get_mut(l3..) {
            Some(ip) => n
                .nat
                .translate_outbound_owned(now_ns, inside, tag, slot, ip)
                .ok(),
            None => None,
        };
        match translated {
            Some(Outbound::Forward) => Ok(None),
            Some(Outbound::HairpinElsewhere) => {
                Err(self.hairpin_elsewhere(now_ns, frame, l3, slot))
            }
            Some(Outbound::Hairpin {
                inside: to, owner, ..
            }) => {
                let slot = self
                    .sessions
                    .confirm_ipv4(owner, to.to_bits())
                    .unwrap_or(NO_SLOT);
                Ok(Some(Meta {
                    stage: Stage::Downstream,
                    l3: l3 as u16,
                    key: u128::from(to.to_bits()),
                    slot,
                    shaper: self.shaper_of(slot),
                    ..META_INIT
                }))
            }
            None => Err(self.drop(DropReason::NatRefused)),
        }
    }

    /// An upstream packet, its source translated, addressed to an outside mapping of
    /// another worker's NAT ([`Outbound::HairpinElsewhere`]): rewritten as if it had come
    /// from the next hop on the core port (untagged, to the core MAC), for the worker owning
    /// that address to translate back and deliver ([`Verdict::Handoff`]). Its TTL is left
    /// to that worker's downstream stage, so that a packet hairpinned across workers loses
    /// one, as one hairpinned within a worker does.
    #[cold]
    #[inline(never)]
    fn hairpin_elsewhere<B: PacketBuffer>(
        &mut self,
        now_ns: u64,
        frame: &mut B,
        l3: usize,
        slot: Slot,
    ) -> Verdict {
        let Some(h) = ipv4_fields(frame.data(), l3) else {
            return self.drop(DropReason::Malformed);
        };
        if !self.sender_upload(now_ns, slot, usize::from(h.total_len)) {
            return self.drop(DropReason::Policed);
        }
        frame.truncate(l3 + usize::from(h.total_len));
        frame.pull_front(l3 - ethernet::HEADER_LEN);
        let core_mac = self.cfg.core_mac;
        let Some(eth) = frame
            .data_mut()
            .first_chunk_mut::<{ ethernet::HEADER_LEN }>()
        else {
            return self.drop(DropReason::Malformed);
        };
        eth[0..6].copy_from_slice(&core_mac.0);
        eth[6..12].copy_from_slice(&core_mac.0);
        eth[12..14].copy_from_slice(&u16::from(EtherType::Ipv4).to_be_bytes());
        Verdict::Handoff(self.cfg.core_port)
    }

    /// [`Pipeline::icmp_error`] (or its IPv6 twin) for an upstream packet of the session in
    /// `slot`: the error goes back to that subscriber (only the drop is counted if the slot
    /// went empty).
    #[inline(never)]
    fn icmp_error_to_subscriber<B: PacketBuffer>(
        &mut self,
        now_ns: u64,
        frame: &mut B,
        l3: usize,
        slot: Slot,
        kind: impl Into<AnyIcmpError>,
        reason: DropReason,
    ) -> Verdict {
        let Some(access) = self.sessions.entry(slot).map(|e| e.access) else {
            return self.drop(reason);
        };
        let back = ErrorPath::Subscriber(access);
        match kind.into() {
            AnyIcmpError::V4(kind) => self.icmp_error(now_ns, frame, l3, kind, back, reason),
            AnyIcmpError::V6(kind) => {
                self.icmpv6_error_reply(now_ns, frame, l3, kind, back, reason)
            }
        }
    }

    /// ICMP time exceeded toward the core for the downstream packet at `l3` (its TTL is
    /// spent), see [`Pipeline::icmp_error`].
    fn time_exceeded_to_core<B: PacketBuffer>(
        &mut self,
        now_ns: u64,
        frame: &mut B,
        l3: usize,
    ) -> Verdict {
        self.icmp_error(
            now_ns,
            frame,
            l3,
            Icmpv4ErrorKind::TimeExceeded,
            ErrorPath::Core,
            DropReason::TtlExceeded,
        )
    }

    /// Answers an IPv4 packet the pipeline will not forward (at `frame.data()[l3..]`, as
    /// received) with the ICMP error `kind`, from the core address to the packet's source,
    /// written over the frame: the packet is counted as dropped for `reason`, and the
    /// verdict sends its buffer, now holding the error, back along `back`. No error (the
    /// verdict is the drop) for a packet that may not be answered (RFC 1812 section
    /// 4.3.2.7: ICMP errors, non-first fragments, broadcast and multicast), beyond the
    /// rate limit, or toward an unresolved next hop.
    #[inline(never)]
    fn icmp_error<B: PacketBuffer>(
        &mut self,
        now_ns: u64,
        frame: &mut B,
        l3: usize,
        kind: Icmpv4ErrorKind,
        back: ErrorPath,
        reason: DropReason,
    ) -> Verdict {
        let dropped = self.drop(reason);
        let Some(original) = frame.data().get(l3..) else {
            return dropped;
        };
        if icmpv4_error_eligible(original).is_err() {
            return dropped;
        }
        // Toward the core, the error goes where a packet to the original's source would.
        let source = [original[12], original[13], original[14], original[15]];
        let Some(out) = self.icmp_error_out(now_ns, back, |p| p.routed_next_hop(source).ok())
        else {
            return dropped;
        };
        let mut buf = [0u8; MAX_SESSION_L2 + IPV4_ERROR_MAX_LEN];
        let ident = self.icmp_ident;
        let Some(Ok(ip_len)) = buf
            .get_mut(out.hdr_len..)
            .map(|o| icmpv4_error(kind, original, self.cfg.core_ipv4, ident, o))
        else {
            return dropped;
        };
        self.icmp_ident = ident.wrapping_add(1);
        self.send_icmp_error(frame, &mut buf, &out, ip_len, false)
            .unwrap_or(dropped)
    }

    /// Where an ICMP error (v4 or v6) leaves along `back`, after the rate limit: None if
    /// toward the core the next hop is unresolved (`core_next_hop`, asked only then, gives
    /// its MAC) or the limit is reached (counted).
    fn icmp_error_out(
        &mut self,
        now_ns: u64,
        back: ErrorPath,
        core_next_hop: impl FnOnce(&Self) -> Option<EthernetAddress>,
    ) -> Option<ErrorOut> {
        let out = match back {
            ErrorPath::Subscriber(access) => {
                let (l2_len, hdr_len) = session_l2_len(&access);
                ErrorOut {
                    back,
                    port: access.port,
                    l2_len,
                    hdr_len,
                    nh_mac: EthernetAddress::ZERO,
                }
            }
            ErrorPath::Core => ErrorOut {
                back,
                port: self.cfg.core_port,
                l2_len: ethernet::HEADER_LEN,
                hdr_len: ethernet::HEADER_LEN,
                nh_mac: core_next_hop(self)?,
            },
        };
        if !self.icmp_limiter.allow(now_ns) {
            self.counters.icmp_errors_rate_limited += 1;
            return None;
        }
        Some(out)
    }

    /// Writes the L2 headers of `out` in front of the `ip_len`-byte ICMP error (an IPv6 one
    /// if `ipv6`) built at `buf[out.hdr_len..]`, and makes the frame hold it: grown at the
    /// front (the quote and the new headers may be longer than a short original) or cut at
    /// the end. The verdict that sends it, or None if the frame cannot grow that much.
    fn send_icmp_error<B: PacketBuffer>(
        &mut self,
        frame: &mut B,
        buf: &mut [u8],
        out: &ErrorOut,
        ip_len: usize,
        ipv6: bool,
    ) -> Option<Verdict> {
        let hdr_len = out.hdr_len;
        match out.back {
            ErrorPath::Subscriber(access) => write_session_l2(
                &mut buf[..hdr_len],
                &access,
                self.cfg.gateway_mac,
                out.l2_len,
                ip_len as u16,
                ipv6,
            ),
            ErrorPath::Core => {
                let ethertype = if ipv6 {
                    EtherType::Ipv6
                } else {
                    EtherType::Ipv4
                };
                buf[0..6].copy_from_slice(&out.nh_mac.0);
                buf[6..12].copy_from_slice(&self.cfg.core_mac.0);
                buf[12..14].copy_from_slice(&u16::from(ethertype).to_be_bytes());
            }
        }
        if !overwrite_frame(frame, buf.get(..hdr_len + ip_len)?) {
            return None;
        }
        self.counters.icmp_errors_sent += 1;
        Some(Verdict::Forward(out.port))
    }

    /// ARP on the core port: answer for the core address, learn the next hop.
    fn core_arp<B: PacketBuffer>(&mut self, frame: &mut B, l2: &L2Header, l3: usize) -> Verdict {
        let core_mac = self.cfg.core_mac;
        let core_ip = self.cfg.core_ipv4;
        let Some(Ok(h)) = frame.data_mut().get_mut(l3..).map(arp::Header::parse_mut) else {
            return self.drop(DropReason::Malformed);
        };
        let (sender_ip, sender_mac) = (h.sender_ip(), h.sender_mac());
        let neighbor = self.neighbors.iter_mut().find(|n| n.ip == sender_ip);
        let is_neighbor = neighbor.is_some();
        if let Some(n) = neighbor
            && sender_mac.is_unicast()
            && sender_mac != EthernetAddress::ZERO
            && n.mac != Some(sender_mac)
        {
            n.mac = Some(sender_mac);
            self.counters.arp_learned += 1;
            self.refresh_direct_mac();
        }
        match h.operation() {
            ArpOperation::Request if h.target_ip() == core_ip => {
                h.make_reply(core_mac, core_ip);
                if let Ok(eth) = ethernet::Header::parse_mut(frame.data_mut()) {
                    eth.set_dst(l2.src);
                    eth.set_src(core_mac);
                }
                self.counters.arp_replies += 1;
                Verdict::Forward(self.cfg.core_port)
            }
            ArpOperation::Reply if is_neighbor => self.drop(DropReason::Consumed),
            _ => self.drop(DropReason::NotForUs),
        }
    }

    /// Frames the pipeline originates: an ARP request on the core port for each next hop
    /// that is still unresolved, at most once per [`PipelineConfig::arp_retry_ns`] each.
    pub fn drain_generated(&mut self, now_ns: u64, out: &mut dyn FnMut(PortId, &[u8])) {
        self.tick(now_ns);
        let retry = self.cfg.arp_retry_ns;
        for n in self.neighbors.iter_mut() {
            if n.mac.is_some() || n.ip == Ipv4Addr::UNSPECIFIED {
                continue;
            }
            if let Some(last) = n.last_arp_ns
                && now_ns >= last
                && now_ns - last < retry
            {
                continue;
            }
            let l2 = L2Header {
                dst: EthernetAddress::BROADCAST,
                src: self.cfg.core_mac,
                svlan: None,
                cvlan: None,
                ethertype: EtherType::Arp,
            };
            let repr = ArpRepr {
                operation: ArpOperation::Request,
                source_hardware_addr: self.cfg.core_mac,
                source_protocol_addr: self.cfg.core_ipv4,
                target_hardware_addr: EthernetAddress::ZERO,
                target_protocol_addr: n.ip,
            };
            let mut buf = [0u8; 64];
            if let Ok(len) = write_arp(&mut buf, &l2, &repr) {
                n.last_arp_ns = Some(now_ns);
                self.counters.arp_requests += 1;
                out(self.cfg.core_port, &buf[..len]);
            }
        }
        self.solicit_next_hop(now_ns, out);
    }
}

/// What [`Pipeline::depart`] needs of an upstream packet besides the frame.
#[derive(Debug, Clone, Copy)]
struct Departure {
    /// The session's slot.
    slot: Slot,
    /// The IP packet's length.
    total: usize,
    /// The next hop's MAC.
    nh_mac: EthernetAddress,
    /// Through the session's policer.
    policed: bool,
    /// The session's (IPv4) MSS clamp.
    mss_clamp: u16,
    /// An IPv6 packet (hop limit, EtherType).
    ipv6: bool,
}

/// An ICMPv4 or ICMPv6 error kind ([`Pipeline::icmp_error_to_subscriber`]).
#[derive(Debug, Clone, Copy)]
enum AnyIcmpError {
    V4(Icmpv4ErrorKind),
    V6(Icmpv6ErrorKind),
}

impl From<Icmpv4ErrorKind> for AnyIcmpError {
    fn from(kind: Icmpv4ErrorKind) -> Self {
        AnyIcmpError::V4(kind)
    }
}

impl From<Icmpv6ErrorKind> for AnyIcmpError {
    fn from(kind: Icmpv6ErrorKind) -> Self {
        AnyIcmpError::V6(kind)
    }
}

/// Where an ICMP error leaves ([`Pipeline::icmp_error_out`]): the port, the L2 header
/// lengths (Ethernet with tags; that plus PPPoE and PPP) and, toward the core, the next
/// hop's MAC.
#[derive(Debug, Clone, Copy)]
struct ErrorOut {
    back: ErrorPath,
    port: PortId,
    l2_len: usize,
    hdr_len: usize,
    nh_mac: EthernetAddress,
}

/// What [`Pipeline::deliver`] needs of a downstream packet besides the frame.
#[derive(Debug, Clone, Copy)]
struct Delivery {
    /// The session's attachment.
    access: AccessKey,
    /// The IP packet's length.
    total: usize,
    /// Its DSCP (the shaper's class).
    dscp: u8,
    /// The session's (IPv4) MSS clamp.
    mss_clamp: u16,
    /// Through the session's shaper.
    shaped: bool,
    /// An IPv6 packet (EtherType and PPP protocol).
    ipv6: bool,
}

/// Makes `frame` hold exactly `bytes` (a reply or error built over a received frame): grown
/// at the front, or cut at the end. False if the buffer cannot grow that much.
/// The next-hop index of the neighbor `is_it` picks in `neighbors`, which gets `new()` at
/// its end when none matches: the route tables' next hops are neighbor indexes, IPv4 and
/// IPv6 alike. Fails when the index does not fit a [`NextHop`].
fn next_hop_index<N>(
    neighbors: &mut Vec<N>,
    is_it: impl Fn(&N) -> bool,
    new: impl FnOnce() -> N,
) -> Result<NextHop, RouteError> {
    let index = match neighbors.iter().position(is_it) {
        Some(i) => i,
        None => {
            neighbors.push(new());
            neighbors.len() - 1
        }
    };
    NextHop::try_from(index).map_err(|_| RouteError::GroupsExhausted {
        max_groups: u32::from(NextHop::MAX),
    })
}

fn overwrite_frame<B: PacketBuffer>(frame: &mut B, bytes: &[u8]) -> bool {
    let len = frame.len();
    if bytes.len() > len {
        if frame.push_front(bytes.len() - len).is_none() {
            return false;
        }
    } else {
        frame.truncate(bytes.len());
    }
    match frame.data_mut().get_mut(..bytes.len()) {
        Some(out) => {
            out.copy_from_slice(bytes);
            true
        }
        None => false,
    }
}

/// (Ethernet header length with the session's tags, that plus the PPPoE and PPP headers of
/// a PPPoE session): what goes in front of an IPv4 packet sent to subscriber `access`.
#[inline(always)]
fn session_l2_len(access: &AccessKey) -> (usize, usize) {
    let tags = usize::from(access.svlan != 0) + usize::from(access.cvlan != 0);
    let l2_len = ethernet::HEADER_LEN + vlan::TAG_LEN * tags;
    let pppoe = if access.is_pppoe() {
        pppoe::SESSION_HEADER_LEN
    } else {
        0
    };
    (l2_len, l2_len + pppoe)
}

/// Writes into `hdr` ([`session_l2_len`]'s second length) the headers in front of an IP
/// packet of `ip_len` bytes sent to subscriber `access` from `gateway`: Ethernet with the
/// session's tags (S-tag TPID 0x88a8, C-tag 0x8100, PCP/DEI 0), as `L2Header::emit` writes
/// it, and for a PPPoE session the PPPoE session header and PPP protocol 0x0021, or 0x0057
/// for IPv6 (RFC 2516 section 5.4, RFC 5072). `l2_len` is [`session_l2_len`]'s first length.
#[inline(always)]
fn write_session_l2(
    hdr: &mut [u8],
    access: &AccessKey,
    gateway: EthernetAddress,
    l2_len: usize,
    ip_len: u16,
    ipv6: bool,
) {
    let eth = hdr;
    eth[0..6].copy_from_slice(&access.mac.0);
    eth[6..12].copy_from_slice(&gateway.0);
    let mut at = 12;
    for (vid, tpid) in [(access.svlan, 0x88a8u16), (access.cvlan, 0x8100)] {
        if vid != 0 {
            let tpid = tpid.to_be_bytes();
            let vid = (vid & vlan::VID_MASK).to_be_bytes();
            eth[at..at + vlan::TAG_LEN].copy_from_slice(&[tpid[0], tpid[1], vid[0], vid[1]]);
            at += vlan::TAG_LEN;
        }
    }
    let ethertype = match (access.is_pppoe(), ipv6) {
        (true, _) => EtherType::PppoeSession,
        (false, false) => EtherType::Ipv4,
        (false, true) => EtherType::Ipv6,
    };
    eth[at..at + 2].copy_from_slice(&u16::from(ethertype).to_be_bytes());
    if access.is_pppoe()
        && let Some(rest) = eth.get_mut(l2_len..)
    {
        SessionRepr {
            session_id: access.pppoe_session,
            protocol: if ipv6 {
                PppProtocol::Ipv6
            } else {
                PppProtocol::Ipv4
            },
            payload_len: ip_len,
        }
        .emit(&mut rest[..]);
    }
}

/// The IPv4 header at `data[l3..]` if it parses and its checksum verifies. The usual
/// header (no options) is checked from one 20-byte read; one with options takes
/// [`ipv4::Header::parse`] and [`ipv4::verify_checksum`].
#[inline(always)]
fn valid_ipv4(data: &[u8], l3: usize) -> Option<&ipv4::Header> {
    let ip = data.get(l3..)?;
    let fixed = ip.first_chunk::<{ ipv4::HEADER_LEN }>()?;
    if fixed[0] != 0x45 {
        return valid_ipv4_with_options(ip);
    }
    let total = usize::from(u16::from_be_bytes([fixed[2], fixed[3]]));
    if total < ipv4::HEADER_LEN || total > ip.len() || !header_checksum_ok(fixed) {
        return None;
    }
    zerocopy::FromBytes::ref_from_bytes(&fixed[..]).ok()
}

/// [`valid_ipv4`] for anything but version 4 with IHL 5.
#[inline(never)]
fn valid_ipv4_with_options(ip: &[u8]) -> Option<&ipv4::Header> {
    let h = ipv4::Header::parse(ip).ok()?;
    ipv4::verify_checksum(ip).then_some(h)
}

/// True if the 20-byte IPv4 header `h` holds a correct checksum: its one's complement sum
/// is 0xffff. The sum is taken over native-order words (two of 64 bits and one of 32): one's
/// complement addition does not depend on byte order or word size (RFC 1071 section 2), as
/// long as every carry out of the word is added back in, and 0xffff reads the same swapped.
#[inline(always)]
fn header_checksum_ok(h: &[u8; ipv4::HEADER_LEN]) -> bool {
    let word64 = |i: usize| {
        u64::from_ne_bytes([
            h[i],
            h[i + 1],
            h[i + 2],
            h[i + 3],
            h[i + 4],
            h[i + 5],
            h[i + 6],
            h[i + 7],
        ])
    };
    let word32 = u64::from(u32::from_ne_bytes([h[16], h[17], h[18], h[19]]));
    // Each carry is added back at once: a sum that carried is at most 2^64 - 2, so adding
    // the carry cannot carry again. The same holds for the folds to 32 and 16 bits.
    let (sum, carry) = word64(0).overflowing_add(word64(8));
    let (sum, carry) = (sum + u64::from(carry)).overflowing_add(word32);
    let sum = sum + u64::from(carry);
    let (lo, carry) = (sum as u32).overflowing_add((sum >> 32) as u32);
    let sum = lo + u32::from(carry);
    let (lo, carry) = (sum as u16).overflowing_add((sum >> 16) as u16);
    lo + u16::from(carry) == 0xffff
}

/// Checks the IPv4 packet `ip` against the global ACL and then the session's ACL `session`
/// (either may be [`NO_ACL`]), counting the rule (or default) that decided in `hits`. True
/// if every ACL that applies permits it. Costs one branch when no ACL applies.
#[inline(always)]
fn acls_permit(
    acls: &AclSet,
    hits: &mut [u64],
    session: AclId,
    direction: Direction,
    ip: &[u8],
) -> bool {
    let global = acls.global();
    if global == NO_ACL && session == NO_ACL {
        return true;
    }
    acls_evaluate(acls, hits, global, session, direction, ip)
}

/// [`acls_permit`] when an ACL applies.
#[inline(never)]
fn acls_evaluate(
    acls: &AclSet,
    hits: &mut [u64],
    global: AclId,
    session: AclId,
    direction: Direction,
    ip: &[u8],
) -> bool {
    // The global ACL first, then the session's; each one that applies counts its match and
    // may deny.
    let mut permits = |verdict: Option<(AclAction, usize)>| match verdict {
        Some((action, counter)) => {
            if let Some(c) = hits.get_mut(counter) {
                *c += 1;
            }
            action != AclAction::Deny
        }
        None => true,
    };
    if ip.first().is_some_and(|b| b >> 4 == 6) {
        let Some(flow) = flow_v6(ip) else {
            return false;
        };
        [global, session]
            .into_iter()
            .all(|id| id == NO_ACL || permits(acls.evaluate_v6(id, direction, &flow)))
    } else {
        let Some(flow) = flow_v4(ip) else {
            return false;
        };
        [global, session]
            .into_iter()
            .all(|id| id == NO_ACL || permits(acls.evaluate_v4(id, direction, &flow)))
    }
}

/// The ACL key of the IPv4 packet `ip` (validated by the classify stage): addresses,
/// protocol and, for the first fragment of TCP, UDP or SCTP (whose ports lead the header),
/// the ports; 0 otherwise.
#[inline]
fn flow_v4(ip: &[u8]) -> Option<FlowV4> {
    const SCTP: u8 = 132;
    let h = validated_ipv4(ip)?;
    let protocol = u8::from(h.protocol());
    let mut flow = FlowV4 {
        src: h.src().to_bits(),
        dst: h.dst().to_bits(),
        protocol,
        src_port: 0,
        dst_port: 0,
    };
    let has_ports = matches!(protocol, 6 | 17 | SCTP);
    if has_ports
        && h.frag_offset() == 0
        && let Some(p) = ip.get(h.header_len()..h.header_len() + 4)
    {
        flow.src_port = u16::from_be_bytes([p[0], p[1]]);
        flow.dst_port = u16::from_be_bytes([p[2], p[3]]);
    }
    Some(flow)
}

/// The ACL key of the IPv6 packet `ip`: addresses, the upper-layer protocol past any
/// extension headers and, in the first fragment of TCP, UDP or SCTP, the ports; 0 otherwise.
fn flow_v6(ip: &[u8]) -> Option<FlowV6> {
    const SCTP: u8 = 132;
    let h = crate::wire::ipv6::Header::parse(ip).ok()?;
    let upper = crate::wire::ipv6::upper_layer(ip).ok()?;
    let mut flow = FlowV6 {
        src: h.src().to_bits(),
        dst: h.dst().to_bits(),
        protocol: upper.protocol,
        src_port: 0,
        dst_port: 0,
    };
    if matches!(upper.protocol, 6 | 17 | SCTP)
        && upper.first_fragment
        && let Some(p) = ip.get(upper.offset..upper.offset + 4)
    {
        flow.src_port = u16::from_be_bytes([p[0], p[1]]);
        flow.dst_port = u16::from_be_bytes([p[2], p[3]]);
    }
    Some(flow)
}

/// The fixed IPv4 header at the start of `ip`, a packet the classify stage validated
/// (version, header length, total length within the frame, checksum): only the presence
/// of its 20 bytes is checked again. Whoever reads past them uses the header length and
/// total length through bounds-checked slices.
#[inline(always)]
fn validated_ipv4(ip: &[u8]) -> Option<&ipv4::Header> {
    zerocopy::FromBytes::ref_from_bytes(ip.first_chunk::<{ ipv4::HEADER_LEN }>()?).ok()
}

/// The fields of an IPv4 header the forwarding stages read.
#[derive(Debug, Clone, Copy)]
struct Ipv4Fields {
    total_len: u16,
    tos: u8,
    ttl: u8,
    src: [u8; 4],
}

/// The fields of the IPv4 header at `data[l3..]`, which the classify stage validated (so
/// only the length of the fixed header is checked here).
#[inline(always)]
fn ipv4_fields(data: &[u8], l3: usize) -> Option<Ipv4Fields> {
    let h = data.get(l3..)?.first_chunk::<{ ipv4::HEADER_LEN }>()?;
    Some(Ipv4Fields {
        total_len: u16::from_be_bytes([h[2], h[3]]),
        tos: h[1],
        ttl: h[8],
        src: [h[12], h[13], h[14], h[15]],
    })
}

/// Clamps the MSS (if `mss_clamp` is not 0) and decrements the TTL of the IPv4 packet at
/// `data[l3..]` (validated by the classify stage, truncated to its total length), updating
/// the header checksum incrementally (RFC 1624).
#[inline(always)]
fn rewrite_ipv4(data: &mut [u8], l3: usize, mss_clamp: u16) {
    let Some(ip) = data.get_mut(l3..) else {
        return;
    };
    if mss_clamp != 0 {
        clamp_ipv4_mss(ip, mss_clamp);
    }
    if let Some(h) = ip.first_chunk_mut::<{ ipv4::HEADER_LEN }>() {
        decrement_ttl(h);
    }
}

/// [`ipv4::Header::decrement_ttl`] on the raw fixed header: a TTL of 0 stays 0, otherwise
/// the TTL drops by one and the checksum is updated incrementally. The TTL is the high byte
/// of its 16-bit word, so RFC 1624's equation 3 always adds 0x0100 to the checksum with
/// end-around carry: what this computes directly (the same result for every checksum
/// value, checked exhaustively by a test).
#[inline(always)]
fn decrement_ttl(h: &mut [u8; ipv4::HEADER_LEN]) {
    if h[8] == 0 {
        return;
    }
    h[8] -= 1;
    let c = ttl_decrement_checksum(u16::from_be_bytes([h[10], h[11]]));
    h[10..12].copy_from_slice(&c.to_be_bytes());
}

/// The IPv4 header checksum after the TTL drops by one, from the one before.
#[inline(always)]
fn ttl_decrement_checksum(old: u16) -> u16 {
    let c = u32::from(old) + 0x0100;
    (c + u32::from(c >= 0xffff)) as u16
}

/// Clamps the MSS of a TCP SYN or SYN/ACK carried, unfragmented or as a first fragment, in
/// the IPv4 packet `ip`, validated by the classify stage (header checksum unaffected: only
/// the TCP checksum changes).
#[inline]
fn clamp_ipv4_mss(ip: &mut [u8], mss: u16) {
    let Some(h) = validated_ipv4(ip) else {
        return;
    };
    if h.protocol() != IpProtocol::Tcp || h.frag_offset() != 0 {
        return;
    }
    let (hl, total) = (h.header_len(), usize::from(h.total_len()));
    if let Some(seg) = ip.get_mut(hl..total) {
        tcp::clamp_mss(seg, mss);
    }
}

/// For a PPPoE session frame (PPPoE header at `data[l3..]`) carrying IPv6 data (not the
/// set-up [`is_ipv6_control`] sends to the control plane) in a session other than 0: the
/// offset of the IPv6 packet, the packed access key and the PPP payload length.
fn ipv6_in_pppoe(
    data: &[u8],
    port: PortId,
    l2: &L2Header,
    l3: usize,
) -> Option<(usize, u128, usize)> {
    let h = pppoe::Header::parse(data.get(l3..)?).ok()?;
    let ip = l3 + pppoe::SESSION_HEADER_LEN;
    if h.protocol() != PppProtocol::Ipv6
        || h.session_id() == 0
        || is_ipv6_control(data.get(ip..).unwrap_or(&[]))
    {
        return None;
    }
    let key = AccessKey::from_l2(port, l2)
        .with_pppoe_session(h.session_id())
        .pack();
    Some((ip, key, h.payload_len()))
}

/// True for an IPv6 packet the control plane answers for a PPP session: an ICMPv6 Router
/// Solicitation or Neighbor Solicitation, or UDP to the DHCPv6 server port 547, right after
/// the fixed header (RFC 4861 and RFC 8415 messages carry no extension headers in practice;
/// anything else is data).
#[inline]
fn is_ipv6_control(ip: &[u8]) -> bool {
    const IPV6_HEADER_LEN: usize = 40;
    const ICMPV6: u8 = 58;
    const UDP: u8 = 17;
    const ROUTER_SOLICITATION: u8 = 133;
    const NEIGHBOR_SOLICITATION: u8 = 135;
    const DHCPV6_SERVER_PORT: u16 = 547;
    if ip.len() < IPV6_HEADER_LEN || ip[0] >> 4 != 6 {
        return false;
    }
    let payload = &ip[IPV6_HEADER_LEN..];
    match ip[6] {
        ICMPV6 => matches!(
            payload.first(),
            Some(&(ROUTER_SOLICITATION | NEIGHBOR_SOLICITATION))
        ),
        UDP => payload
            .get(2..4)
            .is_some_and(|p| u16::from_be_bytes([p[0], p[1]]) == DHCPV6_SERVER_PORT),
        _ => false,
    }
}

/// True if the IPv4 packet `ip` (header validated) is a first-fragment UDP datagram to
/// port 67.
#[inline(always)]
fn is_dhcp_to_server(ip: &[u8]) -> bool {
    const UDP: u8 = 17;
    let Some(h) = ip.first_chunk::<{ ipv4::HEADER_LEN }>() else {
        return false;
    };
    if h[9] != UDP || u16::from_be_bytes([h[6], h[7]]) & 0x1fff != 0 {
        return false;
    }
    let hl = usize::from(h[0] & 0x0f) * 4;
    matches!(ip.get(hl + 2..hl + 4), Some(p) if u16::from_be_bytes([p[0], p[1]]) == DHCP_SERVER_PORT)
}

#[cfg(test)]
mod header_tests {
    use proptest::prelude::*;

    use super::*;
    use crate::wire::checksum;

    proptest! {
        /// The one-read check agrees with the general parser and checksum on any bytes,
        /// including headers whose checksum was made right.
        #[test]
        fn fast_ipv4_check_agrees_with_the_general_one(
            mut bytes in proptest::collection::vec(any::<u8>(), 0..64),
            fix_checksum in any::<bool>(),
            standard in any::<bool>(),
        ) {
            if standard && bytes.len() >= ipv4::HEADER_LEN {
                bytes[0] = 0x45;
                let len = bytes.len() as u16;
                bytes[2..4].copy_from_slice(&len.to_be_bytes());
            }
            if fix_checksum && bytes.len() >= ipv4::HEADER_LEN {
                ipv4::fill_checksum(&mut bytes);
            }
            let general = ipv4::Header::parse(&bytes).ok().filter(|_| ipv4::verify_checksum(&bytes));
            let fast = valid_ipv4(&bytes, 0);
            prop_assert_eq!(fast.map(|h| h as *const _), general.map(|h| h as *const _));
        }
    }

    #[test]
    fn ttl_decrement_checksum_is_rfc_1624_for_every_checksum() {
        for old in 0..=u16::MAX {
            for ttl in [1u8, 2, 64, 255] {
                let before = u16::from_be_bytes([ttl, 17]);
                let after = u16::from_be_bytes([ttl - 1, 17]);
                assert_eq!(
                    ttl_decrement_checksum(old),
                    checksum::update_u16(old, before, after),
                    "checksum {old:#06x}, ttl {ttl}"
                );
            }
        }
    }
}
