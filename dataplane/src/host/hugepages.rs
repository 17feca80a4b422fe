//! A global allocator that backs large allocations with transparent huge pages, and grows
//! them without copying.
//!
//! At a million sessions the worker's tables (session slab and indexes, NAT mappings and
//! indexes) span hundreds of megabytes, read at random: with 4 KiB pages nearly every
//! lookup also misses the TLB, and the page walk is one more cache miss that the fast
//! path's prefetches cannot hide. [`HugePageAlloc`] maps every allocation of at least
//! [`MAP_FROM`] bytes itself, at a 2 MiB-aligned address, with `madvise(MADV_HUGEPAGE)`
//! before the memory is first touched, so that the kernel backs it with 2 MiB pages where
//! transparent huge pages are enabled (`always` or `madvise` in
//! `/sys/kernel/mm/transparent_hugepage/enabled`). Where they are not, the advice fails
//! harmlessly and the memory stays in 4 KiB pages. Smaller allocations go to the system
//! allocator.
//!
//! Such a block grows with `mremap` to another 2 MiB-aligned address: the kernel moves its
//! page tables (a huge page is one entry), not its bytes. A session table grows inside its
//! worker, between two bursts, and copying a 1M-session slab (over 100 MB) stalled the
//! worker for 80-320 ms a step.
//!
//! `vbng-up` and `vbng-perf` install it with `#[global_allocator]`.

use std::alloc::{GlobalAlloc, Layout, System};

/// The huge page size the mappings are aligned to (x86-64 PMD pages).
const HUGE_PAGE: usize = 2 << 20;

/// The base page size.
const PAGE: usize = 4096;

/// Allocations from this size on are mapped here: below it, a block holds at most one whole
/// huge page and the system allocator packs it better.
pub const MAP_FROM: usize = 4 << 20;

/// The system allocator, with large allocations mapped on huge pages.
#[derive(Debug, Default, Clone, Copy)]
pub struct HugePageAlloc;

/// True if blocks of `layout` are mapped by [`HugePageAlloc`] itself (a 2 MiB-aligned
/// mapping satisfies any alignment up to 2 MiB).
fn is_mapped(size: usize, align: usize) -> bool {
    size >= MAP_FROM && align <= HUGE_PAGE
}

/// A reservation of `len` bytes plus one huge page, with protection `prot`: (its start,
/// the 2 MiB-aligned address inside it where `len` bytes fit), or None.
fn reserve(len: usize, prot: libc::c_int) -> Option<(usize, usize)> {
    let span = len.checked_add(HUGE_PAGE)?;
    // SAFETY: a fresh anonymous mapping at an address of the kernel's choice.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            span,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return None;
    }
    let base = base as usize;
    Some((base, base.next_multiple_of(HUGE_PAGE)))
}

/// Unmaps what a reservation of `len + HUGE_PAGE` bytes at `base` holds around the `len`
/// bytes at `start`, then advises those bytes to use huge pages.
fn trim_and_advise(base: usize, start: usize, len: usize) {
    let head = start - base;
    let tail = HUGE_PAGE - head;
    if head > 0 {
        // SAFETY: the range lies in the reservation at `base`, before the block kept at
        // `start`, and nothing else uses it.
        unsafe { libc::munmap(base as *mut libc::c_void, head) };
    }
    if tail > 0 {
        // SAFETY: as above, after the block.
        unsafe { libc::munmap((start + len) as *mut libc::c_void, tail) };
    }
    // SAFETY: the block is ours; MADV_HUGEPAGE changes how the kernel backs its pages,
    // never their contents.
    unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
}

/// A new zeroed block of `size` bytes at a 2 MiB-aligned address, or null.
fn map(size: usize) -> *mut u8 {
    let Some(len) = size.checked_next_multiple_of(PAGE) else {
        return std::ptr::null_mut();
    };
    let Some((base, start)) = reserve(len, libc::PROT_READ | libc::PROT_WRITE) else {
        return std::ptr::null_mut();
    };
    trim_and_advise(base, start, len);
    start as *mut u8
}

