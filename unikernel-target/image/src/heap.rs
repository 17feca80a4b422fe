//! The global allocator: a first-fit free list over the RAM between the stacks and the end
//! of guest memory. One CPU and no Rust code in interrupt handlers, so a plain cell is
//! enough.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr::NonNull;

use linked_list_allocator::Heap;

/// The allocator.
pub struct UkHeap(UnsafeCell<Heap>);

// SAFETY: the image runs on one CPU and never allocates from an interrupt handler, so the
// heap is never used from two places at once.
unsafe impl Sync for UkHeap {}

#[global_allocator]
static HEAP: UkHeap = UkHeap(UnsafeCell::new(Heap::empty()));

/// Hands `[start, end)` to the allocator. Called once, before the first allocation.
pub fn init(start: u64, end: u64) {
    // SAFETY: single CPU, no concurrent use (see the Sync impl).
    let heap = unsafe { &mut *HEAP.0.get() };
    // SAFETY: the range is mapped, writable RAM that nothing else uses, and no allocation
    // has happened yet.
    unsafe { heap.init(start as *mut u8, (end - start) as usize) }
}

/// Bytes in use and bytes free.
pub fn usage() -> (usize, usize) {
    // SAFETY: single CPU, no concurrent use (see the Sync impl).
    let heap = unsafe { &*HEAP.0.get() };
    (heap.used(), heap.free())
}

// SAFETY: allocation and release go to the free-list heap, which hands out disjoint,
// suitably aligned blocks of the RAM given to `init` and takes them back.
unsafe impl GlobalAlloc for UkHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: single CPU, no concurrent use (see the Sync impl).
        let heap = unsafe { &mut *self.0.get() };
        heap.allocate_first_fit(layout)
            .map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: single CPU, no concurrent use (see the Sync impl).
            let heap = unsafe { &mut *self.0.get() };
            // SAFETY: `ptr` came from `alloc` with this layout (GlobalAlloc's contract).
            unsafe { heap.deallocate(p, layout) }
        }
    }
}
