//! Subscriber sessions: a slab of [`SessionEntry`] indexed by access key, by subscriber IPv4
//! address and by session id, hashed with a seeded foldhash hasher.
//!
//! The two indexes the fast path reads are [`TagIndex`]es: one cache line per lookup,
//! prefetchable from the hash. The IPv4 index holds the address itself and answers exactly;
//! the access index holds 32 bits of the key's hash, so its answer is a candidate that the
//! caller confirms against the entry it reads anyway ([`SessionTable::confirm_access`]).
//! A burst hashes every key and prefetches its bucket ([`SessionTable::prefetch_access`]),
//! then probes ([`SessionTable::access_candidate`], [`SessionTable::find_ipv4`]) and
//! prefetches the entries, then reads them. The control plane's index by session id is a
//! hashbrown `HashTable`, and so is the IPv6 index: a session's /64 and delegated prefix
//! ([`SessionIpv6`]) keyed by (top 64 bits, length), looked up longest length first among
//! the lengths in use.

#![forbid(unsafe_code)]

use alloc::vec::Vec;
use core::hash::BuildHasher;
use core::net::{Ipv4Addr, Ipv6Addr};

use foldhash::fast::FixedState;
use hashbrown::HashTable;

use crate::packet::PortId;
use crate::prefix64::{Prefix64Map, top_bits};
use crate::wire::EthernetAddress;
use crate::wire::frame::L2Header;

use crate::tag_index::{self as index, TagIndex};

/// Session identifier: the UP-allocated F-SEID the session was first established with (the
/// PFCP agent keeps it when a restarted CP adopts the session under a new F-SEID).
pub type SessionId = u64;

/// Where a subscriber is attached: access port, VLAN ids (0 = absent), source MAC and,
/// for a PPPoE subscriber, the PPPoE session id (0 = IPoE). One MAC may hold an IPoE
/// session and several PPPoE sessions at once: they differ in `pppoe_session`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct AccessKey {
    /// Access port index.
    pub port: PortId,
    /// Outer (S) VLAN id, 0 = none.
    pub svlan: u16,
    /// Inner (C) VLAN id, 0 = none.
    pub cvlan: u16,
    /// Subscriber MAC address.
    pub mac: EthernetAddress,
    /// PPPoE session id (RFC 2516), 0 for an IPoE subscriber.
    pub pppoe_session: u16,
}

/// [`AccessKey::pack`] from the fields, the MAC address as [`EthernetAddress::to_u64`]
/// gives it: for a parser that reads the MAC as one word instead of building the key.
#[inline(always)]
pub const fn pack_access(
    port: PortId,
    svlan: u16,
    cvlan: u16,
    mac48: u64,
    pppoe_session: u16,
) -> u128 {
    (pppoe_session as u128) << 88
        | (port as u128) << 80
        | (svlan as u128) << 64
        | (cvlan as u128) << 48
        | (mac48 & 0xffff_ffff_ffff) as u128
}

impl AccessKey {
    /// The key of a frame received on `port` with header `l2` (source MAC, tags).
    #[inline]
    pub fn from_l2(port: PortId, l2: &L2Header) -> Self {
        AccessKey {
            port,
            svlan: l2.svlan.unwrap_or(0),
            cvlan: l2.cvlan.unwrap_or(0),
            mac: l2.src,
            pppoe_session: 0,
        }
    }

    /// The same attachment, for PPPoE session `id`.
    #[inline]
    pub const fn with_pppoe_session(self, id: u16) -> Self {
        AccessKey {
            pppoe_session: id,
            ..self
        }
    }

    /// True for a PPPoE subscriber.
    #[inline]
    pub const fn is_pppoe(&self) -> bool {
        self.pppoe_session != 0
    }

    /// Packs the key into one word: PPPoE session (16 bits) | port (8) | svlan (16) |
    /// cvlan (16) | MAC (48). Injective, so equal packed values mean equal keys.
    #[inline]
    pub const fn pack(&self) -> u128 {
        pack_access(
            self.port,
            self.svlan,
            self.cvlan,
            self.mac.to_u64(),
            self.pppoe_session,
        )
    }

    /// Inverse of [`AccessKey::pack`].
    pub const fn unpack(v: u128) -> Self {
        let m = v as u64;
        AccessKey {
            pppoe_session: (v >> 88) as u16,
            port: (v >> 80) as u8,
            svlan: (v >> 64) as u16,
            cvlan: (v >> 48) as u16,
            mac: EthernetAddress([
                (m >> 40) as u8,
                (m >> 32) as u8,
                (m >> 24) as u8,
                (m >> 16) as u8,
                (m >> 8) as u8,
                m as u8,
            ]),
        }
    }

    /// The VLAN tags to push on downstream frames: (svlan, cvlan), `None` for 0.
    #[inline]
    pub fn tags(&self) -> (Option<u16>, Option<u16>) {
        let nz = |v: u16| if v == 0 { None } else { Some(v) };
        (nz(self.svlan), nz(self.cvlan))
    }
}

/// Volume counters of one session. Bytes are IPv4 bytes (total length), as PFCP volume
/// measurement reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UsageCounters {
    /// Uplink (subscriber -> core) packets forwarded.
    pub ul_packets: u64,
    /// Uplink bytes forwarded.
    pub ul_bytes: u64,
    /// Downlink (core -> subscriber) packets forwarded.
    pub dl_packets: u64,
    /// Downlink bytes forwarded.
    pub dl_bytes: u64,
}

/// Rate limits of one session, in bits per second of IPv4 packets (total length, no L2
/// overhead). `None` = unlimited: the session's frames bypass the shaper / policer exactly
/// as before QoS existed.
///
/// Filled by the PFCP agent from the QER maximum bit rate (MBR kbit/s x 1000; a direction
/// whose MBR is 0 is unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SessionQos {
    /// Downlink (core -> subscriber) shaping rate.
    pub dl_rate_bps: Option<u64>,
    /// Uplink (subscriber -> core) policing rate.
    pub ul_rate_bps: Option<u64>,
}

