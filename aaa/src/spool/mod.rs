//! The durable accounting spool: Accounting-Requests are written to disk
//! before they are sent and leave the spool only once a server has
//! answered them, in the order they were pushed (ARCHITECTURE.md, rule 6).
//!
//! - [`Spool::push`] appends a record and returns once it is fsync'd.
//!   Appends go through one writer thread that writes every queued entry
//!   and fsyncs once per batch, so concurrent pushes share an fsync.
//! - [`Spool::deliver`] sends the oldest pending record through a
//!   [`Client`], one at a time. A record no server answers stays at the
//!   head and is retried after [`SpoolConfig::retry_interval`]: later
//!   records wait behind it, so a server sees a session's Start, Interim
//!   and Stop in order. Each send carries Acct-Delay-Time, the seconds
//!   since the push (RFC 2866 section 5.2).
//! - An answered record is acknowledged by an `A` line that is written and
//!   fsync'd without holding up the next send. A crash before that fsync
//!   (or a shutdown during a send) makes the record pending again, and it
//!   is sent a second time after the restart: delivery is at least once.
//!   The server sees the same Acct-Session-Id and Acct-Status-Type with a
//!   larger Acct-Delay-Time.
//! - [`Spool::open`] replays the file and rewrites it with only the pending
//!   records (temporary file, fsync, rename, fsync of the directory). The
//!   writer rewrites it the same way once every record written so far is
//!   acknowledged and the file has grown past
//!   [`SpoolConfig::compact_bytes`].
//! - A spool file is used by one [`Spool`] at a time: `open` takes an
//!   exclusive lock on `<path>.lock` and fails with [`SpoolError::Locked`]
//!   while another holds it.
//!
//! # File format (version 1)
//!
//! UTF-8 text, one entry per `\n`-terminated line, each ending in the
//! CRC-32 (IEEE 802.3) of the text before its last space, as 8 lowercase
//! hex digits:
//!
//! ```text
//! vbng-spool 1 <next-seq> <crc>
//! R <seq> <pushed-unix-ms> <type>=<hex>[,<type>=<hex>...] <crc>
//! A <seq> <crc>
//! ```
//!
//! The header comes first; `<next-seq>` is the number the next push was to
//! get when the file was written. `R` is a record: sequence number
//! (increasing down the file), push time in Unix milliseconds (the base of
//! Acct-Delay-Time, also after a restart) and the attributes in order as
//! decimal type and hex value (`-` for none; Vendor-Specific kept whole).
//! `A` acknowledges the pending record `<seq>`. For example:
//!
//! ```text
//! vbng-spool 1 0 24b01b34
//! R 0 1764500000123 40=00000001,44=73657373696f6e2d31 808db143
//! A 0 3d442aeb
//! ```
//!
//! A last line without its `\n` is a write cut short by a crash and is
//! ignored with a warning; any other line that does not parse (bad
//! checksum, record out of order, acknowledgement of no pending record) is
//! [`SpoolError::Corrupt`].

mod deliver;
mod format;
mod writer;

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc as std_mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{Notify, oneshot};

#[cfg(doc)]
use crate::client::Client;
use crate::radius::{
    AUTHENTICATOR_LEN, AttrType, Attribute, HEADER_LEN, MAX_ATTR_VALUE_LEN, MAX_PACKET_LEN,
};
use format::Record;
use writer::Job;

/// Where the spool lives and how it behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// The spool file. Its directory must exist; `<path>.tmp` (compaction)
    /// and `<path>.lock` are created beside it.
    pub path: PathBuf,
    /// Wait after a send that no server answered before sending the same
    /// record again. Default 1 s.
    pub retry_interval: Duration,
    /// Rewrite the file once everything in it is acknowledged and it is
    /// larger than this many bytes. Default 1 MiB.
    pub compact_bytes: u64,
}

impl SpoolConfig {
    /// The defaults, for the spool file `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SpoolConfig {
            path: path.into(),
            retry_interval: Duration::from_secs(1),
            compact_bytes: 1 << 20,
        }
    }
}

/// Why the spool cannot be opened or a record cannot be pushed.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// A file operation failed.
    #[error("accounting spool {}: {what}: {source}", .path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The operation that failed.
        what: &'static str,
        /// The error of the operating system.
        source: std::io::Error,
    },
    /// A line other than a torn last one does not parse.
    #[error(
        "accounting spool {}, line {line}: {problem}; fix: repair or remove the line (or move the file away, losing its records)",
        .path.display()
    )]
    Corrupt {
        /// The spool file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// Another [`Spool`] (in this or another process) has the file open.
    #[error(
        "accounting spool {} is in use: the lock {} is held by another spool",
        .path.display(),
        .lock.display()
    )]
    Locked {
        /// The spool file.
        path: PathBuf,
        /// Its lock file.
        lock: PathBuf,
    },
    /// The attributes cannot make an Accounting-Request.
    #[error("accounting record rejected: {0}")]
    InvalidRecord(String),
    /// The writer thread has stopped (it only does when the spool is
    /// dropped, or panicked).
    #[error("accounting spool {}: the writer thread is gone", .path.display())]
    Closed {
        /// The spool file.
        path: PathBuf,
    },
}

