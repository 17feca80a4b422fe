//! The GTP-U redirect socket task.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tracing::debug;
use vbng_access::dhcpv4::LeaseEvent;

use super::{DropReason, Redirector};
use crate::cups::UpHandle;
use crate::metrics::Metrics;

/// Receive redirected frames on `socket`, answer them through `redirector`,
/// and forward lease events to the session task, until `shutdown`.
pub async fn run_redirect(
    socket: Arc<UdpSocket>,
    mut redirector: Redirector,
    ups: Vec<UpHandle>,
    metrics: Metrics,
    events: mpsc::UnboundedSender<LeaseEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 65_535];
    let mut lease_events = Vec::new();
    let mut prune = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let (n, src) = match r {
                    Ok(v) => v,
                    Err(e) => {
                        debug!(error = %e, "GTP-U receive failed");
                        continue;
                    }
                };
                let Some(up) = ups.iter().find(|u| u.owns_gtpu_source(src)) else {
                    metrics.redirect_in.inc();
                    metrics.drop_redirect(DropReason::UnknownPeer.name());
                    continue;
                };
                let now = crate::monotonic_ms();
                if let Some(reply) = redirector.handle(now, up.index(), &buf[..n], &mut lease_events)
                    && let Err(e) = socket.send_to(&reply, src).await
                {
                    debug!(error = %e, %src, "GTP-U send failed");
                }
                for ev in lease_events.drain(..) {
                    let _ = events.send(ev);
                }
            }
            _ = prune.tick() => redirector.prune(crate::monotonic_ms()),
            _ = shutdown.changed() => break,
        }
    }
}
