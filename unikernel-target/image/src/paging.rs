//! The memory layout the linker script defines (the page tables themselves are the
//! linker's: see build.rs).

unsafe extern "C" {
    static __heap_start: u8;
}

/// RAM mapped by the page tables; the heap ends here at the latest.
pub const MAPPED_RAM: u64 = 16 << 20;

/// The first byte after the image's stacks: where the heap starts.
pub fn heap_start() -> u64 {
    core::ptr::addr_of!(__heap_start) as u64
}
