//! NAT44 end to end with real peers: DHCP subscribers behind vbng-up reach the
//! Internet host over TCP (iperf3) and UDP with their source translated into
//! the NAT pool, two subscribers reach each other through their outside
//! mappings (hairpinning), and every port block is in the NAT log and reaches
//! an IPFIX collector (nfdump's nfcapd), where nfdump reads the same blocks as
//! port block allocations and tshark decodes them from a capture, port ranges
//! included.
//!
//! The Internet host has no route to the subscribers' inside addresses, only
//! to the pool: an answer can only come back through a translation.
//!
//! `nat44_hairpins_across_two_dpdk_workers` runs vbng-up on DPDK
//! `net_af_packet` ports with two workers, each holding its share of the pool:
//! the two subscribers belong to different workers, so the hairpinned
//! datagram is translated by one and handed to the other, which delivers it
//! (counted as `vbng_up_nat_hairpins_total{scope="across"}`).
//!
//! Needs root, network namespaces, veth, `dhclient`, `iperf3`, `python3` and
//! `tshark` (and `libdpdk` for the two workers); prints a `SKIPPED:` line and
//! passes without them. The two tests run one at a time. Without
//! `nfcapd` and `nfdump` a plain UDP sink collects, and the nfdump check
//! prints its own `SKIPPED:` line.

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use vbng_cp::lab::dpdk::{RuntimeDirs, libdpdk_unavailable, up_config_with_queue_pairs};
use vbng_cp::lab::topology::{Lab, POOL, Subscriber};
use vbng_cp::lab::{ScratchDir, find_binary, netns, tshark_verbose, wait_until};
use vbng_dataplane::rss::{DEFAULT_RSS_KEY, WorkerMap};

/// One lab at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// The NAT pool: eight outside addresses routed to the user plane.
const NAT_POOL: &str = "192.0.2.64/29";

fn skip(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED: lab_nat::{test}: {why}");
}

/// Why the NAT lab cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    netns::lab_unavailable().or_else(|| {
        ["iperf3", "python3", "tshark"]
            .into_iter()
            .find(|tool| netns::which(tool).is_none())
            .map(|tool| format!("{tool} is not installed"))
    })
}

/// The binaries and a lab named after `tag` whose Internet host reaches the NAT pool
/// through the user plane and not the inside addresses.
fn nat_lab(tag: &str, dir: &ScratchDir) -> (PathBuf, PathBuf, Lab) {
    let (up_bin, cp_bin) = match (find_binary("vbng-up"), find_binary("vbng-cp")) {
        (Ok(up), Ok(cp)) => (up, cp),
        (Err(e), _) | (_, Err(e)) => panic!("{e}"),
    };
    let lab = Lab::build(&format!("{tag}{}-", std::process::id()), dir).expect("build the lab");
    let inside = format!("{}/{}", POOL.0, POOL.1);
    lab.inet
        .ip(&["route", "del", &inside])
        .expect("drop the inside route");
    lab.inet
        .ip(&["route", "add", NAT_POOL, "via", "198.51.100.2"])
        .expect("route the NAT pool");
    (up_bin, cp_bin, lab)
}

/// Starts vbng-cp (vbng-up running), waits for the association, and binds both DHCP
/// subscribers; returns their addresses.
fn control_plane_and_subscribers(lab: &mut Lab, cp_bin: &std::path::Path) -> (Ipv4Addr, Ipv4Addr) {
    lab.start_control_plane(cp_bin).expect("start vbng-cp");
    lab.wait_associated(Duration::from_secs(15))
        .expect("PFCP association");
    let mut bind = |who| {
        lab.dhcp(who)
            .unwrap_or_else(|e| panic!("{e}\n{}", lab.logs()))
    };
    (bind(Subscriber::One), bind(Subscriber::Two))
}

