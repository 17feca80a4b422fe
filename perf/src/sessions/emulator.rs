//! The client emulator of `vbng-perf sessions`: many PPPoE or IPoE subscribers, each one
//! vbng-access client state machine set ([`DiscoveryClient`] + [`PppClient`], or
//! [`DhcpClient`]), speaking to a server through one UDP socket the way a user plane's
//! redirect does: every subscriber frame is the complete Ethernet frame (C-VLAN tag
//! included) in a GTP-U G-PDU whose TEID is the access port.
//!
//! One thread, one socket, sans-IO machines: a phase (setup, then teardown) starts clients
//! while fewer than `window` are in flight (and, with `rate`, no faster than that), feeds
//! them the frames that arrive, runs their timers every few milliseconds, and takes the
//! user plane's notices (establishment, deletion) from a channel. A session is **up** when
//! its client is up (IPCP Opened, or the DHCPACK received) *and* the user plane answered
//! its Session Establishment; it is **down** when the user plane answered its Session
//! Deletion after the client's PADT or DHCPRELEASE.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use vbng_access::dhcpv4::client::{DhcpClient, DhcpClientConfig, DhcpClientEvent, DhcpSend};
use vbng_access::ppp::client::{PppClient, PppClientConfig, PppClientEvent};
use vbng_access::ppp::proto;
use vbng_access::pppoe::client::{
    Destination, DiscoveryClient, DiscoveryClientConfig, DiscoveryClientEvent, DiscoveryFrame,
};
use vbng_access::pppoe::wire::{self as pppoe_wire, Code};
use vbng_dataplane::wire::{EtherType, EthernetAddress, GtpuRepr, L2Header, frame};

use super::{Notice, NoticeKind, Protocol};

/// First two octets of every emulated client's MAC; the other four are its index.
pub const MAC_PREFIX: [u8; 2] = [0x02, 0x42];

/// The C-VLAN every emulated client is on.
pub const CVLAN: u16 = 100;

/// The GTP-U TEID (access port) the emulated clients are behind.
pub const ACCESS_PORT: u32 = 1;

/// The MAC of client `index`.
pub fn client_mac(index: u32) -> [u8; 6] {
    let [a, b, c, d] = index.to_be_bytes();
    [MAC_PREFIX[0], MAC_PREFIX[1], a, b, c, d]
}

/// The client index of `mac`, if it is an emulated client's.
pub fn client_of_mac(mac: [u8; 6]) -> Option<u32> {
    (mac[..2] == MAC_PREFIX).then(|| u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]))
}

/// The PPP user name of client `index` (the generated subscriber file has one per client).
pub fn user_name(index: u32) -> String {
    format!("user{index}")
}

/// The PPP password of client `index`.
pub fn password(index: u32) -> String {
    format!("pw-{index}")
}

/// How progress is shown on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Not at all.
    Off,
    /// One line updated in place (stderr is a terminal).
    InPlace,
    /// A plain line every second (stderr is a file or pipe).
    Lines,
}

impl Progress {
    /// [`Progress::InPlace`] on a terminal, [`Progress::Lines`] otherwise.
    pub fn for_stderr() -> Progress {
        if std::io::stderr().is_terminal() {
            Progress::InPlace
        } else {
            Progress::Lines
        }
    }
}

/// What to emulate against which server.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// PPPoE or IPoE.
    pub protocol: Protocol,
    /// Clients (sessions).
    pub count: u32,
    /// Most sessions being set up (or torn down) at once.
    pub window: usize,
    /// Most sessions started per second, if limited.
    pub rate: Option<f64>,
    /// A session not up (or down) this long after its first frame has failed.
    pub timeout: Duration,
    /// The server's GTP-U address.
    pub server: SocketAddr,
    /// Progress display.
    pub progress: Progress,
    /// Label of the progress lines (`pppoe vbng-cp`, `ipoe canned`).
    pub label: String,
    /// Record every discovery and PPP message of client 0 ([`EmulatorResult::trace`]).
    pub trace: bool,
}

