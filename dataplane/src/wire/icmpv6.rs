//! ICMP for IPv6 (RFC 4443).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   rest of header (Packet Too Big: MTU; echo: Identifier,      |
//! |   Sequence Number; other errors: unused)                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! The checksum covers the IPv6 pseudo-header (RFC 8200 section 8.1, Next Header 58) and the
//! whole ICMPv6 message (RFC 4443 section 2.3).

use core::net::Ipv6Addr;

use zerocopy::network_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::ipv6::{next_header, pseudo_header};
use super::{Error, Result, check_len, checksum, enum_with_unknown};

/// Length of the ICMPv6 header.
pub const HEADER_LEN: usize = 8;

enum_with_unknown! {
    /// ICMPv6 message types (IANA "ICMPv6 Parameters"). Types 0-127 are errors, 128-255
    /// informational (RFC 4443 section 2.1).
    pub enum Icmpv6Message(u8) {
        /// Destination unreachable.
        DstUnreachable = 1,
        /// Packet too big.
        PacketTooBig = 2,
        /// Time exceeded.
        TimeExceeded = 3,
        /// Parameter problem.
        ParamProblem = 4,
        /// Echo request.
        EchoRequest = 128,
        /// Echo reply.
        EchoReply = 129,
        /// Router solicitation (RFC 4861).
        RouterSolicit = 133,
        /// Router advertisement (RFC 4861).
        RouterAdvert = 134,
        /// Neighbor solicitation (RFC 4861).
        NeighborSolicit = 135,
        /// Neighbor advertisement (RFC 4861).
        NeighborAdvert = 136,
        /// Redirect (RFC 4861).
        Redirect = 137,
    }
}

impl Icmpv6Message {
    /// True for an error message (type below 128, RFC 4443 section 2.1), known or not.
    #[inline]
    pub fn is_error(self) -> bool {
        u8::from(self) < 128
    }
}

/// Zero-copy view of the 8-byte ICMPv6 header.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Header {
    msg_type: u8,
    code: u8,
    checksum: U16,
    rest: U32,
}

impl Header {
    /// Borrows the header at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<&Header> {
        check_len(buf, HEADER_LEN)?;
        Header::ref_from_prefix(buf)
            .map(|(h, _)| h)
            .map_err(|_| Error::Malformed { what: "icmpv6" })
    }
    /// Message type.
    #[inline]
    pub fn msg_type(&self) -> Icmpv6Message {
        self.msg_type.into()
    }
    /// Code.
    #[inline]
    pub fn code(&self) -> u8 {
        self.code
    }
    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        self.checksum.get()
    }
    /// The four bytes after the checksum as a big-endian word.
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        self.rest.get()
    }
}

/// The ICMPv6 checksum of `message` (header and data, checksum field included as it stands)
/// sent from `src` to `dst`. A message with a correct checksum field yields 0.
#[inline]
pub fn compute_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, message: &[u8]) -> u16 {
    // An ICMPv6 message is at most 65535 bytes (no jumbograms here), so the length fits.
    let ph = pseudo_header(src, dst, next_header::ICMPV6, message.len() as u32);
    !checksum::fold(checksum::combine(ph, checksum::sum(message)))
}

/// High-level ICMPv6 header. The data after the header stays in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Icmpv6Repr {
    /// Message type.
    pub msg_type: Icmpv6Message,
    /// Code.
    pub code: u8,
    /// Rest of header (Packet Too Big: the MTU; echo: identifier << 16 | sequence number).
    pub rest_of_header: u32,
}

impl Icmpv6Repr {
    /// Parses the ICMPv6 message `buf` (header and data) carried from `src` to `dst` and
    /// verifies its checksum.
    pub fn parse(src: &Ipv6Addr, dst: &Ipv6Addr, buf: &[u8]) -> Result<Icmpv6Repr> {
        let h = Header::parse(buf)?;
        if buf.len() > usize::from(u16::MAX) {
            return Err(Error::Unsupported {
                what: "icmpv6 message longer than 65535 bytes",
            });
        }
        if compute_checksum(src, dst, buf) != 0 {
            return Err(Error::Checksum { what: "icmpv6" });
        }
        Ok(Icmpv6Repr {
            msg_type: h.msg_type(),
            code: h.code(),
            rest_of_header: h.rest_of_header(),
        })
    }