impl SessionQos {
    /// No limit in either direction.
    pub const UNLIMITED: SessionQos = SessionQos {
        dl_rate_bps: None,
        ul_rate_bps: None,
    };
}

/// One subscriber session.
///
/// Laid out as two cache lines (`repr(C)`, 64-byte aligned): the first holds everything a
/// forwarded packet reads or updates without QoS (access key, address, gate, MTU, MSS, ACL,
/// usage counters), so the fast path asks for one line per packet; the rate limits and the
/// id are in the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct SessionEntry {
    /// Access attachment.
    pub access: AccessKey,
    /// Subscriber IPv4 address.
    pub ipv4: Ipv4Addr,
    /// Forwarding allowed (QER gate; false drops in both directions).
    pub gate_open: bool,
    /// Largest downstream IPv4 packet (total length) the subscriber's link carries; longer
    /// ones are dropped (`mtu_exceeded`). 0 = no limit (IPoE); PPPoE default 1492.
    pub mtu: u16,
    /// TCP MSS announced in the session's SYNs and SYN/ACKs is lowered to this, both
    /// directions. 0 = off (IPoE); PPPoE default 1452 (MTU - 40).
    pub mss_clamp: u16,
    /// The session's ACL in the pipeline's [`crate::acl::AclSet`], or
    /// [`crate::acl::NO_ACL`]; checked after the global ACL, both directions.
    pub acl: crate::acl::AclId,
    /// Usage so far.
    pub counters: UsageCounters,
    /// Rate limits (QER MBR); applied live by [`crate::pipeline::Pipeline::apply`].
    pub qos: SessionQos,
    /// Session id (see [`SessionId`]).
    pub id: SessionId,
    /// IPv6 prefixes ([`SessionIpv6::NONE`] for an IPv4-only session); in the second line,
    /// which only IPv6 packets read.
    pub ipv6: SessionIpv6,
}

/// The IPv6 prefixes of a session: its own prefix (a PPPoE session's SLAAC /64) and a
/// delegated prefix (DHCPv6 IA_PD), each at most 64 bits long and so kept as the top 64 bits
/// of the address and a length, 0 for none. Upstream packets must come from one of them,
/// downstream packets to either go to the session (the longest prefix wins across sessions).
/// 24 bytes: with the rates and the id it fills the entry's second line exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct SessionIpv6 {
    /// Top 64 bits of the session's prefix (bits past `prefix_len` are zero).
    pub prefix: u64,
    /// Top 64 bits of the delegated prefix (bits past `delegated_len` are zero).
    pub delegated: u64,
    /// Length of `prefix`, 1-64; 0: none.
    pub prefix_len: u8,
    /// Length of `delegated`, 1-64; 0: none.
    pub delegated_len: u8,
}

impl SessionIpv6 {
    /// No IPv6.
    pub const NONE: SessionIpv6 = SessionIpv6 {
        prefix: 0,
        delegated: 0,
        prefix_len: 0,
        delegated_len: 0,
    };

    /// The prefixes `prefix` and `delegated` (address and length; host bits are cleared).
    /// Fails for a length of 0 or above 64.
    pub fn new(
        prefix: Option<(Ipv6Addr, u8)>,
        delegated: Option<(Ipv6Addr, u8)>,
    ) -> Result<SessionIpv6, SessionError> {
        let part = |p: Option<(Ipv6Addr, u8)>| match p {
            None => Ok((0, 0)),
            Some((addr, len @ 1..=64)) => Ok(((addr.to_bits() >> 64) as u64 & top_bits(len), len)),
            Some((_, len)) => Err(SessionError::Ipv6PrefixLength(len)),
        };
        let (prefix, prefix_len) = part(prefix)?;
        let (delegated, delegated_len) = part(delegated)?;
        Ok(SessionIpv6 {
            prefix,
            delegated,
            prefix_len,
            delegated_len,
        })
    }

    /// True when the session has no IPv6 prefix.
    #[inline]
    pub fn is_none(&self) -> bool {
        self.prefix_len == 0 && self.delegated_len == 0
    }

    /// The prefixes present, as (top 64 bits, length).
    pub fn prefixes(&self) -> impl Iterator<Item = (u64, u8)> {
        [
            (self.prefix, self.prefix_len),
            (self.delegated, self.delegated_len),
        ]
        .into_iter()
        .filter(|p| p.1 != 0)
    }

    /// The prefixes present, as addresses and lengths.
    pub fn prefix_addrs(&self) -> impl Iterator<Item = (Ipv6Addr, u8)> {
        self.prefixes()
            .map(|(bits, len)| (Ipv6Addr::from_bits(u128::from(bits) << 64), len))
    }

    /// True if an address whose top 64 bits are `top` is inside one of the prefixes.
    #[inline(always)]
    pub fn contains(&self, top: u64) -> bool {
        (self.prefix_len != 0 && top & top_bits(self.prefix_len) == self.prefix)
            || (self.delegated_len != 0 && top & top_bits(self.delegated_len) == self.delegated)
    }
}

/// Bytes of the first line of a [`SessionEntry`]: what the fast path reads without QoS.
pub const SESSION_HOT_BYTES: usize = 64;

/// Errors from [`SessionTable::upsert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Another session already uses this access key.
    #[error("access key {key:?} already belongs to session {owner}")]
    AccessKeyInUse {
        /// The conflicting key.
        key: AccessKey,
        /// The session that owns it.
        owner: SessionId,
    },
    /// Another session already uses this IPv4 address.
    #[error("IPv4 address {ipv4} already belongs to session {owner}")]
    Ipv4InUse {
        /// The conflicting address.
        ipv4: Ipv4Addr,
        /// The session that owns it.
        owner: SessionId,
    },
    /// Another session already uses this IPv6 prefix.
    #[error("IPv6 prefix {prefix}/{len} already belongs to session {owner}")]
    Ipv6InUse {
        /// The conflicting prefix.
        prefix: Ipv6Addr,
        /// Its length.
        len: u8,
        /// The session that owns it.
        owner: SessionId,
    },
    /// A session's IPv6 prefix must be 1 to 64 bits long.
    #[error("IPv6 prefix length /{0} is not supported: expected 1-64")]
    Ipv6PrefixLength(u8),
    /// The slab holds `u32::MAX - 1` sessions.
    #[error("session table full")]
    Full,
}

