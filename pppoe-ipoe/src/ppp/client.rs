//! [`PppClient`]: the peer's (subscriber's) side of a PPP link, sans-IO, as
//! pppd 2.4.9 negotiates it over PPPoE.
//!
//! - LCP (RFC 1661) on the [`fsm`](super::fsm) automaton: we ask for our
//!   MRU and a Magic-Number; of the access concentrator's options we accept
//!   MRU, Magic-Number and PAP as Authentication-Protocol (CHAP-MD5 too when
//!   [`PppClientConfig::chap_md5`] is given, else we Configure-Nak it with
//!   PAP); everything else is Configure-Rejected.
//! - Once LCP is Opened we authenticate with PAP (RFC 1334; the
//!   Authenticate-Request is retransmitted every restart period, with a new
//!   identifier as pppd does) or answer CHAP Challenges (RFC 1994).
//! - Then IPCP (RFC 1332, RFC 1877): we ask for IP-Address 0.0.0.0 and, with
//!   [`PppClientConfig::ask_dns`], both DNS addresses 0.0.0.0, take the values
//!   of the Configure-Nak, drop Configure-Rejected options, and accept the
//!   access concentrator's own (nonzero) IP-Address.
//!
//! The caller feeds PPP payloads (protocol field split off) to
//! [`PppClient::input`], calls [`PppClient::tick`] at
//! [`PppClient::next_deadline`] and sends [`ClientOutput::frames`] with
//! their protocol field. Time is monotonic milliseconds.

use std::net::Ipv4Addr;

use super::fsm::{Action, Automaton, Event, State};
use super::wire::{
    Code, ConfigOption, chap_code, emit_chap_value, emit_option, emit_packet, emit_pap_request,
    ipcp_opt, lcp_opt, pap_code, parse_chap_value, parse_options, parse_packet,
};
use super::{DownReason, Phase, proto};

/// Computes a CHAP-MD5 response: `MD5(id || secret || challenge)`
/// (RFC 1994 section 4.1). Passed in so this crate needs no MD5 of its own.
pub type ChapMd5 = fn(id: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16];

/// Smallest MRU of the peer we accept (the value the server side accepts).
const MIN_MRU: u16 = 64;

/// Settings of one PPP client.
#[derive(Debug, Clone)]
pub struct PppClientConfig {
    /// PAP Peer-ID / CHAP Name.
    pub user: Vec<u8>,
    /// PAP Password / CHAP secret.
    pub password: Vec<u8>,
    /// MRU we ask for. Default 1492 (PPPoE, RFC 2516 section 7).
    pub mru: u16,
    /// Ask for both DNS addresses in IPCP (pppd's `usepeerdns`). Default true.
    pub ask_dns: bool,
    /// Restart timer (RFC 1661 section 4.6), also the PAP retransmission
    /// interval. Default 3000 ms (pppd).
    pub restart_ms: u64,
    /// Max-Configure, also PAP Authenticate-Requests sent. Default 10.
    pub max_configure: u32,
    /// Max-Terminate. Default 2.
    pub max_terminate: u32,
    /// Max-Failure: Configure-Naks sent before Configure-Rejecting instead.
    /// Default 5.
    pub max_failure: u32,
    /// CHAP-MD5 response function; `None` refuses CHAP (Configure-Nak with
    /// PAP). Default `None`.
    pub chap_md5: Option<ChapMd5>,
}

impl Default for PppClientConfig {
    fn default() -> Self {
        PppClientConfig {
            user: Vec::new(),
            password: Vec::new(),
            mru: 1492,
            ask_dns: true,
            restart_ms: 3000,
            max_configure: 10,
            max_terminate: 2,
            max_failure: 5,
            chap_md5: None,
        }
    }
}

/// Something the caller must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PppClientEvent {
    /// IPCP reached Opened. Sent once.
    Up {
        /// Our address.
        ipv4: Ipv4Addr,
        /// The access concentrator's address (0.0.0.0 if it sent none).
        peer: Ipv4Addr,
        /// DNS servers given (nonzero ones, primary first).
        dns: Vec<Ipv4Addr>,
    },
    /// The link is over. Sent once; the client ignores everything afterwards.
    Down {
        /// Why.
        reason: DownReason,
    },
}

