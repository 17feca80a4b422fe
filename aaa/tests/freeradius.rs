//! Integration tests against a real FreeRADIUS 3.2, run by the
//! `vbng_aaa::lab` harness from the project's configuration
//! (`aaa/freeradius/`) on loopback ports of its own.

use std::net::UdpSocket as StdUdpSocket;
use std::time::{Duration, Instant};

use vbng_aaa::client::{Client, ClientConfig, Request, ServerConfig};
use vbng_aaa::dictionary::{VBNG_RATE_DOWN_KBPS, VBNG_RATE_UP_KBPS, VBNG_VENDOR_ID};
use vbng_aaa::lab::{FreeRadius, FreeRadiusOptions};
use vbng_aaa::radius::{AttrType, Attribute, Code, Repr, acct_status, crypto};

const SECRET: &[u8] = b"vbng-test-secret";

/// Starts the project's FreeRADIUS and waits for it; `None` (the test
/// skips) when FreeRADIUS is not installed.
async fn freeradius() -> Option<FreeRadius> {
    if !FreeRadius::available() {
        println!("SKIPPED: freeradius not installed");
        return None;
    }
    let mut server = FreeRadius::start(FreeRadiusOptions::default()).unwrap();
    server.wait_ready().await.unwrap();
    Some(server)
}

fn config() -> ClientConfig {
    ClientConfig {
        timeout: Duration::from_millis(300),
        max_timeout: Duration::from_secs(1),
        retries: 1,
        dead_time: Duration::from_secs(30),
        ..ClientConfig::default()
    }
}

fn text(packet: &Repr, typ: AttrType) -> Option<String> {
    packet
        .find(typ)
        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
}

