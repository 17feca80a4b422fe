//! Pipeline behaviour tests over MemoryPort-style frames.

use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use proptest::prelude::*;

use super::*;
use crate::packet::{Frame, PacketBuffer};
use crate::session::{AccessKey, SessionIpv6, UsageCounters};
use crate::wire::arp::{ArpOperation, ArpRepr};
use crate::wire::frame::{L2Header, build_arp, build_ipv4_udp};
use crate::wire::{EtherType, EthernetAddress, Icmpv4Repr, Ipv4Repr, checksum, ipv4};

const ACCESS0: PortId = 0;
const ACCESS1: PortId = 1;
const CORE: PortId = 2;
const GW_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x5e, 0x00, 0x01, 0x01]);
const CORE_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);
const NH_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]);
const CORE_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const NH_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const INTERNET: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);
const SEC: u64 = 1_000_000_000;

fn cfg() -> PipelineConfig {
    PipelineConfig {
        access_ports: vec![ACCESS0, ACCESS1],
        core_port: CORE,
        core_mac: CORE_MAC,
        core_ipv4: CORE_IP,
        core_prefix_len: 24,
        next_hop: NH_IP,
        gateway_mac: GW_MAC,
        redirect_pps: 100,
        arp_retry_ns: SEC,
    }
}

fn mac(n: u8) -> EthernetAddress {
    EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, n])
}

/// Subscriber `n`: port, svlan, cvlan.
fn sub(n: u8, port: PortId, svlan: u16, cvlan: u16) -> SessionEntry {
    SessionEntry {
        id: 0x1000 + u64::from(n),
        access: AccessKey {
            port,
            svlan,
            cvlan,
            mac: mac(n),
            pppoe_session: 0,
        },
        ipv4: Ipv4Addr::new(100, 64, 0, n),
        gate_open: true,
        qos: crate::session::SessionQos::UNLIMITED,
        mtu: 0,
        mss_clamp: 0,
        acl: crate::acl::NO_ACL,
        counters: UsageCounters::default(),
        ipv6: SessionIpv6::NONE,
    }
}

const UNTAGGED: u8 = 10;
const DOT1Q: u8 = 11;
const QINQ: u8 = 12;

fn sessions() -> [SessionEntry; 3] {
    [
        sub(UNTAGGED, ACCESS0, 0, 0),
        sub(DOT1Q, ACCESS0, 0, 200),
        sub(QINQ, ACCESS1, 100, 201),
    ]
}

fn pipeline() -> Pipeline {
    let mut p = Pipeline::new(cfg(), 0x5eed);
    for s in sessions() {
        p.apply(SessionCommand::Upsert(s));
    }
    p
}

fn resolved() -> Pipeline {
    let mut p = pipeline();
    p.set_next_hop_mac(Some(NH_MAC));
    p
}

fn l2_of(e: &SessionEntry, dst: EthernetAddress) -> L2Header {
    let (svlan, cvlan) = e.access.tags();
    L2Header {
        dst,
        src: e.access.mac,
        svlan,
        cvlan,
        ethertype: EtherType::Ipv4,
    }
}

/// An upstream UDP frame from session `e` (source address `src`) to the Internet.
fn upstream_udp(e: &SessionEntry, src: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    build_ipv4_udp(&l2_of(e, GW_MAC), src, INTERNET, 40000, 53, 64, payload)
}

/// A downstream UDP frame from the Internet to `dst` as the next hop sends it.
fn downstream_udp(dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    downstream_udp_to(dst, 40000, payload)
}

/// [`downstream_udp`] to UDP port `dport`.
fn downstream_udp_to(dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let l2 = L2Header {
        dst: CORE_MAC,
        src: NH_MAC,
        svlan: None,
        cvlan: None,
        ethertype: EtherType::Ipv4,
    };
    build_ipv4_udp(&l2, INTERNET, dst, 53, dport, 57, payload)
}

/// Runs one burst; returns each frame's verdict and resulting bytes.
fn run(p: &mut Pipeline, now: u64, input: &[(PortId, &[u8])]) -> Vec<(Verdict, Vec<u8>)> {
    let mut frames: Vec<Frame> = input
        .iter()
        .map(|(port, b)| {
            let mut f = Frame::new();
            f.set_data(b).unwrap();
            f.port = *port;
            f
        })
        .collect();
    let mut verdicts = vec![Verdict::Drop(DropReason::Malformed); frames.len()];
    p.process_burst(now, &mut frames, &mut verdicts);
    verdicts
        .into_iter()
        .zip(frames.iter().map(|f| f.data().to_vec()))
        .collect()
}

