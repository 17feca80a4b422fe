//! The UDP socket, the receive loop and the handler tasks.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::engine::{Action, Engine, Ticket};
use super::{CoaConfig, CoaHandler, CoaStats, CoaStatsSnapshot};
use crate::radius::MAX_PACKET_LEN;

/// How long [`CoaServer::run`] waits, after shutdown is signalled, for
/// handlers still running to finish and send their answers. Handlers still
/// running after it are cancelled, unanswered.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

type SharedEngine = Arc<Mutex<Engine>>;

fn lock(engine: &Mutex<Engine>) -> MutexGuard<'_, Engine> {
    // The engine's state stays consistent between calls: a panic elsewhere
    // while holding the lock leaves nothing half-done.
    engine.lock().unwrap_or_else(|e| e.into_inner())
}

/// A Dynamic Authorization server (RFC 5176) bound to one UDP socket.
pub struct CoaServer {
    socket: Arc<UdpSocket>,
    local_addr: SocketAddr,
    engine: SharedEngine,
    handler: Arc<dyn CoaHandler>,
    stats: Arc<CoaStats>,
}

impl std::fmt::Debug for CoaServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoaServer")
            .field("local_addr", &self.local_addr)
            .field("stats", &self.stats.snapshot())
            .finish()
    }
}

impl CoaServer {
    /// Binds the listening socket. Requests are served once [`run`] is
    /// called; until then they wait in the socket's buffer.
    ///
    /// [`run`]: CoaServer::run
    pub async fn bind(config: CoaConfig, handler: Arc<dyn CoaHandler>) -> io::Result<CoaServer> {
        let socket = UdpSocket::bind(config.listen).await?;
        let local_addr = socket.local_addr()?;
        let stats = Arc::new(CoaStats::default());
        let engine = Arc::new(Mutex::new(Engine::new(&config, stats.clone())));
        tracing::info!(
            %local_addr,
            clients = config.clients.len(),
            "dynamic authorization server listening"
        );
        Ok(CoaServer {
            socket: Arc::new(socket),
            local_addr,
            engine,
            handler,
            stats,
        })
    }

    /// The bound address (with the port chosen if `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The counters now.
    pub fn stats(&self) -> CoaStatsSnapshot {
        self.stats.snapshot()
    }

    /// The live counters, readable after [`CoaServer::run`] has taken the
    /// server.
    pub fn stats_handle(&self) -> Arc<CoaStats> {
        self.stats.clone()
    }

    /// Serves requests until `shutdown` becomes true or its sender is
    /// dropped; then waits up to [`SHUTDOWN_GRACE`] for running handlers.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut tasks = JoinSet::new();
        let mut buf = vec![0u8; MAX_PACKET_LEN];
        while !*shutdown.borrow_and_update() {
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((len, source)) => self.on_datagram(&mut tasks, source, &buf[..len]).await,
                    Err(error) => {
                        // Transient (e.g. ENOMEM, an ICMP error reported on
                        // the socket): keep serving, without spinning.
                        tracing::warn!(%error, "dynamic authorization socket receive failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(error) = joined
                        && error.is_panic()
                    {
                        tracing::error!(%error, "dynamic authorization handler panicked");
                    }
                }
            }
        }
        let running = tasks.len();
        if running > 0 {
            tracing::info!(
                running,
                "dynamic authorization server stopping: waiting for handlers"
            );
            let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
                while tasks.join_next().await.is_some() {}
            })
            .await;
            if drained.is_err() {
                tracing::warn!(
                    cancelled = tasks.len(),
                    "dynamic authorization handlers cancelled at shutdown"
                );
            }
        }
        tasks.shutdown().await;
    }

    async fn on_datagram(&self, tasks: &mut JoinSet<()>, source: SocketAddr, datagram: &[u8]) {
        let action = lock(&self.engine).receive(source, datagram, Instant::now());
        match action {
            Action::Drop(reason) => {
                tracing::debug!(%source, ?reason, "dynamic authorization request dropped");
            }
            Action::Resend(reply) => send(&self.socket, &reply, source).await,
            Action::Handle(ticket, request) => {
                let guard = InFlight {
                    engine: self.engine.clone(),
                    ticket: Some(ticket),
                };
                let handler = self.handler.clone();
                let socket = self.socket.clone();
                tasks.spawn(async move {
                    let mut guard = guard;
                    let decision = handler.handle(request).await;
                    let Some(ticket) = guard.ticket.take() else {
                        return;
                    };
                    let source = ticket.source();
                    let reply = lock(&guard.engine).complete(ticket, decision, Instant::now());
                    if let Some(reply) = reply {
                        send(&socket, &reply, source).await;
                    }
                });
            }
        }
    }
}

async fn send(socket: &UdpSocket, bytes: &[u8], to: SocketAddr) {
    if let Err(error) = socket.send_to(bytes, to).await {
        tracing::warn!(%to, %error, "dynamic authorization answer not sent");
    }
}

/// A request whose handler runs. Dropped without an answer (the task was
/// cancelled or the handler panicked), it forgets the request, so that a
/// retransmission is handled again instead of being dropped as in progress.
struct InFlight {
    engine: SharedEngine,
    ticket: Option<Ticket>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            lock(&self.engine).abandon(ticket);
        }
    }
}
