//! Authentication, authorization and accounting for `vbng-cp`.
//!
//! - [`local`]: the local subscriber file, the embedded AAA default
//!   ([`LocalSubscribers`]): per-MAC and per-circuit-id entries plus a
//!   default rule, each giving a [`SubscriberProfile`].
//! - [`radius`]: RADIUS authorization ([`RadiusAaa`]), selected with
//!   `[aaa] backend = "radius"`.
//! - [`accounting`]: RADIUS accounting through the durable spool.
//! - [`coa`]: the CoA/Disconnect handler acting on sessions.
//! - [`attributes`]: what AAA gave a session ([`SessionAttributes`]).
//!
//! [`Aaa`] is the switch between the two backends.

pub mod accounting;
pub mod attributes;
pub mod coa;
pub mod local;
pub mod radius;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use vbng_access::dhcpv4::{Authorization, ClientContext, Lease};

pub use attributes::{Authentic, SessionAttributes};
pub use local::{DefaultPolicy, LocalSubscribers, MatchedBy, Rate, SubscriberProfile};
pub use radius::RadiusAaa;

/// What a session gets from AAA when it is created: its rate and
/// attributes. Persisted with the lease (`[dhcp] lease_file`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionProfile {
    /// Peak rates, if limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
    /// Everything else.
    #[serde(flatten)]
    pub attrs: SessionAttributes,
}

/// The AAA backend in use.
#[derive(Debug, Clone)]
pub enum Aaa {
    /// The local subscriber file.
    Local(Arc<LocalSubscribers>),
    /// RADIUS.
    Radius(Arc<RadiusAaa>),
}

impl Aaa {
    /// The DHCP server's decision for a client without a lease.
    pub fn authorize(&self, ctx: &ClientContext, now_ms: u64) -> Authorization {
        match self {
            Aaa::Local(l) => l.authorize(ctx),
            Aaa::Radius(r) => r.authorize(ctx, now_ms),
        }
    }

    /// The RADIUS backend, if that is the one in use.
    pub fn radius(&self) -> Option<&Arc<RadiusAaa>> {
        match self {
            Aaa::Radius(r) => Some(r),
            Aaa::Local(_) => None,
        }
    }

    /// Authenticate a PPP user: the subscriber file's `[[users]]`, or
    /// RADIUS PAP/CHAP with the access line's attributes `line`. Returns
    /// the profile (pool, fixed address) and the session's rate and
    /// attributes, or why not.
    pub async fn authenticate_ppp(
        &self,
        user: &str,
        credentials: &vbng_access::ppp::Credentials,
        line: &[vbng_aaa::radius::Attribute],
    ) -> Result<(SubscriberProfile, SessionProfile), String> {
        use vbng_access::ppp::Credentials;
        match self {
            Aaa::Local(l) => {
                let creds = match credentials {
                    Credentials::Pap { password } => local::PppCredentials::Pap(password),
                    Credentials::Chap {
                        id,
                        challenge,
                        response,
                    } => local::PppCredentials::Chap {
                        id: *id,
                        challenge,
                        response,
                    },
                };
                let profile = l.authenticate_ppp(user, creds)?.clone();
                let session = SessionProfile {
                    rate: profile.rate,
                    attrs: SessionAttributes {
                        username: user.to_string(),
                        filter_id: profile.filter.clone(),
                        ..SessionAttributes::default()
                    },
                };
                Ok((profile, session))
            }
            Aaa::Radius(r) => {
                let accepted = match credentials {
                    Credentials::Pap { password } => r.authenticate_pap(user, password, line).await,
                    Credentials::Chap {
                        id,
                        challenge,
                        response,
                    } => {
                        r.authenticate_chap(user, *id, challenge, response, line)
                            .await
                    }
                }
                .map_err(|e| e.to_string())?;
                let session = SessionProfile {
                    rate: accepted.profile.rate,
                    attrs: accepted.attrs,
                };
                Ok((accepted.profile, session))
            }
        }
    }

    /// The profile of a new session for `lease`: the subscriber file's
    /// entry, or the cached Access-Accept of its client.
    pub fn profile_of(&self, lease: &Lease) -> SessionProfile {
        let username = radius::mac_text(&lease.key.mac);
        match self {
            Aaa::Local(l) => {
                let (profile, _) = l.lookup(&lease.key.mac, lease.circuit_id.as_deref());
                SessionProfile {
                    rate: profile.rate,
                    attrs: SessionAttributes {
                        username,
                        filter_id: profile.filter.clone(),
                        ..SessionAttributes::default()
                    },
                }
            }
            Aaa::Radius(r) => match r.accepted(&lease.key) {
                Some(a) => SessionProfile {
                    rate: a.profile.rate,
                    attrs: a.attrs,
                },
                None => {
                    // The lease was bound without a cached Accept (it was
                    // adopted from a client that kept its address across a
                    // restart without a lease file, and the cache expired
                    // since): account it under its MAC.
                    tracing::warn!(ipv4 = %lease.ipv4, "no cached Access-Accept for a new lease; session gets no RADIUS attributes");
                    SessionProfile {
                        rate: None,
                        attrs: SessionAttributes {
                            authentic: Authentic::Radius,
                            username,
                            acct_session_id: attributes::new_acct_session_id(),
                            ..SessionAttributes::default()
                        },
                    }
                }
            },
        }
    }
}
