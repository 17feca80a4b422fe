//! PPPoE framing (RFC 2516 section 4) and discovery tags (RFC 2516
//! appendix A, RFC 4638, TR-101).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  VER  | TYPE  |      CODE     |          SESSION_ID           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |            LENGTH             |           payload             ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Discovery payloads are a list of tags, each
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          TAG_TYPE             |        TAG_LENGTH             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          TAG_VALUE ...                                        ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::PppoeError;

/// EtherType of PPPoE discovery frames (RFC 2516 section 4).
pub const ETHERTYPE_DISCOVERY: u16 = 0x8863;
/// EtherType of PPPoE session frames (RFC 2516 section 4).
pub const ETHERTYPE_SESSION: u16 = 0x8864;
/// Length of the PPPoE header.
pub const HEADER_LEN: usize = 6;
/// The VER/TYPE octet: version 1, type 1.
pub const VER_TYPE: u8 = 0x11;
/// Largest PPPoE payload in a standard 1500-byte Ethernet frame.
pub const MAX_PAYLOAD_STANDARD: usize = 1500 - HEADER_LEN;
/// Largest PADI payload plus header: RFC 2516 section 5.1 keeps PADI at or
/// under 1484 octets so a relay can add a Relay-Session-Id.
pub const MAX_PADI_LEN: usize = 1484;
/// The PPP MRU every PPPoE peer supports (RFC 2516 section 7; RFC 4638).
pub const ETH_PPPOE_MTU: u16 = 1492;
/// IANA enterprise number of the Broadband Forum (formerly ADSL Forum /
/// DSL Forum), the vendor id of the TR-101 Vendor-Specific tag.
pub const VENDOR_BBF: u32 = 3561;

/// PPPoE CODE field (RFC 2516 section 5).
///
/// Values: PADI 0x09, PADO 0x07, PADR 0x19, PADS 0x65, PADT 0xa7, session
/// data 0x00.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// Active Discovery Initiation (0x09), host -> broadcast.
    Padi,
    /// Active Discovery Offer (0x07), AC -> host.
    Pado,
    /// Active Discovery Request (0x19), host -> AC.
    Padr,
    /// Active Discovery Session-confirmation (0x65), AC -> host.
    Pads,
    /// Active Discovery Terminate (0xa7), either way.
    Padt,
    /// Session data (0x00), only on [`ETHERTYPE_SESSION`].
    Session,
    /// Any other code.
    Unknown(u8),
}

impl From<u8> for Code {
    fn from(v: u8) -> Self {
        match v {
            0x09 => Code::Padi,
            0x07 => Code::Pado,
            0x19 => Code::Padr,
            0x65 => Code::Pads,
            0xa7 => Code::Padt,
            0x00 => Code::Session,
            other => Code::Unknown(other),
        }
    }
}

impl From<Code> for u8 {
    fn from(c: Code) -> u8 {
        match c {
            Code::Padi => 0x09,
            Code::Pado => 0x07,
            Code::Padr => 0x19,
            Code::Pads => 0x65,
            Code::Padt => 0xa7,
            Code::Session => 0x00,
            Code::Unknown(v) => v,
        }
    }
}

/// A decoded PPPoE header. VER and TYPE are checked to be 1 by [`parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// CODE.
    pub code: Code,
    /// SESSION_ID (host order).
    pub session_id: u16,
    /// LENGTH: payload bytes after the header.
    pub length: u16,
}

/// Decode the PPPoE header of an Ethernet payload.
///
/// Returns the header and the payload bounded by LENGTH (Ethernet padding
/// after it is ignored).
pub fn parse(payload: &[u8]) -> Result<(Header, &[u8]), PppoeError> {
    if payload.len() < HEADER_LEN {
        return Err(PppoeError::TooShort {
            found: payload.len(),
        });
    }
    if payload[0] != VER_TYPE {
        return Err(PppoeError::BadVersionType(payload[0]));
    }
    let length = u16::from_be_bytes([payload[4], payload[5]]);
    let rest = &payload[HEADER_LEN..];
    let body = rest
        .get(..usize::from(length))
        .ok_or(PppoeError::LengthExceedsFrame {
            length,
            available: rest.len(),
        })?;
    let header = Header {
        code: Code::from(payload[1]),
        session_id: u16::from_be_bytes([payload[2], payload[3]]),
        length,
    };
    Ok((header, body))
}

