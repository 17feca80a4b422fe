//! Real `pppd` subscribers for the lab, run inside User-Mode Linux guests.
//!
//! The host kernel of the lab machines has no PPP support, so `pppd` (with
//! its `rp-pppoe.so` plugin) runs in a `linux.uml` guest instead: the guest
//! shares the host's root file system read-only through hostfs, mounts the
//! caller's scratch directory read-write at the same path, loads the PPP
//! modules shipped with the `user-mode-linux` package and puts its `vec0`
//! interface on a veth end through a raw socket. The host and the guest talk
//! through files in the scratch directory:
//!
//! | file | written by | meaning |
//! |---|---|---|
//! | `init.sh` | host | the guest's init (PID 1) |
//! | `console.log` | host (guest console) | kernel and init output |
//! | `pppd.log` | guest | `pppd`'s own log (`debug`) |
//! | `stages` | guest | guest uptime at each boot stage |
//! | `ipup` | guest (`ip-up`) | `<local> <remote> <dns1> <dns2>` once IPCP is up |
//! | `ping` | guest | output of the ping asked for in [`PppdOptions::ping`] |
//! | `ready` | guest | the PPPoE server listens (see [`PppoeServer`]) |
//! | `run.sh` | host | a shell script for the guest to run once the link is up ([`PppClient::run`]) |
//! | `run.out` | guest | its output, then its exit status on the last line |
//! | `stop` | host | asks the guest to end `pppd` and power off |
//! | `pppd.exit` | guest | `pppd`'s exit status |
//!
//! [`PppoeServer`] runs Debian's `pppoe-server` in a second guest the same
//! way: a reference access concentrator to check the client against.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::LabError;
use super::netns::which;

/// Where the `user-mode-linux` package puts the modules of its kernel.
const UML_MODULES: &str = "/usr/lib/uml/modules";

/// Modules the PPPoE client needs, in load order (paths under `kernel/`).
/// The guest kernel's IPv6 (a module in Debian's UML kernel, needing
/// crc-ccitt), loaded when the client negotiates IPv6CP.
const IPV6_MODULE: &str = "net/ipv6/ipv6";

const CLIENT_MODULES: &[&str] = &[
    "lib/crc-ccitt",
    "drivers/net/slip/slhc",
    "drivers/net/ppp/ppp_generic",
    "drivers/net/ppp/pppox",
    "drivers/net/ppp/pppoe",
];

/// `pppoe-server` runs `pppd` on a pseudo-terminal, which needs the async
/// and sync line disciplines as well.
const SERVER_MODULES: &[&str] = &[
    "lib/crc-ccitt",
    "drivers/net/slip/slhc",
    "drivers/net/ppp/ppp_generic",
    "drivers/net/ppp/pppox",
    "drivers/net/ppp/pppoe",
    "drivers/net/ppp/ppp_async",
    "drivers/net/ppp/ppp_synctty",
];

/// How often the host looks at the files the guest writes.
const POLL: Duration = Duration::from_millis(50);

/// Which authentication protocol the client agrees to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PppAuth {
    /// PAP (RFC 1334): `pppd` refuses CHAP, MS-CHAP and EAP.
    Pap,
    /// CHAP with MD5 (RFC 1994): `pppd` refuses PAP, MS-CHAP and EAP.
    Chap,
}

/// What the `pppd` subscriber does.
#[derive(Debug, Clone)]
pub struct PppdOptions {
    /// The user name sent in PAP or CHAP.
    pub user: String,
    /// The secret, written to the guest's `pap-secrets` and `chap-secrets`.
    pub password: String,
    /// The only authentication protocol accepted.
    pub auth: PppAuth,
    /// `pppd`'s `mtu` and `mru` (default 1492, RFC 2516 section 7).
    pub mtu: u16,
    /// Once IPCP is up, ping this address this many times through `ppp0`.
    pub ping: Option<(Ipv4Addr, u32)>,
    /// Negotiate IPv6CP too (`+ipv6`, the guest loads its IPv6 module); once
    /// it is up, record `ppp0`'s IPv6 addresses (SLAAC from the router
    /// advertisements) and run a DHCPv6 client asking for an address and a
    /// delegated prefix (see [`PppClient::wait_ipv6`]).
    pub ipv6: bool,
}

impl PppdOptions {
    /// Options for `user`/`password` with MTU 1492 and no ping.
    pub fn new(user: &str, password: &str, auth: PppAuth) -> Self {
        PppdOptions {
            user: user.to_owned(),
            password: password.to_owned(),
            auth,
            mtu: 1492,
            ping: None,
            ipv6: false,
        }
    }
}

