//! Arbitrary packets through the NAT in both directions (each first through the fast path's
//! prefetch steps), interleaved with time, expiry, session ends and log drains: nothing
//! panics, a valid IPv4 header checksum and a valid TCP/UDP checksum stay valid after a
//! translation, and in the end every block is released with one release logged per
//! allocation.
//!
//! Input layout: records `[ctl, len_hi, len_lo, bytes...]`.
//! - `ctl` 0xf0..=0xff: housekeeping (see below); the bytes are its argument.
//! - otherwise bit 7 = inbound (else outbound from subscriber `ctl & 3`), bit 6 = aim: the
//!   destination address and port are overwritten with the outside endpoint of live mapping
//!   number `ctl >> 2 & 7` (inbound: reaches the mapping; outbound: a hairpin).
#![no_main]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use vbng_dataplane::nat::{Nat, NatConfig, NatLogKind, Outbound};
use vbng_dataplane::wire::{checksum, ipv4, udp};

const SEC: u64 = 1_000_000_000;

fn config() -> NatConfig {
    NatConfig {
        pool: vec!["198.51.100.0/30".parse().unwrap()],
        port_first: 1024,
        port_last: 4095,
        block_size: 256,
        blocks_per_subscriber: 3,
        max_mappings: 512,
        max_subscribers: 8,
        log_queue_len: 8,
        fragment_slots: 16,
        ..NatConfig::default()
    }
}

fn subscriber(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(100, 64, 0, 10 + (i & 3))
}

/// True if `pkt` (an unfragmented IPv4 packet) carries a TCP or UDP segment whose checksum
/// verifies. UDP without a checksum counts as valid.
fn l4_checksum_ok(pkt: &[u8]) -> Option<bool> {
    let h = ipv4::Header::parse(pkt).ok()?;
    if h.frag_offset() != 0 || h.more_frags() {
        return None;
    }
    let seg = pkt.get(h.header_len()..usize::from(h.total_len()))?;
    match u8::from(h.protocol()) {
        17 if seg.len() >= 8 => Some(udp::verify_checksum(h.src(), h.dst(), seg)),
        6 if seg.len() >= 20 => {
            let ph = checksum::pseudo_header_ipv4(h.src(), h.dst(), 6, seg.len() as u16);
            Some(checksum::fold(checksum::combine(ph, checksum::sum(seg))) == 0xffff)
        }
        _ => None,
    }
}

/// Writes the destination address and port (or ICMP id) of `pkt` if it is long enough.
fn aim(pkt: &mut [u8], addr: Ipv4Addr, port: u16) {
    if pkt.len() < 24 {
        return;
    }
    pkt[16..20].copy_from_slice(&addr.octets());
    let hl = usize::from(pkt[0] & 0x0f) * 4;
    let at = if pkt[9] == 1 { hl + 4 } else { hl + 2 };
    if pkt.len() >= at + 2 {
        pkt[at..at + 2].copy_from_slice(&port.to_be_bytes());
    }
    ipv4::fill_checksum(pkt);
}

fuzz_target!(|data: &[u8]| {
    let mut nat = Nat::new(&config(), 0x5eed).unwrap();
    let mut now = 0u64;
    let mut generation = [0u64; 4];
    let mut open: BTreeMap<(Ipv4Addr, u16), u64> = BTreeMap::new();
    let mut check_log = |nat: &mut Nat| {
        nat.drain_events(|e| {
            let key = (e.outside, e.first_port);
            match e.kind {
                NatLogKind::BlockAllocated => {
                    assert!(open.insert(key, e.session_tag).is_none(), "{e:?}")
                }
                NatLogKind::BlockReleased => {
                    assert_eq!(open.remove(&key), Some(e.session_tag), "{e:?}")
                }
            }
        });
    };
    let mut rest = data;
    while rest.len() >= 3 {
        let ctl = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])) % 1600;
        rest = &rest[3..];
        let (bytes, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        let arg = bytes.first().copied().unwrap_or(0);
        match ctl {
            0xff => {
                nat.expire(now, usize::from(arg) + 1);
            }
            0xfe => {
                let s = arg & 3;
                nat.release_subscriber(subscriber(s), now);
                generation[usize::from(s)] += 1;
            }
            0xfd => check_log(&mut nat),
            0xf0..=0xfc => now += u64::from(arg) * u64::from(ctl - 0xef) * SEC,
            _ => {
                let mut pkt = bytes.to_vec();
                if ctl & 0x40 != 0 {
                    let k = usize::from(ctl >> 2 & 7);
                    if let Some(m) = nat.mappings().nth(k) {
                        aim(&mut pkt, m.outside, m.outside_port);
                    }
                }
                let ip_ok = ipv4::Header::parse(&pkt).is_ok() && ipv4::verify_checksum(&pkt);
                let l4_ok = l4_checksum_ok(&pkt);
                // The fast path's two prefetch steps read the same bytes first.
                if let Some(hash) = nat.prefetch_lookup(&pkt, ctl & 0x80 != 0) {
                    nat.prefetch_mapping(hash, ctl & 0x80 != 0);
                }
                let ok = if ctl & 0x80 != 0 {
                    nat.translate_inbound(now, &mut pkt).is_ok()
                } else {
                    let s = ctl & 3;
                    let tag = u64::from(s) << 32 | generation[usize::from(s)];
                    match nat.translate_outbound(now, subscriber(s), tag, &mut pkt) {
                        Ok(Outbound::Forward) => {
                            assert!(nat.is_outside_address(Ipv4Addr::new(
                                pkt[12], pkt[13], pkt[14], pkt[15]
                            )));
                            true
                        }
                        Ok(Outbound::Hairpin { .. } | Outbound::HairpinElsewhere) => true,
                        Err(_) => false,
                    }
                };
                if ok {
                    if ip_ok {
                        assert!(ipv4::verify_checksum(&pkt), "IPv4 checksum broken");
                    }
                    if l4_ok == Some(true) {
                        assert_eq!(l4_checksum_ok(&pkt), Some(true), "L4 checksum broken");
                    }
                }
            }
        }
    }
    // Everything idle for long enough: every block comes back, each release logged once.
    now += 100_000 * SEC;
    for _ in 0..200 {
        check_log(&mut nat);
        nat.expire(now, 1024);
        now += 200 * SEC;
        if nat.blocks_in_use() == 0 && nat.log_queue_len() == 0 {
            break;
        }
    }
    check_log(&mut nat);
    assert_eq!(nat.mappings_active(), 0);
    assert_eq!(nat.blocks_in_use(), 0);
    assert!(open.is_empty(), "{open:?}");
});
