//! The session table.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use vbng_access::dhcpv4::{ClientKey, Lease};

use crate::aaa::{Rate, SessionAttributes, SessionProfile};
use crate::api::model::{RateView, SessionView, UsageView};
use crate::cups::{Ipv6Prefixes, SubscriberSession, Usage};

use super::DeferredReply;

/// Lifecycle of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Establishment sent, user plane has not accepted yet.
    Establishing,
    /// Programmed on the user plane.
    Active,
    /// Its user plane is down (missed heartbeats); kept until it returns.
    UserPlaneDown,
    /// Deletion in progress.
    Deleting,
}

impl SessionState {
    /// Snake-case name (API, vbngctl).
    pub fn name(self) -> &'static str {
        match self {
            SessionState::Establishing => "establishing",
            SessionState::Active => "active",
            SessionState::UserPlaneDown => "user_plane_down",
            SessionState::Deleting => "deleting",
        }
    }
}

/// One IPoE subscriber session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Session id (API), also the CP SEID.
    pub id: u64,
    /// The client's access line identity (user plane index, port, VLANs, MAC).
    pub key: ClientKey,
    /// Name of the user plane.
    pub user_plane: String,
    /// Leased address.
    pub ipv4: Ipv4Addr,
    /// Option 82 circuit-id.
    pub circuit_id: Option<Vec<u8>>,
    /// Option 82 remote-id.
    pub remote_id: Option<Vec<u8>>,
    /// Lifecycle state.
    pub state: SessionState,
    /// Start time, Unix seconds.
    pub started_unix: u64,
    /// Lease expiry on the monotonic clock (ms, [`crate::monotonic_ms`]).
    pub expires_ms: u64,
    /// CP F-SEID value.
    pub cp_seid: u64,
    /// UP F-SEID value, once established.
    pub up_seid: Option<u64>,
    /// Rate programmed on the user plane (QER MBR): from the subscriber
    /// profile at establishment, changed live by
    /// [`Sessions::set_rate`](super::Sessions::set_rate). A re-establishment
    /// (user plane restart) programs this rate.
    pub rate: Option<Rate>,
    /// A live change (rate, ACL, IPv6 prefixes) is in flight: at most one
    /// per session, since an ACL change names the ACL it replaces and the
    /// IPv6 PDRs carry the ACL.
    pub change_pending: bool,
    /// The last usage report received.
    pub last_usage: Option<Usage>,
    /// A deletion was requested while establishing.
    pub delete_pending: bool,
    /// DHCPACKs held until the user plane accepts the establishment; sent
    /// then, dropped with the session if it fails or is deleted first.
    pub held_replies: Vec<DeferredReply>,
    /// What AAA gave the session (User-Name, Acct-Session-Id, Class,
    /// timeouts, Filter-Id, IPv6 prefixes). Its `filter_id` names the user
    /// plane ACL programmed for the session, changed live by
    /// [`Sessions::set_filter`](super::Sessions::set_filter).
    pub attrs: SessionAttributes,
    /// Its accounting Start is spooled (a Stop is due when it ends).
    pub acct_started: bool,
    /// When traffic was last seen to flow (monotonic ms): usage counters
    /// changed between two polls, or the session started.
    pub last_activity_ms: u64,
    /// When the usage counters are next read (monotonic ms), for
    /// Interim-Updates and the idle timeout.
    pub next_poll_ms: u64,
    /// When the next Interim-Update is due (monotonic ms), if any.
    pub next_interim_ms: Option<u64>,
    /// A usage poll is in flight.
    pub poll_pending: bool,
    /// The PPPoE session id and MTU of a PPPoE subscriber (`None`: IPoE,
    /// the session of a DHCP lease).
    pub pppoe: Option<crate::cups::PppoeAccess>,
    /// The IPv6 side of a PPPoE session (IPv6CP opened), as the PPPoE
    /// service last reported it.
    pub ipv6: Option<crate::api::model::Ipv6View>,
    /// The IPv6 prefixes the session is to have on its user plane (PDRs 3
    /// and 4), as the PPPoE service last set them; an establishment
    /// programs them, a change is sent as a Session Modification Request.
    pub ipv6_prefixes: Option<Ipv6Prefixes>,
    /// The IPv6 prefixes its user plane accepted last (what PDRs 3 and 4
    /// hold there); differs from `ipv6_prefixes` while a change is due, in
    /// flight, or was refused.
    pub ipv6_programmed: Option<Ipv6Prefixes>,
}

