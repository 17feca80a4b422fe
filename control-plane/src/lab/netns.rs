//! Network namespaces, veth pairs and running code inside a namespace.
//!
//! Everything here shells out to `ip` (iproute2) except [`in_netns`], which
//! moves a fresh thread into a namespace with `setns(2)` so that sockets it
//! opens (raw AF_PACKET, HTTP clients) live there.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Command, Output};

use super::LabError;

/// Runs `ip <args>` and returns its output, failing with the command line and
/// its stderr when it exits non-zero.
pub fn ip(args: &[&str]) -> Result<Output, LabError> {
    run("ip", args)
}

/// Runs a program to completion, failing with its command line and stderr
/// when it exits non-zero.
pub fn run(program: &str, args: &[&str]) -> Result<Output, LabError> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| LabError::Command(format!("{program} {}: {e}", args.join(" "))))?;
    if !out.status.success() {
        return Err(LabError::Command(format!(
            "{program} {} exited with {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

/// Runs `ip netns exec <ns> <program> <args>`.
pub fn exec_in(ns: &str, program: &str, args: &[&str]) -> Result<Output, LabError> {
    let mut full = vec!["netns", "exec", ns, program];
    full.extend_from_slice(args);
    ip(&full)
}

/// A named network namespace, deleted (with every interface in it) on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace (removing a stale one of the same name first),
    /// brings its loopback up and turns IPv6 off so the lab carries only the
    /// traffic under test.
    pub fn create(name: &str) -> Result<Self, LabError> {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        ip(&["netns", "add", name])?;
        let ns = Netns {
            name: name.to_owned(),
        };
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        // Written under /etc/netns/<name>/, which `ip netns exec` bind-mounts
        // over /etc/resolv.conf: dhclient-script writes the DNS servers it
        // received there instead of into the host's file.
        let etc = format!("/etc/netns/{name}");
        std::fs::create_dir_all(&etc)
            .map_err(|e| LabError::Command(format!("create {etc}: {e}")))?;
        std::fs::write(format!("{etc}/resolv.conf"), "")
            .map_err(|e| LabError::Command(format!("write {etc}/resolv.conf: {e}")))?;
        exec_in(name, "sysctl", &["-qw", "net.ipv6.conf.all.disable_ipv6=1"])?;
        exec_in(
            name,
            "sysctl",
            &["-qw", "net.ipv6.conf.default.disable_ipv6=1"],
        )?;
        Ok(ns)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n <ns> <args>`.
    pub fn ip(&self, args: &[&str]) -> Result<Output, LabError> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// Runs a program inside the namespace.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<Output, LabError> {
        exec_in(&self.name, program, args)
    }

    /// Runs a program inside the namespace and returns what it printed, whatever its exit
    /// status: for tools such as `ping`, which exits 1 when an ICMP error, not a reply,
    /// comes back.
    pub fn stdout_of(&self, program: &str, args: &[&str]) -> Result<String, LabError> {
        let out = Command::new("ip")
            .args(["netns", "exec", self.name.as_str(), program])
            .args(args)
            .output()
            .map_err(|e| LabError::Command(format!("{program} {}: {e}", args.join(" "))))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Frames interface `iface` of this namespace received (its kernel counter).
    pub fn rx_packets(&self, iface: &str) -> Result<u64, LabError> {
        let path = format!("/sys/class/net/{iface}/statistics/rx_packets");
        let text = self.stdout_of("cat", &[&path])?;
        text.trim()
            .parse()
            .map_err(|_| LabError::Command(format!("{path} holds {text:?}, not a count")))
    }

    /// The `resolv.conf` that programs run in this namespace see.
    pub fn resolv_conf(&self) -> String {
        std::fs::read_to_string(format!("/etc/netns/{}/resolv.conf", self.name)).unwrap_or_default()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.name));
    }
}

/// Creates a veth pair with one end in each namespace, named as given, with
/// fixed MAC addresses when asked, both ends up.
pub fn veth(
    a: (&Netns, &str, Option<&str>),
    b: (&Netns, &str, Option<&str>),
) -> Result<(), LabError> {
    ip(&[
        "link",
        "add",
        a.1,
        "netns",
        a.0.name(),
        "type",
        "veth",
        "peer",
        "name",
        b.1,
        "netns",
        b.0.name(),
    ])?;
    for (ns, dev, mac) in [a, b] {
        if let Some(mac) = mac {
            ns.ip(&["link", "set", dev, "address", mac])?;
        }
        ns.ip(&["link", "set", dev, "up"])?;
    }
    Ok(())
}

/// A namespace holding one tap interface, `tap`, with its MAC, address and routes set
/// (`routes`: the arguments of `ip route add`), for a VM to open later: the host side is
/// ready before the guest starts.
pub fn tap_netns(
    name: &str,
    tap: &str,
    mac: Option<&str>,
    addr: Option<&str>,
    routes: &[&[&str]],
) -> Result<Netns, LabError> {
    let ns = Netns::create(name)?;
    ns.ip(&["tuntap", "add", "dev", tap, "mode", "tap"])?;
    if let Some(mac) = mac {
        ns.ip(&["link", "set", tap, "address", mac])?;
    }
    if let Some(addr) = addr {
        ns.ip(&["addr", "add", addr, "dev", tap])?;
    }
    ns.ip(&["link", "set", tap, "up"])?;
    for r in routes {
        let mut args = vec!["route", "add"];
        args.extend_from_slice(r);
        ns.ip(&args)?;
    }
    Ok(ns)
}

/// Runs `f` on a new thread whose network namespace is `ns`, and returns
/// its result. The calling thread's namespace is untouched.
pub fn in_netns<T, F>(ns: &str, f: F) -> Result<T, LabError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let path = format!("/var/run/netns/{ns}");
    let file = File::open(&path).map_err(|e| LabError::Command(format!("open {path}: {e}")))?;
    let handle = std::thread::spawn(move || {
        // SAFETY: `file` is an open namespace file for the duration of the
        // call; setns only changes this new thread's network namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(f())
    });
    match handle.join() {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(LabError::Command(format!("setns into {ns}: {e}"))),
        Err(_) => Err(LabError::Command(format!("thread inside {ns} panicked"))),
    }
}

/// GET a URL from inside namespace `ns` and return the body (an error status is an
/// error).
pub fn http_get_in(ns: &str, url: &str) -> Result<String, LabError> {
    let url = url.to_owned();
    in_netns(ns, move || -> Result<String, String> {
        let mut resp = ureq::get(&url)
            .call()
            .map_err(|e| format!("GET {url}: {e}"))?;
        resp.body_mut()
            .read_to_string()
            .map_err(|e| format!("GET {url}: {e}"))
    })?
    .map_err(LabError::Command)
}

/// PATCH a JSON body to a URL from inside namespace `ns`; returns the status code and
/// the body (error statuses included).
pub fn http_patch_in(
    ns: &str,
    url: &str,
    body: serde_json::Value,
) -> Result<(u16, String), LabError> {
    let url = url.to_owned();
    in_netns(ns, move || -> Result<(u16, String), String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = agent
            .patch(&url)
            .send_json(&body)
            .map_err(|e| format!("PATCH {url}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("PATCH {url}: {e}"))?;
        Ok((status, text))
    })?
    .map_err(LabError::Command)
}

/// Whether this process can build a lab: root, `ip netns` and veth.
/// Returns the reason when it cannot.
pub fn lab_unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root (network namespaces need CAP_SYS_ADMIN)".into());
    }
    for tool in ["ip", "dhclient", "ping"] {
        if which(tool).is_none() {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    // One name per call: tests of one binary run this check side by side.
    static PROBES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = format!("vbng-probe-{}-{n}", std::process::id());
    if let Err(e) = ip(&["netns", "add", &probe]) {
        return Some(format!("cannot create a network namespace: {e}"));
    }
    let veth_ok = ip(&[
        "-n", &probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1",
    ]);
    let _ = ip(&["netns", "del", &probe]);
    if let Err(e) = veth_ok {
        return Some(format!("cannot create a veth pair: {e}"));
    }
    None
}

/// Finds a program on PATH (plus the sbin directories root usually has).
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|dir| std::path::Path::new(dir).join(program))
        .find(|p| p.is_file())
}
