//! Port-block events as IPFIX (RFC 7011) with the NAT information elements of RFC 8158,
//! for collectors that take CGNAT logs over the network rather than from a file.
//!
//! Every message carries one Data Set of template [`TEMPLATE_ID`], one record per event:
//!
//! | information element | id | bytes | value |
//! |---|---:|---:|---|
//! | observationTimeMilliseconds | 323 | 8 | when the block was allocated or released (Unix ms) |
//! | natEvent | 230 | 1 | 16 port block allocation, 17 port block de-allocation |
//! | sourceIPv4Address | 8 | 4 | the subscriber's inside address |
//! | postNATSourceIPv4Address | 225 | 4 | the outside address |
//! | portRangeStart | 361 | 2 | first port of the block |
//! | portRangeEnd | 362 | 2 | last port of the block |
//! | portRangeStepSize | 363 | 2 | 1 (the block is contiguous) |
//! | portRangeNumPorts | 364 | 2 | ports in the block |
//!
//! The Template Set goes in the first message and again in the first message after
//! [`TEMPLATE_REFRESH_S`] seconds: over UDP a collector that starts later, or lost the
//! template, learns it again (RFC 7011 section 8.4). The sequence number of a message counts
//! the data records sent before it in this observation domain, modulo 2^32.

use alloc::vec::Vec;

use super::{NatLogEvent, NatLogKind};

/// The template of the port-block records.
pub const TEMPLATE_ID: u16 = 256;

/// Seconds after which the next message carries the template again.
pub const TEMPLATE_REFRESH_S: u32 = 60;

/// Largest message: the UDP payload that fits a 1500-byte IPv4 packet.
pub const MAX_MESSAGE_BYTES: usize = 1472;

/// natEvent values (IANA "IPFIX NAT Event Type").
pub mod nat_event {
    /// Port block allocation.
    pub const PORT_BLOCK_ALLOCATION: u8 = 16;
    /// Port block de-allocation.
    pub const PORT_BLOCK_DEALLOCATION: u8 = 17;
}

/// (information element id, length) of each field of [`TEMPLATE_ID`], in record order.
const FIELDS: [(u16, u16); 8] = [
    (323, 8),
    (230, 1),
    (8, 4),
    (225, 4),
    (361, 2),
    (362, 2),
    (363, 2),
    (364, 2),
];

const VERSION: u16 = 10;
const SET_HEADER_BYTES: usize = 4;
const TEMPLATE_SET_ID: u16 = 2;
/// Bytes of one data record.
pub const RECORD_BYTES: usize = 25;
const TEMPLATE_SET_BYTES: usize = SET_HEADER_BYTES + 4 + 4 * FIELDS.len();

/// One exporting process's state for one observation domain: the sequence number and when
/// the template was last sent.
#[derive(Debug, Clone)]
pub struct IpfixExporter {
    domain: u32,
    sequence: u32,
    template_sent_s: Option<u32>,
}

impl IpfixExporter {
    /// An exporter for observation domain `domain` that has sent nothing yet.
    pub fn new(domain: u32) -> Self {
        IpfixExporter {
            domain,
            sequence: 0,
            template_sent_s: None,
        }
    }

    /// Data records sent so far (modulo 2^32): the next message's sequence number.
    pub fn sequence(&self) -> u32 {
        self.sequence
    }

    /// Makes the next template be sent with the next message (after a collector was
    /// unreachable, for example).
    pub fn resend_template(&mut self) {
        self.template_sent_s = None;
    }

    /// Encodes `events`, each with its Unix time in milliseconds, as IPFIX messages of at
    /// most [`MAX_MESSAGE_BYTES`] each, exported at Unix second `export_s`, and hands each
    /// one to `send` in order with the number of records it holds. Returns the number of
    /// messages.
    pub fn export<'a>(
        &mut self,
        events: impl IntoIterator<Item = (u64, &'a NatLogEvent)>,
        export_s: u32,
        mut send: impl FnMut(&[u8], u32),
    ) -> usize {
        let mut message = Vec::with_capacity(MAX_MESSAGE_BYTES);
        let mut records = 0u32;
        let mut messages = 0;
        for (unix_ms, event) in events {
            if message.is_empty() {
                self.start_message(&mut message, export_s);
            }
            put_record(&mut message, event, unix_ms);
            records += 1;
            if message.len() + RECORD_BYTES > MAX_MESSAGE_BYTES {
                self.finish_message(&mut message, records);
                send(&message, records);
                message.clear();
                messages += 1;
                records = 0;
            }
        }
        if !message.is_empty() {
            self.finish_message(&mut message, records);
            send(&message, records);
            messages += 1;
        }
        messages
    }

