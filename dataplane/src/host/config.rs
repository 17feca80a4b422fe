//! `vbng-up` configuration: a TOML file, command-line overrides and embedded defaults.
//!
//! Every setting is resolved from, in order of precedence: a command-line flag, the TOML file
//! given with `--config`, the embedded lab default (see the contract's lab addressing). A
//! bad value produces one [`ConfigError`] line that names where it came from (the file and
//! key, or the flag) and what was expected, e.g.
//!
//! ```text
//! /etc/vbng/up.toml: key core_port.ipv4: expected an IPv4 address with prefix like 198.51.100.2/24, found "abc"
//! ```
//!
//! The example `configs/vbng-up.toml` documents every key, `configs/vbng-up-dpdk.toml` the
//! same lab on DPDK ports; a test loads both. Submodules: [`parse`] (pure parsers of single
//! settings), [`ports`] (the port backend, `[dpdk]` and EAL arguments), [`acl`] (the ACL
//! file), `qos` (`[qos]`).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;

use crate::packet::{MAX_PORTS, PortId};
use crate::pipeline::{PipelineConfig, StaticRoute, StaticRoute6};
use crate::wire::EthernetAddress;

/// Default UP PFCP listen address (`pfcp.listen`).
pub const DEFAULT_PFCP_LISTEN: &str = "127.0.0.2:8805";
/// Default UP GTP-U listen address for the control-packet redirect (`gtpu.listen`).
pub const DEFAULT_GTPU_LISTEN: &str = "127.0.0.2:2152";
/// Default CP GTP-U address redirected frames are sent to (`gtpu.cp_address`).
pub const DEFAULT_CP_GTPU: &str = "127.0.0.1:2152";
/// Default Prometheus listen address (`metrics.listen`).
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.2:9100";
/// Default virtual gateway MAC on the access side (`gateway_mac`).
pub const DEFAULT_GATEWAY_MAC: &str = "02:00:5e:00:01:01";
/// Default core address with prefix (`core_port.ipv4`).
pub const DEFAULT_CORE_IPV4: &str = "198.51.100.2/24";
/// Default core next hop (`core_port.next_hop`).
pub const DEFAULT_NEXT_HOP: &str = "198.51.100.1";

/// Command-line flags of `vbng-up`. Flags override the file, which overrides the defaults.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "vbng-up",
    version,
    about = "vbng hosted user plane (AF_PACKET or DPDK ports)"
)]
pub struct Cli {
    /// TOML configuration file (see configs/vbng-up.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Access interface (repeatable; replaces the file's [[access_port]] list).
    #[arg(long = "access", value_name = "IFACE")]
    pub access: Vec<String>,
    /// Core interface (core_port.iface).
    #[arg(long, value_name = "IFACE")]
    pub core: Option<String>,
    /// Core IPv4 address with prefix length (core_port.ipv4), e.g. 198.51.100.2/24.
    #[arg(long, value_name = "ADDR/LEN")]
    pub core_ipv4: Option<String>,
    /// Core next hop IPv4 address (core_port.next_hop).
    #[arg(long, value_name = "ADDR")]
    pub next_hop: Option<String>,
    /// Core IPv6 address with prefix length (core_port.ipv6), e.g. 2001:db8:ffff::2/64;
    /// turns IPv6 forwarding on, with --next-hop6.
    #[arg(long, value_name = "ADDR/LEN")]
    pub core_ipv6: Option<String>,
    /// Core IPv6 next hop (core_port.next_hop6): on the core subnet or link-local.
    #[arg(long = "next-hop6", value_name = "ADDR")]
    pub next_hop6: Option<String>,
    /// PFCP listen address (pfcp.listen).
    #[arg(long, value_name = "ADDR:PORT")]
    pub pfcp_listen: Option<String>,
    /// GTP-U listen address for the control-packet redirect (gtpu.listen).
    #[arg(long, value_name = "ADDR:PORT")]
    pub gtpu_listen: Option<String>,
    /// CP GTP-U address redirected frames are sent to (gtpu.cp_address).
    #[arg(long, value_name = "ADDR:PORT")]
    pub cp_gtpu: Option<String>,
    /// Prometheus /metrics listen address (metrics.listen).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<String>,
    /// PFCP Node ID: an IPv4 address or an FQDN (pfcp.node_id).
    #[arg(long, value_name = "ID")]
    pub node_id: Option<String>,
    /// Virtual gateway MAC on the access side (gateway_mac).
    #[arg(long, value_name = "MAC")]
    pub gateway_mac: Option<String>,
    /// ACL file (acl_file): named ACLs sessions select, and the global ACL.
    #[arg(long, value_name = "FILE")]
    pub acl_file: Option<PathBuf>,
    /// Static route on the core side, PREFIX/LEN,NEXT_HOP (repeatable; replaces the file's
    /// [[route]] list), e.g. 192.0.2.0/24,198.51.100.3.
    #[arg(long = "route", value_name = "PREFIX/LEN,NEXT_HOP")]
    pub route: Vec<String>,
    /// Static IPv6 route on the core side, PREFIX/LEN,NEXT_HOP (repeatable; replaces the
    /// file's [[route6]] list; needs --core-ipv6), e.g. 2001:db8:e000::/40,2001:db8:ffff::3.
    #[arg(long = "route6", value_name = "PREFIX/LEN,NEXT_HOP")]
    pub route6: Vec<String>,
    /// NAT44 outside prefix (repeatable; replaces nat.pool and turns NAT on).
    #[arg(long = "nat-pool", value_name = "PREFIX/LEN")]
    pub nat_pool: Vec<String>,
    /// NAT port-block log file, JSON lines (nat.log_file).
    #[arg(long = "nat-log", value_name = "FILE")]
    pub nat_log: Option<PathBuf>,
    /// IPFIX collector of the NAT's port-block events, ADDRESS:PORT (repeatable; replaces
    /// nat.ipfix_collectors), e.g. 192.0.2.9:4739.
    #[arg(long = "nat-ipfix", value_name = "ADDRESS:PORT")]
    pub nat_ipfix: Vec<String>,
    /// Poll-mode worker threads (worker.workers), 1-16; more than 1 needs backend "dpdk".
    #[arg(long, value_name = "N")]
    pub workers: Option<u16>,
    /// Sessions each worker's table has room for from the start (worker.session_capacity),
    /// 0-16777216; 0: the table grows as sessions arrive.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_SESSION_CAPACITY)))]
    pub session_capacity: Option<u32>,
    /// Validate the configuration, print it and exit.
    #[arg(long)]
    pub check: bool,
}

