//! `[aaa]` and `[radius]`: which AAA backend authorizes subscribers, and the
//! RADIUS servers, accounting spool and CoA listener when it is RADIUS.
//!
//! ```toml
//! [aaa]
//! backend = "radius"               # default "local" (the subscriber file)
//!
//! [radius]
//! nas_identifier = "vbng"
//! accounting_spool = "/var/lib/vbng/accounting.spool"
//! [[radius.auth_servers]]
//! address = "192.0.2.10:1812"
//! secret = "s3cret"
//! [radius.coa]
//! listen = "0.0.0.0:3799"
//! [[radius.coa.clients]]
//! address = "192.0.2.10"
//! secret = "s3cret"
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Which AAA backend authorizes subscribers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AaaBackend {
    /// The local subscriber file (`subscribers`); no accounting.
    #[default]
    Local,
    /// RADIUS (`[radius]`): authentication, accounting, CoA/Disconnect.
    Radius,
}

/// `[aaa]`: the AAA switch.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AaaSection {
    /// `"local"` or `"radius"`. Default: `"local"`.
    #[serde(default)]
    pub backend: AaaBackend,
}

/// The User-Name an IPoE subscriber is authenticated with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IpoeUserName {
    /// The client MAC, lower case with colons (`02:00:00:00:00:01`).
    #[default]
    Mac,
    /// The option-82 Agent Circuit ID as text, else the MAC.
    CircuitId,
}

/// One RADIUS server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusServer {
    /// Server address and port. Required.
    pub address: SocketAddr,
    /// Shared secret. Required, not empty.
    pub secret: String,
}

/// A Dynamic Authorization client allowed to send CoA/Disconnect.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoaClientConfig {
    /// Source address requests must come from. Required.
    pub address: IpAddr,
    /// Shared secret. Required, not empty.
    pub secret: String,
}

/// `[radius.coa]`: the CoA/Disconnect server (RFC 5176).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoaSection {
    /// UDP listen address. Default: none (no CoA server).
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// Clients allowed to send requests. Default: none.
    #[serde(default)]
    pub clients: Vec<CoaClientConfig>,
    /// Require (and verify) Message-Authenticator in requests. Default: true.
    #[serde(default = "yes")]
    pub require_message_authenticator: bool,
}

impl Default for CoaSection {
    fn default() -> Self {
        CoaSection {
            listen: None,
            clients: Vec::new(),
            require_message_authenticator: true,
        }
    }
}