/// One message of a recorded PPPoE session: who sent it and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exchange {
    /// Sent by the client (else by the access concentrator).
    pub from_client: bool,
    /// The message.
    pub step: Step,
}

/// A PPPoE discovery or PPP control message, by code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A discovery packet (PADI, PADO, PADR, PADS, PADT) by its CODE.
    Discovery(u8),
    /// A PPP packet: protocol and code.
    Ppp {
        /// PPP protocol field.
        protocol: u16,
        /// Code of the control packet.
        code: u8,
    },
}

impl std::fmt::Display for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dir = if self.from_client { "C->S" } else { "S->C" };
        match self.step {
            Step::Discovery(c) => {
                let name = match Code::from(c) {
                    Code::Padi => "PADI",
                    Code::Pado => "PADO",
                    Code::Padr => "PADR",
                    Code::Pads => "PADS",
                    Code::Padt => "PADT",
                    _ => "discovery?",
                };
                write!(f, "{dir} {name}")
            }
            Step::Ppp { protocol, code } => {
                let p = match protocol {
                    proto::LCP => "LCP",
                    proto::PAP => "PAP",
                    proto::CHAP => "CHAP",
                    proto::IPCP => "IPCP",
                    _ => "PPP",
                };
                let names: &[&str] = match protocol {
                    proto::PAP => &["", "Auth-Req", "Auth-Ack", "Auth-Nak"],
                    proto::CHAP => &["", "Challenge", "Response", "Success", "Failure"],
                    _ => &[
                        "",
                        "Conf-Req",
                        "Conf-Ack",
                        "Conf-Nak",
                        "Conf-Rej",
                        "Term-Req",
                        "Term-Ack",
                        "Code-Rej",
                        "Proto-Rej",
                        "Echo-Req",
                        "Echo-Rep",
                        "Discard",
                    ],
                };
                match names.get(usize::from(code)) {
                    Some(n) if !n.is_empty() => write!(f, "{dir} {p} {n}"),
                    _ => write!(f, "{dir} {p} code {code}"),
                }
            }
        }
    }
}

