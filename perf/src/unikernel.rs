//! `vbng-perf unikernel`: the per-customer vBNG image (unikernel-target) booted by the
//! `vbng-vm` launcher. Figures, each beside a baseline measured in the same run:
//! - boot: QEMU start to the first forwarded frame, beside QEMU start to exit of the same
//!   image told to exit at its first instruction (`baseline=exit`: QEMU's own cost); guest
//!   entry to the first forwarded frame and to the start of the poll loop, from the TSC;
//! - the image's size (beside the hosted `vbng-up` binary when it is built) and the guest
//!   memory it runs in, with the heap it used;
//! - density: N concurrent instances, the total CPU they use while idle and while each
//!   forwards a steady ping stream, and their host memory (PSS) per instance, beside the
//!   same N instances of the image doing nothing but halt (`baseline=halt`).
//!
//! Every figure names the accelerator it ran on: under KVM-PVM the image cannot halt and
//! keeps polling; under TCG and hardware KVM it halts when idle.

use std::path::Path;
use std::time::{Duration, Instant};

use vbng_cp::lab::netns::{Netns, tap_netns};
use vbng_cp::lab::procs::Background;
use vbng_vm::{Accel, NetBackend, Transport, Vm, VmSpec};

use crate::report::Figure;
use crate::timing::Stats;

/// What to measure.
#[derive(Debug, Clone)]
pub struct UnikernelArgs {
    /// Boots to time (each with its baseline).
    pub boots: usize,
    /// Concurrent instances in the density run (0: none).
    pub instances: usize,
    /// Seconds of each CPU measurement.
    pub seconds: f64,
    /// Pings per second sent through each instance while forwarding.
    pub pps: u32,
    /// The accelerator.
    pub accel: Accel,
}

const SUB_MAC: &str = "02:00:00:00:00:10";
const SUB_IP: &str = "100.64.0.10";
/// The instance's core address (the image's default).
const CORE_IP: &str = "198.51.100.2";
const SESSION: &str = "session=02:00:00:00:00:10,100.64.0.10";

fn tap_ns(
    name: &str,
    tap: &str,
    mac: Option<&str>,
    addr: &str,
    routes: &[&[&str]],
) -> Result<Netns, String> {
    tap_netns(name, tap, mac, Some(addr), routes).map_err(|e| e.to_string())
}

fn ping_in(ns: &str, interval_s: f64, target: &str) -> Result<Background, String> {
    let interval = format!("{interval_s:.4}");
    Background::spawn(ns, "ping", &["-q", "-i", &interval, target]).map_err(|e| e.to_string())
}

fn base_spec(image: &Path, accel: Accel, name: &str) -> VmSpec {
    VmSpec {
        name: name.into(),
        image: image.to_path_buf(),
        memory_mib: vbng_vm::spec::DEFAULT_MEMORY_MIB,
        accel,
        transport: Transport::Legacy,
        access: NetBackend::None,
        core: NetBackend::None,
        mgmt: NetBackend::None,
        access_mac: [0x52, 0x54, 0, 0, 0, 1],
        core_mac: [0x52, 0x54, 0, 0, 0, 2],
        mgmt_mac: [0x52, 0x54, 0, 0, 0, 3],
        day0: vec![SESSION.into()],
        netns: None,
        exit_code_needed: false,
    }
}

/// One timed boot: namespaces with set-up taps, a ping stream toward the subscriber from
/// before the start, the launcher's boot report. Then the baseline: the same image and
/// devices, exiting at its first instruction, timed from QEMU start to QEMU exit.
fn boot_once(
    image: &Path,
    accel: Accel,
    round: usize,
) -> Result<(vbng_vm::BootReport, f64), String> {
    let pid = std::process::id();
    let sub = tap_ns(
        &format!("ukp-s{pid}-{round}"),
        "uka",
        Some(SUB_MAC),
        "100.64.0.10/24",
        &[&["default", "via", "100.64.0.1"]],
    )?;
    let inet = tap_ns(
        &format!("ukp-i{pid}-{round}"),
        "ukc",
        None,
        "198.51.100.1/24",
        &[&["100.64.0.0/10", "via", CORE_IP]],
    )?;
    let mut spec = base_spec(image, accel, "perf-boot");
    spec.access = NetBackend::TapIn {
        ifname: "uka".into(),
        netns: sub.name().into(),
    };
    spec.core = NetBackend::TapIn {
        ifname: "ukc".into(),
        netns: inet.name().into(),
    };
    // The Internet host knows the instance's core MAC from the start, so that the ping
    // stream waits at the tap while the guest boots: the figure is the guest's own time
    // to a forwarded frame, not the host's ARP retry timer (a failed resolution before
    // QEMU opened the tap is retried only after a second).
    inet.ip(&[
        "neigh",
        "replace",
        CORE_IP,
        "lladdr",
        &vbng_vm::spec::mac(&spec.core_mac),
        "dev",
        "ukc",
        "nud",
        "permanent",
    ])
    .map_err(|e| e.to_string())?;
    let report = {
        let _stream = ping_in(inet.name(), 0.002, SUB_IP)?;
        let mut vm = Vm::start(&spec).map_err(|e| e.to_string())?;
        let r = vm
            .boot_report(Duration::from_secs(90))
            .map_err(|e| e.to_string())?;
        vm.stop();
        r
    };
    spec.day0.push("baseline=exit".into());
    let mut vm = Vm::start(&spec).map_err(|e| e.to_string())?;
    let started = vm.started();
    let deadline = Instant::now() + Duration::from_secs(60);
    while vm.try_exit_status().is_none() {
        if Instant::now() > deadline {
            return Err("the baseline=exit instance did not exit".into());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let baseline_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok((report, baseline_ms))
}

/// CPU seconds (user + system) a process has used, from /proc/<pid>/stat.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after the name.
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) / hz
}

