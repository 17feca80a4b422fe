//! PPPoE sessions over PFCP (BBF TR-459 IEs built by `vbng_cups::pfcp::pppoe`): the entry
//! the agent derives (session id, MTU, MSS clamp), traffic through the worker's pipeline,
//! coexistence with IPoE, adoption by a restarted CP, and rule failures.

use super::*;
use crate::wire::pppoe::{PppProtocol, SESSION_HEADER_LEN, SessionRepr};
use vbng_cups::pfcp::pppoe::{self, PppoeSessionSpec};
use vbng_cups::pfcp::{BbfOuterHeaderCreation, Cause, ForwardingParameters, Interface};

const SID: u16 = 0x1234;
const PPP_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x34];
const PPP_IP: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 34);

/// A PPPoE subscriber on port 1, QinQ 2000/100, session [`SID`], MTU 1492.
fn spec() -> PppoeSessionSpec {
    PppoeSessionSpec {
        cp_seid: 0xc0de,
        node_id: cp_node(),
        ue_ipv4: PPP_IP,
        mac: PPP_MAC,
        port: 1,
        svlan: 2000,
        cvlan: 100,
        rate: None,
        session_id: SID,
        mtu: 1492,
        acl: None,
    }
}

fn request(s: &PppoeSessionSpec) -> SessionEstablishmentRequest {
    pppoe::session_establishment(Ipv4Addr::new(127, 0, 0, 1), s)
}

fn establish(
    a: &mut PfcpAgent,
    b: &mut PipelineBackend,
    req: SessionEstablishmentRequest,
    seq: u32,
) -> SessionEstablishmentResponse {
    establish_with(a, b, req, seq).0
}

/// One upstream PPPoE data frame of session `sid` from the subscriber and one downstream
/// packet to it; returns the verdicts and the downstream frame as sent.
fn ppp_traffic(b: &mut PipelineBackend, sid: u16) -> ([Verdict; 2], Vec<u8>) {
    b.pipeline.set_next_hop_mac(Some(NH_MAC));
    let up_l2 = L2Header {
        dst: GW_MAC,
        src: EthernetAddress(PPP_MAC),
        svlan: Some(2000),
        cvlan: Some(100),
        ethertype: EtherType::Ipv4,
    };
    let ipoe = build_ipv4_udp(&up_l2, PPP_IP, INTERNET, 40000, 53, 64, &[0x5a; 100]);
    let ip = &ipoe[22..22 + 128];
    let mut up = ipoe[..22].to_vec();
    up[20..22].copy_from_slice(&[0x88, 0x64]);
    let mut hdr = [0u8; SESSION_HEADER_LEN];
    SessionRepr {
        session_id: sid,
        protocol: PppProtocol::Ipv4,
        payload_len: 128,
    }
    .emit(&mut hdr);
    up.extend_from_slice(&hdr);
    up.extend_from_slice(ip);
    let down_l2 = L2Header {
        dst: CORE_MAC,
        src: NH_MAC,
        svlan: None,
        cvlan: None,
        ethertype: EtherType::Ipv4,
    };
    let down = build_ipv4_udp(&down_l2, INTERNET, PPP_IP, 53, 40000, 64, &[0x5a; 100]);
    let mut frames = [Frame::new(), Frame::new()];
    frames[0].set_data(&up).unwrap();
    frames[0].port = 1;
    frames[1].set_data(&down).unwrap();
    frames[1].port = 2;
    let mut verdicts = [Verdict::ToControlPlane; 2];
    b.pipeline.process_burst(0, &mut frames, &mut verdicts);
    (verdicts, frames[1].data().to_vec())
}

