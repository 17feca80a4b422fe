//! `vbng-perf`: vbng's benchmark harness. See perf/README.md.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vbng_perf::acl::{self, AclArgs};
use vbng_perf::fastpath;
use vbng_perf::qos::{self, QosArgs};
use vbng_perf::radius::{self, RadiusArgs};
use vbng_perf::report;
use vbng_perf::sessions::emulator::Progress;
use vbng_perf::sessions::{self, Protocol, SessionsArgs};
use vbng_perf::timing::Machine;
use vbng_perf::unikernel::{self, UnikernelArgs};

/// Large tables (sessions, NAT mappings, their indexes) in transparent huge pages.
#[global_allocator]
static ALLOCATOR: vbng_dataplane::host::hugepages::HugePageAlloc =
    vbng_dataplane::host::hugepages::HugePageAlloc;

#[derive(Debug, Parser)]
#[command(name = "vbng-perf", version, about = "vbng benchmark harness")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Per-subscriber shaping + scheduling cost in the downstream pipeline, beside the
    /// pipeline without QoS; the scheduler alone; rate accuracy at 1/10/100/1000 Mbit/s.
    Qos {
        /// Active (shaped) subscribers.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=4_000_000))]
        subscribers: u32,
        /// Packets per timed repetition of each workload.
        #[arg(long, default_value_t = 2_000_000, value_parser = clap::value_parser!(u64).range(32..))]
        packets: u64,
        /// Timed repetitions per workload; the median is reported.
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..=1000))]
        reps: u64,
        /// Simulated seconds per rate in the accuracy runs (after as long a warm-up).
        #[arg(long, default_value_t = 1.0)]
        accuracy_seconds: f64,
        /// Callgrind mode: one timed repetition per workload, no accuracy runs; prints the
        /// functions to pass to `--toggle-collect` (see perf/README.md).
        #[arg(long)]
        callgrind: bool,
        /// One JSON object per line and figure instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// ns per classification of an IPv4 packet against an ACL with the compiled
    /// classifier, beside a linear first-match scan of the same rules; heap bytes.
    Acl {
        /// Rule counts to measure, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [10usize, 100, 1000],
              value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
        rules: Vec<usize>,
        /// Flows per kind (early hit, late hit, miss); the mixed workload holds all.
        #[arg(long, default_value_t = 1024, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
        flows: usize,
        /// Classifications per timed repetition of each workload.
        #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
        lookups: u64,
        /// Timed repetitions per workload; the median is reported.
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..=1000))]
        reps: u64,
        /// One JSON object per line and figure instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// The per-customer vBNG image (QEMU microvm): boot time beside QEMU's own start, image
    /// size, guest memory, and N concurrent instances' CPU idle and forwarding and host
    /// memory, beside instances that only halt (see perf/README.md). Needs root.
    Unikernel {
        /// Boots to time.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=1000))]
        boots: u64,
        /// Concurrent instances in the density run (0: none).
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(0..=2000))]
        instances: u64,
        /// Seconds of each CPU measurement.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Pings per second through each instance while forwarding.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        pps: u32,
        /// auto (KVM when /dev/kvm is usable), kvm or tcg.
        #[arg(long, default_value = "auto")]
        accel: vbng_vm::Accel,
        /// One JSON object per line and figure instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// PAP authentications per second and CPU per request of vbng's RADIUS client against
    /// its own FreeRADIUS, beside a raw blaster against the same server (see perf/README.md).
    Radius {
        /// Requests per run (baseline and client each).
        #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
        requests: u64,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65_536))]
        concurrency: u32,
        /// Run FreeRADIUS with -X (single-threaded, for debugging) instead of -f.
        #[arg(long)]
        debug_server: bool,
        /// One JSON object per line and figure instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// PPPoE or IPoE sessions set up and torn down per second, end to end against vbng-cp
    /// (in process, fake user plane answering PFCP), beside the same client emulator against
    /// a canned responder (see perf/README.md).
    Sessions {
        /// Which subscribers to emulate.
        #[arg(long, value_enum, default_value_t = ProtocolArg::Pppoe)]
        protocol: ProtocolArg,
        /// Sessions per run.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=65_000))]
        count: u32,
        /// Most sessions started per second (default: as fast as the window allows).
        #[arg(long)]
        rate: Option<f64>,
        /// Most sessions being set up (or torn down) at once.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65_000))]
        window: u32,
        /// Seconds after which a session not up (or down) counts as failed.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
        timeout_s: u64,
        /// Skip the canned-responder baseline.
        #[arg(long)]
        no_baseline: bool,
        /// One JSON object per line and figure instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Mpps per worker core through the pipeline on DPDK ports (net_pcap replaying the
    /// lab traffic scheme, or net_null) or from memory, beside dpdk-testpmd on the same
    /// devices; burst latency, instructions per packet, the scale curve (see perf/README.md).
    Fastpath(fastpath::FastpathCli),
    /// The DPDK side of `fastpath`, run by it in a child process (EAL starts once per
    /// process).
    #[command(hide = true)]
    FastpathChild {
        #[command(flatten)]
        cli: fastpath::FastpathCli,
        /// pipeline (workers with the pipeline), io (the same loop without it) or raw.
        #[arg(long, value_enum)]
        mode: fastpath::child::ChildMode,
        /// Directory holding the pcaps.
        #[arg(long)]
        dir: std::path::PathBuf,
    },
}

