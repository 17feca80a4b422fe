//! Whole-frame helpers: the L2 header with up to two VLAN tags, and builders for the frames
//! the control plane originates (DHCP replies, ARP).

use alloc::vec::Vec;
use core::net::Ipv4Addr;

use super::arp::ArpRepr;
use super::ethernet::{self, MIN_FRAME_LEN};
use super::ipv4::{IpProtocol, Ipv4Repr};
use super::udp::{self, UdpRepr};
use super::vlan::{TAG_LEN, VID_MASK};
use super::{Error, EtherType, EthernetAddress, Result, check_len};

/// The Ethernet header of a subscriber frame with its VLAN tags.
///
/// - untagged: `svlan = None, cvlan = None`;
/// - one 802.1Q tag (TPID 0x8100): `svlan = None, cvlan = Some(vid)`;
/// - one 802.1ad tag (TPID 0x88a8) alone: `svlan = Some(vid), cvlan = None`;
/// - QinQ (outer TPID 0x88a8 or 0x8100, inner TPID 0x8100): `svlan = Some(outer),
///   cvlan = Some(inner)`.
///
/// `emit` writes the S-tag with TPID 0x88a8 and the C-tag with TPID 0x8100, PCP/DEI 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct L2Header {
    /// Destination MAC.
    pub dst: EthernetAddress,
    /// Source MAC.
    pub src: EthernetAddress,
    /// Outer (service) VLAN id, 0-4095.
    pub svlan: Option<u16>,
    /// Inner (customer) VLAN id, 0-4095.
    pub cvlan: Option<u16>,
    /// EtherType of the payload after all tags.
    pub ethertype: EtherType,
}

fn is_tpid(t: u16) -> bool {
    t == 0x8100 || t == 0x88a8
}

impl L2Header {
    /// Parses the header at the start of `frame`. Returns the header and the offset of the
    /// payload (14, 18 or 22). A third VLAN tag is `Unsupported`.
    #[inline]
    pub fn parse(frame: &[u8]) -> Result<(L2Header, usize)> {
        check_len(frame, ethernet::HEADER_LEN)?;
        let dst = EthernetAddress([frame[0], frame[1], frame[2], frame[3], frame[4], frame[5]]);
        let src = EthernetAddress([frame[6], frame[7], frame[8], frame[9], frame[10], frame[11]]);
        let t0 = u16::from_be_bytes([frame[12], frame[13]]);
        let mut h = L2Header {
            dst,
            src,
            svlan: None,
            cvlan: None,
            ethertype: EtherType::from(t0),
        };
        if !is_tpid(t0) {
            return Ok((h, ethernet::HEADER_LEN));
        }
        check_len(frame, ethernet::HEADER_LEN + TAG_LEN)?;
        let vid0 = u16::from_be_bytes([frame[14], frame[15]]) & VID_MASK;
        let t1 = u16::from_be_bytes([frame[16], frame[17]]);
        if t1 != 0x8100 {
            if t1 == 0x88a8 {
                return Err(Error::Unsupported {
                    what: "vlan stack (802.1ad tag inside another tag)",
                });
            }
            if t0 == 0x88a8 {
                h.svlan = Some(vid0);
            } else {
                h.cvlan = Some(vid0);
            }
            h.ethertype = EtherType::from(t1);
            return Ok((h, ethernet::HEADER_LEN + TAG_LEN));
        }
        check_len(frame, ethernet::HEADER_LEN + 2 * TAG_LEN)?;
        let vid1 = u16::from_be_bytes([frame[18], frame[19]]) & VID_MASK;
        let t2 = u16::from_be_bytes([frame[20], frame[21]]);
        if is_tpid(t2) {
            return Err(Error::Unsupported {
                what: "vlan stack (expected at most two tags, found three)",
            });
        }
        h.svlan = Some(vid0);
        h.cvlan = Some(vid1);
        h.ethertype = EtherType::from(t2);
        Ok((h, ethernet::HEADER_LEN + 2 * TAG_LEN))
    }

    /// Number of VLAN tags.
    #[inline]
    pub fn tag_count(&self) -> usize {
        usize::from(self.svlan.is_some()) + usize::from(self.cvlan.is_some())
    }

