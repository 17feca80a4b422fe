//! End to end on DPDK ports: the namespace lab with vbng-up's ports opened by
//! DPDK drivers instead of its own AF_PACKET rings.
//!
//! - `dpdk_af_packet_one_worker`: every port a `net_af_packet` vdev (the
//!   example `configs/vbng-up-dpdk.toml`, one worker). ISC dhclient
//!   subscribers get addresses from vbng-cp through vbng-up, ping and open TCP
//!   connections to the Internet host, the Internet host pings them back, and
//!   the user plane's port counters move.
//! - `dpdk_af_packet_two_workers`: the same with `--workers 2` (a queue pair
//!   per worker on each device, spread by the kernel's flow hash) and five
//!   subscribers: 20 pings each way, none lost, while frames cross between
//!   the workers to the one owning their session.
//! - `dpdk_vhost_user_core`: vbng-up's core port is a `net_vhost` socket;
//!   `dpdk-testpmd` on the other end (`net_virtio_user`) forwards everything
//!   between it and the veth to the Internet host (`net_af_packet`), so
//!   subscriber traffic, and the Internet host's ARP for the user plane,
//!   crosses vhost-user both ways.
//!
//! Needs root, network namespaces, veth, `dhclient`, `ping`, DPDK
//! (`libdpdk`) and, for the vhost-user test, `dpdk-testpmd`; prints a
//! `SKIPPED:` line and passes without them. Every process the tests start
//! belongs to the lab, which stops and reaps them (SIGTERM, then SIGKILL) and
//! deletes the namespaces when it is dropped, also when a test fails. The
//! three tests run one at a time: each keeps DPDK poll loops busy.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use vbng_cp::lab::dpdk::{
    RuntimeDirs, libdpdk_unavailable, replace_once, up_config, up_config_with_queue_pairs,
};
use vbng_cp::lab::netns::{self, Netns, which};
use vbng_cp::lab::procs::Dhclient;
use vbng_cp::lab::topology::{INTERNET_HOST, Lab, POOL_RANGE, Subscriber, lab_subscribers};
use vbng_cp::lab::{LabError, ScratchDir, find_binary, metric_sum, wait_until};

/// One DPDK lab at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn skip(test: &str, why: &str) {
    // Straight to the stream, past the test harness's capture, so the line
    // is always visible.
    let _ = writeln!(std::io::stderr(), "SKIPPED: lab_dpdk::{test}: {why}");
}

/// Why this machine cannot run the DPDK lab, if it cannot.
fn unavailable(need_testpmd: bool) -> Option<String> {
    if let Some(why) = netns::lab_unavailable() {
        return Some(why);
    }
    if let Some(why) = libdpdk_unavailable() {
        return Some(why);
    }
    if need_testpmd && which("dpdk-testpmd").is_none() {
        return Some("`dpdk-testpmd` is not installed".into());
    }
    None
}

/// The binaries and a lab named after `tag`, its files in `dir` (the
/// caller's [`ScratchDir`], declared first so that it outlives the lab).
fn setup(tag: &str, dir: &Path) -> (PathBuf, PathBuf, Lab) {
    let (up_bin, cp_bin) = match (find_binary("vbng-up"), find_binary("vbng-cp")) {
        (Ok(up), Ok(cp)) => (up, cp),
        (Err(e), _) | (_, Err(e)) => panic!("{e}"),
    };
    let pid = std::process::id();
    let lab = Lab::build(&format!("vd{tag}{pid}-"), dir).expect("build the lab");
    (up_bin, cp_bin, lab)
}

/// The user plane's metrics text.
fn up_metrics(lab: &Lab) -> String {
    lab.http_get(vbng_cp::lab::topology::UP_METRICS)
        .unwrap_or_else(|e| panic!("GET the user plane's metrics: {e}\n{}", lab.logs()))
}

/// One line on stderr (past the harness's capture) with what a test measured.
fn report(test: &str, line: &str) {
    let _ = writeln!(std::io::stderr(), "lab_dpdk::{test}: {line}");
}

/// Port counters of the user plane: (rx packets, tx packets) of `port`.
fn port_counters(text: &str, port: &str) -> (f64, f64) {
    let label = format!("port=\"{port}\"");
    (
        metric_sum(text, "vbng_up_port_rx_packets_total", &[&label]),
        metric_sum(text, "vbng_up_port_tx_packets_total", &[&label]),
    )
}

