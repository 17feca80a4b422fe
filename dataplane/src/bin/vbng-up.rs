//! `vbng-up`: the hosted vbng user plane on AF_PACKET ports.
//!
//! Threads: one poll-mode worker (ports + pipeline), the PFCP agent, the GTP-U redirect
//! sender and receiver, the metrics server; the main thread waits for SIGINT/SIGTERM and
//! shuts everything down in order. SIGHUP reloads the ACL file (`acl_file`): the new ACLs
//! apply to every session at once, or, if the file is bad or drops an ACL in use, the old
//! ones stay and one warning line says why.
//!
//! Exit codes: 0 after a signal-requested shutdown (or `--help`, `--version`, `--check`),
//! 1 when the runtime fails (a port cannot be opened, an address cannot be bound, a thread
//! died), 2 for a bad flag or configuration (one line on stderr naming the file and key or
//! the flag).

use std::net::{TcpListener, UdpSocket};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use clap::error::ErrorKind;

use vbng_cups::pfcp::{NodeId, RecoveryTimeStamp};
use vbng_dataplane::acl::AclSet;
use vbng_dataplane::host::afpacket::{AfPacketPort, RingConfig};
use vbng_dataplane::host::config::{Cli, Config, NodeIdConfig};
use vbng_dataplane::host::metrics::{self, AclMatchSample, Snapshot};
use vbng_dataplane::host::pfcp_agent::{self, AclReload, AgentConfig, AgentPublished, PfcpAgent};
use vbng_dataplane::host::redirect::{self, RedirectStats};
use vbng_dataplane::host::signals;
use vbng_dataplane::host::worker::{Worker, WorkerHandle, WorkerShared, WorkerTiming};
use vbng_dataplane::packet::PortId;
use vbng_dataplane::pipeline::Pipeline;
use vbng_dataplane::{up_error, up_info};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("vbng-up: {first} (see vbng-up --help)");
            return ExitCode::from(2);
        }
    };
    let cfg = match Config::load(&cli) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("vbng-up: {e}");
            return ExitCode::from(2);
        }
    };
    let acls = match load_acls(&cfg) {
        Ok(acls) => acls,
        Err(e) => {
            eprintln!("vbng-up: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check {
        println!("vbng-up: configuration from {} is valid", cfg.origin);
        println!("{cfg:#?}");
        if let Some(path) = &cfg.acl_file {
            println!(
                "acl file {}: {} ACLs, global {}",
                path.display(),
                acls.len(),
                acls.name(acls.global()).unwrap_or("none")
            );
        }
        return ExitCode::SUCCESS;
    }
    match run(&cfg, acls) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            up_error!("{msg}");
            ExitCode::from(1)
        }
    }
}

/// Reads and compiles the ACL file, if the configuration names one.
fn load_acls(cfg: &Config) -> Result<AclSet, String> {
    let Some(path) = &cfg.acl_file else {
        return Ok(AclSet::empty());
    };
    let file = vbng_dataplane::host::config::acl::load_acl_file(path).map_err(|e| e.to_string())?;
    AclSet::build(file.global.as_deref(), &file.acls, None)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Binds a UDP socket, naming the config key on failure.
fn bind_udp(addr: std::net::SocketAddrV4, key: &str) -> Result<UdpSocket, String> {
    UdpSocket::bind(addr).map_err(|e| {
        format!("cannot bind {key} {addr}: {e} (is the address configured, e.g. on lo, and free?)")
    })
}

fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>, String> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| format!("cannot start thread {name}: {e}"))
}

