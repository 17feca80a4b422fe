//! The access concentrator's side of PPPoE discovery (RFC 2516 section 5).
//!
//! - PADI -> PADO with our AC-Name, the Service-Name asked for (plus the
//!   other services we offer), a stateless [`cookie`], and
//!   Host-Uniq, Relay-Session-Id and PPP-Max-Payload (RFC 4638) echoed.
//!   Nothing is stored per PADI.
//! - PADR -> cookie checked, session id allocated, PADS, and
//!   [`DiscoveryEvent::Opened`]. A retransmitted PADR (same line, MAC and
//!   Host-Uniq as an open session) gets that session's PADS again.
//! - PADT from the client -> [`DiscoveryEvent::Closed`].
//!
//! PADI is limited per client and per port, PADR per client (token
//! buckets whose burst is one second's worth); sessions are capped per
//! client and per line. A "client" is a MAC on a line ([`LineKey`]); with
//! per-subscriber VLANs a line is one subscriber, with a shared VLAN it is
//! that VLAN, so the per-line cap is the per-VLAN cap.

use std::collections::HashMap;

use super::cookie;
use super::counters::{DiscoveryCounters, DiscoveryDrop};
use super::wire::{self, AccessLoop, Code, ETH_PPPOE_MTU, MAX_PAYLOAD_STANDARD, Tag};

/// An access line: where a frame came from, as the user plane reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LineKey {
    /// The control plane's index of the user plane.
    pub up: u32,
    /// Access port index on that user plane.
    pub port: u8,
    /// Outer (service) VLAN id, 0 if absent.
    pub svlan: u16,
    /// Inner (customer) VLAN id, 0 if absent.
    pub cvlan: u16,
}

/// A PPPoE session: RFC 2516 identifies it by the peers' MACs and the
/// SESSION_ID; the line makes it unique across ports and VLANs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    /// The access line.
    pub line: LineKey,
    /// The client's MAC address.
    pub mac: [u8; 6],
    /// SESSION_ID, 1..=0xfffe.
    pub session_id: u16,
}

/// Discovery server settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// AC-Name sent in every PADO. Default: `"vbng"`.
    pub ac_name: String,
    /// Services offered. Empty: any Service-Name is accepted. A client
    /// asking for the empty Service-Name (any service) is always accepted.
    /// Default: empty.
    pub service_names: Vec<String>,
    /// Key of the AC-Cookie hash. Default: all zero; set it from a random
    /// source, or cookies can be forged.
    pub cookie_secret: [u8; 16],
    /// How long a PADO's cookie stays valid: at least this, at most twice
    /// this. Default: 60,000 ms.
    pub cookie_lifetime_ms: u64,
    /// Sessions one MAC may hold on one line. Default: 8.
    pub max_sessions_per_mac: u32,
    /// Sessions on one line (port and VLAN pair). Default: 4096.
    pub max_sessions_per_vlan: u32,
    /// PADI per second from one MAC on one line; 0 = unlimited. Default: 5.
    pub padi_per_mac_pps: u32,
    /// PADI per second on one access port; 0 = unlimited. Default: 500.
    pub padi_per_port_pps: u32,
    /// PADR per second from one MAC on one line; 0 = unlimited. Default: 5.
    pub padr_per_mac_pps: u32,
    /// Largest PPP-Max-Payload granted to a client that asks for more than
    /// 1492 (RFC 4638); clients that do not ask get nothing (1492).
    /// Default: 1500.
    pub max_payload: u16,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            ac_name: "vbng".to_string(),
            service_names: Vec::new(),
            cookie_secret: [0; 16],
            cookie_lifetime_ms: 60_000,
            max_sessions_per_mac: 8,
            max_sessions_per_vlan: 4096,
            padi_per_mac_pps: 5,
            padi_per_port_pps: 500,
            padr_per_mac_pps: 5,
            max_payload: 1500,
        }
    }
}

