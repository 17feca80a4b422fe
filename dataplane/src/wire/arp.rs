//! ARP for IPv4 over Ethernet (RFC 826).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-------------------------------+-------------------------------+
//! |   hardware type (1 = Ether)   |   protocol type (0x0800)      |
//! +---------------+---------------+-------------------------------+
//! |  hlen (6)     |  plen (4)     |   operation (1 req, 2 reply)  |
//! +---------------+---------------+-------------------------------+
//! |  sender hardware address (6) | sender protocol address (4)    |
//! |  target hardware address (6) | target protocol address (4)    |
//! +---------------------------------------------------------------+
//! ```

use core::net::Ipv4Addr;

use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{Error, EthernetAddress, Result, check_len, enum_with_unknown};

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;
/// Hardware type Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;
/// Protocol type IPv4.
pub const PTYPE_IPV4: u16 = 0x0800;

enum_with_unknown! {
    /// ARP operation code.
    pub enum ArpOperation(u16) {
        /// "Who has target protocol address?"
        Request = 1,
        /// "Target protocol address is at sender hardware address."
        Reply = 2,
    }
}

/// Zero-copy view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Header {
    htype: U16,
    ptype: U16,
    hlen: u8,
    plen: u8,
    oper: U16,
    sha: [u8; 6],
    spa: [u8; 4],
    tha: [u8; 6],
    tpa: [u8; 4],
}

impl Header {
    /// Borrows the packet at the start of `buf` and checks that it is Ethernet/IPv4 ARP.
    pub fn parse(buf: &[u8]) -> Result<&Header> {
        check_len(buf, PACKET_LEN)?;
        let (h, _) = Header::ref_from_prefix(buf).map_err(|_| Error::Malformed { what: "arp" })?;
        h.check()?;
        Ok(h)
    }
    /// Mutable variant of [`Header::parse`].
    pub fn parse_mut(buf: &mut [u8]) -> Result<&mut Header> {
        check_len(buf, PACKET_LEN)?;
        let (h, _) = Header::mut_from_prefix(buf).map_err(|_| Error::Malformed { what: "arp" })?;
        h.check()?;
        Ok(h)
    }
    fn check(&self) -> Result<()> {
        if self.htype.get() != HTYPE_ETHERNET || self.hlen != 6 {
            return Err(Error::Unsupported {
                what: "arp hardware type (expected Ethernet, hlen 6)",
            });
        }
        if self.ptype.get() != PTYPE_IPV4 || self.plen != 4 {
            return Err(Error::Unsupported {
                what: "arp protocol type (expected IPv4, plen 4)",
            });
        }
        Ok(())
    }
    /// Operation.
    #[inline]
    pub fn operation(&self) -> ArpOperation {
        self.oper.get().into()
    }
    /// Sender hardware address.
    #[inline]
    pub fn sender_mac(&self) -> EthernetAddress {
        EthernetAddress(self.sha)
    }
    /// Sender protocol address.
    #[inline]
    pub fn sender_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.spa)
    }
    /// Target hardware address.
    #[inline]
    pub fn target_mac(&self) -> EthernetAddress {
        EthernetAddress(self.tha)
    }
    /// Target protocol address.
    #[inline]
    pub fn target_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.tpa)
    }
    /// Sets the operation.
    #[inline]
    pub fn set_operation(&mut self, op: ArpOperation) {
        self.oper.set(op.into());
    }
    /// Sets the sender addresses.
    #[inline]
    pub fn set_sender(&mut self, mac: EthernetAddress, ip: Ipv4Addr) {
        self.sha = mac.0;
        self.spa = ip.octets();
    }
    /// Sets the target addresses.
    #[inline]
    pub fn set_target(&mut self, mac: EthernetAddress, ip: Ipv4Addr) {
        self.tha = mac.0;
        self.tpa = ip.octets();
    }
    /// Turns a request into its reply in place: the target becomes the old sender and the
    /// sender becomes (`mac`, `ip`).
    pub fn make_reply(&mut self, mac: EthernetAddress, ip: Ipv4Addr) {
        self.tha = self.sha;
        self.tpa = self.spa;
        self.sha = mac.0;
        self.spa = ip.octets();
        self.set_operation(ArpOperation::Reply);
    }
}

