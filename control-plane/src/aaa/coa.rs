//! The session side of Dynamic Authorization (RFC 5176): what a CoA- or
//! Disconnect-Request does to sessions. The RADIUS side (client check,
//! authenticators, reply cache) is [`vbng_aaa::coa::CoaServer`].
//!
//! A request names its sessions by Acct-Session-Id, User-Name and/or
//! Framed-IP-Address (all that are given must match). Disconnect ends them
//! (Acct-Terminate-Cause Admin-Reset). CoA applies, live:
//! - the vbng rate attributes: a PFCP Session Modification (Update QER);
//!   a missing direction keeps its current rate, 0 lifts the limit;
//! - Session-Timeout, Idle-Timeout, Acct-Interim-Interval.
//!
//! Filter-Id is refused with Error-Cause 405 (Unsupported Service): the
//! user planes have no ACL classifier to apply it to yet.

use std::future::Future;
use std::net::Ipv4Addr;
use std::pin::Pin;

use tracing::{info, warn};
use vbng_aaa::coa::{CoaDecision, CoaHandler, CoaKind, CoaRequest};
use vbng_aaa::radius::{AttrType, Attribute, Repr, error_cause, terminate_cause};

use super::Rate;
use super::radius::rate_from;
use crate::session::Sessions;

/// Applies CoA and Disconnect requests to the sessions of this control
/// plane.
#[derive(Debug, Clone)]
pub struct SessionCoa {
    sessions: Sessions,
    vendor_id: u32,
    nas_identifier: String,
    nas_ip: Ipv4Addr,
}

impl SessionCoa {
    /// A handler for `sessions`; requests naming another NAS-Identifier or
    /// NAS-IP-Address than ours are refused (Error-Cause 403).
    pub fn new(sessions: Sessions, vendor_id: u32, nas_identifier: &str, nas_ip: Ipv4Addr) -> Self {
        SessionCoa {
            sessions,
            vendor_id,
            nas_identifier: nas_identifier.to_string(),
            nas_ip,
        }
    }

    /// Decide and apply one request.
    pub async fn apply(&self, kind: CoaKind, packet: &Repr) -> CoaDecision {
        let nak = |error_cause| CoaDecision::Nak {
            error_cause,
            attributes: Vec::new(),
        };
        let text = |t| {
            packet
                .find(t)
                .map(|a: &Attribute| String::from_utf8_lossy(&a.value).into_owned())
        };
        if let Some(id) = text(AttrType::NasIdentifier)
            && id != self.nas_identifier
        {
            return nak(error_cause::NAS_IDENTIFICATION_MISMATCH);
        }
        if let Some(a) = packet.find(AttrType::NasIpAddress)
            && a.value.as_slice() != self.nas_ip.octets()
        {
            return nak(error_cause::NAS_IDENTIFICATION_MISMATCH);
        }
        let acct_session_id = text(AttrType::AcctSessionId);
        let username = text(AttrType::UserName);
        let ipv4 = match packet.find(AttrType::FramedIpAddress) {
            Some(a) => match <[u8; 4]>::try_from(a.value.as_slice()) {
                Ok(b) => Some(Ipv4Addr::from(b)),
                Err(_) => return nak(error_cause::INVALID_ATTRIBUTE_VALUE),
            },
            None => None,
        };
        if acct_session_id.is_none() && username.is_none() && ipv4.is_none() {
            return nak(error_cause::MISSING_ATTRIBUTE);
        }
        let ids = self
            .sessions
            .find(acct_session_id.as_deref(), username.as_deref(), ipv4);
        if ids.is_empty() {
            return nak(error_cause::SESSION_CONTEXT_NOT_FOUND);
        }
        match kind {
            CoaKind::Disconnect => {
                for &id in &ids {
                    info!(id, "Disconnect-Request: ending the session");
                    if self
                        .sessions
                        .terminate(id, terminate_cause::ADMIN_RESET)
                        .await
                        .is_err()
                    {
                        // Gone meanwhile: nothing left to remove.
                        continue;
                    }
                }
                CoaDecision::Ack {
                    attributes: Vec::new(),
                }
            }
            CoaKind::Coa => self.change(&ids, packet).await,
        }
    }

    async fn change(&self, ids: &[u64], packet: &Repr) -> CoaDecision {
        let nak = |error_cause| CoaDecision::Nak {
            error_cause,
            attributes: Vec::new(),
        };
        if packet.find(AttrType::FilterId).is_some() {
            return nak(error_cause::UNSUPPORTED_SERVICE);
        }
        let int = |t| packet.find(t).and_then(Attribute::as_u32);
        let timers = (
            int(AttrType::SessionTimeout),
            int(AttrType::IdleTimeout),
            int(AttrType::AcctInterimInterval),
        );
        for &id in ids {
            let current = self.sessions.view(id).and_then(|v| v.rate).map(|r| Rate {
                up_kbps: r.up_kbps,
                down_kbps: r.down_kbps,
            });
            if let Some(rate) = rate_from(packet, self.vendor_id, current) {
                let rate = (rate.up_kbps > 0 || rate.down_kbps > 0).then_some(rate);
                if let Err(e) = self.sessions.set_rate(id, rate).await {
                    warn!(id, error = %e, "CoA rate change failed");
                    return nak(error_cause::RESOURCES_UNAVAILABLE);
                }
                info!(id, ?rate, "CoA applied a new rate");
            }
            self.sessions
                .update_timers(id, timers.0, timers.1, timers.2);
        }
        CoaDecision::Ack {
            attributes: Vec::new(),
        }
    }
}

impl CoaHandler for SessionCoa {
    fn handle(&self, req: CoaRequest) -> Pin<Box<dyn Future<Output = CoaDecision> + Send + '_>> {
        Box::pin(async move { self.apply(req.kind, &req.packet).await })
    }
}
