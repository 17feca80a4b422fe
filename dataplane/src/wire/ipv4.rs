//! IPv4 header (RFC 791 section 3.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version|  IHL  |Type of Service|          Total Length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Identification        |Flags|      Fragment Offset    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       Source Address                          |
//! |                    Destination Address                        |
//! |                    Options                    |    Padding    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use core::net::Ipv4Addr;

use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{Error, Result, check_len, checksum, enum_with_unknown};

/// Length of the header without options.
pub const HEADER_LEN: usize = 20;

enum_with_unknown! {
    /// IP protocol numbers (IANA "Assigned Internet Protocol Numbers").
    pub enum IpProtocol(u8) {
        /// ICMP for IPv4.
        Icmp = 1,
        /// TCP.
        Tcp = 6,
        /// UDP.
        Udp = 17,
    }
}

/// Zero-copy view of the fixed 20-byte IPv4 header (options follow it in the buffer).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Header {
    ver_ihl: u8,
    tos: u8,
    total_len: U16,
    ident: U16,
    flags_frag: U16,
    ttl: u8,
    protocol: u8,
    checksum: U16,
    src: [u8; 4],
    dst: [u8; 4],
}

impl Header {
    /// Borrows the header at the start of `buf` and validates version, IHL and total length
    /// against the buffer (RFC 1812 section 5.2.2). The checksum is not verified here; see
    /// [`Header::verify_checksum`].
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<&Header> {
        check_len(buf, HEADER_LEN)?;
        let (h, _) = Header::ref_from_prefix(buf).map_err(|_| Error::Malformed { what: "ipv4" })?;
        h.check(buf.len())?;
        Ok(h)
    }

    /// Mutable variant of [`Header::parse`].
    #[inline]
    pub fn parse_mut(buf: &mut [u8]) -> Result<&mut Header> {
        check_len(buf, HEADER_LEN)?;
        let len = buf.len();
        let (h, _) = Header::mut_from_prefix(buf).map_err(|_| Error::Malformed { what: "ipv4" })?;
        h.check(len)?;
        Ok(h)
    }

    #[inline]
    fn check(&self, buf_len: usize) -> Result<()> {
        if self.ver_ihl >> 4 != 4 {
            return Err(Error::Malformed {
                what: "ipv4 version (expected 4)",
            });
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::Malformed {
                what: "ipv4 header length (expected IHL >= 5)",
            });
        }
        let total = usize::from(self.total_len.get());
        if total < hl {
            return Err(Error::Malformed {
                what: "ipv4 total length (smaller than the header)",
            });
        }
        if buf_len < total {
            return Err(Error::Truncated {
                expected: total,
                found: buf_len,
            });
        }
        Ok(())
    }

    /// Header length in bytes including options (IHL * 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.ver_ihl & 0x0f) * 4
    }
    /// Total length field (header + payload) in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        self.total_len.get()
    }
    /// Type of service / DSCP+ECN byte.
    #[inline]
    pub fn tos(&self) -> u8 {
        self.tos
    }
    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        self.ident.get()
    }
    /// Don't fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_frag.get() & 0x4000 != 0
    }
    /// More fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_frag.get() & 0x2000 != 0
    }
    /// Fragment offset in 8-byte units.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        self.flags_frag.get() & 0x1fff
    }
    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.ttl
    }
    /// Protocol of the payload.
    #[inline]
    pub fn protocol(&self) -> IpProtocol {
        self.protocol.into()
    }
    /// Header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        self.checksum.get()
    }
    /// Source address.
    #[inline]
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.src)
    }
    /// Destination address.
    #[inline]
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.dst)
    }
    /// Sets the source address, updating the header checksum incrementally (RFC 1624).
    #[inline]
    pub fn set_src_update(&mut self, ip: Ipv4Addr) {
        let c = checksum::update_u32(
            self.checksum.get(),
            u32::from_be_bytes(self.src),
            ip.to_bits(),
        );
        self.src = ip.octets();
        self.checksum.set(c);
    }
    /// Sets the destination address, updating the header checksum incrementally (RFC 1624).
    #[inline]
    pub fn set_dst_update(&mut self, ip: Ipv4Addr) {
        let c = checksum::update_u32(
            self.checksum.get(),
            u32::from_be_bytes(self.dst),
            ip.to_bits(),
        );
        self.dst = ip.octets();
        self.checksum.set(c);
    }
    /// Decrements the TTL by one and updates the checksum incrementally (RFC 1624; the TTL
    /// shares its 16-bit word with the protocol). Returns the new TTL; a TTL of 0 stays 0.
    #[inline(always)]
    pub fn decrement_ttl(&mut self) -> u8 {
        if self.ttl == 0 {
            return 0;
        }
        let old = u16::from_be_bytes([self.ttl, self.protocol]);
        self.ttl -= 1;
        let new = u16::from_be_bytes([self.ttl, self.protocol]);
        self.checksum
            .set(checksum::update_u16(self.checksum.get(), old, new));
        self.ttl
    }
    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        self.checksum.set(c);
    }
}

