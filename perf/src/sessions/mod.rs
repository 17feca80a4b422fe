//! `vbng-perf sessions`: PPPoE or IPoE sessions set up and torn down per second, end to
//! end against a real vbng-cp, beside the same client emulator against a canned responder.
//!
//! Two runs of the same size, window and rate, in this process:
//!
//! 1. **Baseline**, [`canned::CannedResponder`]: a stateless responder answering each
//!    client message with a canned reply over GTP-U. What the harness itself (emulator,
//!    sockets, loopback) can do on this machine.
//! 2. **vbng-cp**: the control plane's service ([`vbng_cp::service::start`]) in this
//!    process on loopback ports (two tokio workers), with a generated local subscriber file
//!    (one `[[users]]` entry per PPPoE client, one `[[subscribers]]` MAC entry per IPoE
//!    client, `[default] policy = "deny"`), a /16 pool and one user plane: the in-process
//!    [`fake_up::FakeUp`], which answers PFCP. Every session costs the control plane
//!    discovery, LCP, PAP and IPCP (PPPoE) or DISCOVER/OFFER/REQUEST/ACK (IPoE), the AAA
//!    lookup, the address from the pool and the PFCP Session Establishment round trip; its
//!    teardown (PADT or DHCPRELEASE) costs the PFCP Session Deletion round trip.
//!
//! The emulator ([`emulator`]) is built on vbng-access's client state machines. See
//! perf/README.md for what is timed and how to read the figures.

pub mod canned;
pub mod emulator;
pub mod fake_up;
pub mod stats;

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vbng_access::dhcpv4::PoolConfig;
use vbng_cp::aaa::LocalSubscribers;
use vbng_cp::config::pppoe::PppAuth;
use vbng_cp::config::{Config, UserPlaneConfig};
use vbng_cp::cups::UpState;

use crate::radius::process_cpu;
use crate::report::Figure;
use crate::timing::Machine;
use emulator::{
    Emulator, EmulatorConfig, EmulatorResult, Exchange, Progress, client_mac, password, user_name,
};
use stats::{Percentiles, WindowRates, percentiles, window_rates};

/// Which subscribers to emulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// PPPoE: discovery, LCP, PAP, IPCP; PADT to end.
    Pppoe,
    /// IPoE: DHCPv4 DORA; DHCPRELEASE to end.
    Ipoe,
}

impl Protocol {
    /// `pppoe` or `ipoe`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Pppoe => "pppoe",
            Protocol::Ipoe => "ipoe",
        }
    }
}

/// What a user plane (or the canned responder) did for a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// Answered the client's Session Establishment (canned: acknowledged its last message).
    Established,
    /// Answered the client's Session Deletion (canned: received its PADT or RELEASE).
    Deleted,
}

/// A user plane notice for the emulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notice {
    /// What happened.
    pub kind: NoticeKind,
    /// To which client (its index).
    pub client: u32,
    /// When (just after the answer was sent).
    pub at: Instant,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct SessionsArgs {
    /// PPPoE or IPoE.
    pub protocol: Protocol,
    /// Sessions per run.
    pub count: u32,
    /// Most sessions started per second, if limited.
    pub rate: Option<f64>,
    /// Most sessions being set up (or torn down) at once.
    pub window: usize,
    /// A session not up (or down) this long after it started has failed.
    pub timeout: Duration,
    /// Progress display.
    pub progress: Progress,
    /// Also run the canned-responder baseline.
    pub baseline: bool,
}

/// One run's measurements.
#[derive(Debug, Clone)]
pub struct Run {
    /// `vbng-cp` or `canned`.
    pub server: &'static str,
    /// What the emulator measured.
    pub result: EmulatorResult,
    /// User + system CPU of this process over the run (server and emulator together).
    pub cpu: Duration,
}

impl Run {
    /// Setup rates per one-second window.
    pub fn setup_rates(&self) -> WindowRates {
        window_rates(&self.result.setup.completions)
    }

    /// Teardown rates per one-second window.
    pub fn teardown_rates(&self) -> WindowRates {
        window_rates(&self.result.teardown.completions)
    }

