//! The PFCP messages that program one IPoE subscriber, as the interface
//! contract specifies (both ends agree on these rule ids). The control plane
//! sends exactly these; the user plane's tests feed them to its agent.
//!
//! One session is an uplink PDR [`PDR_UPLINK`] (source interface Access, UE
//! IP address as source, an Ethernet packet filter on the subscriber's source
//! MAC and VLAN tags, and the BBF Logical Port), a downlink PDR
//! [`PDR_DOWNLINK`] (source interface Core, UE IP address as destination),
//! FARs [`FAR_TO_CORE`] and [`FAR_TO_ACCESS`] (forward), the volume URR
//! [`URR_ID`] and the QER [`QER_ID`] shared by both PDRs.
//!
//! # Rates: the QER maximum bit rate
//!
//! Both PDRs use the one QER [`QER_ID`]; its MBR (TS 29.244 section 8.2.8)
//! carries the subscriber's peak rates in kbit/s (uplink = subscriber to
//! core, downlink = core to subscriber; bit/s = kbit/s * 1000, measured on
//! the IPv4 packet). In both directions, **an MBR value of 0 means "no
//! limit"** in that direction:
//!
//! - Create QER (establishment, [`establishment_request`]): the session's
//!   `rate` becomes the MBR; a session without a rate gets no MBR IE.
//! - Update QER (live change, [`rate_change_request`]): an Update QER without
//!   an MBR leaves the rate unchanged, so a change to "unlimited" is sent as
//!   MBR UL = 0, DL = 0 rather than by leaving the IE out.
//!
//! The user plane (vbng-dataplane's PFCP agent) gives 0 the same meaning.
//!
//! # ACLs: predefined rules
//!
//! A session's ACL is named, not sent: the user plane loads its ACLs from its
//! own file, and the control plane selects one by name (the RADIUS Filter-Id)
//! with an Activate Predefined Rules IE (TS 29.244 section 8.2.72) in **both**
//! PDRs, so uplink and downlink packets see the same ACL.
//!
//! - Establishment ([`establishment_request`]): `acl` becomes the Activate
//!   Predefined Rules of both Create PDRs; no ACL, no IE.
//! - Live change ([`acl_change_request`]): an Update PDR for each PDR that
//!   deactivates the old name and activates the new one.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use super::{
    ApplyAction, CreateFar, CreatePdr, CreateQer, CreateUrr, EthernetPacketFilter, FSeid,
    ForwardingParameters, GateStatus, Interface, MacAddress, Mbr, MeasurementMethod, NodeId, Pdi,
    SessionEstablishmentRequest, SessionModificationRequest, UeIpAddress, UpdatePdr, UpdateQer,
};

/// Uplink PDR id.
pub const PDR_UPLINK: u16 = 1;
/// Downlink PDR id.
pub const PDR_DOWNLINK: u16 = 2;
/// FAR towards the core.
pub const FAR_TO_CORE: u32 = 1;
/// FAR towards the access side.
pub const FAR_TO_ACCESS: u32 = 2;
/// The volume URR shared by both PDRs.
pub const URR_ID: u32 = 1;
/// The QER shared by both PDRs.
pub const QER_ID: u32 = 1;
/// Precedence of both PDRs.
pub const PRECEDENCE: u32 = 100;

/// What the control plane programs for one IPoE subscriber, as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpoeSession {
    /// CP SEID (the session id), sent in the CP F-SEID.
    pub cp_seid: u64,
    /// The control plane's IPv4 address, sent in the CP F-SEID.
    pub cp_ipv4: Ipv4Addr,
    /// The control plane's node id.
    pub node_id: NodeId,
    /// Subscriber IPv4 address (UE IP address of both PDRs).
    pub ue_ipv4: Ipv4Addr,
    /// Subscriber MAC (uplink source MAC filter).
    pub mac: [u8; 6],
    /// Access port index on the user plane, sent in decimal as the BBF
    /// Logical Port.
    pub port: u8,
    /// Outer VLAN id (S-TAG), 0 if none.
    pub svlan: u16,
    /// Inner VLAN id (C-TAG), 0 if none.
    pub cvlan: u16,
    /// Peak rates (the QER's MBR), `None` for no MBR IE.
    pub rate: Option<Mbr>,
    /// Name of the user plane ACL applied to the session's traffic (the
    /// Activate Predefined Rules of both PDRs), `None` for no ACL IE.
    pub acl: Option<String>,
}