// ---------------------------------------------------------------------------------------------
// File layout (raw strings; typed and checked by `resolve`).

/// The TOML file as written. Unknown keys are rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    /// Virtual gateway MAC on the access side. Default "02:00:5e:00:01:01".
    gateway_mac: Option<String>,
    #[serde(default)]
    pfcp: FilePfcp,
    #[serde(default)]
    gtpu: FileGtpu,
    #[serde(default)]
    metrics: FileMetrics,
    #[serde(default)]
    ports: ports::FilePorts,
    #[serde(default)]
    dpdk: ports::FileDpdk,
    /// Access ports, in port-index order (index 0 first). No default: at least one needed.
    #[serde(default)]
    access_port: Vec<FileAccessPort>,
    core_port: Option<FileCorePort>,
    #[serde(default)]
    worker: FileWorker,
    #[serde(default)]
    qos: qos::FileQos,
    /// ACL file (see configs/acl.toml); a relative path is taken from this file's
    /// directory. Default: none (no ACLs; sessions that name one are refused).
    acl_file: Option<String>,
    /// Static routes on the core side (beside the default route through
    /// `core_port.next_hop`). Default: none.
    #[serde(default)]
    route: Vec<FileRoute>,
    /// Static IPv6 routes on the core side (beside the default route through
    /// `core_port.next_hop6`). Default: none.
    #[serde(default)]
    route6: Vec<FileRoute>,
    #[serde(default)]
    nat: nat::FileNat,
}

/// One `[[route]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRoute {
    /// Destination prefix, e.g. "192.0.2.0/24".
    prefix: Option<String>,
    /// Next hop on the core subnet.
    next_hop: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePfcp {
    /// UDP address the PFCP agent listens on. Default "127.0.0.2:8805".
    listen: Option<String>,
    /// PFCP Node ID (IPv4 or FQDN). Default: the IPv4 address of `listen`.
    node_id: Option<String>,
    /// Seconds between heartbeats toward the CP. Default 10.
    heartbeat_interval_s: Option<u32>,
    /// Unanswered heartbeats after which the CP is declared lost. Default 3.
    heartbeat_misses: Option<u32>,
    /// Milliseconds a deletion waits for the worker's final counters. Default 200.
    deletion_wait_ms: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGtpu {
    /// UDP address of the UP's GTP-U redirect socket. Default "127.0.0.2:2152".
    listen: Option<String>,
    /// CP GTP-U address redirected frames go to. Default "127.0.0.1:2152".
    cp_address: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMetrics {
    /// TCP address of the Prometheus endpoint. Default "127.0.0.2:9100".
    listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAccessPort {
    /// Kernel interface name. Required with the af_packet backend.
    iface: Option<String>,
    /// DPDK device (vdev specification or PCI address). Required with the dpdk backend.
    device: Option<String>,
    /// Metric label. Default "acc<index>".
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCorePort {
    /// Kernel interface name. Required with the af_packet backend.
    iface: Option<String>,
    /// DPDK device (vdev specification or PCI address). Required with the dpdk backend.
    device: Option<String>,
    /// Metric label. Default "core".
    name: Option<String>,
    /// UP core address with prefix length. Default "198.51.100.2/24".
    ipv4: Option<String>,
    /// Next hop toward the Internet. Default "198.51.100.1".
    next_hop: Option<String>,
    /// UP core IPv6 address with prefix length. Default: none (IPv6 off).
    ipv6: Option<String>,
    /// IPv6 next hop toward the Internet (with `ipv6`).
    next_hop6: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWorker {
    /// Poll-mode worker threads, 1-16 (more than 1 needs the dpdk backend). Default 1.
    workers: Option<u32>,
    /// Frames per second the worker may redirect to the CP. Default 2000.
    redirect_pps: Option<u32>,
    /// Milliseconds between next-hop ARP requests while unresolved. Default 1000.
    arp_retry_ms: Option<u32>,
    /// ICMP errors (time exceeded, fragmentation needed) per second per worker. Default 1000.
    icmp_errors_pps: Option<u32>,
    /// ICMP errors back to back; 0 sends none. Default 50.
    icmp_errors_burst: Option<u32>,
    /// Microseconds the worker busy-polls after the last packet before sleeping. Default 500.
    busy_poll_us: Option<u32>,
    /// Longest sleep in poll(2) when idle, milliseconds. Default 5.
    poll_timeout_ms: Option<u32>,
    /// RX ring slots per port (rounded up to 32). Default 4096.
    rx_ring_slots: Option<u32>,
    /// TX ring slots per port (rounded up to 32). Default 1024.
    tx_ring_slots: Option<u32>,
    /// Frame buffers in each direction of the CP redirect queues. Default 1024.
    redirect_queue: Option<u32>,
    /// Milliseconds between counter publications to the metrics exporter. Default 100.
    stats_interval_ms: Option<u32>,
    /// Sessions each worker's table has room for from the start. Default 0: it grows.
    session_capacity: Option<u32>,
}

// ---------------------------------------------------------------------------------------------
// Typed configuration.

/// PFCP Node ID of this user plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeIdConfig {
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// A fully qualified domain name.
    Fqdn(String),
}

impl fmt::Display for NodeIdConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeIdConfig::Ipv4(a) => a.fmt(f),
            NodeIdConfig::Fqdn(s) => f.write_str(s),
        }
    }
}

/// PFCP agent settings (`[pfcp]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PfcpConfig {
    /// Listen address. Default 127.0.0.2:8805.
    pub listen: SocketAddrV4,
    /// Node ID. Default: the IPv4 of `listen`.
    pub node_id: NodeIdConfig,
    /// Seconds between heartbeats toward the CP. Default 10.
    pub heartbeat_interval_s: u32,
    /// Missed heartbeats before the CP is declared lost. Default 3.
    pub heartbeat_misses: u32,
    /// Milliseconds a deletion waits for the worker's final counters. Default 200.
    pub deletion_wait_ms: u32,
}

