//! PPPoE with the real client: pppd 2.4.9 (rp-pppoe plugin) in a User-Mode
//! Linux guest on subscriber 1's line, through vbng-up (AF_PACKET) with
//! vbng-cp answering discovery and PPP. With PAP and then CHAP against the
//! lab's subscriber file: pppd gets a pool address and the pool's DNS over
//! IPCP, pings the Internet host through the user plane's PPPoE fast path,
//! the session is listed with its PPPoE id and programmed on the user plane,
//! and when pppd ends (LCP Terminate) the session leaves both planes.
//!
//! Needs root, network namespaces, `linux.uml` with its modules and `pppd`;
//! prints a `SKIPPED:` line and passes without them.
//!
//! With `VBNG_PPPD_CAPTURE_DIR=<dir>` set (and `tcpdump` installed) the
//! subscriber's line is captured into `<dir>/pppd-pap.pcap` and
//! `<dir>/pppd-chap.pcap`: discovery and PPP control frames only, IP
//! packets left out, with each session held up long enough for LCP echoes
//! both ways. That is how `pppoe-ipoe/tests/data/` was made.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vbng_cp::lab::netns::which;
use vbng_cp::lab::procs::Daemon;
use vbng_cp::lab::topology::{INTERNET_HOST, Lab, PPP_PASSWORD, PPP_USER, Subscriber};
use vbng_cp::lab::uml::{PppAuth, PppClient, PppdOptions, uml_unavailable};
use vbng_cp::lab::{ScratchDir, find_binary, netns, wait_until};

/// Where to write the golden captures, when asked for.
const CAPTURE_DIR_VAR: &str = "VBNG_PPPD_CAPTURE_DIR";

/// Discovery frames and PPP session frames that do not carry IPv4 (libpcap
/// reads the PPP protocol after `pppoes`).
const CONTROL_FRAMES: &str = "pppoed or (pppoes and not ip)";

/// The server sends LCP Echo-Requests every 10 s (vbng-cp's default),
/// pppd every 5 s: a captured session stays up past both.
const CAPTURE_HOLD: Duration = Duration::from_secs(12);

fn skip(why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED: lab_pppoe: {why}");
}

