//! Prometheus metrics of `vbng-cp` (text exposition on `GET /metrics`).
//!
//! One documented name per counter; all names start with `vbng_cp_`.
//! Counters get the `_total` suffix from the encoder.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Label set `{msg_type, direction}` of DHCP message counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DhcpLabels {
    /// DHCP message type, lower case (`discover`, `offer`, ...).
    pub msg_type: String,
    /// `rx` (from clients) or `tx` (to clients).
    pub direction: &'static str,
}

/// Label set `{msg_type, user_plane}` of PFCP counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PfcpLabels {
    /// PFCP message type, snake case (`heartbeat_request`, ...).
    pub msg_type: String,
    /// Configured user plane name.
    pub user_plane: String,
}

/// Label set `{user_plane}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpLabels {
    /// Configured user plane name.
    pub user_plane: String,
}

/// Label set `{reason}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Snake-case reason.
    pub reason: &'static str,
}

/// Label set `{event}` of lease event counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// `bound`, `renewed`, `released`, `declined`, `expired`.
    pub event: &'static str,
}

/// Label set `{direction}` of usage counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    /// `uplink` or `downlink`.
    pub direction: &'static str,
}

/// Label set `{result}` of session modification counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok`, `refused` or `timeout`.
    pub result: &'static str,
}

/// Label set `{kind, event}` of RADIUS counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RadiusLabels {
    /// `auth` (authorization and its client), `acct` (accounting client
    /// and spool) or `coa` (the CoA/Disconnect server).
    pub kind: &'static str,
    /// Snake-case event name.
    pub event: &'static str,
}

/// Every metric of the service. Cheap to share: each metric is an `Arc`.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    /// `vbng_cp_sessions`: active subscriber sessions.
    pub sessions: Gauge,
    /// `vbng_cp_dhcp_messages_total{msg_type,direction}`.
    pub dhcp_messages: Family<DhcpLabels, Counter>,
    /// `vbng_cp_dhcp_errors_total{reason}`: undecodable or dropped DHCP messages.
    pub dhcp_errors: Family<ReasonLabels, Counter>,
    /// `vbng_cp_lease_events_total{event}`.
    pub lease_events: Family<EventLabels, Counter>,
    /// `vbng_cp_pfcp_requests_total{msg_type,user_plane}`: requests sent (first transmissions).
    pub pfcp_requests: Family<PfcpLabels, Counter>,
    /// `vbng_cp_pfcp_responses_total{msg_type,user_plane}`: responses received and matched.
    pub pfcp_responses: Family<PfcpLabels, Counter>,
    /// `vbng_cp_pfcp_retransmissions_total{msg_type,user_plane}`.
    pub pfcp_retransmissions: Family<PfcpLabels, Counter>,
    /// `vbng_cp_pfcp_timeouts_total{msg_type,user_plane}`: requests unanswered after N1 retransmissions.
    pub pfcp_timeouts: Family<PfcpLabels, Counter>,
    /// `vbng_cp_pfcp_peer_requests_total{msg_type,user_plane}`: requests received from user planes.
    pub pfcp_peer_requests: Family<PfcpLabels, Counter>,
    /// `vbng_cp_pfcp_errors_total{reason}`: undecodable or unexpected PFCP datagrams.
    pub pfcp_errors: Family<ReasonLabels, Counter>,
    /// `vbng_cp_user_plane_up{user_plane}`: 1 when associated, else 0.
    pub user_plane_up: Family<UpLabels, Gauge>,
    /// `vbng_cp_user_plane_restarts_total{user_plane}`: recovery time stamp changes seen.
    pub user_plane_restarts: Family<UpLabels, Counter>,
    /// `vbng_cp_redirect_frames_in_total`: GTP-U datagrams received.
    pub redirect_in: Counter,
    /// `vbng_cp_redirect_frames_out_total`: GTP-U datagrams sent (a DHCPACK
    /// withheld because its session failed to establish is not counted).
    pub redirect_out: Counter,
    /// `vbng_cp_redirect_dropped_total{reason}`.
    pub redirect_dropped: Family<ReasonLabels, Counter>,
    /// `vbng_cp_redirect_rate_limited_total`: frames dropped by the per-MAC limiter.
    pub redirect_rate_limited: Counter,
    /// `vbng_cp_arp_replies_total`: ARP replies for pool gateways.
    pub arp_replies: Counter,
    /// `vbng_cp_session_establish_failures_total`: leases removed because the UP refused or timed out.
    pub session_establish_failures: Counter,
    /// `vbng_cp_session_deletions_total`: sessions deleted.
    pub session_deletions: Counter,
    /// `vbng_cp_session_modifications_total{result}`: live session changes
    /// (rate, ACL and IPv6 prefix changes) sent to user planes, by outcome: `ok` (accepted),
    /// `refused` (a rejection cause or an unexpected answer), `timeout` (no
    /// answer after N1 retransmissions, or the user plane not associated).
    pub session_modifications: Family<ResultLabels, Counter>,
    /// `vbng_cp_usage_bytes_total{direction}`: bytes of deleted sessions (final usage reports).
    pub usage_bytes: Family<DirectionLabels, Counter>,
    /// `vbng_cp_usage_packets_total{direction}`: packets of deleted sessions.
    pub usage_packets: Family<DirectionLabels, Counter>,
    /// `vbng_cp_radius_events_total{kind,event}`: RADIUS requests, answers,
    /// retransmissions, failovers and dropped (forged, unsigned, unknown)
    /// packets, per part ([`radius`]).
    pub radius_events: Family<RadiusLabels, Counter>,
    /// `vbng_cp_accounting_spool_pending`: accounting records on disk not
    /// yet acknowledged by a RADIUS server.
    pub accounting_spool_pending: Gauge,
    /// `vbng_cp_pppoe_dropped_total{reason}`: PPPoE discovery and session
    /// frames dropped (malformed, rate_limited, bad_cookie, ...).
    pub pppoe_dropped: Family<ReasonLabels, Counter>,
    /// `vbng_cp_pppoe_frames_total`: PPPoE frames handed to the PPPoE task.
    pub pppoe_frames: Counter,
}