#[tokio::test]
async fn against_freeradius() {
    let Some(server) = freeradius().await else {
        return;
    };

    let auth = Client::new(vec![server.auth_server()], config())
        .await
        .unwrap();

    // PAP accept, with the reply attributes from the users file.
    let r = auth
        .send(&Request::pap("pap-user", b"pap-pass"))
        .await
        .unwrap();
    assert_eq!(r.packet.code, Code::AccessAccept, "{}", server.log());
    assert_eq!(
        text(&r.packet, AttrType::ReplyMessage).as_deref(),
        Some("hello pap")
    );
    assert_eq!(
        r.packet
            .find(AttrType::SessionTimeout)
            .and_then(Attribute::as_u32),
        Some(3600)
    );
    assert!(r.packet.find(AttrType::MessageAuthenticator).is_some());

    // PAP reject: wrong password, and a user the server always rejects.
    let r = auth
        .send(&Request::pap("pap-user", b"wrong"))
        .await
        .unwrap();
    assert_eq!(r.packet.code, Code::AccessReject);
    let r = auth
        .send(&Request::pap("reject-user", b"anything"))
        .await
        .unwrap();
    assert_eq!(r.packet.code, Code::AccessReject);

    // CHAP accept and CHAP reject.
    let r = auth
        .send(&Request::chap(
            "chap-user",
            17,
            b"chap-pass",
            b"0123456789abcdef",
        ))
        .await
        .unwrap();
    assert_eq!(r.packet.code, Code::AccessAccept, "{}", server.log());
    assert_eq!(
        text(&r.packet, AttrType::ReplyMessage).as_deref(),
        Some("hello chap")
    );
    let r = auth
        .send(&Request::chap(
            "chap-user",
            18,
            b"nope",
            b"0123456789abcdef",
        ))
        .await
        .unwrap();
    assert_eq!(r.packet.code, Code::AccessReject);

    // Accounting Start and Stop are acknowledged and land in the detail file.
    let acct = Client::new(vec![server.acct_server()], config())
        .await
        .unwrap();
    let session = "vbng-acct-0001";
    let start = Request::accounting(
        acct_status::START,
        session,
        vec![
            Attribute::new(AttrType::UserName, *b"pap-user"),
            Attribute::new(AttrType::NasIdentifier, *b"vbng-test"),
        ],
    );
    let r = acct.send(&start).await.unwrap();
    assert_eq!(r.packet.code, Code::AccountingResponse, "{}", server.log());
    let stop = Request::accounting(
        acct_status::STOP,
        session,
        vec![
            Attribute::new(AttrType::UserName, *b"pap-user"),
            Attribute::u32(AttrType::AcctSessionTime, 42),
            Attribute::u32(AttrType::AcctInputOctets, 123_456),
            Attribute::u32(AttrType::AcctOutputOctets, 654_321),
            Attribute::u32(AttrType::AcctTerminateCause, 1),
        ],
    );
    let r = acct.send(&stop).await.unwrap();
    assert_eq!(r.packet.code, Code::AccountingResponse);
    let records = server.detail_records();
    assert_eq!(records.len(), 2, "{records:?}\n{}", server.log());
    assert_eq!(records[0].get("Acct-Status-Type"), Some("Start"));
    assert_eq!(records[1].get("Acct-Status-Type"), Some("Stop"));
    for r in &records {
        assert_eq!(r.get("Acct-Session-Id"), Some(session));
        assert_eq!(r.get("User-Name"), Some("pap-user"));
        assert_eq!(r.nas, "127.0.0.1");
    }
    assert_eq!(records[0].get("NAS-Identifier"), Some("vbng-test"));
    assert_eq!(records[1].get("Acct-Input-Octets"), Some("123456"));
    assert_eq!(records[1].get("Acct-Session-Time"), Some("42"));

    // Failover: the first server is a socket that never answers.
    let silent = StdUdpSocket::bind("127.0.0.1:0").unwrap();
    let group = vec![
        server.server_config(silent.local_addr().unwrap()),
        server.auth_server(),
    ];
    let failover = Client::new(group, config()).await.unwrap();
    let t0 = Instant::now();
    let r = failover
        .send(&Request::pap("pap-user", b"pap-pass"))
        .await
        .unwrap();
    assert_eq!(r.packet.code, Code::AccessAccept);
    assert_eq!(r.server, server.auth_addr());
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "300 ms + 600 ms of backoff before failover"
    );
    let s = failover.stats();
    assert_eq!(
        (s.retransmissions, s.timeouts, s.failovers, s.responses),
        (1, 1, 1, 1)
    );
    assert!(failover.is_dead(0) && !failover.is_dead(1));
    // The dead server is skipped: the next request is answered at once.
    let t0 = Instant::now();
    let r = failover
        .send(&Request::pap("pap-user", b"pap-pass"))
        .await
        .unwrap();
    assert_eq!(r.server, server.auth_addr());
    assert!(t0.elapsed() < Duration::from_millis(300));
    assert_eq!(failover.stats().timeouts, 1);

    // Many requests in flight at once on one socket share its identifier
    // window (more than 256: the excess waits for a free identifier).
    let auth = std::sync::Arc::new(auth);
    let tasks: Vec<_> = (0..300)
        .map(|_| {
            let auth = auth.clone();
            tokio::spawn(async move { auth.send(&Request::pap("pap-user", b"pap-pass")).await })
        })
        .collect();
    for t in tasks {
        let r = t.await.unwrap().unwrap();
        assert_eq!(r.packet.code, Code::AccessAccept);
    }
    let s = auth.stats();
    assert_eq!(
        s.dropped_bad_authenticator + s.dropped_bad_message_authenticator + s.dropped_malformed,
        0
    );
}

