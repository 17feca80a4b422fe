//! Pure parsers of single settings, and the TOML key finder used to name keys in errors.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};

use super::NodeIdConfig;
use crate::wire::EthernetAddress;

/// Parses `a.b.c.d/len` (len 1..=30 so that there is room for a next hop). Pure.
pub fn parse_ipv4_prefix(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let err = || format!("expected an IPv4 address with prefix like 198.51.100.2/24, found {s:?}");
    let (addr, len) = s.split_once('/').ok_or_else(err)?;
    let addr: Ipv4Addr = addr.trim().parse().map_err(|_| err())?;
    let len: u8 = len.trim().parse().map_err(|_| err())?;
    if !(1..=30).contains(&len) {
        return Err(format!(
            "expected a prefix length between 1 and 30 like 198.51.100.2/24, found {s:?}"
        ));
    }
    Ok((addr, len))
}

/// Parses `addr/len`, an IPv6 unicast address (not link-local) with its subnet's prefix
/// length (1-128). Pure.
pub fn parse_ipv6_prefix(s: &str) -> Result<(Ipv6Addr, u8), String> {
    let err =
        || format!("expected an IPv6 address with prefix like 2001:db8:ffff::2/64, found {s:?}");
    let (addr, len) = s.split_once('/').ok_or_else(err)?;
    let addr: Ipv6Addr = addr.trim().parse().map_err(|_| err())?;
    let len: u8 = len.trim().parse().map_err(|_| err())?;
    if !(1..=128).contains(&len) {
        return Err(format!(
            "expected a prefix length between 1 and 128 like 2001:db8:ffff::2/64, found {s:?}"
        ));
    }
    if addr.is_unspecified()
        || addr.is_multicast()
        || addr.is_loopback()
        || addr.is_unicast_link_local()
    {
        return Err(format!(
            "expected a global or unique-local unicast address (the link-local one is derived from the MAC), found {s:?}"
        ));
    }
    Ok((addr, len))
}

/// Parses an IPv6 route's `prefix/len` (len 0-128). Pure.
pub fn parse_ipv6_route_prefix(s: &str) -> Result<(Ipv6Addr, u8), String> {
    let err = || format!("expected an IPv6 prefix like 2001:db8:e000::/40, found {s:?}");
    let (addr, len) = s.split_once('/').ok_or_else(err)?;
    let addr: Ipv6Addr = addr.trim().parse().map_err(|_| err())?;
    let len: u8 = len.trim().parse().map_err(|_| err())?;
    if len > 128 {
        return Err(err());
    }
    Ok((addr, len))
}

/// Parses a bare IPv6 address. Pure.
pub fn parse_ipv6(s: &str) -> Result<Ipv6Addr, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("expected an IPv6 address like 2001:db8:ffff::1, found {s:?}"))
}

/// Checks the core IPv6 next hop: a unicast address other than ours, on the core subnet
/// `addr/prefix_len` or link-local. Pure.
pub fn check_core_ipv6(addr: Ipv6Addr, prefix_len: u8, next_hop: Ipv6Addr) -> Result<(), String> {
    if next_hop.is_unspecified() || next_hop.is_multicast() || next_hop.is_loopback() {
        return Err(format!(
            "expected a unicast IPv6 next hop, found {next_hop}"
        ));
    }
    if next_hop == addr {
        return Err(format!(
            "expected a next hop other than the UP's own core address, found {next_hop}"
        ));
    }
    let mask = u128::MAX
        .checked_shl(128 - u32::from(prefix_len))
        .unwrap_or(0);
    let on_link = next_hop.to_bits() & mask == addr.to_bits() & mask;
    if !on_link && !next_hop.is_unicast_link_local() {
        return Err(format!(
            "expected a next hop inside the core subnet {addr}/{prefix_len} or link-local, found {next_hop}"
        ));
    }
    Ok(())
}

/// Parses a bare IPv4 address. Pure.
pub fn parse_ipv4(s: &str) -> Result<Ipv4Addr, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("expected an IPv4 address like 198.51.100.1, found {s:?}"))
}

