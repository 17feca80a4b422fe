//! [`FastpathWorker`]: the poll loop of one worker core over two ports (0 = access,
//! 1 = core), the same loop for in-memory replay ([`ReplayPort`]) and DPDK queues.
//!
//! One iteration: receive a burst (up to 32) from the access port into the port's own
//! buffers (`BufferPort::recv_buffers`: on DPDK the received mbufs, processed in place), read
//! the clock, `process_burst`, hand every `Forward` buffer to its port's `send_buffer`,
//! release the rest and flush both ports; the same for the core port; with QoS
//! `drain_shaped` and flush again; read the clock again and record, per burst received,
//! the time from its receive to the end of the iteration in a preallocated
//! [`Histogram`]. Without a pipeline (the I/O baseline) every received frame is sent on the
//! other port unchanged, like testpmd's io forwarding. Nothing is allocated in the loop.
//!
//! [`measure_pipeline`] and [`measure_io_only`] run a fixed number of packets and are
//! `#[inline(never)]`, for callgrind's `--toggle-collect`.

use std::time::Instant;

use super::clock::LoopClock;

use vbng_dataplane::packet::{Frame, PacketBuffer, PortId};
use vbng_dataplane::pipeline::{BURST, Counters, DropReason, Pipeline, Verdict};
use vbng_dataplane::port::{BufferPort, Port, PortError};
use vbng_dataplane::wire::EthernetAddress;

use super::latency::Histogram;
pub use super::setup::{ACCESS_PORT, CORE_PORT};

/// Packets and frames the worker's loop counted itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoCounters {
    /// Frames received from both ports.
    pub rx: u64,
    /// Frames the ports accepted for transmit.
    pub tx: u64,
    /// Frames a port refused (`send` error).
    pub tx_refused: u64,
    /// Loop iterations that received nothing.
    pub idle_polls: u64,
}

/// What one worker measured over its window.
#[derive(Debug, Clone)]
pub struct WorkerReport {
    /// Worker index.
    pub worker: u32,
    /// Sessions in the worker's pipeline.
    pub sessions: u64,
    /// Length of the measured window, ns.
    pub elapsed_ns: u64,
    /// Frames received, sent, refused in the window.
    pub io: IoCounters,
    /// Drops per [`DropReason`] in the window (all zero for the I/O baseline).
    pub drops: [u64; DropReason::COUNT],
    /// Upstream frames the pipeline forwarded.
    pub ul_forwarded: u64,
    /// Downstream frames the pipeline forwarded.
    pub dl_forwarded: u64,
    /// Frames given to the control plane.
    pub redirected: u64,
    /// Receive-to-flush time of every burst in the window.
    pub latency: Histogram,
}

impl WorkerReport {
    /// Frames received per second.
    pub fn pps(&self) -> f64 {
        self.io.rx as f64 * 1e9 / self.elapsed_ns.max(1) as f64
    }
}

/// The poll loop of one worker (see the module docs).
#[derive(Debug)]
pub struct FastpathWorker<P: BufferPort> {
    pipeline: Option<Pipeline>,
    ports: Vec<P>,
    bufs: Vec<P::Buffer>,
    verdicts: Vec<Verdict>,
    latency: Histogram,
    io: IoCounters,
    clock: LoopClock,
    now_ns: u64,
}

impl<P: BufferPort> FastpathWorker<P> {
    /// A worker over `[access, core]`; `pipeline` None forwards frames unchanged to the
    /// other port (the I/O baseline).
    pub fn new(pipeline: Option<Pipeline>, access: P, core: P) -> Self {
        let bufs = (0..BURST).map(|_| access.empty_buffer()).collect();
        FastpathWorker {
            pipeline,
            ports: vec![access, core],
            bufs,
            verdicts: vec![Verdict::Drop(DropReason::Malformed); BURST],
            latency: Histogram::new(),
            io: IoCounters::default(),
            clock: LoopClock::start(),
            now_ns: 0,
        }
    }

    /// The pipeline, if any.
    pub fn pipeline(&self) -> Option<&Pipeline> {
        self.pipeline.as_ref()
    }

    /// The ports.
    #[cfg_attr(not(feature = "dpdk"), allow(dead_code))]
    pub fn ports_mut(&mut self) -> &mut [P] {
        &mut self.ports
    }

    #[inline(always)]
    fn clock(&mut self) -> u64 {
        self.now_ns = self.clock.now_ns();
        self.now_ns
    }

