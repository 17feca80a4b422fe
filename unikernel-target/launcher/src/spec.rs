//! An instance's make-up and its QEMU command line.

use std::fmt;
use std::path::PathBuf;

/// Which accelerator runs the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// KVM when `/dev/kvm` is usable, TCG otherwise.
    Auto,
    /// KVM (fails without `/dev/kvm`).
    Kvm,
    /// QEMU's software emulation.
    Tcg,
}

impl Accel {
    /// The accelerator `Auto` picks on this host; the others as they are.
    pub fn resolve(self) -> Accel {
        match self {
            Accel::Auto if crate::host::kvm_usable() => Accel::Kvm,
            Accel::Auto => Accel::Tcg,
            other => other,
        }
    }
}

/// `Display` and `FromStr` for a choice named on the command line: each variant's name, and
/// an error naming the bad value and the choices.
macro_rules! named_choice {
    ($ty:ident, $what:literal, $expected:literal, $($variant:ident => $name:literal),+ $(,)?) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self {
                    $($ty::$variant => $name,)+
                })
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    other => Err(format!(concat!($what, " `{}`: expected ", $expected), other)),
                }
            }
        }
    };
}

named_choice!(Accel, "accelerator", "auto, kvm or tcg", Auto => "auto", Kvm => "kvm", Tcg => "tcg");

/// The virtio-mmio transport QEMU gives the devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The legacy transport, and the image told so (`virtio=qemu-legacy`, the MACs on the
    /// command line): six register writes a device, nothing read. The fastest boot.
    Legacy,
    /// The modern (virtio 1) transport: the image probes each device, about 25 register
    /// accesses.
    Modern,
}

named_choice!(Transport, "virtio transport", "legacy or modern", Legacy => "legacy", Modern => "modern");

/// Which QEMU binary runs the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QemuBinary {
    /// `qemu-system-x86_64`: every accelerator and isa-debug-exit, so that QEMU's exit
    /// status carries the image's exit code (`code * 2 + 1`).
    Full,
    /// `qemu-system-x86_64-microvm` (Debian's minimal build for the microvm machine): KVM
    /// only, and it starts in about half the time. It has no isa-debug-exit; the image
    /// exits through an i8042 reset instead (QEMU's status 0).
    Microvm,
}

impl QemuBinary {
    /// The program name.
    pub fn program(self) -> &'static str {
        match self {
            QemuBinary::Full => "qemu-system-x86_64",
            QemuBinary::Microvm => "qemu-system-x86_64-microvm",
        }
    }

    /// The binary for `accel` (resolved): the minimal one for KVM when it is installed and
    /// the image's exit code is not needed.
    pub fn choose(accel: Accel, exit_code_needed: bool, microvm_installed: bool) -> QemuBinary {
        if accel == Accel::Kvm && !exit_code_needed && microvm_installed {
            QemuBinary::Microvm
        } else {
            QemuBinary::Full
        }
    }
}

/// How a virtio-net device reaches the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetBackend {
    /// A tap interface by name, opened by QEMU in its own network namespace (created if it
    /// does not exist).
    Tap(String),
    /// An existing tap interface in a network namespace, opened by the launcher and handed
    /// to QEMU as a file descriptor (the interface can be set up before the start).
    TapIn {
        /// Interface name.
        ifname: String,
        /// Namespace holding it.
        netns: String,
    },
    /// No device (the image then stops at boot: only for its page protection probes).
    None,
}

/// One instance.
#[derive(Debug, Clone)]
pub struct VmSpec {
    /// Instance name (QEMU's `-name`).
    pub name: String,
    /// The vbng-uk image.
    pub image: PathBuf,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Accelerator.
    pub accel: Accel,
    /// The devices' virtio-mmio transport.
    pub transport: Transport,
    /// The access side (subscribers).
    pub access: NetBackend,
    /// The core side.
    pub core: NetBackend,
    /// The management side (PFCP and the control-packet redirect to the control plane;
    /// the image then needs `mgmt_ip=` among its day-0 words), or `None`.
    pub mgmt: NetBackend,
    /// MAC of the access device (not used on the wire: the image answers as the gateway).
    pub access_mac: [u8; 6],
    /// MAC of the core device: the instance's own on the core link.
    pub core_mac: [u8; 6],
    /// MAC of the management device.
    pub mgmt_mac: [u8; 6],
    /// Day-0 configuration: `key=value` words of the image's command line
    /// (unikernel-target/image/src/config.rs lists them).
    pub day0: Vec<String>,
    /// Run QEMU inside this network namespace (`ip netns exec`), if set.
    pub netns: Option<String>,
    /// QEMU's exit status must carry the image's exit code (isa-debug-exit, so the full
    /// QEMU binary): for tests of the image's failure paths.
    pub exit_code_needed: bool,
}

/// Guest memory by default: the image is loaded at 1 MiB and its heap (about 1.9 MiB in
/// use with NAT, the shaper and PFCP: three devices' rings of 128 buffers, the pipeline's
/// tables) takes the rest.
pub const DEFAULT_MEMORY_MIB: u32 = 4;

