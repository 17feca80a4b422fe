//! DHCPv6 server tests: the four-message exchange with IA_NA and IA_PD,
//! per-session /64s and shared address ranges, Release, validation,
//! Rapid Commit, AAA prefixes, and arbitrary bytes.

use std::net::Ipv6Addr;

use dhcproto::v6::{
    DhcpOption, DhcpOptions, IAAddr, IANA, IAPD, IAPrefix, Message, MessageType, ORO, OptionCode,
    Status,
};
use dhcproto::{Decodable, Encodable};
use proptest::prelude::*;

use super::server::OpenError;
use super::*;
use crate::ipv6::Ipv6Prefix;

const MAC: [u8; 6] = [2, 0, 0x5e, 0, 1, 1];
const CLIENT_DUID: &[u8] = &[0, 3, 0, 1, 2, 0, 0, 0, 0, 0x42];
const PEER_IID: u64 = 0x1234_56ff_fe78_9abc;

fn p(s: &str) -> Ipv6Prefix {
    s.parse().unwrap()
}

fn pool(prefix: &str) -> Ipv6PoolConfig {
    Ipv6PoolConfig {
        name: "default".into(),
        prefix: Some(p(prefix)),
        pd_prefix: Some(p("2001:db8:200::/55")),
        pd_length: 56,
        dns: vec!["2001:db8::53".parse().unwrap()],
        slaac: false,
        lease_time_s: 3600,
    }
}

fn server(prefix: &str, rapid: bool) -> Dhcpv6Server {
    Dhcpv6Server::new(duid_ll(MAC), vec![pool(prefix)], rapid).unwrap()
}

fn link_request() -> LinkRequest {
    LinkRequest {
        pool: "default".into(),
        peer_interface_id: PEER_IID,
        framed_prefix: None,
        delegated_prefix: None,
    }
}

/// A client message of `kind` with IA_NA 1 and IA_PD 2 (and what `extra` adds).
fn client(kind: MessageType, server_id: Option<&[u8]>, extra: Vec<DhcpOption>) -> Vec<u8> {
    let mut m = Message::new_with_id(kind, [1, 2, 3]);
    let o = m.opts_mut();
    o.insert(DhcpOption::ClientId(CLIENT_DUID.to_vec()));
    if let Some(id) = server_id {
        o.insert(DhcpOption::ServerId(id.to_vec()));
    }
    o.insert(DhcpOption::ORO(ORO {
        opts: vec![OptionCode::DomainNameServers],
    }));
    for e in extra {
        o.insert(e);
    }
    m.to_vec().unwrap()
}

fn ia_na(addr: Option<Ipv6Addr>) -> DhcpOption {
    let mut opts = DhcpOptions::new();
    if let Some(addr) = addr {
        opts.insert(DhcpOption::IAAddr(IAAddr {
            addr,
            preferred_life: 0,
            valid_life: 0,
            opts: DhcpOptions::new(),
        }));
    }
    DhcpOption::IANA(IANA {
        id: 1,
        t1: 0,
        t2: 0,
        opts,
    })
}

fn ia_pd(prefix: Option<Ipv6Prefix>) -> DhcpOption {
    let mut opts = DhcpOptions::new();
    if let Some(pr) = prefix {
        opts.insert(DhcpOption::IAPrefix(IAPrefix {
            preferred_lifetime: 0,
            valid_lifetime: 0,
            prefix_len: pr.len(),
            prefix_ip: pr.addr(),
            opts: DhcpOptions::new(),
        }));
    }
    DhcpOption::IAPD(IAPD {
        id: 2,
        t1: 0,
        t2: 0,
        opts,
    })
}

