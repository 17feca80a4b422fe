//! Session registry behaviour against an in-test user plane: a refused or
//! unanswered establishment removes the lease and the client never gets
//! its DHCPACK (never half-programmed), and a user plane restart
//! re-programs the sessions it lost.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{CLIENT_MAC, FakeUp, dhcp_frame, dhcp_msg, gtpu, recv_dhcp, start_cp, wait_for};
use tokio::net::UdpSocket;
use vbng_access::dhcproto::v4::{DhcpOption, MessageType as DhcpType};
use vbng_cp::aaa::LocalSubscribers;
use vbng_cp::config::Config;
use vbng_cp::service::Running;

async fn start(up: &FakeUp, up_gtpu: &UdpSocket) -> Running {
    start_with(up, up_gtpu, Config::default()).await
}

async fn start_with(up: &FakeUp, up_gtpu: &UdpSocket, cfg: Config) -> Running {
    start_cp(up, up_gtpu, LocalSubscribers::default(), cfg).await
}

/// DISCOVER + REQUEST through the redirect; returns the DHCP type of the
/// answer to the REQUEST and the offered address.
async fn dora(sock: &UdpSocket, cp: SocketAddr, xid: u32) -> (DhcpType, Ipv4Addr) {
    let ask = |dhcp: Vec<u8>| {
        let d = gtpu(1, &dhcp_frame(CLIENT_MAC, Some(20), Some(200), &dhcp));
        async move { d }
    };
    let d = ask(dhcp_msg(DhcpType::Discover, CLIENT_MAC, xid, vec![])).await;
    sock.send_to(&d, cp).await.unwrap();
    let offer = recv_dhcp(sock).await;
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
    let ack = recv_dhcp(sock).await;
    (ack.opts().msg_type().unwrap(), ip)
}

fn request(ip: Ipv4Addr, xid: u32) -> Vec<u8> {
    let dhcp = dhcp_msg(
        DhcpType::Request,
        CLIENT_MAC,
        xid,
        vec![
            DhcpOption::ServerIdentifier(Ipv4Addr::new(100, 64, 0, 1)),
            DhcpOption::RequestedIpAddress(ip),
        ],
    );
    gtpu(1, &dhcp_frame(CLIENT_MAC, Some(20), Some(200), &dhcp))
}

/// DISCOVER through the redirect; returns the offered address.
async fn discover(sock: &UdpSocket, cp: SocketAddr, xid: u32) -> Ipv4Addr {
    let dhcp = dhcp_msg(DhcpType::Discover, CLIENT_MAC, xid, vec![]);
    let d = gtpu(1, &dhcp_frame(CLIENT_MAC, Some(20), Some(200), &dhcp));
    sock.send_to(&d, cp).await.unwrap();
    let offer = recv_dhcp(sock).await;
    assert_eq!(offer.opts().msg_type(), Some(DhcpType::Offer));
    offer.yiaddr()
}

fn metrics_text(running: &Running) -> String {
    vbng_cp::metrics::encode(&running.metrics.registry())
}

