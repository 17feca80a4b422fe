//! NAT44 / carrier-grade NAT (RFC 6888) for one worker: endpoint-independent mapping and
//! filtering for UDP (RFC 4787), TCP (RFC 5382) and ICMP queries and errors (RFC 5508), with
//! paired address pooling, per-subscriber port blocks and port-block logging.
//!
//! # Model
//! - Each worker owns one [`Nat`]: its own outside addresses (a disjoint share of the
//!   configured pool, [`Nat::with_address_filter`]), subscribers, blocks and mappings. Nothing
//!   is shared and nothing is locked.
//! - A *subscriber* is keyed by its session's inside IPv4 address (the `inside_subscriber`
//!   argument of [`Nat::translate_outbound`]). All its port blocks are on one outside address
//!   (paired pooling, RFC 6888 REQ-2 / RFC 4787 REQ-2). Its first block goes to the address
//!   with the most free blocks; later blocks come from the same address, and when that
//!   address has no free block the flow is refused (address exhaustion), never moved to
//!   another address.
//! - A *block* is `block_size` consecutive outside ports, the same ports for TCP, UDP and
//!   ICMP query ids. A subscriber holds at most `blocks_per_subscriber` blocks, which caps
//!   its ports per protocol (RFC 6888 REQ-3/REQ-4).
//! - A *mapping* is (inside address, protocol, inside port or ICMP id) -> (outside address,
//!   outside port): endpoint-independent (the same for every destination, RFC 4787 REQ-1,
//!   RFC 5382 REQ-1), and endpoint-independent filtering: any remote may reach an existing
//!   mapping (RFC 4787 REQ-8, RFC 5382 REQ-3). The outside port is taken from the
//!   subscriber's blocks: the inside port's offset in a block first (so the port is kept
//!   when the block covers it), then the first free port of the blocks.
//! - Packets to one of this worker's outside addresses from a subscriber are hairpinned
//!   (RFC 4787 REQ-9, RFC 5382 REQ-2, RFC 5508 section 3.4): the source becomes the sender's
//!   outside mapping and the destination the receiver's inside endpoint.
//!
//! # Timeouts and release
//! Mappings expire after they have been idle for the protocol's timeout (refreshed by
//! packets in both directions; RFC 4787 REQ-6 allows inbound refresh): UDP 300 s (at least
//! 120 s, RFC 4787 REQ-5), TCP 7440 s once SYNs were seen both ways and 240 s otherwise or
//! after a FIN each way or a RST (RFC 5382 REQ-5, section 5), ICMP 60 s (at least 60 s,
//! RFC 5508 REQ-1). [`Nat::expire`] examines a bounded number of slots per call (two scan
//! cursors, one over mappings, one over block slots), so expiry is late by at most one
//! sweep. A block whose last mapping went away is kept for `block_idle_s` (default 120 s)
//! so that the subscriber's next flows reuse it without new log lines, then released.
//! [`Nat::release_subscriber`] frees a subscriber's mappings and blocks at once.
//!
//! # Logging (RFC 6888 REQ-12)
//! Every block allocation and release is queued as a [`NatLogEvent`] for the host to drain
//! ([`Nat::drain_events`]). Events are never lost: when the queue is full a new block is
//! refused (the flow is dropped, [`NatDrop::LogQueueFull`]) and a release is postponed (the
//! block stays attributed to its subscriber and is not reused) until the queue has room.
//!
//! # Fragments
//! Non-first outbound fragments are translated (the subscriber's paired address is all
//! they need). Inbound, the first fragment records (remote, outside address, protocol, IP
//! id) -> inside address in a small direct-mapped table that the following fragments use
//! for 5 s. Inbound non-first fragments that arrive before their first fragment, or whose
//! entry was overwritten, are dropped and counted ([`NatDrop::Fragment`]).
//!
//! # Memory (per worker; [`Nat::memory`] reports the exact figures)
//! - Mapping: 32 bytes in the slab, 8 bytes of links in its subscriber's mapping list, and
//!   one lane of a 64-byte bucket (seven lanes, sized for at most five mappings a bucket
//!   on average) in each of two one-line indexes: 25.6 bytes, so 65.6 bytes per configured
//!   mapping in all.
//! - Subscriber: 24 bytes and 10 to 20 of index, plus 16 bytes per block slot: 108 bytes per
//!   configured subscriber with the defaults (4 blocks). There is no per-port state: a block
//!   slot counts its ports in use per protocol, and a free port is found by probing the
//!   outside index (one probe when the inside port's offset is free, at most `block_size`).
//! - Outside address: 20 bytes plus one bit per block (126 blocks with the defaults: 36
//!   bytes).
//! - Log event: 32 bytes per queue slot; fragment table entry: 32 bytes.
//!
//! With the defaults (262144 mappings, 16384 subscribers, a /24) a worker allocates 19.1 MB:
//! 10.5 MB mapping slab and list links, 6.7 MB mapping indexes, 1.8 MB subscribers and port
//! blocks, 0.2 MB pool, log queue and fragment table.
//!
//! All of it is allocated when the [`Nat`] is built; translating never allocates.