    /// Writes the message header (length and sequence filled in later), the template if
    /// it is due, and the data set header.
    fn start_message(&mut self, message: &mut Vec<u8>, export_s: u32) {
        message.extend_from_slice(&VERSION.to_be_bytes());
        message.extend_from_slice(&[0, 0]);
        message.extend_from_slice(&export_s.to_be_bytes());
        message.extend_from_slice(&self.sequence.to_be_bytes());
        message.extend_from_slice(&self.domain.to_be_bytes());
        let due = self
            .template_sent_s
            .is_none_or(|sent| export_s.wrapping_sub(sent) >= TEMPLATE_REFRESH_S);
        if due {
            put_template_set(message);
            self.template_sent_s = Some(export_s);
        }
        message.extend_from_slice(&TEMPLATE_ID.to_be_bytes());
        message.extend_from_slice(&[0, 0]);
    }

    /// Fills in the data set's and the message's lengths and counts the records.
    fn finish_message(&mut self, message: &mut [u8], records: u32) {
        let data_set_bytes = SET_HEADER_BYTES + records as usize * RECORD_BYTES;
        let data_set_at = message.len() - data_set_bytes;
        let set_len = u16::try_from(data_set_bytes).unwrap_or(u16::MAX);
        message[data_set_at + 2..data_set_at + 4].copy_from_slice(&set_len.to_be_bytes());
        let len = u16::try_from(message.len()).unwrap_or(u16::MAX);
        message[2..4].copy_from_slice(&len.to_be_bytes());
        self.sequence = self.sequence.wrapping_add(records);
    }
}

fn put_template_set(message: &mut Vec<u8>) {
    message.extend_from_slice(&TEMPLATE_SET_ID.to_be_bytes());
    message.extend_from_slice(&(TEMPLATE_SET_BYTES as u16).to_be_bytes());
    message.extend_from_slice(&TEMPLATE_ID.to_be_bytes());
    message.extend_from_slice(&(FIELDS.len() as u16).to_be_bytes());
    for (id, len) in FIELDS {
        message.extend_from_slice(&id.to_be_bytes());
        message.extend_from_slice(&len.to_be_bytes());
    }
}

