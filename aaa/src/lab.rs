//! A FreeRADIUS 3.2 harness for tests and benchmarks.
//!
//! [`FreeRadius`] runs `/usr/sbin/freeradius` in the foreground (`-f`,
//! threaded; `-X` when [`FreeRadiusOptions::debug`] is set) from a
//! configuration directory of its own: a copy of the stock
//! `/etc/freeradius/3.0` (for its module configs and certificates) with the
//! project's files from `aaa/freeradius/` laid over it:
//!
//! | file in `aaa/freeradius/` | in the copy      | what it does                                     |
//! |---------------------------|------------------|--------------------------------------------------|
//! | `radiusd.conf`            | `radiusd.conf`   | paths inside the copy, only pap/chap/always/files/detail loaded, `reject_delay = 0`, Status-Server on |
//! | `sites/vbng`              | `sites/vbng`     | the one virtual server: auth and acct listeners on 127.0.0.1, `files`+`pap`+`chap`, `detail`, every reply signed with Message-Authenticator |
//! | `clients.conf`            | `clients.conf`   | 127.0.0.1 with the harness secret, plus extra clients |
//! | `users`                   | `vbng-users`     | the subscribers (see the file); replaceable per run |
//! | `dictionary.vbng`         | `dictionary.vbng`| the vbng vendor attributes, `$INCLUDE`d from the copy's `dictionary` |
//!
//! The files are compiled into the library, so the harness works from any
//! crate's tests and from `vbng-perf` without the source tree.
//!
//! ```no_run
//! # async fn demo() -> Result<(), vbng_aaa::lab::LabError> {
//! use vbng_aaa::lab::{FreeRadius, FreeRadiusOptions};
//! let mut server = FreeRadius::start(FreeRadiusOptions::default())?;
//! server.wait_ready().await?;
//! let auth = server.auth_server(); // a client::ServerConfig
//! # let _ = auth; Ok(()) }
//! ```
//!
//! Dropping a [`FreeRadius`] kills the server and removes its directory,
//! unless the environment variable `VBNG_KEEP_RADDB` is set (the directory
//! is then kept for inspection and its path logged).

use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::client::{Client, ClientConfig, Request, ServerConfig};
use crate::dictionary::VBNG_DICTIONARY;
use crate::radius::Code;

/// The FreeRADIUS binary (Debian package `freeradius`).
pub const FREERADIUS: &str = "/usr/sbin/freeradius";
/// The stock configuration the harness copies.
pub const STOCK_RADDB: &str = "/etc/freeradius/3.0";
/// Shared secret of the 127.0.0.1 client unless the options say otherwise.
pub const DEFAULT_SECRET: &str = "vbng-test-secret";
/// The project's users file (`aaa/freeradius/users`).
pub const USERS: &str = include_str!("../freeradius/users");

const RADIUSD_CONF: &str = include_str!("../freeradius/radiusd.conf");
const SITE: &str = include_str!("../freeradius/sites/vbng");
const CLIENTS_CONF: &str = include_str!("../freeradius/clients.conf");

/// How long [`FreeRadius::wait_ready`] waits for both listeners.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A further RADIUS client the server accepts requests from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabClient {
    /// Source address of its requests (a loopback address such as
    /// 127.0.0.2).
    pub addr: IpAddr,
    /// Its shared secret.
    pub secret: String,
}

/// How to set up a [`FreeRadius`].
#[derive(Debug, Clone)]
pub struct FreeRadiusOptions {
    /// The users file. Default: the project's, [`USERS`].
    pub users: String,
    /// Secret of the 127.0.0.1 client. Default [`DEFAULT_SECRET`].
    pub secret: String,
    /// Further clients. Default none.
    pub clients: Vec<LabClient>,
    /// Authentication port on 127.0.0.1. Default: a free port.
    pub auth_port: Option<u16>,
    /// Accounting port on 127.0.0.1. Default: a free port.
    pub acct_port: Option<u16>,
    /// Run with `-X` (full debug output in [`FreeRadius::log`],
    /// single-threaded, about a third of the throughput) instead of `-f`.
    /// Default false.
    pub debug: bool,
    /// The server binary. Default [`FREERADIUS`].
    pub binary: PathBuf,
}

