//! Raw Ethernet frames in and out of a lab interface (AF_PACKET), used to
//! send packets a normal socket cannot (a spoofed source address) and to
//! watch what really arrives on the far side.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::LabError;
use super::netns::in_netns;

/// An AF_PACKET socket bound to one interface of the calling thread's
/// network namespace. Closed on drop.
pub(crate) struct RawSocket {
    fd: i32,
}

impl RawSocket {
    pub(crate) fn open(iface: &str) -> std::io::Result<Self> {
        let name = std::ffi::CString::new(iface)
            .map_err(|_| std::io::Error::other("interface name has a NUL byte"))?;
        // SAFETY: `name` is a valid NUL-terminated string for the call.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            return Err(std::io::Error::last_os_error());
        }
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2) call; the result is checked below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let sock = RawSocket { fd };
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = proto;
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: `addr` is a valid sockaddr_ll and the length matches it.
        let rc = unsafe {
            libc::bind(
                sock.fd,
                (&raw const addr).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        // SAFETY: SO_RCVTIMEO takes a timeval of exactly this size.
        let rc = unsafe {
            libc::setsockopt(
                sock.fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const timeout).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let one: i32 = 1;
        for option in [libc::PACKET_AUXDATA, libc::PACKET_IGNORE_OUTGOING] {
            // SAFETY: both options take an int flag of exactly this size.
            let rc = unsafe {
                libc::setsockopt(
                    sock.fd,
                    libc::SOL_PACKET,
                    option,
                    (&raw const one).cast(),
                    std::mem::size_of::<i32>() as u32,
                )
            };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(sock)
    }

    pub(crate) fn send(&self, frame: &[u8]) -> std::io::Result<()> {
        // SAFETY: the pointer and length describe the live `frame` slice.
        let n = unsafe { libc::send(self.fd, frame.as_ptr().cast(), frame.len(), 0) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Receives one frame into `buf`; `None` when the receive timeout passed.
    /// The kernel lifts a VLAN tag out of received frames into packet
    /// metadata; it is put back in place, so the frame reads as on the wire.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> std::io::Result<Option<usize>> {
        const TAG: usize = 4;
        if buf.len() <= TAG + 14 {
            return Err(std::io::Error::other("receive buffer too small"));
        }
        let mut iov = libc::iovec {
            iov_base: buf[TAG..].as_mut_ptr().cast(),
            iov_len: buf.len() - TAG,
        };
        let mut control = [0u64; 16];
        // SAFETY: msghdr is plain data; all-zero is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        // SAFETY: `msg` points at `iov` (inside the live `buf`) and at
        // `control`, both valid for the stated lengths during the call.
        let n = unsafe { libc::recvmsg(self.fd, &raw mut msg, 0) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            return match err.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => Ok(None),
                _ => Err(err),
            };
        }
        let n = n as usize;
        let mut tag = None;
        // SAFETY: `msg` was filled by recvmsg; the CMSG macros walk the
        // control buffer it describes and stay within msg_controllen.
        let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&raw const msg) };
        while !cmsg.is_null() {
            // SAFETY: `cmsg` is non-null and points into `control`.
            let header = unsafe { &*cmsg };
            if header.cmsg_level == libc::SOL_PACKET && header.cmsg_type == libc::PACKET_AUXDATA {
                // SAFETY: `cmsg` is a valid control message header.
                let data = unsafe { libc::CMSG_DATA(cmsg) };
                // SAFETY: PACKET_AUXDATA carries a tpacket_auxdata at `data`;
                // it may be unaligned, so it is read with read_unaligned.
                let aux: libc::tpacket_auxdata = unsafe { std::ptr::read_unaligned(data.cast()) };
                if aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0 {
                    let tpid = if aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                        aux.tp_vlan_tpid
                    } else {
                        0x8100
                    };
                    tag = Some((tpid, aux.tp_vlan_tci));
                }
            }
            // SAFETY: as for CMSG_FIRSTHDR above.
            cmsg = unsafe { libc::CMSG_NXTHDR(&raw const msg, cmsg) };
        }
        match tag {
            Some((tpid, tci)) if n >= 12 => {
                buf.copy_within(TAG..TAG + 12, 0);
                buf[12..14].copy_from_slice(&tpid.to_be_bytes());
                buf[14..16].copy_from_slice(&tci.to_be_bytes());
                Ok(Some(n + TAG))
            }
            _ => {
                buf.copy_within(TAG..TAG + n, 0);
                Ok(Some(n))
            }
        }
    }
}

