//! PPP control packets, configuration options, PAP and CHAP packets.
//!
//! LCP, IPCP, PAP and CHAP share one packet layout (RFC 1661 section 5,
//! RFC 1334 section 2.2, RFC 1994 section 4):
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Code      |  Identifier   |            Length             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |    Data ...
//! +-+-+-+-+-+-+-+-+
//! ```
//!
//! Octets beyond Length are padding and ignored (RFC 1661 section 5).

use super::PppError;

/// LCP and NCP packet codes (RFC 1661 section 5). IPCP uses codes 1..=7 only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// 1
    ConfigureRequest,
    /// 2
    ConfigureAck,
    /// 3
    ConfigureNak,
    /// 4
    ConfigureReject,
    /// 5
    TerminateRequest,
    /// 6
    TerminateAck,
    /// 7
    CodeReject,
    /// 8 (LCP only)
    ProtocolReject,
    /// 9 (LCP only)
    EchoRequest,
    /// 10 (LCP only)
    EchoReply,
    /// 11 (LCP only)
    DiscardRequest,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for Code {
    fn from(v: u8) -> Self {
        match v {
            1 => Code::ConfigureRequest,
            2 => Code::ConfigureAck,
            3 => Code::ConfigureNak,
            4 => Code::ConfigureReject,
            5 => Code::TerminateRequest,
            6 => Code::TerminateAck,
            7 => Code::CodeReject,
            8 => Code::ProtocolReject,
            9 => Code::EchoRequest,
            10 => Code::EchoReply,
            11 => Code::DiscardRequest,
            n => Code::Unknown(n),
        }
    }
}

impl From<Code> for u8 {
    fn from(c: Code) -> u8 {
        match c {
            Code::ConfigureRequest => 1,
            Code::ConfigureAck => 2,
            Code::ConfigureNak => 3,
            Code::ConfigureReject => 4,
            Code::TerminateRequest => 5,
            Code::TerminateAck => 6,
            Code::CodeReject => 7,
            Code::ProtocolReject => 8,
            Code::EchoRequest => 9,
            Code::EchoReply => 10,
            Code::DiscardRequest => 11,
            Code::Unknown(n) => n,
        }
    }
}

/// LCP configuration option types (RFC 1661 section 6).
pub mod lcp_opt {
    /// Maximum-Receive-Unit (length 4).
    pub const MRU: u8 = 1;
    /// Async-Control-Character-Map (rejected: RFC 2516 section 7).
    pub const ACCM: u8 = 2;
    /// Authentication-Protocol (length 4, or 5 for CHAP with its algorithm).
    pub const AUTH_PROTOCOL: u8 = 3;
    /// Quality-Protocol.
    pub const QUALITY_PROTOCOL: u8 = 4;
    /// Magic-Number (length 6).
    pub const MAGIC_NUMBER: u8 = 5;
    /// Protocol-Field-Compression (rejected: RFC 2516 section 7).
    pub const PFC: u8 = 7;
    /// Address-and-Control-Field-Compression (rejected: RFC 2516 section 7).
    pub const ACFC: u8 = 8;
    /// CHAP Algorithm value for MD5 (RFC 1994 section 3).
    pub const CHAP_MD5: u8 = 5;
}

/// IPCP configuration option types (RFC 1332 section 3, RFC 1877 section 1).
pub mod ipcp_opt {
    /// IP-Addresses (deprecated, rejected).
    pub const IP_ADDRESSES: u8 = 1;
    /// IP-Compression-Protocol (rejected).
    pub const IP_COMPRESSION: u8 = 2;
    /// IP-Address (length 6).
    pub const IP_ADDRESS: u8 = 3;
    /// Primary-DNS-Address (length 6).
    pub const PRIMARY_DNS: u8 = 129;
    /// Primary-NBNS-Address (rejected).
    pub const PRIMARY_NBNS: u8 = 130;
    /// Secondary-DNS-Address (length 6).
    pub const SECONDARY_DNS: u8 = 131;
    /// Secondary-NBNS-Address (rejected).
    pub const SECONDARY_NBNS: u8 = 132;
}

/// IPv6CP configuration option types (RFC 5072 section 4).
pub mod ipv6cp_opt {
    /// Interface-Identifier (length 10: 8 bytes of identifier).
    pub const INTERFACE_IDENTIFIER: u8 = 1;
    /// IPv6-Compression-Protocol (rejected).
    pub const IPV6_COMPRESSION: u8 = 2;
}

/// PAP codes (RFC 1334 section 2.2).
pub mod pap_code {
    /// Authenticate-Request.
    pub const REQUEST: u8 = 1;
    /// Authenticate-Ack.
    pub const ACK: u8 = 2;
    /// Authenticate-Nak.
    pub const NAK: u8 = 3;
}

/// CHAP codes (RFC 1994 section 4).
pub mod chap_code {
    /// Challenge.
    pub const CHALLENGE: u8 = 1;
    /// Response.
    pub const RESPONSE: u8 = 2;
    /// Success.
    pub const SUCCESS: u8 = 3;
    /// Failure.
    pub const FAILURE: u8 = 4;
}

