//! `vbng-perf radius`: PAP authentications per second through vbng's RADIUS client against
//! a real FreeRADIUS, beside what FreeRADIUS answers to a minimal raw blaster.
//!
//! The server is the project's FreeRADIUS started by [`vbng_aaa::lab::FreeRadius`]
//! (threaded, `-f`, on free loopback ports). Two runs of the same size and concurrency:
//!
//! 1. **Baseline**, [`blast`]: every Access-Request is encoded and signed before the clock
//!    starts; one thread per UDP socket keeps its share of the window full, sending the next
//!    pre-encoded packet of an identifier when that identifier's answer arrives, and checks
//!    nothing but the identifier. This is what FreeRADIUS alone answers per second.
//! 2. **Client**, [`client_run`]: `concurrency` tasks on a current-thread tokio runtime
//!    call [`Client::send`] with `Request::pap` in a loop: encoding, password hiding,
//!    Message-Authenticator, identifier windows, timers, response verification and parsing.
//!
//! CPU per request is `getrusage(RUSAGE_SELF)` user + system time over a run divided by its
//! requests: the client's own cost (FreeRADIUS is another process), kernel UDP work
//! included.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vbng_aaa::client::{Client, ClientConfig, Request};
use vbng_aaa::lab::{FreeRadius, FreeRadiusOptions};
use vbng_aaa::radius::{AttrType, Attribute, Code, Repr, crypto};

use crate::report::Figure;
use crate::timing::Machine;

/// The user every request authenticates (an Access-Accept from the project's users file).
pub const USER: &str = "pap-user";
/// Its password.
pub const PASSWORD: &[u8] = b"pap-pass";

/// What to run.
#[derive(Debug, Clone)]
pub struct RadiusArgs {
    /// Requests per run (baseline and client each).
    pub requests: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Run FreeRADIUS with `-X` (single-threaded, slow; for debugging).
    pub debug: bool,
}

/// One run's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunResult {
    /// Requests answered.
    pub answered: u64,
    /// Requests not answered in time (baseline) or that failed (client).
    pub failed: u64,
    /// Wall-clock duration.
    pub elapsed: Duration,
    /// User + system CPU of this process over the run.
    pub cpu: Duration,
}

impl RunResult {
    /// Answers per second.
    pub fn rate(&self) -> f64 {
        self.answered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// CPU microseconds per answered request.
    pub fn cpu_us_per_request(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.answered.max(1) as f64
    }
}

/// User + system CPU time of this process (all threads).
pub fn process_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable rusage; getrusage only writes into it.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return Duration::ZERO;
    }
    // SAFETY: getrusage returned 0, so it filled the struct (and zeroed() made it valid
    // before that anyway: rusage is plain integers).
    let usage = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Sockets for `concurrency` requests in flight: at least 4, each with at most 128 of its
/// 256 identifiers in flight, so that an identifier is not reused while FreeRADIUS may
/// still be finishing its previous request (it drops the new one then: "conflicting
/// packet").
pub fn sockets_for(concurrency: usize) -> usize {
    concurrency.div_ceil(128).max(4)
}

/// Encodes and signs one PAP Access-Request the way vbng's client does.
fn pap_packet(id: u8, secret: &[u8]) -> Vec<u8> {
    let authenticator = crypto::random_authenticator().unwrap_or([id; 16]);
    let hidden = crypto::hide_password(PASSWORD, secret, &authenticator).unwrap_or_default();
    let mut bytes = Repr {
        code: Code::AccessRequest,
        identifier: id,
        authenticator,
        attributes: vec![
            Attribute::new(AttrType::MessageAuthenticator, [0; 16]),
            Attribute::new(AttrType::UserName, USER.as_bytes()),
            Attribute::new(AttrType::UserPassword, hidden),
        ],
    }
    .to_bytes()
    .unwrap_or_default();
    let _ = crypto::sign_request(&mut bytes, secret);
    bytes
}

