use std::net::SocketAddrV4;
use std::time::Duration;

use tokio::sync::watch;

use super::*;
use crate::client::{Client, ClientConfig, ServerConfig};
use crate::radius::{Code, Repr, acct_status, crypto};

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!(
            "vbng-spool-{name}-{}-{}",
            std::process::id(),
            unix_ms()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }

    fn config(&self) -> SpoolConfig {
        SpoolConfig::new(self.0.join("acct.spool"))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn record(session: &str) -> Vec<Attribute> {
    vec![
        Attribute::u32(AttrType::AcctStatusType, acct_status::START),
        Attribute::new(AttrType::AcctSessionId, session.as_bytes()),
        Attribute::vendor_u32(32473, 1, 10_000),
    ]
}

fn sessions(spool: &Spool) -> Vec<String> {
    spool
        .inner
        .shared
        .state()
        .pending
        .iter()
        .map(|r| {
            let a = r
                .attributes
                .iter()
                .find(|a| a.typ == AttrType::AcctSessionId)
                .unwrap();
            String::from_utf8(a.value.clone()).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn records_survive_reopen_in_order() {
    let dir = TempDir::new("reopen");
    let spool = Spool::open(dir.config()).unwrap();
    for i in 0..5 {
        assert_eq!(spool.push(record(&format!("s{i}"))).await.unwrap(), i);
    }
    assert_eq!(spool.pending(), 5);
    // A crash: the handle goes away without any shutdown.
    drop(spool);
    let spool = Spool::open(dir.config()).unwrap();
    assert_eq!(sessions(&spool), ["s0", "s1", "s2", "s3", "s4"]);
    let head = spool.inner.shared.state().pending[0].clone();
    assert_eq!(head.attributes, record("s0"), "attributes kept opaque");
    // Numbers continue after the replayed ones.
    assert_eq!(spool.push(record("s5")).await.unwrap(), 5);
}

#[tokio::test]
async fn acknowledged_records_do_not_come_back() {
    let dir = TempDir::new("ack");
    let spool = Spool::open(dir.config()).unwrap();
    for i in 0..4 {
        spool.push(record(&format!("s{i}"))).await.unwrap();
    }
    spool.acknowledge(0);
    spool.acknowledge(1);
    // Not the head: ignored.
    spool.acknowledge(3);
    assert_eq!(sessions(&spool), ["s2", "s3"]);
    drop(spool);
    let text = std::fs::read_to_string(dir.config().path).unwrap();
    assert_eq!(text.lines().filter(|l| l.starts_with("A ")).count(), 2);
    let spool = Spool::open(dir.config()).unwrap();
    assert_eq!(sessions(&spool), ["s2", "s3"]);
    // Reopening rewrote the file with the pending records only.
    let text = std::fs::read_to_string(dir.config().path).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.lines().all(|l| !l.starts_with("A ")));
    // Once all are acknowledged and the file rewritten, numbers still rise.
    spool.acknowledge(2);
    spool.acknowledge(3);
    drop(spool);
    let spool = Spool::open(dir.config()).unwrap();
    assert_eq!(spool.pending(), 0);
    assert_eq!(spool.push(record("s4")).await.unwrap(), 4);
}

#[tokio::test]
async fn torn_tail_is_tolerated_and_removed() {
    let dir = TempDir::new("torn");
    let path = dir.config().path;
    let spool = Spool::open(dir.config()).unwrap();
    spool.push(record("kept")).await.unwrap();
    drop(spool);
    // Half of a record line, as a crash in mid-write leaves it.
    let line = format::record_line(&Record {
        seq: 1,
        pushed_unix_ms: 1,
        attributes: record("torn"),
    });
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut f, &line.as_bytes()[..line.len() / 2]).unwrap();
    drop(f);
    let spool = Spool::open(dir.config()).unwrap();
    assert_eq!(sessions(&spool), ["kept"]);
    assert!(std::fs::read_to_string(&path).unwrap().ends_with('\n'));
    spool.push(record("after")).await.unwrap();
    drop(spool);
    let spool = Spool::open(dir.config()).unwrap();
    assert_eq!(sessions(&spool), ["kept", "after"]);
}

#[test]
fn corruption_is_an_error_naming_file_and_line() {
    let dir = TempDir::new("corrupt");
    let path = dir.config().path;
    let good = format::record_line(&Record {
        seq: 0,
        pushed_unix_ms: 1,
        attributes: record("a"),
    });
    let text = format!(
        "{}{}{}",
        format::header_line(0),
        good,
        good.replace("=61", "=62")
    );
    std::fs::write(&path, &text).unwrap();
    let e = Spool::open(dir.config()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, SpoolError::Corrupt { line: 3, .. }), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("line 3"), "{msg}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "left untouched"
    );

    // Not a spool file at all.
    std::fs::write(&path, "hello\n").unwrap();
    let e = Spool::open(dir.config()).unwrap_err();
    assert!(matches!(e, SpoolError::Corrupt { line: 1, .. }), "{e}");
}

#[tokio::test]
async fn concurrent_pushes_share_fsyncs() {
    let dir = TempDir::new("batch");
    let spool = Spool::open(dir.config()).unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let spool = spool.clone();
            tokio::spawn(async move { spool.push(record(&format!("s{i}"))).await })
        })
        .collect();
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (0..200).collect::<Vec<_>>());
    let s = spool.stats();
    assert_eq!((s.pushed, s.pending), (200, 200));
    assert!(s.fsyncs < 200, "{s:?}");
    // Pending order is sequence order.
    let order: Vec<u64> = spool
        .inner
        .shared
        .state()
        .pending
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(order, (0..200).collect::<Vec<_>>());
}