/// UDP and hairpinning: subscriber 1 learns its outside endpoint from the Internet host,
/// then subscriber 2 (at `addr2`) sends to that endpoint; subscriber 1 must receive it
/// from subscriber 2's outside mapping. Returns subscriber 1's outside address.
fn hairpin(lab: &Lab, addr1: Ipv4Addr, addr2: Ipv4Addr) -> Ipv4Addr {
    let mut service = Killed(python(lab.inet.name(), WHO_AM_I));
    let mut service_out = BufReader::new(service.0.stdout.take().expect("stdout"));
    assert_eq!(line_of(&mut service_out), "ready");
    let mut asker = Killed(python(lab.ns(Subscriber::One).name(), ASK_THEN_WAIT));
    let mut asker_out = BufReader::new(asker.0.stdout.take().expect("stdout"));
    let mapped = line_of(&mut asker_out);
    let (out1, port1) = endpoint(&mapped);
    assert!(in_nat_pool(out1), "UDP source {out1} is not in {NAT_POOL}");
    assert_ne!(out1, addr1);
    let hairpin = format!(
        "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'hairpin', ('{out1}', {port1}))\n"
    );
    lab.ns(Subscriber::Two)
        .exec("python3", &["-c", &hairpin])
        .unwrap_or_else(|e| panic!("python3 in subscriber 2: {e}"));
    let got = line_of(&mut asker_out);
    assert!(
        got.ends_with(" hairpin"),
        "subscriber 1 got {got:?}\n{}",
        lab.logs()
    );
    let (from, _) = endpoint(&got);
    assert!(
        in_nat_pool(from) && from != addr2,
        "the hairpinned datagram came from {from}, not subscriber 2's outside mapping"
    );
    out1
}

fn in_nat_pool(a: Ipv4Addr) -> bool {
    a.octets()[..3] == [192, 0, 2] && (64..72).contains(&a.octets()[3])
}

/// A UDP service on the Internet host: answers every datagram with the
/// sender's address and port as it saw them ("a.b.c.d port").
const WHO_AM_I: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('198.51.100.1', 7000))
print('ready', flush=True)
while True:
    d, a = s.recvfrom(2048)
    s.sendto(('%s %d' % a).encode(), a)
"#;

/// A subscriber's UDP socket on port 6000: asks the service who it is, prints
/// the answer, then prints the sender and payload of the next datagram.
const ASK_THEN_WAIT: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', 6000))
s.settimeout(10)
s.sendto(b'who', ('198.51.100.1', 7000))
print(s.recvfrom(2048)[0].decode(), flush=True)
d, a = s.recvfrom(2048)
print('%s %d %s' % (a[0], a[1], d.decode()), flush=True)
"#;

/// The IPFIX collector's address in the user plane's namespace.
const COLLECTOR: &str = "127.0.0.1:4739";

/// A UDP sink on the collector's port when nfcapd is not installed.
const COLLECTOR_SINK: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', 4739))
print('ready', flush=True)
while True:
    s.recv(65535)
"#;

/// The collector in namespace `ns`: nfcapd writing into `dir` when installed
/// (true), else [`COLLECTOR_SINK`] (false). Returns once it listens.
fn start_collector(ns: &str, dir: &std::path::Path) -> (Killed, bool) {
    if netns::which("nfcapd").is_some() && netns::which("nfdump").is_some() {
        std::fs::create_dir_all(dir).expect("nfcapd's directory");
        let log_path = dir.join("nfcapd.log");
        let log = std::fs::File::create(&log_path).expect("nfcapd log");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "nfcapd",
                "-b",
                "127.0.0.1",
                "-p",
                "4739",
                "-w",
            ])
            .arg(dir)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start nfcapd");
        let collector = Killed(child);
        let listening = || {
            std::fs::read_to_string(&log_path)
                .unwrap_or_default()
                .contains("Startup")
        };
        assert!(
            wait_until(Duration::from_secs(5), listening),
            "nfcapd did not start: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        return (collector, true);
    }
    skip(
        "nat44_translates_tcp_and_udp_hairpins_and_logs_every_block",
        "nfdump part: nfcapd or nfdump is not installed; a plain UDP sink collects",
    );
    let mut sink = Killed(python(ns, COLLECTOR_SINK));
    let mut out = BufReader::new(sink.0.stdout.take().expect("stdout"));
    assert_eq!(line_of(&mut out), "ready");
    (sink, false)
}

