//! A PPPoE session across a restart of the control plane, with the real
//! client: pppd 2.4.9 (rp-pppoe plugin, `lcp-echo-interval 5`,
//! `lcp-echo-failure 3`) in a User-Mode Linux guest, through vbng-up.
//! While pppd pings the Internet host, vbng-cp is stopped and started again
//! on the same lease file: the session comes back with the same PPPoE
//! session id and address, pppd's ping loses nothing, and pppd keeps the
//! link for more than three of its echo intervals after the restart without
//! an unanswered echo (pppd does not log echoes once IPCP is up, so the
//! magic numbers are checked by the scripted client of `tests/pppoe.rs`);
//! when pppd ends (LCP Terminate) the session leaves both planes.
//!
//! Needs root, network namespaces, `linux.uml` with its modules and `pppd`;
//! prints a `SKIPPED:` line and passes without them.

use std::io::Write;
use std::time::{Duration, Instant};

use vbng_cp::lab::netns;
use vbng_cp::lab::topology::{INTERNET_HOST, Lab, PPP_PASSWORD, PPP_USER, Subscriber};
use vbng_cp::lab::uml::{PppAuth, PppClient, PppdOptions, uml_unavailable};
use vbng_cp::lab::{ScratchDir, find_binary};

/// Pings at pppd's 0.2 s interval: about 36 s, spanning the restart and
/// more than three of pppd's 5 s echo intervals after it.
const PINGS: u32 = 180;

fn skip(why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED: lab_pppoe_restart: {why}");
}

/// The one session, once it is active (and, if given, has `pppoe_id`).
fn active_session(lab: &Lab, pppoe_id: Option<u64>) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = lab.sessions().unwrap_or_default();
        if let [one] = s.as_slice()
            && one["state"] == "active"
            && pppoe_id.is_none_or(|id| one["pppoe_session_id"].as_u64() == Some(id))
        {
            return one.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no active PPPoE session: {s:?}\n{}",
            lab.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn pppd_session_survives_a_control_plane_restart() {
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
    let prefix = format!("vbr{}-", std::process::id());
    let dir = ScratchDir::new("pppoe-restart-lab");
    let mut lab = Lab::build(&prefix, &dir).expect("build the lab");
    lab.start_user_plane(&up_bin).expect("start vbng-up");
    lab.start_control_plane(&cp_bin).expect("start vbng-cp");
    lab.wait_associated(Duration::from_secs(15))
        .expect("PFCP association");
    let ns = lab.ns(Subscriber::One).name().to_string();
    let guest_dir = dir.sub("uml");
    let mut opts = PppdOptions::new(PPP_USER, PPP_PASSWORD, PppAuth::Chap);
    opts.ping = Some((INTERNET_HOST, PINGS));
    let mut client =
        PppClient::start(&ns, Subscriber::One.iface(), &guest_dir, opts).expect("boot pppd in UML");
    let info = client
        .wait_up(Duration::from_secs(40))
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", client.log(), lab.logs()));
    let before = active_session(&lab, None);
    let pppoe_id = before["pppoe_session_id"].as_u64().expect("a PPPoE id");
    assert_eq!(before["ipv4"], info.local.to_string(), "{before}");
    lab.wait_up_sessions(1, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_secs(3));

    lab.stop_daemon("vbng-cp");
    std::thread::sleep(Duration::from_secs(2));
    lab.start_control_plane(&cp_bin).expect("restart vbng-cp");
    let restarted = Instant::now();
    lab.wait_associated(Duration::from_secs(15))
        .expect("PFCP association after the restart");
    let after = active_session(&lab, Some(pppoe_id));
    assert_eq!(after["ipv4"], before["ipv4"], "{after}");
    assert_eq!(after["started"], before["started"], "{after}");
    lab.wait_up_sessions(1, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}"));

    let ping = client
        .ping_result(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", client.log(), lab.logs()));
    assert!(
        ping.contains(&format!(" {PINGS} received")),
        "ping through the restart: {ping}\n{}",
        lab.logs()
    );
    let _ = active_session(&lab, Some(pppoe_id));

    // pppd gives up after three unanswered echoes 5 s apart: still up
    // this long after the restart, its echoes were answered.
    let quiet = Duration::from_secs(22).saturating_sub(restarted.elapsed());
    std::thread::sleep(quiet);
    let _ = active_session(&lab, Some(pppoe_id));

    // pppd ends with LCP Terminate: handled by the restarted control plane.
    client
        .stop(Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}\n{}", client.log()));
    let log = client.log();
    assert!(!log.contains("No response to"), "{log}");
    assert!(log.contains("Terminating on signal 15"), "{log}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !lab.sessions().unwrap_or_default().is_empty() {
        assert!(
            Instant::now() < deadline,
            "session still listed\n{}",
            lab.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    lab.wait_up_sessions(0, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "lab_pppoe_restart: {ping}; pppd up {:.1?} after the restart",
        restarted.elapsed()
    );
    drop(client);
    drop(lab);
}
