//! ICMP for IPv4 (RFC 792).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   rest of header (echo: Identifier, Sequence Number)          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! The checksum covers the whole ICMP message (header and data).

use zerocopy::network_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{Error, Result, check_len, checksum, enum_with_unknown};

/// Length of the ICMP header.
pub const HEADER_LEN: usize = 8;

enum_with_unknown! {
    /// ICMPv4 message types.
    pub enum Icmpv4Message(u8) {
        /// Echo reply.
        EchoReply = 0,
        /// Destination unreachable.
        DstUnreachable = 3,
        /// Redirect.
        Redirect = 5,
        /// Echo request.
        EchoRequest = 8,
        /// Time exceeded.
        TimeExceeded = 11,
    }
}

/// Zero-copy view of the 8-byte ICMP header.
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
            .map_err(|_| Error::Malformed { what: "icmpv4" })
    }
    /// Message type.
    #[inline]
    pub fn msg_type(&self) -> Icmpv4Message {
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

/// High-level ICMPv4 header. The data after the header stays in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Icmpv4Repr {
    /// Message type.
    pub msg_type: Icmpv4Message,
    /// Code.
    pub code: u8,
    /// Rest of header (for echo: identifier << 16 | sequence number).
    pub rest_of_header: u32,
}

impl Icmpv4Repr {
    /// An echo request or reply with identifier and sequence number.
    pub fn echo(request: bool, ident: u16, seq_no: u16) -> Self {
        Icmpv4Repr {
            msg_type: if request {
                Icmpv4Message::EchoRequest
            } else {
                Icmpv4Message::EchoReply
            },
            code: 0,
            rest_of_header: u32::from(ident) << 16 | u32::from(seq_no),
        }
    }
    /// Echo identifier (high half of the rest of header).
    pub fn ident(&self) -> u16 {
        (self.rest_of_header >> 16) as u16
    }
    /// Echo sequence number (low half of the rest of header).
    pub fn seq_no(&self) -> u16 {
        self.rest_of_header as u16
    }

    /// Parses the ICMP message `buf` (header and data) and verifies its checksum.
    pub fn parse(buf: &[u8]) -> Result<Icmpv4Repr> {
        let h = Header::parse(buf)?;
        if checksum::checksum(buf) != 0 {
            return Err(Error::Checksum { what: "icmpv4" });
        }
        Ok(Icmpv4Repr {
            msg_type: h.msg_type(),
            code: h.code(),
            rest_of_header: h.rest_of_header(),
        })
    }
    /// Header length: 8.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
    /// Writes the header into `buf[..8]` and the checksum over all of `buf` (so put the data in
    /// `buf[8..]` first and pass exactly the message). Panics if `buf` is shorter than 8 bytes.
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0] = self.msg_type.into();
        buf[1] = self.code;
        buf[2..4].copy_from_slice(&[0, 0]);
        buf[4..8].copy_from_slice(&self.rest_of_header.to_be_bytes());
        let c = checksum::checksum(buf);
        buf[2..4].copy_from_slice(&c.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_util::hex;
    use crate::wire::{EtherType, EthernetRepr, IpProtocol, Ipv4Repr};
    use proptest::prelude::*;

    /// `ping -c1 10.0.0.2` from Linux: Ethernet + IPv4 + ICMP echo request with the usual
    /// 8-byte timestamp and 0x10..0x37 pattern (56 data bytes).
    pub(crate) const PING: &str = "
        525400000002 525400000001 0800
        4500 0054 5b1f 4000 4001 cb32 0a00 0001 0a00 0002
        0800 ffff 0bad 0001 6e2b 9e65 0000 0000 e4a1 0b00 0000 0000
        1011 1213 1415 1617 1819 1a1b 1c1d 1e1f 2021 2223 2425 2627
        2829 2a2b 2c2d 2e2f 3031 3233 3435 3637";

    fn ping() -> alloc::vec::Vec<u8> {
        let mut f = hex(PING);
        // Fix up checksums so the golden frame is self-consistent.
        crate::wire::ipv4::fill_checksum(&mut f[14..34]);
        let repr = Icmpv4Repr::echo(true, 0x0bad, 1);
        repr.emit(&mut f[34..]);
        f
    }

    #[test]
    fn golden_echo_request() {
        let f = ping();
        assert_eq!(f.len(), 98);
        assert_eq!(EthernetRepr::parse(&f).unwrap().ethertype, EtherType::Ipv4);
        let ip = Ipv4Repr::parse(&f[14..]).unwrap();
        assert_eq!(ip.protocol, IpProtocol::Icmp);
        assert_eq!(usize::from(ip.payload_len), f.len() - 34);
        let r = Icmpv4Repr::parse(&f[34..]).unwrap();
        assert_eq!(r.msg_type, Icmpv4Message::EchoRequest);
        assert_eq!(r.ident(), 0x0bad);
        assert_eq!(r.seq_no(), 1);
        let mut bad = f.clone();
        bad[60] ^= 1;
        assert!(matches!(
            Icmpv4Repr::parse(&bad[34..]),
            Err(Error::Checksum { .. })
        ));
        assert!(Icmpv4Repr::parse(&f[34..41]).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(t in any::<u8>(), code in any::<u8>(), rest in any::<u32>(),
                      data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let r = Icmpv4Repr { msg_type: t.into(), code, rest_of_header: rest };
            let mut b = alloc::vec![0u8; 8 + data.len()];
            b[8..].copy_from_slice(&data);
            r.emit(&mut b);
            prop_assert_eq!(Icmpv4Repr::parse(&b).unwrap(), r);
        }
    }
}
