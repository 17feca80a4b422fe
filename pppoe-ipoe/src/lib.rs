//! Sans-IO access protocols for vbng.
//!
//! Protocol state machines here take decoded messages and time and return
//! replies and events; sockets, frames and timers live in the caller
//! (`vbng-cp`). Nothing in this crate performs I/O, so every protocol is
//! testable without a network and fuzzable.
//!
//! # Module map
//!
//! - [`dhcpv4`]: DHCPv4 server (RFC 2131) on [`dhcproto`] messages, with
//!   relay agent information (option 82, RFC 3046).
//!   - [`dhcpv4::pool`]: the address pool allocator (range, exclusions,
//!     sticky preference, quarantine of declined addresses).
//!   - [`dhcpv4::server`]: the server state machine, leases and counters.
//! - [`pppoe`]: PPPoE (RFC 2516) wire format with RFC 4638 and the TR-101
//!   access-loop tags, and the discovery server (PADI/PADO/PADR/PADS/PADT,
//!   stateless AC-Cookie, per-MAC and per-port limits, session caps).
//! - [`ppp`]: PPP negotiation on the server side: the RFC 1661 option
//!   negotiation automaton, LCP (MRU, magic, echo keepalive), PAP
//!   (RFC 1334), CHAP-MD5 (RFC 1994) and IPCP with DNS (RFC 1332/1877).
//!   IPv6CP (RFC 5072) when the caller offers IPv6.
//! - [`ipv6`]: IPv6 prefixes, packets (UDP, ICMPv6 checksums) and the
//!   per-session router ([`ipv6::ra::RouterAdvertiser`], RFC 4861).
//! - [`dhcpv6`]: stateful DHCPv6 server (RFC 8415) for PPP links: IA_NA
//!   from an address pool or the session's /64, IA_PD from a
//!   delegated-prefix pool, DNS servers.
//!
//! The `dhcproto` crate is re-exported so that callers (and the fuzz
//! targets) use the exact version this crate was built against.
#![forbid(unsafe_code)]

pub use dhcproto;

pub mod dhcpv4;
pub mod dhcpv6;
pub mod ipv6;
pub mod ppp;
pub mod pppoe;
