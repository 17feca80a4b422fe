//! Message-level tests: golden bytes, malformed input, bundling, and
//! proptest round trips (`parse(encode(m)) == m`) for every message.
//!
//! The golden datagrams were assembled from the TS 29.244 field layouts, then
//! checked with `tshark -V` (Wireshark 4.0 PFCP dissector), which decodes every
//! field to the values named in the comments (see `tests/tshark.rs`).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const RTS: RecoveryTimeStamp = RecoveryTimeStamp(0xe8fe_6f80); // 2023-11-14 22:13:20 UTC
const CP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const UP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

fn check_golden(hex: &str, msg: &Message, seq: u32, seid: Option<u64>) {
    let bytes = unhex(hex);
    assert_eq!(
        msg.encode(seq, seid),
        bytes,
        "encoding of {:?}",
        msg.msg_type()
    );
    let (h, back, stats) = Message::parse_counting(&bytes).unwrap();
    assert_eq!(&back, msg);
    assert_eq!(stats.skipped_ies, 0);
    assert_eq!(h.sequence, seq);
    assert_eq!(
        h.seid,
        if msg.msg_type().is_session() {
            Some(seid.unwrap_or(0))
        } else {
            None
        }
    );
}

#[test]
fn golden_heartbeat_request() {
    check_golden(
        "2001000c 00000100 \
         0060 0004 e8fe6f80", // Recovery Time Stamp
        &Message::HeartbeatRequest(HeartbeatRequest {
            recovery_time_stamp: RTS,
        }),
        1,
        None,
    );
}

#[test]
fn golden_association_setup_request() {
    check_golden(
        "2005001a 00000200 \
         003c 0005 00 7f000001 \
         0060 0004 e8fe6f80 \
         0059 0001 00", // CP Function Features: none
        &Message::AssociationSetupRequest(AssociationSetupRequest {
            node_id: NodeId::Ipv4(CP),
            recovery_time_stamp: RTS,
            up_function_features: None,
            cp_function_features: Some(CpFunctionFeatures::default()),
            bbf_up_function_features: None,
        }),
        2,
        None,
    );
}