/// Encode a PPPoE header followed by `payload`.
///
/// A payload longer than 65,535 bytes (which no Ethernet frame carries) is
/// cut to that length so LENGTH stays truthful.
pub fn emit(code: Code, session_id: u16, payload: &[u8]) -> Vec<u8> {
    let payload = &payload[..payload.len().min(usize::from(u16::MAX))];
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.push(VER_TYPE);
    out.push(code.into());
    out.extend_from_slice(&session_id.to_be_bytes());
    // Fits: cut to u16::MAX above.
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// TAG_TYPE values (RFC 2516 appendix A; RFC 4638 section 4).
pub mod tag_type {
    /// End-Of-List.
    pub const END_OF_LIST: u16 = 0x0000;
    /// Service-Name.
    pub const SERVICE_NAME: u16 = 0x0101;
    /// AC-Name.
    pub const AC_NAME: u16 = 0x0102;
    /// Host-Uniq.
    pub const HOST_UNIQ: u16 = 0x0103;
    /// AC-Cookie.
    pub const AC_COOKIE: u16 = 0x0104;
    /// Vendor-Specific.
    pub const VENDOR_SPECIFIC: u16 = 0x0105;
    /// Relay-Session-Id.
    pub const RELAY_SESSION_ID: u16 = 0x0110;
    /// PPP-Max-Payload (RFC 4638).
    pub const PPP_MAX_PAYLOAD: u16 = 0x0120;
    /// Service-Name-Error.
    pub const SERVICE_NAME_ERROR: u16 = 0x0201;
    /// AC-System-Error.
    pub const AC_SYSTEM_ERROR: u16 = 0x0202;
    /// Generic-Error.
    pub const GENERIC_ERROR: u16 = 0x0203;
}

/// One discovery tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tag {
    /// End-Of-List (0x0000): no tags follow; its length must be 0.
    EndOfList,
    /// Service-Name (0x0101): UTF-8 service name, empty = any service.
    ServiceName(Vec<u8>),
    /// AC-Name (0x0102): the access concentrator's name.
    AcName(Vec<u8>),
    /// Host-Uniq (0x0103): opaque host data, echoed by the AC.
    HostUniq(Vec<u8>),
    /// AC-Cookie (0x0104): opaque AC data, echoed by the host in PADR.
    AcCookie(Vec<u8>),
    /// Vendor-Specific (0x0105): a 4-byte vendor id (first octet 0, then
    /// the 3-octet SMI enterprise code) and vendor data.
    VendorSpecific {
        /// Vendor id, for example [`VENDOR_BBF`].
        vendor: u32,
        /// The bytes after the vendor id.
        data: Vec<u8>,
    },
    /// Relay-Session-Id (0x0110): added by a relay, echoed by the AC.
    RelaySessionId(Vec<u8>),
    /// PPP-Max-Payload (0x0120, RFC 4638): the largest PPP payload the
    /// host can send and receive; exactly 2 bytes.
    PppMaxPayload(u16),
    /// Service-Name-Error (0x0201), optional UTF-8 explanation.
    ServiceNameError(Vec<u8>),
    /// AC-System-Error (0x0202), optional UTF-8 explanation.
    AcSystemError(Vec<u8>),
    /// Generic-Error (0x0203), optional UTF-8 explanation.
    GenericError(Vec<u8>),
    /// Any other tag, kept as is.
    Unknown {
        /// TAG_TYPE.
        typ: u16,
        /// TAG_VALUE.
        value: Vec<u8>,
    },
}

impl Tag {
    /// This tag's TAG_TYPE.
    pub fn typ(&self) -> u16 {
        use tag_type::*;
        match self {
            Tag::EndOfList => END_OF_LIST,
            Tag::ServiceName(_) => SERVICE_NAME,
            Tag::AcName(_) => AC_NAME,
            Tag::HostUniq(_) => HOST_UNIQ,
            Tag::AcCookie(_) => AC_COOKIE,
            Tag::VendorSpecific { .. } => VENDOR_SPECIFIC,
            Tag::RelaySessionId(_) => RELAY_SESSION_ID,
            Tag::PppMaxPayload(_) => PPP_MAX_PAYLOAD,
            Tag::ServiceNameError(_) => SERVICE_NAME_ERROR,
            Tag::AcSystemError(_) => AC_SYSTEM_ERROR,
            Tag::GenericError(_) => GENERIC_ERROR,
            Tag::Unknown { typ, .. } => *typ,
        }
    }

