//! Applies lease events, REST deletions and user plane state changes to the
//! registry and programs the user planes accordingly; sends the DHCPACKs
//! held until their session is programmed (see the [module docs](super)).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{Instrument, debug, info, info_span, warn};
use vbng_access::dhcpv4::{ClientKey, Lease, LeaseEvent};

use super::journal::{LeaseStore, Record};
use super::{DeferredReply, LeaseUpdate, Registry, Session, SessionState};
use vbng_aaa::radius::terminate_cause;
use vbng_cups::pfcp::Cause;

use crate::aaa::accounting::Accounting;
use crate::aaa::{Aaa, Authentic, Rate, SessionProfile};
use crate::api::model::SessionView;
use crate::cups::{AclChange, CupsError, Ipv6Prefixes, LiveChange, UpEvent, UpHandle, Usage};
use crate::metrics::{DirectionLabels, EventLabels, Metrics};
use crate::redirect::SharedDhcp;

/// Why a REST deletion failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeleteError {
    /// No session has this id.
    #[error("no session with id {0}")]
    NotFound(u64),
}

/// Why a live change of a session (REST `PATCH /sessions/{id}`, CoA)
/// failed. In every case the session keeps the rate and ACL it had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionChangeError {
    /// No session has this id.
    #[error("no session with id {0}")]
    NotFound(u64),
    /// The session is not programmed on a reachable user plane.
    #[error("session {id} is {state}; a live change needs an active session")]
    NotActive {
        /// Session id.
        id: u64,
        /// Its state name ([`SessionState::name`]).
        state: &'static str,
    },
    /// Another change of this session is still waiting for its answer.
    #[error("session {0} already has a change in progress; retry when it completes")]
    InProgress(u64),
    /// The user plane refused the change or did not answer.
    #[error("session {id}: {source}")]
    UserPlane {
        /// Session id.
        id: u64,
        /// What the PFCP client reported.
        source: CupsError,
    },
    /// The service shut down before the user plane answered.
    #[error("session {0}: the change was interrupted by shutdown")]
    Interrupted(u64),
}

impl SessionChangeError {
    /// Whether the user plane refused the change because it could not
    /// create or modify a rule (PFCP cause 73): with an ACL change, the
    /// user plane does not know the ACL name.
    pub fn is_rule_failure(&self) -> bool {
        matches!(
            self,
            SessionChangeError::UserPlane {
                source: CupsError::Rejected {
                    cause: Cause::RuleCreationModificationFailure,
                    ..
                },
                ..
            }
        )
    }
}

/// What a live change of a session sets; a `None` field is left as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionChange {
    /// New peak rates; `Some(None)` lifts the limit.
    pub rate: Option<Option<Rate>>,
    /// New ACL name (the session's Filter-Id); `Some(None)` removes it.
    pub filter_id: Option<Option<String>>,
}

/// The session service: registry plus programming logic. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Mutex<Registry>,
    dhcp: SharedDhcp,
    ups: Vec<UpHandle>,
    aaa: Aaa,
    metrics: Metrics,
    /// The GTP-U redirect socket, shared with the redirect task: held
    /// DHCPACKs leave through it.
    gtpu: Arc<UdpSocket>,
    /// The lease journal, if `[dhcp] lease_file` is set.
    store: std::sync::OnceLock<LeaseStore>,
    /// RADIUS accounting, with `[aaa] backend = "radius"`.
    accounting: std::sync::OnceLock<AccountingSettings>,
    /// Where network-side ends of PPPoE sessions go (session id, cause):
    /// the PPPoE task sends LCP Terminate and PADT.
    pppoe_hook: std::sync::OnceLock<mpsc::UnboundedSender<(u64, u32)>>,
    /// PPPoE sessions waiting for their establishment on the user plane.
    pppoe_waiters: Mutex<std::collections::HashMap<u64, oneshot::Sender<Result<(), String>>>>,
}

/// A PPPoE session to program (see [`Sessions::open_pppoe`]).
#[derive(Debug, Clone)]
pub struct PppoeOpen {
    /// The access line and MAC (user plane index, port, VLANs).
    pub key: vbng_access::dhcpv4::ClientKey,
    /// PPPoE session id and MTU.
    pub access: crate::cups::PppoeAccess,
    /// The address IPCP gave.
    pub ipv4: std::net::Ipv4Addr,
    /// Access-loop circuit-id and remote-id (PPPoE vendor tags).
    pub circuit_id: Option<Vec<u8>>,
    /// Remote-id.
    pub remote_id: Option<Vec<u8>>,
    /// Rate and AAA attributes.
    pub profile: SessionProfile,
}

/// Accounting and its timers.
#[derive(Debug, Clone)]
pub struct AccountingSettings {
    /// Where records go.
    pub accounting: Accounting,
    /// Interim interval (s) for sessions whose AAA gave none; 0 = none.
    pub default_interim_s: u32,
    /// Shortest interim interval (s) accepted.
    pub min_interim_s: u32,
}

impl Sessions {
    /// A session service programming `ups` (indexed by the user plane
    /// index used in [`vbng_access::dhcpv4::ClientKey::up`]) and sending
    /// held DHCPACKs on `gtpu`.
    pub fn new(
        dhcp: SharedDhcp,
        ups: Vec<UpHandle>,
        aaa: Aaa,
        metrics: Metrics,
        gtpu: Arc<UdpSocket>,
    ) -> Self {
        Sessions {
            inner: Arc::new(Inner {
                registry: Mutex::new(Registry::default()),
                dhcp,
                ups,
                aaa,
                metrics,
                gtpu,
                store: std::sync::OnceLock::new(),
                accounting: std::sync::OnceLock::new(),
                pppoe_hook: std::sync::OnceLock::new(),
                pppoe_waiters: Mutex::new(std::collections::HashMap::new()),
            }),
        }
    }

    /// Send network-side ends of PPPoE sessions to `hook` (set once).
    pub fn set_pppoe_hook(&self, hook: mpsc::UnboundedSender<(u64, u32)>) {
        let _ = self.inner.pppoe_hook.set(hook);
    }

