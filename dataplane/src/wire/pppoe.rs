//! PPPoE session stage header (RFC 2516 section 4) followed by the PPP protocol field
//! (RFC 1661 section 2), as the fast path sees a subscriber's PPP packet: EtherType 0x8864,
//! code 0, and the PPP packet with its 2-octet protocol field (no address/control field and
//! no protocol compression on PPPoE, RFC 2516 section 7).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  VER  | TYPE  |      CODE     |          SESSION_ID           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |            LENGTH             |         PPP protocol          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         PPP information (LENGTH - 2 octets) ...
//! ```
//!
//! VER = TYPE = 1; CODE = 0 in the session stage; LENGTH counts the PPP packet (protocol
//! field included), not the PPPoE header nor Ethernet padding.

use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{Error, Result, check_len, enum_with_unknown};

/// Length of the PPPoE header (version/type, code, session id, length).
pub const HEADER_LEN: usize = 6;
/// Length of the PPPoE header plus the PPP protocol field: what the fast path strips
/// upstream and pushes downstream.
pub const SESSION_HEADER_LEN: usize = HEADER_LEN + 2;
/// Version 1 and type 1 in one octet.
pub const VER_TYPE: u8 = 0x11;
/// Code of every session-stage packet.
pub const CODE_SESSION: u8 = 0x00;

enum_with_unknown! {
    /// PPP protocol field values (RFC 1661 section 2; IANA PPP DLL protocol numbers).
    pub enum PppProtocol(u16) {
        /// Internet Protocol version 4 (RFC 1332).
        Ipv4 = 0x0021,
        /// Internet Protocol version 6 (RFC 5072).
        Ipv6 = 0x0057,
        /// IP Control Protocol (RFC 1332).
        Ipcp = 0x8021,
        /// IPv6 Control Protocol (RFC 5072).
        Ipv6cp = 0x8057,
        /// Link Control Protocol (RFC 1661).
        Lcp = 0xc021,
        /// Password Authentication Protocol (RFC 1334).
        Pap = 0xc023,
        /// Challenge Handshake Authentication Protocol (RFC 1994).
        Chap = 0xc223,
    }
}

impl PppProtocol {
    /// True for control protocols: RFC 1661 section 2 reserves 0x8000-0xbfff for network
    /// control protocols and 0xc000-0xffff for link-layer control (LCP, PAP, CHAP...);
    /// everything below 0x8000 carries data.
    #[inline]
    pub fn is_control(self) -> bool {
        u16::from(self) >= 0x8000
    }
}

/// Zero-copy view of the PPPoE session header and the PPP protocol field (8 octets).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Header {
    ver_type: u8,
    code: u8,
    session_id: U16,
    length: U16,
    protocol: U16,
}

impl Header {
    fn check(buf: &[u8]) -> Result<()> {
        check_len(buf, SESSION_HEADER_LEN)?;
        if buf[0] != VER_TYPE {
            return Err(Error::Malformed {
                what: "pppoe version/type (expected 0x11)",
            });
        }
        if buf[1] != CODE_SESSION {
            return Err(Error::Malformed {
                what: "pppoe session code (expected 0x00)",
            });
        }
        let length = usize::from(u16::from_be_bytes([buf[4], buf[5]]));
        if length < 2 {
            return Err(Error::Malformed {
                what: "pppoe length (expected >= 2, the PPP protocol field)",
            });
        }
        // Ethernet padding may follow the PPP packet; a PPP packet longer than the frame
        // may not.
        check_len(buf, HEADER_LEN + length)
    }

    /// Borrows the header at the start of `buf`, checking version, type, session code and
    /// that `buf` holds the LENGTH octets the header announces.
    pub fn parse(buf: &[u8]) -> Result<&Header> {
        Self::check(buf)?;
        Header::ref_from_prefix(buf)
            .map(|(h, _)| h)
            .map_err(|_| Error::Malformed { what: "pppoe" })
    }

    /// Mutable variant of [`Header::parse`].
    pub fn parse_mut(buf: &mut [u8]) -> Result<&mut Header> {
        Self::check(buf)?;
        Header::mut_from_prefix(buf)
            .map(|(h, _)| h)
            .map_err(|_| Error::Malformed { what: "pppoe" })
    }

    /// PPPoE session id.
    #[inline]
    pub fn session_id(&self) -> u16 {
        self.session_id.get()
    }

    /// PPPoE LENGTH: octets of the PPP packet, protocol field included.
    #[inline]
    pub fn length(&self) -> u16 {
        self.length.get()
    }

    /// Octets of PPP information after the protocol field (LENGTH - 2).
    #[inline]
    pub fn payload_len(&self) -> usize {
        usize::from(self.length.get()).saturating_sub(2)
    }

    /// PPP protocol.
    #[inline]
    pub fn protocol(&self) -> PppProtocol {
        PppProtocol::from(self.protocol.get())
    }