impl Default for FreeRadiusOptions {
    fn default() -> Self {
        FreeRadiusOptions {
            users: USERS.to_string(),
            secret: DEFAULT_SECRET.to_string(),
            clients: Vec::new(),
            auth_port: None,
            acct_port: None,
            debug: false,
            binary: PathBuf::from(FREERADIUS),
        }
    }
}

/// Harness errors.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The FreeRADIUS binary or stock configuration is missing.
    #[error("{} not found: install the Debian package freeradius", .0.display())]
    NotInstalled(PathBuf),
    /// Writing the configuration or starting the process failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A secret that cannot be written into clients.conf.
    #[error("secret {0:?}: expected printable ASCII without '\"' or '\\'")]
    BadSecret(String),
    /// The server is not running (never started, or stopped).
    #[error("freeradius is not running: call restart() first")]
    NotRunning,
    /// The server exited before answering.
    #[error("freeradius exited with {status}; its output:\n{log}")]
    Exited {
        /// Exit status.
        status: ExitStatus,
        /// Its output so far.
        log: String,
    },
    /// The server did not answer Status-Server in time.
    #[error("freeradius did not answer Status-Server within {timeout:?}; its output:\n{log}")]
    NotReady {
        /// How long was waited.
        timeout: Duration,
        /// Its output so far.
        log: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LabError {
    let what = what.into();
    move |source| LabError::Io { what, source }
}

/// One record of a FreeRADIUS detail file: the attributes of an
/// Accounting-Request as the server logged them, plus those it adds
/// (`Timestamp`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetailRecord {
    /// The NAS directory the record came from (the request's source
    /// address, such as `127.0.0.1`); empty from [`parse_detail`].
    pub nas: String,
    /// The header line (the time the server wrote the record).
    pub header: String,
    /// `(name, value)` in file order. String values are unquoted and
    /// unescaped (`Acct-Session-Id = "s1"` gives `s1`); others are as
    /// written (`Acct-Status-Type = Start`, `Acct-Input-Octets = 42`).
    pub attributes: Vec<(String, String)>,
}

impl DetailRecord {
    /// The first value of attribute `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the text of a detail file into records, in file order.
pub fn parse_detail(text: &str) -> Vec<DetailRecord> {
    let mut records = Vec::new();
    let mut current: Option<DetailRecord> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            records.extend(current.take());
        } else if let Some(attr) = line.strip_prefix('\t') {
            let record = current.get_or_insert_with(DetailRecord::default);
            if let Some((name, value)) = attr.split_once(" = ") {
                record
                    .attributes
                    .push((name.trim().to_string(), unquote(value.trim())));
            }
        } else {
            records.extend(current.take());
            current = Some(DetailRecord {
                header: line.to_string(),
                ..DetailRecord::default()
            });
        }
    }
    records.extend(current);
    records
}

/// `"a\"b"` -> `a"b`; anything not quoted is returned as is.
fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return value.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A FreeRADIUS server with its own configuration directory and loopback
/// ports. See the [module docs](self).
#[derive(Debug)]
pub struct FreeRadius {
    child: Option<Child>,
    dir: PathBuf,
    auth: SocketAddr,
    acct: SocketAddr,
    secret: Vec<u8>,
    debug: bool,
    binary: PathBuf,
}

impl FreeRadius {
    /// Whether the FreeRADIUS binary and stock configuration are installed
    /// (tests skip themselves when not).
    pub fn available() -> bool {
        Path::new(FREERADIUS).exists() && Path::new(STOCK_RADDB).is_dir()
    }

    /// Writes the configuration and starts the server; it answers once
    /// [`FreeRadius::wait_ready`] returns.
    pub fn start(options: FreeRadiusOptions) -> Result<FreeRadius, LabError> {
        let mut server = FreeRadius::prepare(options)?;
        server.restart()?;
        Ok(server)
    }

