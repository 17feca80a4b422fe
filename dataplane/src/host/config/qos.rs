//! The `[qos]` section: per-subscriber QoS sizing of the user plane.

use serde::Deserialize;

use super::{ConfigError, Resolver};
use crate::pipeline::SchedulerConfig;

/// `[qos]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileQos {
    /// Apply session rates (QER MBR). Default true.
    enabled: Option<bool>,
    /// Sessions with a downlink rate shaped at once. Default 4096.
    max_shaped_sessions: Option<u32>,
    /// Frame buffers of the shaper (2176 bytes each). Default 16384 (34 MiB).
    frame_pool: Option<u32>,
    /// Packets per class queue per session. Default [64, 256, 256, 256].
    class_queue_limit: Option<[u32; 4]>,
    /// DRR quanta in bytes of classes 0..3 (class 0 unused). Default [0, 6056, 3028, 1514].
    drr_quantum: Option<[u32; 4]>,
}

/// Per-subscriber QoS settings (`[qos]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QosConfig {
    /// Apply session rates: downstream shaping, upstream policing. When false, rates are
    /// ignored and every session forwards unlimited. Default true.
    pub enabled: bool,
    /// Sessions with a downlink rate that can be shaped at once; further ones forward
    /// unshaped and are counted. Default 4096.
    pub max_shaped_sessions: u32,
    /// Frame buffers of the shaper, shared by all shaped sessions, allocated at start
    /// ([`crate::packet::BUFFER_LEN`] = 2176 bytes each). Default 16384 = 34 MiB.
    pub frame_pool: u32,
    /// Packets per class queue per session (class 0 = expedited ... 3 = best effort); a
    /// full queue drops. Default [64, 256, 256, 256].
    pub class_queue_limit: [u32; 4],
    /// DRR quanta in bytes of classes 1..3 (class 0 is strict priority, its value unused).
    /// Default [0, 6056, 3028, 1514]: weights 4:2:1 in full-size frames.
    pub drr_quantum: [u32; 4],
}

impl Default for QosConfig {
    fn default() -> Self {
        QosConfig {
            enabled: true,
            max_shaped_sessions: 4096,
            frame_pool: 16384,
            class_queue_limit: [64, 256, 256, 256],
            drr_quantum: [0, 4 * 1514, 2 * 1514, 1514],
        }
    }
}

impl QosConfig {
    /// The scheduler these settings describe, None when QoS is disabled. Pure.
    pub fn scheduler_config(&self) -> Option<SchedulerConfig> {
        self.enabled.then_some(SchedulerConfig {
            max_subscribers: self.max_shaped_sessions,
            max_packets: self.frame_pool,
            class_queue_limit: self.class_queue_limit,
            drr_quantum: self.drr_quantum,
            port_rate_bps: None,
        })
    }
}

/// Resolves and checks `[qos]`, naming the key of a bad value.
pub(super) fn resolve(r: &Resolver<'_>, q: &FileQos) -> Result<QosConfig, ConfigError> {
    let dq = QosConfig::default();
    let frame_pool = r.num("qos.frame_pool", q.frame_pool, dq.frame_pool, 64, 1 << 20)?;
    let class_queue_limit = q.class_queue_limit.unwrap_or(dq.class_queue_limit);
    if let Some(bad) = class_queue_limit
        .iter()
        .find(|&&v| v == 0 || v > frame_pool)
    {
        return Err(ConfigError {
            origin: r.file_origin("qos.class_queue_limit"),
            message: format!(
                "expected 4 packet counts between 1 and qos.frame_pool ({frame_pool}) like [64, 256, 256, 256], found {bad}"
            ),
        });
    }
    let drr_quantum = q.drr_quantum.unwrap_or(dq.drr_quantum);
    if let Some(bad) = drr_quantum[1..]
        .iter()
        .find(|&&v| !(64..=1 << 20).contains(&v))
    {
        return Err(ConfigError {
            origin: r.file_origin("qos.drr_quantum"),
            message: format!(
                "expected 4 byte counts, those of classes 1..3 between 64 and 1048576, like [0, 6056, 3028, 1514], found {bad}"
            ),
        });
    }
    Ok(QosConfig {
        enabled: q.enabled.unwrap_or(dq.enabled),
        max_shaped_sessions: r.num(
            "qos.max_shaped_sessions",
            q.max_shaped_sessions,
            dq.max_shaped_sessions,
            1,
            1 << 20,
        )?,
        frame_pool,
        class_queue_limit,
        drr_quantum,
    })
}
