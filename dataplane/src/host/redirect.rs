//! Control-packet redirect between the user plane and the control plane over GTP-U.
//!
//! TS 29.244 section 5.3 / BBF TR-459 CPR: frames the pipeline classifies as control traffic
//! (ARP, DHCP, frames from unknown subscribers) travel to the CP as the payload of a G-PDU
//! (GTP-U message type 255, TS 29.281) over UDP 2152, the TEID naming the access port they
//! arrived on; the payload is the complete Ethernet frame as received, VLAN tags included.
//! The CP answers with the same framing and the UP transmits the inner frame unchanged on
//! access port TEID.
//!
//! Two threads share one UDP socket bound to the UP's GTP-U address:
//! - the **sender** drains the worker's [`FrameQueue`] and sends one G-PDU per frame to the
//!   CP's GTP-U address (it sleeps in `park_timeout`; the worker unparks it after a burst
//!   that queued frames);
//! - the **receiver** decodes G-PDUs from the CP, checks the TEID names an access port and
//!   queues (port, frame) for the worker, waking it if it sleeps. Anything else is counted
//!   in [`RedirectStats::malformed`] and dropped.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

pub use crate::cpr::{GtpuDrop, decode_gpdu, encode_gpdu};
use crate::host::channel::{FrameQueue, PACKET_BUF_CAPACITY};
use crate::host::wake::IdleWaker;
use crate::wire::gtpu;

/// Redirect counters, shared with the metrics exporter.
#[derive(Debug, Default)]
pub struct RedirectStats {
    /// G-PDUs sent to the CP.
    pub tx_packets: AtomicU64,
    /// G-PDUs from the CP queued for transmission on an access port.
    pub rx_packets: AtomicU64,
    /// Datagrams dropped: not GTP-U v1, not a G-PDU, bad length, TEID not an access port,
    /// inner frame shorter than an Ethernet header.
    pub malformed: AtomicU64,
    /// Frames from the CP dropped because the queue to the worker was full.
    pub inject_queue_full: AtomicU64,
    /// `send_to` failures.
    pub send_errors: AtomicU64,
    /// Datagrams from a source other than the CP's address, dropped.
    pub foreign: AtomicU64,
}

