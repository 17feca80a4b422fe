//! The burst pipeline: access -> core (upstream) and core -> access (downstream).
//!
//! Upstream, on an access port: parse L2 (untagged, 802.1Q, QinQ); ARP, PPPoE discovery
//! (0x8863), PPP control protocols in PPPoE sessions (LCP, PAP, CHAP, IPCP, IPv6CP, any
//! protocol >= 0x8000) and DHCP (UDP port 67) go to the control plane; an IPoE frame from
//! an unknown access key goes to the control plane too; redirects pass a token bucket of
//! [`PipelineConfig::redirect_pps`] (the control frames of the sessions the user plane
//! holds, PPP control of PPPoE sessions and ARP, DHCP and IPv6 control of IPoE
//! subscribers, have their own, so that a PADI or DHCP storm cannot starve their LCP
//! echoes, lease renewals or gateway ARP). PPP data in a PPPoE session (0x8864, code 0, protocol
//! 0x0021) is looked up by access key + PPPoE session id; it is dropped as
//! [`DropReason::NoSession`] if the session is unknown, and otherwise stripped of its
//! PPPoE and PPP headers and takes the IPoE path below. IPv6 (PPP 0x0057, or EtherType
//! 0x86dd for IPoE) carrying an ICMPv6 Router or Neighbor Solicitation or DHCPv6 (UDP port
//! 547) goes to the control plane (under the same redirect limits); other IPv6 is forwarded
//! as `process::ipv6` describes once [`Pipeline::set_ipv6`] turned IPv6 on, and dropped
//! otherwise. Other PPP data protocols are dropped as [`DropReason::UnsupportedPppProtocol`].
//! A known session's frame must be addressed to the gateway MAC, carry the session's IPv4
//! source (anti-spoof), pass the gate and have TTL > 1 (see ICMP errors below); it leaves on the core port with TTL
//! decremented (RFC 1624 checksum update), VLAN tags stripped, source MAC = core MAC and
//! destination = the next hop's MAC (ARP-resolved by the pipeline itself). The next hop is
//! [`PipelineConfig::next_hop`], or with static routes ([`Pipeline::set_routes`]) that of
//! the longest prefix holding the destination; a destination no route covers is answered
//! with ICMP net unreachable and counted as [`DropReason::NoRoute`].
//!
//! Downstream, on the core port: ARP requests for the core address are answered in place;
//! ARP from the next hop teaches its MAC; IPv4 to the core MAC whose destination is a
//! session address leaves on the session's access port with TTL decremented, the session's
//! VLAN tags pushed, source = gateway MAC, destination = subscriber MAC; for a PPPoE
//! session also a PPPoE session header (code 0, the session id, LENGTH = IPv4 length + 2)
//! and PPP protocol 0x0021. A packet longer than the session's MTU is dropped as
//! [`DropReason::MtuExceeded`].
//!
//! NAT44 ([`Pipeline::set_nat`], the engine in [`crate::nat`]): after the checks above, an
//! upstream packet of a session in the NAT's inside prefixes has its source translated
//! (or, addressed to another subscriber's outside mapping, is hairpinned: it takes the
//! downstream path to that subscriber); a downstream packet to the NAT's pool is translated
//! back in the classify stage, before its session lookup. A refusal is counted as
//! [`DropReason::NatRefused`].
//!
//! ICMP errors: a packet of a known session with TTL 1 or 0, in either direction, is counted
//! as [`DropReason::TtlExceeded`] and its buffer is rewritten into an ICMP time exceeded
//! (RFC 792) from the core address to the packet's source: upstream it goes back to the
//! subscriber with the session's tags (and PPPoE session), downstream out of the core port to
//! the next hop. A downstream packet over the session's MTU with DF set is answered the same
//! way with fragmentation needed carrying that MTU (RFC 1191). No error is sent about an ICMP
//! error, a non-first fragment or a broadcast or multicast packet (RFC 1812 section
//! 4.3.2.7), toward an unresolved next hop, or beyond a token bucket
//! ([`Pipeline::set_icmp_error_rate`], Linux's 1000 per second and bursts of 50 by default);
//! those packets are only dropped.
//!
//! ACLs ([`crate::acl`]): a known session's IPv4 packet, after the anti-spoof and gate
//! checks, is classified against the global ACL and then the session's ACL (its ingress
//! rules upstream, egress rules downstream); a deny from either drops it as
//! [`DropReason::AclDenied`], before policing or shaping spends tokens on it. Without a
//! global ACL and a session ACL this costs one branch.
//!
//! MSS clamping: a session with `mss_clamp` set has the MSS option of its TCP SYNs
//! (upstream) and SYN/ACKs (downstream) lowered to that value, with the TCP checksum
//! updated incrementally (RFC 1624).
//!
//! QoS (a pipeline built with [`Pipeline::with_qos`]; see the `qos` module): a downstream
//! frame of a session with a downlink rate is rewritten as above, then passes the
//! per-subscriber shaper (class from its DSCP): if the subscriber has nothing queued and its
//! token bucket holds the frame's bytes, it leaves at once ([`Verdict::Forward`], counted
//! conformed); otherwise it is queued with verdict [`Verdict::Queued`] and sent later by
//! [`Pipeline::drain_shaped`] at the session's rate. An upstream frame of a session
//! with an uplink rate passes an srTCM policer (colour-blind); red is dropped as
//! [`DropReason::Policed`]. Sessions without a rate take exactly the path described above.
//!
//! A burst is processed in stages: parse and hash all, asking for each key's index bucket;
//! probe all, asking for each session entry; then act. The cache misses of one burst's
//! lookups overlap in the memory system. No allocation, no panics.

