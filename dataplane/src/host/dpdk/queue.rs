//! [`DpdkQueue`]: one receive and one transmit queue of a port, driven by one worker.

use std::fmt;
use std::ptr;
use std::sync::Arc;

use super::port::PortShared;
use super::{BURST, MbufSlot, Mempool, sys};
use crate::host::worker::WorkerPort;
use crate::packet::{Frame, PortId};
use crate::port::{BufferPort, Port, PortError};
use crate::wire::EthernetAddress;

/// One receive queue and one transmit queue (same index) of a started port, owned by one
/// worker thread. Obtained from [`super::EthPort::queue`].
///
/// - [`Port::recv_burst`] receives up to [`BURST`] buffers per `rte_eth_rx_burst`, copies
///   each (segment by segment) into a [`Frame`], sets `frame.port`, and returns the buffers
///   to their pool in bulk. A frame longer than a `Frame` holds is dropped and counted.
/// - [`Port::send`] copies the frame into a buffer from the queue's pool and queues it;
///   when [`BURST`] are queued it transmits them. [`Port::flush`] transmits what is queued,
///   retries once for what the device did not take, then frees and counts the rest.
///   Transmit buffers come from a per-queue stash refilled [`BURST`] at a time with
///   `rte_pktmbuf_alloc_bulk` (up to `BURST` buffers stay in the stash until the queue is
///   dropped).
///
/// The per-packet work (buffer fields, copies) is done inline in Rust through the mbuf
/// layout of the bindings; the C shim is called once per burst. Nothing is allocated per
/// packet. After the port is stopped, receive returns nothing and
/// send fails with [`PortError::Down`].
pub struct DpdkQueue {
    shared: Arc<PortShared>,
    port: u16,
    queue: u16,
    has_rx: bool,
    has_tx: bool,
    pipeline_port: PortId,
    pool: Arc<Mempool>,
    max_frame: usize,
    mac: EthernetAddress,
    pending: [*mut sys::rte_mbuf; BURST],
    pending_len: usize,
    /// Transmit buffers allocated in bulk, reset by DPDK, not yet used: `stash[..stash_len]`.
    stash: [*mut sys::rte_mbuf; BURST],
    stash_len: usize,
    tx_dropped: u64,
    rx_dropped: u64,
}

// SAFETY: the raw pointers are buffers this queue owns exclusively (queued for transmit);
// DPDK buffers and a queue's burst functions may be used from any one thread at a time, and
// the port hands each queue index to one DpdkQueue only.
unsafe impl Send for DpdkQueue {}

impl DpdkQueue {
    pub(super) fn new(
        shared: Arc<PortShared>,
        queue: u16,
        has_rx: bool,
        has_tx: bool,
        pipeline_port: PortId,
        pool: Arc<Mempool>,
        mac: EthernetAddress,
    ) -> DpdkQueue {
        DpdkQueue {
            port: shared.id,
            shared,
            queue,
            has_rx,
            has_tx,
            pipeline_port,
            max_frame: pool.max_frame().min(usize::from(u16::MAX)),
            pool,
            mac,
            pending: [ptr::null_mut(); BURST],
            pending_len: 0,
            stash: [ptr::null_mut(); BURST],
            stash_len: 0,
            tx_dropped: 0,
            rx_dropped: 0,
        }
    }

    /// The DPDK port id.
    pub fn port_id(&self) -> u16 {
        self.port
    }

    /// The queue index.
    pub fn queue_id(&self) -> u16 {
        self.queue
    }

    /// Frames this queue dropped on transmit: the device refused them twice, the pool had no
    /// buffer, or the port was stopped with frames queued.
    pub fn tx_dropped(&self) -> u64 {
        self.tx_dropped
    }

    /// Frames this queue received but dropped because they were longer than a [`Frame`]
    /// holds.
    pub fn rx_dropped(&self) -> u64 {
        self.rx_dropped
    }

