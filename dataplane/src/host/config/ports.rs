//! How `vbng-up` reaches its ports: `[ports] backend`, the `[dpdk]` section and the
//! `device` key of each port, and the EAL arguments derived from them.
//!
//! With the `af_packet` backend every port names a kernel interface (`iface`). With the
//! `dpdk` backend every port names a DPDK device instead (`device`): a virtual device
//! specification such as `net_af_packet0,iface=acc0,qdisc_bypass=1` (passed to EAL as
//! `--vdev=<device>`) or a PCI address `DDDD:BB:DD.F`, optionally followed by device
//! arguments (passed as `-a <device>`).

use serde::Deserialize;

use super::{ConfigError, Origin, Resolver};

/// Default mbufs in the DPDK packet pool (`dpdk.mbufs`).
pub const DEFAULT_DPDK_MBUFS: u32 = 16384;
/// Default descriptors per DPDK rx queue (`dpdk.rx_descriptors`).
pub const DEFAULT_DPDK_RX_DESCRIPTORS: u16 = 1024;
/// Default descriptors per DPDK tx queue (`dpdk.tx_descriptors`).
pub const DEFAULT_DPDK_TX_DESCRIPTORS: u16 = 1024;
/// Most poll-mode workers (`worker.workers`).
pub const MAX_WORKERS: u16 = 16;

/// How the user plane sends and receives frames (`[ports] backend`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortBackend {
    /// Kernel interfaces through AF_PACKET sockets with PACKET_MMAP rings (`"af_packet"`).
    /// The default.
    #[default]
    AfPacket,
    /// DPDK ethdevs: virtual devices (`net_*`) or PCI devices (`"dpdk"`).
    Dpdk,
}

/// DPDK settings (`[dpdk]`); used with `backend = "dpdk"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpdkConfig {
    /// EAL arguments placed before the devices, for example `["--no-huge", "-m", "512",
    /// "-l", "0"]`. vbng-up adds the devices itself. Default: none (EAL's own defaults:
    /// hugepages, every core, a PCI scan).
    pub eal_args: Vec<String>,
    /// Mbufs in the packet pool, shared by every queue. Default 16384.
    pub mbufs: u32,
    /// Descriptors per rx queue. Default 1024.
    pub rx_descriptors: u16,
    /// Descriptors per tx queue. Default 1024.
    pub tx_descriptors: u16,
}

impl Default for DpdkConfig {
    fn default() -> Self {
        DpdkConfig {
            eal_args: Vec::new(),
            mbufs: DEFAULT_DPDK_MBUFS,
            rx_descriptors: DEFAULT_DPDK_RX_DESCRIPTORS,
            tx_descriptors: DEFAULT_DPDK_TX_DESCRIPTORS,
        }
    }
}

/// `[ports]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FilePorts {
    /// "af_packet" or "dpdk". Default "af_packet".
    pub(super) backend: Option<PortBackend>,
}

/// `[dpdk]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileDpdk {
    /// EAL arguments before the devices. Default none.
    eal_args: Option<Vec<String>>,
    /// Mbufs in the packet pool. Default 16384.
    mbufs: Option<u32>,
    /// Descriptors per rx queue. Default 1024.
    rx_descriptors: Option<u32>,
    /// Descriptors per tx queue. Default 1024.
    tx_descriptors: Option<u32>,
}

/// Resolves and checks `[dpdk]`, naming the key of a bad value.
pub(super) fn resolve_dpdk(r: &Resolver<'_>, d: &FileDpdk) -> Result<DpdkConfig, ConfigError> {
    let eal_args = d.eal_args.clone().unwrap_or_default();
    if let Some(bad) = eal_args.iter().find(|a| eal_arg_problem(a).is_some()) {
        return Err(ConfigError {
            origin: r.file_origin("dpdk.eal_args"),
            message: eal_arg_problem(bad).unwrap_or_default(),
        });
    }
    let dd = DpdkConfig::default();
    let desc = |key: &str, v: Option<u32>, default: u16| -> Result<u16, ConfigError> {
        // The range keeps the value inside u16.
        r.num(key, v, u32::from(default), 32, 32768)
            .map(|v| u16::try_from(v).unwrap_or(u16::MAX))
    };
    Ok(DpdkConfig {
        eal_args,
        mbufs: r.num("dpdk.mbufs", d.mbufs, dd.mbufs, 1024, 1 << 24)?,
        rx_descriptors: desc("dpdk.rx_descriptors", d.rx_descriptors, dd.rx_descriptors)?,
        tx_descriptors: desc("dpdk.tx_descriptors", d.tx_descriptors, dd.tx_descriptors)?,
    })
}

