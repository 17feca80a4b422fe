//! IPv4 longest-prefix match, DIR-24-8 (Gupta, Lin, McKeown, "Routing Lookups in Hardware at
//! Memory Access Speeds", 1998; the layout of DPDK's `rte_lpm`).

use core::fmt;
use core::net::Ipv4Addr;

use super::trie::{self, Trie};
use super::{NextHop, RouteError};

/// An IPv4 route table answering longest-prefix match.
///
/// # Layout and memory
///
/// A first table indexed by the top `first_stride` bits of the address and a pool of
/// `max_groups` groups of 256 entries, each indexed by the next 8 bits; every entry is 4
/// bytes ([`super::ENTRY_BYTES`]). A route of length <= `first_stride` lives in the first
/// table only; a longer one needs one group per 8 bits past `first_stride` (shared by
/// every route under the same first-table slot).
///
/// | constructor | layout | reads per lookup | first table | per group |
/// |---|---|---|---|---|
/// | [`Lpm4::new`] | 24-8 (DIR-24-8) | <= 2 | 2^24 * 4 B = 64 MiB | 1 KiB |
/// | [`Lpm4::with_first_stride`]`(16, ..)` | 16-8-8 | <= 3 | 2^16 * 4 B = 256 KiB | 1 KiB |
/// | [`Lpm4::with_first_stride`]`(8, ..)` | 8-8-8-8 | <= 4 | 2^8 * 4 B = 1 KiB | 1 KiB |
///
/// All of it is allocated (zeroed) by the constructor, so a table never allocates lookup
/// memory afterwards and its footprint is known up front ([`Lpm4::memory_for`]); the hosted
/// allocator maps zeroed pages lazily. The rule maps (one hash map per prefix length, an
/// 8-byte bucket and a control byte per route, about 10 bytes at hashbrown's load factor)
/// grow with the routes.
///
/// For the 8 MB unikernel, the 16-8-8 layout costs 256 KiB plus 1 KiB per group, where a
/// route of /17 to /24 needs a group per distinct /16 and a longer one also one per distinct
/// /24. Scattered routes cost about a group each (measured in `perf/benches/route.rs` with
/// Internet-like routes: 1k routes 1.2 MiB, 5k routes 5.0 MiB, 100k routes 56k groups or
/// 55 MiB, against 10k groups and 74 MiB in all for DIR-24-8); clustered ones, such as a
/// default route and a customer's subscriber pools, share their groups.
///
/// # Updates
///
/// `insert` and `delete` take `&mut self` and run on the control side; the fast path only
/// reads. Inserting a short prefix rewrites every slot it covers (a /0 in the 24-8 layout
/// writes 2^24 slots), so large updates belong off the poll loop.
#[derive(Clone)]
pub struct Lpm4 {
    trie: Trie<u32>,
}

impl Lpm4 {
    /// The DIR-24-8 layout: a 2^24-entry first table (64 MiB) and `max_groups` groups (1 KiB
    /// each) for routes longer than /24; at most two memory reads per lookup.
    /// `max_groups` above [`super::MAX_GROUPS`] is clamped to it.
    pub fn new(max_groups: u32) -> Lpm4 {
        let trie = Trie::new(24, max_groups.min(super::MAX_GROUPS));
        Lpm4 {
            // 24 is a valid stride and the group count is clamped: `new` cannot fail.
            trie: trie.unwrap_or_else(|_| unreachable!("24-bit stride and clamped groups")),
        }
    }

    /// A table whose first table has `first_stride` bits (8, 16 or 24) and 8-bit groups below
    /// it: at most `1 + (32 - first_stride) / 8` reads per lookup, and
    /// [`Lpm4::memory_for`]`(first_stride, max_groups)` bytes of tables.
    pub fn with_first_stride(first_stride: u8, max_groups: u32) -> Result<Lpm4, RouteError> {
        Ok(Lpm4 {
            trie: Trie::new(first_stride, max_groups)?,
        })
    }

    /// Bytes of lookup tables a table with this layout allocates: `(2^first_stride +
    /// 256 * max_groups) * 4`.
    pub const fn memory_for(first_stride: u8, max_groups: u32) -> usize {
        trie::table_bytes(first_stride, max_groups)
    }

    /// Adds the route `prefix/len` (host bits of `prefix` are ignored), or replaces its next
    /// hop; returns the next hop it replaced. On error the table is unchanged.
    pub fn insert(
        &mut self,
        prefix: Ipv4Addr,
        len: u8,
        next_hop: NextHop,
    ) -> Result<Option<NextHop>, RouteError> {
        self.trie.insert(prefix.to_bits(), len, next_hop)
    }

    /// Removes the route `prefix/len` and returns its next hop. Addresses it covered fall
    /// back to the longest remaining prefix that covers them.
    pub fn delete(&mut self, prefix: Ipv4Addr, len: u8) -> Result<NextHop, RouteError> {
        self.trie.delete(prefix.to_bits(), len)
    }

