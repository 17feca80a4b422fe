//! PFCP message header (TS 29.244 section 7.2.2).
//!
//! ```text
//!   Octet     8     7     6     5     4     3     2     1
//!     1    | Version (1)     |Spare|Spare|  FO |  MP |  S  |
//!     2    |                Message Type                   |
//!     3-4  |   Message Length (octets after the first 4)   |
//!   5-12   |   SEID (only if S = 1)                        |
//!  m-(m+2) |   Sequence Number (24 bits)                   |
//!   m+3    | Message Priority (if MP = 1) | Spare          |
//! ```

use alloc::vec::Vec;

use super::Error;

/// PFCP message types (TS 29.244 Table 7.3-1) that vbng uses; everything else
/// is `Unknown(n)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// 1
    HeartbeatRequest,
    /// 2
    HeartbeatResponse,
    /// 5
    AssociationSetupRequest,
    /// 6
    AssociationSetupResponse,
    /// 9
    AssociationReleaseRequest,
    /// 10
    AssociationReleaseResponse,
    /// 11
    VersionNotSupportedResponse,
    /// 50
    SessionEstablishmentRequest,
    /// 51
    SessionEstablishmentResponse,
    /// 52
    SessionModificationRequest,
    /// 53
    SessionModificationResponse,
    /// 54
    SessionDeletionRequest,
    /// 55
    SessionDeletionResponse,
    /// 56
    SessionReportRequest,
    /// 57
    SessionReportResponse,
    /// Any other code point.
    Unknown(u8),
}

impl MessageType {
    /// Every known message type, in code point order.
    pub const ALL: [MessageType; 15] = [
        Self::HeartbeatRequest,
        Self::HeartbeatResponse,
        Self::AssociationSetupRequest,
        Self::AssociationSetupResponse,
        Self::AssociationReleaseRequest,
        Self::AssociationReleaseResponse,
        Self::VersionNotSupportedResponse,
        Self::SessionEstablishmentRequest,
        Self::SessionEstablishmentResponse,
        Self::SessionModificationRequest,
        Self::SessionModificationResponse,
        Self::SessionDeletionRequest,
        Self::SessionDeletionResponse,
        Self::SessionReportRequest,
        Self::SessionReportResponse,
    ];

    /// True for session-related messages (types 50..=99), which carry a SEID.
    pub fn is_session(self) -> bool {
        (50..=99).contains(&u8::from(self))
    }

    /// True for requests (odd codes among the known types; heartbeat 1, setup 5...).
    pub fn is_request(self) -> bool {
        matches!(
            self,
            Self::HeartbeatRequest
                | Self::AssociationSetupRequest
                | Self::AssociationReleaseRequest
                | Self::SessionEstablishmentRequest
                | Self::SessionModificationRequest
                | Self::SessionDeletionRequest
                | Self::SessionReportRequest
        )
    }

    /// The name Wireshark prints, e.g. "PFCP Heartbeat Request".
    pub fn name(self) -> &'static str {
        match self {
            Self::HeartbeatRequest => "PFCP Heartbeat Request",
            Self::HeartbeatResponse => "PFCP Heartbeat Response",
            Self::AssociationSetupRequest => "PFCP Association Setup Request",
            Self::AssociationSetupResponse => "PFCP Association Setup Response",
            Self::AssociationReleaseRequest => "PFCP Association Release Request",
            Self::AssociationReleaseResponse => "PFCP Association Release Response",
            Self::VersionNotSupportedResponse => "PFCP Version Not Supported Response",
            Self::SessionEstablishmentRequest => "PFCP Session Establishment Request",
            Self::SessionEstablishmentResponse => "PFCP Session Establishment Response",
            Self::SessionModificationRequest => "PFCP Session Modification Request",
            Self::SessionModificationResponse => "PFCP Session Modification Response",
            Self::SessionDeletionRequest => "PFCP Session Deletion Request",
            Self::SessionDeletionResponse => "PFCP Session Deletion Response",
            Self::SessionReportRequest => "PFCP Session Report Request",
            Self::SessionReportResponse => "PFCP Session Report Response",
            Self::Unknown(_) => "PFCP Unknown",
        }
    }
}

