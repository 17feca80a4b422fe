//! The lease journal (`[dhcp] lease_file`): an append-only file of JSON
//! lines, one [`Record`] each, that lets a restarted control plane restore
//! its leases and its established PPPoE sessions.
//!
//! - A bound or renewed lease appends a [`Record::Put`] with the whole lease
//!   (the last one of a client wins); a released, declined, expired or
//!   administratively deleted one appends a [`Record::Remove`].
//! - A PPPoE session programmed on its user plane appends a
//!   [`Record::PppoePut`] ([`StoredPppoe`]: what discovery, LCP,
//!   authentication and IPCP agreed on, and its IPv6: IPv6CP identifiers
//!   and DHCPv6 bindings, appended again when they change); its end, a
//!   [`Record::PppoeRemove`].
//! - Records are written in submission order by one dedicated thread, which
//!   fsyncs each batch before it acknowledges it: the caller awaits that
//!   acknowledgement before the DHCPACK leaves (or the deletion is
//!   acknowledged), so a client never holds an address the file does not.
//! - [`LeaseStore::open`] replays the file, drops expired leases and
//!   compacts it (live leases to a temporary file, fsync, rename) before
//!   appending. A truncated last line (a crash in mid-write) is ignored
//!   with a warning; any other bad line is a [`JournalError::Corrupt`].
//!
//! Lease times are kept as Unix milliseconds in the file, since the
//! monotonic clock of [`crate::monotonic_ms`] restarts with the process.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tracing::{error, warn};
use vbng_access::dhcpv4::{ClientKey, Lease};
use vbng_access::dhcpv6::LinkBindings;
use vbng_access::ipv6::Ipv6Prefix;
use vbng_access::ppp::{AuthMethod, NegotiatedLink};
use vbng_access::pppoe::discovery::{LineKey, SessionKey};

/// Why the lease journal cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Reading, writing or renaming the file failed.
    #[error("lease file {path}: {what}: {source}")]
    Io {
        /// The lease file.
        path: PathBuf,
        /// The operation that failed.
        what: &'static str,
        /// The error of the operating system.
        source: std::io::Error,
    },
    /// A line other than a truncated last one is not a valid record.
    #[error(
        "lease file {path}, line {line}: expected a JSON lease record, found {problem}; fix: repair or remove the line (or the file, losing the leases)"
    )]
    Corrupt {
        /// The lease file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What the parser reported.
        problem: String,
    },
}

/// The client a record is about ([`ClientKey`] in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StoredKey {
    /// User plane index.
    pub up: u32,
    /// Access port on that user plane.
    pub port: u8,
    /// Outer VLAN id, 0 if none.
    pub svlan: u16,
    /// Inner VLAN id, 0 if none.
    pub cvlan: u16,
    /// Client MAC.
    pub mac: [u8; 6],
}

impl From<ClientKey> for StoredKey {
    fn from(k: ClientKey) -> Self {
        StoredKey {
            up: k.up,
            port: k.port,
            svlan: k.svlan,
            cvlan: k.cvlan,
            mac: k.mac,
        }
    }
}

impl From<StoredKey> for ClientKey {
    fn from(k: StoredKey) -> Self {
        ClientKey {
            up: k.up,
            port: k.port,
            svlan: k.svlan,
            cvlan: k.cvlan,
            mac: k.mac,
        }
    }
}

/// A bound lease as written to the file: [`Lease`] with wall-clock times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLease {
    /// The client.
    pub key: StoredKey,
    /// The leased address.
    pub ipv4: Ipv4Addr,
    /// Its pool.
    pub pool: String,
    /// The pool gateway.
    pub gateway: Ipv4Addr,
    /// Subnet prefix length.
    pub prefix_len: u8,
    /// Lease time granted, in seconds.
    pub lease_time_s: u32,
    /// First bound, Unix milliseconds.
    pub bound_unix_ms: u64,
    /// Expiry unless renewed, Unix milliseconds.
    pub expires_unix_ms: u64,
    /// Agent Circuit ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_id: Option<Vec<u8>>,
    /// Agent Remote ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<Vec<u8>>,
    /// Client identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Vec<u8>>,
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// What AAA gave the session (rate, Acct-Session-Id, Class, timeouts),
    /// so that a restarted control plane keeps accounting it as the same
    /// session. Absent in files of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<crate::aaa::SessionProfile>,
}