/// (message type, address, delegated prefix, DNS) of a server message.
fn read(
    bytes: &[u8],
) -> (
    MessageType,
    Option<Ipv6Addr>,
    Option<Ipv6Prefix>,
    Vec<Ipv6Addr>,
) {
    let m = Message::from_bytes(bytes).unwrap();
    assert_eq!(m.xid(), [1, 2, 3]);
    let mut addr = None;
    let mut prefix = None;
    let mut dns = Vec::new();
    for o in m.opts().iter() {
        match o {
            DhcpOption::IANA(ia) => {
                for i in ia.opts.iter() {
                    if let DhcpOption::IAAddr(a) = i {
                        assert_eq!((a.valid_life, ia.t1, ia.t2), (3600, 1800, 2880));
                        addr = Some(a.addr);
                    }
                }
            }
            DhcpOption::IAPD(ia) => {
                for i in ia.opts.iter() {
                    if let DhcpOption::IAPrefix(x) = i {
                        prefix = Some(Ipv6Prefix::new(x.prefix_ip, x.prefix_len).unwrap());
                    }
                }
            }
            DhcpOption::DomainNameServers(d) => dns.clone_from(d),
            DhcpOption::ClientId(id) => assert_eq!(id.as_slice(), CLIENT_DUID),
            DhcpOption::ServerId(id) => assert_eq!(*id, duid_ll(MAC)),
            _ => {}
        }
    }
    (m.msg_type(), addr, prefix, dns)
}

fn status_of(bytes: &[u8]) -> Vec<Status> {
    let m = Message::from_bytes(bytes).unwrap();
    let mut out = Vec::new();
    let mut walk = |opts: &DhcpOptions| {
        for o in opts.iter() {
            if let DhcpOption::StatusCode(s) = o {
                out.push(s.status);
            }
        }
    };
    walk(m.opts());
    for o in m.opts().iter() {
        match o {
            DhcpOption::IANA(ia) => walk(&ia.opts),
            DhcpOption::IAPD(ia) => walk(&ia.opts),
            _ => {}
        }
    }
    out
}

/// Solicit then Request on `link`: the Reply's address and prefix.
fn lease(srv: &mut Dhcpv6Server, link: LinkId) -> (Option<Ipv6Addr>, Option<Ipv6Prefix>) {
    let sol = client(MessageType::Solicit, None, vec![ia_na(None), ia_pd(None)]);
    let h = srv.handle(link, &sol);
    let (kind, a, pd, dns) = read(&h.reply.unwrap());
    assert_eq!(kind, MessageType::Advertise);
    assert_eq!(dns, vec!["2001:db8::53".parse::<Ipv6Addr>().unwrap()]);
    assert!(!h.bindings_changed, "an Advertise binds nothing");
    let req = client(
        MessageType::Request,
        Some(&duid_ll(MAC)),
        vec![ia_na(a), ia_pd(pd)],
    );
    let h = srv.handle(link, &req);
    let (kind, a2, pd2, _) = read(&h.reply.unwrap());
    assert_eq!((kind, a2, pd2), (MessageType::Reply, a, pd));
    assert!(h.bindings_changed);
    (a, pd)
}

#[test]
fn per_session_64_solicit_request_release() {
    let mut srv = server("2001:db8:100::/56", false);
    let l1 = srv.open_link(1, link_request()).unwrap().clone();
    assert_eq!(l1.link_prefix, Some(p("2001:db8:100::/64")));
    let (a, pd) = lease(&mut srv, 1);
    assert_eq!(
        a,
        Some("2001:db8:100:0:1234:56ff:fe78:9abc".parse().unwrap())
    );
    assert_eq!(pd, Some(p("2001:db8:200::/56")));
    let st = srv.link(1).unwrap();
    assert!(st.address_bound && st.delegated_bound);
    // A second session gets another /64 and the other delegated prefix.
    srv.open_link(2, link_request()).unwrap();
    let (a2, pd2) = lease(&mut srv, 2);
    assert_eq!(
        a2,
        Some("2001:db8:100:1:1234:56ff:fe78:9abc".parse().unwrap())
    );
    assert_eq!(pd2, Some(p("2001:db8:200:100::/56")));
    assert_eq!(srv.pool_usage("default"), Some((2, 0, 2)));
    // The pool of two delegated prefixes is exhausted.
    srv.open_link(3, link_request()).unwrap();
    let sol = client(MessageType::Solicit, None, vec![ia_pd(None)]);
    let reply = srv.handle(3, &sol).reply.unwrap();
    assert_eq!(status_of(&reply), vec![Status::NoPrefixAvail]);
    // Release gives link 1's prefix back; link 3 gets it.
    let rel = client(
        MessageType::Release,
        Some(&duid_ll(MAC)),
        vec![ia_na(a), ia_pd(pd)],
    );
    let h = srv.handle(1, &rel);
    assert_eq!(status_of(&h.reply.unwrap()), vec![Status::Success]);
    assert!(h.bindings_changed);
    assert_eq!(srv.link(1).unwrap().delegated_prefix, None);
    assert_eq!(lease(&mut srv, 3).1, pd);
    // Closing a link returns its /64 and prefix.
    srv.close_link(2);
    assert_eq!(srv.pool_usage("default"), Some((2, 0, 1)));
    assert_eq!(srv.counters().released, 2);
}

