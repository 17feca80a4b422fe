//! Vendor-specific IE framing and the BBF TR-459 IEs vbng uses.
//!
//! TR-459 IEs are PFCP vendor-specific IEs (type >= 32768) with the Broadband
//! Forum's IANA enterprise number 3561. Type numbers and content layouts follow
//! Wireshark's PFCP dissector (`PFCP_IE_ENTERPRISE_BBF_*`, 32768 + n, and the
//! `dissect_pfcp_enterprise_bbf_*` functions):
//!
//! ```text
//!   Octets 1-2  Type: 32768 BBF UP Function Features, 32769 Logical Port,
//!               32770 BBF Outer Header Creation, 32771 BBF Outer Header Removal,
//!               32772 PPPoE Session ID, 32773 PPP Protocol, 32776 MTU
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

/// BBF Outer Header Creation (TR-459 6.6.3): the access-side encapsulation a
/// downlink FAR adds.
///
/// ```text
///   Octets 7-8    BBF Outer Header Creation Description (0x0100 CPR-NSH,
///                 0x0200 Traffic-Endpoint, 0x0300 L2TP, 0x0400 PPP)
///   Octets 9-10   Tunnel ID (L2TP)
///   Octets 11-12  Session ID
/// ```
///
/// Wireshark decodes all three fields whatever the description, so vbng
/// always writes six octets; for PPP over PPPoE the Tunnel ID is 0 and the
/// Session ID carries the PPPoE session id. A shorter IE (description only)
/// parses with both ids 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BbfOuterHeaderCreation {
    /// Description (one of the associated constants).
    pub description: u16,
    /// L2TP tunnel id, 0 otherwise.
    pub tunnel_id: u16,
    /// L2TP or PPPoE session id.
    pub session_id: u16,
}

impl BbfOuterHeaderCreation {
    /// CPR-NSH.
    pub const CPR_NSH: u16 = 0x0100;
    /// Traffic-Endpoint.
    pub const TRAFFIC_ENDPOINT: u16 = 0x0200;
    /// L2TP.
    pub const L2TP: u16 = 0x0300;
    /// PPP (over PPPoE on the access side).
    pub const PPP: u16 = 0x0400;

    /// PPP/PPPoE encapsulation for PPPoE session `session_id`.
    pub const fn pppoe(session_id: u16) -> Self {
        Self {
            description: Self::PPP,
            tunnel_id: 0,
            session_id,
        }
    }

    /// Writes the vendor IE.
    pub fn emit(&self, w: &mut Writer) {
        w.vendor_ie(ids::bbf::OUTER_HEADER_CREATION, BBF_ENTERPRISE_ID, |w| {
            w.u16(self.description);
            w.u16(self.tunnel_id);
            w.u16(self.session_id);
        });
    }

    /// Parses the content (after the Enterprise ID).
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut c = Cursor::new(ids::bbf::OUTER_HEADER_CREATION, data);
        let description = c.u16()?;
        let (tunnel_id, session_id) = if c.remaining() > 0 {
            (c.u16()?, c.u16()?)
        } else {
            (0, 0)
        };
        Ok(Self {
            description,
            tunnel_id,
            session_id,
        })
    }
}

/// BBF Outer Header Removal (TR-459 6.6.4): one octet, the headers an uplink
/// PDR strips before forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BbfOuterHeaderRemoval(pub u8);

impl BbfOuterHeaderRemoval {
    /// 1: Ethernet.
    pub const ETHERNET: Self = Self(1);
    /// 2: PPPoE/Ethernet.
    pub const PPPOE_ETHERNET: Self = Self(2);
    /// 3: PPP/PPPoE/Ethernet (a PPPoE subscriber's IP packets).
    pub const PPP_PPPOE_ETHERNET: Self = Self(3);
    /// 4: L2TP.
    pub const L2TP: Self = Self(4);
    /// 5: PPP/L2TP.
    pub const PPP_L2TP: Self = Self(5);

    /// Writes the vendor IE.
    pub fn emit(self, w: &mut Writer) {
        w.vendor_ie(ids::bbf::OUTER_HEADER_REMOVAL, BBF_ENTERPRISE_ID, |w| {
            w.u8(self.0);
        });
    }

    /// Parses the content (after the Enterprise ID).
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        Ok(Self(
            Cursor::new(ids::bbf::OUTER_HEADER_REMOVAL, data).u8()?,
        ))
    }
}

/// Writes a PPPoE Session ID IE (TR-459 6.6.5): two octets.
pub fn emit_pppoe_session_id(w: &mut Writer, session_id: u16) {
    w.vendor_ie(ids::bbf::PPPOE_SESSION_ID, BBF_ENTERPRISE_ID, |w| {
        w.u16(session_id);
    });
}

/// Parses a PPPoE Session ID IE's content.
pub fn parse_pppoe_session_id(data: &[u8]) -> Result<u16, Error> {
    Cursor::new(ids::bbf::PPPOE_SESSION_ID, data).u16()
}

/// Writes an MTU IE (TR-459 6.6.9): two octets.
pub fn emit_mtu(w: &mut Writer, mtu: u16) {
    w.vendor_ie(ids::bbf::MTU, BBF_ENTERPRISE_ID, |w| w.u16(mtu));
}

/// Parses an MTU IE's content.
pub fn parse_mtu(data: &[u8]) -> Result<u16, Error> {
    Cursor::new(ids::bbf::MTU, data).u16()
}

