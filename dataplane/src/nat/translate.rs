//! Packet translation: [`Nat::translate_outbound`] and [`Nat::translate_inbound`] rewrite
//! IPv4 packets in place, updating every checksum incrementally (RFC 1624): the IPv4
//! header, the TCP/UDP checksum over the pseudo header (a UDP checksum of 0, "none", stays
//! 0), the ICMP checksum, and for ICMP errors the embedded packet's headers and the outer
//! ICMP checksum over them (RFC 5508 section 4.2).

use core::net::Ipv4Addr;

use super::engine::{Nat, secs};
use super::table::{pack_key, tcp_state};
use super::{Inbound, NO_OWNER, NatDrop, NatProtocol, Outbound};
use crate::wire::checksum;
use crate::wire::ipv4;
use crate::wire::tcp::flags as tcp_flags;

/// IPv4 header offsets.
const IP_FLAGS: usize = 6;
const IP_PROTO: usize = 9;
const IP_CSUM: usize = 10;
const IP_SRC: usize = 12;
const IP_DST: usize = 16;

/// ICMP types handled.
const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_DST_UNREACHABLE: u8 = 3;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_TIME_EXCEEDED: u8 = 11;
const ICMP_PARAMETER_PROBLEM: u8 = 12;

/// Shortest ICMP error the NAT translates: ICMP header, embedded IPv4 header, the first 8
/// bytes of the embedded transport header (RFC 792).
const ICMP_ERROR_MIN: usize = 8 + ipv4::HEADER_LEN + 8;

/// What the fixed IPv4 header says.
#[derive(Debug, Clone, Copy)]
struct IpInfo {
    hl: usize,
    total: usize,
    proto: u8,
    src: u32,
    dst: u32,
    ident: u16,
    frag_offset: u16,
    more_frags: bool,
}

fn parse_ip(buf: &[u8]) -> Result<IpInfo, NatDrop> {
    let h = ipv4::Header::parse(buf).map_err(|_| NatDrop::Malformed)?;
    Ok(IpInfo {
        hl: h.header_len(),
        total: usize::from(h.total_len()),
        proto: h.protocol().into(),
        src: h.src().to_bits(),
        dst: h.dst().to_bits(),
        ident: h.ident(),
        frag_offset: h.frag_offset(),
        more_frags: h.more_frags(),
    })
}

// The readers take the field as one slice, so one bounds check covers its bytes (indexing
// each byte checked each). Like indexing, they panic past the end: every caller has
// checked the packet's length first.
#[inline]
fn rd16(b: &[u8], at: usize) -> u16 {
    let field: &[u8; 2] = b[at..at + 2].try_into().unwrap_or(&[0; 2]);
    u16::from_be_bytes(*field)
}

#[inline]
fn wr16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
fn rd32(b: &[u8], at: usize) -> u32 {
    let field: &[u8; 4] = b[at..at + 4].try_into().unwrap_or(&[0; 4]);
    u32::from_be_bytes(*field)
}

#[inline]
fn wr32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Which endpoint of a packet is rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Src,
    Dst,
}

/// Sets the source or destination address of the IPv4 header at the start of `pkt`
/// (at least 20 bytes), updating the header checksum. Returns the old address.
#[inline]
fn set_addr(pkt: &mut [u8], side: Side, addr: u32) -> u32 {
    let at = if side == Side::Src { IP_SRC } else { IP_DST };
    let old = rd32(pkt, at);
    wr32(pkt, at, addr);
    let c = checksum::update_u32(rd16(pkt, IP_CSUM), old, addr);
    wr16(pkt, IP_CSUM, c);
    old
}

