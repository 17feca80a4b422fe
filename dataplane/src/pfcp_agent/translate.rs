//! Translation of the CP's PDRs/FARs/URRs/QERs into the worker's [`SessionEntry`] (pure).
//!
//! A PPPoE session (BBF TR-459) is recognised by the BBF PPPoE Session ID in the PDI of
//! the uplink PDR that carries the subscriber's MAC: it becomes the access key's
//! `pppoe_session`. Its downlink FAR's BBF Outer Header Creation "PPP", if present, must
//! name the same session; its BBF MTU (any FAR's, else [`PPPOE_DEFAULT_MTU`] for PPPoE, 0
//! for IPoE) becomes the entry's `mtu`, and the MSS clamp is MTU - 40 (IPv4 and TCP
//! headers without options).
//!
//! IPv6: the session's prefix is the IPv6 UE IP Address of its PDRs with its IPv6 Prefix
//! Length (IP6PL; without it the address is a /128, which the user plane refuses: it
//! forwards prefixes of at most 64 bits), its delegated prefix the first Framed-IPv6-Route
//! of its PDRs (DHCPv6 IA_PD). The control plane puts both on the IPv6 PDRs it adds when
//! the session's IPv6 comes up.
//!
//! ACL: the session's PDRs may activate one predefined rule (TS 29.244 Activate Predefined
//! Rules), the name of an ACL in the user plane's ACL file; the control plane names it on
//! both PDRs (RADIUS Filter-Id or the subscriber's `filter`). It becomes the entry's `acl`
//! (its ingress rules for uplink packets, its egress rules for downlink). A name the user
//! plane does not know, or two different names, fail the rules.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr};

use vbng_cups::pfcp::{
    ApplyAction, BbfOuterHeaderCreation, CreateFar, CreatePdr, CreateQer, CreateUrr, Interface,
    MeasurementMethod, UsageReport, UsageReportTrigger, VolumeMeasurement,
};

use crate::acl::{AclSet, NO_ACL};
use crate::packet::PortId;
use crate::session::{AccessKey, SessionEntry, SessionId, SessionIpv6, SessionQos, UsageCounters};
use crate::wire::EthernetAddress;

/// Why a set of rules cannot be installed; becomes a Cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// No uplink PDR with an Ethernet Packet Filter MAC: no access key.
    #[error(
        "expected an uplink PDR (source interface Access) with an Ethernet Packet Filter MAC address"
    )]
    NoAccessMatch,
    /// The Logical Port is not an access port index.
    #[error(
        "expected BBF Logical Port with an access port index 0..{ports} as ASCII decimal, found {found:?}"
    )]
    BadLogicalPort {
        /// Valid range end.
        ports: usize,
        /// What was received.
        found: String,
    },
    /// No UE IPv4 address in any PDR.
    #[error("expected a UE IP Address with an IPv4 address in a PDR")]
    NoUeIpv4,
    /// Uplink and downlink PDRs name different addresses.
    #[error("UE IPv4 addresses disagree: uplink {ul}, downlink {dl}")]
    UeIpv4Mismatch {
        /// Uplink PDR address.
        ul: Ipv4Addr,
        /// Downlink PDR address.
        dl: Ipv4Addr,
    },
    /// Two PDRs name different IPv6 prefixes for the session.
    #[error("UE IPv6 prefixes disagree: {a}/{a_len} and {b}/{b_len}")]
    UeIpv6Mismatch {
        /// The first PDR's prefix.
        a: Ipv6Addr,
        /// Its length.
        a_len: u8,
        /// The other PDR's prefix.
        b: Ipv6Addr,
        /// Its length.
        b_len: u8,
    },
    /// An IPv6 prefix longer than /64 (or a bare IPv6 address, a /128).
    #[error("expected an IPv6 prefix of /1 to /64 in the {what}, found {prefix}/{len}")]
    Ipv6PrefixLength {
        /// "UE IP Address" or "Framed-IPv6-Route".
        what: &'static str,
        /// The prefix.
        prefix: Ipv6Addr,
        /// Its length.
        len: u8,
    },
    /// A PDR refers to a FAR or QER that does not exist.
    #[error("PDR {pdr} refers to {what} {id}, which does not exist")]
    DanglingReference {
        /// PDR id.
        pdr: u16,
        /// "FAR" or "QER".
        what: &'static str,
        /// Missing id.
        id: u32,
    },
    /// The PPPoE session id is 0 or 0xffff (RFC 2516 reserves both).
    #[error("expected a PPPoE session id 1..=0xfffe in the PPPoE Session ID IE, found {0:#06x}")]
    BadPppoeSession(u16),
    /// The downlink FAR encapsulates for a different PPPoE session than the uplink PDR
    /// matches (or the uplink PDR names none).
    #[error(
        "BBF Outer Header Creation names PPPoE session {downlink:#06x}, the uplink PDR {uplink:#06x}"
    )]
    PppoeSessionMismatch {
        /// Session of the uplink PDR (0: none).
        uplink: u16,
        /// Session of the downlink FAR's outer header creation.
        downlink: u16,
    },
    /// The PDRs activate a predefined rule (ACL) the user plane does not have.
    #[error("no ACL named {0:?} in the user plane's ACL file")]
    UnknownAcl(String),
    /// The PDRs activate more than one predefined rule: a session has one ACL.
    #[error("the PDRs activate ACLs {0:?} and {1:?}; a session takes one")]
    SeveralAcls(String, String),
    /// Another session already owns this access key or address.
    #[error("conflicts with session {other:#x}: same {what}")]
    Conflict {
        /// The other session.
        other: u64,
        /// "access key" or "IPv4 address".
        what: &'static str,
    },
}

