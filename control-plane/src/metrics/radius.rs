//! Export of the RADIUS counters (client, authorization, spool, CoA
//! server) into `vbng_cp_radius_events_total{kind,event}` once a second.
//!
//! The counters live in `vbng-aaa` as plain atomics; this task adds their
//! growth since the last pass to the Prometheus counters.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;
use vbng_aaa::client::StatsSnapshot;

use super::{Metrics, RadiusLabels};
use crate::service::RadiusParts;

/// Every (kind, event, value) of the RADIUS parts now.
fn sample(parts: &RadiusParts) -> Vec<(&'static str, &'static str, u64)> {
    let mut out = Vec::new();
    let client = |out: &mut Vec<_>, kind, s: StatsSnapshot| {
        out.extend([
            (kind, "requests", s.requests),
            (kind, "responses", s.responses),
            (kind, "retransmissions", s.retransmissions),
            (kind, "server_timeouts", s.timeouts),
            (kind, "failovers", s.failovers),
            (
                kind,
                "dropped_bad_authenticator",
                s.dropped_bad_authenticator,
            ),
            (
                kind,
                "dropped_bad_message_authenticator",
                s.dropped_bad_message_authenticator,
            ),
            (kind, "dropped_unmatched", s.dropped_unmatched),
            (kind, "dropped_malformed", s.dropped_malformed),
            (kind, "status_server_probes", s.status_server_probes),
            (kind, "server_revivals", s.revivals),
        ]);
    };
    client(&mut out, "auth", parts.auth.client().stats());
    client(&mut out, "acct", parts.acct_client.stats());
    let a = parts.auth.stats();
    let r = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    out.extend([
        ("auth", "accepts", r(&a.accepts)),
        ("auth", "rejects", r(&a.rejects)),
        ("auth", "failures", r(&a.failures)),
        ("auth", "backlog_drops", r(&a.backlog_drops)),
        ("auth", "dhcp_replays", r(&a.replays)),
    ]);
    let sp = parts.spool.stats();
    out.extend([
        ("acct", "records_spooled", sp.pushed),
        ("acct", "records_delivered", sp.delivered),
        ("acct", "send_failures", sp.send_failures),
    ]);
    if let Some((_, coa)) = &parts.coa {
        let c = coa.snapshot();
        out.extend([
            ("coa", "requests", c.requests),
            ("coa", "coa_acks", c.coa_acks),
            ("coa", "coa_naks", c.coa_naks),
            ("coa", "disconnect_acks", c.disconnect_acks),
            ("coa", "disconnect_naks", c.disconnect_naks),
            ("coa", "dropped_unknown_client", c.dropped_unknown_client),
            (
                "coa",
                "dropped_bad_authenticator",
                c.dropped_bad_authenticator,
            ),
            (
                "coa",
                "dropped_bad_message_authenticator",
                c.dropped_bad_message_authenticator,
            ),
            ("coa", "dropped_malformed", c.dropped_malformed),
            (
                "coa",
                "dropped_unsupported_code",
                c.dropped_unsupported_code,
            ),
            ("coa", "duplicates_from_cache", c.duplicates_from_cache),
            ("coa", "duplicates_in_progress", c.duplicates_in_progress),
        ]);
    }
    out
}

/// Copy the growth of every RADIUS counter into `metrics` each second
/// until `shutdown`.
pub async fn export(parts: RadiusParts, metrics: Metrics, mut shutdown: watch::Receiver<bool>) {
    let mut last: HashMap<(&'static str, &'static str), u64> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => break,
        }
        for (kind, event, value) in sample(&parts) {
            let prev = last.insert((kind, event), value).unwrap_or(0);
            let counter = metrics
                .radius_events
                .get_or_create(&RadiusLabels { kind, event });
            if value > prev {
                counter.inc_by(value - prev);
            }
        }
        metrics
            .accounting_spool_pending
            .set(i64::try_from(parts.spool.pending()).unwrap_or(i64::MAX));
    }
}
