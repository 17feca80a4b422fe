//! `vbng-perf fastpath`: packets per second and per worker core through the user plane's
//! pipeline on DPDK ports (or frames replayed from memory), beside DPDK testpmd's io
//! forwarding over the same devices in the same run; burst latency; instructions per packet;
//! the scale curve over the number of sessions.
//!
//! - [`scheme`]: the "vbng-lab" traffic scheme (frames, pcaps, sessions, the 100-rule ACL).
//! - [`setup`]: the pipeline a worker runs.
//! - [`worker`]: the poll loop over two ports, in-memory replay ports.
//! - [`latency`]: the burst latency histogram.
//! - [`memory`]: `--device memory` runs (threads in this process) and `--callgrind`.
//! - [`child`]: the DPDK side runs in a child process (EAL initialises once per process):
//!   its command line and the lines it reports.
//! - `dpdk` (feature `dpdk`): the child's EAL, ports and worker threads.
//! - [`testpmd`]: the baseline, `dpdk-testpmd` on the same devices.
//! - [`callgrind`]: instructions per packet from a callgrind run of this binary.
//! - [`scale`]: `--scale`, Mpps and ns/packet at 1 to 1M sessions, table and plot.

use std::path::PathBuf;

use crate::report::{self, Figure};
use crate::timing::Machine;
use vbng_dataplane::isa::Isa;
use vbng_dataplane::pipeline::DropReason;

pub mod callgrind;
pub mod child;
pub mod clock;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod latency;
pub mod memory;
pub mod random_reads;
pub mod scale;
pub mod scheme;
pub mod setup;
pub mod testpmd;
pub mod worker;

use scheme::{FrameSize, Protocol, Replay, Scheme, Vlan};
use setup::{PipelineKind, PipelineOptions};
use worker::WorkerReport;

/// Frames per direction and worker kept in a pcap or in memory: all of them up to this,
/// else a sample of this many drawn at random from the worker's subscribers.
pub const MAX_FRAMES_PER_DIRECTION: usize = 65_536;

/// Where the worker's frames come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Device {
    /// DPDK `net_null` (frames are not the scheme's: the raw I/O baseline only).
    Null,
    /// DPDK `net_pcap`, per worker an access port replaying the upstream pcap and a core
    /// port replaying the downstream pcap (`infinite_rx=1`), transmit dropped by the driver.
    Pcap,
    /// No DPDK: frames replayed from memory, transmit copied into a ring.
    Memory,
}

impl Device {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Device::Null => "null",
            Device::Pcap => "pcap",
            Device::Memory => "memory",
        }
    }
}

/// `--pipeline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PipelineArg {
    /// Session forwarding without ACL.
    Ipoe,
    /// With the 100-rule ACL (PPPoE subscribers unless `--protocol`).
    Full,
}

/// `--isa`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IsaArg {
    /// The widest instruction set the CPU has (`Isa::detect`), as `vbng-up` runs.
    Auto,
    /// The x86-64 baseline, whatever the CPU has.
    Baseline,
}

impl IsaArg {
    /// The instruction set the pipeline's bursts run on.
    pub fn isa(self) -> Isa {
        match self {
            IsaArg::Auto => Isa::detect(),
            IsaArg::Baseline => Isa::baseline(),
        }
    }

    /// The flag's value.
    pub fn name(self) -> &'static str {
        match self {
            IsaArg::Auto => "auto",
            IsaArg::Baseline => "baseline",
        }
    }
}

/// `--protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProtocolArg {
    /// IPv4 over Ethernet.
    Ipoe,
    /// IPv4 in PPPoE.
    Pppoe,
}

/// `--vlan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VlanArg {
    /// Untagged.
    None,
    /// One 802.1Q tag.
    Single,
    /// Two 802.1Q tags.
    Qinq,
}

