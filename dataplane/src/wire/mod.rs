//! Wire formats: zero-copy header views and owned `Repr`s.
//!
//! Every protocol lives in its own file. Each offers:
//! - a `#[repr(C)]` zerocopy header struct (`ethernet::Header`, `ipv4::Header`, ...) that is
//!   borrowed from a byte slice with `Header::parse` / `Header::parse_mut` (read and in-place
//!   write, no copies, never panics);
//! - a `Repr` (owned, high level) with `parse(&[u8])`, `buffer_len()` and `emit(&mut [u8])`.
//!   `emit` writes exactly `buffer_len()` bytes at the start of the buffer and panics only if
//!   the buffer is shorter than `buffer_len()` (a programming error, never an input error).
//!
//! Multi-byte fields are big-endian on the wire (`zerocopy::network_endian`).

#![forbid(unsafe_code)]

use core::fmt;
use core::str::FromStr;

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod frame;
pub mod gtpu;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod pppoe;
pub mod tcp;
pub mod udp;
pub mod vlan;

pub use arp::{ArpOperation, ArpRepr};
pub use ethernet::EthernetRepr;
pub use frame::L2Header;
pub use gtpu::GtpuRepr;
pub use icmpv4::Icmpv4Repr;
pub use ipv4::{IpProtocol, Ipv4Repr};
pub use tcp::TcpRepr;
pub use udp::UdpRepr;
pub use vlan::VlanRepr;

/// Errors from parsing or building wire formats. Small and `Copy` so that per-packet code can
/// return it without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the header or the length field it carries.
    #[error("truncated: expected at least {expected} bytes, found {found}")]
    Truncated {
        /// Bytes needed.
        expected: usize,
        /// Bytes available.
        found: usize,
    },
    /// A field holds a value the format forbids (bad version, length smaller than the header...).
    #[error("malformed {what}")]
    Malformed {
        /// The field or rule that was violated.
        what: &'static str,
    },
    /// A checksum did not verify.
    #[error("bad checksum in {what}")]
    Checksum {
        /// Which checksum.
        what: &'static str,
    },
    /// Valid on the wire but not handled here (IPv4 options in a Repr, three VLAN tags...).
    #[error("unsupported {what}")]
    Unsupported {
        /// What is not supported.
        what: &'static str,
    },
    /// The data does not fit in the destination buffer.
    #[error("buffer too small: need {needed} bytes, capacity {capacity}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        capacity: usize,
    },
}

/// Result alias for wire parsing.
pub type Result<T> = core::result::Result<T, Error>;

/// Returns `Err(Truncated)` unless `buf` holds at least `len` bytes.
#[inline]
pub(crate) fn check_len(buf: &[u8], len: usize) -> Result<()> {
    if buf.len() < len {
        Err(Error::Truncated {
            expected: len,
            found: buf.len(),
        })
    } else {
        Ok(())
    }
}

/// A 48-bit IEEE 802 MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);
    /// 00:00:00:00:00:00 (also the "unknown" target hardware address in ARP requests).
    pub const ZERO: EthernetAddress = EthernetAddress([0; 6]);

    /// Builds an address from the first six bytes of `data` (`None` if shorter).
    pub fn from_bytes(data: &[u8]) -> Option<Self> {
        let b: [u8; 6] = data.get(..6)?.try_into().ok()?;
        Some(EthernetAddress(b))
    }

    /// The six address bytes.
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// True for ff:ff:ff:ff:ff:ff.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// True if the I/G bit is set (multicast, including broadcast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// True for a unicast address (I/G bit clear).
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// The address as the low 48 bits of a `u64` (first byte most significant).
    #[inline]
    pub const fn to_u64(&self) -> u64 {
        let b = self.0;
        u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Error from parsing an [`EthernetAddress`] from text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address: expected six hex octets separated by ':' or '-' (aa:bb:cc:dd:ee:ff)")]
pub struct ParseEthernetAddressError;

impl FromStr for EthernetAddress {
    type Err = ParseEthernetAddressError;

    /// Parses `aa:bb:cc:dd:ee:ff` (also accepts `-` as separator, any hex case).
    fn from_str(s: &str) -> core::result::Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in out.iter_mut() {
            let part = parts.next().ok_or(ParseEthernetAddressError)?;
            if part.is_empty() || part.len() > 2 {
                return Err(ParseEthernetAddressError);
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| ParseEthernetAddressError)?;
        }
        if parts.next().is_some() {
            return Err(ParseEthernetAddressError);
        }
        Ok(EthernetAddress(out))
    }
}

