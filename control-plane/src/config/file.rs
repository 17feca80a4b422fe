//! The `vbng-cp` TOML schema. Every field documents its default; an empty
//! file (or no file) gives the lab defaults of the interface contract.
//!
//! ```toml
//! gateway_mac = "02:00:5e:00:01:01"
//! subscribers = "subscribers.toml"
//! [pfcp]
//! listen = "127.0.0.1:8805"
//! [gtpu]
//! listen = "127.0.0.1:2152"
//! [api]
//! listen = "127.0.0.1:8080"
//! [dhcp]
//! lease_file = "leases.jsonl"   # default: none (in memory only)
//! [[pools]]
//! name = "default"
//! # ...
//! [[user_planes]]
//! name = "up0"
//! pfcp = "127.0.0.2:8805"
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use vbng_access::dhcpv4::PoolConfig;
use vbng_access::dhcpv6::Ipv6PoolConfig;
use vbng_dataplane::wire::EthernetAddress;

/// The whole `vbng-cp` configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Virtual gateway MAC on the access side: ARP replies for pool gateways
    /// and DHCP replies are sourced from it. Default: `02:00:5e:00:01:01`.
    #[serde(default = "default_gateway_mac", with = "mac_serde")]
    pub gateway_mac: EthernetAddress,
    /// Local subscriber file (the embedded AAA), relative paths resolved
    /// against the directory of this config file. Default: none, which
    /// allows every client into the pool named `default`.
    #[serde(default)]
    pub subscribers: Option<PathBuf>,
    /// PFCP (CP <-> UP) settings.
    #[serde(default)]
    pub pfcp: PfcpSection,
    /// GTP-U control-packet redirect settings.
    #[serde(default)]
    pub gtpu: GtpuSection,
    /// REST API and Prometheus metrics listener.
    #[serde(default)]
    pub api: ApiSection,
    /// DHCP glue settings (flood protection).
    #[serde(default)]
    pub dhcp: DhcpSection,
    /// Subscriber address pools. Default: one pool `default`,
    /// 100.64.0.0/24, gateway .1, range .10-.250, DNS 192.0.2.53, lease 600 s.
    #[serde(default = "default_pools")]
    pub pools: Vec<PoolConfig>,
    /// The IPv6 parts of the pools: the `[[pools]]` keys `ipv6_prefix`,
    /// `pd_prefix`, `pd_length`, `dns6` and `ipv6_slaac` (split off by
    /// [`parse_config`](super::parse_config), as the IPv4 pool keys are
    /// [`PoolConfig`]'s). Default: none (no IPv6 for PPPoE sessions).
    #[serde(skip)]
    pub ipv6_pools: Vec<Ipv6PoolConfig>,
    /// User planes this control plane programs. Default: one, `up0` with
    /// PFCP at 127.0.0.2:8805.
    #[serde(default = "default_user_planes")]
    pub user_planes: Vec<UserPlaneConfig>,
    /// The AAA backend switch. Default: the local subscriber file.
    #[serde(default)]
    pub aaa: super::radius::AaaSection,
    /// RADIUS servers and behaviour (used with `[aaa] backend = "radius"`).
    #[serde(default)]
    pub radius: super::radius::RadiusSection,
    /// The PPPoE access concentrator.
    #[serde(default)]
    pub pppoe: super::pppoe::PppoeSection,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            gateway_mac: default_gateway_mac(),
            subscribers: None,
            pfcp: PfcpSection::default(),
            gtpu: GtpuSection::default(),
            api: ApiSection::default(),
            dhcp: DhcpSection::default(),
            pools: default_pools(),
            ipv6_pools: Vec::new(),
            user_planes: default_user_planes(),
            aaa: Default::default(),
            radius: Default::default(),
            pppoe: Default::default(),
        }
    }
}

/// `[pfcp]`: the control plane's PFCP endpoint and timers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PfcpSection {
    /// Local PFCP address (UDP). Default: `127.0.0.1:8805`.
    #[serde(default = "default_pfcp_listen")]
    pub listen: SocketAddr,
    /// Node ID (IPv4) sent in PFCP messages and the CP F-SEID address.
    /// Default: the IP of `listen` (see [`PfcpSection::node_ipv4`]).
    #[serde(default)]
    pub node_id: Option<Ipv4Addr>,
    /// Seconds between heartbeat requests to each user plane. Default: 5.
    #[serde(default = "default_heartbeat_interval_s")]
    pub heartbeat_interval_s: u32,
    /// Consecutive unanswered heartbeats after which a user plane is
    /// declared down. Default: 3.
    #[serde(default = "default_heartbeat_misses")]
    pub heartbeat_misses: u32,
    /// T1: milliseconds before a request is retransmitted. Default: 1000.
    #[serde(default = "default_t1_ms")]
    pub t1_ms: u64,
    /// N1: retransmissions before a request times out. Default: 3.
    #[serde(default = "default_n1")]
    pub n1: u32,
}

impl Default for PfcpSection {
    fn default() -> Self {
        PfcpSection {
            listen: default_pfcp_listen(),
            node_id: None,
            heartbeat_interval_s: default_heartbeat_interval_s(),
            heartbeat_misses: default_heartbeat_misses(),
            t1_ms: default_t1_ms(),
            n1: default_n1(),
        }
    }
}

