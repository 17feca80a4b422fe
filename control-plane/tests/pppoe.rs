//! PPPoE subscribers end to end in the control plane, against an in-test
//! user plane: a scripted client (the frames pppd sends) goes through
//! discovery, LCP, CHAP or PAP against the subscriber file's `[[users]]`,
//! and IPCP; the user plane then receives the PPPoE session (BBF PPPoE
//! Session ID in the PDI, the user's ACL on both PDRs) and the session is
//! listed with its PPPoE id. A PADT from the client removes it from the
//! user plane; a REST-side end sends LCP Terminate and PADT; a wrong
//! password gets no session.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::pppoe_client::PppoeClient;
use common::{FakeUp, start_cp, wait_for};
use tokio::net::UdpSocket;
use vbng_access::ppp::proto;
use vbng_access::pppoe::wire::{self as ow, Code};
use vbng_cp::aaa::LocalSubscribers;
use vbng_cp::config::Config;
use vbng_cp::service::Running;
use vbng_cups::pfcp::Message;
use vbng_dataplane::wire::EtherType;

const MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x77];
const USERS: &str = "[default]\npolicy = \"deny\"\n\n[[users]]\nname = \"alice\"\npassword = \"alice-secret\"\nrate = { up_kbps = 3000, down_kbps = 9000 }\nfilter = \"block-smtp\"\n";

