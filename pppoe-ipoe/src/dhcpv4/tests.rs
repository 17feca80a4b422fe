//! Server tests over real ISC dhclient bytes (`golden/*.hex`) and
//! property tests over random client behaviour.
//!
//! The golden files are UDP payloads captured with tcpdump from
//! `dhclient` 4.4.3-P1 in a network namespace on a veth (MAC
//! 52:54:00:12:34:56) while a scripted responder (server id 10.99.0.1,
//! address 10.99.0.50) drove it through DISCOVER, SELECTING, RENEWING (left
//! unanswered), REBINDING, INIT-REBOOT and RELEASE. The `-opt82` files are
//! the same messages with a relay agent information option inserted before
//! End, as an access node would.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode, relay::RelayInfo};
use dhcproto::{Decodable, Encodable};
use proptest::prelude::*;

use super::*;

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const GW: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const FIRST: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 50);

fn golden(name: &str) -> Message {
    let text = match name {
        "discover" => include_str!("golden/dhclient-discover.hex"),
        "discover-opt82" => include_str!("golden/dhclient-discover-opt82.hex"),
        "request-selecting" => include_str!("golden/dhclient-request-selecting.hex"),
        "request-selecting-opt82" => include_str!("golden/dhclient-request-selecting-opt82.hex"),
        "request-renewing" => include_str!("golden/dhclient-request-renewing.hex"),
        "request-rebinding" => include_str!("golden/dhclient-request-rebinding.hex"),
        "request-init-reboot" => include_str!("golden/dhclient-request-init-reboot.hex"),
        "release" => include_str!("golden/dhclient-release.hex"),
        other => panic!("no golden file {other}"),
    };
    let hex: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| l.trim().chars())
        .collect();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    assert!(
        bytes.len() >= 300,
        "{name}: dhclient pads to the BOOTP minimum"
    );
    Message::from_bytes(&bytes).unwrap()
}

fn lab_pool() -> PoolConfig {
    PoolConfig {
        name: "lab".into(),
        network: Ipv4Addr::new(10, 99, 0, 0),
        prefix_len: 24,
        gateway: GW,
        range_start: FIRST,
        range_end: Ipv4Addr::new(10, 99, 0, 59),
        dns: vec![Ipv4Addr::new(192, 0, 2, 53)],
        lease_time_s: 60,
    }
}

fn server() -> DhcpServer {
    DhcpServer::new(vec![lab_pool()]).unwrap()
}

fn key(mac: [u8; 6]) -> ClientKey {
    ClientKey {
        up: 0,
        port: 1,
        svlan: 0,
        cvlan: 100,
        mac,
    }
}

fn ctx(mac: [u8; 6]) -> ClientContext {
    ClientContext {
        key: key(mac),
        circuit_id: None,
        remote_id: None,
    }
}

fn allow(_: &ClientContext) -> Authorization {
    Authorization::Allow {
        pool: "lab".into(),
        fixed_ipv4: None,
    }
}

fn deny(_: &ClientContext) -> Authorization {
    Authorization::Deny
}

fn opt(m: &Message, code: OptionCode) -> Option<&DhcpOption> {
    m.opts().get(code)
}

/// Send through the wire format, as the caller would.
fn wire(m: &Message) -> Message {
    Message::from_bytes(&m.to_vec().unwrap()).unwrap()
}

/// DISCOVER + SELECTING REQUEST from the golden bytes; returns the ACK.
fn dora(srv: &mut DhcpServer, now: u64) -> Handled {
    let c = ctx(MAC);
    let offer = srv.handle(now, &c, &golden("discover"), &mut allow);
    assert!(offer.reply.is_some(), "{offer:?}");
    srv.handle(now, &c, &golden("request-selecting"), &mut allow)
}

/// A client message built from scratch (for clients other than dhclient).
fn client_msg(
    mac: [u8; 6],
    mtype: MessageType,
    ciaddr: Ipv4Addr,
    requested: Option<Ipv4Addr>,
    server_id: Option<Ipv4Addr>,
) -> Message {
    let mut m = Message::default();
    m.set_opcode(Opcode::BootRequest)
        .set_xid(0x1234_5678)
        .set_chaddr(&mac)
        .set_ciaddr(ciaddr);
    m.opts_mut().insert(DhcpOption::MessageType(mtype));
    if let Some(r) = requested {
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(r));
    }
    if let Some(s) = server_id {
        m.opts_mut().insert(DhcpOption::ServerIdentifier(s));
    }
    m
}