/// GTP-U redirect settings (`[gtpu]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GtpuConfig {
    /// Listen address of the UP's GTP-U socket. Default 127.0.0.2:2152.
    pub listen: SocketAddrV4,
    /// CP GTP-U address. Default 127.0.0.1:2152.
    pub cp_address: SocketAddrV4,
}

/// One access port (`[[access_port]]`); its index in the list is its port id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPortConfig {
    /// Kernel interface name (af_packet backend); empty with the dpdk backend.
    pub iface: String,
    /// Metric label. Default "acc<index>".
    pub name: String,
    /// DPDK device (dpdk backend): a vdev specification such as
    /// `net_af_packet0,iface=acc0` or a PCI address; None with the af_packet backend.
    pub device: Option<String>,
}

/// The core port (`[core_port]`); its port id follows the access ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorePortConfig {
    /// Kernel interface name (af_packet backend); empty with the dpdk backend.
    pub iface: String,
    /// Metric label. Default "core".
    pub name: String,
    /// DPDK device (dpdk backend), as for [`AccessPortConfig::device`].
    pub device: Option<String>,
    /// UP core address. Default 198.51.100.2.
    pub ipv4: Ipv4Addr,
    /// Prefix length of the core subnet. Default 24.
    pub prefix_len: u8,
    /// Next hop. Default 198.51.100.1.
    pub next_hop: Ipv4Addr,
    /// IPv6 forwarding: the core IPv6 address, its prefix length and the IPv6 next hop.
    /// Default none: IPv6 data is dropped.
    pub ipv6: Option<CoreIpv6Config>,
}

/// The core port's IPv6 (`core_port.ipv6`, `core_port.next_hop6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreIpv6Config {
    /// The user plane's address on the core link.
    pub addr: Ipv6Addr,
    /// Prefix length of the core subnet.
    pub prefix_len: u8,
    /// Every upstream IPv6 packet's next hop.
    pub next_hop: Ipv6Addr,
}

/// Largest `worker.session_capacity`: 16M sessions, about 3 GB of table per worker.
const MAX_SESSION_CAPACITY: u32 = 1 << 24;

/// Worker settings (`[worker]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Poll-mode worker threads, 1..=16; more than 1 only with the dpdk backend. Default 1.
    pub workers: u16,
    /// Frames per second redirected to the CP (token bucket). Default 2000.
    pub redirect_pps: u32,
    /// Next-hop ARP retry interval, milliseconds. Default 1000.
    pub arp_retry_ms: u32,
    /// ICMP errors per second per worker (RFC 1812 section 4.3.2.8). Default 1000.
    pub icmp_errors_pps: u32,
    /// ICMP errors back to back; 0 turns them off. Default 50.
    pub icmp_errors_burst: u32,
    /// Busy-poll time after the last packet before sleeping, microseconds. Default 500.
    pub busy_poll_us: u32,
    /// Longest poll(2) sleep when idle, milliseconds. Default 5.
    pub poll_timeout_ms: u32,
    /// RX ring slots per port. Default 4096.
    pub rx_ring_slots: u32,
    /// TX ring slots per port. Default 1024.
    pub tx_ring_slots: u32,
    /// Buffers per redirect queue direction. Default 1024.
    pub redirect_queue: u32,
    /// Counter publication interval, milliseconds. Default 100.
    pub stats_interval_ms: u32,
    /// Sessions each worker's session table has room for from the start, so that
    /// installing them never stalls the worker on a table growth; 0 (the default): the
    /// table grows as sessions arrive.
    pub session_capacity: u32,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            workers: 1,
            redirect_pps: 2000,
            arp_retry_ms: 1000,
            icmp_errors_pps: 1000,
            icmp_errors_burst: 50,
            busy_poll_us: 500,
            poll_timeout_ms: 5,
            rx_ring_slots: 4096,
            tx_ring_slots: 1024,
            redirect_queue: 1024,
            stats_interval_ms: 100,
            session_capacity: 0,
        }
    }
}

