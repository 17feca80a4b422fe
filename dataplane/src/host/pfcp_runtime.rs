//! The agent's thread: owns the PFCP socket, drives [`PfcpAgent`], logs its events, and
//! reloads the ACL file when asked (SIGHUP).

use std::net::UdpSocket;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::pfcp_agent::{AgentEvent, PfcpAgent, SessionBackend};

/// Agent state published for the metrics exporter (relaxed atomics, one writer).
#[derive(Debug, Default)]
pub struct AgentPublished {
    /// 1 while associated.
    pub associated: AtomicU64,
    /// Sessions installed.
    pub sessions: AtomicU64,
    /// Messages received.
    pub rx_messages: AtomicU64,
    /// Messages sent.
    pub tx_messages: AtomicU64,
    /// Requests rejected or dropped as malformed.
    pub rejected: AtomicU64,
    /// CP losses detected.
    pub peer_lost: AtomicU64,
    /// Sessions adopted by a re-programming CP.
    pub adopted: AtomicU64,
    /// ACL file reloads applied.
    pub acl_reloads: AtomicU64,
    /// ACL file reloads refused (the old ACLs stay).
    pub acl_reload_failures: AtomicU64,
}

impl AgentPublished {
    fn publish(&self, agent: &PfcpAgent) {
        let r = Ordering::Relaxed;
        let s = agent.stats();
        self.associated.store(u64::from(agent.is_associated()), r);
        self.sessions.store(agent.session_count() as u64, r);
        self.rx_messages.store(s.rx_messages, r);
        self.tx_messages.store(s.tx_messages, r);
        self.rejected.store(s.rejected, r);
        self.peer_lost.store(s.peer_lost, r);
        self.adopted.store(s.adopted, r);
    }
}

/// Where the agent reloads its ACLs from, and when.
pub struct AclReload {
    /// The ACL file.
    pub path: PathBuf,
    /// True when a reload was asked for since the last call
    /// ([`crate::host::signals::take_reload_request`] at run time).
    pub requested: Box<dyn FnMut() -> bool + Send>,
}

impl std::fmt::Debug for AclReload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AclReload")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Reads `reload.path` and replaces the agent's ACLs; logs one line either way.
fn reload_acls(
    reload: &AclReload,
    agent: &mut PfcpAgent,
    backend: &mut dyn SessionBackend,
    published: &AgentPublished,
) {
    let result = crate::host::config::acl::load_acl_file(&reload.path)
        .map_err(|e| e.to_string())
        .and_then(|file| {
            agent
                .replace_acls(file.global.as_deref(), &file.acls, backend)
                .map_err(|e| format!("{}: {e}", reload.path.display()))
        });
    match result {
        Ok(set) => {
            published.acl_reloads.fetch_add(1, Ordering::Relaxed);
            crate::up_info!(
                "acl file reloaded path={} acls={} global={}",
                reload.path.display(),
                set.len(),
                set.name(set.global()).unwrap_or("-")
            );
        }
        Err(e) => {
            published
                .acl_reload_failures
                .fetch_add(1, Ordering::Relaxed);
            crate::up_warn!("acl file reload refused, the old ACLs stay: {e}");
        }
    }
}

/// Runs the agent on `socket` (the PFCP listen socket) until `stop`: answers requests,
/// sends heartbeats, logs events, reloads ACLs when `acl_reload` says so and publishes
/// counters.
pub fn run(
    socket: UdpSocket,
    mut agent: PfcpAgent,
    backend: &mut dyn SessionBackend,
    published: &AgentPublished,
    stop: &AtomicBool,
    mut acl_reload: Option<AclReload>,
) -> std::io::Result<()> {
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    let start = Instant::now();
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        let now_ms = start.elapsed().as_millis() as u64;
        let mut out = match socket.recv_from(&mut buf) {
            Ok((n, from)) => agent.handle(now_ms, from, &buf[..n], backend),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                Vec::new()
            }
            // ICMP errors from an earlier send surface here; they are not fatal.
            Err(_) => Vec::new(),
        };
        out.extend(agent.poll(now_ms));
        if let Some(reload) = acl_reload.as_mut()
            && (reload.requested)()
        {
            reload_acls(reload, &mut agent, backend, published);
        }
        for (to, bytes) in out {
            if let Err(e) = socket.send_to(&bytes, to) {
                crate::up_warn!("pfcp send failed peer={to} error={e:?}");
            }
        }
        for ev in agent.drain_events() {
            match ev {
                AgentEvent::Rejected { .. }
                | AgentEvent::Malformed { .. }
                | AgentEvent::PeerLost { .. } => {
                    crate::up_warn!("{ev}")
                }
                _ => crate::up_info!("{ev}"),
            }
        }
        published.publish(&agent);
    }
    Ok(())
}