#[test]
fn golden_bytes_decode_as_dhclient_sent_them() {
    let d = golden("discover");
    assert_eq!(d.opts().msg_type(), Some(MessageType::Discover));
    assert_eq!(d.chaddr(), &MAC);
    assert!(!d.flags().broadcast());
    assert!(matches!(opt(&d, OptionCode::Hostname), Some(DhcpOption::Hostname(h)) if h == "vm"));
    let s = golden("request-selecting");
    assert_eq!(s.xid(), d.xid());
    assert_eq!(
        opt(&s, OptionCode::ServerIdentifier),
        Some(&DhcpOption::ServerIdentifier(GW))
    );
    assert_eq!(
        opt(&s, OptionCode::RequestedIpAddress),
        Some(&DhcpOption::RequestedIpAddress(FIRST))
    );
    for name in ["request-renewing", "request-rebinding", "release"] {
        let m = golden(name);
        assert_eq!(m.ciaddr(), FIRST, "{name}");
        assert!(opt(&m, OptionCode::RequestedIpAddress).is_none(), "{name}");
    }
    let r = golden("request-init-reboot");
    assert!(r.ciaddr().is_unspecified());
    assert!(opt(&r, OptionCode::ServerIdentifier).is_none());
    assert_eq!(
        relay_ids_of("discover-opt82").0.as_deref(),
        Some(&b"olt1 xpon 0/1/2:100"[..])
    );
}

fn relay_ids_of(name: &str) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    server::relay_ids(&golden(name))
}

#[test]
fn full_dora_with_real_dhclient_bytes() {
    let mut srv = server();
    let c = ctx(MAC);
    let discover = golden("discover");
    let offer = srv.handle(1_000, &c, &discover, &mut allow);
    assert!(offer.events.is_empty());
    let r = offer.reply.unwrap();
    let m = wire(&r.msg);
    assert_eq!(m.opcode(), Opcode::BootReply);
    assert_eq!(m.opts().msg_type(), Some(MessageType::Offer));
    assert_eq!(m.xid(), discover.xid());
    assert_eq!(m.chaddr(), &MAC);
    assert_eq!(m.yiaddr(), FIRST);
    assert!(m.ciaddr().is_unspecified());
    assert_eq!(
        opt(&m, OptionCode::ServerIdentifier),
        Some(&DhcpOption::ServerIdentifier(GW))
    );
    assert_eq!(
        opt(&m, OptionCode::AddressLeaseTime),
        Some(&DhcpOption::AddressLeaseTime(60))
    );
    assert_eq!(opt(&m, OptionCode::Renewal), Some(&DhcpOption::Renewal(30)));
    assert_eq!(
        opt(&m, OptionCode::Rebinding),
        Some(&DhcpOption::Rebinding(52))
    );
    assert_eq!(
        opt(&m, OptionCode::SubnetMask),
        Some(&DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)))
    );
    assert_eq!(
        opt(&m, OptionCode::Router),
        Some(&DhcpOption::Router(vec![GW]))
    );
    assert_eq!(
        opt(&m, OptionCode::DomainNameServer),
        Some(&DhcpOption::DomainNameServer(vec![Ipv4Addr::new(
            192, 0, 2, 53
        )]))
    );
    // dhclient asks for option 28 (broadcast address) in its PRL.
    assert_eq!(
        opt(&m, OptionCode::BroadcastAddr),
        Some(&DhcpOption::BroadcastAddr(Ipv4Addr::new(10, 99, 0, 255)))
    );
    assert!(opt(&m, OptionCode::RelayAgentInformation).is_none());
    // Broadcast bit clear, no ciaddr/giaddr: unicast to yiaddr and chaddr.
    assert_eq!(
        (r.src_ip, r.dst_ip, r.dst_port, r.dst_mac_broadcast),
        (GW, FIRST, 68, false)
    );
    assert_eq!(srv.leases().count(), 0, "an offer is not a lease");

    let ack = srv.handle(1_010, &c, &golden("request-selecting"), &mut allow);
    let r = ack.reply.unwrap();
    let m = wire(&r.msg);
    assert_eq!(m.opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(m.yiaddr(), FIRST);
    assert_eq!(
        opt(&m, OptionCode::AddressLeaseTime),
        Some(&DhcpOption::AddressLeaseTime(60))
    );
    assert_eq!((r.dst_ip, r.dst_mac_broadcast), (FIRST, false));
    let [LeaseEvent::Bound(lease)] = ack.events.as_slice() else {
        panic!("expected Bound, got {:?}", ack.events);
    };
    assert_eq!(lease.key, key(MAC));
    assert_eq!(lease.ipv4, FIRST);
    assert_eq!(
        (lease.gateway, lease.prefix_len, lease.pool.as_str()),
        (GW, 24, "lab")
    );
    assert_eq!(lease.expires_at_ms, 61_010);
    assert_eq!(lease.hostname.as_deref(), Some("vm"));
    assert_eq!(srv.lease(&key(MAC)), Some(lease));
    assert_eq!(srv.lease_by_ip(FIRST), Some(lease));
    let cnt = srv.counters();
    assert_eq!(
        (cnt.rx_discover, cnt.rx_request, cnt.tx_offer, cnt.tx_ack),
        (1, 1, 1, 1)
    );
    assert_eq!((cnt.replies, cnt.leases_bound), (2, 1));
}

