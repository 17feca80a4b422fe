//! IPv6 on PPPoE sessions: IPv6CP offered to sessions whose pool (or AAA
//! profile) has IPv6, then, once IPv6CP is opened, the session's router
//! ([`RouterAdvertiser`]: RAs with M and O set, the session's /64 and MTU)
//! and the DHCPv6 server ([`Dhcpv6Server`]: IA_NA, IA_PD, DNS) on PPP
//! protocol 0x0057.
//!
//! The user plane redirects the session's Router and Neighbor
//! Solicitations and DHCPv6 (UDP port 547) here; everything else IPv6 it
//! drops (no IPv6 forwarding yet). Framed-IPv6-Prefix and
//! Delegated-IPv6-Prefix from AAA are preferred to the pool's prefixes.
//! What a session holds is shown in its registry session (`GET
//! /sessions`, `ipv6`) and goes back to the pools when it ends.

use std::collections::HashMap;

use tracing::{debug, info, warn};
use vbng_access::dhcpv6::server::LinkRequest;
use vbng_access::dhcpv6::{self, Dhcpv6Server, Ipv6PoolConfig, LinkId};
use vbng_access::ipv6::packet::{self, NEXT_HEADER_ICMPV6, NEXT_HEADER_UDP};
use vbng_access::ipv6::ra::{RaConfig, RouterAdvertiser};
use vbng_access::ipv6::{Ipv6Prefix, eui64_interface_id, link_local};
use vbng_access::ppp;
use vbng_access::pppoe::discovery::SessionKey;
use vbng_access::pppoe::wire::{self as pppoe_wire, Code};
use vbng_dataplane::wire::{EtherType, EthernetAddress};

use super::PppoeService;
use crate::api::model::Ipv6View;

/// Hop limit of our DHCPv6 replies (link-local, any value works).
const DHCPV6_HOP_LIMIT: u8 = 64;

/// The IPv6 side of the PPPoE service.
#[derive(Debug)]
pub(super) struct Ipv6Service {
    server: Dhcpv6Server,
    ra: RaConfig,
    interface_id: u64,
    next_link: LinkId,
    /// Sessions offered IPv6, with what their link opens with.
    offered: HashMap<SessionKey, LinkRequest>,
    /// Sessions whose IPv6CP opened.
    links: HashMap<SessionKey, Ipv6Link>,
}

#[derive(Debug)]
struct Ipv6Link {
    id: LinkId,
    peer: std::net::Ipv6Addr,
    router: RouterAdvertiser,
    /// IPv6CP is Opened (RAs go out only then).
    active: bool,
}

impl Ipv6Service {
    /// The IPv6 service of a gateway with MAC `gateway_mac` (its DUID-LL
    /// and, as modified EUI-64, our interface identifier) serving
    /// `pools`, advertising with `ra`.
    pub(super) fn new(
        gateway_mac: EthernetAddress,
        pools: Vec<Ipv6PoolConfig>,
        ra: RaConfig,
    ) -> Self {
        let server = Dhcpv6Server::new(dhcpv6::duid_ll(gateway_mac.0), pools.clone(), true)
            .unwrap_or_else(|e| {
                // The config loader checked the pools; a bad set built in
                // code leaves IPv6 off rather than the service down.
                warn!(error = %e, "IPv6 pools refused; IPv6 is off for PPPoE");
                Dhcpv6Server::new(dhcpv6::duid_ll(gateway_mac.0), Vec::new(), true)
                    .expect("no pools is a valid set")
            });
        Ipv6Service {
            server,
            ra,
            interface_id: eui64_interface_id(gateway_mac.0),
            next_link: 1,
            offered: HashMap::new(),
            links: HashMap::new(),
        }
    }
}

