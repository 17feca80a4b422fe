//! IPv6 on PPP sessions: prefixes, packets and router advertisements.
//!
//! - [`packet`]: the IPv6 header, UDP and ICMPv6 with their pseudo-header
//!   checksums (RFC 8200 section 8.1), parsed and emitted.
//! - [`ra`]: [`ra::RouterAdvertiser`], one PPP session's router: Router
//!   Advertisements (RFC 4861) unsolicited and on Router Solicitation, and
//!   Neighbor Advertisements for its own link-local address.
//!
//! The DHCPv6 server that hands out addresses and delegated prefixes on the
//! same link is [`crate::dhcpv6`].

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub mod packet;
pub mod ra;

/// An IPv6 prefix: an address with its host bits zero and a length 0..=128.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv6Prefix {
    addr: Ipv6Addr,
    len: u8,
}

/// Why a text or an address/length pair is not an IPv6 prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// No `/` between address and length.
    #[error("expected ADDRESS/LENGTH such as 2001:db8::/48, found {0:?}")]
    Syntax(String),
    /// The address part does not parse.
    #[error("expected an IPv6 address before the /, found {0:?}")]
    Address(String),
    /// The length is not a number in 0..=128.
    #[error("expected a prefix length in 0..=128, found {0:?}")]
    Length(String),
    /// Bits beyond the length are set.
    #[error("expected the host bits of {addr}/{len} to be zero (the prefix is {expected}/{len})")]
    HostBits {
        /// The address as given.
        addr: Ipv6Addr,
        /// The length.
        len: u8,
        /// The address with its host bits cleared.
        expected: Ipv6Addr,
    },
}

fn mask(len: u8) -> u128 {
    match len {
        0 => 0,
        l if l >= 128 => u128::MAX,
        l => u128::MAX << (128 - u32::from(l)),
    }
}

impl Ipv6Prefix {
    /// The prefix `addr/len`; the host bits of `addr` must be zero.
    pub fn new(addr: Ipv6Addr, len: u8) -> Result<Self, PrefixError> {
        if len > 128 {
            return Err(PrefixError::Length(len.to_string()));
        }
        let bits = u128::from(addr);
        if bits & !mask(len) != 0 {
            return Err(PrefixError::HostBits {
                addr,
                len,
                expected: Ipv6Addr::from(bits & mask(len)),
            });
        }
        Ok(Ipv6Prefix { addr, len })
    }

    /// The prefix of length `len` that contains `addr` (host bits cleared).
    pub fn containing(addr: Ipv6Addr, len: u8) -> Self {
        let len = len.min(128);
        Ipv6Prefix {
            addr: Ipv6Addr::from(u128::from(addr) & mask(len)),
            len,
        }
    }

    /// The network address (host bits zero).
    pub fn addr(&self) -> Ipv6Addr {
        self.addr
    }

    /// The prefix length.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// True for `::/0`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `addr` lies inside the prefix.
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        u128::from(addr) & mask(self.len) == u128::from(self.addr)
    }

    /// Whether `other` lies entirely inside this prefix.
    pub fn covers(&self, other: &Ipv6Prefix) -> bool {
        other.len >= self.len && self.contains(other.addr)
    }

    /// Whether the two prefixes share any address.
    pub fn overlaps(&self, other: &Ipv6Prefix) -> bool {
        self.covers(other) || other.covers(self)
    }

    /// How many prefixes of length `sub_len` this one holds (saturating at
    /// `u128::MAX`); 0 if `sub_len` is shorter than the prefix.
    pub fn subprefix_count(&self, sub_len: u8) -> u128 {
        if sub_len < self.len || sub_len > 128 {
            return 0;
        }
        let bits = u32::from(sub_len - self.len);
        if bits >= 128 {
            u128::MAX
        } else {
            1u128 << bits
        }
    }

    /// The `index`th prefix of length `sub_len` inside this one, if it exists.
    pub fn subprefix(&self, index: u128, sub_len: u8) -> Option<Ipv6Prefix> {
        if index >= self.subprefix_count(sub_len) {
            return None;
        }
        let shift = 128 - u32::from(sub_len);
        let offset = if shift >= 128 { 0 } else { index << shift };
        Some(Ipv6Prefix {
            addr: Ipv6Addr::from(u128::from(self.addr) | offset),
            len: sub_len,
        })
    }

    /// The index of `sub` among this prefix's sub-prefixes of its length,
    /// if `sub` lies inside.
    pub fn subprefix_index(&self, sub: &Ipv6Prefix) -> Option<u128> {
        if !self.covers(sub) {
            return None;
        }
        let shift = 128 - u32::from(sub.len);
        let rel = u128::from(sub.addr) & !mask(self.len);
        Some(if shift >= 128 { 0 } else { rel >> shift })
    }
}

