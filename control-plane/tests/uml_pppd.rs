//! Real `pppd` (rp-pppoe plugin) in a User-Mode Linux guest, the PPPoE
//! subscriber of the lab, checked without vbng: against Debian's
//! `pppoe-server` in a second guest (PAP and CHAP: addresses, DNS, a ping
//! through the session, LCP Terminate on stop, a wrong password reported),
//! on the wire alone (its PADI carries an empty Service-Name and a
//! Host-Uniq, and is retransmitted), and that dropping a client leaves no
//! guest process behind.
//!
//! Needs root, network namespaces, `linux.uml` with its modules, `pppd`,
//! `pppoe-server`, `tcpdump` and `tshark`; prints a `SKIPPED:` line and
//! passes without them.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vbng_cp::lab::ScratchDir;
use vbng_cp::lab::netns::{Netns, veth, which};
use vbng_cp::lab::procs::Daemon;
use vbng_cp::lab::uml::{
    PppAuth, PppClient, PppdOptions, PppoeServer, PppoeServerOptions, pppoe_server_unavailable,
    uml_unavailable,
};

const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const FIRST_CLIENT: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 100);
const DNS: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 77, 0, 53), Ipv4Addr::new(10, 77, 0, 54)];

fn skip(test: &str, why: &str) {
    // Straight to the stream, past the test harness's capture.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {why}");
}

fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Two namespaces joined by a veth pair: `c` (client side) and `s`.
fn pair(tag: &str) -> (Netns, Netns, String, String) {
    let pid = std::process::id();
    let c = Netns::create(&format!("vbng-umlc-{tag}-{pid}")).expect("client netns");
    let s = Netns::create(&format!("vbng-umls-{tag}-{pid}")).expect("server netns");
    let (ci, si) = (format!("uc{tag}"), format!("us{tag}"));
    veth((&c, &ci, None), (&s, &si, None)).expect("veth pair");
    (c, s, ci, si)
}