#[test]
fn golden_association_setup_response() {
    check_golden(
        "20060047 00000200 \
         003c 0012 02 03757031 0476626e67 076578616d706c65 \
         0013 0001 01 \
         0060 0004 e8fe6f80 \
         002b 0002 1000 \
         0074 000c 61 7f000002 616363657373 00 \
         8000 0006 0de9 03000000", // BBF UP Function Features: PPPoE, IPoE
        &Message::AssociationSetupResponse(AssociationSetupResponse {
            node_id: NodeId::Fqdn("up1.vbng.example".into()),
            cause: Cause::RequestAccepted,
            recovery_time_stamp: RTS,
            up_function_features: Some(UpFunctionFeatures(vec![0x10, 0x00])),
            cp_function_features: None,
            bbf_up_function_features: Some(
                BbfUpFunctionFeatures::PPPOE | BbfUpFunctionFeatures::IPOE,
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
    );
}

/// The contract's IPoE subscriber: PDR 1 uplink (access, UE IP source, MAC,
/// C-TAG 100, S-TAG 2000, logical port "0"), PDR 2 downlink, FAR 1 to core,
/// FAR 2 to access, URR 1 volume, QER 1 open with MBR.
fn contract_establishment() -> SessionEstablishmentRequest {
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
                        ..Default::default()
                    }),
                    ethernet_packet_filter: Some(EthernetPacketFilter {
                        filter_id: Some(1),
                        mac_address: Some(MacAddress::source([2, 0, 0, 0, 0, 0x10])),
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
                far_id: Some(2),
                urr_ids: vec![1],
                qer_ids: vec![1],
                ..Default::default()
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

#[test]
fn golden_session_establishment_request() {
    check_golden(
        "21320165 0000000000000000 00000300 \
         003c 0005 00 7f000001 \
         0039 000d 02 0000000000001001 7f000001 \
         0001 0073 \
           0038 0002 0001 \
           001d 0004 00000064 \
           0002 0044 \
             0014 0001 00 \
             0016 0006 616363657373 \
             005d 0005 02 6440000a \
             0084 0021 \
               008a 0004 00000001 \
               0085 0007 01 020000000010 \
               0086 0003 04 0064 \
               0087 0003 04 70d0 \
             8001 0003 0de9 30 \
           005f 0001 08 \
           006c 0004 00000001 \
           0051 0004 00000001 \
           006d 0004 00000001 \
         0001 0038 \
           0038 0002 0002 \
           001d 0004 00000064 \
           0002 000e 0014 0001 01 005d 0005 06 6440000a \
           006c 0004 00000002 \
           0051 0004 00000001 \
           006d 0004 00000001 \
         0003 0022 \
           006c 0004 00000001 \
           002c 0001 02 \
           0004 0011 002a 0001 01 0016 0008 696e7465726e6574 \
         0003 0024 \
           006c 0004 00000002 \
           002c 0001 02 \
           0004 0013 002a 0001 00 0054 000a 0100 00000007 7f000002 \
         0006 001b \
           0051 0004 00000001 \
           003e 0001 02 \
           0025 0002 0100 \
           0040 0004 0000003c \
         0007 001b \
           006d 0004 00000001 \
           0019 0001 00 \
           001a 000a 0000002710 000000c350",
        &Message::SessionEstablishmentRequest(contract_establishment()),
        3,
        Some(0),
    );
}

#[test]
fn golden_session_deletion_response_with_usage_report() {
    let report = UsageReport {
        urr_id: 1,
        ur_seqn: 0,
        trigger: UsageReportTrigger::TERMR,
        volume: Some(VolumeMeasurement::from_counters(1, 100, 2, 200)),
        start_time: None,
        end_time: None,
    };
    check_golden(
        "21370061 0000000000001001 00000600 \
         0013 0001 01 \
         004f 004c \
           0051 0004 00000001 \
           0068 0004 00000000 \
           003f 0003 000800 \
           0042 0031 3f 000000000000012c 0000000000000064 00000000000000c8 \
                       0000000000000003 0000000000000001 0000000000000002",
        &Message::SessionDeletionResponse(SessionDeletionResponse {
            cause: Cause::RequestAccepted,
            usage_reports: vec![report],
        }),
        6,
        Some(0x1001),
    );
}

#[test]
fn golden_session_modification_request_querying_usage() {
    // PFCPSMReq-Flags (IE 49) with QAURR (octet 5 bit 3, mask 0x04) and one
    // Query URR (IE 77) holding URR ID 1.
    check_golden(
        "2134001d 0000000000002001 00000700 \
         0031 0001 04 \
         004d 0008 \
           0051 0004 00000001",
        &Message::SessionModificationRequest(SessionModificationRequest {
            flags: Some(PfcpSmReqFlags::QAURR),
            query_urrs: vec![1],
            ..Default::default()
        }),
        7,
        Some(0x2001),
    );
    // What the control plane sends: Query URR only.
    let q = ipoe::query_usage_request();
    assert_eq!((q.flags, &q.query_urrs[..]), (None, &[ipoe::URR_ID][..]));
    assert!(q.queries_usage());
    assert!(!SessionModificationRequest::default().queries_usage());
    let all = SessionModificationRequest {
        flags: Some(PfcpSmReqFlags::QAURR | PfcpSmReqFlags::DROBU),
        ..Default::default()
    };
    assert!(all.queries_usage());
    let drobu = SessionModificationRequest {
        flags: Some(PfcpSmReqFlags::DROBU),
        ..Default::default()
    };
    assert!(!drobu.queries_usage());
}

#[test]
fn golden_session_modification_response_with_immediate_report() {
    // Usage Report (IE 78) with trigger IMMER: octet 5 bit 8 (0x80), octets 6
    // and 7 zero.
    let report = UsageReport {
        urr_id: 1,
        ur_seqn: 2,
        trigger: UsageReportTrigger::IMMER,
        volume: Some(VolumeMeasurement::from_counters(1, 100, 2, 200)),
        start_time: None,
        end_time: None,
    };
    check_golden(
        "21350061 0000000000001001 00000700 \
         0013 0001 01 \
         004e 004c \
           0051 0004 00000001 \
           0068 0004 00000002 \
           003f 0003 800000 \
           0042 0031 3f 000000000000012c 0000000000000064 00000000000000c8 \
                       0000000000000003 0000000000000001 0000000000000002",
        &Message::SessionModificationResponse(SessionModificationResponse {
            cause: Cause::RequestAccepted,
            usage_reports: vec![report],
        }),
        7,
        Some(0x1001),
    );
}

#[test]
fn malformed_usage_queries_are_errors() {
    // Query URR without its URR ID.
    assert_eq!(
        Message::parse(&unhex("21340010 0000000000002001 00000700 004d 0000")),
        Err(Error::MissingIe {
            ie: 81,
            name: "URR ID",
            context: "Query URR"
        })
    );
    // Query URR whose URR ID is 2 octets.
    assert_eq!(
        Message::parse(&unhex(
            "21340016 0000000000002001 00000700 004d 0006 0051 0002 0001"
        )),
        Err(Error::IeTooShort {
            ie: 81,
            expected: 4,
            found: 2
        })
    );
    // Empty PFCPSMReq-Flags.
    assert_eq!(
        Message::parse(&unhex("21340010 0000000000002001 00000700 0031 0000")),
        Err(Error::IeTooShort {
            ie: 49,
            expected: 1,
            found: 0
        })
    );
    // A longer (extended) PFCPSMReq-Flags keeps its first octet.
    let (_, m) =
        Message::parse(&unhex("21340012 0000000000002001 00000700 0031 0002 0400")).unwrap();
    let Message::SessionModificationRequest(r) = m else {
        panic!("{m:?}")
    };
    assert_eq!(r.flags, Some(PfcpSmReqFlags::QAURR));
}

#[test]
fn golden_session_modification_request_changing_the_acl() {
    // Update PDR (IE 9) per PDR: PDR ID (56), Activate Predefined Rules (106)
    // "web", Deactivate Predefined Rules (107) "a".
    let update = |pdr: &str| format!("0009 0012 0038 0002 {pdr} 006a 0003 776562 006b 0001 61 ");
    check_golden(
        &format!(
            "21340038 0000000000002001 00000800 {}{}",
            update("0001"),
            update("0002")
        ),
        &Message::SessionModificationRequest(ipoe::acl_change_request(Some("a"), Some("web"))),
        8,
        Some(0x2001),
    );
}

#[test]
fn acl_change_deactivates_only_a_different_old_acl() {
    let change = |old, new| {
        let req = ipoe::acl_change_request(old, new);
        let pdrs: Vec<u16> = req.update_pdrs.iter().map(|u| u.pdr_id).collect();
        assert_eq!(pdrs, [ipoe::PDR_UPLINK, ipoe::PDR_DOWNLINK]);
        let [u, d] = &req.update_pdrs[..] else {
            panic!("{req:?}")
        };
        assert_eq!(u.activate_predefined_rules, d.activate_predefined_rules);
        assert_eq!(u.deactivate_predefined_rules, d.deactivate_predefined_rules);
        (
            u.activate_predefined_rules.clone(),
            u.deactivate_predefined_rules.clone(),
        )
    };
    let names = |n: &[&str]| n.iter().map(|s| String::from(*s)).collect::<Vec<_>>();
    assert_eq!(change(None, Some("a")), (names(&["a"]), names(&[])));
    assert_eq!(change(Some("a"), Some("b")), (names(&["b"]), names(&["a"])));
    assert_eq!(change(Some("a"), None), (names(&[]), names(&["a"])));
    assert_eq!(change(Some("a"), Some("a")), (names(&["a"]), names(&[])));
    assert_eq!(change(None, None), (names(&[]), names(&[])));
}

#[test]
fn establishment_activates_the_acl_in_both_pdrs() {
    let session = |acl: Option<&str>| ipoe::IpoeSession {
        cp_seid: 1,
        cp_ipv4: CP,
        node_id: NodeId::Ipv4(CP),
        ue_ipv4: Ipv4Addr::new(100, 64, 0, 10),
        mac: [2, 0, 0, 0, 0, 0x10],
        port: 0,
        svlan: 0,
        cvlan: 0,
        rate: None,
        acl: acl.map(String::from),
    };
    let with = ipoe::establishment_request(&session(Some("web-only")));
    assert_eq!(with.create_pdrs.len(), 2);
    for pdr in &with.create_pdrs {
        assert_eq!(pdr.activate_predefined_rules, ["web-only"]);
    }
    let bytes = Message::SessionEstablishmentRequest(with.clone()).encode(1, Some(0));
    // Activate Predefined Rules "web-only" in each Create PDR.
    let ie = unhex("006a 0008 7765622d6f6e6c79");
    let count = bytes.windows(ie.len()).filter(|w| *w == ie).count();
    assert_eq!(count, 2);
    let (_, back, stats) = Message::parse_counting(&bytes).unwrap();
    assert_eq!(back, Message::SessionEstablishmentRequest(with));
    assert_eq!(stats.skipped_ies, 0);

    let without = ipoe::establishment_request(&session(None));
    assert!(
        without
            .create_pdrs
            .iter()
            .all(|p| p.activate_predefined_rules.is_empty())
    );
}

#[test]
fn malformed_predefined_rules_are_errors() {
    // Update PDR without its PDR ID.
    assert_eq!(
        Message::parse(&unhex(
            "21340015 0000000000002001 00000800 0009 0005 006a 0001 61"
        )),
        Err(Error::MissingIe {
            ie: 56,
            name: "PDR ID",
            context: "Update PDR"
        })
    );
    // Activate / Deactivate Predefined Rules that are not UTF-8.
    for ie in ["006a", "006b"] {
        assert_eq!(
            Message::parse(&unhex(&format!(
                "2134001b 0000000000002001 00000800 0009 000b 0038 0002 0001 {ie} 0001 ff"
            ))),
            Err(Error::InvalidIe {
                ie: u16::from_str_radix(ie, 16).unwrap(),
                reason: "predefined rule name is not UTF-8"
            })
        );
    }
    // Unmodelled Update PDR IEs (here Precedence) are skipped and counted.
    let (_, m, stats) = Message::parse_counting(&unhex(
        "2134001e 0000000000002001 00000800 0009 000e 0038 0002 0001 001d 0004 00000064",
    ))
    .unwrap();
    assert_eq!(stats.skipped_ies, 1);
    let Message::SessionModificationRequest(r) = m else {
        panic!("{m:?}")
    };
    assert_eq!(
        r.update_pdrs,
        [UpdatePdr {
            pdr_id: 1,
            ..Default::default()
        }]
    );
}

// ---- IPv6 IEs: UE IP Address with IPv6 Prefix Length, Framed-IPv6-Route ----

/// The content of the single IE in `bytes`, after checking its type.
fn ie_body(bytes: &[u8], ie_type: u16) -> &[u8] {
    let ie = ie::IeIter::new(bytes).next().unwrap().unwrap();
    assert_eq!(ie.ie_type, ie_type);
    ie.data
}

#[test]
fn ue_ip_address_with_ipv6_prefix_length_round_trips() {
    let ue = UeIpAddress {
        ipv4: None,
        ipv6: Some("2001:db8:100::".parse().unwrap()),
        is_destination: true,
        ipv6_prefix_len: Some(64),
    };
    let mut w = ie::Writer::new();
    ue.emit(&mut w);
    let b = w.finish().unwrap();
    assert_eq!(
        b,
        unhex("005d 0012 45 20010db8010000000000000000000000 40"),
        "IP6PL | S/D | V6, the address, then the prefix length"
    );
    assert_eq!(UeIpAddress::parse(ie_body(&b, 93)), Ok(ue));
    // Dual stack, source: IPv4 then IPv6 then the length.
    let ue = UeIpAddress {
        ipv4: Some(Ipv4Addr::new(100, 64, 0, 20)),
        is_destination: false,
        ipv6_prefix_len: Some(56),
        ..ue
    };
    let mut w = ie::Writer::new();
    ue.emit(&mut w);
    let b = w.finish().unwrap();
    assert_eq!(
        b,
        unhex("005d 0016 43 64400014 20010db8010000000000000000000000 38")
    );
    assert_eq!(UeIpAddress::parse(ie_body(&b, 93)), Ok(ue));
    // Without IP6PL nothing follows the addresses (the UP assumes /64).
    let plain = UeIpAddress {
        ipv6_prefix_len: None,
        ..ue
    };
    let mut w = ie::Writer::new();
    plain.emit(&mut w);
    assert_eq!(w.finish().unwrap().len(), 4 + 1 + 4 + 16);
}

#[test]
fn ue_ip_address_skips_the_prefix_delegation_bits() {
    let addr: Ipv6Addr = "2001:db8:100::".parse().unwrap();
    // IP6PL | IPv6D | V6: delegation bits 0x08, then prefix length 56.
    let with_len = unhex("49 20010db8010000000000000000000000 08 38");
    assert_eq!(
        UeIpAddress::parse(&with_len),
        Ok(UeIpAddress {
            ipv6: Some(addr),
            ipv6_prefix_len: Some(56),
            ..Default::default()
        })
    );
    // IPv6D alone: the delegation bits are read and dropped.
    let without_len = unhex("09 20010db8010000000000000000000000 08");
    assert_eq!(
        UeIpAddress::parse(&without_len),
        Ok(UeIpAddress {
            ipv6: Some(addr),
            ..Default::default()
        })
    );
}

#[test]
fn malformed_ue_ip_addresses_are_errors() {
    // IP6PL set, the length octet missing.
    assert_eq!(
        UeIpAddress::parse(&unhex("41 20010db8010000000000000000000000")),
        Err(Error::IeTooShort {
            ie: 93,
            expected: 18,
            found: 17
        })
    );
    // IPv6D and IP6PL set, only one octet after the address: the
    // delegation bits take it, the length is missing.
    assert_eq!(
        UeIpAddress::parse(&unhex("49 20010db8010000000000000000000000 40")),
        Err(Error::IeTooShort {
            ie: 93,
            expected: 19,
            found: 18
        })
    );
    // Truncated IPv6 address.
    assert!(matches!(
        UeIpAddress::parse(&unhex("41 20010db8")),
        Err(Error::IeTooShort { ie: 93, .. })
    ));
    // Prefix length over 128.
    assert_eq!(
        UeIpAddress::parse(&unhex("41 20010db8010000000000000000000000 81")),
        Err(Error::InvalidIe {
            ie: 93,
            reason: "IPv6 prefix length over 128"
        })
    );
    assert!(UeIpAddress::parse(&unhex("41 20010db8010000000000000000000000 80")).is_ok());
}

#[test]
fn framed_ipv6_route_round_trips() {
    // Host bits are cleared when the route is made and when it is sent.
    let r = FramedIpv6Route::new("2001:db8:200::1".parse().unwrap(), 56).unwrap();
    assert_eq!(r.prefix, "2001:db8:200::".parse::<Ipv6Addr>().unwrap());
    let mut w = ie::Writer::new();
    r.emit(&mut w);
    let b = w.finish().unwrap();
    let mut expected = unhex("009b 0011");
    expected.extend_from_slice(b"2001:db8:200::/56");
    assert_eq!(b, expected);
    assert_eq!(FramedIpv6Route::parse(ie_body(&b, 155)), Ok(r));
    let raw = FramedIpv6Route {
        prefix: "2001:db8:200::1".parse().unwrap(),
        len: 56,
    };
    let mut w = ie::Writer::new();
    raw.emit(&mut w);
    assert_eq!(w.finish().unwrap(), b);
    // RFC 3162 2.5: gateway and metrics may follow; only the prefix counts.
    for text in [
        "2001:db8:200::/56 :: 1",
        "2001:db8:200::/56 2001:db8::1 10",
        " 2001:db8:200:0:0::/56\t",
        "2001:db8:200:ff::/56",
    ] {
        assert_eq!(FramedIpv6Route::parse(text.as_bytes()), Ok(r), "{text:?}");
    }
    assert_eq!(
        FramedIpv6Route::parse(b"::/0"),
        Ok(FramedIpv6Route {
            prefix: Ipv6Addr::UNSPECIFIED,
            len: 0
        })
    );
    assert_eq!(
        FramedIpv6Route::parse(b"2001:db8::1/128").map(|r| r.prefix),
        Ok("2001:db8::1".parse().unwrap())
    );
    assert_eq!(FramedIpv6Route::new(Ipv6Addr::UNSPECIFIED, 129), None);
}

#[test]
fn malformed_framed_ipv6_routes_are_errors() {
    let err = |reason| {
        Err(Error::InvalidIe {
            ie: ie::ids::FRAMED_IPV6_ROUTE,
            reason,
        })
    };
    assert_eq!(
        FramedIpv6Route::parse(b"2001:db8::/56\xff"),
        err("Framed-IPv6-Route is not UTF-8")
    );
    for empty in [&b""[..], b"  "] {
        assert_eq!(
            FramedIpv6Route::parse(empty),
            err("Framed-IPv6-Route is empty")
        );
    }
    for no_len in ["2001:db8::", "2001:db8:: /56"] {
        assert_eq!(
            FramedIpv6Route::parse(no_len.as_bytes()),
            err("Framed-IPv6-Route has no /prefix-length"),
            "{no_len:?}"
        );
    }
    for bad_addr in ["2001:db8::g/56", "10.0.0.0/8", "/56"] {
        assert_eq!(
            FramedIpv6Route::parse(bad_addr.as_bytes()),
            err("Framed-IPv6-Route prefix is not an IPv6 address"),
            "{bad_addr:?}"
        );
    }
    for bad_len in [
        "2001:db8::/129",
        "2001:db8::/",
        "2001:db8::/+5",
        "2001:db8::/0056",
        "2001:db8::/5x",
        "2001:db8::/56/1",
    ] {
        assert_eq!(
            FramedIpv6Route::parse(bad_len.as_bytes()),
            err("Framed-IPv6-Route prefix length is not 0..=128"),
            "{bad_len:?}"
        );
    }
}

#[test]
fn pdi_framed_ipv6_routes_round_trip_in_order_and_bad_ones_fail_the_message() {
    let mut m = contract_establishment();
    let routes = vec![
        FramedIpv6Route::new("2001:db8:200::".parse().unwrap(), 56).unwrap(),
        FramedIpv6Route::new("2001:db8:300::".parse().unwrap(), 48).unwrap(),
    ];
    m.create_pdrs[0].pdi.ue_ip_address = Some(UeIpAddress {
        ipv4: None,
        ipv6: Some("2001:db8:100::".parse().unwrap()),
        is_destination: false,
        ipv6_prefix_len: Some(64),
    });
    m.create_pdrs[0].pdi.framed_ipv6_routes = routes.clone();
    let msg = Message::SessionEstablishmentRequest(m);
    let bytes = msg.encode(5, Some(0));
    let (_, back, stats) = Message::parse_counting(&bytes).unwrap();
    assert_eq!(back, msg);
    assert_eq!(stats.skipped_ies, 0);
    let Message::SessionEstablishmentRequest(back) = back else {
        unreachable!()
    };
    assert_eq!(back.create_pdrs[0].pdi.framed_ipv6_routes, routes);

    // The same message with the first route's length made invalid.
    let needle = b"/56";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    let mut bad = bytes.clone();
    bad[at + 1..at + 3].copy_from_slice(b"5x");
    assert_eq!(
        Message::parse(&bad),
        Err(Error::InvalidIe {
            ie: 155,
            reason: "Framed-IPv6-Route prefix length is not 0..=128"
        })
    );
    // And the UE IP Address's prefix length.
    let at = bytes
        .windows(3)
        .position(|w| w == [0x00, 0x5d, 0x00])
        .unwrap();
    let len_at = at + 4 + usize::from(bytes[at + 3]) - 1;
    assert_eq!(bytes[len_at], 64);
    let mut bad = bytes;
    bad[len_at] = 200;
    assert!(matches!(
        Message::parse(&bad),
        Err(Error::InvalidIe { ie: 93, .. })
    ));
}

#[test]
fn unknown_ies_are_skipped_and_counted() {
    // Heartbeat Request with Source IP Address (IE 192, not modelled) and an
    // unknown vendor IE before the Recovery Time Stamp.
    let bytes = unhex(
        "2001001d 00000900 \
         00c0 0005 02 7f000001 \
         8123 0004 1234 abcd \
         0060 0004 e8fe6f80",
    );
    let (_, m, stats) = Message::parse_counting(&bytes).unwrap();
    assert_eq!(
        m,
        Message::HeartbeatRequest(HeartbeatRequest {
            recovery_time_stamp: RTS
        })
    );
    assert_eq!(stats.skipped_ies, 2);
}

#[test]
fn malformed_messages_are_errors() {
    // Missing Recovery Time Stamp.
    assert_eq!(
        Message::parse(&unhex("20010004 00000100")),
        Err(Error::MissingIe {
            ie: 96,
            name: "Recovery Time Stamp",
            context: "PFCP Heartbeat Request"
        })
    );
    // IE length runs past the message.
    assert_eq!(
        Message::parse(&unhex("2001000c 00000100 0060 0005 e8fe6f80")),
        Err(Error::IeOverrun {
            ie: 96,
            expected: 5,
            found: 4
        })
    );
    // IE too short for its fields.
    assert_eq!(
        Message::parse(&unhex("2001000b 00000100 0060 0003 e8fe6f")),
        Err(Error::IeTooShort {
            ie: 96,
            expected: 4,
            found: 3
        })
    );
    // Message length beyond the datagram.
    assert_eq!(
        Message::parse(&unhex("2001000d 00000100 0060 0004 e8fe6f80")),
        Err(Error::Truncated {
            expected: 17,
            found: 16
        })
    );
    // Trailing octets without FO.
    assert_eq!(
        Message::parse(&unhex("2001000c 00000100 0060 0004 e8fe6f80 00")),
        Err(Error::TrailingBytes { found: 1 })
    );
    assert_eq!(
        Message::parse(&unhex("20030004 00000100")),
        Err(Error::UnsupportedMessage(3))
    );
    // Establishment without any Create FAR.
    let mut m = contract_establishment();
    m.create_fars.clear();
    let bytes = Message::SessionEstablishmentRequest(m).encode(1, Some(0));
    assert!(matches!(
        Message::parse(&bytes),
        Err(Error::MissingIe { ie: 3, .. })
    ));
}

#[test]
fn bundled_messages() {
    let hb = Message::HeartbeatRequest(HeartbeatRequest {
        recovery_time_stamp: RTS,
    });
    let del = Message::SessionDeletionRequest(SessionDeletionRequest {});
    let bytes = encode_bundle(&[(&hb, 1, None), (&del, 2, Some(9))]).unwrap();
    assert_eq!(bytes[0] & 0x04, 0x04, "FO set on the first message");
    assert_eq!(bytes[16] & 0x04, 0, "FO clear on the last message");
    let all = parse_all(&bytes).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].1, hb);
    assert_eq!((all[1].0.seid, &all[1].1), (Some(9), &del));
    // Message::parse takes the first and leaves the rest.
    assert_eq!(Message::parse(&bytes).unwrap().1, hb);
    // FO set on the last message: nothing follows.
    let mut bad = hb.encode(1, None);
    bad[0] |= 0x04;
    assert_eq!(parse_all(&bad), Err(Error::MissingFollowOn));
}

// ---- proptest strategies ----

fn ipv4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn ipv6() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(Ipv6Addr::from)
}

fn node_id() -> impl Strategy<Value = NodeId> {
    prop_oneof![
        ipv4().prop_map(NodeId::Ipv4),
        ipv6().prop_map(NodeId::Ipv6),
        "[a-z0-9-]{1,12}(\\.[a-z0-9-]{1,12}){0,3}".prop_map(NodeId::Fqdn),
    ]
}

fn interface() -> impl Strategy<Value = Interface> {
    (0u8..16).prop_map(Interface::from)
}

fn name() -> impl Strategy<Value = String> {
    "[a-z0-9.]{0,12}"
}

fn f_seid() -> impl Strategy<Value = FSeid> {
    (
        any::<u64>(),
        proptest::option::of(ipv4()),
        proptest::option::of(ipv6()),
    )
        .prop_map(|(seid, ipv4, ipv6)| FSeid { seid, ipv4, ipv6 })
}

fn ue_ip() -> impl Strategy<Value = UeIpAddress> {
    (
        proptest::option::of(ipv4()),
        proptest::option::of(ipv6()),
        any::<bool>(),
        proptest::option::of(0u8..=128),
    )
        .prop_map(
            |(ipv4, ipv6, is_destination, ipv6_prefix_len)| UeIpAddress {
                ipv4,
                ipv6,
                is_destination,
                ipv6_prefix_len,
            },
        )
}

fn framed_ipv6_route() -> impl Strategy<Value = FramedIpv6Route> {
    (ipv6(), 0u8..=128).prop_map(|(p, len)| FramedIpv6Route::new(p, len).unwrap())
}

fn eth_filter() -> impl Strategy<Value = EthernetPacketFilter> {
    let mac = (
        proptest::option::of(any::<[u8; 6]>()),
        proptest::option::of(any::<[u8; 6]>()),
    )
        .prop_map(|(source, destination)| MacAddress {
            source,
            destination,
        });
    (
        proptest::option::of(any::<u32>()),
        proptest::option::of(mac),
        proptest::option::of(0u16..4096),
        proptest::option::of(0u16..4096),
    )
        .prop_map(
            |(filter_id, mac_address, c_tag, s_tag)| EthernetPacketFilter {
                filter_id,
                mac_address,
                c_tag,
                s_tag,
            },
        )
}

fn ppp_protocol() -> impl Strategy<Value = PppProtocol> {
    (
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(any::<u16>()),
    )
        .prop_map(|(control, data, protocol)| PppProtocol {
            control,
            data,
            protocol,
        })
}

fn pdi() -> impl Strategy<Value = Pdi> {
    (
        interface(),
        proptest::option::of(name()),
        proptest::option::of(ue_ip()),
        proptest::option::of(eth_filter()),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..6)),
        proptest::option::of(any::<u16>()),
        proptest::option::of(ppp_protocol()),
        proptest::collection::vec(framed_ipv6_route(), 0..3),
    )
        .prop_map(
            |(
                source_interface,
                network_instance,
                ue_ip_address,
                f,
                logical_port,
                pppoe_session_id,
                ppp_protocol,
                framed_ipv6_routes,
            )| Pdi {
                source_interface,
                network_instance,
                ue_ip_address,
                ethernet_packet_filter: f,
                logical_port,
                pppoe_session_id,
                ppp_protocol,
                framed_ipv6_routes,
            },
        )
}

