//! virtio-net over virtio-mmio (virtio 1.2, sections 4.2 and 5.1), on the modern
//! transport or the legacy one (section 4.2.4), with split virtqueues of our own: buffers
//! posted and reclaimed in bursts, one index update per burst, and notifications in either
//! direction suppressed with EVENT_IDX, so that a busy poll loop costs no traps at all.
//! Each port copies frames between its fixed ring buffers and the pipeline's [`Frame`]s.
//!
//! Every register access is a trap to the VMM: tens of microseconds under a nested
//! hypervisor, where they made up most of the boot. The launcher's devices are brought up
//! with six register writes each and no read ([`Bringup::QemuLegacy`]); any other
//! virtio-mmio device is probed first ([`Bringup::Probe`]).

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
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    pub const QUEUE_NUM: u64 = 0x038;
    /// Legacy only: the queue's address in units of GuestPageSize (0x028, never written:
    /// after reset the unit is one byte); the three parts are laid out from it.
    pub const QUEUE_PFN: u64 = 0x040;
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

/// The virtio-net header in front of every frame: with `num_buffers` on the modern
/// transport (VERSION_1), without it on the legacy one (no MRG_RXBUF).
const NET_HDR_LEN_MODERN: usize = 12;
const NET_HDR_LEN_LEGACY: usize = 10;
/// One ring buffer: the longer header and the largest frame the pipeline takes.
const BUF_LEN: usize = NET_HDR_LEN_MODERN + DATA_CAPACITY;
/// Buffers per queue. 128 buffers each way are about 264 KB per direction and port: plenty
/// for one customer, and little to touch.
pub const QUEUE_LEN: u16 = 128;
/// Ring entries of a legacy queue: QEMU's virtio-net queue size, which a legacy queue has
/// unless the driver writes QUEUE_NUM (a trap saved). Only `QUEUE_LEN` of them hold
/// buffers.
const LEGACY_RING_LEN: u16 = 256;
/// A legacy queue's used ring starts on this boundary (QEMU's default QUEUE_ALIGN).
const LEGACY_ALIGN: usize = 4096;

/// How a device is brought up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bringup {
    /// Any virtio-mmio device: read its version, id and features first.
    Probe,
    /// The launcher's promise (`virtio=qemu-legacy` on the command line): a QEMU
    /// virtio-net device on the legacy transport, fresh from reset, offering EVENT_IDX,
    /// with 256-entry queues. Nothing is read: features, two queue addresses and the
    /// selector between them, the status and the receive queue's notification.
    QemuLegacy,
}

/// Why a device was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtioError {
    /// No virtio-mmio device at the address (bad magic value or device id 0).
    NoDevice,
    /// Not a network device.
    NotNet(u32),
    /// The device lacks a feature we need (EVENT_IDX; VERSION_1 on the modern transport)
    /// or a legacy queue shorter than 256 entries.
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
    /// Ring entries (at least QUEUE_LEN).
    len: u16,
    desc: *mut Desc,
    /// flags, idx, ring[len], used_event.
    avail: *mut u16,
    /// flags, idx, ring[len] of (id: u32, len: u32), avail_event.
    used: *mut u8,
    /// Our copy of avail.idx (the next free ring slot).
    avail_idx: u16,
    /// avail.idx at the last notification.
    notified_idx: u16,
    /// Used entries consumed so far.
    last_used: u16,
}

