//! Arbitrary PPP packets and caller actions through one `PppSession`.
//!
//! Input layout: a sequence of records `[op, len, bytes...]`. `op % 8`
//! chooses the step: 0-4 feed `bytes` as a packet of LCP, PAP, CHAP, IPCP
//! or an unknown protocol; 5 advances the clock by `len * 100` ms and ticks;
//! 6 gives an authentication verdict (accept if `len` is even); 7 assigns
//! the address. Bit 3 of the first op picks CHAP over PAP.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use vbng_access::ppp::wire::parse_packet;
use vbng_access::ppp::{AuthMethod, PppConfig, PppEvent, PppSession, proto};

fuzz_target!(|data: &[u8]| {
    let auth = if data.first().is_some_and(|b| b & 8 != 0) {
        AuthMethod::ChapThenPap
    } else {
        AuthMethod::Pap
    };
    let cfg = PppConfig {
        auth,
        ..PppConfig::default()
    };
    let mut s = PppSession::new(cfg, 0x1122_3344, [7; 16]);
    let mut now = 0u64;
    let mut outs = vec![s.start(now)];
    let mut rest = data;
    while rest.len() >= 2 {
        let (op, len) = (rest[0], rest[1]);
        rest = &rest[2..];
        let take = usize::from(len).min(rest.len());
        let (bytes, tail) = rest.split_at(take);
        rest = tail;
        let o = match op % 8 {
            n @ 0..=4 => {
                let protocol =
                    [proto::LCP, proto::PAP, proto::CHAP, proto::IPCP, 0x8057][usize::from(n)];
                s.input(now, protocol, bytes)
            }
            5 => {
                now += u64::from(len) * 100;
                s.tick(now)
            }
            6 => s.auth_result(now, len % 2 == 0, "msg"),
            _ => s.set_address(
                now,
                Ipv4Addr::new(100, 64, 0, 10),
                Ipv4Addr::new(100, 64, 0, 1),
                [Some(Ipv4Addr::new(192, 0, 2, 53)), None],
            ),
        };
        outs.push(o);
    }
    let mut downs = 0;
    for o in outs {
        for (_, f) in &o.frames {
            let p = parse_packet(f).expect("we emit well-formed packets");
            assert_eq!(p.data.len() + 4, f.len());
        }
        downs += o
            .events
            .iter()
            .filter(|e| matches!(e, PppEvent::Down { .. }))
            .count();
        assert!(downs <= 1, "Down is sent once");
    }
});