#[test]
fn renew_then_rebind_keep_the_address_and_extend() {
    let mut srv = server();
    dora(&mut srv, 0);
    let c = ctx(MAC);
    let renew = srv.handle(30_000, &c, &golden("request-renewing"), &mut deny);
    let r = renew.reply.unwrap();
    assert_eq!(r.msg.opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(r.msg.yiaddr(), FIRST);
    assert_eq!(r.msg.ciaddr(), FIRST, "ACK echoes ciaddr");
    assert_eq!(
        (r.dst_ip, r.dst_port, r.dst_mac_broadcast),
        (FIRST, 68, false)
    );
    let [LeaseEvent::Renewed(l)] = renew.events.as_slice() else {
        panic!("{:?}", renew.events);
    };
    assert_eq!((l.ipv4, l.bound_at_ms, l.expires_at_ms), (FIRST, 0, 90_000));

    let rebind = srv.handle(80_000, &c, &golden("request-rebinding"), &mut deny);
    assert_eq!(
        rebind.reply.unwrap().msg.opts().msg_type(),
        Some(MessageType::Ack)
    );
    assert!(
        matches!(rebind.events.as_slice(), [LeaseEvent::Renewed(l)] if l.expires_at_ms == 140_000)
    );
    assert!(srv.poll(139_999).is_empty());
    assert_eq!(srv.counters().leases_renewed, 2);
    assert_eq!(srv.counters().denied, 0, "renewals are not re-authorized");
}

#[test]
fn release_frees_the_address() {
    let mut srv = server();
    dora(&mut srv, 0);
    let h = srv.handle(5_000, &ctx(MAC), &golden("release"), &mut allow);
    assert!(h.reply.is_none());
    assert!(matches!(h.events.as_slice(), [LeaseEvent::Released(l)] if l.ipv4 == FIRST));
    assert_eq!(srv.leases().count(), 0);
    assert_eq!(srv.pool("lab").unwrap().in_use(), 0);
    assert_eq!(srv.next_deadline(), None);
    // A second release of the same address is ignored.
    let h = srv.handle(5_001, &ctx(MAC), &golden("release"), &mut allow);
    assert_eq!(h.dropped, Some(DropReason::NoBinding));
}

#[test]
fn init_reboot_acks_own_address_and_naks_a_wrong_one() {
    let mut srv = server();
    dora(&mut srv, 0);
    let c = ctx(MAC);
    let h = srv.handle(10, &c, &golden("request-init-reboot"), &mut allow);
    assert_eq!(
        h.reply.unwrap().msg.opts().msg_type(),
        Some(MessageType::Ack)
    );
    assert!(matches!(h.events.as_slice(), [LeaseEvent::Renewed(_)]));

    let mut wrong = golden("request-init-reboot");
    wrong
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 99, 0, 57)));
    let h = srv.handle(20, &c, &wrong, &mut allow);
    assert_eq!(h.dropped, Some(DropReason::WrongAddress));
    let r = h.reply.unwrap();
    let m = wire(&r.msg);
    assert_eq!(m.opts().msg_type(), Some(MessageType::Nak));
    assert!(m.yiaddr().is_unspecified());
    assert!(opt(&m, OptionCode::AddressLeaseTime).is_none());
    assert_eq!(
        opt(&m, OptionCode::ServerIdentifier),
        Some(&DhcpOption::ServerIdentifier(GW))
    );
    assert_eq!((r.dst_ip, r.dst_mac_broadcast), (Ipv4Addr::BROADCAST, true));
    assert_eq!(srv.counters().tx_nak, 1);
    assert_eq!(
        srv.lease(&key(MAC)).unwrap().ipv4,
        FIRST,
        "NAK keeps the binding"
    );
}

#[test]
fn unknown_client_init_reboot_is_adopted_or_naked() {
    // Control plane restarted: no record, AAA allows, address free -> ACK.
    let mut srv = server();
    let h = srv.handle(0, &ctx(MAC), &golden("request-init-reboot"), &mut allow);
    assert_eq!(h.reply.unwrap().msg.yiaddr(), FIRST);
    assert!(matches!(h.events.as_slice(), [LeaseEvent::Bound(l)] if l.ipv4 == FIRST));

    // Same, but the address is on another network -> NAK.
    let mut srv = server();
    let mut m = golden("request-init-reboot");
    m.opts_mut()
        .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(
            192, 168, 1, 10,
        )));
    let h = srv.handle(0, &ctx(MAC), &m, &mut allow);
    assert_eq!(
        h.reply.unwrap().msg.opts().msg_type(),
        Some(MessageType::Nak)
    );
    assert!(h.events.is_empty());

    // Renewing with an address someone else holds -> NAK.
    let mut srv = server();
    dora(&mut srv, 0);
    let other = [2, 0, 0, 0, 0, 9];
    let m = client_msg(other, MessageType::Request, FIRST, None, None);
    let h = srv.handle(0, &ctx(other), &m, &mut allow);
    assert_eq!(
        h.reply.unwrap().msg.opts().msg_type(),
        Some(MessageType::Nak)
    );
    assert_eq!(srv.lease_by_ip(FIRST).unwrap().key, key(MAC));
}

#[test]
fn request_for_another_server_drops_our_offer_silently() {
    let mut srv = server();
    let c = ctx(MAC);
    srv.handle(0, &c, &golden("discover"), &mut allow);
    assert_eq!(srv.pool("lab").unwrap().in_use(), 1);
    let mut req = golden("request-selecting");
    req.opts_mut()
        .insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 99, 0, 2)));
    let h = srv.handle(1, &c, &req, &mut allow);
    assert!(h.reply.is_none() && h.events.is_empty());
    assert_eq!(h.dropped, Some(DropReason::NotForUs));
    assert_eq!(srv.pool("lab").unwrap().in_use(), 0);
    // Our server id but the offer is gone: NAK so the client restarts.
    let h = srv.handle(2, &c, &golden("request-selecting"), &mut allow);
    assert_eq!(
        h.reply.unwrap().msg.opts().msg_type(),
        Some(MessageType::Nak)
    );
}