#[test]
fn shared_address_range_gives_one_address_per_link() {
    let mut srv = server("2001:db8:100::/120", false);
    assert_eq!(srv.open_link(1, link_request()).unwrap().link_prefix, None);
    srv.open_link(2, link_request()).unwrap();
    let (a1, _) = lease(&mut srv, 1);
    let (a2, _) = lease(&mut srv, 2);
    assert_eq!(a1, Some("2001:db8:100::1".parse().unwrap()));
    assert_eq!(a2, Some("2001:db8:100::2".parse().unwrap()));
    // Renew keeps the address.
    let renew = client(MessageType::Renew, Some(&duid_ll(MAC)), vec![ia_na(a1)]);
    assert_eq!(read(&srv.handle(1, &renew).reply.unwrap()).1, a1);
    srv.close_link(1);
    assert_eq!(srv.pool_usage("default"), Some((0, 1, 1)));
}

#[test]
fn invalid_messages_are_discarded() {
    let mut srv = server("2001:db8:100::/56", false);
    srv.open_link(1, link_request()).unwrap();
    let ours = duid_ll(MAC);
    let other = duid_ll([2, 9, 9, 9, 9, 9]);
    let bad = [
        // Solicit naming a server.
        client(MessageType::Solicit, Some(&ours), vec![ia_na(None)]),
        // Request for another server, or none.
        client(MessageType::Request, Some(&other), vec![ia_na(None)]),
        client(MessageType::Request, None, vec![ia_na(None)]),
        // Rebind naming a server.
        client(MessageType::Rebind, Some(&ours), vec![ia_na(None)]),
        // Server messages and Confirm.
        client(MessageType::Reply, None, vec![]),
        client(MessageType::Confirm, None, vec![]),
    ];
    for b in &bad {
        assert_eq!(srv.handle(1, b).reply, None, "{:?}", Message::from_bytes(b));
    }
    // Without a Client Identifier.
    let mut m = Message::new_with_id(MessageType::Solicit, [1, 2, 3]);
    m.opts_mut().insert(ia_na(None));
    assert_eq!(srv.handle(1, &m.to_vec().unwrap()).reply, None);
    // Unknown link, garbage.
    let sol = client(MessageType::Solicit, None, vec![ia_na(None)]);
    assert_eq!(srv.handle(9, &sol).reply, None);
    assert_eq!(srv.handle(1, &[1, 0]).reply, None);
    let c = srv.counters();
    assert_eq!((c.discarded, c.malformed), (8, 1));
}

#[test]
fn rapid_commit_and_information_request() {
    let mut srv = server("2001:db8:100::/56", true);
    srv.open_link(1, link_request()).unwrap();
    let sol = client(
        MessageType::Solicit,
        None,
        vec![ia_na(None), ia_pd(None), DhcpOption::RapidCommit],
    );
    let h = srv.handle(1, &sol);
    let reply = h.reply.unwrap();
    assert_eq!(read(&reply).0, MessageType::Reply);
    assert!(
        Message::from_bytes(&reply)
            .unwrap()
            .opts()
            .get(OptionCode::RapidCommit)
            .is_some()
    );
    assert!(h.bindings_changed && srv.link(1).unwrap().address_bound);
    let info = client(MessageType::InformationRequest, None, vec![]);
    let (kind, a, pd, dns) = read(&srv.handle(1, &info).reply.unwrap());
    assert_eq!(
        (kind, a, pd, dns.len()),
        (MessageType::Reply, None, None, 1)
    );
}