/// The complete, validated `vbng-up` configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the settings came from (for log lines): the file path, or "defaults and flags".
    pub origin: String,
    /// Virtual gateway MAC. Default 02:00:5e:00:01:01.
    pub gateway_mac: EthernetAddress,
    /// PFCP agent.
    pub pfcp: PfcpConfig,
    /// GTP-U redirect.
    pub gtpu: GtpuConfig,
    /// Prometheus endpoint. Default 127.0.0.2:9100.
    pub metrics_listen: SocketAddrV4,
    /// How the ports are driven (`[ports] backend`). Default af_packet.
    pub backend: PortBackend,
    /// DPDK settings (`[dpdk]`), used with the dpdk backend.
    pub dpdk: DpdkConfig,
    /// Access ports (port ids 0..n).
    pub access_ports: Vec<AccessPortConfig>,
    /// Core port (port id n).
    pub core_port: CorePortConfig,
    /// Worker tuning.
    pub worker: WorkerConfig,
    /// Per-subscriber QoS.
    pub qos: QosConfig,
    /// The ACL file, if any (reloaded on SIGHUP).
    pub acl_file: Option<PathBuf>,
    /// Static routes on the core side, in addition to the default route through the core
    /// next hop (unless one of them is a /0).
    pub routes: Vec<StaticRoute>,
    /// Static IPv6 routes, in addition to the default route through the IPv6 next hop.
    pub routes6: Vec<StaticRoute6>,
    /// NAT44 (`[nat]`), off without a pool.
    pub nat: Option<NatSettings>,
}

// ---------------------------------------------------------------------------------------------
// Errors.

/// Where a bad setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A key in the TOML file.
    File {
        /// The file.
        path: String,
        /// Dotted key path (`core_port.ipv4`), if known.
        key: Option<String>,
        /// 1-based line, if known and no key could be named.
        line: Option<usize>,
    },
    /// A command-line flag (`--core-ipv4`).
    Flag(&'static str),
    /// An embedded default (a bug if this ever fails) or a missing required setting.
    Default,
}

/// A configuration error, displayed as one line: origin, then what was expected and found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// Where the setting came from.
    pub origin: Origin,
    /// What was expected, what was found, how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::File {
                path,
                key: Some(key),
                ..
            } => write!(f, "{path}: key {key}: {}", self.message),
            Origin::File {
                path,
                key: None,
                line: Some(line),
            } => write!(f, "{path}: line {line}: {}", self.message),
            Origin::File { path, .. } => write!(f, "{path}: {}", self.message),
            Origin::Flag(flag) => write!(f, "flag {flag}: {}", self.message),
            Origin::Default => f.write_str(&self.message),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Resolution.

/// Resolves one setting: the flag if given, else the file value, else the default; then
/// parses it, attributing any error to where the value came from.
struct Resolver<'a> {
    path: Option<&'a str>,
}

impl Resolver<'_> {
    fn file_origin(&self, key: &str) -> Origin {
        Origin::File {
            path: self.path.unwrap_or("<config>").to_string(),
            key: Some(key.to_string()),
            line: None,
        }
    }

    fn get<T>(
        &self,
        flag: Option<(&'static str, Option<&str>)>,
        key: &str,
        file: Option<&str>,
        default: Option<&str>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let (value, origin) = if let Some((name, Some(v))) = flag {
            (v, Origin::Flag(name))
        } else if let Some(v) = file {
            (v, self.file_origin(key))
        } else if let Some(v) = default {
            (v, Origin::Default)
        } else {
            return Ok(None);
        };
        parse(value)
            .map(Some)
            .map_err(|message| ConfigError { origin, message })
    }

    fn num(
        &self,
        key: &str,
        v: Option<u32>,
        default: u32,
        min: u32,
        max: u32,
    ) -> Result<u32, ConfigError> {
        let v = v.unwrap_or(default);
        if (min..=max).contains(&v) {
            Ok(v)
        } else {
            Err(ConfigError {
                origin: self.file_origin(key),
                message: format!("expected an integer between {min} and {max}, found {v}"),
            })
        }
    }
}

