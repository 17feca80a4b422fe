//! JSON types of the REST API, also decoded by `vbngctl`.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Deserializer, Serialize};
use vbng_cups::pfcp::ie::rules::MBR_MAX_KBPS;

use crate::aaa::Rate;
use crate::cups::Usage;
use crate::session::SessionChange;

/// One subscriber session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    /// Session id (also the CP SEID).
    pub id: u64,
    /// User plane name.
    pub user_plane: String,
    /// Access port index on the user plane.
    pub port: u8,
    /// Outer VLAN id, 0 if none.
    pub svlan: u16,
    /// Inner VLAN id, 0 if none.
    pub cvlan: u16,
    /// Client MAC, "aa:bb:cc:dd:ee:ff".
    pub mac: String,
    /// Leased IPv4 address.
    pub ipv4: Ipv4Addr,
    /// Option 82 circuit-id (lossy UTF-8).
    pub circuit_id: Option<String>,
    /// Option 82 remote-id (lossy UTF-8).
    pub remote_id: Option<String>,
    /// `establishing`, `active`, `user_plane_down` or `deleting`.
    pub state: String,
    /// Start, Unix seconds.
    pub started: u64,
    /// Lease expiry, Unix seconds.
    pub lease_expires: u64,
    /// CP SEID.
    pub cp_seid: u64,
    /// UP SEID, once established.
    pub up_seid: Option<u64>,
    /// Last usage report.
    pub last_usage: Option<UsageView>,
    /// Peak rates programmed on the user plane (the QER MBR); `null` when
    /// unlimited. From the subscriber file at establishment, changed live
    /// by `PATCH /sessions/{id}`.
    #[serde(default)]
    pub rate: Option<RateView>,
    /// What AAA gave the session.
    #[serde(default)]
    pub aaa: Option<AaaView>,
    /// PPPoE session id of a PPPoE subscriber; `null` for IPoE.
    #[serde(default)]
    pub pppoe_session_id: Option<u16>,
    /// IPv6 of a PPPoE session whose IPv6CP opened; `null` otherwise.
    #[serde(default)]
    pub ipv6: Option<Ipv6View>,
}

/// The IPv6 side of a PPPoE session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv6View {
    /// Our link-local address (fe80:: plus our IPv6CP interface identifier).
    pub link_local: Ipv6Addr,
    /// The subscriber's link-local address (its IPv6CP identifier).
    pub peer_link_local: Ipv6Addr,
    /// The /64 advertised to the session, `addr/len`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// The DHCPv6 IA_NA address bound.
    #[serde(default)]
    pub address: Option<Ipv6Addr>,
    /// The DHCPv6 IA_PD prefix bound, `addr/len`.
    #[serde(default)]
    pub delegated_prefix: Option<String>,
}

/// The AAA attributes of a session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AaaView {
    /// `local` (subscriber file) or `radius`.
    pub authentic: String,
    /// User-Name.
    pub username: String,
    /// Acct-Session-Id (RADIUS only).
    #[serde(default)]
    pub acct_session_id: Option<String>,
    /// Session-Timeout, seconds.
    #[serde(default)]
    pub session_timeout_s: Option<u32>,
    /// Idle-Timeout, seconds.
    #[serde(default)]
    pub idle_timeout_s: Option<u32>,
    /// Acct-Interim-Interval, seconds.
    #[serde(default)]
    pub interim_interval_s: Option<u32>,
    /// Filter-Id.
    #[serde(default)]
    pub filter_id: Option<String>,
    /// Framed-IPv6-Prefix.
    #[serde(default)]
    pub framed_ipv6_prefix: Option<String>,
    /// Delegated-IPv6-Prefix.
    #[serde(default)]
    pub delegated_ipv6_prefix: Option<String>,
}