/// What happened to one discovery frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoveryOutcome {
    /// PPPoE payload (header and tags) to send back to the client's MAC on
    /// its line, EtherType 0x8863.
    pub reply: Option<Vec<u8>>,
    /// A session opened or closed.
    pub event: Option<DiscoveryEvent>,
    /// Why the frame was refused (a refused PADR may still get an error
    /// PADS in `reply`).
    pub dropped: Option<DiscoveryDrop>,
}

/// A change in the set of sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryEvent {
    /// PADS sent: the session exists, PPP (LCP) starts.
    Opened {
        /// The session.
        key: SessionKey,
        /// The Service-Name the client asked for (empty = any).
        service_name: Vec<u8>,
        /// TR-101 line identification inserted by the access node.
        access_loop: AccessLoop,
        /// PPP-Max-Payload granted (RFC 4638), when the client asked for
        /// 1492 or more: the LCP MRU may go up to this.
        max_payload: Option<u16>,
        /// The client's Host-Uniq.
        host_uniq: Option<Vec<u8>>,
    },
    /// The client sent PADT: the session is gone.
    Closed {
        /// The session.
        key: SessionKey,
    },
}

type ClientId = (LineKey, [u8; 6]);

/// Entries of the per-client limiter table above which idle entries are
/// pruned; past it (after pruning), new clients are limited per port only.
const CLIENT_LIMITER_CAP: usize = 65_536;

/// A token bucket in thousandths of a token; burst = one second of `rate`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    milli: u64,
    last_ms: u64,
}

impl Bucket {
    fn full(rate: u32, now_ms: u64) -> Self {
        Bucket {
            milli: u64::from(rate) * 1000,
            last_ms: now_ms,
        }
    }

    fn level(&self, rate: u32, now_ms: u64) -> u64 {
        let refill = now_ms
            .saturating_sub(self.last_ms)
            .saturating_mul(u64::from(rate));
        self.milli
            .saturating_add(refill)
            .min(u64::from(rate) * 1000)
    }

    fn take(&mut self, rate: u32, now_ms: u64) -> bool {
        if rate == 0 {
            return true;
        }
        self.milli = self.level(rate, now_ms);
        self.last_ms = self.last_ms.max(now_ms);
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            false
        }
    }

    fn is_full(&self, rate: u32, now_ms: u64) -> bool {
        self.level(rate, now_ms) >= u64::from(rate) * 1000
    }
}

#[derive(Debug, Clone, Copy)]
struct ClientLimits {
    padi: Bucket,
    padr: Bucket,
}

#[derive(Debug)]
struct Session {
    host_uniq: Option<Vec<u8>>,
    relay_session_id: Option<Vec<u8>>,
    pads: Vec<u8>,
}

/// The PPPoE discovery server: sessions by [`SessionKey`], the session-id
/// allocator, rate limiters and counters.
#[derive(Debug)]
pub struct DiscoveryServer {
    cfg: DiscoveryConfig,
    sessions: HashMap<SessionKey, Session>,
    by_client: HashMap<ClientId, Vec<u16>>,
    by_line: HashMap<LineKey, u32>,
    client_limits: HashMap<ClientId, ClientLimits>,
    port_limits: HashMap<(u32, u8), Bucket>,
    next_id: u16,
    counters: DiscoveryCounters,
}

/// The tags of a PADI or PADR that matter to the server.
struct Request {
    service_name: Vec<u8>,
    host_uniq: Option<Vec<u8>>,
    relay_session_id: Option<Vec<u8>>,
    cookie: Option<Vec<u8>>,
    max_payload: Option<u16>,
    access_loop: AccessLoop,
}

impl Request {
    fn parse(body: &[u8]) -> Option<Request> {
        let tags = wire::parse_tags(body).ok()?;
        let access_loop = AccessLoop::from_tags(&tags).ok()?;
        let mut r = Request {
            service_name: Vec::new(),
            host_uniq: None,
            relay_session_id: None,
            cookie: None,
            max_payload: None,
            access_loop,
        };
        let mut seen_service = false;
        // RFC 2516 expects one of each; the first one wins.
        for t in tags {
            match t {
                Tag::ServiceName(v) if !seen_service => {
                    seen_service = true;
                    r.service_name = v;
                }
                Tag::HostUniq(v) if r.host_uniq.is_none() => r.host_uniq = Some(v),
                Tag::RelaySessionId(v) if r.relay_session_id.is_none() => {
                    r.relay_session_id = Some(v)
                }
                Tag::AcCookie(v) if r.cookie.is_none() => r.cookie = Some(v),
                Tag::PppMaxPayload(m) if r.max_payload.is_none() => r.max_payload = Some(m),
                _ => {}
            }
        }
        Some(r)
    }

