//! Config tests: defaults, overrides, one-line errors, the example file.
use super::*;

fn cli() -> Cli {
    Cli::default()
}

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Some(Path::new("/etc/x.toml")), &cli())
}

const MINIMAL: &str =
    "[[access_port]]\niface = \"veth-acc0\"\n[core_port]\niface = \"veth-core\"\n";

#[test]
fn defaults_match_the_contract() {
    let c = load(MINIMAL).unwrap();
    assert_eq!(c.pfcp.listen, "127.0.0.2:8805".parse().unwrap());
    assert_eq!(
        c.pfcp.node_id,
        NodeIdConfig::Ipv4(Ipv4Addr::new(127, 0, 0, 2))
    );
    assert_eq!(c.gtpu.listen, "127.0.0.2:2152".parse().unwrap());
    assert_eq!(c.gtpu.cp_address, "127.0.0.1:2152".parse().unwrap());
    assert_eq!(c.metrics_listen, "127.0.0.2:9100".parse().unwrap());
    assert_eq!(c.gateway_mac.to_string(), "02:00:5e:00:01:01");
    assert_eq!(c.core_port.ipv4, Ipv4Addr::new(198, 51, 100, 2));
    assert_eq!(c.core_port.prefix_len, 24);
    assert_eq!(c.core_port.next_hop, Ipv4Addr::new(198, 51, 100, 1));
    assert_eq!(c.access_ports[0].name, "acc0");
    assert_eq!(c.core_port.name, "core");
    assert_eq!(c.core_port_id(), 1);
    assert_eq!(c.worker, WorkerConfig::default());
    assert_eq!(c.qos, QosConfig::default());
    let sched = c.qos.scheduler_config().unwrap();
    assert_eq!(sched.max_subscribers, 4096);
    assert_eq!(sched.max_packets, 16384);
    assert_eq!(sched.class_queue_limit, [64, 256, 256, 256]);
    assert_eq!(sched.drr_quantum, [0, 6056, 3028, 1514]);
    assert_eq!(sched.port_rate_bps, None);
}

