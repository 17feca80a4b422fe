//! The accounting spool against a real FreeRADIUS 3.2: records pushed while
//! the server is down are delivered once it is up, each exactly once and in
//! order, and leave the spool.
//!
//! The FreeRADIUS set-up is a trimmed copy of the one in `freeradius.rs`
//! (a copy of /etc/freeradius/3.0 with our own listeners and clients, and
//! signed replies), started in the foreground on ports of our own.

use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use vbng_aaa::client::{Client, ClientConfig, ServerConfig};
use vbng_aaa::radius::{AttrType, Attribute, acct_status};
use vbng_aaa::spool::{Spool, SpoolConfig};

const FREERADIUS: &str = "/usr/sbin/freeradius";
const SECRET: &[u8] = b"vbng-spool-secret";

/// A directory removed on drop (unless VBNG_KEEP_RADDB is set).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!(
            "vbng-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("VBNG_KEEP_RADDB").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A FreeRADIUS process, killed on drop (also when an assertion fails).
struct FreeRadius {
    child: Child,
    dir: TempDir,
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
        let mut end = rest.len();
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

/// FreeRADIUS 3.2.1 signs a reply only when it holds a Message-Authenticator.
const SIGN_REPLY: &str = "\n\tupdate reply {\n\t\tMessage-Authenticator := 0x00\n\t}\n";

impl FreeRadius {
    /// Starts FreeRADIUS (`-X`) with accounting on 127.0.0.1:`acct_port`.
    fn start(acct_port: u16) -> FreeRadius {
        let dir = TempDir::new("spool-raddb");
        let status = Command::new("cp")
            .arg("-a")
            .arg("/etc/freeradius/3.0")
            .arg(&dir.0)
            .status()
            .unwrap();
        assert!(status.success(), "copying /etc/freeradius/3.0 failed");
        let d = dir.0.display().to_string();
        let (auth_port, inner_port) = (free_port(), free_port());
        edit(&dir.0.join("radiusd.conf"), |t| {
            t.lines()
                .map(|l| match l.trim() {
                    s if s.starts_with("raddbdir =") => format!("raddbdir = {d}"),
                    s if s.starts_with("logdir =") => format!("logdir = {d}/log"),
                    s if s.starts_with("run_dir =") => format!("run_dir = {d}/run"),
                    s @ ("user = freerad" | "group = freerad") => format!("#{s}"),
                    _ => l.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n")
        });
        std::fs::create_dir_all(dir.0.join("log/radacct")).unwrap();
        std::fs::create_dir_all(dir.0.join("run")).unwrap();
        std::fs::write(
            dir.0.join("clients.conf"),
            format!(
                "client vbng-spool {{\n\tipaddr = 127.0.0.1\n\tsecret = {}\n\trequire_message_authenticator = yes\n}}\n",
                String::from_utf8_lossy(SECRET)
            ),
        )
        .unwrap();
        edit(&dir.0.join("sites-enabled/inner-tunnel"), |t| {
            t.replace("port = 18120", &format!("port = {inner_port}"))
        });
        edit(&dir.0.join("sites-enabled/default"), |t| {
            let listen = format!(
                "\nserver default {{\nlisten {{\n\ttype = auth\n\tipaddr = 127.0.0.1\n\tport = {auth_port}\n}}\n\
                 listen {{\n\ttype = acct\n\tipaddr = 127.0.0.1\n\tport = {acct_port}\n}}\n"
            );
            strip_listen_blocks(&t)
                .replacen("\nserver default {\n", &listen, 1)
                .replacen(
                    "\naccounting {\n",
                    &format!("\naccounting {{{SIGN_REPLY}"),
                    1,
                )
        });
        let log = std::fs::File::create(dir.0.join("radiusd.out")).unwrap();
        let child = Command::new(FREERADIUS)
            .arg("-X")
            .arg("-d")
            .arg(&dir.0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn freeradius");
        FreeRadius { child, dir }
    }

    fn log(&mut self) -> String {
        if let Ok(Some(status)) = self.child.try_wait() {
            return format!(
                "(freeradius exited: {status})\n{}",
                std::fs::read_to_string(self.dir.0.join("radiusd.out")).unwrap_or_default()
            );
        }
        std::fs::read_to_string(self.dir.0.join("radiusd.out")).unwrap_or_default()
    }

    /// The records of the detail files, in file order: one list of
    /// (attribute, value) per record.
    fn detail_records(&self) -> Vec<Vec<(String, String)>> {
        let dir = self.dir.0.join("log/radacct/127.0.0.1");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        let mut records = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
                records.push(
                    block
                        .lines()
                        .skip(1)
                        .filter_map(|l| l.trim().split_once(" = "))
                        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
                        .collect(),
                );
            }
        }
        records
    }
}

fn value<'a>(record: &'a [(String, String)], name: &str) -> Option<&'a str> {
    record
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Twenty records: four per session (Start, two Interim-Updates, Stop),
/// each with a Class (opaque octets) naming its position.
fn records() -> Vec<(String, Vec<Attribute>)> {
    (0..20u32)
        .map(|i| {
            let session = format!("spool-{:02}", i / 4);
            let status = match i % 4 {
                0 => acct_status::START,
                3 => acct_status::STOP,
                _ => acct_status::INTERIM_UPDATE,
            };
            let attributes = vec![
                Attribute::u32(AttrType::AcctStatusType, status),
                Attribute::new(AttrType::AcctSessionId, session.as_bytes()),
                Attribute::new(AttrType::UserName, *b"pap-user"),
                Attribute::new(AttrType::NasIdentifier, *b"vbng-spool-test"),
                Attribute::u32(AttrType::AcctSessionTime, i),
                Attribute::new(AttrType::Class, vec![0xc0, i as u8]),
            ];
            (session, attributes)
        })
        .collect()
}

#[tokio::test]
async fn outage_then_delivery_exactly_once_in_order() {
    if !Path::new(FREERADIUS).exists() {
        println!("SKIPPED: freeradius not installed");
        return;
    }
    let spool_dir = TempDir::new("spool-it");
    std::fs::create_dir_all(&spool_dir.0).unwrap();
    let config = SpoolConfig {
        retry_interval: Duration::from_millis(200),
        ..SpoolConfig::new(spool_dir.0.join("acct.spool"))
    };
    let acct_port = free_port();
    let acct: SocketAddr = ([127, 0, 0, 1], acct_port).into();
    // 300 + 600 + 1200 ms per send: a reply slowed by the server's
    // start-up still arrives within one send, so no record goes out twice.
    let client_config = ClientConfig {
        timeout: Duration::from_millis(300),
        max_timeout: Duration::from_millis(1200),
        retries: 2,
        ..ClientConfig::default()
    };
    let client = Arc::new(
        Client::new(
            vec![ServerConfig {
                addr: acct,
                secret: SECRET.to_vec(),
            }],
            client_config,
        )
        .await
        .unwrap(),
    );

    let spool = Spool::open(config.clone()).unwrap();
    let (stop, shutdown) = watch::channel(false);
    let delivery = tokio::spawn({
        let (spool, client) = (spool.clone(), client.clone());
        async move { spool.deliver(client, shutdown).await }
    });

    // The server is down: every record is pushed and held.
    let expected = records();
    for (i, (_, attributes)) in expected.iter().enumerate() {
        assert_eq!(spool.push(attributes.clone()).await.unwrap(), i as u64);
    }
    let outage = Instant::now();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let s = spool.stats();
    assert_eq!((s.pushed, s.pending, s.delivered), (20, 20, 0), "{s:?}");
    assert!(s.send_failures >= 1, "{s:?}");

    // The server comes up: everything drains.
    let mut server = FreeRadius::start(acct_port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while spool.pending() > 0 {
        assert!(
            Instant::now() < deadline,
            "{:?} still pending after 30 s\n{}",
            spool.stats(),
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained = outage.elapsed();
    let s = spool.stats();
    assert_eq!((s.delivered, s.pending), (20, 0), "{s:?}");

    let detail = server.detail_records();
    let got: Vec<(String, String, String)> = detail
        .iter()
        .map(|r| {
            (
                value(r, "Acct-Session-Id").unwrap_or("?").to_string(),
                value(r, "Acct-Status-Type").unwrap_or("?").to_string(),
                value(r, "Acct-Session-Time").unwrap_or("?").to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String, String)> = (0..20)
        .map(|i| {
            let status = match i % 4 {
                0 => "Start",
                3 => "Stop",
                _ => "Interim-Update",
            };
            (format!("spool-{:02}", i / 4), status.into(), i.to_string())
        })
        .collect();
    assert_eq!(got, want, "each record exactly once, in push order");
    // Opaque octets arrive unchanged; the delay covers the outage.
    assert_eq!(value(&detail[7], "Class"), Some("0xc007"));
    let first_delay: u32 = value(&detail[0], "Acct-Delay-Time")
        .unwrap()
        .parse()
        .unwrap();
    assert!(first_delay >= 2, "Acct-Delay-Time {first_delay}");
    assert!(
        detail
            .iter()
            .all(|r| value(r, "Message-Authenticator").is_some()),
        "every request signed"
    );
    println!(
        "outage {:.1} s, drained {:.1} s after the outage began, {} send failures",
        3.0,
        drained.as_secs_f64(),
        s.send_failures
    );

    // Delivery stops; after a restart of the spool nothing comes back and
    // nothing is sent again.
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), delivery)
        .await
        .unwrap()
        .unwrap();
    drop(spool);
    let spool = Spool::open(config).unwrap();
    assert_eq!(spool.pending(), 0);
    let (stop, shutdown) = watch::channel(false);
    let delivery = tokio::spawn({
        let spool = spool.clone();
        async move { spool.deliver(client, shutdown).await }
    });
    spool
        .push(records()[0].1.clone())
        .await
        .map(|seq| assert_eq!(seq, 20, "numbers continue after a restart"))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while spool.pending() > 0 {
        assert!(Instant::now() < deadline, "{}", server.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.detail_records().len(), 21);
    stop.send(true).unwrap();
    delivery.await.unwrap();
}

/// Push figures (`cargo test --release -p vbng-aaa --test spool -- --ignored
/// --nocapture`): one push at a time, then 1,000 concurrent pushes sharing
/// fsyncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, prints figures"]
async fn push_figures() {
    let dir = TempDir::new("spool-figures");
    std::fs::create_dir_all(&dir.0).unwrap();
    let spool = Spool::open(SpoolConfig::new(dir.0.join("acct.spool"))).unwrap();
    let record = records()[0].1.clone();
    let n = 200;
    let t0 = Instant::now();
    for _ in 0..n {
        spool.push(record.clone()).await.unwrap();
    }
    let serial = t0.elapsed() / n;
    let before = spool.stats();
    let n = 1000;
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (spool, record) = (spool.clone(), record.clone());
            tokio::spawn(async move { spool.push(record).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = t0.elapsed();
    let fsyncs = spool.stats().fsyncs - before.fsyncs;
    println!(
        "serial push: {:.0} us each; {n} concurrent pushes: {:.1} ms, {:.0} pushes/s, {fsyncs} fsyncs",
        serial.as_secs_f64() * 1e6,
        elapsed.as_secs_f64() * 1e3,
        f64::from(n) / elapsed.as_secs_f64()
    );
}
