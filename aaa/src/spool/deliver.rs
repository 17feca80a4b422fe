//! Delivery of pending records through the RADIUS client.

use std::sync::Arc;

use tokio::sync::watch;

use super::format::Record;
use super::{Shared, Spool, unix_ms};
use crate::client::{Client, Request};
use crate::radius::{AttrType, Attribute, Code};

/// The Accounting-Request for `record` sent at `now_unix_ms`: its
/// attributes with Acct-Delay-Time raised by the whole seconds since the
/// push (RFC 2866 5.2), or added if absent.
pub(super) fn request_for(record: &Record, now_unix_ms: u64) -> Request {
    let waited = now_unix_ms.saturating_sub(record.pushed_unix_ms) / 1000;
    let waited = u32::try_from(waited).unwrap_or(u32::MAX);
    let mut attributes = record.attributes.clone();
    match attributes
        .iter_mut()
        .find(|a| a.typ == AttrType::AcctDelayTime)
    {
        Some(a) => {
            let before = a.as_u32().unwrap_or(0);
            *a = Attribute::u32(AttrType::AcctDelayTime, before.saturating_add(waited));
        }
        None => attributes.push(Attribute::u32(AttrType::AcctDelayTime, waited)),
    }
    Request {
        code: Code::AccountingRequest,
        attributes,
        password: None,
    }
}

/// Completes when `shutdown` turns true or its sender is dropped.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|&stop| stop).await;
}

impl Spool {
    /// Delivers pending records in order through `client` until
    /// `shutdown` turns true (or its sender is dropped): one record at a
    /// time, as an Accounting-Request with Acct-Delay-Time. A record that
    /// no server answers with an Accounting-Response stays at the head and
    /// is sent again after [`super::SpoolConfig::retry_interval`], so order
    /// is kept. An answered record is acknowledged at once; its `A` line
    /// is fsync'd with the next batch (see the module docs for what a crash
    /// before that causes: one resend).
    ///
    /// A send in progress at shutdown is abandoned; its record stays
    /// pending. Calls on clones of one spool run one at a time: a second
    /// waits until the first returns.
    pub async fn deliver(&self, client: Arc<Client>, mut shutdown: watch::Receiver<bool>) {
        let _only = tokio::select! {
            guard = self.inner.delivering.lock() => guard,
            () = stopped(&mut shutdown) => return,
        };
        let shared: &Shared = &self.inner.shared;
        let mut failing = false;
        loop {
            if *shutdown.borrow() {
                return;
            }
            // Registered before looking, so a push in between still wakes us.
            let notified = shared.notify.notified();
            let head = shared.state().pending.front().cloned();
            let Some(record) = head else {
                tokio::select! {
                    () = notified => {}
                    () = stopped(&mut shutdown) => return,
                }
                continue;
            };
            let request = request_for(&record, unix_ms());
            let result = tokio::select! {
                r = client.send(&request) => r,
                () = stopped(&mut shutdown) => return,
            };
            let error = match result {
                Ok(r) if r.packet.code == Code::AccountingResponse => {
                    self.acknowledge(record.seq);
                    if failing {
                        tracing::info!(
                            seq = record.seq,
                            pending = self.pending(),
                            "accounting delivery resumed"
                        );
                        failing = false;
                    }
                    continue;
                }
                Ok(r) => format!("answered with {:?}, not Accounting-Response", r.packet.code),
                Err(e) => e.to_string(),
            };
            Shared::inc(&shared.send_failures);
            if failing {
                tracing::debug!(
                    seq = record.seq,
                    error,
                    "accounting record not delivered; retrying"
                );
            } else {
                tracing::warn!(
                    seq = record.seq,
                    pending = self.pending(),
                    error,
                    "accounting record not delivered; holding it and every later record until a server answers"
                );
                failing = true;
            }
            tokio::select! {
                () = tokio::time::sleep(self.inner.retry_interval) => {}
                () = stopped(&mut shutdown) => return,
            }
        }
    }
}
