//! PPPoE subscribers end to end in the control plane, against an in-test
//! user plane: a scripted client (the frames pppd sends) goes through
//! discovery, LCP, CHAP or PAP against the subscriber file's `[[users]]`,
//! and IPCP; the user plane then receives the PPPoE session (BBF PPPoE
//! Session ID in the PDI, the user's ACL on both PDRs) and the session is
//! listed with its PPPoE id. A PADT from the client removes it from the
//! user plane; a REST-side end sends LCP Terminate and PADT; a wrong
//! password gets no session. With a lease file, an established session
//! survives a restart of the control plane: restored, adopted by the user
//! plane, and still answering LCP with its magic number.

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
use vbng_cp::lab::ScratchDir;
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

/// Sends an LCP Echo-Request with identifier `id` and returns the magic
/// number of the Echo-Reply; the control plane's own Echo-Requests that
/// arrive meanwhile are answered, and their magic numbers returned too.
async fn echo_magic(client: &PppoeClient, id: u8) -> (u32, Vec<u32>) {
    let echo = vbng_access::ppp::wire::emit_packet(9, id, &0x1234_5678u32.to_be_bytes());
    client.send_ppp(proto::LCP, &echo).await;
    let mut theirs = Vec::new();
    loop {
        let (et, h, payload) = client
            .recv(Duration::from_secs(3))
            .await
            .expect("an Echo-Reply");
        assert_eq!(et, EtherType::PppoeSession, "{h:?}");
        if u16::from_be_bytes([payload[0], payload[1]]) != proto::LCP {
            continue;
        }
        let magic = u32::from_be_bytes(payload[6..10].try_into().unwrap());
        match (payload[2], payload[3]) {
            (10, i) if i == id => return (magic, theirs),
            (9, i) => {
                theirs.push(magic);
                let mut reply = vec![10, i, 0, 8];
                reply.extend_from_slice(&0x1234_5678u32.to_be_bytes());
                client.send_ppp(proto::LCP, &reply).await;
            }
            _ => {}
        }
    }
}

