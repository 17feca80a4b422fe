//! Tests: every cell of the RFC 1661 transition table, then whole sessions
//! with the bytes pppd 2.4.9 (rp-pppoe plugin) sends.

use std::net::Ipv4Addr;

use proptest::prelude::*;

use super::fsm::{Action, Automaton, Event, State, transition};
use super::wire::{Code, emit_chap_value, emit_packet, emit_pap_request, parse_packet};
use super::*;

/// The transition table, one test per cell that is not "-" (RFC 1661
/// section 4.1). Each test puts an automaton in the state, applies the
/// event and checks the actions, the next state, the restart counter and
/// whether the restart timer runs.
mod cells {
    use super::*;
    use Action::*;

    const MAX_CONF: u32 = 10;
    const MAX_TERM: u32 = 2;

    fn check(state: State, event: Event, actions: &[Action], next: State) {
        assert_eq!(
            transition(state, event),
            Some((actions, next)),
            "{state:?} + {event:?}"
        );
        // TO+ needs a counter above zero, TO- an exhausted one.
        let counter = if event == Event::TimeoutGiveUp { 0 } else { 5 };
        let mut a = Automaton::new(MAX_CONF, MAX_TERM, 3000);
        a.force_state(1000, state, counter);
        assert_eq!(a.handle(2000, event), Some(actions));
        assert_eq!(a.state(), next);
        let expect_counter = if actions.contains(&Zrc) {
            0
        } else {
            let start = if actions.contains(&IrcConfigure) {
                MAX_CONF
            } else if actions.contains(&IrcTerminate) {
                MAX_TERM
            } else {
                counter
            };
            let sends = actions.iter().filter(|a| matches!(a, Scr | Str)).count() as u32;
            start - sends
        };
        assert_eq!(a.restart_counter(), expect_counter, "restart counter");
        if next.timer_runs() {
            let restarted = actions.iter().any(|a| matches!(a, Scr | Str | Zrc));
            let from = if restarted || !state.timer_runs() {
                2000
            } else {
                1000
            };
            assert_eq!(a.deadline(), Some(from + 3000), "restart timer");
            if event == Event::TimeoutRetry || event == Event::TimeoutGiveUp {
                assert!(restarted);
            }
        } else {
            assert_eq!(a.deadline(), None, "timer stops outside states 4-8");
        }
    }

    macro_rules! cells {
        ($($name:ident: $state:ident + $event:ident => [$($act:ident),*] / $next:ident;)*) => {
            $(
                #[test]
                fn $name() {
                    check(State::$state, Event::$event, &[$($act),*], State::$next);
                }
            )*
            /// Every cell listed above, for the completeness check.
            pub(super) const LEGAL: &[(State, Event)] = &[$((State::$state, Event::$event)),*];
        };
    }

    cells! {
        up_initial: Initial + Up => [] / Closed;
        up_starting: Starting + Up => [IrcConfigure, Scr] / ReqSent;

        down_closed: Closed + Down => [] / Initial;
        down_stopped: Stopped + Down => [Tls] / Starting;
        down_closing: Closing + Down => [] / Initial;
        down_stopping: Stopping + Down => [] / Starting;
        down_req_sent: ReqSent + Down => [] / Starting;
        down_ack_rcvd: AckRcvd + Down => [] / Starting;
        down_ack_sent: AckSent + Down => [] / Starting;
        down_opened: Opened + Down => [Tld] / Starting;

        open_initial: Initial + Open => [Tls] / Starting;
        open_starting: Starting + Open => [] / Starting;
        open_closed: Closed + Open => [IrcConfigure, Scr] / ReqSent;
        open_stopped: Stopped + Open => [] / Stopped;
        open_closing: Closing + Open => [] / Stopping;
        open_stopping: Stopping + Open => [] / Stopping;
        open_req_sent: ReqSent + Open => [] / ReqSent;
        open_ack_rcvd: AckRcvd + Open => [] / AckRcvd;
        open_ack_sent: AckSent + Open => [] / AckSent;
        open_opened: Opened + Open => [] / Opened;

        close_initial: Initial + Close => [] / Initial;
        close_starting: Starting + Close => [Tlf] / Initial;
        close_closed: Closed + Close => [] / Closed;
        close_stopped: Stopped + Close => [] / Closed;
        close_closing: Closing + Close => [] / Closing;
        close_stopping: Stopping + Close => [] / Closing;
        close_req_sent: ReqSent + Close => [IrcTerminate, Str] / Closing;
        close_ack_rcvd: AckRcvd + Close => [IrcTerminate, Str] / Closing;
        close_ack_sent: AckSent + Close => [IrcTerminate, Str] / Closing;
        close_opened: Opened + Close => [Tld, IrcTerminate, Str] / Closing;

        to_plus_closing: Closing + TimeoutRetry => [Str] / Closing;
        to_plus_stopping: Stopping + TimeoutRetry => [Str] / Stopping;
        to_plus_req_sent: ReqSent + TimeoutRetry => [Scr] / ReqSent;
        to_plus_ack_rcvd: AckRcvd + TimeoutRetry => [Scr] / ReqSent;
        to_plus_ack_sent: AckSent + TimeoutRetry => [Scr] / AckSent;

        to_minus_closing: Closing + TimeoutGiveUp => [Tlf] / Closed;
        to_minus_stopping: Stopping + TimeoutGiveUp => [Tlf] / Stopped;
        to_minus_req_sent: ReqSent + TimeoutGiveUp => [Tlf] / Stopped;
        to_minus_ack_rcvd: AckRcvd + TimeoutGiveUp => [Tlf] / Stopped;
        to_minus_ack_sent: AckSent + TimeoutGiveUp => [Tlf] / Stopped;

        rcr_good_closed: Closed + RcrGood => [Sta] / Closed;
        rcr_good_stopped: Stopped + RcrGood => [IrcConfigure, Scr, Sca] / AckSent;
        rcr_good_closing: Closing + RcrGood => [] / Closing;
        rcr_good_stopping: Stopping + RcrGood => [] / Stopping;
        rcr_good_req_sent: ReqSent + RcrGood => [Sca] / AckSent;
        rcr_good_ack_rcvd: AckRcvd + RcrGood => [Sca, Tlu] / Opened;
        rcr_good_ack_sent: AckSent + RcrGood => [Sca] / AckSent;
        rcr_good_opened: Opened + RcrGood => [Tld, Scr, Sca] / AckSent;

        rcr_bad_closed: Closed + RcrBad => [Sta] / Closed;
        rcr_bad_stopped: Stopped + RcrBad => [IrcConfigure, Scr, Scn] / ReqSent;
        rcr_bad_closing: Closing + RcrBad => [] / Closing;
        rcr_bad_stopping: Stopping + RcrBad => [] / Stopping;
        rcr_bad_req_sent: ReqSent + RcrBad => [Scn] / ReqSent;
        rcr_bad_ack_rcvd: AckRcvd + RcrBad => [Scn] / AckRcvd;
        rcr_bad_ack_sent: AckSent + RcrBad => [Scn] / ReqSent;
        rcr_bad_opened: Opened + RcrBad => [Tld, Scr, Scn] / ReqSent;

        rca_closed: Closed + Rca => [Sta] / Closed;
        rca_stopped: Stopped + Rca => [Sta] / Stopped;
        rca_closing: Closing + Rca => [] / Closing;
        rca_stopping: Stopping + Rca => [] / Stopping;
        rca_req_sent: ReqSent + Rca => [IrcConfigure] / AckRcvd;
        rca_ack_rcvd: AckRcvd + Rca => [Scr] / ReqSent;
        rca_ack_sent: AckSent + Rca => [IrcConfigure, Tlu] / Opened;
        rca_opened: Opened + Rca => [Tld, Scr] / ReqSent;

        rcn_closed: Closed + Rcn => [Sta] / Closed;
        rcn_stopped: Stopped + Rcn => [Sta] / Stopped;
        rcn_closing: Closing + Rcn => [] / Closing;
        rcn_stopping: Stopping + Rcn => [] / Stopping;
        rcn_req_sent: ReqSent + Rcn => [IrcConfigure, Scr] / ReqSent;
        rcn_ack_rcvd: AckRcvd + Rcn => [Scr] / ReqSent;
        rcn_ack_sent: AckSent + Rcn => [IrcConfigure, Scr] / AckSent;
        rcn_opened: Opened + Rcn => [Tld, Scr] / ReqSent;

        rtr_closed: Closed + Rtr => [Sta] / Closed;
        rtr_stopped: Stopped + Rtr => [Sta] / Stopped;
        rtr_closing: Closing + Rtr => [Sta] / Closing;
        rtr_stopping: Stopping + Rtr => [Sta] / Stopping;
        rtr_req_sent: ReqSent + Rtr => [Sta] / ReqSent;
        rtr_ack_rcvd: AckRcvd + Rtr => [Sta] / ReqSent;
        rtr_ack_sent: AckSent + Rtr => [Sta] / ReqSent;
        rtr_opened: Opened + Rtr => [Tld, Zrc, Sta] / Stopping;

        rta_closed: Closed + Rta => [] / Closed;
        rta_stopped: Stopped + Rta => [] / Stopped;
        rta_closing: Closing + Rta => [Tlf] / Closed;
        rta_stopping: Stopping + Rta => [Tlf] / Stopped;
        rta_req_sent: ReqSent + Rta => [] / ReqSent;
        rta_ack_rcvd: AckRcvd + Rta => [] / ReqSent;
        rta_ack_sent: AckSent + Rta => [] / AckSent;
        rta_opened: Opened + Rta => [Tld, Scr] / ReqSent;

        ruc_closed: Closed + Ruc => [Scj] / Closed;
        ruc_stopped: Stopped + Ruc => [Scj] / Stopped;
        ruc_closing: Closing + Ruc => [Scj] / Closing;
        ruc_stopping: Stopping + Ruc => [Scj] / Stopping;
        ruc_req_sent: ReqSent + Ruc => [Scj] / ReqSent;
        ruc_ack_rcvd: AckRcvd + Ruc => [Scj] / AckRcvd;
        ruc_ack_sent: AckSent + Ruc => [Scj] / AckSent;
        ruc_opened: Opened + Ruc => [Scj] / Opened;

        rxj_good_closed: Closed + RxjGood => [] / Closed;
        rxj_good_stopped: Stopped + RxjGood => [] / Stopped;
        rxj_good_closing: Closing + RxjGood => [] / Closing;
        rxj_good_stopping: Stopping + RxjGood => [] / Stopping;
        rxj_good_req_sent: ReqSent + RxjGood => [] / ReqSent;
        rxj_good_ack_rcvd: AckRcvd + RxjGood => [] / ReqSent;
        rxj_good_ack_sent: AckSent + RxjGood => [] / AckSent;
        rxj_good_opened: Opened + RxjGood => [] / Opened;

        rxj_bad_closed: Closed + RxjBad => [Tlf] / Closed;
        rxj_bad_stopped: Stopped + RxjBad => [Tlf] / Stopped;
        rxj_bad_closing: Closing + RxjBad => [Tlf] / Closed;
        rxj_bad_stopping: Stopping + RxjBad => [Tlf] / Stopped;
        rxj_bad_req_sent: ReqSent + RxjBad => [Tlf] / Stopped;
        rxj_bad_ack_rcvd: AckRcvd + RxjBad => [Tlf] / Stopped;
        rxj_bad_ack_sent: AckSent + RxjBad => [Tlf] / Stopped;
        rxj_bad_opened: Opened + RxjBad => [Tld, IrcTerminate, Str] / Stopping;

        rxr_closed: Closed + Rxr => [] / Closed;
        rxr_stopped: Stopped + Rxr => [] / Stopped;
        rxr_closing: Closing + Rxr => [] / Closing;
        rxr_stopping: Stopping + Rxr => [] / Stopping;
        rxr_req_sent: ReqSent + Rxr => [] / ReqSent;
        rxr_ack_rcvd: AckRcvd + Rxr => [] / AckRcvd;
        rxr_ack_sent: AckSent + Rxr => [] / AckSent;
        rxr_opened: Opened + Rxr => [Ser] / Opened;
    }
}

