//! Behaviour tests of the NAT: translation with checksums recomputed from scratch, mapping
//! and filtering behaviour, hairpinning, ICMP, timeouts, blocks, logging, exhaustion. The
//! property tests are in `props.rs`.

use alloc::collections::BTreeSet;
use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use super::*;
use crate::wire::icmpv4::Icmpv4Repr;
use crate::wire::tcp::{TcpRepr, flags};
use crate::wire::udp::{self, UdpRepr};
use crate::wire::{checksum, ipv4::Ipv4Repr};

pub(super) const SEC: u64 = 1_000_000_000;

pub(super) fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

/// Subscriber `n`'s inside address.
pub(super) fn sub(n: u8) -> Ipv4Addr {
    ip(100, 64, 0, n)
}

/// Remote host `n`.
pub(super) fn remote(n: u8) -> Ipv4Addr {
    ip(203, 0, 113, n)
}

/// 4 outside addresses, 1024-2047 in blocks of 64 (16 per address), 2 blocks per subscriber.
pub(super) fn small_config() -> NatConfig {
    NatConfig {
        pool: vec!["198.51.100.0/30".parse().unwrap()],
        port_first: 1024,
        port_last: 2047,
        block_size: 64,
        blocks_per_subscriber: 2,
        max_mappings: 1024,
        max_subscribers: 64,
        log_queue_len: 64,
        fragment_slots: 64,
        ..NatConfig::default()
    }
}

pub(super) fn nat() -> Nat {
    Nat::new(&small_config(), 7).unwrap()
}

// ---- packet builders -------------------------------------------------------------------

fn ip_packet(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
    let r = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: proto.into(),
        payload_len: l4.len() as u16,
        ttl: 64,
        tos: 0,
        ident: 0x1234,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
    };
    let mut b = vec![0u8; 20 + l4.len()];
    r.emit(&mut b);
    b[20..].copy_from_slice(l4);
    b
}

pub(super) fn udp_pkt(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) -> Vec<u8> {
    let mut d = vec![0u8; 8 + payload.len()];
    UdpRepr {
        src_port: src.1,
        dst_port: dst.1,
        payload_len: payload.len() as u16,
    }
    .emit(&mut d);
    d[8..].copy_from_slice(payload);
    udp::fill_checksum(src.0, dst.0, &mut d);
    ip_packet(src.0, dst.0, 17, &d)
}

fn tcp_checksum(src: Ipv4Addr, dst: Ipv4Addr, seg: &[u8]) -> u16 {
    let mut z = seg.to_vec();
    z[16] = 0;
    z[17] = 0;
    let ph = checksum::pseudo_header_ipv4(src, dst, 6, z.len() as u16);
    !checksum::fold(checksum::combine(ph, checksum::sum(&z)))
}

pub(super) fn tcp_pkt(
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    fl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut s = vec![0u8; 20 + payload.len()];
    TcpRepr {
        src_port: src.1,
        dst_port: dst.1,
        seq: 0x0102_0304,
        ack: 0x0a0b_0c0d,
        flags: fl,
        window: 64240,
        urgent: 0,
    }
    .emit(&mut s);
    s[20..].copy_from_slice(payload);
    let c = tcp_checksum(src.0, dst.0, &s);
    s[16..18].copy_from_slice(&c.to_be_bytes());
    ip_packet(src.0, dst.0, 6, &s)
}

pub(super) fn echo_pkt(src: Ipv4Addr, dst: Ipv4Addr, request: bool, id: u16, seq: u16) -> Vec<u8> {
    let mut m = vec![0u8; 8 + 24];
    for (i, b) in m[8..].iter_mut().enumerate() {
        *b = 0x10 + i as u8;
    }
    Icmpv4Repr::echo(request, id, seq).emit(&mut m);
    ip_packet(src, dst, 1, &m)
}

pub(super) fn icmp_error(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ty: u8,
    code: u8,
    rest: u32,
    orig: &[u8],
) -> Vec<u8> {
    let mut m = vec![0u8; 8 + orig.len()];
    m[8..].copy_from_slice(orig);
    Icmpv4Repr {
        msg_type: ty.into(),
        code,
        rest_of_header: rest,
    }
    .emit(&mut m);
    ip_packet(src, dst, 1, &m)
}

fn rd16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub(super) fn src_of(p: &[u8]) -> (Ipv4Addr, u16) {
    (Ipv4Addr::new(p[12], p[13], p[14], p[15]), l4_port(p, true))
}

pub(super) fn dst_of(p: &[u8]) -> (Ipv4Addr, u16) {
    (Ipv4Addr::new(p[16], p[17], p[18], p[19]), l4_port(p, false))
}

/// Source or destination port (ICMP: echo identifier).
fn l4_port(p: &[u8], src: bool) -> u16 {
    let hl = usize::from(p[0] & 0x0f) * 4;
    match p[9] {
        1 => rd16(p, hl + 4),
        _ if src => rd16(p, hl),
        _ => rd16(p, hl + 2),
    }
}

/// Asserts that every checksum of `pkt` equals the one computed from scratch: the IPv4
/// header, TCP, UDP (0 stays "none"), ICMP, and for an ICMP error the embedded IPv4 header
/// and, if the embedded packet is complete, its transport checksum.
pub(super) fn assert_checksums(pkt: &[u8]) {
    let hl = usize::from(pkt[0] & 0x0f) * 4;
    let total = usize::from(rd16(pkt, 2));
    let mut h = pkt[..hl].to_vec();
    crate::wire::ipv4::fill_checksum(&mut h);
    assert_eq!(&h[..], &pkt[..hl], "IPv4 header checksum");
    if rd16(pkt, 6) & 0x3fff != 0 {
        return; // A fragment: the transport checksum covers the whole datagram.
    }
    let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
    let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
    let l4 = &pkt[hl..total];
    match pkt[9] {
        6 => assert_eq!(rd16(l4, 16), tcp_checksum(src, dst, l4), "TCP checksum"),
        17 => {
            let c = rd16(l4, 6);
            if c != 0 {
                let mut z = l4.to_vec();
                z[6] = 0;
                z[7] = 0;
                assert_eq!(c, udp::compute_checksum(src, dst, &z), "UDP checksum");
            }
        }
        1 => {
            let mut z = l4.to_vec();
            z[2] = 0;
            z[3] = 0;
            assert_eq!(rd16(l4, 2), checksum::checksum(&z), "ICMP checksum");
            if matches!(l4[0], 3 | 11 | 12) {
                let inner = &l4[8..];
                let ihl = usize::from(inner[0] & 0x0f) * 4;
                let mut ih = inner[..ihl].to_vec();
                crate::wire::ipv4::fill_checksum(&mut ih);
                assert_eq!(&ih[..], &inner[..ihl], "embedded IPv4 header checksum");
                if usize::from(rd16(inner, 2)) == inner.len() {
                    assert_checksums(inner);
                }
            }
        }
        _ => {}
    }
}

fn events(n: &mut Nat) -> Vec<NatLogEvent> {
    let mut v = Vec::new();
    n.drain_events(|e| v.push(*e));
    v
}

// ---- translation -----------------------------------------------------------------------