/// The PPPoE session a record is about ([`SessionKey`] in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StoredPppoeKey {
    /// User plane index.
    pub up: u32,
    /// Access port on that user plane.
    pub port: u8,
    /// Outer VLAN id, 0 if none.
    pub svlan: u16,
    /// Inner VLAN id, 0 if none.
    pub cvlan: u16,
    /// Client MAC.
    pub mac: [u8; 6],
    /// PPPoE SESSION_ID.
    pub session_id: u16,
}

impl From<SessionKey> for StoredPppoeKey {
    fn from(k: SessionKey) -> Self {
        StoredPppoeKey {
            up: k.line.up,
            port: k.line.port,
            svlan: k.line.svlan,
            cvlan: k.line.cvlan,
            mac: k.mac,
            session_id: k.session_id,
        }
    }
}

impl From<StoredPppoeKey> for SessionKey {
    fn from(k: StoredPppoeKey) -> Self {
        SessionKey {
            line: LineKey {
                up: k.up,
                port: k.port,
                svlan: k.svlan,
                cvlan: k.cvlan,
            },
            mac: k.mac,
            session_id: k.session_id,
        }
    }
}

/// How the peer authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredAuth {
    /// PAP.
    Pap,
    /// CHAP-MD5.
    Chap,
}

/// What LCP, authentication and IPCP agreed on ([`NegotiatedLink`] in the
/// file): what keeps the link talking after a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLink {
    /// Our LCP Magic-Number; absent if the peer rejected it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub magic: Option<u32>,
    /// The peer's Magic-Number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_magic: Option<u32>,
    /// Our MRU as acknowledged; absent if the peer rejected it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mru: Option<u16>,
    /// The peer's MRU.
    pub peer_mru: u16,
    /// How the peer authenticated.
    pub auth: StoredAuth,
    /// The peer's address.
    pub ipv4: Ipv4Addr,
    /// Our (gateway) address in IPCP.
    pub gateway: Ipv4Addr,
    /// DNS servers offered.
    pub dns: [Option<Ipv4Addr>; 2],
}

impl From<NegotiatedLink> for StoredLink {
    fn from(l: NegotiatedLink) -> Self {
        StoredLink {
            magic: l.magic,
            peer_magic: l.peer_magic,
            mru: l.mru,
            peer_mru: l.peer_mru,
            auth: match l.auth {
                AuthMethod::Pap => StoredAuth::Pap,
                AuthMethod::Chap | AuthMethod::ChapThenPap => StoredAuth::Chap,
            },
            ipv4: l.ipv4,
            gateway: l.gateway,
            dns: l.dns,
        }
    }
}

impl From<StoredLink> for NegotiatedLink {
    fn from(l: StoredLink) -> Self {
        NegotiatedLink {
            magic: l.magic,
            peer_magic: l.peer_magic,
            mru: l.mru,
            peer_mru: l.peer_mru,
            auth: match l.auth {
                StoredAuth::Pap => AuthMethod::Pap,
                StoredAuth::Chap => AuthMethod::Chap,
            },
            ipv4: l.ipv4,
            gateway: l.gateway,
            dns: l.dns,
        }
    }
}

/// An established PPPoE session as written to the file. The parts a
/// restore cannot do without beyond the key and the user plane address
/// (`link`, `pool`, `profile`) may be absent: such a session is ended with
/// a PADT at restore instead of failing the whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPppoe {
    /// The session.
    pub key: StoredPppoeKey,
    /// The GTP-U address of its user plane (where its frames go).
    pub up_gtpu: SocketAddr,
    /// The Service-Name the client asked for in discovery.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_name: Vec<u8>,
    /// The client's Host-Uniq.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_uniq: Option<Vec<u8>>,
    /// PPP-Max-Payload granted (RFC 4638).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_payload: Option<u16>,
    /// Agent-Circuit-Id from the access loop tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_id: Option<Vec<u8>>,
    /// Agent-Remote-Id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<Vec<u8>>,
    /// The name the peer authenticated with.
    #[serde(default)]
    pub username: String,
    /// The pool the address came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// The negotiated link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<StoredLink>,
    /// What AAA gave the session (rate, Acct-Session-Id, Class, timeouts),
    /// so that it is accounted on as the same session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<crate::aaa::SessionProfile>,
    /// When the session started, Unix seconds.
    pub started_unix: u64,
    /// Its IPv6, once IPv6CP opened. Absent in files of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<StoredIpv6>,
}

