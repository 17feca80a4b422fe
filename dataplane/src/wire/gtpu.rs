//! GTP-U header (3GPP TS 29.281 section 5), as carried in UDP port 2152.
//!
//! ```text
//!        7   6   5   4   3   2   1   0
//!      +---+---+---+---+---+---+---+---+
//!  1   |  Version  | PT| * | E | S | PN|   Version = 1, PT = 1 (GTP, not GTP')
//!  2   |          Message Type         |   255 = G-PDU
//!  3-4 |   Length (after octet 8)      |
//!  5-8 | Tunnel Endpoint Identifier    |
//!  9-10|   Sequence Number  (if E|S|PN)|
//!  11  |   N-PDU Number     (if E|S|PN)|
//!  12  | Next Ext Header Type (E|S|PN) |
//!      +-------------------------------+
//! ```
//! Each extension header (section 5.2.1) is: a length octet in units of 4 octets covering
//! the whole extension header, the content, and the next extension header type (0 = none).

use alloc::vec::Vec;

use zerocopy::network_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{Error, Result, check_len};

/// Length of the mandatory header.
pub const HEADER_LEN: usize = 8;
/// UDP port for GTP-U.
pub const UDP_PORT: u16 = 2152;
/// Message type of a G-PDU (user data).
pub const MSG_G_PDU: u8 = 255;
/// Message type of an Echo Request.
pub const MSG_ECHO_REQUEST: u8 = 1;
/// Message type of an Echo Response.
pub const MSG_ECHO_RESPONSE: u8 = 2;
/// Message type of an End Marker.
pub const MSG_END_MARKER: u8 = 254;

const FLAG_PN: u8 = 0x01;
const FLAG_S: u8 = 0x02;
const FLAG_E: u8 = 0x04;
const FLAG_PT: u8 = 0x10;

/// Zero-copy view of the 8-byte mandatory header.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Header {
    flags: u8,
    msg_type: u8,
    length: U16,
    teid: U32,
}

impl Header {
    /// Borrows the mandatory header at the start of `buf` (no validation beyond length).
    pub fn parse(buf: &[u8]) -> Result<&Header> {
        check_len(buf, HEADER_LEN)?;
        Header::ref_from_prefix(buf)
            .map(|(h, _)| h)
            .map_err(|_| Error::Malformed { what: "gtpu" })
    }
    /// Version (expected 1).
    #[inline]
    pub fn version(&self) -> u8 {
        self.flags >> 5
    }
    /// Protocol type bit (1 = GTP).
    #[inline]
    pub fn protocol_type(&self) -> bool {
        self.flags & FLAG_PT != 0
    }
    /// True if any of E, S, PN is set (the 4 optional octets are present).
    #[inline]
    pub fn has_optional(&self) -> bool {
        self.flags & (FLAG_E | FLAG_S | FLAG_PN) != 0
    }
    /// Extension header flag.
    #[inline]
    pub fn has_extension(&self) -> bool {
        self.flags & FLAG_E != 0
    }
    /// Message type.
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.msg_type
    }
    /// Length of everything after the mandatory header.
    #[inline]
    pub fn length(&self) -> u16 {
        self.length.get()
    }
    /// Tunnel endpoint identifier.
    #[inline]
    pub fn teid(&self) -> u32 {
        self.teid.get()
    }
}

/// High-level GTP-U header: message type and TEID. Optional fields and extension headers are
/// skipped on parse and never emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GtpuRepr {
    /// Message type ([`MSG_G_PDU`] = 255 for user data).
    pub msg_type: u8,
    /// Tunnel endpoint identifier.
    pub teid: u32,
}

impl GtpuRepr {
    /// A G-PDU on `teid`.
    pub const fn g_pdu(teid: u32) -> Self {
        GtpuRepr {
            msg_type: MSG_G_PDU,
            teid,
        }
    }

