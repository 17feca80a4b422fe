//! Checks our PFCP encoding against Wireshark's dissector: every message kind
//! vbng emits goes into a pcap (Ethernet/IPv4/UDP 8805) that `tshark -V` must
//! decode without "Malformed" or expert errors/warnings, naming every message,
//! the BBF TR-459 IEs, the predefined rules (ACL names) and the IPv6 PDRs'
//! UE IP Address prefix length and Framed-IPv6-Route.

use std::net::Ipv4Addr;
use std::process::Command;

use vbng_cups::pfcp::*;

const CP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const UP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// The subscriber session of the contract: uplink PDR 1 and downlink PDR 2,
/// FAR 1 (to core) and 2 (to access), URR 1 (volume), QER 1 (gates open, MBR),
/// with more IEs than the control plane sends (network instances, filter id,
/// outer header removal/creation, a periodic URR) so tshark checks them too.
/// What the control plane sends is [`cp_establishment`].
fn establishment() -> SessionEstablishmentRequest {
    let ue = Ipv4Addr::new(100, 64, 0, 10);
    SessionEstablishmentRequest {
        node_id: NodeId::Ipv4(CP),
        cp_f_seid: FSeid {
            seid: 0x1001,
            ipv4: Some(CP),
            ipv6: None,
        },
        create_pdrs: vec![
            CreatePdr {
                pdr_id: 1,
                precedence: 100,
                pdi: Pdi {
                    source_interface: SourceInterface::Access,
                    network_instance: Some("access".into()),
                    ue_ip_address: Some(UeIpAddress {
                        ipv4: Some(ue),
                        ipv6: None,
                        is_destination: false,
                        ipv6_prefix_len: None,
                    }),
                    ethernet_packet_filter: Some(EthernetPacketFilter {
                        filter_id: Some(1),
                        mac_address: Some(MacAddress::source([0x02, 0, 0, 0, 0, 0x10])),
                        c_tag: Some(100),
                        s_tag: Some(2000),
                    }),
                    logical_port: Some(b"0".to_vec()),
                    ..Default::default()
                },
                outer_header_removal: Some(OuterHeaderRemoval::S_TAG_AND_C_TAG),
                bbf_outer_header_removal: None,
                far_id: Some(1),
                urr_ids: vec![1],
                qer_ids: vec![1],
                activate_predefined_rules: Vec::new(),
            },
            CreatePdr {
                pdr_id: 2,
                precedence: 100,
                pdi: Pdi {
                    source_interface: SourceInterface::Core,
                    ue_ip_address: Some(UeIpAddress {
                        ipv4: Some(ue),
                        ipv6: None,
                        is_destination: true,
                        ipv6_prefix_len: None,
                    }),
                    ..Default::default()
                },
                outer_header_removal: None,
                bbf_outer_header_removal: None,
                far_id: Some(2),
                urr_ids: vec![1],
                qer_ids: vec![1],
                activate_predefined_rules: Vec::new(),
            },
        ],
        create_fars: vec![
            CreateFar {
                far_id: 1,
                apply_action: ApplyAction::FORW,
                forwarding_parameters: Some(ForwardingParameters {
                    destination_interface: DestinationInterface::Core,
                    network_instance: Some("internet".into()),
                    outer_header_creation: None,
                    ..Default::default()
                }),
            },
            CreateFar {
                far_id: 2,
                apply_action: ApplyAction::FORW,
                forwarding_parameters: Some(ForwardingParameters {
                    destination_interface: DestinationInterface::Access,
                    network_instance: None,
                    outer_header_creation: Some(OuterHeaderCreation::gtpu_ipv4(7, UP)),
                    ..Default::default()
                }),
            },
        ],
        create_urrs: vec![CreateUrr {
            urr_id: 1,
            measurement_method: MeasurementMethod::VOLUM,
            reporting_triggers: ReportingTriggers::PERIO,
            measurement_period: Some(60),
        }],
        create_qers: vec![CreateQer {
            qer_id: 1,
            gate_status: GateStatus::OPEN,
            mbr: Some(Mbr {
                ul_kbps: 10_000,
                dl_kbps: 50_000,
            }),
        }],
    }
}

