//! The mapping table (a slab of 32-byte [`Mapping`]s with an inside and an outside hash
//! index) and the subscriber table (a slab of [`Subscriber`]s indexed by inside address).
//!
//! A subscriber's mappings form a doubly linked list (the links are kept beside the slab, not
//! in the mappings the fast path reads), so that releasing a subscriber costs one step per
//! mapping it has. Free slab slots are chained through the vacant entries themselves.
//!
//! The mapping indexes are [`TagIndex`]es of slab slots, hashed with a seeded foldhash over
//! the packed key and tagged with the hash's high 32 bits; a probe confirms a tag against
//! the key in the slab entry (the entry the caller reads next anyway). Their home bucket
//! follows from the hash, so the fast path can ask for it, then for the entry, a stage
//! before it translates ([`MappingTable::prefetch_bucket`], then
//! [`MappingTable::prefetch_mapping`]). They are sized for the mapping limit and removals
//! leave no tombstones, so they never grow.
//!
//! The subscriber index is a hashbrown `HashTable<u32>`, read only when a mapping is
//! created; it is built for twice its item limit, so that hashbrown always rehashes in place
//! when deletions have used up its free buckets and never allocates after construction.

use alloc::vec::Vec;
use core::hash::BuildHasher;

use foldhash::fast::FixedState;
use hashbrown::HashTable;

use super::NatProtocol;
use super::blocks::NONE;
use crate::tag_index::TagIndex;

/// Packs (address, protocol, port) into the index key.
#[inline]
pub(crate) fn pack_key(addr: u32, proto: NatProtocol, port: u16) -> u64 {
    u64::from(addr) << 24 | (proto as u64) << 16 | u64::from(port)
}

/// TCP state bits of a mapping (RFC 5382 section 5).
pub(crate) mod tcp_state {
    /// SYN seen from the inside.
    pub const SYN_OUT: u8 = 0x01;
    /// SYN seen from the outside.
    pub const SYN_IN: u8 = 0x02;
    /// FIN seen from the inside.
    pub const FIN_OUT: u8 = 0x04;
    /// FIN seen from the outside.
    pub const FIN_IN: u8 = 0x08;
    /// RST seen.
    pub const RST: u8 = 0x10;
    /// Created by a segment that was not a SYN (a connection already open when the mapping
    /// was lost or the NAT restarted): any segment from the outside completes it.
    pub const MIDSTREAM: u8 = 0x20;

    /// The state after a segment with `flags` (TCP flag byte) in one direction.
    #[inline]
    pub fn on_segment(state: u8, flags: u8, outbound: bool) -> u8 {
        use crate::wire::tcp::flags as f;
        let mut s = state;
        if flags & f::RST != 0 {
            return s | RST;
        }
        if flags & f::SYN != 0 {
            if is_closing(s) {
                // A new connection on the same mapping.
                s = 0;
            }
            s |= if outbound { SYN_OUT } else { SYN_IN };
        } else if !outbound && s & MIDSTREAM != 0 {
            s |= SYN_IN;
        }
        if flags & f::FIN != 0 {
            s |= if outbound { FIN_OUT } else { FIN_IN };
        }
        s
    }

    /// A RST, or a FIN each way.
    #[inline]
    pub fn is_closing(s: u8) -> bool {
        s & RST != 0 || s & (FIN_OUT | FIN_IN) == FIN_OUT | FIN_IN
    }

    /// SYNs seen both ways and not closing: the established timeout applies.
    #[inline]
    pub fn is_established(s: u8) -> bool {
        s & (SYN_OUT | SYN_IN) == SYN_OUT | SYN_IN && !is_closing(s)
    }
}

/// A mapping (32 bytes, aligned so that one never straddles two cache lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(align(32))]
pub(crate) struct Mapping {
    /// The low 32 bits of the session tag of the subscriber's session ([`Mapping::is_of`]).
    pub session_tag: u32,
    /// The translating caller's handle of that session, returned with inbound translations
    /// and never read here ([`super::NO_OWNER`]: none given).
    pub owner: u32,
    /// Inside address (the packet's source, not necessarily the subscriber key).
    pub inside: u32,
    /// Outside address.
    pub outside: u32,
    /// Inside port or ICMP id.
    pub inside_port: u16,
    /// Outside port or ICMP id.
    pub outside_port: u16,
    /// Subscriber slot; in a vacant slab slot, the next vacant slot.
    pub sub: u32,
    /// Seconds: last packet in either direction.
    pub last_seen: u32,
    /// [`NatProtocol`] index, or [`Mapping::FREE`].
    pub proto: u8,
    /// [`tcp_state`] bits.
    pub tcp: u8,
    /// Which of the subscriber's block slots holds the outside port.
    pub block_k: u8,
    _spare: u8,
}

