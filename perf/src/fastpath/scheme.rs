//! The "vbng-lab" traffic scheme: the frames a TRex profile of `trex-profiles/` sends
//! (built there with scapy, here byte for byte the same) and the sessions that make the user
//! plane forward them.
//!
//! For subscriber `i` in `0..N`:
//! - MAC `02:10:` + the four bytes of `i`, IPv4 `100.64.0.1 + i`, server
//!   `203.0.113.1 + i % 254`, UDP source port `10000 + i % 50000` to port 5201;
//! - VLANs: none; single (one 802.1Q tag, VID `1 + i % 4000`); QinQ (outer 802.1Q VID
//!   `100 + i / 4000`, inner 802.1Q VID `1 + i % 4000`), both tags with TPID 0x8100;
//! - PPPoE session id `1 + i % 65535` (protocol pppoe);
//! - upstream: gateway MAC <- subscriber MAC, tags, [PPPoE + PPP 0x0021], IPv4 (TTL 64,
//!   id 1, no flags, TOS 0), UDP with its checksum, zero payload up to the frame size;
//! - downstream: core MAC <- next-hop MAC, untagged IPv4 server -> subscriber, UDP 5201 ->
//!   the subscriber's port, zero payload up to the frame size;
//! - frame size: bytes on the wire with the 4-byte FCS, so a 64-byte frame is built with 60
//!   bytes; IMIX is 64, 594 and 1518 in the ratio 7:4:1, packet `k` of a subscriber taking
//!   [`IMIX_PATTERN`]`[k % 12]`.
//!
//! A pcap lists packet `k` of every subscriber before packet `k + 1` of any.
//!
//! This file depends only on `vbng_dataplane` and `vbng_perf`'s library (the criterion
//! bench includes it too).

use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::Path;

use crate::acl::{Rng, random_rules};
use vbng_dataplane::acl::{AclAction, AclId, AclRule, AclSpec, IpPrefix, PortRange};
use vbng_dataplane::session::{AccessKey, SessionEntry, SessionIpv6, SessionQos, UsageCounters};
use vbng_dataplane::wire::EthernetAddress;

/// The user plane's access-side virtual gateway MAC (destination of upstream frames).
pub const GATEWAY_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x5e, 0x00, 0x01, 0x01]);
/// The user plane's core port MAC (destination of downstream frames).
pub const CORE_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x00, 0x00, 0xc0, 0x01]);
/// The core router's MAC (source of downstream frames, destination of forwarded upstream).
pub const NEXT_HOP_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x5e, 0x00, 0x02, 0x01]);
/// The user plane's core-side address.
pub const CORE_IPV4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// The core router's address.
pub const NEXT_HOP_IPV4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// Address of subscriber 0.
pub const SUBSCRIBER_BASE: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
/// Address of server 0.
pub const SERVER_BASE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// Number of servers (subscriber `i` talks to server `i % SERVER_COUNT`).
pub const SERVER_COUNT: u32 = 254;
/// UDP port of the servers.
pub const SERVER_PORT: u16 = 5201;
/// First subscriber UDP port (subscriber `i` uses `10000 + i % 50000`).
pub const CLIENT_PORT_BASE: u16 = 10_000;
/// Wire sizes (with FCS) of the 12 packets of one IMIX cycle: 7 x 64, 4 x 594, 1 x 1518.
pub const IMIX_PATTERN: [u16; 12] = [64, 64, 64, 64, 64, 64, 64, 594, 594, 594, 594, 1518];
/// Ethernet FCS bytes, counted in the wire size but not built.
pub const FCS_LEN: usize = 4;
/// Subscriber MTU of an IPoE session.
pub const IPOE_MTU: u16 = 1500;
/// Subscriber MTU of a PPPoE session (RFC 2516: 1500 - 8).
pub const PPPOE_MTU: u16 = 1492;
/// TCP MSS clamp of a PPPoE session (MTU - 40).
pub const PPPOE_MSS: u16 = 1452;
/// Name of the 100-rule ACL of the full pipeline.
pub const LAB_ACL_NAME: &str = "lab-100";
/// Rules in the full pipeline's ACL (per direction), the last one a permit-all.
pub const LAB_ACL_RULES: usize = 100;
/// Seed of the full pipeline's ACL rules.
pub const LAB_ACL_SEED: u64 = 0x5EED_FA57_2026;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const PPP_IPV4: u16 = 0x0021;
const UDP: u8 = 17;
const IPV4_HEADER: usize = 20;
const UDP_HEADER: usize = 8;
const PPPOE_HEADER: usize = 8; // PPPoE session header (6) + PPP protocol (2)

