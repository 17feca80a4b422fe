//! Guarded decoding of DHCPv6 client messages with `dhcproto`.
//!
//! `dhcproto` 0.15 subtracts from some option lengths unchecked (Status
//! Code, Vendor Class, Vendor-specific Information, Authentication) and
//! reads fixed-size options without looking at their length, and its option
//! list decoder stops silently at the first bad option. [`decode`] walks
//! the option tree itself first (into IA_NA, IA_TA, IA_PD, IA Address, IA
//! Prefix and vendor options) and refuses any option whose length does not
//! fit its container or its fixed part, so `dhcproto` only sees well-formed
//! lists. Relay messages are refused: clients on a PPP link send none.

use dhcproto::Decodable;
use dhcproto::v6::Message;

use super::Dhcpv6DecodeError;

/// Deepest option nesting followed (IA_PD > IA Prefix > Status Code is 3).
const MAX_DEPTH: usize = 4;

/// Decode one DHCPv6 client message (the UDP payload). Never panics.
pub fn decode(bytes: &[u8]) -> Result<Message, Dhcpv6DecodeError> {
    if bytes.len() < 4 {
        return Err(Dhcpv6DecodeError::Truncated(bytes.len()));
    }
    if matches!(bytes[0], 12 | 13) {
        return Err(Dhcpv6DecodeError::Relay(bytes[0]));
    }
    check_options(&bytes[4..], 0)?;
    Message::from_bytes(bytes).map_err(|e| Dhcpv6DecodeError::Dhcproto(e.to_string()))
}

/// Check one option list; recurse into the options that contain options.
fn check_options(mut opts: &[u8], depth: usize) -> Result<(), Dhcpv6DecodeError> {
    if depth > MAX_DEPTH {
        return Err(Dhcpv6DecodeError::TooDeep(MAX_DEPTH));
    }
    let mut offset = 0;
    while !opts.is_empty() {
        let bad = |code, len| Dhcpv6DecodeError::BadOption { code, offset, len };
        let [c0, c1, l0, l1, rest @ ..] = opts else {
            return Err(bad(0, opts.len()));
        };
        let code = u16::from_be_bytes([*c0, *c1]);
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        if len > rest.len() {
            return Err(bad(code, len));
        }
        let data = &rest[..len];
        // (fixed part, exact length required, nested options after the fixed part)
        let (fixed, exact, nested) = match code {
            3 | 25 => (12, false, true),     // IA_NA, IA_PD
            4 => (4, false, true),           // IA_TA
            5 => (24, false, true),          // IA Address
            26 => (25, false, true),         // IA Prefix
            17 => (4, false, true),          // Vendor-specific Information
            7 | 10 => (1, true, false),      // Preference, Reconfigure Message
            8 => (2, true, false),           // Elapsed Time
            12 => (16, true, false),         // Server Unicast
            14 | 20 => (0, true, false),     // Rapid Commit, Reconfigure Accept
            13 => (2, false, false),         // Status Code
            16 => (4, false, false),         // Vendor Class
            11 => (11, false, false),        // Authentication
            9 => return Err(bad(code, len)), // Relay Message
            _ => (0, false, false),
        };
        if len < fixed || (exact && len != fixed) {
            return Err(bad(code, len));
        }
        // DNS servers and the Option Request are arrays of fixed-size items.
        if (code == 23 && len % 16 != 0) || (code == 6 && len % 2 != 0) {
            return Err(bad(code, len));
        }
        if nested {
            check_options(&data[fixed..], depth + 1)?;
        }
        opts = &rest[len..];
        offset += 4 + len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_status_code_and_relays_are_refused() {
        // Solicit with a Status Code option of length 1 (dhcproto would
        // subtract 2 from it).
        let msg = [1, 0, 0, 1, 0, 13, 0, 1, 0];
        assert!(matches!(
            decode(&msg),
            Err(Dhcpv6DecodeError::BadOption { code: 13, .. })
        ));
        assert_eq!(decode(&[12, 0, 0, 0]), Err(Dhcpv6DecodeError::Relay(12)));
        assert_eq!(decode(&[1, 0]), Err(Dhcpv6DecodeError::Truncated(2)));
        // An IA_NA whose IA Address runs past it.
        let ia = [
            1, 0, 0, 1, 0, 3, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 30,
        ];
        assert!(matches!(
            decode(&ia),
            Err(Dhcpv6DecodeError::BadOption { code: 5, .. })
        ));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn decode_never_panics_on_option_shaped_input(typ in 1u8..12, opts in proptest::collection::vec((0u16..40, proptest::collection::vec(any::<u8>(), 0..40)), 0..6)) {
            let mut bytes = vec![typ, 1, 2, 3];
            for (code, data) in opts {
                bytes.extend_from_slice(&code.to_be_bytes());
                bytes.extend_from_slice(&(data.len() as u16).to_be_bytes());
                bytes.extend_from_slice(&data);
            }
            let _ = decode(&bytes);
        }
    }
}
