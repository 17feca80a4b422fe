//! Per-subscriber QoS with real TCP: iperf3 through a subscriber shaped to
//! 10 Mbit/s by its subscriber-file rate (PFCP QER MBR), TCP and a UDP flood
//! up through its 10 Mbit/s policer, then a live change to 20 Mbit/s over the
//! REST API that must take effect within a second.
//!
//! Needs root, network namespaces, `dhclient` and `iperf3`; prints a
//! `SKIPPED:` line and passes without them.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vbng_cp::lab::topology::{CP_API, Lab, Subscriber, UP_METRICS};
use vbng_cp::lab::{ScratchDir, find_binary, netns};
use vbng_dataplane::pipeline::POLICER_BURST_MS;

fn skip(why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED: lab_qos: {why}");
}

const MBIT: f64 = 1e6;

/// (start, end, bits per second) of each interval of an iperf3 report.
fn intervals(report: &Value) -> Vec<(f64, f64, f64)> {
    report["intervals"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|i| {
                    let sum = &i["sum"];
                    Some((
                        sum["start"].as_f64()?,
                        sum["end"].as_f64()?,
                        sum["bits_per_second"].as_f64()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The rate the receiving end measured over the test (omitted seconds
/// left out), whichever side received.
fn received_rate(report: &Value) -> f64 {
    report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("no received rate in the iperf3 report: {report}"))
}

/// The length in seconds of the receiver's measurement (omitted seconds
/// left out).
fn received_seconds(report: &Value) -> f64 {
    report["end"]["sum_received"]["seconds"]
        .as_f64()
        .filter(|s| *s > 0.0)
        .unwrap_or_else(|| panic!("no received duration in the iperf3 report: {report}"))
}

/// The lab's links carry 1,500-byte IPv4 packets.
const LINK_MTU: f64 = 1500.0;

/// The rate of the IPv4 packets that carried `goodput` (bits per second of
/// TCP payload, as iperf3 reports it): what a session's rate limits count.
/// Full-sized segments carry the report's MSS in a packet of [`LINK_MTU`]
/// bytes, so at a 10 Mbit/s limit TCP's payload peaks at about 9.65 Mbit/s.
fn ip_rate(report: &Value, goodput: f64) -> f64 {
    let mss = report["start"]["tcp_mss_default"]
        .as_f64()
        .filter(|mss| (536.0..LINK_MTU).contains(mss))
        .unwrap_or(1448.0);
    goodput * LINK_MTU / mss
}

/// UDP payload of the flood tests: with the UDP and IPv4 headers, a packet
/// of [`LINK_MTU`] bytes.
const UDP_PAYLOAD: u16 = 1472;

/// The most IP traffic the 10 Mbit/s uplink policer may pass over a window
/// of `window_s` seconds, in bits per second: the rate (with the checks' 4%
/// allowance) plus the committed and excess bursts, which may both be full
/// when the window opens (RFC 2697: CIR x T + CBS + EBS).
fn policed_uplink_bound(window_s: f64) -> f64 {
    let burst_bits = 2.0 * 10.0 * MBIT * POLICER_BURST_MS as f64 / 1000.0;
    10.4 * MBIT + burst_bits / window_s
}

/// Mean rate of the intervals that start at or after `from` seconds.
fn mean_rate_from(report: &Value, from: f64) -> f64 {
    let picked: Vec<f64> = intervals(report)
        .into_iter()
        .filter(|(start, _, _)| *start >= from)
        .map(|i| i.2)
        .collect();
    assert!(
        !picked.is_empty(),
        "no iperf3 interval after {from} s: {report}"
    );
    picked.iter().sum::<f64>() / picked.len() as f64
}

#[test]
fn shaped_subscriber_holds_its_rate_and_changes_live() {
    if let Some(why) = netns::lab_unavailable() {
        skip(&why);
        return;
    }
    if netns::which("iperf3").is_none() {
        skip("iperf3 is not installed");
        return;
    }
    let up_bin = find_binary("vbng-up").expect("vbng-up binary");
    let cp_bin = find_binary("vbng-cp").expect("vbng-cp binary");
    let prefix = format!("vbq{}-", std::process::id());
    let dir = ScratchDir::new("qos-lab");
    let mut lab = Lab::build(&prefix, &dir).expect("build the lab");
    lab.start_user_plane(&up_bin).expect("start vbng-up");
    lab.start_control_plane(&cp_bin).expect("start vbng-cp");
    lab.wait_associated(Duration::from_secs(15))
        .expect("PFCP association");
    lab.dhcp(Subscriber::One)
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.logs()));
    lab.start_iperf_server().expect("iperf3 server");
    let sessions = lab.sessions().expect("sessions");
    let id = sessions[0]["id"].as_u64().expect("session id");

    // Downlink shaped to the subscriber file's 10 Mbit/s, as the receiver
    // measures it (first second of TCP slow start left out), in IP packets.
    let report = lab
        .iperf(Subscriber::One, true, 3, 0.5, 1)
        .expect("iperf3 -R");
    let down = ip_rate(&report, received_rate(&report));
    assert!(
        (9.5 * MBIT..=10.4 * MBIT).contains(&down),
        "downlink shaped to 10 Mbit/s carried {:.2} Mbit/s of IP packets: {:?}",
        down / MBIT,
        intervals(&report)
    );

    // Uplink: the policer holds the subscriber to its 10 Mbit/s, as the
    // receiver measures it, and its burst is deep enough that TCP is not
    // starved by it. Its bursts may show as a few percent above the rate over
    // a few seconds ([`policed_uplink_bound`]).
    let report = lab
        .iperf(Subscriber::One, false, 5, 0.5, 1)
        .expect("iperf3 uplink");
    let up = ip_rate(&report, received_rate(&report));
    let window_s = received_seconds(&report);
    let up_bound = policed_uplink_bound(window_s);
    assert!(
        (5.0 * MBIT..=up_bound).contains(&up),
        "uplink policed to 10 Mbit/s carried {:.2} Mbit/s of IP packets over {window_s:.2} s \
         (at most {:.2}: the rate and both buckets' bursts)",
        up / MBIT,
        up_bound / MBIT
    );

    // Uplink at twice the rate, UDP: what a TCP sender backs off from, a
    // constant flood shows exactly. The policer passes its rate and drops
    // the rest; the same burst bound applies.
    let offered = 20.0 * MBIT;
    let report = lab
        .iperf_udp(Subscriber::One, false, 4, 1, offered as u64, UDP_PAYLOAD)
        .expect("iperf3 UDP uplink");
    let udp_ip = |bits: f64| bits * LINK_MTU / f64::from(UDP_PAYLOAD);
    let flood = udp_ip(received_rate(&report));
    let window_s = received_seconds(&report);
    let flood_bound = policed_uplink_bound(window_s);
    assert!(
        (9.5 * MBIT..=flood_bound).contains(&flood),
        "uplink policed to 10 Mbit/s passed {:.2} Mbit/s of IP packets of a {:.0} Mbit/s UDP \
         flood over {window_s:.2} s (at most {:.2})",
        flood / MBIT,
        udp_ip(offered) / MBIT,
        flood_bound / MBIT
    );

    // Live change to 20 Mbit/s in the middle of a transfer.
    let (report, changed_at) = std::thread::scope(|scope| {
        let started = Instant::now();
        let run = scope.spawn(|| lab.iperf(Subscriber::One, true, 5, 0.25, 0));
        std::thread::sleep(Duration::from_millis(1500));
        let at = started.elapsed().as_secs_f64();
        let body = json!({"rate": {"up_kbps": 20000, "down_kbps": 20000}});
        let (status, text) = lab
            .http_patch(&format!("{CP_API}/sessions/{id}"), body)
            .expect("PATCH rate");
        assert_eq!(status, 200, "PATCH /sessions/{id}: {text}");
        (run.join().expect("iperf3 thread").expect("iperf3 -R"), at)
    });
    let before = ip_rate(&report, mean_rate_from(&report, 0.5));
    let after = ip_rate(&report, mean_rate_from(&report, changed_at + 1.0));
    assert!(
        (19.0 * MBIT..=20.8 * MBIT).contains(&after),
        "one second after the change to 20 Mbit/s the downlink carried {:.2} Mbit/s \
         of IP packets (before: {:.2}): {:?}",
        after / MBIT,
        before / MBIT,
        intervals(&report)
    );
    println!(
        "lab_qos (IP packets): downlink at 10 Mbit/s: {:.2} Mbit/s; uplink policed at \
         10 Mbit/s: {:.2} Mbit/s of TCP, {:.2} Mbit/s of a UDP flood; downlink from 1 s after \
         the change to 20 Mbit/s: {:.2} Mbit/s",
        down / MBIT,
        up / MBIT,
        flood / MBIT,
        after / MBIT
    );
    // The shaper's per-class counters and the configured rate are exported.
    let metrics = lab.http_get(UP_METRICS).expect("UP metrics");
    let sum = |prefix: &str, needle: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(prefix) && l.contains(needle))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(
        sum("vbng_up_qos_packets_total{", "result=\"conformed\"") > 1000.0,
        "no conformed packets counted: {metrics}"
    );
    assert_eq!(
        sum("vbng_up_qos_rate_bps{", "direction=\"downlink\""),
        20_000_000.0,
        "downlink rate gauge after the change"
    );
    let view = lab.sessions().expect("sessions after the change");
    assert_eq!(
        view[0]["rate"]["down_kbps"].as_u64(),
        Some(20000),
        "{view:?}"
    );

    drop(lab);
}
