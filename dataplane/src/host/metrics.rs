//! Prometheus text exposition over a tiny HTTP/1.1 server (std `TcpListener`, one thread).
//!
//! `GET /metrics` returns every counter of the user plane in the Prometheus text format
//! (version 0.0.4) with `# HELP` and `# TYPE` lines; `GET /` returns a pointer to it.
//! Values come from a [`Snapshot`] of plain integers gathered from the worker's published
//! counters, the redirect threads and the PFCP agent (all lock-free atomics): serving a
//! scrape never touches the worker.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::nat::NatDrop;

/// Length of [`Snapshot::nat`]: five gauges and counters, then the refusals.
pub const NAT_STATS: usize = 5 + NatDrop::COUNT;
use crate::pipeline::{DropReason, SessionQosStats};

/// Per-port traffic counters (plain values).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortSample {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames transmitted.
    pub tx_packets: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Frames lost before processing (RX ring full, oversized), cumulative.
    pub rx_lost: u64,
}

/// Everything `/metrics` shows, as plain integers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// (label, counters) per port, in port-id order.
    pub ports: Vec<(String, PortSample)>,
    /// Drops per reason, indexed like [`DropReason::ALL`].
    pub drops: Vec<u64>,
    /// Frames the pipeline handed to the CP redirect.
    pub redirected: u64,
    /// Redirected frames lost because the queue to the GTP-U sender was full.
    pub redirect_queue_drops: u64,
    /// Frames from the CP transmitted on an access port.
    pub injected: u64,
    /// Frames from the CP that could not be transmitted (bad port, ring full, queue full).
    pub inject_failed: u64,
    /// ARP replies the pipeline sent (core side).
    pub arp_replies: u64,
    /// ARP requests the pipeline sent for the next hop.
    pub arp_requests: u64,
    /// Neighbour advertisements the pipeline sent for its core IPv6 addresses.
    pub nd_replies: u64,
    /// Neighbour solicitations the pipeline sent for the IPv6 next hop.
    pub nd_requests: u64,
    /// ICMP errors the pipeline originated (time exceeded, fragmentation needed).
    pub icmp_errors_sent: u64,
    /// ICMP errors the rate limit suppressed.
    pub icmp_errors_rate_limited: u64,
    /// NAT, when on: [mappings, port blocks in use, subscribers holding blocks, packets
    /// hairpinned within a worker, packets hairpinned to another worker's share of the
    /// pool], then refusals by [`NatDrop`] index, summed over the workers.
    pub nat: Option<[u64; NAT_STATS]>,
    /// IPFIX export of the NAT's port-block events, when collectors are configured:
    /// [messages, records, send errors].
    pub nat_ipfix: Option<[u64; 3]>,
    /// Installed subscriber sessions.
    pub sessions: u64,
    /// G-PDUs sent to the CP.
    pub gtpu_tx_packets: u64,
    /// G-PDUs received from the CP.
    pub gtpu_rx_packets: u64,
    /// Malformed or unexpected GTP-U datagrams dropped.
    pub gtpu_malformed: u64,
    /// GTP-U send errors.
    pub gtpu_send_errors: u64,
    /// 1 if a PFCP association with a CP exists, else 0.
    pub pfcp_associated: u64,
    /// CP losses detected (missed heartbeats) since start.
    pub pfcp_peer_lost: u64,
    /// PFCP messages received.
    pub pfcp_rx_messages: u64,
    /// PFCP messages sent.
    pub pfcp_tx_messages: u64,
    /// PFCP requests answered with a rejection cause or dropped as malformed.
    pub pfcp_rejected: u64,
    /// Sessions taken over by a PFCP establishment for the same subscriber (a restarted CP).
    pub pfcp_sessions_adopted: u64,
    /// Worker loop iterations that ended in poll(2) sleep.
    pub worker_sleeps: u64,
    /// QoS counters of every session with a rate.
    pub qos_sessions: Vec<SessionQosStats>,
    /// Frames waiting in the downstream shaper.
    pub qos_backlog_packets: u64,
    /// Free frame buffers of the shaper's pool.
    pub qos_pool_free_frames: u64,
    /// Frame buffers of the shaper's pool (0: QoS disabled).
    pub qos_pool_frames: u64,
    /// Sessions left unshaped because every shaper was in use.
    pub qos_unshaped_sessions: u64,
    /// Matches per ACL rule (and per ACL default) since the ACLs were last (re)loaded.
    pub acl_matches: Vec<AclMatchSample>,
    /// ACL file reloads applied.
    pub acl_reloads: u64,
    /// ACL file reloads refused.
    pub acl_reload_failures: u64,
    /// Per poll-mode worker, in worker order.
    pub workers: Vec<WorkerSample>,
    /// Per DPDK device (empty with AF_PACKET ports), in port order.
    pub devices: Vec<DeviceSample>,
}

