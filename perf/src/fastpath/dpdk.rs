//! The DPDK child (`vbng-perf fastpath-child`): EAL with the plan's devices, per worker a
//! mempool, its two ports (one rx and one tx queue each) and a thread registered with EAL
//! and pinned to its CPU, running the pipeline over `DpdkQueue`s (the `BufferPort` trait:
//! mbufs processed in place, as vbng-up does), the same loop without the pipeline, the
//! pipeline over [`CopyingQueue`]s (each frame copied into a `Frame` and out again: the
//! design before zero-copy), or the raw `rx_burst_raw` -> `tx_burst_raw` loop (no pipeline:
//! what the queue layer itself costs).

use std::io::BufRead;
use std::sync::{Arc, Barrier, mpsc};
use std::time::Instant;

use vbng_dataplane::host::dpdk::{
    DEFAULT_DATA_ROOM, DpdkQueue, Eal, EthPort, Mempool, PortSetup, eal_init, register_thread, sys,
};
use vbng_dataplane::packet::Frame;
use vbng_dataplane::pipeline::{BURST, DropReason, Pipeline};
use vbng_dataplane::port::{BufferPort, Port, PortError};
use vbng_dataplane::wire::EthernetAddress;

use super::MAX_FRAMES_PER_DIRECTION;
use super::child::{ChildMode, DevicePlan, child_prefix};
use super::clock::LoopClock;
use super::latency::Histogram;
use super::setup::{PipelineOptions, worker_frames};
use super::worker::{ACCESS_PORT, CORE_PORT, FastpathWorker, IoCounters, WorkerReport};
use super::{FastpathCli, pin_to_cpu, worker_cpu};

/// Per-lcore cache of each worker's mempool.
const POOL_CACHE: u32 = 256;

/// The EAL arguments of the child: no hugepages, no PCI, its own file prefix, the main
/// lcore on CPU 0 (workers are registered non-EAL threads pinned by us), errors only.
pub fn eal_args(plan: &DevicePlan, workers: u32, mode: ChildMode) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "vbng-perf-fastpath".into(),
        "--no-huge".into(),
        "-m".into(),
        plan.mem_mb(workers).to_string(),
        "--no-pci".into(),
        "--no-shconf".into(),
        format!("--file-prefix={}", child_prefix(std::process::id(), mode)),
        "-l".into(),
        "0".into(),
        "--no-telemetry".into(),
        "--log-level=*:error".into(),
    ];
    v.extend(plan.vdevs.iter().map(|d| format!("--vdev={d}")));
    v
}

/// A [`DpdkQueue`] used only through its copying [`Port`] methods: its [`BufferPort`]
/// buffers are [`Frame`]s.
#[derive(Debug)]
pub struct CopyingQueue(pub DpdkQueue);

impl Port for CopyingQueue {
    #[inline]
    fn recv_burst(&mut self, frames: &mut [Frame]) -> usize {
        self.0.recv_burst(frames)
    }
    #[inline]
    fn send(&mut self, data: &[u8]) -> Result<(), PortError> {
        self.0.send(data)
    }
    #[inline]
    fn flush(&mut self) {
        self.0.flush()
    }
    fn mac(&self) -> EthernetAddress {
        self.0.mac()
    }
}

vbng_dataplane::impl_buffer_port_with_frames!(CopyingQueue);

/// Transmit drops of a worker's two queues so far.
trait TxDropped {
    fn tx_dropped(&self) -> u64;
}

impl TxDropped for DpdkQueue {
    fn tx_dropped(&self) -> u64 {
        DpdkQueue::tx_dropped(self)
    }
}

impl TxDropped for CopyingQueue {
    fn tx_dropped(&self) -> u64 {
        self.0.tx_dropped()
    }
}

