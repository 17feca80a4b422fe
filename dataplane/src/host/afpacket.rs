//! AF_PACKET port with PACKET_MMAP rings (TPACKET_V2).
//!
//! One socket per interface, bound by ifindex, with an RX ring and a TX ring mapped into the
//! process ([kernel `packet_mmap.rst`]):
//!
//! - **RX**: the kernel fills ring slots and flips their `tp_status` to `TP_STATUS_USER`; we
//!   walk the ring from our head, copy each frame into a [`Frame`] and hand the slot back with
//!   `TP_STATUS_KERNEL`. A burst costs no syscall.
//! - **TX**: [`Port::send`] copies a frame into the next free slot and marks it
//!   `TP_STATUS_SEND_REQUEST`; [`Port::flush`] kicks the kernel once with `sendto(NULL, 0)`,
//!   which transmits every pending slot.
//! - `PACKET_QDISC_BYPASS` hands frames straight to the driver; `PACKET_IGNORE_OUTGOING`
//!   keeps our own transmissions out of the RX ring (on kernels without it, frames whose
//!   `sll_pkttype` is `PACKET_OUTGOING` are skipped instead).
//! - The kernel strips the outer VLAN tag on receive and reports it in `tp_vlan_tci` /
//!   `tp_vlan_tpid` (`TP_STATUS_VLAN_VALID`, `TP_STATUS_VLAN_TPID_VALID`); we put the tag back
//!   into the frame so the pipeline sees the 802.1Q / 802.1ad header as it was on the wire.
//!
//! Ring slots are [`SLOT_SIZE`] bytes, so frames up to about 1,980 bytes are received whole;
//! longer frames arrive truncated and are dropped and counted in [`AfPacketStats`].
//!
//! [kernel `packet_mmap.rst`]: https://docs.kernel.org/networking/packet_mmap.html

use std::ffi::CString;
use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::packet::{Frame, PortId};
use crate::port::{Port, PortError};
use crate::wire::EthernetAddress;

/// Size of one ring slot in bytes (TPACKET_V2 header, `sockaddr_ll`, then the frame).
pub const SLOT_SIZE: usize = 2048;

/// Ring block size in bytes: a multiple of the page size and of [`SLOT_SIZE`].
const BLOCK_SIZE: usize = 1 << 16;

/// Slots per ring block.
const SLOTS_PER_BLOCK: usize = BLOCK_SIZE / SLOT_SIZE;

/// `TPACKET_ALIGN(sizeof(struct tpacket2_hdr))`: where `sockaddr_ll` starts in an RX slot and
/// where frame data starts in a TX slot (TPACKET_V2 without `PACKET_TX_HAS_OFF`).
const HDR_ALIGNED: usize = align16(size_of::<libc::tpacket2_hdr>());

/// Largest frame that fits in a TX slot.
pub const MAX_TX_FRAME: usize = SLOT_SIZE - HDR_ALIGNED;

/// Bytes of an 802.1Q / 802.1ad tag (TPID + TCI).
const VLAN_TAG_LEN: usize = 4;

const fn align16(x: usize) -> usize {
    (x + 15) & !15
}

/// Ring sizes for one AF_PACKET port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingConfig {
    /// RX ring slots (rounded up to a multiple of 32). Default 4096 (8 MiB).
    pub rx_slots: u32,
    /// TX ring slots (rounded up to a multiple of 32). Default 1024 (2 MiB).
    pub tx_slots: u32,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            rx_slots: 4096,
            tx_slots: 1024,
        }
    }
}

/// Rounds a slot count up to whole ring blocks; returns (blocks, slots). Pure, tested.
pub fn ring_geometry(slots: u32) -> (u32, u32) {
    let per_block = SLOTS_PER_BLOCK as u32;
    let blocks = slots.max(1).div_ceil(per_block);
    (blocks, blocks * per_block)
}

/// Errors opening an AF_PACKET port.
#[derive(Debug, thiserror::Error)]
pub enum AfPacketError {
    /// The interface name is empty, too long (>= 16 bytes) or contains a NUL byte.
    #[error("invalid interface name {name:?}: expected 1-15 bytes without NUL")]
    BadName {
        /// The name given.
        name: String,
    },
    /// No interface with this name exists in the current network namespace.
    #[error("no interface named {name:?} in this network namespace (see `ip link`)")]
    NoSuchInterface {
        /// The name given.
        name: String,
    },
    /// The interface exists but is administratively down.
    #[error("interface {name:?} is down: run `ip link set {name} up`")]
    InterfaceDown {
        /// The interface.
        name: String,
    },
    /// A system call failed.
    #[error("{what} on interface {name:?} failed: {source}")]
    Syscall {
        /// What was being done (`socket(AF_PACKET)`, `setsockopt(PACKET_RX_RING)`, ...).
        what: &'static str,
        /// The interface.
        name: String,
        /// The OS error (EPERM: run as root or with CAP_NET_RAW).
        source: io::Error,
    },
}

