//! NAT44 in the pipeline: sources translated upstream, destinations back downstream,
//! hairpinning between two subscribers, refusals, and release with the session.

use super::*;
use crate::nat::{Ipv4Prefix, Nat, NatConfig, NatLogKind};
use crate::session::SessionQos;

const OUTSIDE: Ipv4Prefix = Ipv4Prefix::new(Ipv4Addr::new(192, 0, 2, 0), 30);
const INSIDE: Ipv4Prefix = Ipv4Prefix::new(Ipv4Addr::new(100, 64, 0, 0), 10);

fn nat_pipeline() -> Pipeline {
    let mut p = resolved();
    let cfg = NatConfig {
        block_size: 1024,
        ..NatConfig::with_pool(vec![OUTSIDE])
    };
    p.set_nat(Nat::new(&cfg, 9).unwrap(), vec![INSIDE]);
    p
}

/// (source, destination, source port, destination port) of the IPv4 UDP packet at `ip`,
/// after checking both checksums.
fn udp_endpoints(ip: &[u8]) -> (Ipv4Addr, Ipv4Addr, u16, u16) {
    let h = ipv4::Header::parse(ip).unwrap();
    assert!(ipv4::verify_checksum(ip), "IPv4 checksum");
    let total = usize::from(h.total_len());
    let udp = &ip[20..total];
    let pseudo = checksum::pseudo_header_ipv4(h.src(), h.dst(), 17, udp.len() as u16);
    assert_eq!(
        checksum::fold(checksum::combine(pseudo, checksum::sum(udp))),
        0xffff,
        "UDP checksum"
    );
    (
        h.src(),
        h.dst(),
        u16::from_be_bytes([udp[0], udp[1]]),
        u16::from_be_bytes([udp[2], udp[3]]),
    )
}

#[test]
fn upstream_source_is_translated_and_the_answer_comes_back() {
    let mut p = nat_pipeline();
    let s = sessions()[0];
    let (v, out) = run1(&mut p, SEC, ACCESS0, &upstream_udp(&s, s.ipv4, b"query"));
    assert_eq!(v, Verdict::Forward(CORE));
    let (src, dst, sport, dport) = udp_endpoints(&out[14..]);
    assert!(OUTSIDE.contains(src), "source {src} not in the pool");
    assert_eq!((dst, dport), (INTERNET, 53));
    assert!(sport >= 1024, "port {sport}");
    assert_eq!(p.nat().unwrap().mappings_active(), 1);
    // The answer to the outside endpoint reaches the subscriber's inside endpoint.
    let (v, out) = run1(&mut p, SEC, CORE, &downstream_udp_to(src, sport, b"answer"));
    assert_eq!(v, Verdict::Forward(ACCESS0));
    let (src2, dst2, _, dport2) = udp_endpoints(&out[14..]);
    assert_eq!((src2, dst2, dport2), (INTERNET, s.ipv4, 40000));
    // Nothing mapped there: refused and counted.
    let (v, _) = run1(
        &mut p,
        SEC,
        CORE,
        &downstream_udp_to(src, sport.wrapping_add(1), b"answer"),
    );
    assert_eq!(v, Verdict::Drop(DropReason::NatRefused));
    assert_eq!(p.counters().drop_count(DropReason::NatRefused), 1);
}

#[test]
fn a_mapping_that_remembers_another_slot_still_reaches_its_session() {
    let mut p = nat_pipeline();
    let (a, b) = (sessions()[0], sessions()[2]);
    let query = upstream_udp(&a, a.ipv4, b"query");
    let (v, out) = run1(&mut p, SEC, ACCESS0, &query);
    assert_eq!(v, Verdict::Forward(CORE));
    let (outside, _, port, _) = udp_endpoints(&out[14..]);
    // The mapping now names another session's slot (b, on the other access port), then a
    // slot past the table, as the owner of a's flow.
    let b_slot = p.sessions().lookup_ipv4(b.ipv4).unwrap();
    for wrong in [b_slot, 4096] {
        let mut ip = query[14..].to_vec();
        let nat = p.nat_mut().unwrap();
        nat.translate_outbound_owned(SEC, a.ipv4, a.id, wrong, &mut ip)
            .unwrap();
        let (v, out) = run1(
            &mut p,
            SEC,
            CORE,
            &downstream_udp_to(outside, port, b"answer"),
        );
        assert_eq!(v, Verdict::Forward(ACCESS0), "owner {wrong}");
        assert_eq!(&out[..6], &a.access.mac.0[..], "owner {wrong}");
        assert_eq!(udp_endpoints(&out[14..]).1, a.ipv4, "owner {wrong}");
    }
}

