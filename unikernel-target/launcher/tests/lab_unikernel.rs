//! The per-customer vBNG in the lab: the vbng-uk image booted by QEMU microvm (KVM when
//! /dev/kvm works, TCG otherwise: the test says which) with its access side on a tap in a
//! subscriber namespace and its core side on a tap in an Internet namespace. A
//! subscriber's traffic goes through it both ways, translated by the instance's NAT and
//! shaped to the session's rate; the boot time to the first forwarded frame is printed.
//! The page protections are checked by images that break them on purpose.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vbng_cp::lab::netns::{
    Netns, http_get_in, http_patch_in, in_netns, lab_unavailable, tap_netns, which,
};
use vbng_cp::lab::procs::{Background, Daemon, Dhclient};
use vbng_cp::lab::{ScratchDir, find_binary, wait_until};
use vbng_vm::{Accel, NetBackend, Transport, Vm, VmSpec};

const SUB_MAC: &str = "02:00:00:00:00:10";
const SUB_IP: &str = "100.64.0.10";
const INET_IP: &str = "198.51.100.1";
const NAT_POOL: &str = "203.0.113.0/28";
/// The session's downstream rate.
const DL_RATE_BPS: f64 = 4_000_000.0;

fn skip_reason() -> Option<String> {
    if let Some(why) = lab_unavailable() {
        return Some(why);
    }
    for tool in ["qemu-system-x86_64", "iperf3"] {
        if which(tool).is_none() {
            return Some(format!(
                "`{tool}` is not installed (scripts/setup.sh installs it)"
            ));
        }
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing".into());
    }
    None
}

