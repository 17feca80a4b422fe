//! The local subscriber file (TOML), the embedded AAA default.
//!
//! ```toml
//! [default]                 # clients no entry matches
//! policy = "allow"          # "allow" (into `pool`) or "deny"; default "allow"
//! pool = "default"          # default "default"
//!
//! [[subscribers]]
//! mac = "02:00:00:00:00:01" # match by client MAC ...
//! pool = "default"
//! ipv4 = "100.64.0.20"      # optional fixed address
//! rate = { up_kbps = 10000, down_kbps = 50000 }   # optional, into the QER MBR
//! filter = "web-only"       # optional user plane ACL, see below
//!
//! [[subscribers]]
//! circuit_id = "olt1/1/1:100" # ... or by option-82 circuit-id
//! allow = false
//! ```
//!
//! Lookup order: MAC entry, then circuit-id entry, then the default rule.
//!
//! PPP users (PPPoE) log in by name, with PAP or CHAP:
//!
//! ```toml
//! [[users]]
//! name = "alice"
//! password = "alice-secret"   # cleartext: CHAP needs it
//! pool = "default"            # optional, as for [[subscribers]]
//! ipv4 = "100.64.0.21"        # optional fixed address
//! rate = { up_kbps = 20000, down_kbps = 100000 }
//! filter = "block-smtp"       # optional user plane ACL (like RADIUS Filter-Id)
//! ```
//!
//! `filter` (also allowed in `[default]`, for clients no entry matches)
//! names an ACL of the user plane's ACL file: the session's PDRs
//! activate it, and a user plane that does not know the name refuses the
//! session. It is the session's Filter-Id, changed live by REST
//! `PATCH /sessions/{id}`.

use std::collections::HashMap;
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::Path;

use serde::Deserialize;
use vbng_access::dhcpv4::{Authorization, ClientContext};

use crate::config::ConfigError;
use crate::config::load::toml_error;

/// Peak rates of one subscriber (into the PFCP QER MBR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Uplink (subscriber -> core) rate in kbit/s. Required.
    pub up_kbps: u64,
    /// Downlink (core -> subscriber) rate in kbit/s. Required.
    pub down_kbps: u64,
}

/// What AAA decided for one subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberProfile {
    /// Whether the subscriber is served at all.
    pub allow: bool,
    /// Pool to address it from.
    pub pool: String,
    /// Fixed IPv4 address instead of a dynamic one.
    pub fixed_ipv4: Option<Ipv4Addr>,
    /// Peak rates, if limited.
    pub rate: Option<Rate>,
    /// Name of the user plane ACL the subscriber's sessions get (their
    /// Filter-Id), if any.
    pub filter: Option<String>,
}

impl SubscriberProfile {
    /// The DHCP server's view of this profile.
    pub fn authorization(&self) -> Authorization {
        if self.allow {
            Authorization::Allow {
                pool: self.pool.clone(),
                fixed_ipv4: self.fixed_ipv4,
            }
        } else {
            Authorization::Deny
        }
    }
}

/// The policy for clients no entry matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultPolicy {
    /// Serve unknown clients from the default pool.
    Allow,
    /// Refuse unknown clients.
    Deny,
}

/// Which rule produced a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedBy {
    /// A `mac` entry.
    Mac,
    /// A `circuit_id` entry.
    CircuitId,
    /// The `[default]` rule.
    Default,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDefault {
    /// "allow" or "deny". Default: allow.
    #[serde(default = "default_policy")]
    policy: DefaultPolicy,
    /// Default: "default".
    #[serde(default = "default_pool")]
    pool: String,
    /// Default: none (no rate limit).
    #[serde(default)]
    rate: Option<Rate>,
    /// Default: none (no ACL).
    #[serde(default)]
    filter: Option<String>,
}