/// tcpdump on `iface` in `ns` writing discovery frames to `pcap`, started
/// and listening.
fn capture(ns: &Netns, iface: &str, pcap: &Path, log: PathBuf) -> Option<Daemon> {
    let tcpdump = which("tcpdump")?;
    let pcap = pcap.display().to_string();
    let mut d = Daemon::start(
        "tcpdump",
        ns.name(),
        &tcpdump,
        &["-i", iface, "-U", "-n", "-w", &pcap, "ether proto 0x8863"],
        log,
    )
    .expect("start tcpdump");
    // tcpdump prints "listening on" once its socket is bound.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.log_tail(5).contains("listening on") {
        d.check_running().expect("tcpdump running");
        assert!(Instant::now() < deadline, "tcpdump did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(d)
}

fn session(auth: PppAuth, tag: &str, scratch: &ScratchDir) {
    let (c, s, ci, si) = pair(tag);
    let pcap = scratch.join(format!("discovery-{tag}.pcap"));
    let mut tcpdump = capture(&s, &si, &pcap, scratch.join(format!("tcpdump-{tag}.log")));
    let mut server = PppoeServer::start(
        s.name(),
        &si,
        &scratch.sub(&format!("server-{tag}")),
        PppoeServerOptions {
            ac_name: "vbng-ref".into(),
            user: "alice@isp".into(),
            password: "s3cret".into(),
            auth,
            local: SERVER_ADDR,
            remote_start: FIRST_CLIENT,
            dns: DNS,
        },
    )
    .expect("start pppoe-server guest");
    server
        .wait_ready(Duration::from_secs(30))
        .expect("pppoe-server ready");

    let mut opts = PppdOptions::new("alice@isp", "s3cret", auth);
    opts.ping = Some((SERVER_ADDR, 3));
    let started = Instant::now();
    let mut client = PppClient::start(c.name(), &ci, &scratch.sub(&format!("client-{tag}")), opts)
        .expect("start pppd guest");
    let info = client
        .wait_up(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\n--- server ---\n{}", server.log()));
    let up = started.elapsed();
    assert_eq!(info.local, FIRST_CLIENT, "client address from IPCP");
    assert_eq!(info.remote, SERVER_ADDR, "peer address from IPCP");
    assert_eq!(info.dns, DNS.to_vec(), "DNS from IPCP (RFC 1877)");

    let ping = client
        .ping_result(Duration::from_secs(30))
        .expect("ping through ppp0");
    assert!(
        ping.starts_with("3 packets transmitted, 3 received"),
        "ping over the session: {ping}"
    );

    let log = client.log();
    let proto = match auth {
        PppAuth::Pap => "PAP authentication succeeded",
        PppAuth::Chap => "CHAP authentication succeeded",
    };
    assert!(log.contains(proto), "client log lacks {proto:?}:\n{log}");
    assert!(
        log.contains("sent [LCP ConfReq id=0x1 <mru 1492>"),
        "client asks MRU 1492:\n{log}"
    );

    let stopping = Instant::now();
    client.stop(Duration::from_secs(30)).expect("client stop");
    let stopped = stopping.elapsed();
    let log = client.log();
    assert!(
        log.contains("sent [LCP TermReq"),
        "client sends LCP Terminate-Request on stop:\n{log}"
    );
    // pppd 2.4.9 ends with the LCP Terminate exchange; whether a PADT
    // follows is recorded, not required (none was seen on Debian 12).
    let mut padts = None;
    if let Some(mut t) = tcpdump.take() {
        t.stop();
        let pads = discovery(&pcap, 0x65);
        assert_eq!(pads.len(), 1, "one PADS: {pads:?}");
        padts = Some(discovery(&pcap, 0xa7).len());
    }
    let server_log = server.log();
    assert!(
        server_log.contains("rcvd [LCP TermReq"),
        "server receives the Terminate-Request:\n{server_log}"
    );
    if auth == PppAuth::Pap {
        // A wrong secret: the server refuses it, pppd gives up (maxfail 1)
        // and wait_up says so instead of waiting out its timeout.
        let mut bad = PppClient::start(
            c.name(),
            &ci,
            &scratch.sub(&format!("bad-{tag}")),
            PppdOptions::new("alice@isp", "wrong", auth),
        )
        .expect("start pppd guest");
        let failed = Instant::now();
        let err = bad
            .wait_up(Duration::from_secs(60))
            .expect_err("a wrong password must not bring the link up");
        assert!(
            failed.elapsed() < Duration::from_secs(30),
            "failure noticed late"
        );
        let log = bad.log();
        assert!(log.contains("PAP authentication failed"), "{err}\n{log}");
        bad.stop(Duration::from_secs(30)).expect("bad client stop");
    }
    server.stop(Duration::from_secs(30)).expect("server stop");
    note(&format!(
        "uml_pppd {auth:?}: start -> IPCP up {up:?}, stop -> guest off {stopped:?}, PADTs seen {padts:?}, guest stages {:?}, ping \"{ping}\"",
        client.stages()
    ));
}

#[test]
fn pppd_in_uml_against_pppoe_server() {
    if let Some(why) = pppoe_server_unavailable() {
        return skip("uml_pppd", &why);
    }
    let scratch = ScratchDir::new("uml-session");
    session(PppAuth::Pap, "p", &scratch);
    session(PppAuth::Chap, "c", &scratch);
}

/// The PPPoE discovery frames with `code` in a pcap (as tcpdump writes it:
/// little-endian, microsecond stamps, Ethernet): (capture time in seconds
/// since the epoch, session id, the payload after the 6-byte header).
fn discovery(pcap: &Path, code: u8) -> Vec<(f64, u16, Vec<u8>)> {
    let bytes = std::fs::read(pcap).unwrap_or_default();
    if bytes.len() >= 4 {
        assert_eq!(
            bytes[..4],
            [0xd4, 0xc3, 0xb2, 0xa1],
            "little-endian microsecond pcap"
        );
    }
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let word = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
        let (secs, usecs, caplen) = (word(at), word(at + 4), word(at + 8) as usize);
        let Some(frame) = bytes.get(at + 16..at + 16 + caplen) else {
            break;
        };
        at += 16 + caplen;
        // Ethernet (14) + PPPoE header (6): ver/type 0x11, code, session
        // id, length (RFC 2516 section 4).
        if frame.len() >= 20 && frame[12..14] == [0x88, 0x63] && frame[14..16] == [0x11, code] {
            let session = u16::from_be_bytes([frame[16], frame[17]]);
            let len = usize::from(u16::from_be_bytes([frame[18], frame[19]]));
            let payload = frame[20..]
                .get(..len)
                .expect("PPPoE length within the frame");
            out.push((
                f64::from(secs) + f64::from(usecs) / 1e6,
                session,
                payload.to_vec(),
            ));
        }
    }
    out
}

/// The Host-Uniq value of a PADI whose tags are exactly an empty
/// Service-Name then a Host-Uniq, as pppd's rp-pppoe plugin sends them.
fn host_uniq(payload: &[u8]) -> Vec<u8> {
    assert_eq!(
        payload[..4],
        [0x01, 0x01, 0x00, 0x00],
        "first tag: empty Service-Name (0x0101): {payload:02x?}"
    );
    assert_eq!(
        payload[4..6],
        [0x01, 0x03],
        "second tag: Host-Uniq (0x0103): {payload:02x?}"
    );
    let len = usize::from(u16::from_be_bytes([payload[6], payload[7]]));
    assert_eq!(payload.len(), 8 + len, "no other tags: {payload:02x?}");
    payload[8..].to_vec()
}

#[test]
fn pppd_padi_on_the_wire() {
    if let Some(why) = uml_unavailable() {
        return skip("uml_pppd padi", &why);
    }
    let (Some(_), Some(_)) = (which("tcpdump"), which("tshark")) else {
        return skip("uml_pppd padi", "`tcpdump` or `tshark` is not installed");
    };
    let scratch = ScratchDir::new("uml-padi");
    let (c, s, ci, si) = pair("d");
    let pcap = scratch.join("padi.pcap");
    let mut capture = capture(&s, &si, &pcap, scratch.join("tcpdump.log")).expect("tcpdump");

    let spawned = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let mut client = PppClient::start(
        c.name(),
        &ci,
        &scratch.sub("client"),
        PppdOptions::new("bob", "pw", PppAuth::Pap),
    )
    .expect("start pppd guest");
    // rp-pppoe waits 5 s for a PADO before it sends the PADI again.
    let deadline = Instant::now() + Duration::from_secs(30);
    let seen = loop {
        let seen = discovery(&pcap, 0x09);
        if seen.len() >= 2 || Instant::now() >= deadline {
            break seen;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    client.stop(Duration::from_secs(30)).expect("client stop");
    capture.stop();
    assert!(
        seen.len() >= 2,
        "expected a PADI and a retransmission, saw {seen:?}\n{}",
        client.log()
    );
    // An independent decoder finds nothing wrong with them.
    let flagged = std::process::Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args(["-Y", "_ws.malformed || _ws.expert"])
        .output()
        .expect("tshark");
    assert!(
        flagged.status.success() && flagged.stdout.is_empty(),
        "tshark flags frames: {}{}",
        String::from_utf8_lossy(&flagged.stdout),
        String::from_utf8_lossy(&flagged.stderr)
    );
    let (first, second) = (&seen[0], &seen[1]);
    assert_eq!((first.1, second.1), (0, 0), "PADIs carry session id 0");
    let uniq = host_uniq(&first.2);
    assert!(!uniq.is_empty(), "PADI carries a Host-Uniq value");
    assert_eq!(
        host_uniq(&second.2),
        uniq,
        "the retransmission keeps its Host-Uniq"
    );
    let gap = second.0 - first.0;
    assert!(
        (4.0..=7.0).contains(&gap),
        "retransmitted after about 5 s, not {gap:.2} s"
    );
    note(&format!(
        "uml_pppd padi: spawn -> first PADI {:.2} s, retransmit after {gap:.2} s, host-uniq {:02x?}, guest stages {:?}",
        first.0 - spawned,
        uniq,
        client.stages()
    ));
}

/// A test that fails half-way drops the client without `stop`: every host
/// process of the guest must be gone afterwards.
#[test]
fn dropping_the_client_kills_the_guest() {
    if let Some(why) = uml_unavailable() {
        return skip("uml_pppd drop", &why);
    }
    let scratch = ScratchDir::new("uml-drop");
    let (c, _s, ci, _si) = pair("k");
    let client = PppClient::start(
        c.name(),
        &ci,
        &scratch.sub("client"),
        PppdOptions::new("carol", "pw", PppAuth::Chap),
    )
    .expect("start pppd guest");
    let pgid = i32::try_from(client.pid()).expect("pid fits");
    // Long enough for UML to have forked its helper processes.
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: killpg with signal 0 only checks whether the group exists.
    assert_eq!(unsafe { libc::killpg(pgid, 0) }, 0, "the guest runs");
    drop(client);
    // The helpers die with SIGKILL but are reaped by whoever inherits them.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // SAFETY: killpg with signal 0 only checks whether the group exists.
        let alive = unsafe { libc::killpg(pgid, 0) } == 0;
        if !alive {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "processes of group {pgid} survive the drop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