/// The command line of `vbng-perf fastpath` (also what the parent passes to its child).
#[derive(Debug, Clone, clap::Args)]
pub struct FastpathCli {
    /// Pipeline stages: ipoe (session forwarding) or full (plus the 100-rule ACL).
    #[arg(long, value_enum, default_value_t = PipelineArg::Ipoe)]
    pub pipeline: PipelineArg,
    /// Subscriber sessions (ignored with --scale).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=4_000_000))]
    pub sessions: u32,
    /// Worker cores, each with its own pipeline, ports and share of the sessions.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub workers: u32,
    /// Measured seconds per run (after a warm-up of --warmup seconds).
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Warm-up seconds before each measured window.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Subscriber encapsulation (default: ipoe for --pipeline ipoe, pppoe for full).
    #[arg(long, value_enum)]
    pub protocol: Option<ProtocolArg>,
    /// VLAN layout of the access side.
    #[arg(long, value_enum, default_value_t = VlanArg::None)]
    pub vlan: VlanArg,
    /// Frame size on the wire: 64 or imix.
    #[arg(long, default_value = "64", value_parser = parse_size)]
    pub size: FrameSize,
    /// Packet source: DPDK net_pcap, DPDK net_null, or memory (no DPDK). Default pcap;
    /// memory with --scale or --callgrind.
    #[arg(long, value_enum)]
    pub device: Option<Device>,
    /// Build the pipeline with QoS and give every session a 1 Gbit/s rate both ways.
    #[arg(long)]
    pub qos: bool,
    /// Instruction set of the pipeline's bursts: auto (the widest the CPU has, x86-64-v3
    /// where it has AVX2, BMI and MOVBE) or baseline (x86-64), to compare the two.
    #[arg(long, value_enum, default_value_t = IsaArg::Auto)]
    pub isa: IsaArg,
    /// Frames each worker replays: all (every session's frames, subscriber by subscriber,
    /// up to 65,536 per direction, else a random sample of that many) or sample (always
    /// a random sample of 65,536, whatever the session count). Default all; sample with
    /// --scale.
    #[arg(long, value_enum)]
    pub replay: Option<Replay>,
    /// Scale curve: 1, 1k, 100k and 1M sessions on the memory device; table and plot.
    #[arg(long)]
    pub scale: bool,
    /// Where --scale writes its CSV and PNG (default: the current directory).
    #[arg(long, default_value = ".")]
    pub out_dir: PathBuf,
    /// Callgrind mode (memory device): run --packets frames through the pipeline and the
    /// I/O baseline once each, inside `measure_pipeline` / `measure_io_only`.
    #[arg(long)]
    pub callgrind: bool,
    /// Frames per callgrind measurement.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(64..))]
    pub packets: u64,
    /// Skip the callgrind run that measures instructions per packet (memory device).
    #[arg(long)]
    pub no_instructions: bool,
    /// Skip the testpmd baseline (DPDK devices).
    #[arg(long)]
    pub no_testpmd: bool,
    /// DPDK devices and `--scale`: run every measurement this many times, in turn, and keep
    /// each one's best round (a shared machine's noise only ever slows a run down).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
    /// DPDK devices, one worker: after the rounds, this many pairs of windows of
    /// `--seconds`, testpmd's and the pipeline's in turn on the worker's CPU (each process
    /// idle while the other measures, the order swapped every pair), so that the ratio
    /// compares rates measured seconds apart (figure `fastpath.paired_mpps_per_core`).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=200))]
    pub paired: u32,
    /// One JSON object per line and figure instead of the table.
    #[arg(long)]
    pub json: bool,
}

fn parse_size(s: &str) -> Result<FrameSize, String> {
    match s {
        "imix" => Ok(FrameSize::Imix),
        "64" => Ok(FrameSize::Fixed(64)),
        _ => Err(format!("expected 64 or imix, found {s:?}")),
    }
}

impl FastpathCli {
    /// The pipeline's stages.
    pub fn kind(&self) -> PipelineKind {
        match self.pipeline {
            PipelineArg::Ipoe => PipelineKind::Ipoe,
            PipelineArg::Full => PipelineKind::Full,
        }
    }

