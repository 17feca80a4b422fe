//! IPv6 over PPPoE sessions end to end in the control plane, against an
//! in-test user plane: a scripted client (the frames pppd `+ipv6` and a
//! DHCPv6 client send) negotiates IPv6CP (its zero interface identifier is
//! Naked with a suggestion), receives Router Advertisements unsolicited and
//! on Router Solicitation (M and O set, the session's /64, the MTU), and
//! leases an address (IA_NA) and a delegated prefix (IA_PD) by DHCPv6; a
//! second session gets others; Release gives them back. With a lease
//! file, the session's IPv6 survives a restart of the control plane.
//!
//! The user plane gets the session's prefixes as PDRs 3 and 4: installed
//! when IPv6CP opens (the /64), replaced when DHCPv6 delegates a prefix
//! (its Framed-IPv6-Route) and when it is released, removed when IPv6CP
//! closes, and part of the establishment of a restored session.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use common::pppoe_client::PppoeClient;
use common::{FakeUp, start_cp, wait_for};
use tokio::net::UdpSocket;
use vbng_access::dhcproto::v6::{
    DhcpOption, DhcpOptions, IAAddr, IANA, IAPD, IAPrefix, Message, MessageType, ORO, OptionCode,
    Status,
};
use vbng_access::dhcproto::{Decodable, Encodable};
use vbng_access::dhcpv6::Ipv6PoolConfig;
use vbng_access::ipv6::packet::{self, emit_icmpv6, emit_udp, parse_icmpv6, parse_udp};
use vbng_access::ipv6::ra::{ROUTER_ADVERTISEMENT, ROUTER_SOLICITATION, parse_advertisement};
use vbng_access::ipv6::{ALL_DHCP_SERVERS, ALL_NODES, ALL_ROUTERS, Ipv6Prefix, link_local};
use vbng_access::ppp::wire::emit_packet;
use vbng_access::pppoe::wire::{self as pppoe_wire, Code};
use vbng_cp::aaa::LocalSubscribers;
use vbng_cp::config::Config;
use vbng_cp::lab::ScratchDir;
use vbng_cp::service::Running;
use vbng_cups::pfcp::{
    CreatePdr, FramedIpv6Route, Interface, Message as Pfcp, SessionModificationRequest, UeIpAddress,
};
use vbng_dataplane::wire::EtherType;

const USERS: &str =
    "[default]\npolicy = \"deny\"\n\n[[users]]\nname = \"alice\"\npassword = \"alice-secret\"\n";
/// The modified EUI-64 of the default gateway MAC 02:00:5e:00:01:01.
const GATEWAY_IID: u64 = 0x0000_5eff_fe00_0101;
/// The PPP code of a Terminate-Request (RFC 1661 section 5.5).
const TERMINATE_REQUEST: u8 = 5;
const DUID: [u8; 10] = [0, 3, 0, 1, 2, 0, 0, 0, 0, 0x61];

fn prefix(s: &str) -> Ipv6Prefix {
    s.parse().unwrap()
}

fn subscribers() -> LocalSubscribers {
    LocalSubscribers::parse("subscribers.toml", USERS).unwrap()
}

async fn setup() -> (FakeUp, UdpSocket, Running) {
    let up = FakeUp::start(Ipv4Addr::LOCALHOST).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let running = start_cp(&up, &sock, subscribers(), dual_stack_config()).await;
    (up, sock, running)
}

/// IPv4 and, in pool `default`, per-session /64s and delegated /56s.
fn dual_stack_config() -> Config {
    let ipv6_pools = vec![Ipv6PoolConfig {
        name: "default".into(),
        prefix: Some(prefix("2001:db8:100::/56")),
        // Room for two delegated /56s.
        pd_prefix: Some(prefix("2001:db8:200::/55")),
        pd_length: 56,
        dns: vec!["2001:db8::53".parse().unwrap()],
        slaac: false,
        lease_time_s: 600,
    }];
    Config {
        ipv6_pools,
        ..Config::default()
    }
}

