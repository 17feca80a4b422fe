//! Sockets, identifier windows, retransmission and failover.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{ClientConfig, Error, Request, Response, ServerConfig, Stats, StatsSnapshot};
use crate::radius::{
    self, AUTHENTICATOR_LEN, AttrType, Attribute, Code, MAX_PACKET_LEN, Repr, crypto,
};

type Auth = [u8; AUTHENTICATOR_LEN];

struct Pending {
    authenticator: Auth,
    tx: oneshot::Sender<Vec<u8>>,
}

struct Slots {
    next: u8,
    pending: Vec<Option<Pending>>,
}

/// State shared between a server's senders and its receive task.
struct Shared {
    addr: SocketAddr,
    secret: Vec<u8>,
    socket: UdpSocket,
    /// 256 permits: one per identifier.
    window: Semaphore,
    slots: Mutex<Slots>,
    dead_until: Mutex<Option<Instant>>,
    require_message_authenticator: bool,
    stats: Arc<Stats>,
}

impl Shared {
    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn dead_until(&self) -> MutexGuard<'_, Option<Instant>> {
        self.dead_until.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_dead(&self, now: Instant) -> bool {
        self.dead_until().is_some_and(|t| t > now)
    }
}

struct Server {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
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

/// Frees an identifier when a request finishes or is cancelled.
struct SlotGuard<'a> {
    shared: &'a Shared,
    id: u8,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        self.shared.slots().pending[usize::from(self.id)] = None;
    }
}

impl Client {
    /// Binds one UDP socket per server (connected to it) and starts a
    /// receive task for each. Must be called inside a tokio runtime.
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
            let socket = UdpSocket::bind(local).await.map_err(io)?;
            // Connected: the kernel drops datagrams from other sources.
            socket.connect(addr).await.map_err(io)?;
            let shared = Arc::new(Shared {
                addr,
                secret: server.secret,
                socket,
                window: Semaphore::new(256),
                slots: Mutex::new(Slots {
                    next: 0,
                    pending: (0..256).map(|_| None).collect(),
                }),
                dead_until: Mutex::new(None),
                require_message_authenticator: config.require_message_authenticator,
                stats: stats.clone(),
            });
            let task = tokio::spawn(receive(shared.clone()));
            out.push(Server { shared, task });
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

    /// Sends a request and waits for a verified response, failing over to
    /// the next live server when one exhausts its retransmissions. When
    /// every server is marked dead, all are tried in order anyway.
    pub async fn send(&self, request: &Request) -> Result<Response, Error> {
        Stats::inc(&self.stats.requests);
        let now = Instant::now();
        let mut order: Vec<&Server> = self
            .servers
            .iter()
            .filter(|s| !s.shared.is_dead(now))
            .collect();
        if order.is_empty() {
            order = self.servers.iter().collect();
        }
        for (i, server) in order.iter().enumerate() {
            if let Some(packet) = self.exchange(&server.shared, request).await? {
                *server.shared.dead_until() = None;
                Stats::inc(&self.stats.responses);
                return Ok(Response {
                    server: server.shared.addr,
                    packet,
                });
            }
            Stats::inc(&self.stats.timeouts);
            *server.shared.dead_until() = Some(Instant::now() + self.config.dead_time);
            tracing::warn!(server = %server.shared.addr, "RADIUS server timed out; marked dead");
            if i + 1 < order.len() {
                Stats::inc(&self.stats.failovers);
            }
        }
        Err(Error::Timeout {
            tried: order.len(),
            retries: self.config.retries,
        })
    }

