//! The multibit trie behind [`super::Lpm4`] and [`super::Lpm6`]: a first table indexed by the
//! top `first_stride` bits of the address, and a preallocated pool of 256-entry groups, each
//! indexed by the next 8 bits (DIR-24-8 for IPv4 with `first_stride` 24, the `rte_lpm6`
//! layout for IPv6).
//!
//! # Entries
//!
//! Every slot, in the first table and in groups, is one `u32`:
//!
//! ```text
//!  31  30  29..24   23..16          15..0
//! +---+---+-------+---------------+----------------+
//! | V | G |   0   | prefix length |   next hop     |  route (V=1, G=0)
//! +---+---+-------+---------------+----------------+
//! | 1 | 1 |          group index (30 bits)         |  pointer to a group
//! +---+---+----------------------------------------+
//!   0 everywhere: no route
//! ```
//!
//! A route slot records the length of the prefix that wrote it, which is what makes insert
//! and delete exact: an insert of a /L overwrites only slots holding a route of length <= L,
//! and a delete of a /L rewrites only slots holding length L, with the longest remaining rule
//! shorter than L that covers the prefix (found in the per-length rule maps).
//!
//! # Invariants
//!
//! - A slot at a level whose bits end at bit `E` holds a route of length <= `E`.
//! - A group whose bits start at bit `B` holds at least one pointer or a route longer than
//!   `B`. A delete that leaves a group with only routes of length <= `B` (which are then all
//!   the same route, or all empty) folds it back into its parent slot and frees it, so a
//!   table that had all its routes deleted holds no group.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::hash::Hash;

use hashbrown::HashMap;

use super::{GROUP_ENTRIES, MAX_GROUPS, NextHop, RouteError};

const VALID: u32 = 1 << 31;
const GROUP: u32 = 1 << 30;
const INDEX_MASK: u32 = GROUP - 1;
const EMPTY: u32 = 0;
/// Bits resolved by one group.
const GROUP_STRIDE: u8 = 8;
/// Levels of an IPv6 trie with an 8-bit first stride: 1 + 120 / 8.
const MAX_LEVELS: usize = 16;
/// Lookups resolved together by [`Trie::lookup_burst`].
pub(crate) const BURST: usize = 32;

#[inline]
fn route(len: u8, next_hop: NextHop) -> u32 {
    VALID | u32::from(len) << 16 | u32::from(next_hop)
}

#[inline]
fn is_group(e: u32) -> bool {
    e & GROUP != 0
}

#[inline]
fn is_route(e: u32) -> bool {
    e & (VALID | GROUP) == VALID
}

#[inline]
fn route_len(e: u32) -> u8 {
    (e >> 16) as u8
}

/// An address as an unsigned integer, most significant bit first.
pub(crate) trait Key: Copy + Eq + Hash + fmt::Debug {
    /// Address width in bits.
    const BITS: u8;
    /// The address with every bit from `len` on cleared.
    fn masked(self, len: u8) -> Self;
    /// Bits `off .. off + n` as an index (`1 <= n <= 24`, `off + n <= BITS`).
    fn chunk(self, off: u8, n: u8) -> usize;
}

impl Key for u32 {
    const BITS: u8 = 32;
    #[inline]
    fn masked(self, len: u8) -> u32 {
        self & u32::MAX.checked_shl(u32::from(32 - len)).unwrap_or(0)
    }
    #[inline]
    fn chunk(self, off: u8, n: u8) -> usize {
        ((self << off) >> (32 - n)) as usize
    }
}

impl Key for u128 {
    const BITS: u8 = 128;
    #[inline]
    fn masked(self, len: u8) -> u128 {
        self & u128::MAX.checked_shl(u32::from(128 - len)).unwrap_or(0)
    }
    #[inline]
    fn chunk(self, off: u8, n: u8) -> usize {
        ((self << off) >> (128 - n)) as usize
    }
}