/// Counters kept by the port itself (the pipeline counts everything else).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AfPacketStats {
    /// Frames longer than a ring slot (received truncated) that were dropped.
    pub rx_truncated: u64,
    /// Frames whose ring slot header was inconsistent and were dropped.
    pub rx_bad_slot: u64,
    /// Our own transmissions seen on RX (kernels without `PACKET_IGNORE_OUTGOING`), skipped.
    pub rx_outgoing_skipped: u64,
    /// `send` calls refused because every TX slot was still owned by the kernel.
    pub tx_ring_full: u64,
    /// `send` calls refused because the frame was larger than [`MAX_TX_FRAME`].
    pub tx_too_large: u64,
    /// Slots the kernel rejected (`TP_STATUS_WRONG_FORMAT`).
    pub tx_wrong_format: u64,
    /// `sendto` kicks that failed (the frames stay queued for the next kick).
    pub tx_kick_errors: u64,
    /// Frames the kernel dropped because the RX ring was full (`PACKET_STATISTICS`),
    /// as of the last [`AfPacketPort::refresh_kernel_stats`].
    pub rx_kernel_drops: u64,
}

/// An owned `mmap` region, unmapped on drop.
#[derive(Debug)]
struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` describe a mapping created by `mmap` in `AfPacketPort::open`
        // that nothing else unmaps; no reference into it outlives `self`.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

/// One ring (RX or TX) inside the mapping.
#[derive(Debug, Clone, Copy)]
struct Ring {
    /// Byte offset of slot 0 from the mapping base.
    offset: usize,
    /// Number of slots.
    slots: u32,
    /// Next slot we look at.
    head: u32,
}

/// A network interface opened with an AF_PACKET socket and PACKET_MMAP rings.
#[derive(Debug)]
pub struct AfPacketPort {
    // Field order matters: the mapping is unmapped before the socket is closed.
    map: Mapping,
    fd: OwnedFd,
    name: String,
    ifindex: i32,
    id: PortId,
    mac: EthernetAddress,
    rx: Ring,
    tx: Ring,
    /// Slots marked SEND_REQUEST since the last successful kick.
    tx_unkicked: u32,
    ignore_outgoing: bool,
    qdisc_bypass: bool,
    stats: AfPacketStats,
}

// SAFETY: the mapping is owned exclusively by the port (no aliases are handed out beyond a
// `&mut self` borrow), and the socket is an ordinary fd; moving the port to another thread is
// sound. The port is not `Sync`: all ring access needs `&mut self`.
unsafe impl Send for AfPacketPort {}

fn syscall_err(what: &'static str, name: &str) -> AfPacketError {
    AfPacketError::Syscall {
        what,
        name: name.to_string(),
        source: io::Error::last_os_error(),
    }
}

/// Sets an integer-valued `SOL_PACKET` option.
fn set_packet_opt_int(fd: RawFd, opt: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` is a live c_int and the length passed matches its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            opt,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Builds an `ifreq` carrying `name`.
fn ifreq_for(name: &CString) -> libc::ifreq {
    // SAFETY: `ifreq` is a plain C struct (integers, arrays, a union of those and a pointer)
    // for which all-zero bytes are a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, &src) in ifr.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = src as libc::c_char;
    }
    ifr
}

