//! Address pool allocator for one [`PoolConfig`] range.
//!
//! Every address of `range_start..=range_end` has a one-byte state in a
//! vector indexed by its offset from `range_start`. Free addresses wait in a
//! FIFO queue: allocation pops the front, release pushes the back, so a
//! released address is reused as late as possible and a returning client
//! usually gets its old address back ("sticky" preference, RFC 2131 section
//! 4.3.1 asks servers to offer the client's previous address if it can).
//! Claiming a specific address leaves a stale queue entry that is skipped
//! when popped; a `QUEUED` bit keeps every address at most once in the
//! queue, so the queue never outgrows the range and every operation is
//! amortised O(1).
//!
//! The subnet's network address, broadcast address and gateway are
//! excluded at construction and never handed out. Declined addresses
//! (RFC 2131 section 3.1 step 5: the client found the address in use) sit
//! in a quarantine queue for `quarantine_ms` before returning to the free
//! queue.

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use super::{ConfigError, DECLINE_QUARANTINE_MS, PoolConfig};

/// Largest supported range, in addresses (a /12).
pub const MAX_RANGE: u32 = 1 << 20;

const FREE: u8 = 0;
const USED: u8 = 1;
const QUARANTINED: u8 = 2;
const EXCLUDED: u8 = 3;
const STATE_MASK: u8 = 0x0f;
/// The address has an entry in the free queue (possibly stale).
const QUEUED: u8 = 0x80;

impl PoolConfig {
    /// The subnet mask for `prefix_len` (0.0.0.0 if the length is above 32).
    pub fn subnet_mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask_bits(self.prefix_len))
    }

    /// The subnet's broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask_bits(self.prefix_len))
    }

    /// True if `addr` is a host address of the subnet (inside it, not its
    /// network or broadcast address).
    pub fn is_subnet_host(&self, addr: Ipv4Addr) -> bool {
        let mask = mask_bits(self.prefix_len);
        let a = u32::from(addr);
        a & mask == u32::from(self.network) && addr != self.network && addr != self.broadcast()
    }

    /// Check the pool on its own (names and overlaps across pools are
    /// checked by [`DhcpServer::new`](super::DhcpServer::new)).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let pool = || self.name.clone();
        if self.name.is_empty() {
            return Err(ConfigError::EmptyName);
        }
        if !(8..=30).contains(&self.prefix_len) {
            return Err(ConfigError::PrefixLen {
                pool: pool(),
                found: self.prefix_len,
            });
        }
        let mask = mask_bits(self.prefix_len);
        let net = u32::from(self.network);
        if net & mask != net {
            return Err(ConfigError::NetworkHostBits {
                pool: pool(),
                expected: Ipv4Addr::from(net & mask),
                found: self.network,
            });
        }
        for (key, found) in [
            ("gateway", self.gateway),
            ("range_start", self.range_start),
            ("range_end", self.range_end),
        ] {
            if !self.is_subnet_host(found) {
                return Err(ConfigError::OutsideSubnet {
                    pool: pool(),
                    key,
                    network: self.network,
                    prefix_len: self.prefix_len,
                    found,
                });
            }
        }
        let (start, end) = (u32::from(self.range_start), u32::from(self.range_end));
        if start > end {
            return Err(ConfigError::RangeReversed {
                pool: pool(),
                start: self.range_start,
                end: self.range_end,
            });
        }
        let size = u64::from(end - start) + 1;
        if size > u64::from(MAX_RANGE) {
            return Err(ConfigError::RangeTooLarge {
                pool: pool(),
                max: MAX_RANGE,
                found: size,
            });
        }
        if size == 1 && self.range_start == self.gateway {
            return Err(ConfigError::EmptyRange(pool()));
        }
        if self.lease_time_s == 0 {
            return Err(ConfigError::ZeroLeaseTime(pool()));
        }
        Ok(())
    }
}

fn mask_bits(prefix_len: u8) -> u32 {
    match prefix_len {
        0 => 0,
        1..=32 => u32::MAX << (32 - u32::from(prefix_len)),
        _ => 0,
    }
}

/// Allocator of the addresses of one pool range.
#[derive(Debug, Clone)]
pub struct AddressPool {
    /// First address of the range, as an integer.
    start: u32,
    /// One state byte per address of the range.
    slots: Vec<u8>,
    /// Offsets waiting to be handed out (may hold stale entries).
    free: VecDeque<u32>,
    /// Declined offsets and the time they may return, oldest first.
    quarantine: VecDeque<(u32, u64)>,
    quarantine_ms: u64,
    free_count: usize,
    used_count: usize,
}

