//! The control plane with `[aaa] backend = "radius"` against a real
//! FreeRADIUS 3.2 (started here from the project's config directory) and
//! an in-test user plane: IPoE authorization, the Access-Accept mapped to
//! the session, accounting Start/Interim/Stop in FreeRADIUS's detail file
//! with the user plane's counters, `radclient` CoA (rate, Filter-Id ACL)
//! and Disconnect, bad secrets dropped and counted, a 30 s accounting
//! outage with nothing lost, and failover past a forging primary server.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{FakeUp, dhcp_frame, dhcp_msg, gtpu, recv_dhcp_within, start_cp, wait_for};
use tokio::net::UdpSocket;
use vbng_aaa::lab::{DetailRecord, FreeRadius, FreeRadiusOptions};
use vbng_access::dhcproto::v4::{DhcpOption, Message as Dhcp, MessageType as DhcpType};
use vbng_cp::aaa::LocalSubscribers;
use vbng_cp::api::SessionView;
use vbng_cp::config::{AaaBackend, Config, RadiusServer};
use vbng_cp::lab::ScratchDir;
use vbng_cp::service::Running;
use vbng_cups::pfcp::Message;
use vbng_cups::pfcp::ipoe::acl_change_request;

const GOLD: [u8; 6] = [2, 0, 0, 0, 0, 0x51];
const SILVER: [u8; 6] = [2, 0, 0, 0, 0, 0x52];
const BRONZE: [u8; 6] = [2, 0, 0, 0, 0, 0x53];
const REFUSED: [u8; 6] = [2, 0, 0, 0, 0, 0x5f];
const COA_SECRET: &str = "coa-test-secret";

/// Three IPoE subscribers with profiles, one refused.
const USERS: &str = r#""02:00:00:00:00:51"	Cleartext-Password := "vbng"
	vbng-Rate-Up-Kbps := 10000,
	vbng-Rate-Down-Kbps := 50000,
	Acct-Interim-Interval := 2,
	Class := "gold-class",
	Session-Timeout := 86400,
	Filter-Id := "web-and-mail",
	Framed-Pool := "default"

"02:00:00:00:00:52"	Cleartext-Password := "vbng"
	vbng-Rate-Up-Kbps := 2000,
	vbng-Rate-Down-Kbps := 8000,
	Class := "silver-class"

"02:00:00:00:00:53"	Cleartext-Password := "vbng"
	Class := "bronze-class"

"02:00:00:00:00:5f"	Auth-Type := Reject
	Reply-Message := "unpaid bill"

ppp-user	Cleartext-Password := "ppp-pass"
	Framed-IP-Address := 100.64.0.99,
	vbng-Rate-Down-Kbps := 30000,
	Idle-Timeout := 900
"#;

fn freeradius() -> Option<FreeRadius> {
    if !FreeRadius::available() {
        eprintln!(
            "SKIPPED: FreeRADIUS is not installed (apt-get install freeradius freeradius-utils)"
        );
        return None;
    }
    let opts = FreeRadiusOptions {
        users: USERS.to_string(),
        ..FreeRadiusOptions::default()
    };
    Some(FreeRadius::start(opts).expect("start FreeRADIUS"))
}

/// The test's scratch directory, `vbng-radius-<tag>-<pid>`; the tests of
/// this binary run at once, so each needs its own tag.
fn scratch(tag: &str) -> ScratchDir {
    ScratchDir::new(&format!("radius-{tag}"))
}

fn server(addr: SocketAddr, fr: &FreeRadius) -> RadiusServer {
    RadiusServer {
        address: addr,
        secret: String::from_utf8(fr.secret().to_vec()).unwrap(),
    }
}

/// A RADIUS config: authentication at `auth`, accounting at `acct`, the
/// spool in `dir`, quick timers, a CoA server on a free loopback port.
fn radius_config(
    auth: Vec<RadiusServer>,
    acct: Vec<RadiusServer>,
    dir: &std::path::Path,
) -> Config {
    let mut cfg = Config::default();
    cfg.aaa.backend = AaaBackend::Radius;
    cfg.radius.auth_servers = auth;
    cfg.radius.acct_servers = acct;
    cfg.radius.timeout_ms = 300;
    cfg.radius.retries = 1;
    cfg.radius.min_interim_s = 1;
    cfg.radius.accounting_spool = Some(dir.join("accounting.spool"));
    cfg.radius.coa.listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.radius.coa.clients = vec![vbng_cp::config::radius::CoaClientConfig {
        address: "127.0.0.1".parse().unwrap(),
        secret: COA_SECRET.into(),
    }];
    cfg
}

