//! IPv6 over PPPoE with the real client: pppd 2.4.9 with `+ipv6` in a
//! User-Mode Linux guest negotiates IPv6CP with vbng-cp, the guest kernel
//! configures a global address from vbng-cp's router advertisements (sent
//! through vbng-up's redirect and injected on the session), and the
//! guest's dhcpcd gets an address (IA_NA) and a delegated prefix
//! (IA_PD) from vbng-cp's DHCPv6 server; the control plane lists all of it
//! with the session. Then IPv6 goes through vbng-up both ways: the guest pings
//! the Internet host from its SLAAC address and from an address of its
//! delegated prefix, runs an iperf3 TCP test against it, and a ping with hop
//! limit 1 is answered by vbng-up with time exceeded; a static IPv6 route
//! (`--route6`) sends traffic for a prefix to a second router's MAC.
//!
//! `pppd_ipv6_through_two_dpdk_workers` runs the same on DPDK `net_af_packet`
//! ports with two workers, each with a queue pair of every port: the kernel
//! spreads the frames over the queues by flow hash, so IPv6 flows arrive at the
//! worker that does not own the session and must be handed to the owner by
//! prefix. The guest pings from eight more addresses of its delegated prefix
//! (eight more flows), and every ping must come back.
//!
//! Needs root, network namespaces, `linux.uml` with its modules, `pppd`,
//! `dhcpcd` and `iperf3` (and `libdpdk` for the DPDK run); prints a `SKIPPED:`
//! line and passes without them. The two tests run one at a time.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vbng_cp::lab::dpdk::{RuntimeDirs, libdpdk_unavailable, up_config_with_queue_pairs};
use vbng_cp::lab::topology::{INTERNET_HOST6, Lab, PPP_PASSWORD, PPP_USER, Subscriber};
use vbng_cp::lab::topology::{UP_CORE_IPV6_FLAGS, UP_METRICS};
use vbng_cp::lab::uml::{PppAuth, PppClient, PppdOptions, uml_unavailable};
use vbng_cp::lab::{ScratchDir, find_binary, metric_sum, netns};

/// A second IPv6 router on the core link (a macvlan of the Internet host's
/// link, with its own MAC) and the prefix vbng-up routes to it.
const ROUTER2: &str = "2001:db8:ffff::3";
const BEHIND_ROUTER2: &str = "2001:db8:e000::/40";
const HOST_BEHIND_ROUTER2: &str = "2001:db8:e000::1";

/// The session's /64 comes from here (one per session), its delegated
/// prefix from [`PD_PREFIX`].
const IPV6_PREFIX: &str = "2001:db8:100::/48";
const PD_PREFIX: &str = "2001:db8:8000::/40";

/// One lab (and one UML guest) at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn skip(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED: lab_pppoe_ipv6::{test}: {why}");
}

/// How vbng-up runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserPlane {
    /// Its own AF_PACKET rings, one worker.
    AfPacket,
    /// DPDK `net_af_packet` ports, two workers with a queue pair each.
    DpdkTwoWorkers,
}

fn config() -> String {
    format!(
        "[[pools]]\nname = \"default\"\nnetwork = \"100.64.0.0\"\nprefix_len = 24\n\
         gateway = \"100.64.0.1\"\nrange_start = \"100.64.0.10\"\nrange_end = \"100.64.0.250\"\n\
         dns = [\"192.0.2.53\"]\nipv6_prefix = \"{IPV6_PREFIX}\"\npd_prefix = \"{PD_PREFIX}\"\n\
         pd_length = 56\ndns6 = [\"2001:db8::53\"]\nipv6_slaac = true\n"
    )
}

#[test]
fn pppd_gets_ipv6cp_slaac_and_dhcpv6_through_vbng() {
    run(
        "pppd_gets_ipv6cp_slaac_and_dhcpv6_through_vbng",
        UserPlane::AfPacket,
    );
}

#[test]
fn pppd_ipv6_through_two_dpdk_workers() {
    run(
        "pppd_ipv6_through_two_dpdk_workers",
        UserPlane::DpdkTwoWorkers,
    );
}