#![forbid(unsafe_code)]

use alloc::vec::Vec;
use core::net::Ipv4Addr;

use crate::packet::{MAX_PORTS, PortId};
use crate::session::{SessionEntry, SessionId};
use crate::wire::EthernetAddress;

mod process;
mod qos;
mod ratelimit;
#[cfg(test)]
mod tests;

pub use process::Pipeline;
pub use process::ipv6::StaticRoute6;
pub use qos::{POLICER_BURST_MS, SessionQosStats};
pub use ratelimit::TokenBucket;
pub use vbng_qos::scheduler::SchedulerConfig;

/// Frames processed per stage batch; `process_burst` takes any number and works in chunks.
pub const BURST: usize = 32;

/// Static configuration of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineConfig {
    /// Ports facing subscribers (ids below [`MAX_PORTS`]; others are ignored).
    pub access_ports: Vec<PortId>,
    /// Port facing the core / Internet.
    pub core_port: PortId,
    /// MAC address of the core port (source of upstream frames, ARP replies).
    pub core_mac: EthernetAddress,
    /// IPv4 address of the UP on the core side (answered in ARP), lab default 198.51.100.2.
    pub core_ipv4: Ipv4Addr,
    /// Prefix length of the core subnet, lab default 24. Informational: upstream packets go
    /// to a next hop (the default one or a static route's), on-link core destinations
    /// included.
    pub core_prefix_len: u8,
    /// Next hop of the default route, lab default 198.51.100.1 (every upstream packet's
    /// unless [`Pipeline::set_routes`] added routes); 0.0.0.0 for none.
    pub next_hop: Ipv4Addr,
    /// Virtual gateway MAC on the access side, lab default 02:00:5e:00:01:01.
    pub gateway_mac: EthernetAddress,
    /// Token bucket rate (frames per second, burst of the same size) for frames sent to the
    /// control plane. 0 disables redirects entirely. The control frames of the sessions
    /// the user plane holds (PPP control and IPv6 set-up of PPPoE sessions; ARP, DHCP and
    /// IPv6 control of IPoE subscribers, by their access key) have a second bucket of the
    /// same rate, so a storm of new subscribers cannot starve established sessions' LCP
    /// echoes, lease renewals or gateway ARP.
    pub redirect_pps: u32,
    /// Interval between next-hop ARP requests while the next hop is unresolved, in ns.
    pub arp_retry_ns: u64,
}

/// A static route on the core side: `prefix/len` through `next_hop`, a neighbour on the
/// core link ([`Pipeline::set_routes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticRoute {
    /// The prefix (host bits are ignored).
    pub prefix: Ipv4Addr,
    /// Its length, 0-32.
    pub len: u8,
    /// The next hop, on the core link.
    pub next_hop: Ipv4Addr,
}

