//! [`PipelineBench`]: the downstream path of `vbng_dataplane::pipeline::Pipeline`
//! (core -> subscriber) over N sessions, without QoS or with every session shaped.
//!
//! Per burst: [`BURST`] minimum-size frames from the core (one per session, sessions in
//! [`Spread`] order) are copied into the receive array (the port's receive copy),
//! `process_burst` classifies, looks up, rewrites (TTL, QinQ push, MACs), and every
//! `Forward` frame is handed to a [`TxSink`] (the port's transmit copy). With QoS a shaped
//! frame comes back `Forward` if the shaper's conformant fast path let it through (no
//! backlog, tokens available), else `Queued`, and `drain_shaped` sends up to [`BURST`]
//! queued frames through the same sink, as the poll loop does. The simulated clock advances by
//! [`SIM_NS_PER_BURST`] per burst. Receive and transmit copies are in both figures, so the
//! difference is the cost of shaping and scheduling, including the frame pool's cache
//! misses (a queued frame's buffer goes cold while it waits).

use std::net::Ipv4Addr;

use vbng_dataplane::packet::{Frame, PortId};
use vbng_dataplane::pipeline::{Pipeline, PipelineConfig, Verdict};
use vbng_dataplane::session::{AccessKey, SessionEntry, SessionIpv6, SessionQos, UsageCounters};
use vbng_dataplane::wire::frame::{L2Header, build_ipv4_udp};
use vbng_dataplane::wire::{EtherType, EthernetAddress};

use super::scheduler::{bench_config, priming_packets_per_subscriber};
use super::{BURST, FRAME_BYTES, SIM_NS_PER_BURST, Spread, Tally, shaped_rate_bps, under_rate_bps};
use crate::timing::Workload;

const ACCESS: PortId = 0;
const CORE: PortId = 1;
const GW_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x5e, 0x00, 0x01, 0x01]);
const CORE_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);
const NH_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]);
const INTERNET: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);
/// First subscriber address (100.64.0.0/10, room for 4M sessions).
const SUB_BASE: u32 = u32::from_be_bytes([100, 64, 0, 0]);
/// UDP payload giving a 46-byte IPv4 packet in a 60-byte frame.
const PAYLOAD: [u8; 18] = *b"vbng-perf qos load";

/// Session `i` of the benchmark: QinQ (S-VLAN 100 + i / 4000, C-VLAN 1 + i % 4000) on the
/// access port, address 100.64.0.0 + i, downlink rate `dl_rate_bps`.
pub fn session(i: u32, dl_rate_bps: Option<u64>) -> SessionEntry {
    let b = i.to_be_bytes();
    SessionEntry {
        id: u64::from(i) + 1,
        access: AccessKey {
            port: ACCESS,
            svlan: 100 + (i / 4000) as u16,
            cvlan: 1 + (i % 4000) as u16,
            mac: EthernetAddress([0x52, 0x54, b[0], b[1], b[2], b[3]]),
            pppoe_session: 0,
        },
        ipv4: Ipv4Addr::from_bits(SUB_BASE + i),
        gate_open: true,
        qos: SessionQos {
            dl_rate_bps,
            ul_rate_bps: None,
        },
        mtu: 0,
        mss_clamp: 0,
        acl: vbng_dataplane::acl::NO_ACL,
        counters: UsageCounters::default(),
        ipv6: SessionIpv6::NONE,
    }
}

/// The frame the next hop sends to session `i`'s address (60 bytes, IPv4 total length
/// [`super::IP_BYTES`], DSCP 0).
pub fn downstream_frame(i: u32) -> Vec<u8> {
    let l2 = L2Header {
        dst: CORE_MAC,
        src: NH_MAC,
        svlan: None,
        cvlan: None,
        ethertype: EtherType::Ipv4,
    };
    let dst = Ipv4Addr::from_bits(SUB_BASE + i);
    build_ipv4_udp(&l2, INTERNET, dst, 443, 40_000, 64, &PAYLOAD)
}

/// The pipeline configuration of the benchmark: one access port, one core port.
pub fn pipeline_config() -> PipelineConfig {
    PipelineConfig {
        access_ports: vec![ACCESS],
        core_port: CORE,
        core_mac: CORE_MAC,
        core_ipv4: Ipv4Addr::new(198, 51, 100, 2),
        core_prefix_len: 24,
        next_hop: Ipv4Addr::new(198, 51, 100, 1),
        gateway_mac: GW_MAC,
        redirect_pps: 1000,
        arp_retry_ns: 1_000_000_000,
    }
}

