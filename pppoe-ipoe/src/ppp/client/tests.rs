//! The client against the server side ([`PppSession`]) in memory, and alone.

use std::net::Ipv4Addr;

use super::*;
use crate::ppp::{AuthMethod, PppConfig, PppEvent, PppSession};

const ADDR: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 10);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
const DNS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);

/// A stand-in for MD5: the server side does not check responses (its AAA does).
fn fake_md5(id: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut r = [id; 16];
    for (i, b) in secret.iter().chain(challenge).enumerate() {
        r[i % 16] ^= b;
    }
    r
}

fn config(chap: bool) -> PppClientConfig {
    PppClientConfig {
        user: b"alice".to_vec(),
        password: b"secret".to_vec(),
        chap_md5: chap.then_some(fake_md5 as ChapMd5),
        ..Default::default()
    }
}

/// (sent by the client?, protocol, code) of every packet exchanged.
type Trace = Vec<(bool, u16, u8)>;

/// Runs both sides until nothing is left to send; the server accepts
/// `password_ok` credentials and gives [`ADDR`]. Returns the client events.
fn converse(
    client: &mut PppClient,
    server: &mut PppSession,
    password_ok: bool,
    trace: &mut Trace,
) -> Vec<PppClientEvent> {
    let mut events = Vec::new();
    let mut to_server: Vec<(u16, Vec<u8>)> = client.start(0).frames;
    let mut to_client: Vec<(u16, Vec<u8>)> = server.start(0).frames;
    let mut now = 1;
    while !to_server.is_empty() || !to_client.is_empty() {
        now += 1;
        for (p, f) in std::mem::take(&mut to_server) {
            trace.push((true, p, f[0]));
            let mut out = server.input(now, p, &f);
            let mut i = 0;
            while i < out.events.len() {
                let more = match &out.events[i] {
                    PppEvent::Authenticate { user, .. } => {
                        assert_eq!(user, "alice");
                        server.auth_result(now, password_ok, "hello")
                    }
                    PppEvent::NeedAddress => {
                        server.set_address(now, ADDR, GATEWAY, [Some(DNS), None])
                    }
                    _ => Default::default(),
                };
                out.frames.extend(more.frames);
                out.events.extend(more.events);
                i += 1;
            }
            to_client.extend(out.frames);
        }
        for (p, f) in std::mem::take(&mut to_client) {
            trace.push((false, p, f[0]));
            let out = client.input(now, p, &f);
            to_server.extend(out.frames);
            events.extend(out.events);
        }
        assert!(now < 100, "no convergence: {trace:?}");
    }
    events
}

fn server(auth: AuthMethod) -> PppSession {
    PppSession::new(
        PppConfig {
            auth,
            ..Default::default()
        },
        0x1111_2222,
        [3; 16],
    )
}

#[test]
fn pap_session_comes_up_against_the_server_side() {
    let mut c = PppClient::new(config(false), 0x3333_4444);
    let mut s = server(AuthMethod::Pap);
    let mut trace = Trace::new();
    let events = converse(&mut c, &mut s, true, &mut trace);
    assert_eq!(
        events,
        vec![PppClientEvent::Up {
            ipv4: ADDR,
            peer: GATEWAY,
            dns: vec![DNS]
        }]
    );
    assert_eq!(c.address(), Some(ADDR));
    assert_eq!(
        (c.lcp_state(), c.ipcp_state()),
        (State::Opened, State::Opened)
    );
    assert_eq!(
        (s.lcp_state(), s.ipcp_state()),
        (State::Opened, State::Opened)
    );
    // Our IPCP request asked for 0.0.0.0 and both DNS; the secondary, which
    // the server does not have, was rejected and dropped.
    let ipcp_from_client: Vec<u8> = trace
        .iter()
        .filter(|(c, p, _)| *c && *p == proto::IPCP)
        .map(|t| t.2)
        .collect();
    assert_eq!(ipcp_from_client, vec![1, 2, 1, 1]);
    assert!(trace.contains(&(true, proto::PAP, 1)));
    assert!(trace.contains(&(false, proto::PAP, 2)));
}

#[test]
fn chap_is_answered_when_possible_and_naked_to_pap_otherwise() {
    let mut c = PppClient::new(config(true), 5);
    let mut s = server(AuthMethod::Chap);
    let mut trace = Trace::new();
    let events = converse(&mut c, &mut s, true, &mut trace);
    assert!(matches!(
        events[..],
        [PppClientEvent::Up { ipv4: ADDR, .. }]
    ));
    assert!(trace.contains(&(true, proto::CHAP, 2)));

    // Without CHAP the client Naks it; chap-then-pap falls back to PAP.
    let mut c = PppClient::new(config(false), 5);
    let mut s = server(AuthMethod::ChapThenPap);
    let mut trace = Trace::new();
    let events = converse(&mut c, &mut s, true, &mut trace);
    assert!(matches!(events[..], [PppClientEvent::Up { .. }]));
    assert!(trace.contains(&(true, proto::LCP, 3)));
    assert!(trace.contains(&(true, proto::PAP, 1)));
}

