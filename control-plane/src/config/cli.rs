//! `vbng-cp` command-line flags. Flags override the config file, which
//! overrides the built-in defaults.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::Parser;

use super::{Config, ConfigError, UserPlaneConfig, load_config};

/// vbng-cp: the vbng control plane (PFCP to user planes, DHCPv4 over the
/// GTP-U redirect, local subscriber file, REST API and metrics).
#[derive(Debug, Clone, Parser)]
#[command(name = "vbng-cp", version)]
pub struct Cli {
    /// TOML config file. Default: none (built-in lab defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Local subscriber file (TOML); overrides `subscribers` of the config.
    /// Default: none (allow every client into pool `default`).
    #[arg(long, value_name = "FILE")]
    pub subscribers: Option<PathBuf>,
    /// Lease journal (JSON lines: leases and established PPPoE sessions);
    /// overrides `dhcp.lease_file` of the config. Default: none (in memory
    /// only, lost on restart).
    #[arg(long, value_name = "PATH")]
    pub lease_file: Option<PathBuf>,
    /// REST API and /metrics listen address. Default: 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR")]
    pub listen_api: Option<SocketAddr>,
    /// Local PFCP address. Default: 127.0.0.1:8805.
    #[arg(long, value_name = "ADDR")]
    pub listen_pfcp: Option<SocketAddr>,
    /// Local GTP-U redirect address. Default: 127.0.0.1:2152.
    #[arg(long, value_name = "ADDR")]
    pub listen_gtpu: Option<SocketAddr>,
    /// PFCP node ID (IPv4). Default: the IP of the PFCP listen address.
    #[arg(long, value_name = "IPV4")]
    pub node_id: Option<Ipv4Addr>,
    /// Virtual gateway MAC. Default: 02:00:5e:00:01:01.
    #[arg(long, value_name = "MAC")]
    pub gateway_mac: Option<String>,
    /// User plane as NAME=PFCP_ADDR (repeatable); replaces the configured
    /// list. Default: up0=127.0.0.2:8805.
    #[arg(long = "user-plane", value_name = "NAME=ADDR")]
    pub user_planes: Vec<String>,
    /// Log filter (tracing EnvFilter syntax). Default: info, or RUST_LOG.
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
}

impl Cli {
    /// The effective configuration: file (or defaults) with flags applied.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let mut cfg = match &self.config {
            Some(path) => load_config(path)?,
            None => Config::default(),
        };
        if let Some(s) = &self.subscribers {
            cfg.subscribers = Some(s.clone());
        }
        if let Some(p) = &self.lease_file {
            cfg.dhcp.lease_file = Some(p.clone());
        }
        if let Some(a) = self.listen_api {
            cfg.api.listen = a;
        }
        if let Some(a) = self.listen_pfcp {
            cfg.pfcp.listen = a;
        }
        if let Some(a) = self.listen_gtpu {
            cfg.gtpu.listen = a;
        }
        if let Some(ip) = self.node_id {
            cfg.pfcp.node_id = Some(ip);
        }
        if let Some(mac) = &self.gateway_mac {
            cfg.gateway_mac = crate::parse_mac(mac).map_err(|problem| {
                ConfigError::new(
                    "<flags>",
                    "--gateway-mac",
                    problem,
                    "write the MAC as aa:bb:cc:dd:ee:ff",
                )
            })?;
        }
        if !self.user_planes.is_empty() {
            cfg.user_planes = self
                .user_planes
                .iter()
                .map(|s| parse_user_plane(s))
                .collect::<Result<_, _>>()?;
        }
        let origin = self
            .config
            .as_ref()
            .map_or_else(|| "<flags>".to_string(), |p| p.display().to_string());
        super::load::validate(&origin, &cfg)?;
        Ok(cfg)
    }
}

fn parse_user_plane(s: &str) -> Result<UserPlaneConfig, ConfigError> {
    let bad = |problem: String| {
        ConfigError::new(
            "<flags>",
            "--user-plane",
            problem,
            "write it as NAME=IP:PORT, e.g. up0=127.0.0.2:8805",
        )
    };
    let (name, addr) = s
        .split_once('=')
        .ok_or_else(|| bad(format!("expected NAME=ADDR, found {s:?}")))?;
    let pfcp = addr
        .parse::<SocketAddr>()
        .map_err(|_| bad(format!("expected a socket address, found {addr:?}")))?;
    Ok(UserPlaneConfig {
        name: name.to_string(),
        pfcp,
        gtpu: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_defaults() {
        let cli = Cli::try_parse_from([
            "vbng-cp",
            "--listen-api",
            "127.0.0.1:9999",
            "--user-plane",
            "a=127.0.0.5:8805",
            "--user-plane",
            "b=127.0.0.6:8805",
            "--gateway-mac",
            "02:00:00:00:00:09",
            "--lease-file",
            "/var/lib/vbng/leases.jsonl",
        ])
        .unwrap();
        let cfg = cli.resolve().unwrap();
        assert_eq!(cfg.api.listen.port(), 9999);
        assert_eq!(cfg.user_planes.len(), 2);
        assert_eq!(cfg.user_planes[1].name, "b");
        assert_eq!(cfg.gateway_mac.to_string(), "02:00:00:00:00:09");
        assert_eq!(
            cfg.dhcp.lease_file.as_deref(),
            Some(std::path::Path::new("/var/lib/vbng/leases.jsonl"))
        );
    }

    #[test]
    fn bad_flags_are_one_line() {
        let cli = Cli::try_parse_from(["vbng-cp", "--user-plane", "nope"]).unwrap();
        let e = cli.resolve().unwrap_err().to_string();
        assert!(e.starts_with("<flags>: key `--user-plane`"), "{e}");
        assert!(Cli::try_parse_from(["vbng-cp", "--listen-api", "x"]).is_err());
    }
}