fn run1(p: &mut Pipeline, now: u64, port: PortId, b: &[u8]) -> (Verdict, Vec<u8>) {
    run(p, now, &[(port, b)]).remove(0)
}

/// Checks that `out` is `input`'s IPv4 packet with TTL - 1 and a correct checksum, by
/// recomputing the checksum from scratch.
fn assert_ttl_decremented(input_ip: &[u8], out_ip: &[u8]) {
    let in_len = usize::from(u16::from_be_bytes([input_ip[2], input_ip[3]]));
    assert_eq!(out_ip.len(), in_len, "IPv4 packet length (padding dropped)");
    assert_eq!(out_ip[8], input_ip[8] - 1, "TTL decremented");
    let mut recomputed = out_ip[..20].to_vec();
    ipv4::fill_checksum(&mut recomputed);
    assert_eq!(
        &recomputed[10..12],
        &out_ip[10..12],
        "incremental checksum = recomputed"
    );
    assert_eq!(checksum::checksum(&out_ip[..20]), 0);
    // Everything else unchanged.
    assert_eq!(&out_ip[..8], &input_ip[..8]);
    assert_eq!(out_ip[9], input_ip[9]);
    assert_eq!(&out_ip[12..], &input_ip[12..in_len]);
}

#[test]
fn upstream_forward_untagged() {
    let mut p = resolved();
    let s = sessions()[0];
    let f = upstream_udp(&s, s.ipv4, b"q");
    assert_eq!(f.len(), 60, "padded to the Ethernet minimum");
    let (v, out) = run1(&mut p, 0, ACCESS0, &f);
    assert_eq!(v, Verdict::Forward(CORE));
    let (l2, off) = L2Header::parse(&out).unwrap();
    assert_eq!(off, 14);
    assert_eq!(l2.dst, NH_MAC);
    assert_eq!(l2.src, CORE_MAC);
    assert_eq!(
        (l2.svlan, l2.cvlan, l2.ethertype),
        (None, None, EtherType::Ipv4)
    );
    assert_ttl_decremented(&f[14..], &out[14..]);
    let ip = Ipv4Repr::parse(&out[14..]).unwrap();
    assert!(crate::wire::udp::verify_checksum(
        ip.src_addr,
        ip.dst_addr,
        &out[34..]
    ));
    let c = p.session_counters(s.id).unwrap();
    assert_eq!((c.ul_packets, c.ul_bytes), (1, 29));
    assert_eq!(p.counters().ul_forwarded, 1);
    assert_eq!(p.counters().ports[usize::from(ACCESS0)].rx_packets, 1);
    assert_eq!(p.counters().ports[usize::from(ACCESS0)].rx_bytes, 60);
}

#[test]
fn upstream_icmp_echo() {
    let mut p = resolved();
    let s = sessions()[0];
    let mut f = vec![0u8; 14 + 20 + 8 + 56];
    l2_of(&s, GW_MAC).emit(&mut f);
    Ipv4Repr {
        src_addr: s.ipv4,
        dst_addr: INTERNET,
        protocol: crate::wire::IpProtocol::Icmp,
        payload_len: 64,
        ttl: 64,
        tos: 0,
        ident: 0x5b1f,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    }
    .emit(&mut f[14..]);
    for (i, b) in f[42..].iter_mut().enumerate() {
        *b = i as u8;
    }
    Icmpv4Repr::echo(true, 0x0bad, 1).emit(&mut f[34..]);
    let (v, out) = run1(&mut p, 0, ACCESS0, &f);
    assert_eq!(v, Verdict::Forward(CORE));
    assert_ttl_decremented(&f[14..], &out[14..]);
    assert_eq!(Icmpv4Repr::parse(&out[34..]).unwrap().seq_no(), 1);
}

