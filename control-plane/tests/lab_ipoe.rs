//! End to end with real peers: ISC dhclient subscribers get addresses from
//! vbng-cp's pool through vbng-up (control frames redirected over GTP-U,
//! sessions programmed over PFCP), reach an Internet host, cannot spoof, and
//! stop forwarding once they release their lease.
//!
//! Needs root, network namespaces, veth, `dhclient` and `ping`; prints a
//! `SKIPPED:` line and passes without them.

use std::io::Write;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use vbng_cp::lab::rawpkt::{Capture, send_frames, send_paced};
use vbng_cp::lab::topology::{
    CP_API, INTERNET_HOST, Lab, POOL_DNS, POOL_RANGE, SUB2_CIRCUIT_ID, SUB2_REMOTE_ID, SUB2_VLAN,
    Subscriber,
};
use vbng_cp::lab::{LabError, ScratchDir, find_binary, netns, wait_until};
use vbng_dataplane::wire::EtherType;
use vbng_dataplane::wire::EthernetAddress;
use vbng_dataplane::wire::frame::{L2Header, build_ipv4_udp};

/// The access side's virtual gateway MAC (embedded default of both planes).
const GATEWAY_MAC: &str = "02:00:5e:00:01:01";

fn skip(why: &str) {
    // Straight to the stream, past the test harness's capture, so the line
    // is always visible.
    let _ = writeln!(std::io::stderr(), "SKIPPED: lab_ipoe: {why}");
}

/// A UDP datagram from `src` to the Internet host, addressed at L2 to the
/// gateway, carrying `marker` so the far side can recognise it.
fn udp_frame(who: Subscriber, src: Ipv4Addr, marker: &[u8]) -> Vec<u8> {
    let l2 = L2Header {
        dst: GATEWAY_MAC.parse::<EthernetAddress>().expect("gateway MAC"),
        src: who
            .mac()
            .parse::<EthernetAddress>()
            .expect("subscriber MAC"),
        svlan: None,
        cvlan: None,
        ethertype: EtherType::Ipv4,
    };
    build_ipv4_udp(&l2, src, INTERNET_HOST, 40000, 9, 64, marker)
}

/// Sends `frame` from subscriber 1 and reports whether it reached the
/// Internet host's interface within a second.
fn reaches_internet(lab: &Lab, frame: Vec<u8>, marker: &[u8]) -> Result<bool, LabError> {
    let capture = Capture::start(lab.inet.name(), "eth0", marker)?;
    send_frames(lab.sub1.name(), "eth0", vec![frame.clone(), frame])?;
    std::thread::sleep(Duration::from_millis(800));
    Ok(!capture.finish()?.is_empty())
}

/// A DHCPDISCOVER from a made-up client, as a flood would send it.
fn discover_from(mac: [u8; 6]) -> Vec<u8> {
    let l2 = L2Header {
        dst: EthernetAddress::BROADCAST,
        src: EthernetAddress(mac),
        svlan: None,
        cvlan: None,
        ethertype: EtherType::Ipv4,
    };
    let mut bootp = vec![0u8; 240];
    bootp[..3].copy_from_slice(&[1, 1, 6]); // BOOTREQUEST, Ethernet, hlen 6
    bootp[4..8].copy_from_slice(&mac[2..6]); // xid
    bootp[28..34].copy_from_slice(&mac);
    bootp[236..240].copy_from_slice(&[99, 130, 83, 99]);
    bootp.extend_from_slice(&[53, 1, 1, 255]);
    build_ipv4_udp(
        &l2,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        68,
        67,
        64,
        &bootp,
    )
}

/// Sends DISCOVERs from 15,000 new MACs mixed with malformed frames out of
/// subscriber 1's interface, about 5,000 frames per second for 3 seconds;
/// returns how many were sent.
fn flood(lab: &Lab) -> usize {
    let mut frames = Vec::new();
    for n in 0u32..15_000 {
        let b = n.to_be_bytes();
        frames.push(discover_from([0x02, 0xfd, b[0], b[1], b[2], b[3]]));
        if n % 20 == 0 {
            // A truncated IPv4 header addressed to the gateway.
            let mut bad = vec![0u8; 20];
            bad[..6].copy_from_slice(&[0x02, 0x00, 0x5e, 0x00, 0x01, 0x01]);
            bad[6..12].copy_from_slice(&[0x02, 0x00, 0x00, 0x00, 0x00, 0x11]);
            bad[12..14].copy_from_slice(&[0x08, 0x00]);
            frames.push(bad);
        }
    }
    let sent = frames.len();
    send_paced(
        lab.sub1.name(),
        "eth0",
        frames,
        250,
        Duration::from_millis(50),
    )
    .expect("flood");
    sent
}