    fn decode(typ: u16, value: &[u8]) -> Result<Tag, PppoeError> {
        use tag_type::*;
        // Fits: value comes from a u16 TAG_LENGTH.
        let bad = || PppoeError::BadTagLength {
            typ,
            len: value.len() as u16,
        };
        Ok(match typ {
            END_OF_LIST if value.is_empty() => Tag::EndOfList,
            END_OF_LIST => return Err(bad()),
            SERVICE_NAME => Tag::ServiceName(value.to_vec()),
            AC_NAME => Tag::AcName(value.to_vec()),
            HOST_UNIQ => Tag::HostUniq(value.to_vec()),
            AC_COOKIE => Tag::AcCookie(value.to_vec()),
            VENDOR_SPECIFIC => match value {
                [a, b, c, d, data @ ..] => Tag::VendorSpecific {
                    vendor: u32::from_be_bytes([*a, *b, *c, *d]),
                    data: data.to_vec(),
                },
                _ => return Err(bad()),
            },
            RELAY_SESSION_ID => Tag::RelaySessionId(value.to_vec()),
            PPP_MAX_PAYLOAD => match value {
                [a, b] => Tag::PppMaxPayload(u16::from_be_bytes([*a, *b])),
                _ => return Err(bad()),
            },
            SERVICE_NAME_ERROR => Tag::ServiceNameError(value.to_vec()),
            AC_SYSTEM_ERROR => Tag::AcSystemError(value.to_vec()),
            GENERIC_ERROR => Tag::GenericError(value.to_vec()),
            _ => Tag::Unknown {
                typ,
                value: value.to_vec(),
            },
        })
    }

    fn emit_into(&self, out: &mut Vec<u8>) {
        let mut put = |value: &[u8], prefix: &[u8]| {
            // A value that cannot be described by TAG_LENGTH is cut to fit.
            let room = usize::from(u16::MAX) - prefix.len();
            let value = &value[..value.len().min(room)];
            out.extend_from_slice(&self.typ().to_be_bytes());
            out.extend_from_slice(&((prefix.len() + value.len()) as u16).to_be_bytes());
            out.extend_from_slice(prefix);
            out.extend_from_slice(value);
        };
        match self {
            Tag::EndOfList => put(&[], &[]),
            Tag::ServiceName(v)
            | Tag::AcName(v)
            | Tag::HostUniq(v)
            | Tag::AcCookie(v)
            | Tag::RelaySessionId(v)
            | Tag::ServiceNameError(v)
            | Tag::AcSystemError(v)
            | Tag::GenericError(v)
            | Tag::Unknown { value: v, .. } => put(v, &[]),
            Tag::VendorSpecific { vendor, data } => put(data, &vendor.to_be_bytes()),
            Tag::PppMaxPayload(m) => put(&m.to_be_bytes(), &[]),
        }
    }
}

/// Decode a discovery payload into its tags.
///
/// Parsing stops after an End-Of-List tag (which is returned); anything
/// after it is ignored as RFC 2516 appendix A allows. Tags with a fixed
/// size (End-Of-List, PPP-Max-Payload, Vendor-Specific's vendor id) are
/// checked.
pub fn parse_tags(b: &[u8]) -> Result<Vec<Tag>, PppoeError> {
    let mut tags = Vec::new();
    let mut off = 0;
    while off < b.len() {
        let hdr = b
            .get(off..off + 4)
            .ok_or(PppoeError::TagTruncated { offset: off })?;
        let typ = u16::from_be_bytes([hdr[0], hdr[1]]);
        let len = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
        let value = b
            .get(off + 4..off + 4 + len)
            .ok_or(PppoeError::TagTruncated { offset: off })?;
        let tag = Tag::decode(typ, value)?;
        off += 4 + len;
        let end = tag == Tag::EndOfList;
        tags.push(tag);
        if end {
            break;
        }
    }
    Ok(tags)
}