const _: () = assert!(core::mem::size_of::<Mapping>() == 32);

impl Mapping {
    /// `proto` of a free slab slot.
    pub(crate) const FREE: u8 = u8::MAX;

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        session_tag: u64,
        owner: u32,
        inside: u32,
        inside_port: u16,
        outside: u32,
        outside_port: u16,
        proto: NatProtocol,
        sub: u32,
        block_k: u8,
        now_s: u32,
    ) -> Self {
        Mapping {
            session_tag: session_tag as u32,
            owner,
            inside,
            outside,
            inside_port,
            outside_port,
            sub,
            last_seen: now_s,
            proto: proto as u8,
            tcp: 0,
            block_k,
            _spare: 0,
        }
    }

    const VACANT: Mapping = Mapping {
        session_tag: 0,
        owner: super::NO_OWNER,
        inside: 0,
        outside: 0,
        inside_port: 0,
        outside_port: 0,
        sub: NONE,
        last_seen: 0,
        proto: Mapping::FREE,
        tcp: 0,
        block_k: 0,
        _spare: 0,
    };

    /// True if the mapping belongs to the session of `session_tag`. Only the tag's low 32
    /// bits are kept: session tags are session ids, given out in sequence, so two sessions
    /// that held one inside address in turn are never 2^32 ids apart.
    #[inline]
    pub(crate) fn is_of(&self, session_tag: u64) -> bool {
        self.session_tag == session_tag as u32
    }

    #[inline]
    pub(crate) fn protocol(&self) -> Option<NatProtocol> {
        NatProtocol::from_index(self.proto)
    }

    #[inline]
    fn inside_key(&self) -> u64 {
        match self.protocol() {
            Some(p) => pack_key(self.inside, p, self.inside_port),
            None => u64::MAX,
        }
    }

    #[inline]
    fn outside_key(&self) -> u64 {
        match self.protocol() {
            Some(p) => pack_key(self.outside, p, self.outside_port),
            None => u64::MAX,
        }
    }
}

/// Links of one mapping in its subscriber's list: previous and next slot, or [`NONE`].
#[derive(Debug, Clone, Copy)]
struct Links {
    prev: u32,
    next: u32,
}

/// The mapping slab, its two indexes and the subscribers' mapping lists.
#[derive(Debug)]
pub(crate) struct MappingTable {
    slab: Vec<Mapping>,
    /// Beside `slab`, slot for slot.
    links: Vec<Links>,
    /// First vacant slab slot (the chain goes on through [`Mapping::sub`]), or [`NONE`].
    free_head: u32,
    by_inside: TagIndex,
    by_outside: TagIndex,
    hasher: FixedState,
    max: u32,
    live: u32,
}

/// The tag of a mapping key's hash in the mapping indexes.
#[inline(always)]
fn tag_of(hash: u64) -> u32 {
    (hash >> 32) as u32
}

impl MappingTable {
    pub(crate) fn new(max: u32, seed: u64) -> Self {
        let cap = max as usize;
        MappingTable {
            slab: Vec::with_capacity(cap),
            links: Vec::with_capacity(cap),
            free_head: NONE,
            by_inside: TagIndex::with_capacity(cap),
            by_outside: TagIndex::with_capacity(cap),
            hasher: FixedState::with_seed(seed),
            max,
            live: 0,
        }
    }

    #[inline]
    pub(crate) fn hash(&self, key: u64) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Live mappings.
    #[inline]
    pub(crate) fn len(&self) -> u32 {
        self.live
    }

