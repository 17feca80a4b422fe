//! The GTP-U control-packet redirect (TS 29.244 section 5.3, TR-459 CPR).
//!
//! User planes send the control frames of subscribers (ARP, DHCP, IPv6
//! Router and Neighbor Solicitations, DHCPv6) to the
//! control plane as GTP-U G-PDUs whose TEID is the access port index and
//! whose payload is the complete Ethernet frame as received (VLAN tags
//! included). Replies go back the same way to the datagram's source.
//!
//! A DHCPACK that binds (or renews) a lease is not sent by the redirect
//! task: it travels with the lease event to the session task, which sends
//! it only after the user plane accepted the subscriber's PFCP session (at
//! once if the session is already programmed), and never if the user plane
//! refused or did not answer. OFFERs, NAKs and ARP replies go out at once.
//!
//! - [`handler`]: [`Redirector`], the sans-IO frame handler (ARP responder
//!   for pool gateways, DHCP glue to [`vbng_access::dhcpv4::DhcpServer`]).
//! - [`ipv6`]: [`ipv6::Ipoe6`], IPv6 for IPoE subscribers (router
//!   advertisements, neighbour advertisements, DHCPv6 through the shared
//!   server).
//! - [`ratelimit`]: [`MacLimiter`], per-client-MAC token buckets.
//! - [`socket`]: the tokio task around the UDP socket, which pairs each
//!   lease-binding ACK with its event ([`crate::session::LeaseUpdate`]).

pub mod handler;
pub mod ipv6;
pub mod ratelimit;
pub mod socket;

use std::sync::{Arc, Mutex};

use vbng_access::dhcpv4::DhcpServer;

pub use handler::{Redirector, RedirectorConfig};
pub use ratelimit::MacLimiter;
pub use socket::run_redirect;

/// The DHCP server shared by the redirect task (handle) and the session
/// task (poll, administrative release). Critical sections never await.
pub type SharedDhcp = Arc<Mutex<DhcpServer>>;

/// Why a redirected datagram was dropped (metric label `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Not a valid GTP-U message.
    GtpuMalformed,
    /// A GTP-U message other than a G-PDU.
    GtpuNotGpdu,
    /// TEID larger than the largest access port index.
    BadPort,
    /// The datagram does not come from a configured user plane.
    UnknownPeer,
    /// The inner Ethernet frame (or its VLAN tags) is malformed.
    L2Malformed,
    /// An EtherType the control plane does not serve.
    UnsupportedEthertype,
    /// A malformed ARP packet.
    ArpMalformed,
    /// An ARP packet that is not a request for a pool gateway.
    ArpNotForGateway,
    /// A malformed IPv4 header or a bad header checksum.
    Ipv4Malformed,
    /// IPv4 that is not UDP to port 67.
    NotDhcp,
    /// A malformed UDP header or a bad UDP checksum.
    UdpMalformed,
    /// The UDP payload does not decode as DHCPv4.
    DhcpMalformed,
    /// The DHCP server answered nothing (see `vbng_cp_dhcp_errors_total`).
    DhcpNoReply,
    /// The client MAC exceeded its rate.
    RateLimited,
    /// Not dropped: a PPPoE frame handed to the PPPoE task (see
    /// [`Redirector::take_pppoe`]).
    HandedToPppoe,
    /// A malformed IPv6 packet.
    Ipv6Malformed,
    /// IPv6 from a subscriber without an IPoE session (or with IPv6 off).
    Ipv6NoSession,
    /// IPv6 from a subscriber whose pool (and AAA profile) has no IPv6, or
    /// whose pool is exhausted.
    Ipv6NotServed,
    /// IPv6 we do not answer (not a solicitation for us, not DHCPv6).
    Ipv6Unanswered,
}

impl DropReason {
    /// Snake-case metric label.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::GtpuMalformed => "gtpu_malformed",
            DropReason::GtpuNotGpdu => "gtpu_not_gpdu",
            DropReason::BadPort => "bad_port",
            DropReason::UnknownPeer => "unknown_peer",
            DropReason::L2Malformed => "l2_malformed",
            DropReason::UnsupportedEthertype => "unsupported_ethertype",
            DropReason::ArpMalformed => "arp_malformed",
            DropReason::ArpNotForGateway => "arp_not_for_gateway",
            DropReason::Ipv4Malformed => "ipv4_malformed",
            DropReason::NotDhcp => "not_dhcp",
            DropReason::UdpMalformed => "udp_malformed",
            DropReason::DhcpMalformed => "dhcp_malformed",
            DropReason::DhcpNoReply => "dhcp_no_reply",
            DropReason::RateLimited => "rate_limited",
            DropReason::HandedToPppoe => "handed_to_pppoe",
            DropReason::Ipv6Malformed => "ipv6_malformed",
            DropReason::Ipv6NoSession => "ipv6_no_session",
            DropReason::Ipv6NotServed => "ipv6_not_served",
            DropReason::Ipv6Unanswered => "ipv6_unanswered",
        }
    }
}
