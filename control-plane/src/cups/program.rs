//! The PFCP messages that program one IPoE subscriber, as the interface
//! contract specifies: thin adapters from the control plane's types to
//! [`vbng_cups::pfcp::ipoe`], which builds the messages (and whose docs
//! say what each rule is and what the QER's MBR means, including "0 is no
//! limit" and why a change to "unlimited" is sent as MBR 0/0).
//!
//! A session's ACL is a name the user plane knows from its ACL file (a
//! "predefined rule" in TS 29.244 terms): the establishment activates it on
//! both PDRs, a live change deactivates the old name and activates the new
//! one with Update PDR.
//!
//! A session's IPv6 prefixes ([`SubscriberSession::ipv6`]) are two more
//! PDRs, [`PDR_UPLINK_V6`] and [`PDR_DOWNLINK_V6`] (see
//! [`vbng_cups::pfcp::ipoe`]'s "IPv6"): part of the establishment when the
//! session has them, else installed, replaced and removed live by
//! [`ipv6_change`]. They carry the session's ACL too, so an ACL change
//! updates all four PDRs once they are installed.

use std::net::Ipv4Addr;

use vbng_cups::pfcp::ipoe::{self, IpoeSession};
use vbng_cups::pfcp::pppoe::{self, PppoeSessionSpec};
use vbng_cups::pfcp::{
    CreatePdr, GateStatus, Mbr, NodeId, SessionDeletionRequest, SessionEstablishmentRequest,
    SessionModificationRequest,
};

pub use vbng_cups::pfcp::ipoe::{
    FAR_TO_ACCESS, FAR_TO_CORE, PDR_DOWNLINK, PDR_DOWNLINK_V6, PDR_UPLINK, PDR_UPLINK_V6,
    PRECEDENCE, QER_ID, URR_ID,
};

use super::{AclChange, Ipv6Prefixes, LiveChange, SubscriberSession};
use crate::aaa::Rate;

/// MBR IE from a profile rate (`None` when there is no rate).
pub fn mbr(rate: Option<Rate>) -> Option<Mbr> {
    rate.map(|r| Mbr {
        ul_kbps: r.up_kbps,
        dl_kbps: r.down_kbps,
    })
}

/// `s` as the PPPoE spec of `vbng_cups`, if it is a PPPoE session.
fn pppoe_spec(cp_ip: Ipv4Addr, s: &SubscriberSession) -> Option<PppoeSessionSpec> {
    let p = s.pppoe?;
    Some(PppoeSessionSpec {
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
        acl: s.acl.clone(),
    })
}

/// `s` as the IPoE session of `vbng_cups`.
fn ipoe_session(cp_ip: Ipv4Addr, s: &SubscriberSession) -> IpoeSession {
    IpoeSession {
        cp_seid: s.cp_seid,
        cp_ipv4: cp_ip,
        node_id: NodeId::Ipv4(cp_ip),
        ue_ipv4: s.ipv4,
        mac: s.mac,
        port: s.port,
        svlan: s.svlan,
        cvlan: s.cvlan,
        rate: mbr(s.rate),
        acl: s.acl.clone(),
    }
}

/// Session Establishment Request for `s`, from node `cp_ip`
/// ([`ipoe::establishment_request_with_ipv6`], or
/// [`pppoe::session_establishment_with_ipv6`] for a PPPoE session), with
/// the IPv6 PDRs when `s` has IPv6 prefixes.
pub fn establishment(cp_ip: Ipv4Addr, s: &SubscriberSession) -> SessionEstablishmentRequest {
    match pppoe_spec(cp_ip, s) {
        Some(spec) => pppoe::session_establishment_with_ipv6(cp_ip, &spec, s.ipv6.as_ref()),
        None => ipoe::establishment_request_with_ipv6(&ipoe_session(cp_ip, s), s.ipv6.as_ref()),
    }
}

