//! The Dynamic Authorization server (RFC 5176) driven by FreeRADIUS's
//! `radclient` (freeradius-utils 3.2) and by raw UDP sockets, on loopback.

use std::net::SocketAddr;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::process::Command;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use vbng_aaa::coa::{
    CoaClient, CoaConfig, CoaDecision, CoaKind, CoaRequest, CoaServer, CoaStats, FnHandler,
};
use vbng_aaa::radius::{AttrType, Attribute, Code, Repr, crypto, error_cause};

const RADCLIENT: &str = "/usr/bin/radclient";
const SECRET: &str = "vbng-coa-secret";

/// What the test handler saw.
type Seen = Arc<Mutex<Vec<CoaRequest>>>;

/// A running server; stopped (and its task ended) on drop, also when an
/// assertion fails.
struct Running {
    addr: SocketAddr,
    stats: Arc<CoaStats>,
    seen: Seen,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    /// Stops the server and waits for `run` to return.
    async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("run returns after shutdown")
                .unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The test policy: Acct-Session-Id "missing" gets a NAK with
/// Session-Context-Not-Found; "slow" takes a second; anything else is
/// acknowledged. Every call is recorded.
async fn start(require_message_authenticator: bool) -> Running {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let handler = FnHandler(move |req: CoaRequest| {
        let record = record.clone();
        async move {
            let session = req
                .packet
                .find(AttrType::AcctSessionId)
                .map(|a| a.value.clone())
                .unwrap_or_default();
            record.lock().unwrap().push(req);
            match session.as_slice() {
                b"missing" => CoaDecision::nak(error_cause::SESSION_CONTEXT_NOT_FOUND),
                b"slow" => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    CoaDecision::ack()
                }
                _ => CoaDecision::Ack {
                    attributes: vec![Attribute::new(AttrType::ReplyMessage, *b"applied")],
                },
            }
        }
    });
    let config = CoaConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        clients: vec![CoaClient {
            addr: "127.0.0.1".parse().unwrap(),
            secret: SECRET.as_bytes().to_vec(),
        }],
        require_message_authenticator,
        reply_cache_ttl: Duration::from_secs(30),
    };
    let server = CoaServer::bind(config, Arc::new(handler)).await.unwrap();
    let addr = server.local_addr();
    let stats = server.stats_handle();
    let (shutdown, rx) = watch::channel(false);
    let task = tokio::spawn(server.run(rx));
    Running {
        addr,
        stats,
        seen,
        shutdown,
        task: Some(task),
    }
}

