//! IEEE 802.1Q / 802.1ad VLAN tag (the 4 bytes after a TPID of 0x8100 or 0x88a8).
//!
//! ```text
//! +------+-----+---------------------+------------------------------+
//! | PCP  | DEI |   VID (12 bits)     |  EtherType of the payload    |
//! | 3 b  | 1 b |                     |  (or the next TPID)          |
//! +------+-----+---------------------+------------------------------+
//! ```
//! The TPID itself is the EtherType field of the preceding header: 0x8100 (C-TAG, 802.1Q)
//! or 0x88a8 (S-TAG, 802.1ad).

use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{Error, EtherType, Result, check_len};

/// Length of one tag (TCI + inner EtherType).
pub const TAG_LEN: usize = 4;
/// Largest valid VLAN id (4095 is reserved but representable).
pub const VID_MASK: u16 = 0x0fff;

/// Zero-copy view of one VLAN tag.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Tag {
    tci: U16,
    ethertype: U16,
}

impl Tag {
    /// Borrows the tag at the start of `buf`.
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<&Tag> {
        check_len(buf, TAG_LEN)?;
        Tag::ref_from_prefix(buf)
            .map(|(t, _)| t)
            .map_err(|_| Error::Malformed { what: "vlan tag" })
    }
    /// Mutably borrows the tag at the start of `buf`.
    #[inline]
    pub fn parse_mut(buf: &mut [u8]) -> Result<&mut Tag> {
        check_len(buf, TAG_LEN)?;
        Tag::mut_from_prefix(buf)
            .map(|(t, _)| t)
            .map_err(|_| Error::Malformed { what: "vlan tag" })
    }
    /// Priority code point (0-7).
    #[inline]
    pub fn pcp(&self) -> u8 {
        (self.tci.get() >> 13) as u8
    }
    /// Drop eligible indicator.
    #[inline]
    pub fn dei(&self) -> bool {
        self.tci.get() & 0x1000 != 0
    }
    /// VLAN identifier (0-4095).
    #[inline]
    pub fn vid(&self) -> u16 {
        self.tci.get() & VID_MASK
    }
    /// EtherType following the tag.
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(self.ethertype.get())
    }
    /// Sets the VLAN id, keeping PCP and DEI.
    #[inline]
    pub fn set_vid(&mut self, vid: u16) {
        self.tci
            .set((self.tci.get() & !VID_MASK) | (vid & VID_MASK));
    }
    /// Sets the EtherType following the tag.
    #[inline]
    pub fn set_ethertype(&mut self, t: EtherType) {
        self.ethertype.set(t.into());
    }
}

/// High-level VLAN tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanRepr {
    /// Priority code point, 0-7.
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN id, 0-4095.
    pub vid: u16,
    /// EtherType following the tag.
    pub ethertype: EtherType,
}

impl VlanRepr {
    /// Parses the tag at the start of `buf` (the bytes after the TPID).
    pub fn parse(buf: &[u8]) -> Result<VlanRepr> {
        let t = Tag::parse(buf)?;
        Ok(VlanRepr {
            pcp: t.pcp(),
            dei: t.dei(),
            vid: t.vid(),
            ethertype: t.ethertype(),
        })
    }
    /// Tag length: 4.
    pub const fn buffer_len(&self) -> usize {
        TAG_LEN
    }
    /// Writes the tag into `buf[..4]`. PCP and VID are masked to their widths.
    /// Panics if `buf` is shorter than 4 bytes.
    pub fn emit(&self, buf: &mut [u8]) {
        let tci =
            (u16::from(self.pcp & 7) << 13) | (u16::from(self.dei) << 12) | (self.vid & VID_MASK);
        buf[0..2].copy_from_slice(&tci.to_be_bytes());
        buf[2..4].copy_from_slice(&u16::from(self.ethertype).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_tag() {
        // PCP 5, DEI 0, VID 100, inner IPv4.
        let b = [0xa0, 0x64, 0x08, 0x00];
        let r = VlanRepr::parse(&b).unwrap();
        assert_eq!(
            r,
            VlanRepr {
                pcp: 5,
                dei: false,
                vid: 100,
                ethertype: EtherType::Ipv4
            }
        );
        let mut out = [0u8; 4];
        r.emit(&mut out);
        assert_eq!(out, b);
        assert!(VlanRepr::parse(&b[..3]).is_err());
    }

    #[test]
    fn set_vid_keeps_pcp() {
        let mut b = [0xa0, 0x64, 0x08, 0x00];
        Tag::parse_mut(&mut b).unwrap().set_vid(4095);
        assert_eq!(b, [0xaf, 0xff, 0x08, 0x00]);
    }

    proptest! {
        #[test]
        fn round_trip(pcp in 0u8..8, dei in any::<bool>(), vid in 0u16..4096, t in any::<u16>()) {
            let r = VlanRepr { pcp, dei, vid, ethertype: t.into() };
            let mut b = [0u8; 4];
            r.emit(&mut b);
            prop_assert_eq!(VlanRepr::parse(&b).unwrap(), r);
        }
    }
}
