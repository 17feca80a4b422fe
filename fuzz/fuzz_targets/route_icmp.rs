//! The route module on arbitrary bytes: the ICMP error builders and the TTL / hop-limit
//! helpers never panic, what the builders write parses with correct checksums and quotes
//! the offending packet; and read as a list of inserts and deletes, the bytes drive `Lpm4`
//! and `Lpm6` in lockstep with the naive scan, which must agree on every lookup.
//!
//! Input: one selector byte (output buffer size, table layout and group budget), then the
//! offending IP packet / the table operations.
#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use vbng_dataplane::route::icmp_error::{IPV4_ERROR_MAX_LEN, IPV6_ERROR_MAX_LEN};
use vbng_dataplane::route::{
    HopLimitError, IcmpRefusal, Icmpv4ErrorKind, Icmpv6ErrorKind, LinearLpm4, LinearLpm6, Lpm4,
    Lpm6, RouteError, forward_ipv4, forward_ipv6, icmpv4_error, icmpv4_error_eligible,
    icmpv6_error, icmpv6_error_eligible,
};
use vbng_dataplane::wire::icmpv4::Icmpv4Repr;
use vbng_dataplane::wire::icmpv6::Icmpv6Repr;
use vbng_dataplane::wire::ipv4::{self, IpProtocol, Ipv4Repr};
use vbng_dataplane::wire::ipv6::Ipv6Repr;

const CAPACITIES: [usize; 8] = [0, 27, 48, 64, 300, 576, 1280, 1500];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    icmp_errors(sel, rest);
    forwarding(rest);
    tables_v4(sel, rest);
    tables_v6(sel, rest);
});

fn icmp_errors(sel: u8, packet: &[u8]) {
    let cap = CAPACITIES[usize::from(sel & 7)];
    let mut out = [0u8; 1500];
    let out = &mut out[..cap];
    let ours4 = Ipv4Addr::new(192, 0, 2, 1);
    for kind in [
        Icmpv4ErrorKind::TimeExceeded,
        Icmpv4ErrorKind::NetUnreachable,
        Icmpv4ErrorKind::FragmentationNeeded { next_hop_mtu: 1280 },
    ] {
        let eligible = icmpv4_error_eligible(packet);
        match icmpv4_error(kind, packet, ours4, 0x1234, out) {
            Ok(n) => {
                assert_eq!(eligible, Ok(n));
                assert!(n <= cap && n <= IPV4_ERROR_MAX_LEN);
                let ip = Ipv4Repr::parse(&out[..n]).expect("emitted IPv4 parses");
                assert_eq!(ip.protocol, IpProtocol::Icmp);
                assert_eq!(ip.src_addr, ours4);
                assert_eq!(&ip.dst_addr.octets(), &packet[12..16]);
                Icmpv4Repr::parse(&out[20..n]).expect("emitted ICMP checksums");
                assert_eq!(&out[28..n], &packet[..n - 28]);
            }
            Err(IcmpRefusal::BufferTooSmall { needed, capacity }) => {
                assert_eq!(eligible, Ok(needed));
                assert!(needed > capacity && capacity == cap);
            }
            Err(e) => assert_eq!(eligible, Err(e)),
        }
    }
    let ours6: Ipv6Addr = "2001:db8::1".parse().unwrap();
    for kind in [
        Icmpv6ErrorKind::HopLimitExceeded,
        Icmpv6ErrorKind::PacketTooBig { mtu: 1280 },
    ] {
        let eligible = icmpv6_error_eligible(kind, packet);
        match icmpv6_error(kind, packet, ours6, out) {
            Ok(n) => {
                assert_eq!(eligible, Ok(n));
                assert!(n <= cap && n <= IPV6_ERROR_MAX_LEN);
                let ip = Ipv6Repr::parse(&out[..n]).expect("emitted IPv6 parses");
                assert_eq!(usize::from(ip.payload_len), n - 40);
                assert_eq!(&ip.dst_addr.octets(), &packet[8..24]);
                Icmpv6Repr::parse(&ip.src_addr, &ip.dst_addr, &out[40..n])
                    .expect("emitted ICMPv6 checksums");
                assert_eq!(&out[48..n], &packet[..n - 48]);
            }
            Err(IcmpRefusal::BufferTooSmall { needed, .. }) => {
                assert_eq!(eligible, Ok(needed));
                assert!(needed > cap);
            }
            Err(e) => assert_eq!(eligible, Err(e)),
        }
    }
}

