//! PFCP agent tests: messages built with vbng-cups, fed to the sans-IO handler, whose
//! session commands are applied to a real [`Pipeline`].

use super::*;
use crate::host::pfcp_runtime::{AgentPublished, run};
use crate::packet::Frame;
use crate::pipeline::{Pipeline, PipelineConfig, SessionCommand, Verdict};
use crate::session::{AccessKey, SessionIpv6};
use crate::wire::frame::{L2Header, build_ipv4_udp};
use crate::wire::{EtherType, EthernetAddress};
use std::sync::atomic::{AtomicBool, Ordering};
use vbng_cups::pfcp::ipoe::{self, IpoeSession};
use vbng_cups::pfcp::{
    ApplyAction, AssociationReleaseRequest, AssociationSetupRequest, EthernetPacketFilter,
    GateStatus, MacAddress, SessionDeletionRequest, UeIpAddress, UpdateFar, UpdateQer,
    UsageReportTrigger, VolumeMeasurement,
};

const CP: &str = "127.0.0.1:8805";
const CP_SEID: u64 = 0xc0ffee;
const SUB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x12];
const SUB_IP: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 10);
const GW_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0x5e, 0, 1, 1]);
const CORE_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0xc0, 1]);
const NH_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]);
const INTERNET: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);

/// Applies commands to a real pipeline and records them.
struct PipelineBackend {
    pipeline: Pipeline,
    log: Vec<SessionCommand>,
    /// Sessions whose counters were read, in order.
    queried: Vec<SessionId>,
    /// Simulates a worker that does not answer counter reads in time.
    silent_queries: bool,
}

impl PipelineBackend {
    fn new() -> Self {
        let cfg = PipelineConfig {
            access_ports: vec![0, 1],
            core_port: 2,
            core_mac: CORE_MAC,
            core_ipv4: Ipv4Addr::new(198, 51, 100, 2),
            core_prefix_len: 24,
            next_hop: Ipv4Addr::new(198, 51, 100, 1),
            gateway_mac: GW_MAC,
            redirect_pps: 100,
            arp_retry_ns: 1_000_000_000,
        };
        PipelineBackend {
            pipeline: Pipeline::new(cfg, 1),
            log: Vec::new(),
            queried: Vec::new(),
            silent_queries: false,
        }
    }

    /// Sends one upstream packet from the contract's subscriber (port 1, C-VLAN 100) and one
    /// downstream packet to it, each with a UDP payload of `payload` bytes (IPv4 length
    /// `28 + payload`), through the pipeline; returns their verdicts.
    fn traffic(&mut self, payload: usize) -> [Verdict; 2] {
        self.pipeline.set_next_hop_mac(Some(NH_MAC));
        let data = vec![0x5a; payload];
        let up = L2Header {
            dst: GW_MAC,
            src: EthernetAddress(SUB_MAC),
            svlan: None,
            cvlan: Some(100),
            ethertype: EtherType::Ipv4,
        };
        let down = L2Header {
            dst: CORE_MAC,
            src: NH_MAC,
            svlan: None,
            cvlan: None,
            ethertype: EtherType::Ipv4,
        };
        let mut frames = [Frame::new(), Frame::new()];
        frames[0]
            .set_data(&build_ipv4_udp(&up, SUB_IP, INTERNET, 40000, 53, 64, &data))
            .unwrap();
        frames[0].port = 1;
        frames[1]
            .set_data(&build_ipv4_udp(
                &down, INTERNET, SUB_IP, 53, 40000, 64, &data,
            ))
            .unwrap();
        frames[1].port = 2;
        let mut verdicts = [Verdict::ToControlPlane; 2];
        self.pipeline.process_burst(0, &mut frames, &mut verdicts);
        verdicts
    }
}

impl SessionBackend for PipelineBackend {
    fn upsert(&mut self, entry: SessionEntry) -> bool {
        self.log.push(SessionCommand::Upsert(entry));
        self.pipeline.try_upsert(entry).is_ok()
    }

    fn remove(&mut self, id: SessionId) -> Option<UsageCounters> {
        self.log.push(SessionCommand::Remove(id));
        self.pipeline.apply(SessionCommand::Remove(id))
    }

    fn set_acls(&mut self, acls: Arc<AclSet>) -> bool {
        self.pipeline.set_acls(acls);
        true
    }

    fn query(&mut self, id: SessionId) -> Option<UsageCounters> {
        self.queried.push(id);
        if self.silent_queries {
            return None;
        }
        self.pipeline.session_counters(id)
    }
}

fn cp() -> SocketAddr {
    CP.parse().unwrap()
}

fn agent() -> PfcpAgent {
    PfcpAgent::new(AgentConfig {
        node_id: NodeId::Ipv4(Ipv4Addr::new(127, 0, 0, 2)),
        pfcp_ipv4: Ipv4Addr::new(127, 0, 0, 2),
        gtpu_ipv4: Ipv4Addr::new(127, 0, 0, 2),
        access_ports: 2,
        recovery_time_stamp: RecoveryTimeStamp(3_900_000_000),
        heartbeat_interval_ms: 10_000,
        heartbeat_misses: 3,
    })
}

fn cp_node() -> NodeId {
    NodeId::Ipv4(Ipv4Addr::new(127, 0, 0, 1))
}

/// Sends `msg` and returns the single parsed reply.
fn exchange(
    a: &mut PfcpAgent,
    b: &mut PipelineBackend,
    msg: &Message,
    seq: u32,
    seid: Option<u64>,
) -> (pfcp::Header, Message) {
    let out = a.handle(0, cp(), &msg.encode(seq, seid), b);
    assert_eq!(
        out.len(),
        1,
        "expected exactly one reply to {:?}",
        msg.msg_type()
    );
    assert_eq!(out[0].0, cp());
    Message::parse(&out[0].1).unwrap()
}

