//! Asynchronous RADIUS client over UDP (RFC 2865/2866, RFC 5080 section 2.2).
//!
//! A pool of connected UDP sockets per server
//! ([`ClientConfig::sockets_per_server`]), reused for every request; each
//! socket has its own identifier window of 256 in-flight requests, and a
//! request goes to the socket with the most free identifiers (round-robin
//! among equals). Responses are matched on identifier and verified against
//! the request's authenticator. Requests are retransmitted with exponential
//! backoff; a server that exhausts its retries is marked dead for
//! [`ClientConfig::dead_time`] and the request fails over to the next server
//! of the group. A dead server is probed with Status-Server (RFC 5997) every
//! [`ClientConfig::status_server_interval`] and is alive again as soon as it
//! answers one.
//!
//! How fast a failover is: a request to a server that does not answer takes
//! `timeout * (2^(retries+1) - 1)` (capped per attempt by `max_timeout`)
//! before it moves on; with `timeout` 300 ms and `retries` 1 that is 900 ms,
//! and later requests skip the dead server at once.

mod transport;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use transport::Client;

use crate::radius::{self, AttrType, Attribute, Code, Repr};

/// One RADIUS server of a group.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Server address (authentication or accounting port).
    pub addr: SocketAddr,
    /// Shared secret.
    pub secret: Vec<u8>,
}

/// Client behaviour.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// First retransmission timeout; doubled after each retransmission.
    /// Default 1 s.
    pub timeout: Duration,
    /// Upper bound of the backed-off timeout. Default 8 s.
    pub max_timeout: Duration,
    /// Retransmissions per server before failing over. Default 2.
    pub retries: u32,
    /// How long a server that timed out is skipped. Default 30 s.
    pub dead_time: Duration,
    /// Drop responses without a Message-Authenticator (BlastRADIUS
    /// mitigation). Default true.
    pub require_message_authenticator: bool,
    /// UDP sockets per server, each with its own window of 256 identifiers
    /// (and source port). Default 4.
    pub sockets_per_server: usize,
    /// How often a dead server is sent Status-Server; it is alive again at
    /// the first answer. `Duration::ZERO` disables probing (a dead server
    /// then returns only after `dead_time`). Default 2 s.
    pub status_server_interval: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: Duration::from_secs(1),
            max_timeout: Duration::from_secs(8),
            retries: 2,
            dead_time: Duration::from_secs(30),
            require_message_authenticator: true,
            sockets_per_server: 4,
            status_server_interval: Duration::from_secs(2),
        }
    }
}

/// A request to send. The client adds Message-Authenticator, the
/// authenticator and, from `password`, the hidden User-Password.
#[derive(Debug, Clone)]
pub struct Request {
    /// Access-Request, Accounting-Request or Status-Server.
    pub code: Code,
    /// Attributes other than User-Password and Message-Authenticator.
    pub attributes: Vec<Attribute>,
    /// Cleartext PAP password, hidden per server secret (RFC 2865 5.2).
    pub password: Option<Vec<u8>>,
}

impl Request {
    /// A PAP Access-Request.
    pub fn pap(user: &str, password: &[u8]) -> Self {
        Request {
            code: Code::AccessRequest,
            attributes: vec![Attribute::new(AttrType::UserName, user.as_bytes())],
            password: Some(password.to_vec()),
        }
    }

    /// A CHAP Access-Request with CHAP-Challenge (RFC 2865 5.3, 5.40).
    pub fn chap(user: &str, chap_id: u8, password: &[u8], challenge: &[u8]) -> Self {
        Request {
            code: Code::AccessRequest,
            attributes: vec![
                Attribute::new(AttrType::UserName, user.as_bytes()),
                Attribute::new(
                    AttrType::ChapPassword,
                    radius::crypto::chap_password(chap_id, password, challenge),
                ),
                Attribute::new(AttrType::ChapChallenge, challenge),
            ],
            password: None,
        }
    }