/// Rewrites one endpoint of the packet at the start of `pkt`: the address on `side` of the
/// IPv4 header and the port on `side` of the transport header at `l4` (the ICMP echo
/// identifier for ICMP), with the IPv4 header checksum and the transport checksum (present
/// only if it lies inside `pkt`: an ICMP error may carry a truncated TCP header). The
/// caller guarantees `pkt.len() >= l4 + 8` and `l4 >= 20`.
fn rewrite(pkt: &mut [u8], l4: usize, proto: NatProtocol, side: Side, addr: u32, port: u16) {
    let old_addr = set_addr(pkt, side, addr);
    let at = l4
        + match (proto, side) {
            (NatProtocol::Icmp, _) => 4,
            (_, Side::Src) => 0,
            (_, Side::Dst) => 2,
        };
    let old_port = rd16(pkt, at);
    wr16(pkt, at, port);
    match proto {
        NatProtocol::Tcp => {
            if pkt.len() >= l4 + 18 {
                let c = rd16(pkt, l4 + 16);
                let c = checksum::update_u32_u16(c, old_addr, addr, old_port, port);
                wr16(pkt, l4 + 16, c);
            }
        }
        NatProtocol::Udp => {
            let c = rd16(pkt, l4 + 6);
            if c != 0 {
                let c = checksum::update_u32_u16(c, old_addr, addr, old_port, port);
                // RFC 768: a computed 0 is sent as all ones (0 means "no checksum").
                wr16(pkt, l4 + 6, if c == 0 { 0xffff } else { c });
            }
        }
        NatProtocol::Icmp => {
            // No pseudo header: only the identifier is covered.
            let c = rd16(pkt, l4 + 2);
            wr16(pkt, l4 + 2, checksum::update_u16(c, old_port, port));
        }
    }
}

/// The embedded packet of an ICMP error at `l4..end` of `pkt`, checked.
#[derive(Debug, Clone, Copy)]
struct Embedded {
    /// Offset of the embedded IPv4 header in `pkt`.
    at: usize,
    /// Its header length.
    hl: usize,
    proto: NatProtocol,
    src: u32,
    dst: u32,
}

/// Validates an ICMP error message `pkt[l4..end]` (length, checksum: RFC 5508 REQ-3 drops
/// a bad one) and its embedded IPv4 header.
fn embedded(pkt: &[u8], l4: usize, end: usize) -> Result<Embedded, NatDrop> {
    let msg = &pkt[l4..end];
    if msg.len() < ICMP_ERROR_MIN || checksum::checksum(msg) != 0 {
        return Err(NatDrop::Malformed);
    }
    let at = l4 + 8;
    let vihl = pkt[at];
    let hl = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || hl < ipv4::HEADER_LEN || at + hl + 8 > end {
        return Err(NatDrop::Malformed);
    }
    if rd16(pkt, at + IP_FLAGS) & 0x1fff != 0 {
        // About a non-first fragment: no transport header to find the mapping by.
        return Err(NatDrop::Fragment);
    }
    let proto =
        NatProtocol::from_ip_protocol(pkt[at + IP_PROTO]).ok_or(NatDrop::UnsupportedProtocol)?;
    Ok(Embedded {
        at,
        hl,
        proto,
        src: rd32(pkt, at + IP_SRC),
        dst: rd32(pkt, at + IP_DST),
    })
}

/// Rewrites one endpoint of the embedded packet of an ICMP error (ICMP header at `l4`,
/// message ends at `end`) and updates the outer ICMP checksum over the bytes that changed.
fn rewrite_embedded(
    pkt: &mut [u8],
    l4: usize,
    end: usize,
    e: &Embedded,
    side: Side,
    addr: u32,
    port: u16,
) {
    // Everything `rewrite` may touch lies in the embedded IPv4 header and the first 20
    // bytes of the embedded transport header. The region starts 8 bytes into the ICMP
    // message, an even offset, so its one's complement sum can be swapped for the new one
    // as if it were a single 16-bit word (RFC 1624).
    let region = e.at..end.min(e.at + e.hl + 20);
    let before = checksum::fold(checksum::sum(&pkt[region.clone()]));
    rewrite(&mut pkt[e.at..end], e.hl, e.proto, side, addr, port);
    let after = checksum::fold(checksum::sum(&pkt[region]));
    let c = checksum::update_u16(rd16(pkt, l4 + 2), before, after);
    wr16(pkt, l4 + 2, c);
}

