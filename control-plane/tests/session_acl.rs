//! Per-subscriber user plane ACLs against an in-test user plane that knows
//! a fixed set of ACL names: the subscriber file's `filter` is activated on
//! both PDRs at establishment, `PATCH /sessions/{id}` replaces it live with
//! one Update PDR per PDR, and a name the user plane does not know is
//! refused (PFCP cause 73) at establishment (the session fails cleanly) and
//! on a live change (422, the old ACL kept), also after a user plane
//! restart that dropped the ACL.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{CLIENT_MAC, FakeUp, dhcp_frame, dhcp_msg, gtpu, recv_dhcp, start_cp, wait_for};
use tokio::net::UdpSocket;
use vbng_access::dhcproto::v4::{DhcpOption, MessageType as DhcpType};
use vbng_cp::aaa::LocalSubscribers;
use vbng_cp::api::SessionView;
use vbng_cp::config::Config;
use vbng_cp::service::Running;
use vbng_cups::pfcp::ipoe::acl_change_request;
use vbng_cups::pfcp::{Message, SessionEstablishmentRequest};

/// The ACLs the in-test user plane has.
const KNOWN_ACLS: &[&str] = &["web-only", "block-smtp"];

/// The test client gets ACL `filter`.
fn subscribers(filter: &str) -> LocalSubscribers {
    let text = format!(
        "[[subscribers]]\nmac = \"02:00:00:00:00:42\"\nfilter = \"{filter}\"\n\
         rate = {{ up_kbps = 10000, down_kbps = 50000 }}\n"
    );
    LocalSubscribers::parse("subscribers.toml", &text).unwrap()
}

async fn start(up: &FakeUp, up_gtpu: &UdpSocket, filter: &str) -> Running {
    up.know_acls(KNOWN_ACLS);
    start_cp(up, up_gtpu, subscribers(filter), Config::default()).await
}

/// DISCOVER, OFFER, REQUEST through the redirect; returns the offered
/// address (the answer to the REQUEST is left to the caller).
async fn discover_and_request(sock: &UdpSocket, cp: SocketAddr, xid: u32) -> Ipv4Addr {
    let send = |dhcp: Vec<u8>| {
        let d = gtpu(1, &dhcp_frame(CLIENT_MAC, Some(20), Some(200), &dhcp));
        async move { sock.send_to(&d, cp).await.unwrap() }
    };
    send(dhcp_msg(DhcpType::Discover, CLIENT_MAC, xid, vec![])).await;
    let offer = recv_dhcp(sock).await;
    assert_eq!(offer.opts().msg_type(), Some(DhcpType::Offer));
    let ip = offer.yiaddr();
    send(dhcp_msg(
        DhcpType::Request,
        CLIENT_MAC,
        xid + 1,
        vec![
            DhcpOption::ServerIdentifier(Ipv4Addr::new(100, 64, 0, 1)),
            DhcpOption::RequestedIpAddress(ip),
        ],
    ))
    .await;
    ip
}

/// A bound, active session; returns its view.
async fn active_session(running: &Running, sock: &UdpSocket) -> SessionView {
    discover_and_request(sock, running.gtpu_addr, 100).await;
    let ack = recv_dhcp(sock).await;
    assert_eq!(ack.opts().msg_type(), Some(DhcpType::Ack));
    wait_for("active session", || {
        running
            .sessions
            .snapshot()
            .into_iter()
            .find(|s| s.state == "active")
    })
    .await
}

/// The Session Establishment Requests the user plane received.
fn establishments(up: &FakeUp) -> Vec<SessionEstablishmentRequest> {
    up.messages()
        .into_iter()
        .filter_map(|(_, _, m)| match m {
            Message::SessionEstablishmentRequest(r) => Some(r),
            _ => None,
        })
        .collect()
}

/// The ACL names each PDR of `req` activates.
fn activated(req: &SessionEstablishmentRequest) -> Vec<Vec<String>> {
    req.create_pdrs
        .iter()
        .map(|p| p.activate_predefined_rules.clone())
        .collect()
}

