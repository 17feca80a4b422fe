//! PPP negotiation on the authenticator (server) side, sans-IO.
//!
//! - [`wire`]: the control packet format shared by LCP and the NCPs
//!   (RFC 1661 section 5), configuration options, PAP (RFC 1334) and
//!   CHAP (RFC 1994) packets.
//! - [`client`]: [`client::PppClient`], the subscriber's side (LCP, PAP or
//!   CHAP-MD5, IPCP asking for an address and DNS), for load tools and tests.
//! - [`fsm`]: the option negotiation automaton of RFC 1661 section 4 as a
//!   pure transition table, with its restart counter and timer.
//! - [`session`]: [`PppSession`], one subscriber's PPP: LCP (MRU,
//!   authentication protocol, magic number, echo keepalive), PAP or
//!   CHAP-MD5, then IPCP with DNS addresses (RFC 1332, RFC 1877).
//!
//! The caller feeds the PPP payloads of a PPPoE session (protocol field
//! split off) to [`PppSession::input`], calls [`PppSession::tick`] at
//! [`PppSession::next_deadline`], and sends the returned [`Output::frames`]
//! with their protocol field. [`PppEvent`]s ask it to authenticate the user,
//! to assign an address, and tell it when the session is up or over.
//! Time is monotonic milliseconds passed in by the caller.

use std::net::Ipv4Addr;

pub mod client;
pub mod fsm;
pub mod session;
pub mod wire;

#[cfg(test)]
mod ipv6cp_tests;
#[cfg(test)]
mod tests;

pub use session::{NegotiatedLink, PppCounters, PppSession};

/// PPP protocol field values (RFC 1661 section 2, IANA "PPP DLL Protocol Numbers").
pub mod proto {
    /// Link Control Protocol (RFC 1661).
    pub const LCP: u16 = 0xc021;
    /// Password Authentication Protocol (RFC 1334).
    pub const PAP: u16 = 0xc023;
    /// Challenge Handshake Authentication Protocol (RFC 1994).
    pub const CHAP: u16 = 0xc223;
    /// IP Control Protocol (RFC 1332).
    pub const IPCP: u16 = 0x8021;
    /// IPv6 Control Protocol (RFC 5072); Protocol-Rejected unless
    /// [`PppSession::enable_ipv6`] offered IPv6.
    pub const IPV6CP: u16 = 0x8057;
    /// IPv4 datagrams.
    pub const IPV4: u16 = 0x0021;
    /// IPv6 datagrams.
    pub const IPV6: u16 = 0x0057;
}

/// Name this end gives in CHAP Challenges (RFC 1994 section 4.1, "Name").
pub const CHAP_NAME: &[u8] = b"vbng";

/// Length of the CHAP challenge values this end sends.
pub const CHAP_CHALLENGE_LEN: usize = 16;

/// Per-session PPP settings.
///
/// Defaults ([`PppConfig::default`]) follow RFC 1661 section 4.6 for the
/// counters and pppd for the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PppConfig {
    /// MRU requested from the peer (LCP option 1), and the largest MRU of
    /// the peer accepted. Default 1492 (PPPoE over a 1500-byte Ethernet,
    /// RFC 2516 section 7); 1500 when RFC 4638 PPP-Max-Payload was agreed.
    pub mru: u16,
    /// Authentication required from the peer. Default [`AuthMethod::Chap`].
    pub auth: AuthMethod,
    /// Interval between our LCP Echo-Requests once LCP is open; 0 disables
    /// them. Default 10 000 ms.
    pub echo_interval_ms: u64,
    /// Consecutive unanswered Echo-Requests after which the session ends
    /// with [`DownReason::EchoTimeout`]. Default 3.
    pub echo_failures: u32,
    /// Restart timer (RFC 1661 section 4.6), also the CHAP Challenge
    /// retransmission interval. Default 3000 ms.
    pub restart_ms: u64,
    /// Max-Configure: Configure-Requests sent without answer before giving
    /// up; also CHAP Challenges sent. Default 10.
    pub max_configure: u32,
    /// Max-Terminate: Terminate-Requests sent without answer. Default 2.
    pub max_terminate: u32,
    /// Max-Failure: Configure-Naks sent without a Configure-Ack before the
    /// options are Configure-Rejected instead. Default 5.
    pub max_failure: u32,
    /// Time allowed from LCP Opened to the peer's credentials and our
    /// verdict. Default 30 000 ms.
    pub auth_timeout_ms: u64,
}

