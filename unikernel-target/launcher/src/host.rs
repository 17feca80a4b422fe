//! Facts about the host: which accelerator QEMU can use and the TSC rate (which a KVM
//! guest shares, and which the image needs to turn cycles into time).

use std::fs::OpenOptions;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// True when `/dev/kvm` can be opened for reading and writing.
pub fn kvm_usable() -> bool {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// The TSC rate in kHz, measured once per process (20 ms against the monotonic clock):
/// the rate is constant (`constant_tsc`), and every instance start needs it.
pub fn host_tsc_khz() -> u64 {
    static KHZ: OnceLock<u64> = OnceLock::new();
    *KHZ.get_or_init(|| tsc_khz(Duration::from_millis(20)))
}

/// The TSC rate in kHz, measured against the monotonic clock over `window`.
pub fn tsc_khz(window: Duration) -> u64 {
    let read = || {
        // SAFETY: RDTSC has no preconditions on x86-64.
        unsafe { core::arch::x86_64::_rdtsc() }
    };
    let (t0, c0) = (Instant::now(), read());
    std::thread::sleep(window);
    let (c1, t1) = (read(), Instant::now());
    let ns = t1.duration_since(t0).as_nanos().max(1);
    (u128::from(c1.wrapping_sub(c0)) * 1_000_000 / ns) as u64
}

/// True when `program` is on PATH.
pub fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
