//! The PFCP messages that program one IPoE subscriber, as the interface
//! contract specifies (both ends agree on these rule ids).
//!
//! # Rates: the QER maximum bit rate
//!
//! Both PDRs use the one QER [`QER_ID`]; its MBR (TS 29.244 section 8.2.8)
//! carries the subscriber's peak rates in kbit/s (uplink = subscriber to
//! core, downlink = core to subscriber; bit/s = kbit/s * 1000, measured on
//! the IPv4 packet). In both directions, **an MBR value of 0 means "no
//! limit"** in that direction:
//!
//! - Create QER (establishment, [`establishment`]): the subscriber file's
//!   `rate` becomes the MBR; a subscriber without a rate gets no MBR IE.
//! - Update QER (live change, [`rate_change`]): an Update QER without an
//!   MBR leaves the rate unchanged, so a change to "unlimited" is sent as
//!   MBR UL = 0, DL = 0 rather than by leaving the IE out.
//!
//! The user plane (vbng-dataplane's PFCP agent) gives 0 the same meaning.

use std::net::Ipv4Addr;

use vbng_cups::pfcp::{
    ApplyAction, CreateFar, CreatePdr, CreateQer, CreateUrr, EthernetPacketFilter, FSeid,
    ForwardingParameters, GateStatus, Interface, MacAddress, Mbr, MeasurementMethod, NodeId, Pdi,
    SessionDeletionRequest, SessionEstablishmentRequest, SessionModificationRequest, UeIpAddress,
    UpdateQer,
};

use super::SubscriberSession;
use crate::aaa::Rate;

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

/// MBR IE from a profile rate (`None` when there is no rate).
pub fn mbr(rate: Option<Rate>) -> Option<Mbr> {
    rate.map(|r| Mbr {
        ul_kbps: r.up_kbps,
        dl_kbps: r.down_kbps,
    })
}