/// Stops nfcapd (SIGINT: it writes out what it holds) and returns the port
/// block allocations (nat event 16) nfdump reads from its files, as (inside,
/// outside).
fn nfdump_allocations(mut nfcapd: Killed, dir: &std::path::Path) -> Vec<(String, String)> {
    let _ = Command::new("kill")
        .args(["-INT", &nfcapd.0.id().to_string()])
        .status();
    let _ = nfcapd.0.wait();
    let out = Command::new("nfdump")
        .arg("-R")
        .arg(dir)
        .args(["-o", "raw"])
        .output()
        .expect("run nfdump");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut found = Vec::new();
    for record in text.split("Flow Record:") {
        let field = |name: &str| {
            record
                .lines()
                .find(|l| l.trim_start().starts_with(name))
                .and_then(|l| l.split('=').nth(1))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        if field("nat event").starts_with("16") {
            found.push((field("src addr"), field("src xlt ip")));
        }
    }
    found
}

/// One port block: (inside, outside, first port, last port).
type Block = (String, String, u16, u16);

/// The port-block allocations in the capture, as tshark's IPFIX dissector reads
/// them (natEvent 16), after checking that nothing in it is malformed.
fn ipfix_allocations(capture: &std::path::Path) -> Vec<Block> {
    let fields = [
        "cflow.nat_event",
        "cflow.srcaddr",
        "cflow.post_natsource_ipv4_address",
        "cflow.port_range_start",
        "cflow.port_range_end",
        "cflow.port_range_step_size",
        "cflow.port_range_num_ports",
    ];
    let mut args: Vec<String> = [
        "-r",
        &capture.to_string_lossy(),
        "-d",
        "udp.port==4739,cflow",
        "-Y",
        "cflow",
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=;",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    for f in fields {
        args.extend(["-e".to_string(), f.to_string()]);
    }
    let out = Command::new("tshark")
        .args(&args)
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Err(e) = tshark_verbose(capture, &["-d", "udp.port==4739,cflow"]) {
        panic!("{e}");
    }
    let mut blocks = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let columns: Vec<Vec<&str>> = line.split('\t').map(|c| c.split(';').collect()).collect();
        let Some(events) = columns.first() else {
            continue;
        };
        for (i, event) in events.iter().enumerate() {
            let at = |c: usize| columns.get(c).and_then(|v| v.get(i)).copied().unwrap_or("");
            let port = |c: usize| at(c).parse::<u16>().unwrap_or(0);
            if *event != "16" {
                continue;
            }
            let (first, last) = (port(3), port(4));
            assert_eq!(at(5), "1", "step size in {line}");
            assert_eq!(
                usize::from(port(6)),
                usize::from(last - first) + 1,
                "number of ports in {line}"
            );
            blocks.push((at(1).to_string(), at(2).to_string(), first, last));
        }
    }
    blocks
}

/// The `block_allocated` lines of the JSON log.
fn logged_allocations(log: &std::path::Path) -> Vec<Block> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "block_allocated")
        .map(|v| {
            let port = |k: &str| v[k].as_u64().unwrap_or(0) as u16;
            (
                v["inside"].as_str().unwrap_or("").to_string(),
                v["outside"].as_str().unwrap_or("").to_string(),
                port("first_port"),
                port("last_port"),
            )
        })
        .collect()
}

/// Runs `python3 -c script` in namespace `ns`, its output piped.
fn python(ns: &str, script: &str) -> Child {
    Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start python3")
}

/// Kills a helper process on drop (a failed assertion must not leave it).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The next line `child` prints (empty at its end).
fn line_of(out: &mut BufReader<std::process::ChildStdout>) -> String {
    let mut line = String::new();
    let _ = out.read_line(&mut line);
    line.trim().to_string()
}

/// "a.b.c.d port ..." -> (address, port).
fn endpoint(text: &str) -> (Ipv4Addr, u16) {
    let mut it = text.split_whitespace();
    let addr = it.next().and_then(|a| a.parse().ok());
    let port = it.next().and_then(|p| p.parse().ok());
    match (addr, port) {
        (Some(a), Some(p)) => (a, p),
        _ => panic!("expected an address and a port, found {text:?}"),
    }
}