/// The IPv6 PDRs ([`PDR_UPLINK_V6`], [`PDR_DOWNLINK_V6`]) of session `s`
/// for prefixes `v6`: the access match, FARs, QER, URR and ACL of its IPv4
/// PDRs ([`pppoe::session_ipv6_pdrs`], [`ipoe::session_ipv6_pdrs`]).
pub fn ipv6_pdrs(s: &SubscriberSession, v6: &Ipv6Prefixes) -> [CreatePdr; 2] {
    // The CP address only goes into the F-SEID, not into a PDR.
    let cp_ip = Ipv4Addr::UNSPECIFIED;
    match pppoe_spec(cp_ip, s) {
        Some(spec) => pppoe::session_ipv6_pdrs(&spec, v6),
        None => ipoe::session_ipv6_pdrs(&ipoe_session(cp_ip, s), v6),
    }
}

/// The Session Modification Request that takes session `s` from the IPv6
/// PDRs of prefixes `from` (what the user plane has) to those of `s.ipv6`:
/// install them ([`ipoe::ipv6_install_request`]), replace them
/// ([`ipoe::ipv6_replace_request`]: Remove and Create PDR 3 and 4 in one
/// request) or remove them ([`ipoe::ipv6_remove_request`]). `None` when
/// there is nothing to change.
pub fn ipv6_change(
    s: &SubscriberSession,
    from: Option<&Ipv6Prefixes>,
) -> Option<SessionModificationRequest> {
    match (from, s.ipv6.as_ref()) {
        (from, to) if from == to => None,
        (None, Some(to)) => Some(ipoe::ipv6_install_request(ipv6_pdrs(s, to))),
        (Some(_), Some(to)) => Some(ipoe::ipv6_replace_request(ipv6_pdrs(s, to))),
        (Some(_), None) => Some(ipoe::ipv6_remove_request()),
        (None, None) => None,
    }
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

/// Session Modification Request replacing the subscriber's ACL live:
/// Update PDR for the uplink and downlink PDRs, deactivating `change.from`
/// (unless it is also `change.to`) and activating `change.to`; see
/// [`ipoe::acl_change_request`].
pub fn acl_change(change: &AclChange) -> SessionModificationRequest {
    ipoe::acl_change_request(change.from.as_deref(), change.to.as_deref())
}

/// One Session Modification Request carrying every part of `change`: the
/// Update QER of [`rate_change`] and the Update PDRs of [`acl_change`]
/// (for the IPv6 PDRs as well when `change.ipv6_pdrs`).
pub fn live_change(change: &LiveChange) -> SessionModificationRequest {
    let mut req = SessionModificationRequest::default();
    if let Some(rate) = change.rate {
        req.update_qers = rate_change(rate).update_qers;
    }
    if let Some(acl) = &change.acl {
        let pdrs: &[u16] = if change.ipv6_pdrs {
            &[PDR_UPLINK, PDR_DOWNLINK, PDR_UPLINK_V6, PDR_DOWNLINK_V6]
        } else {
            &[PDR_UPLINK, PDR_DOWNLINK]
        };
        req.update_pdrs =
            ipoe::acl_change_request_on(pdrs, acl.from.as_deref(), acl.to.as_deref()).update_pdrs;
    }
    req
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
            acl: Some("web-only".into()),
            ipv6: None,
        }
    }

    fn pppoe_sub() -> SubscriberSession {
        SubscriberSession {
            pppoe: Some(crate::cups::PppoeAccess {
                session_id: 0x42,
                mtu: 1492,
            }),
            ..sub()
        }
    }

    fn prefixes(delegated: Option<&str>) -> Ipv6Prefixes {
        Ipv6Prefixes {
            prefix: Some(("2001:db8:100::".parse().unwrap(), 64)),
            delegated: delegated.map(|d| (d.parse().unwrap(), 56)),
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
        for pdr in &req.create_pdrs {
            assert_eq!(pdr.activate_predefined_rules, vec!["web-only".to_string()]);
        }
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

    #[test]
    fn establishment_without_an_acl_activates_nothing() {
        let mut s = sub();
        s.acl = None;
        let req = establishment(Ipv4Addr::LOCALHOST, &s);
        assert!(
            req.create_pdrs
                .iter()
                .all(|p| p.activate_predefined_rules.is_empty())
        );
        s.pppoe = Some(crate::cups::PppoeAccess {
            session_id: 5,
            mtu: 1492,
        });
        s.acl = Some("block-smtp".into());
        let req = establishment(Ipv4Addr::LOCALHOST, &s);
        assert!(
            req.create_pdrs
                .iter()
                .all(|p| p.activate_predefined_rules == ["block-smtp"])
        );
    }

    #[test]
    fn live_change_carries_rate_and_acl_in_one_request() {
        let change = LiveChange {
            rate: Some(None),
            acl: Some(AclChange {
                from: Some("web-only".into()),
                to: Some("block-smtp".into()),
            }),
            ipv6_pdrs: false,
        };
        let req = live_change(&change);
        assert_eq!(req.update_qers, rate_change(None).update_qers);
        let pdrs: Vec<_> = req.update_pdrs.iter().map(|u| u.pdr_id).collect();
        assert_eq!(pdrs, vec![PDR_UPLINK, PDR_DOWNLINK]);
        for u in &req.update_pdrs {
            assert_eq!(u.deactivate_predefined_rules, ["web-only"]);
            assert_eq!(u.activate_predefined_rules, ["block-smtp"]);
        }
        let msg = Message::SessionModificationRequest(req);
        let (_, parsed) = Message::parse(&msg.encode(4, Some(0x1001))).unwrap();
        assert_eq!(parsed, msg);

        // Only the ACL: no QER is touched; removing it activates nothing.
        let req = live_change(&LiveChange {
            rate: None,
            acl: Some(AclChange {
                from: Some("web-only".into()),
                to: None,
            }),
            ipv6_pdrs: false,
        });
        assert!(req.update_qers.is_empty());
        for u in &req.update_pdrs {
            assert_eq!(u.deactivate_predefined_rules, ["web-only"]);
            assert!(u.activate_predefined_rules.is_empty());
        }
        // Nothing to change: an empty request.
        assert_eq!(
            live_change(&LiveChange::default()),
            SessionModificationRequest::default()
        );
    }

    #[test]
    fn acl_change_covers_the_ipv6_pdrs_once_installed() {
        let change = LiveChange {
            acl: Some(AclChange {
                from: Some("web-only".into()),
                to: Some("block-smtp".into()),
            }),
            ipv6_pdrs: true,
            ..LiveChange::default()
        };
        let req = live_change(&change);
        let ids: Vec<_> = req.update_pdrs.iter().map(|u| u.pdr_id).collect();
        assert_eq!(
            ids,
            [PDR_UPLINK, PDR_DOWNLINK, PDR_UPLINK_V6, PDR_DOWNLINK_V6]
        );
        // A rate change alone touches no PDR, IPv6 or not.
        let req = live_change(&LiveChange {
            rate: Some(None),
            ipv6_pdrs: true,
            ..LiveChange::default()
        });
        assert!(req.update_pdrs.is_empty());
    }

    #[test]
    fn ipv6_change_installs_replaces_and_removes_pdrs_3_and_4() {
        let mut s = pppoe_sub();
        let slaac = prefixes(None);
        let with_pd = prefixes(Some("2001:db8:200::"));

        // IPv6CP opened: install.
        s.ipv6 = Some(slaac);
        let req = ipv6_change(&s, None).unwrap();
        assert!(req.remove_pdrs.is_empty());
        let [up, down] = <[CreatePdr; 2]>::try_from(req.create_pdrs.clone()).unwrap();
        assert_eq!((up.pdr_id, down.pdr_id), (PDR_UPLINK_V6, PDR_DOWNLINK_V6));
        let ue = up.pdi.ue_ip_address.unwrap();
        assert_eq!(ue.ipv6, Some("2001:db8:100::".parse().unwrap()));
        assert_eq!(ue.ipv6_prefix_len, Some(64));
        assert!(!ue.is_destination);
        assert_eq!(ue.ipv4, None);
        assert!(down.pdi.ue_ip_address.unwrap().is_destination);
        assert_eq!(up.pdi.pppoe_session_id, Some(0x42));
        assert_eq!(up.far_id, Some(FAR_TO_CORE));
        assert_eq!(down.far_id, Some(FAR_TO_ACCESS));
        for p in [&up, &down] {
            assert!(p.pdi.framed_ipv6_routes.is_empty());
            assert_eq!(p.activate_predefined_rules, ["web-only"]);
            assert_eq!(
                (&p.qer_ids[..], &p.urr_ids[..]),
                (&[QER_ID][..], &[URR_ID][..])
            );
        }
        // The access match is the IPv4 uplink PDR's.
        let v4 = establishment(Ipv4Addr::LOCALHOST, &pppoe_sub());
        assert_eq!(
            up.pdi.ethernet_packet_filter,
            v4.create_pdrs[0].pdi.ethernet_packet_filter
        );
        assert_eq!(up.pdi.logical_port, v4.create_pdrs[0].pdi.logical_port);

        // DHCPv6 delegated a prefix: replace, with the route.
        s.ipv6 = Some(with_pd);
        let req = ipv6_change(&s, Some(&slaac)).unwrap();
        assert_eq!(req.remove_pdrs, [PDR_UPLINK_V6, PDR_DOWNLINK_V6]);
        assert_eq!(req.create_pdrs.len(), 2);
        for p in &req.create_pdrs {
            assert_eq!(p.pdi.framed_ipv6_routes.len(), 1);
            assert_eq!(
                p.pdi.framed_ipv6_routes[0].prefix,
                "2001:db8:200::".parse::<std::net::Ipv6Addr>().unwrap()
            );
            assert_eq!(p.pdi.framed_ipv6_routes[0].len, 56);
        }
        let msg = Message::SessionModificationRequest(req);
        let (_, parsed) = Message::parse(&msg.encode(5, Some(0x1001))).unwrap();
        assert_eq!(parsed, msg);

        // Nothing changed: nothing to send.
        assert_eq!(ipv6_change(&s, Some(&with_pd)), None);

        // IPv6CP closed: remove.
        s.ipv6 = None;
        let req = ipv6_change(&s, Some(&with_pd)).unwrap();
        assert_eq!(
            req,
            SessionModificationRequest {
                remove_pdrs: vec![PDR_UPLINK_V6, PDR_DOWNLINK_V6],
                ..Default::default()
            }
        );
        assert_eq!(ipv6_change(&s, None), None);
    }

    #[test]
    fn establishment_carries_the_ipv6_pdrs_of_a_session_that_has_them() {
        let mut s = pppoe_sub();
        assert_eq!(establishment(Ipv4Addr::LOCALHOST, &s).create_pdrs.len(), 2);
        s.ipv6 = Some(prefixes(Some("2001:db8:200::")));
        let req = establishment(Ipv4Addr::LOCALHOST, &s);
        let ids: Vec<_> = req.create_pdrs.iter().map(|p| p.pdr_id).collect();
        assert_eq!(ids, [1, 2, 3, 4]);
        assert_eq!(
            req.create_pdrs[2..],
            ipv6_pdrs(&s, s.ipv6.as_ref().unwrap())
        );
        let msg = Message::SessionEstablishmentRequest(req);
        let (_, parsed) = Message::parse(&msg.encode(1, Some(0))).unwrap();
        assert_eq!(parsed, msg);
        // IPoE sessions get them the same way (without the PPPoE IEs).
        let mut s = sub();
        s.ipv6 = Some(prefixes(None));
        let req = establishment(Ipv4Addr::LOCALHOST, &s);
        assert_eq!(req.create_pdrs.len(), 4);
        assert_eq!(req.create_pdrs[2].pdi.pppoe_session_id, None);
    }
}