/// One control packet, data bounded by the Length field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Code (interpretation depends on the protocol).
    pub code: u8,
    /// Identifier.
    pub id: u8,
    /// The Data field: `Length - 4` bytes.
    pub data: &'a [u8],
}

/// Parses a control packet; bytes after Length (padding) are ignored.
pub fn parse_packet(b: &[u8]) -> Result<Packet<'_>, PppError> {
    if b.len() < 4 {
        return Err(PppError::Truncated {
            what: "control packet",
            expected: 4,
            found: b.len(),
        });
    }
    let length = u16::from_be_bytes([b[2], b[3]]);
    if usize::from(length) < 4 || usize::from(length) > b.len() {
        return Err(PppError::BadLength {
            length,
            available: b.len(),
        });
    }
    Ok(Packet {
        code: b[0],
        id: b[1],
        data: &b[4..usize::from(length)],
    })
}

/// Builds a control packet. `data` longer than 65531 bytes is truncated
/// (the Length field is 16 bits); callers never come close.
pub fn emit_packet(code: u8, id: u8, data: &[u8]) -> Vec<u8> {
    let data = &data[..data.len().min(usize::from(u16::MAX) - 4)];
    let mut v = Vec::with_capacity(4 + data.len());
    v.push(code);
    v.push(id);
    v.extend_from_slice(&((data.len() + 4) as u16).to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// One configuration option (RFC 1661 section 6): Type, Length, Data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigOption<'a> {
    /// Type.
    pub typ: u8,
    /// Data (Length - 2 bytes).
    pub value: &'a [u8],
    /// The whole option as received, header included.
    pub raw: &'a [u8],
}

impl ConfigOption<'_> {
    /// The value as a big-endian u16, if it is exactly 2 bytes.
    pub fn u16(&self) -> Option<u16> {
        <[u8; 2]>::try_from(self.value).ok().map(u16::from_be_bytes)
    }

    /// The value as a big-endian u32, if it is exactly 4 bytes.
    pub fn u32(&self) -> Option<u32> {
        <[u8; 4]>::try_from(self.value).ok().map(u32::from_be_bytes)
    }
}

/// Parses an option list; any option with Length < 2 or running past the
/// end makes the whole list malformed.
pub fn parse_options(b: &[u8]) -> Result<Vec<ConfigOption<'_>>, PppError> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < b.len() {
        let rest = &b[off..];
        if rest.len() < 2 {
            return Err(PppError::BadOption {
                offset: off,
                len: 0,
                remaining: rest.len(),
            });
        }
        let len = rest[1];
        if len < 2 || usize::from(len) > rest.len() {
            return Err(PppError::BadOption {
                offset: off,
                len,
                remaining: rest.len(),
            });
        }
        let raw = &rest[..usize::from(len)];
        out.push(ConfigOption {
            typ: raw[0],
            value: &raw[2..],
            raw,
        });
        off += usize::from(len);
    }
    Ok(out)
}

/// Appends one option to `out`. Values longer than 253 bytes are truncated
/// (the Length field is 8 bits); the options this crate sends are at most 4.
pub fn emit_option(out: &mut Vec<u8>, typ: u8, value: &[u8]) {
    let value = &value[..value.len().min(253)];
    out.push(typ);
    out.push(value.len() as u8 + 2);
    out.extend_from_slice(value);
}

/// PAP Authenticate-Request data (RFC 1334 section 2.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PapRequest<'a> {
    /// Peer-ID.
    pub peer_id: &'a [u8],
    /// Password.
    pub password: &'a [u8],
}

/// Parses the data of a PAP Authenticate-Request:
/// `Peer-ID Length, Peer-ID, Passwd-Length, Password`.
pub fn parse_pap_request(data: &[u8]) -> Result<PapRequest<'_>, PppError> {
    let (peer_id, rest) = length_prefixed(data, "PAP Peer-ID")?;
    let (password, _) = length_prefixed(rest, "PAP Password")?;
    Ok(PapRequest { peer_id, password })
}

/// Builds the data of a PAP Authenticate-Request (used by tests and load tools).
pub fn emit_pap_request(peer_id: &[u8], password: &[u8]) -> Vec<u8> {
    let peer_id = &peer_id[..peer_id.len().min(255)];
    let password = &password[..password.len().min(255)];
    let mut v = Vec::with_capacity(2 + peer_id.len() + password.len());
    v.push(peer_id.len() as u8);
    v.extend_from_slice(peer_id);
    v.push(password.len() as u8);
    v.extend_from_slice(password);
    v
}

/// CHAP Challenge or Response data (RFC 1994 sections 4.1):
/// `Value-Size, Value, Name` (Name fills the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChapValue<'a> {
    /// Challenge or response value.
    pub value: &'a [u8],
    /// Name of the sender.
    pub name: &'a [u8],
}

