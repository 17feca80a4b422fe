//! IPv6 fixed header (RFC 8200 section 3) and the walk over its extension headers
//! (RFC 8200 section 4).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Traffic Class |           Flow Label                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Payload Length        |  Next Header  |   Hop Limit   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                     Source Address (128 bits)                 +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                  Destination Address (128 bits)               +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use core::net::Ipv6Addr;

use zerocopy::network_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{Error, Result, check_len, checksum};

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;

/// Next Header values this module knows (IANA "Assigned Internet Protocol Numbers").
pub mod next_header {
    /// Hop-by-Hop Options (RFC 8200 section 4.3).
    pub const HOP_BY_HOP: u8 = 0;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// Routing header (RFC 8200 section 4.4).
    pub const ROUTING: u8 = 43;
    /// Fragment header (RFC 8200 section 4.5).
    pub const FRAGMENT: u8 = 44;
    /// Encapsulating Security Payload (RFC 4303); what follows it is encrypted.
    pub const ESP: u8 = 50;
    /// Authentication Header (RFC 4302).
    pub const AH: u8 = 51;
    /// ICMPv6 (RFC 4443).
    pub const ICMPV6: u8 = 58;
    /// No Next Header.
    pub const NO_NEXT: u8 = 59;
    /// Destination Options (RFC 8200 section 4.6).
    pub const DEST_OPTS: u8 = 60;
}

/// Zero-copy view of the 40-byte IPv6 header (extension headers follow it in the buffer).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Header {
    ver_tc_flow: U32,
    payload_len: U16,
    next_header: u8,
    hop_limit: u8,
    src: [u8; 16],
    dst: [u8; 16],
}

impl Header {
    /// Borrows the header at the start of `buf` and validates the version and the payload
    /// length against the buffer (which may be longer, e.g. with Ethernet padding).
    /// Jumbograms (RFC 2675, payload length 0 with a Jumbo Payload option) are not recognised:
    /// such a packet reads as one with an empty payload.
    pub fn parse(buf: &[u8]) -> Result<&Header> {
        check_len(buf, HEADER_LEN)?;
        let (h, _) = Header::ref_from_prefix(buf).map_err(|_| Error::Malformed { what: "ipv6" })?;
        h.check(buf.len())?;
        Ok(h)
    }

    /// Mutable variant of [`Header::parse`].
    pub fn parse_mut(buf: &mut [u8]) -> Result<&mut Header> {
        check_len(buf, HEADER_LEN)?;
        let len = buf.len();
        let (h, _) = Header::mut_from_prefix(buf).map_err(|_| Error::Malformed { what: "ipv6" })?;
        h.check(len)?;
        Ok(h)
    }

    fn check(&self, buf_len: usize) -> Result<()> {
        if self.version() != 6 {
            return Err(Error::Malformed {
                what: "ipv6 version (expected 6)",
            });
        }
        let total = HEADER_LEN + usize::from(self.payload_len.get());
        if buf_len < total {
            return Err(Error::Truncated {
                expected: total,
                found: buf_len,
            });
        }
        Ok(())
    }

    /// IP version (6 after a successful parse).
    #[inline]
    pub fn version(&self) -> u8 {
        (self.ver_tc_flow.get() >> 28) as u8
    }
    /// Traffic class (DSCP and ECN).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.ver_tc_flow.get() >> 20) as u8
    }
    /// Flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.ver_tc_flow.get() & 0x000f_ffff
    }
    /// Payload length: the bytes after the fixed header, extension headers included.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        self.payload_len.get()
    }
    /// Next Header of the fixed header (see [`next_header`]).
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.next_header
    }
    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.hop_limit
    }
    /// Source address.
    #[inline]
    pub fn src(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.src)
    }
    /// Destination address.
    #[inline]
    pub fn dst(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.dst)
    }
    /// Sets the hop limit (IPv6 has no header checksum to update).
    #[inline]
    pub fn set_hop_limit(&mut self, hop_limit: u8) {
        self.hop_limit = hop_limit;
    }
    /// Decrements the hop limit by one and returns the new value; a hop limit of 0 stays 0.
    #[inline]
    pub fn decrement_hop_limit(&mut self) -> u8 {
        self.hop_limit = self.hop_limit.saturating_sub(1);
        self.hop_limit
    }
}

/// The partial sum of the IPv6 pseudo-header (RFC 8200 section 8.1): source, destination,
/// the 32-bit upper-layer packet length, three zero bytes and the Next Header value.
/// Combine it with [`checksum::sum`] of the upper-layer packet and [`checksum::fold`].
#[inline]
pub fn pseudo_header(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, upper_len: u32) -> u32 {
    let addrs = checksum::combine(checksum::sum(&src.octets()), checksum::sum(&dst.octets()));
    let rest = (upper_len >> 16) + (upper_len & 0xffff) + u32::from(next_header);
    checksum::combine(addrs, rest)
}