/// The establishment the control plane sends for one IPoE subscriber
/// ([`ipoe::establishment_request`]), QinQ 2000/100 with a rate and the ACL
/// "web-only".
fn cp_establishment() -> SessionEstablishmentRequest {
    ipoe::establishment_request(&ipoe::IpoeSession {
        cp_seid: 0x1002,
        cp_ipv4: CP,
        node_id: NodeId::Ipv4(CP),
        ue_ipv4: Ipv4Addr::new(100, 64, 0, 11),
        mac: [0x02, 0, 0, 0, 0, 0x11],
        port: 0,
        svlan: 2000,
        cvlan: 100,
        rate: Some(Mbr {
            ul_kbps: 10_000,
            dl_kbps: 50_000,
        }),
        acl: Some("web-only".into()),
    })
}

/// The establishment the control plane sends for one PPPoE subscriber
/// ([`pppoe::session_establishment`]): PPPoE session 0x0042, QinQ 2000/101,
/// MTU 1492, with a rate.
fn cp_pppoe_establishment() -> SessionEstablishmentRequest {
    pppoe::session_establishment(CP, &cp_pppoe_spec())
}

fn report() -> UsageReport {
    UsageReport {
        urr_id: 1,
        ur_seqn: 3,
        trigger: UsageReportTrigger::TERMR,
        volume: Some(VolumeMeasurement::from_counters(10, 1_000, 20, 20_000)),
        start_time: Some(3_900_000_000),
        end_time: Some(3_900_000_060),
    }
}