impl Metrics {
    /// A registry exposing every metric.
    pub fn registry(&self) -> Registry {
        let mut r = Registry::default();
        r.register(
            "vbng_cp_radius_events",
            "RADIUS events by part (auth, acct, coa) and event",
            self.radius_events.clone(),
        );
        r.register(
            "vbng_cp_pppoe_dropped",
            "PPPoE frames dropped, by reason",
            self.pppoe_dropped.clone(),
        );
        r.register(
            "vbng_cp_pppoe_frames",
            "PPPoE frames received from user planes",
            self.pppoe_frames.clone(),
        );
        r.register(
            "vbng_cp_accounting_spool_pending",
            "Accounting records spooled and not yet acknowledged",
            self.accounting_spool_pending.clone(),
        );
        r.register(
            "vbng_cp_sessions",
            "Active subscriber sessions",
            self.sessions.clone(),
        );
        r.register(
            "vbng_cp_dhcp_messages",
            "DHCP messages by type and direction",
            self.dhcp_messages.clone(),
        );
        r.register(
            "vbng_cp_dhcp_errors",
            "DHCP messages dropped, by reason",
            self.dhcp_errors.clone(),
        );
        r.register(
            "vbng_cp_lease_events",
            "DHCP lease events",
            self.lease_events.clone(),
        );
        r.register(
            "vbng_cp_pfcp_requests",
            "PFCP requests sent to user planes",
            self.pfcp_requests.clone(),
        );
        r.register(
            "vbng_cp_pfcp_responses",
            "PFCP responses received from user planes",
            self.pfcp_responses.clone(),
        );
        r.register(
            "vbng_cp_pfcp_retransmissions",
            "PFCP request retransmissions (T1 expiry)",
            self.pfcp_retransmissions.clone(),
        );
        r.register(
            "vbng_cp_pfcp_timeouts",
            "PFCP requests unanswered after N1 retransmissions",
            self.pfcp_timeouts.clone(),
        );
        r.register(
            "vbng_cp_pfcp_peer_requests",
            "PFCP requests received from user planes",
            self.pfcp_peer_requests.clone(),
        );
        r.register(
            "vbng_cp_pfcp_errors",
            "PFCP datagrams dropped, by reason",
            self.pfcp_errors.clone(),
        );
        r.register(
            "vbng_cp_user_plane_up",
            "User plane association state (1 up, 0 down)",
            self.user_plane_up.clone(),
        );
        r.register(
            "vbng_cp_user_plane_restarts",
            "User plane restarts seen (recovery time stamp changed)",
            self.user_plane_restarts.clone(),
        );
        r.register(
            "vbng_cp_redirect_frames_in",
            "GTP-U redirect datagrams received",
            self.redirect_in.clone(),
        );
        r.register(
            "vbng_cp_redirect_frames_out",
            "GTP-U redirect datagrams sent",
            self.redirect_out.clone(),
        );
        r.register(
            "vbng_cp_redirect_dropped",
            "Redirected frames dropped, by reason",
            self.redirect_dropped.clone(),
        );
        r.register(
            "vbng_cp_redirect_rate_limited",
            "Redirected frames dropped by the per-MAC rate limiter",
            self.redirect_rate_limited.clone(),
        );
        r.register(
            "vbng_cp_arp_replies",
            "ARP replies for pool gateways",
            self.arp_replies.clone(),
        );
        r.register(
            "vbng_cp_session_establish_failures",
            "Sessions not established (UP refused or timed out); lease removed",
            self.session_establish_failures.clone(),
        );
        r.register(
            "vbng_cp_session_deletions",
            "Sessions deleted",
            self.session_deletions.clone(),
        );
        r.register(
            "vbng_cp_session_modifications",
            "Live session modifications (rate changes) sent to user planes, by result",
            self.session_modifications.clone(),
        );
        r.register(
            "vbng_cp_usage_bytes",
            "Bytes of deleted sessions, from final usage reports",
            self.usage_bytes.clone(),
        );
        r.register(
            "vbng_cp_usage_packets",
            "Packets of deleted sessions, from final usage reports",
            self.usage_packets.clone(),
        );
        r
    }