impl Default for FileDefault {
    fn default() -> Self {
        FileDefault {
            policy: DefaultPolicy::Allow,
            pool: default_pool(),
            rate: None,
            filter: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    /// Client MAC; exactly one of `mac` and `circuit_id`.
    #[serde(default, with = "opt_mac")]
    mac: Option<[u8; 6]>,
    /// Option-82 Agent Circuit ID as text.
    #[serde(default)]
    circuit_id: Option<String>,
    /// Default: true.
    #[serde(default = "default_true")]
    allow: bool,
    /// Default: the `[default]` pool.
    #[serde(default)]
    pool: Option<String>,
    /// Default: none (dynamic address).
    #[serde(default)]
    ipv4: Option<Ipv4Addr>,
    /// Default: none (no rate limit).
    #[serde(default)]
    rate: Option<Rate>,
    /// Default: none (no ACL; the `[default]` one is for unmatched clients).
    #[serde(default)]
    filter: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    default: FileDefault,
    #[serde(default)]
    subscribers: Vec<FileEntry>,
    #[serde(default)]
    users: Vec<FileUser>,
}

/// A PPP user: name and password (PAP or CHAP), and its service.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUser {
    /// PPP user name. Required, unique.
    name: String,
    /// Password (cleartext: CHAP needs it). Required.
    password: String,
    /// Default: true.
    #[serde(default = "default_true")]
    allow: bool,
    /// Default: the `[default]` pool.
    #[serde(default)]
    pool: Option<String>,
    /// Default: none (an address from the pool).
    #[serde(default)]
    ipv4: Option<Ipv4Addr>,
    /// Default: none (no rate limit).
    #[serde(default)]
    rate: Option<Rate>,
    /// Default: none (no ACL; the `[default]` one is for unmatched clients).
    #[serde(default)]
    filter: Option<String>,
}

/// PPP credentials to check against the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PppCredentials<'a> {
    /// PAP: the password as sent.
    Pap(&'a [u8]),
    /// CHAP-MD5 (RFC 1994): identifier, our challenge, the peer's response.
    Chap {
        /// CHAP identifier.
        id: u8,
        /// The challenge we sent.
        challenge: &'a [u8],
        /// The peer's MD5 response.
        response: &'a [u8; 16],
    },
}

fn default_policy() -> DefaultPolicy {
    DefaultPolicy::Allow
}
fn default_pool() -> String {
    "default".to_string()
}
fn default_true() -> bool {
    true
}

/// A `filter` must name an ACL: an empty name would match none.
fn check_filter(file: &str, key: &str, filter: Option<&str>) -> Result<(), ConfigError> {
    if filter.is_some_and(str::is_empty) {
        return Err(ConfigError::new(
            file,
            key,
            "expected the name of an ACL of the user plane's ACL file, found \"\"",
            "name an ACL, or remove the key for none",
        ));
    }
    Ok(())
}

mod opt_mac {
    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<[u8; 6]>, D::Error> {
        let s = String::deserialize(d)?;
        crate::parse_mac(&s)
            .map(|m| Some(m.0))
            .map_err(serde::de::Error::custom)
    }
}

/// The local subscriber database.
#[derive(Debug, Clone)]
pub struct LocalSubscribers {
    users: HashMap<String, (Vec<u8>, SubscriberProfile)>,
    by_mac: HashMap<[u8; 6], SubscriberProfile>,
    by_circuit: HashMap<Vec<u8>, SubscriberProfile>,
    policy: DefaultPolicy,
    default: SubscriberProfile,
}

impl Default for LocalSubscribers {
    /// No entries; allow everyone into pool `default` without a rate.
    fn default() -> Self {
        LocalSubscribers {
            users: HashMap::new(),
            by_mac: HashMap::new(),
            by_circuit: HashMap::new(),
            policy: DefaultPolicy::Allow,
            default: SubscriberProfile {
                allow: true,
                pool: default_pool(),
                fixed_ipv4: None,
                rate: None,
                filter: None,
            },
        }
    }
}

impl LocalSubscribers {
    /// Read and parse a subscriber file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                &file,
                "<file>",
                format!("expected a readable subscriber file, found: {e}"),
                "fix the `subscribers` path in the config or the --subscribers flag",
            )
        })?;
        Self::parse(&file, &text)
    }

    /// Parse subscriber file `text`; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, ConfigError> {
        let f: File = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
        let policy = f.default.policy;
        check_filter(file, "default.filter", f.default.filter.as_deref())?;
        let default = SubscriberProfile {
            allow: policy == DefaultPolicy::Allow,
            pool: f.default.pool.clone(),
            fixed_ipv4: None,
            rate: f.default.rate,
            filter: f.default.filter.clone(),
        };
        let mut out = LocalSubscribers {
            users: HashMap::new(),
            by_mac: HashMap::new(),
            by_circuit: HashMap::new(),
            policy,
            default,
        };
        let mut fixed = HashSet::new();
        for (i, u) in f.users.into_iter().enumerate() {
            let key = |k: &str| format!("users[{i}].{k}");
            if u.name.is_empty() || out.users.contains_key(&u.name) {
                return Err(ConfigError::new(
                    file,
                    key("name"),
                    format!("expected a unique non-empty user name, found {:?}", u.name),
                    "give every PPP user its own name",
                ));
            }
            if let Some(ip) = u.ipv4
                && !fixed.insert(ip)
            {
                return Err(ConfigError::new(
                    file,
                    key("ipv4"),
                    format!("expected a fixed address used once, found {ip} twice"),
                    "give each subscriber its own fixed address",
                ));
            }
            check_filter(file, &key("filter"), u.filter.as_deref())?;
            let profile = SubscriberProfile {
                allow: u.allow,
                pool: u.pool.unwrap_or_else(|| f.default.pool.clone()),
                fixed_ipv4: u.ipv4,
                rate: u.rate,
                filter: u.filter,
            };
            out.users.insert(u.name, (u.password.into_bytes(), profile));
        }
        for (i, e) in f.subscribers.into_iter().enumerate() {
            let key = |k: &str| format!("subscribers[{i}].{k}");
            check_filter(file, &key("filter"), e.filter.as_deref())?;
            let profile = SubscriberProfile {
                allow: e.allow,
                pool: e.pool.unwrap_or_else(|| f.default.pool.clone()),
                fixed_ipv4: e.ipv4,
                rate: e.rate,
                filter: e.filter,
            };
            if let Some(ip) = e.ipv4
                && !fixed.insert(ip)
            {
                return Err(ConfigError::new(
                    file,
                    key("ipv4"),
                    format!("expected a fixed address used once, found {ip} twice"),
                    "give each subscriber its own fixed address",
                ));
            }
            match (e.mac, e.circuit_id) {
                (Some(mac), None) => {
                    if out.by_mac.insert(mac, profile).is_some() {
                        return Err(ConfigError::new(
                            file,
                            key("mac"),
                            "expected each MAC once, found a duplicate",
                            "merge the two entries",
                        ));
                    }
                }
                (None, Some(cid)) => {
                    if cid.is_empty() || out.by_circuit.insert(cid.into_bytes(), profile).is_some()
                    {
                        return Err(ConfigError::new(
                            file,
                            key("circuit_id"),
                            "expected a non-empty circuit-id used once, found empty or duplicate",
                            "merge the entries or fill in the circuit-id",
                        ));
                    }
                }
                _ => {
                    return Err(ConfigError::new(
                        file,
                        format!("subscribers[{i}]"),
                        "expected exactly one of `mac` and `circuit_id`",
                        "keep either mac or circuit_id in the entry",
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Check that every pool this file names exists in `pools`.
    pub fn check_pools<'a>(
        &self,
        file: &str,
        pools: impl IntoIterator<Item = &'a str> + Clone,
    ) -> Result<(), ConfigError> {
        let known: HashSet<&str> = pools.clone().into_iter().collect();
        let profiles = self
            .by_mac
            .values()
            .chain(self.users.values().map(|(_, p)| p))
            .chain(self.by_circuit.values())
            .chain(std::iter::once(&self.default))
            .filter(|p| p.allow);
        for p in profiles {
            if !known.contains(p.pool.as_str()) {
                return Err(ConfigError::new(
                    file,
                    "pool",
                    format!("expected a configured pool, found {:?}", p.pool),
                    format!(
                        "use one of the pools of the config ({})",
                        pools.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The default policy for unknown clients.
    pub fn policy(&self) -> DefaultPolicy {
        self.policy
    }

    /// Number of MAC and circuit-id entries.
    pub fn len(&self) -> usize {
        self.by_mac.len() + self.by_circuit.len()
    }

    /// Whether the file has no entries (only the default rule).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The profile for a client with `mac` and option-82 `circuit_id`.
    pub fn lookup(
        &self,
        mac: &[u8; 6],
        circuit_id: Option<&[u8]>,
    ) -> (&SubscriberProfile, MatchedBy) {
        if let Some(p) = self.by_mac.get(mac) {
            return (p, MatchedBy::Mac);
        }
        if let Some(p) = circuit_id.and_then(|c| self.by_circuit.get(c)) {
            return (p, MatchedBy::CircuitId);
        }
        (&self.default, MatchedBy::Default)
    }

    /// Check a PPP user's credentials: its profile if the user exists, is
    /// allowed and the password (PAP) or CHAP response matches.
    pub fn authenticate_ppp(
        &self,
        user: &str,
        credentials: PppCredentials<'_>,
    ) -> Result<&SubscriberProfile, &'static str> {
        let Some((password, profile)) = self.users.get(user) else {
            return Err("unknown user");
        };
        let ok = match credentials {
            PppCredentials::Pap(p) => p == password.as_slice(),
            PppCredentials::Chap {
                id,
                challenge,
                response,
            } => {
                let expected = vbng_aaa::radius::crypto::chap_password(id, password, challenge);
                expected[1..] == response[..]
            }
        };
        if !ok {
            return Err("wrong password");
        }
        if !profile.allow {
            return Err("user not allowed");
        }
        Ok(profile)
    }

    /// Number of PPP users.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// The DHCP authorization for a client.
    pub fn authorize(&self, ctx: &ClientContext) -> Authorization {
        self.lookup(&ctx.key.mac, ctx.circuit_id.as_deref())
            .0
            .authorization()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vbng_access::dhcpv4::ClientKey;

    #[test]
    fn ppp_users_by_pap_and_chap() {
        let subs = LocalSubscribers::parse(
            "s.toml",
            "[[users]]\nname = \"alice\"\npassword = \"pw\"\nrate = { up_kbps = 1000, down_kbps = 2000 }\n\
             [[users]]\nname = \"bob\"\npassword = \"pw\"\nallow = false\n",
        )
        .unwrap();
        assert_eq!(subs.user_count(), 2);
        let p = subs
            .authenticate_ppp("alice", PppCredentials::Pap(b"pw"))
            .unwrap();
        assert_eq!(p.rate.map(|r| r.down_kbps), Some(2000));
        assert!(
            subs.authenticate_ppp("alice", PppCredentials::Pap(b"no"))
                .is_err()
        );
        assert!(
            subs.authenticate_ppp("carol", PppCredentials::Pap(b"pw"))
                .is_err()
        );
        assert!(
            subs.authenticate_ppp("bob", PppCredentials::Pap(b"pw"))
                .is_err()
        );
        let challenge = [9u8; 16];
        let r = vbng_aaa::radius::crypto::chap_password(3, b"pw", &challenge);
        let response: [u8; 16] = r[1..].try_into().unwrap();
        let chap = |id| PppCredentials::Chap {
            id,
            challenge: &challenge,
            response: &response,
        };
        assert!(subs.authenticate_ppp("alice", chap(3)).is_ok());
        assert!(subs.authenticate_ppp("alice", chap(4)).is_err());
        let dup = LocalSubscribers::parse(
            "s.toml",
            "[[users]]\nname = \"a\"\npassword = \"x\"\n[[users]]\nname = \"a\"\npassword = \"y\"\n",
        )
        .unwrap_err();
        assert_eq!(dup.key, "users[1].name");
    }

    fn ctx(mac: [u8; 6], cid: Option<&str>) -> ClientContext {
        ClientContext {
            key: ClientKey {
                up: 0,
                port: 0,
                svlan: 0,
                cvlan: 0,
                mac,
            },
            circuit_id: cid.map(|c| c.as_bytes().to_vec()),
            remote_id: None,
        }
    }

    #[test]
    fn example_file_loads_and_matches() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/subscribers.toml");
        let subs = LocalSubscribers::load(&path).unwrap();
        subs.check_pools("subscribers.toml", ["default"]).unwrap();
        assert!(!subs.is_empty());
        let (p, by) = subs.lookup(&[0x02, 0, 0, 0, 0, 0x01], None);
        assert_eq!(by, MatchedBy::Mac);
        assert!(p.allow);
        assert_eq!(
            p.rate,
            Some(Rate {
                up_kbps: 10_000,
                down_kbps: 50_000
            })
        );
        assert_eq!(p.filter, None);
        let (p, _) = subs.lookup(&[0x02, 0, 0, 0, 0, 0x02], None);
        assert_eq!(p.filter.as_deref(), Some("web-only"));
        let alice = subs
            .authenticate_ppp("alice", PppCredentials::Pap(b"alice-secret"))
            .unwrap();
        assert_eq!(alice.filter.as_deref(), Some("block-smtp"));
        let (p, by) = subs.lookup(&[0x02, 0, 0, 0, 0, 0x99], Some(b"olt1/1/1:666"));
        assert_eq!(by, MatchedBy::CircuitId);
        assert!(!p.allow);
        assert_eq!(
            subs.authorize(&ctx([0x02, 0, 0, 0, 0, 0x99], Some("olt1/1/1:666"))),
            Authorization::Deny
        );
    }

    #[test]
    fn default_policy_allow_and_deny() {
        let allow = LocalSubscribers::parse("s", "").unwrap();
        assert_eq!(
            allow.authorize(&ctx([2, 0, 0, 0, 0, 7], None)),
            Authorization::Allow {
                pool: "default".into(),
                fixed_ipv4: None
            }
        );
        let deny = LocalSubscribers::parse(
            "s",
            "[default]\npolicy = \"deny\"\n[[subscribers]]\nmac = \"02:00:00:00:00:07\"\nipv4 = \"100.64.0.7\"\n",
        )
        .unwrap();
        assert_eq!(deny.policy(), DefaultPolicy::Deny);
        assert_eq!(
            deny.authorize(&ctx([2, 0, 0, 0, 0, 8], None)),
            Authorization::Deny
        );
        assert_eq!(
            deny.authorize(&ctx([2, 0, 0, 0, 0, 7], None)),
            Authorization::Allow {
                pool: "default".into(),
                fixed_ipv4: Some(Ipv4Addr::new(100, 64, 0, 7))
            }
        );
    }

    #[test]
    fn mac_entry_wins_over_circuit_id() {
        let s = LocalSubscribers::parse(
            "s",
            "[[subscribers]]\nmac = \"02:00:00:00:00:07\"\npool = \"a\"\n\
             [[subscribers]]\ncircuit_id = \"c1\"\npool = \"b\"\n",
        )
        .unwrap();
        assert_eq!(s.lookup(&[2, 0, 0, 0, 0, 7], Some(b"c1")).0.pool, "a");
        assert_eq!(s.lookup(&[2, 0, 0, 0, 0, 8], Some(b"c1")).0.pool, "b");
        let e = s.check_pools("s", ["a"]).unwrap_err();
        assert!(e.problem.contains("\"b\""), "{e}");
    }

    #[test]
    fn bad_entries_name_their_key() {
        let e = LocalSubscribers::parse("s", "[[subscribers]]\nallow = true\n").unwrap_err();
        assert_eq!(e.key, "subscribers[0]");
        let e = LocalSubscribers::parse("s", "[[subscribers]]\nmac = \"x\"\n").unwrap_err();
        assert_eq!(e.key, "subscribers[0].mac");
        let e = LocalSubscribers::parse("s", "[default]\npolicy = \"maybe\"\n").unwrap_err();
        assert_eq!(e.key, "default.policy");
        let e = LocalSubscribers::parse(
            "s",
            "[[subscribers]]\nmac = \"02:00:00:00:00:01\"\nrate = { up_kbps = 1 }\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "subscribers[0].rate");
    }

    #[test]
    fn filters_name_the_acl_of_users_entries_and_unmatched_clients() {
        let s = LocalSubscribers::parse(
            "s",
            "[default]\nfilter = \"guest\"\n\
             [[subscribers]]\nmac = \"02:00:00:00:00:07\"\nfilter = \"web-only\"\n\
             [[subscribers]]\nmac = \"02:00:00:00:00:08\"\n\
             [[users]]\nname = \"alice\"\npassword = \"pw\"\nfilter = \"block-smtp\"\n",
        )
        .unwrap();
        let filter = |mac| s.lookup(&mac, None).0.filter.clone();
        assert_eq!(filter([2, 0, 0, 0, 0, 7]).as_deref(), Some("web-only"));
        // An entry without one has none: the default's is for clients no
        // entry matches.
        assert_eq!(filter([2, 0, 0, 0, 0, 8]), None);
        assert_eq!(filter([2, 0, 0, 0, 0, 9]).as_deref(), Some("guest"));
        let alice = s
            .authenticate_ppp("alice", PppCredentials::Pap(b"pw"))
            .unwrap();
        assert_eq!(alice.filter.as_deref(), Some("block-smtp"));
        for (text, key) in [
            ("[default]\nfilter = \"\"\n", "default.filter"),
            (
                "[[users]]\nname = \"a\"\npassword = \"x\"\nfilter = \"\"\n",
                "users[0].filter",
            ),
            (
                "[[subscribers]]\nmac = \"02:00:00:00:00:01\"\nfilter = \"\"\n",
                "subscribers[0].filter",
            ),
        ] {
            let e = LocalSubscribers::parse("s", text).unwrap_err();
            assert_eq!(e.key, key, "{e}");
        }
        let e = LocalSubscribers::parse(
            "s",
            "[[users]]\nname = \"a\"\npassword = \"x\"\nfilter = 3\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "users[0].filter", "{e}");
    }
}