impl Session {
    /// A new session for `lease` on user plane `user_plane`, not yet
    /// programmed there: its id doubles as the CP SEID, it starts now, and
    /// it carries the AAA `profile` (rate and attributes).
    pub fn from_lease(
        id: u64,
        lease: &Lease,
        user_plane: &str,
        state: SessionState,
        profile: SessionProfile,
    ) -> Self {
        let now = crate::monotonic_ms();
        Session {
            id,
            key: lease.key,
            user_plane: user_plane.to_string(),
            ipv4: lease.ipv4,
            circuit_id: lease.circuit_id.clone(),
            remote_id: lease.remote_id.clone(),
            state,
            // A restored lease started before this process did.
            started_unix: crate::unix_now()
                .saturating_sub(now.saturating_sub(lease.bound_at_ms) / 1000),
            expires_ms: lease.expires_at_ms,
            cp_seid: id,
            up_seid: None,
            rate: profile.rate,
            change_pending: false,
            last_usage: None,
            delete_pending: false,
            held_replies: Vec::new(),
            attrs: profile.attrs,
            acct_started: false,
            last_activity_ms: now,
            next_poll_ms: u64::MAX,
            next_interim_ms: None,
            poll_pending: false,
            pppoe: None,
            ipv6: None,
            ipv6_prefixes: None,
            ipv6_programmed: None,
        }
    }

    /// What its user plane is to be programmed with: addresses, access
    /// line, rate, ACL and IPv6 prefixes as the session has them now.
    pub fn subscriber(&self) -> SubscriberSession {
        SubscriberSession {
            cp_seid: self.cp_seid,
            ipv4: self.ipv4,
            mac: self.key.mac,
            port: self.key.port,
            svlan: self.key.svlan,
            cvlan: self.key.cvlan,
            rate: self.rate,
            pppoe: self.pppoe,
            acl: self.attrs.filter_id.clone(),
            ipv6: self.ipv6_prefixes,
        }
    }

    /// The profile to persist with the lease: the current rate (it may
    /// have been changed live) and the AAA attributes.
    pub fn profile(&self) -> SessionProfile {
        SessionProfile {
            rate: self.rate,
            attrs: self.attrs.clone(),
        }
    }

    /// The facts an accounting record of this session carries.
    pub fn acct(&self) -> crate::aaa::accounting::AcctSession {
        crate::aaa::accounting::AcctSession {
            attrs: self.attrs.clone(),
            ipv4: self.ipv4,
            key: self.key,
            circuit_id: self.circuit_id.clone(),
            remote_id: self.remote_id.clone(),
            user_plane: self.user_plane.clone(),
            started_unix: self.started_unix,
            pppoe: self.pppoe.is_some(),
        }
    }

    /// The JSON view, with the expiry converted to Unix seconds.
    pub fn view(&self, now_ms: u64, now_unix: u64) -> SessionView {
        let text =
            |v: &Option<Vec<u8>>| v.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
        SessionView {
            id: self.id,
            user_plane: self.user_plane.clone(),
            port: self.key.port,
            svlan: self.key.svlan,
            cvlan: self.key.cvlan,
            mac: vbng_dataplane::wire::EthernetAddress(self.key.mac).to_string(),
            ipv4: self.ipv4,
            circuit_id: text(&self.circuit_id),
            remote_id: text(&self.remote_id),
            state: self.state.name().to_string(),
            started: self.started_unix,
            lease_expires: now_unix + self.expires_ms.saturating_sub(now_ms) / 1000,
            cp_seid: self.cp_seid,
            up_seid: self.up_seid,
            last_usage: self.last_usage.map(UsageView::from),
            rate: self.rate.map(RateView::from),
            aaa: Some(crate::api::model::AaaView::from(&self.attrs)),
            pppoe_session_id: self.pppoe.map(|p| p.session_id),
            ipv6: self.ipv6.clone(),
        }
    }
}

