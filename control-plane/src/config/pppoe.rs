//! `[pppoe]`: the PPPoE access concentrator (discovery limits, PPP timers).
//!
//! ```toml
//! [pppoe]
//! enabled = true
//! ac_name = "vbng"
//! auth = "chap-then-pap"
//! ```

use serde::Deserialize;

/// How PPP users are asked to authenticate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PppAuth {
    /// PAP only.
    Pap,
    /// CHAP-MD5 only.
    Chap,
    /// CHAP-MD5, PAP if the client refuses CHAP.
    #[default]
    ChapThenPap,
}

/// `[pppoe]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PppoeSection {
    /// Serve PPPoE. Default: true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// AC-Name in PADOs. Default: `"vbng"`.
    #[serde(default = "default_ac_name")]
    pub ac_name: String,
    /// Service-Names offered; empty accepts any. Default: empty.
    #[serde(default)]
    pub service_names: Vec<String>,
    /// `"pap"`, `"chap"` or `"chap-then-pap"`. Default: `"chap-then-pap"`.
    #[serde(default)]
    pub auth: PppAuth,
    /// IPv4 MTU of a session (PPP MRU we ask for). Default: 1492.
    #[serde(default = "default_mtu")]
    pub mtu: u16,
    /// Seconds between LCP Echo-Requests. Default: 10.
    #[serde(default = "default_echo_interval_s")]
    pub echo_interval_s: u64,
    /// Unanswered echoes that end a session. Default: 3.
    #[serde(default = "default_echo_failures")]
    pub echo_failures: u32,
    /// PADI per second from one MAC. Default: 5.
    #[serde(default = "default_per_mac")]
    pub padi_per_mac_pps: u32,
    /// PADI per second on one access port. Default: 500.
    #[serde(default = "default_per_port")]
    pub padi_per_port_pps: u32,
    /// PADR per second from one MAC. Default: 5.
    #[serde(default = "default_per_mac")]
    pub padr_per_mac_pps: u32,
    /// Sessions one MAC may hold. Default: 8.
    #[serde(default = "default_max_per_mac")]
    pub max_sessions_per_mac: u32,
    /// Sessions on one port and VLAN pair. Default: 4096.
    #[serde(default = "default_max_per_vlan")]
    pub max_sessions_per_vlan: u32,
}

impl Default for PppoeSection {
    fn default() -> Self {
        PppoeSection {
            enabled: true,
            ac_name: default_ac_name(),
            service_names: Vec::new(),
            auth: PppAuth::default(),
            mtu: default_mtu(),
            echo_interval_s: default_echo_interval_s(),
            echo_failures: default_echo_failures(),
            padi_per_mac_pps: default_per_mac(),
            padi_per_port_pps: default_per_port(),
            padr_per_mac_pps: default_per_mac(),
            max_sessions_per_mac: default_max_per_mac(),
            max_sessions_per_vlan: default_max_per_vlan(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_ac_name() -> String {
    "vbng".into()
}
fn default_mtu() -> u16 {
    1492
}
fn default_echo_interval_s() -> u64 {
    10
}
fn default_echo_failures() -> u32 {
    3
}
fn default_per_mac() -> u32 {
    5
}
fn default_per_port() -> u32 {
    500
}
fn default_max_per_mac() -> u32 {
    8
}
fn default_max_per_vlan() -> u32 {
    4096
}
