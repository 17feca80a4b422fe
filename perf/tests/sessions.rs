//! `vbng-perf sessions` end to end, small: the emulator against vbng-cp in this process
//! (and against the canned responder), and one emulated PPPoE session compared with what
//! pppd 2.4.9 did against vbng-cp in the lab.

use std::path::Path;
use std::time::Duration;

use vbng_access::ppp::proto;
use vbng_perf::sessions::emulator::{Exchange, Progress, Step};
use vbng_perf::sessions::{self, Protocol, SessionsArgs};

fn args(protocol: Protocol, count: u32) -> SessionsArgs {
    SessionsArgs {
        protocol,
        count,
        rate: None,
        window: 32,
        timeout: Duration::from_secs(8),
        progress: Progress::Off,
        baseline: true,
    }
}

fn check(protocol: Protocol, count: u32) {
    let (figures, runs) = sessions::run(&args(protocol, count)).expect("the runs complete");
    for run in &runs {
        let r = &run.result;
        assert_eq!(
            (r.setup.completed, r.teardown.completed),
            (count, count),
            "{} {}: setup failures {:?}, teardown failures {:?}",
            protocol.as_str(),
            run.server,
            r.setup.failures,
            r.teardown.failures
        );
        assert_eq!(r.setup.latencies.len(), count as usize);
        assert!(run.setup_rates().avg > 0.0 && run.teardown_rates().avg > 0.0);
    }
    let setup = figures
        .iter()
        .find(|f| f.figure == format!("sessions.{}.setup_rate", protocol.as_str()))
        .expect("the setup figure");
    assert!(
        setup.ratio.is_some(),
        "the figure has its same-run baseline"
    );
    let text = sessions::text_report(&args(protocol, count), &runs);
    assert!(text.contains("sessions up") && text.contains("failures (vbng-cp): none"));
}

#[test]
fn two_hundred_pppoe_sessions_come_up_and_go_down() {
    check(Protocol::Pppoe, 200);
}

#[test]
fn two_hundred_ipoe_sessions_come_up_and_go_down() {
    check(Protocol::Ipoe, 200);
}

// ---------------------------------------------------------------------------
// The pppd comparison.

/// What pppd 2.4.9 (rp-pppoe plugin, PAP secrets only, `usepeerdns`) sent and received
/// against vbng-cp with `auth = "chap-then-pap"` and a pool with one DNS server, per
/// direction, normalised as [`per_direction`] does: taken from the lab capture
/// `pppoe-ipoe/tests/data/pppd-pap.pcap`, used when that file is absent.
const PPPD_CLIENT: &[&str] = &[
    "C->S PADI",
    "C->S PADR",
    "C->S LCP Conf-Req",
    "C->S LCP Conf-Nak",
    "C->S LCP Conf-Ack",
    "C->S PAP Auth-Req",
    "C->S IPCP Conf-Req",
    "C->S IPCP Conf-Ack",
    "C->S IPCP Conf-Req",
];
const PPPD_SERVER: &[&str] = &[
    "S->C PADO",
    "S->C PADS",
    "S->C LCP Conf-Req",
    "S->C LCP Conf-Ack",
    "S->C LCP Conf-Req",
    "S->C PAP Auth-Ack",
    "S->C IPCP Conf-Req",
    "S->C IPCP Conf-Rej",
    "S->C IPCP Conf-Nak",
    "S->C IPCP Conf-Ack",
];

/// The messages one side sent while the session came up, in order: cut at the first
/// teardown message (LCP Terminate-Request/Ack, PADT) of either side, without LCP
/// Echo-Request/Reply (pppd's keepalive, which the emulator does not send), and with
/// consecutive repeats (retransmissions) counted once.
fn per_direction(trace: &[Exchange], from_client: bool) -> Vec<String> {
    let teardown = |e: &Exchange| match e.step {
        Step::Discovery(c) => c == 0xa7,
        Step::Ppp { protocol, code } => protocol == proto::LCP && (code == 5 || code == 6),
    };
    let mut out: Vec<String> = Vec::new();
    for e in trace.iter().take_while(|e| !teardown(e)) {
        let echo = matches!(
            e.step,
            Step::Ppp {
                protocol: proto::LCP,
                code: 9 | 10
            }
        );
        if e.from_client != from_client || echo {
            continue;
        }
        let s = e.to_string();
        if out.last() != Some(&s) {
            out.push(s);
        }
    }
    out
}