/// The index key of the mapping the IPv4 packet `ip` would use: outbound its source
/// endpoint (TCP or UDP source port, echo request identifier), inbound its destination
/// endpoint (destination port, echo reply identifier). None for what has no such key
/// (non-first fragments, ICMP errors, other protocols, malformed headers). A hint for
/// prefetching only: translation parses and checks the packet again.
#[inline]
pub(super) fn lookup_key(ip: &[u8], inbound: bool) -> Option<u64> {
    let b0 = *ip.first()?;
    let hl = usize::from(b0 & 0x0f) * 4;
    if b0 >> 4 != 4
        || hl < ipv4::HEADER_LEN
        || rd16(ip.get(..ipv4::HEADER_LEN)?, IP_FLAGS) & 0x1fff != 0
    {
        return None;
    }
    let l4 = ip.get(hl..hl + 8)?;
    let proto = NatProtocol::from_ip_protocol(ip[IP_PROTO])?;
    let port = match (proto, inbound) {
        (NatProtocol::Icmp, false) if l4[0] == ICMP_ECHO_REQUEST => rd16(l4, 4),
        (NatProtocol::Icmp, true) if l4[0] == ICMP_ECHO_REPLY => rd16(l4, 4),
        (NatProtocol::Icmp, _) => return None,
        (_, true) => rd16(l4, 2),
        (_, false) => rd16(l4, 0),
    };
    let addr = rd32(ip, if inbound { IP_DST } else { IP_SRC });
    Some(pack_key(addr, proto, port))
}

impl Nat {
    /// First step of a staged translation of the IPv4 packet `ip` (outbound, or `inbound`):
    /// asks the CPU for the index bucket of the packet's mapping and returns the hash that
    /// names it, for [`Nat::prefetch_mapping`] a few dozen packets later. None when the
    /// packet has no mapping key. Changes nothing.
    #[inline]
    pub fn prefetch_lookup(&self, ip: &[u8], inbound: bool) -> Option<u64> {
        let hash = self.maps.hash(lookup_key(ip, inbound)?);
        self.maps.prefetch_bucket(hash, inbound);
        Some(hash)
    }

    /// Second step: reads the bucket that [`Nat::prefetch_lookup`] asked for (`hash` is what
    /// it returned, `inbound` as given to it) and asks for the mapping it points to, which
    /// the translation then reads from cache.
    #[inline]
    pub fn prefetch_mapping(&self, hash: u64, inbound: bool) {
        self.maps.prefetch_mapping(hash, inbound);
    }

    /// Translates a packet from subscriber `inside_subscriber` (its session address: the
    /// key of its blocks) of session `session_tag` (the same value for every packet of the
    /// session). `ip` starts at the IPv4 header; its checksum is not verified (the pipeline
    /// does that) but kept consistent. Rewrites the source address and port (ICMP echo
    /// identifier), creating the mapping if needed; translates an ICMP error about a packet
    /// the subscriber received (RFC 5508). A packet to one of this worker's outside mappings
    /// is hairpinned: see [`Outbound::Hairpin`]. Every refusal is counted.
    pub fn translate_outbound(
        &mut self,
        now_ns: u64,
        inside_subscriber: Ipv4Addr,
        session_tag: u64,
        ip: &mut [u8],
    ) -> Result<Outbound, NatDrop> {
        self.translate_outbound_owned(now_ns, inside_subscriber, session_tag, NO_OWNER, ip)
    }

    /// [`Nat::translate_outbound`], also recording `owner` in the packet's mapping: a
    /// value of the caller's (the pipeline's session slot) that inbound translations
    /// through the mapping return ([`Inbound::owner`]), so that the caller can find the
    /// session without a lookup of its own.
    pub fn translate_outbound_owned(
        &mut self,
        now_ns: u64,
        inside_subscriber: Ipv4Addr,
        session_tag: u64,
        owner: u32,
        ip: &mut [u8],
    ) -> Result<Outbound, NatDrop> {
        let r = self.outbound(now_ns, inside_subscriber.to_bits(), session_tag, owner, ip);
        if let Err(d) = r {
            self.counters.drops[d.index()] += 1;
        }
        r
    }

