//! IPv6 on PPPoE sessions: IPv6CP offered to sessions whose pool (or AAA
//! profile) has IPv6, then, once IPv6CP is opened, the session's router
//! ([`RouterAdvertiser`]: RAs with M and O set, the session's /64 and MTU)
//! and the DHCPv6 server ([`Dhcpv6Server`]: IA_NA, IA_PD, DNS) on PPP
//! protocol 0x0057.
//!
//! The user plane redirects the session's Router and Neighbor
//! Solicitations and DHCPv6 (UDP port 547) here, and forwards the
//! session's IPv6 traffic once it has its prefixes: the registry session
//! gets them whenever they change
//! ([`crate::session::Sessions::set_ipv6_prefixes`]) and programs them as
//! PDRs 3 and 4 (see [`crate::cups::program`]):
//!
//! - IPv6CP opens (or a restored session's IPv6 is back): the /64 of the
//!   RAs, and the delegated prefix if one is bound: PDRs installed;
//! - a DHCPv6 IA_PD prefix is bound, changes or is released: PDRs replaced
//!   with or without it as Framed-IPv6-Route;
//! - IPv6CP leaves Opened while the session stays: PDRs removed (the
//!   Session Deletion removes everything when the session ends).
//!
//! The user plane takes prefixes of /1 to /64; a longer one (an AAA
//! Delegated-IPv6-Prefix, say) is left out with a warning. An IA_NA
//! address is forwarded only if it lies in the session's /64 (it always
//! does with a pool of per-session /64s; not with a pool of single
//! addresses or a Framed-IPv6-Prefix longer than /64, which give the
//! session no /64 at all). Framed-IPv6-Prefix and Delegated-IPv6-Prefix
//! from AAA are preferred to the pool's prefixes. What a session holds is
//! shown in its registry session (`GET /sessions`, `ipv6`) and goes back to
//! the pools when it ends.
//!
//! With a lease file, the session's record carries its IPv6
//! ([`StoredIpv6`]), appended again whenever IPv6CP opens or closes or a
//! DHCPv6 binding changes; a restored session gets IPv6CP, its bindings and
//! its router back ([`PppoeService::restore_ipv6`]).

use std::collections::HashMap;

use tracing::{debug, info, warn};
use vbng_access::dhcpv6::LinkId;
use vbng_access::dhcpv6::server::LinkRequest;
use vbng_access::ipv6::packet;
use vbng_access::ipv6::ra::{RaConfig, RouterAdvertiser};
use vbng_access::ipv6::{eui64_interface_id, link_local};
use vbng_access::ppp;
use vbng_access::pppoe::discovery::SessionKey;
use vbng_access::pppoe::wire::{self as pppoe_wire, Code};
use vbng_dataplane::wire::{EtherType, EthernetAddress};

use super::PppoeService;
use crate::api::model::Ipv6View;
use crate::cups::Ipv6Prefixes;
use crate::ipv6::SharedDhcpv6;
use crate::session::journal::{Record, StoredIpv6, StoredPppoe};

/// The IPv6 side of the PPPoE service.
#[derive(Debug)]
pub(super) struct Ipv6Service {
    server: SharedDhcpv6,
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
    /// The IPv6 service of a gateway with MAC `gateway_mac` (as modified
    /// EUI-64, our interface identifier) serving from `server`, advertising
    /// with `ra`.
    pub(super) fn new(gateway_mac: EthernetAddress, server: SharedDhcpv6, ra: RaConfig) -> Self {
        Ipv6Service {
            server,
            ra,
            interface_id: eui64_interface_id(gateway_mac.0),
            next_link: crate::ipv6::PPPOE_FIRST_LINK,
            offered: HashMap::new(),
            links: HashMap::new(),
        }
    }
}