#[test]
fn vlan_strip_upstream_and_push_downstream() {
    let mut p = resolved();
    for s in sessions() {
        let f = upstream_udp(&s, s.ipv4, b"hello");
        let (v, out) = run1(&mut p, 0, s.access.port, &f);
        assert_eq!(v, Verdict::Forward(CORE), "session {:?}", s.access);
        let (l2, off) = L2Header::parse(&out).unwrap();
        assert_eq!((l2.svlan, l2.cvlan, off), (None, None, 14));
        let (_, in_off) = L2Header::parse(&f).unwrap();
        assert_ttl_decremented(&f[in_off..], &out[14..]);

        let d = downstream_udp(s.ipv4, b"answer");
        let (v, out) = run1(&mut p, 0, CORE, &d);
        assert_eq!(v, Verdict::Forward(s.access.port));
        let (l2, off) = L2Header::parse(&out).unwrap();
        assert_eq!(l2.dst, s.access.mac);
        assert_eq!(l2.src, GW_MAC);
        assert_eq!((l2.svlan, l2.cvlan), s.access.tags());
        assert_eq!(l2.ethertype, EtherType::Ipv4);
        assert_ttl_decremented(&d[14..], &out[off..]);
        let c = p.session_counters(s.id).unwrap();
        assert_eq!(
            c,
            UsageCounters {
                ul_packets: 1,
                ul_bytes: 33,
                dl_packets: 1,
                dl_bytes: 34
            }
        );
    }
    // QinQ downstream uses S-TAG 0x88a8 then C-TAG 0x8100.
    let s = sessions()[2];
    let (_, out) = run1(&mut p, 0, CORE, &downstream_udp(s.ipv4, b"x"));
    assert_eq!(
        &out[12..22],
        &[0x88, 0xa8, 0x00, 100, 0x81, 0x00, 0x00, 201, 0x08, 0x00]
    );
    assert_eq!(p.counters().dl_forwarded, 4);
}

#[test]
fn qinq_with_8100_outer_matches_session() {
    let mut p = resolved();
    let s = sessions()[2];
    let mut f = upstream_udp(&s, s.ipv4, b"x");
    f[12..14].copy_from_slice(&[0x81, 0x00]);
    assert_eq!(run1(&mut p, 0, ACCESS1, &f).0, Verdict::Forward(CORE));
}

#[test]
fn anti_spoof_drops_and_counts() {
    let mut p = resolved();
    let s = sessions()[1];
    let spoofed = upstream_udp(&s, Ipv4Addr::new(100, 64, 0, 99), b"x");
    let other_sub = upstream_udp(&s, sessions()[0].ipv4, b"x");
    let r = run(
        &mut p,
        0,
        &[
            (ACCESS0, &spoofed),
            (ACCESS0, &other_sub),
            (ACCESS0, &spoofed),
        ],
    );
    for (v, _) in &r {
        assert_eq!(*v, Verdict::Drop(DropReason::AntiSpoof));
    }
    assert_eq!(p.counters().drop_count(DropReason::AntiSpoof), 3);
    assert_eq!(p.session_counters(s.id).unwrap().ul_packets, 0);
    assert_eq!(p.counters().ul_forwarded, 0);
}

#[test]
fn unknown_subscriber_redirected_unchanged() {
    let mut p = resolved();
    let stranger = sub(77, ACCESS0, 0, 300);
    let f = upstream_udp(&stranger, stranger.ipv4, b"who am i");
    let (v, out) = run1(&mut p, 0, ACCESS0, &f);
    assert_eq!(v, Verdict::ToControlPlane);
    assert_eq!(out, f);
    // Same MAC but wrong VLAN or port is a different access key.
    let mut wrong_vlan = sessions()[1];
    wrong_vlan.access.cvlan = 201;
    let f = upstream_udp(&wrong_vlan, wrong_vlan.ipv4, b"x");
    assert_eq!(run1(&mut p, 0, ACCESS0, &f).0, Verdict::ToControlPlane);
    let s = sessions()[0];
    let f = upstream_udp(&s, s.ipv4, b"x");
    assert_eq!(run1(&mut p, 0, ACCESS1, &f).0, Verdict::ToControlPlane);
    assert_eq!(p.counters().redirected, 3);
}

/// A DHCP renewal from the bound subscriber `s`, unicast to the gateway.
fn dhcp_renewal(s: &SessionEntry) -> Vec<u8> {
    let gateway = Ipv4Addr::new(100, 64, 0, 1);
    build_ipv4_udp(&l2_of(s, GW_MAC), s.ipv4, gateway, 68, 67, 64, b"dhcp")
}