impl PfcpSection {
    /// The CP's PFCP node IPv4: `node_id` if set, else the IP of `listen`
    /// when it is IPv4 and not unspecified, else 127.0.0.1.
    pub fn node_ipv4(&self) -> Ipv4Addr {
        if let Some(ip) = self.node_id {
            return ip;
        }
        match self.listen {
            SocketAddr::V4(a) if !a.ip().is_unspecified() => *a.ip(),
            _ => Ipv4Addr::LOCALHOST,
        }
    }

    /// Heartbeat interval as a [`Duration`].
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_secs(u64::from(self.heartbeat_interval_s))
    }

    /// T1 as a [`Duration`].
    pub fn t1(&self) -> Duration {
        Duration::from_millis(self.t1_ms)
    }
}

/// `[gtpu]`: the redirect socket.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GtpuSection {
    /// Local GTP-U address (UDP) for control packets redirected by user
    /// planes. Default: `127.0.0.1:2152`.
    #[serde(default = "default_gtpu_listen")]
    pub listen: SocketAddr,
}

impl Default for GtpuSection {
    fn default() -> Self {
        GtpuSection {
            listen: default_gtpu_listen(),
        }
    }
}

/// `[api]`: the REST + metrics listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// HTTP listen address for the REST API and `/metrics`.
    /// Default: `127.0.0.1:8080`.
    #[serde(default = "default_api_listen")]
    pub listen: SocketAddr,
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection {
            listen: default_api_listen(),
        }
    }
}

/// `[dhcp]`: flood protection of the DHCP glue and lease persistence.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhcpSection {
    /// Redirected control frames accepted per second from one client MAC
    /// (token bucket rate). Default: 10.
    #[serde(default = "default_per_mac_pps")]
    pub per_mac_pps: u32,
    /// Token bucket depth per client MAC, in frames. Default: 20.
    #[serde(default = "default_per_mac_burst")]
    pub per_mac_burst: u32,
    /// Most client MACs tracked by the rate limiter at once. Default: 65536.
    #[serde(default = "default_max_tracked_macs")]
    pub max_tracked_macs: usize,
    /// Lease journal: every bound, renewed and removed lease is appended
    /// here (and fsync'd before its DHCPACK leaves), so that a restarted
    /// control plane restores its leases and re-establishes their sessions
    /// without waiting for the clients; established PPPoE sessions are
    /// journalled here too, and restored likewise. A relative path is
    /// resolved against the directory of this config file. Default: none
    /// (leases are kept in memory only and lost on restart).
    #[serde(default)]
    pub lease_file: Option<PathBuf>,
}

impl Default for DhcpSection {
    fn default() -> Self {
        DhcpSection {
            per_mac_pps: default_per_mac_pps(),
            per_mac_burst: default_per_mac_burst(),
            max_tracked_macs: default_max_tracked_macs(),
            lease_file: None,
        }
    }
}

/// `[[user_planes]]`: one user plane this control plane programs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPlaneConfig {
    /// Unique name, shown by the API and vbngctl. Required.
    pub name: String,
    /// The user plane's PFCP address. Required.
    pub pfcp: SocketAddr,
    /// The user plane's GTP-U address, from which it redirects control
    /// frames. Default: the IP of `pfcp`, port 2152. The address the UP
    /// advertises in Association Setup is accepted too.
    #[serde(default)]
    pub gtpu: Option<SocketAddr>,
}

impl UserPlaneConfig {
    /// The GTP-U address: `gtpu`, or the PFCP IP with port 2152.
    pub fn gtpu_addr(&self) -> SocketAddr {
        self.gtpu
            .unwrap_or_else(|| SocketAddr::new(self.pfcp.ip(), crate::GTPU_PORT))
    }
}

fn default_gateway_mac() -> EthernetAddress {
    EthernetAddress([0x02, 0x00, 0x5e, 0x00, 0x01, 0x01])
}
fn default_pfcp_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], crate::PFCP_PORT))
}
fn default_gtpu_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], crate::GTPU_PORT))
}
fn default_api_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_heartbeat_interval_s() -> u32 {
    5
}
fn default_heartbeat_misses() -> u32 {
    3
}
fn default_t1_ms() -> u64 {
    1000
}
fn default_n1() -> u32 {
    3
}
fn default_per_mac_pps() -> u32 {
    10
}
fn default_per_mac_burst() -> u32 {
    20
}
fn default_max_tracked_macs() -> usize {
    65_536
}
fn default_pools() -> Vec<PoolConfig> {
    vec![PoolConfig::default()]
}
fn default_user_planes() -> Vec<UserPlaneConfig> {
    vec![UserPlaneConfig {
        name: "up0".to_string(),
        pfcp: SocketAddr::from(([127, 0, 0, 2], crate::PFCP_PORT)),
        gtpu: None,
    }]
}

/// (De)serialize an [`EthernetAddress`] as "aa:bb:cc:dd:ee:ff".
pub(crate) mod mac_serde {
    use serde::{Deserialize, Deserializer};
    use vbng_dataplane::wire::EthernetAddress;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<EthernetAddress, D::Error> {
        let s = String::deserialize(d)?;
        crate::parse_mac(&s).map_err(serde::de::Error::custom)
    }
}
