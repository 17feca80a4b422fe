//! A PADI storm does not slow down a PPPoE session that is already up
//! (issue 6 item 3), with the real client: pppd 2.4.9 in a User-Mode Linux
//! guest on subscriber 1's line holds a session through vbng-up and
//! vbng-cp while a raw socket on the same line blasts PADIs (thousands of
//! source MACs interleaved with one MAC repeating) for several seconds.
//! Pings from the Internet host to pppd's address measure the user plane
//! before and during the storm; pppd's LCP echoes must all be answered, the
//! control plane must count the PADIs it dropped, and after the storm a
//! second pppd (subscriber 2's line) must still get a session.
//!
//! Needs root, network namespaces, `linux.uml` with its modules, `pppd` and
//! `tcpdump`; prints a `SKIPPED:` line and passes without them.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use vbng_access::pppoe::wire::{self as pppoe_wire, Code, Tag};
use vbng_cp::lab::netns::which;
use vbng_cp::lab::procs::Daemon;
use vbng_cp::lab::rawpkt::send_paced;
use vbng_cp::lab::topology::{
    CP_API, Lab, PPP_PASSWORD, PPP_USER, Subscriber, UP_METRICS, metric_value,
};
use vbng_cp::lab::uml::{PppAuth, PppClient, PppdOptions, uml_unavailable};
use vbng_cp::lab::{ScratchDir, find_binary, netns};

/// How long the storm lasts: over two of pppd's 5 s LCP echo intervals.
const STORM: Duration = Duration::from_secs(12);
/// PADIs sent per pacing step, and the pause after each step; about
/// 10,000 PADIs per second offered, twenty times the CP's per-port limit.
const STORM_BATCH: usize = 100;
const STORM_PAUSE: Duration = Duration::from_millis(10);
/// The one MAC that repeats through the storm (the per-MAC limiter's case);
/// every other PADI comes from a MAC of its own (the per-port limiter's).
const REPEATING_MAC: [u8; 6] = [0x02, 0x66, 0, 0, 0, 1];

/// Seconds between pings (as ping takes it), and the pings measured
/// before the storm.
const PING_INTERVAL: &str = "0.1";
const BASELINE_PINGS: u32 = 40;

fn skip(why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED: lab_pppoe_storm: {why}");
}

fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// LCP Echo-Request (9) and Echo-Reply (10) frames: PPPoE session
/// EtherType, PPP protocol 0xc021 at offset 20 and the LCP code after it
/// (libpcap's `ether[]` counts from the Ethernet header). The kernel
/// filters, so the storm's PADIs never reach tcpdump.
const LCP_ECHOES: &str =
    "ether proto 0x8864 and ether[20:2] = 0xc021 and (ether[22] = 9 or ether[22] = 10)";

/// tcpdump writing the LCP echoes of `iface` in `ns` to `pcap`, returned
/// once it listens. (pppd's own log is no live witness: in these runs it
/// showed nothing past `ip-up` while the link was up.)
fn capture_lcp_echoes(ns: &str, iface: &str, pcap: &Path, log: PathBuf) -> Daemon {
    let tcpdump = which("tcpdump").expect("tcpdump");
    let pcap = pcap.display().to_string();
    let args = ["-i", iface, "-U", "-n", "-w", &pcap, LCP_ECHOES];
    let mut daemon = Daemon::start("tcpdump", ns, &tcpdump, &args, log).expect("start tcpdump");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !daemon.log_tail(5).contains("listening on") {
        daemon.check_running().expect("tcpdump running");
        assert!(Instant::now() < deadline, "tcpdump did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon
}

/// One LCP echo on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Echo {
    src: [u8; 6],
    dst: [u8; 6],
    reply: bool,
    id: u8,
}

/// The LCP echoes in a classic pcap file as tcpdump writes it
/// (little-endian, Ethernet), in capture order.
fn read_echoes(pcap: &Path) -> Vec<Echo> {
    let bytes = std::fs::read(pcap).unwrap_or_else(|e| panic!("{}: {e}", pcap.display()));
    assert!(
        bytes.len() >= 24 && bytes[..4] == [0xd4, 0xc3, 0xb2, 0xa1],
        "{}: not a little-endian classic pcap",
        pcap.display()
    );
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let mut echoes = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen = word(at + 8) as usize;
        let Some(frame) = bytes.get(at + 16..at + 16 + caplen) else {
            break;
        };
        at += 16 + caplen;
        if frame.len() > 23 {
            echoes.push(Echo {
                dst: frame[..6].try_into().expect("6 bytes"),
                src: frame[6..12].try_into().expect("6 bytes"),
                reply: frame[22] == 10,
                id: frame[23],
            });
        }
    }
    echoes
}