fn ids32() -> impl Strategy<Value = Vec<u32>> {
    proptest::collection::vec(any::<u32>(), 0..3)
}

fn create_pdr() -> impl Strategy<Value = CreatePdr> {
    let ohr = (any::<u8>(), proptest::option::of(any::<u8>())).prop_map(
        |(description, ext_header_deletion)| OuterHeaderRemoval {
            description,
            ext_header_deletion,
        },
    );
    (
        any::<u16>(),
        any::<u32>(),
        pdi(),
        proptest::option::of(ohr),
        proptest::option::of(any::<u8>().prop_map(BbfOuterHeaderRemoval)),
        proptest::option::of(any::<u32>()),
        ids32(),
        ids32(),
        rule_names(),
    )
        .prop_map(
            |(pdr_id, precedence, pdi, ohr, bbf_ohr, far_id, urr_ids, qer_ids, rules)| CreatePdr {
                pdr_id,
                precedence,
                pdi,
                outer_header_removal: ohr,
                bbf_outer_header_removal: bbf_ohr,
                far_id,
                urr_ids,
                qer_ids,
                activate_predefined_rules: rules,
            },
        )
}

/// Predefined rule names: any UTF-8 text, empty included (the IE is an
/// octet string of any length).
fn rule_names() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(".{0,8}", 0..3)
}

