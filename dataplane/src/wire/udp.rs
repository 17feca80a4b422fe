//! UDP header (RFC 768).
//!
//! ```text
//!  0      7 8     15 16    23 24    31
//! +--------+--------+--------+--------+
//! |   Source Port   | Destination Port|
//! +--------+--------+--------+--------+
//! |     Length      |    Checksum     |
//! +--------+--------+--------+--------+
//! ```

use core::net::Ipv4Addr;

use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{Error, Result, check_len, checksum};

/// UDP header length.
pub const HEADER_LEN: usize = 8;

/// Zero-copy view of the UDP header.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Header {
    src_port: U16,
    dst_port: U16,
    length: U16,
    checksum: U16,
}

impl Header {
    /// Borrows the header at the start of `buf` and checks the length field against it.
    pub fn parse(buf: &[u8]) -> Result<&Header> {
        check_len(buf, HEADER_LEN)?;
        let (h, _) = Header::ref_from_prefix(buf).map_err(|_| Error::Malformed { what: "udp" })?;
        h.check(buf.len())?;
        Ok(h)
    }
    /// Mutable variant of [`Header::parse`].
    pub fn parse_mut(buf: &mut [u8]) -> Result<&mut Header> {
        check_len(buf, HEADER_LEN)?;
        let len = buf.len();
        let (h, _) = Header::mut_from_prefix(buf).map_err(|_| Error::Malformed { what: "udp" })?;
        h.check(len)?;
        Ok(h)
    }
    fn check(&self, buf_len: usize) -> Result<()> {
        let l = usize::from(self.length.get());
        if l < HEADER_LEN {
            return Err(Error::Malformed {
                what: "udp length (expected >= 8)",
            });
        }
        if l > buf_len {
            return Err(Error::Truncated {
                expected: l,
                found: buf_len,
            });
        }
        Ok(())
    }
    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        self.src_port.get()
    }
    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        self.dst_port.get()
    }
    /// Length of header plus payload.
    #[inline]
    pub fn length(&self) -> u16 {
        self.length.get()
    }
    /// Checksum field (0 = not computed).
    #[inline]
    pub fn checksum(&self) -> u16 {
        self.checksum.get()
    }
    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        self.checksum.set(c);
    }
}

/// Computes the UDP checksum over the pseudo header and `datagram` (header + payload, with the
/// checksum field as it is). Returns the value to store: 0 computes to 0xffff (RFC 768).
pub fn compute_checksum(src: Ipv4Addr, dst: Ipv4Addr, datagram: &[u8]) -> u16 {
    let len = u16::try_from(datagram.len()).unwrap_or(u16::MAX);
    let acc = checksum::combine(
        checksum::pseudo_header_ipv4(src, dst, 17, len),
        checksum::sum(datagram),
    );
    match !checksum::fold(acc) {
        0 => 0xffff,
        c => c,
    }
}

/// Fills the checksum of the datagram `buf` (header + payload).
/// Does nothing if `buf` is shorter than a UDP header.
pub fn fill_checksum(src: Ipv4Addr, dst: Ipv4Addr, buf: &mut [u8]) {
    if buf.len() < HEADER_LEN {
        return;
    }
    buf[6] = 0;
    buf[7] = 0;
    let c = compute_checksum(src, dst, buf);
    buf[6..8].copy_from_slice(&c.to_be_bytes());
}

/// True if the datagram's checksum is absent (0) or verifies.
pub fn verify_checksum(src: Ipv4Addr, dst: Ipv4Addr, buf: &[u8]) -> bool {
    if buf.len() < HEADER_LEN {
        return false;
    }
    if buf[6] == 0 && buf[7] == 0 {
        return true;
    }
    let len = u16::try_from(buf.len()).unwrap_or(u16::MAX);
    let acc = checksum::combine(
        checksum::pseudo_header_ipv4(src, dst, 17, len),
        checksum::sum(buf),
    );
    checksum::fold(acc) == 0xffff
}

/// High-level UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload length in bytes (length field minus 8).
    pub payload_len: u16,
}

impl UdpRepr {
    /// Parses the header at the start of `buf` (the checksum is not verified; see
    /// [`verify_checksum`], which needs the IP addresses).
    pub fn parse(buf: &[u8]) -> Result<UdpRepr> {
        let h = Header::parse(buf)?;
        Ok(UdpRepr {
            src_port: h.src_port(),
            dst_port: h.dst_port(),
            payload_len: h.length() - HEADER_LEN as u16,
        })
    }
    /// Header length: 8.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
    /// Writes the header into `buf[..8]` with a zero checksum; call [`fill_checksum`] over the
    /// whole datagram afterwards. Panics if `buf` is shorter than 8 bytes.
    pub fn emit(&self, buf: &mut [u8]) {
        let len = self.payload_len.saturating_add(HEADER_LEN as u16);
        buf[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        buf[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        buf[4..6].copy_from_slice(&len.to_be_bytes());
        buf[6..8].copy_from_slice(&[0, 0]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_util::hex;
    use proptest::prelude::*;

    #[test]
    fn golden_dns_query() {
        // 10.0.0.1:40000 -> 10.0.0.2:53, 4-byte payload.
        let src = Ipv4Addr::new(10, 0, 0, 1);
        let dst = Ipv4Addr::new(10, 0, 0, 2);
        let mut d = hex("9c40 0035 000c 0000 deadbeef");
        fill_checksum(src, dst, &mut d);
        assert!(verify_checksum(src, dst, &d));
        let r = UdpRepr::parse(&d).unwrap();
        assert_eq!(
            r,
            UdpRepr {
                src_port: 40000,
                dst_port: 53,
                payload_len: 4
            }
        );
        d[9] ^= 0xff;
        assert!(!verify_checksum(src, dst, &d));
        assert!(UdpRepr::parse(&d[..10]).is_err());
        let mut short = d.clone();
        short[4..6].copy_from_slice(&4u16.to_be_bytes());
        assert!(UdpRepr::parse(&short).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(sp in any::<u16>(), dp in any::<u16>(), payload in proptest::collection::vec(any::<u8>(), 0..64),
                      src in any::<u32>(), dst in any::<u32>()) {
            let r = UdpRepr { src_port: sp, dst_port: dp, payload_len: payload.len() as u16 };
            let mut b = alloc::vec![0u8; 8 + payload.len()];
            r.emit(&mut b);
            b[8..].copy_from_slice(&payload);
            fill_checksum(src.into(), dst.into(), &mut b);
            prop_assert!(verify_checksum(src.into(), dst.into(), &b));
            prop_assert_eq!(UdpRepr::parse(&b).unwrap(), r);
        }
    }
}