#[test]
fn selecting_request_for_a_different_address_is_naked() {
    let mut srv = server();
    let c = ctx(MAC);
    srv.handle(0, &c, &golden("discover"), &mut allow);
    let mut req = golden("request-selecting");
    req.opts_mut()
        .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 99, 0, 55)));
    let h = srv.handle(1, &c, &req, &mut allow);
    assert_eq!(
        h.reply.unwrap().msg.opts().msg_type(),
        Some(MessageType::Nak)
    );
    assert_eq!(
        srv.pool("lab").unwrap().in_use(),
        0,
        "the offer is withdrawn"
    );
}

#[test]
fn decline_quarantines_the_address() {
    let mut srv = server();
    dora(&mut srv, 0);
    let mut decline = golden("request-selecting");
    decline
        .opts_mut()
        .insert(DhcpOption::MessageType(MessageType::Decline));
    decline.opts_mut().remove(OptionCode::ParameterRequestList);
    let h = srv.handle(100, &ctx(MAC), &decline, &mut allow);
    assert!(h.reply.is_none());
    assert!(matches!(h.events.as_slice(), [LeaseEvent::Declined(l)] if l.ipv4 == FIRST));
    assert_eq!(srv.pool("lab").unwrap().quarantined(), 1);
    // Neither the same client nor another gets the declined address now.
    for mac in [MAC, [2, 0, 0, 0, 0, 1]] {
        let h = srv.handle(200, &ctx(mac), &golden("discover"), &mut allow);
        assert_ne!(h.reply.unwrap().msg.yiaddr(), FIRST);
    }
    assert_eq!(srv.counters().leases_declined, 1);
}

#[test]
fn inform_gets_configuration_without_a_lease() {
    let mut srv = server();
    let ciaddr = Ipv4Addr::new(10, 99, 0, 200);
    let m = client_msg(MAC, MessageType::Inform, ciaddr, None, None);
    let h = srv.handle(0, &ctx(MAC), &m, &mut deny);
    let r = h.reply.unwrap();
    let a = wire(&r.msg);
    assert_eq!(a.opts().msg_type(), Some(MessageType::Ack));
    assert!(a.yiaddr().is_unspecified());
    assert_eq!(a.ciaddr(), ciaddr);
    for absent in [
        OptionCode::AddressLeaseTime,
        OptionCode::Renewal,
        OptionCode::Rebinding,
    ] {
        assert!(opt(&a, absent).is_none(), "{absent:?}");
    }
    assert!(opt(&a, OptionCode::SubnetMask).is_some());
    assert!(opt(&a, OptionCode::Router).is_some());
    assert!(opt(&a, OptionCode::DomainNameServer).is_some());
    assert_eq!((r.dst_ip, r.dst_mac_broadcast), (ciaddr, false));
    assert!(h.events.is_empty());
    assert_eq!(srv.leases().count(), 0);
    assert_eq!(srv.counters().rx_inform, 1);
    // INFORM from an address none of our subnets holds is ignored.
    let m = client_msg(
        MAC,
        MessageType::Inform,
        Ipv4Addr::new(8, 8, 8, 8),
        None,
        None,
    );
    assert_eq!(
        srv.handle(0, &ctx(MAC), &m, &mut deny).dropped,
        Some(DropReason::NoBinding)
    );
}

#[test]
fn leases_and_offers_expire_on_the_injected_clock() {
    let mut srv = server();
    dora(&mut srv, 1_000);
    assert_eq!(srv.next_deadline(), Some(61_000));
    assert!(srv.poll(60_999).is_empty());
    let ev = srv.poll(61_000);
    assert!(matches!(ev.as_slice(), [LeaseEvent::Expired(l)] if l.ipv4 == FIRST));
    assert_eq!(srv.leases().count(), 0);
    assert_eq!(srv.pool("lab").unwrap().in_use(), 0);
    // A renewal after expiry, with AAA now denying the client, is NAKed.
    let h = srv.handle(62_000, &ctx(MAC), &golden("request-renewing"), &mut deny);
    assert_eq!(
        h.reply.unwrap().msg.opts().msg_type(),
        Some(MessageType::Nak)
    );

    // Offers hold their address for OFFER_HOLD_MS only, silently.
    let other = [2, 0, 0, 0, 0, 2];
    srv.handle(100_000, &ctx(other), &golden("discover"), &mut allow);
    assert_eq!(srv.pool("lab").unwrap().in_use(), 1);
    assert!(srv.poll(100_000 + OFFER_HOLD_MS).is_empty());
    assert_eq!(srv.pool("lab").unwrap().in_use(), 0);
    assert_eq!(srv.counters().offers_expired, 1);
    assert_eq!(srv.counters().leases_expired, 1);
}

