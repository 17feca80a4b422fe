//! Property tests of the NAT over random flows, time, session ends and log drains: (a) no
//! two live mappings share an outside endpoint, (b) every block is released once its
//! mappings are gone and the log pairs each allocation with one release, (c) a translated
//! packet and its reply restore the inside endpoint with valid checksums; and arbitrary or
//! mutated packets never panic.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use proptest::prelude::*;

use super::tests::{
    SEC, assert_checksums, dst_of, echo_pkt, icmp_error, ip, nat, remote, src_of, sub, tcp_pkt,
    udp_pkt,
};
use super::*;
use crate::wire::tcp::flags;

#[derive(Debug, Clone)]
enum Op {
    /// Packets from subscriber `sub` (0..6) from inside ports `port..port + burst`,
    /// protocol `proto` (0 TCP SYN, 1 UDP, 2 ICMP echo) to remote `remote`; each followed
    /// by the remote's reply.
    Flow {
        sub: u8,
        proto: u8,
        port: u16,
        burst: u16,
        remote: u8,
    },
    /// Time passes.
    Advance(u32),
    /// Housekeeping with a budget.
    Expire(u16),
    /// The session of subscriber `sub` ends.
    Release(u8),
    /// The host drains the log.
    Drain,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u8..6, 0u8..3, 1u16..40, 1u16..12, 1u8..5)
            .prop_map(|(sub, proto, port, burst, remote)| Op::Flow { sub, proto, port, burst, remote }),
        2 => prop_oneof![0u32..30, 100u32..400, Just(7500u32)].prop_map(Op::Advance),
        2 => (1u16..64).prop_map(Op::Expire),
        1 => (0u8..6).prop_map(Op::Release),
        5 => Just(Op::Drain),
    ]
}

/// Ports per block in the property tests.
const PROP_BLOCK: u16 = 8;

/// A small NAT that runs out of everything: 2 addresses of 8 blocks of 8 ports, 3 blocks
/// per subscriber (so 6 subscribers want more blocks than there are), a log queue of 5.
fn prop_config() -> NatConfig {
    NatConfig {
        pool: vec!["198.51.100.4/31".parse().unwrap()],
        port_first: 1024,
        port_last: 1024 + 8 * PROP_BLOCK - 1,
        block_size: PROP_BLOCK,
        blocks_per_subscriber: 3,
        max_mappings: 300,
        max_subscribers: 8,
        log_queue_len: 5,
        fragment_slots: 16,
        ..NatConfig::default()
    }
}

struct Harness {
    nat: Nat,
    now: u64,
    /// Session generation per subscriber (the tag is sub * 1000 + generation).
    generation: [u64; 6],
    log: Vec<NatLogEvent>,
}

impl Harness {
    fn tag(&self, s: u8) -> u64 {
        u64::from(s) * 1000 + self.generation[usize::from(s)]
    }

    fn drain(&mut self) {
        let log = &mut self.log;
        self.nat.drain_events(|e| log.push(*e));
    }