    /// Translates a packet from the outside: rewrites the destination (an outside mapping)
    /// to the inside endpoint, or the embedded packet of an ICMP error about a packet a
    /// subscriber sent (RFC 5508), or the destination of a non-first fragment whose first
    /// fragment passed shortly before. Every refusal is counted.
    pub fn translate_inbound(&mut self, now_ns: u64, ip: &mut [u8]) -> Result<Inbound, NatDrop> {
        let r = self.inbound(now_ns, ip);
        if let Err(d) = r {
            self.counters.drops[d.index()] += 1;
        }
        r
    }

    fn outbound(
        &mut self,
        now_ns: u64,
        sub_key: u32,
        tag: u64,
        owner: u32,
        ip: &mut [u8],
    ) -> Result<Outbound, NatDrop> {
        let p = parse_ip(ip)?;
        let proto = NatProtocol::from_ip_protocol(p.proto).ok_or(NatDrop::UnsupportedProtocol)?;
        let now_s = secs(now_ns);
        if p.frag_offset != 0 {
            return self.outbound_fragment(now_ns, sub_key, tag, &p, ip);
        }
        let (l4, end) = (p.hl, p.total);
        let ip = &mut ip[..end];
        match proto {
            NatProtocol::Tcp | NatProtocol::Udp => {
                let min = if proto == NatProtocol::Tcp { 20 } else { 8 };
                if end - l4 < min {
                    return Err(NatDrop::Malformed);
                }
                let sport = rd16(ip, l4);
                if sport == 0 {
                    return Err(NatDrop::Malformed);
                }
                let flags = if proto == NatProtocol::Tcp {
                    ip[l4 + 13]
                } else {
                    0
                };
                // A RST for a connection the NAT does not know opens no mapping.
                let create = flags & tcp_flags::RST == 0;
                let (slot, created) = self.outbound_mapping(
                    now_ns, now_s, sub_key, tag, owner, p.src, proto, sport, create,
                )?;
                let m = self.maps.get_mut(slot);
                if proto == NatProtocol::Tcp {
                    if created && flags & tcp_flags::SYN == 0 {
                        m.tcp = tcp_state::MIDSTREAM | tcp_state::SYN_OUT;
                    }
                    m.tcp = tcp_state::on_segment(m.tcp, flags, true);
                }
                let (a, port) = (m.outside, m.outside_port);
                rewrite(ip, l4, proto, Side::Src, a, port);
            }
            NatProtocol::Icmp => {
                if end - l4 < 8 {
                    return Err(NatDrop::Malformed);
                }
                match ip[l4] {
                    ICMP_ECHO_REQUEST => {
                        let id = rd16(ip, l4 + 4);
                        let (slot, _) = self.outbound_mapping(
                            now_ns, now_s, sub_key, tag, owner, p.src, proto, id, true,
                        )?;
                        let m = self.maps.get(slot);
                        let (a, port) = (m.outside, m.outside_port);
                        rewrite(ip, l4, proto, Side::Src, a, port);
                    }
                    ICMP_DST_UNREACHABLE | ICMP_TIME_EXCEEDED | ICMP_PARAMETER_PROBLEM => {
                        self.outbound_icmp_error(tag, &p, ip)?;
                    }
                    _ => return Err(NatDrop::UnsupportedProtocol),
                }
            }
        }
        self.hairpin_or_forward(now_ns, p.dst, ip)
    }

