//! Wiring of the running `vbng-cp`: sockets, tasks and shutdown.

use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};
use vbng_access::dhcpv4::DhcpServer;

use crate::aaa::LocalSubscribers;
use crate::api::{self, ApiState};
use crate::config::{Config, ConfigError};
use crate::metrics::Metrics;
use crate::redirect::{Redirector, RedirectorConfig, run_redirect};
use crate::session::journal::Record;
use crate::session::{LeaseStore, Sessions};

/// Load the subscriber file named by `cfg` (or the allow-all default) and
/// check its pools against the configured ones.
pub fn load_subscribers(cfg: &Config) -> Result<LocalSubscribers, ConfigError> {
    let Some(path) = &cfg.subscribers else {
        let subs = LocalSubscribers::default();
        subs.check_pools("<defaults>", cfg.pools.iter().map(|p| p.name.as_str()))?;
        return Ok(subs);
    };
    let subs = LocalSubscribers::load(path)?;
    subs.check_pools(
        &path.display().to_string(),
        cfg.pools.iter().map(|p| p.name.as_str()),
    )?;
    Ok(subs)
}

/// A running control plane (for tests and the binary).
#[derive(Debug)]
pub struct Running {
    /// The session service.
    pub sessions: Sessions,
    /// The metrics.
    pub metrics: Metrics,
    /// The DHCP server (leases).
    pub dhcp: crate::redirect::SharedDhcp,
    /// Bound API address.
    pub api_addr: std::net::SocketAddr,
    /// Bound PFCP address.
    pub pfcp_addr: std::net::SocketAddr,
    /// Bound GTP-U address.
    pub gtpu_addr: std::net::SocketAddr,
    shutdown: watch::Sender<bool>,
    api: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Ask every task to stop and wait for the API server to drain.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.api.await.context("API task")?.context("API server")?;
        Ok(())
    }
}

/// Bind the sockets and spawn every task of the control plane.
pub async fn start(cfg: Config, subs: LocalSubscribers) -> anyhow::Result<Running> {
    let metrics = Metrics::default();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let pfcp = Arc::new(
        UdpSocket::bind(cfg.pfcp.listen)
            .await
            .with_context(|| format!("binding PFCP socket {}", cfg.pfcp.listen))?,
    );
    let gtpu = Arc::new(
        UdpSocket::bind(cfg.gtpu.listen)
            .await
            .with_context(|| format!("binding GTP-U socket {}", cfg.gtpu.listen))?,
    );
    let listener = TcpListener::bind(cfg.api.listen)
        .await
        .with_context(|| format!("binding API listener {}", cfg.api.listen))?;
    let (pfcp_addr, gtpu_addr, api_addr) = (
        pfcp.local_addr()?,
        gtpu.local_addr()?,
        listener.local_addr()?,
    );

    let dhcp = Arc::new(Mutex::new(
        DhcpServer::new(cfg.pools.clone()).context("pool configuration")?,
    ));
    let aaa = Arc::new(subs);
    let (up_tx, up_rx) = mpsc::unbounded_channel();
    let ups = crate::cups::start(&cfg, pfcp, metrics.clone(), up_tx, shutdown_rx.clone());
    let sessions = Sessions::new(
        dhcp.clone(),
        ups.clone(),
        aaa.clone(),
        metrics.clone(),
        gtpu.clone(),
    );
    let dhcp_shared = dhcp.clone();
    if let Some(path) = cfg.dhcp.lease_file.clone() {
        restore_leases(&path, &dhcp, &sessions).await?;
    }

    let (lease_tx, lease_rx) = mpsc::unbounded_channel();
    let redirector = Redirector::new(
        RedirectorConfig {
            gateway_mac: cfg.gateway_mac,
            gateways: cfg.pools.iter().map(|p| p.gateway).collect(),
            per_mac_pps: cfg.dhcp.per_mac_pps,
            per_mac_burst: cfg.dhcp.per_mac_burst,
            max_tracked_macs: cfg.dhcp.max_tracked_macs,
        },
        dhcp,
        aaa,
        metrics.clone(),
    );
    tokio::spawn(run_redirect(
        gtpu,
        redirector,
        ups,
        metrics.clone(),
        lease_tx,
        shutdown_rx.clone(),
    ));
    tokio::spawn(sessions.clone().run(lease_rx, up_rx, shutdown_rx.clone()));
    let state = ApiState {
        sessions: sessions.clone(),
        metrics: metrics.clone(),
    };
    let api = tokio::spawn(api::serve(listener, state, shutdown_rx));
    info!(api = %api_addr, pfcp = %pfcp_addr, gtpu = %gtpu_addr, "vbng-cp running");
    Ok(Running {
        sessions,
        metrics,
        dhcp: dhcp_shared,
        api_addr,
        pfcp_addr,
        gtpu_addr,
        shutdown: shutdown_tx,
        api,
    })
}

/// Open the lease file (replay, drop expired leases, compact), restore its
/// leases into the DHCP server and their sessions into the registry, and
/// journal every lease change from now on. The sessions are re-established
/// once their user plane associates.
async fn restore_leases(
    path: &std::path::Path,
    dhcp: &crate::redirect::SharedDhcp,
    sessions: &Sessions,
) -> anyhow::Result<()> {
    let p = path.to_path_buf();
    let (store, stored) = tokio::task::spawn_blocking(move || {
        LeaseStore::open(&p, crate::session::journal::Clock::now())
    })
    .await
    .context("lease file task")??;
    let clock = crate::session::journal::Clock::now();
    let mut restored = 0usize;
    for s in &stored {
        let lease = s.to_lease(clock);
        let ok = {
            let mut d = dhcp.lock().unwrap_or_else(|p| p.into_inner());
            d.restore(lease.clone())
        };
        if ok && sessions.restore(&lease) {
            restored += 1;
        } else {
            if ok {
                let mut d = dhcp.lock().unwrap_or_else(|p| p.into_inner());
                let _ = d.release(&lease.key);
            }
            warn!(file = %path.display(), ipv4 = %lease.ipv4, pool = %lease.pool, up = lease.key.up,
                "lease from the lease file does not fit the configured pools or user planes; dropped");
            store.append_detached(Record::remove(lease.key));
        }
    }
    info!(file = %path.display(), restored, "leases restored from the lease file");
    sessions.set_lease_store(store);
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