impl AddressPool {
    /// A pool over `cfg`'s range with every usable address free, in
    /// ascending order. Quarantine of declined addresses defaults to
    /// [`DECLINE_QUARANTINE_MS`].
    pub fn new(cfg: &PoolConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let start = u32::from(cfg.range_start);
        let size = (u32::from(cfg.range_end) - start) as usize + 1;
        let mut slots = vec![FREE | QUEUED; size];
        for excluded in [cfg.network, cfg.broadcast(), cfg.gateway] {
            if let Some(off) = u32::from(excluded).checked_sub(start)
                && let Some(slot) = slots.get_mut(off as usize)
            {
                *slot = EXCLUDED;
            }
        }
        let free: VecDeque<u32> = (0..size as u32)
            .filter(|&o| slots[o as usize] & QUEUED != 0)
            .collect();
        let free_count = free.len();
        if free_count == 0 {
            return Err(ConfigError::EmptyRange(cfg.name.clone()));
        }
        Ok(AddressPool {
            start,
            slots,
            free,
            quarantine: VecDeque::new(),
            quarantine_ms: DECLINE_QUARANTINE_MS,
            free_count,
            used_count: 0,
        })
    }

    /// Set how long declined addresses stay out of circulation (ms).
    pub fn with_quarantine_ms(mut self, quarantine_ms: u64) -> Self {
        self.quarantine_ms = quarantine_ms;
        self
    }

    fn offset(&self, addr: Ipv4Addr) -> Option<usize> {
        let off = u32::from(addr).checked_sub(self.start)? as usize;
        (off < self.slots.len()).then_some(off)
    }

    fn addr(&self, off: usize) -> Ipv4Addr {
        Ipv4Addr::from(self.start + off as u32)
    }

    fn state(&self, off: usize) -> u8 {
        self.slots[off] & STATE_MASK
    }

    fn set_state(&mut self, off: usize, state: u8) {
        self.slots[off] = (self.slots[off] & QUEUED) | state;
    }

    /// Put a free offset in the queue unless it already has an entry.
    fn enqueue(&mut self, off: usize) {
        if self.slots[off] & QUEUED == 0 {
            self.slots[off] |= QUEUED;
            self.free.push_back(off as u32);
        }
    }

    /// Return quarantined addresses whose time is up to the free queue.
    pub fn reclaim(&mut self, now_ms: u64) {
        while let Some(&(off, until)) = self.quarantine.front() {
            if until > now_ms {
                break;
            }
            self.quarantine.pop_front();
            let off = off as usize;
            if self.state(off) == QUARANTINED {
                self.set_state(off, FREE);
                self.free_count += 1;
                self.enqueue(off);
            }
        }
    }