#[test]
fn nat44_translates_tcp_and_udp_hairpins_and_logs_every_block() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(why) = unavailable() {
        skip(
            "nat44_translates_tcp_and_udp_hairpins_and_logs_every_block",
            &why,
        );
        return;
    }
    let dir = ScratchDir::new("nat-lab");
    let (up_bin, cp_bin, mut lab) = nat_lab("vbn", &dir);
    let log = dir.join("nat-blocks.jsonl");
    let log_s = log.display().to_string();
    let nfcapd_dir = dir.join("nfcapd");
    let (collector, is_nfcapd) = start_collector(lab.bng.name(), &nfcapd_dir);
    let capture = lab
        .start_capture("lo", "udp port 4739")
        .expect("capture the IPFIX export");
    lab.start_user_plane_with(
        &up_bin,
        &[
            "--nat-pool",
            NAT_POOL,
            "--nat-log",
            &log_s,
            "--nat-ipfix",
            COLLECTOR,
            // The sessions' table preallocated, as an operator would at scale.
            "--session-capacity",
            "4096",
        ],
    )
    .expect("start vbng-up");
    let (addr1, addr2) = control_plane_and_subscribers(&mut lab, &cp_bin);

    // TCP: iperf3 through the NAT; the server sees a pool address.
    lab.start_iperf_server().expect("iperf3 server");
    let report = lab
        .iperf(Subscriber::One, false, 2, 1.0, 0)
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.logs()));
    let sent = report["end"]["sum_sent"]["bytes"].as_f64().unwrap_or(0.0);
    assert!(sent > 0.0, "iperf3 sent nothing: {report}");
    let server_log = std::fs::read_to_string(dir.join("iperf3-server.log")).unwrap_or_default();
    let accepted = server_log
        .lines()
        .find_map(|l| l.split("Accepted connection from ").nth(1))
        .unwrap_or_else(|| panic!("no connection in the iperf3 log: {server_log}"));
    let (tcp_src, tcp_port) = endpoint(&accepted.replace(", port", ""));
    assert!(
        in_nat_pool(tcp_src),
        "TCP source {tcp_src} is not in {NAT_POOL}"
    );
    assert!(tcp_port >= 1024, "TCP source port {tcp_port}");

    // UDP, and hairpinning between the two subscribers (one worker: within it).
    let out1 = hairpin(&lab, addr1, addr2);
    assert!(
        wait_until(Duration::from_secs(3), || {
            lab.up_metric("vbng_up_nat_hairpins_total{scope=\"worker\"}")
                .unwrap_or(0.0)
                >= 1.0
        }),
        "the hairpin is not counted"
    );

    // A TTL-1 packet from the Internet host to subscriber 1's outside address
    // dies at the user plane, which answers it as it arrived.
    let dying = lab
        .inet
        .stdout_of(
            "ping",
            &["-n", "-c", "1", "-t", "1", "-W", "2", &out1.to_string()],
        )
        .unwrap_or_else(|e| panic!("ping -t 1 {out1}: {e}"));
    assert!(
        dying.contains("From 198.51.100.2") && dying.contains("Time to live exceeded"),
        "TTL-1 ping to the outside address: {dying}\n{}",
        lab.logs()
    );

    // The metrics and the port-block log.
    assert!(lab.up_metric("vbng_up_nat_mappings").unwrap() >= 1.0);
    let logged = |inside: Ipv4Addr| {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines().any(|l| {
            l.contains("\"event\":\"block_allocated\"")
                && l.contains(&format!("\"inside\":\"{inside}\""))
                && l.contains("\"outside\":\"192.0.2.")
        })
    };
    assert!(
        wait_until(Duration::from_secs(3), || logged(addr1) && logged(addr2)),
        "NAT log {}:\n{}",
        log.display(),
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // The same blocks over IPFIX: nfdump reads them from what the collector
    // stored, and tshark decodes every logged allocation from the capture.
    assert!(
        wait_until(Duration::from_secs(3), || {
            lab.up_metric("vbng_up_nat_ipfix_records_total")
                .unwrap_or(0.0)
                >= logged_allocations(&log).len() as f64
        }),
        "IPFIX records sent: {:?}\n{}",
        lab.up_metric("vbng_up_nat_ipfix_records_total"),
        lab.logs()
    );
    assert_eq!(
        lab.up_metric("vbng_up_nat_ipfix_send_errors_total")
            .unwrap(),
        0.0
    );
    std::thread::sleep(Duration::from_millis(300));
    lab.stop_daemon("tshark");
    let logged = logged_allocations(&log);
    assert!(logged.len() >= 2, "{logged:?}");
    if is_nfcapd {
        let stored = nfdump_allocations(collector, &nfcapd_dir);
        for (inside, outside, _, _) in &logged {
            assert!(
                stored.contains(&(inside.clone(), outside.clone())),
                "({inside}, {outside}) is in the JSON log but nfdump read only {stored:?}"
            );
        }
        let _ = writeln!(
            std::io::stderr(),
            "lab_nat: IPFIX: nfcapd stored {} port block allocation(s)",
            stored.len()
        );
    } else {
        drop(collector);
    }
    let exported = ipfix_allocations(&capture);
    for block in &logged {
        assert!(
            exported.contains(block),
            "{block:?} is in the JSON log but not in the IPFIX export {exported:?}"
        );
    }
    let _ = writeln!(
        std::io::stderr(),
        "lab_nat: IPFIX: tshark decoded {} port block allocation(s), the JSON log has {}",
        exported.len(),
        logged.len()
    );
}