/// What IPv6 over the PPP link gave the client (see [`PppdOptions::ipv6`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PppIpv6Info {
    /// The client's link-local address, as IPv6CP negotiated it.
    pub local_link_local: std::net::Ipv6Addr,
    /// The access concentrator's link-local address.
    pub remote_link_local: std::net::Ipv6Addr,
    /// `ip -6 addr show dev ppp0` a few seconds after IPv6CP came up.
    pub addresses: String,
    /// The DHCPv6 client's log (dhcpcd, debug level): the address (IA_NA)
    /// and delegated prefix (IA_PD) it got, empty if it did not run.
    pub dhcpv6_log: String,
}

/// The addresses IPCP gave the client, as `pppd` handed them to `ip-up`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PppInfo {
    /// The client's address on `ppp0`.
    pub local: Ipv4Addr,
    /// The peer's (the access concentrator's) address.
    pub remote: Ipv4Addr,
    /// DNS servers received with `usepeerdns` (RFC 1877), in order.
    pub dns: Vec<Ipv4Addr>,
}

/// A `pppd` PPPoE client in a User-Mode Linux guest.
///
/// Dropping it kills the guest's whole process group; the files in the
/// scratch directory stay for inspection.
#[derive(Debug)]
pub struct PppClient {
    guest: Guest,
    ping: bool,
}

impl PppClient {
    /// Boots `linux.uml` inside network namespace `ns` with its `vec0` on
    /// `iface` (a veth end in `ns`), using `dir` (an existing directory) for
    /// the init script, `pppd`'s configuration and secrets, the logs and the
    /// status files. Returns once the guest is started; `pppd` sends its
    /// first PADI about two seconds later.
    pub fn start(
        ns: &str,
        iface: &str,
        dir: &Path,
        opts: PppdOptions,
    ) -> Result<PppClient, LabError> {
        let dir = scratch_dir(dir)?;
        check_word("user name", &opts.user)?;
        check_word("password", &opts.password)?;
        if opts.user.is_empty() {
            return Err(LabError::Command("the pppd user name is empty".into()));
        }
        if opts.mtu < 128 {
            return Err(LabError::Command(format!(
                "pppd MTU {} is below 128, which pppd does not accept",
                opts.mtu
            )));
        }
        let d = dir.display().to_string();
        write_file(
            &dir.join("secrets"),
            &secrets(&opts.user, &opts.password),
            0o600,
        )?;
        write_file(&dir.join("ip-up"), &ip_up_script(&d), 0o755)?;
        write_file(
            &dir.join("pppd.opts"),
            &client_pppd_options(&d, &opts),
            0o600,
        )?;
        // pppd runs its scripts with a bare environment: name the client by
        // its path (the guest shares the host's root file system).
        let dhcpcd = which("dhcpcd").map_or_else(
            || "/usr/sbin/dhcpcd".to_string(),
            |p| p.display().to_string(),
        );
        write_file(&dir.join("ipv6-up"), &ipv6_up_script(&d, &dhcpcd), 0o755)?;
        write_file(&dir.join("dhcpcd.conf"), DHCPCD_CONF, 0o644)?;
        let init = client_init(opts.ping);
        let mut modules = CLIENT_MODULES.to_vec();
        if opts.ipv6 {
            // After crc-ccitt, whose symbol it needs.
            modules.insert(1, IPV6_MODULE);
        }
        let guest = Guest::boot("pppd client", ns, iface, &dir, &modules, &init)?;
        Ok(PppClient {
            guest,
            ping: opts.ping.is_some(),
        })
    }

    /// Waits until IPCP is up (the guest's `ip-up` ran) and returns the
    /// negotiated addresses. Fails early, quoting the logs, when `pppd` or
    /// the guest ends first.
    pub fn wait_up(&mut self, timeout: Duration) -> Result<PppInfo, LabError> {
        let text = self
            .guest
            .wait_for_file("ipup", &["pppd.exit"], timeout, "PPP link up")?;
        parse_ipup(&text).ok_or_else(|| {
            LabError::Command(format!(
                "ip-up wrote {text:?}, expected \"<local> <remote> [dns1] [dns2]\""
            ))
        })
    }

