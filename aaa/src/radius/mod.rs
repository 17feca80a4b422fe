//! RADIUS wire format (RFC 2865, RFC 2866, RFC 3579).
//!
//! [`Packet`] is a checked view over bytes, [`Repr`] the owned high-level
//! form; [`crypto`] holds the MD5/HMAC-MD5 computations that bind a packet to
//! the shared secret.

pub mod crypto;
mod packet;

pub use packet::{Attribute, Packet, Repr};

/// Smallest legal RADIUS packet: the 20-octet header (RFC 2865 section 3).
pub const HEADER_LEN: usize = 20;
/// Largest legal RADIUS packet (RFC 2865 section 3).
pub const MAX_PACKET_LEN: usize = 4096;
/// Largest attribute value: 255 minus the type and length octets.
pub const MAX_ATTR_VALUE_LEN: usize = 253;
/// Length of the Authenticator field and of the Message-Authenticator value.
pub const AUTHENTICATOR_LEN: usize = 16;

macro_rules! enum_with_unknown {
    (
        $(#[$meta:meta])*
        pub enum $name:ident($ty:ty) {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A code point this crate has no name for.
            Unknown($ty),
        }

        impl From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

enum_with_unknown! {
    /// Packet codes (RFC 2865 section 3, RFC 2866 section 3, RFC 5176).
    pub enum Code(u8) {
        /// Access-Request.
        AccessRequest = 1,
        /// Access-Accept.
        AccessAccept = 2,
        /// Access-Reject.
        AccessReject = 3,
        /// Accounting-Request.
        AccountingRequest = 4,
        /// Accounting-Response.
        AccountingResponse = 5,
        /// Access-Challenge.
        AccessChallenge = 11,
        /// Status-Server (RFC 5997).
        StatusServer = 12,
        /// Disconnect-Request (RFC 5176).
        DisconnectRequest = 40,
        /// Disconnect-ACK.
        DisconnectAck = 41,
        /// Disconnect-NAK.
        DisconnectNak = 42,
        /// CoA-Request (RFC 5176).
        CoaRequest = 43,
        /// CoA-ACK.
        CoaAck = 44,
        /// CoA-NAK.
        CoaNak = 45,
    }
}

enum_with_unknown! {
    /// Attribute types (RFC 2865 section 5, RFC 2866 section 5, RFC 3579).
    pub enum AttrType(u8) {
        /// User-Name.
        UserName = 1,
        /// User-Password (hidden, RFC 2865 5.2).
        UserPassword = 2,
        /// CHAP-Password.
        ChapPassword = 3,
        /// NAS-IP-Address.
        NasIpAddress = 4,
        /// NAS-Port.
        NasPort = 5,
        /// Service-Type.
        ServiceType = 6,
        /// Framed-Protocol.
        FramedProtocol = 7,
        /// Framed-IP-Address.
        FramedIpAddress = 8,
        /// Filter-Id.
        FilterId = 11,
        /// Reply-Message.
        ReplyMessage = 18,
        /// State.
        State = 24,
        /// Class.
        Class = 25,
        /// Vendor-Specific.
        VendorSpecific = 26,
        /// Session-Timeout.
        SessionTimeout = 27,
        /// Idle-Timeout.
        IdleTimeout = 28,
        /// Called-Station-Id.
        CalledStationId = 30,
        /// Calling-Station-Id.
        CallingStationId = 31,
        /// NAS-Identifier.
        NasIdentifier = 32,
        /// Acct-Status-Type.
        AcctStatusType = 40,
        /// Acct-Delay-Time.
        AcctDelayTime = 41,
        /// Acct-Input-Octets.
        AcctInputOctets = 42,
        /// Acct-Output-Octets.
        AcctOutputOctets = 43,
        /// Acct-Session-Id.
        AcctSessionId = 44,
        /// Acct-Session-Time.
        AcctSessionTime = 46,
        /// Acct-Input-Packets.
        AcctInputPackets = 47,
        /// Acct-Output-Packets.
        AcctOutputPackets = 48,
        /// Acct-Terminate-Cause.
        AcctTerminateCause = 49,
        /// Acct-Input-Gigawords.
        AcctInputGigawords = 52,
        /// Acct-Output-Gigawords.
        AcctOutputGigawords = 53,
        /// CHAP-Challenge.
        ChapChallenge = 60,
        /// NAS-Port-Type.
        NasPortType = 61,
        /// Acct-Interim-Interval.
        AcctInterimInterval = 85,
        /// Message-Authenticator (RFC 3579 3.2).
        MessageAuthenticator = 80,
        /// Framed-Pool.
        FramedPool = 88,
        /// Acct-Authentic.
        AcctAuthentic = 45,
        /// Acct-Multi-Session-Id.
        AcctMultiSessionId = 50,
        /// Event-Timestamp (RFC 2869).
        EventTimestamp = 55,
        /// NAS-Port-Id (RFC 2869).
        NasPortId = 87,
        /// Framed-IPv6-Prefix (RFC 3162).
        FramedIpv6Prefix = 97,
        /// Error-Cause (RFC 5176 3.6).
        ErrorCause = 101,
        /// Delegated-IPv6-Prefix (RFC 4818).
        DelegatedIpv6Prefix = 123,
    }
}

/// Acct-Status-Type values (RFC 2866 section 5.1).
pub mod acct_status {
    /// Start.
    pub const START: u32 = 1;
    /// Stop.
    pub const STOP: u32 = 2;
    /// Interim-Update.
    pub const INTERIM_UPDATE: u32 = 3;
}

/// Acct-Terminate-Cause values (RFC 2866 section 5.10).
pub mod terminate_cause {
    /// User-Request (the client released its address or ended PPP).
    pub const USER_REQUEST: u32 = 1;
    /// Lost-Carrier (the lease expired, keepalives failed).
    pub const LOST_CARRIER: u32 = 2;
    /// Lost-Service.
    pub const LOST_SERVICE: u32 = 3;
    /// Idle-Timeout.
    pub const IDLE_TIMEOUT: u32 = 4;
    /// Session-Timeout.
    pub const SESSION_TIMEOUT: u32 = 5;
    /// Admin-Reset (REST deletion, Disconnect-Request).
    pub const ADMIN_RESET: u32 = 6;
    /// NAS-Error.
    pub const NAS_ERROR: u32 = 9;
    /// NAS-Request.
    pub const NAS_REQUEST: u32 = 10;
}

/// Error-Cause values (RFC 5176 section 3.6).
pub mod error_cause {
    /// Residual Session Context Removed (Disconnect-ACK).
    pub const RESIDUAL_CONTEXT_REMOVED: u32 = 201;
    /// Unsupported Attribute.
    pub const UNSUPPORTED_ATTRIBUTE: u32 = 401;
    /// Missing Attribute.
    pub const MISSING_ATTRIBUTE: u32 = 402;
    /// NAS Identification Mismatch.
    pub const NAS_IDENTIFICATION_MISMATCH: u32 = 403;
    /// Invalid Request.
    pub const INVALID_REQUEST: u32 = 404;
    /// Unsupported Service.
    pub const UNSUPPORTED_SERVICE: u32 = 405;
    /// Invalid Attribute Value.
    pub const INVALID_ATTRIBUTE_VALUE: u32 = 407;
    /// Administratively Prohibited.
    pub const ADMINISTRATIVELY_PROHIBITED: u32 = 501;
    /// Session Context Not Found.
    pub const SESSION_CONTEXT_NOT_FOUND: u32 = 503;
    /// Session Context Not Removable.
    pub const SESSION_CONTEXT_NOT_REMOVABLE: u32 = 504;
    /// Resources Unavailable.
    pub const RESOURCES_UNAVAILABLE: u32 = 506;
}

/// Codec errors. Small and `Copy`: parsing never allocates an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Fewer bytes than the 20-octet header.
    #[error("packet truncated: expected at least {HEADER_LEN} octets, found {0}")]
    Truncated(usize),
    /// The Length field is out of range or larger than the datagram.
    #[error(
        "bad packet length field {field}: must be 20..=4096 and at most the {available} octets received"
    )]
    BadLength {
        /// Value of the Length field.
        field: u16,
        /// Octets actually available.
        available: usize,
    },
    /// An attribute's length octet is below 2 or runs past the packet.
    #[error("bad attribute length {len} at offset {offset}: must be >= 2 and fit in the packet")]
    BadAttrLength {
        /// Offset of the attribute in the packet.
        offset: usize,
        /// The attribute's length octet.
        len: u8,
    },
    /// An attribute value longer than 253 octets.
    #[error("attribute value too long: {0} octets, at most 253")]
    ValueTooLong(usize),
    /// The encoded packet would exceed 4096 octets.
    #[error("packet too long: {0} octets, at most 4096")]
    PacketTooLong(usize),
    /// A User-Password longer than 128 octets (RFC 2865 5.2).
    #[error("password too long: {0} octets, at most 128")]
    PasswordTooLong(usize),
    /// A hidden User-Password that is empty or not a multiple of 16 octets.
    #[error("hidden password length {0}: must be a non-zero multiple of 16")]
    BadHiddenPassword(usize),
    /// The Response Authenticator does not match the shared secret.
    #[error("response authenticator mismatch")]
    BadResponseAuthenticator,
    /// The Message-Authenticator attribute is absent.
    #[error("Message-Authenticator missing")]
    MissingMessageAuthenticator,
    /// The Message-Authenticator attribute is malformed or does not verify.
    #[error("Message-Authenticator invalid")]
    BadMessageAuthenticator,
    /// The random source failed.
    #[error("random number generator failed")]
    Random,
}