#[test]
fn aaa_prefixes_are_preferred_to_the_pool() {
    let mut srv = server("2001:db8:100::/56", false);
    let st = srv
        .open_link(
            1,
            LinkRequest {
                framed_prefix: Some(p("2001:db8:aaaa:1::/64")),
                delegated_prefix: Some(p("2001:db8:bbbb:100::/56")),
                ..link_request()
            },
        )
        .unwrap();
    assert_eq!(st.link_prefix, Some(p("2001:db8:aaaa:1::/64")));
    let (a, pd) = lease(&mut srv, 1);
    assert_eq!(
        a,
        Some("2001:db8:aaaa:1:1234:56ff:fe78:9abc".parse().unwrap())
    );
    assert_eq!(pd, Some(p("2001:db8:bbbb:100::/56")));
    assert_eq!(srv.pool_usage("default"), Some((0, 0, 0)));
    // A pool without IPv6 and no AAA prefix: no link.
    let none = LinkRequest {
        pool: "other".into(),
        ..link_request()
    };
    assert_eq!(
        srv.open_link(2, none),
        Err(OpenError::NoIpv6("other".into()))
    );
}

#[test]
fn pool_configs_are_checked() {
    let mut bad_pd = pool("2001:db8:100::/56");
    bad_pd.pd_length = 48;
    assert!(matches!(
        Dhcpv6Server::new(vec![], vec![bad_pd], false),
        Err(Ipv6ConfigError::PdLength { .. })
    ));
    let mut overlap = pool("2001:db8:200::/56");
    overlap.pd_prefix = Some(p("2001:db8:200::/48"));
    assert!(matches!(
        Dhcpv6Server::new(vec![], vec![overlap], false),
        Err(Ipv6ConfigError::Overlap { .. })
    ));
    let mut second = pool("2001:db8:300::/56");
    second.name = "b".into();
    assert!(matches!(
        Dhcpv6Server::new(vec![], vec![pool("2001:db8:100::/56"), second], false),
        Err(Ipv6ConfigError::Overlap { .. })
    ));
    let keys: Ipv6PoolKeys = toml::from_str(
        "ipv6_prefix = \"2001:db8:100::/56\"\npd_prefix = \"2001:db8:200::/48\"\ndns6 = [\"2001:db8::53\"]",
    )
    .unwrap();
    let cfg = keys.into_config("x", 600).unwrap();
    assert_eq!(cfg.pd_length, DEFAULT_PD_LENGTH);
    assert!(cfg.per_session_prefix());
    assert!(toml::from_str::<Ipv6PoolKeys>("ipv6_prefix = \"2001:db8::1/64\"").is_err());
    assert_eq!(Ipv6PoolKeys::default().into_config("x", 600), None);
}

proptest! {
    #[test]
    fn arbitrary_messages_never_panic_and_replies_decode(bytes in proptest::collection::vec(any::<u8>(), 0..300), kind in 1u8..12) {
        let mut srv = server("2001:db8:100::/56", true);
        srv.open_link(1, link_request()).unwrap();
        let mut msg = bytes.clone();
        if msg.len() >= 4 {
            msg[0] = kind;
        }
        if let Some(r) = srv.handle(1, &msg).reply {
            prop_assert!(decode(&r).is_ok() || r[0] == 2, "our replies decode");
        }
    }

    #[test]
    fn messages_round_trip_through_decode(iaid in any::<u32>(), addr in any::<u128>(), len in 0u8..=64) {
        let mut m = Message::new_with_id(MessageType::Request, [9, 9, 9]);
        m.opts_mut().insert(DhcpOption::ClientId(CLIENT_DUID.to_vec()));
        m.opts_mut().insert(DhcpOption::IAPD(IAPD {
            id: iaid,
            t1: 1,
            t2: 2,
            opts: {
                let mut o = DhcpOptions::new();
                o.insert(DhcpOption::IAPrefix(IAPrefix {
                    preferred_lifetime: 3,
                    valid_lifetime: 4,
                    prefix_len: len,
                    prefix_ip: Ipv6Addr::from(addr),
                    opts: DhcpOptions::new(),
                }));
                o
            },
        }));
        let bytes = m.to_vec().unwrap();
        prop_assert_eq!(decode(&bytes).unwrap(), m);
    }
}

