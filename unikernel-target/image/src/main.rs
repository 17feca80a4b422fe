//! vbng-uk: the per-customer vBNG user plane as a freestanding x86-64 image.
//!
//! QEMU's `microvm` machine loads it through its PVH note; `boot.s` enters long mode and
//! drops to CPL3, where everything else runs: the heap is set up, the day-0 configuration read from the command line, the two
//! virtio-net devices taken, and the `vbng-dataplane` pipeline run in a poll loop.
//!
//! # Module map
//! - `boot.s`: the PVH entry, GDT/TSS/IDT, the idle and power-off traps, CPU exception
//!   reports.
//! - [`arch`]: port I/O, the TSC, the idle request, exiting QEMU.
//! - [`apic`]: the local APIC timer and the I/O APIC pins that end an idle halt.
//! - [`paging`]: the memory layout (the page tables are generated at build time).
//! - [`bootinfo`]: the PVH start_info structure (command line, memory map); the day-0
//!   configuration on that command line is parsed by the `vbng-day0` crate.
//! - [`heap`]: the global allocator.
//! - [`virtio`]: virtio-net on virtio-mmio, split rings with batched kicks and EVENT_IDX.
//! - [`instance`]: the pipeline between the two ports and its poll loop.
//! - [`mgmt`]: the management interface (smoltcp): PFCP and the control-packet redirect.
//! - [`serial`]: COM1 output (`println!`).
//! - [`mem`]: memcpy and friends, which the host target's prebuilt core expects from libc.

#![no_std]
#![no_main]

extern crate alloc;

mod apic;
mod arch;
mod bootinfo;
mod heap;
mod instance;
mod mem;
mod mgmt;
mod paging;
mod serial;
mod virtio;

use core::panic::PanicInfo;

use vbng_dataplane::port::Port;
use vbng_day0 as config;
use vbng_day0::Probe;
use virtio::{Bringup, VirtioNet};

core::arch::global_asm!(include_str!("boot.s"));

/// Exit codes (QEMU exits with `code * 2 + 1`).
mod exit_code {
    pub const BAD_BOOT: u8 = 5;
    pub const BAD_CONFIG: u8 = 6;
    pub const NO_DEVICE: u8 = 7;
    pub const PROBE_SURVIVED: u8 = 8;
}

/// virtio-mmio slots on microvm: `0xfeb00000 + n * 0x200`.
const VIRTIO_MMIO_BASE: u64 = 0xfeb0_0000;
const VIRTIO_MMIO_SLOTS: u64 = 24;
/// Polling without work for this long lets the loop halt.
const BUSY_POLL_NS: u64 = 50_000;
/// The longest halt (timers such as next-hop ARP retries, every second, and NAT expiry
/// run on each pass).
const MAX_HALT_NS: u64 = 1_000_000_000;

