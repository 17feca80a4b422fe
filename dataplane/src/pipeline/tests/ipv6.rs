//! IPv6 forwarding: PPPoE and IPoE sessions both ways, anti-spoofing on the session's
//! prefixes, longest prefix across sessions, hop limit and MTU errors, MSS clamping and
//! neighbour discovery on the core link.

use core::net::Ipv6Addr;

use super::pppoe::{SID, pppoe_frame, pppoe_sub};
use super::*;
use crate::pipeline::StaticRoute6;
use crate::wire::icmpv6;
use crate::wire::pppoe::{PppProtocol, SESSION_HEADER_LEN};

const CORE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 2);
const NH6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1);
const NH6_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0x66, 0x66, 0x01]);
const INTERNET6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xeeee, 0, 0, 0, 0, 5);
/// The PPPoE session's /64 and delegated /56.
const PPP_PREFIX: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 1, 0, 0, 0, 0);
const PPP_PD: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x8000, 0x100, 0, 0, 0, 0);
const PPP_HOST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 1, 0x5054, 0xff, 0xfe12, 0x341e);
/// The IPoE session's /64.
const IPOE_PREFIX: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x200, 7, 0, 0, 0, 0);

fn ppp6() -> SessionEntry {
    let mut e = pppoe_sub();
    e.ipv6 = SessionIpv6::new(Some((PPP_PREFIX, 64)), Some((PPP_PD, 56))).unwrap();
    e
}

fn ipoe6() -> SessionEntry {
    let mut e = sessions()[1];
    e.ipv6 = SessionIpv6::new(Some((IPOE_PREFIX, 64)), None).unwrap();
    e
}

/// An IPv6 UDP packet (checksum filled) with hop limit `hop`.
fn udp6(src: Ipv6Addr, dst: Ipv6Addr, hop: u8, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut p = vec![0u8; 40 + len];
    p[0] = 0x60 | 0x0b; // traffic class 0xb8 (EF): DSCP 46
    p[1] = 0x80;
    p[4..6].copy_from_slice(&(len as u16).to_be_bytes());
    p[6] = 17;
    p[7] = hop;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    p[40..42].copy_from_slice(&40000u16.to_be_bytes());
    p[42..44].copy_from_slice(&53u16.to_be_bytes());
    p[44..46].copy_from_slice(&(len as u16).to_be_bytes());
    p[48..].copy_from_slice(payload);
    let ph = crate::wire::ipv6::pseudo_header(&src, &dst, 17, len as u32);
    let c = !checksum::fold(checksum::combine(ph, checksum::sum(&p[40..])));
    p[46..48].copy_from_slice(&c.to_be_bytes());
    p
}

/// A TCP SYN over IPv6 announcing MSS `mss`.
fn syn6(src: Ipv6Addr, dst: Ipv6Addr, mss: u16) -> Vec<u8> {
    let mut p = vec![0u8; 40 + 24];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&24u16.to_be_bytes());
    p[6] = 6;
    p[7] = 64;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    let t = &mut p[40..];
    t[0..2].copy_from_slice(&40000u16.to_be_bytes());
    t[2..4].copy_from_slice(&443u16.to_be_bytes());
    t[12] = 6 << 4;
    t[13] = 0x02;
    t[20..24].copy_from_slice(&[2, 4, (mss >> 8) as u8, mss as u8]);
    let ph = crate::wire::ipv6::pseudo_header(&src, &dst, 6, 24);
    let c = !checksum::fold(checksum::combine(ph, checksum::sum(&p[40..])));
    p[56..58].copy_from_slice(&c.to_be_bytes());
    p
}

fn tcp6_checksum_ok(ip: &[u8]) -> bool {
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap());
    let ph = crate::wire::ipv6::pseudo_header(&src, &dst, ip[6], (ip.len() - 40) as u32);
    checksum::fold(checksum::combine(ph, checksum::sum(&ip[40..]))) == 0xffff
}

/// An Ethernet frame on the core port carrying IPv6 `ip` from the next hop to `dst`.
fn core_frame(dst: EthernetAddress, ip: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + ip.len());
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&NH6_MAC.0);
    f.extend_from_slice(&0x86ddu16.to_be_bytes());
    f.extend_from_slice(ip);
    f
}