fn update_pdr() -> impl Strategy<Value = UpdatePdr> {
    (any::<u16>(), rule_names(), rule_names()).prop_map(|(pdr_id, activate, deactivate)| {
        UpdatePdr {
            pdr_id,
            activate_predefined_rules: activate,
            deactivate_predefined_rules: deactivate,
        }
    })
}

fn ohc() -> impl Strategy<Value = OuterHeaderCreation> {
    type O = OuterHeaderCreation;
    (
        any::<u16>(),
        any::<u32>(),
        ipv4(),
        ipv6(),
        any::<u16>(),
        any::<[u8; 3]>(),
        any::<[u8; 3]>(),
    )
        .prop_map(|(d, teid, v4, v6, port, ct, st)| {
            let has = |b: u16| d & b != 0;
            O {
                description: d,
                teid: has(O::GTPU_UDP_IPV4 | O::GTPU_UDP_IPV6).then_some(teid),
                ipv4: has(O::GTPU_UDP_IPV4 | O::UDP_IPV4 | O::IPV4).then_some(v4),
                ipv6: has(O::GTPU_UDP_IPV6 | O::UDP_IPV6 | O::IPV6).then_some(v6),
                port: has(O::UDP_IPV4 | O::UDP_IPV6).then_some(port),
                c_tag: has(O::C_TAG).then_some(ct),
                s_tag: has(O::S_TAG).then_some(st),
            }
        })
}

