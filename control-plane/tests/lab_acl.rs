//! ACLs with real traffic: FreeRADIUS gives the subscriber a Filter-Id, vbng-cp
//! names it to vbng-up over PFCP, and the user plane's ACL blocks exactly the
//! matching TCP flow while others pass; `radclient` CoA swaps the ACL live
//! (and an ACL the user plane lacks is NAKed with Error-Cause 407); a SIGHUP
//! reloads the ACL file and the new rules apply to the running session.
//!
//! Needs root, network namespaces, dhclient, iperf3, bash and FreeRADIUS;
//! prints a `SKIPPED:` line and passes without them.

use std::io::Write;
use std::time::{Duration, Instant};

use vbng_aaa::lab::{FreeRadius, FreeRadiusOptions};
use vbng_cp::lab::topology::{Lab, SUB1_MAC, Subscriber};
use vbng_cp::lab::{ScratchDir, find_binary, netns};

const COA_SECRET: &str = "lab-coa-secret";
const COA_PORT: u16 = 3799;
/// The lab's iperf3 server: always allowed unless the reloaded file says otherwise.
const ALLOWED_PORT: u16 = 5201;
/// A second service the subscriber's first ACL blocks.
const BLOCKED_PORT: u16 = 5202;

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
    let _ = writeln!(std::io::stderr(), "SKIPPED: lab_acl: {why}");
}

fn acl_file(open_blocks: Option<u16>) -> String {
    let open_rule = open_blocks.map_or(String::new(), |port| {
        format!("[[acl.ingress]]\naction = \"deny\"\nprotocol = \"tcp\"\ndst_port = {port}\n")
    });
    format!(
        "global = \"lab-global\"\n\n\
         [[acl]]\nname = \"lab-global\"\n\
         [[acl.ingress]]\naction = \"deny\"\nprotocol = \"tcp\"\ndst_port = 25\n\n\
         [[acl]]\nname = \"block-{BLOCKED_PORT}\"\n\
         [[acl.ingress]]\naction = \"deny\"\nprotocol = \"tcp\"\ndst_port = {BLOCKED_PORT}\n\n\
         [[acl]]\nname = \"open\"\n{open_rule}"
    )
}

fn users() -> String {
    format!(
        "\"{SUB1_MAC}\"\tCleartext-Password := \"vbng\"\n\
         \tFilter-Id := \"block-{BLOCKED_PORT}\"\n"
    )
}

