//! IPv6 longest-prefix match in a multibit trie: a 24-bit first stride and 8-bit strides
//! below it, the layout of DPDK's `rte_lpm6`.

use core::fmt;
use core::net::Ipv6Addr;

use super::trie::{self, BURST, Trie};
use super::{NextHop, RouteError};

/// An IPv6 route table answering longest-prefix match.
///
/// # Layout, reads and memory
///
/// A first table indexed by the top `first_stride` bits and a pool of `max_groups` groups of
/// 256 4-byte entries, each indexed by the next 8 bits. A lookup reads the first table and
/// then one group per 8 bits until it meets a route slot, so it makes at most
/// `1 + (128 - first_stride) / 8` reads, and only as many as the longest prefix on its path
/// needs (a lookup under a /48 reads at most 4 slots with the 24-bit first stride).
///
/// | constructor | reads per lookup | first table | groups for one /48, /64, /128 |
/// |---|---|---|---|
/// | [`Lpm6::new`] | <= 14 | 2^24 * 4 B = 64 MiB | 3, 5, 13 (1 KiB each) |
/// | [`Lpm6::with_first_stride`]`(16, ..)` | <= 15 | 2^16 * 4 B = 256 KiB | 4, 6, 14 |
/// | [`Lpm6::with_first_stride`]`(8, ..)` | <= 16 | 2^8 * 4 B = 1 KiB | 5, 7, 15 |
///
/// Routes that share their leading bits share groups, so these are upper bounds per route.
/// Tables are allocated, zeroed, by the constructor ([`Lpm6::memory_for`]); the rule maps
/// (a 32-byte bucket, as `u128` keys are 16-byte aligned, and a control byte per route:
/// about 40 bytes at hashbrown's load factor) grow with the routes. Measured with
/// Internet-like routes (`perf/benches/route.rs`): 1k routes use 3,950 groups and 10k use
/// 39,001 with the 24-bit first stride (102 MiB in all), 44,729 with the 16-bit one (44 MiB).
#[derive(Clone)]
pub struct Lpm6 {
    trie: Trie<u128>,
}

impl Lpm6 {
    /// The `rte_lpm6` layout: a 2^24-entry first table (64 MiB) and `max_groups` groups
    /// (1 KiB each); at most 14 reads per lookup. `max_groups` above [`super::MAX_GROUPS`]
    /// is clamped to it.
    pub fn new(max_groups: u32) -> Lpm6 {
        let trie = Trie::new(24, max_groups.min(super::MAX_GROUPS));
        Lpm6 {
            // 24 is a valid stride and the group count is clamped: `new` cannot fail.
            trie: trie.unwrap_or_else(|_| unreachable!("24-bit stride and clamped groups")),
        }
    }

    /// A table whose first table has `first_stride` bits (8, 16 or 24) and 8-bit groups below
    /// it: at most `1 + (128 - first_stride) / 8` reads per lookup.
    pub fn with_first_stride(first_stride: u8, max_groups: u32) -> Result<Lpm6, RouteError> {
        Ok(Lpm6 {
            trie: Trie::new(first_stride, max_groups)?,
        })
    }

    /// Bytes of lookup tables a table with this layout allocates: `(2^first_stride +
    /// 256 * max_groups) * 4`.
    pub const fn memory_for(first_stride: u8, max_groups: u32) -> usize {
        trie::table_bytes(first_stride, max_groups)
    }

    /// Groups a single route of length `len` needs at most with this first stride (what
    /// sizing `max_groups` starts from).
    pub const fn groups_per_route(first_stride: u8, len: u8) -> u32 {
        if len <= first_stride {
            0
        } else {
            (len - first_stride).div_ceil(8) as u32
        }
    }

    /// Adds the route `prefix/len` (host bits of `prefix` are ignored), or replaces its next
    /// hop; returns the next hop it replaced. On error the table is unchanged.
    pub fn insert(
        &mut self,
        prefix: Ipv6Addr,
        len: u8,
        next_hop: NextHop,
    ) -> Result<Option<NextHop>, RouteError> {
        self.trie.insert(prefix.to_bits(), len, next_hop)
    }

    /// Removes the route `prefix/len` and returns its next hop. Addresses it covered fall
    /// back to the longest remaining prefix that covers them.
    pub fn delete(&mut self, prefix: Ipv6Addr, len: u8) -> Result<NextHop, RouteError> {
        self.trie.delete(prefix.to_bits(), len)
    }

    /// The next hop of the longest prefix that contains `addr`.
    #[inline]
    pub fn lookup(&self, addr: Ipv6Addr) -> Option<NextHop> {
        self.trie.lookup(addr.to_bits())
    }

    /// Looks up `addrs[i]` into `out[i]` for every `i` below the shorter length of the two,
    /// 32 at a time and level by level: each round reads one slot for every address still on
    /// a group, so the reads of a round are independent and their cache misses overlap
    /// (1.4-1.8 times the throughput of single lookups with 10k routes, measured in
    /// `perf/benches/route.rs`).
    pub fn lookup_burst(&self, addrs: &[Ipv6Addr], out: &mut [Option<NextHop>]) {
        for (addrs, out) in addrs.chunks(BURST).zip(out.chunks_mut(BURST)) {
            let mut keys = [0u128; BURST];
            for (k, a) in keys.iter_mut().zip(addrs) {
                *k = a.to_bits();
            }
            self.trie.lookup_burst(&keys[..addrs.len()], out);
        }
    }

