//! Lease persistence across a control plane restart: with a lease file, a
//! new `vbng-cp` restores the lease, re-establishes its session on the user
//! plane without waiting for the client, and ACKs the client's renewal
//! with the same address.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use common::{CLIENT_MAC, FakeUp, dhcp_frame, dhcp_msg, gtpu, recv_dhcp, start_cp, wait_for};
use tokio::net::UdpSocket;
use vbng_access::dhcproto::v4::{DhcpOption, MessageType as DhcpType};
use vbng_cp::aaa::LocalSubscribers;
use vbng_cp::config::Config;
use vbng_cp::lab::ScratchDir;
use vbng_cp::service::Running;
use vbng_cups::pfcp::Message;

fn client(dhcp: Vec<u8>) -> Vec<u8> {
    gtpu(1, &dhcp_frame(CLIENT_MAC, Some(20), Some(200), &dhcp))
}

fn request(ip: Ipv4Addr, xid: u32) -> Vec<u8> {
    client(dhcp_msg(
        DhcpType::Request,
        CLIENT_MAC,
        xid,
        vec![
            DhcpOption::ServerIdentifier(Ipv4Addr::new(100, 64, 0, 1)),
            DhcpOption::RequestedIpAddress(ip),
        ],
    ))
}

async fn start(up: &FakeUp, up_gtpu: &UdpSocket, leases: &Path) -> Running {
    let mut cfg = Config::default();
    cfg.dhcp.lease_file = Some(leases.to_path_buf());
    start_cp(up, up_gtpu, LocalSubscribers::default(), cfg).await
}

/// Establishment requests the fake UP received for `ip`.
fn establishments_for(up: &FakeUp, ip: Ipv4Addr) -> usize {
    up.messages()
        .iter()
        .filter(|(_, _, m)| match m {
            Message::SessionEstablishmentRequest(r) => format!("{r:?}").contains(&ip.to_string()),
            _ => false,
        })
        .count()
}

async fn bind(sock: &UdpSocket, cp: SocketAddr) -> Ipv4Addr {
    sock.send_to(
        &client(dhcp_msg(DhcpType::Discover, CLIENT_MAC, 1, vec![])),
        cp,
    )
    .await
    .unwrap();
    let offer = recv_dhcp(sock).await;
    assert_eq!(offer.opts().msg_type(), Some(DhcpType::Offer));
    let ip = offer.yiaddr();
    sock.send_to(&request(ip, 2), cp).await.unwrap();
    let ack = recv_dhcp(sock).await;
    assert_eq!(ack.opts().msg_type(), Some(DhcpType::Ack));
    assert_eq!(ack.yiaddr(), ip);
    ip
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_and_sessions_survive_a_restart() {
    let dir = ScratchDir::new("lease-restore");
    let leases = dir.join("leases.jsonl");
    let up = FakeUp::start(Ipv4Addr::LOCALHOST).await;
    let up_gtpu = UdpSocket::bind("127.0.0.1:0").await.unwrap();

    let first = start(&up, &up_gtpu, &leases).await;
    let ip = bind(&up_gtpu, first.gtpu_addr).await;
    wait_for("session active", || {
        let s = first.sessions.snapshot();
        (s.len() == 1 && s[0].state == "active").then_some(())
    })
    .await;
    // The ACK left, so the lease is already on disk.
    let text = std::fs::read_to_string(&leases).unwrap();
    assert!(text.contains(&format!("\"ipv4\":\"{ip}\"")), "{text}");
    first.shutdown().await.unwrap();
    assert_eq!(establishments_for(&up, ip), 1);

    // A new control plane, same lease file: the session is back, active,
    // with the same address, re-established without the client.
    let second = start(&up, &up_gtpu, &leases).await;
    let view = wait_for("restored session active", || {
        let s = second.sessions.snapshot();
        (s.len() == 1 && s[0].state == "active").then(|| s[0].clone())
    })
    .await;
    assert_eq!(view.ipv4, ip);
    assert_eq!(
        establishments_for(&up, ip),
        2,
        "the restored session was re-established on the user plane"
    );
    assert_eq!(second.dhcp.lock().unwrap().leases().count(), 1);

    // The client renews: ACKed with the same address, no new session.
    up_gtpu
        .send_to(&request(ip, 3), second.gtpu_addr)
        .await
        .unwrap();
    let ack = recv_dhcp(&up_gtpu).await;
    assert_eq!(ack.opts().msg_type(), Some(DhcpType::Ack));
    assert_eq!(ack.yiaddr(), ip);
    assert_eq!(second.sessions.snapshot().len(), 1);
    assert_eq!(establishments_for(&up, ip), 2);

    // An administrative deletion is journalled: a third start has nothing.
    let id = second.sessions.snapshot()[0].id;
    second.sessions.delete(id).await.unwrap();
    second.shutdown().await.unwrap();
    let third = start(&up, &up_gtpu, &leases).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(third.sessions.snapshot().is_empty());
    assert_eq!(third.dhcp.lock().unwrap().leases().count(), 0);
    assert_eq!(establishments_for(&up, ip), 2);
    third.shutdown().await.unwrap();
}
