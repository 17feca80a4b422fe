//! vbng-cups: the CUPS (control and user plane separation) protocol layer of vbng.
//!
//! PFCP (3GPP TS 29.244) as profiled by BBF TR-459 for a disaggregated BNG: the
//! control plane (vbng-cp) programs user planes (vbng-up) over PFCP on UDP 8805.
//!
//! # Module map
//!
//! - [`pfcp`]: the PFCP codec.
//!   - [`pfcp::header`]: the message header (version, FO/MP/S flags, SEID, sequence).
//!   - [`pfcp::ie`]: information elements, one file per group: IE type numbers
//!     (`ids`), TLV framing (`tlv`), node IEs (`node`: Node ID, Cause, F-SEID,
//!     feature bitmaps, user plane IP resources), packet detection (`pdi`), session
//!     rules (`rules`: PDR, FAR, URR, QER), usage reports (`report`) and the BBF TR-459 vendor IEs (`bbf`).
//!   - [`pfcp::ipoe`]: the messages that program one IPoE subscriber (the
//!     interface contract's rule ids, establishment, QER rate change, ACL
//!     change through predefined rules, and the IPv6 PDRs 3 and 4 carrying
//!     the session's prefix and delegated prefix), so the control plane and
//!     the user plane's tests share one builder.
//!   - [`pfcp::pppoe`]: the same for one PPPoE subscriber (TR-459 PPPoE Session
//!     ID, PPP Protocol, BBF Outer Header Removal/Creation and MTU IEs).
//!   - [`pfcp::message`]: the messages (heartbeat, association setup/release,
//!     session establishment/modification/deletion/report) with `parse`/`encode`.
//!   - [`pfcp::node`]: sans-IO helpers both peers use: sequence numbers, the
//!     outstanding-request table with T1/N1 retransmission, and association /
//!     heartbeat state with peer loss and restart detection.
//!
//! # Why our own codec
//!
//! We measured `rs-pfcp` 0.5 first. It encodes and decodes correctly (tshark
//! agrees), but: it is std-only, while the user plane also runs in a `no_std`
//! unikernel; the message header length is stored and not recomputed after an
//! edit, so a modified message goes out with a stale length; it pulls clap,
//! pcap-file and serde_yaml unconditionally; and it does not handle several PFCP
//! messages bundled in one datagram (TS 29.244 section 7.2.1A). This crate is
//! `no_std` + `alloc`, has one dependency (`thiserror`), computes every length
//! from the encoded body while encoding (there is no length field to go stale),
//! and parses bundled messages with [`pfcp::parse_all`].
//!
//! Only the IEs vbng uses are typed; every other IE is skipped on parse (and
//! counted, see [`pfcp::Message::parse_counting`]).
//!
//! Feature `std` (default) only switches `thiserror` to `std::error::Error`.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod pfcp;