async fn setup() -> (FakeUp, PppoeClient, Running) {
    let up = FakeUp::start(Ipv4Addr::LOCALHOST).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let subs = LocalSubscribers::parse("subscribers.toml", USERS).unwrap();
    let running = start_cp(&up, &sock, subs, Config::default()).await;
    let cp = running.gtpu_addr;
    (
        up,
        PppoeClient {
            sock,
            cp,
            mac: MAC,
            session_id: 0,
        },
        running,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pppoe_session_with_chap_is_programmed_and_ends_on_padt() {
    let (up, mut client, running) = setup().await;
    client.discover().await;
    let (ip, dns) = client
        .negotiate(b"alice", b"alice-secret")
        .await
        .expect("CHAP accepted and IPCP done");
    assert_eq!(ip.octets()[..3], [100, 64, 0]);
    assert_eq!(dns, vec![Ipv4Addr::new(192, 0, 2, 53)]);
    let s = wait_for("active PPPoE session", || {
        running
            .sessions
            .snapshot()
            .into_iter()
            .find(|s| s.state == "active")
    })
    .await;
    assert_eq!(s.pppoe_session_id, Some(client.session_id));
    assert_eq!(s.ipv4, ip);
    assert_eq!(s.cvlan, 100);
    assert_eq!(s.aaa.as_ref().unwrap().username, "alice");
    let rate = s.rate.unwrap();
    assert_eq!((rate.up_kbps, rate.down_kbps), (3000, 9000));
    let est = up
        .messages()
        .into_iter()
        .find_map(|(_, _, m)| match m {
            Message::SessionEstablishmentRequest(r) => Some(r),
            _ => None,
        })
        .expect("a Session Establishment Request");
    let uplink = est
        .create_pdrs
        .iter()
        .find(|p| p.pdi.pppoe_session_id.is_some())
        .expect("an uplink PDR matching the PPPoE session");
    assert_eq!(uplink.pdi.pppoe_session_id, Some(client.session_id));
    // The user's `filter` is its Filter-Id, activated on both PDRs.
    assert_eq!(
        s.aaa.as_ref().unwrap().filter_id.as_deref(),
        Some("block-smtp")
    );
    for pdr in &est.create_pdrs {
        assert_eq!(pdr.activate_predefined_rules, ["block-smtp"]);
    }

    // The client hangs up: PADT removes the session from the user plane.
    client
        .send(
            EtherType::PppoeDiscovery,
            &ow::emit(Code::Padt, client.session_id, &[]),
        )
        .await;
    wait_for("session gone", || {
        running.sessions.snapshot().is_empty().then_some(())
    })
    .await;
    wait_for("deletion on the user plane", || {
        up.messages()
            .iter()
            .any(|(_, _, m)| matches!(m, Message::SessionDeletionRequest(_)))
            .then_some(())
    })
    .await;
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_side_end_sends_terminate_and_padt_and_wrong_password_gets_nothing() {
    let (up, mut client, running) = setup().await;
    client.discover().await;
    client
        .negotiate(b"alice", b"alice-secret")
        .await
        .expect("session up");
    let id = wait_for("active PPPoE session", || {
        running
            .sessions
            .snapshot()
            .into_iter()
            .find(|s| s.state == "active")
            .map(|s| s.id)
    })
    .await;
    // REST-side end: LCP Terminate-Request, then PADT.
    running.sessions.delete(id).await.unwrap();
    let mut saw_term = false;
    let mut saw_padt = false;
    while let Some((et, h, payload)) = client.recv(Duration::from_secs(3)).await {
        if et == EtherType::PppoeDiscovery && h.code == Code::Padt {
            saw_padt = true;
            break;
        }
        if u16::from_be_bytes([payload[0], payload[1]]) == proto::LCP && payload[2] == 5 {
            saw_term = true;
        }
    }
    assert!(
        saw_term && saw_padt,
        "terminate {saw_term}, PADT {saw_padt}"
    );
    assert!(running.sessions.snapshot().is_empty());

    // A wrong password: CHAP Failure, no second session on the user plane.
    let before = up.establishment_requests();
    client.discover().await;
    assert!(client.negotiate(b"alice", b"wrong").await.is_none());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(up.establishment_requests(), before);
    assert!(running.sessions.snapshot().is_empty());
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn padi_storm_is_limited_and_the_established_session_keeps_answering() {
    let (up, mut client, running) = setup().await;
    client.discover().await;
    client
        .negotiate(b"alice", b"alice-secret")
        .await
        .expect("session up");
    wait_for("active PPPoE session", || {
        running
            .sessions
            .snapshot()
            .into_iter()
            .find(|s| s.state == "active")
    })
    .await;
    // 5,000 PADIs from as many MACs on the same line, as fast as they go.
    let padi = ow::emit(
        Code::Padi,
        0,
        &ow::emit_tags(&[ow::Tag::ServiceName(Vec::new())]),
    );
    let sent_before = running.metrics.redirect_out.get();
    let storm = std::time::Instant::now();
    for n in 0..5_000u32 {
        let [_, a, b, c] = n.to_be_bytes();
        client
            .send_from([2, 0x55, 0, a, b, c], EtherType::PppoeDiscovery, &padi)
            .await;
    }
    let storm_s = storm.elapsed().as_secs_f64();
    // The established session still answers its LCP echo (re-sent every
    // 300 ms, as the storm may fill the socket buffers on the way).
    let echo = vbng_access::ppp::wire::emit_packet(9, 77, &0x1234_5678u32.to_be_bytes());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut next_echo = tokio::time::Instant::now();
    loop {
        let now = tokio::time::Instant::now();
        assert!(now < deadline, "no Echo-Reply within 5 s of the storm");
        if now >= next_echo {
            client.send_ppp(proto::LCP, &echo).await;
            next_echo = now + Duration::from_millis(300);
        }
        let Some((et, h, payload)) = client.recv(Duration::from_millis(300)).await else {
            continue;
        };
        if et == EtherType::PppoeDiscovery {
            panic!("a discovery frame to the established client: {h:?}");
        }
        if u16::from_be_bytes([payload[0], payload[1]]) == proto::LCP
            && payload[2] == 10
            && payload[3] == 77
        {
            break;
        }
    }
    let limited = running
        .metrics
        .pppoe_dropped
        .get_or_create(&vbng_cp::metrics::ReasonLabels {
            reason: "rate_limited",
        })
        .get();
    // Everything the control plane sent since is PADOs (and the echo
    // replies): at most the port's 500 per second plus its burst.
    let pados = running.metrics.redirect_out.get() - sent_before;
    let allowed = (500.0 * (storm_s + 1.5)) as u64 + 20;
    assert!(
        limited >= 1_000 && pados <= allowed,
        "{limited} PADIs rate limited, {pados} PADOs in a {storm_s:.2} s storm (at most {allowed})"
    );
    assert!(
        !up.messages()
            .iter()
            .any(|(_, _, m)| matches!(m, Message::SessionDeletionRequest(_))),
        "the storm ended the established session"
    );
    assert_eq!(running.sessions.snapshot().len(), 1);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_whose_acl_the_user_plane_lacks_is_terminated() {
    let (up, mut client, running) = setup().await;
    up.know_acls(&["web-only"]);
    client.discover().await;
    // IPCP opens, then the user plane refuses the session (cause 73): PPP
    // is terminated and a PADT sent, nothing is left behind.
    // (The refusal may already end the negotiation.)
    let _ = client.negotiate(b"alice", b"alice-secret").await;
    let mut saw_padt = false;
    while let Some((et, h, _)) = client.recv(Duration::from_secs(3)).await {
        if et == EtherType::PppoeDiscovery && h.code == Code::Padt {
            saw_padt = true;
            break;
        }
    }
    assert!(saw_padt, "no PADT after the refused establishment");
    assert_eq!(up.establishment_requests(), 1);
    let metrics = vbng_cp::metrics::encode(&running.metrics.registry());
    assert!(
        metrics.contains("vbng_cp_session_establish_failures_total 1"),
        "{metrics}"
    );
    assert!(running.sessions.snapshot().is_empty());
    assert!(
        !up.messages()
            .iter()
            .any(|(_, _, m)| matches!(m, Message::SessionDeletionRequest(_)))
    );
    running.shutdown().await.unwrap();
}