/// The access side of one in-test user plane: sends a client's DHCP
/// messages to the control plane and receives the replies.
struct Access {
    sock: UdpSocket,
    cp: SocketAddr,
}

impl Access {
    async fn send(&self, mac: [u8; 6], kind: DhcpType, xid: u32, extra: Vec<DhcpOption>) {
        let d = gtpu(
            1,
            &dhcp_frame(mac, None, None, &dhcp_msg(kind, mac, xid, extra)),
        );
        self.sock.send_to(&d, self.cp).await.unwrap();
    }

    async fn recv(&self, within: Duration) -> Option<Dhcp> {
        recv_dhcp_within(&self.sock, within).await
    }

    /// DISCOVER, OFFER, REQUEST, ACK; returns the address.
    async fn bind(&self, mac: [u8; 6], xid: u32) -> Ipv4Addr {
        self.send(mac, DhcpType::Discover, xid, vec![]).await;
        let offer = self
            .recv(Duration::from_secs(5))
            .await
            .expect("an OFFER once RADIUS accepted");
        assert_eq!(offer.opts().msg_type(), Some(DhcpType::Offer));
        let ip = offer.yiaddr();
        self.send(
            mac,
            DhcpType::Request,
            xid,
            vec![
                DhcpOption::ServerIdentifier(Ipv4Addr::new(100, 64, 0, 1)),
                DhcpOption::RequestedIpAddress(ip),
            ],
        )
        .await;
        let ack = self.recv(Duration::from_secs(5)).await.expect("an ACK");
        assert_eq!(ack.opts().msg_type(), Some(DhcpType::Ack));
        ip
    }

    async fn release(&self, mac: [u8; 6], ip: Ipv4Addr, xid: u32) {
        let mut m = Dhcp::new(
            ip,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &mac,
        );
        m.set_xid(xid);
        m.opts_mut()
            .insert(DhcpOption::MessageType(DhcpType::Release));
        m.opts_mut()
            .insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(100, 64, 0, 1)));
        use vbng_access::dhcproto::Encodable;
        let d = gtpu(1, &dhcp_frame(mac, None, None, &m.to_vec().unwrap()));
        self.sock.send_to(&d, self.cp).await.unwrap();
    }
}

async fn session_of(running: &Running, mac: [u8; 6]) -> SessionView {
    let text = vbng_cp::aaa::radius::mac_text(&mac);
    wait_for("active session", || {
        running
            .sessions
            .snapshot()
            .into_iter()
            .find(|s| s.mac == text && s.state == "active")
    })
    .await
}