/// Slot index in the slab.
pub type Slot = u32;

/// Entries between a bucket's prefetch and its insert when the indexes are rebuilt.
const REBUILD_AHEAD: usize = 16;

/// The access index's tag for a key's hash: the half the bucket index does not use (the
/// index would need 2^32 buckets to overlap it).
#[inline(always)]
const fn access_tag(hash: u64) -> u32 {
    (hash >> 32) as u32
}

/// The session table. Single writer; lookups are O(1).
pub struct SessionTable {
    /// Entries by slot; a free slot keeps a stale entry, marked free in `live`.
    slab: Vec<SessionEntry>,
    /// Bit `slot` set: the slot holds a session. A separate bitmap (one bit per session)
    /// rather than `Option`, whose tag the compiler would place in the entry's second line.
    live: Vec<u64>,
    free: Vec<Slot>,
    /// Tag: the high half of the key's hash.
    by_access: TagIndex,
    /// Tag: the address.
    by_ipv4: TagIndex,
    /// Slots by session id, compared with the id in the entry: 5 bytes a bucket where
    /// the id beside the slot took 17.
    by_id: HashTable<Slot>,
    /// IPv6 prefixes and their sessions' slots, probed per length in use.
    by_ipv6: Prefix64Map<Slot>,
    hasher: FixedState,
}

impl core::fmt::Debug for SessionTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SessionTable")
            .field("len", &self.len())
            .field("slab", &self.slab.len())
            .finish()
    }
}

impl SessionTable {
    /// An empty table whose hashes are seeded with `seed` (use a random value per process so
    /// that subscribers cannot aim collisions).
    pub fn new(seed: u64) -> Self {
        SessionTable {
            slab: Vec::new(),
            live: Vec::new(),
            free: Vec::new(),
            by_access: TagIndex::with_capacity(0),
            by_ipv4: TagIndex::with_capacity(0),
            by_id: HashTable::new(),
            by_ipv6: Prefix64Map::new(seed),
            hasher: FixedState::with_seed(seed),
        }
    }

    /// An empty table with room for `capacity` sessions before reallocating
    /// ([`SessionTable::reserve`]).
    pub fn with_capacity(seed: u64, capacity: usize) -> Self {
        let mut table = Self::new(seed);
        table.reserve(capacity);
        table
    }

    /// Number of sessions.
    #[inline]
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True if there are no sessions.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Hash of a packed access key.
    #[inline]
    pub fn hash_access(&self, packed: u128) -> u64 {
        self.hasher.hash_one(packed)
    }

    /// Hash of an IPv4 address (as `u32`).
    #[inline]
    pub fn hash_ipv4(&self, ip: u32) -> u64 {
        self.hasher.hash_one(ip)
    }

    #[inline]
    fn hash_id(&self, id: u64) -> u64 {
        self.hasher.hash_one(id)
    }

    /// Asks the CPU for the access index's bucket of `hash` (a key's
    /// [`SessionTable::hash_access`]).
    #[inline(always)]
    pub fn prefetch_access(&self, hash: u64) {
        self.by_access.prefetch(hash);
    }

    /// Asks the CPU for the IPv4 index's bucket of `hash` (an address's
    /// [`SessionTable::hash_ipv4`]).
    #[inline(always)]
    pub fn prefetch_ipv4(&self, hash: u64) {
        self.by_ipv4.prefetch(hash);
    }

    /// The slot that probably holds the access key of `hash`, from the index alone: confirm
    /// it with [`SessionTable::confirm_access`] before use. None means no session has it.
    #[inline(always)]
    pub fn access_candidate(&self, hash: u64) -> Option<Slot> {
        self.by_access.find(hash, access_tag(hash), |_| true)
    }

    /// The slot and session of access key `packed` given
    /// [`SessionTable::access_candidate`]'s answer: `candidate` itself if its entry has that
    /// key (reading the entry the caller reads next anyway), otherwise the full lookup.
    #[inline(always)]
    pub fn confirm_access(&self, candidate: Slot, packed: u128) -> Option<(Slot, &SessionEntry)> {
        match self.indexed_entry(candidate) {
            Some(e) if e.access.pack() == packed => Some((candidate, e)),
            _ => {
                let s = self.find_access(self.hash_access(packed), packed)?;
                Some((s, self.entry(s)?))
            }
        }
    }

    /// Probes the access index with a precomputed hash, confirming every candidate against
    /// the slab.
    pub fn find_access(&self, hash: u64, packed: u128) -> Option<Slot> {
        self.by_access.find(hash, access_tag(hash), |s| {
            self.entry(s).is_some_and(|e| e.access.pack() == packed)
        })
    }

    /// The slot of the session with IPv4 address `ip` given a slot that probably holds it
    /// (a hint kept from an earlier packet, which may have gone stale): `candidate` itself
    /// if it holds a live session of that address (reading the entry the caller reads next
    /// anyway), otherwise the index's answer. None if no session has the address.
    #[inline(always)]
    pub fn confirm_ipv4(&self, candidate: Slot, ip: u32) -> Option<Slot> {
        if self.holds_ipv4(candidate, ip) {
            Some(candidate)
        } else {
            self.lookup_ipv4(Ipv4Addr::from_bits(ip))
        }
    }

    /// True if `slot` holds a live session with IPv4 address `ip`.
    #[inline(always)]
    pub fn holds_ipv4(&self, slot: Slot, ip: u32) -> bool {
        self.entry(slot).is_some_and(|e| e.ipv4.to_bits() == ip)
    }