    /// The next hop of the longest prefix that contains `addr`.
    #[inline]
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<NextHop> {
        self.trie.lookup(addr.to_bits())
    }

    /// Looks up `addrs[i]` into `out[i]` for every `i` below the shorter length of the two.
    ///
    /// A plain loop: with at most two (three) dependent reads per address the processor
    /// already overlaps the reads of successive addresses. Measured in
    /// `perf/benches/route.rs`, resolving the burst level by level (as [`super::Lpm6`] does)
    /// was 17% slower for DIR-24-8 with 100k routes and no faster for 16-8-8.
    pub fn lookup_burst(&self, addrs: &[Ipv4Addr], out: &mut [Option<NextHop>]) {
        for (o, a) in out.iter_mut().zip(addrs) {
            *o = self.lookup(*a);
        }
    }

    /// The next hop of exactly `prefix/len`, if that route is in the table.
    pub fn get(&self, prefix: Ipv4Addr, len: u8) -> Option<NextHop> {
        self.trie.get(prefix.to_bits(), len)
    }

    /// Every route as (network address, length, next hop), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (Ipv4Addr, u8, NextHop)> + '_ {
        self.trie
            .iter()
            .map(|(k, len, nh)| (Ipv4Addr::from_bits(k), len, nh))
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.trie.len()
    }

    /// True if the table holds no route.
    pub fn is_empty(&self) -> bool {
        self.trie.len() == 0
    }

    /// Bits resolved by the first table (8, 16 or 24).
    pub fn first_stride(&self) -> u8 {
        self.trie.first_stride()
    }

    /// The most memory reads a lookup makes: 2 for DIR-24-8, 3 for 16-8-8.
    pub fn max_reads(&self) -> usize {
        self.trie.max_reads()
    }

    /// Groups allocated to routes.
    pub fn groups_in_use(&self) -> u32 {
        self.trie.groups_in_use()
    }

    /// Group capacity.
    pub fn max_groups(&self) -> u32 {
        self.trie.max_groups()
    }

    /// Bytes of lookup tables (first table and group pool).
    pub fn table_bytes(&self) -> usize {
        self.trie.table_bytes()
    }

    #[cfg(test)]
    pub(crate) fn reads(&self, addr: Ipv4Addr) -> usize {
        self.trie.reads(addr.to_bits())
    }
}

