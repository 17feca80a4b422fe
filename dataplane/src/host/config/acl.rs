//! The ACL file (`acl_file`, reread on SIGHUP): named access control lists that sessions
//! select by name (the RADIUS Filter-Id, sent to the user plane as the PFCP Activate
//! Predefined Rules IE), and optionally a global ACL that every session's traffic passes
//! before its own. `configs/acl.toml` is a commented example; a test loads it.
//!
//! ```toml
//! global = "protect-infra"        # optional: the name of an ACL below
//!
//! [[acl]]
//! name = "web-only"               # what Filter-Id names
//! default = "deny"                # optional: "permit" (default) or "deny" when no rule matches
//!
//! [[acl.ingress]]                 # from the subscriber; [[acl.egress]] for traffic to it
//! action = "permit"               # required: "permit" or "deny"
//! src = "100.64.0.0/10"           # optional: IPv4 or IPv6 prefix, a bare address is /32 or /128
//! dst = "0.0.0.0/0"               # optional
//! protocol = "tcp"                # optional: tcp, udp, icmp, icmpv6, sctp, gre or 0-255
//! src_port = "1024-65535"         # optional: a port or range, only with tcp, udp or sctp
//! dst_port = 443                  # optional
//! ```
//!
//! Rules are checked in file order and the first match wins. Errors are one line in the
//! style of [`super::ConfigError`], naming the file and the key with its array indices
//! (counted from 0), e.g.
//!
//! ```text
//! acl.toml: key acl[1].ingress[0].dst_port: expected a port or range like 80 or 1024-65535, found "x"
//! ```

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use serde::Deserialize;

use super::{ConfigError, Origin, key_at, line_of};
use crate::acl::{AclAction, AclRule, AclSpec, IpPrefix, PortRange};

/// Longest ACL name: what a RADIUS Filter-Id attribute can carry (RFC 2865 5.11).
pub const MAX_ACL_NAME_LEN: usize = 253;

/// An ACL file, validated: unique names, well-formed rules, `global` naming one of `acls`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AclFile {
    /// The ACL every session's traffic passes before the session's own ACL, if any.
    pub global: Option<String>,
    /// The ACLs in file order.
    pub acls: Vec<AclSpec>,
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAcls {
    global: Option<String>,
    #[serde(default)]
    acl: Vec<FileAcl>,
}

/// One `[[acl]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAcl {
    name: String,
    default: Option<String>,
    #[serde(default)]
    ingress: Vec<FileRule>,
    #[serde(default)]
    egress: Vec<FileRule>,
}

/// One `[[acl.ingress]]` or `[[acl.egress]]` as written. Protocol and ports are raw values
/// because each may be a number or a string.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRule {
    action: String,
    src: Option<String>,
    dst: Option<String>,
    protocol: Option<toml::Value>,
    src_port: Option<toml::Value>,
    dst_port: Option<toml::Value>,
}

/// Reads and validates the ACL file at `path` (see the module documentation).
pub fn load_acl_file(path: &Path) -> Result<AclFile, ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        origin: Origin::File {
            path: origin.clone(),
            key: None,
            line: None,
        },
        message: format!("cannot read the file: {e}; expected a readable TOML file"),
    })?;
    parse_acl_file(&text, &origin)
}

