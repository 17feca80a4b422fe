//! IPv6 in the pipeline ([`Pipeline::set_ipv6`]): subscriber prefixes forwarded both ways
//! (RFC 8200), neighbour discovery on the core link (RFC 4861) and ICMPv6 errors (RFC 4443).
//!
//! A session's IPv6 prefixes ([`crate::session::SessionIpv6`]: its /64 and a delegated
//! prefix) are indexed in the session table. Upstream, an IPv6 packet of a known session
//! (IPoE, or PPP protocol 0x0057 in its PPPoE session) must come from one of them; it leaves
//! on the core port toward the IPv6 next hop with its hop limit decremented. Downstream, a
//! packet to the core MAC whose destination is in a session's prefix (the longest prefix
//! wins) goes to that session with its tags, and for PPPoE with the PPPoE header and PPP
//! protocol 0x0057. IPv6 packets take the same gate, ACL, MSS clamp (the session's clamp
//! less the 20 bytes IPv6 adds to an IPv4 header), policing and shaping as IPv4 ones.
//!
//! A hop limit of 1 or 0 is answered with ICMPv6 time exceeded, and a downstream packet
//! above the session's MTU with packet too big (IPv6 routers never fragment), from the core
//! address and under the same rate limit as the ICMPv4 errors.
//!
//! On the core link the pipeline answers neighbour solicitations for its core address and
//! its link-local address (fe80::/64 with the core MAC's modified EUI-64), and resolves its
//! next hop with solicitations sent from [`Pipeline::drain_generated`], learning its MAC
//! from the advertisement (or from a solicitation the next hop sends). Without
//! [`Pipeline::set_ipv6`] IPv6 data is dropped as before: `unsupported_ether_type` for
//! IPoE, `unsupported_ppp_protocol` in a PPPoE session.
//!
//! IPv6 is looked up and forwarded from the classify stage's general path, frame by frame,
//! so the burst's staged lookups (and their instruction count) stay IPv4's; downstream it
//! takes one hash probe per prefix length in use. It is correct and bounded, not tuned.

use core::net::Ipv6Addr;

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use super::{
    Delivery, Departure, ErrorPath, MAX_SESSION_L2, META_INIT, Meta, NO_SLOT, Pipeline, Stage,
    acls_permit, next_hop_index, overwrite_frame,
};
use crate::acl::Direction;
use crate::packet::{PacketBuffer, PortId};
use crate::pipeline::{DropReason, Verdict};
use crate::route::icmp_error::{
    IPV6_ERROR_MAX_LEN, Icmpv6ErrorKind, icmpv6_error, icmpv6_error_eligible,
};
use crate::route::{Lpm6, RouteError};
use crate::wire::frame::L2Header;
use crate::wire::ipv6::{self, next_header};
use crate::wire::{EtherType, EthernetAddress, ethernet, icmpv6, tcp};

/// ICMPv6 neighbour discovery messages (RFC 4861 section 4).
const NEIGHBOR_SOLICITATION: u8 = 135;
const NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// Neighbour discovery options: source and target link-layer address (section 4.6.1).
const OPT_SOURCE_LINK_ADDR: u8 = 1;
const OPT_TARGET_LINK_ADDR: u8 = 2;
/// Neighbour advertisement flags: router, solicited, override (section 4.4).
const NA_ROUTER: u8 = 0x80;
const NA_SOLICITED: u8 = 0x40;
const NA_OVERRIDE: u8 = 0x20;
/// Hop limit of every neighbour discovery message, checked on receipt (section 7.1).
const ND_HOP_LIMIT: u8 = 255;
/// An NS or NA with one link-layer address option: ICMPv6 header, target, option.
const ND_MESSAGE_LEN: usize = 8 + 16 + 8;
const ND_FRAME_LEN: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + ND_MESSAGE_LEN;
/// First stride of the static IPv6 route table: a 256 KiB first table, at most 15 reads.
const ROUTE6_FIRST_STRIDE: u8 = 16;
/// Bytes IPv6's fixed header adds to IPv4's: an IPv6 TCP MSS is the IPv4 one less this.
const IPV6_EXTRA_HEADER: u16 = 20;

