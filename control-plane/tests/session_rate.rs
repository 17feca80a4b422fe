//! Live per-subscriber rate changes over REST (`PATCH /sessions/{id}`)
//! against an in-test user plane: the user plane receives exactly one
//! Session Modification Request whose Update QER carries the new MBR
//! (0/0 for unlimited), the session view shows the rate the user plane
//! accepted, and a refused or unanswered change leaves the old rate.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;

use common::{CLIENT_MAC, FakeUp, dhcp_frame, dhcp_msg, gtpu, recv_dhcp, start_cp, wait_for};
use tokio::net::UdpSocket;
use vbng_access::dhcproto::v4::{DhcpOption, MessageType as DhcpType};
use vbng_cp::aaa::LocalSubscribers;
use vbng_cp::api::{RateView, SessionView};
use vbng_cp::config::Config;
use vbng_cp::service::Running;
use vbng_cups::pfcp::{Mbr, SessionModificationRequest, UpdateQer};

/// Every subscriber starts at 10 Mbit/s up, 50 Mbit/s down.
const SUBSCRIBERS: &str = "[default]\nrate = { up_kbps = 10000, down_kbps = 50000 }\n";

async fn start(up: &FakeUp, up_gtpu: &UdpSocket, cfg: Config) -> Running {
    let subs = LocalSubscribers::parse("subscribers.toml", SUBSCRIBERS).unwrap();
    start_cp(up, up_gtpu, subs, cfg).await
}

/// DISCOVER, OFFER, then REQUEST through the redirect (the ACK, if any,
/// is left to the caller); returns the offered address.
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

/// One HTTP request; returns the status and the body.
async fn http(method: &'static str, url: String, body: Option<&'static str>) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        let resp = match (method, body) {
            ("GET", None) => ureq::get(&url)
                .config()
                .http_status_as_error(false)
                .build()
                .call(),
            ("PATCH", Some(b)) => ureq::patch(&url)
                .config()
                .http_status_as_error(false)
                .build()
                .content_type("application/json")
                .send(b),
            other => panic!("unsupported request {other:?}"),
        };
        let mut resp = resp.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap())
    })
    .await
    .unwrap()
}

fn view(body: &str) -> SessionView {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not a session view ({e}): {body}"))
}

fn error(body: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    let msg = v["error"].as_str().expect("an error message");
    assert!(!msg.is_empty() && !msg.contains('\n'), "{msg:?}");
    v
}

/// The Update QER a rate change must carry, and nothing else.
fn rate_change(ul_kbps: u64, dl_kbps: u64) -> SessionModificationRequest {
    SessionModificationRequest {
        update_qers: vec![UpdateQer {
            qer_id: 1,
            gate_status: None,
            mbr: Some(Mbr { ul_kbps, dl_kbps }),
        }],
        ..Default::default()
    }
}