    /// Probes the IPv4 index with a precomputed hash (exact: the index holds the address).
    #[inline(always)]
    pub fn find_ipv4(&self, hash: u64, ip: u32) -> Option<Slot> {
        self.by_ipv4.find(hash, ip, |_| true)
    }

    /// Slot of the session whose IPv6 prefix holds an address with top 64 bits `top`, the
    /// longest prefix winning: one probe per prefix length in use (two with /64s and one
    /// delegated length).
    #[inline]
    pub fn find_ipv6(&self, top: u64) -> Option<Slot> {
        self.by_ipv6.longest(top)
    }

    /// Slot of the session owning IPv6 address `ip` ([`SessionTable::find_ipv6`]).
    pub fn lookup_ipv6(&self, ip: Ipv6Addr) -> Option<Slot> {
        self.find_ipv6((ip.to_bits() >> 64) as u64)
    }

    fn index_ipv6(&mut self, v6: &SessionIpv6, slot: Slot) {
        for (top, len) in v6.prefixes() {
            if self.by_ipv6.get(top, len).is_some() {
                // Prefix and delegated prefix equal: one entry serves both.
                continue;
            }
            self.by_ipv6.set(top, len, slot);
        }
    }

    fn unindex_ipv6(&mut self, v6: &SessionIpv6, slot: Slot) {
        for (top, len) in v6.prefixes() {
            self.by_ipv6.remove_if(top, len, |s| s == slot);
        }
    }

    /// Slot of the session attached at `key`.
    pub fn lookup_access(&self, key: &AccessKey) -> Option<Slot> {
        let p = key.pack();
        self.find_access(self.hash_access(p), p)
    }

    /// Slot of the session owning `ip`.
    pub fn lookup_ipv4(&self, ip: Ipv4Addr) -> Option<Slot> {
        let v = ip.to_bits();
        self.find_ipv4(self.hash_ipv4(v), v)
    }

    /// Slot of session `id`.
    pub fn lookup_id(&self, id: SessionId) -> Option<Slot> {
        let slab = &self.slab;
        self.by_id
            .find(self.hash_id(id), |s| {
                slab.get(*s as usize).is_some_and(|e| e.id == id)
            })
            .copied()
    }

    /// The session in `slot`.
    #[inline]
    pub fn entry(&self, slot: Slot) -> Option<&SessionEntry> {
        if self.is_live(slot) {
            self.slab.get(slot as usize)
        } else {
            None
        }
    }

    /// The session in `slot`, a slot one of the indexes returned since the table last
    /// changed (the indexes hold live slots only), without the liveness check: at a million
    /// sessions the bitmap's word is one more line a lookup may miss. None only for a slot
    /// past the slab.
    #[inline(always)]
    pub fn indexed_entry(&self, slot: Slot) -> Option<&SessionEntry> {
        debug_assert!(
            slot == Slot::MAX || self.is_live(slot),
            "slot {slot} is free"
        );
        self.slab.get(slot as usize)
    }

    /// Hints the CPU to fetch the first line of the session in `slot` (see
    /// [`crate::prefetch`]), and with `with_qos` the second line, the rate limits, too.
    #[inline(always)]
    pub fn prefetch_entry(&self, slot: Slot, with_qos: bool) {
        if let Some(e) = self.slab.get(slot as usize) {
            if with_qos {
                crate::prefetch::prefetch(e);
            } else {
                crate::prefetch::prefetch_line(e);
            }
        }
    }

    /// The session in `slot`, writable (do not change `id`, `access` or `ipv4` through it:
    /// the indexes would go stale; use [`SessionTable::upsert`]).
    #[inline]
    pub fn entry_mut(&mut self, slot: Slot) -> Option<&mut SessionEntry> {
        if self.is_live(slot) {
            self.slab.get_mut(slot as usize)
        } else {
            None
        }
    }

    /// Updates the usage counters of the session in `slot`, a slot the caller just found
    /// live: it skips the liveness check (a free slot's counters are overwritten when the
    /// slot is reused, so a stale slot would only change numbers nobody reads).
    #[inline(always)]
    pub fn count_usage(&mut self, slot: Slot, update: impl FnOnce(&mut UsageCounters)) {
        if let Some(e) = self.slab.get_mut(slot as usize) {
            update(&mut e.counters);
        }
    }

    /// Session `id`.
    pub fn get(&self, id: SessionId) -> Option<&SessionEntry> {
        self.lookup_id(id).and_then(|s| self.entry(s))
    }

    /// All sessions, in slab order.
    pub fn iter(&self) -> impl Iterator<Item = &SessionEntry> {
        self.slab
            .iter()
            .enumerate()
            .filter(|(s, _)| self.is_live(*s as Slot))
            .map(|(_, e)| e)
    }