/// The pipeline's IPv6 on the core link.
#[derive(Debug)]
pub(super) struct CoreIpv6 {
    /// The core address (answered in neighbour discovery, source of ICMPv6 errors).
    addr: Ipv6Addr,
    /// fe80::/64 with the core MAC's modified EUI-64 (answered too).
    link_local: Ipv6Addr,
    /// The next hops on the core link; 0 is the default route's.
    neighbors: Vec<Neighbor6>,
    /// Static routes to `neighbors` indexes; `None` while the default route is the only
    /// one.
    routes: Option<Box<Lpm6>>,
}

/// An IPv6 next hop on the core link: its address and, once resolved, its MAC.
#[derive(Debug, Clone, Copy)]
struct Neighbor6 {
    ip: Ipv6Addr,
    mac: Option<EthernetAddress>,
    last_solicit_ns: Option<u64>,
}

/// A static IPv6 route on the core side: `prefix/len` through `next_hop`, a neighbour on
/// the core link ([`Pipeline::set_routes6`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticRoute6 {
    /// The prefix (host bits are ignored).
    pub prefix: Ipv6Addr,
    /// Its length, 0-128.
    pub len: u8,
    /// The next hop, on the core link (or link-local).
    pub next_hop: Ipv6Addr,
}

/// fe80::/64 with the modified EUI-64 interface identifier of `mac` (RFC 4291 appendix A).
pub fn link_local_of(mac: EthernetAddress) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 0x02,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

/// The solicited-node multicast address of `target` (RFC 4291 section 2.7.1) and its
/// Ethernet group address (RFC 2464 section 7).
fn solicited_node(target: Ipv6Addr) -> (Ipv6Addr, EthernetAddress) {
    let t = target.octets();
    let ip = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(t[13]),
        u16::from_be_bytes([t[14], t[15]]),
    );
    (ip, multicast_mac(ip))
}

/// The Ethernet group address of IPv6 multicast address `ip` (RFC 2464 section 7).
fn multicast_mac(ip: Ipv6Addr) -> EthernetAddress {
    let o = ip.octets();
    EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// The IPv6 packet at `data[l3..]`: its length (fixed header and payload) if it is version
/// 6 and the frame holds all of it. A payload length of 0 (jumbogram) is refused.
#[inline]
fn valid_ipv6(data: &[u8], l3: usize) -> Option<usize> {
    let h = data.get(l3..)?.first_chunk::<{ ipv6::HEADER_LEN }>()?;
    let payload = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let total = ipv6::HEADER_LEN + payload;
    (h[0] >> 4 == 6 && payload != 0 && l3 + total <= data.len()).then_some(total)
}

/// Top 64 bits of the address at `ip[at..at + 8]`.
#[inline]
fn top64(ip: &[u8], at: usize) -> u64 {
    ip.get(at..at + 8)
        .and_then(|b| b.first_chunk::<8>())
        .map_or(0, |b| u64::from_be_bytes(*b))
}

fn addr_at(ip: &[u8], at: usize) -> Option<Ipv6Addr> {
    ip.get(at..at + 16)
        .and_then(|b| b.first_chunk::<16>())
        .map(|b| Ipv6Addr::from(*b))
}

/// The link-layer address of the first option of type `kind` in the neighbour discovery
/// options `opts` (RFC 4861 section 4.6: type, length in 8-octet units, value); None if
/// absent or if an option's length is 0 (the message must then be discarded, section 4.6).
fn nd_link_addr(opts: &[u8], kind: u8) -> Result<Option<EthernetAddress>, ()> {
    let mut at = 0;
    while at + 2 <= opts.len() {
        let len = usize::from(opts[at + 1]) * 8;
        if len == 0 || at + len > opts.len() {
            return Err(());
        }
        if opts[at] == kind && len >= 8 {
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&opts[at + 2..at + 8]);
            return Ok(Some(EthernetAddress(mac)));
        }
        at += len;
    }
    Ok(None)
}