    /// One loop iteration; returns the frames received.
    #[inline(always)]
    pub fn iteration(&mut self) -> usize {
        let mut t_rx = [0u64; 2];
        let mut got = 0usize;
        for p in 0..2 {
            let n = self.ports[p].recv_buffers(&mut self.bufs);
            if n == 0 {
                continue;
            }
            let now = self.clock();
            t_rx[p] = now;
            got += n;
            self.io.rx += n as u64;
            let FastpathWorker {
                pipeline,
                ports,
                bufs,
                verdicts,
                io,
                ..
            } = self;
            match pipeline {
                Some(pl) => {
                    pl.process_burst(now, &mut bufs[..n], &mut verdicts[..n]);
                    for (f, v) in bufs[..n].iter_mut().zip(&verdicts[..n]) {
                        if let Verdict::Forward(out) = *v {
                            let counters = pl.counters_mut();
                            let len = f.len();
                            match ports.get_mut(usize::from(out)) {
                                Some(port) => match port.send_buffer(f) {
                                    Ok(()) => {
                                        counters.count_tx(out, len);
                                        io.tx += 1;
                                    }
                                    Err(_) => {
                                        counters.count_tx_error(out);
                                        io.tx_refused += 1;
                                    }
                                },
                                None => counters.count_drop(DropReason::NotForUs),
                            }
                        }
                    }
                }
                None => {
                    let out = &mut ports[1 - p];
                    for f in &mut bufs[..n] {
                        match out.send_buffer(f) {
                            Ok(()) => io.tx += 1,
                            Err(_) => io.tx_refused += 1,
                        }
                    }
                }
            }
            ports[p].release(&mut bufs[..n]);
            // As vbng-up's worker: each burst leaves before the next port's receive.
            for port in ports.iter_mut() {
                port.flush();
            }
        }
        if got == 0 {
            self.io.idle_polls += 1;
            self.clock();
            return 0;
        }
        let FastpathWorker {
            pipeline,
            ports,
            io,
            now_ns,
            ..
        } = self;
        if let Some(pl) = pipeline.as_mut()
            && pl.has_qos()
        {
            let sent = pl.drain_shaped(*now_ns, BURST, &mut |port, d| {
                ports
                    .get_mut(usize::from(port))
                    .is_some_and(|p| p.send(d).is_ok())
            });
            io.tx += sent as u64;
        }
        for port in ports.iter_mut() {
            port.flush();
        }
        let end = self.clock();
        for t in t_rx {
            if t != 0 {
                self.latency.record(end - t);
            }
        }
        got
    }

    /// Runs until `seconds` have passed; returns the frames received.
    pub fn run_for(&mut self, seconds: f64) -> u64 {
        let until = self.clock() + (seconds * 1e9) as u64;
        let rx = self.io.rx;
        while self.now_ns < until {
            self.iteration();
        }
        self.io.rx - rx
    }

    /// Runs until at least `packets` frames were received (or forever if none come).
    pub fn run_packets(&mut self, packets: u64) -> u64 {
        let target = self.io.rx + packets;
        while self.io.rx < target {
            self.iteration();
        }
        self.io.rx
    }

    /// Forgets the latency histogram and returns a mark to measure a window from.
    pub fn mark(&mut self) -> Mark {
        self.latency.clear();
        Mark {
            at: Instant::now(),
            io: self.io,
            counters: self.pipeline.as_ref().map(|p| p.counters().clone()),
        }
    }

    /// What happened since `mark`.
    pub fn report_since(&mut self, mark: &Mark, worker: u32) -> WorkerReport {
        let elapsed_ns = mark.at.elapsed().as_nanos() as u64;
        let io = IoCounters {
            rx: self.io.rx - mark.io.rx,
            tx: self.io.tx - mark.io.tx,
            tx_refused: self.io.tx_refused - mark.io.tx_refused,
            idle_polls: self.io.idle_polls - mark.io.idle_polls,
        };
        let mut r = WorkerReport {
            worker,
            sessions: self
                .pipeline
                .as_ref()
                .map_or(0, |p| p.session_count() as u64),
            elapsed_ns,
            io,
            drops: [0; DropReason::COUNT],
            ul_forwarded: 0,
            dl_forwarded: 0,
            redirected: 0,
            latency: self.latency.clone(),
        };
        if let (Some(p), Some(before)) = (self.pipeline.as_ref(), mark.counters.as_ref()) {
            let c: &Counters = p.counters();
            for (d, (a, b)) in r.drops.iter_mut().zip(c.drops.iter().zip(&before.drops)) {
                *d = a - b;
            }
            r.ul_forwarded = c.ul_forwarded - before.ul_forwarded;
            r.dl_forwarded = c.dl_forwarded - before.dl_forwarded;
            r.redirected = c.redirected - before.redirected;
        }
        r
    }
}

