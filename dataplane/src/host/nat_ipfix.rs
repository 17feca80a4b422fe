//! Sends the NAT's port-block events to IPFIX collectors over UDP
//! ([`crate::nat::ipfix`] builds the messages).
//!
//! UDP loses messages without telling: the JSON log file stays the complete record, and the
//! collectors get what the network delivers. A collector that refused a message (its
//! host answered "port unreachable", or the route is gone) gets the template again with
//! the next message that reaches it.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::host::worker::NatLogRecord;
use crate::nat::ipfix::IpfixExporter;

/// What the export has done, for `/metrics`.
#[derive(Debug, Default)]
pub struct IpfixStats {
    /// Messages sent (to all collectors).
    pub messages: AtomicU64,
    /// Data records sent (to all collectors).
    pub records: AtomicU64,
    /// Messages the socket refused to send.
    pub send_errors: AtomicU64,
}

/// One collector: its socket (connected, so that its errors come back) and exporter state.
#[derive(Debug)]
struct Collector {
    address: SocketAddr,
    socket: UdpSocket,
    exporter: IpfixExporter,
    failing: bool,
}

/// The export to every configured collector.
#[derive(Debug)]
pub struct IpfixSender {
    collectors: Vec<Collector>,
    stats: Arc<IpfixStats>,
}

impl IpfixSender {
    /// Opens a socket per collector, observation domain `domain`. Errors name the collector.
    pub fn new(
        collectors: &[SocketAddr],
        domain: u32,
        stats: Arc<IpfixStats>,
    ) -> Result<IpfixSender, String> {
        let collectors = collectors
            .iter()
            .map(|&address| {
                let any: SocketAddr = if address.is_ipv4() {
                    (Ipv4Addr::UNSPECIFIED, 0).into()
                } else {
                    (Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = UdpSocket::bind(any)
                    .and_then(|s| s.connect(address).map(|()| s))
                    .map_err(|e| format!("nat IPFIX collector {address}: {e}"))?;
                Ok(Collector {
                    address,
                    socket,
                    exporter: IpfixExporter::new(domain),
                    failing: false,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(IpfixSender { collectors, stats })
    }

    /// Exports `records` to every collector, at Unix second `export_s`. Returns the
    /// collectors that started failing with this batch, with the error, for the caller
    /// to report once; a collector that recovers is reported by the next success only
    /// through its counters.
    pub fn send(
        &mut self,
        records: &[NatLogRecord],
        export_s: u32,
    ) -> Vec<(SocketAddr, io::Error)> {
        let mut newly_failing = Vec::new();
        let events = records.iter().map(|r| {
            (
                r.unix_base_ns.saturating_add(r.event.time_ns) / 1_000_000,
                &r.event,
            )
        });
        for c in &mut self.collectors {
            let mut error = None;
            let mut sent_records = 0u64;
            let mut sent = 0u64;
            c.exporter
                .export(events.clone(), export_s, |message, records| {
                    match c.socket.send(message) {
                        Ok(_) => {
                            sent += 1;
                            sent_records += u64::from(records);
                        }
                        Err(e) => {
                            self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
                            error.get_or_insert(e);
                        }
                    }
                });
            self.stats.messages.fetch_add(sent, Ordering::Relaxed);
            self.stats
                .records
                .fetch_add(sent_records, Ordering::Relaxed);
            match error {
                Some(e) => {
                    // Whatever got through, the collector may have missed the template.
                    c.exporter.resend_template();
                    if !c.failing {
                        c.failing = true;
                        newly_failing.push((c.address, e));
                    }
                }
                None => c.failing = false,
            }
        }
        newly_failing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::{NatLogEvent, NatLogKind, NatLogReason};
    use std::time::Duration;

    fn record(first_port: u16) -> NatLogRecord {
        NatLogRecord {
            unix_base_ns: 1_700_000_000_000_000_000,
            event: NatLogEvent {
                kind: NatLogKind::BlockAllocated,
                time_ns: 2_000_000,
                session_tag: 1,
                inside: Ipv4Addr::new(100, 64, 0, 2),
                outside: Ipv4Addr::new(192, 0, 2, 7),
                first_port,
                last_port: first_port + 63,
                reason: NatLogReason::NewFlow,
            },
        }
    }

    fn collector() -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s
    }

    fn receive(s: &UdpSocket) -> Vec<u8> {
        let mut buf = [0u8; 2048];
        let n = s.recv(&mut buf).expect("an IPFIX message");
        buf[..n].to_vec()
    }

    #[test]
    fn collectors_receive_the_events_and_the_counters_follow() {
        let (a, b) = (collector(), collector());
        let stats = Arc::new(IpfixStats::default());
        let addrs = [a.local_addr().unwrap(), b.local_addr().unwrap()];
        let mut sender = IpfixSender::new(&addrs, 5, stats.clone()).unwrap();
        assert!(
            sender
                .send(&[record(1024), record(1088)], 1_700_000_001)
                .is_empty()
        );
        for s in [&a, &b] {
            let m = receive(s);
            assert_eq!(&m[0..2], &[0, 10]);
            assert_eq!(u32::from_be_bytes(m[12..16].try_into().unwrap()), 5);
            // Header, template set, data set of two records.
            assert_eq!(m.len(), 16 + 40 + 4 + 2 * 25);
            let first = 16 + 40 + 4;
            assert_eq!(
                u64::from_be_bytes(m[first..first + 8].try_into().unwrap()),
                1_700_000_000_002
            );
        }
        assert_eq!(stats.messages.load(Ordering::Relaxed), 2);
        assert_eq!(stats.records.load(Ordering::Relaxed), 4);
        assert_eq!(stats.send_errors.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_collector_that_went_away_is_reported_once_and_gets_the_template_again() {
        let gone = collector();
        let address = gone.local_addr().unwrap();
        let stats = Arc::new(IpfixStats::default());
        let mut sender = IpfixSender::new(&[address], 1, stats.clone()).unwrap();
        assert!(sender.send(&[record(1024)], 100).is_empty());
        let with_template = receive(&gone);
        assert_eq!(&with_template[16..18], &[0, 2]);
        drop(gone);
        // The first send after the port closed succeeds; its ICMP port unreachable makes
        // the connected socket's next send fail.
        let mut reported = Vec::new();
        for i in 0..20 {
            reported.extend(sender.send(&[record(1024 + i)], 101));
            if !reported.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(reported.len(), 1, "reported {reported:?}");
        assert_eq!(reported[0].0, address);
        assert!(stats.send_errors.load(Ordering::Relaxed) >= 1);
        assert!(sender.send(&[record(2000)], 102).len() <= 1);
        // Back: the next message that arrives carries the template.
        let back = UdpSocket::bind(address).expect("rebind the collector's port");
        back.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut got = None;
        for _ in 0..20 {
            sender.send(&[record(3000)], 103);
            let mut buf = [0u8; 2048];
            if let Ok(n) = back.recv(&mut buf) {
                got = Some(buf[..n].to_vec());
                break;
            }
        }
        let m = got.expect("a message after the collector came back");
        assert_eq!(&m[16..18], &[0, 2], "the template comes first again");
    }
}
