//! Property tests of the route tables against the naive longest-match scan: random prefix
//! sets (with /0, full-length and nested prefixes), inserts, deletes and re-adds, in every
//! layout; and the pcap reader the golden ICMP tests use.

use alloc::vec::Vec;
use core::fmt::Debug;
use core::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

use super::{LinearLpm4, LinearLpm6, Lpm4, Lpm6, NextHop, RouteError};

/// The frames of a classic little-endian pcap file (what `tcpdump -w` writes).
pub(crate) fn pcap_frames(pcap: &[u8]) -> Vec<&[u8]> {
    assert_eq!(&pcap[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let caplen = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        frames.push(&pcap[at + 16..at + 16 + caplen]);
        at += 16 + caplen;
    }
    frames
}

/// What the property tests need from a table, the fast ones and the reference alike.
trait Table {
    type Addr: Copy + Debug;
    fn insert(
        &mut self,
        a: Self::Addr,
        len: u8,
        nh: NextHop,
    ) -> Result<Option<NextHop>, RouteError>;
    fn delete(&mut self, a: Self::Addr, len: u8) -> Result<NextHop, RouteError>;
    fn lookup(&self, a: Self::Addr) -> Option<NextHop>;
    /// Checks the table's own invariants for a lookup of `a`.
    fn check_reads(&self, _a: Self::Addr) -> Result<(), TestCaseError> {
        Ok(())
    }
    fn groups_in_use(&self) -> u32 {
        0
    }
}

macro_rules! table_impl {
    ($t:ty, $addr:ty, fast) => {
        impl Table for $t {
            type Addr = $addr;
            fn insert(
                &mut self,
                a: $addr,
                len: u8,
                nh: NextHop,
            ) -> Result<Option<NextHop>, RouteError> {
                <$t>::insert(self, a, len, nh)
            }
            fn delete(&mut self, a: $addr, len: u8) -> Result<NextHop, RouteError> {
                <$t>::delete(self, a, len)
            }
            fn lookup(&self, a: $addr) -> Option<NextHop> {
                <$t>::lookup(self, a)
            }
            fn check_reads(&self, a: $addr) -> Result<(), TestCaseError> {
                prop_assert!(
                    self.reads(a) <= self.max_reads(),
                    "{:?} reads {}",
                    a,
                    self.reads(a)
                );
                Ok(())
            }
            fn groups_in_use(&self) -> u32 {
                <$t>::groups_in_use(self)
            }
        }
    };
    ($t:ty, $addr:ty) => {
        impl Table for $t {
            type Addr = $addr;
            fn insert(
                &mut self,
                a: $addr,
                len: u8,
                nh: NextHop,
            ) -> Result<Option<NextHop>, RouteError> {
                <$t>::insert(self, a, len, nh)
            }
            fn delete(&mut self, a: $addr, len: u8) -> Result<NextHop, RouteError> {
                <$t>::delete(self, a, len)
            }
            fn lookup(&self, a: $addr) -> Option<NextHop> {
                <$t>::lookup(self, a)
            }
        }
    };
}

table_impl!(Lpm4, Ipv4Addr, fast);
table_impl!(Lpm6, Ipv6Addr, fast);
table_impl!(LinearLpm4, Ipv4Addr);
table_impl!(LinearLpm6, Ipv6Addr);

/// One change: insert (with a next hop) or delete one prefix of the pool.
#[derive(Debug, Clone, Copy)]
enum Op {
    Insert(Index, NextHop),
    Delete(Index),
}

/// Few distinct next hops, so that sibling routes often share one and whole groups end up
/// holding a single route value (what group folding must get right).
fn next_hop() -> impl Strategy<Value = NextHop> {
    prop_oneof![2 => Just(1 as NextHop), 1 => 0 as NextHop..4, 1 => any::<NextHop>()]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<Index>(), next_hop()).prop_map(|(i, nh)| Op::Insert(i, nh)),
        2 => any::<Index>().prop_map(Op::Delete),
    ]
}