impl From<&crate::aaa::SessionAttributes> for AaaView {
    fn from(a: &crate::aaa::SessionAttributes) -> Self {
        AaaView {
            authentic: match a.authentic {
                crate::aaa::Authentic::Local => "local".into(),
                crate::aaa::Authentic::Radius => "radius".into(),
            },
            username: a.username.clone(),
            acct_session_id: (!a.acct_session_id.is_empty()).then(|| a.acct_session_id.clone()),
            session_timeout_s: a.session_timeout_s,
            idle_timeout_s: a.idle_timeout_s,
            interim_interval_s: a.interim_interval_s,
            filter_id: a.filter_id.clone(),
            framed_ipv6_prefix: a.framed_ipv6_prefix.clone(),
            delegated_ipv6_prefix: a.delegated_ipv6_prefix.clone(),
        }
    }
}

/// Peak rates of one session, kbit/s (bit/s = kbit/s * 1000, on the IPv4
/// packet). A 0 means no limit in that direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateView {
    /// Uplink (subscriber -> core) rate, kbit/s.
    pub up_kbps: u64,
    /// Downlink (core -> subscriber) rate, kbit/s.
    pub down_kbps: u64,
}

impl From<Rate> for RateView {
    fn from(r: Rate) -> Self {
        RateView {
            up_kbps: r.up_kbps,
            down_kbps: r.down_kbps,
        }
    }
}

impl From<RateView> for Rate {
    fn from(r: RateView) -> Self {
        Rate {
            up_kbps: r.up_kbps,
            down_kbps: r.down_kbps,
        }
    }
}

/// Body of `PATCH /sessions/{id}`: what to change live, at least one of
/// - `"rate": {"up_kbps": N, "down_kbps": N}` sets the peak rates,
///   `"rate": null` lifts the limit;
/// - `"filter_id": "name"` gives the session the user plane ACL `name`,
///   `"filter_id": null` removes its ACL.
///
/// A key left out is left unchanged (an empty object is refused rather
/// than read as "change nothing").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionPatch {
    /// The new rate: `Some(None)` (JSON `null`) for unlimited, `None`
    /// (key absent) to keep the current one.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub rate: Option<Option<RateView>>,
    /// The new ACL name: `Some(None)` (JSON `null`) for no ACL, `None`
    /// (key absent) to keep the current one.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub filter_id: Option<Option<String>>,
}

/// A key that is present, its value possibly `null`: serde alone reads a
/// `null` as absent.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl SessionPatch {
    /// Parse and check a PATCH body; the error is one line saying what was
    /// expected and what was wrong. A rate of 0/0 is read as unlimited.
    pub fn parse(body: &[u8]) -> Result<SessionChange, String> {
        const EXPECTED: &str = r#"expected {"rate": {"up_kbps": N, "down_kbps": N} or null, "filter_id": "name" or null} with at least one key"#;
        let patch: SessionPatch =
            serde_json::from_slice(body).map_err(|e| format!("bad PATCH body: {e}; {EXPECTED}"))?;
        if patch.rate.is_none() && patch.filter_id.is_none() {
            return Err(format!("bad PATCH body: nothing to change; {EXPECTED}"));
        }
        if let Some(Some(r)) = patch.rate {
            for (key, v) in [("up_kbps", r.up_kbps), ("down_kbps", r.down_kbps)] {
                if v > MBR_MAX_KBPS {
                    return Err(format!(
                        "bad PATCH body: rate.{key} = {v} exceeds the PFCP MBR maximum of \
                         {MBR_MAX_KBPS} kbit/s; use 0 or null for no limit"
                    ));
                }
            }
        }
        if patch.filter_id == Some(Some(String::new())) {
            return Err(
                "bad PATCH body: filter_id is \"\"; expected an ACL name, or null for no ACL"
                    .into(),
            );
        }
        Ok(SessionChange {
            rate: patch.rate.map(|r| {
                r.filter(|r| r.up_kbps != 0 || r.down_kbps != 0)
                    .map(Rate::from)
            }),
            filter_id: patch.filter_id,
        })
    }
}

