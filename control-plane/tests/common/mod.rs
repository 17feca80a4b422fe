//! Test helpers: a minimal PFCP user plane built from vbng-cups, the
//! control plane service started against it, and DHCP/GTP-U frame builders.
#![allow(dead_code)]

pub mod pppoe_client;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use vbng_access::dhcproto::Encodable;
use vbng_access::dhcproto::v4::{DhcpOption, Flags, Message as Dhcp, MessageType as DhcpType};
use vbng_cp::aaa::LocalSubscribers;
use vbng_cp::config::{Config, UserPlaneConfig};
use vbng_cp::cups::UpState;
use vbng_cp::service::Running;
use vbng_cups::pfcp::{
    AssociationSetupResponse, Cause, FSeid, Header, HeartbeatRequest, HeartbeatResponse, Message,
    NodeId, RecoveryTimeStamp, SessionDeletionResponse, SessionEstablishmentResponse,
    SessionModificationResponse, UsageReport, UsageReportTrigger, VolumeMeasurement,
};
use vbng_dataplane::wire::{EtherType, EthernetAddress, GtpuRepr, L2Header, frame};

/// The usage the fake UP reports on deletion.
pub const FAKE_USAGE: (u64, u64, u64, u64) = (10, 1500, 20, 3000); // ul pkts, ul bytes, dl pkts, dl bytes

/// The usage the fake UP reports for its `n`th usage query (from 1): `n`
/// times [`FAKE_USAGE`], so every query sees more than the one before.
pub fn fake_query_usage(n: u64) -> (u64, u64, u64, u64) {
    let (ulp, ulb, dlp, dlb) = FAKE_USAGE;
    (n * ulp, n * ulb, n * dlp, n * dlb)
}

/// A minimal PFCP user plane: answers association, heartbeats, session
/// establishment (UP SEID 0x1000 + n), modification (with an immediate usage
/// report of [`fake_query_usage`] when it queries URRs) and deletion (with a
/// usage report), and records everything it receives and when it answered
/// establishments. With [`FakeUp::know_acls`] it also checks the ACL names
/// that PDRs activate, as vbng-up does against its ACL file.
#[derive(Clone)]
pub struct FakeUp {
    pub socket: Arc<UdpSocket>,
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<(SocketAddr, Header, Message)>>>,
    /// Stop answering heartbeats (simulates a dead UP).
    pub silent: Arc<AtomicBool>,
    /// Recovery time stamp reported (change it to simulate a restart).
    pub recovery: Arc<AtomicU32>,
    /// Reject session establishments (cause Request rejected).
    pub reject: Arc<AtomicBool>,
    /// Leave session establishments unanswered (heartbeats still answered).
    pub ignore_establish: Arc<AtomicBool>,
    /// Wait this long (ms) before answering a session establishment.
    pub establish_delay_ms: Arc<AtomicU64>,
    /// When each establishment answer was sent (taken just before sending).
    pub establish_answered: Arc<Mutex<Vec<Instant>>>,
    /// Reject session modifications (cause Request rejected).
    pub reject_modify: Arc<AtomicBool>,
    /// Leave session modifications unanswered (heartbeats still answered).
    pub ignore_modify: Arc<AtomicBool>,
    /// Usage queries answered so far (Query URR or QAURR).
    pub usage_queries: Arc<AtomicU64>,
    /// The ACLs this user plane has, if it checks them: an establishment
    /// or modification activating another name is refused with cause 73
    /// (Rule creation/modification failure). `None`: every name is taken.
    pub known_acls: Arc<Mutex<Option<std::collections::HashSet<String>>>>,
}

impl FakeUp {
    pub async fn start(ip: Ipv4Addr) -> FakeUp {
        let socket = Arc::new(UdpSocket::bind((ip, 0)).await.expect("bind fake UP"));
        let addr = socket.local_addr().unwrap();
        let up = FakeUp {
            socket,
            addr,
            received: Arc::default(),
            silent: Arc::default(),
            recovery: Arc::new(AtomicU32::new(3_900_000_000)),
            reject: Arc::default(),
            ignore_establish: Arc::default(),
            establish_delay_ms: Arc::default(),
            establish_answered: Arc::default(),
            reject_modify: Arc::default(),
            ignore_modify: Arc::default(),
            usage_queries: Arc::default(),
            known_acls: Arc::default(),
        };
        let u = up.clone();
        tokio::spawn(async move { u.serve().await });
        up
    }