/// An IPoE frame from session `e` carrying IPv6 `ip` (padded to 60 octets).
fn ipoe_frame(e: &SessionEntry, ip: &[u8]) -> Vec<u8> {
    let l2 = L2Header {
        ethertype: EtherType::Ipv6,
        ..l2_of(e, GW_MAC)
    };
    let mut f = vec![0u8; l2.buffer_len()];
    l2.emit(&mut f);
    f.extend_from_slice(ip);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// A neighbour discovery message (`kind` 135 or 136) from `src` to `dst` with hop limit
/// 255, `target` and one link-layer option of type `opt` holding `mac`.
fn nd(kind: u8, src: Ipv6Addr, dst: Ipv6Addr, flags: u8, target: Ipv6Addr, opt: u8) -> Vec<u8> {
    let mut p = vec![0u8; 40 + 32];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&32u16.to_be_bytes());
    p[6] = 58;
    p[7] = 255;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    let m = &mut p[40..];
    m[0] = kind;
    m[4] = flags;
    m[8..24].copy_from_slice(&target.octets());
    m[24] = opt;
    m[25] = 1;
    m[26..32].copy_from_slice(&NH6_MAC.0);
    let c = icmpv6::compute_checksum(&src, &dst, &p[40..]);
    p[42..44].copy_from_slice(&c.to_be_bytes());
    p
}

/// The PPPoE pipeline with IPv6 on, both sessions IPv6, and the next hop learned from its
/// advertisement.
fn v6_pipeline() -> Pipeline {
    let mut p = resolved();
    p.apply(SessionCommand::Upsert(ppp6()));
    p.apply(SessionCommand::Upsert(ipoe6()));
    p.set_ipv6(CORE6, NH6);
    let na = nd(136, NH6, CORE6, 0xe0, NH6, 2);
    let (v, _) = run1(&mut p, 0, CORE, &core_frame(CORE_MAC, &na));
    assert_eq!(v, Verdict::Drop(DropReason::Consumed));
    assert_eq!(p.ipv6_next_hop_mac(), Some(NH6_MAC));
    assert_eq!(p.counters().nd_learned, 1);
    p
}

#[test]
fn pppoe_upstream_ipv6_leaves_untagged_with_hop_limit_decremented() {
    let mut p = v6_pipeline();
    let ip = udp6(PPP_HOST, INTERNET6, 64, b"hello");
    let f = pppoe_frame(&ppp6(), SID, PppProtocol::Ipv6, &ip);
    let (v, out) = run1(&mut p, 0, ACCESS1, &f);
    assert_eq!(v, Verdict::Forward(CORE));
    assert_eq!(&out[0..6], &NH6_MAC.0);
    assert_eq!(&out[6..12], &CORE_MAC.0);
    assert_eq!(&out[12..14], &[0x86, 0xdd]);
    assert_eq!(out.len(), 14 + ip.len(), "padding dropped");
    assert_eq!(out[14 + 7], 63);
    let mut expected = ip.clone();
    expected[7] = 63;
    assert_eq!(&out[14..], &expected[..], "only the hop limit changes");
    let c = p.session_counters(ppp6().id).unwrap();
    assert_eq!((c.ul_packets, c.ul_bytes), (1, ip.len() as u64));
    // A host of the delegated prefix may send too.
    let from_pd = udp6(
        Ipv6Addr::new(0x2001, 0xdb8, 0x8000, 0x1ff, 0, 0, 0, 9),
        INTERNET6,
        9,
        b"x",
    );
    let f = pppoe_frame(&ppp6(), SID, PppProtocol::Ipv6, &from_pd);
    assert_eq!(run1(&mut p, 0, ACCESS1, &f).0, Verdict::Forward(CORE));
}

#[test]
fn upstream_ipv6_from_outside_the_session_prefixes_is_spoofed() {
    let mut p = v6_pipeline();
    for src in [
        Ipv6Addr::new(0x2001, 0xdb8, 0x100, 2, 0, 0, 0, 1), // the next /64
        Ipv6Addr::new(0x2001, 0xdb8, 0x8000, 0x200, 0, 0, 0, 1), // past the /56
        IPOE_PREFIX,                                        // another session's
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
    ] {
        let f = pppoe_frame(
            &ppp6(),
            SID,
            PppProtocol::Ipv6,
            &udp6(src, INTERNET6, 64, b"x"),
        );
        assert_eq!(
            run1(&mut p, 0, ACCESS1, &f).0,
            Verdict::Drop(DropReason::AntiSpoof),
            "{src}"
        );
    }
    // A session without IPv6 has no prefix at all.
    let mut plain = pppoe_sub();
    plain.id = 0x77;
    plain.access = plain.access.with_pppoe_session(0x99);
    plain.ipv4 = Ipv4Addr::new(100, 64, 0, 99);
    p.apply(SessionCommand::Upsert(plain));
    let f = pppoe_frame(
        &plain,
        0x99,
        PppProtocol::Ipv6,
        &udp6(PPP_HOST, INTERNET6, 64, b"x"),
    );
    assert_eq!(
        run1(&mut p, 0, ACCESS1, &f).0,
        Verdict::Drop(DropReason::AntiSpoof)
    );
}