/// One worker of the pipeline or I/O modes: builds its loop, warms up, waits for the
/// others (`barrier`, twice, whatever happens, so no worker waits for ever), measures.
#[allow(clippy::too_many_arguments)]
fn measure_worker<P: BufferPort + TxDropped>(
    pipeline: Result<Option<Pipeline>, String>,
    access: P,
    core: P,
    barrier: &Barrier,
    warmup: f64,
    seconds: f64,
    w: u32,
) -> WorkerOutcome {
    let built = pipeline.map(|pl| FastpathWorker::new(pl, access, core));
    let mut built = built.map(|mut wk| {
        barrier.wait();
        wk.run_for(warmup);
        wk
    });
    if built.is_err() {
        barrier.wait();
    }
    barrier.wait();
    let wk = built.as_mut().map_err(|e| e.clone())?;
    let dropped = |wk: &mut FastpathWorker<P>| {
        let q = wk.ports_mut();
        [q[0].tx_dropped(), q[1].tx_dropped()]
    };
    let before = dropped(wk);
    let mark = wk.mark();
    wk.run_for(seconds);
    let report = wk.report_since(&mark, w);
    let after = dropped(wk);
    Ok((report, [after[0] - before[0], after[1] - before[1]]))
}

/// The raw loop of one worker: receive a burst on one port, transmit it on the other.
struct RawLoop {
    queues: [DpdkQueue; 2],
    bufs: [*mut sys::rte_mbuf; BURST],
    io: IoCounters,
    latency: Histogram,
    clock: LoopClock,
}

impl RawLoop {
    #[inline(always)]
    fn now(&self) -> u64 {
        self.clock.now_ns()
    }

    #[inline(never)]
    fn run_for(&mut self, seconds: f64) {
        let until = self.now() + (seconds * 1e9) as u64;
        loop {
            let mut t_rx = [0u64; 2];
            let mut got = 0;
            for (p, t) in t_rx.iter_mut().enumerate() {
                let n = self.queues[p].rx_burst_raw(&mut self.bufs);
                if n == 0 {
                    continue;
                }
                *t = self.now();
                got += n;
                self.io.rx += n as u64;
                // SAFETY: bufs[..n] were just received from queue p: valid buffers we own,
                // from a pool that outlives both ports.
                let sent = unsafe { self.queues[1 - p].tx_burst_raw(&mut self.bufs[..n]) };
                if sent < n {
                    // SAFETY: bufs[sent..n] are still ours and referred to by nothing else.
                    unsafe {
                        sys::rte_pktmbuf_free_bulk(
                            self.bufs[sent..n].as_mut_ptr(),
                            (n - sent) as u32,
                        )
                    };
                    self.io.tx_refused += (n - sent) as u64;
                }
                self.io.tx += sent as u64;
            }
            let end = self.now();
            if got == 0 {
                self.io.idle_polls += 1;
            } else {
                for t in t_rx {
                    if t != 0 {
                        self.latency.record(end - t);
                    }
                }
            }
            if end >= until {
                break;
            }
        }
    }
}

// SAFETY: the raw pointers in `bufs` are scratch slots, never holding a buffer between
// iterations; the queues are Send.
unsafe impl Send for RawLoop {}

/// What a worker thread gives back.
type WorkerOutcome = Result<(WorkerReport, [u64; 2]), String>;

/// Worker `w`'s pipeline after it saw the pcap's upstream frames once: its NAT holds the
/// mappings the downstream pcap is addressed to.
fn primed_pipeline(opts: &PipelineOptions, w: u32, workers: u32) -> Result<Pipeline, String> {
    let pkts = opts
        .scheme
        .worker_packets(w, workers, MAX_FRAMES_PER_DIRECTION);
    worker_frames(opts, w, workers, &pkts).map(|f| f.pipeline)
}