/// High-level Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Request or reply.
    pub operation: ArpOperation,
    /// Sender hardware address.
    pub source_hardware_addr: EthernetAddress,
    /// Sender protocol address.
    pub source_protocol_addr: Ipv4Addr,
    /// Target hardware address (zero in requests).
    pub target_hardware_addr: EthernetAddress,
    /// Target protocol address.
    pub target_protocol_addr: Ipv4Addr,
}

impl ArpRepr {
    /// Parses an ARP packet (the Ethernet payload; trailing padding is ignored).
    pub fn parse(buf: &[u8]) -> Result<ArpRepr> {
        let h = Header::parse(buf)?;
        Ok(ArpRepr {
            operation: h.operation(),
            source_hardware_addr: h.sender_mac(),
            source_protocol_addr: h.sender_ip(),
            target_hardware_addr: h.target_mac(),
            target_protocol_addr: h.target_ip(),
        })
    }

    /// Packet length: 28.
    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes the packet into `buf[..28]`. Panics if `buf` is shorter than 28 bytes.
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0..2].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
        buf[2..4].copy_from_slice(&PTYPE_IPV4.to_be_bytes());
        buf[4] = 6;
        buf[5] = 4;
        buf[6..8].copy_from_slice(&u16::from(self.operation).to_be_bytes());
        buf[8..14].copy_from_slice(&self.source_hardware_addr.0);
        buf[14..18].copy_from_slice(&self.source_protocol_addr.octets());
        buf[18..24].copy_from_slice(&self.target_hardware_addr.0);
        buf[24..28].copy_from_slice(&self.target_protocol_addr.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_util::hex;
    use crate::wire::{EtherType, EthernetRepr};
    use proptest::prelude::*;

    /// A Linux host (52:54:00:12:34:56, 100.64.0.10) asking who has 100.64.0.1, as captured
    /// with its 18 bytes of zero padding.
    const ARP_REQUEST: &str = "ffffffffffff 525400123456 0806
        0001 0800 06 04 0001 525400123456 6440000a 000000000000 64400001
        000000000000000000000000000000000000";

    #[test]
    fn golden_request() {
        let f = hex(ARP_REQUEST);
        assert_eq!(f.len(), 60);
        let eth = EthernetRepr::parse(&f).unwrap();
        assert_eq!(eth.ethertype, EtherType::Arp);
        let r = ArpRepr::parse(&f[14..]).unwrap();
        assert_eq!(
            r,
            ArpRepr {
                operation: ArpOperation::Request,
                source_hardware_addr: EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
                source_protocol_addr: Ipv4Addr::new(100, 64, 0, 10),
                target_hardware_addr: EthernetAddress::ZERO,
                target_protocol_addr: Ipv4Addr::new(100, 64, 0, 1),
            }
        );
        let mut out = [0u8; 28];
        r.emit(&mut out);
        assert_eq!(&out[..], &f[14..42]);
    }

    #[test]
    fn reply_in_place() {
        let mut f = hex(ARP_REQUEST);
        let gw = EthernetAddress([2, 0, 0x5e, 0, 1, 1]);
        Header::parse_mut(&mut f[14..])
            .unwrap()
            .make_reply(gw, Ipv4Addr::new(100, 64, 0, 1));
        let r = ArpRepr::parse(&f[14..]).unwrap();
        assert_eq!(r.operation, ArpOperation::Reply);
        assert_eq!(r.source_hardware_addr, gw);
        assert_eq!(r.target_protocol_addr, Ipv4Addr::new(100, 64, 0, 10));
    }

    #[test]
    fn rejects_non_ethernet_ipv4() {
        let mut f = hex(ARP_REQUEST);
        f[15] = 6; // htype 6 (IEEE 802)
        assert!(ArpRepr::parse(&f[14..]).is_err());
        let f = hex(ARP_REQUEST);
        assert!(ArpRepr::parse(&f[14..41]).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(op in any::<u16>(), sha in any::<[u8; 6]>(), spa in any::<u32>(), tha in any::<[u8; 6]>(), tpa in any::<u32>()) {
            let r = ArpRepr {
                operation: op.into(),
                source_hardware_addr: EthernetAddress(sha),
                source_protocol_addr: spa.into(),
                target_hardware_addr: EthernetAddress(tha),
                target_protocol_addr: tpa.into(),
            };
            let mut b = [0u8; PACKET_LEN];
            r.emit(&mut b);
            prop_assert_eq!(ArpRepr::parse(&b).unwrap(), r);
        }
    }
}
