//! The PFCP messages that program one PPPoE subscriber (BBF TR-459 over
//! TS 29.244). Rule ids, the URR, the QER and its MBR semantics are those of
//! [`super::ipoe`] (re-exported here), so rate changes and usage queries of a
//! PPPoE session use the same modification requests.
//!
//! What differs from an IPoE session:
//!
//! - the uplink PDR's PDI also carries the BBF PPPoE Session ID (vendor IE
//!   32772) and the BBF PPP Protocol "data" (32773): it matches the
//!   subscriber's PPP data packets on that session; PPP control packets (LCP,
//!   PAP, CHAP, IPCP...) and PPPoE discovery go to the control plane;
//! - the uplink PDR strips PPP/PPPoE/Ethernet (BBF Outer Header Removal,
//!   32771, value 3);
//! - the downlink FAR's Forwarding Parameters carry the BBF Outer Header
//!   Creation (32770) "PPP" with the PPPoE session id in its Session ID
//!   field, and the BBF MTU (32776) of the session (left out when the spec's
//!   `mtu` is 0; the user plane then assumes 1492, RFC 2516's largest MRU).
//!
//! The user plane clamps the TCP MSS of the session's SYNs to MTU - 40 in
//! both directions and drops downlink IPv4 packets longer than the MTU.

use alloc::string::ToString;
use alloc::vec;
use core::net::Ipv4Addr;

pub use super::ipoe::{
    FAR_TO_ACCESS, FAR_TO_CORE, PDR_DOWNLINK, PDR_UPLINK, PRECEDENCE, QER_ID, URR_ID,
    modify_qer_request, query_usage_request, rate_change_request, update_mbr,
};
use super::{
    ApplyAction, BbfOuterHeaderCreation, BbfOuterHeaderRemoval, CreateFar, CreatePdr, CreateQer,
    CreateUrr, EthernetPacketFilter, FSeid, ForwardingParameters, GateStatus, Interface,
    MacAddress, Mbr, MeasurementMethod, NodeId, Pdi, PppProtocol, SessionEstablishmentRequest,
    UeIpAddress,
};

/// The MTU the user plane assumes for a PPPoE session whose downlink FAR
/// carries no BBF MTU IE (RFC 2516 section 7: MRU at most 1492).
pub const DEFAULT_MTU: u16 = 1492;

/// What the control plane programs for one PPPoE subscriber, as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PppoeSessionSpec {
    /// CP SEID (the session id), sent in the CP F-SEID.
    pub cp_seid: u64,
    /// The control plane's node id.
    pub node_id: NodeId,
    /// Subscriber IPv4 address (IPCP), UE IP address of both PDRs.
    pub ue_ipv4: Ipv4Addr,
    /// Subscriber MAC (the PPPoE client's, uplink source MAC filter).
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
    /// PPPoE session id from the PADS, 1..=0xfffe.
    pub session_id: u16,
    /// Session MTU (the negotiated MRU, usually 1492), 0 to leave the BBF MTU
    /// IE out.
    pub mtu: u16,
}