fn associate(a: &mut PfcpAgent, b: &mut PipelineBackend) -> AssociationSetupResponse {
    let req = Message::AssociationSetupRequest(AssociationSetupRequest {
        node_id: cp_node(),
        recovery_time_stamp: RecoveryTimeStamp(3_800_000_000),
        ..AssociationSetupRequest::default()
    });
    match exchange(a, b, &req, 1, None).1 {
        Message::AssociationSetupResponse(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

/// The contract's IPoE subscriber on port 1, C-VLAN 100, without a rate.
fn subscriber() -> IpoeSession {
    IpoeSession {
        cp_seid: CP_SEID,
        cp_ipv4: Ipv4Addr::new(127, 0, 0, 1),
        node_id: cp_node(),
        ue_ipv4: SUB_IP,
        mac: SUB_MAC,
        port: 1,
        svlan: 0,
        cvlan: 100,
        rate: None,
        acl: None,
    }
}

/// The establishment request the control plane sends for [`subscriber`].
fn establishment() -> SessionEstablishmentRequest {
    ipoe::establishment_request(&subscriber())
}

/// Associates and establishes the contract's session; returns the UP SEID.
fn established(a: &mut PfcpAgent, b: &mut PipelineBackend) -> u64 {
    associate(a, b);
    let msg = Message::SessionEstablishmentRequest(establishment());
    let (h, resp) = exchange(a, b, &msg, 2, Some(0));
    let Message::SessionEstablishmentResponse(r) = resp else {
        panic!("unexpected {resp:?}");
    };
    assert_eq!(r.cause, Cause::RequestAccepted);
    assert_eq!(h.seid, Some(CP_SEID), "response goes to the CP's SEID");
    let f = r.up_f_seid.expect("UP F-SEID");
    assert_eq!(f.ipv4, Some(Ipv4Addr::new(127, 0, 0, 2)));
    f.seid
}

#[test]
fn heartbeat_is_answered_with_our_recovery_time_stamp() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    let req = Message::HeartbeatRequest(HeartbeatRequest {
        recovery_time_stamp: RecoveryTimeStamp(1),
    });
    let (h, resp) = exchange(&mut a, &mut b, &req, 77, None);
    assert_eq!(h.sequence, 77);
    assert_eq!(
        resp,
        Message::HeartbeatResponse(HeartbeatResponse {
            recovery_time_stamp: RecoveryTimeStamp(3_900_000_000)
        })
    );
}

#[test]
fn association_setup_advertises_gtpu_address() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    let r = associate(&mut a, &mut b);
    assert_eq!(r.cause, Cause::RequestAccepted);
    assert_eq!(r.node_id, NodeId::Ipv4(Ipv4Addr::new(127, 0, 0, 2)));
    assert_eq!(r.recovery_time_stamp, RecoveryTimeStamp(3_900_000_000));
    assert!(r.up_function_features.is_some());
    assert_eq!(r.user_plane_ip_resources.len(), 1);
    assert_eq!(
        r.user_plane_ip_resources[0].ipv4,
        Some(Ipv4Addr::new(127, 0, 0, 2))
    );
    assert!(a.is_associated());
    assert!(matches!(
        a.drain_events()[..],
        [AgentEvent::Associated { .. }]
    ));
}

#[test]
fn establishment_installs_the_subscriber() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    let seid = established(&mut a, &mut b);
    let expected = SessionEntry {
        id: seid,
        access: AccessKey {
            port: 1,
            svlan: 0,
            cvlan: 100,
            mac: EthernetAddress(SUB_MAC),
            pppoe_session: 0,
        },
        ipv4: SUB_IP,
        gate_open: true,
        qos: crate::session::SessionQos::UNLIMITED,
        mtu: 0,
        mss_clamp: 0,
        acl: crate::acl::NO_ACL,
        counters: UsageCounters::default(),
        ipv6: SessionIpv6::NONE,
    };
    assert_eq!(b.log, vec![SessionCommand::Upsert(expected)]);
    assert_eq!(b.pipeline.session_count(), 1);
    assert_eq!(b.pipeline.sessions().get(seid), Some(&expected));
}

#[test]
fn establishment_without_association_is_refused() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    let msg = Message::SessionEstablishmentRequest(establishment());
    let (_, resp) = exchange(&mut a, &mut b, &msg, 2, Some(0));
    let Message::SessionEstablishmentResponse(r) = resp else {
        panic!("unexpected {resp:?}");
    };
    assert_eq!(r.cause, Cause::NoEstablishedPfcpAssociation);
    assert!(b.log.is_empty());
}

#[test]
fn bad_logical_port_is_a_rule_failure() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    associate(&mut a, &mut b);
    let mut req = establishment();
    req.create_pdrs[0].pdi.logical_port = Some(b"7".to_vec());
    let msg = Message::SessionEstablishmentRequest(req);
    let (_, resp) = exchange(&mut a, &mut b, &msg, 2, Some(0));
    let Message::SessionEstablishmentResponse(r) = resp else {
        panic!("unexpected {resp:?}");
    };
    assert_eq!(r.cause, Cause::RuleCreationModificationFailure);
    assert_eq!(r.up_f_seid, None);
    assert!(b.log.is_empty());
}

