//! The router of one PPP session's IPv6 link (RFC 4861): Router
//! Advertisements, and Neighbor Advertisements for our own address.
//!
//! Once IPv6CP is opened the caller creates a [`RouterAdvertiser`] with our
//! interface identifier and the session's /64 (if it has one), sends what
//! [`RouterAdvertiser::start`] returns, feeds it the ICMPv6 packets the peer
//! sends ([`RouterAdvertiser::input`]) and calls
//! [`RouterAdvertiser::tick`] at [`RouterAdvertiser::next_deadline`].
//!
//! Advertisements come from our link-local address `fe80::<interface id>`
//! with hop limit 255, carry the Managed and Other flags (the CPE then asks
//! DHCPv6 for its address, delegated prefix and DNS), the session MTU, and
//! the session's /64 with the on-link flag and the autonomous flag as
//! configured. A PPP link has no link-layer addresses, so no
//! Source/Target Link-Layer Address option is sent there; on an Ethernet
//! link ([`RaConfig::link_layer`], IPoE) advertisements carry the Source
//! Link-Layer Address and neighbour advertisements the Target Link-Layer
//! Address with the Override flag (RFC 4861 sections 4.2 and 4.4), without
//! which a host cannot resolve the router. The first
//! [`INITIAL_ADVERTISEMENTS`] unsolicited advertisements are at most
//! [`INITIAL_INTERVAL_MS`] apart (RFC 4861 section 6.2.4), the following
//! ones `interval_ms` apart; every valid Router Solicitation is answered
//! at once (a PPP link has one host, so there is no storm to smooth).

use std::net::Ipv6Addr;

use super::packet::{Ipv6Packet, emit_icmpv6, parse_icmpv6};
use super::{ALL_NODES, Ipv6Prefix, link_local};

/// ICMPv6 type of a Router Solicitation.
pub const ROUTER_SOLICITATION: u8 = 133;
/// ICMPv6 type of a Router Advertisement.
pub const ROUTER_ADVERTISEMENT: u8 = 134;
/// ICMPv6 type of a Neighbor Solicitation.
pub const NEIGHBOR_SOLICITATION: u8 = 135;
/// ICMPv6 type of a Neighbor Advertisement.
pub const NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// RFC 4861 MAX_INITIAL_RTR_ADVERTISEMENTS.
pub const INITIAL_ADVERTISEMENTS: u32 = 3;
/// RFC 4861 MAX_INITIAL_RTR_ADVERT_INTERVAL, in milliseconds.
pub const INITIAL_INTERVAL_MS: u64 = 16_000;

const OPT_SOURCE_LINK_LAYER: u8 = 1;
const OPT_TARGET_LINK_LAYER: u8 = 2;
const OPT_PREFIX_INFORMATION: u8 = 3;
const OPT_MTU: u8 = 5;
const FLAG_MANAGED: u8 = 0x80;
const FLAG_OTHER: u8 = 0x40;
const PREFIX_FLAG_ON_LINK: u8 = 0x80;
const PREFIX_FLAG_AUTONOMOUS: u8 = 0x40;
const NA_FLAG_ROUTER: u8 = 0x80;
const NA_FLAG_SOLICITED: u8 = 0x40;
const NA_FLAG_OVERRIDE: u8 = 0x20;

/// What the advertisements say and how often they go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaConfig {
    /// Interval between unsolicited advertisements after the initial ones
    /// (MaxRtrAdvInterval). Default 600 000 ms.
    pub interval_ms: u64,
    /// Router Lifetime, seconds (0: not a default router). Default 1800.
    pub router_lifetime_s: u16,
    /// Managed address configuration flag (M): addresses by DHCPv6.
    /// Default true.
    pub managed: bool,
    /// Other configuration flag (O): DNS and the rest by DHCPv6. Default true.
    pub other: bool,
    /// Autonomous flag (A) of the prefix: the CPE may form its own address
    /// in the /64 with SLAAC. Default false.
    pub autonomous: bool,
    /// MTU option value: the session MTU. Default 1492.
    pub mtu: u16,
    /// The router's link-layer address on an Ethernet link (IPoE): sent as
    /// the Source Link-Layer Address option of advertisements and the
    /// Target Link-Layer Address option of neighbour advertisements.
    /// Default none (PPP).
    pub link_layer: Option<[u8; 6]>,
    /// Valid lifetime of the advertised prefix, seconds. Default 86 400.
    pub prefix_valid_s: u32,
    /// Preferred lifetime of the advertised prefix, seconds. Default 14 400.
    pub prefix_preferred_s: u32,
}

