//! The GTP-U redirect socket task.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tracing::debug;
use vbng_access::dhcpv4::LeaseEvent;

use super::{DropReason, Redirector};
use crate::aaa::radius::Replay;
use crate::cups::UpHandle;
use crate::metrics::Metrics;
use crate::session::{DeferredReply, LeaseUpdate};

/// Receive redirected frames on `socket`, answer them through `redirector`,
/// and forward lease events to the session task, until `shutdown`.
///
/// A reply that comes with a `Bound` or `Renewed` lease event is a DHCPACK
/// that may have to wait for the user plane: it travels with the event to
/// the session task, which sends it on the same socket once the session is
/// programmed (at once if it already is). Every other reply (OFFER, NAK,
/// ARP, INFORM's ACK) is sent here at once. This task never awaits PFCP.
///
/// A DHCP message whose client waits for a RADIUS decision is parked with
/// the RADIUS backend and comes back on `replays` once it is decided; it is
/// then handled like a new arrival.
#[allow(clippy::too_many_arguments)]
pub async fn run_redirect(
    socket: Arc<UdpSocket>,
    mut redirector: Redirector,
    ups: Vec<UpHandle>,
    metrics: Metrics,
    events: mpsc::UnboundedSender<LeaseUpdate>,
    mut replays: mpsc::UnboundedReceiver<Replay>,
    pppoe: Option<mpsc::UnboundedSender<crate::pppoe::Input>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 65_535];
    let mut prune = tokio::time::interval(Duration::from_secs(10));
    let mut ipv6_tick = tokio::time::interval(Duration::from_secs(1));
    let mut ctx = Handling {
        socket: &socket,
        metrics: &metrics,
        events: &events,
        lease_events: Vec::new(),
        pppoe: pppoe.as_ref(),
    };
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
                ctx.handle(&mut redirector, up.index(), src, &buf[..n]).await;
            }
            Some(r) = replays.recv() => {
                ctx.handle(&mut redirector, r.up, r.src, &r.datagram).await;
            }
            _ = prune.tick() => {
                let now = crate::monotonic_ms();
                redirector.prune(now);
                if let Some(r) = redirector.aaa().radius() {
                    r.prune(now);
                }
            }
            _ = ipv6_tick.tick() => {
                for (up, datagram) in redirector.tick_ipv6(crate::monotonic_ms()) {
                    let Some(handle) = ups.iter().find(|u| u.index() == up) else {
                        continue;
                    };
                    match socket.send_to(&datagram, handle.gtpu_address()).await {
                        Ok(_) => {
                            metrics.redirect_out.inc();
                        }
                        Err(e) => debug!(error = %e, "GTP-U send failed"),
                    }
                }
            }
            _ = shutdown.changed() => break,
        }
    }
}

/// What handling one datagram needs besides the redirector.
struct Handling<'a> {
    socket: &'a UdpSocket,
    metrics: &'a Metrics,
    events: &'a mpsc::UnboundedSender<LeaseUpdate>,
    lease_events: Vec<LeaseEvent>,
    pppoe: Option<&'a mpsc::UnboundedSender<crate::pppoe::Input>>,
}

impl Handling<'_> {
    async fn handle(&mut self, redirector: &mut Redirector, up: u32, src: SocketAddr, data: &[u8]) {
        let now = crate::monotonic_ms();
        let reply = redirector.handle(now, up, data, &mut self.lease_events);
        for (port, l2, payload) in redirector.take_pppoe() {
            if let Some(tx) = self.pppoe {
                let _ = tx.send(crate::pppoe::Input::Frame(crate::pppoe::PppoeFrame {
                    up,
                    src,
                    port,
                    l2,
                    payload,
                }));
            }
        }
        for key in redirector.take_auth_pending() {
            if let Some(r) = redirector.aaa().radius() {
                r.park(
                    key,
                    Replay {
                        up,
                        src,
                        datagram: data.to_vec(),
                    },
                );
            }
        }
        let (now_reply, updates) = pair_reply(reply, src, self.lease_events.drain(..));
        // If the session task is gone (shutting down), a deferred
        // ACK goes with it: no session, no ACK.
        for u in updates {
            let _ = self.events.send(u);
        }
        if let Some(reply) = now_reply {
            match self.socket.send_to(&reply, src).await {
                Ok(_) => {
                    self.metrics.redirect_out.inc();
                }
                Err(e) => debug!(error = %e, %src, "GTP-U send failed"),
            }
        }
    }
}

/// Attach `reply` (to be sent to `src`) to the first `Bound` or `Renewed`
/// event among `events`: that reply is the DHCPACK binding or extending the
/// lease, and the session task decides when it may go. Returns the reply
/// if no such event took it (to be sent now) and the updates for the
/// session task, in event order.
fn pair_reply(
    mut reply: Option<Vec<u8>>,
    src: SocketAddr,
    events: impl IntoIterator<Item = LeaseEvent>,
) -> (Option<Vec<u8>>, Vec<LeaseUpdate>) {
    let updates = events
        .into_iter()
        .map(|event| {
            let deferred_reply = match event {
                LeaseEvent::Bound(_) | LeaseEvent::Renewed(_) => reply
                    .take()
                    .map(|datagram| DeferredReply { datagram, dst: src }),
                _ => None,
            };
            LeaseUpdate {
                event,
                deferred_reply,
            }
        })
        .collect();
    (reply, updates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vbng_access::dhcpv4::{ClientKey, Lease};

    fn lease() -> Lease {
        Lease {
            key: ClientKey {
                up: 0,
                port: 1,
                svlan: 0,
                cvlan: 0,
                mac: [2, 0, 0, 0, 0, 1],
            },
            ipv4: std::net::Ipv4Addr::new(100, 64, 0, 10),
            pool: "default".into(),
            gateway: std::net::Ipv4Addr::new(100, 64, 0, 1),
            prefix_len: 24,
            lease_time_s: 3600,
            bound_at_ms: 0,
            expires_at_ms: 3_600_000,
            circuit_id: None,
            remote_id: None,
            client_id: None,
            hostname: None,
        }
    }

    const SRC: &str = "127.0.0.1:2152";

    #[test]
    fn ack_with_bound_or_renewed_is_deferred() {
        for ev in [LeaseEvent::Bound(lease()), LeaseEvent::Renewed(lease())] {
            let (now, updates) = pair_reply(Some(vec![1, 2, 3]), SRC.parse().unwrap(), [ev]);
            assert_eq!(now, None, "the ACK waits for the session task");
            assert_eq!(updates.len(), 1);
            assert_eq!(
                updates[0].deferred_reply,
                Some(DeferredReply {
                    datagram: vec![1, 2, 3],
                    dst: SRC.parse().unwrap()
                })
            );
        }
    }

    #[test]
    fn other_replies_go_at_once() {
        // OFFER, NAK, ARP reply: no lease event.
        let (now, updates) = pair_reply(Some(vec![7]), SRC.parse().unwrap(), []);
        assert_eq!(now, Some(vec![7]));
        assert!(updates.is_empty());
        // A release has no reply; the event still reaches the session task.
        let (now, updates) =
            pair_reply(None, SRC.parse().unwrap(), [LeaseEvent::Released(lease())]);
        assert_eq!(now, None);
        assert_eq!(
            updates,
            vec![LeaseUpdate::from(LeaseEvent::Released(lease()))]
        );
    }
}
