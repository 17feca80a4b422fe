//! The PFCP messages that program one PPPoE subscriber (BBF TR-459 over
//! TS 29.244). Rule ids, the URR, the QER and its MBR semantics, and the ACL as
//! predefined rules are those of [`super::ipoe`] (re-exported here), so rate
//! changes, ACL changes and usage queries of a PPPoE session use the same
//! modification requests.
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
//!
//! IPv6 (IPv6CP, RAs with the session's /64, DHCPv6 IA_PD) adds the PDRs
//! [`PDR_UPLINK_V6`] and [`PDR_DOWNLINK_V6`] of [`super::ipoe`]'s "IPv6"
//! ([`session_ipv6_pdrs`]): the uplink one carries the PPPoE Session ID, PPP
//! Protocol 0x0057 and the Outer Header Removal of the IPv4 uplink PDR. The
//! downlink FAR (and its PPPoE encapsulation) is shared.

use alloc::string::String;
use core::net::Ipv4Addr;

use super::ipoe::{self, IpoeSession, establishment_request};
pub use super::ipoe::{
    FAR_TO_ACCESS, FAR_TO_CORE, Ipv6Prefixes, PDR_DOWNLINK, PDR_DOWNLINK_V6, PDR_UPLINK,
    PDR_UPLINK_V6, PRECEDENCE, QER_ID, URR_ID, acl_change_request, acl_change_request_on,
    ipv6_install_request, ipv6_pdrs, ipv6_remove_request, ipv6_replace_request, modify_qer_request,
    query_usage_request, rate_change_request, update_mbr,
};
use super::{
    BbfOuterHeaderCreation, BbfOuterHeaderRemoval, CreatePdr, Mbr, NodeId, PppProtocol,
    SessionEstablishmentRequest,
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
    /// Name of the user plane ACL applied to the session's traffic (the
    /// Activate Predefined Rules of both PDRs), `None` for no ACL IE.
    pub acl: Option<String>,
}

/// The IPoE session `spec` is built on: its IPv4 PDRs, FARs, QER and URR.
fn ipoe_session(cp_ip: Ipv4Addr, spec: &PppoeSessionSpec) -> IpoeSession {
    IpoeSession {
        cp_seid: spec.cp_seid,
        cp_ipv4: cp_ip,
        node_id: spec.node_id.clone(),
        ue_ipv4: spec.ue_ipv4,
        mac: spec.mac,
        port: spec.port,
        svlan: spec.svlan,
        cvlan: spec.cvlan,
        rate: spec.rate,
        acl: spec.acl.clone(),
    }
}

/// Adds the PPPoE match and decapsulation to IPv4 uplink PDR `pdr`.
fn add_pppoe_uplink(pdr: &mut CreatePdr, spec: &PppoeSessionSpec) {
    pdr.pdi.pppoe_session_id = Some(spec.session_id);
    pdr.pdi.ppp_protocol = Some(PppProtocol::DATA);
    pdr.bbf_outer_header_removal = Some(BbfOuterHeaderRemoval::PPP_PPPOE_ETHERNET);
}

/// Session Establishment Request for PPPoE session `spec`; `cp_ip` is the
/// control plane's IPv4 address, sent in the CP F-SEID. It is the IPoE
/// establishment ([`super::ipoe::establishment_request`]) with the PPPoE IEs
/// added to its uplink PDR and downlink FAR.
pub fn session_establishment(
    cp_ip: Ipv4Addr,
    spec: &PppoeSessionSpec,
) -> SessionEstablishmentRequest {
    session_establishment_with_ipv6(cp_ip, spec, None)
}

/// [`session_establishment`] with, when `ipv6` is given, the session's
/// IPv6 PDRs ([`session_ipv6_pdrs`]) after the IPv4 ones: how a session
/// whose IPv6CP is already open is programmed again (a restarted control
/// plane, a user plane that lost its sessions).
pub fn session_establishment_with_ipv6(
    cp_ip: Ipv4Addr,
    spec: &PppoeSessionSpec,
    ipv6: Option<&Ipv6Prefixes>,
) -> SessionEstablishmentRequest {
    let mut req = establishment_request(&ipoe_session(cp_ip, spec));
    for pdr in req
        .create_pdrs
        .iter_mut()
        .filter(|p| p.pdr_id == PDR_UPLINK)
    {
        add_pppoe_uplink(pdr, spec);
    }
    for far in req
        .create_fars
        .iter_mut()
        .filter(|f| f.far_id == FAR_TO_ACCESS)
    {
        if let Some(fp) = far.forwarding_parameters.as_mut() {
            fp.bbf_outer_header_creation = Some(BbfOuterHeaderCreation::pppoe(spec.session_id));
            fp.bbf_mtu = (spec.mtu != 0).then_some(spec.mtu);
        }
    }
    if let Some(v6) = ipv6 {
        let v6_pdrs = req
            .create_pdrs
            .iter()
            .find(|p| p.pdr_id == PDR_UPLINK)
            .map(|up| ipv6_pdrs(up, v6));
        req.create_pdrs.extend(v6_pdrs.into_iter().flatten());
    }
    req
}

