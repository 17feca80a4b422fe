//! [`MbufSlot`]: a received DPDK buffer the pipeline processes where the device wrote it.

use std::fmt;
use std::ptr::{self, NonNull};

use super::sys;
use crate::packet::{Frame, PacketBuffer, PortId};
use crate::pipeline::{Pipeline, Verdict};

/// One slot of a worker's burst array on DPDK ports: empty, or owning one received
/// single-segment buffer and the pipeline port it arrived on. The pipeline reads and
/// rewrites the packet in the buffer itself ([`PacketBuffer`]: headers are pushed into and
/// pulled out of the buffer's headroom), and [`super::DpdkQueue`]'s
/// [`crate::port::BufferPort::send_buffer`] hands the same buffer to the transmit queue.
///
/// The slot keeps the packet's start, length and headroom itself, read from the buffer's
/// descriptor once when it is filled and written back, only if they changed, when the
/// buffer leaves for the device ([`MbufSlot::take`]): the pipeline's many reads of the
/// packet never go through the descriptor. Dropping a slot that still holds a buffer frees it; slots are not
/// `Clone`.
pub struct MbufSlot {
    mbuf: *mut sys::rte_mbuf,
    /// First byte of the packet; when empty (`len` 0) any non-null pointer, never read.
    data: NonNull<u8>,
    len: u16,
    /// Bytes of the buffer in front of `data` (the descriptor's `data_off`).
    headroom: u16,
    port: PortId,
    /// The packet's start or length changed since [`MbufSlot::fill`], so the descriptor
    /// no longer describes it.
    moved: bool,
}

// SAFETY: the slot is the only reference to its buffer, and DPDK buffers may be used and
// freed from any one thread at a time.
unsafe impl Send for MbufSlot {}

impl MbufSlot {
    /// A slot holding no buffer.
    pub const fn empty() -> MbufSlot {
        MbufSlot {
            mbuf: ptr::null_mut(),
            data: NonNull::dangling(),
            len: 0,
            headroom: 0,
            port: 0,
            moved: false,
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
        if self.is_occupied() {
            self.clear();
        }
        // SAFETY: mbuf is valid (the caller's promise); only its fields are read.
        let m = unsafe { &*mbuf };
        // buf_addr + data_off is inside the buffer's data room (DPDK's invariant), so it is
        // not null; wrapping_add needs no promise.
        let start = m
            .buf_addr
            .cast::<u8>()
            .wrapping_add(usize::from(m.data_off));
        let Some(data) = NonNull::new(start) else {
            // SAFETY: we own mbuf (the caller gave it up) and nothing else refers to it.
            unsafe { sys::vbng_pktmbuf_free(mbuf) };
            return;
        };
        self.mbuf = mbuf;
        self.data = data;
        self.len = m.data_len;
        self.headroom = m.data_off;
        self.port = port;
        self.moved = false;
    }

    /// Gives up the buffer (null if the slot was empty), its descriptor updated to the
    /// packet's current start and length; the caller now owns it. A packet forwarded
    /// with its start and length unchanged (the IPoE case) leaves the descriptor as the
    /// driver wrote it: skipping those three stores made the DPDK loop without a pipeline
    /// 6% faster (`vbng-perf fastpath`, `dpdk_port_io`). Whether they changed is the
    /// slot's own flag, so such a packet's descriptor is not read here either.
    #[inline(always)]
    pub(super) fn take(&mut self) -> *mut sys::rte_mbuf {
        let m = std::mem::replace(&mut self.mbuf, ptr::null_mut());
        if self.moved
            // SAFETY: a non-null m is a valid buffer the slot owned exclusively until now.
            && let Some(d) = unsafe { m.as_mut() }
        {
            // One segment: the packet is data_len bytes at data_off (rte_pktmbuf_mtod),
            // and pkt_len equals data_len.
            d.data_off = self.headroom;
            d.data_len = self.len;
            d.pkt_len = u32::from(self.len);
        }
        self.forget_packet();
        m
    }

    /// Gives up the buffer (null if the slot was empty) without updating its descriptor:
    /// for freeing it (DPDK resets a buffer when it is allocated again).
    #[inline(always)]
    pub(super) fn take_to_free(&mut self) -> *mut sys::rte_mbuf {
        self.forget_packet();
        std::mem::replace(&mut self.mbuf, ptr::null_mut())
    }

    /// Frees the buffer, if any.
    #[inline]
    pub fn clear(&mut self) {
        let m = self.take_to_free();
        if !m.is_null() {
            // SAFETY: the slot owned m exclusively (fill's contract) and no longer refers to
            // it.
            unsafe { sys::vbng_pktmbuf_free(m) };
        }
    }

    /// Empties the packet view. `data` keeps its old value: with `len` 0 no byte is read
    /// through it, and with `headroom` 0 `push_front` refuses.
    #[inline(always)]
    fn forget_packet(&mut self) {
        self.len = 0;
        self.headroom = 0;
        self.moved = false;
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
            .field("len", &self.len)
            .field("headroom", &self.headroom)
            .finish()
    }
}

// The slot's invariant: `data` points at `len` initialised bytes of the buffer the slot
// owns, with `headroom` bytes of the same buffer in front of them (or, empty, both are 0
// and `data` is any non-null pointer). Every method keeps it.
impl PacketBuffer for MbufSlot {
    #[inline(always)]
    fn data(&self) -> &[u8] {
        // SAFETY: the invariant above; any non-null pointer with length 0 is a valid empty
        // slice. The bytes stay valid while the slot owns the buffer and is borrowed.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr(), usize::from(self.len)) }
    }

    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in data(); the slot owns the buffer exclusively and is borrowed
        // uniquely, so the bytes may be written through this borrow.
        unsafe { std::slice::from_raw_parts_mut(self.data.as_ptr(), usize::from(self.len)) }
    }

