//! [`Nat`]: one worker's NAT state, mapping creation, expiry, subscriber release, logging
//! and queries. Packet rewriting is in `translate.rs`.

use alloc::vec::Vec;
use core::net::Ipv4Addr;

use super::blocks::{AddressPool, NONE, PortBlocks, SlotState};
use super::config::{Ipv4Prefix, NatConfig, NatConfigError, NatTimeouts};
use super::frag::FragTable;
use super::log::{LogQueue, NatLogEvent, NatLogKind, NatLogReason};
use super::table::{Mapping, MappingTable, SubscriberTable, pack_key, tcp_state};
use super::{NatCounters, NatDrop, NatProtocol};

/// Whole seconds of a nanosecond clock (saturating at `u32::MAX`, 136 years).
#[inline]
pub(crate) fn secs(now_ns: u64) -> u32 {
    u32::try_from(now_ns / 1_000_000_000).unwrap_or(u32::MAX)
}

/// A mapping as the NAT reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MappingInfo {
    /// Protocol.
    pub protocol: NatProtocol,
    /// Inside address.
    pub inside: Ipv4Addr,
    /// Inside port (ICMP: echo identifier).
    pub inside_port: u16,
    /// Outside address.
    pub outside: Ipv4Addr,
    /// Outside port (ICMP: echo identifier).
    pub outside_port: u16,
    /// Session tag of the subscriber's session.
    pub session_tag: u64,
    /// Worker clock second of the last packet.
    pub last_seen_s: u32,
    /// TCP: SYNs seen both ways and not closing (the established timeout applies).
    pub tcp_established: bool,
}

impl MappingInfo {
    /// `m`, of the session tagged `session_tag` (its subscriber's: the mapping keeps only
    /// the low half).
    fn from_mapping(m: &Mapping, session_tag: u64) -> Option<MappingInfo> {
        Some(MappingInfo {
            protocol: m.protocol()?,
            inside: Ipv4Addr::from_bits(m.inside),
            inside_port: m.inside_port,
            outside: Ipv4Addr::from_bits(m.outside),
            outside_port: m.outside_port,
            session_tag,
            last_seen_s: m.last_seen,
            tcp_established: m.protocol()? == NatProtocol::Tcp && tcp_state::is_established(m.tcp),
        })
    }
}

/// Bytes a [`Nat`] allocated, by part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NatMemory {
    /// Mapping slab and the links of the subscribers' mapping lists.
    pub mappings: usize,
    /// The two mapping hash indexes.
    pub mapping_indexes: usize,
    /// Subscriber slab and index.
    pub subscribers: usize,
    /// Block slots of every subscriber slot.
    pub port_blocks: usize,
    /// Outside address pool.
    pub pool: usize,
    /// Log queue.
    pub log: usize,
    /// Fragment table.
    pub fragments: usize,
}

impl NatMemory {
    /// Sum of all parts.
    pub fn total(&self) -> usize {
        self.mappings
            + self.mapping_indexes
            + self.subscribers
            + self.port_blocks
            + self.pool
            + self.log
            + self.fragments
    }
}

/// One worker's NAT44. See the [module documentation](super).
#[derive(Debug)]
pub struct Nat {
    pub(super) port_first: u32,
    pub(super) block_size: u32,
    pub(super) timeouts: NatTimeouts,
    pub(super) block_idle_s: u32,
    pub(super) pool: AddressPool,
    /// The configured pool, every worker's share included.
    pool_prefixes: Vec<Ipv4Prefix>,
    /// The lowest and highest address of `pool_prefixes`: one compare tells most
    /// destinations apart from the pool.
    pub(super) pool_bounds: (u32, u32),
    pub(super) blocks: PortBlocks,
    pub(super) maps: MappingTable,
    pub(super) subs: SubscriberTable,
    pub(super) frags: FragTable,
    pub(super) log: LogQueue,
    pub(super) counters: NatCounters,
    map_cursor: usize,
    block_cursor: usize,
}