/// The rules of one session as the CP created them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionRules {
    /// PDRs by id.
    pub pdrs: Vec<CreatePdr>,
    /// FARs.
    pub fars: Vec<CreateFar>,
    /// URRs.
    pub urrs: Vec<CreateUrr>,
    /// QERs.
    pub qers: Vec<CreateQer>,
}

/// MTU of a PPPoE session whose rules carry no BBF MTU IE (RFC 2516 section 7).
pub const PPPOE_DEFAULT_MTU: u16 = 1492;

/// IPv4 + TCP header octets (no options) between the MTU and the TCP MSS.
const TCP_IPV4_HEADERS: u16 = 40;

/// Parses a BBF Logical Port value (ASCII decimal access port index). Pure.
pub fn parse_logical_port(data: &[u8], access_ports: usize) -> Result<PortId, RuleError> {
    let bad = || RuleError::BadLogicalPort {
        ports: access_ports,
        found: String::from_utf8_lossy(data).into_owned(),
    };
    let s = core::str::from_utf8(data).map_err(|_| bad())?;
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let idx: usize = s.parse().map_err(|_| bad())?;
    if idx >= access_ports {
        return Err(bad());
    }
    Ok(idx as PortId)
}

/// The ACL the session's PDRs activate, resolved in `acls` ([`NO_ACL`] for none). Pure.
pub fn session_acl(rules: &SessionRules, acls: &AclSet) -> Result<crate::acl::AclId, RuleError> {
    let mut name: Option<&str> = None;
    for n in rules
        .pdrs
        .iter()
        .flat_map(|p| p.activate_predefined_rules.iter())
    {
        match name {
            Some(first) if first != n => {
                return Err(RuleError::SeveralAcls(first.to_string(), n.clone()));
            }
            _ => name = Some(n),
        }
    }
    match name {
        None => Ok(NO_ACL),
        Some(n) => acls
            .id(n)
            .ok_or_else(|| RuleError::UnknownAcl(n.to_string())),
    }
}

