//! What this machine charges for a cache line read at random, for reading the scale curve:
//! the 1M-session point's lookups land on lines spread over some 240 MB of tables, the
//! 10k-session point's on a few megabytes. The probe reads one byte of a random 64-byte line
//! of a buffer, asking for the line [`AHEAD`] reads before (as the pipeline's stages ask
//! for their buckets and entries), and reports the mean time per read: the floor under each
//! table line a packet misses when its lines are asked for that far ahead (asked for
//! further ahead, more misses overlap and the time per read falls further).

use std::hint::black_box;
use std::time::Instant;

use vbng_dataplane::prefetch::prefetch_line;

/// Reads between asking for a line and reading it.
pub const AHEAD: usize = 16;

/// The buffer sizes probed: one that stays in cache (a core's L2 or the shared L3), and
/// one the size of the tables at a million sessions.
pub const SMALL_BYTES: usize = 2 << 20;
pub const LARGE_BYTES: usize = 256 << 20;

const LINE: usize = 64;

/// Mean ns per read of `reads` random lines of a buffer of `bytes` (at least one line),
/// the best of `reps` passes over the same random order.
pub fn ns_per_random_line(bytes: usize, reads: usize, reps: u32) -> f64 {
    let order = random_lines(bytes, reads);
    // Written, so every page is there before the clock starts (the global allocator puts
    // blocks this large on huge pages, as it does the session tables).
    let buf = vec![1u8; bytes.max(LINE)];
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        let mut sum = 0u64;
        for (i, &at) in order.iter().enumerate() {
            if let Some(&next) = order.get(i + AHEAD) {
                prefetch_line(&buf[next]);
            }
            sum += u64::from(buf[at]);
        }
        black_box(sum);
        best = best.min(start.elapsed().as_nanos() as f64 / order.len() as f64);
    }
    best
}

/// `reads` (at least one) offsets of random whole lines of a buffer of `bytes`: a fixed
/// xorshift sequence, the same on every run.
fn random_lines(bytes: usize, reads: usize) -> Vec<usize> {
    let lines = (bytes / LINE).max(1) as u64;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..reads.max(1))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % lines) as usize * LINE
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_whole_lines_spread_over_the_buffer() {
        let bytes = 1 << 20;
        let order = random_lines(bytes, 4096);
        assert_eq!(order.len(), 4096);
        assert!(order.iter().all(|&at| at % LINE == 0 && at + LINE <= bytes));
        // 4096 of 16384 lines: nearly all distinct, and every sixteenth of the buffer hit.
        let distinct: std::collections::HashSet<_> = order.iter().collect();
        assert!(distinct.len() > 3500, "{} distinct lines", distinct.len());
        let mut parts = [0u32; 16];
        for &at in &order {
            parts[at * 16 / bytes] += 1;
        }
        assert!(parts.iter().all(|&n| (160..=352).contains(&n)), "{parts:?}");
    }

    #[test]
    fn a_buffer_smaller_than_a_line_is_read_at_its_start() {
        assert_eq!(random_lines(10, 3), vec![0, 0, 0]);
        assert!(ns_per_random_line(10, 100, 1).is_finite());
    }
}