    /// Inserts a session, or updates session `entry.id` if it exists. On update the usage
    /// counters already accumulated are kept (the ones in `entry` are ignored), and the access
    /// key and address may change. Fails without changing anything if another session uses
    /// the same access key or IPv4 address. Returns the slot.
    pub fn upsert(&mut self, entry: SessionEntry) -> Result<Slot, SessionError> {
        let packed = entry.access.pack();
        let ip = entry.ipv4.to_bits();
        let ha = self.hash_access(packed);
        let hi = self.hash_ipv4(ip);
        if let Some(s) = self.find_access(ha, packed) {
            let owner = self.entry(s).map_or(0, |e| e.id);
            if owner != entry.id {
                return Err(SessionError::AccessKeyInUse {
                    key: entry.access,
                    owner,
                });
            }
        }
        if let Some(s) = self.find_ipv4(hi, ip) {
            let owner = self.entry(s).map_or(0, |e| e.id);
            if owner != entry.id {
                return Err(SessionError::Ipv4InUse {
                    ipv4: entry.ipv4,
                    owner,
                });
            }
        }
        for (top, len) in entry.ipv6.prefixes() {
            if let Some(s) = self.by_ipv6.get(top, len) {
                let owner = self.entry(s).map_or(0, |e| e.id);
                if owner != entry.id {
                    return Err(SessionError::Ipv6InUse {
                        prefix: Ipv6Addr::from_bits(u128::from(top) << 64),
                        len,
                        owner,
                    });
                }
            }
        }
        if let Some(slot) = self.lookup_id(entry.id) {
            let Some(&old) = self.entry(slot) else {
                return Err(SessionError::Full);
            };
            if old.ipv6 != entry.ipv6 {
                self.unindex_ipv6(&old.ipv6, slot);
                self.index_ipv6(&entry.ipv6, slot);
            }
            if old.access != entry.access {
                self.unindex_access(old.access.pack(), slot);
                self.by_access.insert(ha, access_tag(ha), slot);
            }
            if old.ipv4 != entry.ipv4 {
                self.unindex_ipv4(old.ipv4.to_bits(), slot);
                self.by_ipv4.insert(hi, ip, slot);
            }
            self.slab[slot as usize] = SessionEntry {
                counters: old.counters,
                ..entry
            };
            return Ok(slot);
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None => Slot::try_from(self.slab.len())
                .ok()
                .filter(|s| *s != Slot::MAX)
                .ok_or(SessionError::Full)?,
        };
        if self.by_access.is_full() {
            // The new slot is not live yet: the rebuild skips it.
            self.grow_indexes();
        }
        if slot as usize == self.slab.len() {
            if self.slab.len() == self.slab.capacity() {
                // Grow by an eighth, not double: at a million sessions doubling could leave
                // 128 unused bytes per session, an eighth at most 16 (and copies the slab
                // about eight times over as it grows, once per session on average).
                self.slab.reserve_exact(self.slab.len() / 8 + 16);
            }
            self.slab.push(entry);
            if self.live.len() * 64 < self.slab.len() {
                self.live.push(0);
            }
        } else {
            self.slab[slot as usize] = entry;
        }
        self.set_live(slot, true);
        self.by_access.insert(ha, access_tag(ha), slot);
        self.by_ipv4.insert(hi, ip, slot);
        self.index_ipv6(&entry.ipv6, slot);
        let (hasher, slab) = (&self.hasher, &self.slab);
        self.by_id
            .insert_unique(hasher.hash_one(entry.id), slot, |s| {
                hasher.hash_one(slab.get(*s as usize).map_or(0, |e| e.id))
            });
        Ok(slot)
    }

    /// Makes room for `sessions` sessions in all: adding sessions up to that many then
    /// neither grows the slab nor rebuilds the indexes. Each growth step otherwise runs in
    /// the worker, between two bursts: an index rebuild or the id index doubling took 65
    /// to 163 ms near 1M sessions (the slab itself grows without a copy under the
    /// huge-page allocator). The room is allocated now, whether used or not.
    pub fn reserve(&mut self, sessions: usize) {
        let sessions = sessions.min(Slot::MAX as usize);
        self.slab
            .reserve_exact(sessions.saturating_sub(self.slab.len()));
        self.live
            .reserve_exact(sessions.div_ceil(64).saturating_sub(self.live.len()));
        if sessions > self.by_access.bucket_count() * index::MAX_LOAD {
            self.rebuild_indexes(sessions);
        }
        let (hasher, slab) = (&self.hasher, &self.slab);
        self.by_id
            .reserve(sessions.saturating_sub(self.by_id.len()), |s| {
                hasher.hash_one(slab.get(*s as usize).map_or(0, |e| e.id))
            });
    }

    /// Rebuilds the access and IPv4 indexes with a quarter more buckets (so that they stay
    /// between 4 and 5 entries a bucket, 13 to 16 bytes an entry, as the table grows).
    fn grow_indexes(&mut self) {
        let capacity = (self.by_access.bucket_count() * 5).div_ceil(4) * index::MAX_LOAD;
        self.rebuild_indexes(capacity);
    }

    /// Rebuilds the access and IPv4 indexes with room for `capacity` entries.
    ///
    /// The slab is read in order, but every insert lands at random in indexes of tens of
    /// megabytes at high session counts, and this runs in the worker between two bursts.
    /// So each entry's buckets are prefetched [`REBUILD_AHEAD`] entries before its insert,
    /// as the fast path does for lookups.
    fn rebuild_indexes(&mut self, capacity: usize) {
        let mut by_access = TagIndex::with_capacity(capacity);
        let mut by_ipv4 = TagIndex::with_capacity(capacity);
        // (slot, access hash, IPv4 hash, address) of the entries whose buckets are on
        // their way, oldest first at `n % REBUILD_AHEAD`.
        let mut pending = [(0 as Slot, 0u64, 0u64, 0u32); REBUILD_AHEAD];
        let insert = |a: &mut TagIndex, v: &mut TagIndex, (slot, ha, hi, ip)| {
            a.insert(ha, access_tag(ha), slot);
            v.insert(hi, ip, slot);
        };
        let mut n = 0usize;
        for (slot, e) in self.slab.iter().enumerate() {
            if !self.is_live(slot as Slot) {
                continue;
            }
            let ha = self.hash_access(e.access.pack());
            let ip = e.ipv4.to_bits();
            let hi = self.hash_ipv4(ip);
            by_access.prefetch(ha);
            by_ipv4.prefetch(hi);
            let k = n % REBUILD_AHEAD;
            if n >= REBUILD_AHEAD {
                insert(&mut by_access, &mut by_ipv4, pending[k]);
            }
            pending[k] = (slot as Slot, ha, hi, ip);
            n += 1;
        }
        for i in n.saturating_sub(REBUILD_AHEAD)..n {
            insert(&mut by_access, &mut by_ipv4, pending[i % REBUILD_AHEAD]);
        }
        self.by_access = by_access;
        self.by_ipv4 = by_ipv4;
    }

    #[inline(always)]
    fn is_live(&self, slot: Slot) -> bool {
        let i = slot as usize;
        self.live
            .get(i / 64)
            .is_some_and(|w| w >> (i % 64) & 1 != 0)
    }