/// Rust's entry at CPL3, called by `uk_entry` with the hvm_start_info address and the two
/// halves of the TSC read at the boot stub's start (the low half's upper 32 bits are
/// undefined: the stub leaves them as the switch to 64-bit mode did).
#[unsafe(no_mangle)]
extern "C" fn uk_start(start_info: u64, entry_tsc_low: u64, entry_tsc_high: u64) -> ! {
    let rust_tsc = arch::rdtsc();
    let entry_tsc = (entry_tsc_high << 32) | (entry_tsc_low & 0xffff_ffff);
    let Some(boot) = bootinfo::read(start_info, paging::heap_start()) else {
        println!("vbng-uk: no PVH start_info at {start_info:#x}");
        arch::exit(exit_code::BAD_BOOT);
    };
    // Baselines for vbng-perf: QEMU's own start cost (exit at once) and an idle guest that
    // does nothing but halt.
    match baseline(boot.cmdline) {
        Some("exit") => arch::exit(0),
        Some("halt") => loop {
            arch::idle();
        },
        _ => {}
    }
    let ram_end = boot.ram_end.min(paging::MAPPED_RAM);
    let heap_start = paging::heap_start();
    if ram_end <= heap_start {
        println!(
            "vbng-uk: {ram_end:#x} bytes of RAM leave no heap (need more than {heap_start:#x})"
        );
        arch::exit(exit_code::BAD_BOOT);
    }
    heap::init(heap_start, ram_end);
    let cfg = match config::parse(boot.cmdline) {
        Ok(c) => c,
        Err(e) => {
            println!("vbng-uk: command line: {e}");
            arch::exit(exit_code::BAD_CONFIG);
        }
    };
    if let Some(probe) = cfg.probe {
        run_probe(probe);
    }
    let clock = Clock::new(boot.cmdline, entry_tsc);

    // The devices in QEMU's order: the command line lists them when ACPI is off; otherwise
    // the slots fill from the top.
    let mut bases: alloc::vec::Vec<u64> = cfg.virtio_mmio.iter().map(|&(a, _)| a).collect();
    if bases.is_empty() {
        bases = (0..VIRTIO_MMIO_SLOTS)
            .rev()
            .map(|n| VIRTIO_MMIO_BASE + n * 0x200)
            .filter(|&b| virtio::probe(b) == Some(1))
            .collect();
    }
    // The core and management ports use their MACs (from the command line, else from the
    // devices); the access side answers as the gateway MAC.
    let bringup = if cfg.virtio_qemu_legacy {
        Bringup::QemuLegacy
    } else {
        Bringup::Probe
    };
    let macs = [None, cfg.core_mac, cfg.mgmt_mac];
    let mut nets = bases.iter().enumerate().filter_map(|(i, &b)| {
        let mac = macs.get(i).copied().flatten();
        match VirtioNet::new(b, 0, bringup, mac, i >= 1) {
            Ok(d) => Some(d),
            Err(e) => {
                println!("vbng-uk: virtio-mmio {b:#x}: {e:?}");
                None
            }
        }
    });
    let (Some(access), Some(core)) = (nets.next(), nets.next()) else {
        println!("vbng-uk: need two virtio-net devices (access, core)");
        arch::exit(exit_code::NO_DEVICE);
    };
    let mgmt = match (nets.next(), cfg.mgmt_ip) {
        (Some(port), Some(ip)) => Some(mgmt::Mgmt::new(
            port,
            mgmt::MgmtConfig {
                ip,
                cp_gtpu: cfg.cp_gtpu,
                unix_ms: cfg.unix_ms,
            },
            clock.now_ns(),
        )),
        (None, None) => None,
        (Some(_), None) => {
            println!("vbng-uk: a third (management) device needs mgmt_ip=ADDRESS/LEN");
            arch::exit(exit_code::BAD_CONFIG);
        }
        (None, Some(_)) => {
            println!("vbng-uk: mgmt_ip= needs a third virtio-net device (management)");
            arch::exit(exit_code::NO_DEVICE);
        }
    };
    let devices_tsc = arch::rdtsc();
    let access = access.with_port_id(instance::ACCESS);
    let core = core.with_port_id(instance::CORE);
    let mut inst = match instance::Instance::new(&cfg, access, core, mgmt, entry_tsc) {
        Ok(i) => i,
        Err(e) => {
            println!("vbng-uk: configuration refused: {e}");
            arch::exit(exit_code::BAD_CONFIG);
        }
    };
    let ready_tsc = arch::rdtsc();
    if boot
        .cmdline
        .split_ascii_whitespace()
        .any(|w| w == "verbose")
    {
        println!(
            "vbng-uk: ready: access {:#x} core {:#x} ({}), {} sessions; entry to rust {} us, \
             devices {} us, pipeline {} us",
            inst.ports[0].base(),
            inst.ports[1].base(),
            inst.ports[1].mac(),
            inst.pipeline.session_count(),
            clock.cycles_to_us(rust_tsc.wrapping_sub(entry_tsc)),
            clock.cycles_to_us(devices_tsc.wrapping_sub(rust_tsc)),
            clock.cycles_to_us(ready_tsc.wrapping_sub(devices_tsc)),
        );
    }

    // Idle: after BUSY_POLL_NS without work the loop halts until a frame arrives or the
    // timer fires (at most MAX_HALT_NS later, sooner for the shaper's next release).
    let irqs: alloc::vec::Vec<u8> = cfg
        .virtio_mmio
        .iter()
        .take(3)
        .map(|&(_, irq)| irq)
        .collect();
    // The interrupt controllers are programmed before the first halt, not here: a dozen
    // register writes, each a trap, that the first frames need not wait for.
    let mut interrupts_ready = false;
    // The loop starts with a busy-poll window, as after work.
    let mut last_work = clock.now_ns();
    let mut first_forward_reported = false;
    loop {
        let now = clock.now_ns();
        if inst.poll(now) > 0 {
            last_work = now;
        } else if now.saturating_sub(last_work) >= BUSY_POLL_NS
            && let Some(timeout) = inst.idle_timeout_ns(now, MAX_HALT_NS)
        {
            if !interrupts_ready {
                apic::init(&irqs);
                interrupts_ready = true;
            }
            if inst.arm_interrupts() {
                apic::set_timer_ns(timeout.max(1_000));
                arch::idle();
                apic::set_timer_ns(0);
            }
            // Back to the loop without a new busy-poll window: if the wake brought no work
            // the next pass halts again at once.
            inst.disarm_interrupts();
        }
        if !first_forward_reported && inst.forwarded > 0 {
            first_forward_reported = true;
            let t = arch::rdtsc();
            // The launcher times the first line; the details follow it.
            println!("vbng-uk: forwarding");
            let (used, _) = heap::usage();
            println!(
                "vbng-uk: boot entry_to_forward_us={} entry_to_ready_us={} tsc_khz={}{} \
                 sessions={} heap_used_kib={} ram_kib={}",
                clock.cycles_to_us(t.wrapping_sub(entry_tsc)),
                clock.cycles_to_us(ready_tsc.wrapping_sub(entry_tsc)),
                clock.tsc_khz,
                if clock.assumed { " tsc_assumed=1" } else { "" },
                inst.pipeline.session_count(),
                used / 1024,
                ram_end / 1024,
            );
        }
    }
}