fn forwarding(packet: &[u8]) {
    let mut copy = packet.to_vec();
    match forward_ipv4(&mut copy) {
        Ok(ttl) => {
            assert_eq!(copy[8], ttl);
            assert_eq!(ttl, packet[8] - 1);
            if ipv4::verify_checksum(packet) {
                assert!(ipv4::verify_checksum(&copy));
            }
        }
        Err(HopLimitError::Expired | HopLimitError::Malformed) => assert_eq!(copy, packet),
    }
    let mut copy = packet.to_vec();
    match forward_ipv6(&mut copy) {
        Ok(hl) => assert_eq!((copy[7], hl), (hl, packet[7] - 1)),
        Err(_) => assert_eq!(copy, packet),
    }
}

/// One table operation: a flags byte (bit 0 delete, bit 1 reuse the previous address, bits
/// 2.. next hop), a length byte and the address.
fn ops<const N: usize>(bytes: &[u8]) -> impl Iterator<Item = (bool, bool, u16, u8, [u8; N])> + '_ {
    bytes.chunks_exact(2 + N).take(64).map(|c| {
        let mut a = [0u8; N];
        a.copy_from_slice(&c[2..]);
        (c[0] & 1 != 0, c[0] & 2 != 0, u16::from(c[0] >> 2), c[1], a)
    })
}

fn tables_v4(sel: u8, bytes: &[u8]) {
    let stride = if sel & 8 != 0 { 16 } else { 8 };
    let max_groups = u32::from(sel >> 4);
    let mut t = Lpm4::with_first_stride(stride, max_groups).unwrap();
    let mut r = LinearLpm4::new();
    let mut seen: Vec<(Ipv4Addr, u8)> = Vec::new();
    let mut prev = Ipv4Addr::UNSPECIFIED;
    for (delete, reuse, nh, len, a) in ops::<4>(bytes) {
        let addr = if reuse { prev } else { Ipv4Addr::from(a) };
        prev = addr;
        let len = len % 34; // 33: an invalid length now and then
        if delete {
            assert_eq!(t.delete(addr, len), r.delete(addr, len));
        } else {
            match t.insert(addr, len, nh) {
                Err(RouteError::GroupsExhausted { .. }) => {}
                got => assert_eq!(got, r.insert(addr, len, nh)),
            }
        }
        seen.push((addr, len));
        let mut probes = Vec::with_capacity(2 * seen.len());
        for &(a, _) in &seen {
            for p in [a, Ipv4Addr::from_bits(a.to_bits().wrapping_add(1))] {
                assert_eq!(t.lookup(p), r.lookup(p), "{p}");
                probes.push(p);
            }
        }
        let mut burst = vec![Some(u16::MAX); probes.len()];
        t.lookup_burst(&probes, &mut burst);
        for (p, b) in probes.iter().zip(&burst) {
            assert_eq!(*b, t.lookup(*p), "burst {p}");
        }
        assert_eq!(t.len(), r.len());
    }
    for (a, len) in seen {
        assert_eq!(t.delete(a, len), r.delete(a, len));
    }
    assert!(t.is_empty());
    assert_eq!(t.groups_in_use(), 0);
}

fn tables_v6(sel: u8, bytes: &[u8]) {
    let stride = if sel & 8 != 0 { 16 } else { 8 };
    let max_groups = u32::from(sel >> 4) * 8;
    let mut t = Lpm6::with_first_stride(stride, max_groups).unwrap();
    let mut r = LinearLpm6::new();
    let mut seen: Vec<(Ipv6Addr, u8)> = Vec::new();
    let mut prev = Ipv6Addr::UNSPECIFIED;
    for (delete, reuse, nh, len, a) in ops::<16>(bytes) {
        let addr = if reuse { prev } else { Ipv6Addr::from(a) };
        prev = addr;
        let len = len % 130;
        if delete {
            assert_eq!(t.delete(addr, len), r.delete(addr, len));
        } else {
            match t.insert(addr, len, nh) {
                Err(RouteError::GroupsExhausted { .. }) => {}
                got => assert_eq!(got, r.insert(addr, len, nh)),
            }
        }
        seen.push((addr, len));
        let mut probes = Vec::with_capacity(2 * seen.len());
        for &(a, _) in &seen {
            for p in [a, Ipv6Addr::from_bits(a.to_bits().wrapping_add(1))] {
                assert_eq!(t.lookup(p), r.lookup(p), "{p}");
                probes.push(p);
            }
        }
        let mut burst = vec![Some(u16::MAX); probes.len()];
        t.lookup_burst(&probes, &mut burst);
        for (p, b) in probes.iter().zip(&burst) {
            assert_eq!(*b, t.lookup(*p), "burst {p}");
        }
    }
    for (a, len) in seen {
        assert_eq!(t.delete(a, len), r.delete(a, len));
    }
    assert!(t.is_empty());
    assert_eq!(t.groups_in_use(), 0);
}
