//! RADIUS authorization of IPoE subscribers (and PAP/CHAP for PPP).
//!
//! The DHCP server asks for a decision synchronously, but an Access-Request
//! takes a round trip. [`RadiusAaa::authorize`] therefore answers from a
//! per-client cache; on a miss it starts the Access-Request and answers
//! [`Authorization::Pending`], the DHCP message is dropped without reply and
//! parked here ([`RadiusAaa::park`]), and once the answer arrives the parked
//! message is handed back to the redirect task ([`Replay`]) and handled
//! again, now from the cache. The client sees its OFFER one RADIUS round
//! trip later, not one DHCP retransmission later.
//!
//! Accepts are cached for `accept_cache_s` (long enough for DISCOVER and
//! REQUEST; a lease that exists is not re-authorized on renewal), rejects
//! and failures for `reject_hold_s`, which also bounds how often one client
//! can make us ask. At most `max_pending` Access-Requests are in flight.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use vbng_aaa::client::{Client, ClientConfig, Request, ServerConfig};
use vbng_aaa::dictionary::{
    ADSL_AGENT_CIRCUIT_ID, ADSL_AGENT_REMOTE_ID, ADSL_FORUM_VENDOR_ID, VBNG_RATE_DOWN_KBPS,
    VBNG_RATE_UP_KBPS,
};
use vbng_aaa::radius::{AttrType, Attribute, Code, Repr};
use vbng_access::dhcpv4::{Authorization, ClientContext, ClientKey};

use super::attributes::{Authentic, SessionAttributes, ipv6_prefix_text, new_acct_session_id};
use super::{Rate, SubscriberProfile};
use crate::config::{IpoeUserName, RadiusSection, RadiusServer};

/// NAS-Port-Type Ethernet (RFC 2865 5.41, IANA value 15).
const NAS_PORT_TYPE_ETHERNET: u32 = 15;
/// NAS-Port-Type Virtual (PPPoE sessions, IANA value 5).
const NAS_PORT_TYPE_VIRTUAL: u32 = 5;
/// Service-Type Framed-User (RFC 2865 5.6).
const SERVICE_TYPE_FRAMED: u32 = 2;
/// Framed-Protocol PPP (RFC 2865 5.7).
const FRAMED_PROTOCOL_PPP: u32 = 1;

/// A redirected datagram to handle again once its client's decision is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// User plane index the datagram came from.
    pub up: u32,
    /// Its GTP-U source (where the reply goes).
    pub src: SocketAddr,
    /// The GTP-U datagram as received.
    pub datagram: Vec<u8>,
}

/// An accepted subscriber: what the DHCP server and the session need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Pool, fixed address and rate.
    pub profile: SubscriberProfile,
    /// Everything else the Access-Accept said.
    pub attrs: SessionAttributes,
}

/// Why an authentication did not produce an [`Accepted`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The server answered Access-Reject.
    #[error("Access-Reject{}", .0.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Rejected(Option<String>),
    /// No server answered, or the answer was not usable.
    #[error("RADIUS: {0}")]
    Failed(String),
}

#[derive(Debug, Clone)]
enum CacheEntry {
    InFlight,
    Accepted {
        accepted: Box<Accepted>,
        until_ms: u64,
    },
    Refused {
        until_ms: u64,
    },
}

/// Counters of the RADIUS authorization, exported as metrics.
#[derive(Debug, Default)]
pub struct AuthStats {
    /// Access-Requests started.
    pub requests: AtomicU64,
    /// Access-Accepts.
    pub accepts: AtomicU64,
    /// Access-Rejects.
    pub rejects: AtomicU64,
    /// Requests no server answered.
    pub failures: AtomicU64,
    /// Clients turned away because `max_pending` requests were in flight.
    pub backlog_drops: AtomicU64,
    /// DHCP messages replayed after their decision arrived.
    pub replays: AtomicU64,
}

/// Settings taken from `[radius]`.
#[derive(Debug, Clone)]
struct Settings {
    username: IpoeUserName,
    password: Vec<u8>,
    default_pool: String,
    vendor_id: u32,
    nas_identifier: String,
    nas_ip: Ipv4Addr,
    accept_ms: u64,
    refuse_ms: u64,
    max_pending: usize,
}

