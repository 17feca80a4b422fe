//! The sans-IO redirect handler: one GTP-U datagram in, at most one GTP-U
//! datagram out, plus lease events for the session task.

use std::net::Ipv4Addr;

use vbng_access::dhcproto::Encodable;
use vbng_access::dhcproto::v4::MessageType;
use vbng_access::dhcpv4::{self, ClientContext, ClientKey, LeaseEvent};
use vbng_dataplane::wire::{
    self, ArpOperation, ArpRepr, EtherType, EthernetAddress, GtpuRepr, IpProtocol, Ipv4Repr,
    L2Header, UdpRepr,
};

use super::{DropReason, MacLimiter, SharedDhcp};
use crate::aaa::Aaa;
use crate::metrics::Metrics;

/// GTP-U message type of a G-PDU (TS 29.281 section 6.1).
const G_PDU: u8 = 255;
/// TTL of the IPv4 replies we originate.
const REPLY_TTL: u8 = 64;

/// Settings of a [`Redirector`].
#[derive(Debug, Clone)]
pub struct RedirectorConfig {
    /// Virtual gateway MAC: source of ARP and DHCP replies.
    pub gateway_mac: EthernetAddress,
    /// Pool gateways we answer ARP for.
    pub gateways: Vec<Ipv4Addr>,
    /// Per-MAC rate (frames/s).
    pub per_mac_pps: u32,
    /// Per-MAC burst (frames).
    pub per_mac_burst: u32,
    /// Most MACs tracked by the limiter.
    pub max_tracked_macs: usize,
}

/// Handles redirected control frames.
#[derive(Debug)]
pub struct Redirector {
    cfg: RedirectorConfig,
    limiter: MacLimiter,
    dhcp: SharedDhcp,
    aaa: Aaa,
    metrics: Metrics,
    /// Clients whose message was dropped while AAA decides; see
    /// [`Redirector::take_auth_pending`].
    auth_pending: Vec<ClientKey>,
    /// PPPoE frames for the PPPoE task: (port, L2 header, payload after it).
    pppoe: Vec<(u8, L2Header, Vec<u8>)>,
    /// IPv6 of IPoE subscribers, if on.
    ipv6: Option<super::ipv6::Ipoe6>,
}

impl Redirector {
    /// A handler answering from `dhcp`, authorizing from `aaa`.
    pub fn new(cfg: RedirectorConfig, dhcp: SharedDhcp, aaa: Aaa, metrics: Metrics) -> Self {
        let limiter = MacLimiter::new(cfg.per_mac_pps, cfg.per_mac_burst, cfg.max_tracked_macs);
        Redirector {
            cfg,
            limiter,
            dhcp,
            aaa,
            metrics,
            auth_pending: Vec::new(),
            pppoe: Vec::new(),
            ipv6: None,
        }
    }

    /// Serve IPv6 to IPoE subscribers with `ipv6`.
    pub fn with_ipv6(mut self, ipv6: super::ipv6::Ipoe6) -> Self {
        self.ipv6 = Some(ipv6);
        self
    }

    /// IPv6 housekeeping at `now_ms` (see [`super::ipv6::Ipoe6::tick`]):
    /// the unsolicited Router Advertisements due, as (user plane index,
    /// GTP-U datagram to it).
    pub fn tick_ipv6(&mut self, now_ms: u64) -> Vec<(u32, Vec<u8>)> {
        let Some(v6) = self.ipv6.as_mut() else {
            return Vec::new();
        };
        v6.tick(now_ms)
            .into_iter()
            .filter_map(|(up, port, frame)| {
                GtpuRepr::g_pdu(u32::from(port))
                    .encapsulate(&frame)
                    .ok()
                    .map(|d| (up, d))
            })
            .collect()
    }

    /// PPPoE discovery and session frames of the datagrams handled so far:
    /// (access port, Ethernet/VLAN header, the bytes after it). They
    /// passed the per-MAC rate limit; the caller hands them to the PPPoE
    /// task.
    pub fn take_pppoe(&mut self) -> Vec<(u8, L2Header, Vec<u8>)> {
        std::mem::take(&mut self.pppoe)
    }