/// Counters. Exported as `vbng_acct_spool_<name>` (`_total` for the
/// counters, none for the `pending` gauge).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStatsSnapshot {
    /// Records made durable by [`Spool::push`] in this process.
    pub pushed: u64,
    /// Records acknowledged by a server.
    pub delivered: u64,
    /// Sends that got no Accounting-Response (every server timed out).
    pub send_failures: u64,
    /// Records durable and not yet acknowledged.
    pub pending: u64,
    /// fsyncs of appended entries (one per batch).
    pub fsyncs: u64,
    /// Rewrites of the file that dropped acknowledged records, including
    /// the one at open.
    pub compactions: u64,
}

/// The durable accounting spool. Cheap to clone: clones share one file,
/// one writer thread and one queue. The writer stops when the last clone
/// is dropped; that drop waits for the batch being written.
#[derive(Debug, Clone)]
pub struct Spool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    retry_interval: Duration,
    shared: Arc<Shared>,
    jobs: Option<std_mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
    /// Held by the one running [`Spool::deliver`].
    delivering: tokio::sync::Mutex<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends the writer once it has written what is
        // queued; joining it releases the file lock before a reopen.
        drop(self.jobs.take());
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// State shared by the spool handles and the writer thread.
#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Woken when records become pending.
    notify: Notify,
    pushed: AtomicU64,
    delivered: AtomicU64,
    send_failures: AtomicU64,
    fsyncs: AtomicU64,
    compactions: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    /// Sequence number of the next push.
    next_seq: u64,
    /// Durable, unacknowledged records, oldest first.
    pending: VecDeque<Arc<Record>>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Now, in Unix milliseconds (0 before 1970).
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Checks that `attributes` make an Accounting-Request the client can
/// send: with Acct-Status-Type, every value at most 253 octets, and room
/// in 4096 octets for the Acct-Delay-Time and Message-Authenticator that
/// are added on sending. A record that cannot be sent would block every
/// record behind it, so it is refused here.
fn check_record(attributes: &[Attribute]) -> Result<(), SpoolError> {
    let invalid = |s: String| Err(SpoolError::InvalidRecord(s));
    if !attributes
        .iter()
        .any(|a| a.typ == AttrType::AcctStatusType && a.value.len() == 4)
    {
        return invalid("no Acct-Status-Type (a 4-octet integer, RFC 2866 5.1)".into());
    }
    if let Some(a) = attributes
        .iter()
        .find(|a| a.value.len() > MAX_ATTR_VALUE_LEN)
    {
        return invalid(format!(
            "attribute {} has a {}-octet value, at most {MAX_ATTR_VALUE_LEN}",
            u8::from(a.typ),
            a.value.len()
        ));
    }
    let delay = if attributes.iter().any(|a| a.typ == AttrType::AcctDelayTime) {
        0
    } else {
        6
    };
    let len = HEADER_LEN
        + attributes.iter().map(|a| 2 + a.value.len()).sum::<usize>()
        + delay
        + 2
        + AUTHENTICATOR_LEN;
    if len > MAX_PACKET_LEN {
        return invalid(format!(
            "the Accounting-Request would have {len} octets, at most {MAX_PACKET_LEN}"
        ));
    }
    Ok(())
}

