//! Applies lease events, REST deletions and user plane state changes to the
//! registry and programs the user planes accordingly; sends the DHCPACKs
//! held until their session is programmed (see the [module docs](super)).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tracing::{Instrument, debug, info, info_span, warn};
use vbng_access::dhcpv4::{Lease, LeaseEvent};

use super::journal::{LeaseStore, Record};
use super::{DeferredReply, LeaseUpdate, Registry, Session, SessionState};
use crate::aaa::LocalSubscribers;
use crate::aaa::Rate;
use crate::api::model::SessionView;
use crate::cups::{CupsError, SubscriberSession, UpEvent, UpHandle, Usage};
use crate::metrics::{DirectionLabels, EventLabels, Metrics};
use crate::redirect::SharedDhcp;

/// Why a REST deletion failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeleteError {
    /// No session has this id.
    #[error("no session with id {0}")]
    NotFound(u64),
}

/// Why a live rate change (REST `PATCH /sessions/{id}`) failed. In every
/// case the session keeps the rate it had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateChangeError {
    /// No session has this id.
    #[error("no session with id {0}")]
    NotFound(u64),
    /// The session is not programmed on a reachable user plane.
    #[error("session {id} is {state}; a rate change needs an active session")]
    NotActive {
        /// Session id.
        id: u64,
        /// Its state name ([`SessionState::name`]).
        state: &'static str,
    },
    /// Another rate change of this session is still waiting for its answer.
    #[error("session {0} already has a rate change in progress; retry when it completes")]
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
    #[error("session {0}: the rate change was interrupted by shutdown")]
    Interrupted(u64),
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
    aaa: Arc<LocalSubscribers>,
    metrics: Metrics,
    /// The GTP-U redirect socket, shared with the redirect task: held
    /// DHCPACKs leave through it.
    gtpu: Arc<UdpSocket>,
    /// The lease journal, if `[dhcp] lease_file` is set.
    store: std::sync::OnceLock<LeaseStore>,
}

