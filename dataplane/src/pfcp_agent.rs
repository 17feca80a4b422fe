//! The PFCP user-plane function (TS 29.244, BBF TR-459): association, heartbeats and
//! session programming, as a sans-IO handler (`no_std`: the hosted `vbng-up` runs it on a
//! thread that owns the UDP socket, `crate::host::pfcp_runtime`; the unikernel on its
//! management interface).
//!
//! [`PfcpAgent::handle`] takes one datagram and returns the datagrams to send;
//! [`PfcpAgent::poll`] drives heartbeats toward the CP and CP loss detection. Session rules
//! are translated into [`SessionCommand`]s for the worker through a [`SessionBackend`]
//! (the worker's command queue at run time, a [`crate::pipeline::Pipeline`] in tests).
//!
//! Translation of one IPoE subscriber (the contract's "PFCP programming" section):
//! - access key: the uplink PDR (source interface Access): Ethernet Packet Filter MAC address
//!   (source), C-TAG and S-TAG VIDs (absent = 0), BBF Logical Port = access port index as
//!   ASCII decimal;
//! - IPv4: UE IP Address of the uplink (S/D = 0) or downlink (S/D = 1) PDR, which must agree;
//! - gate: open only if every FAR the PDRs use forwards (FORW, not DROP) and every QER they
//!   use has the gate of its direction open;
//! - rates ([`crate::session::SessionQos`]): the MBR of the QERs the uplink PDR uses gives the
//!   uplink policing rate (its UL field), the downlink PDR's QERs the downlink shaping rate
//!   (its DL field), kbit/s x 1000; 0 or no MBR = unlimited, the smallest of several wins.
//!   Update QER with an MBR changes the rate live (the worker keeps queued packets); an
//!   Update QER without MBR leaves it unchanged, so the CP lifts a limit with MBR ul=0, dl=0.
//!
//! ACLs: a PDR's Activate Predefined Rules names an ACL of the user plane's ACL file (see
//! [`translate`]'s docs); Update PDR activates and deactivates names live. An unknown name
//! is a Rule creation/modification failure (cause 73) and changes nothing.
//! [`PfcpAgent::replace_acls`] swaps in a reloaded ACL file (SIGHUP): names keep their ids,
//! so installed sessions follow the new rules at once; a file that drops an ACL some session
//! uses is refused as a whole.
//!
//! Session adoption (a CP that restarted re-programs the subscribers it recovers): an
//! establishment whose access key and IPv4 address both equal an existing session's takes
//! that session over instead of being refused. It gets a new UP F-SEID and keeps the new CP
//! F-SEID; the old UP SEID stops answering (Session context not found). The worker's entry is
//! updated in place under its unchanged worker id (the UP SEID the session was first
//! established with), so forwarding never stops and the usage counters carry over: the
//! final usage report covers the whole session. A partial overlap (same key, other address,
//! or the reverse) is still a Rule creation/modification failure (cause 73). An
//! establishment that repeats the CP F-SEID of a session programmed by the same CP
//! incarnation (a retry with a new sequence number) updates that session in place.
//!
//! Usage on demand: a Session Modification Request with Query URR IEs, or with QAURR set in
//! its PFCPSMReq-Flags, is answered with one usage report per queried URR (trigger IMMER),
//! read from the worker through [`SessionBackend::query`] without disturbing the session.
//! Volumes are cumulative since establishment, as in the deletion report, and UR-SEQN counts
//! each URR's reports (queries and the final one) from 0.
//!
//! A request is answered once: a retransmission (same sequence from the same peer) gets the
//! cached response (TS 29.244 section 6.4). Malformed requests get the matching Cause
//! (Mandatory IE missing, Mandatory IE incorrect, Session context not found...).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddr};

use hashbrown::HashMap;

use vbng_cups::pfcp::node::{
    AssociationConfig, AssociationEvent, AssociationState, ResponseCache, SequenceAllocator,
};
use vbng_cups::pfcp::{
    self, AssociationReleaseResponse, AssociationSetupResponse, BbfUpFunctionFeatures, Cause,
    FSeid, ForwardingParameters, HeartbeatRequest, HeartbeatResponse, Interface, Message,
    MessageType, NodeId, RecoveryTimeStamp, SessionDeletionResponse, SessionEstablishmentRequest,
    SessionEstablishmentResponse, SessionModificationRequest, SessionModificationResponse,
    UpFunctionFeatures, UserPlaneIpResourceInformation,
};
use vbng_cups::pfcp::{CreateUrr, MeasurementMethod, PfcpSmReqFlags, UsageReportTrigger};

use crate::acl::{AclError, AclSet, AclSpec, NO_ACL};
use crate::session::{SessionEntry, SessionId, UsageCounters};

