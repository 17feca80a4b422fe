//! The hosted `vbng-up` runtime (feature `std`): real ports, threads, PFCP, metrics.
//!
//! ```text
//!   AF_PACKET or DPDK ──► worker threads (one Pipeline each, ──► AF_PACKET or DPDK
//!   port queues           poll-mode; frames handed to owner)     port queues
//!                        ▲ commands   │ ToControlPlane frames    ▲ frames from the CP
//!                        │            ▼                          │
//!   PFCP agent thread ───┘     GTP-U sender ──► CP       GTP-U receiver ◄── CP
//!   (UDP 8805)                 (G-PDU, TEID = access port)
//!   metrics thread: GET /metrics from counters the worker publishes every few ms
//! ```
//!
//! Threads talk through preallocated lock-free queues (`crossbeam-queue`); the worker never
//! blocks, allocates or logs per packet.
//!
//! - [`afpacket`]: AF_PACKET port with PACKET_MMAP TPACKET_V2 RX/TX rings.
//! - `dpdk` (feature `dpdk`): EAL, mbuf pools, ethdev ports with several queues and RSS,
//!   and the per-worker queue port, over `dpdk-sys`.
//! - [`config`]: TOML file + flags + embedded defaults, one-line errors.
//! - [`worker`]: the poll-mode loop and the state it shares with the other threads.
//! - [`pfcp_agent`]: the PFCP user-plane function ([`crate::pfcp_agent`]) and
//!   [`pfcp_runtime`], the thread that owns its UDP socket.
//! - [`redirect`]: control frames to and from the CP over GTP-U.
//! - [`metrics`]: Prometheus text exposition over a tiny HTTP server.
//! - [`channel`]: the fixed-buffer frame queues between threads.
//! - [`wake`]: eventfd + poll(2) so an idle worker sleeps instead of spinning.
//! - [`signals`]: SIGINT/SIGTERM to a shutdown flag.
//! - [`log`]: one-line structured log records on stderr.
//! - [`hugepages`]: the global allocator that backs the large tables with huge pages.

#[allow(unsafe_code)]
pub mod afpacket;
pub mod channel;
pub mod config;
#[cfg(feature = "dpdk")]
pub mod dpdk;
#[allow(unsafe_code)]
pub mod hugepages;
pub mod log;
pub mod metrics;
pub mod nat_ipfix;
/// The PFCP agent (`crate::pfcp_agent`) with its hosted runtime.
pub mod pfcp_agent {
    pub use super::pfcp_runtime::{AclReload, AgentPublished, run};
    pub use crate::pfcp_agent::*;
}
pub mod pfcp_runtime;
pub mod redirect;
#[allow(unsafe_code)]
pub mod signals;
#[allow(unsafe_code)]
pub mod wake;
pub mod worker;