#[test]
fn table_has_exactly_the_rfc_cells_and_illegal_ones_change_nothing() {
    assert_eq!(cells::LEGAL.len(), 120);
    for state in State::ALL {
        for event in Event::ALL {
            let listed = cells::LEGAL.contains(&(state, event));
            assert_eq!(
                transition(state, event).is_some(),
                listed,
                "{state:?} + {event:?}"
            );
            if !listed {
                let mut a = Automaton::new(10, 2, 3000);
                a.force_state(0, state, 3);
                let before = a.clone();
                assert_eq!(a.handle(5, event), None);
                assert_eq!(a, before);
            }
        }
    }
}

#[test]
fn restart_counter_bounds_configure_and_terminate_requests() {
    let mut a = Automaton::new(10, 2, 3000);
    a.handle(0, Event::Open);
    let mut sent = a
        .handle(0, Event::Up)
        .unwrap()
        .iter()
        .filter(|x| **x == Action::Scr)
        .count();
    let mut now = 0;
    while let Some(ev) = a.timeout_event(now + 3000) {
        now += 3000;
        let acts = a.handle(now, ev).unwrap();
        sent += acts.iter().filter(|x| **x == Action::Scr).count();
        if ev == Event::TimeoutGiveUp {
            assert_eq!(acts, &[Action::Tlf]);
            break;
        }
    }
    assert_eq!(sent, 10, "Max-Configure Configure-Requests");
    assert_eq!((a.state(), now), (State::Stopped, 30_000));

    let mut a = Automaton::new(10, 2, 3000);
    a.force_state(0, State::Opened, 0);
    a.handle(0, Event::Close);
    assert_eq!(a.timeout_event(2999), None);
    assert_eq!(a.timeout_event(3000), Some(Event::TimeoutRetry));
    a.handle(3000, Event::TimeoutRetry);
    assert_eq!(a.timeout_event(6000), Some(Event::TimeoutGiveUp));
    a.handle(6000, Event::TimeoutGiveUp);
    assert_eq!((a.state(), a.deadline()), (State::Closed, None));
}

// ---- whole sessions ----

const MAGIC: u32 = 0x1122_3344;
const PEER_MAGIC: [u8; 4] = [0xa1, 0xb2, 0xc3, 0xd4];
const SEED: [u8; 16] = [0x40; 16];
const PEER: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 10);
const GW: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
const DNS: [Option<Ipv4Addr>; 2] = [
    Some(Ipv4Addr::new(192, 0, 2, 53)),
    Some(Ipv4Addr::new(192, 0, 2, 54)),
];

fn cfg(auth: AuthMethod) -> PppConfig {
    PppConfig {
        auth,
        ..PppConfig::default()
    }
}

fn frames(out: &Output, protocol: u16) -> Vec<Vec<u8>> {
    out.frames
        .iter()
        .filter(|(p, _)| *p == protocol)
        .map(|(_, b)| b.clone())
        .collect()
}

fn only(out: &Output, protocol: u16) -> Vec<u8> {
    assert_eq!(out.frames.len(), 1, "{out:?}");
    assert_eq!(out.frames[0].0, protocol, "{out:?}");
    out.frames[0].1.clone()
}

/// pppd's LCP Configure-Request on PPPoE: MRU 1492 and its magic number;
/// the rp-pppoe plugin turns off ACCM, PFC and ACFC.
fn pppd_lcp_request(id: u8) -> Vec<u8> {
    let mut v = vec![0x01, id, 0x00, 0x0e, 0x01, 0x04, 0x05, 0xd4, 0x05, 0x06];
    v.extend_from_slice(&PEER_MAGIC);
    v
}