#[test]
fn conflicting_address_is_refused() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    established(&mut a, &mut b);
    let mut req = establishment();
    req.cp_f_seid.seid = CP_SEID + 1;
    req.create_pdrs[0].pdi.ethernet_packet_filter = Some(EthernetPacketFilter {
        mac_address: Some(MacAddress::source([2, 0, 0, 0, 0, 0x99])),
        ..EthernetPacketFilter::default()
    });
    let msg = Message::SessionEstablishmentRequest(req);
    let (_, resp) = exchange(&mut a, &mut b, &msg, 3, Some(0));
    let Message::SessionEstablishmentResponse(r) = resp else {
        panic!("unexpected {resp:?}");
    };
    assert_eq!(r.cause, Cause::RuleCreationModificationFailure);
    assert_eq!(b.pipeline.session_count(), 1);
}

#[test]
fn modification_closes_and_reopens_the_gate() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    let seid = established(&mut a, &mut b);
    let close = Message::SessionModificationRequest(SessionModificationRequest {
        update_qers: vec![UpdateQer {
            qer_id: 1,
            gate_status: Some(GateStatus::CLOSED),
            mbr: None,
        }],
        ..SessionModificationRequest::default()
    });
    let (h, resp) = exchange(&mut a, &mut b, &close, 3, Some(seid));
    assert_eq!(h.seid, Some(CP_SEID));
    assert!(
        matches!(resp, Message::SessionModificationResponse(ref r) if r.cause == Cause::RequestAccepted)
    );
    assert!(!b.pipeline.sessions().get(seid).unwrap().gate_open);

    // FAR apply action DROP also closes; FORW on FAR and an open QER reopen.
    let drop_far = Message::SessionModificationRequest(SessionModificationRequest {
        update_qers: vec![UpdateQer {
            qer_id: 1,
            gate_status: Some(GateStatus::OPEN),
            mbr: None,
        }],
        update_fars: vec![UpdateFar {
            far_id: 2,
            apply_action: Some(ApplyAction::DROP),
            update_forwarding_parameters: None,
        }],
        ..SessionModificationRequest::default()
    });
    exchange(&mut a, &mut b, &drop_far, 4, Some(seid));
    assert!(!b.pipeline.sessions().get(seid).unwrap().gate_open);
    let forw = Message::SessionModificationRequest(SessionModificationRequest {
        update_fars: vec![UpdateFar {
            far_id: 2,
            apply_action: Some(ApplyAction::FORW),
            update_forwarding_parameters: None,
        }],
        ..SessionModificationRequest::default()
    });
    exchange(&mut a, &mut b, &forw, 5, Some(seid));
    assert!(b.pipeline.sessions().get(seid).unwrap().gate_open);
}

#[test]
fn unknown_session_gets_context_not_found() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    associate(&mut a, &mut b);
    let del = Message::SessionDeletionRequest(SessionDeletionRequest {});
    let (h, resp) = exchange(&mut a, &mut b, &del, 9, Some(0xdead));
    assert_eq!(h.seid, Some(0));
    assert!(
        matches!(resp, Message::SessionDeletionResponse(ref r) if r.cause == Cause::SessionContextNotFound)
    );
    let m = Message::SessionModificationRequest(SessionModificationRequest::default());
    let (_, resp) = exchange(&mut a, &mut b, &m, 10, Some(0xdead));
    assert!(
        matches!(resp, Message::SessionModificationResponse(ref r) if r.cause == Cause::SessionContextNotFound)
    );
}

#[test]
fn deletion_returns_usage_report_with_final_counters() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    let seid = established(&mut a, &mut b);
    // Pretend the worker counted traffic.
    let counted = UsageCounters {
        ul_packets: 3,
        ul_bytes: 252,
        dl_packets: 2,
        dl_bytes: 168,
    };
    let slot = b.pipeline.sessions().lookup_id(seid).unwrap();
    let _ = slot;
    b.pipeline
        .apply(SessionCommand::Remove(seid))
        .expect("session present");
    let mut entry = *a.session(seid).unwrap();
    entry.counters = counted;
    b.pipeline.try_upsert(entry).unwrap();
    b.log.clear();

    let del = Message::SessionDeletionRequest(SessionDeletionRequest {});
    let (h, resp) = exchange(&mut a, &mut b, &del, 11, Some(seid));
    assert_eq!(h.seid, Some(CP_SEID));
    let Message::SessionDeletionResponse(r) = resp else {
        panic!("unexpected {resp:?}");
    };
    assert_eq!(r.cause, Cause::RequestAccepted);
    assert_eq!(b.log, vec![SessionCommand::Remove(seid)]);
    assert_eq!(r.usage_reports.len(), 1);
    let ur = &r.usage_reports[0];
    assert_eq!(ur.urr_id, 1);
    assert!(ur.trigger.contains(UsageReportTrigger::TERMR));
    assert_eq!(
        ur.volume,
        Some(VolumeMeasurement::from_counters(3, 252, 2, 168))
    );
    assert_eq!(b.pipeline.session_count(), 0);
    assert_eq!(a.session_count(), 0);
}

#[test]
fn retransmitted_request_gets_the_cached_response() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    associate(&mut a, &mut b);
    let bytes = Message::SessionEstablishmentRequest(establishment()).encode(42, Some(0));
    let first = a.handle(0, cp(), &bytes, &mut b);
    let second = a.handle(1000, cp(), &bytes, &mut b);
    assert_eq!(first, second);
    assert_eq!(
        b.log.len(),
        1,
        "the retransmission must not be executed again"
    );
    assert_eq!(a.session_count(), 1);
    assert_eq!(a.stats().duplicates, 1);
}

