//! Preallocated frame queues between the worker and the GTP-U redirect threads.
//!
//! A [`FrameQueue`] is a single-producer single-consumer channel of fixed-size frame buffers
//! built from two lock-free `ArrayQueue`s: `free` holds empty buffers, `full` holds filled
//! ones. The producer takes a free buffer, copies the frame in and pushes it to `full`; the
//! consumer pops it, uses it and gives it back with [`FrameQueue::recycle`]. Every buffer is
//! allocated once in [`FrameQueue::new`]; after that nothing allocates. When no free buffer
//! is left the frame is dropped and counted ([`FrameQueue::dropped`]): a slow consumer never
//! blocks the worker.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;

use crate::packet::PortId;

/// Largest frame a [`PacketBuf`] holds, in bytes (a [`crate::packet::Frame`]'s capacity).
pub const PACKET_BUF_CAPACITY: usize = crate::packet::DATA_CAPACITY;

/// One frame in flight between threads: the port it came from or goes to, and its bytes.
pub struct PacketBuf {
    port: PortId,
    len: u16,
    data: [u8; PACKET_BUF_CAPACITY],
}

impl fmt::Debug for PacketBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketBuf")
            .field("port", &self.port)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl PacketBuf {
    fn new_boxed() -> Box<PacketBuf> {
        Box::new(PacketBuf {
            port: 0,
            len: 0,
            data: [0; PACKET_BUF_CAPACITY],
        })
    }

    /// The port the frame belongs to.
    pub fn port(&self) -> PortId {
        self.port
    }

    /// The frame bytes.
    pub fn data(&self) -> &[u8] {
        &self.data[..usize::from(self.len)]
    }

    /// Copies `data` in; false if longer than [`PACKET_BUF_CAPACITY`].
    pub fn set(&mut self, port: PortId, data: &[u8]) -> bool {
        let Some(dst) = self.data.get_mut(..data.len()) else {
            return false;
        };
        dst.copy_from_slice(data);
        self.port = port;
        self.len = data.len() as u16;
        true
    }
}

/// A preallocated SPSC queue of frames (see the module docs).
pub struct FrameQueue {
    free: ArrayQueue<Box<PacketBuf>>,
    full: ArrayQueue<Box<PacketBuf>>,
    dropped: AtomicU64,
    too_large: AtomicU64,
}

impl fmt::Debug for FrameQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameQueue")
            .field("capacity", &self.full.capacity())
            .field("queued", &self.full.len())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl FrameQueue {
    /// A queue of `capacity` buffers (at least 1), all allocated now.
    pub fn new(capacity: usize) -> FrameQueue {
        let capacity = capacity.max(1);
        let free = ArrayQueue::new(capacity);
        for _ in 0..capacity {
            // Cannot fail: exactly `capacity` pushes into an empty queue of that capacity.
            let _ = free.push(PacketBuf::new_boxed());
        }
        FrameQueue {
            free,
            full: ArrayQueue::new(capacity),
            dropped: AtomicU64::new(0),
            too_large: AtomicU64::new(0),
        }
    }

    /// Producer: queues a copy of `data` for `port`. Returns false, and counts the frame in
    /// [`FrameQueue::dropped`], when every buffer is in use or the frame is too large.
    pub fn push(&self, port: PortId, data: &[u8]) -> bool {
        let Some(mut buf) = self.free.pop() else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        if !buf.set(port, data) {
            self.too_large.fetch_add(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            let _ = self.free.push(buf);
            return false;
        }
        // Cannot fail: a buffer is either in `free`, in `full` or held by one side, and both
        // queues have room for all of them.
        let _ = self.full.push(buf);
        true
    }

    /// Consumer: the oldest queued frame, if any. Give it back with [`FrameQueue::recycle`].
    pub fn pop(&self) -> Option<Box<PacketBuf>> {
        self.full.pop()
    }

    /// Consumer: returns a buffer obtained from [`FrameQueue::pop`].
    pub fn recycle(&self, buf: Box<PacketBuf>) {
        let _ = self.free.push(buf);
    }

    /// True if no frame is queued.
    pub fn is_empty(&self) -> bool {
        self.full.is_empty()
    }

    /// Frames dropped because the queue was full or the frame too large (cumulative).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Frames dropped because they were larger than [`PACKET_BUF_CAPACITY`] (cumulative).
    pub fn too_large(&self) -> u64 {
        self.too_large.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_flow_and_buffers_are_reused() {
        let q = FrameQueue::new(2);
        assert!(q.push(3, b"abc"));
        assert!(q.push(4, b"de"));
        assert!(!q.push(5, b"f"), "third push must fail: only two buffers");
        assert_eq!(q.dropped(), 1);
        let a = q.pop().unwrap();
        assert_eq!((a.port(), a.data()), (3, &b"abc"[..]));
        q.recycle(a);
        assert!(q.push(6, b"g"));
        let b = q.pop().unwrap();
        assert_eq!((b.port(), b.data()), (4, &b"de"[..]));
        q.recycle(b);
        let c = q.pop().unwrap();
        assert_eq!((c.port(), c.data()), (6, &b"g"[..]));
        q.recycle(c);
        assert!(q.is_empty());
    }

    #[test]
    fn oversized_frame_is_dropped_and_buffer_kept() {
        let q = FrameQueue::new(1);
        assert!(!q.push(0, &[0u8; PACKET_BUF_CAPACITY + 1]));
        assert_eq!((q.dropped(), q.too_large()), (1, 1));
        assert!(q.push(0, &[0u8; PACKET_BUF_CAPACITY]));
    }
}
