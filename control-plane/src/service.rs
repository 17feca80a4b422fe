//! Wiring of the running `vbng-cp`: sockets, tasks and shutdown.

use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};
use vbng_access::dhcpv4::DhcpServer;

use crate::aaa::accounting::Accounting;
use crate::aaa::coa::SessionCoa;
use crate::aaa::radius::{RadiusAaa, client_config, server_configs};
use crate::aaa::{Aaa, LocalSubscribers};
use crate::api::{self, ApiState};
use crate::config::AaaBackend;
use crate::config::{Config, ConfigError};
use crate::ipv6::SharedDhcpv6;
use crate::metrics::Metrics;
use crate::redirect::{Redirector, RedirectorConfig, run_redirect};
use crate::session::journal::Record;
use crate::session::manager::AccountingSettings;
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
    /// The RADIUS parts, with `[aaa] backend = "radius"`.
    pub radius: Option<RadiusParts>,
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

/// The running RADIUS parts (for metrics and tests).
#[derive(Debug, Clone)]
pub struct RadiusParts {
    /// Authorization, with its client.
    pub auth: Arc<RadiusAaa>,
    /// The accounting client.
    pub acct_client: Arc<vbng_aaa::client::Client>,
    /// The accounting spool.
    pub spool: vbng_aaa::spool::Spool,
    /// The CoA server's bound address and counters, if configured.
    pub coa: Option<(std::net::SocketAddr, Arc<vbng_aaa::coa::CoaStats>)>,
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
    let (replay_tx, replay_rx) = mpsc::unbounded_channel();
    let aaa = match cfg.aaa.backend {
        AaaBackend::Local => Aaa::Local(Arc::new(subs)),
        AaaBackend::Radius => Aaa::Radius(Arc::new(
            RadiusAaa::new(&cfg.radius, cfg.pfcp.node_ipv4(), replay_tx)
                .await
                .context("RADIUS client")?,
        )),
    };
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
    let dhcpv6 = SharedDhcpv6::new(cfg.gateway_mac, cfg.ipv6_pools.clone());
    let radius = match aaa.radius() {
        Some(auth) => {
            Some(start_radius(&cfg, auth.clone(), &sessions, &metrics, shutdown_rx.clone()).await?)
        }
        None => None,
    };
    let (journal, stored_pppoe) = match cfg.dhcp.lease_file.clone() {
        Some(path) => {
            let (store, pppoe) = restore_leases(&path, &dhcp, &sessions).await?;
            (Some(store), pppoe)
        }
        None => (None, Vec::new()),
    };

    let pppoe_tx = if cfg.pppoe.enabled {
        let (mut svc, tx, rx) = crate::pppoe::PppoeService::new(
            pppoe_settings(&cfg, &dhcpv6),
            gtpu.clone(),
            dhcp.clone(),
            sessions.aaa().clone(),
            sessions.clone(),
            metrics.clone(),
        );
        if let Some(store) = journal {
            svc.set_journal(store);
            svc.restore(stored_pppoe).await;
        }
        let (hook_tx, mut hook_rx) = mpsc::unbounded_channel::<(u64, u32)>();
        sessions.set_pppoe_hook(hook_tx);
        let forward = tx.clone();
        tokio::spawn(async move {
            while let Some((id, cause)) = hook_rx.recv().await {
                let _ = forward.send(crate::pppoe::Input::Terminate { id, cause });
            }
        });
        tokio::spawn(svc.run(rx, shutdown_rx.clone()));
        Some(tx)
    } else {
        if let Some(store) = &journal {
            for p in &stored_pppoe {
                warn!(
                    session_id = p.key.session_id,
                    "PPPoE session in the lease file, but [pppoe] is disabled; dropped"
                );
                store.append_detached(Record::pppoe_remove(p.key.into()));
            }
        }
        None
    };
    let (lease_tx, lease_rx) = mpsc::unbounded_channel();
    let redirector = Redirector::new(
        RedirectorConfig {
            gateway_mac: cfg.gateway_mac,
            gateways: cfg.pools.iter().map(|p| p.gateway).collect(),
            per_mac_pps: cfg.dhcp.per_mac_pps,
            per_mac_burst: cfg.dhcp.per_mac_burst,
            max_tracked_macs: cfg.dhcp.max_tracked_macs,
        },
        dhcp.clone(),
        aaa,
        metrics.clone(),
    )
    .with_ipv6(crate::redirect::ipv6::Ipoe6::new(
        cfg.gateway_mac,
        dhcpv6,
        dhcp,
        sessions.clone(),
        vbng_access::ipv6::ra::RaConfig {
            mtu: 1500,
            ..Default::default()
        },
    ));
    tokio::spawn(run_redirect(
        gtpu,
        redirector,
        ups,
        metrics.clone(),
        lease_tx,
        replay_rx,
        pppoe_tx,
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
        radius,
        shutdown: shutdown_tx,
        api,
    })
}

