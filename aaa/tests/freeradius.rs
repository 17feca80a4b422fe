//! Integration tests against a real FreeRADIUS 3.2 started in the foreground
//! from a copy of /etc/freeradius/3.0, on loopback ports of our own.

use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vbng_aaa::client::{Client, ClientConfig, Request, ServerConfig};
use vbng_aaa::radius::{AttrType, Attribute, Code, Repr, acct_status, crypto};

const FREERADIUS: &str = "/usr/sbin/freeradius";
const SECRET: &[u8] = b"vbng-test-secret";

/// A FreeRADIUS process and its config directory; both go away on drop,
/// also when an assertion fails.
struct FreeRadius {
    child: Child,
    dir: PathBuf,
    auth: SocketAddr,
    acct: SocketAddr,
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("VBNG_KEEP_RADDB").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn free_port() -> u16 {
    StdUdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn edit(path: &Path, f: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::fs::write(path, f(text)).unwrap();
}

/// Removes every top-level `listen { ... }` block of a virtual server file.
fn strip_listen_blocks(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("\nlisten {") {
        out.push_str(&rest[..start]);
        let mut depth = 0;
        let mut end = start;
        for (i, c) in rest[start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = start + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

const USERS: &str = r#"pap-user	Cleartext-Password := "pap-pass"
	Reply-Message := "hello pap", Session-Timeout := 3600

chap-user	Cleartext-Password := "chap-pass"
	Reply-Message := "hello chap"

reject-user	Auth-Type := Reject
	Reply-Message := "go away"

"#;

/// FreeRADIUS 3.2.1 does not sign replies by itself; an (empty)
/// Message-Authenticator in the reply list makes it compute one.
const SIGN_REPLY: &str = "\n\tupdate reply {\n\t\tMessage-Authenticator := 0x00\n\t}\n";

impl FreeRadius {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "vbng-aaa-raddb-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let status = Command::new("cp")
            .arg("-a")
            .arg("/etc/freeradius/3.0")
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "copying /etc/freeradius/3.0 failed");
        let d = dir.display().to_string();
        let (auth_port, acct_port, inner_port) = (free_port(), free_port(), free_port());

        edit(&dir.join("radiusd.conf"), |t| {
            t.lines()
                .map(|l| {
                    let s = l.trim();
                    if s.starts_with("raddbdir =") {
                        format!("raddbdir = {d}")
                    } else if s.starts_with("logdir =") {
                        format!("logdir = {d}/log")
                    } else if s.starts_with("run_dir =") {
                        format!("run_dir = {d}/run")
                    } else if s == "user = freerad" || s == "group = freerad" {
                        format!("#{s}")
                    } else if s.starts_with("reject_delay =") {
                        "\treject_delay = 0".to_string()
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        });
        std::fs::create_dir_all(dir.join("log/radacct")).unwrap();
        std::fs::create_dir_all(dir.join("run")).unwrap();
        std::fs::write(
            dir.join("clients.conf"),
            format!(
                "client vbng-test {{\n\tipaddr = 127.0.0.1\n\tsecret = {}\n\trequire_message_authenticator = yes\n}}\n",
                String::from_utf8_lossy(SECRET)
            ),
        )
        .unwrap();
        edit(&dir.join("mods-config/files/authorize"), |t| {
            format!("{USERS}{t}")
        });
        edit(&dir.join("sites-enabled/inner-tunnel"), |t| {
            t.replace("port = 18120", &format!("port = {inner_port}"))
        });
        edit(&dir.join("sites-enabled/default"), |t| {
            let listen = format!(
                "\nserver default {{\nlisten {{\n\ttype = auth\n\tipaddr = 127.0.0.1\n\tport = {auth_port}\n}}\n\
                 listen {{\n\ttype = acct\n\tipaddr = 127.0.0.1\n\tport = {acct_port}\n}}\n"
            );
            strip_listen_blocks(&t)
                .replacen("\nserver default {\n", &listen, 1)
                .replacen("\npost-auth {\n", &format!("\npost-auth {{{SIGN_REPLY}"), 1)
                .replacen(
                    "Post-Auth-Type REJECT {\n",
                    &format!("Post-Auth-Type REJECT {{{SIGN_REPLY}"),
                    1,
                )
                .replacen(
                    "\naccounting {\n",
                    &format!("\naccounting {{{SIGN_REPLY}"),
                    1,
                )
        });

        let log = std::fs::File::create(dir.join("radiusd.out")).unwrap();
        let child = Command::new(FREERADIUS)
            .arg("-X")
            .arg("-d")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn freeradius");
        FreeRadius {
            child,
            dir,
            auth: ([127, 0, 0, 1], auth_port).into(),
            acct: ([127, 0, 0, 1], acct_port).into(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("radiusd.out")).unwrap_or_default()
    }

    /// Polls with Access-Requests until the server answers.
    async fn wait_ready(&mut self) {
        let quick = ClientConfig {
            timeout: Duration::from_millis(200),
            retries: 0,
            ..Default::default()
        };
        let client = Client::new(vec![self.server(self.auth)], quick)
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("freeradius exited with {status}:\n{}", self.log());
            }
            if client.send(&Request::pap("probe", b"x")).await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "freeradius did not answer within 20 s:\n{}",
                self.log()
            );
        }
    }

    fn server(&self, addr: SocketAddr) -> ServerConfig {
        ServerConfig {
            addr,
            secret: SECRET.to_vec(),
        }
    }
}

fn config() -> ClientConfig {
    ClientConfig {
        timeout: Duration::from_millis(300),
        max_timeout: Duration::from_secs(1),
        retries: 1,
        dead_time: Duration::from_secs(30),
        require_message_authenticator: true,
    }
}

fn text(packet: &Repr, typ: AttrType) -> Option<String> {
    packet
        .find(typ)
        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
}

#[tokio::test]
async fn against_freeradius() {
    if !Path::new(FREERADIUS).exists() {
        println!("SKIPPED: freeradius not installed");
        return;
    }
    let mut server = FreeRadius::start();
    server.wait_ready().await;

    let auth = Client::new(vec![server.server(server.auth)], config())
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
    let acct = Client::new(vec![server.server(server.acct)], config())
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
    let detail_dir = server.dir.join("log/radacct/127.0.0.1");
    let detail: String = std::fs::read_dir(&detail_dir)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", detail_dir.display(), server.log()))
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(detail.contains("Acct-Status-Type = Start"), "{detail}");
    assert!(detail.contains("Acct-Status-Type = Stop"), "{detail}");
    assert!(
        detail.contains(&format!("Acct-Session-Id = \"{session}\"")),
        "{detail}"
    );
    assert!(detail.contains("Acct-Input-Octets = 123456"), "{detail}");

    // Failover: the first server is a socket that never answers.
    let silent = StdUdpSocket::bind("127.0.0.1:0").unwrap();
    let group = vec![
        server.server(silent.local_addr().unwrap()),
        server.server(server.auth),
    ];
    let failover = Client::new(group, config()).await.unwrap();
    let t0 = Instant::now();
    let r = failover
        .send(&Request::pap("pap-user", b"pap-pass"))
        .await
        .unwrap();
    assert_eq!(r.packet.code, Code::AccessAccept);
    assert_eq!(r.server, server.auth);
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
    assert_eq!(r.server, server.auth);
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
