//! PFCP (3GPP TS 29.244) codec with the BBF TR-459 vendor IEs.
//!
//! Parse a datagram with [`Message::parse`] (one message) or [`parse_all`]
//! (bundled messages, section 7.2.1A); build one with [`Message::encode`]. All
//! length fields are computed from the encoded body.

pub mod header;
pub mod ie;
pub mod ipoe;
pub mod message;
pub mod node;
pub mod pppoe;

#[cfg(test)]
mod tests;

pub use header::{Header, MessageType};
pub use ie::bbf::{
    BBF_ENTERPRISE_ID, BbfOuterHeaderCreation, BbfOuterHeaderRemoval, BbfUpFunctionFeatures,
    PppProtocol, VendorIe,
};
pub use ie::node::{
    Cause, CpFunctionFeatures, FSeid, FTeid, NodeId, RecoveryTimeStamp, UpFunctionFeatures,
    UserPlaneIpResourceInformation,
};
pub use ie::report::{
    PfcpSmReqFlags, ReportType, UsageReport, UsageReportTrigger, VolumeMeasurement,
};
pub use ie::rules::{
    ApplyAction, CreateFar, CreatePdr, CreateQer, CreateUrr, CreatedPdr, DestinationInterface,
    EthernetPacketFilter, ForwardingParameters, FramedIpv6Route, GateStatus, Interface, MacAddress,
    Mbr, MeasurementMethod, OuterHeaderCreation, OuterHeaderRemoval, Pdi, ReportingTriggers,
    SourceInterface, UeIpAddress, UpdateFar, UpdatePdr, UpdateQer,
};
pub use message::{
    AssociationReleaseRequest, AssociationReleaseResponse, AssociationSetupRequest,
    AssociationSetupResponse, HeartbeatRequest, HeartbeatResponse, Message, ParseStats,
    SessionDeletionRequest, SessionDeletionResponse, SessionEstablishmentRequest,
    SessionEstablishmentResponse, SessionModificationRequest, SessionModificationResponse,
    SessionReportRequest, SessionReportResponse, encode_bundle, parse_all,
};

/// The UDP port PFCP uses on both ends (TS 29.244 section 4.2.2).
pub const PFCP_PORT: u16 = 8805;

/// Errors from parsing PFCP bytes, or from encoding a message whose IE or total
/// length does not fit the 16-bit PFCP length fields.
///
/// Small and `Copy`: parsing never allocates an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Fewer octets than a PFCP header needs.
    #[error("PFCP header truncated: expected at least {expected} octets, found {found}")]
    HeaderTruncated {
        /// Octets the header needs (8 without SEID, 16 with).
        expected: usize,
        /// Octets available.
        found: usize,
    },
    /// The header's version field is not 1.
    #[error("unsupported PFCP version: expected 1, found {0}")]
    Version(u8),
    /// The header's length field points past the end of the datagram.
    #[error("PFCP message truncated: header announces {expected} octets, datagram has {found}")]
    Truncated {
        /// Octets the message length field announces (including the first 4).
        expected: usize,
        /// Octets available.
        found: usize,
    },
    /// The header's length field is smaller than the header itself.
    #[error("PFCP message length {found} is shorter than its {expected}-octet header")]
    LengthTooShort {
        /// Header size after the first 4 octets (4 or 12).
        expected: usize,
        /// Length field value.
        found: usize,
    },
    /// Octets follow the message although its FO (follow on) flag is clear.
    #[error("{found} octets follow the PFCP message but its FO flag is not set")]
    TrailingBytes {
        /// Octets left over.
        found: usize,
    },
    /// The FO flag is set but no further message follows.
    #[error("PFCP FO flag set but no further message follows in the datagram")]
    MissingFollowOn,
    /// A message type this codec does not implement.
    #[error("unsupported PFCP message type {0}")]
    UnsupportedMessage(u8),
    /// Fewer than 4 octets left for an IE header (or 6 for a vendor IE).
    #[error("IE header truncated: expected {expected} octets, found {found}")]
    IeHeaderTruncated {
        /// 4, or 6 for a vendor-specific IE.
        expected: usize,
        /// Octets left.
        found: usize,
    },
    /// An IE's length field points past the end of its enclosing message or group.
    #[error("IE type {ie} announces {expected} octets but only {found} remain")]
    IeOverrun {
        /// IE type.
        ie: u16,
        /// Octets announced by the IE length.
        expected: usize,
        /// Octets remaining in the enclosing buffer.
        found: usize,
    },
    /// An IE body is shorter than its fields require.
    #[error("IE type {ie} too short: expected at least {expected} octets, found {found}")]
    IeTooShort {
        /// IE type.
        ie: u16,
        /// Octets needed.
        expected: usize,
        /// Octets present.
        found: usize,
    },
    /// An IE body holds a value this codec cannot represent.
    #[error("IE type {ie} invalid: {reason}")]
    InvalidIe {
        /// IE type.
        ie: u16,
        /// What was wrong.
        reason: &'static str,
    },
    /// A mandatory IE is absent.
    #[error("mandatory IE {name} (type {ie}) missing from {context}")]
    MissingIe {
        /// IE type.
        ie: u16,
        /// IE name.
        name: &'static str,
        /// The message or grouped IE that needs it.
        context: &'static str,
    },
    /// Encoding: an IE body or the message exceeds 65 535 octets.
    #[error("encoded PFCP IE or message of {len} octets exceeds the 65535-octet length field")]
    TooLong {
        /// Body length that did not fit.
        len: usize,
    },
}
