//! The whole control plane in-process: a user plane (in-test PFCP
//! responder + a GTP-U socket) redirects ARP and DHCP frames with VLAN
//! tags; we check the replies byte by byte, that the lease becomes a PFCP
//! session before the client gets its DHCPACK, and the REST API (list,
//! user planes, metrics, delete).

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{CLIENT_MAC, FakeUp, dhcp_frame, dhcp_msg, gtpu, start_cp};
use tokio::net::UdpSocket;
use vbng_access::dhcproto::v4::{DhcpOption, MessageType as DhcpType, OptionCode};
use vbng_access::dhcpv4;
use vbng_cp::aaa::LocalSubscribers;
use vbng_cp::api::{SessionView, UserPlaneView};
use vbng_cp::config::Config;
use vbng_cups::pfcp::Message;
use vbng_dataplane::wire::{
    self, ArpOperation, ArpRepr, EtherType, EthernetAddress, GtpuRepr, IpProtocol, Ipv4Repr,
    L2Header, UdpRepr,
};

const GW_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x01, 0x01];

async fn exchange(sock: &UdpSocket, cp: SocketAddr, datagram: &[u8]) -> Vec<u8> {
    sock.send_to(datagram, cp).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, from) = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut buf))
        .await
        .expect("reply within 10 s")
        .unwrap();
    assert_eq!(from, cp);
    buf.truncate(n);
    buf
}

/// Parse a reply frame: GTP-U TEID, L2 header, IPv4 (checksum verified),
/// UDP (checksum verified), DHCP message.
fn parse_dhcp_reply(
    datagram: &[u8],
) -> (
    u32,
    L2Header,
    Ipv4Repr,
    UdpRepr,
    vbng_access::dhcproto::v4::Message,
) {
    let (g, frame) = GtpuRepr::parse_payload(datagram).unwrap();
    assert_eq!(g.msg_type, 255);
    let (l2, off) = L2Header::parse(frame).unwrap();
    assert_eq!(l2.ethertype, EtherType::Ipv4);
    let ip_bytes = &frame[off..];
    let ip = Ipv4Repr::parse(ip_bytes).expect("IPv4 header checksum verifies");
    assert_eq!(ip.protocol, IpProtocol::Udp);
    let udp_bytes = &ip_bytes[20..20 + usize::from(ip.payload_len)];
    assert!(wire::udp::verify_checksum(
        ip.src_addr,
        ip.dst_addr,
        udp_bytes
    ));
    assert_ne!(&udp_bytes[6..8], &[0, 0], "UDP checksum present");
    let udp = UdpRepr::parse(udp_bytes).unwrap();
    let msg = dhcpv4::decode(&udp_bytes[8..]).unwrap();
    (g.teid, l2, ip, udp, msg)
}

fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> T {
    ureq::get(url)
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arp_dhcp_session_and_rest() {
    let up = FakeUp::start(Ipv4Addr::new(127, 0, 0, 1)).await;
    let up_gtpu = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let running = start_cp(
        &up,
        &up_gtpu,
        LocalSubscribers::default(),
        Config::default(),
    )
    .await;
    let cp = running.gtpu_addr;

    // ARP request (QinQ 10/100) for the pool gateway -> reply from the
    // gateway MAC with the same tags, same TEID.
    let client = EthernetAddress(CLIENT_MAC);
    let arp_req = ArpRepr {
        operation: ArpOperation::Request,
        source_hardware_addr: client,
        source_protocol_addr: Ipv4Addr::new(100, 64, 0, 77),
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: Ipv4Addr::new(100, 64, 0, 1),
    };
    let l2 = L2Header {
        dst: EthernetAddress::BROADCAST,
        src: client,
        svlan: Some(10),
        cvlan: Some(100),
        ethertype: EtherType::Arp,
    };
    let reply = exchange(
        &up_gtpu,
        cp,
        &gtpu(3, &wire::frame::build_arp(&l2, &arp_req)),
    )
    .await;
    let (g, frame) = GtpuRepr::parse_payload(&reply).unwrap();
    assert_eq!(g.teid, 3);
    let (rl2, off) = L2Header::parse(frame).unwrap();
    assert_eq!(
        (rl2.dst, rl2.src, rl2.svlan, rl2.cvlan, rl2.ethertype),
        (
            client,
            EthernetAddress(GW_MAC),
            Some(10),
            Some(100),
            EtherType::Arp
        )
    );
    let arp = ArpRepr::parse(&frame[off..]).unwrap();
    assert_eq!(arp.operation, ArpOperation::Reply);
    assert_eq!(arp.source_hardware_addr, EthernetAddress(GW_MAC));
    assert_eq!(arp.source_protocol_addr, Ipv4Addr::new(100, 64, 0, 1));
    assert_eq!(arp.target_hardware_addr, client);
    assert_eq!(arp.target_protocol_addr, Ipv4Addr::new(100, 64, 0, 77));

    // DISCOVER (802.1Q 100) -> OFFER.
    let discover = dhcp_msg(DhcpType::Discover, CLIENT_MAC, 0xabcd, vec![]);
    let reply = exchange(
        &up_gtpu,
        cp,
        &gtpu(3, &dhcp_frame(CLIENT_MAC, None, Some(100), &discover)),
    )
    .await;
    let (teid, l2, ip, udp, offer) = parse_dhcp_reply(&reply);
    assert_eq!(teid, 3);
    assert_eq!((l2.svlan, l2.cvlan), (None, Some(100)));
    assert_eq!(l2.src, EthernetAddress(GW_MAC));
    assert_eq!(
        l2.dst,
        EthernetAddress::BROADCAST,
        "broadcast flag set by the client"
    );
    assert_eq!(ip.src_addr, Ipv4Addr::new(100, 64, 0, 1));
    assert_eq!(ip.dst_addr, Ipv4Addr::BROADCAST);
    assert_eq!((udp.src_port, udp.dst_port), (67, 68));
    assert_eq!(offer.opts().msg_type(), Some(DhcpType::Offer));
    assert_eq!(offer.xid(), 0xabcd);
    let yiaddr = offer.yiaddr();
    assert!((10..=250).contains(&yiaddr.octets()[3]) && yiaddr.octets()[..3] == [100, 64, 0]);
    assert!(matches!(
        offer.opts().get(OptionCode::ServerIdentifier),
        Some(DhcpOption::ServerIdentifier(ip)) if *ip == Ipv4Addr::new(100, 64, 0, 1)
    ));

    // REQUEST -> lease bound -> PFCP session established -> ACK. The user
    // plane takes its time to accept: the ACK must wait for it.
    up.establish_delay_ms.store(300, Ordering::SeqCst);
    assert_eq!(up.establishment_requests(), 0);
    let request = dhcp_msg(
        DhcpType::Request,
        CLIENT_MAC,
        0xabce,
        vec![
            DhcpOption::ServerIdentifier(Ipv4Addr::new(100, 64, 0, 1)),
            DhcpOption::RequestedIpAddress(yiaddr),
        ],
    );
    let reply = exchange(
        &up_gtpu,
        cp,
        &gtpu(3, &dhcp_frame(CLIENT_MAC, None, Some(100), &request)),
    )
    .await;
    let ack_at = Instant::now();
    let (_, _, _, _, ack) = parse_dhcp_reply(&reply);
    assert_eq!(ack.opts().msg_type(), Some(DhcpType::Ack));
    assert_eq!(ack.yiaddr(), yiaddr);
    // Order: establishment request received, then accepted, then the ACK.
    assert_eq!(
        up.establishment_requests(),
        1,
        "the user plane saw the session establishment before the client got its ACK"
    );
    let answered = up.establish_answered.lock().unwrap().clone();
    assert_eq!(answered.len(), 1, "the establishment was answered");
    assert!(
        answered[0] <= ack_at,
        "the DHCPACK arrived before the user plane accepted the session"
    );
    // When the client learns its address, the session already forwards.
    let session = running
        .sessions
        .snapshot()
        .into_iter()
        .find(|s| s.state == "active")
        .expect("session active when the ACK arrives");
    assert_eq!(session.ipv4, yiaddr);
    assert_eq!(session.mac, "02:00:00:00:00:42");
    assert_eq!((session.port, session.svlan, session.cvlan), (3, 0, 100));
    assert_eq!(session.up_seid, Some(0x1001));
    let est = up
        .messages()
        .into_iter()
        .find_map(|(_, _, m)| match m {
            Message::SessionEstablishmentRequest(r) => Some(r),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        est.create_pdrs[0].pdi.ue_ip_address.unwrap().ipv4,
        Some(yiaddr)
    );

    // Malformed input is counted, never answered.
    up_gtpu.send_to(&[0x30, 0xff, 0, 9], cp).await.unwrap();
    up_gtpu
        .send_to(
            &gtpu(3, &dhcp_frame(CLIENT_MAC, None, Some(100), &[1, 2, 3])),
            cp,
        )
        .await
        .unwrap();

    // REST.
    let api = format!("http://{}", running.api_addr);
    let id = session.id;
    let (sessions, ups, metrics, code_missing, deleted, after, code_again) =
        tokio::task::spawn_blocking(move || {
            let sessions: Vec<SessionView> = get_json(&format!("{api}/sessions"));
            let ups: Vec<UserPlaneView> = get_json(&format!("{api}/user-planes"));
            let code_missing = match ureq::get(&format!("{api}/sessions/999999")).call() {
                Err(ureq::Error::StatusCode(c)) => c,
                other => panic!("expected 404, got {other:?}"),
            };
            let deleted = ureq::delete(&format!("{api}/sessions/{id}"))
                .call()
                .unwrap()
                .status();
            let after: Vec<SessionView> = get_json(&format!("{api}/sessions"));
            let code_again = match ureq::delete(&format!("{api}/sessions/{id}")).call() {
                Err(ureq::Error::StatusCode(c)) => c,
                other => panic!("expected 404, got {other:?}"),
            };
            let metrics = ureq::get(&format!("{api}/metrics"))
                .call()
                .unwrap()
                .body_mut()
                .read_to_string()
                .unwrap();
            (
                sessions,
                ups,
                metrics,
                code_missing,
                deleted,
                after,
                code_again,
            )
        })
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].id, id);
    assert_eq!(ups[0].name, "up0");
    assert_eq!(ups[0].state, "up");
    assert_eq!(ups[0].sessions, 1);
    assert_eq!(code_missing, 404);
    assert_eq!(deleted.as_u16(), 204);
    assert!(after.is_empty());
    assert_eq!(code_again, 404);
    assert!(
        up.messages()
            .iter()
            .any(|(_, h, m)| matches!(m, Message::SessionDeletionRequest(_))
                && h.seid == Some(0x1001))
    );
    for needle in [
        "vbng_cp_dhcp_messages_total{msg_type=\"discover\",direction=\"rx\"} 1",
        "vbng_cp_dhcp_messages_total{msg_type=\"offer\",direction=\"tx\"} 1",
        "vbng_cp_dhcp_messages_total{msg_type=\"ack\",direction=\"tx\"} 1",
        "vbng_cp_arp_replies_total 1",
        "vbng_cp_redirect_dropped_total{reason=\"gtpu_malformed\"} 1",
        "vbng_cp_redirect_dropped_total{reason=\"dhcp_malformed\"} 1",
        "vbng_cp_user_plane_up{user_plane=\"up0\"} 1",
        "vbng_cp_session_deletions_total 1",
        "vbng_cp_usage_bytes_total{direction=\"uplink\"} 1500",
        "vbng_cp_sessions 0",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    running.shutdown().await.unwrap();
}