impl Default for RaConfig {
    fn default() -> Self {
        RaConfig {
            interval_ms: 600_000,
            router_lifetime_s: 1800,
            managed: true,
            other: true,
            autonomous: false,
            mtu: 1492,
            link_layer: None,
            prefix_valid_s: 86_400,
            prefix_preferred_s: 14_400,
        }
    }
}

/// What the advertiser received and sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RaCounters {
    /// Router Advertisements sent, solicited or not.
    pub advertisements_sent: u64,
    /// Valid Router Solicitations received.
    pub solicitations_received: u64,
    /// Neighbor Advertisements sent for our address.
    pub neighbor_advertisements_sent: u64,
    /// ICMPv6 packets that failed validation (checksum, hop limit,
    /// length, code) or that we do not answer.
    pub dropped: u64,
}

/// One PPP session's IPv6 router. See the module docs.
#[derive(Debug, Clone)]
pub struct RouterAdvertiser {
    cfg: RaConfig,
    address: Ipv6Addr,
    prefix: Option<Ipv6Prefix>,
    next_at: Option<u64>,
    unsolicited_sent: u32,
    counters: RaCounters,
}

impl RouterAdvertiser {
    /// The router with link-local address `fe80::<interface_id>`,
    /// advertising `prefix` (a /64 normally) if given. Nothing is sent
    /// before [`start`](Self::start).
    pub fn new(cfg: RaConfig, interface_id: u64, prefix: Option<Ipv6Prefix>) -> Self {
        RouterAdvertiser {
            cfg,
            address: link_local(interface_id),
            prefix,
            next_at: None,
            unsolicited_sent: 0,
            counters: RaCounters::default(),
        }
    }

    /// The first unsolicited advertisement (as an IPv6 packet), now.
    pub fn start(&mut self, now_ms: u64) -> Vec<Vec<u8>> {
        self.unsolicited_sent = 0;
        vec![self.unsolicited(now_ms)]
    }