#[test]
fn downstream_ipv6_to_the_prefix_and_the_delegated_prefix_is_pppoe_encapsulated() {
    let mut p = v6_pipeline();
    for dst in [
        PPP_HOST,
        Ipv6Addr::new(0x2001, 0xdb8, 0x8000, 0x1ab, 1, 2, 3, 4),
    ] {
        let ip = udp6(INTERNET6, dst, 60, b"down");
        let (v, out) = run1(&mut p, 0, CORE, &core_frame(CORE_MAC, &ip));
        assert_eq!(v, Verdict::Forward(ACCESS1), "{dst}");
        let (l2, off) = L2Header::parse(&out).unwrap();
        assert_eq!((l2.dst, l2.src), (ppp6().access.mac, GW_MAC));
        assert_eq!((l2.svlan, l2.cvlan), (Some(100), Some(300)));
        assert_eq!(l2.ethertype, EtherType::PppoeSession);
        let h = crate::wire::pppoe::Header::parse(&out[off..]).unwrap();
        assert_eq!(h.session_id(), SID);
        assert_eq!(h.protocol(), PppProtocol::Ipv6);
        assert_eq!(h.payload_len(), ip.len(), "PPP payload: the IPv6 packet");
        let got = &out[off + SESSION_HEADER_LEN..];
        assert_eq!(got[7], 59);
        assert_eq!(&got[8..], &ip[8..]);
    }
    let c = p.session_counters(ppp6().id).unwrap();
    assert_eq!(c.dl_packets, 2);
    // Nobody's prefix.
    let ip = udp6(
        INTERNET6,
        Ipv6Addr::new(0x2001, 0xdb8, 0x100, 9, 0, 0, 0, 1),
        60,
        b"?",
    );
    assert_eq!(
        run1(&mut p, 0, CORE, &core_frame(CORE_MAC, &ip)).0,
        Verdict::Drop(DropReason::NoSession)
    );
}

#[test]
fn ipoe_ipv6_goes_both_ways_with_the_session_tag() {
    let mut p = v6_pipeline();
    let s = ipoe6();
    let host = Ipv6Addr::new(0x2001, 0xdb8, 0x200, 7, 0, 0, 0, 0x42);
    let up = udp6(host, INTERNET6, 64, b"u");
    let (v, out) = run1(&mut p, 0, ACCESS0, &ipoe_frame(&s, &up));
    assert_eq!(v, Verdict::Forward(CORE));
    assert_eq!(&out[12..14], &[0x86, 0xdd]);
    assert_eq!(out.len(), 14 + up.len());
    let down = udp6(INTERNET6, host, 64, b"d");
    let (v, out) = run1(&mut p, 0, CORE, &core_frame(CORE_MAC, &down));
    assert_eq!(v, Verdict::Forward(ACCESS0));
    let (l2, off) = L2Header::parse(&out).unwrap();
    assert_eq!((l2.cvlan, l2.ethertype), (Some(200), EtherType::Ipv6));
    assert_eq!(&out[off + 8..], &down[8..]);
    // Router solicitations and DHCPv6 go to the control plane.
    let mut rs = nd(
        133,
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
        NH6,
        0,
        NH6,
        1,
    );
    rs[24..40].copy_from_slice(&Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2).octets());
    assert_eq!(
        run1(&mut p, 0, ACCESS0, &ipoe_frame(&s, &rs)).0,
        Verdict::ToControlPlane
    );
    // Unknown hosts' solicitations spend the shared budget; the session's still pass.
    let stranger = sub(77, ACCESS0, 0, 0);
    let theirs = ipoe_frame(&stranger, &rs);
    let flood: Vec<(PortId, &[u8])> = (0..250).map(|_| (ACCESS0, &theirs[..])).collect();
    let limited = run(&mut p, 0, &flood)
        .iter()
        .filter(|(v, _)| *v == Verdict::Drop(DropReason::RedirectRateLimited))
        .count();
    assert!(limited >= 150, "{limited}");
    assert_eq!(
        run1(&mut p, 0, ACCESS0, &ipoe_frame(&s, &rs)).0,
        Verdict::ToControlPlane
    );
}

