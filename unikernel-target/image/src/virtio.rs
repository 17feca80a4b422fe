//! virtio-net over virtio-mmio (virtio 1.2, sections 4.2 and 5.1), modern transport only,
//! with split virtqueues of our own: buffers posted and reclaimed in bursts, one index
//! update per burst, and notifications in either direction suppressed with EVENT_IDX, so
//! that a busy poll loop costs no traps at all. Each port copies frames between its fixed
//! ring buffers and the pipeline's [`Frame`]s.

use alloc::alloc::{Layout, alloc, alloc_zeroed};
use alloc::vec::Vec;
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{Ordering, fence};

use vbng_dataplane::packet::{DATA_CAPACITY, Frame, PortId};
use vbng_dataplane::port::{Port, PortError};
use vbng_dataplane::wire::EthernetAddress;

/// virtio-mmio register offsets.
mod reg {
    pub const MAGIC: u64 = 0x000;
    pub const VERSION: u64 = 0x004;
    pub const DEVICE_ID: u64 = 0x008;
    pub const DEVICE_FEATURES: u64 = 0x010;
    pub const DEVICE_FEATURES_SEL: u64 = 0x014;
    pub const DRIVER_FEATURES: u64 = 0x020;
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    pub const QUEUE_SEL: u64 = 0x030;
    pub const QUEUE_NUM: u64 = 0x038;
    pub const QUEUE_READY: u64 = 0x044;
    pub const QUEUE_NOTIFY: u64 = 0x050;
    pub const INTERRUPT_STATUS: u64 = 0x060;
    pub const INTERRUPT_ACK: u64 = 0x064;
    pub const STATUS: u64 = 0x070;
    pub const QUEUE_DESC: u64 = 0x080;
    pub const QUEUE_DRIVER: u64 = 0x090;
    pub const QUEUE_DEVICE: u64 = 0x0a0;
    pub const CONFIG: u64 = 0x100;
}

const MAGIC_VALUE: u32 = 0x7472_6976;
const DEVICE_NET: u32 = 1;

const STATUS_ACKNOWLEDGE: u32 = 1;
const STATUS_DRIVER: u32 = 2;
const STATUS_DRIVER_OK: u32 = 4;
const STATUS_FEATURES_OK: u32 = 8;

const F_NET_MAC: u64 = 1 << 5;
const F_RING_EVENT_IDX: u64 = 1 << 29;
const F_VERSION_1: u64 = 1 << 32;

const DESC_F_WRITE: u16 = 2;

/// The virtio-net header in front of every frame (VERSION_1: with `num_buffers`).
const NET_HDR_LEN: usize = 12;
/// One ring buffer: the header and the largest frame the pipeline takes.
const BUF_LEN: usize = NET_HDR_LEN + DATA_CAPACITY;
/// Descriptors per queue (QEMU's virtio-net takes up to 256). 128 buffers each way are
/// about 264 KB per direction and port: plenty for one customer, and little to touch.
pub const QUEUE_LEN: u16 = 128;

/// Why a device was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtioError {
    /// No virtio-mmio device at the address (bad magic value or device id 0).
    NoDevice,
    /// A legacy (version 1) transport: QEMU needs `-global virtio-mmio.force-legacy=false`.
    Legacy,
    /// Not a network device.
    NotNet(u32),
    /// The device lacks a feature we need (VERSION_1).
    Features,
    /// The device refused the driver's set-up (features or queue size).
    Refused,
}

