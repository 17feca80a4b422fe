//! PPPoE subscribers: discovery (RFC 2516) and PPP (RFC 1661, PAP, CHAP,
//! IPCP) from `vbng_access`, driven by the frames user planes redirect.
//!
//! One task owns every PPPoE session's state. Redirected 0x8863/0x8864
//! frames arrive from the redirect task; replies leave on the GTP-U socket
//! towards the user plane that sent them (TEID = access port). The slow
//! steps run in their own tasks and report back here:
//! - authentication through the AAA backend ([`Aaa::authenticate_ppp`]:
//!   the subscriber file's `[[users]]`, or RADIUS PAP/CHAP);
//! - programming the user plane once IPCP opened
//!   ([`Sessions::open_pppoe`]); if the user plane refuses, PPP is
//!   terminated and a PADT sent: no session is half-programmed.
//!
//! The address comes from the pool the AAA profile names (or its fixed
//! address) through [`vbng_access::dhcpv4::DhcpServer::claim_external`],
//! and goes back when the session ends.
//!
//! Ends: PADT or LCP Terminate from the client, LCP echo failure, the
//! network side ([`Sessions::terminate`]: REST delete, Disconnect-Request,
//! Session-/Idle-Timeout) — each spools the accounting Stop with its cause.
//!
//! Restart: with a lease file, a session the user plane accepted is
//! journalled ([`StoredPppoe`]: discovery, the negotiated LCP options, the
//! user, IPCP addresses, pool and AAA profile) and removed from it when it
//! ends. A restarted control plane restores each one
//! ([`PppoeService::restore`]) straight into the Network phase: the same
//! session id, magic numbers and address, its registry session re-programmed
//! (the user plane adopts it) and accounted on under its Acct-Session-Id.
//! IPv6 is restored with it (IPv6CP Opened, the DHCPv6 bindings, the
//! router advertising again) or, if its prefixes are no longer available,
//! closed alone. The subscriber notices nothing; a session that cannot be
//! restored gets a PADT.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};
use vbng_aaa::radius::terminate_cause;
use vbng_access::dhcpv4::ClientKey;
use vbng_access::ppp::{self, Credentials, DownReason, PppConfig, PppEvent, PppSession};
use vbng_access::pppoe::discovery::{
    DiscoveryConfig, DiscoveryEvent, DiscoveryServer, LineKey, SessionKey,
};
use vbng_access::pppoe::wire::{self as pppoe_wire, AccessLoop, Code};
use vbng_dataplane::wire::{EtherType, EthernetAddress, GtpuRepr, L2Header};

use crate::aaa::{Aaa, SessionProfile};
use crate::cups::PppoeAccess;
use crate::metrics::Metrics;
use crate::redirect::SharedDhcp;
use crate::session::Sessions;
use crate::session::journal::{LeaseStore, Record, StoredPppoe};
use crate::session::manager::PppoeOpen;

mod ipv6;

/// A redirected PPPoE frame.
#[derive(Debug, Clone)]
pub struct PppoeFrame {
    /// User plane index.
    pub up: u32,
    /// The user plane's GTP-U address (replies go there).
    pub src: SocketAddr,
    /// Access port (the GTP-U TEID).
    pub port: u8,
    /// Its Ethernet/VLAN header.
    pub l2: L2Header,
    /// Everything after the Ethernet/VLAN header.
    pub payload: Vec<u8>,
}

/// Settings of the PPPoE service.
#[derive(Debug, Clone)]
pub struct PppoeSettings {
    /// Discovery (AC-Name, limits, cookie secret).
    pub discovery: DiscoveryConfig,
    /// PPP negotiation.
    pub ppp: PppConfig,
    /// Virtual gateway MAC (source of our frames).
    pub gateway_mac: EthernetAddress,
    /// MTU of PPPoE sessions' IPv4 packets.
    pub mtu: u16,
    /// The DHCPv6 server of the IPv6 parts of the pools (IPv6CP, RAs and
    /// DHCPv6 for their sessions), shared with IPoE; without pools IPv6CP
    /// is Protocol-Rejected, unless AAA gives a session an IPv6 prefix.
    pub dhcpv6: crate::ipv6::SharedDhcpv6,
    /// Router Advertisement settings (the MTU option is `mtu`).
    pub ra: vbng_access::ipv6::ra::RaConfig,
}