/// Runs `radclient -x` with `input` on stdin; returns its output as text.
async fn radclient(addr: SocketAddr, command: &str, secret: &str, input: &str) -> (Output, String) {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new(RADCLIENT)
        .args(["-x", "-t", "0.5", "-r", "1"])
        .arg(addr.to_string())
        .arg(command)
        .arg(secret)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{RADCLIENT}: {e} (install freeradius-utils)"));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("radclient finishes")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// A request signed as radclient signs it: Message-Authenticator over the
/// packet with a zero Authenticator field, then the Request Authenticator.
fn signed(code: Code, identifier: u8, session: &str, secret: &[u8]) -> Vec<u8> {
    let mut p = Repr {
        code,
        identifier,
        authenticator: [0; 16],
        attributes: vec![
            Attribute::new(AttrType::AcctSessionId, session.as_bytes()),
            Attribute::new(AttrType::MessageAuthenticator, [0; 16]),
        ],
    }
    .to_bytes()
    .unwrap();
    crypto::sign_request(&mut p, secret).unwrap();
    p
}

async fn recv_within(socket: &UdpSocket, wait: Duration) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(wait, socket.recv(&mut buf)).await {
        Ok(Ok(n)) => Some(buf[..n].to_vec()),
        Ok(Err(e)) => panic!("recv: {e}"),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radclient_coa_is_acknowledged() {
    let server = start(true).await;
    let input = "User-Name = \"alice\"\nAcct-Session-Id = \"sess-1\"\n\
                 Filter-Id = \"gold\"\nMessage-Authenticator = 0x00\n";
    let (out, text) = radclient(server.addr, "coa", SECRET, input).await;
    // radclient checks the Response Authenticator and the
    // Message-Authenticator of the answer (see the negative control below)
    // before it reports "Received".
    assert!(text.contains("Received CoA-ACK"), "{text}");
    assert!(text.contains("Reply-Message = \"applied\""), "{text}");
    assert!(out.status.success(), "{text}");
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].kind, CoaKind::Coa);
    assert_eq!(seen[0].source.ip(), server.addr.ip());
    assert_eq!(
        seen[0].packet.find(AttrType::FilterId).unwrap().value,
        b"gold"
    );
    assert_eq!(
        seen[0].packet.find(AttrType::UserName).unwrap().value,
        b"alice"
    );
    let s = server.stats.snapshot();
    assert_eq!((s.requests, s.coa_acks), (1, 1));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radclient_disconnect_is_acknowledged() {
    let server = start(true).await;
    let input = "Acct-Session-Id = \"sess-2\"\nMessage-Authenticator = 0x00\n";
    let (out, text) = radclient(server.addr, "disconnect", SECRET, input).await;
    assert!(text.contains("Received Disconnect-ACK"), "{text}");
    assert!(out.status.success(), "{text}");
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].kind, CoaKind::Disconnect);
    assert_eq!(server.stats.snapshot().disconnect_acks, 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radclient_sees_nak_with_error_cause() {
    let server = start(true).await;
    let input = "Acct-Session-Id = \"missing\"\nMessage-Authenticator = 0x00\n";
    let (_, text) = radclient(server.addr, "coa", SECRET, input).await;
    assert!(text.contains("Received CoA-NAK"), "{text}");
    assert!(
        text.contains("Error-Cause = Session-Context-Not-Found"),
        "{text}"
    );
    let (_, text) = radclient(server.addr, "disconnect", SECRET, input).await;
    assert!(text.contains("Received Disconnect-NAK"), "{text}");
    assert!(
        text.contains("Error-Cause = Session-Context-Not-Found"),
        "{text}"
    );
    let s = server.stats.snapshot();
    assert_eq!((s.coa_naks, s.disconnect_naks), (1, 1));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radclient_with_wrong_secret_gets_no_answer() {
    let server = start(true).await;
    let input = "Acct-Session-Id = \"sess-3\"\nMessage-Authenticator = 0x00\n";
    let (out, text) = radclient(server.addr, "coa", "not-the-secret", input).await;
    assert!(text.contains("No reply from server"), "{text}");
    assert!(!text.contains("Received"), "{text}");
    assert!(!out.status.success());
    let s = server.stats.snapshot();
    assert!(s.dropped_bad_authenticator >= 1, "{s:?}");
    assert_eq!(s.dropped_bad_authenticator, s.requests, "{s:?}");
    assert!(server.seen.lock().unwrap().is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radclient_without_message_authenticator() {
    let input = "Acct-Session-Id = \"sess-4\"\n";
    // Required (the default): dropped, unanswered.
    let server = start(true).await;
    let (_, text) = radclient(server.addr, "coa", SECRET, input).await;
    assert!(text.contains("No reply from server"), "{text}");
    let s = server.stats.snapshot();
    assert!(s.dropped_bad_message_authenticator >= 1, "{s:?}");
    assert_eq!(s.dropped_bad_message_authenticator, s.requests, "{s:?}");
    server.stop().await;
    // Not required: answered, and the answer still carries one.
    let server = start(false).await;
    let (_, text) = radclient(server.addr, "coa", SECRET, input).await;
    assert!(text.contains("Received CoA-ACK"), "{text}");
    assert!(text.contains("Message-Authenticator"), "{text}");
    server.stop().await;
}

/// How the fake server below spoils its answer.
#[derive(Clone, Copy, Debug)]
enum Spoil {
    /// One bit of the Message-Authenticator flipped.
    FlippedBit,
    /// Message-Authenticator computed with a zero Authenticator field, as
    /// for the request, instead of the request's authenticator.
    ZeroVector,
}

/// Negative controls for the tests above: radclient refuses an answer whose
/// Response Authenticator is right but whose Message-Authenticator is not
/// computed with the request's authenticator (RFC 5176 3.3), so its
/// "Received CoA-ACK" vouches for both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radclient_refuses_a_bad_message_authenticator() {
    for spoil in [Spoil::FlippedBit, Spoil::ZeroVector] {
        let fake = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = fake.local_addr().unwrap();
        let responder = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let (n, from) = fake.recv_from(&mut buf).await.unwrap();
                let req = Repr::parse_bytes(&buf[..n]).unwrap();
                let mut p = Repr {
                    code: Code::CoaAck,
                    identifier: req.identifier,
                    authenticator: req.authenticator,
                    attributes: vec![Attribute::new(AttrType::MessageAuthenticator, [0; 16])],
                }
                .to_bytes()
                .unwrap();
                let len = p.len();
                match spoil {
                    Spoil::FlippedBit => {
                        crypto::sign_response(&mut p, &req.authenticator, SECRET.as_bytes())
                            .unwrap();
                        p[len - 1] ^= 1;
                    }
                    Spoil::ZeroVector => {
                        let ma =
                            crypto::message_authenticator(&p, &[0; 16], SECRET.as_bytes()).unwrap();
                        p[len - 16..].copy_from_slice(&ma);
                    }
                }
                let ra = crypto::packet_md5(&p, &req.authenticator, SECRET.as_bytes());
                p[4..20].copy_from_slice(&ra);
                fake.send_to(&p, from).await.unwrap();
            }
        });
        let input = "Acct-Session-Id = \"sess-5\"\nMessage-Authenticator = 0x00\n";
        let (out, text) = radclient(addr, "coa", SECRET, input).await;
        responder.abort();
        assert!(!text.contains("Received CoA-ACK"), "{spoil:?}: {text}");
        assert!(
            text.contains("invalid Message-Authenticator"),
            "{spoil:?}: {text}"
        );
        assert!(!out.status.success(), "{spoil:?}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_source_is_dropped() {
    let server = start(true).await;
    // Loopback answers for all of 127.0.0.0/8; 127.0.0.2 is not a client.
    let socket = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    socket.connect(server.addr).await.unwrap();
    let req = signed(Code::CoaRequest, 1, "sess-6", SECRET.as_bytes());
    socket.send(&req).await.unwrap();
    assert_eq!(recv_within(&socket, Duration::from_millis(500)).await, None);
    let s = server.stats.snapshot();
    assert_eq!((s.requests, s.dropped_unknown_client), (1, 1), "{s:?}");
    assert!(server.seen.lock().unwrap().is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_codes_and_garbage_are_dropped() {
    let server = start(true).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(server.addr).await.unwrap();
    socket
        .send(&signed(
            Code::AccountingRequest,
            1,
            "sess-7",
            SECRET.as_bytes(),
        ))
        .await
        .unwrap();
    socket.send(&[43, 1, 0, 40, 0]).await.unwrap();
    assert_eq!(recv_within(&socket, Duration::from_millis(500)).await, None);
    let s = server.stats.snapshot();
    assert_eq!(s.dropped_unsupported_code, 1, "{s:?}");
    assert_eq!(s.dropped_malformed, 1, "{s:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retransmission_is_answered_from_cache() {
    let server = start(true).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(server.addr).await.unwrap();
    let req = signed(Code::CoaRequest, 77, "sess-8", SECRET.as_bytes());
    socket.send(&req).await.unwrap();
    let first = recv_within(&socket, Duration::from_secs(2)).await.unwrap();
    let request_auth: [u8; 16] = req[4..20].try_into().unwrap();
    crypto::verify_response(&first, &request_auth, SECRET.as_bytes(), true).unwrap();
    assert_eq!(Repr::parse_bytes(&first).unwrap().code, Code::CoaAck);

    socket.send(&req).await.unwrap();
    let again = recv_within(&socket, Duration::from_secs(2)).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(server.seen.lock().unwrap().len(), 1, "handler called once");
    let s = server.stats.snapshot();
    assert_eq!((s.requests, s.coa_acks, s.duplicates_from_cache), (2, 1, 1));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_while_handling_is_dropped_and_slow_requests_do_not_block() {
    let server = start(true).await;
    let slow = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    slow.connect(server.addr).await.unwrap();
    let fast = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    fast.connect(server.addr).await.unwrap();

    let slow_req = signed(Code::CoaRequest, 1, "slow", SECRET.as_bytes());
    let started = Instant::now();
    slow.send(&slow_req).await.unwrap();
    slow.send(&slow_req).await.unwrap();
    let fast_req = signed(Code::DisconnectRequest, 1, "fast", SECRET.as_bytes());
    fast.send(&fast_req).await.unwrap();

    // The fast one is answered while the slow handler sleeps.
    let fast_reply = recv_within(&fast, Duration::from_millis(800)).await;
    assert!(fast_reply.is_some(), "fast request waited for the slow one");
    assert!(started.elapsed() < Duration::from_millis(800));

    let slow_reply = recv_within(&slow, Duration::from_secs(3)).await.unwrap();
    assert_eq!(Repr::parse_bytes(&slow_reply).unwrap().code, Code::CoaAck);
    assert!(started.elapsed() >= Duration::from_secs(1));
    // One answer for the two copies.
    assert_eq!(recv_within(&slow, Duration::from_millis(300)).await, None);
    let s = server.stats.snapshot();
    assert_eq!(s.duplicates_in_progress, 1, "{s:?}");
    assert_eq!(server.seen.lock().unwrap().len(), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_running_handlers() {
    let server = start(true).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(server.addr).await.unwrap();
    socket
        .send(&signed(Code::CoaRequest, 5, "slow", SECRET.as_bytes()))
        .await
        .unwrap();
    // Let the request reach the handler, then stop: the answer still goes out.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stats = server.stats.clone();
    server.stop().await;
    assert!(
        recv_within(&socket, Duration::from_millis(100))
            .await
            .is_some()
    );
    assert_eq!(stats.snapshot().coa_acks, 1);
}
