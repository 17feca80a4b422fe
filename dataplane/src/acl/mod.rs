//! Access control lists: named rule lists ([`AclSpec`]) compiled into a classifier whose cost
//! per packet stays nearly flat as lists grow to a thousand rules ([`classifier`]), and the
//! set of compiled lists a pipeline holds ([`AclSet`]).
//!
//! A packet passes an ACL when the first rule that matches it permits it, or, when no rule
//! matches, when the list's `default_action` is permit. A session's packets are checked
//! against the global ACL (if the set names one) and then against the session's own ACL
//! (if any): both must permit. Upstream (subscriber -> core) packets are checked against
//! the ACL's `ingress` rules, downstream packets against its `egress` rules.
//!
//! Packets without ports (ICMP, other protocols, non-first fragments) are classified with
//! source and destination port 0; the configuration requires a rule with a port range to
//! name TCP, UDP or SCTP, so such packets never match a port rule by accident.

#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr};

pub mod classifier;
mod set;

pub use set::{AclError, AclSet, CounterLabel};

/// Identifies a compiled ACL inside an [`AclSet`]; stable across [`AclSet::build`] with a
/// `previous` set for names that stay. 0 = no ACL.
pub type AclId = u16;

/// No ACL.
pub const NO_ACL: AclId = 0;

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AclAction {
    /// Forward the packet.
    #[default]
    Permit,
    /// Drop it (counted as `DropReason::AclDenied`).
    Deny,
}

/// Which rule list of an ACL applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the subscriber (upstream, access -> core): the `ingress` rules.
    Ingress,
    /// To the subscriber (downstream, core -> access): the `egress` rules.
    Egress,
}

/// An address prefix of either family. Host bits beyond `len` are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpPrefix {
    /// IPv4 prefix, `len` 0..=32.
    V4 {
        /// Network address.
        addr: Ipv4Addr,
        /// Prefix length.
        len: u8,
    },
    /// IPv6 prefix, `len` 0..=128.
    V6 {
        /// Network address.
        addr: Ipv6Addr,
        /// Prefix length.
        len: u8,
    },
}

/// An inclusive range of TCP/UDP ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First port in the range.
    pub first: u16,
    /// Last port in the range (>= `first`).
    pub last: u16,
}

impl PortRange {
    /// Every port, 0..=65535.
    pub const ANY: PortRange = PortRange {
        first: 0,
        last: u16::MAX,
    };

    /// The single port `p`.
    pub const fn single(p: u16) -> PortRange {
        PortRange { first: p, last: p }
    }

    /// True if `p` lies in the range.
    #[inline]
    pub const fn contains(&self, p: u16) -> bool {
        self.first <= p && p <= self.last
    }
}

impl Default for PortRange {
    fn default() -> Self {
        PortRange::ANY
    }
}

/// One rule. A field left open (`None`, [`PortRange::ANY`]) matches everything. A rule whose
/// prefixes are IPv4 matches only IPv4 packets, IPv6 prefixes only IPv6 packets, and a rule
/// without prefixes both families. Prefixes of different families in one rule are invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AclRule {
    /// Permit or deny.
    pub action: AclAction,
    /// Source prefix.
    pub src: Option<IpPrefix>,
    /// Destination prefix.
    pub dst: Option<IpPrefix>,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...).
    pub protocol: Option<u8>,
    /// Source ports.
    pub src_ports: PortRange,
    /// Destination ports.
    pub dst_ports: PortRange,
}

/// A named ACL as configured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AclSpec {
    /// Name (what Filter-Id or the PFCP Activate Predefined Rules IE refers to).
    pub name: String,
    /// Action when no rule matches.
    pub default_action: AclAction,
    /// Rules for packets from the subscriber, first match wins.
    pub ingress: Vec<AclRule>,
    /// Rules for packets to the subscriber, first match wins.
    pub egress: Vec<AclRule>,
}

/// The classification key of an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlowV4 {
    /// Source address.
    pub src: u32,
    /// Destination address.
    pub dst: u32,
    /// IP protocol.
    pub protocol: u8,
    /// Source port (0 when the packet has none).
    pub src_port: u16,
    /// Destination port (0 when the packet has none).
    pub dst_port: u16,
}

/// The classification key of an IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlowV6 {
    /// Source address.
    pub src: u128,
    /// Destination address.
    pub dst: u128,
    /// Upper-layer protocol (the last Next Header).
    pub protocol: u8,
    /// Source port (0 when the packet has none).
    pub src_port: u16,
    /// Destination port (0 when the packet has none).
    pub dst_port: u16,
}
