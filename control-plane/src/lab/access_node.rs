//! A software access node (the OLT or DSLAM in front of a BNG), because the
//! lab's kernel may lack VLAN devices and VLAN-aware bridges.
//!
//! Between a subscriber-facing port and a network-facing port it does what a
//! TR-101 access node does for one line: frames from the subscriber leave
//! tagged with the line's C-VLAN, DHCP requests get a relay agent
//! information option (option 82, RFC 3046) with the line's circuit-id and
//! remote-id inserted (the lightweight relay agent; giaddr stays zero), and
//! frames from the network on that VLAN reach the subscriber untagged, with
//! option 82 removed from DHCP replies.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use vbng_dataplane::wire::EtherType;
use vbng_dataplane::wire::frame::{L2Header, build_ipv4_udp};

use super::LabError;
use super::rawpkt::RawSocket;

const DHCP_SERVER_PORT: u16 = 67;
const DHCP_CLIENT_PORT: u16 = 68;
const DHCP_MAGIC_OFFSET: usize = 236;
const DHCP_OPTIONS_OFFSET: usize = 240;
const OPTION_PAD: u8 = 0;
const OPTION_RELAY_AGENT_INFO: u8 = 82;
const OPTION_END: u8 = 255;

/// The identity an access node stamps on one subscriber line.
#[derive(Clone, Debug)]
pub struct Line {
    /// The line's C-VLAN.
    pub cvlan: u16,
    /// Option 82 sub-option 1 (agent circuit-id).
    pub circuit_id: String,
    /// Option 82 sub-option 2 (agent remote-id).
    pub remote_id: String,
}

/// A running access node: two forwarding threads inside a namespace,
/// stopped on drop.
#[derive(Debug)]
pub struct AccessNode {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl AccessNode {
    /// Starts forwarding between `user_iface` and `network_iface` in `ns`.
    pub fn start(
        ns: &str,
        user_iface: &str,
        network_iface: &str,
        line: Line,
    ) -> Result<Self, LabError> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut node = AccessNode {
            stop: stop.clone(),
            threads: Vec::new(),
        };
        for upstream in [true, false] {
            let (from, to) = if upstream {
                (user_iface, network_iface)
            } else {
                (network_iface, user_iface)
            };
            let (from, to, line, stop) =
                (from.to_owned(), to.to_owned(), line.clone(), stop.clone());
            let path = format!("/var/run/netns/{ns}");
            let ns_file = std::fs::File::open(&path)
                .map_err(|e| LabError::Command(format!("{path}: {e}")))?;
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            node.threads.push(std::thread::spawn(move || {
                use std::os::fd::AsRawFd;
                // SAFETY: the namespace file is open; setns moves only this thread.
                if unsafe { libc::setns(ns_file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    let _ = ready_tx.send(Err(std::io::Error::last_os_error().to_string()));
                    return;
                }
                let sockets = RawSocket::open(&from).and_then(|r| Ok((r, RawSocket::open(&to)?)));
                let (rx, tx) = match sockets {
                    Ok(pair) => pair,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let mut buf = vec![0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    let Ok(Some(n)) = rx.recv(&mut buf) else {
                        continue;
                    };
                    let out = if upstream {
                        from_subscriber(&buf[..n], &line)
                    } else {
                        from_network(&buf[..n], &line)
                    };
                    if let Some(frame) = out {
                        let _ = tx.send(&frame);
                    }
                }
            }));
            match ready_rx.recv_timeout(std::time::Duration::from_secs(5)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(LabError::Command(format!("access node in {ns}: {e}"))),
                Err(_) => return Err(LabError::Command("access node did not start".into())),
            }
        }
        Ok(node)
    }
}

impl Drop for AccessNode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Upstream: tag with the line's C-VLAN; add option 82 to DHCP requests.
/// Frames that already carry a tag are not the subscriber's to send: dropped.
pub fn from_subscriber(frame: &[u8], line: &Line) -> Option<Vec<u8>> {
    let (l2, offset) = L2Header::parse(frame).ok()?;
    if l2.cvlan.is_some() || l2.svlan.is_some() {
        return None;
    }
    let tagged = L2Header {
        cvlan: Some(line.cvlan),
        ..l2
    };
    if let Some(frame) = rewrite_dhcp(&tagged, &frame[offset..], DHCP_SERVER_PORT, |options| {
        insert_option82(options, line)
    }) {
        return Some(frame);
    }
    let mut out = vec![0u8; tagged.buffer_len() + frame.len() - offset];
    tagged.emit(&mut out);
    out[tagged.buffer_len()..].copy_from_slice(&frame[offset..]);
    Some(out)
}

/// Downstream: only the line's C-VLAN passes, untagged; option 82 is taken
/// out of DHCP replies.
pub fn from_network(frame: &[u8], line: &Line) -> Option<Vec<u8>> {
    let (l2, offset) = L2Header::parse(frame).ok()?;
    if l2.svlan.is_some() || l2.cvlan != Some(line.cvlan) {
        return None;
    }
    let untagged = L2Header { cvlan: None, ..l2 };
    if let Some(frame) = rewrite_dhcp(
        &untagged,
        &frame[offset..],
        DHCP_CLIENT_PORT,
        remove_option82,
    ) {
        return Some(frame);
    }
    let mut out = vec![0u8; untagged.buffer_len() + frame.len() - offset];
    untagged.emit(&mut out);
    out[untagged.buffer_len()..].copy_from_slice(&frame[offset..]);
    Some(out)
}

/// If `l3` is an IPv4/UDP DHCP message to `dst_port`, rebuilds the frame
/// with `l2` and the options rewritten by `edit` (lengths and checksums
/// recomputed). `None` for anything else.
fn rewrite_dhcp(
    l2: &L2Header,
    l3: &[u8],
    dst_port: u16,
    edit: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Option<Vec<u8>> {
    if l2.ethertype != EtherType::Ipv4 || l3.len() < 20 || l3[9] != 17 {
        return None;
    }
    let ihl = usize::from(l3[0] & 0x0f) * 4;
    let udp = l3.get(ihl..)?;
    if udp.len() < 8 || u16::from_be_bytes([udp[2], udp[3]]) != dst_port {
        return None;
    }
    let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    let dhcp = udp.get(8..udp_len)?;
    if dhcp.len() < DHCP_OPTIONS_OFFSET
        || dhcp[DHCP_MAGIC_OFFSET..DHCP_OPTIONS_OFFSET] != [99, 130, 83, 99]
    {
        return None;
    }
    let mut payload = dhcp[..DHCP_OPTIONS_OFFSET].to_vec();
    payload.extend(edit(&dhcp[DHCP_OPTIONS_OFFSET..]));
    let src = Ipv4Addr::new(l3[12], l3[13], l3[14], l3[15]);
    let dst = Ipv4Addr::new(l3[16], l3[17], l3[18], l3[19]);
    let src_port = u16::from_be_bytes([udp[0], udp[1]]);
    Some(build_ipv4_udp(
        l2, src, dst, src_port, dst_port, l3[8], &payload,
    ))
}

/// Splits DHCP options into (code, whole option bytes), stopping at END.
fn options(bytes: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            OPTION_PAD => i += 1,
            OPTION_END => break,
            code => {
                let Some(&len) = bytes.get(i + 1) else { break };
                let end = (i + 2 + usize::from(len)).min(bytes.len());
                out.push((code, &bytes[i..end]));
                i = end;
            }
        }
    }
    out
}

fn insert_option82(bytes: &[u8], line: &Line) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len() + 64);
    let existing = options(bytes);
    for (_, option) in &existing {
        out.extend_from_slice(option);
    }
    // RFC 3046 section 2.1: an agent leaves an option 82 it finds alone.
    if !existing
        .iter()
        .any(|(code, _)| *code == OPTION_RELAY_AGENT_INFO)
    {
        let mut info = Vec::new();
        for (sub, value) in [(1u8, &line.circuit_id), (2u8, &line.remote_id)] {
            info.push(sub);
            info.push(value.len().min(255) as u8);
            info.extend_from_slice(&value.as_bytes()[..value.len().min(255)]);
        }
        out.push(OPTION_RELAY_AGENT_INFO);
        out.push(info.len().min(255) as u8);
        out.extend_from_slice(&info[..info.len().min(255)]);
    }
    out.push(OPTION_END);
    out
}