fn metrics_text(running: &Running) -> String {
    vbng_cp::metrics::encode(&running.metrics.registry())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_changes_the_rate_on_the_user_plane() {
    let up = FakeUp::start(Ipv4Addr::LOCALHOST).await;
    let up_gtpu = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let running = start(&up, &up_gtpu, Config::default()).await;
    let session = active_session(&running, &up_gtpu).await;
    let rate = |up_kbps, down_kbps| Some(RateView { up_kbps, down_kbps });
    // The subscriber file's rate, programmed at establishment.
    assert_eq!(session.rate, rate(10_000, 50_000));
    let up_seid = session.up_seid;
    assert_eq!(up_seid, Some(0x1001));
    assert!(up.modification_requests().is_empty());
    let url = format!("http://{}/sessions/{}", running.api_addr, session.id);

    // A new rate: exactly one Update QER with the MBR, to the session's
    // UP SEID; the answer and later reads show it.
    let (code, body) = http(
        "PATCH",
        url.clone(),
        Some(r#"{"rate": {"up_kbps": 20000, "down_kbps": 100000}}"#),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(view(&body).rate, rate(20_000, 100_000));
    assert_eq!(view(&body).id, session.id);
    assert_eq!(
        up.modification_requests(),
        vec![(up_seid, rate_change(20_000, 100_000))]
    );
    let (code, body) = http("GET", url.clone(), None).await;
    assert_eq!(code, 200);
    assert_eq!(view(&body).rate, rate(20_000, 100_000));

    // Unlimited: MBR 0/0 (an absent MBR would mean "unchanged").
    let (code, body) = http("PATCH", url.clone(), Some(r#"{"rate": null}"#)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(view(&body).rate, None);
    let mods = up.modification_requests();
    assert_eq!(mods.len(), 2);
    assert_eq!(mods[1], (up_seid, rate_change(0, 0)));

    // Back to a limit, so a refusal below has a rate to keep.
    let (code, _) = http(
        "PATCH",
        url.clone(),
        Some(r#"{"rate": {"up_kbps": 30000, "down_kbps": 300000}}"#),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(up.modification_requests().len(), 3);

    // Unknown session: 404, nothing sent.
    let (code, body) = http(
        "PATCH",
        format!("http://{}/sessions/999999", running.api_addr),
        Some(r#"{"rate": null}"#),
    )
    .await;
    assert_eq!(code, 404);
    error(&body);

    // Malformed bodies: 400 with a one-line reason, nothing sent.
    for bad in [
        "{\"rate\": ",
        "{}",
        r#"{"rate": {"up_kbps": 1000}}"#,
        r#"{"rate": {"up_kbps": "fast", "down_kbps": 1000}}"#,
        r#"{"rate": null, "gate": "closed"}"#,
    ] {
        let (code, body) = http("PATCH", url.clone(), Some(bad)).await;
        assert_eq!(code, 400, "{bad}: {body}");
        let e = error(&body);
        assert!(
            e["error"].as_str().unwrap().starts_with("bad PATCH body"),
            "{body}"
        );
    }
    assert_eq!(up.modification_requests().len(), 3);

    // The user plane refuses: 502 with its cause, the old rate stays.
    up.reject_modify.store(true, Ordering::SeqCst);
    let (code, body) = http(
        "PATCH",
        url.clone(),
        Some(r#"{"rate": {"up_kbps": 1000, "down_kbps": 1000}}"#),
    )
    .await;
    assert_eq!(code, 502, "{body}");
    let e = error(&body);
    assert_eq!(e["pfcp_cause"], 64, "{body}");
    assert_eq!(e["pfcp_cause_name"], "RequestRejected", "{body}");
    let mods = up.modification_requests();
    assert_eq!(mods.len(), 4, "one request per PATCH, even refused");
    assert_eq!(mods[3], (up_seid, rate_change(1000, 1000)));
    let (_, body) = http("GET", url.clone(), None).await;
    assert_eq!(view(&body).rate, rate(30_000, 300_000));
    assert_eq!(
        running.sessions.view(session.id).unwrap().rate,
        rate(30_000, 300_000)
    );
    // The next PATCH is not blocked by the failed one.
    up.reject_modify.store(false, Ordering::SeqCst);
    let (code, body) = http(
        "PATCH",
        url.clone(),
        Some(r#"{"rate": {"up_kbps": 0, "down_kbps": 20000}}"#),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(view(&body).rate, rate(0, 20_000));
    assert_eq!(up.modification_requests()[4].1, rate_change(0, 20_000));

    let text = metrics_text(&running);
    for needle in [
        "vbng_cp_session_modifications_total{result=\"ok\"} 4",
        "vbng_cp_session_modifications_total{result=\"refused\"} 1",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    assert!(!text.contains("result=\"timeout\""), "{text}");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_or_premature_changes_keep_the_old_rate() {
    let up = FakeUp::start(Ipv4Addr::LOCALHOST).await;
    let up_gtpu = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = Config::default();
    // The establishment answer (delayed 1.5 s) must beat T1; the unanswered
    // modification then gives up after 2 x T1.
    cfg.pfcp.t1_ms = 2_000;
    cfg.pfcp.n1 = 1;
    let running = start(&up, &up_gtpu, cfg).await;

    // A session still establishing (the user plane takes its time): 409.
    up.establish_delay_ms.store(1_500, Ordering::SeqCst);
    discover_and_request(&up_gtpu, running.gtpu_addr, 200).await;
    let pending = wait_for("establishing session", || {
        running
            .sessions
            .snapshot()
            .into_iter()
            .find(|s| s.state == "establishing")
    })
    .await;
    let url = format!("http://{}/sessions/{}", running.api_addr, pending.id);
    let (code, body) = http("PATCH", url.clone(), Some(r#"{"rate": null}"#)).await;
    assert_eq!(code, 409, "{body}");
    assert!(
        error(&body)["error"]
            .as_str()
            .unwrap()
            .contains("establishing")
    );
    assert!(up.modification_requests().is_empty());

    // Once active, an unanswered change times out: 502 without a cause,
    // the old rate kept.
    let ack = recv_dhcp(&up_gtpu).await;
    assert_eq!(ack.opts().msg_type(), Some(DhcpType::Ack));
    wait_for("active session", || {
        (running.sessions.view(pending.id)?.state == "active").then_some(())
    })
    .await;
    up.ignore_modify.store(true, Ordering::SeqCst);
    let (code, body) = http(
        "PATCH",
        url.clone(),
        Some(r#"{"rate": {"up_kbps": 20000, "down_kbps": 20000}}"#),
    )
    .await;
    assert_eq!(code, 502, "{body}");
    let e = error(&body);
    assert!(e["pfcp_cause"].is_null(), "{body}");
    assert!(
        e["error"].as_str().unwrap().contains("no response"),
        "{body}"
    );
    assert_eq!(
        running.sessions.view(pending.id).unwrap().rate,
        Some(RateView {
            up_kbps: 10_000,
            down_kbps: 50_000
        })
    );
    assert!(
        metrics_text(&running)
            .contains("vbng_cp_session_modifications_total{result=\"timeout\"} 1")
    );
    running.shutdown().await.unwrap();
}