    /// The protocol: `--protocol`, else IPoE for the ipoe pipeline and PPPoE for full.
    pub fn protocol(&self) -> Protocol {
        match (self.protocol, self.pipeline) {
            (Some(ProtocolArg::Ipoe), _) | (None, PipelineArg::Ipoe) => Protocol::Ipoe,
            (Some(ProtocolArg::Pppoe), _) | (None, PipelineArg::Full) => Protocol::Pppoe,
        }
    }

    /// The packet source: `--device`, else memory for `--scale` and `--callgrind` and pcap
    /// otherwise.
    pub fn device(&self) -> Device {
        match self.device {
            Some(d) => d,
            None if self.scale || self.callgrind => Device::Memory,
            None => Device::Pcap,
        }
    }

    /// The VLAN layout.
    pub fn vlan(&self) -> Vlan {
        match self.vlan {
            VlanArg::None => Vlan::None,
            VlanArg::Single => Vlan::Single,
            VlanArg::Qinq => Vlan::Qinq,
        }
    }

    /// `--replay`, or its default: a sampled replay for the scale curve, so that its points
    /// differ in their session count only.
    pub fn replay(&self) -> Replay {
        self.replay.unwrap_or(if self.scale {
            Replay::Sample
        } else {
            Replay::All
        })
    }

    /// The scheme with `sessions` subscribers.
    pub fn scheme(&self, sessions: u32) -> Scheme {
        Scheme {
            sessions,
            protocol: self.protocol(),
            vlan: self.vlan(),
            size: self.size,
            replay: self.replay(),
        }
    }

    /// The pipeline options with `sessions` subscribers.
    pub fn options(&self, sessions: u32) -> PipelineOptions {
        PipelineOptions {
            kind: self.kind(),
            scheme: self.scheme(sessions),
            qos: self.qos,
            isa: self.isa.isa(),
        }
    }

    /// Checks the combination of flags; one line naming the flag on error.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.seconds > 0.0 && self.seconds <= 3600.0) {
            return Err(format!(
                "--seconds must be in (0, 3600], found {}",
                self.seconds
            ));
        }
        if !(self.warmup >= 0.0 && self.warmup <= 600.0) {
            return Err(format!(
                "--warmup must be in [0, 600], found {}",
                self.warmup
            ));
        }
        if self.callgrind && self.device() != Device::Memory {
            return Err("--callgrind needs --device memory".into());
        }
        if self.paired > 0 {
            if self.workers != 1 {
                return Err(format!(
                    "--paired measures one worker core: give --workers 1, not {}",
                    self.workers
                ));
            }
            if self.scale || self.device() == Device::Memory {
                return Err(
                    "--paired needs a DPDK device (--device pcap or null) and no --scale".into(),
                );
            }
        }
        Ok(())
    }

    /// The flags that reproduce this run in a child process (device-independent ones).
    pub fn child_args(&self, sessions: u32) -> Vec<String> {
        let mut v = vec![
            "--pipeline".into(),
            self.kind().name().into(),
            "--sessions".into(),
            sessions.to_string(),
            "--workers".into(),
            self.workers.to_string(),
            "--seconds".into(),
            self.seconds.to_string(),
            "--warmup".into(),
            self.warmup.to_string(),
            "--protocol".into(),
            self.protocol().name().into(),
            "--vlan".into(),
            self.vlan().name().into(),
            "--size".into(),
            self.size.name(),
            "--device".into(),
            self.device().name().into(),
            "--replay".into(),
            self.replay().name().into(),
        ];
        if self.qos {
            v.push("--qos".into());
        }
        v.extend(["--isa".into(), self.isa.name().into()]);
        v
    }
}