/// Decodes a capture of the planes' loopback traffic with tshark (GTP-U
/// payloads as Ethernet) and requires every message kind of the flow, with
/// no malformed packet and no expert error or warning.
fn check_decodes_cleanly(file: &std::path::Path) {
    let text = vbng_cp::lab::tshark_verbose(file, &["-o", "gtp.dissect_tpdu_as:eth"])
        .unwrap_or_else(|e| panic!("{e}"));
    for expected in [
        "Association Setup Request",
        "Association Setup Response",
        "Heartbeat Request",
        "Session Establishment Request",
        "Session Establishment Response",
        "Session Deletion Request",
        "Session Deletion Response",
        "Dynamic Host Configuration Protocol (Discover)",
        "Dynamic Host Configuration Protocol (Offer)",
        "Dynamic Host Configuration Protocol (Request)",
        "Dynamic Host Configuration Protocol (ACK)",
        "Dynamic Host Configuration Protocol (Release)",
        "Agent Circuit ID: ",
        "Address Resolution Protocol (reply)",
    ] {
        assert!(
            text.contains(expected),
            "tshark did not decode any {expected:?}"
        );
    }
}

/// Adds the second router to the Internet namespace: macvlan `mv0` on `eth0` with
/// 198.51.100.3, and 203.0.113.1 on the loopback. `arp_ignore` 1 keeps `eth0` from
/// answering ARP for the macvlan's address with its own MAC.
fn second_router(inet: &netns::Netns) {
    inet.exec("sysctl", &["-qw", "net.ipv4.conf.all.arp_ignore=1"])
        .expect("arp_ignore");
    inet.ip(&[
        "link", "add", "mv0", "link", "eth0", "type", "macvlan", "mode", "bridge",
    ])
    .expect("macvlan");
    inet.ip(&["addr", "add", "198.51.100.3/24", "dev", "mv0"])
        .expect("second router address");
    inet.ip(&["link", "set", "mv0", "up"]).expect("macvlan up");
    inet.ip(&["addr", "add", "203.0.113.1/32", "dev", "lo"])
        .expect("address behind the second router");
}

