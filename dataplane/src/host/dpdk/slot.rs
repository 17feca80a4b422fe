//! [`MbufSlot`]: a received DPDK buffer the pipeline processes where the device wrote it.

use std::fmt;
use std::ptr;

use super::sys;
use crate::packet::{DATA_CAPACITY, Frame, PacketBuffer, PortId};

/// One slot of a worker's burst array on DPDK ports: empty, or owning one received
/// single-segment buffer and the pipeline port it arrived on. The pipeline reads and
/// rewrites the packet in the buffer itself ([`PacketBuffer`]: headers are pushed into and
/// pulled out of the buffer's headroom), and [`super::DpdkQueue`]'s
/// [`crate::port::BufferPort::send_buffer`] hands the same buffer to the transmit queue.
///
/// Dropping a slot that still holds a buffer frees it; slots are not `Clone`.
pub struct MbufSlot {
    mbuf: *mut sys::rte_mbuf,
    port: PortId,
}

// SAFETY: the slot is the only reference to its buffer, and DPDK buffers may be used and
// freed from any one thread at a time.
unsafe impl Send for MbufSlot {}

impl MbufSlot {
    /// A slot holding no buffer.
    pub const fn empty() -> MbufSlot {
        MbufSlot {
            mbuf: ptr::null_mut(),
            port: 0,
        }
    }

    /// True if the slot holds a buffer.
    pub fn is_occupied(&self) -> bool {
        !self.mbuf.is_null()
    }

    /// Stores `mbuf`, received on pipeline port `port`, freeing a buffer the slot held.
    ///
    /// # Safety
    /// `mbuf` is a valid single-segment buffer that the caller owns and gives up (nothing
    /// else refers to it or will free it), from a pool that outlives the slot's use of it.
    #[inline(always)]
    pub(super) unsafe fn fill(&mut self, mbuf: *mut sys::rte_mbuf, port: PortId) {
        self.clear();
        self.mbuf = mbuf;
        self.port = port;
    }

    /// Gives up the buffer (null if the slot was empty); the caller now owns it.
    #[inline(always)]
    pub(super) fn take(&mut self) -> *mut sys::rte_mbuf {
        std::mem::replace(&mut self.mbuf, ptr::null_mut())
    }

    /// Frees the buffer, if any.
    #[inline]
    pub fn clear(&mut self) {
        let m = self.take();
        if !m.is_null() {
            // SAFETY: the slot owned m exclusively (fill's contract) and no longer refers to
            // it.
            unsafe { sys::vbng_pktmbuf_free(m) };
        }
    }

    /// The buffer's descriptor, if any.
    #[inline(always)]
    fn mbuf(&self) -> Option<&sys::rte_mbuf> {
        // SAFETY: a non-null mbuf is a valid buffer the slot owns (fill's contract); the
        // shared borrow of self covers the read.
        unsafe { self.mbuf.as_ref() }
    }

    /// The buffer's descriptor, writable, if any.
    #[inline(always)]
    fn mbuf_mut(&mut self) -> Option<&mut sys::rte_mbuf> {
        // SAFETY: as in mbuf(); the unique borrow of self makes the write exclusive.
        unsafe { self.mbuf.as_mut() }
    }
}

impl Default for MbufSlot {
    fn default() -> Self {
        MbufSlot::empty()
    }
}

impl Drop for MbufSlot {
    fn drop(&mut self) {
        self.clear();
    }
}

impl fmt::Debug for MbufSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MbufSlot")
            .field("occupied", &self.is_occupied())
            .field("port", &self.port)
            .field("len", &self.len())
            .finish()
    }
}

/// Where the data of buffer `m` starts (`rte_pktmbuf_mtod`): `data_off` bytes into the
/// data room, which DPDK keeps inside it. Computing the address needs no promise
/// (`wrapping_add`); the callers' `unsafe` blocks vouch for the bytes they read there.
#[inline(always)]
fn data_start(m: &sys::rte_mbuf) -> *mut u8 {
    m.buf_addr
        .cast::<u8>()
        .wrapping_add(usize::from(m.data_off))
}

// The length fields of a single-segment buffer: DPDK keeps data_off + data_len <= buf_len
// and pkt_len == data_len; every method here preserves both.
impl PacketBuffer for MbufSlot {
    #[inline(always)]
    fn data(&self) -> &[u8] {
        let Some(m) = self.mbuf() else {
            return &[];
        };
        let len = usize::from(m.data_len);
        // SAFETY: the segment holds data_len initialised bytes at data_off (DPDK's invariant,
        // kept by every method here), valid while the slot owns the buffer and is borrowed.
        unsafe { std::slice::from_raw_parts(data_start(m), len) }
    }

    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        let Some(m) = self.mbuf_mut() else {
            return &mut [];
        };
        let len = usize::from(m.data_len);
        // SAFETY: as in data(); the slot owns the buffer exclusively and is borrowed
        // uniquely, so the bytes may be written through this borrow.
        unsafe { std::slice::from_raw_parts_mut(data_start(m), len) }
    }

    #[inline(always)]
    fn push_front(&mut self, n: usize) -> Option<&mut [u8]> {
        let m = self.mbuf_mut()?;
        let n16 = u16::try_from(n).ok()?;
        if n16 > m.data_off {
            return None;
        }
        // As rte_pktmbuf_prepend: the headroom shrinks by n, the data grows by n.
        m.data_off -= n16;
        m.data_len += n16;
        m.pkt_len += u32::from(n16);
        // SAFETY: data_off + n <= the old data_off + data_len <= buf_len; the n bytes are in
        // the data room the slot owns exclusively (they may hold any old bytes, which is
        // what push_front promises).
        Some(unsafe { std::slice::from_raw_parts_mut(data_start(m), n) })
    }

    #[inline(always)]
    fn pull_front(&mut self, n: usize) {
        if let Some(m) = self.mbuf_mut() {
            let n = n.min(usize::from(m.data_len)) as u16;
            m.data_off += n;
            m.data_len -= n;
            m.pkt_len -= u32::from(n);
        }
    }

    #[inline(always)]
    fn truncate(&mut self, n: usize) {
        if let Some(m) = self.mbuf_mut()
            && n < usize::from(m.data_len)
        {
            m.data_len = n as u16;
            m.pkt_len = u32::from(m.data_len);
        }
    }

    #[inline(always)]
    fn port(&self) -> PortId {
        self.port
    }

    fn move_into(&mut self, spare: &mut Frame) -> bool {
        if self.len() > DATA_CAPACITY || spare.set_data(self.data()).is_err() {
            return false;
        }
        spare.port = self.port;
        true
    }
}