#[tokio::test]
async fn compacts_once_everything_is_acknowledged() {
    let dir = TempDir::new("compact");
    let config = SpoolConfig {
        compact_bytes: 500,
        ..dir.config()
    };
    let spool = Spool::open(config.clone()).unwrap();
    for i in 0..10 {
        spool.push(record(&format!("s{i}"))).await.unwrap();
    }
    for seq in 0..9 {
        spool.acknowledge(seq);
    }
    // One record left unacknowledged: no compaction yet.
    spool.push(record("flush")).await.unwrap();
    assert_eq!(spool.stats().compactions, 1, "only the one at open");
    spool.acknowledge(9);
    spool.acknowledge(10);
    // The acks are written with the next batch; wait for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while spool.stats().compactions < 2 {
        assert!(std::time::Instant::now() < deadline, "{:?}", spool.stats());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let text = std::fs::read_to_string(&config.path).unwrap();
    assert_eq!(text, format::header_line(11));
    assert_eq!(spool.push(record("next")).await.unwrap(), 11);
    drop(spool);
    let spool = Spool::open(config).unwrap();
    assert_eq!(sessions(&spool), ["next"]);
    assert_eq!(spool.inner.shared.state().pending[0].seq, 11);
}

#[tokio::test]
async fn one_spool_per_file() {
    let dir = TempDir::new("lock");
    let spool = Spool::open(dir.config()).unwrap();
    let e = Spool::open(dir.config()).unwrap_err();
    assert!(matches!(e, SpoolError::Locked { .. }), "{e}");
    drop(spool);
    Spool::open(dir.config()).unwrap();
}

#[tokio::test]
async fn unsendable_records_are_refused() {
    let dir = TempDir::new("invalid");
    let spool = Spool::open(dir.config()).unwrap();
    let no_status = vec![Attribute::new(AttrType::AcctSessionId, *b"x")];
    assert!(matches!(
        spool.push(no_status).await,
        Err(SpoolError::InvalidRecord(_))
    ));
    let mut long = record("x");
    long.push(Attribute::new(AttrType::Class, vec![0; 254]));
    assert!(spool.push(long).await.is_err());
    let mut big = record("x");
    big.extend((0..16).map(|_| Attribute::new(AttrType::Class, vec![0; 253])));
    let e = spool.push(big).await.unwrap_err();
    assert!(e.to_string().contains("at most 4096"), "{e}");
    assert_eq!(spool.stats().pushed, 0);
}

#[test]
fn acct_delay_time_is_added_or_raised() {
    let r = Record {
        seq: 0,
        pushed_unix_ms: 10_000,
        attributes: record("s"),
    };
    let req = deliver::request_for(&r, 12_999);
    assert_eq!(req.code, Code::AccountingRequest);
    assert_eq!(&req.attributes[..3], &record("s")[..]);
    assert_eq!(
        req.attributes[3],
        Attribute::u32(AttrType::AcctDelayTime, 2)
    );
    let mut with = record("s");
    with.push(Attribute::u32(AttrType::AcctDelayTime, 5));
    let r = Record {
        attributes: with,
        ..r
    };
    let req = deliver::request_for(&r, 13_000);
    assert_eq!(req.attributes.len(), 4);
    assert_eq!(
        req.attributes[3],
        Attribute::u32(AttrType::AcctDelayTime, 8)
    );
    // A clock that went backwards adds nothing.
    let req = deliver::request_for(&r, 0);
    assert_eq!(
        req.attributes[3],
        Attribute::u32(AttrType::AcctDelayTime, 5)
    );
}

const SECRET: &[u8] = b"spool-secret";