    async fn serve(self) {
        let mut buf = vec![0u8; 65_535];
        let mut next_seid = 0x1000u64;
        // CP SEID of each session, by UP SEID (for the response headers).
        let mut cp_seids = std::collections::HashMap::new();
        loop {
            let Ok((n, src)) = self.socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok((h, msg)) = Message::parse(&buf[..n]) else {
                continue;
            };
            self.received.lock().unwrap().push((src, h, msg.clone()));
            if self.silent.load(Ordering::SeqCst) {
                continue;
            }
            let rts = RecoveryTimeStamp(self.recovery.load(Ordering::SeqCst));
            let node_id = NodeId::Ipv4(Ipv4Addr::new(127, 0, 0, 1));
            let reply = match msg {
                Message::AssociationSetupRequest(_) => Some((
                    Message::AssociationSetupResponse(AssociationSetupResponse {
                        node_id,
                        cause: Cause::RequestAccepted,
                        recovery_time_stamp: rts,
                        ..Default::default()
                    }),
                    None,
                )),
                Message::HeartbeatRequest(_) => Some((
                    Message::HeartbeatResponse(HeartbeatResponse {
                        recovery_time_stamp: rts,
                    }),
                    None,
                )),
                Message::SessionEstablishmentRequest(_)
                    if self.ignore_establish.load(Ordering::SeqCst) =>
                {
                    None
                }
                Message::SessionEstablishmentRequest(r)
                    if self.reject.load(Ordering::SeqCst) || !self.knows_acls_of(&r) =>
                {
                    let cause = if self.reject.load(Ordering::SeqCst) {
                        Cause::RequestRejected
                    } else {
                        Cause::RuleCreationModificationFailure
                    };
                    Some((
                        Message::SessionEstablishmentResponse(SessionEstablishmentResponse {
                            node_id,
                            cause,
                            ..Default::default()
                        }),
                        Some(r.cp_f_seid.seid),
                    ))
                }
                Message::SessionEstablishmentRequest(r) => {
                    next_seid += 1;
                    cp_seids.insert(next_seid, r.cp_f_seid.seid);
                    Some((
                        Message::SessionEstablishmentResponse(SessionEstablishmentResponse {
                            node_id,
                            cause: Cause::RequestAccepted,
                            up_f_seid: Some(FSeid {
                                seid: next_seid,
                                ipv4: Some(Ipv4Addr::new(127, 0, 0, 1)),
                                ipv6: None,
                            }),
                            ..Default::default()
                        }),
                        Some(r.cp_f_seid.seid),
                    ))
                }
                Message::SessionModificationRequest(_)
                    if self.ignore_modify.load(Ordering::SeqCst) =>
                {
                    None
                }
                Message::SessionModificationRequest(r) => {
                    let activated = r
                        .update_pdrs
                        .iter()
                        .flat_map(|u| &u.activate_predefined_rules);
                    let cause = if self.reject_modify.load(Ordering::SeqCst) {
                        Cause::RequestRejected
                    } else if !self.knows_all(activated) {
                        Cause::RuleCreationModificationFailure
                    } else {
                        Cause::RequestAccepted
                    };
                    let mut usage_reports = Vec::new();
                    if cause == Cause::RequestAccepted && r.queries_usage() {
                        let n = self.usage_queries.fetch_add(1, Ordering::SeqCst) + 1;
                        let (ulp, ulb, dlp, dlb) = fake_query_usage(n);
                        usage_reports.push(UsageReport {
                            urr_id: 1,
                            ur_seqn: (n - 1) as u32,
                            trigger: UsageReportTrigger::IMMER,
                            volume: Some(VolumeMeasurement::from_counters(ulp, ulb, dlp, dlb)),
                            ..Default::default()
                        });
                    }
                    Some((
                        Message::SessionModificationResponse(SessionModificationResponse {
                            cause,
                            usage_reports,
                        }),
                        Some(h.seid.and_then(|s| cp_seids.get(&s).copied()).unwrap_or(0)),
                    ))
                }
                Message::SessionDeletionRequest(_) => {
                    let (ulp, ulb, dlp, dlb) = FAKE_USAGE;
                    Some((
                        Message::SessionDeletionResponse(SessionDeletionResponse {
                            cause: Cause::RequestAccepted,
                            usage_reports: vec![UsageReport {
                                urr_id: 1,
                                volume: Some(VolumeMeasurement::from_counters(ulp, ulb, dlp, dlb)),
                                ..Default::default()
                            }],
                        }),
                        Some(1),
                    ))
                }
                _ => None,
            };
            match reply {
                Some((m @ Message::SessionEstablishmentResponse(_), seid)) => {
                    let bytes = m.encode(h.sequence, seid);
                    let delay = self.establish_delay_ms.load(Ordering::SeqCst);
                    let (socket, answered) = (self.socket.clone(), self.establish_answered.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                        answered.lock().unwrap().push(Instant::now());
                        let _ = socket.send_to(&bytes, src).await;
                    });
                }
                Some((m, seid)) => {
                    let _ = self.socket.send_to(&m.encode(h.sequence, seid), src).await;
                }
                None => {}
            }
        }
    }

    /// Check ACL names from now on: only `names` exist on this user plane.
    pub fn know_acls(&self, names: &[&str]) {
        let names = names.iter().map(|n| n.to_string()).collect();
        *self.known_acls.lock().unwrap() = Some(names);
    }

    /// Whether every name in `names` is a known ACL (always, when ACLs are
    /// not checked).
    fn knows_all<'a>(&self, mut names: impl Iterator<Item = &'a String>) -> bool {
        match &*self.known_acls.lock().unwrap() {
            Some(known) => names.all(|n| known.contains(n)),
            None => true,
        }
    }

    /// Whether the ACLs the PDRs of establishment `r` activate are known.
    fn knows_acls_of(&self, r: &vbng_cups::pfcp::SessionEstablishmentRequest) -> bool {
        self.knows_all(
            r.create_pdrs
                .iter()
                .flat_map(|p| &p.activate_predefined_rules),
        )
    }

    /// Session Establishment Requests received so far.
    pub fn establishment_requests(&self) -> usize {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, _, m)| matches!(m, Message::SessionEstablishmentRequest(_)))
            .count()
    }

    /// Session Modification Requests received so far, with their header
    /// SEID (the UP SEID).
    pub fn modification_requests(
        &self,
    ) -> Vec<(Option<u64>, vbng_cups::pfcp::SessionModificationRequest)> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, h, m)| match m {
                Message::SessionModificationRequest(r) => Some((h.seid, r.clone())),
                _ => None,
            })
            .collect()
    }

    /// Messages received so far.
    pub fn messages(&self) -> Vec<(SocketAddr, Header, Message)> {
        self.received.lock().unwrap().clone()
    }

    /// Send a heartbeat request to `cp` from the UP's socket.
    pub async fn send_heartbeat(&self, cp: SocketAddr, seq: u32) {
        let m = Message::HeartbeatRequest(HeartbeatRequest {
            recovery_time_stamp: RecoveryTimeStamp(self.recovery.load(Ordering::SeqCst)),
        });
        self.socket.send_to(&m.encode(seq, None), cp).await.unwrap();
    }
}

