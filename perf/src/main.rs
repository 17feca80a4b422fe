//! `vbng-perf`: vbng's benchmark harness. See perf/README.md.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vbng_perf::qos::{self, QosArgs};
use vbng_perf::radius::{self, RadiusArgs};
use vbng_perf::report;
use vbng_perf::timing::Machine;

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
                    "machine: cpu \"{}\", {} logical cpus, {} build, client on one tokio thread, FreeRADIUS in its own process",
                    m.cpu,
                    m.cpus,
                    if m.optimised { "release" } else { "debug" }
                );
                println!(
                    "vbng-perf radius: {requests} PAP requests per run, {concurrency} in flight, {} sockets, FreeRADIUS {}",
                    radius::sockets_for(args.concurrency),
                    if debug_server { "-X" } else { "-f (threaded)" }
                );
            }
            match radius::run(&args) {
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
                    eprintln!("vbng-perf radius: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
