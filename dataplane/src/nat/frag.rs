//! Inbound fragment table: a direct-mapped array from (remote, outside address, protocol,
//! IP id) to the mapping the first fragment of that datagram was translated with.
//! Non-first fragments carry no ports, so this is how they find their mapping. An entry
//! lives [`LIFETIME_S`] seconds; a colliding datagram overwrites it. The caller checks that
//! the mapping slot still holds a mapping of the same session and outside address.

use alloc::vec::Vec;
use core::hash::BuildHasher;

use foldhash::fast::FixedState;

/// Seconds an entry stays usable after the first fragment.
pub(crate) const LIFETIME_S: u32 = 5;

/// One entry (32 bytes).
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    session_tag: u64,
    remote: u32,
    outside: u32,
    mapping: u32,
    /// Seconds; 0 = empty.
    expires: u32,
    ident: u16,
    proto: u8,
}

/// The table; 0 slots disables it.
#[derive(Debug)]
pub(crate) struct FragTable {
    entries: Vec<Entry>,
    hasher: FixedState,
}

impl FragTable {
    pub(crate) fn new(slots: usize, seed: u64) -> Self {
        FragTable {
            entries: alloc::vec![Entry::default(); slots],
            hasher: FixedState::with_seed(seed ^ 0x9e37_79b9),
        }
    }

    #[inline]
    fn slot(&self, remote: u32, outside: u32, proto: u8, ident: u16) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        let h = self.hasher.hash_one((
            u64::from(remote) << 32 | u64::from(outside),
            u32::from(proto) << 16 | u32::from(ident),
        ));
        Some(h as usize & (self.entries.len() - 1))
    }

    /// Remembers that datagram (remote, outside, proto, ident) uses mapping slot `mapping`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        &mut self,
        remote: u32,
        outside: u32,
        proto: u8,
        ident: u16,
        mapping: u32,
        session_tag: u64,
        now_s: u32,
    ) {
        if let Some(i) = self.slot(remote, outside, proto, ident) {
            self.entries[i] = Entry {
                session_tag,
                remote,
                outside,
                mapping,
                expires: now_s.saturating_add(LIFETIME_S).max(1),
                ident,
                proto,
            };
        }
    }

    /// The mapping slot and session tag of datagram (remote, outside, proto, ident).
    pub(crate) fn lookup(
        &self,
        remote: u32,
        outside: u32,
        proto: u8,
        ident: u16,
        now_s: u32,
    ) -> Option<(u32, u64)> {
        let e = &self.entries[self.slot(remote, outside, proto, ident)?];
        (e.expires != 0
            && now_s < e.expires
            && e.remote == remote
            && e.outside == outside
            && e.proto == proto
            && e.ident == ident)
            .then_some((e.mapping, e.session_tag))
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.entries.capacity() * core::mem::size_of::<Entry>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_lookup_expire() {
        let mut t = FragTable::new(16, 1);
        t.record(1, 2, 17, 77, 10, 5, 100);
        assert_eq!(t.lookup(1, 2, 17, 77, 100), Some((10, 5)));
        assert_eq!(t.lookup(1, 2, 17, 78, 100), None);
        assert_eq!(t.lookup(1, 2, 6, 77, 100), None);
        assert_eq!(t.lookup(1, 2, 17, 77, 100 + LIFETIME_S), None);
        t.record(1, 2, 17, 78, 11, 6, 100);
        assert_eq!(t.lookup(1, 2, 17, 78, 101), Some((11, 6)));
        let off = FragTable::new(0, 1);
        assert_eq!(off.lookup(1, 2, 17, 77, 0), None);
        assert_eq!(core::mem::size_of::<Entry>(), 32);
    }
}
