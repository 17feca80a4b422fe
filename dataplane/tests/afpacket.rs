//! AF_PACKET port against a real veth pair in a private network namespace (root only).
//!
//! The test creates namespace `vbngt<pid>` with veth `vt<pid>a` <-> `vt<pid>b`, opens both
//! ends as ports from a thread that joined the namespace, and checks that frames sent on one
//! end arrive byte-for-byte on the other: untagged, 802.1Q-tagged (the kernel strips the tag
//! on receive; the port must put it back) and QinQ. A guard deletes the namespace even when
//! an assertion fails. Without root or `ip netns` it prints `SKIPPED: <why>` and passes.

#![cfg(feature = "std")]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use vbng_dataplane::host::afpacket::{AfPacketPort, RingConfig};
use vbng_dataplane::packet::Frame;
use vbng_dataplane::port::Port;
use vbng_dataplane::wire::EthernetAddress;

/// Deletes the namespace when dropped (also on panic).
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Sets up the namespace and veth pair, or says why not.
fn setup(ns: &str, a: &str, b: &str) -> Result<Netns, String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root".into());
    }
    ip(&["netns", "add", ns])?;
    let guard = Netns(ns.to_string());
    ip(&[
        "-n", ns, "link", "add", a, "type", "veth", "peer", "name", b,
    ])?;
    for dev in [a, b] {
        // No IPv6 on the test links: keeps router solicitations out of the rings.
        let _ = Command::new("ip")
            .args(["netns", "exec", ns, "sysctl", "-qw"])
            .arg(format!("net.ipv6.conf.{dev}.disable_ipv6=1"))
            .status();
        ip(&["-n", ns, "link", "set", dev, "up"])?;
    }
    Ok(guard)
}

/// Runs `f` on a thread that entered network namespace `ns`.
fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::Result<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: setns on a namespace fd we opened; it only changes this thread's network
        // namespace, and this thread is dedicated to the test.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
}

const MARK: [u8; 2] = [0x88, 0xb5]; // IEEE local experimental EtherType

fn frame(tags: &[(u16, u16)], seq: u8) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0xbb, 0x01, 0x02, 0, 0, 0, 0xaa, 0x01];
    for &(tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&MARK);
    f.extend_from_slice(b"vbng-afpacket-test");
    f.push(seq);
    f.resize(f.len().max(60), 0);
    f
}

/// True for one of our test frames (any tags).
fn is_ours(d: &[u8]) -> bool {
    d.windows(2 + 18)
        .any(|w| w[..2] == MARK && &w[2..] == b"vbng-afpacket-test")
}

/// Receives our frames on `port` until `want` arrived or 5 s passed.
fn collect(port: &mut AfPacketPort, want: usize) -> Vec<(u8, Vec<u8>)> {
    let mut frames: Vec<Frame> = (0..32).map(|_| Frame::new()).collect();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < want && Instant::now() < deadline {
        let n = port.recv_burst(&mut frames);
        for f in &frames[..n] {
            if is_ours(f.data()) {
                got.push((f.port, f.data().to_vec()));
            }
        }
        if n == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    got
}

#[test]
fn veth_pair_round_trip_keeps_vlan_tags() {
    let pid = std::process::id();
    let (ns, a, b) = (
        format!("vbngt{pid}"),
        format!("vt{pid}a"),
        format!("vt{pid}b"),
    );
    let _guard = match setup(&ns, &a, &b) {
        Ok(g) => g,
        Err(why) => {
            println!("SKIPPED: {why}");
            return;
        }
    };
    let mac_a = ip(&["-n", &ns, "link", "show", &a]).expect("ip link show");
    let mac_a: EthernetAddress = mac_a
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .expect("link/ether in ip link output")
        .parse()
        .expect("MAC");

    let result = in_netns(&ns, move || {
        let rings = RingConfig {
            rx_slots: 256,
            tx_slots: 256,
        };
        let mut pa = AfPacketPort::open(&a, 0, rings).expect("open port a");
        let mut pb = AfPacketPort::open(&b, 1, rings).expect("open port b");
        assert_eq!(
            pa.mac(),
            mac_a,
            "SIOCGIFHWADDR must return the interface MAC"
        );

        // One burst: untagged, 802.1Q C-VLAN 100, QinQ 802.1ad S-VLAN 20 + C-VLAN 100.
        let sent = vec![
            frame(&[], 0),
            frame(&[(0x8100, 100)], 1),
            frame(&[(0x88a8, 20), (0x8100, 100)], 2),
        ];
        for f in &sent {
            pa.send(f).expect("queue frame");
        }
        pa.flush();
        let got = collect(&mut pb, sent.len());
        assert_eq!(got.len(), sent.len(), "frames received on b: {got:?}");
        for ((port, data), want) in got.iter().zip(&sent) {
            assert_eq!(*port, 1);
            assert_eq!(
                data, want,
                "frame must arrive unchanged, VLAN tags included"
            );
        }

        // A bigger burst the other way, in several ring kicks.
        let many: Vec<Vec<u8>> = (0..200u8).map(|i| frame(&[(0x8100, 7)], i)).collect();
        for chunk in many.chunks(32) {
            for f in chunk {
                pb.send(f).expect("queue frame");
            }
            pb.flush();
        }
        let got = collect(&mut pa, many.len());
        assert_eq!(got.len(), many.len());
        assert!(got.iter().zip(&many).all(|((p, d), w)| *p == 0 && d == w));

        // Neither port sees its own transmissions.
        assert!(collect_now(&mut pa).is_empty(), "a saw frames it sent");
        assert!(collect_now(&mut pb).is_empty(), "b saw frames it sent");
        (pa.stats(), pb.stats())
    });
    let (sa, sb) = result.expect("test thread panicked");
    assert_eq!(sa.rx_truncated + sb.rx_truncated, 0);
    assert_eq!(sa.tx_ring_full + sb.tx_ring_full, 0);
}

/// Whatever of our frames is in the RX ring right now.
fn collect_now(port: &mut AfPacketPort) -> Vec<Vec<u8>> {
    let mut frames: Vec<Frame> = (0..32).map(|_| Frame::new()).collect();
    let mut got = Vec::new();
    loop {
        let n = port.recv_burst(&mut frames);
        if n == 0 {
            return got;
        }
        got.extend(
            frames[..n]
                .iter()
                .filter(|f| is_ours(f.data()))
                .map(|f| f.data().to_vec()),
        );
    }
}
