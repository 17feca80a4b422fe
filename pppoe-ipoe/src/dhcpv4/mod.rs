//! DHCPv4 server (RFC 2131) with relay agent information (RFC 3046).
//!
//! - [`client`]: [`client::DhcpClient`], the client's side (DORA, RELEASE),
//!   for load tools and tests.
//! - [`pool`]: address pool allocator over one configured range.
//! - [`server`]: [`DhcpServer`], the sans-IO server state machine.
//! - [`counters`]: [`ServerCounters`] and the [`DropReason`] labels.
//! - [`decode`](mod@decode): [`decode()`], dhcproto decoding guarded against
//!   the option lengths dhcproto 0.15 would panic on in debug builds.
//!
//! The caller decodes a `dhcproto::v4::Message` from a frame with
//! [`decode()`], identifies the client by its access line ([`ClientKey`]),
//! calls [`DhcpServer::handle`] and transmits the [`Reply`] (if any) to the destination chosen by the
//! server per RFC 2131 section 4.1. [`LeaseEvent`]s tell it when to program
//! or remove the subscriber in the user plane. Time is always passed in as
//! monotonic milliseconds (`now_ms`), so tests inject their own clock.

use std::net::Ipv4Addr;

use serde::Deserialize;

pub mod client;
pub mod counters;
pub mod decode;
pub mod pool;
pub mod server;

pub use counters::{DropReason, ServerCounters};
pub use decode::decode;
pub use pool::AddressPool;
pub use server::DhcpServer;

/// UDP port of a DHCP server (and of a relay agent, RFC 2131 section 4.1).
pub const SERVER_PORT: u16 = 67;
/// UDP port of a DHCP client.
pub const CLIENT_PORT: u16 = 68;
/// How long an OFFER holds its address for the client, in milliseconds.
pub const OFFER_HOLD_MS: u64 = 30_000;
/// How long a declined address stays out of circulation, in milliseconds
/// (default of [`AddressPool`]; RFC 2131 section 3.1 step 5 leaves it to us).
pub const DECLINE_QUARANTINE_MS: u64 = 600_000;

/// One subscriber address pool, as read from the control plane's TOML config.
///
/// Lab default ([`PoolConfig::default`]): `100.64.0.0/24`, gateway
/// `100.64.0.1`, range `100.64.0.10`-`100.64.0.250`, DNS `192.0.2.53`,
/// lease 600 s.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Pool name, referenced by [`Authorization::Allow`]. Required, unique.
    pub name: String,
    /// Network address of the subscriber subnet (host bits zero). Required.
    pub network: Ipv4Addr,
    /// Prefix length of the subnet, 8..=30. Required.
    pub prefix_len: u8,
    /// Default router handed to clients; also the server identifier
    /// (option 54) and the source address of replies. Required, inside the
    /// subnet, neither its network nor its broadcast address.
    pub gateway: Ipv4Addr,
    /// First address of the dynamic range (inclusive). Required.
    pub range_start: Ipv4Addr,
    /// Last address of the dynamic range (inclusive). Required.
    pub range_end: Ipv4Addr,
    /// DNS servers (option 6), in order. Default: none (option omitted).
    #[serde(default)]
    pub dns: Vec<Ipv4Addr>,
    /// Lease time in seconds (option 51); T1 is half of it, T2 seven
    /// eighths. Default: 600.
    #[serde(default = "default_lease_time_s")]
    pub lease_time_s: u32,
}

fn default_lease_time_s() -> u32 {
    600
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            name: "default".to_string(),
            network: Ipv4Addr::new(100, 64, 0, 0),
            prefix_len: 24,
            gateway: Ipv4Addr::new(100, 64, 0, 1),
            range_start: Ipv4Addr::new(100, 64, 0, 10),
            range_end: Ipv4Addr::new(100, 64, 0, 250),
            dns: vec![Ipv4Addr::new(192, 0, 2, 53)],
            lease_time_s: default_lease_time_s(),
        }
    }
}

/// A client's identity: the access line it was seen on plus its MAC.
///
/// The control plane builds it from the redirected frame (user plane,
/// access port, VLAN tags, source MAC). VLAN id 0 means "no tag".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey {
    /// The control plane's index of the user plane the frame came from.
    pub up: u32,
    /// Access port index on that user plane.
    pub port: u8,
    /// Outer (service) VLAN id, 0 if absent.
    pub svlan: u16,
    /// Inner (customer) VLAN id, 0 if absent.
    pub cvlan: u16,
    /// Client MAC address (frame source).
    pub mac: [u8; 6],
}