/// Parses and validates the text of an ACL file; `origin` (usually its path) names the
/// file in errors. Pure.
pub fn parse_acl_file(text: &str, origin: &str) -> Result<AclFile, ConfigError> {
    let file: FileAcls = toml::from_str(text).map_err(|e| {
        let span = e.span();
        let key = span.as_ref().and_then(|s| indexed_key_at(text, s.start));
        let line = span.map(|s| line_of(text, s.start));
        ConfigError {
            origin: Origin::File {
                path: origin.to_string(),
                key,
                line,
            },
            message: e.message().trim().replace('\n', " "),
        }
    })?;
    let error_at = |key: String, message: String| ConfigError {
        origin: Origin::File {
            path: origin.to_string(),
            key: Some(key),
            line: None,
        },
        message,
    };

    let mut index_of_name: HashMap<&str, usize> = HashMap::new();
    let mut acls = Vec::with_capacity(file.acl.len());
    for (i, acl) in file.acl.iter().enumerate() {
        let at = format!("acl[{i}]");
        check_name(&acl.name).map_err(|m| error_at(format!("{at}.name"), m))?;
        if let Some(first) = index_of_name.insert(&acl.name, i) {
            return Err(error_at(
                format!("{at}.name"),
                format!(
                    "expected a name no other ACL has, found {:?} (also the name of acl[{first}])",
                    acl.name
                ),
            ));
        }
        let default_action = match &acl.default {
            Some(s) => parse_action(s).map_err(|m| error_at(format!("{at}.default"), m))?,
            None => AclAction::Permit,
        };
        let rules = |direction: &str, written: &[FileRule]| {
            written
                .iter()
                .enumerate()
                .map(|(j, rule)| {
                    parse_rule(rule).map_err(|(field, m)| {
                        let key = match field {
                            Some(field) => format!("{at}.{direction}[{j}].{field}"),
                            None => format!("{at}.{direction}[{j}]"),
                        };
                        error_at(key, m)
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        acls.push(AclSpec {
            name: acl.name.clone(),
            default_action,
            ingress: rules("ingress", &acl.ingress)?,
            egress: rules("egress", &acl.egress)?,
        });
    }

    if let Some(global) = &file.global
        && !index_of_name.contains_key(global.as_str())
    {
        let known: Vec<String> = file.acl.iter().map(|a| format!("{:?}", a.name)).collect();
        let known = if known.is_empty() {
            "none is defined".to_string()
        } else {
            known.join(", ")
        };
        return Err(error_at(
            "global".into(),
            format!("expected the name of an ACL of this file ({known}), found {global:?}"),
        ));
    }

    Ok(AclFile {
        global: file.global,
        acls,
    })
}

/// An ACL name: 1 to [`MAX_ACL_NAME_LEN`] bytes without control characters (it travels in
/// RADIUS Filter-Id and PFCP, and appears in logs and metric labels). Pure.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_ACL_NAME_LEN || name.chars().any(char::is_control) {
        return Err(format!(
            "expected a name of 1-{MAX_ACL_NAME_LEN} bytes without control characters \
             like \"web-only\", found {name:?}"
        ));
    }
    Ok(())
}

/// `"permit"` or `"deny"`. Pure.
fn parse_action(s: &str) -> Result<AclAction, String> {
    match s {
        "permit" => Ok(AclAction::Permit),
        "deny" => Ok(AclAction::Deny),
        _ => Err(format!("expected \"permit\" or \"deny\", found {s:?}")),
    }
}

/// Protocols with ports: TCP, UDP, SCTP.
const PORT_PROTOCOLS: [u8; 3] = [6, 17, 132];
/// ICMP, for IPv4 only.
const ICMP: u8 = 1;
/// ICMPv6, for IPv6 only.
const ICMPV6: u8 = 58;

/// A protocol name or number. Pure.
fn parse_protocol(value: &toml::Value) -> Result<u8, String> {
    const EXPECTED: &str = "expected tcp, udp, icmp, icmpv6, sctp, gre or a protocol number 0-255";
    match value {
        toml::Value::Integer(n) => u8::try_from(*n).map_err(|_| format!("{EXPECTED}, found {n}")),
        toml::Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(6),
            "udp" => Ok(17),
            "icmp" => Ok(ICMP),
            "icmpv6" => Ok(ICMPV6),
            "sctp" => Ok(132),
            "gre" => Ok(47),
            number => number
                .parse()
                .map_err(|_| format!("{EXPECTED}, found {s:?}")),
        },
        other => Err(format!("{EXPECTED}, found {other}")),
    }
}

/// A port (`443` or `"443"`) or an inclusive range (`"1024-65535"`). Pure.
fn parse_ports(value: &toml::Value) -> Result<PortRange, String> {
    const EXPECTED: &str = "expected a port or range like 80 or 1024-65535";
    match value {
        toml::Value::Integer(n) => u16::try_from(*n)
            .map(PortRange::single)
            .map_err(|_| format!("{EXPECTED}, found {n}")),
        toml::Value::String(s) => {
            let (first, last) = s.split_once('-').unwrap_or((s, s));
            let port = |p: &str| p.trim().parse::<u16>().ok();
            let (Some(first), Some(last)) = (port(first), port(last)) else {
                return Err(format!("{EXPECTED}, found {s:?}"));
            };
            if first > last {
                return Err(format!(
                    "{EXPECTED}, found {s:?} (the first port is above the last)"
                ));
            }
            Ok(PortRange { first, last })
        }
        other => Err(format!("{EXPECTED}, found {other}")),
    }
}

/// `address/len` of either family, or a bare address (the whole address: /32 or /128).
/// Host bits must be clear, so that a mistyped prefix is not silently widened. Pure.
fn parse_prefix(s: &str) -> Result<IpPrefix, String> {
    let (addr, len) = match s.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (s, None),
    };
    let addr: IpAddr = addr.trim().parse().map_err(|_| {
        format!(
            "expected an IPv4 or IPv6 prefix like 100.64.0.0/10 or 2001:db8::/32, or an \
             address, found {s:?}"
        )
    })?;
    let max_len: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max_len,
        Some(len) => len
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|&len| len <= max_len)
            .ok_or_else(|| format!("expected a prefix length 0-{max_len}, found {s:?}"))?,
    };
    let (prefix, network) = match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            let network = Ipv4Addr::from(u32::from(a) & mask);
            (IpPrefix::V4 { addr: a, len }, IpAddr::V4(network))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            let network = Ipv6Addr::from(u128::from(a) & mask);
            (IpPrefix::V6 { addr: a, len }, IpAddr::V6(network))
        }
    };
    if network != addr {
        return Err(format!(
            "expected a prefix without host bits like {network}/{len}, found {s:?}"
        ));
    }
    Ok(prefix)
}