/// An AAA prefix attribute (`addr/len` text), if it parses.
fn aaa_prefix(text: Option<&String>) -> Option<Ipv6Prefix> {
    let text = text?;
    match text.parse::<Ipv6Prefix>() {
        Ok(p) => Some(p),
        Err(e) => {
            warn!(prefix = %text, error = %e, "IPv6 prefix from AAA ignored");
            None
        }
    }
}

impl PppoeService {
    /// AAA accepted session `key`: offer it IPv6CP if its pool has IPv6 or
    /// AAA gave it a prefix. Call before the verdict goes to PPP, so that
    /// IPv6CP starts with IPCP.
    pub(super) fn offer_ipv6(&mut self, now: u64, key: &SessionKey) {
        let Some(st) = self.sessions.get_mut(key) else {
            return;
        };
        let Some((profile, session)) = &st.profile else {
            return;
        };
        let framed_prefix = aaa_prefix(session.attrs.framed_ipv6_prefix.as_ref());
        let delegated_prefix = aaa_prefix(session.attrs.delegated_ipv6_prefix.as_ref());
        let v6 = &mut self.ipv6;
        if !v6.server.serves(
            &profile.pool,
            framed_prefix.is_some() || delegated_prefix.is_some(),
        ) {
            return;
        }
        v6.offered.insert(
            *key,
            LinkRequest {
                pool: profile.pool.clone(),
                peer_interface_id: 0,
                framed_prefix,
                delegated_prefix,
            },
        );
        // Still in the Authenticate phase: nothing to send yet.
        let _ = st.ppp.enable_ipv6(now, v6.interface_id);
    }

    /// After PPP moved: start the session's router when IPv6CP opened,
    /// pause it when IPv6CP left Opened.
    pub(super) async fn sync_ipv6(&mut self, key: &SessionKey) {
        let now = crate::monotonic_ms();
        let Some(st) = self.sessions.get(key) else {
            return;
        };
        let ids = st.ppp.ipv6_interface_ids();
        let v6 = &mut self.ipv6;
        let packets = match (ids, v6.links.get_mut(key)) {
            (Some(_), Some(link)) if link.active => return,
            (Some(_), Some(link)) => {
                link.active = true;
                link.router.start(now)
            }
            (None, Some(link)) => {
                link.active = false;
                return;
            }
            (None, None) => return,
            (Some((_, peer)), None) => {
                let Some(mut req) = v6.offered.get(key).cloned() else {
                    return;
                };
                req.peer_interface_id = peer;
                let id = v6.next_link;
                let state = match v6.server.open_link(id, req) {
                    Ok(s) => s.clone(),
                    Err(e) => {
                        warn!(session_id = key.session_id, error = %e, "no IPv6 for the session");
                        v6.offered.remove(key);
                        return;
                    }
                };
                v6.next_link += 1;
                let mut ra = v6.ra;
                ra.autonomous = state.slaac;
                let mut router = RouterAdvertiser::new(ra, v6.interface_id, state.link_prefix);
                let packets = router.start(now);
                info!(session_id = key.session_id, local = %router.address(), peer = %link_local(peer),
                    prefix = ?state.link_prefix, "IPv6CP opened; advertising");
                v6.links.insert(
                    *key,
                    Ipv6Link {
                        id,
                        peer: link_local(peer),
                        router,
                        active: true,
                    },
                );
                self.push_ipv6(key).await;
                packets
            }
        };
        self.send_ipv6(key, packets).await;
    }

