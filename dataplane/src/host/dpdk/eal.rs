//! EAL start-up and lcore registration of worker threads.

use std::cell::Cell;
use std::ffi::{CString, c_char, c_int};
use std::path::Path;
use std::sync::OnceLock;

use super::{DpdkError, call_error, errno, sys};

/// The outcome of the one `rte_eal_init` of this process.
static EAL: OnceLock<Result<Eal, DpdkError>> = OnceLock::new();

/// Proof that EAL is up: every constructor that needs EAL takes a `&Eal`.
#[derive(Debug)]
pub struct Eal {
    args: Vec<String>,
    main_lcore: u32,
}

/// Starts EAL with `args` (`args[0]` is the program name, the rest are EAL options such as
/// `--no-huge`, `-l 0`, `--vdev=net_null0`; a `--` and what follows are ignored by EAL).
///
/// EAL can start once per process: the first call runs `rte_eal_init` (which pins the
/// calling thread to the first `-l` CPU and makes it the main lcore); every later call
/// returns the same [`Eal`] whatever its arguments, or the first call's error again.
///
/// Before the caller's options it adds `-d <library>` for each poll-mode driver library the
/// build found (`dpdk_sys::PMD_LIBRARIES`) that exists on this machine.
pub fn eal_init(args: &[String]) -> Result<&'static Eal, DpdkError> {
    EAL.get_or_init(|| start(args))
        .as_ref()
        .map_err(Clone::clone)
}

/// The running EAL, if [`eal_init`] succeeded.
fn running() -> Option<&'static Eal> {
    EAL.get().and_then(|r| r.as_ref().ok())
}

/// The argument vector handed to `rte_eal_init`: `args` with `-d <pmd>` after the program
/// name. Pure apart from checking that the libraries exist.
fn full_args(args: &[String]) -> Vec<String> {
    if args.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(args.len() + 2 * sys::PMD_LIBRARIES.len());
    out.push(args[0].clone());
    for (_, lib) in sys::PMD_LIBRARIES {
        if Path::new(lib).exists() {
            out.push("-d".to_owned());
            out.push((*lib).to_owned());
        }
    }
    out.extend(args.iter().skip(1).cloned());
    out
}

fn start(args: &[String]) -> Result<Eal, DpdkError> {
    if args.is_empty() {
        return Err(DpdkError::Invalid(
            "eal_init: expected the program name as args[0], got no arguments".into(),
        ));
    }
    let args = full_args(args);
    let mut c_args = Vec::with_capacity(args.len());
    for a in &args {
        let c = CString::new(a.as_str())
            .map_err(|_| DpdkError::Invalid(format!("EAL argument {a:?} contains a NUL byte")))?;
        c_args.push(c);
    }
    // EAL may keep pointers into argv (it permutes it and keeps option values), and runs
    // once per process: the strings and the array live for the rest of the process.
    let argv: Vec<*mut c_char> = c_args.into_iter().map(CString::into_raw).collect();
    let argv: &'static mut [*mut c_char] = Vec::leak(argv);
    let argc = c_int::try_from(argv.len())
        .map_err(|_| DpdkError::Invalid("too many EAL arguments".into()))?;
    // SAFETY: argv holds argc valid NUL-terminated strings that are never freed; this runs
    // once per process (inside the OnceLock), as rte_eal_init requires.
    let ret = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
    if ret < 0 {
        return Err(call_error("rte_eal_init", errno()));
    }
    // SAFETY: EAL is initialised.
    let main_lcore = unsafe { sys::rte_get_main_lcore() };
    Ok(Eal { args, main_lcore })
}

impl Eal {
    /// The arguments `rte_eal_init` was given (including the added `-d` options).
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The main lcore (the thread that called [`eal_init`]).
    pub fn main_lcore(&self) -> u32 {
        self.main_lcore
    }

    /// Number of ethdev ports available (`rte_eth_dev_count_avail`).
    pub fn port_count(&self) -> u16 {
        // SAFETY: EAL is initialised (self exists); the call only reads the port table.
        unsafe { sys::rte_eth_dev_count_avail() }
    }

    /// Time stamp counter ticks per second (`rte_get_tsc_hz`).
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: EAL is initialised; reads a value EAL measured at start-up.
        unsafe { sys::rte_get_tsc_hz() }
    }

    /// Reads the time stamp counter (`rte_rdtsc`).
    pub fn tsc(&self) -> u64 {
        // SAFETY: reads the CPU's time stamp counter.
        unsafe { sys::vbng_rdtsc() }
    }

    /// Adds a device after start-up (`rte_dev_probe`), e.g.
    /// `net_virtio_user0,path=/tmp/vhost.sock` once the vhost-user socket it connects to
    /// exists. The new port is then found with [`super::EthPort::by_name`].
    pub fn probe_device(&self, devargs: &str) -> Result<(), DpdkError> {
        let c = CString::new(devargs).map_err(|_| {
            DpdkError::Invalid(format!("device arguments {devargs:?} contain a NUL byte"))
        })?;
        // SAFETY: EAL is initialised; c is a valid NUL-terminated string for the call.
        let ret = unsafe { sys::rte_dev_probe(c.as_ptr()) };
        if ret < 0 {
            return Err(call_error("rte_dev_probe", -ret));
        }
        Ok(())
    }
}

/// The calling thread's lcore id, `None` for a thread EAL did not start and that has not
/// called [`register_thread`].
pub fn lcore_id() -> Option<u32> {
    // SAFETY: reads a thread-local integer.
    let id = unsafe { sys::vbng_lcore_id() };
    (id != sys::LCORE_ID_ANY).then_some(id)
}

/// Ends the thread's lcore registration when the thread exits.
struct Registration(Cell<bool>);

impl Drop for Registration {
    fn drop(&mut self) {
        if self.0.get() {
            // SAFETY: this thread registered with rte_thread_register and is exiting; the
            // call releases its lcore id.
            unsafe { sys::rte_thread_unregister() };
        }
    }
}

thread_local! {
    static REGISTRATION: Registration = const { Registration(Cell::new(false)) };
}

/// Registers the calling thread with EAL (`rte_thread_register`) and returns its lcore id.
/// A thread that already has one (EAL's own threads, or a second call) gets it back without
/// registering again. Worker threads call this first so that mbuf allocation and release go
/// through their mempool cache. The lcore id is released when the thread exits.
pub fn register_thread() -> Result<u32, DpdkError> {
    if running().is_none() {
        return Err(DpdkError::NotInitialized);
    }
    if let Some(id) = lcore_id() {
        return Ok(id);
    }
    // SAFETY: EAL is initialised and this thread has no lcore id yet.
    if unsafe { sys::rte_thread_register() } != 0 {
        return Err(call_error("rte_thread_register", errno()));
    }
    REGISTRATION.with(|r| r.0.set(true));
    lcore_id().ok_or_else(|| call_error("rte_thread_register", errno()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pmd_options_follow_the_program_name() {
        let args: Vec<String> = ["prog", "--no-huge", "--vdev=net_null0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let full = full_args(&args);
        assert_eq!(full[0], "prog");
        assert_eq!(&full[full.len() - 2..], &args[1..]);
        let extra = &full[1..full.len() - 2];
        assert_eq!(extra.len() % 2, 0);
        assert!(
            extra
                .chunks(2)
                .all(|c| c[0] == "-d" && Path::new(&c[1]).exists())
        );
        assert!(full_args(&[]).is_empty());
    }

    #[test]
    fn register_before_init_fails() {
        // No test in this binary starts EAL.
        assert_eq!(register_thread(), Err(DpdkError::NotInitialized));
    }
}