/// Where a table slot lives: the first table or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    First,
    Group(u32),
}

/// One step down the trie taken by a write: the parent slot and the group it points to,
/// whose bits start at `start`.
#[derive(Debug, Clone, Copy)]
struct Step {
    parent: Table,
    index: usize,
    group: u32,
    start: u8,
}

/// Bytes of lookup tables for a trie of `K::BITS`-bit keys (used by the wrappers' docs and
/// `memory_for`).
pub(crate) const fn table_bytes(first_stride: u8, max_groups: u32) -> usize {
    ((1usize << first_stride) + max_groups as usize * GROUP_ENTRIES) * super::ENTRY_BYTES
}

#[derive(Clone)]
pub(crate) struct Trie<K: Key> {
    first_stride: u8,
    max_groups: u32,
    first: Vec<u32>,
    groups: Vec<u32>,
    /// Free group indices, popped from the end.
    free: Vec<u32>,
    /// `rules[len]`: masked prefix -> next hop for every route of length `len`.
    rules: Vec<HashMap<K, NextHop>>,
    len: usize,
}

impl<K: Key> Trie<K> {
    pub(crate) fn new(first_stride: u8, max_groups: u32) -> Result<Self, RouteError> {
        if !matches!(first_stride, 8 | 16 | 24) {
            return Err(RouteError::FirstStride {
                stride: first_stride,
            });
        }
        if max_groups > MAX_GROUPS {
            return Err(RouteError::TooManyGroups {
                max_groups,
                limit: MAX_GROUPS,
            });
        }
        Ok(Trie {
            first_stride,
            max_groups,
            first: vec![EMPTY; 1 << first_stride],
            groups: vec![EMPTY; max_groups as usize * GROUP_ENTRIES],
            free: (0..max_groups).rev().collect(),
            rules: (0..=K::BITS).map(|_| HashMap::new()).collect(),
            len: 0,
        })
    }

    pub(crate) fn first_stride(&self) -> u8 {
        self.first_stride
    }

    pub(crate) fn max_groups(&self) -> u32 {
        self.max_groups
    }