/// Derives the worker's session entry from the CP's rules, resolving its ACL in `acls`.
/// Pure.
pub fn derive_entry(
    id: SessionId,
    rules: &SessionRules,
    access_ports: usize,
    acls: &AclSet,
) -> Result<SessionEntry, RuleError> {
    let mut access = None;
    let (mut ul_ip, mut dl_ip) = (None, None);
    let mut gate_open = true;
    let mut qos = SessionQos::UNLIMITED;
    let mut ohc_session = None;
    let mut mtu = None;
    let (mut ipv6_prefix, mut delegated): (Option<(Ipv6Addr, u8)>, _) = (None, None);
    for pdr in &rules.pdrs {
        let uplink = pdr.pdi.source_interface == Interface::Access;
        if let Some(ue) = pdr.pdi.ue_ip_address
            && let Some(addr) = ue.ipv6
        {
            let this = (addr, ue.ipv6_prefix_len.unwrap_or(128));
            match ipv6_prefix {
                None => ipv6_prefix = Some(this),
                Some(first) if same_prefix(first, this) => {}
                Some((a, a_len)) => {
                    return Err(RuleError::UeIpv6Mismatch {
                        a,
                        a_len,
                        b: this.0,
                        b_len: this.1,
                    });
                }
            }
        }
        if delegated.is_none()
            && let Some(route) = pdr.pdi.framed_ipv6_routes.first()
        {
            delegated = Some((route.prefix, route.len));
        }
        if let Some(ue) = pdr.pdi.ue_ip_address.and_then(|u| u.ipv4) {
            if uplink {
                ul_ip.get_or_insert(ue);
            } else {
                dl_ip.get_or_insert(ue);
            }
        }
        if uplink
            && access.is_none()
            && let Some(mac) = pdr
                .pdi
                .ethernet_packet_filter
                .as_ref()
                .and_then(|f| f.mac_address.as_ref())
                .and_then(|m| m.source)
        {
            let filter = pdr.pdi.ethernet_packet_filter.as_ref();
            let port = match &pdr.pdi.logical_port {
                Some(lp) => parse_logical_port(lp, access_ports)?,
                None => {
                    return Err(RuleError::BadLogicalPort {
                        ports: access_ports,
                        found: String::new(),
                    });
                }
            };
            let pppoe_session = match pdr.pdi.pppoe_session_id {
                Some(id @ (0 | 0xffff)) => return Err(RuleError::BadPppoeSession(id)),
                Some(id) => id,
                None => 0,
            };
            access = Some(AccessKey {
                port,
                svlan: filter.and_then(|f| f.s_tag).unwrap_or(0) & 0x0fff,
                cvlan: filter.and_then(|f| f.c_tag).unwrap_or(0) & 0x0fff,
                mac: EthernetAddress(mac),
                pppoe_session,
            });
        }
        if let Some(far_id) = pdr.far_id {
            let far = rules.fars.iter().find(|f| f.far_id == far_id).ok_or(
                RuleError::DanglingReference {
                    pdr: pdr.pdr_id,
                    what: "FAR",
                    id: far_id,
                },
            )?;
            let forwards = far.apply_action.contains(ApplyAction::FORW)
                && !far.apply_action.contains(ApplyAction::DROP);
            gate_open &= forwards;
            if let Some(fp) = &far.forwarding_parameters {
                if let Some(ohc) = fp.bbf_outer_header_creation
                    && ohc.description == BbfOuterHeaderCreation::PPP
                {
                    ohc_session.get_or_insert(ohc.session_id);
                }
                if let Some(m) = fp.bbf_mtu {
                    mtu.get_or_insert(m);
                }
            }
        }
        for &qer_id in &pdr.qer_ids {
            let qer = rules.qers.iter().find(|q| q.qer_id == qer_id).ok_or(
                RuleError::DanglingReference {
                    pdr: pdr.pdr_id,
                    what: "QER",
                    id: qer_id,
                },
            )?;
            gate_open &= if uplink {
                qer.gate_status.ul_open
            } else {
                qer.gate_status.dl_open
            };
            if let Some(mbr) = qer.mbr {
                if uplink {
                    qos.ul_rate_bps = apply_mbr(qos.ul_rate_bps, mbr.ul_kbps);
                } else {
                    qos.dl_rate_bps = apply_mbr(qos.dl_rate_bps, mbr.dl_kbps);
                }
            }
        }
    }
    let access = access.ok_or(RuleError::NoAccessMatch)?;
    let acl = session_acl(rules, acls)?;
    if let Some(downlink) = ohc_session
        && downlink != access.pppoe_session
    {
        return Err(RuleError::PppoeSessionMismatch {
            uplink: access.pppoe_session,
            downlink,
        });
    }
    let mtu = match mtu {
        Some(m) => m,
        None if access.is_pppoe() => PPPOE_DEFAULT_MTU,
        None => 0,
    };
    let checked = |what, p: Option<(Ipv6Addr, u8)>| match p {
        Some((prefix, len)) if !(1..=64).contains(&len) => {
            Err(RuleError::Ipv6PrefixLength { what, prefix, len })
        }
        _ => Ok(p),
    };
    let (ipv6_prefix, delegated) = (
        checked("UE IP Address", ipv6_prefix)?,
        checked("Framed-IPv6-Route", delegated)?,
    );
    // Both lengths are 1-64 now, all that `new` checks.
    let ipv6 = SessionIpv6::new(ipv6_prefix, delegated).unwrap_or(SessionIpv6::NONE);
    let ipv4 = match (ul_ip, dl_ip) {
        (Some(ul), Some(dl)) if ul != dl => return Err(RuleError::UeIpv4Mismatch { ul, dl }),
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => return Err(RuleError::NoUeIpv4),
    };
    Ok(SessionEntry {
        id,
        access,
        ipv4,
        gate_open,
        qos,
        mtu,
        mss_clamp: mtu.saturating_sub(TCP_IPV4_HEADERS),
        acl,
        counters: UsageCounters::default(),
        ipv6,
    })
}