#[test]
fn udp_outbound_and_reply_with_valid_checksums() {
    let mut n = nat();
    let mut p = udp_pkt((sub(10), 40000), (remote(1), 53), b"query");
    let orig = p.clone();
    assert_eq!(
        n.translate_outbound_owned(0, sub(10), 1, 70, &mut p),
        Ok(Outbound::Forward)
    );
    assert_checksums(&p);
    let (oa, op) = src_of(&p);
    assert!(n.is_outside_address(oa));
    assert!((1024..=2047).contains(&op));
    assert_eq!(dst_of(&p), (remote(1), 53));
    // Only the source changed.
    assert_eq!(&p[28..], &orig[28..]);
    assert_eq!(n.outside_address_of(sub(10)), Some(oa));
    let m = n.lookup_outbound(sub(10), NatProtocol::Udp, 40000).unwrap();
    assert_eq!((m.outside, m.outside_port, m.session_tag), (oa, op, 1));

    let mut r = udp_pkt((remote(1), 53), (oa, op), b"answer");
    assert_eq!(
        n.translate_inbound(SEC, &mut r),
        Ok(Inbound {
            inside: sub(10),
            session_tag: 1,
            owner: 70
        })
    );
    assert_eq!(dst_of(&r), (sub(10), 40000));
    assert_checksums(&r);
    assert_eq!(n.counters().mappings_created, 1);
    assert_eq!(n.mappings_active(), 1);
}

#[test]
fn udp_checksum_zero_stays_zero() {
    let mut n = nat();
    let mut p = udp_pkt((sub(10), 40000), (remote(1), 53), b"x");
    p[26] = 0;
    p[27] = 0;
    n.translate_outbound(0, sub(10), 1, &mut p).unwrap();
    assert_eq!(rd16(&p, 26), 0);
    assert_checksums(&p);
    let (oa, op) = src_of(&p);
    let mut r = udp_pkt((remote(1), 53), (oa, op), b"y");
    r[26] = 0;
    r[27] = 0;
    n.translate_inbound(0, &mut r).unwrap();
    assert_eq!(rd16(&r, 26), 0);
    assert_checksums(&r);
}

#[test]
fn endpoint_independent_mapping() {
    let mut n = nat();
    let mut a = udp_pkt((sub(10), 5000), (remote(1), 3478), b"a");
    let mut b = udp_pkt((sub(10), 5000), (remote(2), 9999), b"b");
    n.translate_outbound(0, sub(10), 1, &mut a).unwrap();
    n.translate_outbound(0, sub(10), 1, &mut b).unwrap();
    assert_eq!(src_of(&a), src_of(&b));
    assert_eq!(n.counters().mappings_created, 1);
    // Another inside port gets another outside port on the same address.
    let mut c = udp_pkt((sub(10), 5001), (remote(1), 3478), b"c");
    n.translate_outbound(0, sub(10), 1, &mut c).unwrap();
    assert_eq!(src_of(&c).0, src_of(&a).0);
    assert_ne!(src_of(&c).1, src_of(&a).1);
    // TCP and UDP of the same port are separate mappings (and may share the outside port).
    let mut t = tcp_pkt((sub(10), 5000), (remote(1), 80), flags::SYN, b"");
    n.translate_outbound(0, sub(10), 1, &mut t).unwrap();
    assert_eq!(n.counters().mappings_created, 3);
    assert_checksums(&t);
}

#[test]
fn inside_port_offset_kept_when_the_block_allows() {
    let mut n = nat();
    // Blocks are 64 ports from 1024: the inside port's offset is tried first.
    let mut p = udp_pkt((sub(10), 40000), (remote(1), 53), b"");
    n.translate_outbound(0, sub(10), 1, &mut p).unwrap();
    let op = src_of(&p).1;
    assert_eq!(u32::from(op - 1024) % 64, (40000 - 1024) % 64);
}

#[test]
fn endpoint_independent_filtering() {
    let mut n = nat();
    let mut p = udp_pkt((sub(10), 5000), (remote(1), 3478), b"stun");
    n.translate_outbound(0, sub(10), 1, &mut p).unwrap();
    let (oa, op) = src_of(&p);
    // A remote the subscriber never sent to reaches the mapping (UDP and TCP).
    let mut r = udp_pkt((remote(77), 40001), (oa, op), b"peer");
    assert_eq!(n.translate_inbound(SEC, &mut r).unwrap().inside, sub(10));
    assert_eq!(dst_of(&r), (sub(10), 5000));
    assert_checksums(&r);

    let mut t = tcp_pkt((sub(10), 6000), (remote(1), 443), flags::SYN, b"");
    n.translate_outbound(0, sub(10), 1, &mut t).unwrap();
    let (ta, tp) = src_of(&t);
    let mut s = tcp_pkt((remote(99), 5555), (ta, tp), flags::SYN, b"");
    assert_eq!(n.translate_inbound(SEC, &mut s).unwrap().inside, sub(10));
    assert_eq!(dst_of(&s), (sub(10), 6000));
    assert_checksums(&s);
}

#[test]
fn inbound_without_mapping_is_dropped() {
    let mut n = nat();
    let mut r = udp_pkt((remote(1), 53), (ip(198, 51, 100, 1), 1500), b"");
    assert_eq!(n.translate_inbound(0, &mut r), Err(NatDrop::NoMapping));
    let mut s = tcp_pkt(
        (remote(1), 53),
        (ip(198, 51, 100, 1), 1500),
        flags::SYN,
        b"",
    );
    assert_eq!(n.translate_inbound(0, &mut s), Err(NatDrop::NoMapping));
    let mut e = echo_pkt(remote(1), ip(198, 51, 100, 1), true, 7, 1);
    assert_eq!(n.translate_inbound(0, &mut e), Err(NatDrop::NoMapping));
    assert_eq!(n.counters().drop_count(NatDrop::NoMapping), 3);
}

#[test]
fn tcp_translation_keeps_options_and_payload() {
    let mut n = nat();
    let mut p = tcp_pkt(
        (sub(10), 51234),
        (remote(5), 443),
        flags::ACK | flags::PSH,
        b"GET / HTTP/1.1\r\n\r\n!",
    );
    let orig = p.clone();
    n.translate_outbound(0, sub(10), 1, &mut p).unwrap();
    assert_checksums(&p);
    assert_eq!(&p[22..36], &orig[22..36]);
    assert_eq!(&p[40..], &orig[40..]);
}

#[test]
fn icmp_echo_identifier() {
    let mut n = nat();
    let mut p = echo_pkt(sub(10), remote(1), true, 0x0bad, 1);
    n.translate_outbound(0, sub(10), 1, &mut p).unwrap();
    assert_checksums(&p);
    let (oa, oid) = src_of(&p);
    assert_eq!(
        n.lookup_inbound(oa, NatProtocol::Icmp, oid)
            .unwrap()
            .inside_port,
        0x0bad
    );
    // Same identifier to another host: same mapping (EIM).
    let mut q = echo_pkt(sub(10), remote(2), true, 0x0bad, 2);
    n.translate_outbound(0, sub(10), 1, &mut q).unwrap();
    assert_eq!(src_of(&q), (oa, oid));
    let mut r = echo_pkt(remote(1), oa, false, oid, 1);
    assert_eq!(n.translate_inbound(SEC, &mut r).unwrap().inside, sub(10));
    assert_eq!(dst_of(&r), (sub(10), 0x0bad));
    assert_checksums(&r);
    // Echo replies from the inside and other ICMP types are not translated.
    let mut x = echo_pkt(sub(10), remote(1), false, 9, 1);
    assert_eq!(
        n.translate_outbound(0, sub(10), 1, &mut x),
        Err(NatDrop::UnsupportedProtocol)
    );
}