    /// The AAA backend.
    pub fn aaa(&self) -> &Aaa {
        &self.aaa
    }

    /// Clients whose last handled message waits for an AAA decision
    /// (dropped with `auth_pending`): the caller parks those messages with
    /// the RADIUS backend, which hands them back once it has decided.
    pub fn take_auth_pending(&mut self) -> Vec<ClientKey> {
        std::mem::take(&mut self.auth_pending)
    }

    /// Handle one GTP-U datagram from user plane `up` at `now_ms`.
    /// Returns the GTP-U datagram to send back to its source, if any;
    /// lease events are appended to `events`. Drops are counted; sends are
    /// counted by whoever sends (a DHCPACK that binds a lease waits for
    /// its session, see [`crate::session`]).
    pub fn handle(
        &mut self,
        now_ms: u64,
        up: u32,
        datagram: &[u8],
        events: &mut Vec<LeaseEvent>,
    ) -> Option<Vec<u8>> {
        self.metrics.redirect_in.inc();
        match self.handle_inner(now_ms, up, datagram, events) {
            Ok(reply) => Some(reply),
            Err(DropReason::HandedToPppoe) => {
                self.metrics.pppoe_frames.inc();
                None
            }
            Err(reason) => {
                if reason == DropReason::RateLimited {
                    self.metrics.redirect_rate_limited.inc();
                }
                self.metrics.drop_redirect(reason.name());
                None
            }
        }
    }

    /// Forget idle rate-limiter entries (called from a periodic tick).
    pub fn prune(&mut self, now_ms: u64) {
        self.limiter.prune(now_ms);
    }

    fn handle_inner(
        &mut self,
        now_ms: u64,
        up: u32,
        datagram: &[u8],
        events: &mut Vec<LeaseEvent>,
    ) -> Result<Vec<u8>, DropReason> {
        let (gtpu, frame) =
            GtpuRepr::parse_payload(datagram).map_err(|_| DropReason::GtpuMalformed)?;
        if gtpu.msg_type != G_PDU {
            return Err(DropReason::GtpuNotGpdu);
        }
        let port = u8::try_from(gtpu.teid).map_err(|_| DropReason::BadPort)?;
        let (l2, off) = L2Header::parse(frame).map_err(|_| DropReason::L2Malformed)?;
        if !self.limiter.allow(l2.src.0, now_ms) {
            return Err(DropReason::RateLimited);
        }
        let payload = &frame[off..];
        let inner = match l2.ethertype {
            EtherType::Arp => self.handle_arp(&l2, payload)?,
            EtherType::Ipv4 => self.handle_ipv4(now_ms, up, port, &l2, payload, events)?,
            EtherType::PppoeDiscovery | EtherType::PppoeSession => {
                self.pppoe.push((port, l2, payload.to_vec()));
                return Err(DropReason::HandedToPppoe);
            }
            EtherType::Ipv6 => {
                let key = client_key(up, port, &l2);
                let v6 = self.ipv6.as_mut().ok_or(DropReason::Ipv6NoSession)?;
                v6.handle(now_ms, key, &l2, payload)?
            }
            _ => return Err(DropReason::UnsupportedEthertype),
        };
        GtpuRepr::g_pdu(gtpu.teid)
            .encapsulate(&inner)
            .map_err(|_| DropReason::L2Malformed)
    }

