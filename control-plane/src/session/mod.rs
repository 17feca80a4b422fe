//! Subscriber sessions: the registry and the glue that turns DHCP lease
//! events into PFCP session programming.
//!
//! - [`registry`]: [`Registry`], the table of sessions ([`Session`]).
//! - [`journal`]: [`LeaseStore`], the lease file that lets leases and
//!   their sessions survive a control plane restart.
//! - [`manager`]: [`Sessions`], which applies lease events, REST deletes,
//!   live rate and ACL changes and user plane state changes, and runs the
//!   1 s DHCP tick.
//!
//! A session becomes [`SessionState::Active`] only when its user plane
//! accepted the establishment; when it refused (for instance cause 73 for
//! an ACL name it does not know) or did not answer, the lease is removed
//! and the failure counted, so nothing stays half-programmed.
//!
//! The DHCPACK that binds a lease is held until then. The redirect task
//! hands it over with the lease event ([`LeaseUpdate::deferred_reply`]);
//! the session keeps it while [`SessionState::Establishing`] and the
//! session task sends it on the GTP-U socket only once the user plane
//! accepted the session. If establishment fails, the ACK is never sent:
//! the client gets no address that does not forward, retransmits its
//! REQUEST and is NAKed (its lease is gone), and starts over. An ACK that
//! renews the lease of a session already programmed (active, or its user
//! plane down) is sent at once.

pub mod journal;
pub mod manager;
pub mod registry;

use std::net::SocketAddr;

use vbng_access::dhcpv4::LeaseEvent;

pub use journal::{JournalError, LeaseStore};
pub use manager::{DeleteError, SessionChange, SessionChangeError, Sessions};
pub use registry::{Registry, Session, SessionState};

/// A GTP-U datagram (a DHCP reply to a client) whose sending waits for the
/// user plane to accept the client's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeferredReply {
    /// The complete GTP-U datagram.
    pub datagram: Vec<u8>,
    /// The user plane's GTP-U address it goes to.
    pub dst: SocketAddr,
}

/// What the redirect task sends the session task: one lease event and, for
/// `Bound` and `Renewed`, the DHCPACK that answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseUpdate {
    /// The lease event from the DHCP server.
    pub event: LeaseEvent,
    /// The ACK to send once the session is programmed (sent at once if it
    /// already is), `None` for events without a reply.
    pub deferred_reply: Option<DeferredReply>,
}

impl From<LeaseEvent> for LeaseUpdate {
    fn from(event: LeaseEvent) -> Self {
        LeaseUpdate {
            event,
            deferred_reply: None,
        }
    }
}
