//! The pipeline each worker runs: configuration, sessions, ACL, next hop.
//!
//! Depends only on `scheme` (the criterion bench includes both files).

use std::sync::Arc;

use vbng_dataplane::acl::{AclSet, NO_ACL};
use vbng_dataplane::pipeline::{Pipeline, PipelineConfig, SchedulerConfig};
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
    /// The same plus the 100-rule ACL on every session, both directions.
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

/// Worker `worker`'s pipeline: the sessions `i % workers == worker`, the next hop's MAC
/// set statically (no ARP exchange needed before forwarding), and for the full pipeline
/// the 100-rule ACL referenced by every session.
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
    p.set_next_hop_mac(Some(NEXT_HOP_MAC));
    let acl = match opts.kind {
        PipelineKind::Ipoe => NO_ACL,
        PipelineKind::Full => {
            let set = AclSet::build(None, &[lab_acl()], None)
                .map_err(|e| format!("the lab ACL does not compile: {e}"))?;
            let id = set.id(LAB_ACL_NAME).unwrap_or(NO_ACL);
            p.set_acls(Arc::new(set));
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