/// True if the two prefixes have the same length and the same bits within it.
fn same_prefix(a: (Ipv6Addr, u8), b: (Ipv6Addr, u8)) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(a.1)).unwrap_or(0);
    a.1 == b.1 && a.0.to_bits() & mask == b.0.to_bits() & mask
}

/// The rate limit after applying one more QER MBR field of `kbps` to `current`: MBR is in
/// kbit/s (TS 29.244 8.2.8), the session rate in bit/s; 0 means "no limit" (the control
/// plane sends MBR ul=0, dl=0 to lift a limit, because an Update QER without MBR means
/// "unchanged"); with several QERs on one direction the smallest limit wins. Pure.
pub fn apply_mbr(current: Option<u64>, kbps: u64) -> Option<u64> {
    if kbps == 0 {
        return current;
    }
    let bps = kbps.saturating_mul(1000);
    Some(current.map_or(bps, |c| c.min(bps)))
}

/// Usage reports for the volume-measuring URRs of a deleted session. Pure.
pub fn deletion_reports(
    urrs: &[CreateUrr],
    counters: &UsageCounters,
    ur_seqn: u32,
) -> Vec<UsageReport> {
    urrs.iter()
        .filter(|u| u.measurement_method.contains(MeasurementMethod::VOLUM))
        .map(|u| UsageReport {
            urr_id: u.urr_id,
            ur_seqn,
            trigger: UsageReportTrigger::TERMR,
            volume: Some(VolumeMeasurement::from_counters(
                counters.ul_packets,
                counters.ul_bytes,
                counters.dl_packets,
                counters.dl_bytes,
            )),
            start_time: None,
            end_time: None,
        })
        .collect()
}

/// The next UR-SEQN of each URR of one session: TS 29.244 8.2.77 numbers the reports of a
/// URR 0, 1, 2... (modulo 2^32), whatever made the UP send them (query, deletion).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrSeqns(BTreeMap<u32, u32>);

impl UrSeqns {
    /// The UR-SEQN for the next report of `urr_id`, counting it as sent.
    pub fn take(&mut self, urr_id: u32) -> u32 {
        let next = self.0.entry(urr_id).or_insert(0);
        let seqn = *next;
        *next = next.wrapping_add(1);
        seqn
    }
}

/// One usage report per URR of `urrs`, with `trigger` and the next UR-SEQN of each URR from
/// `seqns`. A URR that measures volume carries the session's counters, which are cumulative
/// since the session was established (vbng never resets them between reports, so every
/// report of a session is a running total). Pure apart from advancing `seqns`.
pub fn usage_reports<'a>(
    urrs: impl IntoIterator<Item = &'a CreateUrr>,
    counters: &UsageCounters,
    trigger: UsageReportTrigger,
    seqns: &mut UrSeqns,
) -> Vec<UsageReport> {
    urrs.into_iter()
        .map(|u| UsageReport {
            urr_id: u.urr_id,
            ur_seqn: seqns.take(u.urr_id),
            trigger,
            volume: u
                .measurement_method
                .contains(MeasurementMethod::VOLUM)
                .then(|| {
                    VolumeMeasurement::from_counters(
                        counters.ul_packets,
                        counters.ul_bytes,
                        counters.dl_packets,
                        counters.dl_bytes,
                    )
                }),
            start_time: None,
            end_time: None,
        })
        .collect()
}
