//! Arbitrary frames through a pipeline with a few sessions (untagged, 802.1Q, QinQ), IPv6
//! on and every session holding a /64 (and, churned ones, a delegated /56); when the
//! input's first byte is odd, with NAT44 on every session (pool 192.0.2.0/30), so that the
//! burst's staged NAT lookups see arbitrary frames too.
//!
//! Input layout: a sequence of records `[port, len_hi, len_lo, bytes...]`, split into
//! bursts; every record becomes one frame. Session commands are interleaved by port 0xff.
#![no_main]

use core::net::{Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use vbng_dataplane::nat::{Ipv4Prefix, Nat, NatConfig};
use vbng_dataplane::packet::Frame;
use vbng_dataplane::pipeline::{Pipeline, PipelineConfig, SessionCommand, Verdict};
use vbng_dataplane::session::{AccessKey, SessionEntry, SessionIpv6, SessionQos, UsageCounters};
use vbng_dataplane::wire::EthernetAddress;

fn pipeline() -> Pipeline {
    let mut p = Pipeline::new(
        PipelineConfig {
            access_ports: vec![0, 1],
            core_port: 2,
            core_mac: EthernetAddress([2, 0, 0, 0, 0, 2]),
            core_ipv4: Ipv4Addr::new(198, 51, 100, 2),
            core_prefix_len: 24,
            next_hop: Ipv4Addr::new(198, 51, 100, 1),
            gateway_mac: EthernetAddress([2, 0, 0x5e, 0, 1, 1]),
            redirect_pps: 1000,
            arp_retry_ns: 1_000_000_000,
        },
        7,
    );
    p.set_ipv6(
        Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 2),
        Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1),
    );
    let subs = [(0u8, 0u16, 0u16, 10u8), (0, 0, 200, 11), (1, 100, 201, 12)];
    for (port, svlan, cvlan, n) in subs {
        p.apply(SessionCommand::Upsert(SessionEntry {
            id: u64::from(n),
            access: AccessKey {
                port,
                svlan,
                cvlan,
                mac: EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, n]),
                pppoe_session: 0,
            },
            ipv4: Ipv4Addr::new(100, 64, 0, n),
            gate_open: true,
            mtu: 0,
            mss_clamp: 0,
            acl: vbng_dataplane::acl::NO_ACL,
            counters: UsageCounters::default(),
            ipv6: SessionIpv6::new(Some((prefix64(n), 64)), None).unwrap_or(SessionIpv6::NONE),
            qos: SessionQos::UNLIMITED,
        }));
    }
    p
}

/// 2001:db8:100:<n>::/64.
fn prefix64(n: u8) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0x100, u16::from(n), 0, 0, 0, 0)
}

fuzz_target!(|data: &[u8]| {
    let mut p = pipeline();
    if data.first().is_some_and(|b| b & 1 == 1) {
        let pool = Ipv4Prefix::new(Ipv4Addr::new(192, 0, 2, 0), 30);
        let cfg = NatConfig {
            max_mappings: 256,
            max_subscribers: 16,
            ..NatConfig::with_pool(vec![pool])
        };
        let inside = Ipv4Prefix::new(Ipv4Addr::new(100, 64, 0, 0), 10);
        p.set_nat(Nat::new(&cfg, 3).expect("NAT config"), vec![inside]);
    }
    let mut frames: Vec<Frame> = (0..40).map(|_| Frame::new()).collect();
    let mut verdicts = vec![Verdict::ToControlPlane; frames.len()];
    let mut n = 0;
    let mut rest = data;
    let mut now = 0u64;
    while rest.len() >= 3 {
        let port = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])) % 1600;
        rest = &rest[3..];
        let take = len.min(rest.len());
        let (bytes, tail) = rest.split_at(take);
        rest = tail;
        if port == 0xff {
            // Session churn: remove or re-add a session named by the first byte.
            let id = u64::from(bytes.first().copied().unwrap_or(0) % 16);
            if bytes.len() % 2 == 0 {
                let _ = p.apply(SessionCommand::Remove(id));
            } else {
                p.apply(SessionCommand::Upsert(SessionEntry {
                    id,
                    access: AccessKey {
                        port: bytes.len() as u8 % 3,
                        svlan: 0,
                        cvlan: id as u16,
                        mac: EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, id as u8]),
                        pppoe_session: 0,
                    },
                    ipv4: Ipv4Addr::new(100, 64, 0, id as u8),
                    gate_open: bytes.len() % 3 != 0,
                    mtu: 0,
                    mss_clamp: 0,
                    acl: vbng_dataplane::acl::NO_ACL,
                    counters: UsageCounters::default(),
                    ipv6: SessionIpv6::new(
                        Some((prefix64(id as u8), 64)),
                        Some((
                            Ipv6Addr::new(0x2001, 0xdb8, 0x8000, (id as u16) << 8, 0, 0, 0, 0),
                            56,
                        )),
                    )
                    .unwrap_or(SessionIpv6::NONE),
                    qos: SessionQos::UNLIMITED,
                }));
            }
            continue;
        }
        if frames[n].set_data(bytes).is_err() {
            continue;
        }
        frames[n].port = port % 4;
        n += 1;
        if n == frames.len() {
            p.process_burst(now, &mut frames[..n], &mut verdicts[..n]);
            n = 0;
            now += 10_000_000;
        }
    }
    p.process_burst(now, &mut frames[..n], &mut verdicts[..n]);
    for v in &verdicts[..n] {
        if let Verdict::Forward(port) = v {
            assert!(*port <= 2);
        }
    }
    p.drain_generated(now, &mut |port, b| {
        assert_eq!(port, 2);
        assert!(!b.is_empty());
    });
});
