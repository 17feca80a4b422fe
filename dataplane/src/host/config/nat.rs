//! The `[nat]` section: NAT44 / CGNAT of subscriber addresses.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Cli, ConfigError, Origin, Resolver};
use crate::nat::{Ipv4Prefix, NatConfig};

/// Subscriber addresses translated when `nat.inside` is not given: RFC 6598's shared
/// address space, the usual CGNAT inside.
pub const DEFAULT_INSIDE: Ipv4Prefix = Ipv4Prefix::new(Ipv4Addr::new(100, 64, 0, 0), 10);

/// `[nat]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileNat {
    /// Outside address prefixes, routed to the user plane. NAT is on when given.
    pool: Option<Vec<String>>,
    /// Subscriber prefixes translated. Default ["100.64.0.0/10"].
    inside: Option<Vec<String>>,
    /// Ports per block. Default 512.
    block_size: Option<u32>,
    /// Blocks one subscriber may hold. Default 4.
    blocks_per_subscriber: Option<u32>,
    /// Mappings per worker. Default 262144.
    max_mappings: Option<u32>,
    /// Subscribers holding blocks per worker. Default 16384.
    max_subscribers: Option<u32>,
    /// Port-block log (JSON lines). Required with a pool.
    log_file: Option<String>,
    /// IPFIX collectors (ADDRESS:PORT) the port-block events are also exported to.
    ipfix_collectors: Option<Vec<String>>,
    /// IPFIX observation domain. Default 1.
    ipfix_domain_id: Option<u32>,
}

/// NAT44 settings (`[nat]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatSettings {
    /// The engine's settings (pool, ports, blocks, sizes), the same for every worker; each
    /// worker takes the pool addresses it owns.
    pub engine: NatConfig,
    /// Subscriber prefixes whose sessions are translated.
    pub inside: Vec<Ipv4Prefix>,
    /// Where every port-block allocation and release is appended as a JSON line.
    pub log_file: PathBuf,
    /// Collectors every port-block event is also exported to over IPFIX (RFC 8158).
    pub ipfix_collectors: Vec<SocketAddr>,
    /// The IPFIX observation domain of this user plane.
    pub ipfix_domain_id: u32,
}

/// Resolves `[nat]` and the `--nat-pool` / `--nat-log` / `--nat-ipfix` flags: `None`
/// without a pool.
pub(super) fn resolve(
    r: &Resolver<'_>,
    cli: &Cli,
    f: &FileNat,
    base_dir: Option<&Path>,
) -> Result<Option<NatSettings>, ConfigError> {
    let prefixes = |origin: Origin, list: &[String]| {
        parse_each::<Ipv4Prefix>(origin, list, "a prefix like 192.0.2.0/24")
    };
    let pool = if !cli.nat_pool.is_empty() {
        prefixes(Origin::Flag("--nat-pool"), &cli.nat_pool)?
    } else {
        match &f.pool {
            Some(list) => prefixes(r.file_origin("nat.pool"), list)?,
            None => return Ok(None),
        }
    };
    let inside = match &f.inside {
        Some(list) => prefixes(r.file_origin("nat.inside"), list)?,
        None => vec![DEFAULT_INSIDE],
    };
    let log_file = match (&cli.nat_log, &f.log_file) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => base_dir.map_or_else(|| PathBuf::from(p), |d| d.join(p)),
        (None, None) => {
            return Err(ConfigError {
                origin: r.file_origin("nat.log_file"),
                message: "expected a path: every port-block allocation and release of the NAT \
                          is logged (--nat-log FILE or nat.log_file)"
                    .into(),
            });
        }
    };
    let collectors = |origin: Origin, list: &[String]| {
        parse_each::<SocketAddr>(origin, list, "an IPFIX collector like 192.0.2.9:4739")
    };
    let ipfix_collectors = if !cli.nat_ipfix.is_empty() {
        collectors(Origin::Flag("--nat-ipfix"), &cli.nat_ipfix)?
    } else {
        match &f.ipfix_collectors {
            Some(list) => collectors(r.file_origin("nat.ipfix_collectors"), list)?,
            None => Vec::new(),
        }
    };
    let ipfix_domain_id = f.ipfix_domain_id.unwrap_or(1);
    let d = NatConfig::default();
    let u16_key = |key: &str, v: Option<u32>, default: u16, min: u32| {
        r.num(key, v, u32::from(default), min, u32::from(u16::MAX))
            .map(|v| v as u16)
    };
    let engine = NatConfig {
        pool,
        block_size: u16_key("nat.block_size", f.block_size, d.block_size, 1)?,
        blocks_per_subscriber: u16_key(
            "nat.blocks_per_subscriber",
            f.blocks_per_subscriber,
            d.blocks_per_subscriber,
            1,
        )?,
        max_mappings: r.num(
            "nat.max_mappings",
            f.max_mappings,
            d.max_mappings,
            1,
            1 << 26,
        )?,
        max_subscribers: r.num(
            "nat.max_subscribers",
            f.max_subscribers,
            d.max_subscribers,
            1,
            1 << 24,
        )?,
        ..d
    };
    engine.validate().map_err(|e| ConfigError {
        origin: if cli.nat_pool.is_empty() {
            r.file_origin("nat")
        } else {
            Origin::Flag("--nat-pool")
        },
        message: e.to_string(),
    })?;
    Ok(Some(NatSettings {
        engine,
        inside,
        log_file,
        ipfix_collectors,
        ipfix_domain_id,
    }))
}

/// Parses every string of `list`; the first that does not parse fails, naming `origin`,
/// what was `expected` and the string.
fn parse_each<T>(origin: Origin, list: &[String], expected: &str) -> Result<Vec<T>, ConfigError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    list.iter()
        .map(|s| {
            s.parse::<T>().map_err(|e| ConfigError {
                origin: origin.clone(),
                message: format!("expected {expected}, found {s:?}: {e}"),
            })
        })
        .collect()
}