    /// Receives up to `out.len()` (at most 65535) buffers with one `rte_eth_rx_burst` and
    /// returns how many; the caller owns `out[..n]` (pass them to
    /// [`DpdkQueue::tx_burst_raw`], `rte_pktmbuf_free_bulk` or [`super::Mbuf::from_raw`]).
    /// For benchmarks and zero-copy forwarding.
    pub fn rx_burst_raw(&mut self, out: &mut [*mut sys::rte_mbuf]) -> usize {
        if !self.has_rx || out.is_empty() {
            return 0;
        }
        let q = usize::from(self.queue);
        if !self.shared.enter(q) {
            return 0;
        }
        let want = out.len().min(usize::from(u16::MAX)) as u16;
        // SAFETY: the port is started and stays so until leave(); this queue index is owned
        // by self alone; out has room for `want` pointers.
        let n = unsafe { sys::vbng_eth_rx_burst(self.port, self.queue, out.as_mut_ptr(), want) };
        self.shared.leave(q);
        usize::from(n)
    }

    /// Transmits `mbufs` with one `rte_eth_tx_burst` (at most 65535) and returns how many
    /// the device took; those now belong to the device, the rest (`mbufs[n..]`) still
    /// belong to the caller. Returns 0 if the port is stopped or the queue has no transmit
    /// side.
    ///
    /// # Safety
    /// Every pointer in `mbufs` is a valid packet buffer the caller owns (e.g. from
    /// [`DpdkQueue::rx_burst_raw`] or [`super::Mbuf::into_raw`]) from a pool that outlives
    /// the port.
    pub unsafe fn tx_burst_raw(&mut self, mbufs: &mut [*mut sys::rte_mbuf]) -> usize {
        if !self.has_tx || mbufs.is_empty() {
            return 0;
        }
        let q = usize::from(self.queue);
        if !self.shared.enter(q) {
            return 0;
        }
        let n = mbufs.len().min(usize::from(u16::MAX)) as u16;
        // SAFETY: the port is started until leave(); the queue is ours; the caller vouches
        // for the buffers.
        let sent = unsafe { sys::vbng_eth_tx_burst(self.port, self.queue, mbufs.as_mut_ptr(), n) };
        self.shared.leave(q);
        usize::from(sent)
    }

    /// Frees the queued transmit buffers `pending[from..]` and counts them as dropped.
    fn drop_pending(&mut self, from: usize) {
        let n = self.pending_len - from;
        if n > 0 {
            let rest = self.pending[from..self.pending_len].as_mut_ptr();
            // SAFETY: the n pointers at rest are buffers we own and nobody else refers to.
            unsafe { sys::rte_pktmbuf_free_bulk(rest, n as u32) };
            self.tx_dropped += n as u64;
        }
        self.pending_len = 0;
    }

    /// A reset transmit buffer from the stash (refilled in bulk), or null if the pool is
    /// empty.
    #[inline]
    fn take_mbuf(&mut self) -> *mut sys::rte_mbuf {
        if self.stash_len == 0 {
            // SAFETY: the pool is valid (we hold an Arc); stash has room for BURST pointers.
            let r = unsafe {
                sys::vbng_pktmbuf_alloc_bulk(
                    self.pool.as_ptr(),
                    self.stash.as_mut_ptr(),
                    BURST as u32,
                )
            };
            if r != 0 {
                // Not BURST left in the pool: one at a time.
                // SAFETY: the pool is valid.
                return unsafe { sys::vbng_pktmbuf_alloc(self.pool.as_ptr()) };
            }
            self.stash_len = BURST;
        }
        self.stash_len -= 1;
        self.stash[self.stash_len]
    }
}

