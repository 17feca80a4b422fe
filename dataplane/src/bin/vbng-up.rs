//! `vbng-up`: the hosted vbng user plane on AF_PACKET or DPDK ports.
//!
//! Threads: one or more poll-mode workers (each with its queues of every port and its own
//! pipeline; see `vbng_dataplane::host::worker`), the PFCP agent, the GTP-U redirect
//! sender and receiver, the metrics server; the main thread waits for SIGINT/SIGTERM and
//! shuts everything down in order. SIGHUP reloads the ACL file (`acl_file`): the new ACLs
//! apply to every session at once, or, if the file is bad or drops an ACL in use, the old
//! ones stay and one warning line says why.
//!
//! Exit codes: 0 after a signal-requested shutdown (or `--help`, `--version`, `--check`),
//! 1 when the runtime fails (a port cannot be opened, an address cannot be bound, a thread
//! died), 2 for a bad flag or configuration (one line on stderr naming the file and key or
//! the flag).

use std::io::Write as _;
use std::net::{TcpListener, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Large tables (sessions, NAT mappings, their indexes) in transparent huge pages.
#[global_allocator]
static ALLOCATOR: vbng_dataplane::host::hugepages::HugePageAlloc =
    vbng_dataplane::host::hugepages::HugePageAlloc;

use clap::Parser;
use clap::error::ErrorKind;

use vbng_cups::pfcp::{NodeId, RecoveryTimeStamp};
use vbng_dataplane::acl::AclSet;
use vbng_dataplane::host::afpacket::{AfPacketPort, RingConfig};
use vbng_dataplane::host::config::NatSettings;
use vbng_dataplane::host::config::{Cli, Config, NodeIdConfig, PortBackend};
use vbng_dataplane::host::metrics::{
    self, AclMatchSample, DeviceSample, NAT_STATS, PortSample, Snapshot, WorkerSample,
};
use vbng_dataplane::host::nat_ipfix::{IpfixSender, IpfixStats};
use vbng_dataplane::host::pfcp_agent::{self, AclReload, AgentConfig, AgentPublished, PfcpAgent};
use vbng_dataplane::host::redirect::{self, RedirectStats};
use vbng_dataplane::host::signals;
use vbng_dataplane::host::worker::{
    Handoff, NatLogRecord, Worker, WorkerGroup, WorkerPort, WorkerShared, WorkerTiming,
};
use vbng_dataplane::nat::Nat;
use vbng_dataplane::packet::PortId;
use vbng_dataplane::pipeline::Pipeline;
use vbng_dataplane::rss::{DEFAULT_RSS_KEY, WorkerMap};
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
        let mut report = format!(
            "vbng-up: configuration from {} is valid\n{cfg:#?}\n",
            cfg.origin
        );
        if let Some(path) = &cfg.acl_file {
            report += &format!(
                "acl file {}: {} ACLs, global {}\n",
                path.display(),
                acls.len(),
                acls.name(acls.global()).unwrap_or("none")
            );
        }
        // A reader that stops early (`| head`) closes the pipe: not an error of the check.
        use std::io::Write as _;
        let _ = std::io::stdout().write_all(report.as_bytes());
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
        "starting version={} config={} backend={} workers={} session_capacity={} access_ports={} \
         core_port={} isa={} build={}",
        env!("CARGO_PKG_VERSION"),
        cfg.origin,
        match cfg.backend {
            PortBackend::AfPacket => "af_packet",
            PortBackend::Dpdk => "dpdk",
        },
        cfg.worker.workers,
        match cfg.worker.session_capacity {
            0 => "on_demand".to_string(),
            n => n.to_string(),
        },
        cfg.access_ports.len(),
        cfg.core_port.name,
        vbng_dataplane::isa::Isa::detect().name(),
        if cfg!(vbng_pgo) { "pgo" } else { "plain" }
    );
    match cfg.backend {
        PortBackend::AfPacket => {
            let ports = open_af_packet(cfg)?;
            serve(cfg, acls, vec![ports], Box::new(Vec::new), || Ok(()))
        }
        #[cfg(feature = "dpdk")]
        PortBackend::Dpdk => {
            let (queues, devices) = dpdk_ports::open(cfg)?;
            let devices = Arc::new(devices);
            serve(
                cfg,
                acls,
                queues,
                Box::new(move || devices.samples()),
                dpdk_ports::register_worker,
            )
        }
        #[cfg(not(feature = "dpdk"))]
        PortBackend::Dpdk => Err("this vbng-up was built without DPDK (feature dpdk)".into()),
    }
}

