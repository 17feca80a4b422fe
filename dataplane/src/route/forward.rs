//! TTL and hop-limit handling of forwarded packets.

use crate::wire::checksum;

use super::HopLimitError;

/// Decrements the TTL of the IPv4 packet whose header starts `packet`, updating the header
/// checksum incrementally (RFC 1624 equation 3; the TTL shares its 16-bit word with the
/// protocol), and returns the new TTL.
///
/// RFC 1812 section 5.3.1: a router that would forward a packet with TTL 0 or 1 drops it
/// instead and (unless the destination is multicast) answers with ICMP Time Exceeded, code
/// 0. Then this returns [`HopLimitError::Expired`] and leaves the packet unchanged, so that
/// it can be quoted as received by [`super::icmpv4_error`]. Packets addressed to the router
/// itself are delivered whatever their TTL and must not come here.
///
/// Only the version and the 20 header bytes are checked; the caller has validated the
/// header (its checksum stays valid if it was valid).
#[inline]
pub fn forward_ipv4(packet: &mut [u8]) -> Result<u8, HopLimitError> {
    let Some(header) = packet.get_mut(..20) else {
        return Err(HopLimitError::Malformed);
    };
    if header[0] >> 4 != 4 {
        return Err(HopLimitError::Malformed);
    }
    let ttl = header[8];
    if ttl <= 1 {
        return Err(HopLimitError::Expired);
    }
    let old = u16::from_be_bytes([ttl, header[9]]);
    header[8] = ttl - 1;
    let new = u16::from_be_bytes([ttl - 1, header[9]]);
    let c = checksum::update_u16(u16::from_be_bytes([header[10], header[11]]), old, new);
    header[10..12].copy_from_slice(&c.to_be_bytes());
    Ok(ttl - 1)
}

/// Decrements the hop limit of the IPv6 packet whose header starts `packet` and returns the
/// new value (IPv6 has no header checksum). A hop limit of 0 or 1 is
/// [`HopLimitError::Expired`] (RFC 8200 section 3, RFC 4443 section 3.3: answer with Time
/// Exceeded code 0) and the packet is left unchanged.
#[inline]
pub fn forward_ipv6(packet: &mut [u8]) -> Result<u8, HopLimitError> {
    let Some(header) = packet.get_mut(..40) else {
        return Err(HopLimitError::Malformed);
    };
    if header[0] >> 4 != 6 {
        return Err(HopLimitError::Malformed);
    }
    let hop_limit = header[7];
    if hop_limit <= 1 {
        return Err(HopLimitError::Expired);
    }
    header[7] = hop_limit - 1;
    Ok(hop_limit - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::{Ipv4Repr, fill_checksum, verify_checksum};
    use crate::wire::{IpProtocol, ipv4};
    use core::net::Ipv4Addr;
    use proptest::prelude::*;

    fn header(ttl: u8, protocol: u8, tos: u8) -> [u8; 20] {
        let mut b = [0u8; 20];
        Ipv4Repr {
            src_addr: Ipv4Addr::new(192, 0, 2, 1),
            dst_addr: Ipv4Addr::new(198, 51, 100, 7),
            protocol: IpProtocol::from(protocol),
            payload_len: 0,
            ttl,
            tos,
            ident: 0x1234,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        }
        .emit(&mut b);
        b
    }

    #[test]
    fn decrements_and_reports_expiry() {
        let mut h = header(64, 17, 0);
        assert_eq!(forward_ipv4(&mut h), Ok(63));
        assert!(verify_checksum(&h));
        assert_eq!(ipv4::Header::parse(&h).unwrap().ttl(), 63);
        for ttl in [0, 1] {
            let mut h = header(ttl, 6, 0);
            let before = h;
            assert_eq!(forward_ipv4(&mut h), Err(HopLimitError::Expired));
            assert_eq!(h, before);
        }
        let mut h = header(2, 1, 0);
        assert_eq!(forward_ipv4(&mut h), Ok(1));
        assert_eq!(forward_ipv4(&mut h), Err(HopLimitError::Expired));
        assert_eq!(forward_ipv4(&mut h[..19]), Err(HopLimitError::Malformed));
        h[0] = 0x65;
        assert_eq!(forward_ipv4(&mut h), Err(HopLimitError::Malformed));
    }

    #[test]
    fn ipv6_hop_limit() {
        let mut h = [0u8; 40];
        h[0] = 0x60;
        h[7] = 64;
        assert_eq!(forward_ipv6(&mut h), Ok(63));
        assert_eq!(h[7], 63);
        h[7] = 1;
        assert_eq!(forward_ipv6(&mut h), Err(HopLimitError::Expired));
        assert_eq!(h[7], 1);
        assert_eq!(forward_ipv6(&mut h[..39]), Err(HopLimitError::Malformed));
        h[0] = 0x45;
        assert_eq!(forward_ipv6(&mut h), Err(HopLimitError::Malformed));
    }

    proptest! {
        #[test]
        fn incremental_matches_a_full_recompute(ttl in 2u8.., protocol in any::<u8>(), tos in any::<u8>()) {
            let mut h = header(ttl, protocol, tos);
            prop_assert_eq!(forward_ipv4(&mut h), Ok(ttl - 1));
            prop_assert!(verify_checksum(&h));
            let mut full = h;
            fill_checksum(&mut full);
            prop_assert_eq!(h, full);
        }
    }
}
