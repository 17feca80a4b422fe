//! [`DpdkQueue`]: one receive and one transmit queue of a port, driven by one worker.

use std::fmt;
use std::ptr;
use std::sync::Arc;

use super::port::PortShared;
use super::{BURST, Mempool, sys};
use crate::host::worker::WorkerPort;
use crate::packet::{Frame, PortId};
use crate::port::{Port, PortError};
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
///
/// Nothing is allocated per packet. After the port is stopped, receive returns nothing and
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
}

/// Copies the buffer chain starting at `m` into `frame`; false if it does not fit.
///
/// # Safety
/// `m` is a valid received buffer chain.
#[inline]
unsafe fn copy_into_frame(m: *mut sys::rte_mbuf, frame: &mut Frame) -> bool {
    frame.reset();
    let mut seg: *mut sys::rte_mbuf = m;
    loop {
        let mut len = 0u16;
        let mut next = ptr::null_mut();
        // SAFETY: seg is a valid segment of the chain (the caller's promise, then `next`
        // links from DPDK).
        let data = unsafe { sys::vbng_pktmbuf_segment(seg, &mut len, &mut next) };
        let len = usize::from(len);
        let tail = frame.tail_mut();
        if len > tail.len() {
            frame.reset();
            return false;
        }
        // SAFETY: the segment holds len initialised bytes at data, valid while we hold the
        // buffer; they do not overlap the frame's own buffer.
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
            for &m in &mbufs[..n] {
                let frame = &mut frames[got];
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
        if self.pending_len == BURST {
            self.flush();
        }
        // SAFETY: the pool is valid (we hold an Arc); data is valid for data.len() bytes,
        // which fits in u16 and in one buffer (checked against max_frame).
        let m = unsafe {
            sys::vbng_pktmbuf_alloc_copy(self.pool.as_ptr(), data.as_ptr(), data.len() as u16)
        };
        if m.is_null() {
            self.tx_dropped += 1;
            return Err(PortError::TxFull);
        }
        self.pending[self.pending_len] = m;
        self.pending_len += 1;
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

impl WorkerPort for DpdkQueue {
    fn rx_lost(&mut self) -> u64 {
        self.tx_dropped + self.rx_dropped
    }
}

impl Drop for DpdkQueue {
    fn drop(&mut self) {
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
