//! vbng AAA: RADIUS authentication and accounting.
//!
//! Module map:
//! - [`radius`]: the RADIUS wire codec (RFC 2865/2866): packet view and
//!   [`radius::Repr`], attribute and code enums, User-Password hiding
//!   (RFC 2865 5.2), CHAP, request/response authenticators and
//!   Message-Authenticator (RFC 3579 3.2).
//! - [`client`]: a tokio UDP client: one socket per server, an identifier
//!   window of 256, retransmission with exponential backoff, verification of
//!   every response (authenticator and required Message-Authenticator) and
//!   failover across a server group with dead-server marking.

pub mod client;
pub mod radius;
