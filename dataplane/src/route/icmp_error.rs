//! ICMP error messages a router originates, as pure builders over bytes, and the token
//! bucket that bounds their rate.
//!
//! Given the offending packet as received (from its IP header on, before any TTL
//! decrement), our source address and the kind of error, [`icmpv4_error`] and
//! [`icmpv6_error`] write a complete IP packet (IP header, ICMP header, the quoted packet)
//! into the caller's buffer and return its length, or say why no error may be sent
//! ([`IcmpRefusal`]). They never allocate and never panic on input bytes.
//!
//! ```text
//! IPv4 (RFC 792, RFC 1191, RFC 1812 4.3.2.3)    IPv6 (RFC 4443 2.1, 3.2, 3.3)
//! +--------------------------------+             +--------------------------------+
//! | IPv4 header, 20 bytes          |             | IPv6 header, 40 bytes, NH 58   |
//! |   TOS 0xc0, TTL 64, proto 1    |             |   hop limit 64                 |
//! |   src: ours, dst: their source |             |   src: ours, dst: their source |
//! +--------------------------------+             +--------------------------------+
//! | type | code |   checksum       |             | type | code |   checksum       |
//! | unused      | next-hop MTU (3/4)|            | MTU (type 2) or unused         |
//! +--------------------------------+             +--------------------------------+
//! | their IP header + data, up to  |             | their packet, up to 1280 bytes |
//! | 576 bytes in all               |             | in all (the IPv6 minimum MTU)  |
//! +--------------------------------+             +--------------------------------+
//! ```
//!
//! A pipeline asks [`icmpv4_error_eligible`] first (cheap, no copy), then
//! [`IcmpErrorLimiter::allow`], and only then builds the message, so that ineligible
//! packets do not spend tokens and suppressed ones are not built.

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::wire::icmpv4::{self, Icmpv4Message, Icmpv4Repr};
use crate::wire::icmpv6::{self, Icmpv6Message, Icmpv6Repr};
use crate::wire::ipv4::{self, IpProtocol, Ipv4Repr};
use crate::wire::ipv6::{self, Ipv6Repr, next_header};

use super::IcmpRefusal;

/// The most bytes of an ICMPv4 error, IP header included (RFC 1812 section 4.3.2.3).
pub const IPV4_ERROR_MAX_LEN: usize = 576;
/// The most bytes of an ICMPv6 error, IPv6 header included (RFC 4443 section 2.4 (c): the
/// minimum IPv6 MTU).
pub const IPV6_ERROR_MAX_LEN: usize = 1280;
/// TTL / hop limit of the errors we originate (the usual host default).
pub const ERROR_TTL: u8 = 64;
/// TOS of ICMPv4 errors: precedence 6, internetwork control (RFC 1812 section 4.3.2.5).
pub const ERROR_TOS: u8 = 0xc0;

/// Header bytes before the quote: IPv4 20 + ICMP 8.
const V4_OVERHEAD: usize = ipv4::HEADER_LEN + icmpv4::HEADER_LEN;
/// Header bytes before the quote: IPv6 40 + ICMPv6 8.
const V6_OVERHEAD: usize = ipv6::HEADER_LEN + icmpv6::HEADER_LEN;

/// The ICMPv4 errors a router sends while forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4ErrorKind {
    /// Type 11 code 0: TTL exceeded in transit (RFC 792, RFC 1812 section 5.3.1).
    TimeExceeded,
    /// Type 3 code 0: no route to the destination network (RFC 1812 section 5.2.7.1).
    NetUnreachable,
    /// Type 3 code 1: the destination host cannot be reached (no ARP answer).
    HostUnreachable,
    /// Type 3 code 4: the packet is larger than the next hop's MTU and has DF set; the
    /// message carries that MTU (RFC 1191 section 4).
    FragmentationNeeded {
        /// MTU of the next-hop link.
        next_hop_mtu: u16,
    },
    /// Type 3 code 13: communication administratively prohibited (RFC 1812 section
    /// 5.2.7.1), e.g. by an ACL.
    AdminProhibited,
}

impl Icmpv4ErrorKind {
    /// (type, code, rest of header).
    fn header(self) -> (Icmpv4Message, u8, u32) {
        match self {
            Icmpv4ErrorKind::TimeExceeded => (Icmpv4Message::TimeExceeded, 0, 0),
            Icmpv4ErrorKind::NetUnreachable => (Icmpv4Message::DstUnreachable, 0, 0),
            Icmpv4ErrorKind::HostUnreachable => (Icmpv4Message::DstUnreachable, 1, 0),
            // RFC 1191 section 4: unused (16 bits), Next-Hop MTU (16 bits).
            Icmpv4ErrorKind::FragmentationNeeded { next_hop_mtu } => {
                (Icmpv4Message::DstUnreachable, 4, u32::from(next_hop_mtu))
            }
            Icmpv4ErrorKind::AdminProhibited => (Icmpv4Message::DstUnreachable, 13, 0),
        }
    }
}

