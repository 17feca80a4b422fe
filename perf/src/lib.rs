//! vbng-perf: the benchmark harness of vbng (ARCHITECTURE.md rule 7, "measured, not
//! assumed"). Every subcommand prints its figures next to a baseline measured in the same
//! run, as a readable table or, with `--json`, one JSON object per line and figure.
//!
//! # Module map
//! - [`report`]: [`report::Figure`], the table and the JSON line format.
//! - [`timing`]: wall-clock ns per packet, medians over repetitions, the machine line.
//! - [`qos`]: `vbng-perf qos`: per-subscriber shaping and scheduling in the downstream
//!   pipeline against the pipeline without QoS, the scheduler alone, and rate accuracy.
//! - [`acl`]: `vbng-perf acl`: classifying a packet against 10, 100 and 1000 ACL rules with
//!   the compiled bit-vector classifier, beside a linear first-match scan of the same rules.
//! - [`radius`]: `vbng-perf radius`: PAP authentications per second and CPU per request of
//!   vbng's RADIUS client against FreeRADIUS, beside a raw blaster against the same server.
//! - [`sessions`]: `vbng-perf sessions`: PPPoE or IPoE sessions set up and torn down per
//!   second end to end against vbng-cp (in process, with a fake user plane answering PFCP),
//!   beside the same client emulator against a canned responder.
//! - [`fastpath`]: `vbng-perf fastpath`: Mpps per worker core of the pipeline on DPDK ports
//!   (net_pcap replaying the trex-profiles traffic scheme) beside dpdk-testpmd io forwarding
//!   on the same devices; burst latency, instructions per packet, the 1 to 1M session curve.
//! - [`unikernel`]: `vbng-perf unikernel`: the per-customer vBNG image's boot time beside
//!   QEMU's own start, its size and memory, and the CPU and host memory of N concurrent
//!   instances idle and forwarding beside instances that only halt.
//!
//! The binary (`src/main.rs`) parses the command line; the criterion micro-benchmarks live
//! in `benches/`.

pub mod acl;
pub mod fastpath;
pub mod qos;
pub mod radius;
pub mod report;
pub mod sessions;
pub mod timing;
pub mod unikernel;