    /// True when `max` mappings are live.
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.live >= self.max
    }

    /// Slab length (the scan range of the expiry cursor).
    #[inline]
    pub(crate) fn slab_len(&self) -> usize {
        self.slab.len()
    }

    #[inline]
    pub(crate) fn get(&self, slot: u32) -> &Mapping {
        &self.slab[slot as usize]
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, slot: u32) -> &mut Mapping {
        &mut self.slab[slot as usize]
    }

    /// Slot of the mapping with inside key `key`.
    #[inline]
    pub(crate) fn find_inside(&self, key: u64) -> Option<u32> {
        let (slab, h) = (&self.slab, self.hash(key));
        self.by_inside
            .find(h, tag_of(h), |s| slab[s as usize].inside_key() == key)
    }

    /// Slot of the mapping with outside key `key`.
    #[inline]
    pub(crate) fn find_outside(&self, key: u64) -> Option<u32> {
        let (slab, h) = (&self.slab, self.hash(key));
        self.by_outside
            .find(h, tag_of(h), |s| slab[s as usize].outside_key() == key)
    }

    /// The outside index if `outside`, else the inside index.
    #[inline(always)]
    fn index(&self, outside: bool) -> &TagIndex {
        if outside {
            &self.by_outside
        } else {
            &self.by_inside
        }
    }

    /// Asks the CPU for the index bucket of the key whose hash is `hash` ([`Self::hash`]):
    /// in the outside index if `outside`, else in the inside index.
    #[inline]
    pub(crate) fn prefetch_bucket(&self, hash: u64, outside: bool) {
        self.index(outside).prefetch(hash);
    }

    /// Asks the CPU for the first mapping the bucket of `hash` holds with its tag (the
    /// bucket should be in cache by now: [`Self::prefetch_bucket`]). A tag shared by
    /// another key only makes the prefetch useless.
    #[inline]
    pub(crate) fn prefetch_mapping(&self, hash: u64, outside: bool) {
        if let Some(s) = self.index(outside).find(hash, tag_of(hash), |_| true) {
            self.prefetch_entry(s);
        }
    }

    #[inline(always)]
    fn prefetch_entry(&self, slot: u32) {
        if let Some(m) = self.slab.get(slot as usize) {
            crate::prefetch::prefetch(m);
        }
    }

    /// Inserts `m` (whose keys must not be present) at the head of the mapping list that
    /// starts at `*list` (its subscriber's). `None` when full.
    pub(crate) fn insert(&mut self, m: Mapping, list: &mut u32) -> Option<u32> {
        if self.is_full() {
            return None;
        }
        let links = Links {
            prev: NONE,
            next: *list,
        };
        let slot = if self.free_head != NONE {
            let s = self.free_head;
            self.free_head = self.slab[s as usize].sub;
            self.slab[s as usize] = m;
            self.links[s as usize] = links;
            s
        } else {
            let s = self.slab.len() as u32;
            self.slab.push(m);
            self.links.push(links);
            s
        };
        if *list != NONE {
            self.links[*list as usize].prev = slot;
        }
        *list = slot;
        let (hi, ho) = (self.hash(m.inside_key()), self.hash(m.outside_key()));
        self.by_inside.insert(hi, tag_of(hi), slot);
        self.by_outside.insert(ho, tag_of(ho), slot);
        self.live += 1;
        Some(slot)
    }

    /// Removes the mapping in `slot` from the indexes and from the mapping list that starts
    /// at `*list` (its subscriber's), and returns it.
    pub(crate) fn remove(&mut self, slot: u32, list: &mut u32) -> Mapping {
        let m = self.slab[slot as usize];
        debug_assert!(m.proto != Mapping::FREE);
        let Links { prev, next } = self.links[slot as usize];
        if prev == NONE {
            debug_assert_eq!(*list, slot);
            *list = next;
        } else {
            self.links[prev as usize].next = next;
        }
        if next != NONE {
            self.links[next as usize].prev = prev;
        }
        let (hi, ho) = (self.hash(m.inside_key()), self.hash(m.outside_key()));
        self.by_inside.remove(hi, tag_of(hi), slot);
        self.by_outside.remove(ho, tag_of(ho), slot);
        self.slab[slot as usize] = Mapping {
            sub: self.free_head,
            ..Mapping::VACANT
        };
        self.free_head = slot;
        self.live -= 1;
        m
    }

    /// The mapping after `slot` in its subscriber's list, or [`NONE`].
    #[cfg(test)]
    pub(crate) fn next_in_list(&self, slot: u32) -> u32 {
        self.links[slot as usize].next
    }

    /// Live mappings with their slots.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Mapping)> {
        self.slab
            .iter()
            .enumerate()
            .filter(|(_, m)| m.proto != Mapping::FREE)
            .map(|(i, m)| (i as u32, m))
    }

    /// Bytes allocated: (slab and list links, indexes).
    pub(crate) fn memory_bytes(&self) -> (usize, usize) {
        (
            self.slab.capacity() * core::mem::size_of::<Mapping>()
                + self.links.capacity() * core::mem::size_of::<Links>(),
            self.by_inside.bytes() + self.by_outside.bytes(),
        )
    }
}

