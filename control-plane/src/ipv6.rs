//! The DHCPv6 server both access types share: PPPoE sessions (after
//! IPv6CP) and IPoE subscribers (next to their DHCPv4 lease) take their
//! /64s, addresses and delegated prefixes from the same pools, so one
//! server holds every binding and no prefix is handed out twice.
//!
//! Each user keeps its own links (one per session) in the server; their
//! ids never meet: PPPoE counts up from [`PPPOE_FIRST_LINK`], IPoE from
//! [`IPOE_FIRST_LINK`].

use std::net::Ipv6Addr;
use std::sync::{Arc, Mutex, MutexGuard};

use tracing::warn;
use vbng_access::dhcpv6::server::LinkState;
use vbng_access::dhcpv6::{self, Dhcpv6Server, Ipv6PoolConfig, LinkId};
use vbng_access::ipv6::Ipv6Prefix;
use vbng_access::ipv6::packet::{self, Ipv6Packet, NEXT_HEADER_ICMPV6, NEXT_HEADER_UDP};
use vbng_access::ipv6::ra::RouterAdvertiser;
use vbng_dataplane::wire::EthernetAddress;

use crate::api::model::Ipv6View;
use crate::cups::Ipv6Prefixes;

/// The first DHCPv6 link id of PPPoE sessions.
pub const PPPOE_FIRST_LINK: LinkId = 1;
/// The first DHCPv6 link id of IPoE subscribers.
pub const IPOE_FIRST_LINK: LinkId = 1 << 62;

/// The shared DHCPv6 server.
#[derive(Debug, Clone)]
pub struct SharedDhcpv6(Arc<Mutex<Dhcpv6Server>>);

impl SharedDhcpv6 {
    /// The server of a gateway with MAC `gateway_mac` (its DUID-LL) for
    /// `pools`, Rapid Commit allowed. Pools the server refuses (the config
    /// loader checked them: only a set built in code can be bad) leave
    /// IPv6 off rather than the service down.
    pub fn new(gateway_mac: EthernetAddress, pools: Vec<Ipv6PoolConfig>) -> Self {
        let duid = dhcpv6::duid_ll(gateway_mac.0);
        let server = Dhcpv6Server::new(duid.clone(), pools, true).unwrap_or_else(|e| {
            warn!(error = %e, "IPv6 pools refused; IPv6 is off");
            Dhcpv6Server::new(duid, Vec::new(), true).expect("no pools is a valid set")
        });
        SharedDhcpv6(Arc::new(Mutex::new(server)))
    }

    /// The server, locked. Hold it briefly: both access types' tasks use it.
    pub fn lock(&self) -> MutexGuard<'_, Dhcpv6Server> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The prefix lengths the user plane takes for a session's prefix or
/// delegated prefix.
const FORWARDED_PREFIX_LENS: std::ops::RangeInclusive<u8> = 1..=64;

/// An AAA prefix attribute (`addr/len` text), if it parses.
pub fn aaa_prefix(text: Option<&String>) -> Option<Ipv6Prefix> {
    let text = text?;
    match text.parse::<Ipv6Prefix>() {
        Ok(p) => Some(p),
        Err(e) => {
            warn!(prefix = %text, error = %e, "IPv6 prefix from AAA ignored");
            None
        }
    }
}

/// What a session's DHCPv6 link `s` holds, for the API: our link-local
/// address `ours`, the subscriber's `peer`, and what is bound.
pub fn link_view(ours: Ipv6Addr, peer: Ipv6Addr, s: &LinkState) -> Ipv6View {
    Ipv6View {
        link_local: ours,
        peer_link_local: peer,
        prefix: s.link_prefix.map(|p| p.to_string()),
        address: s.address.filter(|_| s.address_bound),
        delegated_prefix: s
            .delegated_prefix
            .filter(|_| s.delegated_bound)
            .map(|p| p.to_string()),
    }
}

/// What the user plane is to forward to session `session` of its DHCPv6
/// link `s`: the link's /64 and its bound delegated prefix (each only if
/// /1 to /64); `None` if neither.
pub fn link_prefixes(session: u64, s: &LinkState) -> Option<Ipv6Prefixes> {
    let forwarded = |p: Ipv6Prefix, what: &str| {
        if FORWARDED_PREFIX_LENS.contains(&p.len()) {
            Some((p.addr(), p.len()))
        } else {
            warn!(session, prefix = %p, what,
                "prefix not /1 to /64: not given to the user plane, not forwarded");
            None
        }
    };
    let v6 = Ipv6Prefixes {
        prefix: s.link_prefix.and_then(|p| forwarded(p, "link prefix")),
        delegated: s
            .delegated_prefix
            .filter(|_| s.delegated_bound)
            .and_then(|p| forwarded(p, "delegated prefix")),
    };
    (v6 != Ipv6Prefixes::default()).then_some(v6)
}

/// Hop limit of our DHCPv6 replies (link-local, any value works).
const DHCPV6_HOP_LIMIT: u8 = 64;

/// The answer of a subscriber's IPv6 link (DHCPv6 link `link` of
/// `server`, router `router`) to the IPv6 packet `pkt` the subscriber sent:
/// a Router or Neighbor Advertisement for a solicitation, the DHCPv6
/// server's reply to a message to port 547, or nothing; and whether the
/// DHCPv6 bindings changed.
pub fn answer(
    server: &SharedDhcpv6,
    link: LinkId,
    router: &mut RouterAdvertiser,
    pkt: &Ipv6Packet<'_>,
) -> (Option<Vec<u8>>, bool) {
    match pkt.next_header {
        NEXT_HEADER_ICMPV6 => (router.input(pkt), false),
        NEXT_HEADER_UDP => match packet::parse_udp(pkt) {
            Ok(udp) if udp.dst_port == dhcpv6::SERVER_PORT => {
                let h = server.lock().handle(link, udp.payload);
                let reply = h.reply.map(|r| {
                    packet::emit_udp(
                        router.address(),
                        pkt.src,
                        dhcpv6::SERVER_PORT,
                        udp.src_port,
                        DHCPV6_HOP_LIMIT,
                        &r,
                    )
                });
                (reply, h.bindings_changed)
            }
            _ => (None, false),
        },
        _ => (None, false),
    }
}