/// Validates one rule. An error names the offending field (`None`: the rule as a whole)
/// and what was expected. Pure.
fn parse_rule(rule: &FileRule) -> Result<AclRule, (Option<&'static str>, String)> {
    let in_field = |field: &'static str| move |m: String| (Some(field), m);
    let action = parse_action(&rule.action).map_err(in_field("action"))?;
    let src = rule
        .src
        .as_deref()
        .map(parse_prefix)
        .transpose()
        .map_err(in_field("src"))?;
    let dst = rule
        .dst
        .as_deref()
        .map(parse_prefix)
        .transpose()
        .map_err(in_field("dst"))?;
    let protocol = rule
        .protocol
        .as_ref()
        .map(parse_protocol)
        .transpose()
        .map_err(in_field("protocol"))?;
    let src_ports = rule
        .src_port
        .as_ref()
        .map(parse_ports)
        .transpose()
        .map_err(in_field("src_port"))?;
    let dst_ports = rule
        .dst_port
        .as_ref()
        .map(parse_ports)
        .transpose()
        .map_err(in_field("dst_port"))?;

    let is_v6 = |p: &IpPrefix| matches!(p, IpPrefix::V6 { .. });
    let family = match (&src, &dst) {
        (Some(s), Some(d)) if is_v6(s) != is_v6(d) => {
            let name = |p: &IpPrefix| if is_v6(p) { "IPv6" } else { "IPv4" };
            return Err((
                None,
                format!(
                    "expected src and dst of one address family, found src {} {:?} and dst {} {:?}",
                    name(s),
                    rule.src.as_deref().unwrap_or_default(),
                    name(d),
                    rule.dst.as_deref().unwrap_or_default(),
                ),
            ));
        }
        (Some(p), _) | (None, Some(p)) => Some(is_v6(p)),
        (None, None) => None,
    };
    match (protocol, family) {
        (Some(ICMP), Some(true)) => {
            return Err((
                Some("protocol"),
                "expected icmpv6 in a rule with IPv6 prefixes, found icmp (IPv4's)".into(),
            ));
        }
        (Some(ICMPV6), Some(false)) => {
            return Err((
                Some("protocol"),
                "expected icmp in a rule with IPv4 prefixes, found icmpv6 (IPv6's)".into(),
            ));
        }
        _ => {}
    }
    let port_field = match (src_ports, dst_ports) {
        (Some(_), _) => Some("src_port"),
        (None, Some(_)) => Some("dst_port"),
        (None, None) => None,
    };
    if let Some(field) = port_field
        && !protocol.is_some_and(|p| PORT_PROTOCOLS.contains(&p))
    {
        let found = match protocol {
            Some(p) => format!("protocol {p}"),
            None => "no protocol".into(),
        };
        return Err((
            Some(field),
            format!("expected protocol tcp, udp or sctp in a rule with ports, found {found}"),
        ));
    }

    Ok(AclRule {
        action,
        src,
        dst,
        protocol,
        src_ports: src_ports.unwrap_or(PortRange::ANY),
        dst_ports: dst_ports.unwrap_or(PortRange::ANY),
    })
}