    /// Waits until IPv6CP is up and the guest has recorded what IPv6 gave it
    /// (asked for with [`PppdOptions::ipv6`]): the link-local addresses, the
    /// addresses on `ppp0` and the DHCPv6 lease.
    pub fn wait_ipv6(&mut self, timeout: Duration) -> Result<PppIpv6Info, LabError> {
        let text =
            self.guest
                .wait_for_file("ipv6done", &["pppd.exit"], timeout, "IPv6 over ppp0")?;
        let mut words = text.split_whitespace();
        let mut link_local = || -> Result<std::net::Ipv6Addr, LabError> {
            words.next().and_then(|w| w.parse().ok()).ok_or_else(|| {
                LabError::Command(format!(
                    "ipv6-up wrote {text:?}, expected \"<local LL> <remote LL>\""
                ))
            })
        };
        let (local_link_local, remote_link_local) = (link_local()?, link_local()?);
        let read =
            |name: &str| std::fs::read_to_string(self.guest.dir.join(name)).unwrap_or_default();
        Ok(PppIpv6Info {
            local_link_local,
            remote_link_local,
            addresses: read("ipv6addr"),
            dhcpv6_log: read("dhcpcd6.log"),
        })
    }

    /// Waits for the ping asked for in [`PppdOptions::ping`] to finish and
    /// returns its summary line ("N packets transmitted, M received, ...").
    pub fn ping_result(&mut self, timeout: Duration) -> Result<String, LabError> {
        if !self.ping {
            return Err(LabError::Command(
                "no ping was asked for in PppdOptions::ping".into(),
            ));
        }
        let text = self
            .guest
            .wait_for_file("ping", &["pppd.exit"], timeout, "ping over ppp0")?;
        text.lines()
            .find(|l| l.contains("packets transmitted"))
            .map(str::to_owned)
            .ok_or_else(|| LabError::Command(format!("ping printed no summary line:\n{text}")))
    }

    /// Runs the shell script `script` inside the guest once the link is up,
    /// and returns its exit status and output (stdout and stderr). The guest
    /// shares the host's programs (hostfs), so `ping`, `iperf3` and the like
    /// run there as they would on the host; its root is read-only, so
    /// `TMPDIR` is the scratch directory. One script at a time.
    pub fn run(&mut self, script: &str, timeout: Duration) -> Result<(i32, String), LabError> {
        let out = self.guest.dir.join("run.out");
        let _ = std::fs::remove_file(&out);
        write_file(&self.guest.dir.join("run.sh.tmp"), script, 0o644)?;
        std::fs::rename(
            self.guest.dir.join("run.sh.tmp"),
            self.guest.dir.join("run.sh"),
        )
        .map_err(|e| LabError::Command(format!("hand run.sh to the guest: {e}")))?;
        let text = self.guest.wait_for_file(
            "run.out",
            &["pppd.exit"],
            timeout,
            "a script in the guest",
        )?;
        let _ = std::fs::remove_file(&out);
        let (output, status) = text
            .trim_end()
            .rsplit_once('\n')
            .unwrap_or(("", text.trim_end()));
        let code = status
            .strip_prefix("exit ")
            .and_then(|c| c.trim().parse().ok())
            .ok_or_else(|| {
                LabError::Command(format!("the guest's script left no status: {text}"))
            })?;
        Ok((code, output.to_string()))
    }

    /// Ends the session the way a subscriber does: `pppd` gets SIGTERM and
    /// sends LCP Terminate-Request (pppd 2.4.9 on Debian 12 sends no PADT
    /// after the Terminate-Ack), then the guest powers off.
    /// Kills the guest when it is not gone within `timeout`.
    pub fn stop(&mut self, timeout: Duration) -> Result<(), LabError> {
        self.guest.shutdown(timeout)
    }

    /// The guest console followed by `pppd`'s log.
    pub fn log(&self) -> String {
        self.guest.log()
    }

    /// The guest's clock at each stage of its boot (`init`, `modules`,
    /// `pppd`, `ip-up`, `halt`), as far as it got.
    pub fn stages(&self) -> Vec<(String, Duration)> {
        self.guest.stages()
    }

    /// The pid of the `linux.uml` process (the guest's process group).
    pub fn pid(&self) -> u32 {
        self.guest.child.id()
    }
}

/// How the reference PPPoE server in [`PppoeServer`] is set up.
#[derive(Debug, Clone)]
pub struct PppoeServerOptions {
    /// The AC-Name it announces (`pppoe-server -C`).
    pub ac_name: String,
    /// The one subscriber it knows.
    pub user: String,
    /// That subscriber's secret.
    pub password: String,
    /// The authentication protocol it requires.
    pub auth: PppAuth,
    /// Its own address on every session (`-L`).
    pub local: Ipv4Addr,
    /// The first address it hands out (`-R`).
    pub remote_start: Ipv4Addr,
    /// The two DNS servers it offers (`ms-dns`).
    pub dns: [Ipv4Addr; 2],
}

