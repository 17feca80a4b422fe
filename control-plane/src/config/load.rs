//! Reading and validating the `vbng-cp` TOML file.
//!
//! TOML and serde errors carry a byte span; we turn the span back into the
//! dotted key it belongs to, so that the user reads one line naming the
//! file, the key and the fix.

use std::collections::HashSet;
use std::path::Path;

use vbng_access::dhcpv4::DhcpServer;
use vbng_access::dhcpv6::{Dhcpv6Server, Ipv6PoolKeys};

use super::{Config, ConfigError};

/// Read, parse and validate the config file at `path`.
pub fn load_config(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            &file,
            "<file>",
            format!("expected a readable TOML file, found: {e}"),
            "pass an existing file with --config, or omit --config for the built-in defaults",
        )
    })?;
    let mut cfg = parse_config(&file, &text)?;
    // Relative subscriber and lease paths are relative to the config file.
    if let Some(sub) = cfg.subscribers.as_mut()
        && sub.is_relative()
        && let Some(dir) = path.parent()
    {
        *sub = dir.join(&*sub);
    }
    if let Some(leases) = cfg.dhcp.lease_file.as_mut()
        && leases.is_relative()
        && let Some(dir) = path.parent()
    {
        *leases = dir.join(&*leases);
    }
    if let Some(spool) = cfg.radius.accounting_spool.as_mut()
        && spool.is_relative()
        && let Some(dir) = path.parent()
    {
        *spool = dir.join(&*spool);
    }
    Ok(cfg)
}

/// Parse and validate config `text`; `file` names it in errors.
pub fn parse_config(file: &str, text: &str) -> Result<Config, ConfigError> {
    use serde::Deserialize;
    let mut doc = toml::de::DeTable::parse(text).map_err(|e| toml_error(file, text, &e))?;
    let ipv6_keys = split_ipv6_pool_keys(&mut doc).map_err(|e| toml_error(file, text, &e))?;
    let mut cfg = Config::deserialize(toml::de::Deserializer::from(doc))
        .map_err(|e| toml_error(file, text, &e))?;
    cfg.ipv6_pools = ipv6_keys
        .into_iter()
        .filter_map(|(i, keys)| {
            let pool = cfg.pools.get(i)?;
            keys.into_config(&pool.name, pool.lease_time_s)
        })
        .collect();
    validate(file, &cfg)?;
    Ok(cfg)
}

/// Take the IPv6 keys ([`Ipv6PoolKeys::NAMES`]) out of every `[[pools]]`
/// table of `doc` and read them, keeping their positions in the text for
/// errors; returns them with the index of their pool.
fn split_ipv6_pool_keys(
    doc: &mut toml::Spanned<toml::de::DeTable<'_>>,
) -> Result<Vec<(usize, Ipv6PoolKeys)>, toml::de::Error> {
    use serde::Deserialize;
    use toml::de::{DeTable, DeValue};
    let mut found = Vec::new();
    let Some(pools) = doc.get_mut().get_mut("pools") else {
        return Ok(found);
    };
    let DeValue::Array(pools) = pools.get_mut() else {
        return Ok(found);
    };
    for (i, pool) in pools.iter_mut().enumerate() {
        let span = pool.span();
        let DeValue::Table(table) = pool.get_mut() else {
            continue;
        };
        let mut keys = DeTable::new();
        for name in Ipv6PoolKeys::NAMES {
            if let Some((k, v)) = table.remove_entry(name) {
                keys.insert(k, v);
            }
        }
        if !keys.is_empty() {
            let de = toml::de::Deserializer::from(toml::Spanned::new(span, keys));
            found.push((i, Ipv6PoolKeys::deserialize(de)?));
        }
    }
    Ok(found)
}