/// `m` as QEMU and `ip` write a MAC address: six lowercase hex pairs joined by colons.
pub fn mac(m: &[u8; 6]) -> String {
    let h: Vec<String> = m.iter().map(|b| format!("{b:02x}")).collect();
    h.join(":")
}

impl VmSpec {
    /// The program and arguments that start this instance on `accel` (already resolved),
    /// with the guest's TSC rate and wall clock added to the command line. `fds` holds
    /// the descriptors of `TapIn` backends in device order (access, core, management).
    pub fn command(
        &self,
        accel: Accel,
        qemu: QemuBinary,
        tsc_khz: u64,
        unix_ms: u64,
        fds: &[i32],
    ) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        if let Some(ns) = &self.netns {
            args.extend(["ip", "netns", "exec", ns].map(String::from));
        }
        args.push(qemu.program().into());
        let machine = "microvm,x-option-roms=off,rtc=off,acpi=off,pic=off,pit=off,isa-serial=on,\
                       memory-backend=ram";
        args.extend(["-name", &self.name, "-M", machine].map(String::from));
        // Guest RAM is populated before the guest starts. QEMU asks for transparent huge
        // pages on it, and with the host's `defrag=madvise` the first touch of each 2 MiB
        // inside the guest waited for the host to zero it (about 0.2 ms) or to compact
        // memory for it (about 3 ms in one boot of three): time inside the guest's boot.
        args.extend([
            "-object".to_string(),
            format!(
                "memory-backend-ram,id=ram,size={}M,prealloc=on",
                self.memory_mib
            ),
        ]);
        match accel {
            // KVM-PVM hosts abort on `-cpu host` unless arch-capabilities is off.
            Accel::Kvm => {
                args.extend(["-accel", "kvm", "-cpu", "host,-arch-capabilities"].map(String::from))
            }
            _ => args.extend(["-accel", "tcg", "-cpu", "max"].map(String::from)),
        }
        args.extend([
            "-m".to_string(),
            format!("{}M", self.memory_mib),
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-nographic".into(),
            "-no-reboot".into(),
            "-serial".into(),
            "stdio".into(),
            "-device".into(),
            match qemu {
                QemuBinary::Full => "isa-debug-exit,iobase=0xf4,iosize=4".into(),
                QemuBinary::Microvm => "i8042".into(),
            },
            "-global".into(),
            format!(
                "virtio-mmio.force-legacy={}",
                self.transport == Transport::Legacy
            ),
        ]);
        let mut fds = fds.iter();
        for (id, backend, m) in [
            ("access", &self.access, &self.access_mac),
            ("core", &self.core, &self.core_mac),
            ("mgmt", &self.mgmt, &self.mgmt_mac),
        ] {
            match backend {
                NetBackend::Tap(ifname) => {
                    args.push("-netdev".into());
                    args.push(format!(
                        "tap,id={id},ifname={ifname},script=no,downscript=no"
                    ));
                }
                NetBackend::TapIn { .. } => {
                    args.push("-netdev".into());
                    args.push(format!(
                        "tap,id={id},fd={}",
                        fds.next().copied().unwrap_or(-1)
                    ));
                }
                NetBackend::None => continue,
            }
            args.push("-device".into());
            args.push(format!(
                "virtio-net-device,netdev={id},mac={},rx_queue_size=256,tx_queue_size=256",
                mac(m)
            ));
        }
        let mut append = self.day0.clone();
        if self.transport == Transport::Legacy {
            // What the image would otherwise read from the devices, one trap per register.
            append.push("virtio=qemu-legacy".into());
            append.push(format!("core_mac={}", mac(&self.core_mac)));
            append.push(format!("mgmt_mac={}", mac(&self.mgmt_mac)));
        }
        append.push(format!("tsc_khz={tsc_khz}"));
        append.push(format!("unix_ms={unix_ms}"));
        args.extend([
            "-kernel".to_string(),
            self.image.display().to_string(),
            "-append".into(),
            append.join(" "),
        ]);
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> VmSpec {
        VmSpec {
            name: "c1".into(),
            image: "/img".into(),
            memory_mib: 8,
            accel: Accel::Auto,
            transport: Transport::Legacy,
            access: NetBackend::Tap("a0".into()),
            core: NetBackend::Tap("c0".into()),
            mgmt: NetBackend::None,
            access_mac: [0x52, 0x54, 0, 0, 0, 1],
            core_mac: [0x52, 0x54, 0, 0, 0, 2],
            mgmt_mac: [0x52, 0x54, 0, 0, 0, 3],
            day0: vec!["session=02:00:00:00:00:10,100.64.0.10".into()],
            netns: Some("ns1".into()),
            exit_code_needed: false,
        }
    }

    /// The command line of `s` on the minimal QEMU under KVM, as one string.
    fn microvm_line(s: &VmSpec) -> String {
        s.command(Accel::Kvm, QemuBinary::Microvm, 1, 1, &[])
            .join(" ")
    }