/// Subscriber encapsulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// IPv4 directly over Ethernet.
    Ipoe,
    /// IPv4 in PPP in a PPPoE session (RFC 2516).
    Pppoe,
}

impl Protocol {
    /// Lower-case name (`ipoe`, `pppoe`).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Ipoe => "ipoe",
            Protocol::Pppoe => "pppoe",
        }
    }
}

/// VLAN layout of the access side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vlan {
    /// Untagged.
    None,
    /// One 802.1Q tag.
    Single,
    /// Two 802.1Q tags (outer and inner TPID 0x8100).
    Qinq,
}

impl Vlan {
    /// Lower-case name (`none`, `single`, `qinq`).
    pub fn name(self) -> &'static str {
        match self {
            Vlan::None => "none",
            Vlan::Single => "single",
            Vlan::Qinq => "qinq",
        }
    }

    fn tag_count(self) -> usize {
        match self {
            Vlan::None => 0,
            Vlan::Single => 1,
            Vlan::Qinq => 2,
        }
    }
}

/// Which (subscriber, packet) pairs a worker replays ([`Scheme::worker_packets`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Replay {
    /// Every pair in pcap order (subscriber by subscriber, so the tables are read in the
    /// order the sessions were installed) when they fit in the limit, else a random sample
    /// of the limit's size.
    All,
    /// Always a random sample of the limit's size (fixed seed), whatever the session
    /// count: points of a curve then replay as many frames, in random session order, and
    /// differ in their session count only.
    Sample,
}

impl Replay {
    /// `all` or `sample`.
    pub fn name(self) -> &'static str {
        match self {
            Replay::All => "all",
            Replay::Sample => "sample",
        }
    }
}

/// Frame sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameSize {
    /// Every frame this many bytes on the wire (FCS included).
    Fixed(u16),
    /// 64, 594 and 1518 bytes in the ratio 7:4:1 ([`IMIX_PATTERN`]).
    Imix,
}

impl FrameSize {
    /// `64` or `imix`.
    pub fn name(self) -> String {
        match self {
            FrameSize::Fixed(n) => n.to_string(),
            FrameSize::Imix => "imix".to_owned(),
        }
    }
}

/// One instance of the scheme: N subscribers with one protocol, VLAN layout and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheme {
    /// Number of subscribers.
    pub sessions: u32,
    /// Encapsulation.
    pub protocol: Protocol,
    /// VLAN layout.
    pub vlan: Vlan,
    /// Frame sizes.
    pub size: FrameSize,
    /// Which frames a worker replays.
    pub replay: Replay,
}

impl Scheme {
    /// MAC address of subscriber `i`.
    pub fn subscriber_mac(i: u32) -> EthernetAddress {
        let b = i.to_be_bytes();
        EthernetAddress([0x02, 0x10, b[0], b[1], b[2], b[3]])
    }

    /// IPv4 address of subscriber `i`.
    pub fn subscriber_ipv4(i: u32) -> Ipv4Addr {
        Ipv4Addr::from_bits(SUBSCRIBER_BASE.to_bits().wrapping_add(i))
    }

    /// Address of the server subscriber `i` talks to.
    pub fn server_ipv4(i: u32) -> Ipv4Addr {
        Ipv4Addr::from_bits(SERVER_BASE.to_bits().wrapping_add(i % SERVER_COUNT))
    }