#[test]
fn pool_exhaustion_gives_no_offer() {
    let cfg = PoolConfig {
        range_end: Ipv4Addr::new(10, 99, 0, 51),
        ..lab_pool()
    };
    let mut srv = DhcpServer::new(vec![cfg]).unwrap();
    let mut got = HashSet::new();
    for i in 0..2 {
        let mac = [2, 0, 0, 0, 0, i];
        let h = srv.handle(0, &ctx(mac), &golden("discover"), &mut allow);
        assert!(got.insert(h.reply.unwrap().msg.yiaddr()));
    }
    let h = srv.handle(0, &ctx([2, 0, 0, 0, 0, 3]), &golden("discover"), &mut allow);
    assert!(h.reply.is_none());
    assert_eq!(h.dropped, Some(DropReason::PoolExhausted));
    assert_eq!(srv.counters().drop_count(DropReason::PoolExhausted), 1);
    assert_eq!(srv.counters().ignored, 1);
}

#[test]
fn external_claims_share_the_pool_without_clashing() {
    let mut srv = server();
    let (ip, cfg) = srv.claim_external("lab", None, 0).unwrap();
    assert_eq!(cfg.name, "lab");
    assert!(srv.pool("lab").unwrap().is_used(ip));
    // A DHCP client never gets that address, even when it asks for it.
    let offer = srv
        .handle(0, &ctx(MAC), &golden("discover"), &mut allow)
        .reply
        .unwrap();
    assert_ne!(offer.msg.yiaddr(), ip);
    // A fixed address held by DHCP or already claimed is refused.
    assert_eq!(
        srv.claim_external("lab", Some(ip), 0).err(),
        Some(DropReason::PoolExhausted)
    );
    assert_eq!(
        srv.claim_external("nope", None, 0).err(),
        Some(DropReason::UnknownPool)
    );
    assert!(srv.release_external(ip));
    assert!(!srv.release_external(ip));
    assert!(!srv.pool("lab").unwrap().is_used(ip));
}

#[test]
fn pending_authorization_drops_silently_then_serves() {
    let mut srv = server();
    let c = ctx(MAC);
    let mut pending = |_: &ClientContext| Authorization::Pending;
    for name in ["discover", "request-init-reboot"] {
        let h = srv.handle(0, &c, &golden(name), &mut pending);
        // Neither an OFFER nor a NAK: the client must not restart or
        // give up while AAA is still deciding.
        assert!(h.reply.is_none() && h.events.is_empty(), "{name}: {h:?}");
        assert_eq!(h.dropped, Some(DropReason::AuthPending));
    }
    assert_eq!(srv.counters().drop_count(DropReason::AuthPending), 2);
    assert_eq!(srv.pool("lab").unwrap().in_use(), 0);
    // Replayed once the decision is known: served as usual.
    let h = srv.handle(0, &c, &golden("discover"), &mut allow);
    assert_eq!(
        h.reply.unwrap().msg.opts().msg_type(),
        Some(MessageType::Offer)
    );
}

#[test]
fn denied_clients_get_nothing_or_a_nak() {
    let mut srv = server();
    let c = ctx(MAC);
    let h = srv.handle(0, &c, &golden("discover"), &mut deny);
    assert!(h.reply.is_none() && h.events.is_empty());
    assert_eq!(h.dropped, Some(DropReason::Denied));
    let h = srv.handle(0, &c, &golden("request-init-reboot"), &mut deny);
    assert_eq!(
        h.reply.unwrap().msg.opts().msg_type(),
        Some(MessageType::Nak)
    );
    assert_eq!(srv.counters().denied, 2);
    assert_eq!(srv.pool("lab").unwrap().in_use(), 0);
    // An unknown pool name is a drop too.
    let h = srv.handle(0, &c, &golden("discover"), &mut |_: &ClientContext| {
        Authorization::Allow {
            pool: "nope".into(),
            fixed_ipv4: None,
        }
    });
    assert_eq!(h.dropped, Some(DropReason::UnknownPool));
}

