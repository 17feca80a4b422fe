//! Accounting spool files from arbitrary bytes: replaying never panics,
//! whatever a crash or a disk error left in the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vbng_aaa::spool::replay_bytes(data);
});
