//! Packet Detection Information: the PDI grouped IE and the IEs it carries
//! (Source Interface, Network Instance, UE IP Address, Ethernet Packet Filter
//! with MAC address / C-TAG / S-TAG, Framed-IPv6-Route, and the BBF Logical
//! Port, PPPoE Session ID and PPP Protocol), plus small
//! helpers shared with the other rule IEs.

use alloc::string::String;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr};

use super::bbf;
use super::ids;
use super::tlv::{Ctx, Cursor, IeIter, Writer, required};
use crate::pfcp::Error;

/// Interface value of Source Interface (8.2.2) and Destination Interface (8.2.24):
/// one octet, the low 4 bits carry the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Interface {
    /// 0: the access side (subscribers).
    #[default]
    Access,
    /// 1: the core side (Internet).
    Core,
    /// 2: SGi-LAN / N6-LAN.
    SgiLan,
    /// 3: the CP function (control packets sent to or from the control plane).
    CpFunction,
    /// Any other value (0..=15).
    Unknown(u8),
}

/// Source Interface IE value (8.2.2).
pub type SourceInterface = Interface;
/// Destination Interface IE value (8.2.24).
pub type DestinationInterface = Interface;

impl From<u8> for Interface {
    fn from(v: u8) -> Self {
        match v {
            0 => Self::Access,
            1 => Self::Core,
            2 => Self::SgiLan,
            3 => Self::CpFunction,
            n => Self::Unknown(n),
        }
    }
}

impl From<Interface> for u8 {
    fn from(i: Interface) -> u8 {
        match i {
            Interface::Access => 0,
            Interface::Core => 1,
            Interface::SgiLan => 2,
            Interface::CpFunction => 3,
            Interface::Unknown(n) => n,
        }
    }
}

impl Interface {
    pub(crate) fn emit(self, w: &mut Writer, ie: u16) {
        w.ie(ie, |w| w.u8(u8::from(self) & 0x0f));
    }

    pub(crate) fn parse(data: &[u8], ie: u16) -> Result<Self, Error> {
        Ok(Self::from(Cursor::new(ie, data).u8()? & 0x0f))
    }
}

pub(crate) fn emit_u16(w: &mut Writer, ie: u16, v: u16) {
    w.ie(ie, |w| w.u16(v));
}

pub(crate) fn emit_u32(w: &mut Writer, ie: u16, v: u32) {
    w.ie(ie, |w| w.u32(v));
}

pub(crate) fn parse_u16(data: &[u8], ie: u16) -> Result<u16, Error> {
    Cursor::new(ie, data).u16()
}

pub(crate) fn parse_u32(data: &[u8], ie: u16) -> Result<u32, Error> {
    Cursor::new(ie, data).u32()
}

pub(crate) fn emit_network_instance(w: &mut Writer, ni: &str) {
    w.ie(ids::NETWORK_INSTANCE, |w| w.bytes(ni.as_bytes()));
}

pub(crate) fn parse_network_instance(data: &[u8]) -> Result<String, Error> {
    core::str::from_utf8(data)
        .map(String::from)
        .map_err(|_| Error::InvalidIe {
            ie: ids::NETWORK_INSTANCE,
            reason: "network instance is not UTF-8",
        })
}

/// UE IP Address (8.2.62).
///
/// ```text
///   Octet 5  Spare | IP6PL | CHV6 | CHV4 | IPv6D | S/D | V4 | V6
///   then     IPv4 address (4, if V4), IPv6 address (16, if V6),
///            IPv6 Prefix Delegation Bits (1, if IPv6D; skipped on parse),
///            IPv6 Prefix Length (1, if IP6PL); further fields ignored
/// ```
///
/// Without IP6PL the IPv6 address stands for a /64 (TS 29.244 8.2.62:
/// "otherwise the UP function shall consider IPv6 prefix is default /64").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct UeIpAddress {
    /// Subscriber IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// Subscriber IPv6 address or prefix.
    pub ipv6: Option<Ipv6Addr>,
    /// S/D bit: false = source address (uplink PDI), true = destination (downlink).
    pub is_destination: bool,
    /// IPv6 Prefix Length (the IP6PL flag and its octet), 0..=128: the
    /// length of the prefix `ipv6` stands for.
    pub ipv6_prefix_len: Option<u8>,
}

impl UeIpAddress {
    /// V6 flag.
    const V6: u8 = 0x01;
    /// V4 flag.
    const V4: u8 = 0x02;
    /// S/D flag.
    const SD: u8 = 0x04;
    /// IPv6D flag: an IPv6 Prefix Delegation Bits octet follows the addresses.
    const IPV6D: u8 = 0x08;
    /// IP6PL flag: an IPv6 Prefix Length octet ends the IE.
    const IP6PL: u8 = 0x40;