impl From<u8> for MessageType {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::HeartbeatRequest,
            2 => Self::HeartbeatResponse,
            5 => Self::AssociationSetupRequest,
            6 => Self::AssociationSetupResponse,
            9 => Self::AssociationReleaseRequest,
            10 => Self::AssociationReleaseResponse,
            11 => Self::VersionNotSupportedResponse,
            50 => Self::SessionEstablishmentRequest,
            51 => Self::SessionEstablishmentResponse,
            52 => Self::SessionModificationRequest,
            53 => Self::SessionModificationResponse,
            54 => Self::SessionDeletionRequest,
            55 => Self::SessionDeletionResponse,
            56 => Self::SessionReportRequest,
            57 => Self::SessionReportResponse,
            n => Self::Unknown(n),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(t: MessageType) -> u8 {
        match t {
            MessageType::HeartbeatRequest => 1,
            MessageType::HeartbeatResponse => 2,
            MessageType::AssociationSetupRequest => 5,
            MessageType::AssociationSetupResponse => 6,
            MessageType::AssociationReleaseRequest => 9,
            MessageType::AssociationReleaseResponse => 10,
            MessageType::VersionNotSupportedResponse => 11,
            MessageType::SessionEstablishmentRequest => 50,
            MessageType::SessionEstablishmentResponse => 51,
            MessageType::SessionModificationRequest => 52,
            MessageType::SessionModificationResponse => 53,
            MessageType::SessionDeletionRequest => 54,
            MessageType::SessionDeletionResponse => 55,
            MessageType::SessionReportRequest => 56,
            MessageType::SessionReportResponse => 57,
            MessageType::Unknown(n) => n,
        }
    }
}

mod field {
    pub const FLAGS: usize = 0;
    pub const TYPE: usize = 1;
    pub const LENGTH: core::ops::Range<usize> = 2..4;
    pub const SEID: core::ops::Range<usize> = 4..12;
    pub const FLAG_FO: u8 = 0x04;
    pub const FLAG_MP: u8 = 0x02;
    pub const FLAG_S: u8 = 0x01;
}

/// Sequence numbers are 24 bits wide.
pub const SEQUENCE_MASK: u32 = 0x00ff_ffff;

/// A parsed PFCP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Protocol version; always 1 on encode, parse rejects anything else.
    pub version: u8,
    /// Message priority 0..=15 when the MP flag is set (section 7.2.2.3).
    pub mp: Option<u8>,
    /// SEID, present (S = 1) in session-related messages.
    pub seid: Option<u64>,
    /// 24-bit sequence number matching a response to its request.
    pub sequence: u32,
    /// Message type.
    pub msg_type: MessageType,
}

/// Where a message sits in the datagram, from [`Header::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// Header size in octets (8, or 16 with a SEID).
    pub header_len: usize,
    /// Whole message size in octets (length field + 4).
    pub message_len: usize,
    /// FO flag: another message follows in the same datagram.
    pub follow_on: bool,
}

impl Header {
    /// Header size: 8 octets, 16 with a SEID.
    pub fn buffer_len(&self) -> usize {
        if self.seid.is_some() { 16 } else { 8 }
    }

    /// Parses the header at the start of `bytes` and checks that the whole
    /// message announced by its length field is present.
    pub fn parse(bytes: &[u8]) -> Result<(Header, Framing), Error> {
        if bytes.len() < 8 {
            return Err(Error::HeaderTruncated {
                expected: 8,
                found: bytes.len(),
            });
        }
        let flags = bytes[field::FLAGS];
        let version = flags >> 5;
        if version != 1 {
            return Err(Error::Version(version));
        }
        let has_seid = flags & field::FLAG_S != 0;
        let header_len = if has_seid { 16 } else { 8 };
        if bytes.len() < header_len {
            return Err(Error::HeaderTruncated {
                expected: header_len,
                found: bytes.len(),
            });
        }
        let length = usize::from(u16::from_be_bytes([
            bytes[field::LENGTH.start],
            bytes[field::LENGTH.start + 1],
        ]));
        if length < header_len - 4 {
            return Err(Error::LengthTooShort {
                expected: header_len - 4,
                found: length,
            });
        }
        let message_len = length + 4;
        if bytes.len() < message_len {
            return Err(Error::Truncated {
                expected: message_len,
                found: bytes.len(),
            });
        }
        let (seid, seq_at) = if has_seid {
            let mut s = [0u8; 8];
            s.copy_from_slice(&bytes[field::SEID]);
            (Some(u64::from_be_bytes(s)), 12)
        } else {
            (None, 4)
        };
        let sequence = u32::from_be_bytes([0, bytes[seq_at], bytes[seq_at + 1], bytes[seq_at + 2]]);
        let mp = (flags & field::FLAG_MP != 0).then_some(bytes[seq_at + 3] >> 4);
        let header = Header {
            version,
            mp,
            seid,
            sequence,
            msg_type: MessageType::from(bytes[field::TYPE]),
        };
        let framing = Framing {
            header_len,
            message_len,
            follow_on: flags & field::FLAG_FO != 0,
        };
        Ok((header, framing))
    }

