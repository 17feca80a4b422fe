//! IPv6CP (RFC 5072) on the authenticator side: offered only when the
//! caller enables IPv6, Interface-Identifier negotiation, and IPv4 left
//! alone when IPv6 fails.

use super::fsm::State;
use super::wire::{Code, emit_option, emit_packet, emit_pap_request, parse_options, parse_packet};
use super::*;

const OURS: u64 = 0x0000_5eff_fe00_0101;
const PEER: u64 = 0x1234_56ff_fe78_9abc;

fn pap() -> PppConfig {
    PppConfig {
        auth: AuthMethod::Pap,
        echo_interval_ms: 0,
        ..PppConfig::default()
    }
}

fn frames(o: &Output, protocol: u16) -> Vec<Vec<u8>> {
    o.frames
        .iter()
        .filter(|(p, _)| *p == protocol)
        .map(|(_, f)| f.clone())
        .collect()
}

fn v6cp_request(id: u8, iid: u64) -> Vec<u8> {
    let mut o = Vec::new();
    emit_option(
        &mut o,
        wire::ipv6cp_opt::INTERFACE_IDENTIFIER,
        &iid.to_be_bytes(),
    );
    emit_packet(Code::ConfigureRequest.into(), id, &o)
}

/// A session through LCP and PAP, with IPv6 offered before authentication
/// if `ipv6`; returns it with what the verdict produced.
fn authenticated(ipv6: bool) -> (PppSession, Output) {
    let mut s = PppSession::new(pap(), 0x1111_2222, [3; 16]);
    let start = s.start(0);
    let ours = frames(&start, proto::LCP).remove(0);
    let mut ack = ours.clone();
    ack[0] = Code::ConfigureAck.into();
    s.input(1, proto::LCP, &ack);
    let mut peer = Vec::new();
    emit_option(
        &mut peer,
        wire::lcp_opt::MAGIC_NUMBER,
        &0x3333_4444u32.to_be_bytes(),
    );
    s.input(2, proto::LCP, &emit_packet(1, 1, &peer));
    assert_eq!(s.lcp_state(), State::Opened);
    if ipv6 {
        let o = s.enable_ipv6(3, OURS);
        assert!(o.frames.is_empty(), "no IPv6CP before the Network phase");
    }
    let o = s.input(
        4,
        proto::PAP,
        &emit_packet(1, 7, &emit_pap_request(b"u", b"p")),
    );
    assert!(matches!(o.events[..], [PppEvent::Authenticate { .. }]));
    let o = s.auth_result(5, true, "ok");
    (s, o)
}

#[test]
fn ipv6cp_negotiates_interface_identifiers() {
    let (mut s, o) = authenticated(true);
    let req = frames(&o, proto::IPV6CP).remove(0);
    let p = parse_packet(&req).unwrap();
    assert_eq!(p.code, u8::from(Code::ConfigureRequest));
    let opts = parse_options(p.data).unwrap();
    assert_eq!(opts[0].value, OURS.to_be_bytes());
    // The peer's request with its identifier is acknowledged as is.
    let peer_req = v6cp_request(1, PEER);
    let o = s.input(6, proto::IPV6CP, &peer_req);
    let mut expect_ack = peer_req.clone();
    expect_ack[0] = Code::ConfigureAck.into();
    assert_eq!(frames(&o, proto::IPV6CP), vec![expect_ack]);
    assert_eq!(s.ipv6_interface_ids(), None, "not Opened before our Ack");
    let mut ack = req.clone();
    ack[0] = Code::ConfigureAck.into();
    s.input(7, proto::IPV6CP, &ack);
    assert_eq!(s.ipv6cp_state(), State::Opened);
    assert_eq!(s.ipv6_interface_ids(), Some((OURS, PEER)));
    // IPv6 data is not Protocol-Rejected once IPv6 is offered.
    assert!(s.input(8, proto::IPV6, &[0x60; 40]).frames.is_empty());
}

#[test]
fn zero_or_duplicate_peer_identifier_is_naked_with_a_suggestion() {
    let (mut s, _) = authenticated(true);
    for (id, bad) in [(1u8, 0u64), (2, OURS)] {
        let o = s.input(6, proto::IPV6CP, &v6cp_request(id, bad));
        let nak = frames(&o, proto::IPV6CP).remove(0);
        let p = parse_packet(&nak).unwrap();
        assert_eq!((p.code, p.id), (u8::from(Code::ConfigureNak), id));
        let opts = parse_options(p.data).unwrap();
        let suggested = u64::from_be_bytes(opts[0].value.try_into().unwrap());
        assert!(suggested != 0 && suggested != OURS, "{suggested:#x}");
        // The suggestion is acceptable when the peer takes it.
        let o = s.input(7, proto::IPV6CP, &v6cp_request(id + 10, suggested));
        let ack = frames(&o, proto::IPV6CP).remove(0);
        assert_eq!(ack[0], u8::from(Code::ConfigureAck));
    }
    // IPv6-Compression-Protocol is rejected.
    let mut comp = Vec::new();
    emit_option(&mut comp, wire::ipv6cp_opt::IPV6_COMPRESSION, &[0x00, 0x4f]);
    let o = s.input(8, proto::IPV6CP, &emit_packet(1, 30, &comp));
    assert_eq!(
        frames(&o, proto::IPV6CP)[0][0],
        u8::from(Code::ConfigureReject)
    );
}

