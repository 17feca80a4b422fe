//! Guarded decoding of DHCPv4 messages with `dhcproto`.
//!
//! `dhcproto` 0.15 trusts some option lengths: it `debug_assert!`s them
//! (options 80, 94, 152-155, 81) or subtracts from them unchecked (81, 151).
//! In a build with debug assertions or overflow checks (the workspace `dev`
//! profile, `cargo fuzz`) a client could crash the control plane with one
//! option byte. [`decode`] checks those lengths itself, with RFC 3396
//! concatenation applied the way `dhcproto` applies it (consecutive
//! instances of one code are joined), and checks `hlen` (which
//! `Message::chaddr` slices by), before handing the bytes to `dhcproto`.

use dhcproto::Decodable;
use dhcproto::v4::Message;

use super::DecodeError;

/// Fixed BOOTP header length; the magic cookie follows it.
const HEADER_LEN: usize = 236;
/// Offset of the first option (after the 4-byte magic cookie).
const OPTIONS_OFFSET: usize = HEADER_LEN + 4;
/// Offset of `hlen` in the BOOTP header.
const HLEN_OFFSET: usize = 2;

/// Decode one DHCPv4 message (the UDP payload), rejecting what `dhcproto`
/// would mis-handle. Never panics.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    if bytes.len() < OPTIONS_OFFSET {
        return Err(DecodeError::Truncated {
            expected: OPTIONS_OFFSET,
            found: bytes.len(),
        });
    }
    let hlen = bytes[HLEN_OFFSET];
    if hlen > 16 {
        return Err(DecodeError::HardwareAddressLength(hlen));
    }
    check_option_lengths(&bytes[OPTIONS_OFFSET..])?;
    Message::from_bytes(bytes).map_err(|e| DecodeError::Dhcproto(e.to_string()))
}

/// Walk the option TLVs; for each run of consecutive instances of one code
/// check the joined length where `dhcproto` relies on it.
fn check_option_lengths(mut opts: &[u8]) -> Result<(), DecodeError> {
    let mut run: Option<(u8, usize)> = None;
    while let Some(&code) = opts.first() {
        if code == 255 {
            break;
        }
        if code == 0 {
            check_run(run.take())?;
            opts = &opts[1..];
            continue;
        }
        // A truncated option ends dhcproto's option parsing too.
        let Some(&len) = opts.get(1) else { break };
        let len = usize::from(len);
        if opts.len() < 2 + len {
            break;
        }
        run = match run {
            Some((c, total)) if c == code => Some((c, total + len)),
            other => {
                check_run(other)?;
                Some((code, len))
            }
        };
        opts = &opts[2 + len..];
    }
    check_run(run)
}

fn check_run(run: Option<(u8, usize)>) -> Result<(), DecodeError> {
    let Some((code, len)) = run else {
        return Ok(());
    };
    let ok = match code {
        // Rapid Commit (RFC 4039): empty.
        80 => len == 0,
        // Client FQDN (RFC 4702): flags, rcode1, rcode2, name.
        81 => len >= 3,
        // Client Network Interface Identifier (RFC 4578): 3 bytes.
        94 => len == 3,
        // Bulk leasequery status code (RFC 6926): code + message.
        151 => len >= 1,
        // Bulk leasequery times (RFC 6926): 4 bytes.
        152..=155 => len == 4,
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(DecodeError::OptionLength { code, found: len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::Encodable;
    use dhcproto::v4::{DhcpOption, MessageType};

    fn base() -> Vec<u8> {
        let mut m = Message::default();
        m.set_chaddr(&[2, 0, 0, 0, 0, 1]);
        m.opts_mut()
            .insert(DhcpOption::MessageType(MessageType::Discover));
        m.to_vec().unwrap()
    }

    /// Put raw option bytes in front of the encoded options.
    fn with_raw_option(raw: &[u8]) -> Vec<u8> {
        let mut b = base();
        b.splice(OPTIONS_OFFSET..OPTIONS_OFFSET, raw.iter().copied());
        b
    }

    #[test]
    fn good_message_decodes() {
        let m = decode(&base()).unwrap();
        assert_eq!(m.opts().msg_type(), Some(MessageType::Discover));
        // Option 81 of a sane length passes the guard.
        let raw = [81, 5, 0, 0, 0, 1, b'a'];
        assert!(decode(&with_raw_option(&raw)).is_ok());
    }

    #[test]
    fn lengths_dhcproto_trusts_are_rejected() {
        for raw in [
            &[80u8, 1, 0][..],
            &[81, 2, 0, 0],
            &[94, 2, 1, 2],
            &[151, 0],
            &[152, 1, 0],
            &[155, 5, 0, 0, 0, 0, 0],
        ] {
            let e = decode(&with_raw_option(raw)).unwrap_err();
            assert_eq!(
                e,
                DecodeError::OptionLength {
                    code: raw[0],
                    found: usize::from(raw[1])
                }
            );
        }
        // Concatenated (RFC 3396) instances are judged on their total.
        let raw = [81, 1, 0, 81, 2, 0, 0];
        assert!(decode(&with_raw_option(&raw)).is_ok());
    }

    #[test]
    fn header_problems_are_rejected() {
        let mut b = base();
        b[HLEN_OFFSET] = 17;
        assert_eq!(decode(&b), Err(DecodeError::HardwareAddressLength(17)));
        assert!(matches!(
            decode(&b[..100]),
            Err(DecodeError::Truncated { found: 100, .. })
        ));
    }
}