/// What one phase (setup or teardown) measured.
#[derive(Debug, Clone, Default)]
pub struct PhaseResult {
    /// Sessions the phase started.
    pub started: u32,
    /// Sessions that completed (up, or down).
    pub completed: u32,
    /// Failed sessions by reason.
    pub failures: BTreeMap<String, u32>,
    /// From the phase's start to its last completion or failure.
    pub elapsed: Duration,
    /// When each session completed, from the phase's start (in completion order).
    pub completions: Vec<Duration>,
    /// Per session: from its first frame to its completion.
    pub latencies: Vec<Duration>,
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct EmulatorResult {
    /// Bringing the sessions up.
    pub setup: PhaseResult,
    /// Tearing down the sessions that came up.
    pub teardown: PhaseResult,
    /// Client 0's messages, with [`EmulatorConfig::trace`].
    pub trace: Vec<Exchange>,
    /// Datagrams sent and received by the emulator.
    pub datagrams: (u64, u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    SettingUp,
    Up,
    TearingDown,
    Down,
    Failed,
}

#[derive(Debug)]
enum Machine {
    None,
    Pppoe {
        discovery: DiscoveryClient,
        ppp: Option<Box<PppClient>>,
    },
    Ipoe {
        dhcp: DhcpClient,
        /// Source MAC of the server's replies (the gateway), for the unicast RELEASE.
        server_mac: [u8; 6],
    },
}

#[derive(Debug)]
struct Client {
    machine: Machine,
    phase: Phase,
    started: Instant,
    client_up: Option<Instant>,
    user_plane_up: Option<Instant>,
}

/// The emulator; see the module docs.
#[derive(Debug)]
pub struct Emulator {
    cfg: EmulatorConfig,
    socket: UdpSocket,
    notices: Receiver<Notice>,
    clients: Vec<Client>,
    in_flight: Vec<u32>,
    epoch: Instant,
    result: EmulatorResult,
    buf: Vec<u8>,
}

/// What a completed or failed session does to the phase's tallies.
enum Outcome {
    Completed(Instant),
    Failed(String),
}

impl Emulator {
    /// An emulator sending from `socket` (the address the server knows as the user plane's
    /// GTP-U address) and hearing the user plane's notices on `notices`.
    pub fn new(cfg: EmulatorConfig, socket: UdpSocket, notices: Receiver<Notice>) -> Self {
        let clients = (0..cfg.count)
            .map(|_| Client {
                machine: Machine::None,
                phase: Phase::Idle,
                started: Instant::now(),
                client_up: None,
                user_plane_up: None,
            })
            .collect();
        Emulator {
            cfg,
            socket,
            notices,
            clients,
            in_flight: Vec::new(),
            epoch: Instant::now(),
            result: EmulatorResult::default(),
            buf: vec![0u8; 65_535],
        }
    }

    /// Sets every session up, then tears down those that came up.
    pub fn run(mut self) -> std::io::Result<EmulatorResult> {
        self.socket.set_nonblocking(true)?;
        self.result.setup = self.phase(true)?;
        self.result.teardown = self.phase(false)?;
        Ok(self.result)
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// One phase: every client (setup) or every client that is up (teardown).
    fn phase(&mut self, setup: bool) -> std::io::Result<PhaseResult> {
        let mut r = PhaseResult::default();
        let start = Instant::now();
        let mut next = 0u32;
        let mut last_timer_scan = start;
        let mut progress = ProgressLine::new(
            self.cfg.progress,
            format!(
                "{} {}",
                self.cfg.label,
                if setup { "setup" } else { "teardown" }
            ),
        );
        let eligible = if setup {
            self.cfg.count
        } else {
            self.clients.iter().filter(|c| c.phase == Phase::Up).count() as u32
        };
        loop {
            // Start clients while the window and the rate allow.
            while self.in_flight.len() < self.cfg.window && next < self.cfg.count {
                if let Some(rate) = self.cfg.rate {
                    let due = start + Duration::from_secs_f64(f64::from(r.started) / rate);
                    if Instant::now() < due {
                        break;
                    }
                }
                let index = next;
                next += 1;
                if setup {
                    self.start_setup(index);
                } else if self.clients[index as usize].phase == Phase::Up {
                    self.start_teardown(index);
                } else {
                    continue;
                }
                r.started += 1;
            }
            if next >= self.cfg.count && self.in_flight.is_empty() {
                break;
            }
            let mut finished = Vec::new();
            // Notices arrive on a channel, not the socket: wait briefly (ppoll is precise to
            // microseconds, unlike SO_RCVTIMEO's jiffies) so neither waits on the other.
            wait_readable(&self.socket, Duration::from_micros(200));
            match self.socket.recv_from(&mut self.buf) {
                Ok((n, _)) => {
                    self.result.datagrams.1 += 1;
                    let buf = std::mem::take(&mut self.buf);
                    self.on_datagram(&buf[..n], &mut finished);
                    self.buf = buf;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
            while let Ok(n) = self.notices.try_recv() {
                self.on_notice(n, &mut finished);
            }
            let now = Instant::now();
            if now.duration_since(last_timer_scan) >= Duration::from_millis(5) {
                last_timer_scan = now;
                self.run_timers(now, &mut finished);
            }
            for (index, outcome) in finished {
                self.settle(index, outcome, start, &mut r);
            }
            progress.show(&r, eligible, start, self.in_flight.len());
        }
        progress.finish(&r, eligible, start);
        Ok(r)
    }

    fn settle(&mut self, index: u32, outcome: Outcome, start: Instant, r: &mut PhaseResult) {
        let Some(pos) = self.in_flight.iter().position(|&i| i == index) else {
            return;
        };
        self.in_flight.swap_remove(pos);
        let client = &mut self.clients[index as usize];
        let setup = client.phase == Phase::SettingUp;
        match outcome {
            Outcome::Completed(at) => {
                client.phase = if setup { Phase::Up } else { Phase::Down };
                r.completed += 1;
                let since_start = at.saturating_duration_since(start);
                r.completions.push(since_start);
                r.latencies
                    .push(at.saturating_duration_since(client.started));
                r.elapsed = r.elapsed.max(since_start);
            }
            Outcome::Failed(reason) => {
                client.phase = Phase::Failed;
                *r.failures.entry(reason).or_default() += 1;
                r.elapsed = r.elapsed.max(start.elapsed());
            }
        }
    }

    fn start_setup(&mut self, index: u32) {
        let now_ms = self.now_ms();
        let c = &mut self.clients[index as usize];
        c.phase = Phase::SettingUp;
        c.started = Instant::now();
        self.in_flight.push(index);
        match self.cfg.protocol {
            Protocol::Pppoe => {
                let mut discovery = DiscoveryClient::new(DiscoveryClientConfig {
                    host_uniq: index.to_be_bytes().to_vec(),
                    ..Default::default()
                });
                let out = discovery.start(now_ms);
                self.clients[index as usize].machine = Machine::Pppoe {
                    discovery,
                    ppp: None,
                };
                if let Some(f) = out.frame {
                    self.send_discovery(index, &f);
                }
            }
            Protocol::Ipoe => {
                let mut dhcp = DhcpClient::new(DhcpClientConfig {
                    mac: client_mac(index),
                    xid: index,
                    ..Default::default()
                });
                let out = dhcp.start(now_ms);
                self.clients[index as usize].machine = Machine::Ipoe {
                    dhcp,
                    server_mac: [0xff; 6],
                };
                if let Some(s) = out.send {
                    self.send_dhcp(index, [0xff; 6], &s);
                }
            }
        }
    }

    fn start_teardown(&mut self, index: u32) {
        let c = &mut self.clients[index as usize];
        c.phase = Phase::TearingDown;
        c.started = Instant::now();
        self.in_flight.push(index);
        match &mut c.machine {
            Machine::Pppoe { discovery, .. } => {
                if let Some(padt) = discovery.terminate() {
                    self.send_discovery(index, &padt);
                }
            }
            Machine::Ipoe { dhcp, server_mac } => {
                let server_mac = *server_mac;
                if let Some(release) = dhcp.release() {
                    self.send_dhcp(index, server_mac, &release);
                }
            }
            Machine::None => {}
        }
    }

    fn on_notice(&mut self, n: Notice, finished: &mut Vec<(u32, Outcome)>) {
        let Some(c) = self.clients.get_mut(n.client as usize) else {
            return;
        };
        match (n.kind, c.phase) {
            (NoticeKind::Established, Phase::SettingUp) => {
                c.user_plane_up = Some(n.at);
                if let Some(client_up) = c.client_up {
                    finished.push((n.client, Outcome::Completed(client_up.max(n.at))));
                }
            }
            (NoticeKind::Deleted, Phase::TearingDown) => {
                finished.push((n.client, Outcome::Completed(n.at)));
            }
            (NoticeKind::Deleted, Phase::SettingUp | Phase::Up) => {
                finished.push((n.client, Outcome::Failed("deleted_by_server".into())));
            }
            _ => {}
        }
    }

    fn client_up(&mut self, index: u32, finished: &mut Vec<(u32, Outcome)>) {
        let c = &mut self.clients[index as usize];
        let now = Instant::now();
        c.client_up = Some(now);
        if let Some(up) = c.user_plane_up {
            finished.push((index, Outcome::Completed(up.max(now))));
        }
    }

    fn run_timers(&mut self, now: Instant, finished: &mut Vec<(u32, Outcome)>) {
        let now_ms = self.now_ms();
        for i in 0..self.in_flight.len() {
            let index = self.in_flight[i];
            let c = &self.clients[index as usize];
            if now.duration_since(c.started) > self.cfg.timeout {
                let what = if c.phase == Phase::SettingUp {
                    "setup_timeout"
                } else {
                    "teardown_timeout"
                };
                finished.push((index, Outcome::Failed(what.into())));
                continue;
            }
            match &mut self.clients[index as usize].machine {
                Machine::Pppoe { discovery, ppp } => {
                    let out = discovery.tick(now_ms);
                    let ppp_out = ppp
                        .as_mut()
                        .filter(|p| p.next_deadline().is_some_and(|d| d <= now_ms))
                        .map(|p| p.tick(now_ms));
                    if let Some(f) = out.frame {
                        self.send_discovery(index, &f);
                    }
                    if let Some(DiscoveryClientEvent::Failed(f)) = out.event {
                        finished.push((index, Outcome::Failed(f.as_str().into())));
                    }
                    if let Some(out) = ppp_out {
                        self.on_ppp_output(index, out, finished);
                    }
                }
                Machine::Ipoe { dhcp, server_mac } => {
                    let server_mac = *server_mac;
                    let out = dhcp.tick(now_ms);
                    if let Some(s) = out.send {
                        self.send_dhcp(index, server_mac, &s);
                    }
                    if let Some(DhcpClientEvent::Failed(f)) = out.event {
                        finished.push((index, Outcome::Failed(f.as_str().into())));
                    }
                }
                Machine::None => {}
            }
        }
    }

    fn on_datagram(&mut self, data: &[u8], finished: &mut Vec<(u32, Outcome)>) {
        let Ok((_, frame)) = GtpuRepr::parse_payload(data) else {
            return;
        };
        let Ok((l2, off)) = L2Header::parse(frame) else {
            return;
        };
        let payload = &frame[off..];
        let now_ms = self.now_ms();
        match l2.ethertype {
            EtherType::PppoeDiscovery => {
                let Some(index) = client_of_mac(l2.dst.0).filter(|&i| i < self.cfg.count) else {
                    return;
                };
                self.record(index, false, payload);
                let Machine::Pppoe { discovery, ppp } = &mut self.clients[index as usize].machine
                else {
                    return;
                };
                let out = discovery.input(now_ms, l2.src.0, payload);
                let mut ppp_out = None;
                match out.event {
                    Some(DiscoveryClientEvent::SessionUp { .. }) => {
                        let mut client = PppClient::new(
                            PppClientConfig {
                                user: user_name(index).into_bytes(),
                                password: password(index).into_bytes(),
                                ..Default::default()
                            },
                            0x5eed_0000 ^ index.wrapping_mul(0x9e37_79b9),
                        );
                        ppp_out = Some(client.start(now_ms));
                        *ppp = Some(Box::new(client));
                    }
                    Some(DiscoveryClientEvent::TerminatedByPeer) => {
                        if let Some(ppp) = ppp {
                            ppp.lower_down(now_ms);
                        }
                        finished.push((index, Outcome::Failed("padt_from_server".into())));
                    }
                    Some(DiscoveryClientEvent::Failed(f)) => {
                        finished.push((index, Outcome::Failed(f.as_str().into())));
                    }
                    None => {}
                }
                if let Some(f) = out.frame {
                    self.send_discovery(index, &f);
                }
                if let Some(out) = ppp_out {
                    self.on_ppp_output(index, out, finished);
                }
            }
            EtherType::PppoeSession => {
                let Some(index) = client_of_mac(l2.dst.0).filter(|&i| i < self.cfg.count) else {
                    return;
                };
                self.record(index, false, payload);
                let Machine::Pppoe {
                    discovery,
                    ppp: Some(ppp),
                } = &mut self.clients[index as usize].machine
                else {
                    return;
                };
                let Ok((h, body)) = pppoe_wire::parse(payload) else {
                    return;
                };
                if h.session_id != discovery.session_id() || body.len() < 2 {
                    return;
                }
                let protocol = u16::from_be_bytes([body[0], body[1]]);
                let out = ppp.input(now_ms, protocol, &body[2..]);
                self.on_ppp_output(index, out, finished);
            }
            EtherType::Ipv4 => {
                let Some(dhcp_bytes) = udp_payload_to_client(payload) else {
                    return;
                };
                // Replies to a client without an address are broadcast: the transaction id
                // (the client's index) says whose they are.
                let Some(xid) = dhcp_bytes.get(4..8) else {
                    return;
                };
                let index = u32::from_be_bytes([xid[0], xid[1], xid[2], xid[3]]);
                let Some(Machine::Ipoe { dhcp, server_mac }) =
                    self.clients.get_mut(index as usize).map(|c| &mut c.machine)
                else {
                    return;
                };
                let out = dhcp.input(now_ms, dhcp_bytes);
                *server_mac = l2.src.0;
                let server_mac = *server_mac;
                if let Some(s) = out.send {
                    self.send_dhcp(index, server_mac, &s);
                }
                match out.event {
                    Some(DhcpClientEvent::Bound(_)) => self.client_up(index, finished),
                    Some(DhcpClientEvent::Failed(f)) => {
                        finished.push((index, Outcome::Failed(f.as_str().into())));
                    }
                    Some(DhcpClientEvent::Nak) | None => {}
                }
            }
            _ => {}
        }
    }

    fn on_ppp_output(
        &mut self,
        index: u32,
        out: vbng_access::ppp::client::ClientOutput,
        finished: &mut Vec<(u32, Outcome)>,
    ) {
        let Machine::Pppoe { discovery, .. } = &self.clients[index as usize].machine else {
            return;
        };
        let (session_id, ac_mac) = (discovery.session_id(), discovery.ac_mac());
        for (protocol, packet) in &out.frames {
            let mut body = Vec::with_capacity(packet.len() + 2);
            body.extend_from_slice(&protocol.to_be_bytes());
            body.extend_from_slice(packet);
            let pppoe = pppoe_wire::emit(Code::Session, session_id, &body);
            self.record(index, true, &pppoe);
            self.send_frame(index, ac_mac, EtherType::PppoeSession, &pppoe);
        }
        for ev in out.events {
            match ev {
                PppClientEvent::Up { .. } => self.client_up(index, finished),
                PppClientEvent::Down { reason } => {
                    finished.push((index, Outcome::Failed(format!("ppp_{}", reason.as_str()))));
                }
            }
        }
    }

    fn record(&mut self, index: u32, from_client: bool, pppoe: &[u8]) {
        if !self.cfg.trace || index != 0 {
            return;
        }
        let Ok((h, body)) = pppoe_wire::parse(pppoe) else {
            return;
        };
        let step = match h.code {
            Code::Session => match body {
                [p0, p1, code, ..] => Step::Ppp {
                    protocol: u16::from_be_bytes([*p0, *p1]),
                    code: *code,
                },
                _ => return,
            },
            other => Step::Discovery(other.into()),
        };
        self.result.trace.push(Exchange { from_client, step });
    }

    fn send_discovery(&mut self, index: u32, f: &DiscoveryFrame) {
        let dst = match f.destination {
            Destination::Broadcast => [0xff; 6],
            Destination::Unicast(mac) => mac,
        };
        self.record(index, true, &f.packet);
        self.send_frame(index, dst, EtherType::PppoeDiscovery, &f.packet);
    }

    fn send_dhcp(&mut self, index: u32, server_mac: [u8; 6], s: &DhcpSend) {
        let l2 = self.l2(index, if s.broadcast { [0xff; 6] } else { server_mac });
        let frame = frame::build_ipv4_udp(&l2, s.src_ip, s.dst_ip, 68, 67, 64, &s.bytes);
        self.send_gtpu(&frame);
    }

    fn l2(&self, index: u32, dst: [u8; 6]) -> L2Header {
        L2Header {
            dst: EthernetAddress(dst),
            src: EthernetAddress(client_mac(index)),
            svlan: None,
            cvlan: Some(CVLAN),
            ethertype: EtherType::Ipv4,
        }
    }

    fn send_frame(&mut self, index: u32, dst: [u8; 6], ethertype: EtherType, payload: &[u8]) {
        let l2 = L2Header {
            ethertype,
            ..self.l2(index, dst)
        };
        let mut frame = vec![0u8; l2.buffer_len()];
        l2.emit(&mut frame);
        frame.extend_from_slice(payload);
        self.send_gtpu(&frame);
    }

    fn send_gtpu(&mut self, frame: &[u8]) {
        let Ok(datagram) = GtpuRepr::g_pdu(ACCESS_PORT).encapsulate(frame) else {
            return;
        };
        // A full socket buffer loses the frame as a line would; the clients retransmit.
        if self.socket.send_to(&datagram, self.cfg.server).is_ok() {
            self.result.datagrams.0 += 1;
        }
    }
}

/// Waits until `socket` is readable or `timeout` passed.
fn wait_readable(socket: &UdpSocket, timeout: Duration) {
    use std::os::fd::AsRawFd as _;
    let mut pfd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: `pfd` and `ts` are valid for the call, the fd is a live socket owned by
    // `socket`, nfds is 1 (the one pollfd), and a null sigmask leaves the mask unchanged.
    let _ = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
}

/// The UDP payload of an IPv4 frame to port 68 (a DHCP reply), if it is one.
pub fn udp_payload_to_client(ip: &[u8]) -> Option<&[u8]> {
    udp_payload_to_port(ip, 68)
}

/// The UDP payload of an IPv4 packet to `port`, bounded by the UDP length.
pub fn udp_payload_to_port(ip: &[u8], port: u16) -> Option<&[u8]> {
    let ihl = usize::from(*ip.first()? & 0x0f) * 4;
    if ip.first()? >> 4 != 4 || ihl < 20 || *ip.get(9)? != 17 {
        return None;
    }
    let udp = ip.get(ihl..)?;
    let dst_port = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
    let len = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    if dst_port != port || len < 8 {
        return None;
    }
    udp.get(8..len)
}

/// The progress display of one phase.
struct ProgressLine {
    mode: Progress,
    label: String,
    last: Instant,
    last_done: u32,
    rate: f64,
}

impl ProgressLine {
    fn new(mode: Progress, label: String) -> Self {
        ProgressLine {
            mode,
            label,
            last: Instant::now(),
            last_done: 0,
            rate: 0.0,
        }
    }

    fn text(&self, r: &PhaseResult, eligible: u32, start: Instant, in_flight: usize) -> String {
        let failed: u32 = r.failures.values().sum();
        let width = 30usize;
        let done = r.completed + failed;
        let filled = (done as usize * width)
            .checked_div(eligible as usize)
            .unwrap_or(width);
        format!(
            "{:<22} [{}{}] {done}/{eligible} ({} failed), {:.0}/s now, {in_flight} in flight, {:.1} s",
            self.label,
            "#".repeat(filled.min(width)),
            " ".repeat(width - filled.min(width)),
            failed,
            self.rate,
            start.elapsed().as_secs_f64()
        )
    }

    fn show(&mut self, r: &PhaseResult, eligible: u32, start: Instant, in_flight: usize) {
        let period = match self.mode {
            Progress::Off => return,
            Progress::InPlace => Duration::from_millis(200),
            Progress::Lines => Duration::from_secs(1),
        };
        let elapsed = self.last.elapsed();
        if elapsed < period {
            return;
        }
        self.rate = f64::from(r.completed - self.last_done) / elapsed.as_secs_f64();
        self.last_done = r.completed;
        self.last = Instant::now();
        let line = self.text(r, eligible, start, in_flight);
        let mut err = std::io::stderr().lock();
        let _ = match self.mode {
            Progress::InPlace => write!(err, "\r{line}\x1b[K"),
            _ => writeln!(err, "{line}"),
        };
        let _ = err.flush();
    }

    fn finish(&mut self, r: &PhaseResult, eligible: u32, start: Instant) {
        if self.mode == Progress::Off {
            return;
        }
        self.rate = f64::from(r.completed) / r.elapsed.as_secs_f64().max(1e-9);
        let line = self.text(r, eligible, start, 0).replace("/s now", "/s avg");
        let mut err = std::io::stderr().lock();
        let _ = match self.mode {
            Progress::InPlace => writeln!(err, "\r{line}\x1b[K"),
            _ => writeln!(err, "{line}"),
        };
    }
}