/// Counters of one port.
#[derive(Debug, Default, Clone, Copy)]
pub struct PortStats {
    /// Frames received and handed to the pipeline.
    pub rx_frames: u64,
    /// Frames queued for transmit.
    pub tx_frames: u64,
    /// Frames dropped because the transmit ring was full.
    pub tx_full: u64,
    /// Notifications written to the device (each a trap to the hypervisor).
    pub kicks: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

/// Frame buffers the device reads and writes (guest physical = virtual). Not zeroed: the
/// guest only reads what the device wrote and writes before the device reads, and leaving
/// the pages untouched until first use keeps them out of the boot time (every first touch
/// of a page is a trap to the hypervisor).
struct DmaBuffers {
    base: *mut u8,
}

impl DmaBuffers {
    fn new(count: usize) -> DmaBuffers {
        let layout = Layout::from_size_align(count * BUF_LEN, 4096).expect("buffer layout");
        // SAFETY: a non-zero size; the memory is owned for the life of the image (devices
        // are never removed) and only accessed through `slot`/`slot_mut` within it.
        let base = unsafe { alloc(layout) };
        assert!(!base.is_null(), "virtio buffer allocation");
        DmaBuffers { base }
    }

    fn addr(&self, id: u16) -> u64 {
        self.base as u64 + u64::from(id) * BUF_LEN as u64
    }

    /// The first `len` bytes of buffer `id` (written by the device or by `slot_mut`).
    fn slot(&self, id: u16, len: usize) -> &[u8] {
        debug_assert!(id < QUEUE_LEN && len <= BUF_LEN);
        // SAFETY: inside the allocation (id < QUEUE_LEN, len <= BUF_LEN); the bytes were
        // written by the device (DMA) or by us before.
        unsafe {
            core::slice::from_raw_parts(self.base.wrapping_add(usize::from(id) * BUF_LEN), len)
        }
    }

    fn slot_mut(&mut self, id: u16, len: usize) -> &mut [u8] {
        debug_assert!(id < QUEUE_LEN && len <= BUF_LEN);
        // SAFETY: as `slot`; the caller writes every byte it later hands to the device.
        unsafe {
            core::slice::from_raw_parts_mut(self.base.wrapping_add(usize::from(id) * BUF_LEN), len)
        }
    }
}

/// One split virtqueue in identity-mapped memory (guest physical = virtual).
struct Queue {
    index: u16,
    desc: *mut Desc,
    /// flags, idx, ring[QUEUE_LEN], used_event.
    avail: *mut u16,
    /// flags, idx, ring[QUEUE_LEN] of (id: u32, len: u32), avail_event.
    used: *mut u8,
    /// Our copy of avail.idx (the next free ring slot).
    avail_idx: u16,
    /// avail.idx at the last notification.
    notified_idx: u16,
    /// Used entries consumed so far.
    last_used: u16,
}

impl Queue {
    fn new(index: u16) -> Queue {
        // One zeroed block: the descriptor table, then the avail ring, then (4-aligned)
        // the used ring. 4 KiB for 128 descriptors: one page to touch.
        let n = usize::from(QUEUE_LEN);
        let avail_at = 16 * n;
        let used_at = (avail_at + 6 + 2 * n).next_multiple_of(4);
        let size = used_at + 6 + 8 * n;
        let layout = Layout::from_size_align(size, 4096).expect("queue layout");
        // SAFETY: a non-zero size; the memory is owned by the queue for the life of the
        // image (devices are never removed).
        let block = unsafe { alloc_zeroed(layout) };
        assert!(!block.is_null(), "virtqueue allocation");
        Queue {
            index,
            desc: block.cast(),
            avail: block.wrapping_add(avail_at).cast(),
            used: block.wrapping_add(used_at),
            avail_idx: 0,
            notified_idx: 0,
            last_used: 0,
        }
    }

    fn set_desc(&mut self, i: u16, addr: u64, len: u32, flags: u16) {
        // SAFETY: i < QUEUE_LEN, inside the descriptor table.
        unsafe {
            write_volatile(
                self.desc.wrapping_add(usize::from(i)),
                Desc {
                    addr,
                    len,
                    flags,
                    next: 0,
                },
            )
        }
    }

    /// Puts descriptor `id` in the next available slot (published by `publish`).
    fn push_avail(&mut self, id: u16) {
        let slot = usize::from(self.avail_idx % QUEUE_LEN);
        // SAFETY: slot < QUEUE_LEN: ring entry 2 + slot of the avail ring.
        unsafe { write_volatile(self.avail.wrapping_add(2 + slot), id) };
        self.avail_idx = self.avail_idx.wrapping_add(1);
    }

