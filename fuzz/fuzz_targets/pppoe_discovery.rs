//! Fuzz the PPPoE discovery server: arbitrary bytes are split into
//! records, each fed to one server as a discovery frame from one of a few
//! clients on a few lines with an advancing clock. Every few records a
//! well-formed PADR carrying a valid cookie is fed as well, so the session
//! paths (open, repeat, PADT, close) are reached. The server must never
//! panic, every reply must parse as PPPoE with valid tags, session ids must
//! stay in 1..=0xfffe, and the session count must match the events.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vbng_access::pppoe::{
    Code, DiscoveryConfig, DiscoveryEvent, DiscoveryServer, LineKey, Tag, cookie, emit, emit_tags,
    parse, parse_tags,
};

const SECRET: [u8; 16] = [9; 16];

fuzz_target!(|data: &[u8]| {
    let mut srv = DiscoveryServer::new(DiscoveryConfig {
        cookie_secret: SECRET,
        cookie_lifetime_ms: 10_000,
        max_sessions_per_mac: 3,
        max_sessions_per_vlan: 5,
        service_names: vec!["internet".into()],
        ..DiscoveryConfig::default()
    });
    let mut open = std::collections::HashSet::new();
    let mut now = 0u64;
    let mut rest = data;
    // Record: [control, len_hi, len_lo, frame bytes...]
    while rest.len() >= 3 {
        let control = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let (bytes, tail) = rest[3..].split_at(len);
        rest = tail;
        now += u64::from(control >> 5) * 700;
        let line = LineKey {
            up: 0,
            port: control & 1,
            svlan: 100,
            cvlan: u16::from((control >> 1) & 1),
        };
        let mac = [2, 0, 0, 0, 0, (control >> 2) & 3];
        let mut frames = vec![bytes.to_vec()];
        if control & 0x10 != 0 {
            let c = cookie::make(&SECRET, 10_000, now, &line, &mac);
            let tags = [
                Tag::ServiceName(bytes.iter().take(3).copied().collect()),
                Tag::HostUniq(bytes.iter().take(2).copied().collect()),
                Tag::AcCookie(c.to_vec()),
            ];
            frames.push(emit(Code::Padr, 0, &emit_tags(&tags)));
        }
        for f in frames {
            let out = srv.handle(now, line, mac, &f);
            if let Some(reply) = &out.reply {
                let (h, body) = parse(reply).expect("reply parses");
                parse_tags(body).expect("reply tags parse");
                assert!(h.session_id != 0xffff);
            }
            match out.event {
                Some(DiscoveryEvent::Opened { key, .. }) => {
                    assert!((1..=0xfffe).contains(&key.session_id));
                    assert!(open.insert(key), "session opened twice");
                }
                Some(DiscoveryEvent::Closed { key }) => {
                    assert!(open.remove(&key), "closed an unknown session");
                }
                None => {}
            }
        }
        if control == 0xff
            && let Some(k) = open.iter().next().copied()
        {
            open.remove(&k);
            let padt = srv.close(&k, "fuzz").expect("open session closes");
            let (h, body) = parse(&padt).expect("PADT parses");
            assert_eq!((h.code, h.session_id), (Code::Padt, k.session_id));
            parse_tags(body).expect("PADT tags parse");
        }
        assert_eq!(srv.session_count(), open.len());
    }
});
