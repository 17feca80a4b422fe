//! The session side of Dynamic Authorization (RFC 5176): what a CoA- or
//! Disconnect-Request does to sessions. The RADIUS side (client check,
//! authenticators, reply cache) is [`vbng_aaa::coa::CoaServer`].
//!
//! A request names its sessions by Acct-Session-Id, User-Name and/or
//! Framed-IP-Address (all that are given must match); none matching is
//! NAKed with Error-Cause 503 (Session Context Not Found). Disconnect ends
//! them (Acct-Terminate-Cause Admin-Reset). CoA applies, live:
//! - the vbng rate attributes: Update QER; a missing direction keeps its
//!   current rate, 0 lifts the limit;
//! - Filter-Id: the user plane ACL of that name replaces the session's
//!   (Update PDR deactivating the old name and activating the new one on
//!   both PDRs);
//! - Session-Timeout, Idle-Timeout, Acct-Interim-Interval.
//!
//! The rate and the ACL of a session go to its user plane in one PFCP
//! Session Modification Request, taken or refused as a whole. A refusal
//! is NAKed and the session keeps what it had:
//! - Error-Cause 407 (Invalid Attribute Value) when the request has a
//!   Filter-Id the user plane could not apply (PFCP cause 73, Rule
//!   creation/modification failure: it has no ACL of that name), and for a
//!   Filter-Id that is empty, not UTF-8 or given more than once (a session
//!   has one ACL);
//! - Error-Cause 506 (Resources Unavailable) for any other failure (the
//!   session is not active, the user plane refused otherwise or did not
//!   answer).

use std::future::Future;
use std::net::Ipv4Addr;
use std::pin::Pin;

use tracing::{info, warn};
use vbng_aaa::coa::{CoaDecision, CoaHandler, CoaKind, CoaRequest};
use vbng_aaa::radius::{AttrType, Attribute, Repr, error_cause, terminate_cause};

use super::Rate;
use super::radius::rate_from;
use crate::session::{SessionChange, SessionChangeError, Sessions};

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
        let filter_id = match filter_id_of(packet) {
            Ok(f) => f,
            Err(()) => return nak(error_cause::INVALID_ATTRIBUTE_VALUE),
        };
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
            let rate = rate_from(packet, self.vendor_id, current)
                .map(|r| (r.up_kbps > 0 || r.down_kbps > 0).then_some(r));
            let change = SessionChange {
                rate,
                filter_id: filter_id.clone().map(Some),
            };
            if change != SessionChange::default() {
                if let Err(e) = self.sessions.change(id, change.clone()).await {
                    warn!(id, error = %e, "CoA change failed");
                    return nak(match e {
                        SessionChangeError::NotFound(_) => error_cause::SESSION_CONTEXT_NOT_FOUND,
                        e if e.is_rule_failure() && change.filter_id.is_some() => {
                            error_cause::INVALID_ATTRIBUTE_VALUE
                        }
                        _ => error_cause::RESOURCES_UNAVAILABLE,
                    });
                }
                info!(id, rate = ?change.rate, filter_id = ?change.filter_id, "CoA applied");
            }
            self.sessions
                .update_timers(id, timers.0, timers.1, timers.2);
        }
        CoaDecision::Ack {
            attributes: Vec::new(),
        }
    }
}

/// The ACL name a CoA-Request's Filter-Id asks for (`None` without one);
/// `Err` if it is empty, not UTF-8, or given more than once.
fn filter_id_of(packet: &Repr) -> Result<Option<String>, ()> {
    let mut values = packet.all(AttrType::FilterId);
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() || first.value.is_empty() {
        return Err(());
    }
    String::from_utf8(first.value.clone())
        .map(Some)
        .map_err(|_| ())
}

impl CoaHandler for SessionCoa {
    fn handle(&self, req: CoaRequest) -> Pin<Box<dyn Future<Output = CoaDecision> + Send + '_>> {
        Box::pin(async move { self.apply(req.kind, &req.packet).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vbng_aaa::radius::Code;

    fn coa(attributes: Vec<Attribute>) -> Repr {
        Repr {
            code: Code::CoaRequest,
            identifier: 1,
            authenticator: [0; 16],
            attributes,
        }
    }

    fn filter_id(value: &[u8]) -> Attribute {
        Attribute::new(AttrType::FilterId, value.to_vec())
    }

    #[test]
    fn one_non_empty_utf8_filter_id_names_the_acl() {
        assert_eq!(filter_id_of(&coa(vec![])), Ok(None));
        assert_eq!(
            filter_id_of(&coa(vec![filter_id(b"web-only")])),
            Ok(Some("web-only".to_string()))
        );
        for bad in [
            vec![filter_id(b"")],
            vec![filter_id(b"\xff\xfe")],
            vec![filter_id(b"web-only"), filter_id(b"block-smtp")],
        ] {
            assert_eq!(filter_id_of(&coa(bad)), Err(()));
        }
    }
}
