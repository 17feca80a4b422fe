//! One task per user plane, and the handle used to program it.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};
use vbng_cups::pfcp::node::{
    AssociationConfig, AssociationEvent, AssociationState, SequenceAllocator, TransactionConfig,
    TransactionEvent, Transactions,
};
use vbng_cups::pfcp::{
    AssociationReleaseResponse, AssociationSetupRequest, Cause, GateStatus, Header,
    HeartbeatRequest, HeartbeatResponse, Message, MessageType, NodeId, RecoveryTimeStamp,
    SessionModificationRequest, SessionReportResponse,
};

use super::{
    AclChange, CupsError, Ipv6Prefixes, LiveChange, SubscriberSession, UpEvent, Usage, program,
};
use crate::aaa::Rate;
use crate::api::model::UserPlaneView;
use crate::metrics::{Metrics, UpLabels};

/// Association state of a user plane, as shown by the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpState {
    /// Association Setup sent (or being retried), never answered yet.
    Associating,
    /// Associated and answering heartbeats.
    Up,
    /// Heartbeats went unanswered; re-association in progress.
    Down,
}

impl UpState {
    /// Snake-case name.
    pub fn name(self) -> &'static str {
        match self {
            UpState::Associating => "associating",
            UpState::Up => "up",
            UpState::Down => "down",
        }
    }
}

/// Status shared between a peer task and its handles.
#[derive(Debug, Clone)]
pub struct UpStatus {
    /// Association state.
    pub state: UpState,
    /// The UP's recovery time stamp.
    pub recovery: Option<RecoveryTimeStamp>,
    /// Monotonic ms of the last heartbeat exchanged (request or response).
    pub last_heartbeat_ms: Option<u64>,
    /// GTP-U address advertised in Association Setup Response.
    pub advertised_gtpu: Option<Ipv4Addr>,
}

/// A request to the peer task.
#[derive(Debug)]
pub(crate) struct Op {
    msg: Message,
    seid: Option<u64>,
    reply: ReplyTx,
}

/// Where a peer task delivers the answer to one request.
type ReplyTx = oneshot::Sender<Result<(Header, Message), CupsError>>;

/// Static identity of a user plane.
#[derive(Debug)]
pub(crate) struct UpInfo {
    pub(crate) index: u32,
    pub(crate) name: String,
    pub(crate) pfcp: SocketAddr,
    pub(crate) gtpu: SocketAddr,
    pub(crate) status: Mutex<UpStatus>,
}

/// Handle to one user plane's PFCP client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct UpHandle {
    info: Arc<UpInfo>,
    ops: mpsc::Sender<Op>,
    cp_ip: Ipv4Addr,
}

impl UpHandle {
    pub(crate) fn new(info: Arc<UpInfo>, ops: mpsc::Sender<Op>, cp_ip: Ipv4Addr) -> Self {
        UpHandle { info, ops, cp_ip }
    }

    /// The CP's index of this user plane ([`vbng_access::dhcpv4::ClientKey::up`]).
    pub fn index(&self) -> u32 {
        self.info.index
    }

    /// Configured name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// PFCP address.
    pub fn pfcp_addr(&self) -> SocketAddr {
        self.info.pfcp
    }

