//! The few machine instructions the image needs at CPL3. Port I/O works because the boot
//! stub gives CPL3 IOPL 3.

use core::arch::asm;

/// Writes `value` to I/O port `port`.
#[inline]
pub fn outb(port: u16, value: u8) {
    // SAFETY: port I/O touches no memory; IOPL 3 allows it at CPL3.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    }
}

/// The time stamp counter.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC reads a counter; CR4.TSD is clear, so CPL3 may.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Ends the VM: through QEMU's isa-debug-exit device (QEMU exits with `code * 2 + 1`), or,
/// where the machine has none (the minimal `qemu-system-x86_64-microvm`), through an
/// i8042 reset or the supervisor's power-off request (a triple fault): QEMU's -no-reboot
/// turns either into an exit with status 0.
pub fn exit(code: u8) -> ! {
    outb(0xf4, code);
    outb(0x64, 0xfe);
    // SAFETY: the power-off request has no preconditions and does not return.
    unsafe { uk_power_off() }
}

unsafe extern "C" {
    /// boot.s: halts until the next interrupt (a `ud2` the supervisor answers with HLT).
    fn uk_idle();
    /// boot.s: powers the VM off.
    fn uk_power_off() -> !;
}

/// Halts until the next interrupt (HLT needs CPL0: the supervisor's idle request).
#[inline]
pub fn idle() {
    // SAFETY: the idle request only halts and returns; it touches none of our memory.
    unsafe { uk_idle() }
}