/// Totals over the workers of one run.
#[derive(Debug, Clone, Default)]
pub struct RunTotals {
    /// Workers that reported.
    pub workers: u32,
    /// Frames received over all workers.
    pub rx: u64,
    /// Frames sent.
    pub tx: u64,
    /// Frames a port refused.
    pub tx_refused: u64,
    /// Drops by reason.
    pub drops: [u64; DropReason::COUNT],
    /// Upstream and downstream frames forwarded by the pipelines.
    pub forwarded: (u64, u64),
    /// Sum of the workers' packets per second.
    pub pps: f64,
    /// Each worker's packets per second.
    pub worker_pps: Vec<f64>,
    /// Each worker's sessions.
    pub worker_sessions: Vec<u64>,
    /// Burst latency of all workers.
    pub latency: latency::Histogram,
}

impl RunTotals {
    /// Sums worker reports.
    pub fn of(reports: &[WorkerReport]) -> RunTotals {
        let mut t = RunTotals {
            workers: reports.len() as u32,
            ..RunTotals::default()
        };
        for r in reports {
            t.rx += r.io.rx;
            t.tx += r.io.tx;
            t.tx_refused += r.io.tx_refused;
            for (a, b) in t.drops.iter_mut().zip(&r.drops) {
                *a += b;
            }
            t.forwarded.0 += r.ul_forwarded;
            t.forwarded.1 += r.dl_forwarded;
            t.pps += r.pps();
            t.worker_pps.push(r.pps());
            t.worker_sessions.push(r.sessions);
            t.latency.merge(&r.latency);
        }
        t
    }

    /// Million packets per second per worker core.
    pub fn mpps_per_core(&self) -> f64 {
        self.pps / f64::from(self.workers.max(1)) / 1e6
    }
}

/// A baseline rate: name and Mpps per core and in total.
#[derive(Debug, Clone)]
pub struct BaselineRate {
    /// Figure name of the baseline.
    pub name: String,
    /// Mpps per forwarding core.
    pub mpps_per_core: f64,
    /// Mpps over all cores.
    pub mpps_total: f64,
}

/// What a run printed besides its figures (table mode).
#[derive(Debug, Default)]
pub struct Output {
    /// The figures.
    pub figures: Vec<Figure>,
    /// Extra lines for the readable output (notes, per-worker rates, drops).
    pub notes: Vec<String>,
    /// A Markdown table (the scale curve).
    pub markdown: Option<String>,
}

impl Output {
    /// Notes a part of the run that could not be measured: a `SKIPPED: <why>` line on
    /// stderr at once and under the table.
    pub fn skipped(&mut self, why: &str) {
        eprintln!("SKIPPED: {why}");
        self.notes.push(format!("SKIPPED: {why}"));
    }
}

/// The params every figure carries.
pub fn base_params(f: Figure, cli: &FastpathCli, sessions: u32, m: &Machine) -> Figure {
    f.param("pipeline", cli.kind().name())
        .param("sessions", sessions)
        .param("workers", cli.workers)
        .param("device", cli.device().name())
        .param("size", cli.size.name())
        .param("protocol", cli.protocol().name())
        .param("vlan", cli.vlan().name())
        .param("qos", cli.qos)
        .param("isa", cli.isa.isa().name())
        .param("replay", cli.replay().name())
        .param("seconds", cli.seconds)
        .param("cpu", m.cpu.as_str())
        .param("cpus", m.cpus)
        .param("release_build", m.optimised)
}