/// The ICMPv6 errors a router sends while forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv6ErrorKind {
    /// Type 3 code 0: hop limit exceeded in transit (RFC 4443 section 3.3).
    HopLimitExceeded,
    /// Type 1 code 0: no route to destination (RFC 4443 section 3.1).
    NoRoute,
    /// Type 1 code 1: communication administratively prohibited.
    AdminProhibited,
    /// Type 1 code 3: address unreachable (no neighbor answer).
    AddressUnreachable,
    /// Type 2: the packet is larger than the next hop's MTU (RFC 4443 section 3.2); sent even
    /// for a multicast destination (RFC 4443 section 2.4 (e.3)).
    PacketTooBig {
        /// MTU of the next-hop link.
        mtu: u32,
    },
}

impl Icmpv6ErrorKind {
    fn header(self) -> (Icmpv6Message, u8, u32) {
        match self {
            Icmpv6ErrorKind::HopLimitExceeded => (Icmpv6Message::TimeExceeded, 0, 0),
            Icmpv6ErrorKind::NoRoute => (Icmpv6Message::DstUnreachable, 0, 0),
            Icmpv6ErrorKind::AdminProhibited => (Icmpv6Message::DstUnreachable, 1, 0),
            Icmpv6ErrorKind::AddressUnreachable => (Icmpv6Message::DstUnreachable, 3, 0),
            Icmpv6ErrorKind::PacketTooBig { mtu } => (Icmpv6Message::PacketTooBig, 0, mtu),
        }
    }
}

/// ICMPv4 types known to be informational (RFC 792, RFC 950, RFC 1256): echo reply and
/// request, router advertisement and solicitation, timestamp, information and address mask
/// request and reply. Any other type, unknown ones included, is treated as an error message
/// and never answered with one (RFC 1812 section 4.3.2.7), as Linux does.
fn icmpv4_is_informational(msg_type: u8) -> bool {
    matches!(msg_type, 0 | 8 | 9 | 10 | 13..=18)
}

/// True for an IPv4 source that names a single host (RFC 1812 section 5.3.7): not in
/// 0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/4 (multicast) or 240.0.0.0/4 (reserved and the limited
/// broadcast).
fn ipv4_source_is_host(src: Ipv4Addr) -> bool {
    let first = src.octets()[0];
    first != 0 && first != 127 && first < 224
}

/// Checks whether an ICMPv4 error may be sent about the IPv4 packet at the start of
/// `original` (RFC 1812 section 4.3.2.7), without building anything. On success, returns the
/// length of the message [`icmpv4_error`] would write.
///
/// Refused: packets failing header validation (version, lengths, header checksum), ICMP error
/// messages, non-first fragments, packets to the limited broadcast or a multicast address,
/// and packets whose source is not a single host. Two cases need knowledge this function does
/// not have and stay with the caller: packets sent as link-layer broadcast or multicast, and
/// packets to a directed broadcast address of one of our subnets.
pub fn icmpv4_error_eligible(original: &[u8]) -> Result<usize, IcmpRefusal> {
    let h = ipv4::Header::parse(original).map_err(IcmpRefusal::Malformed)?;
    if !ipv4::verify_checksum(original) {
        return Err(IcmpRefusal::Malformed(crate::wire::Error::Checksum {
            what: "ipv4 header",
        }));
    }
    if h.frag_offset() != 0 {
        return Err(IcmpRefusal::NonFirstFragment);
    }
    let dst = h.dst();
    if dst.is_broadcast() || dst.is_multicast() {
        return Err(IcmpRefusal::NonUnicastDestination);
    }
    if !ipv4_source_is_host(h.src()) {
        return Err(IcmpRefusal::InvalidSource);
    }
    let total = usize::from(h.total_len());
    if h.protocol() == IpProtocol::Icmp {
        // A first fragment (or whole packet) without even the type byte cannot be told
        // apart from an error: refuse.
        match original[..total].get(h.header_len()) {
            Some(&t) if icmpv4_is_informational(t) => {}
            _ => return Err(IcmpRefusal::IcmpError),
        }
    }
    // RFC 1812 section 4.3.2.3: as much of the original datagram as fits in 576 bytes.
    Ok(V4_OVERHEAD + total.min(IPV4_ERROR_MAX_LEN - V4_OVERHEAD))
}