/// A line for the CI log: written to stderr directly, past the test harness's capture.
macro_rules! report {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// The lab tests run one at a time: each boots instances and measures rates.
static LAB: Mutex<()> = Mutex::new(());

macro_rules! skip_unless_lab {
    () => {
        let _serial = LAB.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(why) = skip_reason() {
            report!("SKIPPED: {why}");
            return;
        }
    };
}

/// The accelerator: `VBNG_UK_ACCEL` (auto, kvm or tcg), auto by default.
fn accel() -> Accel {
    std::env::var("VBNG_UK_ACCEL")
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or(Accel::Auto)
}

fn image() -> std::path::PathBuf {
    vbng_vm::image::build().expect("build the vbng-uk image")
}

/// A namespace holding one tap, set up (address, routes) before the instance opens it.
fn tap_namespace(
    name: &str,
    tap: &str,
    mac: Option<&str>,
    addr: Option<&str>,
    routes: &[&[&str]],
) -> Netns {
    tap_netns(name, tap, mac, addr, routes).expect("tap namespace")
}

fn spec(name: &str, sub: &Netns, inet: &Netns, day0: &[&str]) -> VmSpec {
    VmSpec {
        name: name.into(),
        image: image(),
        memory_mib: vbng_vm::spec::DEFAULT_MEMORY_MIB,
        accel: accel(),
        transport: Transport::Legacy,
        access: NetBackend::TapIn {
            ifname: "uka".into(),
            netns: sub.name().into(),
        },
        core: NetBackend::TapIn {
            ifname: "ukc".into(),
            netns: inet.name().into(),
        },
        mgmt: NetBackend::None,
        access_mac: [0x52, 0x54, 0, 0, 0, 1],
        core_mac: [0x52, 0x54, 0, 0, 0, 2],
        mgmt_mac: [0x52, 0x54, 0, 0, 0, 3],
        day0: day0.iter().map(|s| s.to_string()).collect(),
        netns: None,
        exit_code_needed: false,
    }
}

/// The subscriber's namespace (tap `uka`, default route to the gateway) and the Internet
/// host's (tap `ukc`, the subscriber range and `via_instance` routed to the instance's core
/// address); `tag` keeps the names of two tests apart.
fn subscriber_and_internet(tag: &str, via_instance: &[&str]) -> (Netns, Netns) {
    let pid = std::process::id();
    let sub = tap_namespace(
        &format!("uk-{tag}sub-{pid}"),
        "uka",
        Some(SUB_MAC),
        Some("100.64.0.10/24"),
        &[&["default", "via", "100.64.0.1"]],
    );
    let mut routes: Vec<[&str; 3]> = via_instance
        .iter()
        .map(|&p| [p, "via", "198.51.100.2"])
        .collect();
    routes.push(["100.64.0.0/10", "via", "198.51.100.2"]);
    let routes: Vec<&[&str]> = routes.iter().map(|r| &r[..]).collect();
    let inet = tap_namespace(
        &format!("uk-{tag}inet-{pid}"),
        "ukc",
        None,
        Some("198.51.100.1/24"),
        &routes,
    );
    (sub, inet)
}

/// True once a ping from the subscriber to the Internet host is answered within `within`.
fn ping_gets_through(sub: &Netns, within: Duration) -> bool {
    wait_until(within, || {
        sub.stdout_of("ping", &["-c", "1", "-W", "1", INET_IP])
            .is_ok_and(|o| o.contains(" 0% packet loss"))
    })
}

fn background(ns: &Netns, program: &str, args: &[&str]) -> Background {
    Background::spawn(ns.name(), program, args).expect("spawn")
}

/// A datagram from the subscriber to the Internet host and its answer: returns the
/// source address the Internet host saw.
fn udp_round_trip(sub: &Netns, inet: &Netns) -> SocketAddr {
    let inet_name = inet.name().to_string();
    let seen = std::thread::spawn(move || {
        in_netns(&inet_name, move || {
            let s = UdpSocket::bind((INET_IP, 7000)).expect("bind on the Internet host");
            s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            let mut buf = [0u8; 64];
            let (n, from) = s
                .recv_from(&mut buf)
                .expect("a datagram from the subscriber");
            assert_eq!(&buf[..n], b"hello");
            s.send_to(b"welcome", from).expect("answer");
            from
        })
        .expect("in the Internet namespace")
    });
    let answered = in_netns(sub.name(), || {
        let s = UdpSocket::bind((SUB_IP, 0)).expect("bind on the subscriber");
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 64];
        for _ in 0..40 {
            s.send_to(b"hello", (INET_IP, 7000)).expect("send");
            if let Ok((n, from)) = s.recv_from(&mut buf) {
                return Some((buf[..n].to_vec(), from));
            }
        }
        None
    })
    .expect("in the subscriber namespace");
    let (reply, from) = answered.expect("the Internet host's answer came back through the NAT");
    assert_eq!(reply, b"welcome");
    assert_eq!(
        from,
        SocketAddr::from((INET_IP.parse::<Ipv4Addr>().unwrap(), 7000))
    );
    seen.join().expect("server thread")
}

/// iperf3 from the subscriber with the Internet host sending (-R): bits per second
/// received.
fn downstream_tcp_bps(sub: &Netns, inet: &Netns) -> f64 {
    let _server = background(inet, "iperf3", &["-s", "-1", "-B", INET_IP, "-p", "5201"]);
    let mut last = String::new();
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(300));
        let out = sub
            .stdout_of(
                "iperf3",
                &["-c", INET_IP, "-p", "5201", "-R", "-t", "4", "-J"],
            )
            .expect("iperf3");
        let v: serde_json::Value = match serde_json::from_str(&out) {
            Ok(v) => v,
            Err(_) => continue,
        };
        if let Some(bps) = v["end"]["sum_received"]["bits_per_second"].as_f64() {
            return bps;
        }
        last = out;
    }
    panic!("iperf3 gave no result: {last}");
}