#[test]
fn a_session_outside_the_inside_prefixes_keeps_its_address() {
    let mut p = resolved();
    let cfg = NatConfig::with_pool(vec![OUTSIDE]);
    let only_10 = Ipv4Prefix::new(Ipv4Addr::new(10, 0, 0, 0), 8);
    p.set_nat(Nat::new(&cfg, 9).unwrap(), vec![only_10]);
    let s = sessions()[0];
    let (v, out) = run1(&mut p, SEC, ACCESS0, &upstream_udp(&s, s.ipv4, b"q"));
    assert_eq!(v, Verdict::Forward(CORE));
    assert_eq!(udp_endpoints(&out[14..]).0, s.ipv4);
    assert_eq!(p.nat().unwrap().mappings_active(), 0);
}

#[test]
fn hairpinned_packets_go_down_to_the_other_subscriber() {
    let mut p = nat_pipeline();
    let [a, _, b] = sessions(); // untagged on ACCESS0, QinQ on ACCESS1
    // A opens a mapping; B sends to A's outside endpoint.
    let (_, out) = run1(&mut p, SEC, ACCESS0, &upstream_udp(&a, a.ipv4, b"hello"));
    let (a_out, _, a_port, _) = udp_endpoints(&out[14..]);
    let to_a = build_ipv4_udp(&l2_of(&b, GW_MAC), b.ipv4, a_out, 5555, a_port, 64, b"hi A");
    let (v, out) = run1(&mut p, SEC, ACCESS1, &to_a);
    assert_eq!(v, Verdict::Forward(ACCESS0));
    let (l2, l3) = L2Header::parse(&out).unwrap();
    assert_eq!((l2.dst, l2.src, l2.svlan), (a.access.mac, GW_MAC, None));
    let (src, dst, sport, dport) = udp_endpoints(&out[l3..]);
    assert_eq!((dst, dport), (a.ipv4, 40000), "A's inside endpoint");
    assert!(
        OUTSIDE.contains(src),
        "B appears as its outside mapping, not {src}"
    );
    assert_ne!(src, b.ipv4);
    assert_ne!((src, sport), (a_out, a_port));
    assert_eq!(out[l3 + 8], 63, "TTL decremented once");
}

/// B's packet to A's outside mapping (A's mapping opened first), as B sends it.
fn hairpin_b_to_a(p: &mut Pipeline) -> Vec<u8> {
    let [a, _, b] = sessions();
    let (v, out) = run1(p, SEC, ACCESS0, &upstream_udp(&a, a.ipv4, b"hello"));
    assert_eq!(v, Verdict::Forward(CORE));
    let (a_out, _, a_port, _) = udp_endpoints(&out[14..]);
    build_ipv4_udp(
        &l2_of(&b, GW_MAC),
        b.ipv4,
        a_out,
        5555,
        a_port,
        64,
        &[7; 100],
    )
}

#[test]
fn a_hairpinned_packet_counts_as_the_senders_upload() {
    let mut p = nat_pipeline();
    let [a, _, b] = sessions();
    let to_a = hairpin_b_to_a(&mut p);
    let ip_len = (to_a.len() - L2Header::parse(&to_a).unwrap().1) as u64;
    let (a_before, b_before) = (
        p.session_counters(a.id).unwrap(),
        p.session_counters(b.id).unwrap(),
    );
    let (v, _) = run1(&mut p, SEC, ACCESS1, &to_a);
    assert_eq!(v, Verdict::Forward(ACCESS0));
    let (a_after, b_after) = (
        p.session_counters(a.id).unwrap(),
        p.session_counters(b.id).unwrap(),
    );
    assert_eq!(b_after.ul_packets - b_before.ul_packets, 1, "B sent it");
    assert_eq!(b_after.ul_bytes - b_before.ul_bytes, ip_len);
    assert_eq!(b_after.dl_packets, b_before.dl_packets);
    assert_eq!(a_after.dl_packets - a_before.dl_packets, 1, "A received it");
    assert_eq!(a_after.dl_bytes - a_before.dl_bytes, ip_len);
    assert_eq!(a_after.ul_packets, a_before.ul_packets);
}

