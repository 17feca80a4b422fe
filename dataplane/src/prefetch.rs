//! Cache prefetch hints for the pipeline's table lookups: a burst's stage asks for the
//! lines the next stage will read, so the misses of a whole burst overlap.
//!
//! A hint never faults and changes nothing but timing. Hosted x86-64 builds issue
//! `prefetcht0`; other builds (the portable `no_std` core, which has no unsafe code) issue
//! nothing.

/// Asks for the cache lines of `*r` (the first two: every table entry the pipeline reads
/// lies within them).
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[allow(unsafe_code)]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = (r as *const T).cast::<i8>();
        // SAFETY: _mm_prefetch only hints the cache and never faults, whatever the address;
        // SSE is part of the x86-64 baseline.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p) };
        if size_of::<T>() > 64 {
            // SAFETY: as above (the address is computed with wrapping_add: no promise).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64)) };
        }
    }
    #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
    let _ = r;
}
