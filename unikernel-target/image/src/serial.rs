//! COM1 output, for the boot report and errors (each byte is a trap to QEMU: not for the
//! poll loop).

use core::fmt;

const COM1: u16 = 0x3f8;

/// `fmt::Write` to COM1.
pub struct Serial;

impl fmt::Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                crate::arch::outb(COM1, b'\r');
            }
            crate::arch::outb(COM1, b);
        }
        Ok(())
    }
}

/// Prints to COM1 with a newline.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::serial::Serial, $($arg)*);
    }};
}