/// Where the upper-layer header of an IPv6 packet starts, found by walking the extension
/// headers (RFC 8200 section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpperLayer {
    /// The last Next Header value: the upper-layer protocol, or for a non-first fragment
    /// the Next Header of its Fragment header.
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub offset: usize,
    /// False when the packet is a fragment with a non-zero offset: the bytes at `offset`
    /// are then the middle of the upper-layer packet, not its header.
    pub first_fragment: bool,
}

/// Walks the extension headers of the IPv6 packet at the start of `buf` (which must hold the
/// whole packet, as [`Header::parse`] checks). Hop-by-Hop, Routing and Destination Options
/// (length in 8-octet units, RFC 8200 sections 4.3-4.6), Authentication (4-octet units,
/// RFC 4302 section 2.2) and Fragment headers are skipped; the walk stops at any other Next
/// Header (ESP and unknown values included) or at a non-first fragment. An extension header
/// that runs past the payload is `Truncated`.
pub fn upper_layer(buf: &[u8]) -> Result<UpperLayer> {
    let h = Header::parse(buf)?;
    let end = HEADER_LEN + usize::from(h.payload_len());
    let payload = &buf[..end];
    let mut protocol = h.next_header();
    let mut offset = HEADER_LEN;
    loop {
        let ext_len = match protocol {
            next_header::HOP_BY_HOP | next_header::ROUTING | next_header::DEST_OPTS => {
                (usize::from(ext_byte(payload, offset + 1)?) + 1) * 8
            }
            next_header::AH => (usize::from(ext_byte(payload, offset + 1)?) + 2) * 4,
            next_header::FRAGMENT => {
                // Next Header, reserved, offset (13 bits) + flags, identification.
                check_len(payload, offset + 8)?;
                let frag = u16::from_be_bytes([payload[offset + 2], payload[offset + 3]]) >> 3;
                if frag != 0 {
                    return Ok(UpperLayer {
                        protocol: payload[offset],
                        offset: offset + 8,
                        first_fragment: false,
                    });
                }
                8
            }
            _ => {
                return Ok(UpperLayer {
                    protocol,
                    offset,
                    first_fragment: true,
                });
            }
        };
        protocol = ext_byte(payload, offset)?;
        offset += ext_len;
        check_len(payload, offset)?;
    }
}

fn ext_byte(payload: &[u8], at: usize) -> Result<u8> {
    payload.get(at).copied().ok_or(Error::Truncated {
        expected: at + 1,
        found: payload.len(),
    })
}