#[test]
fn option_82_is_read_kept_and_echoed() {
    let mut srv = server();
    let c = ctx(MAC);
    let discover = golden("discover-opt82");
    let mut seen = None;
    let h = srv.handle(0, &c, &discover, &mut |cx: &ClientContext| {
        seen = Some((cx.circuit_id.clone(), cx.remote_id.clone()));
        allow(cx)
    });
    assert_eq!(
        seen,
        Some((
            Some(b"olt1 xpon 0/1/2:100".to_vec()),
            Some(b"subscriber-0001".to_vec())
        ))
    );
    let offer = wire(&h.reply.unwrap().msg);
    assert_eq!(
        opt(&offer, OptionCode::RelayAgentInformation),
        opt(&discover, OptionCode::RelayAgentInformation),
        "RFC 3046: echoed unchanged"
    );
    let h = srv.handle(1, &c, &golden("request-selecting-opt82"), &mut allow);
    let Some(DhcpOption::RelayAgentInformation(info)) = opt(
        &h.reply.as_ref().unwrap().msg,
        OptionCode::RelayAgentInformation,
    ) else {
        panic!("option 82 not echoed in ACK");
    };
    assert!(matches!(
        info.get(dhcproto::v4::relay::RelayCode::AgentRemoteId),
        Some(RelayInfo::AgentRemoteId(r)) if r == b"subscriber-0001"
    ));
    let [LeaseEvent::Bound(l)] = h.events.as_slice() else {
        panic!("{:?}", h.events);
    };
    assert_eq!(l.circuit_id.as_deref(), Some(&b"olt1 xpon 0/1/2:100"[..]));
    assert_eq!(l.remote_id.as_deref(), Some(&b"subscriber-0001"[..]));
    // The caller's own ids win over the message's.
    let mut srv = server();
    let mine = ClientContext {
        circuit_id: Some(b"bng port 1 vlan 100".to_vec()),
        ..ctx(MAC)
    };
    srv.handle(0, &mine, &golden("discover-opt82"), &mut allow);
    let h = srv.handle(0, &mine, &golden("request-selecting-opt82"), &mut allow);
    let l = h.events[0].lease();
    assert_eq!(l.circuit_id.as_deref(), Some(&b"bng port 1 vlan 100"[..]));
    assert_eq!(l.remote_id.as_deref(), Some(&b"subscriber-0001"[..]));
}

#[test]
fn reply_destinations_follow_rfc2131_4_1() {
    let relay = Ipv4Addr::new(10, 99, 0, 254);
    // Relayed: to the relay's server port, NAKs with the broadcast bit.
    let mut srv = server();
    let mut d = golden("discover-opt82");
    d.set_giaddr(relay).set_hops(1);
    let r = srv.handle(0, &ctx(MAC), &d, &mut allow).reply.unwrap();
    assert_eq!(
        (r.dst_ip, r.dst_port, r.dst_mac_broadcast),
        (relay, 67, false)
    );
    assert_eq!(r.msg.giaddr(), relay);
    let mut nak_req = golden("request-init-reboot");
    nak_req.set_giaddr(relay);
    nak_req
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 99, 0, 58)));
    let r = srv
        .handle(0, &ctx(MAC), &nak_req, &mut allow)
        .reply
        .unwrap();
    assert_eq!(r.msg.opts().msg_type(), Some(MessageType::Nak));
    assert_eq!((r.dst_ip, r.dst_port), (relay, 67));
    assert!(r.msg.flags().broadcast());
    // Broadcast bit set by the client: broadcast.
    let mut srv = server();
    let mut d = golden("discover");
    d.set_flags(Flags::default().set_broadcast());
    let r = srv.handle(0, &ctx(MAC), &d, &mut allow).reply.unwrap();
    assert_eq!(
        (r.dst_ip, r.dst_port, r.dst_mac_broadcast),
        (Ipv4Addr::BROADCAST, 68, true)
    );
}

#[test]
fn returning_client_gets_its_old_address() {
    let mut srv = server();
    dora(&mut srv, 0);
    srv.handle(1, &ctx(MAC), &golden("release"), &mut allow);
    // Another client comes and goes in between.
    let other = [2, 0, 0, 0, 0, 7];
    let h = srv.handle(2, &ctx(other), &golden("discover"), &mut allow);
    assert_ne!(h.reply.unwrap().msg.yiaddr(), FIRST);
    let mut fresh = golden("discover");
    fresh.opts_mut().remove(OptionCode::RequestedIpAddress);
    let h = srv.handle(3, &ctx(MAC), &fresh, &mut allow);
    assert_eq!(h.reply.unwrap().msg.yiaddr(), FIRST);
}

#[test]
fn bound_client_rediscovering_is_offered_its_lease_without_aaa() {
    let mut srv = server();
    dora(&mut srv, 0);
    let h = srv.handle(5, &ctx(MAC), &golden("discover"), &mut deny);
    assert_eq!(h.reply.unwrap().msg.yiaddr(), FIRST);
    assert_eq!(srv.counters().denied, 0);
    let h = srv.handle(6, &ctx(MAC), &golden("request-selecting"), &mut deny);
    assert!(matches!(h.events.as_slice(), [LeaseEvent::Renewed(l)] if l.ipv4 == FIRST));
}

#[test]
fn fixed_address_outside_the_range() {
    let fixed = Ipv4Addr::new(10, 99, 0, 200);
    let mut auth = |_: &ClientContext| Authorization::Allow {
        pool: "lab".into(),
        fixed_ipv4: Some(fixed),
    };
    let mut srv = server();
    let h = srv.handle(0, &ctx(MAC), &golden("discover"), &mut auth);
    assert_eq!(h.reply.unwrap().msg.yiaddr(), fixed);
    let mut req = golden("request-selecting");
    req.opts_mut().insert(DhcpOption::RequestedIpAddress(fixed));
    let h = srv.handle(0, &ctx(MAC), &req, &mut auth);
    assert!(matches!(h.events.as_slice(), [LeaseEvent::Bound(l)] if l.ipv4 == fixed));
    // A second client with the same fixed address gets nothing.
    let h = srv.handle(0, &ctx([2, 0, 0, 0, 0, 1]), &golden("discover"), &mut auth);
    assert_eq!(h.dropped, Some(DropReason::PoolExhausted));
    // The gateway is never handed out, even as a fixed address.
    let mut gw = |_: &ClientContext| Authorization::Allow {
        pool: "lab".into(),
        fixed_ipv4: Some(GW),
    };
    let h = srv.handle(0, &ctx([2, 0, 0, 0, 0, 2]), &golden("discover"), &mut gw);
    assert!(h.reply.is_none());
}