    /// Parses a GTP-U message (a UDP payload). Returns the header and the offset in `buf` of
    /// the inner payload, after the optional sequence/N-PDU/next-type octets and all extension
    /// headers. The payload ends at `8 + length`; see [`GtpuRepr::parse_payload`] for the slice.
    ///
    /// Errors: version other than 1 or PT = 0 (GTP') -> `Unsupported`; length beyond the
    /// buffer -> `Truncated`; an extension header of length 0 or running past the message, or
    /// optional octets announced but not covered by the length -> `Malformed`.
    pub fn parse(buf: &[u8]) -> Result<(GtpuRepr, usize)> {
        let h = Header::parse(buf)?;
        if h.version() != 1 {
            return Err(Error::Unsupported {
                what: "gtp version (expected 1)",
            });
        }
        if !h.protocol_type() {
            return Err(Error::Unsupported {
                what: "gtp protocol type (expected PT=1, found GTP')",
            });
        }
        let end = HEADER_LEN + usize::from(h.length());
        check_len(buf, end)?;
        let mut offset = HEADER_LEN;
        if h.has_optional() {
            // Sequence number (2), N-PDU number (1), next extension header type (1).
            if end < HEADER_LEN + 4 {
                return Err(Error::Malformed {
                    what: "gtp length (optional fields announced but not present)",
                });
            }
            let mut next = buf[HEADER_LEN + 3];
            offset = HEADER_LEN + 4;
            if !h.has_extension() {
                // Section 5.1: the next type is only meaningful with E = 1.
                next = 0;
            }
            while next != 0 {
                let len_units =
                    *buf.get(offset)
                        .filter(|_| offset < end)
                        .ok_or(Error::Malformed {
                            what: "gtp extension header (runs past the message)",
                        })?;
                if len_units == 0 {
                    return Err(Error::Malformed {
                        what: "gtp extension header length (expected > 0)",
                    });
                }
                let ext_len = usize::from(len_units) * 4;
                if offset + ext_len > end {
                    return Err(Error::Malformed {
                        what: "gtp extension header (runs past the message)",
                    });
                }
                next = buf[offset + ext_len - 1];
                offset += ext_len;
            }
        }
        Ok((
            GtpuRepr {
                msg_type: h.msg_type(),
                teid: h.teid(),
            },
            offset,
        ))
    }

    /// [`GtpuRepr::parse`] returning the inner payload slice (exactly the bytes covered by the
    /// length field after the optional fields and extension headers).
    pub fn parse_payload(buf: &[u8]) -> Result<(GtpuRepr, &[u8])> {
        let (repr, offset) = Self::parse(buf)?;
        let end = HEADER_LEN + usize::from(Header::parse(buf)?.length());
        Ok((repr, &buf[offset..end]))
    }

    /// Mandatory header length: 8.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 8-byte header at the start of `buf`, where `buf` is the whole GTP-U message:
    /// the length field is set to `buf.len() - 8` (the payload must already be, or later be
    /// placed, in `buf[8..]`). Flags are version 1, PT 1, no optional fields.
    /// Panics if `buf` is shorter than 8 bytes or longer than 65535 + 8.
    pub fn emit(&self, buf: &mut [u8]) {
        let payload_len = buf.len() - HEADER_LEN;
        let payload_len = u16::try_from(payload_len).expect("gtp-u payload longer than 65535");
        self.emit_header(&mut buf[..HEADER_LEN], payload_len);
    }

    /// Writes the 8-byte header into `buf[..8]` with an explicit payload length.
    /// Panics if `buf` is shorter than 8 bytes.
    pub fn emit_header(&self, buf: &mut [u8], payload_len: u16) {
        buf[0] = 0x20 | FLAG_PT;
        buf[1] = self.msg_type;
        buf[2..4].copy_from_slice(&payload_len.to_be_bytes());
        buf[4..8].copy_from_slice(&self.teid.to_be_bytes());
    }

