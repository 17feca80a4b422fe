//! DPDK ports (feature `dpdk`): a safe layer over `dpdk-sys`.
//!
//! ```text
//!   eal_init(args) ──► &'static Eal ──► Mempool::new ──► Arc<Mempool>
//!                                   └─► EthPort::by_name ──► configure_and_start(setup, pool)
//!                                                        └─► queue(q, port, pool) ──► DpdkQueue
//!   worker thread: register_thread(), then BufferPort::recv_buffers / send_buffer / release
//!   and Port::flush on its DpdkQueue (Port::recv_burst / send copy instead)
//! ```
//!
//! - [`eal_init`] starts the Environment Abstraction Layer once per process; later calls
//!   return the same [`Eal`] (or the first error again). It adds `-d <library>` for every
//!   poll-mode driver library the build found (`dpdk_sys::PMD_LIBRARIES`), so `--vdev`
//!   devices of `net_null`, `net_ring`, `net_pcap`, `net_af_packet`, `net_vhost` and
//!   `net_virtio_user` always have their driver.
//! - [`register_thread`] gives a thread that EAL did not start an lcore id, so the mempool's
//!   per-lcore cache serves it (an unregistered thread still works, through the shared
//!   ring). The registration ends when the thread exits.
//! - [`Mempool`] is a pool of packet buffers ([`Mbuf`]); [`EthPort`] is one ethdev port;
//!   [`DpdkQueue`] is one receive and one transmit queue of a port, owned by one worker. It
//!   implements [`crate::port::BufferPort`] with [`MbufSlot`]s: the pipeline rewrites each
//!   received mbuf in place and the same mbuf is transmitted (no copy, no allocation).
//!   [`crate::port::Port`] copies between mbufs and [`crate::packet::Frame`]s, for frames
//!   that do not come from a receive burst (the control plane's, the handoff queue's).
//!
//! # Lifetimes
//! Queues and ports hold an `Arc` of the mempool their buffers come from, and queues hold
//! the port's shared state, so the order in which they are dropped does not matter:
//! dropping the [`EthPort`] stops the device (after every queue's burst in progress has
//! returned; from then on the queues receive nothing and refuse to send), the device is
//! closed when its last queue is dropped too, and a mempool is freed after everything that
//! could hold its buffers. A mempool dropped while buffers are still out (an [`Mbuf`] kept
//! somewhere) is left allocated rather than freed under them.

#![allow(unsafe_code)]

mod eal;
mod mempool;
mod port;
mod queue;
mod slot;

use std::ffi::CStr;

pub use dpdk_sys as sys;
pub use eal::{Eal, eal_init, lcore_id, register_thread};
pub use mempool::{Mbuf, Mempool};
pub use port::{EthPort, EthStats, LinkStatus, PortSetup, RssOutcome, RssSetup};
pub use queue::DpdkQueue;
pub use slot::MbufSlot;

/// Frames one `rte_eth_rx_burst` / `rte_eth_tx_burst` call moves at most, and the number of
/// frames a [`DpdkQueue`] queues before it transmits on its own.
pub const BURST: usize = 32;

/// Data room of a default mbuf (bytes after the headroom): a whole
/// [`crate::packet::DATA_CAPACITY`] frame fits in one segment.
pub const DEFAULT_DATA_ROOM: u16 = (crate::packet::DATA_CAPACITY + HEADROOM) as u16;

/// Bytes DPDK reserves in front of the data of every mbuf (`RTE_PKTMBUF_HEADROOM`).
pub const HEADROOM: usize = sys::RTE_PKTMBUF_HEADROOM as usize;

/// Errors from DPDK calls. Every message is one line that names the DPDK call and gives
/// DPDK's own text for the error number (`rte_strerror`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpdkError {
    /// A DPDK call that is not about one port failed.
    #[error("{call} failed: {message} (errno {errno})")]
    Call {
        /// The DPDK function.
        call: &'static str,
        /// The error number (`rte_errno` or the negated return value).
        errno: i32,
        /// `rte_strerror(errno)`.
        message: String,
    },
    /// A DPDK call on a port failed.
    #[error("{call} on port {port:?} failed: {message} (errno {errno})")]
    Port {
        /// The DPDK function.
        call: &'static str,
        /// The port's name.
        port: String,
        /// The error number (negated return value or `rte_errno`).
        errno: i32,
        /// `rte_strerror(errno)`.
        message: String,
    },
    /// `rte_eth_dev_get_port_by_name` found no port with this name.
    #[error(
        "rte_eth_dev_get_port_by_name found no port {name:?}: expected a device given to EAL \
         (--vdev=<name>,... or -a <pci address>), named by the part before the first ','"
    )]
    NoSuchPort {
        /// The name asked for.
        name: String,
    },
    /// A call that needs EAL came before [`eal_init`] succeeded.
    #[error("DPDK EAL is not initialised: call eal_init first")]
    NotInitialized,
    /// An argument DPDK would reject, or a request the device cannot satisfy.
    #[error("{0}")]
    Invalid(String),
}

/// DPDK's text for an error number.
fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror accepts any value.
    let p = unsafe { sys::rte_strerror(errno) };
    // SAFETY: p is a NUL-terminated string (static, or a per-thread buffer for unknown
    // numbers) that stays valid until the next call on this thread; it is copied out at once.
    let text = unsafe { CStr::from_ptr(p) };
    text.to_string_lossy().into_owned()
}

/// The calling thread's `rte_errno`.
fn errno() -> i32 {
    // SAFETY: reads a thread-local integer.
    unsafe { sys::vbng_errno() }
}

/// A [`DpdkError::Call`] for `call` with error number `errno`.
fn call_error(call: &'static str, errno: i32) -> DpdkError {
    DpdkError::Call {
        call,
        errno,
        message: strerror(errno),
    }
}

/// A [`DpdkError::Port`] for `call` on `port` with error number `errno`.
fn port_error(call: &'static str, port: &str, errno: i32) -> DpdkError {
    DpdkError::Port {
        call,
        port: port.to_owned(),
        errno,
        message: strerror(errno),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}

    #[test]
    fn thread_safety_and_errors() {
        send_sync::<Eal>();
        send_sync::<Mempool>();
        send_sync::<EthPort>();
        send::<Mbuf>();
        send::<DpdkQueue>();
        assert_eq!(DEFAULT_DATA_ROOM, 2176);
        let e = port_error("rte_eth_dev_start", "net_null0", 22);
        assert_eq!(
            e.to_string(),
            "rte_eth_dev_start on port \"net_null0\" failed: Invalid argument (errno 22)"
        );
    }
}