    /// Writes the IE (never with IPv6D).
    pub fn emit(&self, w: &mut Writer) {
        w.ie(ids::UE_IP_ADDRESS, |w| {
            let flag = |set: bool, f: u8| if set { f } else { 0 };
            w.u8(flag(self.ipv6_prefix_len.is_some(), Self::IP6PL)
                | flag(self.is_destination, Self::SD)
                | flag(self.ipv4.is_some(), Self::V4)
                | flag(self.ipv6.is_some(), Self::V6));
            if let Some(a) = self.ipv4 {
                w.bytes(&a.octets());
            }
            if let Some(a) = self.ipv6 {
                w.bytes(&a.octets());
            }
            if let Some(len) = self.ipv6_prefix_len {
                w.u8(len);
            }
        });
    }

    /// Parses the IE body. A truncated body or a prefix length over 128 is
    /// an error.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut c = Cursor::new(ids::UE_IP_ADDRESS, data);
        let flags = c.u8()?;
        let ipv4 = if flags & Self::V4 != 0 {
            Some(c.ipv4()?)
        } else {
            None
        };
        let ipv6 = if flags & Self::V6 != 0 {
            Some(c.ipv6()?)
        } else {
            None
        };
        if flags & Self::IPV6D != 0 {
            // IPv6 Prefix Delegation Bits: not modelled, but it sits before
            // the prefix length.
            c.u8()?;
        }
        let ipv6_prefix_len = if flags & Self::IP6PL != 0 {
            let len = c.u8()?;
            if len > 128 {
                return Err(c.invalid("IPv6 prefix length over 128"));
            }
            Some(len)
        } else {
            None
        };
        Ok(Self {
            ipv4,
            ipv6,
            is_destination: flags & Self::SD != 0,
            ipv6_prefix_len,
        })
    }
}

/// Framed-IPv6-Route (8.2.111, IE type 155): a route to the subscriber,
/// vbng's delegated prefix. The IE value is the text of the RADIUS
/// Framed-IPv6-Route attribute (RFC 3162 section 2.5): "prefix/len",
/// optionally followed by space-separated gateway and metrics, which vbng
/// neither sends nor keeps.
///
/// ```text
///   Octets 5 to (n+4)  Framed-IPv6-Route, e.g. "2001:db8:200::/56"
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FramedIpv6Route {
    /// The routed prefix, host bits clear.
    pub prefix: Ipv6Addr,
    /// Its length, 0..=128.
    pub len: u8,
}

impl FramedIpv6Route {
    /// The route to `prefix`/`len`, host bits cleared; `None` if `len` is
    /// over 128.
    pub fn new(prefix: Ipv6Addr, len: u8) -> Option<Self> {
        (len <= 128).then(|| Self {
            prefix: mask_ipv6(prefix, len),
            len,
        })
    }

    /// Writes the IE: "prefix/len" (host bits cleared), its [`Display`](core::fmt::Display).
    pub fn emit(&self, w: &mut Writer) {
        use core::fmt::Write as _;
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = write!(text, "{self}");
        w.ie(ids::FRAMED_IPV6_ROUTE, |w| w.bytes(text.as_bytes()));
    }

    /// Parses the IE body: its first whitespace-separated word must be
    /// "prefix/len" (len 0..=128); host bits are cleared. Gateway and
    /// metrics after it are ignored.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let invalid = |reason| Error::InvalidIe {
            ie: ids::FRAMED_IPV6_ROUTE,
            reason,
        };
        let text =
            core::str::from_utf8(data).map_err(|_| invalid("Framed-IPv6-Route is not UTF-8"))?;
        let word = text
            .split_ascii_whitespace()
            .next()
            .ok_or(invalid("Framed-IPv6-Route is empty"))?;
        let (addr, len) = word
            .split_once('/')
            .ok_or(invalid("Framed-IPv6-Route has no /prefix-length"))?;
        let prefix: Ipv6Addr = addr
            .parse()
            .map_err(|_| invalid("Framed-IPv6-Route prefix is not an IPv6 address"))?;
        let len = if (1..=3).contains(&len.len()) && len.bytes().all(|b| b.is_ascii_digit()) {
            len.parse::<u8>().ok()
        } else {
            None
        };
        len.and_then(|len| Self::new(prefix, len))
            .ok_or(invalid("Framed-IPv6-Route prefix length is not 0..=128"))
    }
}

