//! The naive longest-prefix match: every lookup scans every route. Written straight from the
//! definition, it is the reference the tries are tested against and the baseline they are
//! benchmarked against; it is not meant for the fast path.

use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr};

use super::trie::Key;
use super::{NextHop, RouteError};

#[derive(Debug, Clone, Default)]
struct Linear<K: Key> {
    routes: Vec<(K, u8, NextHop)>,
}

impl<K: Key> Linear<K> {
    fn insert(&mut self, key: K, len: u8, nh: NextHop) -> Result<Option<NextHop>, RouteError> {
        if len > K::BITS {
            return Err(RouteError::PrefixLength { len, max: K::BITS });
        }
        let key = key.masked(len);
        if let Some(r) = self.routes.iter_mut().find(|r| r.0 == key && r.1 == len) {
            return Ok(Some(core::mem::replace(&mut r.2, nh)));
        }
        self.routes.push((key, len, nh));
        Ok(None)
    }

    fn delete(&mut self, key: K, len: u8) -> Result<NextHop, RouteError> {
        if len > K::BITS {
            return Err(RouteError::PrefixLength { len, max: K::BITS });
        }
        let key = key.masked(len);
        let i = self
            .routes
            .iter()
            .position(|r| r.0 == key && r.1 == len)
            .ok_or(RouteError::NotFound)?;
        Ok(self.routes.swap_remove(i).2)
    }

    #[inline]
    fn lookup(&self, addr: K) -> Option<NextHop> {
        let mut best: Option<(u8, NextHop)> = None;
        for &(key, len, nh) in &self.routes {
            if addr.masked(len) == key && best.is_none_or(|(l, _)| len > l) {
                best = Some((len, nh));
            }
        }
        best.map(|(_, nh)| nh)
    }
}

macro_rules! linear_table {
    ($(#[$doc:meta])* $name:ident, $addr:ty, $key:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default)]
        pub struct $name {
            inner: Linear<$key>,
        }

        impl $name {
            /// An empty table.
            pub fn new() -> Self {
                Self::default()
            }
            /// Adds or replaces `prefix/len`; returns the next hop it replaced.
            pub fn insert(
                &mut self,
                prefix: $addr,
                len: u8,
                next_hop: NextHop,
            ) -> Result<Option<NextHop>, RouteError> {
                self.inner.insert(prefix.to_bits(), len, next_hop)
            }
            /// Removes `prefix/len` and returns its next hop.
            pub fn delete(&mut self, prefix: $addr, len: u8) -> Result<NextHop, RouteError> {
                self.inner.delete(prefix.to_bits(), len)
            }
            /// The next hop of the longest prefix that contains `addr`: a scan of every route.
            #[inline]
            pub fn lookup(&self, addr: $addr) -> Option<NextHop> {
                self.inner.lookup(addr.to_bits())
            }
            /// Number of routes.
            pub fn len(&self) -> usize {
                self.inner.routes.len()
            }
            /// True if the table holds no route.
            pub fn is_empty(&self) -> bool {
                self.inner.routes.is_empty()
            }
        }
    };
}

linear_table!(
    /// IPv4 routes in a list, searched by a full scan (reference and benchmark baseline).
    LinearLpm4,
    Ipv4Addr,
    u32
);
linear_table!(
    /// IPv6 routes in a list, searched by a full scan (reference and benchmark baseline).
    LinearLpm6,
    Ipv6Addr,
    u128
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_for_the_longest() {
        let mut t = LinearLpm4::new();
        assert!(t.is_empty());
        t.insert(Ipv4Addr::new(10, 0, 0, 0), 8, 1).unwrap();
        t.insert(Ipv4Addr::new(10, 1, 0, 0), 16, 2).unwrap();
        t.insert(Ipv4Addr::UNSPECIFIED, 0, 3).unwrap();
        assert_eq!(t.lookup(Ipv4Addr::new(10, 1, 2, 3)), Some(2));
        assert_eq!(t.lookup(Ipv4Addr::new(10, 2, 2, 3)), Some(1));
        assert_eq!(t.lookup(Ipv4Addr::new(11, 2, 2, 3)), Some(3));
        assert_eq!(t.insert(Ipv4Addr::new(10, 1, 9, 9), 16, 4), Ok(Some(2)));
        assert_eq!(t.delete(Ipv4Addr::new(10, 1, 0, 0), 16), Ok(4));
        assert_eq!(
            t.delete(Ipv4Addr::new(10, 1, 0, 0), 16),
            Err(RouteError::NotFound)
        );
        assert_eq!(t.len(), 2);
        let mut t6 = LinearLpm6::new();
        t6.insert(Ipv6Addr::LOCALHOST, 128, 5).unwrap();
        assert_eq!(t6.lookup(Ipv6Addr::LOCALHOST), Some(5));
        assert_eq!(t6.lookup(Ipv6Addr::UNSPECIFIED), None);
        assert!(t6.insert(Ipv6Addr::LOCALHOST, 129, 5).is_err());
    }
}