/// The subscriber `s` asking ARP for its gateway.
fn arp_for_gateway(s: &SessionEntry) -> Vec<u8> {
    build_arp(
        &L2Header {
            dst: EthernetAddress::BROADCAST,
            ..l2_of(s, GW_MAC)
        },
        &ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: s.access.mac,
            source_protocol_addr: s.ipv4,
            target_hardware_addr: EthernetAddress::ZERO,
            target_protocol_addr: Ipv4Addr::new(100, 64, 0, 1),
        },
    )
}

/// A shaper for a few subscribers: 64 buffers, 64 per class queue.
fn small_scheduler() -> SchedulerConfig {
    SchedulerConfig {
        max_subscribers: 4,
        max_packets: 64,
        class_queue_limit: [64, 64, 64, 64],
        drr_quantum: [0, 4 * 1514, 2 * 1514, 1514],
        port_rate_bps: None,
    }
}

#[test]
fn dhcp_and_arp_redirected_even_for_known_sessions() {
    let mut p = resolved();
    // dhclient's DISCOVER (unknown subscriber).
    let discover = crate::wire::frame::tests::dhcp_discover();
    let (v, out) = run1(&mut p, 0, ACCESS0, &discover);
    assert_eq!(v, Verdict::ToControlPlane);
    assert_eq!(out, discover);
    // A renewal from a bound subscriber, unicast to the gateway.
    let s = sessions()[1];
    let renew = dhcp_renewal(&s);
    assert_eq!(run1(&mut p, 0, ACCESS0, &renew).0, Verdict::ToControlPlane);
    // ARP for the gateway from a known subscriber.
    let arp = arp_for_gateway(&s);
    assert_eq!(run1(&mut p, 0, ACCESS0, &arp).0, Verdict::ToControlPlane);
    // PPPoE PADI.
    let mut padi = vec![0u8; 60];
    L2Header {
        dst: EthernetAddress::BROADCAST,
        src: mac(50),
        svlan: None,
        cvlan: None,
        ethertype: EtherType::PppoeDiscovery,
    }
    .emit(&mut padi);
    assert_eq!(run1(&mut p, 0, ACCESS0, &padi).0, Verdict::ToControlPlane);
    assert_eq!(p.counters().redirected, 4);
    assert_eq!(p.session_counters(s.id).unwrap().ul_packets, 0);
}

#[test]
fn redirect_rate_limit() {
    let mut p = resolved();
    let stranger = sub(77, ACCESS0, 0, 0);
    let f = upstream_udp(&stranger, stranger.ipv4, b"flood");
    let input: Vec<(PortId, &[u8])> = (0..250).map(|_| (ACCESS0, &f[..])).collect();
    let t0 = 10 * SEC;
    let r = run(&mut p, t0, &input);
    let to_cp = r
        .iter()
        .filter(|(v, _)| *v == Verdict::ToControlPlane)
        .count();
    assert_eq!(to_cp, 100);
    assert_eq!(
        p.counters().drop_count(DropReason::RedirectRateLimited),
        150
    );
    // Established sessions are not affected by the flood.
    let s = sessions()[0];
    assert_eq!(
        run1(&mut p, t0, ACCESS0, &upstream_udp(&s, s.ipv4, b"x")).0,
        Verdict::Forward(CORE)
    );
    // Half a second later, 50 more tokens.
    let r = run(&mut p, t0 + SEC / 2, &input);
    assert_eq!(
        r.iter()
            .filter(|(v, _)| *v == Verdict::ToControlPlane)
            .count(),
        50
    );
    assert_eq!(p.counters().redirected, 150);
}

/// A DHCP flood from unknown clients spends the shared redirect budget; a subscriber the
/// user plane holds still gets its lease renewals and ARP requests to the control plane,
/// through the established sessions' budget.
#[test]
fn a_dhcp_flood_leaves_established_subscribers_their_budget() {
    let mut p = resolved();
    let discover = crate::wire::frame::tests::dhcp_discover();
    let flood: Vec<(PortId, &[u8])> = (0..250).map(|_| (ACCESS0, &discover[..])).collect();
    let t0 = 10 * SEC;
    let r = run(&mut p, t0, &flood);
    let to_cp = |r: &[(Verdict, Vec<u8>)]| {
        r.iter()
            .filter(|(v, _)| *v == Verdict::ToControlPlane)
            .count()
    };
    assert_eq!(to_cp(&r), 100, "the shared budget");
    let s = sessions()[1];
    let renew = dhcp_renewal(&s);
    let arp = arp_for_gateway(&s);
    for f in [&renew, &arp] {
        assert_eq!(run1(&mut p, t0, ACCESS0, f).0, Verdict::ToControlPlane);
    }
    // The flood itself stays limited.
    assert_eq!(to_cp(&run(&mut p, t0, &flood)), 0);
    // A subscriber's own storm is limited too, by the established sessions' budget.
    let storm: Vec<(PortId, &[u8])> = (0..250).map(|_| (ACCESS0, &renew[..])).collect();
    assert_eq!(to_cp(&run(&mut p, t0, &storm)), 98);
}

