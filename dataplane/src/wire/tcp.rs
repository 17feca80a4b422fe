//! TCP header (RFC 9293 section 3.1). Only the fixed header is represented; options are
//! skipped (the payload starts at [`Header::header_len`]).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Source Port          |       Destination Port        |
//! |                        Sequence Number                        |
//! |                    Acknowledgment Number                      |
//! |  Data |       |C|E|U|A|P|R|S|F|                               |
//! | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//! |           Checksum            |         Urgent Pointer        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use zerocopy::network_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{Error, Result, check_len};

/// Length of the header without options.
pub const HEADER_LEN: usize = 20;

/// TCP flag bits (low byte of the offset/flags word).
pub mod flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push function.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field is significant.
    pub const ACK: u8 = 0x10;
    /// Urgent pointer field is significant.
    pub const URG: u8 = 0x20;
    /// ECN-Echo.
    pub const ECE: u8 = 0x40;
    /// Congestion window reduced.
    pub const CWR: u8 = 0x80;
}

/// Zero-copy view of the fixed 20-byte TCP header.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Header {
    src_port: U16,
    dst_port: U16,
    seq: U32,
    ack: U32,
    offset: u8,
    flags: u8,
    window: U16,
    checksum: U16,
    urgent: U16,
}

impl Header {
    /// Borrows the header at the start of `buf` and checks the data offset against it.
    pub fn parse(buf: &[u8]) -> Result<&Header> {
        check_len(buf, HEADER_LEN)?;
        let (h, _) = Header::ref_from_prefix(buf).map_err(|_| Error::Malformed { what: "tcp" })?;
        let hl = h.header_len();
        if hl < HEADER_LEN {
            return Err(Error::Malformed {
                what: "tcp data offset (expected >= 5)",
            });
        }
        check_len(buf, hl)?;
        Ok(h)
    }
    /// Header length including options (data offset * 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.offset >> 4) * 4
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
    /// Sequence number.
    #[inline]
    pub fn seq(&self) -> u32 {
        self.seq.get()
    }
    /// Acknowledgment number.
    #[inline]
    pub fn ack(&self) -> u32 {
        self.ack.get()
    }
    /// Flag bits (see [`flags`]).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.flags
    }
    /// Receive window.
    #[inline]
    pub fn window(&self) -> u16 {
        self.window.get()
    }
    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        self.checksum.get()
    }
    /// Urgent pointer.
    #[inline]
    pub fn urgent(&self) -> u16 {
        self.urgent.get()
    }
}

/// TCP option kinds (RFC 9293 section 3.2) the MSS clamp walks over.
const OPT_END: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_MSS: u8 = 2;

/// Lowers the Maximum Segment Size option (RFC 9293 section 3.7.1) of a SYN or SYN/ACK
/// `segment` (TCP header first, covered by the checksum) to `mss` if it announces more,
/// and updates the TCP checksum incrementally (RFC 1624). Returns true if it changed the
/// segment. Segments that are not SYNs, carry no MSS option, or whose options are
/// malformed are left alone. Never panics.
pub fn clamp_mss(segment: &mut [u8], mss: u16) -> bool {
    let Ok(h) = Header::parse(segment) else {
        return false;
    };
    if h.flags() & flags::SYN == 0 {
        return false;
    }
    let hl = h.header_len();
    let mut i = HEADER_LEN;
    while i < hl {
        match segment[i] {
            OPT_END => return false,
            OPT_NOP => i += 1,
            kind => {
                let Some(&len) = segment.get(i + 1) else {
                    return false;
                };
                let len = usize::from(len);
                if len < 2 || i + len > hl {
                    return false;
                }
                if kind == OPT_MSS {
                    if len != 4 {
                        return false;
                    }
                    let old = u16::from_be_bytes([segment[i + 2], segment[i + 3]]);
                    if old <= mss {
                        return false;
                    }
                    segment[i + 2..i + 4].copy_from_slice(&mss.to_be_bytes());
                    // The checksum sums 16-bit words from the start of the segment: a field
                    // at an odd offset straddles two words and adds in byte-swapped.
                    let (o, n) = if (i + 2).is_multiple_of(2) {
                        (old, mss)
                    } else {
                        (old.swap_bytes(), mss.swap_bytes())
                    };
                    let c = u16::from_be_bytes([segment[16], segment[17]]);
                    let c = super::checksum::update_u16(c, o, n);
                    segment[16..18].copy_from_slice(&c.to_be_bytes());
                    return true;
                }
                i += len;
            }
        }
    }
    false
}

/// High-level TCP header (options not represented).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flag bits (see [`flags`]).
    pub flags: u8,
    /// Receive window.
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
}