/// Pings `dst` from namespace `ns` `count` times, 5 per second; returns
/// ping's summary line ("... 0% packet loss ...").
fn ping(ns: &str, dst: Ipv4Addr, count: u32) -> String {
    let out = Command::new("ip")
        .args([
            "netns", "exec", ns, "ping", "-n", "-q", "-i", "0.2", "-W", "2",
        ])
        .args(["-c", &count.to_string(), &dst.to_string()])
        .output()
        .expect("run ping");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.contains("packet loss"))
        .map_or_else(|| format!("no summary from ping: {text}"), str::to_owned)
}

/// True if namespace `ns` completes a TCP handshake with the Internet host
/// on `port` within 5 seconds.
fn tcp_connects(ns: &str, port: u16) -> bool {
    let script = format!("exec 3<>/dev/tcp/{INTERNET_HOST}/{port}");
    Command::new("ip")
        .args(["netns", "exec", ns, "timeout", "5", "bash", "-c", &script])
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts both planes (vbng-up with `up_args`) and waits for the PFCP
/// association.
fn start_planes(lab: &mut Lab, up_bin: &Path, cp_bin: &Path, up_args: &[&str], subs: &str) {
    lab.start_user_plane_args(up_bin, up_args)
        .expect("start vbng-up");
    lab.start_control_plane_with_subscribers(cp_bin, subs, &[])
        .expect("start vbng-cp");
    lab.wait_associated(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("PFCP association: {e}"));
}

/// Both lab subscribers get an address from the pool; returns them.
fn dhcp_both(lab: &mut Lab) -> [Ipv4Addr; 2] {
    let mut addrs = [Ipv4Addr::UNSPECIFIED; 2];
    for (i, who) in [Subscriber::One, Subscriber::Two].into_iter().enumerate() {
        let addr = lab
            .dhcp(who)
            .unwrap_or_else(|e| panic!("DHCP for {who:?}: {e}\n{}", lab.logs()));
        assert!(
            (POOL_RANGE.0..=POOL_RANGE.1).contains(&addr),
            "{who:?}: {addr} is outside the pool range {POOL_RANGE:?}"
        );
        addrs[i] = addr;
    }
    assert_ne!(addrs[0], addrs[1], "two subscribers got the same address");
    addrs
}

/// Subscribers 1 and 2 ping the Internet host and it pings them back, with
/// no loss, and subscriber 1 opens a TCP connection to it and sends for two
/// seconds through the user plane.
fn check_both_ways(lab: &mut Lab, addrs: [Ipv4Addr; 2], count: u32) {
    for (who, addr) in [(Subscriber::One, addrs[0]), (Subscriber::Two, addrs[1])] {
        // The first echo may wait for the next hop's ARP.
        let _ = ping(lab.ns(who).name(), INTERNET_HOST, 1);
        let up = ping(lab.ns(who).name(), INTERNET_HOST, count);
        assert!(
            up.contains(" 0% packet loss"),
            "{who:?} -> Internet: {up}\n{}",
            lab.logs()
        );
        let down = ping(lab.inet.name(), addr, count);
        assert!(
            down.contains(" 0% packet loss"),
            "Internet -> {who:?} ({addr}): {down}\n{}",
            lab.logs()
        );
    }
    lab.start_iperf_server().expect("iperf3 server");
    for who in [Subscriber::One, Subscriber::Two] {
        // After a connection that sent nothing (the previous probe) the iperf3 server
        // closes and reopens its listening socket; a probe in that moment is refused.
        assert!(
            wait_until(Duration::from_secs(10), || lab.tcp_connects(who, 5201, 3)),
            "{who:?}: no TCP connection to the Internet host\n{}",
            lab.logs()
        );
    }
    let report = lab
        .iperf(Subscriber::One, false, 2, 1.0, 0)
        .unwrap_or_else(|e| panic!("iperf3: {e}\n{}", lab.logs()));
    let received = report["end"]["sum_received"]["bytes"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(
        received > 100_000.0,
        "TCP upload through the user plane carried {received} bytes: {report}"
    );
}

#[test]
fn dpdk_af_packet_one_worker() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(why) = unavailable(false) {
        skip("dpdk_af_packet_one_worker", &why);
        return;
    }
    let file_prefix = format!("vbng-lab-a-{}", std::process::id());
    let _runtime = RuntimeDirs(vec![file_prefix.clone()]);
    let dir = ScratchDir::new("lab-dpdk-a");
    let (up_bin, cp_bin, mut lab) = setup("a", &dir);
    let config = up_config(&dir, &file_prefix, |t| t);
    let config = config.display().to_string();
    start_planes(
        &mut lab,
        &up_bin,
        &cp_bin,
        &["--config", &config],
        &lab_subscribers(),
    );

    // The ports are DPDK devices, up.
    let text = up_metrics(&lab);
    for port in ["acc0", "acc1", "core"] {
        let label = format!("port=\"{port}\"");
        let up = metric_sum(
            &text,
            "vbng_up_port_link_up",
            &[&label, "driver=\"net_af_packet\""],
        );
        assert_eq!(up, 1.0, "{port} is not an up net_af_packet device:\n{text}");
    }
    let before: Vec<(f64, f64)> = ["acc0", "acc1", "core"]
        .iter()
        .map(|p| port_counters(&text, p))
        .collect();

    let addrs = dhcp_both(&mut lab);
    lab.wait_up_sessions(2, Duration::from_secs(5))
        .expect("two sessions in the user plane");
    check_both_ways(&mut lab, addrs, 5);

    // Every port's counters moved, in both directions.
    let text = up_metrics(&lab);
    for (port, (rx0, tx0)) in ["acc0", "acc1", "core"].iter().zip(before) {
        let (rx, tx) = port_counters(&text, port);
        assert!(
            rx > rx0 && tx > tx0,
            "{port}: rx {rx0} -> {rx}, tx {tx0} -> {tx}"
        );
    }
    let lost = metric_sum(&text, "vbng_up_port_rx_lost_total", &[]);
    assert_eq!(lost, 0.0, "frames lost by the ports:\n{text}");
    let counters: Vec<String> = ["acc0", "acc1", "core"]
        .iter()
        .map(|p| {
            let (rx, tx) = port_counters(&text, p);
            format!("{p} rx {rx} tx {tx}")
        })
        .collect();
    report(
        "dpdk_af_packet_one_worker",
        &format!("subscribers {addrs:?}; {}", counters.join(", ")),
    );
    lab.check_daemons().expect("daemons still running");

    drop(lab);
}

/// Extra subscribers on access port 0: each its own namespace with a macvlan
/// on subscriber 1's line (so the user plane sees several MACs on acc0).
struct ExtraSubscribers {
    // Field order is drop order: clients stop before their namespaces go.
    clients: Vec<Dhclient>,
    ns: Vec<(Netns, &'static str)>,
}

/// MACs of the extra subscribers.
const EXTRA_MACS: [&str; 3] = [
    "02:00:00:00:00:13",
    "02:00:00:00:00:14",
    "02:00:00:00:00:15",
];

impl ExtraSubscribers {
    fn build(lab: &Lab, prefix: &str) -> Result<Self, LabError> {
        let mut ns = Vec::new();
        for (i, mac) in EXTRA_MACS.iter().enumerate() {
            let n = Netns::create(&format!("{prefix}sub{}", i + 3))?;
            let link = format!("mv{}", i + 3);
            lab.sub1.ip(&[
                "link", "add", "link", "eth0", "name", &link, "address", mac, "type", "macvlan",
                "mode", "private",
            ])?;
            lab.sub1.ip(&["link", "set", &link, "netns", n.name()])?;
            n.ip(&["link", "set", &link, "name", "eth0"])?;
            n.ip(&["link", "set", "eth0", "up"])?;
            if which("ethtool").is_some() {
                let _ = n.exec(
                    "ethtool",
                    &["-K", "eth0", "tx", "off", "tso", "off", "gso", "off"],
                );
            }
            ns.push((n, *mac));
        }
        Ok(ExtraSubscribers {
            clients: Vec::new(),
            ns,
        })
    }

    /// Runs dhclient in each namespace; returns the addresses bound.
    fn dhcp(&mut self, dir: &Path) -> Result<Vec<Ipv4Addr>, LabError> {
        let mut addrs = Vec::new();
        for (n, _) in &self.ns {
            let client = Dhclient::new(n.name(), "eth0", dir, n.name())?;
            let log = client.obtain_lease();
            self.clients.push(client);
            let log = log?;
            let out = n.ip(&["-4", "-o", "addr", "show", "dev", "eth0"])?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let addr = text
                .split_whitespace()
                .skip_while(|w| *w != "inet")
                .nth(1)
                .and_then(|w| w.split('/').next()?.parse().ok())
                .ok_or_else(|| {
                    LabError::Command(format!("{}: dhclient bound no address:\n{log}", n.name()))
                })?;
            addrs.push(addr);
        }
        Ok(addrs)
    }
}

#[test]
fn dpdk_af_packet_two_workers() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(why) = unavailable(false) {
        skip("dpdk_af_packet_two_workers", &why);
        return;
    }
    let file_prefix = format!("vbng-lab-b-{}", std::process::id());
    let _runtime = RuntimeDirs(vec![file_prefix.clone()]);
    let dir = ScratchDir::new("lab-dpdk-b");
    let (up_bin, cp_bin, mut lab) = setup("b", &dir);
    // A queue pair per worker on each device; the worker count comes from
    // the flag, over the file's 1.
    let config = up_config_with_queue_pairs(&dir, &file_prefix, 2);
    let config = config.display().to_string();
    let mut subs = lab_subscribers();
    for mac in EXTRA_MACS {
        subs.push_str(&format!(
            "\n[[subscribers]]\nmac = \"{mac}\"\npool = \"default\"\n"
        ));
    }
    let prefix = format!("vdb{}-", std::process::id());
    let mut extra = ExtraSubscribers::build(&lab, &prefix).expect("extra subscribers");
    start_planes(
        &mut lab,
        &up_bin,
        &cp_bin,
        &["--config", &config, "--workers", "2"],
        &subs,
    );
    let text = up_metrics(&lab);
    assert!(
        text.contains("vbng_up_worker_rx_packets_total{worker=\"1\"}"),
        "no second worker in the metrics:\n{text}"
    );

    let mut addrs = dhcp_both(&mut lab).to_vec();
    let more = extra
        .dhcp(&dir)
        .unwrap_or_else(|e| panic!("DHCP for the extra subscribers: {e}\n{}", lab.logs()));
    addrs.extend(more);
    let total = addrs.len();
    let mut unique = addrs.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), total, "addresses handed out twice: {addrs:?}");
    lab.wait_sessions(total, Duration::from_secs(10))
        .expect("every session in the control plane");
    lab.wait_up_sessions(total as u64, Duration::from_secs(10))
        .expect("every session in the user plane");
    let text = up_metrics(&lab);
    let owned = metric_sum(&text, "vbng_up_worker_sessions", &[]);
    assert_eq!(
        owned, total as f64,
        "sessions owned by the workers:\n{text}"
    );

    // Every subscriber pings the Internet host and is pinged back, all at
    // once, 20 echoes each way: nothing lost.
    let mut sources: Vec<(String, Ipv4Addr)> = vec![
        (lab.sub1.name().to_owned(), addrs[0]),
        (lab.sub2.name().to_owned(), addrs[1]),
    ];
    sources.extend(
        extra
            .ns
            .iter()
            .zip(&addrs[2..])
            .map(|((n, _), a)| (n.name().to_owned(), *a)),
    );
    for (ns, _) in &sources {
        let _ = ping(ns, INTERNET_HOST, 1);
    }
    let inet = lab.inet.name().to_owned();
    let results: Vec<(String, String)> = std::thread::scope(|scope| {
        let mut runs = Vec::new();
        for (ns, addr) in &sources {
            let up = scope.spawn(move || ping(ns, INTERNET_HOST, 20));
            let inet = inet.as_str();
            let down = scope.spawn(move || ping(inet, *addr, 20));
            runs.push((format!("{ns} -> Internet"), up));
            runs.push((format!("Internet -> {ns} ({addr})"), down));
        }
        runs.into_iter()
            .map(|(what, h)| (what, h.join().expect("ping thread")))
            .collect()
    });
    for (what, summary) in &results {
        assert!(
            summary.contains(" 0% packet loss"),
            "{what}: {summary}\n{}",
            lab.logs()
        );
    }
    lab.start_iperf_server().expect("iperf3 server");
    for (ns, _) in &sources {
        // As in check_both_ways: after the previous probe (a connection that sent
        // nothing) the iperf3 server resets it and reopens its listener; a probe in that
        // moment is refused or reset.
        assert!(
            wait_until(Duration::from_secs(10), || tcp_connects(ns, 5201)),
            "{ns}: no TCP connection to the Internet host"
        );
    }

    // Both workers received frames, and frames reached the worker owning
    // their session through the handoff queues, none dropped. Each worker
    // publishes its counters on its own clock: once the last frames are
    // through, every frame handed out shows as taken in.
    let handoffs = |text: &str, direction: &str| {
        let label = format!("direction=\"{direction}\"");
        metric_sum(text, "vbng_up_worker_handoffs_total", &[&label])
    };
    let mut text = up_metrics(&lab);
    wait_until(Duration::from_secs(3), || {
        text = up_metrics(&lab);
        handoffs(&text, "out") == handoffs(&text, "in") + handoffs(&text, "dropped")
    });
    for w in ["0", "1"] {
        let label = format!("worker=\"{w}\"");
        let rx = metric_sum(&text, "vbng_up_worker_rx_packets_total", &[&label]);
        assert!(rx > 0.0, "worker {w} received nothing:\n{text}");
    }
    let (out, taken, dropped) = (
        handoffs(&text, "out"),
        handoffs(&text, "in"),
        handoffs(&text, "dropped"),
    );
    let per_worker: Vec<String> = ["0", "1"]
        .iter()
        .map(|w| {
            let label = format!("worker=\"{w}\"");
            format!(
                "worker {w}: rx {} sessions {} handed out {}",
                metric_sum(&text, "vbng_up_worker_rx_packets_total", &[&label]),
                metric_sum(&text, "vbng_up_worker_sessions", &[&label]),
                metric_sum(
                    &text,
                    "vbng_up_worker_handoffs_total",
                    &[&label, "direction=\"out\""]
                ),
            )
        })
        .collect();
    report(
        "dpdk_af_packet_two_workers",
        &format!("{total} subscribers; {}", per_worker.join("; ")),
    );
    assert!(
        out > 0.0,
        "no frame was handed to its owning worker:\n{text}"
    );
    assert_eq!(dropped, 0.0, "handoffs dropped:\n{text}");
    assert_eq!(out, taken, "frames handed out and taken in differ:\n{text}");
    lab.check_daemons().expect("daemons still running");

    drop(extra);
    drop(lab);
}

