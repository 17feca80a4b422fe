//! JSON types of the REST API, also decoded by `vbngctl`.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::cups::Usage;

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
