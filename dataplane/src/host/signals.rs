//! SIGINT/SIGTERM -> a flag the main thread polls for a graceful shutdown; SIGHUP -> a flag
//! the PFCP agent's thread polls to reload the ACL file.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static SHUTDOWN: AtomicBool = AtomicBool::new(false);
static SIGNAL: AtomicI32 = AtomicI32::new(0);
static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_hangup(_sig: libc::c_int) {
    // Only async-signal-safe work: one atomic store.
    RELOAD.store(true, Ordering::SeqCst);
}

extern "C" fn on_signal(sig: libc::c_int) {
    // Only async-signal-safe work: two atomic stores.
    SIGNAL.store(sig, Ordering::SeqCst);
    SHUTDOWN.store(true, Ordering::SeqCst);
}

/// Installs the handler for SIGINT and SIGTERM (a second signal is handled the same way;
/// the process stops as soon as its threads have joined) and for SIGHUP (reload).
pub fn install() -> io::Result<()> {
    let handlers: [(libc::c_int, extern "C" fn(libc::c_int)); 3] = [
        (libc::SIGINT, on_signal),
        (libc::SIGTERM, on_signal),
        (libc::SIGHUP, on_hangup),
    ];
    for (sig, handler) in handlers {
        // SAFETY: `sigaction` is a plain C struct for which zeroes are valid (empty mask,
        // no flags); we then set the handler to a function that only touches atomics,
        // which is async-signal-safe.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = handler as libc::sighandler_t;
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

/// True once per SIGHUP received since the last call (several coalesce into one).
pub fn take_reload_request() -> bool {
    RELOAD.swap(false, Ordering::SeqCst)
}

/// The signal that requested shutdown (0 if none).
pub fn signal_number() -> i32 {
    SIGNAL.load(Ordering::SeqCst)
}