/// The MAC of `dev` in namespace `ns`.
fn mac_of(ns: &Netns, dev: &str) -> String {
    let out = ns
        .ip(&["-o", "link", "show", "dev", dev])
        .expect("ip link show");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

/// The link-layer address the Internet host has resolved for `addr`, if any.
fn neighbour(lab: &Lab, addr: &str) -> Option<String> {
    let out = lab.inet.ip(&["neigh", "show", addr, "dev", "eth0"]).ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mac = text
        .split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)?;
    (!text.contains("FAILED") && !text.contains("INCOMPLETE")).then(|| mac.to_owned())
}

#[test]
fn dpdk_vhost_user_core() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(why) = unavailable(true) {
        skip("dpdk_vhost_user_core", &why);
        return;
    }
    let pid = std::process::id();
    let up_prefix = format!("vbng-lab-c-{pid}");
    let testpmd_prefix = format!("vbng-lab-c-testpmd-{pid}");
    let _runtime = RuntimeDirs(vec![up_prefix.clone(), testpmd_prefix.clone()]);
    let dir = ScratchDir::new("lab-dpdk-c");
    let (up_bin, cp_bin, mut lab) = setup("c", &dir);
    let sock = dir.join("vhost-core.sock");
    let _ = std::fs::remove_file(&sock);
    let vhost = format!("net_vhost0,iface={},queues=1", sock.display());
    let config = up_config(&dir, &up_prefix, |t| {
        replace_once(
            &t,
            "device = \"net_af_packet2,iface=core0,qdisc_bypass=1\"",
            &format!("device = \"{vhost}\""),
        )
    });
    let config = config.display().to_string();

    // The vhost-user side (vbng-up, the socket's server) first.
    lab.start_user_plane_args(&up_bin, &["--config", &config])
        .expect("start vbng-up");
    let listening = wait_until(Duration::from_secs(20), || {
        sock.exists() || lab.check_daemons().is_err()
    });
    lab.check_daemons()
        .unwrap_or_else(|e| panic!("vbng-up with a net_vhost core port: {e}"));
    assert!(listening, "vbng-up did not create {}", sock.display());

    // testpmd bridges the virtio-user end and the veth to the Internet host
    // (core0, which vbng-up does not use here), forwarding every frame as is.
    let testpmd = which("dpdk-testpmd").expect("dpdk-testpmd");
    let virtio = format!("--vdev=net_virtio_user0,path={},queues=1", sock.display());
    let file_prefix = format!("--file-prefix={testpmd_prefix}");
    let bng = lab.bng.name().to_owned();
    lab.start_daemon(
        "testpmd",
        &bng,
        &testpmd,
        &[
            "-l",
            "0-1",
            "--no-huge",
            "-m",
            "512",
            "--no-pci",
            "--no-shconf",
            &file_prefix,
            "--log-level=*:error",
            &virtio,
            // libpcap, not net_af_packet: DPDK's af_packet driver names its
            // PACKET_FANOUT group pid ^ ifindex, which can equal the group of one of
            // vbng-up's access sockets in this namespace; the kernel then refuses the
            // second socket (EINVAL, a different device) and the port is not created.
            "--vdev=net_pcap0,iface=core0",
            "--",
            "--total-num-mbufs=16384",
            "--forward-mode=io",
            "-a",
            // Non-interactive testpmd exits when stdin ends; a stats period
            // keeps it forwarding until it is signalled.
            "--stats-period=3600",
        ],
    )
    .expect("start dpdk-testpmd");

    // The vhost link comes up once testpmd's virtio-user end connects.
    let link_up = wait_until(Duration::from_secs(20), || {
        lab.http_get(vbng_cp::lab::topology::UP_METRICS)
            .is_ok_and(|t| {
                metric_sum(
                    &t,
                    "vbng_up_port_link_up",
                    &["port=\"core\"", "driver=\"net_vhost\""],
                ) == 1.0
            })
            || lab.check_daemons().is_err()
    });
    lab.check_daemons().expect("vbng-up and testpmd running");
    assert!(
        link_up,
        "the net_vhost core port is not up:\n{}\n{}",
        up_metrics(&lab),
        lab.logs()
    );

    // The Internet host resolves the user plane's core address through
    // testpmd and vhost-user: the answer carries the vhost port's MAC, not
    // the veth's.
    let core_addr = "198.51.100.2";
    let resolved = wait_until(Duration::from_secs(20), || {
        let _ = lab
            .inet
            .exec("ping", &["-n", "-c", "1", "-W", "1", core_addr]);
        neighbour(&lab, core_addr).is_some()
    });
    assert!(
        resolved,
        "the Internet host cannot resolve {core_addr} over vhost-user\n{}",
        lab.logs()
    );
    let vhost_mac = neighbour(&lab, core_addr).unwrap_or_default();
    assert_ne!(
        vhost_mac,
        mac_of(&lab.bng, "core0"),
        "ARP answered with the veth's MAC, not the vhost port's"
    );

    lab.start_control_plane(&cp_bin).expect("start vbng-cp");
    lab.wait_associated(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("PFCP association: {e}"));
    let before = port_counters(&up_metrics(&lab), "core");
    let addrs = dhcp_both(&mut lab);
    lab.wait_up_sessions(2, Duration::from_secs(5))
        .expect("two sessions in the user plane");
    check_both_ways(&mut lab, addrs, 10);

    let text = up_metrics(&lab);
    let (rx, tx) = port_counters(&text, "core");
    assert!(
        rx > before.0 + 10.0 && tx > before.1 + 10.0,
        "the vhost core port carried rx {} -> {rx}, tx {} -> {tx}",
        before.0,
        before.1
    );
    report(
        "dpdk_vhost_user_core",
        &format!(
            "vhost port MAC {vhost_mac}; core rx {} -> {rx}, tx {} -> {tx}",
            before.0, before.1
        ),
    );
    lab.check_daemons().expect("daemons still running");

    drop(lab);
}