/// The `baseline=` word of the command line, read before anything else is set up.
fn baseline(cmdline: &str) -> Option<&str> {
    cmdline
        .split_ascii_whitespace()
        .find_map(|w| w.strip_prefix("baseline="))
}

/// Monotonic time from the TSC.
struct Clock {
    start: u64,
    tsc_khz: u64,
    assumed: bool,
}

impl Clock {
    /// The TSC rate: `tsc_khz=` on the command line (the launcher measures the host's, which
    /// KVM guests share), else the hypervisor's timing leaf, else an assumed 2 GHz.
    fn new(cmdline: &str, start: u64) -> Clock {
        let given = cmdline
            .split_ascii_whitespace()
            .find_map(|w| w.strip_prefix("tsc_khz="))
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&k| k > 0);
        let leaf = || {
            let max = core::arch::x86_64::__cpuid(0x4000_0000).eax;
            (max >= 0x4000_0010).then(|| u64::from(core::arch::x86_64::__cpuid(0x4000_0010).eax))
        };
        match given.or_else(|| leaf().filter(|&k| k > 0)) {
            Some(tsc_khz) => Clock {
                start,
                tsc_khz,
                assumed: false,
            },
            None => Clock {
                start,
                tsc_khz: 2_000_000,
                assumed: true,
            },
        }
    }

    fn now_ns(&self) -> u64 {
        let cycles = arch::rdtsc().wrapping_sub(self.start);
        (u128::from(cycles) * 1_000_000 / u128::from(self.tsc_khz)) as u64
    }

    fn cycles_to_us(&self, cycles: u64) -> u64 {
        cycles * 1000 / self.tsc_khz
    }
}

/// Breaks the page protections on purpose: each probe must end in a CPU exception report
/// (page fault, vector 0x0e); surviving it is an error.
fn run_probe(probe: Probe) -> ! {
    println!("vbng-uk: probe {probe:?}");
    match probe {
        Probe::WriteText => {
            let text = uk_start as *const () as *mut u8;
            // SAFETY: deliberately invalid: text is mapped read-execute, so this must fault.
            unsafe { text.write_volatile(0xc3) };
        }
        Probe::ExecData => {
            static RET: [u8; 1] = [0xc3];
            let data = core::ptr::addr_of!(RET) as usize;
            // SAFETY: deliberately invalid: rodata is mapped no-execute, so this must fault.
            let f: extern "C" fn() = unsafe { core::mem::transmute(data) };
            f();
        }
        Probe::StackGuard => {
            fn deep(n: u64) -> u64 {
                let pad = [n; 64];
                core::hint::black_box(&pad);
                if n == 0 {
                    0
                } else {
                    deep(n - 1) + core::hint::black_box(pad[1])
                }
            }
            core::hint::black_box(deep(core::hint::black_box(1 << 20)));
        }
    }
    println!("vbng-uk: probe survived: the protection is missing");
    arch::exit(exit_code::PROBE_SURVIVED)
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    println!("vbng-uk: panic: {info}");
    arch::exit(2)
}
