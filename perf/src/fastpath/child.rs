//! DPDK runs: the parent writes the pcaps, runs the testpmd baseline, then runs the DPDK
//! side in child processes of this binary (hidden subcommand `fastpath-child`), because
//! DPDK's EAL initialises only once per process: one child with the pipeline, one with the
//! same loop without the pipeline, one with the pipeline on copies (the design before
//! zero-copy), one with the raw `DpdkQueue` rx -> tx loop. A child prints one `FASTPATH-WORKER` line per worker
//! ([`encode`]) and one `FASTPATH-PORT` line per port (or one `FASTPATH-ERROR` line);
//! everything else it prints is passed to stderr.
//!
//! Devices, per worker `w` (its own ports, its own frames: no frame changes workers):
//! - pcap: `net_pcap{2w},rx_pcap=<dir>/up{w}.pcap,infinite_rx=1` (access) and
//!   `net_pcap{2w+1},rx_pcap=<dir>/down{w}.pcap,infinite_rx=1` (core); without a `tx_pcap`
//!   or `tx_iface` the 22.11 driver counts and frees what is sent ("Dropping packets on tx
//!   since no tx queues were provided").
//! - null: `net_null{2w}` and `net_null{2w+1}` (64-byte frames of no protocol: the
//!   pipeline drops them; only the I/O figures mean something).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::report::Figure;
use crate::timing::Machine;
use vbng_dataplane::pipeline::DropReason;

use super::latency::Histogram;
use super::worker::{IoCounters, WorkerReport};
use super::{
    BaselineRate, Device, FastpathCli, MAX_FRAMES_PER_DIRECTION, Output, RunTotals, common_notes,
    run_figures, testpmd,
};

/// Mbufs a worker's pool holds beyond the frames its pcaps load: rx and tx descriptors of
/// both ports, per-lcore caches, frames in flight.
pub const POOL_SLACK: u32 = 8192;
/// Bytes of memory an mbuf takes in a pool (2176-byte buffer, header, object overhead).
const MBUF_BYTES: u64 = 2560;

/// The child's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ChildMode {
    /// Workers with the pipeline over `DpdkQueue`s (the `BufferPort` trait: each mbuf is
    /// processed where it was received and sent as it is), as vbng-up runs.
    Pipeline,
    /// The same workers without the pipeline: each mbuf received is sent unchanged on the
    /// other port.
    Io,
    /// The pipeline over the queues' copying `Port` methods: each frame is copied from its
    /// mbuf into a `Frame` and into a new mbuf to send (the design before zero-copy).
    Copy,
    /// Raw `rx_burst_raw` -> `tx_burst_raw` between each worker's two ports (no copies).
    Raw,
    /// The pipeline mode's one worker, measuring a window for each command on standard
    /// input (`--paired`).
    Paired,
}

impl ChildMode {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            ChildMode::Pipeline => "pipeline",
            ChildMode::Io => "io",
            ChildMode::Copy => "copy",
            ChildMode::Raw => "raw",
            ChildMode::Paired => "paired",
        }
    }
}

/// The devices of a run (the parent and the child compute the same plan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePlan {
    /// `--vdev` specs, two per worker (access, core).
    pub vdevs: Vec<String>,
    /// Ethdev names, two per worker (access, core).
    pub names: Vec<String>,
    /// Frames per direction in each worker's pcaps (0 for null).
    pub frames: Vec<usize>,
    /// Mbufs of each worker's pool.
    pub mbufs_per_worker: u32,
}

impl DevicePlan {
    /// The plan for `cli` with pcaps in `dir`.
    pub fn new(cli: &FastpathCli, dir: &Path) -> DevicePlan {
        let scheme = cli.scheme(cli.sessions);
        let mut p = DevicePlan {
            vdevs: Vec::new(),
            names: Vec::new(),
            frames: Vec::new(),
            mbufs_per_worker: POOL_SLACK,
        };
        for w in 0..cli.workers {
            let (a, c) = (2 * w, 2 * w + 1);
            match cli.device() {
                Device::Pcap | Device::Memory => {
                    let n = scheme
                        .worker_packets(w, cli.workers, MAX_FRAMES_PER_DIRECTION)
                        .len();
                    p.frames.push(n);
                    p.mbufs_per_worker = p.mbufs_per_worker.max(POOL_SLACK + 2 * n as u32);
                    for (id, file) in [(a, up_pcap(dir, w)), (c, down_pcap(dir, w))] {
                        p.names.push(format!("net_pcap{id}"));
                        p.vdevs.push(format!(
                            "net_pcap{id},rx_pcap={},infinite_rx=1",
                            file.display()
                        ));
                    }
                }
                Device::Null => {
                    p.frames.push(0);
                    for id in [a, c] {
                        p.names.push(format!("net_null{id}"));
                        p.vdevs.push(format!("net_null{id}"));
                    }
                }
            }
        }
        p
    }

