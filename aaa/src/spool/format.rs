//! The spool file, format version 1: UTF-8 text, one entry per line, each
//! line ending in `\n` and carrying its own checksum.
//!
//! ```text
//! vbng-spool 1 <next-seq> <crc>
//! R <seq> <pushed-unix-ms> <type>=<hex>[,<type>=<hex>...] <crc>
//! A <seq> <crc>
//! ```
//!
//! - The header is the first line. `<next-seq>` is the sequence number the
//!   next push was to get when the file was written, so numbers keep
//!   rising across rewrites that drop acknowledged records. Records written
//!   with the header may have lower numbers, records appended later do not.
//! - `R` is a pushed record: its sequence number (strictly increasing down
//!   the file), the wall-clock time of the push in Unix milliseconds (from
//!   which Acct-Delay-Time is computed, also after a restart), and its
//!   RADIUS attributes in order, each as the decimal attribute type and the
//!   value octets in hexadecimal (`-` for an empty list). Vendor-Specific
//!   attributes are kept whole (`26=<vendor id><sub-attributes>`).
//! - `A` acknowledges the pending record `<seq>`: a server answered it.
//! - `<crc>` is the CRC-32 (IEEE 802.3) of the line's text before the space
//!   that precedes it, as 8 lowercase hex digits.
//!
//! A last line without its `\n` is a write cut short by a crash and is
//! ignored; every other line must parse, or the file is corrupt.

use std::io::BufRead;

use crate::radius::{AttrType, Attribute, MAX_ATTR_VALUE_LEN};

/// First word of the header line.
pub(crate) const MAGIC: &str = "vbng-spool";
/// The format version this module reads and writes.
pub(crate) const VERSION: u32 = 1;

/// Largest sequence number a file may hold: far beyond any real count, it
/// leaves room to add one without overflow.
pub(crate) const MAX_SEQ: u64 = u64::MAX / 2;

/// A record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// Sequence number, unique and increasing within a spool.
    pub seq: u64,
    /// Wall-clock time of the push, Unix milliseconds.
    pub pushed_unix_ms: u64,
    /// The attributes, opaque to the spool.
    pub attributes: Vec<Attribute>,
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Line {
    Header { next_seq: u64 },
    Record(Record),
    Ack(u64),
}

/// What a replay of a file leaves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Replay {
    /// Sequence number for the next record pushed: above every record
    /// and at least the header's.
    pub next_seq: u64,
    /// Records without an acknowledgement, in file order.
    pub pending: Vec<Record>,
    /// Line number (1-based) of a torn last line that was ignored.
    pub torn_line: Option<usize>,
}

/// Why a line or file does not parse: the 1-based line and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bad {
    pub line: usize,
    pub problem: String,
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 as in IEEE 802.3, zlib and PNG (reflected, polynomial 0x04C11DB7).
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c = CRC_TABLE[usize::from((c as u8) ^ b)] ^ (c >> 8);
    }
    !c
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// Appends ` <crc>\n` to a line body.
fn seal(mut body: String) -> String {
    let crc = crc32(body.as_bytes());
    body.push_str(&format!(" {crc:08x}\n"));
    body
}

/// The header line, with its newline.
pub(crate) fn header_line(next_seq: u64) -> String {
    seal(format!("{MAGIC} {VERSION} {next_seq}"))
}

/// A record line, with its newline.
pub(crate) fn record_line(record: &Record) -> String {
    let mut body = format!("R {} {} ", record.seq, record.pushed_unix_ms);
    if record.attributes.is_empty() {
        body.push('-');
    }
    for (i, a) in record.attributes.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&u8::from(a.typ).to_string());
        body.push('=');
        push_hex(&mut body, &a.value);
    }
    seal(body)
}

/// An acknowledgement line, with its newline.
pub(crate) fn ack_line(seq: u64) -> String {
    seal(format!("A {seq}"))
}

fn number(field: Option<&str>, what: &str) -> Result<u64, String> {
    let text = field.ok_or_else(|| format!("{what} missing"))?;
    // `u64::from_str` accepts a leading `+`; the writer never emits one.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {text:?} is not a decimal number"));
    }
    text.parse()
        .map_err(|_| format!("{what} {text:?} is out of range"))
}