/// Parses the data of a CHAP Challenge or Response.
pub fn parse_chap_value(data: &[u8]) -> Result<ChapValue<'_>, PppError> {
    let (value, name) = length_prefixed(data, "CHAP Value")?;
    Ok(ChapValue { value, name })
}

/// Builds the data of a CHAP Challenge or Response.
pub fn emit_chap_value(value: &[u8], name: &[u8]) -> Vec<u8> {
    let value = &value[..value.len().min(255)];
    let mut v = Vec::with_capacity(1 + value.len() + name.len());
    v.push(value.len() as u8);
    v.extend_from_slice(value);
    v.extend_from_slice(name);
    v
}

fn length_prefixed<'a>(b: &'a [u8], what: &'static str) -> Result<(&'a [u8], &'a [u8]), PppError> {
    let Some((&len, rest)) = b.split_first() else {
        return Err(PppError::Truncated {
            what,
            expected: 1,
            found: 0,
        });
    };
    let len = usize::from(len);
    if len > rest.len() {
        return Err(PppError::BadField {
            what,
            len,
            remaining: rest.len(),
        });
    }
    Ok(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn packet_padding_ignored_and_bad_lengths_rejected() {
        let p = parse_packet(&[9, 7, 0, 8, 1, 2, 3, 4, 0xee, 0xee]).unwrap();
        assert_eq!((p.code, p.id, p.data), (9, 7, &[1u8, 2, 3, 4][..]));
        assert!(matches!(
            parse_packet(&[1, 1, 0]),
            Err(PppError::Truncated { .. })
        ));
        assert!(matches!(
            parse_packet(&[1, 1, 0, 3]),
            Err(PppError::BadLength { .. })
        ));
        assert!(parse_packet(&[1, 1, 0, 5, 0]).is_ok());
        assert!(matches!(
            parse_packet(&[1, 1, 0, 6, 0]),
            Err(PppError::BadLength { .. })
        ));
    }

    #[test]
    fn options_reject_bad_lengths() {
        assert!(parse_options(&[]).unwrap().is_empty());
        assert!(parse_options(&[1]).is_err());
        assert!(parse_options(&[1, 1]).is_err());
        assert!(parse_options(&[1, 0, 0, 0]).is_err());
        assert!(parse_options(&[1, 5, 0, 0]).is_err());
        let o = parse_options(&[1, 4, 5, 0xd4, 7, 2]).unwrap();
        assert_eq!(o[0].u16(), Some(1492));
        assert_eq!((o[1].typ, o[1].value), (7, &[][..]));
    }

    #[test]
    fn pap_and_chap_fields_bounded() {
        assert!(parse_pap_request(&[]).is_err());
        assert!(parse_pap_request(&[3, b'a', b'b']).is_err());
        assert!(parse_pap_request(&[1, b'a']).is_err());
        assert!(parse_pap_request(&[1, b'a', 2, b'x']).is_err());
        assert!(parse_chap_value(&[]).is_err());
        assert!(parse_chap_value(&[17; 10]).is_err());
        let c = parse_chap_value(&[2, 1, 2, b'n']).unwrap();
        assert_eq!((c.value, c.name), (&[1u8, 2][..], &b"n"[..]));
    }

    proptest! {
        #[test]
        fn packet_round_trip(code: u8, id: u8, data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let b = emit_packet(code, id, &data);
            let p = parse_packet(&b).unwrap();
            prop_assert_eq!((p.code, p.id, p.data), (code, id, &data[..]));
        }

        #[test]
        fn options_round_trip(opts in proptest::collection::vec(
            (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..8)) {
            let mut b = Vec::new();
            for (t, v) in &opts {
                emit_option(&mut b, *t, v);
            }
            let parsed = parse_options(&b).unwrap();
            prop_assert_eq!(parsed.len(), opts.len());
            for (p, (t, v)) in parsed.iter().zip(&opts) {
                prop_assert_eq!((p.typ, p.value), (*t, &v[..]));
            }
        }

        #[test]
        fn pap_round_trip(user in proptest::collection::vec(any::<u8>(), 0..255),
                          pw in proptest::collection::vec(any::<u8>(), 0..255)) {
            let b = emit_pap_request(&user, &pw);
            let r = parse_pap_request(&b).unwrap();
            prop_assert_eq!((r.peer_id, r.password), (&user[..], &pw[..]));
        }

        #[test]
        fn chap_round_trip(value in proptest::collection::vec(any::<u8>(), 0..255),
                           name in proptest::collection::vec(any::<u8>(), 0..64)) {
            let b = emit_chap_value(&value, &name);
            let r = parse_chap_value(&b).unwrap();
            prop_assert_eq!((r.value, r.name), (&value[..], &name[..]));
        }

        #[test]
        fn parsers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_packet(&b);
            let _ = parse_options(&b);
            let _ = parse_pap_request(&b);
            let _ = parse_chap_value(&b);
        }
    }
}
