//! [`NatConfig`]: outside pool, port blocks, table sizes and timeouts, with validation that
//! names the offending key and the fix in one line.

use alloc::vec::Vec;
use core::fmt;
use core::net::Ipv4Addr;
use core::str::FromStr;

/// Most outside addresses one worker's pool may hold.
pub const MAX_POOL_ADDRESSES: u64 = 1 << 20;
/// Most mappings one worker may be configured for.
pub const MAX_MAPPINGS: u32 = 1 << 26;
/// Most subscribers one worker may be configured for.
pub const MAX_SUBSCRIBERS: u32 = 1 << 22;
/// Most blocks one subscriber may hold.
pub const MAX_BLOCKS_PER_SUBSCRIBER: u16 = 64;
/// Largest fragment table.
pub const MAX_FRAGMENT_SLOTS: u32 = 1 << 16;

/// An IPv4 prefix, written `198.51.100.0/24` (a bare address means `/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Prefix {
    /// Network address.
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub len: u8,
}

impl Ipv4Prefix {
    /// The prefix `addr/len`.
    pub const fn new(addr: Ipv4Addr, len: u8) -> Self {
        Ipv4Prefix { addr, len }
    }

    /// The network mask as a `u32` (`len` above 32 counts as 32).
    pub const fn mask(&self) -> u32 {
        if self.len == 0 {
            0
        } else if self.len >= 32 {
            u32::MAX
        } else {
            u32::MAX << (32 - self.len)
        }
    }

    /// The prefix with its host bits cleared.
    pub const fn network(&self) -> Ipv4Prefix {
        Ipv4Prefix {
            addr: Ipv4Addr::from_bits(self.addr.to_bits() & self.mask()),
            len: self.len,
        }
    }

    /// Number of addresses (2^(32 - len)).
    pub const fn size(&self) -> u64 {
        let len = if self.len > 32 { 32 } else { self.len };
        1u64 << (32 - len)
    }

    /// First and last address as `u32`.
    pub const fn range(&self) -> (u32, u32) {
        let first = self.addr.to_bits() & self.mask();
        (first, first | !self.mask())
    }

    /// True if `ip` is inside the prefix.
    pub const fn contains(&self, ip: Ipv4Addr) -> bool {
        ip.to_bits() & self.mask() == self.addr.to_bits() & self.mask()
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Error from parsing an [`Ipv4Prefix`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid IPv4 prefix: expected an address and a length 0-32, such as 198.51.100.0/24")]
pub struct ParsePrefixError;

impl FromStr for Ipv4Prefix {
    type Err = ParsePrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: Ipv4Addr = a.trim().parse().map_err(|_| ParsePrefixError)?;
        let len = match l {
            Some(l) => l.trim().parse::<u8>().map_err(|_| ParsePrefixError)?,
            None => 32,
        };
        if len > 32 {
            return Err(ParsePrefixError);
        }
        Ok(Ipv4Prefix { addr, len })
    }
}

/// Idle timeouts in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NatTimeouts {
    /// UDP mapping timeout. Default 300; at least 120 (RFC 4787 REQ-5).
    pub udp_s: u32,
    /// TCP mapping timeout after SYNs in both directions. Default 7440 (2 h 4 min); at least
    /// 7440 (RFC 5382 REQ-5).
    pub tcp_established_s: u32,
    /// TCP mapping timeout before the handshake completed, after a FIN in each direction or
    /// after a RST. Default 240; at least 240 (RFC 5382 REQ-5).
    pub tcp_transitory_s: u32,
    /// ICMP query mapping timeout. Default 60; at least 60 (RFC 5508 REQ-1).
    pub icmp_s: u32,
}

impl NatTimeouts {
    /// Smallest UDP timeout allowed (RFC 4787 REQ-5).
    pub const MIN_UDP_S: u32 = 120;
    /// Smallest established TCP timeout allowed (RFC 5382 REQ-5).
    pub const MIN_TCP_ESTABLISHED_S: u32 = 7440;
    /// Smallest transitory TCP timeout allowed (RFC 5382 REQ-5).
    pub const MIN_TCP_TRANSITORY_S: u32 = 240;
    /// Smallest ICMP query timeout allowed (RFC 5508 REQ-1).
    pub const MIN_ICMP_S: u32 = 60;
}

impl Default for NatTimeouts {
    fn default() -> Self {
        NatTimeouts {
            udp_s: 300,
            tcp_established_s: 7440,
            tcp_transitory_s: 240,
            icmp_s: 60,
        }
    }
}

/// Configuration of one worker's NAT. Keys are named as under a `[nat]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatConfig {
    /// Outside address prefixes. Every address of every prefix is used (they are routed to
    /// the user plane, not on a link). No default: at least one is required.
    pub pool: Vec<Ipv4Prefix>,
    /// First outside port given out. Default 1024.
    pub port_first: u16,
    /// Last outside port given out. Default 65535.
    pub port_last: u16,
    /// Ports per block. Default 512. Ports left over at the end of the range (when the range
    /// is not a multiple of the block size) are not used.
    pub block_size: u16,
    /// Most blocks one subscriber holds, all on the same outside address. Default 4; at most
    /// 64 and at most the number of blocks per address.
    pub blocks_per_subscriber: u16,
    /// Most mappings (all protocols) of this worker. Default 262144.
    pub max_mappings: u32,
    /// Most subscribers holding blocks at once on this worker. Default 16384.
    pub max_subscribers: u32,
    /// Idle timeouts.
    pub timeouts: NatTimeouts,
    /// Seconds a block without mappings is kept for its subscriber before it is released.
    /// Default 120.
    pub block_idle_s: u32,
    /// Capacity of the port-block log queue (events waiting for the host). Default 4096.
    pub log_queue_len: u32,
    /// Entries of the inbound fragment table: 0 (non-first inbound fragments are dropped) or
    /// a power of two up to 65536. Default 1024.
    pub fragment_slots: u32,
}