#[test]
fn missing_mandatory_ie_is_answered_with_cause_66() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    // A Heartbeat Request without its Recovery Time Stamp: header only.
    let bytes = [0x20, 1, 0, 4, 0, 0, 5, 0];
    let out = a.handle(0, cp(), &bytes, &mut b);
    assert_eq!(out.len(), 1);
    let (h, _) = Message::parse(&out[0].1).unwrap();
    assert_eq!(h.sequence, 5);
    // Session Deletion Request is fine without IEs; an Establishment Request is not.
    let bytes = [0x21, 50, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0];
    let out = a.handle(0, cp(), &bytes, &mut b);
    let (_, resp) = Message::parse(&out[0].1).unwrap();
    assert!(
        matches!(resp, Message::SessionEstablishmentResponse(ref r) if r.cause == Cause::MandatoryIeMissing),
        "{resp:?}"
    );
}

#[test]
fn garbage_never_panics() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    associate(&mut a, &mut b);
    let good = Message::SessionEstablishmentRequest(establishment()).encode(3, Some(0));
    for cut in 0..good.len() {
        let _ = a.handle(0, cp(), &good[..cut], &mut b);
    }
    for i in 0..good.len() {
        let mut m = good.clone();
        m[i] ^= 0xa5;
        let _ = a.handle(0, cp(), &m, &mut b);
    }
    let out = a.handle(0, cp(), &[0x40, 1, 0, 4, 0, 0, 9, 0], &mut b);
    let (_, resp) = Message::parse(&out[0].1).unwrap();
    assert_eq!(resp, Message::VersionNotSupportedResponse);
}

#[test]
fn release_removes_sessions() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    let seid = established(&mut a, &mut b);
    let rel = Message::AssociationReleaseRequest(AssociationReleaseRequest { node_id: cp_node() });
    let (_, resp) = exchange(&mut a, &mut b, &rel, 20, None);
    assert!(
        matches!(resp, Message::AssociationReleaseResponse(ref r) if r.cause == Cause::RequestAccepted)
    );
    assert_eq!(b.log.last(), Some(&SessionCommand::Remove(seid)));
    assert_eq!(b.pipeline.session_count(), 0);
    assert!(!a.is_associated());
}

#[test]
fn heartbeats_flow_and_loss_is_detected() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    associate(&mut a, &mut b);
    assert!(a.poll(5_000).is_empty(), "not due yet");
    // Answered heartbeat keeps the association up.
    let out = a.poll(10_000);
    assert_eq!(out.len(), 1);
    let (h, m) = Message::parse(&out[0].1).unwrap();
    assert!(matches!(m, Message::HeartbeatRequest(_)));
    let resp = Message::HeartbeatResponse(HeartbeatResponse {
        recovery_time_stamp: RecoveryTimeStamp(3_800_000_000),
    });
    assert!(
        a.handle(10_001, cp(), &resp.encode(h.sequence, None), &mut b)
            .is_empty()
    );
    // Three unanswered heartbeats, then loss.
    let mut t = 20_000;
    for _ in 0..3 {
        assert_eq!(a.poll(t).len(), 1);
        t += 10_000;
    }
    a.drain_events();
    assert!(a.poll(t).is_empty());
    assert_eq!(a.drain_events(), vec![AgentEvent::PeerLost { peer: cp() }]);
    assert!(!a.is_associated());
    assert_eq!(a.stats().peer_lost, 1);
}

#[test]
fn pure_helpers() {
    assert_eq!(parse_logical_port(b"0", 2), Ok(0));
    assert_eq!(parse_logical_port(b"1", 2), Ok(1));
    assert!(parse_logical_port(b"2", 2).is_err());
    assert!(parse_logical_port(b"", 2).is_err());
    assert!(parse_logical_port(b"-1", 2).is_err());
    assert!(parse_logical_port(b"01x", 2).is_err());
    let mut rules = SessionRules {
        pdrs: establishment().create_pdrs,
        fars: establishment().create_fars,
        urrs: establishment().create_urrs,
        qers: establishment().create_qers,
    };
    assert!(
        derive_entry(1, &rules, 2, &AclSet::empty())
            .unwrap()
            .gate_open
    );
    rules.pdrs[1].pdi.ue_ip_address = Some(UeIpAddress {
        ipv4: Some(Ipv4Addr::new(100, 64, 0, 99)),
        ipv6: None,
        is_destination: true,
        ipv6_prefix_len: None,
    });
    assert!(matches!(
        derive_entry(1, &rules, 2, &AclSet::empty()),
        Err(RuleError::UeIpv4Mismatch { .. })
    ));
    rules.pdrs[1].far_id = Some(9);
    rules.pdrs[1].pdi.ue_ip_address = None;
    assert!(matches!(
        derive_entry(1, &rules, 2, &AclSet::empty()),
        Err(RuleError::DanglingReference {
            what: "FAR",
            id: 9,
            ..
        })
    ));
    let reports = deletion_reports(&establishment().create_urrs, &UsageCounters::default(), 0);
    assert_eq!(reports.len(), 1);
}