/// Verifies the header checksum of the IPv4 header at the start of `buf` (options included).
/// `buf` must have passed [`Header::parse`]; returns false if it is too short.
#[inline]
pub fn verify_checksum(buf: &[u8]) -> bool {
    let hl = match buf.first() {
        Some(b) => usize::from(b & 0x0f) * 4,
        None => return false,
    };
    match buf.get(..hl) {
        Some(h) if hl >= HEADER_LEN => checksum::fold_sum(h) == 0xffff,
        _ => false,
    }
}

/// Recomputes and stores the header checksum of the IPv4 header at the start of `buf`.
/// Does nothing if `buf` is shorter than the header length it announces.
pub fn fill_checksum(buf: &mut [u8]) {
    let hl = match buf.first() {
        Some(b) => usize::from(b & 0x0f) * 4,
        None => return,
    };
    if hl < HEADER_LEN || buf.len() < hl {
        return;
    }
    buf[10] = 0;
    buf[11] = 0;
    let c = checksum::checksum(&buf[..hl]);
    buf[10..12].copy_from_slice(&c.to_be_bytes());
}

/// High-level IPv4 header (without options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Payload protocol.
    pub protocol: IpProtocol,
    /// Payload length in bytes (total length minus header length).
    pub payload_len: u16,
    /// Time to live.
    pub ttl: u8,
    /// DSCP and ECN.
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Don't fragment.
    pub dont_frag: bool,
    /// More fragments.
    pub more_frags: bool,
    /// Fragment offset in 8-byte units (0-8191).
    pub frag_offset: u16,
}

impl Ipv4Repr {
    /// Parses and validates the header at the start of `buf`, including the checksum.
    /// Options are accepted and skipped (the payload starts at [`Header::header_len`]).
    pub fn parse(buf: &[u8]) -> Result<Ipv4Repr> {
        let h = Header::parse(buf)?;
        if !verify_checksum(buf) {
            return Err(Error::Checksum {
                what: "ipv4 header",
            });
        }
        Ok(Ipv4Repr {
            src_addr: h.src(),
            dst_addr: h.dst(),
            protocol: h.protocol(),
            payload_len: h.total_len() - h.header_len() as u16,
            ttl: h.ttl(),
            tos: h.tos(),
            ident: h.ident(),
            dont_frag: h.dont_frag(),
            more_frags: h.more_frags(),
            frag_offset: h.frag_offset(),
        })
    }