    /// Host-Uniq and Relay-Session-Id, echoed in every answer.
    fn echoes(&self, tags: &mut Vec<Tag>) {
        if let Some(h) = &self.host_uniq {
            tags.push(Tag::HostUniq(h.clone()));
        }
        if let Some(r) = &self.relay_session_id {
            tags.push(Tag::RelaySessionId(r.clone()));
        }
    }
}

impl DiscoveryServer {
    /// A server with no sessions.
    pub fn new(cfg: DiscoveryConfig) -> Self {
        DiscoveryServer {
            cfg,
            sessions: HashMap::new(),
            by_client: HashMap::new(),
            by_line: HashMap::new(),
            client_limits: HashMap::new(),
            port_limits: HashMap::new(),
            next_id: 1,
            counters: DiscoveryCounters::default(),
        }
    }

    /// One 0x8863 frame payload (after Ethernet/VLAN) from `mac` on `line`.
    pub fn handle(
        &mut self,
        now_ms: u64,
        line: LineKey,
        mac: [u8; 6],
        payload: &[u8],
    ) -> DiscoveryOutcome {
        let Ok((header, body)) = wire::parse(payload) else {
            self.counters.rx_other += 1;
            return self.dropped(DiscoveryDrop::Malformed);
        };
        match header.code {
            Code::Padi => self.counters.rx_padi += 1,
            Code::Padr => self.counters.rx_padr += 1,
            Code::Padt => self.counters.rx_padt += 1,
            _ => self.counters.rx_other += 1,
        }
        // Group bit set or all zero: not a host that can hold a session.
        if mac[0] & 1 != 0 || mac == [0; 6] {
            return self.dropped(DiscoveryDrop::Malformed);
        }
        match header.code {
            Code::Padi => self.on_padi(now_ms, line, mac, header.session_id, body),
            Code::Padr => self.on_padr(now_ms, line, mac, header.session_id, body),
            Code::Padt => self.on_padt(line, mac, header.session_id),
            _ => self.dropped(DiscoveryDrop::UnsupportedCode),
        }
    }

    /// Server-initiated end: the PADT payload to send to the client (and
    /// the session forgotten). `reason`, if not empty, goes in a
    /// Generic-Error tag. `None` if there is no such session.
    pub fn close(&mut self, key: &SessionKey, reason: &str) -> Option<Vec<u8>> {
        let s = self.remove(key)?;
        let mut tags = Vec::new();
        if let Some(h) = s.host_uniq {
            tags.push(Tag::HostUniq(h));
        }
        if let Some(r) = s.relay_session_id {
            tags.push(Tag::RelaySessionId(r));
        }
        if !reason.is_empty() {
            tags.push(Tag::GenericError(reason.as_bytes().to_vec()));
        }
        self.counters.sessions_closed_by_server += 1;
        self.counters.tx_padt += 1;
        Some(wire::emit(
            Code::Padt,
            key.session_id,
            &wire::emit_tags(&tags),
        ))
    }

    /// Forget a session that ended by other means (no PADT).
    pub fn forget(&mut self, key: &SessionKey) {
        if self.remove(key).is_some() {
            self.counters.sessions_closed_by_server += 1;
        }
    }