    /// UDP port of subscriber `i`.
    pub fn client_port(i: u32) -> u16 {
        CLIENT_PORT_BASE + (i % 50_000) as u16
    }

    /// PPPoE session id of subscriber `i`.
    pub fn pppoe_session(i: u32) -> u16 {
        1 + (i % 65_535) as u16
    }

    /// VLAN ids of subscriber `i` in the session table's terms: `(svlan, cvlan)`, 0 = absent.
    /// A single tag is the C-VLAN (the pipeline reads one 802.1Q tag as the customer tag).
    pub fn vlan_ids(&self, i: u32) -> (u16, u16) {
        let inner = 1 + (i % 4000) as u16;
        match self.vlan {
            Vlan::None => (0, 0),
            Vlan::Single => (0, inner),
            Vlan::Qinq => ((100 + i / 4000) as u16, inner),
        }
    }

    /// Packets per subscriber in one pass of the pcap: 1, or 12 for IMIX (one cycle).
    pub fn packets_per_session(&self) -> u32 {
        match self.size {
            FrameSize::Fixed(_) => 1,
            FrameSize::Imix => IMIX_PATTERN.len() as u32,
        }
    }

    /// Wire size (FCS included) of packet `k` of a subscriber.
    pub fn wire_size(&self, k: u32) -> usize {
        match self.size {
            FrameSize::Fixed(n) => usize::from(n),
            FrameSize::Imix => usize::from(IMIX_PATTERN[k as usize % IMIX_PATTERN.len()]),
        }
    }

    /// Appends upstream packet `k` of subscriber `i` to `out`.
    pub fn write_upstream(&self, i: u32, k: u32, out: &mut Vec<u8>) {
        let start = out.len();
        let pppoe = self.protocol == Protocol::Pppoe;
        let headers = 14
            + 4 * self.vlan.tag_count()
            + if pppoe { PPPOE_HEADER } else { 0 }
            + IPV4_HEADER
            + UDP_HEADER;
        let payload = (self.wire_size(k) - FCS_LEN).saturating_sub(headers);
        out.extend_from_slice(&GATEWAY_MAC.0);
        out.extend_from_slice(&Self::subscriber_mac(i).0);
        let (outer, inner) = self.vlan_ids(i);
        for vid in [outer, inner].into_iter().filter(|v| *v != 0) {
            out.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            out.extend_from_slice(&vid.to_be_bytes());
        }
        let ip_len = IPV4_HEADER + UDP_HEADER + payload;
        if pppoe {
            out.extend_from_slice(&ETHERTYPE_PPPOE_SESSION.to_be_bytes());
            out.extend_from_slice(&[0x11, 0x00]);
            out.extend_from_slice(&Self::pppoe_session(i).to_be_bytes());
            out.extend_from_slice(&((ip_len + 2) as u16).to_be_bytes());
            out.extend_from_slice(&PPP_IPV4.to_be_bytes());
        } else {
            out.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        }
        write_ipv4_udp(
            out,
            Self::subscriber_ipv4(i),
            Self::server_ipv4(i),
            Self::client_port(i),
            SERVER_PORT,
            payload,
        );
        debug_assert_eq!(out.len() - start, headers + payload);
    }

    /// Appends downstream packet `k` for subscriber `i` to `out`.
    pub fn write_downstream(&self, i: u32, k: u32, out: &mut Vec<u8>) {
        self.write_downstream_to(i, k, None, out);
    }

    /// [`Scheme::write_downstream`] addressed to `to` (the subscriber's outside endpoint at
    /// a NAT) instead of the subscriber's own address and port when given.
    pub fn write_downstream_to(
        &self,
        i: u32,
        k: u32,
        to: Option<(Ipv4Addr, u16)>,
        out: &mut Vec<u8>,
    ) {
        let (dst, dport) = to.unwrap_or((Self::subscriber_ipv4(i), Self::client_port(i)));
        let headers = 14 + IPV4_HEADER + UDP_HEADER;
        let payload = (self.wire_size(k) - FCS_LEN).saturating_sub(headers);
        out.extend_from_slice(&CORE_MAC.0);
        out.extend_from_slice(&NEXT_HOP_MAC.0);
        out.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        write_ipv4_udp(out, Self::server_ipv4(i), dst, SERVER_PORT, dport, payload);
    }