    /// Header length: 14 plus 4 per tag.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        ethernet::HEADER_LEN + TAG_LEN * self.tag_count()
    }

    /// Writes the header into `buf[..buffer_len()]`. VLAN ids are masked to 12 bits.
    /// Panics if `buf` is shorter than [`L2Header::buffer_len`].
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) {
        let buf = &mut buf[..self.buffer_len()];
        buf[0..6].copy_from_slice(&self.dst.0);
        buf[6..12].copy_from_slice(&self.src.0);
        let mut at = 12;
        if let Some(s) = self.svlan {
            buf[at..at + 2].copy_from_slice(&0x88a8u16.to_be_bytes());
            buf[at + 2..at + 4].copy_from_slice(&(s & VID_MASK).to_be_bytes());
            at += TAG_LEN;
        }
        if let Some(c) = self.cvlan {
            buf[at..at + 2].copy_from_slice(&0x8100u16.to_be_bytes());
            buf[at + 2..at + 4].copy_from_slice(&(c & VID_MASK).to_be_bytes());
            at += TAG_LEN;
        }
        buf[at..at + 2].copy_from_slice(&u16::from(self.ethertype).to_be_bytes());
    }
}

/// Builds an Ethernet (+ tags) / IPv4 / UDP frame with `payload`. The EtherType of `l2` is
/// replaced by IPv4. IPv4: DF set, identification 0, TOS 0, header checksum filled; UDP
/// checksum filled. Frames shorter than 60 bytes are zero-padded to 60.
/// The IPv4 total length saturates at 65535 for oversize payloads (callers keep payloads
/// below the MTU).
pub fn build_ipv4_udp(
    l2: &L2Header,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let l2 = L2Header {
        ethertype: EtherType::Ipv4,
        ..*l2
    };
    let l2_len = l2.buffer_len();
    let udp_len = udp::HEADER_LEN + payload.len();
    let ip_payload = u16::try_from(udp_len).unwrap_or(u16::MAX - 20);
    let total = l2_len + 20 + udp_len;
    let mut out = alloc::vec![0u8; total.max(MIN_FRAME_LEN)];
    l2.emit(&mut out);
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IpProtocol::Udp,
        payload_len: ip_payload,
        ttl,
        tos: 0,
        ident: 0,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    ip.emit(&mut out[l2_len..]);
    let udp_start = l2_len + 20;
    UdpRepr {
        src_port,
        dst_port,
        payload_len: ip_payload.saturating_sub(udp::HEADER_LEN as u16),
    }
    .emit(&mut out[udp_start..]);
    out[udp_start + udp::HEADER_LEN..total].copy_from_slice(payload);
    udp::fill_checksum(src, dst, &mut out[udp_start..total]);
    out
}

/// Builds an Ethernet (+ tags) / ARP frame, zero-padded to 60 bytes. The EtherType of `l2`
/// is replaced by ARP.
pub fn build_arp(l2: &L2Header, repr: &ArpRepr) -> Vec<u8> {
    let l2 = L2Header {
        ethertype: EtherType::Arp,
        ..*l2
    };
    let l2_len = l2.buffer_len();
    let mut out = alloc::vec![0u8; (l2_len + repr.buffer_len()).max(MIN_FRAME_LEN)];
    l2.emit(&mut out);
    repr.emit(&mut out[l2_len..]);
    out
}

/// Writes an Ethernet/ARP frame into `buf` without allocating and returns its length
/// (60, padded). Returns `Err(BufferTooSmall)` if `buf` is too short.
pub fn write_arp(buf: &mut [u8], l2: &L2Header, repr: &ArpRepr) -> Result<usize> {
    let l2 = L2Header {
        ethertype: EtherType::Arp,
        ..*l2
    };
    let l2_len = l2.buffer_len();
    let len = (l2_len + repr.buffer_len()).max(MIN_FRAME_LEN);
    if buf.len() < len {
        return Err(Error::BufferTooSmall {
            needed: len,
            capacity: buf.len(),
        });
    }
    buf[..len].fill(0);
    l2.emit(buf);
    repr.emit(&mut buf[l2_len..]);
    Ok(len)
}