/// One worker's share of the work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerSample {
    /// Frames the worker received from its queues.
    pub rx_packets: u64,
    /// Sessions in the worker's tables.
    pub sessions: u64,
    /// Frames handed to the worker owning their session.
    pub handoff_out: u64,
    /// Frames other workers handed to this one.
    pub handoff_in: u64,
    /// Frames lost because the owner's handoff queue was full.
    pub handoff_dropped: u64,
}

/// A DPDK device's own view: link and the driver's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceSample {
    /// Port label.
    pub port: String,
    /// Driver name (net_af_packet, net_ice, ...).
    pub driver: String,
    /// Link up.
    pub link_up: bool,
    /// Link speed in Mbit/s (0 unknown).
    pub speed_mbps: u32,
    /// Frames the device dropped because no receive descriptor was free.
    pub rx_missed: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// Receive failures for lack of mbufs.
    pub rx_nombuf: u64,
    /// The driver's extended statistics (name, value).
    pub xstats: Vec<(String, u64)>,
}

/// Packets one ACL rule (or an ACL's default action) decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AclMatchSample {
    /// ACL name.
    pub acl: String,
    /// "ingress" (from subscribers) or "egress" (to subscribers).
    pub direction: &'static str,
    /// Rule index in its list (0-based), or "default".
    pub rule: String,
    /// "permit" or "deny".
    pub action: &'static str,
    /// Packets matched.
    pub packets: u64,
}

impl AclMatchSample {
    /// The samples of an ACL set's hit counters (`hits` indexed as
    /// [`crate::acl::AclSet::counter_labels`] says).
    pub fn from_hits(acls: &crate::acl::AclSet, hits: &[u64]) -> Vec<AclMatchSample> {
        use crate::acl::{AclAction, Direction};
        acls.counter_labels()
            .map(|l| AclMatchSample {
                acl: l.acl.to_string(),
                direction: match l.direction {
                    Direction::Ingress => "ingress",
                    Direction::Egress => "egress",
                },
                rule: l
                    .rule
                    .map_or_else(|| "default".to_string(), |r| r.to_string()),
                action: match l.action {
                    AclAction::Permit => "permit",
                    AclAction::Deny => "deny",
                },
                packets: hits.get(l.index).copied().unwrap_or(0),
            })
            .collect()
    }
}

