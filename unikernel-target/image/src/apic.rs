//! Interrupts for the idle state: the local APIC's one-shot timer and the I/O APIC pins of
//! the virtio-mmio devices, all on the boot stub's wake vector. They are only ever taken
//! inside the idle trap (interrupts stay masked at CPL3, except under KVM-PVM, where the wake
//! handler leaves a flag that skips the next halt), where they end the HLT.
//!
//! Both APICs are memory mapped (0xfee00000, 0xfec00000); the page tables map them to
//! CPL3, uncached.

use core::ptr::{read_volatile, write_volatile};

const LAPIC: u64 = 0xfee0_0000;
const IOAPIC: u64 = 0xfec0_0000;
const WAKE_VECTOR: u32 = 0x40;

mod lapic {
    pub const SPURIOUS: u64 = 0x0f0;
    pub const LVT_TIMER: u64 = 0x320;
    pub const TIMER_INITIAL: u64 = 0x380;
    pub const TIMER_DIVIDE: u64 = 0x3e0;
}

/// QEMU's and KVM's local APIC timers count at 1 GHz with a divider of 1.
const TIMER_HZ: u64 = 1_000_000_000;

fn lapic_write(reg: u64, value: u32) {
    // SAFETY: a local APIC register in the mapped, uncached APIC page.
    unsafe { write_volatile((LAPIC + reg) as *mut u32, value) }
}

fn ioapic_write(index: u32, value: u32) {
    // SAFETY: IOREGSEL and IOWIN in the mapped, uncached I/O APIC page.
    unsafe { write_volatile(IOAPIC as *mut u32, index) };
    // SAFETY: as above.
    unsafe { write_volatile((IOAPIC + 0x10) as *mut u32, value) }
}

fn lapic_read(reg: u64) -> u32 {
    // SAFETY: as `lapic_write`.
    unsafe { read_volatile((LAPIC + reg) as *const u32) }
}

/// Enables the local APIC, its one-shot timer and the I/O APIC pins `irqs` (edge
/// triggered, to the boot CPU), all on the wake vector.
pub fn init(irqs: &[u8]) {
    lapic_write(
        lapic::SPURIOUS,
        (lapic_read(lapic::SPURIOUS) & !0xff) | 0x100 | 0xff,
    );
    lapic_write(lapic::TIMER_DIVIDE, 0xb);
    lapic_write(lapic::LVT_TIMER, WAKE_VECTOR);
    for &irq in irqs {
        let index = 0x10 + 2 * u32::from(irq);
        ioapic_write(index + 1, 0); // destination: APIC id 0
        ioapic_write(index, WAKE_VECTOR);
    }
}

/// Arms the one-shot timer to fire after `ns` (0 stops it).
pub fn set_timer_ns(ns: u64) {
    let ticks = (u128::from(ns) * u128::from(TIMER_HZ) / 1_000_000_000).min(u128::from(u32::MAX));
    lapic_write(lapic::TIMER_INITIAL, ticks as u32);
}