#![forbid(unsafe_code)]

use core::net::Ipv4Addr;

mod blocks;
mod config;
mod engine;
mod frag;
pub mod ipfix;
mod log;
mod table;
mod translate;

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

pub use config::{Ipv4Prefix, NatConfig, NatConfigError, NatTimeouts, ParsePrefixError};
pub use engine::{MappingInfo, Nat, NatMemory};
pub use log::{NatLogEvent, NatLogKind, NatLogReason};

/// The transport protocols the NAT translates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum NatProtocol {
    /// TCP (RFC 5382).
    Tcp = 0,
    /// UDP (RFC 4787).
    Udp = 1,
    /// ICMP queries, keyed by the echo identifier (RFC 5508).
    Icmp = 2,
}

impl NatProtocol {
    /// Number of protocols.
    pub const COUNT: usize = 3;
    /// Every protocol, in index order.
    pub const ALL: [NatProtocol; NatProtocol::COUNT] =
        [NatProtocol::Tcp, NatProtocol::Udp, NatProtocol::Icmp];

    /// The protocol of IP protocol number `n`, if translated.
    #[inline]
    pub const fn from_ip_protocol(n: u8) -> Option<NatProtocol> {
        match n {
            6 => Some(NatProtocol::Tcp),
            17 => Some(NatProtocol::Udp),
            1 => Some(NatProtocol::Icmp),
            _ => None,
        }
    }

    /// The IP protocol number.
    #[inline]
    pub const fn ip_protocol(self) -> u8 {
        match self {
            NatProtocol::Tcp => 6,
            NatProtocol::Udp => 17,
            NatProtocol::Icmp => 1,
        }
    }

    /// Index (0..3).
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Inverse of [`NatProtocol::index`].
    #[inline]
    pub(crate) const fn from_index(i: u8) -> Option<NatProtocol> {
        match i {
            0 => Some(NatProtocol::Tcp),
            1 => Some(NatProtocol::Udp),
            2 => Some(NatProtocol::Icmp),
            _ => None,
        }
    }

    /// Lower-case name for metrics and logs.
    pub const fn name(self) -> &'static str {
        match self {
            NatProtocol::Tcp => "tcp",
            NatProtocol::Udp => "udp",
            NatProtocol::Icmp => "icmp",
        }
    }
}

/// The owner of a mapping created without one ([`Nat::translate_outbound`]).
pub const NO_OWNER: u32 = u32::MAX;

/// What to do with a packet [`Nat::translate_outbound`] translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbound {
    /// Send it towards the core: the source is now the outside mapping.
    Forward,
    /// The destination was one of this worker's outside mappings: the packet now goes from
    /// the sender's outside mapping to the receiver's inside endpoint, and must be sent down
    /// to the receiving subscriber, as a translated inbound packet would be.
    Hairpin {
        /// The receiver's inside address (the new destination).
        inside: Ipv4Addr,
        /// The low 32 bits of the receiver's session tag.
        session_tag: u32,
        /// The owner given with the receiver's packets ([`Inbound::owner`]).
        owner: u32,
    },
    /// The destination is an address of the pool that another worker's NAT holds (this NAT
    /// holds only part of the pool): the source is the sender's outside mapping now; the
    /// worker holding the destination must translate it as an inbound packet and deliver it
    /// (hairpinning across workers).
    HairpinElsewhere,
}

/// Where a packet [`Nat::translate_inbound`] translated goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inbound {
    /// The inside address now in the destination.
    pub inside: Ipv4Addr,
    /// The low 32 bits of the session tag given with the packets that created the mapping.
    pub session_tag: u32,
    /// The owner given with the mapping's latest outbound packet
    /// ([`Nat::translate_outbound_owned`]), [`NO_OWNER`] if none: a caller's hint of where
    /// the session is, to be checked before use (the NAT does not know when it goes stale).
    pub owner: u32,
}