/// The uplink PDR's PDI of every Session Establishment Request so far.
fn uplink_pdis(up: &FakeUp) -> Vec<vbng_cups::pfcp::ie::pdi::Pdi> {
    up.messages()
        .into_iter()
        .filter_map(|(_, _, m)| match m {
            Message::SessionEstablishmentRequest(r) => r
                .create_pdrs
                .into_iter()
                .find(|p| p.pdi.pppoe_session_id.is_some())
                .map(|p| p.pdi),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn established_session_survives_a_control_plane_restart() {
    let dir = ScratchDir::new("pppoe-restart");
    let leases = dir.join("leases.jsonl");
    let mut cfg = Config::default();
    cfg.dhcp.lease_file = Some(leases.clone());
    // Keepalives every second; enough failures allowed that the restart
    // (when nobody answers) cannot end the session.
    cfg.pppoe.echo_interval_s = 1;
    cfg.pppoe.echo_failures = 30;
    let subs = || LocalSubscribers::parse("subscribers.toml", USERS).unwrap();
    let up = FakeUp::start(Ipv4Addr::LOCALHOST).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();

    let first = start_cp(&up, &sock, subs(), cfg.clone()).await;
    let mut client = PppoeClient {
        sock,
        cp: first.gtpu_addr,
        mac: MAC,
        session_id: 0,
    };
    client.discover().await;
    let (ip, _) = client
        .negotiate(b"alice", b"alice-secret")
        .await
        .expect("session up");
    let before = wait_for("active PPPoE session", || {
        first
            .sessions
            .snapshot()
            .into_iter()
            .find(|s| s.state == "active")
    })
    .await;
    let (magic, _) = echo_magic(&client, 1).await;
    wait_for("the session in the lease file", || {
        let text = std::fs::read_to_string(&leases).unwrap_or_default();
        text.contains("pppoe_put").then_some(())
    })
    .await;
    first.shutdown().await.unwrap();

    // A new control plane, same lease file.
    let second = start_cp(&up, &client.sock, subs(), cfg.clone()).await;
    client.cp = second.gtpu_addr;
    let after = wait_for("restored PPPoE session active", || {
        second
            .sessions
            .snapshot()
            .into_iter()
            .find(|s| s.state == "active")
    })
    .await;
    assert_eq!(after.pppoe_session_id, Some(client.session_id));
    assert_eq!(after.ipv4, ip);
    assert_eq!((after.port, after.cvlan, &after.mac), (1, 100, &before.mac));
    assert_eq!(after.aaa.as_ref().unwrap().username, "alice");
    assert_eq!(after.rate, before.rate);
    assert_eq!(
        after.started, before.started,
        "the same session, started then"
    );
    // The user plane got a second establishment for the same access key,
    // PPPoE session id and address: it adopts its session.
    let pdis = uplink_pdis(&up);
    assert_eq!(pdis.len(), 2, "{pdis:?}");
    assert_eq!(pdis[0], pdis[1]);
    assert_eq!(pdis[1].pppoe_session_id, Some(client.session_id));
    assert_eq!(pdis[1].ue_ip_address.as_ref().unwrap().ipv4, Some(ip));

    // LCP goes on with the magic number of before the restart, both ways.
    let (after_magic, _) = echo_magic(&client, 2).await;
    assert_eq!(after_magic, magic, "Echo-Reply with the old magic number");
    let mut theirs = Vec::new();
    for id in 3..20 {
        let (_, seen) = echo_magic(&client, id).await;
        theirs.extend(seen);
        if !theirs.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(!theirs.is_empty(), "no Echo-Request from the restarted CP");
    assert!(
        theirs.iter().all(|&m| m == magic),
        "{theirs:x?} vs {magic:x}"
    );

    // The client hangs up: the session and its user plane session go, and
    // the lease file forgets it.
    client
        .send(
            EtherType::PppoeDiscovery,
            &ow::emit(Code::Padt, client.session_id, &[]),
        )
        .await;
    wait_for("session gone", || {
        second.sessions.snapshot().is_empty().then_some(())
    })
    .await;
    wait_for("deletion on the user plane", || {
        up.messages()
            .iter()
            .any(|(_, _, m)| matches!(m, Message::SessionDeletionRequest(_)))
            .then_some(())
    })
    .await;
    wait_for("the session out of the lease file", || {
        let state = vbng_cp::session::journal::replay(&leases).unwrap();
        state.pppoe.is_empty().then_some(())
    })
    .await;
    second.shutdown().await.unwrap();

    // A third start has nothing to restore.
    let third = start_cp(&up, &client.sock, subs(), cfg).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(third.sessions.snapshot().is_empty());
    assert_eq!(uplink_pdis(&up).len(), 2);
    third.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incomplete_journalled_session_is_dropped_with_a_padt() {
    let dir = ScratchDir::new("pppoe-incomplete");
    let leases = dir.join("leases.jsonl");
    let up = FakeUp::start(Ipv4Addr::LOCALHOST).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // Written by a control plane that knew no more than discovery.
    let record = format!(
        r#"{{"op":"pppoe_put","key":{{"up":0,"port":1,"svlan":0,"cvlan":100,"mac":{MAC:?},"session_id":9}},"up_gtpu":"{}","host_uniq":[104,117],"started_unix":5}}"#,
        sock.local_addr().unwrap()
    );
    std::fs::write(&leases, format!("{record}\n")).unwrap();
    let mut cfg = Config::default();
    cfg.dhcp.lease_file = Some(leases.clone());
    let subs = LocalSubscribers::parse("subscribers.toml", USERS).unwrap();
    let running = start_cp(&up, &sock, subs, cfg).await;
    let client = PppoeClient {
        sock,
        cp: running.gtpu_addr,
        mac: MAC,
        session_id: 9,
    };
    let (et, h, payload) = client.recv(Duration::from_secs(3)).await.expect("a PADT");
    assert_eq!(
        (et, h.code, h.session_id),
        (EtherType::PppoeDiscovery, Code::Padt, 9)
    );
    assert_eq!(
        ow::parse_tags(&payload).unwrap(),
        vec![ow::Tag::HostUniq(b"hu".to_vec())]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(running.sessions.snapshot().is_empty());
    assert_eq!(up.establishment_requests(), 0, "nothing half-programmed");
    wait_for("the record out of the lease file", || {
        let state = vbng_cp::session::journal::replay(&leases).unwrap();
        state.pppoe.is_empty().then_some(())
    })
    .await;
    running.shutdown().await.unwrap();
}