#[test]
fn arp_reply_for_core_address() {
    let mut p = pipeline();
    let asker = EthernetAddress([0x52, 0x54, 0, 9, 9, 9]);
    let req = build_arp(
        &L2Header {
            dst: EthernetAddress::BROADCAST,
            src: asker,
            svlan: None,
            cvlan: None,
            ethertype: EtherType::Arp,
        },
        &ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: asker,
            source_protocol_addr: Ipv4Addr::new(198, 51, 100, 9),
            target_hardware_addr: EthernetAddress::ZERO,
            target_protocol_addr: CORE_IP,
        },
    );
    let (v, out) = run1(&mut p, 0, CORE, &req);
    assert_eq!(v, Verdict::Forward(CORE));
    let (l2, off) = L2Header::parse(&out).unwrap();
    assert_eq!(
        (l2.dst, l2.src, l2.ethertype),
        (asker, CORE_MAC, EtherType::Arp)
    );
    assert_eq!(
        ArpRepr::parse(&out[off..]).unwrap(),
        ArpRepr {
            operation: ArpOperation::Reply,
            source_hardware_addr: CORE_MAC,
            source_protocol_addr: CORE_IP,
            target_hardware_addr: asker,
            target_protocol_addr: Ipv4Addr::new(198, 51, 100, 9),
        }
    );
    assert_eq!(p.counters().arp_replies, 1);
    // A request for another address is not ours.
    let mut other = req.clone();
    other[41] = 77;
    assert_eq!(
        run1(&mut p, 0, CORE, &other).0,
        Verdict::Drop(DropReason::NotForUs)
    );
    assert_eq!(p.next_hop_mac(), None);
}

#[test]
fn next_hop_resolution() {
    let mut p = pipeline();
    let s = sessions()[0];
    let f = upstream_udp(&s, s.ipv4, b"x");
    assert_eq!(
        run1(&mut p, 0, ACCESS0, &f).0,
        Verdict::Drop(DropReason::NextHopUnresolved)
    );

    let mut generated: Vec<(PortId, Vec<u8>)> = Vec::new();
    p.drain_generated(0, &mut |port, b| generated.push((port, b.to_vec())));
    assert_eq!(generated.len(), 1);
    let (port, req) = &generated[0];
    assert_eq!(*port, CORE);
    let (l2, off) = L2Header::parse(req).unwrap();
    assert_eq!((l2.dst, l2.src), (EthernetAddress::BROADCAST, CORE_MAC));
    let arp = ArpRepr::parse(&req[off..]).unwrap();
    assert_eq!(arp.operation, ArpOperation::Request);
    assert_eq!(
        (arp.source_protocol_addr, arp.target_protocol_addr),
        (CORE_IP, NH_IP)
    );
    // Not repeated before the retry interval, repeated after it.
    p.drain_generated(SEC / 2, &mut |port, b| generated.push((port, b.to_vec())));
    assert_eq!(generated.len(), 1);
    p.drain_generated(SEC, &mut |port, b| generated.push((port, b.to_vec())));
    assert_eq!(generated.len(), 2);
    assert_eq!(p.counters().arp_requests, 2);

    // The next hop answers.
    let reply = build_arp(
        &L2Header {
            dst: CORE_MAC,
            src: NH_MAC,
            svlan: None,
            cvlan: None,
            ethertype: EtherType::Arp,
        },
        &ArpRepr {
            operation: ArpOperation::Reply,
            source_hardware_addr: NH_MAC,
            source_protocol_addr: NH_IP,
            target_hardware_addr: CORE_MAC,
            target_protocol_addr: CORE_IP,
        },
    );
    assert_eq!(
        run1(&mut p, SEC, CORE, &reply).0,
        Verdict::Drop(DropReason::Consumed)
    );
    assert_eq!(p.next_hop_mac(), Some(NH_MAC));
    assert_eq!(p.counters().arp_learned, 1);
    p.drain_generated(10 * SEC, &mut |port, b| generated.push((port, b.to_vec())));
    assert_eq!(generated.len(), 2, "no ARP once resolved");
    let (v, out) = run1(&mut p, SEC, ACCESS0, &f);
    assert_eq!(v, Verdict::Forward(CORE));
    assert_eq!(&out[..6], &NH_MAC.0);
}