/// tcpdump writing the control frames of `iface` in `ns` to `pcap`
/// (classic pcap format), returned once it listens.
fn capture_control_frames(ns: &str, iface: &str, pcap: &Path, log: PathBuf) -> Daemon {
    let tcpdump = which("tcpdump").expect("tcpdump, needed by VBNG_PPPD_CAPTURE_DIR");
    let pcap = pcap.display().to_string();
    let args = ["-i", iface, "-U", "-n", "-w", &pcap, CONTROL_FRAMES];
    let mut daemon = Daemon::start("tcpdump", ns, &tcpdump, &args, log).expect("start tcpdump");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !daemon.log_tail(5).contains("listening on") {
        daemon.check_running().expect("tcpdump running");
        assert!(Instant::now() < deadline, "tcpdump did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon
}

/// A 1500-byte ping with DF from the Internet host to the PPPoE subscriber at `to`, whose
/// session MTU is 1492: the user plane answers with ICMP fragmentation needed carrying
/// that MTU, which Linux's ping reports.
fn frag_needed_from_the_user_plane(lab: &Lab, to: std::net::Ipv4Addr) {
    let to = to.to_string();
    let args = ["-n", "-c", "1", "-W", "2", "-M", "do", "-s", "1472", &to];
    let text = lab
        .inet
        .stdout_of("ping", &args)
        .unwrap_or_else(|e| panic!("ping -M do -s 1472 {to}: {e}"));
    assert!(
        text.contains("From 198.51.100.2") && text.contains("Frag needed and DF set (mtu = 1492)"),
        "Internet host's 1500-byte DF ping: {text}\n{}",
        lab.logs()
    );
    // The worker publishes its counters every 100 ms.
    let counted = wait_until(Duration::from_secs(3), || {
        lab.up_metric("vbng_up_icmp_errors_sent_total").unwrap() >= 1.0
    });
    assert!(counted, "vbng_up_icmp_errors_sent_total stayed 0");
}

#[test]
fn pppd_in_uml_gets_a_session_through_vbng_and_ends_it() {
    if let Some(why) = netns::lab_unavailable() {
        skip(&why);
        return;
    }
    if let Some(why) = uml_unavailable() {
        skip(&why);
        return;
    }
    let up_bin = find_binary("vbng-up").expect("vbng-up binary");
    let cp_bin = find_binary("vbng-cp").expect("vbng-cp binary");
    let prefix = format!("vbp{}-", std::process::id());
    let dir = ScratchDir::new("pppoe-lab");
    let mut lab = Lab::build(&prefix, &dir).expect("build the lab");
    lab.start_user_plane(&up_bin).expect("start vbng-up");
    lab.start_control_plane(&cp_bin).expect("start vbng-cp");
    lab.wait_associated(Duration::from_secs(15))
        .expect("PFCP association");
    let ns = lab.ns(Subscriber::One).name().to_string();
    let capture_dir = std::env::var_os(CAPTURE_DIR_VAR).map(PathBuf::from);

    for (n, auth) in [PppAuth::Pap, PppAuth::Chap].into_iter().enumerate() {
        let guest_dir = dir.sub(&format!("uml-{n}"));
        let mut tcpdump = capture_dir.as_ref().map(|out| {
            let name = format!("pppd-{}.pcap", format!("{auth:?}").to_lowercase());
            capture_control_frames(
                &ns,
                Subscriber::One.iface(),
                &out.join(name),
                dir.join(format!("tcpdump-{n}.log")),
            )
        });
        let mut opts = PppdOptions::new(PPP_USER, PPP_PASSWORD, auth);
        opts.ping = Some((INTERNET_HOST, 3));
        let started = Instant::now();
        let mut client = PppClient::start(&ns, Subscriber::One.iface(), &guest_dir, opts)
            .expect("boot pppd in UML");
        let info = client
            .wait_up(Duration::from_secs(40))
            .unwrap_or_else(|e| panic!("{auth:?}: {e}\n{}\n{}", client.log(), lab.logs()));
        let up_after = started.elapsed();
        assert_eq!(info.local.octets()[..3], [100, 64, 0], "{info:?}");
        assert_eq!(info.remote.to_string(), "100.64.0.1", "{info:?}");
        assert_eq!(
            info.dns.first().map(|d| d.to_string()).as_deref(),
            Some("192.0.2.53")
        );
        let ping = client
            .ping_result(Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("{e}\n{}", client.log()));
        assert!(
            ping.contains(" 3 received"),
            "{auth:?}: ping through the session: {ping}\n{}",
            lab.logs()
        );

        let sessions = lab
            .wait_sessions(1, Duration::from_secs(15))
            .unwrap_or_else(|e| panic!("{e}"));
        let s = &sessions[0];
        assert_eq!(s["state"], "active", "{s}");
        assert!(
            s["pppoe_session_id"].as_u64().is_some_and(|id| id > 0),
            "{s}"
        );
        assert_eq!(s["aaa"]["username"], PPP_USER, "{s}");
        assert_eq!(s["ipv4"], info.local.to_string(), "{s}");
        lab.wait_up_sessions(1, Duration::from_secs(15))
            .unwrap_or_else(|e| panic!("{e}"));
        if n == 0 {
            frag_needed_from_the_user_plane(&lab, info.local);
        }
        if tcpdump.is_some() {
            std::thread::sleep(CAPTURE_HOLD);
        }

        // pppd ends with LCP Terminate (it sends no PADT): the session
        // leaves the control plane and the user plane.
        client
            .stop(Duration::from_secs(15))
            .unwrap_or_else(|e| panic!("{e}\n{}", client.log()));
        lab.wait_sessions(0, Duration::from_secs(15))
            .unwrap_or_else(|e| panic!("{e}"));
        lab.wait_up_sessions(0, Duration::from_secs(15))
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(mut t) = tcpdump.take() {
            // The PADT that follows the Terminate-Ack is on its way out.
            std::thread::sleep(Duration::from_millis(500));
            t.stop();
        }
        println!("lab_pppoe: {auth:?}: IPCP up {up_after:.1?} after boot, {info:?}; {ping}");
        drop(client);
    }
    drop(lab);
}