/// Session Establishment Request for `s`, from node `cp_ip`.
pub fn establishment(cp_ip: Ipv4Addr, s: &SubscriberSession) -> SessionEstablishmentRequest {
    let nonzero = |v: u16| (v != 0).then_some(v);
    let uplink = CreatePdr {
        pdr_id: PDR_UPLINK,
        precedence: PRECEDENCE,
        pdi: Pdi {
            source_interface: Interface::Access,
            ue_ip_address: Some(UeIpAddress {
                ipv4: Some(s.ipv4),
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
        ..Default::default()
    };
    let downlink = CreatePdr {
        pdr_id: PDR_DOWNLINK,
        precedence: PRECEDENCE,
        pdi: Pdi {
            source_interface: Interface::Core,
            ue_ip_address: Some(UeIpAddress {
                ipv4: Some(s.ipv4),
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
    let far = |far_id, dest| CreateFar {
        far_id,
        apply_action: ApplyAction::FORW,
        forwarding_parameters: Some(ForwardingParameters {
            destination_interface: dest,
            ..Default::default()
        }),
    };
    SessionEstablishmentRequest {
        node_id: NodeId::Ipv4(cp_ip),
        cp_f_seid: FSeid {
            seid: s.cp_seid,
            ipv4: Some(cp_ip),
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
            mbr: mbr(s.rate),
        }],
    }
}

/// The MBR of a live rate change: the rates, or UL = 0, DL = 0 ("no
/// limit") for `None`, so the Update QER always carries an MBR.
pub fn update_mbr(rate: Option<Rate>) -> Mbr {
    mbr(rate).unwrap_or(Mbr {
        ul_kbps: 0,
        dl_kbps: 0,
    })
}

/// Session Modification Request changing the subscriber's rate live:
/// Update QER [`QER_ID`] with [`update_mbr`]`(rate)` and nothing else (the
/// gate is left as it is).
pub fn rate_change(rate: Option<Rate>) -> SessionModificationRequest {
    SessionModificationRequest {
        update_qers: vec![UpdateQer {
            qer_id: QER_ID,
            gate_status: None,
            mbr: Some(update_mbr(rate)),
        }],
        ..Default::default()
    }
}

/// Session Modification Request updating the QER (gate and/or MBR); a
/// `None` leaves that part unchanged (use [`rate_change`] to lift a limit).
pub fn modify_qer(gate: Option<GateStatus>, rate: Option<Rate>) -> SessionModificationRequest {
    SessionModificationRequest {
        update_qers: vec![UpdateQer {
            qer_id: QER_ID,
            gate_status: gate,
            mbr: mbr(rate),
        }],
        ..Default::default()
    }
}

/// Session Deletion Request (the UP SEID goes in the header).
pub fn deletion() -> SessionDeletionRequest {
    SessionDeletionRequest {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use vbng_cups::pfcp::Message;

    fn sub() -> SubscriberSession {
        SubscriberSession {
            cp_seid: 7,
            ipv4: Ipv4Addr::new(100, 64, 0, 10),
            mac: [2, 0, 0, 0, 0, 1],
            port: 3,
            svlan: 0,
            cvlan: 100,
            rate: Some(Rate {
                up_kbps: 1000,
                down_kbps: 5000,
            }),
        }
    }

    #[test]
    fn establishment_matches_contract_and_round_trips() {
        let req = establishment(Ipv4Addr::LOCALHOST, &sub());
        let up = &req.create_pdrs[0];
        assert_eq!(up.pdi.source_interface, Interface::Access);
        assert_eq!(up.pdi.logical_port.as_deref(), Some(&b"3"[..]));
        let epf = up.pdi.ethernet_packet_filter.as_ref().unwrap();
        assert_eq!(epf.c_tag, Some(100));
        assert_eq!(epf.s_tag, None);
        assert_eq!(
            epf.mac_address.as_ref().unwrap().source,
            Some([2, 0, 0, 0, 0, 1])
        );
        assert!(!up.pdi.ue_ip_address.unwrap().is_destination);
        let down = &req.create_pdrs[1];
        assert_eq!(down.pdi.source_interface, Interface::Core);
        assert!(down.pdi.ue_ip_address.unwrap().is_destination);
        assert_eq!(
            req.create_qers[0].mbr,
            Some(Mbr {
                ul_kbps: 1000,
                dl_kbps: 5000
            })
        );
        assert_eq!(req.cp_f_seid.seid, 7);
        let msg = Message::SessionEstablishmentRequest(req);
        let bytes = msg.encode(42, Some(0));
        let (h, parsed) = Message::parse(&bytes).unwrap();
        assert_eq!(h.sequence, 42);
        assert_eq!(parsed, msg);
    }

    #[test]
    fn rate_change_always_carries_an_mbr() {
        let req = rate_change(Some(Rate {
            up_kbps: 20_000,
            down_kbps: 100_000,
        }));
        assert_eq!(
            req.update_qers,
            vec![UpdateQer {
                qer_id: QER_ID,
                gate_status: None,
                mbr: Some(Mbr {
                    ul_kbps: 20_000,
                    dl_kbps: 100_000
                }),
            }]
        );
        // Unlimited is an explicit 0/0, not an absent MBR ("unchanged").
        let req = rate_change(None);
        assert_eq!(
            req.update_qers[0].mbr,
            Some(Mbr {
                ul_kbps: 0,
                dl_kbps: 0
            })
        );
        let msg = Message::SessionModificationRequest(req);
        let (h, parsed) = Message::parse(&msg.encode(9, Some(0x1001))).unwrap();
        assert_eq!(h.seid, Some(0x1001));
        assert_eq!(parsed, msg);
        // Establishment without a rate sends no MBR at all.
        let mut s = sub();
        s.rate = None;
        assert_eq!(
            establishment(Ipv4Addr::LOCALHOST, &s).create_qers[0].mbr,
            None
        );
    }
}