/// What link `link` holds bound, as a restore gets it from the journal.
fn bindings(srv: &Dhcpv6Server, link: LinkId) -> LinkBindings {
    let s = srv.link(link).unwrap();
    LinkBindings {
        link_prefix: s.link_prefix,
        address: s.address.filter(|_| s.address_bound),
        address_iaid: s.address_iaid,
        delegated_prefix: s.delegated_prefix.filter(|_| s.delegated_bound),
        delegated_iaid: s.delegated_iaid,
        client_id: s.client_id.clone(),
    }
}

#[test]
fn restored_link_renews_the_same_bindings_and_keeps_them_from_others() {
    let mut before = server("2001:db8:100::/56", false);
    before.open_link(1, link_request()).unwrap();
    lease(&mut before, 1);
    // The second of the pool's delegated prefixes, so that a new server
    // would not hand out the same one first.
    before.open_link(2, link_request()).unwrap();
    let (a2, pd2) = lease(&mut before, 2);
    let held = bindings(&before, 2);
    assert_eq!(
        (held.address_iaid, held.delegated_iaid),
        (Some(1), Some(2)),
        "the IAIDs of the Request"
    );
    assert_eq!(held.client_id.as_deref(), Some(CLIENT_DUID));

    let mut after = server("2001:db8:100::/56", false);
    let st = after.restore_link(7, link_request(), &held).unwrap();
    assert_eq!(st.link_prefix, held.link_prefix);
    assert!(st.address_bound && st.delegated_bound);
    assert_eq!(bindings(&after, 7), held);
    let renew = client(
        MessageType::Renew,
        Some(&duid_ll(MAC)),
        vec![ia_na(a2), ia_pd(pd2)],
    );
    let h = after.handle(7, &renew);
    assert_eq!(
        read(&h.reply.unwrap()),
        (
            MessageType::Reply,
            a2,
            pd2,
            vec!["2001:db8::53".parse::<Ipv6Addr>().unwrap()]
        )
    );
    assert!(!h.bindings_changed);
    assert_eq!(after.pool_usage("default"), Some((1, 0, 1)));

    // A new link gets neither the restored /64 nor the restored prefix.
    let other = after.open_link(8, link_request()).unwrap().clone();
    assert_ne!(other.link_prefix, held.link_prefix);
    let (_, pd) = lease(&mut after, 8);
    assert_ne!(pd, pd2);

    // Restoring the same bindings again fails and takes nothing.
    let e = after.restore_link(9, link_request(), &held).unwrap_err();
    assert!(matches!(e, OpenError::Unavailable { .. }), "{e}");
    assert_eq!(after.pool_usage("default"), Some((2, 0, 2)));
    assert!(after.link(9).is_none());
    // Closing the restored link gives everything back.
    after.close_link(7);
    assert_eq!(after.pool_usage("default"), Some((1, 0, 1)));
}

#[test]
fn restore_of_a_prefix_outside_the_pool_fails() {
    let mut srv = server("2001:db8:100::/56", false);
    let held = LinkBindings {
        link_prefix: Some(p("2001:db8:100:5::/64")),
        delegated_prefix: Some(p("2001:db8:999::/56")),
        ..LinkBindings::default()
    };
    let e = srv.restore_link(1, link_request(), &held).unwrap_err();
    assert_eq!(
        e,
        OpenError::Unavailable {
            pool: "default".into(),
            prefix: p("2001:db8:999::/56")
        }
    );
    assert_eq!(
        srv.pool_usage("default"),
        Some((0, 0, 0)),
        "the /64 given back"
    );
    let mut gone = LinkRequest {
        pool: "gone".into(),
        ..link_request()
    };
    assert!(matches!(
        srv.restore_link(1, gone.clone(), &held),
        Err(OpenError::NoIpv6(_))
    ));
    gone.pool = "default".into();
    assert!(srv.restore_link(1, gone, &LinkBindings::default()).is_ok());
}