/// The data of the buffer segment `m`: (pointer, length, next segment or null).
///
/// # Safety
/// `m` is a valid buffer segment.
#[inline(always)]
unsafe fn segment(m: *const sys::rte_mbuf) -> (*const u8, usize, *mut sys::rte_mbuf) {
    // SAFETY: m is valid (the caller's promise).
    let m = unsafe { &*m };
    // SAFETY: buf_addr + data_off is where DPDK keeps the segment's data_len bytes
    // (rte_pktmbuf_mtod), inside the buffer's allocation.
    let data = unsafe { m.buf_addr.cast::<u8>().add(usize::from(m.data_off)) };
    (data.cast_const(), usize::from(m.data_len), m.next)
}

/// Hints the CPU to fetch the first cache line of the data of buffer `m`.
///
/// # Safety
/// `m` is a valid buffer.
#[inline(always)]
unsafe fn prefetch_data(m: *const sys::rte_mbuf) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: m is valid (the caller's promise).
        let m = unsafe { &*m };
        // A prefetch never faults, whatever the address: no pointer arithmetic promise
        // needed (wrapping_add).
        let p = m
            .buf_addr
            .cast::<i8>()
            .wrapping_add(usize::from(m.data_off));
        // SAFETY: _mm_prefetch only hints the cache; SSE is part of the x86_64 baseline.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast_const()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = m;
}

/// Copies the buffer chain starting at `m` into `frame`; false if it does not fit.
///
/// # Safety
/// `m` is a valid received buffer chain.
#[inline(always)]
unsafe fn copy_into_frame(m: *mut sys::rte_mbuf, frame: &mut Frame) -> bool {
    // SAFETY: m is a valid segment (the caller's promise).
    let (data, len, next) = unsafe { segment(m) };
    if next.is_null() {
        // One segment, the common case: one copy at the frame's headroom.
        // SAFETY: the segment holds len initialised bytes at data, valid while we hold the
        // buffer; they do not overlap the frame's own buffer.
        let src = unsafe { std::slice::from_raw_parts(data, len) };
        return frame.set_data(src).is_ok();
    }
    frame.reset();
    let mut seg: *mut sys::rte_mbuf = m;
    loop {
        // SAFETY: seg is a valid segment of the chain (the caller's promise, then `next`
        // links from DPDK).
        let (data, len, next) = unsafe { segment(seg) };
        let tail = frame.tail_mut();
        if len > tail.len() {
            frame.reset();
            return false;
        }
        // SAFETY: as above.
        let src = unsafe { std::slice::from_raw_parts(data, len) };
        tail[..len].copy_from_slice(src);
        frame.extend(len);
        if next.is_null() {
            return true;
        }
        seg = next;
    }
}

impl Port for DpdkQueue {
    fn recv_burst(&mut self, frames: &mut [Frame]) -> usize {
        if !self.has_rx || frames.is_empty() {
            return 0;
        }
        let q = usize::from(self.queue);
        if !self.shared.enter(q) {
            return 0;
        }
        let mut mbufs = [ptr::null_mut::<sys::rte_mbuf>(); BURST];
        let mut got = 0;
        while got < frames.len() {
            let want = (frames.len() - got).min(BURST) as u16;
            // SAFETY: the port is started until leave(); this queue index is ours alone;
            // mbufs has room for BURST >= want pointers.
            let n =
                unsafe { sys::vbng_eth_rx_burst(self.port, self.queue, mbufs.as_mut_ptr(), want) };
            let n = usize::from(n);
            if n > 0 {
                // SAFETY: mbufs[0] was just received: a valid buffer.
                unsafe { prefetch_data(mbufs[0]) };
            }
            for i in 0..n {
                let m = mbufs[i];
                if let Some(&next) = mbufs[..n].get(i + 1) {
                    // SAFETY: next was just received: a valid buffer.
                    unsafe { prefetch_data(next) };
                }
                // got < frames.len(): at most want = frames.len() - got buffers came.
                let Some(frame) = frames.get_mut(got) else {
                    break;
                };
                // SAFETY: m was just received, so it is a valid buffer chain we own.
                if unsafe { copy_into_frame(m, frame) } {
                    frame.port = self.pipeline_port;
                    got += 1;
                } else {
                    self.rx_dropped += 1;
                }
            }
            if n > 0 {
                // SAFETY: mbufs[..n] are buffers we own, no longer referred to.
                unsafe { sys::rte_pktmbuf_free_bulk(mbufs.as_mut_ptr(), n as u32) };
            }
            if n < usize::from(want) {
                break;
            }
        }
        self.shared.leave(q);
        got
    }