    /// The end of an outbound translation of `ip`, to `dst`: RFC 4787 REQ-9, RFC 5382
    /// REQ-2, hairpinning. To an address of our share of the pool, the source is already the
    /// sender's outside mapping; the destination is translated as if the packet had come
    /// from the outside. To another worker's share, it goes there as it is.
    #[inline(always)]
    fn hairpin_or_forward(
        &mut self,
        now_ns: u64,
        dst: u32,
        ip: &mut [u8],
    ) -> Result<Outbound, NatDrop> {
        let (lo, hi) = self.pool_bounds;
        if dst.wrapping_sub(lo) <= hi.wrapping_sub(lo) {
            if self.pool.index_of(dst).is_some() {
                let to = self.inbound(now_ns, ip)?;
                self.counters.hairpins += 1;
                return Ok(Outbound::Hairpin {
                    inside: to.inside,
                    session_tag: to.session_tag,
                    owner: to.owner,
                });
            }
            if self.is_elsewhere_in_pool(dst) {
                self.counters.hairpins_elsewhere += 1;
                return Ok(Outbound::HairpinElsewhere);
            }
        }
        Ok(Outbound::Forward)
    }

    /// A non-first fragment from a subscriber: the ports are in the first fragment, and the
    /// subscriber's paired address is all the source needs. One to the pool is hairpinned
    /// like its first fragment: here if its destination is ours (found through the first
    /// fragment's passage, as one from the outside would be), by the worker holding it
    /// otherwise.
    #[cold]
    #[inline(never)]
    fn outbound_fragment(
        &mut self,
        now_ns: u64,
        sub_key: u32,
        tag: u64,
        p: &IpInfo,
        ip: &mut [u8],
    ) -> Result<Outbound, NatDrop> {
        let s = self.subs.find(sub_key).ok_or(NatDrop::Fragment)?;
        let sub = self.subs.get(s);
        if sub.session_tag != tag {
            return Err(NatDrop::Fragment);
        }
        let a = self.pool.address(sub.addr);
        set_addr(ip, Side::Src, a);
        self.counters.fragments_translated += 1;
        self.hairpin_or_forward(now_ns, p.dst, ip)
    }

    /// An ICMP error from a subscriber about a packet it received (remote -> inside
    /// endpoint): the embedded destination becomes the outside mapping, and so does the
    /// outer source.
    fn outbound_icmp_error(&mut self, tag: u64, p: &IpInfo, ip: &mut [u8]) -> Result<(), NatDrop> {
        let (l4, end) = (p.hl, p.total);
        let e = embedded(ip, l4, end)?;
        if e.dst != p.src {
            return Err(NatDrop::NoMapping);
        }
        let el4 = e.at + e.hl;
        let port = match e.proto {
            NatProtocol::Icmp if ip[el4] == ICMP_ECHO_REPLY => rd16(ip, el4 + 4),
            NatProtocol::Icmp => return Err(NatDrop::UnsupportedProtocol),
            _ => rd16(ip, el4 + 2),
        };
        let slot = self
            .maps
            .find_inside(pack_key(e.dst, e.proto, port))
            .ok_or(NatDrop::NoMapping)?;
        let m = *self.maps.get(slot);
        if !m.is_of(tag) {
            return Err(NatDrop::NoMapping);
        }
        rewrite_embedded(ip, l4, end, &e, Side::Dst, m.outside, m.outside_port);
        set_addr(ip, Side::Src, m.outside);
        self.counters.icmp_errors_translated += 1;
        Ok(())
    }

