//! [`PrefixPool`]: the prefixes of one length inside a configured prefix.
//!
//! A /48 holds 256 /56s, a /32 four billion /64s: the pool never lists
//! them all. Fresh prefixes come from a counter that walks the range in
//! order; released ones wait in a FIFO queue and are reused only after the
//! counter has run out, so a prefix just given up is handed out again as
//! late as possible. Memory grows with the prefixes in use, not with the
//! size of the range.

use std::collections::{HashSet, VecDeque};

use crate::ipv6::Ipv6Prefix;

/// The prefixes of length `len` inside `parent`, handed out one by one.
#[derive(Debug, Clone)]
pub struct PrefixPool {
    parent: Ipv6Prefix,
    len: u8,
    /// Index of the first prefix never handed out.
    next_fresh: u128,
    /// Indices handed out before and given back, oldest first (may hold
    /// stale entries of indices taken again by [`PrefixPool::take`]).
    released: VecDeque<u128>,
    used: HashSet<u128>,
    /// Indices never handed out (index 0 of an address range: the
    /// Subnet-Router anycast address, RFC 4291 section 2.6.1).
    skip_first: bool,
}

impl PrefixPool {
    /// The /`len` prefixes of `parent`; `None` if `len` is shorter than the
    /// parent's. For `len == 128` (single addresses) the first address,
    /// the Subnet-Router anycast address, is never handed out.
    pub fn new(parent: Ipv6Prefix, len: u8) -> Option<Self> {
        if parent.subprefix_count(len) == 0 {
            return None;
        }
        let skip_first = len == 128;
        Some(PrefixPool {
            parent,
            len,
            next_fresh: u128::from(skip_first),
            released: VecDeque::new(),
            used: HashSet::new(),
            skip_first,
        })
    }

    /// The configured prefix.
    pub fn parent(&self) -> Ipv6Prefix {
        self.parent
    }

    /// Length of the prefixes handed out.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Hand out a free prefix, `None` if the pool is exhausted.
    pub fn allocate(&mut self) -> Option<Ipv6Prefix> {
        let count = self.parent.subprefix_count(self.len);
        let index = if self.next_fresh < count {
            let i = self.next_fresh;
            self.next_fresh += 1;
            i
        } else {
            loop {
                let i = self.released.pop_front()?;
                if !self.used.contains(&i) {
                    break i;
                }
            }
        };
        self.used.insert(index);
        self.parent.subprefix(index, self.len)
    }

    /// Mark `prefix` in use (a binding restored or chosen elsewhere);
    /// false if it is not one of the pool's or already in use.
    pub fn take(&mut self, prefix: Ipv6Prefix) -> bool {
        let Some(index) = self.index_of(prefix) else {
            return false;
        };
        if !self.used.insert(index) {
            return false;
        }
        // Indices below the counter not in use wait in `released`; the
        // entry left there goes stale and is skipped when popped.
        while self.next_fresh < index {
            self.released.push_back(self.next_fresh);
            self.next_fresh += 1;
        }
        if self.next_fresh == index {
            self.next_fresh += 1;
        }
        true
    }

    /// Give `prefix` back; false if it was not in use.
    pub fn release(&mut self, prefix: Ipv6Prefix) -> bool {
        let Some(index) = self.index_of(prefix) else {
            return false;
        };
        if !self.used.remove(&index) {
            return false;
        }
        self.released.push_back(index);
        true
    }

    /// Whether `prefix` is one of the pool's prefixes.
    pub fn contains(&self, prefix: Ipv6Prefix) -> bool {
        self.index_of(prefix).is_some()
    }

    /// Prefixes in use.
    pub fn in_use(&self) -> usize {
        self.used.len()
    }

    /// Prefixes the pool holds in all (saturating).
    pub fn capacity(&self) -> u128 {
        self.parent.subprefix_count(self.len) - u128::from(self.skip_first)
    }

    fn index_of(&self, prefix: Ipv6Prefix) -> Option<u128> {
        if prefix.len() != self.len {
            return None;
        }
        let index = self.parent.subprefix_index(&prefix)?;
        (!(self.skip_first && index == 0)).then_some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Ipv6Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn delegated_prefixes_in_order_then_reused_oldest_first() {
        let mut pool = PrefixPool::new(p("2001:db8:100::/54"), 56).unwrap();
        assert_eq!(pool.capacity(), 4);
        let got: Vec<_> = (0..4).map(|_| pool.allocate().unwrap()).collect();
        assert_eq!(got[0], p("2001:db8:100::/56"));
        assert_eq!(got[3], p("2001:db8:100:300::/56"));
        assert_eq!(pool.allocate(), None);
        assert!(pool.release(got[2]));
        assert!(pool.release(got[1]));
        assert!(!pool.release(got[1]), "released twice");
        assert_eq!(pool.allocate(), Some(got[2]));
        assert_eq!(pool.allocate(), Some(got[1]));
        assert_eq!(pool.in_use(), 4);
    }

    #[test]
    fn addresses_skip_the_anycast_address_and_take_marks_in_use() {
        let mut pool = PrefixPool::new(p("2001:db8::/126"), 128).unwrap();
        assert_eq!(pool.capacity(), 3);
        assert!(!pool.take(p("2001:db8::/128")), "anycast never in the pool");
        assert!(pool.take(p("2001:db8::2/128")));
        assert!(!pool.take(p("2001:db8::2/128")));
        assert_eq!(pool.allocate(), Some(p("2001:db8::3/128")));
        assert_eq!(pool.allocate(), Some(p("2001:db8::1/128")));
        assert_eq!(pool.allocate(), None);
        assert!(!pool.contains(p("2001:db9::1/128")));
        assert!(PrefixPool::new(p("2001:db8::/64"), 48).is_none());
    }

    proptest! {
        #[test]
        fn never_hands_out_a_prefix_twice(ops in proptest::collection::vec((any::<bool>(), any::<u8>()), 0..200)) {
            let mut pool = PrefixPool::new(p("2001:db8::/58"), 64).unwrap();
            let mut held: Vec<Ipv6Prefix> = Vec::new();
            for (alloc, pick) in ops {
                if alloc || held.is_empty() {
                    if let Some(x) = pool.allocate() {
                        prop_assert!(!held.contains(&x));
                        prop_assert!(pool.parent().covers(&x));
                        held.push(x);
                    } else {
                        prop_assert_eq!(held.len(), 64);
                    }
                } else {
                    let x = held.swap_remove(usize::from(pick) % held.len());
                    prop_assert!(pool.release(x));
                }
                prop_assert_eq!(pool.in_use(), held.len());
            }
        }
    }
}