/// A PPPoE session up with IPv4 and IPv6CP for `mac`; returns the client
/// and the interface identifier it ended up with.
async fn session(sock: UdpSocket, running: &Running, mac: u8) -> (PppoeClient, u64) {
    let mut c = PppoeClient {
        sock,
        cp: running.gtpu_addr,
        mac: [2, 0, 0, 0, 0, mac],
        session_id: 0,
    };
    c.discover().await;
    c.negotiate(b"alice", b"alice-secret")
        .await
        .expect("session up");
    // pppd with a zero identifier: the server suggests one.
    let (ours, server) = c.negotiate_ipv6cp(0).await;
    assert_ne!(ours, 0);
    assert_ne!(ours, GATEWAY_IID);
    assert_eq!(server, GATEWAY_IID);
    (c, ours)
}

/// The next Router Advertisement: (destination, what it says).
async fn next_ra(c: &PppoeClient) -> (Ipv6Addr, vbng_access::ipv6::ra::Advertisement) {
    loop {
        let bytes = c.recv_ipv6(Duration::from_secs(5)).await.expect("an RA");
        let p = packet::parse(&bytes).unwrap();
        let Ok(m) = parse_icmpv6(&p) else { continue };
        if m.typ != ROUTER_ADVERTISEMENT {
            continue;
        }
        assert_eq!(p.src, link_local(GATEWAY_IID));
        assert_eq!(p.hop_limit, 255);
        return (p.dst, parse_advertisement(m.body).unwrap());
    }
}

fn client_msg(kind: MessageType, server: Option<Vec<u8>>, ias: Vec<DhcpOption>) -> Vec<u8> {
    let mut m = Message::new_with_id(kind, [7, 7, 7]);
    let o = m.opts_mut();
    o.insert(DhcpOption::ClientId(DUID.to_vec()));
    if let Some(s) = server {
        o.insert(DhcpOption::ServerId(s));
    }
    o.insert(DhcpOption::ORO(ORO {
        opts: vec![OptionCode::DomainNameServers],
    }));
    for ia in ias {
        o.insert(ia);
    }
    m.to_vec().unwrap()
}

fn ias(addr: Option<Ipv6Addr>, pd: Option<Ipv6Prefix>) -> Vec<DhcpOption> {
    let mut na = DhcpOptions::new();
    if let Some(addr) = addr {
        na.insert(DhcpOption::IAAddr(IAAddr {
            addr,
            preferred_life: 0,
            valid_life: 0,
            opts: DhcpOptions::new(),
        }));
    }
    let mut pdo = DhcpOptions::new();
    if let Some(p) = pd {
        pdo.insert(DhcpOption::IAPrefix(IAPrefix {
            preferred_lifetime: 0,
            valid_lifetime: 0,
            prefix_len: p.len(),
            prefix_ip: p.addr(),
            opts: DhcpOptions::new(),
        }));
    }
    vec![
        DhcpOption::IANA(IANA {
            id: 1,
            t1: 0,
            t2: 0,
            opts: na,
        }),
        DhcpOption::IAPD(IAPD {
            id: 2,
            t1: 0,
            t2: 0,
            opts: pdo,
        }),
    ]
}

/// Send a DHCPv6 message from `src` and return the server's answer.
async fn dhcpv6(c: &PppoeClient, src: Ipv6Addr, msg: &[u8]) -> Message {
    c.send_ipv6(&emit_udp(src, ALL_DHCP_SERVERS, 546, 547, 1, msg))
        .await;
    loop {
        let bytes = c
            .recv_ipv6(Duration::from_secs(5))
            .await
            .expect("a DHCPv6 answer");
        let p = packet::parse(&bytes).unwrap();
        let Ok(udp) = parse_udp(&p) else { continue };
        assert_eq!((p.src, p.dst), (link_local(GATEWAY_IID), src));
        assert_eq!((udp.src_port, udp.dst_port), (547, 546));
        return Message::from_bytes(udp.payload).unwrap();
    }
}

