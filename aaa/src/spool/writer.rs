//! The writer thread: appends entries in batches with one fsync each, and
//! rewrites (compacts) the file.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;

use tokio::sync::oneshot;

use super::format::{self, Record};
use super::{Shared, SpoolError, sibling};

/// Work for the writer thread.
#[derive(Debug)]
pub(super) enum Job {
    /// Append a record; `done` completes once it is fsync'd.
    Push {
        record: Record,
        done: oneshot::Sender<std::io::Result<()>>,
    },
    /// Append the acknowledgement of a delivered record.
    Ack(u64),
}

/// Writes the header (with `next_seq`, the number of the next push) and
/// `records` to `<path>.tmp`, fsyncs it,
/// renames it over `path` and fsyncs the directory. Returns the new file,
/// positioned at its end for appending, and its length.
pub(super) fn rewrite(
    path: &Path,
    next_seq: u64,
    records: &[Record],
) -> Result<(File, u64), SpoolError> {
    let tmp = sibling(path, ".tmp");
    let io = |what: &'static str, p: &Path| {
        let path = p.to_path_buf();
        move |source| SpoolError::Io { path, what, source }
    };
    let mut text = format::header_line(next_seq);
    for r in records {
        text.push_str(&format::record_line(r));
    }
    let mut file = File::create(&tmp).map_err(io("create the temporary file", &tmp))?;
    file.write_all(text.as_bytes())
        .map_err(io("write the temporary file", &tmp))?;
    file.sync_all()
        .map_err(io("fsync the temporary file", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("rename the temporary file", &tmp))?;
    // The rename is durable once the directory is.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), error = %e, "fsync of the accounting spool directory failed");
    }
    Ok((file, text.len() as u64))
}

/// The writer thread's state.
#[derive(Debug)]
pub(super) struct Writer {
    pub path: PathBuf,
    /// The spool file, positioned at its end.
    pub file: File,
    /// Bytes in the file.
    pub len: u64,
    /// Records in the file without an acknowledgement in it.
    pub unacked: usize,
    /// Sequence number after the last record in the file.
    pub next_seq: u64,
    pub compact_bytes: u64,
    pub shared: Arc<Shared>,
    /// Acknowledgements whose write failed, retried with the next batch.
    pub retry_acks: Vec<u64>,
    /// Why the file can no longer be appended to, if so.
    pub broken: Option<String>,
    /// Holds the lock on `<path>.lock` while the writer runs.
    pub _lock: File,
}

impl Writer {
    /// Runs until every sender is dropped, one batch per wakeup.
    pub fn run(mut self, rx: &std_mpsc::Receiver<Job>) {
        while let Ok(first) = rx.recv() {
            let mut jobs = vec![first];
            jobs.extend(rx.try_iter());
            self.batch(jobs);
        }
    }

    pub(super) fn batch(&mut self, jobs: Vec<Job>) {
        let mut text = String::new();
        let mut acks = std::mem::take(&mut self.retry_acks);
        for job in &jobs {
            match job {
                Job::Push { record, .. } => text.push_str(&format::record_line(record)),
                Job::Ack(seq) => acks.push(*seq),
            }
        }
        for &seq in &acks {
            text.push_str(&format::ack_line(seq));
        }
        if let Err(e) = self.append(text.as_bytes()) {
            tracing::error!(
                file = %self.path.display(),
                error = %e,
                "appending to the accounting spool failed"
            );
            self.retry_acks = acks;
            for job in jobs {
                if let Job::Push { done, .. } = job {
                    let _ = done.send(Err(std::io::Error::new(e.kind(), e.to_string())));
                }
            }
            return;
        }
        Shared::inc(&self.shared.fsyncs);
        self.unacked = self.unacked.saturating_sub(acks.len());
        let mut done = Vec::new();
        {
            let mut state = self.shared.state();
            for job in jobs {
                if let Job::Push { record, done: d } = job {
                    self.next_seq = record.seq + 1;
                    self.unacked += 1;
                    state.pending.push_back(Arc::new(record));
                    Shared::inc(&self.shared.pushed);
                    done.push(d);
                }
            }
        }
        if !done.is_empty() {
            self.shared.notify.notify_waiters();
        }
        for d in done {
            let _ = d.send(Ok(()));
        }
        if self.unacked == 0 && self.len > self.compact_bytes {
            self.compact();
        }
    }

    /// Appends and fsyncs. On failure the file is cut back to its last good
    /// length, so a half-written batch is not followed by later entries;
    /// if even that fails, the file is no longer written to.
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if let Some(why) = &self.broken {
            return Err(std::io::Error::other(why.clone()));
        }
        match self
            .file
            .write_all(bytes)
            .and_then(|()| self.file.sync_data())
        {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                let restored = self.file.set_len(self.len).and_then(|()| {
                    std::io::Seek::seek(&mut self.file, std::io::SeekFrom::Start(self.len))?;
                    self.file.sync_data()
                });
                if let Err(e2) = restored {
                    self.broken = Some(format!(
                        "a write failed ({e}) and the file could not be cut back ({e2}); reopen the spool"
                    ));
                }
                Err(e)
            }
        }
    }

    /// Everything in the file is acknowledged: start a new one.
    fn compact(&mut self) {
        match rewrite(&self.path, self.next_seq, &[]) {
            Ok((file, len)) => {
                tracing::debug!(file = %self.path.display(), before = self.len, "accounting spool compacted");
                self.file = file;
                self.len = len;
                Shared::inc(&self.shared.compactions);
            }
            // The old file is still in place and valid: keep appending.
            Err(e) => tracing::warn!(error = %e, "compacting the accounting spool failed"),
        }
    }
}