    /// RFC 826: answer requests for a pool gateway from the gateway MAC.
    fn handle_arp(&mut self, l2: &L2Header, payload: &[u8]) -> Result<Vec<u8>, DropReason> {
        let req = ArpRepr::parse(payload).map_err(|_| DropReason::ArpMalformed)?;
        if req.operation != ArpOperation::Request
            || !self.cfg.gateways.contains(&req.target_protocol_addr)
        {
            return Err(DropReason::ArpNotForGateway);
        }
        let reply_l2 = L2Header {
            dst: req.source_hardware_addr,
            src: self.cfg.gateway_mac,
            svlan: l2.svlan,
            cvlan: l2.cvlan,
            ethertype: EtherType::Arp,
        };
        let reply = ArpRepr {
            operation: ArpOperation::Reply,
            source_hardware_addr: self.cfg.gateway_mac,
            source_protocol_addr: req.target_protocol_addr,
            target_hardware_addr: req.source_hardware_addr,
            target_protocol_addr: req.source_protocol_addr,
        };
        self.metrics.arp_replies.inc();
        Ok(wire::frame::build_arp(&reply_l2, &reply))
    }

    fn handle_ipv4(
        &mut self,
        now_ms: u64,
        up: u32,
        port: u8,
        l2: &L2Header,
        packet: &[u8],
        events: &mut Vec<LeaseEvent>,
    ) -> Result<Vec<u8>, DropReason> {
        let (src, dst, udp) = ipv4_udp_payload(packet)?;
        let udp_repr = UdpRepr::parse(udp).map_err(|_| DropReason::UdpMalformed)?;
        if udp_repr.dst_port != dhcpv4::SERVER_PORT {
            return Err(DropReason::NotDhcp);
        }
        let udp_len = 8 + usize::from(udp_repr.payload_len);
        let Some(udp) = udp.get(..udp_len) else {
            return Err(DropReason::UdpMalformed);
        };
        if !wire::udp::verify_checksum(src, dst, udp) {
            return Err(DropReason::UdpMalformed);
        }
        // The guarded decoder rejects option lengths dhcproto would panic on.
        let msg = match dhcpv4::decode(&udp[8..]) {
            Ok(m) => m,
            Err(_) => {
                self.metrics
                    .dhcp_errors
                    .get_or_create(&crate::metrics::ReasonLabels {
                        reason: "undecodable",
                    })
                    .inc();
                return Err(DropReason::DhcpMalformed);
            }
        };
        self.metrics
            .dhcp(msg_type_name(msg.opts().msg_type()), "rx");
        let key = client_key(up, port, l2);
        let ctx = ClientContext::from_message(key, &msg);
        let aaa = &self.aaa;
        let handled = {
            let mut dhcp = self.dhcp.lock().unwrap_or_else(|p| p.into_inner());
            dhcp.handle(now_ms, &ctx, &msg, &mut |c| aaa.authorize(c, now_ms))
        };
        events.extend(handled.events);
        if handled.dropped == Some(dhcpv4::DropReason::AuthPending) {
            self.auth_pending.push(key);
        }
        if let Some(reason) = handled.dropped {
            self.metrics
                .dhcp_errors
                .get_or_create(&crate::metrics::ReasonLabels {
                    reason: reason.name(),
                })
                .inc();
        }
        let Some(reply) = handled.reply else {
            return Err(DropReason::DhcpNoReply);
        };
        let bytes = reply.msg.to_vec().map_err(|_| DropReason::DhcpMalformed)?;
        self.metrics
            .dhcp(msg_type_name(reply.msg.opts().msg_type()), "tx");
        let reply_l2 = L2Header {
            dst: if reply.dst_mac_broadcast {
                EthernetAddress::BROADCAST
            } else {
                l2.src
            },
            src: self.cfg.gateway_mac,
            svlan: l2.svlan,
            cvlan: l2.cvlan,
            ethertype: EtherType::Ipv4,
        };
        Ok(wire::frame::build_ipv4_udp(
            &reply_l2,
            reply.src_ip,
            reply.dst_ip,
            dhcpv4::SERVER_PORT,
            reply.dst_port,
            REPLY_TTL,
            &bytes,
        ))
    }
}