/// Encode tags in order. Values longer than a TAG_LENGTH can describe are
/// cut to fit.
pub fn emit_tags(tags: &[Tag]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in tags {
        t.emit_into(&mut out);
    }
    out
}

/// TR-101 access-loop sub-option types inside the BBF Vendor-Specific tag
/// (TR-101 section 3.9.2; the same codes as DHCP option 82 sub-option 9).
pub mod sub_option {
    /// Agent-Circuit-Id (up to 63 bytes).
    pub const CIRCUIT_ID: u8 = 0x01;
    /// Agent-Remote-Id (up to 63 bytes).
    pub const REMOTE_ID: u8 = 0x02;
    /// Actual-Data-Rate-Upstream, kbit/s, 4 bytes.
    pub const ACTUAL_RATE_UP: u8 = 0x81;
    /// Actual-Data-Rate-Downstream, kbit/s, 4 bytes.
    pub const ACTUAL_RATE_DOWN: u8 = 0x82;
}

/// Access-loop identification inserted by the access node (TR-101 section
/// 3.9.2) into PADI/PADR as a Vendor-Specific tag with vendor id
/// [`VENDOR_BBF`].
///
/// The tag's data is a list of sub-options `type (1) | length (1) | value`.
/// Sub-options 0x83..=0x90 (minimum/attainable/maximum rates, interleaving
/// delays, access-loop encapsulation) are checked for framing and skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessLoop {
    /// Agent-Circuit-Id (sub-option 0x01).
    pub circuit_id: Option<Vec<u8>>,
    /// Agent-Remote-Id (sub-option 0x02).
    pub remote_id: Option<Vec<u8>>,
    /// Actual upstream data rate in kbit/s (sub-option 0x81).
    pub actual_rate_up: Option<u32>,
    /// Actual downstream data rate in kbit/s (sub-option 0x82).
    pub actual_rate_down: Option<u32>,
}

impl AccessLoop {
    /// Decode the data of a BBF Vendor-Specific tag (after the vendor id).
    ///
    /// A repeated sub-option keeps its last value. Rate sub-options must be
    /// exactly 4 bytes.
    pub fn parse(data: &[u8]) -> Result<AccessLoop, PppoeError> {
        let mut al = AccessLoop::default();
        let mut off = 0;
        while off < data.len() {
            let (typ, len) = match data.get(off..off + 2) {
                Some(&[t, l]) => (t, l),
                _ => return Err(PppoeError::SubOptionTruncated { offset: off }),
            };
            let value = data
                .get(off + 2..off + 2 + usize::from(len))
                .ok_or(PppoeError::SubOptionTruncated { offset: off })?;
            let rate = || match value {
                [a, b, c, d] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
                _ => Err(PppoeError::BadSubOptionLength { typ, len }),
            };
            match typ {
                sub_option::CIRCUIT_ID => al.circuit_id = Some(value.to_vec()),
                sub_option::REMOTE_ID => al.remote_id = Some(value.to_vec()),
                sub_option::ACTUAL_RATE_UP => al.actual_rate_up = Some(rate()?),
                sub_option::ACTUAL_RATE_DOWN => al.actual_rate_down = Some(rate()?),
                _ => {}
            }
            off += 2 + usize::from(len);
        }
        Ok(al)
    }

    /// The access loop of a tag list: the first Vendor-Specific tag with
    /// vendor id [`VENDOR_BBF`] decoded, or an empty `AccessLoop` if there
    /// is none.
    pub fn from_tags(tags: &[Tag]) -> Result<AccessLoop, PppoeError> {
        tags.iter()
            .find_map(|t| match t {
                Tag::VendorSpecific { vendor, data } if *vendor == VENDOR_BBF => Some(data),
                _ => None,
            })
            .map_or(Ok(AccessLoop::default()), |d| AccessLoop::parse(d))
    }

    /// True if no field is set.
    pub fn is_empty(&self) -> bool {
        *self == AccessLoop::default()
    }