/// What to do with a frame after [`Pipeline::process_burst`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit the (rewritten) frame on this port.
    Forward(PortId),
    /// Send the frame, unchanged, to the control plane (GTP-U, TEID = `frame.port`).
    ToControlPlane,
    /// Discard the frame; the reason is already counted in [`Counters::drops`].
    Drop(DropReason),
    /// The frame was queued in the downstream shaper and will leave through
    /// [`Pipeline::drain_shaped`]. A [`crate::packet::Frame`] slot now holds a spare, empty
    /// buffer from the shaper's pool (reused for the next receive); any other buffer was
    /// copied and still holds the bytes: free it, do not send it.
    Queued,
    /// The frame now reads as if it had arrived on this port (the core port) and belongs to
    /// another worker: an upstream packet whose source the NAT translated, addressed to an
    /// outside address that another worker's NAT holds (hairpinning across workers). Hand
    /// it to the worker owning its destination address, as received on this port. Only a
    /// pipeline whose NAT holds part of the pool (one of several workers) returns it.
    Handoff(PortId),
}

const _: () = assert!(core::mem::size_of::<Verdict>() == 2);

/// Why a frame was dropped; [`DropReason::index`] indexes [`Counters::drops`]. One byte, so
/// that a [`Verdict`] is two: the burst's verdicts are written in one stage and read in the
/// next, and a wider one (it was sixteen bytes) was copied through the stack in pieces that
/// the CPU could not forward from the stores that wrote them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Headers could not be parsed (truncated, bad IPv4 header or checksum, three tags).
    Malformed,
    /// Source IPv4 address is not the session's.
    AntiSpoof,
    /// Downstream destination is not a session address, or upstream PPP data (IPv4) on a
    /// PPPoE session the user plane does not know.
    NoSession,
    /// Not addressed to us (wrong destination MAC, unknown port, foreign ARP).
    NotForUs,
    /// The next hop's MAC is not known yet (an ARP request is pending).
    NextHopUnresolved,
    /// TTL was 0 or 1.
    TtlExceeded,
    /// The session's gate is closed.
    GateClosed,
    /// A frame for the control plane exceeded the redirect rate limit.
    RedirectRateLimited,
    /// EtherType not handled (LLDP, ..., IPv6 without [`Pipeline::set_ipv6`]).
    UnsupportedEtherType,
    /// The transmit queue was full (counted by the host loop).
    TxFull,
    /// Consumed by the pipeline itself, not an error: an ARP reply from the next hop that
    /// taught its MAC address.
    Consumed,
    /// Upstream frame above the session's uplink rate (srTCM colour red).
    Policed,
    /// Downstream frame of a shaped session whose class queue (or the shaper's frame pool)
    /// was full.
    QosQueueFull,
    /// PPPoE session frame with a PPP data protocol the user plane does not forward (IPv6
    /// 0x0057 without [`Pipeline::set_ipv6`], any data protocol but IPv4 and IPv6).
    UnsupportedPppProtocol,
    /// Downstream IPv4 packet longer than the session's MTU.
    MtuExceeded,
    /// Denied by the global ACL or the session's ACL.
    AclDenied,
    /// Upstream destination covered by no route ([`Pipeline::set_routes`] without a
    /// default route).
    NoRoute,
    /// Refused by the NAT (no mapping for an inbound packet, ports or addresses exhausted,
    /// a protocol it does not translate; the engine counts the cause).
    NatRefused,
}

