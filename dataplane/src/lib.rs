//! vbng-dataplane: the user plane fast path of vbng.
//!
//! `no_std` + `alloc`. The same pipeline runs in the hosted `vbng-up` (feature `std`:
//! AF_PACKET/DPDK ports, PFCP agent, metrics) and in the unikernel on virtio-net queues.
//!
//! # Module map
//! - [`wire`]: zero-copy header views and `Repr`s for Ethernet, 802.1Q/802.1ad, ARP, IPv4, IPv6, ICMPv6,
//!   UDP, TCP (with MSS clamping), ICMPv4, GTP-U, the PPPoE session header, the Internet checksum (RFC 1071/1624) and whole-frame builders
//!   ([`wire::frame`]).
//! - [`cpr`]: control-packet redirect framing: control frames to and from the CP as G-PDUs.
//! - [`packet`]: [`packet::Frame`], the reusable packet buffer with headroom, and port ids.
//! - [`port`]: the [`port::Port`] trait (burst receive, queued send, flush) and
//!   [`port::MemoryPort`] for tests.
//! - [`session`]: the subscriber session table, indexed by access key (port, S-VLAN,
//!   C-VLAN, MAC) and by IPv4 address.
//! - [`pipeline`]: the burst pipeline: classify, anti-spoof, route to the core with next-hop
//!   ARP, downstream lookup and VLAN push, control-frame redirect under a rate limit, and
//!   per-subscriber QoS ([`pipeline::Pipeline::with_qos`]: downstream shaping through a
//!   `vbng_qos` scheduler over a preallocated frame pool, upstream srTCM policing).
//! - [`rss`]: which worker owns a frame (Toeplitz hash of the subscriber address and a
//!   redirection table, as NIC receive side scaling computes it).
//! - [`acl`]: named access control lists, compiled into a first-match classifier whose cost
//!   stays nearly flat up to a thousand rules, and the [`acl::AclSet`] of them a pipeline holds.
//! - [`nat`]: per-worker NAT44/CGNAT (RFC 6888, 4787, 5382, 5508): paired address pooling,
//!   per-subscriber port blocks with port-block logging, endpoint-independent mapping and
//!   filtering, hairpinning, ICMP error translation, bounded expiry.
//! - [`route`]: longest-prefix match for IPv4 (DIR-24-8, [`route::Lpm4`]) and IPv6 (multibit
//!   trie, [`route::Lpm6`]), ICMP error generation under a rate limit, TTL / hop-limit decrement.
//! - `pfcp_agent` (feature `pfcp`, on with `std`): the PFCP user-plane function, sans-IO:
//!   association, heartbeats, session rules translated into session table entries.
//! - `host` (feature `std`): the hosted `vbng-up` runtime.
//!
//! Per-packet code never allocates, never logs and never panics on input bytes.

#![cfg_attr(not(feature = "std"), no_std)]
// The portable core never uses unsafe. The hosted runtime (`host`, feature `std`) talks to
// the kernel (AF_PACKET) and allows it locally, with a SAFETY comment on every block.
#![cfg_attr(not(feature = "std"), forbid(unsafe_code))]
#![cfg_attr(feature = "std", deny(unsafe_code))]
#![warn(missing_docs)]

extern crate alloc;

pub mod acl;
pub mod cpr;
pub mod isa;
mod lanes;
pub mod nat;
pub mod packet;
#[cfg(feature = "pfcp")]
pub mod pfcp_agent;
pub mod pipeline;
pub mod port;
pub mod prefetch;
mod prefix64;
pub mod route;
pub mod rss;
pub mod session;
mod tag_index;
pub mod wire;

#[cfg(feature = "std")]
pub mod host;