fn remove_option82(bytes: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = options(bytes)
        .into_iter()
        .filter(|(code, _)| *code != OPTION_RELAY_AGENT_INFO)
        .flat_map(|(_, option)| option.to_vec())
        .collect();
    out.push(OPTION_END);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vbng_dataplane::wire::EthernetAddress;

    fn line() -> Line {
        Line {
            cvlan: 100,
            circuit_id: "an1 xpon 0/1/1:100".into(),
            remote_id: "line-2".into(),
        }
    }

    fn dhcp_frame(l2: &L2Header, dst_port: u16, options: &[u8]) -> Vec<u8> {
        let mut payload = vec![0u8; DHCP_OPTIONS_OFFSET];
        payload[0] = 1;
        payload[DHCP_MAGIC_OFFSET..].copy_from_slice(&[99, 130, 83, 99]);
        payload.extend_from_slice(options);
        build_ipv4_udp(
            l2,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            68,
            dst_port,
            64,
            &payload,
        )
    }

    fn untagged() -> L2Header {
        L2Header {
            dst: EthernetAddress::BROADCAST,
            src: "02:00:00:00:00:12".parse().unwrap(),
            svlan: None,
            cvlan: None,
            ethertype: EtherType::Ipv4,
        }
    }

    #[test]
    fn upstream_dhcp_gains_tag_and_option82_and_downstream_loses_both() {
        let discover = dhcp_frame(&untagged(), 67, &[53, 1, 1, 255]);
        let up = from_subscriber(&discover, &line()).unwrap();
        let (l2, off) = L2Header::parse(&up).unwrap();
        assert_eq!(l2.cvlan, Some(100));
        let msg = vbng_access::dhcpv4::decode(&up[off + 28..]).unwrap();
        let info = msg
            .opts()
            .get(dhcproto::v4::OptionCode::RelayAgentInformation);
        let expected = b"an1 xpon 0/1/1:100";
        let text = format!("{info:?}");
        assert!(text.contains(&format!("{:?}", expected.to_vec())), "{text}");
        // A reply from the BNG carrying option 82 back.
        let reply_options = &up[off + 28 + DHCP_OPTIONS_OFFSET..];
        let reply = dhcp_frame(
            &L2Header {
                cvlan: Some(100),
                ..untagged()
            },
            68,
            reply_options,
        );
        let down = from_network(&reply, &line()).unwrap();
        let (l2, off) = L2Header::parse(&down).unwrap();
        assert_eq!(l2.cvlan, None);
        assert_eq!(&down[off + 28 + DHCP_OPTIONS_OFFSET..], &[53, 1, 1, 255]);
    }

    #[test]
    fn other_vlans_and_tagged_subscriber_frames_are_dropped() {
        let frame = dhcp_frame(
            &L2Header {
                cvlan: Some(200),
                ..untagged()
            },
            68,
            &[255],
        );
        assert!(from_network(&frame, &line()).is_none());
        assert!(from_subscriber(&frame, &line()).is_none());
        assert!(from_network(&[0u8; 5], &line()).is_none());
    }
}
