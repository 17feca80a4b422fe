//! [`Frame`]: an owned, reusable packet buffer with headroom for pushing headers, and
//! [`PacketBuffer`], what the pipeline needs of any packet buffer (a `Frame`, or a DPDK
//! buffer processed in place where it was received).

#![forbid(unsafe_code)]

use alloc::boxed::Box;
use core::fmt;

use crate::pipeline::{Pipeline, Verdict};
use crate::wire::Error;

/// Index of a port in the pipeline (0..[`MAX_PORTS`]).
pub type PortId = u8;
/// Number of ports a pipeline can address (port ids 0..16).
pub const MAX_PORTS: usize = 16;

/// Bytes reserved in front of the data by [`Frame::set_data`] and [`Frame::reset`], enough to
/// push two VLAN tags plus an encapsulation header in place.
pub const HEADROOM: usize = 128;
/// Largest frame [`Frame::set_data`] accepts (bytes after the headroom).
pub const DATA_CAPACITY: usize = 2048;
/// Total buffer size of a frame.
pub const BUFFER_LEN: usize = HEADROOM + DATA_CAPACITY;

/// An owned packet buffer of [`BUFFER_LEN`] bytes. The frame's bytes are
/// `buf[start..end]`; the space before `start` is headroom for [`Frame::push_front`].
///
/// Allocated once (`Frame::new`) and reused for every packet: ports copy received bytes in
/// with [`Frame::set_data`] or write into [`Frame::reset`] + [`Frame::tail_mut`].
pub struct Frame {
    buf: Box<[u8; BUFFER_LEN]>,
    start: usize,
    end: usize,
    /// Port the frame was received on (set by [`crate::port::Port::recv_burst`]).
    pub port: PortId,
}

impl Frame {
    /// An empty frame with [`HEADROOM`] bytes of headroom, port 0.
    pub fn new() -> Frame {
        Frame {
            buf: Box::new([0u8; BUFFER_LEN]),
            start: HEADROOM,
            end: HEADROOM,
            port: 0,
        }
    }

    /// The frame's bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// The frame's bytes, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }

    /// Length of the frame in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True if the frame holds no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Bytes available in front of the data.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Empties the frame and restores the default headroom.
    #[inline]
    pub fn reset(&mut self) {
        self.start = HEADROOM;
        self.end = HEADROOM;
    }

    /// Copies `data` in at the default headroom. Fails with `BufferTooSmall` (leaving the
    /// frame empty) if `data` is longer than [`DATA_CAPACITY`].
    #[inline]
    pub fn set_data(&mut self, data: &[u8]) -> Result<(), Error> {
        self.reset();
        if data.len() > DATA_CAPACITY {
            return Err(Error::BufferTooSmall {
                needed: data.len(),
                capacity: DATA_CAPACITY,
            });
        }
        self.end = HEADROOM + data.len();
        self.buf[HEADROOM..self.end].copy_from_slice(data);
        Ok(())
    }

    /// The free space after the data (for ports that receive directly into the frame).
    /// Commit received bytes with [`Frame::extend`].
    #[inline]
    pub fn tail_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.end..]
    }

    /// Grows the data by `n` bytes at the end (bytes already written via
    /// [`Frame::tail_mut`]). Returns false and changes nothing if there is no room.
    #[inline]
    pub fn extend(&mut self, n: usize) -> bool {
        if n > BUFFER_LEN - self.end {
            return false;
        }
        self.end += n;
        true
    }

    /// Grows the frame by `n` bytes at the front and returns them (uninitialised contents:
    /// whatever was in the headroom). `None` if the headroom is smaller than `n`.
    #[inline]
    pub fn push_front(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.start {
            return None;
        }
        self.start -= n;
        Some(&mut self.buf[self.start..self.start + n])
    }

    /// Removes `n` bytes from the front (all of them if the frame is shorter).
    #[inline]
    pub fn pull_front(&mut self, n: usize) {
        self.start += n.min(self.len());
    }

    /// Shortens the frame to `n` bytes (no effect if it is already shorter).
    #[inline]
    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.end = self.start + n;
        }
    }
}

