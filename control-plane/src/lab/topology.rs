//! The namespace lab: two subscribers, the BNG and an Internet host.
//!
//! ```text
//!  <p>sub1 eth0 (untagged) -------------------------- acc0 \
//!                                                          <p>bng: vbng-up (acc0, acc1, core0)
//!  <p>sub2 eth0 -- u0 <p>an n0 (C-VLAN 100, option 82) -- acc1 /    vbng-cp (loopback)
//!                                                              core0 -- eth0 <p>inet 198.51.100.1
//!                                                                                  2001:db8:ffff::1
//! ```
//!
//! `<p>an` is a software access node ([`super::access_node`]): it tags
//! subscriber 2's frames with C-VLAN 100 and inserts DHCP option 82, as an
//! OLT or DSLAM does in front of a BNG.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::LabError;
use super::access_node::{AccessNode, Line};
use super::netns::{Netns, veth, which};
use super::procs::{Daemon, Dhclient};

/// The lab's PPPoE user name (subscriber file `[[users]]`).
pub const PPP_USER: &str = "ppp-user";
/// Its password.
pub const PPP_PASSWORD: &str = "ppp-pass";
/// Subscriber 1's MAC address (untagged, on access port 0).
pub const SUB1_MAC: &str = "02:00:00:00:00:11";
/// Subscriber 2's MAC address (C-VLAN 100, on access port 1).
pub const SUB2_MAC: &str = "02:00:00:00:00:12";
/// Subscriber 2's C-VLAN, added by the access node.
pub const SUB2_VLAN: u16 = 100;
/// Option 82 circuit-id the access node stamps on subscriber 2's DHCP.
pub const SUB2_CIRCUIT_ID: &str = "an1 xpon 0/1/1:100";
/// Option 82 remote-id the access node stamps on subscriber 2's DHCP.
pub const SUB2_REMOTE_ID: &str = "line-0002";
/// The Internet host's address.
pub const INTERNET_HOST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// The user plane's core-side address.
pub const UP_CORE_ADDR: &str = "198.51.100.2/24";
/// The Internet host's IPv6 address, the user plane's IPv6 next hop.
pub const INTERNET_HOST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1);
/// The user plane's core-side IPv6 address: the Internet host routes subscriber
/// prefixes to it ([`Lab::route6_to_user_plane`]).
pub const UP_CORE_ADDR6: &str = "2001:db8:ffff::2/64";

/// vbng-up's flags for IPv6 on the lab's core link: its address and the Internet host as
/// the next hop (also for a configuration file that names the ports itself).
pub const UP_CORE_IPV6_FLAGS: [&str; 4] = [
    "--core-ipv6",
    UP_CORE_ADDR6,
    "--next-hop6",
    "2001:db8:ffff::1",
];
/// The subscriber pool the control plane hands out (embedded default).
pub const POOL: (Ipv4Addr, u8) = (Ipv4Addr::new(100, 64, 0, 0), 24);
/// First and last address of the pool's range (embedded default).
pub const POOL_RANGE: (Ipv4Addr, Ipv4Addr) = (
    Ipv4Addr::new(100, 64, 0, 10),
    Ipv4Addr::new(100, 64, 0, 250),
);
/// DNS server the pool announces (embedded default).
pub const POOL_DNS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
/// The control plane's REST API inside the BNG namespace.
pub const CP_API: &str = "http://127.0.0.1:8080";
/// The user plane's metrics endpoint inside the BNG namespace.
pub const UP_METRICS: &str = "http://127.0.0.2:9100/metrics";

/// Which lab subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subscriber {
    /// Untagged, on access port 0.
    One,
    /// Behind the access node (C-VLAN 100, option 82), access port 1.
    Two,
}

impl Subscriber {
    /// The subscriber's interface inside its namespace.
    pub fn iface(self) -> &'static str {
        "eth0"
    }

    /// The subscriber's MAC address.
    pub fn mac(self) -> &'static str {
        match self {
            Subscriber::One => SUB1_MAC,
            Subscriber::Two => SUB2_MAC,
        }
    }
}