/// A PPPoE session's IPv6 as written to the file: what IPv6CP agreed on
/// and what the DHCPv6 server holds bound for it. Lifetimes are not kept:
/// bindings live as long as the session, and Replies carry the pool's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredIpv6 {
    /// Our IPv6CP interface identifier.
    pub interface_id: u64,
    /// The peer's, 0 if it negotiated none.
    pub peer_interface_id: u64,
    /// The /64 advertised to the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<Ipv6Prefix>,
    /// The bound IA_NA address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv6Addr>,
    /// The IAID of the IA_NA it was bound in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_iaid: Option<u32>,
    /// The bound delegated prefix (IA_PD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegated_prefix: Option<Ipv6Prefix>,
    /// The IAID of the IA_PD it was bound in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegated_iaid: Option<u32>,
    /// The DHCPv6 client's DUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_duid: Option<Vec<u8>>,
}

impl StoredIpv6 {
    /// The DHCPv6 bindings to restore.
    pub fn bindings(&self) -> LinkBindings {
        LinkBindings {
            link_prefix: self.prefix,
            address: self.address,
            address_iaid: self.address_iaid,
            delegated_prefix: self.delegated_prefix,
            delegated_iaid: self.delegated_iaid,
            client_id: self.client_duid.clone(),
        }
    }
}

/// Converts between the process's monotonic milliseconds and Unix ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Now, on the monotonic clock of the leases.
    pub mono_ms: u64,
    /// Now, in Unix milliseconds.
    pub unix_ms: u64,
}

impl Clock {
    /// The current time on both clocks.
    pub fn now() -> Clock {
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Clock {
            mono_ms: crate::monotonic_ms(),
            unix_ms,
        }
    }

    fn to_unix(self, mono: u64) -> u64 {
        if mono >= self.mono_ms {
            self.unix_ms.saturating_add(mono - self.mono_ms)
        } else {
            self.unix_ms.saturating_sub(self.mono_ms - mono)
        }
    }

    fn to_mono(self, unix: u64) -> u64 {
        if unix >= self.unix_ms {
            self.mono_ms.saturating_add(unix - self.unix_ms)
        } else {
            self.mono_ms.saturating_sub(self.unix_ms - unix)
        }
    }
}

impl StoredLease {
    /// `lease` with its times converted by `clock`.
    pub fn from_lease(lease: &Lease, clock: Clock) -> StoredLease {
        StoredLease {
            key: lease.key.into(),
            ipv4: lease.ipv4,
            pool: lease.pool.clone(),
            gateway: lease.gateway,
            prefix_len: lease.prefix_len,
            lease_time_s: lease.lease_time_s,
            bound_unix_ms: clock.to_unix(lease.bound_at_ms),
            expires_unix_ms: clock.to_unix(lease.expires_at_ms),
            circuit_id: lease.circuit_id.clone(),
            remote_id: lease.remote_id.clone(),
            client_id: lease.client_id.clone(),
            hostname: lease.hostname.clone(),
            profile: None,
        }
    }

    /// The lease on this process's monotonic clock.
    pub fn to_lease(&self, clock: Clock) -> Lease {
        Lease {
            key: self.key.into(),
            ipv4: self.ipv4,
            pool: self.pool.clone(),
            gateway: self.gateway,
            prefix_len: self.prefix_len,
            lease_time_s: self.lease_time_s,
            bound_at_ms: clock.to_mono(self.bound_unix_ms),
            expires_at_ms: clock.to_mono(self.expires_unix_ms),
            circuit_id: self.circuit_id.clone(),
            remote_id: self.remote_id.clone(),
            client_id: self.client_id.clone(),
            hostname: self.hostname.clone(),
        }
    }
}

