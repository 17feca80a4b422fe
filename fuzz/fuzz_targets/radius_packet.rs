//! RADIUS packets (RFC 2865/2866) from arbitrary bytes: parsing never panics,
//! and whatever parses re-encodes to bytes that parse to the same packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vbng_aaa::radius::Repr;

fuzz_target!(|data: &[u8]| {
    if let Ok(repr) = Repr::parse_bytes(data) {
        let bytes = repr.to_bytes().expect("a parsed packet re-encodes");
        let again = Repr::parse_bytes(&bytes).expect("re-encoded bytes parse");
        assert_eq!(again, repr);
    }
});