/// Debian's `pppoe-server` (user-space PPPoE, `pppd` per session) in a
/// User-Mode Linux guest: a reference access concentrator for checking the
/// `pppd` client without vbng. Same scratch-directory protocol and process
/// handling as [`PppClient`].
#[derive(Debug)]
pub struct PppoeServer {
    guest: Guest,
}

impl PppoeServer {
    /// Boots the server guest in `ns` on `iface`, using `dir` as scratch.
    pub fn start(
        ns: &str,
        iface: &str,
        dir: &Path,
        opts: PppoeServerOptions,
    ) -> Result<PppoeServer, LabError> {
        let dir = scratch_dir(dir)?;
        check_word("user name", &opts.user)?;
        check_word("password", &opts.password)?;
        check_word("AC name", &opts.ac_name)?;
        if opts.ac_name.contains(' ') {
            return Err(LabError::Command(format!(
                "AC name {:?} contains a space",
                opts.ac_name
            )));
        }
        let d = dir.display().to_string();
        write_file(
            &dir.join("secrets"),
            &secrets(&opts.user, &opts.password),
            0o600,
        )?;
        let require = match opts.auth {
            PppAuth::Pap => "require-pap",
            PppAuth::Chap => "require-chap",
        };
        let pppd_opts = format!(
            "auth\n{require}\nms-dns {}\nms-dns {}\nnoipv6\nlcp-echo-interval 5\n\
             lcp-echo-failure 3\ndebug\nlogfile {d}/pppd.log\n",
            opts.dns[0], opts.dns[1]
        );
        write_file(&dir.join("pppd.opts"), &pppd_opts, 0o600)?;
        let init = format!(
            "{etc}\
             stage pppoe-server\n\
             pppoe-server -F -I vec0 -C {ac} -L {local} -R {remote} -N 64 -O /etc/ppp/pppd.opts &\n\
             sleep 0.3\n\
             touch $D/ready\n\
             while [ ! -e $D/stop ]; do sleep 0.2; done\n\
             kill -TERM -1\n\
             sleep 1\n",
            etc = etc_ppp(),
            ac = opts.ac_name,
            local = opts.local,
            remote = opts.remote_start,
        );
        let guest = Guest::boot("pppoe-server", ns, iface, &dir, SERVER_MODULES, &init)?;
        Ok(PppoeServer { guest })
    }

    /// Waits until `pppoe-server` has been started in the guest.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), LabError> {
        self.guest
            .wait_for_file("ready", &[], timeout, "pppoe-server start")
            .map(drop)
    }

    /// Stops the sessions and powers the guest off.
    pub fn stop(&mut self, timeout: Duration) -> Result<(), LabError> {
        self.guest.shutdown(timeout)
    }

    /// The guest console followed by the log of the sessions' `pppd`s.
    pub fn log(&self) -> String {
        self.guest.log()
    }
}

/// Why `pppd` cannot run in a User-Mode Linux guest on this machine, or
/// `None` when it can. Tests print this as `SKIPPED:`.
pub fn uml_unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root (raw sockets and network namespaces need it)".into());
    }
    for tool in ["ip", "perl"] {
        if which(tool).is_none() {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    let Some(uml) = which("linux.uml") else {
        return Some("no `linux.uml` (Debian package user-mode-linux)".into());
    };
    let version = match Command::new(&uml).arg("--version").output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Err(e) => return Some(format!("{} --version: {e}", uml.display())),
    };
    let modules = Path::new(UML_MODULES).join(&version).join("kernel");
    if let Some(missing) = SERVER_MODULES
        .iter()
        .map(|m| modules.join(format!("{m}.ko")))
        .find(|p| !p.is_file())
    {
        return Some(format!(
            "the UML kernel {version} has no module {} (package user-mode-linux)",
            missing.display()
        ));
    }
    if which("pppd").is_none() {
        return Some("`pppd` is not installed (package ppp)".into());
    }
    let plugin = std::fs::read_dir("/usr/lib/pppd")
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.path().join("rp-pppoe.so").is_file());
    if !plugin {
        return Some("no /usr/lib/pppd/<version>/rp-pppoe.so (package ppp)".into());
    }
    None
}