/// Counters at the start of a measured window ([`FastpathWorker::mark`]).
#[derive(Debug, Clone)]
pub struct Mark {
    /// Measured with `Instant`, not the loop's clock: a rate never depends on the
    /// [`LoopClock`]'s calibration.
    at: Instant,
    io: IoCounters,
    counters: Option<Counters>,
}

/// Runs `packets` frames through a worker that has a pipeline (callgrind counts this
/// function: `--toggle-collect='*fastpath::worker::measure_*'`).
#[inline(never)]
pub fn measure_pipeline<P: BufferPort>(w: &mut FastpathWorker<P>, packets: u64) -> u64 {
    // The constant keeps the two measure functions distinct (not folded into one symbol).
    w.run_packets(packets) + std::hint::black_box(0)
}

/// Runs `packets` frames through a worker without a pipeline (the I/O baseline; callgrind
/// pattern `'*fastpath::worker::measure_*'`).
#[inline(never)]
pub fn measure_io_only<P: BufferPort>(w: &mut FastpathWorker<P>, packets: u64) -> u64 {
    w.run_packets(packets) + std::hint::black_box(1) - 1
}

/// Frames kept in memory and replayed in a loop as a port's receive side; the transmit side
/// copies each frame into a ring of [`BURST`] buffers (what a port's transmit copy costs)
/// and forgets it.
#[derive(Debug)]
pub struct ReplayPort {
    id: PortId,
    bytes: Vec<u8>,
    index: Vec<(u32, u32)>,
    next: usize,
    ring: Vec<u8>,
    slot: usize,
    /// Frames and bytes "sent".
    pub sent: u64,
}

const RING_SLOT: usize = 2048;

impl ReplayPort {
    /// A port `id` replaying `frames` (in order, from the first again after the last).
    pub fn new<'a>(id: PortId, frames: impl IntoIterator<Item = &'a [u8]>) -> ReplayPort {
        let mut bytes = Vec::new();
        let mut index = Vec::new();
        for f in frames {
            index.push((bytes.len() as u32, f.len() as u32));
            bytes.extend_from_slice(f);
        }
        ReplayPort {
            id,
            bytes,
            index,
            next: 0,
            ring: vec![0; RING_SLOT * BURST],
            slot: 0,
            sent: 0,
        }
    }
}

vbng_dataplane::impl_buffer_port_with_frames!(ReplayPort);

impl Port for ReplayPort {
    #[inline]
    fn recv_burst(&mut self, frames: &mut [Frame]) -> usize {
        if self.index.is_empty() {
            return 0;
        }
        for f in frames.iter_mut() {
            let (at, len) = self.index[self.next];
            let (at, len) = (at as usize, len as usize);
            // Every replayed frame is at most 1514 bytes (checked by the scheme): fits.
            let _ = f.set_data(&self.bytes[at..at + len]);
            f.port = self.id;
            self.next += 1;
            if self.next == self.index.len() {
                self.next = 0;
            }
        }
        frames.len()
    }

    #[inline]
    fn send(&mut self, data: &[u8]) -> Result<(), PortError> {
        let n = data.len().min(RING_SLOT);
        let at = self.slot * RING_SLOT;
        self.ring[at..at + n].copy_from_slice(&data[..n]);
        self.slot = (self.slot + 1) % BURST;
        self.sent += 1;
        Ok(())
    }

    #[inline]
    fn flush(&mut self) {}