/// Where the agent's session changes go.
pub trait SessionBackend {
    /// Installs or updates a session (counters of an existing session are kept). False if the
    /// worker could not take the command (queue full): the request is rejected.
    fn upsert(&mut self, entry: SessionEntry) -> bool;
    /// Removes a session and returns its final counters, or `None` if they did not arrive
    /// in time (the session is removed anyway).
    fn remove(&mut self, id: SessionId) -> Option<UsageCounters>;
    /// The current counters of a session, which keeps forwarding undisturbed; `None` if the
    /// session does not exist or the counters did not arrive in time.
    fn query(&mut self, id: SessionId) -> Option<UsageCounters>;
    /// Installs a new ACL set before any session change queued after this call. False if
    /// the worker could not take it.
    fn set_acls(&mut self, acls: Arc<AclSet>) -> bool;
}

/// Why [`PfcpAgent::replace_acls`] refused a new ACL file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclReplaceError {
    /// The file does not compile.
    #[error(transparent)]
    Invalid(#[from] AclError),
    /// The file no longer has an ACL that sessions use.
    #[error("ACL {name:?} is removed but {sessions} session(s) use it; keep it until they end")]
    InUse {
        /// The ACL's name.
        name: String,
        /// Sessions that use it.
        sessions: usize,
    },
    /// The worker did not take the new set.
    #[error("the worker did not take the new ACL set in time")]
    WorkerBusy,
}

/// Agent settings.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Our Node ID.
    pub node_id: NodeId,
    /// Address put in our F-SEIDs (the PFCP listen address).
    pub pfcp_ipv4: Ipv4Addr,
    /// GTP-U address advertised in User Plane IP Resource Information.
    pub gtpu_ipv4: Ipv4Addr,
    /// Number of access ports (valid Logical Port values are 0..n).
    pub access_ports: usize,
    /// Our Recovery Time Stamp (process start).
    pub recovery_time_stamp: RecoveryTimeStamp,
    /// Heartbeat interval toward the CP, milliseconds.
    pub heartbeat_interval_ms: u64,
    /// Missed heartbeats before the CP is declared lost.
    pub heartbeat_misses: u32,
}

/// Maps a codec error in a request to the Cause of the rejection. Pure.
pub fn cause_for(err: &pfcp::Error) -> Cause {
    match err {
        pfcp::Error::MissingIe { .. } => Cause::MandatoryIeMissing,
        pfcp::Error::IeOverrun { .. } | pfcp::Error::IeHeaderTruncated { .. } => {
            Cause::InvalidLength
        }
        _ => Cause::MandatoryIeIncorrect,
    }
}

/// The response type that answers a request type (None for non-requests).
fn response_type(req: MessageType) -> Option<MessageType> {
    use MessageType as T;
    Some(match req {
        T::HeartbeatRequest => T::HeartbeatResponse,
        T::AssociationSetupRequest => T::AssociationSetupResponse,
        T::AssociationReleaseRequest => T::AssociationReleaseResponse,
        T::SessionEstablishmentRequest => T::SessionEstablishmentResponse,
        T::SessionModificationRequest => T::SessionModificationResponse,
        T::SessionDeletionRequest => T::SessionDeletionResponse,
        _ => return None,
    })
}

/// One session as the agent knows it (keyed by its current UP SEID).
#[derive(Debug, Clone)]
struct AgentSession {
    cp_seid: u64,
    /// The CP incarnation ([`PfcpAgent::cp_epoch`]) that gave `cp_seid`.
    cp_epoch: u64,
    rules: SessionRules,
    /// The worker's entry; `entry.id` is the worker's session id, the UP SEID the session
    /// was first established with (unchanged when the session is adopted).
    entry: SessionEntry,
    /// UR-SEQN of the next report of each URR.
    ur_seqns: UrSeqns,
}

/// The association with the CP.
#[derive(Debug)]
struct Association {
    peer: SocketAddr,
    node_id: NodeId,
    state: AssociationState,
    heartbeat_seq: Option<u32>,
}

/// Agent counters (plain values; the runtime copies them to atomics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// Messages received.
    pub rx_messages: u64,
    /// Messages sent.
    pub tx_messages: u64,
    /// Requests rejected or datagrams dropped as malformed.
    pub rejected: u64,
    /// Retransmitted requests answered from the cache.
    pub duplicates: u64,
    /// CP losses detected.
    pub peer_lost: u64,
    /// Sessions taken over by an establishment for the same access key and address.
    pub adopted: u64,
    /// Session Modification Requests answered with immediate usage reports.
    pub usage_queries: u64,
}

/// The PFCP agent (sans-IO).
#[derive(Debug)]
pub struct PfcpAgent {
    cfg: AgentConfig,
    association: Option<Association>,
    sessions: HashMap<SessionId, AgentSession>,
    next_seid: u64,
    /// Incremented whenever the CP may have lost its SEID space (it restarted, or another CP
    /// node associated): CP SEIDs from an older epoch identify no request in flight.
    cp_epoch: u64,
    seq: SequenceAllocator,
    caches: HashMap<SocketAddr, ResponseCache>,
    events: Vec<AgentEvent>,
    stats: AgentStats,
    /// The ACLs sessions may name (the worker holds the same set).
    acls: Arc<AclSet>,
}