/// Starts the sender thread: frames from `to_cp` go to `cp` as G-PDUs until `stop`.
pub fn spawn_sender(
    socket: UdpSocket,
    cp: SocketAddrV4,
    to_cp: Arc<FrameQueue>,
    stats: Arc<RedirectStats>,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("vbng-gtpu-tx".into())
        .spawn(move || {
            let mut out = vec![0u8; gtpu::HEADER_LEN + PACKET_BUF_CAPACITY];
            while !stop.load(Ordering::Relaxed) {
                let mut sent_any = false;
                while let Some(buf) = to_cp.pop() {
                    sent_any = true;
                    if let Some(len) = encode_gpdu(buf.port(), buf.data(), &mut out) {
                        match socket.send_to(&out[..len], cp) {
                            Ok(_) => stats.tx_packets.fetch_add(1, Ordering::Relaxed),
                            Err(_) => stats.send_errors.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                    to_cp.recycle(buf);
                }
                if !sent_any {
                    std::thread::park_timeout(Duration::from_millis(50));
                }
            }
        })
}

/// True if a datagram from `from` may inject frames: its source IP is the CP's (any port).
/// Pure.
pub fn peer_allowed(from: SocketAddr, cp_ip: Ipv4Addr) -> bool {
    match from {
        SocketAddr::V4(a) => *a.ip() == cp_ip,
        SocketAddr::V6(a) => a.ip().to_ipv4_mapped() == Some(cp_ip),
    }
}

/// Starts the receiver thread: G-PDUs from the CP (source IP `cp_ip`) are queued on
/// `from_cp` for the worker (woken through `waker`) until `stop`.
pub fn spawn_receiver(
    socket: UdpSocket,
    cp_ip: Ipv4Addr,
    access_ports: usize,
    from_cp: Arc<FrameQueue>,
    waker: Arc<IdleWaker>,
    stats: Arc<RedirectStats>,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    std::thread::Builder::new()
        .name("vbng-gtpu-rx".into())
        .spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !stop.load(Ordering::Relaxed) {
                let n = match socket.recv_from(&mut buf) {
                    Ok((n, from)) if peer_allowed(from, cp_ip) => n,
                    Ok(_) => {
                        stats.foreign.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock
                                | io::ErrorKind::TimedOut
                                | io::ErrorKind::Interrupted
                        ) =>
                    {
                        continue;
                    }
                    Err(_) => {
                        // ICMP port unreachable from a previous send and the like.
                        continue;
                    }
                };
                match decode_gpdu(&buf[..n], access_ports) {
                    Ok((port, frame)) => {
                        if from_cp.push(port, frame) {
                            stats.rx_packets.fetch_add(1, Ordering::Relaxed);
                            waker.wake();
                        } else {
                            stats.inject_queue_full.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        stats.malformed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 0x11]);
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x64, 0x08, 0x06]);
        f.extend_from_slice(&[0u8; 28]);
        f
    }

    #[test]
    fn gpdu_golden_header_and_round_trip() {
        let f = frame();
        let mut out = [0u8; 128];
        let n = encode_gpdu(1, &f, &mut out).unwrap();
        assert_eq!(n, 8 + f.len());
        // Flags 0x30 (v1, PT=1), type 255, length, TEID 1.
        assert_eq!(&out[..8], &[0x30, 0xff, 0x00, f.len() as u8, 0, 0, 0, 1]);
        assert_eq!(decode_gpdu(&out[..n], 2), Ok((1, &f[..])));
    }

    #[test]
    fn bad_datagrams_are_rejected() {
        let f = frame();
        let mut out = [0u8; 128];
        let n = encode_gpdu(3, &f, &mut out).unwrap();
        assert_eq!(
            decode_gpdu(&out[..n], 2),
            Err(GtpuDrop::BadTeid { teid: 3, ports: 2 })
        );
        assert!(matches!(
            decode_gpdu(&out[..5], 4),
            Err(GtpuDrop::Malformed(_))
        ));
        let mut echo = out;
        echo[1] = 1;
        assert_eq!(decode_gpdu(&echo[..n], 4), Err(GtpuDrop::NotGpdu(1)));
        let n = encode_gpdu(0, &f[..10], &mut out).unwrap();
        assert_eq!(decode_gpdu(&out[..n], 1), Err(GtpuDrop::Runt(10)));
        assert_eq!(encode_gpdu(0, &f, &mut [0u8; 20]), None);
    }

    #[test]
    fn sender_and_receiver_over_loopback() {
        let up = UdpSocket::bind("127.0.0.1:0").unwrap();
        let cp = UdpSocket::bind("127.0.0.1:0").unwrap();
        cp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let cp_addr = match cp.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!(),
        };
        let up_addr = up.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(RedirectStats::default());
        let to_cp = Arc::new(FrameQueue::new(8));
        let from_cp = Arc::new(FrameQueue::new(8));
        let waker = Arc::new(IdleWaker::new().unwrap());
        let tx = spawn_sender(
            up.try_clone().unwrap(),
            cp_addr,
            to_cp.clone(),
            stats.clone(),
            stop.clone(),
        )
        .unwrap();
        let rx = spawn_receiver(
            up,
            *cp_addr.ip(),
            2,
            from_cp.clone(),
            waker,
            stats.clone(),
            stop.clone(),
        )
        .unwrap();

        // UP -> CP.
        assert!(to_cp.push(1, &frame()));
        tx.thread().unpark();
        let mut buf = [0u8; 256];
        let (n, from) = cp.recv_from(&mut buf).unwrap();
        assert_eq!(from, up_addr);
        assert_eq!(decode_gpdu(&buf[..n], 2), Ok((1, &frame()[..])));

        // CP -> UP: a malformed datagram, then a good one.
        cp.send_to(&[0x30, 0xff, 0, 50], up_addr).unwrap();
        let n = encode_gpdu(0, &frame(), &mut buf).unwrap();
        cp.send_to(&buf[..n], up_addr).unwrap();
        let got = loop {
            if let Some(b) = from_cp.pop() {
                break b;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert_eq!((got.port(), got.data()), (0, &frame()[..]));
        stop.store(true, Ordering::Relaxed);
        tx.thread().unpark();
        tx.join().unwrap();
        rx.join().unwrap();
        assert_eq!(stats.tx_packets.load(Ordering::Relaxed), 1);
        assert_eq!(stats.rx_packets.load(Ordering::Relaxed), 1);
        assert_eq!(stats.malformed.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn only_the_cp_may_inject() {
        let cp = Ipv4Addr::new(127, 0, 0, 1);
        assert!(peer_allowed("127.0.0.1:2152".parse().unwrap(), cp));
        assert!(peer_allowed("127.0.0.1:40000".parse().unwrap(), cp));
        assert!(!peer_allowed("127.0.0.3:2152".parse().unwrap(), cp));
        assert!(peer_allowed("[::ffff:127.0.0.1]:2152".parse().unwrap(), cp));
    }
}