/// What a call produced: frames to send (in order) and events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientOutput {
    /// `(PPP protocol, PPP payload without the protocol field)`.
    pub frames: Vec<(u16, Vec<u8>)>,
    /// Events, in the order they happened.
    pub events: Vec<PppClientEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    Lcp,
    Ipcp,
}

impl Layer {
    fn protocol(self) -> u16 {
        match self {
            Layer::Lcp => proto::LCP,
            Layer::Ipcp => proto::IPCP,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthProto {
    None,
    Pap,
    Chap,
}

/// One negotiating layer: the automaton plus identifiers and counters.
#[derive(Debug, Clone)]
struct Negotiation {
    fsm: Automaton,
    next_id: u8,
    req_id: u8,
    last_req: Vec<u8>,
    seen_ack: bool,
    naks_sent: u32,
    naks_received: u32,
}

impl Negotiation {
    fn new(cfg: &PppClientConfig) -> Self {
        Negotiation {
            fsm: Automaton::new(cfg.max_configure, cfg.max_terminate, cfg.restart_ms),
            next_id: 1,
            req_id: 0,
            last_req: Vec::new(),
            seen_ack: false,
            naks_sent: 0,
            naks_received: 0,
        }
    }

    fn take_id(&mut self) -> u8 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }
}

/// What a received packet brings to the automaton's send actions.
#[derive(Debug, Default)]
struct Rx<'a> {
    id: u8,
    reply: Option<(Code, Vec<u8>)>,
    packet: &'a [u8],
    echo: Option<&'a [u8]>,
}

/// The subscriber's side of one PPP link. See the module docs.
#[derive(Debug, Clone)]
pub struct PppClient {
    cfg: PppClientConfig,
    phase: Phase,
    magic: u32,
    want_mru: Option<u16>,
    want_magic: bool,
    lcp: Negotiation,
    ipcp: Negotiation,
    auth: AuthProto,
    auth_id: u8,
    auth_deadline: Option<u64>,
    auth_left: u32,
    /// IP-Address we ask for (`None` once rejected).
    addr: Option<Ipv4Addr>,
    /// Primary and secondary DNS we ask for (`None`: not asked).
    dns: [Option<Ipv4Addr>; 2],
    peer_addr: Ipv4Addr,
    ipcp_started: bool,
    up_sent: bool,
    reason: Option<DownReason>,
    down_sent: bool,
    out: ClientOutput,
}

impl PppClient {
    /// A client in phase Dead; `magic` is our LCP Magic-Number (nonzero; 0
    /// is replaced).
    pub fn new(cfg: PppClientConfig, magic: u32) -> Self {
        let dns = if cfg.ask_dns {
            [Some(Ipv4Addr::UNSPECIFIED); 2]
        } else {
            [None; 2]
        };
        PppClient {
            phase: Phase::Dead,
            magic: if magic == 0 { next_magic(0) } else { magic },
            want_mru: Some(cfg.mru),
            want_magic: true,
            lcp: Negotiation::new(&cfg),
            ipcp: Negotiation::new(&cfg),
            auth: AuthProto::None,
            auth_id: 0,
            auth_deadline: None,
            auth_left: 0,
            addr: Some(Ipv4Addr::UNSPECIFIED),
            dns,
            peer_addr: Ipv4Addr::UNSPECIFIED,
            ipcp_started: false,
            up_sent: false,
            reason: None,
            down_sent: false,
            out: ClientOutput::default(),
            cfg,
        }
    }

    /// The PPPoE session is up: Open LCP, so our first Configure-Request goes out.
    pub fn start(&mut self, now_ms: u64) -> ClientOutput {
        if self.down_sent || self.lcp.fsm.state() != State::Initial {
            return ClientOutput::default();
        }
        self.phase = Phase::Establish;
        self.run(now_ms, Layer::Lcp, Event::Open, &Rx::default());
        self.run(now_ms, Layer::Lcp, Event::Up, &Rx::default());
        self.finish()
    }