/// The agent thread over a real UDP socket, programming a real worker thread.
#[test]
fn runtime_over_udp_with_worker_thread() {
    use crate::host::worker::{Worker, WorkerHandle, WorkerShared, WorkerTiming};
    use crate::port::MemoryPort;
    use std::net::UdpSocket;
    use std::sync::Arc;
    use std::time::Duration;

    let shared = Arc::new(WorkerShared::new(8).unwrap());
    let ports = vec![
        MemoryPort::new(0, EthernetAddress([2, 0, 0, 0, 0xa0, 0])),
        MemoryPort::new(1, EthernetAddress([2, 0, 0, 0, 0xa1, 0])),
        MemoryPort::new(2, EthernetAddress([2, 0, 0, 0, 0xc0, 1])),
    ];
    let worker = Worker::new(
        PipelineBackend::new().pipeline,
        ports,
        2,
        shared.clone(),
        None,
    );
    let timing = WorkerTiming {
        busy_poll: Duration::from_micros(100),
        poll_timeout: Duration::from_millis(5),
        stats_interval: Duration::from_millis(1),
    };
    let worker_thread = std::thread::spawn(move || worker.run(timing));

    let up = UdpSocket::bind("127.0.0.1:0").unwrap();
    let up_addr = up.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AgentPublished::default());
    let agent_thread = {
        let (shared, stop, published) = (shared.clone(), stop.clone(), published.clone());
        std::thread::spawn(move || {
            let mut backend = WorkerHandle::new(shared, Duration::from_secs(10));
            run(up, agent(), &mut backend, &published, &stop, None)
        })
    };

    let cp_sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    cp_sock
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let mut ask = |msg: Message, seq: u32, seid: Option<u64>| {
        cp_sock.send_to(&msg.encode(seq, seid), up_addr).unwrap();
        let (n, _) = cp_sock.recv_from(&mut buf).expect("PFCP reply");
        Message::parse(&buf[..n]).unwrap()
    };
    let (_, r) = ask(
        Message::AssociationSetupRequest(AssociationSetupRequest {
            node_id: cp_node(),
            recovery_time_stamp: RecoveryTimeStamp(1),
            ..AssociationSetupRequest::default()
        }),
        1,
        None,
    );
    assert!(
        matches!(r, Message::AssociationSetupResponse(ref a) if a.cause == Cause::RequestAccepted)
    );
    let (_, r) = ask(
        Message::SessionEstablishmentRequest(establishment()),
        2,
        Some(0),
    );
    let Message::SessionEstablishmentResponse(r) = r else {
        panic!("unexpected {r:?}");
    };
    let first_seid = r.up_f_seid.unwrap().seid;
    // The CP re-programs the subscriber under a new CP F-SEID: the worker's entry is adopted.
    let (_, r) = ask(
        Message::SessionEstablishmentRequest(reprogramming(CP_SEID + 1)),
        3,
        Some(0),
    );
    let Message::SessionEstablishmentResponse(r) = r else {
        panic!("unexpected {r:?}");
    };
    assert_eq!(r.cause, Cause::RequestAccepted);
    let seid = r.up_f_seid.unwrap().seid;
    assert_ne!(seid, first_seid);
    // A usage query reads the worker thread's live counters (no traffic yet: zero).
    let (_, r) = ask(
        Message::SessionModificationRequest(ipoe::query_usage_request()),
        4,
        Some(seid),
    );
    let Message::SessionModificationResponse(r) = r else {
        panic!("unexpected {r:?}");
    };
    assert_eq!(r.cause, Cause::RequestAccepted);
    assert_eq!(r.usage_reports.len(), 1);
    assert_eq!(r.usage_reports[0].trigger, UsageReportTrigger::IMMER);
    assert_eq!(
        r.usage_reports[0].volume,
        Some(VolumeMeasurement::from_counters(0, 0, 0, 0))
    );
    let (_, r) = ask(
        Message::SessionDeletionRequest(SessionDeletionRequest {}),
        5,
        Some(seid),
    );
    let Message::SessionDeletionResponse(r) = r else {
        panic!("unexpected {r:?}");
    };
    assert_eq!(r.cause, Cause::RequestAccepted);
    assert_eq!(
        r.usage_reports.len(),
        1,
        "the worker's final counters come back as a usage report"
    );
    assert_eq!(
        r.usage_reports[0].volume,
        Some(VolumeMeasurement::from_counters(0, 0, 0, 0))
    );
    assert_eq!(
        r.usage_reports[0].ur_seqn, 1,
        "numbered after the query's report"
    );

    stop.store(true, Ordering::Relaxed);
    agent_thread.join().unwrap().unwrap();
    assert_eq!(published.associated.load(Ordering::Relaxed), 1);
    assert_eq!(published.rx_messages.load(Ordering::Relaxed), 5);
    assert_eq!(published.adopted.load(Ordering::Relaxed), 1);
    shared.stop.store(true, Ordering::Relaxed);
    shared.waker.wake();
    let w = worker_thread.join().unwrap();
    assert_eq!(w.pipeline().session_count(), 0);
}

/// A CP restart as the agent sees it: an Association Setup with a new Recovery Time Stamp.
fn reassociate_after_restart(a: &mut PfcpAgent, b: &mut PipelineBackend, seq: u32) {
    let sessions = a.session_count();
    let req = Message::AssociationSetupRequest(AssociationSetupRequest {
        node_id: cp_node(),
        recovery_time_stamp: RecoveryTimeStamp(3_800_000_500),
        ..AssociationSetupRequest::default()
    });
    let (_, resp) = exchange(a, b, &req, seq, None);
    assert!(
        matches!(resp, Message::AssociationSetupResponse(ref r) if r.cause == Cause::RequestAccepted)
    );
    assert_eq!(
        a.session_count(),
        sessions,
        "re-association keeps the sessions"
    );
}

/// Sends `req` and returns the establishment response and the header's SEID.
fn establish_with(
    a: &mut PfcpAgent,
    b: &mut PipelineBackend,
    req: SessionEstablishmentRequest,
    seq: u32,
) -> (SessionEstablishmentResponse, Option<u64>) {
    let (h, resp) = exchange(
        a,
        b,
        &Message::SessionEstablishmentRequest(req),
        seq,
        Some(0),
    );
    let Message::SessionEstablishmentResponse(r) = resp else {
        panic!("unexpected {resp:?}");
    };
    (r, h.seid)
}