/// What is wrong with one EAL argument of `dpdk.eal_args`, if anything: empty, or a
/// device option that vbng-up derives from the ports itself. Pure.
pub fn eal_arg_problem(arg: &str) -> Option<String> {
    if arg.trim().is_empty() {
        return Some("expected EAL arguments like \"--no-huge\", found an empty string".into());
    }
    // Long options alone or with "=value"; short ones also with the value attached (getopt).
    let long = ["--vdev", "--allow", "--pci-whitelist"]
        .iter()
        .any(|o| arg == *o || arg.strip_prefix(o).is_some_and(|r| r.starts_with('=')));
    let short = ["-a", "-w"].iter().any(|o| arg.starts_with(o));
    let device_option = long || short;
    device_option.then(|| {
        format!(
            "expected EAL arguments without devices (vbng-up adds --vdev or -a for each port's \
             device key), found {arg:?}"
        )
    })
}

/// The ethdev name a device string gives its port: the part before the first `,` (a
/// vdev's name such as `net_af_packet0`, or a PCI address in lower case). Pure.
pub fn device_name(device: &str) -> String {
    let name = device.split(',').next().unwrap_or_default();
    if name.starts_with("net_") {
        name.to_string()
    } else {
        name.to_ascii_lowercase()
    }
}

/// True for a PCI address in the full form `DDDD:BB:DD.F` (hex; device up to 1f, function
/// up to 7). Pure.
pub fn is_pci_address(s: &str) -> bool {
    let hex =
        |part: &str, len: usize| part.len() == len && part.bytes().all(|b| b.is_ascii_hexdigit());
    let Some((domain, rest)) = s.split_once(':') else {
        return false;
    };
    let Some((bus, rest)) = rest.split_once(':') else {
        return false;
    };
    let Some((dev, func)) = rest.split_once('.') else {
        return false;
    };
    hex(domain, 4)
        && hex(bus, 2)
        && hex(dev, 2)
        && hex(func, 1)
        && u8::from_str_radix(dev, 16).is_ok_and(|d| d <= 0x1f)
        && u8::from_str_radix(func, 16).is_ok_and(|f| f <= 7)
}

/// Parses a port's DPDK device: a virtual device `net_<driver><n>[,key=value...]` or a PCI
/// address `DDDD:BB:DD.F[,key=value...]`, without whitespace. Pure.
pub fn parse_device(s: &str) -> Result<String, String> {
    let expected = || {
        format!(
            "expected a DPDK virtual device like \"net_af_packet0,iface=acc0\" or a PCI \
             address DDDD:BB:DD.F like \"0000:00:08.0\", found {s:?}"
        )
    };
    if s.is_empty() || s.chars().any(char::is_whitespace) {
        return Err(expected());
    }
    let mut parts = s.split(',');
    let name = parts.next().unwrap_or_default();
    let name_ok = match name.strip_prefix("net_") {
        Some(driver) => {
            !driver.is_empty()
                && driver
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        }
        None => is_pci_address(name),
    };
    if !name_ok {
        return Err(expected());
    }
    if let Some(empty) = parts.position(str::is_empty) {
        return Err(format!(
            "expected device arguments separated by single commas like \
             \"net_af_packet0,iface=acc0,qdisc_bypass=1\", found an empty argument {} in {s:?}",
            empty + 1
        ));
    }
    Ok(s.to_string())
}

