//! What AAA gave a session beyond its address and rate: kept with the
//! session, echoed in accounting and persisted with its lease.

use serde::{Deserialize, Serialize};

/// How the session was authorized (Acct-Authentic, RFC 2866 5.6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Authentic {
    /// The local subscriber file.
    #[default]
    Local,
    /// A RADIUS Access-Accept.
    Radius,
}

impl Authentic {
    /// The Acct-Authentic value: RADIUS 1, Local 2.
    pub fn acct_authentic(self) -> u32 {
        match self {
            Authentic::Radius => 1,
            Authentic::Local => 2,
        }
    }
}

/// Session attributes from AAA. Every field defaults to "not given".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionAttributes {
    /// Who authorized the session.
    #[serde(default)]
    pub authentic: Authentic,
    /// The User-Name the session was authenticated with.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// Acct-Session-Id: unique per session, kept across control plane
    /// restarts (it is persisted with the lease).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub acct_session_id: String,
    /// Class attributes of the Access-Accept, echoed in accounting
    /// (RFC 2865 5.25).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class: Vec<Vec<u8>>,
    /// Session-Timeout: the session ends this many seconds after it starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_timeout_s: Option<u32>,
    /// Idle-Timeout: the session ends after this many seconds without
    /// traffic in either direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_s: Option<u32>,
    /// Acct-Interim-Interval: seconds between Interim-Updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interim_interval_s: Option<u32>,
    /// Filter-Id: the name of the user plane ACL the session gets (both
    /// PDRs activate it as a predefined rule); changed live by CoA or REST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_id: Option<String>,
    /// Framed-IPv6-Prefix (RFC 3162), as `addr/len`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framed_ipv6_prefix: Option<String>,
    /// Delegated-IPv6-Prefix (RFC 4818), as `addr/len`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegated_ipv6_prefix: Option<String>,
}

/// A fresh Acct-Session-Id: 16 upper-case hex digits, random (so unique
/// across restarts and control planes without coordination).
pub fn new_acct_session_id() -> String {
    let r = vbng_aaa::radius::crypto::random_authenticator().unwrap_or_else(|_| {
        // No entropy source: fall back on time and a counter, still unique
        // within this process.
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut a = [0u8; 16];
        a[..8].copy_from_slice(&t.to_be_bytes());
        a[8..].copy_from_slice(&N.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        a
    });
    r[..8].iter().map(|b| format!("{b:02X}")).collect()
}

/// An IPv6 prefix attribute value (RFC 3162 2.3: reserved, prefix length,
/// up to 16 prefix octets) as `addr/len`; `None` if malformed.
pub fn ipv6_prefix_text(value: &[u8]) -> Option<String> {
    let [_, len, prefix @ ..] = value else {
        return None;
    };
    if *len > 128 || prefix.len() > 16 || prefix.len() * 8 < usize::from(*len) {
        return None;
    }
    let mut octets = [0u8; 16];
    octets[..prefix.len()].copy_from_slice(prefix);
    Some(format!("{}/{len}", std::net::Ipv6Addr::from(octets)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_prefixes_decode_and_malformed_are_refused() {
        assert_eq!(
            ipv6_prefix_text(&[0, 64, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0]).as_deref(),
            Some("2001:db8:1::/64")
        );
        assert_eq!(
            ipv6_prefix_text(&[0, 56, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0x10]).as_deref(),
            Some("2001:db8:0:1000::/56")
        );
        assert_eq!(ipv6_prefix_text(&[0, 64, 0x20]), None);
        assert_eq!(ipv6_prefix_text(&[0, 129]), None);
        assert_eq!(ipv6_prefix_text(&[0]), None);
    }

    #[test]
    fn session_ids_are_distinct_hex() {
        let a = new_acct_session_id();
        let b = new_acct_session_id();
        assert_eq!(a.len(), 16);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