    /// Builds a complete GTP-U message: header followed by `payload`.
    /// Returns `Err(BufferTooSmall)` if the payload is longer than 65535 bytes.
    pub fn encapsulate(&self, payload: &[u8]) -> Result<Vec<u8>> {
        let len = u16::try_from(payload.len()).map_err(|_| Error::BufferTooSmall {
            needed: payload.len(),
            capacity: usize::from(u16::MAX),
        })?;
        let mut out = alloc::vec![0u8; HEADER_LEN + payload.len()];
        self.emit_header(&mut out, len);
        out[HEADER_LEN..].copy_from_slice(payload);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_util::hex;
    use proptest::prelude::*;

    /// G-PDU, TEID 1, carrying a 28-byte IPv4/ICMP packet, no optional fields.
    const G_PDU: &str = "30ff 001c 00000001
        4500 001c 0001 0000 4001 f98d 0a00 0001 0a00 0002 0800 f7ff 0000 0000";

    /// 5G N3 G-PDU (TEID 0x12345678) with sequence number flag, N-PDU, and one PDU Session
    /// Container extension header (type 0x85, QFI 9), then the same inner packet.
    const G_PDU_EXT: &str = "34ff 0024 12345678 0000 00 85 01 00 09 00
        4500 001c 0001 0000 4001 f98d 0a00 0001 0a00 0002 0800 f7ff 0000 0000";

    #[test]
    fn golden_plain() {
        let b = hex(G_PDU);
        let (r, off) = GtpuRepr::parse(&b).unwrap();
        assert_eq!(r, GtpuRepr::g_pdu(1));
        assert_eq!(off, 8);
        assert_eq!(b[off], 0x45);
        let (_, p) = GtpuRepr::parse_payload(&b).unwrap();
        assert_eq!(p.len(), 28);
        let built = r.encapsulate(&b[8..]).unwrap();
        assert_eq!(built, b);
        let mut again = b.clone();
        r.emit(&mut again);
        assert_eq!(again, b);
    }

    #[test]
    fn golden_with_extension_header() {
        let b = hex(G_PDU_EXT);
        let (r, off) = GtpuRepr::parse(&b).unwrap();
        assert_eq!(
            r,
            GtpuRepr {
                msg_type: 255,
                teid: 0x1234_5678
            }
        );
        assert_eq!(off, 16);
        let (_, p) = GtpuRepr::parse_payload(&b).unwrap();
        assert_eq!(p.len(), 28);
        assert_eq!(p[0], 0x45);
    }

    #[test]
    fn sequence_only_ignores_next_type() {
        // S=1, E=0: next-type octet is not interpreted.
        let b = hex("32ff 0008 00000007 0001 00 85 4500 0000");
        let (r, off) = GtpuRepr::parse(&b).unwrap();
        assert_eq!(r.teid, 7);
        assert_eq!(off, 12);
    }

    #[test]
    fn rejects_bad_messages() {
        let good = hex(G_PDU_EXT);
        let mut v2 = good.clone();
        v2[0] = 0x54; // version 2
        assert!(matches!(
            GtpuRepr::parse(&v2),
            Err(Error::Unsupported { .. })
        ));
        let mut gtp_prime = good.clone();
        gtp_prime[0] = 0x24;
        assert!(GtpuRepr::parse(&gtp_prime).is_err());
        let mut long = good.clone();
        long[3] = 0xff;
        assert!(matches!(
            GtpuRepr::parse(&long),
            Err(Error::Truncated { .. })
        ));
        let mut zero_ext = good.clone();
        zero_ext[12] = 0;
        assert!(matches!(
            GtpuRepr::parse(&zero_ext),
            Err(Error::Malformed { .. })
        ));
        let mut past_end = good.clone();
        past_end[12] = 0x30;
        assert!(GtpuRepr::parse(&past_end).is_err());
        let mut no_opt = hex("34ff 0002 00000001 0000");
        assert!(GtpuRepr::parse(&no_opt).is_err());
        no_opt[3] = 4;
        assert!(GtpuRepr::parse(&no_opt).is_err());
        assert!(GtpuRepr::parse(&good[..7]).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(t in any::<u8>(), teid in any::<u32>(), payload in proptest::collection::vec(any::<u8>(), 0..128)) {
            let r = GtpuRepr { msg_type: t, teid };
            let b = r.encapsulate(&payload).unwrap();
            let (p, off) = GtpuRepr::parse(&b).unwrap();
            prop_assert_eq!(p, r);
            prop_assert_eq!(&b[off..], &payload[..]);
        }

        #[test]
        fn parse_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok((_, off)) = GtpuRepr::parse(&b) {
                prop_assert!(off <= b.len());
            }
        }
    }
}
