//! Intrusive index-linked lists of subscribers and the timer wheel that parks them.

use alloc::vec;
use alloc::vec::Vec;

/// "No index".
pub(crate) const NIL: u32 = u32::MAX;

/// log2 of the wheel granularity in nanoseconds (1.024 us).
pub(crate) const TICK_SHIFT: u32 = 10;
/// Slots in the wheel; the horizon is `SLOTS << TICK_SHIFT` ns (16.8 ms). A subscriber that
/// has to wait longer is parked at the horizon and re-parked when it comes round.
pub(crate) const SLOTS: usize = 1 << 14;
const L0_WORDS: usize = SLOTS / 64;
const L1_WORDS: usize = L0_WORDS / 64;

/// Circular doubly linked lists over `items` elements, with one sentinel per list, so an
/// element can be unlinked in O(1) without knowing which list holds it.
#[derive(Debug)]
pub(crate) struct Links {
    prev: Vec<u32>,
    next: Vec<u32>,
    items: u32,
}

impl Links {
    pub(crate) fn new(items: u32, lists: u32) -> Self {
        let n = items as usize + lists as usize;
        let all: Vec<u32> = (0..n as u32).collect();
        Links {
            prev: all.clone(),
            next: all,
            items,
        }
    }

    #[inline]
    fn sentinel(&self, list: u32) -> usize {
        (self.items + list) as usize
    }

    #[inline]
    pub(crate) fn is_empty(&self, list: u32) -> bool {
        let s = self.sentinel(list);
        self.next[s] as usize == s
    }

    #[inline]
    pub(crate) fn front(&self, list: u32) -> Option<u32> {
        let s = self.sentinel(list);
        let f = self.next[s];
        (f as usize != s).then_some(f)
    }

    #[inline]
    pub(crate) fn push_back(&mut self, list: u32, item: u32) {
        let s = self.sentinel(list);
        let last = self.prev[s];
        self.next[last as usize] = item;
        self.prev[item as usize] = last;
        self.next[item as usize] = s as u32;
        self.prev[s] = item;
    }

    /// Unlinks `item` from whatever list holds it (no-op for an unlinked item).
    #[inline]
    pub(crate) fn unlink(&mut self, item: u32) {
        let i = item as usize;
        let (p, n) = (self.prev[i], self.next[i]);
        self.next[p as usize] = n;
        self.prev[n as usize] = p;
        self.prev[i] = item;
        self.next[i] = item;
    }
}

/// A three-level occupancy bitmap over the wheel slots plus the last processed tick.
#[derive(Debug)]
pub(crate) struct Wheel {
    l0: Vec<u64>,
    l1: [u64; L1_WORDS],
    l2: u64,
    /// Every tick `<= tick` has been processed; parked entries lie in `(tick, tick + SLOTS]`.
    pub(crate) tick: u64,
}

impl Wheel {
    pub(crate) fn new() -> Self {
        Wheel {
            l0: vec![0; L0_WORDS],
            l1: [0; L1_WORDS],
            l2: 0,
            tick: 0,
        }
    }

    #[inline]
    pub(crate) fn set(&mut self, slot: usize) {
        self.l0[slot / 64] |= 1 << (slot % 64);
        self.l1[slot / 4096] |= 1 << ((slot / 64) % 64);
        self.l2 |= 1 << (slot / 4096);
    }

    #[inline]
    pub(crate) fn clear(&mut self, slot: usize) {
        let w = slot / 64;
        self.l0[w] &= !(1 << (slot % 64));
        if self.l0[w] == 0 {
            self.l1[w / 64] &= !(1 << (w % 64));
            if self.l1[w / 64] == 0 {
                self.l2 &= !(1 << (w / 64));
            }
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.l2 == 0
    }

    /// The smallest occupied slot `>= pos`.
    fn find_from(&self, pos: usize) -> Option<usize> {
        let w = pos / 64;
        let m = self.l0[w] & (!0u64 << (pos % 64));
        if m != 0 {
            return Some(w * 64 + m.trailing_zeros() as usize);
        }
        let p1 = w + 1;
        if p1 < L0_WORDS {
            let w1 = p1 / 64;
            let m1 = self.l1[w1] & (!0u64 << (p1 % 64));
            if m1 != 0 {
                return Some(self.descend_l0(w1 * 64 + m1.trailing_zeros() as usize));
            }
            let p2 = w1 + 1;
            if p2 < L1_WORDS {
                let m2 = self.l2 & (!0u64 << p2);
                if m2 != 0 {
                    let w1 = m2.trailing_zeros() as usize;
                    return Some(self.descend_l0(w1 * 64 + self.l1[w1].trailing_zeros() as usize));
                }
            }
        }
        None
    }

    fn descend_l0(&self, word: usize) -> usize {
        word * 64 + self.l0[word].trailing_zeros() as usize
    }

    /// The earliest occupied slot after `tick`, with the tick it stands for.
    pub(crate) fn next_due(&self) -> Option<(usize, u64)> {
        if self.is_empty() {
            return None;
        }
        let start = ((self.tick + 1) % SLOTS as u64) as usize;
        let slot = self.find_from(start).or_else(|| self.find_from(0))?;
        let dist = (slot + SLOTS - start) % SLOTS;
        Some((slot, self.tick + 1 + dist as u64))
    }

    /// The slot for an entry due at `at_ns`, clamped into the wheel's horizon.
    #[inline]
    pub(crate) fn slot_for(&self, at_ns: u64) -> usize {
        let t = at_ns.div_ceil(1 << TICK_SHIFT);
        let t = t.clamp(self.tick + 1, self.tick + SLOTS as u64);
        (t % SLOTS as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_find_wraps() {
        let mut w = Wheel::new();
        assert_eq!(w.next_due(), None);
        for s in [5usize, 70, 4100, 16383] {
            w.set(s);
        }
        assert_eq!(w.find_from(0), Some(5));
        assert_eq!(w.find_from(6), Some(70));
        assert_eq!(w.find_from(71), Some(4100));
        assert_eq!(w.find_from(4101), Some(16383));
        w.tick = 10;
        assert_eq!(w.next_due(), Some((70, 70)));
        w.tick = 16383;
        assert_eq!(w.next_due(), Some((5, 16384 + 5)));
        w.clear(5);
        w.clear(70);
        w.clear(4100);
        assert_eq!(w.next_due(), Some((16383, 16383 + 16384)));
        w.clear(16383);
        assert!(w.is_empty());
    }

    #[test]
    fn links() {
        let mut l = Links::new(4, 2);
        assert!(l.is_empty(0));
        l.push_back(0, 1);
        l.push_back(0, 3);
        l.push_back(1, 2);
        assert_eq!(l.front(0), Some(1));
        l.unlink(1);
        assert_eq!(l.front(0), Some(3));
        l.unlink(3);
        l.unlink(3);
        assert!(l.is_empty(0));
        assert_eq!(l.front(1), Some(2));
    }
}