#[test]
fn malformed_and_unsupported_messages_are_counted() {
    let mut srv = server();
    let mut reply_op = golden("discover");
    reply_op.set_opcode(Opcode::BootReply);
    assert_eq!(
        srv.handle(0, &ctx(MAC), &reply_op, &mut allow).dropped,
        Some(DropReason::Malformed)
    );
    let mut no_type = golden("discover");
    no_type.opts_mut().remove(OptionCode::MessageType);
    assert_eq!(
        srv.handle(0, &ctx(MAC), &no_type, &mut allow).dropped,
        Some(DropReason::Malformed)
    );
    let mut offer = golden("discover");
    offer
        .opts_mut()
        .insert(DhcpOption::MessageType(MessageType::Offer));
    assert_eq!(
        srv.handle(0, &ctx(MAC), &offer, &mut allow).dropped,
        Some(DropReason::UnsupportedType)
    );
    // hlen > 16 from the wire must not reach chaddr() (which would panic).
    let mut bytes = golden("discover").to_vec().unwrap();
    bytes[2] = 200;
    let m = Message::from_bytes(&bytes).unwrap();
    assert_eq!(
        srv.handle(0, &ctx(MAC), &m, &mut allow).dropped,
        Some(DropReason::Malformed)
    );
    let c = srv.counters();
    assert_eq!(
        (c.malformed, c.ignored, c.rx_discover, c.rx_other),
        (3, 1, 2, 2)
    );
    assert_eq!(c.replies, 0);
}

#[test]
fn administrative_release_and_restore() {
    let mut srv = server();
    dora(&mut srv, 0);
    let lease = srv.lease(&key(MAC)).unwrap().clone();
    assert!(matches!(
        srv.release(&key(MAC)),
        Some(LeaseEvent::Released(_))
    ));
    assert!(srv.release(&key(MAC)).is_none());
    assert!(srv.restore(lease.clone()));
    assert!(!srv.restore(lease.clone()), "already present");
    assert_eq!(srv.lease_by_ip(FIRST), Some(&lease));
    assert!(matches!(
        srv.poll(lease.expires_at_ms).as_slice(),
        [LeaseEvent::Expired(_)]
    ));
}

#[test]
fn config_errors_across_pools() {
    let e = DhcpServer::new(vec![lab_pool(), lab_pool()]).unwrap_err();
    assert_eq!(e, ConfigError::DuplicateName("lab".into()));
    let other = PoolConfig {
        name: "b".into(),
        range_start: Ipv4Addr::new(10, 99, 0, 59),
        range_end: Ipv4Addr::new(10, 99, 0, 70),
        ..lab_pool()
    };
    let e = DhcpServer::new(vec![lab_pool(), other]).unwrap_err();
    assert!(matches!(e, ConfigError::Overlap { .. }), "{e}");
    assert!(e.to_string().contains("\"lab\""), "{e}");
}