    /// Writes the configuration and picks the ports without starting the
    /// server (a server that is down from the start); [`FreeRadius::restart`]
    /// starts it.
    pub fn prepare(options: FreeRadiusOptions) -> Result<FreeRadius, LabError> {
        if !options.binary.exists() {
            return Err(LabError::NotInstalled(options.binary));
        }
        if !Path::new(STOCK_RADDB).is_dir() {
            return Err(LabError::NotInstalled(STOCK_RADDB.into()));
        }
        check_secret(&options.secret)?;
        for c in &options.clients {
            check_secret(&c.secret)?;
        }
        let (auth_port, acct_port) = match (options.auth_port, options.acct_port) {
            (Some(a), Some(b)) => (a, b),
            (a, b) => {
                let (x, y) = free_ports()?;
                (a.unwrap_or(x), b.unwrap_or(y))
            }
        };
        let dir = unique_dir();
        let server = FreeRadius {
            child: None,
            dir,
            auth: (Ipv4Addr::LOCALHOST, auth_port).into(),
            acct: (Ipv4Addr::LOCALHOST, acct_port).into(),
            secret: options.secret.clone().into_bytes(),
            debug: options.debug,
            binary: options.binary.clone(),
        };
        // On error the guard removes what was copied.
        server.write_config(&options)?;
        Ok(server)
    }

