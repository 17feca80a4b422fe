//! Eight 32-bit lanes compared with one value at once, for the session index's buckets.
//!
//! Hosted x86-64 builds use SSE2 (part of the x86-64 baseline). Other builds, among them
//! the portable `no_std` core, which has no unsafe code and may run where vector registers
//! are off limits, compare lane by lane.

/// Bitmap of the lanes equal to `value`: bit `i` set if `lanes[i] == value`.
#[inline(always)]
pub fn equal_mask(lanes: &[u32; 8], value: u32) -> u32 {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[allow(unsafe_code)]
    // SAFETY: SSE2 is part of the x86-64 baseline, so every x86-64 CPU has it.
    return unsafe { equal_mask_sse2(lanes, value) };
    #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
    {
        let mut m = 0;
        for (i, l) in lanes.iter().enumerate() {
            m |= u32::from(*l == value) << i;
        }
        m
    }
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "sse2")]
#[inline]
fn equal_mask_sse2(lanes: &[u32; 8], value: u32) -> u32 {
    use core::arch::x86_64::{
        _mm_cmpeq_epi32, _mm_movemask_epi8, _mm_packs_epi16, _mm_packs_epi32, _mm_set_epi32,
        _mm_set1_epi32,
    };
    let l = lanes.map(|x| x as i32);
    let v = _mm_set1_epi32(value as i32);
    let lo = _mm_cmpeq_epi32(_mm_set_epi32(l[3], l[2], l[1], l[0]), v);
    let hi = _mm_cmpeq_epi32(_mm_set_epi32(l[7], l[6], l[5], l[4]), v);
    // All-ones or zero per lane; the two signed packs keep that while narrowing each lane
    // to one byte, and movemask collects the bytes' top bits.
    let words = _mm_packs_epi32(lo, hi);
    (_mm_movemask_epi8(_mm_packs_epi16(words, words)) & 0xff) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The vector compare agrees with comparing lane by lane.
        #[test]
        fn agrees_with_lane_by_lane(lanes in any::<[u32; 8]>(), pick in 0usize..9, value in any::<u32>()) {
            let mut lanes = lanes;
            let value = if pick < 8 { lanes[pick] } else { value };
            if pick < 8 {
                lanes[(pick + 3) % 8] = value;
            }
            let want = lanes.iter().enumerate().fold(0, |m, (i, l)| m | u32::from(*l == value) << i);
            prop_assert_eq!(equal_mask(&lanes, value), want);
        }
    }
}