/// The raw blaster (see the module docs). `requests` are spread over `sockets` threads,
/// each keeping `concurrency / sockets` requests in flight.
pub fn blast(
    server: SocketAddr,
    secret: &[u8],
    requests: u64,
    concurrency: usize,
    sockets: usize,
) -> std::io::Result<RunResult> {
    let sockets = sockets.max(1);
    let window = concurrency.div_ceil(sockets).clamp(1, 256);
    // Per socket: its packets in sending order, the k-th with identifier k mod 256 (as
    // vbng's client cycles them: FreeRADIUS gives up on a request whose identifier is
    // reused before it has finished with it), each with its own authenticator (it would
    // answer a repeated one from its duplicate cache).
    let per_socket = requests / sockets as u64;
    let mut plans = Vec::new();
    for s in 0..sockets {
        let mine = per_socket + u64::from((s as u64) < requests % sockets as u64);
        let packets: Vec<Vec<u8>> = (0..mine).map(|k| pap_packet(k as u8, secret)).collect();
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.connect(server)?;
        socket.set_read_timeout(Some(Duration::from_millis(500)))?;
        plans.push((socket, packets));
    }
    let cpu0 = process_cpu();
    let t0 = Instant::now();
    let results: Vec<(u64, u64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = plans
            .iter()
            .map(|(socket, packets)| scope.spawn(move || blast_socket(socket, packets, window)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or((0, 0)))
            .collect()
    });
    let elapsed = t0.elapsed();
    let cpu = process_cpu().saturating_sub(cpu0);
    Ok(RunResult {
        answered: results.iter().map(|r| r.0).sum(),
        failed: results.iter().map(|r| r.1).sum(),
        elapsed,
        cpu,
    })
}

/// One socket of the blaster, `window` requests in flight: returns (answered, lost).
fn blast_socket(socket: &UdpSocket, packets: &[Vec<u8>], window: usize) -> (u64, u64) {
    let mut busy = [false; 256];
    let (mut next, mut in_flight) = (0usize, 0usize);
    let (mut answered, mut lost) = (0u64, 0u64);
    let mut buf = [0u8; 4096];
    loop {
        while in_flight < window && next < packets.len() {
            let id = usize::from(packets[next][1]);
            if busy[id] {
                // Its earlier request is still unanswered 256 requests later: lost.
                lost += 1;
                in_flight -= 1;
            }
            let _ = socket.send(&packets[next]);
            busy[id] = true;
            next += 1;
            in_flight += 1;
        }
        if in_flight == 0 {
            return (answered, lost);
        }
        match socket.recv(&mut buf) {
            Ok(n) if n >= 20 => {
                let id = usize::from(buf[1]);
                if busy[id] {
                    busy[id] = false;
                    in_flight -= 1;
                    answered += 1;
                }
            }
            Ok(_) => {}
            // Nothing for 500 ms: whatever is in flight is lost.
            Err(_) => {
                lost += in_flight as u64;
                in_flight = 0;
                busy = [false; 256];
            }
        }
    }
}

/// vbng's client: `concurrency` tasks sending PAP requests until `requests` are done.
pub async fn client_run(client: Arc<Client>, requests: u64, concurrency: usize) -> RunResult {
    let remaining = Arc::new(AtomicU64::new(requests));
    let cpu0 = process_cpu();
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let client = client.clone();
            let remaining = remaining.clone();
            tokio::spawn(async move {
                let request = Request::pap(USER, PASSWORD);
                let (mut answered, mut failed) = (0u64, 0u64);
                while remaining
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    match client.send(&request).await {
                        Ok(r) if r.packet.code == Code::AccessAccept => answered += 1,
                        _ => failed += 1,
                    }
                }
                (answered, failed)
            })
        })
        .collect();
    let (mut answered, mut failed) = (0, 0);
    for t in tasks {
        let (a, f) = t.await.unwrap_or((0, 0));
        answered += a;
        failed += f;
    }
    let elapsed = t0.elapsed();
    RunResult {
        answered,
        failed,
        elapsed,
        cpu: process_cpu().saturating_sub(cpu0),
    }
}