/// The contract's establishment from a restarted CP: same subscriber, new CP F-SEID.
fn reprogramming(cp_seid: u64) -> SessionEstablishmentRequest {
    let mut req = establishment();
    req.cp_f_seid.seid = cp_seid;
    req
}

#[test]
fn restarted_cp_adopts_the_session_without_losing_traffic_or_counters() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    let old = established(&mut a, &mut b);
    let fwd = [Verdict::Forward(2), Verdict::Forward(1)];
    assert_eq!(b.traffic(100), fwd);
    let before = b.pipeline.session_counters(old).unwrap();
    assert_eq!(
        before,
        UsageCounters {
            ul_packets: 1,
            ul_bytes: 128,
            dl_packets: 1,
            dl_bytes: 128,
        }
    );

    // The CP restarts, re-associates and re-programs the subscriber with a new CP F-SEID.
    reassociate_after_restart(&mut a, &mut b, 100);
    a.drain_events();
    b.log.clear();
    const NEW_CP_SEID: u64 = 0xbeef;
    let (r, h_seid) = establish_with(&mut a, &mut b, reprogramming(NEW_CP_SEID), 101);
    assert_eq!(r.cause, Cause::RequestAccepted);
    assert_eq!(
        h_seid,
        Some(NEW_CP_SEID),
        "response goes to the new CP SEID"
    );
    let new = r.up_f_seid.expect("new UP F-SEID");
    assert_ne!(new.seid, old, "the adopted session gets a new UP SEID");
    assert_eq!(new.ipv4, Some(Ipv4Addr::new(127, 0, 0, 2)));

    // The worker's entry was updated in place (same worker id): no removal, no gap.
    let Some(&SessionCommand::Upsert(entry)) = b.log.first() else {
        panic!("expected one upsert, got {:?}", b.log);
    };
    assert_eq!(b.log.len(), 1, "{:?}", b.log);
    assert_eq!(entry.id, old);
    assert_eq!(a.session(new.seid), Some(&entry));
    assert_eq!(a.session(old), None);
    assert_eq!((a.session_count(), b.pipeline.session_count()), (1, 1));
    assert_eq!(b.pipeline.session_counters(old), Some(before));
    assert_eq!(b.traffic(200), fwd, "forwarding continues after adoption");

    // One log line and one count.
    let events = a.drain_events();
    assert_eq!(
        events,
        vec![AgentEvent::SessionAdopted {
            old_seid: old,
            new_seid: new.seid,
            cp_seid: NEW_CP_SEID,
            access: entry.access,
            ipv4: SUB_IP,
        }]
    );
    let line = events[0].to_string();
    assert!(
        line.starts_with(&format!(
            "session adopted old_seid={old:#x} new_seid={:#x}",
            new.seid
        )),
        "{line}"
    );
    assert_eq!(a.stats().adopted, 1);

    // The CP retrying the same establishment with a new sequence number gets the same SEID.
    let (r, _) = establish_with(&mut a, &mut b, reprogramming(NEW_CP_SEID), 102);
    assert_eq!(r.up_f_seid.map(|f| f.seid), Some(new.seid));
    assert_eq!(a.stats().adopted, 1);
    assert_eq!(a.session_count(), 1);

    // The old SEID no longer answers; the pipeline is untouched by the refusals.
    let m = Message::SessionModificationRequest(SessionModificationRequest::default());
    let (h, resp) = exchange(&mut a, &mut b, &m, 103, Some(old));
    assert_eq!(h.seid, Some(0));
    assert!(
        matches!(resp, Message::SessionModificationResponse(ref r) if r.cause == Cause::SessionContextNotFound),
        "{resp:?}"
    );
    let del = Message::SessionDeletionRequest(SessionDeletionRequest {});
    let (_, resp) = exchange(&mut a, &mut b, &del, 104, Some(old));
    assert!(
        matches!(resp, Message::SessionDeletionResponse(ref r) if r.cause == Cause::SessionContextNotFound),
        "{resp:?}"
    );
    assert_eq!(b.pipeline.session_count(), 1);
    assert_eq!(b.traffic(0), fwd);

    // The new SEID modifies the same worker entry.
    let close = Message::SessionModificationRequest(SessionModificationRequest {
        update_qers: vec![UpdateQer {
            qer_id: 1,
            gate_status: Some(GateStatus::CLOSED),
            mbr: None,
        }],
        ..SessionModificationRequest::default()
    });
    let (h, resp) = exchange(&mut a, &mut b, &close, 105, Some(new.seid));
    assert_eq!(h.seid, Some(NEW_CP_SEID));
    assert!(
        matches!(resp, Message::SessionModificationResponse(ref r) if r.cause == Cause::RequestAccepted)
    );
    assert!(!b.pipeline.sessions().get(old).unwrap().gate_open);

    // Deletion reports the whole session: traffic before and after the adoption.
    let (h, resp) = exchange(&mut a, &mut b, &del, 106, Some(new.seid));
    assert_eq!(h.seid, Some(NEW_CP_SEID));
    let Message::SessionDeletionResponse(r) = resp else {
        panic!("unexpected {resp:?}");
    };
    assert_eq!(r.cause, Cause::RequestAccepted);
    assert_eq!(b.log.last(), Some(&SessionCommand::Remove(old)));
    assert_eq!(r.usage_reports.len(), 1);
    assert_eq!(
        r.usage_reports[0].volume,
        Some(VolumeMeasurement::from_counters(
            3,
            128 + 228 + 28,
            3,
            128 + 228 + 28
        ))
    );
    assert_eq!((a.session_count(), b.pipeline.session_count()), (0, 0));
}