/// Proportional set size of a process in KiB (smaps_rollup).
fn pss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.split_ascii_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0.0)
}

/// Cores used by `pids` over `seconds`.
fn cores_used(pids: &[u32], seconds: f64) -> f64 {
    let before: f64 = pids.iter().map(|&p| cpu_seconds(p)).sum();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let after: f64 = pids.iter().map(|&p| cpu_seconds(p)).sum();
    (after - before) / t0.elapsed().as_secs_f64()
}

/// The density run: `n` instances, each in a namespace of its own with both taps (the
/// core tap addressed as the Internet host), optionally as the `baseline=halt` image.
struct Fleet {
    vms: Vec<Vm>,
    namespaces: Vec<Netns>,
}

impl Fleet {
    fn start(image: &Path, accel: Accel, n: usize, baseline: bool) -> Result<Fleet, String> {
        let pid = std::process::id();
        let mut fleet = Fleet {
            vms: Vec::new(),
            namespaces: Vec::new(),
        };
        for i in 0..n {
            let ns = Netns::create(&format!("ukd{pid}-{}{i}", if baseline { "b" } else { "v" }))
                .map_err(|e| e.to_string())?;
            let mut spec = base_spec(image, accel, &format!("density-{i}"));
            spec.access = NetBackend::Tap("uka".into());
            spec.core = NetBackend::Tap("ukc".into());
            spec.netns = Some(ns.name().into());
            if baseline {
                spec.day0.push("baseline=halt".into());
            }
            fleet
                .vms
                .push(Vm::start(&spec).map_err(|e| format!("instance {i}: {e}"))?);
            fleet.namespaces.push(ns);
        }
        // Every QEMU has opened its taps once they exist; then the Internet side.
        for (i, ns) in fleet.namespaces.iter().enumerate() {
            let deadline = Instant::now() + Duration::from_secs(60);
            while ns.ip(&["link", "show", "ukc"]).is_err() {
                if Instant::now() > deadline {
                    return Err(format!("instance {i}: its taps never appeared"));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            for args in [
                &["link", "set", "uka", "up"][..],
                &["link", "set", "ukc", "up"],
                &["addr", "add", "198.51.100.1/24", "dev", "ukc"],
                &["route", "add", "100.64.0.0/10", "via", CORE_IP],
            ] {
                ns.ip(args).map_err(|e| e.to_string())?;
            }
        }
        Ok(fleet)
    }

    fn pids(&self) -> Vec<u32> {
        self.vms.iter().filter_map(Vm::pid).collect()
    }

    fn running(&mut self) -> usize {
        let mut n = 0;
        for vm in self.vms.iter_mut() {
            n += usize::from(vm.try_exit_status().is_none());
        }
        n
    }
}

fn elf_loadable_bytes(image: &[u8]) -> Option<u64> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(image.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(image.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(image.get(o..o + 8)?.try_into().ok()?));
    if image.get(..4)? != b"\x7fELF" {
        return None;
    }
    let (phoff, phentsize, phnum) = (u64_at(32)? as usize, u16_at(54)? as usize, u16_at(56)?);
    let mut total = 0;
    for i in 0..usize::from(phnum) {
        let ph = phoff + i * phentsize;
        if u32_at(ph)? == 1 {
            total += u64_at(ph + 32)?; // p_filesz
        }
    }
    Some(total)
}

/// Runs the measurements.
pub fn run(args: &UnikernelArgs) -> Result<Vec<Figure>, String> {
    let image = vbng_vm::image::build().map_err(|e| e.to_string())?;
    let accel = args.accel.resolve();
    let idle_mode = if accel == Accel::Kvm {
        "kvm (if KVM-PVM: polls when idle)"
    } else {
        "tcg (halts when idle)"
    };
    let mut figures = Vec::new();

    let bytes = std::fs::read(&image).map_err(|e| format!("{}: {e}", image.display()))?;
    let mut size = Figure::new("unikernel.image_bytes", bytes.len() as f64, "bytes").param(
        "loadable_bytes",
        elf_loadable_bytes(&bytes).unwrap_or(0) as f64,
    );
    let hosted = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/vbng-up");
    if let Ok(m) = std::fs::metadata(&hosted) {
        size = size.with_baseline("hosted vbng-up binary (release)", m.len() as f64);
    }
    figures.push(size);

    let mut qemu_ms = Vec::new();
    let mut base_ms = Vec::new();
    let mut entry_us = Vec::new();
    let mut ready_us = Vec::new();
    let mut heap_kib = 0;
    for round in 0..args.boots {
        let (r, b) = boot_once(&image, accel, round)?;
        qemu_ms.push(r.qemu_to_first_forward.as_secs_f64() * 1e3);
        base_ms.push(b);
        entry_us.push(r.entry_to_first_forward_us as f64);
        ready_us.push(r.entry_to_ready_us as f64);
        heap_kib = r.heap_used_kib;
    }
    if args.boots > 0 {
        let (q, b) = (Stats::from_samples(&qemu_ms), Stats::from_samples(&base_ms));
        figures.push(
            Figure::new("unikernel.boot.qemu_to_first_forward", q.median, "ms")
                .with_baseline("qemu start to exit, image exiting at entry", b.median)
                .param("accel", accel.to_string())
                .param("boots", args.boots as f64)
                .param("min_ms", q.min),
        );
        let e = Stats::from_samples(&entry_us);
        figures.push(
            Figure::new("unikernel.boot.entry_to_first_forward", e.median, "us")
                .with_baseline(
                    "guest entry to poll loop start",
                    Stats::from_samples(&ready_us).median,
                )
                .param("accel", accel.to_string())
                .param("min_us", e.min),
        );
    }
    figures.push(
        Figure::new(
            "unikernel.guest_memory",
            f64::from(vbng_vm::spec::DEFAULT_MEMORY_MIB) * 1024.0,
            "KiB",
        )
        .param("heap_used_kib", heap_kib as f64),
    );

    if args.instances > 0 {
        let settle = Duration::from_secs(2) + Duration::from_millis(30 * args.instances as u64);
        let (base_idle, base_pss) = {
            let mut fleet = Fleet::start(&image, accel, args.instances, true)?;
            std::thread::sleep(settle);
            let up = fleet.running();
            if up != args.instances {
                return Err(format!(
                    "{up} of {} baseline instances running",
                    args.instances
                ));
            }
            let pids = fleet.pids();
            let idle = cores_used(&pids, args.seconds);
            let pss = pids.iter().map(|&p| pss_kib(p)).sum::<f64>() / pids.len().max(1) as f64;
            (idle, pss)
        };
        let mut fleet = Fleet::start(&image, accel, args.instances, false)?;
        std::thread::sleep(settle);
        let up = fleet.running();
        if up != args.instances {
            return Err(format!("{up} of {} instances running", args.instances));
        }
        let pids = fleet.pids();
        let idle = cores_used(&pids, args.seconds);
        let pss = pids.iter().map(|&p| pss_kib(p)).sum::<f64>() / pids.len().max(1) as f64;
        let streams: Vec<Background> = fleet
            .namespaces
            .iter()
            .map(|ns| ping_in(ns.name(), 1.0 / f64::from(args.pps.max(1)), SUB_IP))
            .collect::<Result<_, _>>()?;
        std::thread::sleep(Duration::from_millis(500));
        let busy = cores_used(&pids, args.seconds);
        drop(streams);
        let n = args.instances as f64;
        figures.push(
            Figure::new("unikernel.density.cpu_idle", idle, "cores")
                .with_baseline("same instances, image only halting", base_idle)
                .param("instances", n)
                .param("accel", idle_mode),
        );
        figures.push(
            Figure::new("unikernel.density.cpu_forwarding", busy, "cores")
                .with_baseline("same instances idle", idle)
                .param("instances", n)
                .param("pps_per_instance", f64::from(args.pps))
                .param("accel", idle_mode),
        );
        figures.push(
            Figure::new("unikernel.density.host_pss_per_instance", pss, "KiB")
                .with_baseline("qemu with the image only halting", base_pss)
                .param("instances", n),
        );
    }
    Ok(figures)
}