/// Per sender: (Echo-Requests sent, of which answered by the other side).
/// A request that is the capture's last frame is left out: its answer may
/// have come after the capture stopped.
fn echo_tally(echoes: &[Echo]) -> BTreeMap<[u8; 6], (usize, usize)> {
    let mut tally = BTreeMap::new();
    let complete = &echoes[..echoes.len().saturating_sub(1)];
    let ends_with_reply = echoes.last().is_some_and(|e| e.reply);
    let echoes = if ends_with_reply { echoes } else { complete };
    for (n, req) in echoes.iter().enumerate().filter(|(_, e)| !e.reply) {
        let answered = echoes[n + 1..]
            .iter()
            .any(|r| r.reply && r.id == req.id && r.src == req.dst && r.dst == req.src);
        let entry = tally.entry(req.src).or_insert((0, 0));
        entry.0 += 1;
        entry.1 += usize::from(answered);
    }
    tally
}

/// What one ping run measured.
#[derive(Debug, Clone, Copy)]
struct PingStats {
    transmitted: u32,
    received: u32,
    avg_ms: f64,
    max_ms: f64,
}

impl PingStats {
    fn lost(&self) -> u32 {
        self.transmitted - self.received
    }
}

impl std::fmt::Display for PingStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} answered, rtt avg {:.3} ms max {:.3} ms",
            self.received, self.transmitted, self.avg_ms, self.max_ms
        )
    }
}

/// Pings `to` `count` times from namespace `ns`; loss is a measurement
/// here, not a failure, so ping's exit status is not checked.
fn ping(ns: &str, to: Ipv4Addr, count: u32) -> PingStats {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-n", "-q", "-W", "1"])
        .args([
            "-i",
            PING_INTERVAL,
            "-c",
            &count.to_string(),
            &to.to_string(),
        ])
        .output()
        .expect("run ping");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    parse_ping(&text).unwrap_or_else(|| panic!("ping printed no summary:\n{text}"))
}