/// Renders a snapshot in Prometheus text format. Pure.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::with_capacity(4096);
    let mut family =
        |name: &str, kind: &str, help: &str, samples: &[(Option<(&str, &str)>, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (label, v) in samples {
                match label {
                    Some((k, lv)) => {
                        let _ = writeln!(out, "{name}{{{k}=\"{}\"}} {v}", escape_label(lv));
                    }
                    None => {
                        let _ = writeln!(out, "{name} {v}");
                    }
                }
            }
        };

    type Field = fn(&PortSample) -> u64;
    let port_families: [(&str, &str, Field); 5] = [
        (
            "vbng_up_port_rx_packets_total",
            "Frames received on the port.",
            |p| p.rx_packets,
        ),
        (
            "vbng_up_port_rx_bytes_total",
            "Bytes received on the port.",
            |p| p.rx_bytes,
        ),
        (
            "vbng_up_port_tx_packets_total",
            "Frames transmitted on the port.",
            |p| p.tx_packets,
        ),
        (
            "vbng_up_port_tx_bytes_total",
            "Bytes transmitted on the port.",
            |p| p.tx_bytes,
        ),
        (
            "vbng_up_port_rx_lost_total",
            "Frames lost before processing (receive ring full, oversized frame).",
            |p| p.rx_lost,
        ),
    ];
    for (name, help, get) in port_families {
        let samples: Vec<_> = s
            .ports
            .iter()
            .map(|(label, p)| (Some(("port", label.as_str())), get(p)))
            .collect();
        family(name, "counter", help, &samples);
    }

    let drops: Vec<_> = DropReason::ALL
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (
                Some(("reason", r.name())),
                s.drops.get(i).copied().unwrap_or(0),
            )
        })
        .collect();
    family(
        "vbng_up_drops_total",
        "counter",
        "Frames dropped by the user plane, by reason.",
        &drops,
    );
    if let Some(nat) = &s.nat {
        let gauges = [
            ("vbng_up_nat_mappings", "NAT mappings in use."),
            (
                "vbng_up_nat_blocks_in_use",
                "NAT port blocks held by subscribers.",
            ),
            (
                "vbng_up_nat_subscribers",
                "Subscribers holding NAT port blocks.",
            ),
        ];
        for ((name, help), v) in gauges.into_iter().zip(nat) {
            family(name, "gauge", help, &[(None, *v)]);
        }
        family(
            "vbng_up_nat_hairpins_total",
            "counter",
            "Packets from a subscriber to another subscriber's outside mapping, delivered \
             straight down (scope worker: within one worker; across: handed to the worker \
             holding that share of the pool).",
            &[
                (Some(("scope", "worker")), nat[3]),
                (Some(("scope", "across")), nat[4]),
            ],
        );
        let refused: Vec<_> = NatDrop::ALL
            .iter()
            .zip(&nat[5..])
            .map(|(d, v)| (Some(("cause", d.name())), *v))
            .collect();
        family(
            "vbng_up_nat_refused_total",
            "counter",
            "Packets the NAT refused, by cause (port_exhausted, address_exhausted, ...).",
            &refused,
        );
    }
    if let Some([messages, records, errors]) = s.nat_ipfix {
        let counters = [
            (
                "vbng_up_nat_ipfix_messages_total",
                "IPFIX messages sent to the NAT log collectors (all collectors).",
                messages,
            ),
            (
                "vbng_up_nat_ipfix_records_total",
                "Port-block records sent to the NAT log collectors (all collectors).",
                records,
            ),
            (
                "vbng_up_nat_ipfix_send_errors_total",
                "IPFIX messages the socket refused (collector unreachable).",
                errors,
            ),
        ];
        for (name, help, v) in counters {
            family(name, "counter", help, &[(None, v)]);
        }
    }

    let plain: [(&str, &str, &str, u64); 28] = [
        (
            "vbng_up_redirected_total",
            "counter",
            "Frames redirected to the control plane over GTP-U.",
            s.redirected,
        ),
        (
            "vbng_up_redirect_queue_drops_total",
            "counter",
            "Redirected frames dropped because the queue to the GTP-U sender was full.",
            s.redirect_queue_drops,
        ),
        (
            "vbng_up_injected_total",
            "counter",
            "Frames from the control plane transmitted on an access port.",
            s.injected,
        ),
        (
            "vbng_up_inject_failed_total",
            "counter",
            "Frames from the control plane that could not be transmitted.",
            s.inject_failed,
        ),
        (
            "vbng_up_arp_replies_total",
            "counter",
            "ARP replies sent on the core port.",
            s.arp_replies,
        ),
        (
            "vbng_up_arp_requests_total",
            "counter",
            "ARP requests sent for the next hop.",
            s.arp_requests,
        ),
        (
            "vbng_up_nd_replies_total",
            "counter",
            "IPv6 neighbour advertisements sent on the core port.",
            s.nd_replies,
        ),
        (
            "vbng_up_nd_requests_total",
            "counter",
            "IPv6 neighbour solicitations sent for the IPv6 next hop.",
            s.nd_requests,
        ),
        (
            "vbng_up_icmp_errors_sent_total",
            "counter",
            "ICMP errors sent (time exceeded, fragmentation needed).",
            s.icmp_errors_sent,
        ),
        (
            "vbng_up_icmp_errors_rate_limited_total",
            "counter",
            "ICMP errors not sent because of the rate limit.",
            s.icmp_errors_rate_limited,
        ),
        (
            "vbng_up_sessions",
            "gauge",
            "Subscriber sessions installed in the worker.",
            s.sessions,
        ),
        (
            "vbng_up_gtpu_tx_packets_total",
            "counter",
            "G-PDUs sent to the control plane.",
            s.gtpu_tx_packets,
        ),
        (
            "vbng_up_gtpu_rx_packets_total",
            "counter",
            "G-PDUs received from the control plane.",
            s.gtpu_rx_packets,
        ),
        (
            "vbng_up_gtpu_malformed_total",
            "counter",
            "Malformed or unexpected GTP-U datagrams dropped.",
            s.gtpu_malformed,
        ),
        (
            "vbng_up_gtpu_send_errors_total",
            "counter",
            "GTP-U datagrams the socket refused to send.",
            s.gtpu_send_errors,
        ),
        (
            "vbng_up_pfcp_associated",
            "gauge",
            "1 while a PFCP association with a control plane exists.",
            s.pfcp_associated,
        ),
        (
            "vbng_up_pfcp_peer_lost_total",
            "counter",
            "Control plane losses detected by missed PFCP heartbeats.",
            s.pfcp_peer_lost,
        ),
        (
            "vbng_up_pfcp_rx_messages_total",
            "counter",
            "PFCP messages received.",
            s.pfcp_rx_messages,
        ),
        (
            "vbng_up_pfcp_tx_messages_total",
            "counter",
            "PFCP messages sent.",
            s.pfcp_tx_messages,
        ),
        (
            "vbng_up_pfcp_rejected_total",
            "counter",
            "PFCP requests rejected or dropped as malformed.",
            s.pfcp_rejected,
        ),
        (
            "vbng_up_pfcp_sessions_adopted_total",
            "counter",
            "Sessions taken over by a PFCP Session Establishment for the same access key and address (a restarted control plane re-programming a subscriber).",
            s.pfcp_sessions_adopted,
        ),
        (
            "vbng_up_worker_sleeps_total",
            "counter",
            "Times the idle worker slept in poll(2).",
            s.worker_sleeps,
        ),
        (
            "vbng_up_qos_backlog_packets",
            "gauge",
            "Frames waiting in the downstream shaper, all sessions.",
            s.qos_backlog_packets,
        ),
        (
            "vbng_up_qos_pool_free_frames",
            "gauge",
            "Free frame buffers in the downstream shaper's pool.",
            s.qos_pool_free_frames,
        ),
        (
            "vbng_up_qos_pool_frames",
            "gauge",
            "Frame buffers in the downstream shaper's pool (0 when QoS is disabled).",
            s.qos_pool_frames,
        ),
        (
            "vbng_up_qos_unshaped_sessions_total",
            "counter",
            "Times a session's downlink rate was left unapplied (session forwarded unshaped) because every shaper (qos.max_shaped_sessions) was in use.",
            s.qos_unshaped_sessions,
        ),
        (
            "vbng_up_acl_reloads_total",
            "counter",
            "ACL file reloads (SIGHUP) applied.",
            s.acl_reloads,
        ),
        (
            "vbng_up_acl_reload_failures_total",
            "counter",
            "ACL file reloads refused (bad file, or an ACL in use removed); the old ACLs stayed.",
            s.acl_reload_failures,
        ),
    ];
    for (name, kind, help, v) in plain {
        family(name, kind, help, &[(None, v)]);
    }
    render_qos(&mut out, &s.qos_sessions);
    render_acl(&mut out, &s.acl_matches);
    render_workers(&mut out, &s.workers);
    render_devices(&mut out, &s.devices);
    out
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Per-worker families (label `worker` = index).
fn render_workers(out: &mut String, workers: &[WorkerSample]) {
    let name = "vbng_up_worker_rx_packets_total";
    head(
        out,
        name,
        "counter",
        "Frames a worker received from its queues.",
    );
    for (i, w) in workers.iter().enumerate() {
        let _ = writeln!(out, "{name}{{worker=\"{i}\"}} {}", w.rx_packets);
    }
    let name = "vbng_up_worker_sessions";
    head(out, name, "gauge", "Sessions a worker owns.");
    for (i, w) in workers.iter().enumerate() {
        let _ = writeln!(out, "{name}{{worker=\"{i}\"}} {}", w.sessions);
    }
    let name = "vbng_up_worker_handoffs_total";
    head(
        out,
        name,
        "counter",
        "Frames received by a worker that does not own their session: handed out to the owner (out), taken from another worker (in), lost to a full handoff queue (dropped).",
    );
    for (i, w) in workers.iter().enumerate() {
        for (direction, v) in [
            ("out", w.handoff_out),
            ("in", w.handoff_in),
            ("dropped", w.handoff_dropped),
        ] {
            let _ = writeln!(
                out,
                "{name}{{worker=\"{i}\",direction=\"{direction}\"}} {v}"
            );
        }
    }
}