impl Config {
    /// Loads the configuration the flags describe: reads `--config` if given, applies the
    /// flags over it and the embedded defaults under it, and validates the result.
    pub fn load(cli: &Cli) -> Result<Config, ConfigError> {
        match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                    origin: Origin::File {
                        path: path.display().to_string(),
                        key: None,
                        line: None,
                    },
                    message: format!("cannot read the file: {e}; expected a readable TOML file"),
                })?;
                Config::from_toml(&text, Some(path), cli)
            }
            None => Config::from_toml("", None, cli),
        }
    }

    /// Builds the configuration from TOML text (`path` only names it in errors) and flags.
    pub fn from_toml(text: &str, path: Option<&Path>, cli: &Cli) -> Result<Config, ConfigError> {
        let path_s = path.map(|p| p.display().to_string());
        let file: FileConfig = toml::from_str(text).map_err(|e| {
            let span = e.span();
            let key = span.as_ref().and_then(|s| key_at(text, s.start));
            let line = span.map(|s| line_of(text, s.start));
            ConfigError {
                origin: Origin::File {
                    path: path_s.clone().unwrap_or_else(|| "<config>".into()),
                    key,
                    line,
                },
                message: e.message().trim().replace('\n', " "),
            }
        })?;
        let r = Resolver {
            path: path_s.as_deref(),
        };

        let gateway_mac = r
            .get(
                Some(("--gateway-mac", cli.gateway_mac.as_deref())),
                "gateway_mac",
                file.gateway_mac.as_deref(),
                Some(DEFAULT_GATEWAY_MAC),
                parse_mac,
            )?
            .unwrap_or(EthernetAddress([0x02, 0, 0x5e, 0, 1, 1]));

        let sock = |flag: &'static str,
                    flag_v: Option<&String>,
                    key: &str,
                    file_v: &Option<String>,
                    def: &str| {
            r.get(
                Some((flag, flag_v.map(String::as_str))),
                key,
                file_v.as_deref(),
                Some(def),
                parse_socket_v4,
            )
            .map(|v| v.unwrap_or_else(|| SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)))
        };
        let pfcp_listen = sock(
            "--pfcp-listen",
            cli.pfcp_listen.as_ref(),
            "pfcp.listen",
            &file.pfcp.listen,
            DEFAULT_PFCP_LISTEN,
        )?;
        let gtpu_listen = sock(
            "--gtpu-listen",
            cli.gtpu_listen.as_ref(),
            "gtpu.listen",
            &file.gtpu.listen,
            DEFAULT_GTPU_LISTEN,
        )?;
        let cp_gtpu = sock(
            "--cp-gtpu",
            cli.cp_gtpu.as_ref(),
            "gtpu.cp_address",
            &file.gtpu.cp_address,
            DEFAULT_CP_GTPU,
        )?;
        let metrics_listen = sock(
            "--metrics-listen",
            cli.metrics_listen.as_ref(),
            "metrics.listen",
            &file.metrics.listen,
            DEFAULT_METRICS_LISTEN,
        )?;

        let node_id = match (&cli.node_id, &file.pfcp.node_id) {
            (Some(v), _) => node_id_for(Some(v), pfcp_listen).map_err(|message| ConfigError {
                origin: Origin::Flag("--node-id"),
                message,
            })?,
            (None, Some(v)) => {
                node_id_for(Some(v), pfcp_listen).map_err(|message| ConfigError {
                    origin: r.file_origin("pfcp.node_id"),
                    message,
                })?
            }
            (None, None) => node_id_for(None, pfcp_listen).map_err(|message| ConfigError {
                origin: Origin::Default,
                message,
            })?,
        };

        let pfcp = PfcpConfig {
            listen: pfcp_listen,
            node_id,
            heartbeat_interval_s: r.num(
                "pfcp.heartbeat_interval_s",
                file.pfcp.heartbeat_interval_s,
                10,
                1,
                3600,
            )?,
            heartbeat_misses: r.num(
                "pfcp.heartbeat_misses",
                file.pfcp.heartbeat_misses,
                3,
                1,
                100,
            )?,
            deletion_wait_ms: r.num(
                "pfcp.deletion_wait_ms",
                file.pfcp.deletion_wait_ms,
                200,
                1,
                10_000,
            )?,
        };

        let backend = file.ports.backend.unwrap_or_default();
        let dpdk_only_files = |flag: &'static str| ConfigError {
            origin: Origin::Flag(flag),
            message: "expected no interface flags with backend = \"dpdk\": name each port's \
                      device in the config file, e.g. device = \"net_af_packet0,iface=acc0\""
                .into(),
        };
        if backend == PortBackend::Dpdk {
            if !cli.access.is_empty() {
                return Err(dpdk_only_files("--access"));
            }
            if cli.core.is_some() {
                return Err(dpdk_only_files("--core"));
            }
        }

        // Access ports: flags replace the file's list.
        let mut access_ports = Vec::new();
        if !cli.access.is_empty() {
            for (i, iface) in cli.access.iter().enumerate() {
                let iface = parse_iface(iface).map_err(|message| ConfigError {
                    origin: Origin::Flag("--access"),
                    message,
                })?;
                access_ports.push(AccessPortConfig {
                    iface,
                    name: format!("acc{i}"),
                    device: None,
                });
            }
        } else {
            for (i, p) in file.access_port.iter().enumerate() {
                let (iface, device) = ports::resolve_port(
                    &r,
                    backend,
                    &format!("access_port[{i}]"),
                    i,
                    p.iface.as_deref(),
                    p.device.as_deref(),
                )?;
                let name = match &p.name {
                    Some(n) => label(n).map_err(|message| ConfigError {
                        origin: r.file_origin(&format!("access_port[{i}].name")),
                        message,
                    })?,
                    None => format!("acc{i}"),
                };
                access_ports.push(AccessPortConfig {
                    iface,
                    name,
                    device,
                });
            }
        }
        let missing_origin = |key: &str| match &path_s {
            Some(_) => r.file_origin(key),
            None => Origin::Default,
        };
        let fcore = file.core_port.unwrap_or_default();
        let (core_ip, prefix_len) = r
            .get(
                Some(("--core-ipv4", cli.core_ipv4.as_deref())),
                "core_port.ipv4",
                fcore.ipv4.as_deref(),
                Some(DEFAULT_CORE_IPV4),
                parse_ipv4_prefix,
            )?
            .unwrap_or((Ipv4Addr::new(198, 51, 100, 2), 24));
        let nh_flag = ("--next-hop", cli.next_hop.as_deref());
        let next_hop = r
            .get(
                Some(nh_flag),
                "core_port.next_hop",
                fcore.next_hop.as_deref(),
                Some(DEFAULT_NEXT_HOP),
                parse_ipv4,
            )?
            .unwrap_or(Ipv4Addr::new(198, 51, 100, 1));
        check_core_addressing(core_ip, prefix_len, next_hop).map_err(|message| ConfigError {
            origin: if cli.next_hop.is_some() {
                Origin::Flag("--next-hop")
            } else if fcore.next_hop.is_some() {
                r.file_origin("core_port.next_hop")
            } else if cli.core_ipv4.is_some() {
                Origin::Flag("--core-ipv4")
            } else {
                r.file_origin("core_port.ipv4")
            },
            message,
        })?;

        let routes = resolve_routes(&r, cli, &file.route, core_ip, prefix_len)?;
        let core_ipv6 = resolve_core_ipv6(&r, cli, &fcore)?;
        let routes6 = resolve_routes6(&r, cli, &file.route6, core_ipv6)?;

        let (core_iface, core_device) = match backend {
            PortBackend::AfPacket => {
                if fcore.device.is_some() {
                    // Reported as for an access port.
                    let id = access_ports.len();
                    ports::resolve_port(
                        &r,
                        backend,
                        "core_port",
                        id,
                        None,
                        fcore.device.as_deref(),
                    )?;
                }
                let iface = r
                    .get(
                        Some(("--core", cli.core.as_deref())),
                        "core_port.iface",
                        fcore.iface.as_deref(),
                        None,
                        parse_iface,
                    )?
                    .ok_or_else(|| ConfigError {
                        origin: missing_origin("core_port.iface"),
                        message: "no core port: expected [core_port] iface = \"...\" in the config or --core <iface>".into(),
                    })?;
                (iface, None)
            }
            PortBackend::Dpdk if fcore.iface.is_none() && fcore.device.is_none() => {
                return Err(ConfigError {
                    origin: missing_origin("core_port.device"),
                    message: "no core port: expected [core_port] device = \"...\" with backend = \"dpdk\", e.g. device = \"net_af_packet2,iface=core0\"".into(),
                });
            }
            PortBackend::Dpdk => ports::resolve_port(
                &r,
                backend,
                "core_port",
                access_ports.len(),
                fcore.iface.as_deref(),
                fcore.device.as_deref(),
            )?,
        };
        let core_name = match &fcore.name {
            Some(n) => label(n).map_err(|message| ConfigError {
                origin: r.file_origin("core_port.name"),
                message,
            })?,
            None => "core".to_string(),
        };
        if access_ports.is_empty() {
            let message = match backend {
                PortBackend::AfPacket => {
                    "no access port: expected at least one [[access_port]] iface = \"...\" in the config or --access <iface>"
                }
                PortBackend::Dpdk => {
                    "no access port: expected at least one [[access_port]] device = \"...\" in the config"
                }
            };
            return Err(ConfigError {
                origin: missing_origin("access_port"),
                message: message.into(),
            });
        }
        if access_ports.len() + 1 > MAX_PORTS {
            return Err(ConfigError {
                origin: missing_origin("access_port"),
                message: format!(
                    "expected at most {} access ports, found {}",
                    MAX_PORTS - 1,
                    access_ports.len()
                ),
            });
        }

        // Interfaces (af_packet), devices (dpdk) and labels must be distinct.
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for (iface, name) in access_ports
            .iter()
            .map(|p| (p.iface.as_str(), p.name.as_str()))
            .chain([(core_iface.as_str(), core_name.as_str())])
        {
            let same = |(i, n): &&(&str, &str)| (!iface.is_empty() && *i == iface) || *n == name;
            if let Some(dup) = seen.iter().find(same) {
                let what = if dup.0 == iface { iface } else { name };
                return Err(ConfigError {
                    origin: missing_origin("access_port"),
                    message: format!(
                        "expected each port to have its own interface and name, found {what:?} twice"
                    ),
                });
            }
            seen.push((iface, name));
        }
        let devices: Vec<(String, &str)> = access_ports
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some((format!("access_port[{i}].device"), p.device.as_deref()?)))
            .chain(
                core_device
                    .as_deref()
                    .map(|d| ("core_port.device".to_string(), d)),
            )
            .collect();
        ports::check_distinct_devices(&devices).map_err(|(key, message)| ConfigError {
            origin: r.file_origin(&key),
            message,
        })?;

        let w = &file.worker;
        let d = WorkerConfig::default();
        let worker = WorkerConfig {
            workers: ports::resolve_workers(&r, backend, cli.workers, w.workers)?,
            redirect_pps: r.num(
                "worker.redirect_pps",
                w.redirect_pps,
                d.redirect_pps,
                1,
                10_000_000,
            )?,
            arp_retry_ms: r.num(
                "worker.arp_retry_ms",
                w.arp_retry_ms,
                d.arp_retry_ms,
                10,
                60_000,
            )?,
            icmp_errors_pps: r.num(
                "worker.icmp_errors_pps",
                w.icmp_errors_pps,
                d.icmp_errors_pps,
                0,
                10_000_000,
            )?,
            icmp_errors_burst: r.num(
                "worker.icmp_errors_burst",
                w.icmp_errors_burst,
                d.icmp_errors_burst,
                0,
                1_000_000,
            )?,
            busy_poll_us: r.num(
                "worker.busy_poll_us",
                w.busy_poll_us,
                d.busy_poll_us,
                0,
                10_000_000,
            )?,
            poll_timeout_ms: r.num(
                "worker.poll_timeout_ms",
                w.poll_timeout_ms,
                d.poll_timeout_ms,
                1,
                1000,
            )?,
            rx_ring_slots: r.num(
                "worker.rx_ring_slots",
                w.rx_ring_slots,
                d.rx_ring_slots,
                32,
                1 << 20,
            )?,
            tx_ring_slots: r.num(
                "worker.tx_ring_slots",
                w.tx_ring_slots,
                d.tx_ring_slots,
                32,
                1 << 20,
            )?,
            redirect_queue: r.num(
                "worker.redirect_queue",
                w.redirect_queue,
                d.redirect_queue,
                8,
                1 << 20,
            )?,
            stats_interval_ms: r.num(
                "worker.stats_interval_ms",
                w.stats_interval_ms,
                d.stats_interval_ms,
                1,
                60_000,
            )?,
            session_capacity: r.num(
                "worker.session_capacity",
                cli.session_capacity.or(w.session_capacity),
                d.session_capacity,
                0,
                MAX_SESSION_CAPACITY,
            )?,
        };

        let dpdk = ports::resolve_dpdk(&r, &file.dpdk)?;
        if backend == PortBackend::Dpdk {
            ports::check_mbufs(&dpdk, access_ports.len() + 1, worker.workers).map_err(
                |message| ConfigError {
                    origin: r.file_origin("dpdk.mbufs"),
                    message,
                },
            )?;
        }
        let qos = qos::resolve(&r, &file.qos)?;
        let nat = nat::resolve(&r, cli, &file.nat, path.and_then(Path::parent))?;
        let acl_file = match (&cli.acl_file, &file.acl_file) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(p)) if p.is_empty() => {
                return Err(ConfigError {
                    origin: r.file_origin("acl_file"),
                    message: "expected the path of an ACL file, found an empty string".into(),
                });
            }
            (None, Some(p)) => {
                let p = PathBuf::from(p);
                Some(match path.and_then(Path::parent) {
                    Some(dir) if p.is_relative() => dir.join(p),
                    _ => p,
                })
            }
            (None, None) => None,
        };

        Ok(Config {
            origin: path_s.unwrap_or_else(|| "defaults and flags".into()),
            gateway_mac,
            pfcp,
            gtpu: GtpuConfig {
                listen: gtpu_listen,
                cp_address: cp_gtpu,
            },
            metrics_listen,
            backend,
            dpdk,
            access_ports,
            core_port: CorePortConfig {
                iface: core_iface,
                name: core_name,
                device: core_device,
                ipv4: core_ip,
                prefix_len,
                next_hop,
                ipv6: core_ipv6,
            },
            worker,
            qos,
            acl_file,
            routes,
            routes6,
            nat,
        })
    }

    /// Port id of the core port (it follows the access ports).
    pub fn core_port_id(&self) -> PortId {
        self.access_ports.len() as PortId
    }

    /// Port labels indexed by port id (access ports, then core), for metrics.
    pub fn port_names(&self) -> Vec<String> {
        self.access_ports
            .iter()
            .map(|p| p.name.clone())
            .chain([self.core_port.name.clone()])
            .collect()
    }

    /// The DPDK devices of the ports in port order (access ports, then core); empty with
    /// the af_packet backend.
    fn port_devices(&self) -> impl Iterator<Item = &str> {
        self.access_ports
            .iter()
            .filter_map(|p| p.device.as_deref())
            .chain(self.core_port.device.as_deref())
    }

    /// The `rte_eal_init` arguments: the program name, `dpdk.eal_args`, then each port's
    /// device in port order, `--vdev=<device>` for a virtual device (`net_*`) and
    /// `-a <device>` for a PCI address. Pure.
    pub fn eal_args(&self) -> Vec<String> {
        let mut args = vec!["vbng-up".to_string()];
        args.extend(self.dpdk.eal_args.iter().cloned());
        for device in self.port_devices() {
            if device.starts_with("net_") {
                args.push(format!("--vdev={device}"));
            } else {
                args.push("-a".into());
                args.push(device.to_string());
            }
        }
        args
    }

    /// The ethdev name of each port in port order (what `rte_eth_dev_get_port_by_name`
    /// takes): the vdev specification's part before the first ',' (`net_af_packet0`), or
    /// the PCI address in lower case. Empty with the af_packet backend. Pure.
    pub fn port_device_names(&self) -> Vec<String> {
        self.port_devices().map(ports::device_name).collect()
    }

    /// The pipeline configuration these settings describe, given the core interface's MAC.
    /// Pure.
    pub fn pipeline_config(&self, core_mac: EthernetAddress) -> PipelineConfig {
        PipelineConfig {
            access_ports: (0..self.access_ports.len()).map(|i| i as PortId).collect(),
            core_port: self.core_port_id(),
            core_mac,
            core_ipv4: self.core_port.ipv4,
            core_prefix_len: self.core_port.prefix_len,
            next_hop: self.core_port.next_hop,
            gateway_mac: self.gateway_mac,
            redirect_pps: self.worker.redirect_pps,
            arp_retry_ns: u64::from(self.worker.arp_retry_ms) * 1_000_000,
        }
    }
}

