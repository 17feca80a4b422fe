//! PFCP messages (TS 29.244 section 7): one struct per message vbng sends or
//! receives, [`Message::parse`] / [`Message::encode`], and bundling of several
//! messages in one datagram (section 7.2.1A, the FO flag).
//!
//! Unknown or unmodelled IEs are skipped and counted ([`ParseStats`]); a
//! missing mandatory IE is [`Error::MissingIe`].

use alloc::vec::Vec;

use super::Error;
use super::header::{Header, MessageType};
use super::ie::bbf::{BBF_ENTERPRISE_ID, BbfUpFunctionFeatures};
use super::ie::ids;
use super::ie::node::{
    Cause, CpFunctionFeatures, FSeid, NodeId, RecoveryTimeStamp, UpFunctionFeatures,
    UserPlaneIpResourceInformation,
};
use super::ie::report::{PfcpSmReqFlags, ReportType, UsageReport};
use super::ie::rules::{
    CreateFar, CreatePdr, CreateQer, CreateUrr, CreatedPdr, UpdateFar, UpdatePdr, UpdateQer,
    emit_remove, parse_remove,
};
use super::ie::tlv::{Ctx, IeIter, RawIe, Writer, required};

/// Heartbeat Request (7.4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeartbeatRequest {
    /// Sender's start time.
    pub recovery_time_stamp: RecoveryTimeStamp,
}

/// Heartbeat Response (7.4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeartbeatResponse {
    /// Responder's start time.
    pub recovery_time_stamp: RecoveryTimeStamp,
}

/// Association Setup Request (7.4.4.1); vbng's control plane sends it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssociationSetupRequest {
    /// Sender's Node ID.
    pub node_id: NodeId,
    /// Sender's start time.
    pub recovery_time_stamp: RecoveryTimeStamp,
    /// Present when a user plane sends the request.
    pub up_function_features: Option<UpFunctionFeatures>,
    /// Present when a control plane sends the request.
    pub cp_function_features: Option<CpFunctionFeatures>,
    /// BBF UP Function Features (TR-459), when a user plane sends the request.
    pub bbf_up_function_features: Option<BbfUpFunctionFeatures>,
}

/// Association Setup Response (7.4.4.2); vbng's user plane sends it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssociationSetupResponse {
    /// Responder's Node ID.
    pub node_id: NodeId,
    /// Outcome.
    pub cause: Cause,
    /// Responder's start time.
    pub recovery_time_stamp: RecoveryTimeStamp,
    /// Present when a user plane responds.
    pub up_function_features: Option<UpFunctionFeatures>,
    /// Present when a control plane responds.
    pub cp_function_features: Option<CpFunctionFeatures>,
    /// BBF UP Function Features (TR-459), when a user plane responds.
    pub bbf_up_function_features: Option<BbfUpFunctionFeatures>,
    /// GTP-U endpoints of the user plane (vbng: the control-packet redirect tunnel).
    pub user_plane_ip_resources: Vec<UserPlaneIpResourceInformation>,
}

/// Association Release Request (7.4.4.5).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssociationReleaseRequest {
    /// Sender's Node ID.
    pub node_id: NodeId,
}

/// Association Release Response (7.4.4.6).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssociationReleaseResponse {
    /// Responder's Node ID.
    pub node_id: NodeId,
    /// Outcome.
    pub cause: Cause,
}

/// Session Establishment Request (7.5.2); the header SEID is 0.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionEstablishmentRequest {
    /// Control plane's Node ID.
    pub node_id: NodeId,
    /// Control plane's SEID and address; the user plane sends to this SEID.
    pub cp_f_seid: FSeid,
    /// At least one PDR.
    pub create_pdrs: Vec<CreatePdr>,
    /// At least one FAR.
    pub create_fars: Vec<CreateFar>,
    /// Usage reporting rules.
    pub create_urrs: Vec<CreateUrr>,
    /// QoS enforcement rules.
    pub create_qers: Vec<CreateQer>,
}