/// The figures of one measured run against its baselines.
pub fn run_figures(
    cli: &FastpathCli,
    sessions: u32,
    ours: &RunTotals,
    io_baselines: &[(&str, &RunTotals)],
    rate_baseline: Option<&BaselineRate>,
    m: &Machine,
) -> Vec<Figure> {
    let p = |f: Figure| base_params(f, cli, sessions, m);
    let mut figs = Vec::new();
    let per_core = ours.mpps_per_core();
    let worker_mpps: Vec<String> = ours
        .worker_pps
        .iter()
        .map(|x| format!("{:.3}", x / 1e6))
        .collect();
    let mut f = Figure::new("fastpath.mpps_per_core", per_core, "Mpps");
    if let Some(b) = rate_baseline {
        f = f.with_baseline(&b.name, b.mpps_per_core);
    }
    figs.push(
        p(f).param("worker_mpps", worker_mpps.join(","))
            .param(
                "worker_sessions",
                ours.worker_sessions
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .param("packets", ours.rx)
            .param(
                "note",
                "packets received and processed per second per worker core",
            ),
    );
    let mut f = Figure::new("fastpath.mpps_total", ours.pps / 1e6, "Mpps");
    if let Some(b) = rate_baseline {
        f = f.with_baseline(&format!("{}_total", b.name), b.mpps_total);
    }
    figs.push(p(f));
    let mut f = Figure::new("fastpath.ns_per_packet", 1e3 / per_core, "ns/packet");
    if let Some(b) = rate_baseline {
        f = f.with_baseline(
            &b.name.replace("mpps_per_core", "ns_per_packet"),
            1e3 / b.mpps_per_core,
        );
    }
    figs.push(p(f).param("note", "per worker core: 1 / (packets per second per core)"));
    for (name, io) in io_baselines {
        let mut f = Figure::new(
            &format!("fastpath.{name}_mpps_per_core"),
            io.mpps_per_core(),
            "Mpps",
        );
        if let Some(b) = rate_baseline.filter(|b| b.name != f.figure) {
            f = f.with_baseline(&b.name, b.mpps_per_core);
        }
        figs.push(p(f).param("note", io_note(name)));
    }
    if let Some((name, copying)) = io_baselines
        .iter()
        .find(|(n, _)| *n == "dpdk_copying_pipeline")
    {
        figs.push(p(Figure::new(
            "fastpath.zero_copy_mpps_per_core",
            per_core,
            "Mpps",
        )
        .with_baseline(
            &format!("fastpath.{name}_mpps_per_core"),
            copying.mpps_per_core(),
        )
        .param(
            "note",
            "the pipeline on the received mbufs beside the same pipeline on copies",
        )));
    }
    for (name, q) in [("p50", 0.5), ("p99", 0.99), ("p999", 0.999)] {
        let mut f = Figure::new(
            &format!("fastpath.latency_{name}_us"),
            ours.latency.quantile(q) as f64 / 1e3,
            "us",
        );
        if let Some((io_name, io)) = io_baselines.first() {
            f = f.with_baseline(
                &format!("fastpath.{io_name}_latency_{name}_us"),
                io.latency.quantile(q) as f64 / 1e3,
            );
        }
        figs.push(p(f).param("bursts", ours.latency.count()));
    }
    figs.push(p(Figure::new(
        "fastpath.forwarded_fraction",
        ours.tx as f64 / ours.rx.max(1) as f64,
        "fraction",
    )
    .param("forwarded_upstream", ours.forwarded.0)
    .param("forwarded_downstream", ours.forwarded.1)
    .param("tx_refused", ours.tx_refused)));
    for r in DropReason::ALL {
        let n = ours.drops[r.index()];
        if n > 0 {
            figs.push(p(Figure::new(
                &format!("fastpath.drops.{}", r.name()),
                n as f64,
                "packets",
            )
            .param("fraction", n as f64 / ours.rx.max(1) as f64)));
        }
    }
    figs
}

/// What an I/O baseline is.
fn io_note(name: &str) -> &'static str {
    match name {
        "dpdk_port_io" => {
            "the same loop over the same DpdkQueues without the pipeline: each received mbuf \
             sent as it is"
        }
        "dpdk_copying_pipeline" => {
            "the same pipeline on copies: each frame copied from its mbuf into a Frame and into \
             a new mbuf to send (the design before zero-copy)"
        }
        "dpdk_raw_io" => "DpdkQueue rx_burst_raw -> tx_burst_raw to the other port, no copy",
        _ => "the same loop without the pipeline (receive and transmit copies only)",
    }
}