#[test]
fn hairpin_between_two_subscribers() {
    let mut n = nat();
    // A is reachable at its mapping (it talked to a STUN server).
    let mut a = udp_pkt((sub(10), 5000), (remote(1), 3478), b"a");
    n.translate_outbound_owned(0, sub(10), 1, 11, &mut a)
        .unwrap();
    let (a_out, a_port) = src_of(&a);
    // B sends to A's outside mapping.
    let mut b = udp_pkt((sub(20), 6000), (a_out, a_port), b"hello A");
    let v = n
        .translate_outbound_owned(SEC, sub(20), 2, 22, &mut b)
        .unwrap();
    assert_eq!(
        v,
        Outbound::Hairpin {
            inside: sub(10),
            session_tag: 1,
            owner: 11
        }
    );
    // Source is B's outside mapping, destination A's inside endpoint (RFC 4787 REQ-9).
    let b_map = n.lookup_outbound(sub(20), NatProtocol::Udp, 6000).unwrap();
    assert_eq!(src_of(&b), (b_map.outside, b_map.outside_port));
    assert_eq!(dst_of(&b), (sub(10), 5000));
    assert_checksums(&b);
    // A answers to what it saw: B's outside mapping.
    let mut r = udp_pkt((sub(10), 5000), src_of(&b), b"hi B");
    let v = n.translate_outbound(2 * SEC, sub(10), 1, &mut r).unwrap();
    // B's mapping remembers B's owner; A's packet, sent without one, forgot A's.
    assert_eq!(
        v,
        Outbound::Hairpin {
            inside: sub(20),
            session_tag: 2,
            owner: 22
        }
    );
    assert_eq!(src_of(&r), (a_out, a_port));
    assert_eq!(dst_of(&r), (sub(20), 6000));
    assert_checksums(&r);
    // TCP too.
    let mut s = tcp_pkt((sub(10), 7000), (remote(1), 80), flags::SYN, b"");
    n.translate_outbound(0, sub(10), 1, &mut s).unwrap();
    let mut t = tcp_pkt((sub(20), 7001), src_of(&s), flags::SYN, b"");
    assert!(matches!(
        n.translate_outbound(0, sub(20), 2, &mut t),
        Ok(Outbound::Hairpin { .. })
    ));
    assert_checksums(&t);
    assert_eq!(n.counters().hairpins, 3);
    // To an outside address without a mapping: dropped, not sent out.
    let mut u = udp_pkt((sub(20), 6000), (a_out, 2000), b"");
    assert_eq!(
        n.translate_outbound(0, sub(20), 2, &mut u),
        Err(NatDrop::NoMapping)
    );
}

/// A NAT holding half of the pool (one of two workers) sends a packet to the other half
/// on with its source translated, for the other worker to hairpin; to an address of its
/// own half it hairpins itself, and past the pool it forwards.
#[test]
fn hairpin_to_another_workers_share_of_the_pool() {
    let pool: Vec<u32> = (0..4).map(|i| ip(198, 51, 100, i).to_bits()).collect();
    let mut n = Nat::with_address_filter(&small_config(), 7, |a| a.to_bits() % 2 == 0).unwrap();
    let mut m = Nat::with_address_filter(&small_config(), 7, |a| a.to_bits() % 2 == 1).unwrap();
    // A behind `m` opens a mapping on an odd address.
    let mut a = udp_pkt((sub(10), 5000), (remote(1), 3478), b"a");
    assert_eq!(
        m.translate_outbound(0, sub(10), 1, &mut a),
        Ok(Outbound::Forward)
    );
    let (a_out, a_port) = src_of(&a);
    assert!(pool.contains(&a_out.to_bits()) && a_out.to_bits() % 2 == 1);
    // B behind `n` sends to it: translated, handed on, not hairpinned here.
    let mut b = udp_pkt((sub(20), 6000), (a_out, a_port), b"hello A");
    assert_eq!(
        n.translate_outbound(SEC, sub(20), 2, &mut b),
        Ok(Outbound::HairpinElsewhere)
    );
    let b_map = n.lookup_outbound(sub(20), NatProtocol::Udp, 6000).unwrap();
    assert_eq!(src_of(&b), (b_map.outside, b_map.outside_port));
    assert_eq!(b_map.outside.to_bits() % 2, 0);
    assert_eq!(dst_of(&b), (a_out, a_port));
    assert_checksums(&b);
    assert_eq!(
        (n.counters().hairpins, n.counters().hairpins_elsewhere),
        (0, 1)
    );
    // The worker holding A's address translates it as an answer from the outside.
    let to = m.translate_inbound(SEC, &mut b).unwrap();
    assert_eq!(to.inside, sub(10));
    assert_eq!(dst_of(&b), (sub(10), 5000));
    assert_eq!(src_of(&b), (b_map.outside, b_map.outside_port));
    assert_checksums(&b);
    // Past the pool (the next address up): forwarded as usual.
    let mut c = udp_pkt((sub(20), 6000), (ip(198, 51, 100, 4), 53), b"");
    assert_eq!(
        n.translate_outbound(SEC, sub(20), 2, &mut c),
        Ok(Outbound::Forward)
    );
    assert_eq!(n.counters().hairpins_elsewhere, 1);
}

#[test]
fn icmp_errors_inbound_translate_the_embedded_packet() {
    let mut n = nat();
    for proto in [17u8, 6, 1] {
        let mut p = match proto {
            17 => udp_pkt((sub(10), 40000), (remote(1), 53), &[7; 100]),
            6 => tcp_pkt((sub(10), 40001), (remote(1), 80), flags::SYN, &[8; 100]),
            _ => echo_pkt(sub(10), remote(1), true, 0x0bad, 1),
        };
        let orig = p.clone();
        n.translate_outbound(0, sub(10), 1, &mut p).unwrap();
        let (oa, _) = src_of(&p);
        // A router on the way: fragmentation needed, next-hop MTU 1400 (RFC 1191), quoting
        // the whole packet.
        let mut e = icmp_error(ip(192, 0, 2, 1), oa, 3, 4, 1400, &p);
        assert_checksums(&e);
        let to = n.translate_inbound(SEC, &mut e).unwrap();
        assert_eq!(to.inside, sub(10));
        assert_eq!(dst_of(&e).0, sub(10));
        // The embedded packet is the one the subscriber sent.
        assert_eq!(&e[28..], &orig[..], "proto {proto}");
        assert_checksums(&e);
        // Time exceeded quoting only the IP header and 8 bytes.
        let mut t = icmp_error(ip(192, 0, 2, 1), oa, 11, 0, 0, &p[..28]);
        n.translate_inbound(SEC, &mut t).unwrap();
        assert_eq!(&t[28..], &orig[..28]);
        assert_checksums(&t);
    }
    assert_eq!(n.counters().icmp_errors_translated, 6);
    // A corrupted ICMP checksum is dropped (RFC 5508 REQ-3).
    let mut p = udp_pkt((sub(10), 40000), (remote(1), 53), b"");
    n.translate_outbound(0, sub(10), 1, &mut p).unwrap();
    let mut bad = icmp_error(ip(192, 0, 2, 1), src_of(&p).0, 3, 3, 0, &p);
    bad[30] ^= 1;
    assert_eq!(n.translate_inbound(0, &mut bad), Err(NatDrop::Malformed));
    // About a mapping that does not exist.
    let mut q = udp_pkt((src_of(&p).0, 1999), (remote(1), 53), b"");
    let mut none = icmp_error(ip(192, 0, 2, 1), src_of(&p).0, 3, 3, 0, &q);
    assert_eq!(n.translate_inbound(0, &mut none), Err(NatDrop::NoMapping));
    // Embedded packet too short.
    q.truncate(24);
    let mut short = icmp_error(ip(192, 0, 2, 1), src_of(&p).0, 3, 3, 0, &q);
    assert_eq!(n.translate_inbound(0, &mut short), Err(NatDrop::Malformed));
}