impl DropReason {
    /// Number of reasons (length of [`Counters::drops`]).
    pub const COUNT: usize = 18;
    /// Every reason, in index order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Malformed,
        DropReason::AntiSpoof,
        DropReason::NoSession,
        DropReason::NotForUs,
        DropReason::NextHopUnresolved,
        DropReason::TtlExceeded,
        DropReason::GateClosed,
        DropReason::RedirectRateLimited,
        DropReason::UnsupportedEtherType,
        DropReason::TxFull,
        DropReason::Consumed,
        DropReason::Policed,
        DropReason::QosQueueFull,
        DropReason::UnsupportedPppProtocol,
        DropReason::MtuExceeded,
        DropReason::AclDenied,
        DropReason::NoRoute,
        DropReason::NatRefused,
    ];

    /// snake_case label for metrics (`reason="anti_spoof"`).
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::AntiSpoof => "anti_spoof",
            DropReason::NoSession => "no_session",
            DropReason::NotForUs => "not_for_us",
            DropReason::NextHopUnresolved => "next_hop_unresolved",
            DropReason::TtlExceeded => "ttl_exceeded",
            DropReason::GateClosed => "gate_closed",
            DropReason::RedirectRateLimited => "redirect_rate_limited",
            DropReason::UnsupportedEtherType => "unsupported_ether_type",
            DropReason::TxFull => "tx_full",
            DropReason::Consumed => "consumed",
            DropReason::Policed => "policed",
            DropReason::QosQueueFull => "qos_queue_full",
            DropReason::UnsupportedPppProtocol => "unsupported_ppp_protocol",
            DropReason::MtuExceeded => "mtu_exceeded",
            DropReason::AclDenied => "acl_denied",
            DropReason::NoRoute => "no_route",
            DropReason::NatRefused => "nat_refused",
        }
    }

    /// Index into [`Counters::drops`].
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Per-port packet and byte counters (bytes are frame bytes without FCS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortCounters {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames transmitted.
    pub tx_packets: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Frames the port refused to transmit.
    pub tx_errors: u64,
}

/// Pipeline counters: plain integers, one writer (the worker), summed on export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counters {
    /// Per port, indexed by [`PortId`].
    pub ports: [PortCounters; MAX_PORTS],
    /// Drops per [`DropReason`], indexed by [`DropReason::index`].
    pub drops: [u64; DropReason::COUNT],
    /// Frames given to the control plane (verdict `ToControlPlane`).
    pub redirected: u64,
    /// Frames from the control plane transmitted on an access port (counted by the host).
    pub injected: u64,
    /// ARP replies sent for the core address.
    pub arp_replies: u64,
    /// ARP requests generated for the next hop.
    pub arp_requests: u64,
    /// Times the next hop's MAC was learned or changed.
    pub arp_learned: u64,
    /// Neighbour advertisements sent for the core IPv6 addresses.
    pub nd_replies: u64,
    /// Neighbour solicitations generated for the IPv6 next hop.
    pub nd_requests: u64,
    /// Times the IPv6 next hop's MAC was learned or changed.
    pub nd_learned: u64,
    /// Upstream packets forwarded to the core.
    pub ul_forwarded: u64,
    /// Downstream packets forwarded to subscribers.
    pub dl_forwarded: u64,
    /// Session commands rejected (access key or address owned by another session).
    pub session_rejects: u64,
    /// Times a session's downlink rate could not be applied because every shaper
    /// (`SchedulerConfig::max_subscribers`) was in use: the session forwards unshaped until
    /// an upsert finds a free one.
    pub qos_unshaped: u64,
    /// ICMP errors originated (time exceeded, fragmentation needed); each replaced a
    /// packet counted as dropped (`ttl_exceeded`, `mtu_exceeded`).
    pub icmp_errors_sent: u64,
    /// ICMP errors not sent because of the rate limit
    /// ([`Pipeline::set_icmp_error_rate`]).
    pub icmp_errors_rate_limited: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            ports: [PortCounters::default(); MAX_PORTS],
            drops: [0; DropReason::COUNT],
            redirected: 0,
            injected: 0,
            arp_replies: 0,
            arp_requests: 0,
            arp_learned: 0,
            nd_replies: 0,
            nd_requests: 0,
            nd_learned: 0,
            ul_forwarded: 0,
            dl_forwarded: 0,
            session_rejects: 0,
            qos_unshaped: 0,
            icmp_errors_sent: 0,
            icmp_errors_rate_limited: 0,
        }
    }
}

impl Counters {
    /// Drops counted for `reason`.
    #[inline]
    pub fn drop_count(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }
    /// Counts one dropped frame.
    #[inline]
    pub fn count_drop(&mut self, reason: DropReason) {
        self.drops[reason.index()] += 1;
    }
    /// Counts a frame received on `port` (ignored for ports >= [`MAX_PORTS`]).
    #[inline]
    pub fn count_rx(&mut self, port: PortId, bytes: usize) {
        if let Some(p) = self.ports.get_mut(usize::from(port)) {
            p.rx_packets += 1;
            p.rx_bytes += bytes as u64;
        }
    }
    /// Counts a frame transmitted on `port` (ignored for ports >= [`MAX_PORTS`]).
    #[inline]
    pub fn count_tx(&mut self, port: PortId, bytes: usize) {
        if let Some(p) = self.ports.get_mut(usize::from(port)) {
            p.tx_packets += 1;
            p.tx_bytes += bytes as u64;
        }
    }
    /// Counts a frame the port refused (also counted as a `TxFull` drop).
    #[inline]
    pub fn count_tx_error(&mut self, port: PortId) {
        if let Some(p) = self.ports.get_mut(usize::from(port)) {
            p.tx_errors += 1;
        }
        self.count_drop(DropReason::TxFull);
    }
    /// Sum of all drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }
}

/// A change to the session table, applied between bursts by the worker that owns the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCommand {
    /// Insert or update a session (counters of an existing session are kept).
    Upsert(SessionEntry),
    /// Remove a session.
    Remove(SessionId),
}