    /// Setup latency percentiles (ms).
    pub fn setup_latency(&self) -> Percentiles {
        percentiles(&self.result.setup.latencies)
    }

    /// Teardown latency percentiles (ms).
    pub fn teardown_latency(&self) -> Percentiles {
        percentiles(&self.result.teardown.latencies)
    }
}

/// PPPoE limits raised for the run (default in the comment), so that the benchmark's own
/// traffic is not throttled: every client is on the same port and VLAN.
pub const PADI_PER_PORT_PPS: u32 = 10_000_000; // default 500

/// The subscriber pool: a /16, enough for 65,000 sessions.
pub fn pool() -> PoolConfig {
    PoolConfig {
        name: "default".into(),
        network: Ipv4Addr::new(100, 64, 0, 0),
        prefix_len: 16,
        gateway: Ipv4Addr::new(100, 64, 0, 1),
        range_start: Ipv4Addr::new(100, 64, 0, 10),
        range_end: Ipv4Addr::new(100, 64, 255, 250),
        dns: vec![Ipv4Addr::new(192, 0, 2, 53), Ipv4Addr::new(192, 0, 2, 54)],
        lease_time_s: 3600,
    }
}

/// Most sessions the pool can hold.
pub const MAX_SESSIONS: u32 = 65_000;

/// The vbng-cp configuration of a run of `count` sessions: loopback ports, one user
/// plane, the /16 pool, PAP, and the PPPoE limits raised (see [`PADI_PER_PORT_PPS`]).
pub fn cp_config(count: u32, up_pfcp: SocketAddr, up_gtpu: SocketAddr) -> Config {
    let mut cfg = Config::default();
    cfg.pfcp.listen = (Ipv4Addr::LOCALHOST, 0).into();
    cfg.gtpu.listen = (Ipv4Addr::LOCALHOST, 0).into();
    cfg.api.listen = (Ipv4Addr::LOCALHOST, 0).into();
    cfg.user_planes = vec![UserPlaneConfig {
        name: "up0".into(),
        pfcp: up_pfcp,
        gtpu: Some(up_gtpu),
    }];
    cfg.pools = vec![pool()];
    cfg.pppoe.auth = PppAuth::Pap;
    cfg.pppoe.padi_per_port_pps = PADI_PER_PORT_PPS;
    cfg.pppoe.max_sessions_per_vlan = count.saturating_add(1000);
    cfg.dhcp.max_tracked_macs = cfg.dhcp.max_tracked_macs.max(count as usize * 2);
    cfg
}

/// The generated local subscriber file of `count` clients: a `[[users]]` entry per PPPoE
/// client (user name and password of [`user_name`], [`password`]) and a `[[subscribers]]`
/// entry per IPoE client MAC; nobody else is let in.
pub fn subscriber_file(count: u32) -> String {
    let mut s = String::with_capacity(count as usize * 120);
    s.push_str("[default]\npolicy = \"deny\"\n");
    for i in 0..count {
        let _ = write!(
            s,
            "\n[[users]]\nname = \"{}\"\npassword = \"{}\"\n",
            user_name(i),
            password(i)
        );
    }
    for i in 0..count {
        let m = client_mac(i);
        let _ = write!(
            s,
            "\n[[subscribers]]\nmac = \"{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}\"\n",
            m[0], m[1], m[2], m[3], m[4], m[5]
        );
    }
    s
}

/// Asks for 4 MB socket buffers (capped by net.core.[rw]mem_max), so that bursts of a
/// window's frames are not lost in the harness's own sockets.
pub fn grow_buffers(socket: &UdpSocket) {
    use std::os::fd::AsRawFd as _;
    let size: libc::c_int = 4 << 20;
    for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        // SAFETY: the fd is a live socket owned by `socket`; the option value is a c_int
        // that outlives the call, and its size is passed with it.
        let _ = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }
}

fn emulator_config(args: &SessionsArgs, server: SocketAddr, label: &str) -> EmulatorConfig {
    EmulatorConfig {
        protocol: args.protocol,
        count: args.count,
        window: args.window,
        rate: args.rate,
        timeout: args.timeout,
        server,
        progress: args.progress,
        label: label.into(),
        trace: false,
    }
}