impl AfPacketPort {
    /// Opens `ifname` as port `id` with the given ring sizes.
    ///
    /// Needs CAP_NET_RAW. The interface must exist and be up; it is put in promiscuous mode
    /// for as long as the port is open (membership, released by the kernel on close).
    pub fn open(ifname: &str, id: PortId, rings: RingConfig) -> Result<Self, AfPacketError> {
        let bad_name = || AfPacketError::BadName {
            name: ifname.to_string(),
        };
        if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ {
            return Err(bad_name());
        }
        let cname = CString::new(ifname).map_err(|_| bad_name())?;

        // SAFETY: `cname` is a valid NUL-terminated string for the duration of the call.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(AfPacketError::NoSuchInterface {
                name: ifname.to_string(),
            });
        }
        let ifindex = ifindex as i32;

        // Protocol 0: the socket receives nothing until `bind` names ETH_P_ALL, so no frame
        // from another interface slips into the ring while it is being set up.
        // SAFETY: plain socket(2) call with constant arguments.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(syscall_err("socket(AF_PACKET, SOCK_RAW)", ifname));
        }
        // SAFETY: `raw` is a freshly created fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sock = fd.as_raw_fd();

        // Interface flags: refuse a down interface with a helpful message.
        let mut ifr = ifreq_for(&cname);
        // SAFETY: SIOCGIFFLAGS reads `ifr_name` and writes `ifru_flags` inside `ifr`, which
        // lives on our stack for the whole call.
        if unsafe { libc::ioctl(sock, libc::SIOCGIFFLAGS, &raw mut ifr) } < 0 {
            return Err(syscall_err("ioctl(SIOCGIFFLAGS)", ifname));
        }
        // SAFETY: SIOCGIFFLAGS succeeded, so the kernel filled the `ifru_flags` member.
        let flags = unsafe { ifr.ifr_ifru.ifru_flags };
        if flags & libc::IFF_UP as libc::c_short == 0 {
            return Err(AfPacketError::InterfaceDown {
                name: ifname.to_string(),
            });
        }

        // Interface MAC address.
        let mut ifr = ifreq_for(&cname);
        // SAFETY: SIOCGIFHWADDR reads `ifr_name` and writes `ifru_hwaddr` inside `ifr`.
        if unsafe { libc::ioctl(sock, libc::SIOCGIFHWADDR, &raw mut ifr) } < 0 {
            return Err(syscall_err("ioctl(SIOCGIFHWADDR)", ifname));
        }
        // SAFETY: SIOCGIFHWADDR succeeded, so the kernel filled the `ifru_hwaddr` member.
        let hw = unsafe { ifr.ifr_ifru.ifru_hwaddr };
        let mut mac = [0u8; 6];
        for (dst, &src) in mac.iter_mut().zip(hw.sa_data.iter()) {
            *dst = src as u8;
        }

        set_packet_opt_int(
            sock,
            libc::PACKET_VERSION,
            libc::tpacket_versions::TPACKET_V2 as _,
        )
        .map_err(|source| AfPacketError::Syscall {
            what: "setsockopt(PACKET_VERSION, TPACKET_V2)",
            name: ifname.to_string(),
            source,
        })?;
        // Both options are optimisations with a fallback; old kernels lack them.
        let qdisc_bypass = set_packet_opt_int(sock, libc::PACKET_QDISC_BYPASS, 1).is_ok();
        let ignore_outgoing = set_packet_opt_int(sock, libc::PACKET_IGNORE_OUTGOING, 1).is_ok();

        let (rx_blocks, rx_slots) = ring_geometry(rings.rx_slots);
        let (tx_blocks, tx_slots) = ring_geometry(rings.tx_slots);
        for (opt, what, blocks, slots) in [
            (
                libc::PACKET_RX_RING,
                "setsockopt(PACKET_RX_RING)",
                rx_blocks,
                rx_slots,
            ),
            (
                libc::PACKET_TX_RING,
                "setsockopt(PACKET_TX_RING)",
                tx_blocks,
                tx_slots,
            ),
        ] {
            let req = libc::tpacket_req {
                tp_block_size: BLOCK_SIZE as libc::c_uint,
                tp_block_nr: blocks,
                tp_frame_size: SLOT_SIZE as libc::c_uint,
                tp_frame_nr: slots,
            };
            // SAFETY: `req` is a live tpacket_req and the length passed matches its size.
            let rc = unsafe {
                libc::setsockopt(
                    sock,
                    libc::SOL_PACKET,
                    opt,
                    (&raw const req).cast(),
                    size_of::<libc::tpacket_req>() as libc::socklen_t,
                )
            };
            if rc < 0 {
                return Err(syscall_err(what, ifname));
            }
        }

        // The kernel lays out the RX ring first, then the TX ring, in one mapping.
        let rx_len = rx_blocks as usize * BLOCK_SIZE;
        let len = rx_len + tx_blocks as usize * BLOCK_SIZE;
        // SAFETY: mapping a packet socket's rings: a fresh shared mapping of `len` bytes at an
        // address the kernel chooses; the result is checked against MAP_FAILED.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                sock,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(syscall_err("mmap(PACKET_MMAP rings)", ifname));
        }
        let map = Mapping {
            base: NonNull::new(base.cast()).ok_or_else(|| syscall_err("mmap", ifname))?,
            len,
        };

        // SAFETY: `sockaddr_ll` is a plain C struct; all-zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex;
        // SAFETY: `sll` is a live sockaddr_ll and the length passed matches its size.
        let rc = unsafe {
            libc::bind(
                sock,
                (&raw const sll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(syscall_err("bind(AF_PACKET)", ifname));
        }

        let mreq = libc::packet_mreq {
            mr_ifindex: ifindex,
            mr_type: libc::PACKET_MR_PROMISC as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        // SAFETY: `mreq` is a live packet_mreq and the length passed matches its size.
        let rc = unsafe {
            libc::setsockopt(
                sock,
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                (&raw const mreq).cast(),
                size_of::<libc::packet_mreq>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(syscall_err(
                "setsockopt(PACKET_ADD_MEMBERSHIP, PROMISC)",
                ifname,
            ));
        }

        Ok(AfPacketPort {
            map,
            fd,
            name: ifname.to_string(),
            ifindex,
            id,
            mac: EthernetAddress(mac),
            rx: Ring {
                offset: 0,
                slots: rx_slots,
                head: 0,
            },
            tx: Ring {
                offset: rx_len,
                slots: tx_slots,
                head: 0,
            },
            tx_unkicked: 0,
            ignore_outgoing,
            qdisc_bypass,
            stats: AfPacketStats::default(),
        })
    }

    /// Interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Kernel interface index.
    pub fn ifindex(&self) -> i32 {
        self.ifindex
    }

    /// The port id frames from this port carry.
    pub fn id(&self) -> PortId {
        self.id
    }

    /// True if the kernel accepted `PACKET_QDISC_BYPASS`.
    pub fn qdisc_bypass(&self) -> bool {
        self.qdisc_bypass
    }

    /// True if the kernel accepted `PACKET_IGNORE_OUTGOING`.
    pub fn ignore_outgoing(&self) -> bool {
        self.ignore_outgoing
    }

    /// Port-level counters.
    pub fn stats(&self) -> AfPacketStats {
        self.stats
    }

    /// Adds the kernel's ring-full drops since the last call to
    /// [`AfPacketStats::rx_kernel_drops`] (reading `PACKET_STATISTICS` resets the kernel's
    /// counters, so call it from one place, e.g. every counter publication). One syscall.
    pub fn refresh_kernel_stats(&mut self) {
        let mut st = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: `st` and `len` are live locals; the kernel writes at most `len` bytes.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&raw mut st).cast(),
                &raw mut len,
            )
        };
        if rc == 0 {
            self.stats.rx_kernel_drops += u64::from(st.tp_drops);
        }
    }

    /// Pointer to the start of slot `idx` of `ring`.
    fn slot_ptr(&self, ring: &Ring, idx: u32) -> *mut u8 {
        debug_assert!(idx < ring.slots);
        // SAFETY: `ring.offset + idx * SLOT_SIZE + SLOT_SIZE <= map.len` because the ring was
        // sized from the same geometry, so the result stays inside the mapping.
        unsafe {
            self.map
                .base
                .as_ptr()
                .add(ring.offset + idx as usize * SLOT_SIZE)
        }
    }

    /// The `tp_status` word of the slot at `ptr`, shared with the kernel.
    fn status<'a>(ptr: *mut u8) -> &'a AtomicU32 {
        // SAFETY: `ptr` is a slot start inside the live mapping (slot_ptr), 16-byte aligned
        // (mapping is page aligned, SLOT_SIZE a multiple of 16), and `tp_status` is its first
        // u32. The kernel accesses it concurrently, which is why we only touch it atomically.
        // The returned lifetime is bounded by the callers, which hold `&self`/`&mut self`.
        unsafe { AtomicU32::from_ptr(ptr.cast::<u32>()) }
    }

    /// Copies the frame in RX slot `slot` into `frame`; false if it must be dropped.
    fn take_rx_slot(&mut self, slot: *mut u8, frame: &mut Frame) -> bool {
        // SAFETY: the slot is inside the mapping and the kernel handed it to us
        // (TP_STATUS_USER observed with Acquire), so it does not write the header now.
        let hdr: libc::tpacket2_hdr = unsafe { slot.cast::<libc::tpacket2_hdr>().read() };
        let mac_off = usize::from(hdr.tp_mac);
        let snap = hdr.tp_snaplen as usize;
        if mac_off < HDR_ALIGNED || mac_off.saturating_add(snap) > SLOT_SIZE || snap < 14 {
            self.stats.rx_bad_slot += 1;
            return false;
        }
        if snap < hdr.tp_len as usize {
            self.stats.rx_truncated += 1;
            return false;
        }
        if !self.ignore_outgoing {
            // SAFETY: the sockaddr_ll sits at HDR_ALIGNED inside the slot (kernel layout for
            // TPACKET_V2), so the offset stays inside this slot of the mapping.
            let at = unsafe { slot.add(HDR_ALIGNED + offset_of!(libc::sockaddr_ll, sll_pkttype)) };
            // SAFETY: `at` points at the one-byte sll_pkttype inside the slot we own.
            let pkttype = unsafe { at.read() };
            if pkttype == libc::PACKET_OUTGOING {
                self.stats.rx_outgoing_skipped += 1;
                return false;
            }
        }
        // SAFETY: `mac_off + snap <= SLOT_SIZE` was checked above, so the range lies inside
        // this slot, which the kernel does not touch until we hand it back.
        let start = unsafe { slot.add(mac_off) };
        // SAFETY: as above: `snap` bytes from `start` lie inside this slot, initialised by
        // the kernel, and nothing writes them while the slot is ours (until we hand it back).
        let data = unsafe { std::slice::from_raw_parts(start, snap) };

        let vlan_valid = hdr.tp_status & libc::TP_STATUS_VLAN_VALID != 0;
        if !vlan_valid {
            return frame.set_data(data).is_ok();
        }
        let tpid = if hdr.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 && hdr.tp_vlan_tpid != 0
        {
            hdr.tp_vlan_tpid
        } else {
            0x8100
        };
        restore_vlan_tag(frame, data, tpid, hdr.tp_vlan_tci)
    }
}

