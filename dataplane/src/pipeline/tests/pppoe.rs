//! PPPoE sessions in the fast path: decapsulation and encapsulation byte for byte, MSS
//! clamping both ways, control protocols to the control plane, unknown sessions, anti-spoof,
//! MTU, coexistence with IPoE on one MAC, and shaping.

use super::*;
use crate::session::SessionQos;
use crate::wire::pppoe::{PppProtocol, SESSION_HEADER_LEN, SessionRepr};
use crate::wire::{IpProtocol, tcp};

pub(super) const SID: u16 = 0x0042;
const PPP_IP: u8 = 30;

/// A PPPoE subscriber on QinQ 100/300 of ACCESS1, session [`SID`], MTU 1492, MSS 1452.
pub(super) fn pppoe_sub() -> SessionEntry {
    let mut e = sub(PPP_IP, ACCESS1, 100, 300);
    e.access = e.access.with_pppoe_session(SID);
    e.mtu = 1492;
    e.mss_clamp = 1452;
    e
}

pub(super) fn pppoe_pipeline() -> Pipeline {
    let mut p = resolved();
    p.apply(SessionCommand::Upsert(pppoe_sub()));
    p
}

/// Wraps the IPv4 packet `ip` as PPP `protocol` in PPPoE session `sid` from `e`'s MAC and
/// tags, padded to 60 octets like a real Ethernet frame.
pub(super) fn pppoe_frame(e: &SessionEntry, sid: u16, protocol: PppProtocol, ip: &[u8]) -> Vec<u8> {
    let l2 = L2Header {
        ethertype: EtherType::PppoeSession,
        ..l2_of(e, GW_MAC)
    };
    let mut f = vec![0u8; l2.buffer_len() + SESSION_HEADER_LEN];
    l2.emit(&mut f);
    SessionRepr {
        session_id: sid,
        protocol,
        payload_len: ip.len() as u16,
    }
    .emit(&mut f[l2.buffer_len()..]);
    f.extend_from_slice(ip);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// The IPv4 packet inside an IPoE frame built by `build_ipv4_udp` with an untagged header.
pub(super) fn udp_packet(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let l2 = L2Header {
        dst: GW_MAC,
        src: mac(1),
        svlan: None,
        cvlan: None,
        ethertype: EtherType::Ipv4,
    };
    let f = build_ipv4_udp(&l2, src, dst, 40000, 53, 64, payload);
    let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
    f[14..14 + total].to_vec()
}

/// An IPv4 TCP segment with `flags` and one MSS option of `mss`, checksums filled.
fn tcp_packet(src: Ipv4Addr, dst: Ipv4Addr, flags: u8, mss: u16) -> Vec<u8> {
    let mut ip = vec![0u8; 20 + 24];
    Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IpProtocol::Tcp,
        payload_len: 24,
        ttl: 64,
        tos: 0,
        ident: 7,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    }
    .emit(&mut ip);
    let seg = &mut ip[20..];
    crate::wire::TcpRepr {
        src_port: 40000,
        dst_port: 443,
        seq: 1,
        ack: 0,
        flags,
        window: 64240,
        urgent: 0,
    }
    .emit(seg);
    seg[12] = 6 << 4;
    seg[20..24].copy_from_slice(&[2, 4, (mss >> 8) as u8, mss as u8]);
    fill_tcp_checksum(src, dst, seg);
    ip
}

fn fill_tcp_checksum(src: Ipv4Addr, dst: Ipv4Addr, seg: &mut [u8]) {
    seg[16..18].copy_from_slice(&[0, 0]);
    let ph = checksum::pseudo_header_ipv4(src, dst, 6, seg.len() as u16);
    let c = !checksum::fold(checksum::combine(ph, checksum::sum(seg)));
    seg[16..18].copy_from_slice(&c.to_be_bytes());
}