    /// (c): the outbound packet leaves from the mapping with valid checksums, and the
    /// reply comes back to the original inside endpoint with valid checksums.
    fn flow(&mut self, s: u8, proto: u8, port: u16, r: u8) -> Result<(), TestCaseError> {
        let inside = sub(10 + s);
        let tag = self.tag(s);
        let mut p = match proto {
            0 => tcp_pkt((inside, port), (remote(r), 443), flags::SYN, b"syn"),
            1 => udp_pkt((inside, port), (remote(r), 53), b"udp"),
            _ => echo_pkt(inside, remote(r), true, port, 1),
        };
        let orig = p.clone();
        // The owner changes with every packet: a reply returns the latest.
        let owner = self.now as u32;
        match self
            .nat
            .translate_outbound_owned(self.now, inside, tag, owner, &mut p)
        {
            Ok(v) => prop_assert_eq!(v, Outbound::Forward),
            Err(e) => {
                prop_assert!(matches!(
                    e,
                    NatDrop::PortExhausted
                        | NatDrop::AddressExhausted
                        | NatDrop::LogQueueFull
                        | NatDrop::TableFull
                        | NatDrop::SubscriberTableFull
                ));
                prop_assert_eq!(&p, &orig);
                return Ok(());
            }
        }
        assert_checksums(&p);
        let (oa, op) = src_of(&p);
        prop_assert_eq!(Some(oa), self.nat.outside_address_of(inside));
        if proto == 2 {
            prop_assert_eq!(dst_of(&p).0, dst_of(&orig).0);
        } else {
            prop_assert_eq!(dst_of(&p), dst_of(&orig));
        }
        // Nothing but the source endpoint (and checksums) changed.
        prop_assert_eq!(&p[16..20], &orig[16..20]);
        let mut reply = match proto {
            0 => tcp_pkt((remote(r), 443), (oa, op), flags::SYN | flags::ACK, b"ack"),
            1 => udp_pkt((remote(r), 53), (oa, op), b"reply"),
            _ => echo_pkt(remote(r), oa, false, op, 1),
        };
        let to = self.nat.translate_inbound(self.now, &mut reply);
        prop_assert_eq!(
            to,
            Ok(Inbound {
                inside,
                session_tag: tag as u32,
                owner
            })
        );
        prop_assert_eq!(dst_of(&reply), (inside, port));
        assert_checksums(&reply);
        Ok(())
    }

    /// (a): live mappings never share an outside endpoint, both indexes find each of them,
    /// each subscriber's mappings share one outside address, ports lie in the range.
    fn check_mappings(&self) -> Result<(), TestCaseError> {
        let mut outside = BTreeSet::new();
        let mut addr_of: BTreeMap<u64, Ipv4Addr> = BTreeMap::new();
        for m in self.nat.mappings() {
            prop_assert!(outside.insert((m.outside, m.protocol, m.outside_port)));
            prop_assert_eq!(
                self.nat
                    .lookup_inbound(m.outside, m.protocol, m.outside_port),
                Some(m)
            );
            prop_assert_eq!(
                self.nat
                    .lookup_outbound(m.inside, m.protocol, m.inside_port),
                Some(m)
            );
            prop_assert!((1024..1024 + 8 * PROP_BLOCK).contains(&m.outside_port));
            prop_assert_eq!(
                *addr_of.entry(m.session_tag).or_insert(m.outside),
                m.outside
            );
        }
        prop_assert_eq!(outside.len(), self.nat.mappings_active());
        if let Err(e) = self.nat.check_consistency() {
            prop_assert!(false, "{}", e);
        }
        Ok(())
    }

