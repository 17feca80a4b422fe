//! Dynamic Authorization server (RFC 5176): CoA-Request and
//! Disconnect-Request from configured clients.
//!
//! [`CoaServer`] listens on one UDP socket. Each datagram goes through the
//! sans-IO engine (`engine.rs`), which drops and counts, without answering,
//! anything that is not a CoA-Request (43) or Disconnect-Request (40) from a
//! configured client address with a valid Request Authenticator and, when
//! required, a valid Message-Authenticator. A request that passes is given to
//! the [`CoaHandler`] in a task of its own, so a slow change to one session
//! does not hold up the others; the [`CoaDecision`] becomes an ACK or a NAK
//! (with Error-Cause), signed with a Message-Authenticator and the Response
//! Authenticator.
//!
//! Retransmissions (RFC 5080 2.2.2): answers are kept for
//! [`CoaConfig::reply_cache_ttl`], keyed by source address and port,
//! Identifier and Request Authenticator. A retransmission within that time
//! gets the same bytes again without calling the handler; one that arrives
//! while the handler still runs is dropped, since the answer is on its way.

mod engine;
mod server;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use server::{CoaServer, SHUTDOWN_GRACE};

use crate::radius::{Attribute, Code, Repr};

/// RFC 5176 section 3.1: the Dynamic Authorization server port.
pub const COA_PORT: u16 = 3799;

/// A Dynamic Authorization client: the source address requests must come
/// from and the secret they are signed with.
#[derive(Clone)]
pub struct CoaClient {
    /// Allowed source address (any source port).
    pub addr: IpAddr,
    /// Shared secret.
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for CoaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoaClient")
            .field("addr", &self.addr)
            .field("secret", &"<hidden>")
            .finish()
    }
}

/// Server configuration.
#[derive(Debug, Clone)]
pub struct CoaConfig {
    /// Address to listen on. Default `0.0.0.0:3799`.
    pub listen: SocketAddr,
    /// Clients allowed to send requests. Default none (every request is
    /// dropped). A later entry for the same address replaces an earlier one.
    pub clients: Vec<CoaClient>,
    /// Drop requests without a valid Message-Authenticator (BlastRADIUS
    /// mitigation). A Message-Authenticator that is present is checked
    /// either way. Default true.
    pub require_message_authenticator: bool,
    /// How long an answer is kept to be sent again to a retransmission.
    /// Default 30 s.
    pub reply_cache_ttl: Duration,
}

impl Default for CoaConfig {
    fn default() -> Self {
        CoaConfig {
            listen: (Ipv4Addr::UNSPECIFIED, COA_PORT).into(),
            clients: Vec::new(),
            require_message_authenticator: true,
            reply_cache_ttl: Duration::from_secs(30),
        }
    }
}

/// The two request types of RFC 5176.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoaKind {
    /// CoA-Request (43): change a session's authorizations.
    Coa,
    /// Disconnect-Request (40): end a session.
    Disconnect,
}

impl CoaKind {
    /// The kind of a request code, if it is one of the two.
    pub fn from_code(code: Code) -> Option<Self> {
        match code {
            Code::CoaRequest => Some(CoaKind::Coa),
            Code::DisconnectRequest => Some(CoaKind::Disconnect),
            _ => None,
        }
    }

    /// The request code.
    pub fn request_code(self) -> Code {
        match self {
            CoaKind::Coa => Code::CoaRequest,
            CoaKind::Disconnect => Code::DisconnectRequest,
        }
    }

    /// The ACK code: CoA-ACK (44) or Disconnect-ACK (41).
    pub fn ack_code(self) -> Code {
        match self {
            CoaKind::Coa => Code::CoaAck,
            CoaKind::Disconnect => Code::DisconnectAck,
        }
    }

    /// The NAK code: CoA-NAK (45) or Disconnect-NAK (42).
    pub fn nak_code(self) -> Code {
        match self {
            CoaKind::Coa => Code::CoaNak,
            CoaKind::Disconnect => Code::DisconnectNak,
        }
    }
}

/// A verified request, as given to the handler.
#[derive(Debug, Clone)]
pub struct CoaRequest {
    /// CoA or Disconnect.
    pub kind: CoaKind,
    /// The client's address and port.
    pub source: SocketAddr,
    /// The decoded request, Message-Authenticator included.
    pub packet: Repr,
}