use crate::ipv6::aaa_prefix;

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
        if !v6.server.lock().serves(
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
            (None, Some(link)) if !link.active => return,
            (None, Some(link)) => {
                link.active = false;
                info!(
                    session_id = key.session_id,
                    "IPv6CP left Opened; IPv6 not forwarded"
                );
                Vec::new()
            }
            (None, None) => return,
            (Some((_, peer)), None) => {
                let Some(mut req) = v6.offered.get(key).cloned() else {
                    return;
                };
                req.peer_interface_id = peer;
                let id = v6.next_link;
                let state = match v6.server.lock().open_link(id, req) {
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
                packets
            }
        };
        self.push_ipv6(key).await;
        self.journal_ipv6(key);
        self.send_ipv6(key, packets).await;
    }

    /// Give restored session `key` (already in `sessions`) the IPv6 its
    /// record `rec` holds: IPv6CP Opened with the old interface
    /// identifiers, the DHCPv6 bindings taken again, the router advertising
    /// at once. If the bindings cannot be had (taken, or their pool gone),
    /// IPv6CP is closed with a Terminate-Request, IPv4 stays, and the
    /// record loses its IPv6 part.
    pub(super) async fn restore_ipv6(&mut self, now: u64, key: &SessionKey, rec: &StoredPppoe) {
        let (Some(stored), Some(pool), Some(profile)) = (&rec.ipv6, &rec.pool, &rec.profile) else {
            return;
        };
        let Some(st) = self.sessions.get_mut(key) else {
            return;
        };
        if !st
            .ppp
            .restore_ipv6(now, stored.interface_id, stored.peer_interface_id)
        {
            return;
        }
        let req = LinkRequest {
            pool: pool.clone(),
            peer_interface_id: stored.peer_interface_id,
            framed_prefix: aaa_prefix(profile.attrs.framed_ipv6_prefix.as_ref()),
            delegated_prefix: aaa_prefix(profile.attrs.delegated_ipv6_prefix.as_ref()),
        };
        let v6 = &mut self.ipv6;
        let id = v6.next_link;
        let restored = v6
            .server
            .lock()
            .restore_link(id, req.clone(), &stored.bindings())
            .cloned();
        let state = match restored {
            Ok(s) => s,
            Err(e) => {
                warn!(session_id = key.session_id, error = %e,
                    "IPv6 of the restored PPPoE session not restored; closing IPv6CP, IPv4 stays");
                let out = st.ppp.close_ipv6(now);
                self.emit(key, out).await;
                self.journal_ipv6(key);
                return;
            }
        };
        v6.next_link += 1;
        v6.offered.insert(*key, req);
        let mut ra = v6.ra;
        ra.autonomous = state.slaac;
        let mut router = RouterAdvertiser::new(ra, v6.interface_id, state.link_prefix);
        let packets = router.start(now);
        info!(session_id = key.session_id, prefix = ?state.link_prefix, address = ?state.address,
            delegated = ?state.delegated_prefix, "IPv6 of the PPPoE session restored");
        v6.links.insert(
            *key,
            Ipv6Link {
                id,
                peer: link_local(stored.peer_interface_id),
                router,
                active: true,
            },
        );
        self.push_ipv6(key).await;
        self.send_ipv6(key, packets).await;
    }

    /// Session `key`'s IPv6 as its journal record holds it: `None` unless
    /// IPv6CP is Opened. Only bound addresses and prefixes are kept.
    pub(super) fn stored_ipv6(&self, key: &SessionKey) -> Option<StoredIpv6> {
        let link = self.ipv6.links.get(key).filter(|l| l.active)?;
        let server = self.ipv6.server.lock();
        let s = server.link(link.id)?;
        let (interface_id, peer_interface_id) = self.sessions.get(key)?.ppp.ipv6_interface_ids()?;
        Some(StoredIpv6 {
            interface_id,
            peer_interface_id,
            prefix: s.link_prefix,
            address: s.address.filter(|_| s.address_bound),
            address_iaid: s.address_iaid.filter(|_| s.address_bound),
            delegated_prefix: s.delegated_prefix.filter(|_| s.delegated_bound),
            delegated_iaid: s.delegated_iaid.filter(|_| s.delegated_bound),
            client_duid: s.client_id.clone(),
        })
    }

    /// Append session `key`'s record again if its IPv6 changed (once it is
    /// journalled at all: its first record already carries the IPv6).
    fn journal_ipv6(&mut self, key: &SessionKey) {
        let Some(journal) = &self.journal else {
            return;
        };
        let ipv6 = self.stored_ipv6(key);
        let Some(record) = self
            .sessions
            .get_mut(key)
            .and_then(|s| s.journalled.as_mut())
        else {
            return;
        };
        if record.ipv6 != ipv6 {
            record.ipv6 = ipv6;
            journal.append_detached(Record::PppoePut(record.clone()));
        }
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
        let (reply, changed) =
            crate::ipv6::answer(&self.ipv6.server, link.id, &mut link.router, &pkt);
        if changed {
            // Queued before the Reply leaves, so that a binding the client
            // holds is in the file as soon as the journal writes it.
            self.journal_ipv6(key);
        }
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
            {
                let server = self.ipv6.server.lock();
                if let Some(s) = self.ipv6.links.get(key).and_then(|l| server.link(l.id)) {
                    info!(session_id = key.session_id, address = ?s.address, delegated = ?s.delegated_prefix,
                        "DHCPv6 bindings changed");
                }
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
            self.ipv6.server.lock().close_link(link.id);
        }
    }

    /// What session `key` has of IPv6, for the API.
    pub(super) fn ipv6_view(&self, key: &SessionKey) -> Option<Ipv6View> {
        let link = self.ipv6.links.get(key)?;
        let server = self.ipv6.server.lock();
        let s = server.link(link.id)?;
        Some(crate::ipv6::link_view(link.router.address(), link.peer, s))
    }

    /// What session `key`'s user plane is to forward of IPv6: with IPv6CP
    /// Opened, the link's /64 and its bound delegated prefix (each only if
    /// /1 to /64); `None` if neither.
    pub(super) fn ipv6_prefixes(&self, key: &SessionKey) -> Option<Ipv6Prefixes> {
        let link = self.ipv6.links.get(key).filter(|l| l.active)?;
        let server = self.ipv6.server.lock();
        let s = server.link(link.id)?;
        crate::ipv6::link_prefixes(u64::from(key.session_id), s)
    }

    /// Show session `key`'s IPv6 in its registry session, once programmed,
    /// and give it the prefixes its user plane is to forward
    /// ([`PppoeService::ipv6_prefixes`]; nothing is sent if they did not
    /// change).
    pub(super) async fn push_ipv6(&self, key: &SessionKey) {
        let Some(id) = self.sessions.get(key).and_then(|s| s.registry_id) else {
            return;
        };
        self.registry.set_ipv6(id, self.ipv6_view(key));
        self.registry.set_ipv6_prefixes(id, self.ipv6_prefixes(key));
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