/// A fake server answers with a forged response (wrong secret), then with
/// one lacking Message-Authenticator, then correctly: the first two are
/// dropped and counted, the request completes with the third.
#[tokio::test]
async fn forged_responses_are_dropped() {
    let fake = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = fake.local_addr().unwrap();
    let responder = tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        let (n, peer) = fake.recv_from(&mut buf).await.unwrap();
        let request = Repr::parse_bytes(&buf[..n]).unwrap();
        let respond = |secret: &[u8], with_ma: bool| {
            let mut attributes = vec![Attribute::new(AttrType::ReplyMessage, *b"hi")];
            if with_ma {
                attributes.push(Attribute::new(AttrType::MessageAuthenticator, [0; 16]));
            }
            let mut p = Repr {
                code: Code::AccessAccept,
                identifier: request.identifier,
                authenticator: request.authenticator,
                attributes,
            }
            .to_bytes()
            .unwrap();
            if with_ma {
                let ma = crypto::message_authenticator(&p, &request.authenticator, secret).unwrap();
                let n = p.len();
                p[n - 16..].copy_from_slice(&ma);
            }
            let ra = crypto::packet_md5(&p, &request.authenticator, secret);
            p[4..20].copy_from_slice(&ra);
            p
        };
        fake.send_to(&respond(b"wrong-secret", true), peer)
            .await
            .unwrap();
        fake.send_to(&respond(SECRET, false), peer).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        fake.send_to(&respond(SECRET, true), peer).await.unwrap();
    });
    let client = Client::new(
        vec![ServerConfig {
            addr,
            secret: SECRET.to_vec(),
        }],
        config(),
    )
    .await
    .unwrap();
    let r = client.send(&Request::pap("u", b"p")).await.unwrap();
    assert_eq!(r.packet.code, Code::AccessAccept);
    let s = client.stats();
    assert_eq!(s.dropped_bad_authenticator, 1);
    assert_eq!(s.dropped_bad_message_authenticator, 1);
    assert_eq!(s.responses, 1);
    responder.await.unwrap();
}

/// The project's users file gives an IPoE subscriber (named by its MAC) its
/// profile, including the vbng vendor attributes: FreeRADIUS loaded
/// dictionary.vbng, or it could not have parsed the file nor sent them.
#[tokio::test]
async fn ipoe_profile_with_vendor_attributes() {
    let Some(server) = freeradius().await else {
        return;
    };
    let client = Client::new(vec![server.auth_server()], config())
        .await
        .unwrap();
    let r = client
        .send(&Request::pap("02:00:00:00:00:01", b"vbng"))
        .await
        .unwrap();
    assert_eq!(r.packet.code, Code::AccessAccept, "{}", server.log());
    let vendor = |typ| {
        let values = r.packet.vendor_values(VBNG_VENDOR_ID, typ);
        assert_eq!(values.len(), 1, "{:?}", r.packet);
        u32::from_be_bytes(values[0].try_into().unwrap())
    };
    assert_eq!(vendor(VBNG_RATE_UP_KBPS), 10_000);
    assert_eq!(vendor(VBNG_RATE_DOWN_KBPS), 50_000);
    let u32_of = |typ| r.packet.find(typ).and_then(Attribute::as_u32);
    assert_eq!(u32_of(AttrType::AcctInterimInterval), Some(300));
    assert_eq!(u32_of(AttrType::SessionTimeout), Some(86_400));
    assert_eq!(
        text(&r.packet, AttrType::Class).as_deref(),
        Some("vbng-gold")
    );
    assert_eq!(
        text(&r.packet, AttrType::FramedPool).as_deref(),
        Some("ipoe-pool")
    );
    let r = client
        .send(&Request::pap("02:00:00:00:00:01", b"wrong"))
        .await
        .unwrap();
    assert_eq!(r.packet.code, Code::AccessReject);
    let r = client
        .send(&Request::pap("02:00:00:00:00:99", b"vbng"))
        .await
        .unwrap();
    assert_eq!(r.packet.code, Code::AccessReject, "unknown MAC");
}

/// Status-Server (RFC 5997) is answered on both ports, signed.
#[tokio::test]
async fn status_server_is_answered() {
    let Some(server) = freeradius().await else {
        return;
    };
    let probe = Request {
        code: Code::StatusServer,
        attributes: Vec::new(),
        password: None,
    };
    for (addr, code) in [
        (server.auth_server(), Code::AccessAccept),
        (server.acct_server(), Code::AccountingResponse),
    ] {
        let client = Client::new(vec![addr], config()).await.unwrap();
        let r = client.send(&probe).await.unwrap();
        assert_eq!(r.packet.code, code);
        assert!(r.packet.find(AttrType::MessageAuthenticator).is_some());
    }
}