/// Reads ping's summary: "N packets transmitted, M received, ..." and
/// "rtt min/avg/max/mdev = a/b/c/d ms" (absent when nothing came back).
fn parse_ping(text: &str) -> Option<PingStats> {
    let counts = text.lines().find(|l| l.contains("packets transmitted"))?;
    let mut words = counts.split_whitespace();
    let transmitted = words.next()?.parse().ok()?;
    let received = words.nth(2)?.parse().ok()?;
    let rtt: Vec<f64> = text
        .lines()
        .find_map(|l| l.strip_prefix("rtt min/avg/max/mdev = "))
        .and_then(|l| l.split_whitespace().next())
        .map(|v| v.split('/').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_default();
    Some(PingStats {
        transmitted,
        received,
        avg_ms: rtt.get(1).copied().unwrap_or(f64::NAN),
        max_ms: rtt.get(2).copied().unwrap_or(f64::NAN),
    })
}

/// The storm's frames: broadcast PADIs with an empty Service-Name,
/// alternately from a MAC of their own and from [`REPEATING_MAC`].
fn padi_storm(count: usize) -> Vec<Vec<u8>> {
    let padi = pppoe_wire::emit(
        Code::Padi,
        0,
        &pppoe_wire::emit_tags(&[Tag::ServiceName(Vec::new())]),
    );
    (0..count)
        .map(|n| {
            let src = if n % 2 == 0 {
                let [_, a, b, c] = u32::try_from(n).expect("storm size").to_be_bytes();
                [0x02, 0x55, 0, a, b, c]
            } else {
                REPEATING_MAC
            };
            let mut frame = Vec::with_capacity(14 + padi.len());
            frame.extend_from_slice(&[0xff; 6]);
            frame.extend_from_slice(&src);
            frame.extend_from_slice(&pppoe_wire::ETHERTYPE_DISCOVERY.to_be_bytes());
            frame.extend_from_slice(&padi);
            frame
        })
        .collect()
}

/// The counters the storm moves, on both planes.
#[derive(Debug, Clone, Default)]
struct StormCounters {
    /// Frames vbng-up received on subscriber 1's port, and lost there.
    up_port_rx: f64,
    up_port_rx_lost: f64,
    /// Frames vbng-up sent to the control plane, and dropped on the way.
    up_redirected: f64,
    up_redirect_queue_drops: f64,
    /// Frames that reached vbng-cp.
    cp_redirect_in: f64,
    /// Dropped by vbng-cp's per-MAC limiter in front of every service.
    cp_redirect_rate_limited: f64,
    /// PADIs dropped by the discovery server's per-MAC and per-port limits.
    cp_padi_rate_limited: f64,
    /// vbng-up's drops by reason.
    up_drops: BTreeMap<String, f64>,
}

impl StormCounters {
    fn read(lab: &Lab) -> StormCounters {
        let cp = lab
            .http_get(&format!("{CP_API}/metrics"))
            .expect("vbng-cp metrics");
        let cp_metric = |series: &str| metric_value(&cp, series).unwrap_or(0.0);
        let up = lab.http_get(UP_METRICS).expect("vbng-up metrics");
        let up_metric = |series: &str| metric_value(&up, series).unwrap_or(0.0);
        let up_drops = up
            .lines()
            .filter_map(|l| l.strip_prefix("vbng_up_drops_total{reason=\""))
            .filter_map(|l| {
                let (reason, value) = l.split_once("\"} ")?;
                Some((reason.to_owned(), value.trim().parse().ok()?))
            })
            .collect();
        StormCounters {
            up_drops,
            up_port_rx: up_metric("vbng_up_port_rx_packets_total{port=\"acc0\"}"),
            up_port_rx_lost: up_metric("vbng_up_port_rx_lost_total{port=\"acc0\"}"),
            up_redirected: up_metric("vbng_up_redirected_total"),
            up_redirect_queue_drops: up_metric("vbng_up_redirect_queue_drops_total"),
            cp_redirect_in: cp_metric("vbng_cp_redirect_frames_in_total"),
            cp_redirect_rate_limited: cp_metric("vbng_cp_redirect_rate_limited_total"),
            cp_padi_rate_limited: cp_metric("vbng_cp_pppoe_dropped_total{reason=\"rate_limited\"}"),
        }
    }

    fn since(self, before: &StormCounters) -> StormCounters {
        let up_drops = self
            .up_drops
            .iter()
            .map(|(reason, n)| {
                (
                    reason.clone(),
                    n - before.up_drops.get(reason).unwrap_or(&0.0),
                )
            })
            .filter(|(_, n)| *n != 0.0)
            .collect();
        StormCounters {
            up_drops,
            up_port_rx: self.up_port_rx - before.up_port_rx,
            up_port_rx_lost: self.up_port_rx_lost - before.up_port_rx_lost,
            up_redirected: self.up_redirected - before.up_redirected,
            up_redirect_queue_drops: self.up_redirect_queue_drops - before.up_redirect_queue_drops,
            cp_redirect_in: self.cp_redirect_in - before.cp_redirect_in,
            cp_redirect_rate_limited: self.cp_redirect_rate_limited
                - before.cp_redirect_rate_limited,
            cp_padi_rate_limited: self.cp_padi_rate_limited - before.cp_padi_rate_limited,
        }
    }
}

#[test]
fn padi_storm_leaves_a_pppd_session_undisturbed() {
    if let Some(why) = netns::lab_unavailable() {
        return skip(&why);
    }
    if let Some(why) = uml_unavailable() {
        return skip(&why);
    }
    if which("tcpdump").is_none() {
        return skip("`tcpdump` is not installed (it watches the LCP echoes)");
    }
    let up_bin = find_binary("vbng-up").expect("vbng-up binary");
    let cp_bin = find_binary("vbng-cp").expect("vbng-cp binary");
    let prefix = format!("vbs{}-", std::process::id());
    let dir = ScratchDir::new("pppoe-storm");
    let mut lab = Lab::build(&prefix, &dir).expect("build the lab");
    lab.start_user_plane(&up_bin).expect("start vbng-up");
    lab.start_control_plane(&cp_bin).expect("start vbng-cp");
    lab.wait_associated(Duration::from_secs(15))
        .expect("PFCP association");
    let sub1 = lab.ns(Subscriber::One).name().to_owned();
    let inet = lab.inet.name().to_owned();

    let guest_dir = dir.sub("uml-victim");
    let opts = PppdOptions::new(PPP_USER, PPP_PASSWORD, PppAuth::Chap);
    let mut victim = PppClient::start(&sub1, Subscriber::One.iface(), &guest_dir, opts)
        .expect("boot pppd in UML");
    let info = victim
        .wait_up(Duration::from_secs(40))
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", victim.log(), lab.logs()));
    lab.wait_sessions(1, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}"));

    let before = ping(&inet, info.local, BASELINE_PINGS);
    assert!(
        before.lost() == 0,
        "pings lost before any storm: {before}\n{}",
        lab.logs()
    );
    let echoes_pcap = dir.join("lcp-echoes.pcap");
    let mut tcpdump = capture_lcp_echoes(
        &sub1,
        Subscriber::One.iface(),
        &echoes_pcap,
        dir.join("tcpdump.log"),
    );
    let counters_before = StormCounters::read(&lab);

    let frames_per_second = STORM_BATCH as f64 / STORM_PAUSE.as_secs_f64();
    let frames = padi_storm((frames_per_second * STORM.as_secs_f64()) as usize);
    let sent = frames.len();
    let storm_started = Instant::now();
    let storm = {
        let sub1 = sub1.clone();
        std::thread::spawn(move || {
            send_paced(
                &sub1,
                Subscriber::One.iface(),
                frames,
                STORM_BATCH,
                STORM_PAUSE,
            )
        })
    };
    // Measure inside the storm: start once it runs, end before it does.
    std::thread::sleep(Duration::from_secs(1));
    let pings_in_storm = (STORM.as_secs_f64() * 0.75 / 0.1) as u32;
    let during = ping(&inet, info.local, pings_in_storm);
    storm
        .join()
        .expect("storm thread")
        .expect("send the PADI storm");
    let storm_took = storm_started.elapsed();
    // Long enough for an Echo-Reply to the last Echo-Request of the storm.
    std::thread::sleep(Duration::from_secs(1));
    tcpdump.stop();
    let counters = StormCounters::read(&lab).since(&counters_before);
    let tally = echo_tally(&read_echoes(&echoes_pcap));
    let tally_text: Vec<String> = tally
        .iter()
        .map(|(mac, (sent, answered))| {
            let mac: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
            format!("{}: {sent} sent, {answered} answered", mac.join(":"))
        })
        .collect();

    note(&format!(
        "lab_pppoe_storm: {sent} PADIs in {storm_took:.1?} ({:.0}/s offered); \
         ping before: {before}; during: {during}; \
         LCP Echo-Requests during the storm by sender: {}; {counters:?}",
        sent as f64 / storm_took.as_secs_f64(),
        tally_text.join(", "),
    ));

    // pppd is still connected: it has not exited, the control plane still
    // holds its session, and every LCP Echo-Request on the line, pppd's
    // (every 5 s) and vbng-cp's (every 10 s), was answered.
    assert!(
        !guest_dir.join("pppd.exit").exists(),
        "pppd ended during the storm:\n{}",
        victim.log()
    );
    let sessions = lab
        .wait_sessions(1, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sessions[0]["state"], "active", "{}", sessions[0]);
    let most = tally.values().map(|(sent, _)| *sent).max().unwrap_or(0);
    assert!(
        most >= 2,
        "at most {most} LCP Echo-Requests from one side in a {storm_took:?} storm, expected pppd's every 5 s: {tally_text:?}"
    );
    assert!(
        tally.values().all(|(sent, answered)| sent == answered),
        "LCP Echo-Requests went unanswered during the storm: {tally_text:?}"
    );
    // The user plane's path is undisturbed: at most one ping lost, and
    // round trips not much slower than before (generous: the storm's sender,
    // both planes and the UML guest share the machine's CPUs).
    assert!(
        during.lost() <= 1,
        "pings lost in the storm: {during} (before: {before})"
    );
    let rtt_bound_ms = before.avg_ms * 5.0 + 5.0;
    assert!(
        during.avg_ms <= rtt_bound_ms,
        "round trips slowed down in the storm: {during}, before: {before} (bound {rtt_bound_ms:.3} ms)"
    );
    // The control plane counted what it dropped: of the PADIs that reached
    // it, at most the port's 500 a second (plus a second's burst and the
    // session's own frames) were answered.
    assert!(
        counters.cp_padi_rate_limited > 0.0,
        "vbng_cp_pppoe_dropped_total{{reason=\"rate_limited\"}} did not move: {counters:?}"
    );
    let answered =
        counters.cp_redirect_in - counters.cp_redirect_rate_limited - counters.cp_padi_rate_limited;
    let allowed = 500.0 * (storm_took.as_secs_f64() + 2.0) + 100.0;
    assert!(
        answered <= allowed,
        "the control plane answered {answered} of the storm's frames, at most {allowed} expected: {counters:?}\n{}",
        lab.logs()
    );

    // The storm left nothing behind: a second pppd, on the other line, gets
    // its session next to the first.
    let second_dir = dir.sub("uml-second");
    let sub2 = lab.ns(Subscriber::Two).name().to_owned();
    let opts = PppdOptions::new(PPP_USER, PPP_PASSWORD, PppAuth::Pap);
    let mut second = PppClient::start(&sub2, Subscriber::Two.iface(), &second_dir, opts)
        .expect("boot the second pppd in UML");
    let second_info = second
        .wait_up(Duration::from_secs(40))
        .unwrap_or_else(|e| panic!("second pppd: {e}\n{}\n{}", second.log(), lab.logs()));
    assert_ne!(second_info.local, info.local, "two sessions, two addresses");
    lab.wait_sessions(2, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}"));
    let after = ping(&inet, second_info.local, 10);
    assert_eq!(after.lost(), 0, "second session's pings: {after}");
    note(&format!(
        "lab_pppoe_storm: second pppd up at {} after the storm; ping {after}",
        second_info.local
    ));

    second
        .stop(Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}\n{}", second.log()));
    victim
        .stop(Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}\n{}", victim.log()));
    lab.wait_sessions(0, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}"));
    drop((second, victim, lab));
}

#[test]
fn ping_summaries_parse() {
    let text = "PING 100.64.0.10 (100.64.0.10) 56(84) bytes of data.\n\n\
                --- 100.64.0.10 ping statistics ---\n\
                40 packets transmitted, 39 received, 2.5% packet loss, time 3904ms\n\
                rtt min/avg/max/mdev = 0.211/0.402/1.734/0.219 ms\n";
    let s = parse_ping(text).expect("summary");
    assert_eq!((s.transmitted, s.received, s.lost()), (40, 39, 1));
    assert_eq!((s.avg_ms, s.max_ms), (0.402, 1.734));
    let none = "3 packets transmitted, 0 received, 100% packet loss, time 2030ms\n";
    let s = parse_ping(none).expect("summary without rtt");
    assert_eq!(s.received, 0);
    assert!(s.avg_ms.is_nan());
}