fn bbf_ohc() -> impl Strategy<Value = BbfOuterHeaderCreation> {
    any::<(u16, u16, u16)>().prop_map(|(description, tunnel_id, session_id)| {
        BbfOuterHeaderCreation {
            description,
            tunnel_id,
            session_id,
        }
    })
}

fn fwd() -> impl Strategy<Value = ForwardingParameters> {
    (
        interface(),
        proptest::option::of(name()),
        proptest::option::of(ohc()),
        proptest::option::of(bbf_ohc()),
        proptest::option::of(any::<u16>()),
    )
        .prop_map(
            |(
                destination_interface,
                network_instance,
                outer_header_creation,
                bbf_outer_header_creation,
                bbf_mtu,
            )| {
                ForwardingParameters {
                    destination_interface,
                    network_instance,
                    outer_header_creation,
                    bbf_outer_header_creation,
                    bbf_mtu,
                }
            },
        )
}

fn create_far() -> impl Strategy<Value = CreateFar> {
    (any::<u32>(), any::<u16>(), proptest::option::of(fwd())).prop_map(|(far_id, aa, fp)| {
        CreateFar {
            far_id,
            apply_action: ApplyAction(aa),
            forwarding_parameters: fp,
        }
    })
}

fn update_far() -> impl Strategy<Value = UpdateFar> {
    (
        any::<u32>(),
        proptest::option::of(any::<u16>()),
        proptest::option::of(fwd()),
    )
        .prop_map(|(far_id, aa, fp)| UpdateFar {
            far_id,
            apply_action: aa.map(ApplyAction),
            update_forwarding_parameters: fp,
        })
}

