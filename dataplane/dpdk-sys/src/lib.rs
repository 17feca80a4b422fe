//! Raw bindings to DPDK (22.11 or newer): EAL, lcores, mempools, mbufs and ethdev, generated
//! by bindgen from the installed headers (`pkg-config libdpdk`), plus `vbng_*` functions
//! from a small C shim that exports DPDK's `static inline` API (burst receive/transmit, mbuf
//! allocation and data access, `rte_errno`, `rte_lcore_id`, `rte_rdtsc`).
//!
//! Everything here is `unsafe` to call; `vbng_dataplane::host::dpdk` is the safe layer.
//!
//! [`PMD_LIBRARIES`] lists where the build found the shared libraries of the poll-mode
//! drivers `net_null`, `net_ring`, `net_pcap`, `net_af_packet`, `net_vhost` and
//! `net_virtio_user` (Debian ships each as its own `librte_net_*.so`, which a normal link
//! drops because nothing references them); pass each to EAL as `-d <path>`.
//!
//! The RSS hash-function bits (`RTE_ETH_RSS_*`, built from function-like macros in C) are
//! evaluated by clang at build time.

#![no_std]

#[allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    missing_docs,
    missing_debug_implementations,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::pedantic,
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block
)]
mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

pub use bindings::*;

include!(concat!(env!("OUT_DIR"), "/pmds.rs"));

/// Hash the layer-3 source address only (`RTE_BIT64(63)`, which bindgen cannot evaluate;
/// the C shim asserts the value at build time).
pub const RTE_ETH_RSS_L3_SRC_ONLY: u64 = 1 << 63;