/// What the server knows about the client when a message arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientContext {
    /// The client's access line identity.
    pub key: ClientKey,
    /// Agent Circuit ID (option 82 sub-option 1). When `None`, the server
    /// takes it from the message's option 82 if present.
    pub circuit_id: Option<Vec<u8>>,
    /// Agent Remote ID (option 82 sub-option 2). When `None`, the server
    /// takes it from the message's option 82 if present.
    pub remote_id: Option<Vec<u8>>,
}

impl ClientContext {
    /// A context for `key` with circuit and remote id read from `msg`'s
    /// option 82, if it carries one.
    pub fn from_message(key: ClientKey, msg: &dhcproto::v4::Message) -> Self {
        let (circuit_id, remote_id) = server::relay_ids(msg);
        ClientContext {
            key,
            circuit_id,
            remote_id,
        }
    }
}

/// The caller's (AAA's) decision about a client without a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// Serve the client from pool `pool`; with `fixed_ipv4`, always that
    /// address (which must lie inside the pool's subnet).
    Allow {
        /// Name of a configured [`PoolConfig`].
        pool: String,
        /// A fixed address for this subscriber, instead of a dynamic one.
        fixed_ipv4: Option<Ipv4Addr>,
    },
    /// Refuse service: no reply to DISCOVER, NAK to REQUEST.
    Deny,
    /// Not decided yet (an asynchronous AAA request is in flight): the
    /// message is dropped without a reply or NAK and counted as
    /// [`DropReason::AuthPending`]; the caller replays it (or the client
    /// retransmits) once the decision is known.
    Pending,
}

/// The result of [`DhcpServer::handle`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handled {
    /// The reply to transmit, if any.
    pub reply: Option<Reply>,
    /// Lease changes the caller must apply to the user plane.
    pub events: Vec<LeaseEvent>,
    /// Why the message got no reply (or a NAK), for logging; also counted
    /// in [`ServerCounters`].
    pub dropped: Option<DropReason>,
}

/// A reply message and where to send it (RFC 2131 section 4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The DHCP message (op BOOTREPLY).
    pub msg: dhcproto::v4::Message,
    /// IPv4 source address: the pool gateway, equal to the server identifier.
    pub src_ip: Ipv4Addr,
    /// IPv4 destination address: relay (giaddr), ciaddr, yiaddr or
    /// 255.255.255.255.
    pub dst_ip: Ipv4Addr,
    /// UDP destination port: 67 when sent to a relay agent, else 68.
    pub dst_port: u16,
    /// Send to the Ethernet broadcast address instead of the client MAC.
    pub dst_mac_broadcast: bool,
}

/// A lease change for the control plane to apply to the user plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseEvent {
    /// First ACK for this client and address: program the session.
    Bound(Lease),
    /// The lease was extended (same address); nothing to reprogram.
    Renewed(Lease),
    /// The client released the address, or an administrator removed it:
    /// delete the session.
    Released(Lease),
    /// The client declined the address (in use by someone else): delete
    /// the session; the address is quarantined.
    Declined(Lease),
    /// The lease timed out without renewal: delete the session.
    Expired(Lease),
}

impl LeaseEvent {
    /// The lease the event is about.
    pub fn lease(&self) -> &Lease {
        match self {
            LeaseEvent::Bound(l)
            | LeaseEvent::Renewed(l)
            | LeaseEvent::Released(l)
            | LeaseEvent::Declined(l)
            | LeaseEvent::Expired(l) => l,
        }
    }

    /// Snake-case name of the event kind (for logs and metric labels).
    pub fn name(&self) -> &'static str {
        match self {
            LeaseEvent::Bound(_) => "bound",
            LeaseEvent::Renewed(_) => "renewed",
            LeaseEvent::Released(_) => "released",
            LeaseEvent::Declined(_) => "declined",
            LeaseEvent::Expired(_) => "expired",
        }
    }
}

