//! Static routes on the core side: longest prefix match to several next hops, each
//! resolved by ARP, and ICMP net unreachable where no route applies.

use super::*;

const NH2_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 3);
const NH2_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0xaa, 0xbb, 0x03]);
const NH3_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 4);
const NH3_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0xaa, 0xbb, 0x04]);
const DOC_NET: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 0);

fn route(prefix: Ipv4Addr, len: u8, next_hop: Ipv4Addr) -> StaticRoute {
    StaticRoute {
        prefix,
        len,
        next_hop,
    }
}

fn to(s: &SessionEntry, dst: Ipv4Addr) -> Vec<u8> {
    build_ipv4_udp(&l2_of(s, GW_MAC), s.ipv4, dst, 40000, 53, 64, b"x")
}

/// An ARP reply from `ip` at `mac` to the core address, as the pipeline receives it.
fn arp_reply(ip: Ipv4Addr, mac: EthernetAddress) -> Vec<u8> {
    build_arp(
        &L2Header {
            dst: CORE_MAC,
            src: mac,
            svlan: None,
            cvlan: None,
            ethertype: EtherType::Arp,
        },
        &ArpRepr {
            operation: ArpOperation::Reply,
            source_hardware_addr: mac,
            source_protocol_addr: ip,
            target_hardware_addr: CORE_MAC,
            target_protocol_addr: CORE_IP,
        },
    )
}

/// The targets of the ARP requests `p` sends at `now`.
fn arp_targets(p: &mut Pipeline, now: u64) -> Vec<Ipv4Addr> {
    let mut targets = Vec::new();
    p.drain_generated(now, &mut |port, b| {
        assert_eq!(port, CORE);
        let (_, off) = L2Header::parse(b).unwrap();
        targets.push(ArpRepr::parse(&b[off..]).unwrap().target_protocol_addr);
    });
    targets
}

#[test]
fn longest_prefix_picks_the_next_hop_each_resolved_by_arp() {
    let mut p = resolved();
    let s = sessions()[0];
    p.set_routes(&[
        route(DOC_NET, 24, NH2_IP),
        route(Ipv4Addr::new(192, 0, 2, 128), 25, NH3_IP),
    ])
    .unwrap();
    assert_eq!(p.next_hop_mac(), Some(NH_MAC), "the default's MAC is kept");
    // Unresolved next hops: dropped, and ARP asks for both (not for the default's).
    let low = Ipv4Addr::new(192, 0, 2, 9);
    let high = Ipv4Addr::new(192, 0, 2, 200);
    assert_eq!(
        run1(&mut p, 0, ACCESS0, &to(&s, low)).0,
        Verdict::Drop(DropReason::NextHopUnresolved)
    );
    assert_eq!(arp_targets(&mut p, SEC), [NH2_IP, NH3_IP]);
    assert!(arp_targets(&mut p, SEC + 1).is_empty(), "retry interval");
    for (ip, mac) in [(NH2_IP, NH2_MAC), (NH3_IP, NH3_MAC)] {
        assert_eq!(
            run1(&mut p, SEC, CORE, &arp_reply(ip, mac)).0,
            Verdict::Drop(DropReason::Consumed)
        );
    }
    assert!(arp_targets(&mut p, 3 * SEC).is_empty(), "all resolved");
    for (dst, mac) in [(low, NH2_MAC), (high, NH3_MAC), (INTERNET, NH_MAC)] {
        let (v, out) = run1(&mut p, 3 * SEC, ACCESS0, &to(&s, dst));
        assert_eq!(v, Verdict::Forward(CORE), "{dst}");
        assert_eq!(&out[..6], &mac.0, "{dst}");
        assert_eq!(&out[6..12], &CORE_MAC.0);
    }
    // Replacing the routes keeps what ARP learned; no routes means the default only.
    p.set_routes(&[route(DOC_NET, 24, NH2_IP)]).unwrap();
    let (_, out) = run1(&mut p, 3 * SEC, ACCESS0, &to(&s, high));
    assert_eq!(&out[..6], &NH2_MAC.0);
    p.set_routes(&[]).unwrap();
    let (_, out) = run1(&mut p, 3 * SEC, ACCESS0, &to(&s, low));
    assert_eq!(&out[..6], &NH_MAC.0);
}

#[test]
fn a_route_to_0_0_0_0_replaces_the_default() {
    let mut p = resolved();
    p.set_routes(&[route(Ipv4Addr::UNSPECIFIED, 0, NH2_IP)])
        .unwrap();
    run1(&mut p, 0, CORE, &arp_reply(NH2_IP, NH2_MAC));
    let s = sessions()[0];
    let (v, out) = run1(&mut p, 0, ACCESS0, &to(&s, INTERNET));
    assert_eq!(v, Verdict::Forward(CORE));
    assert_eq!(&out[..6], &NH2_MAC.0);
}

#[test]
fn no_route_is_answered_with_net_unreachable() {
    let mut p = Pipeline::new(
        PipelineConfig {
            next_hop: Ipv4Addr::UNSPECIFIED,
            ..cfg()
        },
        0x5eed,
    );
    for s in sessions() {
        p.apply(SessionCommand::Upsert(s));
    }
    p.set_routes(&[route(DOC_NET, 24, NH2_IP)]).unwrap();
    run1(&mut p, 0, CORE, &arp_reply(NH2_IP, NH2_MAC));
    let s = sessions()[1]; // one 802.1Q tag
    let (v, out) = run1(&mut p, 0, ACCESS0, &to(&s, INTERNET));
    assert_eq!(v, Verdict::Forward(ACCESS0));
    let (l2, l3) = L2Header::parse(&out).unwrap();
    assert_eq!(
        (l2.dst, l2.src, l2.cvlan),
        (s.access.mac, GW_MAC, Some(200))
    );
    let ip = &out[l3..];
    assert_eq!(ipv4::Header::parse(ip).unwrap().dst(), s.ipv4);
    assert_eq!((ip[20], ip[21]), (3, 0), "ICMP net unreachable");
    assert_eq!(p.counters().drop_count(DropReason::NoRoute), 1);
    assert_eq!(p.counters().icmp_errors_sent, 1);
    // What the route covers still goes.
    let (v, _) = run1(&mut p, 0, ACCESS0, &to(&s, Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(v, Verdict::Forward(CORE));
}

#[test]
fn errors_toward_the_core_follow_the_routes() {
    let mut p = resolved();
    p.set_routes(&[route(DOC_NET, 24, NH2_IP)]).unwrap();
    run1(&mut p, 0, CORE, &arp_reply(NH2_IP, NH2_MAC));
    let s = sessions()[0];
    let l2 = L2Header {
        dst: CORE_MAC,
        src: NH2_MAC,
        svlan: None,
        cvlan: None,
        ethertype: EtherType::Ipv4,
    };
    let f = build_ipv4_udp(&l2, Ipv4Addr::new(192, 0, 2, 7), s.ipv4, 53, 40000, 1, b"x");
    let (v, out) = run1(&mut p, 0, CORE, &f);
    assert_eq!(v, Verdict::Forward(CORE));
    assert_eq!(
        &out[..6],
        &NH2_MAC.0,
        "time exceeded goes back through 198.51.100.3"
    );
}