/// `[radius]`: servers and behaviour of the RADIUS backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusSection {
    /// Authentication servers, tried in order (failover). Required when
    /// `[aaa] backend = "radius"`.
    #[serde(default)]
    pub auth_servers: Vec<RadiusServer>,
    /// Accounting servers, tried in order. Default: the authentication
    /// servers with port + 1 (1812 -> 1813).
    #[serde(default)]
    pub acct_servers: Vec<RadiusServer>,
    /// NAS-Identifier sent in every request. Default: `"vbng"`.
    #[serde(default = "default_nas_identifier")]
    pub nas_identifier: String,
    /// NAS-IP-Address sent in every request. Default: the PFCP node
    /// address.
    #[serde(default)]
    pub nas_ip: Option<Ipv4Addr>,
    /// First retransmission timeout in milliseconds (doubled per retry).
    /// Default: 1000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Retransmissions per server before failing over. Default: 2.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Seconds a server that timed out is skipped (Status-Server probes
    /// revive it sooner). Default: 30.
    #[serde(default = "default_dead_time_s")]
    pub dead_time_s: u64,
    /// UDP sockets per server, each with 256 identifiers. Default: 4.
    #[serde(default = "default_sockets_per_server")]
    pub sockets_per_server: usize,
    /// Require Message-Authenticator in every response (BlastRADIUS
    /// mitigation). Default: true.
    #[serde(default = "yes")]
    pub require_message_authenticator: bool,
    /// User-Name of IPoE subscribers: `"mac"` or `"circuit-id"`.
    /// Default: `"mac"`.
    #[serde(default)]
    pub ipoe_username: IpoeUserName,
    /// User-Password sent for IPoE subscribers. Default: `"vbng"`.
    #[serde(default = "default_ipoe_password")]
    pub ipoe_password: String,
    /// Pool for accepted subscribers whose reply names no Framed-Pool.
    /// Default: `"default"`.
    #[serde(default = "default_pool")]
    pub default_pool: String,
    /// Seconds an Access-Accept is reused for the same client (DHCP
    /// DISCOVER, then REQUEST). Default: 60.
    #[serde(default = "default_accept_cache_s")]
    pub accept_cache_s: u64,
    /// Seconds an Access-Reject (or no answer) is remembered before the
    /// client is tried again: bounds the request rate of a client that is
    /// refused. Default: 10.
    #[serde(default = "default_reject_hold_s")]
    pub reject_hold_s: u64,
    /// Most authentications in flight at once; more clients wait for
    /// their DHCP retransmission. Default: 1024.
    #[serde(default = "default_max_pending")]
    pub max_pending: usize,
    /// Interim-Update interval in seconds when the Access-Accept carries
    /// no Acct-Interim-Interval; 0 = none. Default: 0.
    #[serde(default)]
    pub interim_interval_s: u32,
    /// Shortest interim (and idle-check) interval accepted, in seconds.
    /// RFC 2869 recommends 60 for production. Default: 60.
    #[serde(default = "default_min_interim_s")]
    pub min_interim_s: u32,
    /// The accounting spool file (append-only, fsync'd): records stay
    /// here until a server acknowledges them. A relative path is resolved
    /// against the directory of this config file. Required when
    /// `[aaa] backend = "radius"`.
    #[serde(default)]
    pub accounting_spool: Option<PathBuf>,
    /// The vendor id of the rate attributes (see
    /// `aaa/freeradius/dictionary.vbng`). Default: 32473.
    #[serde(default = "default_vendor_id")]
    pub vendor_id: u32,
    /// The CoA/Disconnect server.
    #[serde(default)]
    pub coa: CoaSection,
}

impl Default for RadiusSection {
    fn default() -> Self {
        RadiusSection {
            auth_servers: Vec::new(),
            acct_servers: Vec::new(),
            nas_identifier: default_nas_identifier(),
            nas_ip: None,
            timeout_ms: default_timeout_ms(),
            retries: default_retries(),
            dead_time_s: default_dead_time_s(),
            sockets_per_server: default_sockets_per_server(),
            require_message_authenticator: true,
            ipoe_username: IpoeUserName::default(),
            ipoe_password: default_ipoe_password(),
            default_pool: default_pool(),
            accept_cache_s: default_accept_cache_s(),
            reject_hold_s: default_reject_hold_s(),
            max_pending: default_max_pending(),
            interim_interval_s: 0,
            min_interim_s: default_min_interim_s(),
            accounting_spool: None,
            vendor_id: default_vendor_id(),
            coa: CoaSection::default(),
        }
    }
}

impl RadiusSection {
    /// The accounting servers: `acct_servers`, or the authentication ones
    /// with port + 1.
    pub fn accounting_servers(&self) -> Vec<RadiusServer> {
        if !self.acct_servers.is_empty() {
            return self.acct_servers.clone();
        }
        self.auth_servers
            .iter()
            .map(|s| RadiusServer {
                address: SocketAddr::new(s.address.ip(), s.address.port().wrapping_add(1)),
                secret: s.secret.clone(),
            })
            .collect()
    }

    /// `timeout_ms` as a [`Duration`].
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

fn yes() -> bool {
    true
}
fn default_nas_identifier() -> String {
    "vbng".into()
}
fn default_timeout_ms() -> u64 {
    1000
}
fn default_retries() -> u32 {
    2
}
fn default_dead_time_s() -> u64 {
    30
}
fn default_sockets_per_server() -> usize {
    4
}
fn default_ipoe_password() -> String {
    "vbng".into()
}
fn default_pool() -> String {
    "default".into()
}
fn default_accept_cache_s() -> u64 {
    60
}
fn default_reject_hold_s() -> u64 {
    10
}
fn default_max_pending() -> usize {
    1024
}
fn default_min_interim_s() -> u32 {
    60
}
fn default_vendor_id() -> u32 {
    vbng_aaa::dictionary::VBNG_VENDOR_ID
}