impl Drop for RawSocket {
    fn drop(&mut self) {
        // SAFETY: `fd` is owned by this socket and closed exactly once.
        unsafe { libc::close(self.fd) };
    }
}

/// Sends each frame out of `iface` in namespace `ns`.
pub fn send_frames(ns: &str, iface: &str, frames: Vec<Vec<u8>>) -> Result<(), LabError> {
    let iface = iface.to_owned();
    in_netns(ns, move || -> std::io::Result<()> {
        let sock = RawSocket::open(&iface)?;
        for frame in &frames {
            sock.send(frame)?;
        }
        Ok(())
    })?
    .map_err(|e| LabError::Command(format!("raw send: {e}")))
}

/// Sends `frames` out of `iface` in namespace `ns` from one socket, `batch`
/// at a time with `pause` between batches (a paced flood).
pub fn send_paced(
    ns: &str,
    iface: &str,
    frames: Vec<Vec<u8>>,
    batch: usize,
    pause: Duration,
) -> Result<(), LabError> {
    let iface = iface.to_owned();
    in_netns(ns, move || -> std::io::Result<()> {
        let sock = RawSocket::open(&iface)?;
        for chunk in frames.chunks(batch.max(1)) {
            for frame in chunk {
                // A full socket buffer under a flood is expected: skip.
                let _ = sock.send(frame);
            }
            std::thread::sleep(pause);
        }
        Ok(())
    })?
    .map_err(|e| LabError::Command(format!("raw send: {e}")))
}

/// Collects, in the background, every frame seen on an interface that
/// contains a marker byte string.
#[derive(Debug)]
pub struct Capture {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<std::io::Result<Vec<Vec<u8>>>>,
}

impl Capture {
    /// Starts capturing on `iface` in namespace `ns`; returns once the
    /// socket is open, so nothing sent afterwards is missed.
    pub fn start(ns: &str, iface: &str, marker: &[u8]) -> Result<Self, LabError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let path = format!("/var/run/netns/{ns}");
        let ns_file =
            std::fs::File::open(&path).map_err(|e| LabError::Command(format!("{path}: {e}")))?;
        let (iface, marker, stop2) = (iface.to_owned(), marker.to_vec(), stop.clone());
        let thread = std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            // SAFETY: the namespace file is open; setns only moves this thread.
            if unsafe { libc::setns(ns_file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                let err = std::io::Error::last_os_error();
                let _ = ready_tx.send(Err(err.to_string()));
                return Err(err);
            }
            let sock = match RawSocket::open(&iface) {
                Ok(s) => s,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return Err(e);
                }
            };
            let _ = ready_tx.send(Ok(()));
            let mut seen = Vec::new();
            let mut buf = vec![0u8; 4096];
            while !stop2.load(Ordering::Relaxed) {
                if let Some(n) = sock.recv(&mut buf)? {
                    let frame = &buf[..n];
                    if frame.windows(marker.len()).any(|w| w == marker.as_slice()) {
                        seen.push(frame.to_vec());
                    }
                }
            }
            Ok(seen)
        });
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => Ok(Capture { stop, thread }),
            Ok(Err(e)) => Err(LabError::Command(format!(
                "capture on {ns}/{}: {e}",
                "iface"
            ))),
            Err(_) => Err(LabError::Command("capture thread did not start".into())),
        }
    }

    /// Stops capturing and returns the matching frames.
    pub fn finish(self) -> Result<Vec<Vec<u8>>, LabError> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok(Ok(frames)) => Ok(frames),
            Ok(Err(e)) => Err(LabError::Command(format!("capture: {e}"))),
            Err(_) => Err(LabError::Command("capture thread panicked".into())),
        }
    }
}
