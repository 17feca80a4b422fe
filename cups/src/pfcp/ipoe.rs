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
//!   deactivates the old name and activates the new one (with
//!   [`acl_change_request_on`] for the IPv6 PDRs too).
//!
//! # IPv6: PDRs 3 and 4
//!
//! A session's IPv6 prefixes ([`Ipv6Prefixes`]) are two more PDRs beside the
//! IPv4 ones, built by [`ipv6_pdrs`] from the session's IPv4 uplink PDR:
//!
//! - [`PDR_UPLINK_V6`] (source interface Access): the same access match as
//!   the IPv4 uplink PDR (Ethernet Packet Filter, BBF Logical Port, for
//!   PPPoE the BBF PPPoE Session ID, PPP Protocol 0x0057 and the BBF Outer
//!   Header Removal), the session's prefix as source UE IP Address with its
//!   IPv6 Prefix Length (IP6PL, always sent) and the delegated prefix as
//!   one Framed-IPv6-Route; FAR [`FAR_TO_CORE`];
//! - [`PDR_DOWNLINK_V6`] (source interface Core): the same UE IP Address as
//!   destination and the same Framed-IPv6-Route; FAR [`FAR_TO_ACCESS`].
//!
//! Both use the QER, URR, ACL and precedence of the IPv4 PDRs, so the rate,
//! the volume and the ACL cover both address families. They are installed
//! with the establishment ([`establishment_request_with_ipv6`]) or later by
//! a Session Modification Request: [`ipv6_install_request`] (Create PDR 3
//! and 4), [`ipv6_replace_request`] (Remove PDR 3 and 4 and Create them
//! again in the same request: the user plane applies removes before
//! creates) and [`ipv6_remove_request`] (Remove PDR 3 and 4).
//!
//! The user plane takes the UE IP Address as the session's prefix and the
//! first Framed-IPv6-Route as its delegated prefix; it accepts prefixes of
//! /1 to /64 only. Uplink packets must come from one of them; downlink
//! packets to either go to the session.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr};

use super::{
    ApplyAction, CreateFar, CreatePdr, CreateQer, CreateUrr, EthernetPacketFilter, FSeid,
    ForwardingParameters, FramedIpv6Route, GateStatus, Interface, MacAddress, Mbr,
    MeasurementMethod, NodeId, Pdi, PppProtocol, SessionEstablishmentRequest,
    SessionModificationRequest, UeIpAddress, UpdatePdr, UpdateQer,
};
use crate::pfcp::ie::pdi::mask_ipv6;

/// Uplink PDR id.
pub const PDR_UPLINK: u16 = 1;
/// Downlink PDR id.
pub const PDR_DOWNLINK: u16 = 2;
/// Uplink PDR id of the session's IPv6 prefixes.
pub const PDR_UPLINK_V6: u16 = 3;
/// Downlink PDR id of the session's IPv6 prefixes.
pub const PDR_DOWNLINK_V6: u16 = 4;
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

/// The IPv6 prefixes of a session, as the user plane gets them (PDRs
/// [`PDR_UPLINK_V6`] and [`PDR_DOWNLINK_V6`]): each an address and a
/// prefix length, host bits cleared when sent. vbng-up accepts lengths of
/// 1 to 64 only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Ipv6Prefixes {
    /// The session's own prefix (a PPPoE session's /64, the prefix of its
    /// Router Advertisements): the UE IP Address, sent with IP6PL.
    pub prefix: Option<(Ipv6Addr, u8)>,
    /// The prefix delegated to the subscriber (DHCPv6 IA_PD): the
    /// Framed-IPv6-Route.
    pub delegated: Option<(Ipv6Addr, u8)>,
}