/// Every message kind with its sender, sequence and SEID.
fn messages() -> Vec<(Ipv4Addr, Message, u32, Option<u64>)> {
    let rts = RecoveryTimeStamp::from_unix_secs(1_700_000_000);
    vec![
        (
            CP,
            Message::HeartbeatRequest(HeartbeatRequest {
                recovery_time_stamp: rts,
            }),
            1,
            None,
        ),
        (
            UP,
            Message::HeartbeatResponse(HeartbeatResponse {
                recovery_time_stamp: rts,
            }),
            1,
            None,
        ),
        (
            CP,
            Message::AssociationSetupRequest(AssociationSetupRequest {
                node_id: NodeId::Ipv4(CP),
                recovery_time_stamp: rts,
                up_function_features: None,
                cp_function_features: Some(CpFunctionFeatures::default()),
                bbf_up_function_features: None,
            }),
            2,
            None,
        ),
        (
            UP,
            Message::AssociationSetupResponse(AssociationSetupResponse {
                node_id: NodeId::Fqdn("up1.vbng.example".into()),
                cause: Cause::RequestAccepted,
                recovery_time_stamp: rts,
                up_function_features: Some(UpFunctionFeatures(vec![0x10, 0x00])),
                cp_function_features: None,
                bbf_up_function_features: Some(
                    BbfUpFunctionFeatures::IPOE | BbfUpFunctionFeatures::PPPOE,
                ),
                user_plane_ip_resources: vec![UserPlaneIpResourceInformation {
                    ipv4: Some(UP),
                    network_instance: Some("access".into()),
                    source_interface: Some(SourceInterface::Access),
                    ..Default::default()
                }],
            }),
            2,
            None,
        ),
        (
            CP,
            Message::SessionEstablishmentRequest(establishment()),
            3,
            Some(0),
        ),
        (
            UP,
            Message::SessionEstablishmentResponse(SessionEstablishmentResponse {
                node_id: NodeId::Ipv4(UP),
                cause: Cause::RequestAccepted,
                up_f_seid: Some(FSeid {
                    seid: 0x2001,
                    ipv4: Some(UP),
                    ipv6: None,
                }),
                created_pdrs: vec![CreatedPdr {
                    pdr_id: 1,
                    local_f_teid: Some(FTeid {
                        teid: 9,
                        ipv4: Some(UP),
                        ipv6: None,
                    }),
                }],
            }),
            3,
            Some(0x1001),
        ),
        (
            CP,
            Message::SessionModificationRequest(SessionModificationRequest {
                cp_f_seid: None,
                remove_pdrs: vec![3],
                remove_fars: vec![3],
                remove_urrs: vec![3],
                remove_qers: vec![3],
                update_fars: vec![UpdateFar {
                    far_id: 1,
                    apply_action: Some(ApplyAction::DROP),
                    update_forwarding_parameters: Some(ForwardingParameters {
                        destination_interface: DestinationInterface::Core,
                        ..Default::default()
                    }),
                }],
                update_qers: vec![UpdateQer {
                    qer_id: 1,
                    gate_status: Some(GateStatus::CLOSED),
                    mbr: Some(Mbr {
                        ul_kbps: 1_000,
                        dl_kbps: 2_000,
                    }),
                }],
                ..Default::default()
            }),
            4,
            Some(0x2001),
        ),
        (
            UP,
            Message::SessionModificationResponse(SessionModificationResponse {
                cause: Cause::RequestAccepted,
                usage_reports: vec![report()],
            }),
            4,
            Some(0x1001),
        ),
        (
            UP,
            Message::SessionReportRequest(SessionReportRequest {
                report_type: ReportType::USAR,
                usage_reports: vec![report()],
            }),
            5,
            Some(0x1001),
        ),
        (
            CP,
            Message::SessionReportResponse(SessionReportResponse {
                cause: Cause::RequestAccepted,
            }),
            5,
            Some(0x2001),
        ),
        (
            CP,
            Message::SessionDeletionRequest(SessionDeletionRequest {}),
            6,
            Some(0x2001),
        ),
        (
            UP,
            Message::SessionDeletionResponse(SessionDeletionResponse {
                cause: Cause::RequestAccepted,
                usage_reports: vec![report()],
            }),
            6,
            Some(0x1001),
        ),
        (
            CP,
            Message::AssociationReleaseRequest(AssociationReleaseRequest {
                node_id: NodeId::Ipv4(CP),
            }),
            7,
            None,
        ),
        (
            UP,
            Message::AssociationReleaseResponse(AssociationReleaseResponse {
                node_id: NodeId::Ipv4(UP),
                cause: Cause::RequestAccepted,
            }),
            7,
            None,
        ),
        // What the control plane sends for one IPoE subscriber, and its live
        // rate change to "unlimited" (MBR 0/0).
        (
            CP,
            Message::SessionEstablishmentRequest(cp_establishment()),
            8,
            Some(0),
        ),
        (
            CP,
            Message::SessionModificationRequest(ipoe::rate_change_request(None)),
            9,
            Some(0x2002),
        ),
        // A usage query as the control plane sends it (Query URR), one with
        // QAURR as well, and the user plane's answer: an immediate report.
        (
            CP,
            Message::SessionModificationRequest(ipoe::query_usage_request()),
            10,
            Some(0x2002),
        ),
        (
            CP,
            Message::SessionModificationRequest(SessionModificationRequest {
                flags: Some(PfcpSmReqFlags::QAURR),
                query_urrs: vec![1, 2],
                ..Default::default()
            }),
            11,
            Some(0x2002),
        ),
        (
            UP,
            Message::SessionModificationResponse(SessionModificationResponse {
                cause: Cause::RequestAccepted,
                usage_reports: vec![UsageReport {
                    urr_id: 1,
                    ur_seqn: 1,
                    trigger: UsageReportTrigger::IMMER,
                    volume: Some(VolumeMeasurement::from_counters(3, 300, 4, 4_000)),
                    start_time: None,
                    end_time: None,
                }],
            }),
            10,
            Some(0x1002),
        ),
        // What the control plane sends for one PPPoE subscriber.
        (
            CP,
            Message::SessionEstablishmentRequest(cp_pppoe_establishment()),
            12,
            Some(0),
        ),
        // A live ACL change as the control plane sends it (Update PDR).
        (
            CP,
            Message::SessionModificationRequest(ipoe::acl_change_request(
                Some("web-only"),
                Some("block-smtp"),
            )),
            13,
            Some(0x2002),
        ),
        // The PPPoE subscriber's IPv6 PDRs (UE IP Address with IPv6 Prefix
        // Length, Framed-IPv6-Route) as the control plane installs them,
        // replaces them and establishes them with the session.
        (
            CP,
            Message::SessionModificationRequest(pppoe::ipv6_replace_request(
                pppoe::session_ipv6_pdrs(&cp_pppoe_spec(), &cp_ipv6()),
            )),
            14,
            Some(0x2003),
        ),
        (
            CP,
            Message::SessionEstablishmentRequest(pppoe::session_establishment_with_ipv6(
                CP,
                &cp_pppoe_spec(),
                Some(&cp_ipv6()),
            )),
            15,
            Some(0),
        ),
    ]
}

