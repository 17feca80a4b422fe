//! Discovery server tests: golden frames as pppd 2.4.9's rp-pppoe plugin
//! sends them, every drop reason, rate limits under a PADI storm, and
//! Wireshark's opinion of what we send.

use super::cookie;
use super::wire::{AccessLoop, Code, Tag, parse, parse_tags};
use super::*;

const LINE: LineKey = LineKey {
    up: 0,
    port: 1,
    svlan: 100,
    cvlan: 7,
};
const MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const SECRET: [u8; 16] = [0x5a; 16];

/// pppd's Host-Uniq: its PID as a native (here little-endian) 4-byte int.
const HOST_UNIQ: [u8; 4] = [0x34, 0x12, 0x00, 0x00];

fn cfg() -> DiscoveryConfig {
    DiscoveryConfig {
        ac_name: "vbng".into(),
        cookie_secret: SECRET,
        ..DiscoveryConfig::default()
    }
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// PADI from `pppd plugin rp-pppoe.so` on a 1500-byte interface
/// (discovery.c sendPADI: Service-Name "" then Host-Uniq; no
/// PPP-Max-Payload because the MRU is capped at 1492), as the Ethernet
/// payload after 0x8863 including the padding to the 60-byte minimum frame.
fn golden_padi() -> Vec<u8> {
    let mut p = hex("11 09 0000 000c  0101 0000  0103 0004 34120000");
    p.resize(60 - 14, 0);
    p
}

/// The same pppd on a 1508-byte interface with `mru 1500`: PPP-Max-Payload
/// 1500 follows Host-Uniq.
fn golden_padi_max_payload() -> Vec<u8> {
    hex("11 09 0000 0012  0101 0000  0103 0004 34120000  0120 0002 05dc")
}

/// pppd's PADR (sendPADR order: Service-Name, Host-Uniq, PPP-Max-Payload
/// if any, then the AC-Cookie and Relay-Session-Id copied from the PADO).
fn pppd_padr(pado: &[u8], max_payload: Option<u16>) -> Vec<u8> {
    let (h, body) = parse(pado).unwrap();
    assert_eq!(h.code, Code::Pado);
    let tags = parse_tags(body).unwrap();
    let mut out = vec![Tag::ServiceName(vec![]), Tag::HostUniq(HOST_UNIQ.to_vec())];
    if let Some(m) = max_payload {
        out.push(Tag::PppMaxPayload(m));
    }
    for t in tags {
        if matches!(t, Tag::AcCookie(_) | Tag::RelaySessionId(_)) {
            out.push(t);
        }
    }
    wire::emit(Code::Padr, 0, &wire::emit_tags(&out))
}

fn padr_with(tags: &[Tag]) -> Vec<u8> {
    wire::emit(Code::Padr, 0, &wire::emit_tags(tags))
}

fn padi_with(tags: &[Tag]) -> Vec<u8> {
    wire::emit(Code::Padi, 0, &wire::emit_tags(tags))
}

fn cookie_for(now_ms: u64, line: &LineKey, mac: &[u8; 6]) -> Tag {
    Tag::AcCookie(cookie::make(&SECRET, 60_000, now_ms, line, mac).to_vec())
}

/// Opens one session for `mac` on `line` with `host_uniq`, returns its key.
fn open(srv: &mut DiscoveryServer, now: u64, line: LineKey, mac: [u8; 6], hu: &[u8]) -> SessionKey {
    let padr = padr_with(&[
        Tag::ServiceName(vec![]),
        Tag::HostUniq(hu.to_vec()),
        cookie_for(now, &line, &mac),
    ]);
    match srv.handle(now, line, mac, &padr).event {
        Some(DiscoveryEvent::Opened { key, .. }) => key,
        other => panic!("no session: {other:?}"),
    }
}

#[test]
fn golden_pppd_exchange() {
    let mut srv = DiscoveryServer::new(cfg());
    let now = 5_000;
    let out = srv.handle(now, LINE, MAC, &golden_padi());
    assert_eq!(out.dropped, None);
    assert_eq!(out.event, None);
    let pado = out.reply.expect("PADO");
    // PADO: AC-Name "vbng", Service-Name "" (as asked), AC-Cookie, Host-Uniq.
    let cookie = cookie::make(&SECRET, 60_000, now, &LINE, &MAC);
    let mut want = hex("11 07 0000 0024  0102 0004 76626e67  0101 0000  0104 000c");
    want.extend_from_slice(&cookie);
    want.extend_from_slice(&hex("0103 0004 34120000"));
    assert_eq!(pado, want);

    let padr = pppd_padr(&pado, None);
    let mut expect_padr = hex("11 19 0000 001c  0101 0000  0103 0004 34120000  0104 000c");
    expect_padr.extend_from_slice(&cookie);
    assert_eq!(padr, expect_padr);

    let out = srv.handle(now + 10, LINE, MAC, &padr);
    let pads = out.reply.expect("PADS");
    let Some(DiscoveryEvent::Opened {
        key,
        service_name,
        access_loop,
        max_payload,
        host_uniq,
    }) = out.event
    else {
        panic!("not opened: {:?}", out.event);
    };
    assert_eq!(key.line, LINE);
    assert_eq!(key.mac, MAC);
    assert!((1..=0xfffe).contains(&key.session_id));
    assert_eq!(service_name, b"");
    assert!(access_loop.is_empty());
    assert_eq!(max_payload, None);
    assert_eq!(host_uniq.as_deref(), Some(&HOST_UNIQ[..]));
    let sid = key.session_id.to_be_bytes();
    let mut want = vec![0x11, 0x65, sid[0], sid[1]];
    want.extend_from_slice(&hex("000c  0101 0000  0103 0004 34120000"));
    assert_eq!(pads, want);
    assert_eq!(srv.session_count(), 1);

    // pppd's PADT on hangup: the session id, Host-Uniq.
    let mut padt = vec![0x11, 0xa7, sid[0], sid[1]];
    padt.extend_from_slice(&hex("0008 0103 0004 34120000"));
    let out = srv.handle(now + 20_000, LINE, MAC, &padt);
    assert_eq!(out.event, Some(DiscoveryEvent::Closed { key }));
    assert_eq!(out.reply, None);
    assert_eq!(srv.session_count(), 0);

    let c = srv.counters();
    assert_eq!((c.rx_padi, c.rx_padr, c.rx_padt), (1, 1, 1));
    assert_eq!((c.tx_pado, c.tx_pads), (1, 1));
    assert_eq!((c.sessions_opened, c.sessions_closed_by_client), (1, 1));
    assert_eq!(c.drops, [0; DiscoveryDrop::COUNT]);
}

#[test]
fn max_payload_rfc4638() {
    let mut srv = DiscoveryServer::new(cfg());
    let pado = srv
        .handle(0, LINE, MAC, &golden_padi_max_payload())
        .reply
        .unwrap();
    let tags = parse_tags(parse(&pado).unwrap().1).unwrap();
    assert_eq!(tags.last(), Some(&Tag::PppMaxPayload(1500)));
    let out = srv.handle(1, LINE, MAC, &pppd_padr(&pado, Some(1500)));
    let tags = parse_tags(parse(out.reply.as_ref().unwrap()).unwrap().1).unwrap();
    assert!(tags.contains(&Tag::PppMaxPayload(1500)));
    assert!(matches!(
        out.event,
        Some(DiscoveryEvent::Opened {
            max_payload: Some(1500),
            ..
        })
    ));

    // A client asking for more than configured gets the configured value;
    // an operator limited to 1492 answers 1492 (pppd then keeps 1492).
    let mut srv = DiscoveryServer::new(DiscoveryConfig {
        max_payload: 1492,
        ..cfg()
    });
    let padi = padi_with(&[Tag::ServiceName(vec![]), Tag::PppMaxPayload(9000)]);
    let pado = srv.handle(0, LINE, MAC, &padi).reply.unwrap();
    let tags = parse_tags(parse(&pado).unwrap().1).unwrap();
    assert!(tags.contains(&Tag::PppMaxPayload(1492)));
    // Values below 1492 are not valid requests: no tag.
    let padi = padi_with(&[Tag::ServiceName(vec![]), Tag::PppMaxPayload(1400)]);
    let pado = srv
        .handle(0, LINE, [2, 0, 0, 0, 0, 9], &padi)
        .reply
        .unwrap();
    let tags = parse_tags(parse(&pado).unwrap().1).unwrap();
    assert!(!tags.iter().any(|t| matches!(t, Tag::PppMaxPayload(_))));
}

#[test]
fn service_names_relay_and_access_loop() {
    let mut srv = DiscoveryServer::new(DiscoveryConfig {
        service_names: vec!["internet".into(), "iptv".into()],
        ..cfg()
    });
    let al = AccessLoop {
        circuit_id: Some(b"olt1 xpon 0/1/1:12".to_vec()),
        remote_id: Some(b"cpe-42".to_vec()),
        actual_rate_up: Some(100_000),
        actual_rate_down: Some(1_000_000),
    };
    let relay = Tag::RelaySessionId(vec![0xde, 0xad, 0xbe, 0xef]);
    // Any service: offered, with our services listed after the echoed one.
    let padi = padi_with(&[Tag::ServiceName(vec![]), relay.clone(), al.to_tag()]);
    let pado = srv.handle(0, LINE, MAC, &padi).reply.unwrap();
    let tags = parse_tags(parse(&pado).unwrap().1).unwrap();
    assert_eq!(tags[0], Tag::AcName(b"vbng".to_vec()));
    assert_eq!(tags[1], Tag::ServiceName(vec![]));
    assert_eq!(tags[2], Tag::ServiceName(b"internet".to_vec()));
    assert_eq!(tags[3], Tag::ServiceName(b"iptv".to_vec()));
    assert!(tags.contains(&relay));
    // A named service we offer: echoed first, not repeated.
    let padi = padi_with(&[Tag::ServiceName(b"iptv".to_vec())]);
    let pado = srv.handle(0, LINE, MAC, &padi).reply.unwrap();
    let tags = parse_tags(parse(&pado).unwrap().1).unwrap();
    let names: Vec<_> = tags
        .iter()
        .filter(|t| matches!(t, Tag::ServiceName(_)))
        .collect();
    assert_eq!(
        names,
        [
            &Tag::ServiceName(b"iptv".to_vec()),
            &Tag::ServiceName(b"internet".to_vec())
        ]
    );

    // PADR through the relay with the access node's tag.
    let padr = padr_with(&[
        Tag::ServiceName(b"internet".to_vec()),
        cookie_for(0, &LINE, &MAC),
        relay.clone(),
        al.to_tag(),
    ]);
    let out = srv.handle(1, LINE, MAC, &padr);
    let tags = parse_tags(parse(out.reply.as_ref().unwrap()).unwrap().1).unwrap();
    assert_eq!(
        tags,
        [Tag::ServiceName(b"internet".to_vec()), relay.clone()]
    );
    match out.event {
        Some(DiscoveryEvent::Opened {
            key,
            service_name,
            access_loop,
            host_uniq,
            ..
        }) => {
            assert_eq!(service_name, b"internet");
            assert_eq!(access_loop, al);
            assert_eq!(host_uniq, None);
            // Server-initiated close: PADT with the relay id and the reason.
            let padt = srv.close(&key, "admin reset").unwrap();
            let (h, body) = parse(&padt).unwrap();
            assert_eq!((h.code, h.session_id), (Code::Padt, key.session_id));
            assert_eq!(
                parse_tags(body).unwrap(),
                [relay, Tag::GenericError(b"admin reset".to_vec())]
            );
            assert_eq!(srv.session_count(), 0);
            assert_eq!(srv.close(&key, "again"), None);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn repeated_padr_gets_the_same_pads() {
    let mut srv = DiscoveryServer::new(cfg());
    let padr = padr_with(&[
        Tag::ServiceName(vec![]),
        Tag::HostUniq(HOST_UNIQ.to_vec()),
        cookie_for(0, &LINE, &MAC),
    ]);
    let first = srv.handle(0, LINE, MAC, &padr);
    assert!(first.event.is_some());
    let again = srv.handle(3_000, LINE, MAC, &padr);
    assert_eq!(again.event, None);
    assert_eq!(again.dropped, None);
    assert_eq!(again.reply, first.reply);
    assert_eq!(srv.session_count(), 1);
    // Another Host-Uniq from the same MAC is another session.
    let k2 = open(&mut srv, 4_000, LINE, MAC, b"other");
    assert_eq!(srv.session_count(), 2);
    let Some(DiscoveryEvent::Opened { key: k1, .. }) = first.event else {
        unreachable!()
    };
    assert_ne!(k1.session_id, k2.session_id);
    // forget: gone without PADT.
    srv.forget(&k1);
    assert!(!srv.contains(&k1));
    assert!(srv.contains(&k2));
    assert_eq!(srv.counters().sessions_closed_by_server, 1);
}

#[test]
fn session_ids_unique_per_client_and_not_reused_at_once() {
    let mut srv = DiscoveryServer::new(DiscoveryConfig {
        max_sessions_per_mac: 100,
        padr_per_mac_pps: 0,
        ..cfg()
    });
    let mut ids = std::collections::HashSet::new();
    for i in 0..100u32 {
        let k = open(&mut srv, 0, LINE, MAC, &i.to_be_bytes());
        assert!(k.session_id != 0 && k.session_id != 0xffff);
        assert!(ids.insert(k.session_id));
    }
    let k = SessionKey {
        line: LINE,
        mac: MAC,
        session_id: *ids.iter().next().unwrap(),
    };
    srv.forget(&k);
    let n = open(&mut srv, 0, LINE, MAC, b"new");
    assert_ne!(n.session_id, k.session_id);
}

/// Asserts `out` is a drop for `reason` and bumped its counter.
fn assert_drop(srv: &DiscoveryServer, out: &DiscoveryOutcome, reason: DiscoveryDrop, n: u64) {
    assert_eq!(out.dropped, Some(reason), "{out:?}");
    assert_eq!(out.event, None);
    assert_eq!(srv.counters().drop_count(reason), n, "{}", reason.name());
}

#[test]
fn drop_malformed() {
    let mut srv = DiscoveryServer::new(cfg());
    let bad: Vec<Vec<u8>> = vec![
        vec![0x11, 0x09, 0, 0],                         // short header
        hex("21 09 0000 0000"),                         // version 2
        hex("11 09 0000 0010 0101 0000"),               // LENGTH past the end
        hex("11 09 0000 0006 0101 0004 6162"),          // tag past the end
        hex("11 09 0001 0004 0101 0000"),               // PADI with a session id
        hex("11 19 0001 0004 0101 0000"),               // PADR with a session id
        hex("11 09 0000 0005 0120 0001 05"),            // PPP-Max-Payload of 1 byte
        hex("11 09 0000 000a 0105 0006 00000de9 8102"), // BBF rate sub-option cut
    ];
    let mut n = 0;
    for (i, f) in bad.iter().enumerate() {
        let out = srv.handle(i as u64 * 1000, LINE, [2, 0, 0, 0, 1, i as u8], f);
        n += 1;
        assert_drop(&srv, &out, DiscoveryDrop::Malformed, n);
    }
    // Multicast and zero source MACs.
    for mac in [[0x01, 0, 0x5e, 0, 0, 1], [0; 6]] {
        let out = srv.handle(0, LINE, mac, &golden_padi());
        n += 1;
        assert_drop(&srv, &out, DiscoveryDrop::Malformed, n);
    }
    // A PADI whose PADO would not fit in a 1500-byte frame.
    let padi = padi_with(&[Tag::ServiceName(vec![]), Tag::HostUniq(vec![7; 1470])]);
    let out = srv.handle(0, LINE, [2, 0, 0, 0, 2, 1], &padi);
    n += 1;
    assert_drop(&srv, &out, DiscoveryDrop::Malformed, n);
}

#[test]
fn drop_rate_limited() {
    let mut srv = DiscoveryServer::new(cfg());
    // One MAC: a burst of 5, then 5 per second.
    let results: Vec<bool> = (0..20)
        .map(|i| srv.handle(i, LINE, MAC, &golden_padi()).reply.is_some())
        .collect();
    assert_eq!(results.iter().filter(|r| **r).count(), 5);
    let out = srv.handle(30, LINE, MAC, &golden_padi());
    assert_drop(&srv, &out, DiscoveryDrop::RateLimited, 16);
    // 200 ms later one token is back.
    assert!(srv.handle(230, LINE, MAC, &golden_padi()).reply.is_some());
    // Another MAC is not affected.
    assert!(
        srv.handle(230, LINE, [2, 0, 0, 0, 0, 2], &golden_padi())
            .reply
            .is_some()
    );

    // PADR: 5 per second per MAC, counted before the cookie check.
    let padr = padr_with(&[Tag::ServiceName(vec![])]);
    for i in 0..5 {
        let out = srv.handle(1000 + i, LINE, MAC, &padr);
        assert_eq!(out.dropped, Some(DiscoveryDrop::BadCookie));
    }
    let out = srv.handle(1005, LINE, MAC, &padr);
    assert_drop(&srv, &out, DiscoveryDrop::RateLimited, 17);
}

#[test]
fn drop_bad_cookie() {
    let mut srv = DiscoveryServer::new(cfg());
    let cases = [
        vec![Tag::ServiceName(vec![])],                             // none
        vec![Tag::ServiceName(vec![]), Tag::AcCookie(vec![1; 12])], // forged
        vec![
            Tag::ServiceName(vec![]),
            cookie_for(0, &LINE, &[2, 0, 0, 0, 0, 9]),
        ], // other MAC
        vec![
            Tag::ServiceName(vec![]),
            cookie_for(0, &LineKey { port: 2, ..LINE }, &MAC),
        ], // other port
    ];
    for (i, tags) in cases.iter().enumerate() {
        let out = srv.handle(10 + i as u64 * 1000, LINE, MAC, &padr_with(tags));
        assert_drop(&srv, &out, DiscoveryDrop::BadCookie, i as u64 + 1);
        assert_eq!(out.reply, None);
    }
    // Expired: made at 0, lifetime 60 s, presented at 120 s.
    let out = srv.handle(
        120_000,
        LINE,
        MAC,
        &padr_with(&[cookie_for(0, &LINE, &MAC)]),
    );
    assert_drop(&srv, &out, DiscoveryDrop::BadCookie, 5);
    // Still good at 119.999 s.
    let out = srv.handle(
        119_999,
        LINE,
        MAC,
        &padr_with(&[cookie_for(0, &LINE, &MAC)]),
    );
    assert!(out.event.is_some());
    // A server with another secret refuses our cookies.
    let mut other = DiscoveryServer::new(DiscoveryConfig {
        cookie_secret: [1; 16],
        ..cfg()
    });
    let out = other.handle(0, LINE, MAC, &padr_with(&[cookie_for(0, &LINE, &MAC)]));
    assert_eq!(out.dropped, Some(DiscoveryDrop::BadCookie));
}

#[test]
fn drop_unknown_service() {
    let mut srv = DiscoveryServer::new(DiscoveryConfig {
        service_names: vec!["internet".into()],
        ..cfg()
    });
    let padi = padi_with(&[Tag::ServiceName(b"voip".to_vec()), Tag::HostUniq(vec![1])]);
    let out = srv.handle(0, LINE, MAC, &padi);
    assert_drop(&srv, &out, DiscoveryDrop::UnknownService, 1);
    assert_eq!(
        out.reply, None,
        "RFC 2516 5.2: no PADO for a service we cannot serve"
    );
    // PADR: PADS with SESSION_ID 0 and Service-Name-Error.
    let padr = padr_with(&[
        Tag::ServiceName(b"voip".to_vec()),
        Tag::HostUniq(vec![1]),
        cookie_for(0, &LINE, &MAC),
    ]);
    let out = srv.handle(0, LINE, MAC, &padr);
    assert_drop(&srv, &out, DiscoveryDrop::UnknownService, 2);
    let (h, body) = parse(out.reply.as_ref().unwrap()).unwrap();
    assert_eq!((h.code, h.session_id), (Code::Pads, 0));
    let tags = parse_tags(body).unwrap();
    assert!(tags.iter().any(|t| matches!(t, Tag::ServiceNameError(_))));
    assert!(tags.contains(&Tag::HostUniq(vec![1])));
    assert_eq!(srv.session_count(), 0);
    assert_eq!(srv.counters().tx_pads_error, 1);
}

#[test]
fn drop_too_many_sessions() {
    let mut srv = DiscoveryServer::new(DiscoveryConfig {
        max_sessions_per_mac: 2,
        max_sessions_per_vlan: 3,
        padr_per_mac_pps: 0,
        ..cfg()
    });
    open(&mut srv, 0, LINE, MAC, b"a");
    open(&mut srv, 0, LINE, MAC, b"b");
    // Per MAC: a third PADR is refused with AC-System-Error, PADI unanswered.
    let padr = padr_with(&[Tag::HostUniq(b"c".to_vec()), cookie_for(0, &LINE, &MAC)]);
    let out = srv.handle(0, LINE, MAC, &padr);
    assert_drop(&srv, &out, DiscoveryDrop::TooManySessions, 1);
    let (h, body) = parse(out.reply.as_ref().unwrap()).unwrap();
    assert_eq!((h.code, h.session_id), (Code::Pads, 0));
    assert!(
        parse_tags(body)
            .unwrap()
            .iter()
            .any(|t| matches!(t, Tag::AcSystemError(_)))
    );
    let out = srv.handle(0, LINE, MAC, &golden_padi());
    assert_drop(&srv, &out, DiscoveryDrop::TooManySessions, 2);
    assert_eq!(out.reply, None);
    // The same MAC on another line is another client.
    let line2 = LineKey { cvlan: 8, ..LINE };
    open(&mut srv, 0, line2, MAC, b"a");
    // Per VLAN (line): a third MAC fills it, a fourth is refused.
    let m2 = [2, 0, 0, 0, 0, 2];
    open(&mut srv, 0, LINE, m2, b"a");
    let m3 = [2, 0, 0, 0, 0, 3];
    let padr = padr_with(&[cookie_for(0, &LINE, &m3)]);
    let out = srv.handle(0, LINE, m3, &padr);
    assert_drop(&srv, &out, DiscoveryDrop::TooManySessions, 3);
    // Closing one frees the line.
    srv.forget(&SessionKey {
        line: LINE,
        mac: m2,
        session_id: open_ids(&srv, LINE, m2)[0],
    });
    assert!(srv.handle(0, LINE, m3, &padr).event.is_some());
}

fn open_ids(srv: &DiscoveryServer, line: LineKey, mac: [u8; 6]) -> Vec<u16> {
    (1..=0xfffe)
        .filter(|&session_id| {
            srv.contains(&SessionKey {
                line,
                mac,
                session_id,
            })
        })
        .collect()
}

#[test]
fn drop_unknown_session_and_unsupported_code() {
    let mut srv = DiscoveryServer::new(cfg());
    let k = open(&mut srv, 0, LINE, MAC, b"a");
    let sid = k.session_id;
    let other_sid = if sid == 1 { 2 } else { 1 };
    let n = [
        // Wrong id, wrong MAC, wrong line, id 0.
        (LINE, MAC, other_sid),
        (LINE, [2, 0, 0, 0, 0, 2], sid),
        (LineKey { port: 3, ..LINE }, MAC, sid),
        (LINE, MAC, 0),
    ];
    for (i, (line, mac, s)) in n.into_iter().enumerate() {
        let out = srv.handle(0, line, mac, &wire::emit(Code::Padt, s, &[]));
        assert_drop(&srv, &out, DiscoveryDrop::UnknownSession, i as u64 + 1);
    }
    assert_eq!(srv.session_count(), 1);
    for (i, code) in [Code::Pado, Code::Pads, Code::Session, Code::Unknown(0x42)]
        .into_iter()
        .enumerate()
    {
        let out = srv.handle(0, LINE, MAC, &wire::emit(code, 0, &[]));
        assert_drop(&srv, &out, DiscoveryDrop::UnsupportedCode, i as u64 + 1);
        assert_eq!(out.reply, None);
    }
    assert_eq!(srv.counters().rx_other, 4);
}

/// 10,000 MACs on one port, each sending a PADI every second for 10 s
/// (100,000 PADIs): PADOs stay within the port's 500/s (plus the one-second
/// burst), while a client on another port is served normally throughout,
/// and the flooded port serves again once the storm stops.
#[test]
fn padi_storm_is_limited_per_port() {
    let mut srv = DiscoveryServer::new(cfg());
    let storm_line = LineKey {
        svlan: 0,
        cvlan: 0,
        ..LINE
    };
    let quiet = LineKey { port: 2, ..LINE };
    let mut pado = 0u64;
    let mut quiet_ok = 0;
    let padi = golden_padi();
    for sec in 0..10u64 {
        for m in 0..10_000u32 {
            let now = sec * 1000 + u64::from(m) / 10;
            let b = m.to_be_bytes();
            let mac = [0x02, 0xaa, b[0], b[1], b[2], b[3]];
            if srv.handle(now, storm_line, mac, &padi).reply.is_some() {
                pado += 1;
            }
        }
        if srv
            .handle(sec * 1000 + 500, quiet, MAC, &padi)
            .reply
            .is_some()
        {
            quiet_ok += 1;
        }
    }
    assert!(pado <= 500 * 10 + 500, "{pado} PADOs");
    assert!(
        pado >= 500 * 9,
        "the port still answers at its rate: {pado}"
    );
    assert_eq!(quiet_ok, 10, "another port is not starved");
    let c = srv.counters();
    assert_eq!(c.rx_padi, 100_010);
    assert_eq!(c.tx_pado, pado + 10);
    assert_eq!(c.drop_count(DiscoveryDrop::RateLimited), 100_000 - pado);
    // After the storm, a PADI on the flooded port gets its PADO.
    let out = srv.handle(12_000, storm_line, MAC, &padi);
    assert!(out.reply.is_some());
}

/// Writes what the server sends (and pppd's frames) to a pcap and has
/// tshark decode it: every frame must dissect as PPPoE discovery with no
/// malformed or expert warnings. Skipped (with a message) without tshark.
#[test]
fn tshark_decodes_our_frames() {
    use std::process::Command;
    if Command::new("tshark").arg("--version").output().is_err() {
        println!("SKIPPED: tshark not installed");
        return;
    }
    let ac_mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0xfe];
    let mut srv = DiscoveryServer::new(DiscoveryConfig {
        service_names: vec!["internet".into()],
        ..cfg()
    });
    let al = AccessLoop {
        circuit_id: Some(b"olt1 xpon 0/1/1:12".to_vec()),
        remote_id: Some(b"cpe-42".to_vec()),
        actual_rate_up: Some(100_000),
        actual_rate_down: Some(1_000_000),
    };
    let mut frames: Vec<([u8; 6], [u8; 6], Vec<u8>)> = Vec::new();
    let padi = padi_with(&[
        Tag::ServiceName(vec![]),
        Tag::HostUniq(HOST_UNIQ.to_vec()),
        Tag::PppMaxPayload(1500),
        al.to_tag(),
    ]);
    frames.push(([0xff; 6], MAC, padi.clone()));
    let pado = srv.handle(0, LINE, MAC, &padi).reply.unwrap();
    frames.push((MAC, ac_mac, pado.clone()));
    let padr = pppd_padr(&pado, Some(1500));
    frames.push((ac_mac, MAC, padr.clone()));
    let out = srv.handle(1, LINE, MAC, &padr);
    frames.push((MAC, ac_mac, out.reply.unwrap()));
    let Some(DiscoveryEvent::Opened { key, .. }) = out.event else {
        panic!()
    };
    let refused = padr_with(&[
        Tag::ServiceName(b"voip".to_vec()),
        cookie_for(1, &LINE, &MAC),
    ]);
    frames.push((
        MAC,
        ac_mac,
        srv.handle(2, LINE, MAC, &refused).reply.unwrap(),
    ));
    frames.push((MAC, ac_mac, srv.close(&key, "session timeout").unwrap()));

    let dir = TempDir::new("tshark");
    let pcap = dir.0.join("pppoe.pcap");
    std::fs::write(&pcap, pcap_bytes(&frames)).unwrap();
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args(["-V"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "Active Discovery Initiation (PADI)",
        "Active Discovery Offer (PADO)",
        "Active Discovery Request (PADR)",
        "Active Discovery Session-confirmation (PADS)",
        "Active Discovery Terminate (PADT)",
        "AC-Name: vbng",
        "Host-Uniq: 34120000",
        // Wireshark 4.0 shows this tag's value as bytes.
        "PPP-Max-Payload: 05dc",
        "Vendor id: 3561",
        "Circuit ID: olt1 xpon 0/1/1:12",
        "Remote ID: cpe-42",
        "Actual Data Rate Upstream: 100000",
        "Actual Data Rate Downstream: 1000000",
        "Service-Name-Error",
        "Generic-Error: session timeout",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    for bad in ["Malformed", "Expert Info (Warn", "Expert Info (Error"] {
        assert!(!text.contains(bad), "{bad} in:\n{text}");
    }
}

/// A scratch directory removed on drop, even when the test fails.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("vbng-pppoe-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Classic pcap (link type Ethernet) of `(dst, src, pppoe payload)`
/// frames, each tagged with the test line's S-VLAN and C-VLAN.
fn pcap_bytes(frames: &[([u8; 6], [u8; 6], Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, (dst, src, payload)) in frames.iter().enumerate() {
        let mut f = Vec::new();
        f.extend_from_slice(dst);
        f.extend_from_slice(src);
        f.extend_from_slice(&0x88a8u16.to_be_bytes());
        f.extend_from_slice(&LINE.svlan.to_be_bytes());
        f.extend_from_slice(&0x8100u16.to_be_bytes());
        f.extend_from_slice(&LINE.cvlan.to_be_bytes());
        f.extend_from_slice(&wire::ETHERTYPE_DISCOVERY.to_be_bytes());
        f.extend_from_slice(payload);
        out.extend_from_slice(&(i as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&f);
    }
    out
}

#[test]
fn restored_session_is_known_and_its_id_not_reallocated() {
    let mut srv = DiscoveryServer::new(cfg());
    // The first id a fresh server hands out, taken by a restored session.
    let restored = SessionKey {
        line: LINE,
        mac: MAC,
        session_id: 1,
    };
    assert!(srv.restore(restored, vec![], Some(HOST_UNIQ.to_vec()), None));
    assert!(!srv.restore(restored, vec![], None, None), "already there");
    let no_id = SessionKey {
        session_id: 0,
        ..restored
    };
    assert!(!srv.restore(no_id, vec![], None, None));
    assert!(srv.contains(&restored));
    assert_eq!(srv.session_count(), 1);
    let other = open(&mut srv, 0, LINE, MAC, b"other");
    assert_ne!(other.session_id, restored.session_id);
    // A PADR repeated with its Host-Uniq gets its PADS again.
    let padr = padr_with(&[
        Tag::ServiceName(vec![]),
        Tag::HostUniq(HOST_UNIQ.to_vec()),
        cookie_for(10, &LINE, &MAC),
    ]);
    let again = srv.handle(10, LINE, MAC, &padr);
    assert_eq!(again.event, None);
    let (h, body) = parse(again.reply.as_deref().unwrap()).unwrap();
    assert_eq!((h.code, h.session_id), (Code::Pads, 1));
    assert!(
        parse_tags(body)
            .unwrap()
            .contains(&Tag::HostUniq(HOST_UNIQ.to_vec()))
    );
    // Server-side end: a PADT echoing the Host-Uniq.
    let padt = srv.close(&restored, "").unwrap();
    let (h, body) = parse(&padt).unwrap();
    assert_eq!((h.code, h.session_id), (Code::Padt, 1));
    assert_eq!(
        parse_tags(body).unwrap(),
        vec![Tag::HostUniq(HOST_UNIQ.to_vec())]
    );
    assert_eq!(open_ids(&srv, LINE, MAC), vec![other.session_id]);
}