/// The static routes: the `--route` flags if any (PREFIX/LEN,NEXT_HOP), else the file's
/// `[[route]]` list; each next hop must be a host on the core subnet.
/// `core_port.ipv6` and `core_port.next_hop6` (or `--core-ipv6`, `--next-hop6`): both or
/// neither; a unicast address that is not link-local, and a next hop on its subnet or
/// link-local.
fn resolve_core_ipv6(
    r: &Resolver,
    cli: &Cli,
    fcore: &FileCorePort,
) -> Result<Option<CoreIpv6Config>, ConfigError> {
    let addr = r.get(
        Some(("--core-ipv6", cli.core_ipv6.as_deref())),
        "core_port.ipv6",
        fcore.ipv6.as_deref(),
        None,
        parse_ipv6_prefix,
    )?;
    let next_hop = r.get(
        Some(("--next-hop6", cli.next_hop6.as_deref())),
        "core_port.next_hop6",
        fcore.next_hop6.as_deref(),
        None,
        parse_ipv6,
    )?;
    let (addr_origin, nh_origin) = (
        if cli.core_ipv6.is_some() {
            Origin::Flag("--core-ipv6")
        } else {
            r.file_origin("core_port.ipv6")
        },
        if cli.next_hop6.is_some() {
            Origin::Flag("--next-hop6")
        } else {
            r.file_origin("core_port.next_hop6")
        },
    );
    match (addr, next_hop) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError {
            origin: addr_origin,
            message: "expected core_port.next_hop6 (--next-hop6) with it: IPv6 forwarding needs a next hop"
                .into(),
        }),
        (None, Some(_)) => Err(ConfigError {
            origin: nh_origin,
            message: "expected core_port.ipv6 (--core-ipv6) with it: the next hop needs a core IPv6 address"
                .into(),
        }),
        (Some((addr, prefix_len)), Some(next_hop)) => {
            check_core_ipv6(addr, prefix_len, next_hop).map_err(|message| ConfigError {
                origin: nh_origin,
                message,
            })?;
            Ok(Some(CoreIpv6Config {
                addr,
                prefix_len,
                next_hop,
            }))
        }
    }
}