/// Waits until the subscriber's TCP handshakes on `port` succeed (`true`)
/// or fail (`false`) as expected, for a change that takes effect
/// asynchronously (a CoA's PFCP modification, a SIGHUP reload).
fn wait_reachability(lab: &Lab, port: u16, expected: bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while lab.tcp_connects(Subscriber::One, port, 2) != expected {
        assert!(
            Instant::now() < deadline,
            "{what}: TCP to port {port} should {}be possible\n{}",
            if expected { "" } else { "not " },
            lab.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn filter_id_selects_the_acl_and_coa_and_reload_change_it_live() {
    if let Some(why) = netns::lab_unavailable() {
        skip(&why);
        return;
    }
    for tool in ["iperf3", "radclient", "bash", "timeout"] {
        if netns::which(tool).is_none() {
            skip(&format!("{tool} is not installed"));
            return;
        }
    }
    if !FreeRadius::available() {
        skip("FreeRADIUS is not installed (apt-get install freeradius)");
        return;
    }
    let up_bin = find_binary("vbng-up").expect("vbng-up binary");
    let cp_bin = find_binary("vbng-cp").expect("vbng-cp binary");
    let prefix = format!("vba{}-", std::process::id());
    let dir = ScratchDir::new("acl-lab");
    let mut lab = Lab::build(&prefix, &dir).expect("build the lab");

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
             timeout_ms = 500\n\n\
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
    let acls = dir.join("acl.toml");
    std::fs::write(&acls, acl_file(None)).unwrap();
    lab.start_user_plane_with(&up_bin, &["--acl-file", &acls.display().to_string()])
        .expect("start vbng-up");
    lab.start_control_plane_with(&cp_bin, &["--config", &config.display().to_string()])
        .expect("start vbng-cp");
    lab.wait_associated(Duration::from_secs(15))
        .expect("PFCP association");
    lab.dhcp(Subscriber::One)
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.logs()));
    lab.start_iperf_server().expect("iperf3 server");
    lab.start_tcp_service(BLOCKED_PORT)
        .expect("second TCP service");
    let sessions = lab.sessions().expect("sessions");
    let session = &sessions[0];
    let acct_id = session["aaa"]["acct_session_id"]
        .as_str()
        .expect("Acct-Session-Id")
        .to_string();
    assert_eq!(
        session["aaa"]["filter_id"].as_str(),
        Some(format!("block-{BLOCKED_PORT}").as_str()),
        "{session}"
    );

    // The Access-Accept's ACL: exactly the matching flow is blocked.
    assert!(
        lab.tcp_connects(Subscriber::One, ALLOWED_PORT, 3),
        "TCP to {ALLOWED_PORT} must pass\n{}",
        lab.logs()
    );
    assert!(
        !lab.tcp_connects(Subscriber::One, BLOCKED_PORT, 2),
        "TCP to {BLOCKED_PORT} must be blocked by the ACL\n{}",
        lab.logs()
    );
    let ping = lab.ping_internet(Subscriber::One, 2).expect("ping");
    assert!(ping.contains(" 2 received"), "{ping}");
    let deny_rule = format!(
        "vbng_up_acl_matches_total{{acl=\"block-{BLOCKED_PORT}\",direction=\"ingress\",rule=\"0\",action=\"deny\"}}"
    );
    // Counters are published every few milliseconds; give them a moment.
    std::thread::sleep(Duration::from_millis(300));
    let denied = lab.up_metric(&deny_rule).expect("metrics");
    assert!(denied >= 1.0, "{deny_rule} = {denied}");
    assert!(
        lab.up_metric("vbng_up_drops_total{reason=\"acl_denied\"}")
            .expect("metrics")
            >= denied
    );
    let global_default = lab
        .up_metric(
            "vbng_up_acl_matches_total{acl=\"lab-global\",direction=\"ingress\",rule=\"default\",action=\"permit\"}",
        )
        .expect("metrics");
    assert!(
        global_default >= 1.0,
        "the global ACL saw the permitted traffic"
    );

    // CoA: Filter-Id "open" lifts the block at once.
    let out = radclient(
        &lab,
        &fr,
        "coa",
        &format!("Acct-Session-Id = \"{acct_id}\", Filter-Id = \"open\""),
    );
    assert!(out.contains("CoA-ACK"), "{out}\n{}", lab.logs());
    wait_reachability(&lab, BLOCKED_PORT, true, "after CoA Filter-Id open");
    assert_eq!(
        lab.sessions().expect("sessions")[0]["aaa"]["filter_id"].as_str(),
        Some("open")
    );

    // An ACL the user plane lacks: NAK 407, the session keeps "open".
    let out = radclient(
        &lab,
        &fr,
        "coa",
        &format!("Acct-Session-Id = \"{acct_id}\", Filter-Id = \"no-such-acl\""),
    );
    assert!(out.contains("CoA-NAK"), "{out}\n{}", lab.logs());
    assert!(
        out.contains("Invalid-Attribute-Value") || out.contains("407"),
        "{out}"
    );
    assert!(lab.tcp_connects(Subscriber::One, BLOCKED_PORT, 3));

    // SIGHUP: the reloaded file makes "open" block the first service; the
    // running session follows it without any PFCP message.
    std::fs::write(&acls, acl_file(Some(ALLOWED_PORT))).unwrap();
    lab.signal_daemon("vbng-up", libc::SIGHUP)
        .expect("SIGHUP vbng-up");
    wait_reachability(&lab, ALLOWED_PORT, false, "after the reload");
    assert!(lab.tcp_connects(Subscriber::One, BLOCKED_PORT, 3));
    assert_eq!(
        lab.up_metric("vbng_up_acl_reloads_total").expect("metrics"),
        1.0
    );

    // A file that drops the ACL in use is refused; the old rules stay.
    std::fs::write(
        &acls,
        "[[acl]]\nname = \"lab-global\"\n[[acl]]\nname = \"block-5202\"\n",
    )
    .unwrap();
    lab.signal_daemon("vbng-up", libc::SIGHUP)
        .expect("SIGHUP vbng-up");
    let deadline = Instant::now() + Duration::from_secs(5);
    while lab
        .up_metric("vbng_up_acl_reload_failures_total")
        .expect("metrics")
        < 1.0
    {
        assert!(Instant::now() < deadline, "the bad reload was not refused");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!lab.tcp_connects(Subscriber::One, ALLOWED_PORT, 2));
    println!(
        "lab_acl: Filter-Id blocked TCP {BLOCKED_PORT} ({denied} denied packets) while {ALLOWED_PORT} and ping passed; \
         CoA Filter-Id swapped the ACL live; unknown ACL NAKed; SIGHUP reload applied and a bad one refused"
    );
    drop(lab);
    drop(fr);
}