/// One line of the lease file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
// Records are built one at a time and sent to the writer thread at once:
// boxing the lease would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Record {
    /// The client holds this lease (bound or renewed).
    Put(StoredLease),
    /// The client holds no lease any more.
    Remove {
        /// The client.
        key: StoredKey,
    },
    /// This PPPoE session is established (programmed on its user plane).
    PppoePut(StoredPppoe),
    /// This PPPoE session ended.
    PppoeRemove {
        /// The session.
        key: StoredPppoeKey,
    },
}

impl Record {
    /// A `Put` of `lease`.
    pub fn put(lease: &Lease) -> Record {
        Record::Put(StoredLease::from_lease(lease, Clock::now()))
    }

    /// A `Put` of `lease` with the profile of its session.
    pub fn put_with(lease: &Lease, profile: Option<crate::aaa::SessionProfile>) -> Record {
        let mut stored = StoredLease::from_lease(lease, Clock::now());
        stored.profile = profile;
        Record::Put(stored)
    }

    /// A `Remove` of `key`.
    pub fn remove(key: ClientKey) -> Record {
        Record::Remove { key: key.into() }
    }

    /// A `PppoeRemove` of `key`.
    pub fn pppoe_remove(key: SessionKey) -> Record {
        Record::PppoeRemove { key: key.into() }
    }
}

/// What the file holds once replayed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Leases, in key order.
    pub leases: Vec<StoredLease>,
    /// Established PPPoE sessions, in key order.
    pub pppoe: Vec<StoredPppoe>,
}

/// Replay the records of `path` (missing file: none) and return the leases
/// still held, including expired ones, and the PPPoE sessions not ended.
pub fn replay(path: &Path) -> Result<Replayed, JournalError> {
    let io = |what| {
        let path = path.to_path_buf();
        move |source| JournalError::Io { path, what, source }
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Replayed::default()),
        Err(e) => return Err(io("open")(e)),
    };
    let mut reader = BufReader::new(file);
    let mut live = BTreeMap::new();
    let mut pppoe = BTreeMap::new();
    let mut line = Vec::new();
    let mut n = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(io("read"))? == 0 {
            break;
        }
        n += 1;
        let complete = line.last() == Some(&b'\n');
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(text) {
            Ok(Record::Put(l)) => {
                live.insert(l.key, l);
            }
            Ok(Record::Remove { key }) => {
                live.remove(&key);
            }
            Ok(Record::PppoePut(p)) => {
                pppoe.insert(p.key, p);
            }
            Ok(Record::PppoeRemove { key }) => {
                pppoe.remove(&key);
            }
            Err(e) if !complete => {
                // Only the last line can lack its newline: the write of it
                // was cut short. Its DHCPACK (or deletion) never left.
                warn!(file = %path.display(), line = n, error = %e, "ignoring a truncated last line of the lease file");
            }
            Err(e) => {
                return Err(JournalError::Corrupt {
                    path: path.to_path_buf(),
                    line: n,
                    problem: e.to_string(),
                });
            }
        }
    }
    Ok(Replayed {
        leases: live.into_values().collect(),
        pppoe: pppoe.into_values().collect(),
    })
}

/// Rewrite `path` to hold exactly `state` (temporary file, fsync, rename,
/// fsync of the directory).
pub fn compact(path: &Path, state: &Replayed) -> Result<(), JournalError> {
    let io = |what| {
        let path = path.to_path_buf();
        move |source| JournalError::Io { path, what, source }
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut buf = Vec::new();
    let records = (state.leases.iter().cloned().map(Record::Put))
        .chain(state.pppoe.iter().cloned().map(Record::PppoePut));
    for r in records {
        serde_json::to_writer(&mut buf, &r).map_err(|e| io("encode")(e.into()))?;
        buf.push(b'\n');
    }
    let mut f = File::create(&tmp).map_err(io("create the temporary file"))?;
    f.write_all(&buf).map_err(io("write the temporary file"))?;
    f.sync_all().map_err(io("fsync the temporary file"))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io("rename the temporary file"))?;
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

struct Job {
    record: Record,
    done: Option<oneshot::Sender<()>>,
}

/// The open lease journal: appends records in order on its own thread.
/// Cheap to clone; the thread ends when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct LeaseStore {
    tx: std_mpsc::Sender<Job>,
    path: PathBuf,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("record", &self.record).finish()
    }
}