    pub(crate) fn groups_in_use(&self) -> u32 {
        self.max_groups - self.free.len() as u32
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Lookup-table bytes (the first table and the group pool; the rule maps come on top).
    pub(crate) fn table_bytes(&self) -> usize {
        table_bytes(self.first_stride, self.max_groups)
    }

    /// The most slots a lookup reads: the first table and one group per 8 further bits.
    pub(crate) fn max_reads(&self) -> usize {
        1 + usize::from((K::BITS - self.first_stride) / GROUP_STRIDE)
    }

    #[inline]
    fn slot(&self, t: Table, i: usize) -> u32 {
        match t {
            Table::First => self.first[i],
            Table::Group(g) => self.groups[g as usize * GROUP_ENTRIES + i],
        }
    }

    #[inline]
    fn set(&mut self, t: Table, i: usize, e: u32) {
        match t {
            Table::First => self.first[i] = e,
            Table::Group(g) => self.groups[g as usize * GROUP_ENTRIES + i] = e,
        }
    }

    fn group(&self, g: u32) -> &[u32] {
        let base = g as usize * GROUP_ENTRIES;
        &self.groups[base..base + GROUP_ENTRIES]
    }

    /// The first-table slot of `key`: the first of at most [`Trie::max_reads`] reads.
    #[inline]
    fn first_slot(&self, key: K) -> u32 {
        self.first[key.chunk(0, self.first_stride)]
    }

    /// Follows group pointers from `e`, the first-table slot of `key`, down to a route slot.
    #[inline]
    fn resolve(&self, key: K, mut e: u32) -> Option<NextHop> {
        let mut off = self.first_stride;
        while is_group(e) {
            let base = (e & INDEX_MASK) as usize * GROUP_ENTRIES;
            e = self.groups[base + key.chunk(off, GROUP_STRIDE)];
            off += GROUP_STRIDE;
        }
        // Low 16 bits of a route slot: the next hop.
        if e & VALID != 0 {
            Some(e as NextHop)
        } else {
            None
        }
    }

    #[inline]
    pub(crate) fn lookup(&self, key: K) -> Option<NextHop> {
        self.resolve(key, self.first_slot(key))
    }

    /// Looks up `keys[i]` into `out[i]` for the first `min(keys.len(), out.len(), BURST)`
    /// keys, level by level: each round reads one slot for every lookup still on a group, so
    /// the reads of a round do not depend on each other and their cache misses overlap.
    #[inline]
    pub(crate) fn lookup_burst(&self, keys: &[K], out: &mut [Option<NextHop>]) {
        let n = keys.len().min(out.len()).min(BURST);
        let (keys, out) = (&keys[..n], &mut out[..n]);
        let mut slots = [EMPTY; BURST];
        let slots = &mut slots[..n];
        let mut more = false;
        for (e, &k) in slots.iter_mut().zip(keys) {
            *e = self.first_slot(k);
            more |= is_group(*e);
        }
        let mut off = self.first_stride;
        while more {
            more = false;
            for (e, &k) in slots.iter_mut().zip(keys) {
                if is_group(*e) {
                    let base = (*e & INDEX_MASK) as usize * GROUP_ENTRIES;
                    *e = self.groups[base + k.chunk(off, GROUP_STRIDE)];
                    more |= is_group(*e);
                }
            }
            off += GROUP_STRIDE;
        }
        for (o, &e) in out.iter_mut().zip(slots.iter()) {
            *o = if e & VALID != 0 {
                Some(e as NextHop)
            } else {
                None
            };
        }
    }

    /// How many slots the lookup of `key` reads (tests check the bound).
    #[cfg(test)]
    pub(crate) fn reads(&self, key: K) -> usize {
        let mut e = self.first_slot(key);
        let mut off = self.first_stride;
        let mut reads = 1;
        while is_group(e) {
            e = self.slot(Table::Group(e & INDEX_MASK), key.chunk(off, GROUP_STRIDE));
            off += GROUP_STRIDE;
            reads += 1;
        }
        reads
    }

    fn check_len(len: u8) -> Result<(), RouteError> {
        if len > K::BITS {
            Err(RouteError::PrefixLength { len, max: K::BITS })
        } else {
            Ok(())
        }
    }

    /// The next hop of exactly `key/len`.
    pub(crate) fn get(&self, key: K, len: u8) -> Option<NextHop> {
        Self::check_len(len).ok()?;
        self.rules[usize::from(len)].get(&key.masked(len)).copied()
    }

    /// Every route as (masked prefix, length, next hop), in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (K, u8, NextHop)> + '_ {
        self.rules
            .iter()
            .enumerate()
            .flat_map(|(len, m)| m.iter().map(move |(k, nh)| (*k, len as u8, *nh)))
    }

    /// The levels of a trie with first stride `s`, top down, as `(first bit, bits)`: the
    /// first table, then one 8-bit group level per 8 bits down to the last address bit.
    fn levels(s: u8) -> impl Iterator<Item = (u8, u8)> {
        core::iter::once((0, s)).chain(
            (s..K::BITS)
                .step_by(usize::from(GROUP_STRIDE))
                .map(|off| (off, GROUP_STRIDE)),
        )
    }

    /// Groups an insert of `key/len` would allocate.
    fn groups_needed(&self, key: K, len: u8) -> usize {
        let mut t = Some(Table::First);
        let mut needed = 0;
        for (off, stride) in Self::levels(self.first_stride) {
            if len <= off + stride {
                break;
            }
            match t {
                Some(table) => {
                    let e = self.slot(table, key.chunk(off, stride));
                    if is_group(e) {
                        t = Some(Table::Group(e & INDEX_MASK));
                    } else {
                        t = None;
                        needed += 1;
                    }
                }
                None => needed += 1,
            }
        }
        needed
    }