/// One PATCH of session `id`; returns the status and the JSON body.
async fn patch(running: &Running, id: u64, body: &'static str) -> (u16, serde_json::Value) {
    let url = format!("http://{}/sessions/{id}", running.api_addr);
    tokio::task::spawn_blocking(move || {
        let mut resp = ureq::patch(&url)
            .config()
            .http_status_as_error(false)
            .build()
            .content_type("application/json")
            .send(body)
            .unwrap_or_else(|e| panic!("PATCH {url}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        (status, json)
    })
    .await
    .unwrap()
}

/// The ACL name a session view (JSON) shows.
fn filter_of(view: &serde_json::Value) -> Option<&str> {
    view["aaa"]["filter_id"].as_str()
}

fn metrics_text(running: &Running) -> String {
    vbng_cp::metrics::encode(&running.metrics.registry())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscriber_filter_is_programmed_and_replaced_live() {
    let up = FakeUp::start(Ipv4Addr::LOCALHOST).await;
    let up_gtpu = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let running = start(&up, &up_gtpu, "web-only").await;
    let session = active_session(&running, &up_gtpu).await;
    let (id, up_seid) = (session.id, session.up_seid);
    assert_eq!(session.aaa.unwrap().filter_id.as_deref(), Some("web-only"));
    // Both PDRs activate the subscriber file's ACL.
    let est = establishments(&up);
    assert_eq!(est.len(), 1);
    assert_eq!(
        activated(&est[0]),
        vec![vec!["web-only".to_string()], vec!["web-only".to_string()]]
    );

    // Another ACL: one modification with an Update PDR per PDR, old name
    // off, new one on.
    let (code, view) = patch(&running, id, r#"{"filter_id": "block-smtp"}"#).await;
    assert_eq!(code, 200, "{view}");
    assert_eq!(filter_of(&view), Some("block-smtp"));
    assert_eq!(
        up.modification_requests(),
        vec![(
            up_seid,
            acl_change_request(Some("web-only"), Some("block-smtp"))
        )]
    );

    // The same name again: nothing to send.
    let (code, view) = patch(&running, id, r#"{"filter_id": "block-smtp"}"#).await;
    assert_eq!(code, 200, "{view}");
    assert_eq!(up.modification_requests().len(), 1);

    // A name the user plane does not know: refused with cause 73, 422,
    // the session keeps its ACL.
    let (code, body) = patch(&running, id, r#"{"filter_id": "no-such-acl"}"#).await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["pfcp_cause"], 73, "{body}");
    assert_eq!(
        body["pfcp_cause_name"], "RuleCreationModificationFailure",
        "{body}"
    );
    assert_eq!(up.modification_requests().len(), 2);
    let now = running.sessions.view(id).unwrap();
    assert_eq!(now.aaa.unwrap().filter_id.as_deref(), Some("block-smtp"));

    // Another refusal is a gateway error, whatever the body asked.
    up.reject_modify.store(true, Ordering::SeqCst);
    let (code, body) = patch(&running, id, r#"{"filter_id": "web-only"}"#).await;
    assert_eq!(code, 502, "{body}");
    assert_eq!(body["pfcp_cause"], 64, "{body}");
    up.reject_modify.store(false, Ordering::SeqCst);

    // Rate and ACL together: one request carrying both.
    let (code, view) = patch(
        &running,
        id,
        r#"{"rate": {"up_kbps": 1000, "down_kbps": 2000}, "filter_id": "web-only"}"#,
    )
    .await;
    assert_eq!(code, 200, "{view}");
    assert_eq!(filter_of(&view), Some("web-only"));
    assert_eq!(view["rate"]["down_kbps"], 2000);
    let mods = up.modification_requests();
    assert_eq!(mods.len(), 4);
    let both = &mods[3].1;
    assert_eq!(both.update_qers.len(), 1);
    assert_eq!(
        both.update_pdrs,
        acl_change_request(Some("block-smtp"), Some("web-only")).update_pdrs
    );

    // No ACL: the old one deactivated, nothing activated.
    let (code, view) = patch(&running, id, r#"{"filter_id": null}"#).await;
    assert_eq!(code, 200, "{view}");
    assert_eq!(filter_of(&view), None);
    assert_eq!(
        up.modification_requests()[4].1,
        acl_change_request(Some("web-only"), None)
    );

    // An empty name is no ACL name: 400, nothing sent.
    let (code, body) = patch(&running, id, r#"{"filter_id": ""}"#).await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(up.modification_requests().len(), 5);

    let text = metrics_text(&running);
    for needle in [
        "vbng_cp_session_modifications_total{result=\"ok\"} 3",
        "vbng_cp_session_modifications_total{result=\"refused\"} 2",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_acl_fails_the_establishment_cleanly() {
    let up = FakeUp::start(Ipv4Addr::LOCALHOST).await;
    let up_gtpu = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let running = start(&up, &up_gtpu, "no-such-acl").await;
    discover_and_request(&up_gtpu, running.gtpu_addr, 100).await;
    wait_for("establishment failure counted", || {
        metrics_text(&running)
            .contains("vbng_cp_session_establish_failures_total 1")
            .then_some(())
    })
    .await;
    let est = establishments(&up);
    assert_eq!(est.len(), 1);
    assert_eq!(activated(&est[0])[0], vec!["no-such-acl".to_string()]);
    // No DHCPACK, no session, no lease, nothing left on the user plane to
    // delete: it refused.
    let mut buf = [0u8; 4096];
    let heard = tokio::time::timeout(Duration::from_millis(500), up_gtpu.recv_from(&mut buf)).await;
    assert!(heard.is_err(), "a DHCPACK for a session that failed");
    assert!(running.sessions.snapshot().is_empty());
    assert_eq!(running.dhcp.lock().unwrap().leases().count(), 0);
    assert!(
        !up.messages()
            .iter()
            .any(|(_, _, m)| matches!(m, Message::SessionDeletionRequest(_)))
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_plane_restarted_without_the_acl_ends_the_session() {
    let up = FakeUp::start(Ipv4Addr::LOCALHOST).await;
    let up_gtpu = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let running = start(&up, &up_gtpu, "web-only").await;
    let session = active_session(&running, &up_gtpu).await;
    // The user plane comes back with an ACL file that lost "web-only": the
    // re-establishment is refused and the session removed with its lease.
    up.know_acls(&["block-smtp"]);
    up.recovery.store(3_900_000_500, Ordering::SeqCst);
    wait_for("session removed", || {
        running.sessions.view(session.id).is_none().then_some(())
    })
    .await;
    let est = establishments(&up);
    assert_eq!(est.len(), 2);
    assert_eq!(activated(&est[1])[1], vec!["web-only".to_string()]);
    assert_eq!(running.dhcp.lock().unwrap().leases().count(), 0);
    running.shutdown().await.unwrap();
}