/// DPDK device families (label `port` = port label).
fn render_devices(out: &mut String, devices: &[DeviceSample]) {
    if devices.is_empty() {
        return;
    }
    type Field = fn(&DeviceSample) -> u64;
    let families: [(&str, &str, &str, Field); 6] = [
        (
            "vbng_up_port_link_up",
            "gauge",
            "1 if the DPDK device reports its link up.",
            |d| u64::from(d.link_up),
        ),
        (
            "vbng_up_port_link_speed_mbps",
            "gauge",
            "Link speed the DPDK device reports, Mbit/s (0 unknown).",
            |d| u64::from(d.speed_mbps),
        ),
        (
            "vbng_up_port_rx_missed_total",
            "counter",
            "Frames the DPDK device dropped for lack of a free receive descriptor.",
            |d| d.rx_missed,
        ),
        (
            "vbng_up_port_rx_errors_total",
            "counter",
            "Receive errors the DPDK device counted.",
            |d| d.rx_errors,
        ),
        (
            "vbng_up_port_tx_errors_total",
            "counter",
            "Transmit errors the DPDK device counted.",
            |d| d.tx_errors,
        ),
        (
            "vbng_up_port_rx_nombuf_total",
            "counter",
            "Receive failures for lack of mbufs.",
            |d| d.rx_nombuf,
        ),
    ];
    for (name, kind, help, field) in families {
        head(out, name, kind, help);
        for d in devices {
            let _ = writeln!(
                out,
                "{name}{{port=\"{}\",driver=\"{}\"}} {}",
                escape_label(&d.port),
                escape_label(&d.driver),
                field(d)
            );
        }
    }
    let name = "vbng_up_port_xstat";
    head(
        out,
        name,
        "untyped",
        "The DPDK driver's extended statistics, by the driver's own names.",
    );
    for d in devices {
        for (stat, v) in &d.xstats {
            let _ = writeln!(
                out,
                "{name}{{port=\"{}\",name=\"{}\"}} {v}",
                escape_label(&d.port),
                escape_label(stat)
            );
        }
    }
}