/// All sessions, by id and by client key.
#[derive(Debug, Default)]
pub struct Registry {
    next_id: u64,
    by_id: BTreeMap<u64, Session>,
    by_key: HashMap<ClientKey, u64>,
}

impl Registry {
    /// Allocate a session id (never 0, never reused in this process).
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Insert (or replace) a session. PPPoE sessions are not indexed by
    /// client key (a MAC may hold several, besides a DHCP lease).
    pub fn insert(&mut self, s: Session) {
        if s.pppoe.is_some() {
            self.by_id.insert(s.id, s);
            return;
        }
        if let Some(old) = self.by_key.insert(s.key, s.id)
            && old != s.id
        {
            self.by_id.remove(&old);
        }
        self.by_id.insert(s.id, s);
    }

    /// Remove a session by id.
    pub fn remove(&mut self, id: u64) -> Option<Session> {
        let s = self.by_id.remove(&id)?;
        if self.by_key.get(&s.key) == Some(&id) {
            self.by_key.remove(&s.key);
        }
        Some(s)
    }

    /// Session by id.
    pub fn get(&self, id: u64) -> Option<&Session> {
        self.by_id.get(&id)
    }

    /// Mutable session by id.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut Session> {
        self.by_id.get_mut(&id)
    }

    /// Session id of a client.
    pub fn id_of(&self, key: &ClientKey) -> Option<u64> {
        self.by_key.get(key).copied()
    }

    /// Sessions in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.by_id.values()
    }

    /// Mutable sessions in id order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Session> {
        self.by_id.values_mut()
    }

    /// Number of sessions in any state.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are no sessions.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Number of sessions in `state`.
    pub fn count(&self, state: SessionState) -> usize {
        self.by_id.values().filter(|s| s.state == state).count()
    }

    /// Number of sessions on user plane `up`.
    pub fn count_on(&self, up: u32) -> usize {
        self.by_id.values().filter(|s| s.key.up == up).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(reg: &mut Registry, mac: u8) -> Session {
        let id = reg.next_id();
        Session {
            id,
            key: ClientKey {
                up: 0,
                port: 1,
                svlan: 0,
                cvlan: 100,
                mac: [2, 0, 0, 0, 0, mac],
            },
            user_plane: "up0".into(),
            ipv4: Ipv4Addr::new(100, 64, 0, mac),
            circuit_id: Some(b"c1".to_vec()),
            remote_id: None,
            state: SessionState::Establishing,
            started_unix: 1000,
            expires_ms: 600_000,
            cp_seid: id,
            up_seid: None,
            rate: None,
            change_pending: false,
            last_usage: None,
            delete_pending: false,
            held_replies: Vec::new(),
            attrs: SessionAttributes::default(),
            acct_started: false,
            last_activity_ms: 0,
            next_poll_ms: u64::MAX,
            next_interim_ms: None,
            poll_pending: false,
            pppoe: None,
            ipv6: None,
            ipv6_prefixes: None,
            ipv6_programmed: None,
        }
    }

    #[test]
    fn insert_lookup_remove() {
        let mut r = Registry::default();
        let a = session(&mut r, 10);
        let b = session(&mut r, 11);
        r.insert(a.clone());
        r.insert(b.clone());
        assert_eq!(r.len(), 2);
        assert_eq!(r.id_of(&b.key), Some(b.id));
        assert_eq!(r.count_on(0), 2);
        assert_eq!(r.count(SessionState::Establishing), 2);
        assert!(r.remove(a.id).is_some());
        assert_eq!(r.id_of(&a.key), None);
        assert!(r.remove(a.id).is_none());
        let v = r.get(b.id).unwrap().view(0, 5000);
        assert_eq!(v.lease_expires, 5600);
        assert_eq!(v.mac, "02:00:00:00:00:0b");
        assert_eq!(v.circuit_id.as_deref(), Some("c1"));
        assert_eq!(v.state, "establishing");
        assert_eq!(v.rate, None);
        r.get_mut(b.id).unwrap().rate = Some(Rate {
            up_kbps: 1000,
            down_kbps: 2000,
        });
        assert_eq!(
            r.get(b.id).unwrap().view(0, 5000).rate,
            Some(RateView {
                up_kbps: 1000,
                down_kbps: 2000
            })
        );
    }
}