    /// Take over a session opened by another process (a restarted control
    /// plane): its SESSION_ID counts as used for its client and it counts
    /// towards the caps (which do not refuse it: the session exists). A
    /// retransmitted PADR with its Host-Uniq gets a PADS rebuilt from
    /// `service_name`, `host_uniq` and `max_payload`. False, with nothing
    /// changed, if the key is taken or its SESSION_ID is 0 or 0xffff.
    pub fn restore(
        &mut self,
        key: SessionKey,
        service_name: Vec<u8>,
        host_uniq: Option<Vec<u8>>,
        max_payload: Option<u16>,
    ) -> bool {
        if matches!(key.session_id, 0 | 0xffff) || self.sessions.contains_key(&key) {
            return false;
        }
        let mut tags = vec![Tag::ServiceName(service_name)];
        if let Some(h) = &host_uniq {
            tags.push(Tag::HostUniq(h.clone()));
        }
        if let Some(m) = max_payload {
            tags.push(Tag::PppMaxPayload(m));
        }
        let pads = wire::emit(Code::Pads, key.session_id, &wire::emit_tags(&tags));
        self.sessions.insert(
            key,
            Session {
                host_uniq,
                relay_session_id: None,
                pads,
            },
        );
        self.by_client
            .entry((key.line, key.mac))
            .or_default()
            .push(key.session_id);
        *self.by_line.entry(key.line).or_default() += 1;
        true
    }

    /// True if the session is open.
    pub fn contains(&self, key: &SessionKey) -> bool {
        self.sessions.contains_key(key)
    }

    /// Open sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Counters since creation.
    pub fn counters(&self) -> &DiscoveryCounters {
        &self.counters
    }

    fn dropped(&mut self, reason: DiscoveryDrop) -> DiscoveryOutcome {
        self.counters.drops[reason as usize] += 1;
        DiscoveryOutcome {
            dropped: Some(reason),
            ..DiscoveryOutcome::default()
        }
    }

    fn remove(&mut self, key: &SessionKey) -> Option<Session> {
        let s = self.sessions.remove(key)?;
        let client = (key.line, key.mac);
        if let Some(ids) = self.by_client.get_mut(&client) {
            ids.retain(|&id| id != key.session_id);
            if ids.is_empty() {
                self.by_client.remove(&client);
            }
        }
        if let Some(n) = self.by_line.get_mut(&key.line) {
            *n -= 1;
            if *n == 0 {
                self.by_line.remove(&key.line);
            }
        }
        Some(s)
    }

    /// Per-client limiter; `None` when the table is full of active clients
    /// (then only the per-port limit applies).
    fn client_limits(&mut self, now_ms: u64, client: ClientId) -> Option<&mut ClientLimits> {
        if !self.client_limits.contains_key(&client) {
            if self.client_limits.len() >= CLIENT_LIMITER_CAP {
                let (pi, pr) = (self.cfg.padi_per_mac_pps, self.cfg.padr_per_mac_pps);
                // A full bucket is what a new entry would be: drop those.
                self.client_limits
                    .retain(|_, l| !(l.padi.is_full(pi, now_ms) && l.padr.is_full(pr, now_ms)));
                if self.client_limits.len() >= CLIENT_LIMITER_CAP {
                    return None;
                }
            }
            let limits = ClientLimits {
                padi: Bucket::full(self.cfg.padi_per_mac_pps, now_ms),
                padr: Bucket::full(self.cfg.padr_per_mac_pps, now_ms),
            };
            self.client_limits.insert(client, limits);
        }
        self.client_limits.get_mut(&client)
    }

    fn at_cap(&self, client: &ClientId) -> bool {
        let per_mac = self.by_client.get(client).map_or(0, |v| v.len());
        let per_line = self.by_line.get(&client.0).copied().unwrap_or(0);
        per_mac as u64 >= u64::from(self.cfg.max_sessions_per_mac)
            || per_line >= self.cfg.max_sessions_per_vlan
    }

    fn service_ok(&self, name: &[u8]) -> bool {
        name.is_empty()
            || self.cfg.service_names.is_empty()
            || self.cfg.service_names.iter().any(|s| s.as_bytes() == name)
    }

    /// RFC 4638: a client asking for more than 1492 gets what we can do.
    fn grant_max_payload(&self, asked: Option<u16>) -> Option<u16> {
        let asked = asked.filter(|&m| m >= ETH_PPPOE_MTU)?;
        Some(asked.min(self.cfg.max_payload.max(ETH_PPPOE_MTU)))
    }

