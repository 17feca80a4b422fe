//! IPv6 packets (RFC 8200), UDP (RFC 768) and ICMPv6 (RFC 4443) as they
//! travel inside PPP protocol 0x0057.
//!
//! Extension headers are not walked: the messages handled here (Router and
//! Neighbor Solicitation, DHCPv6) are sent without them, so a packet whose
//! Next Header is anything else is left to the caller to drop.

use std::net::Ipv6Addr;

/// IPv6 fixed header length.
pub const HEADER_LEN: usize = 40;
/// Next Header value of UDP.
pub const NEXT_HEADER_UDP: u8 = 17;
/// Next Header value of ICMPv6.
pub const NEXT_HEADER_ICMPV6: u8 = 58;
/// UDP header length.
pub const UDP_HEADER_LEN: usize = 8;

/// A malformed IPv6, UDP or ICMPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Ipv6Error {
    /// Fewer bytes than the header needs.
    #[error("{what}: expected at least {expected} bytes, found {found}")]
    Truncated {
        /// The header being parsed.
        what: &'static str,
        /// Bytes needed.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// The version field is not 6.
    #[error("IPv6: expected version 6, found {0}")]
    Version(u8),
    /// A length field disagrees with the bytes present.
    #[error("{what}: length field {length} does not fit the {available} bytes present")]
    BadLength {
        /// The header whose length field is wrong.
        what: &'static str,
        /// The length field.
        length: usize,
        /// Bytes present.
        available: usize,
    },
    /// The Next Header is neither the one expected nor handled.
    #[error("IPv6: next header {found}, expected {expected}")]
    NextHeader {
        /// What the parser wanted.
        expected: u8,
        /// What the packet has.
        found: u8,
    },
    /// The UDP or ICMPv6 checksum is wrong (or zero for UDP, which IPv6
    /// forbids: RFC 8200 section 8.1).
    #[error("{0}: bad checksum")]
    Checksum(&'static str),
}

/// An IPv6 packet's header fields and payload (padding beyond Payload
/// Length removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<'a> {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Next Header (the upper-layer protocol here).
    pub next_header: u8,
    /// Hop Limit.
    pub hop_limit: u8,
    /// The bytes after the fixed header, Payload Length of them.
    pub payload: &'a [u8],
}

fn addr_at(b: &[u8], off: usize) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[off..off + 16]);
    Ipv6Addr::from(a)
}

/// Parse an IPv6 packet.
pub fn parse(b: &[u8]) -> Result<Ipv6Packet<'_>, Ipv6Error> {
    if b.len() < HEADER_LEN {
        return Err(Ipv6Error::Truncated {
            what: "IPv6",
            expected: HEADER_LEN,
            found: b.len(),
        });
    }
    let version = b[0] >> 4;
    if version != 6 {
        return Err(Ipv6Error::Version(version));
    }
    let length = usize::from(u16::from_be_bytes([b[4], b[5]]));
    let available = b.len() - HEADER_LEN;
    if length > available {
        return Err(Ipv6Error::BadLength {
            what: "IPv6",
            length,
            available,
        });
    }
    Ok(Ipv6Packet {
        src: addr_at(b, 8),
        dst: addr_at(b, 24),
        next_header: b[6],
        hop_limit: b[7],
        payload: &b[HEADER_LEN..HEADER_LEN + length],
    })
}

/// An IPv6 packet with the given header fields around `payload` (traffic
/// class and flow label zero). `payload` must fit a 16-bit length.
pub fn emit(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    hop_limit: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&[0x60, 0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.push(next_header);
    out.push(hop_limit);
    out.extend_from_slice(&src.octets());
    out.extend_from_slice(&dst.octets());
    out.extend_from_slice(payload);
    out
}

/// The Internet checksum of `upper` (its checksum field included as it
/// is) with the IPv6 pseudo-header of RFC 8200 section 8.1. A packet whose
/// checksum field is right sums to 0.
pub fn checksum(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, upper: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut add = |bytes: &[u8]| {
        let mut chunks = bytes.chunks_exact(2);
        for c in &mut chunks {
            sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            sum += u64::from(u16::from_be_bytes([*last, 0]));
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(upper.len() as u32).to_be_bytes());
    add(&[0, 0, 0, next_header]);
    add(upper);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A UDP datagram inside an IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// The data after the UDP header.
    pub payload: &'a [u8],
}

/// The UDP datagram of `pkt`, with its length and checksum verified.
pub fn parse_udp<'a>(pkt: &Ipv6Packet<'a>) -> Result<UdpDatagram<'a>, Ipv6Error> {
    if pkt.next_header != NEXT_HEADER_UDP {
        return Err(Ipv6Error::NextHeader {
            expected: NEXT_HEADER_UDP,
            found: pkt.next_header,
        });
    }
    let b = pkt.payload;
    if b.len() < UDP_HEADER_LEN {
        return Err(Ipv6Error::Truncated {
            what: "UDP",
            expected: UDP_HEADER_LEN,
            found: b.len(),
        });
    }
    let length = usize::from(u16::from_be_bytes([b[4], b[5]]));
    if length < UDP_HEADER_LEN || length > b.len() {
        return Err(Ipv6Error::BadLength {
            what: "UDP",
            length,
            available: b.len(),
        });
    }
    let datagram = &b[..length];
    if b[6..8] == [0, 0] || checksum(pkt.src, pkt.dst, NEXT_HEADER_UDP, datagram) != 0 {
        return Err(Ipv6Error::Checksum("UDP"));
    }
    Ok(UdpDatagram {
        src_port: u16::from_be_bytes([b[0], b[1]]),
        dst_port: u16::from_be_bytes([b[2], b[3]]),
        payload: &datagram[UDP_HEADER_LEN..],
    })
}

