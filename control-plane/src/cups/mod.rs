//! PFCP client side of the control plane (TS 29.244, BBF TR-459).
//!
//! - [`program`]: the subscriber session messages, exactly as the
//!   interface contract's "PFCP programming of one IPoE subscriber", and the
//!   live changes ([`LiveChange`]): the rate (Update QER; an MBR of 0 means
//!   "no limit", see [`vbng_cups::pfcp::ipoe`]'s "Rates") and the ACL
//!   (Update PDR with Activate/Deactivate Predefined Rules), built by
//!   `vbng_cups::pfcp::ipoe` from a [`SubscriberSession`]; and the
//!   session's IPv6 PDRs ([`program::ipv6_change`]: Create, Remove and
//!   Create, or Remove PDR 3 and 4), which carry its [`Ipv6Prefixes`].
//! - [`peer`]: one task per configured user plane: Association Setup
//!   (retried until answered), heartbeats both ways, loss detection and
//!   restart detection, request/response matching with T1/N1 retransmission
//!   (`vbng_cups::pfcp::node`), and the [`UpHandle`] used to program it.
//! - [`socket`]: the CP's PFCP socket, shared by the peer tasks; received
//!   datagrams are dispatched to the peer task by source address.

pub mod peer;
pub mod program;
pub mod socket;

use std::net::Ipv4Addr;

use vbng_cups::pfcp::{Cause, UsageReport};

pub use vbng_cups::pfcp::ipoe::Ipv6Prefixes;

use crate::aaa::Rate;

pub use peer::{UpHandle, UpState};
pub use socket::start;

/// The PPPoE part of a subscriber session (absent for IPoE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PppoeAccess {
    /// PPPoE session id (RFC 2516).
    pub session_id: u16,
    /// MTU of the session's IPv4 packets (1492 on Ethernet).
    pub mtu: u16,
}

/// What the control plane programs for one IPoE or PPPoE subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberSession {
    /// CP SEID (the session id).
    pub cp_seid: u64,
    /// Subscriber IPv4 address.
    pub ipv4: Ipv4Addr,
    /// Subscriber MAC (uplink source MAC filter).
    pub mac: [u8; 6],
    /// Access port index on the user plane (BBF Logical Port).
    pub port: u8,
    /// Outer VLAN id, 0 if none (S-TAG).
    pub svlan: u16,
    /// Inner VLAN id, 0 if none (C-TAG).
    pub cvlan: u16,
    /// Peak rates (QER MBR), if limited; a 0 in one direction means no
    /// limit in that direction.
    pub rate: Option<Rate>,
    /// PPPoE session id and MTU, for a PPPoE subscriber.
    pub pppoe: Option<PppoeAccess>,
    /// Name of the user plane ACL the session gets (RADIUS Filter-Id or
    /// the subscriber file's `filter`): both PDRs carry it as Activate
    /// Predefined Rules. A user plane that does not know the name refuses
    /// the establishment (cause 73, Rule creation/modification failure).
    pub acl: Option<String>,
    /// The session's IPv6 prefixes (a PPPoE session's /64 once IPv6CP is
    /// open, its DHCPv6 delegated prefix once bound), programmed as PDRs 3
    /// and 4 beside the IPv4 ones; `None`: IPv4 only.
    pub ipv6: Option<Ipv6Prefixes>,
}

/// A change of a programmed session, sent as one PFCP Session Modification
/// Request so that the user plane accepts or refuses it as a whole. A
/// `None` field is left as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveChange {
    /// New peak rates; `Some(None)` lifts the limit.
    pub rate: Option<Option<Rate>>,
    /// New ACL.
    pub acl: Option<AclChange>,
    /// The session's IPv6 PDRs are installed: an ACL change updates them
    /// too (they carry the same ACL as the IPv4 PDRs).
    pub ipv6_pdrs: bool,
}

/// Replacing a session's ACL: the name programmed now is deactivated and
/// the new one activated, on both PDRs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclChange {
    /// The ACL the session has now, if any.
    pub from: Option<String>,
    /// The ACL it is to get; `None` leaves it without one.
    pub to: Option<String>,
}

/// Traffic volume from a usage report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Uplink bytes.
    pub ul_bytes: u64,
    /// Downlink bytes.
    pub dl_bytes: u64,
    /// Uplink packets.
    pub ul_packets: u64,
    /// Downlink packets.
    pub dl_packets: u64,
}

impl Usage {
    /// The volume measurement of the first report for URR 1 (or the first report).
    pub fn from_reports(reports: &[UsageReport]) -> Option<Usage> {
        let r = reports
            .iter()
            .find(|r| r.urr_id == program::URR_ID)
            .or_else(|| reports.first())?;
        let v = r.volume?;
        Some(Usage {
            ul_bytes: v.ul_bytes,
            dl_bytes: v.dl_bytes,
            ul_packets: v.ul_packets,
            dl_packets: v.dl_packets,
        })
    }
}

/// A change of a user plane's association, for the session registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpEvent {
    /// Heartbeats went unanswered (or the UP released the association).
    Down {
        /// User plane index.
        up: u32,
    },
    /// Association (re-)established.
    Up {
        /// User plane index.
        up: u32,
        /// The UP restarted in between (recovery time stamp changed): its
        /// sessions are gone and must be programmed again.
        restarted: bool,
    },
}

/// Why a PFCP operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CupsError {
    /// The user plane is not associated.
    #[error("user plane {0} is not associated")]
    NotAssociated(String),
    /// No response after N1 retransmissions.
    #[error("user plane {up}: no response to {msg} after retransmissions")]
    Timeout {
        /// User plane name.
        up: String,
        /// Request type.
        msg: &'static str,
    },
    /// The user plane answered with a rejection cause.
    #[error("user plane {up} rejected {msg}: cause {cause:?}")]
    Rejected {
        /// User plane name.
        up: String,
        /// Request type.
        msg: &'static str,
        /// Cause received.
        cause: Cause,
    },
    /// The answer was not the expected response type or lacked an IE.
    #[error("user plane {up}: unexpected answer to {msg}: expected {expected}")]
    Unexpected {
        /// User plane name.
        up: String,
        /// Request type.
        msg: &'static str,
        /// What was expected.
        expected: &'static str,
    },
    /// The peer task is gone (shutting down).
    #[error("PFCP client for user plane {0} stopped")]
    Stopped(String),
}