/// Applies `ops` to both tables, comparing every result and, after each op, the lookup of
/// every probe; then deletes every route and checks that the table is empty and holds no
/// group. With `exhaustible`, an insert the fast table refuses for lack of groups is skipped
/// in the reference (and must have left the fast table unchanged).
fn run<T: Table, R: Table<Addr = T::Addr>>(
    table: &mut T,
    reference: &mut R,
    pool: &[(T::Addr, u8)],
    ops: &[Op],
    probes: &[T::Addr],
    exhaustible: bool,
) -> Result<(), TestCaseError> {
    let compare = |table: &T, reference: &R| -> Result<(), TestCaseError> {
        for &a in probes {
            prop_assert_eq!(table.lookup(a), reference.lookup(a), "lookup {:?}", a);
            table.check_reads(a)?;
        }
        Ok(())
    };
    for op in ops {
        match *op {
            Op::Insert(i, nh) => {
                let (a, len) = *i.get(pool);
                let got = table.insert(a, len, nh);
                if exhaustible && matches!(got, Err(RouteError::GroupsExhausted { .. })) {
                    compare(table, reference)?;
                    continue;
                }
                prop_assert_eq!(got, reference.insert(a, len, nh), "insert {:?}/{}", a, len);
            }
            Op::Delete(i) => {
                let (a, len) = *i.get(pool);
                prop_assert_eq!(
                    table.delete(a, len),
                    reference.delete(a, len),
                    "delete {:?}/{}",
                    a,
                    len
                );
            }
        }
        compare(table, reference)?;
    }
    for &(a, len) in pool {
        let got = table.delete(a, len);
        prop_assert_eq!(
            got,
            reference.delete(a, len),
            "final delete {:?}/{}",
            a,
            len
        );
    }
    prop_assert_eq!(table.groups_in_use(), 0);
    for &a in probes {
        prop_assert_eq!(table.lookup(a), None);
    }
    Ok(())
}

/// Prefix bases that nest and overlap: a few fixed networks, a dense /22, the ends of the
/// address space, and anything.
fn v4_base() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(u32::MAX),
        Just(0x0a00_0000),
        Just(0xc0a8_0180),
        (0u32..4, any::<u8>()).prop_map(|(hi, lo)| 0x0a01_0000 | hi << 8 | u32::from(lo)),
        any::<u32>(),
    ]
}

fn v4_len() -> impl Strategy<Value = u8> {
    prop_oneof![Just(0u8), Just(32), 0u8..=32, 20u8..=30]
}

/// A family under `a/parent`, where `parent` is a group boundary: its two halves, which with
/// one next hop fill the group with a single value, and a longer prefix inside one half,
/// whose delete leaves the group filled that way (what group folding must get right).
fn v4_family(a: u32, parent: u8, extra: u8) -> Vec<(Ipv4Addr, u8)> {
    let bit = 1u32 << (31 - u32::from(parent));
    let inner = (parent + 2 + extra % (31 - parent)).min(32);
    alloc::vec![
        (Ipv4Addr::from_bits(a & !bit), parent + 1),
        (Ipv4Addr::from_bits(a | bit), parent + 1),
        (Ipv4Addr::from_bits(a), inner),
    ]
}

fn v4_pool() -> impl Strategy<Value = Vec<(Ipv4Addr, u8)>> {
    let member = prop_oneof![
        3 => (v4_base(), v4_len()).prop_map(|(a, l)| alloc::vec![(Ipv4Addr::from_bits(a), l)]),
        1 => (v4_base(), prop_oneof![Just(8u8), Just(16), Just(24)], any::<u8>())
            .prop_map(|(a, p, e)| v4_family(a, p, e)),
    ];
    prop::collection::vec(member, 1..12).prop_map(|m| m.concat())
}

/// Each prefix's first and last address and their neighbours, the prefix as given (with
/// host bits), and random addresses.
fn v4_probes(pool: &[(Ipv4Addr, u8)], random: &[u32]) -> Vec<Ipv4Addr> {
    let mut probes = Vec::new();
    for &(a, len) in pool {
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        let net = a.to_bits() & mask;
        let last = net | !mask;
        for p in [
            net,
            last,
            net.wrapping_sub(1),
            last.wrapping_add(1),
            a.to_bits(),
        ] {
            probes.push(Ipv4Addr::from_bits(p));
        }
    }
    probes.extend(random.iter().map(|&r| Ipv4Addr::from_bits(r)));
    probes
}

