//! Outside addresses and port blocks.
//!
//! [`AddressPool`]: the worker's outside addresses, which blocks of each are in use (one bit
//! per block), and the addresses bucketed by their number of free blocks so that the one with
//! the most free blocks is found in O(1) (paired pooling puts a subscriber's first block
//! there).
//!
//! [`PortBlocks`]: the block slots of every subscriber slot (`blocks_per_subscriber` each),
//! preallocated with the subscriber table. A slot counts the ports in use per protocol; which
//! ports those are, the mapping table's outside index knows (a block's ports are its
//! subscriber's alone, so a port is free exactly when no mapping has it).

use alloc::vec;
use alloc::vec::Vec;

use super::NatProtocol;

/// "No entry" in index fields.
pub(crate) const NONE: u32 = u32::MAX;

/// Sets the bits of `word` at and above `valid` (the padding after the last valid bit of a
/// bitmap whose final word is only partly used).
#[inline]
fn padding_mask(valid: u32) -> u64 {
    if valid >= 64 { 0 } else { u64::MAX << valid }
}

/// The worker's outside addresses and the blocks in use on each.
#[derive(Debug)]
pub(crate) struct AddressPool {
    /// Address values, sorted ascending; the position is the address index.
    addrs: Vec<u32>,
    blocks_per_addr: u32,
    words_per_addr: usize,
    /// Block-in-use bits, `words_per_addr` words per address; padding bits set.
    used: Vec<u64>,
    /// Free blocks per address.
    free: Vec<u32>,
    /// Block to try first on the next allocation, per address (rotates through the blocks so
    /// that a released block is not handed out again at once).
    cursor: Vec<u32>,
    /// Per free-block count 0..=blocks_per_addr: first address of that bucket.
    head: Vec<u32>,
    next: Vec<u32>,
    prev: Vec<u32>,
    /// Highest non-empty bucket.
    max_free: u32,
}

impl AddressPool {
    /// A pool of `addrs` (any order, no duplicates) with `blocks_per_addr` blocks each.
    pub(crate) fn new(mut addrs: Vec<u32>, blocks_per_addr: u32) -> Self {
        addrs.sort_unstable();
        addrs.dedup();
        let n = addrs.len();
        let words_per_addr = (blocks_per_addr as usize).div_ceil(64);
        let mut used = vec![0u64; n * words_per_addr];
        if words_per_addr > 0 {
            let pad = padding_mask(blocks_per_addr - (words_per_addr as u32 - 1) * 64);
            for a in 0..n {
                used[a * words_per_addr + words_per_addr - 1] = pad;
            }
        }
        let mut pool = AddressPool {
            addrs,
            blocks_per_addr,
            words_per_addr,
            used,
            free: vec![blocks_per_addr; n],
            cursor: vec![0; n],
            head: vec![NONE; blocks_per_addr as usize + 1],
            next: vec![NONE; n],
            prev: vec![NONE; n],
            max_free: 0,
        };
        // Link in reverse so that the lowest address is first in its bucket.
        for a in (0..n as u32).rev() {
            pool.link(a, blocks_per_addr);
        }
        pool.max_free = if n == 0 { 0 } else { blocks_per_addr };
        pool
    }

    /// Number of addresses.
    pub(crate) fn len(&self) -> usize {
        self.addrs.len()
    }

    /// Address value of index `a`.
    #[inline]
    pub(crate) fn address(&self, a: u32) -> u32 {
        self.addrs[a as usize]
    }

    /// Index of address `ip`, if it is one of the pool's.
    #[inline]
    pub(crate) fn index_of(&self, ip: u32) -> Option<u32> {
        match (self.addrs.first(), self.addrs.last()) {
            (Some(&lo), Some(&hi)) if ip >= lo && ip <= hi => {
                self.addrs.binary_search(&ip).ok().map(|i| i as u32)
            }
            _ => None,
        }
    }

    /// Free blocks on address `a`.
    pub(crate) fn free_blocks(&self, a: u32) -> u32 {
        self.free[a as usize]
    }

    /// Blocks in use over all addresses.
    pub(crate) fn blocks_in_use(&self) -> u64 {
        self.free
            .iter()
            .map(|f| u64::from(self.blocks_per_addr - f))
            .sum()
    }