/// The key at byte `offset` of an ACL file with its array indices, e.g.
/// `acl[1].ingress[0].dst_port`, found by counting the `[[acl]]`, `[[acl.ingress]]` and
/// `[[acl.egress]]` headers above it. Other layouts (inline tables, other headers) fall
/// back to [`key_at`]'s path without indices. Pure.
fn indexed_key_at(src: &str, offset: usize) -> Option<String> {
    let offset = offset.min(src.len());
    let line_end = src
        .get(offset..)?
        .find('\n')
        .map_or(src.len(), |i| offset + i);
    let mut table: Option<String> = None;
    let (mut acls, mut ingress, mut egress) = (0usize, 0usize, 0usize);
    let mut last_line = "";
    for line in src[..line_end].lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        last_line = line;
        if !line.starts_with('[') {
            continue;
        }
        let header: String = line.chars().filter(|c| !c.is_whitespace()).collect();
        table = match header.as_str() {
            "[[acl]]" => {
                acls += 1;
                (ingress, egress) = (0, 0);
                Some(format!("acl[{}]", acls - 1))
            }
            "[[acl.ingress]]" if acls > 0 => {
                ingress += 1;
                Some(format!("acl[{}].ingress[{}]", acls - 1, ingress - 1))
            }
            "[[acl.egress]]" if acls > 0 => {
                egress += 1;
                Some(format!("acl[{}].egress[{}]", acls - 1, egress - 1))
            }
            _ => return key_at(src, offset),
        };
    }
    if last_line.starts_with('[') {
        return table;
    }
    let key = last_line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"'))
        .filter(|k| !k.is_empty())?;
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AclFile, String> {
        parse_acl_file(text, "acl.toml").map_err(|e| e.to_string())
    }

    fn error(text: &str) -> String {
        parse(text).expect_err("the file should be refused")
    }

    fn v4(a: [u8; 4], len: u8) -> Option<IpPrefix> {
        Some(IpPrefix::V4 {
            addr: Ipv4Addr::from(a),
            len,
        })
    }

    #[test]
    fn a_good_file_parses_to_specs() {
        let file = parse(
            r#"
global = "infra"

[[acl]]
name = "infra"
[[acl.ingress]]
action = "deny"
dst = "198.51.100.0/24"

[[acl]]
name = "web-only"
default = "deny"
[[acl.ingress]]
action = "permit"
src = "100.64.0.0/10"
protocol = "tcp"
src_port = "1024-65535"
dst_port = 443
[[acl.ingress]]
action = "permit"
protocol = 17
dst_port = "53"
[[acl.egress]]
action = "permit"
src = "2001:db8::1"
protocol = "ICMPv6"
"#,
        )
        .unwrap();
        assert_eq!(file.global.as_deref(), Some("infra"));
        assert_eq!(
            file.acls[0],
            AclSpec {
                name: "infra".into(),
                default_action: AclAction::Permit,
                ingress: vec![AclRule {
                    action: AclAction::Deny,
                    dst: v4([198, 51, 100, 0], 24),
                    ..AclRule::default()
                }],
                egress: vec![],
            }
        );
        let web = &file.acls[1];
        assert_eq!(web.default_action, AclAction::Deny);
        assert_eq!(
            web.ingress,
            [
                AclRule {
                    action: AclAction::Permit,
                    src: v4([100, 64, 0, 0], 10),
                    dst: None,
                    protocol: Some(6),
                    src_ports: PortRange {
                        first: 1024,
                        last: 65535
                    },
                    dst_ports: PortRange::single(443),
                },
                AclRule {
                    action: AclAction::Permit,
                    protocol: Some(17),
                    dst_ports: PortRange::single(53),
                    ..AclRule::default()
                },
            ]
        );
        assert_eq!(
            web.egress,
            [AclRule {
                action: AclAction::Permit,
                src: Some(IpPrefix::V6 {
                    addr: "2001:db8::1".parse().unwrap(),
                    len: 128
                }),
                protocol: Some(58),
                ..AclRule::default()
            }]
        );
    }

    #[test]
    fn an_empty_file_has_no_acls() {
        assert_eq!(parse("").unwrap(), AclFile::default());
    }

    #[test]
    fn the_example_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/acl.toml");
        let file = load_acl_file(&path).unwrap();
        let names: Vec<&str> = file.acls.iter().map(|a| a.name.as_str()).collect();
        for name in ["web-only", "block-smtp"] {
            assert!(names.contains(&name), "{names:?} lacks {name}");
        }
        let global = file
            .global
            .as_deref()
            .expect("the example has a global ACL");
        assert!(names.contains(&global));
        // The sets the user plane builds from it are valid too.
        crate::acl::AclSet::build(file.global.as_deref(), &file.acls, None).unwrap();
    }

    #[test]
    fn an_unreadable_file_is_named() {
        let e = load_acl_file(Path::new("/nonexistent/acl.toml")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/acl.toml: cannot read the file: "),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_are_named_with_their_indices() {
        let e = error(
            r#"
[[acl]]
name = "a"
[[acl]]
name = "b"
[[acl.ingress]]
action = "permit"
[[acl.egress]]
action = "deny"
dport = 80
"#,
        );
        assert!(
            e.starts_with("acl.toml: key acl[1].egress[0].dport: unknown field `dport`"),
            "{e}"
        );
        let e = error("globl = \"a\"\n");
        assert!(
            e.starts_with("acl.toml: key globl: unknown field `globl`"),
            "{e}"
        );
        let e = error("[[acl]]\nname = \"a\"\npriority = 1\n");
        assert!(
            e.starts_with("acl.toml: key acl[0].priority: unknown field `priority`"),
            "{e}"
        );
    }

    #[test]
    fn missing_and_mistyped_keys_are_errors() {
        assert_eq!(
            error("[[acl]]\nname = \"a\"\n[[acl.ingress]]\nsrc = \"10.0.0.0/8\"\n"),
            "acl.toml: key acl[0].ingress[0]: missing field `action`"
        );
        assert_eq!(
            error("[[acl]]\ndefault = \"deny\"\n"),
            "acl.toml: key acl[0]: missing field `name`"
        );
        assert_eq!(
            error("[[acl]]\nname = 5\n"),
            "acl.toml: key acl[0].name: invalid type: integer `5`, expected a string"
        );
    }

    #[test]
    fn bad_values_name_file_key_and_expectation() {
        let rule = |fields: &str| format!("[[acl]]\nname = \"a\"\n[[acl.ingress]]\n{fields}\n");
        let cases = [
            (
                rule("action = \"allow\""),
                "acl.toml: key acl[0].ingress[0].action: expected \"permit\" or \"deny\", found \"allow\"",
            ),
            (
                "[[acl]]\nname = \"a\"\ndefault = \"reject\"\n".to_string(),
                "acl.toml: key acl[0].default: expected \"permit\" or \"deny\", found \"reject\"",
            ),
            (
                rule("action = \"permit\"\nsrc = \"10.0.0/8\""),
                "acl.toml: key acl[0].ingress[0].src: expected an IPv4 or IPv6 prefix like \
                 100.64.0.0/10 or 2001:db8::/32, or an address, found \"10.0.0/8\"",
            ),
            (
                rule("action = \"permit\"\ndst = \"10.0.0.0/33\""),
                "acl.toml: key acl[0].ingress[0].dst: expected a prefix length 0-32, found \"10.0.0.0/33\"",
            ),
            (
                rule("action = \"permit\"\ndst = \"2001:db8::/129\""),
                "acl.toml: key acl[0].ingress[0].dst: expected a prefix length 0-128, found \"2001:db8::/129\"",
            ),
            (
                rule("action = \"permit\"\ndst = \"10.1.2.3/8\""),
                "acl.toml: key acl[0].ingress[0].dst: expected a prefix without host bits like \
                 10.0.0.0/8, found \"10.1.2.3/8\"",
            ),
            (
                rule("action = \"permit\"\nsrc = \"2001:db8::1/32\""),
                "acl.toml: key acl[0].ingress[0].src: expected a prefix without host bits like \
                 2001:db8::/32, found \"2001:db8::1/32\"",
            ),
            (
                rule("action = \"permit\"\nprotocol = \"tpc\""),
                "acl.toml: key acl[0].ingress[0].protocol: expected tcp, udp, icmp, icmpv6, sctp, \
                 gre or a protocol number 0-255, found \"tpc\"",
            ),
            (
                rule("action = \"permit\"\nprotocol = 256"),
                "acl.toml: key acl[0].ingress[0].protocol: expected tcp, udp, icmp, icmpv6, sctp, \
                 gre or a protocol number 0-255, found 256",
            ),
            (
                rule("action = \"permit\"\nprotocol = true"),
                "acl.toml: key acl[0].ingress[0].protocol: expected tcp, udp, icmp, icmpv6, sctp, \
                 gre or a protocol number 0-255, found true",
            ),
            (
                rule("action = \"permit\"\nprotocol = \"tcp\"\ndst_port = \"x\""),
                "acl.toml: key acl[0].ingress[0].dst_port: expected a port or range like 80 or \
                 1024-65535, found \"x\"",
            ),
            (
                rule("action = \"permit\"\nprotocol = \"udp\"\nsrc_port = 70000"),
                "acl.toml: key acl[0].ingress[0].src_port: expected a port or range like 80 or \
                 1024-65535, found 70000",
            ),
            (
                rule("action = \"permit\"\nprotocol = \"udp\"\nsrc_port = \"2000-1000\""),
                "acl.toml: key acl[0].ingress[0].src_port: expected a port or range like 80 or \
                 1024-65535, found \"2000-1000\" (the first port is above the last)",
            ),
            (
                rule("action = \"permit\"\nprotocol = \"tcp\"\ndst_port = 1.5"),
                "acl.toml: key acl[0].ingress[0].dst_port: expected a port or range like 80 or \
                 1024-65535, found 1.5",
            ),
            (
                rule("action = \"deny\"\ndst_port = 25"),
                "acl.toml: key acl[0].ingress[0].dst_port: expected protocol tcp, udp or sctp in \
                 a rule with ports, found no protocol",
            ),
            (
                rule("action = \"deny\"\nprotocol = \"icmp\"\nsrc_port = 25"),
                "acl.toml: key acl[0].ingress[0].src_port: expected protocol tcp, udp or sctp in \
                 a rule with ports, found protocol 1",
            ),
            (
                rule("action = \"deny\"\nsrc = \"10.0.0.0/8\"\ndst = \"2001:db8::/32\""),
                "acl.toml: key acl[0].ingress[0]: expected src and dst of one address family, \
                 found src IPv4 \"10.0.0.0/8\" and dst IPv6 \"2001:db8::/32\"",
            ),
            (
                rule("action = \"deny\"\nsrc = \"2001:db8::/32\"\nprotocol = \"icmp\""),
                "acl.toml: key acl[0].ingress[0].protocol: expected icmpv6 in a rule with IPv6 \
                 prefixes, found icmp (IPv4's)",
            ),
            (
                rule("action = \"deny\"\ndst = \"10.0.0.0/8\"\nprotocol = 58"),
                "acl.toml: key acl[0].ingress[0].protocol: expected icmp in a rule with IPv4 \
                 prefixes, found icmpv6 (IPv6's)",
            ),
            (
                "[[acl]]\nname = \"\"\n".to_string(),
                "acl.toml: key acl[0].name: expected a name of 1-253 bytes without control \
                 characters like \"web-only\", found \"\"",
            ),
            (
                "[[acl]]\nname = \"a\"\n[[acl]]\nname = \"b\"\n[[acl]]\nname = \"a\"\n".to_string(),
                "acl.toml: key acl[2].name: expected a name no other ACL has, found \"a\" \
                 (also the name of acl[0])",
            ),
            (
                "global = \"infra\"\n[[acl]]\nname = \"a\"\n[[acl]]\nname = \"b\"\n".to_string(),
                "acl.toml: key global: expected the name of an ACL of this file (\"a\", \"b\"), \
                 found \"infra\"",
            ),
            (
                "global = \"infra\"\n".to_string(),
                "acl.toml: key global: expected the name of an ACL of this file (none is \
                 defined), found \"infra\"",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(error(&text), expected, "for {text}");
        }
        // The errors of the egress list name it.
        let e = error(
            "[[acl]]\nname = \"a\"\n[[acl.egress]]\naction = \"permit\"\n[[acl.egress]]\naction = \"x\"\n",
        );
        assert!(
            e.starts_with("acl.toml: key acl[0].egress[1].action: "),
            "{e}"
        );
    }

    #[test]
    fn prefixes_ports_and_protocols() {
        assert_eq!(parse_prefix("0.0.0.0/0"), Ok(v4([0, 0, 0, 0], 0).unwrap()));
        assert_eq!(
            parse_prefix("192.0.2.7"),
            Ok(v4([192, 0, 2, 7], 32).unwrap())
        );
        assert_eq!(
            parse_prefix("::/0"),
            Ok(IpPrefix::V6 {
                addr: Ipv6Addr::UNSPECIFIED,
                len: 0
            })
        );
        assert_eq!(
            parse_ports(&toml::Value::String("0-65535".into())),
            Ok(PortRange::ANY)
        );
        assert_eq!(
            parse_ports(&toml::Value::Integer(0)),
            Ok(PortRange::single(0))
        );
        assert_eq!(parse_protocol(&toml::Value::String("47".into())), Ok(47));
        assert_eq!(parse_protocol(&toml::Value::String("GRE".into())), Ok(47));
        assert_eq!(parse_protocol(&toml::Value::String("sctp".into())), Ok(132));
    }

    #[test]
    fn indexed_keys_follow_array_headers() {
        let text = "global = \"x\"\n[[acl]]\nname = \"a\"\n[[acl.ingress]]\naction = \"deny\"\n\
                    [[acl]]\nname = \"b\"\n[[acl.egress]]\naction = \"deny\"\n[[acl.egress]]\n\
                    action = \"deny\" # last\n";
        let at = |needle: &str, nth: usize| {
            let offset = text.match_indices(needle).nth(nth).unwrap().0;
            indexed_key_at(text, offset)
        };
        assert_eq!(at("global", 0).as_deref(), Some("global"));
        assert_eq!(at("name", 0).as_deref(), Some("acl[0].name"));
        assert_eq!(at("action", 0).as_deref(), Some("acl[0].ingress[0].action"));
        assert_eq!(at("name", 1).as_deref(), Some("acl[1].name"));
        assert_eq!(at("[[acl.egress]]", 1).as_deref(), Some("acl[1].egress[1]"));
        assert_eq!(at("action", 2).as_deref(), Some("acl[1].egress[1].action"));
        // Another layout: the unindexed path.
        let other = "[acl]\nname = \"a\"\n";
        assert_eq!(
            indexed_key_at(other, other.find("name").unwrap()).as_deref(),
            Some("acl.name")
        );
    }
}