impl TcpRepr {
    /// Parses the header at the start of `buf` (options skipped, checksum not verified).
    pub fn parse(buf: &[u8]) -> Result<TcpRepr> {
        let h = Header::parse(buf)?;
        Ok(TcpRepr {
            src_port: h.src_port(),
            dst_port: h.dst_port(),
            seq: h.seq(),
            ack: h.ack(),
            flags: h.flags(),
            window: h.window(),
            urgent: h.urgent(),
        })
    }
    /// Header length: 20.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
    /// Writes the 20-byte header with a zero checksum into `buf[..20]`.
    /// Panics if `buf` is shorter than 20 bytes.
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        buf[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        buf[4..8].copy_from_slice(&self.seq.to_be_bytes());
        buf[8..12].copy_from_slice(&self.ack.to_be_bytes());
        buf[12] = 5 << 4;
        buf[13] = self.flags;
        buf[14..16].copy_from_slice(&self.window.to_be_bytes());
        buf[16..18].copy_from_slice(&[0, 0]);
        buf[18..20].copy_from_slice(&self.urgent.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_util::hex;
    use proptest::prelude::*;

    #[test]
    fn golden_syn_with_options() {
        // SYN 100.64.0.10:51234 -> :443 with MSS, SACK-permitted, timestamps, NOP, wscale.
        let b = hex("c822 01bb 3b9a ca00 0000 0000 a002 faf0 1c2e 0000
                     0204 05b4 0402 080a 0001 e240 0000 0000 0103 0307");
        let h = Header::parse(&b).unwrap();
        assert_eq!(h.header_len(), 40);
        let r = TcpRepr::parse(&b).unwrap();
        assert_eq!(r.src_port, 51234);
        assert_eq!(r.dst_port, 443);
        assert_eq!(r.seq, 1_000_000_000);
        assert_eq!(r.flags, flags::SYN);
        assert_eq!(r.window, 64240);
        assert!(TcpRepr::parse(&b[..39]).is_err());
        let mut bad = b.clone();
        bad[12] = 0x40;
        assert!(TcpRepr::parse(&bad).is_err());
    }

    /// The TCP checksum of `seg` between `src` and `dst`, computed from scratch.
    fn full_checksum(src: [u8; 4], dst: [u8; 4], seg: &[u8]) -> u16 {
        use crate::wire::checksum;
        let mut z = seg.to_vec();
        z[16..18].copy_from_slice(&[0, 0]);
        let ph = checksum::pseudo_header_ipv4(src.into(), dst.into(), 6, z.len() as u16);
        !checksum::fold(checksum::combine(ph, checksum::sum(&z)))
    }

    #[test]
    fn mss_clamp_golden() {
        // The SYN of golden_syn_with_options with a correct checksum, MSS 1460.
        let (src, dst) = ([100, 64, 0, 10], [203, 0, 113, 5]);
        let mut b = hex("c822 01bb 3b9a ca00 0000 0000 a002 faf0 0000 0000
                         0204 05b4 0402 080a 0001 e240 0000 0000 0103 0307");
        let c = full_checksum(src, dst, &b);
        b[16..18].copy_from_slice(&c.to_be_bytes());
        assert!(clamp_mss(&mut b, 1452));
        assert_eq!(&b[20..24], &hex("0204 05ac")[..]);
        assert_eq!(
            u16::from_be_bytes([b[16], b[17]]),
            full_checksum(src, dst, &b)
        );
        // Already small enough, or not a SYN: untouched.
        let before = b.clone();
        assert!(!clamp_mss(&mut b, 1460));
        b[13] = flags::ACK;
        assert!(!clamp_mss(&mut b, 536));
        b[13] = flags::SYN;
        assert_eq!(b, before);
        // Malformed option lengths are left alone.
        let mut bad = before.clone();
        bad[21] = 0;
        assert!(!clamp_mss(&mut bad, 536));
        bad[21] = 30;
        assert!(!clamp_mss(&mut bad, 536));
        assert!(!clamp_mss(&mut bad[..10], 536));
    }

    proptest! {
        /// Whatever NOPs precede it (odd or even offset), a clamped MSS leaves a checksum
        /// equal to the one computed from scratch.
        #[test]
        fn mss_clamp_keeps_checksum_valid(nops in 0usize..4, old in any::<u16>(), mss in any::<u16>(),
                                          payload in proptest::collection::vec(any::<u8>(), 0..9),
                                          flags in prop_oneof![Just(flags::SYN), Just(flags::SYN | flags::ACK)]) {
            let (src, dst) = ([10, 0, 0, 1], [10, 0, 0, 2]);
            let opts = nops + 4;
            let hl = (HEADER_LEN + opts).div_ceil(4) * 4;
            let mut b = alloc::vec![0u8; hl];
            b[12] = ((hl / 4) as u8) << 4;
            b[13] = flags;
            for o in &mut b[HEADER_LEN..HEADER_LEN + nops] {
                *o = OPT_NOP;
            }
            let m = HEADER_LEN + nops;
            b[m..m + 4].copy_from_slice(&[OPT_MSS, 4, (old >> 8) as u8, old as u8]);
            b.extend_from_slice(&payload);
            let c = full_checksum(src, dst, &b);
            b[16..18].copy_from_slice(&c.to_be_bytes());
            let changed = clamp_mss(&mut b, mss);
            prop_assert_eq!(changed, old > mss);
            let now = u16::from_be_bytes([b[m + 2], b[m + 3]]);
            prop_assert_eq!(now, old.min(mss));
            prop_assert_eq!(u16::from_be_bytes([b[16], b[17]]), full_checksum(src, dst, &b));
        }

        #[test]
        fn mss_clamp_never_panics(mut b in proptest::collection::vec(any::<u8>(), 0..64), mss in any::<u16>()) {
            let _ = clamp_mss(&mut b, mss);
        }

        #[test]
        fn round_trip(sp in any::<u16>(), dp in any::<u16>(), seq in any::<u32>(), ack in any::<u32>(),
                      fl in any::<u8>(), win in any::<u16>(), urg in any::<u16>()) {
            let r = TcpRepr { src_port: sp, dst_port: dp, seq, ack, flags: fl, window: win, urgent: urg };
            let mut b = [0u8; HEADER_LEN];
            r.emit(&mut b);
            prop_assert_eq!(TcpRepr::parse(&b).unwrap(), r);
        }
    }
}