/// Poll `f` every 20 ms until it returns `Some`, at most 15 s (a safety
/// bound, not a timing assertion).
pub async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..750 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Starts the control plane service with `cfg` and `subscribers`, listening
/// on 127.0.0.1 (ephemeral ports) with a 1 s heartbeat and one user plane
/// `up0`: `up` for PFCP, `up_gtpu` for GTP-U; returns once `up0` is
/// associated.
pub async fn start_cp(
    up: &FakeUp,
    up_gtpu: &UdpSocket,
    subscribers: LocalSubscribers,
    mut cfg: Config,
) -> Running {
    cfg.pfcp.listen = "127.0.0.1:0".parse().unwrap();
    cfg.pfcp.heartbeat_interval_s = 1;
    cfg.gtpu.listen = "127.0.0.1:0".parse().unwrap();
    cfg.api.listen = "127.0.0.1:0".parse().unwrap();
    cfg.user_planes = vec![UserPlaneConfig {
        name: "up0".into(),
        pfcp: up.addr,
        gtpu: Some(up_gtpu.local_addr().unwrap()),
    }];
    let running = vbng_cp::service::start(cfg, subscribers).await.unwrap();
    let h = running.sessions.user_planes()[0].clone();
    wait_for("association", || {
        (h.status().state == UpState::Up).then_some(())
    })
    .await;
    running
}

/// The DHCP message of the next GTP-U datagram on `sock`, if one comes
/// within `within`.
pub async fn recv_dhcp_within(sock: &UdpSocket, within: Duration) -> Option<Dhcp> {
    let mut buf = [0u8; 4096];
    let (n, _) = tokio::time::timeout(within, sock.recv_from(&mut buf))
        .await
        .ok()?
        .unwrap();
    let (_, frame) = GtpuRepr::parse_payload(&buf[..n]).unwrap();
    let (_, off) = L2Header::parse(frame).unwrap();
    Some(vbng_access::dhcpv4::decode(&frame[off + 28..]).unwrap())
}

/// The DHCP message of the next GTP-U datagram on `sock` (within 10 s).
pub async fn recv_dhcp(sock: &UdpSocket) -> Dhcp {
    recv_dhcp_within(sock, Duration::from_secs(10))
        .await
        .expect("reply within 10 s")
}

pub const CLIENT_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x42];

/// A DHCP client message of `kind` from `mac` with transaction id `xid`.
pub fn dhcp_msg(kind: DhcpType, mac: [u8; 6], xid: u32, extra: Vec<DhcpOption>) -> Vec<u8> {
    let mut m = Dhcp::new(
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &mac,
    );
    m.set_xid(xid).set_flags(Flags::default().set_broadcast());
    m.opts_mut().insert(DhcpOption::MessageType(kind));
    for o in extra {
        m.opts_mut().insert(o);
    }
    m.to_vec().unwrap()
}

/// A client Ethernet frame (broadcast) carrying `dhcp` from 0.0.0.0:68 to
/// 255.255.255.255:67, with the given VLAN tags.
pub fn dhcp_frame(mac: [u8; 6], svlan: Option<u16>, cvlan: Option<u16>, dhcp: &[u8]) -> Vec<u8> {
    let l2 = L2Header {
        dst: EthernetAddress::BROADCAST,
        src: EthernetAddress(mac),
        svlan,
        cvlan,
        ethertype: EtherType::Ipv4,
    };
    frame::build_ipv4_udp(
        &l2,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        68,
        67,
        64,
        dhcp,
    )
}

/// GTP-U G-PDU on `teid` carrying `frame`.
pub fn gtpu(teid: u32, frame: &[u8]) -> Vec<u8> {
    GtpuRepr::g_pdu(teid).encapsulate(frame).unwrap()
}