/// Why [`PppoeServer`] cannot run here, or `None` when it can.
pub fn pppoe_server_unavailable() -> Option<String> {
    uml_unavailable().or_else(|| {
        which("pppoe-server")
            .is_none()
            .then(|| "`pppoe-server` is not installed (package pppoe)".into())
    })
}

/// One `linux.uml` process and the scratch directory it shares with us.
#[derive(Debug)]
struct Guest {
    what: &'static str,
    child: Child,
    dir: PathBuf,
    umid: String,
    exited: bool,
}

impl Guest {
    /// Writes `init.sh` (the common preamble, then `body`) and boots it.
    fn boot(
        what: &'static str,
        ns: &str,
        iface: &str,
        dir: &Path,
        modules: &[&str],
        body: &str,
    ) -> Result<Guest, LabError> {
        let uml = which("linux.uml").ok_or_else(|| {
            LabError::Command("no `linux.uml` (install Debian package user-mode-linux)".into())
        })?;
        for stale in [
            "ipup",
            "ipup.tmp",
            "ipv6done",
            "ipv6done.tmp",
            "ipv6addr",
            "dhcpcd6.log",
            "ping",
            "ping.tmp",
            "ready",
            "stop",
            "pppd.exit",
            "stages",
            "pppd.log",
        ] {
            let _ = std::fs::remove_file(dir.join(stale));
        }
        let d = dir.display().to_string();
        let init = format!("{}{body}{}", preamble(&d, modules), halt());
        let init_path = dir.join("init.sh");
        write_file(&init_path, &init, 0o755)?;
        let console_path = dir.join("console.log");
        let console = std::fs::File::create(&console_path)
            .map_err(|e| LabError::Command(format!("create {}: {e}", console_path.display())))?;
        let console_err = console
            .try_clone()
            .map_err(|e| LabError::Command(format!("dup console fd: {e}")))?;
        let umid = unique_umid();
        let args = boot_args(&init_path, iface, &umid, dir);
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(&uml)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(console)
            .stderr(console_err)
            // Its own group, so that Drop reaches the host processes UML
            // forks for the guest's address spaces too.
            .process_group(0)
            .spawn()
            .map_err(|e| LabError::Command(format!("start {}: {e}", uml.display())))?;
        Ok(Guest {
            what,
            child,
            dir: dir.to_owned(),
            umid,
            exited: false,
        })
    }

    /// Whether `linux.uml` has exited (reaping it if so).
    fn has_exited(&mut self) -> bool {
        if !self.exited {
            self.exited = !matches!(self.child.try_wait(), Ok(None));
        }
        self.exited
    }

    /// Polls until `name` appears in the scratch directory and returns its
    /// contents. Fails when one of `give_up` appears first, when the guest
    /// exits, or after `timeout`.
    fn wait_for_file(
        &mut self,
        name: &str,
        give_up: &[&str],
        timeout: Duration,
        step: &str,
    ) -> Result<String, LabError> {
        let deadline = Instant::now() + timeout;
        let path = self.dir.join(name);
        loop {
            if let Ok(text) = std::fs::read_to_string(&path) {
                return Ok(text);
            }
            if let Some(f) = give_up.iter().find(|f| self.dir.join(f).exists()) {
                let status = std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
                return Err(self.failure(step, &format!("{f} appeared ({})", status.trim())));
            }
            if self.has_exited() {
                return Err(self.failure(step, "the guest exited"));
            }
            if Instant::now() >= deadline {
                return Err(self.failure(step, &format!("not done within {timeout:?}")));
            }
            std::thread::sleep(POLL);
        }
    }

    fn failure(&self, step: &str, why: &str) -> LabError {
        LabError::Step {
            step: format!("{} in User-Mode Linux: {step}", self.what),
            detail: format!("{why}; last log lines:\n{}", tail(&self.log(), 30)),
        }
    }