    fn write_config(&self, options: &FreeRadiusOptions) -> Result<(), LabError> {
        let dir = &self.dir;
        let status = Command::new("cp")
            .arg("-a")
            .arg(STOCK_RADDB)
            .arg(dir)
            .status()
            .map_err(io("running cp"))?;
        if !status.success() {
            return Err(LabError::Io {
                what: format!("copying {STOCK_RADDB} to {}", dir.display()),
                source: std::io::Error::other(status.to_string()),
            });
        }
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            // Some stock files are symlinks into /etc: replace, not follow.
            let _ = fs::remove_file(&path);
            fs::write(&path, text).map_err(io(format!("writing {}", path.display())))
        };
        for sub in ["sites", "run", "log/radacct"] {
            let path = dir.join(sub);
            fs::create_dir_all(&path).map_err(io(format!("creating {}", path.display())))?;
        }
        let raddb = dir.to_string_lossy();
        write("radiusd.conf", &RADIUSD_CONF.replace("@RADDB@", &raddb))?;
        write(
            "sites/vbng",
            &SITE
                .replace("@AUTH_PORT@", &self.auth.port().to_string())
                .replace("@ACCT_PORT@", &self.acct.port().to_string()),
        )?;
        let mut extra = String::new();
        for (i, c) in options.clients.iter().enumerate() {
            let _ = write!(
                extra,
                "\nclient vbng-extra-{i} {{\n\tipaddr = {}\n\tsecret = \"{}\"\n\trequire_message_authenticator = yes\n\tnas_type = other\n}}\n",
                c.addr, c.secret
            );
        }
        write(
            "clients.conf",
            &CLIENTS_CONF
                .replace("@SECRET@", &options.secret)
                .replace("\n@EXTRA_CLIENTS@\n", &format!("\n{extra}\n")),
        )?;
        write("vbng-users", &options.users)?;
        write("dictionary.vbng", VBNG_DICTIONARY)?;
        let dictionary = dir.join("dictionary");
        let mut text = fs::read_to_string(&dictionary).unwrap_or_default();
        text.push_str("\n$INCLUDE dictionary.vbng\n");
        write("dictionary", &text)?;
        Ok(())
    }

    /// Starts the server again, on the same ports and with the same
    /// directory (detail files and log are kept); stops it first if it
    /// runs. Wait for it with [`FreeRadius::wait_ready`].
    pub fn restart(&mut self) -> Result<(), LabError> {
        self.stop();
        let out_path = self.dir.join("radiusd.out");
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out_path)
            .map_err(io(format!("opening {}", out_path.display())))?;
        let err = out
            .try_clone()
            .map_err(io(format!("opening {}", out_path.display())))?;
        let mut cmd = Command::new(&self.binary);
        if self.debug {
            cmd.arg("-X");
        } else {
            cmd.args(["-f", "-l", "stdout"]);
        }
        let child = cmd
            .arg("-d")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(io(format!("starting {}", self.binary.display())))?;
        self.child = Some(child);
        Ok(())
    }

    /// Kills the server (SIGKILL: nothing is flushed beyond what it wrote).
    /// The directory, ports and detail files stay for
    /// [`FreeRadius::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process is running (started and not exited).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Waits until both listeners answer a Status-Server (RFC 5997), at most
    /// 20 s. Fails at once if the process exits.
    pub async fn wait_ready(&mut self) -> Result<(), LabError> {
        let config = ClientConfig {
            timeout: Duration::from_millis(100),
            retries: 0,
            dead_time: Duration::ZERO,
            ..ClientConfig::default()
        };
        let client = |addr| Client::new(vec![self.server_config(addr)], config.clone());
        let clients = [client(self.auth).await, client(self.acct).await];
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let probe = Request {
            code: Code::StatusServer,
            attributes: Vec::new(),
            password: None,
        };
        for client in clients {
            let client = client.map_err(|e| LabError::Io {
                what: "binding a probe socket".into(),
                source: std::io::Error::other(e.to_string()),
            })?;
            loop {
                match self.child.as_mut().map(Child::try_wait) {
                    None => return Err(LabError::NotRunning),
                    Some(Ok(Some(status))) => {
                        return Err(LabError::Exited {
                            status,
                            log: self.log(),
                        });
                    }
                    _ => {}
                }
                if client.send(&probe).await.is_ok() {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(LabError::NotReady {
                        timeout: READY_TIMEOUT,
                        log: self.log(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The authentication listener, 127.0.0.1.
    pub fn auth_addr(&self) -> SocketAddr {
        self.auth
    }

    /// The accounting listener, 127.0.0.1.
    pub fn acct_addr(&self) -> SocketAddr {
        self.acct
    }

    /// The shared secret of 127.0.0.1.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// A client configuration for `addr` with the 127.0.0.1 secret.
    pub fn server_config(&self, addr: SocketAddr) -> ServerConfig {
        ServerConfig {
            addr,
            secret: self.secret.clone(),
        }
    }

    /// The client configuration of the authentication listener.
    pub fn auth_server(&self) -> ServerConfig {
        self.server_config(self.auth)
    }

    /// The client configuration of the accounting listener.
    pub fn acct_server(&self) -> ServerConfig {
        self.server_config(self.acct)
    }

    /// The configuration directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the detail files go: `<dir>/log/radacct/<NAS address>/detail-YYYYMMDD`.
    pub fn detail_dir(&self) -> PathBuf {
        self.dir.join("log/radacct")
    }

    /// Every record of every detail file: NAS directories in name order,
    /// files in name (date) order, records in file order.
    pub fn detail_records(&self) -> Vec<DetailRecord> {
        let mut records = Vec::new();
        for nas_dir in sorted_entries(&self.detail_dir()) {
            let nas = nas_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            for file in sorted_entries(&nas_dir) {
                let is_detail = file
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("detail-"));
                let Some(text) = is_detail.then(|| fs::read_to_string(&file).ok()).flatten() else {
                    continue;
                };
                records.extend(parse_detail(&text).into_iter().map(|mut r| {
                    r.nas.clone_from(&nas);
                    r
                }));
            }
        }
        records
    }

    /// The server's output so far (all runs; with `debug`, the `-X` trace).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("radiusd.out")).unwrap_or_default()
    }
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        self.stop();
        if std::env::var_os("VBNG_KEEP_RADDB").is_some() {
            tracing::info!(dir = %self.dir.display(), "keeping FreeRADIUS directory");
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn check_secret(secret: &str) -> Result<(), LabError> {
    let ok = !secret.is_empty()
        && secret
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    if ok {
        Ok(())
    } else {
        Err(LabError::BadSecret(secret.to_string()))
    }
}

/// Two distinct free UDP ports on 127.0.0.1 (held together while chosen), below the
/// kernel's ephemeral range: a server stopped and restarted on them
/// ([`FreeRadius::restart`]) must find them free again, and while it is down any client
/// socket bound to port 0 (ours or a parallel test's) could otherwise be given one.
fn free_ports() -> Result<(u16, u16), LabError> {
    let ephemeral_low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| {
            t.split_whitespace()
                .next()
                .and_then(|w| w.parse::<u16>().ok())
        })
        .unwrap_or(32768);
    const LOWEST: u16 = 10_000;
    if ephemeral_low <= LOWEST + 2 {
        // No room below the ephemeral range: take what the kernel hands out.
        let bind = || UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io("binding 127.0.0.1:0"));
        let (a, b) = (bind()?, bind()?);
        let port = |s: &UdpSocket| {
            s.local_addr()
                .map(|a| a.port())
                .map_err(io("reading a local port"))
        };
        return Ok((port(&a)?, port(&b)?));
    }
    // Start from a per-process, per-call position so that parallel tests spread out.
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let span = u32::from(ephemeral_low - LOWEST);
    let seed = std::process::id()
        .wrapping_mul(2_654_435_761)
        .wrapping_add(SEQ.fetch_add(1, Ordering::Relaxed).wrapping_mul(40_503));
    let mut held = Vec::with_capacity(2);
    for step in 0..span {
        let port = LOWEST + ((seed.wrapping_add(step.wrapping_mul(7_919))) % span) as u16;
        if let Ok(socket) = UdpSocket::bind((Ipv4Addr::LOCALHOST, port)) {
            held.push((port, socket));
            if held.len() == 2 {
                return Ok((held[0].0, held[1].0));
            }
        }
    }
    Err(io(format!(
        "finding two free UDP ports in {LOWEST}..{ephemeral_low}"
    ))(std::io::ErrorKind::AddrInUse.into()))
}

fn unique_dir() -> PathBuf {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "vbng-raddb-{}-{}-{nanos}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DETAIL: &str = "Mon Nov 30 11:32:45 2026\n\
        \tAcct-Status-Type = Start\n\
        \tAcct-Session-Id = \"s-\\\"1\\\"\"\n\
        \tAcct-Input-Octets = 42\n\
        \tTimestamp = 1790000000\n\
        \n\
        Mon Nov 30 11:32:46 2026\n\
        \tAcct-Status-Type = Stop\n\
        \tAcct-Session-Id = \"s2\"\n\
        \n";

    #[test]
    fn detail_records_in_order() {
        let records = parse_detail(DETAIL);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].header, "Mon Nov 30 11:32:45 2026");
        assert_eq!(records[0].get("Acct-Status-Type"), Some("Start"));
        assert_eq!(records[0].get("Acct-Session-Id"), Some("s-\"1\""));
        assert_eq!(records[0].get("Acct-Input-Octets"), Some("42"));
        assert_eq!(records[0].attributes.len(), 4);
        assert_eq!(records[1].get("Acct-Session-Id"), Some("s2"));
        assert_eq!(records[1].get("Acct-Input-Octets"), None);
    }

    #[test]
    fn detail_without_trailing_blank_line_and_junk() {
        let records = parse_detail("h1\n\tA = 1\nh2\n\tB = \"x\"\n\tno-equals\n");
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].attributes, [("A".into(), "1".into())]);
        assert_eq!(records[1].attributes, [("B".into(), "x".into())]);
        assert!(parse_detail("").is_empty());
        assert!(parse_detail("\n\n\t = \n").len() <= 1);
    }

    #[test]
    fn secrets_are_checked() {
        assert!(check_secret("vbng-test-secret").is_ok());
        for bad in ["", "a b", "a\"b", "a\\b", "é"] {
            assert!(check_secret(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn missing_binary_is_reported() {
        let dir = unique_dir();
        fs::create_dir_all(&dir).unwrap();
        let binary = dir.join("no-such-freeradius");
        let err = FreeRadius::prepare(FreeRadiusOptions {
            binary: binary.clone(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(matches!(err, LabError::NotInstalled(p) if p == binary));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn templates_have_their_placeholders() {
        assert!(RADIUSD_CONF.contains("@RADDB@"));
        assert!(SITE.contains("@AUTH_PORT@") && SITE.contains("@ACCT_PORT@"));
        assert!(CLIENTS_CONF.contains("@SECRET@") && CLIENTS_CONF.contains("\n@EXTRA_CLIENTS@\n"));
        assert!(USERS.contains("pap-user") && USERS.contains("\"02:00:00:00:00:01\""));
    }
}