/// True if the TCP segment's checksum verifies.
fn tcp_checksum_ok(src: Ipv4Addr, dst: Ipv4Addr, seg: &[u8]) -> bool {
    let mut copy = seg.to_vec();
    fill_tcp_checksum(src, dst, &mut copy);
    copy[16..18] == seg[16..18]
}

#[test]
fn upstream_decapsulation_byte_exact() {
    let mut p = pppoe_pipeline();
    let s = pppoe_sub();
    let ip = udp_packet(s.ipv4, INTERNET, b"p");
    let f = pppoe_frame(&s, SID, PppProtocol::Ipv4, &ip);
    assert_eq!(f.len(), 60, "padded");
    let (v, out) = run1(&mut p, 0, ACCESS1, &f);
    assert_eq!(v, Verdict::Forward(CORE));
    let mut expected = Vec::new();
    expected.extend_from_slice(&NH_MAC.0);
    expected.extend_from_slice(&CORE_MAC.0);
    expected.extend_from_slice(&[0x08, 0x00]);
    let mut want_ip = ip.clone();
    want_ip[8] -= 1;
    ipv4::fill_checksum(&mut want_ip);
    expected.extend_from_slice(&want_ip);
    assert_eq!(out, expected);
    assert_ttl_decremented(&ip, &out[14..]);
    let c = p.session_counters(s.id).unwrap();
    assert_eq!((c.ul_packets, c.ul_bytes), (1, ip.len() as u64));
    assert_eq!(p.counters().ul_forwarded, 1);
}

#[test]
fn downstream_encapsulation_byte_exact() {
    let mut p = pppoe_pipeline();
    let s = pppoe_sub();
    let f = downstream_udp(s.ipv4, b"hello ppp");
    let ip_len = usize::from(u16::from_be_bytes([f[16], f[17]]));
    let ip = &f[14..14 + ip_len];
    let (v, out) = run1(&mut p, 0, CORE, &f);
    assert_eq!(v, Verdict::Forward(ACCESS1));
    let mut expected = Vec::new();
    expected.extend_from_slice(&s.access.mac.0);
    expected.extend_from_slice(&GW_MAC.0);
    expected.extend_from_slice(&[0x88, 0xa8, 0x00, 100, 0x81, 0x00, 0x01, 0x2c]);
    expected.extend_from_slice(&[0x88, 0x64]);
    let len = (ip_len + 2) as u16;
    expected.extend_from_slice(&[0x11, 0x00, 0x00, 0x42]);
    expected.extend_from_slice(&len.to_be_bytes());
    expected.extend_from_slice(&[0x00, 0x21]);
    let mut want_ip = ip.to_vec();
    want_ip[8] -= 1;
    ipv4::fill_checksum(&mut want_ip);
    expected.extend_from_slice(&want_ip);
    assert_eq!(out, expected);
    // What a receiver sees: a session frame of SID carrying the packet.
    let (l2, off) = L2Header::parse(&out).unwrap();
    assert_eq!(l2.ethertype, EtherType::PppoeSession);
    let r = SessionRepr::parse(&out[off..]).unwrap();
    assert_eq!(
        r,
        SessionRepr {
            session_id: SID,
            protocol: PppProtocol::Ipv4,
            payload_len: ip_len as u16
        }
    );
    let c = p.session_counters(s.id).unwrap();
    assert_eq!((c.dl_packets, c.dl_bytes), (1, ip_len as u64));
}