/// An IPv6 packet carrying a UDP datagram with its checksum set.
pub fn emit_udp(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    src_port: u16,
    dst_port: u16,
    hop_limit: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut udp = Vec::with_capacity(UDP_HEADER_LEN + payload.len());
    udp.extend_from_slice(&src_port.to_be_bytes());
    udp.extend_from_slice(&dst_port.to_be_bytes());
    udp.extend_from_slice(&((UDP_HEADER_LEN + payload.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let mut sum = checksum(src, dst, NEXT_HEADER_UDP, &udp);
    // RFC 8200 section 8.1: a computed zero is sent as 0xffff.
    if sum == 0 {
        sum = 0xffff;
    }
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    emit(src, dst, NEXT_HEADER_UDP, hop_limit, &udp)
}

/// An ICMPv6 message inside an IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv6Message<'a> {
    /// Type.
    pub typ: u8,
    /// Code.
    pub code: u8,
    /// The message body after type, code and checksum.
    pub body: &'a [u8],
}

/// The ICMPv6 message of `pkt`, with its checksum verified.
pub fn parse_icmpv6<'a>(pkt: &Ipv6Packet<'a>) -> Result<Icmpv6Message<'a>, Ipv6Error> {
    if pkt.next_header != NEXT_HEADER_ICMPV6 {
        return Err(Ipv6Error::NextHeader {
            expected: NEXT_HEADER_ICMPV6,
            found: pkt.next_header,
        });
    }
    let b = pkt.payload;
    if b.len() < 4 {
        return Err(Ipv6Error::Truncated {
            what: "ICMPv6",
            expected: 4,
            found: b.len(),
        });
    }
    if checksum(pkt.src, pkt.dst, NEXT_HEADER_ICMPV6, b) != 0 {
        return Err(Ipv6Error::Checksum("ICMPv6"));
    }
    Ok(Icmpv6Message {
        typ: b[0],
        code: b[1],
        body: &b[4..],
    })
}

/// An IPv6 packet carrying the ICMPv6 message `typ`/`code`/`body` with its
/// checksum set.
pub fn emit_icmpv6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    typ: u8,
    code: u8,
    body: &[u8],
) -> Vec<u8> {
    let mut icmp = Vec::with_capacity(4 + body.len());
    icmp.extend_from_slice(&[typ, code, 0, 0]);
    icmp.extend_from_slice(body);
    let sum = checksum(src, dst, NEXT_HEADER_ICMPV6, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    emit(src, dst, NEXT_HEADER_ICMPV6, hop_limit, &icmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    const B: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);

    #[test]
    fn known_icmpv6_checksum() {
        // Router Solicitation from fe80::1 to ff02::2, checked against the
        // sum computed by hand: pseudo-header + 133/0 + 4 reserved bytes.
        let pkt = emit_icmpv6(A, super::super::ALL_ROUTERS, 255, 133, 0, &[0; 4]);
        let p = parse(&pkt).unwrap();
        let m = parse_icmpv6(&p).unwrap();
        assert_eq!((m.typ, m.code, m.body.len()), (133, 0, 4));
        assert_eq!(checksum(A, super::super::ALL_ROUTERS, 58, p.payload), 0);
        let mut bad = pkt.clone();
        bad[HEADER_LEN + 5] ^= 1;
        assert_eq!(
            parse_icmpv6(&parse(&bad).unwrap()),
            Err(Ipv6Error::Checksum("ICMPv6"))
        );
    }

    #[test]
    fn malformed_packets_are_errors() {
        assert!(matches!(
            parse(&[0x60; 10]),
            Err(Ipv6Error::Truncated { .. })
        ));
        let mut v4 = emit(A, B, 17, 64, &[]);
        v4[0] = 0x45;
        assert_eq!(parse(&v4), Err(Ipv6Error::Version(4)));
        let mut long = emit(A, B, 17, 64, &[1, 2, 3]);
        long[5] = 9;
        assert!(matches!(parse(&long), Err(Ipv6Error::BadLength { .. })));
        let udp = emit_udp(A, B, 546, 547, 64, b"x");
        let mut zero = udp.clone();
        zero[HEADER_LEN + 6] = 0;
        zero[HEADER_LEN + 7] = 0;
        assert_eq!(
            parse_udp(&parse(&zero).unwrap()),
            Err(Ipv6Error::Checksum("UDP"))
        );
        let mut short = udp.clone();
        short[HEADER_LEN + 5] = 4;
        assert!(matches!(
            parse_udp(&parse(&short).unwrap()),
            Err(Ipv6Error::BadLength { .. })
        ));
    }

    proptest! {
        #[test]
        fn udp_round_trips(src in any::<u128>(), dst in any::<u128>(), sp in any::<u16>(), dp in any::<u16>(), data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let (src, dst) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
            let bytes = emit_udp(src, dst, sp, dp, 64, &data);
            let p = parse(&bytes).unwrap();
            prop_assert_eq!((p.src, p.dst, p.hop_limit), (src, dst, 64));
            let u = parse_udp(&p).unwrap();
            prop_assert_eq!((u.src_port, u.dst_port, u.payload), (sp, dp, &data[..]));
        }

        #[test]
        fn icmpv6_round_trips(typ in any::<u8>(), code in any::<u8>(), body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let bytes = emit_icmpv6(A, B, 255, typ, code, &body);
            let p = parse(&bytes).unwrap();
            let m = parse_icmpv6(&p).unwrap();
            prop_assert_eq!((m.typ, m.code, m.body), (typ, code, &body[..]));
        }

        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            if let Ok(p) = parse(&bytes) {
                let _ = parse_udp(&p);
                let _ = parse_icmpv6(&p);
            }
        }
    }
}