    /// Header length: 8.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into `buf[..8]` and the checksum over all of `buf` with the
    /// pseudo-header of `src` -> `dst` (so put the data in `buf[8..]` first and pass exactly
    /// the message). Panics if `buf` is shorter than 8 bytes.
    pub fn emit(&self, src: &Ipv6Addr, dst: &Ipv6Addr, buf: &mut [u8]) {
        buf[0] = self.msg_type.into();
        buf[1] = self.code;
        buf[2..4].copy_from_slice(&[0, 0]);
        buf[4..8].copy_from_slice(&self.rest_of_header.to_be_bytes());
        let c = compute_checksum(src, dst, buf);
        buf[2..4].copy_from_slice(&c.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv6::{HEADER_LEN as IPV6_LEN, Ipv6Repr};
    use crate::wire::test_util::hex;
    use proptest::prelude::*;

    /// Linux's answer on `lo` to a UDP datagram "hello" sent to [::1]:9 (no listener): a
    /// Destination Unreachable / port unreachable quoting the whole datagram.
    const PORT_UNREACHABLE: &str = "
        600e c338 003d 3a40 0000 0000 0000 0000 0000 0000 0000 0001
        0000 0000 0000 0000 0000 0000 0000 0001
        0104 26fa 0000 0000
        600e 63da 000d 1140 0000 0000 0000 0000 0000 0000 0000 0001
        0000 0000 0000 0000 0000 0000 0000 0001
        be48 0009 000d 0020 6865 6c6c 6f";

    /// `ping -6 -c1 -s 16 ::1` captured on Linux `lo`: IPv6 + ICMPv6 echo request.
    const PING6: &str = "
        6008 ed65 0018 3a40 0000 0000 0000 0000 0000 0000 0000 0001
        0000 0000 0000 0000 0000 0000 0000 0001
        8000 7194 02dc 0001 cdb1 0d6b 0000 0000 2d1d 0300 0000 0000";

    #[test]
    fn golden_echo_request() {
        let b = hex(PING6);
        let ip = Ipv6Repr::parse(&b).unwrap();
        let r = Icmpv6Repr::parse(&ip.src_addr, &ip.dst_addr, &b[IPV6_LEN..]).unwrap();
        assert_eq!(r.msg_type, Icmpv6Message::EchoRequest);
        assert!(!r.msg_type.is_error());
        assert_eq!(r.rest_of_header, 0x02dc_0001);
        // Re-emitting over the same data reproduces Linux's checksum.
        let mut again = b.clone();
        r.emit(&ip.src_addr, &ip.dst_addr, &mut again[IPV6_LEN..]);
        assert_eq!(again, b);
        // Any change to the message or the pseudo-header breaks the checksum.
        let mut bad = b.clone();
        bad[50] ^= 0x40;
        assert!(matches!(
            Icmpv6Repr::parse(&ip.src_addr, &ip.dst_addr, &bad[IPV6_LEN..]),
            Err(Error::Checksum { .. })
        ));
        assert!(Icmpv6Repr::parse(&Ipv6Addr::UNSPECIFIED, &ip.dst_addr, &b[IPV6_LEN..]).is_err());
        assert!(Icmpv6Repr::parse(&ip.src_addr, &ip.dst_addr, &b[IPV6_LEN..IPV6_LEN + 7]).is_err());
    }

    #[test]
    fn golden_port_unreachable() {
        let b = hex(PORT_UNREACHABLE);
        let ip = Ipv6Repr::parse(&b).unwrap();
        assert_eq!(usize::from(ip.payload_len), b.len() - IPV6_LEN);
        let r = Icmpv6Repr::parse(&ip.src_addr, &ip.dst_addr, &b[IPV6_LEN..]).unwrap();
        assert_eq!(r.msg_type, Icmpv6Message::DstUnreachable);
        assert!(r.msg_type.is_error());
        assert_eq!(r.code, 4);
        let mut again = b.clone();
        r.emit(&ip.src_addr, &ip.dst_addr, &mut again[IPV6_LEN..]);
        assert_eq!(again, b);
        let quoted = Ipv6Repr::parse(&b[IPV6_LEN + HEADER_LEN..]).unwrap();
        assert_eq!(quoted.next_header, next_header::UDP);
    }

    proptest! {
        #[test]
        fn round_trip(t in any::<u8>(), code in any::<u8>(), rest in any::<u32>(),
                      src in any::<u128>(), dst in any::<u128>(),
                      data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let (src, dst) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
            let r = Icmpv6Repr { msg_type: t.into(), code, rest_of_header: rest };
            let mut b = alloc::vec![0u8; 8 + data.len()];
            b[8..].copy_from_slice(&data);
            r.emit(&src, &dst, &mut b);
            prop_assert_eq!(Icmpv6Repr::parse(&src, &dst, &b).unwrap(), r);
            prop_assert_eq!(u8::from(r.msg_type), t);
        }
    }
}