/// A fake accounting server: ignores the first `drop_first` requests,
/// answers the rest with a signed Accounting-Response and reports each
/// answered request.
async fn fake_server(
    drop_first: usize,
) -> (SocketAddrV4, tokio::sync::mpsc::UnboundedReceiver<Repr>) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let std::net::SocketAddr::V4(addr) = socket.local_addr().unwrap() else {
        unreachable!()
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        let mut seen = 0;
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            seen += 1;
            if seen <= drop_first {
                continue;
            }
            let request = Repr::parse_bytes(&buf[..n]).unwrap();
            let mut p = Repr {
                code: Code::AccountingResponse,
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
            let _ = socket.send_to(&p, peer).await;
            if tx.send(request).is_err() {
                return;
            }
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn delivers_in_order_retrying_the_head() {
    let dir = TempDir::new("deliver");
    let config = SpoolConfig {
        retry_interval: Duration::from_millis(50),
        ..dir.config()
    };
    let spool = Spool::open(config).unwrap();
    for i in 0..5 {
        spool.push(record(&format!("s{i}"))).await.unwrap();
    }
    // Two sends of the head go unanswered (one retransmission each).
    let (addr, mut answered) = fake_server(4).await;
    let client = Client::new(
        vec![ServerConfig {
            addr: addr.into(),
            secret: SECRET.to_vec(),
        }],
        ClientConfig {
            timeout: Duration::from_millis(50),
            retries: 1,
            ..ClientConfig::default()
        },
    )
    .await
    .unwrap();
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn({
        let spool = spool.clone();
        async move { spool.deliver(Arc::new(client), shutdown).await }
    });
    let mut got = Vec::new();
    for _ in 0..5 {
        let r = tokio::time::timeout(Duration::from_secs(5), answered.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.code, Code::AccountingRequest);
        assert!(r.find(AttrType::AcctDelayTime).is_some());
        assert!(r.find(AttrType::MessageAuthenticator).is_some());
        got.push(
            String::from_utf8(r.find(AttrType::AcctSessionId).unwrap().value.clone()).unwrap(),
        );
    }
    assert_eq!(got, ["s0", "s1", "s2", "s3", "s4"]);
    // Pushed while delivery runs: picked up without polling.
    spool.push(record("late")).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), answered.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.find(AttrType::AcctSessionId).unwrap().value, b"late");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while spool.pending() > 0 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let s = spool.stats();
    assert_eq!(
        (s.delivered, s.send_failures, s.pending),
        (6, 2, 0),
        "{s:?}"
    );
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    drop(spool);
    assert_eq!(Spool::open(dir.config()).unwrap().pending(), 0);
}

#[tokio::test]
async fn deliver_stops_when_idle_or_when_the_sender_is_gone() {
    let dir = TempDir::new("stop");
    let spool = Spool::open(dir.config()).unwrap();
    let (addr, _answered) = fake_server(0).await;
    let client = Arc::new(
        Client::new(
            vec![ServerConfig {
                addr: addr.into(),
                secret: SECRET.to_vec(),
            }],
            ClientConfig::default(),
        )
        .await
        .unwrap(),
    );
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn({
        let (spool, client) = (spool.clone(), client.clone());
        async move { spool.deliver(client, shutdown).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .unwrap()
        .unwrap();
    let (stop, shutdown) = watch::channel(false);
    drop(stop);
    tokio::time::timeout(Duration::from_secs(2), spool.deliver(client, shutdown))
        .await
        .unwrap();
}

#[test]
fn a_failed_append_fails_the_pushes_and_keeps_the_acks() {
    let dir = TempDir::new("fail");
    let path = dir.config().path;
    std::fs::write(&path, format::header_line(0)).unwrap();
    let shared = Arc::new(Shared::default());
    let mut writer = writer::Writer {
        path: path.clone(),
        // Read-only: every write fails, and so does cutting the file back.
        file: File::open(&path).unwrap(),
        len: format::header_line(0).len() as u64,
        unacked: 1,
        next_seq: 1,
        compact_bytes: 0,
        shared: shared.clone(),
        retry_acks: Vec::new(),
        broken: None,
        _lock: File::open(&path).unwrap(),
    };
    let (done, mut rx) = oneshot::channel();
    let record = Record {
        seq: 1,
        pushed_unix_ms: 0,
        attributes: record("x"),
    };
    writer.batch(vec![Job::Ack(0), Job::Push { record, done }]);
    assert!(rx.try_recv().unwrap().is_err());
    assert_eq!(writer.retry_acks, [0], "kept for the next batch");
    assert!(writer.broken.is_some());
    assert_eq!(shared.state().pending.len(), 0);
    assert_eq!(shared.fsyncs.load(Ordering::Relaxed), 0);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format::header_line(0)
    );
}