/// The IPv6 PDRs of PPPoE session `spec` for prefixes `v6`: [`ipv6_pdrs`]
/// of its IPv4 uplink PDR, for [`ipv6_install_request`] and
/// [`ipv6_replace_request`].
pub fn session_ipv6_pdrs(spec: &PppoeSessionSpec, v6: &Ipv6Prefixes) -> [CreatePdr; 2] {
    let mut up = ipoe::uplink_pdr(&ipoe_session(Ipv4Addr::UNSPECIFIED, spec));
    add_pppoe_uplink(&mut up, spec);
    ipv6_pdrs(&up, v6)
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
            acl: Some("web-only".into()),
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
        for pdr in &req.create_pdrs {
            assert_eq!(pdr.activate_predefined_rules, ["web-only"]);
        }

        let msg = Message::SessionEstablishmentRequest(req);
        let bytes = msg.encode(7, Some(0));
        let (_, back, stats) = Message::parse_counting(&bytes).unwrap();
        assert_eq!(back, msg);
        assert_eq!(stats, ParseStats::default(), "no IE skipped");
    }

    fn v6() -> Ipv6Prefixes {
        Ipv6Prefixes {
            prefix: Some(("2001:db8:100:1::".parse().unwrap(), 64)),
            delegated: Some(("2001:db8:200:100::".parse().unwrap(), 56)),
        }
    }

    #[test]
    fn ipv6_uplink_pdr_has_the_pppoe_match_with_ppp_protocol_ipv6() {
        let v4 = session_establishment(Ipv4Addr::LOCALHOST, &spec());
        let up4 = &v4.create_pdrs[0];
        let [up, down] = session_ipv6_pdrs(&spec(), &v6());
        assert_eq!(up.pdr_id, PDR_UPLINK_V6);
        assert_eq!(up.pdi.pppoe_session_id, Some(0x42));
        assert_eq!(
            up.pdi.ppp_protocol,
            Some(PppProtocol {
                control: false,
                data: false,
                protocol: Some(0x0057),
            })
        );
        assert_eq!(
            up.bbf_outer_header_removal,
            Some(BbfOuterHeaderRemoval::PPP_PPPOE_ETHERNET)
        );
        assert_eq!(
            up.pdi.ethernet_packet_filter,
            up4.pdi.ethernet_packet_filter
        );
        assert_eq!(up.pdi.logical_port, up4.pdi.logical_port);
        assert_eq!(
            up.pdi.ue_ip_address.and_then(|u| u.ipv6_prefix_len),
            Some(64)
        );
        assert_eq!(up.far_id, Some(FAR_TO_CORE));
        assert_eq!(up.activate_predefined_rules, ["web-only"]);
        assert_eq!(down.pdr_id, PDR_DOWNLINK_V6);
        assert_eq!(down.far_id, Some(FAR_TO_ACCESS));
        assert_eq!(down.pdi.pppoe_session_id, None);
        assert_eq!(down.pdi.ppp_protocol, None);
        assert_eq!(down.bbf_outer_header_removal, None);
        assert_eq!(down.pdi.framed_ipv6_routes.len(), 1);
        assert_eq!(down.pdi.framed_ipv6_routes[0].len, 56);
    }

    #[test]
    fn establishment_with_ipv6_round_trips() {
        assert_eq!(
            session_establishment_with_ipv6(Ipv4Addr::LOCALHOST, &spec(), None),
            session_establishment(Ipv4Addr::LOCALHOST, &spec())
        );
        let req = session_establishment_with_ipv6(Ipv4Addr::LOCALHOST, &spec(), Some(&v6()));
        assert_eq!(req.create_pdrs.len(), 4);
        assert_eq!(req.create_pdrs[2..], session_ipv6_pdrs(&spec(), &v6()));
        // The downlink FAR with the PPPoE encapsulation is shared.
        assert_eq!(
            req.create_fars,
            session_establishment(Ipv4Addr::LOCALHOST, &spec()).create_fars
        );
        let msg = Message::SessionEstablishmentRequest(req);
        let (_, back, stats) = Message::parse_counting(&msg.encode(8, Some(0))).unwrap();
        assert_eq!(back, msg);
        assert_eq!(stats, ParseStats::default(), "no IE skipped");

        let msg = Message::SessionModificationRequest(ipv6_replace_request(session_ipv6_pdrs(
            &spec(),
            &v6(),
        )));
        let (_, back, stats) = Message::parse_counting(&msg.encode(9, Some(0x1001))).unwrap();
        assert_eq!(back, msg);
        assert_eq!(stats, ParseStats::default());
    }

    #[test]
    fn zero_mtu_leaves_the_ie_out() {
        let req =
            session_establishment(Ipv4Addr::LOCALHOST, &PppoeSessionSpec { mtu: 0, ..spec() });
        let fp = req.create_fars[1].forwarding_parameters.as_ref().unwrap();
        assert_eq!(fp.bbf_mtu, None);
    }
}