    /// Unsolicited advertisements due at `now_ms`.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Vec<u8>> {
        match self.next_at {
            Some(at) if now_ms >= at => vec![self.unsolicited(now_ms)],
            _ => Vec::new(),
        }
    }

    /// When [`tick`](Self::tick) next has work, if started.
    pub fn next_deadline(&self) -> Option<u64> {
        self.next_at
    }

    /// Our link-local address, the source of everything we send.
    pub fn address(&self) -> Ipv6Addr {
        self.address
    }

    /// The prefix advertised, if any.
    pub fn prefix(&self) -> Option<Ipv6Prefix> {
        self.prefix
    }

    /// Counters.
    pub fn counters(&self) -> &RaCounters {
        &self.counters
    }

    /// An ICMPv6 packet from the peer: a valid Router Solicitation gets a
    /// Router Advertisement; a Neighbor Solicitation for our address gets a
    /// Neighbor Advertisement (RFC 4861 section 7.2.4). Everything else is
    /// counted as dropped. Returns the IPv6 packet to send, if any.
    pub fn input(&mut self, pkt: &Ipv6Packet<'_>) -> Option<Vec<u8>> {
        let reply = self.answer(pkt);
        if reply.is_none() {
            self.counters.dropped += 1;
        }
        reply
    }

    fn answer(&mut self, pkt: &Ipv6Packet<'_>) -> Option<Vec<u8>> {
        let msg = parse_icmpv6(pkt).ok()?;
        // RFC 4861 sections 6.1.1 and 7.1.1: hop limit 255 and code 0, or
        // the packet came from beyond the link.
        if pkt.hop_limit != 255 || msg.code != 0 {
            return None;
        }
        match msg.typ {
            // 4 reserved bytes, then options.
            ROUTER_SOLICITATION if msg.body.len() >= 4 && valid_options(&msg.body[4..]) => {
                self.counters.solicitations_received += 1;
                let dst = if pkt.src.is_unspecified() {
                    ALL_NODES
                } else {
                    pkt.src
                };
                Some(self.advertisement(dst))
            }
            // 4 reserved bytes, the 16-byte target, then options.
            NEIGHBOR_SOLICITATION if msg.body.len() >= 20 && valid_options(&msg.body[20..]) => {
                let mut target = [0u8; 16];
                target.copy_from_slice(&msg.body[4..20]);
                if Ipv6Addr::from(target) != self.address {
                    return None;
                }
                // A solicitation from the unspecified address is duplicate
                // address detection: answered to all nodes, unsolicited.
                let (dst, mut flags) = if pkt.src.is_unspecified() {
                    (ALL_NODES, NA_FLAG_ROUTER)
                } else {
                    (pkt.src, NA_FLAG_ROUTER | NA_FLAG_SOLICITED)
                };
                if self.cfg.link_layer.is_some() {
                    flags |= NA_FLAG_OVERRIDE;
                }
                let mut body = vec![flags, 0, 0, 0];
                body.extend_from_slice(&target);
                if let Some(mac) = self.cfg.link_layer {
                    body.extend_from_slice(&[OPT_TARGET_LINK_LAYER, 1]);
                    body.extend_from_slice(&mac);
                }
                self.counters.neighbor_advertisements_sent += 1;
                Some(emit_icmpv6(
                    self.address,
                    dst,
                    255,
                    NEIGHBOR_ADVERTISEMENT,
                    0,
                    &body,
                ))
            }
            _ => None,
        }
    }

    fn unsolicited(&mut self, now_ms: u64) -> Vec<u8> {
        self.unsolicited_sent = self.unsolicited_sent.saturating_add(1);
        let wait = if self.unsolicited_sent < INITIAL_ADVERTISEMENTS {
            self.cfg.interval_ms.min(INITIAL_INTERVAL_MS)
        } else {
            self.cfg.interval_ms
        };
        self.next_at = Some(now_ms + wait.max(1));
        self.advertisement(ALL_NODES)
    }

    /// A Router Advertisement to `dst` (RFC 4861 section 4.2).
    fn advertisement(&mut self, dst: Ipv6Addr) -> Vec<u8> {
        let mut flags = 0;
        if self.cfg.managed {
            flags |= FLAG_MANAGED;
        }
        if self.cfg.other {
            flags |= FLAG_OTHER;
        }
        // Cur Hop Limit 64, flags, Router Lifetime, Reachable Time and
        // Retrans Timer unspecified (0).
        let mut body = vec![64, flags];
        body.extend_from_slice(&self.cfg.router_lifetime_s.to_be_bytes());
        body.extend_from_slice(&[0; 8]);
        if let Some(mac) = self.cfg.link_layer {
            body.extend_from_slice(&[OPT_SOURCE_LINK_LAYER, 1]);
            body.extend_from_slice(&mac);
        }
        body.extend_from_slice(&[OPT_MTU, 1, 0, 0]);
        body.extend_from_slice(&u32::from(self.cfg.mtu).to_be_bytes());
        if let Some(p) = self.prefix {
            let mut pflags = PREFIX_FLAG_ON_LINK;
            if self.cfg.autonomous {
                pflags |= PREFIX_FLAG_AUTONOMOUS;
            }
            body.extend_from_slice(&[OPT_PREFIX_INFORMATION, 4, p.len(), pflags]);
            body.extend_from_slice(&self.cfg.prefix_valid_s.to_be_bytes());
            body.extend_from_slice(
                &self
                    .cfg
                    .prefix_preferred_s
                    .min(self.cfg.prefix_valid_s)
                    .to_be_bytes(),
            );
            body.extend_from_slice(&[0; 4]);
            body.extend_from_slice(&p.addr().octets());
        }
        self.counters.advertisements_sent += 1;
        emit_icmpv6(self.address, dst, 255, ROUTER_ADVERTISEMENT, 0, &body)
    }
}

/// Whether `opts` is a well-formed Neighbor Discovery option list: every
/// option has a non-zero length (in units of 8 bytes) that fits
/// (RFC 4861 section 4.6).
fn valid_options(mut opts: &[u8]) -> bool {
    while !opts.is_empty() {
        let Some(&units) = opts.get(1) else {
            return false;
        };
        let len = usize::from(units) * 8;
        if len == 0 || len > opts.len() {
            return false;
        }
        opts = &opts[len..];
    }
    true
}

/// What a Router Advertisement says, for tests and clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertisement {
    /// Managed flag.
    pub managed: bool,
    /// Other flag.
    pub other: bool,
    /// Router Lifetime, seconds.
    pub router_lifetime_s: u16,
    /// MTU option, if present.
    pub mtu: Option<u32>,
    /// Source Link-Layer Address option (an Ethernet MAC), if present.
    pub source_link_layer: Option<[u8; 6]>,
    /// Prefix Information options: (prefix, on-link, autonomous, valid
    /// lifetime, preferred lifetime).
    pub prefixes: Vec<(Ipv6Prefix, bool, bool, u32, u32)>,
}