/// PPP Protocol (TR-459 6.6.6): which PPP packets of a PPPoE session a PDI
/// matches.
///
/// ```text
///   Octet 7     Spare | control (bit 3) | data (bit 2) | specific (bit 1)
///   Octets 8-9  protocol (only if "specific")
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PppProtocol {
    /// PPP control protocols (LCP, authentication, NCPs).
    pub control: bool,
    /// PPP data protocols (IPv4, IPv6).
    pub data: bool,
    /// One specific PPP protocol number.
    pub protocol: Option<u16>,
}

impl PppProtocol {
    /// Every data packet (what an uplink data PDR matches).
    pub const DATA: Self = Self {
        control: false,
        data: true,
        protocol: None,
    };
    /// Every control packet.
    pub const CONTROL: Self = Self {
        control: true,
        data: false,
        protocol: None,
    };
    /// IPv6 packets only (PPP protocol 0x0057, RFC 5072): what an uplink
    /// PDR of a session's IPv6 prefixes matches.
    pub const IPV6: Self = Self {
        control: false,
        data: false,
        protocol: Some(0x0057),
    };

    /// Writes the vendor IE.
    pub fn emit(&self, w: &mut Writer) {
        w.vendor_ie(ids::bbf::PPP_PROTOCOL, BBF_ENTERPRISE_ID, |w| {
            w.u8(u8::from(self.control) << 2
                | u8::from(self.data) << 1
                | u8::from(self.protocol.is_some()));
            if let Some(p) = self.protocol {
                w.u16(p);
            }
        });
    }

    /// Parses the content (after the Enterprise ID).
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut c = Cursor::new(ids::bbf::PPP_PROTOCOL, data);
        let flags = c.u8()?;
        let protocol = if flags & 0x01 != 0 {
            Some(c.u16()?)
        } else {
            None
        };
        Ok(Self {
            control: flags & 0x04 != 0,
            data: flags & 0x02 != 0,
            protocol,
        })
    }
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

    #[test]
    fn pppoe_ies_golden() {
        let mut w = Writer::new();
        BbfOuterHeaderCreation::pppoe(0x1234).emit(&mut w);
        BbfOuterHeaderRemoval::PPP_PPPOE_ETHERNET.emit(&mut w);
        emit_pppoe_session_id(&mut w, 0x1234);
        PppProtocol::DATA.emit(&mut w);
        PppProtocol {
            control: false,
            data: false,
            protocol: Some(0xc021),
        }
        .emit(&mut w);
        emit_mtu(&mut w, 1492);
        let b = w.finish().unwrap();
        assert_eq!(
            b,
            [
                0x80, 0x02, 0, 8, 0x0d, 0xe9, 0x04, 0x00, 0, 0, 0x12, 0x34, // OHC: PPP
                0x80, 0x03, 0, 3, 0x0d, 0xe9, 3, // OHR: PPP/PPPoE/Ethernet
                0x80, 0x04, 0, 4, 0x0d, 0xe9, 0x12, 0x34, // PPPoE Session ID
                0x80, 0x05, 0, 3, 0x0d, 0xe9, 0x02, // PPP Protocol: data
                0x80, 0x05, 0, 5, 0x0d, 0xe9, 0x01, 0xc0, 0x21, // PPP Protocol: LCP
                0x80, 0x08, 0, 4, 0x0d, 0xe9, 0x05, 0xd4, // MTU 1492
            ]
        );
        let ies: Vec<_> = IeIter::new(&b).collect::<Result<_, _>>().unwrap();
        assert!(
            ies.iter()
                .all(|i| i.enterprise_id == Some(BBF_ENTERPRISE_ID))
        );
        assert_eq!(
            BbfOuterHeaderCreation::parse(ies[0].data),
            Ok(BbfOuterHeaderCreation::pppoe(0x1234))
        );
        assert_eq!(
            BbfOuterHeaderRemoval::parse(ies[1].data),
            Ok(BbfOuterHeaderRemoval::PPP_PPPOE_ETHERNET)
        );
        assert_eq!(parse_pppoe_session_id(ies[2].data), Ok(0x1234));
        assert_eq!(PppProtocol::parse(ies[3].data), Ok(PppProtocol::DATA));
        assert_eq!(
            PppProtocol::parse(ies[4].data).unwrap().protocol,
            Some(0xc021)
        );
        assert_eq!(parse_mtu(ies[5].data), Ok(1492));
        // Description only: both ids read as 0.
        assert_eq!(
            BbfOuterHeaderCreation::parse(&[0x04, 0x00]),
            Ok(BbfOuterHeaderCreation::pppoe(0))
        );
    }

    #[test]
    fn pppoe_ies_reject_short_content() {
        assert!(BbfOuterHeaderCreation::parse(&[0x04]).is_err());
        assert!(BbfOuterHeaderCreation::parse(&[0x04, 0, 0, 0, 0x12]).is_err());
        assert!(BbfOuterHeaderRemoval::parse(&[]).is_err());
        assert!(parse_pppoe_session_id(&[0x12]).is_err());
        assert!(PppProtocol::parse(&[]).is_err());
        assert!(PppProtocol::parse(&[0x01, 0xc0]).is_err());
        assert!(parse_mtu(&[5]).is_err());
    }
}
