//! Session registry behaviour against an in-test user plane: a refused
//! establishment removes the lease (never half-programmed), and a user
//! plane restart re-programs the sessions it lost.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{CLIENT_MAC, FakeUp, dhcp_frame, dhcp_msg, gtpu, wait_for};
use tokio::net::UdpSocket;
use vbng_access::dhcproto::v4::{DhcpOption, MessageType as DhcpType};
use vbng_access::dhcpv4;
use vbng_cp::aaa::LocalSubscribers;
use vbng_cp::config::{Config, UserPlaneConfig};
use vbng_cp::cups::UpState;
use vbng_cp::service::Running;
use vbng_dataplane::wire::{GtpuRepr, L2Header};

async fn start(up: &FakeUp, up_gtpu: &UdpSocket) -> Running {
    let mut cfg = Config::default();
    cfg.pfcp.listen = "127.0.0.1:0".parse().unwrap();
    cfg.pfcp.heartbeat_interval_s = 1;
    cfg.gtpu.listen = "127.0.0.1:0".parse().unwrap();
    cfg.api.listen = "127.0.0.1:0".parse().unwrap();
    cfg.user_planes = vec![UserPlaneConfig {
        name: "up0".into(),
        pfcp: up.addr,
        gtpu: Some(up_gtpu.local_addr().unwrap()),
    }];
    let running = vbng_cp::service::start(cfg, LocalSubscribers::default())
        .await
        .unwrap();
    let h = running.sessions.user_planes()[0].clone();
    wait_for("association", || {
        (h.status().state == UpState::Up).then_some(())
    })
    .await;
    running
}

/// DISCOVER + REQUEST through the redirect; returns the DHCP type of the
/// answer to the REQUEST and the offered address.
async fn dora(sock: &UdpSocket, cp: SocketAddr, xid: u32) -> (DhcpType, Ipv4Addr) {
    let mut buf = vec![0u8; 4096];
    let ask = |dhcp: Vec<u8>| {
        let d = gtpu(1, &dhcp_frame(CLIENT_MAC, Some(20), Some(200), &dhcp));
        async move { d }
    };
    let d = ask(dhcp_msg(DhcpType::Discover, CLIENT_MAC, xid, vec![])).await;
    sock.send_to(&d, cp).await.unwrap();
    let offer = recv_dhcp(sock, &mut buf).await;
    let ip = offer.yiaddr();
    let d = ask(dhcp_msg(
        DhcpType::Request,
        CLIENT_MAC,
        xid + 1,
        vec![
            DhcpOption::ServerIdentifier(Ipv4Addr::new(100, 64, 0, 1)),
            DhcpOption::RequestedIpAddress(ip),
        ],
    ))
    .await;
    sock.send_to(&d, cp).await.unwrap();
    let ack = recv_dhcp(sock, &mut buf).await;
    (ack.opts().msg_type().unwrap(), ip)
}

async fn recv_dhcp(sock: &UdpSocket, buf: &mut [u8]) -> vbng_access::dhcproto::v4::Message {
    let (n, _) = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(buf))
        .await
        .expect("reply within 10 s")
        .unwrap();
    let (_, frame) = GtpuRepr::parse_payload(&buf[..n]).unwrap();
    let (_, off) = L2Header::parse(frame).unwrap();
    dhcpv4::decode(&frame[off + 28..]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_establishment_removes_the_lease() {
    let up = FakeUp::start(Ipv4Addr::LOCALHOST).await;
    up.reject.store(true, Ordering::SeqCst);
    let up_gtpu = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let running = start(&up, &up_gtpu).await;
    let (kind, _ip) = dora(&up_gtpu, running.gtpu_addr, 100).await;
    assert_eq!(kind, DhcpType::Ack);
    wait_for("establishment failure counted", || {
        let text = vbng_cp::metrics::encode(&running.metrics.registry());
        text.contains("vbng_cp_session_establish_failures_total 1")
            .then_some(())
    })
    .await;
    assert!(running.sessions.snapshot().is_empty());
    // The lease is gone too: nothing stays half-programmed.
    assert_eq!(running.dhcp.lock().unwrap().leases().count(), 0);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_plane_restart_reprograms_sessions() {
    let up = FakeUp::start(Ipv4Addr::LOCALHOST).await;
    let up_gtpu = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let running = start(&up, &up_gtpu).await;
    let (kind, ip) = dora(&up_gtpu, running.gtpu_addr, 500).await;
    assert_eq!(kind, DhcpType::Ack);
    let first = wait_for("active session", || {
        running
            .sessions
            .snapshot()
            .into_iter()
            .find(|s| s.state == "active")
    })
    .await;
    assert_eq!(
        (first.ipv4, first.svlan, first.cvlan, first.port),
        (ip, 20, 200, 1)
    );
    assert_eq!(first.up_seid, Some(0x1001));
    // The UP restarts: its next heartbeat answer carries a new recovery
    // time stamp. The CP re-associates and establishes the session again.
    up.recovery.store(3_900_000_500, Ordering::SeqCst);
    let again = wait_for("re-established session", || {
        running
            .sessions
            .snapshot()
            .into_iter()
            .find(|s| s.state == "active" && s.up_seid == Some(0x1002))
    })
    .await;
    assert_eq!(again.id, first.id);
    assert_eq!(again.ipv4, ip);
    running.shutdown().await.unwrap();
}