    fn set_live(&mut self, slot: Slot, live: bool) {
        let i = slot as usize;
        if let Some(w) = self.live.get_mut(i / 64) {
            let bit = 1u64 << (i % 64);
            if live {
                *w |= bit;
            } else {
                *w &= !bit;
            }
        }
    }

    /// Bytes the fast path's two indexes occupy (for sizing reports).
    pub fn index_bytes(&self) -> usize {
        self.by_access.bytes() + self.by_ipv4.bytes()
    }

    /// Bytes the table has allocated: the slab and its bitmap and free list at their
    /// capacity, the two fast-path indexes, and the id and IPv6 indexes.
    pub fn memory_bytes(&self) -> usize {
        let id_bytes = hash_table_bytes(self.by_id.capacity(), size_of::<Slot>());
        let v6_bytes = self.by_ipv6.table_bytes();
        self.slab.capacity() * size_of::<SessionEntry>()
            + self.live.capacity() * size_of::<u64>()
            + self.free.capacity() * size_of::<Slot>()
            + self.index_bytes()
            + id_bytes
            + v6_bytes
    }

    fn unindex_access(&mut self, packed: u128, slot: Slot) {
        let h = self.hash_access(packed);
        self.by_access.remove(h, access_tag(h), slot);
    }

    fn unindex_ipv4(&mut self, ip: u32, slot: Slot) {
        let h = self.hash_ipv4(ip);
        self.by_ipv4.remove(h, ip, slot);
    }

    /// Removes session `id` and returns it (with its final counters).
    pub fn remove(&mut self, id: SessionId) -> Option<SessionEntry> {
        let h = self.hash_id(id);
        let slab = &self.slab;
        let slot = self
            .by_id
            .find_entry(h, |s| slab.get(*s as usize).is_some_and(|e| e.id == id))
            .ok()?
            .remove()
            .0;
        let entry = *self.entry(slot)?;
        self.set_live(slot, false);
        self.unindex_access(entry.access.pack(), slot);
        self.unindex_ipv4(entry.ipv4.to_bits(), slot);
        self.unindex_ipv6(&entry.ipv6, slot);
        self.free.push(slot);
        Some(entry)
    }

    /// Removes every session.
    pub fn clear(&mut self) {
        self.slab.clear();
        self.live.clear();
        self.free.clear();
        self.by_access.clear();
        self.by_ipv4.clear();
        self.by_id.clear();
        self.by_ipv6.clear();
    }
}