impl Default for NatConfig {
    fn default() -> Self {
        NatConfig {
            pool: Vec::new(),
            port_first: 1024,
            port_last: 65535,
            block_size: 512,
            blocks_per_subscriber: 4,
            max_mappings: 262_144,
            max_subscribers: 16_384,
            timeouts: NatTimeouts::default(),
            block_idle_s: 120,
            log_queue_len: 4096,
            fragment_slots: 1024,
        }
    }
}

/// Why a [`NatConfig`] was refused. Each message names the key and how to fix it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NatConfigError {
    /// No prefix in the pool.
    #[error("nat.pool is empty: add at least one outside prefix, such as \"198.51.100.0/24\"")]
    EmptyPool,
    /// A prefix longer than 32 bits.
    #[error("nat.pool[{index}]: prefix length {len} is longer than 32")]
    PrefixLength {
        /// Position in the pool.
        index: usize,
        /// The length given.
        len: u8,
    },
    /// A prefix with host bits set.
    #[error("nat.pool[{index}] = \"{prefix}\" has host bits set: write \"{network}\"")]
    HostBits {
        /// Position in the pool.
        index: usize,
        /// The prefix given.
        prefix: Ipv4Prefix,
        /// The same prefix without host bits.
        network: Ipv4Prefix,
    },
    /// Two prefixes share addresses.
    #[error(
        "nat.pool[{second}] = \"{second_prefix}\" overlaps nat.pool[{first}] = \"{first_prefix}\": list every address once"
    )]
    Overlap {
        /// Position of the earlier prefix.
        first: usize,
        /// The earlier prefix.
        first_prefix: Ipv4Prefix,
        /// Position of the later prefix.
        second: usize,
        /// The later prefix.
        second_prefix: Ipv4Prefix,
    },
    /// More addresses than one worker supports.
    #[error(
        "nat.pool holds {addresses} addresses, more than the {MAX_POOL_ADDRESSES} one worker supports: use shorter prefixes"
    )]
    PoolTooLarge {
        /// Addresses configured.
        addresses: u64,
    },
    /// An empty port range, or one that includes port 0.
    #[error(
        "nat.port_first = {first}, nat.port_last = {last}: expected 1 <= port_first <= port_last (default 1024-65535)"
    )]
    PortRange {
        /// `port_first`.
        first: u16,
        /// `port_last`.
        last: u16,
    },
    /// A block size of 0 or larger than the port range.
    #[error(
        "nat.block_size = {block_size}: expected 1 to {range}, the size of the port range (default 512)"
    )]
    BlockSize {
        /// The block size given.
        block_size: u16,
        /// Ports in the range.
        range: u32,
    },
    /// Blocks per subscriber out of range.
    #[error(
        "nat.blocks_per_subscriber = {value}: expected 1 to {max} (at most 64 and at most the {per_address} blocks of one address; default 4)"
    )]
    BlocksPerSubscriber {
        /// The value given.
        value: u16,
        /// The largest value allowed.
        max: u32,
        /// Blocks per outside address with this port range and block size.
        per_address: u32,
    },
    /// `max_mappings` out of range.
    #[error("nat.max_mappings = {value}: expected 1 to {MAX_MAPPINGS} (default 262144)")]
    MaxMappings {
        /// The value given.
        value: u32,
    },
    /// `max_subscribers` out of range.
    #[error("nat.max_subscribers = {value}: expected 1 to {MAX_SUBSCRIBERS} (default 16384)")]
    MaxSubscribers {
        /// The value given.
        value: u32,
    },
    /// A timeout below the minimum an RFC requires.
    #[error("nat.timeouts.{key} = {value}: expected at least {min} seconds ({rfc})")]
    Timeout {
        /// The key (`udp_s`, `tcp_established_s`, ...).
        key: &'static str,
        /// The value given.
        value: u32,
        /// The minimum.
        min: u32,
        /// The requirement that sets it.
        rfc: &'static str,
    },
    /// An empty log queue.
    #[error("nat.log_queue_len = 0: expected at least 1 (default 4096)")]
    LogQueue,
    /// A fragment table size that is not 0 or a power of two.
    #[error(
        "nat.fragment_slots = {value}: expected 0 (off) or a power of two up to {MAX_FRAGMENT_SLOTS} (default 1024)"
    )]
    FragmentSlots {
        /// The value given.
        value: u32,
    },
    /// The address filter of [`crate::nat::Nat::with_address_filter`] kept no address.
    #[error(
        "no address of nat.pool belongs to this worker: give the pool at least as many addresses as there are workers"
    )]
    NoAddressForWorker,
}

