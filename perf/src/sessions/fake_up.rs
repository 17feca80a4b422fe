//! The in-process user plane of `vbng-perf sessions`: a PFCP responder on its own thread
//! that answers what vbng-cp sends a user plane while sessions come and go (Association
//! Setup, Heartbeat, Session Establishment, Modification and Deletion, encoded and decoded
//! with vbng-cups), and tells the emulator which client each establishment and deletion was
//! for (by the subscriber MAC of the uplink PDR's Ethernet packet filter).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vbng_cups::pfcp::{
    AssociationSetupResponse, Cause, FSeid, HeartbeatResponse, Message, NodeId, RecoveryTimeStamp,
    SessionDeletionResponse, SessionEstablishmentRequest, SessionEstablishmentResponse,
    SessionModificationResponse,
};

use super::emulator::client_of_mac;
use super::{Notice, NoticeKind};

/// A running fake user plane; stops when dropped.
#[derive(Debug)]
pub struct FakeUp {
    /// Its PFCP address (for the control plane's `[[user_planes]]`).
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeUp {
    /// Binds 127.0.0.1:0 and starts answering; notices go to `notices`.
    pub fn start(notices: Sender<Notice>) -> std::io::Result<FakeUp> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        super::grow_buffers(&socket);
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let addr = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("fake-up".into())
            .spawn(move || serve(&socket, &flag, &notices))?;
        Ok(FakeUp {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for FakeUp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The client index of the subscriber an establishment programs.
fn client_of(req: &SessionEstablishmentRequest) -> Option<u32> {
    req.create_pdrs.iter().find_map(|p| {
        let mac = p.pdi.ethernet_packet_filter.as_ref()?.mac_address?.source?;
        client_of_mac(mac)
    })
}

fn serve(socket: &UdpSocket, stop: &AtomicBool, notices: &Sender<Notice>) {
    let mut buf = vec![0u8; 65_535];
    let node_id = NodeId::Ipv4(Ipv4Addr::LOCALHOST);
    let recovery = RecoveryTimeStamp(3_900_000_000);
    let mut next_seid = 0x1000u64;
    // By UP SEID: the CP SEID (for response headers) and the client.
    let mut sessions: HashMap<u64, (u64, Option<u32>)> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, src)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Ok((header, msg)) = Message::parse(&buf[..n]) else {
            continue;
        };
        let (reply, seid, notice) = match msg {
            Message::AssociationSetupRequest(_) => (
                Message::AssociationSetupResponse(AssociationSetupResponse {
                    node_id: node_id.clone(),
                    cause: Cause::RequestAccepted,
                    recovery_time_stamp: recovery,
                    ..Default::default()
                }),
                None,
                None,
            ),
            Message::HeartbeatRequest(_) => (
                Message::HeartbeatResponse(HeartbeatResponse {
                    recovery_time_stamp: recovery,
                }),
                None,
                None,
            ),
            Message::SessionEstablishmentRequest(r) => {
                next_seid += 1;
                let client = client_of(&r);
                sessions.insert(next_seid, (r.cp_f_seid.seid, client));
                (
                    Message::SessionEstablishmentResponse(SessionEstablishmentResponse {
                        node_id: node_id.clone(),
                        cause: Cause::RequestAccepted,
                        up_f_seid: Some(FSeid {
                            seid: next_seid,
                            ipv4: Some(Ipv4Addr::LOCALHOST),
                            ipv6: None,
                        }),
                        ..Default::default()
                    }),
                    Some(r.cp_f_seid.seid),
                    client.map(|c| (NoticeKind::Established, c)),
                )
            }
            Message::SessionModificationRequest(_) => {
                let cp_seid = header.seid.and_then(|s| sessions.get(&s)).map(|s| s.0);
                (
                    Message::SessionModificationResponse(SessionModificationResponse {
                        cause: Cause::RequestAccepted,
                        usage_reports: Vec::new(),
                    }),
                    Some(cp_seid.unwrap_or(0)),
                    None,
                )
            }
            Message::SessionDeletionRequest(_) => {
                let known = header.seid.and_then(|s| sessions.remove(&s));
                (
                    Message::SessionDeletionResponse(SessionDeletionResponse {
                        cause: if known.is_some() {
                            Cause::RequestAccepted
                        } else {
                            Cause::SessionContextNotFound
                        },
                        usage_reports: Vec::new(),
                    }),
                    Some(known.map_or(0, |s| s.0)),
                    known.and_then(|s| s.1).map(|c| (NoticeKind::Deleted, c)),
                )
            }
            _ => continue,
        };
        let _ = socket.send_to(&reply.encode(header.sequence, seid), src);
        if let Some((kind, client)) = notice {
            let _ = notices.send(Notice {
                kind,
                client,
                at: Instant::now(),
            });
        }
    }
}