    /// A reply, unless it would not fit a standard Ethernet frame.
    fn fits(code: Code, session_id: u16, tags: &[Tag]) -> Option<Vec<u8>> {
        let body = wire::emit_tags(tags);
        (body.len() <= MAX_PAYLOAD_STANDARD).then(|| wire::emit(code, session_id, &body))
    }

    /// RFC 2516 section 5.1/5.2.
    fn on_padi(
        &mut self,
        now_ms: u64,
        line: LineKey,
        mac: [u8; 6],
        session_id: u16,
        body: &[u8],
    ) -> DiscoveryOutcome {
        if session_id != 0 {
            return self.dropped(DiscoveryDrop::Malformed);
        }
        // A flooding MAC spends its own tokens before the port's.
        let rate = self.cfg.padi_per_mac_pps;
        if let Some(l) = self.client_limits(now_ms, (line, mac))
            && !l.padi.take(rate, now_ms)
        {
            return self.dropped(DiscoveryDrop::RateLimited);
        }
        let port_rate = self.cfg.padi_per_port_pps;
        let port = self
            .port_limits
            .entry((line.up, line.port))
            .or_insert_with(|| Bucket::full(port_rate, now_ms));
        if !port.take(port_rate, now_ms) {
            return self.dropped(DiscoveryDrop::RateLimited);
        }
        let Some(req) = Request::parse(body) else {
            return self.dropped(DiscoveryDrop::Malformed);
        };
        if !self.service_ok(&req.service_name) {
            return self.dropped(DiscoveryDrop::UnknownService);
        }
        if self.at_cap(&(line, mac)) {
            return self.dropped(DiscoveryDrop::TooManySessions);
        }
        let cfg = &self.cfg;
        let cookie = cookie::make(
            &cfg.cookie_secret,
            cfg.cookie_lifetime_ms,
            now_ms,
            &line,
            &mac,
        );
        let mut tags = vec![
            Tag::AcName(cfg.ac_name.as_bytes().to_vec()),
            Tag::ServiceName(req.service_name.clone()),
        ];
        for s in &cfg.service_names {
            if s.as_bytes() != req.service_name.as_slice() {
                tags.push(Tag::ServiceName(s.as_bytes().to_vec()));
            }
        }
        tags.push(Tag::AcCookie(cookie.to_vec()));
        req.echoes(&mut tags);
        if let Some(m) = self.grant_max_payload(req.max_payload) {
            tags.push(Tag::PppMaxPayload(m));
        }
        let Some(pado) = Self::fits(Code::Pado, 0, &tags) else {
            return self.dropped(DiscoveryDrop::Malformed);
        };
        self.counters.tx_pado += 1;
        DiscoveryOutcome {
            reply: Some(pado),
            ..DiscoveryOutcome::default()
        }
    }