    /// Upstream packet `k` of subscriber `i`.
    pub fn upstream(&self, i: u32, k: u32) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.wire_size(k));
        self.write_upstream(i, k, &mut v);
        v
    }

    /// Downstream packet `k` for subscriber `i`.
    pub fn downstream(&self, i: u32, k: u32) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.wire_size(k));
        self.write_downstream(i, k, &mut v);
        v
    }

    /// The session the user plane needs to forward subscriber `i`'s frames: access port 0,
    /// the subscriber's VLANs, MAC and PPPoE session id (0 for IPoE), its address, gate
    /// open, no rate, MTU 1500 (1492 PPPoE), MSS clamp off (1452 PPPoE), ACL `acl`.
    pub fn session(&self, i: u32, acl: AclId) -> SessionEntry {
        let (svlan, cvlan) = self.vlan_ids(i);
        let pppoe = self.protocol == Protocol::Pppoe;
        SessionEntry {
            id: u64::from(i) + 1,
            access: AccessKey {
                port: 0,
                svlan,
                cvlan,
                mac: Self::subscriber_mac(i),
                pppoe_session: if pppoe { Self::pppoe_session(i) } else { 0 },
            },
            ipv4: Self::subscriber_ipv4(i),
            gate_open: true,
            qos: SessionQos::UNLIMITED,
            mtu: if pppoe { PPPOE_MTU } else { IPOE_MTU },
            mss_clamp: if pppoe { PPPOE_MSS } else { 0 },
            acl,
            counters: UsageCounters::default(),
            ipv6: SessionIpv6::NONE,
        }
    }

    /// Subscribers of worker `worker` of `workers`: `i % workers == worker`.
    pub fn worker_sessions(&self, worker: u32, workers: u32) -> impl Iterator<Item = u32> {
        (worker..self.sessions).step_by(workers.max(1) as usize)
    }

    /// The (subscriber, packet) pairs of worker `worker` in pcap order: with [`Replay::All`]
    /// all of them if they are at most `max` per direction; otherwise (or with
    /// [`Replay::Sample`]) `max` pairs drawn at random (fixed seed) from the worker's
    /// subscribers with `k` cycling through one IMIX pattern.
    pub fn worker_packets(&self, worker: u32, workers: u32, max: usize) -> Vec<(u32, u32)> {
        let workers = workers.max(1);
        let mine = self.sessions.saturating_sub(worker).div_ceil(workers);
        let pps = self.packets_per_session();
        let all = u64::from(mine) * u64::from(pps);
        if mine == 0 || (self.replay == Replay::All && all <= max as u64) {
            let mut v = Vec::with_capacity(all as usize);
            for k in 0..pps {
                v.extend(self.worker_sessions(worker, workers).map(|i| (i, k)));
            }
            return v;
        }
        let mut rng = Rng::new(0xF457_9A7C ^ u64::from(worker));
        (0..max)
            .map(|j| {
                let nth = (rng.next_u64() % u64::from(mine)) as u32;
                (worker + nth * workers, j as u32 % pps)
            })
            .collect()
    }
}

