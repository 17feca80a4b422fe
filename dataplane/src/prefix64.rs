//! IPv6 prefixes of up to 64 bits mapped to a value, looked up by address with the longest
//! prefix winning: the session table's index of session prefixes and each worker's table
//! of the workers owning them.

use alloc::vec::Vec;
use core::hash::BuildHasher;

use foldhash::fast::FixedState;
use hashbrown::HashTable;

/// The mask of the top `len` bits of a 64-bit word (`len` 1-64).
#[inline(always)]
pub(crate) const fn top_bits(len: u8) -> u64 {
    !0u64 << (64 - len as u32)
}

/// Prefixes (their top 64 bits, host bits clear, and a length of 1-64) with a value each,
/// in one hash table probed once per prefix length in use.
#[derive(Debug, Clone)]
pub(crate) struct Prefix64Map<V> {
    /// (top 64 bits, length, value).
    entries: HashTable<(u64, u8, V)>,
    hasher: FixedState,
    /// Prefixes per length (index 0 unused).
    len_count: [u32; 65],
    /// The lengths with a count, longest first: the probes of a lookup.
    lens: Vec<u8>,
}

impl<V: Copy> Prefix64Map<V> {
    /// An empty map whose hashes are seeded with `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Prefix64Map {
            entries: HashTable::new(),
            hasher: FixedState::with_seed(seed),
            len_count: [0; 65],
            lens: Vec::new(),
        }
    }

    #[inline]
    fn hash(&self, top: u64, len: u8) -> u64 {
        self.hasher.hash_one((top, len))
    }

    /// The value of exactly `top`/`len`.
    #[inline]
    pub(crate) fn get(&self, top: u64, len: u8) -> Option<V> {
        self.entries
            .find(self.hash(top, len), |e| e.0 == top && e.1 == len)
            .map(|e| e.2)
    }

    /// The value of the longest prefix holding an address whose top 64 bits are `top`.
    #[inline]
    pub(crate) fn longest(&self, top: u64) -> Option<V> {
        self.lens
            .iter()
            .find_map(|&len| self.get(top & top_bits(len), len))
    }

    /// Sets the value of `top`/`len` (`len` 1-64, host bits clear), replacing any.
    pub(crate) fn set(&mut self, top: u64, len: u8, value: V) {
        let hasher = &self.hasher;
        let entry = self.entries.entry(
            hasher.hash_one((top, len)),
            |e| e.0 == top && e.1 == len,
            |e| hasher.hash_one((e.0, e.1)),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(mut e) => e.get_mut().2 = value,
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert((top, len, value));
                self.counted(len, 1);
            }
        }
    }

    /// Removes `top`/`len` if its value passes `which`; returns whether it did.
    pub(crate) fn remove_if(&mut self, top: u64, len: u8, which: impl Fn(V) -> bool) -> bool {
        let h = self.hash(top, len);
        match self
            .entries
            .find_entry(h, |e| e.0 == top && e.1 == len && which(e.2))
        {
            Ok(e) => {
                e.remove();
                self.counted(len, -1);
                true
            }
            Err(_) => false,
        }
    }

    /// Counts a prefix of `len` in or out, refreshing the probe lengths when a length comes
    /// into use or leaves it.
    fn counted(&mut self, len: u8, delta: i32) {
        let count = &mut self.len_count[usize::from(len)];
        *count = count.saturating_add_signed(delta);
        if (delta > 0 && *count == 1) || (delta < 0 && *count == 0) {
            self.lens.clear();
            for l in (1..=64u8).rev() {
                if self.len_count[usize::from(l)] != 0 {
                    self.lens.push(l);
                }
            }
        }
    }

    /// Prefixes held.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no prefix is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The lengths in use, longest first.
    #[cfg(test)]
    pub(crate) fn lens(&self) -> &[u8] {
        &self.lens
    }

    /// Removes every prefix.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.len_count = [0; 65];
        self.lens.clear();
    }

    /// Bytes of the table's buckets.
    pub(crate) fn table_bytes(&self) -> usize {
        crate::session::hash_table_bytes(self.entries.capacity(), size_of::<(u64, u8, V)>())
    }

    /// Bytes held on the heap: the table's buckets and the probe lengths.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.table_bytes() + self.lens.capacity()
    }
}
