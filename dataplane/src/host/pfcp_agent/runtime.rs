//! The agent's thread: owns the PFCP socket, drives [`PfcpAgent`], logs its events.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{AgentEvent, PfcpAgent, SessionBackend};

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

/// Runs the agent on `socket` (the PFCP listen socket) until `stop`: answers requests,
/// sends heartbeats, logs events and publishes counters.
pub fn run(
    socket: UdpSocket,
    mut agent: PfcpAgent,
    backend: &mut dyn SessionBackend,
    published: &AgentPublished,
    stop: &AtomicBool,
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