/// A running lab. Dropping it stops every process and deletes every
/// namespace (and so every veth) it made, whatever state it is in.
#[derive(Debug)]
pub struct Lab {
    // Field order is drop order: clients and daemons stop before their
    // namespaces go away.
    dhclients: Vec<(Subscriber, Dhclient)>,
    daemons: Vec<Daemon>,
    /// Held for its Drop: the forwarding threads stop with the lab.
    _access_node: AccessNode,
    /// Subscriber 1's namespace.
    pub sub1: Netns,
    /// Subscriber 2's namespace.
    pub sub2: Netns,
    /// The access node's namespace, between subscriber 2 and the BNG.
    pub an: Netns,
    /// The BNG's namespace (vbng-up and vbng-cp).
    pub bng: Netns,
    /// The Internet host's namespace.
    pub inet: Netns,
    /// Configs, logs and lease files.
    pub dir: PathBuf,
}

impl Lab {
    /// Builds the namespaces and links, named `<prefix>sub1` and so on, with
    /// scratch files in `dir`.
    pub fn build(prefix: &str, dir: &Path) -> Result<Self, LabError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| LabError::Command(format!("create {}: {e}", dir.display())))?;
        let sub1 = Netns::create(&format!("{prefix}sub1"))?;
        let sub2 = Netns::create(&format!("{prefix}sub2"))?;
        let an = Netns::create(&format!("{prefix}an"))?;
        let bng = Netns::create(&format!("{prefix}bng"))?;
        let inet = Netns::create(&format!("{prefix}inet"))?;
        veth((&sub1, "eth0", Some(SUB1_MAC)), (&bng, "acc0", None))?;
        veth((&sub2, "eth0", Some(SUB2_MAC)), (&an, "u0", None))?;
        veth((&an, "n0", None), (&bng, "acc1", None))?;
        veth((&inet, "eth0", None), (&bng, "core0", None))?;
        let line = Line {
            cvlan: SUB2_VLAN,
            circuit_id: SUB2_CIRCUIT_ID.into(),
            remote_id: SUB2_REMOTE_ID.into(),
        };
        let access_node = AccessNode::start(an.name(), "u0", "n0", line)?;
        inet.ip(&["addr", "add", "198.51.100.1/24", "dev", "eth0"])?;
        let pool = format!("{}/{}", POOL.0, POOL.1);
        inet.ip(&["route", "add", &pool, "via", "198.51.100.2"])?;
        // The lab's namespaces start with IPv6 off (no stray router and neighbour
        // discovery in the tests); the Internet host's link has it. nodad: the address
        // is usable at once, not after a second of duplicate address detection.
        inet.exec("sysctl", &["-qw", "net.ipv6.conf.eth0.disable_ipv6=0"])?;
        let host6 = format!("{INTERNET_HOST6}/64");
        inet.ip(&["-6", "addr", "add", &host6, "dev", "eth0", "nodad"])?;
        // veth hands its peer partially checksummed TCP/UDP and, with
        // segmentation offloads, super-frames larger than any wire MTU.
        // Every lab interface checksums and segments in software, as a NIC
        // would on a real access line.
        if which("ethtool").is_some() {
            let links = [
                (&sub1, "eth0"),
                (&sub2, "eth0"),
                (&an, "u0"),
                (&an, "n0"),
                (&bng, "acc0"),
                (&bng, "acc1"),
                (&bng, "core0"),
                (&inet, "eth0"),
            ];
            for (ns, dev) in links {
                ns.exec(
                    "ethtool",
                    &[
                        "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
                    ],
                )?;
            }
        }
        Ok(Lab {
            dhclients: Vec::new(),
            daemons: Vec::new(),
            _access_node: access_node,
            sub1,
            sub2,
            an,
            bng,
            inet,
            dir: dir.to_owned(),
        })
    }

    /// Namespace of a subscriber.
    pub fn ns(&self, who: Subscriber) -> &Netns {
        match who {
            Subscriber::One => &self.sub1,
            Subscriber::Two => &self.sub2,
        }
    }

    /// Starts vbng-up on the lab's ports with its embedded defaults.
    pub fn start_user_plane(&mut self, bin: &Path) -> Result<(), LabError> {
        self.start_user_plane_with(bin, &[])
    }

    /// [`Lab::start_user_plane`] with further `vbng-up` flags (such as
    /// `--acl-file FILE`).
    pub fn start_user_plane_with(&mut self, bin: &Path, extra: &[&str]) -> Result<(), LabError> {
        let ports = [
            "--access",
            "acc0",
            "--access",
            "acc1",
            "--core",
            "core0",
            "--core-ipv4",
            UP_CORE_ADDR,
            "--next-hop",
            "198.51.100.1",
        ];
        let log = self.dir.join("vbng-up.log");
        let args = [&ports[..], &UP_CORE_IPV6_FLAGS[..], extra].concat();
        let daemon = Daemon::start("vbng-up", self.bng.name(), bin, &args, log)?;
        self.daemons.push(daemon);
        Ok(())
    }

    /// Starts vbng-up with exactly `args` and none of the lab's port flags: for a
    /// configuration file that names the ports itself (DPDK devices, for example).
    pub fn start_user_plane_args(&mut self, bin: &Path, args: &[&str]) -> Result<(), LabError> {
        let log = self.dir.join("vbng-up.log");
        let daemon = Daemon::start("vbng-up", self.bng.name(), bin, args, log)?;
        self.daemons.push(daemon);
        Ok(())
    }

    /// Starts another long-running program inside namespace `ns` under `name`, logging
    /// to `<dir>/<name>.log`; the lab stops it (SIGTERM, then SIGKILL) like its own
    /// daemons, in start order, before the namespaces go away.
    pub fn start_daemon(
        &mut self,
        name: &str,
        ns: &str,
        program: &Path,
        args: &[&str],
    ) -> Result<(), LabError> {
        let log = self.dir.join(format!("{name}.log"));
        let daemon = Daemon::start(name, ns, program, args, log)?;
        self.daemons.push(daemon);
        Ok(())
    }

    /// Starts vbng-cp with its embedded defaults and the lab's subscriber file.
    pub fn start_control_plane(&mut self, bin: &Path) -> Result<(), LabError> {
        self.start_control_plane_with(bin, &[])
    }

    /// The BNG namespace (both planes and their loopback services).
    pub fn bng(&self) -> &Netns {
        &self.bng
    }

    /// [`Lab::start_control_plane`] with further `vbng-cp` flags (such as
    /// `--config FILE`).
    pub fn start_control_plane_with(&mut self, bin: &Path, extra: &[&str]) -> Result<(), LabError> {
        self.start_control_plane_with_subscribers(bin, &lab_subscribers(), extra)
    }

    /// [`Lab::start_control_plane_with`] with `subscribers` as the subscriber file
    /// (for example [`lab_subscribers`] plus further MACs).
    pub fn start_control_plane_with_subscribers(
        &mut self,
        bin: &Path,
        subscribers: &str,
        extra: &[&str],
    ) -> Result<(), LabError> {
        let file = self.dir.join("subscribers.toml");
        std::fs::write(&file, subscribers)
            .map_err(|e| LabError::Command(format!("write {}: {e}", file.display())))?;
        let subscribers = file.to_string_lossy().into_owned();
        // Leases survive a restart of the control plane (same file).
        let leases = self.dir.join("leases.jsonl");
        let leases = leases.to_string_lossy().into_owned();
        // A restarted control plane logs to a new file; the old log stays.
        let mut log = self.dir.join("vbng-cp.log");
        for n in 2.. {
            if !log.exists() {
                break;
            }
            log = self.dir.join(format!("vbng-cp-{n}.log"));
        }
        let daemon = Daemon::start(
            "vbng-cp",
            self.bng.name(),
            bin,
            &[
                &[
                    "--subscribers",
                    subscribers.as_str(),
                    "--lease-file",
                    leases.as_str(),
                ],
                extra,
            ]
            .concat(),
            log,
        )?;
        self.daemons.push(daemon);
        Ok(())
    }

    /// Starts tshark writing `filter`ed traffic of `iface` in the BNG
    /// namespace to a capture file; returns the file once the capture runs.
    /// Stop it with `stop_daemon("tshark")`.
    pub fn start_capture(&mut self, iface: &str, filter: &str) -> Result<PathBuf, LabError> {
        let tshark =
            which("tshark").ok_or_else(|| LabError::Command("tshark is not installed".into()))?;
        let file = self.dir.join("bng-capture.pcapng");
        let _ = std::fs::remove_file(&file);
        let path = file.to_string_lossy().into_owned();
        let args = ["-i", iface, "-f", filter, "-w", path.as_str(), "-q"];
        let log = self.dir.join("tshark.log");
        let daemon = Daemon::start("tshark", self.bng.name(), &tshark, &args, log.clone())?;
        self.daemons.push(daemon);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let started = std::fs::read_to_string(&log).unwrap_or_default();
            if started.contains("Capturing on") && file.exists() {
                return Ok(file);
            }
            self.check_daemons()?;
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(LabError::Command(format!(
            "tshark did not start capturing on {iface}"
        )))
    }

    /// Fails when a daemon has died, quoting its log.
    pub fn check_daemons(&mut self) -> Result<(), LabError> {
        self.daemons.iter_mut().try_for_each(Daemon::check_running)
    }

    /// Stops the daemon started under `name` (for example `vbng-cp`: the
    /// user plane keeps running) and forgets it.
    pub fn stop_daemon(&mut self, name: &str) {
        self.daemons.retain_mut(|d| {
            if d.name() == name {
                d.stop();
                false
            } else {
                true
            }
        });
    }

    /// Sends `signal` to the daemon started under `name`.
    pub fn signal_daemon(&mut self, name: &str, signal: i32) -> Result<(), LabError> {
        self.daemons
            .iter_mut()
            .find(|d| d.name() == name)
            .ok_or_else(|| LabError::Command(format!("no daemon named {name}")))?
            .signal(signal)
    }

    /// The last lines of every daemon's log, for failure reports.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for d in &self.daemons {
            out.push_str(&format!("--- {:?}\n{}\n", d, d.log_tail(20)));
        }
        out
    }

    /// Waits until the control plane reports every user plane associated.
    pub fn wait_associated(&mut self, timeout: Duration) -> Result<(), LabError> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            self.check_daemons()?;
            if let Ok(body) = self.http_get(&format!("{CP_API}/user-planes")) {
                if body.contains("\"state\":\"up\"") {
                    return Ok(());
                }
                last = body;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(LabError::Command(format!(
            "no PFCP association within {timeout:?}; /user-planes said: {last}\n{}",
            self.logs()
        )))
    }

    /// GET a URL from inside the BNG namespace and return the body.
    pub fn http_get(&self, url: &str) -> Result<String, LabError> {
        super::netns::http_get_in(self.bng.name(), url)
    }

    /// PATCH a JSON body to a URL from inside the BNG namespace; returns the
    /// status code and the body (error statuses included).
    pub fn http_patch(
        &self,
        url: &str,
        body: serde_json::Value,
    ) -> Result<(u16, String), LabError> {
        super::netns::http_patch_in(self.bng.name(), url, body)
    }

    /// Starts an iperf3 server on the Internet host (198.51.100.1:5201).
    pub fn start_iperf_server(&mut self) -> Result<(), LabError> {
        self.start_iperf_listener("iperf3", &INTERNET_HOST.to_string(), None)
    }

    /// Starts an iperf3 server on the Internet host's IPv6 address
    /// (`[2001:db8:ffff::1]:5201`), logging to `iperf3-6.log`.
    pub fn start_iperf6_server(&mut self) -> Result<(), LabError> {
        self.start_iperf_listener("iperf3-6", &INTERNET_HOST6.to_string(), None)
    }

    /// Starts another iperf3 server on the Internet host, on TCP `port`
    /// (daemon name `iperf3-<port>`): a second service for tests that tell
    /// flows apart by port.
    pub fn start_tcp_service(&mut self, port: u16) -> Result<(), LabError> {
        let name = format!("iperf3-{port}");
        self.start_iperf_listener(&name, &INTERNET_HOST.to_string(), Some(port))
    }

    /// Starts daemon `name`, an iperf3 server on the Internet host bound to
    /// `bind` (port 5201 unless given), logging to `<name>.log` (the first
    /// one to `iperf3-server.log`), and waits until it listens.
    fn start_iperf_listener(
        &mut self,
        name: &str,
        bind: &str,
        port: Option<u16>,
    ) -> Result<(), LabError> {
        let iperf3 =
            which("iperf3").ok_or_else(|| LabError::Command("iperf3 is not installed".into()))?;
        let log = match name {
            "iperf3" => self.dir.join("iperf3-server.log"),
            _ => self.dir.join(format!("{name}.log")),
        };
        let mut args = vec!["-s".to_string(), "-B".into(), bind.into()];
        if let Some(port) = port {
            args.extend(["-p".into(), port.to_string()]);
        }
        args.push("--forceflush".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let daemon = Daemon::start(name, self.inet.name(), &iperf3, &args, log.clone())?;
        self.daemons.push(daemon);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("listening")
            {
                return Ok(());
            }
            self.check_daemons()?;
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(LabError::Command(format!("{name} did not start")))
    }

    /// Routes `prefix` (an IPv6 prefix such as a subscriber pool) from the
    /// Internet host to the user plane's core IPv6 address.
    pub fn route6_to_user_plane(&self, prefix: &str) -> Result<(), LabError> {
        let up = UP_CORE_ADDR6.split('/').next().unwrap_or(UP_CORE_ADDR6);
        self.inet
            .ip(&["-6", "route", "add", prefix, "via", up])
            .map(|_| ())
    }

    /// True if a subscriber completes a TCP handshake with the Internet host
    /// on `port` within `timeout_s` seconds (bash's /dev/tcp, then closed).
    pub fn tcp_connects(&self, who: Subscriber, port: u16, timeout_s: u32) -> bool {
        let script = format!("exec 3<>/dev/tcp/{INTERNET_HOST}/{port}");
        self.ns(who)
            .exec(
                "timeout",
                &[&timeout_s.to_string(), "bash", "-c", script.as_str()],
            )
            .is_ok_and(|o| o.status.success())
    }

    /// Runs an iperf3 TCP test from a subscriber to the Internet host's
    /// server and returns iperf3's JSON report. `reverse` measures the
    /// downlink (the server sends); the first `omit_s` seconds (TCP slow
    /// start) are left out of the report.
    pub fn iperf(
        &self,
        who: Subscriber,
        reverse: bool,
        seconds: u32,
        interval_s: f32,
        omit_s: u32,
    ) -> Result<serde_json::Value, LabError> {
        let host = INTERNET_HOST.to_string();
        let (secs, interval, omit) = (
            seconds.to_string(),
            interval_s.to_string(),
            omit_s.to_string(),
        );
        let mut args = vec!["-c", &host, "-t", &secs, "-i", &interval, "-O", &omit, "-J"];
        if reverse {
            args.push("-R");
        }
        self.run_iperf(who, &args)
    }

    /// Runs an iperf3 UDP test from a subscriber to the Internet host's
    /// server at a constant `rate_bps` of UDP payload in datagrams of
    /// `payload` bytes, and returns iperf3's JSON report. `reverse` measures
    /// the downlink; the first `omit_s` seconds are left out of the report.
    pub fn iperf_udp(
        &self,
        who: Subscriber,
        reverse: bool,
        seconds: u32,
        omit_s: u32,
        rate_bps: u64,
        payload: u16,
    ) -> Result<serde_json::Value, LabError> {
        let host = INTERNET_HOST.to_string();
        let (secs, omit, rate, len) = (
            seconds.to_string(),
            omit_s.to_string(),
            rate_bps.to_string(),
            payload.to_string(),
        );
        let mut args = vec![
            "-c", &host, "-u", "-b", &rate, "-l", &len, "-t", &secs, "-O", &omit, "-J",
        ];
        if reverse {
            args.push("-R");
        }
        self.run_iperf(who, &args)
    }

    /// Runs iperf3 with `args` in `who`'s namespace and parses its JSON report.
    fn run_iperf(&self, who: Subscriber, args: &[&str]) -> Result<serde_json::Value, LabError> {
        // The iperf3 server answers one test at a time and, after a connection that sent
        // nothing (a reachability probe), closes and reopens its listening socket: a test
        // started in that moment is reset before it sends a byte. Such a refusal is tried
        // again; any failure once data flows is returned as it is.
        let mut attempt = 1;
        loop {
            let out = self.ns(who).exec("iperf3", args)?;
            let report: serde_json::Value = serde_json::from_slice(&out.stdout)
                .map_err(|e| LabError::Command(format!("iperf3 printed no JSON report: {e}")))?;
            if attempt == 3 || !iperf_refused_before_start(&report) {
                return Ok(report);
            }
            eprintln!(
                "iperf3 from {who:?}: refused before the test started ({}); trying again",
                report["error"].as_str().unwrap_or_default()
            );
            attempt += 1;
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The control plane's sessions as JSON values.
    pub fn sessions(&self) -> Result<Vec<serde_json::Value>, LabError> {
        let body = self.http_get(&format!("{CP_API}/sessions"))?;
        serde_json::from_str(&body)
            .map_err(|e| LabError::Command(format!("GET /sessions returned bad JSON: {e}: {body}")))
    }

    /// Sends one CoA or Disconnect request (`kind` "coa" or "disconnect")
    /// with `attrs` (radclient syntax, a Message-Authenticator is added)
    /// from the BNG namespace to the dynamic-authorization server at
    /// `server`, using the dictionaries in `raddb`; returns radclient's
    /// whole output (`-x`: the reply's code and attributes), NAKs included.
    pub fn radclient(
        &self,
        raddb: &Path,
        server: &str,
        kind: &str,
        secret: &str,
        attrs: &str,
    ) -> Result<String, LabError> {
        // radclient exits non-zero on a NAK: the script always succeeds so
        // that the reply's attributes come back either way.
        let script = format!(
            "echo '{attrs}, Message-Authenticator = 0x00' | radclient -x -t 2 -r 1 -d {} \
             {server} {kind} {secret} 2>&1; exit 0",
            raddb.display()
        );
        let out = self.bng.exec("sh", &["-c", &script])?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Waits up to `timeout` until the control plane lists exactly `want`
    /// sessions and returns them; the error quotes the last list and the
    /// daemons' logs.
    pub fn wait_sessions(
        &self,
        want: usize,
        timeout: Duration,
    ) -> Result<Vec<serde_json::Value>, LabError> {
        let deadline = Instant::now() + timeout;
        loop {
            let sessions = self.sessions()?;
            if sessions.len() == want {
                return Ok(sessions);
            }
            if Instant::now() >= deadline {
                return Err(LabError::Command(format!(
                    "expected {want} sessions, have {}: {sessions:?}\n{}",
                    sessions.len(),
                    self.logs()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits up to `timeout` until the user plane holds `want` sessions
    /// (`vbng_up_sessions`); the error quotes the daemons' logs.
    pub fn wait_up_sessions(&self, want: u64, timeout: Duration) -> Result<(), LabError> {
        let deadline = Instant::now() + timeout;
        while self.up_metric("vbng_up_sessions").ok() != Some(want as f64) {
            if Instant::now() >= deadline {
                return Err(LabError::Command(format!(
                    "the user plane does not hold {want} sessions\n{}",
                    self.logs()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// One sample of the user plane's Prometheus metrics, `name{labels}` as
    /// written on the exposition line (for example
    /// `vbng_up_drops_total{reason="anti_spoof"}`); 0 when absent.
    pub fn up_metric(&self, series: &str) -> Result<f64, LabError> {
        let text = self.http_get(UP_METRICS)?;
        Ok(metric_value(&text, series).unwrap_or(0.0))
    }

    /// Runs dhclient for a subscriber until it is bound; returns the address
    /// the interface received.
    pub fn dhcp(&mut self, who: Subscriber) -> Result<Ipv4Addr, LabError> {
        let tag = format!("{who:?}").to_lowercase();
        let client = Dhclient::new(self.ns(who).name(), who.iface(), &self.dir, &tag)?;
        let result = client.obtain_lease();
        self.dhclients.push((who, client));
        let log = result?;
        self.ipv4_of(who).ok_or_else(|| {
            LabError::Command(format!(
                "dhclient finished but {} has no address:\n{log}",
                who.iface()
            ))
        })
    }

    /// Runs a subscriber's DHCP client again with its lease file, as after a
    /// reboot: INIT-REBOOT, a REQUEST for the address it holds. The previous
    /// background client is replaced. Returns the address bound.
    pub fn rebind(&self, who: Subscriber) -> Result<Ipv4Addr, LabError> {
        let Some((_, client)) = self.dhclients.iter().find(|(w, _)| *w == who) else {
            return Err(LabError::Command(format!(
                "{who:?} has no DHCP client running"
            )));
        };
        client.kill();
        let log = client.obtain_lease()?;
        self.ipv4_of(who).ok_or_else(|| {
            LabError::Command(format!(
                "dhclient finished but {} has no address:\n{log}",
                who.iface()
            ))
        })
    }

    /// Releases a subscriber's lease (DHCPRELEASE) and stops its client.
    pub fn release(&mut self, who: Subscriber) -> Result<(), LabError> {
        let pos = self.dhclients.iter().position(|(w, _)| *w == who);
        let Some(pos) = pos else {
            return Err(LabError::Command(format!(
                "{who:?} has no DHCP client running"
            )));
        };
        let (_, client) = self.dhclients.remove(pos);
        client.release()
    }

    /// The IPv4 address configured on a subscriber's interface, if any.
    pub fn ipv4_of(&self, who: Subscriber) -> Option<Ipv4Addr> {
        let out = self
            .ns(who)
            .ip(&["-4", "-o", "addr", "show", "dev", who.iface()])
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let word = text
            .split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)?;
        word.split('/').next()?.parse().ok()
    }

    /// Pings the Internet host from a subscriber; returns ping's summary
    /// line on success.
    pub fn ping_internet(&self, who: Subscriber, count: u32) -> Result<String, LabError> {
        let count = count.to_string();
        let host = INTERNET_HOST.to_string();
        let out = self
            .ns(who)
            .exec("ping", &["-n", "-c", &count, "-i", "0.2", "-W", "2", &host])?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        Ok(text
            .lines()
            .find(|l| l.contains("packet loss"))
            .unwrap_or_default()
            .to_owned())
    }
}

/// The lab's local subscriber file: both lab MACs allowed into the default
/// pool with a rate each (subscriber 1: 10 Mbit/s both ways), carried to the
/// user plane as the QER MBR; anyone else refused.
pub fn lab_subscribers() -> String {
    format!(
        "# Lab subscribers: both MACs into the default pool; unknown MACs refused.\n\
         [default]\npolicy = \"deny\"\n\n\
         [[subscribers]]\nmac = \"{SUB1_MAC}\"\npool = \"default\"\n\
         rate = {{ up_kbps = 10000, down_kbps = 10000 }}\n\n\
         [[subscribers]]\nmac = \"{SUB2_MAC}\"\npool = \"default\"\n\
         rate = {{ up_kbps = 20000, down_kbps = 100000 }}\n\n\
         # PPPoE users (PAP or CHAP).\n\
         [[users]]\nname = \"{PPP_USER}\"\npassword = \"{PPP_PASSWORD}\"\n\
         rate = {{ up_kbps = 10000, down_kbps = 10000 }}\n"
    )
}

/// Finds the value of one series in Prometheus text exposition.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// True if an iperf3 JSON report says the test never started: the control connection was
/// refused, reset or found the server busy before any interval was measured.
fn iperf_refused_before_start(report: &serde_json::Value) -> bool {
    let Some(error) = report["error"].as_str() else {
        return false;
    };
    let started = report["intervals"]
        .as_array()
        .is_some_and(|i| !i.is_empty());
    !started
        && [
            "unable to receive control message",
            "unable to send control message",
            "unable to connect to server",
            "unable to send cookie",
            "the server is busy",
        ]
        .iter()
        .any(|m| error.contains(m))
}

#[cfg(test)]
mod tests {
    use super::iperf_refused_before_start;

    #[test]
    fn only_refusals_before_the_first_interval_are_retried() {
        let refused = serde_json::json!({
            "error": "unable to receive control message: Connection reset by peer",
            "intervals": [],
        });
        assert!(iperf_refused_before_start(&refused));
        let busy =
            serde_json::json!({"error": "the server is busy running a test. try again later"});
        assert!(iperf_refused_before_start(&busy));
        let midway = serde_json::json!({
            "error": "unable to receive control message: Connection reset by peer",
            "intervals": [{"sum": {"bytes": 1000}}],
        });
        assert!(!iperf_refused_before_start(&midway));
        let other = serde_json::json!({"error": "unable to create a new stream", "intervals": []});
        assert!(!iperf_refused_before_start(&other));
        assert!(!iperf_refused_before_start(&serde_json::json!({"end": {}})));
    }
}