impl Spool {
    /// Opens (creating) the spool file and replays it: records not yet
    /// acknowledged are pending again, in their original order. A torn
    /// last line is ignored with a warning; any other corruption is a
    /// [`SpoolError::Corrupt`] naming file and line, and leaves the file
    /// untouched. The file is then rewritten with the pending records
    /// only. Blocking (file I/O); starts the writer thread.
    pub fn open(config: SpoolConfig) -> Result<Spool, SpoolError> {
        let path = config.path.clone();
        let io = |what: &'static str, p: &Path| {
            let path = p.to_path_buf();
            move |source| SpoolError::Io { path, what, source }
        };
        let lock_path = sibling(&path, ".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io("open the lock file", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(SpoolError::Locked {
                    path,
                    lock: lock_path,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(io("lock", &lock_path)(e));
            }
        }

        let replay = match File::open(&path) {
            Ok(f) => format::replay(BufReader::new(f)).map_err(|b| SpoolError::Corrupt {
                path: path.clone(),
                line: b.line,
                problem: b.problem,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => format::Replay::default(),
            Err(e) => return Err(io("open", &path)(e)),
        };
        if let Some(line) = replay.torn_line {
            tracing::warn!(
                file = %path.display(),
                line,
                "ignoring a torn last line of the accounting spool (a write cut short by a crash)"
            );
        }
        let (file, len) = writer::rewrite(&path, replay.next_seq, &replay.pending)?;
        tracing::info!(
            file = %path.display(),
            pending = replay.pending.len(),
            "accounting spool opened"
        );

        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_seq: replay.next_seq,
                pending: replay.pending.iter().cloned().map(Arc::new).collect(),
            }),
            ..Shared::default()
        });
        Shared::inc(&shared.compactions);
        let (tx, rx) = std_mpsc::channel();
        let writer = writer::Writer {
            path: path.clone(),
            file,
            len,
            unacked: replay.pending.len(),
            next_seq: replay.next_seq,
            compact_bytes: config.compact_bytes,
            shared: shared.clone(),
            retry_acks: Vec::new(),
            broken: None,
            _lock: lock,
        };
        let handle = std::thread::Builder::new()
            .name("acct-spool".into())
            .spawn(move || writer.run(&rx))
            .map_err(io("start the writer thread", &path))?;
        Ok(Spool {
            inner: Arc::new(Inner {
                path,
                retry_interval: config.retry_interval,
                shared,
                jobs: Some(tx),
                writer: Some(handle),
                delivering: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The spool file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Appends a record and returns once it is fsync'd (concurrent pushes
    /// share one fsync), with its sequence number. `attributes` are the
    /// whole Accounting-Request but Message-Authenticator, stored as they
    /// are; they must include Acct-Status-Type. Records are delivered in
    /// the order of their sequence numbers.
    pub async fn push(&self, attributes: Vec<Attribute>) -> Result<u64, SpoolError> {
        check_record(&attributes)?;
        let closed = || SpoolError::Closed {
            path: self.inner.path.clone(),
        };
        let jobs = self.inner.jobs.as_ref().ok_or_else(closed)?;
        let (done, rx) = oneshot::channel();
        let seq = {
            // Numbered and queued under one lock: the file holds records
            // in sequence order.
            let mut state = self.inner.shared.state();
            let seq = state.next_seq;
            let record = Record {
                seq,
                pushed_unix_ms: unix_ms(),
                attributes,
            };
            jobs.send(Job::Push { record, done })
                .map_err(|_| closed())?;
            state.next_seq += 1;
            seq
        };
        match rx.await {
            Ok(Ok(())) => Ok(seq),
            Ok(Err(source)) => Err(SpoolError::Io {
                path: self.inner.path.clone(),
                what: "append a record",
                source,
            }),
            Err(_) => Err(closed()),
        }
    }

    /// Records durable and not yet acknowledged (a push still waiting for
    /// its fsync is not counted).
    pub fn pending(&self) -> usize {
        self.inner.shared.state().pending.len()
    }

    /// Counters so far.
    pub fn stats(&self) -> SpoolStatsSnapshot {
        let s = &self.inner.shared;
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SpoolStatsSnapshot {
            pushed: r(&s.pushed),
            delivered: r(&s.delivered),
            send_failures: r(&s.send_failures),
            pending: self.pending() as u64,
            fsyncs: r(&s.fsyncs),
            compactions: r(&s.compactions),
        }
    }

    /// Removes the head record `seq` after a server answered it and queues
    /// its acknowledgement (written and fsync'd with the next batch).
    fn acknowledge(&self, seq: u64) {
        let shared = &self.inner.shared;
        let mut state = shared.state();
        if state.pending.front().is_some_and(|r| r.seq == seq) {
            state.pending.pop_front();
            Shared::inc(&shared.delivered);
            if let Some(jobs) = &self.inner.jobs {
                // A failed send means the writer is gone: the record comes
                // back after a restart and is sent again.
                let _ = jobs.send(Job::Ack(seq));
            }
        }
    }
}

/// Replays spool file contents held in memory, as [`Spool::open`] replays
/// the file: the number of records still pending, or the 1-based line and
/// the problem that makes the bytes unusable. For tools and the fuzz
/// target; it never panics.
pub fn replay_bytes(bytes: &[u8]) -> Result<usize, (usize, String)> {
    format::replay(bytes)
        .map(|r| r.pending.len())
        .map_err(|b| (b.line, b.problem))
}

#[cfg(test)]
mod tests;