impl LeaseStore {
    /// Replay and compact `path`, then open it for appending. Returns the
    /// store, the leases unexpired at `now` and the PPPoE sessions, in key
    /// order. Blocking.
    pub fn open(path: &Path, now: Clock) -> Result<(LeaseStore, Replayed), JournalError> {
        let mut state = replay(path)?;
        state.leases.retain(|l| l.expires_unix_ms > now.unix_ms);
        compact(path, &state)?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|source| JournalError::Io {
                path: path.to_path_buf(),
                what: "open for appending",
                source,
            })?;
        let (tx, rx) = std_mpsc::channel();
        let p = path.to_path_buf();
        std::thread::Builder::new()
            .name("lease-journal".into())
            .spawn(move || writer(file, &p, &rx))
            .map_err(|source| JournalError::Io {
                path: path.to_path_buf(),
                what: "start the writer thread",
                source,
            })?;
        Ok((
            LeaseStore {
                tx,
                path: path.to_path_buf(),
            },
            state,
        ))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append `record` after every record submitted before it; the
    /// receiver completes once it is on disk (fsync'd), or the write
    /// failed (logged).
    pub fn append(&self, record: Record) -> oneshot::Receiver<()> {
        let (done, rx) = oneshot::channel();
        let _ = self.tx.send(Job {
            record,
            done: Some(done),
        });
        rx
    }

    /// Append `record` without waiting for it (still in order).
    pub fn append_detached(&self, record: Record) {
        let _ = self.tx.send(Job { record, done: None });
    }
}