fn put_record(message: &mut Vec<u8>, e: &NatLogEvent, unix_ms: u64) {
    let event = match e.kind {
        NatLogKind::BlockAllocated => nat_event::PORT_BLOCK_ALLOCATION,
        NatLogKind::BlockReleased => nat_event::PORT_BLOCK_DEALLOCATION,
    };
    let ports = e.last_port.wrapping_sub(e.first_port).wrapping_add(1);
    message.extend_from_slice(&unix_ms.to_be_bytes());
    message.push(event);
    message.extend_from_slice(&e.inside.octets());
    message.extend_from_slice(&e.outside.octets());
    message.extend_from_slice(&e.first_port.to_be_bytes());
    message.extend_from_slice(&e.last_port.to_be_bytes());
    message.extend_from_slice(&1u16.to_be_bytes());
    message.extend_from_slice(&ports.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::NatLogReason;
    use alloc::vec;
    use core::net::Ipv4Addr;

    fn event(kind: NatLogKind, first_port: u16) -> NatLogEvent {
        NatLogEvent {
            kind,
            time_ns: 5_000_000,
            session_tag: 7,
            inside: Ipv4Addr::new(100, 64, 0, 10),
            outside: Ipv4Addr::new(192, 0, 2, 1),
            first_port,
            last_port: first_port + 511,
            reason: NatLogReason::NewFlow,
        }
    }

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    fn export(x: &mut IpfixExporter, events: &[NatLogEvent], export_s: u32) -> Vec<Vec<u8>> {
        let mut out = vec![];
        let timed = events
            .iter()
            .map(|e| (1_700_000_000_000 + e.time_ns / 1_000_000, e));
        x.export(timed, export_s, |m, records| {
            assert_eq!(usize::from(u16_at(m, 2)), m.len());
            assert!(records > 0);
            out.push(m.to_vec());
        });
        out
    }

    #[test]
    fn one_message_with_the_template_and_two_records() {
        let mut x = IpfixExporter::new(9);
        let events = [
            event(NatLogKind::BlockAllocated, 1024),
            event(NatLogKind::BlockReleased, 1536),
        ];
        let out = export(&mut x, &events, 1_700_000_100);
        assert_eq!(out.len(), 1);
        let m = &out[0];
        // Header: version, length, export time, sequence, domain.
        assert_eq!(u16_at(m, 0), 10);
        assert_eq!(usize::from(u16_at(m, 2)), m.len());
        assert_eq!(u32_at(m, 4), 1_700_000_100);
        assert_eq!(u32_at(m, 8), 0);
        assert_eq!(u32_at(m, 12), 9);
        // Template set: id 2, 40 bytes, template 256 with 8 fields.
        assert_eq!(
            (u16_at(m, 16), u16_at(m, 18), u16_at(m, 20), u16_at(m, 22)),
            (2, 40, 256, 8)
        );
        let ids: Vec<(u16, u16)> = (0..8)
            .map(|i| (u16_at(m, 24 + 4 * i), u16_at(m, 26 + 4 * i)))
            .collect();
        assert_eq!(ids, FIELDS);
        // Data set: id 256, two 25-byte records.
        let d = 16 + 40;
        assert_eq!((u16_at(m, d), u16_at(m, d + 2)), (256, 4 + 2 * 25));
        assert_eq!(m.len(), d + 4 + 2 * 25);
        let r = d + 4;
        assert_eq!(
            u64::from_be_bytes(m[r..r + 8].try_into().unwrap()),
            1_700_000_000_005
        );
        assert_eq!(m[r + 8], nat_event::PORT_BLOCK_ALLOCATION);
        assert_eq!(&m[r + 9..r + 13], &[100, 64, 0, 10]);
        assert_eq!(&m[r + 13..r + 17], &[192, 0, 2, 1]);
        assert_eq!(
            (
                u16_at(m, r + 17),
                u16_at(m, r + 19),
                u16_at(m, r + 21),
                u16_at(m, r + 23)
            ),
            (1024, 1535, 1, 512)
        );
        assert_eq!(m[r + 25 + 8], nat_event::PORT_BLOCK_DEALLOCATION);
        assert_eq!(u16_at(m, r + 25 + 17), 1536);
        assert_eq!(x.sequence(), 2);
    }

    #[test]
    fn the_template_is_sent_again_after_the_refresh_interval() {
        let mut x = IpfixExporter::new(1);
        let one = [event(NatLogKind::BlockAllocated, 1024)];
        let has_template = |m: &[u8]| u16_at(m, 16) == 2;
        assert!(has_template(&export(&mut x, &one, 1000)[0]));
        let m = &export(&mut x, &one, 1000 + TEMPLATE_REFRESH_S - 1)[0];
        assert!(!has_template(m));
        assert_eq!(u16_at(m, 16), TEMPLATE_ID);
        assert_eq!(u32_at(m, 8), 1, "sequence: one record sent before");
        assert!(has_template(
            &export(&mut x, &one, 1000 + TEMPLATE_REFRESH_S)[0]
        ));
        x.resend_template();
        assert!(has_template(
            &export(&mut x, &one, 1000 + TEMPLATE_REFRESH_S)[0]
        ));
        assert_eq!(x.sequence(), 4);
    }

    #[test]
    fn many_events_are_split_into_messages_that_fit_a_packet() {
        let mut x = IpfixExporter::new(1);
        let events: Vec<NatLogEvent> = (0..200u16)
            .map(|i| event(NatLogKind::BlockAllocated, 1024 + i))
            .collect();
        let out = export(&mut x, &events, 5);
        assert!(out.len() >= 4, "{} messages", out.len());
        let mut sequence = 0;
        let mut records = 0;
        for (i, m) in out.iter().enumerate() {
            assert!(m.len() <= MAX_MESSAGE_BYTES);
            assert_eq!(usize::from(u16_at(m, 2)), m.len());
            assert_eq!(u32_at(m, 8), sequence);
            let data_at = if i == 0 { 16 + 40 } else { 16 };
            assert_eq!(u16_at(m, data_at), TEMPLATE_ID);
            let n = (usize::from(u16_at(m, data_at + 2)) - 4) / RECORD_BYTES;
            assert_eq!(data_at + 4 + n * RECORD_BYTES, m.len());
            // The first record of this message follows the last of the one before.
            assert_eq!(u16_at(m, data_at + 4 + 17), 1024 + records as u16);
            sequence += n as u32;
            records += n;
        }
        assert_eq!(records, 200);
        assert_eq!(x.sequence(), 200);
        assert_eq!(export(&mut x, &[], 6).len(), 0, "nothing to send");
    }
}
