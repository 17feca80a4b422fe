//! `--scale`: Mpps per core and ns per packet at 1, 1k, 10k, 100k and 1M sessions on the
//! memory device (default) or DPDK net_pcap, beside the same loop without the pipeline at
//! each point, and the 1M rate beside the 10k rate; a Markdown table, a CSV and a PNG plot
//! (`perf/plot_scale.py`, matplotlib). On the memory device the 1M and 10k points are also
//! measured in alternating windows on one core ([`paired`]), for a ratio that a shared
//! machine's changing load moves less.
//!
//! Every point replays the same number of frames, [`MAX_FRAMES_PER_DIRECTION`] per direction
//! and worker: (subscriber, packet) pairs drawn at random (fixed seed) from its N sessions,
//! all of them in the table ([`Replay::Sample`]). The lookups spread over a table of N
//! entries without keeping N frame buffers, and the points differ in N only. Replaying every
//! session's frames subscriber by subscriber instead (`--replay all`, the plain run's
//! default) changes two more things with N: up to 65,536 sessions the frames fit in fewer
//! buffers, which stay in cache, and the tables are read in the order the sessions were
//! installed, which the hardware prefetcher follows. Both favour the small points.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::report::Figure;
use crate::timing::Machine;

use super::memory::{memory_worker, run_threads};
use super::random_reads::{self, LARGE_BYTES, SMALL_BYTES};
use super::scheme::Replay;
use super::setup::build_pipeline;
use super::{
    Device, FastpathCli, MAX_FRAMES_PER_DIRECTION, Output, RunTotals, base_params, child,
    common_notes, pin_to_cpu, worker_cpu,
};

/// Session counts of the curve.
pub const POINTS: [u32; 5] = [1, 1_000, 10_000, 100_000, 1_000_000];

/// The rate at [`LARGE`] sessions is compared with the rate at [`REFERENCE`] sessions.
const LARGE: u32 = 1_000_000;
const REFERENCE: u32 = 10_000;

/// Reads per pass of the random-line probe ([`random_reads`]).
const RANDOM_READS: usize = 1 << 22;

/// One point of the curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Sessions in the table.
    pub sessions: u32,
    /// Pipeline Mpps per worker core.
    pub mpps: f64,
    /// I/O-only Mpps per worker core.
    pub io_mpps: f64,
    /// Frames per direction in worker 0's loop.
    pub frames: usize,
    /// Bytes the session table allocates per session, grown to this many sessions one
    /// upsert at a time as the control plane installs them.
    pub table_bytes_per_session: f64,
    /// Bytes the NAT allocates per subscriber (its entry and index and its port-block
    /// slots; mappings excluded), 0 without NAT.
    pub nat_bytes_per_session: f64,
}

impl Point {
    /// Pipeline ns per packet per core.
    pub fn ns(&self) -> f64 {
        1e3 / self.mpps
    }
    /// I/O-only ns per packet per core.
    pub fn io_ns(&self) -> f64 {
        1e3 / self.io_mpps
    }
    /// Bytes per session in the user plane, NAT flows excluded.
    pub fn bytes_per_session(&self) -> f64 {
        self.table_bytes_per_session + self.nat_bytes_per_session
    }
}

/// The Markdown table of the curve.
pub fn markdown(points: &[Point]) -> String {
    let mut s = String::from(
        "| sessions | Mpps/core | ns/packet | I/O only Mpps/core | I/O only ns/packet | difference ns/packet | frames/direction in loop | table bytes/session | NAT bytes/session | bytes/session |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for p in points {
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.1} | {:.2} | {:.1} | {:.1} | {} | {:.0} | {:.0} | {:.0} |",
            p.sessions,
            p.mpps,
            p.ns(),
            p.io_mpps,
            p.io_ns(),
            p.ns() - p.io_ns(),
            p.frames,
            p.table_bytes_per_session,
            p.nat_bytes_per_session,
            p.bytes_per_session()
        );
    }
    s
}

/// The CSV of the curve (header + one line per point).
pub fn csv(points: &[Point]) -> String {
    let mut s = String::from(
        "sessions,mpps_per_core,ns_per_packet,io_only_mpps_per_core,io_only_ns_per_packet\n",
    );
    for p in points {
        let _ = writeln!(
            s,
            "{},{:.4},{:.3},{:.4},{:.3}",
            p.sessions,
            p.mpps,
            p.ns(),
            p.io_mpps,
            p.io_ns()
        );
    }
    s
}

