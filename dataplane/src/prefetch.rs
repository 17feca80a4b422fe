//! Cache prefetch hints for the pipeline's table lookups: a burst's stage asks for the
//! lines the next stage will read, so the misses of a whole burst overlap.
//!
//! A hint never faults and changes nothing but timing. Hosted x86-64 builds issue
//! `prefetcht0`; other builds (the portable `no_std` core, which has no unsafe code) issue
//! nothing.

/// Asks for the cache line holding the start of `*r`.
#[inline(always)]
pub fn prefetch_line<T>(r: &T) {
    prefetch_at((r as *const T).cast::<u8>(), 0);
}

/// Asks for the first two cache lines of `*r` (one if `T` fits in one line).
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    let p = (r as *const T).cast::<u8>();
    prefetch_at(p, 0);
    if size_of::<T>() > 64 {
        prefetch_at(p, 64);
    }
}

#[inline(always)]
fn prefetch_at(p: *const u8, offset: usize) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[allow(unsafe_code)]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: _mm_prefetch only hints the cache and never faults, whatever the address
        // (computed with wrapping_add: no promise); SSE is part of the x86-64 baseline.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(offset).cast::<i8>()) };
    }
    #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
    let _ = (p, offset);
}