fn seq(field: Option<&str>, what: &str) -> Result<u64, String> {
    let n = number(field, what)?;
    if n > MAX_SEQ {
        return Err(format!("{what} {n} is above {MAX_SEQ}"));
    }
    Ok(n)
}

fn attributes(text: &str) -> Result<Vec<Attribute>, String> {
    if text == "-" {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|item| {
            let (typ, hex) = item
                .split_once('=')
                .ok_or_else(|| format!("attribute {item:?} is not <type>=<hex>"))?;
            let typ = u8::try_from(number(Some(typ), "attribute type")?)
                .map_err(|_| format!("attribute type {typ} is above 255"))?;
            let value = parse_hex(hex)
                .ok_or_else(|| format!("attribute {typ} value {hex:?} is not hexadecimal"))?;
            if value.len() > MAX_ATTR_VALUE_LEN {
                return Err(format!(
                    "attribute {typ} value has {} octets, at most {MAX_ATTR_VALUE_LEN}",
                    value.len()
                ));
            }
            Ok(Attribute::new(AttrType::from(typ), value))
        })
        .collect()
}

/// Parses one line without its newline.
pub(crate) fn parse_line(text: &str) -> Result<Line, String> {
    let (body, crc) = text
        .rsplit_once(' ')
        .ok_or_else(|| "no checksum field".to_string())?;
    let crc_ok = crc.len() == 8
        && u32::from_str_radix(crc, 16).is_ok_and(|c| c == crc32(body.as_bytes()))
        && !crc.starts_with('+');
    if !crc_ok {
        return Err(format!(
            "checksum {crc:?} does not match the line (expected {:08x})",
            crc32(body.as_bytes())
        ));
    }
    let mut fields = body.split(' ');
    let line = match fields.next() {
        Some(MAGIC) => {
            let version = number(fields.next(), "format version")?;
            if version != u64::from(VERSION) {
                return Err(format!(
                    "format version {version}, this build reads version {VERSION}"
                ));
            }
            Line::Header {
                next_seq: seq(fields.next(), "next sequence number")?,
            }
        }
        Some("R") => Line::Record(Record {
            seq: seq(fields.next(), "sequence number")?,
            pushed_unix_ms: number(fields.next(), "push time")?,
            attributes: attributes(fields.next().ok_or("attributes missing")?)?,
        }),
        Some("A") => Line::Ack(seq(fields.next(), "sequence number")?),
        Some(other) => return Err(format!("unknown entry {other:?}, expected R or A")),
        None => return Err("empty line".into()),
    };
    if let Some(extra) = fields.next() {
        return Err(format!("unexpected field {extra:?}"));
    }
    Ok(line)
}

