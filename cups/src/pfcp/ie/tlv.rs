//! IE framing: an iterator over the IEs of a message or grouped IE, a cursor
//! for IE bodies, and a writer that fills in every length field from the body
//! it just wrote (section 8.1.1).

use alloc::vec::Vec;

use crate::pfcp::Error;

/// One IE as found on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawIe<'a> {
    /// IE type (vendor-specific when >= 32768).
    pub ie_type: u16,
    /// Enterprise ID of a vendor-specific IE.
    pub enterprise_id: Option<u16>,
    /// IE content (after the Enterprise ID for vendor IEs).
    pub data: &'a [u8],
}

/// Iterator over consecutive IEs. Yields an error (and then stops) when an IE
/// header is truncated or an IE length runs past the end of the buffer.
#[derive(Debug, Clone)]
pub struct IeIter<'a> {
    data: &'a [u8],
}

impl<'a> IeIter<'a> {
    /// Iterates over the IEs in `data` (a message body or a grouped IE's content).
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }
}

impl<'a> Iterator for IeIter<'a> {
    type Item = Result<RawIe<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() {
            return None;
        }
        let result = split_ie(self.data);
        match result {
            Ok((ie, rest)) => {
                self.data = rest;
                Some(Ok(ie))
            }
            Err(e) => {
                self.data = &[];
                Some(Err(e))
            }
        }
    }
}

fn split_ie(data: &[u8]) -> Result<(RawIe<'_>, &[u8]), Error> {
    if data.len() < 4 {
        return Err(Error::IeHeaderTruncated {
            expected: 4,
            found: data.len(),
        });
    }
    let ie_type = u16::from_be_bytes([data[0], data[1]]);
    let len = usize::from(u16::from_be_bytes([data[2], data[3]]));
    let rest = &data[4..];
    if rest.len() < len {
        return Err(Error::IeOverrun {
            ie: ie_type,
            expected: len,
            found: rest.len(),
        });
    }
    let (body, rest) = rest.split_at(len);
    if ie_type & 0x8000 != 0 {
        // The Enterprise ID is counted in the length (TS 29.244 8.1.1).
        if body.len() < 2 {
            return Err(Error::IeHeaderTruncated {
                expected: 6,
                found: 4 + body.len(),
            });
        }
        let enterprise_id = u16::from_be_bytes([body[0], body[1]]);
        Ok((
            RawIe {
                ie_type,
                enterprise_id: Some(enterprise_id),
                data: &body[2..],
            },
            rest,
        ))
    } else {
        Ok((
            RawIe {
                ie_type,
                enterprise_id: None,
                data: body,
            },
            rest,
        ))
    }
}