impl NatConfig {
    /// A default configuration with the outside `pool`.
    pub fn with_pool(pool: Vec<Ipv4Prefix>) -> Self {
        NatConfig {
            pool,
            ..NatConfig::default()
        }
    }

    /// Ports in `port_first..=port_last`.
    pub fn port_range_len(&self) -> u32 {
        u32::from(self.port_last) + 1 - u32::from(self.port_first.min(self.port_last))
    }

    /// Blocks per outside address.
    pub fn blocks_per_address(&self) -> u32 {
        if self.block_size == 0 {
            return 0;
        }
        self.port_range_len() / u32::from(self.block_size)
    }

    /// Addresses in the pool (prefixes counted as configured, overlaps included).
    pub fn pool_addresses(&self) -> u64 {
        self.pool.iter().map(Ipv4Prefix::size).sum()
    }

    /// Checks every rule and returns the first violation.
    pub fn validate(&self) -> Result<(), NatConfigError> {
        if self.pool.is_empty() {
            return Err(NatConfigError::EmptyPool);
        }
        for (index, p) in self.pool.iter().enumerate() {
            if p.len > 32 {
                return Err(NatConfigError::PrefixLength { index, len: p.len });
            }
            if p.network() != *p {
                return Err(NatConfigError::HostBits {
                    index,
                    prefix: *p,
                    network: p.network(),
                });
            }
        }
        for (second, b) in self.pool.iter().enumerate() {
            for (first, a) in self.pool.iter().enumerate().take(second) {
                let (af, al) = a.range();
                let (bf, bl) = b.range();
                if af <= bl && bf <= al {
                    return Err(NatConfigError::Overlap {
                        first,
                        first_prefix: *a,
                        second,
                        second_prefix: *b,
                    });
                }
            }
        }
        let addresses = self.pool_addresses();
        if addresses > MAX_POOL_ADDRESSES {
            return Err(NatConfigError::PoolTooLarge { addresses });
        }
        if self.port_first == 0 || self.port_first > self.port_last {
            return Err(NatConfigError::PortRange {
                first: self.port_first,
                last: self.port_last,
            });
        }
        let range = self.port_range_len();
        if self.block_size == 0 || u32::from(self.block_size) > range {
            return Err(NatConfigError::BlockSize {
                block_size: self.block_size,
                range,
            });
        }
        let per_address = self.blocks_per_address();
        let max = per_address.min(u32::from(MAX_BLOCKS_PER_SUBSCRIBER));
        if self.blocks_per_subscriber == 0 || u32::from(self.blocks_per_subscriber) > max {
            return Err(NatConfigError::BlocksPerSubscriber {
                value: self.blocks_per_subscriber,
                max,
                per_address,
            });
        }
        if self.max_mappings == 0 || self.max_mappings > MAX_MAPPINGS {
            return Err(NatConfigError::MaxMappings {
                value: self.max_mappings,
            });
        }
        if self.max_subscribers == 0 || self.max_subscribers > MAX_SUBSCRIBERS {
            return Err(NatConfigError::MaxSubscribers {
                value: self.max_subscribers,
            });
        }
        let t = &self.timeouts;
        let checks = [
            ("udp_s", t.udp_s, NatTimeouts::MIN_UDP_S, "RFC 4787 REQ-5"),
            (
                "tcp_established_s",
                t.tcp_established_s,
                NatTimeouts::MIN_TCP_ESTABLISHED_S,
                "RFC 5382 REQ-5",
            ),
            (
                "tcp_transitory_s",
                t.tcp_transitory_s,
                NatTimeouts::MIN_TCP_TRANSITORY_S,
                "RFC 5382 REQ-5",
            ),
            (
                "icmp_s",
                t.icmp_s,
                NatTimeouts::MIN_ICMP_S,
                "RFC 5508 REQ-1",
            ),
        ];
        for (key, value, min, rfc) in checks {
            if value < min {
                return Err(NatConfigError::Timeout {
                    key,
                    value,
                    min,
                    rfc,
                });
            }
        }
        if self.log_queue_len == 0 {
            return Err(NatConfigError::LogQueue);
        }
        let f = self.fragment_slots;
        if f != 0 && (!f.is_power_of_two() || f > MAX_FRAGMENT_SLOTS) {
            return Err(NatConfigError::FragmentSlots { value: f });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn p(s: &str) -> Ipv4Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn prefix_parse_and_display() {
        assert_eq!(
            p("198.51.100.0/24"),
            Ipv4Prefix::new(Ipv4Addr::new(198, 51, 100, 0), 24)
        );
        assert_eq!(p("192.0.2.7").len, 32);
        assert_eq!(p("0.0.0.0/0").size(), 1 << 32);
        assert!("192.0.2.0/33".parse::<Ipv4Prefix>().is_err());
        assert!("192.0.2/24".parse::<Ipv4Prefix>().is_err());
        assert_eq!(p("198.51.100.0/24").to_string(), "198.51.100.0/24");
        assert_eq!(p("198.51.100.7/24").network(), p("198.51.100.0/24"));
        assert!(p("198.51.100.0/24").contains(Ipv4Addr::new(198, 51, 100, 255)));
        assert!(!p("198.51.100.0/24").contains(Ipv4Addr::new(198, 51, 101, 0)));
    }

    #[test]
    fn defaults_validate() {
        let c = NatConfig::with_pool(vec![p("198.51.100.0/24")]);
        c.validate().unwrap();
        assert_eq!(c.blocks_per_address(), 126);
        assert_eq!(c.port_range_len(), 64512);
        assert_eq!(c.timeouts.tcp_established_s, 7440);
    }

    #[test]
    fn each_rule_has_a_one_line_error() {
        let ok = NatConfig::with_pool(vec![p("198.51.100.0/24")]);
        let cases: [(NatConfig, &str); 13] = [
            (NatConfig::default(), "nat.pool is empty"),
            (
                NatConfig::with_pool(vec![p("198.51.100.7/24")]),
                "write \"198.51.100.0/24\"",
            ),
            (
                NatConfig::with_pool(vec![p("198.51.100.0/24"), p("198.51.100.128/25")]),
                "nat.pool[1] = \"198.51.100.128/25\" overlaps nat.pool[0]",
            ),
            (
                NatConfig::with_pool(vec![p("10.0.0.0/8")]),
                "more than the 1048576",
            ),
            (
                NatConfig {
                    port_first: 0,
                    ..ok.clone()
                },
                "nat.port_first = 0",
            ),
            (
                NatConfig {
                    block_size: 0,
                    ..ok.clone()
                },
                "nat.block_size = 0",
            ),
            (
                NatConfig {
                    blocks_per_subscriber: 200,
                    ..ok.clone()
                },
                "nat.blocks_per_subscriber = 200: expected 1 to 64",
            ),
            (
                NatConfig {
                    max_mappings: 0,
                    ..ok.clone()
                },
                "nat.max_mappings = 0",
            ),
            (
                NatConfig {
                    max_subscribers: 0,
                    ..ok.clone()
                },
                "nat.max_subscribers = 0",
            ),
            (
                NatConfig {
                    timeouts: NatTimeouts {
                        udp_s: 60,
                        ..NatTimeouts::default()
                    },
                    ..ok.clone()
                },
                "nat.timeouts.udp_s = 60: expected at least 120 seconds (RFC 4787 REQ-5)",
            ),
            (
                NatConfig {
                    timeouts: NatTimeouts {
                        tcp_established_s: 3600,
                        ..NatTimeouts::default()
                    },
                    ..ok.clone()
                },
                "nat.timeouts.tcp_established_s = 3600",
            ),
            (
                NatConfig {
                    log_queue_len: 0,
                    ..ok.clone()
                },
                "nat.log_queue_len = 0",
            ),
            (
                NatConfig {
                    fragment_slots: 1000,
                    ..ok.clone()
                },
                "nat.fragment_slots = 1000",
            ),
        ];
        for (c, want) in cases {
            let msg = c.validate().unwrap_err().to_string();
            assert!(msg.contains(want), "{msg:?} lacks {want:?}");
            assert!(!msg.contains('\n'));
        }
        // A block size that leaves only a few blocks per address limits the blocks per
        // subscriber.
        let small = NatConfig {
            port_first: 1024,
            port_last: 2047,
            block_size: 512,
            blocks_per_subscriber: 3,
            ..ok.clone()
        };
        assert_eq!(
            small.validate(),
            Err(NatConfigError::BlocksPerSubscriber {
                value: 3,
                max: 2,
                per_address: 2
            })
        );
    }
}