/// Validate an IPv4 packet carrying UDP; returns addresses and the UDP
/// datagram (bounded by the IPv4 total length).
fn ipv4_udp_payload(packet: &[u8]) -> Result<(Ipv4Addr, Ipv4Addr, &[u8]), DropReason> {
    let h = wire::ipv4::Header::parse(packet).map_err(|_| DropReason::Ipv4Malformed)?;
    let hl = h.header_len();
    let total = usize::from(h.total_len());
    if hl < 20 || total < hl || total > packet.len() {
        return Err(DropReason::Ipv4Malformed);
    }
    let ip = Ipv4Repr::parse(packet).map_err(|_| DropReason::Ipv4Malformed)?;
    if ip.protocol != IpProtocol::Udp {
        return Err(DropReason::NotDhcp);
    }
    if ip.more_frags || ip.frag_offset != 0 {
        return Err(DropReason::Ipv4Malformed);
    }
    Ok((ip.src_addr, ip.dst_addr, &packet[hl..total]))
}

/// Lower-case DHCP message type for metric labels.
pub fn msg_type_name(t: Option<MessageType>) -> &'static str {
    match t {
        Some(MessageType::Discover) => "discover",
        Some(MessageType::Offer) => "offer",
        Some(MessageType::Request) => "request",
        Some(MessageType::Decline) => "decline",
        Some(MessageType::Ack) => "ack",
        Some(MessageType::Nak) => "nak",
        Some(MessageType::Release) => "release",
        Some(MessageType::Inform) => "inform",
        Some(_) => "other",
        None => "none",
    }
}