/// Session Establishment Request for PPPoE session `spec`; `cp_ip` is the
/// control plane's IPv4 address, sent in the CP F-SEID.
pub fn session_establishment(
    cp_ip: Ipv4Addr,
    spec: &PppoeSessionSpec,
) -> SessionEstablishmentRequest {
    let nonzero = |v: u16| (v != 0).then_some(v);
    let uplink = CreatePdr {
        pdr_id: PDR_UPLINK,
        precedence: PRECEDENCE,
        pdi: Pdi {
            source_interface: Interface::Access,
            ue_ip_address: Some(UeIpAddress {
                ipv4: Some(spec.ue_ipv4),
                ipv6: None,
                is_destination: false,
            }),
            ethernet_packet_filter: Some(EthernetPacketFilter {
                mac_address: Some(MacAddress::source(spec.mac)),
                c_tag: nonzero(spec.cvlan),
                s_tag: nonzero(spec.svlan),
                ..Default::default()
            }),
            logical_port: Some(spec.port.to_string().into_bytes()),
            pppoe_session_id: Some(spec.session_id),
            ppp_protocol: Some(PppProtocol::DATA),
            ..Default::default()
        },
        bbf_outer_header_removal: Some(BbfOuterHeaderRemoval::PPP_PPPOE_ETHERNET),
        far_id: Some(FAR_TO_CORE),
        urr_ids: vec![URR_ID],
        qer_ids: vec![QER_ID],
        ..Default::default()
    };
    let downlink = CreatePdr {
        pdr_id: PDR_DOWNLINK,
        precedence: PRECEDENCE,
        pdi: Pdi {
            source_interface: Interface::Core,
            ue_ip_address: Some(UeIpAddress {
                ipv4: Some(spec.ue_ipv4),
                ipv6: None,
                is_destination: true,
            }),
            ..Default::default()
        },
        far_id: Some(FAR_TO_ACCESS),
        urr_ids: vec![URR_ID],
        qer_ids: vec![QER_ID],
        ..Default::default()
    };
    SessionEstablishmentRequest {
        node_id: spec.node_id.clone(),
        cp_f_seid: FSeid {
            seid: spec.cp_seid,
            ipv4: Some(cp_ip),
            ipv6: None,
        },
        create_pdrs: vec![uplink, downlink],
        create_fars: vec![
            CreateFar {
                far_id: FAR_TO_CORE,
                apply_action: ApplyAction::FORW,
                forwarding_parameters: Some(ForwardingParameters {
                    destination_interface: Interface::Core,
                    ..Default::default()
                }),
            },
            CreateFar {
                far_id: FAR_TO_ACCESS,
                apply_action: ApplyAction::FORW,
                forwarding_parameters: Some(ForwardingParameters {
                    destination_interface: Interface::Access,
                    bbf_outer_header_creation: Some(BbfOuterHeaderCreation::pppoe(spec.session_id)),
                    bbf_mtu: nonzero(spec.mtu),
                    ..Default::default()
                }),
            },
        ],
        create_urrs: vec![CreateUrr {
            urr_id: URR_ID,
            measurement_method: MeasurementMethod::VOLUM,
            ..Default::default()
        }],
        create_qers: vec![CreateQer {
            qer_id: QER_ID,
            gate_status: GateStatus::OPEN,
            mbr: spec.rate,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pfcp::{Message, ParseStats};

    fn spec() -> PppoeSessionSpec {
        PppoeSessionSpec {
            cp_seid: 0x2001,
            node_id: NodeId::Ipv4(Ipv4Addr::new(127, 0, 0, 1)),
            ue_ipv4: Ipv4Addr::new(100, 64, 0, 20),
            mac: [0x02, 0, 0, 0, 0, 0x20],
            port: 1,
            svlan: 2000,
            cvlan: 100,
            rate: Some(Mbr {
                ul_kbps: 10_000,
                dl_kbps: 50_000,
            }),
            session_id: 0x0042,
            mtu: 1492,
        }
    }

    #[test]
    fn establishment_carries_the_pppoe_ies_and_round_trips() {
        let req = session_establishment(Ipv4Addr::new(127, 0, 0, 1), &spec());
        let ul = &req.create_pdrs[0];
        assert_eq!(ul.pdi.pppoe_session_id, Some(0x42));
        assert_eq!(ul.pdi.ppp_protocol, Some(PppProtocol::DATA));
        assert_eq!(ul.pdi.logical_port.as_deref(), Some(&b"1"[..]));
        assert_eq!(
            ul.bbf_outer_header_removal,
            Some(BbfOuterHeaderRemoval::PPP_PPPOE_ETHERNET)
        );
        let fp = req.create_fars[1].forwarding_parameters.as_ref().unwrap();
        assert_eq!(
            fp.bbf_outer_header_creation,
            Some(BbfOuterHeaderCreation::pppoe(0x42))
        );
        assert_eq!(fp.bbf_mtu, Some(1492));
        assert_eq!(req.cp_f_seid.ipv4, Some(Ipv4Addr::new(127, 0, 0, 1)));

        let msg = Message::SessionEstablishmentRequest(req);
        let bytes = msg.encode(7, Some(0));
        let (_, back, stats) = Message::parse_counting(&bytes).unwrap();
        assert_eq!(back, msg);
        assert_eq!(stats, ParseStats::default(), "no IE skipped");
    }

    #[test]
    fn zero_mtu_leaves_the_ie_out() {
        let req =
            session_establishment(Ipv4Addr::LOCALHOST, &PppoeSessionSpec { mtu: 0, ..spec() });
        let fp = req.create_fars[1].forwarding_parameters.as_ref().unwrap();
        assert_eq!(fp.bbf_mtu, None);
    }
}
