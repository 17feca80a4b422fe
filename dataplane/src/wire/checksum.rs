//! The Internet checksum: RFC 1071 computation and RFC 1624 incremental update.
//!
//! All functions work on host-order `u16` values of big-endian 16-bit words. A checksum field
//! read from the wire with `u16::from_be_bytes` can be passed to [`update_u16`] directly.

use core::net::Ipv4Addr;

/// Adds the 16-bit big-endian words of `data` into a 32-bit one's complement accumulator
/// (RFC 1071 section 4.1). An odd final byte is padded with zero. Pass the result (possibly
/// plus more partial sums) to [`fold`].
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    // Accumulate in u64 so that no carry is lost for any realistic length, then fold.
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(2);
    for pair in &mut chunks {
        acc += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(*last) << 8;
    }
    while acc > 0xffff_ffff {
        acc = (acc & 0xffff_ffff) + (acc >> 32);
    }
    acc as u32
}

/// `fold(sum(data))`, 32 bits at a time: a 32-bit big-endian word is congruent to the sum
/// of its two 16-bit words modulo 0xffff, and both results are 0 only for all-zero data, so
/// the two are equal. For header verification ([`crate::wire::ipv4::verify_checksum`]);
/// a 20-byte `data` (an IPv4 header without options) takes a fixed, unrolled path.
#[inline]
pub fn fold_sum(data: &[u8]) -> u16 {
    #[inline(always)]
    fn word(c: &[u8]) -> u64 {
        u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
    let mut acc: u64 = 0;
    if let Ok(h) = <&[u8; 20]>::try_from(data) {
        acc = word(&h[0..4]) + word(&h[4..8]) + word(&h[8..12]) + word(&h[12..16]);
        acc += word(&h[16..20]);
    } else {
        let mut chunks = data.chunks_exact(4);
        for c in &mut chunks {
            acc += word(c);
        }
        acc += u64::from(sum(chunks.remainder()));
    }
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Folds a 32-bit accumulator to 16 bits with end-around carry (not complemented).
///
/// Two folds always suffice, so there is no loop: the first leaves at most
/// 0xffff + 0xffff = 0x1fffe, and the second at most 0xfffe + 1.
#[inline]
pub fn fold(acc: u32) -> u16 {
    let acc = (acc & 0xffff) + (acc >> 16);
    let acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// Adds two partial sums with end-around carry.
#[inline]
pub fn combine(a: u32, b: u32) -> u32 {
    let (s, carry) = a.overflowing_add(b);
    s + u32::from(carry)
}

/// The Internet checksum of `data`: the one's complement of the one's complement sum.
/// A buffer that contains a correct checksum field yields 0.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// Partial sum of the IPv4 pseudo header used by UDP and TCP (RFC 768, RFC 793):
/// source, destination, zero, protocol, and the transport length.
#[inline]
pub fn pseudo_header_ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> u32 {
    let s = src.octets();
    let d = dst.octets();
    u32::from(u16::from_be_bytes([s[0], s[1]]))
        + u32::from(u16::from_be_bytes([s[2], s[3]]))
        + u32::from(u16::from_be_bytes([d[0], d[1]]))
        + u32::from(u16::from_be_bytes([d[2], d[3]]))
        + u32::from(protocol)
        + u32::from(length)
}

/// RFC 1624 equation 3: the new checksum after one 16-bit word of the covered data changes
/// from `old` to `new`: `HC' = ~(~HC + ~m + m')`.
///
/// Unlike the RFC 1141 form this never produces 0xffff from a correct header (the
/// "minus zero" problem in RFC 1624 section 3).
#[inline]
pub fn update_u16(old_csum: u16, old: u16, new: u16) -> u16 {
    !fold(u32::from(!old_csum) + change_u16(old, new))
}

/// [`update_u16`] for a 32-bit field (two adjacent words, e.g. an IPv4 address).
#[inline]
pub fn update_u32(old_csum: u16, old: u32, new: u32) -> u16 {
    !fold(u32::from(!old_csum) + change_u32(old, new))
}

/// [`update_u32`] then [`update_u16`] in one fold: for a rewritten address and port under
/// one checksum (TCP and UDP over their pseudo header), with the same result.
#[inline]
pub fn update_u32_u16(old_csum: u16, old: u32, new: u32, old_word: u16, new_word: u16) -> u16 {
    !fold(u32::from(!old_csum) + change_u32(old, new) + change_u16(old_word, new_word))
}

/// The one's complement sum a word changing from `old` to `new` adds to a checksum's
/// complement (RFC 1624 equation 3: `~m + m'`).
#[inline(always)]
fn change_u16(old: u16, new: u16) -> u32 {
    u32::from(!old) + u32::from(new)
}

/// [`change_u16`] for a 32-bit field: its two words.
#[inline(always)]
fn change_u32(old: u32, new: u32) -> u32 {
    change_u16((old >> 16) as u16, (new >> 16) as u16) + change_u16(old as u16, new as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_util::hex;
    use proptest::prelude::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 numerical example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(sum(&[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }

    #[test]
    fn ipv4_header_verifies() {
        // IPv4 header of an ICMP echo request 10.0.0.1 -> 10.0.0.2, checksum 0x26d5.
        let h = hex("4500 0054 0000 4000 4001 26a7 0a00 0001 0a00 0002");
        let mut zeroed = h.clone();
        zeroed[10] = 0;
        zeroed[11] = 0;
        assert_eq!(checksum(&zeroed), 0x26a7);
        assert_eq!(checksum(&h), 0);
    }

    #[test]
    fn ttl_decrement_example() {
        let mut h = hex("4500 0054 0000 4000 4001 26a7 0a00 0001 0a00 0002");
        let old = u16::from_be_bytes([h[8], h[9]]);
        h[8] -= 1;
        let new = u16::from_be_bytes([h[8], h[9]]);
        let c = update_u16(u16::from_be_bytes([h[10], h[11]]), old, new);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&h), 0);
    }

    fn recompute(h: &mut [u8]) -> u16 {
        h[10] = 0;
        h[11] = 0;
        let c = checksum(h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        c
    }

    proptest! {
        #[test]
        fn incremental_u16_matches_full(mut h in any::<[u8; 20]>(), word in 0usize..10, new in any::<u16>()) {
            prop_assume!(word != 5);
            let c = recompute(&mut h);
            let old = u16::from_be_bytes([h[2 * word], h[2 * word + 1]]);
            h[2 * word..2 * word + 2].copy_from_slice(&new.to_be_bytes());
            let inc = update_u16(c, old, new);
            h[10..12].copy_from_slice(&inc.to_be_bytes());
            prop_assert_eq!(checksum(&h), 0);
        }

        #[test]
        fn incremental_u32_matches_full(mut h in any::<[u8; 20]>(), new in any::<u32>()) {
            let c = recompute(&mut h);
            let old = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
            h[12..16].copy_from_slice(&new.to_be_bytes());
            let inc = update_u32(c, old, new);
            h[10..12].copy_from_slice(&inc.to_be_bytes());
            prop_assert_eq!(checksum(&h), 0);
        }

        #[test]
        fn fold_matches_folding_until_16_bits(acc in any::<u32>()) {
            let mut slow = acc;
            while slow > 0xffff {
                slow = (slow & 0xffff) + (slow >> 16);
            }
            prop_assert_eq!(u32::from(fold(acc)), slow);
        }

        #[test]
        fn address_and_port_in_one_update(
            csum in any::<u16>(),
            old in any::<u32>(),
            new in any::<u32>(),
            old_word in any::<u16>(),
            new_word in any::<u16>(),
        ) {
            prop_assert_eq!(
                update_u32_u16(csum, old, new, old_word, new_word),
                update_u16(update_u32(csum, old, new), old_word, new_word)
            );
        }

        #[test]
        fn fold_sum_matches_sum(data in proptest::collection::vec(any::<u8>(), 0..80), fill in any::<u8>()) {
            prop_assert_eq!(fold_sum(&data), fold(sum(&data)));
            let h = [fill; 20];
            prop_assert_eq!(fold_sum(&h), fold(sum(&h)));
            let mut ones = [0xffu8; 24];
            ones[0] = fill;
            prop_assert_eq!(fold_sum(&ones[..20]), fold(sum(&ones[..20])));
            prop_assert_eq!(fold_sum(&ones), fold(sum(&ones)));
        }

        #[test]
        fn sum_is_order_independent_in_words(a in any::<[u8; 16]>(), b in any::<[u8; 16]>()) {
            let mut ab = [0u8; 32];
            ab[..16].copy_from_slice(&a);
            ab[16..].copy_from_slice(&b);
            prop_assert_eq!(fold(sum(&ab)), fold(combine(sum(&a), sum(&b))));
        }
    }
}
