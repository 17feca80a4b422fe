//! ICMP errors the pipeline originates: time exceeded both ways, fragmentation needed
//! downstream, the rate limit, and the packets that must not be answered.

use super::pppoe::{SID, pppoe_frame, pppoe_pipeline, pppoe_sub, udp_packet};
use super::*;
use crate::wire::pppoe::{PppProtocol, SESSION_HEADER_LEN};

/// The ICMP message in the IPv4 packet `ip` sent by the pipeline: checks the IP header
/// (from the core address to `to`, protocol 1, TTL 64, TOS 0xc0, valid checksum) and the
/// ICMP checksum; returns (type, code, bytes 4..8 of the ICMP header, the quote).
fn icmp_from_us(ip: &[u8], to: Ipv4Addr) -> (u8, u8, [u8; 4], Vec<u8>) {
    let h = ipv4::Header::parse(ip).expect("an IPv4 packet");
    assert!(ipv4::verify_checksum(ip), "IPv4 header checksum");
    assert_eq!(h.src(), CORE_IP);
    assert_eq!(h.dst(), to);
    assert_eq!(ip[9], 1, "protocol ICMP");
    assert_eq!(ip[8], 64, "TTL");
    assert_eq!(ip[1], 0xc0, "TOS: internetwork control");
    let total = usize::from(h.total_len());
    assert!(total <= 576, "RFC 1812: at most 576 bytes, got {total}");
    let icmp = &ip[20..total];
    assert_eq!(checksum::checksum(icmp), 0, "ICMP checksum");
    (
        icmp[0],
        icmp[1],
        [icmp[4], icmp[5], icmp[6], icmp[7]],
        icmp[8..].to_vec(),
    )
}

#[test]
fn upstream_ttl_1_gets_time_exceeded_back_through_the_subscribers_tags() {
    let mut p = resolved();
    let s = sessions()[2]; // QinQ 100/201 on ACCESS1
    let f = build_ipv4_udp(
        &l2_of(&s, GW_MAC),
        s.ipv4,
        INTERNET,
        40000,
        33434,
        1,
        b"probe",
    );
    let (v, out) = run1(&mut p, 0, ACCESS1, &f);
    assert_eq!(v, Verdict::Forward(ACCESS1));
    let (l2, l3) = L2Header::parse(&out).unwrap();
    assert_eq!(l2.dst, s.access.mac);
    assert_eq!(l2.src, GW_MAC);
    assert_eq!((l2.svlan, l2.cvlan), (Some(100), Some(201)));
    assert_eq!(l2.ethertype, EtherType::Ipv4);
    let (t, code, _, quote) = icmp_from_us(&out[l3..], s.ipv4);
    assert_eq!((t, code), (11, 0));
    // The quote is the packet as it arrived: TTL 1, the whole datagram (it is short).
    let original = &f[l3..];
    let total = usize::from(u16::from_be_bytes([original[2], original[3]]));
    assert_eq!(quote, &original[..total]);
    assert_eq!(p.counters().drop_count(DropReason::TtlExceeded), 1);
    assert_eq!(p.counters().icmp_errors_sent, 1);
    assert_eq!(p.counters().ul_forwarded, 0);
}

#[test]
fn downstream_ttl_1_gets_time_exceeded_toward_the_next_hop() {
    let mut p = resolved();
    let s = sessions()[0];
    let mut f = downstream_udp(s.ipv4, &[7u8; 600]);
    f[14 + 8] = 1;
    ipv4::fill_checksum(&mut f[14..34]);
    let (v, out) = run1(&mut p, 0, CORE, &f);
    assert_eq!(v, Verdict::Forward(CORE));
    assert_eq!(&out[..6], &NH_MAC.0);
    assert_eq!(&out[6..12], &CORE_MAC.0);
    assert_eq!(&out[12..14], &[0x08, 0x00]);
    let (t, code, _, quote) = icmp_from_us(&out[14..], INTERNET);
    assert_eq!((t, code), (11, 0));
    // A long original is quoted up to 576 bytes in all.
    assert_eq!(out.len(), 14 + 576);
    assert_eq!(quote, &f[14..14 + 576 - 28]);
    assert_eq!(p.counters().dl_forwarded, 0);
}