    /// RFC 2516 section 5.3/5.4.
    fn on_padr(
        &mut self,
        now_ms: u64,
        line: LineKey,
        mac: [u8; 6],
        session_id: u16,
        body: &[u8],
    ) -> DiscoveryOutcome {
        if session_id != 0 {
            return self.dropped(DiscoveryDrop::Malformed);
        }
        let rate = self.cfg.padr_per_mac_pps;
        if let Some(l) = self.client_limits(now_ms, (line, mac))
            && !l.padr.take(rate, now_ms)
        {
            return self.dropped(DiscoveryDrop::RateLimited);
        }
        let Some(req) = Request::parse(body) else {
            return self.dropped(DiscoveryDrop::Malformed);
        };
        let cfg = &self.cfg;
        let cookie_ok = req.cookie.as_deref().is_some_and(|c| {
            cookie::verify(
                &cfg.cookie_secret,
                cfg.cookie_lifetime_ms,
                now_ms,
                &line,
                &mac,
                c,
            )
        });
        if !cookie_ok {
            return self.dropped(DiscoveryDrop::BadCookie);
        }
        let client = (line, mac);
        // A retransmitted PADR: the PADS was lost, send it again.
        if let Some(ids) = self.by_client.get(&client) {
            for &id in ids {
                let key = SessionKey {
                    line,
                    mac,
                    session_id: id,
                };
                if let Some(s) = self.sessions.get(&key)
                    && s.host_uniq == req.host_uniq
                {
                    let pads = s.pads.clone();
                    self.counters.tx_pads += 1;
                    return DiscoveryOutcome {
                        reply: Some(pads),
                        ..DiscoveryOutcome::default()
                    };
                }
            }
        }
        if !self.service_ok(&req.service_name) {
            return self.refuse(&req, DiscoveryDrop::UnknownService);
        }
        if self.at_cap(&client) {
            return self.refuse(&req, DiscoveryDrop::TooManySessions);
        }
        let Some(id) = self.allocate_id(&client) else {
            return self.refuse(&req, DiscoveryDrop::TooManySessions);
        };
        let max_payload = self.grant_max_payload(req.max_payload);
        let mut tags = vec![Tag::ServiceName(req.service_name.clone())];
        req.echoes(&mut tags);
        if let Some(m) = max_payload {
            tags.push(Tag::PppMaxPayload(m));
        }
        let Some(pads) = Self::fits(Code::Pads, id, &tags) else {
            return self.dropped(DiscoveryDrop::Malformed);
        };
        let key = SessionKey {
            line,
            mac,
            session_id: id,
        };
        self.sessions.insert(
            key,
            Session {
                host_uniq: req.host_uniq.clone(),
                relay_session_id: req.relay_session_id,
                pads: pads.clone(),
            },
        );
        self.by_client.entry(client).or_default().push(id);
        *self.by_line.entry(line).or_default() += 1;
        self.counters.tx_pads += 1;
        self.counters.sessions_opened += 1;
        DiscoveryOutcome {
            reply: Some(pads),
            event: Some(DiscoveryEvent::Opened {
                key,
                service_name: req.service_name,
                access_loop: req.access_loop,
                max_payload,
                host_uniq: req.host_uniq,
            }),
            dropped: None,
        }
    }

    /// A PADS with SESSION_ID 0 and an error tag (RFC 2516 section 5.4).
    fn refuse(&mut self, req: &Request, reason: DiscoveryDrop) -> DiscoveryOutcome {
        let mut tags = vec![Tag::ServiceName(req.service_name.clone())];
        req.echoes(&mut tags);
        tags.push(match reason {
            DiscoveryDrop::UnknownService => Tag::ServiceNameError(b"service not offered".to_vec()),
            _ => Tag::AcSystemError(b"session limit reached".to_vec()),
        });
        let mut out = self.dropped(reason);
        out.reply = Self::fits(Code::Pads, 0, &tags);
        if out.reply.is_some() {
            self.counters.tx_pads_error += 1;
        }
        out
    }

    /// A SESSION_ID in 1..=0xfffe (RFC 2516 section 4: 0xffff is reserved,
    /// 0 means no session) not used by this client; rotating, so a closed
    /// session's id is not reused at once.
    fn allocate_id(&mut self, client: &ClientId) -> Option<u16> {
        let used = self.by_client.get(client).map_or(&[][..], |v| v.as_slice());
        for _ in 0..0xfffe {
            let id = self.next_id;
            self.next_id = if id >= 0xfffe { 1 } else { id + 1 };
            if !used.contains(&id) {
                return Some(id);
            }
        }
        None
    }

    /// RFC 2516 section 5.5.
    fn on_padt(&mut self, line: LineKey, mac: [u8; 6], session_id: u16) -> DiscoveryOutcome {
        let key = SessionKey {
            line,
            mac,
            session_id,
        };
        if self.remove(&key).is_none() {
            return self.dropped(DiscoveryDrop::UnknownSession);
        }
        self.counters.sessions_closed_by_client += 1;
        DiscoveryOutcome {
            event: Some(DiscoveryEvent::Closed { key }),
            ..DiscoveryOutcome::default()
        }
    }
}