/// Why the NAT refused a packet. Every refusal is counted in [`NatCounters::drops`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[repr(usize)]
pub enum NatDrop {
    /// Headers too short or inconsistent (IPv4, transport, embedded packet of an ICMP error,
    /// ICMP error checksum), or a TCP/UDP source port 0.
    #[error("malformed packet")]
    Malformed,
    /// Not TCP, UDP, an ICMP echo or an ICMP error about one of those.
    #[error("protocol not translated")]
    UnsupportedProtocol,
    /// A non-first fragment the NAT cannot place (inbound without its first fragment, or
    /// hairpinned).
    #[error("fragment without translation state")]
    Fragment,
    /// Inbound (or hairpinned) packet to no mapping, an outbound echo reply or TCP RST
    /// without a mapping, or an ICMP error about no mapping.
    #[error("no mapping")]
    NoMapping,
    /// The subscriber has all its blocks and none has a free port for this protocol.
    #[error("subscriber's ports exhausted")]
    PortExhausted,
    /// A new block was needed but the subscriber's outside address (or, for a first block,
    /// the whole pool) has none free.
    #[error("outside address has no free block")]
    AddressExhausted,
    /// The worker holds `max_mappings` mappings.
    #[error("mapping table full")]
    TableFull,
    /// The worker holds `max_subscribers` subscribers.
    #[error("subscriber table full")]
    SubscriberTableFull,
    /// A new block was needed but its log event could not be queued.
    #[error("port-block log queue full")]
    LogQueueFull,
}

impl NatDrop {
    /// Number of reasons (length of [`NatCounters::drops`]).
    pub const COUNT: usize = 9;
    /// Every reason, in index order.
    pub const ALL: [NatDrop; NatDrop::COUNT] = [
        NatDrop::Malformed,
        NatDrop::UnsupportedProtocol,
        NatDrop::Fragment,
        NatDrop::NoMapping,
        NatDrop::PortExhausted,
        NatDrop::AddressExhausted,
        NatDrop::TableFull,
        NatDrop::SubscriberTableFull,
        NatDrop::LogQueueFull,
    ];

    /// snake_case label for metrics (`reason="port_exhausted"`).
    pub const fn name(self) -> &'static str {
        match self {
            NatDrop::Malformed => "malformed",
            NatDrop::UnsupportedProtocol => "unsupported_protocol",
            NatDrop::Fragment => "fragment",
            NatDrop::NoMapping => "no_mapping",
            NatDrop::PortExhausted => "port_exhausted",
            NatDrop::AddressExhausted => "address_exhausted",
            NatDrop::TableFull => "table_full",
            NatDrop::SubscriberTableFull => "subscriber_table_full",
            NatDrop::LogQueueFull => "log_queue_full",
        }
    }

    /// Index into [`NatCounters::drops`].
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// NAT counters of one worker: plain integers, one writer, summed on export. Gauges (active
/// mappings, blocks in use, subscribers) are methods of [`Nat`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NatCounters {
    /// Mappings created.
    pub mappings_created: u64,
    /// Mappings removed because they were idle past their timeout.
    pub mappings_expired: u64,
    /// Mappings removed with their subscriber ([`Nat::release_subscriber`] or a new session
    /// tag on the same inside address).
    pub mappings_released: u64,
    /// Port blocks allocated.
    pub blocks_allocated: u64,
    /// Port blocks released.
    pub blocks_released: u64,
    /// Block releases postponed because the log queue was full (retried by [`Nat::expire`]).
    pub release_deferred: u64,
    /// Log events queued.
    pub log_events: u64,
    /// Packets hairpinned between two subscribers.
    pub hairpins: u64,
    /// Packets from a subscriber to another worker's share of the pool, translated and
    /// handed to that worker ([`Outbound::HairpinElsewhere`]).
    pub hairpins_elsewhere: u64,
    /// Non-first fragments translated.
    pub fragments_translated: u64,
    /// ICMP errors whose embedded packet was translated.
    pub icmp_errors_translated: u64,
    /// Subscribers whose state was released because packets arrived with a new session tag.
    pub session_changes: u64,
    /// Refused packets per [`NatDrop`], indexed by [`NatDrop::index`].
    pub drops: [u64; NatDrop::COUNT],
}

impl NatCounters {
    /// Drops counted for `reason`.
    #[inline]
    pub fn drop_count(&self, reason: NatDrop) -> u64 {
        self.drops[reason.index()]
    }
}