#[test]
fn the_longest_session_prefix_wins_and_prefixes_are_exclusive() {
    let mut p = v6_pipeline();
    // Another subscriber holds a /64 inside the PPPoE session's delegated /56.
    let mut inner = sessions()[0];
    let inner_prefix = Ipv6Addr::new(0x2001, 0xdb8, 0x8000, 0x1aa, 0, 0, 0, 0);
    inner.ipv6 = SessionIpv6::new(Some((inner_prefix, 64)), None).unwrap();
    assert_eq!(p.try_upsert(inner), Ok(()));
    let ip = udp6(
        INTERNET6,
        Ipv6Addr::new(0x2001, 0xdb8, 0x8000, 0x1aa, 0, 0, 0, 1),
        9,
        b"",
    );
    assert_eq!(
        run1(&mut p, 0, CORE, &core_frame(CORE_MAC, &ip)).0,
        Verdict::Forward(ACCESS0)
    );
    let ip = udp6(
        INTERNET6,
        Ipv6Addr::new(0x2001, 0xdb8, 0x8000, 0x1ab, 0, 0, 0, 1),
        9,
        b"",
    );
    assert_eq!(
        run1(&mut p, 0, CORE, &core_frame(CORE_MAC, &ip)).0,
        Verdict::Forward(ACCESS1)
    );
    // The same /64 cannot belong to two sessions.
    let mut thief = sessions()[2];
    thief.ipv6 = SessionIpv6::new(Some((PPP_PREFIX, 64)), None).unwrap();
    assert!(matches!(
        p.try_upsert(thief),
        Err(crate::session::SessionError::Ipv6InUse { len: 64, .. })
    ));
    // Removing the inner session gives its /64 back to the /56.
    p.apply(SessionCommand::Remove(inner.id));
    let ip = udp6(
        INTERNET6,
        Ipv6Addr::new(0x2001, 0xdb8, 0x8000, 0x1aa, 0, 0, 0, 1),
        9,
        b"",
    );
    assert_eq!(
        run1(&mut p, 0, CORE, &core_frame(CORE_MAC, &ip)).0,
        Verdict::Forward(ACCESS1)
    );
}

#[test]
fn hop_limit_one_is_answered_with_time_exceeded_both_ways() {
    let mut p = v6_pipeline();
    // Upstream: back to the subscriber in its PPPoE session, PPP protocol IPv6.
    let ip = udp6(PPP_HOST, INTERNET6, 1, b"ttl");
    let f = pppoe_frame(&ppp6(), SID, PppProtocol::Ipv6, &ip);
    let (v, out) = run1(&mut p, 0, ACCESS1, &f);
    assert_eq!(v, Verdict::Forward(ACCESS1));
    let (l2, off) = L2Header::parse(&out).unwrap();
    assert_eq!((l2.dst, l2.src), (ppp6().access.mac, GW_MAC));
    let h = crate::wire::pppoe::Header::parse(&out[off..]).unwrap();
    assert_eq!(h.protocol(), PppProtocol::Ipv6);
    let err = &out[off + SESSION_HEADER_LEN..];
    assert_eq!(h.payload_len(), err.len());
    assert_eq!(&err[8..24], &CORE6.octets(), "from the core address");
    assert_eq!(&err[24..40], &PPP_HOST.octets());
    assert_eq!((err[40], err[41]), (3, 0), "time exceeded in transit");
    assert_eq!(icmpv6::compute_checksum(&CORE6, &PPP_HOST, &err[40..]), 0);
    assert_eq!(&err[48..], &ip[..], "the packet is quoted whole");
    // Downstream: out of the core port to the next hop.
    let ip = udp6(INTERNET6, PPP_HOST, 1, b"ttl");
    let (v, out) = run1(&mut p, 0, CORE, &core_frame(CORE_MAC, &ip));
    assert_eq!(v, Verdict::Forward(CORE));
    assert_eq!(&out[0..6], &NH6_MAC.0);
    assert_eq!(&out[14 + 24..14 + 40], &INTERNET6.octets());
    assert_eq!(out[14 + 40], 3);
    assert_eq!(p.counters().drop_count(DropReason::TtlExceeded), 2);
    assert_eq!(p.counters().icmp_errors_sent, 2);
}

