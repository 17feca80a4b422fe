//! `vbng-cp`: the control plane of vbng, and the library behind `vbngctl`.
//!
//! The control plane programs user planes (`vbng-up`) over PFCP, serves
//! DHCPv4 to IPoE subscribers whose control frames the user planes redirect
//! to it in GTP-U, authorizes them from the local subscriber file, and
//! exposes sessions and user planes over a REST API with Prometheus metrics.
//!
//! # Module map
//!
//! - [`config`]: TOML config with documented defaults, `vbng-cp` flags,
//!   one-line errors naming file, key and fix.
//! - [`aaa`]: AAA; [`aaa::local`] is the local subscriber file.
//! - [`cups`]: PFCP client side: one task per user plane (association,
//!   heartbeats, loss and restart detection, T1/N1 retransmission) and the
//!   [`cups::UpHandle`] that establishes/deletes subscriber sessions.
//! - [`redirect`]: the GTP-U redirect socket: ARP responder for pool
//!   gateways, DHCP glue to `vbng_access`, per-MAC rate limiting.
//! - [`session`]: the session registry and the task turning lease events
//!   into PFCP session programming; it sends a lease's DHCPACK only once the
//!   user plane accepted the session.
//! - [`api`]: REST API (axum) and `/metrics`; JSON view types shared with
//!   `vbngctl`.
//! - [`metrics`]: the Prometheus metrics.
//! - [`ctl`]: `vbngctl` table rendering.
//! - [`service`]: wiring everything into the running `vbng-cp`.
//! - [`lab`]: the namespace lab demo (`vbngctl demo`).
// Only the lab (namespaces, raw sockets, signals via libc) needs unsafe;
// every block there carries a SAFETY comment.
#![deny(unsafe_code)]

pub mod aaa;
pub mod api;
pub mod config;
pub mod ctl;
pub mod cups;
pub mod ipv6;
#[allow(unsafe_code)]
pub mod lab;
pub mod metrics;
pub mod pppoe;
pub mod redirect;
pub mod service;
pub mod session;

use vbng_dataplane::wire::EthernetAddress;

/// PFCP UDP port (TS 29.244 section 4.2).
pub const PFCP_PORT: u16 = 8805;
/// GTP-U UDP port (TS 29.281 section 4.4.2).
pub const GTPU_PORT: u16 = 2152;

/// Parse "aa:bb:cc:dd:ee:ff" (or with `-`); the error says what was found.
pub fn parse_mac(s: &str) -> Result<EthernetAddress, String> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    let bad = || format!("expected a MAC address like 02:00:5e:00:01:01, found {s:?}");
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(parts) {
        if p.len() != 2 {
            return Err(bad());
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(EthernetAddress(mac))
}

/// Milliseconds on a monotonic clock shared by the service's tasks.
pub fn monotonic_ms() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parse() {
        assert_eq!(
            parse_mac("02:00:5e:00:01:01").unwrap().0,
            [2, 0, 0x5e, 0, 1, 1]
        );
        assert_eq!(
            parse_mac("02-00-5E-00-01-0a").unwrap().0,
            [2, 0, 0x5e, 0, 1, 10]
        );
        assert!(parse_mac("02:00:5e:00:01").is_err());
        assert!(parse_mac("02:00:5e:00:01:1").is_err());
        assert!(parse_mac("zz:00:5e:00:01:01").is_err());
    }
}