impl fmt::Display for Ipv6Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Ipv6Prefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| PrefixError::Syntax(s.to_string()))?;
        let addr: Ipv6Addr = addr
            .trim()
            .parse()
            .map_err(|_| PrefixError::Address(addr.to_string()))?;
        let len: u8 = len
            .trim()
            .parse()
            .ok()
            .filter(|l| *l <= 128)
            .ok_or_else(|| PrefixError::Length(len.to_string()))?;
        Ipv6Prefix::new(addr, len)
    }
}

impl Serialize for Ipv6Prefix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv6Prefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The link-local address `fe80::/64` + `interface_id` (RFC 4291 section 2.5.6).
pub fn link_local(interface_id: u64) -> Ipv6Addr {
    Ipv6Addr::from((0xfe80u128 << 112) | u128::from(interface_id))
}

/// The modified EUI-64 interface identifier of a MAC address (RFC 4291
/// appendix A): `ff:fe` in the middle, the universal/local bit inverted.
pub fn eui64_interface_id(mac: [u8; 6]) -> u64 {
    u64::from_be_bytes([
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ])
}

/// All-nodes link-local multicast address `ff02::1`.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// All-routers link-local multicast address `ff02::2`.
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
/// All DHCP relay agents and servers `ff02::1:2` (RFC 8415 section 7.1).
pub const ALL_DHCP_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prefixes_parse_display_and_reject_host_bits() {
        let p: Ipv6Prefix = "2001:db8:100::/48".parse().unwrap();
        assert_eq!(p.to_string(), "2001:db8:100::/48");
        assert_eq!(p.subprefix_count(56), 256);
        assert_eq!(
            p.subprefix(1, 56).unwrap().to_string(),
            "2001:db8:100:100::/56"
        );
        assert_eq!(p.subprefix(256, 56), None);
        assert!(matches!(
            "2001:db8::1/64".parse::<Ipv6Prefix>(),
            Err(PrefixError::HostBits { .. })
        ));
        assert!(matches!(
            "2001:db8::/129".parse::<Ipv6Prefix>(),
            Err(PrefixError::Length(_))
        ));
        assert!(matches!(
            "2001:db8::".parse::<Ipv6Prefix>(),
            Err(PrefixError::Syntax(_))
        ));
        assert!(matches!(
            "x/64".parse::<Ipv6Prefix>(),
            Err(PrefixError::Address(_))
        ));
        let all: Ipv6Prefix = "::/0".parse().unwrap();
        assert_eq!(all.subprefix_count(128), u128::MAX);
        assert!(all.covers(&p) && p.overlaps(&all) && !p.covers(&all));
    }

    #[test]
    fn link_local_and_eui64() {
        let iid = eui64_interface_id([0x02, 0x00, 0x5e, 0x00, 0x01, 0x01]);
        assert_eq!(iid, 0x0000_5eff_fe00_0101);
        assert_eq!(link_local(iid).to_string(), "fe80::5eff:fe00:101");
    }

    proptest! {
        #[test]
        fn subprefix_index_round_trips(bits in any::<u128>(), len in 0u8..=128, extra in 0u8..=16, index in any::<u128>()) {
            let parent = Ipv6Prefix::containing(Ipv6Addr::from(bits), len);
            let sub_len = len.saturating_add(extra).min(128);
            let count = parent.subprefix_count(sub_len);
            let index = if count == 0 { 0 } else { index % count };
            let sub = parent.subprefix(index, sub_len).unwrap();
            prop_assert!(parent.covers(&sub));
            prop_assert_eq!(parent.subprefix_index(&sub), Some(index));
            prop_assert_eq!(sub.to_string().parse::<Ipv6Prefix>().unwrap(), sub);
        }
    }
}