#[test]
fn mss_clamped_both_ways() {
    let mut p = pppoe_pipeline();
    let s = pppoe_sub();
    // Upstream SYN announcing 1460.
    let syn = tcp_packet(s.ipv4, INTERNET, tcp::flags::SYN, 1460);
    let (v, out) = run1(
        &mut p,
        0,
        ACCESS1,
        &pppoe_frame(&s, SID, PppProtocol::Ipv4, &syn),
    );
    assert_eq!(v, Verdict::Forward(CORE));
    let seg = &out[34..];
    assert_eq!(&seg[20..24], &[2, 4, 0x05, 0xac], "MSS 1452");
    assert!(tcp_checksum_ok(s.ipv4, INTERNET, seg));
    // Downstream SYN/ACK announcing 1460.
    let synack = tcp_packet(INTERNET, s.ipv4, tcp::flags::SYN | tcp::flags::ACK, 1460);
    let mut f = vec![0u8; 14];
    L2Header {
        dst: CORE_MAC,
        src: NH_MAC,
        svlan: None,
        cvlan: None,
        ethertype: EtherType::Ipv4,
    }
    .emit(&mut f);
    f.extend_from_slice(&synack);
    let (v, out) = run1(&mut p, 0, CORE, &f);
    assert_eq!(v, Verdict::Forward(ACCESS1));
    let ip_at = 14 + 8 + SESSION_HEADER_LEN;
    let seg = &out[ip_at + 20..];
    assert_eq!(&seg[20..24], &[2, 4, 0x05, 0xac], "MSS 1452");
    assert!(tcp_checksum_ok(INTERNET, s.ipv4, seg));
    // A smaller MSS and a plain ACK are left alone.
    let small = tcp_packet(s.ipv4, INTERNET, tcp::flags::SYN, 1400);
    let (_, out) = run1(
        &mut p,
        0,
        ACCESS1,
        &pppoe_frame(&s, SID, PppProtocol::Ipv4, &small),
    );
    assert_eq!(&out[34 + 20..34 + 24], &[2, 4, 0x05, 0x78]);
    // An IPoE session without clamping passes its SYN unchanged (but for TTL).
    let ipoe = sessions()[0];
    let syn = tcp_packet(ipoe.ipv4, INTERNET, tcp::flags::SYN, 1460);
    let mut f = vec![0u8; 14];
    l2_of(&ipoe, GW_MAC).emit(&mut f);
    f.extend_from_slice(&syn);
    let (v, out) = run1(&mut p, 0, ACCESS0, &f);
    assert_eq!(v, Verdict::Forward(CORE));
    assert_eq!(&out[34..], &syn[20..]);
}

#[test]
fn control_protocols_and_discovery_go_to_the_control_plane() {
    let mut p = pppoe_pipeline();
    let s = pppoe_sub();
    let lcp = [
        0x01, 0x01, 0x00, 0x0e, 0x01, 0x04, 0x05, 0xd4, 0x05, 0x06, 1, 2, 3, 4,
    ];
    for proto in [0xc021u16, 0xc023, 0xc223, 0x8021, 0x8057, 0x80fd] {
        // Known session and unknown session alike.
        for sid in [SID, 0x0999] {
            let f = pppoe_frame(&s, sid, PppProtocol::from(proto), &lcp);
            let (v, out) = run1(&mut p, 0, ACCESS1, &f);
            assert_eq!(v, Verdict::ToControlPlane, "{proto:#x} sid {sid:#x}");
            assert_eq!(out, f, "redirected unchanged");
        }
    }
    // PADI: discovery stage, EtherType 0x8863.
    let l2 = L2Header {
        dst: EthernetAddress::BROADCAST,
        ethertype: EtherType::PppoeDiscovery,
        ..l2_of(&s, GW_MAC)
    };
    let mut padi = vec![0u8; 60];
    let n = l2.buffer_len();
    l2.emit(&mut padi);
    padi[n..n + 10].copy_from_slice(&[0x11, 0x09, 0, 0, 0, 4, 0x01, 0x01, 0, 0]);
    assert_eq!(run1(&mut p, 0, ACCESS1, &padi).0, Verdict::ToControlPlane);
    assert_eq!(p.counters().redirected, 13);
    // The redirect rate limit still holds (100 pps, burst 100): a storm of LCP is cut.
    let f = pppoe_frame(&s, SID, PppProtocol::Lcp, &lcp);
    let storm: Vec<(PortId, &[u8])> = (0..200).map(|_| (ACCESS1, &f[..])).collect();
    let out = run(&mut p, 0, &storm);
    let passed = out
        .iter()
        .filter(|(v, _)| *v == Verdict::ToControlPlane)
        .count();
    assert!(passed <= 100, "{passed} redirected");
    assert_eq!(
        p.counters().drop_count(DropReason::RedirectRateLimited) as usize,
        200 - passed
    );
}