    /// Header length: 20.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 20-byte header (with checksum) into `buf[..20]`. Total length is
    /// `20 + payload_len` (saturating at 65535). Panics if `buf` is shorter than 20 bytes.
    pub fn emit(&self, buf: &mut [u8]) {
        let total = self.payload_len.saturating_add(HEADER_LEN as u16);
        let flags = (u16::from(self.dont_frag) << 14)
            | (u16::from(self.more_frags) << 13)
            | (self.frag_offset & 0x1fff);
        buf[0] = 0x45;
        buf[1] = self.tos;
        buf[2..4].copy_from_slice(&total.to_be_bytes());
        buf[4..6].copy_from_slice(&self.ident.to_be_bytes());
        buf[6..8].copy_from_slice(&flags.to_be_bytes());
        buf[8] = self.ttl;
        buf[9] = self.protocol.into();
        buf[10..12].copy_from_slice(&[0, 0]);
        buf[12..16].copy_from_slice(&self.src_addr.octets());
        buf[16..20].copy_from_slice(&self.dst_addr.octets());
        let c = checksum::checksum(&buf[..HEADER_LEN]);
        buf[10..12].copy_from_slice(&c.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_util::hex;
    use proptest::prelude::*;

    const HDR: &str = "4500 0054 1c46 4000 4001 0a5b 0a00 0001 0a00 0002";

    #[test]
    fn golden_header() {
        let mut b = hex(HDR);
        fill_checksum(&mut b);
        b.resize(0x54, 0);
        let r = Ipv4Repr::parse(&b).unwrap();
        assert_eq!(r.src_addr, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(r.dst_addr, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(r.protocol, IpProtocol::Icmp);
        assert_eq!(r.payload_len, 64);
        assert_eq!(r.ttl, 64);
        assert_eq!(r.ident, 0x1c46);
        assert!(r.dont_frag);
        let mut out = [0u8; 20];
        r.emit(&mut out);
        assert_eq!(&out[..], &b[..20]);
    }

    #[test]
    fn rejects_bad_headers() {
        let mut b = hex(HDR);
        fill_checksum(&mut b);
        b.resize(0x54, 0);
        // Truncated below total length.
        assert!(matches!(
            Ipv4Repr::parse(&b[..60]),
            Err(Error::Truncated { .. })
        ));
        let mut v6 = b.clone();
        v6[0] = 0x65;
        assert!(Header::parse(&v6).is_err());
        let mut ihl = b.clone();
        ihl[0] = 0x44;
        assert!(Header::parse(&ihl).is_err());
        let mut total = b.clone();
        total[2..4].copy_from_slice(&10u16.to_be_bytes());
        assert!(Header::parse(&total).is_err());
        let mut csum = b.clone();
        csum[11] ^= 1;
        assert!(matches!(
            Ipv4Repr::parse(&csum),
            Err(Error::Checksum { .. })
        ));
    }

    #[test]
    fn ttl_decrement_keeps_checksum_valid() {
        let mut b = hex(HDR);
        fill_checksum(&mut b);
        b.resize(0x54, 0);
        let h = Header::parse_mut(&mut b).unwrap();
        assert_eq!(h.decrement_ttl(), 63);
        h.set_src_update(Ipv4Addr::new(192, 0, 2, 7));
        assert!(verify_checksum(&b));
        assert_eq!(Ipv4Repr::parse(&b).unwrap().ttl, 63);
    }

    proptest! {
        #[test]
        fn round_trip(src in any::<u32>(), dst in any::<u32>(), proto in any::<u8>(), len in 0u16..1480,
                      ttl in any::<u8>(), tos in any::<u8>(), ident in any::<u16>(), df in any::<bool>(),
                      mf in any::<bool>(), off in 0u16..8192) {
            let r = Ipv4Repr { src_addr: src.into(), dst_addr: dst.into(), protocol: proto.into(),
                payload_len: len, ttl, tos, ident, dont_frag: df, more_frags: mf, frag_offset: off };
            let mut b = alloc::vec![0u8; 20 + usize::from(len)];
            r.emit(&mut b);
            prop_assert_eq!(Ipv4Repr::parse(&b).unwrap(), r);
        }
    }
}