    /// EAL memory (`-m`, MB) for `pools` pools of this plan's size.
    pub fn mem_mb(&self, pools: u32) -> u32 {
        let bytes = u64::from(self.mbufs_per_worker) * MBUF_BYTES * u64::from(pools);
        (bytes / (1 << 20)) as u32 + 512
    }
}

/// Worker `w`'s upstream pcap.
pub fn up_pcap(dir: &Path, w: u32) -> PathBuf {
    dir.join(format!("up{w}.pcap"))
}

/// Worker `w`'s downstream pcap.
pub fn down_pcap(dir: &Path, w: u32) -> PathBuf {
    dir.join(format!("down{w}.pcap"))
}

/// Writes every worker's two pcaps into `dir`.
pub fn write_pcaps(cli: &FastpathCli, dir: &Path) -> Result<(), String> {
    let s = cli.scheme(cli.sessions);
    let opts = cli.options(cli.sessions);
    for w in 0..cli.workers {
        let pkts = s.worker_packets(w, cli.workers, MAX_FRAMES_PER_DIRECTION);
        let frames = super::setup::worker_frames(&opts, w, cli.workers, &pkts)?;
        let (up, down) = (frames.up, frames.down);
        for (path, frames) in [(up_pcap(dir, w), &up), (down_pcap(dir, w), &down)] {
            super::scheme::write_pcap(&path, frames.iter().map(Vec::as_slice))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// One worker report as a line: `FASTPATH-WORKER key=value ...`.
#[cfg_attr(not(feature = "dpdk"), allow(dead_code))]
pub fn encode(r: &WorkerReport) -> String {
    let drops: Vec<String> = r.drops.iter().map(u64::to_string).collect();
    let hist: Vec<String> = r
        .latency
        .buckets()
        .map(|(low, n)| format!("{low}:{n}"))
        .collect();
    format!(
        "FASTPATH-WORKER worker={} sessions={} elapsed_ns={} rx={} tx={} tx_refused={} idle={} ul={} dl={} redirected={} drops={} latency={}",
        r.worker,
        r.sessions,
        r.elapsed_ns,
        r.io.rx,
        r.io.tx,
        r.io.tx_refused,
        r.io.idle_polls,
        r.ul_forwarded,
        r.dl_forwarded,
        r.redirected,
        drops.join(","),
        if hist.is_empty() {
            "-".to_owned()
        } else {
            hist.join(",")
        }
    )
}

/// Parses a line written by [`encode`].
pub fn decode(line: &str) -> Result<WorkerReport, String> {
    let rest = line
        .strip_prefix("FASTPATH-WORKER ")
        .ok_or_else(|| format!("not a worker line: {line:?}"))?;
    let get = |key: &str| -> Result<&str, String> {
        rest.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .ok_or_else(|| format!("worker line without {key}: {line:?}"))
    };
    let num = |key: &str| -> Result<u64, String> {
        get(key)?
            .parse()
            .map_err(|_| format!("worker line: bad {key}: {line:?}"))
    };
    let mut drops = [0u64; DropReason::COUNT];
    for (d, v) in drops.iter_mut().zip(get("drops")?.split(',')) {
        *d = v
            .parse()
            .map_err(|_| format!("worker line: bad drops: {line:?}"))?;
    }
    let mut latency = Histogram::new();
    let h = get("latency")?;
    if h != "-" {
        for b in h.split(',') {
            let (low, n) = b
                .split_once(':')
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                .ok_or_else(|| format!("worker line: bad latency bucket {b:?}"))?;
            latency.add_bucket(low, n);
        }
    }
    Ok(WorkerReport {
        worker: num("worker")? as u32,
        sessions: num("sessions")?,
        elapsed_ns: num("elapsed_ns")?,
        io: IoCounters {
            rx: num("rx")?,
            tx: num("tx")?,
            tx_refused: num("tx_refused")?,
            idle_polls: num("idle")?,
        },
        drops,
        ul_forwarded: num("ul")?,
        dl_forwarded: num("dl")?,
        redirected: num("redirected")?,
        latency,
    })
}

/// Starts this binary's `fastpath-child` in `mode` over the pcaps in `dir`, its standard
/// output piped.
fn start_child(
    cli: &FastpathCli,
    dir: &Path,
    mode: ChildMode,
    stdin: Stdio,
) -> Result<std::process::Child, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    Command::new(exe)
        .arg("fastpath-child")
        .args(cli.child_args(cli.sessions))
        .arg("--mode")
        .arg(mode.name())
        .arg("--dir")
        .arg(dir)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start the DPDK child: {e}"))
}

/// Runs this binary's `fastpath-child` and collects its worker reports and port lines.
fn spawn_child(
    cli: &FastpathCli,
    dir: &Path,
    mode: ChildMode,
) -> Result<(Vec<WorkerReport>, Vec<String>), String> {
    let mut child = start_child(cli, dir, mode, Stdio::null())?;
    let stdout = child.stdout.take().ok_or("no child stdout")?;
    let mut reports = Vec::new();
    let mut ports = Vec::new();
    let mut error = None;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if line.starts_with("FASTPATH-WORKER ") {
            match decode(&line) {
                Ok(r) => reports.push(r),
                Err(e) => error = Some(e),
            }
        } else if let Some(p) = line.strip_prefix("FASTPATH-PORT ") {
            ports.push(p.to_owned());
        } else if let Some(e) = line.strip_prefix("FASTPATH-ERROR ") {
            error = Some(e.to_owned());
        } else {
            eprintln!("{line}");
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the DPDK child: {e}"))?;
    remove_eal_runtime_dir(&child_prefix(child.id(), mode));
    if let Some(e) = error {
        return Err(format!("DPDK child ({}): {e}", mode.name()));
    }
    if !status.success() || reports.len() != cli.workers as usize {
        return Err(format!(
            "DPDK child ({}) exited with {status} after reporting {} of {} workers",
            mode.name(),
            reports.len(),
            cli.workers
        ));
    }
    reports.sort_by_key(|r| r.worker);
    Ok((reports, ports))
}

/// The `paired` child ([`ChildMode::Paired`]): started and warmed up, then measuring one
/// window per [`PairedChild::window`]. Told to quit on drop.
struct PairedChild {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl PairedChild {
    fn start(cli: &FastpathCli, dir: &Path) -> Result<PairedChild, String> {
        let mut child = start_child(cli, dir, ChildMode::Paired, Stdio::piped())?;
        let stdout = child.stdout.take().ok_or("no child stdout")?;
        let stdin = child.stdin.take().ok_or("no child stdin")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("FASTPATH-") {
                    if tx.send(line).is_err() {
                        break;
                    }
                } else {
                    eprintln!("{line}");
                }
            }
        });
        let mut c = PairedChild {
            child,
            stdin,
            lines,
        };
        // Building 1M sessions and loading the pcaps takes a while on a slow machine.
        c.next_line(Duration::from_secs(600), "FASTPATH-READY")?;
        Ok(c)
    }

    /// The child's next protocol line, which must start with `want`.
    fn next_line(&mut self, timeout: Duration, want: &str) -> Result<String, String> {
        let line = self.lines.recv_timeout(timeout).map_err(|_| {
            format!(
                "the paired DPDK child gave no {want} line within {} s",
                timeout.as_secs()
            )
        })?;
        if let Some(e) = line.strip_prefix("FASTPATH-ERROR ") {
            return Err(format!("paired DPDK child: {e}"));
        }
        if !line.starts_with(want) {
            return Err(format!("paired DPDK child: expected {want}, got {line:?}"));
        }
        Ok(line)
    }

    /// Measures one window of the child's `--seconds`.
    fn window(&mut self, seconds: f64) -> Result<WorkerReport, String> {
        use std::io::Write;
        writeln!(self.stdin, "run")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("the paired DPDK child stopped reading commands: {e}"))?;
        let timeout = Duration::from_secs_f64(seconds + 60.0);
        decode(&self.next_line(timeout, "FASTPATH-WORKER ")?)
    }
}