#[test]
fn unknown_session_ipv6_and_malformed_are_dropped() {
    let mut p = pppoe_pipeline();
    let s = pppoe_sub();
    let ip = udp_packet(s.ipv4, INTERNET, b"x");
    // IPv4 data on a session the user plane does not know.
    let f = pppoe_frame(&s, SID + 1, PppProtocol::Ipv4, &ip);
    assert_eq!(
        run1(&mut p, 0, ACCESS1, &f).0,
        Verdict::Drop(DropReason::NoSession)
    );
    // The right session id from another MAC is another subscriber: unknown too.
    let mut other = s;
    other.access.mac = mac(99);
    let f = pppoe_frame(&other, SID, PppProtocol::Ipv4, &ip);
    assert_eq!(
        run1(&mut p, 0, ACCESS1, &f).0,
        Verdict::Drop(DropReason::NoSession)
    );
    assert_eq!(p.counters().drop_count(DropReason::NoSession), 2);
    // IPv6 and other data protocols.
    for proto in [0x0057u16, 0x002b] {
        let f = pppoe_frame(&s, SID, PppProtocol::from(proto), &ip);
        assert_eq!(
            run1(&mut p, 0, ACCESS1, &f).0,
            Verdict::Drop(DropReason::UnsupportedPppProtocol)
        );
    }
    assert_eq!(
        p.counters().drop_count(DropReason::UnsupportedPppProtocol),
        2
    );
    // Session id 0, PPPoE LENGTH shorter than the IPv4 packet, LENGTH past the frame,
    // a discovery code in the session stage, a bad IPv4 checksum.
    let good = pppoe_frame(&s, SID, PppProtocol::Ipv4, &ip);
    let off = 14 + 8;
    let mut bad = vec![pppoe_frame(&s, 0, PppProtocol::Ipv4, &ip)];
    let mut short = good.clone();
    short[off + 5] -= 1;
    bad.push(short);
    let mut long = good.clone();
    long[off + 4..off + 6].copy_from_slice(&200u16.to_be_bytes());
    bad.push(long);
    let mut padt = good.clone();
    padt[off + 1] = 0xa7;
    bad.push(padt);
    let mut csum = good.clone();
    csum[off + SESSION_HEADER_LEN + 10] ^= 0xff;
    bad.push(csum);
    bad.push(good[..off + 4].to_vec());
    for f in &bad {
        assert_eq!(
            run1(&mut p, 0, ACCESS1, f).0,
            Verdict::Drop(DropReason::Malformed),
            "{f:02x?}"
        );
    }
    assert_eq!(
        run1(&mut p, 0, ACCESS1, &good).0,
        Verdict::Forward(CORE),
        "the unmodified frame passes"
    );
}

#[test]
fn anti_spoof_on_the_pppoe_path() {
    let mut p = pppoe_pipeline();
    let s = pppoe_sub();
    let ip = udp_packet(Ipv4Addr::new(100, 64, 0, 99), INTERNET, b"spoof");
    let f = pppoe_frame(&s, SID, PppProtocol::Ipv4, &ip);
    assert_eq!(
        run1(&mut p, 0, ACCESS1, &f).0,
        Verdict::Drop(DropReason::AntiSpoof)
    );
    // Addressed to another MAC than the gateway's.
    let mut f = pppoe_frame(
        &s,
        SID,
        PppProtocol::Ipv4,
        &udp_packet(s.ipv4, INTERNET, b""),
    );
    f[..6].copy_from_slice(&mac(77).0);
    assert_eq!(
        run1(&mut p, 0, ACCESS1, &f).0,
        Verdict::Drop(DropReason::NotForUs)
    );
    // Gate closed.
    let mut closed = s;
    closed.gate_open = false;
    p.apply(SessionCommand::Upsert(closed));
    let f = pppoe_frame(
        &s,
        SID,
        PppProtocol::Ipv4,
        &udp_packet(s.ipv4, INTERNET, b""),
    );
    assert_eq!(
        run1(&mut p, 0, ACCESS1, &f).0,
        Verdict::Drop(DropReason::GateClosed)
    );
}