    /// Inserts or replaces `key/len`; returns the next hop it replaced. All or nothing: on
    /// `GroupsExhausted` the table is unchanged.
    pub(crate) fn insert(
        &mut self,
        key: K,
        len: u8,
        next_hop: NextHop,
    ) -> Result<Option<NextHop>, RouteError> {
        Self::check_len(len)?;
        let key = key.masked(len);
        if self.groups_needed(key, len) > self.free.len() {
            return Err(RouteError::GroupsExhausted {
                max_groups: self.max_groups,
            });
        }
        let previous = self.rules[usize::from(len)].insert(key, next_hop);
        if previous.is_none() {
            self.len += 1;
        }
        // Overwrite the slots of shorter (or equal: a replaced next hop) routes.
        let new = route(len, next_hop);
        self.write(
            key,
            len,
            true,
            move |e| !is_route(e) || route_len(e) <= len,
            new,
        );
        Ok(previous)
    }

    /// Deletes `key/len`; returns its next hop.
    pub(crate) fn delete(&mut self, key: K, len: u8) -> Result<NextHop, RouteError> {
        Self::check_len(len)?;
        let key = key.masked(len);
        let next_hop = self.rules[usize::from(len)]
            .remove(&key)
            .ok_or(RouteError::NotFound)?;
        self.len -= 1;
        let replacement = self
            .covering(key, len)
            .map_or(EMPTY, |(l, nh)| route(l, nh));
        // Only the deleted rule wrote length `len` inside its own range.
        let (path, depth) = self.write(
            key,
            len,
            false,
            move |e| is_route(e) && route_len(e) == len,
            replacement,
        );
        // Fold groups that hold nothing longer than their parent slot, deepest first.
        for step in path[..depth].iter().rev() {
            let g = self.group(step.group);
            let first = g[0];
            let redundant = !is_group(first)
                && (!is_route(first) || route_len(first) <= step.start)
                && g.iter().all(|&e| e == first);
            if !redundant {
                break;
            }
            self.set(step.parent, step.index, first);
            let base = step.group as usize * GROUP_ENTRIES;
            self.groups[base..base + GROUP_ENTRIES].fill(EMPTY);
            self.free.push(step.group);
        }
        Ok(next_hop)
    }

    /// The longest rule shorter than `len` that covers `key`.
    fn covering(&self, key: K, len: u8) -> Option<(u8, NextHop)> {
        (0..len).rev().find_map(|l| {
            self.rules[usize::from(l)]
                .get(&key.masked(l))
                .map(|nh| (l, *nh))
        })
    }

    /// Walks down to the level that holds `key/len` (creating groups on the way if `create`)
    /// and stores `new` in every route or empty slot of the prefix's range, at any depth,
    /// for which `pred` holds. Returns the groups passed through on the way down.
    fn write<P>(
        &mut self,
        key: K,
        len: u8,
        create: bool,
        pred: P,
        new: u32,
    ) -> ([Step; MAX_LEVELS], usize)
    where
        P: Fn(u32) -> bool + Copy,
    {
        let mut path = [Step {
            parent: Table::First,
            index: 0,
            group: 0,
            start: 0,
        }; MAX_LEVELS];
        let mut depth = 0;
        let mut table = Table::First;
        for (off, stride) in Self::levels(self.first_stride) {
            let end = off + stride;
            let index = key.chunk(off, stride);
            if len <= end {
                // The prefix covers 2^(end - len) slots of this table, starting at `index`
                // (its host bits are zero).
                for i in index..index + (1usize << (end - len)) {
                    self.fill(table, i, pred, new);
                }
                break;
            }
            let e = self.slot(table, index);
            let group = if is_group(e) {
                e & INDEX_MASK
            } else if create {
                // Checked by `groups_needed`; never fails inside an insert.
                let Some(g) = self.free.pop() else { break };
                // The new group inherits the slot's route (or emptiness) everywhere.
                let base = g as usize * GROUP_ENTRIES;
                self.groups[base..base + GROUP_ENTRIES].fill(e);
                self.set(table, index, VALID | GROUP | g);
                g
            } else {
                // A delete only follows paths its insert created; nothing to rewrite.
                break;
            };
            path[depth] = Step {
                parent: table,
                index,
                group,
                start: end,
            };
            depth += 1;
            table = Table::Group(group);
        }
        (path, depth)
    }