fn client_socket() -> Result<UdpSocket, String> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("bind: {e}"))?;
    grow_buffers(&socket);
    Ok(socket)
}

/// The baseline run: the emulator against the canned responder.
pub fn run_canned(args: &SessionsArgs) -> Result<Run, String> {
    let (tx, rx) = mpsc::channel();
    let responder =
        canned::CannedResponder::start(tx).map_err(|e| format!("canned responder: {e}"))?;
    let label = format!("{} canned", args.protocol.as_str());
    let cfg = emulator_config(args, responder.addr, &label);
    let cpu = process_cpu();
    let result = Emulator::new(cfg, client_socket()?, rx)
        .run()
        .map_err(|e| format!("emulator: {e}"))?;
    let cpu = process_cpu().saturating_sub(cpu);
    drop(responder);
    Ok(Run {
        server: "canned",
        result,
        cpu,
    })
}

/// The run against vbng-cp (in this process) and the fake user plane. With `trace`, the
/// messages of client 0 are recorded.
pub fn run_cp(
    args: &SessionsArgs,
    trace: bool,
    cfg_edit: impl FnOnce(&mut Config),
) -> Result<Run, String> {
    if args.count > MAX_SESSIONS {
        return Err(format!(
            "--count {} exceeds the pool's {MAX_SESSIONS} addresses",
            args.count
        ));
    }
    let (tx, rx) = mpsc::channel();
    let up = fake_up::FakeUp::start(tx).map_err(|e| format!("fake user plane: {e}"))?;
    let socket = client_socket()?;
    let gtpu = socket.local_addr().map_err(|e| e.to_string())?;
    let mut cfg = cp_config(args.count, up.addr, gtpu);
    cfg_edit(&mut cfg);
    let subs = LocalSubscribers::parse("<generated subscribers>", &subscriber_file(args.count))
        .map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("vbng-cp")
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let running = rt
        .block_on(vbng_cp::service::start(cfg, subs))
        .map_err(|e| format!("vbng-cp: {e:#}"))?;
    let up_handle = running.sessions.user_planes()[0].clone();
    let associated = Instant::now();
    while up_handle.status().state != UpState::Up {
        if associated.elapsed() > Duration::from_secs(10) {
            return Err("the fake user plane did not associate within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let label = format!("{} vbng-cp", args.protocol.as_str());
    let mut ecfg = emulator_config(args, running.gtpu_addr, &label);
    ecfg.trace = trace;
    let cpu = process_cpu();
    let result = Emulator::new(ecfg, socket, rx).run();
    let cpu = process_cpu().saturating_sub(cpu);
    let _ = rt.block_on(running.shutdown());
    rt.shutdown_timeout(Duration::from_secs(2));
    drop(up);
    Ok(Run {
        server: "vbng-cp",
        result: result.map_err(|e| format!("emulator: {e}"))?,
        cpu,
    })
}

/// One PPPoE session (PAP, as the lab's pppd did it against `auth = "chap-then-pap"`)
/// against vbng-cp with its default pool and PPPoE settings: the messages exchanged, in
/// the order the emulator sent and received them.
pub fn trace_one_pppoe_session() -> Result<Vec<Exchange>, String> {
    let args = SessionsArgs {
        protocol: Protocol::Pppoe,
        count: 1,
        rate: None,
        window: 1,
        timeout: Duration::from_secs(10),
        progress: Progress::Off,
        baseline: false,
    };
    let run = run_cp(&args, true, |cfg| {
        cfg.pppoe.auth = PppAuth::ChapThenPap;
        cfg.pools = vec![PoolConfig {
            dns: vec![Ipv4Addr::new(192, 0, 2, 53)],
            ..pool()
        }];
    })?;
    if run.result.setup.completed != 1 {
        return Err(format!(
            "the session failed: {:?}",
            run.result.setup.failures
        ));
    }
    Ok(run.result.trace)
}

/// Runs the baseline (if asked) and vbng-cp; returns the figures and both runs.
pub fn run(args: &SessionsArgs) -> Result<(Vec<Figure>, Vec<Run>), String> {
    let mut runs = Vec::new();
    if args.baseline {
        runs.push(run_canned(args)?);
    }
    runs.push(run_cp(args, false, |_| {})?);
    Ok((figures(args, &runs), runs))
}

fn figures(args: &SessionsArgs, runs: &[Run]) -> Vec<Figure> {
    let m = Machine::detect();
    let p = args.protocol.as_str();
    let mut out = Vec::new();
    let baseline = runs.iter().find(|r| r.server == "canned");
    for run in runs {
        let name = |what: &str| {
            if run.server == "canned" {
                format!("sessions.{p}.{what}_canned_responder")
            } else {
                format!("sessions.{p}.{what}")
            }
        };
        let common = |f: Figure| {
            f.param("count", args.count)
                .param("window", args.window)
                .param(
                    "rate_limit",
                    args.rate.map_or("none".to_string(), |r| format!("{r}")),
                )
                .param("server", run.server)
                .param("cpu", m.cpu.as_str())
                .param("cpus", m.cpus)
                .param("release_build", m.optimised)
        };
        let (s, t) = (run.setup_rates(), run.teardown_rates());
        let (sl, tl) = (run.setup_latency(), run.teardown_latency());
        let failures = |r: &emulator::PhaseResult| {
            if r.failures.is_empty() {
                "none".to_string()
            } else {
                r.failures
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            }
        };
        let mut setup = common(Figure::new(&name("setup_rate"), s.avg, "sessions/s"))
            .param("min_per_s", s.min)
            .param("max_per_s", s.max)
            .param("windows", s.windows)
            .param("sessions_up", run.result.setup.completed)
            .param("failures", failures(&run.result.setup))
            .param("latency_p50_ms", sl.p50)
            .param("latency_p90_ms", sl.p90)
            .param("latency_p99_ms", sl.p99)
            .param("latency_max_ms", sl.max)
            .param(
                "cpu_us_per_session",
                run.cpu.as_secs_f64() * 1e6 / f64::from(run.result.setup.completed).max(1.0),
            );
        let mut teardown = common(Figure::new(&name("teardown_rate"), t.avg, "sessions/s"))
            .param("min_per_s", t.min)
            .param("max_per_s", t.max)
            .param("windows", t.windows)
            .param("sessions_down", run.result.teardown.completed)
            .param("failures", failures(&run.result.teardown))
            .param("latency_p50_ms", tl.p50)
            .param("latency_p90_ms", tl.p90)
            .param("latency_p99_ms", tl.p99)
            .param("latency_max_ms", tl.max);
        let mut setup_p50 = common(Figure::new(&name("setup_latency_p50"), sl.p50, "ms"));
        if run.server != "canned"
            && let Some(b) = baseline
        {
            let bp = |w: &str| format!("sessions.{p}.{w}_canned_responder");
            setup = setup.with_baseline(&bp("setup_rate"), b.setup_rates().avg);
            teardown = teardown.with_baseline(&bp("teardown_rate"), b.teardown_rates().avg);
            setup_p50 = setup_p50.with_baseline(&bp("setup_latency_p50"), b.setup_latency().p50);
        }
        out.extend([setup, teardown, setup_p50]);
    }
    out
}

/// The human-readable report of `runs` (vbng-cp beside the canned responder).
pub fn text_report(args: &SessionsArgs, runs: &[Run]) -> String {
    let mut s = String::new();
    let m = Machine::detect();
    let _ = writeln!(
        s,
        "{}; vbng-cp in this process on 2 tokio workers, emulator and fake user plane on their own threads",
        m.summary()
    );
    let _ = writeln!(
        s,
        "vbng-perf sessions: {} x {}, window {}, rate {}, timeout {} s",
        args.count,
        args.protocol.as_str(),
        args.window,
        args.rate.map_or("unlimited".into(), |r| format!("{r}/s")),
        args.timeout.as_secs()
    );
    let _ = writeln!(
        s,
        "vbng-cp config for the run: local subscriber file ({} users, {} MAC entries, default deny), pool 100.64.0.0/16 with 2 DNS, pppoe.auth = \"pap\", PPPoE limits raised so the benchmark is not throttled: padi_per_port_pps {} (default 500), max_sessions_per_vlan {} (default 4096); per-MAC limits at their defaults (each client sends one PADI and one PADR)",
        args.count,
        args.count,
        PADI_PER_PORT_PPS,
        args.count.saturating_add(1000)
    );
    let col = |r: &Run| {
        if r.server == "canned" {
            "canned responder"
        } else {
            "vbng-cp"
        }
    };
    let _ = write!(s, "{:<34}", "");
    for r in runs {
        let _ = write!(s, "{:>24}", col(r));
    }
    let cp = runs.iter().find(|r| r.server == "vbng-cp");
    let base = runs.iter().find(|r| r.server == "canned");
    if cp.is_some() && base.is_some() {
        let _ = write!(s, "{:>10}", "ratio");
    }
    s.push('\n');
    let mut row = |label: &str, f: &dyn Fn(&Run) -> String, ratio: Option<&dyn Fn(&Run) -> f64>| {
        let _ = write!(s, "{label:<34}");
        for r in runs {
            let _ = write!(s, "{:>24}", f(r));
        }
        if let (Some(ratio), Some(c), Some(b)) = (ratio, cp, base) {
            let (vc, vb) = (ratio(c), ratio(b));
            if vb > 0.0 {
                let _ = write!(s, "{:>10.2}", vc / vb);
            }
        }
        s.push('\n');
    };
    row(
        "sessions up",
        &|r| format!("{}/{}", r.result.setup.completed, r.result.setup.started),
        None,
    );
    row(
        "setup/s per 1 s window min/avg/max",
        &|r| {
            let w = r.setup_rates();
            format!("{:.0}/{:.0}/{:.0}", w.min, w.avg, w.max)
        },
        Some(&|r| r.setup_rates().avg),
    );
    row(
        "setup latency ms p50/p90/p99/max",
        &|r| {
            let p = r.setup_latency();
            format!("{:.1}/{:.1}/{:.1}/{:.1}", p.p50, p.p90, p.p99, p.max)
        },
        Some(&|r| r.setup_latency().p50),
    );
    row(
        "sessions down",
        &|r| {
            format!(
                "{}/{}",
                r.result.teardown.completed, r.result.teardown.started
            )
        },
        None,
    );
    row(
        "teardown/s per 1 s window min/avg/max",
        &|r| {
            let w = r.teardown_rates();
            format!("{:.0}/{:.0}/{:.0}", w.min, w.avg, w.max)
        },
        Some(&|r| r.teardown_rates().avg),
    );
    row(
        "teardown latency ms p50/p90/p99/max",
        &|r| {
            let p = r.teardown_latency();
            format!("{:.1}/{:.1}/{:.1}/{:.1}", p.p50, p.p90, p.p99, p.max)
        },
        Some(&|r| r.teardown_latency().p50),
    );
    row(
        "CPU (process) per session, us",
        &|r| {
            let n = f64::from(r.result.setup.completed).max(1.0);
            format!("{:.0}", r.cpu.as_secs_f64() * 1e6 / n)
        },
        Some(&|r| r.cpu.as_secs_f64() / f64::from(r.result.setup.completed).max(1.0)),
    );
    row(
        "datagrams sent/received by clients",
        &|r| format!("{}/{}", r.result.datagrams.0, r.result.datagrams.1),
        None,
    );
    for r in runs {
        let mut failures: Vec<String> = Vec::new();
        for (phase, res) in [("setup", &r.result.setup), ("teardown", &r.result.teardown)] {
            failures.extend(
                res.failures
                    .iter()
                    .map(|(k, v)| format!("{phase} {k}: {v}")),
            );
        }
        let _ = writeln!(
            s,
            "failures ({}): {}",
            col(r),
            if failures.is_empty() {
                "none".to_string()
            } else {
                failures.join(", ")
            }
        );
    }
    s
}
