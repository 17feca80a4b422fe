//! The control plane's PFCP socket: one UDP socket shared by every peer
//! task; received datagrams go to the task of the user plane that sent them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tracing::debug;
use vbng_cups::pfcp::RecoveryTimeStamp;

use super::UpEvent;
use super::peer::{PeerTask, PeerTimers, UpHandle, UpInfo, UpState, UpStatus};
use crate::config::Config;
use crate::metrics::{Metrics, ReasonLabels};

/// Datagrams queued per peer task before new ones are dropped.
const PEER_QUEUE: usize = 1024;
/// Requests queued per peer task.
const OP_QUEUE: usize = 1024;
/// Largest PFCP datagram accepted.
const MAX_DATAGRAM: usize = 65_535;

/// Spawn one peer task per configured user plane plus the receive loop on
/// `socket`. Returns the handles, indexed like `cfg.user_planes`.
pub fn start(
    cfg: &Config,
    socket: Arc<UdpSocket>,
    metrics: Metrics,
    events: mpsc::UnboundedSender<UpEvent>,
    shutdown: watch::Receiver<bool>,
) -> Vec<UpHandle> {
    let cp_ip = cfg.pfcp.node_ipv4();
    let cp_recovery = RecoveryTimeStamp::from_unix_secs(crate::unix_now());
    let timers = PeerTimers {
        t1_ms: cfg.pfcp.t1_ms,
        n1: cfg.pfcp.n1,
        heartbeat_interval_ms: u64::from(cfg.pfcp.heartbeat_interval_s) * 1000,
        heartbeat_misses: cfg.pfcp.heartbeat_misses,
    };
    // Random-ish sequence start so late answers to a previous incarnation do
    // not match (TS 29.244 7.2.2.2 leaves the start to the node).
    let seq_start = (crate::unix_now() as u32).wrapping_mul(2_654_435_761) & 0x00ff_ffff;
    let mut handles = Vec::new();
    let mut routes: Vec<(SocketAddr, mpsc::Sender<Vec<u8>>)> = Vec::new();
    for (i, up) in cfg.user_planes.iter().enumerate() {
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        let info = Arc::new(UpInfo {
            index,
            name: up.name.clone(),
            pfcp: up.pfcp,
            gtpu: up.gtpu_addr(),
            status: Mutex::new(UpStatus {
                state: UpState::Associating,
                recovery: None,
                last_heartbeat_ms: None,
                advertised_gtpu: None,
            }),
        });
        let (dg_tx, dg_rx) = mpsc::channel(PEER_QUEUE);
        let (op_tx, op_rx) = mpsc::channel(OP_QUEUE);
        let task = PeerTask::new(
            info.clone(),
            socket.clone(),
            cp_ip,
            cp_recovery,
            timers,
            seq_start.wrapping_add(index << 16) & 0x00ff_ffff,
            metrics.clone(),
            events.clone(),
        );
        tokio::spawn(task.run(dg_rx, op_rx, shutdown.clone()));
        routes.push((up.pfcp, dg_tx));
        handles.push(UpHandle::new(info, op_tx, cp_ip));
    }
    tokio::spawn(receive_loop(socket, routes, metrics, shutdown));
    handles
}

async fn receive_loop(
    socket: Arc<UdpSocket>,
    routes: Vec<(SocketAddr, mpsc::Sender<Vec<u8>>)>,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let count = |reason| {
        metrics
            .pfcp_errors
            .get_or_create(&ReasonLabels { reason })
            .inc();
    };
    loop {
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let (n, src) = match r {
                    Ok(v) => v,
                    Err(e) => {
                        debug!(error = %e, "PFCP receive failed");
                        continue;
                    }
                };
                // Exact address: a UP sends requests from, and answers
                // to, its PFCP address (TS 29.244 7.2.2.4.1).
                let route = routes.iter().find(|(a, _)| *a == src);
                match route {
                    Some((_, tx)) => {
                        if tx.try_send(buf[..n].to_vec()).is_err() {
                            count("peer_queue_full");
                        }
                    }
                    None => count("unknown_peer"),
                }
            }
            _ = shutdown.changed() => break,
        }
    }
}