/// Parse the body (after type, code, checksum) of a Router Advertisement;
/// `None` if it is malformed.
pub fn parse_advertisement(body: &[u8]) -> Option<Advertisement> {
    if body.len() < 12 || !valid_options(&body[12..]) {
        return None;
    }
    let mut ad = Advertisement {
        managed: body[1] & FLAG_MANAGED != 0,
        other: body[1] & FLAG_OTHER != 0,
        router_lifetime_s: u16::from_be_bytes([body[2], body[3]]),
        mtu: None,
        source_link_layer: None,
        prefixes: Vec::new(),
    };
    let mut opts = &body[12..];
    while opts.len() >= 2 {
        let len = usize::from(opts[1]) * 8;
        let opt = &opts[..len];
        match (opt[0], len) {
            (OPT_MTU, 8) => ad.mtu = Some(u32::from_be_bytes([opt[4], opt[5], opt[6], opt[7]])),
            (OPT_SOURCE_LINK_LAYER, 8) => {
                ad.source_link_layer = Some([opt[2], opt[3], opt[4], opt[5], opt[6], opt[7]]);
            }
            (OPT_PREFIX_INFORMATION, 32) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(&opt[16..32]);
                let prefix = Ipv6Prefix::containing(Ipv6Addr::from(a), opt[2]);
                let valid = u32::from_be_bytes([opt[4], opt[5], opt[6], opt[7]]);
                let preferred = u32::from_be_bytes([opt[8], opt[9], opt[10], opt[11]]);
                ad.prefixes.push((
                    prefix,
                    opt[3] & PREFIX_FLAG_ON_LINK != 0,
                    opt[3] & PREFIX_FLAG_AUTONOMOUS != 0,
                    valid,
                    preferred,
                ));
            }
            _ => {}
        }
        opts = &opts[len..];
    }
    Some(ad)
}

#[cfg(test)]
mod tests {
    use super::super::packet::parse;
    use super::super::{ALL_ROUTERS, packet::emit_icmpv6};
    use super::*;
    use proptest::prelude::*;

