//! The pipeline each worker runs: configuration, sessions, ACL, next hop.
//!
//! Depends only on `scheme` (the criterion bench includes both files).

use std::sync::Arc;

use std::net::Ipv4Addr;

use vbng_dataplane::acl::{AclSet, NO_ACL};
use vbng_dataplane::isa::Isa;
use vbng_dataplane::nat::{Ipv4Prefix, Nat, NatConfig, NatProtocol};
use vbng_dataplane::packet::Frame;
use vbng_dataplane::pipeline::{
    BURST, DropReason, Pipeline, PipelineConfig, SchedulerConfig, StaticRoute, Verdict,
};
use vbng_dataplane::session::SessionQos;

use super::scheme::{
    CORE_IPV4, CORE_MAC, GATEWAY_MAC, LAB_ACL_NAME, NEXT_HOP_IPV4, NEXT_HOP_MAC, Scheme, lab_acl,
};
use vbng_dataplane::packet::PortId;

/// The access port's id in every pipeline.
pub const ACCESS_PORT: PortId = 0;
/// The core port's id in every pipeline.
pub const CORE_PORT: PortId = 1;

/// Seed of every worker's session table hash (fixed: runs are comparable).
pub const HASH_SEED: u64 = 0x5eed_fa57;

/// Per-session rate with `--qos`, both directions: far above what one session receives
/// here, so the shaper passes every frame through its conformant fast path and the policer
/// colours everything green (the cost of QoS, not its limiting).
pub const QOS_RATE_BPS: u64 = 1_000_000_000;

/// What the pipeline does besides forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineKind {
    /// Classify, session lookup, anti-spoof, gate, TTL, L2 rewrite (and PPPoE
    /// decapsulation/encapsulation for PPPoE subscribers). No ACL.
    Ipoe,
    /// The same plus the 100-rule ACL on every session, both directions, NAT44 of every
    /// session and a route table looked up for every upstream packet.
    Full,
}

impl PipelineKind {
    /// `ipoe` or `full`.
    pub fn name(self) -> &'static str {
        match self {
            PipelineKind::Ipoe => "ipoe",
            PipelineKind::Full => "full",
        }
    }
}

/// Everything needed to build a worker's pipeline (the same in every process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineOptions {
    /// Stages.
    pub kind: PipelineKind,
    /// Traffic and sessions.
    pub scheme: Scheme,
    /// Build with QoS (`Pipeline::with_qos`) and give every session [`QOS_RATE_BPS`].
    pub qos: bool,
    /// The instruction set the pipeline's bursts run on.
    pub isa: Isa,
}

/// The pipeline configuration of the lab: access port 0, core port 1, the scheme's MACs and
/// core addresses.
pub fn pipeline_config() -> PipelineConfig {
    PipelineConfig {
        access_ports: vec![ACCESS_PORT],
        core_port: CORE_PORT,
        core_mac: CORE_MAC,
        core_ipv4: CORE_IPV4,
        core_prefix_len: 24,
        next_hop: NEXT_HOP_IPV4,
        gateway_mac: GATEWAY_MAC,
        redirect_pps: 1000,
        arp_retry_ns: 1_000_000_000,
    }
}

/// The full pipeline's NAT pool: 4096 outside addresses (RFC 2544's benchmarking range),
/// room for a million subscribers at one block each.
pub const NAT_POOL: Ipv4Prefix = Ipv4Prefix::new(Ipv4Addr::new(198, 18, 0, 0), 20);
/// Ports per NAT block in the full pipeline: 1008 blocks per address, one per subscriber.
pub const NAT_BLOCK_SIZE: u16 = 64;
/// Seed of every worker's NAT hashes (fixed: a priming run and the measured run agree).
pub const NAT_SEED: u64 = 0x0a7_5eed;

/// The full pipeline's route table, all through the next hop: more specific routes over
/// the servers' /24 (so a lookup walks the 16-8-8 table's groups) and the default.
pub fn full_routes() -> Vec<StaticRoute> {
    let via = |prefix: Ipv4Addr, len: u8| StaticRoute {
        prefix,
        len,
        next_hop: NEXT_HOP_IPV4,
    };
    let mut routes = vec![
        via(Ipv4Addr::UNSPECIFIED, 0),
        via(Ipv4Addr::new(203, 0, 113, 0), 24),
        via(Ipv4Addr::new(203, 0, 113, 128), 25),
        via(Ipv4Addr::new(198, 51, 100, 0), 24),
    ];
    // Sixty /27s and /28s elsewhere, as a small operator's table has.
    for i in 0..60u8 {
        routes.push(via(Ipv4Addr::new(10, i, 16 * (i % 16), 0), 27 + i % 2));
    }
    routes
}

