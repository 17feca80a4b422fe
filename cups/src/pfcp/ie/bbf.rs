//! Vendor-specific IE framing and the BBF TR-459 IEs vbng uses.
//!
//! TR-459 IEs are PFCP vendor-specific IEs (type >= 32768) with the Broadband
//! Forum's IANA enterprise number 3561. Type numbers follow Wireshark's PFCP
//! dissector (`PFCP_IE_ENTERPRISE_BBF_*`, 32768 + n):
//!
//! ```text
//!   Octets 1-2  Type (32768 BBF UP Function Features, 32769 Logical Port)
//!   Octets 3-4  Length (includes the 2 octets of Enterprise ID)
//!   Octets 5-6  Enterprise ID = 3561
//!   Octets 7-   content
//! ```

use alloc::vec::Vec;

use super::ids;
use super::tlv::{Cursor, Writer};
use crate::pfcp::Error;

/// IANA enterprise number of the Broadband Forum.
pub const BBF_ENTERPRISE_ID: u16 = 3561;

/// A vendor-specific IE, kept opaque.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct VendorIe {
    /// IANA enterprise number (BBF = 3561).
    pub enterprise_id: u16,
    /// IE type, 32768..=65535 (bit 15 is forced on when encoding).
    pub ie_type: u16,
    /// Content after the Enterprise ID.
    pub data: Vec<u8>,
}

impl VendorIe {
    /// Writes the IE.
    pub fn emit(&self, w: &mut Writer) {
        w.vendor_ie(self.ie_type, self.enterprise_id, |w| w.bytes(&self.data));
    }
}

/// BBF UP Function Features (TR-459 6.6.1): 4 octets. Bit `n` of the value is
/// bit `n % 8` of content octet `n / 8` (octet 7 of the IE first), so the
/// constants below are octet 7's bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BbfUpFunctionFeatures(pub u32);

impl BbfUpFunctionFeatures {
    /// PPPoE supported.
    pub const PPPOE: Self = Self(0x01);
    /// IPoE supported.
    pub const IPOE: Self = Self(0x02);
    /// L2TP LAC supported.
    pub const LAC: Self = Self(0x04);
    /// L2TP LNS supported.
    pub const LNS: Self = Self(0x08);
    /// LCP keepalive offload supported.
    pub const LCP_KEEPALIVE_OFFLOAD: Self = Self(0x10);

    /// True when every feature of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Writes the vendor IE.
    pub fn emit(self, w: &mut Writer) {
        w.vendor_ie(ids::bbf::UP_FUNCTION_FEATURES, BBF_ENTERPRISE_ID, |w| {
            w.bytes(&self.0.to_le_bytes());
        });
    }

    /// Parses the content (after the Enterprise ID); at least 1 octet, missing
    /// octets read as 0.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut c = Cursor::new(ids::bbf::UP_FUNCTION_FEATURES, data);
        c.take(1)?;
        let mut b = [0u8; 4];
        for (d, s) in b.iter_mut().zip(data) {
            *d = *s;
        }
        Ok(Self(u32::from_le_bytes(b)))
    }
}

impl core::ops::BitOr for BbfUpFunctionFeatures {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// Writes a BBF Logical Port IE (TR-459 6.6.2) with `port` as its content.
pub fn emit_logical_port(w: &mut Writer, port: &[u8]) {
    w.vendor_ie(ids::bbf::LOGICAL_PORT, BBF_ENTERPRISE_ID, |w| w.bytes(port));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pfcp::ie::IeIter;

    #[test]
    fn bbf_ies_golden() {
        let mut w = Writer::new();
        (BbfUpFunctionFeatures::PPPOE | BbfUpFunctionFeatures::IPOE).emit(&mut w);
        emit_logical_port(&mut w, b"12");
        VendorIe {
            enterprise_id: 99,
            ie_type: 0x8005,
            data: alloc::vec![1],
        }
        .emit(&mut w);
        let b = w.finish().unwrap();
        assert_eq!(
            b,
            [
                0x80, 0x00, 0, 6, 0x0d, 0xe9, 0x03, 0, 0, 0, // UP function features
                0x80, 0x01, 0, 4, 0x0d, 0xe9, b'1', b'2', // logical port
                0x80, 0x05, 0, 3, 0, 99, 1,
            ]
        );
        let ies: Vec<_> = IeIter::new(&b).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            BbfUpFunctionFeatures::parse(ies[0].data),
            Ok(BbfUpFunctionFeatures(3))
        );
        assert_eq!(ies[1].data, b"12");
        assert_eq!(ies[2].enterprise_id, Some(99));
    }
}