/// The access line and MAC of a frame from user plane `up`, access port
/// `port`, with header `l2`.
fn client_key(up: u32, port: u8, l2: &L2Header) -> ClientKey {
    ClientKey {
        up,
        port,
        svlan: l2.svlan.unwrap_or(0),
        cvlan: l2.cvlan.unwrap_or(0),
        mac: l2.src.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    use proptest::prelude::*;
    use vbng_access::dhcproto::v4::{DhcpOption, Flags, Message};
    use vbng_access::dhcpv4::{DhcpServer, PoolConfig};

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 9];

    fn redirector(burst: u32) -> (Redirector, Metrics) {
        let metrics = Metrics::default();
        let dhcp = Arc::new(Mutex::new(
            DhcpServer::new(vec![PoolConfig::default()]).unwrap(),
        ));
        let r = Redirector::new(
            RedirectorConfig {
                gateway_mac: EthernetAddress([2, 0, 0x5e, 0, 1, 1]),
                gateways: vec![Ipv4Addr::new(100, 64, 0, 1)],
                per_mac_pps: 1,
                per_mac_burst: burst,
                max_tracked_macs: 16,
            },
            dhcp,
            crate::aaa::Aaa::Local(Arc::new(crate::aaa::LocalSubscribers::default())),
            metrics.clone(),
        );
        (r, metrics)
    }

    fn discover(mac: [u8; 6]) -> Vec<u8> {
        let mut m = Message::new(
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &mac,
        );
        m.set_flags(Flags::default());
        m.opts_mut()
            .insert(DhcpOption::MessageType(MessageType::Discover));
        let l2 = L2Header {
            dst: EthernetAddress::BROADCAST,
            src: EthernetAddress(mac),
            svlan: None,
            cvlan: None,
            ethertype: EtherType::Ipv4,
        };
        let frame = wire::frame::build_ipv4_udp(
            &l2,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            68,
            67,
            64,
            &m.to_vec().unwrap(),
        );
        GtpuRepr::g_pdu(0).encapsulate(&frame).unwrap()
    }

    fn dropped(m: &Metrics, reason: DropReason) -> bool {
        crate::metrics::encode(&m.registry()).contains(&format!(
            "vbng_cp_redirect_dropped_total{{reason=\"{}\"}} 1",
            reason.name()
        ))
    }

    #[test]
    fn offer_goes_to_client_mac_without_broadcast_flag() {
        let (mut r, _) = redirector(5);
        let mut ev = Vec::new();
        let out = r.handle(0, 0, &discover(MAC), &mut ev).expect("offer");
        let (_, frame) = GtpuRepr::parse_payload(&out).unwrap();
        let (l2, _) = L2Header::parse(frame).unwrap();
        assert_eq!(l2.dst, EthernetAddress(MAC));
        assert!(ev.is_empty(), "an offer binds nothing");
    }

    #[test]
    fn flood_from_one_mac_is_limited_others_served() {
        let (mut r, m) = redirector(3);
        let mut ev = Vec::new();
        let served = (0..50)
            .filter(|_| r.handle(0, 0, &discover(MAC), &mut ev).is_some())
            .count();
        assert_eq!(served, 3);
        assert!(
            r.handle(0, 0, &discover([2, 0, 0, 0, 0, 10]), &mut ev)
                .is_some()
        );
        let text = crate::metrics::encode(&m.registry());
        assert!(
            text.contains("vbng_cp_redirect_rate_limited_total 47"),
            "{text}"
        );
    }

    #[test]
    fn drops_are_classified() {
        let (mut r, m) = redirector(100);
        let mut ev = Vec::new();
        // GTP-U echo request instead of a G-PDU.
        let mut echo = discover(MAC);
        echo[1] = 1;
        assert!(r.handle(0, 0, &echo, &mut ev).is_none());
        assert!(dropped(&m, DropReason::GtpuNotGpdu));
        // TEID beyond the port range.
        let big = GtpuRepr::g_pdu(300).encapsulate(&[0u8; 60]).unwrap();
        assert!(r.handle(0, 0, &big, &mut ev).is_none());
        assert!(dropped(&m, DropReason::BadPort));
        // LLDP, and IPv6 while IPoE has no IPv6 service.
        for (ethertype, reason) in [
            ([0x88, 0xcc], DropReason::UnsupportedEthertype),
            ([0x86, 0xdd], DropReason::Ipv6NoSession),
        ] {
            let mut f = vec![0u8; 60];
            f[..6].copy_from_slice(&[0xff; 6]);
            f[6..12].copy_from_slice(&MAC);
            f[12..14].copy_from_slice(&ethertype);
            let f = GtpuRepr::g_pdu(0).encapsulate(&f).unwrap();
            assert!(r.handle(0, 0, &f, &mut ev).is_none());
            assert!(dropped(&m, reason), "{reason:?}");
        }
        // ARP for an address that is not a pool gateway.
        let l2 = L2Header {
            dst: EthernetAddress::BROADCAST,
            src: EthernetAddress(MAC),
            svlan: None,
            cvlan: None,
            ethertype: EtherType::Arp,
        };
        let arp = ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: EthernetAddress(MAC),
            source_protocol_addr: Ipv4Addr::new(100, 64, 0, 20),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: Ipv4Addr::new(100, 64, 0, 30),
        };
        let arp = GtpuRepr::g_pdu(0)
            .encapsulate(&wire::frame::build_arp(&l2, &arp))
            .unwrap();
        assert!(r.handle(0, 0, &arp, &mut ev).is_none());
        assert!(dropped(&m, DropReason::ArpNotForGateway));
        // Corrupt UDP checksum.
        let mut bad = discover(MAC);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert!(r.handle(0, 0, &bad, &mut ev).is_none());
        assert!(dropped(&m, DropReason::UdpMalformed));
    }

    proptest! {
        #[test]
        fn arbitrary_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let (mut r, _) = redirector(1000);
            let mut ev = Vec::new();
            let _ = r.handle(0, 0, &bytes, &mut ev);
        }

        #[test]
        fn corrupted_discover_never_panics(flips in proptest::collection::vec((0usize..400, any::<u8>()), 1..8)) {
            let (mut r, _) = redirector(1000);
            let mut d = discover(MAC);
            for (i, v) in flips {
                if let Some(b) = d.get_mut(i) {
                    *b = v;
                }
            }
            let mut ev = Vec::new();
            let _ = r.handle(0, 0, &d, &mut ev);
        }
    }
}
