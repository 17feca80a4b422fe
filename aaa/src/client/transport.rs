//! Socket pools, identifier windows, retransmission, failover and
//! Status-Server probing.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{
    ClientConfig, Error, Request, Response, ServerConfig, ServerState, Stats, StatsSnapshot,
};
use crate::radius::{
    self, AUTHENTICATOR_LEN, AttrType, Code, HEADER_LEN, MAX_ATTR_VALUE_LEN, MAX_PACKET_LEN, Repr,
    crypto,
};

type Auth = [u8; AUTHENTICATOR_LEN];

/// Identifiers per socket (RFC 2865 3: one octet).
const WINDOW: usize = 256;

struct Pending {
    authenticator: Auth,
    /// Tells this request from a later one that reuses the identifier while
    /// a response is being verified outside the lock.
    seq: u64,
    tx: oneshot::Sender<Vec<u8>>,
}

struct Slots {
    next: u8,
    seq: u64,
    pending: Vec<Option<Pending>>,
}

/// One UDP socket, connected to its server, with its own identifier window.
struct Sock {
    socket: UdpSocket,
    /// One permit per identifier.
    window: Semaphore,
    slots: Mutex<Slots>,
}

impl Sock {
    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// State shared between a server's senders, receive tasks and prober.
struct Shared {
    addr: SocketAddr,
    secret: Vec<u8>,
    socks: Vec<Sock>,
    /// Rotates the starting socket of the least-loaded pick.
    next_sock: AtomicUsize,
    dead_until: Mutex<Option<Instant>>,
    /// A Status-Server prober runs for this server.
    probing: AtomicBool,
    probes: AtomicU64,
    config: ClientConfig,
    stats: Arc<Stats>,
}

impl Shared {
    fn dead_until(&self) -> MutexGuard<'_, Option<Instant>> {
        self.dead_until.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_dead(&self, now: Instant) -> bool {
        self.dead_until().is_some_and(|t| t > now)
    }

    /// The socket with the most free identifiers; ties go round-robin.
    fn pick(&self) -> &Sock {
        let n = self.socks.len();
        let start = self.next_sock.fetch_add(1, Ordering::Relaxed) % n;
        let mut best = start;
        let mut best_free = self.socks[start].window.available_permits();
        for k in 1..n {
            let i = (start + k) % n;
            let free = self.socks[i].window.available_permits();
            if free > best_free {
                (best, best_free) = (i, free);
            }
        }
        &self.socks[best]
    }

    fn in_flight(&self) -> usize {
        self.socks
            .iter()
            .map(|s| WINDOW - s.window.available_permits())
            .sum()
    }
}

struct Server {
    shared: Arc<Shared>,
    receivers: Vec<JoinHandle<()>>,
    prober: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for task in &self.receivers {
            task.abort();
        }
        if let Some(task) = self
            .prober
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

/// A RADIUS client for one server group (servers tried in order).
pub struct Client {
    servers: Vec<Server>,
    config: ClientConfig,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field(
                "servers",
                &self
                    .servers
                    .iter()
                    .map(|s| s.shared.addr)
                    .collect::<Vec<_>>(),
            )
            .field("config", &self.config)
            .finish()
    }
}

/// Frees an identifier when a request finishes or is cancelled, unless the
/// receive task already took it (and a later request may now hold it).
struct SlotGuard<'a> {
    sock: &'a Sock,
    id: u8,
    seq: u64,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let mut slots = self.sock.slots();
        let _ = slots.pending[usize::from(self.id)].take_if(|p| p.seq == self.seq);
    }
}