    /// Inbound translation, of a packet from the outside or one `outbound` just translated
    /// (hairpinned). Refusals are counted by the caller.
    fn inbound(&mut self, now_ns: u64, ip: &mut [u8]) -> Result<Inbound, NatDrop> {
        let p = parse_ip(ip)?;
        let proto = NatProtocol::from_ip_protocol(p.proto).ok_or(NatDrop::UnsupportedProtocol)?;
        let now_s = secs(now_ns);
        if p.frag_offset != 0 {
            let (slot, tag) = self
                .frags
                .lookup(p.src, p.dst, p.proto, p.ident, now_s)
                .ok_or(NatDrop::Fragment)?;
            let m = self.maps.get(slot);
            if m.protocol() != Some(proto) || !m.is_of(tag) || m.outside != p.dst {
                return Err(NatDrop::Fragment);
            }
            let (inside, session_tag, owner) = (m.inside, m.session_tag, m.owner);
            set_addr(ip, Side::Dst, inside);
            self.counters.fragments_translated += 1;
            return Ok(Inbound {
                inside: Ipv4Addr::from_bits(inside),
                session_tag,
                owner,
            });
        }
        let (l4, end) = (p.hl, p.total);
        let ip = &mut ip[..end];
        let slot = match proto {
            NatProtocol::Tcp | NatProtocol::Udp => {
                let min = if proto == NatProtocol::Tcp { 20 } else { 8 };
                if end - l4 < min {
                    return Err(NatDrop::Malformed);
                }
                let dport = rd16(ip, l4 + 2);
                let slot = self
                    .maps
                    .find_outside(pack_key(p.dst, proto, dport))
                    .ok_or(NatDrop::NoMapping)?;
                let m = self.maps.get_mut(slot);
                m.last_seen = now_s;
                if proto == NatProtocol::Tcp {
                    m.tcp = tcp_state::on_segment(m.tcp, ip[l4 + 13], false);
                }
                let (a, port) = (m.inside, m.inside_port);
                rewrite(ip, l4, proto, Side::Dst, a, port);
                slot
            }
            NatProtocol::Icmp => {
                if end - l4 < 8 {
                    return Err(NatDrop::Malformed);
                }
                match ip[l4] {
                    ICMP_ECHO_REPLY => {
                        let id = rd16(ip, l4 + 4);
                        let slot = self
                            .maps
                            .find_outside(pack_key(p.dst, proto, id))
                            .ok_or(NatDrop::NoMapping)?;
                        let m = self.maps.get_mut(slot);
                        m.last_seen = now_s;
                        let (a, port) = (m.inside, m.inside_port);
                        rewrite(ip, l4, proto, Side::Dst, a, port);
                        slot
                    }
                    // Unsolicited: an outside address is shared, so a request names no host.
                    ICMP_ECHO_REQUEST => return Err(NatDrop::NoMapping),
                    ICMP_DST_UNREACHABLE | ICMP_TIME_EXCEEDED | ICMP_PARAMETER_PROBLEM => {
                        self.inbound_icmp_error(&p, ip)?
                    }
                    _ => return Err(NatDrop::UnsupportedProtocol),
                }
            }
        };
        let m = self.maps.get(slot);
        let to = Inbound {
            inside: Ipv4Addr::from_bits(m.inside),
            session_tag: m.session_tag,
            owner: m.owner,
        };
        if p.more_frags {
            let tag = u64::from(m.session_tag);
            self.frags
                .record(p.src, p.dst, p.proto, p.ident, slot, tag, now_s);
        }
        Ok(to)
    }

    /// An ICMP error from the outside about a packet a subscriber sent (outside mapping ->
    /// remote): the embedded source becomes the inside endpoint, and so does the outer
    /// destination. Does not refresh the mapping (RFC 4787 REQ-12: ICMP does not keep or
    /// destroy mappings). Returns the mapping slot.
    fn inbound_icmp_error(&mut self, p: &IpInfo, ip: &mut [u8]) -> Result<u32, NatDrop> {
        let (l4, end) = (p.hl, p.total);
        let e = embedded(ip, l4, end)?;
        if e.src != p.dst {
            return Err(NatDrop::NoMapping);
        }
        let el4 = e.at + e.hl;
        let port = match e.proto {
            NatProtocol::Icmp if ip[el4] == ICMP_ECHO_REQUEST => rd16(ip, el4 + 4),
            NatProtocol::Icmp => return Err(NatDrop::UnsupportedProtocol),
            _ => rd16(ip, el4),
        };
        let slot = self
            .maps
            .find_outside(pack_key(e.src, e.proto, port))
            .ok_or(NatDrop::NoMapping)?;
        let m = *self.maps.get(slot);
        rewrite_embedded(ip, l4, end, &e, Side::Src, m.inside, m.inside_port);
        set_addr(ip, Side::Dst, m.inside);
        self.counters.icmp_errors_translated += 1;
        Ok(slot)
    }
}
