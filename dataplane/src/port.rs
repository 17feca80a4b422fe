//! The [`Port`] trait every packet I/O backend implements, [`BufferPort`] for the burst path
//! of a poll loop (in place where the backend allows it), and [`MemoryPort`] for tests.

#![forbid(unsafe_code)]

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::packet::{DATA_CAPACITY, Frame, PacketBuffer, PortId};
use crate::wire::EthernetAddress;

/// Transmit errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The transmit queue is full; the frame was not queued.
    #[error("transmit queue full")]
    TxFull,
    /// The frame is larger than the port can send.
    #[error("frame of {len} bytes exceeds the port maximum of {max}")]
    FrameTooLarge {
        /// Frame length.
        len: usize,
        /// Port maximum.
        max: usize,
    },
    /// The link or device is down.
    #[error("port is down")]
    Down,
    /// An operating-system error (errno) from a hosted port.
    #[error("i/o error (errno {0})")]
    Io(i32),
}

/// A packet port: burst receive, queued transmit, explicit flush.
pub trait Port {
    /// Receives up to `frames.len()` frames into `frames[..n]`, sets each `frame.port` and
    /// returns `n`. Never blocks.
    fn recv_burst(&mut self, frames: &mut [Frame]) -> usize;
    /// Queues one frame for transmit (copied). Never blocks.
    fn send(&mut self, data: &[u8]) -> Result<(), PortError>;
    /// Kicks the queued frames to the device (called once per burst).
    fn flush(&mut self);
    /// The port's own MAC address.
    fn mac(&self) -> EthernetAddress;
}

/// The burst path of a poll loop: receive into buffers the pipeline processes in place,
/// transmit them without another copy when the backend can. A backend whose buffers are
/// its own (DPDK's) hands them out as [`BufferPort::Buffer`]; one that copies anyway
/// (AF_PACKET rings, memory) uses [`Frame`] and its [`Port`] methods.
///
/// A loop keeps one burst array of `Buffer`s (made with [`BufferPort::empty_buffer`]); per
/// burst: `recv_buffers`, process, `send_buffer` each packet to send, then `release` the
/// whole array, which frees whatever was not sent. Between bursts the array holds no
/// packets.
pub trait BufferPort: Port {
    /// The buffer a received packet lives in.
    type Buffer: PacketBuffer;
    /// A buffer slot holding no packet.
    fn empty_buffer(&self) -> Self::Buffer;
    /// Receives up to `bufs.len()` packets into `bufs[..n]` (slots released since their last
    /// use), sets their port, returns `n`. Never blocks.
    fn recv_buffers(&mut self, bufs: &mut [Self::Buffer]) -> usize;
    /// Queues the packet in `buf` for transmit like [`Port::send`]; a backend that can takes
    /// the packet out of `buf` instead of copying it (the packet may have been received on
    /// another port of the same backend). Never blocks.
    fn send_buffer(&mut self, buf: &mut Self::Buffer) -> Result<(), PortError>;
    /// Frees the packets `bufs` still hold (received and not sent); cheap when there are
    /// none.
    fn release(&mut self, bufs: &mut [Self::Buffer]);
}

/// [`BufferPort`] for a port that copies: the buffers are [`Frame`]s, received with
/// [`Port::recv_burst`] and sent with [`Port::send`].
#[macro_export]
macro_rules! impl_buffer_port_with_frames {
    ($port:ty) => {
        impl $crate::port::BufferPort for $port {
            type Buffer = $crate::packet::Frame;
            fn empty_buffer(&self) -> $crate::packet::Frame {
                $crate::packet::Frame::new()
            }
            #[inline]
            fn recv_buffers(&mut self, bufs: &mut [$crate::packet::Frame]) -> usize {
                $crate::port::Port::recv_burst(self, bufs)
            }
            #[inline]
            fn send_buffer(
                &mut self,
                buf: &mut $crate::packet::Frame,
            ) -> Result<(), $crate::port::PortError> {
                $crate::port::Port::send(self, buf.data())
            }
            #[inline]
            fn release(&mut self, _bufs: &mut [$crate::packet::Frame]) {}
        }
    };
}