    /// Makes the pushed slots visible to the device; true if it asked to be notified of
    /// them (EVENT_IDX: its avail_event lies among them).
    fn publish(&mut self) -> bool {
        fence(Ordering::Release);
        // SAFETY: avail.idx is the ring's second u16.
        unsafe { write_volatile(self.avail.wrapping_add(1), self.avail_idx) };
        // The device reads avail.idx and then writes avail_event: order our store before
        // our load of it.
        fence(Ordering::SeqCst);
        // SAFETY: avail_event follows the used ring's entries.
        let event = unsafe {
            read_volatile(
                self.used
                    .wrapping_add(4 + 8 * usize::from(QUEUE_LEN))
                    .cast::<u16>(),
            )
        };
        let (new, old) = (self.avail_idx, self.notified_idx);
        new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
    }

    /// The next used entry (descriptor id, bytes written), if any.
    fn pop_used(&mut self) -> Option<(u16, u32)> {
        // SAFETY: used.idx is the used ring's second u16.
        let idx = unsafe { read_volatile(self.used.wrapping_add(2).cast::<u16>()) };
        if idx == self.last_used {
            return None;
        }
        fence(Ordering::Acquire);
        let slot = usize::from(self.last_used % QUEUE_LEN);
        let entry = self.used.wrapping_add(4 + 8 * slot);
        // SAFETY: slot < QUEUE_LEN: entry `slot` of the used ring (id, then length).
        let id = unsafe { read_volatile(entry.cast::<u32>()) };
        // SAFETY: as above.
        let len = unsafe { read_volatile(entry.wrapping_add(4).cast::<u32>()) };
        self.last_used = self.last_used.wrapping_add(1);
        Some((id as u16, len))
    }

    /// Asks the device for an interrupt at the next used entry (`arm`), or never.
    fn set_used_event(&mut self, arm: bool) {
        let event = if arm {
            self.last_used
        } else {
            self.last_used.wrapping_sub(1)
        };
        // SAFETY: used_event follows the avail ring's entries.
        unsafe { write_volatile(self.avail.wrapping_add(2 + usize::from(QUEUE_LEN)), event) };
        fence(Ordering::SeqCst);
    }

    /// True if used entries are waiting.
    fn has_used(&self) -> bool {
        // SAFETY: used.idx is the used ring's second u16.
        unsafe { read_volatile(self.used.wrapping_add(2).cast::<u16>()) != self.last_used }
    }
}

/// A virtio-net device on virtio-mmio, as one pipeline port.
pub struct VirtioNet {
    base: u64,
    id: PortId,
    mac: EthernetAddress,
    rx: Queue,
    tx: Queue,
    rx_bufs: DmaBuffers,
    tx_bufs: DmaBuffers,
    /// Transmit descriptors not in flight.
    tx_free: Vec<u16>,
    /// Receive buffers consumed since the last publish.
    rx_to_post: u16,
    /// Transmit slots pushed since the last publish.
    tx_to_publish: u16,
    /// Counters.
    pub stats: PortStats,
}

impl core::fmt::Debug for VirtioNet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "VirtioNet({:#x}, port {})", self.base, self.id)
    }
}

fn read32(base: u64, off: u64) -> u32 {
    // SAFETY: `base` is a virtio-mmio slot in the mapped device window; registers are
    // 32-bit aligned.
    unsafe { read_volatile((base + off) as *const u32) }
}

fn write32(base: u64, off: u64, value: u32) {
    // SAFETY: as `read32`.
    unsafe { write_volatile((base + off) as *mut u32, value) }
}

/// The device id at a virtio-mmio slot (0: empty slot), None without a device (for the
/// slot scan when QEMU did not list its devices on the command line).
pub fn probe(base: u64) -> Option<u32> {
    (read32(base, reg::MAGIC) == MAGIC_VALUE).then(|| read32(base, reg::DEVICE_ID))
}