impl Drop for PairedChild {
    fn drop(&mut self) {
        use std::io::Write;
        let _ = writeln!(self.stdin, "quit").and_then(|()| self.stdin.flush());
        wait_or_kill(&mut self.child, Duration::from_secs(10));
        remove_eal_runtime_dir(&child_prefix(self.child.id(), ChildMode::Paired));
    }
}

/// One pair of `--paired` windows: the pipeline's and testpmd's packets per second.
#[derive(Debug, Clone, Copy)]
struct PairedWindow {
    ours_pps: f64,
    testpmd_pps: f64,
}

/// `--paired N`: an interactive testpmd and the paired child, both started and warmed up
/// (one window each, not counted), then N pairs of windows in turn on the same CPU.
/// Returns the figures and their notes.
fn run_paired(
    cli: &FastpathCli,
    dir: &Path,
    setup: &testpmd::TestpmdSetup,
    m: &Machine,
) -> Result<(Vec<Figure>, Vec<String>), String> {
    eprintln!("fastpath: --paired: starting testpmd and the pipeline child ...");
    let mut baseline = testpmd::Interactive::start(setup)?;
    let mut ours = PairedChild::start(cli, dir)?;
    let seconds = cli.seconds;
    baseline.window(seconds)?;
    ours.window(seconds)?;
    let mut windows = Vec::new();
    let (mut ours_rx, mut ours_ns, mut forwarded) = (0u64, 0u64, 0u64);
    let (mut testpmd_tx, mut testpmd_ns) = (0.0f64, 0u64);
    for pair in 0..cli.paired {
        eprintln!(
            "fastpath: --paired: pair {} of {} ...",
            pair + 1,
            cli.paired
        );
        // The order alternates, so that neither side always runs right after the other.
        let (t, r) = if pair % 2 == 0 {
            let t = baseline.window(seconds)?;
            (t, ours.window(seconds)?)
        } else {
            let r = ours.window(seconds)?;
            (baseline.window(seconds)?, r)
        };
        ours_rx += r.io.rx;
        ours_ns += r.elapsed_ns;
        forwarded += r.ul_forwarded + r.dl_forwarded;
        let (testpmd_pps, window_ns) = t;
        testpmd_tx += testpmd_pps * window_ns as f64 / 1e9;
        testpmd_ns += window_ns;
        windows.push(PairedWindow {
            ours_pps: r.pps(),
            testpmd_pps,
        });
    }
    drop(ours);
    drop(baseline);
    let ours_mpps = ours_rx as f64 * 1e3 / ours_ns.max(1) as f64;
    let testpmd_mpps = testpmd_tx * 1e3 / testpmd_ns.max(1) as f64;
    let mut ratios: Vec<f64> = windows.iter().map(|w| w.ours_pps / w.testpmd_pps).collect();
    ratios.sort_by(f64::total_cmp);
    let median = ratios.get(ratios.len() / 2).copied().unwrap_or(0.0);
    let (low, high) = (
        ratios.first().copied().unwrap_or(0.0),
        ratios.last().copied().unwrap_or(0.0),
    );
    let note = format!(
        "{} pairs of {seconds} s windows, testpmd and the pipeline in turn on one core: all \
         the pipeline's windows beside all of testpmd's; ratio of each pair: median \
         {median:.3}, lowest {low:.3}, highest {high:.3}",
        windows.len()
    );
    let fig = super::base_params(
        Figure::new("fastpath.paired_mpps_per_core", ours_mpps, "Mpps")
            .with_baseline("testpmd.paired_io_mpps_per_core", testpmd_mpps),
        cli,
        cli.sessions,
        m,
    )
    .param("pairs", windows.len())
    .param("median_pair_ratio", format!("{median:.3}"))
    .param(
        "fraction",
        format!("{:.4}", forwarded as f64 / ours_rx.max(1) as f64),
    )
    .param("note", note);
    let each: Vec<String> = windows
        .iter()
        .map(|w| format!("{:.2}/{:.2}", w.ours_pps / 1e6, w.testpmd_pps / 1e6))
        .collect();
    let notes = vec![format!(
        "--paired: each pair's pipeline/testpmd Mpps: {}",
        each.join(" ")
    )];
    Ok((vec![fig], notes))
}

