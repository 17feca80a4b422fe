//! Routing: longest-prefix match tables, ICMP error generation and TTL / hop-limit handling.
//!
//! - [`Lpm4`]: IPv4 longest-prefix match in the DIR-24-8 layout (a 2^24-entry first table
//!   and 256-entry groups; at most two memory reads per lookup), or with a smaller first
//!   table for tight memory ([`Lpm4::with_first_stride`]: 16-8-8, at most three reads).
//! - [`Lpm6`]: IPv6 longest-prefix match in a multibit trie with a 24- (or 16-, 8-) bit
//!   first stride and 8-bit strides below it, as DPDK's `rte_lpm6` lays it out: at most 14
//!   reads per lookup with the 24-bit first stride.
//! - [`LinearLpm4`] / [`LinearLpm6`]: the naive longest-match scan, the reference the tables
//!   are tested against and the baseline they are benchmarked against.
//! - [`icmp_error`]: pure builders for ICMP Time Exceeded, Destination Unreachable /
//!   Fragmentation Needed (RFC 792, RFC 1191, RFC 1812 section 4.3.2) and their ICMPv6
//!   counterparts Time Exceeded / Packet Too Big (RFC 4443), and [`IcmpErrorLimiter`], the
//!   token bucket that bounds how many a worker sends.
//! - [`forward_ipv4`] / [`forward_ipv6`]: the TTL / hop-limit decrement of a forwarded packet
//!   (RFC 1812 section 5.3.1, RFC 8200 section 3) with the RFC 1624 incremental checksum
//!   update, reporting expiry so that the caller can answer with Time Exceeded.
//!
//! Both tables keep every route in a per-length rule map (as `rte_lpm` keeps its rule
//! table), so that deleting a prefix restores the longest shorter prefix that covers it, and
//! every entry of the lookup tables records the length of the prefix that wrote it. Lookups
//! read plain arrays and never allocate; inserts and deletes run on the control side and
//! take `&mut self`.

#![forbid(unsafe_code)]

mod forward;
pub mod icmp_error;
mod linear;
mod lpm4;
mod lpm6;
mod trie;

#[cfg(test)]
mod tests;

pub use forward::{forward_ipv4, forward_ipv6};
pub use icmp_error::{
    IcmpErrorLimiter, Icmpv4ErrorKind, Icmpv6ErrorKind, icmpv4_error, icmpv4_error_eligible,
    icmpv6_error, icmpv6_error_eligible,
};
pub use linear::{LinearLpm4, LinearLpm6};
pub use lpm4::Lpm4;
pub use lpm6::Lpm6;

/// A next-hop index: what a route resolves to (an adjacency, a port and gateway...). The
/// tables store it and give it back; its meaning belongs to the caller.
pub type NextHop = u16;

/// The size of a second-level group (tbl8 in DPDK's words): 256 entries for 8 bits.
pub const GROUP_ENTRIES: usize = 256;

/// Bytes of one table entry (a `u32`).
pub const ENTRY_BYTES: usize = 4;

/// The largest `max_groups` a table accepts (2^22 groups = 4 GiB of groups).
pub const MAX_GROUPS: u32 = 1 << 22;

/// Errors from changing a route table. Small and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RouteError {
    /// The prefix length is longer than the address.
    #[error("prefix length /{len} is invalid: expected 0..={max}")]
    PrefixLength {
        /// The length given.
        len: u8,
        /// The address width (32 or 128).
        max: u8,
    },
    /// The first stride is not one the table supports.
    #[error("first stride {stride} is invalid: expected 8, 16 or 24 bits")]
    FirstStride {
        /// The stride given.
        stride: u8,
    },
    /// `max_groups` is larger than [`MAX_GROUPS`].
    #[error("max_groups {max_groups} is too large: expected at most {limit}")]
    TooManyGroups {
        /// The number given.
        max_groups: u32,
        /// [`MAX_GROUPS`].
        limit: u32,
    },
    /// The insert needs more second-level groups than are free; the table is unchanged.
    #[error("no free route group: all {max_groups} are in use (raise max_groups)")]
    GroupsExhausted {
        /// The table's group capacity.
        max_groups: u32,
    },
    /// Delete of a prefix that is not in the table.
    #[error("prefix not found in the route table")]
    NotFound,
}

/// Why no ICMP error is sent for a packet (RFC 1812 section 4.3.2.7, RFC 4443 section 2.4 (e)),
/// or why it could not be built. Small and `Copy`; per-packet code counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum IcmpRefusal {
    /// The offending packet fails header validation (version, lengths, IPv4 header checksum,
    /// extension headers past the payload).
    #[error("offending packet is malformed: {0}")]
    Malformed(crate::wire::Error),
    /// The offending packet is itself an ICMP error (or an ICMPv4 type not known to be
    /// informational, or an ICMPv6 Redirect, or a fragment whose ICMP type cannot be seen).
    #[error("offending packet is an ICMP error message")]
    IcmpError,
    /// The offending packet is an IPv4 fragment other than the first.
    #[error("offending packet is a non-first fragment")]
    NonFirstFragment,
    /// The offending packet is addressed to a broadcast or multicast address.
    #[error("offending packet has a broadcast or multicast destination")]
    NonUnicastDestination,
    /// The offending packet's source does not name a single host (0.0.0.0/8, 127.0.0.0/8,
    /// multicast, 240.0.0.0/4 and broadcast; IPv6 unspecified, loopback, multicast).
    #[error("offending packet's source address does not identify a single host")]
    InvalidSource,
    /// The output buffer cannot hold the error message.
    #[error("ICMP error needs {needed} bytes, buffer holds {capacity}")]
    BufferTooSmall {
        /// Bytes the message needs.
        needed: usize,
        /// Bytes available.
        capacity: usize,
    },
}

/// Why a packet is not forwarded by [`forward_ipv4`] / [`forward_ipv6`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum HopLimitError {
    /// The TTL / hop limit was 0 or 1: the packet must be dropped and answered with a Time
    /// Exceeded (code 0). The packet is left unchanged, ready to be quoted.
    #[error("TTL / hop limit exceeded in transit")]
    Expired,
    /// The buffer is shorter than the header or carries another IP version.
    #[error("not an IP header of the expected version")]
    Malformed,
}