/// Replays a whole file. An empty input is an empty spool.
pub(crate) fn replay(mut input: impl BufRead) -> Result<Replay, Bad> {
    let mut out = Replay::default();
    let mut pending = std::collections::VecDeque::new();
    let mut header_seen = false;
    let mut last_seq = None;
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        buf.clear();
        let read = input.read_until(b'\n', &mut buf).map_err(|e| Bad {
            line: n + 1,
            problem: format!("read failed: {e}"),
        })?;
        if read == 0 {
            break;
        }
        n += 1;
        let bad = |problem: String| Bad { line: n, problem };
        if buf.last() != Some(&b'\n') {
            // Only the last line can lack its newline: its write was cut
            // short, so the push it belongs to never returned.
            out.torn_line = Some(n);
            break;
        }
        buf.pop();
        let text = std::str::from_utf8(&buf).map_err(|_| bad("bytes that are not UTF-8".into()))?;
        if text.trim().is_empty() {
            continue;
        }
        let line = parse_line(text).map_err(bad)?;
        match (header_seen, line) {
            (false, Line::Header { next_seq }) => {
                header_seen = true;
                out.next_seq = next_seq;
            }
            (false, _) => {
                return Err(bad(format!(
                    "an entry before the header line `{MAGIC} {VERSION} <next-seq> <crc>`"
                )));
            }
            (true, Line::Header { .. }) => return Err(bad("a second header line".into())),
            (true, Line::Record(r)) => {
                if let Some(last) = last_seq.filter(|&l| r.seq <= l) {
                    return Err(bad(format!(
                        "record {} out of order: expected a sequence number above {last}",
                        r.seq
                    )));
                }
                last_seq = Some(r.seq);
                out.next_seq = out.next_seq.max(r.seq + 1);
                pending.push_back(r);
            }
            (true, Line::Ack(seq)) => {
                let Some(i) = pending.iter().position(|r: &Record| r.seq == seq) else {
                    return Err(bad(format!(
                        "acknowledgement of record {seq}, which is not pending"
                    )));
                };
                pending.remove(i);
            }
        }
    }
    out.pending = pending.into();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(seq: u64) -> Record {
        Record {
            seq,
            pushed_unix_ms: 1_700_000_000_000 + seq,
            attributes: vec![
                Attribute::u32(AttrType::AcctStatusType, 1),
                Attribute::new(AttrType::AcctSessionId, format!("s-{seq}")),
                Attribute::vendor_u32(32473, 1, 10_000),
            ],
        }
    }

    #[test]
    fn crc32_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn golden_lines() {
        let r = Record {
            seq: 7,
            pushed_unix_ms: 1_700_000_000_123,
            attributes: vec![
                Attribute::u32(AttrType::AcctStatusType, 2),
                Attribute::new(AttrType::AcctSessionId, *b"ab"),
            ],
        };
        let line = record_line(&r);
        let body = "R 7 1700000000123 40=00000002,44=6162";
        assert_eq!(line, format!("{body} {:08x}\n", crc32(body.as_bytes())));
        assert_eq!(
            parse_line(line.trim_end()).unwrap(),
            Line::Record(r.clone())
        );
        assert!(header_line(3).starts_with("vbng-spool 1 3 "));
        assert_eq!(
            parse_line(header_line(3).trim_end()).unwrap(),
            Line::Header { next_seq: 3 }
        );
        assert_eq!(parse_line(ack_line(7).trim_end()).unwrap(), Line::Ack(7));
        let empty = Record {
            attributes: Vec::new(),
            ..r
        };
        assert!(record_line(&empty).starts_with("R 7 1700000000123 - "));
        assert_eq!(
            parse_line(record_line(&empty).trim_end()).unwrap(),
            Line::Record(empty)
        );
    }

    #[test]
    fn documented_example_replays() {
        // The example in the module docs of `spool`, with checksums from
        // Python's zlib.crc32, an implementation we did not write.
        let text = "vbng-spool 1 0 24b01b34\n\
                    R 0 1764500000123 40=00000001,44=73657373696f6e2d31 808db143\n";
        let r = replay(text.as_bytes()).unwrap();
        assert_eq!(r.pending.len(), 1);
        assert_eq!(r.pending[0].attributes[1].value, b"session-1");
        let acked = format!("{text}A 0 3d442aeb\n");
        assert_eq!(replay(acked.as_bytes()).unwrap().pending, vec![]);
        assert_eq!(ack_line(0), "A 0 3d442aeb\n");
    }

    #[test]
    fn replay_keeps_unacked_in_order() {
        let text = [
            header_line(5),
            record_line(&record(5)),
            record_line(&record(6)),
            record_line(&record(9)),
            ack_line(5),
            ack_line(9),
            record_line(&record(10)),
        ]
        .concat();
        let r = replay(text.as_bytes()).unwrap();
        assert_eq!(r.pending, vec![record(6), record(10)]);
        assert_eq!(r.next_seq, 11);
        assert_eq!(r.torn_line, None);
        // A rewritten file: its header is ahead of the records it kept.
        let text = [
            header_line(20),
            record_line(&record(6)),
            record_line(&record(20)),
        ]
        .concat();
        let r = replay(text.as_bytes()).unwrap();
        assert_eq!(r.pending, vec![record(6), record(20)]);
        assert_eq!(r.next_seq, 21);
        let r = replay(
            [header_line(20), record_line(&record(6))]
                .concat()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(r.next_seq, 20);
    }

    #[test]
    fn torn_last_line_is_ignored() {
        let full = [header_line(0), record_line(&record(0))].concat();
        let last = record_line(&record(1));
        for cut in 0..last.len() {
            let text = format!("{full}{}", &last[..cut]);
            let r = replay(text.as_bytes()).unwrap();
            assert_eq!(r.pending, vec![record(0)], "cut at {cut}");
            assert_eq!(r.torn_line, (cut > 0).then_some(3));
        }
        // Zeros where the file grew but the data never reached the disk.
        let mut bytes = full.clone().into_bytes();
        bytes.extend_from_slice(&[0; 100]);
        assert_eq!(replay(&bytes[..]).unwrap().torn_line, Some(3));
        // A torn header leaves an empty spool.
        let r = replay(&header_line(4).as_bytes()[..6]).unwrap();
        assert_eq!((r.next_seq, r.pending.len(), r.torn_line), (0, 0, Some(1)));
    }

    #[test]
    fn corruption_names_the_line() {
        let good = [header_line(0), record_line(&record(0))].concat();
        // One bit of the session id flipped ("s-1" -> "s-3").
        let flipped = record_line(&record(1)).replacen("732d31", "732d33", 1);
        let cases: Vec<(String, usize, &str)> = vec![
            (format!("{good}{flipped}"), 3, "checksum"),
            (
                format!("{good}{}", record_line(&record(0))),
                3,
                "out of order",
            ),
            (format!("{good}{}", ack_line(4)), 3, "not pending"),
            (format!("{good}{}", header_line(1)), 3, "second header"),
            (record_line(&record(0)), 1, "before the header"),
            (format!("{good}junk\n"), 3, "checksum"),
            (
                format!("{good}{}", seal("R 1 2 44=zz".into())),
                3,
                "not hexadecimal",
            ),
            (
                format!("{good}{}", seal("R 1 2 256=00".into())),
                3,
                "above 255",
            ),
            (
                format!("{good}{}", seal("R 1 2 44=00 x".into())),
                3,
                "unexpected field",
            ),
            (
                format!("{good}{}", seal("R +1 2 44=00".into())),
                3,
                "not a decimal",
            ),
            (format!("{good}{}", seal("X 1".into())), 3, "unknown entry"),
            (
                format!("{good}{}", seal(format!("R {} 2 44=00", u64::MAX))),
                3,
                "is above",
            ),
            (seal("vbng-spool 2 0".into()), 1, "format version 2"),
            (format!("{good}\u{ff}\n"), 3, "checksum"),
        ];
        for (text, line, needle) in cases {
            let e = replay(text.as_bytes()).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e:?}");
            assert!(e.problem.contains(needle), "{text:?}: {e:?}");
        }
        let mut bytes = format!("{good}\n").into_bytes();
        bytes.extend_from_slice(b"\x80\n");
        let e = replay(&bytes[..]).unwrap_err();
        assert_eq!(e.line, 4);
        assert!(e.problem.contains("UTF-8"), "{e:?}");
    }

    fn arb_attribute() -> impl Strategy<Value = Attribute> {
        (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..=253))
            .prop_map(|(t, v)| Attribute::new(AttrType::from(t), v))
    }

    proptest! {
        #[test]
        fn record_lines_round_trip(
            seq in 0..=MAX_SEQ,
            ms in any::<u64>(),
            attributes in proptest::collection::vec(arb_attribute(), 0..8),
        ) {
            let r = Record { seq, pushed_unix_ms: ms, attributes };
            let line = record_line(&r);
            prop_assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
            prop_assert_eq!(parse_line(line.trim_end()).unwrap(), Line::Record(r));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = replay(&bytes[..]);
            let mut file = header_line(0).into_bytes();
            file.extend_from_slice(&bytes);
            let _ = replay(&file[..]);
        }

        #[test]
        fn truncation_never_loses_a_complete_record(n in 1usize..6, cut in any::<prop::sample::Index>()) {
            let mut text = header_line(0);
            for s in 0..n as u64 {
                text.push_str(&record_line(&record(s)));
            }
            let cut = cut.index(text.len() + 1);
            let r = replay(&text.as_bytes()[..cut]).unwrap();
            let complete = text[..cut].matches('\n').count().saturating_sub(1);
            prop_assert_eq!(r.pending.len(), complete);
        }
    }
}
