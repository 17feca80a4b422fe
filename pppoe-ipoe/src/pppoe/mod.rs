//! PPPoE discovery (RFC 2516) with PPP-Max-Payload (RFC 4638) and the
//! Broadband Forum access-loop tags (TR-101), sans-IO.
//!
//! - [`wire`]: the PPPoE header, [`Code`]s, discovery [`Tag`]s and the
//!   [`AccessLoop`] carried in the BBF Vendor-Specific tag.
//! - [`discovery`]: [`DiscoveryServer`], the access concentrator's side of
//!   PADI/PADO/PADR/PADS/PADT with stateless cookies, rate limits and
//!   session caps.
//! - [`client`]: [`client::DiscoveryClient`], the host's side (PADI, PADR,
//!   PADT), for load tools and tests.
//! - [`counters`]: [`DiscoveryCounters`] and the [`DiscoveryDrop`] labels.
//! - [`cookie`]: the keyed hash (SipHash-2-4) behind the AC-Cookie.
//!
//! The caller strips Ethernet and VLAN headers from a frame with EtherType
//! [`ETHERTYPE_DISCOVERY`], identifies the line ([`LineKey`]) and source
//! MAC, calls [`DiscoveryServer::handle`] and sends the reply payload (if
//! any) back to that MAC on that line with EtherType
//! [`ETHERTYPE_DISCOVERY`]. Time is passed in as monotonic milliseconds.

pub mod client;
pub mod cookie;
pub mod counters;
pub mod discovery;
pub mod wire;

#[cfg(test)]
mod tests;

pub use counters::{DiscoveryCounters, DiscoveryDrop};
pub use discovery::{
    DiscoveryConfig, DiscoveryEvent, DiscoveryOutcome, DiscoveryServer, LineKey, SessionKey,
};
pub use wire::{
    AccessLoop, Code, ETHERTYPE_DISCOVERY, ETHERTYPE_SESSION, Header, Tag, emit, emit_tags, parse,
    parse_tags,
};

/// Why bytes could not be decoded as PPPoE.
///
/// Small and `Copy`: returned per frame, never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PppoeError {
    /// Fewer bytes than the 6-byte PPPoE header.
    #[error("PPPoE header needs 6 bytes, found {found}")]
    TooShort {
        /// Bytes available.
        found: usize,
    },
    /// The VER/TYPE octet is not 0x11 (RFC 2516 section 4: both MUST be 1).
    #[error("PPPoE version/type must be 0x11, found {0:#04x}")]
    BadVersionType(u8),
    /// The LENGTH field promises more payload than the frame holds.
    #[error("PPPoE length {length} exceeds the {available} payload bytes present")]
    LengthExceedsFrame {
        /// The LENGTH field.
        length: u16,
        /// Payload bytes after the header.
        available: usize,
    },
    /// A tag header or value runs past the end of the payload.
    #[error("PPPoE tag at offset {offset} is truncated")]
    TagTruncated {
        /// Offset of the tag header within the tag list.
        offset: usize,
    },
    /// A tag whose value has a fixed size has another size.
    #[error("PPPoE tag {typ:#06x} has invalid length {len}")]
    BadTagLength {
        /// TAG_TYPE.
        typ: u16,
        /// TAG_LENGTH.
        len: u16,
    },
    /// A TR-101 sub-option runs past the end of the Vendor-Specific tag.
    #[error("access-loop sub-option at offset {offset} is truncated")]
    SubOptionTruncated {
        /// Offset of the sub-option within the tag's data (after the vendor id).
        offset: usize,
    },
    /// A TR-101 sub-option with a fixed size has another size.
    #[error("access-loop sub-option {typ:#04x} has invalid length {len}")]
    BadSubOptionLength {
        /// Sub-option type.
        typ: u8,
        /// Sub-option length.
        len: u8,
    },
}