/// High-level IPv6 fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    /// Source address.
    pub src_addr: Ipv6Addr,
    /// Destination address.
    pub dst_addr: Ipv6Addr,
    /// Next Header (see [`next_header`]).
    pub next_header: u8,
    /// Payload length in bytes (everything after the fixed header).
    pub payload_len: u16,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (the low 20 bits are used).
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// Parses and validates the fixed header at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Ipv6Repr> {
        let h = Header::parse(buf)?;
        Ok(Ipv6Repr {
            src_addr: h.src(),
            dst_addr: h.dst(),
            next_header: h.next_header(),
            payload_len: h.payload_len(),
            hop_limit: h.hop_limit(),
            traffic_class: h.traffic_class(),
            flow_label: h.flow_label(),
        })
    }

    /// Header length: 40.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 40-byte header into `buf[..40]`. Panics if `buf` is shorter than 40 bytes.
    pub fn emit(&self, buf: &mut [u8]) {
        let word =
            6u32 << 28 | u32::from(self.traffic_class) << 20 | (self.flow_label & 0x000f_ffff);
        buf[0..4].copy_from_slice(&word.to_be_bytes());
        buf[4..6].copy_from_slice(&self.payload_len.to_be_bytes());
        buf[6] = self.next_header;
        buf[7] = self.hop_limit;
        buf[8..24].copy_from_slice(&self.src_addr.octets());
        buf[24..40].copy_from_slice(&self.dst_addr.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_util::hex;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// `ping -6 -c1 -s 16 ::1` captured on Linux `lo`: IPv6 + ICMPv6 echo request.
    const PING6: &str = "
        6008 ed65 0018 3a40 0000 0000 0000 0000 0000 0000 0000 0001
        0000 0000 0000 0000 0000 0000 0000 0001
        8000 7194 02dc 0001 cdb1 0d6b 0000 0000 2d1d 0300 0000 0000";

    #[test]
    fn golden_header() {
        let b = hex(PING6);
        let r = Ipv6Repr::parse(&b).unwrap();
        assert_eq!(r.src_addr, Ipv6Addr::LOCALHOST);
        assert_eq!(r.dst_addr, Ipv6Addr::LOCALHOST);
        assert_eq!(r.next_header, next_header::ICMPV6);
        assert_eq!(r.payload_len, 24);
        assert_eq!(r.hop_limit, 64);
        assert_eq!(r.traffic_class, 0);
        assert_eq!(r.flow_label, 0x8ed65);
        let mut out = [0u8; HEADER_LEN];
        r.emit(&mut out);
        assert_eq!(&out[..], &b[..HEADER_LEN]);
        assert_eq!(
            upper_layer(&b).unwrap(),
            UpperLayer {
                protocol: next_header::ICMPV6,
                offset: 40,
                first_fragment: true
            }
        );
    }

    #[test]
    fn rejects_bad_headers() {
        let b = hex(PING6);
        assert!(matches!(
            Header::parse(&b[..63]),
            Err(Error::Truncated {
                expected: 64,
                found: 63
            })
        ));
        assert!(Header::parse(&b[..39]).is_err());
        let mut v4 = b.clone();
        v4[0] = 0x45;
        assert!(matches!(Header::parse(&v4), Err(Error::Malformed { .. })));
    }

    fn with_ext(exts: &[(u8, Vec<u8>)], upper: u8, tail: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        for (i, (_, ext)) in exts.iter().enumerate() {
            let mut e = ext.clone();
            e[0] = exts.get(i + 1).map_or(upper, |n| n.0);
            body.extend_from_slice(&e);
        }
        body.extend_from_slice(tail);
        let r = Ipv6Repr {
            src_addr: Ipv6Addr::LOCALHOST,
            dst_addr: Ipv6Addr::LOCALHOST,
            next_header: exts.first().map_or(upper, |n| n.0),
            payload_len: body.len() as u16,
            hop_limit: 9,
            traffic_class: 0,
            flow_label: 0,
        };
        let mut b = alloc::vec![0u8; HEADER_LEN];
        r.emit(&mut b);
        b.extend_from_slice(&body);
        b
    }

    #[test]
    fn walks_extension_headers() {
        let hbh = (next_header::HOP_BY_HOP, alloc::vec![0u8; 8]);
        let mut dst_opts = alloc::vec![0u8; 24];
        dst_opts[1] = 2; // (2 + 1) * 8 bytes
        let dst = (next_header::DEST_OPTS, dst_opts);
        let mut ah_hdr = alloc::vec![0u8; 16];
        ah_hdr[1] = 2; // (2 + 2) * 4 bytes
        let ah = (next_header::AH, ah_hdr);
        let frag0 = (next_header::FRAGMENT, alloc::vec![0u8; 8]);
        let b = with_ext(&[hbh.clone(), dst, ah, frag0], next_header::UDP, &[0; 8]);
        assert_eq!(
            upper_layer(&b).unwrap(),
            UpperLayer {
                protocol: next_header::UDP,
                offset: 40 + 8 + 24 + 16 + 8,
                first_fragment: true
            }
        );
        // Offset 185 * 8: a non-first fragment stops the walk at its Fragment header.
        let mut later = alloc::vec![0u8; 8];
        later[2..4].copy_from_slice(&(185u16 << 3 | 1).to_be_bytes());
        let b = with_ext(
            &[hbh.clone(), (next_header::FRAGMENT, later)],
            next_header::ICMPV6,
            &[0; 8],
        );
        assert_eq!(
            upper_layer(&b).unwrap(),
            UpperLayer {
                protocol: next_header::ICMPV6,
                offset: 56,
                first_fragment: false
            }
        );
        // An extension header longer than the payload.
        let mut long = alloc::vec![0u8; 8];
        long[1] = 9;
        let b = with_ext(&[(next_header::ROUTING, long)], next_header::TCP, &[]);
        assert!(matches!(upper_layer(&b), Err(Error::Truncated { .. })));
        // A payload that ends right where an extension header should start.
        let b = with_ext(&[], next_header::HOP_BY_HOP, &[]);
        assert!(matches!(upper_layer(&b), Err(Error::Truncated { .. })));
    }

    #[test]
    fn pseudo_header_sums_the_fields() {
        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let mut ph = Vec::new();
        ph.extend_from_slice(&src.octets());
        ph.extend_from_slice(&dst.octets());
        ph.extend_from_slice(&0x0001_0203u32.to_be_bytes());
        ph.extend_from_slice(&[0, 0, 0, 58]);
        assert_eq!(
            checksum::fold(pseudo_header(&src, &dst, 58, 0x0001_0203)),
            checksum::fold(checksum::sum(&ph))
        );
    }

    proptest! {
        #[test]
        fn round_trip(src in any::<u128>(), dst in any::<u128>(), nh in any::<u8>(), len in 0u16..1500,
                      hl in any::<u8>(), tc in any::<u8>(), fl in 0u32..0x10_0000) {
            let r = Ipv6Repr { src_addr: src.into(), dst_addr: dst.into(), next_header: nh,
                payload_len: len, hop_limit: hl, traffic_class: tc, flow_label: fl };
            let mut b = alloc::vec![0u8; HEADER_LEN + usize::from(len)];
            r.emit(&mut b);
            prop_assert_eq!(Ipv6Repr::parse(&b).unwrap(), r);
        }

        #[test]
        fn upper_layer_never_panics(b in proptest::collection::vec(any::<u8>(), 0..128)) {
            let mut b = b;
            if b.len() >= HEADER_LEN {
                b[0] = 0x60 | (b[0] & 0x0f);
                let plen = (b.len() - HEADER_LEN) as u16;
                b[4..6].copy_from_slice(&plen.to_be_bytes());
            }
            if let Ok(u) = upper_layer(&b) {
                prop_assert!(u.offset <= b.len());
            }
        }
    }
}