/// How long responses stay cached for retransmissions (T1 3 s x (N1 3 + 1) = 12 s, rounded).
const RESPONSE_CACHE_TTL_MS: u64 = 15_000;
/// Responses cached per peer.
const RESPONSE_CACHE_ENTRIES: usize = 4096;

/// Outcome of a request: the response and the SEID for its header.
type Reply = (Message, Option<u64>);

impl PfcpAgent {
    /// A fresh agent with no association and no sessions.
    pub fn new(cfg: AgentConfig) -> PfcpAgent {
        PfcpAgent {
            cfg,
            association: None,
            sessions: HashMap::new(),
            next_seid: 1,
            cp_epoch: 0,
            seq: SequenceAllocator::new(1),
            caches: HashMap::new(),
            events: Vec::new(),
            stats: AgentStats::default(),
            acls: Arc::new(AclSet::empty()),
        }
    }

    /// A fresh agent whose sessions may name the ACLs of `acls`, which the worker's pipeline
    /// must already hold ([`crate::pipeline::Pipeline::set_acls`]).
    pub fn with_acls(cfg: AgentConfig, acls: Arc<AclSet>) -> PfcpAgent {
        PfcpAgent {
            acls,
            ..PfcpAgent::new(cfg)
        }
    }

    /// The ACLs in force.
    pub fn acls(&self) -> &Arc<AclSet> {
        &self.acls
    }