#[test]
fn too_big_with_df_gets_fragmentation_needed_with_the_session_mtu() {
    let mut p = pppoe_pipeline();
    let s = pppoe_sub();
    let f = downstream_udp(s.ipv4, &[0u8; 1493 - 28]);
    assert_eq!(
        f[14 + 6] & 0x40,
        0x40,
        "DF, as hosts send with path MTU discovery"
    );
    let (v, out) = run1(&mut p, 0, CORE, &f);
    assert_eq!(v, Verdict::Forward(CORE));
    let (t, code, rest, _) = icmp_from_us(&out[14..], INTERNET);
    assert_eq!((t, code), (3, 4));
    assert_eq!(
        u16::from_be_bytes([rest[2], rest[3]]),
        1492,
        "RFC 1191 next-hop MTU"
    );
    assert_eq!(p.counters().drop_count(DropReason::MtuExceeded), 1);
    // Without DF it is only dropped (the user plane does not fragment).
    let mut f = downstream_udp(s.ipv4, &[0u8; 1493 - 28]);
    f[14 + 6] &= !0x40;
    ipv4::fill_checksum(&mut f[14..34]);
    assert_eq!(
        run1(&mut p, 0, CORE, &f).0,
        Verdict::Drop(DropReason::MtuExceeded)
    );
    assert_eq!(p.counters().icmp_errors_sent, 1);
}

#[test]
fn pppoe_ttl_1_gets_time_exceeded_inside_the_session() {
    let mut p = pppoe_pipeline();
    let s = pppoe_sub();
    let mut ip = udp_packet(s.ipv4, INTERNET, b"probe");
    ip[8] = 1;
    ipv4::fill_checksum(&mut ip[..20]);
    let f = pppoe_frame(&s, SID, PppProtocol::Ipv4, &ip);
    let (v, out) = run1(&mut p, 0, ACCESS1, &f);
    assert_eq!(v, Verdict::Forward(ACCESS1));
    let (l2, l3) = L2Header::parse(&out).unwrap();
    assert_eq!(l2.ethertype, EtherType::PppoeSession);
    assert_eq!((l2.svlan, l2.cvlan), (Some(100), Some(300)));
    let pppoe = &out[l3..l3 + SESSION_HEADER_LEN];
    assert_eq!(u16::from_be_bytes([pppoe[2], pppoe[3]]), SID);
    let ip_out = &out[l3 + SESSION_HEADER_LEN..];
    assert_eq!(
        usize::from(u16::from_be_bytes([pppoe[4], pppoe[5]])),
        ip_out.len() + 2,
        "PPPoE LENGTH covers the PPP protocol and the packet"
    );
    assert_eq!(&pppoe[6..8], &[0x00, 0x21]);
    let (t, _, _, quote) = icmp_from_us(ip_out, s.ipv4);
    assert_eq!(t, 11);
    assert_eq!(quote, ip);
}

#[test]
fn errors_are_rate_limited() {
    let mut p = resolved();
    p.set_icmp_error_rate(0, 2);
    let s = sessions()[0];
    let f = build_ipv4_udp(&l2_of(&s, GW_MAC), s.ipv4, INTERNET, 1, 2, 1, b"x");
    let verdicts: Vec<Verdict> = (0..4).map(|_| run1(&mut p, SEC, ACCESS0, &f).0).collect();
    assert_eq!(
        verdicts,
        [
            Verdict::Forward(ACCESS0),
            Verdict::Forward(ACCESS0),
            Verdict::Drop(DropReason::TtlExceeded),
            Verdict::Drop(DropReason::TtlExceeded),
        ]
    );
    assert_eq!(p.counters().icmp_errors_sent, 2);
    assert_eq!(p.counters().icmp_errors_rate_limited, 2);
    assert_eq!(p.counters().drop_count(DropReason::TtlExceeded), 4);
}

#[test]
fn no_error_about_an_error_nor_toward_an_unresolved_next_hop() {
    let mut p = resolved();
    let s = sessions()[0];
    // An ICMP destination unreachable arriving with TTL 1.
    let mut f = downstream_udp(s.ipv4, &[0u8; 36]);
    f[14 + 9] = 1;
    f[14 + 8] = 1;
    f[34] = 3;
    ipv4::fill_checksum(&mut f[14..34]);
    assert_eq!(
        run1(&mut p, 0, CORE, &f).0,
        Verdict::Drop(DropReason::TtlExceeded)
    );
    let mut p = pipeline();
    let mut f = downstream_udp(s.ipv4, b"x");
    f[14 + 8] = 1;
    ipv4::fill_checksum(&mut f[14..34]);
    assert_eq!(
        run1(&mut p, 0, CORE, &f).0,
        Verdict::Drop(DropReason::TtlExceeded)
    );
    assert_eq!(p.counters().icmp_errors_sent, 0);
}
