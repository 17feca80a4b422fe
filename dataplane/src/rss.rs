//! Which worker owns a frame: the subscriber's IPv4 address hashed the way a NIC's receive
//! side scaling (RSS) hashes it.
//!
//! With several workers, every session lives in exactly one worker's tables (its counters,
//! policer and shaper are not shared). Upstream frames name the subscriber by their source
//! address, downstream frames by their destination, so both directions of a session map to
//! the same worker through [`WorkerMap::owner_of_ipv4`]: the Toeplitz hash (the function
//! NICs implement for RSS) of that one address, looked up in a redirection table (RETA)
//! whose entry `i` names worker `i % workers`. A NIC programmed with the same key, the same
//! table and a hash over the source address only (access side) or the destination address
//! only (core side) delivers every frame straight to its owner; on devices that cannot
//! (software devices, PPPoE, other hash inputs) the receiving worker hands the frame to the
//! owner ([`frame_owner`] tells it which).
//!
//! IPv6 frames name the subscriber by an address in one of its session's prefixes, which no
//! hash of the IPv4 address can tell. Every worker keeps an [`Ipv6Owners`] table (prefix
//! to owner, longest prefix winning), kept current by the control thread through each
//! worker's own queue, and hands such frames over by it.

use crate::prefix64::{Prefix64Map, top_bits};
use crate::wire::EtherType;
use crate::wire::arp::{self, ArpOperation};
use crate::wire::frame::L2Header;
use crate::wire::pppoe::{self, PppProtocol};
use crate::wire::{ipv4, ipv6};
use core::net::Ipv4Addr;

/// The 40-byte RSS key most NIC drivers default to (the one in Microsoft's RSS
/// specification); any key works as long as the NIC is given the same one.
pub const DEFAULT_RSS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// Entries of the redirection table (a power of two; NICs have 64 to 512, and a table of
/// 128 repeated fills any of them identically).
pub const RETA_SIZE: usize = 128;

/// The Toeplitz hash of `input` under `key` (Microsoft RSS specification): for every set
/// bit of the input, XOR in the 32 key bits starting at that bit's position. `key` must be
/// at least `input.len() + 4` bytes long; missing key bytes count as zero.
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    let key_bit = |i: usize| -> u32 {
        key.get(i / 8)
            .map_or(0, |b| u32::from((b >> (7 - (i % 8))) & 1))
    };
    let mut window: u32 = (0..32).fold(0, |w, i| (w << 1) | key_bit(i));
    let mut hash = 0;
    for (byte_index, &byte) in input.iter().enumerate() {
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                hash ^= window;
            }
            window = (window << 1) | key_bit(byte_index * 8 + bit + 32);
        }
    }
    hash
}

/// The owner of one frame, as seen by the worker that received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Process it here: it names no subscriber (control frames for the CP, ARP requests).
    Local,
    /// This worker owns the subscriber the frame belongs to.
    Worker(usize),
    /// Every worker needs it (the next hop's ARP reply: each worker resolves it on its own).
    All,
}

/// The session-to-worker map: Toeplitz over an IPv4 address, then the redirection table.
/// Lookup is four table reads and one more for the RETA.
#[derive(Clone)]
pub struct WorkerMap {
    /// Hash contribution of each byte value at each of the four address positions.
    byte_hashes: [[u32; 256]; 4],
    reta: [u8; RETA_SIZE],
    workers: usize,
}

impl core::fmt::Debug for WorkerMap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WorkerMap")
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl WorkerMap {
    /// A map over `workers` workers (at least 1, at most 256) with `key`.
    pub fn new(key: &[u8; 40], workers: usize) -> WorkerMap {
        let workers = workers.clamp(1, 256);
        let mut byte_hashes = [[0u32; 256]; 4];
        for (position, table) in byte_hashes.iter_mut().enumerate() {
            for (value, slot) in table.iter_mut().enumerate() {
                let mut input = [0u8; 4];
                input[position] = value as u8;
                *slot = toeplitz(key, &input);
            }
        }
        let mut reta = [0u8; RETA_SIZE];
        for (i, entry) in reta.iter_mut().enumerate() {
            *entry = (i % workers) as u8;
        }
        WorkerMap {
            byte_hashes,
            reta,
            workers,
        }
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The redirection table: entry `i` is the worker (queue) of hash values whose low bits
    /// are `i`. Program a NIC with it (repeated to the NIC's table size).
    pub fn reta(&self) -> &[u8; RETA_SIZE] {
        &self.reta
    }

    /// The Toeplitz hash of one IPv4 address (the NIC's hash with the source-only or
    /// destination-only input).
    #[inline]
    pub fn hash_ipv4(&self, addr: Ipv4Addr) -> u32 {
        let [a, b, c, d] = addr.octets();
        self.byte_hashes[0][usize::from(a)]
            ^ self.byte_hashes[1][usize::from(b)]
            ^ self.byte_hashes[2][usize::from(c)]
            ^ self.byte_hashes[3][usize::from(d)]
    }

    /// The worker owning the subscriber with address `addr`.
    #[inline]
    pub fn owner_of_ipv4(&self, addr: Ipv4Addr) -> usize {
        usize::from(self.reta[self.hash_ipv4(addr) as usize % RETA_SIZE])
    }
}

/// One change to an [`Ipv6Owners`] table: the session prefix `top`/`len` (its top 64 bits,
/// host bits clear; `len` 1-64) is now owned by worker `owner`, or by none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6OwnerChange {
    /// Top 64 bits of the prefix.
    pub top: u64,
    /// Prefix length, 1-64.
    pub len: u8,
    /// The worker owning the session that holds the prefix; None: the prefix is gone.
    pub owner: Option<u8>,
}