#[test]
fn refused_password_ends_the_link() {
    let mut c = PppClient::new(config(false), 5);
    let mut s = server(AuthMethod::Pap);
    let mut trace = Trace::new();
    let events = converse(&mut c, &mut s, false, &mut trace);
    assert_eq!(
        events,
        vec![PppClientEvent::Down {
            reason: DownReason::AuthFailed
        }]
    );
    assert!(trace.contains(&(false, proto::PAP, 3)));
    assert_eq!(c.phase(), Phase::Dead);
}

#[test]
fn hang_up_and_peer_termination() {
    let mut c = PppClient::new(config(false), 5);
    let mut s = server(AuthMethod::Pap);
    converse(&mut c, &mut s, true, &mut Trace::new());
    // We hang up: Terminate-Request, the server acknowledges.
    let out = c.close(100);
    assert_eq!(out.frames.len(), 1);
    let (p, req) = &out.frames[0];
    assert_eq!((*p, req[0]), (proto::LCP, 5));
    let ack = s.input(101, proto::LCP, req);
    let ack = ack
        .frames
        .iter()
        .find(|(p, f)| *p == proto::LCP && f[0] == 6)
        .expect("Terminate-Ack");
    let out = c.input(102, proto::LCP, &ack.1);
    assert_eq!(
        out.events,
        vec![PppClientEvent::Down {
            reason: DownReason::AdminClose
        }]
    );

    // The server hangs up: we acknowledge and are down at once.
    let mut c = PppClient::new(config(false), 5);
    let mut s = server(AuthMethod::Pap);
    converse(&mut c, &mut s, true, &mut Trace::new());
    let out = s.close(100, DownReason::AdminClose);
    let out = c.input(101, proto::LCP, &out.frames[0].1);
    assert_eq!(out.frames[0].1[0], 6);
    assert_eq!(
        out.events,
        vec![PppClientEvent::Down {
            reason: DownReason::PeerTerminated
        }]
    );
    // A PADT after that changes nothing.
    assert_eq!(c.lower_down(102), ClientOutput::default());
}

#[test]
fn echo_is_answered_and_requests_are_retransmitted() {
    let mut c = PppClient::new(config(false), 0x0102_0304);
    let first = c.start(0).frames;
    assert_eq!(first.len(), 1);
    assert_eq!(c.next_deadline(), Some(3000));
    let again = c.tick(3000).frames;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].1[0], 1);
    assert_ne!(again[0].1[1], first[0].1[1], "a new identifier");

    let mut s = server(AuthMethod::Pap);
    let mut c = PppClient::new(config(false), 0x0102_0304);
    converse(&mut c, &mut s, true, &mut Trace::new());
    let echo = emit_packet(9, 42, &[0xaa, 0xbb, 0xcc, 0xdd, 7]);
    let out = c.input(50, proto::LCP, &echo);
    assert_eq!(
        out.frames,
        vec![(proto::LCP, emit_packet(10, 42, &[1, 2, 3, 4, 7]))]
    );
}

#[test]
fn garbage_never_panics() {
    let mut c = PppClient::new(config(true), 1);
    c.start(0);
    for p in [proto::LCP, proto::PAP, proto::CHAP, proto::IPCP, 0x8057] {
        for b in [
            &[][..],
            &[1],
            &[1, 1, 0, 9, 1],
            &[2, 1, 0, 4],
            &[9, 0, 0, 5, 1],
        ] {
            c.input(1, p, b);
        }
    }
}

#[test]
fn pap_gives_up_after_max_configure() {
    let mut c = PppClient::new(
        PppClientConfig {
            max_configure: 2,
            ..config(false)
        },
        5,
    );
    let mut s = server(AuthMethod::Pap);
    // LCP up with the server, but the server never answers PAP.
    let mut to_server = c.start(0).frames;
    let mut to_client = s.start(0).frames;
    for _ in 0..4 {
        for (p, f) in std::mem::take(&mut to_server) {
            if p == proto::LCP {
                to_client.extend(s.input(1, p, &f).frames);
            }
        }
        for (p, f) in std::mem::take(&mut to_client) {
            to_server.extend(c.input(1, p, &f).frames);
        }
    }
    assert_eq!(c.phase(), Phase::Authenticate);
    assert!(c.tick(3001).frames.iter().any(|(p, _)| *p == proto::PAP));
    let out = c.tick(6002);
    assert!(
        out.frames
            .iter()
            .any(|(p, f)| *p == proto::LCP && f[0] == 5)
    );
}