/// Appends an IPv4 header (TTL 64, id 1, no flags, TOS 0) and a UDP header with its
/// checksum, followed by `payload` zero bytes.
fn write_ipv4_udp(
    out: &mut Vec<u8>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: usize,
) {
    let udp_len = (UDP_HEADER + payload) as u16;
    let total = IPV4_HEADER as u16 + udp_len;
    let ip_start = out.len();
    out.extend_from_slice(&[0x45, 0x00]);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&[0x00, 0x01, 0x00, 0x00, 64, UDP, 0, 0]);
    out.extend_from_slice(&src.octets());
    out.extend_from_slice(&dst.octets());
    let csum = !fold(sum16(&out[ip_start..]));
    out[ip_start + 10..ip_start + 12].copy_from_slice(&csum.to_be_bytes());
    let udp_start = out.len();
    out.extend_from_slice(&sport.to_be_bytes());
    out.extend_from_slice(&dport.to_be_bytes());
    out.extend_from_slice(&udp_len.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.resize(out.len() + payload, 0);
    let pseudo = sum16(&src.octets()) + sum16(&dst.octets()) + u32::from(UDP) + u32::from(udp_len);
    let mut csum = !fold(pseudo + sum16(&out[udp_start..]));
    // RFC 768: a computed checksum of 0 is sent as all ones (0 means "none").
    if csum == 0 {
        csum = 0xffff;
    }
    out[udp_start + 6..udp_start + 8].copy_from_slice(&csum.to_be_bytes());
}

/// One's complement sum of big-endian 16-bit words (odd length padded with a zero byte).
fn sum16(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum()
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The full pipeline's ACL: [`LAB_ACL_RULES`] - 1 rules drawn like `vbng-perf acl` draws
/// them ([`random_rules`], seed [`LAB_ACL_SEED`]), then a permit-all rule, the same list for
/// both directions, default permit. A drawn deny rule that could match some frame of the
/// scheme (any number of subscribers) is turned into a permit, so that all traffic passes
/// and the classifier still does the work of a 100-rule list.
pub fn lab_acl() -> AclSpec {
    let mut rng = Rng::new(LAB_ACL_SEED);
    let mut rules = random_rules(LAB_ACL_RULES - 1, &mut rng);
    for r in &mut rules {
        if r.action == AclAction::Deny && could_match_scheme(r) {
            r.action = AclAction::Permit;
        }
    }
    rules.push(AclRule {
        action: AclAction::Permit,
        ..AclRule::default()
    });
    AclSpec {
        name: LAB_ACL_NAME.to_owned(),
        default_action: AclAction::Permit,
        ingress: rules.clone(),
        egress: rules,
    }
}

/// True if `rule` may match an upstream or downstream frame of the scheme: UDP between
/// 100.64.0.0/10 and 203.0.113.0/24, ports 10000-59999 and 5201, in either direction.
fn could_match_scheme(rule: &AclRule) -> bool {
    let prefix_hits = |p: &Option<IpPrefix>, net: Ipv4Addr, len: u8| match p {
        None => true,
        Some(IpPrefix::V4 { addr, len: plen }) => {
            let l = (*plen).min(len);
            let mask = if l == 0 { 0 } else { u32::MAX << (32 - l) };
            addr.to_bits() & mask == net.to_bits() & mask
        }
        Some(IpPrefix::V6 { .. }) => false,
    };
    let ports_hit = |r: &PortRange, first: u16, last: u16| r.first <= last && first <= r.last;
    let proto_ok = matches!(rule.protocol, None | Some(UDP));
    let subs = Ipv4Addr::new(100, 64, 0, 0);
    let servers = Ipv4Addr::new(203, 0, 113, 0);
    let up = prefix_hits(&rule.src, subs, 10)
        && prefix_hits(&rule.dst, servers, 24)
        && ports_hit(&rule.src_ports, 10_000, 59_999)
        && ports_hit(&rule.dst_ports, SERVER_PORT, SERVER_PORT);
    let down = prefix_hits(&rule.src, servers, 24)
        && prefix_hits(&rule.dst, subs, 10)
        && ports_hit(&rule.src_ports, SERVER_PORT, SERVER_PORT)
        && ports_hit(&rule.dst_ports, 10_000, 59_999);
    proto_ok && (up || down)
}

/// Writes `frames` as a classic pcap file (microsecond timestamps 1 us apart, link type
/// Ethernet, snap length 65535).
pub fn write_pcap<'a>(path: &Path, frames: impl IntoIterator<Item = &'a [u8]>) -> io::Result<()> {
    let mut w = io::BufWriter::new(std::fs::File::create(path)?);
    let mut hdr = Vec::with_capacity(24);
    hdr.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    hdr.extend_from_slice(&2u16.to_le_bytes());
    hdr.extend_from_slice(&4u16.to_le_bytes());
    hdr.extend_from_slice(&0i32.to_le_bytes());
    hdr.extend_from_slice(&0u32.to_le_bytes());
    hdr.extend_from_slice(&65_535u32.to_le_bytes());
    hdr.extend_from_slice(&1u32.to_le_bytes());
    w.write_all(&hdr)?;
    for (n, f) in frames.into_iter().enumerate() {
        let us = n as u64;
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&(f.len() as u32).to_le_bytes());
        rec[12..16].copy_from_slice(&(f.len() as u32).to_le_bytes());
        w.write_all(&rec)?;
        w.write_all(f)?;
    }
    w.flush()
}