    /// A PPP 0x0057 frame of session `key`: true if the IPv6 side took it
    /// (Router or Neighbor Solicitation, DHCPv6 to port 547).
    pub(super) async fn ipv6_frame(&mut self, key: &SessionKey, bytes: &[u8]) -> bool {
        let Some(link) = self.ipv6.links.get_mut(key).filter(|l| l.active) else {
            return false;
        };
        let Ok(pkt) = packet::parse(bytes) else {
            self.metrics.pppoe_drop("ipv6_malformed");
            return true;
        };
        let mut changed = false;
        let reply = match pkt.next_header {
            NEXT_HEADER_ICMPV6 => link.router.input(&pkt),
            NEXT_HEADER_UDP => match packet::parse_udp(&pkt) {
                Ok(udp) if udp.dst_port == dhcpv6::SERVER_PORT => {
                    let h = self.ipv6.server.handle(link.id, udp.payload);
                    changed = h.bindings_changed;
                    h.reply.map(|r| {
                        packet::emit_udp(
                            link.router.address(),
                            pkt.src,
                            dhcpv6::SERVER_PORT,
                            udp.src_port,
                            DHCPV6_HOP_LIMIT,
                            &r,
                        )
                    })
                }
                _ => None,
            },
            _ => None,
        };
        match reply {
            Some(r) => self.send_ipv6(key, vec![r]).await,
            None => {
                debug!(
                    session_id = key.session_id,
                    next_header = pkt.next_header,
                    "IPv6 packet not answered"
                );
                self.metrics.pppoe_drop("ipv6_unanswered");
            }
        }
        if changed {
            if let Some(s) = self
                .ipv6
                .links
                .get(key)
                .and_then(|l| self.ipv6.server.link(l.id))
            {
                info!(session_id = key.session_id, address = ?s.address, delegated = ?s.delegated_prefix,
                    "DHCPv6 bindings changed");
            }
            self.push_ipv6(key).await;
        }
        true
    }

    /// Unsolicited RAs due at `now`.
    pub(super) async fn tick_ipv6(&mut self, now: u64) {
        let due: Vec<(SessionKey, Vec<Vec<u8>>)> = self
            .ipv6
            .links
            .iter_mut()
            .filter(|(_, l)| l.active && l.router.next_deadline().is_some_and(|d| d <= now))
            .map(|(k, l)| (*k, l.router.tick(now)))
            .collect();
        for (key, packets) in due {
            self.send_ipv6(&key, packets).await;
        }
    }

    /// Session `key` ended: its addresses and prefixes go back to the pools.
    pub(super) fn close_ipv6(&mut self, key: &SessionKey) {
        self.ipv6.offered.remove(key);
        if let Some(link) = self.ipv6.links.remove(key) {
            self.ipv6.server.close_link(link.id);
        }
    }

    /// What session `key` has of IPv6, for the API.
    pub(super) fn ipv6_view(&self, key: &SessionKey) -> Option<Ipv6View> {
        let link = self.ipv6.links.get(key)?;
        let s = self.ipv6.server.link(link.id)?;
        Some(Ipv6View {
            link_local: link.router.address(),
            peer_link_local: link.peer,
            prefix: s.link_prefix.map(|p| p.to_string()),
            address: s.address.filter(|_| s.address_bound),
            delegated_prefix: s
                .delegated_prefix
                .filter(|_| s.delegated_bound)
                .map(|p| p.to_string()),
        })
    }

    /// Show session `key`'s IPv6 in its registry session, once programmed.
    pub(super) async fn push_ipv6(&self, key: &SessionKey) {
        let Some(id) = self.sessions.get(key).and_then(|s| s.registry_id) else {
            return;
        };
        self.registry.set_ipv6(id, self.ipv6_view(key));
    }

    /// Send IPv6 packets to session `key` in PPP 0x0057 frames.
    async fn send_ipv6(&self, key: &SessionKey, packets: Vec<Vec<u8>>) {
        let Some(st) = self.sessions.get(key) else {
            return;
        };
        for pkt in packets {
            let mut body = Vec::with_capacity(pkt.len() + 2);
            body.extend_from_slice(&ppp::proto::IPV6.to_be_bytes());
            body.extend_from_slice(&pkt);
            let frame = pppoe_wire::emit(Code::Session, key.session_id, &body);
            self.send(
                st.src,
                key.line.port,
                &st.l2,
                key.mac,
                EtherType::PppoeSession,
                &frame,
            )
            .await;
        }
    }
}