/// Matches per ACL rule: one sample per rule and per ACL default, by direction.
fn render_acl(out: &mut String, matches: &[AclMatchSample]) {
    let name = "vbng_up_acl_matches_total";
    let _ = writeln!(
        out,
        "# HELP {name} Packets decided by an ACL rule (rule = index in its list, or default when none matched) since the ACL file was last loaded."
    );
    let _ = writeln!(out, "# TYPE {name} counter");
    for m in matches {
        let _ = writeln!(
            out,
            "{name}{{acl=\"{}\",direction=\"{}\",rule=\"{}\",action=\"{}\"}} {}",
            escape_label(&m.acl),
            m.direction,
            m.rule,
            m.action,
            m.packets
        );
    }
}

/// The per-session QoS families: one sample per session (label `session` = the worker's
/// session id, the UP SEID the session was established with, in decimal) and class.
fn render_qos(out: &mut String, sessions: &[SessionQosStats]) {
    let head = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
    };
    let name = "vbng_up_qos_packets_total";
    head(
        out,
        name,
        "counter",
        "Downstream shaper packets per session and class: conformed = sent within the rate, exceeded = had to wait in the queue, dropped = refused (queue or pool full).",
    );
    for q in sessions {
        for (class, c) in q.classes.iter().flatten().enumerate() {
            for (result, v) in [
                ("conformed", c.conformed_packets),
                ("exceeded", c.exceeded_packets),
                ("dropped", c.dropped_packets),
            ] {
                let _ = writeln!(
                    out,
                    "{name}{{session=\"{}\",class=\"{class}\",result=\"{result}\"}} {v}",
                    q.id
                );
            }
        }
    }
    let name = "vbng_up_qos_queue_depth_packets";
    head(
        out,
        name,
        "gauge",
        "Packets queued in the downstream shaper per session and class.",
    );
    for q in sessions {
        for (class, c) in q.classes.iter().flatten().enumerate() {
            let _ = writeln!(
                out,
                "{name}{{session=\"{}\",class=\"{class}\"}} {}",
                q.id, c.depth_packets
            );
        }
    }
    let name = "vbng_up_qos_policed_packets_total";
    head(
        out,
        name,
        "counter",
        "Upstream packets of the session dropped by its policer (srTCM red).",
    );
    for q in sessions
        .iter()
        .filter(|q| q.qos.ul_rate_bps.is_some() || q.policed_packets > 0)
    {
        let _ = writeln!(out, "{name}{{session=\"{}\"}} {}", q.id, q.policed_packets);
    }
    let name = "vbng_up_qos_rate_bps";
    head(
        out,
        name,
        "gauge",
        "Configured rate of the session (QER MBR) in bit/s of IPv4 packets; absent = unlimited.",
    );
    for q in sessions {
        for (direction, rate) in [
            ("downlink", q.qos.dl_rate_bps),
            ("uplink", q.qos.ul_rate_bps),
        ] {
            if let Some(v) = rate {
                let _ = writeln!(
                    out,
                    "{name}{{session=\"{}\",direction=\"{direction}\"}} {v}",
                    q.id
                );
            }
        }
    }
}

