//! Opening an existing tap interface, possibly in another network namespace, for QEMU to
//! inherit (`-netdev tap,fd=N`). The interface and its addresses can then be set up
//! before the instance starts, so that the first frame it forwards is not held back by
//! the host's own configuration.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Opens tap `ifname` (creating it if absent) in namespace `netns` (this process's own if
/// None). The descriptor is inheritable (no close-on-exec): pass it to one child and drop
/// it afterwards.
pub fn open(ifname: &str, netns: Option<&str>) -> io::Result<OwnedFd> {
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ {
        return Err(io::Error::other(format!(
            "tap name `{ifname}`: 1 to 15 characters"
        )));
    }
    let ifname = ifname.to_string();
    let netns = netns.map(str::to_string);
    // A thread of its own, so that entering the namespace changes nothing else.
    std::thread::spawn(move || {
        if let Some(ns) = netns {
            let path = CString::new(format!("/var/run/netns/{ns}")).map_err(io::Error::other)?;
            // SAFETY: a valid NUL-terminated path; the result is checked.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::other(format!(
                    "network namespace {ns}: {}",
                    io::Error::last_os_error()
                )));
            }
            // SAFETY: `fd` is an open namespace file; setns affects this thread only.
            let entered = unsafe { libc::setns(fd, libc::CLONE_NEWNET) };
            // SAFETY: `fd` was opened above and is not used afterwards.
            unsafe { libc::close(fd) };
            if entered != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let dev = c"/dev/net/tun";
        // SAFETY: a valid NUL-terminated path; the result is checked.
        let fd = unsafe { libc::open(dev.as_ptr(), libc::O_RDWR) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: IFF_TAP | IFF_NO_PI,
            _pad: [0; 22],
        };
        req.name[..ifname.len()].copy_from_slice(ifname.as_bytes());
        // SAFETY: TUNSETIFF reads and writes an ifreq, which `req` is laid out as.
        if unsafe { libc::ioctl(fd, TUNSETIFF, &mut req) } != 0 {
            return Err(io::Error::other(format!(
                "tap {ifname}: {}",
                io::Error::last_os_error()
            )));
        }
        Ok(owned)
    })
    .join()
    .map_err(|_| io::Error::other("tap thread panicked"))?
}