/// The user plane's memory budget per session (session entry, indexes, ACL reference,
/// NAT subscriber and port blocks; NAT flows excluded).
pub const SESSION_BUDGET_BYTES: f64 = 256.0;

/// Bytes per session of a pipeline built as the run builds worker 0's (one worker: all `n`
/// sessions), the sessions installed one by one as the control plane installs them (so
/// growth slack counts): (session table, NAT per subscriber). The NAT is sized for one
/// subscriber per session, and the part counted is what it allocates per subscriber slot:
/// the subscriber entry and index and the port-block slots. Its mapping table (the flows),
/// address pool, log queue and fragment table are left out.
pub fn bytes_per_session(cli: &FastpathCli, n: u32) -> Result<(f64, f64), String> {
    let pipeline = build_pipeline(&cli.options(n), 0, 1)?;
    let per_session = |bytes: usize| bytes as f64 / f64::from(n.max(1));
    let nat = pipeline.nat().map_or(0, |nat| {
        let memory = nat.memory();
        memory.subscribers + memory.port_blocks
    });
    Ok((
        per_session(pipeline.sessions().memory_bytes()),
        per_session(nat),
    ))
}

/// Path of the plot script, next to this crate's Cargo.toml.
pub fn plot_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plot_scale.py")
}

/// Runs `/usr/bin/python3 plot_scale.py <csv> <png> <title>`; Err(why) when it cannot.
pub fn plot(csv: &Path, png: &Path, title: &str) -> Result<(), String> {
    let script = plot_script();
    if !script.exists() {
        return Err(format!("{} not found", script.display()));
    }
    let out = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(csv)
        .arg(png)
        .arg(title)
        .output()
        .map_err(|e| format!("cannot run /usr/bin/python3: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("plot script failed")
            .trim()
            .to_owned())
    }
}

/// The rates at [`LARGE`] and [`REFERENCE`] sessions among (sessions, Mpps) pairs.
fn large_and_reference(rates: &[(u32, f64)]) -> Option<(f64, f64)> {
    let at = |n: u32| rates.iter().find(|r| r.0 == n).map(|r| r.1);
    Some((at(LARGE)?, at(REFERENCE)?))
}

/// One measurement of the point of `n` sessions: (pipeline, I/O only, frames per
/// direction in worker 0's loop).
fn measure(cli: &FastpathCli, n: u32) -> Result<(RunTotals, RunTotals, usize), String> {
    match cli.device() {
        Device::Pcap => child::measure_point(&FastpathCli {
            sessions: n,
            ..cli.clone()
        }),
        _ => {
            let opts = cli.options(n);
            let (io, _) = run_threads(&opts, cli.workers, false, cli.warmup, cli.seconds)?;
            let (ours, frames) = run_threads(&opts, cli.workers, true, cli.warmup, cli.seconds)?;
            Ok((RunTotals::of(&ours), RunTotals::of(&io), frames))
        }
    }
}

/// Length of one window of the paired measurement ([`paired`]).
const PAIR_WINDOW_S: f64 = 0.25;

/// The [`LARGE`] and [`REFERENCE`] points measured in turn on one core.
#[derive(Debug, Clone, PartialEq)]
struct Paired {
    /// Mpps over all the windows of each: (large, reference).
    mpps: (f64, f64),
    /// Large over reference, one ratio per pair of adjacent windows, sorted.
    pair_ratios: Vec<f64>,
}

impl Paired {
    fn median(&self) -> f64 {
        let r = &self.pair_ratios;
        match r.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => r[n / 2],
            n => (r[n / 2 - 1] + r[n / 2]) / 2.0,
        }
    }
}