/// Starts FreeRADIUS, runs the warm-up, the baseline and the client; returns the figures.
pub fn run(args: &RadiusArgs) -> Result<Vec<Figure>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: &RadiusArgs) -> Result<Vec<Figure>, String> {
    let mut server = FreeRadius::start(FreeRadiusOptions {
        debug: args.debug,
        ..FreeRadiusOptions::default()
    })
    .map_err(|e| e.to_string())?;
    server.wait_ready().await.map_err(|e| e.to_string())?;
    let sockets = sockets_for(args.concurrency);
    let secret = server.secret().to_vec();
    let addr = server.auth_addr();

    // Warm-up: FreeRADIUS starts its threads, both sides fault in their memory.
    let warm = (args.requests / 10).clamp(1_000, 20_000);
    blast(addr, &secret, warm, args.concurrency, sockets).map_err(|e| e.to_string())?;

    let baseline = blast(addr, &secret, args.requests, args.concurrency, sockets)
        .map_err(|e| format!("baseline: {e}"))?;

    let client = Client::new(
        vec![server.auth_server()],
        ClientConfig {
            sockets_per_server: sockets,
            timeout: Duration::from_secs(2),
            ..ClientConfig::default()
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let client = Arc::new(client);
    client_run(client.clone(), warm, args.concurrency).await;
    let ours = client_run(client.clone(), args.requests, args.concurrency).await;
    let stats = client.stats();
    drop(server);

    let machine = Machine::detect();
    let common = |f: Figure| {
        f.param("requests", args.requests)
            .param("concurrency", args.concurrency)
            .param("sockets", sockets)
            .param("freeradius", if args.debug { "-X" } else { "-f" })
            .param("cpu", machine.cpu.as_str())
            .param("release_build", machine.optimised)
    };
    let base_name = "radius.freeradius_raw_auth_per_s";
    Ok(vec![
        common(
            Figure::new(base_name, baseline.rate(), "auth/s")
                .param("lost", baseline.failed)
                .param("blaster_cpu_us_per_request", baseline.cpu_us_per_request()),
        ),
        common(
            Figure::new("radius.client_auth_per_s", ours.rate(), "auth/s")
                .with_baseline(base_name, baseline.rate())
                .param("failed", ours.failed)
                .param("retransmissions", stats.retransmissions)
                .param("timeouts", stats.timeouts),
        ),
        common(
            Figure::new(
                "radius.client_cpu_us_per_request",
                ours.cpu_us_per_request(),
                "us/request",
            )
            .with_baseline(
                "radius.blaster_cpu_us_per_request",
                baseline.cpu_us_per_request(),
            ),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pap_packet_verifies() {
        let p = pap_packet(5, b"s");
        let repr = Repr::parse_bytes(&p).unwrap();
        assert_eq!((repr.code, repr.identifier), (Code::AccessRequest, 5));
        let hidden = &repr.find(AttrType::UserPassword).unwrap().value;
        assert_eq!(
            crypto::unhide_password(hidden, b"s", &repr.authenticator).unwrap(),
            PASSWORD
        );
        let ma = crypto::message_authenticator(&p, &repr.authenticator, b"s").unwrap();
        assert_eq!(repr.find(AttrType::MessageAuthenticator).unwrap().value, ma);
    }

    #[test]
    fn sockets_cover_the_window() {
        assert_eq!(sockets_for(1), 4);
        assert_eq!(sockets_for(512), 4);
        assert_eq!(sockets_for(513), 5);
        assert_eq!(sockets_for(1024), 8);
    }

    #[test]
    fn cpu_time_advances() {
        let a = process_cpu();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        assert!(process_cpu() > a);
    }

    /// A short run against the real FreeRADIUS: both sides answer everything.
    #[test]
    fn small_run() {
        if !FreeRadius::available() {
            println!("SKIPPED: freeradius not installed");
            return;
        }
        let figures = run(&RadiusArgs {
            requests: 2_000,
            concurrency: 64,
            debug: false,
        })
        .unwrap();
        assert_eq!(figures.len(), 3);
        assert!(figures.iter().all(|f| f.value > 0.0 && f.value.is_finite()));
        assert!(matches!(
            figures[1].get_param("failed"),
            Some(crate::report::Param::Int(0))
        ));
    }
}