#[test]
fn mtu_exceeded_is_dropped_and_counted() {
    let mut p = pppoe_pipeline();
    let s = pppoe_sub();
    // 1492 octets of IPv4 fit; 1493 do not.
    let fits = downstream_udp(s.ipv4, &[0u8; 1492 - 28]);
    let (v, out) = run1(&mut p, 0, CORE, &fits);
    assert_eq!(v, Verdict::Forward(ACCESS1));
    assert_eq!(out.len(), 14 + 8 + SESSION_HEADER_LEN + 1492);
    // Sent with DF: answered with fragmentation needed (see the icmp tests).
    let too_big = downstream_udp(s.ipv4, &[0u8; 1493 - 28]);
    assert_eq!(run1(&mut p, 0, CORE, &too_big).0, Verdict::Forward(CORE));
    assert_eq!(p.counters().drop_count(DropReason::MtuExceeded), 1);
    // A session without an MTU forwards it (IPoE, no PPPoE header).
    let ipoe = sessions()[0];
    let (v, out) = run1(
        &mut p,
        0,
        CORE,
        &downstream_udp(ipoe.ipv4, &[0u8; 1493 - 28]),
    );
    assert_eq!(v, Verdict::Forward(ACCESS0));
    assert_eq!(out.len(), 14 + 1493);
}

#[test]
fn ipoe_and_pppoe_sessions_share_a_mac() {
    let mut p = pppoe_pipeline();
    let s = pppoe_sub();
    // The same MAC and tags also hold an IPoE session with another address.
    let mut ipoe = s;
    ipoe.id = 0x9999;
    ipoe.access.pppoe_session = 0;
    ipoe.ipv4 = Ipv4Addr::new(100, 64, 1, 1);
    ipoe.mtu = 0;
    ipoe.mss_clamp = 0;
    p.apply(SessionCommand::Upsert(ipoe));
    assert_eq!(p.sessions().len(), 5);
    let f = upstream_udp(&ipoe, ipoe.ipv4, b"ipoe");
    assert_eq!(run1(&mut p, 0, ACCESS1, &f).0, Verdict::Forward(CORE));
    // The PPPoE session's address from the IPoE path is spoofing, and vice versa.
    let f = upstream_udp(&ipoe, s.ipv4, b"ipoe");
    assert_eq!(
        run1(&mut p, 0, ACCESS1, &f).0,
        Verdict::Drop(DropReason::AntiSpoof)
    );
    let f = pppoe_frame(
        &s,
        SID,
        PppProtocol::Ipv4,
        &udp_packet(ipoe.ipv4, INTERNET, b""),
    );
    assert_eq!(
        run1(&mut p, 0, ACCESS1, &f).0,
        Verdict::Drop(DropReason::AntiSpoof)
    );
    // Downstream, each address gets its own encapsulation.
    let (_, out) = run1(&mut p, 0, CORE, &downstream_udp(ipoe.ipv4, b"a"));
    assert_eq!(L2Header::parse(&out).unwrap().0.ethertype, EtherType::Ipv4);
    let (_, out) = run1(&mut p, 0, CORE, &downstream_udp(s.ipv4, b"a"));
    assert_eq!(
        L2Header::parse(&out).unwrap().0.ethertype,
        EtherType::PppoeSession
    );
}