    /// With the log drained: every live mapping's port lies in a block that the log shows
    /// as allocated to its session and not released since.
    fn check_attribution(&self) -> Result<(), TestCaseError> {
        let mut owner: BTreeMap<(Ipv4Addr, u16), u64> = BTreeMap::new();
        for e in &self.log {
            match e.kind {
                NatLogKind::BlockAllocated => {
                    owner.insert((e.outside, e.first_port), e.session_tag);
                }
                NatLogKind::BlockReleased => {
                    owner.remove(&(e.outside, e.first_port));
                }
            }
        }
        for m in self.nat.mappings() {
            let first = 1024 + (m.outside_port - 1024) / PROP_BLOCK * PROP_BLOCK;
            prop_assert_eq!(owner.get(&(m.outside, first)), Some(&m.session_tag));
        }
        prop_assert_eq!(owner.len() as u64, self.nat.blocks_in_use());
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_flows_time_and_session_ends(ops in proptest::collection::vec(op(), 1..200), seed in any::<u64>()) {
        let mut h = Harness {
            nat: Nat::new(&prop_config(), seed).unwrap(),
            now: 0,
            generation: [0; 6],
            log: Vec::new(),
        };
        for o in ops {
            match o {
                Op::Flow { sub: s, proto, port, burst, remote } => {
                    for p in port..port + burst {
                        h.flow(s, proto, p, remote)?;
                    }
                }
                Op::Advance(secs) => h.now += u64::from(secs) * SEC,
                Op::Expire(budget) => {
                    h.nat.expire(h.now, usize::from(budget));
                }
                Op::Release(s) => {
                    h.nat.release_subscriber(sub(10 + s), h.now);
                    h.generation[usize::from(s)] += 1;
                }
                Op::Drain => {
                    h.drain();
                    h.check_attribution()?;
                }
            }
            h.check_mappings()?;
        }
        // (b): once everything has been idle long enough, every block is released, and the
        // log pairs every allocation with exactly one release.
        // Mappings go first; their blocks are released block_idle_s (120 s) later.
        h.now += 10_000 * SEC;
        for _ in 0..1000 {
            h.drain();
            h.nat.expire(h.now, 64);
            if h.nat.blocks_in_use() == 0 && h.nat.log_queue_len() == 0 {
                break;
            }
            h.now += 10 * SEC;
        }
        h.drain();
        prop_assert_eq!(h.nat.mappings_active(), 0);
        prop_assert_eq!(h.nat.blocks_in_use(), 0);
        prop_assert_eq!(h.nat.subscribers_active() + h.nat.subscribers_releasing(), 0);
        let mut open: BTreeMap<(Ipv4Addr, u16), u64> = BTreeMap::new();
        let (mut allocs, mut releases) = (0u64, 0u64);
        for e in &h.log {
            let key = (e.outside, e.first_port);
            match e.kind {
                NatLogKind::BlockAllocated => {
                    prop_assert!(open.insert(key, e.session_tag).is_none(), "allocated twice: {:?}", e);
                    allocs += 1;
                }
                NatLogKind::BlockReleased => {
                    prop_assert_eq!(open.remove(&key), Some(e.session_tag), "release without allocation: {:?}", e);
                    releases += 1;
                }
            }
        }
        prop_assert!(open.is_empty());
        prop_assert_eq!(allocs, releases);
        let c = h.nat.counters();
        prop_assert_eq!(c.blocks_allocated, allocs);
        prop_assert_eq!(c.blocks_released, releases);
        prop_assert_eq!(c.log_events, allocs + releases);
        prop_assert_eq!(c.mappings_created, c.mappings_expired + c.mappings_released);
    }

    /// Arbitrary bytes, and mutations of valid packets, never panic in either direction.
    #[test]
    fn arbitrary_packets_never_panic(data in proptest::collection::vec(any::<u8>(), 0..120), tag in 0u64..3) {
        let mut n = nat();
        let mut warm = udp_pkt((sub(10), 5000), (remote(1), 53), b"");
        n.translate_outbound(0, sub(10), 1, &mut warm).unwrap();
        let mut a = data.clone();
        let _ = n.translate_outbound(0, sub(10), tag, &mut a);
        let mut b = data;
        let _ = n.translate_inbound(0, &mut b);
    }

    #[test]
    fn mutated_packets_never_panic(which in 0usize..5, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6), cut in any::<usize>()) {
        let mut n = nat();
        let mut p = udp_pkt((sub(10), 5000), (remote(1), 53), b"0123456789");
        n.translate_outbound(0, sub(10), 1, &mut p).unwrap();
        let (oa, op) = src_of(&p);
        let base = match which {
            0 => udp_pkt((remote(1), 53), (oa, op), b"reply"),
            1 => tcp_pkt((sub(10), 6000), (remote(1), 80), flags::SYN, b""),
            2 => icmp_error(ip(192, 0, 2, 1), oa, 3, 4, 1400, &p),
            3 => icmp_error(sub(10), remote(1), 3, 3, 0, &udp_pkt((remote(1), 53), (sub(10), 5000), b"x")),
            _ => echo_pkt(remote(1), oa, false, op, 1),
        };
        let mut m = base.clone();
        for (i, v) in flips {
            let len = m.len();
            m[i % len] ^= v;
        }
        m.truncate(cut % (base.len() + 1));
        let mut a = m.clone();
        let _ = n.translate_outbound(0, sub(10), 1, &mut a);
        let _ = n.translate_inbound(0, &mut m);
    }
}