/// The IPv6 prefixes of the PPPoE subscriber of [`cp_pppoe_establishment`]:
/// its /64 and a delegated /56.
fn cp_ipv6() -> pppoe::Ipv6Prefixes {
    pppoe::Ipv6Prefixes {
        prefix: Some(("2001:db8:100:1::".parse().unwrap(), 64)),
        delegated: Some(("2001:db8:200:100::".parse().unwrap(), 56)),
    }
}

/// The PPPoE subscriber of [`cp_pppoe_establishment`], as a spec.
fn cp_pppoe_spec() -> pppoe::PppoeSessionSpec {
    pppoe::PppoeSessionSpec {
        cp_seid: 0x1003,
        node_id: NodeId::Ipv4(CP),
        ue_ipv4: Ipv4Addr::new(100, 64, 0, 12),
        mac: [0x02, 0, 0, 0, 0, 0x12],
        port: 0,
        svlan: 2000,
        cvlan: 101,
        rate: Some(Mbr {
            ul_kbps: 10_000,
            dl_kbps: 50_000,
        }),
        session_id: 0x0042,
        mtu: 1492,
        acl: None,
    }
}

/// RFC 1071 checksum of an IPv4 header.
fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// One Ethernet/IPv4/UDP frame carrying `payload` from port 8805 to port 8805.
fn frame(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = 20 + 8 + payload.len();
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&(total as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let csum = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&PFCP_PORT.to_be_bytes());
    f.extend_from_slice(&PFCP_PORT.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]); // UDP checksum 0: not computed (IPv4 allows it)
    f.extend_from_slice(payload);
    f
}

/// A pcap file (microsecond timestamps, LINKTYPE_ETHERNET) of `frames`.
fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        out.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}

#[test]
fn ipv4_checksum_of_a_known_header() {
    // RFC 1071 example header (Wikipedia's IPv4 checksum example): 0xb861.
    let h = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];
    assert_eq!(ipv4_checksum(&h), 0xb861);
}