    fn mac(&self) -> EthernetAddress {
        EthernetAddress([0x02, 0, 0, 0, 0, self.id])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fastpath::scheme::{FrameSize, Protocol, Replay, Scheme, Vlan};
    use crate::fastpath::setup::{PipelineKind, PipelineOptions, worker_frames};
    use vbng_dataplane::isa::Isa;

    fn worker(protocol: Protocol, kind: PipelineKind) -> FastpathWorker<ReplayPort> {
        let scheme = Scheme {
            sessions: 100,
            protocol,
            vlan: Vlan::Qinq,
            size: FrameSize::Fixed(64),
            replay: Replay::All,
        };
        let opts = PipelineOptions {
            kind,
            scheme,
            qos: false,
            isa: Isa::detect(),
        };
        let pkts = scheme.worker_packets(0, 1, 1000);
        let f = worker_frames(&opts, 0, 1, &pkts).unwrap();
        let (up, down, pl) = (f.up, f.down, f.pipeline);
        FastpathWorker::new(
            Some(pl),
            ReplayPort::new(ACCESS_PORT, up.iter().map(Vec::as_slice)),
            ReplayPort::new(CORE_PORT, down.iter().map(Vec::as_slice)),
        )
    }

    /// The pipeline's bursts compiled for x86-64-v3 forward, drop and count exactly as the
    /// baseline's: every lab layout, full and IPoE pipelines, the lab's frames and the same
    /// frames with one byte changed (so that the drop and redirect paths run too).
    #[test]
    fn both_instruction_sets_give_the_same_bytes() {
        let Some(v3) = Isa::x86_64_v3() else {
            eprintln!(
                "SKIPPED: both_instruction_sets_give_the_same_bytes: this CPU lacks x86-64-v3"
            );
            return;
        };
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for protocol in [Protocol::Ipoe, Protocol::Pppoe] {
            for vlan in [Vlan::None, Vlan::Single, Vlan::Qinq] {
                for kind in [PipelineKind::Ipoe, PipelineKind::Full] {
                    let scheme = Scheme {
                        sessions: 300,
                        protocol,
                        vlan,
                        size: FrameSize::Imix,
                        replay: Replay::All,
                    };
                    let opts = |isa| PipelineOptions {
                        kind,
                        scheme,
                        qos: false,
                        isa,
                    };
                    let pkts = scheme.worker_packets(0, 1, 2000);
                    let mut base = worker_frames(&opts(Isa::baseline()), 0, 1, &pkts).unwrap();
                    let mut wide = worker_frames(&opts(v3), 0, 1, &pkts).unwrap();
                    assert_eq!(base.up, wide.up);
                    assert_eq!(wide.pipeline.isa(), v3);
                    let mut frames: Vec<(PortId, Vec<u8>)> = Vec::new();
                    for (port, list) in [(ACCESS_PORT, &base.up), (CORE_PORT, &base.down)] {
                        for f in list {
                            frames.push((port, f.clone()));
                            let mut bad = f.clone();
                            let at = next() as usize % bad.len();
                            bad[at] ^= 1 << (next() % 8);
                            frames.push((port, bad));
                        }
                    }
                    let mut now = 1_000_000u64;
                    for chunk in frames.chunks(BURST) {
                        now += 50_000;
                        let a = burst_of(&mut base.pipeline, now, chunk);
                        let b = burst_of(&mut wide.pipeline, now, chunk);
                        assert_eq!(a, b, "{protocol:?} {vlan:?} {kind:?}");
                    }
                    assert_eq!(base.pipeline.counters(), wide.pipeline.counters());
                    assert!(base.pipeline.counters().ul_forwarded > 0);
                }
            }
        }
    }

    /// Each frame's verdict and bytes after one burst of `frames` through `pipeline`.
    fn burst_of(
        pipeline: &mut Pipeline,
        now: u64,
        frames: &[(PortId, Vec<u8>)],
    ) -> Vec<(Verdict, Vec<u8>)> {
        let mut burst: Vec<Frame> = frames
            .iter()
            .map(|(port, bytes)| {
                let mut f = Frame::new();
                f.set_data(bytes).unwrap();
                f.port = *port;
                f
            })
            .collect();
        let mut verdicts = vec![Verdict::Drop(DropReason::Malformed); burst.len()];
        pipeline.process_burst(now, &mut burst, &mut verdicts);
        verdicts
            .into_iter()
            .zip(burst.iter().map(|f| f.data().to_vec()))
            .collect()
    }

    #[test]
    fn every_frame_is_forwarded() {
        for protocol in [Protocol::Ipoe, Protocol::Pppoe] {
            for kind in [PipelineKind::Ipoe, PipelineKind::Full] {
                let mut w = worker(protocol, kind);
                // The pipeline saw every upstream frame once while the frames were built.
                let ul_before = |w: &FastpathWorker<ReplayPort>| {
                    let pl = w.pipeline().unwrap();
                    pl.sessions().get(1).unwrap().counters.ul_packets
                };
                let primed = ul_before(&w);
                let m = w.mark();
                w.run_packets(6400);
                let r = w.report_since(&m, 0);
                assert_eq!(r.io.rx, 6400);
                assert_eq!(r.io.tx, 6400, "{protocol:?} {kind:?}: {:?}", r.drops);
                assert_eq!((r.ul_forwarded, r.dl_forwarded), (3200, 3200));
                assert_eq!(r.drops.iter().sum::<u64>(), 0);
                assert_eq!(r.latency.count(), 200);
                assert_eq!(ul_before(&w) - primed, 32);
            }
        }
    }
}