/// Escapes a label value (backslash, double quote, newline). Pure.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// What an HTTP request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics` (or HEAD).
    Metrics,
    /// `GET /`.
    Index,
    /// Any other path.
    NotFound,
    /// A method other than GET/HEAD.
    MethodNotAllowed,
    /// Not an HTTP request line.
    BadRequest,
}

/// Routes an HTTP request head (text up to the blank line). Pure.
pub fn route(head: &str) -> Route {
    let line = head.lines().next().unwrap_or("");
    let mut parts = line.split_ascii_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") {
        return Route::BadRequest;
    }
    if method != "GET" && method != "HEAD" {
        return Route::MethodNotAllowed;
    }
    let path = target.split('?').next().unwrap_or("");
    match path {
        "/metrics" => Route::Metrics,
        "/" => Route::Index,
        _ => Route::NotFound,
    }
}

/// Serves `/metrics` on `listener` until `stop` is set. `collect` builds a fresh snapshot
/// for each scrape. Connections are handled one at a time (scrapes are rare and small).
pub fn serve(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    collect: impl Fn() -> Snapshot,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                // A broken client only affects its own connection.
                let _ = handle(stream, &collect);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    Ok(())
}

fn handle(mut stream: TcpStream, collect: &impl Fn() -> Snapshot) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; 4096];
    let mut len = 0;
    while len < buf.len() {
        let n = stream.read(&mut buf[len..])?;
        if n == 0 {
            break;
        }
        len += n;
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let is_head = head.starts_with("HEAD ");
    let (status, ctype, body) = match route(&head) {
        Route::Metrics => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            render(&collect()),
        ),
        Route::Index => (
            "200 OK",
            "text/plain; charset=utf-8",
            "vbng-up: Prometheus metrics at /metrics\n".to_string(),
        ),
        Route::NotFound => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: try /metrics\n".into(),
        ),
        Route::MethodNotAllowed => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET and HEAD are supported\n".into(),
        ),
        Route::BadRequest => (
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "bad request\n".into(),
        ),
    };
    let mut resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !is_head {
        resp.push_str(&body);
    }
    stream.write_all(resp.as_bytes())?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Snapshot {
        Snapshot {
            ports: vec![
                (
                    "acc0".into(),
                    PortSample {
                        rx_packets: 3,
                        rx_bytes: 300,
                        tx_packets: 2,
                        tx_bytes: 200,
                        rx_lost: 0,
                    },
                ),
                ("core".into(), PortSample::default()),
            ],
            drops: {
                let mut d = vec![0; DropReason::ALL.len()];
                d[DropReason::AntiSpoof as usize] = 7;
                d
            },
            sessions: 2,
            nat: Some({
                let mut n = [0; NAT_STATS];
                n[0] = 5;
                n[4] = 6;
                n[5 + NatDrop::PortExhausted as usize] = 2;
                n
            }),
            nat_ipfix: Some([4, 90, 1]),
            pfcp_associated: 1,
            pfcp_sessions_adopted: 3,
            acl_matches: vec![AclMatchSample {
                acl: "web-only".into(),
                direction: "ingress",
                rule: "default".into(),
                action: "deny",
                packets: 5,
            }],
            qos_sessions: vec![SessionQosStats {
                id: 42,
                qos: crate::session::SessionQos {
                    dl_rate_bps: Some(10_000_000),
                    ul_rate_bps: Some(5_000_000),
                },
                classes: Some({
                    let mut c = [vbng_qos::scheduler::ClassCounters::default(); 4];
                    c[0].conformed_packets = 9;
                    c[3].dropped_packets = 4;
                    c[3].depth_packets = 17;
                    c
                }),
                policed_packets: 6,
                policer_passed_packets: 60,
            }],
            workers: vec![
                WorkerSample {
                    rx_packets: 10,
                    sessions: 1,
                    handoff_out: 4,
                    ..WorkerSample::default()
                },
                WorkerSample {
                    rx_packets: 2,
                    sessions: 1,
                    handoff_in: 4,
                    ..WorkerSample::default()
                },
            ],
            devices: vec![DeviceSample {
                port: "acc0".into(),
                driver: "net_af_packet".into(),
                link_up: true,
                speed_mbps: 10_000,
                rx_missed: 3,
                xstats: vec![("rx_q0_packets".into(), 12)],
                ..DeviceSample::default()
            }],
            ..Snapshot::default()
        }
    }

    #[test]
    fn exposition_has_help_type_and_samples() {
        let text = render(&sample());
        assert!(text.contains("# HELP vbng_up_port_rx_packets_total "));
        assert!(text.contains("# TYPE vbng_up_port_rx_packets_total counter\n"));
        assert!(text.contains("vbng_up_port_rx_packets_total{port=\"acc0\"} 3\n"));
        assert!(text.contains("vbng_up_port_tx_bytes_total{port=\"acc0\"} 200\n"));
        assert!(text.contains(
            "vbng_up_acl_matches_total{acl=\"web-only\",direction=\"ingress\",rule=\"default\",action=\"deny\"} 5\n"
        ));
        assert!(text.contains("vbng_up_port_rx_bytes_total{port=\"core\"} 0\n"));
        assert!(text.contains("vbng_up_drops_total{reason=\"anti_spoof\"} 7\n"));
        assert!(text.contains("# TYPE vbng_up_nat_mappings gauge\nvbng_up_nat_mappings 5\n"));
        assert!(text.contains("vbng_up_nat_refused_total{cause=\"port_exhausted\"} 2\n"));
        assert!(text.contains("vbng_up_nat_hairpins_total{scope=\"across\"} 6\n"));
        assert!(text.contains("vbng_up_nat_ipfix_records_total 90\n"));
        assert!(text.contains("vbng_up_nat_ipfix_send_errors_total 1\n"));
        assert!(text.contains("vbng_up_worker_rx_packets_total{worker=\"1\"} 2\n"));
        assert!(text.contains("vbng_up_worker_handoffs_total{worker=\"0\",direction=\"out\"} 4\n"));
        assert!(text.contains("vbng_up_port_link_up{port=\"acc0\",driver=\"net_af_packet\"} 1\n"));
        assert!(
            text.contains(
                "vbng_up_port_rx_missed_total{port=\"acc0\",driver=\"net_af_packet\"} 3\n"
            )
        );
        assert!(text.contains("vbng_up_port_xstat{port=\"acc0\",name=\"rx_q0_packets\"} 12\n"));
        assert!(text.contains("# TYPE vbng_up_sessions gauge\nvbng_up_sessions 2\n"));
        assert!(text.contains("vbng_up_pfcp_associated 1\n"));
        assert!(text.contains(
            "# TYPE vbng_up_pfcp_sessions_adopted_total counter\nvbng_up_pfcp_sessions_adopted_total 3\n"
        ));
        assert!(text.contains("vbng_up_gtpu_malformed_total 0\n"));
        assert!(text.contains(
            "vbng_up_qos_packets_total{session=\"42\",class=\"0\",result=\"conformed\"} 9\n"
        ));
        assert!(text.contains(
            "vbng_up_qos_packets_total{session=\"42\",class=\"3\",result=\"dropped\"} 4\n"
        ));
        assert!(text.contains("vbng_up_qos_queue_depth_packets{session=\"42\",class=\"3\"} 17\n"));
        assert!(text.contains("vbng_up_qos_policed_packets_total{session=\"42\"} 6\n"));
        assert!(
            text.contains("vbng_up_qos_rate_bps{session=\"42\",direction=\"downlink\"} 10000000\n")
        );
        assert!(
            text.contains("vbng_up_qos_rate_bps{session=\"42\",direction=\"uplink\"} 5000000\n")
        );
        assert!(text.contains("vbng_up_drops_total{reason=\"policed\"} 0\n"));
        for r in DropReason::ALL {
            assert!(text.contains(&format!("vbng_up_drops_total{{reason=\"{}\"}} ", r.name())));
        }
        // Every sample line belongs to a family announced by a TYPE line.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# TYPE {name} ")), "{line}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn routes() {
        assert_eq!(
            route("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics
        );
        assert_eq!(route("HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"), Route::Metrics);
        assert_eq!(route("GET / HTTP/1.1\r\n\r\n"), Route::Index);
        assert_eq!(route("GET /other HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(
            route("POST /metrics HTTP/1.1\r\n\r\n"),
            Route::MethodNotAllowed
        );
        assert_eq!(route("garbage"), Route::BadRequest);
        assert_eq!(route(""), Route::BadRequest);
    }

    #[test]
    fn serves_over_tcp() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let t = std::thread::spawn(move || serve(listener, stop2, sample));
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut resp = String::new();
        c.read_to_string(&mut resp).unwrap();
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap().unwrap();
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        assert!(resp.contains("text/plain; version=0.0.4"));
        assert!(resp.contains("vbng_up_port_rx_packets_total{port=\"acc0\"} 3\n"));
    }
}