#[test]
fn icmp_errors_outbound_translate_the_embedded_packet() {
    let mut n = nat();
    let mut p = udp_pkt((sub(10), 5000), (remote(1), 3478), b"");
    n.translate_outbound(0, sub(10), 1, &mut p).unwrap();
    let (oa, op) = src_of(&p);
    // A remote sends to the mapping; the inside host answers port unreachable.
    let mut r = udp_pkt((remote(2), 4444), (oa, op), b"data");
    n.translate_inbound(0, &mut r).unwrap();
    let mut e = icmp_error(sub(10), remote(2), 3, 3, 0, &r);
    assert_eq!(
        n.translate_outbound(SEC, sub(10), 1, &mut e),
        Ok(Outbound::Forward)
    );
    assert_eq!(src_of(&e).0, oa);
    assert_eq!(dst_of(&e[28..]), (oa, op));
    assert_checksums(&e);
    // Another session's error about this mapping is refused.
    let mut f = icmp_error(sub(10), remote(2), 3, 3, 0, &r);
    assert_eq!(
        n.translate_outbound(SEC, sub(10), 99, &mut f),
        Err(NatDrop::NoMapping)
    );
}

#[test]
fn malformed_and_unsupported() {
    let mut n = nat();
    let good = udp_pkt((sub(10), 40000), (remote(1), 53), b"abc");
    // Truncated below the total length, bad version, short UDP, source port 0.
    let mut t = good[..good.len() - 1].to_vec();
    assert_eq!(
        n.translate_outbound(0, sub(10), 1, &mut t),
        Err(NatDrop::Malformed)
    );
    let mut v = good.clone();
    v[0] = 0x65;
    assert_eq!(
        n.translate_outbound(0, sub(10), 1, &mut v),
        Err(NatDrop::Malformed)
    );
    let mut s = ip_packet(sub(10), remote(1), 17, &[0x9c, 0x40, 0, 53]);
    assert_eq!(
        n.translate_outbound(0, sub(10), 1, &mut s),
        Err(NatDrop::Malformed)
    );
    let mut z = udp_pkt((sub(10), 0), (remote(1), 53), b"abc");
    assert_eq!(
        n.translate_outbound(0, sub(10), 1, &mut z),
        Err(NatDrop::Malformed)
    );
    let mut th = ip_packet(sub(10), remote(1), 6, &[0; 19]);
    assert_eq!(
        n.translate_outbound(0, sub(10), 1, &mut th),
        Err(NatDrop::Malformed)
    );
    // GRE, and an ICMP timestamp request.
    let mut g = ip_packet(sub(10), remote(1), 47, &[0; 8]);
    assert_eq!(
        n.translate_outbound(0, sub(10), 1, &mut g),
        Err(NatDrop::UnsupportedProtocol)
    );
    let mut ts = ip_packet(sub(10), remote(1), 1, &[13, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        n.translate_outbound(0, sub(10), 1, &mut ts),
        Err(NatDrop::UnsupportedProtocol)
    );
    // A TCP RST opens no mapping.
    let mut rst = tcp_pkt((sub(10), 1234), (remote(1), 80), flags::RST, b"");
    assert_eq!(
        n.translate_outbound(0, sub(10), 1, &mut rst),
        Err(NatDrop::NoMapping)
    );
    let c = n.counters();
    assert_eq!(c.drop_count(NatDrop::Malformed), 5);
    assert_eq!(c.drop_count(NatDrop::UnsupportedProtocol), 2);
    assert_eq!(n.mappings_active(), 0);
    assert_eq!(n.blocks_in_use(), 0);
}

// ---- fragments ---------------------------------------------------------------------------

/// Splits the UDP datagram `pkt` into two fragments at payload byte 16.
fn fragments(pkt: &[u8]) -> (Vec<u8>, Vec<u8>) {
    crate::wire::frame::split_ipv4(pkt, 0, 16)
}

#[test]
fn fragments_both_directions() {
    let mut n = nat();
    let whole = udp_pkt((sub(10), 40000), (remote(1), 53), &[1; 40]);
    let (mut f1, mut f2) = fragments(&whole);
    // A non-first fragment before any mapping: the subscriber has no address yet.
    let mut early = f2.clone();
    assert_eq!(
        n.translate_outbound(0, sub(10), 1, &mut early),
        Err(NatDrop::Fragment)
    );
    n.translate_outbound(0, sub(10), 1, &mut f1).unwrap();
    n.translate_outbound(0, sub(10), 1, &mut f2).unwrap();
    assert_checksums(&f1);
    assert_checksums(&f2);
    let (oa, op) = src_of(&f1);
    assert_eq!(src_of(&f2).0, oa);
    // Reassembled, the datagram carries a valid UDP checksum from the outside address.
    let mut re = f1[..20].to_vec();
    re.extend_from_slice(&f1[20..]);
    re.extend_from_slice(&f2[20..]);
    let len = re.len() as u16;
    re[2..4].copy_from_slice(&len.to_be_bytes());
    re[6..8].copy_from_slice(&0u16.to_be_bytes());
    crate::wire::ipv4::fill_checksum(&mut re);
    assert_checksums(&re);

    // Inbound: the first fragment opens the way for the second.
    let reply = udp_pkt((remote(1), 53), (oa, op), &[2; 40]);
    let (mut g1, mut g2) = fragments(&reply);
    let mut lost = g2.clone();
    assert_eq!(n.translate_inbound(0, &mut lost), Err(NatDrop::Fragment));
    assert_eq!(n.translate_inbound(0, &mut g1).unwrap().inside, sub(10));
    assert_eq!(n.translate_inbound(0, &mut g2).unwrap().inside, sub(10));
    assert_eq!(dst_of(&g2).0, sub(10));
    assert_checksums(&g2);
    // After the fragment lifetime it is gone.
    let (_, mut g3) = fragments(&reply);
    assert_eq!(
        n.translate_inbound(10 * SEC, &mut g3),
        Err(NatDrop::Fragment)
    );
    assert_eq!(n.counters().fragments_translated, 2);
    assert_eq!(n.counters().drop_count(NatDrop::Fragment), 3);
}

/// A fragmented datagram from one subscriber to another's outside mapping: its first
/// fragment is hairpinned and opens the way for the rest, whether the mapping is in this
/// NAT's share of the pool or in another worker's (the fragments handed on, translated
/// there as if they came from the outside).
#[test]
fn fragments_are_hairpinned_like_their_first() {
    // Within one NAT.
    let mut n = nat();
    let mut a = udp_pkt((sub(10), 5000), (remote(1), 3478), b"a");
    n.translate_outbound(0, sub(10), 1, &mut a).unwrap();
    let (a_out, a_port) = src_of(&a);
    let whole = udp_pkt((sub(20), 6000), (a_out, a_port), &[3; 40]);
    let (mut f1, mut f2) = fragments(&whole);
    let mut early = f2.clone();
    assert_eq!(
        n.translate_outbound(SEC, sub(20), 2, &mut early),
        Err(NatDrop::Fragment),
        "no first fragment passed yet"
    );
    for f in [&mut f1, &mut f2] {
        assert!(matches!(
            n.translate_outbound(SEC, sub(20), 2, f),
            Ok(Outbound::Hairpin { inside, .. }) if inside == sub(10)
        ));
    }
    let b_out = n.lookup_outbound(sub(20), NatProtocol::Udp, 6000).unwrap();
    assert_eq!(src_of(&f1), (b_out.outside, b_out.outside_port));
    assert_eq!(dst_of(&f1), (sub(10), 5000));
    assert_eq!(
        (src_of(&f2).0, dst_of(&f2).0),
        (b_out.outside, sub(10)),
        "the second fragment follows the first"
    );
    assert_checksums(&f1);
    assert!(crate::wire::ipv4::verify_checksum(&f2));
    assert_eq!(n.counters().hairpins, 2);

    // Across two workers' shares of the pool: `m` holds A's address, `w` sends.
    let mut w = Nat::with_address_filter(&small_config(), 7, |a| a.to_bits() % 2 == 0).unwrap();
    let mut m = Nat::with_address_filter(&small_config(), 7, |a| a.to_bits() % 2 == 1).unwrap();
    let mut a = udp_pkt((sub(10), 5000), (remote(1), 3478), b"a");
    m.translate_outbound(0, sub(10), 1, &mut a).unwrap();
    let (a_out, a_port) = src_of(&a);
    let whole = udp_pkt((sub(20), 6000), (a_out, a_port), &[4; 40]);
    let (mut f1, mut f2) = fragments(&whole);
    for f in [&mut f1, &mut f2] {
        assert_eq!(
            w.translate_outbound(SEC, sub(20), 2, f),
            Ok(Outbound::HairpinElsewhere)
        );
    }
    assert_eq!(w.counters().hairpins_elsewhere, 2);
    let b_out = w.lookup_outbound(sub(20), NatProtocol::Udp, 6000).unwrap();
    assert_eq!(
        src_of(&f2).0,
        b_out.outside,
        "the source translated by the sender"
    );
    for f in [&mut f1, &mut f2] {
        assert_eq!(m.translate_inbound(SEC, f).unwrap().inside, sub(10));
    }
    assert_eq!(dst_of(&f1), (sub(10), 5000));
    assert_eq!(dst_of(&f2).0, sub(10));
}

// ---- timeouts ----------------------------------------------------------------------------

/// Runs `expire` over everything at `t` seconds.
fn sweep(n: &mut Nat, t: u64) -> usize {
    n.expire(t * SEC, 1 << 20)
}

#[test]
fn udp_and_icmp_timeouts() {
    let mut n = nat();
    let mut u = udp_pkt((sub(10), 5000), (remote(1), 53), b"");
    let mut i = echo_pkt(sub(10), remote(1), true, 1, 1);
    n.translate_outbound(0, sub(10), 1, &mut u).unwrap();
    n.translate_outbound(0, sub(10), 1, &mut i).unwrap();
    assert_eq!(sweep(&mut n, 60), 0);
    assert_eq!(sweep(&mut n, 61), 1, "ICMP after 60 s");
    assert!(n.lookup_outbound(sub(10), NatProtocol::Icmp, 1).is_none());
    // Inbound traffic refreshes.
    let (oa, op) = src_of(&u);
    let mut r = udp_pkt((remote(1), 53), (oa, op), b"");
    n.translate_inbound(200 * SEC, &mut r).unwrap();
    assert_eq!(sweep(&mut n, 500), 0);
    assert_eq!(sweep(&mut n, 501), 1, "UDP after 300 s");
    assert_eq!(n.mappings_active(), 0);
    assert_eq!(n.counters().mappings_expired, 2);
}

#[test]
fn tcp_timeouts_follow_the_connection_state() {
    let mut n = nat();
    let syn = |n: &mut Nat, port: u16, t: u64| {
        let mut p = tcp_pkt((sub(10), port), (remote(1), 80), flags::SYN, b"");
        n.translate_outbound(t * SEC, sub(10), 1, &mut p).unwrap();
        src_of(&p)
    };
    let inbound = |n: &mut Nat, to: (Ipv4Addr, u16), fl: u8, t: u64| {
        let mut p = tcp_pkt((remote(1), 80), to, fl, b"");
        n.translate_inbound(t * SEC, &mut p).unwrap();
    };
    let outbound = |n: &mut Nat, port: u16, fl: u8, t: u64| {
        let mut p = tcp_pkt((sub(10), port), (remote(1), 80), fl, b"");
        n.translate_outbound(t * SEC, sub(10), 1, &mut p).unwrap();
    };
    let established = |n: &Nat, port: u16| {
        n.lookup_outbound(sub(10), NatProtocol::Tcp, port)
            .map(|m| m.tcp_established)
    };

    // 1: SYN never answered: transitory, 240 s.
    syn(&mut n, 1001, 0);
    // 2: handshake completed: established, 7440 s.
    let e = syn(&mut n, 1002, 0);
    inbound(&mut n, e, flags::SYN | flags::ACK, 0);
    outbound(&mut n, 1002, flags::ACK, 0);
    // 3: established, then FIN each way: transitory again.
    let f = syn(&mut n, 1003, 0);
    inbound(&mut n, f, flags::SYN | flags::ACK, 0);
    outbound(&mut n, 1003, flags::FIN | flags::ACK, 0);
    assert_eq!(established(&n, 1003), Some(true), "half close");
    inbound(&mut n, f, flags::FIN | flags::ACK, 0);
    // 4: established, then RST from the outside.
    let r = syn(&mut n, 1004, 0);
    inbound(&mut n, r, flags::SYN | flags::ACK, 0);
    inbound(&mut n, r, flags::RST, 0);
    // 5: opened midstream (no SYN seen), answered: established.
    outbound(&mut n, 1005, flags::ACK, 0);
    let mid = n.lookup_outbound(sub(10), NatProtocol::Tcp, 1005).unwrap();
    assert!(!mid.tcp_established);
    inbound(&mut n, (mid.outside, mid.outside_port), flags::ACK, 0);

    assert_eq!(established(&n, 1001), Some(false));
    assert_eq!(established(&n, 1002), Some(true));
    assert_eq!(established(&n, 1003), Some(false));
    assert_eq!(established(&n, 1004), Some(false));
    assert_eq!(established(&n, 1005), Some(true));

    assert_eq!(sweep(&mut n, 240), 0);
    assert_eq!(sweep(&mut n, 241), 3);
    assert!(established(&n, 1002).is_some() && established(&n, 1005).is_some());
    assert_eq!(sweep(&mut n, 7440), 0);
    assert_eq!(sweep(&mut n, 7441), 2);
    assert_eq!(n.mappings_active(), 0);
}

#[test]
fn expire_does_bounded_work() {
    let mut n = nat();
    for port in 1..=100u16 {
        let mut p = udp_pkt((sub(10), port), (remote(1), 53), b"");
        n.translate_outbound(0, sub(10), 1, &mut p).unwrap();
    }
    assert_eq!(n.mappings_active(), 100);
    let mut removed = 0;
    let mut calls = 0;
    while n.mappings_active() > 0 {
        let r = n.expire(1000 * SEC, 16);
        assert!(r <= 16);
        removed += r;
        calls += 1;
    }
    assert_eq!((removed, calls), (100, 7));
}

// ---- blocks, pooling, logging ----------------------------------------------------------

#[test]
fn block_allocation_and_release_are_logged() {
    let mut n = nat();
    let mut p = udp_pkt((sub(10), 5000), (remote(1), 53), b"");
    n.translate_outbound(3 * SEC, sub(10), 42, &mut p).unwrap();
    let (oa, op) = src_of(&p);
    let ev = events(&mut n);
    assert_eq!(ev.len(), 1);
    let a = ev[0];
    assert_eq!(a.kind, NatLogKind::BlockAllocated);
    assert_eq!(a.reason, NatLogReason::NewFlow);
    assert_eq!(
        (a.time_ns, a.session_tag, a.inside, a.outside),
        (3 * SEC, 42, sub(10), oa)
    );
    assert_eq!(a.last_port - a.first_port, 63);
    assert!((a.first_port..=a.last_port).contains(&op));
    assert_eq!((a.first_port - 1024) % 64, 0);
    assert_eq!(n.blocks_in_use(), 1);
    // The mapping expires at 304 s; the block is kept 120 s more, then released.
    sweep(&mut n, 304);
    assert_eq!(n.mappings_active(), 0);
    assert_eq!(n.blocks_in_use(), 1);
    assert!(events(&mut n).is_empty());
    sweep(&mut n, 424);
    assert_eq!(n.blocks_in_use(), 1);
    sweep(&mut n, 425);
    assert_eq!(n.blocks_in_use(), 0);
    assert_eq!(n.subscribers_active(), 0);
    let ev = events(&mut n);
    assert_eq!(ev.len(), 1);
    let r = ev[0];
    assert_eq!(r.kind, NatLogKind::BlockReleased);
    assert_eq!(r.reason, NatLogReason::Idle);
    assert_eq!(
        (r.time_ns, r.session_tag, r.inside, r.outside),
        (425 * SEC, 42, sub(10), oa)
    );
    assert_eq!((r.first_port, r.last_port), (a.first_port, a.last_port));
    // A block in use is not released, however old.
    let mut q = udp_pkt((sub(10), 5000), (remote(1), 53), b"");
    n.translate_outbound(1000 * SEC, sub(10), 42, &mut q)
        .unwrap();
    for t in [1100, 1200, 1299] {
        let mut k = udp_pkt((sub(10), 5000), (remote(1), 53), b"");
        n.translate_outbound(t * SEC, sub(10), 42, &mut k).unwrap();
        sweep(&mut n, t);
    }
    assert_eq!(n.blocks_in_use(), 1);
    assert_eq!(n.counters().blocks_allocated, 2);
    assert_eq!(n.counters().blocks_released, 1);
}

#[test]
fn release_subscriber_frees_everything_at_once() {
    let mut n = nat();
    for port in 0..100u16 {
        let mut p = udp_pkt((sub(10), 2000 + port), (remote(1), 53), b"");
        n.translate_outbound(0, sub(10), 5, &mut p).unwrap();
    }
    let mut t = tcp_pkt((sub(10), 2000), (remote(1), 80), flags::SYN, b"");
    n.translate_outbound(0, sub(10), 5, &mut t).unwrap();
    assert_eq!(n.blocks_in_use(), 2);
    events(&mut n);
    assert!(n.release_subscriber(sub(10), 9 * SEC));
    assert!(!n.release_subscriber(sub(10), 9 * SEC));
    assert_eq!(n.mappings_active(), 0);
    assert_eq!(n.blocks_in_use(), 0);
    assert_eq!(n.subscribers_active(), 0);
    assert_eq!(n.counters().mappings_released, 101);
    let ev = events(&mut n);
    assert_eq!(ev.len(), 2);
    for e in ev {
        assert_eq!(e.kind, NatLogKind::BlockReleased);
        assert_eq!(e.reason, NatLogReason::SessionEnd);
        assert_eq!((e.time_ns, e.session_tag), (9 * SEC, 5));
    }
    // Inbound to the old mapping: gone.
    let mut r = udp_pkt((remote(1), 53), src_of(&t), b"");
    assert_eq!(n.translate_inbound(0, &mut r), Err(NatDrop::NoMapping));
}

#[test]
fn paired_pooling() {
    let mut n = nat();
    // Fill subscriber 10's first block (64 ports) and spill into its second.
    for port in 0..100u16 {
        let mut p = udp_pkt((sub(10), 3000 + port), (remote(1), 53), b"");
        n.translate_outbound(0, sub(10), 1, &mut p).unwrap();
    }
    let a10 = n.outside_address_of(sub(10)).unwrap();
    assert!(n.mappings().all(|m| m.outside == a10));
    let ev = events(&mut n);
    assert_eq!(ev.len(), 2);
    assert!(ev.iter().all(|e| e.outside == a10));
    // The next subscribers go to the addresses with the most free blocks: the other three.
    let mut seen = BTreeSet::new();
    seen.insert(a10);
    for s in 11..14 {
        let mut p = udp_pkt((sub(s), 3000), (remote(1), 53), b"");
        n.translate_outbound(0, sub(s), u64::from(s), &mut p)
            .unwrap();
        assert!(seen.insert(n.outside_address_of(sub(s)).unwrap()));
    }
    assert_eq!(seen.len(), 4);
}

#[test]
fn colliding_inside_ports_take_the_other_ports_of_the_block() {
    // One address, 2 blocks of 64 per subscriber: inside ports 10_000 + 64 i all want the
    // same offset, so after the first each is placed by probing the block upward.
    let cfg = NatConfig {
        pool: vec!["198.51.100.9/32".parse().unwrap()],
        ..small_config()
    };
    let mut n = Nat::new(&cfg, 1).unwrap();
    let mut outside = BTreeSet::new();
    let mut first_udp = 0;
    for i in 0..128u16 {
        let mut p = udp_pkt((sub(1), 10_000 + 64 * i), (remote(1), 53), b"");
        n.translate_outbound(0, sub(1), 1, &mut p).unwrap();
        if i == 0 {
            first_udp = src_of(&p).1;
        }
        assert!(outside.insert(src_of(&p).1), "outside port reused");
    }
    // Both blocks are full for UDP and the subscriber has no third: TCP still has room.
    let mut p = udp_pkt((sub(1), 9_999), (remote(1), 53), b"");
    assert_eq!(
        n.translate_outbound(0, sub(1), 1, &mut p),
        Err(NatDrop::PortExhausted)
    );
    let mut t = tcp_pkt((sub(1), 10_000), (remote(1), 80), flags::SYN, b"");
    n.translate_outbound(0, sub(1), 1, &mut t).unwrap();
    assert_eq!(
        src_of(&t).1,
        first_udp,
        "TCP keeps the offset UDP's first flow got"
    );
    // Expiry frees UDP ports: a new flow gets one of them.
    n.expire(400 * SEC, 1024);
    assert_eq!(n.mappings_active(), 0);
    let mut p = udp_pkt((sub(1), 9_999), (remote(1), 53), b"");
    n.translate_outbound(401 * SEC, sub(1), 1, &mut p).unwrap();
    assert!(outside.contains(&src_of(&p).1));
    // Releasing the subscriber removes its mappings through its list and frees its blocks.
    assert!(n.release_subscriber(sub(1), 402 * SEC));
    assert_eq!((n.mappings_active(), n.blocks_in_use()), (0, 0));
}

#[test]
fn address_and_port_exhaustion() {
    // One address with 4 blocks of 64 ports, 2 blocks per subscriber.
    let cfg = NatConfig {
        pool: vec!["198.51.100.9/32".parse().unwrap()],
        port_last: 1279,
        ..small_config()
    };
    let mut n = Nat::new(&cfg, 1).unwrap();
    let flow = |n: &mut Nat, s: u8, port: u16| {
        let mut p = udp_pkt((sub(s), port), (remote(1), 53), b"");
        n.translate_outbound(0, sub(s), u64::from(s), &mut p)
    };
    // Subscriber 1 uses its two blocks fully: then port exhaustion, for UDP only.
    for port in 0..128 {
        flow(&mut n, 1, 10_000 + port).unwrap();
    }
    assert_eq!(flow(&mut n, 1, 20_000), Err(NatDrop::PortExhausted));
    let mut t = tcp_pkt((sub(1), 20_000), (remote(1), 80), flags::SYN, b"");
    assert!(n.translate_outbound(0, sub(1), 1, &mut t).is_ok());
    // Subscriber 2 takes one block, subscriber 3 the last one.
    for port in 0..64 {
        flow(&mut n, 2, 10_000 + port).unwrap();
    }
    flow(&mut n, 3, 10_000).unwrap();
    // Subscriber 2 needs a second block: the address has none. Subscriber 4 needs a first.
    assert_eq!(flow(&mut n, 2, 20_000), Err(NatDrop::AddressExhausted));
    assert_eq!(flow(&mut n, 4, 20_000), Err(NatDrop::AddressExhausted));
    let c = n.counters();
    assert_eq!(c.drop_count(NatDrop::PortExhausted), 1);
    assert_eq!(c.drop_count(NatDrop::AddressExhausted), 2);
    assert_eq!(n.blocks_in_use(), 4);
}

#[test]
fn paired_address_exhausted_never_moves_to_another_address() {
    // Two addresses, 2 blocks each, 2 blocks per subscriber.
    let cfg = NatConfig {
        pool: vec!["198.51.100.0/31".parse().unwrap()],
        port_last: 1151,
        ..small_config()
    };
    let mut n = Nat::new(&cfg, 1).unwrap();
    let flow = |n: &mut Nat, s: u8, port: u16| {
        let mut p = udp_pkt((sub(s), port), (remote(1), 53), b"");
        n.translate_outbound(0, sub(s), u64::from(s), &mut p)
    };
    flow(&mut n, 1, 1).unwrap(); // address X
    flow(&mut n, 2, 1).unwrap(); // address Y
    flow(&mut n, 3, 1).unwrap(); // X or Y, second block there
    let a3 = n.outside_address_of(sub(3)).unwrap();
    let other = if n.outside_address_of(sub(1)) == Some(a3) {
        2
    } else {
        1
    };
    // The other address still has a free block, but subscriber 3's is full.
    for port in 2..=64 {
        flow(&mut n, 3, port).unwrap();
    }
    assert_eq!(flow(&mut n, 3, 100), Err(NatDrop::AddressExhausted));
    assert!(n.mappings().all(|m| m.session_tag != 3 || m.outside == a3));
    // The free block goes to the subscriber on the other address.
    for port in 2..=65 {
        flow(&mut n, other, port).unwrap();
    }
    assert_eq!(n.blocks_in_use(), 4);
}

#[test]
fn full_log_queue_refuses_blocks_and_defers_releases() {
    let cfg = NatConfig {
        log_queue_len: 2,
        ..small_config()
    };
    let mut n = Nat::new(&cfg, 1).unwrap();
    let flow = |n: &mut Nat, s: u8, t: u64| {
        let mut p = udp_pkt((sub(s), 5000), (remote(1), 53), b"");
        n.translate_outbound(t * SEC, sub(s), u64::from(s), &mut p)
    };
    flow(&mut n, 1, 0).unwrap();
    flow(&mut n, 2, 0).unwrap();
    assert_eq!(flow(&mut n, 3, 0), Err(NatDrop::LogQueueFull));
    assert_eq!(n.counters().drop_count(NatDrop::LogQueueFull), 1);
    assert_eq!(n.subscribers_active(), 2);
    // Session 1 ends while the queue is full: its mappings go, its block stays reserved.
    assert!(n.release_subscriber(sub(1), SEC));
    assert_eq!(n.mappings_active(), 1);
    assert_eq!(n.blocks_in_use(), 2);
    assert_eq!(n.subscribers_releasing(), 1);
    assert_eq!(n.counters().release_deferred, 1);
    // Once the host drains, expire logs the release.
    let first = events(&mut n);
    assert_eq!(first.len(), 2);
    n.expire(2 * SEC, 100);
    assert_eq!(n.blocks_in_use(), 1);
    assert_eq!(n.subscribers_releasing(), 0);
    let ev = events(&mut n);
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].kind, ev[0].reason, ev[0].session_tag, ev[0].time_ns),
        (
            NatLogKind::BlockReleased,
            NatLogReason::SessionEnd,
            1,
            2 * SEC
        )
    );
    flow(&mut n, 3, 3).unwrap();
}