/// The value of argument `key` in a device string (`iface` of
/// `net_af_packet0,iface=acc0`), if present. Pure.
pub fn device_arg<'a>(device: &'a str, key: &str) -> Option<&'a str> {
    device
        .split(',')
        .skip(1)
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// One port's interface and device, checked against the backend. `table` is the port's
/// key prefix (`access_port[0]`, `core_port`), `port` its port id (for examples in errors).
pub(super) fn resolve_port(
    r: &Resolver<'_>,
    backend: PortBackend,
    table: &str,
    port: usize,
    iface: Option<&str>,
    device: Option<&str>,
) -> Result<(String, Option<String>), ConfigError> {
    let err = |key: &str, message: String| ConfigError {
        origin: r.file_origin(&format!("{table}.{key}")),
        message,
    };
    match backend {
        PortBackend::AfPacket => {
            if device.is_some() {
                return Err(err(
                    "device",
                    "expected no device with the af_packet backend: set [ports] backend = \
                     \"dpdk\" to use DPDK devices, or remove the device and name the kernel \
                     interface with iface = \"...\""
                        .into(),
                ));
            }
            let iface = iface.ok_or_else(|| {
                err(
                    "iface",
                    "missing: expected the interface name, e.g. iface = \"veth-acc0\"".into(),
                )
            })?;
            let iface = super::parse_iface(iface).map_err(|m| err("iface", m))?;
            Ok((iface, None))
        }
        PortBackend::Dpdk => {
            if let Some(iface) = iface {
                return Err(err(
                    "iface",
                    format!(
                        "expected no iface with backend = \"dpdk\": the device names the port, \
                         e.g. device = \"net_af_packet{port},iface={iface}\", found iface = {iface:?}"
                    ),
                ));
            }
            let device = device.ok_or_else(|| {
                err(
                    "device",
                    "missing: expected a DPDK device with backend = \"dpdk\", e.g. device = \
                     \"net_af_packet0,iface=acc0\" or a PCI address like \"0000:00:08.0\""
                        .into(),
                )
            })?;
            let device = parse_device(device).map_err(|m| err("device", m))?;
            Ok((String::new(), Some(device)))
        }
    }
}