    /// Encode as a BBF Vendor-Specific tag, as an access node inserts it.
    /// Identifiers longer than 255 bytes are cut to fit a sub-option.
    pub fn to_tag(&self) -> Tag {
        let mut data = Vec::new();
        let mut put = |typ: u8, v: &[u8]| {
            let v = &v[..v.len().min(255)];
            data.push(typ);
            data.push(v.len() as u8);
            data.extend_from_slice(v);
        };
        if let Some(c) = &self.circuit_id {
            put(sub_option::CIRCUIT_ID, c);
        }
        if let Some(r) = &self.remote_id {
            put(sub_option::REMOTE_ID, r);
        }
        if let Some(r) = self.actual_rate_up {
            put(sub_option::ACTUAL_RATE_UP, &r.to_be_bytes());
        }
        if let Some(r) = self.actual_rate_down {
            put(sub_option::ACTUAL_RATE_DOWN, &r.to_be_bytes());
        }
        Tag::VendorSpecific {
            vendor: VENDOR_BBF,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn codes_round_trip() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(Code::from(v)), v);
        }
        assert_eq!(Code::from(0x09), Code::Padi);
        assert_eq!(Code::from(0x07), Code::Pado);
        assert_eq!(Code::from(0x19), Code::Padr);
        assert_eq!(Code::from(0x65), Code::Pads);
        assert_eq!(Code::from(0xa7), Code::Padt);
        assert_eq!(Code::from(0x00), Code::Session);
    }

    #[test]
    fn header_checks() {
        assert_eq!(
            parse(&[0x11, 9, 0, 0, 0]),
            Err(PppoeError::TooShort { found: 5 })
        );
        assert_eq!(
            parse(&[0x21, 9, 0, 0, 0, 0]),
            Err(PppoeError::BadVersionType(0x21))
        );
        assert_eq!(
            parse(&[0x11, 9, 0, 0, 0, 3, 1, 2]),
            Err(PppoeError::LengthExceedsFrame {
                length: 3,
                available: 2
            })
        );
        // Ethernet padding after LENGTH is cut off.
        let (h, body) = parse(&[0x11, 0xa7, 0x12, 0x34, 0, 1, 0xee, 0, 0, 0]).unwrap();
        assert_eq!(
            h,
            Header {
                code: Code::Padt,
                session_id: 0x1234,
                length: 1
            }
        );
        assert_eq!(body, &[0xee]);
    }

    #[test]
    fn tag_errors() {
        // Header cut short.
        assert_eq!(
            parse_tags(&[1, 1, 0]),
            Err(PppoeError::TagTruncated { offset: 0 })
        );
        // Value runs past the end.
        assert_eq!(
            parse_tags(&[1, 1, 0, 0, 1, 3, 0, 2, 9]),
            Err(PppoeError::TagTruncated { offset: 4 })
        );
        assert_eq!(
            parse_tags(&[1, 0x20, 0, 1, 5]),
            Err(PppoeError::BadTagLength { typ: 0x120, len: 1 })
        );
        assert_eq!(
            parse_tags(&[1, 5, 0, 3, 0, 0, 0x0d]),
            Err(PppoeError::BadTagLength { typ: 0x105, len: 3 })
        );
        assert_eq!(
            parse_tags(&[0, 0, 0, 1, 0]),
            Err(PppoeError::BadTagLength { typ: 0, len: 1 })
        );
        // End-Of-List ends the list, garbage after it is ignored.
        assert_eq!(
            parse_tags(&[1, 1, 0, 0, 0, 0, 0, 0, 0xff]),
            Ok(vec![Tag::ServiceName(vec![]), Tag::EndOfList])
        );
    }

    #[test]
    fn access_loop_golden() {
        // Vendor-Specific, vendor 3561, circuit "eth 1/1/1:100", remote
        // "cpe-1", rates 1024 up / 16384 down.
        let bytes: Vec<u8> = [
            &[0x01, 0x05, 0x00, 0x26][..],
            &[0x00, 0x00, 0x0d, 0xe9],
            &[0x01, 13],
            b"eth 1/1/1:100",
            &[0x02, 5],
            b"cpe-1",
            &[0x81, 4, 0, 0, 0x04, 0x00],
            &[0x82, 4, 0, 0, 0x40, 0x00],
        ]
        .concat();
        let tags = parse_tags(&bytes).unwrap();
        let al = AccessLoop::from_tags(&tags).unwrap();
        assert_eq!(al.circuit_id.as_deref(), Some(&b"eth 1/1/1:100"[..]));
        assert_eq!(al.remote_id.as_deref(), Some(&b"cpe-1"[..]));
        assert_eq!(al.actual_rate_up, Some(1024));
        assert_eq!(al.actual_rate_down, Some(16384));
        assert_eq!(emit_tags(&[al.to_tag()]), bytes);
    }

    #[test]
    fn access_loop_errors() {
        assert_eq!(
            AccessLoop::parse(&[0x01]),
            Err(PppoeError::SubOptionTruncated { offset: 0 })
        );
        assert_eq!(
            AccessLoop::parse(&[0x01, 3, b'a']),
            Err(PppoeError::SubOptionTruncated { offset: 0 })
        );
        assert_eq!(
            AccessLoop::parse(&[0x81, 2, 0, 1]),
            Err(PppoeError::BadSubOptionLength { typ: 0x81, len: 2 })
        );
        // Unknown and unused sub-options are skipped.
        assert_eq!(
            AccessLoop::parse(&[0x90, 3, 1, 2, 3, 0x85, 4, 0, 0, 0, 1]),
            Ok(AccessLoop::default())
        );
        // Other vendors are not access loops.
        let other = Tag::VendorSpecific {
            vendor: 9,
            data: vec![0x81],
        };
        assert_eq!(AccessLoop::from_tags(&[other]), Ok(AccessLoop::default()));
    }

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..max)
    }

    fn tag() -> impl Strategy<Value = Tag> {
        use tag_type::*;
        prop_oneof![
            bytes(40).prop_map(Tag::ServiceName),
            bytes(40).prop_map(Tag::AcName),
            bytes(40).prop_map(Tag::HostUniq),
            bytes(40).prop_map(Tag::AcCookie),
            (any::<u32>(), bytes(40))
                .prop_map(|(vendor, data)| Tag::VendorSpecific { vendor, data }),
            bytes(40).prop_map(Tag::RelaySessionId),
            any::<u16>().prop_map(Tag::PppMaxPayload),
            bytes(40).prop_map(Tag::ServiceNameError),
            bytes(40).prop_map(Tag::AcSystemError),
            bytes(40).prop_map(Tag::GenericError),
            (any::<u16>(), bytes(40))
                .prop_filter("not a known type", |(t, _)| ![
                    END_OF_LIST,
                    SERVICE_NAME,
                    AC_NAME,
                    HOST_UNIQ,
                    AC_COOKIE,
                    VENDOR_SPECIFIC,
                    RELAY_SESSION_ID,
                    PPP_MAX_PAYLOAD,
                    SERVICE_NAME_ERROR,
                    AC_SYSTEM_ERROR,
                    GENERIC_ERROR
                ]
                .contains(t))
                .prop_map(|(typ, value)| Tag::Unknown { typ, value }),
        ]
    }

    proptest! {
        #[test]
        fn tags_round_trip(tags in proptest::collection::vec(tag(), 0..12), eol in any::<bool>()) {
            let mut tags = tags;
            if eol {
                tags.push(Tag::EndOfList);
            }
            let wire = emit_tags(&tags);
            prop_assert_eq!(parse_tags(&wire), Ok(tags.clone()));
            // And inside a PPPoE header.
            let frame = emit(Code::Padr, 0, &wire);
            let (h, body) = parse(&frame).unwrap();
            prop_assert_eq!(h.code, Code::Padr);
            prop_assert_eq!(usize::from(h.length), wire.len());
            prop_assert_eq!(body, &wire[..]);
        }

        #[test]
        fn access_loop_round_trip(
            circuit_id in proptest::option::of(bytes(64)),
            remote_id in proptest::option::of(bytes(64)),
            actual_rate_up in proptest::option::of(any::<u32>()),
            actual_rate_down in proptest::option::of(any::<u32>()),
        ) {
            let al = AccessLoop { circuit_id, remote_id, actual_rate_up, actual_rate_down };
            let wire = emit_tags(&[Tag::HostUniq(vec![1]), al.to_tag()]);
            let tags = parse_tags(&wire).unwrap();
            prop_assert_eq!(AccessLoop::from_tags(&tags), Ok(al));
        }

        #[test]
        fn parsers_never_panic(b in bytes(200)) {
            let _ = parse_tags(&b);
            let _ = AccessLoop::parse(&b);
            if let Ok((_, body)) = parse(&b) {
                let _ = parse_tags(body);
            }
        }
    }
}