/// RADIUS authorization with its client, decision cache and parked
/// messages. Shared as `Arc<RadiusAaa>`.
#[derive(Debug)]
pub struct RadiusAaa {
    settings: Settings,
    client: Client,
    cache: Mutex<HashMap<ClientKey, CacheEntry>>,
    parked: Mutex<HashMap<ClientKey, Replay>>,
    in_flight: AtomicUsize,
    replay: mpsc::UnboundedSender<Replay>,
    stats: AuthStats,
}

/// The [`ClientConfig`] of `[radius]`.
pub fn client_config(cfg: &RadiusSection) -> ClientConfig {
    ClientConfig {
        timeout: cfg.timeout(),
        max_timeout: cfg.timeout() * 8,
        retries: cfg.retries,
        dead_time: Duration::from_secs(cfg.dead_time_s),
        require_message_authenticator: cfg.require_message_authenticator,
        sockets_per_server: cfg.sockets_per_server,
        ..ClientConfig::default()
    }
}

/// [`ServerConfig`]s of configured servers.
pub fn server_configs(servers: &[RadiusServer]) -> Vec<ServerConfig> {
    servers
        .iter()
        .map(|s| ServerConfig {
            addr: s.address,
            secret: s.secret.as_bytes().to_vec(),
        })
        .collect()
}

impl RadiusAaa {
    /// A RADIUS backend for `cfg` whose NAS-IP-Address defaults to
    /// `node_ip`; replays go to `replay`. Binds the client sockets.
    pub async fn new(
        cfg: &RadiusSection,
        node_ip: Ipv4Addr,
        replay: mpsc::UnboundedSender<Replay>,
    ) -> Result<Self, vbng_aaa::client::Error> {
        let client = Client::new(server_configs(&cfg.auth_servers), client_config(cfg)).await?;
        Ok(RadiusAaa {
            settings: Settings {
                username: cfg.ipoe_username,
                password: cfg.ipoe_password.as_bytes().to_vec(),
                default_pool: cfg.default_pool.clone(),
                vendor_id: cfg.vendor_id,
                nas_identifier: cfg.nas_identifier.clone(),
                nas_ip: cfg.nas_ip.unwrap_or(node_ip),
                accept_ms: cfg.accept_cache_s.saturating_mul(1000),
                refuse_ms: cfg.reject_hold_s.saturating_mul(1000),
                max_pending: cfg.max_pending,
            },
            client,
            cache: Mutex::new(HashMap::new()),
            parked: Mutex::new(HashMap::new()),
            in_flight: AtomicUsize::new(0),
            replay,
            stats: AuthStats::default(),
        })
    }