#[test]
fn downstream_ipv6_above_the_session_mtu_gets_packet_too_big() {
    let mut p = v6_pipeline();
    let ip = udp6(INTERNET6, PPP_HOST, 64, &[7u8; 1500 - 48]);
    assert_eq!(ip.len(), 1500);
    let (v, out) = run1(&mut p, 0, CORE, &core_frame(CORE_MAC, &ip));
    assert_eq!(v, Verdict::Forward(CORE));
    let err = &out[14..];
    assert_eq!((err[40], err[41]), (2, 0), "packet too big");
    assert_eq!(
        u32::from_be_bytes([err[44], err[45], err[46], err[47]]),
        1492
    );
    assert_eq!(err.len(), 1280, "quoted up to the minimum MTU");
    assert_eq!(icmpv6::compute_checksum(&CORE6, &INTERNET6, &err[40..]), 0);
    assert_eq!(p.counters().drop_count(DropReason::MtuExceeded), 1);
    // 1492 bytes fit.
    let ip = udp6(INTERNET6, PPP_HOST, 64, &[7u8; 1492 - 48]);
    assert_eq!(
        run1(&mut p, 0, CORE, &core_frame(CORE_MAC, &ip)).0,
        Verdict::Forward(ACCESS1)
    );
}

#[test]
fn ipv6_syn_mss_is_clamped_to_the_session_mtu_less_sixty() {
    let mut p = v6_pipeline();
    let syn = syn6(PPP_HOST, INTERNET6, 1460);
    let f = pppoe_frame(&ppp6(), SID, PppProtocol::Ipv6, &syn);
    let (v, out) = run1(&mut p, 0, ACCESS1, &f);
    assert_eq!(v, Verdict::Forward(CORE));
    let tcp = &out[14 + 40..];
    assert_eq!(u16::from_be_bytes([tcp[22], tcp[23]]), 1432);
    assert!(tcp6_checksum_ok(&out[14..]));
    let syn_ack = syn6(INTERNET6, PPP_HOST, 1440);
    let (v, out) = run1(&mut p, 0, CORE, &core_frame(CORE_MAC, &syn_ack));
    assert_eq!(v, Verdict::Forward(ACCESS1));
    let ip = &out[out.len() - syn_ack.len()..];
    assert_eq!(u16::from_be_bytes([ip[40 + 22], ip[40 + 23]]), 1432);
    assert!(tcp6_checksum_ok(ip));
}

#[test]
fn neighbour_solicitations_for_the_core_addresses_are_answered() {
    let mut p = v6_pipeline();
    let link_local = crate::pipeline::process::ipv6::link_local_of(CORE_MAC);
    for target in [CORE6, link_local] {
        let (group, _) = (Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 2), ());
        let ns = nd(135, NH6, group, 0, target, 1);
        let multicast = EthernetAddress([0x33, 0x33, 0xff, 0, 0, 2]);
        let (v, out) = run1(&mut p, 0, CORE, &core_frame(multicast, &ns));
        assert_eq!(v, Verdict::Forward(CORE), "{target}");
        assert_eq!(&out[0..6], &NH6_MAC.0);
        assert_eq!(&out[6..12], &CORE_MAC.0);
        let ip = &out[14..];
        assert_eq!(ip[7], 255);
        assert_eq!(&ip[8..24], &target.octets());
        assert_eq!(&ip[24..40], &NH6.octets());
        let m = &ip[40..];
        assert_eq!(m[0], 136);
        assert_eq!(m[4], 0xe0, "router, solicited, override");
        assert_eq!(&m[8..24], &target.octets());
        assert_eq!(
            &m[24..32],
            &[2, 1, 2, 0, 0, 0, 0, 2],
            "target link-layer address"
        );
        assert_eq!(icmpv6::compute_checksum(&target, &NH6, m), 0);
    }
    assert_eq!(p.counters().nd_replies, 2);
    // Someone else's address, a bad hop limit, a bad checksum: not answered.
    let other = nd(135, NH6, CORE6, 0, NH6, 1);
    assert_eq!(
        run1(&mut p, 0, CORE, &core_frame(CORE_MAC, &other)).0,
        Verdict::Drop(DropReason::NotForUs)
    );
    let mut hop = nd(135, NH6, CORE6, 0, CORE6, 1);
    hop[7] = 64;
    let mut bad_sum = nd(135, NH6, CORE6, 0, CORE6, 1);
    bad_sum[43] ^= 1;
    for f in [hop, bad_sum] {
        assert_eq!(
            run1(&mut p, 0, CORE, &core_frame(CORE_MAC, &f)).0,
            Verdict::Drop(DropReason::Malformed)
        );
    }
    // Nothing addressed to the user plane itself is forwarded.
    let ping = udp6(INTERNET6, CORE6, 64, b"");
    assert_eq!(
        run1(&mut p, 0, CORE, &core_frame(CORE_MAC, &ping)).0,
        Verdict::Drop(DropReason::NotForUs)
    );
}