/// "prefix/len", host bits cleared (a length over 128 is shown as 128).
impl core::fmt::Display for FramedIpv6Route {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let len = self.len.min(128);
        write!(f, "{}/{}", mask_ipv6(self.prefix, len), len)
    }
}

/// `a` with all but its first `len` bits cleared (`len` <= 128).
pub(crate) fn mask_ipv6(a: Ipv6Addr, len: u8) -> Ipv6Addr {
    let bits = u128::from(a);
    Ipv6Addr::from(match len {
        0 => 0,
        l if l >= 128 => bits,
        l => bits & !(u128::MAX >> l),
    })
}

/// MAC address IE (8.2.93).
///
/// ```text
///   Octet 5  Spare | UDES | USOU | DEST | SOUR
///   then     source MAC (6, if SOUR), destination MAC (6, if DEST),
///            upper source / upper destination (ignored)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddress {
    /// Source MAC address (the subscriber's MAC in an uplink PDI).
    pub source: Option<[u8; 6]>,
    /// Destination MAC address.
    pub destination: Option<[u8; 6]>,
}

impl MacAddress {
    /// A MAC address IE matching source MAC `mac`.
    pub fn source(mac: [u8; 6]) -> Self {
        Self {
            source: Some(mac),
            destination: None,
        }
    }

    /// Writes the IE.
    pub fn emit(&self, w: &mut Writer) {
        w.ie(ids::MAC_ADDRESS, |w| {
            w.u8(u8::from(self.destination.is_some()) << 1 | u8::from(self.source.is_some()));
            if let Some(m) = self.source {
                w.bytes(&m);
            }
            if let Some(m) = self.destination {
                w.bytes(&m);
            }
        });
    }

    /// Parses the IE body.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut c = Cursor::new(ids::MAC_ADDRESS, data);
        let flags = c.u8()?;
        let source = if flags & 0x01 != 0 {
            Some(c.array()?)
        } else {
            None
        };
        let destination = if flags & 0x02 != 0 {
            Some(c.array()?)
        } else {
            None
        };
        Ok(Self {
            source,
            destination,
        })
    }
}

/// C-TAG (8.2.94) / S-TAG (8.2.95), VID only.
///
/// ```text
///   Octet 5  Spare | VID | DEI | PCP        (flags: which values are valid)
///   Octet 6  VID bits 12-9 | DEI | PCP value
///   Octet 7  VID bits 8-1
/// ```
pub(crate) fn emit_vlan_tag(w: &mut Writer, ie: u16, vid: u16) {
    w.ie(ie, |w| {
        w.u8(0x04);
        w.u8(((vid >> 8) as u8 & 0x0f) << 4);
        w.u8(vid as u8);
    });
}

pub(crate) fn parse_vlan_tag(data: &[u8], ie: u16) -> Result<Option<u16>, Error> {
    let mut c = Cursor::new(ie, data);
    let flags = c.u8()?;
    let hi = c.u8()?;
    let lo = c.u8()?;
    Ok((flags & 0x04 != 0).then_some(u16::from(hi >> 4) << 8 | u16::from(lo)))
}

/// Ethernet Packet Filter (grouped, Table 7.5.2.2-3): matches the access-side
/// L2 header of a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EthernetPacketFilter {
    /// Ethernet Filter ID (8.2.98).
    pub filter_id: Option<u32>,
    /// MAC address to match (vbng: the subscriber's source MAC).
    pub mac_address: Option<MacAddress>,
    /// Inner (customer) VLAN ID, 0..=4095.
    pub c_tag: Option<u16>,
    /// Outer (service) VLAN ID, 0..=4095.
    pub s_tag: Option<u16>,
}

impl EthernetPacketFilter {
    /// Writes the grouped IE.
    pub fn emit(&self, w: &mut Writer) {
        w.ie(ids::ETHERNET_PACKET_FILTER, |w| {
            if let Some(id) = self.filter_id {
                emit_u32(w, ids::ETHERNET_FILTER_ID, id);
            }
            if let Some(m) = &self.mac_address {
                m.emit(w);
            }
            if let Some(v) = self.c_tag {
                emit_vlan_tag(w, ids::C_TAG, v);
            }
            if let Some(v) = self.s_tag {
                emit_vlan_tag(w, ids::S_TAG, v);
            }
        });
    }