    /// The RADIUS client (for its counters).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The authorization counters.
    pub fn stats(&self) -> &AuthStats {
        &self.stats
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<ClientKey, CacheEntry>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn parked(&self) -> MutexGuard<'_, HashMap<ClientKey, Replay>> {
        self.parked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The DHCP server's decision for `ctx` at `now_ms`: from the cache, or
    /// `Pending` while an Access-Request (started here on a miss) is out.
    /// Must be called inside the tokio runtime.
    pub fn authorize(self: &Arc<Self>, ctx: &ClientContext, now_ms: u64) -> Authorization {
        let mut cache = self.cache();
        match cache.get(&ctx.key) {
            Some(CacheEntry::Accepted { accepted, until_ms }) if *until_ms > now_ms => {
                return accepted.profile.authorization();
            }
            Some(CacheEntry::Refused { until_ms }) if *until_ms > now_ms => {
                return Authorization::Deny;
            }
            Some(CacheEntry::InFlight) => return Authorization::Pending,
            _ => {}
        }
        if self.in_flight.load(Ordering::Relaxed) >= self.settings.max_pending {
            self.stats.backlog_drops.fetch_add(1, Ordering::Relaxed);
            return Authorization::Pending;
        }
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        cache.insert(ctx.key, CacheEntry::InFlight);
        drop(cache);
        let this = self.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let result = this.authenticate_ipoe(&ctx).await;
            this.in_flight.fetch_sub(1, Ordering::Relaxed);
            this.decided(ctx.key, result);
        });
        Authorization::Pending
    }

    /// Record the decision for `key` and replay its parked message.
    fn decided(&self, key: ClientKey, result: Result<Accepted, AuthError>) {
        let now = crate::monotonic_ms();
        let entry = match result {
            Ok(accepted) => {
                info!(mac = %mac_text(&key.mac), user = %accepted.attrs.username,
                    pool = %accepted.profile.pool, "RADIUS accepted the subscriber");
                CacheEntry::Accepted {
                    accepted: Box::new(accepted),
                    until_ms: now.saturating_add(self.settings.accept_ms),
                }
            }
            Err(e) => {
                warn!(mac = %mac_text(&key.mac), error = %e, "RADIUS refused the subscriber");
                CacheEntry::Refused {
                    until_ms: now.saturating_add(self.settings.refuse_ms),
                }
            }
        };
        self.cache().insert(key, entry);
        if let Some(r) = self.parked().remove(&key) {
            self.stats.replays.fetch_add(1, Ordering::Relaxed);
            let _ = self.replay.send(r);
        }
    }

    /// Keep `replay` (the latest message of client `key`, whose decision is
    /// pending) to be handled again once the decision is in. If it came in
    /// meanwhile, the message is replayed at once.
    pub fn park(&self, key: ClientKey, replay: Replay) {
        let pending = matches!(self.cache().get(&key), Some(CacheEntry::InFlight));
        if !pending {
            // Decided between the DHCP server's question and now, or turned
            // away for backlog: the client's retransmission will do.
            if self.cache().contains_key(&key) {
                self.stats.replays.fetch_add(1, Ordering::Relaxed);
                let _ = self.replay.send(replay);
            }
            return;
        }
        let mut parked = self.parked();
        if parked.len() < self.settings.max_pending || parked.contains_key(&key) {
            parked.insert(key, replay);
        }
    }

    /// What the Access-Accept of client `key` gave, if it is cached.
    pub fn accepted(&self, key: &ClientKey) -> Option<Accepted> {
        match self.cache().get(key) {
            Some(CacheEntry::Accepted { accepted, .. }) => Some((**accepted).clone()),
            _ => None,
        }
    }

    /// Drop cache entries past their time (a periodic tick).
    pub fn prune(&self, now_ms: u64) {
        self.cache().retain(|_, e| match e {
            CacheEntry::InFlight => true,
            CacheEntry::Accepted { until_ms, .. } | CacheEntry::Refused { until_ms } => {
                *until_ms > now_ms
            }
        });
    }

    /// The User-Name of an IPoE client.
    pub fn ipoe_username(&self, ctx: &ClientContext) -> String {
        match (&self.settings.username, &ctx.circuit_id) {
            (IpoeUserName::CircuitId, Some(c)) if !c.is_empty() => {
                String::from_utf8_lossy(c).into_owned()
            }
            _ => mac_text(&ctx.key.mac),
        }
    }

    /// Attributes every request of this NAS carries.
    fn nas_attributes(&self) -> Vec<Attribute> {
        nas_attributes(&self.settings.nas_identifier, self.settings.nas_ip)
    }

    /// Authenticate an IPoE client (User-Name from its MAC or circuit-id,
    /// the configured password) and map the reply.
    pub async fn authenticate_ipoe(&self, ctx: &ClientContext) -> Result<Accepted, AuthError> {
        let user = self.ipoe_username(ctx);
        let mut req = Request::pap(&user, &self.settings.password);
        req.attributes.extend(self.nas_attributes());
        req.attributes.extend(access_line_attributes(
            &ctx.key,
            ctx.circuit_id.as_deref(),
            ctx.remote_id.as_deref(),
        ));
        req.attributes.extend(service_attributes(false));
        self.exchange(req, user).await
    }

    /// Authenticate a PPP user with PAP (RFC 1334 credentials).
    pub async fn authenticate_pap(
        &self,
        user: &str,
        password: &[u8],
        line: &[Attribute],
    ) -> Result<Accepted, AuthError> {
        let mut req = Request::pap(user, password);
        self.ppp_attributes(&mut req, line);
        self.exchange(req, user.to_string()).await
    }

    /// Authenticate a PPP user with CHAP-MD5 (RFC 1994): the peer's
    /// `chap_id`, our `challenge` and its 16-octet `response`.
    pub async fn authenticate_chap(
        &self,
        user: &str,
        chap_id: u8,
        challenge: &[u8],
        response: &[u8; 16],
        line: &[Attribute],
    ) -> Result<Accepted, AuthError> {
        let mut chap_password = Vec::with_capacity(17);
        chap_password.push(chap_id);
        chap_password.extend_from_slice(response);
        let mut req = Request {
            code: Code::AccessRequest,
            attributes: vec![
                Attribute::new(AttrType::UserName, user.as_bytes()),
                Attribute::new(AttrType::ChapPassword, chap_password),
                Attribute::new(AttrType::ChapChallenge, challenge),
            ],
            password: None,
        };
        self.ppp_attributes(&mut req, line);
        self.exchange(req, user.to_string()).await
    }

    fn ppp_attributes(&self, req: &mut Request, line: &[Attribute]) {
        req.attributes.extend(self.nas_attributes());
        req.attributes.extend_from_slice(line);
        req.attributes.extend(service_attributes(true));
    }

    async fn exchange(&self, req: Request, user: String) -> Result<Accepted, AuthError> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let reply = match self.client.send(&req).await {
            Ok(r) => r.packet,
            Err(e) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                debug!(error = %e, "Access-Request failed");
                return Err(AuthError::Failed(e.to_string()));
            }
        };
        match reply.code {
            Code::AccessAccept => {
                self.stats.accepts.fetch_add(1, Ordering::Relaxed);
                Ok(map_accept(
                    &reply,
                    user,
                    &self.settings.default_pool,
                    self.settings.vendor_id,
                ))
            }
            Code::AccessReject => {
                self.stats.rejects.fetch_add(1, Ordering::Relaxed);
                let msg = reply
                    .find(AttrType::ReplyMessage)
                    .map(|a| String::from_utf8_lossy(&a.value).into_owned());
                Err(AuthError::Rejected(msg))
            }
            other => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                Err(AuthError::Failed(format!(
                    "expected Access-Accept or Access-Reject, got code {}",
                    u8::from(other)
                )))
            }
        }
    }
}