/// The harness options: a users file of the test's own, a second client
/// address with its own secret; stop and restart keep ports and detail
/// files.
#[tokio::test]
async fn harness_options_stop_and_restart() {
    if !FreeRadius::available() {
        println!("SKIPPED: freeradius not installed");
        return;
    }
    let mut server = FreeRadius::start(FreeRadiusOptions {
        users: "only-user\tCleartext-Password := \"only-pass\"\n\tReply-Message := \"mine\"\n"
            .into(),
        clients: vec![vbng_aaa::lab::LabClient {
            addr: [127, 0, 0, 2].into(),
            secret: "second-secret".into(),
        }],
        ..Default::default()
    })
    .unwrap();
    server.wait_ready().await.unwrap();
    let (auth, acct) = (server.auth_addr(), server.acct_addr());
    let client = Client::new(vec![server.auth_server()], config())
        .await
        .unwrap();
    let r = client
        .send(&Request::pap("only-user", b"only-pass"))
        .await
        .unwrap();
    assert_eq!(
        text(&r.packet, AttrType::ReplyMessage).as_deref(),
        Some("mine")
    );
    let r = client
        .send(&Request::pap("pap-user", b"pap-pass"))
        .await
        .unwrap();
    assert_eq!(r.packet.code, Code::AccessReject, "project users replaced");

    // From 127.0.0.2, with its secret (a raw socket: the client binds the
    // wildcard address).
    let second = StdUdpSocket::bind("127.0.0.2:0").unwrap();
    second
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let secret = b"second-secret";
    let authenticator = crypto::random_authenticator().unwrap();
    let mut request = Repr {
        code: Code::AccessRequest,
        identifier: 7,
        authenticator,
        attributes: vec![
            Attribute::new(AttrType::MessageAuthenticator, [0; 16]),
            Attribute::new(AttrType::UserName, *b"only-user"),
            Attribute::new(
                AttrType::UserPassword,
                crypto::hide_password(b"only-pass", secret, &authenticator).unwrap(),
            ),
        ],
    }
    .to_bytes()
    .unwrap();
    crypto::sign_request(&mut request, secret).unwrap();
    second.send_to(&request, auth).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = second.recv_from(&mut buf).unwrap();
    crypto::verify_response(&buf[..n], &authenticator, secret, true).unwrap();
    assert_eq!(
        Repr::parse_bytes(&buf[..n]).unwrap().code,
        Code::AccessAccept
    );

    // One accounting record, then stop: nothing answers.
    let acct_client = Client::new(vec![server.acct_server()], config())
        .await
        .unwrap();
    let record = |id: &str| Request::accounting(acct_status::START, id, Vec::new());
    acct_client.send(&record("before")).await.unwrap();
    server.stop();
    assert!(!server.is_running());
    assert!(acct_client.send(&record("while-down")).await.is_err());

    // Restarted: same ports, the earlier detail record still there.
    server.restart().unwrap();
    server.wait_ready().await.unwrap();
    assert_eq!((server.auth_addr(), server.acct_addr()), (auth, acct));
    let acct_client = Client::new(vec![server.acct_server()], config())
        .await
        .unwrap();
    acct_client.send(&record("after")).await.unwrap();
    let ids: Vec<_> = server
        .detail_records()
        .iter()
        .map(|r| r.get("Acct-Session-Id").unwrap_or("").to_string())
        .collect();
    assert_eq!(ids, ["before", "after"]);

    // Drop removes the directory (unless VBNG_KEEP_RADDB is set).
    let dir = server.dir().to_path_buf();
    drop(server);
    if std::env::var_os("VBNG_KEEP_RADDB").is_none() {
        assert!(!dir.exists());
    }
}

