//! `--device memory`: worker threads in this process replay the scheme's frames from memory
//! ([`ReplayPort`]), first without the pipeline (the I/O baseline: receive copy, transmit
//! copy) and then with it; and `--callgrind`, one fixed-size run of each for instruction
//! counts.

use std::sync::{Arc, Barrier};

use crate::timing::Machine;

use super::scheme::Replay;
use super::setup::{PipelineOptions, worker_frames};
use super::worker::{
    ACCESS_PORT, CORE_PORT, FastpathWorker, ReplayPort, WorkerReport, measure_io_only,
    measure_pipeline,
};
use super::{
    BaselineRate, FastpathCli, MAX_FRAMES_PER_DIRECTION, Output, RunTotals, callgrind,
    common_notes, pin_to_cpu, run_figures, worker_cpu,
};

/// Worker `w` of `workers` over replay ports holding its frames (all of them, or a sample
/// of [`MAX_FRAMES_PER_DIRECTION`] per direction), with the pipeline if `pipeline`.
/// Returns the worker and the number of frames per direction in its loop.
pub fn memory_worker(
    opts: &PipelineOptions,
    w: u32,
    workers: u32,
    pipeline: bool,
) -> Result<(FastpathWorker<ReplayPort>, usize), String> {
    let pkts = opts
        .scheme
        .worker_packets(w, workers, MAX_FRAMES_PER_DIRECTION);
    let frames = worker_frames(opts, w, workers, &pkts)?;
    let (up, down) = (frames.up, frames.down);
    let pl = pipeline.then_some(frames.pipeline);
    let worker = FastpathWorker::new(
        pl,
        ReplayPort::new(ACCESS_PORT, up.iter().map(Vec::as_slice)),
        ReplayPort::new(CORE_PORT, down.iter().map(Vec::as_slice)),
    );
    Ok((worker, pkts.len()))
}

/// Runs `workers` threads (worker `w` pinned to [`worker_cpu`]`(w)`), each building its
/// worker, warming up for `warmup` s and measuring `seconds` s, all windows started
/// together. Returns the reports and the frames per direction of worker 0.
pub fn run_threads(
    opts: &PipelineOptions,
    workers: u32,
    pipeline: bool,
    warmup: f64,
    seconds: f64,
) -> Result<(Vec<WorkerReport>, usize), String> {
    let barrier = Arc::new(Barrier::new(workers as usize));
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let barrier = barrier.clone();
            let opts = *opts;
            std::thread::Builder::new()
                .name(format!("fastpath-{w}"))
                .spawn(move || {
                    pin_to_cpu(worker_cpu(w));
                    let mut built = memory_worker(&opts, w, workers, pipeline);
                    // Every thread waits twice, whether it could build its worker or not.
                    barrier.wait();
                    if let Ok((worker, _)) = built.as_mut() {
                        worker.run_for(warmup);
                    }
                    barrier.wait();
                    let (mut worker, frames) = built?;
                    let mark = worker.mark();
                    worker.run_for(seconds);
                    Ok::<_, String>((worker.report_since(&mark, w), frames))
                })
                .map_err(|e| format!("cannot start worker thread {w}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let mut reports = Vec::new();
    let mut frames = 0;
    for h in handles {
        let (r, f) = h
            .join()
            .map_err(|_| "a worker thread panicked".to_owned())??;
        if r.worker == 0 {
            frames = f;
        }
        reports.push(r);
    }
    Ok((reports, frames))
}

/// `vbng-perf fastpath --device memory`.
pub fn run(cli: &FastpathCli) -> Result<Output, String> {
    let m = Machine::detect();
    let opts = cli.options(cli.sessions);
    let (io, _) = run_threads(&opts, cli.workers, false, cli.warmup, cli.seconds)?;
    let (ours, frames) = run_threads(&opts, cli.workers, true, cli.warmup, cli.seconds)?;
    let io = RunTotals::of(&io);
    let ours = RunTotals::of(&ours);
    let baseline = BaselineRate {
        name: "fastpath.memory_io_only_mpps_per_core".into(),
        mpps_per_core: io.mpps_per_core(),
        mpps_total: io.pps / 1e6,
    };
    let mut out = Output {
        figures: run_figures(
            cli,
            cli.sessions,
            &ours,
            &[("memory_io_only", &io)],
            Some(&baseline),
            &m,
        ),
        notes: common_notes(cli, &m),
        markdown: None,
    };
    let which = match cli.replay() {
        Replay::All => format!(
            "all of its subscribers' frames up to {MAX_FRAMES_PER_DIRECTION} per direction, else \
             a random sample of that many"
        ),
        Replay::Sample => "a random sample of its subscribers' frames, --replay sample".to_owned(),
    };
    out.notes.push(format!(
        "memory device: worker 0 replays {frames} upstream and {frames} downstream frames in a loop \
         ({which}); receive = copy into the frame, transmit = copy into a 32-slot ring; \
         baseline = the same loop without the pipeline"
    ));
    if !cli.no_instructions {
        match callgrind::measure(cli, cli.sessions) {
            Ok(Some(ir)) => out
                .figures
                .extend(callgrind::figures(cli, cli.sessions, &ir, &m)),
            Ok(None) => out.skipped("instructions per packet: valgrind not found"),
            Err(e) => out.skipped(&format!("instructions per packet: {e}")),
        }
    }
    Ok(out)
}

/// `--callgrind`: worker 0 of 1 (all sessions), `measure_pipeline` over `--packets` frames
/// (rounded up to whole iterations of 64), then `measure_io_only` over as many. Under
/// callgrind with `--toggle-collect` on those two functions, Ir / frames is the figure.
pub fn run_callgrind(cli: &FastpathCli) -> Result<Output, String> {
    let opts = cli.options(cli.sessions);
    let packets = cli.packets.div_ceil(64) * 64;
    let (mut w, frames) = memory_worker(&opts, 0, 1, true)?;
    let got = measure_pipeline(&mut w, packets);
    let (mut io, _) = memory_worker(&opts, 0, 1, false)?;
    let got_io = measure_io_only(&mut io, packets);
    let drops: u64 = w.pipeline().map_or(0, |p| p.counters().total_drops());
    Ok(Output {
        figures: Vec::new(),
        notes: vec![
            format!(
                "callgrind: measure_pipeline frames={got} drops={drops} loop_frames_per_direction={frames}"
            ),
            format!("callgrind: measure_io_only frames={got_io}"),
        ],
        markdown: None,
    })
}