    fn send(&mut self, data: &[u8]) -> Result<(), PortError> {
        if !self.has_tx || !self.shared.is_started() {
            return Err(PortError::Down);
        }
        if data.len() > self.max_frame {
            return Err(PortError::FrameTooLarge {
                len: data.len(),
                max: self.max_frame,
            });
        }
        let m = self.take_mbuf();
        if m.is_null() {
            self.tx_dropped += 1;
            return Err(PortError::TxFull);
        }
        let len = data.len();
        // SAFETY: m is a valid buffer we own (from the pool, reset by DPDK: one segment, no
        // data, data_off at the headroom) that nothing else refers to.
        let mb = unsafe { &mut *m };
        let off = usize::from(mb.data_off);
        if off + len > usize::from(mb.buf_len) {
            self.stash[self.stash_len] = m;
            self.stash_len += 1;
            return Err(PortError::FrameTooLarge {
                len,
                max: usize::from(mb.buf_len).saturating_sub(off),
            });
        }
        // SAFETY: the data room is buf_len bytes at buf_addr, of which data_off are headroom;
        // off + len <= buf_len was checked.
        let dst = unsafe { mb.buf_addr.cast::<u8>().add(off) };
        // SAFETY: dst has room for len bytes (above); data is valid for len bytes and does not
        // overlap a buffer we own.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), dst, len) };
        // As rte_pktmbuf_append: one segment of len bytes.
        mb.data_len = len as u16;
        mb.pkt_len = len as u32;
        self.queue_tx(m);
        Ok(())
    }

    fn flush(&mut self) {
        let n = self.pending_len;
        if n == 0 {
            return;
        }
        let q = usize::from(self.queue);
        if !self.shared.enter(q) {
            self.drop_pending(0);
            return;
        }
        let (port, queue) = (self.port, self.queue);
        let all = self.pending[..n].as_mut_ptr();
        // SAFETY: the port is started until leave(); the queue is ours; pending[..n] are
        // buffers we own; the device takes ownership of those it accepts.
        let mut sent = usize::from(unsafe { sys::vbng_eth_tx_burst(port, queue, all, n as u16) });
        if sent < n {
            let rest = self.pending[sent..n].as_mut_ptr();
            // SAFETY: as above, for the buffers the first burst left.
            let more = unsafe { sys::vbng_eth_tx_burst(port, queue, rest, (n - sent) as u16) };
            sent += usize::from(more);
        }
        self.shared.leave(q);
        self.drop_pending(sent);
    }

    fn mac(&self) -> EthernetAddress {
        self.mac
    }
}

impl DpdkQueue {
    /// Queues buffer `m` (owned by the caller, given up) for transmit, transmitting the
    /// queue first if it is full.
    #[inline(always)]
    fn queue_tx(&mut self, m: *mut sys::rte_mbuf) {
        if self.pending_len == BURST {
            self.flush();
        }
        self.pending[self.pending_len] = m;
        self.pending_len += 1;
    }
}

/// The zero-copy burst path: received buffers go to the pipeline as they are and the
/// buffers to send go to the transmit queue as they are. A multi-segment buffer (a frame
/// longer than one buffer's data room, from a device with scattered receive) is freed and
/// counted in [`DpdkQueue::rx_dropped`], as the copying path drops frames longer than a
/// [`Frame`].
impl BufferPort for DpdkQueue {
    type Buffer = MbufSlot;

