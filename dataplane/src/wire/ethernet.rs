//! Ethernet II header (IEEE 802.3 clause 3.2.6 with Type interpretation).
//!
//! ```text
//!  0                   1                   2                   3
//! +-------------------------------------------------------------+
//! |                  destination MAC (6 bytes)                  |
//! +-------------------------------------------------------------+
//! |                     source MAC (6 bytes)                    |
//! +------------------------------+
//! |       EtherType / TPID       |
//! +------------------------------+
//! ```
//! The FCS is not part of the buffers handled here (ports strip it).

use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{EtherType, EthernetAddress, Result, check_len};

/// Length of the untagged Ethernet header.
pub const HEADER_LEN: usize = 14;
/// Minimum frame length without FCS (shorter frames are padded by the sender).
pub const MIN_FRAME_LEN: usize = 60;

/// Zero-copy view of the 14-byte Ethernet header.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Header {
    dst: [u8; 6],
    src: [u8; 6],
    ethertype: U16,
}

impl Header {
    /// Borrows the header at the start of `buf`.
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<&Header> {
        check_len(buf, HEADER_LEN)?;
        Header::ref_from_prefix(buf)
            .map(|(h, _)| h)
            .map_err(|_| super::Error::Truncated {
                expected: HEADER_LEN,
                found: buf.len(),
            })
    }

    /// Mutably borrows the header at the start of `buf`.
    #[inline]
    pub fn parse_mut(buf: &mut [u8]) -> Result<&mut Header> {
        let found = buf.len();
        Header::mut_from_prefix(buf)
            .map(|(h, _)| h)
            .map_err(|_| super::Error::Truncated {
                expected: HEADER_LEN,
                found,
            })
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> EthernetAddress {
        EthernetAddress(self.dst)
    }
    /// Source address.
    #[inline]
    pub fn src(&self) -> EthernetAddress {
        EthernetAddress(self.src)
    }
    /// EtherType (or TPID of the first VLAN tag).
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(self.ethertype.get())
    }
    /// Sets the destination address.
    #[inline]
    pub fn set_dst(&mut self, v: EthernetAddress) {
        self.dst = v.0;
    }
    /// Sets the source address.
    #[inline]
    pub fn set_src(&mut self, v: EthernetAddress) {
        self.src = v.0;
    }
    /// Sets the EtherType.
    #[inline]
    pub fn set_ethertype(&mut self, v: EtherType) {
        self.ethertype.set(v.into());
    }
}

/// High-level Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// Destination address.
    pub dst: EthernetAddress,
    /// Source address.
    pub src: EthernetAddress,
    /// EtherType of the payload (or TPID of a VLAN tag).
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Parses the header at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<EthernetRepr> {
        let h = Header::parse(buf)?;
        Ok(EthernetRepr {
            dst: h.dst(),
            src: h.src(),
            ethertype: h.ethertype(),
        })
    }

    /// Header length: 14.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into `buf[..14]`. Panics if `buf` is shorter than 14 bytes.
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0..6].copy_from_slice(&self.dst.0);
        buf[6..12].copy_from_slice(&self.src.0);
        buf[12..14].copy_from_slice(&u16::from(self.ethertype).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_util::hex;
    use proptest::prelude::*;

    #[test]
    fn golden_broadcast_arp_header() {
        let b = hex("ffffffffffff 525400123456 0806");
        let r = EthernetRepr::parse(&b).unwrap();
        assert_eq!(r.dst, EthernetAddress::BROADCAST);
        assert_eq!(r.src, EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]));
        assert_eq!(r.ethertype, EtherType::Arp);
        let mut out = [0u8; 14];
        r.emit(&mut out);
        assert_eq!(&out[..], &b[..]);
    }

    #[test]
    fn truncated() {
        assert!(EthernetRepr::parse(&[0u8; 13]).is_err());
        assert!(Header::parse_mut(&mut [0u8; 13]).is_err());
    }

    #[test]
    fn in_place_write() {
        let mut b = [0u8; 20];
        let h = Header::parse_mut(&mut b).unwrap();
        h.set_dst(EthernetAddress::BROADCAST);
        h.set_ethertype(EtherType::Ipv4);
        assert_eq!(&b[..6], &[0xff; 6]);
        assert_eq!(&b[12..14], &[0x08, 0x00]);
    }

    proptest! {
        #[test]
        fn round_trip(d in any::<[u8; 6]>(), s in any::<[u8; 6]>(), t in any::<u16>()) {
            let r = EthernetRepr { dst: EthernetAddress(d), src: EthernetAddress(s), ethertype: t.into() };
            let mut b = [0u8; 14];
            r.emit(&mut b);
            prop_assert_eq!(EthernetRepr::parse(&b).unwrap(), r);
        }
    }
}