    /// Asks the guest to stop (the `stop` file) and waits for it to power
    /// off; kills it after `timeout`.
    fn shutdown(&mut self, timeout: Duration) -> Result<(), LabError> {
        if self.has_exited() {
            return Ok(());
        }
        write_file(&self.dir.join("stop"), "", 0o644)?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.has_exited() {
                return Ok(());
            }
            std::thread::sleep(POLL);
        }
        let err = self.failure("power off", &format!("still running after {timeout:?}"));
        self.kill();
        Err(err)
    }

    /// SIGKILL to the whole process group, then reap.
    fn kill(&mut self) {
        if !self.exited
            && let Ok(pgid) = i32::try_from(self.child.id())
        {
            // SAFETY: killpg(2) on the group led by a child we spawned with
            // process_group(0) and have not reaped, so the id is still ours.
            unsafe { libc::killpg(pgid, libc::SIGKILL) };
            let _ = self.child.wait();
            self.exited = true;
        }
        // UML leaves its pid file and management socket behind when killed.
        let _ = std::fs::remove_dir_all(self.dir.join(&self.umid));
    }

    fn log(&self) -> String {
        let console = std::fs::read_to_string(self.dir.join("console.log")).unwrap_or_default();
        let pppd = std::fs::read_to_string(self.dir.join("pppd.log")).unwrap_or_default();
        format!("{console}\n--- pppd.log ---\n{pppd}")
    }

    fn stages(&self) -> Vec<(String, Duration)> {
        let text = std::fs::read_to_string(self.dir.join("stages")).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let (name, secs) = l.split_once(' ')?;
                let secs: f64 = secs.split_whitespace().next()?.parse().ok()?;
                Some((name.to_owned(), Duration::from_secs_f64(secs)))
            })
            .collect()
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The kernel command line: hostfs root (read-only), our init, `vec0` on the
/// veth through a raw socket, our own umid under the scratch directory (so
/// nothing lands in `~/.uml`), console 0 to stdout and every other console
/// and serial line disabled.
fn boot_args(init: &Path, iface: &str, umid: &str, dir: &Path) -> Vec<String> {
    vec![
        "mem=256M".into(),
        "root=/dev/root".into(),
        "rootfstype=hostfs".into(),
        "rootflags=/".into(),
        "ro".into(),
        format!("init={}", init.display()),
        format!("vec0:transport=raw,ifname={iface},depth=256"),
        format!("umid={umid}"),
        format!("uml_dir={}", dir.display()),
        "con=null".into(),
        "con0=null,fd:1".into(),
        "ssl=null".into(),
    ]
}

/// The start of every init script: file systems, the scratch directory,
/// modules, `/dev/ppp`, the interfaces.
fn preamble(d: &str, modules: &[&str]) -> String {
    let mut s = format!(
        "#!/bin/sh\n\
         D={d}\n\
         export PATH=/usr/sbin:/usr/bin:/sbin:/bin\n\
         stage() {{ echo \"$1 $(cat /proc/uptime)\" >> $D/stages; }}\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sys /sys\n\
         mountpoint -q /dev || mount -t devtmpfs dev /dev\n\
         mkdir -p /dev/pts && mount -t devpts devpts /dev/pts\n\
         for m in /run /var/log /var/lib /etc/ppp; do mount -t tmpfs tmpfs $m; done\n\
         mkdir -p /run/lock\n\
         mkdir -p $D && mount -t hostfs none $D -o $D\n\
         stage init\n\
         M=/usr/lib/uml/modules/$(uname -r)/kernel\n\
         for k in"
    );
    for m in modules {
        let _ = write!(s, " {m}");
    }
    // No kmod on the lab machines: load through finit_module(2) (313 on
    // x86_64, the only architecture UML runs on) from perl, which Debian
    // always has.
    s.push_str(
        "; do\n  \
         perl -e 'open(F, \"<\", $ARGV[0]) or die \"open $ARGV[0]: $!\\n\"; my $p = \"\"; \
         syscall(313, fileno(F), $p, 0) == 0 or die \"finit_module $ARGV[0]: $!\\n\"' $M/$k.ko\n\
         done\n\
         [ -e /dev/ppp ] || mknod /dev/ppp c 108 0\n\
         stage modules\n\
         ip link set lo up\n\
         ip link set vec0 up\n",
    );
    s
}

/// `/etc/ppp` (a tmpfs in the guest) from the files the host wrote.
fn etc_ppp() -> &'static str {
    "cp $D/secrets /etc/ppp/pap-secrets\n\
     cp $D/secrets /etc/ppp/chap-secrets\n\
     chmod 600 /etc/ppp/pap-secrets /etc/ppp/chap-secrets\n\
     cp $D/pppd.opts /etc/ppp/pppd.opts\n\
     : > /etc/ppp/options\n"
}

/// The end of every init script: power off (PID 1 must not exit).
fn halt() -> &'static str {
    "stage halt\n\
     echo o > /proc/sysrq-trigger\n\
     sleep 30\n"
}