/// Notes printed under the table of every run.
pub fn common_notes(cli: &FastpathCli, m: &Machine) -> Vec<String> {
    let mut v = Vec::new();
    if cli.kind() == PipelineKind::Full {
        v.push(
            "full pipeline: 100-rule ACL on every session (both directions), anti-spoof, \
             gate, TTL, PPPoE decap/encap for PPPoE subscribers, NAT44 of every session \
             (pool 198.18.0.0/20, one 64-port block each; downstream frames addressed to \
             the outside mappings) and a 64-route LPM table looked up for every upstream \
             packet"
                .into(),
        );
    }
    if cli.workers > 1 {
        v.push(format!(
            "{} workers: sessions partitioned i % {} (worker w owns subscriber i when i % {} == w); \
             each worker has its own ports and frames of its own subscribers, so no frame is handed \
             between workers",
            cli.workers, cli.workers, cli.workers
        ));
    }
    if cli.workers as usize >= m.cpus && cli.device() != Device::Memory {
        v.push(format!(
            "{} workers on {} cpus: the workers share the cpus with the parent and the DPDK main \
             thread (testpmd likewise with its main lcore); per-core figures are lower bounds",
            cli.workers, m.cpus
        ));
    }
    v
}

/// Runs `vbng-perf fastpath` as the command line says.
pub fn run(cli: &FastpathCli) -> Result<Output, String> {
    cli.validate()?;
    if cli.scale {
        return scale::run(cli);
    }
    if cli.callgrind {
        return memory::run_callgrind(cli);
    }
    match cli.device() {
        Device::Memory => memory::run(cli),
        Device::Pcap | Device::Null => child::run_dpdk(cli),
    }
}

/// Prints an [`Output`]: JSON lines, or the machine line, the table, notes and Markdown.
pub fn print(cli: &FastpathCli, out: &Output) {
    if cli.json {
        for f in &out.figures {
            println!("{}", f.to_json_line());
        }
        return;
    }
    let m = Machine::detect();
    let loop_clock = if clock::invariant_tsc() {
        "loop clock TSC, rates timed with std::time::Instant"
    } else {
        "timer std::time::Instant"
    };
    println!("{}, {loop_clock}", m.summary());
    println!(
        "vbng-perf fastpath: pipeline {}, {} sessions, {} worker(s), device {}, protocol {}, vlan {}, size {}, {} s measured after {} s warm-up",
        cli.kind().name(),
        if cli.scale {
            "1..1M".to_owned()
        } else {
            cli.sessions.to_string()
        },
        cli.workers,
        cli.device().name(),
        cli.protocol().name(),
        cli.vlan().name(),
        cli.size.name(),
        cli.seconds,
        cli.warmup
    );
    print!("{}", report::table(&out.figures));
    for n in &out.notes {
        println!("note: {n}");
    }
    if let Some(md) = &out.markdown {
        println!();
        print!("{md}");
    }
}

/// Pins the calling thread to `cpu` (modulo the CPUs present); false if the kernel refused.
pub fn pin_to_cpu(cpu: usize) -> bool {
    let cpus = online_cpus();
    // SAFETY: cpu_set_t is a plain bitmask for which all-zero bytes are a valid (empty) value.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit inside `set`, a valid, exclusively borrowed cpu_set_t;
    // the index is below the CPUs present, far below CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu % cpus, &mut set) };
    // SAFETY: pid 0 is the calling thread; `set` is valid for the size passed and only read.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    rc == 0
}

/// The CPU worker `w` runs on: `(w + 1) % cpus`, so one worker takes CPU 1 as testpmd's
/// forwarding lcore does, and the main threads stay on CPU 0.
pub fn worker_cpu(w: u32) -> usize {
    (w as usize + 1) % online_cpus()
}