/// The image's other bring-up: on the modern transport, without the launcher's promise,
/// it probes each device (version, id, features) and reads the core MAC from the device.
#[test]
fn unikernel_forwards_on_the_modern_transport_too() {
    skip_unless_lab!();
    let (sub, inet) = subscriber_and_internet("m", &[]);
    let session = format!("session={SUB_MAC},{SUB_IP}");
    let mut spec = spec("lab-uk-modern", &sub, &inet, &[&session]);
    spec.transport = Transport::Modern;
    let vm = Vm::start(&spec).expect("start the instance");
    // Both ways: the reply comes back only if the core MAC read from the device is the one
    // QEMU gave it (the Internet host resolves the instance by ARP).
    assert!(
        ping_gets_through(&sub, Duration::from_secs(30)),
        "no ping reply through the instance on the modern transport; console:\n{}",
        vm.console()
    );
    let line = inet
        .stdout_of("ip", &["neigh", "show", "198.51.100.2"])
        .unwrap_or_default();
    assert!(line.contains("52:54:00:00:00:02"), "{line}");
    report!(
        "lab_unikernel: modern virtio-mmio transport, devices probed: ping through ({})",
        vm.accel()
    );
    vm.stop();
}

#[test]
fn unikernel_forwards_a_subscriber_with_nat_and_shaping() {
    skip_unless_lab!();
    let (sub, inet) = subscriber_and_internet("", &[NAT_POOL]);
    let session = format!("session={SUB_MAC},{SUB_IP},dl=4M");
    let nat = format!("nat_pool={NAT_POOL}");
    let spec = spec("lab-uk", &sub, &inet, &[&session, &nat]);

    // Traffic toward the subscriber from before the start: the first frame it forwards
    // marks the end of the boot.
    let _flood = background(&inet, "ping", &["-q", "-i", "0.002", "-c", "30000", SUB_IP]);
    let mut vm = Vm::start(&spec).expect("start the instance");
    let report = vm
        .boot_report(Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("no first forwarded frame: {e}"));
    report!(
        "lab_unikernel: accelerator {} ({}, {}): QEMU start to first forwarded frame {:.1} ms; \
         guest entry to first forwarded frame {} us (devices and pipeline ready after {} us); \
         heap {} KiB in use of {} KiB RAM; TSC {} kHz",
        report.accel,
        if report.accel == Accel::Kvm {
            "KVM"
        } else {
            "TCG software emulation"
        },
        vm.qemu().program(),
        report.qemu_to_first_forward.as_secs_f64() * 1e3,
        report.entry_to_first_forward_us,
        report.entry_to_ready_us,
        report.heap_used_kib,
        report.ram_kib,
        report.tsc_khz,
    );
    assert!(
        report.entry_to_first_forward_us > 0 && report.tsc_khz > 0,
        "{report:?}"
    );
    drop(_flood);

    // Upstream and back: ping from the subscriber (the first echo may go while the
    // instance resolves its next hop).
    assert!(
        ping_gets_through(&sub, Duration::from_secs(20)),
        "no ping reply through the instance; console:\n{}",
        vm.console()
    );

    // NAT: the Internet host sees an address of the pool and a port of a block.
    let seen = udp_round_trip(&sub, &inet);
    let SocketAddr::V4(seen4) = seen else {
        panic!("{seen}")
    };
    let o = seen4.ip().octets();
    assert!(
        o[..3] == [203, 0, 113] && o[3] < 16 && seen4.port() >= 1024,
        "source after NAT: {seen}"
    );
    report!("lab_unikernel: the Internet host saw the subscriber as {seen}");
    assert!(
        wait_until(Duration::from_secs(5), || vm.console().contains("nat-log ")),
        "no port-block log line; console:\n{}",
        vm.console()
    );

    // Shaping: downstream TCP is held to the session's 4 Mbit/s.
    let bps = downstream_tcp_bps(&sub, &inet);
    report!(
        "lab_unikernel: downstream TCP {:.2} Mbit/s under a {:.0} Mbit/s session rate",
        bps / 1e6,
        DL_RATE_BPS / 1e6
    );
    assert!(
        bps <= DL_RATE_BPS * 1.1,
        "{bps} bit/s exceeds the session's rate"
    );
    assert!(
        bps >= DL_RATE_BPS * 0.5,
        "{bps} bit/s: the shaper starves the session"
    );
    let status = vm.stop();
    report!("lab_unikernel: stopped ({status:?})");
}