#[test]
fn partial_overlap_after_restart_is_still_refused() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    let seid = established(&mut a, &mut b);
    reassociate_after_restart(&mut a, &mut b, 100);
    let before = b.pipeline.sessions().get(seid).copied();

    // Same access key, another address.
    let mut req = reprogramming(0xbeef);
    for pdr in &mut req.create_pdrs {
        if let Some(ue) = pdr.pdi.ue_ip_address.as_mut() {
            ue.ipv4 = Some(Ipv4Addr::new(100, 64, 0, 99));
        }
    }
    let (r, _) = establish_with(&mut a, &mut b, req, 101);
    assert_eq!(r.cause, Cause::RuleCreationModificationFailure);
    assert_eq!(r.up_f_seid, None);

    // Same address, another access key (MAC, then C-VLAN).
    let mut req = reprogramming(0xbeef);
    req.create_pdrs[0].pdi.ethernet_packet_filter = Some(EthernetPacketFilter {
        mac_address: Some(MacAddress::source([2, 0, 0, 0, 0, 0x99])),
        c_tag: Some(100),
        ..EthernetPacketFilter::default()
    });
    let (r, _) = establish_with(&mut a, &mut b, req, 102);
    assert_eq!(r.cause, Cause::RuleCreationModificationFailure);
    let mut req = reprogramming(0xbeef);
    req.create_pdrs[0].pdi.ethernet_packet_filter = Some(EthernetPacketFilter {
        mac_address: Some(MacAddress::source(SUB_MAC)),
        c_tag: Some(101),
        ..EthernetPacketFilter::default()
    });
    let (r, _) = establish_with(&mut a, &mut b, req, 103);
    assert_eq!(r.cause, Cause::RuleCreationModificationFailure);

    // Nothing changed: the old session still answers and forwards.
    assert_eq!(a.stats().adopted, 0);
    assert_eq!(b.pipeline.sessions().get(seid).copied(), before);
    assert_eq!((a.session_count(), b.pipeline.session_count()), (1, 1));
    let m = Message::SessionModificationRequest(SessionModificationRequest::default());
    let (_, resp) = exchange(&mut a, &mut b, &m, 104, Some(seid));
    assert!(
        matches!(resp, Message::SessionModificationResponse(ref r) if r.cause == Cause::RequestAccepted)
    );
    assert_eq!(b.traffic(10), [Verdict::Forward(2), Verdict::Forward(1)]);
}

/// The contract's establishment for another subscriber: untagged on port 0, MAC and
/// address ending in `n`.
fn other_subscriber(cp_seid: u64, n: u8) -> SessionEstablishmentRequest {
    let mut req = reprogramming(cp_seid);
    req.create_pdrs[0].pdi.ethernet_packet_filter = Some(EthernetPacketFilter {
        mac_address: Some(MacAddress::source([2, 0, 0, 0, 0, n])),
        ..EthernetPacketFilter::default()
    });
    req.create_pdrs[0].pdi.logical_port = Some(b"0".to_vec());
    for pdr in &mut req.create_pdrs {
        if let Some(ue) = pdr.pdi.ue_ip_address.as_mut() {
            ue.ipv4 = Some(Ipv4Addr::new(100, 64, 0, n));
        }
    }
    req
}

#[test]
fn restarted_cp_reusing_old_cp_seids_neither_hijacks_nor_blocks() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    let first = established(&mut a, &mut b); // CP SEID CP_SEID
    let (r, _) = establish_with(&mut a, &mut b, other_subscriber(CP_SEID + 1, 0x20), 3);
    let second = r.up_f_seid.unwrap().seid;

    // Before a restart, the same CP SEID again is a retry of the same session.
    let (r, _) = establish_with(&mut a, &mut b, reprogramming(CP_SEID), 4);
    assert_eq!(r.up_f_seid.map(|f| f.seid), Some(first));
    assert_eq!(a.stats().adopted, 0);

    // The restarted CP numbers its sessions from scratch. A new subscriber with the first
    // session's old CP SEID is a new session; the first session is untouched.
    reassociate_after_restart(&mut a, &mut b, 100);
    let (r, _) = establish_with(&mut a, &mut b, other_subscriber(CP_SEID, 0x30), 101);
    assert_eq!(r.cause, Cause::RequestAccepted);
    let third = r.up_f_seid.unwrap().seid;
    assert!(third != first && third != second);
    assert_eq!(a.session(third).unwrap().id, third);
    assert_eq!(b.pipeline.sessions().get(first).unwrap().ipv4, SUB_IP);
    assert_eq!((a.session_count(), b.pipeline.session_count()), (3, 3));
    assert_eq!(b.traffic(10), [Verdict::Forward(2), Verdict::Forward(1)]);

    // The second subscriber comes back under its old CP SEID number: adopted (new UP SEID).
    let (r, _) = establish_with(&mut a, &mut b, other_subscriber(CP_SEID + 1, 0x20), 102);
    assert_eq!(r.cause, Cause::RequestAccepted);
    let adopted = r.up_f_seid.unwrap().seid;
    assert!(![first, second, third].contains(&adopted));
    assert_eq!(a.session(adopted).unwrap().id, second);
    assert_eq!(a.stats().adopted, 1);

    // The first one under another CP SEID: adopted too.
    let (r, _) = establish_with(&mut a, &mut b, reprogramming(7), 103);
    assert_eq!(r.cause, Cause::RequestAccepted);
    assert_eq!(a.session(r.up_f_seid.unwrap().seid).unwrap().id, first);
    assert_eq!(a.stats().adopted, 2);
    assert_eq!((a.session_count(), b.pipeline.session_count()), (3, 3));
    assert_eq!(b.traffic(10), [Verdict::Forward(2), Verdict::Forward(1)]);
}