#[test]
fn a_fragmented_hairpinned_datagram_reaches_the_other_subscriber_whole() {
    let mut p = nat_pipeline();
    let [a, _, b] = sessions();
    let to_a = hairpin_b_to_a(&mut p);
    let l3 = L2Header::parse(&to_a).unwrap().1;
    let (first, second) = crate::wire::frame::split_ipv4(&to_a, l3, 64);
    let out = run(
        &mut p,
        SEC,
        &[(ACCESS1, &first[..]), (ACCESS1, &second[..])],
    );
    for (v, f) in &out {
        assert_eq!(*v, Verdict::Forward(ACCESS0));
        let (l2, l3) = L2Header::parse(f).unwrap();
        assert_eq!(l2.dst, a.access.mac);
        let h = ipv4::Header::parse(&f[l3..]).unwrap();
        assert_eq!(h.dst(), a.ipv4);
        assert!(OUTSIDE.contains(h.src()), "B as its outside address");
        assert!(ipv4::verify_checksum(&f[l3..]));
    }
    assert_eq!(p.session_counters(b.id).unwrap().ul_packets, 2);
    assert_eq!(p.counters().drop_count(DropReason::NatRefused), 0);
}

#[test]
fn a_hairpinned_packet_passes_the_senders_policer() {
    let sched = small_scheduler();
    let mut p = Pipeline::with_qos(cfg(), 9, sched);
    p.set_next_hop_mac(Some(NH_MAC));
    let [a, _, mut b] = sessions();
    let rate = 80_000;
    b.qos = SessionQos {
        dl_rate_bps: None,
        ul_rate_bps: Some(rate),
    };
    for s in [a, b] {
        p.apply(SessionCommand::Upsert(s));
    }
    let cfg = NatConfig {
        block_size: 1024,
        ..NatConfig::with_pool(vec![OUTSIDE])
    };
    p.set_nat(Nat::new(&cfg, 9).unwrap(), vec![INSIDE]);
    let to_a = hairpin_b_to_a(&mut p);
    let burst: Vec<(PortId, &[u8])> = (0..100).map(|_| (ACCESS1, &to_a[..])).collect();
    let out = run(&mut p, SEC, &burst);
    let passed = out
        .iter()
        .filter(|(v, _)| *v == Verdict::Forward(ACCESS0))
        .count() as u64;
    let policed = p.counters().drop_count(DropReason::Policed);
    assert_eq!(passed + policed, 100);
    // At one instant the policer lets through what each of its two buckets holds in whole
    // packets of 128 bytes.
    let bucket = u64::from(crate::pipeline::qos::policer_burst_bytes(rate));
    assert_eq!(passed, 2 * (bucket / 128));
    assert_eq!(p.session_counters(b.id).unwrap().ul_packets, passed);
    assert_eq!(p.session_counters(a.id).unwrap().dl_packets, passed);
}

#[test]
fn removing_the_session_releases_its_blocks_and_logs_it() {
    let mut p = nat_pipeline();
    let s = sessions()[0];
    run1(&mut p, SEC, ACCESS0, &upstream_udp(&s, s.ipv4, b"q"));
    assert_eq!(p.nat().unwrap().subscribers_active(), 1);
    p.apply_at(2 * SEC, SessionCommand::Remove(s.id));
    let nat = p.nat_mut().unwrap();
    assert_eq!(nat.subscribers_active(), 0);
    assert_eq!(nat.mappings_active(), 0);
    let mut events = Vec::new();
    nat.drain_events(|e| events.push(*e));
    let kinds: Vec<NatLogKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [NatLogKind::BlockAllocated, NatLogKind::BlockReleased]
    );
    assert!(
        events
            .iter()
            .all(|e| e.inside == s.ipv4 && e.session_tag == s.id)
    );
}

