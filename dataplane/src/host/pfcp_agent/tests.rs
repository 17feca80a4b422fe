//! PFCP agent tests: messages built with vbng-cups, fed to the sans-IO handler, whose
//! session commands are applied to a real [`Pipeline`].

use super::*;
use crate::pipeline::{Pipeline, PipelineConfig, SessionCommand};
use crate::wire::EthernetAddress;
use std::sync::atomic::{AtomicBool, Ordering};
use vbng_cups::pfcp::{
    ApplyAction, CreateFar, CreatePdr, CreateQer, CreateUrr, MeasurementMethod, UsageReportTrigger,
    VolumeMeasurement,
};
use vbng_cups::pfcp::{
    AssociationReleaseRequest, AssociationSetupRequest, DestinationInterface, EthernetPacketFilter,
    ForwardingParameters, GateStatus, MacAddress, Pdi, ReportingTriggers, SessionDeletionRequest,
    UeIpAddress, UpdateFar, UpdateQer,
};

const CP: &str = "127.0.0.1:8805";
const CP_SEID: u64 = 0xc0ffee;
const SUB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x12];
const SUB_IP: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 10);

/// Applies commands to a real pipeline and records them.
struct PipelineBackend {
    pipeline: Pipeline,
    log: Vec<SessionCommand>,
}

impl PipelineBackend {
    fn new() -> Self {
        let cfg = PipelineConfig {
            access_ports: vec![0, 1],
            core_port: 2,
            core_mac: EthernetAddress([2, 0, 0, 0, 0xc0, 1]),
            core_ipv4: Ipv4Addr::new(198, 51, 100, 2),
            core_prefix_len: 24,
            next_hop: Ipv4Addr::new(198, 51, 100, 1),
            gateway_mac: EthernetAddress([0x02, 0, 0x5e, 0, 1, 1]),
            redirect_pps: 100,
            arp_retry_ns: 1_000_000_000,
        };
        PipelineBackend {
            pipeline: Pipeline::new(cfg, 1),
            log: Vec::new(),
        }
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

/// The contract's establishment request for one IPoE subscriber on port 1, C-VLAN 100.
fn establishment() -> SessionEstablishmentRequest {
    SessionEstablishmentRequest {
        node_id: cp_node(),
        cp_f_seid: FSeid {
            seid: CP_SEID,
            ipv4: Some(Ipv4Addr::new(127, 0, 0, 1)),
            ipv6: None,
        },
        create_pdrs: vec![
            CreatePdr {
                pdr_id: 1,
                precedence: 100,
                pdi: Pdi {
                    source_interface: Interface::Access,
                    ue_ip_address: Some(UeIpAddress {
                        ipv4: Some(SUB_IP),
                        ipv6: None,
                        is_destination: false,
                    }),
                    ethernet_packet_filter: Some(EthernetPacketFilter {
                        mac_address: Some(MacAddress::source(SUB_MAC)),
                        c_tag: Some(100),
                        ..EthernetPacketFilter::default()
                    }),
                    logical_port: Some(b"1".to_vec()),
                    ..Pdi::default()
                },
                outer_header_removal: None,
                far_id: Some(1),
                urr_ids: vec![1],
                qer_ids: vec![1],
            },
            CreatePdr {
                pdr_id: 2,
                precedence: 100,
                pdi: Pdi {
                    source_interface: Interface::Core,
                    ue_ip_address: Some(UeIpAddress {
                        ipv4: Some(SUB_IP),
                        ipv6: None,
                        is_destination: true,
                    }),
                    ..Pdi::default()
                },
                outer_header_removal: None,
                far_id: Some(2),
                urr_ids: vec![1],
                qer_ids: vec![1],
            },
        ],
        create_fars: vec![
            CreateFar {
                far_id: 1,
                apply_action: ApplyAction::FORW,
                forwarding_parameters: Some(ForwardingParameters {
                    destination_interface: DestinationInterface::Core,
                    ..ForwardingParameters::default()
                }),
            },
            CreateFar {
                far_id: 2,
                apply_action: ApplyAction::FORW,
                forwarding_parameters: Some(ForwardingParameters {
                    destination_interface: DestinationInterface::Access,
                    ..ForwardingParameters::default()
                }),
            },
        ],
        create_urrs: vec![CreateUrr {
            urr_id: 1,
            measurement_method: MeasurementMethod::VOLUM,
            reporting_triggers: ReportingTriggers::default(),
            measurement_period: None,
        }],
        create_qers: vec![CreateQer {
            qer_id: 1,
            gate_status: GateStatus::OPEN,
            mbr: None,
        }],
    }
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
        },
        ipv4: SUB_IP,
        gate_open: true,
        counters: UsageCounters::default(),
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
    assert!(derive_entry(1, &rules, 2).unwrap().gate_open);
    rules.pdrs[1].pdi.ue_ip_address = Some(UeIpAddress {
        ipv4: Some(Ipv4Addr::new(100, 64, 0, 99)),
        ipv6: None,
        is_destination: true,
    });
    assert!(matches!(
        derive_entry(1, &rules, 2),
        Err(RuleError::UeIpv4Mismatch { .. })
    ));
    rules.pdrs[1].far_id = Some(9);
    rules.pdrs[1].pdi.ue_ip_address = None;
    assert!(matches!(
        derive_entry(1, &rules, 2),
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
            run(up, agent(), &mut backend, &published, &stop)
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
    let seid = r.up_f_seid.unwrap().seid;
    let (_, r) = ask(
        Message::SessionDeletionRequest(SessionDeletionRequest {}),
        3,
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

    stop.store(true, Ordering::Relaxed);
    agent_thread.join().unwrap().unwrap();
    assert_eq!(published.associated.load(Ordering::Relaxed), 1);
    assert_eq!(published.rx_messages.load(Ordering::Relaxed), 3);
    shared.stop.store(true, Ordering::Relaxed);
    shared.waker.wake();
    let w = worker_thread.join().unwrap();
    assert_eq!(w.pipeline().session_count(), 0);
}