    /// A copy of the shared status.
    pub fn status(&self) -> UpStatus {
        self.info
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The user plane's configured GTP-U address: where control frames
    /// the control plane originates (unsolicited Router Advertisements) go.
    pub fn gtpu_address(&self) -> SocketAddr {
        self.info.gtpu
    }

    /// Whether a GTP-U datagram from `src` comes from this user plane:
    /// the configured GTP-U address, or the advertised GTP-U IPv4 / the
    /// PFCP IP on the GTP-U port.
    pub fn owns_gtpu_source(&self, src: SocketAddr) -> bool {
        if src == self.info.gtpu {
            return true;
        }
        let adv = self.status().advertised_gtpu;
        match src {
            SocketAddr::V4(a) => {
                Some(*a.ip()) == adv
                    || (src.ip() == self.info.pfcp.ip() && src.port() == crate::GTPU_PORT)
            }
            SocketAddr::V6(_) => false,
        }
    }

    /// The API view; `sessions` is the number of sessions on it.
    pub fn view(&self, sessions: usize) -> UserPlaneView {
        let st = self.status();
        let now = crate::monotonic_ms();
        UserPlaneView {
            name: self.info.name.clone(),
            pfcp: self.info.pfcp.to_string(),
            state: st.state.name().to_string(),
            recovery_timestamp: st.recovery.map(|r| r.0),
            last_heartbeat_age_s: st
                .last_heartbeat_ms
                .map(|t| now.saturating_sub(t) as f64 / 1000.0),
            sessions,
        }
    }

    async fn request(&self, msg: Message, seid: Option<u64>) -> Result<Message, CupsError> {
        if self.status().state != UpState::Up {
            return Err(CupsError::NotAssociated(self.info.name.clone()));
        }
        let (reply, rx) = oneshot::channel();
        self.ops
            .send(Op { msg, seid, reply })
            .await
            .map_err(|_| CupsError::Stopped(self.info.name.clone()))?;
        let (_h, msg) = rx
            .await
            .map_err(|_| CupsError::Stopped(self.info.name.clone()))??;
        Ok(msg)
    }

    /// Program a subscriber (Session Establishment); returns the UP SEID.
    pub async fn establish(&self, s: &SubscriberSession) -> Result<u64, CupsError> {
        const MSG: &str = "session_establishment_request";
        let req = program::establishment(self.cp_ip, s);
        match self
            .request(Message::SessionEstablishmentRequest(req), Some(0))
            .await?
        {
            Message::SessionEstablishmentResponse(r) if r.cause.is_accepted() => r
                .up_f_seid
                .map(|f| f.seid)
                .ok_or_else(|| self.unexpected(MSG, "an UP F-SEID")),
            Message::SessionEstablishmentResponse(r) => Err(self.rejected(MSG, r.cause)),
            _ => Err(self.unexpected(MSG, "a Session Establishment Response")),
        }
    }

    /// Update the session's QER (gate and/or MBR) live; `None` leaves that
    /// part unchanged.
    pub async fn modify_qer(
        &self,
        up_seid: u64,
        gate: Option<GateStatus>,
        rate: Option<Rate>,
    ) -> Result<Option<Usage>, CupsError> {
        self.modify(up_seid, program::modify_qer(gate, rate)).await
    }

    /// Change the session's rate live ([`program::rate_change`]): Update
    /// QER with the new MBR, or MBR 0/0 ("no limit") for `None`.
    pub async fn set_rate(&self, up_seid: u64, rate: Option<Rate>) -> Result<(), CupsError> {
        self.modify(up_seid, program::rate_change(rate))
            .await
            .map(|_| ())
    }

    /// Replace the session's ACL live ([`program::acl_change`]): Update PDR
    /// on both PDRs. A user plane that does not know the new name refuses
    /// with cause 73 (Rule creation/modification failure).
    pub async fn set_acl(&self, up_seid: u64, change: &AclChange) -> Result<(), CupsError> {
        self.modify(up_seid, program::acl_change(change))
            .await
            .map(|_| ())
    }

    /// Apply every part of `change` in one Session Modification Request
    /// ([`program::live_change`]): the user plane takes or refuses it whole.
    pub async fn apply_change(&self, up_seid: u64, change: &LiveChange) -> Result<(), CupsError> {
        self.modify(up_seid, program::live_change(change))
            .await
            .map(|_| ())
    }

    /// Bring session `s`'s IPv6 PDRs on the user plane from prefixes `from`
    /// (what it has now) to `s.ipv6`: one Session Modification Request
    /// ([`program::ipv6_change`]) installing, replacing or removing PDRs 3
    /// and 4; nothing is sent if they are the same.
    pub async fn set_ipv6(
        &self,
        up_seid: u64,
        s: &SubscriberSession,
        from: Option<&Ipv6Prefixes>,
    ) -> Result<(), CupsError> {
        match program::ipv6_change(s, from) {
            Some(req) => self.modify(up_seid, req).await.map(|_| ()),
            None => Ok(()),
        }
    }

    /// The session's usage now, without changing it: a Session Modification
    /// Request with Query URR ([`program::query_usage`]). The volume is
    /// cumulative since the session was established (the figure a RADIUS
    /// Interim-Update carries); `None` if the answer held no volume report.
    pub async fn query_usage(&self, up_seid: u64) -> Result<Option<Usage>, CupsError> {
        self.modify(up_seid, program::query_usage()).await
    }

    /// Send one Session Modification Request; returns the usage it reported.
    async fn modify(
        &self,
        up_seid: u64,
        req: SessionModificationRequest,
    ) -> Result<Option<Usage>, CupsError> {
        const MSG: &str = "session_modification_request";
        match self
            .request(Message::SessionModificationRequest(req), Some(up_seid))
            .await?
        {
            Message::SessionModificationResponse(r) if r.cause.is_accepted() => {
                Ok(Usage::from_reports(&r.usage_reports))
            }
            Message::SessionModificationResponse(r) => Err(self.rejected(MSG, r.cause)),
            _ => Err(self.unexpected(MSG, "a Session Modification Response")),
        }
    }

    /// Remove a subscriber (Session Deletion); returns its final usage.
    pub async fn delete(&self, up_seid: u64) -> Result<Option<Usage>, CupsError> {
        const MSG: &str = "session_deletion_request";
        match self
            .request(
                Message::SessionDeletionRequest(program::deletion()),
                Some(up_seid),
            )
            .await?
        {
            Message::SessionDeletionResponse(r) if r.cause.is_accepted() => {
                Ok(Usage::from_reports(&r.usage_reports))
            }
            Message::SessionDeletionResponse(r) => Err(self.rejected(MSG, r.cause)),
            _ => Err(self.unexpected(MSG, "a Session Deletion Response")),
        }
    }

    fn rejected(&self, msg: &'static str, cause: Cause) -> CupsError {
        CupsError::Rejected {
            up: self.info.name.clone(),
            msg,
            cause,
        }
    }

    fn unexpected(&self, msg: &'static str, expected: &'static str) -> CupsError {
        CupsError::Unexpected {
            up: self.info.name.clone(),
            msg,
            expected,
        }
    }
}

/// What a pending request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Association,
    Heartbeat,
    Client,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    msg_type: MessageType,
}