/// Writes into `out` an IPv4 packet carrying the ICMP error `kind` about the IPv4 packet at
/// the start of `original` (as received: header, then payload; trailing bytes past its
/// total length, such as Ethernet padding, are ignored), sent from `src` (our address on the
/// interface the packet came in on) to the packet's source, with IP identification `ident`.
///
/// The message quotes the original IP header and as much of the datagram as keeps the whole
/// message within 576 bytes (RFC 1812 section 4.3.2.3), has TOS 0xc0 (section 4.3.2.5) and
/// TTL 64. Returns the number of bytes written, or why no error may be sent
/// ([`icmpv4_error_eligible`]); `BufferTooSmall` if `out` cannot hold the message (a buffer of
/// [`IPV4_ERROR_MAX_LEN`] bytes always can).
pub fn icmpv4_error(
    kind: Icmpv4ErrorKind,
    original: &[u8],
    src: Ipv4Addr,
    ident: u16,
    out: &mut [u8],
) -> Result<usize, IcmpRefusal> {
    let len = icmpv4_error_eligible(original)?;
    let Some(out) = out.get_mut(..len) else {
        return Err(IcmpRefusal::BufferTooSmall {
            needed: len,
            capacity: out.len(),
        });
    };
    let quote = len - V4_OVERHEAD;
    // Eligible means the header parsed, so `original` holds at least its total length,
    // which is at least `quote`.
    out[V4_OVERHEAD..].copy_from_slice(&original[..quote]);
    let dst = Ipv4Addr::new(original[12], original[13], original[14], original[15]);
    Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IpProtocol::Icmp,
        payload_len: (len - ipv4::HEADER_LEN) as u16,
        ttl: ERROR_TTL,
        tos: ERROR_TOS,
        ident,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
    }
    .emit(out);
    let (msg_type, code, rest_of_header) = kind.header();
    Icmpv4Repr {
        msg_type,
        code,
        rest_of_header,
    }
    .emit(&mut out[ipv4::HEADER_LEN..]);
    Ok(len)
}

/// True for an IPv6 source that names a single node (RFC 4443 section 2.4 (e.6)): not the
/// unspecified address, not multicast, and not loopback (never valid on the wire).
fn ipv6_source_is_node(src: &Ipv6Addr) -> bool {
    !(src.is_unspecified() || src.is_multicast() || src.is_loopback())
}

/// Checks whether an ICMPv6 error of `kind` may be sent about the IPv6 packet at the start of
/// `original` (RFC 4443 section 2.4 (e)), without building anything. On success, returns the
/// length of the message [`icmpv6_error`] would write.
///
/// Refused: packets failing header validation (version, payload length, extension headers
/// running past the payload), ICMPv6 error messages and Redirects, packets to a multicast
/// address (except for Packet Too Big), and packets whose source is unspecified, multicast or
/// loopback. A non-first fragment whose Fragment header announces ICMPv6 is refused too: its
/// message type cannot be seen. Link-layer broadcast and multicast, and known anycast
/// sources, are for the caller to check.
pub fn icmpv6_error_eligible(kind: Icmpv6ErrorKind, original: &[u8]) -> Result<usize, IcmpRefusal> {
    let h = ipv6::Header::parse(original).map_err(IcmpRefusal::Malformed)?;
    if !ipv6_source_is_node(&h.src()) {
        return Err(IcmpRefusal::InvalidSource);
    }
    if h.dst().is_multicast() && !matches!(kind, Icmpv6ErrorKind::PacketTooBig { .. }) {
        return Err(IcmpRefusal::NonUnicastDestination);
    }
    let total = ipv6::HEADER_LEN + usize::from(h.payload_len());
    let upper = ipv6::upper_layer(original).map_err(IcmpRefusal::Malformed)?;
    if upper.protocol == next_header::ICMPV6 {
        if !upper.first_fragment {
            return Err(IcmpRefusal::IcmpError);
        }
        match original[..total].get(upper.offset).copied() {
            Some(t) if !Icmpv6Message::from(t).is_error() && t != 137 => {}
            _ => return Err(IcmpRefusal::IcmpError),
        }
    }
    // RFC 4443 section 2.4 (c): as much of the invoking packet as fits in the minimum MTU.
    Ok(V6_OVERHEAD + total.min(IPV6_ERROR_MAX_LEN - V6_OVERHEAD))
}