#[test]
fn peer_nak_of_our_identifier_is_followed() {
    let (mut s, o) = authenticated(true);
    let req = frames(&o, proto::IPV6CP).remove(0);
    let mut nak_opts = Vec::new();
    emit_option(
        &mut nak_opts,
        wire::ipv6cp_opt::INTERFACE_IDENTIFIER,
        &77u64.to_be_bytes(),
    );
    let o = s.input(6, proto::IPV6CP, &emit_packet(3, req[1], &nak_opts));
    let again = frames(&o, proto::IPV6CP).remove(0);
    let p = parse_packet(&again).unwrap();
    assert_eq!(parse_options(p.data).unwrap()[0].value, 77u64.to_be_bytes());
}

#[test]
fn without_enable_ipv6_ipv6cp_is_protocol_rejected() {
    let (mut s, o) = authenticated(false);
    assert!(frames(&o, proto::IPV6CP).is_empty());
    let o = s.input(6, proto::IPV6CP, &v6cp_request(1, PEER));
    let rej = frames(&o, proto::LCP).remove(0);
    assert_eq!(rej[0], u8::from(Code::ProtocolReject));
    // Enabling after authentication starts IPv6CP at once.
    let o = s.enable_ipv6(7, OURS);
    assert_eq!(frames(&o, proto::IPV6CP).len(), 1);
}

#[test]
fn ipv6cp_giving_up_leaves_ipv4_alone() {
    let (mut s, o) = authenticated(true);
    assert_eq!(frames(&o, proto::IPV6CP).len(), 1);
    // No answer to any IPv6CP Configure-Request: Max-Configure timeouts.
    let mut now = 5;
    for _ in 0..20 {
        now += 3000;
        s.tick(now);
    }
    assert_eq!(s.ipv6cp_state(), State::Stopped);
    assert_eq!(s.lcp_state(), State::Opened);
    assert_eq!(s.phase(), Phase::Network);
}

#[test]
fn peer_protocol_reject_of_ipv6cp_stops_it_only() {
    let (mut s, _) = authenticated(true);
    let mut data = proto::IPV6CP.to_be_bytes().to_vec();
    data.extend_from_slice(&v6cp_request(1, OURS));
    s.input(
        6,
        proto::LCP,
        &emit_packet(Code::ProtocolReject.into(), 9, &data),
    );
    assert!(matches!(s.ipv6cp_state(), State::Stopped | State::Closed));
    assert_eq!(s.phase(), Phase::Network);
}

fn restored() -> PppSession {
    let link = NegotiatedLink {
        magic: Some(0x1111_2222),
        peer_magic: Some(0x3333_4444),
        mru: Some(1492),
        peer_mru: 1492,
        auth: AuthMethod::Pap,
        ipv4: std::net::Ipv4Addr::new(100, 64, 0, 10),
        gateway: std::net::Ipv4Addr::new(100, 64, 0, 1),
        dns: [None, None],
    };
    PppSession::restore(pap(), &link, [3; 16], 100)
}

#[test]
fn restored_ipv6cp_is_open_with_the_old_identifiers() {
    let mut s = restored();
    assert_eq!(s.ipv6_interface_ids(), None);
    assert!(s.restore_ipv6(100, OURS, PEER));
    assert!(!s.restore_ipv6(100, OURS, PEER), "only once");
    assert_eq!(s.ipv6cp_state(), State::Opened);
    assert_eq!(s.ipv6_interface_ids(), Some((OURS, PEER)));
    // The peer renegotiating gets our old identifier offered again.
    let o = s.input(200, proto::IPV6CP, &v6cp_request(5, PEER));
    let ours = frames(&o, proto::IPV6CP)
        .into_iter()
        .find(|f| f[0] == u8::from(Code::ConfigureRequest))
        .expect("our Configure-Request");
    let opts = parse_options(parse_packet(&ours).unwrap().data)
        .unwrap()
        .iter()
        .map(|o| o.value.to_vec())
        .collect::<Vec<_>>();
    assert_eq!(opts, vec![OURS.to_be_bytes().to_vec()]);
}

#[test]
fn restored_ipv6cp_can_be_closed_alone() {
    let mut s = restored();
    assert!(s.restore_ipv6(100, OURS, 0));
    assert_eq!(s.ipv6_interface_ids(), Some((OURS, 0)));
    let o = s.close_ipv6(101);
    let sent = frames(&o, proto::IPV6CP);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0][0], u8::from(Code::TerminateRequest));
    assert!(o.events.is_empty(), "IPv4 stays up");
    assert_eq!(s.ipv6_interface_ids(), None);
    assert_eq!((s.phase(), s.ipcp_state()), (Phase::Network, State::Opened));
}