/// The worker owning each session IPv6 prefix (a session's /64 and its delegated prefix),
/// looked up by address with the longest prefix winning: one probe per prefix length in
/// use. Each worker has its own copy, changed only between its bursts.
#[derive(Debug, Clone)]
pub struct Ipv6Owners {
    /// Prefix (top 64 bits), length and owner: 16 bytes an entry.
    owners: Prefix64Map<u8>,
}

impl Default for Ipv6Owners {
    fn default() -> Self {
        Ipv6Owners {
            owners: Prefix64Map::new(0x6f77_6e65_7273),
        }
    }
}

impl Ipv6Owners {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes this table holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.owners.heap_bytes()
    }

    /// Prefixes held.
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// True when no prefix is held.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// Applies `change`; a length outside 1-64 is ignored.
    pub fn apply(&mut self, change: Ipv6OwnerChange) {
        let Ipv6OwnerChange { top, len, owner } = change;
        if !(1..=64).contains(&len) {
            return;
        }
        let top = top & top_bits(len);
        match owner {
            Some(w) => self.owners.set(top, len, w),
            None => {
                self.owners.remove_if(top, len, |_| true);
            }
        }
    }

    /// The worker owning the session whose prefix holds `addr`, the longest prefix winning.
    #[inline]
    pub fn owner_of(&self, addr: u128) -> Option<usize> {
        self.owners.longest((addr >> 64) as u64).map(usize::from)
    }
}

/// ICMPv6 (IPv6 next header 58) and its neighbour advertisement type (RFC 4861).
const ICMPV6: u8 = 58;
const NEIGHBOR_ADVERTISEMENT: u8 = 136;

/// Which worker must process `frame`, received on an access port (`from_access`) or on the
/// core port. Upstream IPv4 (plain, VLAN-tagged or in a PPPoE session) belongs to the owner
/// of its source address, downstream IPv4 to the owner of its destination; IPv6 likewise,
/// to the owner `ipv6` gives for the address; the next hop's ARP replies and neighbour
/// advertisements go to every worker; everything else (an IPv6 address in no session's
/// prefix, such as a link-local source, and anything unparsable, which the pipeline then
/// drops and counts) stays where it arrived.
pub fn frame_owner(map: &WorkerMap, ipv6: &Ipv6Owners, frame: &[u8], from_access: bool) -> Owner {
    let Ok((l2, l3)) = L2Header::parse(frame) else {
        return Owner::Local;
    };
    let ip_at = match l2.ethertype {
        EtherType::Ipv4 => l3,
        EtherType::Ipv6 => return ipv6_owner(ipv6, frame.get(l3..), from_access),
        EtherType::PppoeSession if from_access => {
            match frame.get(l3..).and_then(|b| pppoe::Header::parse(b).ok()) {
                Some(h) if h.protocol() == PppProtocol::Ipv4 => l3 + pppoe::SESSION_HEADER_LEN,
                Some(h) if h.protocol() == PppProtocol::Ipv6 => {
                    let ip = frame.get(l3 + pppoe::SESSION_HEADER_LEN..);
                    return ipv6_owner(ipv6, ip, from_access);
                }
                _ => return Owner::Local,
            }
        }
        EtherType::Arp if !from_access => {
            return match frame.get(l3..).and_then(|b| arp::Header::parse(b).ok()) {
                Some(h) if h.operation() == ArpOperation::Reply => Owner::All,
                _ => Owner::Local,
            };
        }
        _ => return Owner::Local,
    };
    let Some(h) = frame.get(ip_at..).and_then(|b| ipv4::Header::parse(b).ok()) else {
        return Owner::Local;
    };
    let subscriber = if from_access { h.src() } else { h.dst() };
    Owner::Worker(map.owner_of_ipv4(subscriber))
}