/// Messages into the PPPoE task.
#[derive(Debug)]
pub enum Input {
    /// A frame from a user plane.
    Frame(PppoeFrame),
    /// The AAA answer for a session.
    AuthDone {
        /// The session.
        key: SessionKey,
        /// Profile, or why not (boxed: the profiles would make every
        /// input as large).
        result: Box<Result<(crate::aaa::SubscriberProfile, SessionProfile), String>>,
    },
    /// The user plane accepted (session id) or refused the session.
    Programmed {
        /// The session.
        key: SessionKey,
        /// Registry id, or why not.
        result: Result<u64, String>,
    },
    /// End session `id` from the network side with `cause`.
    Terminate {
        /// Registry id.
        id: u64,
        /// Acct-Terminate-Cause.
        cause: u32,
    },
}

/// One PPPoE session's state.
struct PppState {
    ppp: PppSession,
    up: u32,
    src: SocketAddr,
    l2: L2Header,
    access_loop: AccessLoop,
    user: Option<String>,
    profile: Option<(crate::aaa::SubscriberProfile, SessionProfile)>,
    ipv4: Option<Ipv4Addr>,
    dns: [Option<Ipv4Addr>; 2],
    gateway: Option<Ipv4Addr>,
    registry_id: Option<u64>,
    /// What discovery agreed on, journalled with the session.
    opened: OpenedWith,
    /// The pool the address was claimed from.
    pool: Option<String>,
    /// The session's last record in the lease journal (a removal is due at
    /// its end); appended again with the IPv6 part when that changes.
    journalled: Option<StoredPppoe>,
}

/// Discovery's part of a session, as the PADS gave it.
#[derive(Debug, Clone, Default)]
struct OpenedWith {
    service_name: Vec<u8>,
    host_uniq: Option<Vec<u8>>,
    max_payload: Option<u16>,
}

/// The PPPoE task.
pub struct PppoeService {
    settings: PppoeSettings,
    discovery: DiscoveryServer,
    sessions: HashMap<SessionKey, PppState>,
    by_id: HashMap<u64, SessionKey>,
    socket: Arc<UdpSocket>,
    dhcp: SharedDhcp,
    aaa: Aaa,
    registry: Sessions,
    metrics: Metrics,
    tx: mpsc::UnboundedSender<Input>,
    journal: Option<LeaseStore>,
    ipv6: ipv6::Ipv6Service,
}

impl std::fmt::Debug for PppoeService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PppoeService")
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

/// A random 32-bit value (LCP magic numbers), from the RADIUS crate's
/// random source.
fn random_u32() -> u32 {
    let r = vbng_aaa::radius::crypto::random_authenticator().unwrap_or([7; 16]);
    u32::from_be_bytes([r[0], r[1], r[2], r[3]])
}

fn random_16() -> [u8; 16] {
    vbng_aaa::radius::crypto::random_authenticator().unwrap_or([9; 16])
}