/// One AF_PACKET socket per port (a single worker owns them all).
fn open_af_packet(cfg: &Config) -> Result<Vec<AfPacketPort>, String> {
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
    Ok(ports)
}

/// Reads the DPDK devices' own counters for a scrape (empty with AF_PACKET).
type DeviceSampler = Box<dyn Fn() -> Vec<DeviceSample> + Send>;

/// Runs the user plane over `port_sets` (one set per worker, index = port id) until a
/// signal or a thread failure. `worker_init` runs first on every worker thread.
fn serve<P: WorkerPort + 'static>(
    cfg: &Config,
    acls: AclSet,
    port_sets: Vec<Vec<P>>,
    devices: DeviceSampler,
    worker_init: fn() -> Result<(), String>,
) -> Result<(), String> {
    let workers = port_sets.len();
    let core_mac = vbng_dataplane::port::Port::mac(&port_sets[0][usize::from(cfg.core_port_id())]);
    let pcfg = cfg.pipeline_config(core_mac);
    up_info!(
        "core ipv4={}/{} next_hop={} static_routes={} gateway_mac={} redirect_pps={}",
        pcfg.core_ipv4,
        pcfg.core_prefix_len,
        pcfg.next_hop,
        cfg.routes.len(),
        pcfg.gateway_mac,
        pcfg.redirect_pps
    );
    match cfg.core_port.ipv6 {
        Some(v6) => up_info!(
            "core ipv6={}/{} next_hop6={} static_routes6={}",
            v6.addr,
            v6.prefix_len,
            v6.next_hop,
            cfg.routes6.len()
        ),
        None => up_info!("core ipv6 off: IPv6 data is dropped (core_port.ipv6 turns it on)"),
    }

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
    // Worker 0 takes the CP's frames; every worker queues frames for the CP on one queue.
    let handoff_len = if workers > 1 { HANDOFF_QUEUE } else { 1 };
    let eventfd_error = |e: std::io::Error| format!("cannot create eventfd: {e}");
    let first = Arc::new(
        WorkerShared::with_handoff(cfg.worker.redirect_queue as usize, handoff_len)
            .map_err(eventfd_error)?,
    );
    let mut shared = vec![first.clone()];
    for _ in 1..workers {
        let own = WorkerShared::with_handoff(1, handoff_len).map_err(eventfd_error)?;
        shared.push(Arc::new(WorkerShared {
            to_cp: first.to_cp.clone(),
            ..own
        }));
    }
    let redirect_stats = Arc::new(RedirectStats::default());
    let gtpu_tx_sock = gtpu_sock
        .try_clone()
        .map_err(|e| format!("cannot clone the GTP-U socket: {e}"))?;
    let sender = redirect::spawn_sender(
        gtpu_tx_sock,
        cfg.gtpu.cp_address,
        first.to_cp.clone(),
        redirect_stats.clone(),
        stop.clone(),
    )
    .map_err(|e| format!("cannot start the GTP-U sender: {e}"))?;
    let receiver = redirect::spawn_receiver(
        gtpu_sock,
        *cfg.gtpu.cp_address.ip(),
        cfg.access_ports.len(),
        first.from_cp.clone(),
        first.waker.clone(),
        redirect_stats.clone(),
        stop.clone(),
    )
    .map_err(|e| format!("cannot start the GTP-U receiver: {e}"))?;

    let seed = {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(std::process::id())
    };
    let scheduler = cfg.qos.scheduler_config();
    match &scheduler {
        Some(sched) => up_info!(
            "qos enabled max_shaped_sessions={} frame_pool={} class_queue_limit={:?} drr_quantum={:?} (per worker)",
            sched.max_subscribers,
            sched.max_packets,
            sched.class_queue_limit,
            sched.drr_quantum
        ),
        None => up_info!("qos disabled: session rates are ignored"),
    }
    let acls = Arc::new(acls);
    if let Some(path) = &cfg.acl_file {
        up_info!(
            "acl file loaded path={} acls={} global={}",
            path.display(),
            acls.len(),
            acls.name(acls.global()).unwrap_or("-")
        );
    }
    let map = Arc::new(WorkerMap::new(&DEFAULT_RSS_KEY, workers));
    let timing = WorkerTiming {
        busy_poll: Duration::from_micros(u64::from(cfg.worker.busy_poll_us)),
        poll_timeout: Duration::from_millis(u64::from(cfg.worker.poll_timeout_ms)),
        stats_interval: Duration::from_millis(u64::from(cfg.worker.stats_interval_ms)),
    };
    let ipfix_stats = cfg
        .nat
        .as_ref()
        .filter(|n| !n.ipfix_collectors.is_empty())
        .map(|_| Arc::new(IpfixStats::default()));
    let nat_logger = match &cfg.nat {
        Some(n) => Some(start_nat_logger(n, ipfix_stats.clone())?),
        None => None,
    };
    let mut worker_threads = Vec::with_capacity(workers);
    for (index, ports) in port_sets.into_iter().enumerate() {
        let mut pipeline = match scheduler.clone() {
            Some(sched) => Pipeline::with_qos(pcfg.clone(), seed.wrapping_add(index as u64), sched),
            None => Pipeline::new(pcfg.clone(), seed.wrapping_add(index as u64)),
        };
        pipeline.set_acls(acls.clone());
        pipeline.reserve_sessions(cfg.worker.session_capacity as usize);
        pipeline.set_icmp_error_rate(cfg.worker.icmp_errors_pps, cfg.worker.icmp_errors_burst);
        if let Err(e) = pipeline.set_routes(&cfg.routes) {
            return Err(format!("static routes: {e}"));
        }
        if let Some(v6) = cfg.core_port.ipv6 {
            pipeline.set_ipv6(v6.addr, v6.next_hop);
            if let Err(e) = pipeline.set_routes6(&cfg.routes6) {
                return Err(format!("static IPv6 routes: {e}"));
            }
        }
        if let Some(n) = &cfg.nat {
            // Each worker translates with the pool addresses whose traffic the NIC's hash
            // gives it, so that answers to them come back to the worker holding the mapping.
            let nat = Nat::with_address_filter(&n.engine, seed.wrapping_add(index as u64), |a| {
                map.owner_of_ipv4(a) == index
            })
            .map_err(|e| format!("nat.pool: worker {index}: {e}"))?;
            up_info!(
                "nat worker={index} outside_addresses={} inside={:?} log={}",
                nat.addresses(),
                n.inside,
                n.log_file.display()
            );
            pipeline.set_nat(nat, n.inside.clone());
        }
        let mut worker = Worker::new(
            pipeline,
            ports,
            cfg.access_ports.len(),
            shared[index].clone(),
            Some(sender.thread().clone()),
        )
        .with_handoff(Handoff::new(index, map.clone(), shared.clone()));
        if let Some((log, _)) = &nat_logger {
            worker = worker.with_nat_log(log.clone());
        }
        let thread = spawn(&format!("vbng-worker{index}"), move || {
            worker_init().map(|()| worker.run(timing))
        })?;
        worker_threads.push(thread);
    }
    // The workers hold the only senders now: the logger ends after the last one is gone.
    let nat_logger = nat_logger.map(|(_, thread)| thread);

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
        let map = map.clone();
        spawn("vbng-pfcp", move || {
            let mut backend = WorkerGroup::new(&shared, map, wait);
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

    let metrics_thread = {
        let (shared, rstats, astats) = (
            shared.clone(),
            redirect_stats.clone(),
            agent_published.clone(),
        );
        let names = cfg.port_names();
        let stop = stop.clone();
        let nat_on = cfg.nat.is_some();
        let ipfix_stats = ipfix_stats.clone();
        spawn("vbng-metrics", move || {
            metrics::serve(metrics_listener, stop, || {
                let mut s = snapshot(&names, &shared, &rstats, &astats, devices(), nat_on);
                s.nat_ipfix = ipfix_stats.as_deref().map(|i| {
                    let ld = |v: &std::sync::atomic::AtomicU64| v.load(Ordering::Relaxed);
                    [ld(&i.messages), ld(&i.records), ld(&i.send_errors)]
                });
                s
            })
        })?
    };
    up_info!("running; send SIGINT or SIGTERM to stop, SIGHUP to reload the ACL file");

    let mut failure = None;
    while !signals::shutdown_requested() {
        if worker_threads.iter().any(|t| t.is_finished()) {
            failure = Some("a worker thread stopped unexpectedly");
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
    for w in &shared {
        w.stop.store(true, Ordering::Relaxed);
        w.waker.wake();
    }
    sender.thread().unpark();
    let results: Vec<_> = worker_threads.into_iter().map(|t| t.join()).collect();
    let agent_result = agent_thread.join();
    let _ = sender.join();
    let _ = receiver.join();
    let _ = metrics_thread.join();

    let mut worker_error = None;
    for (index, result) in results.iter().enumerate() {
        match result {
            Ok(Ok(w)) => {
                let c = w.pipeline().counters();
                up_info!(
                    "stopped worker={index} sessions={} redirected={} injected={} drops={}",
                    w.pipeline().session_count(),
                    c.redirected,
                    c.injected,
                    c.total_drops()
                );
            }
            Ok(Err(e)) => worker_error = Some(format!("worker {index} could not start: {e}")),
            Err(_) => worker_error = Some(format!("worker {index} panicked")),
        }
    }
    // Each worker drained its NAT log when it stopped; dropping them closes the log.
    drop(results);
    if let Some(t) = nat_logger
        && t.join().is_err()
    {
        up_error!("the NAT log thread panicked");
    }
    if let Some(msg) = failure {
        let detail = match (agent_result, worker_error) {
            (Ok(Err(e)), _) => format!(": {e}"),
            (_, Some(e)) => format!(": {e}"),
            _ => String::new(),
        };
        return Err(format!("{msg}{detail}"));
    }
    worker_error.map_or(Ok(()), Err)
}

/// Starts the thread that appends the workers' NAT port-block events to the log file as
/// JSON lines (RFC 6888 REQ-12: who held which outside address and ports, when), flushed
/// after every batch, and exports each batch to the IPFIX collectors (RFC 8158). Returns
/// the sender the workers use and the thread, which ends when every sender is gone.
fn start_nat_logger(
    nat: &NatSettings,
    ipfix_stats: Option<Arc<IpfixStats>>,
) -> Result<(mpsc::Sender<NatLogRecord>, JoinHandle<()>), String> {
    let path = &nat.log_file;
    let mut ipfix = match ipfix_stats {
        Some(stats) => {
            let sender = IpfixSender::new(&nat.ipfix_collectors, nat.ipfix_domain_id, stats)?;
            up_info!(
                "nat ipfix collectors={:?} observation_domain={}",
                nat.ipfix_collectors,
                nat.ipfix_domain_id
            );
            Some(sender)
        }
        None => None,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("nat.log_file {}: {e}", path.display()))?;
    let (tx, rx) = mpsc::channel::<NatLogRecord>();
    let shown = path.display().to_string();
    let thread = spawn("vbng-nat-log", move || {
        let mut out = std::io::BufWriter::new(file);
        let mut line = String::with_capacity(256);
        let mut failed = false;
        let mut batch = Vec::new();
        while let Ok(first) = rx.recv() {
            batch.clear();
            batch.extend(std::iter::once(first).chain(rx.try_iter()));
            for r in &batch {
                line.clear();
                let _ = r.event.write_json(r.unix_base_ns, &mut line);
                line.push('\n');
                if let Err(e) = out.write_all(line.as_bytes())
                    && !failed
                {
                    failed = true;
                    up_error!("nat log {shown}: {e}");
                }
            }
            if let Err(e) = out.flush()
                && !failed
            {
                failed = true;
                up_error!("nat log {shown}: {e}");
            }
            if let Some(ipfix) = &mut ipfix {
                let export_s = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as u32);
                for (collector, e) in ipfix.send(&batch, export_s) {
                    up_error!("nat ipfix collector {collector}: {e}");
                }
            }
        }
    })?;
    Ok((tx, thread))
}

/// Frame buffers (2 KiB each) of each worker's queue for frames other workers hand over.
const HANDOFF_QUEUE: usize = 4096;

/// Gathers everything `/metrics` shows, summing the workers' counters.
fn snapshot(
    names: &[String],
    workers: &[Arc<WorkerShared>],
    r: &RedirectStats,
    a: &AgentPublished,
    devices: Vec<DeviceSample>,
    nat_on: bool,
) -> Snapshot {
    let ld = |v: &std::sync::atomic::AtomicU64| v.load(Ordering::Relaxed);
    let first = &workers[0];
    let sum_array = |f: &dyn Fn(&WorkerShared) -> Vec<u64>| -> Vec<u64> {
        let mut total: Vec<u64> = Vec::new();
        for w in workers {
            let v = f(w);
            total.resize(total.len().max(v.len()), 0);
            for (t, x) in total.iter_mut().zip(v) {
                *t += x;
            }
        }
        total
    };
    let qos = sum_array(&|w| w.stats.qos_totals().to_vec());
    let totals = sum_array(&|w| w.stats.totals().to_vec());
    let total = |i: usize| totals.get(i).copied().unwrap_or(0);
    let ports = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut sum = PortSample::default();
            for w in workers {
                let p = w.stats.port(i as PortId);
                sum.rx_packets += p.rx_packets;
                sum.rx_bytes += p.rx_bytes;
                sum.tx_packets += p.tx_packets;
                sum.tx_bytes += p.tx_bytes;
                sum.rx_lost += p.rx_lost;
            }
            (n.clone(), sum)
        })
        .collect();
    let worker_samples = workers
        .iter()
        .map(|w| {
            let [out, taken, dropped] = w.stats.handoffs();
            WorkerSample {
                // The pipeline counts what it processed: its own frames kept plus those
                // handed in; the worker received its own kept plus those handed out.
                rx_packets: (0..names.len())
                    .map(|i| w.stats.port(i as PortId).rx_packets)
                    .sum::<u64>()
                    .saturating_sub(taken)
                    + out,
                sessions: w.stats.totals()[5],
                handoff_out: out,
                handoff_in: taken,
                handoff_dropped: dropped,
            }
        })
        .collect();
    // Every worker holds the same ACL set once a reload reached them all; until then the
    // first worker's set is shown with its own counters.
    let (acls, mut hits) = first.stats.acl_hits();
    for w in &workers[1..] {
        let (theirs, more) = w.stats.acl_hits();
        if Arc::ptr_eq(&acls, &theirs) {
            for (h, m) in hits.iter_mut().zip(more) {
                *h += m;
            }
        }
    }
    Snapshot {
        ports,
        drops: sum_array(&|w| w.stats.drops()),
        redirected: total(0),
        redirect_queue_drops: first.to_cp.dropped(),
        injected: total(1),
        inject_failed: total(2) + ld(&r.inject_queue_full),
        arp_replies: total(3),
        arp_requests: total(4),
        nd_replies: total(9),
        nd_requests: total(10),
        nat: nat_on.then(|| {
            let mut sum = [0u64; NAT_STATS];
            for (t, v) in sum.iter_mut().zip(sum_array(&|w| w.stats.nat().to_vec())) {
                *t = v;
            }
            sum
        }),
        nat_ipfix: None,
        icmp_errors_sent: total(7),
        icmp_errors_rate_limited: total(8),
        sessions: total(5),
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
        worker_sleeps: total(6),
        qos_sessions: workers
            .iter()
            .flat_map(|w| w.stats.qos_sessions())
            .collect(),
        qos_backlog_packets: qos[0],
        qos_pool_free_frames: qos[1],
        qos_pool_frames: qos[2],
        qos_unshaped_sessions: qos[3],
        acl_matches: AclMatchSample::from_hits(&acls, &hits),
        acl_reloads: ld(&a.acl_reloads),
        acl_reload_failures: ld(&a.acl_reload_failures),
        workers: worker_samples,
        devices,
    }
}

/// The DPDK port backend: EAL, one mbuf pool, every port started with one receive and one
/// transmit queue per worker.
#[cfg(feature = "dpdk")]
mod dpdk_ports {
    use std::sync::Arc;

    use vbng_dataplane::host::config::Config;
    use vbng_dataplane::host::dpdk::{self, DpdkQueue, EthPort, Mempool, PortSetup, RssSetup};
    use vbng_dataplane::host::metrics::DeviceSample;
    use vbng_dataplane::packet::{BUFFER_LEN, PortId};
    use vbng_dataplane::rss::{DEFAULT_RSS_KEY, WorkerMap};
    use vbng_dataplane::up_info;

    /// RTE_ETH_RSS_IPV4, FRAG_IPV4 and NONFRAG_IPV4_{TCP,UDP,SCTP,OTHER}: every IPv4 frame.
    const RSS_ALL_IPV4: u64 = 0b1111_1100;
    /// RTE_ETH_RSS_L3_SRC_ONLY: hash the source address alone (access side: the subscriber).
    const RSS_L3_SRC_ONLY: u64 = 1 << 63;
    /// RTE_ETH_RSS_L3_DST_ONLY: hash the destination address alone (core side).
    const RSS_L3_DST_ONLY: u64 = 1 << 62;
    /// Mbufs each lcore keeps in its pool cache.
    const POOL_CACHE: u32 = 256;

    /// The started devices (scrapes read their counters) and the pool behind their queues.
    pub struct Devices {
        ports: Vec<(String, EthPort)>,
        _pool: Arc<Mempool>,
    }

    impl Devices {
        /// Link, counters and extended statistics of every device.
        pub fn samples(&self) -> Vec<DeviceSample> {
            self.ports
                .iter()
                .map(|(label, port)| {
                    let link = port.link();
                    let stats = port.stats();
                    DeviceSample {
                        port: label.clone(),
                        driver: port.driver(),
                        link_up: link.up,
                        speed_mbps: link.speed_mbps,
                        rx_missed: stats.rx_missed,
                        rx_errors: stats.rx_errors,
                        tx_errors: stats.tx_errors,
                        rx_nombuf: stats.rx_nombuf,
                        xstats: port.xstats(),
                    }
                })
                .collect()
        }
    }

    /// Starts EAL and every configured device; returns each worker's queues (index = port
    /// id) and the devices.
    pub fn open(cfg: &Config) -> Result<(Vec<Vec<DpdkQueue>>, Devices), String> {
        let args = cfg.eal_args();
        up_info!("dpdk eal args=\"{}\"", args.join(" "));
        let affinity = affinity::current();
        let eal = dpdk::eal_init(&args).map_err(|e| format!("cannot initialise DPDK: {e}"))?;
        // EAL pinned this thread to its main lcore; the workers and the other threads
        // started from here inherit the CPUs the process was given instead.
        if let Some(set) = affinity {
            affinity::restore(&set);
        }
        let workers = usize::from(cfg.worker.workers.max(1));
        let pool = Mempool::new(
            eal,
            "vbng-up",
            cfg.dpdk.mbufs,
            POOL_CACHE,
            BUFFER_LEN as u16,
        )
        .map_err(|e| format!("cannot create the mbuf pool (dpdk.mbufs): {e}"))?;
        let map = WorkerMap::new(&DEFAULT_RSS_KEY, workers);
        let mut queues: Vec<Vec<DpdkQueue>> = (0..workers).map(|_| Vec::new()).collect();
        let mut ports = Vec::new();
        let access_ports = cfg.access_ports.len();
        for (id, (device, label)) in cfg
            .port_device_names()
            .into_iter()
            .zip(cfg.port_names())
            .enumerate()
        {
            let mut port = EthPort::by_name(eal, &device)
                .map_err(|e| format!("port {label}: device {device}: {e}"))?;
            let (max_rx, max_tx) = port.max_queues();
            if usize::from(max_rx) < workers || usize::from(max_tx) < workers {
                return Err(format!(
                    "port {label}: device {device} (driver {}) has {max_rx} receive and {max_tx} transmit queues; {workers} workers need one of each",
                    port.driver()
                ));
            }
            let access = id < access_ports;
            let rss = (workers > 1).then(|| RssSetup {
                key: DEFAULT_RSS_KEY,
                hash_functions: RSS_ALL_IPV4
                    | if access {
                        RSS_L3_SRC_ONLY
                    } else {
                        RSS_L3_DST_ONLY
                    },
                reta: map.reta().iter().map(|&q| u16::from(q)).collect(),
            });
            let setup = PortSetup {
                rx_queues: workers as u16,
                tx_queues: workers as u16,
                rx_descriptors: cfg.dpdk.rx_descriptors,
                tx_descriptors: cfg.dpdk.tx_descriptors,
                rss,
                // Subscribers send to the virtual gateway MAC, not the device's.
                promiscuous: access,
            };
            let outcome = port
                .configure_and_start(&setup, &pool)
                .map_err(|e| format!("port {label}: device {device}: {e}"))?;
            let link = port.link();
            up_info!(
                "port started id={id} name={label} device={device} driver={} mac={} link={} speed_mbps={} queues={workers} rss={outcome:?}",
                port.driver(),
                port.mac(),
                if link.up { "up" } else { "down" },
                link.speed_mbps
            );
            for (worker, set) in queues.iter_mut().enumerate() {
                set.push(port.queue(worker as u16, id as PortId, &pool));
            }
            ports.push((label, port));
        }
        Ok((queues, Devices { ports, _pool: pool }))
    }

    /// Runs first on every worker thread: gives it a DPDK lcore id, so that it has its own
    /// mbuf cache.
    pub fn register_worker() -> Result<(), String> {
        dpdk::register_thread()
            .map(|_| ())
            .map_err(|e| format!("cannot register the worker thread with DPDK: {e}"))
    }

    /// The calling thread's CPU set.
    mod affinity {
        /// The CPUs the calling thread may run on (None if the kernel refused to say).
        pub fn current() -> Option<libc::cpu_set_t> {
            // SAFETY: cpu_set_t is plain bits; all-zero is a valid (empty) set.
            let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            // SAFETY: the pointer and size describe `set`, which outlives the call.
            let rc = unsafe {
                libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set)
            };
            (rc == 0).then_some(set)
        }

        /// Lets the calling thread run on `set` again.
        pub fn restore(set: &libc::cpu_set_t) {
            // SAFETY: the pointer and size describe `set`, valid for the call.
            let _ =
                unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) };
        }
    }
}
