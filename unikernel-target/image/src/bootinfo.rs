//! What QEMU's PVH loader hands over: the hvm_start_info structure (Xen's
//! `arch-x86/hvm/start_info.h`) with the kernel command line and the E820 memory map.

/// hvm_start_info's magic value.
const MAGIC: u32 = 0x336e_c578;
const E820_RAM: u32 = 1;
/// Longest command line read.
const MAX_CMDLINE: usize = 4096;

/// The boot information the image uses.
#[derive(Debug)]
pub struct BootInfo {
    /// The kernel command line (`-append`, plus what QEMU adds), empty if absent.
    pub cmdline: &'static str,
    /// The end of the RAM range the image was loaded into.
    pub ram_end: u64,
}

fn read_u32(addr: u64) -> u32 {
    // SAFETY: callers pass addresses inside the start_info structure or the memory map,
    // which the loader placed in mapped low memory.
    unsafe { (addr as *const u32).read_unaligned() }
}

fn read_u64(addr: u64) -> u64 {
    // SAFETY: as `read_u32`.
    unsafe { (addr as *const u64).read_unaligned() }
}

/// Reads the structure at `start_info`; `image` is an address inside the image, to find
/// the RAM range holding it. None if the magic value is wrong.
pub fn read(start_info: u64, image: u64) -> Option<BootInfo> {
    if start_info == 0 || read_u32(start_info) != MAGIC {
        return None;
    }
    let cmdline_addr = read_u64(start_info + 24);
    let cmdline = if cmdline_addr == 0 {
        ""
    } else {
        let at = cmdline_addr as *const u8;
        // SAFETY: the loader leaves a NUL-terminated string at cmdline_paddr, in low memory
        // that stays mapped read-only; the scan stops at the NUL or MAX_CMDLINE bytes.
        let len = (0..MAX_CMDLINE)
            .find(|&i| unsafe { at.wrapping_add(i).read() } == 0)
            .unwrap_or(MAX_CMDLINE);
        // SAFETY: `len` bytes from `at` were just read.
        let bytes = unsafe { core::slice::from_raw_parts(at, len) };
        core::str::from_utf8(bytes).unwrap_or("")
    };
    let version = read_u32(start_info + 4);
    let mut ram_end = 0;
    if version >= 1 {
        let map = read_u64(start_info + 40);
        let entries = read_u32(start_info + 48);
        for i in 0..u64::from(entries.min(128)) {
            let e = map + i * 24;
            let (base, size, kind) = (read_u64(e), read_u64(e + 8), read_u32(e + 16));
            if kind == E820_RAM && image >= base && image < base + size {
                ram_end = base + size;
            }
        }
    }
    Some(BootInfo { cmdline, ram_end })
}