#[test]
fn pool_config_from_toml() {
    #[derive(Debug, serde::Deserialize)]
    struct File {
        pool: Vec<PoolConfig>,
    }
    let f: File = toml::from_str(
        r#"
        [[pool]]
        name = "default"
        network = "100.64.0.0"
        prefix_len = 24
        gateway = "100.64.0.1"
        range_start = "100.64.0.10"
        range_end = "100.64.0.250"
        dns = ["192.0.2.53"]
        "#,
    )
    .unwrap();
    assert_eq!(
        f.pool,
        vec![PoolConfig::default()],
        "lease_time_s defaults to 600"
    );
    let e = toml::from_str::<File>(
        r#"
        [[pool]]
        name = "x"
        network = "100.64.0.0"
        prefix_len = 24
        gateway = "100.64.0.1"
        range_start = "100.64.0.10"
        range_end = "100.64.0.250"
        lease = 5
        "#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("unknown field `lease`"), "{e}");
}

// ---- property tests ------------------------------------------------------

#[derive(Debug, Clone)]
enum Act {
    Discover(u8),
    Select(u8),
    Renew(u8),
    Release(u8),
    Decline(u8),
    AdminRelease(u8),
    Tick(u32),
}

fn act() -> impl Strategy<Value = Act> {
    let c = 0u8..12;
    prop_oneof![
        4 => c.clone().prop_map(Act::Discover),
        4 => c.clone().prop_map(Act::Select),
        2 => c.clone().prop_map(Act::Renew),
        1 => c.clone().prop_map(Act::Release),
        1 => c.clone().prop_map(Act::Decline),
        1 => c.prop_map(Act::AdminRelease),
        2 => (0u32..40_000).prop_map(Act::Tick),
    ]
}

proptest! {
    #[test]
    fn leases_never_share_an_address_and_events_track_them(
        acts in proptest::collection::vec(act(), 1..200)
    ) {
        // Range .49-.56 of 10.1.0.48/28 with the gateway (.50) inside it:
        // 7 usable addresses for 12 clients, so exhaustion happens.
        let cfg = PoolConfig {
            name: "p".into(),
            network: Ipv4Addr::new(10, 1, 0, 48),
            prefix_len: 28,
            gateway: Ipv4Addr::new(10, 1, 0, 50),
            range_start: Ipv4Addr::new(10, 1, 0, 49),
            range_end: Ipv4Addr::new(10, 1, 0, 56),
            dns: vec![],
            lease_time_s: 30,
        };
        let mut srv = DhcpServer::new(vec![cfg.clone()]).unwrap();
        let mut auth = |_: &ClientContext| Authorization::Allow { pool: "p".into(), fixed_ipv4: None };
        let mut now = 0u64;
        let mut offered: HashMap<u8, Ipv4Addr> = HashMap::new();
        // The user plane as the control plane would program it.
        let mut programmed: HashMap<ClientKey, Ipv4Addr> = HashMap::new();
        let apply = |evs: Vec<LeaseEvent>, programmed: &mut HashMap<ClientKey, Ipv4Addr>| {
            for ev in evs {
                match ev {
                    LeaseEvent::Bound(l) => {
                        prop_assert!(programmed.insert(l.key, l.ipv4).is_none(), "Bound twice");
                    }
                    LeaseEvent::Renewed(l) => {
                        prop_assert_eq!(programmed.get(&l.key), Some(&l.ipv4), "renew changed address");
                    }
                    LeaseEvent::Released(l) | LeaseEvent::Declined(l) | LeaseEvent::Expired(l) => {
                        prop_assert_eq!(programmed.remove(&l.key), Some(l.ipv4));
                    }
                }
            }
            Ok(())
        };
        for a in acts {
            let (events, reply) = match a {
                Act::Tick(ms) => {
                    now += u64::from(ms);
                    (srv.poll(now), None)
                }
                Act::AdminRelease(c) => (srv.release(&key([2, 0, 0, 0, 0, c])).into_iter().collect(), None),
                Act::Discover(c) | Act::Select(c) | Act::Renew(c) | Act::Release(c) | Act::Decline(c) => {
                    let mac = [2, 0, 0, 0, 0, c];
                    let held = srv.lease(&key(mac)).map(|l| l.ipv4);
                    let msg = match a {
                        Act::Discover(_) => client_msg(mac, MessageType::Discover, Ipv4Addr::UNSPECIFIED, None, None),
                        Act::Select(_) => {
                            let want = offered.get(&c).copied().unwrap_or(Ipv4Addr::new(10, 1, 0, 51));
                            client_msg(mac, MessageType::Request, Ipv4Addr::UNSPECIFIED, Some(want), Some(cfg.gateway))
                        }
                        Act::Renew(_) => client_msg(mac, MessageType::Request, held.unwrap_or(Ipv4Addr::new(10, 1, 0, 52)), None, None),
                        Act::Release(_) => client_msg(mac, MessageType::Release, held.unwrap_or(Ipv4Addr::new(10, 1, 0, 53)), None, Some(cfg.gateway)),
                        _ => client_msg(mac, MessageType::Decline, Ipv4Addr::UNSPECIFIED, held.or(Some(Ipv4Addr::new(10, 1, 0, 54))), Some(cfg.gateway)),
                    };
                    let h = srv.handle(now, &ctx(mac), &wire(&msg), &mut auth);
                    if let Some(r) = &h.reply
                        && r.msg.opts().msg_type() == Some(MessageType::Offer)
                    {
                        offered.insert(c, r.msg.yiaddr());
                    }
                    (h.events, h.reply)
                }
            };
            if let Some(r) = &reply {
                let y = r.msg.yiaddr();
                if !y.is_unspecified() {
                    prop_assert!(cfg.is_subnet_host(y) && y != cfg.gateway, "handed out {}", y);
                    prop_assert!(y >= cfg.range_start && y <= cfg.range_end);
                }
                prop_assert!(r.msg.to_vec().is_ok());
            }
            apply(events, &mut programmed)?;
            let mut seen = HashSet::new();
            for l in srv.leases() {
                prop_assert!(seen.insert(l.ipv4), "two leases share {}", l.ipv4);
                prop_assert!(cfg.is_subnet_host(l.ipv4) && l.ipv4 != cfg.gateway);
                prop_assert!(l.ipv4 >= cfg.range_start && l.ipv4 <= cfg.range_end);
                prop_assert_eq!(programmed.get(&l.key), Some(&l.ipv4), "event stream out of sync");
            }
            prop_assert_eq!(seen.len(), programmed.len());
        }
        // Releasing everything returns every address.
        let keys: Vec<ClientKey> = srv.leases().map(|l| l.key).collect();
        for k in keys {
            prop_assert!(matches!(srv.release(&k), Some(LeaseEvent::Released(_))));
        }
        srv.poll(now + OFFER_HOLD_MS);
        let pool = srv.pool("p").unwrap();
        prop_assert_eq!(pool.in_use(), 0);
        prop_assert_eq!(pool.available() + pool.quarantined(), pool.capacity());
    }
}