    pub(crate) fn parse(data: &[u8], ctx: &mut Ctx) -> Result<Self, Error> {
        let mut f = Self::default();
        for ie in IeIter::new(data) {
            let ie = ie?;
            match (ie.enterprise_id, ie.ie_type) {
                (None, ids::ETHERNET_FILTER_ID) => {
                    f.filter_id = Some(parse_u32(ie.data, ids::ETHERNET_FILTER_ID)?);
                }
                (None, ids::MAC_ADDRESS) => f.mac_address = Some(MacAddress::parse(ie.data)?),
                (None, ids::C_TAG) => f.c_tag = parse_vlan_tag(ie.data, ids::C_TAG)?,
                (None, ids::S_TAG) => f.s_tag = parse_vlan_tag(ie.data, ids::S_TAG)?,
                _ => ctx.skipped += 1,
            }
        }
        Ok(f)
    }
}

/// PDI, Packet Detection Information (grouped, Table 7.5.2.2-2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Pdi {
    /// Where the packets come from (mandatory).
    pub source_interface: SourceInterface,
    /// Network instance (VRF / APN) name.
    pub network_instance: Option<String>,
    /// Subscriber address to match.
    pub ue_ip_address: Option<UeIpAddress>,
    /// Access-side L2 match.
    pub ethernet_packet_filter: Option<EthernetPacketFilter>,
    /// BBF TR-459 Logical Port (vendor IE 32769, enterprise 3561): vbng carries
    /// the access port index as ASCII decimal, e.g. `b"0"`.
    pub logical_port: Option<Vec<u8>>,
    /// BBF TR-459 PPPoE Session ID (vendor IE 32772): the PPPoE session the
    /// packets belong to.
    pub pppoe_session_id: Option<u16>,
    /// BBF TR-459 PPP Protocol (vendor IE 32773): which PPP packets match.
    pub ppp_protocol: Option<bbf::PppProtocol>,
    /// Framed-IPv6-Route IEs (type 155), in order: routes to the subscriber
    /// (vbng: its delegated prefix).
    pub framed_ipv6_routes: Vec<FramedIpv6Route>,
}

impl Pdi {
    /// Writes the grouped IE.
    pub fn emit(&self, w: &mut Writer) {
        w.ie(ids::PDI, |w| {
            self.source_interface.emit(w, ids::SOURCE_INTERFACE);
            if let Some(ni) = &self.network_instance {
                emit_network_instance(w, ni);
            }
            if let Some(ue) = &self.ue_ip_address {
                ue.emit(w);
            }
            if let Some(f) = &self.ethernet_packet_filter {
                f.emit(w);
            }
            if let Some(lp) = &self.logical_port {
                bbf::emit_logical_port(w, lp);
            }
            if let Some(id) = self.pppoe_session_id {
                bbf::emit_pppoe_session_id(w, id);
            }
            if let Some(p) = &self.ppp_protocol {
                p.emit(w);
            }
            for r in &self.framed_ipv6_routes {
                r.emit(w);
            }
        });
    }

    pub(crate) fn parse(data: &[u8], ctx: &mut Ctx) -> Result<Self, Error> {
        let mut source_interface = None;
        let mut pdi = Self::default();
        for ie in IeIter::new(data) {
            let ie = ie?;
            match (ie.enterprise_id, ie.ie_type) {
                (None, ids::SOURCE_INTERFACE) => {
                    source_interface = Some(Interface::parse(ie.data, ids::SOURCE_INTERFACE)?);
                }
                (None, ids::NETWORK_INSTANCE) => {
                    pdi.network_instance = Some(parse_network_instance(ie.data)?);
                }
                (None, ids::UE_IP_ADDRESS) => {
                    pdi.ue_ip_address = Some(UeIpAddress::parse(ie.data)?)
                }
                (None, ids::ETHERNET_PACKET_FILTER) => {
                    pdi.ethernet_packet_filter = Some(EthernetPacketFilter::parse(ie.data, ctx)?);
                }
                (None, ids::FRAMED_IPV6_ROUTE) => {
                    pdi.framed_ipv6_routes
                        .push(FramedIpv6Route::parse(ie.data)?);
                }
                (Some(bbf::BBF_ENTERPRISE_ID), ids::bbf::LOGICAL_PORT) => {
                    pdi.logical_port = Some(ie.data.to_vec());
                }
                (Some(bbf::BBF_ENTERPRISE_ID), ids::bbf::PPPOE_SESSION_ID) => {
                    pdi.pppoe_session_id = Some(bbf::parse_pppoe_session_id(ie.data)?);
                }
                (Some(bbf::BBF_ENTERPRISE_ID), ids::bbf::PPP_PROTOCOL) => {
                    pdi.ppp_protocol = Some(bbf::PppProtocol::parse(ie.data)?);
                }
                _ => ctx.skipped += 1,
            }
        }
        pdi.source_interface = required(
            source_interface,
            ids::SOURCE_INTERFACE,
            "Source Interface",
            "PDI",
        )?;
        Ok(pdi)
    }
}