/// The writer thread: takes every queued record, writes them, fsyncs once
/// and acknowledges them all (group commit).
fn writer(mut file: File, path: &Path, rx: &std_mpsc::Receiver<Job>) {
    let mut buf = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        jobs.extend(rx.try_iter());
        buf.clear();
        for j in &jobs {
            if serde_json::to_writer(&mut buf, &j.record).is_ok() {
                buf.push(b'\n');
            }
        }
        if let Err(e) = file.write_all(&buf).and_then(|()| file.sync_data()) {
            error!(file = %path.display(), error = %e, records = jobs.len(), "writing the lease file failed; these leases would not survive a restart");
        }
        for j in jobs {
            if let Some(d) = j.done {
                let _ = d.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::ScratchDir;

    /// The test's scratch directory, removed when the guard drops.
    fn dir(name: &str) -> ScratchDir {
        ScratchDir::new(&format!("journal-{name}"))
    }

    fn lease(mac_last: u8, expires_unix_ms: u64) -> StoredLease {
        StoredLease {
            key: StoredKey {
                up: 0,
                port: 1,
                svlan: 20,
                cvlan: 200,
                mac: [2, 0, 0, 0, 0, mac_last],
            },
            ipv4: Ipv4Addr::new(100, 64, 0, 10 + mac_last),
            pool: "default".into(),
            gateway: Ipv4Addr::new(100, 64, 0, 1),
            prefix_len: 24,
            lease_time_s: 600,
            bound_unix_ms: NOW.unix_ms - 1_000,
            expires_unix_ms,
            circuit_id: Some(b"eth 1/1".to_vec()),
            remote_id: None,
            client_id: None,
            hostname: Some("cpe".into()),
            profile: None,
        }
    }

    const NOW: Clock = Clock {
        mono_ms: 5_000,
        unix_ms: 1_700_000_000_000,
    };

    fn write_lines(path: &Path, records: &[Record]) {
        let mut text = String::new();
        for r in records {
            text.push_str(&serde_json::to_string(r).unwrap());
            text.push('\n');
        }
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn lease_round_trips_through_the_clock() {
        let l = lease(1, NOW.unix_ms + 600_000);
        let m = l.to_lease(NOW);
        assert_eq!(m.expires_at_ms, NOW.mono_ms + 600_000);
        assert_eq!(StoredLease::from_lease(&m, NOW), l);
        let text = serde_json::to_string(&Record::Put(l.clone())).unwrap();
        assert!(text.starts_with(r#"{"op":"put","#), "{text}");
        assert_eq!(
            serde_json::from_str::<Record>(&text).unwrap(),
            Record::Put(l)
        );
    }

    #[tokio::test]
    async fn appended_records_replay_in_order() {
        let scratch = dir("round");
        let path = scratch.join("leases.jsonl");
        let (store, state) = LeaseStore::open(&path, NOW).unwrap();
        assert_eq!(state, Replayed::default());
        let far = u64::MAX / 2;
        store.append_detached(Record::Put(lease(1, far)));
        store.append_detached(Record::Put(lease(2, far)));
        let mut renewed = lease(1, far + 1);
        renewed.hostname = None;
        store.append_detached(Record::Put(renewed.clone()));
        store
            .append(Record::Remove {
                key: lease(2, 0).key,
            })
            .await
            .unwrap();
        assert_eq!(replay(&path).unwrap().leases, vec![renewed]);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().lines().count(),
            4,
            "appended, not rewritten"
        );
    }

    #[test]
    fn open_compacts_and_drops_expired() {
        let scratch = dir("compact");
        let path = scratch.join("leases.jsonl");
        let live = lease(1, NOW.unix_ms + 1);
        write_lines(
            &path,
            &[
                Record::Put(lease(1, NOW.unix_ms - 10)),
                Record::Put(lease(2, NOW.unix_ms + 5)),
                Record::Put(lease(3, NOW.unix_ms)),
                Record::Remove {
                    key: lease(2, 0).key,
                },
                Record::Put(live.clone()),
            ],
        );
        let (_store, state) = LeaseStore::open(&path, NOW).unwrap();
        assert_eq!(state.leases, vec![live.clone()]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert_eq!(replay(&path).unwrap().leases, vec![live]);
        assert!(!path.with_extension("jsonl.tmp").exists());
    }

    #[test]
    fn truncated_last_line_is_ignored() {
        let scratch = dir("trunc");
        let path = scratch.join("leases.jsonl");
        let kept = lease(1, NOW.unix_ms + 60_000);
        write_lines(&path, &[Record::Put(kept.clone())]);
        let full = serde_json::to_string(&Record::Put(lease(2, NOW.unix_ms + 60_000))).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&full.as_bytes()[..full.len() / 2]).unwrap();
        drop(f);
        let (_store, state) = LeaseStore::open(&path, NOW).unwrap();
        assert_eq!(state.leases, vec![kept]);
        // Compaction dropped the torn line.
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    }

    #[test]
    fn corrupt_line_names_file_and_line() {
        let scratch = dir("corrupt");
        let path = scratch.join("leases.jsonl");
        let good = serde_json::to_string(&Record::Put(lease(1, u64::MAX / 2))).unwrap();
        std::fs::write(&path, format!("{good}\nnot json\n{good}\n")).unwrap();
        let e = LeaseStore::open(&path, NOW).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("lease file {}, line 2:", path.display())),
            "{e}"
        );
        assert!(!e.contains('\n'), "one line: {e}");
        // Nothing was rewritten.
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
    }

    fn pppoe(session_id: u16) -> StoredPppoe {
        StoredPppoe {
            key: StoredPppoeKey {
                up: 0,
                port: 1,
                svlan: 0,
                cvlan: 100,
                mac: [2, 0, 0, 0, 0, 0x77],
                session_id,
            },
            up_gtpu: "192.0.2.1:2152".parse().unwrap(),
            service_name: Vec::new(),
            host_uniq: Some(b"hu-1".to_vec()),
            max_payload: None,
            circuit_id: Some(b"eth 1/1".to_vec()),
            remote_id: None,
            username: "alice".into(),
            pool: Some("default".into()),
            link: Some(StoredLink {
                magic: Some(0x1122_3344),
                peer_magic: Some(0x1234_5678),
                mru: Some(1492),
                peer_mru: 1492,
                auth: StoredAuth::Chap,
                ipv4: Ipv4Addr::new(100, 64, 0, 10),
                gateway: Ipv4Addr::new(100, 64, 0, 1),
                dns: [Some(Ipv4Addr::new(192, 0, 2, 53)), None],
            }),
            profile: Some(crate::aaa::SessionProfile::default()),
            started_unix: 1_700_000_000,
            ipv6: None,
        }
    }

    fn dual_stack(session_id: u16) -> StoredPppoe {
        StoredPppoe {
            ipv6: Some(StoredIpv6 {
                interface_id: 0x0000_5eff_fe00_0101,
                peer_interface_id: 0x1234_56ff_fe78_9abc,
                prefix: Some("2001:db8:100::/64".parse().unwrap()),
                address: Some("2001:db8:100:0:1234:56ff:fe78:9abc".parse().unwrap()),
                address_iaid: Some(1),
                delegated_prefix: Some("2001:db8:200::/56".parse().unwrap()),
                delegated_iaid: Some(2),
                client_duid: Some(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 0x61]),
            }),
            ..pppoe(session_id)
        }
    }

    #[test]
    fn pppoe_ipv6_round_trips_and_the_last_record_wins() {
        let p = dual_stack(9);
        let text = serde_json::to_string(&Record::PppoePut(p.clone())).unwrap();
        assert!(
            text.contains(r#""prefix":"2001:db8:100::/64""#)
                && text.contains(r#""delegated_prefix":"2001:db8:200::/56""#),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<Record>(&text).unwrap(),
            Record::PppoePut(p.clone())
        );
        let v6 = p.ipv6.clone().unwrap();
        let b = v6.bindings();
        assert_eq!(
            (b.link_prefix, b.address, b.delegated_prefix),
            (v6.prefix, v6.address, v6.delegated_prefix)
        );
        assert_eq!((b.address_iaid, b.delegated_iaid), (Some(1), Some(2)));
        assert_eq!(b.client_id, v6.client_duid);

        // IPv4 first, then the same session with its IPv6: the second
        // record is the one restored, and compaction keeps it.
        let scratch = dir("pppoe-ipv6");
        let path = scratch.join("leases.jsonl");
        write_lines(
            &path,
            &[Record::PppoePut(pppoe(9)), Record::PppoePut(p.clone())],
        );
        let (_store, state) = LeaseStore::open(&path, NOW).unwrap();
        assert_eq!(state.pppoe, vec![p.clone()]);
        assert_eq!(replay(&path).unwrap().pppoe, vec![p]);
    }

    #[test]
    fn pppoe_record_of_an_older_version_has_no_ipv6() {
        let mut old = serde_json::to_value(Record::PppoePut(pppoe(4))).unwrap();
        assert!(old.get("ipv6").is_none(), "absent, not null: {old}");
        old.as_object_mut().unwrap().remove("ipv6");
        let Record::PppoePut(p) = serde_json::from_value::<Record>(old).unwrap() else {
            panic!("not a pppoe_put");
        };
        assert_eq!(p, pppoe(4));
    }

    #[test]
    fn pppoe_sessions_round_trip_and_survive_compaction() {
        let p = pppoe(7);
        let text = serde_json::to_string(&Record::PppoePut(p.clone())).unwrap();
        assert!(text.starts_with(r#"{"op":"pppoe_put","#), "{text}");
        assert_eq!(
            serde_json::from_str::<Record>(&text).unwrap(),
            Record::PppoePut(p.clone())
        );
        let link = p.link.unwrap();
        assert_eq!(StoredLink::from(NegotiatedLink::from(link)), link);
        let key = SessionKey::from(p.key);
        assert_eq!(StoredPppoeKey::from(key), p.key);

        let scratch = dir("pppoe");
        let path = scratch.join("leases.jsonl");
        let lease = lease(1, NOW.unix_ms + 60_000);
        write_lines(
            &path,
            &[
                Record::Put(lease.clone()),
                Record::PppoePut(pppoe(7)),
                Record::PppoePut(pppoe(8)),
                Record::pppoe_remove(SessionKey::from(pppoe(7).key)),
            ],
        );
        let (_store, state) = LeaseStore::open(&path, NOW).unwrap();
        assert_eq!(
            state,
            Replayed {
                leases: vec![lease],
                pppoe: vec![pppoe(8)],
            }
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
        assert_eq!(replay(&path).unwrap(), state);
    }

    #[test]
    fn incomplete_pppoe_record_still_parses() {
        let text = r#"{"op":"pppoe_put","key":{"up":0,"port":1,"svlan":0,"cvlan":100,"mac":[2,0,0,0,0,119],"session_id":3},"up_gtpu":"192.0.2.1:2152","started_unix":5}"#;
        let Record::PppoePut(p) = serde_json::from_str::<Record>(text).unwrap() else {
            panic!("not a pppoe_put");
        };
        assert_eq!((p.link, p.pool, p.profile), (None, None, None));
        assert_eq!(p.key.session_id, 3);
    }
}
