//! vbng AAA: RADIUS authentication, accounting and dynamic authorization.
//!
//! Module map:
//! - [`radius`]: the RADIUS wire codec (RFC 2865/2866): packet view and
//!   [`radius::Repr`], attribute and code enums, vendor-specific attributes,
//!   User-Password hiding (RFC 2865 5.2), CHAP, request/response
//!   authenticators and Message-Authenticator (RFC 3579 3.2).
//! - [`dictionary`]: the vbng vendor attributes and their FreeRADIUS
//!   dictionary.
//! - [`client`]: a tokio UDP client: a pool of sockets per server, each with
//!   an identifier window of 256, retransmission with exponential backoff,
//!   verification of every response (authenticator and required
//!   Message-Authenticator) and failover across a server group with
//!   dead-server detection.
//! - [`spool`]: the durable accounting spool: records are fsync'd to disk
//!   before they are sent and leave only once acknowledged, in order.
//! - [`coa`]: the Dynamic Authorization server (RFC 5176): CoA and
//!   Disconnect requests from configured clients, with a reply cache.
//! - [`lab`]: a FreeRADIUS 3.2 harness for tests and benchmarks: a server
//!   started in the foreground from the project's config directory.

pub mod client;
pub mod coa;
pub mod dictionary;
pub mod lab;
pub mod radius;
pub mod spool;