    /// Count a redirect drop.
    pub fn drop_redirect(&self, reason: &'static str) {
        self.redirect_dropped
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Count a DHCP message.
    pub fn dhcp(&self, msg_type: &str, direction: &'static str) {
        self.dhcp_messages
            .get_or_create(&DhcpLabels {
                msg_type: msg_type.to_string(),
                direction,
            })
            .inc();
    }

    /// Count a session modification with `result` (`ok`, `refused`, `timeout`).
    pub fn session_modification(&self, result: &'static str) {
        self.session_modifications
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// PFCP label set.
    pub fn pfcp_labels(msg_type: &str, user_plane: &str) -> PfcpLabels {
        PfcpLabels {
            msg_type: msg_type.to_string(),
            user_plane: user_plane.to_string(),
        }
    }
}

/// Encode `registry` in the Prometheus text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

impl Metrics {
    /// Count a dropped PPPoE frame.
    pub fn pppoe_drop(&self, reason: &'static str) {
        self.pppoe_dropped
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }
}

pub mod radius;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_text_format() {
        let m = Metrics::default();
        m.sessions.set(3);
        m.dhcp("discover", "rx");
        m.drop_redirect("malformed");
        m.session_modification("refused");
        m.user_plane_up
            .get_or_create(&UpLabels {
                user_plane: "up0".into(),
            })
            .set(1);
        let text = encode(&m.registry());
        assert!(text.contains("vbng_cp_sessions 3"), "{text}");
        assert!(
            text.contains("vbng_cp_dhcp_messages_total{msg_type=\"discover\",direction=\"rx\"} 1"),
            "{text}"
        );
        assert!(text.contains("vbng_cp_redirect_dropped_total{reason=\"malformed\"} 1"));
        assert!(text.contains("vbng_cp_user_plane_up{user_plane=\"up0\"} 1"));
        assert!(text.contains("vbng_cp_session_modifications_total{result=\"refused\"} 1"));
        assert!(text.ends_with("# EOF\n"));
    }
}