/// Waits until the detail file holds a record matching `f`.
async fn detail_record(
    fr: &FreeRadius,
    what: &str,
    f: impl Fn(&DetailRecord) -> bool,
) -> DetailRecord {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(r) = fr.detail_records().into_iter().find(|r| f(r)) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} in the detail file: {:#?}",
            fr.detail_records()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn is(r: &DetailRecord, status: &str, session: &str) -> bool {
    r.get("Acct-Status-Type") == Some(status)
        && r.get("Acct-Session-Id").map(|v| v.trim_matches('"')) == Some(session)
}

fn num(r: &DetailRecord, name: &str) -> u64 {
    r.get(name)
        .unwrap_or_else(|| panic!("{name} missing in {r:#?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} not a number in {r:#?}"))
}

/// `radclient` sending `attrs` as `kind` (coa or disconnect) to `addr`;
/// returns its output (empty on no answer).
async fn radclient(
    fr: &FreeRadius,
    addr: SocketAddr,
    kind: &str,
    secret: &str,
    attrs: &str,
) -> String {
    let mut child = tokio::process::Command::new("radclient")
        .args(["-x", "-t", "1", "-r", "1", "-d"])
        .arg(fr.dir())
        .arg(addr.to_string())
        .arg(kind)
        .arg(secret)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("radclient (freeradius-utils)");
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{attrs}, Message-Authenticator = 0x00\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn setup(cfg: Config) -> (FakeUp, Access, Running) {
    let up = FakeUp::start(Ipv4Addr::LOCALHOST).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let running = start_cp(&up, &sock, LocalSubscribers::default(), cfg).await;
    let cp = running.gtpu_addr;
    (up, Access { sock, cp }, running)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipoe_session_authorized_accounted_changed_and_disconnected() {
    let Some(mut fr) = freeradius() else { return };
    fr.wait_ready().await.expect("FreeRADIUS ready");
    let dir = scratch("main");
    let cfg = radius_config(
        vec![server(fr.auth_addr(), &fr)],
        vec![server(fr.acct_addr(), &fr)],
        &dir,
    );
    let (up, access, running) = setup(cfg).await;
    let radius = running.radius.clone().unwrap();
    let coa_addr = radius.coa.as_ref().unwrap().0;

    // Authorized: the Accept's rate, Class, Filter-Id and interim reach the
    // session; its PDRs activate the Filter-Id's ACL.
    up.know_acls(&["web-and-mail", "block-smtp"]);
    let ip = access.bind(GOLD, 1).await;
    let s = session_of(&running, GOLD).await;
    assert_eq!(s.ipv4, ip);
    let rate = s.rate.expect("rate from the vendor attributes");
    assert_eq!((rate.up_kbps, rate.down_kbps), (10_000, 50_000));
    let aaa = s.aaa.clone().unwrap();
    assert_eq!(aaa.authentic, "radius");
    assert_eq!(aaa.username, "02:00:00:00:00:51");
    assert_eq!(aaa.interim_interval_s, Some(2));
    assert_eq!(aaa.filter_id.as_deref(), Some("web-and-mail"));
    let pdrs_acls: Vec<_> = up
        .messages()
        .into_iter()
        .find_map(|(_, _, m)| match m {
            Message::SessionEstablishmentRequest(r) => Some(r.create_pdrs),
            _ => None,
        })
        .expect("an establishment")
        .into_iter()
        .map(|p| p.activate_predefined_rules)
        .collect();
    assert_eq!(pdrs_acls, [["web-and-mail"], ["web-and-mail"]]);
    let acct_id = aaa.acct_session_id.clone().unwrap();

    // Refused: no OFFER, counted.
    access.send(REFUSED, DhcpType::Discover, 9, vec![]).await;
    assert!(
        access.recv(Duration::from_secs(2)).await.is_none(),
        "a refused client got an OFFER"
    );
    assert!(
        radius
            .auth
            .stats()
            .rejects
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );

    // Start, then an Interim-Update carrying the user plane's counters.
    let start = detail_record(&fr, "Start", |r| is(r, "Start", &acct_id)).await;
    assert_eq!(
        start.get("Class"),
        Some("0x676f6c642d636c617373"),
        "{start:#?}"
    );
    assert_eq!(start.get("User-Name"), Some("02:00:00:00:00:51"));
    assert_eq!(start.get("Framed-IP-Address"), Some(&ip.to_string()[..]));
    let interim = detail_record(&fr, "Interim-Update with counters", |r| {
        is(r, "Interim-Update", &acct_id) && r.get("Acct-Input-Octets").is_some_and(|v| v != "0")
    })
    .await;
    let n = num(&interim, "Acct-Input-Octets") / 1500;
    assert!(n >= 1);
    assert_eq!(
        num(&interim, "Acct-Output-Octets"),
        n * 3000,
        "{interim:#?}"
    );
    assert_eq!(num(&interim, "Acct-Input-Packets"), n * 10);
    assert_eq!(num(&interim, "Acct-Input-Gigawords"), 0);

    // CoA: a new downlink rate, the uplink kept; the UP gets one Update QER.
    let before = up.modification_requests().len();
    let out = radclient(
        &fr,
        coa_addr,
        "coa",
        COA_SECRET,
        &format!("Acct-Session-Id = \"{acct_id}\", vbng-Rate-Down-Kbps = 20000"),
    )
    .await;
    assert!(out.contains("CoA-ACK"), "{out}");
    let s = session_of(&running, GOLD).await;
    let rate = s.rate.unwrap();
    assert_eq!((rate.up_kbps, rate.down_kbps), (10_000, 20_000));
    let mods = up.modification_requests();
    assert!(mods.len() > before);
    let (_, last) = mods
        .iter()
        .rev()
        .find(|(_, m)| !m.update_qers.is_empty())
        .expect("an Update QER");
    assert_eq!(
        last.update_qers[0].mbr.map(|m| (m.ul_kbps, m.dl_kbps)),
        Some((10_000, 20_000))
    );

    // CoA Filter-Id: the user plane swaps the ACL on both PDRs.
    let before = up.modification_requests().len();
    let out = radclient(
        &fr,
        coa_addr,
        "coa",
        COA_SECRET,
        &format!("Acct-Session-Id = \"{acct_id}\", Filter-Id = \"block-smtp\""),
    )
    .await;
    assert!(out.contains("CoA-ACK"), "{out}");
    let s = session_of(&running, GOLD).await;
    assert_eq!(s.aaa.unwrap().filter_id.as_deref(), Some("block-smtp"));
    let mods = up.modification_requests();
    assert_eq!(mods.len(), before + 1, "one Session Modification Request");
    assert_eq!(
        mods[before].1,
        acl_change_request(Some("web-and-mail"), Some("block-smtp"))
    );

    // A Filter-Id the user plane does not know (cause 73): NAK 407, the
    // session keeps its ACL. Another refusal: NAK 506. An unknown
    // session: NAK 503.
    let out = radclient(
        &fr,
        coa_addr,
        "coa",
        COA_SECRET,
        &format!("Acct-Session-Id = \"{acct_id}\", Filter-Id = \"x\""),
    )
    .await;
    assert!(
        out.contains("CoA-NAK") && out.contains("Invalid-Attribute-Value"),
        "{out}"
    );
    up.reject_modify.store(true, Ordering::SeqCst);
    let out = radclient(
        &fr,
        coa_addr,
        "coa",
        COA_SECRET,
        &format!("Acct-Session-Id = \"{acct_id}\", Filter-Id = \"web-and-mail\""),
    )
    .await;
    assert!(
        out.contains("CoA-NAK") && out.contains("Resources-Unavailable"),
        "{out}"
    );
    up.reject_modify.store(false, Ordering::SeqCst);
    let s = session_of(&running, GOLD).await;
    assert_eq!(s.aaa.unwrap().filter_id.as_deref(), Some("block-smtp"));
    let out = radclient(
        &fr,
        coa_addr,
        "coa",
        COA_SECRET,
        "Acct-Session-Id = \"nope\", vbng-Rate-Down-Kbps = 1",
    )
    .await;
    assert!(
        out.contains("CoA-NAK") && out.contains("Session-Context-Not-Found"),
        "{out}"
    );

    // A bad secret: no answer at all, and counted.
    let coa_stats = radius.coa.as_ref().unwrap().1.clone();
    let dropped = coa_stats.snapshot().dropped_bad_authenticator
        + coa_stats.snapshot().dropped_bad_message_authenticator;
    let out = radclient(
        &fr,
        coa_addr,
        "disconnect",
        "wrong-secret",
        &format!("Acct-Session-Id = \"{acct_id}\""),
    )
    .await;
    assert!(
        !out.contains("Disconnect-ACK") && !out.contains("Disconnect-NAK"),
        "{out}"
    );
    let after = coa_stats.snapshot().dropped_bad_authenticator
        + coa_stats.snapshot().dropped_bad_message_authenticator;
    assert!(after > dropped, "forged Disconnect not counted");
    assert!(
        running.sessions.find(Some(&acct_id), None, None).len() == 1,
        "a forged Disconnect ended the session"
    );

    // Disconnect by address: the session ends, the UP deletes it, and the
    // Stop carries the final counters, the cause and the Class.
    let out = radclient(
        &fr,
        coa_addr,
        "disconnect",
        COA_SECRET,
        &format!("Framed-IP-Address = {ip}"),
    )
    .await;
    assert!(out.contains("Disconnect-ACK"), "{out}");
    wait_for("session gone", || {
        running.sessions.snapshot().is_empty().then_some(())
    })
    .await;
    assert!(
        up.messages()
            .iter()
            .any(|(_, _, m)| matches!(m, Message::SessionDeletionRequest(_)))
    );
    let stop = detail_record(&fr, "Stop", |r| is(r, "Stop", &acct_id)).await;
    assert_eq!(
        stop.get("Acct-Terminate-Cause"),
        Some("Admin-Reset"),
        "{stop:#?}"
    );
    assert_eq!(num(&stop, "Acct-Input-Octets"), 1500);
    assert_eq!(num(&stop, "Acct-Output-Octets"), 3000);
    assert_eq!(stop.get("Class"), Some("0x676f6c642d636c617373"));
    assert!(stop.get("Acct-Session-Time").is_some());

    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounting_survives_a_30s_outage_in_order_and_without_loss() {
    let Some(mut auth) = freeradius() else { return };
    let Some(mut acct) = freeradius() else { return };
    auth.wait_ready().await.expect("auth FreeRADIUS ready");
    acct.wait_ready().await.expect("acct FreeRADIUS ready");
    let dir = scratch("outage");
    let cfg = radius_config(
        vec![server(auth.auth_addr(), &auth)],
        vec![server(acct.acct_addr(), &acct)],
        &dir,
    );
    let (_up, access, running) = setup(cfg).await;
    let spool = running.radius.clone().unwrap().spool;

    let ip1 = access.bind(GOLD, 1).await;
    let s1 = session_of(&running, GOLD)
        .await
        .aaa
        .unwrap()
        .acct_session_id
        .unwrap();
    detail_record(&acct, "Start before the outage", |r| is(r, "Start", &s1)).await;

    // Accounting server down for 30 s while sessions start and stop.
    acct.stop();
    let outage = Instant::now();
    let ip2 = access.bind(SILVER, 2).await;
    let s2 = session_of(&running, SILVER)
        .await
        .aaa
        .unwrap()
        .acct_session_id
        .unwrap();
    access.release(GOLD, ip1, 3).await;
    access.bind(BRONZE, 4).await;
    let s3 = session_of(&running, BRONZE)
        .await
        .aaa
        .unwrap()
        .acct_session_id
        .unwrap();
    access.release(SILVER, ip2, 5).await;
    wait_for("records spooled", || (spool.pending() >= 4).then_some(())).await;
    let left = Duration::from_secs(30).saturating_sub(outage.elapsed());
    tokio::time::sleep(left).await;
    assert!(
        spool.pending() >= 4,
        "records left the spool while the server was down"
    );
    acct.restart().expect("restart FreeRADIUS");

    // Every record arrives once, in the order the events happened.
    wait_for("spool drained", || (spool.pending() == 0).then_some(())).await;
    let want = [
        ("Start", &s1),
        ("Start", &s2),
        ("Stop", &s1),
        ("Start", &s3),
        ("Stop", &s2),
    ];
    let got: Vec<(String, String)> = acct
        .detail_records()
        .iter()
        .filter(|r| r.get("Acct-Status-Type") != Some("Interim-Update"))
        .map(|r| {
            (
                r.get("Acct-Status-Type").unwrap_or_default().to_string(),
                r.get("Acct-Session-Id")
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(got, want, "records lost, duplicated or reordered");
    let delayed = acct
        .detail_records()
        .into_iter()
        .find(|r| is(r, "Start", &s2))
        .unwrap();
    assert!(num(&delayed, "Acct-Delay-Time") >= 25, "{delayed:#?}");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ppp_users_authenticate_with_pap_and_chap() {
    let Some(mut fr) = freeradius() else { return };
    fr.wait_ready().await.expect("FreeRADIUS ready");
    let dir = scratch("ppp");
    let cfg = radius_config(
        vec![server(fr.auth_addr(), &fr)],
        vec![server(fr.acct_addr(), &fr)],
        &dir,
    );
    let (_up, _access, running) = setup(cfg).await;
    let auth = running.radius.clone().unwrap().auth;
    let pap = auth
        .authenticate_pap("ppp-user", b"ppp-pass", &[])
        .await
        .expect("PAP accepted");
    assert_eq!(pap.profile.fixed_ipv4, Some(Ipv4Addr::new(100, 64, 0, 99)));
    assert_eq!(pap.profile.rate.map(|r| r.down_kbps), Some(30_000));
    assert_eq!(pap.attrs.idle_timeout_s, Some(900));
    assert!(
        auth.authenticate_pap("ppp-user", b"wrong", &[])
            .await
            .is_err()
    );
    // CHAP as a PPP peer answers (RFC 1994): MD5(id, secret, challenge).
    let challenge = [0x5au8; 16];
    let response = vbng_aaa::radius::crypto::chap_password(7, b"ppp-pass", &challenge);
    let digest: [u8; 16] = response[1..].try_into().unwrap();
    let chap = auth
        .authenticate_chap("ppp-user", 7, &challenge, &digest, &[])
        .await
        .expect("CHAP accepted");
    assert_eq!(chap.attrs.username, "ppp-user");
    let wrong = vbng_aaa::radius::crypto::chap_password(7, b"nope", &challenge);
    let wrong: [u8; 16] = wrong[1..].try_into().unwrap();
    assert!(
        auth.authenticate_chap("ppp-user", 7, &challenge, &wrong, &[])
            .await
            .is_err()
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pppoe_session_authenticated_by_radius_and_accounted() {
    let Some(mut fr) = freeradius() else { return };
    fr.wait_ready().await.expect("FreeRADIUS ready");
    let dir = scratch("pppoe");
    let cfg = radius_config(
        vec![server(fr.auth_addr(), &fr)],
        vec![server(fr.acct_addr(), &fr)],
        &dir,
    );
    let (up, access, running) = setup(cfg).await;
    let mut client = common::pppoe_client::PppoeClient {
        sock: access.sock,
        cp: access.cp,
        mac: [2, 0, 0, 0, 0, 0x61],
        session_id: 0,
    };
    client.discover().await;
    let (ip, _) = client
        .negotiate(b"ppp-user", b"ppp-pass")
        .await
        .expect("CHAP accepted by RADIUS, IPCP done");
    assert_eq!(ip, Ipv4Addr::new(100, 64, 0, 99), "Framed-IP-Address");
    let s = wait_for("active PPPoE session", || {
        running
            .sessions
            .snapshot()
            .into_iter()
            .find(|s| s.state == "active")
    })
    .await;
    assert_eq!(s.pppoe_session_id, Some(client.session_id));
    let aaa = s.aaa.clone().unwrap();
    assert_eq!(
        (aaa.authentic.as_str(), aaa.username.as_str()),
        ("radius", "ppp-user")
    );
    assert_eq!(aaa.idle_timeout_s, Some(900));
    assert_eq!(s.rate.map(|r| r.down_kbps), Some(30_000));
    let acct_id = aaa.acct_session_id.unwrap();
    let start = detail_record(&fr, "Start", |r| is(r, "Start", &acct_id)).await;
    assert_eq!(start.get("Framed-Protocol"), Some("PPP"), "{start:#?}");
    assert_eq!(start.get("NAS-Port-Type"), Some("Virtual"), "{start:#?}");
    assert_eq!(start.get("Framed-IP-Address"), Some("100.64.0.99"));

    // The client hangs up with PADT: Stop with User-Request.
    client
        .send(
            vbng_dataplane::wire::EtherType::PppoeDiscovery,
            &vbng_access::pppoe::wire::emit(
                vbng_access::pppoe::wire::Code::Padt,
                client.session_id,
                &[],
            ),
        )
        .await;
    let stop = detail_record(&fr, "Stop", |r| is(r, "Stop", &acct_id)).await;
    assert_eq!(
        stop.get("Acct-Terminate-Cause"),
        Some("User-Request"),
        "{stop:#?}"
    );
    assert!(
        up.messages()
            .iter()
            .any(|(_, _, m)| matches!(m, Message::SessionDeletionRequest(_)))
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounting_survives_a_control_plane_restart_during_an_outage() {
    let Some(mut auth) = freeradius() else { return };
    let Some(mut acct) = freeradius() else { return };
    auth.wait_ready().await.expect("auth FreeRADIUS ready");
    acct.wait_ready().await.expect("acct FreeRADIUS ready");
    let dir = scratch("restart");
    let mut cfg = radius_config(
        vec![server(auth.auth_addr(), &auth)],
        vec![server(acct.acct_addr(), &acct)],
        &dir,
    );
    cfg.dhcp.lease_file = Some(dir.join("leases.jsonl"));
    acct.stop();
    let up = FakeUp::start(Ipv4Addr::LOCALHOST).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let running = start_cp(&up, &sock, LocalSubscribers::default(), cfg.clone()).await;
    let access = Access {
        sock,
        cp: running.gtpu_addr,
    };
    access.bind(GOLD, 1).await;
    let id = session_of(&running, GOLD)
        .await
        .aaa
        .unwrap()
        .acct_session_id
        .unwrap();
    let spool = running.radius.clone().unwrap().spool;
    wait_for("Start spooled", || (spool.pending() == 1).then_some(())).await;
    drop(spool);
    // An ACL changed live is journalled with the lease.
    let session = session_of(&running, GOLD).await;
    let changed = running
        .sessions
        .set_filter(session.id, Some("block-smtp".into()))
        .await
        .expect("ACL change accepted");
    assert_eq!(
        changed.aaa.unwrap().filter_id.as_deref(),
        Some("block-smtp")
    );
    // The control plane stops with the Start still undelivered.
    running.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A new one on the same spool and lease file: the session is restored
    // under the same Acct-Session-Id and the Start goes out once the
    // server is back.
    let Access { sock, .. } = access;
    let running = start_cp(&up, &sock, LocalSubscribers::default(), cfg).await;
    let restored = session_of(&running, GOLD).await;
    let aaa = restored.aaa.clone().unwrap();
    assert_eq!(aaa.acct_session_id.as_deref(), Some(id.as_str()));
    // With the ACL it had, programmed again on both PDRs.
    assert_eq!(aaa.filter_id.as_deref(), Some("block-smtp"));
    let last_establishment = up
        .messages()
        .into_iter()
        .rev()
        .find_map(|(_, _, m)| match m {
            Message::SessionEstablishmentRequest(r) => Some(r),
            _ => None,
        })
        .expect("the restored session re-established");
    for pdr in &last_establishment.create_pdrs {
        assert_eq!(pdr.activate_predefined_rules, ["block-smtp"]);
    }
    acct.restart().expect("restart FreeRADIUS");
    detail_record(&acct, "Start after the restart", |r| is(r, "Start", &id)).await;
    let restored_id = restored.id;
    running.sessions.delete(restored_id).await.unwrap();
    detail_record(&acct, "Stop", |r| is(r, "Stop", &id)).await;
    let records: Vec<_> = acct
        .detail_records()
        .into_iter()
        .filter(|r| r.get("Acct-Status-Type") != Some("Interim-Update"))
        .map(|r| r.get("Acct-Status-Type").unwrap_or_default().to_string())
        .collect();
    assert_eq!(records, ["Start", "Stop"], "each record once");
    running.shutdown().await.unwrap();
}

/// A "server" that answers every Access-Request with an Access-Accept
/// signed with the wrong secret.
async fn forging_server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok((n, src)) = sock.recv_from(&mut buf).await {
            let mut reply = buf[..n].to_vec();
            reply[0] = 2;
            reply.truncate(20);
            reply[2..4].copy_from_slice(&20u16.to_be_bytes());
            let _ = sock.send_to(&reply, src).await;
        }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_primary_is_ignored_and_the_secondary_answers_within_3s() {
    let Some(mut fr) = freeradius() else { return };
    fr.wait_ready().await.expect("FreeRADIUS ready");
    let (forger, task) = forging_server().await;
    let dir = scratch("failover");
    let cfg = radius_config(
        vec![
            RadiusServer {
                address: forger,
                secret: "whatever".into(),
            },
            server(fr.auth_addr(), &fr),
        ],
        vec![server(fr.acct_addr(), &fr)],
        &dir,
    );
    let (_up, access, running) = setup(cfg).await;
    let t = Instant::now();
    access.send(GOLD, DhcpType::Discover, 1, vec![]).await;
    let offer = access.recv(Duration::from_secs(3)).await;
    let took = t.elapsed();
    assert!(
        offer.is_some_and(|o| o.opts().msg_type() == Some(DhcpType::Offer)),
        "no OFFER within 3 s of the DISCOVER"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    let stats = running.radius.as_ref().unwrap().auth.client().stats();
    assert!(
        stats.dropped_bad_authenticator + stats.dropped_bad_message_authenticator >= 1,
        "{stats:?}"
    );
    assert!(stats.failovers >= 1, "{stats:?}");
    eprintln!("failover to the secondary: OFFER {took:?} after the DISCOVER");
    running.shutdown().await.unwrap();
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pppoe_session_is_accounted_on_across_a_control_plane_restart() {
    let Some(mut fr) = freeradius() else { return };
    fr.wait_ready().await.expect("FreeRADIUS ready");
    let dir = scratch("pppoe-restart");
    let mut cfg = radius_config(
        vec![server(fr.auth_addr(), &fr)],
        vec![server(fr.acct_addr(), &fr)],
        &dir,
    );
    cfg.dhcp.lease_file = Some(dir.join("leases.jsonl"));
    let up = FakeUp::start(Ipv4Addr::LOCALHOST).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let running = start_cp(&up, &sock, LocalSubscribers::default(), cfg.clone()).await;
    let mut client = common::pppoe_client::PppoeClient {
        sock,
        cp: running.gtpu_addr,
        mac: [2, 0, 0, 0, 0, 0x62],
        session_id: 0,
    };
    client.discover().await;
    client
        .negotiate(b"ppp-user", b"ppp-pass")
        .await
        .expect("CHAP accepted by RADIUS, IPCP done");
    let active = || {
        running
            .sessions
            .snapshot()
            .into_iter()
            .find(|s| s.state == "active")
    };
    let acct_id = wait_for("active PPPoE session", active)
        .await
        .aaa
        .unwrap()
        .acct_session_id
        .unwrap();
    detail_record(&fr, "Start", |r| is(r, "Start", &acct_id)).await;
    let leases = dir.join("leases.jsonl");
    wait_for("the session in the lease file", || {
        let text = std::fs::read_to_string(&leases).unwrap_or_default();
        text.contains("pppoe_put").then_some(())
    })
    .await;
    running.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Restarted on the same lease file and spool: the same session, the
    // same Acct-Session-Id, no second Start.
    let running = start_cp(&up, &client.sock, LocalSubscribers::default(), cfg).await;
    client.cp = running.gtpu_addr;
    let restored = wait_for("restored PPPoE session active", || {
        running
            .sessions
            .snapshot()
            .into_iter()
            .find(|s| s.state == "active")
    })
    .await;
    assert_eq!(restored.pppoe_session_id, Some(client.session_id));
    let aaa = restored.aaa.unwrap();
    assert_eq!(aaa.acct_session_id.as_deref(), Some(acct_id.as_str()));
    assert_eq!(aaa.idle_timeout_s, Some(900));

    // The client hangs up after the restart: Stop under the same id.
    client
        .send(
            vbng_dataplane::wire::EtherType::PppoeDiscovery,
            &vbng_access::pppoe::wire::emit(
                vbng_access::pppoe::wire::Code::Padt,
                client.session_id,
                &[],
            ),
        )
        .await;
    let stop = detail_record(&fr, "Stop", |r| is(r, "Stop", &acct_id)).await;
    assert_eq!(stop.get("Acct-Terminate-Cause"), Some("User-Request"));
    let records: Vec<_> = fr
        .detail_records()
        .into_iter()
        .filter(|r| is(r, "Start", &acct_id) || is(r, "Stop", &acct_id))
        .map(|r| r.get("Acct-Status-Type").unwrap_or_default().to_string())
        .collect();
    assert_eq!(records, ["Start", "Stop"], "each record once");
    running.shutdown().await.unwrap();
}