/// Session Establishment Response (7.5.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionEstablishmentResponse {
    /// User plane's Node ID.
    pub node_id: NodeId,
    /// Outcome.
    pub cause: Cause,
    /// User plane's SEID and address (when accepted).
    pub up_f_seid: Option<FSeid>,
    /// Resources the user plane allocated per PDR.
    pub created_pdrs: Vec<CreatedPdr>,
}

/// Session Modification Request (7.5.4); the header carries the user plane SEID.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionModificationRequest {
    /// New control plane F-SEID (CP change only).
    pub cp_f_seid: Option<FSeid>,
    /// PDR IDs to remove.
    pub remove_pdrs: Vec<u16>,
    /// FAR IDs to remove.
    pub remove_fars: Vec<u32>,
    /// URR IDs to remove.
    pub remove_urrs: Vec<u32>,
    /// QER IDs to remove.
    pub remove_qers: Vec<u32>,
    /// PDRs to add.
    pub create_pdrs: Vec<CreatePdr>,
    /// FARs to add.
    pub create_fars: Vec<CreateFar>,
    /// URRs to add.
    pub create_urrs: Vec<CreateUrr>,
    /// QERs to add.
    pub create_qers: Vec<CreateQer>,
    /// PDR changes (which predefined rules apply, e.g. a new ACL).
    pub update_pdrs: Vec<UpdatePdr>,
    /// FAR changes (apply action, forwarding parameters).
    pub update_fars: Vec<UpdateFar>,
    /// QER changes (gate, MBR).
    pub update_qers: Vec<UpdateQer>,
    /// PFCPSMReq-Flags; QAURR asks for an immediate report of every URR.
    pub flags: Option<PfcpSmReqFlags>,
    /// URR IDs to report on now (one Query URR IE each, Table 7.5.4.10-1);
    /// the response carries their usage reports with trigger IMMER.
    pub query_urrs: Vec<u32>,
}

impl SessionModificationRequest {
    /// True when the request asks for usage reports (Query URR or QAURR).
    pub fn queries_usage(&self) -> bool {
        !self.query_urrs.is_empty()
            || self
                .flags
                .is_some_and(|f| f.contains(PfcpSmReqFlags::QAURR))
    }
}

/// Session Modification Response (7.5.5).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionModificationResponse {
    /// Outcome.
    pub cause: Cause,
    /// Immediate reports of queried URRs, and final reports of removed URRs
    /// (sent as IE 78).
    pub usage_reports: Vec<UsageReport>,
}

/// Session Deletion Request (7.5.6): no IEs; the header carries the user plane SEID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionDeletionRequest {}

/// Session Deletion Response (7.5.7).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionDeletionResponse {
    /// Outcome.
    pub cause: Cause,
    /// Final usage of every URR of the session (sent as IE 79).
    pub usage_reports: Vec<UsageReport>,
}

/// Session Report Request (7.5.8), user plane to control plane.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionReportRequest {
    /// What is reported (USAR for usage reports).
    pub report_type: ReportType,
    /// Usage reports (sent as IE 80).
    pub usage_reports: Vec<UsageReport>,
}

/// Session Report Response (7.5.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionReportResponse {
    /// Outcome.
    pub cause: Cause,
}

/// A PFCP message vbng understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Type 1.
    HeartbeatRequest(HeartbeatRequest),
    /// Type 2.
    HeartbeatResponse(HeartbeatResponse),
    /// Type 5.
    AssociationSetupRequest(AssociationSetupRequest),
    /// Type 6.
    AssociationSetupResponse(AssociationSetupResponse),
    /// Type 9.
    AssociationReleaseRequest(AssociationReleaseRequest),
    /// Type 10.
    AssociationReleaseResponse(AssociationReleaseResponse),
    /// Type 11: the reply to a message with an unsupported version (no IEs).
    VersionNotSupportedResponse,
    /// Type 50.
    SessionEstablishmentRequest(SessionEstablishmentRequest),
    /// Type 51.
    SessionEstablishmentResponse(SessionEstablishmentResponse),
    /// Type 52.
    SessionModificationRequest(SessionModificationRequest),
    /// Type 53.
    SessionModificationResponse(SessionModificationResponse),
    /// Type 54.
    SessionDeletionRequest(SessionDeletionRequest),
    /// Type 55.
    SessionDeletionResponse(SessionDeletionResponse),
    /// Type 56.
    SessionReportRequest(SessionReportRequest),
    /// Type 57.
    SessionReportResponse(SessionReportResponse),
}