/// Writes `data` (an Ethernet frame whose outer VLAN tag the kernel removed) into `frame`
/// with the tag `tpid`/`tci` inserted after the MAC addresses. Pure; false if it does not fit.
pub fn restore_vlan_tag(frame: &mut Frame, data: &[u8], tpid: u16, tci: u16) -> bool {
    let Some((macs, rest)) = data.split_at_checked(12) else {
        return false;
    };
    if frame.set_data(rest).is_err() {
        return false;
    }
    let Some(head) = frame.push_front(12 + VLAN_TAG_LEN) else {
        return false;
    };
    let Some(head) = head.get_mut(..12 + VLAN_TAG_LEN) else {
        return false;
    };
    head[..12].copy_from_slice(macs);
    head[12..14].copy_from_slice(&tpid.to_be_bytes());
    head[14..16].copy_from_slice(&tci.to_be_bytes());
    true
}

impl Port for AfPacketPort {
    fn recv_burst(&mut self, frames: &mut [Frame]) -> usize {
        let mut n = 0;
        while n < frames.len() {
            let rx = self.rx;
            let slot = self.slot_ptr(&rx, rx.head);
            let status = Self::status(slot);
            if status.load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
                break;
            }
            let frame = &mut frames[n];
            if self.take_rx_slot(slot, frame) {
                frame.port = self.id;
                n += 1;
            }
            // Hand the slot back; Release orders our reads of the slot before the kernel's
            // next write into it.
            status.store(libc::TP_STATUS_KERNEL, Ordering::Release);
            self.rx.head = if rx.head + 1 == rx.slots {
                0
            } else {
                rx.head + 1
            };
        }
        n
    }

    fn send(&mut self, data: &[u8]) -> Result<(), PortError> {
        if data.len() > MAX_TX_FRAME {
            self.stats.tx_too_large += 1;
            return Err(PortError::FrameTooLarge {
                len: data.len(),
                max: MAX_TX_FRAME,
            });
        }
        let tx = self.tx;
        let slot = self.slot_ptr(&tx, tx.head);
        let status = Self::status(slot);
        let st = status.load(Ordering::Acquire);
        if st & (libc::TP_STATUS_SEND_REQUEST | libc::TP_STATUS_SENDING) != 0 {
            self.stats.tx_ring_full += 1;
            return Err(PortError::TxFull);
        }
        if st & libc::TP_STATUS_WRONG_FORMAT != 0 {
            self.stats.tx_wrong_format += 1;
        }
        // SAFETY: the slot is ours (status AVAILABLE or WRONG_FORMAT: the kernel is done with
        // it); `HDR_ALIGNED + data.len() <= SLOT_SIZE` was checked via MAX_TX_FRAME, so the
        // copy stays inside this slot; source and destination cannot overlap (`data` is not in
        // the TX ring: nothing hands out TX slot memory).
        let dst = unsafe { slot.add(HDR_ALIGNED) };
        // SAFETY: see above: `dst..dst + data.len()` is inside the TX slot we own.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len());
        }
        let tp_len = slot
            .wrapping_add(offset_of!(libc::tpacket2_hdr, tp_len))
            .cast::<u32>();
        // SAFETY: `tp_len` is a u32 inside the slot header we own (see above); aligned because
        // the slot start is 16-byte aligned and the field offset is 4.
        unsafe {
            tp_len.write(data.len() as u32);
        }
        // Release: the frame bytes and tp_len are visible before the kernel sees the request.
        status.store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.tx.head = if tx.head + 1 == tx.slots {
            0
        } else {
            tx.head + 1
        };
        self.tx_unkicked += 1;
        Ok(())
    }

    fn flush(&mut self) {
        if self.tx_unkicked == 0 {
            return;
        }
        // SAFETY: a zero-length sendto with null buffer and address is the documented TX ring
        // kick; the kernel reads only ring slots marked SEND_REQUEST.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if rc < 0 {
            // EAGAIN/ENOBUFS: the slots stay SEND_REQUEST and go out with the next kick.
            self.stats.tx_kick_errors += 1;
        } else {
            self.tx_unkicked = 0;
        }
    }

    fn mac(&self) -> EthernetAddress {
        self.mac
    }
}