/// The PPPoE messages of a classic pcap file of Ethernet frames (either byte order,
/// micro- or nanosecond stamps), the client being the sender of the first PADI.
fn pcap_exchanges(bytes: &[u8]) -> Result<Vec<Exchange>, String> {
    let magic = bytes.get(..4).ok_or("no pcap header")?;
    let le = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => return Err(format!("not a pcap file (magic {magic:02x?})")),
    };
    let u32_at = |b: &[u8], at: usize| -> Result<u32, String> {
        let v: [u8; 4] = b
            .get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or("truncated pcap")?;
        Ok(if le {
            u32::from_le_bytes(v)
        } else {
            u32::from_be_bytes(v)
        })
    };
    if u32_at(bytes, 20)? != 1 {
        return Err("the capture is not of Ethernet frames".into());
    }
    let mut out = Vec::new();
    let mut client = None;
    let mut off = 24;
    while off < bytes.len() {
        let incl = u32_at(bytes, off + 8)? as usize;
        let frame = bytes
            .get(off + 16..off + 16 + incl)
            .ok_or("truncated pcap record")?;
        off += 16 + incl;
        let (Some(src), Some(mut ethertype)) = (
            frame.get(6..12),
            frame.get(12..14).map(|t| u16::from_be_bytes([t[0], t[1]])),
        ) else {
            continue;
        };
        let mut payload = &frame[14..];
        while ethertype == 0x8100 || ethertype == 0x88a8 {
            let Some(t) = payload.get(2..4) else { break };
            ethertype = u16::from_be_bytes([t[0], t[1]]);
            payload = &payload[4..];
        }
        let Ok((h, body)) = vbng_access::pppoe::wire::parse(payload) else {
            continue;
        };
        let step = match (ethertype, body) {
            (0x8863, _) => Step::Discovery(h.code.into()),
            (0x8864, [p0, p1, code, ..]) => Step::Ppp {
                protocol: u16::from_be_bytes([*p0, *p1]),
                code: *code,
            },
            _ => continue,
        };
        if step == Step::Discovery(0x09) && client.is_none() {
            client = Some(src.to_vec());
        }
        out.push(Exchange {
            from_client: client.as_deref() == Some(src),
            step,
        });
    }
    Ok(out)
}

#[test]
fn an_emulated_pppoe_session_behaves_like_pppd() {
    let ours = sessions::trace_one_pppoe_session().expect("one session against vbng-cp");
    let capture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../pppoe-ipoe/tests/data/pppd-pap.pcap");
    let (client, server): (Vec<String>, Vec<String>) = match std::fs::read(&capture) {
        Ok(bytes) => {
            let pppd = pcap_exchanges(&bytes).expect("the capture parses");
            (per_direction(&pppd, true), per_direction(&pppd, false))
        }
        Err(_) => (
            PPPD_CLIENT.iter().map(|s| s.to_string()).collect(),
            PPPD_SERVER.iter().map(|s| s.to_string()).collect(),
        ),
    };
    let full: Vec<String> = ours.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        per_direction(&ours, true),
        client,
        "what the emulated client sent differs from pppd; whole trace: {full:#?}"
    );
    assert_eq!(
        per_direction(&ours, false),
        server,
        "what vbng-cp sent the emulated client differs from what it sent pppd; whole trace: {full:#?}"
    );
    // The capture, normalised, is the documented sequence.
    assert_eq!(client, PPPD_CLIENT);
    assert_eq!(server, PPPD_SERVER);
}