/// `--protocol` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ProtocolArg {
    /// PPPoE: discovery, LCP, PAP, IPCP; PADT to end.
    Pppoe,
    /// IPoE: DHCPv4 DORA; DHCPRELEASE to end.
    Ipoe,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Qos {
            subscribers,
            packets,
            reps,
            accuracy_seconds,
            callgrind,
            json,
        } => {
            if !(accuracy_seconds > 0.0 && accuracy_seconds <= 100.0) {
                eprintln!(
                    "vbng-perf: --accuracy-seconds must be in (0, 100], found {accuracy_seconds}"
                );
                return ExitCode::from(2);
            }
            let args = QosArgs {
                subscribers,
                packets,
                reps: reps as usize,
                callgrind,
                accuracy_seconds,
            };
            let machine = Machine::detect();
            if !json {
                println!("{}", machine.line());
                println!(
                    "vbng-perf qos: {subscribers} subscribers, {packets} packets x {} reps per workload (median), bursts of {}",
                    args.reps,
                    qos::BURST
                );
            }
            let figures = qos::run(&args);
            if json {
                for f in &figures {
                    println!("{}", f.to_json_line());
                }
            } else {
                print!("{}", report::table(&figures));
            }
            if callgrind {
                eprintln!(
                    "callgrind: each workload ran once with {packets} packets inside one of \
                     vbng_perf::qos::measure_{{baseline,qos_unshaped,shaped_under_rate,shaped,\
                     scheduler_under_rate,scheduler}}; \
                     instructions/packet = Ir of that function (inclusive) / {packets}"
                );
            }
            ExitCode::SUCCESS
        }
        Command::Acl {
            rules,
            flows,
            lookups,
            reps,
            json,
        } => {
            let args = AclArgs {
                rule_counts: rules,
                flows,
                lookups,
                reps: reps as usize,
            };
            if !json {
                println!("{}", Machine::detect().line());
                println!(
                    "vbng-perf acl: IPv4, rules {:?}, {flows} flows per kind, {lookups} lookups x {} reps per workload (median), seed {:#x}",
                    args.rule_counts,
                    args.reps,
                    acl::SEED
                );
            }
            finish("acl", acl::run(&args), json)
        }
        Command::Unikernel {
            boots,
            instances,
            seconds,
            pps,
            accel,
            json,
        } => {
            let args = UnikernelArgs {
                boots: boots as usize,
                instances: instances as usize,
                seconds,
                pps,
                accel,
            };
            if !json {
                println!("{}", Machine::detect().line());
                println!(
                    "vbng-perf unikernel: {boots} boots, {instances} concurrent instances, {seconds} s per CPU figure, {pps} pings/s each while forwarding, accelerator {}",
                    accel.resolve()
                );
            }
            finish("unikernel", unikernel::run(&args), json)
        }
        Command::Radius {
            requests,
            concurrency,
            debug_server,
            json,
        } => {
            let args = RadiusArgs {
                requests,
                concurrency: concurrency as usize,
                debug: debug_server,
            };
            if !json {
                let m = Machine::detect();
                println!(
                    "{}, client on one tokio thread, FreeRADIUS in its own process",
                    m.summary()
                );
                println!(
                    "vbng-perf radius: {requests} PAP requests per run, {concurrency} in flight, {} sockets, FreeRADIUS {}",
                    radius::sockets_for(args.concurrency),
                    if debug_server { "-X" } else { "-f (threaded)" }
                );
            }
            finish("radius", radius::run(&args), json)
        }
        Command::Sessions {
            protocol,
            count,
            rate,
            window,
            timeout_s,
            no_baseline,
            json,
        } => {
            if rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
                eprintln!("vbng-perf sessions: --rate must be a positive number");
                return ExitCode::from(2);
            }
            let args = SessionsArgs {
                protocol: match protocol {
                    ProtocolArg::Pppoe => Protocol::Pppoe,
                    ProtocolArg::Ipoe => Protocol::Ipoe,
                },
                count,
                rate,
                window: window as usize,
                timeout: std::time::Duration::from_secs(timeout_s),
                progress: Progress::for_stderr(),
                baseline: !no_baseline,
            };
            match sessions::run(&args) {
                Ok((figures, runs)) => {
                    if json {
                        for f in &figures {
                            println!("{}", f.to_json_line());
                        }
                    } else {
                        print!("{}", sessions::text_report(&args, &runs));
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("vbng-perf sessions: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Fastpath(cli) => match fastpath::run(&cli) {
            Ok(out) => {
                fastpath::print(&cli, &out);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vbng-perf fastpath: {e}");
                ExitCode::FAILURE
            }
        },
        Command::FastpathChild { cli, mode, dir } => {
            match fastpath::child::child_main(&cli, mode, &dir) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    // The parent reads this line; one line, no newline inside.
                    println!("FASTPATH-ERROR {}", e.replace('\n', " "));
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Prints a subcommand's figures (a table, or JSON lines with `json`) or its error, and
/// the exit code that goes with them.
fn finish(command: &str, result: Result<Vec<report::Figure>, String>, json: bool) -> ExitCode {
    match result {
        Ok(figures) => {
            if json {
                for f in &figures {
                    println!("{}", f.to_json_line());
                }
            } else {
                print!("{}", report::table(&figures));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vbng-perf {command}: {e}");
            ExitCode::FAILURE
        }
    }
}