    /// An Accounting-Request with Acct-Status-Type and Acct-Session-Id.
    pub fn accounting(status_type: u32, session_id: &str, mut attributes: Vec<Attribute>) -> Self {
        attributes.insert(0, Attribute::u32(AttrType::AcctStatusType, status_type));
        attributes.insert(
            1,
            Attribute::new(AttrType::AcctSessionId, session_id.as_bytes()),
        );
        Request {
            code: Code::AccountingRequest,
            attributes,
            password: None,
        }
    }

    /// Adds an attribute.
    pub fn with(mut self, attribute: Attribute) -> Self {
        self.attributes.push(attribute);
        self
    }
}

/// A verified response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The server that answered.
    pub server: SocketAddr,
    /// The decoded packet.
    pub packet: Repr,
}

/// Client errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Socket creation failed.
    #[error("RADIUS socket for {addr}: {source}")]
    Io {
        /// Server address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The request could not be encoded.
    #[error("RADIUS request: {0}")]
    Codec(#[from] radius::Error),
    /// The client was built without servers.
    #[error("no RADIUS servers configured: expected at least one")]
    NoServers,
    /// Every server of the group timed out.
    #[error("no RADIUS server answered: {tried} tried, each with {retries} retransmissions")]
    Timeout {
        /// Servers tried.
        tried: usize,
        /// Retransmissions per server.
        retries: u32,
    },
}

/// What the client knows of one server ([`Client::server_states`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    /// Server address.
    pub addr: SocketAddr,
    /// Not marked dead: requests go to it.
    pub alive: bool,
    /// While dead: how long until its dead time runs out (a Status-Server
    /// answer ends it earlier).
    pub dead_for: Option<Duration>,
    /// Requests waiting for its answer, over all its sockets.
    pub in_flight: usize,
    /// Status-Server probes sent to it so far.
    pub status_server_probes: u64,
}

/// Counters, one per event. Exported as `vbng_radius_<name>_total`.
#[derive(Debug, Default)]
pub struct Stats {
    pub(crate) requests: AtomicU64,
    pub(crate) retransmissions: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) failovers: AtomicU64,
    pub(crate) responses: AtomicU64,
    pub(crate) dropped_bad_authenticator: AtomicU64,
    pub(crate) dropped_bad_message_authenticator: AtomicU64,
    pub(crate) dropped_unmatched: AtomicU64,
    pub(crate) dropped_malformed: AtomicU64,
    pub(crate) status_server_probes: AtomicU64,
    pub(crate) revivals: AtomicU64,
}

/// A copy of [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Requests given to [`Client::send`].
    pub requests: u64,
    /// Retransmissions to the same server.
    pub retransmissions: u64,
    /// Servers that exhausted their retries for a request.
    pub timeouts: u64,
    /// Requests moved to the next server.
    pub failovers: u64,
    /// Verified responses delivered.
    pub responses: u64,
    /// Responses dropped: Response Authenticator mismatch.
    pub dropped_bad_authenticator: u64,
    /// Responses dropped: Message-Authenticator missing or wrong.
    pub dropped_bad_message_authenticator: u64,
    /// Responses dropped: no request in flight with that identifier.
    pub dropped_unmatched: u64,
    /// Responses dropped: malformed packet.
    pub dropped_malformed: u64,
    /// Status-Server probes sent to dead servers.
    pub status_server_probes: u64,
    /// Dead servers made alive by a Status-Server answer.
    pub revivals: u64,
}

impl Stats {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            requests: r(&self.requests),
            retransmissions: r(&self.retransmissions),
            timeouts: r(&self.timeouts),
            failovers: r(&self.failovers),
            responses: r(&self.responses),
            dropped_bad_authenticator: r(&self.dropped_bad_authenticator),
            dropped_bad_message_authenticator: r(&self.dropped_bad_message_authenticator),
            dropped_unmatched: r(&self.dropped_unmatched),
            dropped_malformed: r(&self.dropped_malformed),
            status_server_probes: r(&self.status_server_probes),
            revivals: r(&self.revivals),
        }
    }
}