#[test]
fn nat44_hairpins_across_two_dpdk_workers() {
    let test = "nat44_hairpins_across_two_dpdk_workers";
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(why) = unavailable().or_else(libdpdk_unavailable) {
        skip(test, &why);
        return;
    }
    let file_prefix = format!("vbng-lab-nat-{}", std::process::id());
    let _runtime = RuntimeDirs(vec![file_prefix.clone()]);
    let dir = ScratchDir::new("nat-workers-lab");
    let (up_bin, cp_bin, mut lab) = nat_lab("vbw", &dir);
    let config = up_config_with_queue_pairs(&dir, &file_prefix, 2);
    let config = config.display().to_string();
    let log = dir.join("nat-blocks.jsonl").display().to_string();
    let args = [
        "--config",
        &config,
        "--workers",
        "2",
        "--nat-pool",
        NAT_POOL,
        "--nat-log",
        &log,
    ];
    lab.start_user_plane_args(&up_bin, &args)
        .expect("start vbng-up");
    let (addr1, addr2) = control_plane_and_subscribers(&mut lab, &cp_bin);
    // Sessions (and their shares of the pool) belong to the worker of their address.
    let map = WorkerMap::new(&DEFAULT_RSS_KEY, 2);
    let (owner1, owner2) = (map.owner_of_ipv4(addr1), map.owner_of_ipv4(addr2));

    let out1 = hairpin(&lab, addr1, addr2);
    assert_eq!(
        map.owner_of_ipv4(out1),
        owner1,
        "{out1} from the owner's share"
    );
    let series = |scope: &str| format!("vbng_up_nat_hairpins_total{{scope=\"{scope}\"}}");
    // The workers publish their counters on their own clock.
    let counts = || {
        (
            lab.up_metric(&series("worker")).unwrap_or(0.0),
            lab.up_metric(&series("across")).unwrap_or(0.0),
        )
    };
    wait_until(Duration::from_secs(3), || {
        let (within, across) = counts();
        within + across >= 1.0
    });
    let (within, across) = counts();
    if owner1 == owner2 {
        assert!(within >= 1.0, "no hairpin within the worker");
    } else {
        assert!(
            across >= 1.0,
            "subscribers on workers {owner1} and {owner2}: no hairpin across them\n{}",
            lab.logs()
        );
    }
    let _ = writeln!(
        std::io::stderr(),
        "lab_nat::{test}: {addr1} on worker {owner1}, {addr2} on worker {owner2}; \
         hairpins within a worker {within}, across workers {across}"
    );
    lab.check_daemons().expect("daemons still running");
}
