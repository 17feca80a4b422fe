//! RADIUS accounting (RFC 2866): Start, Interim-Update and Stop records of
//! sessions, with the user plane's usage counters, through the durable
//! spool of [`vbng_aaa::spool`].
//!
//! Records are handed to one task that appends them to the spool in the
//! order they were made (so a session's Start always precedes its Stop);
//! the spool fsyncs them before they are sent and keeps them until a server
//! acknowledges them, across RADIUS outages and control plane restarts.
//! A session's Start is on disk before its client gets the DHCPACK.

use std::net::Ipv4Addr;

use tokio::sync::{mpsc, oneshot};
use tracing::error;
use vbng_aaa::dictionary::VBNG_USER_PLANE;
use vbng_aaa::radius::{AttrType, Attribute, acct_status};
use vbng_aaa::spool::Spool;
use vbng_access::dhcpv4::ClientKey;

use super::attributes::SessionAttributes;
use crate::cups::Usage;

/// The session facts a record carries.
#[derive(Debug, Clone)]
pub struct AcctSession {
    /// AAA attributes (User-Name, Acct-Session-Id, Class, ...).
    pub attrs: SessionAttributes,
    /// Framed-IP-Address.
    pub ipv4: Ipv4Addr,
    /// The access line and MAC (Calling-Station-Id, NAS-Port-Id).
    pub key: ClientKey,
    /// Option-82 circuit-id.
    pub circuit_id: Option<Vec<u8>>,
    /// Option-82 remote-id.
    pub remote_id: Option<Vec<u8>>,
    /// Serving user plane's name.
    pub user_plane: String,
    /// Session start, Unix seconds.
    pub started_unix: u64,
    /// A PPPoE session (NAS-Port-Type Virtual, Framed-Protocol PPP).
    pub pppoe: bool,
}

struct Job {
    attributes: Vec<Attribute>,
    done: Option<oneshot::Sender<()>>,
}

/// The accounting front end. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Accounting {
    tx: mpsc::UnboundedSender<Job>,
    nas: Vec<Attribute>,
    vendor_id: u32,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("attributes", &self.attributes.len())
            .finish()
    }
}