/// [`frame_owner`] for the IPv6 packet `ip`.
fn ipv6_owner(owners: &Ipv6Owners, ip: Option<&[u8]>, from_access: bool) -> Owner {
    let Some(h) = ip.and_then(|b| ipv6::Header::parse(b).ok()) else {
        return Owner::Local;
    };
    if !from_access
        && h.next_header() == ICMPV6
        && ip.and_then(|b| b.get(ipv6::HEADER_LEN)) == Some(&NEIGHBOR_ADVERTISEMENT)
    {
        // Each worker resolves the next hop on its own, as with ARP.
        return Owner::All;
    }
    let subscriber = if from_access { h.src() } else { h.dst() };
    match owners.owner_of(subscriber.to_bits()) {
        Some(w) => Owner::Worker(w),
        None => Owner::Local,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::EthernetAddress;
    use crate::wire::frame::{L2Header, build_ipv4_udp};
    use alloc::vec;
    use alloc::vec::Vec;
    use core::net::Ipv6Addr;

    #[test]
    fn toeplitz_matches_the_specification_vectors() {
        // IPv4-only inputs (source address then destination address) and their hashes from
        // the RSS verification table of Microsoft's specification.
        let cases: [([u8; 4], [u8; 4], u32); 3] = [
            ([66, 9, 149, 187], [161, 142, 100, 80], 0x323e_8fc2),
            ([199, 92, 111, 2], [65, 69, 140, 83], 0xd718_262a),
            ([24, 19, 198, 95], [12, 22, 207, 184], 0xd2d0_a5de),
        ];
        for (src, dst, expected) in cases {
            let mut input = Vec::new();
            input.extend_from_slice(&src);
            input.extend_from_slice(&dst);
            assert_eq!(toeplitz(&DEFAULT_RSS_KEY, &input), expected);
        }
    }

    #[test]
    fn table_hash_equals_the_bitwise_hash() {
        let map = WorkerMap::new(&DEFAULT_RSS_KEY, 4);
        for i in 0..2000u32 {
            let addr = Ipv4Addr::from_bits(0x6440_0001u32.wrapping_add(i.wrapping_mul(7919)));
            assert_eq!(
                map.hash_ipv4(addr),
                toeplitz(&DEFAULT_RSS_KEY, &addr.octets())
            );
        }
    }

    #[test]
    fn sessions_spread_over_workers() {
        let map = WorkerMap::new(&DEFAULT_RSS_KEY, 2);
        let mut per_worker = [0u32; 2];
        for i in 0..10_000u32 {
            per_worker[map.owner_of_ipv4(Ipv4Addr::from_bits(0x6440_0001 + i))] += 1;
        }
        assert!(
            per_worker.iter().all(|&n| n > 4000),
            "uneven: {per_worker:?}"
        );
        let one = WorkerMap::new(&DEFAULT_RSS_KEY, 1);
        assert_eq!(one.owner_of_ipv4(Ipv4Addr::new(100, 64, 0, 1)), 0);
    }

    #[test]
    fn both_directions_of_a_session_have_one_owner() {
        let map = WorkerMap::new(&DEFAULT_RSS_KEY, 3);
        let no_v6 = Ipv6Owners::new();
        let sub = Ipv4Addr::new(100, 64, 1, 77);
        let server = Ipv4Addr::new(203, 0, 113, 9);
        let mac = EthernetAddress([2, 0x10, 0, 0, 1, 77]);
        let gw = EthernetAddress([2, 0, 0x5e, 0, 1, 1]);
        let plain = L2Header {
            dst: gw,
            src: mac,
            svlan: None,
            cvlan: None,
            ethertype: EtherType::Ipv4,
        };
        let qinq = L2Header {
            svlan: Some(100),
            cvlan: Some(7),
            ..plain
        };
        let up = build_ipv4_udp(&qinq, sub, server, 10000, 5201, 64, &[0; 18]);
        let down_l2 = L2Header {
            dst: mac,
            src: gw,
            ..plain
        };
        let down = build_ipv4_udp(&down_l2, server, sub, 5201, 10000, 64, &[0; 18]);
        let owner = map.owner_of_ipv4(sub);
        assert_eq!(frame_owner(&map, &no_v6, &up, true), Owner::Worker(owner));
        assert_eq!(
            frame_owner(&map, &no_v6, &down, false),
            Owner::Worker(owner)
        );
        // A PPPoE session frame: the inner source address decides.
        let plain_up = build_ipv4_udp(&plain, sub, server, 10000, 5201, 64, &[0; 18]);
        let mut ppp = Vec::new();
        ppp.extend_from_slice(&plain_up[..12]);
        ppp.extend_from_slice(&[0x88, 0x64, 0x11, 0x00, 0x00, 0x05]);
        let ip = &plain_up[14..];
        ppp.extend_from_slice(&((ip.len() + 2) as u16).to_be_bytes());
        ppp.extend_from_slice(&[0x00, 0x21]);
        ppp.extend_from_slice(ip);
        assert_eq!(frame_owner(&map, &no_v6, &ppp, true), Owner::Worker(owner));
    }

    #[test]
    fn control_frames_stay_and_next_hop_replies_go_everywhere() {
        let map = WorkerMap::new(&DEFAULT_RSS_KEY, 2);
        let no_v6 = Ipv6Owners::new();
        let mut arp_frame = Vec::new();
        arp_frame.extend_from_slice(&[0xff; 6]);
        arp_frame.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
        arp_frame.extend_from_slice(&[0x08, 0x06]);
        arp_frame.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
        arp_frame.extend_from_slice(&[2, 0, 0, 0, 0, 1, 198, 51, 100, 1]);
        arp_frame.extend_from_slice(&[2, 0, 0, 0, 0, 2, 198, 51, 100, 2]);
        assert_eq!(frame_owner(&map, &no_v6, &arp_frame, false), Owner::All);
        assert_eq!(frame_owner(&map, &no_v6, &arp_frame, true), Owner::Local);
        arp_frame[21] = 1; // a request
        assert_eq!(frame_owner(&map, &no_v6, &arp_frame, false), Owner::Local);
        assert_eq!(frame_owner(&map, &no_v6, &[0u8; 5], true), Owner::Local);
        assert_eq!(
            frame_owner(&map, &no_v6, &arp_frame[..30], false),
            Owner::Local
        );
    }

    fn change(prefix: Ipv6Addr, len: u8, owner: Option<u8>) -> Ipv6OwnerChange {
        Ipv6OwnerChange {
            top: (prefix.to_bits() >> 64) as u64,
            len,
            owner,
        }
    }

    #[test]
    fn ipv6_owners_take_the_longest_prefix_and_forget_removed_ones() {
        let mut owners = Ipv6Owners::new();
        let slash64 = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 1, 0, 0, 0, 0);
        let slash56 = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0);
        owners.apply(change(slash56, 56, Some(1)));
        owners.apply(change(slash64, 64, Some(2)));
        let host = |a: Ipv6Addr| a.to_bits() | 0x1234;
        assert_eq!(owners.owner_of(host(slash64)), Some(2));
        let other64 = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0x7f, 0, 0, 0, 9);
        assert_eq!(owners.owner_of(other64.to_bits()), Some(1));
        assert_eq!(owners.owner_of(Ipv6Addr::LOCALHOST.to_bits()), None);
        // Host bits in the change are ignored; a length outside 1-64 is refused.
        owners.apply(change(Ipv6Addr::from_bits(host(slash64)), 64, Some(0)));
        assert_eq!(owners.owner_of(host(slash64)), Some(0));
        owners.apply(change(slash64, 65, Some(3)));
        owners.apply(change(slash64, 0, Some(3)));
        assert_eq!(owners.len(), 2);
        owners.apply(change(slash64, 64, None));
        assert_eq!(owners.owner_of(host(slash64)), Some(1));
        owners.apply(change(slash56, 56, None));
        owners.apply(change(slash56, 56, None));
        assert!(owners.is_empty());
        assert!(owners.owners.lens().is_empty());
        assert_eq!(owners.owner_of(host(slash64)), None);
    }

    /// An IPv6 UDP frame from `src` to `dst` behind `l2` (checksums are not needed here).
    fn udp6_frame(l2: &L2Header, src: Ipv6Addr, dst: Ipv6Addr, next_header: u8) -> Vec<u8> {
        let mut f = vec![0u8; l2.buffer_len()];
        l2.emit(&mut f);
        let mut ip = [0u8; 48];
        ip[0] = 0x60;
        ip[4..6].copy_from_slice(&8u16.to_be_bytes());
        ip[6] = next_header;
        ip[7] = 255;
        ip[8..24].copy_from_slice(&src.octets());
        ip[24..40].copy_from_slice(&dst.octets());
        ip[40] = 136; // a neighbour advertisement when the next header is ICMPv6
        f.extend_from_slice(&ip);
        f
    }

    #[test]
    fn ipv6_frames_go_to_the_owner_of_their_prefix() {
        let map = WorkerMap::new(&DEFAULT_RSS_KEY, 3);
        let mut owners = Ipv6Owners::new();
        let prefix = Ipv6Addr::new(0x2001, 0xdb8, 0x200, 7, 0, 0, 0, 0);
        let delegated = Ipv6Addr::new(0x2001, 0xdb8, 0x8000, 0x100, 0, 0, 0, 0);
        owners.apply(change(prefix, 64, Some(2)));
        owners.apply(change(delegated, 56, Some(1)));
        let sub = Ipv6Addr::new(0x2001, 0xdb8, 0x200, 7, 0, 0, 0, 0x10);
        let lan = Ipv6Addr::new(0x2001, 0xdb8, 0x8000, 0x142, 0, 0, 0, 0x20);
        let server = Ipv6Addr::new(0x2001, 0xdb8, 0xeeee, 0, 0, 0, 0, 5);
        let link_local = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x10);
        let gw = EthernetAddress([2, 0, 0x5e, 0, 1, 1]);
        let mac = EthernetAddress([2, 0x10, 0, 0, 1, 77]);
        let up_l2 = L2Header {
            dst: gw,
            src: mac,
            svlan: Some(100),
            cvlan: Some(7),
            ethertype: EtherType::Ipv6,
        };
        let down_l2 = L2Header {
            dst: gw,
            src: mac,
            svlan: None,
            cvlan: None,
            ethertype: EtherType::Ipv6,
        };
        let owner = |f: &[u8], up| frame_owner(&map, &owners, f, up);
        assert_eq!(
            owner(&udp6_frame(&up_l2, sub, server, 17), true),
            Owner::Worker(2)
        );
        assert_eq!(
            owner(&udp6_frame(&up_l2, lan, server, 17), true),
            Owner::Worker(1)
        );
        assert_eq!(
            owner(&udp6_frame(&down_l2, server, sub, 17), false),
            Owner::Worker(2)
        );
        assert_eq!(
            owner(&udp6_frame(&down_l2, server, lan, 17), false),
            Owner::Worker(1)
        );
        // Router solicitations and DHCPv6 come from link-local addresses: where they arrive.
        assert_eq!(
            owner(&udp6_frame(&up_l2, link_local, server, 17), true),
            Owner::Local
        );
        // The next hop's neighbour advertisements teach every worker; not from the access.
        let na = udp6_frame(&down_l2, server, sub, 58);
        assert_eq!(owner(&na, false), Owner::All);
        assert_eq!(
            owner(&udp6_frame(&up_l2, sub, server, 58), true),
            Owner::Worker(2)
        );
        // Truncated: stays.
        assert_eq!(owner(&na[..40], false), Owner::Local);
        // In a PPPoE session (PPP protocol 0x0057), the inner source address decides.
        let plain = udp6_frame(&down_l2, lan, server, 17);
        let mut ppp = Vec::new();
        ppp.extend_from_slice(&plain[..12]);
        ppp.extend_from_slice(&[0x88, 0x64, 0x11, 0x00, 0x00, 0x05]);
        let ip = &plain[14..];
        ppp.extend_from_slice(&((ip.len() + 2) as u16).to_be_bytes());
        ppp.extend_from_slice(&[0x00, 0x57]);
        ppp.extend_from_slice(ip);
        assert_eq!(owner(&ppp, true), Owner::Worker(1));
        ppp[21] = 0x21; // now claims IPv4: unparsable, stays
        assert_eq!(owner(&ppp, true), Owner::Local);
    }

    /// The table's memory per prefix stays within what the README says: 16-byte entries
    /// and a control byte, at hashbrown's load factors.
    #[test]
    fn ipv6_owners_cost_at_most_40_bytes_a_prefix() {
        let mut owners = Ipv6Owners::new();
        let mut worst = 0.0f64;
        let mut best = f64::MAX;
        for n in 1..=200_000u64 {
            owners.apply(Ipv6OwnerChange {
                top: 0x2001_0db8_0000_0000 | n << 8,
                len: 56,
                owner: Some((n % 4) as u8),
            });
            if n >= 1000 && n % 997 == 0 {
                let per = owners.heap_bytes() as f64 / n as f64;
                worst = worst.max(per);
                best = best.min(per);
            }
        }
        assert_eq!(owners.len(), 200_000);
        assert_eq!(
            owners.owner_of(0x2001_0db8_0000_0500_u128 << 64 | 7),
            Some(1)
        );
        assert!(
            worst <= 40.0 && best >= 19.0,
            "{best:.1}-{worst:.1} bytes a prefix"
        );
    }
}