/// State of a subscriber slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubState {
    Free,
    /// Indexed by its inside address, translating.
    Active,
    /// Released; waiting for its blocks' release events to be queued.
    Releasing,
}

/// A subscriber (24 bytes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subscriber {
    /// Session tag of its session.
    pub session_tag: u64,
    /// The key: the session's inside address.
    pub inside: u32,
    /// Pool index of its outside address; in a vacant slot, the next vacant slot.
    pub addr: u32,
    /// First mapping of its list ([`MappingTable::insert`]), or [`NONE`].
    pub first_mapping: u32,
    /// Block slots not empty (active or releasing).
    pub blocks: u8,
    pub state: SubState,
}

impl Subscriber {
    const VACANT: Subscriber = Subscriber {
        session_tag: 0,
        inside: 0,
        addr: NONE,
        first_mapping: NONE,
        blocks: 0,
        state: SubState::Free,
    };
}

/// The subscriber slab and its index by inside address.
#[derive(Debug)]
pub(crate) struct SubscriberTable {
    slab: Vec<Subscriber>,
    /// First vacant slot (the chain goes on through [`Subscriber::addr`]), or [`NONE`].
    free_head: u32,
    /// Vacant slots.
    vacant: u32,
    index: HashTable<u32>,
    hasher: FixedState,
    max: u32,
    active: u32,
}

impl SubscriberTable {
    pub(crate) fn new(max: u32, seed: u64) -> Self {
        let cap = max as usize;
        SubscriberTable {
            slab: Vec::with_capacity(cap),
            free_head: NONE,
            vacant: 0,
            index: HashTable::with_capacity(2 * cap),
            hasher: FixedState::with_seed(seed ^ 0x5bd1_e995),
            max,
            active: 0,
        }
    }

    /// Subscriber slots in use (active or releasing).
    #[inline]
    pub(crate) fn in_use(&self) -> u32 {
        self.slab.len() as u32 - self.vacant
    }

    /// Subscribers indexed (active).
    #[inline]
    pub(crate) fn active(&self) -> u32 {
        self.active
    }

    /// True if a new subscriber slot can be taken.
    #[inline]
    pub(crate) fn has_room(&self) -> bool {
        self.in_use() < self.max
    }

    #[inline]
    pub(crate) fn get(&self, slot: u32) -> &Subscriber {
        &self.slab[slot as usize]
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, slot: u32) -> &mut Subscriber {
        &mut self.slab[slot as usize]
    }

    /// Slot of the active subscriber with inside address `inside`.
    #[inline]
    pub(crate) fn find(&self, inside: u32) -> Option<u32> {
        let slab = &self.slab;
        self.index
            .find(self.hasher.hash_one(inside), |&s| {
                slab[s as usize].inside == inside
            })
            .copied()
    }

    /// Inserts an active subscriber (whose address must not be indexed). Returns its slot and
    /// whether the slab grew (then the caller grows its per-slot arrays). `None` when full.
    pub(crate) fn insert(
        &mut self,
        inside: u32,
        session_tag: u64,
        addr: u32,
    ) -> Option<(u32, bool)> {
        if !self.has_room() {
            return None;
        }
        let sub = Subscriber {
            session_tag,
            inside,
            addr,
            first_mapping: NONE,
            blocks: 0,
            state: SubState::Active,
        };
        let (slot, grew) = if self.free_head != NONE {
            let s = self.free_head;
            self.free_head = self.slab[s as usize].addr;
            self.vacant -= 1;
            self.slab[s as usize] = sub;
            (s, false)
        } else {
            self.slab.push(sub);
            (self.slab.len() as u32 - 1, true)
        };
        let (slab, hasher) = (&self.slab, &self.hasher);
        self.index
            .insert_unique(hasher.hash_one(inside), slot, |&s| {
                hasher.hash_one(slab[s as usize].inside)
            });
        self.active += 1;
        Some((slot, grew))
    }

    /// Removes the subscriber in `slot` from the index (it stays in its slot, releasing).
    pub(crate) fn unindex(&mut self, slot: u32) {
        let s = &mut self.slab[slot as usize];
        if s.state != SubState::Active {
            return;
        }
        s.state = SubState::Releasing;
        let h = self.hasher.hash_one(s.inside);
        if let Ok(e) = self.index.find_entry(h, |&x| x == slot) {
            e.remove();
        }
        self.active -= 1;
    }