/// The handler's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoaDecision {
    /// CoA-ACK or Disconnect-ACK with these attributes.
    Ack {
        /// Attributes of the ACK (RFC 5176 3.5 lists those allowed).
        attributes: Vec<Attribute>,
    },
    /// CoA-NAK or Disconnect-NAK.
    Nak {
        /// Error-Cause value (RFC 5176 3.6, see
        /// [`crate::radius::error_cause`]), sent as the first attribute.
        error_cause: u32,
        /// Further attributes.
        attributes: Vec<Attribute>,
    },
}

impl CoaDecision {
    /// An ACK without attributes.
    pub fn ack() -> Self {
        CoaDecision::Ack {
            attributes: Vec::new(),
        }
    }

    /// A NAK carrying only an Error-Cause.
    pub fn nak(error_cause: u32) -> Self {
        CoaDecision::Nak {
            error_cause,
            attributes: Vec::new(),
        }
    }
}

/// What the server calls for each verified request. Calls run
/// concurrently, each in a task of its own.
pub trait CoaHandler: Send + Sync + 'static {
    /// Applies the request and says how to answer it. If the future is
    /// dropped (the server shut down) or panics, no answer is sent and a
    /// retransmission of the request calls the handler again.
    fn handle(&self, req: CoaRequest) -> Pin<Box<dyn Future<Output = CoaDecision> + Send + '_>>;
}

/// A [`CoaHandler`] made from a closure returning a future.
pub struct FnHandler<F>(pub F);

impl<F> std::fmt::Debug for FnHandler<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnHandler")
    }
}

impl<F, Fut> CoaHandler for FnHandler<F>
where
    F: Fn(CoaRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CoaDecision> + Send + 'static,
{
    fn handle(&self, req: CoaRequest) -> Pin<Box<dyn Future<Output = CoaDecision> + Send + '_>> {
        Box::pin((self.0)(req))
    }
}

/// Counters, one per event. Exported as `vbng_coa_<name>_total`.
#[derive(Debug, Default)]
pub struct CoaStats {
    requests: AtomicU64,
    coa_acks: AtomicU64,
    coa_naks: AtomicU64,
    disconnect_acks: AtomicU64,
    disconnect_naks: AtomicU64,
    dropped_unknown_client: AtomicU64,
    dropped_bad_authenticator: AtomicU64,
    dropped_bad_message_authenticator: AtomicU64,
    dropped_malformed: AtomicU64,
    dropped_unsupported_code: AtomicU64,
    duplicates_from_cache: AtomicU64,
    duplicates_in_progress: AtomicU64,
}

/// A copy of [`CoaStats`]. Every datagram counts once in `requests` and
/// once in exactly one other counter, except those whose handler is still
/// running (or was cancelled by shutdown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoaStatsSnapshot {
    /// Datagrams received.
    pub requests: u64,
    /// CoA-ACKs sent (retransmitted copies not included).
    pub coa_acks: u64,
    /// CoA-NAKs sent.
    pub coa_naks: u64,
    /// Disconnect-ACKs sent.
    pub disconnect_acks: u64,
    /// Disconnect-NAKs sent.
    pub disconnect_naks: u64,
    /// Dropped: the source address is not a configured client.
    pub dropped_unknown_client: u64,
    /// Dropped: the Request Authenticator does not match the secret.
    pub dropped_bad_authenticator: u64,
    /// Dropped: Message-Authenticator missing (when required) or wrong.
    pub dropped_bad_message_authenticator: u64,
    /// Dropped: not a well-formed RADIUS packet.
    pub dropped_malformed: u64,
    /// Dropped: a code other than CoA-Request and Disconnect-Request.
    pub dropped_unsupported_code: u64,
    /// Retransmissions answered again from the reply cache.
    pub duplicates_from_cache: u64,
    /// Retransmissions dropped because the handler was still running.
    pub duplicates_in_progress: u64,
}

impl CoaStats {
    fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> CoaStatsSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CoaStatsSnapshot {
            requests: r(&self.requests),
            coa_acks: r(&self.coa_acks),
            coa_naks: r(&self.coa_naks),
            disconnect_acks: r(&self.disconnect_acks),
            disconnect_naks: r(&self.disconnect_naks),
            dropped_unknown_client: r(&self.dropped_unknown_client),
            dropped_bad_authenticator: r(&self.dropped_bad_authenticator),
            dropped_bad_message_authenticator: r(&self.dropped_bad_message_authenticator),
            dropped_malformed: r(&self.dropped_malformed),
            dropped_unsupported_code: r(&self.dropped_unsupported_code),
            duplicates_from_cache: r(&self.duplicates_from_cache),
            duplicates_in_progress: r(&self.duplicates_in_progress),
        }
    }
}