/// Defines a `u16`/`u8` code point enum with an `Unknown(n)` catch-all and lossless conversions.
macro_rules! enum_with_unknown {
    (
        $(#[$enum_attr:meta])*
        pub enum $name:ident($ty:ty) {
            $( $(#[$variant_attr:meta])* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $(#[$enum_attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$variant_attr])* $variant, )+
            /// A value without a named variant.
            Unknown($ty),
        }

        impl From<$ty> for $name {
            #[inline]
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $ty {
            #[inline]
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}
pub(crate) use enum_with_unknown;

enum_with_unknown! {
    /// EtherType / TPID values (IEEE 802.3 Length/Type field).
    pub enum EtherType(u16) {
        /// Internet Protocol version 4.
        Ipv4 = 0x0800,
        /// Address Resolution Protocol.
        Arp = 0x0806,
        /// IEEE 802.1Q customer VLAN tag (C-TAG).
        Vlan = 0x8100,
        /// IEEE 802.1ad service VLAN tag (S-TAG, QinQ).
        QinQ = 0x88a8,
        /// Internet Protocol version 6.
        Ipv6 = 0x86dd,
        /// PPPoE discovery stage (RFC 2516).
        PppoeDiscovery = 0x8863,
        /// PPPoE session stage (RFC 2516).
        PppoeSession = 0x8864,
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EtherType::Unknown(v) => write!(f, "0x{v:04x}"),
            other => fmt::Debug::fmt(other, f),
        }
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use alloc::vec::Vec;

    /// Decodes hex, ignoring whitespace. Panics on bad input (tests only).
    pub fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s
            .bytes()
            .filter(|b| !b.is_ascii_whitespace())
            .map(|b| match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => panic!("bad hex digit {b}"),
            })
            .collect();
        assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
        digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use proptest::prelude::*;

    #[test]
    fn mac_display_and_parse() {
        let mac: EthernetAddress = "02:00:5E:00:01:01".parse().unwrap();
        assert_eq!(mac, EthernetAddress([0x02, 0, 0x5e, 0, 1, 1]));
        assert_eq!(mac.to_string(), "02:00:5e:00:01:01");
        assert!(mac.is_unicast());
        assert!(EthernetAddress::BROADCAST.is_broadcast());
        assert!(EthernetAddress([0x01, 0, 0x5e, 0, 0, 1]).is_multicast());
        assert!("02:00:5e:00:01".parse::<EthernetAddress>().is_err());
        assert!("02:00:5e:00:01:01:01".parse::<EthernetAddress>().is_err());
        assert!("02:00:5e:00:01:zz".parse::<EthernetAddress>().is_err());
        assert!("".parse::<EthernetAddress>().is_err());
    }

    #[test]
    fn ethertype_codes() {
        assert_eq!(EtherType::from(0x0800), EtherType::Ipv4);
        assert_eq!(EtherType::from(0x88a8), EtherType::QinQ);
        assert_eq!(u16::from(EtherType::PppoeSession), 0x8864);
        assert_eq!(EtherType::from(0x1234), EtherType::Unknown(0x1234));
        assert_eq!(EtherType::Unknown(0x1234).to_string(), "0x1234");
    }

    proptest! {
        #[test]
        fn mac_text_round_trip(b in any::<[u8; 6]>()) {
            let mac = EthernetAddress(b);
            prop_assert_eq!(mac.to_string().parse::<EthernetAddress>().unwrap(), mac);
        }

        #[test]
        fn ethertype_round_trip(v in any::<u16>()) {
            prop_assert_eq!(u16::from(EtherType::from(v)), v);
        }
    }
}
