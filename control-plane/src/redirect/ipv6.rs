//! IPv6 for IPoE subscribers: next to its DHCPv4 lease, a subscriber whose
//! pool has IPv6 (or whose AAA profile gives it a prefix) gets a router on
//! its Ethernet link and the DHCPv6 server.
//!
//! The user plane redirects an IPoE subscriber's Router and Neighbor
//! Solicitations and DHCPv6 (UDP port 547) like its DHCPv4. The first of
//! them from a subscriber with a session opens its link in the shared
//! DHCPv6 server ([`crate::ipv6::SharedDhcpv6`], PPPoE draws from the same
//! pools): a /64 from the pool's per-session prefixes, advertised on-link
//! in Router Advertisements with M and O set, the gateway MAC as Source
//! Link-Layer Address and MTU 1500; IA_NA gives the /64 plus the modified
//! EUI-64 of the subscriber's MAC, IA_PD a delegated prefix, DNS as for
//! PPPoE. Neighbor Solicitations for the router's link-local address are
//! answered with its MAC. Everything is sent to the subscriber's MAC with
//! its VLAN tags, never to a multicast MAC: on a shared segment no other
//! host learns another subscriber's prefix.
//!
//! The session's /64 and bound delegated prefix become PDRs 3 and 4 on its
//! user plane ([`crate::session::Sessions::set_ipv6_prefixes`]) as soon as
//! the link opens and whenever a binding changes. Unsolicited
//! advertisements follow RFC 4861's schedule ([`Ipoe6::tick`], from the
//! redirect task). When the session ends (release, expiry, REST or
//! Disconnect, a replaced lease), the next tick closes its link and its
//! prefixes go back to the pools.
//!
//! Not yet: the links are not in the lease journal. After a control plane
//! restart an IPoE subscriber's IPv4 session is restored, its IPv6 is not:
//! the session is re-programmed without its prefixes, and the subscriber
//! gets IPv6 back when its DHCPv6 client renews (the server answers
//! NoBinding, the client solicits again, possibly for other prefixes).

use std::collections::HashMap;

use tracing::{debug, info};
use vbng_access::dhcpv4::ClientKey;
use vbng_access::dhcpv6::LinkId;
use vbng_access::dhcpv6::server::LinkRequest;
use vbng_access::ipv6::packet;
use vbng_access::ipv6::ra::{RaConfig, RouterAdvertiser};
use vbng_access::ipv6::{eui64_interface_id, link_local};
use vbng_dataplane::wire::{EtherType, EthernetAddress, L2Header};

use super::{DropReason, SharedDhcp};
use crate::ipv6::{SharedDhcpv6, aaa_prefix};
use crate::session::Sessions;

/// The IPv6 side of IPoE subscribers.
#[derive(Debug)]
pub struct Ipoe6 {
    server: SharedDhcpv6,
    dhcp: SharedDhcp,
    sessions: Sessions,
    ra: RaConfig,
    gateway_mac: EthernetAddress,
    interface_id: u64,
    next_link: LinkId,
    links: HashMap<ClientKey, Link>,
}

/// One subscriber's IPv6 link.
#[derive(Debug)]
struct Link {
    id: LinkId,
    /// The registry session the link belongs to.
    session: u64,
    router: RouterAdvertiser,
    /// Advertisements for the next tick: the first one of a new link.
    pending: Vec<Vec<u8>>,
}

impl Ipoe6 {
    /// IPv6 for the IPoE subscribers of `sessions` whose DHCPv4 leases
    /// `dhcp` holds, from `server`, behind the gateway MAC `gateway_mac`;
    /// advertisements as `ra` says, with the gateway MAC as link-layer
    /// address.
    pub fn new(
        gateway_mac: EthernetAddress,
        server: SharedDhcpv6,
        dhcp: SharedDhcp,
        sessions: Sessions,
        ra: RaConfig,
    ) -> Self {
        Ipoe6 {
            server,
            dhcp,
            sessions,
            ra: RaConfig {
                link_layer: Some(gateway_mac.0),
                ..ra
            },
            gateway_mac,
            interface_id: eui64_interface_id(gateway_mac.0),
            next_link: crate::ipv6::IPOE_FIRST_LINK,
            links: HashMap::new(),
        }
    }

    /// An IPv6 packet `payload` from subscriber `key` in a frame with
    /// header `l2`: the Ethernet frame answering it (a Router or Neighbor
    /// Advertisement, a DHCPv6 reply), or why there is none.
    pub fn handle(
        &mut self,
        now_ms: u64,
        key: ClientKey,
        l2: &L2Header,
        payload: &[u8],
    ) -> Result<Vec<u8>, DropReason> {
        let pkt = packet::parse(payload).map_err(|_| DropReason::Ipv6Malformed)?;
        let opened = self.open(now_ms, &key)?;
        let link = self.links.get_mut(&key).ok_or(DropReason::Ipv6NoSession)?;
        let (reply, changed) = crate::ipv6::answer(&self.server, link.id, &mut link.router, &pkt);
        let changed = changed || opened;
        if changed {
            self.push(&key);
        }
        let Some(reply) = reply else {
            debug!(mac = ?key.mac, next_header = pkt.next_header, "IPv6 packet not answered");
            return Err(DropReason::Ipv6Unanswered);
        };
        Ok(self.frame(key.mac, l2.svlan, l2.cvlan, &reply))
    }