#[test]
fn a_new_session_on_the_same_address_starts_over() {
    let mut n = nat();
    let mut p = udp_pkt((sub(10), 5000), (remote(1), 53), b"");
    n.translate_outbound(0, sub(10), 1, &mut p).unwrap();
    events(&mut n);
    // The session ended without release_subscriber; a new one got the same address.
    let mut q = udp_pkt((sub(10), 5000), (remote(1), 53), b"");
    n.translate_outbound(SEC, sub(10), 2, &mut q).unwrap();
    let ev = events(&mut n);
    assert_eq!(ev.len(), 2);
    assert_eq!(
        (ev[0].kind, ev[0].reason, ev[0].session_tag),
        (NatLogKind::BlockReleased, NatLogReason::SessionChange, 1)
    );
    assert_eq!(
        (ev[1].kind, ev[1].session_tag),
        (NatLogKind::BlockAllocated, 2)
    );
    assert_eq!(n.counters().session_changes, 1);
    assert_eq!(
        n.lookup_outbound(sub(10), NatProtocol::Udp, 5000)
            .unwrap()
            .session_tag,
        2
    );
}

#[test]
fn table_limits() {
    let cfg = NatConfig {
        max_mappings: 3,
        max_subscribers: 2,
        ..small_config()
    };
    let mut n = Nat::new(&cfg, 1).unwrap();
    let flow = |n: &mut Nat, s: u8, port: u16| {
        let mut p = udp_pkt((sub(s), port), (remote(1), 53), b"");
        n.translate_outbound(0, sub(s), u64::from(s), &mut p)
    };
    flow(&mut n, 1, 1).unwrap();
    flow(&mut n, 2, 1).unwrap();
    assert_eq!(flow(&mut n, 3, 1), Err(NatDrop::SubscriberTableFull));
    flow(&mut n, 1, 2).unwrap();
    assert_eq!(flow(&mut n, 1, 3), Err(NatDrop::TableFull));
    // Existing mappings still translate.
    flow(&mut n, 1, 2).unwrap();
    assert_eq!(n.counters().drop_count(NatDrop::TableFull), 1);
    assert_eq!(n.counters().drop_count(NatDrop::SubscriberTableFull), 1);
}