/// Each probe breaks one page protection; the CPU must stop it with a page fault, which
/// the image reports before exiting with code 3 (QEMU's status 7).
#[test]
fn unikernel_page_protections_stop_writes_to_text_jumps_to_data_and_stack_overflows() {
    skip_unless_lab!();
    let image = image();
    for probe in ["write-text", "exec-data", "stack-guard"] {
        let spec = VmSpec {
            name: format!("probe-{probe}"),
            image: image.clone(),
            memory_mib: vbng_vm::spec::DEFAULT_MEMORY_MIB,
            accel: accel(),
            transport: Transport::Legacy,
            access: NetBackend::None,
            core: NetBackend::None,
            mgmt: NetBackend::None,
            access_mac: [0; 6],
            core_mac: [0; 6],
            mgmt_mac: [0x52, 0x54, 0, 0, 0, 3],
            day0: vec![format!("probe={probe}")],
            netns: None,
            exit_code_needed: true,
        };
        let started = Instant::now();
        let mut vm = Vm::start(&spec).expect("start");
        let (_, line) = vm
            .wait_line("vbng-uk: cpu exception", Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("probe {probe}: {e}"));
        assert!(
            line.contains("exception 000000000000000e"),
            "probe {probe}: expected a page fault, got `{line}`"
        );
        assert!(wait_until(Duration::from_secs(10), || vm
            .try_exit_status()
            .is_some()));
        let status = vm.try_exit_status().and_then(|s| s.code());
        assert_eq!(status, Some(7), "probe {probe}: QEMU's exit status");
        report!(
            "lab_unikernel: probe {probe} stopped by a page fault in {:.0} ms ({})",
            started.elapsed().as_secs_f64() * 1e3,
            vm.accel()
        );
        assert!(!vm.console().contains("probe survived"));
    }
}

/// vbng-cp's API, on loopback inside its namespace.
const CP_API: &str = "http://127.0.0.1:8080";

