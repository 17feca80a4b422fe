//! An open-addressing index from a 32-bit tag to a slab slot, laid out so that one lookup
//! reads one cache line, whose address is known from the hash alone.
//!
//! The fast path looks up a whole burst in stages: it hashes every key and prefetches each
//! key's home bucket ([`TagIndex::prefetch`]), then probes the buckets, by then in cache.
//! hashbrown keeps its control bytes and its entries in separate arrays and gives no address
//! to prefetch, so a probe there costs two dependent misses.
//!
//! Each bucket is one 64-byte line: seven (tag, slot) lanes, a bitmap of used lanes and an
//! overflow count (eight tag words, the last unused, so that a lookup compares them all at
//! once). An entry goes to the first bucket with a free lane, starting at its home bucket
//! (the low 32 bits of the hash scaled to the bucket count, so that the count need not be a
//! power of two and the index can grow by a quarter); every full bucket it passes counts it
//! in `overflow`, so a lookup stops at the first bucket that neither holds the tag nor was
//! passed by anything. The load stays at most [`MAX_LOAD`] entries per bucket on average, so
//! nearly every lookup reads its home bucket only.
//!
//! The tag is what the caller compares: the key itself when it fits in 32 bits (IPv4), or 32
//! bits of the hash, to be confirmed against the slab (access keys, NAT mapping keys). Slots,
//! not keys, tell entries apart on removal, so equal tags may coexist.

use alloc::vec::Vec;

const LANES: usize = 7;
const ALL_LANES: u32 = (1 << LANES) - 1;

/// Entries per bucket, on average, above which the owner rebuilds the index larger.
pub(crate) const MAX_LOAD: usize = 5;

#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Bucket {
    /// Lane `i`'s tag; the eighth word is padding.
    tags: [u32; LANES + 1],
    slots: [u32; LANES],
    /// Bit `i` set: lane `i` holds an entry.
    used: u16,
    /// Entries stored past this bucket that passed it because it was full (their home is
    /// this bucket or an earlier one). Saturated at `u16::MAX` it is never decremented
    /// again, so lookups always go on past this bucket: slower, never wrong.
    overflow: u16,
}

const EMPTY_BUCKET: Bucket = Bucket {
    tags: [0; LANES + 1],
    slots: [0; LANES],
    used: 0,
    overflow: 0,
};

impl Bucket {
    /// Bitmap of the used lanes holding `tag`.
    #[inline(always)]
    fn matches(&self, tag: u32) -> u32 {
        crate::lanes::equal_mask(&self.tags, tag) & u32::from(self.used)
    }
}

/// The index. Single writer; grows only when its owner rebuilds it.
#[derive(Debug, Clone)]
pub(crate) struct TagIndex {
    buckets: Vec<Bucket>,
    len: usize,
}