/// Writes into `out` an IPv6 packet carrying the ICMPv6 error `kind` about the IPv6 packet at
/// the start of `original` (as received; bytes past its payload length are ignored), sent
/// from `src` to the packet's source.
///
/// The message quotes as much of the packet as keeps the whole message within 1280 bytes
/// (RFC 4443 section 2.4 (c)), has traffic class 0, flow label 0 and hop limit 64, and its
/// checksum covers the IPv6 pseudo-header (RFC 4443 section 2.3). Returns the number of bytes
/// written, or why no error may be sent ([`icmpv6_error_eligible`]); `BufferTooSmall` if
/// `out` cannot hold the message (a buffer of [`IPV6_ERROR_MAX_LEN`] bytes always can).
pub fn icmpv6_error(
    kind: Icmpv6ErrorKind,
    original: &[u8],
    src: Ipv6Addr,
    out: &mut [u8],
) -> Result<usize, IcmpRefusal> {
    let len = icmpv6_error_eligible(kind, original)?;
    let Some(out) = out.get_mut(..len) else {
        return Err(IcmpRefusal::BufferTooSmall {
            needed: len,
            capacity: out.len(),
        });
    };
    let quote = len - V6_OVERHEAD;
    out[V6_OVERHEAD..].copy_from_slice(&original[..quote]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&original[8..24]);
    let dst = Ipv6Addr::from(dst);
    Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: next_header::ICMPV6,
        payload_len: (len - ipv6::HEADER_LEN) as u16,
        hop_limit: ERROR_TTL,
        traffic_class: 0,
        flow_label: 0,
    }
    .emit(out);
    let (msg_type, code, rest_of_header) = kind.header();
    Icmpv6Repr {
        msg_type,
        code,
        rest_of_header,
    }
    .emit(&src, &dst, &mut out[ipv6::HEADER_LEN..]);
    Ok(len)
}

/// Nano-tokens per token.
const SCALE: u64 = 1_000_000_000;

/// A token bucket that bounds the rate of ICMP errors a worker originates (RFC 1812 section
/// 4.3.2.8, RFC 4443 section 2.4 (f)): `rate` messages per second on average, at most
/// `burst` back to back. Integer nano-tokens (a rate of r per second adds r nano-tokens per
/// nanosecond); no floating point, no division per packet. Starts full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpErrorLimiter {
    rate: u64,
    capacity: u64,
    tokens: u64,
    last_ns: Option<u64>,
    sent: u64,
    suppressed: u64,
}

impl IcmpErrorLimiter {
    /// Linux's defaults for `net.ipv4.icmp_msgs_per_sec` and `icmp_msgs_burst`.
    pub const DEFAULT_RATE: u32 = 1000;
    /// See [`IcmpErrorLimiter::DEFAULT_RATE`].
    pub const DEFAULT_BURST: u32 = 50;

    /// A full bucket of `burst` tokens refilled at `rate` per second. A burst of 0 never
    /// allows a message; a rate of 0 allows `burst` messages and then none.
    pub fn new(rate: u32, burst: u32) -> Self {
        let capacity = u64::from(burst) * SCALE;
        IcmpErrorLimiter {
            rate: u64::from(rate),
            capacity,
            tokens: capacity,
            last_ns: None,
            sent: 0,
            suppressed: 0,
        }
    }