    /// Appends this header to `out` with the length field set from `body_len`
    /// (octets of IEs after the header). Version is always written as 1, the
    /// sequence number is masked to 24 bits and the priority to 4 bits.
    pub fn emit(&self, body_len: usize, follow_on: bool, out: &mut Vec<u8>) -> Result<(), Error> {
        let length = self.buffer_len() - 4 + body_len;
        let length = u16::try_from(length).map_err(|_| Error::TooLong { len: length })?;
        let mut flags = 1 << 5;
        if follow_on {
            flags |= field::FLAG_FO;
        }
        if self.mp.is_some() {
            flags |= field::FLAG_MP;
        }
        if self.seid.is_some() {
            flags |= field::FLAG_S;
        }
        out.push(flags);
        out.push(self.msg_type.into());
        out.extend_from_slice(&length.to_be_bytes());
        if let Some(seid) = self.seid {
            out.extend_from_slice(&seid.to_be_bytes());
        }
        out.extend_from_slice(&(self.sequence & SEQUENCE_MASK).to_be_bytes()[1..]);
        out.push(self.mp.map_or(0, |p| (p & 0x0f) << 4));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_header_golden() {
        // Heartbeat Request, sequence 0x000102, no SEID, 12 octets of IEs.
        let bytes = [0x20, 0x01, 0x00, 0x10, 0x00, 0x01, 0x02, 0x00];
        let mut with_body = bytes.to_vec();
        with_body.extend_from_slice(&[0; 12]);
        let (h, f) = Header::parse(&with_body).unwrap();
        assert_eq!(h.msg_type, MessageType::HeartbeatRequest);
        assert_eq!(h.sequence, 0x102);
        assert_eq!(h.seid, None);
        assert_eq!(
            f,
            Framing {
                header_len: 8,
                message_len: 20,
                follow_on: false
            }
        );
        let mut out = Vec::new();
        h.emit(12, false, &mut out).unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn session_header_golden() {
        let bytes = [
            0x23, 0x36, 0x00, 0x0c, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0xab, 0xcd, 0xef, 0x50,
        ];
        let (h, f) = Header::parse(&bytes).unwrap();
        assert_eq!(h.msg_type, MessageType::SessionDeletionRequest);
        assert_eq!(h.seid, Some(0x1234));
        assert_eq!(h.sequence, 0xabcdef);
        assert_eq!(h.mp, Some(5));
        assert_eq!(f.message_len, 16);
        let mut out = Vec::new();
        h.emit(0, false, &mut out).unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn rejects_bad_headers() {
        assert_eq!(
            Header::parse(&[0x20, 1, 0, 4]),
            Err(Error::HeaderTruncated {
                expected: 8,
                found: 4
            })
        );
        assert_eq!(
            Header::parse(&[0x40, 1, 0, 4, 0, 0, 0, 0]),
            Err(Error::Version(2))
        );
        assert_eq!(
            Header::parse(&[0x20, 1, 0, 8, 0, 0, 0, 0]),
            Err(Error::Truncated {
                expected: 12,
                found: 8
            })
        );
        assert_eq!(
            Header::parse(&[0x20, 1, 0, 2, 0, 0, 0, 0]),
            Err(Error::LengthTooShort {
                expected: 4,
                found: 2
            })
        );
        assert!(matches!(
            Header::parse(&[0x21, 1, 0, 12, 0, 0, 0, 0]),
            Err(Error::HeaderTruncated { expected: 16, .. })
        ));
    }

    #[test]
    fn message_type_round_trip() {
        for n in 0..=255u8 {
            assert_eq!(u8::from(MessageType::from(n)), n);
        }
    }
}
