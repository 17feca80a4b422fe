//! Sleeping and waking the poll-mode worker.
//!
//! The worker busy-polls while traffic flows. When it has been idle for a while it sleeps in
//! `poll(2)` on its ports' sockets plus an [`EventFd`], with a short timeout. Threads that
//! hand it work (session commands, frames from the CP) call [`IdleWaker::wake`], which
//! writes the eventfd only if the worker said it is going to sleep, so a busy worker costs
//! them no syscall.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A non-blocking Linux eventfd.
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// Creates a non-blocking, close-on-exec eventfd with counter 0.
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: plain eventfd(2) call with constant flags.
        let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a freshly created fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(EventFd { fd })
    }

    /// Adds 1 to the counter, making the fd readable. Errors (counter overflow) are ignored:
    /// the fd is readable then anyway.
    pub fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes the 8 bytes of `one`, which lives for the call.
        unsafe {
            libc::write(self.fd.as_raw_fd(), (&raw const one).cast(), 8);
        }
    }

    /// Resets the counter to 0 (non-blocking).
    pub fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads at most 8 bytes into `v`, which lives for the call.
        unsafe {
            libc::read(self.fd.as_raw_fd(), (&raw mut v).cast(), 8);
        }
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The worker's "I am asleep" flag plus the eventfd that wakes it.
#[derive(Debug)]
pub struct IdleWaker {
    sleeping: AtomicBool,
    event: EventFd,
}

impl IdleWaker {
    /// A waker for a worker that is awake.
    pub fn new() -> io::Result<IdleWaker> {
        Ok(IdleWaker {
            sleeping: AtomicBool::new(false),
            event: EventFd::new()?,
        })
    }

    /// Producer side: call after queueing work for the worker.
    pub fn wake(&self) {
        // SeqCst pairs with `prepare_sleep`: either the worker sees our queued work when it
        // re-checks, or we see its flag and signal the eventfd.
        if self.sleeping.load(Ordering::SeqCst) {
            self.event.signal();
        }
    }

    /// Worker side: announce the intent to sleep. Re-check the queues after this and call
    /// [`IdleWaker::sleep`] only if they are still empty.
    pub fn prepare_sleep(&self) {
        self.sleeping.store(true, Ordering::SeqCst);
    }

    /// Worker side: back to busy polling.
    pub fn awake(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
        self.event.drain();
    }

    /// Worker side: sleeps until one of `fds` (plus the eventfd) is readable or `timeout_ms`
    /// passes, then marks the worker awake. `pollfds` is scratch space reused across calls
    /// (it is cleared and refilled; keep its capacity to avoid allocating).
    pub fn sleep(&self, fds: &[RawFd], pollfds: &mut Vec<libc::pollfd>, timeout_ms: i32) {
        let ms = u64::try_from(timeout_ms).unwrap_or(0);
        self.sleep_for(fds, pollfds, Duration::from_millis(ms));
    }

    /// [`IdleWaker::sleep`] with a nanosecond timeout (`ppoll(2)`), so that a worker whose
    /// shaper releases a frame in 300 µs sleeps 300 µs, not a whole millisecond. The kernel
    /// adds its timer slack (50 µs for a normal thread).
    pub fn sleep_for(&self, fds: &[RawFd], pollfds: &mut Vec<libc::pollfd>, timeout: Duration) {
        pollfds.clear();
        pollfds.extend(
            fds.iter()
                .chain([&self.event.as_raw_fd()])
                .map(|&fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                }),
        );
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
        };
        // SAFETY: `pollfds` is a live, initialised array of `len` pollfd structs; ppoll(2)
        // only writes their `revents` fields and reads `ts`, which outlives the call; a null
        // signal mask leaves the mask unchanged (poll(2) semantics).
        unsafe {
            libc::ppoll(
                pollfds.as_mut_ptr(),
                pollfds.len() as libc::nfds_t,
                &raw const ts,
                std::ptr::null(),
            );
        }
        self.awake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn wake_interrupts_sleep_only_when_sleeping() {
        let w = IdleWaker::new().unwrap();
        // Awake: wake() must not leave a pending signal behind.
        w.wake();
        let mut scratch = Vec::with_capacity(2);
        w.prepare_sleep();
        w.wake();
        let start = Instant::now();
        w.sleep(&[], &mut scratch, 10_000);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "eventfd did not wake poll"
        );
    }
}
