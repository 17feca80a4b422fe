//! Processes the lab starts: the two vbng daemons and the DHCP clients.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::LabError;

/// A long-running program started inside a namespace, its output going to
/// a log file; stopped with SIGTERM (then SIGKILL) on drop.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `program args` inside namespace `ns` (`ip netns exec` execs the
    /// program in place, so the child's pid is the daemon's).
    pub fn start(
        name: &str,
        ns: &str,
        program: &Path,
        args: &[&str],
        log: PathBuf,
    ) -> Result<Self, LabError> {
        let out = File::create(&log)
            .map_err(|e| LabError::Command(format!("create {}: {e}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(|e| LabError::Command(format!("dup log fd: {e}")))?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(program)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| LabError::Command(format!("start {}: {e}", program.display())))?;
        Ok(Daemon {
            name: name.to_owned(),
            child,
            log,
        })
    }

    /// The name the daemon was started under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Fails when the daemon has already exited, quoting the end of its log.
    pub fn check_running(&mut self) -> Result<(), LabError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(LabError::Command(format!(
                "{} exited with {status}; last log lines:\n{}",
                self.name,
                self.log_tail(15)
            ))),
            Err(e) => Err(LabError::Command(format!("wait for {}: {e}", self.name))),
        }
    }

    /// The last `lines` lines of the daemon's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Sends `signal` (such as `libc::SIGHUP`) to the daemon.
    pub fn signal(&mut self, signal: i32) -> Result<(), LabError> {
        self.check_running()?;
        let pid = i32::try_from(self.child.id())
            .map_err(|_| LabError::Command(format!("{}: pid out of range", self.name)))?;
        // SAFETY: kill(2) with a pid we spawned and have not reaped (it is still running).
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(LabError::Command(format!(
                "signal {signal} to {}: {}",
                self.name,
                std::io::Error::last_os_error()
            )));
        }
        Ok(())
    }

    /// Stops the daemon: SIGTERM, then SIGKILL after two seconds.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) with a pid we spawned and have not yet reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A program running in a namespace in the background, its output discarded, killed
/// when dropped (a traffic stream, a one-shot server).
#[derive(Debug)]
pub struct Background(Child);

impl Background {
    /// Starts `program args` inside namespace `ns`.
    pub fn spawn(ns: &str, program: &str, args: &[&str]) -> Result<Self, LabError> {
        Command::new("ip")
            .args(["netns", "exec", ns, program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(Background)
            .map_err(|e| LabError::Command(format!("start {program} in {ns}: {e}")))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// ISC dhclient on one interface of a subscriber namespace, with its own
/// pid, lease and config files so that several run side by side.
#[derive(Debug)]
pub struct Dhclient {
    ns: String,
    iface: String,
    /// `-4` or `-6`.
    family: &'static str,
    pid_file: PathBuf,
    lease_file: PathBuf,
    conf_file: PathBuf,
}

impl Dhclient {
    /// Prepares the files for a client named `tag` in `dir`.
    pub fn new(ns: &str, iface: &str, dir: &Path, tag: &str) -> Result<Self, LabError> {
        // Give up within 20 s rather than dhclient's default 60 s, so a
        // broken path fails the step quickly.
        let conf = "timeout 20;\nretry 5;\nrequest subnet-mask, broadcast-address, routers, \
                    domain-name-servers;\n";
        Self::with_family(ns, iface, dir, &format!("dhclient-{tag}"), "-4", conf)
    }

    /// A DHCPv6 client (`dhclient -6`) named `tag` in `dir`, like
    /// [`Dhclient::new`].
    pub fn new_ipv6(ns: &str, iface: &str, dir: &Path, tag: &str) -> Result<Self, LabError> {
        let conf = "timeout 20;\nretry 5;\n";
        Self::with_family(ns, iface, dir, &format!("dhclient6-{tag}"), "-6", conf)
    }

    /// A client of `family` (`-4` or `-6`) whose files in `dir` are named
    /// after `stem`, with `conf` as its configuration.
    fn with_family(
        ns: &str,
        iface: &str,
        dir: &Path,
        stem: &str,
        family: &'static str,
        conf: &str,
    ) -> Result<Self, LabError> {
        let conf_file = dir.join(format!("{stem}.conf"));
        std::fs::write(&conf_file, conf)
            .map_err(|e| LabError::Command(format!("write {}: {e}", conf_file.display())))?;
        Ok(Dhclient {
            ns: ns.to_owned(),
            iface: iface.to_owned(),
            family,
            pid_file: dir.join(format!("{stem}.pid")),
            lease_file: dir.join(format!("{stem}.leases")),
            conf_file,
        })
    }

    fn args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["dhclient", self.family, "-v"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[
            "-pf",
            self.pid_file.to_str().unwrap_or_default(),
            "-lf",
            self.lease_file.to_str().unwrap_or_default(),
            "-cf",
            self.conf_file.to_str().unwrap_or_default(),
            self.iface.as_str(),
        ]);
        args
    }

    /// Runs DISCOVER/OFFER/REQUEST/ACK once; returns when the interface is
    /// configured (dhclient then stays in the background to renew).
    pub fn obtain_lease(&self) -> Result<String, LabError> {
        let args = self.args(&["-1"]);
        let out = super::netns::exec_in(&self.ns, args[0], &args[1..])?;
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// DHCPv6 (a client made by [`Dhclient::new_ipv6`]): asks once for an
    /// address (IA_NA) and a delegated prefix (IA_PD); returns when both
    /// are bound, with dhclient's log (it then renews in the background).
    pub fn obtain_address_and_prefix(&self) -> Result<String, LabError> {
        let args = self.args(&["-1", "-N", "-P"]);
        let out = super::netns::exec_in(&self.ns, args[0], &args[1..])?;
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// The client's lease file as dhclient wrote it (empty if none yet).
    pub fn lease_text(&self) -> String {
        std::fs::read_to_string(&self.lease_file).unwrap_or_default()
    }

    /// Sends DHCPRELEASE and stops the background client (`dhclient -r`).
    pub fn release(&self) -> Result<(), LabError> {
        let args = self.args(&["-r"]);
        super::netns::exec_in(&self.ns, args[0], &args[1..]).map(|_| ())
    }

    /// Stops the background client without releasing.
    pub fn kill(&self) {
        if let Ok(text) = std::fs::read_to_string(&self.pid_file) {
            if let Ok(pid) = text.trim().parse::<i32>() {
                // SAFETY: kill(2) on the pid dhclient recorded; at worst the
                // process is already gone and kill fails with ESRCH.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            let _ = std::fs::remove_file(&self.pid_file);
        }
    }
}

impl Drop for Dhclient {
    fn drop(&mut self) {
        self.kill();
    }
}