#[test]
fn workers_split_the_pool() {
    let cfg = NatConfig::with_pool(vec!["198.51.100.0/28".parse().unwrap()]);
    let a = Nat::with_address_filter(&cfg, 1, |ip| ip.octets()[3] % 2 == 0).unwrap();
    let b = Nat::with_address_filter(&cfg, 1, |ip| ip.octets()[3] % 2 == 1).unwrap();
    assert_eq!(a.addresses() + b.addresses(), 16);
    for i in 0..16 {
        let x = ip(198, 51, 100, i);
        assert!(a.is_outside_address(x) != b.is_outside_address(x));
    }
    assert_eq!(
        Nat::with_address_filter(&cfg, 1, |_| false).unwrap_err(),
        NatConfigError::NoAddressForWorker
    );
}

#[test]
fn memory_per_entry() {
    let cfg = NatConfig::with_pool(vec!["198.51.100.0/24".parse().unwrap()]);
    let n = Nat::new(&cfg, 1).unwrap();
    let m = n.memory();
    let per_mapping = (m.mappings + m.mapping_indexes) as f64 / f64::from(cfg.max_mappings);
    let per_sub = (m.subscribers + m.port_blocks) as f64 / f64::from(cfg.max_subscribers);
    assert!((64.0..=68.0).contains(&per_mapping), "{per_mapping}");
    assert!((100.0..=116.0).contains(&per_sub), "{per_sub}");
    assert!(m.pool < 256 * 64);
    assert_eq!(m.log, 4096 * core::mem::size_of::<NatLogEvent>());
    assert_eq!(core::mem::size_of::<NatLogEvent>(), 32);
    assert!(m.total() < 40 << 20);
}

