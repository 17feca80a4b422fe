//! Stateful DHCPv6 server (RFC 8415) for PPP sessions.
//!
//! - [`pool`]: [`PrefixPool`], prefixes of one length carved out of a
//!   configured prefix (per-session /64s, delegated /56s, or /128
//!   addresses).
//! - [`server`]: [`Dhcpv6Server`], the sans-IO server: Solicit/Advertise
//!   (optionally Rapid Commit), Request, Renew, Rebind, Release, Decline and
//!   Information-Request, with IA_NA, IA_PD and the DNS Recursive Name
//!   Server option.
//! - [`decode`](mod@decode): [`decode()`], `dhcproto` decoding guarded
//!   against the option lengths it would panic on.
//!
//! Each PPP session is one link ([`LinkId`]) with one client: the caller
//! opens the link when IPv6CP opens ([`Dhcpv6Server::open_link`], which
//! also yields the /64 the router advertises), passes the link's DHCPv6
//! messages to [`Dhcpv6Server::handle`] and closes the link when the
//! session ends, which returns everything it held to the pools. Bindings
//! therefore live as long as the session; the lifetimes in replies only
//! tell the client when to renew.

use std::net::Ipv6Addr;

use serde::Deserialize;

use crate::ipv6::Ipv6Prefix;

pub mod decode;
pub mod pool;
pub mod server;

#[cfg(test)]
mod tests;

pub use decode::decode;
pub use pool::PrefixPool;
pub use server::{Dhcpv6Counters, Dhcpv6Server, LinkBindings, LinkId, LinkRequest, LinkState};

/// UDP port of DHCPv6 servers and relay agents.
pub const SERVER_PORT: u16 = 547;
/// UDP port of DHCPv6 clients.
pub const CLIENT_PORT: u16 = 546;

/// The IPv6 part of one subscriber pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6PoolConfig {
    /// The pool's name (the IPv4 pool of the same name).
    pub name: String,
    /// Where IA_NA addresses come from. Shorter than /64: a /64 per
    /// session, advertised in the Router Advertisement, the session's
    /// address being that /64 plus the peer's interface identifier.
    /// /64 to /127: one shared range, one address per session, no prefix
    /// advertised. `None`: no IA_NA.
    pub prefix: Option<Ipv6Prefix>,
    /// Where IA_PD delegated prefixes come from. `None`: no IA_PD.
    pub pd_prefix: Option<Ipv6Prefix>,
    /// Length of the delegated prefixes, longer than `pd_prefix`'s and at
    /// most 64.
    pub pd_length: u8,
    /// DNS recursive name servers (option 23), in order.
    pub dns: Vec<Ipv6Addr>,
    /// Set the autonomous (A) flag on the advertised /64.
    pub slaac: bool,
    /// Valid lifetime of addresses and prefixes, seconds; the preferred
    /// lifetime is the same, T1 half of it and T2 four fifths.
    pub lease_time_s: u32,
}

impl Ipv6PoolConfig {
    /// Whether each session gets a /64 of its own (advertised by RA).
    pub fn per_session_prefix(&self) -> bool {
        self.prefix.is_some_and(|p| p.len() < 64)
    }

    /// Check the pool on its own.
    pub fn validate(&self) -> Result<(), Ipv6ConfigError> {
        let pool = || self.name.clone();
        if let Some(p) = self.prefix
            && p.len() >= 128 - 1
        {
            return Err(Ipv6ConfigError::PrefixTooLong {
                pool: pool(),
                found: p,
            });
        }
        if let Some(pd) = self.pd_prefix
            && (self.pd_length <= pd.len() || self.pd_length > 64)
        {
            return Err(Ipv6ConfigError::PdLength {
                pool: pool(),
                pd_prefix: pd,
                found: self.pd_length,
            });
        }
        if let (Some(a), Some(pd)) = (self.prefix, self.pd_prefix)
            && a.overlaps(&pd)
        {
            return Err(Ipv6ConfigError::Overlap {
                pool: pool(),
                first: a,
                second: pd,
            });
        }
        if self.lease_time_s == 0 {
            return Err(Ipv6ConfigError::ZeroLeaseTime(pool()));
        }
        Ok(())
    }
}