mod acl;
mod pppoe;
mod qos;
mod usage;

/// Sends `req` as a Session Modification Request and returns the response.
fn modify(
    a: &mut PfcpAgent,
    b: &mut PipelineBackend,
    req: SessionModificationRequest,
    seq: u32,
    seid: u64,
) -> SessionModificationResponse {
    let (h, resp) = exchange(
        a,
        b,
        &Message::SessionModificationRequest(req),
        seq,
        Some(seid),
    );
    assert_eq!(h.seid, Some(CP_SEID), "response goes to the CP's SEID");
    match resp {
        Message::SessionModificationResponse(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn ipv6_pdrs_install_replace_and_remove_the_session_prefixes() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    let seid = established(&mut a, &mut b);
    assert!(b.pipeline.sessions().get(seid).unwrap().ipv6.is_none());
    let slash64: std::net::Ipv6Addr = "2001:db8:100:7::".parse().unwrap();
    let pd: std::net::Ipv6Addr = "2001:db8:8000:700::".parse().unwrap();
    let v6 = |delegated| ipoe::Ipv6Prefixes {
        prefix: Some((slash64, 64)),
        delegated,
    };
    // IPv6 comes up: the /64.
    let pdrs = ipoe::session_ipv6_pdrs(&subscriber(), &v6(None));
    let cause = modify(&mut a, &mut b, ipoe::ipv6_install_request(pdrs), 3, seid).cause;
    assert_eq!(cause, Cause::RequestAccepted);
    let entry = *b.pipeline.sessions().get(seid).unwrap();
    assert_eq!(
        entry.ipv6,
        SessionIpv6::new(Some((slash64, 64)), None).unwrap()
    );
    assert_eq!(entry.ipv4, SUB_IP, "IPv4 untouched");
    let host: std::net::Ipv6Addr = "2001:db8:100:7::42".parse().unwrap();
    assert!(b.pipeline.sessions().lookup_ipv6(host).is_some());
    // DHCPv6 delegates a /56: the PDRs are replaced with both.
    let pdrs = ipoe::session_ipv6_pdrs(&subscriber(), &v6(Some((pd, 56))));
    let cause = modify(&mut a, &mut b, ipoe::ipv6_replace_request(pdrs), 4, seid).cause;
    assert_eq!(cause, Cause::RequestAccepted);
    let in_pd: std::net::Ipv6Addr = "2001:db8:8000:7ff::1".parse().unwrap();
    assert!(b.pipeline.sessions().lookup_ipv6(in_pd).is_some());
    // IPv6CP closes: the PDRs go, and with them the prefixes.
    let cause = modify(&mut a, &mut b, ipoe::ipv6_remove_request(), 5, seid).cause;
    assert_eq!(cause, Cause::RequestAccepted);
    assert!(b.pipeline.sessions().get(seid).unwrap().ipv6.is_none());
    assert!(b.pipeline.sessions().lookup_ipv6(host).is_none());
    assert!(b.pipeline.sessions().lookup_ipv6(in_pd).is_none());
}

#[test]
fn ipv6_rules_the_user_plane_cannot_forward_are_refused() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    let seid = established(&mut a, &mut b);
    let addr: std::net::Ipv6Addr = "2001:db8:100:7::1".parse().unwrap();
    // A bare address (no IP6PL) is a /128.
    let mut pdrs = ipoe::session_ipv6_pdrs(
        &subscriber(),
        &ipoe::Ipv6Prefixes {
            prefix: Some((addr, 64)),
            delegated: None,
        },
    );
    for p in &mut pdrs {
        if let Some(ue) = p.pdi.ue_ip_address.as_mut() {
            ue.ipv6_prefix_len = None;
        }
    }
    let cause = modify(&mut a, &mut b, ipoe::ipv6_install_request(pdrs), 3, seid).cause;
    assert_eq!(cause, Cause::RuleCreationModificationFailure);
    assert!(b.pipeline.sessions().get(seid).unwrap().ipv6.is_none());
    // Another session's /64.
    let other = Message::SessionEstablishmentRequest(other_subscriber(0xbeef, 7));
    let (_, resp) = exchange(&mut a, &mut b, &other, 4, Some(0));
    let Message::SessionEstablishmentResponse(r) = resp else {
        panic!("unexpected {resp:?}");
    };
    let other_seid = r.up_f_seid.expect("F-SEID").seid;
    let v6 = ipoe::Ipv6Prefixes {
        prefix: Some(("2001:db8:100:7::".parse().unwrap(), 64)),
        delegated: None,
    };
    let pdrs = ipoe::session_ipv6_pdrs(&subscriber(), &v6);
    assert_eq!(
        modify(&mut a, &mut b, ipoe::ipv6_install_request(pdrs), 5, seid).cause,
        Cause::RequestAccepted
    );
    let mut theirs = subscriber();
    theirs.mac = [0x02, 0, 0, 0, 0, 0x77];
    let pdrs = ipoe::session_ipv6_pdrs(&theirs, &v6);
    // (Its own CP SEID: `modify` expects the contract's.)
    let req = Message::SessionModificationRequest(ipoe::ipv6_install_request(pdrs));
    let (_, resp) = exchange(&mut a, &mut b, &req, 6, Some(other_seid));
    assert!(
        matches!(resp, Message::SessionModificationResponse(ref r)
            if r.cause == Cause::RuleCreationModificationFailure),
        "the /64 belongs to the first session: {resp:?}"
    );
}
