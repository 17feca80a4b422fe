//! `vbng-vm`: starts one per-customer vBNG instance, reports its boot time, supervises it
//! (restarts it if QEMU exits on its own) and stops it on SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Parser;
use vbng_vm::{Accel, NetBackend, Transport, Vm, VmSpec};

/// Start a per-customer vBNG (the vbng-uk image in a QEMU microvm).
#[derive(Debug, Parser)]
#[command(name = "vbng-vm")]
struct Args {
    /// Instance name.
    #[arg(long, default_value = "vbng-uk")]
    name: String,
    /// The image (default: this tree's release build, built if missing).
    #[arg(long)]
    image: Option<PathBuf>,
    /// Tap interface of the access side (subscribers).
    #[arg(long)]
    access_tap: String,
    /// Tap interface of the core side.
    #[arg(long)]
    core_tap: String,
    /// Tap interface of the management side (PFCP and control-packet redirect; give the
    /// image `--set mgmt_ip=ADDR/LEN`, and `--set cp_gtpu=ADDR:2152` for the redirect).
    #[arg(long)]
    mgmt_tap: Option<String>,
    /// MAC of the core device (the instance's address on the core link).
    #[arg(long, default_value = "52:54:00:00:00:02", value_parser = parse_mac)]
    core_mac: [u8; 6],
    /// Guest memory, MiB.
    #[arg(long, default_value_t = vbng_vm::spec::DEFAULT_MEMORY_MIB)]
    memory_mib: u32,
    /// auto (KVM when /dev/kvm is usable), kvm or tcg.
    #[arg(long, default_value = "auto")]
    accel: Accel,
    /// The devices' virtio-mmio transport: legacy (the fastest boot) or modern.
    #[arg(long, default_value = "legacy")]
    virtio: Transport,
    /// Run QEMU in this network namespace.
    #[arg(long)]
    netns: Option<String>,
    /// Day-0 configuration word for the image (`key=value`, repeatable), e.g.
    /// `session=02:00:00:00:00:10,100.64.0.10,dl=10M` or `nat_pool=203.0.113.0/28`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    day0: Vec<String>,
    /// Restarts allowed when QEMU exits on its own.
    #[arg(long, default_value_t = 3)]
    restarts: u32,
    /// Seconds to wait for the first forwarded frame before reporting no boot time.
    #[arg(long, default_value_t = 30)]
    boot_timeout_s: u64,
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let mut out = [0u8; 6];
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(format!(
            "MAC `{s}`: expected six hex octets separated by ':'"
        ));
    }
    for (b, p) in out.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16)
            .map_err(|_| format!("MAC `{s}`: `{p}` is not a hex octet"))?;
    }
    Ok(out)
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn main() -> ExitCode {
    let args = Args::parse();
    for word in &args.day0 {
        if !word.contains('=') {
            eprintln!("vbng-vm: --set `{word}`: expected KEY=VALUE");
            return ExitCode::from(2);
        }
    }
    if let Err(e) = vbng_day0::parse(&args.day0.join(" ")) {
        eprintln!("vbng-vm: --set: {e}");
        return ExitCode::from(2);
    }
    let image = match args.image.clone() {
        Some(p) => p,
        None => match vbng_vm::image::build() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("vbng-vm: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let spec = VmSpec {
        name: args.name.clone(),
        image,
        memory_mib: args.memory_mib,
        accel: args.accel,
        transport: args.virtio,
        access: NetBackend::Tap(args.access_tap.clone()),
        core: NetBackend::Tap(args.core_tap.clone()),
        mgmt: args
            .mgmt_tap
            .clone()
            .map_or(NetBackend::None, NetBackend::Tap),
        access_mac: [0x52, 0x54, 0, 0, 0, 1],
        core_mac: args.core_mac,
        mgmt_mac: [0x52, 0x54, 0, 0, 0, 3],
        day0: args.day0.clone(),
        netns: args.netns.clone(),
        exit_code_needed: false,
    };
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(signal, on_signal as *const () as libc::sighandler_t) };
    }
    let mut restarts = 0;
    loop {
        let mut vm = match Vm::start(&spec) {
            Ok(vm) => vm,
            Err(e) => {
                eprintln!("vbng-vm: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!(
            "vbng-vm: {} started on {} (pid {:?})",
            spec.name,
            vm.accel(),
            vm.pid()
        );
        match vm.boot_report(Duration::from_secs(args.boot_timeout_s)) {
            Ok(r) => println!(
                "vbng-vm: {} forwarding: qemu start to first forwarded frame {:.1} ms, guest entry to \
                 first forwarded frame {} us (ready after {} us), {} KiB heap of {} KiB RAM, {}",
                spec.name,
                r.qemu_to_first_forward.as_secs_f64() * 1e3,
                r.entry_to_first_forward_us,
                r.entry_to_ready_us,
                r.heap_used_kib,
                r.ram_kib,
                r.accel
            ),
            Err(e) if !STOP.load(Ordering::Relaxed) => eprintln!("vbng-vm: {e}"),
            Err(_) => {}
        }
        while !STOP.load(Ordering::Relaxed) && vm.try_exit_status().is_none() {
            std::thread::sleep(Duration::from_millis(100));
        }
        if STOP.load(Ordering::Relaxed) {
            let status = vm.stop();
            println!("vbng-vm: {} stopped ({status:?})", spec.name);
            return ExitCode::SUCCESS;
        }
        let status = vm.wait();
        eprintln!(
            "vbng-vm: {} exited on its own ({status:?}); console:\n{}",
            spec.name,
            vm.console()
        );
        restarts += 1;
        if restarts > args.restarts {
            eprintln!(
                "vbng-vm: {} restarted {} times, giving up",
                spec.name, args.restarts
            );
            return ExitCode::FAILURE;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
