//! What the agent reports for the log: one [`AgentEvent`] per association change, session
//! change or rejected request, each rendered as one line.

use alloc::string::String;
use core::fmt;
use core::net::{Ipv4Addr, SocketAddr};

use vbng_cups::pfcp::{Cause, MessageType};

use crate::session::{AccessKey, UsageCounters};

/// Something worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEvent {
    /// A CP set up an association.
    Associated {
        /// CP address.
        peer: SocketAddr,
        /// CP Node ID.
        node_id: String,
        /// Sessions kept from before (a CP re-association).
        sessions_kept: usize,
    },
    /// The CP released the association (its sessions were removed).
    Released {
        /// CP address.
        peer: SocketAddr,
        /// Sessions removed.
        sessions_removed: usize,
    },
    /// The CP stopped answering heartbeats (sessions stay; forwarding continues).
    PeerLost {
        /// CP address.
        peer: SocketAddr,
    },
    /// The CP's Recovery Time Stamp changed: it restarted.
    PeerRestarted {
        /// CP address.
        peer: SocketAddr,
    },
    /// A session was installed.
    SessionEstablished {
        /// UP SEID.
        seid: u64,
        /// Access attachment.
        access: AccessKey,
        /// Subscriber address.
        ipv4: Ipv4Addr,
    },
    /// An establishment for the access key and address of an existing session took it over
    /// (a restarted CP re-programming a subscriber): forwarding and counters carry on.
    SessionAdopted {
        /// The UP SEID that no longer answers.
        old_seid: u64,
        /// The UP SEID given to the CP.
        new_seid: u64,
        /// The CP's SEID from the establishment.
        cp_seid: u64,
        /// Access attachment.
        access: AccessKey,
        /// Subscriber address.
        ipv4: Ipv4Addr,
    },
    /// A session was changed.
    SessionModified {
        /// UP SEID.
        seid: u64,
        /// Gate after the change.
        gate_open: bool,
    },
    /// A session was deleted.
    SessionDeleted {
        /// UP SEID.
        seid: u64,
        /// Final counters, if the worker answered in time.
        counters: Option<UsageCounters>,
    },
    /// A request was rejected.
    Rejected {
        /// Peer.
        peer: SocketAddr,
        /// Request type.
        msg_type: MessageType,
        /// Cause sent.
        cause: Cause,
        /// Why.
        reason: String,
    },
    /// A datagram that is not PFCP v1 was dropped.
    Malformed {
        /// Peer.
        peer: SocketAddr,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for AgentEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentEvent::Associated {
                peer,
                node_id,
                sessions_kept,
            } => write!(
                f,
                "pfcp association established peer={peer} cp_node_id={node_id} sessions_kept={sessions_kept}"
            ),
            AgentEvent::Released {
                peer,
                sessions_removed,
            } => write!(
                f,
                "pfcp association released peer={peer} sessions_removed={sessions_removed}"
            ),
            AgentEvent::PeerLost { peer } => write!(
                f,
                "pfcp peer lost (missed heartbeats) peer={peer}; sessions keep forwarding"
            ),
            AgentEvent::PeerRestarted { peer } => {
                write!(
                    f,
                    "pfcp peer restarted (recovery time stamp changed) peer={peer}"
                )
            }
            AgentEvent::SessionEstablished { seid, access, ipv4 } => write!(
                f,
                "session established seid={seid:#x} ipv4={ipv4} port={} svlan={} cvlan={} mac={}",
                access.port, access.svlan, access.cvlan, access.mac
            ),
            AgentEvent::SessionAdopted {
                old_seid,
                new_seid,
                cp_seid,
                access,
                ipv4,
            } => write!(
                f,
                "session adopted old_seid={old_seid:#x} new_seid={new_seid:#x} cp_seid={cp_seid:#x} ipv4={ipv4} port={} svlan={} cvlan={} mac={}",
                access.port, access.svlan, access.cvlan, access.mac
            ),
            AgentEvent::SessionModified { seid, gate_open } => {
                write!(f, "session modified seid={seid:#x} gate_open={gate_open}")
            }
            AgentEvent::SessionDeleted { seid, counters } => match counters {
                Some(c) => write!(
                    f,
                    "session deleted seid={seid:#x} ul_packets={} ul_bytes={} dl_packets={} dl_bytes={}",
                    c.ul_packets, c.ul_bytes, c.dl_packets, c.dl_bytes
                ),
                None => write!(f, "session deleted seid={seid:#x} counters=unavailable"),
            },
            AgentEvent::Rejected {
                peer,
                msg_type,
                cause,
                reason,
            } => write!(
                f,
                "pfcp request rejected peer={peer} type={} cause={cause:?} reason={reason:?}",
                msg_type.name()
            ),
            AgentEvent::Malformed { peer, reason } => {
                write!(f, "pfcp datagram dropped peer={peer} reason={reason:?}")
            }
        }
    }
}