impl Client {
    /// Binds [`ClientConfig::sockets_per_server`] UDP sockets per server
    /// (each connected to it) and starts a receive task for each. Must be
    /// called inside a tokio runtime.
    pub async fn new(servers: Vec<ServerConfig>, config: ClientConfig) -> Result<Self, Error> {
        if servers.is_empty() {
            return Err(Error::NoServers);
        }
        let stats = Arc::new(Stats::default());
        let mut out = Vec::with_capacity(servers.len());
        for server in servers {
            let addr = server.addr;
            let io = |source| Error::Io { addr, source };
            let local: SocketAddr = if addr.is_ipv4() {
                (Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let mut socks = Vec::new();
            for _ in 0..config.sockets_per_server.max(1) {
                let socket = UdpSocket::bind(local).await.map_err(io)?;
                // Connected: the kernel drops datagrams from other sources.
                socket.connect(addr).await.map_err(io)?;
                socks.push(Sock {
                    socket,
                    window: Semaphore::new(WINDOW),
                    slots: Mutex::new(Slots {
                        next: 0,
                        seq: 0,
                        pending: (0..WINDOW).map(|_| None).collect(),
                    }),
                });
            }
            let shared = Arc::new(Shared {
                addr,
                secret: server.secret,
                socks,
                next_sock: AtomicUsize::new(0),
                dead_until: Mutex::new(None),
                probing: AtomicBool::new(false),
                probes: AtomicU64::new(0),
                config: config.clone(),
                stats: stats.clone(),
            });
            let receivers = (0..shared.socks.len())
                .map(|i| tokio::spawn(receive(shared.clone(), i)))
                .collect();
            out.push(Server {
                shared,
                receivers,
                prober: Mutex::new(None),
            });
        }
        Ok(Client {
            servers: out,
            config,
            stats,
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Whether server `index` is currently marked dead.
    pub fn is_dead(&self, index: usize) -> bool {
        self.servers
            .get(index)
            .is_some_and(|s| s.shared.is_dead(Instant::now()))
    }

    /// The state of each server, in configuration order.
    pub fn server_states(&self) -> Vec<ServerState> {
        let now = Instant::now();
        self.servers
            .iter()
            .map(|s| {
                let dead_for = s
                    .shared
                    .dead_until()
                    .filter(|&t| t > now)
                    .map(|t| t.saturating_duration_since(now));
                ServerState {
                    addr: s.shared.addr,
                    alive: dead_for.is_none(),
                    dead_for,
                    in_flight: s.shared.in_flight(),
                    status_server_probes: s.shared.probes.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// Sends a request and waits for a verified response, failing over to
    /// the next live server when one exhausts its retransmissions. When
    /// every server is marked dead, all are tried in order anyway.
    pub async fn send(&self, request: &Request) -> Result<Response, Error> {
        Stats::inc(&self.stats.requests);
        let now = Instant::now();
        let live = self.servers.iter().filter(|s| !s.shared.is_dead(now));
        let mut order: Vec<&Server> = live.collect();
        if order.is_empty() {
            order = self.servers.iter().collect();
        }
        for (i, server) in order.iter().enumerate() {
            let shared = &server.shared;
            let attempt = exchange(shared, request, self.config.timeout, self.config.retries);
            if let Some(packet) = attempt.await? {
                *shared.dead_until() = None;
                Stats::inc(&self.stats.responses);
                return Ok(Response {
                    server: shared.addr,
                    packet,
                });
            }
            Stats::inc(&self.stats.timeouts);
            *shared.dead_until() = Some(Instant::now() + self.config.dead_time);
            tracing::warn!(server = %shared.addr, "RADIUS server timed out; marked dead");
            self.start_prober(server);
            if i + 1 < order.len() {
                Stats::inc(&self.stats.failovers);
            }
        }
        Err(Error::Timeout {
            tried: order.len(),
            retries: self.config.retries,
        })
    }

    /// Starts probing a dead server with Status-Server, unless disabled or
    /// already running.
    fn start_prober(&self, server: &Server) {
        if self.config.status_server_interval.is_zero()
            || server.shared.probing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let task = tokio::spawn(probe(server.shared.clone()));
        let mut prober = server.prober.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = prober.replace(task) {
            old.abort();
        }
    }
}

/// Sends Status-Server (RFC 5997) to a dead server every
/// `status_server_interval` until it answers (it is then alive again) or
/// its dead time runs out.
async fn probe(shared: Arc<Shared>) {
    let request = Request {
        code: Code::StatusServer,
        attributes: Vec::new(),
        password: None,
    };
    let interval = shared.config.status_server_interval;
    loop {
        tokio::time::sleep(interval).await;
        if !shared.is_dead(Instant::now()) {
            break;
        }
        shared.probes.fetch_add(1, Ordering::Relaxed);
        Stats::inc(&shared.stats.status_server_probes);
        // A reply arriving later than the interval is as good as none.
        match exchange(&shared, &request, interval.min(shared.config.timeout), 0).await {
            Ok(Some(_)) => {
                *shared.dead_until() = None;
                Stats::inc(&shared.stats.revivals);
                tracing::info!(server = %shared.addr, "RADIUS server answered Status-Server; alive");
                break;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(server = %shared.addr, error = %e, "Status-Server probe failed");
            }
        }
    }
    shared.probing.store(false, Ordering::Release);
}

/// One server: encode with a free identifier of the least-loaded socket,
/// send, retransmit with backoff. `Ok(None)` when every attempt timed out.
async fn exchange(
    shared: &Shared,
    request: &Request,
    timeout: Duration,
    retries: u32,
) -> Result<Option<Repr>, Error> {
    let sock = shared.pick();
    // Never fails: the semaphore is not closed.
    let _permit = sock.window.acquire().await.map_err(|_| Error::NoServers)?;
    let (tx, mut rx) = oneshot::channel();
    let (bytes, id, seq) = {
        let mut slots = sock.slots();
        let start = slots.next;
        // The permit guarantees a free identifier.
        let id = (0..=255u8)
            .map(|i| start.wrapping_add(i))
            .find(|&i| slots.pending[usize::from(i)].is_none())
            .unwrap_or(start);
        slots.next = id.wrapping_add(1);
        slots.seq += 1;
        let seq = slots.seq;
        let (bytes, authenticator) = encode(request, id, &shared.secret)?;
        slots.pending[usize::from(id)] = Some(Pending {
            authenticator,
            seq,
            tx,
        });
        (bytes, id, seq)
    };
    let _guard = SlotGuard { sock, id, seq };
    let mut wait = timeout;
    for attempt in 0..=retries {
        if attempt > 0 {
            Stats::inc(&shared.stats.retransmissions);
        }
        if let Err(e) = sock.socket.send(&bytes).await {
            tracing::debug!(server = %shared.addr, error = %e, "RADIUS send failed");
        }
        match tokio::time::timeout(wait, &mut rx).await {
            Ok(Ok(reply)) => return Ok(Some(Repr::parse_bytes(&reply)?)),
            Ok(Err(_)) => return Ok(None),
            Err(_) => wait = (wait * 2).min(shared.config.max_timeout),
        }
    }
    Ok(None)
}

/// Encodes and signs the request with identifier `id`, straight from its
/// attributes: a Message-Authenticator first (RFC 3579 3.2, where
/// FreeRADIUS 3.2.5+ expects it), the attributes other than
/// Message-Authenticator and User-Password, then the hidden password. The
/// authenticator is random for Access-Request and Status-Server, computed
/// for the others ([`crypto::sign_request`]). Returns the packet and its
/// Request Authenticator.
fn encode(request: &Request, id: u8, secret: &[u8]) -> Result<(Vec<u8>, Auth), radius::Error> {
    let random = matches!(request.code, Code::AccessRequest | Code::StatusServer);
    let authenticator = if random {
        crypto::random_authenticator()?
    } else {
        [0; AUTHENTICATOR_LEN]
    };
    let keep = |a: &&radius::Attribute| {
        a.typ != AttrType::MessageAuthenticator && a.typ != AttrType::UserPassword
    };
    let hidden = match &request.password {
        Some(p) => Some(crypto::hide_password(p, secret, &authenticator)?),
        None => None,
    };
    let mut len = HEADER_LEN + 2 + AUTHENTICATOR_LEN;
    for a in request.attributes.iter().filter(keep) {
        if a.value.len() > MAX_ATTR_VALUE_LEN {
            return Err(radius::Error::ValueTooLong(a.value.len()));
        }
        len += 2 + a.value.len();
    }
    len += hidden.as_ref().map_or(0, |h| 2 + h.len());
    if len > MAX_PACKET_LEN {
        return Err(radius::Error::PacketTooLong(len));
    }
    let mut out = Vec::with_capacity(len);
    out.push(u8::from(request.code));
    out.push(id);
    // At most 4096: checked above.
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&authenticator);
    out.push(AttrType::MessageAuthenticator.into());
    out.push(2 + AUTHENTICATOR_LEN as u8);
    out.extend_from_slice(&[0; AUTHENTICATOR_LEN]);
    let mut put = |typ: AttrType, value: &[u8]| {
        out.push(typ.into());
        // At most 253 + 2: checked above.
        out.push((value.len() + 2) as u8);
        out.extend_from_slice(value);
    };
    for a in request.attributes.iter().filter(keep) {
        put(a.typ, &a.value);
    }
    if let Some(h) = &hidden {
        put(AttrType::UserPassword, h);
    }
    let authenticator = crypto::sign_request(&mut out, secret)?;
    Ok((out, authenticator))
}

/// Receives the responses of one socket until the client is dropped:
/// drains every datagram queued at each wakeup, verifies each outside the
/// lock and hands it to its request.
async fn receive(shared: Arc<Shared>, index: usize) {
    let sock = &shared.socks[index];
    let mut buf = vec![0u8; MAX_PACKET_LEN];
    loop {
        if let Err(e) = sock.socket.readable().await {
            tracing::debug!(server = %shared.addr, error = %e, "RADIUS socket error");
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        loop {
            let n = match sock.socket.try_recv(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                // ICMP port unreachable surfaces here on a connected socket.
                Err(e) => {
                    tracing::debug!(server = %shared.addr, error = %e, "RADIUS recv error");
                    continue;
                }
            };
            deliver(&shared, sock, &buf[..n]);
        }
    }
}

fn deliver(shared: &Shared, sock: &Sock, data: &[u8]) {
    let Ok(packet) = radius::Packet::new_checked(data) else {
        Stats::inc(&shared.stats.dropped_malformed);
        return;
    };
    let id = usize::from(packet.identifier());
    let Some((authenticator, seq)) = sock.slots().pending[id]
        .as_ref()
        .map(|p| (p.authenticator, p.seq))
    else {
        Stats::inc(&shared.stats.dropped_unmatched);
        return;
    };
    match crypto::verify_response(
        packet.as_bytes(),
        &authenticator,
        &shared.secret,
        shared.config.require_message_authenticator,
    ) {
        Ok(()) => {
            let mut slots = sock.slots();
            match slots.pending[id].take_if(|p| p.seq == seq) {
                Some(p) => {
                    let _ = p.tx.send(packet.as_bytes().to_vec());
                }
                None => Stats::inc(&shared.stats.dropped_unmatched),
            }
        }
        Err(radius::Error::BadResponseAuthenticator) => {
            Stats::inc(&shared.stats.dropped_bad_authenticator)
        }
        Err(
            radius::Error::MissingMessageAuthenticator | radius::Error::BadMessageAuthenticator,
        ) => Stats::inc(&shared.stats.dropped_bad_message_authenticator),
        Err(_) => Stats::inc(&shared.stats.dropped_malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::radius::Attribute;

    /// The direct encoder produces what the codec would, and a packet the
    /// codec parses back with the password recoverable.
    #[test]
    fn encode_matches_codec() {
        let secret = b"s3cret";
        let request = Request::pap("user", b"password")
            .with(Attribute::u32(AttrType::NasPort, 7))
            .with(Attribute::new(AttrType::MessageAuthenticator, [1; 16]));
        let (bytes, authenticator) = encode(&request, 9, secret).unwrap();
        let repr = Repr::parse_bytes(&bytes).unwrap();
        assert_eq!(repr.code, Code::AccessRequest);
        assert_eq!(repr.identifier, 9);
        assert_eq!(repr.authenticator, authenticator);
        let types: Vec<_> = repr.attributes.iter().map(|a| a.typ).collect();
        assert_eq!(
            types,
            [
                AttrType::MessageAuthenticator,
                AttrType::UserName,
                AttrType::NasPort,
                AttrType::UserPassword
            ]
        );
        let hidden = &repr.find(AttrType::UserPassword).unwrap().value;
        assert_eq!(
            crypto::unhide_password(hidden, secret, &authenticator).unwrap(),
            b"password"
        );
        let ma = crypto::message_authenticator(&bytes, &authenticator, secret).unwrap();
        assert_eq!(repr.find(AttrType::MessageAuthenticator).unwrap().value, ma);
        // The same packet through the codec.
        let mut again = Repr {
            attributes: repr.attributes.clone(),
            ..repr.clone()
        }
        .to_bytes()
        .unwrap();
        crypto::sign_request(&mut again, secret).unwrap();
        assert_eq!(again, bytes);
    }

    /// Accounting: the Request Authenticator is the MD5 of the packet.
    #[test]
    fn encode_accounting() {
        let secret = b"s3cret";
        let request = Request::accounting(1, "sess", Vec::new());
        let (bytes, authenticator) = encode(&request, 1, secret).unwrap();
        assert_eq!(bytes[4..20], authenticator);
        let mut zeroed = bytes.clone();
        zeroed[4..20].fill(0);
        assert_eq!(crypto::packet_md5(&zeroed, &[0; 16], secret), authenticator);
    }

    #[test]
    fn encode_rejects_oversize() {
        let long = Request::pap("u", b"p").with(Attribute::new(AttrType::Class, vec![0; 254]));
        assert_eq!(
            encode(&long, 0, b"s").unwrap_err(),
            radius::Error::ValueTooLong(254)
        );
        let mut many = Request::pap("u", b"p");
        for _ in 0..20 {
            many = many.with(Attribute::new(AttrType::Class, vec![0; 253]));
        }
        assert!(matches!(
            encode(&many, 0, b"s").unwrap_err(),
            radius::Error::PacketTooLong(_)
        ));
        let pw = Request::pap("u", &[b'x'; 129]);
        assert_eq!(
            encode(&pw, 0, b"s").unwrap_err(),
            radius::Error::PasswordTooLong(129)
        );
    }
}
