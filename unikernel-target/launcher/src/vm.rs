//! A running instance: QEMU started from a [`VmSpec`], its serial console read line by
//! line (each with the time it arrived), the boot report the image prints, and stopping.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::os::fd::AsRawFd;

use crate::spec::{Accel, NetBackend, QemuBinary, VmSpec};

/// What went wrong with an instance.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// QEMU could not be started.
    #[error("starting qemu-system-x86_64: {0}")]
    Spawn(std::io::Error),
    /// A day-0 word the image would refuse.
    #[error("day-0 configuration: {0}")]
    Day0(String),
    /// KVM was asked for but `/dev/kvm` is not usable.
    #[error("--accel kvm: /dev/kvm is not usable here")]
    NoKvm,
    /// The instance printed nothing matching before the deadline.
    #[error("{what}: nothing after {waited:?}; serial console so far:\n{console}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        waited: Duration,
        /// Its console output.
        console: String,
    },
    /// QEMU exited before the awaited line.
    #[error("qemu exited ({status}) before {what}; serial console:\n{console}")]
    Exited {
        /// What was awaited.
        what: String,
        /// QEMU's exit status (the image's exit code is (status - 1) / 2).
        status: String,
        /// Its console output.
        console: String,
    },
}

/// The image's boot report (its `vbng-uk: boot ...` line) and the launcher's own timing.
#[derive(Debug, Clone, PartialEq)]
pub struct BootReport {
    /// QEMU started to the image's "forwarding" line read on the host (includes printing
    /// that line over the emulated serial port).
    pub qemu_to_first_forward: Duration,
    /// Guest entry (first instruction) to the first forwarded frame, from the TSC.
    pub entry_to_first_forward_us: u64,
    /// Guest entry to the poll loop's start (devices and pipeline ready).
    pub entry_to_ready_us: u64,
    /// The TSC rate the guest used.
    pub tsc_khz: u64,
    /// Heap in use after the set-up, KiB.
    pub heap_used_kib: u64,
    /// Guest RAM, KiB.
    pub ram_kib: u64,
    /// The accelerator it ran on.
    pub accel: Accel,
}

/// A running instance. Dropping it kills QEMU.
#[derive(Debug)]
pub struct Vm {
    child: Option<Child>,
    started: Instant,
    accel: Accel,
    qemu: QemuBinary,
    lines: Receiver<(Instant, String)>,
    console: Arc<Mutex<Vec<String>>>,
}

impl Vm {
    /// Starts `spec`. The accelerator is resolved here (`Auto`: KVM if usable).
    pub fn start(spec: &VmSpec) -> Result<Vm, VmError> {
        // The image's own parser: a bad word is refused here, with its name, instead of
        // ending the boot.
        vbng_day0::parse(&spec.day0.join(" ")).map_err(VmError::Day0)?;
        let accel = spec.accel.resolve();
        if accel == Accel::Kvm && !crate::host::kvm_usable() {
            return Err(VmError::NoKvm);
        }
        let tsc_khz = crate::host::host_tsc_khz();
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        // Taps in other namespaces are opened here and inherited by QEMU.
        let mut taps = Vec::new();
        for backend in [&spec.access, &spec.core, &spec.mgmt] {
            if let NetBackend::TapIn { ifname, netns } = backend {
                taps.push(crate::tap::open(ifname, Some(netns)).map_err(VmError::Spawn)?);
            }
        }
        let fds: Vec<i32> = taps.iter().map(AsRawFd::as_raw_fd).collect();
        let qemu = QemuBinary::choose(
            accel,
            spec.exit_code_needed,
            crate::host::installed(QemuBinary::Microvm.program()),
        );
        let argv = spec.command(accel, qemu, tsc_khz, unix_ms, &fds);
        let started = Instant::now();
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(VmError::Spawn)?;
        drop(taps);
        let (tx, lines) = channel();
        let console = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let (tx, console) = (tx.clone(), Arc::clone(&console));
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let line = line.trim_end_matches('\r').to_string();
                    console.lock().map(|mut c| c.push(line.clone())).ok();
                    if tx.send((Instant::now(), line)).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(Vm {
            child: Some(child),
            started,
            accel,
            qemu,
            lines,
            console,
        })
    }

    /// The accelerator the instance runs on.
    pub fn accel(&self) -> Accel {
        self.accel
    }

    /// The QEMU binary running it.
    pub fn qemu(&self) -> QemuBinary {
        self.qemu
    }

    /// When QEMU was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Everything the instance printed so far.
    pub fn console(&self) -> String {
        self.console
            .lock()
            .map(|c| c.join("\n"))
            .unwrap_or_default()
    }

    /// QEMU's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits for a console line starting with `prefix`, returning it and when it arrived.
    pub fn wait_line(
        &mut self,
        prefix: &str,
        timeout: Duration,
    ) -> Result<(Instant, String), VmError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left.max(Duration::from_millis(1))) {
                Ok((at, line)) if line.starts_with(prefix) => return Ok((at, line)),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(_) => {
                    if let Some(status) = self.try_exit_status() {
                        return Err(VmError::Exited {
                            what: format!("`{prefix}`"),
                            status: status.to_string(),
                            console: self.console(),
                        });
                    }
                    if Instant::now() >= deadline {
                        return Err(VmError::Timeout {
                            what: format!("`{prefix}`"),
                            waited: timeout,
                            console: self.console(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }

    /// Waits for the image's first forwarded frame and returns its boot report.
    pub fn boot_report(&mut self, timeout: Duration) -> Result<BootReport, VmError> {
        let (at, _) = self.wait_line("vbng-uk: forwarding", timeout)?;
        let (_, line) = self.wait_line("vbng-uk: boot ", Duration::from_secs(5))?;
        let field = |key: &str| {
            line.split_ascii_whitespace()
                .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(BootReport {
            qemu_to_first_forward: at.duration_since(self.started),
            entry_to_first_forward_us: field("entry_to_forward_us"),
            entry_to_ready_us: field("entry_to_ready_us"),
            tsc_khz: field("tsc_khz"),
            heap_used_kib: field("heap_used_kib"),
            ram_kib: field("ram_kib"),
            accel: self.accel,
        })
    }

    /// QEMU's exit status if it has exited.
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits until QEMU exits.
    pub fn wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.wait().ok())
    }

    /// Stops the instance: SIGTERM, then SIGKILL after two seconds.
    pub fn stop(mut self) -> Option<ExitStatus> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.shutdown();
    }
}