fn client_init(ping: Option<(Ipv4Addr, u32)>) -> String {
    let ping = match ping {
        Some((addr, count)) => format!(
            "if [ -e $D/ipup ]; then\n  \
             ping -n -c {count} -i 0.2 -W 2 {addr} > $D/ping.tmp 2>&1\n  \
             mv $D/ping.tmp $D/ping\n\
             fi\n"
        ),
        None => String::new(),
    };
    format!(
        "{etc}\
         cp $D/ip-up /etc/ppp/ip-up\n\
         cp $D/ipv6-up /etc/ppp/ipv6-up\n\
         chmod 755 /etc/ppp/ip-up /etc/ppp/ipv6-up\n\
         stage pppd\n\
         ( sh -c 'echo $$ > /run/pppd.pid; exec pppd file /etc/ppp/pppd.opts'; \
         echo $? > $D/pppd.exit.tmp; mv $D/pppd.exit.tmp $D/pppd.exit ) &\n\
         while [ ! -e $D/pppd.exit ] && [ ! -e $D/ipup ] && [ ! -e $D/stop ]; do sleep 0.1; done\n\
         {ping}\
         while [ ! -e $D/pppd.exit ] && [ ! -e $D/stop ]; do\n  \
         if [ -e $D/run.sh ]; then\n    \
         TMPDIR=$D sh $D/run.sh > $D/run.out.tmp 2>&1; echo \"exit $?\" >> $D/run.out.tmp\n    \
         rm -f $D/run.sh; mv $D/run.out.tmp $D/run.out\n  \
         fi\n  \
         sleep 0.2\n\
         done\n\
         [ -e $D/pppd.exit ] || kill -TERM $(cat /run/pppd.pid)\n\
         i=0\n\
         while [ ! -e $D/pppd.exit ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done\n",
        etc = etc_ppp(),
    )
}

/// `pppd`'s options for the client (see pppd(8) and the rp-pppoe plugin).
fn client_pppd_options(d: &str, opts: &PppdOptions) -> String {
    let refuse = match opts.auth {
        PppAuth::Pap => "refuse-chap\nrefuse-mschap\nrefuse-mschap-v2\nrefuse-eap\n",
        PppAuth::Chap => "refuse-pap\nrefuse-mschap\nrefuse-mschap-v2\nrefuse-eap\n",
    };
    // IPv6CP only when asked for: the guest loads its IPv6 module then.
    // maxfail 1: one attempt, then the guest halts.
    let ipv6 = if opts.ipv6 { "+ipv6" } else { "noipv6" };
    format!(
        "plugin rp-pppoe.so\n\
         nic-vec0\n\
         user \"{user}\"\n\
         {refuse}\
         noauth\n\
         usepeerdns\n\
         defaultroute\n\
         noipdefault\n\
         {ipv6}\n\
         mtu {mtu}\n\
         mru {mtu}\n\
         lcp-echo-interval 5\n\
         lcp-echo-failure 3\n\
         maxfail 1\n\
         nodetach\n\
         debug\n\
         logfile {d}/pppd.log\n",
        user = opts.user,
        mtu = opts.mtu,
    )
}

/// dhcpcd as a DHCPv6-only client asking for an address (IA_NA) and a /56
/// (IA_PD) it keeps to itself (`-`: no downstream interface to number).
/// ISC dhclient cannot: it refuses PPP interfaces ("Unsupported device
/// type 512").
const DHCPCD_CONF: &str = "ipv6only\nnoipv6rs\nia_na 1\nia_pd 2 -\n";

/// `ipv6-up` gets interface, tty, speed, local and remote link-local
/// addresses, ipparam (pppd(8), "SCRIPTS"). In the background it waits for
/// the kernel to take an address from the router advertisements, records
/// `ppp0`'s addresses, runs dhcpcd once for DHCPv6 (its log in the scratch
/// directory), then writes `ipv6done` with the two link-local addresses.
fn ipv6_up_script(d: &str, dhcpcd: &str) -> String {
    format!(
        "#!/bin/sh\n\
         echo \"ipv6-up $(cat /proc/uptime)\" >> {d}/stages\n\
         (\n\
         sleep 4\n\
         ip -6 addr show dev \"$1\" > {d}/ipv6addr 2>&1\n\
         timeout 20 {dhcpcd} -f {d}/dhcpcd.conf -6 -1 -B -d -c /bin/true \"$1\" \
         > {d}/dhcpcd6.log 2>&1\n\
         echo \"$4 $5\" > {d}/ipv6done.tmp\n\
         mv {d}/ipv6done.tmp {d}/ipv6done\n\
         ) > /dev/null 2>&1 &\n"
    )
}

