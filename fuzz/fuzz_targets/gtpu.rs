//! GTP-U header parsing (TS 29.281) on arbitrary UDP payloads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vbng_dataplane::wire::GtpuRepr;
use vbng_dataplane::wire::frame::L2Header;

fuzz_target!(|data: &[u8]| {
    if let Ok((repr, offset)) = GtpuRepr::parse(data) {
        {
            assert!(offset >= 8 && offset <= data.len());
            let (again, inner) = GtpuRepr::parse_payload(data).expect("consistent with parse");
            assert_eq!(again, repr);
            // The control-packet redirect carries a whole Ethernet frame.
            let _ = L2Header::parse(inner);
            let rebuilt = repr.encapsulate(inner).expect("inner fits");
            let (r2, off2) = GtpuRepr::parse(&rebuilt).expect("rebuilt parses");
            assert_eq!((r2, &rebuilt[off2..]), (repr, inner));
        }
    }
});