fn resolve_routes(
    r: &Resolver<'_>,
    cli: &Cli,
    file: &[FileRoute],
    core_ip: Ipv4Addr,
    prefix_len: u8,
) -> Result<Vec<StaticRoute>, ConfigError> {
    let parse = |prefix: &str, next_hop: &str| -> Result<StaticRoute, String> {
        let (prefix, len) = parse_ipv4_prefix(prefix)?;
        let next_hop = parse_ipv4(next_hop)?;
        check_core_addressing(core_ip, prefix_len, next_hop)?;
        Ok(StaticRoute {
            prefix,
            len,
            next_hop,
        })
    };
    let names = RouteList {
        flag: "--route",
        table: "route",
        example: "192.0.2.0/24,198.51.100.3",
    };
    route_list(r, &cli.route, file, &names, parse)
}

/// `[[route6]]` or `--route6`: prefixes of any length, next hops as `core_port.next_hop6`'s;
/// only with the core's IPv6.
fn resolve_routes6(
    r: &Resolver<'_>,
    cli: &Cli,
    file: &[FileRoute],
    core: Option<CoreIpv6Config>,
) -> Result<Vec<StaticRoute6>, ConfigError> {
    let names = RouteList {
        flag: "--route6",
        table: "route6",
        example: "2001:db8:e000::/40,2001:db8:ffff::3",
    };
    let Some(core) = core else {
        if cli.route6.is_empty() && file.is_empty() {
            return Ok(Vec::new());
        }
        return Err(ConfigError {
            origin: if cli.route6.is_empty() {
                r.file_origin("route6")
            } else {
                Origin::Flag("--route6")
            },
            message: "expected core_port.ipv6 and next_hop6 (--core-ipv6, --next-hop6) with \
                      IPv6 routes"
                .into(),
        });
    };
    let parse = |prefix: &str, next_hop: &str| -> Result<StaticRoute6, String> {
        let (prefix, len) = parse_ipv6_route_prefix(prefix)?;
        let next_hop = parse_ipv6(next_hop)?;
        check_core_ipv6(core.addr, core.prefix_len, next_hop)?;
        Ok(StaticRoute6 {
            prefix,
            len,
            next_hop,
        })
    };
    route_list(r, &cli.route6, file, &names, parse)
}