/// Bytes of a hashbrown table of `capacity` entries of `entry` bytes: one entry and one
/// control byte per bucket, buckets = capacity * 8 / 7 (a power of two below 8), plus one
/// group of trailing control bytes.
pub(crate) fn hash_table_bytes(capacity: usize, entry: usize) -> usize {
    let buckets = match capacity {
        0 => return 0,
        c if c < 8 => (c + 1).next_power_of_two(),
        c => c * 8 / 7,
    };
    buckets * (entry + 1) + 16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::EtherType;
    use alloc::collections::BTreeMap;
    use proptest::prelude::*;

    fn entry(id: u64, port: u8, cvlan: u16, mac_last: u8, ip_last: u8) -> SessionEntry {
        SessionEntry {
            id,
            access: AccessKey {
                port,
                svlan: 0,
                cvlan,
                mac: EthernetAddress([2, 0, 0, 0, 0, mac_last]),
                pppoe_session: 0,
            },
            ipv4: Ipv4Addr::new(100, 64, 0, ip_last),
            gate_open: true,
            qos: SessionQos::UNLIMITED,
            mtu: 0,
            mss_clamp: 0,
            acl: crate::acl::NO_ACL,
            counters: UsageCounters::default(),
            ipv6: SessionIpv6::NONE,
        }
    }

    #[test]
    fn pack_is_injective_on_fields() {
        let k = AccessKey {
            port: 15,
            svlan: 4095,
            cvlan: 1,
            mac: EthernetAddress([1, 2, 3, 4, 5, 6]),
            pppoe_session: 0,
        };
        assert_eq!(AccessKey::unpack(k.pack()), k);
        let p = k.with_pppoe_session(0xfffe);
        assert!(p.is_pppoe() && !k.is_pppoe());
        assert_eq!(AccessKey::unpack(p.pack()), p);
        assert_ne!(p.pack(), k.pack());
        let l2 = L2Header {
            dst: EthernetAddress::BROADCAST,
            src: k.mac,
            svlan: Some(4095),
            cvlan: Some(1),
            ethertype: EtherType::Ipv4,
        };
        assert_eq!(AccessKey::from_l2(15, &l2), k);
        assert_eq!(k.tags(), (Some(4095), Some(1)));
    }

    #[test]
    fn a_slot_hint_is_taken_only_while_it_holds_the_address() {
        let mut t = SessionTable::new(42);
        let a = entry(1, 0, 10, 1, 10);
        let b = entry(2, 0, 11, 2, 11);
        let (sa, sb) = (t.upsert(a).unwrap(), t.upsert(b).unwrap());
        let (ip_a, ip_b) = (a.ipv4.to_bits(), b.ipv4.to_bits());
        assert_eq!(t.confirm_ipv4(sa, ip_a), Some(sa));
        // Another session's slot, a slot past the slab: the index answers.
        assert_eq!(t.confirm_ipv4(sb, ip_a), Some(sa));
        assert_eq!(t.confirm_ipv4(Slot::MAX, ip_b), Some(sb));
        // A freed slot keeps its stale entry, with the old address: not taken.
        t.remove(1).unwrap();
        assert_eq!(t.confirm_ipv4(sa, ip_a), None);
        // The address back in another slot: the index finds it.
        t.upsert(entry(3, 0, 12, 3, 99)).unwrap();
        let moved = t.upsert(entry(4, 0, 13, 4, 10)).unwrap();
        assert_ne!(moved, sa);
        assert_eq!(t.confirm_ipv4(sa, ip_a), Some(moved));
    }

    #[test]
    fn insert_lookup_remove() {
        let mut t = SessionTable::new(42);
        let a = entry(1, 0, 10, 1, 10);
        let b = entry(2, 0, 11, 2, 11);
        let sa = t.upsert(a).unwrap();
        let sb = t.upsert(b).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.lookup_access(&a.access), Some(sa));
        assert_eq!(t.lookup_ipv4(b.ipv4), Some(sb));
        assert_eq!(t.get(2).unwrap().ipv4, b.ipv4);
        // Conflicts are rejected.
        let dup_key = SessionEntry {
            id: 3,
            ..entry(3, 0, 10, 1, 99)
        };
        assert!(matches!(
            t.upsert(dup_key),
            Err(SessionError::AccessKeyInUse { owner: 1, .. })
        ));
        let dup_ip = entry(3, 0, 12, 3, 10);
        assert!(matches!(
            t.upsert(dup_ip),
            Err(SessionError::Ipv4InUse { owner: 1, .. })
        ));
        // Update keeps counters, moves indexes.
        t.entry_mut(sa).unwrap().counters.ul_packets = 5;
        let moved = SessionEntry {
            gate_open: false,
            ..entry(1, 1, 20, 1, 20)
        };
        assert_eq!(t.upsert(moved).unwrap(), sa);
        assert_eq!(t.lookup_access(&a.access), None);
        assert_eq!(t.lookup_ipv4(a.ipv4), None);
        assert_eq!(t.lookup_access(&moved.access), Some(sa));
        assert_eq!(t.lookup_ipv4(moved.ipv4), Some(sa));
        assert_eq!(t.get(1).unwrap().counters.ul_packets, 5);
        assert!(!t.get(1).unwrap().gate_open);
        // Remove returns counters and frees the slot for reuse.
        let r = t.remove(1).unwrap();
        assert_eq!(r.counters.ul_packets, 5);
        assert!(t.remove(1).is_none());
        assert_eq!(t.lookup_ipv4(moved.ipv4), None);
        assert_eq!(t.upsert(entry(7, 0, 30, 7, 30)).unwrap(), sa);
        assert_eq!(t.iter().count(), 2);
        t.clear();
        assert!(t.is_empty());
    }

    #[test]
    fn the_fast_path_fields_share_the_first_line() {
        use core::mem::offset_of;
        let counters_end = offset_of!(SessionEntry, counters) + size_of::<UsageCounters>();
        assert!(counters_end <= SESSION_HOT_BYTES);
        assert!(offset_of!(SessionEntry, qos) >= SESSION_HOT_BYTES);
        assert!(offset_of!(SessionEntry, id) >= SESSION_HOT_BYTES);
        assert!(offset_of!(SessionEntry, ipv6) >= SESSION_HOT_BYTES);
        assert_eq!(size_of::<SessionEntry>(), 128);
        assert_eq!(align_of::<SessionEntry>(), 64);
    }

    #[test]
    fn ipv6_prefixes_follow_updates_and_removal() {
        let mut t = SessionTable::new(3);
        let mut a = entry(1, 0, 10, 1, 10);
        let slash64: Ipv6Addr = "2001:db8:1:1::".parse().unwrap();
        let host: Ipv6Addr = "2001:db8:1:1::5".parse().unwrap();
        a.ipv6 = SessionIpv6::new(Some((slash64, 64)), None).unwrap();
        let s = t.upsert(a).unwrap();
        assert_eq!(t.lookup_ipv6(host), Some(s));
        assert_eq!(t.lookup_ipv6("2001:db8:1:2::5".parse().unwrap()), None);
        // The update replaces the /64 by a delegated /48 (host bits of the input ignored).
        let pd: Ipv6Addr = "2001:db8:80:1::".parse().unwrap();
        a.ipv6 = SessionIpv6::new(None, Some((pd, 48))).unwrap();
        assert_eq!(a.ipv6.delegated, 0x2001_0db8_0080_0000);
        assert_eq!(t.upsert(a), Ok(s));
        assert_eq!(t.lookup_ipv6(host), None);
        assert_eq!(
            t.lookup_ipv6("2001:db8:80:ffff::1".parse().unwrap()),
            Some(s)
        );
        assert!(a.ipv6.contains(0x2001_0db8_0080_ffff));
        assert!(!a.ipv6.contains(0x2001_0db8_0081_0000));
        for bad in [0, 65, 128] {
            assert_eq!(
                SessionIpv6::new(Some((slash64, bad)), None),
                Err(SessionError::Ipv6PrefixLength(bad))
            );
        }
        t.remove(1);
        assert_eq!(t.lookup_ipv6("2001:db8:80:ffff::1".parse().unwrap()), None);
        assert!(t.by_ipv6.lens().is_empty());
        assert!(t.by_ipv6.is_empty());
    }

    #[test]
    fn a_wrong_access_candidate_is_corrected() {
        let mut t = SessionTable::new(7);
        let a = entry(1, 0, 10, 1, 10);
        let b = entry(2, 0, 11, 2, 11);
        let (sa, sb) = (t.upsert(a).unwrap(), t.upsert(b).unwrap());
        let (ka, kb) = (a.access.pack(), b.access.pack());
        assert_eq!(t.access_candidate(t.hash_access(ka)), Some(sa));
        let confirm = |c, k| t.confirm_access(c, k).map(|(s, e)| (s, e.id));
        assert_eq!(confirm(sa, ka), Some((sa, 1)));
        // A candidate whose entry holds another key (two keys' tags collided) is not taken.
        assert_eq!(confirm(sb, ka), Some((sa, 1)));
        assert_eq!(confirm(sa, kb), Some((sb, 2)));
        assert_eq!(confirm(Slot::MAX, kb), Some((sb, 2)));
        let unknown = entry(3, 0, 12, 3, 12).access.pack();
        assert_eq!(confirm(sa, unknown), None);
    }

    #[test]
    fn a_reserved_table_does_not_grow_up_to_its_reservation() {
        let mut t = SessionTable::new(5);
        let mut e = entry(0, 0, 0, 0, 0);
        let mut add = |t: &mut SessionTable, i: u32| {
            e.id = u64::from(i);
            e.access.mac = EthernetAddress([2, 0, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
            e.ipv4 = Ipv4Addr::from_bits(0x6440_0000 + i);
            assert_eq!(t.upsert(e), Ok(i));
        };
        add(&mut t, 0);
        t.reserve(5_000);
        let reserved = t.memory_bytes();
        for i in 1..5_000 {
            add(&mut t, i);
        }
        assert_eq!(t.memory_bytes(), reserved, "grew below the reservation");
        for i in 0..5_000u32 {
            let ip = 0x6440_0000 + i;
            assert_eq!(t.find_ipv4(t.hash_ipv4(ip), ip), Some(i));
        }
        add(&mut t, 5_000);
        assert!(t.memory_bytes() > reserved, "grows past it as before");
        // A smaller reservation than the table holds changes nothing.
        let now = t.memory_bytes();
        t.reserve(10);
        assert_eq!(t.memory_bytes(), now);
    }

    #[test]
    fn the_indexes_grow_and_keep_every_session() {
        let mut t = SessionTable::new(3);
        let before = t.index_bytes();
        let mut e = entry(0, 0, 0, 0, 0);
        for i in 0..20_000u32 {
            e.id = u64::from(i);
            e.access.mac = EthernetAddress([2, 0, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
            e.ipv4 = Ipv4Addr::from_bits(0x6440_0000 + i);
            assert_eq!(t.upsert(e), Ok(i));
        }
        assert!(t.index_bytes() > before);
        // Entry (128) + an eighth of slab growth slack (16) + two indexes (at most 32) + id
        // index (at most 12).
        let per_session = t.memory_bytes() / 20_000;
        assert!(
            (128..=188).contains(&per_session),
            "{per_session} bytes per session"
        );
        // At least 4 entries per 64-byte bucket after growth by a quarter: 2 indexes.
        assert!(t.index_bytes() <= 2 * 64 * (20_000 / 4 + 1));
        for i in 0..20_000u32 {
            let e = t.entry(i).unwrap();
            let k = e.access.pack();
            let h = t.hash_access(k);
            let found = t.access_candidate(h).and_then(|c| t.confirm_access(c, k));
            assert_eq!(found.map(|(s, _)| s), Some(i));
            assert_eq!(t.lookup_ipv4(e.ipv4), Some(i));
        }
        for i in (0..20_000u64).step_by(2) {
            assert!(t.remove(i).is_some());
        }
        for i in 0..20_000u32 {
            let ip = Ipv4Addr::from_bits(0x6440_0000 + i);
            assert_eq!(t.lookup_ipv4(ip), (i % 2 == 1).then_some(i));
        }
        // A rebuild over a slab with free slots (and a count of live entries that is not a
        // multiple of the prefetch distance) indexes exactly the live ones.
        assert!(t.remove(19_999).is_some());
        t.reserve(100_000);
        for i in 0..20_000u32 {
            let ip = Ipv4Addr::from_bits(0x6440_0000 + i);
            let live = i % 2 == 1 && i != 19_999;
            assert_eq!(t.lookup_ipv4(ip), live.then_some(i), "{i}");
            let mut k = e.access;
            k.mac = EthernetAddress([2, 0, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
            assert_eq!(t.lookup_access(&k), live.then_some(i), "{i}");
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Upsert(u64, u8, u8),
        Remove(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u64..16, 0u8..8, 0u8..8).prop_map(|(i, m, a)| Op::Upsert(i, m, a)),
            (0u64..16).prop_map(Op::Remove),
        ]
    }

    fn access_key() -> impl Strategy<Value = AccessKey> {
        (
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            any::<[u8; 6]>(),
            any::<u16>(),
        )
            .prop_map(|(port, svlan, cvlan, mac, pppoe_session)| AccessKey {
                port,
                svlan,
                cvlan,
                mac: EthernetAddress(mac),
                pppoe_session,
            })
    }

    proptest! {
        /// `pack` is injective: it round-trips through `unpack`, and two keys pack equal
        /// only if they are equal.
        #[test]
        fn pack_round_trips(a in access_key(), b in access_key()) {
            prop_assert_eq!(AccessKey::unpack(a.pack()), a);
            prop_assert_eq!(a.pack() == b.pack(), a == b);
        }

        /// The table behaves like a simple model (map of id -> entry with uniqueness checks).
        #[test]
        fn matches_model(ops in proptest::collection::vec(op(), 0..200), seed in any::<u64>()) {
            let mut t = SessionTable::new(seed);
            let mut model: BTreeMap<u64, SessionEntry> = BTreeMap::new();
            for o in ops {
                match o {
                    Op::Upsert(id, m, a) => {
                        let e = entry(id, 0, 0, m, a);
                        let conflict = model.values().any(|x| x.id != id && (x.access == e.access || x.ipv4 == e.ipv4));
                        let r = t.upsert(e);
                        prop_assert_eq!(r.is_err(), conflict);
                        if !conflict {
                            model.insert(id, e);
                        }
                    }
                    Op::Remove(id) => {
                        prop_assert_eq!(t.remove(id).map(|e| e.id), model.remove(&id).map(|e| e.id));
                    }
                }
                prop_assert_eq!(t.len(), model.len());
                for e in model.values() {
                    let s = t.lookup_access(&e.access).unwrap();
                    prop_assert_eq!(t.entry(s).unwrap().id, e.id);
                    let k = e.access.pack();
                    let fast = t.access_candidate(t.hash_access(k)).and_then(|c| t.confirm_access(c, k));
                    prop_assert_eq!(fast.map(|(s, _)| s), Some(s));
                    prop_assert_eq!(t.lookup_ipv4(e.ipv4), Some(s));
                }
            }
        }
    }
}