/// Semantic checks serde cannot express.
pub fn validate(file: &str, cfg: &Config) -> Result<(), ConfigError> {
    validate_radius(file, cfg)?;
    if cfg.pools.is_empty() {
        return Err(ConfigError::new(
            file,
            "pools",
            "expected at least one [[pools]] entry, found none",
            "add a [[pools]] table or remove the empty `pools` key",
        ));
    }
    if let Err(e) = DhcpServer::new(cfg.pools.clone()) {
        return Err(ConfigError::new(
            file,
            "pools",
            e.to_string(),
            "correct the pool addresses (see configs/vbng-cp.toml)",
        ));
    }
    if let Err(e) = Dhcpv6Server::new(Vec::new(), cfg.ipv6_pools.clone(), false) {
        return Err(ConfigError::new(
            file,
            "pools",
            e.to_string(),
            "correct ipv6_prefix, pd_prefix and pd_length (see configs/vbng-cp.toml)",
        ));
    }
    if cfg.user_planes.is_empty() {
        return Err(ConfigError::new(
            file,
            "user_planes",
            "expected at least one [[user_planes]] entry, found none",
            "add a [[user_planes]] table with name and pfcp",
        ));
    }
    let mut names = HashSet::new();
    let mut addrs = HashSet::new();
    for (i, up) in cfg.user_planes.iter().enumerate() {
        if up.name.is_empty() || !names.insert(up.name.as_str()) {
            return Err(ConfigError::new(
                file,
                format!("user_planes[{i}].name"),
                format!("expected a unique non-empty name, found {:?}", up.name),
                "give every user plane its own name",
            ));
        }
        if !addrs.insert(up.pfcp) {
            return Err(ConfigError::new(
                file,
                format!("user_planes[{i}].pfcp"),
                format!("expected a unique address, found {} twice", up.pfcp),
                "give every user plane its own PFCP address",
            ));
        }
    }
    if cfg.pfcp.heartbeat_interval_s == 0 {
        return Err(ConfigError::new(
            file,
            "pfcp.heartbeat_interval_s",
            "expected at least 1, found 0",
            "set a heartbeat interval in seconds, default 5",
        ));
    }
    if cfg.pfcp.heartbeat_misses == 0 {
        return Err(ConfigError::new(
            file,
            "pfcp.heartbeat_misses",
            "expected at least 1, found 0",
            "set how many missed heartbeats mean down, default 3",
        ));
    }
    if cfg.pfcp.t1_ms == 0 {
        return Err(ConfigError::new(
            file,
            "pfcp.t1_ms",
            "expected at least 1, found 0",
            "set the retransmission timer in milliseconds, default 1000",
        ));
    }
    if cfg.dhcp.per_mac_pps == 0 || cfg.dhcp.per_mac_burst == 0 {
        return Err(ConfigError::new(
            file,
            "dhcp.per_mac_pps",
            "expected per_mac_pps and per_mac_burst of at least 1, found 0",
            "set a positive rate and burst (defaults 10 and 20)",
        ));
    }
    Ok(())
}

/// Turn a TOML/serde error into a one-line [`ConfigError`].
pub(crate) fn toml_error(file: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message().replace('\n', " ");
    let message = message.trim().to_string();
    let key = match e.span() {
        Some(span) => key_at(text, span.start),
        None => "<file>".to_string(),
    };
    let fix = if message.starts_with("unknown field") {
        "remove the key or correct its spelling (every key is documented in configs/)"
    } else if message.starts_with("missing field") {
        "add the missing key (see the example in configs/)"
    } else {
        "correct the value (see the documented defaults in configs/)"
    };
    ConfigError::new(file, key, message, fix)
}