impl VirtioNet {
    /// Initialises the virtio-net device at `base` as pipeline port `id` (virtio 1.2
    /// section 3.1.1) and posts every receive buffer. `want_mac` reads the MAC address
    /// from the device's configuration.
    ///
    /// Every register access is a trap to the VMM (tens of microseconds under a nested
    /// hypervisor), so the sequence has none it can do without: the device is fresh from
    /// QEMU (status 0, both feature selectors 0, no queue set up), so there is no reset,
    /// no selector write before the first word, no high address halves (the image lies
    /// below 4 GiB) and no queue size read (QEMU's virtio-net queues hold 256, and a
    /// smaller device refuses the size at FEATURES_OK... at DRIVER_OK, reported as
    /// `Refused`).
    pub fn new(base: u64, id: PortId, want_mac: bool) -> Result<VirtioNet, VirtioError> {
        match read32(base, reg::VERSION) {
            2 => {}
            1 => return Err(VirtioError::Legacy),
            _ => return Err(VirtioError::NoDevice),
        }
        match read32(base, reg::DEVICE_ID) {
            DEVICE_NET => {}
            0 => return Err(VirtioError::NoDevice),
            other => return Err(VirtioError::NotNet(other)),
        }
        write32(base, reg::STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        let low = u64::from(read32(base, reg::DEVICE_FEATURES));
        write32(base, reg::DEVICE_FEATURES_SEL, 1);
        let offered = low | u64::from(read32(base, reg::DEVICE_FEATURES)) << 32;
        if offered & F_VERSION_1 == 0 || offered & F_RING_EVENT_IDX == 0 {
            return Err(VirtioError::Features);
        }
        let wanted = offered & (F_VERSION_1 | F_RING_EVENT_IDX | F_NET_MAC);
        write32(base, reg::DRIVER_FEATURES, wanted as u32);
        write32(base, reg::DRIVER_FEATURES_SEL, 1);
        write32(base, reg::DRIVER_FEATURES, (wanted >> 32) as u32);
        write32(
            base,
            reg::STATUS,
            STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK,
        );

        let mut mac = [0u8; 6];
        if want_mac && wanted & F_NET_MAC != 0 {
            let a = read32(base, reg::CONFIG).to_le_bytes();
            let b = read32(base, reg::CONFIG + 4).to_le_bytes();
            mac = [a[0], a[1], a[2], a[3], b[0], b[1]];
        }

        let mut rx = Queue::new(0);
        let mut tx = Queue::new(1);
        for q in [&rx, &tx] {
            if q.index != 0 {
                write32(base, reg::QUEUE_SEL, u32::from(q.index));
            }
            write32(base, reg::QUEUE_NUM, u32::from(QUEUE_LEN));
            write32(base, reg::QUEUE_DESC, q.desc as u32);
            write32(base, reg::QUEUE_DRIVER, q.avail as u32);
            write32(base, reg::QUEUE_DEVICE, q.used as u32);
            write32(base, reg::QUEUE_READY, 1);
        }
        let n = usize::from(QUEUE_LEN);
        let rx_bufs = DmaBuffers::new(n);
        let tx_bufs = DmaBuffers::new(n);
        for i in 0..QUEUE_LEN {
            rx.set_desc(i, rx_bufs.addr(i), BUF_LEN as u32, DESC_F_WRITE);
            rx.push_avail(i);
            tx.set_desc(i, tx_bufs.addr(i), 0, 0);
        }
        // Interrupts stay off until the loop goes idle (`arm_interrupts`).
        rx.set_used_event(false);
        tx.set_used_event(false);
        rx.publish();
        write32(
            base,
            reg::STATUS,
            STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK,
        );
        // A device that refused the features or a queue (too small) sets NEEDS_RESET or
        // clears FEATURES_OK.
        if read32(base, reg::STATUS) & STATUS_FEATURES_OK == 0 {
            return Err(VirtioError::Refused);
        }
        // The receive buffers were posted before DRIVER_OK: tell the device once.
        write32(base, reg::QUEUE_NOTIFY, 0);
        rx.notified_idx = rx.avail_idx;
        Ok(VirtioNet {
            base,
            id,
            mac: EthernetAddress(mac),
            rx,
            tx,
            rx_bufs,
            tx_bufs,
            tx_free: (0..QUEUE_LEN).rev().collect(),
            rx_to_post: 0,
            tx_to_publish: 0,
            stats: PortStats {
                kicks: 1,
                ..PortStats::default()
            },
        })
    }

    /// The same device as pipeline port `id`.
    pub fn with_port_id(mut self, id: PortId) -> VirtioNet {
        self.id = id;
        self
    }

    /// The device's MMIO base address.
    pub fn base(&self) -> u64 {
        self.base
    }

    fn notify(&mut self, queue: u16) {
        write32(self.base, reg::QUEUE_NOTIFY, u32::from(queue));
        self.stats.kicks += 1;
    }

    /// Returns transmitted buffers to the free list.
    fn reclaim_tx(&mut self) {
        while let Some((id, _)) = self.tx.pop_used() {
            self.tx_free.push(id);
        }
    }

    /// Reposts the receive buffers consumed since the last call; notifies the device only
    /// if it is waiting for them.
    fn post_rx(&mut self) {
        if self.rx_to_post == 0 {
            return;
        }
        self.rx_to_post = 0;
        if self.rx.publish() {
            self.notify(0);
        }
        self.rx.notified_idx = self.rx.avail_idx;
    }

    /// Asks for an interrupt when a frame arrives (before halting), or stops asking.
    /// Returns true if frames are already waiting.
    pub fn arm_interrupts(&mut self, arm: bool) -> bool {
        self.rx.set_used_event(arm);
        self.rx.has_used()
    }

    /// True if received frames are waiting.
    pub fn has_rx(&self) -> bool {
        self.rx.has_used()
    }

    /// Acknowledges the device's interrupt (after waking).
    pub fn ack_interrupt(&mut self) {
        let status = read32(self.base, reg::INTERRUPT_STATUS);
        if status != 0 {
            write32(self.base, reg::INTERRUPT_ACK, status);
        }
    }
}

impl Port for VirtioNet {
    fn recv_burst(&mut self, frames: &mut [Frame]) -> usize {
        let mut n = 0;
        while n < frames.len() {
            let Some((id, len)) = self.rx.pop_used() else {
                break;
            };
            let len = (len as usize).clamp(NET_HDR_LEN, BUF_LEN);
            let data = &self.rx_bufs.slot(id, len)[NET_HDR_LEN..];
            let ok = frames[n].set_data(data).is_ok();
            self.rx.push_avail(id);
            self.rx_to_post += 1;
            if ok {
                frames[n].port = self.id;
                n += 1;
            }
        }
        self.stats.rx_frames += n as u64;
        self.post_rx();
        n
    }