#[test]
fn ipoe_subscribers_end_to_end() {
    if let Some(why) = netns::lab_unavailable() {
        skip(&why);
        return;
    }
    let (up_bin, cp_bin) = match (find_binary("vbng-up"), find_binary("vbng-cp")) {
        (Ok(up), Ok(cp)) => (up, cp),
        (Err(e), _) | (_, Err(e)) => panic!("{e}"),
    };
    let prefix = format!("vbt{}-", std::process::id());
    let dir = ScratchDir::new("lab");
    let mut lab = Lab::build(&prefix, &dir).expect("build the lab");
    // Everything the planes say to each other (PFCP, and GTP-U carrying
    // DHCP and ARP) is captured and must decode cleanly in tshark.
    let capture = if netns::which("tshark").is_some() {
        Some(
            lab.start_capture("lo", "udp port 8805 or udp port 2152")
                .expect("tshark capture"),
        )
    } else {
        skip("tshark is not installed: the independent decode of PFCP and GTP-U is not checked");
        None
    };
    // A second router on the core link: a macvlan of the Internet host's link
    // with its own MAC, 198.51.100.3, behind which lies 203.0.113.1. The user
    // plane has a static route to 203.0.113.0/24 through it.
    second_router(&lab.inet);
    // A redirect budget of 20 frames a second (2,000 by default), so that the
    // flood below, paced in batches every 50 ms, holds the shared budget
    // empty all the time, as a faster flood would hold the default one.
    let up_config = lab.dir.join("vbng-up.toml");
    std::fs::write(&up_config, "[worker]\nredirect_pps = 20\n").expect("vbng-up config");
    lab.start_user_plane_with(
        &up_bin,
        &[
            "--config",
            up_config.to_str().expect("UTF-8 path"),
            "--route",
            "203.0.113.0/24,198.51.100.3",
        ],
    )
    .expect("start vbng-up");
    lab.start_control_plane(&cp_bin).expect("start vbng-cp");
    lab.wait_associated(Duration::from_secs(15))
        .expect("PFCP association");

    // DHCP through the user plane's redirect, from our pool.
    let addr1 = lab
        .dhcp(Subscriber::One)
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.logs()));
    let addr2 = lab
        .dhcp(Subscriber::Two)
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.logs()));
    for addr in [addr1, addr2] {
        assert!(
            (POOL_RANGE.0..=POOL_RANGE.1).contains(&addr),
            "{addr} is outside the pool range {POOL_RANGE:?}"
        );
    }
    assert_ne!(addr1, addr2, "two subscribers got the same address");
    let dns = format!("nameserver {POOL_DNS}");
    assert!(
        lab.sub1.resolv_conf().contains(&dns),
        "DNS option not applied by dhclient"
    );

    // The control plane holds both sessions, with their access keys.
    let sessions = lab.sessions().expect("GET /sessions");
    assert_eq!(sessions.len(), 2, "sessions: {sessions:?}");
    let find = |mac: &str| {
        sessions
            .iter()
            .find(|s| s.to_string().to_lowercase().contains(mac))
            .unwrap_or_else(|| panic!("no session for {mac}: {sessions:?}"))
            .clone()
    };
    let s1 = find(Subscriber::One.mac());
    let s2 = find(Subscriber::Two.mac());
    assert!(
        s1.to_string().contains(&format!("\"{addr1}\"")),
        "session 1: {s1}"
    );
    assert!(
        s2.to_string().contains(&format!("\"{addr2}\"")),
        "session 2: {s2}"
    );
    assert_eq!(s1["port"].as_u64(), Some(0), "session 1: {s1}");
    assert_eq!(s1["cvlan"].as_u64(), Some(0), "session 1: {s1}");
    // Subscriber 2 sits behind the access node: its C-VLAN and the option 82
    // the access node inserted are kept on the session.
    assert_eq!(s2["port"].as_u64(), Some(1), "session 2: {s2}");
    assert_eq!(
        s2["cvlan"].as_u64(),
        Some(u64::from(SUB2_VLAN)),
        "session 2: {s2}"
    );
    assert_eq!(
        s2["circuit_id"].as_str(),
        Some(SUB2_CIRCUIT_ID),
        "session 2: {s2}"
    );
    assert_eq!(
        s2["remote_id"].as_str(),
        Some(SUB2_REMOTE_ID),
        "session 2: {s2}"
    );
    for s in [&s1, &s2] {
        assert_eq!(s["state"].as_str(), Some("active"), "session: {s}");
        assert!(s["up_seid"].as_u64().is_some(), "no UP F-SEID: {s}");
    }

    // Both subscribers reach the Internet host.
    for who in [Subscriber::One, Subscriber::Two] {
        let _ = lab.ping_internet(who, 1);
        let summary = lab
            .ping_internet(who, 3)
            .unwrap_or_else(|e| panic!("{e}\n{}", lab.logs()));
        assert!(summary.contains(" 0% packet loss"), "{who:?}: {summary}");
    }
    assert!(
        lab.up_metric("vbng_up_port_rx_packets_total{port=\"core\"}")
            .unwrap()
            > 0.0
    );

    // The static route: 203.0.113.1 answers, and what reached it came in
    // through the second router's MAC (its macvlan counts it), not the default
    // next hop's.
    let via_second_before = lab.inet.rx_packets("mv0").expect("mv0 counter");
    let routed = lab
        .ns(Subscriber::One)
        .exec(
            "ping",
            &["-n", "-c", "3", "-i", "0.2", "-W", "2", "203.0.113.1"],
        )
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|e| {
            panic!(
                "ping 203.0.113.1 through the static route: {e}\n{}",
                lab.logs()
            )
        });
    assert!(routed.contains(" 0% packet loss"), "{routed}");
    let via_second = lab.inet.rx_packets("mv0").expect("mv0 counter") - via_second_before;
    assert!(
        via_second >= 3,
        "only {via_second} frames reached the second router's MAC"
    );

    // TTL 1 both ways: the user plane answers with ICMP time exceeded from its
    // core address, to the subscriber (through the access side) and to the
    // Internet host (through the core side), as Linux's ping reports it.
    let ttl1 = |ns: &netns::Netns, to: Ipv4Addr| {
        let to = to.to_string();
        ns.stdout_of("ping", &["-n", "-c", "1", "-t", "1", "-W", "2", &to])
            .unwrap_or_else(|e| panic!("ping -t 1 {to}: {e}"))
    };
    let up = ttl1(
        lab.ns(Subscriber::One),
        vbng_cp::lab::topology::INTERNET_HOST,
    );
    assert!(
        up.contains("From 198.51.100.2") && up.contains("Time to live exceeded"),
        "subscriber's TTL-1 ping: {up}\n{}",
        lab.logs()
    );
    let down = ttl1(&lab.inet, addr1);
    assert!(
        down.contains("From 198.51.100.2") && down.contains("Time to live exceeded"),
        "Internet host's TTL-1 ping: {down}\n{}",
        lab.logs()
    );
    // The worker publishes its counters every 100 ms.
    assert!(
        wait_until(Duration::from_secs(3), || {
            lab.up_metric("vbng_up_icmp_errors_sent_total").unwrap() >= 2.0
        }),
        "vbng_up_icmp_errors_sent_total below 2"
    );
    assert!(
        lab.up_metric("vbng_up_drops_total{reason=\"ttl_exceeded\"}")
            .unwrap()
            >= 2.0
    );

    // Anti-spoofing: the real source passes, a spoofed one never arrives and
    // is counted.
    let spoofed = Ipv4Addr::new(100, 64, 0, 251);
    let drops_before = lab
        .up_metric("vbng_up_drops_total{reason=\"anti_spoof\"}")
        .unwrap();
    let good_marker = b"vbng-lab-legit-source";
    let bad_marker = b"vbng-lab-spoofed-source";
    let good = udp_frame(Subscriber::One, addr1, good_marker);
    let bad = udp_frame(Subscriber::One, spoofed, bad_marker);
    assert!(
        reaches_internet(&lab, good, good_marker).unwrap(),
        "legit UDP did not arrive"
    );
    assert!(
        !reaches_internet(&lab, bad, bad_marker).unwrap(),
        "spoofed source was forwarded"
    );
    let drops_after = lab
        .up_metric("vbng_up_drops_total{reason=\"anti_spoof\"}")
        .unwrap();
    assert!(
        drops_after >= drops_before + 2.0,
        "anti_spoof drops {drops_before} -> {drops_after}"
    );

    // DHCPRELEASE: the session leaves the control plane and the user plane
    // stops forwarding for that subscriber; the other one is unaffected.
    lab.release(Subscriber::One).expect("dhclient -r");
    let gone = wait_until(Duration::from_secs(5), || {
        lab.sessions().map(|s| s.len() == 1).unwrap_or(false)
    });
    assert!(
        gone,
        "session 1 still present after DHCPRELEASE: {:?}",
        lab.sessions()
    );
    // The deletion's usage report reached the control plane.
    let cp_metrics = lab
        .http_get(&format!("{CP_API}/metrics"))
        .expect("CP metrics");
    let usage = vbng_cp::lab::topology::metric_value(
        &cp_metrics,
        "vbng_cp_usage_bytes_total{direction=\"uplink\"}",
    );
    assert!(
        usage.is_some_and(|b| b > 0.0),
        "no uplink usage reported: {cp_metrics}"
    );
    let marker = b"vbng-lab-after-release";
    let after = udp_frame(Subscriber::One, addr1, marker);
    assert!(
        !reaches_internet(&lab, after, marker).unwrap(),
        "forwarded after DHCPRELEASE"
    );
    let summary = lab
        .ping_internet(Subscriber::Two, 3)
        .expect("subscriber 2 after release");
    assert!(
        summary.contains(" 0% packet loss"),
        "subscriber 2 after release: {summary}"
    );

    // A DHCP flood from thousands of unknown MACs, mixed with malformed
    // frames, does not cost the established subscriber a single echo, nor
    // the ARP request for the gateway it sends before each one (its
    // neighbour cache emptied every time): the user plane passes the control
    // frames of the subscribers it holds under a budget of their own, which
    // the flood cannot spend.
    let limited_before = lab.up_metric("vbng_up_drops_total{reason=\"redirect_rate_limited\"}");
    let malformed_before = lab.up_metric("vbng_up_drops_total{reason=\"malformed\"}");
    let flooding = std::sync::atomic::AtomicBool::new(true);
    let (sent, echoes) = std::thread::scope(|scope| {
        let pinger = scope.spawn(|| {
            let sub2 = lab.ns(Subscriber::Two);
            let host = INTERNET_HOST.to_string();
            let mut echoes = Vec::new();
            std::thread::sleep(Duration::from_millis(200));
            while flooding.load(std::sync::atomic::Ordering::Relaxed) {
                sub2.ip(&["neigh", "flush", "dev", "eth0"])
                    .expect("neighbour flush");
                // An error here is a ping without an answer.
                let ping = sub2.exec("ping", &["-n", "-c", "1", "-W", "1", &host]);
                echoes.push(ping.is_ok());
                std::thread::sleep(Duration::from_millis(100));
            }
            echoes
        });
        let sent = flood(&lab);
        flooding.store(false, std::sync::atomic::Ordering::Relaxed);
        (sent, pinger.join().expect("ping thread"))
    });
    assert!(
        echoes.len() >= 5 && echoes.iter().all(|answered| *answered),
        "echoes after ARP during a flood of {sent} frames: {echoes:?}"
    );
    let limited = lab.up_metric("vbng_up_drops_total{reason=\"redirect_rate_limited\"}");
    let malformed = lab.up_metric("vbng_up_drops_total{reason=\"malformed\"}");
    assert!(
        limited.unwrap() > limited_before.unwrap(),
        "flood of {sent} not rate limited"
    );
    assert!(
        malformed.unwrap() > malformed_before.unwrap(),
        "malformed frames not counted"
    );
    assert_eq!(
        lab.sessions().expect("sessions").len(),
        1,
        "flood created sessions"
    );
    lab.check_daemons().expect("daemons survived the flood");

    if let Some(file) = &capture {
        lab.stop_daemon("tshark");
        check_decodes_cleanly(file);
    }

    // Control plane restart: the user plane keeps forwarding while the
    // control plane is away; once it is back, it restores the lease from its
    // lease file and re-programs the session (the user plane adopts it)
    // before the client says anything; the client's re-bind then keeps the
    // same address, without a gap.
    lab.stop_daemon("vbng-cp");
    let summary = lab
        .ping_internet(Subscriber::Two, 3)
        .expect("ping with the CP stopped");
    assert!(
        summary.contains(" 0% packet loss"),
        "with the CP stopped: {summary}"
    );
    lab.start_control_plane(&cp_bin).expect("restart vbng-cp");
    lab.wait_associated(Duration::from_secs(15))
        .expect("PFCP re-association");
    let deadline = Instant::now() + Duration::from_secs(5);
    let restored = loop {
        let sessions = lab.sessions().expect("sessions after the CP restart");
        let active = sessions.iter().any(|s| {
            s["state"].as_str() == Some("active")
                && s["ipv4"].as_str() == Some(addr2.to_string().as_str())
        });
        if active || Instant::now() >= deadline {
            break (active, sessions);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        restored.0,
        "subscriber 2's session not restored (active, {addr2}) before its re-bind: {:?}\n{}",
        restored.1,
        lab.logs()
    );
    let (rebound, summary) = std::thread::scope(|scope| {
        let pinger = scope.spawn(|| lab.ping_internet(Subscriber::Two, 15));
        std::thread::sleep(Duration::from_millis(300));
        let rebound = lab.rebind(Subscriber::Two);
        (rebound, pinger.join().expect("ping thread"))
    });
    let rebound =
        rebound.unwrap_or_else(|e| panic!("re-bind after CP restart: {e}\n{}", lab.logs()));
    assert_eq!(
        rebound, addr2,
        "subscriber 2 changed address across the CP restart"
    );
    let summary = summary.expect("ping during the re-bind");
    assert!(
        summary.contains(" 0% packet loss"),
        "during the re-bind: {summary}"
    );
    let sessions = lab.sessions().expect("sessions after the CP restart");
    assert_eq!(
        sessions.len(),
        1,
        "sessions after the CP restart: {sessions:?}"
    );
    assert_eq!(
        sessions[0]["state"].as_str(),
        Some("active"),
        "{sessions:?}"
    );
    assert_eq!(
        sessions[0]["ipv4"].as_str(),
        Some(addr2.to_string().as_str())
    );
    let adopted = lab
        .up_metric("vbng_up_pfcp_sessions_adopted_total")
        .unwrap();
    assert!(adopted >= 1.0, "the user plane did not adopt the session");

    drop(lab);
}