/// Parses `a.b.c.d:port`. Pure.
pub fn parse_socket_v4(s: &str) -> Result<SocketAddrV4, String> {
    s.trim().parse().map_err(|_| {
        format!("expected an IPv4 address and UDP/TCP port like 127.0.0.2:8805, found {s:?}")
    })
}

/// Parses a MAC address. Pure.
pub fn parse_mac(s: &str) -> Result<EthernetAddress, String> {
    let mac: EthernetAddress = s
        .trim()
        .parse()
        .map_err(|_| format!("expected a MAC address like 02:00:5e:00:01:01, found {s:?}"))?;
    if mac.is_multicast() {
        return Err(format!(
            "expected a unicast MAC address (first octet even) like 02:00:5e:00:01:01, found {s:?}"
        ));
    }
    Ok(mac)
}

/// Parses an interface name (1-15 bytes, no '/', whitespace or NUL). Pure.
pub fn parse_iface(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() < 16
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "expected an interface name of 1-15 printable characters like veth-acc0, found {s:?}"
        ))
    }
}

/// The PFCP Node ID: the explicit value if given (IPv4 literal or FQDN), else the listen
/// address. Pure.
pub fn node_id_for(
    explicit: Option<&str>,
    pfcp_listen: SocketAddrV4,
) -> Result<NodeIdConfig, String> {
    let Some(s) = explicit else {
        return Ok(NodeIdConfig::Ipv4(*pfcp_listen.ip()));
    };
    let s = s.trim();
    if let Ok(a) = s.parse::<Ipv4Addr>() {
        return Ok(NodeIdConfig::Ipv4(a));
    }
    let fqdn_ok = !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if fqdn_ok {
        Ok(NodeIdConfig::Fqdn(s.to_string()))
    } else {
        Err(format!(
            "expected an IPv4 address or a domain name like up1.vbng.example, found {s:?}"
        ))
    }
}

/// True if `addr` lies in `net/len`. Pure.
pub fn in_subnet(addr: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    };
    u32::from(addr) & mask == u32::from(net) & mask
}

/// Checks the core addressing: the next hop is on the core subnet and is neither the UP's
/// own address nor the subnet's network or broadcast address. Pure.
pub fn check_core_addressing(
    ipv4: Ipv4Addr,
    prefix_len: u8,
    next_hop: Ipv4Addr,
) -> Result<(), String> {
    if !in_subnet(next_hop, ipv4, prefix_len) {
        return Err(format!(
            "expected a next hop inside the core subnet {ipv4}/{prefix_len}, found {next_hop}"
        ));
    }
    if next_hop == ipv4 {
        return Err(format!(
            "expected a next hop other than the UP's own core address, found {next_hop}"
        ));
    }
    let host_mask = u32::MAX >> prefix_len;
    let host = u32::from(next_hop) & host_mask;
    if host == 0 || host == host_mask {
        return Err(format!(
            "expected a host address, found {next_hop} (network or broadcast of {ipv4}/{prefix_len})"
        ));
    }
    Ok(())
}

/// Finds the dotted key path at byte `offset` of a TOML document: the innermost table
/// header above it and the key on its line. Pure; used to name keys in serde errors.
pub fn key_at(src: &str, offset: usize) -> Option<String> {
    let offset = offset.min(src.len());
    let before = src.get(..offset)?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = src[line_start..]
        .find('\n')
        .map_or(src.len(), |i| line_start + i);
    let line = src[line_start..line_end].trim();

    let table_of = |header: &str| -> Option<String> {
        let h = header.trim();
        let inner = h
            .strip_prefix("[[")
            .and_then(|r| r.strip_suffix("]]"))
            .or_else(|| h.strip_prefix('[').and_then(|r| r.strip_suffix(']')))?;
        Some(inner.trim().to_string())
    };
    if line.starts_with('[') {
        return table_of(line.split('#').next().unwrap_or(line));
    }
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty())?;
    let table = src[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .and_then(|h| table_of(h.split('#').next().unwrap_or(h)));
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key,
    })
}

/// 1-based line number of byte `offset`. Pure.
pub(super) fn line_of(src: &str, offset: usize) -> usize {
    src.as_bytes()[..offset.min(src.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