/// Worker `w`'s pool and its two ports, started (appended to `ports`); returns their
/// queues, access then core.
fn open_worker_ports(
    eal: &'static Eal,
    plan: &DevicePlan,
    w: u32,
    ports: &mut Vec<EthPort>,
) -> Result<(DpdkQueue, DpdkQueue), String> {
    let pool = Mempool::new(
        eal,
        &format!("fastpath{w}"),
        plan.mbufs_per_worker,
        POOL_CACHE,
        DEFAULT_DATA_ROOM,
    )
    .map_err(|e| e.to_string())?;
    let setup = PortSetup {
        promiscuous: true,
        ..PortSetup::default()
    };
    let mut pair = Vec::new();
    for (j, pipeline_port) in [(0usize, ACCESS_PORT), (1, CORE_PORT)] {
        let name = &plan.names[2 * w as usize + j];
        let mut port = EthPort::by_name(eal, name).map_err(|e| e.to_string())?;
        port.configure_and_start(&setup, &pool)
            .map_err(|e| e.to_string())?;
        pair.push(port.queue(0, pipeline_port, &pool));
        ports.push(port);
    }
    let core = pair.pop().ok_or("no core queue")?;
    let access = pair.pop().ok_or("no access queue")?;
    Ok((access, core))
}

/// The child of `--paired` (mode `paired`, one worker): the pipeline mode's worker, warmed
/// up, then one measured window of `--seconds` for each `run` line on standard input, each
/// answered with its `FASTPATH-WORKER` line. Between windows the worker thread waits on a
/// channel, off the CPU, so that testpmd forwards on that CPU alone. `FASTPATH-READY`
/// says the warm-up is over; `quit` or the end of input ends the child.
pub fn run_paired_child(cli: &FastpathCli, plan: &DevicePlan) -> Result<(), String> {
    if cli.workers != 1 {
        return Err("the paired child runs one worker".into());
    }
    let eal = eal_init(&eal_args(plan, 1, ChildMode::Paired)).map_err(|e| e.to_string())?;
    let mut ports = Vec::new();
    let (access, core) = open_worker_ports(eal, plan, 0, &mut ports)?;
    let opts = cli.options(cli.sessions);
    let (warmup, seconds) = (cli.warmup, cli.seconds);
    let (run_tx, run_rx) = mpsc::channel::<()>();
    let (report_tx, report_rx) = mpsc::channel::<Result<Option<WorkerReport>, String>>();
    let worker = std::thread::Builder::new()
        .name("fastpath-0".into())
        .spawn(move || {
            let built = register_thread()
                .map_err(|e| e.to_string())
                .and_then(|_lcore| {
                    pin_to_cpu(worker_cpu(0));
                    primed_pipeline(&opts, 0, 1)
                });
            let mut wk = match built {
                Ok(pipeline) => FastpathWorker::new(Some(pipeline), access, core),
                Err(e) => {
                    let _ = report_tx.send(Err(e));
                    return;
                }
            };
            wk.run_for(warmup);
            if report_tx.send(Ok(None)).is_err() {
                return;
            }
            while run_rx.recv().is_ok() {
                let mark = wk.mark();
                wk.run_for(seconds);
                if report_tx.send(Ok(Some(wk.report_since(&mark, 0)))).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| format!("cannot start the worker thread: {e}"))?;
    let result = (|| {
        let recv = || {
            report_rx
                .recv()
                .map_err(|_| "the worker thread ended".to_owned())
        };
        recv()??;
        println!("FASTPATH-READY");
        for line in std::io::stdin().lock().lines() {
            let line = line.map_err(|e| format!("reading commands: {e}"))?;
            match line.trim() {
                "run" => {
                    run_tx.send(()).map_err(|_| "the worker thread ended")?;
                    let r = recv()??.ok_or("the worker answered a window with nothing")?;
                    println!("{}", super::child::encode(&r));
                }
                "quit" => break,
                other => return Err(format!("unknown command {other:?}")),
            }
        }
        Ok(())
    })();
    drop(run_tx);
    let _ = worker.join();
    drop(ports);
    result
}

/// Why [`run_child`] refuses [`ChildMode::Paired`]: that mode's windows are driven from
/// standard input by [`run_paired_child`].
const PAIRED_ELSEWHERE: &str = "the paired mode runs in run_paired_child, not run_child";

/// Starts EAL, the pools and ports of `plan`, runs the workers and returns their reports
/// (every mode but [`ChildMode::Paired`]).
pub fn run_child(
    cli: &FastpathCli,
    mode: ChildMode,
    plan: &DevicePlan,
) -> Result<Vec<WorkerReport>, String> {
    if mode == ChildMode::Paired {
        return Err(PAIRED_ELSEWHERE.into());
    }
    let workers = cli.workers;
    let eal = eal_init(&eal_args(plan, workers, mode)).map_err(|e| e.to_string())?;
    let mut ports = Vec::new();
    let mut queues = Vec::new();
    for w in 0..workers {
        let (access, core) = open_worker_ports(eal, plan, w, &mut ports)?;
        queues.push((access, core));
    }
    let barrier = Arc::new(Barrier::new(workers as usize));
    let opts = cli.options(cli.sessions);
    let (warmup, seconds) = (cli.warmup, cli.seconds);
    let mut handles = Vec::new();
    for (w, (access, core)) in (0..workers).zip(queues) {
        let barrier = barrier.clone();
        let h = std::thread::Builder::new()
            .name(format!("fastpath-{w}"))
            .spawn(move || -> WorkerOutcome {
                let registered = register_thread().map_err(|e| e.to_string());
                pin_to_cpu(worker_cpu(w));
                match mode {
                    ChildMode::Pipeline | ChildMode::Io | ChildMode::Copy => {
                        let pipeline = registered.and_then(|_| match mode {
                            ChildMode::Io => Ok(None),
                            _ => primed_pipeline(&opts, w, workers).map(Some),
                        });
                        let (b, w8, s8) = (&*barrier, warmup, seconds);
                        if mode == ChildMode::Copy {
                            let (a, c) = (CopyingQueue(access), CopyingQueue(core));
                            measure_worker(pipeline, a, c, b, w8, s8, w)
                        } else {
                            measure_worker(pipeline, access, core, b, w8, s8, w)
                        }
                    }
                    ChildMode::Paired => Err(PAIRED_ELSEWHERE.into()),
                    ChildMode::Raw => {
                        let mut raw = RawLoop {
                            queues: [access, core],
                            bufs: [std::ptr::null_mut(); BURST],
                            io: IoCounters::default(),
                            latency: Histogram::new(),
                            clock: LoopClock::start(),
                        };
                        barrier.wait();
                        if registered.is_ok() {
                            raw.run_for(warmup);
                        }
                        barrier.wait();
                        registered?;
                        let before = raw.io;
                        raw.latency.clear();
                        let t0 = Instant::now();
                        raw.run_for(seconds);
                        let elapsed_ns = t0.elapsed().as_nanos() as u64;
                        let io = IoCounters {
                            rx: raw.io.rx - before.rx,
                            tx: raw.io.tx - before.tx,
                            tx_refused: raw.io.tx_refused - before.tx_refused,
                            idle_polls: raw.io.idle_polls - before.idle_polls,
                        };
                        let report = WorkerReport {
                            worker: w,
                            sessions: 0,
                            elapsed_ns,
                            io,
                            drops: [0; DropReason::COUNT],
                            ul_forwarded: 0,
                            dl_forwarded: 0,
                            redirected: 0,
                            latency: raw.latency.clone(),
                        };
                        Ok((report, [0, 0]))
                    }
                }
            })
            .map_err(|e| format!("cannot start worker thread {w}: {e}"))?;
        handles.push(h);
    }
    let mut reports = Vec::new();
    let mut first_error = None;
    for (w, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok((r, tx_dropped))) => {
                for (j, d) in tx_dropped.iter().enumerate() {
                    let port = &ports[2 * w + j];
                    let s = port.stats();
                    println!(
                        "FASTPATH-PORT {} driver={} rx={} tx={} rx_missed={} rx_nombuf={} tx_errors={} queue_tx_dropped_in_window={d}",
                        port.name(),
                        port.driver(),
                        s.rx_packets,
                        s.tx_packets,
                        s.rx_missed,
                        s.rx_nombuf,
                        s.tx_errors
                    );
                }
                reports.push(r);
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(format!("worker {w}: {e}"));
            }
            Err(_) => {
                first_error.get_or_insert(format!("worker {w} panicked"));
            }
        }
    }
    drop(ports);
    match first_error {
        Some(e) => Err(e),
        None => Ok(reports),
    }
}