#[test]
fn establishment_installs_a_pppoe_session() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    associate(&mut a, &mut b);
    let r = establish(&mut a, &mut b, request(&spec()), 2);
    assert_eq!(r.cause, Cause::RequestAccepted);
    let seid = r.up_f_seid.expect("UP F-SEID").seid;
    let entry = *b.pipeline.sessions().get(seid).expect("installed");
    assert_eq!(
        entry.access,
        AccessKey {
            port: 1,
            svlan: 2000,
            cvlan: 100,
            mac: EthernetAddress(PPP_MAC),
            pppoe_session: SID,
        }
    );
    assert_eq!(entry.ipv4, PPP_IP);
    assert_eq!((entry.mtu, entry.mss_clamp), (1492, 1452));
    assert!(entry.gate_open);

    let (v, down) = ppp_traffic(&mut b, SID);
    assert_eq!(v, [Verdict::Forward(2), Verdict::Forward(1)]);
    // Downstream leaves as session SID: Ethernet + QinQ + PPPoE + PPP + IPv4.
    assert_eq!(&down[20..22], &[0x88, 0x64]);
    assert_eq!(
        SessionRepr::parse(&down[22..]).unwrap(),
        SessionRepr {
            session_id: SID,
            protocol: PppProtocol::Ipv4,
            payload_len: 128
        }
    );
    // Another session id from the same MAC is not this subscriber.
    let (v, _) = ppp_traffic(&mut b, SID + 1);
    assert_eq!(v[0], Verdict::Drop(crate::pipeline::DropReason::NoSession));
}

#[test]
fn mtu_comes_from_the_bbf_mtu_ie_or_defaults_to_1492() {
    for (mtu, want) in [(1400, (1400, 1360)), (0, (1492, 1452))] {
        let (mut a, mut b) = (agent(), PipelineBackend::new());
        associate(&mut a, &mut b);
        let r = establish(
            &mut a,
            &mut b,
            request(&PppoeSessionSpec { mtu, ..spec() }),
            2,
        );
        assert_eq!(r.cause, Cause::RequestAccepted);
        let e = b
            .pipeline
            .sessions()
            .get(r.up_f_seid.unwrap().seid)
            .unwrap();
        assert_eq!((e.mtu, e.mss_clamp), want, "MTU IE {mtu}");
    }
    // IPoE sessions keep no MTU and no clamp.
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    let seid = established(&mut a, &mut b);
    let e = b.pipeline.sessions().get(seid).unwrap();
    assert_eq!((e.mtu, e.mss_clamp, e.access.pppoe_session), (0, 0, 0));
}

#[test]
fn update_far_keeps_or_changes_the_mtu() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    associate(&mut a, &mut b);
    let r = establish(
        &mut a,
        &mut b,
        request(&PppoeSessionSpec {
            mtu: 1400,
            ..spec()
        }),
        2,
    );
    let seid = r.up_f_seid.unwrap().seid;
    let modify = |a: &mut PfcpAgent, b: &mut PipelineBackend, fp: ForwardingParameters, seq| {
        let req = Message::SessionModificationRequest(SessionModificationRequest {
            update_fars: vec![UpdateFar {
                far_id: pppoe::FAR_TO_ACCESS,
                apply_action: None,
                update_forwarding_parameters: Some(fp),
            }],
            ..Default::default()
        });
        let (_, resp) = exchange(a, b, &req, seq, Some(seid));
        assert!(
            matches!(resp, Message::SessionModificationResponse(ref r) if r.cause == Cause::RequestAccepted),
            "{resp:?}"
        );
    };
    // Only the destination: the encapsulation and the MTU stay.
    modify(
        &mut a,
        &mut b,
        ForwardingParameters {
            destination_interface: Interface::Access,
            ..Default::default()
        },
        3,
    );
    let e = *a.session(seid).unwrap();
    assert_eq!(
        (e.mtu, e.mss_clamp, e.access.pppoe_session),
        (1400, 1360, SID)
    );
    // A new MTU.
    modify(
        &mut a,
        &mut b,
        ForwardingParameters {
            destination_interface: Interface::Access,
            bbf_mtu: Some(1300),
            ..Default::default()
        },
        4,
    );
    let e = *b
        .pipeline
        .sessions()
        .get(a.session(seid).unwrap().id)
        .unwrap();
    assert_eq!((e.mtu, e.mss_clamp), (1300, 1260));
}