impl Default for PppConfig {
    fn default() -> Self {
        PppConfig {
            mru: 1492,
            auth: AuthMethod::Chap,
            echo_interval_ms: 10_000,
            echo_failures: 3,
            restart_ms: 3000,
            max_configure: 10,
            max_terminate: 2,
            max_failure: 5,
            auth_timeout_ms: 30_000,
        }
    }
}

/// Authentication protocol required from the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// PAP only (RFC 1334).
    Pap,
    /// CHAP with MD5 only (RFC 1994, algorithm 5).
    Chap,
    /// Offer CHAP-MD5; if the peer Naks it, offer PAP.
    ChapThenPap,
}

/// What the peer proved, for the AAA layer to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// PAP Authenticate-Request password, in clear.
    Pap {
        /// The password as sent.
        password: Vec<u8>,
    },
    /// CHAP-MD5: `response == MD5(id || secret || challenge)` if the peer
    /// knows the secret (RFC 1994 section 4.1).
    Chap {
        /// Identifier of the Challenge and the Response.
        id: u8,
        /// The challenge value we sent.
        challenge: Vec<u8>,
        /// The peer's response value.
        response: [u8; 16],
    },
}

/// Something the caller must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PppEvent {
    /// The peer sent credentials: answer with [`PppSession::auth_result`].
    Authenticate {
        /// PAP Peer-ID or CHAP Name.
        user: String,
        /// The credentials to verify.
        credentials: Credentials,
    },
    /// IPCP needs the peer's address: answer with [`PppSession::set_address`].
    NeedAddress,
    /// IPCP reached Opened: the peer uses `ipv4`. Sent once per session.
    Up {
        /// The address the peer agreed to.
        ipv4: Ipv4Addr,
    },
    /// The session is over: send the frames returned with this event, then
    /// a PADT. Sent once; the session ignores everything afterwards.
    Down {
        /// Why it ended.
        reason: DownReason,
    },
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DownReason {
    /// The peer sent an LCP Terminate-Request.
    PeerTerminated,
    /// `echo_failures` Echo-Requests in a row went unanswered.
    EchoTimeout,
    /// The AAA layer refused the credentials.
    AuthFailed,
    /// LCP or IPCP could not agree (timeouts, rejected authentication,
    /// Naks that do not converge, catastrophic Code- or Protocol-Reject,
    /// renegotiation after LCP was open).
    NegotiationFailed,
    /// [`PppSession::close`] by the operator or the control plane.
    AdminClose,
    /// No credentials (or no verdict) within `auth_timeout_ms`.
    AuthTimeout,
}

impl DownReason {
    /// A short label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DownReason::PeerTerminated => "peer_terminated",
            DownReason::EchoTimeout => "echo_timeout",
            DownReason::AuthFailed => "auth_failed",
            DownReason::NegotiationFailed => "negotiation_failed",
            DownReason::AdminClose => "admin_close",
            DownReason::AuthTimeout => "auth_timeout",
        }
    }
}

/// Link phase (RFC 1661 section 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not started, or over (after [`PppEvent::Down`]).
    Dead,
    /// LCP negotiating.
    Establish,
    /// LCP open, waiting for credentials or for the AAA verdict.
    Authenticate,
    /// Authenticated; IPCP negotiating or open.
    Network,
    /// Our Terminate-Request is out, waiting for the Terminate-Ack.
    Terminate,
}

/// What a call produced: frames to send (in order) and events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// `(PPP protocol, PPP payload without the protocol field)`.
    pub frames: Vec<(u16, Vec<u8>)>,
    /// Events for the caller, in the order they happened.
    pub events: Vec<PppEvent>,
}

/// A malformed PPP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PppError {
    /// Fewer bytes than a header or fixed field needs.
    #[error("PPP {what}: expected at least {expected} bytes, found {found}")]
    Truncated {
        /// The structure being parsed.
        what: &'static str,
        /// Bytes needed.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// The Length field is below the header size or beyond the bytes present.
    #[error("PPP packet length {length} is outside 4..={available}")]
    BadLength {
        /// The Length field.
        length: u16,
        /// Bytes present.
        available: usize,
    },
    /// A configuration option's length is below 2 or runs past the packet.
    #[error("PPP option at offset {offset}: length {len} is outside 2..={remaining}")]
    BadOption {
        /// Offset of the option in the option list.
        offset: usize,
        /// Its Length field.
        len: u8,
        /// Bytes left from the option's start.
        remaining: usize,
    },
    /// A length-prefixed field (PAP Peer-ID/Password, CHAP Value) runs past the packet.
    #[error("PPP {what}: field of {len} bytes runs past the {remaining} bytes left")]
    BadField {
        /// The field.
        what: &'static str,
        /// Its length prefix.
        len: usize,
        /// Bytes left.
        remaining: usize,
    },
}