    /// The next hop of exactly `prefix/len`, if that route is in the table.
    pub fn get(&self, prefix: Ipv6Addr, len: u8) -> Option<NextHop> {
        self.trie.get(prefix.to_bits(), len)
    }

    /// Every route as (network address, length, next hop), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (Ipv6Addr, u8, NextHop)> + '_ {
        self.trie
            .iter()
            .map(|(k, len, nh)| (Ipv6Addr::from_bits(k), len, nh))
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

    /// The most memory reads a lookup makes: 14 with the 24-bit first stride.
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
    pub(crate) fn reads(&self, addr: Ipv6Addr) -> usize {
        self.trie.reads(addr.to_bits())
    }
}

impl fmt::Debug for Lpm6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Lpm6").field(&self.trie).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_match_and_restoration() {
        let mut t = Lpm6::with_first_stride(16, 64).unwrap();
        assert_eq!(t.max_reads(), 15);
        t.insert(a("::"), 0, 100).unwrap();
        t.insert(a("2001:db8::"), 32, 1).unwrap();
        t.insert(a("2001:db8:1::"), 48, 2).unwrap();
        t.insert(a("2001:db8:1:2::"), 64, 3).unwrap();
        t.insert(a("2001:db8:1:2::7"), 128, 4).unwrap();
        assert_eq!(t.lookup(a("2001:db8:1:2::7")), Some(4));
        assert_eq!(t.reads(a("2001:db8:1:2::7")), 15);
        assert_eq!(t.lookup(a("2001:db8:1:2::8")), Some(3));
        assert_eq!(t.lookup(a("2001:db8:1:3::")), Some(2));
        assert_eq!(t.lookup(a("2001:db8:2::")), Some(1));
        // Under the /48's groups, then beside them.
        assert_eq!(t.reads(a("2001:db8:2::")), 5);
        assert_eq!(t.reads(a("2001:db8:100::")), 4);
        assert_eq!(t.reads(a("2001:db9::")), 3);
        assert_eq!(t.lookup(a("2002::")), Some(100));
        assert_eq!(t.lookup(a("ffff::")), Some(100));
        assert_eq!(t.groups_in_use(), 14);

        assert_eq!(t.delete(a("2001:db8:1::"), 48), Ok(2));
        assert_eq!(t.lookup(a("2001:db8:1:3::")), Some(1));
        assert_eq!(t.lookup(a("2001:db8:1:2::8")), Some(3));
        assert_eq!(t.delete(a("2001:db8:1:2::7"), 128), Ok(4));
        assert_eq!(t.lookup(a("2001:db8:1:2::7")), Some(3));
        // Only the groups down to /64 remain.
        assert_eq!(t.groups_in_use(), 6);
        assert_eq!(t.delete(a("2001:db8:1:2::"), 64), Ok(3));
        assert_eq!(t.delete(a("2001:db8::"), 32), Ok(1));
        assert_eq!(t.groups_in_use(), 0);
        assert_eq!(t.lookup(a("2001:db8:1:2::7")), Some(100));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn sizes_and_bounds() {
        let t = Lpm6::new(4);
        assert_eq!(t.max_reads(), 14);
        assert_eq!(t.table_bytes(), (1 << 24) * 4 + 4 * 1024);
        assert_eq!(Lpm6::groups_per_route(24, 48), 3);
        assert_eq!(Lpm6::groups_per_route(24, 64), 5);
        assert_eq!(Lpm6::groups_per_route(24, 128), 13);
        assert_eq!(Lpm6::groups_per_route(16, 16), 0);
        assert_eq!(Lpm6::groups_per_route(16, 17), 1);
        assert_eq!(Lpm6::memory_for(16, 100), (65536 + 25600) * 4);
        let mut t = Lpm6::with_first_stride(8, 0).unwrap();
        assert_eq!(
            t.insert(a("2001:db8::"), 129, 1),
            Err(RouteError::PrefixLength { len: 129, max: 128 })
        );
        assert_eq!(
            t.insert(a("2001:db8::"), 9, 1),
            Err(RouteError::GroupsExhausted { max_groups: 0 })
        );
        t.insert(a("2001:db8::"), 8, 1).unwrap();
        assert_eq!(t.lookup(a("20ff::1")), Some(1));
    }

    #[test]
    fn burst_matches_single_lookups() {
        let mut t = Lpm6::with_first_stride(16, 256).unwrap();
        for i in 0..40u128 {
            t.insert(
                Ipv6Addr::from_bits(0x2001_0db8 << 96 | i << 80),
                40 + (i % 25) as u8,
                i as u16,
            )
            .unwrap();
        }
        let addrs: alloc::vec::Vec<Ipv6Addr> = (0..70u128)
            .map(|i| {
                // Every fifth address outside 2001:db8::/32: no route.
                let net = if i % 5 == 0 {
                    0x3fff << 112
                } else {
                    0x2001_0db8 << 96
                };
                Ipv6Addr::from_bits(net | ((i % 45) << 80) | (i * 0x1234_5678))
            })
            .collect();
        let mut out = alloc::vec![None; 70];
        t.lookup_burst(&addrs, &mut out);
        for (a, o) in addrs.iter().zip(&out) {
            assert_eq!(*o, t.lookup(*a));
        }
        assert!(out.iter().any(Option::is_some) && out.iter().any(Option::is_none));
    }
}
