//! RADIUS with real traffic: dhclient and iperf3 through vbng-up, vbng-cp
//! authorizing the subscriber against FreeRADIUS 3.2 (both in the BNG
//! namespace), `radclient` CoA changing the measured rate, the detail file
//! holding the user plane's byte counts, and `radclient` Disconnect ending
//! the session.
//!
//! Needs root, network namespaces, dhclient, iperf3 and FreeRADIUS; prints
//! a `SKIPPED:` line and passes without them.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::Value;
use vbng_aaa::lab::{DetailRecord, FreeRadius, FreeRadiusOptions};
use vbng_cp::lab::topology::{Lab, SUB1_MAC, Subscriber};
use vbng_cp::lab::{ScratchDir, find_binary, netns};

const MBIT: f64 = 1e6;
const COA_SECRET: &str = "lab-coa-secret";
const COA_PORT: u16 = 3799;

/// `radclient` against vbng-cp's CoA server; see [`Lab::radclient`].
fn radclient(lab: &Lab, fr: &FreeRadius, kind: &str, attrs: &str) -> String {
    lab.radclient(
        fr.dir(),
        &format!("127.0.0.1:{COA_PORT}"),
        kind,
        COA_SECRET,
        attrs,
    )
    .expect("radclient")
}

fn skip(why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED: lab_radius: {why}");
}

fn users() -> String {
    format!(
        "\"{SUB1_MAC}\"\tCleartext-Password := \"vbng\"\n\
         \tvbng-Rate-Up-Kbps := 10000,\n\
         \tvbng-Rate-Down-Kbps := 10000,\n\
         \tAcct-Interim-Interval := 2,\n\
         \tClass := \"lab-gold\"\n"
    )
}

fn received(report: &Value) -> (f64, u64) {
    let sum = &report["end"]["sum_received"];
    (
        sum["bits_per_second"]
            .as_f64()
            .unwrap_or_else(|| panic!("no rate: {report}")),
        sum["bytes"]
            .as_u64()
            .unwrap_or_else(|| panic!("no bytes: {report}")),
    )
}