impl Nat {
    /// A NAT over every address of `config.pool`, hashes seeded with `seed` (use a random
    /// value per process). Allocates everything it will ever use.
    pub fn new(config: &NatConfig, seed: u64) -> Result<Nat, NatConfigError> {
        Self::with_address_filter(config, seed, |_| true)
    }

    /// A NAT over the addresses of `config.pool` that `keep` accepts: with several workers,
    /// each takes the addresses whose inbound packets it receives (for RSS on the
    /// destination address, `|a| worker_map.owner_of_ipv4(a) == me`), so that every
    /// outside address belongs to exactly one worker.
    pub fn with_address_filter(
        config: &NatConfig,
        seed: u64,
        mut keep: impl FnMut(Ipv4Addr) -> bool,
    ) -> Result<Nat, NatConfigError> {
        config.validate()?;
        let mut addrs = Vec::new();
        for p in &config.pool {
            let (first, last) = p.range();
            let mut a = first;
            loop {
                if keep(Ipv4Addr::from_bits(a)) {
                    addrs.push(a);
                }
                if a == last {
                    break;
                }
                a += 1;
            }
        }
        if addrs.is_empty() {
            return Err(NatConfigError::NoAddressForWorker);
        }
        let per_sub = usize::from(config.blocks_per_subscriber);
        Ok(Nat {
            port_first: u32::from(config.port_first),
            block_size: u32::from(config.block_size),
            timeouts: config.timeouts,
            block_idle_s: config.block_idle_s,
            pool: AddressPool::new(addrs, config.blocks_per_address()),
            pool_prefixes: config.pool.clone(),
            pool_bounds: config
                .pool
                .iter()
                .map(Ipv4Prefix::range)
                .fold((u32::MAX, 0), |(lo, hi), (first, last)| {
                    (lo.min(first), hi.max(last))
                }),
            blocks: PortBlocks::new(config.max_subscribers as usize, per_sub),
            maps: MappingTable::new(config.max_mappings, seed),
            subs: SubscriberTable::new(config.max_subscribers, seed),
            frags: FragTable::new(config.fragment_slots as usize, seed),
            log: LogQueue::new(config.log_queue_len as usize),
            counters: NatCounters::default(),
            map_cursor: 0,
            block_cursor: 0,
        })
    }

    /// Counters.
    pub fn counters(&self) -> &NatCounters {
        &self.counters
    }

    /// Live mappings.
    pub fn mappings_active(&self) -> usize {
        self.maps.len() as usize
    }

    /// Blocks held by subscribers (including blocks waiting to log their release).
    pub fn blocks_in_use(&self) -> u64 {
        self.pool.blocks_in_use()
    }

    /// Subscribers that hold blocks and translate.
    pub fn subscribers_active(&self) -> usize {
        self.subs.active() as usize
    }

    /// Subscribers released whose blocks still wait for room in the log queue.
    pub fn subscribers_releasing(&self) -> usize {
        (self.subs.in_use() - self.subs.active()) as usize
    }

    /// Number of outside addresses of this worker.
    pub fn addresses(&self) -> usize {
        self.pool.len()
    }

    /// True if `ip` is one of this worker's outside addresses.
    pub fn is_outside_address(&self, ip: Ipv4Addr) -> bool {
        self.pool.index_of(ip.to_bits()).is_some()
    }

    /// The outside address of the subscriber keyed by `inside_subscriber`, while it holds
    /// blocks.
    pub fn outside_address_of(&self, inside_subscriber: Ipv4Addr) -> Option<Ipv4Addr> {
        let s = self.subs.find(inside_subscriber.to_bits())?;
        Some(Ipv4Addr::from_bits(
            self.pool.address(self.subs.get(s).addr),
        ))
    }

    /// Events waiting in the log queue.
    pub fn log_queue_len(&self) -> usize {
        self.log.len()
    }