impl TagIndex {
    /// An empty index with room for `capacity` entries at [`MAX_LOAD`].
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let n = capacity.div_ceil(MAX_LOAD).max(1);
        TagIndex {
            buckets: alloc::vec![EMPTY_BUCKET; n],
            len: 0,
        }
    }

    /// True if one more entry would exceed [`MAX_LOAD`]: rebuild first.
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.len >= self.buckets.len() * MAX_LOAD
    }

    /// Number of buckets.
    pub(crate) fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// Bytes the index occupies.
    pub(crate) fn bytes(&self) -> usize {
        self.buckets.len() * size_of::<Bucket>()
    }

    /// The home bucket: the low 32 bits of `hash` as a fraction of the bucket count (a
    /// multiply, not a division; the tags of access keys are the high 32 bits).
    #[inline(always)]
    fn home(&self, hash: u64) -> usize {
        (((hash & 0xffff_ffff) * self.buckets.len() as u64) >> 32) as usize
    }

    /// The bucket after `i`, wrapping.
    #[inline(always)]
    fn next(&self, i: usize) -> usize {
        if i + 1 == self.buckets.len() {
            0
        } else {
            i + 1
        }
    }

    /// Asks the CPU for the home bucket of `hash` (see [`crate::prefetch`]).
    #[inline(always)]
    pub(crate) fn prefetch(&self, hash: u64) {
        if let Some(b) = self.buckets.get(self.home(hash)) {
            crate::prefetch::prefetch(b);
        }
    }

    /// The first slot holding `tag` for which `is_it` says yes, in probe order.
    #[inline(always)]
    pub(crate) fn find(&self, hash: u64, tag: u32, is_it: impl FnMut(u32) -> bool) -> Option<u32> {
        self.locate(hash, tag, is_it)
            .map(|(i, lane)| self.buckets[i].slots[lane])
    }

    /// Where [`TagIndex::find`]'s answer lies: (bucket, lane).
    #[inline(always)]
    fn locate(
        &self,
        hash: u64,
        tag: u32,
        mut is_it: impl FnMut(u32) -> bool,
    ) -> Option<(usize, usize)> {
        let mut i = self.home(hash);
        // Each bucket is visited at most once: a lookup ends at a bucket nothing passed,
        // and there is always one (the load is below a bucket's lanes).
        for _ in 0..self.buckets.len() {
            let b = &self.buckets[i];
            let mut m = b.matches(tag);
            while m != 0 {
                let lane = m.trailing_zeros() as usize;
                if is_it(b.slots[lane]) {
                    return Some((i, lane));
                }
                m &= m - 1;
            }
            if b.overflow == 0 {
                return None;
            }
            i = self.next(i);
        }
        None
    }

    /// Adds (`tag`, `slot`). The caller keeps (`tag`, `slot`) pairs unique and rebuilds the
    /// index while [`TagIndex::is_full`].
    pub(crate) fn insert(&mut self, hash: u64, tag: u32, slot: u32) {
        debug_assert!(!self.is_full());
        let mut i = self.home(hash);
        loop {
            let b = &mut self.buckets[i];
            let free = !u32::from(b.used) & ALL_LANES;
            if free != 0 {
                let lane = free.trailing_zeros() as usize;
                b.tags[lane] = tag;
                b.slots[lane] = slot;
                b.used |= 1u16 << lane;
                self.len += 1;
                return;
            }
            b.overflow = b.overflow.saturating_add(1);
            i = self.next(i);
        }
    }

    /// Removes (`tag`, `slot`); false if it is not there.
    pub(crate) fn remove(&mut self, hash: u64, tag: u32, slot: u32) -> bool {
        let Some((at, lane)) = self.locate(hash, tag, |s| s == slot) else {
            return false;
        };
        self.buckets[at].used &= !(1u16 << lane);
        self.len -= 1;
        // It passed every bucket from its home to here.
        let mut j = self.home(hash);
        while j != at {
            let o = &mut self.buckets[j].overflow;
            if *o != u16::MAX {
                *o -= 1;
            }
            j = self.next(j);
        }
        true
    }

    /// Removes every entry, keeping the buckets.
    pub(crate) fn clear(&mut self) {
        self.buckets.fill(EMPTY_BUCKET);
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;
    use proptest::prelude::*;

    /// A hash whose home is bucket `b` of `ix`.
    fn home_of(ix: &TagIndex, b: u64) -> u64 {
        (b << 32).div_ceil(ix.bucket_count() as u64)
    }

    #[test]
    fn homes_spread_over_any_bucket_count() {
        for n in [1usize, 3, 8, 20_000, 262_145] {
            let ix = TagIndex::with_capacity(n * MAX_LOAD);
            assert_eq!(ix.bucket_count(), n);
            for b in [0, n / 2, n - 1] {
                assert_eq!(ix.home(home_of(&ix, b as u64)), b);
            }
            assert_eq!(ix.home(u64::MAX), n - 1);
            assert_eq!(ix.home(0xffff_ffff_0000_0000), 0);
        }
    }

    #[test]
    fn a_bucket_is_one_cache_line() {
        assert_eq!(size_of::<Bucket>(), 64);
        assert_eq!(align_of::<Bucket>(), 64);
    }

    #[test]
    fn entries_overflow_into_the_next_buckets_and_come_back() {
        // Eight buckets, every entry homed in bucket 6: they fill 6 and 7, then wrap to 0.
        let mut ix = TagIndex::with_capacity(40);
        assert_eq!(ix.bucket_count(), 8);
        let (h6, h7) = (home_of(&ix, 6), home_of(&ix, 7));
        for s in 0..20 {
            ix.insert(h6, s % 3, s);
        }
        assert_eq!(ix.buckets[6].overflow, 13);
        assert_eq!(ix.buckets[7].overflow, 6);
        assert_eq!(ix.buckets[0].overflow, 0);
        for s in 0..20 {
            assert_eq!(ix.find(h6, s % 3, |x| x == s), Some(s));
        }
        assert_eq!(ix.find(h6, 9, |_| true), None);
        // A key homed in bucket 7 sees the entries that overflowed from 6 but not as its own.
        assert_eq!(ix.find(h7, 0, |x| x == 100), None);
        for s in (0..20).rev() {
            assert!(ix.remove(h6, s % 3, s));
            assert!(!ix.remove(h6, s % 3, s));
        }
        assert!(ix.buckets.iter().all(|b| b.used == 0 && b.overflow == 0));
    }

    #[test]
    fn a_saturated_overflow_count_stays_saturated() {
        let mut ix = TagIndex::with_capacity(40);
        let h2 = home_of(&ix, 2);
        for s in 0..10 {
            ix.insert(h2, s, s);
        }
        assert_eq!(ix.buckets[2].overflow, 3);
        ix.buckets[2].overflow = u16::MAX;
        for s in 0..10 {
            assert!(ix.remove(h2, s, s));
        }
        // Lookups still pass bucket 2 (slower, never wrong), and find nothing.
        assert_eq!(ix.buckets[2].overflow, u16::MAX);
        assert_eq!(ix.find(h2, 9, |_| true), None);
        ix.insert(h2, 9, 9);
        assert_eq!(ix.find(h2, 9, |_| true), Some(9));
    }

    proptest! {
        /// The index answers like a set of (home, tag, slot) triples, whatever the order of
        /// inserts and removals, with hashes squeezed into few buckets to force overflow.
        #[test]
        fn matches_a_set(ops in proptest::collection::vec((any::<bool>(), 0u64..4, 0u32..4, 0u32..48), 0..300)) {
            // Ten buckets (not a power of two); hashes 0..4 name buckets 0, 3, 6 and 9.
            let mut ix = TagIndex::with_capacity(48);
            assert_eq!(ix.bucket_count(), 10);
            let ops: Vec<(bool, u64, u32, u32)> = ops
                .into_iter()
                .map(|(add, h, t, s)| (add, home_of(&ix, h * 3), t, s))
                .collect();
            let homes: Vec<u64> = (0..4).map(|h| home_of(&ix, h * 3)).collect();
            let mut model: BTreeSet<(u64, u32, u32)> = BTreeSet::new();
            for (add, hash, tag, slot) in ops {
                // Slots are unique across the index, as in the session table.
                let present = model.iter().find(|e| e.2 == slot).copied();
                if add {
                    if present.is_none() && !ix.is_full() {
                        ix.insert(hash, tag, slot);
                        model.insert((hash, tag, slot));
                    }
                } else if let Some(e) = present {
                    prop_assert!(ix.remove(e.0, e.1, e.2));
                    model.remove(&e);
                } else {
                    prop_assert!(!ix.remove(hash, tag, slot));
                }
                prop_assert_eq!(ix.len, model.len());
                for &(h, t, s) in &model {
                    prop_assert_eq!(ix.find(h, t, |x| x == s), Some(s));
                }
                for &h in &homes {
                    for t in 0..4 {
                        let mut found = BTreeSet::new();
                        ix.find(h, t, |x| { found.insert(x); false });
                        let want: BTreeSet<u32> = model.iter().filter(|e| e.0 == h && e.1 == t).map(|e| e.2).collect();
                        prop_assert!(want.is_subset(&found), "{want:?} not in {found:?}");
                        prop_assert!(found.iter().all(|s| model.iter().any(|e| e.1 == t && e.2 == *s)));
                    }
                }
                let overflow: u64 = ix.buckets.iter().map(|b| u64::from(b.overflow)).sum();
                let displaced: u64 = model.iter().map(|e| {
                    let at = (0..ix.bucket_count()).find(|&i| {
                        let b = &ix.buckets[i];
                        (0..LANES).any(|l| b.used & (1u16 << l) != 0 && b.slots[l] == e.2)
                    }).unwrap();
                    ((at + ix.bucket_count() - ix.home(e.0)) % ix.bucket_count()) as u64
                }).sum();
                prop_assert_eq!(overflow, displaced);
            }
        }
    }
}
