//! The lease journal (`[dhcp] lease_file`): an append-only file of JSON
//! lines, one [`Record`] each, that lets a restarted control plane restore
//! its leases.
//!
//! - A bound or renewed lease appends a [`Record::Put`] with the whole lease
//!   (the last one of a client wins); a released, declined, expired or
//!   administratively deleted one appends a [`Record::Remove`].
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
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tracing::{error, warn};
use vbng_access::dhcpv4::{ClientKey, Lease};

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
}

/// Replay the records of `path` (missing file: none) and return the leases
/// still held, in key order, including expired ones.
pub fn replay(path: &Path) -> Result<Vec<StoredLease>, JournalError> {
    let io = |what| {
        let path = path.to_path_buf();
        move |source| JournalError::Io { path, what, source }
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("open")(e)),
    };
    let mut reader = BufReader::new(file);
    let mut live = BTreeMap::new();
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
    Ok(live.into_values().collect())
}

/// Rewrite `path` to hold exactly `leases` (temporary file, fsync, rename,
/// fsync of the directory).
pub fn compact(path: &Path, leases: &[StoredLease]) -> Result<(), JournalError> {
    let io = |what| {
        let path = path.to_path_buf();
        move |source| JournalError::Io { path, what, source }
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut buf = Vec::new();
    for l in leases {
        serde_json::to_writer(&mut buf, &Record::Put(l.clone()))
            .map_err(|e| io("encode")(e.into()))?;
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
    /// store and the leases unexpired at `now`, in key order. Blocking.
    pub fn open(path: &Path, now: Clock) -> Result<(LeaseStore, Vec<StoredLease>), JournalError> {
        let leases: Vec<_> = replay(path)?
            .into_iter()
            .filter(|l| l.expires_unix_ms > now.unix_ms)
            .collect();
        compact(path, &leases)?;
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
            leases,
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

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vbng-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
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
        let path = dir("round").join("leases.jsonl");
        let (store, leases) = LeaseStore::open(&path, NOW).unwrap();
        assert!(leases.is_empty());
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
        assert_eq!(replay(&path).unwrap(), vec![renewed]);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().lines().count(),
            4,
            "appended, not rewritten"
        );
    }

    #[test]
    fn open_compacts_and_drops_expired() {
        let path = dir("compact").join("leases.jsonl");
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
        let (_store, leases) = LeaseStore::open(&path, NOW).unwrap();
        assert_eq!(leases, vec![live.clone()]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert_eq!(replay(&path).unwrap(), vec![live]);
        assert!(!path.with_extension("jsonl.tmp").exists());
    }

    #[test]
    fn truncated_last_line_is_ignored() {
        let path = dir("trunc").join("leases.jsonl");
        let kept = lease(1, NOW.unix_ms + 60_000);
        write_lines(&path, &[Record::Put(kept.clone())]);
        let full = serde_json::to_string(&Record::Put(lease(2, NOW.unix_ms + 60_000))).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&full.as_bytes()[..full.len() / 2]).unwrap();
        drop(f);
        let (_store, leases) = LeaseStore::open(&path, NOW).unwrap();
        assert_eq!(leases, vec![kept]);
        // Compaction dropped the torn line.
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    }

    #[test]
    fn corrupt_line_names_file_and_line() {
        let path = dir("corrupt").join("leases.jsonl");
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
}