/// Reads the packets of a classic pcap file (either byte order, micro- or nanosecond
/// timestamps), captured bytes only.
pub fn read_pcap(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    let data = std::fs::read(path)?;
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{path:?}: {what}"));
    if data.len() < 24 {
        return Err(bad("shorter than a pcap header"));
    }
    let magic = [data[0], data[1], data[2], data[3]];
    let le = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => return Err(bad("not a classic pcap file (pcapng?)")),
    };
    let u32_at = |at: usize| {
        let b = [data[at], data[at + 1], data[at + 2], data[at + 3]];
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let mut at = 24;
    let mut out = Vec::new();
    while at + 16 <= data.len() {
        let caplen = u32_at(at + 8) as usize;
        let start = at + 16;
        let end = start + caplen;
        if end > data.len() {
            return Err(bad("truncated packet record"));
        }
        out.push(data[start..end].to_vec());
        at = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheme(protocol: Protocol, vlan: Vlan, size: FrameSize) -> Scheme {
        Scheme {
            sessions: 100,
            protocol,
            vlan,
            size,
            replay: Replay::All,
        }
    }

    #[test]
    fn upstream_ipoe_untagged_bytes() {
        let s = scheme(Protocol::Ipoe, Vlan::None, FrameSize::Fixed(64));
        let f = s.upstream(0, 0);
        // Built by hand from the scheme: 60 bytes, 18 bytes of zero payload.
        let expect = "02005e00010102100000000008004500002e000100004011da7b64400001cb00710127101451\
                      001a2416000000000000000000000000000000000000";
        let hex: String = f.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expect);
    }

    #[test]
    fn sizes_and_layouts() {
        use vbng_dataplane::wire::frame::L2Header;
        for protocol in [Protocol::Ipoe, Protocol::Pppoe] {
            for vlan in [Vlan::None, Vlan::Single, Vlan::Qinq] {
                let s = scheme(protocol, vlan, FrameSize::Imix);
                for k in 0..12 {
                    let up = s.upstream(4321, k);
                    let down = s.downstream(4321, k);
                    assert_eq!(up.len(), s.wire_size(k) - 4, "{protocol:?} {vlan:?} {k}");
                    assert_eq!(down.len(), s.wire_size(k) - 4);
                    let (l2, l3) = L2Header::parse(&up).unwrap();
                    let (sv, cv) = s.vlan_ids(4321);
                    assert_eq!(l2.svlan.unwrap_or(0), sv);
                    assert_eq!(l2.cvlan.unwrap_or(0), cv);
                    let ip = if protocol == Protocol::Pppoe {
                        let plen = u16::from_be_bytes([up[l3 + 4], up[l3 + 5]]) as usize;
                        assert_eq!(plen + l3 + 6, up.len());
                        l3 + 8
                    } else {
                        l3
                    };
                    assert_eq!(fold(sum16(&up[ip..ip + 20])), 0xffff, "ip checksum");
                }
            }
        }
    }

    #[test]
    fn worker_partition_and_sampling() {
        let s = Scheme {
            sessions: 10,
            protocol: Protocol::Ipoe,
            vlan: Vlan::None,
            size: FrameSize::Fixed(64),
            replay: Replay::All,
        };
        let w1: Vec<u32> = s.worker_packets(1, 3, 100).iter().map(|p| p.0).collect();
        assert_eq!(w1, [1, 4, 7]);
        let big = Scheme {
            sessions: 1_000_000,
            ..s
        };
        let sample = big.worker_packets(1, 2, 1000);
        assert_eq!(sample.len(), 1000);
        assert!(sample.iter().all(|(i, _)| i % 2 == 1 && *i < 1_000_000));
    }

    #[test]
    fn a_sampled_replay_has_the_limits_size_at_any_session_count() {
        let s = Scheme {
            sessions: 10,
            protocol: Protocol::Ipoe,
            vlan: Vlan::None,
            size: FrameSize::Fixed(64),
            replay: Replay::Sample,
        };
        // Worker 1 of 3 holds subscribers 1, 4 and 7: 1000 draws, from those only, each
        // of them drawn, and not in pcap order.
        let sample = s.worker_packets(1, 3, 1000);
        assert_eq!(sample.len(), 1000);
        assert!(sample.iter().all(|(i, k)| [1, 4, 7].contains(i) && *k == 0));
        for i in [1, 4, 7] {
            assert!(
                sample.iter().any(|p| p.0 == i),
                "subscriber {i} never drawn"
            );
        }
        assert!(
            sample
                .windows(3)
                .any(|w| w[0].0 >= w[1].0 || w[1].0 >= w[2].0)
        );
        assert_eq!(sample, s.worker_packets(1, 3, 1000), "fixed seed");
        // A worker without subscribers replays nothing.
        assert!(s.worker_packets(11, 12, 1000).is_empty());
    }

    #[test]
    fn lab_acl_has_100_rules_and_permits_the_scheme() {
        use vbng_dataplane::acl::{AclSet, Direction, FlowV4};
        let spec = lab_acl();
        assert_eq!(spec.ingress.len(), LAB_ACL_RULES);
        let set = AclSet::build(None, &[spec], None).unwrap();
        let id = set.id(LAB_ACL_NAME).unwrap();
        for i in (0..2_000_000u32).step_by(997) {
            let up = FlowV4 {
                src: Scheme::subscriber_ipv4(i).to_bits(),
                dst: Scheme::server_ipv4(i).to_bits(),
                protocol: UDP,
                src_port: Scheme::client_port(i),
                dst_port: SERVER_PORT,
            };
            let down = FlowV4 {
                src: up.dst,
                dst: up.src,
                protocol: UDP,
                src_port: SERVER_PORT,
                dst_port: up.src_port,
            };
            let a = set.evaluate_v4(id, Direction::Ingress, &up).unwrap().0;
            let b = set.evaluate_v4(id, Direction::Egress, &down).unwrap().0;
            assert_eq!(
                (a, b),
                (AclAction::Permit, AclAction::Permit),
                "subscriber {i}"
            );
        }
    }

    /// Writes the scheme with trex-profiles' `to_pcap` and compares every frame.
    fn compare_with_trex_profiles(s: Scheme, up: bool, builder: &str) -> Result<(), String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../trex-profiles");
        let out = std::env::temp_dir().join(format!(
            "vbng-perf-trex-{}-{}-{}-{}-{}-{}.pcap",
            std::process::id(),
            s.protocol.name(),
            s.vlan.name(),
            s.size.name(),
            if up { "up" } else { "down" },
            builder
        ));
        let run = std::process::Command::new("/usr/bin/python3")
            .current_dir(&dir)
            .args([
                "-m",
                "trex_profiles.to_pcap",
                "--quiet",
                "--builder",
                builder,
            ])
            .args(["--sessions", &s.sessions.to_string()])
            .args(["--protocol", s.protocol.name(), "--vlan", s.vlan.name()])
            .args(["--size", &s.size.name()])
            .args(["--direction", if up { "up" } else { "down" }])
            .arg("--out")
            .arg(&out)
            .output()
            .map_err(|e| format!("cannot run /usr/bin/python3: {e}"))?;
        if !run.status.success() {
            return Err(format!(
                "to_pcap failed: {}",
                String::from_utf8_lossy(&run.stderr)
            ));
        }
        let theirs = read_pcap(&out).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(&out);
        let ours: Vec<Vec<u8>> = s
            .worker_packets(0, 1, usize::MAX)
            .iter()
            .map(|&(i, k)| {
                if up {
                    s.upstream(i, k)
                } else {
                    s.downstream(i, k)
                }
            })
            .collect();
        if theirs.len() != ours.len() {
            return Err(format!(
                "{} frames from to_pcap, {} here",
                theirs.len(),
                ours.len()
            ));
        }
        for (n, (a, b)) in theirs.iter().zip(&ours).enumerate() {
            if a != b {
                let hex = |v: &[u8]| v.iter().map(|b| format!("{b:02x}")).collect::<String>();
                return Err(format!(
                    "frame {n} differs:\n  to_pcap {}\n  here    {}",
                    hex(a),
                    hex(b)
                ));
            }
        }
        Ok(())
    }

    /// Why the comparison cannot run here, if it cannot.
    fn trex_profiles_missing() -> Option<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../trex-profiles");
        if !dir.join("trex_profiles/to_pcap.py").exists() {
            return Some(format!("{} has no trex_profiles/to_pcap.py", dir.display()));
        }
        let scapy = std::process::Command::new("/usr/bin/python3")
            .args(["-c", "import scapy.all"])
            .output();
        match scapy {
            Ok(o) if o.status.success() => None,
            Ok(_) => Some("/usr/bin/python3 cannot import scapy".into()),
            Err(e) => Some(format!("cannot run /usr/bin/python3: {e}")),
        }
    }

    #[test]
    fn same_bytes_as_trex_profiles() {
        if let Some(why) = trex_profiles_missing() {
            eprintln!("SKIPPED: {why}");
            return;
        }
        // Every layout against the scapy reference (IMIX covers the 64-byte frames too:
        // 7 of its 12), plus 64-byte frames and 4100 sessions (VLAN ids wrap at 4000)
        // against the fast builder.
        let mut jobs = Vec::new();
        for protocol in [Protocol::Ipoe, Protocol::Pppoe] {
            for vlan in [Vlan::None, Vlan::Single, Vlan::Qinq] {
                for up in [true, false] {
                    let s = Scheme {
                        sessions: 30,
                        protocol,
                        vlan,
                        size: FrameSize::Imix,
                        replay: Replay::All,
                    };
                    jobs.push((s, up, "scapy"));
                }
                let s = Scheme {
                    sessions: 4100,
                    protocol,
                    vlan,
                    size: FrameSize::Fixed(64),
                    replay: Replay::All,
                };
                jobs.push((s, true, "fast"));
            }
        }
        let failures: Vec<String> = std::thread::scope(|sc| {
            let handles: Vec<_> = jobs
                .chunks(jobs.len().div_ceil(2))
                .map(|chunk| {
                    sc.spawn(move || {
                        chunk
                            .iter()
                            .filter_map(|&(s, up, b)| {
                                compare_with_trex_profiles(s, up, b).err().map(|e| {
                                    format!(
                                        "{:?} {:?} {} up={up} {b}: {e}",
                                        s.protocol,
                                        s.vlan,
                                        s.size.name()
                                    )
                                })
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn pcap_round_trip() {
        let s = scheme(Protocol::Pppoe, Vlan::Qinq, FrameSize::Fixed(64));
        let frames: Vec<Vec<u8>> = (0..5).map(|i| s.upstream(i, 0)).collect();
        let path =
            std::env::temp_dir().join(format!("vbng-perf-scheme-{}.pcap", std::process::id()));
        write_pcap(&path, frames.iter().map(Vec::as_slice)).unwrap();
        let back = read_pcap(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(back, frames);
    }
}