fn create_urr() -> impl Strategy<Value = CreateUrr> {
    (
        any::<u32>(),
        any::<u8>(),
        0u32..0x100_0000,
        proptest::option::of(any::<u32>()),
    )
        .prop_map(|(urr_id, mm, rt, measurement_period)| CreateUrr {
            urr_id,
            measurement_method: MeasurementMethod(mm),
            reporting_triggers: ReportingTriggers(rt),
            measurement_period,
        })
}

fn gate() -> impl Strategy<Value = GateStatus> {
    (any::<bool>(), any::<bool>()).prop_map(|(ul_open, dl_open)| GateStatus { ul_open, dl_open })
}

fn mbr() -> impl Strategy<Value = Mbr> {
    (0..=ie::rules::MBR_MAX_KBPS, 0..=ie::rules::MBR_MAX_KBPS)
        .prop_map(|(ul_kbps, dl_kbps)| Mbr { ul_kbps, dl_kbps })
}

fn create_qer() -> impl Strategy<Value = CreateQer> {
    (any::<u32>(), gate(), proptest::option::of(mbr())).prop_map(|(qer_id, gate_status, mbr)| {
        CreateQer {
            qer_id,
            gate_status,
            mbr,
        }
    })
}

fn update_qer() -> impl Strategy<Value = UpdateQer> {
    (
        any::<u32>(),
        proptest::option::of(gate()),
        proptest::option::of(mbr()),
    )
        .prop_map(|(qer_id, gate_status, mbr)| UpdateQer {
            qer_id,
            gate_status,
            mbr,
        })
}