/// Brings LCP to Opened the way pppd does; returns the outputs.
fn open_lcp(s: &mut PppSession, our_request: &[u8]) -> (Output, Output) {
    let o = s.start(0);
    assert_eq!(only(&o, proto::LCP), our_request);
    let ack = s.input(10, proto::LCP, &pppd_lcp_request(1));
    let mut expect = pppd_lcp_request(1);
    expect[0] = 2;
    // pppd's PPPoE socket was not connected yet when our request left: it
    // goes again, unchanged, ahead of the Ack.
    assert_eq!(frames(&ack, proto::LCP), [our_request.to_vec(), expect]);
    assert_eq!(ack.frames.len(), 2, "{ack:?}");
    assert_eq!(s.counters().lcp_requests_repeated, 1);
    let mut their_ack = our_request.to_vec();
    their_ack[0] = 2;
    let opened = s.input(20, proto::LCP, &their_ack);
    assert_eq!(s.lcp_state(), State::Opened);
    assert_eq!(s.phase(), Phase::Authenticate);
    (ack, opened)
}

const OUR_LCP_PAP: [u8; 18] = [
    0x01, 0x01, 0x00, 0x12, 0x01, 0x04, 0x05, 0xd4, 0x03, 0x04, 0xc0, 0x23, 0x05, 0x06, 0x11, 0x22,
    0x33, 0x44,
];
const OUR_LCP_CHAP: [u8; 19] = [
    0x01, 0x01, 0x00, 0x13, 0x01, 0x04, 0x05, 0xd4, 0x03, 0x05, 0xc2, 0x23, 0x05, 0x05, 0x06, 0x11,
    0x22, 0x33, 0x44,
];

/// pppd's first IPCP Configure-Request with `noipdefault usepeerdns`:
/// VJ compression (its default), IP-Address 0, both DNS 0, in the order of
/// pppd's `ipcp_addci`.
const PPPD_IPCP_1: [u8; 28] = [
    0x01, 0x01, 0x00, 0x1c, 0x02, 0x06, 0x00, 0x2d, 0x0f, 0x01, 0x03, 0x06, 0, 0, 0, 0, 0x81, 0x06,
    0, 0, 0, 0, 0x83, 0x06, 0, 0, 0, 0,
];

/// IPCP after authentication, as with pppd: VJ rejected, addresses Nak'ed,
/// then Acked; returns the output carrying `Up`.
fn run_ipcp(s: &mut PppSession, t: u64) -> Output {
    let o = s.input(t, proto::IPCP, &PPPD_IPCP_1);
    assert_eq!(o.events, vec![], "NeedAddress was already asked");
    assert!(o.frames.is_empty(), "held until the address is known");
    let o = s.set_address(t + 1, PEER, GW, DNS);
    assert_eq!(
        frames(&o, proto::IPCP),
        vec![
            vec![0x01, 0x01, 0x00, 0x0a, 0x03, 0x06, 100, 64, 0, 1],
            vec![0x04, 0x01, 0x00, 0x0a, 0x02, 0x06, 0x00, 0x2d, 0x0f, 0x01],
        ]
    );
    let o = s.input(
        t + 2,
        proto::IPCP,
        &[0x02, 0x01, 0x00, 0x0a, 0x03, 0x06, 100, 64, 0, 1],
    );
    assert!(o.frames.is_empty());
    assert_eq!(s.ipcp_state(), State::AckRcvd);
    let req2 = [
        0x01, 0x02, 0x00, 0x16, 0x03, 0x06, 0, 0, 0, 0, 0x81, 0x06, 0, 0, 0, 0, 0x83, 0x06, 0, 0,
        0, 0,
    ];
    let o = s.input(t + 3, proto::IPCP, &req2);
    let nak = [
        0x03, 0x02, 0x00, 0x16, 0x03, 0x06, 100, 64, 0, 10, 0x81, 0x06, 192, 0, 2, 53, 0x83, 0x06,
        192, 0, 2, 54,
    ];
    assert_eq!(only(&o, proto::IPCP), nak);
    let mut req3 = nak;
    req3[0] = 1;
    req3[1] = 3;
    let o = s.input(t + 4, proto::IPCP, &req3);
    let mut ack = req3;
    ack[0] = 2;
    assert_eq!(only(&o, proto::IPCP), ack);
    assert_eq!(s.ipcp_state(), State::Opened);
    assert_eq!(s.phase(), Phase::Network);
    o
}

#[test]
fn pap_session_golden() {
    let mut s = PppSession::new(cfg(AuthMethod::Pap), MAGIC, SEED);
    assert_eq!(s.phase(), Phase::Dead);
    let (_, opened) = open_lcp(&mut s, &OUR_LCP_PAP);
    assert!(opened.frames.is_empty(), "PAP: the peer speaks first");
    assert_eq!(s.peer_mru(), 1492);

    // pppd: Authenticate-Request id 1, "alice" / "secret".
    let mut req = vec![0x01, 0x01, 0x00, 0x11];
    req.extend_from_slice(&[5, b'a', b'l', b'i', b'c', b'e', 6]);
    req.extend_from_slice(b"secret");
    assert_eq!(&req[4..], &emit_pap_request(b"alice", b"secret")[..]);
    let o = s.input(30, proto::PAP, &req);
    assert_eq!(
        o.events,
        vec![PppEvent::Authenticate {
            user: "alice".into(),
            credentials: Credentials::Pap {
                password: b"secret".to_vec()
            },
        }]
    );
    // pppd retransmits while the AAA answer is pending: ignored.
    assert_eq!(s.input(3030, proto::PAP, &req), Output::default());

    let o = s.auth_result(3040, true, "Login ok");
    let mut ack = vec![0x02, 0x01, 0x00, 0x0d, 8];
    ack.extend_from_slice(b"Login ok");
    assert_eq!(only(&o, proto::PAP), ack);
    assert_eq!(o.events, vec![PppEvent::NeedAddress]);
    assert_eq!(s.phase(), Phase::Network);
    // A lost Ack: the retransmitted request gets the Ack again.
    assert_eq!(only(&s.input(3050, proto::PAP, &req), proto::PAP), ack);

    let o = run_ipcp(&mut s, 4000);
    assert_eq!(o.events, vec![PppEvent::Up { ipv4: PEER }]);
    assert_eq!(s.counters().malformed, 0);
}

/// MD5 (RFC 1321) for computing CHAP responses as the peer does.
fn md5(input: &[u8]) -> [u8; 16] {
    const S: [u32; 16] = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
    let k: Vec<u32> = (0..64)
        .map(|i| ((f64::from(i + 1)).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let mut h: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    let mut msg = input.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&(input.len() as u64 * 8).to_le_bytes());
    for chunk in msg.chunks(64) {
        let m: Vec<u32> = chunk
            .chunks(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let [mut a, mut b, mut c, mut d] = h;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[(i / 16) * 4 + i % 4]));
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0; 16];
    for (o, x) in out.chunks_mut(4).zip(h) {
        o.copy_from_slice(&x.to_le_bytes());
    }
    out
}