fn run(cfg: &Config, acls: AclSet) -> Result<(), String> {
    signals::install().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    up_info!(
        "starting version={} config={} access_ports={} core_port={}",
        env!("CARGO_PKG_VERSION"),
        cfg.origin,
        cfg.access_ports.len(),
        cfg.core_port.iface
    );

    // Ports: access 0..n, then core.
    let rings = RingConfig {
        rx_slots: cfg.worker.rx_ring_slots,
        tx_slots: cfg.worker.tx_ring_slots,
    };
    let mut ports = Vec::new();
    let ifaces = cfg
        .access_ports
        .iter()
        .map(|p| (p.iface.as_str(), p.name.as_str()))
        .chain([(cfg.core_port.iface.as_str(), cfg.core_port.name.as_str())]);
    for (id, (iface, name)) in ifaces.enumerate() {
        let port = AfPacketPort::open(iface, id as PortId, rings)
            .map_err(|e| format!("cannot open port {name}: {e}"))?;
        up_info!(
            "port opened id={id} name={name} iface={iface} ifindex={} mac={} qdisc_bypass={} ignore_outgoing={}",
            port.ifindex(),
            vbng_dataplane::port::Port::mac(&port),
            port.qdisc_bypass(),
            port.ignore_outgoing()
        );
        ports.push(port);
    }
    let core_mac = vbng_dataplane::port::Port::mac(&ports[usize::from(cfg.core_port_id())]);
    let pcfg = cfg.pipeline_config(core_mac);
    up_info!(
        "core ipv4={}/{} next_hop={} gateway_mac={} redirect_pps={}",
        pcfg.core_ipv4,
        pcfg.core_prefix_len,
        pcfg.next_hop,
        pcfg.gateway_mac,
        pcfg.redirect_pps
    );

    let pfcp_sock = bind_udp(cfg.pfcp.listen, "pfcp.listen")?;
    let gtpu_sock = bind_udp(cfg.gtpu.listen, "gtpu.listen")?;
    let metrics_listener = TcpListener::bind(cfg.metrics_listen)
        .map_err(|e| format!("cannot bind metrics.listen {}: {e}", cfg.metrics_listen))?;
    up_info!(
        "listening pfcp={} node_id={} gtpu={} cp_gtpu={} metrics=http://{}/metrics",
        cfg.pfcp.listen,
        cfg.pfcp.node_id,
        cfg.gtpu.listen,
        cfg.gtpu.cp_address,
        cfg.metrics_listen
    );

    let stop = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(
        WorkerShared::new(cfg.worker.redirect_queue as usize)
            .map_err(|e| format!("cannot create eventfd: {e}"))?,
    );
    let redirect_stats = Arc::new(RedirectStats::default());
    let gtpu_tx_sock = gtpu_sock
        .try_clone()
        .map_err(|e| format!("cannot clone the GTP-U socket: {e}"))?;
    let sender = redirect::spawn_sender(
        gtpu_tx_sock,
        cfg.gtpu.cp_address,
        shared.to_cp.clone(),
        redirect_stats.clone(),
        stop.clone(),
    )
    .map_err(|e| format!("cannot start the GTP-U sender: {e}"))?;
    let receiver = redirect::spawn_receiver(
        gtpu_sock,
        *cfg.gtpu.cp_address.ip(),
        cfg.access_ports.len(),
        shared.from_cp.clone(),
        shared.waker.clone(),
        redirect_stats.clone(),
        stop.clone(),
    )
    .map_err(|e| format!("cannot start the GTP-U receiver: {e}"))?;

    // Worker.
    let seed = {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(std::process::id())
    };
    let pipeline = match cfg.qos.scheduler_config() {
        Some(sched) => {
            up_info!(
                "qos enabled max_shaped_sessions={} frame_pool={} class_queue_limit={:?} drr_quantum={:?}",
                sched.max_subscribers,
                sched.max_packets,
                sched.class_queue_limit,
                sched.drr_quantum
            );
            Pipeline::with_qos(pcfg, seed, sched)
        }
        None => {
            up_info!("qos disabled: session rates are ignored");
            Pipeline::new(pcfg, seed)
        }
    };
    let acls = Arc::new(acls);
    if let Some(path) = &cfg.acl_file {
        up_info!(
            "acl file loaded path={} acls={} global={}",
            path.display(),
            acls.len(),
            acls.name(acls.global()).unwrap_or("-")
        );
    }
    let mut pipeline = pipeline;
    pipeline.set_acls(acls.clone());
    let worker = Worker::new(
        pipeline,
        ports,
        cfg.access_ports.len(),
        shared.clone(),
        Some(sender.thread().clone()),
    );
    let timing = WorkerTiming {
        busy_poll: Duration::from_micros(u64::from(cfg.worker.busy_poll_us)),
        poll_timeout: Duration::from_millis(u64::from(cfg.worker.poll_timeout_ms)),
        stats_interval: Duration::from_millis(u64::from(cfg.worker.stats_interval_ms)),
    };
    let worker_thread = spawn("vbng-worker", move || worker.run(timing))?;

    // PFCP agent.
    let recovery = RecoveryTimeStamp::from_unix_secs(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    );
    let agent = PfcpAgent::with_acls(
        AgentConfig {
            node_id: match &cfg.pfcp.node_id {
                NodeIdConfig::Ipv4(a) => NodeId::Ipv4(*a),
                NodeIdConfig::Fqdn(s) => NodeId::Fqdn(s.clone()),
            },
            pfcp_ipv4: *cfg.pfcp.listen.ip(),
            gtpu_ipv4: *cfg.gtpu.listen.ip(),
            access_ports: cfg.access_ports.len(),
            recovery_time_stamp: recovery,
            heartbeat_interval_ms: u64::from(cfg.pfcp.heartbeat_interval_s) * 1000,
            heartbeat_misses: cfg.pfcp.heartbeat_misses,
        },
        acls,
    );
    let acl_reload = cfg.acl_file.clone().map(|path| AclReload {
        path,
        requested: Box::new(signals::take_reload_request),
    });
    let agent_published = Arc::new(AgentPublished::default());
    let agent_thread = {
        let (shared, stop, published) = (shared.clone(), stop.clone(), agent_published.clone());
        let wait = Duration::from_millis(u64::from(cfg.pfcp.deletion_wait_ms));
        spawn("vbng-pfcp", move || {
            let mut backend = WorkerHandle::new(shared, wait);
            pfcp_agent::run(
                pfcp_sock,
                agent,
                &mut backend,
                &published,
                &stop,
                acl_reload,
            )
        })?
    };

    // Metrics.
    let metrics_thread = {
        let (shared, rstats, astats) = (
            shared.clone(),
            redirect_stats.clone(),
            agent_published.clone(),
        );
        let names = cfg.port_names();
        let stop = stop.clone();
        spawn("vbng-metrics", move || {
            metrics::serve(metrics_listener, stop, || {
                snapshot(&names, &shared, &rstats, &astats)
            })
        })?
    };
    up_info!("running; send SIGINT or SIGTERM to stop, SIGHUP to reload the ACL file");

    // Wait for a signal or a thread that ended on its own (a failure).
    let mut failure = None;
    while !signals::shutdown_requested() {
        if worker_thread.is_finished() {
            failure = Some("the worker thread stopped unexpectedly");
            break;
        }
        if agent_thread.is_finished() {
            failure = Some("the PFCP agent thread stopped unexpectedly");
            break;
        }
        if metrics_thread.is_finished() {
            failure = Some("the metrics thread stopped unexpectedly");
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if failure.is_none() {
        up_info!(
            "signal {} received; shutting down",
            signals::signal_number()
        );
    }

    stop.store(true, Ordering::Relaxed);
    shared.stop.store(true, Ordering::Relaxed);
    shared.waker.wake();
    sender.thread().unpark();
    let worker = worker_thread.join();
    let agent_result = agent_thread.join();
    let _ = sender.join();
    let _ = receiver.join();
    let _ = metrics_thread.join();

    if let Ok(w) = &worker {
        let c = w.pipeline().counters();
        up_info!(
            "stopped sessions={} redirected={} injected={} drops={}",
            w.pipeline().session_count(),
            c.redirected,
            c.injected,
            c.total_drops()
        );
    }
    if let Some(msg) = failure {
        let detail = match agent_result {
            Ok(Err(e)) => format!(": {e}"),
            _ => String::new(),
        };
        return Err(format!("{msg}{detail}"));
    }
    if worker.is_err() {
        return Err("the worker thread panicked".into());
    }
    Ok(())
}

/// Gathers everything `/metrics` shows.
fn snapshot(
    names: &[String],
    shared: &WorkerShared,
    r: &RedirectStats,
    a: &AgentPublished,
) -> Snapshot {
    let ld = |v: &std::sync::atomic::AtomicU64| v.load(Ordering::Relaxed);
    let [backlog, pool_free, pool, unshaped] = shared.stats.qos_totals();
    let [
        redirected,
        injected,
        inject_failed,
        arp_replies,
        arp_requests,
        sessions,
        sleeps,
    ] = shared.stats.totals();
    Snapshot {
        ports: names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), shared.stats.port(i as PortId)))
            .collect(),
        drops: shared.stats.drops(),
        redirected,
        redirect_queue_drops: shared.to_cp.dropped(),
        injected,
        inject_failed: inject_failed + ld(&r.inject_queue_full),
        arp_replies,
        arp_requests,
        sessions,
        gtpu_tx_packets: ld(&r.tx_packets),
        gtpu_rx_packets: ld(&r.rx_packets),
        gtpu_malformed: ld(&r.malformed) + ld(&r.foreign),
        gtpu_send_errors: ld(&r.send_errors),
        pfcp_associated: ld(&a.associated),
        pfcp_peer_lost: ld(&a.peer_lost),
        pfcp_rx_messages: ld(&a.rx_messages),
        pfcp_tx_messages: ld(&a.tx_messages),
        pfcp_rejected: ld(&a.rejected),
        pfcp_sessions_adopted: ld(&a.adopted),
        worker_sleeps: sleeps,
        qos_sessions: shared.stats.qos_sessions(),
        qos_backlog_packets: backlog,
        qos_pool_free_frames: pool_free,
        qos_pool_frames: pool,
        qos_unshaped_sessions: unshaped,
        acl_matches: {
            let (acls, hits) = shared.stats.acl_hits();
            AclMatchSample::from_hits(&acls, &hits)
        },
        acl_reloads: ld(&a.acl_reloads),
        acl_reload_failures: ld(&a.acl_reload_failures),
    }
}