/// Stands in for a port's transmit: copies each frame into a ring of [`BURST`] slots, as an
/// AF_PACKET or DPDK transmit copies it into the ring.
#[derive(Debug)]
pub struct TxSink {
    ring: Vec<[u8; 128]>,
    at: usize,
    /// Frames and bytes "sent".
    pub frames: u64,
    /// Bytes "sent".
    pub bytes: u64,
}

impl Default for TxSink {
    fn default() -> Self {
        TxSink {
            ring: vec![[0; 128]; BURST],
            at: 0,
            frames: 0,
            bytes: 0,
        }
    }
}

impl TxSink {
    /// Takes one frame (the first 128 bytes are copied); always accepts.
    #[inline(always)]
    pub fn send(&mut self, _port: PortId, data: &[u8]) -> bool {
        let n = data.len().min(128);
        self.ring[self.at][..n].copy_from_slice(&data[..n]);
        self.at = (self.at + 1) % BURST;
        self.frames += 1;
        self.bytes += data.len() as u64;
        true
    }
}

/// How the benchmark pipeline treats its sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `Pipeline::new`: no QoS at all (the baseline).
    Plain,
    /// `Pipeline::with_qos`, but no session has a rate (what QoS costs unshaped sessions).
    QosUnshaped,
    /// `Pipeline::with_qos`, every session shaped to [`shaped_rate_bps`]: offered load above
    /// the rate, every subscriber permanently backlogged (the worst case).
    Shaped,
    /// `Pipeline::with_qos`, every session shaped to [`under_rate_bps`]: offered load below
    /// the rate, so frames pass straight through the shaper (its conformant fast path:
    /// `process_burst` forwards them at once). The steady state of active subscribers.
    ShapedUnderRate,
}

/// The downstream pipeline workload (see the module docs).
#[derive(Debug)]
pub struct PipelineBench {
    pipeline: Pipeline,
    mode: Mode,
    templates: Vec<[u8; FRAME_BYTES]>,
    frames: Vec<Frame>,
    verdicts: Vec<Verdict>,
    tx: TxSink,
    spread: Spread,
    now_ns: u64,
    step_ns: u64,
    tally: Tally,
}

impl PipelineBench {
    /// N sessions in `mode`.
    pub fn new(subscribers: u32, mode: Mode) -> PipelineBench {
        let n = subscribers.max(1);
        let mut pipeline = match mode {
            Mode::Plain => Pipeline::new(pipeline_config(), 0x5eed),
            Mode::QosUnshaped | Mode::Shaped | Mode::ShapedUnderRate => {
                Pipeline::with_qos(pipeline_config(), 0x5eed, bench_config(n))
            }
        };
        pipeline.set_next_hop_mac(Some(NH_MAC));
        let rate = match mode {
            Mode::Plain | Mode::QosUnshaped => None,
            Mode::Shaped => Some(shaped_rate_bps(n)),
            Mode::ShapedUnderRate => Some(under_rate_bps(n)),
        };
        for i in 0..n {
            if let Err(e) = pipeline.try_upsert(session(i, rate)) {
                panic!("benchmark session {i} refused: {e}");
            }
        }
        let templates = (0..n)
            .map(|i| {
                let f = downstream_frame(i);
                let mut t = [0u8; FRAME_BYTES];
                t.copy_from_slice(&f[..FRAME_BYTES]);
                t
            })
            .collect();
        PipelineBench {
            pipeline,
            mode,
            templates,
            frames: (0..BURST).map(|_| Frame::new()).collect(),
            verdicts: vec![Verdict::ToControlPlane; BURST],
            tx: TxSink::default(),
            spread: Spread::new(n),
            now_ns: 0,
            step_ns: SIM_NS_PER_BURST,
            tally: Tally::default(),
        }
    }

    /// Shaped (backlogged): brings every subscriber to the steady state with the clock stopped (initial
    /// bucket burst spent, queue full). Otherwise nothing.
    pub fn prime(&mut self) {
        if self.mode != Mode::Shaped {
            return;
        }
        let n = self.spread.n;
        self.step_ns = 0;
        self.run(u64::from(n) * priming_packets_per_subscriber(shaped_rate_bps(n)));
        self.step_ns = SIM_NS_PER_BURST;
    }

    /// Packets offered, sent and dropped so far.
    pub fn tally(&self) -> Tally {
        self.tally
    }

    /// The pipeline (for checks).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// How QoS is exercised, for the figure's params.
    pub fn method(&self) -> &'static str {
        match self.mode {
            Mode::Plain => "Pipeline::new, process_burst",
            Mode::QosUnshaped => "Pipeline::with_qos, no session rate, process_burst",
            Mode::Shaped | Mode::ShapedUnderRate => {
                "Pipeline::with_qos, process_burst (Verdict::Forward or Queued) + drain_shaped(budget 32)"
            }
        }
    }
}