/// The IPv4 packet at `l3` of `frame` split in two as a router would, after `at` bytes of
/// its payload (a multiple of 8): each part behind a copy of the link header and the IPv4
/// header (options included), the first with More Fragments, the second at offset `at`,
/// Don't Fragment cleared in both. Test traffic: frames are not padded.
#[cfg(test)]
pub fn split_ipv4(frame: &[u8], l3: usize, at: usize) -> (Vec<u8>, Vec<u8>) {
    assert_eq!(at % 8, 0, "fragment offsets count 8-byte units");
    let hl = usize::from(frame[l3] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([frame[l3 + 2], frame[l3 + 3]]));
    let payload = &frame[l3 + hl..l3 + total];
    let part = |data: &[u8], flags_and_offset: u16| {
        let mut f = frame[..l3 + hl].to_vec();
        f.extend_from_slice(data);
        let len = (hl + data.len()) as u16;
        f[l3 + 2..l3 + 4].copy_from_slice(&len.to_be_bytes());
        f[l3 + 6..l3 + 8].copy_from_slice(&flags_and_offset.to_be_bytes());
        super::ipv4::fill_checksum(&mut f[l3..]);
        f
    };
    (
        part(&payload[..at], 0x2000),
        part(&payload[at..], (at / 8) as u16),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::arp::ArpOperation;
    use crate::wire::test_util::hex;
    use crate::wire::udp::verify_checksum;
    use crate::wire::{UdpRepr, ipv4};
    use proptest::prelude::*;

    /// dhclient DHCPDISCOVER from 52:54:00:12:34:56 (xid 0x3903f326): broadcast, 0.0.0.0:68 ->
    /// 255.255.255.255:67, TOS 0x10, TTL 128, options 53=1, 50 (requested 100.64.0.10),
    /// 12 "sub1", 55 parameter request list, end, padded to a 300-byte BOOTP payload (342 bytes).
    pub(crate) fn dhcp_discover() -> Vec<u8> {
        hex("
             ffffffffffff525400123456080045100148000000008011399600000000ffff
             ffff0044004301347687010106003903f3260000000000000000000000000000
             0000000000005254001234560000000000000000000000000000000000000000
             0000000000000000000000000000000000000000000000000000000000000000
             0000000000000000000000000000000000000000000000000000000000000000
             0000000000000000000000000000000000000000000000000000000000000000
             0000000000000000000000000000000000000000000000000000000000000000
             0000000000000000000000000000000000000000000000000000000000000000
             0000000000000000000000000000000000000000000063825363350101320464
             40000a0c0473756231370d011c02030f06770c2c2f1a792aff00000000000000
             00000000000000000000000000000000000000000000")
    }

    #[test]
    fn golden_dhcp_discover() {
        let f = dhcp_discover();
        let (l2, off) = L2Header::parse(&f).unwrap();
        assert_eq!(off, 14);
        assert_eq!(l2.dst, EthernetAddress::BROADCAST);
        assert_eq!(l2.svlan, None);
        assert_eq!(l2.cvlan, None);
        assert_eq!(l2.ethertype, EtherType::Ipv4);
        let ip = Ipv4Repr::parse(&f[off..]).unwrap();
        assert_eq!(ip.src_addr, Ipv4Addr::UNSPECIFIED);
        assert_eq!(ip.dst_addr, Ipv4Addr::BROADCAST);
        assert_eq!(ip.protocol, IpProtocol::Udp);
        assert_eq!(ip.tos, 0x10);
        let udp_b = &f[off + 20..off + 20 + usize::from(ip.payload_len)];
        let u = UdpRepr::parse(udp_b).unwrap();
        assert_eq!((u.src_port, u.dst_port), (68, 67));
        assert_eq!(f.len(), 342);
        assert!(verify_checksum(ip.src_addr, ip.dst_addr, udp_b));
        assert_ne!(&udp_b[6..8], &[0, 0], "dhclient fills the UDP checksum");
        // Magic cookie at the documented offset of the BOOTP payload.
        assert_eq!(&udp_b[8 + 236..8 + 240], &[0x63, 0x82, 0x53, 0x63]);
        // Re-emitting the parsed L2 header gives the same bytes.
        let mut hdr = [0u8; 14];
        l2.emit(&mut hdr);
        assert_eq!(&hdr[..], &f[..14]);
    }

    /// 802.1ad S-tag 100 + 802.1Q C-tag 200 around an IPv4 frame (as a BNG receives from an
    /// OLT or access switch).
    const QINQ: &str = "02005e000101 525400123456 88a8 0064 8100 00c8 0800
        4500 001c 0001 0000 4001 0000 6440000a 08080808 0800 f7ff 0000 0000
        0000 0000 0000 0000 0000 0000 0000 0000 0000 ";

    #[test]
    fn golden_qinq() {
        let f = hex(QINQ);
        let (l2, off) = L2Header::parse(&f).unwrap();
        assert_eq!(off, 22);
        assert_eq!(l2.svlan, Some(100));
        assert_eq!(l2.cvlan, Some(200));
        assert_eq!(l2.ethertype, EtherType::Ipv4);
        assert_eq!(l2.buffer_len(), 22);
        let mut out = [0u8; 22];
        l2.emit(&mut out);
        assert_eq!(&out[..], &f[..22]);
        assert!(ipv4::Header::parse(&f[off..]).is_ok());
    }

    #[test]
    fn vlan_variants() {
        // 0x8100 outer + 0x8100 inner is QinQ too.
        let mut f = hex(QINQ);
        f[12] = 0x81;
        f[13] = 0x00;
        let (l2, _) = L2Header::parse(&f).unwrap();
        assert_eq!((l2.svlan, l2.cvlan), (Some(100), Some(200)));
        // Single 802.1Q tag.
        let single = hex("02005e000101 525400123456 8100 0fff 0806 00");
        let (l2, off) = L2Header::parse(&single).unwrap();
        assert_eq!((l2.svlan, l2.cvlan, off), (None, Some(4095), 18));
        assert_eq!(l2.ethertype, EtherType::Arp);
        // Single S-tag.
        let s_only = hex("02005e000101 525400123456 88a8 0005 0800");
        let (l2, _) = L2Header::parse(&s_only).unwrap();
        assert_eq!((l2.svlan, l2.cvlan), (Some(5), None));
        // Three tags.
        let triple = hex("02005e000101 525400123456 88a8 0005 8100 0006 8100 0007 0800");
        assert!(matches!(
            L2Header::parse(&triple),
            Err(Error::Unsupported { .. })
        ));
        // Truncated tags.
        assert!(L2Header::parse(&single[..16]).is_err());
        assert!(L2Header::parse(&f[..20]).is_err());
    }

    #[test]
    fn build_udp_frame() {
        let l2 = L2Header {
            dst: EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
            src: EthernetAddress([2, 0, 0x5e, 0, 1, 1]),
            svlan: Some(100),
            cvlan: Some(200),
            ethertype: EtherType::Unknown(0),
        };
        let src = Ipv4Addr::new(100, 64, 0, 1);
        let dst = Ipv4Addr::new(100, 64, 0, 10);
        let f = build_ipv4_udp(&l2, src, dst, 67, 68, 64, b"hello dhcp");
        let (p, off) = L2Header::parse(&f).unwrap();
        assert_eq!(
            p,
            L2Header {
                ethertype: EtherType::Ipv4,
                ..l2
            }
        );
        let ip = Ipv4Repr::parse(&f[off..]).unwrap();
        assert_eq!((ip.src_addr, ip.dst_addr, ip.ttl), (src, dst, 64));
        let udp_b = &f[off + 20..off + 20 + usize::from(ip.payload_len)];
        assert!(verify_checksum(src, dst, udp_b));
        assert_ne!(&udp_b[6..8], &[0, 0]);
        assert_eq!(&udp_b[8..], b"hello dhcp");
        assert_eq!(f.len(), 22 + 20 + 8 + 10);
        // Small frames are padded to the Ethernet minimum.
        let small = build_ipv4_udp(
            &L2Header {
                svlan: None,
                cvlan: None,
                ..l2
            },
            src,
            dst,
            1,
            2,
            1,
            b"",
        );
        assert_eq!(small.len(), 60);
        assert!(Ipv4Repr::parse(&small[14..]).is_ok());
    }

    #[test]
    fn build_arp_frame() {
        let l2 = L2Header {
            dst: EthernetAddress::BROADCAST,
            src: EthernetAddress([2, 0, 0x5e, 0, 1, 1]),
            svlan: None,
            cvlan: Some(7),
            ethertype: EtherType::Ipv4,
        };
        let repr = ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: l2.src,
            source_protocol_addr: Ipv4Addr::new(100, 64, 0, 1),
            target_hardware_addr: EthernetAddress::ZERO,
            target_protocol_addr: Ipv4Addr::new(100, 64, 0, 10),
        };
        let f = build_arp(&l2, &repr);
        assert_eq!(f.len(), 60);
        let (p, off) = L2Header::parse(&f).unwrap();
        assert_eq!(p.ethertype, EtherType::Arp);
        assert_eq!(p.cvlan, Some(7));
        assert_eq!(ArpRepr::parse(&f[off..]).unwrap(), repr);
        let mut buf = [0xeeu8; 64];
        let n = write_arp(&mut buf, &l2, &repr).unwrap();
        assert_eq!(&buf[..n], &f[..]);
        assert!(write_arp(&mut buf[..50], &l2, &repr).is_err());
    }

    fn vid() -> impl Strategy<Value = Option<u16>> {
        proptest::option::of(0u16..4096)
    }

    proptest! {
        #[test]
        fn l2_round_trip(d in any::<[u8; 6]>(), s in any::<[u8; 6]>(), sv in vid(), cv in vid(),
                         t in any::<u16>().prop_filter("not a TPID", |t| !is_tpid(*t))) {
            let h = L2Header { dst: EthernetAddress(d), src: EthernetAddress(s), svlan: sv, cvlan: cv,
                               ethertype: t.into() };
            let mut b = [0u8; 22];
            h.emit(&mut b);
            let (p, off) = L2Header::parse(&b[..h.buffer_len()]).unwrap();
            prop_assert_eq!(p, h);
            prop_assert_eq!(off, h.buffer_len());
        }

        #[test]
        fn l2_parse_never_panics(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok((h, off)) = L2Header::parse(&b) {
                prop_assert!(off <= b.len());
                prop_assert_eq!(off, h.buffer_len());
            }
        }
    }
}