#[test]
fn downstream_checks() {
    let mut p = resolved();
    let (v, _) = run1(
        &mut p,
        0,
        CORE,
        &downstream_udp(Ipv4Addr::new(100, 64, 0, 200), b"x"),
    );
    assert_eq!(v, Verdict::Drop(DropReason::NoSession));
    let mut wrong_mac = downstream_udp(sessions()[0].ipv4, b"x");
    wrong_mac[0] = 0x04;
    assert_eq!(
        run1(&mut p, 0, CORE, &wrong_mac).0,
        Verdict::Drop(DropReason::NotForUs)
    );
    // TTL 1 (answered with an ICMP error, see the icmp tests).
    let mut ttl1 = downstream_udp(sessions()[0].ipv4, b"x");
    ttl1[14 + 8] = 1;
    ipv4::fill_checksum(&mut ttl1[14..34]);
    assert_eq!(run1(&mut p, 0, CORE, &ttl1).0, Verdict::Forward(CORE));
    assert_eq!(p.counters().drop_count(DropReason::TtlExceeded), 1);
    let mut bad_csum = downstream_udp(sessions()[0].ipv4, b"x");
    bad_csum[14 + 10] ^= 0xff;
    assert_eq!(
        run1(&mut p, 0, CORE, &bad_csum).0,
        Verdict::Drop(DropReason::Malformed)
    );
    let mut v6 = downstream_udp(sessions()[0].ipv4, b"x");
    v6[12..14].copy_from_slice(&[0x86, 0xdd]);
    assert_eq!(
        run1(&mut p, 0, CORE, &v6).0,
        Verdict::Drop(DropReason::UnsupportedEtherType)
    );
    // A port that is neither access nor core.
    assert_eq!(
        run1(&mut p, 0, 9, &downstream_udp(sessions()[0].ipv4, b"x")).0,
        Verdict::Drop(DropReason::NotForUs)
    );
}

#[test]
fn upstream_checks() {
    let mut p = resolved();
    let s = sessions()[0];
    // Not addressed to the gateway MAC.
    let f = build_ipv4_udp(
        &l2_of(&s, EthernetAddress([2, 9, 9, 9, 9, 9])),
        s.ipv4,
        INTERNET,
        1,
        2,
        64,
        b"x",
    );
    assert_eq!(
        run1(&mut p, 0, ACCESS0, &f).0,
        Verdict::Drop(DropReason::NotForUs)
    );
    // TTL 1 (answered with an ICMP error, see the icmp tests).
    let f = build_ipv4_udp(&l2_of(&s, GW_MAC), s.ipv4, INTERNET, 1, 2, 1, b"x");
    assert_eq!(run1(&mut p, 0, ACCESS0, &f).0, Verdict::Forward(ACCESS0));
    assert_eq!(p.counters().drop_count(DropReason::TtlExceeded), 1);
    // Gate closed (update keeps the session).
    p.apply(SessionCommand::Upsert(SessionEntry {
        gate_open: false,
        ..s
    }));
    let f = upstream_udp(&s, s.ipv4, b"x");
    assert_eq!(
        run1(&mut p, 0, ACCESS0, &f).0,
        Verdict::Drop(DropReason::GateClosed)
    );
    assert_eq!(
        run1(&mut p, 0, CORE, &downstream_udp(s.ipv4, b"x")).0,
        Verdict::Drop(DropReason::GateClosed)
    );
    p.apply(SessionCommand::Upsert(s));
    assert_eq!(run1(&mut p, 0, ACCESS0, &f).0, Verdict::Forward(CORE));
    // Truncated IPv4.
    assert_eq!(
        run1(&mut p, 0, ACCESS0, &f[..30]).0,
        Verdict::Drop(DropReason::Malformed)
    );
    // IPv6 from a subscriber.
    let mut v6 = f.clone();
    v6[12..14].copy_from_slice(&[0x86, 0xdd]);
    assert_eq!(
        run1(&mut p, 0, ACCESS0, &v6).0,
        Verdict::Drop(DropReason::UnsupportedEtherType)
    );
}