fn usage_report() -> impl Strategy<Value = UsageReport> {
    let vol = any::<[u64; 6]>().prop_map(|v| VolumeMeasurement {
        total_bytes: v[0],
        ul_bytes: v[1],
        dl_bytes: v[2],
        total_packets: v[3],
        ul_packets: v[4],
        dl_packets: v[5],
    });
    (
        any::<u32>(),
        any::<u32>(),
        0u32..0x100_0000,
        proptest::option::of(vol),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
    )
        .prop_map(
            |(urr_id, ur_seqn, t, volume, start_time, end_time)| UsageReport {
                urr_id,
                ur_seqn,
                trigger: UsageReportTrigger(t),
                volume,
                start_time,
                end_time,
            },
        )
}

fn reports() -> impl Strategy<Value = Vec<UsageReport>> {
    proptest::collection::vec(usage_report(), 0..3)
}

fn up_ip_resource() -> impl Strategy<Value = UserPlaneIpResourceInformation> {
    (
        0u8..8,
        any::<u8>(),
        proptest::option::of(ipv4()),
        proptest::option::of(ipv6()),
        proptest::option::of(name()),
        proptest::option::of(interface()),
    )
        .prop_map(
            |(bits, range, ipv4, ipv6, ni, si)| UserPlaneIpResourceInformation {
                teid_range_bits: bits,
                teid_range: if bits == 0 { 0 } else { range },
                ipv4,
                ipv6,
                network_instance: ni,
                source_interface: si,
            },
        )
}

fn features() -> impl Strategy<Value = (Option<UpFunctionFeatures>, Option<CpFunctionFeatures>)> {
    (
        proptest::option::of(proptest::collection::vec(any::<u8>(), 2..7)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 1..4)),
    )
        .prop_map(|(u, c)| (u.map(UpFunctionFeatures), c.map(CpFunctionFeatures)))
}

fn cause() -> impl Strategy<Value = Cause> {
    any::<u8>().prop_map(Cause::from)
}

fn rts() -> impl Strategy<Value = RecoveryTimeStamp> {
    any::<u32>().prop_map(RecoveryTimeStamp)
}