    /// Register a PPPoE session whose IPCP just opened and program it on
    /// its user plane; resolves once the user plane accepted it (its
    /// accounting Start spooled) or refused it (the session is gone then).
    pub async fn open_pppoe(&self, open: PppoeOpen) -> Result<u64, String> {
        let Some(up) = self.inner.ups.get(open.key.up as usize) else {
            return Err(format!("no user plane with index {}", open.key.up));
        };
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut reg = self.registry();
            let id = reg.next_id();
            reg.insert(pppoe_session(
                id,
                open,
                up.name(),
                SessionState::Establishing,
            ));
            id
        };
        self.pppoe_waiters().insert(id, tx);
        let this = self.clone();
        tokio::spawn(async move { this.establish(id).await });
        match rx.await {
            Ok(Ok(())) => Ok(id),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("the session was removed before it was programmed".into()),
        }
    }

    /// Re-create PPPoE session `open`, established before a restart of the
    /// control plane (it started at `started_unix`) and restored from the
    /// lease journal by the PPPoE task. Like a restored lease's session, it
    /// waits as [`SessionState::UserPlaneDown`] until its user plane
    /// associates and then adopts it (same access key, PPPoE session id
    /// and address); a RADIUS session is accounted on under its
    /// Acct-Session-Id. Returns its new id, or `None` if its user plane
    /// index is not configured.
    pub fn restore_pppoe(&self, open: PppoeOpen, started_unix: u64) -> Option<u64> {
        let up = self.inner.ups.get(open.key.up as usize)?;
        let ipv4 = open.ipv4;
        let mut reg = self.registry();
        let id = reg.next_id();
        let mut session = pppoe_session(id, open, up.name(), SessionState::UserPlaneDown);
        session.started_unix = started_unix;
        session.acct_started = session.attrs.authentic == Authentic::Radius
            && !session.attrs.acct_session_id.is_empty();
        reg.insert(session);
        info!(id, %ipv4, up = up.name(), "PPPoE session restored from the lease file");
        Some(id)
    }

    /// The IPoE session of the subscriber `key` (not one being deleted):
    /// its id and the IPv6 prefixes AAA gave it (Framed-IPv6-Prefix,
    /// Delegated-IPv6-Prefix, as text).
    pub fn ipoe_session(&self, key: &ClientKey) -> Option<(u64, Option<String>, Option<String>)> {
        let reg = self.registry();
        let s = reg.get(reg.id_of(key)?)?;
        if s.pppoe.is_some() || s.state == SessionState::Deleting {
            return None;
        }
        Some((
            s.id,
            s.attrs.framed_ipv6_prefix.clone(),
            s.attrs.delegated_ipv6_prefix.clone(),
        ))
    }

    /// Show `ipv6` as session `id`'s IPv6 side (`None`: none).
    pub fn set_ipv6(&self, id: u64, ipv6: Option<crate::api::model::Ipv6View>) {
        if let Some(s) = self.registry().get_mut(id) {
            s.ipv6 = ipv6;
        }
    }

    /// Give session `id` the IPv6 prefixes `prefixes` on its user plane
    /// (`None`: none): PDRs 3 and 4 are installed, replaced or removed by a
    /// Session Modification Request sent from its own task
    /// ([`crate::cups::program::ipv6_change`]), one change of the session
    /// at a time. A session not active yet (establishing, restored, its
    /// user plane down) gets them with its next establishment, or as soon
    /// as it is active again. A refusal is logged and counted
    /// (`vbng_cp_session_modifications_total{result}`); the session stays,
    /// and the next change starts from what the user plane holds.
    pub fn set_ipv6_prefixes(&self, id: u64, prefixes: Option<Ipv6Prefixes>) {
        let due = {
            let mut reg = self.registry();
            let Some(s) = reg.get_mut(id) else { return };
            if s.ipv6_prefixes == prefixes {
                return;
            }
            s.ipv6_prefixes = prefixes;
            ipv6_sync_due(s)
        };
        if due {
            self.spawn_ipv6_sync(id);
        }
    }

    fn spawn_ipv6_sync(&self, id: u64) {
        let this = self.clone();
        tokio::spawn(async move { this.sync_ipv6(id).await });
    }

    /// Send session `id`'s IPv6 prefixes to its user plane until what it
    /// holds is what the session is to have, or a request fails.
    async fn sync_ipv6(&self, id: u64) {
        loop {
            let (up_seid, handle, spec, from) = {
                let mut reg = self.registry();
                let Some(s) = reg.get_mut(id) else { return };
                if !ipv6_sync_due(s) {
                    return;
                }
                let (Some(up_seid), Some(handle)) =
                    (s.up_seid, self.inner.ups.get(s.key.up as usize).cloned())
                else {
                    return;
                };
                // Excludes rate and ACL changes meanwhile: the IPv6 PDRs
                // carry the ACL, and an ACL change updates them.
                s.change_pending = true;
                (up_seid, handle, s.subscriber(), s.ipv6_programmed)
            };
            let span = info_span!("session", id, up = handle.name(), up_seid);
            let result = handle
                .set_ipv6(up_seid, &spec, from.as_ref())
                .instrument(span.clone())
                .await;
            let _e = span.enter();
            let mut reg = self.registry();
            let Some(s) = reg.get_mut(id) else { return };
            s.change_pending = false;
            match result {
                Ok(()) => {
                    self.inner.metrics.session_modification("ok");
                    info!(from = ?from, to = ?spec.ipv6, "session IPv6 prefixes programmed");
                    s.ipv6_programmed = spec.ipv6;
                }
                Err(e) => {
                    self.inner.metrics.session_modification(outcome_of(&e));
                    warn!(from = ?from, to = ?spec.ipv6, error = %e,
                        "IPv6 prefix change of the session failed; its IPv6 PDRs are left as they were");
                    // Try again only for a newer target set meanwhile.
                    if s.ipv6_prefixes == spec.ipv6 {
                        return;
                    }
                }
            }
        }
    }

    /// A PPPoE session ended on the subscriber side (PADT, LCP Terminate,
    /// echo timeout): delete it from its user plane and account it.
    pub async fn pppoe_ended(&self, id: u64, cause: u32) {
        self.remove_session(id, cause).await;
    }

    fn pppoe_waiters(
        &self,
    ) -> MutexGuard<'_, std::collections::HashMap<u64, oneshot::Sender<Result<(), String>>>> {
        self.inner
            .pppoe_waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Account sessions through `settings` from now on (set once, before
    /// [`Sessions::run`]).
    pub fn set_accounting(&self, settings: AccountingSettings) {
        let _ = self.inner.accounting.set(settings);
    }

    /// The AAA backend.
    pub fn aaa(&self) -> &Aaa {
        &self.inner.aaa
    }

    /// Journal every lease change to `store` from now on (set once, before
    /// [`Sessions::run`]).
    pub fn set_lease_store(&self, store: LeaseStore) {
        let _ = self.inner.store.set(store);
    }

    /// The record that persists `event`; `profile` is that of its session
    /// (kept in the file with the RADIUS backend only: the subscriber file
    /// is re-read at restart).
    fn record_of(&self, event: &LeaseEvent, profile: Option<&SessionProfile>) -> Record {
        match event {
            LeaseEvent::Bound(l) | LeaseEvent::Renewed(l) => match &self.inner.aaa {
                Aaa::Radius(_) => Record::put_with(l, profile.cloned()),
                Aaa::Local(_) => Record::put(l),
            },
            LeaseEvent::Released(l) | LeaseEvent::Declined(l) | LeaseEvent::Expired(l) => {
                Record::remove(l.key)
            }
        }
    }

    /// The profile the session of a bound or renewed lease has (or will
    /// get): that of its current session if the address is the same, else
    /// a new one from AAA. `None` for other events.
    fn profile_for_event(&self, event: &LeaseEvent) -> Option<SessionProfile> {
        let (LeaseEvent::Bound(lease) | LeaseEvent::Renewed(lease)) = event else {
            return None;
        };
        let existing = {
            let reg = self.registry();
            reg.id_of(&lease.key)
                .and_then(|id| reg.get(id))
                .filter(|s| s.ipv4 == lease.ipv4)
                .map(|s| s.profile())
        };
        Some(existing.unwrap_or_else(|| self.inner.aaa.profile_of(lease)))
    }

    /// Journal `record` without waiting (still in order with the rest).
    fn persist_detached(&self, record: Record) {
        if let Some(store) = self.inner.store.get() {
            store.append_detached(record);
        }
    }

    /// Journal the events of `batch` (with the profiles of their
    /// sessions) and wait until they are on disk.
    async fn persist(&self, batch: &[LeaseUpdate], profiles: &[Option<SessionProfile>]) {
        let Some(store) = self.inner.store.get() else {
            return;
        };
        let mut last = None;
        for (u, p) in batch.iter().zip(profiles) {
            last = Some(store.append(self.record_of(&u.event, p.as_ref())));
        }
        if let Some(done) = last {
            // In order: the last one on disk means all of them are.
            let _ = done.await;
        }
    }

    /// Re-create the session of `lease`, restored from the lease journal
    /// into the DHCP server at start. It waits as
    /// [`SessionState::UserPlaneDown`], never programmed, until its user
    /// plane associates ([`Sessions::on_up_event`]), and is then
    /// re-established (the user plane adopts it: same key and address).
    /// `profile` is the one persisted with the lease (else AAA is asked);
    /// a RADIUS session's Start was spooled before its lease was granted,
    /// so it is accounted on as the same session. False if its user plane
    /// index is not configured.
    pub fn restore(&self, lease: &Lease, profile: Option<SessionProfile>) -> bool {
        let Some(up) = self.inner.ups.get(lease.key.up as usize) else {
            return false;
        };
        let profile = profile.unwrap_or_else(|| self.inner.aaa.profile_of(lease));
        let mut reg = self.registry();
        if reg.id_of(&lease.key).is_some() {
            return false;
        }
        let id = reg.next_id();
        let mut session =
            Session::from_lease(id, lease, up.name(), SessionState::UserPlaneDown, profile);
        session.acct_started = session.attrs.authentic == Authentic::Radius
            && !session.attrs.acct_session_id.is_empty();
        reg.insert(session);
        info!(id, ipv4 = %lease.ipv4, up = up.name(), "session restored from the lease file");
        true
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.inner
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// JSON views of every session, in id order.
    pub fn snapshot(&self) -> Vec<SessionView> {
        let (now_ms, now_unix) = (crate::monotonic_ms(), crate::unix_now());
        self.registry()
            .iter()
            .map(|s| s.view(now_ms, now_unix))
            .collect()
    }

    /// JSON view of one session.
    pub fn view(&self, id: u64) -> Option<SessionView> {
        let (now_ms, now_unix) = (crate::monotonic_ms(), crate::unix_now());
        self.registry().get(id).map(|s| s.view(now_ms, now_unix))
    }

    /// Number of sessions on user plane `up`.
    pub fn count_on(&self, up: u32) -> usize {
        self.registry().count_on(up)
    }

    /// The user plane handles.
    pub fn user_planes(&self) -> &[UpHandle] {
        &self.inner.ups
    }

    /// Sets the `vbng_cp_sessions` gauge to the number of active sessions.
    /// Called when metrics are read, not on every session change: counting
    /// walks the registry, which per change made setting up N sessions cost
    /// O(N^2) under the registry lock.
    pub fn refresh_session_gauge(&self) {
        let active = self.registry().count(SessionState::Active);
        self.inner
            .metrics
            .sessions
            .set(i64::try_from(active).unwrap_or(i64::MAX));
    }

    /// Apply one lease event from the DHCP server; its DHCPACK, if any, is
    /// sent once the session is programmed on its user plane.
    pub fn on_lease_event(&self, update: LeaseUpdate) {
        let profile = self.profile_for_event(&update.event);
        self.apply_lease_event(update, profile);
    }

    /// [`Sessions::on_lease_event`] with the profile already chosen (and
    /// journalled) for a bound or renewed lease.
    fn apply_lease_event(&self, update: LeaseUpdate, profile: Option<SessionProfile>) {
        let LeaseUpdate {
            event,
            deferred_reply: reply,
        } = update;
        self.inner
            .metrics
            .lease_events
            .get_or_create(&EventLabels {
                event: event.name(),
            })
            .inc();
        match event {
            LeaseEvent::Bound(lease) => self.on_bound(lease, reply, profile),
            LeaseEvent::Renewed(lease) => {
                let mut reg = self.registry();
                if let Some(id) = reg.id_of(&lease.key) {
                    if let Some(s) = reg.get_mut(id) {
                        s.expires_ms = lease.expires_at_ms;
                        if let Some(r) = reply {
                            self.hold_or_send(s, r);
                        }
                    }
                } else {
                    drop(reg);
                    // A renewal for a lease we have no session for (lost
                    // earlier): program it now, its ACK held until then.
                    self.on_bound(lease, reply, profile);
                }
            }
            LeaseEvent::Released(_) | LeaseEvent::Declined(_) | LeaseEvent::Expired(_) => {
                let cause = match &event {
                    LeaseEvent::Released(_) => terminate_cause::USER_REQUEST,
                    LeaseEvent::Declined(_) => terminate_cause::LOST_SERVICE,
                    _ => terminate_cause::LOST_CARRIER,
                };
                let lease = event.lease();
                // These never carry a reply; should one come, it was not
                // held for a session.
                if let Some(r) = reply {
                    self.send_detached(r);
                }
                let id = self.registry().id_of(&lease.key);
                if let Some(id) = id {
                    let this = self.clone();
                    tokio::spawn(async move {
                        this.remove_session(id, cause).await;
                    });
                }
            }
        }
    }

    /// Send `reply` now if session `s` is programmed on its user plane
    /// (active, or its user plane down but not known to have lost it);
    /// otherwise hold it with the session until the establishment in
    /// flight succeeds. A session being deleted drops it: the client
    /// retransmits and is served afresh.
    fn hold_or_send(&self, s: &mut Session, reply: DeferredReply) {
        match s.state {
            SessionState::Active | SessionState::UserPlaneDown => self.send_detached(reply),
            SessionState::Establishing => s.held_replies.push(reply),
            SessionState::Deleting => {
                debug!(id = s.id, "DHCPACK dropped: its session is being deleted");
            }
        }
    }

    /// Send a reply from a synchronous context, without waiting for it.
    fn send_detached(&self, reply: DeferredReply) {
        let this = self.clone();
        tokio::spawn(async move { this.send_reply(reply).await });
    }

    /// Send one reply on the GTP-U socket.
    async fn send_reply(&self, reply: DeferredReply) {
        match self.inner.gtpu.send_to(&reply.datagram, reply.dst).await {
            Ok(_) => {
                self.inner.metrics.redirect_out.inc();
            }
            Err(e) => debug!(error = %e, dst = %reply.dst, "GTP-U send failed"),
        }
    }

    fn on_bound(
        &self,
        lease: Lease,
        reply: Option<DeferredReply>,
        profile: Option<SessionProfile>,
    ) {
        let Some(up) = self.inner.ups.get(lease.key.up as usize) else {
            warn!(up = lease.key.up, "lease for an unknown user plane index");
            return;
        };
        // The DHCP server runs ahead of this task's queue: a lease removed
        // since (a failed establishment of the same client, an
        // administrative delete) must not be programmed, nor its ACK sent.
        let current = {
            let dhcp = self.inner.dhcp.lock().unwrap_or_else(|p| p.into_inner());
            dhcp.lease(&lease.key).is_some_and(|l| l.ipv4 == lease.ipv4)
        };
        if !current {
            debug!(ipv4 = %lease.ipv4, "lease gone before its session was programmed; ignored");
            return;
        }
        let profile = profile.unwrap_or_else(|| self.inner.aaa.profile_of(&lease));
        let id = {
            let mut reg = self.registry();
            if let Some(id) = reg.id_of(&lease.key) {
                // Already known (e.g. re-bound after a restart of the
                // client): refresh the expiry; the programming stands.
                if let Some(s) = reg.get_mut(id) {
                    s.expires_ms = lease.expires_at_ms;
                    if s.ipv4 == lease.ipv4 {
                        if let Some(r) = reply {
                            self.hold_or_send(s, r);
                        }
                        return;
                    }
                }
                // The address changed: take the old session out now (so
                // the new one can use the key) and delete it on its UP.
                if let Some(old) = reg.remove(id) {
                    self.inner.metrics.session_deletions.inc();
                    let acct = self.inner.accounting.get().cloned();
                    let h = self.inner.ups.get(old.key.up as usize).cloned();
                    tokio::spawn(async move {
                        let mut usage = old.last_usage;
                        if let (Some(seid), Some(h)) = (old.up_seid, h) {
                            match h.delete(seid).await {
                                Ok(u) => usage = u.or(usage),
                                Err(e) => {
                                    warn!(id, error = %e, "deleting a replaced session failed")
                                }
                            }
                        }
                        if let Some(a) = acct.filter(|_| old.acct_started) {
                            a.accounting
                                .stop(&old.acct(), usage, terminate_cause::NAS_REQUEST);
                        }
                    });
                }
            }
            let id = reg.next_id();
            let mut session =
                Session::from_lease(id, &lease, up.name(), SessionState::Establishing, profile);
            session.held_replies.extend(reply);
            reg.insert(session);
            id
        };
        let this = self.clone();
        tokio::spawn(async move { this.establish(id).await });
    }

    /// Program session `id` on its user plane, then send the DHCPACKs held
    /// for it; on failure remove the lease and drop them unsent.
    async fn establish(&self, id: u64) {
        let (spec, up) = {
            let reg = self.registry();
            let Some(s) = reg.get(id) else { return };
            (s.subscriber(), s.key.up)
        };
        let Some(handle) = self.inner.ups.get(up as usize).cloned() else {
            return;
        };
        let span = info_span!("session", id, ipv4 = %spec.ipv4, up = handle.name());
        let result = handle.establish(&spec).instrument(span.clone()).await;
        let _e = span.enter();
        match result {
            Ok(up_seid) => {
                let acct = self.inner.accounting.get();
                let (pending, replies, start, ipv6_due) = {
                    let mut reg = self.registry();
                    match reg.get_mut(id) {
                        Some(s) => {
                            s.up_seid = Some(up_seid);
                            s.ipv6_programmed = spec.ipv6;
                            if s.delete_pending {
                                (true, Vec::new(), None, false)
                            } else {
                                s.state = SessionState::Active;
                                let start = acct.filter(|_| !s.acct_started).map(|_| s.acct());
                                s.acct_started |= acct.is_some();
                                if let Some(a) = acct {
                                    schedule_timers(s, a, crate::monotonic_ms());
                                }
                                // IPv6 prefixes set while it was being
                                // established follow now.
                                let due = ipv6_sync_due(s);
                                (false, std::mem::take(&mut s.held_replies), start, due)
                            }
                        }
                        None => (true, Vec::new(), None, false),
                    }
                };
                if ipv6_due {
                    self.spawn_ipv6_sync(id);
                }
                if let (Some(a), Some(start)) = (acct, start) {
                    // On disk before the client learns its address: every
                    // session a client used has its Start.
                    a.accounting.start(&start).await;
                }
                info!(up_seid, acks = replies.len(), "session established");
                if let Some(w) = self.pppoe_waiters().remove(&id) {
                    let _ = w.send(if pending {
                        Err("deleted while being programmed".into())
                    } else {
                        Ok(())
                    });
                }
                // Only now does the client learn its address.
                for r in replies {
                    self.send_reply(r).await;
                }
                if pending {
                    drop(_e);
                    let exists = self.registry().get(id).is_some();
                    if exists {
                        self.remove_session(id, terminate_cause::ADMIN_RESET).await;
                    } else {
                        let _ = handle.delete(up_seid).await;
                    }
                }
            }
            Err(e) => {
                self.inner.metrics.session_establish_failures.inc();
                let removed = self.registry().remove(id);
                let waiter = self.pppoe_waiters().remove(&id);
                let opening_pppoe = waiter.is_some();
                if let Some(w) = waiter {
                    let _ = w.send(Err(format!("the user plane refused the session: {e}")));
                }
                let withheld = removed.as_ref().map_or(0, |s| s.held_replies.len());
                warn!(
                    error = %e,
                    acks_withheld = withheld,
                    "session establishment failed; removing the lease, DHCPACK not sent"
                );
                let Some(s) = removed else { return };
                if s.pppoe.is_none() {
                    let mut dhcp = self.inner.dhcp.lock().unwrap_or_else(|p| p.into_inner());
                    let _ = dhcp.release(&s.key);
                    self.persist_detached(Record::remove(s.key));
                } else if !opening_pppoe && let Some(h) = self.inner.pppoe_hook.get() {
                    // A re-establishment (user plane restart, restored
                    // session) of a running PPP session: end PPP too, or
                    // the client would keep a link that forwards nothing.
                    let _ = h.send((id, terminate_cause::NAS_ERROR));
                }
                // A session accounted before (re-established, or restored
                // from the lease file) ends here: its Start gets a Stop.
                if let Some(a) = self.inner.accounting.get().filter(|_| s.acct_started) {
                    a.accounting
                        .stop(&s.acct(), s.last_usage, terminate_cause::NAS_ERROR);
                }
            }
        }
    }

    /// Delete session `id` from its user plane and the registry; keeps the
    /// final usage in the counters and spools its accounting Stop with
    /// Acct-Terminate-Cause `cause`. Returns the usage, if reported.
    async fn remove_session(&self, id: u64, cause: u32) -> Option<Usage> {
        let (up_seid, up) = {
            let mut reg = self.registry();
            let s = reg.get_mut(id)?;
            match s.state {
                SessionState::Establishing => {
                    s.delete_pending = true;
                    return None;
                }
                SessionState::Deleting => return None,
                SessionState::Active | SessionState::UserPlaneDown => {
                    s.state = SessionState::Deleting;
                }
            }
            (s.up_seid, s.key.up)
        };
        let mut usage = None;
        if let (Some(seid), Some(handle)) = (up_seid, self.inner.ups.get(up as usize)) {
            match handle.delete(seid).await {
                Ok(u) => usage = u,
                Err(e) => warn!(id, error = %e, "session deletion on the user plane failed"),
            }
        }
        let mut reg = self.registry();
        if let Some(mut s) = reg.remove(id) {
            info!(id, ipv4 = %s.ipv4, cause, "session deleted");
            if usage.is_some() {
                s.last_usage = usage;
            }
            if let Some(a) = self.inner.accounting.get().filter(|_| s.acct_started) {
                // The last known counters if the user plane could not
                // report final ones.
                a.accounting.stop(&s.acct(), s.last_usage, cause);
            }
            self.inner.metrics.session_deletions.inc();
            if let Some(u) = usage {
                let m = &self.inner.metrics;
                let add = |f: &prometheus_client::metrics::family::Family<
                    DirectionLabels,
                    prometheus_client::metrics::counter::Counter,
                >,
                           d,
                           v| {
                    f.get_or_create(&DirectionLabels { direction: d }).inc_by(v);
                };
                add(&m.usage_bytes, "uplink", u.ul_bytes);
                add(&m.usage_bytes, "downlink", u.dl_bytes);
                add(&m.usage_packets, "uplink", u.ul_packets);
                add(&m.usage_packets, "downlink", u.dl_packets);
            }
        }
        usage
    }

    /// Administrative deletion (REST `DELETE /sessions/{id}`): removes the
    /// lease and the session. Returns the final usage if the UP reported it.
    pub async fn delete(&self, id: u64) -> Result<Option<Usage>, DeleteError> {
        self.terminate(id, terminate_cause::ADMIN_RESET).await
    }

    /// End session `id` from the network side (administrative deletion,
    /// Disconnect-Request, session or idle timeout): removes its lease and
    /// the session, accounting it with Acct-Terminate-Cause `cause`.
    pub async fn terminate(&self, id: u64, cause: u32) -> Result<Option<Usage>, DeleteError> {
        let (key, pppoe) = self
            .registry()
            .get(id)
            .map(|s| (s.key, s.pppoe.is_some()))
            .ok_or(DeleteError::NotFound(id))?;
        if pppoe {
            // PPP ends with LCP Terminate and PADT; the address goes back
            // to its pool there.
            if let Some(h) = self.inner.pppoe_hook.get() {
                let _ = h.send((id, cause));
            }
            return Ok(self.remove_session(id, cause).await);
        }
        {
            let mut dhcp = self.inner.dhcp.lock().unwrap_or_else(|p| p.into_inner());
            let _ = dhcp.release(&key);
        }
        if let Some(store) = self.inner.store.get() {
            // On disk before the deletion is acknowledged.
            let _ = store.append(Record::remove(key)).await;
        }
        Ok(self.remove_session(id, cause).await)
    }

    /// Change the peak rates of session `id` live (REST
    /// `PATCH /sessions/{id}`, CoA): [`Sessions::change`] with only a rate;
    /// `None` is sent as MBR 0/0, no limit.
    pub async fn set_rate(
        &self,
        id: u64,
        rate: Option<Rate>,
    ) -> Result<SessionView, SessionChangeError> {
        let change = SessionChange {
            rate: Some(rate),
            ..SessionChange::default()
        };
        self.change(id, change).await
    }

    /// Give session `id` the user plane ACL named `filter_id` live, or none
    /// (REST `PATCH /sessions/{id}`, CoA Filter-Id): [`Sessions::change`]
    /// with only an ACL. A user plane that does not know the name refuses
    /// ([`SessionChangeError::is_rule_failure`]).
    pub async fn set_filter(
        &self,
        id: u64,
        filter_id: Option<String>,
    ) -> Result<SessionView, SessionChangeError> {
        let change = SessionChange {
            filter_id: Some(filter_id),
            ..SessionChange::default()
        };
        self.change(id, change).await
    }

    /// Change the rate and/or ACL of session `id` live, in one PFCP Session
    /// Modification Request ([`crate::cups::program::live_change`]: Update
    /// QER, Update PDR) that the user plane takes or refuses as a whole. The
    /// session must be active, with no other change in flight. Only when
    /// the user plane accepts does the session take the new values (and
    /// keep them across re-establishments; with the RADIUS backend the lease
    /// journal records them before this returns, so a restarted control
    /// plane restores them); on any failure it keeps its old ones. An ACL
    /// equal to the current one is not sent. Returns the updated view.
    ///
    /// The exchange runs in its own task: a caller that goes away (an HTTP
    /// client hanging up) does not leave the registry out of step with what
    /// the user plane was told.
    pub async fn change(
        &self,
        id: u64,
        change: SessionChange,
    ) -> Result<SessionView, SessionChangeError> {
        let this = self.clone();
        match tokio::spawn(async move { this.apply_change(id, change).await }).await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(SessionChangeError::Interrupted(id)),
        }
    }

    async fn apply_change(
        &self,
        id: u64,
        change: SessionChange,
    ) -> Result<SessionView, SessionChangeError> {
        let (up_seid, handle, live) = {
            let mut reg = self.registry();
            let s = reg.get_mut(id).ok_or(SessionChangeError::NotFound(id))?;
            let not_active = SessionChangeError::NotActive {
                id,
                state: s.state.name(),
            };
            if s.state != SessionState::Active {
                return Err(not_active);
            }
            let (Some(up_seid), Some(handle)) =
                (s.up_seid, self.inner.ups.get(s.key.up as usize).cloned())
            else {
                return Err(not_active);
            };
            if s.change_pending {
                return Err(SessionChangeError::InProgress(id));
            }
            let live = LiveChange {
                ipv6_pdrs: s.ipv6_programmed.is_some(),
                rate: change.rate,
                acl: change
                    .filter_id
                    .clone()
                    .filter(|to| *to != s.attrs.filter_id)
                    .map(|to| AclChange {
                        from: s.attrs.filter_id.clone(),
                        to,
                    }),
            };
            if live.rate.is_none() && live.acl.is_none() {
                return Ok(s.view(crate::monotonic_ms(), crate::unix_now()));
            }
            s.change_pending = true;
            (up_seid, handle, live)
        };
        let span = info_span!("session", id, up = handle.name(), up_seid);
        let result = handle
            .apply_change(up_seid, &live)
            .instrument(span.clone())
            .await;
        let _e = span.enter();
        let m = &self.inner.metrics;
        let (view, lease_profile) = {
            let mut reg = self.registry();
            let mut session = reg.get_mut(id);
            if let Some(s) = session.as_deref_mut() {
                s.change_pending = false;
                // An IPv6 prefix change held back by this one follows it
                // (reading the session once this lock is released: with
                // the new ACL).
                if ipv6_sync_due(s) {
                    self.spawn_ipv6_sync(id);
                }
            }
            if let Err(e) = result {
                m.session_modification(outcome_of(&e));
                warn!(?live, error = %e, "live session change failed; the old rate and ACL kept");
                return Err(SessionChangeError::UserPlane { id, source: e });
            }
            m.session_modification("ok");
            let Some(s) = session else {
                // Deleted while the change was in flight.
                return Err(SessionChangeError::NotFound(id));
            };
            if let Some(rate) = live.rate {
                s.rate = rate;
                let (up_kbps, down_kbps) = rate.map_or((0, 0), |r| (r.up_kbps, r.down_kbps));
                info!(up_kbps, down_kbps, "session rate changed (0 = no limit)");
            }
            if let Some(acl) = live.acl {
                info!(from = ?acl.from, to = ?acl.to, "session ACL changed");
                s.attrs.filter_id = acl.to;
            }
            let view = s.view(crate::monotonic_ms(), crate::unix_now());
            // A PPPoE session has no lease to keep its profile with.
            let lease_profile = s.pppoe.is_none().then(|| (s.key, s.ipv4, s.profile()));
            (view, lease_profile)
        };
        if let Some((key, ipv4, profile)) = lease_profile
            && let Some(on_disk) = self.journal_profile(key, ipv4, profile)
        {
            // On disk before the change is acknowledged.
            let _ = on_disk.await;
        }
        Ok(view)
    }

    /// Journal `profile` with the lease of `key` on `ipv4`, so a restarted
    /// control plane programs what the session has now; resolves once it is
    /// on disk. `None` without a lease file, if that lease is gone, and with
    /// the local backend, whose profiles come from the subscriber file at
    /// restart.
    fn journal_profile(
        &self,
        key: vbng_access::dhcpv4::ClientKey,
        ipv4: std::net::Ipv4Addr,
        profile: SessionProfile,
    ) -> Option<oneshot::Receiver<()>> {
        let store = self.inner.store.get()?;
        self.inner.aaa.radius()?;
        // Queued under the DHCP server's lock: a release of the lease is
        // journalled after this record, never overtaken by it.
        let dhcp = self.inner.dhcp.lock().unwrap_or_else(|p| p.into_inner());
        let lease = dhcp.lease(&key).filter(|l| l.ipv4 == ipv4)?;
        Some(store.append(Record::put_with(lease, Some(profile))))
    }

    /// A user plane went down or came back.
    pub fn on_up_event(&self, ev: UpEvent) {
        let mut reestablish = Vec::new();
        let mut ipv6_due = Vec::new();
        {
            let mut reg = self.registry();
            for s in reg.iter_mut() {
                match ev {
                    UpEvent::Down { up } if s.key.up == up && s.state == SessionState::Active => {
                        s.state = SessionState::UserPlaneDown;
                    }
                    UpEvent::Up { up, restarted } if s.key.up == up => {
                        // A session restored from the lease file was never
                        // programmed by this process (no UP SEID): the
                        // user plane adopts its re-establishment.
                        let restored =
                            s.state == SessionState::UserPlaneDown && s.up_seid.is_none();
                        if restored
                            || restarted
                                && matches!(
                                    s.state,
                                    SessionState::Active | SessionState::UserPlaneDown
                                )
                        {
                            // The UP lost its state: program the session again.
                            s.state = SessionState::Establishing;
                            s.up_seid = None;
                            reestablish.push(s.id);
                        } else if s.state == SessionState::UserPlaneDown {
                            s.state = SessionState::Active;
                            if ipv6_sync_due(s) {
                                ipv6_due.push(s.id);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        for id in reestablish {
            let this = self.clone();
            tokio::spawn(async move { this.establish(id).await });
        }
        for id in ipv6_due {
            self.spawn_ipv6_sync(id);
        }
    }

    /// One tick: expire leases and offers, then run the session timers.
    pub fn tick(&self, now_ms: u64) {
        let events = {
            let mut dhcp = self.inner.dhcp.lock().unwrap_or_else(|p| p.into_inner());
            dhcp.poll(now_ms)
        };
        for ev in events {
            self.persist_detached(self.record_of(&ev, None));
            self.on_lease_event(ev.into());
        }
        self.run_timers(now_ms);
    }

    /// Session-Timeout, and the usage polls behind Interim-Updates and
    /// Idle-Timeout, of active sessions.
    fn run_timers(&self, now_ms: u64) {
        let mut expired = Vec::new();
        let mut polls = Vec::new();
        {
            let mut reg = self.registry();
            for s in reg.iter_mut() {
                if s.state != SessionState::Active {
                    continue;
                }
                if let Some(t) = s.attrs.session_timeout_s {
                    let age = crate::unix_now().saturating_sub(s.started_unix);
                    if age >= u64::from(t) {
                        expired.push(s.id);
                        continue;
                    }
                }
                if !s.poll_pending && now_ms >= s.next_poll_ms {
                    s.poll_pending = true;
                    polls.push(s.id);
                }
            }
        }
        for id in expired {
            info!(id, "Session-Timeout reached; ending the session");
            let this = self.clone();
            tokio::spawn(async move {
                let _ = this.terminate(id, terminate_cause::SESSION_TIMEOUT).await;
            });
        }
        for id in polls {
            let this = self.clone();
            tokio::spawn(async move { this.poll_usage(id).await });
        }
    }

    /// Read session `id`'s counters from its user plane; send a due
    /// Interim-Update, end it if idle for its Idle-Timeout.
    async fn poll_usage(&self, id: u64) {
        let target = {
            let reg = self.registry();
            reg.get(id).and_then(|s| {
                let h = self.inner.ups.get(s.key.up as usize)?.clone();
                Some((s.up_seid?, h))
            })
        };
        let usage = match target {
            Some((seid, h)) => match h.query_usage(seid).await {
                Ok(u) => u,
                Err(e) => {
                    debug!(id, error = %e, "usage query failed");
                    None
                }
            },
            None => None,
        };
        let now = crate::monotonic_ms();
        let mut idle = false;
        let mut interim = None;
        {
            let mut reg = self.registry();
            let Some(s) = reg.get_mut(id) else { return };
            s.poll_pending = false;
            if let Some(u) = usage {
                let moved = s.last_usage.is_none_or(|old| {
                    old.ul_packets != u.ul_packets || old.dl_packets != u.dl_packets
                });
                if moved && (u.ul_packets > 0 || u.dl_packets > 0) {
                    s.last_activity_ms = now;
                }
                s.last_usage = Some(u);
            }
            if let Some(idle_s) = s.attrs.idle_timeout_s
                && now.saturating_sub(s.last_activity_ms) >= u64::from(idle_s) * 1000
            {
                idle = true;
            }
            if let Some(due) = s.next_interim_ms
                && now >= due
                && !idle
                && s.acct_started
            {
                interim = Some((s.acct(), s.last_usage));
            }
            if let Some(a) = self.inner.accounting.get() {
                schedule_timers(s, a, now);
            }
        }
        if let (Some((acct, usage)), Some(a)) = (interim, self.inner.accounting.get()) {
            a.accounting.interim(&acct, usage);
        }
        if idle {
            info!(id, "Idle-Timeout reached; ending the session");
            let _ = self.terminate(id, terminate_cause::IDLE_TIMEOUT).await;
        }
    }

    /// Sessions matching every given identity (RFC 5176 3: Acct-Session-Id,
    /// User-Name, Framed-IP-Address); none if no identity is given.
    pub fn find(
        &self,
        acct_session_id: Option<&str>,
        username: Option<&str>,
        ipv4: Option<std::net::Ipv4Addr>,
    ) -> Vec<u64> {
        if acct_session_id.is_none() && username.is_none() && ipv4.is_none() {
            return Vec::new();
        }
        self.registry()
            .iter()
            .filter(|s| acct_session_id.is_none_or(|a| s.attrs.acct_session_id == a))
            .filter(|s| username.is_none_or(|u| s.attrs.username == u))
            .filter(|s| ipv4.is_none_or(|ip| s.ipv4 == ip))
            .map(|s| s.id)
            .collect()
    }

    /// Change the timers AAA set for session `id` (CoA): `Some` values
    /// replace the session's. False if there is no such session.
    pub fn update_timers(
        &self,
        id: u64,
        session_timeout_s: Option<u32>,
        idle_timeout_s: Option<u32>,
        interim_interval_s: Option<u32>,
    ) -> bool {
        let mut reg = self.registry();
        let Some(s) = reg.get_mut(id) else {
            return false;
        };
        if session_timeout_s.is_some() {
            s.attrs.session_timeout_s = session_timeout_s.filter(|&t| t > 0);
        }
        if idle_timeout_s.is_some() {
            s.attrs.idle_timeout_s = idle_timeout_s.filter(|&t| t > 0);
        }
        if interim_interval_s.is_some() {
            s.attrs.interim_interval_s = interim_interval_s.filter(|&t| t > 0);
            s.next_interim_ms = None;
        }
        if let Some(a) = self.inner.accounting.get() {
            schedule_timers(s, a, crate::monotonic_ms());
        }
        true
    }

    /// The session task: lease events (with their held DHCPACKs), user
    /// plane events and the 1 s tick, until `shutdown` turns true.
    pub async fn run(
        self,
        mut lease_events: mpsc::UnboundedReceiver<LeaseUpdate>,
        mut up_events: mpsc::UnboundedReceiver<UpEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ev = lease_events.recv() => match ev {
                    Some(ev) => {
                        // Journal everything queued at once (one fsync),
                        // then apply it: no DHCPACK leaves before its
                        // lease is on disk.
                        let mut batch = vec![ev];
                        while let Ok(ev) = lease_events.try_recv() {
                            batch.push(ev);
                        }
                        let profiles: Vec<_> =
                            batch.iter().map(|u| self.profile_for_event(&u.event)).collect();
                        self.persist(&batch, &profiles).await;
                        for (ev, profile) in batch.into_iter().zip(profiles) {
                            self.apply_lease_event(ev, profile);
                        }
                    }
                    None => break,
                },
                Some(ev) = up_events.recv() => self.on_up_event(ev),
                _ = tick.tick() => self.tick(crate::monotonic_ms()),
                _ = shutdown.changed() => break,
            }
        }
    }
}

/// Whether session `s`'s IPv6 prefixes are to be sent to its user plane
/// now: it is active, holds other prefixes there than it is to have, and no
/// other change of it is in flight.
fn ipv6_sync_due(s: &Session) -> bool {
    s.state == SessionState::Active && !s.change_pending && s.ipv6_prefixes != s.ipv6_programmed
}

/// The `vbng_cp_session_modifications_total` result of a failed request.
fn outcome_of(e: &CupsError) -> &'static str {
    match e {
        CupsError::Rejected { .. } | CupsError::Unexpected { .. } => "refused",
        CupsError::Timeout { .. } | CupsError::NotAssociated(_) | CupsError::Stopped(_) => {
            "timeout"
        }
    }
}

/// Set the next usage poll and Interim-Update of `s` from its attributes:
/// interims every Acct-Interim-Interval (else the configured default; at
/// least the configured minimum), polls at the interim time and, with an
/// Idle-Timeout, at least every third of it.
/// The registry session of PPPoE session `open`, not yet programmed: a
/// lease of its address that never expires, started now.
fn pppoe_session(id: u64, open: PppoeOpen, user_plane: &str, state: SessionState) -> Session {
    let lease = Lease {
        key: open.key,
        ipv4: open.ipv4,
        pool: String::new(),
        gateway: std::net::Ipv4Addr::UNSPECIFIED,
        prefix_len: 32,
        lease_time_s: 0,
        bound_at_ms: crate::monotonic_ms(),
        expires_at_ms: u64::MAX,
        circuit_id: open.circuit_id,
        remote_id: open.remote_id,
        client_id: None,
        hostname: None,
    };
    let mut s = Session::from_lease(id, &lease, user_plane, state, open.profile);
    s.pppoe = Some(open.access);
    s
}

fn schedule_timers(s: &mut Session, a: &AccountingSettings, now_ms: u64) {
    let interim_s = s.attrs.interim_interval_s.unwrap_or(a.default_interim_s);
    let interim_ms = (interim_s > 0).then(|| u64::from(interim_s.max(a.min_interim_s)) * 1000);
    match (s.next_interim_ms, interim_ms) {
        (_, None) => s.next_interim_ms = None,
        (None, Some(i)) => s.next_interim_ms = Some(now_ms + i),
        (Some(due), Some(i)) if now_ms >= due => s.next_interim_ms = Some(now_ms + i),
        _ => {}
    }
    let idle_poll_ms = s
        .attrs
        .idle_timeout_s
        .map(|t| (u64::from(t) * 1000 / 3).max(1000));
    s.next_poll_ms = match (s.next_interim_ms, idle_poll_ms) {
        (Some(i), Some(p)) => i.min(now_ms + p),
        (Some(i), None) => i,
        (None, Some(p)) => now_ms + p,
        (None, None) => u64::MAX,
    };
}