/// Worker 0's pipelines at [`LARGE`] and at [`REFERENCE`] sessions, both built and kept in
/// memory, measured on one core in alternating windows of [`PAIR_WINDOW_S`] (the order
/// swapped every pair) for `rounds * seconds` seconds each. The points of the curve are
/// measured tens of seconds apart, long enough for a neighbour's load to come or go
/// between them; adjacent windows see nearly the same machine, so their ratio carries
/// less of that noise (a load that changes within a quarter second still shows in it).
fn paired(cli: &FastpathCli) -> Result<Paired, String> {
    let (large_opts, reference_opts) = (cli.options(LARGE), cli.options(REFERENCE));
    let (workers, warmup) = (cli.workers, cli.warmup);
    let pairs = ((f64::from(cli.rounds) * cli.seconds / PAIR_WINDOW_S).round() as usize).max(2);
    let thread = std::thread::Builder::new()
        .name("fastpath-paired".into())
        .spawn(move || -> Result<Paired, String> {
            pin_to_cpu(worker_cpu(0));
            let (mut large, _) = memory_worker(&large_opts, 0, workers, true)?;
            let (mut reference, _) = memory_worker(&reference_opts, 0, workers, true)?;
            large.run_for(warmup);
            reference.run_for(warmup);
            // (frames, ns) of each, over all its windows.
            let mut totals = [(0u64, 0u64); 2];
            let mut pair_ratios = Vec::with_capacity(pairs);
            for i in 0..pairs {
                let mut rate = [0.0; 2];
                let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
                for which in order {
                    let w = if which == 0 {
                        &mut large
                    } else {
                        &mut reference
                    };
                    let mark = w.mark();
                    w.run_for(PAIR_WINDOW_S);
                    let r = w.report_since(&mark, 0);
                    totals[which].0 += r.io.rx;
                    totals[which].1 += r.elapsed_ns;
                    rate[which] = r.io.rx as f64 / r.elapsed_ns.max(1) as f64;
                }
                pair_ratios.push(rate[0] / rate[1]);
            }
            pair_ratios.sort_by(f64::total_cmp);
            let mpps = |(frames, ns): (u64, u64)| frames as f64 * 1e3 / ns.max(1) as f64;
            Ok(Paired {
                mpps: (mpps(totals[0]), mpps(totals[1])),
                pair_ratios,
            })
        })
        .map_err(|e| format!("cannot start the paired measurement's thread: {e}"))?;
    thread
        .join()
        .map_err(|_| "the paired measurement's thread panicked".to_owned())?
}