/// The client REQUESTed `ip` (maybe more than once) and the user plane
/// does not accept: the failure is counted, the client hears nothing, the
/// lease is gone, and its next REQUEST is NAKed.
async fn assert_ack_withheld(running: &Running, sock: &UdpSocket, ip: Ipv4Addr) {
    wait_for("establishment failure counted", || {
        metrics_text(running)
            .contains("vbng_cp_session_establish_failures_total 1")
            .then_some(())
    })
    .await;
    let mut buf = [0u8; 4096];
    let heard = tokio::time::timeout(Duration::from_millis(500), sock.recv_from(&mut buf)).await;
    assert!(
        heard.is_err(),
        "the client must hear nothing (no DHCPACK) when establishment fails"
    );
    assert!(running.sessions.snapshot().is_empty());
    // The lease is gone too: nothing stays half-programmed.
    assert_eq!(running.dhcp.lock().unwrap().leases().count(), 0);
    // Only the OFFER went out.
    assert!(
        metrics_text(running).contains("vbng_cp_redirect_frames_out_total 1\n"),
        "{}",
        metrics_text(running)
    );
    // The client, still without an answer, asks again: its offer is gone,
    // so it is told to start over.
    sock.send_to(&request(ip, 900), running.gtpu_addr)
        .await
        .unwrap();
    let nak = recv_dhcp(sock).await;
    assert_eq!(nak.opts().msg_type(), Some(DhcpType::Nak));
    assert_eq!(running.dhcp.lock().unwrap().leases().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_establishment_withholds_the_ack_and_removes_the_lease() {
    let up = FakeUp::start(Ipv4Addr::LOCALHOST).await;
    up.reject.store(true, Ordering::SeqCst);
    let up_gtpu = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let running = start(&up, &up_gtpu).await;
    let ip = discover(&up_gtpu, running.gtpu_addr, 100).await;
    up_gtpu
        .send_to(&request(ip, 101), running.gtpu_addr)
        .await
        .unwrap();
    assert_ack_withheld(&running, &up_gtpu, ip).await;
    assert_eq!(up.establishment_requests(), 1);
    // Once the user plane accepts again, a fresh DORA succeeds.
    up.reject.store(false, Ordering::SeqCst);
    let (kind, _) = dora(&up_gtpu, running.gtpu_addr, 200).await;
    assert_eq!(kind, DhcpType::Ack);
    assert_eq!(running.sessions.snapshot()[0].state, "active");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_establishment_withholds_every_ack() {
    let up = FakeUp::start(Ipv4Addr::LOCALHOST).await;
    up.ignore_establish.store(true, Ordering::SeqCst);
    let up_gtpu = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = Config::default();
    cfg.pfcp.t1_ms = 300;
    cfg.pfcp.n1 = 2;
    let running = start_with(&up, &up_gtpu, cfg).await;
    let ip = discover(&up_gtpu, running.gtpu_addr, 300).await;
    up_gtpu
        .send_to(&request(ip, 301), running.gtpu_addr)
        .await
        .unwrap();
    // The client retransmits its REQUEST while the establishment is in
    // flight: that ACK (a renewal of a session not yet programmed) is
    // held as well, and dropped with the first.
    wait_for("establishment sent", || {
        (up.establishment_requests() > 0).then_some(())
    })
    .await;
    up_gtpu
        .send_to(&request(ip, 302), running.gtpu_addr)
        .await
        .unwrap();
    assert_ack_withheld(&running, &up_gtpu, ip).await;
    assert!(
        metrics_text(&running).contains("vbng_cp_lease_events_total{event=\"renewed\"} 1"),
        "the retransmitted REQUEST renewed the lease while establishing"
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_wait_for_the_accepted_establishment() {
    let up = FakeUp::start(Ipv4Addr::LOCALHOST).await;
    up.establish_delay_ms.store(400, Ordering::SeqCst);
    let up_gtpu = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let running = start(&up, &up_gtpu).await;
    let ip = discover(&up_gtpu, running.gtpu_addr, 400).await;
    up_gtpu
        .send_to(&request(ip, 401), running.gtpu_addr)
        .await
        .unwrap();
    wait_for("establishment sent", || {
        (up.establishment_requests() > 0).then_some(())
    })
    .await;
    // A retransmission while the user plane deliberates is held too.
    up_gtpu
        .send_to(&request(ip, 402), running.gtpu_addr)
        .await
        .unwrap();
    let mut xids = Vec::new();
    for _ in 0..2 {
        let ack = recv_dhcp(&up_gtpu).await;
        let at = std::time::Instant::now();
        assert_eq!(ack.opts().msg_type(), Some(DhcpType::Ack));
        let answered = up.establish_answered.lock().unwrap().clone();
        assert!(
            answered.first().is_some_and(|t| *t <= at),
            "a DHCPACK arrived before the user plane accepted the session"
        );
        xids.push(ack.xid());
    }
    xids.sort_unstable();
    assert_eq!(xids, vec![401, 402]);
    assert_eq!(
        up.establishment_requests(),
        1,
        "one session, one establishment"
    );
    let s = &running.sessions.snapshot()[0];
    assert_eq!((s.state.as_str(), s.ipv4), ("active", ip));
    // A renewal of the active session is answered at once.
    up.establish_delay_ms.store(5_000, Ordering::SeqCst);
    let t0 = std::time::Instant::now();
    up_gtpu
        .send_to(&request(ip, 403), running.gtpu_addr)
        .await
        .unwrap();
    let ack = recv_dhcp(&up_gtpu).await;
    assert_eq!(
        (ack.opts().msg_type(), ack.xid()),
        (Some(DhcpType::Ack), 403)
    );
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(up.establishment_requests(), 1);
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