    /// Stores `new` in slot `i` of `t` if `pred` holds for it, or in every such slot of the
    /// group it points to (recursively).
    fn fill<P>(&mut self, t: Table, i: usize, pred: P, new: u32)
    where
        P: Fn(u32) -> bool + Copy,
    {
        let e = self.slot(t, i);
        if is_group(e) {
            let g = e & INDEX_MASK;
            for j in 0..GROUP_ENTRIES {
                self.fill(Table::Group(g), j, pred, new);
            }
        } else if pred(e) {
            self.set(t, i, new);
        }
    }
}

impl<K: Key> fmt::Debug for Trie<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trie")
            .field("bits", &K::BITS)
            .field("first_stride", &self.first_stride)
            .field("routes", &self.len)
            .field("groups_in_use", &self.groups_in_use())
            .field("max_groups", &self.max_groups)
            .field("table_bytes", &self.table_bytes())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_bits() {
        assert_eq!(0xc0a8_0101u32.masked(0), 0);
        assert_eq!(0xc0a8_0101u32.masked(16), 0xc0a8_0000);
        assert_eq!(0xc0a8_0101u32.masked(32), 0xc0a8_0101);
        assert_eq!(0xc0a8_0101u32.chunk(0, 24), 0xc0a801);
        assert_eq!(0xc0a8_0101u32.chunk(24, 8), 0x01);
        assert_eq!(0xc0a8_0101u32.chunk(8, 8), 0xa8);
        let a = 0x2001_0db8_0000_0000_0000_0000_0000_00ffu128;
        assert_eq!(a.masked(32), 0x2001_0db8u128 << 96);
        assert_eq!(a.masked(128), a);
        assert_eq!(a.masked(0), 0);
        assert_eq!(a.chunk(0, 24), 0x20010d);
        assert_eq!(a.chunk(120, 8), 0xff);
    }

    #[test]
    fn levels_cover_the_address() {
        let t = Trie::<u32>::new(24, 0).unwrap();
        assert!(Trie::<u32>::levels(t.first_stride).eq([(0, 24), (24, 8)]));
        let t = Trie::<u32>::new(16, 0).unwrap();
        assert!(Trie::<u32>::levels(t.first_stride).eq([(0, 16), (16, 8), (24, 8)]));
        let t = Trie::<u128>::new(8, 0).unwrap();
        assert_eq!(Trie::<u128>::levels(t.first_stride).count(), MAX_LEVELS);
        assert_eq!(t.max_reads(), MAX_LEVELS);
        assert_eq!(Trie::<u128>::levels(t.first_stride).last(), Some((120, 8)));
    }

    #[test]
    fn slot_encoding() {
        let e = route(32, 0xffff);
        assert!(is_route(e) && !is_group(e));
        assert_eq!(route_len(e), 32);
        assert_eq!(e as u16, 0xffff);
        assert!(!is_route(EMPTY) && !is_group(EMPTY));
        let p = VALID | GROUP | (MAX_GROUPS - 1);
        assert!(is_group(p) && !is_route(p));
        assert_eq!(p & INDEX_MASK, MAX_GROUPS - 1);
        // Route length 128 fits the 8-bit field.
        assert_eq!(route_len(route(128, 1)), 128);
    }
}