/// Session Establishment Request for `s`.
pub fn establishment_request(s: &IpoeSession) -> SessionEstablishmentRequest {
    let nonzero = |v: u16| (v != 0).then_some(v);
    let acl: Vec<String> = s.acl.iter().cloned().collect();
    let uplink = CreatePdr {
        pdr_id: PDR_UPLINK,
        precedence: PRECEDENCE,
        pdi: Pdi {
            source_interface: Interface::Access,
            ue_ip_address: Some(UeIpAddress {
                ipv4: Some(s.ue_ipv4),
                ipv6: None,
                is_destination: false,
            }),
            ethernet_packet_filter: Some(EthernetPacketFilter {
                mac_address: Some(MacAddress::source(s.mac)),
                c_tag: nonzero(s.cvlan),
                s_tag: nonzero(s.svlan),
                ..Default::default()
            }),
            logical_port: Some(s.port.to_string().into_bytes()),
            ..Default::default()
        },
        far_id: Some(FAR_TO_CORE),
        urr_ids: vec![URR_ID],
        qer_ids: vec![QER_ID],
        activate_predefined_rules: acl.clone(),
        ..Default::default()
    };
    let downlink = CreatePdr {
        pdr_id: PDR_DOWNLINK,
        precedence: PRECEDENCE,
        pdi: Pdi {
            source_interface: Interface::Core,
            ue_ip_address: Some(UeIpAddress {
                ipv4: Some(s.ue_ipv4),
                ipv6: None,
                is_destination: true,
            }),
            ..Default::default()
        },
        far_id: Some(FAR_TO_ACCESS),
        urr_ids: vec![URR_ID],
        qer_ids: vec![QER_ID],
        activate_predefined_rules: acl,
        ..Default::default()
    };
    let far = |far_id, dest| CreateFar {
        far_id,
        apply_action: ApplyAction::FORW,
        forwarding_parameters: Some(ForwardingParameters {
            destination_interface: dest,
            ..Default::default()
        }),
    };
    SessionEstablishmentRequest {
        node_id: s.node_id.clone(),
        cp_f_seid: FSeid {
            seid: s.cp_seid,
            ipv4: Some(s.cp_ipv4),
            ipv6: None,
        },
        create_pdrs: vec![uplink, downlink],
        create_fars: vec![
            far(FAR_TO_CORE, Interface::Core),
            far(FAR_TO_ACCESS, Interface::Access),
        ],
        create_urrs: vec![CreateUrr {
            urr_id: URR_ID,
            measurement_method: MeasurementMethod::VOLUM,
            ..Default::default()
        }],
        create_qers: vec![CreateQer {
            qer_id: QER_ID,
            gate_status: GateStatus::OPEN,
            mbr: s.rate,
        }],
    }
}

/// The MBR of a live rate change: `rate`, or UL = 0, DL = 0 ("no limit")
/// for `None`, so the Update QER always carries an MBR.
pub fn update_mbr(rate: Option<Mbr>) -> Mbr {
    rate.unwrap_or(Mbr {
        ul_kbps: 0,
        dl_kbps: 0,
    })
}

/// Session Modification Request changing the subscriber's rate live:
/// Update QER [`QER_ID`] with [`update_mbr`]`(rate)` and nothing else (the
/// gate is left as it is).
pub fn rate_change_request(rate: Option<Mbr>) -> SessionModificationRequest {
    modify_qer_request(None, Some(update_mbr(rate)))
}

/// Session Modification Request updating QER [`QER_ID`] (gate and/or MBR);
/// a `None` leaves that part unchanged (use [`rate_change_request`] to lift a
/// limit).
pub fn modify_qer_request(
    gate: Option<GateStatus>,
    mbr: Option<Mbr>,
) -> SessionModificationRequest {
    SessionModificationRequest {
        update_qers: vec![UpdateQer {
            qer_id: QER_ID,
            gate_status: gate,
            mbr,
        }],
        ..Default::default()
    }
}

/// Session Modification Request asking for the usage of URR [`URR_ID`] now
/// (one Query URR IE, TS 29.244 Table 7.5.4.10-1) and changing nothing. The
/// response carries a usage report with trigger IMMER; vbng's user plane
/// reports the volume counted since the session was established (the same
/// cumulative figure the deletion report gives), not since the last report.
pub fn query_usage_request() -> SessionModificationRequest {
    SessionModificationRequest {
        query_urrs: vec![URR_ID],
        ..Default::default()
    }
}

/// Session Modification Request replacing the session's ACL `old` by `new`
/// live: one Update PDR for [`PDR_UPLINK`] and one for [`PDR_DOWNLINK`], each
/// deactivating `old` (when it is set and differs from `new`) and activating
/// `new` (when set). `None` means "no ACL": `(Some(a), None)` removes the ACL.
/// With `old == new` nothing is deactivated, so the ACL is never briefly off.
pub fn acl_change_request(old: Option<&str>, new: Option<&str>) -> SessionModificationRequest {
    let deactivate: Vec<String> = old
        .filter(|&old| Some(old) != new)
        .map(String::from)
        .into_iter()
        .collect();
    let activate: Vec<String> = new.map(String::from).into_iter().collect();
    let update = |pdr_id| UpdatePdr {
        pdr_id,
        activate_predefined_rules: activate.clone(),
        deactivate_predefined_rules: deactivate.clone(),
    };
    SessionModificationRequest {
        update_pdrs: vec![update(PDR_UPLINK), update(PDR_DOWNLINK)],
        ..Default::default()
    }
}