    /// Bytes allocated.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.addrs.capacity() * 4
            + self.used.capacity() * 8
            + (self.free.capacity() + self.cursor.capacity()) * 4
            + (self.head.capacity() + self.next.capacity() + self.prev.capacity()) * 4
    }

    fn link(&mut self, a: u32, bucket: u32) {
        let h = self.head[bucket as usize];
        self.next[a as usize] = h;
        self.prev[a as usize] = NONE;
        if h != NONE {
            self.prev[h as usize] = a;
        }
        self.head[bucket as usize] = a;
    }

    fn unlink(&mut self, a: u32, bucket: u32) {
        let (p, n) = (self.prev[a as usize], self.next[a as usize]);
        if p == NONE {
            self.head[bucket as usize] = n;
        } else {
            self.next[p as usize] = n;
        }
        if n != NONE {
            self.prev[n as usize] = p;
        }
    }

    /// The address with the most free blocks, if any address has one.
    pub(crate) fn most_free(&self) -> Option<u32> {
        if self.max_free == 0 {
            return None;
        }
        let a = self.head[self.max_free as usize];
        (a != NONE).then_some(a)
    }

    /// Takes a free block on address `a`; returns its number (0..blocks_per_addr).
    pub(crate) fn alloc_block(&mut self, a: u32) -> Option<u32> {
        let f = self.free[a as usize];
        if f == 0 {
            return None;
        }
        let w0 = a as usize * self.words_per_addr;
        let words = &mut self.used[w0..w0 + self.words_per_addr];
        let start = self.cursor[a as usize] % self.blocks_per_addr;
        // Scan from the cursor's word (the cursor's own bit and those after it first), then
        // wrap around.
        let sw = (start / 64) as usize;
        let low_mask = if start.is_multiple_of(64) {
            0
        } else {
            u64::MAX >> (64 - start % 64)
        };
        let mut found = None;
        for i in 0..=self.words_per_addr {
            let w = (sw + i) % self.words_per_addr;
            let mut taken = words[w];
            if i == 0 {
                taken |= low_mask;
            }
            if taken != u64::MAX {
                found = Some(w * 64 + (!taken).trailing_zeros() as usize);
                break;
            }
        }
        let b = found? as u32;
        words[(b / 64) as usize] |= 1 << (b % 64);
        self.cursor[a as usize] = (b + 1) % self.blocks_per_addr;
        self.unlink(a, f);
        self.link(a, f - 1);
        self.free[a as usize] = f - 1;
        if self.head[self.max_free as usize] == NONE {
            self.max_free -= 1;
        }
        Some(b)
    }

    /// Returns block `b` of address `a` to the pool.
    pub(crate) fn free_block(&mut self, a: u32, b: u32) {
        let w = a as usize * self.words_per_addr + (b / 64) as usize;
        let bit = 1u64 << (b % 64);
        if self.used[w] & bit == 0 {
            debug_assert!(false, "block {b} of address {a} freed twice");
            return;
        }
        self.used[w] &= !bit;
        let f = self.free[a as usize];
        self.unlink(a, f);
        self.link(a, f + 1);
        self.free[a as usize] = f + 1;
        self.max_free = self.max_free.max(f + 1);
    }
}

/// State of one block slot of a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// No block.
    Empty,
    /// A block of the subscriber's address, in use or idle.
    Active,
    /// The subscriber was released; the block waits for room in the log queue to log its
    /// release (it stays attributed to the subscriber and is not reused meanwhile).
    Releasing,
}

/// One block slot (16 bytes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockSlot {
    /// Block number on the subscriber's address.
    pub block: u32,
    /// Live mappings on the block's ports, per protocol ([`NatProtocol::index`]); at most
    /// the block size, which is a `u16`.
    pub in_use: [u16; NatProtocol::COUNT],
    /// Seconds: when the last mapping went away (or when the block was allocated).
    pub idle_since: u32,
    pub state: SlotState,
    /// Log reason of a pending release (a [`super::NatLogReason`] as `u8`).
    pub reason: u8,
}

const _: () = assert!(core::mem::size_of::<BlockSlot>() == 16);