#[test]
fn the_next_hop_is_solicited_until_it_answers() {
    let mut p = resolved();
    p.apply(SessionCommand::Upsert(ppp6()));
    p.set_ipv6(CORE6, NH6);
    let f = pppoe_frame(
        &ppp6(),
        SID,
        PppProtocol::Ipv6,
        &udp6(PPP_HOST, INTERNET6, 64, b""),
    );
    assert_eq!(
        run1(&mut p, 0, ACCESS1, &f).0,
        Verdict::Drop(DropReason::NextHopUnresolved)
    );
    let mut sent = Vec::new();
    p.drain_generated(0, &mut |port, b| sent.push((port, b.to_vec())));
    p.drain_generated(SEC / 2, &mut |port, b| sent.push((port, b.to_vec())));
    let ns: Vec<_> = sent
        .iter()
        .filter(|(_, b)| b[12..14] == [0x86, 0xdd])
        .collect();
    assert_eq!(ns.len(), 1, "once per retry interval");
    let (port, b) = ns[0];
    assert_eq!(*port, CORE);
    assert_eq!(&b[0..6], &[0x33, 0x33, 0xff, 0, 0, 1]);
    let ip = &b[14..];
    assert_eq!(
        &ip[24..40],
        &Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 1).octets()
    );
    assert_eq!((ip[7], ip[40]), (255, 135));
    assert_eq!(&ip[40 + 8..40 + 24], &NH6.octets());
    assert_eq!(
        icmpv6::compute_checksum(
            &CORE6,
            &Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap()),
            &ip[40..]
        ),
        0
    );
    // The next hop's own solicitation teaches its MAC as well as an advertisement would.
    let ns_from_nh = nd(135, NH6, CORE6, 0, CORE6, 1);
    assert_eq!(
        run1(&mut p, SEC, CORE, &core_frame(CORE_MAC, &ns_from_nh)).0,
        Verdict::Forward(CORE)
    );
    assert_eq!(p.ipv6_next_hop_mac(), Some(NH6_MAC));
    assert_eq!(run1(&mut p, SEC, ACCESS1, &f).0, Verdict::Forward(CORE));
    let mut later = Vec::new();
    p.drain_generated(3 * SEC, &mut |port, b| later.push((port, b.to_vec())));
    assert!(later.iter().all(|(_, b)| b[12..14] != [0x86, 0xdd]));
}

#[test]
fn without_ipv6_on_ipv6_data_is_dropped_as_before() {
    let mut p = resolved();
    p.apply(SessionCommand::Upsert(ppp6()));
    p.apply(SessionCommand::Upsert(ipoe6()));
    let f = pppoe_frame(
        &ppp6(),
        SID,
        PppProtocol::Ipv6,
        &udp6(PPP_HOST, INTERNET6, 64, b""),
    );
    assert_eq!(
        run1(&mut p, 0, ACCESS1, &f).0,
        Verdict::Drop(DropReason::UnsupportedPppProtocol)
    );
    let host = Ipv6Addr::new(0x2001, 0xdb8, 0x200, 7, 0, 0, 0, 0x42);
    let f = ipoe_frame(&ipoe6(), &udp6(host, INTERNET6, 64, b""));
    assert_eq!(
        run1(&mut p, 0, ACCESS0, &f).0,
        Verdict::Drop(DropReason::UnsupportedEtherType)
    );
    let down = core_frame(CORE_MAC, &udp6(INTERNET6, PPP_HOST, 64, b""));
    assert_eq!(
        run1(&mut p, 0, CORE, &down).0,
        Verdict::Drop(DropReason::UnsupportedEtherType)
    );
}

