//! The per-customer vBNG's day-0 command line on arbitrary bytes: the parser never panics,
//! refuses with a message naming one word of the line, and what it accepts is consistent
//! (every session, NAT prefix and device comes from a word of its key).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    let count = |key: &str| words.iter().filter(|w| w.starts_with(key)).count();
    match vbng_day0::parse(&line) {
        Ok(c) => {
            assert!(c.sessions.len() <= count("session="));
            assert!(c.nat_pool.len() <= count("nat_pool="));
            assert!(c.virtio_mmio.len() <= count("virtio_mmio.device="));
            assert!(c.nat_pool.iter().all(|p| p.len <= 32));
            assert!(c.sessions.iter().all(|s| s.svlan < 4095 && s.cvlan < 4095));
            assert!(!c.nat_inside.is_empty());
        }
        Err(e) => {
            let word = e
                .strip_prefix("bad value in `")
                .and_then(|w| w.strip_suffix('`'))
                .unwrap_or_else(|| panic!("unexpected error text: {e}"));
            assert!(words.contains(&word), "{e} names no word of the line");
        }
    }
});