    /// True if `addr` lies in the range (usable or not).
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        self.offset(addr).is_some()
    }

    /// True if `addr` is in the range and free now.
    pub fn is_free(&mut self, addr: Ipv4Addr, now_ms: u64) -> bool {
        self.reclaim(now_ms);
        self.offset(addr).is_some_and(|o| self.state(o) == FREE)
    }

    /// True if `addr` is currently allocated.
    pub fn is_used(&self, addr: Ipv4Addr) -> bool {
        self.offset(addr).is_some_and(|o| self.state(o) == USED)
    }

    /// Allocate an address: `preferred` if it is free, else the free
    /// address that has waited longest. `None` when the pool is exhausted.
    pub fn allocate(&mut self, preferred: Option<Ipv4Addr>, now_ms: u64) -> Option<Ipv4Addr> {
        self.reclaim(now_ms);
        if let Some(p) = preferred
            && self.take_now(p)
        {
            return Some(p);
        }
        while let Some(off) = self.free.pop_front() {
            let off = off as usize;
            self.slots[off] &= !QUEUED;
            if self.state(off) == FREE {
                self.set_state(off, USED);
                self.free_count -= 1;
                self.used_count += 1;
                return Some(self.addr(off));
            }
        }
        None
    }

    /// Claim the specific address `addr` if it is free; false otherwise.
    pub fn take(&mut self, addr: Ipv4Addr, now_ms: u64) -> bool {
        self.reclaim(now_ms);
        self.take_now(addr)
    }

    fn take_now(&mut self, addr: Ipv4Addr) -> bool {
        match self.offset(addr) {
            Some(off) if self.state(off) == FREE => {
                // Its queue entry (if any) goes stale and is skipped later.
                self.set_state(off, USED);
                self.free_count -= 1;
                self.used_count += 1;
                true
            }
            _ => false,
        }
    }

    /// Return an allocated address to the pool; false if it was not
    /// allocated (double release or foreign address: no effect).
    pub fn release(&mut self, addr: Ipv4Addr) -> bool {
        match self.offset(addr) {
            Some(off) if self.state(off) == USED => {
                self.set_state(off, FREE);
                self.used_count -= 1;
                self.free_count += 1;
                self.enqueue(off);
                true
            }
            _ => false,
        }
    }

    /// Quarantine `addr` (allocated or free) until `now_ms + quarantine`;
    /// false if it is not a usable address of the range or already
    /// quarantined.
    pub fn decline(&mut self, addr: Ipv4Addr, now_ms: u64) -> bool {
        let Some(off) = self.offset(addr) else {
            return false;
        };
        match self.state(off) {
            USED => self.used_count -= 1,
            FREE => self.free_count -= 1,
            _ => return false,
        }
        self.set_state(off, QUARANTINED);
        self.quarantine
            .push_back((off as u32, now_ms.saturating_add(self.quarantine_ms)));
        true
    }

    /// Number of addresses that can ever be handed out (range minus
    /// network, broadcast and gateway).
    pub fn capacity(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| **s & STATE_MASK != EXCLUDED)
            .count()
    }

    /// Addresses currently allocated.
    pub fn in_use(&self) -> usize {
        self.used_count
    }

    /// Addresses free right now (not counting quarantine that has expired
    /// but not yet been reclaimed).
    pub fn available(&self) -> usize {
        self.free_count
    }

    /// Addresses in quarantine.
    pub fn quarantined(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| **s & STATE_MASK == QUARANTINED)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn small(start: u8, end: u8) -> PoolConfig {
        PoolConfig {
            name: "t".into(),
            network: Ipv4Addr::new(10, 0, 0, 0),
            prefix_len: 28,
            gateway: Ipv4Addr::new(10, 0, 0, 1),
            range_start: Ipv4Addr::new(10, 0, 0, start),
            range_end: Ipv4Addr::new(10, 0, 0, end),
            dns: vec![],
            lease_time_s: 60,
        }
    }

    #[test]
    fn lab_default_validates() {
        let cfg = PoolConfig::default();
        cfg.validate().unwrap();
        assert_eq!(cfg.subnet_mask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(cfg.broadcast(), Ipv4Addr::new(100, 64, 0, 255));
        assert_eq!(AddressPool::new(&cfg).unwrap().capacity(), 241);
    }

    #[test]
    fn bad_configs_are_rejected_with_the_key() {
        let d = PoolConfig::default;
        let c = PoolConfig {
            prefix_len: 31,
            ..d()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::PrefixLen { found: 31, .. })
        ));
        let c = PoolConfig {
            network: Ipv4Addr::new(100, 64, 0, 7),
            ..d()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::NetworkHostBits { .. })
        ));
        let c = PoolConfig {
            range_end: Ipv4Addr::new(100, 64, 1, 5),
            ..d()
        };
        let e = c.validate().unwrap_err();
        assert!(e.to_string().contains("range_end"), "{e}");
        let c = PoolConfig {
            range_end: Ipv4Addr::new(100, 64, 0, 255),
            ..d()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::OutsideSubnet {
                key: "range_end",
                ..
            })
        ));
        let c = PoolConfig {
            range_start: Ipv4Addr::new(100, 64, 0, 200),
            range_end: Ipv4Addr::new(100, 64, 0, 100),
            ..d()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::RangeReversed { .. })
        ));
        let gw = Ipv4Addr::new(100, 64, 0, 1);
        let c = PoolConfig {
            range_start: gw,
            range_end: gw,
            ..d()
        };
        assert!(matches!(c.validate(), Err(ConfigError::EmptyRange(_))));
        let c = PoolConfig {
            lease_time_s: 0,
            ..d()
        };
        assert!(matches!(c.validate(), Err(ConfigError::ZeroLeaseTime(_))));
    }

    #[test]
    fn never_hands_out_gateway_and_exhausts() {
        // 10.0.0.1 (gateway) ..= 10.0.0.14: 13 usable addresses.
        let mut p = AddressPool::new(&small(1, 14)).unwrap();
        assert_eq!(p.capacity(), 13);
        let mut got = HashSet::new();
        while let Some(a) = p.allocate(None, 0) {
            assert_ne!(a, Ipv4Addr::new(10, 0, 0, 1));
            assert!(got.insert(a));
        }
        assert_eq!(got.len(), 13);
        assert_eq!(p.available(), 0);
        assert!(p.release(Ipv4Addr::new(10, 0, 0, 5)));
        assert!(!p.release(Ipv4Addr::new(10, 0, 0, 5)), "double release");
        assert_eq!(p.allocate(None, 0), Some(Ipv4Addr::new(10, 0, 0, 5)));
    }

    #[test]
    fn preferred_and_fifo_reuse() {
        let mut p = AddressPool::new(&small(2, 6)).unwrap();
        let a = p.allocate(None, 0).unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 0, 0, 2));
        assert!(p.release(a));
        // Released address goes to the back: the next client gets another.
        assert_eq!(p.allocate(None, 0), Some(Ipv4Addr::new(10, 0, 0, 3)));
        // The returning client asks for its old one and gets it.
        assert_eq!(p.allocate(Some(a), 0), Some(a));
        // Preferring a used address falls back to the queue.
        assert_eq!(p.allocate(Some(a), 0), Some(Ipv4Addr::new(10, 0, 0, 4)));
    }

    #[test]
    fn declined_address_is_quarantined_until_time_passes() {
        let mut p = AddressPool::new(&small(2, 2))
            .unwrap()
            .with_quarantine_ms(1000);
        let a = p.allocate(None, 0).unwrap();
        assert!(p.decline(a, 10));
        assert_eq!(p.quarantined(), 1);
        assert_eq!(p.allocate(None, 500), None);
        assert!(!p.take(a, 1009));
        assert_eq!(p.allocate(None, 1010), Some(a));
        assert_eq!(p.quarantined(), 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Alloc(Option<u8>),
        Release(usize),
        Decline(usize),
        Take(u8),
        Tick(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => proptest::option::of(any::<u8>()).prop_map(Op::Alloc),
            3 => any::<usize>().prop_map(Op::Release),
            1 => any::<usize>().prop_map(Op::Decline),
            1 => any::<u8>().prop_map(Op::Take),
            1 => any::<u16>().prop_map(Op::Tick),
        ]
    }

    proptest! {
        #[test]
        fn allocations_are_unique_in_range_and_returnable(
            ops in proptest::collection::vec(op(), 0..300)
        ) {
            // /26 with the range covering the whole subnet, so network,
            // broadcast and gateway all fall inside the range.
            let cfg = PoolConfig {
                name: "p".into(),
                network: Ipv4Addr::new(10, 1, 2, 64),
                prefix_len: 26,
                gateway: Ipv4Addr::new(10, 1, 2, 100),
                range_start: Ipv4Addr::new(10, 1, 2, 65),
                range_end: Ipv4Addr::new(10, 1, 2, 126),
                dns: vec![],
                lease_time_s: 60,
            };
            let mut p = AddressPool::new(&cfg).unwrap().with_quarantine_ms(5_000);
            let cap = p.capacity();
            let mut held: Vec<Ipv4Addr> = Vec::new();
            let mut now = 0u64;
            for op in ops {
                match op {
                    Op::Alloc(pref) => {
                        let pref = pref.map(|b| Ipv4Addr::new(10, 1, 2, b));
                        if let Some(a) = p.allocate(pref, now) {
                            prop_assert!(!held.contains(&a), "{a} handed out twice");
                            held.push(a);
                        } else {
                            prop_assert_eq!(p.available(), 0);
                        }
                    }
                    Op::Take(b) => {
                        let a = Ipv4Addr::new(10, 1, 2, b);
                        if p.take(a, now) {
                            prop_assert!(!held.contains(&a), "{a} taken twice");
                            held.push(a);
                        }
                    }
                    Op::Release(i) if !held.is_empty() => {
                        let a = held.swap_remove(i % held.len());
                        prop_assert!(p.release(a));
                    }
                    Op::Decline(i) if !held.is_empty() => {
                        let a = held.swap_remove(i % held.len());
                        prop_assert!(p.decline(a, now));
                    }
                    Op::Tick(ms) => now += u64::from(ms),
                    _ => {}
                }
                for a in &held {
                    prop_assert!(cfg.is_subnet_host(*a));
                    prop_assert!(*a >= cfg.range_start && *a <= cfg.range_end);
                    prop_assert_ne!(*a, cfg.gateway);
                    prop_assert!(p.is_used(*a));
                }
                prop_assert_eq!(p.in_use(), held.len());
                prop_assert!(p.free.len() <= p.slots.len());
            }
            for a in held.drain(..) {
                prop_assert!(p.release(a));
            }
            p.reclaim(now + 5_000);
            prop_assert_eq!(p.available(), cap);
            let mut all = HashSet::new();
            while let Some(a) = p.allocate(None, now + 5_000) {
                prop_assert!(all.insert(a));
            }
            prop_assert_eq!(all.len(), cap);
        }
    }
}