/// (address, delegated prefix, DNS, statuses) of a server message.
fn leased(
    m: &Message,
) -> (
    Option<Ipv6Addr>,
    Option<Ipv6Prefix>,
    Vec<Ipv6Addr>,
    Vec<Status>,
) {
    let (mut a, mut p, mut dns, mut st) = (None, None, Vec::new(), Vec::new());
    for o in m.opts().iter() {
        match o {
            DhcpOption::IANA(ia) => ia.opts.iter().for_each(|i| match i {
                DhcpOption::IAAddr(x) => a = Some(x.addr),
                DhcpOption::StatusCode(s) => st.push(s.status),
                _ => {}
            }),
            DhcpOption::IAPD(ia) => ia.opts.iter().for_each(|i| match i {
                DhcpOption::IAPrefix(x) => {
                    p = Some(Ipv6Prefix::new(x.prefix_ip, x.prefix_len).unwrap())
                }
                DhcpOption::StatusCode(s) => st.push(s.status),
                _ => {}
            }),
            DhcpOption::DomainNameServers(d) => dns = d.clone(),
            DhcpOption::StatusCode(s) => st.push(s.status),
            _ => {}
        }
    }
    (a, p, dns, st)
}

/// Solicit/Advertise/Request/Reply; returns the server DUID, address and prefix.
async fn lease(c: &PppoeClient, src: Ipv6Addr) -> (Vec<u8>, Ipv6Addr, Ipv6Prefix) {
    let adv = dhcpv6(
        c,
        src,
        &client_msg(MessageType::Solicit, None, ias(None, None)),
    )
    .await;
    assert_eq!(adv.msg_type(), MessageType::Advertise);
    let Some(DhcpOption::ServerId(server)) = adv.opts().get(OptionCode::ServerId).cloned() else {
        panic!("no Server Identifier in {adv:?}");
    };
    assert_eq!(
        server,
        [0, 3, 0, 1, 2, 0, 0x5e, 0, 1, 1],
        "DUID-LL of the gateway MAC"
    );
    let (a, p, dns, _) = leased(&adv);
    let (a, p) = (a.expect("an address"), p.expect("a prefix"));
    assert_eq!(dns, vec!["2001:db8::53".parse::<Ipv6Addr>().unwrap()]);
    let req = client_msg(
        MessageType::Request,
        Some(server.clone()),
        ias(Some(a), Some(p)),
    );
    let reply = dhcpv6(c, src, &req).await;
    assert_eq!(reply.msg_type(), MessageType::Reply);
    let (a2, p2, _, _) = leased(&reply);
    assert_eq!((a2, p2), (Some(a), Some(p)));
    (server, a, p)
}

/// The UP SEID of PPPoE session `session_id`, once it is programmed.
async fn up_seid(running: &Running, session_id: u16) -> u64 {
    wait_for("the session programmed", || {
        running
            .sessions
            .snapshot()
            .into_iter()
            .find(|s| s.pppoe_session_id == Some(session_id))
            .and_then(|s| s.up_seid)
    })
    .await
}

/// The Session Modification Requests for UP SEID `seid` that create or
/// remove PDRs (the IPv6 PDRs), once there are `n` of them; exactly `n`.
async fn ipv6_pdr_requests(up: &FakeUp, seid: u64, n: usize) -> Vec<SessionModificationRequest> {
    let of_session = || -> Vec<SessionModificationRequest> {
        up.modification_requests()
            .into_iter()
            .filter(|(s, r)| {
                *s == Some(seid) && !(r.create_pdrs.is_empty() && r.remove_pdrs.is_empty())
            })
            .map(|(_, r)| r)
            .collect()
    };
    let reqs = wait_for("the IPv6 PDR changes", || {
        let r = of_session();
        (r.len() >= n).then_some(r)
    })
    .await;
    assert_eq!(reqs.len(), n, "{reqs:#?}");
    reqs
}

/// The IPv4 uplink PDR (PDR 1) of the first establishment of PPPoE
/// session `session_id` that `up` received.
fn ipv4_uplink(up: &FakeUp, session_id: u16) -> CreatePdr {
    up.messages()
        .into_iter()
        .find_map(|(_, _, m)| match m {
            Pfcp::SessionEstablishmentRequest(r) => r
                .create_pdrs
                .into_iter()
                .find(|p| p.pdr_id == 1 && p.pdi.pppoe_session_id == Some(session_id)),
            _ => None,
        })
        .expect("the session's establishment")
}