/// The header fields of a neighbour discovery frame [`write_nd`] builds.
struct NdFrame {
    eth_dst: EthernetAddress,
    eth_src: EthernetAddress,
    ip_src: Ipv6Addr,
    ip_dst: Ipv6Addr,
    icmp_type: u8,
    flags: u8,
    target: Ipv6Addr,
    /// The link-layer option: its type and address.
    option: (u8, EthernetAddress),
}

/// Writes `f` as an untagged Ethernet frame of [`ND_FRAME_LEN`] bytes into `buf`.
fn write_nd(buf: &mut [u8; ND_FRAME_LEN], f: &NdFrame) {
    buf[0..6].copy_from_slice(&f.eth_dst.0);
    buf[6..12].copy_from_slice(&f.eth_src.0);
    buf[12..14].copy_from_slice(&u16::from(EtherType::Ipv6).to_be_bytes());
    let ip = &mut buf[ethernet::HEADER_LEN..];
    ip[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
    ip[4..6].copy_from_slice(&(ND_MESSAGE_LEN as u16).to_be_bytes());
    ip[6] = next_header::ICMPV6;
    ip[7] = ND_HOP_LIMIT;
    ip[8..24].copy_from_slice(&f.ip_src.octets());
    ip[24..40].copy_from_slice(&f.ip_dst.octets());
    let msg = &mut ip[ipv6::HEADER_LEN..];
    msg[0] = f.icmp_type;
    msg[1] = 0;
    msg[2..4].fill(0);
    msg[4] = f.flags;
    msg[5..8].fill(0);
    msg[8..24].copy_from_slice(&f.target.octets());
    msg[24] = f.option.0;
    msg[25] = 1;
    msg[26..32].copy_from_slice(&f.option.1.0);
    let c = icmpv6::compute_checksum(&f.ip_src, &f.ip_dst, msg);
    msg[2..4].copy_from_slice(&c.to_be_bytes());
}

/// Clamps the MSS of a TCP SYN or SYN/ACK in the IPv6 packet `ip` (the TCP header found past
/// any extension headers; a non-first fragment is left alone).
fn clamp_ipv6_mss(ip: &mut [u8], mss: u16) {
    let Ok(upper) = ipv6::upper_layer(ip) else {
        return;
    };
    if upper.protocol != next_header::TCP || !upper.first_fragment {
        return;
    }
    let end = ipv6::HEADER_LEN + usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    if let Some(seg) = ip.get_mut(upper.offset..end) {
        tcp::clamp_mss(seg, mss);
    }
}

/// Clamps the MSS (if the session's IPv4 `mss_clamp` is not 0) and decrements the hop limit
/// (checked above 1 by the caller) of the IPv6 packet at `data[l3..]`.
pub(super) fn rewrite_ipv6(data: &mut [u8], l3: usize, mss_clamp: u16) {
    let Some(ip) = data.get_mut(l3..) else {
        return;
    };
    if mss_clamp > IPV6_EXTRA_HEADER {
        clamp_ipv6_mss(ip, mss_clamp - IPV6_EXTRA_HEADER);
    }
    if let Some(h) = ip.get_mut(7) {
        *h = h.saturating_sub(1);
    }
}

impl Pipeline {
    /// Turns IPv6 forwarding on: `core` is the user plane's address on the core link and
    /// `next_hop` the router every upstream IPv6 packet goes to (resolved by neighbour
    /// discovery). Sessions' IPv6 prefixes come with their entries
    /// ([`crate::session::SessionEntry::ipv6`]).
    pub fn set_ipv6(&mut self, core: Ipv6Addr, next_hop: Ipv6Addr) {
        self.ipv6 = Some(Box::new(CoreIpv6 {
            addr: core,
            link_local: link_local_of(self.cfg.core_mac),
            neighbors: vec![Neighbor6 {
                ip: next_hop,
                mac: None,
                last_solicit_ns: None,
            }],
            routes: None,
        }));
    }

    /// The default IPv6 next hop's MAC address, once neighbour discovery resolved it.
    pub fn ipv6_next_hop_mac(&self) -> Option<EthernetAddress> {
        self.ipv6
            .as_deref()
            .and_then(|c| c.neighbors.first())
            .and_then(|n| n.mac)
    }

    /// Replaces the static IPv6 routes (after [`Pipeline::set_ipv6`]; between bursts), as
    /// [`Pipeline::set_routes`] does for IPv4: the longest prefix holding an upstream
    /// packet's destination names its next hop, each next hop is resolved by neighbour
    /// discovery, the default route through `set_ipv6`'s next hop stays unless a route is a
    /// ::/0, and a destination no route covers is answered with ICMPv6 no route
    /// ([`DropReason::NoRoute`]). On error nothing changes.
    pub fn set_routes6(&mut self, routes: &[StaticRoute6]) -> Result<(), RouteError> {
        let Some(core) = self.ipv6.as_deref_mut() else {
            return Ok(());
        };
        let known = |ip: Ipv6Addr| {
            core.neighbors
                .iter()
                .find(|n| n.ip == ip)
                .and_then(|n| n.mac)
        };
        let default_nh = core
            .neighbors
            .first()
            .map_or(Ipv6Addr::UNSPECIFIED, |n| n.ip);
        let mut neighbors = vec![Neighbor6 {
            ip: default_nh,
            mac: known(default_nh),
            last_solicit_ns: None,
        }];
        let groups = routes
            .iter()
            .map(|r| Lpm6::groups_per_route(ROUTE6_FIRST_STRIDE, r.len))
            .sum::<u32>()
            .max(1);
        let mut table = Lpm6::with_first_stride(ROUTE6_FIRST_STRIDE, groups)?;
        let mut has_default = false;
        for r in routes {
            let index = next_hop_index(
                &mut neighbors,
                |n| n.ip == r.next_hop,
                || Neighbor6 {
                    ip: r.next_hop,
                    mac: known(r.next_hop),
                    last_solicit_ns: None,
                },
            )?;
            table.insert(r.prefix, r.len, index)?;
            has_default |= r.len == 0;
        }
        if !has_default && !default_nh.is_unspecified() {
            table.insert(Ipv6Addr::UNSPECIFIED, 0, 0)?;
        }
        core.routes = if routes.is_empty() {
            None
        } else {
            Some(Box::new(table))
        };
        core.neighbors = neighbors;
        Ok(())
    }

    /// The MAC of the IPv6 next hop toward `dst`: `Err(NoRoute)` if no route covers it,
    /// `Err(NextHopUnresolved)` while that next hop has not answered.
    fn routed_next_hop6(&self, dst: Ipv6Addr) -> Result<EthernetAddress, DropReason> {
        let core = self
            .ipv6
            .as_deref()
            .ok_or(DropReason::UnsupportedEtherType)?;
        let index = match core.routes.as_deref() {
            None => 0,
            Some(t) => usize::from(t.lookup(dst).ok_or(DropReason::NoRoute)?),
        };
        core.neighbors
            .get(index)
            .and_then(|n| n.mac)
            .ok_or(DropReason::NextHopUnresolved)
    }

    /// An IPv6 data packet at `frame.data()[l3..]` from the subscriber whose packed access
    /// key is `key` (`pppoe`: in a PPPoE session whose PPP payload is that many bytes):
    /// looked up and forwarded at once, outside the burst's stages, which stay IPv4's.
    pub(super) fn access_ipv6<B: PacketBuffer>(
        &mut self,
        now_ns: u64,
        frame: &mut B,
        l3: usize,
        key: u128,
        pppoe: Option<usize>,
    ) -> Verdict {
        if self.ipv6.is_none() {
            return self.drop(if pppoe.is_some() {
                DropReason::UnsupportedPppProtocol
            } else {
                DropReason::UnsupportedEtherType
            });
        }
        match valid_ipv6(frame.data(), l3) {
            Some(total) if pppoe.is_none_or(|ppp_len| total <= ppp_len) => {
                let hash = self.sessions.hash_access(key);
                let m = Meta {
                    stage: Stage::Upstream,
                    l3: l3 as u16,
                    key,
                    hash,
                    pppoe: pppoe.is_some(),
                    slot: self.sessions.access_candidate(hash).unwrap_or(NO_SLOT),
                    ..META_INIT
                };
                self.upstream6(now_ns, frame, &m)
            }
            _ => self.drop(DropReason::Malformed),
        }
    }

    /// An IPv6 frame on the core port: neighbour discovery is answered or learned from here;
    /// a packet to the core MAC for anything but the user plane's own addresses is looked up
    /// and forwarded at once.
    pub(super) fn core_ipv6<B: PacketBuffer>(
        &mut self,
        now_ns: u64,
        frame: &mut B,
        l2: &L2Header,
        l3: usize,
    ) -> Verdict {
        let Some(core) = self.ipv6.as_deref() else {
            return self.drop(DropReason::UnsupportedEtherType);
        };
        let (own, link_local) = (core.addr, core.link_local);
        let Some(total) = valid_ipv6(frame.data(), l3) else {
            return self.drop(DropReason::Malformed);
        };
        let ip = &frame.data()[l3..l3 + total];
        if ip[6] == next_header::ICMPV6
            && matches!(
                ip.get(ipv6::HEADER_LEN),
                Some(&(NEIGHBOR_SOLICITATION | NEIGHBOR_ADVERTISEMENT))
            )
        {
            return self.core_nd(frame, l2, l3, total);
        }
        if l2.dst != self.cfg.core_mac {
            return self.drop(DropReason::NotForUs);
        }
        let dst = addr_at(ip, 24).unwrap_or(Ipv6Addr::UNSPECIFIED);
        if dst == own || dst == link_local {
            // The user plane is not a host: nothing addressed to it is answered.
            return self.drop(DropReason::NotForUs);
        }
        let slot = self
            .sessions
            .find_ipv6((dst.to_bits() >> 64) as u64)
            .unwrap_or(NO_SLOT);
        let shaper = self.shaper_of(slot);
        let m = Meta {
            stage: Stage::Downstream,
            l3: l3 as u16,
            key: dst.to_bits(),
            slot,
            shaper,
            ..META_INIT
        };
        self.downstream6(now_ns, frame, &m)
    }

    /// A neighbour solicitation or advertisement on the core link (the IPv6 packet at
    /// `frame.data()[l3..l3 + total]`): a solicitation for our addresses is answered in
    /// place, and the next hop's MAC is learned from its advertisement or solicitation.
    fn core_nd<B: PacketBuffer>(
        &mut self,
        frame: &mut B,
        l2: &L2Header,
        l3: usize,
        total: usize,
    ) -> Verdict {
        let core_mac = self.cfg.core_mac;
        let ip = &frame.data()[l3..l3 + total];
        let (Some(src), Some(dst)) = (addr_at(ip, 8), addr_at(ip, 24)) else {
            return self.drop(DropReason::Malformed);
        };
        let msg = &ip[ipv6::HEADER_LEN..];
        // RFC 4861 section 7.1.1 / 7.1.2: hop limit 255, a valid checksum, code 0, at least
        // 24 octets, well-formed options.
        let Some(target) = addr_at(msg, 8) else {
            return self.drop(DropReason::Malformed);
        };
        if ip[7] != ND_HOP_LIMIT || msg[1] != 0 || icmpv6::compute_checksum(&src, &dst, msg) != 0 {
            return self.drop(DropReason::Malformed);
        }
        let kind = msg[0];
        let option = if kind == NEIGHBOR_SOLICITATION {
            OPT_SOURCE_LINK_ADDR
        } else {
            OPT_TARGET_LINK_ADDR
        };
        let Ok(link_addr) = nd_link_addr(&msg[24..], option) else {
            return self.drop(DropReason::Malformed);
        };
        let Some(core) = self.ipv6.as_deref_mut() else {
            return self.drop(DropReason::UnsupportedEtherType);
        };
        let sender_mac = link_addr.unwrap_or(l2.src);
        let about = if kind == NEIGHBOR_SOLICITATION {
            src
        } else {
            target
        };
        let neighbor = core.neighbors.iter_mut().find(|n| n.ip == about);
        let from_next_hop = neighbor.is_some();
        if let Some(n) = neighbor
            && sender_mac.is_unicast()
            && sender_mac != EthernetAddress::ZERO
            && n.mac != Some(sender_mac)
        {
            n.mac = Some(sender_mac);
            self.counters.nd_learned += 1;
        }
        if kind == NEIGHBOR_ADVERTISEMENT {
            return self.drop(if from_next_hop {
                DropReason::Consumed
            } else {
                DropReason::NotForUs
            });
        }
        if target != core.addr && target != core.link_local {
            return self.drop(DropReason::NotForUs);
        }
        // Section 7.2.4: to the solicitation's source, solicited; a duplicate address
        // detection probe (unspecified source) is answered to all nodes, unsolicited.
        let dad = src.is_unspecified();
        let (eth_dst, ip_dst) = if dad {
            let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
            (multicast_mac(all_nodes), all_nodes)
        } else {
            (sender_mac, src)
        };
        let mut buf = [0u8; ND_FRAME_LEN];
        write_nd(
            &mut buf,
            &NdFrame {
                eth_dst,
                eth_src: core_mac,
                ip_src: target,
                ip_dst,
                icmp_type: NEIGHBOR_ADVERTISEMENT,
                flags: NA_ROUTER | NA_OVERRIDE | if dad { 0 } else { NA_SOLICITED },
                target,
                option: (OPT_TARGET_LINK_ADDR, core_mac),
            },
        );
        if !overwrite_frame(frame, &buf) {
            return self.drop(DropReason::Malformed);
        }
        self.counters.nd_replies += 1;
        Verdict::Forward(self.cfg.core_port)
    }

    /// A neighbour solicitation for each IPv6 next hop still unresolved, at most once per
    /// [`crate::pipeline::PipelineConfig::arp_retry_ns`] each.
    pub(super) fn solicit_next_hop(&mut self, now_ns: u64, out: &mut dyn FnMut(PortId, &[u8])) {
        let retry = self.cfg.arp_retry_ns;
        let core_mac = self.cfg.core_mac;
        let core_port = self.cfg.core_port;
        let Some(core) = self.ipv6.as_deref_mut() else {
            return;
        };
        for n in core.neighbors.iter_mut() {
            if n.mac.is_some() || n.ip.is_unspecified() {
                continue;
            }
            if let Some(last) = n.last_solicit_ns
                && now_ns >= last
                && now_ns - last < retry
            {
                continue;
            }
            let (group, group_mac) = solicited_node(n.ip);
            let mut buf = [0u8; ND_FRAME_LEN];
            write_nd(
                &mut buf,
                &NdFrame {
                    eth_dst: group_mac,
                    eth_src: core_mac,
                    ip_src: core.addr,
                    ip_dst: group,
                    icmp_type: NEIGHBOR_SOLICITATION,
                    flags: 0,
                    target: n.ip,
                    option: (OPT_SOURCE_LINK_ADDR, core_mac),
                },
            );
            n.last_solicit_ns = Some(now_ns);
            self.counters.nd_requests += 1;
            out(core_port, &buf);
        }
    }

    /// The upstream stage of an IPv6 packet (see the module docs).
    #[inline(never)]
    pub(super) fn upstream6<B: PacketBuffer>(
        &mut self,
        now_ns: u64,
        frame: &mut B,
        m: &Meta,
    ) -> Verdict {
        let found = if m.slot == NO_SLOT {
            None
        } else {
            self.sessions.confirm_access(m.slot, m.key)
        };
        let Some((slot, entry)) = found else {
            return self.drop(DropReason::NoSession);
        };
        let (v6, gate_open, mss_clamp, acl) =
            (entry.ipv6, entry.gate_open, entry.mss_clamp, entry.acl);
        let policed = self.qos.is_some() && entry.qos.ul_rate_bps.is_some();
        let l3 = usize::from(m.l3);
        let data = frame.data();
        if data.get(..6) != Some(&self.cfg.gateway_mac.0[..]) {
            return self.drop(DropReason::NotForUs);
        }
        let Some(ip) = data.get(l3..l3 + ipv6::HEADER_LEN) else {
            return self.drop(DropReason::Malformed);
        };
        let (hop_limit, payload) = (ip[7], u16::from_be_bytes([ip[4], ip[5]]));
        if !v6.contains(top64(ip, 8)) {
            return self.drop(DropReason::AntiSpoof);
        }
        if !gate_open {
            return self.drop(DropReason::GateClosed);
        }
        if !acls_permit(
            &self.acls,
            &mut self.acl_hits,
            acl,
            Direction::Ingress,
            &data[l3..],
        ) {
            return self.drop(DropReason::AclDenied);
        }
        if hop_limit <= 1 {
            let (kind, reason) = (Icmpv6ErrorKind::HopLimitExceeded, DropReason::TtlExceeded);
            return self.icmp_error_to_subscriber(now_ns, frame, l3, slot, kind, reason);
        }
        let dst = addr_at(ip, 24).unwrap_or(Ipv6Addr::UNSPECIFIED);
        let nh_mac = match self.routed_next_hop6(dst) {
            Ok(mac) => mac,
            Err(DropReason::NoRoute) => {
                let (kind, reason) = (Icmpv6ErrorKind::NoRoute, DropReason::NoRoute);
                return self.icmp_error_to_subscriber(now_ns, frame, l3, slot, kind, reason);
            }
            Err(reason) => return self.drop(reason),
        };
        let departure = Departure {
            slot,
            total: ipv6::HEADER_LEN + usize::from(payload),
            nh_mac,
            policed,
            mss_clamp,
            ipv6: true,
        };
        self.depart(now_ns, frame, l3, departure)
    }

    /// The downstream stage of an IPv6 packet (see the module docs).
    #[inline(never)]
    pub(super) fn downstream6<B: PacketBuffer>(
        &mut self,
        now_ns: u64,
        frame: &mut B,
        m: &Meta,
    ) -> Verdict {
        // The slot came from the IPv6 index in this burst (or is NO_SLOT).
        let Some(entry) = self.sessions.indexed_entry(m.slot) else {
            return self.drop(DropReason::NoSession);
        };
        let (access, gate_open) = (entry.access, entry.gate_open);
        let (mtu, mss_clamp, acl) = (entry.mtu, entry.mss_clamp, entry.acl);
        let shaped = self
            .qos
            .as_ref()
            .is_some_and(|q| entry.qos.dl_rate_bps.is_some() || q.any_draining());
        if !gate_open {
            return self.drop(DropReason::GateClosed);
        }
        let l3 = usize::from(m.l3);
        let Some(ip) = frame.data().get(l3..l3 + ipv6::HEADER_LEN) else {
            return self.drop(DropReason::Malformed);
        };
        let (hop_limit, payload) = (ip[7], u16::from_be_bytes([ip[4], ip[5]]));
        let dscp = (ip[0] << 4 | ip[1] >> 4) >> 2;
        if !acls_permit(
            &self.acls,
            &mut self.acl_hits,
            acl,
            Direction::Egress,
            &frame.data()[l3..],
        ) {
            return self.drop(DropReason::AclDenied);
        }
        if hop_limit <= 1 {
            let kind = Icmpv6ErrorKind::HopLimitExceeded;
            let reason = DropReason::TtlExceeded;
            return self.icmpv6_error_reply(now_ns, frame, l3, kind, ErrorPath::Core, reason);
        }
        let total = ipv6::HEADER_LEN + usize::from(payload);
        if mtu != 0 && total > usize::from(mtu) {
            let kind = Icmpv6ErrorKind::PacketTooBig {
                mtu: u32::from(mtu),
            };
            let reason = DropReason::MtuExceeded;
            return self.icmpv6_error_reply(now_ns, frame, l3, kind, ErrorPath::Core, reason);
        }
        self.deliver(
            now_ns,
            frame,
            m,
            l3,
            Delivery {
                access,
                total,
                dscp,
                mss_clamp,
                shaped,
                ipv6: true,
            },
        )
    }

    /// [`Pipeline::icmp_error`] for IPv6: the ICMPv6 error `kind` about the packet at
    /// `frame.data()[l3..]`, from the core address, written over the frame and sent along
    /// `back`; only the drop for `reason` when no error may be sent (RFC 4443 section 2.4
    /// (e): about an error, to a multicast address except packet too big, from an
    /// unspecified source; also beyond the rate limit or toward an unresolved next hop).
    #[inline(never)]
    pub(super) fn icmpv6_error_reply<B: PacketBuffer>(
        &mut self,
        now_ns: u64,
        frame: &mut B,
        l3: usize,
        kind: Icmpv6ErrorKind,
        back: ErrorPath,
        reason: DropReason,
    ) -> Verdict {
        let dropped = self.drop(reason);
        let Some(src) = self.ipv6.as_deref().map(|core| core.addr) else {
            return dropped;
        };
        let Some(original) = frame.data().get(l3..) else {
            return dropped;
        };
        if icmpv6_error_eligible(kind, original).is_err() {
            return dropped;
        }
        // Toward the core, the error goes where a packet to the original's source would.
        let source = addr_at(original, 8);
        let Some(out) = self.icmp_error_out(now_ns, back, |p| {
            source.and_then(|to| p.routed_next_hop6(to).ok())
        }) else {
            return dropped;
        };
        let mut buf = [0u8; MAX_SESSION_L2 + IPV6_ERROR_MAX_LEN];
        let Some(Ok(ip_len)) = buf
            .get_mut(out.hdr_len..)
            .map(|o| icmpv6_error(kind, original, src, o))
        else {
            return dropped;
        };
        self.send_icmp_error(frame, &mut buf, &out, ip_len, true)
            .unwrap_or(dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_flips_the_universal_bit() {
        let mac = EthernetAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x02]);
        assert_eq!(
            link_local_of(mac),
            "fe80::ff:fe00:2".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn solicited_node_takes_the_last_24_bits() {
        let (ip, mac) = solicited_node("2001:db8::1:2345:6789".parse().unwrap());
        assert_eq!(ip, "ff02::1:ff45:6789".parse::<Ipv6Addr>().unwrap());
        assert_eq!(mac, EthernetAddress([0x33, 0x33, 0xff, 0x45, 0x67, 0x89]));
    }

    #[test]
    fn nd_options_reject_a_zero_length() {
        let opts = [1, 1, 2, 0, 0, 0, 0, 9];
        assert_eq!(
            nd_link_addr(&opts, 1),
            Ok(Some(EthernetAddress([2, 0, 0, 0, 0, 9])))
        );
        assert_eq!(nd_link_addr(&opts, 2), Ok(None));
        assert_eq!(nd_link_addr(&[1, 0, 0, 0, 0, 0, 0, 0], 1), Err(()));
        assert_eq!(nd_link_addr(&[1, 2, 0, 0, 0, 0, 0, 0], 1), Err(()));
    }
}