    /// One server: encode with a free identifier, send, retransmit with
    /// backoff. `Ok(None)` when every attempt timed out.
    async fn exchange(&self, shared: &Shared, request: &Request) -> Result<Option<Repr>, Error> {
        // Never fails: the semaphore is not closed.
        let _permit = shared
            .window
            .acquire()
            .await
            .map_err(|_| Error::NoServers)?;
        let (tx, mut rx) = oneshot::channel();
        let (bytes, id) = {
            let mut slots = shared.slots();
            let start = slots.next;
            let id = (0..=255u8)
                .map(|i| start.wrapping_add(i))
                .find(|&i| slots.pending[usize::from(i)].is_none())
                .unwrap_or(start);
            slots.next = id.wrapping_add(1);
            let mut bytes = encode(request, id, &shared.secret)?;
            let authenticator = crypto::sign_request(&mut bytes, &shared.secret)?;
            slots.pending[usize::from(id)] = Some(Pending { authenticator, tx });
            (bytes, id)
        };
        let _guard = SlotGuard { shared, id };
        let mut wait = self.config.timeout;
        for attempt in 0..=self.config.retries {
            if attempt > 0 {
                Stats::inc(&self.stats.retransmissions);
            }
            if let Err(e) = shared.socket.send(&bytes).await {
                tracing::debug!(server = %shared.addr, error = %e, "RADIUS send failed");
            }
            match tokio::time::timeout(wait, &mut rx).await {
                Ok(Ok(reply)) => return Ok(Some(Repr::parse_bytes(&reply)?)),
                Ok(Err(_)) => return Ok(None),
                Err(_) => wait = (wait * 2).min(self.config.max_timeout),
            }
        }
        Ok(None)
    }
}

/// Builds the request with identifier `id`: a random authenticator for
/// Access-Request and Status-Server (zero otherwise, filled in by
/// [`crypto::sign_request`]), the hidden password and a Message-Authenticator
/// placeholder.
fn encode(request: &Request, id: u8, secret: &[u8]) -> Result<Vec<u8>, radius::Error> {
    let authenticator = match request.code {
        Code::AccessRequest | Code::StatusServer => crypto::random_authenticator()?,
        _ => [0; AUTHENTICATOR_LEN],
    };
    let mut attributes: Vec<Attribute> = request
        .attributes
        .iter()
        .filter(|a| a.typ != AttrType::MessageAuthenticator && a.typ != AttrType::UserPassword)
        .cloned()
        .collect();
    if let Some(password) = &request.password {
        let hidden = crypto::hide_password(password, secret, &authenticator)?;
        attributes.push(Attribute::new(AttrType::UserPassword, hidden));
    }
    // RFC 3579 3.2; placed first, as FreeRADIUS 3.2.5+ expects.
    attributes.insert(
        0,
        Attribute::new(AttrType::MessageAuthenticator, [0; AUTHENTICATOR_LEN]),
    );
    Repr {
        code: request.code,
        identifier: id,
        authenticator,
        attributes,
    }
    .to_bytes()
}

/// Receives responses for one server until the client is dropped.
async fn receive(shared: Arc<Shared>) {
    let mut buf = vec![0u8; MAX_PACKET_LEN];
    loop {
        let n = match shared.socket.recv(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                // ICMP port unreachable surfaces here on a connected socket.
                tracing::debug!(server = %shared.addr, error = %e, "RADIUS recv error");
                if e.kind() != std::io::ErrorKind::ConnectionRefused {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                continue;
            }
        };
        let data = &buf[..n];
        let Ok(packet) = radius::Packet::new_checked(data) else {
            Stats::inc(&shared.stats.dropped_malformed);
            continue;
        };
        let id = usize::from(packet.identifier());
        let mut slots = shared.slots();
        let Some(pending) = slots.pending[id].as_ref() else {
            Stats::inc(&shared.stats.dropped_unmatched);
            continue;
        };
        match crypto::verify_response(
            packet.as_bytes(),
            &pending.authenticator,
            &shared.secret,
            shared.require_message_authenticator,
        ) {
            Ok(()) => {
                if let Some(p) = slots.pending[id].take() {
                    let _ = p.tx.send(packet.as_bytes().to_vec());
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
}