fn wait_record(fr: &FreeRadius, what: &str, f: impl Fn(&DetailRecord) -> bool) -> DetailRecord {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(r) = fr.detail_records().into_iter().find(|r| f(r)) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} in the detail file: {:#?}",
            fr.detail_records()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn num(r: &DetailRecord, name: &str) -> u64 {
    r.get(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing in {r:#?}"))
}

/// Octets with their Gigawords.
fn octets(r: &DetailRecord, dir: &str) -> u64 {
    num(r, &format!("Acct-{dir}-Octets")) + (num(r, &format!("Acct-{dir}-Gigawords")) << 32)
}

#[test]
fn radius_subscriber_rate_changes_by_coa_and_is_accounted_and_disconnected() {
    if let Some(why) = netns::lab_unavailable() {
        skip(&why);
        return;
    }
    if netns::which("iperf3").is_none() || netns::which("radclient").is_none() {
        skip("iperf3 or radclient (freeradius-utils) is not installed");
        return;
    }
    if !FreeRadius::available() {
        skip("FreeRADIUS is not installed (apt-get install freeradius)");
        return;
    }
    let up_bin = find_binary("vbng-up").expect("vbng-up binary");
    let cp_bin = find_binary("vbng-cp").expect("vbng-cp binary");
    let prefix = format!("vbr{}-", std::process::id());
    let dir = ScratchDir::new("radius-lab");
    let mut lab = Lab::build(&prefix, &dir).expect("build the lab");

    // FreeRADIUS in the BNG namespace, on its loopback, next to vbng-cp.
    let fr = netns::in_netns(lab.bng().name(), || {
        let mut fr = FreeRadius::start(FreeRadiusOptions {
            users: users(),
            ..FreeRadiusOptions::default()
        })?;
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(fr.wait_ready())?;
        Ok::<_, vbng_aaa::lab::LabError>(fr)
    })
    .expect("enter the BNG namespace")
    .expect("start FreeRADIUS");
    let secret = String::from_utf8(fr.secret().to_vec()).unwrap();
    let config = dir.join("vbng-cp-radius.toml");
    std::fs::write(
        &config,
        format!(
            "[aaa]\nbackend = \"radius\"\n\n[radius]\naccounting_spool = \"{spool}\"\n\
             min_interim_s = 1\ntimeout_ms = 500\n\n\
             [[radius.auth_servers]]\naddress = \"{auth}\"\nsecret = \"{secret}\"\n\n\
             [[radius.acct_servers]]\naddress = \"{acct}\"\nsecret = \"{secret}\"\n\n\
             [radius.coa]\nlisten = \"127.0.0.1:{COA_PORT}\"\n\n\
             [[radius.coa.clients]]\naddress = \"127.0.0.1\"\nsecret = \"{COA_SECRET}\"\n",
            spool = dir.join("accounting.spool").display(),
            auth = fr.auth_addr(),
            acct = fr.acct_addr(),
        ),
    )
    .unwrap();
    lab.start_user_plane(&up_bin).expect("start vbng-up");
    lab.start_control_plane_with(&cp_bin, &["--config", &config.display().to_string()])
        .expect("start vbng-cp");
    lab.wait_associated(Duration::from_secs(15))
        .expect("PFCP association");
    lab.dhcp(Subscriber::One)
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.logs()));
    lab.start_iperf_server().expect("iperf3 server");
    let sessions = lab.sessions().expect("sessions");
    let session = &sessions[0];
    assert_eq!(session["aaa"]["authentic"], "radius", "{session}");
    assert_eq!(
        session["rate"]["down_kbps"].as_u64(),
        Some(10_000),
        "{session}"
    );
    let acct_id = session["aaa"]["acct_session_id"]
        .as_str()
        .expect("Acct-Session-Id")
        .to_string();
    let is = |r: &DetailRecord, status: &str| {
        r.get("Acct-Status-Type") == Some(status)
            && r.get("Acct-Session-Id").map(|v| v.trim_matches('"')) == Some(acct_id.as_str())
    };
    wait_record(&fr, "Start", |r| is(r, "Start"));

    // The Access-Accept's 10 Mbit/s, measured by the receiver.
    let (before, bytes1) = received(
        &lab.iperf(Subscriber::One, true, 3, 0.5, 1)
            .expect("iperf3 -R"),
    );
    assert!(
        (9.0 * MBIT..=10.3 * MBIT).contains(&before),
        "downlink from the Access-Accept (10 Mbit/s) measured {:.2} Mbit/s",
        before / MBIT
    );

    // CoA from radclient: 20 Mbit/s, then measured.
    let out = radclient(
        &lab,
        &fr,
        "coa",
        &format!(
            "Acct-Session-Id = \"{acct_id}\", vbng-Rate-Down-Kbps = 20000, vbng-Rate-Up-Kbps = 20000"
        ),
    );
    assert!(out.contains("CoA-ACK"), "{out}\n{}", lab.logs());
    let (after, bytes2) = received(
        &lab.iperf(Subscriber::One, true, 3, 0.5, 1)
            .expect("iperf3 -R"),
    );
    assert!(
        (18.0 * MBIT..=20.5 * MBIT).contains(&after),
        "downlink after the CoA to 20 Mbit/s measured {:.2} Mbit/s",
        after / MBIT
    );

    // An Interim-Update that has seen the transfers: its downlink octets
    // cover what iperf3 received (TCP payload; the user plane counts IP
    // packets, so somewhat more).
    let payload = bytes1 + bytes2;
    let interim = wait_record(&fr, "Interim-Update after the transfers", |r| {
        is(r, "Interim-Update") && octets(r, "Output") >= payload
    });
    assert!(
        octets(&interim, "Output") < payload * 13 / 10 + 10_000_000,
        "interim downlink octets {} for {payload} payload bytes",
        octets(&interim, "Output")
    );

    // Disconnect from radclient: the session ends and the Stop carries the
    // final counters.
    let out = radclient(
        &lab,
        &fr,
        "disconnect",
        &format!("Acct-Session-Id = \"{acct_id}\""),
    );
    assert!(out.contains("Disconnect-ACK"), "{out}\n{}", lab.logs());
    lab.wait_sessions(0, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("the session outlived its Disconnect: {e}"));
    let stop = wait_record(&fr, "Stop", |r| is(r, "Stop"));
    assert_eq!(
        stop.get("Acct-Terminate-Cause"),
        Some("Admin-Reset"),
        "{stop:#?}"
    );
    let down = octets(&stop, "Output");
    assert!(
        down >= payload && down >= octets(&interim, "Output"),
        "Stop downlink octets {down} for {payload} payload bytes"
    );
    let ping = lab.ping_internet(Subscriber::One, 2);
    assert!(
        ping.is_err() || ping.as_ref().is_ok_and(|o| o.contains(" 0 received")),
        "traffic still forwarded after the Disconnect: {ping:?}"
    );
    println!(
        "lab_radius: 10 Mbit/s from the Access-Accept measured {:.2}; after CoA to 20 Mbit/s {:.2}; \
         Stop downlink octets {down} for {payload} iperf3 payload bytes",
        before / MBIT,
        after / MBIT
    );
    drop(lab);
    drop(fr);
}