    /// The mapping of inside endpoint (`inside`, `protocol`, `port`).
    pub fn lookup_outbound(
        &self,
        inside: Ipv4Addr,
        protocol: NatProtocol,
        port: u16,
    ) -> Option<MappingInfo> {
        let s = self
            .maps
            .find_inside(pack_key(inside.to_bits(), protocol, port))?;
        self.mapping_info(self.maps.get(s))
    }

    /// The mapping of outside endpoint (`outside`, `protocol`, `port`).
    pub fn lookup_inbound(
        &self,
        outside: Ipv4Addr,
        protocol: NatProtocol,
        port: u16,
    ) -> Option<MappingInfo> {
        let s = self
            .maps
            .find_outside(pack_key(outside.to_bits(), protocol, port))?;
        self.mapping_info(self.maps.get(s))
    }

    fn mapping_info(&self, m: &Mapping) -> Option<MappingInfo> {
        MappingInfo::from_mapping(m, self.subs.get(m.sub).session_tag)
    }

    /// Every live mapping (slab order).
    pub fn mappings(&self) -> impl Iterator<Item = MappingInfo> + '_ {
        self.maps.iter().filter_map(|(_, m)| self.mapping_info(m))
    }

    /// Bytes allocated, by part.
    pub fn memory(&self) -> NatMemory {
        let (mappings, mapping_indexes) = self.maps.memory_bytes();
        NatMemory {
            mappings,
            mapping_indexes,
            subscribers: self.subs.memory_bytes(),
            port_blocks: self.blocks.memory_bytes(),
            pool: self.pool.memory_bytes(),
            log: self.log.memory_bytes(),
            fragments: self.frags.memory_bytes(),
        }
    }

    /// Hands every queued log event to `f`, oldest first, and empties the queue. Returns
    /// how many there were.
    pub fn drain_events(&mut self, f: impl FnMut(&NatLogEvent)) -> usize {
        self.log.drain(f)
    }

    /// Removes every mapping and block of the subscriber keyed by `inside_subscriber` (its
    /// session ended) and logs the releases. Blocks whose release cannot be logged yet (full
    /// queue) stay reserved for the subscriber until [`Nat::expire`] logs them. Returns false
    /// if the subscriber holds nothing.
    pub fn release_subscriber(&mut self, inside_subscriber: Ipv4Addr, now_ns: u64) -> bool {
        match self.subs.find(inside_subscriber.to_bits()) {
            Some(s) => {
                self.release_slot(s, now_ns, NatLogReason::SessionEnd);
                true
            }
            None => false,
        }
    }

    /// The prefixes of the configured pool, every address included, also those another
    /// worker's NAT holds ([`Nat::with_address_filter`]).
    pub fn pool_prefixes(&self) -> &[Ipv4Prefix] {
        &self.pool_prefixes
    }

    /// True for an address of another worker's share of the pool: in the configured pool,
    /// not among this NAT's addresses.
    pub(super) fn is_elsewhere_in_pool(&self, addr: u32) -> bool {
        self.pool.index_of(addr).is_none()
            && self
                .pool_prefixes
                .iter()
                .any(|p| p.contains(core::net::Ipv4Addr::from_bits(addr)))
    }

    /// Slots [`Nat::expire`] walks: the larger of the mapping slots and the block slots. A
    /// caller that wants every slot examined once per period `p` passes a budget of
    /// `housekeeping_slots * elapsed / p`.
    pub fn housekeeping_slots(&self) -> usize {
        self.maps.slab_len().max(self.blocks.len())
    }

    /// Bounded housekeeping: examines at most `budget` mapping slots, removing mappings idle
    /// for longer than their timeout, and at most `budget` block slots, releasing blocks
    /// without mappings for longer than `block_idle_s` and retrying releases the log queue
    /// refused. Each call continues where the previous one stopped. Returns the number of
    /// mappings removed.
    pub fn expire(&mut self, now_ns: u64, budget: usize) -> usize {
        let now_s = secs(now_ns);
        let mut expired = 0;
        let n = self.maps.slab_len();
        for _ in 0..budget.min(n) {
            if self.map_cursor >= n {
                self.map_cursor = 0;
            }
            let slot = self.map_cursor as u32;
            self.map_cursor += 1;
            let m = *self.maps.get(slot);
            let Some(p) = m.protocol() else {
                continue;
            };
            if now_s.saturating_sub(m.last_seen) > self.timeout(p, m.tcp) {
                self.remove_mapping(slot, now_s);
                self.counters.mappings_expired += 1;
                expired += 1;
            }
        }
        let nb = self.blocks.len();
        let per = self.blocks.per_sub();
        for _ in 0..budget.min(nb) {
            if self.block_cursor >= nb {
                self.block_cursor = 0;
            }
            let s = self.block_cursor;
            self.block_cursor += 1;
            let bs = *self.blocks.slot(s);
            let (sub, k) = ((s / per) as u32, s % per);
            match bs.state {
                SlotState::Empty => {}
                SlotState::Active => {
                    if bs.mappings() == 0
                        && now_s.saturating_sub(bs.idle_since) > self.block_idle_s
                        && !self.release_block(sub, k, now_ns, NatLogReason::Idle)
                    {
                        let b = self.blocks.slot_mut(s);
                        b.state = SlotState::Releasing;
                        b.reason = NatLogReason::Idle as u8;
                        self.counters.release_deferred += 1;
                    }
                }
                SlotState::Releasing => {
                    self.release_block(sub, k, now_ns, NatLogReason::from_u8(bs.reason));
                }
            }
        }
        expired
    }

    /// The idle timeout of a mapping of `proto` in TCP state `tcp`.
    #[inline]
    pub(super) fn timeout(&self, proto: NatProtocol, tcp: u8) -> u32 {
        match proto {
            NatProtocol::Udp => self.timeouts.udp_s,
            NatProtocol::Icmp => self.timeouts.icmp_s,
            NatProtocol::Tcp if tcp_state::is_established(tcp) => self.timeouts.tcp_established_s,
            NatProtocol::Tcp => self.timeouts.tcp_transitory_s,
        }
    }

    /// The slot of the mapping of inside endpoint (`inside`, `proto`, `port`), created (if
    /// `create`) from the blocks of the subscriber keyed by `sub_key`, and whether it was
    /// created. A mapping of another session tag is dropped with its whole subscriber
    /// first. Refreshes the mapping and sets its `owner`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn outbound_mapping(
        &mut self,
        now_ns: u64,
        now_s: u32,
        sub_key: u32,
        tag: u64,
        owner: u32,
        inside: u32,
        proto: NatProtocol,
        port: u16,
        create: bool,
    ) -> Result<(u32, bool), NatDrop> {
        if let Some(slot) = self.maps.find_inside(pack_key(inside, proto, port)) {
            let m = self.maps.get_mut(slot);
            if m.is_of(tag) {
                m.last_seen = now_s;
                m.owner = owner;
                return Ok((slot, false));
            }
            let sub = m.sub;
            self.session_change(sub, now_ns);
        }
        if !create {
            return Err(NatDrop::NoMapping);
        }
        self.create_mapping(now_ns, now_s, sub_key, tag, owner, inside, proto, port)
            .map(|s| (s, true))
    }

    fn session_change(&mut self, sub: u32, now_ns: u64) {
        self.counters.session_changes += 1;
        self.release_slot(sub, now_ns, NatLogReason::SessionChange);
    }

    #[allow(clippy::too_many_arguments)]
    fn create_mapping(
        &mut self,
        now_ns: u64,
        now_s: u32,
        sub_key: u32,
        tag: u64,
        owner: u32,
        inside: u32,
        proto: NatProtocol,
        port: u16,
    ) -> Result<u32, NatDrop> {
        if self.maps.is_full() {
            return Err(NatDrop::TableFull);
        }
        let existing = match self.subs.find(sub_key) {
            Some(s) if self.subs.get(s).session_tag == tag => Some(s),
            Some(s) => {
                self.session_change(s, now_ns);
                None
            }
            None => None,
        };
        let (sub, k, off) = match existing {
            Some(s) => {
                let (k, off) = self.alloc_port(s, proto, port, now_ns, now_s)?;
                (s, k, off)
            }
            None => self.new_subscriber(now_ns, now_s, sub_key, tag, port)?,
        };
        let bsi = self.blocks.index(sub, k);
        let block = self.blocks.slot(bsi).block;
        let outside_port = (self.port_first + block * self.block_size + off) as u16;
        let outside = self.pool.address(self.subs.get(sub).addr);
        let m = Mapping::new(
            tag,
            owner,
            inside,
            port,
            outside,
            outside_port,
            proto,
            sub,
            k as u8,
            now_s,
        );
        let Some(slot) = self
            .maps
            .insert(m, &mut self.subs.get_mut(sub).first_mapping)
        else {
            // Not reached (checked above).
            return Err(NatDrop::TableFull);
        };
        self.blocks.slot_mut(bsi).in_use[proto.index()] += 1;
        self.counters.mappings_created += 1;
        Ok(slot)
    }

    /// The preferred offset of inside port `port` in a block.
    #[inline]
    fn preferred_offset(&self, port: u16) -> u32 {
        u32::from(port).wrapping_sub(self.port_first) % self.block_size
    }

    /// True when no mapping of `proto` holds port offset `off` of block slot `s` of a
    /// subscriber on `outside`. A block's ports belong to its subscriber alone, so the
    /// outside index answers without a per-port bitmap.
    #[inline]
    fn port_is_free(&self, outside: u32, s: usize, proto: NatProtocol, off: u32) -> bool {
        let port = self.port_first + self.blocks.slot(s).block * self.block_size + off;
        self.maps
            .find_outside(pack_key(outside, proto, port as u16))
            .is_none()
    }

    /// True when slot `s` holds an active block with a free port for `proto`.
    #[inline]
    fn has_room(&self, s: usize, proto: NatProtocol) -> bool {
        let bs = self.blocks.slot(s);
        bs.state == SlotState::Active && u32::from(bs.in_use[proto.index()]) < self.block_size
    }

    /// Finds an outside port for `proto` in subscriber `sub`'s blocks, allocating a new block
    /// on its address when they are full. Returns (block slot k, port offset); the caller
    /// counts the port in use.
    ///
    /// The inside port's offset is tried in every block first, then the other offsets of a
    /// block with room, upward from it: at most `block_size` outside-index probes, and one
    /// when the offset is free, as it is unless the subscriber reuses an inside port number
    /// or its ports crowd one block.
    fn alloc_port(
        &mut self,
        sub: u32,
        proto: NatProtocol,
        port: u16,
        now_ns: u64,
        now_s: u32,
    ) -> Result<(usize, u32), NatDrop> {
        let per = self.blocks.per_sub();
        let pref = self.preferred_offset(port);
        let outside = self.pool.address(self.subs.get(sub).addr);
        for k in 0..per {
            let s = self.blocks.index(sub, k);
            if self.has_room(s, proto) && self.port_is_free(outside, s, proto, pref) {
                return Ok((k, pref));
            }
        }
        for k in 0..per {
            let s = self.blocks.index(sub, k);
            if !self.has_room(s, proto) {
                continue;
            }
            // The count says some offset is free; the scan is bounded by the block size
            // all the same.
            for step in 1..self.block_size {
                let off = (pref + step) % self.block_size;
                if self.port_is_free(outside, s, proto, off) {
                    return Ok((k, off));
                }
            }
        }
        if usize::from(self.subs.get(sub).blocks) >= per {
            return Err(NatDrop::PortExhausted);
        }
        let Some(k) = (0..per)
            .find(|&k| self.blocks.slot(self.blocks.index(sub, k)).state == SlotState::Empty)
        else {
            return Err(NatDrop::PortExhausted);
        };
        self.new_block(sub, k, now_ns, now_s)?;
        Ok((k, pref))
    }

    /// Allocates a block on subscriber `sub`'s address into its empty slot `k` and logs it.
    fn new_block(&mut self, sub: u32, k: usize, now_ns: u64, now_s: u32) -> Result<(), NatDrop> {
        let a = self.subs.get(sub).addr;
        if self.pool.free_blocks(a) == 0 {
            return Err(NatDrop::AddressExhausted);
        }
        if !self.log.has_room() {
            return Err(NatDrop::LogQueueFull);
        }
        let b = self.pool.alloc_block(a).ok_or(NatDrop::AddressExhausted)?;
        let s = self.blocks.index(sub, k);
        self.blocks.assign(s, b, now_s);
        self.subs.get_mut(sub).blocks += 1;
        self.counters.blocks_allocated += 1;
        self.log_event(
            NatLogKind::BlockAllocated,
            now_ns,
            sub,
            b,
            NatLogReason::NewFlow,
        );
        Ok(())
    }

    /// A new subscriber on the address with the most free blocks, with its first block and
    /// the port for the flow. Returns (subscriber slot, block slot k, port offset).
    fn new_subscriber(
        &mut self,
        now_ns: u64,
        now_s: u32,
        sub_key: u32,
        tag: u64,
        port: u16,
    ) -> Result<(u32, usize, u32), NatDrop> {
        if !self.subs.has_room() {
            return Err(NatDrop::SubscriberTableFull);
        }
        let a = self.pool.most_free().ok_or(NatDrop::AddressExhausted)?;
        if !self.log.has_room() {
            return Err(NatDrop::LogQueueFull);
        }
        let (sub, grew) = self
            .subs
            .insert(sub_key, tag, a)
            .ok_or(NatDrop::SubscriberTableFull)?;
        if grew {
            self.blocks.grow();
        }
        if let Err(e) = self.new_block(sub, 0, now_ns, now_s) {
            // Not reached (room and a free block were checked); leave no empty subscriber.
            self.subs.unindex(sub);
            self.subs.free_slot(sub);
            return Err(e);
        }
        // A new block has every port free.
        Ok((sub, 0, self.preferred_offset(port)))
    }

    /// Queues a log event about block `block` of subscriber `sub`; false if the queue is full.
    fn log_event(
        &mut self,
        kind: NatLogKind,
        now_ns: u64,
        sub: u32,
        block: u32,
        reason: NatLogReason,
    ) -> bool {
        let s = self.subs.get(sub);
        let first = self.port_first + block * self.block_size;
        let e = NatLogEvent {
            kind,
            time_ns: now_ns,
            session_tag: s.session_tag,
            inside: Ipv4Addr::from_bits(s.inside),
            outside: Ipv4Addr::from_bits(self.pool.address(s.addr)),
            first_port: first as u16,
            last_port: (first + self.block_size - 1) as u16,
            reason,
        };
        let queued = self.log.push(e);
        if queued {
            self.counters.log_events += 1;
        }
        queued
    }

    /// Removes the mapping in `slot` and frees its port.
    pub(super) fn remove_mapping(&mut self, slot: u32, now_s: u32) -> Mapping {
        let sub = self.maps.get(slot).sub;
        let m = self
            .maps
            .remove(slot, &mut self.subs.get_mut(sub).first_mapping);
        let s = self.blocks.index(m.sub, usize::from(m.block_k));
        let b = self.blocks.slot_mut(s);
        if let Some(p) = m.protocol() {
            b.in_use[p.index()] -= 1;
        }
        if b.mappings() == 0 {
            b.idle_since = now_s;
        }
        m
    }

    /// Logs the release of block slot `k` of subscriber `sub` and returns the block to the
    /// pool; frees the subscriber with its last block. False (nothing changed) if the log
    /// queue is full.
    fn release_block(&mut self, sub: u32, k: usize, now_ns: u64, reason: NatLogReason) -> bool {
        let s = self.blocks.index(sub, k);
        let block = self.blocks.slot(s).block;
        if !self.log_event(NatLogKind::BlockReleased, now_ns, sub, block, reason) {
            return false;
        }
        let addr = self.subs.get(sub).addr;
        self.pool.free_block(addr, block);
        *self.blocks.slot_mut(s) = super::blocks::BlockSlot::EMPTY;
        self.counters.blocks_released += 1;
        let sr = self.subs.get_mut(sub);
        sr.blocks -= 1;
        if sr.blocks == 0 {
            self.subs.unindex(sub);
            self.subs.free_slot(sub);
        }
        true
    }

    /// Checks that every block slot's per-protocol count is the number of live mappings on
    /// its ports and that every subscriber's mapping list holds exactly its mappings.
    #[cfg(test)]
    pub(super) fn check_consistency(&self) -> Result<(), alloc::string::String> {
        use alloc::collections::BTreeMap;
        use alloc::format;
        let mut counts: BTreeMap<(usize, usize), u16> = BTreeMap::new();
        let mut of_sub: BTreeMap<u32, u32> = BTreeMap::new();
        for (_, m) in self.maps.iter() {
            let s = self.blocks.index(m.sub, usize::from(m.block_k));
            let p = m.protocol().ok_or("live mapping without protocol")?;
            *counts.entry((s, p.index())).or_default() += 1;
            *of_sub.entry(m.sub).or_default() += 1;
        }
        for s in 0..self.blocks.len() {
            for p in 0..NatProtocol::COUNT {
                let want = counts.get(&(s, p)).copied().unwrap_or(0);
                let have = self.blocks.slot(s).in_use[p];
                if have != want {
                    return Err(format!(
                        "block slot {s} protocol {p}: counts {have}, has {want}"
                    ));
                }
            }
        }
        for sub in 0..(self.blocks.len() / self.blocks.per_sub()) as u32 {
            let mut n = 0;
            let mut at = self.subs.get(sub).first_mapping;
            while at != NONE {
                if self.maps.get(at).sub != sub {
                    return Err(format!("subscriber {sub} lists mapping {at} of another"));
                }
                n += 1;
                at = self.maps.next_in_list(at);
            }
            let want = of_sub.get(&sub).copied().unwrap_or(0);
            if n != want {
                return Err(format!(
                    "subscriber {sub}: list of {n}, has {want} mappings"
                ));
            }
        }
        Ok(())
    }

    /// Releases subscriber slot `sub`: unindexes it, removes its mappings and releases its
    /// blocks (those the log queue cannot take yet are left releasing for `expire`).
    pub(super) fn release_slot(&mut self, sub: u32, now_ns: u64, reason: NatLogReason) {
        let now_s = secs(now_ns);
        self.subs.unindex(sub);
        loop {
            let first = self.subs.get(sub).first_mapping;
            if first == NONE {
                break;
            }
            self.remove_mapping(first, now_s);
            self.counters.mappings_released += 1;
        }
        for k in 0..self.blocks.per_sub() {
            let s = self.blocks.index(sub, k);
            let bs = *self.blocks.slot(s);
            if bs.state == SlotState::Active {
                let b = self.blocks.slot_mut(s);
                b.state = SlotState::Releasing;
                b.reason = reason as u8;
                if !self.release_block(sub, k, now_ns, reason) {
                    self.counters.release_deferred += 1;
                }
            } else if bs.state == SlotState::Releasing {
                self.release_block(sub, k, now_ns, NatLogReason::from_u8(bs.reason));
            }
            // The subscriber slot is freed with its last block; its other slots are empty.
        }
    }
}