/// CPUs online on the machine (not the calling thread's affinity: EAL pins its main thread
/// to one CPU, and threads it starts inherit that).
pub fn online_cpus() -> usize {
    // SAFETY: sysconf only reads a system value.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).ok().filter(|n| *n > 0).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cmd {
        #[command(flatten)]
        cli: FastpathCli,
    }

    fn cli(args: &[&str]) -> FastpathCli {
        Cmd::parse_from(std::iter::once("fastpath").chain(args.iter().copied())).cli
    }

    #[test]
    fn paired_windows_need_one_worker_on_dpdk_devices() {
        assert!(cli(&["--paired", "4"]).validate().is_ok());
        assert!(
            cli(&["--paired", "4", "--device", "null"])
                .validate()
                .is_ok()
        );
        let e = cli(&["--paired", "4", "--workers", "2"]).validate();
        assert!(e.unwrap_err().contains("--workers 1"));
        assert!(
            cli(&["--paired", "4", "--device", "memory"])
                .validate()
                .is_err()
        );
        assert!(cli(&["--paired", "4", "--scale"]).validate().is_err());
        // Off by default: a plain run is what it was.
        assert_eq!(cli(&[]).paired, 0);
    }

    /// The paired child has its own entry point; the one-window entry refuses that mode
    /// before it starts EAL or opens a port, rather than measuring a window of another mode.
    #[cfg(feature = "dpdk")]
    #[test]
    fn the_one_window_child_refuses_the_paired_mode() {
        let c = cli(&["--paired", "4"]);
        let plan = child::DevicePlan::new(&c, std::path::Path::new("/nonexistent"));
        let e = dpdk::run_child(&c, child::ChildMode::Paired, &plan).unwrap_err();
        assert!(e.contains("run_paired_child"), "{e}");
    }

    #[test]
    fn defaults_follow_the_pipeline() {
        let c = cli(&[]);
        assert_eq!((c.device(), c.protocol()), (Device::Pcap, Protocol::Ipoe));
        let c = cli(&["--pipeline", "full", "--scale"]);
        assert_eq!(
            (c.device(), c.protocol()),
            (Device::Memory, Protocol::Pppoe)
        );
        let c = cli(&["--pipeline", "full", "--protocol", "ipoe", "--size", "imix"]);
        assert_eq!((c.protocol(), c.size), (Protocol::Ipoe, FrameSize::Imix));
        assert!(
            cli(&["--callgrind", "--device", "pcap"])
                .validate()
                .is_err()
        );
        // The child gets every flag that shapes the run.
        let c = cli(&[
            "--pipeline",
            "full",
            "--vlan",
            "qinq",
            "--qos",
            "--workers",
            "2",
        ]);
        let back = cli(&c
            .child_args(77)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>());
        assert_eq!(back.options(77), c.options(77));
        assert_eq!((back.workers, back.sessions), (2, 77));
    }

    #[test]
    fn memory_run_figures_match_the_json_schema() {
        let c = cli(&[
            "--device",
            "memory",
            "--sessions",
            "64",
            "--seconds",
            "0.05",
            "--warmup",
            "0",
            "--no-instructions",
            "--pipeline",
            "full",
        ]);
        let out = run(&c).unwrap();
        let names: Vec<&str> = out.figures.iter().map(|f| f.figure.as_str()).collect();
        for want in [
            "fastpath.mpps_per_core",
            "fastpath.ns_per_packet",
            "fastpath.latency_p50_us",
            "fastpath.forwarded_fraction",
        ] {
            assert!(names.contains(&want), "{names:?}");
        }
        for f in &out.figures {
            let v: serde_json::Value = serde_json::from_str(&f.to_json_line()).unwrap();
            let p = &v["params"];
            assert_eq!(p["pipeline"], "full", "{}", f.figure);
            assert_eq!(p["sessions"], 64);
            assert_eq!(p["protocol"], "pppoe");
            assert_eq!(p["device"], "memory");
            assert!(v["value"].is_number(), "{}", f.figure);
        }
        let fwd = out
            .figures
            .iter()
            .find(|f| f.figure == "fastpath.forwarded_fraction")
            .unwrap();
        assert_eq!(fwd.value, 1.0);
    }
}