/// An address bound (or offered) to one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The client.
    pub key: ClientKey,
    /// The leased address.
    pub ipv4: Ipv4Addr,
    /// Name of the pool the address belongs to.
    pub pool: String,
    /// Default router of the subnet (the pool gateway, also server id).
    pub gateway: Ipv4Addr,
    /// Prefix length of the subnet.
    pub prefix_len: u8,
    /// Lease time granted, in seconds.
    pub lease_time_s: u32,
    /// When the lease was first bound (ms, caller's monotonic clock).
    pub bound_at_ms: u64,
    /// When the lease ends unless renewed (ms, caller's monotonic clock).
    pub expires_at_ms: u64,
    /// Agent Circuit ID (option 82.1) seen for this client, if any.
    pub circuit_id: Option<Vec<u8>>,
    /// Agent Remote ID (option 82.2) seen for this client, if any.
    pub remote_id: Option<Vec<u8>>,
    /// Client identifier (option 61), if the client sent one.
    pub client_id: Option<Vec<u8>>,
    /// Host name (option 12), if the client sent one.
    pub hostname: Option<String>,
}

/// A DHCPv4 message that [`decode()`] refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the BOOTP header plus magic cookie.
    #[error("DHCP message: expected at least {expected} bytes, found {found}")]
    Truncated {
        /// Minimum length.
        expected: usize,
        /// Actual length.
        found: usize,
    },
    /// `hlen` larger than the 16-byte `chaddr` field.
    #[error("DHCP message: hlen expected at most 16, found {0}")]
    HardwareAddressLength(u8),
    /// An option whose length dhcproto does not check.
    #[error("DHCP option {code}: unexpected length {found}")]
    OptionLength {
        /// Option code.
        code: u8,
        /// Length (of all consecutive instances joined).
        found: usize,
    },
    /// dhcproto's own decode error, as text.
    #[error("DHCP message: {0}")]
    Dhcproto(String),
}

/// A pool configuration the server cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A pool has an empty name.
    #[error("pool name: expected a non-empty string, found \"\"")]
    EmptyName,
    /// Two pools share a name.
    #[error("pool {0:?}: expected unique pool names, found the name twice")]
    DuplicateName(String),
    /// `prefix_len` is outside 8..=30.
    #[error("pool {pool:?}: prefix_len expected 8..=30, found {found}")]
    PrefixLen {
        /// Pool name.
        pool: String,
        /// Configured prefix length.
        found: u8,
    },
    /// `network` has host bits set.
    #[error("pool {pool:?}: network expected host bits zero ({expected}), found {found}")]
    NetworkHostBits {
        /// Pool name.
        pool: String,
        /// The network address with host bits cleared.
        expected: Ipv4Addr,
        /// Configured network.
        found: Ipv4Addr,
    },
    /// An address that must be a usable host of the subnet is not.
    #[error(
        "pool {pool:?}: {key} expected a host address inside {network}/{prefix_len}, found {found}"
    )]
    OutsideSubnet {
        /// Pool name.
        pool: String,
        /// Config key (`gateway`, `range_start`, `range_end`).
        key: &'static str,
        /// Pool network.
        network: Ipv4Addr,
        /// Pool prefix length.
        prefix_len: u8,
        /// Configured address.
        found: Ipv4Addr,
    },
    /// `range_start` is after `range_end`.
    #[error("pool {pool:?}: expected range_start <= range_end, found {start} > {end}")]
    RangeReversed {
        /// Pool name.
        pool: String,
        /// Configured start.
        start: Ipv4Addr,
        /// Configured end.
        end: Ipv4Addr,
    },
    /// The range is larger than the allocator supports.
    #[error("pool {pool:?}: range expected at most {max} addresses, found {found}")]
    RangeTooLarge {
        /// Pool name.
        pool: String,
        /// Largest supported range.
        max: u32,
        /// Configured range size.
        found: u64,
    },
    /// No address of the range can be handed out.
    #[error(
        "pool {0:?}: range expected at least one address besides network, broadcast and gateway, found none"
    )]
    EmptyRange(String),
    /// Ranges of two pools overlap.
    #[error(
        "pool {pool:?}: expected a range disjoint from the other pools, found overlap with {other:?}"
    )]
    Overlap {
        /// Pool name.
        pool: String,
        /// The other pool.
        other: String,
    },
    /// `lease_time_s` is zero.
    #[error("pool {0:?}: lease_time_s expected at least 1, found 0")]
    ZeroLeaseTime(String),
}

#[cfg(test)]
mod tests;