#[test]
fn session_removal_stops_forwarding_and_returns_counters() {
    let mut p = resolved();
    let s = sessions()[1];
    let up = upstream_udp(&s, s.ipv4, b"0123456789");
    let down = downstream_udp(s.ipv4, b"abc");
    run(&mut p, 0, &[(ACCESS0, &up), (ACCESS0, &up), (CORE, &down)]);
    let final_counters = p.apply(SessionCommand::Remove(s.id)).unwrap();
    assert_eq!(
        final_counters,
        UsageCounters {
            ul_packets: 2,
            ul_bytes: 2 * 38,
            dl_packets: 1,
            dl_bytes: 31
        }
    );
    assert_eq!(p.session_count(), 2);
    assert_eq!(p.session_counters(s.id), None);
    assert_eq!(p.apply(SessionCommand::Remove(s.id)), None);
    assert_eq!(run1(&mut p, 0, ACCESS0, &up).0, Verdict::ToControlPlane);
    assert_eq!(
        run1(&mut p, 0, CORE, &down).0,
        Verdict::Drop(DropReason::NoSession)
    );
}

#[test]
fn conflicting_upsert_rejected() {
    let mut p = pipeline();
    let mut dup = sessions()[0];
    dup.id = 99;
    assert!(p.try_upsert(dup).is_err());
    assert_eq!(p.apply(SessionCommand::Upsert(dup)), None);
    assert_eq!(p.counters().session_rejects, 2);
    assert_eq!(p.session_count(), 3);
}

#[test]
fn large_bursts_are_chunked_and_mixed() {
    let mut p = resolved();
    let s = sessions();
    let mut input: Vec<Vec<u8>> = Vec::new();
    let mut ports = Vec::new();
    for i in 0..(3 * BURST + 5) {
        let e = &s[i % 3];
        if i % 2 == 0 {
            input.push(upstream_udp(e, e.ipv4, b"u"));
            ports.push(e.access.port);
        } else {
            input.push(downstream_udp(e.ipv4, b"d"));
            ports.push(CORE);
        }
    }
    let refs: Vec<(PortId, &[u8])> = ports
        .iter()
        .copied()
        .zip(input.iter().map(|v| &v[..]))
        .collect();
    let r = run(&mut p, 0, &refs);
    for (i, (v, _)) in r.iter().enumerate() {
        let expect = if i % 2 == 0 {
            Verdict::Forward(CORE)
        } else {
            Verdict::Forward(s[i % 3].access.port)
        };
        assert_eq!(*v, expect, "frame {i}");
    }
    assert_eq!(
        p.counters().ul_forwarded + p.counters().dl_forwarded,
        r.len() as u64
    );
    // Fewer verdict slots than frames: only the first frames are processed.
    let mut frames = [Frame::new(), Frame::new()];
    frames[0].set_data(&input[0]).unwrap();
    frames[0].port = s[0].access.port;
    let mut verdicts = [Verdict::ToControlPlane; 1];
    p.process_burst(0, &mut frames, &mut verdicts);
    assert_eq!(verdicts[0], Verdict::Forward(CORE));
}

#[test]
fn drop_reason_names() {
    for (i, r) in DropReason::ALL.iter().enumerate() {
        assert_eq!(r.index(), i);
        assert!(
            r.name()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_')
        );
    }
    let mut c = Counters::default();
    c.count_tx(CORE, 100);
    c.count_tx_error(CORE);
    c.count_tx(200, 1);
    assert_eq!(c.ports[usize::from(CORE)].tx_bytes, 100);
    assert_eq!(c.drop_count(DropReason::TxFull), 1);
    assert_eq!(c.total_drops(), 1);
}

fn valid_frames() -> Vec<(PortId, Vec<u8>)> {
    let s = sessions();
    let mut v = Vec::new();
    for e in &s {
        v.push((e.access.port, upstream_udp(e, e.ipv4, b"payload")));
        v.push((CORE, downstream_udp(e.ipv4, b"payload")));
    }
    v.push((ACCESS0, crate::wire::frame::tests::dhcp_discover()));
    v
}

/// A packet buffer that is not a [`Frame`], laid out like a port's own receive buffer: a
/// fixed allocation with `headroom` bytes in front of the data.
pub(crate) struct PortBuffer {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    port: PortId,
}

