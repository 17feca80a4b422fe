//! SIGINT/SIGTERM -> a flag the main thread polls for a graceful shutdown.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static SHUTDOWN: AtomicBool = AtomicBool::new(false);
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only async-signal-safe work: two atomic stores.
    SIGNAL.store(sig, Ordering::SeqCst);
    SHUTDOWN.store(true, Ordering::SeqCst);
}

/// Installs the handler for SIGINT and SIGTERM (a second signal is handled the same way;
/// the process stops as soon as its threads have joined).
pub fn install() -> io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `sigaction` is a plain C struct for which zeroes are valid (empty mask,
        // no flags); we then set the handler to a function that only touches atomics,
        // which is async-signal-safe.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: `sa` is initialised above and lives for the call; a null old-action
        // pointer is allowed.
        if unsafe { libc::sigaction(sig, &raw const sa, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// True once SIGINT or SIGTERM arrived.
pub fn shutdown_requested() -> bool {
    SHUTDOWN.load(Ordering::SeqCst)
}

/// The signal that requested shutdown (0 if none).
pub fn signal_number() -> i32 {
    SIGNAL.load(Ordering::SeqCst)
}