    #[test]
    fn command_line_has_the_devices_in_order_and_the_day0_words() {
        let c = spec().command(Accel::Kvm, QemuBinary::Full, 2_445_424, 7, &[]);
        assert_eq!(&c[..4], ["ip", "netns", "exec", "ns1"]);
        let line = c.join(" ");
        assert!(
            line.contains("-accel kvm -cpu host,-arch-capabilities"),
            "{line}"
        );
        assert!(
            line.contains("-nodefaults") && line.contains("-no-reboot") && line.contains("-m 8M")
        );
        // The guest RAM, populated before the start, is the machine's memory.
        assert!(
            line.contains("-object memory-backend-ram,id=ram,size=8M,prealloc=on")
                && line.contains(",memory-backend=ram"),
            "{line}"
        );
        let access = line
            .find("netdev=access,mac=52:54:00:00:00:01")
            .expect("access device");
        let core = line
            .find("netdev=core,mac=52:54:00:00:00:02")
            .expect("core device");
        assert!(access < core, "the access device comes first");
        assert!(line.contains("tap,id=access,ifname=a0,script=no,downscript=no"));
        assert_eq!(
            c.last().map(String::as_str),
            Some(
                "session=02:00:00:00:00:10,100.64.0.10 virtio=qemu-legacy \
                 core_mac=52:54:00:00:00:02 mgmt_mac=52:54:00:00:00:03 tsc_khz=2445424 unix_ms=7"
            )
        );
    }

    #[test]
    fn inherited_taps_are_passed_by_descriptor() {
        let mut s = spec();
        s.access = NetBackend::TapIn {
            ifname: "a0".into(),
            netns: "sub".into(),
        };
        s.core = NetBackend::TapIn {
            ifname: "c0".into(),
            netns: "inet".into(),
        };
        let line = s
            .command(Accel::Kvm, QemuBinary::Microvm, 1, 1, &[7, 9])
            .join(" ");
        assert!(
            line.contains("-netdev tap,id=access,fd=7 -device virtio-net-device,netdev=access"),
            "{line}"
        );
        assert!(
            line.contains("-netdev tap,id=core,fd=9 -device virtio-net-device,netdev=core"),
            "{line}"
        );
    }

    #[test]
    fn the_minimal_qemu_serves_kvm_with_an_i8042_for_the_exit() {
        assert_eq!(
            QemuBinary::choose(Accel::Kvm, false, true),
            QemuBinary::Microvm
        );
        assert_eq!(QemuBinary::choose(Accel::Kvm, true, true), QemuBinary::Full);
        assert_eq!(
            QemuBinary::choose(Accel::Tcg, false, true),
            QemuBinary::Full
        );
        assert_eq!(
            QemuBinary::choose(Accel::Kvm, false, false),
            QemuBinary::Full
        );
        let line = microvm_line(&spec());
        assert!(
            line.contains("qemu-system-x86_64-microvm -name c1"),
            "{line}"
        );
        assert!(
            line.contains("-device i8042") && !line.contains("isa-debug-exit"),
            "{line}"
        );
    }

    #[test]
    fn the_legacy_promise_comes_with_the_devices_it_describes() {
        let line = microvm_line(&spec());
        assert!(
            line.contains("-global virtio-mmio.force-legacy=true"),
            "{line}"
        );
        assert!(
            line.contains("netdev=core,mac=52:54:00:00:00:02,rx_queue_size=256,tx_queue_size=256"),
            "{line}"
        );
        let append = line.split_once("-append ").map(|(_, a)| a).unwrap_or("");
        let cfg = vbng_day0::parse(append).expect("the image takes the line");
        assert!(cfg.virtio_qemu_legacy, "{append}");
        assert_eq!(cfg.core_mac.map(|m| m.0), Some([0x52, 0x54, 0, 0, 0, 2]));
        assert_eq!(cfg.mgmt_mac.map(|m| m.0), Some([0x52, 0x54, 0, 0, 0, 3]));

        // The modern transport: no promise, the image probes.
        let mut modern = spec();
        modern.transport = Transport::Modern;
        let line = microvm_line(&modern);
        assert!(
            line.contains("-global virtio-mmio.force-legacy=false"),
            "{line}"
        );
        assert!(
            !line.contains("virtio=") && !line.contains("core_mac="),
            "{line}"
        );
    }

    #[test]
    fn tcg_uses_the_max_cpu_model() {
        let line = spec()
            .command(Accel::Tcg, QemuBinary::Full, 1, 1, &[])
            .join(" ");
        assert!(line.contains("-accel tcg -cpu max"), "{line}");
    }

    #[test]
    fn accel_parses_and_names_the_bad_value() {
        assert_eq!("tcg".parse::<Accel>(), Ok(Accel::Tcg));
        let err = "xen".parse::<Accel>().unwrap_err();
        assert_eq!(err, "accelerator `xen`: expected auto, kvm or tcg");
        assert_eq!(Accel::Kvm.to_string(), "kvm");
        assert_eq!("modern".parse::<Transport>(), Ok(Transport::Modern));
        assert_eq!(
            "pci".parse::<Transport>().unwrap_err(),
            "virtio transport `pci`: expected legacy or modern"
        );
        assert_eq!(Transport::Legacy.to_string(), "legacy");
    }
}