fn v6_base() -> impl Strategy<Value = u128> {
    let db8 = 0x2001_0db8u128 << 96;
    prop_oneof![
        Just(0u128),
        Just(u128::MAX),
        Just(db8),
        (any::<u16>(), any::<u8>())
            .prop_map(move |(site, host)| db8 | u128::from(site) << 80 | u128::from(host)),
        (0u128..4, any::<u64>())
            .prop_map(move |(sub, iid)| db8 | 0x1234 << 80 | sub << 64 | u128::from(iid)),
        any::<u128>(),
    ]
}

fn v6_len() -> impl Strategy<Value = u8> {
    prop_oneof![Just(0u8), Just(128), 0u8..=128, 28u8..=64]
}

/// See [`v4_family`].
fn v6_family(a: u128, parent: u8, extra: u8) -> Vec<(Ipv6Addr, u8)> {
    let bit = 1u128 << (127 - u32::from(parent));
    let inner = (parent + 2 + extra % (127 - parent)).min(128);
    alloc::vec![
        (Ipv6Addr::from_bits(a & !bit), parent + 1),
        (Ipv6Addr::from_bits(a | bit), parent + 1),
        (Ipv6Addr::from_bits(a), inner),
    ]
}

fn v6_pool() -> impl Strategy<Value = Vec<(Ipv6Addr, u8)>> {
    let member = prop_oneof![
        3 => (v6_base(), v6_len()).prop_map(|(a, l)| alloc::vec![(Ipv6Addr::from_bits(a), l)]),
        1 => (v6_base(), (1u8..16).prop_map(|k| k * 8), any::<u8>())
            .prop_map(|(a, p, e)| v6_family(a, p, e)),
    ];
    prop::collection::vec(member, 1..12).prop_map(|m| m.concat())
}

fn v6_probes(pool: &[(Ipv6Addr, u8)], random: &[u128]) -> Vec<Ipv6Addr> {
    let mut probes = Vec::new();
    for &(a, len) in pool {
        let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
        let net = a.to_bits() & mask;
        let last = net | !mask;
        for p in [
            net,
            last,
            net.wrapping_sub(1),
            last.wrapping_add(1),
            a.to_bits(),
        ] {
            probes.push(Ipv6Addr::from_bits(p));
        }
    }
    probes.extend(random.iter().map(|&r| Ipv6Addr::from_bits(r)));
    probes
}

proptest! {
    #[test]
    fn lpm4_agrees_with_a_linear_scan(
        stride in prop_oneof![Just(8u8), Just(16)],
        pool in v4_pool(),
        ops in prop::collection::vec(op(), 0..60),
        random in prop::collection::vec(any::<u32>(), 0..16),
    ) {
        let mut t = Lpm4::with_first_stride(stride, 32 * 3).unwrap();
        let probes = v4_probes(&pool, &random);
        run(&mut t, &mut LinearLpm4::new(), &pool, &ops, &probes, false)?;
    }

    #[test]
    fn lpm6_agrees_with_a_linear_scan(
        stride in prop_oneof![Just(8u8), Just(16)],
        pool in v6_pool(),
        ops in prop::collection::vec(op(), 0..60),
        random in prop::collection::vec(any::<u128>(), 0..16),
    ) {
        let mut t = Lpm6::with_first_stride(stride, 32 * 15).unwrap();
        let probes = v6_probes(&pool, &random);
        run(&mut t, &mut LinearLpm6::new(), &pool, &ops, &probes, false)?;
    }

    #[test]
    fn exhausted_groups_leave_the_table_unchanged(
        max_groups in 0u32..6,
        pool4 in v4_pool(),
        pool6 in v6_pool(),
        ops in prop::collection::vec(op(), 0..60),
    ) {
        let mut t = Lpm4::with_first_stride(16, max_groups).unwrap();
        run(&mut t, &mut LinearLpm4::new(), &pool4, &ops, &v4_probes(&pool4, &[]), true)?;
        let mut t = Lpm6::with_first_stride(16, max_groups * 4).unwrap();
        run(&mut t, &mut LinearLpm6::new(), &pool6, &ops, &v6_probes(&pool6, &[]), true)?;
    }
}