#[test]
fn pppoe_sessions_are_shaped_like_ipoe() {
    let sched = small_scheduler();
    let mut p = Pipeline::with_qos(cfg(), 3, sched);
    p.set_next_hop_mac(Some(NH_MAC));
    let mut s = pppoe_sub();
    // 1 Mbit/s: 10 packets of 1028 IPv4 octets take ~82 ms.
    s.qos = SessionQos {
        dl_rate_bps: Some(1_000_000),
        ul_rate_bps: None,
    };
    p.apply(SessionCommand::Upsert(s));
    let f = downstream_udp(s.ipv4, &[0u8; 1000]);
    let burst: Vec<(PortId, &[u8])> = (0..10).map(|_| (CORE, &f[..])).collect();
    let out = run(&mut p, 0, &burst);
    let queued = out.iter().filter(|(v, _)| *v == Verdict::Queued).count();
    assert!(queued > 0, "some frames wait for tokens");
    let mut sent = Vec::new();
    for ms in 1..=200u64 {
        p.drain_shaped(ms * 1_000_000, 64, &mut |port, data| {
            sent.push((port, data.to_vec()));
            true
        });
    }
    assert_eq!(sent.len(), queued, "every queued frame leaves");
    for (port, data) in &sent {
        assert_eq!(*port, ACCESS1);
        let (l2, off) = L2Header::parse(data).unwrap();
        assert_eq!(l2.ethertype, EtherType::PppoeSession);
        assert_eq!(
            SessionRepr::parse(&data[off..]).unwrap().payload_len,
            1028,
            "shaped frames carry the PPPoE header"
        );
    }
    // Rates are on the IPv4 length: the session's usage counts 1028 octets per packet.
    let c = p.session_counters(s.id).unwrap();
    assert_eq!(c.dl_packets, 10);
    assert_eq!(c.dl_bytes, 10 * 1028);
}