#[test]
fn md5_helper_matches_rfc1321_and_python() {
    let hex = |b: [u8; 16]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(hex(md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(hex(md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
    let mut chap = vec![1u8];
    chap.extend_from_slice(b"secret");
    chap.extend(0u8..16);
    assert_eq!(hex(md5(&chap)), "740e86463bda3a4d7017d6e0fba0699d");
}

#[test]
fn chap_session_golden() {
    let mut s = PppSession::new(PppConfig::default(), MAGIC, SEED);
    let (_, opened) = open_lcp(&mut s, &OUR_LCP_CHAP);
    // Challenge: id = seed[0] + 1, 16-byte value, name "vbng".
    let ch = only(&opened, proto::CHAP);
    assert_eq!(&ch[..5], &[0x01, 0x41, 0x00, 0x19, 0x10]);
    assert_eq!(&ch[21..], b"vbng");
    let challenge = ch[5..21].to_vec();
    assert_eq!(
        s.next_deadline(),
        Some(20 + 3000),
        "Challenge retransmission"
    );

    // Retransmitted with the same identifier and value.
    let again = s.tick(3020);
    assert_eq!(only(&again, proto::CHAP), ch);

    // pppd: Response = MD5(id, secret, challenge), name "alice".
    let mut pre = vec![0x41];
    pre.extend_from_slice(b"secret");
    pre.extend_from_slice(&challenge);
    let digest = md5(&pre);
    let resp = emit_packet(
        chap_code_response(),
        0x41,
        &emit_chap_value(&digest, b"alice"),
    );
    assert_eq!(&resp[..5], &[0x02, 0x41, 0x00, 0x1a, 0x10]);
    let o = s.input(3030, proto::CHAP, &resp);
    assert_eq!(
        o.events,
        vec![PppEvent::Authenticate {
            user: "alice".into(),
            credentials: Credentials::Chap {
                id: 0x41,
                challenge: challenge.clone(),
                response: digest
            },
        }]
    );
    assert_eq!(
        s.tick(6100).frames,
        vec![],
        "no retransmission once answered"
    );
    assert_eq!(
        s.input(6100, proto::CHAP, &resp),
        Output::default(),
        "duplicate while pending"
    );

    // The address may come before the verdict.
    assert!(s.set_address(6200, PEER, GW, DNS).frames.is_empty());
    let o = s.auth_result(6300, true, "Welcome");
    let mut success = vec![0x03, 0x41, 0x00, 0x0b];
    success.extend_from_slice(b"Welcome");
    assert_eq!(frames(&o, proto::CHAP), vec![success.clone()]);
    assert_eq!(
        frames(&o, proto::IPCP),
        vec![vec![0x01, 0x01, 0x00, 0x0a, 0x03, 0x06, 100, 64, 0, 1]]
    );
    assert!(o.events.is_empty(), "no NeedAddress: the address is known");
    // Lost Success: a repeated Response gets it again.
    assert_eq!(
        only(&s.input(6400, proto::CHAP, &resp), proto::CHAP),
        success
    );
}

fn chap_code_response() -> u8 {
    wire::chap_code::RESPONSE
}

/// An authenticated PAP session with IPCP open at t = 5000.
fn up_session(c: PppConfig) -> PppSession {
    let mut s = PppSession::new(c, MAGIC, SEED);
    open_lcp(&mut s, &OUR_LCP_PAP);
    s.input(
        30,
        proto::PAP,
        &emit_packet(1, 1, &emit_pap_request(b"alice", b"secret")),
    );
    s.auth_result(40, true, "");
    let o = run_ipcp(&mut s, 4000);
    assert_eq!(o.events, vec![PppEvent::Up { ipv4: PEER }]);
    s
}

#[test]
fn ipcp_without_dns_rejects_dns_options_and_compression() {
    let mut s = PppSession::new(cfg(AuthMethod::Pap), MAGIC, SEED);
    open_lcp(&mut s, &OUR_LCP_PAP);
    s.input(
        30,
        proto::PAP,
        &emit_packet(1, 1, &emit_pap_request(b"bob", b"pw")),
    );
    s.set_address(35, PEER, GW, [None, None]);
    let o = s.auth_result(40, true, "");
    assert_eq!(frames(&o, proto::IPCP).len(), 1, "our Configure-Request");
    let o = s.input(50, proto::IPCP, &PPPD_IPCP_1);
    let rej = [
        0x04, 0x01, 0x00, 0x16, 0x02, 0x06, 0x00, 0x2d, 0x0f, 0x01, 0x81, 0x06, 0, 0, 0, 0, 0x83,
        0x06, 0, 0, 0, 0,
    ];
    assert_eq!(only(&o, proto::IPCP), rej);
    // Then the address alone is Nak'ed, Acked once right.
    let o = s.input(
        60,
        proto::IPCP,
        &[0x01, 0x02, 0x00, 0x0a, 0x03, 0x06, 10, 0, 0, 7],
    );
    assert_eq!(
        only(&o, proto::IPCP),
        [0x03, 0x02, 0x00, 0x0a, 0x03, 0x06, 100, 64, 0, 10]
    );
    let o = s.input(
        70,
        proto::IPCP,
        &[0x01, 0x03, 0x00, 0x0a, 0x03, 0x06, 100, 64, 0, 10],
    );
    assert_eq!(
        only(&o, proto::IPCP),
        [0x02, 0x03, 0x00, 0x0a, 0x03, 0x06, 100, 64, 0, 10]
    );
    let o = s.input(
        80,
        proto::IPCP,
        &[0x02, 0x01, 0x00, 0x0a, 0x03, 0x06, 100, 64, 0, 1],
    );
    assert_eq!(o.events, vec![PppEvent::Up { ipv4: PEER }]);
}

#[test]
fn ipcp_peer_without_address_option_is_told_once() {
    let mut s = PppSession::new(cfg(AuthMethod::Pap), MAGIC, SEED);
    open_lcp(&mut s, &OUR_LCP_PAP);
    s.input(
        30,
        proto::PAP,
        &emit_packet(1, 1, &emit_pap_request(b"bob", b"pw")),
    );
    s.set_address(35, PEER, GW, DNS);
    s.auth_result(40, true, "");
    let o = s.input(50, proto::IPCP, &[0x01, 0x01, 0x00, 0x04]);
    assert_eq!(
        only(&o, proto::IPCP),
        [0x03, 0x01, 0x00, 0x0a, 0x03, 0x06, 100, 64, 0, 10]
    );
    let o = s.input(60, proto::IPCP, &[0x01, 0x02, 0x00, 0x04]);
    assert_eq!(only(&o, proto::IPCP), [0x02, 0x02, 0x00, 0x04]);
}

#[test]
fn lcp_rejects_options_forbidden_on_pppoe_and_naks_bad_values() {
    let mut s = PppSession::new(PppConfig::default(), MAGIC, SEED);
    s.start(0);
    // A non-PPPoE peer: ACCM, Auth-Protocol PAP (wants us to authenticate),
    // PFC, ACFC, MRU 1500, magic.
    let mut opts = vec![
        0x02, 0x06, 0, 0, 0, 0, 0x03, 0x04, 0xc0, 0x23, 0x07, 0x02, 0x08, 0x02,
    ];
    opts.extend_from_slice(&[0x01, 0x04, 0x05, 0xdc, 0x05, 0x06, 1, 2, 3, 4]);
    let o = s.input(10, proto::LCP, &emit_packet(1, 7, &opts));
    // The peer's first request: ours goes again ahead of the answer.
    let answers = frames(&o, proto::LCP);
    assert_eq!(answers.len(), 2, "{o:?}");
    assert_eq!(
        answers[1],
        emit_packet(
            4,
            7,
            &[
                0x02, 0x06, 0, 0, 0, 0, 0x03, 0x04, 0xc0, 0x23, 0x07, 0x02, 0x08, 0x02
            ]
        )
    );
    // Without them: MRU 1500 and magic 0 are Nak'ed (1492, another number).
    let o = s.input(
        20,
        proto::LCP,
        &emit_packet(1, 8, &[0x01, 0x04, 0x05, 0xdc, 0x05, 0x06, 0, 0, 0, 0]),
    );
    let nak = only(&o, proto::LCP);
    assert_eq!(
        &nak[..10],
        &[0x03, 0x08, 0x00, 0x0e, 0x01, 0x04, 0x05, 0xd4, 0x05, 0x06]
    );
    assert_ne!(&nak[10..], &[0, 0, 0, 0]);
    // The peer sending our own magic (a looped-back link) is Nak'ed too.
    let o = s.input(
        30,
        proto::LCP,
        &emit_packet(1, 9, &[0x05, 0x06, 0x11, 0x22, 0x33, 0x44]),
    );
    let nak = only(&o, proto::LCP);
    assert_eq!(nak[0], 0x03);
    assert_ne!(&nak[6..], &MAGIC.to_be_bytes());
    assert_eq!(s.lcp_state(), State::ReqSent);
}

#[test]
fn max_failure_turns_naks_into_rejects() {
    let mut s = PppSession::new(PppConfig::default(), MAGIC, SEED);
    s.start(0);
    let req = [0x01, 0x04, 0x05, 0xdc];
    for id in 0..5 {
        let o = s.input(10, proto::LCP, &emit_packet(1, id, &req));
        // The first one also brings our request again (see open_lcp).
        let answer = frames(&o, proto::LCP).pop().expect("an answer");
        assert_eq!(answer[0], 3, "Nak {id}");
    }
    let o = s.input(10, proto::LCP, &emit_packet(1, 5, &req));
    assert_eq!(only(&o, proto::LCP), emit_packet(4, 5, &req));
}

#[test]
fn chap_then_pap_falls_back_when_chap_is_naked() {
    let mut s = PppSession::new(cfg(AuthMethod::ChapThenPap), MAGIC, SEED);
    let o = s.start(0);
    assert_eq!(only(&o, proto::LCP), OUR_LCP_CHAP);
    // pppd with refuse-chap Naks CHAP and suggests PAP.
    let o = s.input(
        10,
        proto::LCP,
        &[0x03, 0x01, 0x00, 0x08, 0x03, 0x04, 0xc0, 0x23],
    );
    let mut expect = OUR_LCP_PAP.to_vec();
    expect[1] = 2;
    assert_eq!(only(&o, proto::LCP), expect);
}

#[test]
fn chap_only_naked_or_auth_rejected_ends_the_session() {
    for nak in [
        vec![0x03, 0x01, 0x00, 0x08, 0x03, 0x04, 0xc0, 0x23],
        vec![0x04, 0x01, 0x00, 0x09, 0x03, 0x05, 0xc2, 0x23, 0x05],
    ] {
        let mut s = PppSession::new(PppConfig::default(), MAGIC, SEED);
        s.start(0);
        let o = s.input(10, proto::LCP, &nak);
        let term = only(&o, proto::LCP);
        assert_eq!(term[0], 5, "Terminate-Request");
        assert_eq!(s.phase(), Phase::Terminate);
        let o = s.input(20, proto::LCP, &emit_packet(6, term[1], &[]));
        assert_eq!(
            o.events,
            vec![PppEvent::Down {
                reason: DownReason::NegotiationFailed
            }]
        );
        assert_eq!(s.phase(), Phase::Dead);
    }
}

#[test]
fn lcp_nak_and_reject_of_mru_and_magic_are_followed() {
    let mut s = PppSession::new(PppConfig::default(), MAGIC, SEED);
    s.start(0);
    let o = s.input(
        10,
        proto::LCP,
        &[0x03, 0x01, 0x00, 0x08, 0x01, 0x04, 0x05, 0x78],
    );
    let req = only(&o, proto::LCP);
    assert_eq!(
        &req[..8],
        &[0x01, 0x02, 0x00, 0x13, 0x01, 0x04, 0x05, 0x78],
        "MRU 1400 adopted"
    );
    let o = s.input(
        20,
        proto::LCP,
        &[0x04, 0x02, 0x00, 0x0a, 0x05, 0x06, 0x11, 0x22, 0x33, 0x44],
    );
    assert_eq!(
        only(&o, proto::LCP),
        [
            0x01, 0x03, 0x00, 0x0d, 0x01, 0x04, 0x05, 0x78, 0x03, 0x05, 0xc2, 0x23, 0x05
        ]
    );
    // A Reject naming an option we did not send is invalid: discarded.
    let o = s.input(30, proto::LCP, &[0x04, 0x03, 0x00, 0x06, 0x07, 0x02]);
    assert!(o.frames.is_empty());
    // So is a Nak with a stale identifier.
    let o = s.input(
        30,
        proto::LCP,
        &[0x03, 0x01, 0x00, 0x08, 0x01, 0x04, 0x05, 0x78],
    );
    assert!(o.frames.is_empty());
    assert_eq!(s.counters().discarded, 2);
}

#[test]
fn echo_requests_and_echo_timeout() {
    let mut s = up_session(cfg(AuthMethod::Pap));
    // Echo timer started at LCP Opened (t = 20).
    assert_eq!(s.next_deadline(), Some(10_020));
    let o = s.tick(10_020);
    let echo = only(&o, proto::LCP);
    assert_eq!(&echo[..4], &[0x09, echo[1], 0x00, 0x08]);
    assert_eq!(&echo[4..], &MAGIC.to_be_bytes());
    // Answered: the failure count starts again.
    let mut reply = echo.clone();
    reply[0] = 10;
    reply[4..].copy_from_slice(&PEER_MAGIC);
    assert!(s.input(10_030, proto::LCP, &reply).frames.is_empty());
    assert_eq!(s.counters().echo_replies_received, 1);
    for t in [20_020, 30_020, 40_020] {
        let o = s.tick(t);
        assert_eq!(only(&o, proto::LCP)[0], 9);
        assert!(o.events.is_empty());
    }
    let o = s.tick(50_020);
    assert_eq!(only(&o, proto::LCP)[0], 5, "Terminate-Request");
    assert_eq!(
        o.events,
        vec![PppEvent::Down {
            reason: DownReason::EchoTimeout
        }]
    );
    assert_eq!(s.next_deadline(), None);
    assert_eq!(s.tick(60_000), Output::default());
}

#[test]
fn peer_echo_request_answered_with_our_magic() {
    let mut s = up_session(cfg(AuthMethod::Pap));
    let mut req = vec![0x09, 0x33, 0x00, 0x0a];
    req.extend_from_slice(&PEER_MAGIC);
    req.extend_from_slice(&[0xbe, 0xef]);
    let o = s.input(5000, proto::LCP, &req);
    let mut expect = vec![0x0a, 0x33, 0x00, 0x0a];
    expect.extend_from_slice(&MAGIC.to_be_bytes());
    expect.extend_from_slice(&[0xbe, 0xef]);
    assert_eq!(only(&o, proto::LCP), expect);
    // Our own magic coming back means a loop: not answered.
    let mut looped = vec![0x09, 0x34, 0x00, 0x08];
    looped.extend_from_slice(&MAGIC.to_be_bytes());
    assert!(s.input(5001, proto::LCP, &looped).frames.is_empty());
}

#[test]
fn peer_terminate_ends_the_session_at_once() {
    let mut s = up_session(cfg(AuthMethod::Pap));
    // pppd on SIGTERM: LCP Terminate-Request "User request".
    let mut req = vec![0x05, 0x02, 0x00, 0x10];
    req.extend_from_slice(b"User request");
    let o = s.input(6000, proto::LCP, &req);
    assert_eq!(only(&o, proto::LCP), [0x06, 0x02, 0x00, 0x04]);
    assert_eq!(
        o.events,
        vec![PppEvent::Down {
            reason: DownReason::PeerTerminated
        }]
    );
    assert_eq!(s.phase(), Phase::Dead);
    assert_eq!(s.next_deadline(), None);
    assert_eq!(s.input(6001, proto::LCP, &req), Output::default());
}

#[test]
fn pap_auth_failure_naks_then_terminates() {
    let mut s = PppSession::new(cfg(AuthMethod::Pap), MAGIC, SEED);
    open_lcp(&mut s, &OUR_LCP_PAP);
    s.input(
        30,
        proto::PAP,
        &emit_packet(1, 1, &emit_pap_request(b"alice", b"wrong")),
    );
    let o = s.auth_result(40, false, "Bad password");
    let mut nak = vec![0x03, 0x01, 0x00, 0x11, 12];
    nak.extend_from_slice(b"Bad password");
    assert_eq!(frames(&o, proto::PAP), vec![nak]);
    let term = frames(&o, proto::LCP);
    assert_eq!(term.len(), 1);
    let term = parse_packet(&term[0]).unwrap();
    assert_eq!((term.code, term.data), (5, &b"auth_failed"[..]));
    assert!(o.events.is_empty(), "Down waits for the Terminate-Ack");
    assert_eq!(s.phase(), Phase::Terminate);
    let o = s.input(50, proto::LCP, &emit_packet(6, term.id, &[]));
    assert_eq!(
        o.events,
        vec![PppEvent::Down {
            reason: DownReason::AuthFailed
        }]
    );
}

#[test]
fn chap_auth_failure_and_unanswered_terminate() {
    let mut s = PppSession::new(PppConfig::default(), MAGIC, SEED);
    let (_, opened) = open_lcp(&mut s, &OUR_LCP_CHAP);
    let ch = only(&opened, proto::CHAP);
    let resp = emit_packet(2, ch[1], &emit_chap_value(&[0; 16], b"mallory"));
    assert_eq!(s.input(30, proto::CHAP, &resp).events.len(), 1);
    let o = s.auth_result(40, false, "Go away");
    let mut fail = vec![0x04, ch[1], 0x00, 0x0b];
    fail.extend_from_slice(b"Go away");
    assert_eq!(frames(&o, proto::CHAP), vec![fail]);
    // The peer never acknowledges: Max-Terminate (2) requests, then Down.
    assert_eq!(s.next_deadline(), Some(3040));
    assert_eq!(only(&s.tick(3040), proto::LCP)[0], 5);
    let o = s.tick(6040);
    assert!(o.frames.is_empty());
    assert_eq!(
        o.events,
        vec![PppEvent::Down {
            reason: DownReason::AuthFailed
        }]
    );
}

#[test]
fn wrong_chap_responses_are_not_credentials() {
    let mut s = PppSession::new(PppConfig::default(), MAGIC, SEED);
    let (_, opened) = open_lcp(&mut s, &OUR_LCP_CHAP);
    let id = only(&opened, proto::CHAP)[1];
    // Wrong identifier, short value, truncated packet, non-UTF-8 name.
    assert!(
        s.input(
            30,
            proto::CHAP,
            &emit_packet(2, id ^ 1, &emit_chap_value(&[0; 16], b"a"))
        )
        .events
        .is_empty()
    );
    assert!(
        s.input(
            30,
            proto::CHAP,
            &emit_packet(2, id, &emit_chap_value(&[0; 8], b"a"))
        )
        .events
        .is_empty()
    );
    assert!(
        s.input(30, proto::CHAP, &[2, id, 0, 40, 16])
            .events
            .is_empty()
    );
    assert_eq!(s.counters().malformed, 2);
    assert_eq!(s.counters().discarded, 1);
    let o = s.input(
        30,
        proto::CHAP,
        &emit_packet(2, id, &emit_chap_value(&[0; 16], &[0xff, 0xfe])),
    );
    assert!(o.events.is_empty());
    assert_eq!(
        frames(&o, proto::CHAP),
        vec![vec![0x04, id, 0x00, 0x04]],
        "Failure"
    );
    assert_eq!(frames(&o, proto::LCP)[0][0], 5, "then Terminate-Request");
}

#[test]
fn auth_timeout() {
    let mut s = PppSession::new(cfg(AuthMethod::Pap), MAGIC, SEED);
    open_lcp(&mut s, &OUR_LCP_PAP);
    assert_eq!(s.next_deadline(), Some(10_020), "echo first");
    s.tick(10_020);
    s.tick(20_020);
    let o = s.tick(30_020);
    assert_eq!(only(&o, proto::LCP)[0], 5);
    s.tick(33_020);
    let o = s.tick(36_020);
    assert_eq!(
        o.events,
        vec![PppEvent::Down {
            reason: DownReason::AuthTimeout
        }]
    );
}

#[test]
fn lcp_negotiation_timeout() {
    let mut s = PppSession::new(PppConfig::default(), MAGIC, SEED);
    let mut requests = s.start(0).frames.len();
    let mut down = Vec::new();
    while let Some(t) = s.next_deadline() {
        let o = s.tick(t);
        requests += o.frames.len();
        down.extend(o.events);
    }
    assert_eq!(requests, 10);
    assert_eq!(
        down,
        vec![PppEvent::Down {
            reason: DownReason::NegotiationFailed
        }]
    );
}

#[test]
fn admin_close_waits_for_terminate_ack() {
    let mut s = up_session(cfg(AuthMethod::Pap));
    let o = s.close(7000, DownReason::AdminClose);
    let term = only(&o, proto::LCP);
    assert_eq!(parse_packet(&term).unwrap().code, 5);
    assert!(o.events.is_empty());
    assert_eq!(s.phase(), Phase::Terminate);
    assert_eq!(
        s.close(7001, DownReason::AuthFailed),
        Output::default(),
        "first reason wins"
    );
    let o = s.input(7002, proto::LCP, &emit_packet(6, term[1], &[]));
    assert_eq!(
        o.events,
        vec![PppEvent::Down {
            reason: DownReason::AdminClose
        }]
    );
}

#[test]
fn close_before_start_is_down_at_once() {
    let mut s = PppSession::new(PppConfig::default(), MAGIC, SEED);
    let o = s.close(0, DownReason::AdminClose);
    assert_eq!(
        o.events,
        vec![PppEvent::Down {
            reason: DownReason::AdminClose
        }]
    );
    assert_eq!(s.start(1), Output::default());
}

#[test]
fn unknown_protocols_are_protocol_rejected_once_lcp_is_open() {
    let mut s = PppSession::new(cfg(AuthMethod::Pap), MAGIC, SEED);
    s.start(0);
    let v6cp = [0x01, 0x01, 0x00, 0x0e, 0x01, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8];
    assert!(
        s.input(5, proto::IPV6CP, &v6cp).frames.is_empty(),
        "not before LCP Opened"
    );
    s.input(10, proto::LCP, &pppd_lcp_request(1));
    let mut ack = OUR_LCP_PAP;
    ack[0] = 2;
    s.input(20, proto::LCP, &ack);
    let o = s.input(30, proto::IPV6CP, &v6cp);
    let rej = only(&o, proto::LCP);
    assert_eq!(&rej[..6], &[0x08, rej[1], 0x00, 0x14, 0x80, 0x57]);
    assert_eq!(&rej[6..], &v6cp);
    assert_eq!(s.counters().protocol_rejects_sent, 1);
    // Data and NCP frames before their phase are dropped silently.
    assert!(s.input(31, proto::IPV4, &[0x45; 20]).frames.is_empty());
    assert!(s.input(31, proto::IPCP, &PPPD_IPCP_1).frames.is_empty());
}

#[test]
fn unknown_lcp_code_is_code_rejected() {
    let mut s = PppSession::new(PppConfig::default(), MAGIC, SEED);
    s.start(0);
    let o = s.input(10, proto::LCP, &[0x0e, 0x05, 0x00, 0x06, 0xaa, 0xbb]);
    let rej = only(&o, proto::LCP);
    assert_eq!(&rej[..4], &[0x07, rej[1], 0x00, 0x0a]);
    assert_eq!(&rej[4..], &[0x0e, 0x05, 0x00, 0x06, 0xaa, 0xbb]);
}

#[test]
fn catastrophic_rejects_end_the_session() {
    // Code-Reject of Configure-Request.
    let mut s = PppSession::new(PppConfig::default(), MAGIC, SEED);
    s.start(0);
    let o = s.input(10, proto::LCP, &emit_packet(7, 1, &OUR_LCP_CHAP));
    assert_eq!(
        o.events,
        vec![PppEvent::Down {
            reason: DownReason::NegotiationFailed
        }]
    );
    // Protocol-Reject of IPCP once in the network phase.
    let mut s = up_session(cfg(AuthMethod::Pap));
    let o = s.input(
        6000,
        proto::LCP,
        &emit_packet(8, 9, &[0x80, 0x21, 1, 1, 0, 4]),
    );
    assert_eq!(only(&o, proto::LCP)[0], 5);
    assert_eq!(s.phase(), Phase::Terminate);
    // Code-Reject of an Echo-Request is harmless.
    let mut s = up_session(cfg(AuthMethod::Pap));
    let o = s.input(
        6000,
        proto::LCP,
        &emit_packet(7, 9, &[9, 1, 0, 8, 0, 0, 0, 0]),
    );
    assert_eq!(o, Output::default());
    assert_eq!(s.lcp_state(), State::Opened);
}

#[test]
fn lcp_renegotiation_after_open_ends_the_session() {
    let mut s = up_session(cfg(AuthMethod::Pap));
    let o = s.input(6000, proto::LCP, &pppd_lcp_request(9));
    assert_eq!(only(&o, proto::LCP)[0], 5);
    assert_eq!(s.phase(), Phase::Terminate);
    // A duplicate of the peer's old Configure-Ack is discarded instead.
    let mut s = up_session(cfg(AuthMethod::Pap));
    let mut ack = OUR_LCP_PAP;
    ack[0] = 2;
    assert_eq!(s.input(6000, proto::LCP, &ack), Output::default());
    assert_eq!(s.lcp_state(), State::Opened);
}

#[test]
fn ipcp_timeout_ends_the_session() {
    let mut s = PppSession::new(cfg(AuthMethod::Pap), MAGIC, SEED);
    open_lcp(&mut s, &OUR_LCP_PAP);
    s.input(
        30,
        proto::PAP,
        &emit_packet(1, 1, &emit_pap_request(b"bob", b"pw")),
    );
    s.set_address(35, PEER, GW, DNS);
    s.auth_result(40, true, "");
    let mut ipcp_requests = 1;
    let mut down = Vec::new();
    let mut lcp_terms = 0;
    while let Some(t) = s.next_deadline() {
        // Keep LCP alive: answer our echoes.
        let o = s.tick(t);
        for (p, f) in &o.frames {
            match (*p, f[0]) {
                (proto::IPCP, 1) => ipcp_requests += 1,
                (proto::LCP, 9) => {
                    let mut r = f.clone();
                    r[0] = 10;
                    s.input(t, proto::LCP, &r);
                }
                (proto::LCP, 5) => lcp_terms += 1,
                _ => {}
            }
        }
        down.extend(o.events);
    }
    assert_eq!(ipcp_requests, 10);
    assert_eq!(lcp_terms, 2);
    assert_eq!(
        down,
        vec![PppEvent::Down {
            reason: DownReason::NegotiationFailed
        }]
    );
}

#[test]
fn malformed_packets_are_counted_never_answered() {
    let mut s = up_session(cfg(AuthMethod::Pap));
    let bad: [&[u8]; 6] = [
        &[],
        &[1, 1, 0],
        &[1, 1, 0, 3],
        &[1, 1, 0, 9, 1, 2],
        &[1, 1, 0, 6, 1, 0],
        &[9, 1, 0, 6, 0, 0],
    ];
    for b in bad {
        assert_eq!(s.input(6000, proto::LCP, b), Output::default(), "{b:?}");
        if b.first() != Some(&9) {
            assert_eq!(s.input(6000, proto::IPCP, b), Output::default(), "{b:?}");
        }
    }
    assert_eq!(s.counters().malformed, 11);
    assert_eq!(s.lcp_state(), State::Opened);
}

proptest! {
    /// Arbitrary packets on any protocol, interleaved with the caller's
    /// calls, never panic; every frame we send is a well-formed control
    /// packet; Down comes at most once and nothing follows it.
    #[test]
    fn arbitrary_input_never_panics(steps in proptest::collection::vec(
        (0u8..8, proptest::collection::vec(any::<u8>(), 0..40)), 0..40)) {
        let mut s = PppSession::new(cfg(AuthMethod::ChapThenPap), MAGIC, SEED);
        let mut now = 0;
        let mut downs = 0;
        let mut outs = vec![s.start(0)];
        for (kind, bytes) in steps {
            now += 700;
            let protocol = [proto::LCP, proto::PAP, proto::CHAP, proto::IPCP, proto::IPV6CP][usize::from(kind % 5)];
            let o = match kind {
                5 => s.tick(now),
                6 => s.auth_result(now, bytes.len() % 2 == 0, "m"),
                7 => s.set_address(now, PEER, GW, DNS),
                _ => s.input(now, protocol, &bytes),
            };
            if downs > 0 {
                prop_assert_eq!(&o, &Output::default());
            }
            downs += o.events.iter().filter(|e| matches!(e, PppEvent::Down { .. })).count();
            outs.push(o);
        }
        prop_assert!(downs <= 1);
        for o in outs {
            for (_, f) in o.frames {
                let p = parse_packet(&f).unwrap();
                prop_assert_eq!(usize::from(u16::from_be_bytes([f[2], f[3]])), f.len());
                prop_assert!(Code::from(p.code) != Code::Unknown(0));
            }
        }
    }
}

/// The session's LCP against the table: for every state reachable by
/// negotiation and every event a packet, a timer or `close` can cause, the
/// real packet is fed to a session forced into that state, and the frames
/// sent, the next state and the Down event must be what the table's cell
/// says. Opened departs from the table where the module docs say so
/// (renegotiation ends the session).
#[test]
fn session_lcp_follows_the_table_with_real_packets() {
    use Event as E;
    let peer_magic = u32::from_be_bytes(PEER_MAGIC);
    let mut cells = 0;
    for state in State::ALL.into_iter().skip(2) {
        for event in [
            E::Close,
            E::TimeoutRetry,
            E::TimeoutGiveUp,
            E::RcrGood,
            E::RcrBad,
            E::Rca,
            E::Rcn,
            E::Rtr,
            E::Rta,
            E::Ruc,
            E::RxjGood,
            E::RxjBad,
            E::Rxr,
        ] {
            let Some((actions, next)) = transition(state, event) else {
                continue;
            };
            let mut s = PppSession::new(cfg(AuthMethod::Pap), MAGIC, SEED);
            let counter = if event == E::TimeoutGiveUp { 0 } else { 3 };
            s.force_lcp_state(1000, state, counter);
            let ack = {
                let mut a = OUR_LCP_PAP.to_vec();
                a[0] = 2;
                a[1] = 0x20;
                a
            };
            let mut echo = vec![0x09, 0x44, 0x00, 0x08];
            echo.extend_from_slice(&peer_magic.to_be_bytes());
            let o = match event {
                E::Close => s.close(1000, DownReason::AdminClose),
                E::TimeoutRetry | E::TimeoutGiveUp => s.tick(4000),
                E::RcrGood => s.input(1000, proto::LCP, &pppd_lcp_request(7)),
                E::RcrBad => s.input(1000, proto::LCP, &[1, 7, 0, 10, 2, 6, 0, 0, 0, 0]),
                E::Rca => s.input(1000, proto::LCP, &ack),
                E::Rcn => s.input(1000, proto::LCP, &[3, 0x20, 0, 8, 1, 4, 0x05, 0x78]),
                E::Rtr => s.input(1000, proto::LCP, &[5, 7, 0, 4]),
                E::Rta => s.input(1000, proto::LCP, &[6, 7, 0, 4]),
                E::Ruc => s.input(1000, proto::LCP, &[0x0e, 7, 0, 4]),
                E::RxjGood => s.input(1000, proto::LCP, &[7, 7, 0, 8, 9, 1, 0, 4]),
                E::RxjBad => s.input(1000, proto::LCP, &[7, 7, 0, 8, 1, 1, 0, 4]),
                E::Rxr => s.input(1000, proto::LCP, &echo),
                _ => unreachable!(),
            };
            let codes: Vec<u8> = o.frames.iter().map(|(_, f)| f[0]).collect();
            let down: Vec<DownReason> = o
                .events
                .iter()
                .filter_map(|e| match e {
                    PppEvent::Down { reason } => Some(*reason),
                    _ => None,
                })
                .collect();
            let renegotiation = state == State::Opened
                && matches!(event, E::RcrGood | E::RcrBad | E::Rca | E::Rcn | E::Rta);
            let (want_codes, want_next, want_down) = if renegotiation {
                (vec![5], State::Closing, vec![])
            } else {
                let codes = actions
                    .iter()
                    .filter_map(|a| match a {
                        Action::Scr => Some(1),
                        Action::Sca => Some(2),
                        Action::Scn => Some(4),
                        Action::Str => Some(5),
                        Action::Sta => Some(6),
                        Action::Scj => Some(7),
                        Action::Ser => Some(10),
                        _ => None,
                    })
                    .collect();
                let down = if event == E::Close && !next.timer_runs() {
                    vec![DownReason::AdminClose]
                } else if actions.contains(&Action::Tlf) {
                    vec![DownReason::NegotiationFailed]
                } else if state == State::Opened && event == E::Rtr {
                    vec![DownReason::PeerTerminated]
                } else {
                    vec![]
                };
                (codes, next, down)
            };
            assert_eq!(codes, want_codes, "{state:?} + {event:?}: {o:?}");
            assert_eq!(s.lcp_state(), want_next, "{state:?} + {event:?}");
            assert_eq!(down, want_down, "{state:?} + {event:?}");
            if actions.contains(&Action::Tlu) {
                assert_eq!(s.phase(), Phase::Authenticate, "{state:?} + {event:?}");
            }
            cells += 1;
        }
    }
    assert_eq!(cells, 98);
}

#[test]
fn ipcp_renegotiation_keeps_the_session_and_up_is_sent_once() {
    let mut s = up_session(cfg(AuthMethod::Pap));
    let req = [0x01, 0x09, 0x00, 0x0a, 0x03, 0x06, 100, 64, 0, 10];
    let o = s.input(6000, proto::IPCP, &req);
    assert_eq!(
        frames(&o, proto::IPCP),
        vec![vec![0x01, 0x02, 0x00, 0x0a, 0x03, 0x06, 100, 64, 0, 1], {
            let mut a = req.to_vec();
            a[0] = 2;
            a
        }]
    );
    assert_eq!(s.ipcp_state(), State::AckSent);
    let o = s.input(
        6001,
        proto::IPCP,
        &[0x02, 0x02, 0x00, 0x0a, 0x03, 0x06, 100, 64, 0, 1],
    );
    assert_eq!(s.ipcp_state(), State::Opened);
    assert_eq!(o, Output::default(), "no second Up");
    assert_eq!(s.phase(), Phase::Network);
}

#[test]
fn restored_session_carries_on_with_the_negotiated_link() {
    let s = up_session(cfg(AuthMethod::Pap));
    let link = s.negotiated().expect("Network phase with IPCP open");
    assert_eq!(
        link,
        NegotiatedLink {
            magic: Some(MAGIC),
            peer_magic: Some(u32::from_be_bytes(PEER_MAGIC)),
            mru: Some(1492),
            peer_mru: 1492,
            auth: AuthMethod::Pap,
            ipv4: PEER,
            gateway: GW,
            dns: DNS,
        }
    );

    // Another process, another random magic: the restored one is used.
    let mut r = PppSession::restore(cfg(AuthMethod::Pap), &link, [3; 16], 100_000);
    assert_eq!(r.phase(), Phase::Network);
    assert_eq!(r.lcp_state(), State::Opened);
    assert_eq!(r.ipcp_state(), State::Opened);
    assert_eq!(r.peer_mru(), 1492);
    assert_eq!(r.negotiated(), Some(link));
    // The peer's Echo-Request is answered with the old magic number.
    let mut req = vec![0x09, 0x40, 0x00, 0x08];
    req.extend_from_slice(&PEER_MAGIC);
    let o = r.input(100_001, proto::LCP, &req);
    let mut expect = vec![0x0a, 0x40, 0x00, 0x08];
    expect.extend_from_slice(&MAGIC.to_be_bytes());
    assert_eq!(only(&o, proto::LCP), expect);
    assert!(o.events.is_empty(), "no second Up");
    // IPv4 is forwarded by the user plane; a late PAP retransmission is
    // acknowledged again, not re-authenticated.
    let o = r.input(
        100_002,
        proto::PAP,
        &emit_packet(1, 7, &emit_pap_request(b"alice", b"secret")),
    );
    assert_eq!(only(&o, proto::PAP)[..2], [2, 7]);
    assert!(o.events.is_empty());
    // Our keepalive starts one interval after the restore, old magic.
    assert_eq!(r.next_deadline(), Some(110_000));
    let echo = only(&r.tick(110_000), proto::LCP);
    assert_eq!(echo[0], 9);
    assert_eq!(&echo[4..], &MAGIC.to_be_bytes());
    // A Terminate-Request from the peer ends it as usual.
    let o = r.input(110_010, proto::LCP, &[0x05, 0x09, 0x00, 0x04]);
    assert_eq!(only(&o, proto::LCP), [0x06, 0x09, 0x00, 0x04]);
    assert_eq!(
        o.events,
        vec![PppEvent::Down {
            reason: DownReason::PeerTerminated
        }]
    );
    assert_eq!(r.negotiated(), None);
}

#[test]
fn negotiated_is_none_before_ipcp_opens_and_after_a_rejected_magic() {
    let mut s = PppSession::new(cfg(AuthMethod::Pap), MAGIC, SEED);
    assert_eq!(s.negotiated(), None);
    open_lcp(&mut s, &OUR_LCP_PAP);
    assert_eq!(s.negotiated(), None, "authenticating");
    let link = NegotiatedLink {
        magic: None,
        peer_magic: None,
        mru: None,
        peer_mru: 1500,
        auth: AuthMethod::Chap,
        ipv4: PEER,
        gateway: GW,
        dns: [None, None],
    };
    let mut r = PppSession::restore(cfg(AuthMethod::Chap), &link, SEED, 0);
    assert_eq!(r.negotiated(), Some(link));
    // Without a magic number, Echo packets carry 0.
    let echo = only(&r.tick(10_000), proto::LCP);
    assert_eq!(&echo[4..], &[0, 0, 0, 0]);
}

#[test]
fn first_request_repeated_once_and_a_peer_that_saw_it_is_not_disturbed() {
    // A peer that did see our first request: its own request crosses ours,
    // then it acknowledges ours; the repeat gets a second Ack with the same
    // identifier, which is discarded without restarting negotiation.
    let mut s = PppSession::new(cfg(AuthMethod::Pap), 0x1122_3344, [0; 16]);
    let ours = only(&s.start(0), proto::LCP);
    assert_eq!(ours, OUR_LCP_PAP);
    let o = s.input(10, proto::LCP, &pppd_lcp_request(1));
    assert_eq!(frames(&o, proto::LCP)[0], ours, "repeated ahead of the Ack");
    let mut their_ack = ours.clone();
    their_ack[0] = 2;
    s.input(20, proto::LCP, &their_ack);
    assert_eq!(s.lcp_state(), State::Opened);
    let late = s.input(30, proto::LCP, &their_ack);
    assert!(late.frames.is_empty(), "{late:?}");
    assert_eq!(s.lcp_state(), State::Opened);
    assert_eq!(s.phase(), Phase::Authenticate);
    assert_eq!(s.counters().discarded, 1);
    assert_eq!(s.counters().lcp_requests_repeated, 1);
}