#[test]
fn time_exceeded_for_an_outside_address_quotes_the_packet_as_it_arrived() {
    let mut p = nat_pipeline();
    let s = sessions()[0];
    let (_, out) = run1(&mut p, SEC, ACCESS0, &upstream_udp(&s, s.ipv4, b"query"));
    let (outside, _, port, _) = udp_endpoints(&out[14..]);
    // An answer that dies here: its error goes back to the Internet host and must not
    // quote the subscriber's inside address or port.
    let mut dying = downstream_udp_to(outside, port, b"answer");
    dying[14 + 8] = 1;
    ipv4::fill_checksum(&mut dying[14..34]);
    let (v, out) = run1(&mut p, SEC, CORE, &dying);
    assert_eq!(v, Verdict::Forward(CORE));
    assert_eq!(p.counters().drop_count(DropReason::TtlExceeded), 1);
    let error = &out[14..];
    assert_eq!(error[9], 1, "ICMP");
    let icmp = &error[20..];
    assert_eq!((icmp[0], icmp[1]), (11, 0), "time exceeded in transit");
    let quoted = &icmp[8..];
    let quoted_dst = Ipv4Addr::new(quoted[16], quoted[17], quoted[18], quoted[19]);
    let quoted_dport = u16::from_be_bytes([quoted[22], quoted[23]]);
    assert_eq!((quoted_dst, quoted_dport), (outside, port));
    assert!(
        !out.windows(4).any(|w| w == s.ipv4.octets()),
        "the inside address {} leaks in the error",
        s.ipv4
    );
    // The mapping is untouched and still answers.
    let (v, _) = run1(
        &mut p,
        SEC,
        CORE,
        &downstream_udp_to(outside, port, b"again"),
    );
    assert_eq!(v, Verdict::Forward(ACCESS0));
}

/// The frames of a burst that mixes every NAT case: subscribers' packets (a new mapping,
/// an existing one, a hairpin), answers to outside endpoints, one to an unmapped port, one
/// whose TTL is spent, and a downstream packet to an inside address.
fn mixed_nat_burst(outside: Ipv4Addr, port: u16) -> Vec<(PortId, Vec<u8>)> {
    let [a, _, b] = sessions();
    let mut dying = downstream_udp_to(outside, port, b"dies");
    dying[14 + 8] = 1;
    ipv4::fill_checksum(&mut dying[14..34]);
    let hairpin = build_ipv4_udp(&l2_of(&b, GW_MAC), b.ipv4, outside, 5555, port, 64, b"hp");
    vec![
        (CORE, downstream_udp_to(outside, port, b"answer 1")),
        (ACCESS0, upstream_udp(&a, a.ipv4, b"again")),
        (
            CORE,
            downstream_udp_to(outside, port.wrapping_add(1), b"unmapped"),
        ),
        (ACCESS1, upstream_udp(&b, b.ipv4, b"new mapping")),
        (CORE, dying),
        (CORE, downstream_udp(a.ipv4, b"to the inside address")),
        (ACCESS1, hairpin),
        (CORE, downstream_udp_to(outside, port, b"answer 2")),
    ]
}

#[test]
fn a_burst_is_translated_as_its_frames_one_by_one() {
    // The burst looks NAT mappings up in stages ahead of translating; the result must be
    // what the frames give when each comes alone.
    let a = sessions()[0];
    let mut together = nat_pipeline();
    let mut alone = nat_pipeline();
    let first = upstream_udp(&a, a.ipv4, b"opens");
    let (_, out) = run1(&mut together, SEC, ACCESS0, &first);
    let (_, out2) = run1(&mut alone, SEC, ACCESS0, &first);
    assert_eq!(out, out2, "both pipelines map alike");
    let (outside, _, port, _) = udp_endpoints(&out[14..]);
    let burst = mixed_nat_burst(outside, port);
    let input: Vec<(PortId, &[u8])> = burst.iter().map(|(p, f)| (*p, f.as_slice())).collect();
    let got = run(&mut together, 2 * SEC, &input);
    let want: Vec<(Verdict, Vec<u8>)> = input
        .iter()
        .map(|&(port, frame)| run1(&mut alone, 2 * SEC, port, frame))
        .collect();
    assert_eq!(got, want);
    let verdicts: Vec<Verdict> = got.iter().map(|(v, _)| *v).collect();
    assert_eq!(
        verdicts,
        [
            Verdict::Forward(ACCESS0),
            Verdict::Forward(CORE),
            Verdict::Drop(DropReason::NatRefused),
            Verdict::Forward(CORE),
            Verdict::Forward(CORE),
            Verdict::Forward(ACCESS0),
            Verdict::Forward(ACCESS0),
            Verdict::Forward(ACCESS0),
        ]
    );
    assert_eq!(together.counters(), alone.counters());
    assert_eq!(
        together.nat().unwrap().mappings_active(),
        alone.nat().unwrap().mappings_active()
    );
}