/// Unmaps a block from [`map`] or [`remap`].
///
/// # Safety
/// `ptr` came from `map`/`remap` for `size` bytes and is not used afterwards.
unsafe fn unmap(ptr: *mut u8, size: usize) {
    // SAFETY: the caller's guarantee; the length is rounded as when it was mapped.
    unsafe { libc::munmap(ptr.cast(), size.next_multiple_of(PAGE)) };
}

/// Resizes a block from [`map`]: shrunk or grown in place when the address space allows,
/// otherwise moved to a new 2 MiB-aligned address with its page tables. Null on failure
/// (the old block is then unchanged).
///
/// # Safety
/// `ptr` came from `map`/`remap` for `old_size` bytes.
unsafe fn remap(ptr: *mut u8, old_size: usize, new_size: usize) -> *mut u8 {
    let old_len = old_size.next_multiple_of(PAGE);
    let Some(new_len) = new_size.checked_next_multiple_of(PAGE) else {
        return std::ptr::null_mut();
    };
    if new_len == old_len {
        return ptr;
    }
    // In place first (always possible when shrinking): same address, same alignment.
    // SAFETY: resizes the caller's mapping without moving it.
    let same = unsafe { libc::mremap(ptr.cast(), old_len, new_len, 0) };
    if same != libc::MAP_FAILED {
        if new_len > old_len {
            // SAFETY: the grown part belongs to the block now.
            unsafe {
                libc::madvise(
                    ptr.wrapping_add(old_len).cast(),
                    new_len - old_len,
                    libc::MADV_HUGEPAGE,
                )
            };
        }
        return ptr;
    }
    // Moved: onto an aligned address inside a reservation (MREMAP_FIXED replaces the
    // reservation's pages there), so that huge pages move whole.
    let Some((base, start)) = reserve(new_len, libc::PROT_NONE) else {
        return std::ptr::null_mut();
    };
    // SAFETY: moves the caller's mapping to `start`, inside our own reservation.
    let moved = unsafe {
        libc::mremap(
            ptr.cast(),
            old_len,
            new_len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            start as *mut libc::c_void,
        )
    };
    if moved == libc::MAP_FAILED {
        // SAFETY: the reservation is ours and unused.
        unsafe { libc::munmap(base as *mut libc::c_void, new_len + HUGE_PAGE) };
        return std::ptr::null_mut();
    }
    trim_and_advise(base, start, new_len);
    start as *mut u8
}