/// The PPPoE service's settings from `[pppoe]` (a fresh random cookie
/// secret per start: cookies of PADOs sent before a restart are refused,
/// and clients simply rediscover).
fn pppoe_settings(cfg: &Config, dhcpv6: &SharedDhcpv6) -> crate::pppoe::PppoeSettings {
    use crate::config::pppoe::PppAuth;
    use vbng_access::ppp::AuthMethod;
    let p = &cfg.pppoe;
    crate::pppoe::PppoeSettings {
        discovery: vbng_access::pppoe::discovery::DiscoveryConfig {
            ac_name: p.ac_name.clone(),
            service_names: p.service_names.clone(),
            cookie_secret: vbng_aaa::radius::crypto::random_authenticator().unwrap_or([0x5a; 16]),
            max_sessions_per_mac: p.max_sessions_per_mac,
            max_sessions_per_vlan: p.max_sessions_per_vlan,
            padi_per_mac_pps: p.padi_per_mac_pps,
            padi_per_port_pps: p.padi_per_port_pps,
            padr_per_mac_pps: p.padr_per_mac_pps,
            ..Default::default()
        },
        ppp: vbng_access::ppp::PppConfig {
            mru: p.mtu,
            auth: match p.auth {
                PppAuth::Pap => AuthMethod::Pap,
                PppAuth::Chap => AuthMethod::Chap,
                PppAuth::ChapThenPap => AuthMethod::ChapThenPap,
            },
            echo_interval_ms: p.echo_interval_s * 1000,
            echo_failures: p.echo_failures,
            ..Default::default()
        },
        gateway_mac: cfg.gateway_mac,
        mtu: p.mtu,
        dhcpv6: dhcpv6.clone(),
        ra: vbng_access::ipv6::ra::RaConfig {
            mtu: p.mtu,
            ..Default::default()
        },
    }
}

/// Open the accounting spool and start its delivery, attach accounting to
/// `sessions`, and start the CoA server if configured.
async fn start_radius(
    cfg: &Config,
    auth: Arc<RadiusAaa>,
    sessions: &Sessions,
    metrics: &Metrics,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<RadiusParts> {
    let r = &cfg.radius;
    let nas_ip = r.nas_ip.unwrap_or(cfg.pfcp.node_ipv4());
    let acct_client = Arc::new(
        vbng_aaa::client::Client::new(server_configs(&r.accounting_servers()), client_config(r))
            .await
            .context("RADIUS accounting client")?,
    );
    let path = r
        .accounting_spool
        .clone()
        .context("radius.accounting_spool is required with aaa.backend = \"radius\"")?;
    let spool = vbng_aaa::spool::Spool::open(vbng_aaa::spool::SpoolConfig::new(path.clone()))
        .with_context(|| format!("accounting spool {}", path.display()))?;
    if spool.pending() > 0 {
        info!(
            pending = spool.pending(),
            "accounting records from before the restart will be delivered first"
        );
    }
    {
        let spool = spool.clone();
        let client = acct_client.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move { spool.deliver(client, shutdown).await });
    }
    sessions.set_accounting(AccountingSettings {
        accounting: Accounting::new(spool.clone(), &r.nas_identifier, nas_ip, r.vendor_id),
        default_interim_s: r.interim_interval_s,
        min_interim_s: r.min_interim_s,
    });
    let coa = match r.coa.listen {
        Some(listen) => {
            let server = vbng_aaa::coa::CoaServer::bind(
                vbng_aaa::coa::CoaConfig {
                    listen,
                    clients: r
                        .coa
                        .clients
                        .iter()
                        .map(|c| vbng_aaa::coa::CoaClient {
                            addr: c.address,
                            secret: c.secret.as_bytes().to_vec(),
                        })
                        .collect(),
                    require_message_authenticator: r.coa.require_message_authenticator,
                    ..vbng_aaa::coa::CoaConfig::default()
                },
                Arc::new(SessionCoa::new(
                    sessions.clone(),
                    r.vendor_id,
                    &r.nas_identifier,
                    nas_ip,
                )),
            )
            .await
            .with_context(|| format!("binding the CoA socket {listen}"))?;
            let addr = server.local_addr();
            let stats = server.stats_handle();
            tokio::spawn(server.run(shutdown.clone()));
            info!(%addr, "CoA/Disconnect server listening");
            Some((addr, stats))
        }
        None => None,
    };
    let parts = RadiusParts {
        auth,
        acct_client,
        spool,
        coa,
    };
    tokio::spawn(crate::metrics::radius::export(
        parts.clone(),
        metrics.clone(),
        shutdown,
    ));
    Ok(parts)
}

/// Open the lease file (replay, drop expired leases, compact), restore its
/// leases into the DHCP server and their sessions into the registry, and
/// journal every lease change from now on. The sessions are re-established
/// once their user plane associates. Returns the journal and the PPPoE
/// sessions it holds, for the PPPoE service to restore.
async fn restore_leases(
    path: &std::path::Path,
    dhcp: &crate::redirect::SharedDhcp,
    sessions: &Sessions,
) -> anyhow::Result<(LeaseStore, Vec<crate::session::journal::StoredPppoe>)> {
    let p = path.to_path_buf();
    let (store, replayed) = tokio::task::spawn_blocking(move || {
        LeaseStore::open(&p, crate::session::journal::Clock::now())
    })
    .await
    .context("lease file task")??;
    let clock = crate::session::journal::Clock::now();
    let mut restored = 0usize;
    for s in &replayed.leases {
        let lease = s.to_lease(clock);
        let ok = {
            let mut d = dhcp.lock().unwrap_or_else(|p| p.into_inner());
            d.restore(lease.clone())
        };
        if ok && sessions.restore(&lease, s.profile.clone()) {
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
    sessions.set_lease_store(store.clone());
    Ok((store, replayed.pppoe))
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