#[test]
fn a_truncated_ipv6_packet_is_malformed() {
    let mut p = v6_pipeline();
    let mut ip = udp6(PPP_HOST, INTERNET6, 64, b"0123456789");
    ip[5] += 20; // payload length past the PPP payload
    let f = pppoe_frame(&ppp6(), SID, PppProtocol::Ipv6, &ip);
    assert_eq!(
        run1(&mut p, 0, ACCESS1, &f).0,
        Verdict::Drop(DropReason::Malformed)
    );
    let mut v4 = udp6(INTERNET6, PPP_HOST, 64, b"");
    v4[0] = 0x45;
    assert_eq!(
        run1(&mut p, 0, CORE, &core_frame(CORE_MAC, &v4)).0,
        Verdict::Drop(DropReason::Malformed)
    );
}

#[test]
fn static_ipv6_routes_pick_the_next_hop_and_unrouted_destinations_get_no_route() {
    let mut p = v6_pipeline();
    let router2 = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 3);
    let router2_mac = EthernetAddress([0x52, 0x54, 0, 0x66, 0x66, 0x03]);
    let behind2 = Ipv6Addr::new(0x2001, 0xdb8, 0xe000, 0, 0, 0, 0, 1);
    let routes = [StaticRoute6 {
        prefix: Ipv6Addr::new(0x2001, 0xdb8, 0xe000, 0, 0, 0, 0, 0),
        len: 40,
        next_hop: router2,
    }];
    p.set_routes6(&routes).unwrap();
    assert_eq!(
        p.ipv6_next_hop_mac(),
        Some(NH6_MAC),
        "the default next hop stays learned"
    );
    let up = |dst| {
        pppoe_frame(
            &ppp6(),
            SID,
            PppProtocol::Ipv6,
            &udp6(PPP_HOST, dst, 64, b"r"),
        )
    };
    assert_eq!(
        run1(&mut p, 0, ACCESS1, &up(behind2)).0,
        Verdict::Drop(DropReason::NextHopUnresolved)
    );
    // The new next hop is solicited, answers, and takes the route's traffic.
    let mut sent = Vec::new();
    p.drain_generated(0, &mut |_, b| sent.push(b.to_vec()));
    assert!(
        sent.iter()
            .any(|b| b[12..14] == [0x86, 0xdd] && b[14 + 40 + 8..14 + 40 + 24] == router2.octets())
    );
    let mut na = nd(136, router2, CORE6, 0xe0, router2, 2);
    na[40 + 26..40 + 32].copy_from_slice(&router2_mac.0);
    let c = {
        na[42..44].fill(0);
        icmpv6::compute_checksum(&router2, &CORE6, &na[40..])
    };
    na[42..44].copy_from_slice(&c.to_be_bytes());
    assert_eq!(
        run1(&mut p, 0, CORE, &core_frame(CORE_MAC, &na)).0,
        Verdict::Drop(DropReason::Consumed)
    );
    let (v, out) = run1(&mut p, 0, ACCESS1, &up(behind2));
    assert_eq!(v, Verdict::Forward(CORE));
    assert_eq!(&out[0..6], &router2_mac.0);
    let (v, out) = run1(&mut p, 0, ACCESS1, &up(INTERNET6));
    assert_eq!(v, Verdict::Forward(CORE));
    assert_eq!(&out[0..6], &NH6_MAC.0, "everything else: the default route");
    // Without a default next hop, a destination no route covers is answered with no
    // route, back to the subscriber.
    let mut p = resolved();
    p.apply(SessionCommand::Upsert(ppp6()));
    p.set_ipv6(CORE6, Ipv6Addr::UNSPECIFIED);
    p.set_routes6(&routes).unwrap();
    let (v, out) = run1(&mut p, 0, ACCESS1, &up(INTERNET6));
    assert_eq!(v, Verdict::Forward(ACCESS1));
    let err = &out[out.len() - (40 + 8 + 40 + 9)..];
    assert_eq!(
        (err[40], err[41]),
        (1, 0),
        "destination unreachable, no route"
    );
    assert_eq!(p.counters().drop_count(DropReason::NoRoute), 1);
}