/// A packet the pipeline can process in place: its bytes, room to grow at the front, and the
/// port it arrived on. [`Frame`] is one; a port backend can process its own receive buffers
/// through it without copying them into frames (the DPDK queue's buffers do).
///
/// Every method must behave like [`Frame`]'s of the same name. An empty buffer (a slot that
/// holds no packet) has no data and no headroom.
pub trait PacketBuffer {
    /// The packet's bytes.
    fn data(&self) -> &[u8];
    /// The packet's bytes, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Grows the packet by `n` bytes at the front and returns them (contents unspecified);
    /// `None`, changing nothing, if the headroom is smaller than `n`.
    fn push_front(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Removes `n` bytes from the front (all of them if the packet is shorter).
    fn pull_front(&mut self, n: usize);
    /// Shortens the packet to `n` bytes (no effect if it is already shorter).
    fn truncate(&mut self, n: usize);
    /// The pipeline port the packet arrived on.
    fn port(&self) -> PortId;
    /// Moves the packet into `spare`, a free buffer of the pipeline's own (the shaper's
    /// queue), with its port. A `Frame` swaps buffers with it (`self` then holds the spare);
    /// other buffers copy their bytes and still hold the packet, which their owner then
    /// frees. False, changing nothing, if the packet is longer than [`DATA_CAPACITY`].
    fn move_into(&mut self, spare: &mut Frame) -> bool;

    /// Length of the packet in bytes.
    #[inline(always)]
    fn len(&self) -> usize {
        self.data().len()
    }
    /// True if the buffer holds no bytes.
    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// [`Pipeline::process_burst`] over buffers of this type. The default compiles the
    /// burst into the calling crate. [`Frame`] and the DPDK slot override it with a copy
    /// compiled once, in this crate, that every binary links: `vbng-up` then runs the very
    /// machine code the harness measures, and a profile-guided build
    /// (`scripts/pgo-build.sh`) trained on the harness applies to `vbng-up` too. (A generic
    /// instance compiled in each binary's crate has a symbol of its own there, which
    /// another binary's profile does not name.)
    #[inline(always)]
    fn process_burst(
        pipeline: &mut Pipeline,
        now_ns: u64,
        frames: &mut [Self],
        verdicts: &mut [Verdict],
    ) where
        Self: Sized,
    {
        pipeline.run_burst(now_ns, frames, verdicts);
    }
}

impl PacketBuffer for Frame {
    #[inline(always)]
    fn data(&self) -> &[u8] {
        Frame::data(self)
    }
    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        Frame::data_mut(self)
    }
    #[inline(always)]
    fn push_front(&mut self, n: usize) -> Option<&mut [u8]> {
        Frame::push_front(self, n)
    }
    #[inline(always)]
    fn pull_front(&mut self, n: usize) {
        Frame::pull_front(self, n)
    }
    #[inline(always)]
    fn truncate(&mut self, n: usize) {
        Frame::truncate(self, n)
    }
    #[inline(always)]
    fn port(&self) -> PortId {
        self.port
    }
    #[inline]
    fn move_into(&mut self, spare: &mut Frame) -> bool {
        core::mem::swap(self, spare);
        true
    }
    #[inline(always)]
    fn len(&self) -> usize {
        Frame::len(self)
    }

    #[inline(never)]
    fn process_burst(
        pipeline: &mut Pipeline,
        now_ns: u64,
        frames: &mut [Frame],
        verdicts: &mut [Verdict],
    ) {
        pipeline.run_burst(now_ns, frames, verdicts);
    }
}

impl Default for Frame {
    fn default() -> Self {
        Frame::new()
    }
}

impl Clone for Frame {
    fn clone(&self) -> Self {
        Frame {
            buf: self.buf.clone(),
            start: self.start,
            end: self.end,
            port: self.port,
        }
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("port", &self.port)
            .field("len", &self.len())
            .field("headroom", &self.start)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_pull_truncate() {
        let mut f = Frame::new();
        assert!(f.is_empty());
        f.set_data(&[1, 2, 3, 4]).unwrap();
        assert_eq!(f.data(), &[1, 2, 3, 4]);
        f.push_front(2).unwrap().copy_from_slice(&[9, 9]);
        assert_eq!(f.data(), &[9, 9, 1, 2, 3, 4]);
        f.pull_front(3);
        assert_eq!(f.data(), &[2, 3, 4]);
        f.truncate(2);
        assert_eq!(f.data(), &[2, 3]);
        f.truncate(10);
        assert_eq!(f.len(), 2);
        f.pull_front(10);
        assert!(f.is_empty());
        assert!(f.push_front(BUFFER_LEN).is_none());
        f.data_mut();
    }

    #[test]
    fn set_data_limits() {
        let mut f = Frame::new();
        assert!(f.set_data(&[0u8; DATA_CAPACITY]).is_ok());
        assert_eq!(f.len(), DATA_CAPACITY);
        assert!(f.set_data(&[0u8; DATA_CAPACITY + 1]).is_err());
        assert!(f.is_empty());
        assert_eq!(f.headroom(), HEADROOM);
        f.tail_mut()[..3].copy_from_slice(&[7, 8, 9]);
        assert!(f.extend(3));
        assert_eq!(f.data(), &[7, 8, 9]);
        assert!(!f.extend(BUFFER_LEN));
    }
}