    /// Frees `slot` (which must be unindexed and have no mapping).
    pub(crate) fn free_slot(&mut self, slot: u32) {
        let s = &self.slab[slot as usize];
        debug_assert_eq!(s.state, SubState::Releasing);
        debug_assert_eq!(s.first_mapping, NONE);
        self.slab[slot as usize] = Subscriber {
            addr: self.free_head,
            ..Subscriber::VACANT
        };
        self.free_head = slot;
        self.vacant += 1;
    }

    /// Bytes allocated.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.slab.capacity() * core::mem::size_of::<Subscriber>() + self.index.allocation_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tcp::flags;

    #[test]
    fn sizes() {
        assert_eq!(core::mem::size_of::<Mapping>(), 32);
        assert_eq!(core::mem::size_of::<Subscriber>(), 24);
    }

    #[test]
    fn tcp_states() {
        use tcp_state::*;
        let s = on_segment(0, flags::SYN, true);
        assert!(!is_established(s));
        let s = on_segment(s, flags::SYN | flags::ACK, false);
        assert!(is_established(s));
        // A FIN one way is a half close: still established.
        let s = on_segment(s, flags::FIN | flags::ACK, true);
        assert!(is_established(s));
        let s = on_segment(s, flags::FIN | flags::ACK, false);
        assert!(is_closing(s) && !is_established(s));
        // A new SYN starts over.
        let s = on_segment(s, flags::SYN, true);
        assert_eq!(s, SYN_OUT);
        let s = on_segment(s, flags::SYN | flags::ACK, false);
        assert!(on_segment(s, flags::RST, false) & RST != 0);
        // Midstream: established once the outside answers.
        let m = on_segment(MIDSTREAM | SYN_OUT, flags::ACK, true);
        assert!(!is_established(m));
        assert!(is_established(on_segment(m, flags::ACK, false)));
    }

    #[test]
    fn mapping_table_indexes() {
        let mut t = MappingTable::new(3, 1);
        let m = |ip: u32, port: u16, op: u16| {
            Mapping::new(9, 0, ip, port, 100, op, NatProtocol::Udp, 0, 0, 0)
        };
        let (mut list, mut other) = (NONE, NONE);
        let a = t.insert(m(1, 10, 2000), &mut list).unwrap();
        let b = t.insert(m(2, 10, 2001), &mut other).unwrap();
        let c = t.insert(m(3, 10, 2002), &mut list).unwrap();
        assert!(t.insert(m(4, 10, 2003), &mut list).is_none());
        assert_eq!((list, other), (c, b));
        assert_eq!(t.find_inside(pack_key(2, NatProtocol::Udp, 10)), Some(b));
        assert_eq!(t.find_inside(pack_key(2, NatProtocol::Tcp, 10)), None);
        assert_eq!(
            t.find_outside(pack_key(100, NatProtocol::Udp, 2002)),
            Some(c)
        );
        t.remove(a, &mut list);
        assert_eq!(t.find_inside(pack_key(1, NatProtocol::Udp, 10)), None);
        assert_eq!(t.len(), 2);
        assert_eq!(list, c);
        assert_eq!(t.insert(m(5, 11, 2000), &mut list).unwrap(), a);
        assert_eq!(t.iter().count(), 3);
        // The list is a, c: removing its head, then its tail, empties it.
        t.remove(a, &mut list);
        assert_eq!(list, c);
        let d = t.insert(m(6, 12, 2003), &mut list).unwrap();
        t.remove(c, &mut list);
        assert_eq!(list, d);
        t.remove(d, &mut list);
        assert_eq!(list, NONE);
        t.remove(b, &mut other);
        assert_eq!((other, t.len()), (NONE, 0));
    }

    #[test]
    fn subscriber_table() {
        let mut t = SubscriberTable::new(2, 3);
        let (a, grew) = t.insert(10, 1, 0).unwrap();
        assert!(grew);
        let (b, _) = t.insert(11, 2, 0).unwrap();
        assert!(t.insert(12, 3, 0).is_none());
        assert_eq!(t.find(11), Some(b));
        t.unindex(a);
        assert_eq!(t.find(10), None);
        assert_eq!(t.active(), 1);
        assert!(!t.has_room());
        t.free_slot(a);
        let (c, grew) = t.insert(10, 4, 0).unwrap();
        assert_eq!((c, grew), (a, false));
    }
}