proptest! {
    // The 24-bit first stride allocates 64 MiB per table and a /0 rewrites 2^24 slots:
    // fewer cases.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn dir_24_8_agrees_with_a_linear_scan(
        pool in v4_pool(),
        ops in prop::collection::vec(op(), 0..40),
        random in prop::collection::vec(any::<u32>(), 0..16),
    ) {
        let mut t = Lpm4::new(32);
        let probes = v4_probes(&pool, &random);
        run(&mut t, &mut LinearLpm4::new(), &pool, &ops, &probes, false)?;
    }

    #[test]
    fn lpm6_24_agrees_with_a_linear_scan(
        pool in v6_pool(),
        ops in prop::collection::vec(op(), 0..40),
        random in prop::collection::vec(any::<u128>(), 0..16),
    ) {
        let mut t = Lpm6::new(32 * 13);
        let probes = v6_probes(&pool, &random);
        run(&mut t, &mut LinearLpm6::new(), &pool, &ops, &probes, false)?;
    }
}

#[test]
fn delete_then_re_add_restores_lookups() {
    let mut t = Lpm4::new(8);
    let mut r = LinearLpm4::new();
    let routes = [
        ("0.0.0.0", 0u8, 1u16),
        ("10.0.0.0", 8, 2),
        ("10.1.0.0", 16, 3),
        ("10.1.1.0", 24, 4),
        ("10.1.1.0", 25, 5),
        ("10.1.1.1", 32, 6),
        ("255.255.255.255", 32, 7),
    ];
    let probes: Vec<Ipv4Addr> = [
        "10.1.1.1",
        "10.1.1.2",
        "10.1.1.200",
        "10.1.2.1",
        "10.2.0.0",
        "11.0.0.0",
        "255.255.255.255",
        "255.255.255.254",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    for &(a, l, nh) in &routes {
        let a: Ipv4Addr = a.parse().unwrap();
        t.insert(a, l, nh).unwrap();
        r.insert(a, l, nh).unwrap();
    }
    let snapshot: Vec<_> = probes.iter().map(|&p| t.lookup(p)).collect();
    // Every order of delete then re-add of one route ends where it started.
    for &(a, l, nh) in &routes {
        let a: Ipv4Addr = a.parse().unwrap();
        assert_eq!(t.delete(a, l), Ok(nh));
        r.delete(a, l).unwrap();
        for &p in &probes {
            assert_eq!(t.lookup(p), r.lookup(p), "{p} after deleting {a}/{l}");
        }
        t.insert(a, l, nh).unwrap();
        r.insert(a, l, nh).unwrap();
        let again: Vec<_> = probes.iter().map(|&p| t.lookup(p)).collect();
        assert_eq!(again, snapshot, "after re-adding {a}/{l}");
    }
    assert_eq!(t.groups_in_use(), 2);
}

#[test]
fn a_group_full_of_one_longer_route_is_kept() {
    // Two /25 halves with one next hop fill the /24's group with the same value; it must
    // stay a group, or deleting one half could not find the slots the half wrote.
    let mut t = Lpm4::new(4);
    let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
    t.insert(a("10.0.0.0"), 25, 1).unwrap();
    t.insert(a("10.0.0.128"), 25, 1).unwrap();
    t.insert(a("10.0.0.7"), 32, 2).unwrap();
    assert_eq!(t.delete(a("10.0.0.7"), 32), Ok(2));
    assert_eq!(t.groups_in_use(), 1);
    assert_eq!(t.lookup(a("10.0.0.7")), Some(1));
    assert_eq!(t.delete(a("10.0.0.0"), 25), Ok(1));
    assert_eq!(t.lookup(a("10.0.0.7")), None);
    assert_eq!(t.lookup(a("10.0.0.200")), Some(1));
    assert_eq!(t.delete(a("10.0.0.128"), 25), Ok(1));
    assert_eq!(t.groups_in_use(), 0);
}
