//! The PFCP messages that program one IPoE subscriber, as the interface
//! contract specifies: thin adapters from the control plane's types to
//! [`vbng_cups::pfcp::ipoe`], which builds the messages (and whose docs
//! say what each rule is and what the QER's MBR means, including "0 is no
//! limit" and why a change to "unlimited" is sent as MBR 0/0).

use std::net::Ipv4Addr;

use vbng_cups::pfcp::ipoe::{self, IpoeSession};
use vbng_cups::pfcp::{
    GateStatus, Mbr, NodeId, SessionDeletionRequest, SessionEstablishmentRequest,
    SessionModificationRequest,
};

pub use vbng_cups::pfcp::ipoe::{
    FAR_TO_ACCESS, FAR_TO_CORE, PDR_DOWNLINK, PDR_UPLINK, PRECEDENCE, QER_ID, URR_ID,
};

use super::SubscriberSession;
use crate::aaa::Rate;

/// MBR IE from a profile rate (`None` when there is no rate).
pub fn mbr(rate: Option<Rate>) -> Option<Mbr> {
    rate.map(|r| Mbr {
        ul_kbps: r.up_kbps,
        dl_kbps: r.down_kbps,
    })
}

/// Session Establishment Request for `s`, from node `cp_ip`
/// ([`ipoe::establishment_request`], or
/// [`vbng_cups::pfcp::pppoe::session_establishment`] for a PPPoE session).
pub fn establishment(cp_ip: Ipv4Addr, s: &SubscriberSession) -> SessionEstablishmentRequest {
    if let Some(p) = s.pppoe {
        return vbng_cups::pfcp::pppoe::session_establishment(
            cp_ip,
            &vbng_cups::pfcp::pppoe::PppoeSessionSpec {
                cp_seid: s.cp_seid,
                node_id: NodeId::Ipv4(cp_ip),
                ue_ipv4: s.ipv4,
                mac: s.mac,
                port: s.port,
                svlan: s.svlan,
                cvlan: s.cvlan,
                rate: mbr(s.rate),
                session_id: p.session_id,
                mtu: p.mtu,
            },
        );
    }
    ipoe::establishment_request(&IpoeSession {
        cp_seid: s.cp_seid,
        cp_ipv4: cp_ip,
        node_id: NodeId::Ipv4(cp_ip),
        ue_ipv4: s.ipv4,
        mac: s.mac,
        port: s.port,
        svlan: s.svlan,
        cvlan: s.cvlan,
        rate: mbr(s.rate),
    })
}

/// The MBR of a live rate change: the rates, or UL = 0, DL = 0 ("no
/// limit") for `None`, so the Update QER always carries an MBR.
pub fn update_mbr(rate: Option<Rate>) -> Mbr {
    ipoe::update_mbr(mbr(rate))
}

/// Session Modification Request changing the subscriber's rate live:
/// Update QER [`QER_ID`] with [`update_mbr`]`(rate)` and nothing else (the
/// gate is left as it is); see [`ipoe::rate_change_request`].
pub fn rate_change(rate: Option<Rate>) -> SessionModificationRequest {
    ipoe::rate_change_request(mbr(rate))
}

/// Session Modification Request updating the QER (gate and/or MBR); a
/// `None` leaves that part unchanged (use [`rate_change`] to lift a limit).
pub fn modify_qer(gate: Option<GateStatus>, rate: Option<Rate>) -> SessionModificationRequest {
    ipoe::modify_qer_request(gate, mbr(rate))
}

/// Session Modification Request asking for the usage of URR [`URR_ID`]
/// now (Query URR) and changing nothing; see [`ipoe::query_usage_request`].
/// The user plane answers with an immediate usage report whose volume is
/// cumulative since the session was established.
pub fn query_usage() -> SessionModificationRequest {
    ipoe::query_usage_request()
}

/// Session Deletion Request (the UP SEID goes in the header).
pub fn deletion() -> SessionDeletionRequest {
    SessionDeletionRequest {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use vbng_cups::pfcp::{Interface, Message, UpdateQer};

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
            pppoe: None,
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
    fn usage_query_names_the_volume_urr_and_changes_nothing() {
        let req = query_usage();
        assert_eq!(req.query_urrs, vec![URR_ID]);
        assert!(req.queries_usage());
        let rest = SessionModificationRequest {
            query_urrs: Vec::new(),
            ..req.clone()
        };
        assert_eq!(rest, SessionModificationRequest::default());
        let msg = Message::SessionModificationRequest(req);
        let (h, parsed) = Message::parse(&msg.encode(3, Some(0x1001))).unwrap();
        assert_eq!(h.seid, Some(0x1001));
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