impl Workload for PipelineBench {
    fn run(&mut self, packets: u64) -> u64 {
        let mut left = packets;
        let (mut sent, mut dropped) = (0u64, 0u64);
        let shaped = matches!(self.mode, Mode::Shaped | Mode::ShapedUnderRate);
        while left > 0 {
            let k = left.min(BURST as u64) as usize;
            for f in &mut self.frames[..k] {
                let sub = self.spread.next_index() as usize;
                // Cannot fail: 60 bytes fit any frame.
                let _ = f.set_data(&self.templates[sub]);
                f.port = CORE;
            }
            self.pipeline.process_burst(
                self.now_ns,
                &mut self.frames[..k],
                &mut self.verdicts[..k],
            );
            for (f, v) in self.frames[..k].iter().zip(&self.verdicts[..k]) {
                match *v {
                    Verdict::Forward(port) => {
                        self.tx.send(port, f.data());
                        sent += 1;
                    }
                    Verdict::Queued => {}
                    Verdict::Drop(_) | Verdict::ToControlPlane | Verdict::Handoff(_) => {
                        dropped += 1
                    }
                }
            }
            if shaped {
                let tx = &mut self.tx;
                sent += self
                    .pipeline
                    .drain_shaped(self.now_ns, BURST, &mut |port, d| tx.send(port, d))
                    as u64;
            }
            self.now_ns += self.step_ns;
            left -= k as u64;
        }
        self.tally.offered += packets;
        self.tally.sent += sent;
        self.tally.dropped += dropped;
        self.tx.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qos::{IP_BYTES, OVERLOAD, QUEUE_LIMIT};

    #[test]
    fn baseline_forwards_everything() {
        let mut b = PipelineBench::new(100, Mode::Plain);
        b.run(1000);
        assert_eq!(b.tally().sent, 1000);
        assert_eq!(b.pipeline().counters().dl_forwarded, 1000);
        // Every session got 10 frames; each left with the QinQ header pushed (68 bytes).
        assert_eq!(b.tx.bytes, 1000 * 68);
        let s = b.pipeline().sessions().get(1).unwrap();
        assert_eq!(s.counters.dl_packets, 10);
        assert_eq!(s.counters.dl_bytes, 10 * u64::from(IP_BYTES));
    }

    #[test]
    fn unshaped_qos_pipeline_forwards_everything() {
        let mut b = PipelineBench::new(100, Mode::QosUnshaped);
        b.run(1000);
        assert_eq!(b.tally().sent, 1000);
        assert_eq!(b.pipeline().shaped_backlog(), 0);
    }

    #[test]
    fn shaped_pipeline_is_backlogged_at_the_rate() {
        let n = 64;
        let mut b = PipelineBench::new(n, Mode::Shaped);
        b.prime();
        assert_eq!(b.pipeline().shaped_backlog(), n * QUEUE_LIMIT);
        let before = b.tally();
        b.run(64_000);
        let t = b.tally().since(&before);
        let expect = t.offered as f64 / OVERLOAD;
        assert!(
            (t.sent as f64 - expect).abs() < 0.01 * expect,
            "{t:?} expected {expect}"
        );
        // Every session is still active with a standing queue.
        let mut shaped = 0;
        for st in b.pipeline().qos_stats() {
            let depth: u32 = st.classes.unwrap().iter().map(|c| c.depth_packets).sum();
            assert!(depth >= QUEUE_LIMIT / 2, "session {}: depth {depth}", st.id);
            shaped += 1;
        }
        assert_eq!(shaped, n);
        assert!(t.dropped > 0, "{t:?}");
    }

    #[test]
    fn under_rate_pipeline_passes_frames_straight_through() {
        let n = 64;
        let mut b = PipelineBench::new(n, Mode::ShapedUnderRate);
        b.prime();
        b.run(64_000);
        let t = b.tally();
        // Every frame left at once through the shaper's fast path; the pool was not used.
        assert_eq!((t.sent, t.dropped), (t.offered, 0), "{t:?}");
        assert_eq!(
            b.pipeline().qos_pool().map(|(free, all)| all - free),
            Some(0)
        );
        assert_eq!(b.pipeline().shaped_backlog(), 0);
        let mut shaped = 0;
        for st in b.pipeline().qos_stats() {
            let c = st.classes.unwrap();
            let conformed: u64 = c.iter().map(|k| k.conformed_packets).sum();
            let exceeded: u64 = c.iter().map(|k| k.exceeded_packets).sum();
            assert_eq!((conformed, exceeded), (1000, 0), "session {}", st.id);
            shaped += 1;
        }
        assert_eq!(shaped, n);
    }
}