#[test]
fn ipoe_and_pppoe_sessions_of_one_mac_coexist() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    associate(&mut a, &mut b);
    // The IPoE subscriber's MAC and C-VLAN, but a PPPoE session and another address.
    let ppp = PppoeSessionSpec {
        mac: SUB_MAC,
        svlan: 0,
        ..spec()
    };
    assert_eq!(
        establish(&mut a, &mut b, establishment(), 2).cause,
        Cause::RequestAccepted
    );
    assert_eq!(
        establish(&mut a, &mut b, request(&ppp), 3).cause,
        Cause::RequestAccepted
    );
    assert_eq!(b.pipeline.session_count(), 2);
    assert_eq!(b.traffic(10), [Verdict::Forward(2), Verdict::Forward(1)]);
}

#[test]
fn restarted_cp_adopts_a_pppoe_session() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    associate(&mut a, &mut b);
    let old = establish(&mut a, &mut b, request(&spec()), 2)
        .up_f_seid
        .unwrap()
        .seid;
    assert_eq!(
        ppp_traffic(&mut b, SID).0,
        [Verdict::Forward(2), Verdict::Forward(1)]
    );
    let before = b.pipeline.session_counters(old).unwrap();

    reassociate_after_restart(&mut a, &mut b, 10);
    a.drain_events();
    let r = establish(
        &mut a,
        &mut b,
        request(&PppoeSessionSpec {
            cp_seid: 0xbeef,
            ..spec()
        }),
        11,
    );
    assert_eq!(r.cause, Cause::RequestAccepted);
    let new = r.up_f_seid.unwrap().seid;
    assert_ne!(new, old);
    assert_eq!(a.stats().adopted, 1);
    assert_eq!(b.pipeline.session_count(), 1);
    let e = a.session(new).expect("adopted");
    assert_eq!((e.id, e.access.pppoe_session), (old, SID));
    assert_eq!(b.pipeline.session_counters(old), Some(before));
    assert_eq!(
        ppp_traffic(&mut b, SID).0,
        [Verdict::Forward(2), Verdict::Forward(1)]
    );

    // The client reconnected under another PPPoE session with the same address: a partial
    // overlap, refused until the old session is deleted.
    let r = establish(
        &mut a,
        &mut b,
        request(&PppoeSessionSpec {
            cp_seid: 0xbef0,
            session_id: SID + 1,
            ..spec()
        }),
        12,
    );
    assert_eq!(r.cause, Cause::RuleCreationModificationFailure);
    assert_eq!(a.stats().adopted, 1);
}

#[test]
fn bad_pppoe_rules_are_rule_failures() {
    // Reserved session ids.
    for sid in [0u16, 0xffff] {
        let (mut a, mut b) = (agent(), PipelineBackend::new());
        associate(&mut a, &mut b);
        let r = establish(
            &mut a,
            &mut b,
            request(&PppoeSessionSpec {
                session_id: sid,
                ..spec()
            }),
            2,
        );
        assert_eq!(r.cause, Cause::RuleCreationModificationFailure, "{sid:#x}");
        assert_eq!(b.pipeline.session_count(), 0);
    }
    // Downlink encapsulation for another session than the uplink PDR matches.
    let mut req = request(&spec());
    req.create_fars[1]
        .forwarding_parameters
        .as_mut()
        .unwrap()
        .bbf_outer_header_creation = Some(BbfOuterHeaderCreation::pppoe(SID + 1));
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    associate(&mut a, &mut b);
    assert_eq!(
        establish(&mut a, &mut b, req, 2).cause,
        Cause::RuleCreationModificationFailure
    );
    assert_eq!(
        derive_entry(
            0,
            &SessionRules {
                pdrs: vec![],
                ..Default::default()
            },
            2,
            &crate::acl::AclSet::empty()
        ),
        Err(RuleError::NoAccessMatch)
    );
}