/// The dotted key of the TOML line containing byte `offset`: the closest
/// `[table]` / `[[array]]` header above it, plus the key on that line.
pub(crate) fn key_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let line = text[line_start..line_end].trim();
    let mut table = String::new();
    let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for l in text[..line_start].lines() {
        let l = l.trim();
        if let Some(name) = l.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let name = name.trim().to_string();
            let n = counts.entry(name.clone()).or_insert(0);
            table = format!("{name}[{n}]");
            *n += 1;
        } else if let Some(name) = l.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = name.trim().to_string();
        }
    }
    // The line itself may be a table header (error about the whole table).
    if line.starts_with('[') {
        let name = line.trim_start_matches('[').split(']').next().unwrap_or("");
        return name.trim().to_string();
    }
    let key = line
        .split('=')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"');
    match (table.is_empty(), key.is_empty()) {
        (true, true) => "<file>".to_string(),
        (true, false) => key.to_string(),
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

/// `[radius]` must be complete when `[aaa] backend = "radius"`.
fn validate_radius(file: &str, cfg: &Config) -> Result<(), ConfigError> {
    use super::AaaBackend;
    let r = &cfg.radius;
    for (i, s) in r.auth_servers.iter().enumerate() {
        if s.secret.is_empty() {
            return Err(ConfigError::new(
                file,
                format!("radius.auth_servers[{i}].secret"),
                "expected a shared secret, found an empty string",
                "set the secret configured for this NAS on the RADIUS server",
            ));
        }
    }
    for (i, s) in r.acct_servers.iter().enumerate() {
        if s.secret.is_empty() {
            return Err(ConfigError::new(
                file,
                format!("radius.acct_servers[{i}].secret"),
                "expected a shared secret, found an empty string",
                "set the secret configured for this NAS on the RADIUS server",
            ));
        }
    }
    for (i, c) in r.coa.clients.iter().enumerate() {
        if c.secret.is_empty() {
            return Err(ConfigError::new(
                file,
                format!("radius.coa.clients[{i}].secret"),
                "expected a shared secret, found an empty string",
                "set the secret the CoA client signs its requests with",
            ));
        }
    }
    if r.coa.listen.is_some() && r.coa.clients.is_empty() {
        return Err(ConfigError::new(
            file,
            "radius.coa.clients",
            "expected at least one client when radius.coa.listen is set, found none",
            "add a [[radius.coa.clients]] table with address and secret, or remove listen",
        ));
    }
    if r.sockets_per_server == 0 || r.timeout_ms == 0 || r.max_pending == 0 {
        return Err(ConfigError::new(
            file,
            "radius",
            "expected sockets_per_server, timeout_ms and max_pending of at least 1, found 0",
            "remove the key for its default",
        ));
    }
    let p = &cfg.pppoe;
    if !(576..=1500).contains(&p.mtu) || p.echo_interval_s == 0 || p.echo_failures == 0 {
        return Err(ConfigError::new(
            file,
            "pppoe",
            format!(
                "expected mtu in 576..=1500 and echo_interval_s, echo_failures of at least 1, found {}, {}, {}",
                p.mtu, p.echo_interval_s, p.echo_failures
            ),
            "remove the keys for their defaults (1492, 10, 3)",
        ));
    }
    if cfg.aaa.backend != AaaBackend::Radius {
        return Ok(());
    }
    if r.auth_servers.is_empty() {
        return Err(ConfigError::new(
            file,
            "radius.auth_servers",
            "expected at least one server with aaa.backend = \"radius\", found none",
            "add a [[radius.auth_servers]] table with address and secret",
        ));
    }
    if r.accounting_spool.is_none() {
        return Err(ConfigError::new(
            file,
            "radius.accounting_spool",
            "expected a file path with aaa.backend = \"radius\", found none",
            "set accounting_spool to a file on persistent storage (records wait there during outages)",
        ));
    }
    if !cfg.pools.iter().any(|p| p.name == r.default_pool) {
        return Err(ConfigError::new(
            file,
            "radius.default_pool",
            format!(
                "expected the name of a [[pools]] entry, found {:?}",
                r.default_pool
            ),
            "name a configured pool",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr};

    #[test]
    fn empty_file_gives_contract_defaults() {
        let cfg = parse_config("t.toml", "").unwrap();
        assert_eq!(
            cfg.pfcp.listen,
            "127.0.0.1:8805".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            cfg.gtpu.listen,
            "127.0.0.1:2152".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            cfg.api.listen,
            "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(cfg.gateway_mac.to_string(), "02:00:5e:00:01:01");
        assert_eq!(cfg.pools.len(), 1);
        assert_eq!(cfg.pools[0].gateway, Ipv4Addr::new(100, 64, 0, 1));
        assert_eq!(cfg.pools[0].lease_time_s, 600);
        assert_eq!(cfg.user_planes[0].name, "up0");
        assert_eq!(
            cfg.user_planes[0].pfcp,
            "127.0.0.2:8805".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            cfg.user_planes[0].gtpu_addr(),
            "127.0.0.2:2152".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(cfg.pfcp.heartbeat_interval_s, 5);
        assert_eq!(cfg.pfcp.heartbeat_misses, 3);
        assert_eq!(cfg.pfcp.node_ipv4(), Ipv4Addr::LOCALHOST);
    }

    #[test]
    fn example_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/vbng-cp.toml");
        let cfg = load_config(&path).unwrap();
        assert_eq!(cfg.user_planes[0].name, "up0");
        assert_eq!(cfg.pools[0].name, "default");
        let sub = cfg.subscribers.expect("example names a subscriber file");
        assert!(sub.ends_with("subscribers.toml"));
        assert!(sub.exists(), "{} exists", sub.display());
    }

    #[test]
    fn radius_backend_needs_servers_and_a_spool() {
        let e = parse_config("c.toml", "[aaa]\nbackend = \"radius\"\n").unwrap_err();
        assert_eq!(e.key, "radius.auth_servers", "{e}");
        let servers = "[aaa]\nbackend = \"radius\"\n[[radius.auth_servers]]\naddress = \"127.0.0.1:1812\"\nsecret = \"s\"\n";
        let e = parse_config("c.toml", servers).unwrap_err();
        assert_eq!(e.key, "radius.accounting_spool", "{e}");
        let ok = "[aaa]\nbackend = \"radius\"\n[radius]\naccounting_spool = \"/tmp/x\"\n\
                  [[radius.auth_servers]]\naddress = \"127.0.0.1:1812\"\nsecret = \"s\"\n";
        let cfg = parse_config("c.toml", ok).unwrap();
        assert_eq!(
            cfg.radius.accounting_servers()[0].address,
            "127.0.0.1:1813".parse::<SocketAddr>().unwrap()
        );
        let e = parse_config("c.toml", "[radius.coa]\nlisten = \"127.0.0.1:3799\"\n").unwrap_err();
        assert_eq!(e.key, "radius.coa.clients", "{e}");
        let e = parse_config("c.toml", "[aaa]\nbackend = \"diameter\"\n").unwrap_err();
        assert!(e.to_string().contains("aaa.backend"), "{e}");
    }

    #[test]
    fn unknown_key_names_table_and_key() {
        let e =
            parse_config("x.toml", "[pfcp]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n").unwrap_err();
        assert_eq!(e.key, "pfcp.lisen");
        let line = e.to_string();
        assert!(
            line.starts_with("x.toml: key `pfcp.lisen`: unknown field"),
            "{line}"
        );
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("fix:"), "{line}");
    }

    #[test]
    fn bad_value_in_array_of_tables() {
        let text = "[[user_planes]]\nname = \"a\"\npfcp = \"127.0.0.2:8805\"\n\
                    [[user_planes]]\nname = \"b\"\npfcp = \"nope\"\n";
        let e = parse_config("x.toml", text).unwrap_err();
        assert_eq!(e.key, "user_planes[1].pfcp");
    }

    #[test]
    fn bad_mac_names_key() {
        let e = parse_config("x.toml", "gateway_mac = \"zz\"\n").unwrap_err();
        assert_eq!(e.key, "gateway_mac");
    }

    #[test]
    fn semantic_errors_name_key() {
        let text = "[[user_planes]]\nname = \"a\"\npfcp = \"127.0.0.2:8805\"\n\
                    [[user_planes]]\nname = \"a\"\npfcp = \"127.0.0.3:8805\"\n";
        let e = parse_config("x.toml", text).unwrap_err();
        assert_eq!(e.key, "user_planes[1].name");
        let text = "[[pools]]\nname = \"p\"\nnetwork = \"10.0.0.0\"\nprefix_len = 24\n\
                    gateway = \"10.0.1.1\"\nrange_start = \"10.0.0.10\"\nrange_end = \"10.0.0.20\"\n";
        let e = parse_config("x.toml", text).unwrap_err();
        assert_eq!(e.key, "pools");
        assert!(e.problem.contains("gateway"), "{}", e.problem);
        let e = parse_config("x.toml", "[pfcp]\nheartbeat_interval_s = 0\n").unwrap_err();
        assert_eq!(e.key, "pfcp.heartbeat_interval_s");
    }

    #[test]
    fn ipv6_pool_keys_are_read_and_checked() {
        let base = "[[pools]]\nname = \"p\"\nnetwork = \"10.0.0.0\"\nprefix_len = 24\n\
                    gateway = \"10.0.0.1\"\nrange_start = \"10.0.0.10\"\nrange_end = \"10.0.0.20\"\n";
        let ok = format!(
            "{base}ipv6_prefix = \"2001:db8:100::/56\"\npd_prefix = \"2001:db8:200::/48\"\n\
             pd_length = 60\ndns6 = [\"2001:db8::53\"]\nipv6_slaac = true\n"
        );
        let cfg = parse_config("t.toml", &ok).unwrap();
        assert_eq!(cfg.ipv6_pools.len(), 1);
        let v6 = &cfg.ipv6_pools[0];
        assert_eq!(v6.name, "p");
        assert_eq!(v6.pd_length, 60);
        assert!(v6.slaac && v6.per_session_prefix());
        assert!(parse_config("t.toml", base).unwrap().ipv6_pools.is_empty());
        // A bad prefix names its key and line.
        let e =
            parse_config("t.toml", &format!("{base}pd_prefix = \"2001:db8::1/48\"\n")).unwrap_err();
        assert_eq!(e.key, "pools[0].pd_prefix", "{e}");
        assert!(e.to_string().contains("host bits"), "{e}");
        // A pd_length that does not fit is a semantic error on `pools`.
        let e = parse_config(
            "t.toml",
            &format!("{base}pd_prefix = \"2001:db8::/48\"\npd_length = 40\n"),
        )
        .unwrap_err();
        assert_eq!(e.key, "pools", "{e}");
        assert!(e.to_string().contains("pd_length"), "{e}");
        // Other unknown keys are still refused.
        let e =
            parse_config("t.toml", &format!("{base}ipv6_prefx = \"2001:db8::/48\"\n")).unwrap_err();
        assert_eq!(e.key, "pools[0].ipv6_prefx", "{e}");
    }

    #[test]
    fn key_at_handles_edges() {
        assert_eq!(key_at("a = 1", 100), "a");
        assert_eq!(key_at("", 0), "<file>");
        assert_eq!(key_at("[x]\n", 1), "x");
    }
}