/// One point of `--scale --device pcap`: writes the pcaps of `cli` (its `sessions`), runs
/// the pipeline child and the I/O child (no pipeline) over them; returns their totals and
/// the frames per direction of worker 0.
pub fn measure_point(cli: &FastpathCli) -> Result<(RunTotals, RunTotals, usize), String> {
    let dir = ScratchDir(std::env::temp_dir().join(format!(
        "vbng-perf-fastpath-{}-{}",
        std::process::id(),
        cli.sessions
    )));
    std::fs::create_dir_all(&dir.0)
        .map_err(|e| format!("cannot create {}: {e}", dir.0.display()))?;
    write_pcaps(cli, &dir.0)?;
    let plan = DevicePlan::new(cli, &dir.0);
    let (ours, _) = spawn_child(cli, &dir.0, ChildMode::Pipeline)?;
    let (io, _) = spawn_child(cli, &dir.0, ChildMode::Io)?;
    Ok((
        RunTotals::of(&ours),
        RunTotals::of(&io),
        plan.frames.first().copied().unwrap_or(0),
    ))
}

/// Waits up to `grace` for `child` to exit, then kills it, and reaps it either way.
pub fn wait_or_kill(child: &mut std::process::Child, grace: Duration) {
    let t = Instant::now();
    while t.elapsed() < grace {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Removes the runtime directory EAL leaves behind for `--file-prefix=<prefix>` (under
/// /var/run/dpdk for root, else $XDG_RUNTIME_DIR/dpdk or /tmp/dpdk), after its process
/// ended.
pub fn remove_eal_runtime_dir(prefix: &str) {
    // SAFETY: geteuid only reads the process's credentials.
    let root = unsafe { libc::geteuid() } == 0;
    let base = if root {
        PathBuf::from("/var/run/dpdk")
    } else {
        std::env::var_os("XDG_RUNTIME_DIR")
            .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from)
            .join("dpdk")
    };
    let _ = std::fs::remove_dir_all(base.join(prefix));
}

/// The `--file-prefix` of the child with process id `pid` in `mode`.
pub fn child_prefix(pid: u32, mode: ChildMode) -> String {
    format!("vbng-perf-{pid}-{}", mode.name())
}

/// A scratch directory removed on drop.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `vbng-perf fastpath --device pcap|null`.
pub fn run_dpdk(cli: &FastpathCli) -> Result<Output, String> {
    let m = Machine::detect();
    let dir =
        ScratchDir(std::env::temp_dir().join(format!("vbng-perf-fastpath-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0)
        .map_err(|e| format!("cannot create {}: {e}", dir.0.display()))?;
    if cli.device() == Device::Pcap {
        write_pcaps(cli, &dir.0)?;
    }
    let plan = DevicePlan::new(cli, &dir.0);
    let mut out = Output {
        notes: common_notes(cli, &m),
        ..Output::default()
    };
    let setup = testpmd::TestpmdSetup {
        vdevs: plan.vdevs.clone(),
        cores: cli.workers,
        mbufs: plan.mbufs_per_worker * cli.workers,
        mem_mb: plan.mem_mb(cli.workers),
        prefix: format!("vbng-perf-testpmd-{}", std::process::id()),
    };
    if cli.no_testpmd {
        out.skipped("testpmd baseline (--no-testpmd)");
    }
    // Each round runs every measurement once, in turn, so that a noisy neighbour's burst
    // hits one round rather than one measurement; each figure keeps its best round.
    let others = [
        (ChildMode::Io, "dpdk_port_io"),
        (ChildMode::Copy, "dpdk_copying_pipeline"),
        (ChildMode::Raw, "dpdk_raw_io"),
    ];
    let mut baseline: Option<BaselineRate> = None;
    let mut testpmd_window = Vec::new();
    let mut best: Option<(RunTotals, Vec<String>)> = None;
    let mut best_others: Vec<Option<RunTotals>> = vec![None; others.len()];
    let mut round_ratios = Vec::new();
    for round in 1..=cli.rounds {
        let tag = if cli.rounds > 1 {
            format!(" (round {round} of {})", cli.rounds)
        } else {
            String::new()
        };
        let mut round_baseline = None;
        if !cli.no_testpmd {
            eprintln!("fastpath: testpmd baseline{tag} ...");
            match testpmd::run(&setup, cli.warmup, cli.seconds) {
                Ok((b, window)) => {
                    round_baseline = Some(b.mpps_per_core);
                    if baseline
                        .as_ref()
                        .is_none_or(|x| b.mpps_per_core > x.mpps_per_core)
                    {
                        testpmd_window = window;
                        baseline = Some(b);
                    }
                }
                Err(e) => {
                    out.skipped(&format!("testpmd baseline: {e}"));
                }
            }
        }
        eprintln!("fastpath: pipeline workers{tag} ...");
        let (ours, port_lines) = spawn_child(cli, &dir.0, ChildMode::Pipeline)?;
        let ours = RunTotals::of(&ours);
        if let Some(b) = round_baseline {
            round_ratios.push(ours.mpps_per_core() / b);
        }
        if best.as_ref().is_none_or(|(b, _)| ours.pps > b.pps) {
            best = Some((ours, port_lines));
        }
        for ((mode, name), kept) in others.iter().zip(best_others.iter_mut()) {
            eprintln!("fastpath: {name}{tag} ...");
            match spawn_child(cli, &dir.0, *mode) {
                Ok((r, _)) => {
                    let r = RunTotals::of(&r);
                    if kept.as_ref().is_none_or(|k| r.pps > k.pps) {
                        *kept = Some(r);
                    }
                }
                Err(e) => out.skipped(&format!("{name}: {e}")),
            }
        }
    }
    if baseline.is_some() {
        let per_s: Vec<String> = testpmd_window
            .iter()
            .map(|v| format!("{:.2}", v / 1e6))
            .collect();
        out.notes.push(format!(
            "testpmd: {} (Mpps, each second of its best window: {})",
            setup.command().join(" "),
            per_s.join(" ")
        ));
    }
    if cli.rounds > 1 {
        let r: Vec<String> = round_ratios.iter().map(|x| format!("{x:.3}")).collect();
        out.notes.push(format!(
            "{} rounds; every figure is its best round's; the pipeline's ratio to testpmd in \
             each round: {}",
            cli.rounds,
            r.join(" ")
        ));
    }
    let (totals, port_lines) = best.ok_or("no pipeline run")?;
    let io_runs: Vec<(&str, RunTotals)> = others
        .iter()
        .zip(best_others)
        .filter_map(|((_, name), r)| r.map(|r| (*name, r)))
        .collect();
    let io_refs: Vec<(&str, &RunTotals)> = io_runs.iter().map(|(n, r)| (*n, r)).collect();
    out.figures = run_figures(cli, cli.sessions, &totals, &io_refs, baseline.as_ref(), &m);
    out.notes.push(format!(
        "devices: {} (frames per direction per worker: {:?})",
        plan.vdevs.join(" "),
        plan.frames
    ));
    for p in port_lines {
        out.notes.push(format!("port {p}"));
    }
    if cli.device() == Device::Null {
        out.notes.push(
            "device null: net_null frames are not the scheme's, the pipeline drops them; \
             the rate is what parsing and dropping garbage costs, not forwarding"
                .into(),
        );
    }
    if cli.paired > 0 {
        if cli.no_testpmd {
            out.skipped("--paired: no testpmd to pair with (--no-testpmd)");
        } else {
            let (figures, notes) =
                run_paired(cli, &dir.0, &setup, &m).map_err(|e| format!("--paired: {e}"))?;
            out.figures.extend(figures);
            out.notes.extend(notes);
        }
    }
    Ok(out)
}

/// The child side (`vbng-perf fastpath-child`): runs the workers and prints their lines.
pub fn child_main(cli: &FastpathCli, mode: ChildMode, dir: &Path) -> Result<(), String> {
    cli.validate()?;
    #[cfg(feature = "dpdk")]
    {
        let plan = DevicePlan::new(cli, dir);
        if mode == ChildMode::Paired {
            return super::dpdk::run_paired_child(cli, &plan);
        }
        let reports = super::dpdk::run_child(cli, mode, &plan)?;
        for r in &reports {
            println!("{}", encode(r));
        }
        Ok(())
    }
    #[cfg(not(feature = "dpdk"))]
    {
        let _ = (mode, dir);
        Err("vbng-perf was built without the dpdk feature".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_line_round_trip() {
        let mut latency = Histogram::new();
        for v in [900u64, 1000, 1100, 50_000] {
            latency.record(v);
        }
        let mut drops = [0u64; DropReason::COUNT];
        drops[DropReason::AclDenied.index()] = 7;
        let r = WorkerReport {
            worker: 1,
            sessions: 5000,
            elapsed_ns: 5_000_000_123,
            io: IoCounters {
                rx: 10,
                tx: 9,
                tx_refused: 1,
                idle_polls: 3,
            },
            drops,
            ul_forwarded: 4,
            dl_forwarded: 5,
            redirected: 0,
            latency,
        };
        let back = decode(&encode(&r)).unwrap();
        assert_eq!(back.io, r.io);
        assert_eq!(back.drops, r.drops);
        assert_eq!(
            (back.worker, back.sessions, back.elapsed_ns),
            (1, 5000, 5_000_000_123)
        );
        assert_eq!(back.latency.count(), 4);
        assert_eq!(back.latency.quantile(0.5), r.latency.quantile(0.5));
    }
}