/// Valid PPPoE-path frames: upstream UDP and TCP SYN, downstream SYN/ACK and UDP.
fn valid_pppoe_frames() -> Vec<(PortId, Vec<u8>)> {
    let s = pppoe_sub();
    let core_l2 = |ip: &[u8]| {
        let mut f = vec![0u8; 14];
        L2Header {
            dst: CORE_MAC,
            src: NH_MAC,
            svlan: None,
            cvlan: None,
            ethertype: EtherType::Ipv4,
        }
        .emit(&mut f);
        f.extend_from_slice(ip);
        f
    };
    vec![
        (
            ACCESS1,
            pppoe_frame(
                &s,
                SID,
                PppProtocol::Ipv4,
                &udp_packet(s.ipv4, INTERNET, b"u"),
            ),
        ),
        (
            ACCESS1,
            pppoe_frame(
                &s,
                SID,
                PppProtocol::Ipv4,
                &tcp_packet(s.ipv4, INTERNET, tcp::flags::SYN, 1460),
            ),
        ),
        (
            CORE,
            core_l2(&tcp_packet(
                INTERNET,
                s.ipv4,
                tcp::flags::SYN | tcp::flags::ACK,
                1460,
            )),
        ),
        (CORE, downstream_udp(s.ipv4, b"d")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// PPPoE and MSS-clamped frames with random byte flips and truncations never panic, and
    /// what is forwarded goes to a real port.
    #[test]
    fn mutated_pppoe_frames_never_panic(idx in 0usize..4,
                                        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
                                        cut in any::<usize>()) {
        let mut p = pppoe_pipeline();
        let (port, mut f) = valid_pppoe_frames().swap_remove(idx);
        for (at, x) in flips {
            let n = f.len();
            f[at % n] ^= x;
        }
        let cut = cut % (f.len() + 1);
        for (v, _) in run(&mut p, 0, &[(port, &f[..cut]), (port, &f)]) {
            if let Verdict::Forward(port) = v {
                prop_assert!(port == CORE || port == ACCESS1);
            }
        }
    }
}

/// An IPv6 packet from the subscriber's link-local address with `next_header` and
/// `payload` right after the fixed header (checksums are not the pipeline's business).
fn ipv6_packet(next_header: u8, payload: &[u8]) -> Vec<u8> {
    let mut ip = vec![0u8; 40];
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    ip[6] = next_header;
    ip[7] = 255;
    ip[8] = 0xfe;
    ip[9] = 0x80;
    ip[23] = 1;
    ip[24] = 0xff;
    ip[25] = 0x02;
    ip[39] = 2;
    ip.extend_from_slice(payload);
    ip
}

#[test]
fn ipv6_set_up_goes_to_the_control_plane_and_ipv6_data_is_dropped() {
    let mut p = pppoe_pipeline();
    let s = pppoe_sub();
    let router_solicitation = ipv6_packet(58, &[133, 0, 0, 0, 0, 0, 0, 0]);
    let neighbor_solicitation = ipv6_packet(58, &[135, 0, 0, 0, 0, 0, 0, 0]);
    let dhcpv6_solicit = ipv6_packet(17, &[2, 0x22, 2, 0x23, 0, 12, 0, 0, 1, 0, 0, 1]);
    for ip in [
        &router_solicitation,
        &neighbor_solicitation,
        &dhcpv6_solicit,
    ] {
        let f = pppoe_frame(&s, SID, PppProtocol::Ipv6, ip);
        assert_eq!(run1(&mut p, 0, ACCESS1, &f).0, Verdict::ToControlPlane);
    }
    // An echo request, a DHCPv6 reply toward a client port, a truncated header: data.
    let echo = ipv6_packet(58, &[128, 0, 0, 0, 0, 1, 0, 1]);
    let to_client_port = ipv6_packet(17, &[2, 0x23, 2, 0x22, 0, 8, 0, 0]);
    for ip in [&echo, &to_client_port, &router_solicitation[..39].to_vec()] {
        let f = pppoe_frame(&s, SID, PppProtocol::Ipv6, ip);
        assert_eq!(
            run1(&mut p, 0, ACCESS1, &f).0,
            Verdict::Drop(DropReason::UnsupportedPppProtocol)
        );
    }
    assert_eq!(p.counters().redirected, 3);
}

#[test]
fn a_padi_storm_cannot_starve_established_sessions_lcp() {
    let mut p = pppoe_pipeline();
    let s = pppoe_sub();
    // New subscribers spend the shared budget (redirect_pps 100, full at start).
    let padi = {
        let l2 = L2Header {
            dst: EthernetAddress::BROADCAST,
            src: mac(77),
            svlan: None,
            cvlan: None,
            ethertype: EtherType::PppoeDiscovery,
        };
        let mut f = vec![0u8; 60];
        l2.emit(&mut f);
        f
    };
    let storm: Vec<Verdict> = (0..150)
        .map(|_| run1(&mut p, 0, ACCESS1, &padi).0)
        .collect();
    let passed = storm
        .iter()
        .filter(|v| **v == Verdict::ToControlPlane)
        .count();
    assert_eq!(passed, 100, "the shared budget");
    // An LCP Echo-Request of the session the user plane holds still reaches the
    // control plane; one of a session it does not hold shares the exhausted budget.
    let echo = [9, 1, 0, 8, 0x11, 0x22, 0x33, 0x44];
    let f = pppoe_frame(&s, SID, PppProtocol::Lcp, &echo);
    assert_eq!(run1(&mut p, 0, ACCESS1, &f).0, Verdict::ToControlPlane);
    let f = pppoe_frame(&s, SID + 1, PppProtocol::Lcp, &echo);
    assert_eq!(
        run1(&mut p, 0, ACCESS1, &f).0,
        Verdict::Drop(DropReason::RedirectRateLimited)
    );
}