/// Timers of a peer task.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerTimers {
    pub(crate) t1_ms: u64,
    pub(crate) n1: u32,
    pub(crate) heartbeat_interval_ms: u64,
    pub(crate) heartbeat_misses: u32,
}

/// The per-user-plane task state.
pub(crate) struct PeerTask {
    info: Arc<UpInfo>,
    socket: Arc<UdpSocket>,
    cp_ip: Ipv4Addr,
    cp_recovery: RecoveryTimeStamp,
    timers: PeerTimers,
    seq: SequenceAllocator,
    tx: Transactions<Token>,
    waiting: HashMap<u32, ReplyTx>,
    /// CP SEID of establishment requests in flight, by sequence number.
    establishing: HashMap<u32, u64>,
    /// UP SEID of each established session, by CP SEID (to answer
    /// Session Report Requests on the UP's SEID).
    up_seids: HashMap<u64, u64>,
    assoc: AssociationState,
    associating: bool,
    next_assoc_ms: u64,
    restart_seen: bool,
    metrics: Metrics,
    events: mpsc::UnboundedSender<UpEvent>,
}

impl std::fmt::Debug for PeerTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTask")
            .field("up", &self.info.name)
            .finish_non_exhaustive()
    }
}

impl PeerTask {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        info: Arc<UpInfo>,
        socket: Arc<UdpSocket>,
        cp_ip: Ipv4Addr,
        cp_recovery: RecoveryTimeStamp,
        timers: PeerTimers,
        seq_start: u32,
        metrics: Metrics,
        events: mpsc::UnboundedSender<UpEvent>,
    ) -> Self {
        let assoc = AssociationState::new(AssociationConfig {
            heartbeat_interval_ms: timers.heartbeat_interval_ms,
            max_missed: timers.heartbeat_misses,
        });
        let tx = Transactions::new(TransactionConfig {
            t1_ms: timers.t1_ms,
            n1: timers.n1,
        });
        PeerTask {
            info,
            socket,
            cp_ip,
            cp_recovery,
            timers,
            seq: SequenceAllocator::new(seq_start),
            tx,
            waiting: HashMap::new(),
            establishing: HashMap::new(),
            up_seids: HashMap::new(),
            assoc,
            associating: false,
            next_assoc_ms: 0,
            restart_seen: false,
            metrics,
            events,
        }
    }

    fn labels(&self, t: MessageType) -> crate::metrics::PfcpLabels {
        Metrics::pfcp_labels(&snake(t), &self.info.name)
    }

    fn set_state(&self, state: UpState, f: impl FnOnce(&mut UpStatus)) {
        let mut st = self.info.status.lock().unwrap_or_else(|p| p.into_inner());
        st.state = state;
        f(&mut st);
        self.metrics
            .user_plane_up
            .get_or_create(&UpLabels {
                user_plane: self.info.name.clone(),
            })
            .set(i64::from(state == UpState::Up));
    }

    async fn send(&self, bytes: &[u8]) {
        if let Err(e) = self.socket.send_to(bytes, self.info.pfcp).await {
            debug!(up = %self.info.name, error = %e, "PFCP send failed");
        }
    }

    async fn send_request(
        &mut self,
        now: u64,
        msg: &Message,
        seid: Option<u64>,
        kind: Kind,
    ) -> u32 {
        let seq = self.seq.next();
        let bytes = msg.encode(seq, seid);
        let token = Token {
            kind,
            msg_type: msg.msg_type(),
        };
        self.metrics
            .pfcp_requests
            .get_or_create(&self.labels(token.msg_type))
            .inc();
        self.send(&bytes).await;
        self.tx.insert(now, seq, bytes, token);
        seq
    }

    /// Run until `shutdown` turns true.
    pub(crate) async fn run(
        mut self,
        mut datagrams: mpsc::Receiver<Vec<u8>>,
        mut ops: mpsc::Receiver<Op>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        self.set_state(UpState::Associating, |_| {});
        loop {
            let now = crate::monotonic_ms();
            self.on_timers(now).await;
            let deadline = self.next_deadline(crate::monotonic_ms());
            tokio::select! {
                d = datagrams.recv() => match d {
                    Some(d) => self.on_datagram(crate::monotonic_ms(), &d).await,
                    None => break,
                },
                Some(op) = ops.recv() => self.on_op(crate::monotonic_ms(), op).await,
                _ = tokio::time::sleep(deadline) => {}
                _ = shutdown.changed() => break,
            }
        }
        for (_, w) in self.waiting.drain() {
            let _ = w.send(Err(CupsError::Stopped(self.info.name.clone())));
        }
    }

    fn next_deadline(&self, now: u64) -> Duration {
        let mut at = now + 1000;
        if let Some(t) = self.tx.next_deadline() {
            at = at.min(t);
        }
        if let Some(t) = self.assoc.next_deadline() {
            at = at.min(t);
        }
        if !self.assoc.is_up() && !self.associating {
            at = at.min(self.next_assoc_ms);
        }
        Duration::from_millis(at.saturating_sub(now).max(1))
    }

    async fn on_timers(&mut self, now: u64) {
        for ev in self.tx.poll(now) {
            match ev {
                TransactionEvent::Retransmit { bytes, token, .. } => {
                    self.metrics
                        .pfcp_retransmissions
                        .get_or_create(&self.labels(token.msg_type))
                        .inc();
                    self.send(&bytes).await;
                }
                TransactionEvent::Timeout { sequence, token } => {
                    self.metrics
                        .pfcp_timeouts
                        .get_or_create(&self.labels(token.msg_type))
                        .inc();
                    match token.kind {
                        Kind::Association => {
                            self.associating = false;
                            self.next_assoc_ms = now;
                            debug!(up = %self.info.name, "association setup unanswered; retrying");
                        }
                        Kind::Heartbeat => {}
                        Kind::Client => {
                            self.establishing.remove(&sequence);
                            if let Some(w) = self.waiting.remove(&sequence) {
                                let _ = w.send(Err(CupsError::Timeout {
                                    up: self.info.name.clone(),
                                    msg: token.msg_type.name(),
                                }));
                            }
                        }
                    }
                }
            }
        }
        if self.assoc.is_up() {
            match self.assoc.poll(now) {
                Some(AssociationEvent::SendHeartbeat) => {
                    let msg = Message::HeartbeatRequest(HeartbeatRequest {
                        recovery_time_stamp: self.cp_recovery,
                    });
                    self.send_request(now, &msg, None, Kind::Heartbeat).await;
                    self.assoc.heartbeat_sent(now);
                }
                Some(AssociationEvent::PeerLost) => self.lost(now, "heartbeats unanswered"),
                _ => {}
            }
        } else if !self.associating && now >= self.next_assoc_ms {
            let msg = Message::AssociationSetupRequest(AssociationSetupRequest {
                node_id: NodeId::Ipv4(self.cp_ip),
                recovery_time_stamp: self.cp_recovery,
                ..Default::default()
            });
            self.associating = true;
            self.send_request(now, &msg, None, Kind::Association).await;
        }
    }

    /// The association is gone: fail pending requests, tell the registry,
    /// start re-associating.
    fn lost(&mut self, now: u64, why: &str) {
        warn!(up = %self.info.name, why, "user plane down");
        self.assoc.release();
        self.tx.clear();
        self.establishing.clear();
        for (_, w) in self.waiting.drain() {
            let _ = w.send(Err(CupsError::NotAssociated(self.info.name.clone())));
        }
        self.associating = false;
        self.next_assoc_ms = now;
        self.set_state(UpState::Down, |_| {});
        let _ = self.events.send(UpEvent::Down {
            up: self.info.index,
        });
    }

    fn note_restart(&mut self, ev: Option<AssociationEvent>) -> bool {
        if let Some(AssociationEvent::PeerRestarted { old, new }) = ev {
            info!(up = %self.info.name, old = old.0, new = new.0, "user plane restarted");
            self.metrics
                .user_plane_restarts
                .get_or_create(&UpLabels {
                    user_plane: self.info.name.clone(),
                })
                .inc();
            true
        } else {
            false
        }
    }

    async fn on_op(&mut self, now: u64, op: Op) {
        if !self.assoc.is_up() {
            let _ = op
                .reply
                .send(Err(CupsError::NotAssociated(self.info.name.clone())));
            return;
        }
        let seq = self.send_request(now, &op.msg, op.seid, Kind::Client).await;
        match &op.msg {
            Message::SessionEstablishmentRequest(r) => {
                self.establishing.insert(seq, r.cp_f_seid.seid);
            }
            Message::SessionDeletionRequest(_) => {
                self.up_seids.retain(|_, up| Some(*up) != op.seid);
            }
            _ => {}
        }
        self.waiting.insert(seq, op.reply);
    }

    async fn on_datagram(&mut self, now: u64, bytes: &[u8]) {
        let (h, msg) = match Message::parse(bytes) {
            Ok(v) => v,
            Err(e) => {
                debug!(up = %self.info.name, error = %e, "undecodable PFCP datagram");
                self.metrics
                    .pfcp_errors
                    .get_or_create(&crate::metrics::ReasonLabels {
                        reason: "malformed",
                    })
                    .inc();
                return;
            }
        };
        if h.msg_type.is_request() {
            self.metrics
                .pfcp_peer_requests
                .get_or_create(&self.labels(h.msg_type))
                .inc();
            self.on_peer_request(now, h, msg).await;
            return;
        }
        let Some(token) = self.tx.on_response(h.sequence) else {
            self.metrics
                .pfcp_errors
                .get_or_create(&crate::metrics::ReasonLabels {
                    reason: "unmatched_response",
                })
                .inc();
            return;
        };
        self.metrics
            .pfcp_responses
            .get_or_create(&self.labels(h.msg_type))
            .inc();
        self.assoc.on_peer_activity();
        match (token.kind, msg) {
            (Kind::Association, Message::AssociationSetupResponse(r)) => {
                self.associating = false;
                if !r.cause.is_accepted() {
                    warn!(up = %self.info.name, cause = ?r.cause, "association setup rejected; retrying");
                    self.next_assoc_ms = now + self.timers.heartbeat_interval_ms;
                    return;
                }
                let ev = self.assoc.established(now, r.recovery_time_stamp);
                let restarted = self.note_restart(ev) || std::mem::take(&mut self.restart_seen);
                let adv = r.user_plane_ip_resources.iter().find_map(|u| u.ipv4);
                self.set_state(UpState::Up, |st| {
                    st.recovery = Some(r.recovery_time_stamp);
                    st.last_heartbeat_ms = Some(now);
                    st.advertised_gtpu = adv;
                });
                info!(up = %self.info.name, recovery = r.recovery_time_stamp.0, restarted, "user plane associated");
                let _ = self.events.send(UpEvent::Up {
                    up: self.info.index,
                    restarted,
                });
            }
            (Kind::Heartbeat, Message::HeartbeatResponse(r)) => {
                let ev = self.assoc.on_heartbeat(now, r.recovery_time_stamp);
                self.touch_heartbeat(now);
                if self.note_restart(ev) {
                    self.restart_seen = true;
                    self.lost(now, "recovery time stamp changed");
                }
            }
            (Kind::Client, msg) => {
                let cp_seid = self.establishing.remove(&h.sequence);
                // A refused establishment left nothing on the user plane,
                // whatever F-SEID its answer may carry.
                if let (Some(cp), Message::SessionEstablishmentResponse(r)) = (cp_seid, &msg)
                    && r.cause.is_accepted()
                    && let Some(up) = r.up_f_seid
                {
                    self.up_seids.insert(cp, up.seid);
                }
                if let Some(w) = self.waiting.remove(&h.sequence) {
                    let _ = w.send(Ok((h, msg)));
                }
            }
            _ => {
                self.metrics
                    .pfcp_errors
                    .get_or_create(&crate::metrics::ReasonLabels {
                        reason: "unexpected_response",
                    })
                    .inc();
            }
        }
    }

    fn touch_heartbeat(&self, now: u64) {
        let mut st = self.info.status.lock().unwrap_or_else(|p| p.into_inner());
        st.last_heartbeat_ms = Some(now);
    }

    async fn on_peer_request(&mut self, now: u64, h: Header, msg: Message) {
        let reply = match msg {
            Message::HeartbeatRequest(r) => {
                self.touch_heartbeat(now);
                let ev = self.assoc.on_heartbeat(now, r.recovery_time_stamp);
                if self.assoc.is_up() && self.note_restart(ev) {
                    self.restart_seen = true;
                    self.lost(now, "recovery time stamp changed");
                }
                Some((
                    Message::HeartbeatResponse(HeartbeatResponse {
                        recovery_time_stamp: self.cp_recovery,
                    }),
                    None,
                ))
            }
            Message::AssociationReleaseRequest(_) => {
                if self.assoc.is_up() {
                    self.lost(now, "association released by the user plane");
                }
                Some((
                    Message::AssociationReleaseResponse(AssociationReleaseResponse {
                        node_id: NodeId::Ipv4(self.cp_ip),
                        cause: Cause::RequestAccepted,
                    }),
                    None,
                ))
            }
            Message::SessionReportRequest(_) => Some((
                Message::SessionReportResponse(SessionReportResponse {
                    cause: Cause::RequestAccepted,
                }),
                // The UP addressed us by CP SEID; the response carries
                // the UP's SEID of that session (0 if unknown).
                Some(
                    h.seid
                        .and_then(|cp| self.up_seids.get(&cp).copied())
                        .unwrap_or(0),
                ),
            )),
            _ => None,
        };
        if let Some((msg, seid)) = reply {
            let bytes = msg.encode(h.sequence, seid);
            self.send(&bytes).await;
        }
    }
}

/// Snake-case PFCP message type name for metric labels
/// ("PFCP Heartbeat Request" -> "heartbeat_request").
pub fn snake(t: MessageType) -> String {
    let name = t.name();
    let name = name.strip_prefix("PFCP ").unwrap_or(name);
    name.to_ascii_lowercase().replace(' ', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names() {
        assert_eq!(snake(MessageType::HeartbeatRequest), "heartbeat_request");
        assert_eq!(
            snake(MessageType::SessionEstablishmentResponse),
            "session_establishment_response"
        );
    }
}