#[test]
fn qos_section_is_read_and_checked() {
    let text = format!(
        "{MINIMAL}[qos]\nmax_shaped_sessions = 10\nframe_pool = 1000\nclass_queue_limit = [8, 16, 32, 64]\ndrr_quantum = [0, 3000, 2000, 1000]\n"
    );
    let c = load(&text).unwrap();
    assert_eq!(
        c.qos,
        QosConfig {
            enabled: true,
            max_shaped_sessions: 10,
            frame_pool: 1000,
            class_queue_limit: [8, 16, 32, 64],
            drr_quantum: [0, 3000, 2000, 1000],
        }
    );
    let off = load(&format!("{MINIMAL}[qos]\nenabled = false\n")).unwrap();
    assert_eq!(off.qos.scheduler_config(), None);

    let e = load(&format!(
        "{MINIMAL}[qos]\nframe_pool = 100\nclass_queue_limit = [8, 16, 32, 200]\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("/etc/x.toml: key qos.class_queue_limit: expected 4 packet counts"),
        "{e}"
    );
    assert!(e.ends_with("found 200"), "{e}");
    let e = load(&format!("{MINIMAL}[qos]\ndrr_quantum = [0, 1, 2, 3]\n"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/etc/x.toml: key qos.drr_quantum: "), "{e}");
    let e = load(&format!("{MINIMAL}[qos]\nclass_queue_limit = [1, 2, 3]\n"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("/etc/x.toml: key qos.class_queue_limit: "),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
    let e = load(&format!("{MINIMAL}[qos]\nmax_shaped_sessions = 0\n"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "/etc/x.toml: key qos.max_shaped_sessions: expected an integer between 1 and 1048576, found 0"
    );
}

#[test]
fn flags_override_the_file() {
    let mut cli = cli();
    cli.access = vec!["a0".into(), "a1".into()];
    cli.core = Some("c0".into());
    cli.core_ipv4 = Some("10.9.0.2/16".into());
    cli.next_hop = Some("10.9.255.1".into());
    cli.node_id = Some("up1.vbng.example".into());
    cli.pfcp_listen = Some("127.0.0.9:8805".into());
    let c = Config::from_toml(MINIMAL, None, &cli).unwrap();
    assert_eq!(c.access_ports.len(), 2);
    assert_eq!(c.access_ports[1].iface, "a1");
    assert_eq!(c.access_ports[1].name, "acc1");
    assert_eq!(c.core_port.iface, "c0");
    assert_eq!(c.core_port_id(), 2);
    assert_eq!(c.core_port.prefix_len, 16);
    assert_eq!(
        c.pfcp.node_id,
        NodeIdConfig::Fqdn("up1.vbng.example".into())
    );
    assert_eq!(c.pfcp.listen.port(), 8805);
    assert_eq!(c.port_names(), ["acc0", "acc1", "core"]);
}

#[test]
fn bad_prefix_names_file_and_key() {
    let text = format!("{MINIMAL}ipv4 = \"abc\"\n");
    let e = load(&text).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/x.toml: key core_port.ipv4: expected an IPv4 address with prefix like \
         198.51.100.2/24, found \"abc\""
    );
}

#[test]
fn bad_flag_names_the_flag() {
    let mut cli = cli();
    cli.access = vec!["a0".into()];
    cli.core = Some("c0".into());
    cli.core_ipv4 = Some("198.51.100.2".into());
    let e = Config::from_toml("", None, &cli).unwrap_err();
    assert_eq!(e.origin, Origin::Flag("--core-ipv4"));
    assert!(
        e.to_string()
            .starts_with("flag --core-ipv4: expected an IPv4 address with prefix")
    );
}

#[test]
fn unknown_key_names_key_and_expected_ones() {
    let text = format!("{MINIMAL}[worker]\nredirect_ppps = 5\n");
    let e = load(&text).unwrap_err();
    let s = e.to_string();
    assert!(
        s.starts_with("/etc/x.toml: key worker.redirect_ppps: unknown field"),
        "{s}"
    );
    assert!(s.contains("redirect_pps"), "{s}");
    assert!(!s.contains('\n'));
}

#[test]
fn wrong_type_names_key() {
    let text = format!("{MINIMAL}[pfcp]\nheartbeat_misses = \"three\"\n");
    let s = load(&text).unwrap_err().to_string();
    assert!(
        s.starts_with("/etc/x.toml: key pfcp.heartbeat_misses: "),
        "{s}"
    );
    assert!(!s.contains('\n'));
}

#[test]
fn syntax_error_is_one_line() {
    let s = load("[core_port\niface = 1").unwrap_err().to_string();
    assert!(s.starts_with("/etc/x.toml: "), "{s}");
    assert!(!s.contains('\n'), "{s}");
}

#[test]
fn missing_ports_say_how_to_fix() {
    let e = Config::from_toml("", None, &cli()).unwrap_err();
    assert!(e.to_string().contains("--core <iface>"), "{e}");
    let e = load("[core_port]\niface = \"c0\"\n").unwrap_err();
    assert!(e.to_string().contains("--access <iface>"), "{e}");
    // A bad value is reported before a missing one.
    let e = load("[core_port]\nipv4 = \"abc\"\n").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/etc/x.toml: key core_port.ipv4: "),
        "{e}"
    );
    let e = load("[[access_port]]\niface = \"a0\"\n").unwrap_err();
    assert!(e.to_string().contains("--core <iface>"), "{e}");
    assert!(
        e.to_string()
            .starts_with("/etc/x.toml: key core_port.iface: "),
        "{e}"
    );
}

#[test]
fn next_hop_outside_subnet_rejected() {
    let text = format!("{MINIMAL}next_hop = \"203.0.113.1\"\n");
    let s = load(&text).unwrap_err().to_string();
    assert_eq!(
        s,
        "/etc/x.toml: key core_port.next_hop: expected a next hop inside the core subnet \
         198.51.100.2/24, found 203.0.113.1"
    );
}

#[test]
fn duplicate_interfaces_rejected() {
    let text = "[[access_port]]\niface = \"x\"\n[core_port]\niface = \"x\"\n";
    assert!(load(text).unwrap_err().to_string().contains("\"x\" twice"));
}

#[test]
fn out_of_range_number_rejected() {
    let text = format!("{MINIMAL}[worker]\npoll_timeout_ms = 0\n");
    assert_eq!(
        load(&text).unwrap_err().to_string(),
        "/etc/x.toml: key worker.poll_timeout_ms: expected an integer between 1 and 1000, found 0"
    );
}

#[test]
fn session_capacity_is_read_and_bounded() {
    assert_eq!(load(MINIMAL).unwrap().worker.session_capacity, 0);
    let text = format!("{MINIMAL}[worker]\nsession_capacity = 1000000\n");
    assert_eq!(load(&text).unwrap().worker.session_capacity, 1_000_000);
    let text = format!("{MINIMAL}[worker]\nsession_capacity = 16777217\n");
    assert_eq!(
        load(&text).unwrap_err().to_string(),
        "/etc/x.toml: key worker.session_capacity: expected an integer between 0 and 16777216, found 16777217"
    );
    // The flag wins over the file, and clap bounds it with the same limit.
    let mut flags = cli();
    flags.session_capacity = Some(2048);
    let text = format!("{MINIMAL}[worker]\nsession_capacity = 10\n");
    let c = Config::from_toml(&text, None, &flags).unwrap();
    assert_eq!(c.worker.session_capacity, 2048);
    use clap::Parser as _;
    let parsed = Cli::try_parse_from(["vbng-up", "--session-capacity", "16777216"]).unwrap();
    assert_eq!(parsed.session_capacity, Some(16_777_216));
    let err = Cli::try_parse_from(["vbng-up", "--session-capacity", "16777217"]).unwrap_err();
    assert!(err.to_string().contains("--session-capacity"), "{err}");
}

#[test]
fn pure_parsers() {
    assert_eq!(
        parse_ipv4_prefix("198.51.100.2/24"),
        Ok((Ipv4Addr::new(198, 51, 100, 2), 24))
    );
    assert!(parse_ipv4_prefix("198.51.100.2/31").is_err());
    assert!(parse_ipv4_prefix("198.51.100.2/x").is_err());
    assert!(parse_mac("01:00:5e:00:00:01").is_err());
    assert!(parse_iface("a/b").is_err());
    assert!(parse_iface("0123456789abcdef").is_err());
    assert_eq!(parse_iface("veth-acc0"), Ok("veth-acc0".into()));
    assert!(in_subnet(
        Ipv4Addr::new(10, 1, 2, 3),
        Ipv4Addr::new(10, 1, 0, 0),
        16
    ));
    assert!(!in_subnet(
        Ipv4Addr::new(10, 2, 2, 3),
        Ipv4Addr::new(10, 1, 0, 0),
        16
    ));
    assert!(
        check_core_addressing(
            Ipv4Addr::new(198, 51, 100, 2),
            24,
            Ipv4Addr::new(198, 51, 100, 255)
        )
        .is_err()
    );
    let listen: SocketAddrV4 = "127.0.0.2:8805".parse().unwrap();
    assert_eq!(
        node_id_for(None, listen),
        Ok(NodeIdConfig::Ipv4(Ipv4Addr::new(127, 0, 0, 2)))
    );
    assert_eq!(
        node_id_for(Some("10.0.0.1"), listen),
        Ok(NodeIdConfig::Ipv4(Ipv4Addr::new(10, 0, 0, 1)))
    );
    assert!(node_id_for(Some("bad name!"), listen).is_err());
    assert!(node_id_for(Some("-x.example"), listen).is_err());
}

#[test]
fn key_at_finds_table_and_key() {
    let src = "a = 1\n[core_port]\n  ipv4 = \"x\" # c\n[[access_port]]\niface = 3\n";
    assert_eq!(key_at(src, 2).as_deref(), Some("a"));
    let off = src.find("\"x\"").unwrap();
    assert_eq!(key_at(src, off).as_deref(), Some("core_port.ipv4"));
    let off = src.find("3").unwrap();
    assert_eq!(key_at(src, off).as_deref(), Some("access_port.iface"));
    let off = src.find("[core_port]").unwrap();
    assert_eq!(key_at(src, off).as_deref(), Some("core_port"));
}

#[test]
fn pipeline_config_is_derived() {
    let c = load(MINIMAL).unwrap();
    let mac = EthernetAddress([2, 0, 0, 0, 0, 9]);
    let p = c.pipeline_config(mac);
    assert_eq!(p.access_ports, vec![0]);
    assert_eq!(p.core_port, 1);
    assert_eq!(p.core_mac, mac);
    assert_eq!(p.next_hop, Ipv4Addr::new(198, 51, 100, 1));
    assert_eq!(p.arp_retry_ns, 1_000_000_000);
    assert_eq!(p.redirect_pps, 2000);
}

#[test]
fn example_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/vbng-up.toml");
    let cli = Cli {
        config: Some(path.clone()),
        ..Cli::default()
    };
    let c = Config::load(&cli).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.origin, path.display().to_string());
    assert!(!c.access_ports.is_empty());
    assert_eq!(c.pfcp.listen, "127.0.0.2:8805".parse().unwrap());
    // The example documents the defaults.
    assert_eq!(c.qos, QosConfig::default());
}

const DPDK: &str = "[ports]\nbackend = \"dpdk\"\n\
    [[access_port]]\ndevice = \"net_af_packet0,iface=acc0,qdisc_bypass=1\"\n\
    [[access_port]]\ndevice = \"0000:00:08.0\"\n\
    [core_port]\ndevice = \"net_vhost0,iface=/tmp/core.sock,queues=1\"\n";

#[test]
fn af_packet_is_the_default_backend() {
    let c = load(MINIMAL).unwrap();
    assert_eq!(c.backend, PortBackend::AfPacket);
    assert_eq!(c.dpdk, DpdkConfig::default());
    assert_eq!(c.worker.workers, 1);
    assert_eq!(c.access_ports[0].device, None);
    assert_eq!(c.core_port.device, None);
    assert!(c.port_device_names().is_empty());
    assert_eq!(c.eal_args(), ["vbng-up"]);
}

#[test]
fn dpdk_backend_reads_devices() {
    let text = format!(
        "{DPDK}[dpdk]\neal_args = [\"--no-huge\", \"-m\", \"512\", \"-l\", \"0\"]\n\
         mbufs = 32768\nrx_descriptors = 512\ntx_descriptors = 256\n[worker]\nworkers = 2\n"
    );
    let c = load(&text).unwrap();
    assert_eq!(c.backend, PortBackend::Dpdk);
    assert_eq!(
        c.dpdk,
        DpdkConfig {
            eal_args: ["--no-huge", "-m", "512", "-l", "0"]
                .map(String::from)
                .to_vec(),
            mbufs: 32768,
            rx_descriptors: 512,
            tx_descriptors: 256,
        }
    );
    assert_eq!(c.worker.workers, 2);
    assert_eq!(c.access_ports[0].iface, "");
    assert_eq!(
        c.access_ports[0].device.as_deref(),
        Some("net_af_packet0,iface=acc0,qdisc_bypass=1")
    );
    assert_eq!(c.port_names(), ["acc0", "acc1", "core"]);
    assert_eq!(
        c.port_device_names(),
        ["net_af_packet0", "0000:00:08.0", "net_vhost0"]
    );
    assert_eq!(
        c.eal_args(),
        [
            "vbng-up",
            "--no-huge",
            "-m",
            "512",
            "-l",
            "0",
            "--vdev=net_af_packet0,iface=acc0,qdisc_bypass=1",
            "-a",
            "0000:00:08.0",
            "--vdev=net_vhost0,iface=/tmp/core.sock,queues=1",
        ]
    );
    // The flag overrides the file.
    let cli = Cli {
        workers: Some(4),
        ..Cli::default()
    };
    let c = Config::from_toml(&text, None, &cli).unwrap();
    assert_eq!(c.worker.workers, 4);
}

#[test]
fn unknown_backend_names_the_key() {
    let e = load(&format!("[ports]\nbackend = \"netmap\"\n{MINIMAL}"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/etc/x.toml: key ports.backend: "), "{e}");
    assert!(e.contains("af_packet") && e.contains("dpdk"), "{e}");
    assert!(!e.contains('\n'), "{e}");
}

/// The error line for `text`, which must be a single line.
fn error_line(text: &str) -> String {
    let e = load(text).unwrap_err().to_string();
    assert!(!e.contains('\n'), "{e}");
    e
}

#[test]
fn iface_missing_with_af_packet() {
    let e = error_line("[[access_port]]\nname = \"a\"\n[core_port]\niface = \"c0\"\n");
    assert_eq!(
        e,
        "/etc/x.toml: key access_port[0].iface: missing: expected the interface name, e.g. \
         iface = \"veth-acc0\""
    );
}

#[test]
fn device_missing_with_dpdk() {
    let e = error_line(&DPDK.replace("device = \"0000:00:08.0\"", "name = \"x\""));
    assert!(
        e.starts_with(
            "/etc/x.toml: key access_port[1].device: missing: expected a DPDK device with \
             backend = \"dpdk\""
        ),
        "{e}"
    );
    let e = error_line("[ports]\nbackend = \"dpdk\"\n[[access_port]]\ndevice = \"net_null0\"\n");
    assert!(
        e.starts_with(
            "/etc/x.toml: key core_port.device: no core port: expected [core_port] device"
        ),
        "{e}"
    );
    let e = error_line("[ports]\nbackend = \"dpdk\"\n[core_port]\ndevice = \"net_null0\"\n");
    assert!(
        e.starts_with("/etc/x.toml: key access_port: no access port: expected at least one [[access_port]] device"),
        "{e}"
    );
}

#[test]
fn device_given_with_af_packet() {
    let text =
        "[[access_port]]\niface = \"a0\"\ndevice = \"net_null0\"\n[core_port]\niface = \"c0\"\n";
    let e = error_line(text);
    assert!(
        e.starts_with(
            "/etc/x.toml: key access_port[0].device: expected no device with the af_packet \
             backend: set [ports] backend = \"dpdk\""
        ),
        "{e}"
    );
    let e = error_line(&format!("{MINIMAL}device = \"net_null0\"\n"));
    assert!(
        e.starts_with("/etc/x.toml: key core_port.device: expected no device"),
        "{e}"
    );
}

#[test]
fn iface_given_with_dpdk() {
    let text = DPDK.replace("device = \"0000:00:08.0\"", "iface = \"acc1\"");
    let e = error_line(&text);
    assert!(
        e.starts_with(
            "/etc/x.toml: key access_port[1].iface: expected no iface with backend = \"dpdk\""
        ),
        "{e}"
    );
    assert!(e.contains("device = \"net_af_packet1,iface=acc1\""), "{e}");
    // Interface flags do not name DPDK devices.
    let cli = Cli {
        core: Some("core0".into()),
        ..Cli::default()
    };
    let e = Config::from_toml(DPDK, None, &cli).unwrap_err();
    assert_eq!(e.origin, Origin::Flag("--core"));
    let cli = Cli {
        access: vec!["acc0".into()],
        ..Cli::default()
    };
    let e = Config::from_toml(DPDK, None, &cli).unwrap_err().to_string();
    assert!(
        e.starts_with("flag --access: expected no interface flags"),
        "{e}"
    );
}

#[test]
fn workers_out_of_range() {
    let e = error_line(&format!("{DPDK}[worker]\nworkers = 0\n"));
    assert_eq!(
        e,
        "/etc/x.toml: key worker.workers: expected an integer between 1 and 16, found 0"
    );
    let e = error_line(&format!("{DPDK}[worker]\nworkers = 17\n"));
    assert!(e.ends_with("between 1 and 16, found 17"), "{e}");
    let cli = Cli {
        workers: Some(40),
        ..Cli::default()
    };
    let e = Config::from_toml(DPDK, None, &cli).unwrap_err().to_string();
    assert_eq!(
        e,
        "flag --workers: expected an integer between 1 and 16, found 40"
    );
}

#[test]
fn several_workers_need_dpdk() {
    let e = error_line(&format!("{MINIMAL}[worker]\nworkers = 2\n"));
    assert_eq!(
        e,
        "/etc/x.toml: key worker.workers: expected 1 worker with the af_packet backend; set \
         [ports] backend = \"dpdk\" for more, found 2"
    );
    let cli = Cli {
        workers: Some(2),
        ..Cli::default()
    };
    let e = Config::from_toml(MINIMAL, None, &cli).unwrap_err();
    assert_eq!(e.origin, Origin::Flag("--workers"));
    assert_eq!(
        load(&format!("{MINIMAL}[worker]\nworkers = 1\n"))
            .unwrap()
            .worker
            .workers,
        1
    );
}

#[test]
fn duplicate_devices_rejected() {
    let text = DPDK.replace("0000:00:08.0", "net_af_packet0,iface=acc1");
    let e = error_line(&text);
    assert_eq!(
        e,
        "/etc/x.toml: key access_port[1].device: expected each port to have its own device, \
         found \"net_af_packet0\" twice"
    );
    let text = DPDK.replace("0000:00:08.0", "net_af_packet1,iface=acc0");
    let e = error_line(&text);
    assert!(
        e.starts_with("/etc/x.toml: key access_port[1].device: expected each device to have its own iface, found iface=acc0"),
        "{e}"
    );
    let text = DPDK.replace(
        "net_vhost0,iface=/tmp/core.sock,queues=1",
        "0000:00:08.0,txq_inline=64",
    );
    let e = error_line(&text);
    assert!(e.starts_with("/etc/x.toml: key core_port.device: "), "{e}");
    assert!(e.contains("\"0000:00:08.0\" twice"), "{e}");
}

#[test]
fn bad_device_rejected() {
    for bad in ["acc0", "eth0,iface=acc0", "00:08.0", "net_ null0"] {
        let text = DPDK.replace("0000:00:08.0", bad);
        let e = error_line(&text);
        assert!(
            e.starts_with("/etc/x.toml: key access_port[1].device: expected a DPDK virtual device like \"net_af_packet0,iface=acc0\" or a PCI address DDDD:BB:DD.F"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn dpdk_section_is_checked() {
    let e = error_line(&format!(
        "{DPDK}[dpdk]\neal_args = [\"--vdev=net_null0\"]\n"
    ));
    assert!(
        e.starts_with("/etc/x.toml: key dpdk.eal_args: expected EAL arguments without devices"),
        "{e}"
    );
    let e = error_line(&format!("{DPDK}[dpdk]\nrx_descriptors = 70000\n"));
    assert_eq!(
        e,
        "/etc/x.toml: key dpdk.rx_descriptors: expected an integer between 32 and 32768, found 70000"
    );
    let e = error_line(&format!("{DPDK}[dpdk]\nmbufs = 4096\n"));
    assert!(
        e.starts_with("/etc/x.toml: key dpdk.mbufs: expected at least 6144 mbufs"),
        "{e}"
    );
    let e = error_line(&format!("{DPDK}[dpdk]\nlcores = \"0-1\"\n"));
    assert!(
        e.starts_with("/etc/x.toml: key dpdk.lcores: unknown field"),
        "{e}"
    );
    // The af_packet backend ignores [dpdk] apart from checking it.
    let c = load(&format!("{MINIMAL}[dpdk]\nmbufs = 1024\n")).unwrap();
    assert_eq!(c.dpdk.mbufs, 1024);
}

#[test]
fn dpdk_example_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/vbng-up-dpdk.toml");
    let cli = Cli {
        config: Some(path),
        ..Cli::default()
    };
    let c = Config::load(&cli).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.backend, PortBackend::Dpdk);
    assert_eq!(c.port_names(), ["acc0", "acc1", "core"]);
    assert_eq!(
        c.port_device_names(),
        ["net_af_packet0", "net_af_packet1", "net_af_packet2"]
    );
    let args = c.eal_args();
    assert!(args.iter().any(|a| a == "--no-huge"), "{args:?}");
    assert!(
        args.iter()
            .any(|a| a == "--vdev=net_af_packet2,iface=core0,qdisc_bypass=1"),
        "{args:?}"
    );
    // The same lab addressing as the af_packet example.
    let plain = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/vbng-up.toml");
    let p = Config::load(&Cli {
        config: Some(plain),
        ..Cli::default()
    })
    .unwrap();
    assert_eq!(c.core_port.ipv4, p.core_port.ipv4);
    assert_eq!(c.core_port.next_hop, p.core_port.next_hop);
    assert_eq!(c.gateway_mac, p.gateway_mac);
    assert_eq!(c.pfcp, p.pfcp);
    assert_eq!(c.gtpu, p.gtpu);
    assert_eq!(p.backend, PortBackend::AfPacket);
    assert_eq!(p.worker.workers, 1);
}

#[test]
fn static_routes_from_the_file_and_the_flags() {
    let text = format!(
        "{MINIMAL}[[route]]\nprefix = \"192.0.2.0/24\"\nnext_hop = \"198.51.100.3\"\n\
         [[route]]\nprefix = \"203.0.113.0/25\"\nnext_hop = \"198.51.100.4\"\n"
    );
    let c = load(&text).unwrap();
    assert_eq!(
        c.routes,
        [
            StaticRoute {
                prefix: Ipv4Addr::new(192, 0, 2, 0),
                len: 24,
                next_hop: Ipv4Addr::new(198, 51, 100, 3),
            },
            StaticRoute {
                prefix: Ipv4Addr::new(203, 0, 113, 0),
                len: 25,
                next_hop: Ipv4Addr::new(198, 51, 100, 4),
            },
        ]
    );
    assert!(load(MINIMAL).unwrap().routes.is_empty());
    // Flags replace the file's list.
    let mut flags = cli();
    flags.route = vec!["10.0.0.0/8,198.51.100.9".into()];
    let c = Config::from_toml(&text, None, &flags).unwrap();
    assert_eq!(c.routes.len(), 1);
    assert_eq!(c.routes[0].next_hop, Ipv4Addr::new(198, 51, 100, 9));
}

#[test]
fn a_bad_route_is_one_line_naming_it() {
    let off_link =
        format!("{MINIMAL}[[route]]\nprefix = \"192.0.2.0/24\"\nnext_hop = \"10.1.1.1\"\n");
    assert_eq!(
        load(&off_link).unwrap_err().to_string(),
        "/etc/x.toml: key route[0]: expected a next hop inside the core subnet \
         198.51.100.2/24, found 10.1.1.1"
    );
    let missing = format!("{MINIMAL}[[route]]\nprefix = \"192.0.2.0/24\"\n");
    assert_eq!(
        load(&missing).unwrap_err().to_string(),
        "/etc/x.toml: key route[0].next_hop: expected a value: every [[route]] needs prefix \
         and next_hop"
    );
    let mut flags = cli();
    flags.route = vec!["192.0.2.0/24".into()];
    let e = Config::from_toml(MINIMAL, None, &flags).unwrap_err();
    assert_eq!(e.origin, Origin::Flag("--route"));
    assert!(
        e.to_string().contains("expected PREFIX/LEN,NEXT_HOP"),
        "{e}"
    );
}

#[test]
fn nat_section_is_read_and_checked() {
    assert_eq!(load(MINIMAL).unwrap().nat, None, "off without a pool");
    let text = format!(
        "{MINIMAL}[nat]\npool = [\"192.0.2.0/28\"]\nblock_size = 256\nlog_file = \"nat.jsonl\"\n"
    );
    let c = load(&text).unwrap();
    let n = c.nat.expect("NAT on");
    assert_eq!(n.engine.pool, ["192.0.2.0/28".parse().unwrap()]);
    assert_eq!(n.engine.block_size, 256);
    assert_eq!(n.engine.blocks_per_subscriber, 4);
    assert_eq!(n.inside, ["100.64.0.0/10".parse().unwrap()]);
    assert_eq!(
        n.log_file,
        Path::new("/etc/nat.jsonl"),
        "relative to the file"
    );
    // Every allocation is logged: a pool without a log is refused.
    let no_log = format!("{MINIMAL}[nat]\npool = [\"192.0.2.0/28\"]\n");
    let e = load(&no_log).unwrap_err().to_string();
    assert!(
        e.starts_with("/etc/x.toml: key nat.log_file: expected a path"),
        "{e}"
    );
    let bad = format!("{MINIMAL}[nat]\npool = [\"192.0.2.0/33\"]\nlog_file = \"n\"\n");
    let e = load(&bad).unwrap_err().to_string();
    assert!(
        e.starts_with("/etc/x.toml: key nat.pool: expected a prefix"),
        "{e}"
    );
    // The flags turn it on.
    let mut flags = cli();
    flags.nat_pool = vec!["198.18.0.0/30".into()];
    flags.nat_log = Some(PathBuf::from("/var/log/nat.jsonl"));
    let n = Config::from_toml(MINIMAL, None, &flags)
        .unwrap()
        .nat
        .unwrap();
    assert_eq!(n.engine.pool, ["198.18.0.0/30".parse().unwrap()]);
    assert!(n.ipfix_collectors.is_empty(), "no IPFIX unless asked");
    assert_eq!(n.ipfix_domain_id, 1);
}

#[test]
fn nat_ipfix_collectors_are_read_and_checked() {
    let nat = "[nat]\npool = [\"192.0.2.0/28\"]\nlog_file = \"n\"\n";
    let text = format!(
        "{MINIMAL}{nat}ipfix_collectors = [\"192.0.2.9:4739\", \"[2001:db8::9]:4739\"]\nipfix_domain_id = 7\n"
    );
    let n = load(&text).unwrap().nat.unwrap();
    assert_eq!(
        n.ipfix_collectors,
        [
            "192.0.2.9:4739".parse().unwrap(),
            "[2001:db8::9]:4739".parse().unwrap()
        ]
    );
    assert_eq!(n.ipfix_domain_id, 7);
    let bad = format!("{MINIMAL}{nat}ipfix_collectors = [\"192.0.2.9\"]\n");
    let e = load(&bad).unwrap_err().to_string();
    assert!(
        e.starts_with("/etc/x.toml: key nat.ipfix_collectors: expected an IPFIX collector"),
        "{e}"
    );
    // The flag replaces the file's list.
    let mut flags = cli();
    flags.nat_ipfix = vec!["127.0.0.1:4739".into()];
    let n = Config::from_toml(&text, Some(Path::new("/etc/x.toml")), &flags)
        .unwrap()
        .nat
        .unwrap();
    assert_eq!(n.ipfix_collectors, ["127.0.0.1:4739".parse().unwrap()]);
    flags.nat_ipfix = vec!["nowhere".into()];
    let e = Config::from_toml(&text, Some(Path::new("/etc/x.toml")), &flags)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--nat-ipfix") && e.contains("\"nowhere\""),
        "{e}"
    );
}

#[test]
fn core_ipv6_is_off_by_default_and_takes_an_address_and_a_next_hop() {
    assert_eq!(load(MINIMAL).unwrap().core_port.ipv6, None);
    let text =
        format!("{MINIMAL}ipv6 = \"2001:db8:ffff::2/64\"\nnext_hop6 = \"2001:db8:ffff::1\"\n");
    assert_eq!(
        load(&text).unwrap().core_port.ipv6,
        Some(CoreIpv6Config {
            addr: "2001:db8:ffff::2".parse().unwrap(),
            prefix_len: 64,
            next_hop: "2001:db8:ffff::1".parse().unwrap(),
        })
    );
    // A link-local next hop is on every link.
    let text = format!("{MINIMAL}ipv6 = \"2001:db8:ffff::2/64\"\nnext_hop6 = \"fe80::1\"\n");
    assert!(load(&text).is_ok());
    // The flags turn it on without the file.
    let mut flags = cli();
    flags.core_ipv6 = Some("2001:db8:1::2/120".into());
    flags.next_hop6 = Some("2001:db8:1::1".into());
    let c = Config::from_toml(MINIMAL, Some(Path::new("/etc/x.toml")), &flags).unwrap();
    assert_eq!(c.core_port.ipv6.map(|v| v.prefix_len), Some(120));
}

#[test]
fn bad_core_ipv6_settings_get_one_line_naming_the_key() {
    let cases = [
        (
            "ipv6 = \"2001:db8:ffff::2/64\"\n",
            "/etc/x.toml: key core_port.ipv6: expected core_port.next_hop6 (--next-hop6) with it: \
             IPv6 forwarding needs a next hop",
        ),
        (
            "next_hop6 = \"2001:db8:ffff::1\"\n",
            "/etc/x.toml: key core_port.next_hop6: expected core_port.ipv6 (--core-ipv6) with it: \
             the next hop needs a core IPv6 address",
        ),
        (
            "ipv6 = \"2001:db8:ffff::2/64\"\nnext_hop6 = \"2001:db8:eeee::1\"\n",
            "/etc/x.toml: key core_port.next_hop6: expected a next hop inside the core subnet \
             2001:db8:ffff::2/64 or link-local, found 2001:db8:eeee::1",
        ),
        (
            "ipv6 = \"2001:db8:ffff::2\"\nnext_hop6 = \"2001:db8:ffff::1\"\n",
            "/etc/x.toml: key core_port.ipv6: expected an IPv6 address with prefix like \
             2001:db8:ffff::2/64, found \"2001:db8:ffff::2\"",
        ),
        (
            "ipv6 = \"fe80::2/64\"\nnext_hop6 = \"fe80::1\"\n",
            "/etc/x.toml: key core_port.ipv6: expected a global or unique-local unicast address \
             (the link-local one is derived from the MAC), found \"fe80::2/64\"",
        ),
        (
            "ipv6 = \"2001:db8:ffff::2/64\"\nnext_hop6 = \"2001:db8:ffff::2\"\n",
            "/etc/x.toml: key core_port.next_hop6: expected a next hop other than the UP's own \
             core address, found 2001:db8:ffff::2",
        ),
    ];
    for (extra, expected) in cases {
        let text = format!("{MINIMAL}{extra}");
        assert_eq!(load(&text).unwrap_err().to_string(), expected, "{extra}");
    }
}

#[test]
fn ipv6_routes_need_the_core_ipv6_and_a_next_hop_on_its_link() {
    const V6: &str = "ipv6 = \"2001:db8:ffff::2/64\"\nnext_hop6 = \"2001:db8:ffff::1\"\n";
    let text = format!(
        "{MINIMAL}{V6}[[route6]]\nprefix = \"2001:db8:e000::/40\"\nnext_hop = \"2001:db8:ffff::3\"\n"
    );
    assert_eq!(
        load(&text).unwrap().routes6,
        vec![StaticRoute6 {
            prefix: "2001:db8:e000::".parse().unwrap(),
            len: 40,
            next_hop: "2001:db8:ffff::3".parse().unwrap(),
        }]
    );
    let text = format!("{MINIMAL}[[route6]]\nprefix = \"::/0\"\nnext_hop = \"fe80::1\"\n");
    assert_eq!(
        load(&text).unwrap_err().to_string(),
        "/etc/x.toml: key route6: expected core_port.ipv6 and next_hop6 (--core-ipv6, \
         --next-hop6) with IPv6 routes"
    );
    let text = format!(
        "{MINIMAL}{V6}[[route6]]\nprefix = \"2001:db8:e000::/40\"\nnext_hop = \"2001:db8:1::3\"\n"
    );
    assert_eq!(
        load(&text).unwrap_err().to_string(),
        "/etc/x.toml: key route6[0]: expected a next hop inside the core subnet \
         2001:db8:ffff::2/64 or link-local, found 2001:db8:1::3"
    );
    let mut flags = cli();
    flags.route6 = vec!["2001:db8:e000::/129,fe80::1".into()];
    let e = Config::from_toml(
        &format!("{MINIMAL}{V6}"),
        Some(Path::new("/etc/x.toml")),
        &flags,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "flag --route6: expected an IPv6 prefix like 2001:db8:e000::/40, found \"2001:db8:e000::/129\""
    );
}