impl BlockSlot {
    pub(crate) const EMPTY: BlockSlot = BlockSlot {
        block: NONE,
        in_use: [0; NatProtocol::COUNT],
        idle_since: 0,
        state: SlotState::Empty,
        reason: 0,
    };

    /// Live mappings on the block, all protocols.
    #[inline]
    pub(crate) fn mappings(&self) -> u32 {
        self.in_use.iter().map(|&n| u32::from(n)).sum()
    }
}

/// The block slots of every subscriber slot.
#[derive(Debug)]
pub(crate) struct PortBlocks {
    per_sub: usize,
    slots: Vec<BlockSlot>,
}

impl PortBlocks {
    /// Room for `max_subs` subscribers of `per_sub` blocks.
    pub(crate) fn new(max_subs: usize, per_sub: usize) -> Self {
        PortBlocks {
            per_sub,
            slots: Vec::with_capacity(max_subs * per_sub),
        }
    }

    /// Adds the slots of one more subscriber slot (within the preallocated capacity).
    pub(crate) fn grow(&mut self) {
        self.slots
            .extend(core::iter::repeat_n(BlockSlot::EMPTY, self.per_sub));
    }

    /// Block slots per subscriber.
    #[inline]
    pub(crate) fn per_sub(&self) -> usize {
        self.per_sub
    }

    /// Number of slots (subscriber slots so far times `per_sub`).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Slot index of block `k` of subscriber slot `sub`.
    #[inline]
    pub(crate) fn index(&self, sub: u32, k: usize) -> usize {
        sub as usize * self.per_sub + k
    }

    #[inline]
    pub(crate) fn slot(&self, s: usize) -> &BlockSlot {
        &self.slots[s]
    }

    #[inline]
    pub(crate) fn slot_mut(&mut self, s: usize) -> &mut BlockSlot {
        &mut self.slots[s]
    }

    /// Bytes allocated.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.slots.capacity() * core::mem::size_of::<BlockSlot>()
    }

    /// Gives slot `s` block `block`, no port in use, idle since `now_s`.
    pub(crate) fn assign(&mut self, s: usize, block: u32, now_s: u32) {
        self.slots[s] = BlockSlot {
            block,
            in_use: [0; NatProtocol::COUNT],
            idle_since: now_s,
            state: SlotState::Active,
            reason: 0,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_free_address_first_and_round_robin() {
        let mut p = AddressPool::new(alloc::vec![30, 10, 20], 3);
        assert_eq!(p.len(), 3);
        assert_eq!(p.index_of(20), Some(1));
        assert_eq!(p.index_of(25), None);
        assert_eq!(p.index_of(5), None);
        // Every address has 3 free blocks: the first subscriber gets one, the next
        // subscriber another address, and so on.
        let a = p.most_free().unwrap();
        assert_eq!(p.alloc_block(a), Some(0));
        let b = p.most_free().unwrap();
        assert_ne!(a, b);
        p.alloc_block(b).unwrap();
        let c = p.most_free().unwrap();
        assert!(c != a && c != b);
        p.alloc_block(c).unwrap();
        assert_eq!(p.blocks_in_use(), 3);
        // Exhaust address a.
        assert_eq!(p.alloc_block(a), Some(1));
        assert_eq!(p.alloc_block(a), Some(2));
        assert_eq!(p.alloc_block(a), None);
        assert_eq!(p.free_blocks(a), 0);
        // Released blocks come back, the cursor moves past them.
        p.free_block(a, 1);
        assert_eq!(p.free_blocks(a), 1);
        assert_eq!(p.alloc_block(a), Some(1));
        // Drain everything.
        while let Some(x) = p.most_free() {
            p.alloc_block(x).unwrap();
        }
        assert_eq!(p.blocks_in_use(), 9);
        p.free_block(b, 2);
        assert_eq!(p.most_free(), Some(b));
    }

    #[test]
    fn blocks_wider_than_a_word() {
        let mut p = AddressPool::new(alloc::vec![1], 130);
        for i in 0..130 {
            assert_eq!(p.alloc_block(0), Some(i));
        }
        assert_eq!(p.alloc_block(0), None);
        p.free_block(0, 64);
        assert_eq!(p.alloc_block(0), Some(64));
    }
}
