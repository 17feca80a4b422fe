//! Subscriber sessions: the registry and the glue that turns DHCP lease
//! events into PFCP session programming.
//!
//! - [`registry`]: [`Registry`], the table of sessions ([`Session`]).
//! - [`manager`]: [`Sessions`], which applies lease events, REST deletes and
//!   user plane state changes, and runs the 1 s DHCP tick.
//!
//! A session becomes [`SessionState::Active`] only when its user plane
//! accepted the establishment; when it refused or did not answer, the lease
//! is removed and the failure counted, so nothing stays half-programmed.

pub mod manager;
pub mod registry;

pub use manager::{DeleteError, Sessions};
pub use registry::{Registry, Session, SessionState};