/// Checks that `pdrs` are the IPv6 PDRs 3 and 4 of PPPoE session
/// `session_id` of client `mac`, whose IPv4 uplink PDR is `v4`: its /64
/// `p64` as UE IP Address (source uplink, destination downlink, prefix
/// length 64), `delegated` as their one Framed-IPv6-Route, the uplink
/// matching the client's MAC (the access match of `v4`), PPPoE session and
/// PPP protocol IPv6, the FARs to the core and to the access side, the
/// session's QER and URR.
fn assert_ipv6_pdrs(
    pdrs: &[CreatePdr],
    v4: &CreatePdr,
    session_id: u16,
    mac: [u8; 6],
    p64: Ipv6Prefix,
    delegated: Option<Ipv6Prefix>,
) {
    let [up, down] = pdrs else {
        panic!("two Create PDRs expected: {pdrs:#?}");
    };
    let ue = |is_destination| {
        Some(UeIpAddress {
            ipv4: None,
            ipv6: Some(p64.addr()),
            is_destination,
            ipv6_prefix_len: Some(64),
        })
    };
    let routes: Vec<FramedIpv6Route> = delegated
        .map(|d| FramedIpv6Route::new(d.addr(), d.len()).unwrap())
        .into_iter()
        .collect();
    assert_eq!(up.pdr_id, 3);
    assert_eq!(up.pdi.source_interface, Interface::Access);
    assert_eq!(up.pdi.ue_ip_address, ue(false));
    assert_eq!(up.pdi.framed_ipv6_routes, routes);
    assert_eq!(up.pdi.pppoe_session_id, Some(session_id));
    assert_eq!(up.pdi.ppp_protocol.and_then(|p| p.protocol), Some(0x0057));
    let epf = up.pdi.ethernet_packet_filter.unwrap();
    assert_eq!(epf.mac_address.and_then(|m| m.source), Some(mac));
    assert_eq!(up.pdi.ethernet_packet_filter, v4.pdi.ethernet_packet_filter);
    assert_eq!(up.pdi.logical_port, v4.pdi.logical_port);
    assert_eq!(up.bbf_outer_header_removal, v4.bbf_outer_header_removal);
    assert_eq!(up.precedence, v4.precedence);
    assert_eq!(up.far_id, Some(1), "to the core");
    assert_eq!(down.pdr_id, 4);
    assert_eq!(down.pdi.source_interface, Interface::Core);
    assert_eq!(down.pdi.ue_ip_address, ue(true));
    assert_eq!(down.pdi.framed_ipv6_routes, routes);
    assert_eq!(down.far_id, Some(2), "to the access side");
    for p in [up, down] {
        assert_eq!((&p.qer_ids[..], &p.urr_ids[..]), (&[1][..], &[1][..]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6cp_ra_and_dhcpv6_over_pppoe() {
    let (up, sock, running) = setup().await;
    let (c1, iid1) = session(sock, &running, 0x61).await;
    let ll1 = link_local(iid1);

    // The unsolicited RA once IPv6CP opened, then one answering an RS.
    let (dst, ad) = next_ra(&c1).await;
    assert_eq!(dst, ALL_NODES);
    assert!(ad.managed && ad.other, "M and O: use DHCPv6");
    assert_eq!(ad.mtu, Some(1492));
    assert_eq!(ad.router_lifetime_s, 1800);
    let (p64, on_link, autonomous, _, _) = ad.prefixes[0];
    assert_eq!(p64, prefix("2001:db8:100::/64"));
    assert!(on_link && !autonomous);
    let rs = emit_icmpv6(ll1, ALL_ROUTERS, 255, ROUTER_SOLICITATION, 0, &[0; 4]);
    c1.send_ipv6(&rs).await;
    let (dst, ad) = next_ra(&c1).await;
    assert_eq!(dst, ll1, "a solicited RA goes to the soliciting host");
    assert_eq!(ad.prefixes[0].0, p64);

    // The user plane got the /64: Create PDR 3 and 4, nothing removed.
    let seid1 = up_seid(&running, c1.session_id).await;
    let reqs = ipv6_pdr_requests(&up, seid1, 1).await;
    assert!(reqs[0].remove_pdrs.is_empty());
    assert!(reqs[0].update_pdrs.is_empty() && reqs[0].create_fars.is_empty());
    assert_ipv6_pdrs(
        &reqs[0].create_pdrs,
        &ipv4_uplink(&up, c1.session_id),
        c1.session_id,
        c1.mac,
        p64,
        None,
    );

    // DHCPv6: the address is the /64 plus the client's identifier, the
    // delegated prefix the pool's first /56.
    let (server, a1, pd1) = lease(&c1, ll1).await;
    assert_eq!(
        a1,
        Ipv6Addr::from(u128::from(p64.addr()) | u128::from(iid1))
    );
    assert_eq!(pd1, prefix("2001:db8:200::/56"));
    assert!(
        p64.covers(&Ipv6Prefix::containing(a1, 128)),
        "the IA_NA address is in the /64 the user plane forwards"
    );
    // The delegated prefix bound: PDR 3 and 4 replaced (removed and
    // created again in one request) with it as Framed-IPv6-Route.
    let reqs = ipv6_pdr_requests(&up, seid1, 2).await;
    assert_eq!(reqs[1].remove_pdrs, [3, 4]);
    assert_ipv6_pdrs(
        &reqs[1].create_pdrs,
        &ipv4_uplink(&up, c1.session_id),
        c1.session_id,
        c1.mac,
        p64,
        Some(pd1),
    );
    let v = wait_for("IPv6 in GET /sessions", || {
        running
            .sessions
            .snapshot()
            .into_iter()
            .find(|s| s.pppoe_session_id == Some(c1.session_id))
            .and_then(|s| s.ipv6.filter(|v| v.delegated_prefix.is_some()))
    })
    .await;
    assert_eq!(v.address, Some(a1));
    assert_eq!(v.prefix.as_deref(), Some("2001:db8:100::/64"));
    assert_eq!(v.delegated_prefix.as_deref(), Some("2001:db8:200::/56"));
    assert_eq!(v.link_local, link_local(GATEWAY_IID));
    assert_eq!(v.peer_link_local, ll1);
    let s1 = c1.session_id;

    // A second session: another /64, the other delegated prefix.
    let (c2, iid2) = session(c1.sock, &running, 0x62).await;
    let ll2 = link_local(iid2);
    let (_, ad2) = next_ra(&c2).await;
    assert_eq!(ad2.prefixes[0].0, prefix("2001:db8:100:1::/64"));
    let (_, a2, pd2) = lease(&c2, ll2).await;
    assert_ne!(a2, a1);
    assert_eq!(pd2, prefix("2001:db8:200:100::/56"));

    // Session 1 releases: the registry shows nothing bound, and a third
    // session gets the delegated prefix it gave back (the pool has two).
    let c1 = PppoeClient {
        sock: c2.sock,
        cp: running.gtpu_addr,
        mac: [2, 0, 0, 0, 0, 0x61],
        session_id: s1,
    };
    let rel = client_msg(MessageType::Release, Some(server), ias(Some(a1), Some(pd1)));
    let reply = dhcpv6(&c1, ll1, &rel).await;
    assert_eq!(leased(&reply).3, vec![Status::Success]);
    wait_for("release shown", || {
        running
            .sessions
            .snapshot()
            .into_iter()
            .find(|s| s.pppoe_session_id == Some(s1))
            .and_then(|s| s.ipv6)
            .filter(|v| v.address.is_none() && v.delegated_prefix.is_none())
    })
    .await;
    // The prefix released: PDR 3 and 4 replaced without it.
    let reqs = ipv6_pdr_requests(&up, seid1, 3).await;
    assert_eq!(reqs[2].remove_pdrs, [3, 4]);
    assert_ipv6_pdrs(
        &reqs[2].create_pdrs,
        &ipv4_uplink(&up, c1.session_id),
        c1.session_id,
        c1.mac,
        p64,
        None,
    );

    // The client closes IPv6CP (Terminate-Request) and keeps IPv4: PDR 3
    // and 4 removed, the session stays.
    c1.send_ppp(vbng_access::ppp::proto::IPV6CP, &emit_packet(5, 0x42, &[]))
        .await;
    let reqs = ipv6_pdr_requests(&up, seid1, 4).await;
    assert_eq!(
        reqs[3],
        SessionModificationRequest {
            remove_pdrs: vec![3, 4],
            ..Default::default()
        }
    );
    let s = running
        .sessions
        .snapshot()
        .into_iter()
        .find(|s| s.pppoe_session_id == Some(s1))
        .unwrap();
    assert_eq!((s.state.as_str(), s.up_seid), ("active", Some(seid1)));
    assert!(
        !up.messages()
            .iter()
            .any(|(_, h, m)| matches!(m, Pfcp::SessionDeletionRequest(_)) && h.seid == Some(seid1))
    );

    let (c3, iid3) = session(c1.sock, &running, 0x63).await;
    let (_, _, pd3) = lease(&c3, link_local(iid3)).await;
    assert_eq!(pd3, pd1, "the released prefix is handed out again");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_ipv6_pdrs_keep_the_session_and_acl_changes_cover_them() {
    let (up, sock, running) = setup().await;
    // The user plane refuses every modification: the session's /64 is
    // not installed, and the session stays up.
    up.reject_modify
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (c, iid) = session(sock, &running, 0x61).await;
    let (_, ad) = next_ra(&c).await;
    let p64 = ad.prefixes[0].0;
    let seid = up_seid(&running, c.session_id).await;
    let refused = ipv6_pdr_requests(&up, seid, 1).await;
    assert!(refused[0].remove_pdrs.is_empty(), "an install");
    let id = wait_for("the session, still active", || {
        running
            .sessions
            .snapshot()
            .into_iter()
            .find(|s| s.pppoe_session_id == Some(c.session_id) && s.state == "active")
            .map(|s| s.id)
    })
    .await;

    // Once the user plane takes modifications again, the next change
    // (DHCPv6 delegates a prefix) installs the PDRs: nothing is held there.
    up.reject_modify
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let (_, _, pd) = lease(&c, link_local(iid)).await;
    let reqs = ipv6_pdr_requests(&up, seid, 2).await;
    assert!(reqs[1].remove_pdrs.is_empty(), "an install again");
    assert_ipv6_pdrs(
        &reqs[1].create_pdrs,
        &ipv4_uplink(&up, c.session_id),
        c.session_id,
        c.mac,
        p64,
        Some(pd),
    );

    // A live ACL change updates the IPv6 PDRs with the IPv4 ones.
    running
        .sessions
        .set_filter(id, Some("web-only".into()))
        .await
        .expect("ACL change accepted");
    let acl = up
        .modification_requests()
        .into_iter()
        .filter(|(s, r)| *s == Some(seid) && !r.update_pdrs.is_empty())
        .map(|(_, r)| r)
        .collect::<Vec<_>>();
    let [acl] = &acl[..] else {
        panic!("one ACL change: {acl:#?}")
    };
    let ids: Vec<u16> = acl.update_pdrs.iter().map(|u| u.pdr_id).collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    for u in &acl.update_pdrs {
        assert_eq!(u.activate_predefined_rules, ["web-only"]);
    }
    // IPv6CP closes: the PDRs are removed.
    c.send_ppp(vbng_access::ppp::proto::IPV6CP, &emit_packet(5, 0x42, &[]))
        .await;
    let reqs = ipv6_pdr_requests(&up, seid, 3).await;
    assert_eq!(reqs[2].remove_pdrs, [3, 4]);
    assert!(reqs[2].create_pdrs.is_empty());
    running.shutdown().await.unwrap();
}

/// The IPv6 that GET /sessions shows for PPPoE session `session_id`, once
/// its delegated prefix is bound.
async fn shown_ipv6(running: &Running, session_id: u16) -> vbng_cp::api::model::Ipv6View {
    wait_for("IPv6 in GET /sessions", || {
        running
            .sessions
            .snapshot()
            .into_iter()
            .find(|s| s.pppoe_session_id == Some(session_id))
            .and_then(|s| s.ipv6.filter(|v| v.delegated_prefix.is_some()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dual_stack_session_keeps_its_ipv6_across_a_control_plane_restart() {
    let dir = ScratchDir::new("pppoe-v6-restart");
    let leases = dir.join("leases.jsonl");
    let mut cfg = dual_stack_config();
    cfg.dhcp.lease_file = Some(leases.clone());
    let up = FakeUp::start(Ipv4Addr::LOCALHOST).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();

    // The second delegated prefix of the pool, so that a fresh allocation
    // after the restart would not come up with it by chance.
    let first = start_cp(&up, &sock, subscribers(), cfg.clone()).await;
    let (c0, iid0) = session(sock, &first, 0x60).await;
    next_ra(&c0).await;
    let (_, _, pd0) = lease(&c0, link_local(iid0)).await;
    let (mut c1, iid1) = session(c0.sock, &first, 0x61).await;
    let ll1 = link_local(iid1);
    let (_, ad) = next_ra(&c1).await;
    let p64 = ad.prefixes[0].0;
    assert_eq!(p64, prefix("2001:db8:100:1::/64"));
    let (server, a1, pd1) = lease(&c1, ll1).await;
    assert_eq!(pd1, prefix("2001:db8:200:100::/56"));
    assert_ne!(pd1, pd0);
    let before = shown_ipv6(&first, c1.session_id).await;
    // The first control plane gave the user plane the /64 and, once
    // bound, the delegated prefix.
    let seid1 = up_seid(&first, c1.session_id).await;
    let reqs = ipv6_pdr_requests(&up, seid1, 2).await;
    assert_ipv6_pdrs(
        &reqs[1].create_pdrs,
        &ipv4_uplink(&up, c1.session_id),
        c1.session_id,
        c1.mac,
        p64,
        Some(pd1),
    );
    wait_for("the session's IPv6 bindings in the lease file", || {
        let state = vbng_cp::session::journal::replay(&leases).unwrap();
        state
            .pppoe
            .into_iter()
            .find(|p| p.key.session_id == c1.session_id)
            .and_then(|p| p.ipv6)
            .filter(|v| v.address == Some(a1) && v.delegated_prefix == Some(pd1))
    })
    .await;
    // Session 0 ends: after the restart only session 1 holds anything.
    c1.send_from(
        c0.mac,
        EtherType::PppoeDiscovery,
        &pppoe_wire::emit(Code::Padt, c0.session_id, &[]),
    )
    .await;
    wait_for("session 0 gone, also from the lease file", || {
        let journalled = vbng_cp::session::journal::replay(&leases).unwrap().pppoe;
        (first.sessions.snapshot().len() == 1 && journalled.len() == 1).then_some(())
    })
    .await;
    first.shutdown().await.unwrap();

    let establishments_before = up.establishment_requests();

    // A new control plane, same lease file.
    let second = start_cp(&up, &c1.sock, subscribers(), cfg).await;
    c1.cp = second.gtpu_addr;
    // It re-establishes the session with its IPv6 PDRs at once.
    let est = wait_for("the restored session's establishment", || {
        up.messages()
            .into_iter()
            .filter_map(|(_, _, m)| match m {
                Pfcp::SessionEstablishmentRequest(r) => Some(r),
                _ => None,
            })
            .skip(establishments_before)
            .find(|r| r.create_pdrs[0].pdi.pppoe_session_id == Some(c1.session_id))
    })
    .await;
    let ids: Vec<u16> = est.create_pdrs.iter().map(|p| p.pdr_id).collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    assert_ipv6_pdrs(
        &est.create_pdrs[2..],
        &ipv4_uplink(&up, c1.session_id),
        c1.session_id,
        c1.mac,
        p64,
        Some(pd1),
    );
    let seid1 = up_seid(&second, c1.session_id).await;
    // An RA with the same /64 comes unsolicited soon after the restore.
    let (dst, ad) = next_ra(&c1).await;
    assert_eq!(dst, ALL_NODES);
    assert_eq!(ad.prefixes[0].0, p64);
    assert!(ad.managed && ad.other);
    // GET /sessions shows the IPv6 again.
    let after = shown_ipv6(&second, c1.session_id).await;
    assert_eq!(after.address, Some(a1));
    assert_eq!(after.prefix, before.prefix);
    assert_eq!(after.delegated_prefix, before.delegated_prefix);
    assert_eq!(
        (after.link_local, after.peer_link_local),
        (before.link_local, ll1)
    );
    // The client's Renew (same DUID and IAIDs) is answered with the same
    // address and prefix, and so is a Rebind.
    let renew = client_msg(
        MessageType::Renew,
        Some(server.clone()),
        ias(Some(a1), Some(pd1)),
    );
    let reply = dhcpv6(&c1, ll1, &renew).await;
    assert_eq!(reply.msg_type(), MessageType::Reply);
    let (a, pd, dns, statuses) = leased(&reply);
    assert_eq!((a, pd), (Some(a1), Some(pd1)));
    assert_eq!(dns, vec!["2001:db8::53".parse::<Ipv6Addr>().unwrap()]);
    assert!(
        statuses.iter().all(|s| *s == Status::Success),
        "{statuses:?}"
    );
    let rebind = client_msg(MessageType::Rebind, None, ias(Some(a1), Some(pd1)));
    let (a, pd, _, _) = leased(&dhcpv6(&c1, ll1, &rebind).await);
    assert_eq!((a, pd), (Some(a1), Some(pd1)));

    // A new session gets neither the restored /64 nor the restored prefix.
    let s1 = c1.session_id;
    let (c2, iid2) = session(c1.sock, &second, 0x62).await;
    let (_, ad2) = next_ra(&c2).await;
    assert_ne!(ad2.prefixes[0].0, p64);
    let (_, a2, pd2) = lease(&c2, link_local(iid2)).await;
    assert_ne!(a2, a1);
    assert_ne!(pd2, pd1);
    assert_eq!(shown_ipv6(&second, s1).await.address, Some(a1));
    // The restored session's PDRs came with its establishment: its Renew
    // and Rebind (same bindings) changed nothing on the user plane.
    assert!(
        up.modification_requests()
            .iter()
            .all(|(s, r)| *s != Some(seid1)
                || (r.create_pdrs.is_empty() && r.remove_pdrs.is_empty())),
        "{:#?}",
        up.modification_requests()
    );
    second.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_that_cannot_be_restored_is_closed_and_ipv4_kept() {
    let dir = ScratchDir::new("pppoe-v6-gone");
    let leases = dir.join("leases.jsonl");
    let mut cfg = dual_stack_config();
    cfg.dhcp.lease_file = Some(leases.clone());
    let up = FakeUp::start(Ipv4Addr::LOCALHOST).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();

    let first = start_cp(&up, &sock, subscribers(), cfg.clone()).await;
    let (mut c, iid) = session(sock, &first, 0x61).await;
    next_ra(&c).await;
    lease(&c, link_local(iid)).await;
    let session_id = c.session_id;
    let journalled_ipv6 = || {
        vbng_cp::session::journal::replay(&leases)
            .unwrap()
            .pppoe
            .into_iter()
            .find(|p| p.key.session_id == session_id)
            .map(|p| p.ipv6)
    };
    wait_for("the IPv6 bindings in the lease file", || {
        journalled_ipv6()
            .flatten()
            .filter(|v| v.delegated_prefix.is_some())
    })
    .await;
    first.shutdown().await.unwrap();

    // The pool lost its IPv6 part: the session comes back with IPv4 only.
    cfg.ipv6_pools.clear();
    let second = start_cp(&up, &c.sock, subscribers(), cfg).await;
    c.cp = second.gtpu_addr;
    let terminate = loop {
        let (_, _, payload) = c
            .recv(Duration::from_secs(5))
            .await
            .expect("an IPv6CP Terminate-Request");
        if u16::from_be_bytes([payload[0], payload[1]]) == vbng_access::ppp::proto::IPV6CP {
            break payload[2];
        }
    };
    assert_eq!(terminate, TERMINATE_REQUEST);
    let s = wait_for("the restored session", || {
        second
            .sessions
            .snapshot()
            .into_iter()
            .find(|s| s.pppoe_session_id == Some(session_id) && s.state == "active")
    })
    .await;
    assert!(s.ipv6.is_none(), "{:?}", s.ipv6);
    wait_for("the record without IPv6", || {
        (journalled_ipv6() == Some(None)).then_some(())
    })
    .await;
    second.shutdown().await.unwrap();
}