/// The IPv4 uplink PDR [`PDR_UPLINK`] of `s`.
pub(crate) fn uplink_pdr(s: &IpoeSession) -> CreatePdr {
    let nonzero = |v: u16| (v != 0).then_some(v);
    CreatePdr {
        pdr_id: PDR_UPLINK,
        precedence: PRECEDENCE,
        pdi: Pdi {
            source_interface: Interface::Access,
            ue_ip_address: Some(UeIpAddress {
                ipv4: Some(s.ue_ipv4),
                ipv6: None,
                is_destination: false,
                ipv6_prefix_len: None,
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
        activate_predefined_rules: s.acl.iter().cloned().collect(),
        ..Default::default()
    }
}

/// The two IPv6 PDRs ([`PDR_UPLINK_V6`], [`PDR_DOWNLINK_V6`]) of the
/// session whose IPv4 uplink PDR is `uplink_v4`, for prefixes `v6` (see
/// the [module docs](self)). The uplink one has `uplink_v4`'s access match
/// (Ethernet Packet Filter, network instance, BBF Logical Port and PPPoE
/// Session ID, outer header removals; a BBF PPP Protocol becomes IPv6,
/// 0x0057), FAR, QERs, URRs, ACL and precedence; the downlink one matches
/// the same prefixes as destination from the core and forwards with
/// [`FAR_TO_ACCESS`]. A prefix length over 128 is sent as 128.
pub fn ipv6_pdrs(uplink_v4: &CreatePdr, v6: &Ipv6Prefixes) -> [CreatePdr; 2] {
    let masked = |(addr, len): (Ipv6Addr, u8)| {
        let len = len.min(128);
        FramedIpv6Route {
            prefix: mask_ipv6(addr, len),
            len,
        }
    };
    let prefix = v6.prefix.map(masked);
    let ue = |is_destination| {
        prefix.map(|p| UeIpAddress {
            ipv4: None,
            ipv6: Some(p.prefix),
            is_destination,
            ipv6_prefix_len: Some(p.len),
        })
    };
    let routes: Vec<FramedIpv6Route> = v6.delegated.map(masked).into_iter().collect();
    let v4 = &uplink_v4.pdi;
    let uplink = CreatePdr {
        pdr_id: PDR_UPLINK_V6,
        pdi: Pdi {
            source_interface: Interface::Access,
            network_instance: v4.network_instance.clone(),
            ue_ip_address: ue(false),
            ethernet_packet_filter: v4.ethernet_packet_filter,
            logical_port: v4.logical_port.clone(),
            pppoe_session_id: v4.pppoe_session_id,
            ppp_protocol: v4.ppp_protocol.map(|_| PppProtocol::IPV6),
            framed_ipv6_routes: routes.clone(),
        },
        ..uplink_v4.clone()
    };
    let downlink = CreatePdr {
        pdr_id: PDR_DOWNLINK_V6,
        precedence: uplink_v4.precedence,
        pdi: Pdi {
            source_interface: Interface::Core,
            ue_ip_address: ue(true),
            framed_ipv6_routes: routes,
            ..Default::default()
        },
        far_id: Some(FAR_TO_ACCESS),
        urr_ids: uplink_v4.urr_ids.clone(),
        qer_ids: uplink_v4.qer_ids.clone(),
        activate_predefined_rules: uplink_v4.activate_predefined_rules.clone(),
        ..Default::default()
    };
    [uplink, downlink]
}

/// The IPv6 PDRs of IPoE session `s` for prefixes `v6`: [`ipv6_pdrs`] of
/// its IPv4 uplink PDR.
pub fn session_ipv6_pdrs(s: &IpoeSession, v6: &Ipv6Prefixes) -> [CreatePdr; 2] {
    ipv6_pdrs(&uplink_pdr(s), v6)
}

/// Session Modification Request installing a session's IPv6 PDRs `pdrs`
/// (from [`ipv6_pdrs`]): Create PDR [`PDR_UPLINK_V6`] and
/// [`PDR_DOWNLINK_V6`], nothing else.
pub fn ipv6_install_request(pdrs: [CreatePdr; 2]) -> SessionModificationRequest {
    SessionModificationRequest {
        create_pdrs: pdrs.into(),
        ..Default::default()
    }
}

/// Session Modification Request replacing a session's IPv6 PDRs by `pdrs`
/// (new prefixes): Remove PDR [`PDR_UPLINK_V6`] and [`PDR_DOWNLINK_V6`] and
/// Create them again, in one request (the user plane applies the removes
/// first, and takes or refuses the request as a whole).
pub fn ipv6_replace_request(pdrs: [CreatePdr; 2]) -> SessionModificationRequest {
    SessionModificationRequest {
        remove_pdrs: vec![PDR_UPLINK_V6, PDR_DOWNLINK_V6],
        create_pdrs: pdrs.into(),
        ..Default::default()
    }
}

/// Session Modification Request removing a session's IPv6 PDRs: Remove PDR
/// [`PDR_UPLINK_V6`] and [`PDR_DOWNLINK_V6`]. The IPv4 PDRs, FARs, QER and
/// URR stay.
pub fn ipv6_remove_request() -> SessionModificationRequest {
    SessionModificationRequest {
        remove_pdrs: vec![PDR_UPLINK_V6, PDR_DOWNLINK_V6],
        ..Default::default()
    }
}

/// Session Establishment Request for `s`, IPv4 only.
pub fn establishment_request(s: &IpoeSession) -> SessionEstablishmentRequest {
    establishment_request_with_ipv6(s, None)
}

/// Session Establishment Request for `s` with, when `ipv6` is given, its
/// IPv6 PDRs ([`session_ipv6_pdrs`]) after the IPv4 ones: a session that
/// already has IPv6 prefixes (a control plane restored after a restart, a
/// user plane that lost its sessions) is programmed whole at once.
pub fn establishment_request_with_ipv6(
    s: &IpoeSession,
    ipv6: Option<&Ipv6Prefixes>,
) -> SessionEstablishmentRequest {
    let uplink = uplink_pdr(s);
    let downlink = CreatePdr {
        pdr_id: PDR_DOWNLINK,
        precedence: PRECEDENCE,
        pdi: Pdi {
            source_interface: Interface::Core,
            ue_ip_address: Some(UeIpAddress {
                ipv4: Some(s.ue_ipv4),
                ipv6: None,
                is_destination: true,
                ipv6_prefix_len: None,
            }),
            ..Default::default()
        },
        far_id: Some(FAR_TO_ACCESS),
        urr_ids: vec![URR_ID],
        qer_ids: vec![QER_ID],
        activate_predefined_rules: s.acl.iter().cloned().collect(),
        ..Default::default()
    };
    let mut create_pdrs = vec![uplink, downlink];
    if let Some(v6) = ipv6 {
        create_pdrs.extend(ipv6_pdrs(&create_pdrs[0], v6));
    }
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
        create_pdrs,
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
    acl_change_request_on(&[PDR_UPLINK, PDR_DOWNLINK], old, new)
}

/// [`acl_change_request`] with one Update PDR for each of `pdr_ids`: a
/// session with IPv6 PDRs changes the ACL of all four ([`PDR_UPLINK`],
/// [`PDR_DOWNLINK`], [`PDR_UPLINK_V6`], [`PDR_DOWNLINK_V6`]) at once.
pub fn acl_change_request_on(
    pdr_ids: &[u16],
    old: Option<&str>,
    new: Option<&str>,
) -> SessionModificationRequest {
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
        update_pdrs: pdr_ids.iter().map(|&id| update(id)).collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pfcp::{Message, ParseStats};

    fn session() -> IpoeSession {
        IpoeSession {
            cp_seid: 0x1002,
            cp_ipv4: Ipv4Addr::LOCALHOST,
            node_id: NodeId::Ipv4(Ipv4Addr::LOCALHOST),
            ue_ipv4: Ipv4Addr::new(100, 64, 0, 11),
            mac: [0x02, 0, 0, 0, 0, 0x11],
            port: 2,
            svlan: 2000,
            cvlan: 100,
            rate: None,
            acl: Some("web-only".into()),
        }
    }

    fn v6() -> Ipv6Prefixes {
        Ipv6Prefixes {
            // Host bits set on purpose: they are cleared on the wire.
            prefix: Some(("2001:db8:100::1".parse().unwrap(), 64)),
            delegated: Some(("2001:db8:200::".parse().unwrap(), 56)),
        }
    }

    fn route(s: &str, len: u8) -> FramedIpv6Route {
        FramedIpv6Route::new(s.parse().unwrap(), len).unwrap()
    }

    /// `m` survives encode and parse unchanged, with no IE skipped.
    fn round_trips(m: Message) {
        let bytes = m.encode(9, Some(0x2001));
        let (h, back, stats) = Message::parse_counting(&bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(h.seid, Some(0x2001));
        assert_eq!(stats, ParseStats::default(), "no IE skipped");
    }

    #[test]
    fn ipv6_pdrs_match_the_access_side_like_the_ipv4_uplink() {
        let v4 = establishment_request(&session());
        let [up, down] = session_ipv6_pdrs(&session(), &v6());
        let up4 = &v4.create_pdrs[0];

        assert_eq!(up.pdr_id, PDR_UPLINK_V6);
        assert_eq!(up.precedence, up4.precedence);
        assert_eq!(up.pdi.source_interface, Interface::Access);
        assert_eq!(
            up.pdi.ue_ip_address,
            Some(UeIpAddress {
                ipv4: None,
                ipv6: Some("2001:db8:100::".parse().unwrap()),
                is_destination: false,
                ipv6_prefix_len: Some(64),
            })
        );
        assert_eq!(
            up.pdi.ethernet_packet_filter,
            up4.pdi.ethernet_packet_filter
        );
        assert_eq!(up.pdi.logical_port.as_deref(), Some(&b"2"[..]));
        assert_eq!(up.pdi.ppp_protocol, None, "IPoE: no PPP Protocol");
        assert_eq!(up.pdi.pppoe_session_id, None);
        assert_eq!(up.pdi.framed_ipv6_routes, [route("2001:db8:200::", 56)]);
        assert_eq!(up.far_id, Some(FAR_TO_CORE));
        assert_eq!((&up.urr_ids, &up.qer_ids), (&vec![URR_ID], &vec![QER_ID]));
        assert_eq!(up.activate_predefined_rules, ["web-only"]);

        assert_eq!(down.pdr_id, PDR_DOWNLINK_V6);
        assert_eq!(down.precedence, PRECEDENCE);
        assert_eq!(down.pdi.source_interface, Interface::Core);
        assert_eq!(
            down.pdi.ue_ip_address,
            Some(UeIpAddress {
                is_destination: true,
                ..up.pdi.ue_ip_address.unwrap()
            })
        );
        assert_eq!(down.pdi.framed_ipv6_routes, up.pdi.framed_ipv6_routes);
        assert_eq!(down.pdi.ethernet_packet_filter, None);
        assert_eq!(down.pdi.logical_port, None);
        assert_eq!(down.far_id, Some(FAR_TO_ACCESS));
        assert_eq!(
            (&down.urr_ids, &down.qer_ids),
            (&vec![URR_ID], &vec![QER_ID])
        );
        assert_eq!(down.activate_predefined_rules, ["web-only"]);
    }

    #[test]
    fn ipv6_pdrs_leave_out_what_the_session_does_not_have() {
        let only_prefix = Ipv6Prefixes {
            delegated: None,
            ..v6()
        };
        for p in session_ipv6_pdrs(&session(), &only_prefix) {
            assert!(p.pdi.framed_ipv6_routes.is_empty());
            assert!(p.pdi.ue_ip_address.is_some());
        }
        let only_delegated = Ipv6Prefixes {
            prefix: None,
            ..v6()
        };
        for p in session_ipv6_pdrs(&session(), &only_delegated) {
            assert_eq!(p.pdi.ue_ip_address, None);
            assert_eq!(p.pdi.framed_ipv6_routes, [route("2001:db8:200::", 56)]);
        }
        let no_acl = IpoeSession {
            acl: None,
            ..session()
        };
        for p in session_ipv6_pdrs(&no_acl, &v6()) {
            assert!(p.activate_predefined_rules.is_empty());
        }
    }

    #[test]
    fn ipv6_modification_requests_install_replace_and_remove() {
        let pdrs = session_ipv6_pdrs(&session(), &v6());
        let install = ipv6_install_request(pdrs.clone());
        assert_eq!(install.create_pdrs, pdrs);
        assert_eq!(
            install,
            SessionModificationRequest {
                create_pdrs: pdrs.to_vec(),
                ..Default::default()
            },
            "nothing but the two Create PDRs"
        );
        round_trips(Message::SessionModificationRequest(install));

        let replace = ipv6_replace_request(pdrs.clone());
        assert_eq!(replace.remove_pdrs, [PDR_UPLINK_V6, PDR_DOWNLINK_V6]);
        assert_eq!(replace.create_pdrs, pdrs);
        assert_eq!(
            replace,
            SessionModificationRequest {
                remove_pdrs: vec![3, 4],
                create_pdrs: pdrs.to_vec(),
                ..Default::default()
            }
        );
        round_trips(Message::SessionModificationRequest(replace));

        let remove = ipv6_remove_request();
        assert_eq!(
            remove,
            SessionModificationRequest {
                remove_pdrs: vec![3, 4],
                ..Default::default()
            }
        );
        round_trips(Message::SessionModificationRequest(remove));
    }

    #[test]
    fn establishment_with_ipv6_adds_pdrs_3_and_4() {
        assert_eq!(
            establishment_request_with_ipv6(&session(), None),
            establishment_request(&session())
        );
        let req = establishment_request_with_ipv6(&session(), Some(&v6()));
        let ids: Vec<u16> = req.create_pdrs.iter().map(|p| p.pdr_id).collect();
        assert_eq!(
            ids,
            [PDR_UPLINK, PDR_DOWNLINK, PDR_UPLINK_V6, PDR_DOWNLINK_V6]
        );
        assert_eq!(req.create_pdrs[2..], session_ipv6_pdrs(&session(), &v6()));
        // FARs, QER and URR are those of the IPv4 session.
        let v4 = establishment_request(&session());
        assert_eq!(req.create_fars, v4.create_fars);
        assert_eq!(req.create_qers, v4.create_qers);
        assert_eq!(req.create_urrs, v4.create_urrs);
        round_trips(Message::SessionEstablishmentRequest(req));
    }

    #[test]
    fn acl_change_on_all_four_pdrs() {
        let req = acl_change_request_on(
            &[PDR_UPLINK, PDR_DOWNLINK, PDR_UPLINK_V6, PDR_DOWNLINK_V6],
            Some("web-only"),
            Some("block-smtp"),
        );
        let ids: Vec<u16> = req.update_pdrs.iter().map(|u| u.pdr_id).collect();
        assert_eq!(ids, [1, 2, 3, 4]);
        for u in &req.update_pdrs {
            assert_eq!(u.deactivate_predefined_rules, ["web-only"]);
            assert_eq!(u.activate_predefined_rules, ["block-smtp"]);
        }
        assert_eq!(
            acl_change_request(Some("a"), None).update_pdrs,
            acl_change_request_on(&[PDR_UPLINK, PDR_DOWNLINK], Some("a"), None).update_pdrs
        );
    }
}