/// The instance as any other user plane: vbng-cp (in a namespace of its own, on the
/// instance's management link) associates with it over PFCP, answers the subscriber's
/// DHCP through the GTP-U control-packet redirect, programs the session, changes its rate
/// live (the path a RADIUS CoA takes) and removes it when the lease is released.
#[test]
fn unikernel_is_programmed_by_vbng_cp_over_pfcp() {
    skip_unless_lab!();
    if which("dhclient").is_none() {
        report!("SKIPPED: dhclient is not installed (scripts/setup.sh installs it)");
        return;
    }
    let cp_bin = find_binary("vbng-cp").expect("vbng-cp binary (cargo build --workspace --bins)");
    let pid = std::process::id();
    let dir = ScratchDir::new("uk-pfcp");
    let sub = tap_namespace(&format!("uk-psub-{pid}"), "uka", Some(SUB_MAC), None, &[]);
    let inet = tap_namespace(
        &format!("uk-pinet-{pid}"),
        "ukc",
        None,
        Some("198.51.100.1/24"),
        &[&["100.64.0.0/10", "via", "198.51.100.2"]],
    );
    let cp = tap_namespace(
        &format!("uk-pcp-{pid}"),
        "ukm",
        None,
        Some("192.0.2.1/24"),
        &[],
    );
    let mut spec = spec(
        "lab-uk-pfcp",
        &sub,
        &inet,
        &["mgmt_ip=192.0.2.2/24", "cp_gtpu=192.0.2.1:2152"],
    );
    spec.mgmt = NetBackend::TapIn {
        ifname: "ukm".into(),
        netns: cp.name().into(),
    };
    let mut vm = Vm::start(&spec).expect("start the instance");

    let subscribers = dir.join("subscribers.toml");
    std::fs::write(
        &subscribers,
        format!(
            "[default]\npolicy = \"deny\"\n\n[[subscribers]]\nmac = \"{SUB_MAC}\"\npool = \"default\"\n\
             rate = {{ up_kbps = 10000, down_kbps = 4000 }}\n"
        ),
    )
    .expect("subscriber file");
    let subscribers = subscribers.to_string_lossy().into_owned();
    let mut cp_daemon = Daemon::start(
        "vbng-cp",
        cp.name(),
        &cp_bin,
        &[
            "--subscribers",
            &subscribers,
            "--listen-pfcp",
            "192.0.2.1:8805",
            "--listen-gtpu",
            "192.0.2.1:2152",
            "--listen-api",
            "127.0.0.1:8080",
            "--user-plane",
            "uk=192.0.2.2:8805",
        ],
        dir.join("vbng-cp.log"),
    )
    .expect("start vbng-cp");
    let logs = |vm: &Vm, cp: &Daemon| {
        format!(
            "instance console:\n{}\nvbng-cp log:\n{}",
            vm.console(),
            cp.log_tail(40)
        )
    };
    vm.wait_line(
        "vbng-uk: pfcp: pfcp association established",
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("no PFCP association: {e}\n{}", cp_daemon.log_tail(40)));

    // DHCP through the redirect; the ACK waits for the instance to accept the session.
    let dhclient = Dhclient::new(sub.name(), "uka", &dir, "uk").expect("dhclient files");
    dhclient
        .obtain_lease()
        .unwrap_or_else(|e| panic!("no lease: {e}\n{}", logs(&vm, &cp_daemon)));
    assert!(
        vm.console().contains("session established"),
        "{}",
        logs(&vm, &cp_daemon)
    );
    assert!(
        ping_gets_through(&sub, Duration::from_secs(20)),
        "no ping through the programmed session\n{}",
        logs(&vm, &cp_daemon)
    );
    let body = http_get_in(cp.name(), &format!("{CP_API}/sessions")).expect("GET /sessions");
    let sessions: serde_json::Value = serde_json::from_str(&body).expect("sessions JSON");
    let id = sessions[0]["id"].as_u64().expect("a session id");

    // The subscriber file's 4 Mbit/s downstream, then 2 Mbit/s after a live change.
    let before = downstream_tcp_bps(&sub, &inet);
    let (status, body) = http_patch_in(
        cp.name(),
        &format!("{CP_API}/sessions/{id}"),
        serde_json::json!({"rate": {"up_kbps": 10000, "down_kbps": 2000}}),
    )
    .expect("PATCH /sessions/{id}");
    assert_eq!(status, 200, "PATCH /sessions/{id}: {body}");
    assert!(
        wait_until(Duration::from_secs(5), || vm
            .console()
            .contains("session modified")),
        "{}",
        logs(&vm, &cp_daemon)
    );
    let after = downstream_tcp_bps(&sub, &inet);
    report!(
        "lab_unikernel: programmed by vbng-cp over PFCP ({}): downstream TCP {:.2} Mbit/s at \
         4 Mbit/s, {:.2} Mbit/s after the live change to 2 Mbit/s",
        vm.accel(),
        before / 1e6,
        after / 1e6
    );
    assert!(
        (2.0e6..=4.4e6).contains(&before),
        "{before} bit/s under a 4 Mbit/s rate"
    );
    assert!(
        (1.0e6..=2.2e6).contains(&after),
        "{after} bit/s under a 2 Mbit/s rate"
    );

    // Releasing the lease ends the session in the instance too.
    dhclient.release().expect("dhclient -r");
    assert!(
        wait_until(Duration::from_secs(10), || vm
            .console()
            .contains("session deleted")),
        "the instance kept the session\n{}",
        logs(&vm, &cp_daemon)
    );
    cp_daemon.check_running().expect("vbng-cp still running");
    cp_daemon.stop();
    vm.stop();
}