/// Worker `worker`'s pipeline: the sessions `i % workers == worker`, the next hop's MAC
/// set statically (no ARP exchange needed before forwarding), and for the full pipeline
/// the 100-rule ACL referenced by every session, NAT44 over [`NAT_POOL`] for every session
/// and [`full_routes`].
pub fn build_pipeline(
    opts: &PipelineOptions,
    worker: u32,
    workers: u32,
) -> Result<Pipeline, String> {
    let mine = opts
        .scheme
        .sessions
        .saturating_sub(worker)
        .div_ceil(workers.max(1));
    let mut p = if opts.qos {
        let cfg = SchedulerConfig {
            max_subscribers: mine.max(1),
            ..SchedulerConfig::default()
        };
        Pipeline::with_qos(pipeline_config(), HASH_SEED, cfg)
    } else {
        Pipeline::new(pipeline_config(), HASH_SEED)
    };
    p.set_isa(opts.isa);
    p.set_next_hop_mac(Some(NEXT_HOP_MAC));
    let acl = match opts.kind {
        PipelineKind::Ipoe => NO_ACL,
        PipelineKind::Full => {
            let set = AclSet::build(None, &[lab_acl()], None)
                .map_err(|e| format!("the lab ACL does not compile: {e}"))?;
            let id = set.id(LAB_ACL_NAME).unwrap_or(NO_ACL);
            p.set_acls(Arc::new(set));
            p.set_routes(&full_routes())
                .map_err(|e| format!("the route table: {e}"))?;
            let nat = NatConfig {
                block_size: NAT_BLOCK_SIZE,
                blocks_per_subscriber: 1,
                max_subscribers: mine.max(1),
                max_mappings: mine.max(1),
                ..NatConfig::with_pool(vec![NAT_POOL])
            };
            let nat = Nat::new(&nat, NAT_SEED).map_err(|e| format!("the NAT: {e}"))?;
            let inside = Ipv4Prefix::new(Ipv4Addr::new(100, 64, 0, 0), 10);
            p.set_nat(nat, vec![inside]);
            id
        }
    };
    for i in opts.scheme.worker_sessions(worker, workers) {
        let mut s = opts.scheme.session(i, acl);
        if opts.qos {
            s.qos = SessionQos {
                dl_rate_bps: Some(QOS_RATE_BPS),
                ul_rate_bps: Some(QOS_RATE_BPS),
            };
        }
        p.try_upsert(s)
            .map_err(|e| format!("session {} refused: {e}", i + 1))?;
    }
    Ok(p)
}

/// Worker `worker`'s pipeline after `upstream` (subscriber, frame) went through it once,
/// in order, and the outside endpoint its NAT gave each frame (`None` untranslated). The
/// NAT is deterministic, so a pipeline built the same way that first sees the same
/// upstream frames in the same order (a replay of the same pcap) holds the same mappings:
/// downstream frames can be addressed to them before the run.
pub fn primed_pipeline(
    opts: &PipelineOptions,
    worker: u32,
    workers: u32,
    upstream: &[(u32, Vec<u8>)],
) -> Result<(Pipeline, Vec<Option<Endpoint>>), String> {
    let mut p = build_pipeline(opts, worker, workers)?;
    let mut frames: Vec<Frame> = (0..BURST).map(|_| Frame::new()).collect();
    let mut verdicts = [Verdict::Drop(DropReason::Malformed); BURST];
    for chunk in upstream.chunks(BURST) {
        for (f, (_, bytes)) in frames.iter_mut().zip(chunk) {
            f.set_data(bytes).map_err(|e| format!("frame: {e}"))?;
            f.port = ACCESS_PORT;
        }
        p.process_burst(0, &mut frames[..chunk.len()], &mut verdicts[..chunk.len()]);
        // As vbng-up's workers hand the port-block log to their logger: a full log queue
        // would make the NAT refuse new blocks.
        if let Some(nat) = p.nat_mut() {
            nat.drain_events(|_| {});
        }
    }
    let endpoints = match p.nat() {
        None => vec![None; upstream.len()],
        Some(nat) => upstream
            .iter()
            .map(|&(i, _)| {
                let inside = Scheme::subscriber_ipv4(i);
                nat.lookup_outbound(inside, NatProtocol::Udp, Scheme::client_port(i))
                    .map(|m| (m.outside, m.outside_port))
            })
            .collect(),
    };
    Ok((p, endpoints))
}

/// An outside (address, port) at the NAT.
pub type Endpoint = (Ipv4Addr, u16);

/// A worker's frames and the pipeline that saw its upstream frames once.
#[derive(Debug)]
pub struct WorkerFrames {
    /// Upstream frames, in pcap order.
    pub up: Vec<Vec<u8>>,
    /// Downstream frames, addressed as the pipeline expects them.
    pub down: Vec<Vec<u8>>,
    /// The primed pipeline.
    pub pipeline: Pipeline,
}

/// Worker `worker`'s frames for the (subscriber, packet) pairs `pkts`: upstream, and
/// downstream addressed as the pipeline expects them (to the NAT's outside endpoints in
/// the full pipeline); with the pipeline that saw the upstream frames once.
pub fn worker_frames(
    opts: &PipelineOptions,
    worker: u32,
    workers: u32,
    pkts: &[(u32, u32)],
) -> Result<WorkerFrames, String> {
    let s = &opts.scheme;
    let up: Vec<(u32, Vec<u8>)> = pkts.iter().map(|&(i, k)| (i, s.upstream(i, k))).collect();
    let (pipeline, endpoints) = primed_pipeline(opts, worker, workers, &up)?;
    let down = pkts
        .iter()
        .zip(&endpoints)
        .map(|(&(i, k), &to)| {
            let mut v = Vec::with_capacity(s.wire_size(k));
            s.write_downstream_to(i, k, to, &mut v);
            v
        })
        .collect();
    Ok(WorkerFrames {
        up: up.into_iter().map(|(_, f)| f).collect(),
        down,
        pipeline,
    })
}