    /// One PPP packet from the access concentrator: `protocol` and the
    /// payload after it.
    pub fn input(&mut self, now_ms: u64, protocol: u16, payload: &[u8]) -> ClientOutput {
        if self.down_sent || self.phase == Phase::Dead {
            return ClientOutput::default();
        }
        match protocol {
            proto::LCP => self.lcp_input(now_ms, payload),
            proto::PAP | proto::CHAP if self.phase != Phase::Establish => {
                self.auth_input(now_ms, protocol, payload)
            }
            proto::IPCP if self.phase == Phase::Network => self.ipcp_input(now_ms, payload),
            // RFC 1661 section 3.4: authentication and NCP packets before
            // their phase, and data, are silently discarded.
            proto::PAP | proto::CHAP | proto::IPCP | proto::IPV4 => {}
            _ => self.protocol_reject(protocol, payload),
        }
        self.finish()
    }

    /// Timers due at `now_ms`: restart timers and PAP retransmission.
    pub fn tick(&mut self, now_ms: u64) -> ClientOutput {
        if self.down_sent {
            return ClientOutput::default();
        }
        if let Some(ev) = self.lcp.fsm.timeout_event(now_ms) {
            self.run(now_ms, Layer::Lcp, ev, &Rx::default());
        }
        if let Some(ev) = self.ipcp.fsm.timeout_event(now_ms) {
            self.run(now_ms, Layer::Ipcp, ev, &Rx::default());
        }
        if self.phase == Phase::Authenticate && self.auth_deadline.is_some_and(|d| now_ms >= d) {
            if self.auth_left > 0 {
                self.send_pap(now_ms);
            } else {
                self.auth_deadline = None;
                self.close_with(now_ms, DownReason::AuthTimeout);
            }
        }
        self.finish()
    }

    /// Hangs up: LCP Terminate-Request now; [`PppClientEvent::Down`] when it
    /// is acknowledged or after Max-Terminate restart periods.
    pub fn close(&mut self, now_ms: u64) -> ClientOutput {
        if self.down_sent {
            return ClientOutput::default();
        }
        self.close_with(now_ms, DownReason::AdminClose);
        self.finish()
    }

    /// The PPPoE session ended under the link (a PADT): the link is down at
    /// once, nothing is sent.
    pub fn lower_down(&mut self, now_ms: u64) -> ClientOutput {
        if self.down_sent {
            return ClientOutput::default();
        }
        self.reason.get_or_insert(DownReason::PeerTerminated);
        self.run(now_ms, Layer::Lcp, Event::Down, &Rx::default());
        self.emit_down();
        self.finish()
    }

    /// The link phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The LCP automaton's state.
    pub fn lcp_state(&self) -> State {
        self.lcp.fsm.state()
    }

    /// The IPCP automaton's state.
    pub fn ipcp_state(&self) -> State {
        self.ipcp.fsm.state()
    }

    /// Our address once IPCP is Opened.
    pub fn address(&self) -> Option<Ipv4Addr> {
        self.up_sent.then_some(self.addr).flatten()
    }