    fn empty_buffer(&self) -> MbufSlot {
        MbufSlot::empty()
    }

    #[inline]
    fn recv_buffers(&mut self, bufs: &mut [MbufSlot]) -> usize {
        let mut mbufs = [ptr::null_mut::<sys::rte_mbuf>(); BURST];
        let want = bufs.len().min(BURST);
        let n = self.rx_burst_raw(&mut mbufs[..want]);
        let mut got = 0;
        for &m in &mbufs[..n] {
            // SAFETY: m was just received: a valid buffer we own.
            let single = unsafe { (*m).nb_segs } == 1;
            // At most want <= bufs.len() buffers came, so there is always a slot.
            match bufs.get_mut(got) {
                Some(slot) if single => {
                    // SAFETY: m is a valid single-segment buffer we own and give up; its
                    // pool outlives the queue.
                    unsafe { slot.fill(m, self.pipeline_port) };
                    got += 1;
                }
                _ => {
                    // SAFETY: we own m and nothing else refers to it.
                    unsafe { sys::vbng_pktmbuf_free(m) };
                    self.rx_dropped += 1;
                }
            }
        }
        got
    }

    /// A stopped port is not checked for here, per frame, but by [`Port::flush`], which
    /// frees and counts in [`DpdkQueue::tx_dropped`] what it cannot send.
    #[inline]
    fn send_buffer(&mut self, buf: &mut MbufSlot) -> Result<(), PortError> {
        if !self.has_tx {
            return Err(PortError::Down);
        }
        let m = buf.take();
        if m.is_null() {
            // Nothing to send: a caller's mistake, refused like a stopped port.
            return Err(PortError::Down);
        }
        self.queue_tx(m);
        Ok(())
    }

    #[inline]
    fn release(&mut self, bufs: &mut [MbufSlot]) {
        let mut left = [ptr::null_mut::<sys::rte_mbuf>(); BURST];
        let mut n = 0;
        for slot in bufs.iter_mut() {
            if slot.is_occupied() {
                if n == BURST {
                    // SAFETY: left[..n] are buffers we own and nobody else refers to.
                    unsafe { sys::rte_pktmbuf_free_bulk(left.as_mut_ptr(), n as u32) };
                    n = 0;
                }
                left[n] = slot.take_to_free();
                n += 1;
            }
        }
        if n > 0 {
            // SAFETY: as above.
            unsafe { sys::rte_pktmbuf_free_bulk(left.as_mut_ptr(), n as u32) };
        }
    }
}

impl WorkerPort for DpdkQueue {
    fn rx_lost(&mut self) -> u64 {
        self.tx_dropped + self.rx_dropped
    }
}

impl Drop for DpdkQueue {
    fn drop(&mut self) {
        if self.stash_len > 0 {
            // SAFETY: stash[..stash_len] are buffers we own and nobody else refers to.
            unsafe { sys::rte_pktmbuf_free_bulk(self.stash.as_mut_ptr(), self.stash_len as u32) };
            self.stash_len = 0;
        }
        if self.pending_len > 0 {
            let n = self.pending_len;
            // SAFETY: pending[..n] are buffers we own and nobody else refers to.
            unsafe { sys::rte_pktmbuf_free_bulk(self.pending.as_mut_ptr(), n as u32) };
            self.pending_len = 0;
        }
        self.shared.release(usize::from(self.queue));
    }
}

impl fmt::Debug for DpdkQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpdkQueue")
            .field("port", &self.shared.name)
            .field("queue", &self.queue)
            .field("rx", &self.has_rx)
            .field("tx", &self.has_tx)
            .field("pipeline_port", &self.pipeline_port)
            .field("pending", &self.pending_len)
            .field("tx_dropped", &self.tx_dropped)
            .field("rx_dropped", &self.rx_dropped)
            .finish()
    }
}