#[test]
fn tshark_decodes_every_message() {
    if Command::new("tshark").arg("--version").output().is_err() {
        println!("SKIPPED: tshark not installed");
        return;
    }
    let msgs = messages();
    let mut frames = Vec::new();
    for (src, m, seq, seid) in &msgs {
        let bytes = m.encode(*seq, *seid);
        // What we send must parse back to what we meant.
        let (h, back) = Message::parse(&bytes).expect("own encoding parses");
        assert_eq!(&back, m);
        assert_eq!(h.sequence, *seq);
        let dst = if *src == CP { UP } else { CP };
        frames.push(frame(*src, dst, &bytes));
    }
    // Two messages bundled in one datagram with the FO flag (TS 29.244 7.2.1A).
    let bundle = encode_bundle(&[(&msgs[0].1, 100, None), (&msgs[10].1, 101, Some(0x2001))])
        .expect("bundle encodes");
    assert_eq!(parse_all(&bundle).expect("bundle parses").len(), 2);
    frames.push(frame(CP, UP, &bundle));

    /// The capture's directory, removed when dropped (also when the test fails).
    struct Scratch(std::path::PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let dir =
        Scratch(std::env::temp_dir().join(format!("vbng-cups-tshark-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let path = dir.0.join("pfcp.pcap");
    std::fs::write(&path, pcap(&frames)).unwrap();
    // Keep a copy for inspection in Wireshark: VBNG_PCAP_OUT=/tmp/pfcp.pcap.
    if let Some(keep) = std::env::var_os("VBNG_PCAP_OUT") {
        std::fs::copy(&path, keep).unwrap();
    }
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&path)
        .arg("-V")
        .output()
        .unwrap();
    drop(dir);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bad: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.contains("Malformed")
                || l.contains("[Expert Info (Error")
                || l.contains("Expert Info (Warning")
        })
        .collect();
    assert!(
        bad.is_empty(),
        "tshark complained:\n{}\n\nfull output:\n{text}",
        bad.join("\n")
    );

    for (_, m, _, _) in &msgs {
        let name = m.msg_type().name();
        assert!(text.contains(name), "tshark output lacks {name:?}:\n{text}");
    }
    for needle in [
        "BBF UP Function Features",
        "Logical Port",
        "Ethernet Packet Filter",
        "C-TAG",
        "S-TAG",
        "Volume Measurement",
        "Usage Report (Session Deletion Response)",
        "Usage Report (Session Modification Response)",
        "Query URR",
        "PFCPSMReq-Flags",
        "Outer Header Creation",
        "User Plane IP Resource Information",
        // The PPPoE subscriber's TR-459 IEs, decoded to the values we meant.
        "PPPoE Session ID: 0x0042",
        "Flags: 0x02, data",
        "BBF Outer Header Removal Description: PPP/PPPoE/Ethernet  (3)",
        "BBF Outer Header Creation Description: PPP  (1024)",
        "L2TP Session ID: 0x0042",
        "MTU: 1492",
    ] {
        assert!(
            text.contains(needle),
            "tshark output lacks {needle:?}:\n{text}"
        );
    }
    assert_eq!(
        frames.len(),
        text.matches("\nFrame ").count() + 1,
        "frame count"
    );
    // The bits Wireshark decodes are the ones we meant: QAURR set in both
    // requests that carry the flags IE, IMMER set only in the immediate report
    // (TERMR reports leave it clear).
    let set = |name: &str| {
        text.lines()
            .filter(|l| l.contains(name) && l.trim_end().ends_with(": True"))
            .count()
    };
    assert_eq!(set("QAURR (Query All URRs)"), 1, "{text}");
    assert_eq!(set("IMMER (Immediate Report)"), 1, "{text}");
    assert_eq!(set("TERMR (Termination Report)"), 3, "{text}");
    // The ACL as predefined rules: "web-only" activated in both PDRs of the
    // IPoE establishment, then replaced by "block-smtp" in both PDRs.
    let count = |needle: &str| text.matches(needle).count();
    assert_eq!(count("Update PDR : [Grouped IE]"), 2, "{text}");
    assert_eq!(
        count("IE Type: Activate Predefined Rules (106)"),
        4,
        "{text}"
    );
    assert_eq!(
        count("IE Type: Deactivate Predefined Rules (107)"),
        2,
        "{text}"
    );
    assert_eq!(count("Predefined Rules Name: \"web-only\""), 4, "{text}");
    assert_eq!(count("Predefined Rules Name: \"block-smtp\""), 2, "{text}");
    // The IPv6 PDRs 3 and 4 of the PPPoE subscriber, replaced once and
    // established once: the /64 with its IPv6 Prefix Length, the delegated
    // /56 as Framed-IPv6-Route, the uplink matching PPP protocol 0x0057.
    assert_eq!(count("IPv6 Prefix Length: 64"), 4, "{text}");
    assert_eq!(
        count("Framed-IPv6-Route: 2001:db8:200:100::/56"),
        4,
        "{text}"
    );
    assert_eq!(count("protocol: 0x0057"), 2, "{text}");
    assert_eq!(count("Remove PDR : [Grouped IE]: PDR ID: 4"), 1, "{text}");
}
