//! Arbitrary bytes through the PFCP parser (single message and bundles).
//!
//! Whatever parses must re-encode, and the re-encoding must parse back to the
//! same message (the codec keeps only what it models, so the first parse is
//! the reference, not the input bytes). Bundles re-encode with FO flags.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vbng_cups::pfcp::{Error, Message, encode_bundle, parse_all};

fuzz_target!(|data: &[u8]| {
    if let Ok((header, msg)) = Message::parse(data) {
        // Re-encoding may grow (a partial Volume Measurement is re-sent with all
        // six counters) past the 16-bit length: that must be an error, not a panic.
        let bytes = match msg.try_encode(header.sequence, header.seid) {
            Ok(b) => b,
            Err(Error::TooLong { .. }) => return,
            Err(e) => panic!("unexpected encode error {e}"),
        };
        let (header2, msg2) = Message::parse(&bytes).expect("re-parse");
        assert_eq!(msg2, msg);
        assert_eq!(header2.sequence, header.sequence);
        assert_eq!(header2.msg_type, header.msg_type);
    }
    if let Ok(all) = parse_all(data) {
        let items: Vec<_> = all.iter().map(|(h, m)| (m, h.sequence, h.seid)).collect();
        let Ok(bytes) = encode_bundle(&items) else {
            return;
        };
        let again = parse_all(&bytes).expect("re-parse bundle");
        assert_eq!(again.len(), all.len());
        for ((_, a), (_, b)) in again.iter().zip(&all) {
            assert_eq!(a, b);
        }
    }
});