/// Traffic volume of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageView {
    /// Uplink bytes.
    pub ul_bytes: u64,
    /// Downlink bytes.
    pub dl_bytes: u64,
    /// Uplink packets.
    pub ul_packets: u64,
    /// Downlink packets.
    pub dl_packets: u64,
}

impl From<Usage> for UsageView {
    fn from(u: Usage) -> Self {
        UsageView {
            ul_bytes: u.ul_bytes,
            dl_bytes: u.dl_bytes,
            ul_packets: u.ul_packets,
            dl_packets: u.dl_packets,
        }
    }
}

/// One user plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserPlaneView {
    /// Configured name.
    pub name: String,
    /// PFCP address.
    pub pfcp: String,
    /// `associating`, `up` or `down`.
    pub state: String,
    /// The UP's recovery time stamp (NTP seconds), once associated.
    pub recovery_timestamp: Option<u32>,
    /// Seconds since the last heartbeat exchange with the UP.
    pub last_heartbeat_age_s: Option<f64>,
    /// Sessions on this user plane.
    pub sessions: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_bodies() {
        let rate = |up, down| SessionChange {
            rate: Some(Some(Rate {
                up_kbps: up,
                down_kbps: down,
            })),
            filter_id: None,
        };
        let unlimited = SessionChange {
            rate: Some(None),
            filter_id: None,
        };
        let filter = |f: Option<&str>| SessionChange {
            rate: None,
            filter_id: Some(f.map(str::to_string)),
        };
        assert_eq!(
            SessionPatch::parse(br#"{"rate": {"up_kbps": 20000, "down_kbps": 100000}}"#),
            Ok(rate(20_000, 100_000))
        );
        assert_eq!(SessionPatch::parse(br#"{"rate": null}"#), Ok(unlimited));
        assert_eq!(
            SessionPatch::parse(br#"{"rate": {"up_kbps": 0, "down_kbps": 0}}"#),
            Ok(SessionChange {
                rate: Some(None),
                filter_id: None
            })
        );
        assert_eq!(
            SessionPatch::parse(br#"{"rate": {"up_kbps": 0, "down_kbps": 5000}}"#),
            Ok(rate(0, 5000))
        );
        assert_eq!(
            SessionPatch::parse(br#"{"filter_id": "web-only"}"#),
            Ok(filter(Some("web-only")))
        );
        assert_eq!(
            SessionPatch::parse(br#"{"filter_id": null}"#),
            Ok(filter(None))
        );
        assert_eq!(
            SessionPatch::parse(br#"{"rate": null, "filter_id": "block-smtp"}"#),
            Ok(SessionChange {
                rate: Some(None),
                filter_id: Some(Some("block-smtp".into()))
            })
        );
        for bad in [
            &b"{"[..],
            b"",
            b"{}",
            br#"{"rate": {"up_kbps": 1}}"#,
            br#"{"rate": {"up_kbps": -1, "down_kbps": 1}}"#,
            br#"{"rate": {"up_kbps": 1, "down_kbps": 1, "burst": 3}}"#,
            br#"{"rate": null, "gate": "closed"}"#,
            br#"{"rate": {"up_kbps": 1099511627776, "down_kbps": 1}}"#,
            br#"{"filter_id": ""}"#,
            br#"{"filter_id": 7}"#,
            br#"[1]"#,
        ] {
            let e = SessionPatch::parse(bad).unwrap_err();
            assert!(e.starts_with("bad PATCH body: "), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
        assert!(
            SessionPatch::parse(b"{}")
                .unwrap_err()
                .contains("nothing to change")
        );
        // vbngctl sends what the service reads.
        let body = serde_json::to_vec(&SessionPatch {
            rate: Some(None),
            filter_id: None,
        })
        .unwrap();
        assert_eq!(body, br#"{"rate":null}"#);
        let body = serde_json::to_vec(&SessionPatch {
            rate: None,
            filter_id: Some(None),
        })
        .unwrap();
        assert_eq!(body, br#"{"filter_id":null}"#);
        assert_eq!(SessionPatch::parse(&body), Ok(filter(None)));
    }
}