impl Accounting {
    /// An accounting front end appending to `spool`, tagging records with
    /// NAS-Identifier `nas_identifier` and NAS-IP-Address `nas_ip`. The
    /// appending task runs until every clone is dropped.
    pub fn new(spool: Spool, nas_identifier: &str, nas_ip: Ipv4Addr, vendor_id: u32) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                if let Err(e) = spool.push(job.attributes).await {
                    error!(error = %e, "accounting record could not be spooled; it is lost");
                }
                if let Some(done) = job.done {
                    let _ = done.send(());
                }
            }
        });
        Accounting {
            tx,
            nas: super::radius::nas_attributes(nas_identifier, nas_ip),
            vendor_id,
        }
    }

    fn submit(&self, attributes: Vec<Attribute>) -> oneshot::Receiver<()> {
        let (done, rx) = oneshot::channel();
        let _ = self.tx.send(Job {
            attributes,
            done: Some(done),
        });
        rx
    }

    /// Spool the Start of `s`; resolves once it is on disk.
    pub async fn start(&self, s: &AcctSession) {
        let attrs = self.record(acct_status::START, s, None, None);
        let _ = self.submit(attrs).await;
    }

    /// Spool an Interim-Update with `usage` (in order, without waiting).
    pub fn interim(&self, s: &AcctSession, usage: Option<Usage>) {
        let attrs = self.record(acct_status::INTERIM_UPDATE, s, usage, None);
        drop(self.submit(attrs));
    }

    /// Spool the Stop of `s` with its final `usage` and Acct-Terminate-Cause
    /// `cause` (in order, without waiting).
    pub fn stop(&self, s: &AcctSession, usage: Option<Usage>, cause: u32) {
        let attrs = self.record(acct_status::STOP, s, usage, Some(cause));
        drop(self.submit(attrs));
    }

    /// The attributes of one record.
    pub fn record(
        &self,
        status: u32,
        s: &AcctSession,
        usage: Option<Usage>,
        cause: Option<u32>,
    ) -> Vec<Attribute> {
        let now = crate::unix_now();
        let mut a = vec![
            Attribute::u32(AttrType::AcctStatusType, status),
            Attribute::new(AttrType::AcctSessionId, s.attrs.acct_session_id.as_bytes()),
            Attribute::new(AttrType::UserName, s.attrs.username.as_bytes()),
            Attribute::new(AttrType::FramedIpAddress, s.ipv4.octets()),
            Attribute::u32(AttrType::AcctAuthentic, s.attrs.authentic.acct_authentic()),
            Attribute::u32(
                AttrType::EventTimestamp,
                u32::try_from(now).unwrap_or(u32::MAX),
            ),
            Attribute::vendor(self.vendor_id, VBNG_USER_PLANE, s.user_plane.as_bytes()),
        ];
        a.extend(self.nas.iter().cloned());
        a.extend(super::radius::access_line_attributes(
            &s.key,
            s.circuit_id.as_deref(),
            s.remote_id.as_deref(),
        ));
        a.extend(super::radius::service_attributes(s.pppoe));
        for class in &s.attrs.class {
            a.push(Attribute::new(AttrType::Class, class.clone()));
        }
        if status != acct_status::START {
            let secs = now.saturating_sub(s.started_unix);
            a.push(Attribute::u32(
                AttrType::AcctSessionTime,
                u32::try_from(secs).unwrap_or(u32::MAX),
            ));
            let u = usage.unwrap_or_default();
            a.extend(counters(&u));
        }
        if let Some(cause) = cause {
            a.push(Attribute::u32(AttrType::AcctTerminateCause, cause));
        }
        a
    }
}

/// Octet counters split into 32-bit octets and Gigawords (RFC 2869 5.1),
/// packet counters saturated at 2^32 - 1. Input is what the subscriber
/// sent (uplink), output what it received.
pub fn counters(u: &Usage) -> Vec<Attribute> {
    let low = |b: u64| (b & 0xffff_ffff) as u32;
    let giga = |b: u64| u32::try_from(b >> 32).unwrap_or(u32::MAX);
    let sat = |p: u64| u32::try_from(p).unwrap_or(u32::MAX);
    vec![
        Attribute::u32(AttrType::AcctInputOctets, low(u.ul_bytes)),
        Attribute::u32(AttrType::AcctInputGigawords, giga(u.ul_bytes)),
        Attribute::u32(AttrType::AcctOutputOctets, low(u.dl_bytes)),
        Attribute::u32(AttrType::AcctOutputGigawords, giga(u.dl_bytes)),
        Attribute::u32(AttrType::AcctInputPackets, sat(u.ul_packets)),
        Attribute::u32(AttrType::AcctOutputPackets, sat(u.dl_packets)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(attrs: &[Attribute], t: AttrType) -> u32 {
        attrs.iter().find(|a| a.typ == t).unwrap().as_u32().unwrap()
    }

    #[test]
    fn gigawords_carry_the_high_bits() {
        let u = Usage {
            ul_bytes: 5 * (1 << 32) + 7,
            dl_bytes: 123,
            ul_packets: 10,
            dl_packets: u64::MAX,
        };
        let a = counters(&u);
        assert_eq!(value(&a, AttrType::AcctInputOctets), 7);
        assert_eq!(value(&a, AttrType::AcctInputGigawords), 5);
        assert_eq!(value(&a, AttrType::AcctOutputOctets), 123);
        assert_eq!(value(&a, AttrType::AcctOutputGigawords), 0);
        assert_eq!(value(&a, AttrType::AcctInputPackets), 10);
        assert_eq!(value(&a, AttrType::AcctOutputPackets), u32::MAX);
    }
}