impl PppoeService {
    /// A PPPoE service replying on `socket`; returns it with the sender
    /// of its input (for the redirect task and the session hook).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: PppoeSettings,
        socket: Arc<UdpSocket>,
        dhcp: SharedDhcp,
        aaa: Aaa,
        registry: Sessions,
        metrics: Metrics,
    ) -> (
        Self,
        mpsc::UnboundedSender<Input>,
        mpsc::UnboundedReceiver<Input>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let svc = PppoeService {
            ipv6: ipv6::Ipv6Service::new(
                settings.gateway_mac,
                settings.dhcpv6.clone(),
                settings.ra,
            ),
            discovery: DiscoveryServer::new(settings.discovery.clone()),
            settings,
            sessions: HashMap::new(),
            by_id: HashMap::new(),
            socket,
            dhcp,
            aaa,
            registry,
            metrics,
            tx: tx.clone(),
            journal: None,
        };
        (svc, tx, rx)
    }

    /// Journal established sessions to `store` from now on (the lease
    /// file), so that a restarted control plane restores them.
    pub fn set_journal(&mut self, store: LeaseStore) {
        self.journal = Some(store);
    }

    /// Take over the sessions a previous control plane journalled (call
    /// before [`PppoeService::run`], with the user planes not yet
    /// re-programmed): each gets its address back from its pool, its
    /// discovery session and a PPP session in the Network phase, and its
    /// registry session, which the user plane adopts once it associates.
    /// A session that cannot be restored (record incomplete, address or
    /// user plane gone, duplicate) gets a PADT and leaves the journal.
    pub async fn restore(&mut self, stored: Vec<StoredPppoe>) {
        let now = crate::monotonic_ms();
        let mut restored = 0usize;
        for rec in stored {
            let key = SessionKey::from(rec.key);
            match self.restore_one(now, &rec) {
                Ok(()) => {
                    restored += 1;
                    self.restore_ipv6(now, &key, &rec).await;
                }
                Err(why) => {
                    warn!(session_id = key.session_id, mac = %EthernetAddress(key.mac), why,
                        "PPPoE session from the lease file not restored; sending PADT");
                    let mut tags = Vec::new();
                    if let Some(h) = &rec.host_uniq {
                        tags.push(pppoe_wire::Tag::HostUniq(h.clone()));
                    }
                    let padt =
                        pppoe_wire::emit(Code::Padt, key.session_id, &pppoe_wire::emit_tags(&tags));
                    let l2 = line_l2(&key);
                    self.send(
                        rec.up_gtpu,
                        key.line.port,
                        &l2,
                        key.mac,
                        EtherType::PppoeDiscovery,
                        &padt,
                    )
                    .await;
                    if let Some(j) = &self.journal {
                        j.append_detached(Record::pppoe_remove(key));
                    }
                }
            }
        }
        if restored > 0 {
            info!(restored, "PPPoE sessions restored from the lease file");
        }
    }

    /// Restore one journalled session; on failure nothing is left taken.
    fn restore_one(&mut self, now: u64, rec: &StoredPppoe) -> Result<(), &'static str> {
        let key = SessionKey::from(rec.key);
        let (Some(link), Some(pool), Some(profile)) = (rec.link, &rec.pool, &rec.profile) else {
            return Err("incomplete record");
        };
        if self.sessions.contains_key(&key) {
            return Err("duplicate record");
        }
        {
            let mut dhcp = self.dhcp.lock().unwrap_or_else(|p| p.into_inner());
            if dhcp.claim_external(pool, Some(link.ipv4), now).is_err() {
                return Err("the address is no longer free in its pool");
            }
        }
        let release = |svc: &Self| {
            let mut dhcp = svc.dhcp.lock().unwrap_or_else(|p| p.into_inner());
            dhcp.release_external(link.ipv4);
        };
        if !self.discovery.restore(
            key,
            rec.service_name.clone(),
            rec.host_uniq.clone(),
            rec.max_payload,
        ) {
            release(self);
            return Err("invalid session id");
        }
        let open = PppoeOpen {
            key: client_key(&key),
            access: PppoeAccess {
                session_id: key.session_id,
                mtu: self.settings.mtu,
            },
            ipv4: link.ipv4,
            circuit_id: rec.circuit_id.clone(),
            remote_id: rec.remote_id.clone(),
            profile: profile.clone(),
        };
        let Some(id) = self.registry.restore_pppoe(open, rec.started_unix) else {
            self.discovery.forget(&key);
            release(self);
            return Err("its user plane is not configured");
        };
        let ppp = PppSession::restore(self.settings.ppp, &link.into(), random_16(), now);
        self.sessions.insert(
            key,
            PppState {
                ppp,
                up: key.line.up,
                src: rec.up_gtpu,
                l2: line_l2(&key),
                access_loop: AccessLoop {
                    circuit_id: rec.circuit_id.clone(),
                    remote_id: rec.remote_id.clone(),
                    ..AccessLoop::default()
                },
                user: Some(rec.username.clone()),
                profile: None,
                ipv4: Some(link.ipv4),
                dns: link.dns,
                gateway: Some(link.gateway),
                registry_id: Some(id),
                opened: OpenedWith {
                    service_name: rec.service_name.clone(),
                    host_uniq: rec.host_uniq.clone(),
                    max_payload: rec.max_payload,
                },
                pool: Some(pool.clone()),
                journalled: Some(rec.clone()),
            },
        );
        self.by_id.insert(id, key);
        info!(id, session_id = key.session_id, ipv4 = %link.ipv4, "PPPoE session restored");
        Ok(())
    }

    /// Journal session `key`, programmed as registry session `id`.
    fn journal_put(&mut self, key: &SessionKey, id: u64) {
        let Some(journal) = &self.journal else {
            return;
        };
        let ipv6 = self.stored_ipv6(key);
        let Some(st) = self.sessions.get_mut(key) else {
            return;
        };
        let started_unix = self
            .registry
            .view(id)
            .map_or_else(crate::unix_now, |v| v.started);
        let record = StoredPppoe {
            key: (*key).into(),
            up_gtpu: st.src,
            service_name: st.opened.service_name.clone(),
            host_uniq: st.opened.host_uniq.clone(),
            max_payload: st.opened.max_payload,
            circuit_id: st.access_loop.circuit_id.clone(),
            remote_id: st.access_loop.remote_id.clone(),
            username: st.user.clone().unwrap_or_default(),
            pool: st.pool.clone(),
            link: st.ppp.negotiated().map(Into::into),
            profile: st.profile.as_ref().map(|(_, p)| p.clone()),
            started_unix,
            ipv6,
        };
        journal.append_detached(Record::PppoePut(record.clone()));
        st.journalled = Some(record);
    }

    /// Run until `shutdown`.
    pub async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Input>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                Some(input) = rx.recv() => self.on_input(input).await,
                _ = tick.tick() => self.on_tick().await,
                _ = shutdown.changed() => break,
            }
        }
    }

    async fn on_input(&mut self, input: Input) {
        let now = crate::monotonic_ms();
        match input {
            Input::Frame(f) => self.on_frame(now, f).await,
            Input::AuthDone { key, result } => self.on_auth(now, key, *result).await,
            Input::Programmed { key, result } => self.on_programmed(now, key, result).await,
            Input::Terminate { id, cause } => {
                if let Some(key) = self.by_id.remove(&id) {
                    info!(id, cause, "ending the PPPoE session from the network side");
                    if let Some(st) = self.sessions.get_mut(&key) {
                        st.registry_id = None;
                        let out = st.ppp.close(now, DownReason::AdminClose);
                        self.emit(&key, out).await;
                    }
                    self.finish(&key, None).await;
                }
            }
        }
    }

    async fn on_tick(&mut self) {
        let now = crate::monotonic_ms();
        let keys: Vec<SessionKey> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.ppp.next_deadline().is_some_and(|d| d <= now))
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            if let Some(st) = self.sessions.get_mut(&key) {
                let out = st.ppp.tick(now);
                self.emit(&key, out).await;
            }
        }
        self.tick_ipv6(now).await;
    }

    async fn on_frame(&mut self, now: u64, f: PppoeFrame) {
        let line = LineKey {
            up: f.up,
            port: f.port,
            svlan: f.l2.svlan.unwrap_or(0),
            cvlan: f.l2.cvlan.unwrap_or(0),
        };
        let mac = f.l2.src.0;
        match f.l2.ethertype {
            EtherType::PppoeDiscovery => {
                let out = self.discovery.handle(now, line, mac, &f.payload);
                if let Some(reply) = out.reply {
                    self.send(f.src, f.port, &f.l2, mac, EtherType::PppoeDiscovery, &reply)
                        .await;
                }
                if let Some(reason) = out.dropped {
                    self.metrics.pppoe_drop(reason.name());
                }
                match out.event {
                    Some(DiscoveryEvent::Opened {
                        key,
                        access_loop,
                        service_name,
                        max_payload,
                        host_uniq,
                    }) => {
                        let mut ppp = PppSession::new(self.settings.ppp, random_u32(), random_16());
                        let start = ppp.start(now);
                        self.sessions.insert(
                            key,
                            PppState {
                                ppp,
                                up: f.up,
                                src: f.src,
                                l2: f.l2,
                                access_loop,
                                user: None,
                                profile: None,
                                ipv4: None,
                                dns: [None, None],
                                gateway: None,
                                registry_id: None,
                                opened: OpenedWith {
                                    service_name,
                                    host_uniq,
                                    max_payload,
                                },
                                pool: None,
                                journalled: None,
                            },
                        );
                        info!(session_id = key.session_id, mac = %EthernetAddress(mac), "PPPoE session opened (PADS sent)");
                        self.emit(&key, start).await;
                    }
                    Some(DiscoveryEvent::Closed { key }) => {
                        info!(session_id = key.session_id, "PADT from the client");
                        self.finish(&key, Some(terminate_cause::USER_REQUEST)).await;
                    }
                    None => {}
                }
            }
            EtherType::PppoeSession => {
                let Ok((h, payload)) = pppoe_wire::parse(&f.payload) else {
                    self.metrics.pppoe_drop("malformed");
                    return;
                };
                if h.code != Code::Session || payload.len() < 2 {
                    self.metrics.pppoe_drop("malformed");
                    return;
                }
                let key = SessionKey {
                    line,
                    mac,
                    session_id: h.session_id,
                };
                let protocol = u16::from_be_bytes([payload[0], payload[1]]);
                if !self.sessions.contains_key(&key) {
                    // A session we do not know (lost, or forged): tell the
                    // client it is over so it rediscovers.
                    self.metrics.pppoe_drop("unknown_session");
                    let padt = pppoe_wire::emit(Code::Padt, h.session_id, &[]);
                    self.send(f.src, f.port, &f.l2, mac, EtherType::PppoeDiscovery, &padt)
                        .await;
                    return;
                }
                if protocol == ppp::proto::IPV6 && self.ipv6_frame(&key, &payload[2..]).await {
                    return;
                }
                let Some(st) = self.sessions.get_mut(&key) else {
                    return;
                };
                let out = st.ppp.input(now, protocol, &payload[2..]);
                self.emit(&key, out).await;
            }
            _ => {}
        }
    }

    /// Send `out`'s frames and act on its events.
    async fn emit(&mut self, key: &SessionKey, out: ppp::Output) {
        let Some(st) = self.sessions.get(key) else {
            return;
        };
        let (src, port, l2) = (st.src, key.line.port, st.l2);
        for (protocol, payload) in &out.frames {
            let mut body = Vec::with_capacity(payload.len() + 2);
            body.extend_from_slice(&protocol.to_be_bytes());
            body.extend_from_slice(payload);
            let frame = pppoe_wire::emit(Code::Session, key.session_id, &body);
            self.send(src, port, &l2, key.mac, EtherType::PppoeSession, &frame)
                .await;
        }
        for ev in out.events {
            match ev {
                PppEvent::Authenticate { user, credentials } => {
                    self.authenticate(*key, user, credentials)
                }
                // Before authentication the address is not known yet: it is
                // given as soon as AAA accepts (see `on_auth`).
                PppEvent::NeedAddress => {
                    Box::pin(self.assign_address(key, crate::monotonic_ms())).await
                }
                PppEvent::Up { ipv4 } => self.program(*key, ipv4),
                PppEvent::Down { reason } => {
                    let cause = match reason {
                        DownReason::PeerTerminated => Some(terminate_cause::USER_REQUEST),
                        DownReason::EchoTimeout => Some(terminate_cause::LOST_CARRIER),
                        DownReason::AdminClose => None,
                        _ => Some(terminate_cause::NAS_ERROR),
                    };
                    info!(session_id = key.session_id, ?reason, "PPP down");
                    if let Some(padt) = self.discovery.close(key, "session ended") {
                        self.send(src, port, &l2, key.mac, EtherType::PppoeDiscovery, &padt)
                            .await;
                    }
                    self.finish(key, cause).await;
                }
            }
        }
        Box::pin(self.sync_ipv6(key)).await;
    }

    /// Start the AAA request for a session.
    fn authenticate(&mut self, key: SessionKey, user: String, credentials: Credentials) {
        let Some(st) = self.sessions.get_mut(&key) else {
            return;
        };
        st.user = Some(user.clone());
        let aaa = self.aaa.clone();
        let tx = self.tx.clone();
        let line = crate::aaa::radius::access_line_attributes(
            &client_key(&key),
            st.access_loop.circuit_id.as_deref(),
            st.access_loop.remote_id.as_deref(),
        );
        tokio::spawn(async move {
            let result = aaa.authenticate_ppp(&user, &credentials, &line).await;
            let _ = tx.send(Input::AuthDone {
                key,
                result: Box::new(result),
            });
        });
    }

    async fn on_auth(
        &mut self,
        now: u64,
        key: SessionKey,
        result: Result<(crate::aaa::SubscriberProfile, SessionProfile), String>,
    ) {
        let Some(st) = self.sessions.get_mut(&key) else {
            return;
        };
        let (accepted, message) = match result {
            Ok((profile, session)) => {
                let claim = {
                    let mut dhcp = self.dhcp.lock().unwrap_or_else(|p| p.into_inner());
                    dhcp.claim_external(&profile.pool, profile.fixed_ipv4, now)
                        .map(|(ip, cfg)| (ip, cfg.gateway, cfg.dns.clone()))
                };
                match claim {
                    Ok((ip, gw, dns)) => {
                        st.pool = Some(profile.pool.clone());
                        st.ipv4 = Some(ip);
                        st.gateway = Some(gw);
                        st.dns = [dns.first().copied(), dns.get(1).copied()];
                        st.profile = Some((profile, session));
                        (true, "welcome".to_string())
                    }
                    Err(e) => {
                        warn!(pool = %profile.pool, reason = e.name(), "no address for the PPP user");
                        (false, "no address available".to_string())
                    }
                }
            }
            Err(reason) => {
                info!(user = ?st.user, %reason, "PPP authentication refused");
                (false, "authentication failed".to_string())
            }
        };
        if accepted {
            self.offer_ipv6(now, &key);
        }
        let Some(st) = self.sessions.get_mut(&key) else {
            return;
        };
        let out = st.ppp.auth_result(now, accepted, &message);
        self.emit(&key, out).await;
        if accepted {
            // PPP holds an IPCP request that came early until it has the
            // address, so giving it now never costs a retransmission.
            self.assign_address(&key, now).await;
        }
    }

    /// Give session `key` its address, once AAA accepted it and the pool
    /// gave one.
    async fn assign_address(&mut self, key: &SessionKey, now: u64) {
        let Some(st) = self.sessions.get_mut(key) else {
            return;
        };
        if let (Some(ip), Some(gw)) = (st.ipv4, st.gateway) {
            let dns = st.dns;
            let out = st.ppp.set_address(now, ip, gw, dns);
            self.emit(key, out).await;
        }
    }

    /// IPCP opened: program the user plane.
    fn program(&mut self, key: SessionKey, ipv4: Ipv4Addr) {
        let Some(st) = self.sessions.get(&key) else {
            return;
        };
        let Some((_, profile)) = st.profile.clone() else {
            return;
        };
        let open = PppoeOpen {
            key: client_key(&key),
            access: PppoeAccess {
                session_id: key.session_id,
                mtu: self.settings.mtu,
            },
            ipv4,
            circuit_id: st.access_loop.circuit_id.clone(),
            remote_id: st.access_loop.remote_id.clone(),
            profile,
        };
        let registry = self.registry.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let result = registry.open_pppoe(open).await;
            let _ = tx.send(Input::Programmed { key, result });
        });
    }

    async fn on_programmed(&mut self, now: u64, key: SessionKey, result: Result<u64, String>) {
        match result {
            Ok(id) => {
                if let Some(st) = self.sessions.get_mut(&key) {
                    st.registry_id = Some(id);
                    self.by_id.insert(id, key);
                    info!(id, session_id = key.session_id, ipv4 = ?st.ipv4, "PPPoE session programmed");
                    self.journal_put(&key, id);
                    self.push_ipv6(&key).await;
                } else {
                    // Ended while being programmed.
                    self.registry
                        .pppoe_ended(id, terminate_cause::USER_REQUEST)
                        .await;
                }
            }
            Err(e) => {
                warn!(session_id = key.session_id, error = %e, "PPPoE session not programmed; terminating it");
                if let Some(st) = self.sessions.get_mut(&key) {
                    let out = st.ppp.close(now, DownReason::NegotiationFailed);
                    self.emit(&key, out).await;
                }
                self.finish(&key, None).await;
            }
        }
    }

    /// Forget session `key`: PADT if discovery still holds it, address back
    /// to its pool, registry session ended with `cause` (if programmed and
    /// `cause` is given).
    async fn finish(&mut self, key: &SessionKey, cause: Option<u32>) {
        let Some(st) = self.sessions.remove(key) else {
            return;
        };
        self.close_ipv6(key);
        if let Some(padt) = self.discovery.close(key, "session ended") {
            self.send(
                st.src,
                key.line.port,
                &st.l2,
                key.mac,
                EtherType::PppoeDiscovery,
                &padt,
            )
            .await;
        }
        if let Some(ip) = st.ipv4 {
            let mut dhcp = self.dhcp.lock().unwrap_or_else(|p| p.into_inner());
            dhcp.release_external(ip);
        }
        if st.journalled.is_some()
            && let Some(j) = &self.journal
        {
            j.append_detached(Record::pppoe_remove(*key));
        }
        if let Some(id) = st.registry_id {
            self.by_id.remove(&id);
            if let Some(cause) = cause {
                self.registry.pppoe_ended(id, cause).await;
            }
        }
        debug!(
            session_id = key.session_id,
            up = st.up,
            "PPPoE session state removed"
        );
    }

    /// Send one frame to the client `mac` behind user plane `src`, access
    /// port `port`, with `l2`'s VLAN tags.
    async fn send(
        &self,
        src: SocketAddr,
        port: u8,
        l2: &L2Header,
        mac: [u8; 6],
        ethertype: EtherType,
        payload: &[u8],
    ) {
        let hdr = L2Header {
            dst: EthernetAddress(mac),
            src: self.settings.gateway_mac,
            svlan: l2.svlan,
            cvlan: l2.cvlan,
            ethertype,
        };
        let mut frame = vec![0u8; hdr.buffer_len()];
        hdr.emit(&mut frame);
        frame.extend_from_slice(payload);
        let Ok(datagram) = GtpuRepr::g_pdu(u32::from(port)).encapsulate(&frame) else {
            return;
        };
        match self.socket.send_to(&datagram, src).await {
            Ok(_) => {
                self.metrics.redirect_out.inc();
            }
            Err(e) => debug!(error = %e, %src, "GTP-U send failed"),
        }
    }
}

/// The Ethernet header of frames to session `key`'s line: its VLAN tags
/// (the addresses and EtherType are set when sending).
fn line_l2(key: &SessionKey) -> L2Header {
    L2Header {
        dst: EthernetAddress(key.mac),
        src: EthernetAddress([0; 6]),
        svlan: (key.line.svlan != 0).then_some(key.line.svlan),
        cvlan: (key.line.cvlan != 0).then_some(key.line.cvlan),
        ethertype: EtherType::PppoeSession,
    }
}

/// The registry's client key of a PPPoE session's line and MAC.
fn client_key(key: &SessionKey) -> ClientKey {
    ClientKey {
        up: key.line.up,
        port: key.line.port,
        svlan: key.line.svlan,
        cvlan: key.line.cvlan,
        mac: key.mac,
    }
}