    const PEER: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x1234, 0x56ff, 0xfe78, 0x9abc);
    const IID: u64 = 0x0000_5eff_fe00_0101;

    fn advertiser(autonomous: bool) -> RouterAdvertiser {
        let cfg = RaConfig {
            autonomous,
            mtu: 1480,
            interval_ms: 300_000,
            ..RaConfig::default()
        };
        RouterAdvertiser::new(cfg, IID, Some("2001:db8:0:7::/64".parse().unwrap()))
    }

    fn decode_ra(bytes: &[u8]) -> (Ipv6Addr, Ipv6Addr, Advertisement) {
        let p = parse(bytes).unwrap();
        assert_eq!(p.hop_limit, 255);
        let m = parse_icmpv6(&p).unwrap();
        assert_eq!(m.typ, ROUTER_ADVERTISEMENT);
        (p.src, p.dst, parse_advertisement(m.body).unwrap())
    }

    #[test]
    fn advertisements_carry_flags_mtu_and_prefix_and_follow_the_schedule() {
        let mut ra = advertiser(false);
        assert_eq!(ra.next_deadline(), None);
        let first = ra.start(1000);
        let (src, dst, ad) = decode_ra(&first[0]);
        assert_eq!(src.to_string(), "fe80::5eff:fe00:101");
        assert_eq!(dst, ALL_NODES);
        assert!(ad.managed && ad.other);
        assert_eq!(ad.router_lifetime_s, 1800);
        assert_eq!(ad.mtu, Some(1480));
        let (p, on_link, auto, valid, preferred) = ad.prefixes[0];
        assert_eq!(p.to_string(), "2001:db8:0:7::/64");
        assert!(on_link && !auto);
        assert_eq!((valid, preferred), (86_400, 14_400));
        // Initial advertisements 16 s apart, then the configured interval.
        assert_eq!(ra.next_deadline(), Some(17_000));
        assert!(ra.tick(16_999).is_empty());
        assert_eq!(ra.tick(17_000).len(), 1);
        assert_eq!(ra.next_deadline(), Some(33_000));
        assert_eq!(ra.tick(33_000).len(), 1);
        assert_eq!(ra.next_deadline(), Some(333_000));
        assert_eq!(ra.counters().advertisements_sent, 3);

        let auto = advertiser(true).start(0);
        assert!(decode_ra(&auto[0]).2.prefixes[0].2, "A flag as configured");
    }

    #[test]
    fn solicitations_are_answered_and_invalid_ones_dropped() {
        let mut ra = advertiser(false);
        let rs = emit_icmpv6(PEER, ALL_ROUTERS, 255, ROUTER_SOLICITATION, 0, &[0; 4]);
        let reply = ra.input(&parse(&rs).unwrap()).expect("an RA");
        let (_, dst, _) = decode_ra(&reply);
        assert_eq!(dst, PEER);
        // Forwarded (hop limit below 255), bad code, bad option length.
        let forwarded = emit_icmpv6(PEER, ALL_ROUTERS, 254, ROUTER_SOLICITATION, 0, &[0; 4]);
        let coded = emit_icmpv6(PEER, ALL_ROUTERS, 255, ROUTER_SOLICITATION, 1, &[0; 4]);
        let bad_opt = emit_icmpv6(
            PEER,
            ALL_ROUTERS,
            255,
            ROUTER_SOLICITATION,
            0,
            &[0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
        );
        for p in [forwarded, coded, bad_opt] {
            assert_eq!(ra.input(&parse(&p).unwrap()), None);
        }
        assert_eq!(ra.counters().solicitations_received, 1);
        assert_eq!(ra.counters().dropped, 3);
    }

    /// The router's Neighbor Advertisement answering a solicitation from
    /// [`PEER`] for its own address.
    fn solicit_router(ra: &mut RouterAdvertiser) -> Vec<u8> {
        let mut body = vec![0; 4];
        body.extend_from_slice(&ra.address().octets());
        let ns = emit_icmpv6(PEER, ra.address(), 255, NEIGHBOR_SOLICITATION, 0, &body);
        ra.input(&parse(&ns).unwrap()).expect("an NA")
    }

    /// On an Ethernet link the router names its MAC: Source Link-Layer
    /// Address in advertisements, Target Link-Layer Address and Override in
    /// neighbour advertisements. On PPP neither option is sent.
    #[test]
    fn ethernet_links_carry_the_link_layer_address() {
        const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x01, 0x01];
        let cfg = RaConfig {
            link_layer: Some(MAC),
            mtu: 1500,
            ..RaConfig::default()
        };
        let mut ra = RouterAdvertiser::new(cfg, IID, Some("2001:db8:0:7::/64".parse().unwrap()));
        let rs = emit_icmpv6(PEER, ALL_ROUTERS, 255, ROUTER_SOLICITATION, 0, &[0; 4]);
        let ad = decode_ra(&ra.input(&parse(&rs).unwrap()).unwrap()).2;
        assert_eq!((ad.source_link_layer, ad.mtu), (Some(MAC), Some(1500)));
        assert_eq!(ad.prefixes.len(), 1);
        let na = solicit_router(&mut ra);
        let p = parse(&na).unwrap();
        let m = parse_icmpv6(&p).unwrap();
        assert_eq!(m.body[0], 0xe0, "router, solicited, override");
        assert_eq!(&m.body[20..22], &[OPT_TARGET_LINK_LAYER, 1]);
        assert_eq!(&m.body[22..28], &MAC);
        assert!(valid_options(&m.body[20..]));
        // PPP: no link-layer options.
        let ppp = decode_ra(&advertiser(false).start(0)[0]).2;
        assert_eq!(ppp.source_link_layer, None);
    }

    #[test]
    fn neighbor_solicitation_for_our_address_only() {
        let mut ra = advertiser(false);
        let na = solicit_router(&mut ra);
        let p = parse(&na).unwrap();
        let m = parse_icmpv6(&p).unwrap();
        assert_eq!(
            (m.typ, p.dst, m.body[0]),
            (NEIGHBOR_ADVERTISEMENT, PEER, 0xc0)
        );
        // The peer's own duplicate address detection is not answered.
        let mut dad = vec![0; 4];
        dad.extend_from_slice(&PEER.octets());
        let ns = emit_icmpv6(
            Ipv6Addr::UNSPECIFIED,
            PEER,
            255,
            NEIGHBOR_SOLICITATION,
            0,
            &dad,
        );
        assert_eq!(ra.input(&parse(&ns).unwrap()), None);
    }

    proptest! {
        #[test]
        fn arbitrary_icmpv6_never_panics(typ in 128u8..140, body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut ra = advertiser(false);
            let pkt = emit_icmpv6(PEER, ALL_ROUTERS, 255, typ, 0, &body);
            let _ = ra.input(&parse(&pkt).unwrap());
            let _ = parse_advertisement(&body);
        }
    }
}