    #[inline(always)]
    fn push_front(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok().filter(|&n| n <= self.headroom)?;
        if n16 == 0 {
            // Nothing moves: the descriptor still describes the packet (see `take`).
            return Some(&mut []);
        }
        // SAFETY: the n bytes in front of data are the buffer's headroom (the invariant),
        // inside the allocation the slot owns; they may hold any old bytes, which is what
        // push_front promises.
        let start = unsafe { self.data.as_ptr().sub(n) };
        // SAFETY: start is inside the buffer, so not null.
        self.data = unsafe { NonNull::new_unchecked(start) };
        self.headroom -= n16;
        self.len += n16;
        self.moved = true;
        // SAFETY: start..start + n is the old headroom's tail, owned by the slot; the unique
        // borrow of self covers it.
        Some(unsafe { std::slice::from_raw_parts_mut(start, n) })
    }

    #[inline(always)]
    fn pull_front(&mut self, n: usize) {
        let n16 = n.min(usize::from(self.len)) as u16;
        if n16 == 0 {
            // An IPoE packet keeps its Ethernet header's place: leave `moved` alone.
            return;
        }
        // SAFETY: n16 <= len, so the new start is within (or one past) the packet's bytes.
        self.data = unsafe { self.data.add(usize::from(n16)) };
        self.headroom += n16;
        self.len -= n16;
        self.moved = true;
    }

    #[inline(always)]
    fn truncate(&mut self, n: usize) {
        if n < usize::from(self.len) {
            self.len = n as u16;
            self.moved = true;
        }
    }

    #[inline(always)]
    fn port(&self) -> PortId {
        self.port
    }

    fn move_into(&mut self, spare: &mut Frame) -> bool {
        // set_data refuses (and leaves `spare` empty) beyond DATA_CAPACITY.
        if spare.set_data(self.data()).is_err() {
            return false;
        }
        spare.port = self.port;
        true
    }

    #[inline(always)]
    fn len(&self) -> usize {
        usize::from(self.len)
    }

    #[inline(never)]
    fn process_burst(
        pipeline: &mut Pipeline,
        now_ns: u64,
        frames: &mut [MbufSlot],
        verdicts: &mut [Verdict],
    ) {
        pipeline.run_burst(now_ns, frames, verdicts);
    }
}