/// Calling-Station-Id, NAS-Port-Id and the access-loop identities
/// (option 82, or the PPPoE TR-101 tags) of a subscriber line, as sent in
/// Access-Requests and accounting.
pub fn access_line_attributes(
    key: &ClientKey,
    circuit_id: Option<&[u8]>,
    remote_id: Option<&[u8]>,
) -> Vec<Attribute> {
    let mut out = vec![
        Attribute::new(AttrType::CallingStationId, mac_text(&key.mac)),
        Attribute::new(AttrType::NasPortId, nas_port_id(key)),
    ];
    if let Some(c) = circuit_id {
        out.push(Attribute::vendor(
            ADSL_FORUM_VENDOR_ID,
            ADSL_AGENT_CIRCUIT_ID,
            c,
        ));
    }
    if let Some(r) = remote_id {
        out.push(Attribute::vendor(
            ADSL_FORUM_VENDOR_ID,
            ADSL_AGENT_REMOTE_ID,
            r,
        ));
    }
    out
}

/// NAS-Identifier and NAS-IP-Address, carried by every request of this NAS.
pub fn nas_attributes(identifier: &str, ip: Ipv4Addr) -> Vec<Attribute> {
    vec![
        Attribute::new(AttrType::NasIdentifier, identifier.as_bytes()),
        Attribute::new(AttrType::NasIpAddress, ip.octets()),
    ]
}

/// The kind of service: Service-Type Framed-User, NAS-Port-Type Ethernet
/// (IPoE) or Virtual with Framed-Protocol PPP (PPPoE).
pub fn service_attributes(pppoe: bool) -> Vec<Attribute> {
    let mut out = vec![
        Attribute::u32(
            AttrType::NasPortType,
            if pppoe {
                NAS_PORT_TYPE_VIRTUAL
            } else {
                NAS_PORT_TYPE_ETHERNET
            },
        ),
        Attribute::u32(AttrType::ServiceType, SERVICE_TYPE_FRAMED),
    ];
    if pppoe {
        out.push(Attribute::u32(
            AttrType::FramedProtocol,
            FRAMED_PROTOCOL_PPP,
        ));
    }
    out
}