/// How a route list is named in its errors.
struct RouteList {
    flag: &'static str,
    table: &'static str,
    example: &'static str,
}

/// A route list from its flag values (which replace the file's) or its file table, each
/// entry given to `parse` as (prefix, next hop).
fn route_list<T>(
    r: &Resolver<'_>,
    flag_values: &[String],
    file: &[FileRoute],
    names: &RouteList,
    parse: impl Fn(&str, &str) -> Result<T, String>,
) -> Result<Vec<T>, ConfigError> {
    if !flag_values.is_empty() {
        return flag_values
            .iter()
            .map(|v| {
                let (prefix, next_hop) = v.split_once(',').ok_or_else(|| {
                    format!(
                        "expected PREFIX/LEN,NEXT_HOP (e.g. {}), found {v:?}",
                        names.example
                    )
                })?;
                parse(prefix.trim(), next_hop.trim())
            })
            .collect::<Result<_, String>>()
            .map_err(|message| ConfigError {
                origin: Origin::Flag(names.flag),
                message,
            });
    }
    let table = names.table;
    file.iter()
        .enumerate()
        .map(|(i, f)| {
            let (Some(prefix), Some(next_hop)) = (&f.prefix, &f.next_hop) else {
                let missing = if f.prefix.is_none() {
                    "prefix"
                } else {
                    "next_hop"
                };
                return Err(ConfigError {
                    origin: r.file_origin(&format!("{table}[{i}].{missing}")),
                    message: format!(
                        "expected a value: every [[{table}]] needs prefix and next_hop"
                    ),
                });
            };
            parse(prefix, next_hop).map_err(|message| ConfigError {
                origin: r.file_origin(&format!("{table}[{i}]")),
                message,
            })
        })
        .collect()
}

/// A metric label value: 1-32 characters of `[A-Za-z0-9_-]`. Pure.
fn label(s: &str) -> Result<String, String> {
    if !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(s.to_string())
    } else {
        Err(format!(
            "expected a name of 1-32 letters, digits, '_' or '-' like acc0, found {s:?}"
        ))
    }
}

pub mod acl;
mod nat;
pub mod parse;
pub mod ports;
mod qos;
pub use nat::NatSettings;
use parse::line_of;
pub use parse::{
    check_core_addressing, check_core_ipv6, in_subnet, key_at, node_id_for, parse_iface,
    parse_ipv4, parse_ipv4_prefix, parse_ipv6, parse_ipv6_prefix, parse_ipv6_route_prefix,
    parse_mac, parse_socket_v4,
};
pub use ports::{DpdkConfig, PortBackend};
pub use qos::QosConfig;

#[cfg(test)]
mod tests;