#[test]
fn churn_never_reallocates() {
    let cfg = NatConfig {
        max_mappings: 200,
        max_subscribers: 6,
        ..small_config()
    };
    let mut n = Nat::new(&cfg, 3).unwrap();
    let before = n.memory();
    let mut t = 0;
    for round in 0..200u16 {
        for s in 0..6u8 {
            for k in 0..40u16 {
                let port = round.wrapping_mul(97).wrapping_add(k * 13) | 1;
                let mut p = udp_pkt((sub(s), port), (remote(1), 53), b"");
                let _ = n.translate_outbound(t * SEC, sub(s), u64::from(round / 7), &mut p);
            }
        }
        if round % 3 == 0 {
            n.release_subscriber(sub((round % 6) as u8), t * SEC);
        }
        t += 200;
        n.expire(t * SEC, 64);
        n.drain_events(|_| {});
    }
    assert!(n.counters().mappings_created > 10_000);
    assert_eq!(n.memory(), before);
}

#[test]
fn json_of_a_real_event() {
    let mut n = nat();
    let mut p = udp_pkt((sub(10), 5000), (remote(1), 53), b"");
    n.translate_outbound(1_500_000_000, sub(10), 77, &mut p)
        .unwrap();
    let mut line = alloc::string::String::new();
    n.drain_events(|e| e.write_json(1_700_000_000_000_000_000, &mut line).unwrap());
    assert!(line.starts_with("{\"time\":\"2023-11-14T22:13:21.500Z\",\"unix_ms\":1700000001500,\"event\":\"block_allocated\""));
    assert!(line.contains("\"session\":77,\"inside\":\"100.64.0.10\",\"outside\":\"198.51.100."));
}