    /// Takes a token at time `now_ns` (any monotonic nanosecond clock): true if a message may
    /// be sent now. Time going backwards adds nothing.
    #[inline]
    pub fn allow(&mut self, now_ns: u64) -> bool {
        match self.last_ns {
            Some(last) if now_ns > last => {
                let add = (now_ns - last).saturating_mul(self.rate);
                self.tokens = self.tokens.saturating_add(add).min(self.capacity);
                self.last_ns = Some(now_ns);
            }
            Some(_) => {}
            None => self.last_ns = Some(now_ns),
        }
        if self.tokens >= SCALE {
            self.tokens -= SCALE;
            self.sent += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    /// Messages allowed so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Messages refused so far (a counter for the `icmp_errors_rate_limited` metric).
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

impl Default for IcmpErrorLimiter {
    /// 1000 messages per second, bursts of 50.
    fn default() -> Self {
        IcmpErrorLimiter::new(Self::DEFAULT_RATE, Self::DEFAULT_BURST)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::tests::pcap_frames;
    use crate::wire::Error;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// Captured in network namespaces: host 198.51.100.2 / 2001:db8:a::2 sends through a
    /// Linux router (198.51.100.1 / 2001:db8:a::1) toward 203.0.113.2 / 2001:db8:b::2 behind
    /// a 1280-byte MTU link: a UDP datagram with TTL 1, a 1408-byte one with DF, a UDP
    /// datagram with hop limit 1 and a 1428-byte one; each followed by the router's answer.
    const LINUX_ROUTER: &[u8] = include_bytes!("testdata/linux_router.pcap");
    const ETH: usize = 14;

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn golden_linux_router_ipv4() {
        let frames = pcap_frames(LINUX_ROUTER);
        assert_eq!(frames.len(), 8);
        let router = v4("198.51.100.1");
        for (original, answer, kind) in [
            (frames[0], frames[1], Icmpv4ErrorKind::TimeExceeded),
            (
                frames[2],
                frames[3],
                Icmpv4ErrorKind::FragmentationNeeded { next_hop_mtu: 1280 },
            ),
        ] {
            let (original, answer) = (&original[ETH..], &answer[ETH..]);
            let ident = u16::from_be_bytes([answer[4], answer[5]]);
            let mut out = [0u8; IPV4_ERROR_MAX_LEN];
            let n = icmpv4_error(kind, original, router, ident, &mut out).unwrap();
            assert_eq!(n, answer.len());
            assert_eq!(&out[..n], answer, "{kind:?}");
            assert_eq!(icmpv4_error_eligible(original), Ok(n));
        }
        // The 1408-byte datagram is cut at 576 bytes in all.
        assert_eq!(frames[3].len() - ETH, IPV4_ERROR_MAX_LEN);
    }

    #[test]
    fn golden_linux_router_ipv6() {
        let frames = pcap_frames(LINUX_ROUTER);
        let router = v6("2001:db8:a::1");
        for (original, answer, kind) in [
            (frames[4], frames[5], Icmpv6ErrorKind::HopLimitExceeded),
            (
                frames[6],
                frames[7],
                Icmpv6ErrorKind::PacketTooBig { mtu: 1280 },
            ),
        ] {
            let (original, answer) = (&original[ETH..], &answer[ETH..]);
            let mut out = [0u8; IPV6_ERROR_MAX_LEN];
            let n = icmpv6_error(kind, original, router, &mut out).unwrap();
            assert_eq!(n, answer.len());
            // Linux labels its flows (net.ipv6.auto_flowlabels); we send flow label 0, which
            // the checksum does not cover.
            assert_eq!(out[1] & 0xf0, 0);
            out[1..4].copy_from_slice(&answer[1..4]);
            assert_eq!(&out[..n], answer, "{kind:?}");
        }
        assert_eq!(frames[7].len() - ETH, IPV6_ERROR_MAX_LEN);
    }

    fn ipv4_packet(src: &str, dst: &str, protocol: u8, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 20 + payload.len()];
        Ipv4Repr {
            src_addr: v4(src),
            dst_addr: v4(dst),
            protocol: protocol.into(),
            payload_len: payload.len() as u16,
            ttl: 1,
            tos: 0,
            ident: 7,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
        }
        .emit(&mut b);
        b[20..].copy_from_slice(payload);
        b
    }

    fn refusal4(b: &[u8]) -> Option<IcmpRefusal> {
        let mut out = [0u8; IPV4_ERROR_MAX_LEN];
        let r = icmpv4_error(
            Icmpv4ErrorKind::TimeExceeded,
            b,
            v4("192.0.2.1"),
            1,
            &mut out,
        );
        assert_eq!(r, icmpv4_error_eligible(b));
        r.err()
    }

    #[test]
    fn ipv4_refusals() {
        let udp = ipv4_packet("198.51.100.2", "203.0.113.2", 17, &[0; 12]);
        assert_eq!(refusal4(&udp), None);
        // Answering an error with an error: refused; answering an echo request: allowed.
        let mut out = [0u8; 576];
        let n = icmpv4_error(
            Icmpv4ErrorKind::TimeExceeded,
            &udp,
            v4("192.0.2.1"),
            1,
            &mut out,
        )
        .unwrap();
        assert_eq!(refusal4(&out[..n]), Some(IcmpRefusal::IcmpError));
        let echo = ipv4_packet("198.51.100.2", "203.0.113.2", 1, &[8, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(refusal4(&echo), None);
        for t in [3u8, 4, 5, 11, 12, 42, 255] {
            let e = ipv4_packet("198.51.100.2", "203.0.113.2", 1, &[t, 0, 0, 0]);
            assert_eq!(refusal4(&e), Some(IcmpRefusal::IcmpError), "type {t}");
        }
        let empty_icmp = ipv4_packet("198.51.100.2", "203.0.113.2", 1, &[]);
        assert_eq!(refusal4(&empty_icmp), Some(IcmpRefusal::IcmpError));
        // Fragments: the first (MF, offset 0) is answered, later ones are not.
        let mut first = udp.clone();
        first[6] = 0x20;
        ipv4::fill_checksum(&mut first);
        assert_eq!(refusal4(&first), None);
        let mut later = udp.clone();
        later[6..8].copy_from_slice(&185u16.to_be_bytes());
        ipv4::fill_checksum(&mut later);
        assert_eq!(refusal4(&later), Some(IcmpRefusal::NonFirstFragment));
        for dst in ["255.255.255.255", "224.0.0.5", "239.1.2.3"] {
            let p = ipv4_packet("198.51.100.2", dst, 17, &[0; 8]);
            assert_eq!(
                refusal4(&p),
                Some(IcmpRefusal::NonUnicastDestination),
                "{dst}"
            );
        }
        for src in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            let p = ipv4_packet(src, "203.0.113.2", 17, &[0; 8]);
            assert_eq!(refusal4(&p), Some(IcmpRefusal::InvalidSource), "{src}");
        }
        let mut bad_sum = udp.clone();
        bad_sum[10] ^= 1;
        assert!(matches!(
            refusal4(&bad_sum),
            Some(IcmpRefusal::Malformed(Error::Checksum { .. }))
        ));
        assert!(matches!(
            refusal4(&udp[..udp.len() - 1]),
            Some(IcmpRefusal::Malformed(Error::Truncated { .. }))
        ));
        assert!(matches!(refusal4(&[]), Some(IcmpRefusal::Malformed(_))));
        let mut out = [0u8; 59];
        assert_eq!(
            icmpv4_error(
                Icmpv4ErrorKind::NetUnreachable,
                &udp,
                v4("192.0.2.1"),
                1,
                &mut out
            ),
            Err(IcmpRefusal::BufferTooSmall {
                needed: 60,
                capacity: 59
            })
        );
    }

    #[test]
    fn ipv4_message_layout() {
        // Options are quoted too; Ethernet padding past the total length is not.
        let mut p = ipv4_packet("198.51.100.2", "203.0.113.2", 6, &[0xaa; 30]);
        p[0] = 0x46;
        ipv4::fill_checksum(&mut p);
        p.extend_from_slice(&[0xee; 10]);
        let mut out = [0u8; 1500];
        let kind = Icmpv4ErrorKind::FragmentationNeeded { next_hop_mtu: 1492 };
        let n = icmpv4_error(kind, &p, v4("192.0.2.1"), 0xbeef, &mut out).unwrap();
        assert_eq!(n, 28 + 50);
        let ip = Ipv4Repr::parse(&out[..n]).unwrap();
        assert_eq!(ip.src_addr, v4("192.0.2.1"));
        assert_eq!(ip.dst_addr, v4("198.51.100.2"));
        assert_eq!(
            (ip.ttl, ip.tos, ip.ident, ip.dont_frag),
            (64, 0xc0, 0xbeef, false)
        );
        let icmp = Icmpv4Repr::parse(&out[20..n]).unwrap();
        assert_eq!(icmp.msg_type, Icmpv4Message::DstUnreachable);
        assert_eq!((icmp.code, icmp.rest_of_header), (4, 1492));
        assert_eq!(&out[28..n], &p[..50]);
        for (kind, t, c) in [
            (Icmpv4ErrorKind::TimeExceeded, 11, 0),
            (Icmpv4ErrorKind::NetUnreachable, 3, 0),
            (Icmpv4ErrorKind::HostUnreachable, 3, 1),
            (Icmpv4ErrorKind::AdminProhibited, 3, 13),
        ] {
            let n = icmpv4_error(kind, &p, v4("192.0.2.1"), 1, &mut out).unwrap();
            assert_eq!((out[20], out[21]), (t, c));
            assert_eq!(&out[24..28], &[0; 4]);
            assert!(Icmpv4Repr::parse(&out[20..n]).is_ok());
        }
    }

    fn ipv6_packet(src: &str, dst: &str, next: u8, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 40 + payload.len()];
        Ipv6Repr {
            src_addr: v6(src),
            dst_addr: v6(dst),
            next_header: next,
            payload_len: payload.len() as u16,
            hop_limit: 1,
            traffic_class: 0,
            flow_label: 0x12345,
        }
        .emit(&mut b);
        b[40..].copy_from_slice(payload);
        b
    }

    fn refusal6(kind: Icmpv6ErrorKind, b: &[u8]) -> Option<IcmpRefusal> {
        let mut out = [0u8; IPV6_ERROR_MAX_LEN];
        let r = icmpv6_error(kind, b, v6("2001:db8::1"), &mut out);
        assert_eq!(r, icmpv6_error_eligible(kind, b));
        r.err()
    }

    #[test]
    fn ipv6_refusals() {
        let te = Icmpv6ErrorKind::HopLimitExceeded;
        let ptb = Icmpv6ErrorKind::PacketTooBig { mtu: 1280 };
        let udp = ipv6_packet("2001:db8:a::2", "2001:db8:b::2", 17, &[0; 16]);
        assert_eq!(refusal6(te, &udp), None);
        let mut out = [0u8; 1280];
        let n = icmpv6_error(te, &udp, v6("2001:db8::1"), &mut out).unwrap();
        assert_eq!(refusal6(te, &out[..n]), Some(IcmpRefusal::IcmpError));
        for (t, refused) in [
            (1u8, true),
            (2, true),
            (4, true),
            (100, true),
            (127, true),
            (128, false),
            (129, false),
            (135, false),
            (137, true),
            (200, false),
        ] {
            let m = ipv6_packet(
                "2001:db8:a::2",
                "2001:db8:b::2",
                58,
                &[t, 0, 0, 0, 0, 0, 0, 0],
            );
            assert_eq!(refusal6(te, &m).is_some(), refused, "type {t}");
        }
        let mcast = ipv6_packet("2001:db8:a::2", "ff0e::1", 17, &[0; 8]);
        assert_eq!(
            refusal6(te, &mcast),
            Some(IcmpRefusal::NonUnicastDestination)
        );
        assert_eq!(refusal6(ptb, &mcast), None);
        for src in ["::", "::1", "ff02::1"] {
            let p = ipv6_packet(src, "2001:db8:b::2", 17, &[0; 8]);
            assert_eq!(refusal6(te, &p), Some(IcmpRefusal::InvalidSource), "{src}");
            assert_eq!(refusal6(ptb, &p), Some(IcmpRefusal::InvalidSource), "{src}");
        }
        // Fragments: a later fragment of UDP is answered, a later one of ICMPv6 is not
        // (its type is not in it); a first fragment is judged by the header it carries.
        let frag = |next: u8, offset: u16, body: &[u8]| {
            let mut payload = vec![next, 0];
            payload.extend_from_slice(&(offset << 3 | 1).to_be_bytes());
            payload.extend_from_slice(&[0, 0, 0, 9]);
            payload.extend_from_slice(body);
            ipv6_packet("2001:db8:a::2", "2001:db8:b::2", 44, &payload)
        };
        assert_eq!(refusal6(te, &frag(17, 100, &[0; 8])), None);
        assert_eq!(
            refusal6(te, &frag(58, 100, &[128; 8])),
            Some(IcmpRefusal::IcmpError)
        );
        assert_eq!(refusal6(te, &frag(58, 0, &[128; 8])), None);
        assert_eq!(
            refusal6(te, &frag(58, 0, &[1; 8])),
            Some(IcmpRefusal::IcmpError)
        );
        // An extension header running past the payload.
        let bad_ext = ipv6_packet(
            "2001:db8:a::2",
            "2001:db8:b::2",
            0,
            &[17, 3, 0, 0, 0, 0, 0, 0],
        );
        assert!(matches!(
            refusal6(te, &bad_ext),
            Some(IcmpRefusal::Malformed(Error::Truncated { .. }))
        ));
        assert!(matches!(
            refusal6(te, &udp[..50]),
            Some(IcmpRefusal::Malformed(_))
        ));
        let mut out = [0u8; 40];
        assert!(matches!(
            icmpv6_error(te, &udp, v6("2001:db8::1"), &mut out),
            Err(IcmpRefusal::BufferTooSmall {
                needed: 104,
                capacity: 40
            })
        ));
    }

    #[test]
    fn ipv6_message_layout() {
        let mut p = ipv6_packet("2001:db8:a::2", "2001:db8:b::2", 6, &[0x55; 2000]);
        p.extend_from_slice(&[0xee; 4]);
        let mut out = [0u8; 1500];
        let ours = v6("2001:db8::1");
        for (kind, t, c, rest) in [
            (Icmpv6ErrorKind::HopLimitExceeded, 3, 0, 0),
            (Icmpv6ErrorKind::NoRoute, 1, 0, 0),
            (Icmpv6ErrorKind::AdminProhibited, 1, 1, 0),
            (Icmpv6ErrorKind::AddressUnreachable, 1, 3, 0),
            (Icmpv6ErrorKind::PacketTooBig { mtu: 1492 }, 2, 0, 1492),
        ] {
            let n = icmpv6_error(kind, &p, ours, &mut out).unwrap();
            assert_eq!(n, IPV6_ERROR_MAX_LEN);
            let ip = Ipv6Repr::parse(&out[..n]).unwrap();
            assert_eq!(ip.src_addr, ours);
            assert_eq!(ip.dst_addr, v6("2001:db8:a::2"));
            assert_eq!(
                (
                    ip.next_header,
                    ip.hop_limit,
                    ip.traffic_class,
                    ip.flow_label
                ),
                (58, 64, 0, 0)
            );
            assert_eq!(usize::from(ip.payload_len), n - 40);
            let icmp = Icmpv6Repr::parse(&ip.src_addr, &ip.dst_addr, &out[40..n]).unwrap();
            assert_eq!(
                (u8::from(icmp.msg_type), icmp.code, icmp.rest_of_header),
                (t, c, rest)
            );
            assert_eq!(&out[48..n], &p[..n - 48]);
        }
    }

    #[test]
    fn limiter_rate_and_burst() {
        let mut l = IcmpErrorLimiter::new(100, 5);
        let t0 = 1_000_000_000;
        assert_eq!((0..20).filter(|_| l.allow(t0)).count(), 5);
        // 10 ms at 100/s: one more.
        assert!(l.allow(t0 + 10_000_000));
        assert!(!l.allow(t0 + 10_000_000));
        // A long pause refills only up to the burst.
        assert_eq!((0..20).filter(|_| l.allow(t0 + 60_000_000_000)).count(), 5);
        // Time going backwards adds nothing.
        assert!(!l.allow(0));
        assert_eq!(l.sent(), 11);
        assert_eq!(l.suppressed(), 15 + 1 + 15 + 1);
        // Over one simulated second at a steady 1 per 100 µs (10k/s offered), about 100 pass
        // after the initial burst.
        let mut l = IcmpErrorLimiter::new(100, 5);
        let passed = (0..10_000u64).filter(|i| l.allow(i * 100_000)).count();
        assert!((104..=106).contains(&passed), "{passed}");
        let mut none = IcmpErrorLimiter::new(1000, 0);
        assert!(!none.allow(0) && !none.allow(u64::MAX));
        let mut once = IcmpErrorLimiter::new(0, 1);
        assert!(once.allow(0) && !once.allow(u64::MAX));
        assert_eq!(IcmpErrorLimiter::default(), IcmpErrorLimiter::new(1000, 50));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..700),
                                       cap in 0usize..1300, v in any::<u8>()) {
            let mut out = vec![0u8; cap];
            let mut b = b;
            // Steer half of the inputs past the version check.
            if let Some(first) = b.first_mut() {
                *first = if v & 1 == 0 { 0x45 } else { 0x60 } | (*first & 0x0f);
            }
            if let Ok(n) = icmpv4_error(Icmpv4ErrorKind::TimeExceeded, &b, Ipv4Addr::new(192, 0, 2, 1), 1, &mut out) {
                prop_assert!(n <= IPV4_ERROR_MAX_LEN && n <= cap);
                prop_assert!(Icmpv4Repr::parse(&out[20..n]).is_ok());
            }
            if let Ok(n) = icmpv6_error(Icmpv6ErrorKind::PacketTooBig { mtu: 1280 }, &b, Ipv6Addr::LOCALHOST, &mut out) {
                prop_assert!(n <= IPV6_ERROR_MAX_LEN && n <= cap);
            }
        }

        #[test]
        fn quotes_what_fits(len in 0usize..1600, tos in any::<u8>(), ident in any::<u16>()) {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut p = ipv4_packet("198.51.100.2", "203.0.113.2", 17, &payload);
            p[1] = tos;
            ipv4::fill_checksum(&mut p);
            let mut out = [0u8; IPV4_ERROR_MAX_LEN];
            let n = icmpv4_error(Icmpv4ErrorKind::TimeExceeded, &p, v4("192.0.2.1"), ident, &mut out).unwrap();
            prop_assert_eq!(n, (28 + p.len()).min(576));
            let ip = Ipv4Repr::parse(&out[..n]).unwrap();
            prop_assert_eq!(usize::from(ip.payload_len) + 20, n);
            prop_assert_eq!(ip.ident, ident);
            prop_assert!(Icmpv4Repr::parse(&out[20..n]).is_ok());
            prop_assert_eq!(&out[28..n], &p[..n - 28]);

            let q = ipv6_packet("2001:db8:a::2", "2001:db8:b::2", 17, &payload);
            let mut out = [0u8; IPV6_ERROR_MAX_LEN];
            let n = icmpv6_error(Icmpv6ErrorKind::HopLimitExceeded, &q, v6("2001:db8::1"), &mut out).unwrap();
            prop_assert_eq!(n, (48 + q.len()).min(1280));
            let ip = Ipv6Repr::parse(&out[..n]).unwrap();
            prop_assert!(Icmpv6Repr::parse(&ip.src_addr, &ip.dst_addr, &out[40..n]).is_ok());
            prop_assert_eq!(&out[48..n], &q[..n - 48]);
        }
    }
}