/// The `[[pools]]` keys of the IPv6 part, as read from TOML. Every key is
/// optional; a pool without `ipv6_prefix` and `pd_prefix` has no IPv6.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ipv6PoolKeys {
    /// [`Ipv6PoolConfig::prefix`].
    #[serde(default)]
    pub ipv6_prefix: Option<Ipv6Prefix>,
    /// [`Ipv6PoolConfig::pd_prefix`].
    #[serde(default)]
    pub pd_prefix: Option<Ipv6Prefix>,
    /// [`Ipv6PoolConfig::pd_length`]. Default 56.
    #[serde(default)]
    pub pd_length: Option<u8>,
    /// [`Ipv6PoolConfig::dns`]. Default: none.
    #[serde(default)]
    pub dns6: Vec<Ipv6Addr>,
    /// [`Ipv6PoolConfig::slaac`]. Default false.
    #[serde(default)]
    pub ipv6_slaac: bool,
}

impl Ipv6PoolKeys {
    /// The key names, for callers that split them off a pool table.
    pub const NAMES: [&'static str; 5] = [
        "ipv6_prefix",
        "pd_prefix",
        "pd_length",
        "dns6",
        "ipv6_slaac",
    ];

    /// The pool config for pool `name` with lease time `lease_time_s`,
    /// or `None` if the keys give it neither addresses nor prefixes.
    pub fn into_config(self, name: &str, lease_time_s: u32) -> Option<Ipv6PoolConfig> {
        if self.ipv6_prefix.is_none() && self.pd_prefix.is_none() {
            return None;
        }
        Some(Ipv6PoolConfig {
            name: name.to_string(),
            prefix: self.ipv6_prefix,
            pd_prefix: self.pd_prefix,
            pd_length: self.pd_length.unwrap_or(DEFAULT_PD_LENGTH),
            dns: self.dns6,
            slaac: self.ipv6_slaac,
            lease_time_s,
        })
    }
}

/// Delegated prefix length when `pd_length` is not given.
pub const DEFAULT_PD_LENGTH: u8 = 56;

/// An IPv6 pool that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ipv6ConfigError {
    /// `ipv6_prefix` leaves no room for addresses.
    #[error("pool {pool:?}: expected ipv6_prefix of length at most 126, found {found}")]
    PrefixTooLong {
        /// The pool.
        pool: String,
        /// The prefix.
        found: Ipv6Prefix,
    },
    /// `pd_length` is not longer than `pd_prefix` or longer than 64.
    #[error(
        "pool {pool:?}: expected pd_length longer than pd_prefix {pd_prefix} and at most 64, found {found}"
    )]
    PdLength {
        /// The pool.
        pool: String,
        /// Its pd_prefix.
        pd_prefix: Ipv6Prefix,
        /// The pd_length.
        found: u8,
    },
    /// Two prefixes (of one pool or of two) overlap.
    #[error("pool {pool:?}: expected non-overlapping IPv6 prefixes, found {first} and {second}")]
    Overlap {
        /// The pool.
        pool: String,
        /// One prefix.
        first: Ipv6Prefix,
        /// The other.
        second: Ipv6Prefix,
    },
    /// Two IPv6 pools with one name.
    #[error("pool {0:?}: expected a unique name, found it twice")]
    DuplicateName(String),
    /// Zero lifetime.
    #[error("pool {0:?}: expected lease_time_s of at least 1, found 0")]
    ZeroLeaseTime(String),
}

/// A DHCPv6 message that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Dhcpv6DecodeError {
    /// Shorter than the 4-byte header.
    #[error("DHCPv6: expected at least 4 bytes, found {0}")]
    Truncated(usize),
    /// A relay message (the server only talks to clients on the link).
    #[error("DHCPv6: relay message type {0} on a client link")]
    Relay(u8),
    /// An option runs past its container or is shorter than its fixed part.
    #[error("DHCPv6 option {code} at offset {offset}: length {len} is invalid here")]
    BadOption {
        /// Option code.
        code: u16,
        /// Its offset in its container.
        offset: usize,
        /// Its length field.
        len: usize,
    },
    /// Options nested deeper than the server follows.
    #[error("DHCPv6: options nested deeper than {0} levels")]
    TooDeep(usize),
    /// `dhcproto` refused the bytes.
    #[error("DHCPv6: {0}")]
    Dhcproto(String),
}

/// DUID-LL (RFC 8415 section 11.4) of an Ethernet MAC address: DUID type 3,
/// hardware type 1, the address.
pub fn duid_ll(mac: [u8; 6]) -> Vec<u8> {
    let mut d = vec![0, 3, 0, 1];
    d.extend_from_slice(&mac);
    d
}