/// Parse statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParseStats {
    /// IEs skipped because this codec does not model them (any nesting level).
    pub skipped_ies: u32,
}

/// Feeds every IE of `data` to `each`, which returns whether it used the IE;
/// unused IEs are counted as skipped.
fn parse_items(
    data: &[u8],
    ctx: &mut Ctx,
    mut each: impl FnMut(RawIe<'_>, &mut Ctx) -> Result<bool, Error>,
) -> Result<(), Error> {
    for ie in IeIter::new(data) {
        let ie = ie?;
        if !each(ie, ctx)? {
            ctx.skipped += 1;
        }
    }
    Ok(())
}

fn is(ie: &RawIe<'_>, t: u16) -> bool {
    ie.enterprise_id.is_none() && ie.ie_type == t
}

fn is_bbf(ie: &RawIe<'_>, t: u16) -> bool {
    ie.enterprise_id == Some(BBF_ENTERPRISE_ID) && ie.ie_type == t
}

fn missing(ie: u16, name: &'static str, context: &'static str) -> Error {
    Error::MissingIe { ie, name, context }
}

impl Message {
    /// The message type.
    pub fn msg_type(&self) -> MessageType {
        match self {
            Message::HeartbeatRequest(_) => MessageType::HeartbeatRequest,
            Message::HeartbeatResponse(_) => MessageType::HeartbeatResponse,
            Message::AssociationSetupRequest(_) => MessageType::AssociationSetupRequest,
            Message::AssociationSetupResponse(_) => MessageType::AssociationSetupResponse,
            Message::AssociationReleaseRequest(_) => MessageType::AssociationReleaseRequest,
            Message::AssociationReleaseResponse(_) => MessageType::AssociationReleaseResponse,
            Message::VersionNotSupportedResponse => MessageType::VersionNotSupportedResponse,
            Message::SessionEstablishmentRequest(_) => MessageType::SessionEstablishmentRequest,
            Message::SessionEstablishmentResponse(_) => MessageType::SessionEstablishmentResponse,
            Message::SessionModificationRequest(_) => MessageType::SessionModificationRequest,
            Message::SessionModificationResponse(_) => MessageType::SessionModificationResponse,
            Message::SessionDeletionRequest(_) => MessageType::SessionDeletionRequest,
            Message::SessionDeletionResponse(_) => MessageType::SessionDeletionResponse,
            Message::SessionReportRequest(_) => MessageType::SessionReportRequest,
            Message::SessionReportResponse(_) => MessageType::SessionReportResponse,
        }
    }

    /// Parses the single PFCP message in `bytes` (a UDP payload). Octets after
    /// the message are an error unless its FO flag is set (then they are left
    /// for [`parse_all`]).
    pub fn parse(bytes: &[u8]) -> Result<(Header, Message), Error> {
        Self::parse_counting(bytes).map(|(h, m, _)| (h, m))
    }

    /// As [`Message::parse`], also returning how many IEs were skipped.
    pub fn parse_counting(bytes: &[u8]) -> Result<(Header, Message, ParseStats), Error> {
        let (header, framing) = Header::parse(bytes)?;
        if !framing.follow_on && bytes.len() > framing.message_len {
            return Err(Error::TrailingBytes {
                found: bytes.len() - framing.message_len,
            });
        }
        let body = &bytes[framing.header_len..framing.message_len];
        let mut ctx = Ctx::default();
        let msg = Self::parse_body(header.msg_type, body, &mut ctx)?;
        Ok((
            header,
            msg,
            ParseStats {
                skipped_ies: ctx.skipped,
            },
        ))
    }

    /// Parses the IEs of a message of type `msg_type`.
    fn parse_body(msg_type: MessageType, body: &[u8], ctx: &mut Ctx) -> Result<Message, Error> {
        use MessageType as T;
        Ok(match msg_type {
            T::HeartbeatRequest | T::HeartbeatResponse => {
                let mut rts = None;
                parse_items(body, ctx, |ie, _| {
                    Ok(is(&ie, ids::RECOVERY_TIME_STAMP) && {
                        rts = Some(RecoveryTimeStamp::parse(ie.data)?);
                        true
                    })
                })?;
                let recovery_time_stamp = required(
                    rts,
                    ids::RECOVERY_TIME_STAMP,
                    "Recovery Time Stamp",
                    msg_type.name(),
                )?;
                if msg_type == T::HeartbeatRequest {
                    Message::HeartbeatRequest(HeartbeatRequest {
                        recovery_time_stamp,
                    })
                } else {
                    Message::HeartbeatResponse(HeartbeatResponse {
                        recovery_time_stamp,
                    })
                }
            }
            T::AssociationSetupRequest | T::AssociationSetupResponse => {
                let (mut node_id, mut cause, mut rts) = (None, None, None);
                let mut r = AssociationSetupResponse::default();
                parse_items(body, ctx, |ie, _| {
                    if is(&ie, ids::NODE_ID) {
                        node_id = Some(NodeId::parse(ie.data)?);
                    } else if is(&ie, ids::CAUSE) {
                        cause = Some(Cause::parse(ie.data)?);
                    } else if is(&ie, ids::RECOVERY_TIME_STAMP) {
                        rts = Some(RecoveryTimeStamp::parse(ie.data)?);
                    } else if is(&ie, ids::UP_FUNCTION_FEATURES) {
                        r.up_function_features = Some(UpFunctionFeatures::parse(ie.data)?);
                    } else if is(&ie, ids::CP_FUNCTION_FEATURES) {
                        r.cp_function_features = Some(CpFunctionFeatures::parse(ie.data)?);
                    } else if is(&ie, ids::USER_PLANE_IP_RESOURCE_INFORMATION) {
                        r.user_plane_ip_resources
                            .push(UserPlaneIpResourceInformation::parse(ie.data)?);
                    } else if is_bbf(&ie, ids::bbf::UP_FUNCTION_FEATURES) {
                        r.bbf_up_function_features = Some(BbfUpFunctionFeatures::parse(ie.data)?);
                    } else {
                        return Ok(false);
                    }
                    Ok(true)
                })?;
                let ctx_name = msg_type.name();
                r.node_id = required(node_id, ids::NODE_ID, "Node ID", ctx_name)?;
                r.recovery_time_stamp = required(
                    rts,
                    ids::RECOVERY_TIME_STAMP,
                    "Recovery Time Stamp",
                    ctx_name,
                )?;
                if msg_type == T::AssociationSetupRequest {
                    ctx.skipped +=
                        u32::from(cause.is_some()) + r.user_plane_ip_resources.len() as u32;
                    Message::AssociationSetupRequest(AssociationSetupRequest {
                        node_id: r.node_id,
                        recovery_time_stamp: r.recovery_time_stamp,
                        up_function_features: r.up_function_features,
                        cp_function_features: r.cp_function_features,
                        bbf_up_function_features: r.bbf_up_function_features,
                    })
                } else {
                    r.cause = required(cause, ids::CAUSE, "Cause", ctx_name)?;
                    Message::AssociationSetupResponse(r)
                }
            }
            T::AssociationReleaseRequest | T::AssociationReleaseResponse => {
                let (mut node_id, mut cause) = (None, None);
                parse_items(body, ctx, |ie, _| {
                    if is(&ie, ids::NODE_ID) {
                        node_id = Some(NodeId::parse(ie.data)?);
                    } else if is(&ie, ids::CAUSE) {
                        cause = Some(Cause::parse(ie.data)?);
                    } else {
                        return Ok(false);
                    }
                    Ok(true)
                })?;
                let node_id = required(node_id, ids::NODE_ID, "Node ID", msg_type.name())?;
                if msg_type == T::AssociationReleaseRequest {
                    ctx.skipped += u32::from(cause.is_some());
                    Message::AssociationReleaseRequest(AssociationReleaseRequest { node_id })
                } else {
                    let cause = required(cause, ids::CAUSE, "Cause", msg_type.name())?;
                    Message::AssociationReleaseResponse(AssociationReleaseResponse {
                        node_id,
                        cause,
                    })
                }
            }
            T::VersionNotSupportedResponse => {
                ctx.skipped += IeIter::new(body).count() as u32;
                Message::VersionNotSupportedResponse
            }
            T::SessionEstablishmentRequest => {
                let (mut node_id, mut f_seid) = (None, None);
                let mut r = SessionEstablishmentRequest::default();
                parse_items(body, ctx, |ie, ctx| {
                    if is(&ie, ids::NODE_ID) {
                        node_id = Some(NodeId::parse(ie.data)?);
                    } else if is(&ie, ids::F_SEID) {
                        f_seid = Some(FSeid::parse(ie.data)?);
                    } else if is(&ie, ids::CREATE_PDR) {
                        r.create_pdrs.push(CreatePdr::parse(ie.data, ctx)?);
                    } else if is(&ie, ids::CREATE_FAR) {
                        r.create_fars.push(CreateFar::parse(ie.data, ctx)?);
                    } else if is(&ie, ids::CREATE_URR) {
                        r.create_urrs.push(CreateUrr::parse(ie.data, ctx)?);
                    } else if is(&ie, ids::CREATE_QER) {
                        r.create_qers.push(CreateQer::parse(ie.data, ctx)?);
                    } else {
                        return Ok(false);
                    }
                    Ok(true)
                })?;
                let name = msg_type.name();
                r.node_id = required(node_id, ids::NODE_ID, "Node ID", name)?;
                r.cp_f_seid = required(f_seid, ids::F_SEID, "CP F-SEID", name)?;
                if r.create_pdrs.is_empty() {
                    return Err(missing(ids::CREATE_PDR, "Create PDR", name));
                }
                if r.create_fars.is_empty() {
                    return Err(missing(ids::CREATE_FAR, "Create FAR", name));
                }
                Message::SessionEstablishmentRequest(r)
            }
            T::SessionEstablishmentResponse => {
                let (mut node_id, mut cause) = (None, None);
                let mut r = SessionEstablishmentResponse::default();
                parse_items(body, ctx, |ie, ctx| {
                    if is(&ie, ids::NODE_ID) {
                        node_id = Some(NodeId::parse(ie.data)?);
                    } else if is(&ie, ids::CAUSE) {
                        cause = Some(Cause::parse(ie.data)?);
                    } else if is(&ie, ids::F_SEID) {
                        r.up_f_seid = Some(FSeid::parse(ie.data)?);
                    } else if is(&ie, ids::CREATED_PDR) {
                        r.created_pdrs.push(CreatedPdr::parse(ie.data, ctx)?);
                    } else {
                        return Ok(false);
                    }
                    Ok(true)
                })?;
                r.node_id = required(node_id, ids::NODE_ID, "Node ID", msg_type.name())?;
                r.cause = required(cause, ids::CAUSE, "Cause", msg_type.name())?;
                Message::SessionEstablishmentResponse(r)
            }
            T::SessionModificationRequest => {
                let mut r = SessionModificationRequest::default();
                parse_items(body, ctx, |ie, ctx| {
                    if ie.enterprise_id.is_some() {
                        return Ok(false);
                    }
                    match ie.ie_type {
                        ids::F_SEID => r.cp_f_seid = Some(FSeid::parse(ie.data)?),
                        ids::REMOVE_PDR => r.remove_pdrs.push(parse_remove(
                            ie.data,
                            ctx,
                            ids::PDR_ID,
                            "PDR ID",
                            "Remove PDR",
                        )? as u16),
                        ids::REMOVE_FAR => r.remove_fars.push(parse_remove(
                            ie.data,
                            ctx,
                            ids::FAR_ID,
                            "FAR ID",
                            "Remove FAR",
                        )?),
                        ids::REMOVE_URR => r.remove_urrs.push(parse_remove(
                            ie.data,
                            ctx,
                            ids::URR_ID,
                            "URR ID",
                            "Remove URR",
                        )?),
                        ids::REMOVE_QER => r.remove_qers.push(parse_remove(
                            ie.data,
                            ctx,
                            ids::QER_ID,
                            "QER ID",
                            "Remove QER",
                        )?),
                        ids::CREATE_PDR => r.create_pdrs.push(CreatePdr::parse(ie.data, ctx)?),
                        ids::CREATE_FAR => r.create_fars.push(CreateFar::parse(ie.data, ctx)?),
                        ids::CREATE_URR => r.create_urrs.push(CreateUrr::parse(ie.data, ctx)?),
                        ids::CREATE_QER => r.create_qers.push(CreateQer::parse(ie.data, ctx)?),
                        ids::UPDATE_PDR => r.update_pdrs.push(UpdatePdr::parse(ie.data, ctx)?),
                        ids::UPDATE_FAR => r.update_fars.push(UpdateFar::parse(ie.data, ctx)?),
                        ids::UPDATE_QER => r.update_qers.push(UpdateQer::parse(ie.data, ctx)?),
                        ids::PFCPSMREQ_FLAGS => r.flags = Some(PfcpSmReqFlags::parse(ie.data)?),
                        ids::QUERY_URR => r.query_urrs.push(parse_remove(
                            ie.data,
                            ctx,
                            ids::URR_ID,
                            "URR ID",
                            "Query URR",
                        )?),
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                Message::SessionModificationRequest(r)
            }
            T::SessionModificationResponse | T::SessionDeletionResponse => {
                let report_ie = if msg_type == T::SessionModificationResponse {
                    ids::USAGE_REPORT_SMR
                } else {
                    ids::USAGE_REPORT_SDR
                };
                let mut cause = None;
                let mut reports = Vec::new();
                parse_items(body, ctx, |ie, ctx| {
                    if is(&ie, ids::CAUSE) {
                        cause = Some(Cause::parse(ie.data)?);
                    } else if is(&ie, report_ie) {
                        reports.push(UsageReport::parse(ie.data, ctx)?);
                    } else {
                        return Ok(false);
                    }
                    Ok(true)
                })?;
                let cause = required(cause, ids::CAUSE, "Cause", msg_type.name())?;
                if msg_type == T::SessionModificationResponse {
                    Message::SessionModificationResponse(SessionModificationResponse {
                        cause,
                        usage_reports: reports,
                    })
                } else {
                    Message::SessionDeletionResponse(SessionDeletionResponse {
                        cause,
                        usage_reports: reports,
                    })
                }
            }
            T::SessionDeletionRequest => {
                ctx.skipped += IeIter::new(body).count() as u32;
                if let Some(Err(e)) = IeIter::new(body).find(Result::is_err) {
                    return Err(e);
                }
                Message::SessionDeletionRequest(SessionDeletionRequest {})
            }
            T::SessionReportRequest => {
                let mut report_type = None;
                let mut usage_reports = Vec::new();
                parse_items(body, ctx, |ie, ctx| {
                    if is(&ie, ids::REPORT_TYPE) {
                        report_type = Some(ReportType::parse(ie.data)?);
                    } else if is(&ie, ids::USAGE_REPORT_SRR) {
                        usage_reports.push(UsageReport::parse(ie.data, ctx)?);
                    } else {
                        return Ok(false);
                    }
                    Ok(true)
                })?;
                let report_type = required(
                    report_type,
                    ids::REPORT_TYPE,
                    "Report Type",
                    msg_type.name(),
                )?;
                Message::SessionReportRequest(SessionReportRequest {
                    report_type,
                    usage_reports,
                })
            }
            T::SessionReportResponse => {
                let mut cause = None;
                parse_items(body, ctx, |ie, _| {
                    Ok(is(&ie, ids::CAUSE) && {
                        cause = Some(Cause::parse(ie.data)?);
                        true
                    })
                })?;
                let cause = required(cause, ids::CAUSE, "Cause", msg_type.name())?;
                Message::SessionReportResponse(SessionReportResponse { cause })
            }
            T::Unknown(n) => return Err(Error::UnsupportedMessage(n)),
        })
    }

    /// Writes the IEs of this message.
    fn emit_body(&self, w: &mut Writer) {
        match self {
            Message::HeartbeatRequest(m) => m.recovery_time_stamp.emit(w),
            Message::HeartbeatResponse(m) => m.recovery_time_stamp.emit(w),
            Message::AssociationSetupRequest(m) => {
                m.node_id.emit(w);
                m.recovery_time_stamp.emit(w);
                if let Some(f) = &m.up_function_features {
                    f.emit(w);
                }
                if let Some(f) = &m.cp_function_features {
                    f.emit(w);
                }
                if let Some(f) = m.bbf_up_function_features {
                    f.emit(w);
                }
            }
            Message::AssociationSetupResponse(m) => {
                m.node_id.emit(w);
                m.cause.emit(w);
                m.recovery_time_stamp.emit(w);
                if let Some(f) = &m.up_function_features {
                    f.emit(w);
                }
                if let Some(f) = &m.cp_function_features {
                    f.emit(w);
                }
                for r in &m.user_plane_ip_resources {
                    r.emit(w);
                }
                if let Some(f) = m.bbf_up_function_features {
                    f.emit(w);
                }
            }
            Message::AssociationReleaseRequest(m) => m.node_id.emit(w),
            Message::AssociationReleaseResponse(m) => {
                m.node_id.emit(w);
                m.cause.emit(w);
            }
            Message::VersionNotSupportedResponse => {}
            Message::SessionEstablishmentRequest(m) => {
                m.node_id.emit(w);
                m.cp_f_seid.emit(w);
                m.create_pdrs.iter().for_each(|x| x.emit(w));
                m.create_fars.iter().for_each(|x| x.emit(w));
                m.create_urrs.iter().for_each(|x| x.emit(w));
                m.create_qers.iter().for_each(|x| x.emit(w));
            }
            Message::SessionEstablishmentResponse(m) => {
                m.node_id.emit(w);
                m.cause.emit(w);
                if let Some(f) = &m.up_f_seid {
                    f.emit(w);
                }
                m.created_pdrs.iter().for_each(|x| x.emit(w));
            }
            Message::SessionModificationRequest(m) => {
                if let Some(f) = &m.cp_f_seid {
                    f.emit(w);
                }
                for &id in &m.remove_pdrs {
                    emit_remove(w, ids::REMOVE_PDR, ids::PDR_ID, u32::from(id));
                }
                for &id in &m.remove_fars {
                    emit_remove(w, ids::REMOVE_FAR, ids::FAR_ID, id);
                }
                for &id in &m.remove_urrs {
                    emit_remove(w, ids::REMOVE_URR, ids::URR_ID, id);
                }
                for &id in &m.remove_qers {
                    emit_remove(w, ids::REMOVE_QER, ids::QER_ID, id);
                }
                m.create_pdrs.iter().for_each(|x| x.emit(w));
                m.create_fars.iter().for_each(|x| x.emit(w));
                m.create_urrs.iter().for_each(|x| x.emit(w));
                m.create_qers.iter().for_each(|x| x.emit(w));
                m.update_pdrs.iter().for_each(|x| x.emit(w));
                m.update_fars.iter().for_each(|x| x.emit(w));
                m.update_qers.iter().for_each(|x| x.emit(w));
                if let Some(f) = m.flags {
                    f.emit(w);
                }
                for &id in &m.query_urrs {
                    // Same shape as Remove URR: a group holding one URR ID.
                    emit_remove(w, ids::QUERY_URR, ids::URR_ID, id);
                }
            }
            Message::SessionModificationResponse(m) => {
                m.cause.emit(w);
                m.usage_reports
                    .iter()
                    .for_each(|r| r.emit(w, ids::USAGE_REPORT_SMR));
            }
            Message::SessionDeletionRequest(_) => {}
            Message::SessionDeletionResponse(m) => {
                m.cause.emit(w);
                m.usage_reports
                    .iter()
                    .for_each(|r| r.emit(w, ids::USAGE_REPORT_SDR));
            }
            Message::SessionReportRequest(m) => {
                m.report_type.emit(w);
                m.usage_reports
                    .iter()
                    .for_each(|r| r.emit(w, ids::USAGE_REPORT_SRR));
            }
            Message::SessionReportResponse(m) => m.cause.emit(w),
        }
    }

    /// The header this message is sent with: session messages always carry a
    /// SEID (`seid` or 0, e.g. 0 in a Session Establishment Request), node
    /// messages never do (`seid` is ignored).
    pub fn header(&self, sequence: u32, seid: Option<u64>) -> Header {
        let msg_type = self.msg_type();
        Header {
            version: 1,
            mp: None,
            seid: msg_type.is_session().then(|| seid.unwrap_or(0)),
            sequence: sequence & super::header::SEQUENCE_MASK,
            msg_type,
        }
    }

    /// Appends this message to `out`; `follow_on` sets the FO flag (another
    /// message follows in the same datagram). All lengths are computed from
    /// the encoded IEs.
    pub fn encode_into(
        &self,
        sequence: u32,
        seid: Option<u64>,
        follow_on: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let mut w = Writer::new();
        self.emit_body(&mut w);
        let body = w.finish()?;
        self.header(sequence, seid)
            .emit(body.len(), follow_on, out)?;
        out.extend_from_slice(&body);
        Ok(())
    }

    /// Encodes this message, or [`Error::TooLong`] if it exceeds 65 535 octets.
    pub fn try_encode(&self, sequence: u32, seid: Option<u64>) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.encode_into(sequence, seid, false, &mut out)?;
        Ok(out)
    }

    /// Encodes this message with sequence number `header_seq` (24 bits) and,
    /// for session messages, `seid` in the header (see [`Message::header`]).
    ///
    /// # Panics
    ///
    /// If an IE or the message exceeds 65 535 octets (thousands of rules in one
    /// message; vbng sends a handful). Use [`Message::try_encode`] to get an error.
    pub fn encode(&self, header_seq: u32, seid: Option<u64>) -> Vec<u8> {
        match self.try_encode(header_seq, seid) {
            Ok(v) => v,
            Err(e) => panic!("PFCP message cannot be encoded: {e}"),
        }
    }
}

/// Parses every message of a datagram (TS 29.244 7.2.1A: messages bundled
/// with the FO flag). Fails on the first malformed message, on octets after a
/// message whose FO flag is clear, and on an FO flag with nothing after it.
pub fn parse_all(bytes: &[u8]) -> Result<Vec<(Header, Message)>, Error> {
    let mut out = Vec::new();
    let mut rest = bytes;
    loop {
        let (_, framing) = Header::parse(rest)?;
        let (this, next) = rest.split_at(framing.message_len);
        let (header, msg, _) =
            Message::parse_counting(if framing.follow_on { this } else { rest })?;
        out.push((header, msg));
        if !framing.follow_on {
            return Ok(out);
        }
        if next.is_empty() {
            return Err(Error::MissingFollowOn);
        }
        rest = next;
    }
}

/// Encodes several messages into one datagram, setting FO on all but the
/// last. Each item is `(message, sequence, seid)` as for [`Message::encode`].
pub fn encode_bundle(messages: &[(&Message, u32, Option<u64>)]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    for (i, (m, seq, seid)) in messages.iter().enumerate() {
        m.encode_into(*seq, *seid, i + 1 < messages.len(), &mut out)?;
    }
    Ok(out)
}