    /// Housekeeping at `now_ms`, about once a second: links whose session
    /// ended are closed (their addresses and prefixes go back to the pools),
    /// and the unsolicited advertisements due are returned as (user plane
    /// index, access port, Ethernet frame).
    pub fn tick(&mut self, now_ms: u64) -> Vec<(u32, u8, Vec<u8>)> {
        let ended: Vec<ClientKey> = self
            .links
            .iter()
            .filter(|(key, link)| {
                self.sessions.ipoe_session(key).map(|s| s.0) != Some(link.session)
            })
            .map(|(key, _)| *key)
            .collect();
        for key in ended {
            self.close(&key);
        }
        let mut out = Vec::new();
        let due: Vec<(ClientKey, Vec<Vec<u8>>)> = self
            .links
            .iter_mut()
            .map(|(key, l)| {
                let mut packets = std::mem::take(&mut l.pending);
                packets.extend(l.router.tick(now_ms));
                (*key, packets)
            })
            .filter(|(_, packets)| !packets.is_empty())
            .collect();
        for (key, packets) in due {
            let tag = |v: u16| (v != 0).then_some(v);
            for p in packets {
                let frame = self.frame(key.mac, tag(key.svlan), tag(key.cvlan), &p);
                out.push((key.up, key.port, frame));
            }
        }
        out
    }

    /// Open subscriber `key`'s link unless it is open for its current
    /// session; true if it opened one.
    fn open(&mut self, now_ms: u64, key: &ClientKey) -> Result<bool, DropReason> {
        let (session, framed, delegated) = self
            .sessions
            .ipoe_session(key)
            .ok_or(DropReason::Ipv6NoSession)?;
        match self.links.get(key) {
            Some(l) if l.session == session => return Ok(false),
            Some(_) => self.close(key),
            None => {}
        }
        let pool = {
            let dhcp = self.dhcp.lock().unwrap_or_else(|p| p.into_inner());
            dhcp.lease(key).map(|l| l.pool.clone())
        }
        .ok_or(DropReason::Ipv6NoSession)?;
        let req = LinkRequest {
            pool,
            peer_interface_id: eui64_interface_id(key.mac),
            framed_prefix: aaa_prefix(framed.as_ref()),
            delegated_prefix: aaa_prefix(delegated.as_ref()),
        };
        let id = self.next_link;
        let state = {
            let mut server = self.server.lock();
            let aaa = req.framed_prefix.is_some() || req.delegated_prefix.is_some();
            if !server.serves(&req.pool, aaa) {
                return Err(DropReason::Ipv6NotServed);
            }
            server.open_link(id, req).cloned().map_err(|e| {
                info!(session, error = %e, "no IPv6 for the IPoE subscriber");
                DropReason::Ipv6NotServed
            })?
        };
        self.next_link += 1;
        let ra = RaConfig {
            autonomous: state.slaac,
            ..self.ra
        };
        let mut router = RouterAdvertiser::new(ra, self.interface_id, state.link_prefix);
        // The first unsolicited advertisement leaves with the next tick (the
        // link may have opened on a DHCPv6 message or a neighbour
        // solicitation, which get no advertisement in answer).
        let pending = router.start(now_ms);
        info!(session, local = %router.address(), prefix = ?state.link_prefix,
            "IPv6 link of the IPoE subscriber opened");
        self.links.insert(
            *key,
            Link {
                id,
                session,
                router,
                pending,
            },
        );
        Ok(true)
    }

    /// Close subscriber `key`'s link: its bindings go back to the pools.
    fn close(&mut self, key: &ClientKey) {
        if let Some(link) = self.links.remove(key) {
            self.server.lock().close_link(link.id);
            info!(
                session = link.session,
                "IPv6 link of the IPoE subscriber closed"
            );
        }
    }

    /// Show subscriber `key`'s IPv6 in its registry session and give it the
    /// prefixes its user plane is to forward.
    fn push(&self, key: &ClientKey) {
        let Some(link) = self.links.get(key) else {
            return;
        };
        let (view, prefixes) = {
            let server = self.server.lock();
            let Some(s) = server.link(link.id) else {
                return;
            };
            let peer = link_local(eui64_interface_id(key.mac));
            (
                crate::ipv6::link_view(link.router.address(), peer, s),
                crate::ipv6::link_prefixes(link.session, s),
            )
        };
        self.sessions.set_ipv6(link.session, Some(view));
        self.sessions.set_ipv6_prefixes(link.session, prefixes);
    }

    /// `packet` to the subscriber with MAC `mac` behind tags `svlan` and
    /// `cvlan`, from the gateway MAC.
    fn frame(
        &self,
        mac: [u8; 6],
        svlan: Option<u16>,
        cvlan: Option<u16>,
        packet: &[u8],
    ) -> Vec<u8> {
        let l2 = L2Header {
            dst: EthernetAddress(mac),
            src: self.gateway_mac,
            svlan,
            cvlan,
            ethertype: EtherType::Ipv6,
        };
        let mut f = vec![0u8; l2.buffer_len()];
        l2.emit(&mut f);
        f.extend_from_slice(packet);
        if f.len() < 60 {
            f.resize(60, 0);
        }
        f
    }
}