#[test]
fn lookup_keys_find_the_mappings_translation_uses() {
    use super::table::pack_key;
    use super::translate::lookup_key;
    let mut n = nat();
    let packets = [
        udp_pkt((sub(1), 5000), (remote(1), 53), b"q"),
        tcp_pkt((sub(1), 6000), (remote(1), 80), flags::SYN, b""),
        echo_pkt(sub(1), remote(1), true, 77, 1),
    ];
    for before in packets {
        let key = lookup_key(&before, false).unwrap();
        let mut p = before.clone();
        n.translate_outbound(0, sub(1), 1, &mut p).unwrap();
        let slot = n
            .maps
            .find_inside(key)
            .expect("outbound key names the mapping");
        let m = *n.maps.get(slot);
        let proto = m.protocol().unwrap();
        // The answer: addresses and ports (or the echo reply) swapped.
        let answer = match proto {
            NatProtocol::Udp => udp_pkt((remote(1), 53), src_of(&p), b"a"),
            NatProtocol::Tcp => tcp_pkt((remote(1), 80), src_of(&p), flags::SYN | flags::ACK, b""),
            NatProtocol::Icmp => echo_pkt(remote(1), src_of(&p).0, false, src_of(&p).1, 1),
        };
        assert_eq!(
            lookup_key(&answer, true),
            Some(pack_key(m.outside, proto, m.outside_port))
        );
        assert_eq!(
            n.maps.find_outside(lookup_key(&answer, true).unwrap()),
            Some(slot)
        );
        // The prefetches read the same keys and change nothing.
        let h = n.prefetch_lookup(&before, false).unwrap();
        assert_eq!(h, n.maps.hash(key));
        n.prefetch_mapping(h, false);
        let h = n.prefetch_lookup(&answer, true).unwrap();
        assert_eq!(h, n.maps.hash(lookup_key(&answer, true).unwrap()));
        n.prefetch_mapping(h, true);
    }
    // No key: an echo reply outbound, an ICMP error, a non-first fragment, other
    // protocols, truncated or non-IPv4 bytes. Prefetching them is harmless.
    let udp = udp_pkt((sub(1), 5000), (remote(1), 53), b"q");
    let mut later_fragment = udp.clone();
    later_fragment[6] = 0x00;
    later_fragment[7] = 0x10;
    let mut gre = udp.clone();
    gre[9] = 47;
    let error = icmp_error(remote(1), sub(1), 3, 3, 0, &udp);
    for (p, inbound) in [
        (echo_pkt(sub(1), remote(1), false, 77, 1), false),
        (error.clone(), true),
        (error, false),
        (later_fragment, false),
        (gre, false),
        (udp[..24].to_vec(), false),
        (vec![0x60; 40], false),
        (vec![0x41; 40], true),
        (Vec::new(), true),
    ] {
        assert_eq!(lookup_key(&p, inbound), None, "{p:02x?}");
        assert_eq!(n.prefetch_lookup(&p, inbound), None);
    }
}