// SAFETY: small blocks are the system allocator's, with the caller's arguments unchanged;
// large ones are private anonymous mappings of at least the requested size at a 2 MiB
// boundary (so aligned for any layout `is_mapped` accepts), zeroed by the kernel, each
// unmapped once by `dealloc`. Which kind a block is follows from its layout, which the
// caller passes unchanged to `dealloc` and `realloc`.
unsafe impl GlobalAlloc for HugePageAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_mapped(layout.size(), layout.align()) {
            return map(layout.size());
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_mapped(layout.size(), layout.align()) {
            // Fresh anonymous memory is zero.
            return map(layout.size());
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_mapped(layout.size(), layout.align()) {
            // SAFETY: a mapped block of this size (its layout says so), freed once.
            unsafe { unmap(ptr, layout.size()) };
            return;
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        match (is_mapped(layout.size(), align), is_mapped(new_size, align)) {
            // SAFETY: a mapped block of `layout.size()` bytes (its layout says so).
            (true, true) => unsafe { remap(ptr, layout.size(), new_size) },
            // SAFETY: forwarded with the caller's guarantees.
            (false, false) => unsafe { System.realloc(ptr, layout, new_size) },
            // Across the threshold: a new block of the other kind, and a copy.
            _ => {
                let Ok(new_layout) = Layout::from_size_align(new_size, align) else {
                    return std::ptr::null_mut();
                };
                // SAFETY: `new_layout` has a non-zero size (the caller's guarantee).
                let p = unsafe { self.alloc(new_layout) };
                if !p.is_null() {
                    // SAFETY: the old block is valid for `layout.size()` bytes, the new one
                    // for `new_size`, and they do not overlap.
                    unsafe { std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size)) };
                    // SAFETY: `ptr` came from this allocator with `layout` and is freed
                    // once, here.
                    unsafe { self.dealloc(ptr, layout) };
                }
                p
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_and_small_blocks_work_like_the_system_allocator() {
        let a = HugePageAlloc;
        for size in [8, 4096, MAP_FROM / 2 + 5, MAP_FROM, 3 * MAP_FROM + 123] {
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

    /// Fills `len` bytes at `p` with a pattern of their offsets.
    fn fill(p: *mut u8, len: usize) {
        // SAFETY: the caller's block is valid for `len` bytes.
        let b = unsafe { std::slice::from_raw_parts_mut(p, len) };
        for (i, x) in b.iter_mut().enumerate() {
            *x = (i / PAGE) as u8 ^ i as u8;
        }
    }

    fn holds_pattern(p: *const u8, len: usize) -> bool {
        // SAFETY: the caller's block is valid for `len` bytes.
        let b = unsafe { std::slice::from_raw_parts(p, len) };
        b.iter()
            .enumerate()
            .all(|(i, &x)| x == (i / PAGE) as u8 ^ i as u8)
    }

    #[test]
    fn large_blocks_sit_on_huge_page_boundaries_and_keep_them_when_moved() {
        let a = HugePageAlloc;
        let layout = Layout::from_size_align(MAP_FROM, 8).unwrap();
        // SAFETY: a non-zero layout.
        let p = unsafe { a.alloc(layout) };
        assert!(
            !p.is_null() && (p as usize).is_multiple_of(HUGE_PAGE),
            "{p:?}"
        );
        fill(p, MAP_FROM);
        // Something right after the block, so that it cannot grow in place and must move.
        // SAFETY: a fresh mapping at a free address (NOREPLACE refuses a taken one, which
        // blocks the growth as well).
        let blocker = unsafe {
            libc::mmap(
                p.wrapping_add(MAP_FROM).cast(),
                PAGE,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        // SAFETY: `p` is this allocator's block of `layout`.
        let q = unsafe { a.realloc(p, layout, 3 * MAP_FROM) };
        assert!(
            !q.is_null() && q != p && (q as usize).is_multiple_of(HUGE_PAGE),
            "{q:?}"
        );
        assert!(holds_pattern(q, MAP_FROM));
        // The grown part is usable; then shrink in place.
        fill(q, 3 * MAP_FROM);
        let grown = Layout::from_size_align(3 * MAP_FROM, 8).unwrap();
        // SAFETY: `q` is this allocator's block of `grown`.
        let r = unsafe { a.realloc(q, grown, MAP_FROM + 100) };
        assert_eq!(r, q);
        assert!(holds_pattern(r, MAP_FROM + 100));
        // Below the threshold: back to the system allocator, contents kept.
        let shrunk = Layout::from_size_align(MAP_FROM + 100, 8).unwrap();
        // SAFETY: `r` is this allocator's block of `shrunk`.
        let small = unsafe { a.realloc(r, shrunk, 1000) };
        assert!(!small.is_null() && holds_pattern(small, 1000));
        // SAFETY: `small` is this allocator's block of 1000 bytes, freed once.
        unsafe { a.dealloc(small, Layout::from_size_align(1000, 8).unwrap()) };
        if blocker != libc::MAP_FAILED {
            // SAFETY: the blocker mapping is ours.
            unsafe { libc::munmap(blocker, PAGE) };
        }
    }
}