/// `vbng-perf fastpath --scale`.
pub fn run(cli: &FastpathCli) -> Result<Output, String> {
    let m = Machine::detect();
    let mut points = Vec::new();
    let mut figures = Vec::new();
    let io_name = match cli.device() {
        Device::Memory => "memory_io_only",
        Device::Pcap => "dpdk_port_io",
        Device::Null => return Err("--scale needs --device memory or pcap".into()),
    };
    // Every round measures every point; each point keeps its best round (a shared
    // machine's noise only ever slows a run down).
    let mut best: Vec<Option<(RunTotals, usize)>> = vec![None; POINTS.len()];
    let mut best_io: Vec<Option<RunTotals>> = vec![None; POINTS.len()];
    let mut round_ratios = Vec::new();
    // The machine's cost of a random line, small buffer and large, best of the rounds.
    let mut random_line_ns = (f64::INFINITY, f64::INFINITY);
    for round in 1..=cli.rounds {
        random_line_ns.0 = random_line_ns.0.min(random_reads::ns_per_random_line(
            SMALL_BYTES,
            RANDOM_READS,
            3,
        ));
        random_line_ns.1 = random_line_ns.1.min(random_reads::ns_per_random_line(
            LARGE_BYTES,
            RANDOM_READS,
            3,
        ));
        let mut rates = Vec::new();
        for (i, &n) in POINTS.iter().enumerate() {
            if cli.rounds > 1 {
                eprintln!(
                    "fastpath --scale: {n} sessions (round {round} of {}) ...",
                    cli.rounds
                );
            } else {
                eprintln!("fastpath --scale: {n} sessions ...");
            }
            let (ours, io, frames) = measure(cli, n)?;
            rates.push((n, ours.mpps_per_core()));
            if best[i].as_ref().is_none_or(|(b, _)| ours.pps > b.pps) {
                best[i] = Some((ours, frames));
            }
            if best_io[i].as_ref().is_none_or(|b| io.pps > b.pps) {
                best_io[i] = Some(io);
            }
        }
        if let Some((large, reference)) = large_and_reference(&rates) {
            round_ratios.push(large / reference);
        }
    }
    for ((&n, kept), io) in POINTS.iter().zip(best).zip(best_io) {
        let ((ours, frames), io) = kept.zip(io).ok_or("no scale measurement")?;
        let (table_bytes_per_session, nat_bytes_per_session) = bytes_per_session(cli, n)?;
        let p = Point {
            sessions: n,
            mpps: ours.mpps_per_core(),
            io_mpps: io.mpps_per_core(),
            frames,
            table_bytes_per_session,
            nat_bytes_per_session,
        };
        let params = |f: Figure| {
            let mut f = base_params(f, cli, n, &m);
            f = f.param("frames_per_direction", frames);
            f
        };
        figures.push(params(
            Figure::new(
                &format!("fastpath.scale.mpps_per_core_{n}_sessions"),
                p.mpps,
                "Mpps",
            )
            .with_baseline(
                &format!("fastpath.scale.{io_name}_mpps_per_core_{n}_sessions"),
                p.io_mpps,
            ),
        ));
        figures.push(params(
            Figure::new(
                &format!("fastpath.scale.ns_per_packet_{n}_sessions"),
                p.ns(),
                "ns/packet",
            )
            .with_baseline(
                &format!("fastpath.scale.{io_name}_ns_per_packet_{n}_sessions"),
                p.io_ns(),
            ),
        ));
        figures.push(params(Figure::new(
            &format!("fastpath.scale.table_bytes_per_session_{n}_sessions"),
            p.table_bytes_per_session,
            "bytes",
        )));
        figures.push(params(Figure::new(
            &format!("fastpath.scale.nat_bytes_per_session_{n}_sessions"),
            p.nat_bytes_per_session,
            "bytes",
        )));
        figures.push(params(
            Figure::new(
                &format!("fastpath.scale.bytes_per_session_{n}_sessions"),
                p.bytes_per_session(),
                "bytes",
            )
            .with_baseline(
                "fastpath.scale.budget_bytes_per_session",
                SESSION_BUDGET_BYTES,
            ),
        ));
        let drops: u64 = ours.drops.iter().sum();
        if drops > 0 {
            eprintln!("fastpath --scale: {n} sessions: {drops} frames dropped");
        }
        points.push(p);
    }
    let rates: Vec<(u32, f64)> = points.iter().map(|p| (p.sessions, p.mpps)).collect();
    if let Some((large, reference)) = large_and_reference(&rates) {
        figures.push(base_params(
            Figure::new(
                &format!("fastpath.scale.mpps_per_core_{LARGE}_vs_{REFERENCE}_sessions"),
                large,
                "Mpps",
            )
            .with_baseline(
                &format!("fastpath.scale.mpps_per_core_{REFERENCE}_sessions"),
                reference,
            ),
            cli,
            LARGE,
            &m,
        ));
    }
    let paired = match cli.device() {
        Device::Memory => {
            eprintln!("fastpath --scale: {LARGE} and {REFERENCE} sessions in turn ...");
            Some(paired(cli)?)
        }
        _ => None,
    };
    if let Some(p) = &paired {
        figures.push(base_params(
            Figure::new(
                &format!("fastpath.scale.paired_mpps_per_core_{LARGE}_vs_{REFERENCE}_sessions"),
                p.mpps.0,
                "Mpps",
            )
            .with_baseline(
                &format!("fastpath.scale.paired_mpps_per_core_{REFERENCE}_sessions"),
                p.mpps.1,
            ),
            cli,
            LARGE,
            &m,
        ));
    }
    let mib = |bytes: usize| bytes >> 20;
    figures.push(base_params(
        Figure::new(
            &format!("fastpath.scale.random_line_ns_{}mib", mib(LARGE_BYTES)),
            random_line_ns.1,
            "ns/read",
        )
        .with_baseline(
            &format!("fastpath.scale.random_line_ns_{}mib", mib(SMALL_BYTES)),
            random_line_ns.0,
        ),
        cli,
        LARGE,
        &m,
    ));
    let mut notes = common_notes(cli, &m);
    notes.push(format!(
        "scale: random_line_ns: this machine's time per read of a random 64-byte line of a \
         {} MiB buffer (about the tables at {LARGE} sessions) beside a {} MiB one, each line \
         asked for {} reads ahead, best of the rounds: the floor under every table line a \
         packet misses at the large points",
        mib(LARGE_BYTES),
        mib(SMALL_BYTES),
        random_reads::AHEAD
    ));
    if cli.rounds > 1 {
        let r: Vec<String> = round_ratios.iter().map(|x| format!("{x:.3}")).collect();
        notes.push(format!(
            "scale: {} rounds, every point its best round's; the {LARGE}-session rate over the \
             {REFERENCE}-session rate in each round: {}",
            cli.rounds,
            r.join(" ")
        ));
    }
    let replayed = match cli.replay() {
        Replay::Sample => format!(
            "every point replays a fixed-seed random sample of {MAX_FRAMES_PER_DIRECTION} \
             (subscriber, packet) pairs per direction, drawn from its N sessions"
        ),
        Replay::All => format!(
            "--replay all: up to {MAX_FRAMES_PER_DIRECTION} sessions every session's frames \
             are replayed subscriber by subscriber, beyond that a fixed-seed random sample of \
             {MAX_FRAMES_PER_DIRECTION} (subscriber, packet) pairs per direction"
        ),
    };
    notes.push(format!(
        "scale: device {}; {replayed}, while all N sessions are in the table; baseline: the \
         same loop without the pipeline ({io_name})",
        cli.device().name()
    ));
    match &paired {
        Some(p) => {
            let (lo, hi) = (p.pair_ratios.first(), p.pair_ratios.last());
            notes.push(format!(
                "scale: paired: worker 0's pipelines at {LARGE} and {REFERENCE} sessions kept \
                 side by side and measured on one core in {} pairs of alternating {PAIR_WINDOW_S} s \
                 windows; the ratio over all windows beside each pair's: median {:.3}, lowest \
                 {:.3}, highest {:.3}",
                p.pair_ratios.len(),
                p.median(),
                lo.copied().unwrap_or(f64::NAN),
                hi.copied().unwrap_or(f64::NAN),
            ));
        }
        None => notes.push(format!(
            "scale: paired measurement of {LARGE} against {REFERENCE} sessions: memory device only"
        )),
    }
    notes.push(format!(
        "scale: table bytes/session is what the session table allocates (entries with their \
         ACL reference, free-slot bitmap and list, the access, IPv4 and id indexes) after the \
         sessions were installed one by one; NAT bytes/session is what the NAT allocates per \
         subscriber slot (entry, index, port-block slots; mappings, pool and log left out); bytes/session is their sum, beside the budget of \
         {SESSION_BUDGET_BYTES} bytes"
    ));
    let stem = format!(
        "fastpath-scale-{}-{}-{}-{}w",
        cli.kind().name(),
        cli.protocol().name(),
        cli.device().name(),
        cli.workers
    );
    let csv_path = cli.out_dir.join(format!("{stem}.csv"));
    let png_path = cli.out_dir.join(format!("{stem}.png"));
    match std::fs::write(&csv_path, csv(&points)) {
        Ok(()) => {
            notes.push(format!("scale: CSV written to {}", csv_path.display()));
            let title = format!(
                "vbng fastpath, pipeline {}, {}, {} worker(s), device {}",
                cli.kind().name(),
                cli.protocol().name(),
                cli.workers,
                cli.device().name()
            );
            match plot(&csv_path, &png_path, &title) {
                Ok(()) => notes.push(format!("scale: plot written to {}", png_path.display())),
                Err(why) => {
                    eprintln!("SKIPPED: plot: {why}");
                    notes.push(format!("SKIPPED: plot: {why}"));
                }
            }
        }
        Err(e) => notes.push(format!(
            "SKIPPED: plot: cannot write {}: {e}",
            csv_path.display()
        )),
    }
    Ok(Output {
        figures,
        notes,
        markdown: Some(markdown(&points)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_median_of_odd_and_even_counts() {
        let p = |pair_ratios: Vec<f64>| Paired {
            mpps: (1.0, 1.0),
            pair_ratios,
        };
        assert_eq!(p(vec![0.7, 0.8, 0.95]).median(), 0.8);
        assert!((p(vec![0.7, 0.8, 0.9, 1.0]).median() - 0.85).abs() < 1e-12);
        assert!(p(Vec::new()).median().is_nan());
    }

    #[test]
    fn table_and_csv() {
        let pts = [Point {
            sessions: 1000,
            mpps: 10.0,
            io_mpps: 20.0,
            frames: 1000,
            table_bytes_per_session: 180.4,
            nat_bytes_per_session: 60.0,
        }];
        let md = markdown(&pts);
        assert!(
            md.contains("| 1000 | 10.00 | 100.0 | 20.00 | 50.0 | 50.0 | 1000 | 180 | 60 | 240 |"),
            "{md}"
        );
        let c = csv(&pts);
        assert_eq!(
            c.lines().nth(1),
            Some("1000,10.0000,100.000,20.0000,50.000")
        );
    }
}