/// Reads the fields of one IE body; every read is bounds-checked and a short
/// body yields [`Error::IeTooShort`].
#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    ie: u16,
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(ie: u16, data: &'a [u8]) -> Self {
        Self { ie, data, pos: 0 }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos + n;
        match self.data.get(self.pos..end) {
            Some(s) => {
                self.pos = end;
                Ok(s)
            }
            None => Err(Error::IeTooShort {
                ie: self.ie,
                expected: end,
                found: self.data.len(),
            }),
        }
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u40(&mut self) -> Result<u64, Error> {
        let b: [u8; 5] = self.array()?;
        Ok(u64::from_be_bytes([0, 0, 0, b[0], b[1], b[2], b[3], b[4]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn ipv4(&mut self) -> Result<core::net::Ipv4Addr, Error> {
        Ok(core::net::Ipv4Addr::from(self.array::<4>()?))
    }

    pub(crate) fn ipv6(&mut self) -> Result<core::net::Ipv6Addr, Error> {
        Ok(core::net::Ipv6Addr::from(self.array::<16>()?))
    }

    /// Remaining octets (consumes them).
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let r = self.data.get(self.pos..).unwrap_or(&[]);
        self.pos = self.data.len();
        r
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    pub(crate) fn invalid(&self, reason: &'static str) -> Error {
        Error::InvalidIe {
            ie: self.ie,
            reason,
        }
    }
}

/// Appends IEs to a buffer. Lengths are back-filled from what the closure
/// wrote, so an encoded IE can never carry a stale length. A body over 65 535
/// octets is remembered and reported by [`Writer::finish`].
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
    overflow: Option<usize>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends to an existing buffer.
    pub fn from_vec(buf: Vec<u8>) -> Self {
        Self {
            buf,
            overflow: None,
        }
    }

    /// Octets written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Appends one octet.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Appends a big-endian u16.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Appends a big-endian u32.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Appends the low 40 bits of `v`, big-endian (bit rates in MBR/GBR).
    pub fn u40(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes()[3..]);
    }

    /// Appends a big-endian u64.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Appends raw octets.
    pub fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    /// Writes a 3GPP IE of type `ie_type` whose content is what `body` writes.
    pub fn ie(&mut self, ie_type: u16, body: impl FnOnce(&mut Writer)) {
        self.framed(ie_type, None, body);
    }

    /// Writes a vendor-specific IE (type >= 32768) with its Enterprise ID.
    pub fn vendor_ie(&mut self, ie_type: u16, enterprise_id: u16, body: impl FnOnce(&mut Writer)) {
        self.framed(ie_type | 0x8000, Some(enterprise_id), body);
    }

    fn framed(&mut self, ie_type: u16, enterprise_id: Option<u16>, body: impl FnOnce(&mut Writer)) {
        self.u16(ie_type);
        let len_at = self.buf.len();
        self.u16(0);
        if let Some(e) = enterprise_id {
            self.u16(e);
        }
        body(self);
        let len = self.buf.len() - len_at - 2;
        match u16::try_from(len) {
            Ok(l) => self.buf[len_at..len_at + 2].copy_from_slice(&l.to_be_bytes()),
            Err(_) => self.overflow = Some(self.overflow.unwrap_or(0).max(len)),
        }
    }

    /// The encoded octets, or [`Error::TooLong`] if some IE overflowed.
    pub fn finish(self) -> Result<Vec<u8>, Error> {
        match self.overflow {
            Some(len) => Err(Error::TooLong { len }),
            None => Ok(self.buf),
        }
    }
}

/// Parse-time bookkeeping shared by the grouped-IE decoders.
#[derive(Debug, Default)]
pub(crate) struct Ctx {
    /// IEs skipped because this codec does not model them.
    pub(crate) skipped: u32,
}

/// Fails with [`Error::MissingIe`] when a mandatory IE was not found.
pub(crate) fn required<T>(
    v: Option<T>,
    ie: u16,
    name: &'static str,
    context: &'static str,
) -> Result<T, Error> {
    v.ok_or(Error::MissingIe { ie, name, context })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_backfills_lengths_of_nested_ies() {
        let mut w = Writer::new();
        w.ie(1, |w| {
            w.ie(56, |w| w.u16(7));
            w.vendor_ie(1, 3561, |w| w.bytes(b"3"));
        });
        let b = w.finish().unwrap();
        assert_eq!(
            b,
            [
                0, 1, 0, 13, 0, 56, 0, 2, 0, 7, 0x80, 1, 0, 3, 0x0d, 0xe9, b'3'
            ]
        );
        let outer: Vec<_> = IeIter::new(&b).collect::<Result<_, _>>().unwrap();
        assert_eq!(outer.len(), 1);
        let inner: Vec<_> = IeIter::new(outer[0].data)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            inner[0],
            RawIe {
                ie_type: 56,
                enterprise_id: None,
                data: &[0, 7]
            }
        );
        assert_eq!(
            inner[1],
            RawIe {
                ie_type: 0x8001,
                enterprise_id: Some(3561),
                data: b"3"
            }
        );
    }

    #[test]
    fn iterator_rejects_truncation_and_overrun() {
        let mut it = IeIter::new(&[0, 1, 0]);
        assert_eq!(
            it.next(),
            Some(Err(Error::IeHeaderTruncated {
                expected: 4,
                found: 3
            }))
        );
        assert_eq!(it.next(), None);
        let mut it = IeIter::new(&[0, 19, 0, 2, 1]);
        assert_eq!(
            it.next(),
            Some(Err(Error::IeOverrun {
                ie: 19,
                expected: 2,
                found: 1
            }))
        );
        let mut it = IeIter::new(&[0x80, 1, 0, 1, 0x0d]);
        assert!(matches!(
            it.next(),
            Some(Err(Error::IeHeaderTruncated { expected: 6, .. }))
        ));
    }

    #[test]
    fn oversized_ie_is_an_error_not_a_wrong_length() {
        let mut w = Writer::new();
        w.ie(22, |w| w.bytes(&[0u8; 70_000]));
        assert_eq!(w.finish(), Err(Error::TooLong { len: 70_000 }));
    }
}