    /// Replaces the ACLs by a new file's (`global` and `specs`), compiled so that names
    /// that stay keep their ids: every session follows its ACL's new rules at once. Refused
    /// as a whole, changing nothing, if the file does not compile or drops an ACL a session
    /// uses. Returns the new set.
    pub fn replace_acls(
        &mut self,
        global: Option<&str>,
        specs: &[AclSpec],
        backend: &mut dyn SessionBackend,
    ) -> Result<Arc<AclSet>, AclReplaceError> {
        let new = AclSet::build(global, specs, Some(&self.acls))?;
        let mut missing: Vec<(String, usize)> = Vec::new();
        for s in self.sessions.values().filter(|s| s.entry.acl != NO_ACL) {
            if new.name(s.entry.acl).is_none() {
                let name = self.acls.name(s.entry.acl).unwrap_or("?").to_string();
                match missing.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, count)) => *count += 1,
                    None => missing.push((name, 1)),
                }
            }
        }
        if let Some((name, sessions)) = missing.into_iter().next() {
            return Err(AclReplaceError::InUse { name, sessions });
        }
        let new = Arc::new(new);
        if !backend.set_acls(new.clone()) {
            return Err(AclReplaceError::WorkerBusy);
        }
        self.acls = new.clone();
        Ok(new)
    }

    /// True while a CP association exists and its heartbeats are answered.
    pub fn is_associated(&self) -> bool {
        self.association.as_ref().is_some_and(|a| a.state.is_up())
    }

    /// Number of sessions installed.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The worker entry of the session with UP SEID `seid`, if it exists. Its `id` is the
    /// worker's session id, which differs from `seid` once the session was adopted.
    pub fn session(&self, seid: SessionId) -> Option<&SessionEntry> {
        self.sessions.get(&seid).map(|s| &s.entry)
    }

    /// Counters.
    pub fn stats(&self) -> AgentStats {
        self.stats
    }

    /// Events since the last call, oldest first.
    pub fn drain_events(&mut self) -> Vec<AgentEvent> {
        core::mem::take(&mut self.events)
    }

    /// Handles one datagram from `from` at `now_ms`; returns the datagrams to send.
    pub fn handle(
        &mut self,
        now_ms: u64,
        from: SocketAddr,
        bytes: &[u8],
        backend: &mut dyn SessionBackend,
    ) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        let header = match pfcp::Header::parse(bytes) {
            Ok((h, _)) => h,
            Err(pfcp::Error::Version(v)) => {
                // Section 7.2.2.4.1 (header error: version): Version Not Supported Response.
                self.stats.rejected += 1;
                if bytes.len() >= 8 {
                    let seq = sequence_of_raw(bytes);
                    out.push((from, Message::VersionNotSupportedResponse.encode(seq, None)));
                    self.stats.tx_messages += 1;
                }
                self.events.push(AgentEvent::Malformed {
                    peer: from,
                    reason: format!("PFCP version {v}"),
                });
                return out;
            }
            Err(e) => {
                self.stats.rejected += 1;
                self.events.push(AgentEvent::Malformed {
                    peer: from,
                    reason: e.to_string(),
                });
                return out;
            }
        };
        self.stats.rx_messages += 1;
        if let Some(a) = self.association.as_mut().filter(|a| a.peer == from) {
            a.state.on_peer_activity();
        }

        let is_request = header.msg_type.is_request();
        if is_request {
            let cache = self.caches.entry(from).or_insert_with(|| {
                ResponseCache::new(RESPONSE_CACHE_TTL_MS, RESPONSE_CACHE_ENTRIES)
            });
            if let Some(cached) = cache.get(now_ms, header.sequence) {
                self.stats.duplicates += 1;
                self.stats.tx_messages += 1;
                out.push((from, cached.to_vec()));
                return out;
            }
        }

        let reply = match Message::parse(bytes) {
            Ok((_, msg)) => self.dispatch(now_ms, from, &header, msg, backend),
            Err(e) => self.reject_malformed(from, &header, &e),
        };
        if let Some((msg, seid)) = reply {
            let encoded = msg.encode(header.sequence, seid);
            if is_request && let Some(cache) = self.caches.get_mut(&from) {
                cache.insert(now_ms, header.sequence, encoded.clone());
            }
            self.stats.tx_messages += 1;
            out.push((from, encoded));
        }
        out
    }

    /// Heartbeats toward the CP and loss detection; call every few hundred milliseconds.
    pub fn poll(&mut self, now_ms: u64) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        let Some(a) = self.association.as_mut() else {
            return out;
        };
        match a.state.poll(now_ms) {
            Some(AssociationEvent::SendHeartbeat) => {
                let seq = self.seq.next();
                a.heartbeat_seq = Some(seq);
                a.state.heartbeat_sent(now_ms);
                let msg = Message::HeartbeatRequest(HeartbeatRequest {
                    recovery_time_stamp: self.cfg.recovery_time_stamp,
                });
                out.push((a.peer, msg.encode(seq, None)));
                self.stats.tx_messages += 1;
            }
            Some(AssociationEvent::PeerLost) => {
                self.stats.peer_lost += 1;
                self.events.push(AgentEvent::PeerLost { peer: a.peer });
            }
            Some(AssociationEvent::PeerRestarted { .. }) | None => {}
        }
        out
    }

    fn reject_malformed(
        &mut self,
        from: SocketAddr,
        header: &pfcp::Header,
        err: &pfcp::Error,
    ) -> Option<Reply> {
        self.stats.rejected += 1;
        let cause = cause_for(err);
        let Some(resp_type) = response_type(header.msg_type) else {
            self.events.push(AgentEvent::Malformed {
                peer: from,
                reason: err.to_string(),
            });
            return None;
        };
        self.events.push(AgentEvent::Rejected {
            peer: from,
            msg_type: header.msg_type,
            cause,
            reason: err.to_string(),
        });
        let cp_seid = header
            .seid
            .and_then(|s| self.sessions.get(&s))
            .map(|s| s.cp_seid);
        Some(self.error_response(resp_type, cause, cp_seid.or(Some(0))))
    }

    /// A response of type `resp_type` carrying only `cause` (plus what the type requires).
    fn error_response(&self, resp_type: MessageType, cause: Cause, seid: Option<u64>) -> Reply {
        use MessageType as T;
        let msg = match resp_type {
            T::HeartbeatResponse => Message::HeartbeatResponse(HeartbeatResponse {
                recovery_time_stamp: self.cfg.recovery_time_stamp,
            }),
            T::AssociationSetupResponse => {
                Message::AssociationSetupResponse(AssociationSetupResponse {
                    node_id: self.cfg.node_id.clone(),
                    cause,
                    recovery_time_stamp: self.cfg.recovery_time_stamp,
                    ..AssociationSetupResponse::default()
                })
            }
            T::AssociationReleaseResponse => {
                Message::AssociationReleaseResponse(AssociationReleaseResponse {
                    node_id: self.cfg.node_id.clone(),
                    cause,
                })
            }
            T::SessionEstablishmentResponse => {
                Message::SessionEstablishmentResponse(SessionEstablishmentResponse {
                    node_id: self.cfg.node_id.clone(),
                    cause,
                    ..SessionEstablishmentResponse::default()
                })
            }
            T::SessionModificationResponse => {
                Message::SessionModificationResponse(SessionModificationResponse {
                    cause,
                    ..SessionModificationResponse::default()
                })
            }
            _ => Message::SessionDeletionResponse(SessionDeletionResponse {
                cause,
                ..SessionDeletionResponse::default()
            }),
        };
        (msg, seid)
    }

    fn reject(
        &mut self,
        from: SocketAddr,
        req: MessageType,
        cause: Cause,
        reason: String,
        seid: Option<u64>,
    ) -> Option<Reply> {
        self.stats.rejected += 1;
        self.events.push(AgentEvent::Rejected {
            peer: from,
            msg_type: req,
            cause,
            reason,
        });
        response_type(req).map(|t| self.error_response(t, cause, seid))
    }

    fn dispatch(
        &mut self,
        now_ms: u64,
        from: SocketAddr,
        header: &pfcp::Header,
        msg: Message,
        backend: &mut dyn SessionBackend,
    ) -> Option<Reply> {
        match msg {
            Message::HeartbeatRequest(req) => {
                if let Some(a) = self.association.as_mut().filter(|a| a.peer == from)
                    && let Some(AssociationEvent::PeerRestarted { .. }) =
                        a.state.on_heartbeat(now_ms, req.recovery_time_stamp)
                {
                    self.peer_restarted(from);
                }
                Some((
                    Message::HeartbeatResponse(HeartbeatResponse {
                        recovery_time_stamp: self.cfg.recovery_time_stamp,
                    }),
                    None,
                ))
            }
            Message::HeartbeatResponse(resp) => {
                if let Some(a) = self
                    .association
                    .as_mut()
                    .filter(|a| a.peer == from && a.heartbeat_seq == Some(header.sequence))
                {
                    a.heartbeat_seq = None;
                    if let Some(AssociationEvent::PeerRestarted { .. }) =
                        a.state.on_heartbeat(now_ms, resp.recovery_time_stamp)
                    {
                        self.peer_restarted(from);
                    }
                }
                None
            }
            Message::AssociationSetupRequest(req) => {
                // Section 6.2.6.2.2: a new setup from a known Node ID replaces the old
                // association. Sessions are kept (vbng's CP recovers them; forwarding goes on).
                let mut state = AssociationState::new(AssociationConfig {
                    heartbeat_interval_ms: self.cfg.heartbeat_interval_ms,
                    max_missed: self.cfg.heartbeat_misses,
                });
                match self.association.take().filter(|o| o.node_id == req.node_id) {
                    Some(old) => state = old.state,
                    // Another CP node (or the first): its SEIDs are a new space.
                    None => self.cp_epoch += 1,
                }
                if let Some(AssociationEvent::PeerRestarted { .. }) =
                    state.established(now_ms, req.recovery_time_stamp)
                {
                    self.peer_restarted(from);
                }
                self.events.push(AgentEvent::Associated {
                    peer: from,
                    node_id: node_id_text(&req.node_id),
                    sessions_kept: self.sessions.len(),
                });
                self.association = Some(Association {
                    peer: from,
                    node_id: req.node_id,
                    state,
                    heartbeat_seq: None,
                });
                Some((
                    Message::AssociationSetupResponse(AssociationSetupResponse {
                        node_id: self.cfg.node_id.clone(),
                        cause: Cause::RequestAccepted,
                        recovery_time_stamp: self.cfg.recovery_time_stamp,
                        up_function_features: Some(UpFunctionFeatures::default()),
                        cp_function_features: None,
                        bbf_up_function_features: Some(BbfUpFunctionFeatures::IPOE),
                        user_plane_ip_resources: vec![UserPlaneIpResourceInformation {
                            ipv4: Some(self.cfg.gtpu_ipv4),
                            source_interface: Some(Interface::Access),
                            ..UserPlaneIpResourceInformation::default()
                        }],
                    }),
                    None,
                ))
            }
            Message::AssociationReleaseRequest(req) => {
                let ours = self
                    .association
                    .as_ref()
                    .is_some_and(|a| a.node_id == req.node_id);
                if !ours {
                    return self.reject(
                        from,
                        header.msg_type,
                        Cause::NoEstablishedPfcpAssociation,
                        format!("no association with node {}", node_id_text(&req.node_id)),
                        None,
                    );
                }
                self.association = None;
                // Section 6.2.8.2: the UP deletes the sessions of a released association.
                let removed = self.sessions.len();
                for (_, s) in self.sessions.drain() {
                    backend.remove(s.entry.id);
                }
                self.events.push(AgentEvent::Released {
                    peer: from,
                    sessions_removed: removed,
                });
                Some((
                    Message::AssociationReleaseResponse(AssociationReleaseResponse {
                        node_id: self.cfg.node_id.clone(),
                        cause: Cause::RequestAccepted,
                    }),
                    None,
                ))
            }
            Message::SessionEstablishmentRequest(req) => self.establish(from, header, req, backend),
            Message::SessionModificationRequest(req) => self.modify(from, header, req, backend),
            Message::SessionDeletionRequest(_) => self.delete(from, header, backend),
            Message::SessionReportResponse(_)
            | Message::AssociationSetupResponse(_)
            | Message::AssociationReleaseResponse(_)
            | Message::SessionEstablishmentResponse(_)
            | Message::SessionModificationResponse(_)
            | Message::SessionDeletionResponse(_)
            | Message::VersionNotSupportedResponse => None,
            Message::SessionReportRequest(_) => self.reject(
                from,
                header.msg_type,
                Cause::ServiceNotSupported,
                "a user plane does not accept Session Report Requests".into(),
                Some(0),
            ),
        }
    }

    /// The CP restarted: its SEIDs from before mean nothing now.
    fn peer_restarted(&mut self, peer: SocketAddr) {
        self.cp_epoch += 1;
        self.events.push(AgentEvent::PeerRestarted { peer });
    }

    /// Checks that no other session (worker id other than `entry.id`) owns `entry`'s access
    /// key or address; the error names the other session's UP SEID.
    fn check_conflicts(&self, entry: &SessionEntry) -> Result<(), RuleError> {
        for (seid, s) in self.sessions.iter().filter(|(_, s)| s.entry.id != entry.id) {
            if s.entry.access == entry.access {
                return Err(RuleError::Conflict {
                    other: *seid,
                    what: "access key",
                });
            }
            if s.entry.ipv4 == entry.ipv4 {
                return Err(RuleError::Conflict {
                    other: *seid,
                    what: "IPv4 address",
                });
            }
            let theirs: Vec<_> = s.entry.ipv6.prefixes().collect();
            if entry.ipv6.prefixes().any(|p| theirs.contains(&p)) {
                return Err(RuleError::Conflict {
                    other: *seid,
                    what: "IPv6 prefix",
                });
            }
        }
        Ok(())
    }

    fn establish(
        &mut self,
        from: SocketAddr,
        header: &pfcp::Header,
        req: SessionEstablishmentRequest,
        backend: &mut dyn SessionBackend,
    ) -> Option<Reply> {
        let cp_seid = req.cp_f_seid.seid;
        let associated = self
            .association
            .as_ref()
            .is_some_and(|a| a.node_id == req.node_id);
        if !associated {
            return self.reject(
                from,
                header.msg_type,
                Cause::NoEstablishedPfcpAssociation,
                format!("no association with node {}", node_id_text(&req.node_id)),
                Some(cp_seid),
            );
        }
        let rules = SessionRules {
            pdrs: req.create_pdrs,
            fars: req.create_fars,
            urrs: req.create_urrs,
            qers: req.create_qers,
        };
        let mut entry = match derive_entry(0, &rules, self.cfg.access_ports, &self.acls) {
            Ok(e) => e,
            Err(e) => return self.reject_rules(from, header, e, cp_seid),
        };
        // Which session this establishment is about:
        // - the one with the same access key AND address: a retry of the request that created
        //   it (same CP SEID from the same CP incarnation) updates it under its UP SEID;
        //   anything else (a restarted CP re-programming the subscriber) adopts it under a
        //   new UP SEID;
        // - else the one with the same CP SEID from the same CP incarnation (a CP that lost
        //   our answer and retried with a new sequence number) is updated in place;
        // - else a new session. Partial overlaps with any session fail the conflict check.
        let epoch = self.cp_epoch;
        let same_cp_request = |s: &AgentSession| s.cp_seid == cp_seid && s.cp_epoch == epoch;
        let same_subscriber = self
            .sessions
            .iter()
            .find(|(_, s)| s.entry.access == entry.access && s.entry.ipv4 == entry.ipv4)
            .map(|(seid, s)| (*seid, s.entry.id, same_cp_request(s)));
        let (seid, worker_id, adopted_from) = match same_subscriber {
            Some((seid, worker_id, true)) => (seid, worker_id, None),
            Some((old, worker_id, false)) => (self.next_seid, worker_id, Some(old)),
            None => match self.sessions.iter().find(|(_, s)| same_cp_request(s)) {
                Some((seid, s)) => (*seid, s.entry.id, None),
                None => (self.next_seid, self.next_seid, None),
            },
        };
        entry.id = worker_id;
        if let Err(e) = self.check_conflicts(&entry) {
            return self.reject_rules(from, header, e, cp_seid);
        }
        // An adopted session's worker entry is updated in place (same worker id): it keeps
        // forwarding and keeps its counters.
        if !backend.upsert(entry) {
            return self.reject(
                from,
                header.msg_type,
                Cause::PfcpEntityInCongestion,
                "worker command queue full".into(),
                Some(cp_seid),
            );
        }
        if seid == self.next_seid {
            self.next_seid += 1;
        }
        if let Some(old) = adopted_from {
            self.sessions.remove(&old);
        }
        self.sessions.insert(
            seid,
            AgentSession {
                cp_seid,
                cp_epoch: epoch,
                rules,
                entry,
                ur_seqns: UrSeqns::default(),
            },
        );
        self.events.push(match adopted_from {
            Some(old_seid) => {
                self.stats.adopted += 1;
                AgentEvent::SessionAdopted {
                    old_seid,
                    new_seid: seid,
                    cp_seid,
                    access: entry.access,
                    ipv4: entry.ipv4,
                }
            }
            None => AgentEvent::SessionEstablished {
                seid,
                access: entry.access,
                ipv4: entry.ipv4,
            },
        });
        Some((
            Message::SessionEstablishmentResponse(SessionEstablishmentResponse {
                node_id: self.cfg.node_id.clone(),
                cause: Cause::RequestAccepted,
                up_f_seid: Some(FSeid {
                    seid,
                    ipv4: Some(self.cfg.pfcp_ipv4),
                    ipv6: None,
                }),
                created_pdrs: Vec::new(),
            }),
            Some(cp_seid),
        ))
    }

    /// Rejects a request whose rules cannot be installed (cause 73).
    fn reject_rules(
        &mut self,
        from: SocketAddr,
        header: &pfcp::Header,
        err: RuleError,
        cp_seid: u64,
    ) -> Option<Reply> {
        self.reject(
            from,
            header.msg_type,
            Cause::RuleCreationModificationFailure,
            err.to_string(),
            Some(cp_seid),
        )
    }

    fn modify(
        &mut self,
        from: SocketAddr,
        header: &pfcp::Header,
        req: SessionModificationRequest,
        backend: &mut dyn SessionBackend,
    ) -> Option<Reply> {
        let seid = header.seid.unwrap_or(0);
        let Some(session) = self.sessions.get(&seid) else {
            return self.reject(
                from,
                header.msg_type,
                Cause::SessionContextNotFound,
                format!("no session with UP SEID {seid:#x}"),
                Some(0),
            );
        };
        // A request that only asks for usage (the periodic accounting query) is not worth a
        // log line per session.
        let query_only = req.queries_usage() && {
            let mut rest = req.clone();
            rest.flags = None;
            rest.query_urrs.clear();
            rest == SessionModificationRequest::default()
        };
        let worker_id = session.entry.id;
        let (cp_seid, cp_epoch) = match req.cp_f_seid {
            Some(f) => (f.seid, self.cp_epoch),
            None => (session.cp_seid, session.cp_epoch),
        };
        let mut rules = session.rules.clone();
        rules.pdrs.retain(|p| !req.remove_pdrs.contains(&p.pdr_id));
        rules.fars.retain(|f| !req.remove_fars.contains(&f.far_id));
        rules.urrs.retain(|u| !req.remove_urrs.contains(&u.urr_id));
        rules.qers.retain(|q| !req.remove_qers.contains(&q.qer_id));
        fn upsert_by<T>(v: &mut Vec<T>, new: Vec<T>, key: impl Fn(&T) -> u32) {
            for n in new {
                match v.iter_mut().find(|x| key(x) == key(&n)) {
                    Some(slot) => *slot = n,
                    None => v.push(n),
                }
            }
        }
        upsert_by(&mut rules.pdrs, req.create_pdrs, |p| u32::from(p.pdr_id));
        upsert_by(&mut rules.fars, req.create_fars, |f| f.far_id);
        upsert_by(&mut rules.urrs, req.create_urrs, |u| u.urr_id);
        upsert_by(&mut rules.qers, req.create_qers, |q| q.qer_id);
        for u in &req.update_fars {
            let Some(far) = rules.fars.iter_mut().find(|f| f.far_id == u.far_id) else {
                return self.reject(
                    from,
                    header.msg_type,
                    Cause::RuleCreationModificationFailure,
                    format!("Update FAR {} names no existing FAR", u.far_id),
                    Some(cp_seid),
                );
            };
            if let Some(a) = u.apply_action {
                far.apply_action = a;
            }
            // Update Forwarding Parameters carries only what changes (TS 29.244 7.5.4.3):
            // an optional IE it leaves out keeps its value (a PPPoE session's encapsulation
            // and MTU survive an update that only names the destination).
            if let Some(fp) = &u.update_forwarding_parameters {
                let old = far.forwarding_parameters.take().unwrap_or_default();
                far.forwarding_parameters = Some(ForwardingParameters {
                    destination_interface: fp.destination_interface,
                    network_instance: fp.network_instance.clone().or(old.network_instance),
                    outer_header_creation: fp.outer_header_creation.or(old.outer_header_creation),
                    bbf_outer_header_creation: fp
                        .bbf_outer_header_creation
                        .or(old.bbf_outer_header_creation),
                    bbf_mtu: fp.bbf_mtu.or(old.bbf_mtu),
                });
            }
        }
        for u in &req.update_pdrs {
            let Some(pdr) = rules.pdrs.iter_mut().find(|p| p.pdr_id == u.pdr_id) else {
                return self.reject(
                    from,
                    header.msg_type,
                    Cause::RuleCreationModificationFailure,
                    format!("Update PDR {} names no existing PDR", u.pdr_id),
                    Some(cp_seid),
                );
            };
            let active = &mut pdr.activate_predefined_rules;
            active.retain(|n| !u.deactivate_predefined_rules.contains(n));
            for n in &u.activate_predefined_rules {
                if !active.contains(n) {
                    active.push(n.clone());
                }
            }
        }
        for u in &req.update_qers {
            let Some(qer) = rules.qers.iter_mut().find(|q| q.qer_id == u.qer_id) else {
                return self.reject(
                    from,
                    header.msg_type,
                    Cause::RuleCreationModificationFailure,
                    format!("Update QER {} names no existing QER", u.qer_id),
                    Some(cp_seid),
                );
            };
            if let Some(g) = u.gate_status {
                qer.gate_status = g;
            }
            if u.mbr.is_some() {
                qer.mbr = u.mbr;
            }
        }
        let entry = match derive_entry(worker_id, &rules, self.cfg.access_ports, &self.acls)
            .and_then(|e| self.check_conflicts(&e).map(|()| e))
        {
            Ok(e) => e,
            Err(e) => return self.reject_rules(from, header, e, cp_seid),
        };
        // Query URR (Table 7.5.4.10-1) / QAURR (8.2.31): immediate reports of the URRs the
        // session has after this modification, read before anything changes so that a worker
        // that does not answer leaves the session as it was.
        let queried: Vec<&CreateUrr> =
            if req.flags.is_some_and(|f| f.contains(PfcpSmReqFlags::QAURR)) {
                rules.urrs.iter().collect()
            } else {
                let mut ids = req.query_urrs.clone();
                ids.sort_unstable();
                ids.dedup();
                let mut found = Vec::with_capacity(ids.len());
                for id in ids {
                    let Some(urr) = rules.urrs.iter().find(|u| u.urr_id == id) else {
                        return self.reject(
                            from,
                            header.msg_type,
                            Cause::RuleCreationModificationFailure,
                            format!("Query URR {id} names no URR of the session"),
                            Some(cp_seid),
                        );
                    };
                    found.push(urr);
                }
                found
            };
        let mut ur_seqns = self.sessions[&seid].ur_seqns.clone();
        let usage_reports = if queried.is_empty() {
            Vec::new()
        } else {
            let Some(counters) = backend.query(worker_id) else {
                return self.reject(
                    from,
                    header.msg_type,
                    Cause::PfcpEntityInCongestion,
                    "worker did not report the session's counters in time".into(),
                    Some(cp_seid),
                );
            };
            usage_reports(queried, &counters, UsageReportTrigger::IMMER, &mut ur_seqns)
        };
        let changed = entry != self.sessions[&seid].entry;
        if changed && !backend.upsert(entry) {
            return self.reject(
                from,
                header.msg_type,
                Cause::PfcpEntityInCongestion,
                "worker command queue full".into(),
                Some(cp_seid),
            );
        }
        if let Some(s) = self.sessions.get_mut(&seid) {
            s.rules = rules;
            s.entry = entry;
            s.cp_seid = cp_seid;
            s.cp_epoch = cp_epoch;
            s.ur_seqns = ur_seqns;
        }
        if !usage_reports.is_empty() {
            self.stats.usage_queries += 1;
        }
        if !query_only {
            self.events.push(AgentEvent::SessionModified {
                seid,
                gate_open: entry.gate_open,
            });
        }
        Some((
            Message::SessionModificationResponse(SessionModificationResponse {
                cause: Cause::RequestAccepted,
                usage_reports,
            }),
            Some(cp_seid),
        ))
    }

    fn delete(
        &mut self,
        from: SocketAddr,
        header: &pfcp::Header,
        backend: &mut dyn SessionBackend,
    ) -> Option<Reply> {
        let seid = header.seid.unwrap_or(0);
        let Some(mut session) = self.sessions.remove(&seid) else {
            return self.reject(
                from,
                header.msg_type,
                Cause::SessionContextNotFound,
                format!("no session with UP SEID {seid:#x}"),
                Some(0),
            );
        };
        let counters = backend.remove(session.entry.id);
        // Final reports of the volume-measuring URRs, numbered after any immediate reports.
        let usage_reports = counters
            .map(|c| {
                usage_reports(
                    session
                        .rules
                        .urrs
                        .iter()
                        .filter(|u| u.measurement_method.contains(MeasurementMethod::VOLUM)),
                    &c,
                    UsageReportTrigger::TERMR,
                    &mut session.ur_seqns,
                )
            })
            .unwrap_or_default();
        self.events
            .push(AgentEvent::SessionDeleted { seid, counters });
        Some((
            Message::SessionDeletionResponse(SessionDeletionResponse {
                cause: Cause::RequestAccepted,
                usage_reports,
            }),
            Some(session.cp_seid),
        ))
    }
}

/// The 24-bit sequence number of a raw PFCP header (for answers to unparsable headers).
fn sequence_of_raw(bytes: &[u8]) -> u32 {
    let off = if bytes.first().is_some_and(|f| f & 0x01 != 0) {
        12
    } else {
        4
    };
    match bytes.get(off..off + 3) {
        Some(s) => u32::from(s[0]) << 16 | u32::from(s[1]) << 8 | u32::from(s[2]),
        None => 0,
    }
}

fn node_id_text(n: &NodeId) -> String {
    match n {
        NodeId::Ipv4(a) => a.to_string(),
        NodeId::Ipv6(a) => a.to_string(),
        NodeId::Fqdn(s) => s.clone(),
    }
}

mod event;
mod translate;

pub use event::AgentEvent;
pub use translate::{
    PPPOE_DEFAULT_MTU, RuleError, SessionRules, UrSeqns, apply_mbr, deletion_reports, derive_entry,
    parse_logical_port, usage_reports,
};

#[cfg(all(test, feature = "std"))]
mod tests;
