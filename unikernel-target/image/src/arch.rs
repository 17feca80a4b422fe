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

/// Ends the VM through QEMU's isa-debug-exit device (QEMU exits with `code * 2 + 1`); halts
/// the CPU if the device is absent.
pub fn exit(code: u8) -> ! {
    outb(0xf4, code);
    loop {
        idle();
    }
}

/// Halts until the next interrupt (the boot stub's idle service: HLT needs CPL0).
#[inline]
pub fn idle() {
    // SAFETY: the idle service halts on the supervisor stack and returns; it touches none
    // of our memory.
    unsafe {
        asm!("syscall", inout("eax") 1 => _, out("rcx") _, out("r10") _, out("r11") _,
             options(nomem, nostack))
    }
}

/// True when the hypervisor keeps interrupts enabled at CPL3 whatever we asked for: the
/// boot stub enters CPL3 with IF clear and IOPL 3, and only KVM-PVM (which runs the
/// guest's CPL3 in the host's user mode) shows IF set and IOPL 0 there. Under PVM the
/// idle service cannot halt (privileged instructions at CPL0 need its own hypercall
/// interface), so the loop keeps polling.
pub fn interrupts_forced_on() -> bool {
    let flags: u64;
    // SAFETY: reads RFLAGS through the stack; nothing else is touched.
    unsafe { asm!("pushfq", "pop {0}", out(reg) flags, options(nomem, preserves_flags)) }
    flags & (1 << 9) != 0
}