fn run(test: &str, plane: UserPlane) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let unavailable = netns::lab_unavailable()
        .or_else(uml_unavailable)
        .or_else(|| {
            netns::which("dhcpcd")
                .is_none()
                .then(|| "dhcpcd (Debian package dhcpcd-base) is not installed".to_string())
        })
        .or_else(|| {
            netns::which("iperf3")
                .is_none()
                .then(|| "iperf3 is not installed".to_string())
        })
        .or_else(|| match plane {
            UserPlane::DpdkTwoWorkers => libdpdk_unavailable(),
            UserPlane::AfPacket => None,
        });
    if let Some(why) = unavailable {
        skip(test, &why);
        return;
    }
    let up_bin = find_binary("vbng-up").expect("vbng-up binary");
    let cp_bin = find_binary("vbng-cp").expect("vbng-cp binary");
    let pid = std::process::id();
    let (tag, name) = match plane {
        UserPlane::AfPacket => ("vb6", "pppoe6-lab"),
        UserPlane::DpdkTwoWorkers => ("vb6w", "pppoe6-workers-lab"),
    };
    let file_prefix = format!("vbng-lab-pppoe6-{pid}");
    let _runtime = RuntimeDirs(vec![file_prefix.clone()]);
    let dir = ScratchDir::new(name);
    let mut lab = Lab::build(&format!("{tag}{pid}-"), &dir).expect("build the lab");
    let config_path = dir.join("vbng-cp-ipv6.toml");
    std::fs::write(&config_path, config()).unwrap();
    second_router(&lab.inet);
    let route6 = format!("{BEHIND_ROUTER2},{ROUTER2}");
    match plane {
        UserPlane::AfPacket => lab.start_user_plane_with(&up_bin, &["--route6", &route6]),
        UserPlane::DpdkTwoWorkers => {
            let up_config = up_config_with_queue_pairs(&dir, &file_prefix, 2);
            let up_config = up_config.display().to_string();
            let own = [
                "--config",
                &up_config,
                "--workers",
                "2",
                "--route6",
                &route6,
            ];
            lab.start_user_plane_args(&up_bin, &[&own[..], &UP_CORE_IPV6_FLAGS[..]].concat())
        }
    }
    .expect("start vbng-up");
    lab.start_control_plane_with(&cp_bin, &["--config", &config_path.display().to_string()])
        .expect("start vbng-cp");
    lab.wait_associated(Duration::from_secs(15))
        .expect("PFCP association");

    let ns = lab.ns(Subscriber::One).name().to_string();
    let guest_dir = dir.sub("uml");
    let mut opts = PppdOptions::new(PPP_USER, PPP_PASSWORD, PppAuth::Pap);
    opts.ipv6 = true;
    let started = Instant::now();
    let mut client =
        PppClient::start(&ns, Subscriber::One.iface(), &guest_dir, opts).expect("boot pppd in UML");
    let info = client
        .wait_up(Duration::from_secs(40))
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", client.log(), lab.logs()));
    let v6 = client
        .wait_ipv6(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", client.log(), lab.logs()));
    let up_after = started.elapsed();

    // IPv6CP: both link-local addresses, ours derived from the gateway MAC.
    assert!(
        v6.local_link_local.is_unicast_link_local(),
        "{v6:?}\n{}",
        client.log()
    );
    assert!(v6.remote_link_local.is_unicast_link_local(), "{v6:?}");
    assert_ne!(v6.local_link_local, v6.remote_link_local);
    // SLAAC from the router advertisement: a global address in the
    // session's /64, carved out of the pool's /48.
    assert!(
        v6.addresses.contains("inet6 2001:db8:100:") && v6.addresses.contains("scope global"),
        "no address from the RA on ppp0: {}\n{}",
        v6.addresses,
        client.log()
    );
    // DHCPv6: an address from the session's /64 and a /56 from the PD pool.
    assert!(
        v6.dhcpv6_log.contains("adding address 2001:db8:100:"),
        "no IA_NA address from DHCPv6:\n{}",
        v6.dhcpv6_log
    );
    assert!(
        v6.dhcpv6_log.contains("delegated prefix 2001:db8:80") && v6.dhcpv6_log.contains("/56"),
        "no delegated /56 from DHCPv6:\n{}",
        v6.dhcpv6_log
    );

    // IPv6 through the user plane. The Internet host routes both pools to it.
    lab.route6_to_user_plane(IPV6_PREFIX)
        .expect("route the /48");
    lab.route6_to_user_plane(PD_PREFIX)
        .expect("route the PD pool");
    let delegated = v6
        .dhcpv6_log
        .split("delegated prefix ")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse::<std::net::Ipv6Addr>().ok())
        .unwrap_or_else(|| panic!("no delegated prefix in:\n{}", v6.dhcpv6_log));
    let pd_host = |n: u128| std::net::Ipv6Addr::from_bits(delegated.to_bits() | n);
    // With two workers, eight more sources of the delegated prefix: eight more flows for
    // the kernel to spread over the queues.
    let pd_sources = match plane {
        UserPlane::AfPacket => 1,
        UserPlane::DpdkTwoWorkers => 9,
    };
    let mut script = format!("ping -6 -n -c 3 -i 0.3 -W 2 {INTERNET_HOST6}\n");
    for n in 1..=pd_sources {
        let host = pd_host(n);
        script.push_str(&format!(
            "ip -6 addr add {host}/128 dev lo\n\
             ping -6 -n -c 3 -i 0.3 -W 2 -I {host} {INTERNET_HOST6}\n"
        ));
    }
    let (status, out) = client
        .run(&script, Duration::from_secs(30 + 5 * pd_sources as u64))
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.logs()));
    let replies = out.matches("3 received").count();
    assert!(
        status == 0 && replies == 1 + pd_sources as usize,
        "IPv6 pings through vbng-up (SLAAC and delegated sources) failed (status {status}):\n{out}\n{}",
        lab.logs()
    );
    // Hop limit 1: vbng-up answers from its core address.
    let (_, out) = client
        .run(
            &format!("ping -6 -n -c 1 -t 1 -W 2 {INTERNET_HOST6}\n"),
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.contains("From 2001:db8:ffff::2") && out.contains("Time exceeded"),
        "no time exceeded from vbng-up for hop limit 1:\n{out}"
    );
    // A static IPv6 route: traffic to the prefix behind the second router
    // reaches that router's MAC (its macvlan counts it), not the default one.
    let before = lab.inet.rx_packets("mv6").expect("mv6 counter");
    let (status, out) = client
        .run(
            &format!("ping -6 -n -c 3 -i 0.3 -W 2 {HOST_BEHIND_ROUTER2}\n"),
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let via_router2 = lab.inet.rx_packets("mv6").expect("mv6 counter") - before;
    assert!(
        status == 0 && out.contains("3 received") && via_router2 >= 3,
        "ping through the [[route6]] router: status {status}, {via_router2} frames at its MAC:\n{out}\n{}",
        lab.logs()
    );

    // TCP: iperf3 from the guest; the server sees the session's address.
    lab.start_iperf6_server().expect("iperf3 server");
    let (status, out) = client
        .run(
            &format!("iperf3 -6 -c {INTERNET_HOST6} -t 2 -f k\n"),
            Duration::from_secs(40),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.logs()));
    assert!(
        status == 0 && out.contains("receiver"),
        "iperf3 over IPv6 failed (status {status}):\n{out}\n{}",
        lab.logs()
    );
    let server_log = std::fs::read_to_string(dir.join("iperf3-6.log")).unwrap_or_default();
    assert!(
        server_log.contains("Accepted connection from 2001:db8:100:"),
        "the iperf3 server saw no connection from the session's /64:\n{server_log}"
    );
    let rate = out
        .lines()
        .find(|l| l.contains("receiver"))
        .unwrap_or_default()
        .to_string();

    // The control plane shows the same session with its IPv6.
    let sessions = lab.sessions().expect("sessions");
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let s = &sessions[0];
    assert_eq!(s["ipv4"], info.local.to_string(), "{s}");
    let shown = s["ipv6"].to_string();
    assert!(shown.contains("2001:db8:100:"), "{s}");
    assert!(shown.contains("2001:db8:80"), "{s}");

    // With two workers: both received frames, and no frame handed over was lost.
    let workers = if plane == UserPlane::DpdkTwoWorkers {
        let text = lab
            .http_get(UP_METRICS)
            .unwrap_or_else(|e| panic!("GET the user plane's metrics: {e}\n{}", lab.logs()));
        let per_worker = |name: &str, w: &str, more: &[&str]| {
            let label = format!("worker=\"{w}\"");
            metric_sum(&text, name, &[&[label.as_str()], more].concat())
        };
        let mut line = String::new();
        for w in ["0", "1"] {
            let rx = per_worker("vbng_up_worker_rx_packets_total", w, &[]);
            let out = per_worker("vbng_up_worker_handoffs_total", w, &["direction=\"out\""]);
            let sessions = per_worker("vbng_up_worker_sessions", w, &[]);
            assert!(rx > 0.0, "worker {w} received nothing:\n{text}");
            line.push_str(&format!(
                "; worker {w}: rx {rx} sessions {sessions} handed out {out}"
            ));
        }
        let dropped = metric_sum(
            &text,
            "vbng_up_worker_handoffs_total",
            &["direction=\"dropped\""],
        );
        assert_eq!(dropped, 0.0, "handoffs dropped:\n{text}");
        line
    } else {
        String::new()
    };

    client
        .stop(Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}\n{}", client.log()));
    lab.wait_sessions(0, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("the session outlived pppd: {e}"));
    println!(
        "lab_pppoe_ipv6::{test}: IPv6CP, SLAAC and DHCPv6 done {up_after:.1?} after boot: local {} \
         remote {}; session ipv6 {shown}; iperf3 over IPv6: {rate}{workers}",
        v6.local_link_local, v6.remote_link_local
    );
    drop(client);
    drop(lab);
}

/// Adds the second IPv6 router to the Internet namespace: macvlan `mv6` on
/// `eth0` (its own MAC) with 2001:db8:ffff::3 and, behind it, 2001:db8:e000::1.
/// Only the interface holding an address answers neighbour solicitations
/// for it, so vbng-up learns the macvlan's MAC for the route's next hop.
fn second_router(inet: &netns::Netns) {
    inet.ip(&[
        "link", "add", "mv6", "link", "eth0", "type", "macvlan", "mode", "bridge",
    ])
    .expect("macvlan");
    inet.exec("sysctl", &["-qw", "net.ipv6.conf.mv6.disable_ipv6=0"])
        .expect("IPv6 on mv6");
    for addr in [
        format!("{ROUTER2}/64"),
        format!("{HOST_BEHIND_ROUTER2}/128"),
    ] {
        inet.ip(&["-6", "addr", "add", &addr, "dev", "mv6", "nodad"])
            .expect("second router address");
    }
    inet.ip(&["link", "set", "mv6", "up"]).expect("macvlan up");
}