/// `ip-up` gets interface, tty, speed, local, remote, ipparam as arguments
/// and DNS1/DNS2 in the environment (pppd(8), "SCRIPTS").
fn ip_up_script(d: &str) -> String {
    format!(
        "#!/bin/sh\n\
         echo \"ip-up $(cat /proc/uptime)\" >> {d}/stages\n\
         echo \"$4 $5 $DNS1 $DNS2\" > {d}/ipup.tmp\n\
         mv {d}/ipup.tmp {d}/ipup\n"
    )
}

fn secrets(user: &str, password: &str) -> String {
    format!("\"{user}\" * \"{password}\" *\n")
}

fn parse_ipup(text: &str) -> Option<PppInfo> {
    let mut words = text.split_whitespace();
    let local = words.next()?.parse().ok()?;
    let remote = words.next()?.parse().ok()?;
    let dns = words.map(str::parse).collect::<Result<Vec<_>, _>>().ok()?;
    Some(PppInfo { local, remote, dns })
}

/// The scratch directory as an absolute path the init script can quote
/// without escaping.
fn scratch_dir(dir: &Path) -> Result<PathBuf, LabError> {
    let abs = dir
        .canonicalize()
        .map_err(|e| LabError::Command(format!("scratch directory {}: {e}", dir.display())))?;
    let text = abs.display().to_string();
    if !text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
    {
        return Err(LabError::Command(format!(
            "scratch directory {text:?} must contain only letters, digits and / . _ -"
        )));
    }
    Ok(abs)
}

/// Secrets and names go into pppd files between double quotes.
fn check_word(what: &str, value: &str) -> Result<(), LabError> {
    if value
        .chars()
        .any(|c| c == '"' || c == '\\' || c.is_control() || !c.is_ascii())
    {
        return Err(LabError::Command(format!(
            "the {what} {value:?} must be printable ASCII without quotes or backslashes"
        )));
    }
    Ok(())
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), LabError> {
    std::fs::write(path, text)
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)))
        .map_err(|e| LabError::Command(format!("write {}: {e}", path.display())))
}

fn unique_umid() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "vbng-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipup_line_parses_with_and_without_dns() {
        assert_eq!(
            parse_ipup("10.0.0.100 10.0.0.1 10.0.0.53 10.0.0.54\n"),
            Some(PppInfo {
                local: Ipv4Addr::new(10, 0, 0, 100),
                remote: Ipv4Addr::new(10, 0, 0, 1),
                dns: vec![Ipv4Addr::new(10, 0, 0, 53), Ipv4Addr::new(10, 0, 0, 54)],
            })
        );
        assert_eq!(
            parse_ipup("10.0.0.100 10.0.0.1  \n").map(|i| i.dns),
            Some(vec![])
        );
        assert_eq!(parse_ipup("10.0.0.100\n"), None);
        assert_eq!(parse_ipup("10.0.0.100 10.0.0.1 nonsense\n"), None);
    }

    #[test]
    fn client_options_refuse_the_other_protocol() {
        let pap = client_pppd_options("/d", &PppdOptions::new("u", "p", PppAuth::Pap));
        assert!(pap.contains("refuse-chap\n") && !pap.contains("refuse-pap\n"));
        let chap = client_pppd_options("/d", &PppdOptions::new("u", "p", PppAuth::Chap));
        assert!(chap.contains("refuse-pap\n") && !chap.contains("refuse-chap\n"));
        for line in [
            "plugin rp-pppoe.so",
            "nic-vec0",
            "user \"u\"",
            "mtu 1492",
            "mru 1492",
        ] {
            assert!(chap.lines().any(|l| l == line), "missing {line}");
        }
    }

    #[test]
    fn unsafe_names_are_refused() {
        assert!(check_word("user name", "alice@isp.example").is_ok());
        assert!(check_word("user name", "a\"b").is_err());
        assert!(check_word("password", "a\nb").is_err());
        assert!(scratch_dir(Path::new("/nonexistent/vbng-uml")).is_err());
    }

    #[test]
    fn boot_line_names_its_own_umid_dir_and_veth() {
        let args = boot_args(
            Path::new("/s/init.sh"),
            "veth9",
            "vbng-1-0",
            Path::new("/s"),
        );
        for a in [
            "init=/s/init.sh",
            "vec0:transport=raw,ifname=veth9,depth=256",
            "umid=vbng-1-0",
            "uml_dir=/s",
            "rootfstype=hostfs",
            "ro",
        ] {
            assert!(args.iter().any(|x| x == a), "missing {a}");
        }
    }
}