impl PortBuffer {
    pub(crate) fn new(port: PortId, data: &[u8], headroom: usize) -> PortBuffer {
        let mut buf = vec![0xee; headroom + data.len() + 64];
        buf[headroom..headroom + data.len()].copy_from_slice(data);
        PortBuffer {
            buf,
            start: headroom,
            end: headroom + data.len(),
            port,
        }
    }
}

impl PacketBuffer for PortBuffer {
    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }
    fn push_front(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.start {
            return None;
        }
        self.start -= n;
        Some(&mut self.buf[self.start..self.start + n])
    }
    fn pull_front(&mut self, n: usize) {
        self.start += n.min(self.end - self.start);
    }
    fn truncate(&mut self, n: usize) {
        self.end = self.end.min(self.start + n);
    }
    fn port(&self) -> PortId {
        self.port
    }
    fn move_into(&mut self, spare: &mut Frame) -> bool {
        spare.port = self.port;
        spare.set_data(self.data()).is_ok()
    }
}

/// The same burst through `process_burst` on [`Frame`]s and on [`PortBuffer`]s with
/// `headroom`: the same verdicts, bytes and counters.
fn assert_buffers_agree(input: &[(PortId, Vec<u8>)], headroom: usize) {
    let mut on_frames = resolved();
    let mut on_buffers = resolved();
    let refs: Vec<(PortId, &[u8])> = input.iter().map(|(port, b)| (*port, &b[..])).collect();
    let want = run(&mut on_frames, 0, &refs);
    let mut bufs: Vec<PortBuffer> = input
        .iter()
        .map(|(port, b)| PortBuffer::new(*port, b, headroom))
        .collect();
    let mut verdicts = vec![Verdict::Drop(DropReason::Malformed); bufs.len()];
    on_buffers.process_burst(0, &mut bufs, &mut verdicts);
    let got: Vec<(Verdict, Vec<u8>)> = verdicts
        .into_iter()
        .zip(bufs.iter().map(|b| b.data().to_vec()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(on_buffers.counters(), on_frames.counters());
}

#[test]
fn any_packet_buffer_is_processed_like_a_frame() {
    let mut input = valid_frames();
    let s = sessions();
    // Tags pushed downstream need headroom; with none the frame is dropped as malformed
    // by both (a Frame always has enough), so only ample headroom is compared there.
    input.push((CORE, downstream_udp(s[1].ipv4, b"tagged")));
    assert_buffers_agree(&input, crate::packet::HEADROOM);
    assert_buffers_agree(&valid_frames()[..1], 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Valid frames, mutated, give the same results in any buffer with DPDK's headroom.
    #[test]
    fn port_buffers_agree_with_frames(idx in 0usize..7,
                                      flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4)) {
        let (port, mut f) = valid_frames().swap_remove(idx);
        for (at, x) in flips {
            let n = f.len();
            f[at % n] ^= x;
        }
        assert_buffers_agree(&[(port, f)], crate::packet::HEADROOM);
    }

    /// Arbitrary bytes on any port never panic, and every verdict is sane.
    #[test]
    fn process_burst_never_panics(input in proptest::collection::vec(
            (0u8..20, proptest::collection::vec(any::<u8>(), 0..200)), 0..70), now in any::<u64>()) {
        let mut p = resolved();
        let refs: Vec<(PortId, &[u8])> = input.iter().map(|(port, b)| (*port, &b[..])).collect();
        let r = run(&mut p, now, &refs);
        for (v, _) in r {
            if let Verdict::Forward(port) = v {
                prop_assert!(port == CORE || port == ACCESS0 || port == ACCESS1);
            }
        }
        let mut sink = 0usize;
        p.drain_generated(now, &mut |_, b| sink += b.len());
    }

    /// Valid frames with random byte flips and truncations never panic.
    #[test]
    fn mutated_frames_never_panic(idx in 0usize..7, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
                                  cut in any::<usize>()) {
        let mut p = resolved();
        let (port, mut f) = valid_frames().swap_remove(idx);
        for (at, x) in flips {
            let n = f.len();
            f[at % n] ^= x;
        }
        let cut = cut % (f.len() + 1);
        let r = run(&mut p, 0, &[(port, &f[..cut]), (port, &f)]);
        prop_assert_eq!(r.len(), 2);
    }
}

mod icmp;
mod ipv6;
mod nat;
mod pppoe;
mod route;