/// Failover and revival with two real servers. The primary is down from
/// the start: with `timeout` 300 ms and `retries` 1 the request waits
/// 300 + 600 ms on it, then the secondary answers (asserted < 3 s). The
/// primary is then started: the client's Status-Server probes (every
/// 200 ms here) find it alive long before its 60 s dead time, and requests
/// go back to it. Stopped again, the secondary takes over again.
#[tokio::test]
async fn failover_and_status_server_revival() {
    if !FreeRadius::available() {
        println!("SKIPPED: freeradius not installed");
        return;
    }
    let mut primary = FreeRadius::prepare(FreeRadiusOptions::default()).unwrap();
    let mut secondary = FreeRadius::start(FreeRadiusOptions::default()).unwrap();
    secondary.wait_ready().await.unwrap();
    let client = Client::new(
        vec![primary.auth_server(), secondary.auth_server()],
        ClientConfig {
            timeout: Duration::from_millis(300),
            retries: 1,
            dead_time: Duration::from_secs(60),
            status_server_interval: Duration::from_millis(200),
            ..ClientConfig::default()
        },
    )
    .await
    .unwrap();
    let pap = Request::pap("pap-user", b"pap-pass");

    // Primary never started.
    let t0 = Instant::now();
    let r = client.send(&pap).await.unwrap();
    let failover = t0.elapsed();
    assert_eq!(r.packet.code, Code::AccessAccept);
    assert_eq!(r.server, secondary.auth_addr());
    assert!(failover < Duration::from_secs(3), "{failover:?}");
    assert!(failover >= Duration::from_millis(900), "{failover:?}");
    println!("failover to the secondary after {failover:?}");
    let states = client.server_states();
    assert!(!states[0].alive && states[1].alive, "{states:?}");
    assert!(states[0].dead_for.unwrap() > Duration::from_secs(50));
    // The dead primary is skipped.
    let t0 = Instant::now();
    assert_eq!(
        client.send(&pap).await.unwrap().server,
        secondary.auth_addr()
    );
    assert!(t0.elapsed() < Duration::from_millis(300));

    // Primary comes up: revived by Status-Server, not by its dead time.
    let t0 = Instant::now();
    primary.restart().unwrap();
    primary.wait_ready().await.unwrap();
    while !client.server_states()[0].alive {
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "primary not revived: {:?}",
            client.server_states()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("primary revived {:?} after its start", t0.elapsed());
    let s = client.stats();
    assert_eq!(s.revivals, 1);
    assert!(s.status_server_probes >= 1);
    assert!(client.server_states()[0].status_server_probes >= 1);
    let r = client.send(&pap).await.unwrap();
    assert_eq!(r.server, primary.auth_addr());
    assert_eq!(r.packet.code, Code::AccessAccept);

    // Primary stopped: the secondary serves again within 3 s.
    primary.stop();
    let t0 = Instant::now();
    let r = client.send(&pap).await.unwrap();
    assert_eq!(r.server, secondary.auth_addr());
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert!(!client.server_states()[0].alive);
}

/// Requests are spread over the socket pool: each socket has its own
/// source port and identifier window, so more than 256 requests can be in
/// flight to one server at once.
#[tokio::test]
async fn socket_pool_spreads_requests() {
    let fake = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = fake.local_addr().unwrap();
    let client = std::sync::Arc::new(
        Client::new(
            vec![ServerConfig {
                addr,
                secret: SECRET.to_vec(),
            }],
            ClientConfig {
                timeout: Duration::from_secs(5),
                ..ClientConfig::default()
            },
        )
        .await
        .unwrap(),
    );
    const N: usize = 600;
    let tasks: Vec<_> = (0..N)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.send(&Request::pap("u", b"p")).await })
        })
        .collect();
    // Collect all requests before answering any: 600 in flight at once
    // needs at least 3 sockets of 256 identifiers.
    let mut buf = [0u8; 4096];
    let mut requests = Vec::new();
    while requests.len() < N {
        let (n, peer) = fake.recv_from(&mut buf).await.unwrap();
        requests.push((Repr::parse_bytes(&buf[..n]).unwrap(), peer));
    }
    assert_eq!(client.server_states()[0].in_flight, N);
    let mut ports: Vec<_> = requests.iter().map(|(_, p)| p.port()).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 4, "default sockets_per_server");
    for (request, peer) in &requests {
        let mut p = Repr {
            code: Code::AccessAccept,
            identifier: request.identifier,
            authenticator: request.authenticator,
            attributes: vec![Attribute::new(AttrType::MessageAuthenticator, [0; 16])],
        }
        .to_bytes()
        .unwrap();
        let ma = crypto::message_authenticator(&p, &request.authenticator, SECRET).unwrap();
        p[22..38].copy_from_slice(&ma);
        let ra = crypto::packet_md5(&p, &request.authenticator, SECRET);
        p[4..20].copy_from_slice(&ra);
        fake.send_to(&p, peer).await.unwrap();
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().packet.code, Code::AccessAccept);
    }
    let s = client.stats();
    assert_eq!((s.responses, s.retransmissions), (N as u64, 0));
    assert_eq!(client.server_states()[0].in_flight, 0);
}