impl Sessions {
    /// A session service programming `ups` (indexed by the user plane
    /// index used in [`vbng_access::dhcpv4::ClientKey::up`]) and sending
    /// held DHCPACKs on `gtpu`.
    pub fn new(
        dhcp: SharedDhcp,
        ups: Vec<UpHandle>,
        aaa: Arc<LocalSubscribers>,
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
            }),
        }
    }

    /// Journal every lease change to `store` from now on (set once, before
    /// [`Sessions::run`]).
    pub fn set_lease_store(&self, store: LeaseStore) {
        let _ = self.inner.store.set(store);
    }

    /// The record that persists `event`.
    fn record_of(event: &LeaseEvent) -> Record {
        match event {
            LeaseEvent::Bound(l) | LeaseEvent::Renewed(l) => Record::put(l),
            LeaseEvent::Released(l) | LeaseEvent::Declined(l) | LeaseEvent::Expired(l) => {
                Record::remove(l.key)
            }
        }
    }

    /// Journal `record` without waiting (still in order with the rest).
    fn persist_detached(&self, record: Record) {
        if let Some(store) = self.inner.store.get() {
            store.append_detached(record);
        }
    }

    /// Journal the events of `batch` and wait until they are on disk.
    async fn persist(&self, batch: &[LeaseUpdate]) {
        let Some(store) = self.inner.store.get() else {
            return;
        };
        let mut last = None;
        for u in batch {
            last = Some(store.append(Self::record_of(&u.event)));
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
    /// False if its user plane index is not configured.
    pub fn restore(&self, lease: &Lease) -> bool {
        let Some(up) = self.inner.ups.get(lease.key.up as usize) else {
            return false;
        };
        let rate = self.profile_rate(lease);
        let mut reg = self.registry();
        if reg.id_of(&lease.key).is_some() {
            return false;
        }
        let id = reg.next_id();
        reg.insert(Session::from_lease(
            id,
            lease,
            up.name(),
            SessionState::UserPlaneDown,
            rate,
        ));
        info!(id, ipv4 = %lease.ipv4, up = up.name(), "session restored from the lease file");
        true
    }

    /// The rate the local subscriber file gives the client of `lease`.
    fn profile_rate(&self, lease: &Lease) -> Option<Rate> {
        let (profile, _) = self
            .inner
            .aaa
            .lookup(&lease.key.mac, lease.circuit_id.as_deref());
        profile.rate
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

    fn refresh_gauge(&self, reg: &Registry) {
        let active = reg.count(SessionState::Active);
        self.inner
            .metrics
            .sessions
            .set(i64::try_from(active).unwrap_or(i64::MAX));
    }

    /// Apply one lease event from the DHCP server; its DHCPACK, if any, is
    /// sent once the session is programmed on its user plane.
    pub fn on_lease_event(&self, update: LeaseUpdate) {
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
            LeaseEvent::Bound(lease) => self.on_bound(lease, reply),
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
                    self.on_bound(lease, reply);
                }
            }
            LeaseEvent::Released(lease)
            | LeaseEvent::Declined(lease)
            | LeaseEvent::Expired(lease) => {
                // These never carry a reply; should one come, it was not
                // held for a session.
                if let Some(r) = reply {
                    self.send_detached(r);
                }
                let id = self.registry().id_of(&lease.key);
                if let Some(id) = id {
                    let this = self.clone();
                    tokio::spawn(async move {
                        this.remove_session(id).await;
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

    fn on_bound(&self, lease: Lease, reply: Option<DeferredReply>) {
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
        let rate = self.profile_rate(&lease);
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
                    if let (Some(seid), Some(h)) = (
                        old.up_seid,
                        self.inner.ups.get(old.key.up as usize).cloned(),
                    ) {
                        tokio::spawn(async move {
                            if let Err(e) = h.delete(seid).await {
                                warn!(id, error = %e, "deleting a replaced session failed");
                            }
                        });
                    }
                }
            }
            let id = reg.next_id();
            let mut session =
                Session::from_lease(id, &lease, up.name(), SessionState::Establishing, rate);
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
            (
                SubscriberSession {
                    cp_seid: s.cp_seid,
                    ipv4: s.ipv4,
                    mac: s.key.mac,
                    port: s.key.port,
                    svlan: s.key.svlan,
                    cvlan: s.key.cvlan,
                    rate: s.rate,
                },
                s.key.up,
            )
        };
        let Some(handle) = self.inner.ups.get(up as usize).cloned() else {
            return;
        };
        let span = info_span!("session", id, ipv4 = %spec.ipv4, up = handle.name());
        let result = handle.establish(&spec).instrument(span.clone()).await;
        let _e = span.enter();
        match result {
            Ok(up_seid) => {
                let (pending, replies) = {
                    let mut reg = self.registry();
                    let outcome = match reg.get_mut(id) {
                        Some(s) => {
                            s.up_seid = Some(up_seid);
                            if s.delete_pending {
                                (true, Vec::new())
                            } else {
                                s.state = SessionState::Active;
                                (false, std::mem::take(&mut s.held_replies))
                            }
                        }
                        None => (true, Vec::new()),
                    };
                    self.refresh_gauge(&reg);
                    outcome
                };
                info!(up_seid, acks = replies.len(), "session established");
                // Only now does the client learn its address.
                for r in replies {
                    self.send_reply(r).await;
                }
                if pending {
                    drop(_e);
                    let exists = self.registry().get(id).is_some();
                    if exists {
                        self.remove_session(id).await;
                    } else {
                        let _ = handle.delete(up_seid).await;
                    }
                }
            }
            Err(e) => {
                self.inner.metrics.session_establish_failures.inc();
                let removed = {
                    let mut reg = self.registry();
                    let s = reg.remove(id);
                    self.refresh_gauge(&reg);
                    s
                };
                let withheld = removed.as_ref().map_or(0, |s| s.held_replies.len());
                warn!(
                    error = %e,
                    acks_withheld = withheld,
                    "session establishment failed; removing the lease, DHCPACK not sent"
                );
                if let Some(s) = removed {
                    let mut dhcp = self.inner.dhcp.lock().unwrap_or_else(|p| p.into_inner());
                    let _ = dhcp.release(&s.key);
                    self.persist_detached(Record::remove(s.key));
                }
            }
        }
    }

    /// Delete session `id` from its user plane and the registry; keeps the
    /// final usage in the counters. Returns the usage, if reported.
    async fn remove_session(&self, id: u64) -> Option<Usage> {
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
            info!(id, ipv4 = %s.ipv4, "session deleted");
            if usage.is_some() {
                s.last_usage = usage;
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
        self.refresh_gauge(&reg);
        usage
    }

    /// Administrative deletion (REST `DELETE /sessions/{id}`): removes the
    /// lease and the session. Returns the final usage if the UP reported it.
    pub async fn delete(&self, id: u64) -> Result<Option<Usage>, DeleteError> {
        let key = self
            .registry()
            .get(id)
            .map(|s| s.key)
            .ok_or(DeleteError::NotFound(id))?;
        {
            let mut dhcp = self.inner.dhcp.lock().unwrap_or_else(|p| p.into_inner());
            let _ = dhcp.release(&key);
        }
        if let Some(store) = self.inner.store.get() {
            // On disk before the deletion is acknowledged.
            let _ = store.append(Record::remove(key)).await;
        }
        Ok(self.remove_session(id).await)
    }

    /// Change the peak rates of session `id` live (REST
    /// `PATCH /sessions/{id}`): one PFCP Session Modification Request with
    /// Update QER ([`crate::cups::program::rate_change`]; `None` is sent as
    /// MBR 0/0, no limit). The session must be active, with no other rate
    /// change in flight. Only when the user plane accepts does the session
    /// take the new rate (and keep it across re-establishments); on any
    /// failure it keeps its old one. Returns the updated view.
    ///
    /// The exchange runs in its own task: a caller that goes away (an HTTP
    /// client hanging up) does not leave the registry out of step with what
    /// the user plane was told.
    pub async fn set_rate(
        &self,
        id: u64,
        rate: Option<Rate>,
    ) -> Result<SessionView, RateChangeError> {
        let this = self.clone();
        match tokio::spawn(async move { this.change_rate(id, rate).await }).await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(RateChangeError::Interrupted(id)),
        }
    }

    async fn change_rate(
        &self,
        id: u64,
        rate: Option<Rate>,
    ) -> Result<SessionView, RateChangeError> {
        let (up_seid, handle) = {
            let mut reg = self.registry();
            let s = reg.get_mut(id).ok_or(RateChangeError::NotFound(id))?;
            let not_active = RateChangeError::NotActive {
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
            if s.rate_change_pending {
                return Err(RateChangeError::InProgress(id));
            }
            s.rate_change_pending = true;
            (up_seid, handle)
        };
        let span = info_span!("session", id, up = handle.name(), up_seid);
        let result = handle
            .set_rate(up_seid, rate)
            .instrument(span.clone())
            .await;
        let _e = span.enter();
        let (up_kbps, down_kbps) = rate.map_or((0, 0), |r| (r.up_kbps, r.down_kbps));
        let m = &self.inner.metrics;
        let mut reg = self.registry();
        let session = reg.get_mut(id);
        match result {
            Ok(()) => {
                m.session_modification("ok");
                let Some(s) = session else {
                    // Deleted while the change was in flight.
                    return Err(RateChangeError::NotFound(id));
                };
                s.rate_change_pending = false;
                s.rate = rate;
                info!(up_kbps, down_kbps, "session rate changed (0 = no limit)");
                Ok(s.view(crate::monotonic_ms(), crate::unix_now()))
            }
            Err(e) => {
                let result = match e {
                    CupsError::Rejected { .. } | CupsError::Unexpected { .. } => "refused",
                    CupsError::Timeout { .. }
                    | CupsError::NotAssociated(_)
                    | CupsError::Stopped(_) => "timeout",
                };
                m.session_modification(result);
                if let Some(s) = session {
                    s.rate_change_pending = false;
                }
                warn!(up_kbps, down_kbps, error = %e, "session rate change failed; old rate kept");
                Err(RateChangeError::UserPlane { id, source: e })
            }
        }
    }

    /// A user plane went down or came back.
    pub fn on_up_event(&self, ev: UpEvent) {
        let mut reestablish = Vec::new();
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
                        }
                    }
                    _ => {}
                }
            }
            self.refresh_gauge(&reg);
        }
        for id in reestablish {
            let this = self.clone();
            tokio::spawn(async move { this.establish(id).await });
        }
    }

    /// One DHCP tick: expire leases and offers.
    pub fn tick(&self, now_ms: u64) {
        let events = {
            let mut dhcp = self.inner.dhcp.lock().unwrap_or_else(|p| p.into_inner());
            dhcp.poll(now_ms)
        };
        for ev in events {
            self.persist_detached(Self::record_of(&ev));
            self.on_lease_event(ev.into());
        }
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
                        self.persist(&batch).await;
                        for ev in batch {
                            self.on_lease_event(ev);
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