fn message() -> impl Strategy<Value = Message> {
    use proptest::collection::vec as v;
    let bbf = proptest::option::of(any::<u32>().prop_map(BbfUpFunctionFeatures));
    prop_oneof![
        rts().prop_map(|r| Message::HeartbeatRequest(HeartbeatRequest {
            recovery_time_stamp: r
        })),
        rts().prop_map(|r| Message::HeartbeatResponse(HeartbeatResponse {
            recovery_time_stamp: r
        })),
        (node_id(), rts(), features(), bbf.clone()).prop_map(|(n, r, (u, c), b)| {
            Message::AssociationSetupRequest(AssociationSetupRequest {
                node_id: n,
                recovery_time_stamp: r,
                up_function_features: u,
                cp_function_features: c,
                bbf_up_function_features: b,
            })
        }),
        (
            node_id(),
            cause(),
            rts(),
            features(),
            bbf,
            v(up_ip_resource(), 0..3)
        )
            .prop_map(|(n, cause, r, (u, c), b, res)| {
                Message::AssociationSetupResponse(AssociationSetupResponse {
                    node_id: n,
                    cause,
                    recovery_time_stamp: r,
                    up_function_features: u,
                    cp_function_features: c,
                    bbf_up_function_features: b,
                    user_plane_ip_resources: res,
                })
            }),
        node_id().prop_map(
            |n| Message::AssociationReleaseRequest(AssociationReleaseRequest { node_id: n })
        ),
        (node_id(), cause()).prop_map(|(n, c)| Message::AssociationReleaseResponse(
            AssociationReleaseResponse {
                node_id: n,
                cause: c
            }
        )),
        Just(Message::VersionNotSupportedResponse),
        (
            node_id(),
            f_seid(),
            v(create_pdr(), 1..3),
            v(create_far(), 1..3),
            v(create_urr(), 0..2),
            v(create_qer(), 0..2)
        )
            .prop_map(|(n, f, p, fa, u, q)| Message::SessionEstablishmentRequest(
                SessionEstablishmentRequest {
                    node_id: n,
                    cp_f_seid: f,
                    create_pdrs: p,
                    create_fars: fa,
                    create_urrs: u,
                    create_qers: q,
                }
            )),
        (
            node_id(),
            cause(),
            proptest::option::of(f_seid()),
            v(any::<(u16, Option<(u32, u32)>)>(), 0..3)
        )
            .prop_map(|(n, c, f, created)| Message::SessionEstablishmentResponse(
                SessionEstablishmentResponse {
                    node_id: n,
                    cause: c,
                    up_f_seid: f,
                    created_pdrs: created
                        .into_iter()
                        .map(|(pdr_id, t)| CreatedPdr {
                            pdr_id,
                            local_f_teid: t.map(|(teid, a)| FTeid {
                                teid,
                                ipv4: Some(Ipv4Addr::from(a)),
                                ipv6: None,
                            }),
                        })
                        .collect(),
                }
            )),
        (
            (
                proptest::option::of(f_seid()),
                v(any::<u16>(), 0..3),
                ids32(),
                ids32(),
                ids32()
            ),
            (
                v(create_pdr(), 0..2),
                v(create_far(), 0..2),
                v(create_urr(), 0..2),
                v(create_qer(), 0..2),
                v(update_pdr(), 0..2),
                v(update_far(), 0..2),
                v(update_qer(), 0..2)
            ),
            (proptest::option::of(any::<u8>()), ids32())
        )
            .prop_map(
                |((f, rp, rf, ru, rq), (cp, cf, cu, cq, up, uf, uq), (fl, qu))| {
                    Message::SessionModificationRequest(SessionModificationRequest {
                        cp_f_seid: f,
                        remove_pdrs: rp,
                        remove_fars: rf,
                        remove_urrs: ru,
                        remove_qers: rq,
                        create_pdrs: cp,
                        create_fars: cf,
                        create_urrs: cu,
                        create_qers: cq,
                        update_pdrs: up,
                        update_fars: uf,
                        update_qers: uq,
                        flags: fl.map(PfcpSmReqFlags),
                        query_urrs: qu,
                    })
                }
            ),
        (cause(), reports()).prop_map(|(c, r)| Message::SessionModificationResponse(
            SessionModificationResponse {
                cause: c,
                usage_reports: r
            }
        )),
        Just(Message::SessionDeletionRequest(SessionDeletionRequest {})),
        (cause(), reports()).prop_map(|(c, r)| Message::SessionDeletionResponse(
            SessionDeletionResponse {
                cause: c,
                usage_reports: r
            }
        )),
        (any::<u8>(), reports()).prop_map(|(t, r)| Message::SessionReportRequest(
            SessionReportRequest {
                report_type: ReportType(t),
                usage_reports: r
            }
        )),
        cause().prop_map(|c| Message::SessionReportResponse(SessionReportResponse { cause: c })),
    ]
}

proptest! {
    #[test]
    fn every_message_round_trips(m in message(), seq in 0u32..0x100_0000, seid in any::<u64>()) {
        let bytes = m.encode(seq, Some(seid));
        let (h, back, stats) = Message::parse_counting(&bytes).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(stats.skipped_ies, 0);
        prop_assert_eq!(h.sequence, seq);
        prop_assert_eq!(h.msg_type, m.msg_type());
        prop_assert_eq!(h.seid, m.msg_type().is_session().then_some(seid));
        // The length field always matches the datagram.
        prop_assert_eq!(usize::from(u16::from_be_bytes([bytes[2], bytes[3]])) + 4, bytes.len());
    }

    #[test]
    fn bundles_round_trip(ms in proptest::collection::vec(message(), 1..4)) {
        let items: Vec<_> = ms.iter().enumerate().map(|(i, m)| (m, i as u32, Some(i as u64))).collect();
        let bytes = encode_bundle(&items).unwrap();
        let all = parse_all(&bytes).unwrap();
        prop_assert_eq!(all.into_iter().map(|(_, m)| m).collect::<Vec<_>>(), ms);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok((_, m)) = Message::parse(&bytes) {
            let again = Message::parse(&m.encode(1, Some(1))).unwrap().1;
            prop_assert_eq!(again, m);
        }
        let _ = parse_all(&bytes);
    }

    #[test]
    fn mutated_valid_messages_never_panic(
        m in message(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = m.encode(7, Some(7));
        for (i, v) in flips {
            let at = i.index(bytes.len());
            bytes[at] = v;
        }
        if let Ok((_, m)) = Message::parse(&bytes) {
            let again = Message::parse(&m.encode(1, Some(1))).unwrap().1;
            prop_assert_eq!(again, m);
        }
    }
}