impl_buffer_port_with_frames!(MemoryPort);

/// An in-memory port for tests: frames injected with [`MemoryPort::inject`] are returned by
/// `recv_burst`; frames sent are kept until [`MemoryPort::drain`].
#[derive(Debug, Clone)]
pub struct MemoryPort {
    id: PortId,
    mac: EthernetAddress,
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
    tx_capacity: usize,
    flushes: u64,
}

impl MemoryPort {
    /// Default bound on queued transmit frames.
    pub const DEFAULT_TX_CAPACITY: usize = 4096;

    /// A port with id `id` and address `mac`.
    pub fn new(id: PortId, mac: EthernetAddress) -> Self {
        MemoryPort {
            id,
            mac,
            rx: VecDeque::new(),
            tx: VecDeque::new(),
            tx_capacity: Self::DEFAULT_TX_CAPACITY,
            flushes: 0,
        }
    }
    /// Limits the transmit queue (`send` returns `TxFull` beyond it).
    pub fn with_tx_capacity(mut self, cap: usize) -> Self {
        self.tx_capacity = cap;
        self
    }
    /// The port id set on received frames.
    pub fn id(&self) -> PortId {
        self.id
    }
    /// Queues a frame for reception.
    pub fn inject(&mut self, frame: &[u8]) {
        self.rx.push_back(frame.to_vec());
    }
    /// Frames waiting to be received.
    pub fn rx_pending(&self) -> usize {
        self.rx.len()
    }
    /// Takes all transmitted frames, oldest first.
    pub fn drain(&mut self) -> Vec<Vec<u8>> {
        self.tx.drain(..).collect()
    }
    /// Takes the oldest transmitted frame.
    pub fn pop_sent(&mut self) -> Option<Vec<u8>> {
        self.tx.pop_front()
    }
    /// Number of times `flush` was called.
    pub fn flushes(&self) -> u64 {
        self.flushes
    }
}

impl Port for MemoryPort {
    fn recv_burst(&mut self, frames: &mut [Frame]) -> usize {
        let mut n = 0;
        while n < frames.len() {
            let Some(data) = self.rx.pop_front() else {
                break;
            };
            // Oversize frames are dropped like a NIC would (no room in the buffer).
            if frames[n].set_data(&data).is_err() {
                continue;
            }
            frames[n].port = self.id;
            n += 1;
        }
        n
    }

    fn send(&mut self, data: &[u8]) -> Result<(), PortError> {
        if data.len() > DATA_CAPACITY {
            return Err(PortError::FrameTooLarge {
                len: data.len(),
                max: DATA_CAPACITY,
            });
        }
        if self.tx.len() >= self.tx_capacity {
            return Err(PortError::TxFull);
        }
        self.tx.push_back(data.to_vec());
        Ok(())
    }

    fn flush(&mut self) {
        self.flushes += 1;
    }

    fn mac(&self) -> EthernetAddress {
        self.mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_port_round_trip() {
        let mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let mut p = MemoryPort::new(3, mac).with_tx_capacity(1);
        assert_eq!(p.mac(), mac);
        p.inject(&[1, 2, 3]);
        p.inject(&[0u8; DATA_CAPACITY + 1]);
        p.inject(&[4]);
        let mut frames = [Frame::new(), Frame::new(), Frame::new()];
        assert_eq!(p.recv_burst(&mut frames), 2);
        assert_eq!(frames[0].data(), &[1, 2, 3]);
        assert_eq!(frames[0].port, 3);
        assert_eq!(frames[1].data(), &[4]);
        assert_eq!(p.recv_burst(&mut frames), 0);
        p.send(&[9]).unwrap();
        assert_eq!(p.send(&[9]), Err(PortError::TxFull));
        p.flush();
        assert_eq!(p.flushes(), 1);
        assert_eq!(p.drain(), alloc::vec![alloc::vec![9u8]]);
        assert!(p.pop_sent().is_none());
    }
}