    fn send(&mut self, data: &[u8]) -> Result<(), PortError> {
        if data.len() > DATA_CAPACITY {
            return Err(PortError::FrameTooLarge {
                len: data.len(),
                max: DATA_CAPACITY,
            });
        }
        if self.tx_free.is_empty() {
            self.reclaim_tx();
        }
        let Some(id) = self.tx_free.pop() else {
            self.stats.tx_full += 1;
            return Err(PortError::TxFull);
        };
        let buf = self.tx_bufs.slot_mut(id, NET_HDR_LEN + data.len());
        buf[..NET_HDR_LEN].fill(0);
        buf[NET_HDR_LEN..].copy_from_slice(data);
        let addr = self.tx_bufs.addr(id);
        self.tx
            .set_desc(id, addr, (NET_HDR_LEN + data.len()) as u32, 0);
        self.tx.push_avail(id);
        self.tx_to_publish += 1;
        self.stats.tx_frames += 1;
        Ok(())
    }

    fn flush(&mut self) {
        if self.tx_to_publish != 0 {
            self.tx_to_publish = 0;
            if self.tx.publish() {
                self.notify(1);
            }
            self.tx.notified_idx = self.tx.avail_idx;
        }
        self.reclaim_tx();
    }

    fn mac(&self) -> EthernetAddress {
        self.mac
    }
}