impl AsRawFd for AfPacketPort {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for AfPacketPort {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_rounds_up_to_blocks() {
        assert_eq!(SLOTS_PER_BLOCK, 32);
        assert_eq!(ring_geometry(0), (1, 32));
        assert_eq!(ring_geometry(1), (1, 32));
        assert_eq!(ring_geometry(32), (1, 32));
        assert_eq!(ring_geometry(33), (2, 64));
        assert_eq!(ring_geometry(4096), (128, 4096));
    }

    #[test]
    fn slot_layout_matches_kernel() {
        // sizeof(struct tpacket2_hdr) == 32, TPACKET_ALIGN(32) == 32.
        assert_eq!(size_of::<libc::tpacket2_hdr>(), 32);
        assert_eq!(HDR_ALIGNED, 32);
        assert_eq!(
            HDR_ALIGNED + size_of::<libc::sockaddr_ll>(),
            libc::TPACKET2_HDRLEN
        );
        const { assert!(MAX_TX_FRAME >= 1518 + 8) };
        assert_eq!(BLOCK_SIZE % SLOT_SIZE, 0);
    }

    #[test]
    fn vlan_tag_is_restored_after_the_macs() {
        let mut untagged = vec![0u8; 60];
        untagged[..6].copy_from_slice(&[0x02, 0, 0x5e, 0, 1, 1]);
        untagged[6..12].copy_from_slice(&[0x02, 1, 2, 3, 4, 5]);
        untagged[12..14].copy_from_slice(&[0x08, 0x00]);
        untagged[14] = 0x45;
        let mut frame = Frame::new();
        assert!(restore_vlan_tag(&mut frame, &untagged, 0x88a8, 0x2064));
        let d = frame.data();
        assert_eq!(d.len(), 64);
        assert_eq!(&d[..12], &untagged[..12]);
        assert_eq!(&d[12..16], &[0x88, 0xa8, 0x20, 0x64]);
        assert_eq!(&d[16..], &untagged[12..]);
    }

    #[test]
    fn vlan_restore_rejects_runts() {
        let mut frame = Frame::new();
        assert!(!restore_vlan_tag(&mut frame, &[0u8; 11], 0x8100, 5));
    }

    #[test]
    fn open_rejects_bad_names() {
        assert!(matches!(
            AfPacketPort::open("", 0, RingConfig::default()),
            Err(AfPacketError::BadName { .. })
        ));
        assert!(matches!(
            AfPacketPort::open("a-very-long-interface-name", 0, RingConfig::default()),
            Err(AfPacketError::BadName { .. })
        ));
        assert!(matches!(
            AfPacketPort::open("vbng-no-such0", 0, RingConfig::default()),
            Err(AfPacketError::NoSuchInterface { .. })
        ));
    }
}