/// NAS-Port-Id of an access line: `up<index>/<port>/<svlan>.<cvlan>`.
pub fn nas_port_id(key: &ClientKey) -> String {
    format!("up{}/{}/{}.{}", key.up, key.port, key.svlan, key.cvlan)
}

/// A MAC as `02:00:00:00:00:01`.
pub fn mac_text(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// The rate of a reply or CoA-Request from vendor `vendor_id`'s rate
/// attributes: `None` if neither is present; a missing direction is 0
/// (no limit there) unless `base` gives it.
pub fn rate_from(repr: &Repr, vendor_id: u32, base: Option<Rate>) -> Option<Rate> {
    let get = |t| {
        repr.vendor_values(vendor_id, t)
            .first()
            .and_then(|v| <[u8; 4]>::try_from(*v).ok())
            .map(|b| u64::from(u32::from_be_bytes(b)))
    };
    let (up, down) = (get(VBNG_RATE_UP_KBPS), get(VBNG_RATE_DOWN_KBPS));
    if up.is_none() && down.is_none() {
        return None;
    }
    Some(Rate {
        up_kbps: up.unwrap_or(base.map_or(0, |b| b.up_kbps)),
        down_kbps: down.unwrap_or(base.map_or(0, |b| b.down_kbps)),
    })
}

/// Map an Access-Accept to the session: Framed-IP-Address (fixed address),
/// Framed-Pool (else `default_pool`), the vendor rates, Session-Timeout,
/// Idle-Timeout, Acct-Interim-Interval, Filter-Id, Class and the IPv6
/// prefixes. A fresh Acct-Session-Id is assigned.
pub fn map_accept(reply: &Repr, user: String, default_pool: &str, vendor_id: u32) -> Accepted {
    let text = |t| {
        reply
            .find(t)
            .map(|a: &Attribute| String::from_utf8_lossy(&a.value).into_owned())
    };
    let int = |t| reply.find(t).and_then(Attribute::as_u32);
    let fixed_ipv4 = reply
        .find(AttrType::FramedIpAddress)
        .and_then(|a| <[u8; 4]>::try_from(a.value.as_slice()).ok())
        .map(Ipv4Addr::from)
        // 255.255.255.254 asks the NAS to choose, 255.255.255.255 the
        // user (RFC 2865 5.8): both mean "from the pool" here.
        .filter(|ip| !ip.is_broadcast() && *ip != Ipv4Addr::new(255, 255, 255, 254));
    let profile = SubscriberProfile {
        allow: true,
        pool: text(AttrType::FramedPool).unwrap_or_else(|| default_pool.to_string()),
        fixed_ipv4,
        rate: rate_from(reply, vendor_id, None),
        filter: text(AttrType::FilterId),
    };
    let attrs = SessionAttributes {
        authentic: Authentic::Radius,
        username: user,
        acct_session_id: new_acct_session_id(),
        class: reply
            .all(AttrType::Class)
            .map(|a| a.value.clone())
            .collect(),
        session_timeout_s: int(AttrType::SessionTimeout).filter(|&t| t > 0),
        idle_timeout_s: int(AttrType::IdleTimeout).filter(|&t| t > 0),
        interim_interval_s: int(AttrType::AcctInterimInterval).filter(|&t| t > 0),
        filter_id: text(AttrType::FilterId),
        framed_ipv6_prefix: reply
            .find(AttrType::FramedIpv6Prefix)
            .and_then(|a| ipv6_prefix_text(&a.value)),
        delegated_ipv6_prefix: reply
            .find(AttrType::DelegatedIpv6Prefix)
            .and_then(|a| ipv6_prefix_text(&a.value)),
    };
    Accepted { profile, attrs }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vbng_aaa::dictionary::VBNG_VENDOR_ID;

    fn accept(attributes: Vec<Attribute>) -> Repr {
        Repr {
            code: Code::AccessAccept,
            identifier: 1,
            authenticator: [0; 16],
            attributes,
        }
    }

    #[test]
    fn accept_maps_every_attribute() {
        let r = accept(vec![
            Attribute::new(AttrType::FramedIpAddress, [100, 64, 0, 77]),
            Attribute::new(AttrType::FramedPool, "gold"),
            Attribute::vendor_u32(VBNG_VENDOR_ID, VBNG_RATE_UP_KBPS, 5_000),
            Attribute::vendor_u32(VBNG_VENDOR_ID, VBNG_RATE_DOWN_KBPS, 20_000),
            Attribute::u32(AttrType::SessionTimeout, 3600),
            Attribute::u32(AttrType::IdleTimeout, 600),
            Attribute::u32(AttrType::AcctInterimInterval, 300),
            Attribute::new(AttrType::FilterId, "web-only"),
            Attribute::new(AttrType::Class, "c1"),
            Attribute::new(AttrType::Class, "c2"),
            Attribute::new(
                AttrType::FramedIpv6Prefix,
                [0, 64, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0],
            ),
            Attribute::new(
                AttrType::DelegatedIpv6Prefix,
                [0, 56, 0x20, 0x01, 0x0d, 0xb8, 0x10, 0, 0],
            ),
        ]);
        let a = map_accept(&r, "u".into(), "default", VBNG_VENDOR_ID);
        assert_eq!(a.profile.pool, "gold");
        assert_eq!(a.profile.fixed_ipv4, Some(Ipv4Addr::new(100, 64, 0, 77)));
        assert_eq!(
            a.profile.rate,
            Some(Rate {
                up_kbps: 5_000,
                down_kbps: 20_000
            })
        );
        assert_eq!(a.attrs.session_timeout_s, Some(3600));
        assert_eq!(a.attrs.idle_timeout_s, Some(600));
        assert_eq!(a.attrs.interim_interval_s, Some(300));
        assert_eq!(a.attrs.filter_id.as_deref(), Some("web-only"));
        assert_eq!(a.attrs.class, vec![b"c1".to_vec(), b"c2".to_vec()]);
        assert_eq!(
            a.attrs.framed_ipv6_prefix.as_deref(),
            Some("2001:db8:1::/64")
        );
        assert_eq!(
            a.attrs.delegated_ipv6_prefix.as_deref(),
            Some("2001:db8:1000::/56")
        );
        assert_eq!(a.attrs.authentic, Authentic::Radius);
        assert_eq!(a.attrs.acct_session_id.len(), 16);
    }

    #[test]
    fn bare_accept_uses_defaults() {
        let a = map_accept(
            &accept(vec![Attribute::new(
                AttrType::FramedIpAddress,
                [255, 255, 255, 254],
            )]),
            "u".into(),
            "default",
            VBNG_VENDOR_ID,
        );
        assert_eq!(a.profile.pool, "default");
        assert_eq!(a.profile.fixed_ipv4, None);
        assert_eq!(a.profile.rate, None);
        assert_eq!(a.attrs.session_timeout_s, None);
    }

    #[test]
    fn one_rate_direction_keeps_the_other() {
        let r = accept(vec![Attribute::vendor_u32(
            VBNG_VENDOR_ID,
            VBNG_RATE_DOWN_KBPS,
            20_000,
        )]);
        let base = Some(Rate {
            up_kbps: 1_000,
            down_kbps: 2_000,
        });
        assert_eq!(
            rate_from(&r, VBNG_VENDOR_ID, base),
            Some(Rate {
                up_kbps: 1_000,
                down_kbps: 20_000
            })
        );
        assert_eq!(
            rate_from(&r, VBNG_VENDOR_ID, None),
            Some(Rate {
                up_kbps: 0,
                down_kbps: 20_000
            })
        );
        // Another vendor's attribute 1 is not ours.
        let other = accept(vec![Attribute::vendor_u32(9, VBNG_RATE_UP_KBPS, 1)]);
        assert_eq!(rate_from(&other, VBNG_VENDOR_ID, base), None);
    }
}