impl fmt::Debug for Lpm4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Lpm4").field(&self.trie).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn dir_24_8_longest_match() {
        let mut t = Lpm4::new(16);
        assert_eq!(t.max_reads(), 2);
        assert_eq!(t.table_bytes(), (1 << 24) * 4 + 16 * 1024);
        assert_eq!(t.lookup(a("10.1.2.3")), None);
        t.insert(a("10.0.0.0"), 8, 1).unwrap();
        t.insert(a("10.1.0.0"), 16, 2).unwrap();
        t.insert(a("10.1.2.0"), 24, 3).unwrap();
        t.insert(a("10.1.2.128"), 25, 4).unwrap();
        t.insert(a("10.1.2.200"), 32, 5).unwrap();
        assert_eq!(t.groups_in_use(), 1);
        assert_eq!(t.lookup(a("10.9.9.9")), Some(1));
        assert_eq!(t.lookup(a("10.1.9.9")), Some(2));
        assert_eq!(t.lookup(a("10.1.2.3")), Some(3));
        assert_eq!(t.lookup(a("10.1.2.130")), Some(4));
        assert_eq!(t.lookup(a("10.1.2.200")), Some(5));
        assert_eq!(t.lookup(a("10.1.2.201")), Some(4));
        assert_eq!(t.lookup(a("11.0.0.0")), None);
        assert_eq!(t.reads(a("10.1.2.200")), 2);
        assert_eq!(t.reads(a("10.1.9.9")), 1);

        // Delete restores the covering prefixes.
        assert_eq!(t.delete(a("10.1.2.128"), 25), Ok(4));
        assert_eq!(t.lookup(a("10.1.2.130")), Some(3));
        assert_eq!(t.lookup(a("10.1.2.200")), Some(5));
        assert_eq!(t.delete(a("10.1.2.0"), 24), Ok(3));
        assert_eq!(t.lookup(a("10.1.2.130")), Some(2));
        assert_eq!(t.lookup(a("10.1.2.200")), Some(5));
        assert_eq!(t.delete(a("10.1.2.200"), 32), Ok(5));
        // The group held nothing longer than /24 any more: folded back and freed.
        assert_eq!(t.groups_in_use(), 0);
        assert_eq!(t.lookup(a("10.1.2.200")), Some(2));
        assert_eq!(t.delete(a("10.1.2.200"), 32), Err(RouteError::NotFound));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn default_route_and_host_routes() {
        let mut t = Lpm4::with_first_stride(16, 8).unwrap();
        assert_eq!(t.max_reads(), 3);
        t.insert(Ipv4Addr::UNSPECIFIED, 0, 9).unwrap();
        t.insert(a("192.0.2.1"), 32, 1).unwrap();
        assert_eq!(t.groups_in_use(), 2);
        assert_eq!(t.lookup(a("192.0.2.1")), Some(1));
        assert_eq!(t.reads(a("192.0.2.1")), 3);
        assert_eq!(t.lookup(a("192.0.2.2")), Some(9));
        assert_eq!(t.lookup(Ipv4Addr::BROADCAST), Some(9));
        // Replacing the default route reaches the copies inside the groups.
        assert_eq!(t.insert(a("1.2.3.4"), 0, 7), Ok(Some(9)));
        assert_eq!(t.lookup(a("192.0.2.2")), Some(7));
        assert_eq!(t.lookup(a("192.0.2.1")), Some(1));
        assert_eq!(t.delete(Ipv4Addr::UNSPECIFIED, 0), Ok(7));
        assert_eq!(t.lookup(a("192.0.2.2")), None);
        assert_eq!(t.lookup(a("192.0.2.1")), Some(1));
        assert_eq!(t.delete(a("192.0.2.1"), 32), Ok(1));
        assert_eq!(t.groups_in_use(), 0);
        assert!(t.is_empty());
    }

    #[test]
    fn groups_exhausted_leaves_the_table_unchanged() {
        let mut t = Lpm4::with_first_stride(16, 2).unwrap();
        t.insert(a("192.0.2.1"), 32, 1).unwrap();
        assert_eq!(t.groups_in_use(), 2);
        // Needs two new groups (one per level below /16), none free.
        assert_eq!(
            t.insert(a("198.51.100.1"), 32, 2),
            Err(RouteError::GroupsExhausted { max_groups: 2 })
        );
        // Needs one new group (the /16's group exists).
        assert_eq!(
            t.insert(a("192.0.3.1"), 32, 2),
            Err(RouteError::GroupsExhausted { max_groups: 2 })
        );
        assert_eq!(t.len(), 1);
        assert_eq!(t.lookup(a("198.51.100.1")), None);
        assert_eq!(t.get(a("198.51.100.1"), 32), None);
        // Needs none: the same /24 group.
        t.insert(a("192.0.2.7"), 32, 3).unwrap();
        assert_eq!(t.lookup(a("192.0.2.7")), Some(3));
    }

    #[test]
    fn rejects_bad_parameters() {
        assert_eq!(
            Lpm4::with_first_stride(20, 1).err(),
            Some(RouteError::FirstStride { stride: 20 })
        );
        assert!(matches!(
            Lpm4::with_first_stride(16, super::super::MAX_GROUPS + 1),
            Err(RouteError::TooManyGroups { .. })
        ));
        let mut t = Lpm4::with_first_stride(8, 1).unwrap();
        assert_eq!(
            t.insert(a("1.2.3.4"), 33, 1),
            Err(RouteError::PrefixLength { len: 33, max: 32 })
        );
        assert_eq!(
            t.delete(a("1.2.3.4"), 40),
            Err(RouteError::PrefixLength { len: 40, max: 32 })
        );
        assert_eq!(t.get(a("1.2.3.4"), 40), None);
        assert_eq!(Lpm4::memory_for(8, 1), 2048);
    }

    #[test]
    fn burst_matches_single_lookups() {
        let mut t = Lpm4::with_first_stride(16, 64).unwrap();
        for i in 0..40u32 {
            let p = Ipv4Addr::from_bits(0x0a00_0000 | i << 12);
            t.insert(p, 20 + (i % 13) as u8, i as u16).unwrap();
        }
        let addrs: alloc::vec::Vec<Ipv4Addr> = (0..100u32)
            .map(|i| Ipv4Addr::from_bits(0x0a00_0000 | i.wrapping_mul(0x9e37_79b9) >> 8))
            .collect();
        let mut out = alloc::vec![None; 100];
        t.lookup_burst(&addrs, &mut out);
        for (a, o) in addrs.iter().zip(&out) {
            assert_eq!(*o, t.lookup(*a));
        }
        // A shorter output only gets its own length.
        let mut short = [Some(1); 3];
        t.lookup_burst(&addrs[..1], &mut short);
        assert_eq!(short[0], t.lookup(addrs[0]));
        assert_eq!(short[1..], [Some(1), Some(1)]);
    }

    #[test]
    fn iter_lists_the_routes() {
        let mut t = Lpm4::with_first_stride(8, 4).unwrap();
        t.insert(a("10.1.2.3"), 16, 1).unwrap();
        t.insert(a("0.0.0.0"), 0, 2).unwrap();
        let mut routes: alloc::vec::Vec<_> = t.iter().collect();
        routes.sort();
        assert_eq!(routes, [(a("0.0.0.0"), 0, 2), (a("10.1.0.0"), 16, 1)]);
        assert_eq!(t.get(a("10.1.99.99"), 16), Some(1));
        assert!(alloc::format!("{t:?}").contains("routes: 2"));
    }
}