/// Checks that no two ports share a device name, or a kernel interface or socket
/// (`iface=`) of their device arguments. `ports` are `(key, device)` in port order. Pure.
pub(super) fn check_distinct_devices(ports: &[(String, &str)]) -> Result<(), (String, String)> {
    for (i, (key, device)) in ports.iter().enumerate() {
        for (_, earlier) in &ports[..i] {
            let (name, other) = (device_name(device), device_name(earlier));
            if name == other {
                return Err((
                    key.clone(),
                    format!("expected each port to have its own device, found {name:?} twice"),
                ));
            }
            if let (Some(a), Some(b)) = (device_arg(device, "iface"), device_arg(earlier, "iface"))
                && a == b
            {
                return Err((
                    key.clone(),
                    format!(
                        "expected each device to have its own iface, found iface={a} in both \
                         {other:?} and {name:?}"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Resolves `worker.workers` (or `--workers`): 1..=16, and 1 unless the backend is dpdk.
pub(super) fn resolve_workers(
    r: &Resolver<'_>,
    backend: PortBackend,
    flag: Option<u16>,
    file: Option<u32>,
) -> Result<u16, ConfigError> {
    let (value, origin) = match (flag, file) {
        (Some(v), _) => (u32::from(v), Origin::Flag("--workers")),
        (None, Some(v)) => (v, r.file_origin("worker.workers")),
        (None, None) => (1, Origin::Default),
    };
    if !(1..=u32::from(MAX_WORKERS)).contains(&value) {
        return Err(ConfigError {
            origin,
            message: format!("expected an integer between 1 and {MAX_WORKERS}, found {value}"),
        });
    }
    if value > 1 && backend == PortBackend::AfPacket {
        return Err(ConfigError {
            origin,
            message: format!(
                "expected 1 worker with the af_packet backend; set [ports] backend = \"dpdk\" \
                 for more, found {value}"
            ),
        });
    }
    // In range 1..=16 above.
    Ok(u16::try_from(value).unwrap_or(1))
}

/// Checks that the pool holds enough mbufs to fill every queue's descriptors: `ports` x
/// `workers` x (rx + tx descriptors). Pure.
pub fn check_mbufs(dpdk: &DpdkConfig, ports: usize, workers: u16) -> Result<(), String> {
    let per_queue = u64::from(dpdk.rx_descriptors) + u64::from(dpdk.tx_descriptors);
    let needed = per_queue * ports as u64 * u64::from(workers);
    if u64::from(dpdk.mbufs) < needed {
        return Err(format!(
            "expected at least {needed} mbufs to fill every queue ({ports} ports x {workers} \
             workers x ({} rx + {} tx descriptors)), found {}; raise dpdk.mbufs or lower the \
             descriptors",
            dpdk.rx_descriptors, dpdk.tx_descriptors, dpdk.mbufs
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse() {
        for good in [
            "net_af_packet0,iface=acc0,qdisc_bypass=1",
            "net_vhost0,iface=/tmp/vbng.sock,queues=1",
            "net_null0",
            "0000:00:08.0",
            "0000:3B:1f.7,txq_inline=128",
        ] {
            assert_eq!(parse_device(good).as_deref(), Ok(good));
        }
        for bad in [
            "",
            "acc0",
            "net_",
            "net_af packet0",
            "eth_af_packet0",
            "00:08.0",
            "0000:00:20.0",
            "0000:00:08.8",
            "0000:0g:08.0",
            "net-null0",
            " net_null0",
        ] {
            let e = parse_device(bad).unwrap_err();
            assert!(e.contains("DDDD:BB:DD.F"), "{bad:?}: {e}");
        }
        let e = parse_device("net_null0,,x=1").unwrap_err();
        assert!(e.contains("empty argument 1"), "{e}");
        assert!(parse_device("net_null0,").is_err());
    }

    #[test]
    fn device_names_and_args() {
        assert_eq!(
            device_name("net_af_packet0,iface=acc0,qdisc_bypass=1"),
            "net_af_packet0"
        );
        assert_eq!(device_name("0000:3B:00.1,x=1"), "0000:3b:00.1");
        assert_eq!(device_name("net_null1"), "net_null1");
        assert_eq!(
            device_arg("net_af_packet0,iface=acc0,qdisc_bypass=1", "iface"),
            Some("acc0")
        );
        assert_eq!(device_arg("net_vhost0,ifacex=1", "iface"), None);
        assert_eq!(device_arg("net_iface=1", "iface"), None);
        assert!(is_pci_address("ffff:ff:1f.7"));
        assert!(!is_pci_address("0000:00:08"));
    }

    #[test]
    fn distinct_devices() {
        let ports = |v: &[&'static str]| -> Vec<(String, &'static str)> {
            v.iter()
                .enumerate()
                .map(|(i, d)| (format!("p{i}"), *d))
                .collect()
        };
        assert!(
            check_distinct_devices(&ports(&[
                "net_af_packet0,iface=a",
                "net_af_packet1,iface=b",
                "0000:00:08.0"
            ]))
            .is_ok()
        );
        let (key, msg) =
            check_distinct_devices(&ports(&["net_null0", "net_null1", "net_null0,size=64"]))
                .unwrap_err();
        assert_eq!(key, "p2");
        assert!(msg.contains("\"net_null0\" twice"), "{msg}");
        let (key, msg) = check_distinct_devices(&ports(&[
            "net_af_packet0,iface=a",
            "net_af_packet1,iface=a",
        ]))
        .unwrap_err();
        assert_eq!(key, "p1");
        assert!(msg.contains("iface=a"), "{msg}");
        assert!(check_distinct_devices(&ports(&["0000:00:08.0", "0000:00:08.0,x=1"])).is_err());
    }

    #[test]
    fn eal_args_without_devices() {
        for ok in [
            "--no-huge",
            "-m",
            "512",
            "-l",
            "0-1",
            "--log-level=*:warning",
        ] {
            assert_eq!(eal_arg_problem(ok), None, "{ok}");
        }
        for bad in [
            "--vdev",
            "--vdev=net_null0",
            "-a",
            "-a0000:00:08.0",
            "--allow=0000:00:08.0",
            "",
        ] {
            assert!(eal_arg_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn mbufs_cover_the_queues() {
        let d = DpdkConfig::default();
        assert_eq!(check_mbufs(&d, 3, 2), Ok(()));
        let e = check_mbufs(&d, 3, 4).unwrap_err();
        assert!(e.starts_with("expected at least 24576 mbufs"), "{e}");
        assert!(e.contains("found 16384"), "{e}");
    }
}
