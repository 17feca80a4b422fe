//! A global allocator that backs large allocations with transparent huge pages.
//!
//! At a million sessions the worker's tables (session slab and indexes, NAT mappings and
//! indexes) span hundreds of megabytes, read at random: with 4 KiB pages nearly every
//! lookup also misses the TLB, and the page walk is one more cache miss that the fast
//! path's prefetches cannot hide. [`HugePageAlloc`] is the system allocator plus one
//! `madvise(MADV_HUGEPAGE)` over the 2 MiB-aligned interior of every allocation of at
//! least [`ADVISE_FROM`] bytes, made before the memory is first touched, so that the kernel
//! backs it with 2 MiB pages where transparent huge pages are enabled (`always` or
//! `madvise` in `/sys/kernel/mm/transparent_hugepage/enabled`). Where they are not, the
//! advice fails harmlessly and the memory stays in 4 KiB pages.
//!
//! `vbng-up` and `vbng-perf` install it with `#[global_allocator]`.

use std::alloc::{GlobalAlloc, Layout, System};

/// The huge page size the advice aims at (x86-64 PMD pages).
const HUGE_PAGE: usize = 2 << 20;

/// Allocations from this size on are advised: below it, an allocation holds at most one
/// whole huge page and its rounding would waste more than it saves.
pub const ADVISE_FROM: usize = 4 << 20;

/// The system allocator, with large allocations advised to use huge pages.
#[derive(Debug, Default, Clone, Copy)]
pub struct HugePageAlloc;

/// The whole huge pages inside `[ptr, ptr + size)`: (start, length), length 0 for none.
fn huge_interior(ptr: usize, size: usize) -> (usize, usize) {
    let Some(start) = ptr.checked_next_multiple_of(HUGE_PAGE) else {
        return (0, 0);
    };
    let end = ptr.saturating_add(size) & !(HUGE_PAGE - 1);
    (start, end.saturating_sub(start))
}

/// Advises the huge pages inside the block at `ptr` of `size` bytes, when it is large.
fn advise(ptr: *mut u8, size: usize) {
    if ptr.is_null() || size < ADVISE_FROM {
        return;
    }
    let (start, len) = huge_interior(ptr as usize, size);
    if len > 0 {
        // SAFETY: [start, start + len) lies inside a block the caller owns; MADV_HUGEPAGE
        // changes how the kernel backs those pages, never their contents.
        unsafe {
            libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
        }
    }
}

// SAFETY: every call is forwarded to `System` with its arguments unchanged; the advice only
// touches memory of the block just returned.
unsafe impl GlobalAlloc for HugePageAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc(layout) };
        advise(p, layout.size());
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc_zeroed(layout) };
        advise(p, layout.size());
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    /// A block growing to [`ADVISE_FROM`] bytes or more moves to a new advised block: the
    /// system allocator's `mremap` would move its pages to an address that is not 2 MiB
    /// aligned with the old one, splitting every huge page back into small ones. The copy
    /// costs what the block holds (about 150 MB for a 1M-session slab) where `mremap` only
    /// moved page tables.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size < ADVISE_FROM {
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `new_layout` has a non-zero size (at least ADVISE_FROM).
        let p = unsafe { self.alloc(new_layout) };
        if !p.is_null() {
            // SAFETY: the old block is valid for `layout.size()` bytes, the new one for
            // `new_size`, and they do not overlap.
            unsafe { std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size)) };
            // SAFETY: `ptr` was allocated by this allocator with `layout` (the caller's
            // guarantee) and is freed once, here.
            unsafe { self.dealloc(ptr, layout) };
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interior_is_the_whole_huge_pages_inside() {
        const M: usize = 1 << 20;
        assert_eq!(huge_interior(0, 4 * M), (0, 4 * M));
        assert_eq!(huge_interior(16, 4 * M), (2 * M, 2 * M));
        assert_eq!(huge_interior(16, 6 * M), (2 * M, 4 * M));
        assert_eq!(huge_interior(3 * M, 2 * M).1, 0);
        assert_eq!(huge_interior(usize::MAX - 10, 100).1, 0);
    }

    #[test]
    fn large_and_small_blocks_work_like_the_system_allocator() {
        let a = HugePageAlloc;
        for size in [8, 4096, ADVISE_FROM, 3 * ADVISE_FROM + 123] {
            let layout = Layout::from_size_align(size, 64).unwrap();
            // SAFETY: a non-zero layout.
            let p = unsafe { a.alloc_zeroed(layout) };
            assert!(!p.is_null());
            // SAFETY: `p` is valid and initialised (zeroed) for `size` bytes.
            let zeroed = unsafe { std::slice::from_raw_parts_mut(p, size) };
            assert!(zeroed.iter().all(|&b| b == 0));
            zeroed.fill(0xa5);
            // SAFETY: `p` came from this allocator with `layout`; not used after this.
            let q = unsafe { a.realloc(p, layout, size * 2) };
            assert!(!q.is_null());
            // SAFETY: the first `size` bytes of `q` hold the old contents.
            let kept = unsafe { std::slice::from_raw_parts(q, size) };
            assert!(kept.iter().all(|&b| b == 0xa5));
            // SAFETY: `q` came from this allocator with this layout and is freed once.
            unsafe { a.dealloc(q, Layout::from_size_align(size * 2, 64).unwrap()) };
        }
    }
}