    /// Sets the session id.
    #[inline]
    pub fn set_session_id(&mut self, id: u16) {
        self.session_id.set(id);
    }

    /// Sets LENGTH.
    #[inline]
    pub fn set_length(&mut self, length: u16) {
        self.length.set(length);
    }

    /// Sets the PPP protocol.
    #[inline]
    pub fn set_protocol(&mut self, p: PppProtocol) {
        self.protocol.set(p.into());
    }
}

/// A PPPoE session-stage header with its PPP protocol field, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionRepr {
    /// PPPoE session id.
    pub session_id: u16,
    /// PPP protocol of the payload.
    pub protocol: PppProtocol,
    /// Octets of PPP information after the protocol field (an IPv4 packet's total length).
    pub payload_len: u16,
}

impl SessionRepr {
    /// Parses the header at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<SessionRepr> {
        let h = Header::parse(buf)?;
        Ok(SessionRepr {
            session_id: h.session_id(),
            protocol: h.protocol(),
            payload_len: h.length() - 2,
        })
    }

    /// Octets [`SessionRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        SESSION_HEADER_LEN
    }

    /// Writes the 8 header octets; LENGTH = `payload_len + 2`, saturating at 0xffff.
    ///
    /// # Panics
    /// If `buf` is shorter than [`SESSION_HEADER_LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        let len = self.payload_len.saturating_add(2).to_be_bytes();
        let sid = self.session_id.to_be_bytes();
        let proto = u16::from(self.protocol).to_be_bytes();
        buf[..SESSION_HEADER_LEN].copy_from_slice(&[
            VER_TYPE,
            CODE_SESSION,
            sid[0],
            sid[1],
            len[0],
            len[1],
            proto[0],
            proto[1],
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_util::hex;
    use proptest::prelude::*;

    #[test]
    fn golden_ipv4_session_packet() {
        // Session 0x0042 carrying a 20-octet IPv4 packet (LENGTH 22), then 2 octets of
        // Ethernet padding.
        let mut b = hex("11 00 0042 0016 0021");
        b.extend_from_slice(&[0x45; 20]);
        b.extend_from_slice(&[0, 0]);
        let h = Header::parse(&b).unwrap();
        assert_eq!(h.session_id(), 0x42);
        assert_eq!(h.length(), 22);
        assert_eq!(h.payload_len(), 20);
        assert_eq!(h.protocol(), PppProtocol::Ipv4);
        assert!(!h.protocol().is_control());
        let r = SessionRepr::parse(&b).unwrap();
        assert_eq!(
            r,
            SessionRepr {
                session_id: 0x42,
                protocol: PppProtocol::Ipv4,
                payload_len: 20
            }
        );
        let mut out = [0u8; SESSION_HEADER_LEN];
        r.emit(&mut out);
        assert_eq!(&out[..], &b[..SESSION_HEADER_LEN]);
    }

    #[test]
    fn control_protocols() {
        for p in [0xc021u16, 0xc023, 0xc223, 0x8021, 0x8057, 0xc025, 0x80fd] {
            assert!(PppProtocol::from(p).is_control(), "{p:#x}");
        }
        for p in [0x0021u16, 0x0057, 0x002b, 0x4021] {
            assert!(!PppProtocol::from(p).is_control(), "{p:#x}");
        }
    }

    #[test]
    fn malformed_headers_are_errors() {
        // Too short for the 8-octet view.
        assert!(Header::parse(&hex("11 00 0042 0002 00")).is_err());
        // Version/type 2/1.
        assert!(Header::parse(&hex("21 00 0042 0002 0021")).is_err());
        // Discovery code (PADT) in the session stage.
        assert!(Header::parse(&hex("11 a7 0042 0002 0021")).is_err());
        // LENGTH shorter than the protocol field.
        assert!(Header::parse(&hex("11 00 0042 0001 0021")).is_err());
        // LENGTH past the end of the frame.
        assert!(Header::parse(&hex("11 00 0042 0010 0021 4500")).is_err());
        let mut b = hex("11 00 0042 0002 c021");
        let h = Header::parse_mut(&mut b).unwrap();
        h.set_session_id(7);
        h.set_length(2);
        h.set_protocol(PppProtocol::Ipcp);
        assert_eq!(b, hex("11 00 0007 0002 8021"));
    }

    proptest! {
        #[test]
        fn repr_round_trip(sid in any::<u16>(), proto in any::<u16>(), len in 0u16..64) {
            let r = SessionRepr { session_id: sid, protocol: PppProtocol::from(proto), payload_len: len };
            let mut b = alloc::vec![0u8; SESSION_HEADER_LEN + usize::from(len)];
            r.emit(&mut b);
            prop_assert_eq!(SessionRepr::parse(&b).unwrap(), r);
        }

        #[test]
        fn parse_never_panics(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = Header::parse(&b);
            let _ = SessionRepr::parse(&b);
        }
    }
}