impl Queue {
    /// A queue of `len` entries, its used ring aligned to `used_align` (4 on the modern
    /// transport, where each part has its own address; the legacy layout puts it on the
    /// next page).
    fn new(index: u16, len: u16, used_align: usize) -> Queue {
        // One zeroed block: the descriptor table, then the avail ring, then the used ring.
        // Modern: 4 KiB for 128 descriptors, one page to touch; legacy: three pages.
        let n = usize::from(len);
        let avail_at = 16 * n;
        let used_at = (avail_at + 6 + 2 * n).next_multiple_of(used_align);
        let size = used_at + 6 + 8 * n;
        let layout = Layout::from_size_align(size, 4096).expect("queue layout");
        // SAFETY: a non-zero size; the memory is owned by the queue for the life of the
        // image (devices are never removed).
        let block = unsafe { alloc_zeroed(layout) };
        assert!(!block.is_null(), "virtqueue allocation");
        Queue {
            index,
            len,
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
        let slot = usize::from(self.avail_idx % self.len);
        // SAFETY: slot < len: ring entry 2 + slot of the avail ring.
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
                    .wrapping_add(4 + 8 * usize::from(self.len))
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
        let slot = usize::from(self.last_used % self.len);
        let entry = self.used.wrapping_add(4 + 8 * slot);
        // SAFETY: slot < len: entry `slot` of the used ring (id, then length).
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
        unsafe { write_volatile(self.avail.wrapping_add(2 + usize::from(self.len)), event) };
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
    /// The virtio-net header's length on this transport.
    hdr_len: usize,
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
    /// Initialises the virtio-net device at `base` as pipeline port `id` and posts every
    /// receive buffer. The port's MAC address is `mac` if given, else read from the
    /// device's configuration when `want_mac` (the access side answers as the gateway MAC
    /// and needs none).
    pub fn new(
        base: u64,
        id: PortId,
        bringup: Bringup,
        mac: Option<EthernetAddress>,
        want_mac: bool,
    ) -> Result<VirtioNet, VirtioError> {
        let legacy = match bringup {
            Bringup::QemuLegacy => true,
            Bringup::Probe => {
                let version = read32(base, reg::VERSION);
                match read32(base, reg::DEVICE_ID) {
                    DEVICE_NET => {}
                    0 => return Err(VirtioError::NoDevice),
                    other => return Err(VirtioError::NotNet(other)),
                }
                match version {
                    1 => true,
                    2 => false,
                    _ => return Err(VirtioError::NoDevice),
                }
            }
        };
        let read_mac = mac.is_none() && want_mac;
        let (mut dev, has_mac) = if legacy {
            Self::start_legacy(base, id, bringup, read_mac)?
        } else {
            Self::start_modern(base, id, read_mac)?
        };
        // The configuration holds a MAC only when that feature was negotiated; without it
        // the port's MAC stays zero.
        if has_mac {
            let a = read32(base, reg::CONFIG).to_le_bytes();
            let b = read32(base, reg::CONFIG + 4).to_le_bytes();
            dev.mac = EthernetAddress([a[0], a[1], a[2], a[3], b[0], b[1]]);
        } else if let Some(m) = mac {
            dev.mac = m;
        }
        let mut status = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK;
        if !legacy {
            status |= STATUS_FEATURES_OK;
        }
        write32(base, reg::STATUS, status);
        // A modern device that refused the features or a queue sets NEEDS_RESET or clears
        // FEATURES_OK.
        if bringup == Bringup::Probe
            && !legacy
            && read32(base, reg::STATUS) & STATUS_FEATURES_OK == 0
        {
            return Err(VirtioError::Refused);
        }
        // The receive buffers were posted before DRIVER_OK: tell the device once. QEMU
        // holds frames that came early until this notification (at DRIVER_OK it tries to
        // deliver them before it records the new status).
        dev.notify(0);
        dev.rx.notified_idx = dev.rx.avail_idx;
        Ok(dev)
    }

    /// The legacy transport: features (32 bits), then each queue at one address with the
    /// used ring on the next page boundary. After reset the page size is 0 (byte
    /// addresses) and QUEUE_SEL is 0; QEMU's queues hold 256 entries. Returns the port and
    /// whether the MAC feature was negotiated.
    fn start_legacy(
        base: u64,
        id: PortId,
        bringup: Bringup,
        read_mac: bool,
    ) -> Result<(VirtioNet, bool), VirtioError> {
        // QEMU's virtio-net always offers the MAC (the promise names QEMU).
        let offered = match bringup {
            Bringup::QemuLegacy => F_RING_EVENT_IDX | F_NET_MAC,
            Bringup::Probe => {
                write32(base, reg::STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
                u64::from(read32(base, reg::DEVICE_FEATURES))
            }
        };
        if offered & F_RING_EVENT_IDX == 0 {
            return Err(VirtioError::Features);
        }
        let mut wanted = F_RING_EVENT_IDX;
        if read_mac {
            wanted |= offered & F_NET_MAC;
        }
        write32(base, reg::DRIVER_FEATURES, wanted as u32);
        let rx = Queue::new(0, LEGACY_RING_LEN, LEGACY_ALIGN);
        let tx = Queue::new(1, LEGACY_RING_LEN, LEGACY_ALIGN);
        for q in [&rx, &tx] {
            if q.index != 0 {
                write32(base, reg::QUEUE_SEL, u32::from(q.index));
            }
            if bringup == Bringup::Probe {
                if read32(base, reg::QUEUE_NUM_MAX) < u32::from(LEGACY_RING_LEN) {
                    return Err(VirtioError::Features);
                }
                write32(base, reg::QUEUE_NUM, u32::from(LEGACY_RING_LEN));
            }
            // The image lies below 4 GiB: the byte address fits.
            write32(base, reg::QUEUE_PFN, q.desc as u32);
        }
        let dev = Self::with_queues(base, id, rx, tx, NET_HDR_LEN_LEGACY);
        Ok((dev, wanted & F_NET_MAC != 0))
    }

    /// The modern transport (virtio 1.2 section 3.1.1): both feature words, then each
    /// queue's size, three addresses (low halves: the image lies below 4 GiB) and ready
    /// flag. The selectors are 0 after reset. Returns the port and whether the MAC feature
    /// was negotiated.
    fn start_modern(
        base: u64,
        id: PortId,
        read_mac: bool,
    ) -> Result<(VirtioNet, bool), VirtioError> {
        write32(base, reg::STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        let low = u64::from(read32(base, reg::DEVICE_FEATURES));
        write32(base, reg::DEVICE_FEATURES_SEL, 1);
        let offered = low | u64::from(read32(base, reg::DEVICE_FEATURES)) << 32;
        if offered & F_VERSION_1 == 0 || offered & F_RING_EVENT_IDX == 0 {
            return Err(VirtioError::Features);
        }
        let mut wanted = F_VERSION_1 | F_RING_EVENT_IDX;
        if read_mac {
            wanted |= offered & F_NET_MAC;
        }
        write32(base, reg::DRIVER_FEATURES, wanted as u32);
        write32(base, reg::DRIVER_FEATURES_SEL, 1);
        write32(base, reg::DRIVER_FEATURES, (wanted >> 32) as u32);
        write32(
            base,
            reg::STATUS,
            STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK,
        );
        let rx = Queue::new(0, QUEUE_LEN, 4);
        let tx = Queue::new(1, QUEUE_LEN, 4);
        for q in [&rx, &tx] {
            if q.index != 0 {
                write32(base, reg::QUEUE_SEL, u32::from(q.index));
            }
            write32(base, reg::QUEUE_NUM, u32::from(q.len));
            write32(base, reg::QUEUE_DESC, q.desc as u32);
            write32(base, reg::QUEUE_DRIVER, q.avail as u32);
            write32(base, reg::QUEUE_DEVICE, q.used as u32);
            write32(base, reg::QUEUE_READY, 1);
        }
        let dev = Self::with_queues(base, id, rx, tx, NET_HDR_LEN_MODERN);
        Ok((dev, wanted & F_NET_MAC != 0))
    }

    /// The port around two set-up queues: buffers allocated, every receive buffer posted.
    fn with_queues(
        base: u64,
        id: PortId,
        mut rx: Queue,
        mut tx: Queue,
        hdr_len: usize,
    ) -> VirtioNet {
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
        VirtioNet {
            base,
            id,
            mac: EthernetAddress([0; 6]),
            rx,
            tx,
            rx_bufs,
            tx_bufs,
            hdr_len,
            tx_free: (0..QUEUE_LEN).rev().collect(),
            rx_to_post: 0,
            tx_to_publish: 0,
            stats: PortStats::default(),
        }
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
            let hdr = self.hdr_len;
            let len = (len as usize).clamp(hdr, BUF_LEN);
            let data = &self.rx_bufs.slot(id, len)[hdr..];
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
        let hdr = self.hdr_len;
        let buf = self.tx_bufs.slot_mut(id, hdr + data.len());
        buf[..hdr].fill(0);
        buf[hdr..].copy_from_slice(data);
        let addr = self.tx_bufs.addr(id);
        self.tx.set_desc(id, addr, (hdr + data.len()) as u32, 0);
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