    /// When [`tick`](Self::tick) next has work, if ever.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.down_sent {
            return None;
        }
        let auth = if self.phase == Phase::Authenticate {
            self.auth_deadline
        } else {
            None
        };
        [self.lcp.fsm.deadline(), self.ipcp.fsm.deadline(), auth]
            .into_iter()
            .flatten()
            .min()
    }

    fn finish(&mut self) -> ClientOutput {
        if self.reason.is_some()
            && matches!(
                self.lcp.fsm.state(),
                State::Initial | State::Starting | State::Closed | State::Stopped
            )
        {
            self.emit_down();
        }
        std::mem::take(&mut self.out)
    }

    fn emit_down(&mut self) {
        if !self.down_sent {
            self.down_sent = true;
            self.phase = Phase::Dead;
            let reason = self.reason.unwrap_or(DownReason::NegotiationFailed);
            self.out.events.push(PppClientEvent::Down { reason });
        }
    }

    fn send(&mut self, protocol: u16, packet: Vec<u8>) {
        self.out.frames.push((protocol, packet));
    }

    fn close_with(&mut self, now_ms: u64, reason: DownReason) {
        if self.reason.is_some() {
            return;
        }
        self.reason = Some(reason);
        self.phase = Phase::Terminate;
        self.auth_deadline = None;
        self.run(now_ms, Layer::Lcp, Event::Close, &Rx::default());
    }

    fn nego(&mut self, layer: Layer) -> &mut Negotiation {
        match layer {
            Layer::Lcp => &mut self.lcp,
            Layer::Ipcp => &mut self.ipcp,
        }
    }

    /// Feeds `event` to a layer's automaton and performs its actions.
    fn run(&mut self, now_ms: u64, layer: Layer, event: Event, rx: &Rx<'_>) {
        let Some(actions) = self.nego(layer).fsm.handle(now_ms, event) else {
            return;
        };
        let protocol = layer.protocol();
        let mut notices = Vec::new();
        for action in actions {
            match action {
                Action::Tlu | Action::Tld | Action::Tls | Action::Tlf => notices.push(*action),
                Action::IrcConfigure | Action::IrcTerminate | Action::Zrc => {}
                Action::Scr => {
                    let options = match layer {
                        Layer::Lcp => self.lcp_request(),
                        Layer::Ipcp => self.ipcp_request(),
                    };
                    let n = self.nego(layer);
                    let id = n.take_id();
                    n.req_id = id;
                    n.seen_ack = false;
                    n.last_req.clone_from(&options);
                    self.send(
                        protocol,
                        emit_packet(Code::ConfigureRequest.into(), id, &options),
                    );
                }
                Action::Sca | Action::Scn => {
                    if let Some((code, data)) = &rx.reply {
                        self.send(protocol, emit_packet((*code).into(), rx.id, data));
                    }
                }
                Action::Str => {
                    let id = self.nego(layer).take_id();
                    self.send(
                        protocol,
                        emit_packet(Code::TerminateRequest.into(), id, b"User request"),
                    );
                }
                Action::Sta => {
                    self.send(protocol, emit_packet(Code::TerminateAck.into(), rx.id, &[]))
                }
                Action::Scj => {
                    let id = self.nego(layer).take_id();
                    let room = usize::from(self.cfg.mru).saturating_sub(4);
                    let rejected = &rx.packet[..rx.packet.len().min(room)];
                    self.send(protocol, emit_packet(Code::CodeReject.into(), id, rejected));
                }
                Action::Ser => {
                    if let Some(data) = rx.echo {
                        let mut reply = self.our_magic_field().to_be_bytes().to_vec();
                        reply.extend_from_slice(data);
                        self.send(protocol, emit_packet(Code::EchoReply.into(), rx.id, &reply));
                    }
                }
            }
        }
        for notice in notices {
            match (layer, notice) {
                (Layer::Lcp, Action::Tlu) => self.lcp_up(now_ms),
                (Layer::Lcp, Action::Tld) => self.lcp_down(now_ms, event),
                (Layer::Lcp, Action::Tlf) => {
                    self.reason.get_or_insert(DownReason::NegotiationFailed);
                }
                (Layer::Ipcp, Action::Tlu) => self.ipcp_up(now_ms),
                (Layer::Ipcp, Action::Tlf) => {
                    self.close_with(now_ms, DownReason::NegotiationFailed)
                }
                _ => {}
            }
        }
    }

    fn lcp_up(&mut self, now_ms: u64) {
        self.phase = Phase::Authenticate;
        match self.auth {
            AuthProto::None => self.enter_network(now_ms),
            AuthProto::Pap => {
                self.auth_left = self.cfg.max_configure;
                self.send_pap(now_ms);
            }
            // The authenticator's Challenge drives CHAP.
            AuthProto::Chap => {}
        }
    }

    fn lcp_down(&mut self, now_ms: u64, event: Event) {
        self.auth_deadline = None;
        if !matches!(self.ipcp.fsm.state(), State::Initial | State::Starting) {
            self.run(now_ms, Layer::Ipcp, Event::Down, &Rx::default());
        }
        if self.reason.is_none() {
            self.phase = Phase::Terminate;
            if event == Event::Rtr {
                self.reason = Some(DownReason::PeerTerminated);
                self.emit_down();
            } else {
                self.reason = Some(DownReason::NegotiationFailed);
            }
        }
    }

    fn enter_network(&mut self, now_ms: u64) {
        self.auth_deadline = None;
        if self.ipcp_started {
            return;
        }
        self.ipcp_started = true;
        self.phase = Phase::Network;
        self.run(now_ms, Layer::Ipcp, Event::Up, &Rx::default());
        self.run(now_ms, Layer::Ipcp, Event::Open, &Rx::default());
    }

    fn ipcp_up(&mut self, now_ms: u64) {
        if self.up_sent {
            return;
        }
        match self.addr {
            Some(ipv4) if !ipv4.is_unspecified() => {
                self.up_sent = true;
                let dns = self
                    .dns
                    .iter()
                    .flatten()
                    .filter(|d| !d.is_unspecified())
                    .copied()
                    .collect();
                self.out.events.push(PppClientEvent::Up {
                    ipv4,
                    peer: self.peer_addr,
                    dns,
                });
            }
            // IPCP opened without giving us an address: useless.
            _ => self.close_with(now_ms, DownReason::NegotiationFailed),
        }
    }

    fn our_magic_field(&self) -> u32 {
        if self.want_magic { self.magic } else { 0 }
    }

    fn lcp_request(&self) -> Vec<u8> {
        let mut o = Vec::with_capacity(10);
        if let Some(mru) = self.want_mru {
            emit_option(&mut o, lcp_opt::MRU, &mru.to_be_bytes());
        }
        if self.want_magic {
            emit_option(&mut o, lcp_opt::MAGIC_NUMBER, &self.magic.to_be_bytes());
        }
        o
    }

    fn ipcp_request(&self) -> Vec<u8> {
        let mut o = Vec::with_capacity(18);
        if let Some(a) = self.addr {
            emit_option(&mut o, ipcp_opt::IP_ADDRESS, &a.octets());
        }
        for (typ, dns) in [ipcp_opt::PRIMARY_DNS, ipcp_opt::SECONDARY_DNS]
            .into_iter()
            .zip(self.dns)
        {
            if let Some(d) = dns {
                emit_option(&mut o, typ, &d.octets());
            }
        }
        o
    }

    fn lcp_input(&mut self, now_ms: u64, payload: &[u8]) {
        let Ok(pkt) = parse_packet(payload) else {
            return;
        };
        let rx = Rx {
            id: pkt.id,
            packet: payload,
            ..Rx::default()
        };
        match Code::from(pkt.code) {
            Code::ConfigureRequest => {
                let Ok(opts) = parse_options(pkt.data) else {
                    return;
                };
                let (good, reply) = self.check_lcp_request(&opts, pkt.data);
                let ev = if good { Event::RcrGood } else { Event::RcrBad };
                self.lcp_event(
                    now_ms,
                    ev,
                    &Rx {
                        reply: Some(reply),
                        ..rx
                    },
                );
            }
            Code::ConfigureAck => {
                if pkt.id != self.lcp.req_id || self.lcp.seen_ack || pkt.data != self.lcp.last_req {
                    return;
                }
                self.lcp.seen_ack = true;
                self.lcp.naks_received = 0;
                self.lcp_event(now_ms, Event::Rca, &rx);
            }
            Code::ConfigureNak | Code::ConfigureReject => {
                if pkt.id != self.lcp.req_id || self.lcp.seen_ack {
                    return;
                }
                let Ok(opts) = parse_options(pkt.data) else {
                    return;
                };
                self.lcp.naks_received += 1;
                if self.lcp.naks_received > self.cfg.max_configure {
                    return self.close_with(now_ms, DownReason::NegotiationFailed);
                }
                let reject = pkt.code == u8::from(Code::ConfigureReject);
                self.apply_lcp_nak(&opts, reject);
                self.lcp.seen_ack = true;
                self.lcp_event(now_ms, Event::Rcn, &rx);
            }
            Code::TerminateRequest => self.lcp_event(now_ms, Event::Rtr, &rx),
            Code::TerminateAck => self.lcp_event(now_ms, Event::Rta, &rx),
            Code::CodeReject => self.code_reject_received(now_ms, Layer::Lcp, pkt.data),
            Code::ProtocolReject => {
                let Some(rejected) = pkt.data.get(..2) else {
                    return;
                };
                match u16::from_be_bytes([rejected[0], rejected[1]]) {
                    proto::LCP => self.lcp_event(now_ms, Event::RxjBad, &rx),
                    proto::IPCP | proto::PAP | proto::CHAP => {
                        self.lcp_event(now_ms, Event::RxjGood, &rx);
                        self.close_with(now_ms, DownReason::NegotiationFailed);
                    }
                    _ => self.lcp_event(now_ms, Event::RxjGood, &rx),
                }
            }
            Code::EchoRequest => {
                let Some((magic, data)) = split_magic(pkt.data) else {
                    return;
                };
                if self.want_magic && magic == self.magic {
                    // Our own request looped back (RFC 1661 section 6.4).
                    return;
                }
                self.lcp_event(
                    now_ms,
                    Event::Rxr,
                    &Rx {
                        echo: Some(data),
                        ..rx
                    },
                );
            }
            Code::EchoReply | Code::DiscardRequest => self.lcp_event(now_ms, Event::Rxr, &rx),
            Code::Unknown(_) => self.lcp_event(now_ms, Event::Ruc, &rx),
        }
    }

    /// LCP events; renegotiation once Opened ends the link (as the server
    /// side does), so a session is never half up.
    fn lcp_event(&mut self, now_ms: u64, event: Event, rx: &Rx<'_>) {
        if self.lcp.fsm.state() == State::Opened
            && matches!(
                event,
                Event::RcrGood | Event::RcrBad | Event::Rca | Event::Rcn | Event::Rta
            )
        {
            self.close_with(now_ms, DownReason::NegotiationFailed);
            return;
        }
        self.run(now_ms, Layer::Lcp, event, rx);
    }

    fn code_reject_received(&mut self, now_ms: u64, layer: Layer, data: &[u8]) {
        let Some(&code) = data.first() else {
            return;
        };
        // RFC 1661 section 5.6: rejecting a Configure or Terminate code is catastrophic.
        let ev = if (1..=7).contains(&code) {
            Event::RxjBad
        } else {
            Event::RxjGood
        };
        self.run(now_ms, layer, ev, &Rx::default());
    }

    /// Classifies the access concentrator's LCP Configure-Request and
    /// builds the reply.
    fn check_lcp_request(
        &mut self,
        opts: &[ConfigOption<'_>],
        all: &[u8],
    ) -> (bool, (Code, Vec<u8>)) {
        let mut rej = Vec::new();
        let mut nak = Vec::new();
        let mut nak_raw = Vec::new();
        let mut auth = AuthProto::None;
        for o in opts {
            match (o.typ, o.value) {
                (lcp_opt::MRU, [hi, lo]) => {
                    if u16::from_be_bytes([*hi, *lo]) < MIN_MRU {
                        emit_option(&mut nak, lcp_opt::MRU, &self.cfg.mru.to_be_bytes());
                        nak_raw.extend_from_slice(o.raw);
                    }
                }
                (lcp_opt::AUTH_PROTOCOL, [0xc0, 0x23]) => auth = AuthProto::Pap,
                (lcp_opt::AUTH_PROTOCOL, [0xc2, 0x23, lcp_opt::CHAP_MD5])
                    if self.cfg.chap_md5.is_some() =>
                {
                    auth = AuthProto::Chap
                }
                (lcp_opt::AUTH_PROTOCOL, [_, _, ..]) => {
                    // We only do PAP (or CHAP-MD5): suggest it.
                    emit_option(&mut nak, lcp_opt::AUTH_PROTOCOL, &[0xc0, 0x23]);
                    nak_raw.extend_from_slice(o.raw);
                }
                (lcp_opt::MAGIC_NUMBER, [a, b, c, d]) => {
                    let v = u32::from_be_bytes([*a, *b, *c, *d]);
                    if v == 0 || (self.want_magic && v == self.magic) {
                        let mut suggest = next_magic(v ^ self.magic);
                        if suggest == self.magic {
                            suggest = next_magic(suggest);
                        }
                        emit_option(&mut nak, lcp_opt::MAGIC_NUMBER, &suggest.to_be_bytes());
                        nak_raw.extend_from_slice(o.raw);
                    }
                }
                _ => rej.extend_from_slice(o.raw),
            }
        }
        if !rej.is_empty() {
            return (false, (Code::ConfigureReject, rej));
        }
        if !nak.is_empty() {
            if self.lcp.naks_sent >= self.cfg.max_failure {
                return (false, (Code::ConfigureReject, nak_raw));
            }
            self.lcp.naks_sent += 1;
            return (false, (Code::ConfigureNak, nak));
        }
        self.lcp.naks_sent = 0;
        self.auth = auth;
        (true, (Code::ConfigureAck, all.to_vec()))
    }

    fn apply_lcp_nak(&mut self, opts: &[ConfigOption<'_>], reject: bool) {
        for o in opts {
            match (o.typ, reject) {
                (lcp_opt::MRU, true) => self.want_mru = None,
                (lcp_opt::MRU, false) => {
                    if let Some(v) = o.u16().filter(|v| (MIN_MRU..=self.cfg.mru).contains(v)) {
                        self.want_mru = Some(v);
                    }
                }
                (lcp_opt::MAGIC_NUMBER, true) => self.want_magic = false,
                (lcp_opt::MAGIC_NUMBER, false) => self.magic = next_magic(self.magic),
                // Options we did not send, or a Nak suggesting others: ignored.
                _ => {}
            }
        }
    }

    fn send_pap(&mut self, now_ms: u64) {
        self.auth_left = self.auth_left.saturating_sub(1);
        self.auth_id = self.auth_id.wrapping_add(1);
        let data = emit_pap_request(&self.cfg.user, &self.cfg.password);
        self.send(
            proto::PAP,
            emit_packet(pap_code::REQUEST, self.auth_id, &data),
        );
        self.auth_deadline = Some(now_ms + self.cfg.restart_ms);
    }

    fn auth_input(&mut self, now_ms: u64, protocol: u16, payload: &[u8]) {
        let Ok(pkt) = parse_packet(payload) else {
            return;
        };
        match (protocol, self.auth, pkt.code) {
            (proto::PAP, AuthProto::Pap, pap_code::ACK)
                if pkt.id == self.auth_id && self.phase == Phase::Authenticate =>
            {
                self.enter_network(now_ms);
            }
            (proto::PAP, AuthProto::Pap, pap_code::NAK) if pkt.id == self.auth_id => {
                self.close_with(now_ms, DownReason::AuthFailed);
            }
            (proto::CHAP, AuthProto::Chap, chap_code::CHALLENGE) => {
                let (Some(md5), Ok(challenge)) = (self.cfg.chap_md5, parse_chap_value(pkt.data))
                else {
                    return;
                };
                let response = md5(pkt.id, &self.cfg.password, challenge.value);
                let data = emit_chap_value(&response, &self.cfg.user);
                self.auth_id = pkt.id;
                self.send(proto::CHAP, emit_packet(chap_code::RESPONSE, pkt.id, &data));
            }
            (proto::CHAP, AuthProto::Chap, chap_code::SUCCESS)
                if pkt.id == self.auth_id && self.phase == Phase::Authenticate =>
            {
                self.enter_network(now_ms);
            }
            (proto::CHAP, AuthProto::Chap, chap_code::FAILURE) if pkt.id == self.auth_id => {
                self.close_with(now_ms, DownReason::AuthFailed);
            }
            _ => {}
        }
    }

    fn ipcp_input(&mut self, now_ms: u64, payload: &[u8]) {
        let Ok(pkt) = parse_packet(payload) else {
            return;
        };
        let rx = Rx {
            id: pkt.id,
            packet: payload,
            ..Rx::default()
        };
        match Code::from(pkt.code) {
            Code::ConfigureRequest => {
                let Ok(opts) = parse_options(pkt.data) else {
                    return;
                };
                let (good, reply) = self.check_ipcp_request(&opts, pkt.data);
                let ev = if good { Event::RcrGood } else { Event::RcrBad };
                self.run(
                    now_ms,
                    Layer::Ipcp,
                    ev,
                    &Rx {
                        reply: Some(reply),
                        ..rx
                    },
                );
            }
            Code::ConfigureAck => {
                if pkt.id != self.ipcp.req_id
                    || self.ipcp.seen_ack
                    || pkt.data != self.ipcp.last_req
                {
                    return;
                }
                self.ipcp.seen_ack = true;
                self.ipcp.naks_received = 0;
                self.run(now_ms, Layer::Ipcp, Event::Rca, &rx);
            }
            Code::ConfigureNak | Code::ConfigureReject => {
                if pkt.id != self.ipcp.req_id || self.ipcp.seen_ack {
                    return;
                }
                let Ok(opts) = parse_options(pkt.data) else {
                    return;
                };
                self.ipcp.naks_received += 1;
                if self.ipcp.naks_received > self.cfg.max_configure {
                    return self.close_with(now_ms, DownReason::NegotiationFailed);
                }
                let reject = pkt.code == u8::from(Code::ConfigureReject);
                for o in &opts {
                    let value = o.u32().map(Ipv4Addr::from);
                    let slot = match o.typ {
                        ipcp_opt::IP_ADDRESS => &mut self.addr,
                        ipcp_opt::PRIMARY_DNS => &mut self.dns[0],
                        ipcp_opt::SECONDARY_DNS => &mut self.dns[1],
                        _ => continue,
                    };
                    // A Nak may only change options we asked for.
                    if reject {
                        *slot = None;
                    } else if slot.is_some() && value.is_some() {
                        *slot = value;
                    }
                }
                self.ipcp.seen_ack = true;
                self.run(now_ms, Layer::Ipcp, Event::Rcn, &rx);
            }
            Code::TerminateRequest => self.run(now_ms, Layer::Ipcp, Event::Rtr, &rx),
            Code::TerminateAck => self.run(now_ms, Layer::Ipcp, Event::Rta, &rx),
            Code::CodeReject => self.code_reject_received(now_ms, Layer::Ipcp, pkt.data),
            _ => self.run(now_ms, Layer::Ipcp, Event::Ruc, &rx),
        }
    }

    /// The access concentrator's IPCP Configure-Request: its own nonzero
    /// IP-Address is acknowledged, everything else rejected.
    fn check_ipcp_request(
        &mut self,
        opts: &[ConfigOption<'_>],
        all: &[u8],
    ) -> (bool, (Code, Vec<u8>)) {
        let mut rej = Vec::new();
        let mut peer = None;
        for o in opts {
            match (o.typ, o.u32()) {
                (ipcp_opt::IP_ADDRESS, Some(v)) if v != 0 => peer = Some(Ipv4Addr::from(v)),
                _ => rej.extend_from_slice(o.raw),
            }
        }
        if !rej.is_empty() {
            return (false, (Code::ConfigureReject, rej));
        }
        if let Some(p) = peer {
            self.peer_addr = p;
        }
        (true, (Code::ConfigureAck, all.to_vec()))
    }

    fn protocol_reject(&mut self, protocol: u16, payload: &[u8]) {
        // RFC 1661 section 5.7: only in the LCP Opened state.
        if self.lcp.fsm.state() != State::Opened {
            return;
        }
        let room = usize::from(self.cfg.mru).saturating_sub(6);
        let mut data = protocol.to_be_bytes().to_vec();
        data.extend_from_slice(&payload[..payload.len().min(room)]);
        let id = self.lcp.take_id();
        self.send(
            proto::LCP,
            emit_packet(Code::ProtocolReject.into(), id, &data),
        );
    }
}

fn split_magic(data: &[u8]) -> Option<(u32, &[u8])> {
    let (m, rest) = data.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*m), rest))
}

/// Another nonzero magic number (a fixed bijective mix).
fn next_magic(m: u32) -> u32 {
    let x = (m ^ 0x7f4a_7c15).rotate_left(11).wrapping_mul(0x9e37_79b1);
    if x == 0 { 0xa5a5_a5a5 } else { x }
}

#[cfg(test)]
mod tests;
