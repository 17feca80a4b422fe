//! [`PppSession`]: one subscriber's PPP link, authenticator side.
//!
//! LCP (RFC 1661) negotiates MRU, Magic-Number and the Authentication-
//! Protocol we require; every other LCP option is Configure-Rejected, as
//! RFC 2516 section 7 forbids ACCM, PFC and ACFC on PPPoE. Once LCP is
//! Opened the peer authenticates with PAP (RFC 1334) or CHAP-MD5
//! (RFC 1994); the verdict comes from the caller. Then IPCP (RFC 1332)
//! gives the peer its address and DNS servers (RFC 1877). If the caller
//! offered IPv6 ([`PppSession::enable_ipv6`]), IPv6CP (RFC 5072) agrees on
//! interface identifiers alongside IPCP; its failure leaves IPv4 up. Any
//! other protocol is Protocol-Rejected while LCP is Opened.
//!
//! Departures from a general-purpose PPP implementation, chosen for a BNG:
//! - LCP renegotiation after Opened (a Configure-Request, -Ack, -Nak or
//!   Terminate-Ack from the peer) ends the session instead of restarting
//!   it, so the control plane never sees a link that is half up.
//! - A duplicate Configure-Ack/Nak/Reject for a request already acknowledged
//!   is discarded (pppd `fsm.c` does the same with `seen_ack`).
//! - IPCP renegotiation keeps the session; [`PppEvent::Up`] is sent once.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::Ipv4Addr;

use super::fsm::{Action, Automaton, Event, State};
use super::wire::{
    Code, ConfigOption, chap_code, emit_chap_value, emit_option, emit_packet, ipcp_opt, ipv6cp_opt,
    lcp_opt, pap_code, parse_chap_value, parse_options, parse_packet, parse_pap_request,
};
use super::{
    AuthMethod, CHAP_CHALLENGE_LEN, CHAP_NAME, Credentials, DownReason, Output, Phase, PppConfig,
    PppEvent, proto,
};

/// Smallest MRU accepted from the peer (RFC 791's 68-byte minimum IPv4
/// MTU rounded down to a value pppd also accepts).
const MIN_MRU: u16 = 64;

/// Per-session counters of what was dropped or sent unprompted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PppCounters {
    /// Packets that failed to parse (bad lengths, truncated fields).
    pub malformed: u64,
    /// Well-formed packets not valid in the current phase or state
    /// (stale identifiers, NCP before authentication, data frames).
    pub discarded: u64,
    /// Events the RFC 1661 table marks illegal ("-"), ignored.
    pub illegal_events: u64,
    /// LCP Protocol-Rejects sent for unknown protocols.
    pub protocol_rejects_sent: u64,
    /// Code-Rejects sent for unknown codes.
    pub code_rejects_sent: u64,
    /// LCP Echo-Requests sent.
    pub echo_requests_sent: u64,
    /// LCP Echo-Replies received.
    pub echo_replies_received: u64,
    /// Our first LCP Configure-Request sent again at once because the
    /// peer's first request showed it had not seen ours.
    pub lcp_requests_repeated: u64,
}

/// What LCP, authentication and IPCP agreed on for a session in the
/// Network phase with IPCP open: enough to carry on the link from another
/// process ([`PppSession::negotiated`], [`PppSession::restore`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NegotiatedLink {
    /// Our LCP Magic-Number as the peer acknowledged it; `None` if the peer
    /// rejected the option (our Echo packets then carry 0).
    pub magic: Option<u32>,
    /// The peer's Magic-Number, if it sent one.
    pub peer_magic: Option<u32>,
    /// The MRU we asked for as acknowledged; `None` if the peer rejected it.
    pub mru: Option<u16>,
    /// The MRU the peer asked for (1500 if it sent none).
    pub peer_mru: u16,
    /// How the peer authenticated: [`AuthMethod::Pap`] or
    /// [`AuthMethod::Chap`].
    pub auth: AuthMethod,
    /// The peer's address.
    pub ipv4: Ipv4Addr,
    /// Our (gateway) address, as sent in our IPCP Configure-Request.
    pub gateway: Ipv4Addr,
    /// The DNS servers offered (RFC 1877).
    pub dns: [Option<Ipv4Addr>; 2],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    Lcp,
    Ipcp,
    Ipv6cp,
}

impl Layer {
    fn protocol(self) -> u16 {
        match self {
            Layer::Lcp => proto::LCP,
            Layer::Ipcp => proto::IPCP,
            Layer::Ipv6cp => proto::IPV6CP,
        }
    }
}

/// One negotiating layer: the automaton plus identifiers and counters.
#[derive(Debug, Clone)]
struct Negotiation {
    fsm: Automaton,
    next_id: u8,
    req_id: u8,
    /// Options of the last Configure-Request sent.
    last_req: Vec<u8>,
    seen_ack: bool,
    naks_sent: u32,
    naks_received: u32,
    /// Configure-Requests sent in this session.
    requests_sent: u32,
    /// A Configure-Request from the peer arrived at least once.
    peer_requested: bool,
}

impl Negotiation {
    fn new(cfg: &PppConfig) -> Self {
        Negotiation {
            fsm: Automaton::new(cfg.max_configure, cfg.max_terminate, cfg.restart_ms),
            next_id: 1,
            req_id: 0,
            last_req: Vec::new(),
            seen_ack: false,
            naks_sent: 0,
            naks_received: 0,
            requests_sent: 0,
            peer_requested: false,
        }
    }

    fn take_id(&mut self) -> u8 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthProto {
    Pap,
    Chap,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AuthStage {
    NotStarted,
    WaitingCredentials,
    Pending { id: u8 },
    Accepted { message: Vec<u8> },
    Failed,
}

/// IPv6CP interface identifiers (RFC 5072 section 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ipv6Ids {
    /// Ours: sent in our Configure-Request, the low half of our link-local.
    ours: u64,
    /// Send the Interface-Identifier option (false once the peer rejected it).
    send_ours: bool,
    /// The peer's, as we acknowledged it.
    peer: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Assigned {
    peer: Ipv4Addr,
    gateway: Ipv4Addr,
    dns: [Option<Ipv4Addr>; 2],
}

/// What a received packet brings to the automaton's send actions.
#[derive(Debug, Default)]
struct Rx<'a> {
    id: u8,
    /// Configure-Ack/Nak/Reject to send for sca/scn.
    reply: Option<(Code, Vec<u8>)>,
    /// The received packet, for scj.
    packet: &'a [u8],
    /// Echo-Request data after the magic number, for ser.
    echo: Option<&'a [u8]>,
}

enum NakOutcome {
    Apply,
    Discard,
    Fatal,
}

/// One subscriber's PPP link, authenticator side. See the module docs.
#[derive(Debug, Clone)]
pub struct PppSession {
    cfg: PppConfig,
    phase: Phase,
    magic: u32,
    lcp: Negotiation,
    ipcp: Negotiation,
    ipv6cp: Negotiation,
    ipv6: Option<Ipv6Ids>,
    ipv6cp_started: bool,
    want_mru: Option<u16>,
    want_auth: Option<AuthProto>,
    want_magic: bool,
    peer_mru: u16,
    peer_magic: Option<u32>,
    auth_stage: AuthStage,
    auth_id: u8,
    challenge: [u8; CHAP_CHALLENGE_LEN],
    challenge_seed: [u8; 16],
    challenges_made: u64,
    challenges_left: u32,
    auth_deadline: Option<u64>,
    retransmit_at: Option<u64>,
    addr: Option<Assigned>,
    want_gateway: bool,
    need_address_asked: bool,
    addr_hint_sent: bool,
    pending_ipcp: Option<Vec<u8>>,
    ipcp_started: bool,
    up_sent: bool,
    echo_at: Option<u64>,
    echo_outstanding: u32,
    reason: Option<DownReason>,
    down_sent: bool,
    counters: PppCounters,
    out: Output,
}

impl PppSession {
    /// A session in phase Dead. `magic` is our LCP Magic-Number (nonzero;
    /// 0 is replaced); `chap_challenge_seed` must be secret and random: the
    /// CHAP challenges and the first CHAP identifier derive from it.
    pub fn new(cfg: PppConfig, magic: u32, chap_challenge_seed: [u8; 16]) -> Self {
        let want_auth = Some(match cfg.auth {
            AuthMethod::Pap => AuthProto::Pap,
            AuthMethod::Chap | AuthMethod::ChapThenPap => AuthProto::Chap,
        });
        PppSession {
            phase: Phase::Dead,
            magic: if magic == 0 { next_magic(0) } else { magic },
            lcp: Negotiation::new(&cfg),
            ipcp: Negotiation::new(&cfg),
            ipv6cp: Negotiation::new(&cfg),
            ipv6: None,
            ipv6cp_started: false,
            want_mru: Some(cfg.mru),
            want_auth,
            want_magic: true,
            peer_mru: 1500,
            peer_magic: None,
            auth_stage: AuthStage::NotStarted,
            auth_id: chap_challenge_seed[0],
            challenge: [0; CHAP_CHALLENGE_LEN],
            challenge_seed: chap_challenge_seed,
            challenges_made: 0,
            challenges_left: 0,
            auth_deadline: None,
            retransmit_at: None,
            addr: None,
            want_gateway: true,
            need_address_asked: false,
            addr_hint_sent: false,
            pending_ipcp: None,
            ipcp_started: false,
            up_sent: false,
            echo_at: None,
            echo_outstanding: 0,
            reason: None,
            down_sent: false,
            counters: PppCounters::default(),
            out: Output::default(),
            cfg,
        }
    }

    /// A session carried on from another process: LCP Opened with `link`'s
    /// options, the peer authenticated, IPCP Opened with `link`'s
    /// addresses, the Network phase. Echo-Requests are answered with (and
    /// sent, every `echo_interval_ms` from `now_ms`, with) `link.magic`;
    /// [`PppEvent::Up`] is not sent again. Only IPCP is restored (IPv6CP
    /// with [`PppSession::restore_ipv6`]): other network protocols start
    /// from their Initial state.
    pub fn restore(
        cfg: PppConfig,
        link: &NegotiatedLink,
        chap_challenge_seed: [u8; 16],
        now_ms: u64,
    ) -> Self {
        let mut s = PppSession::new(cfg, link.magic.unwrap_or(0), chap_challenge_seed);
        s.phase = Phase::Network;
        s.want_magic = link.magic.is_some();
        s.peer_magic = link.peer_magic;
        s.want_mru = link.mru;
        s.peer_mru = link.peer_mru;
        s.want_auth = Some(match link.auth {
            AuthMethod::Pap => AuthProto::Pap,
            AuthMethod::Chap | AuthMethod::ChapThenPap => AuthProto::Chap,
        });
        s.auth_stage = AuthStage::Accepted {
            message: Vec::new(),
        };
        s.addr = Some(Assigned {
            peer: link.ipv4,
            gateway: link.gateway,
            dns: link.dns,
        });
        s.need_address_asked = true;
        s.addr_hint_sent = true;
        s.ipcp_started = true;
        s.up_sent = true;
        s.lcp.fsm.force_state(now_ms, State::Opened, 0);
        s.lcp.last_req = s.lcp_request();
        s.lcp.seen_ack = true;
        s.ipcp.fsm.force_state(now_ms, State::Opened, 0);
        s.ipcp.last_req = s.ipcp_request();
        s.ipcp.seen_ack = true;
        if cfg.echo_interval_ms > 0 {
            s.echo_at = Some(now_ms + cfg.echo_interval_ms);
        }
        s
    }

    /// What was negotiated, once the session is in the Network phase with
    /// IPCP open (`None` before, and once it is ending).
    pub fn negotiated(&self) -> Option<NegotiatedLink> {
        if self.phase != Phase::Network
            || self.reason.is_some()
            || self.lcp.fsm.state() != State::Opened
            || self.ipcp.fsm.state() != State::Opened
        {
            return None;
        }
        let addr = self.addr?;
        Some(NegotiatedLink {
            magic: self.want_magic.then_some(self.magic),
            peer_magic: self.peer_magic,
            mru: self.want_mru,
            peer_mru: self.peer_mru,
            auth: match self.want_auth? {
                AuthProto::Pap => AuthMethod::Pap,
                AuthProto::Chap => AuthMethod::Chap,
            },
            ipv4: addr.peer,
            gateway: addr.gateway,
            dns: addr.dns,
        })
    }

    /// Starts LCP: the lower layer (the PPPoE session) is up and we Open,
    /// so the first LCP Configure-Request goes out.
    pub fn start(&mut self, now_ms: u64) -> Output {
        if self.down_sent || self.lcp.fsm.state() != State::Initial {
            return Output::default();
        }
        self.phase = Phase::Establish;
        self.run(now_ms, Layer::Lcp, Event::Open, &Rx::default());
        self.run(now_ms, Layer::Lcp, Event::Up, &Rx::default());
        self.finish()
    }

    /// One PPP packet from the peer: `protocol` and the payload after it.
    pub fn input(&mut self, now_ms: u64, protocol: u16, payload: &[u8]) -> Output {
        if self.down_sent || self.phase == Phase::Dead {
            self.counters.discarded += 1;
            return Output::default();
        }
        match protocol {
            proto::LCP => self.lcp_input(now_ms, payload),
            // RFC 1661 section 3.4: NCP and authentication packets before
            // their phase are silently discarded.
            proto::PAP | proto::CHAP if self.phase != Phase::Establish => {
                self.auth_input(now_ms, protocol, payload)
            }
            proto::IPCP if self.phase == Phase::Network => self.ipcp_input(now_ms, payload),
            proto::IPV6CP if self.ipv6.is_some() && self.phase == Phase::Network => {
                self.ipv6cp_input(now_ms, payload)
            }
            // Offered IPv6: early IPv6CP and IPv6 data are not rejected.
            proto::IPV6CP | proto::IPV6 if self.ipv6.is_some() => self.counters.discarded += 1,
            proto::PAP | proto::CHAP | proto::IPCP | proto::IPV4 => self.counters.discarded += 1,
            _ => self.protocol_reject(protocol, payload),
        }
        self.finish()
    }

    /// Timers due at `now_ms`: restart timers, CHAP retransmission,
    /// authentication timeout, LCP echo.
    pub fn tick(&mut self, now_ms: u64) -> Output {
        if self.down_sent {
            return Output::default();
        }
        if let Some(ev) = self.lcp.fsm.timeout_event(now_ms) {
            self.run(now_ms, Layer::Lcp, ev, &Rx::default());
        }
        if let Some(ev) = self.ipcp.fsm.timeout_event(now_ms) {
            self.run(now_ms, Layer::Ipcp, ev, &Rx::default());
        }
        if let Some(ev) = self.ipv6cp.fsm.timeout_event(now_ms) {
            self.run(now_ms, Layer::Ipv6cp, ev, &Rx::default());
        }
        if self.phase == Phase::Authenticate {
            if self.auth_deadline.is_some_and(|d| now_ms >= d) {
                self.close_with(now_ms, DownReason::AuthTimeout);
            } else if self.retransmit_at.is_some_and(|d| now_ms >= d) {
                if self.challenges_left > 0 {
                    self.challenges_left -= 1;
                    self.send_challenge();
                    self.retransmit_at = Some(now_ms + self.cfg.restart_ms);
                } else {
                    self.retransmit_at = None;
                }
            }
        }
        if self.lcp.fsm.state() == State::Opened
            && self.reason.is_none()
            && self.echo_at.is_some_and(|d| now_ms >= d)
        {
            if self.echo_outstanding >= self.cfg.echo_failures {
                self.close_with(now_ms, DownReason::EchoTimeout);
                // The peer is gone: nothing will acknowledge our Terminate-Request.
                self.emit_down();
            } else {
                let id = self.lcp.take_id();
                let magic = self.our_magic_field();
                self.send(
                    proto::LCP,
                    emit_packet(Code::EchoRequest.into(), id, &magic.to_be_bytes()),
                );
                self.counters.echo_requests_sent += 1;
                self.echo_outstanding += 1;
                self.echo_at = Some(now_ms + self.cfg.echo_interval_ms);
            }
        }
        self.finish()
    }

    /// The verdict on the last [`PppEvent::Authenticate`]; `message` goes in
    /// the PAP Authenticate-Ack/Nak or CHAP Success/Failure. Ignored unless
    /// a verdict is awaited and the session is not ending.
    pub fn auth_result(&mut self, now_ms: u64, accepted: bool, message: &str) -> Output {
        let AuthStage::Pending { id } = self.auth_stage else {
            return Output::default();
        };
        if self.down_sent || self.reason.is_some() {
            return Output::default();
        }
        let message = message.as_bytes().to_vec();
        self.send_auth_verdict(id, accepted, &message);
        if accepted {
            self.auth_stage = AuthStage::Accepted { message };
            self.auth_deadline = None;
            self.phase = Phase::Network;
            if self.addr.is_some() {
                self.start_ipcp(now_ms);
            } else {
                self.ask_address();
            }
            if self.ipv6.is_some() {
                self.start_ipv6cp(now_ms);
            }
        } else {
            self.auth_stage = AuthStage::Failed;
            self.close_with(now_ms, DownReason::AuthFailed);
        }
        self.finish()
    }

    /// The peer's address, our (gateway) address for our IPCP
    /// Configure-Request, and the DNS servers offered per RFC 1877. May be
    /// given before it is asked for; IPCP starts once the peer is
    /// authenticated and this is known. A later call changes what future
    /// negotiations use, not an open IPCP.
    pub fn set_address(
        &mut self,
        now_ms: u64,
        ipv4: Ipv4Addr,
        gateway: Ipv4Addr,
        dns: [Option<Ipv4Addr>; 2],
    ) -> Output {
        if self.down_sent {
            return Output::default();
        }
        self.addr = Some(Assigned {
            peer: ipv4,
            gateway,
            dns,
        });
        if self.phase == Phase::Network && !self.ipcp_started {
            self.start_ipcp(now_ms);
            if let Some(req) = self.pending_ipcp.take() {
                self.ipcp_input(now_ms, &req);
            }
        }
        self.finish()
    }

    /// Ends the session: LCP Terminate-Request now, [`PppEvent::Down`] when
    /// the peer acknowledges it or after Max-Terminate restart periods.
    pub fn close(&mut self, now_ms: u64, reason: DownReason) -> Output {
        if self.down_sent {
            return Output::default();
        }
        self.close_with(now_ms, reason);
        self.finish()
    }

    /// The link phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// When [`tick`](Self::tick) next has work, if ever.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.down_sent {
            return None;
        }
        let mut d = [
            self.lcp.fsm.deadline(),
            self.ipcp.fsm.deadline(),
            None,
            None,
            None,
            self.ipv6cp.fsm.deadline(),
        ];
        if self.phase == Phase::Authenticate {
            d[2] = self.auth_deadline;
            d[3] = self.retransmit_at;
        }
        if self.lcp.fsm.state() == State::Opened && self.reason.is_none() {
            d[4] = self.echo_at;
        }
        d.into_iter().flatten().min()
    }

    /// MRU the peer accepts (its LCP MRU option, 1500 if it sent none).
    pub fn peer_mru(&self) -> u16 {
        self.peer_mru
    }

    /// The LCP automaton's state.
    pub fn lcp_state(&self) -> State {
        self.lcp.fsm.state()
    }

    /// The IPCP automaton's state.
    pub fn ipcp_state(&self) -> State {
        self.ipcp.fsm.state()
    }

    /// Offers IPv6 (RFC 5072) with our non-zero `interface_id` (0 is
    /// replaced): IPv6CP starts with the Network phase (now, if the peer is
    /// already authenticated), and IPv6CP and IPv6 packets are no longer
    /// Protocol-Rejected. Without this call they are. A second call is
    /// ignored.
    pub fn enable_ipv6(&mut self, now_ms: u64, interface_id: u64) -> Output {
        if self.down_sent || self.ipv6.is_some() {
            return Output::default();
        }
        self.ipv6 = Some(Ipv6Ids {
            ours: if interface_id == 0 {
                next_interface_id(u64::from(self.magic))
            } else {
                interface_id
            },
            send_ours: true,
            peer: None,
        });
        if self.phase == Phase::Network && self.reason.is_none() {
            self.start_ipv6cp(now_ms);
        }
        self.finish()
    }

    /// Carries on IPv6CP from another process, on a session made by
    /// [`PppSession::restore`]: IPv6 enabled and IPv6CP Opened with our
    /// `interface_id` and the peer's `peer_interface_id` (0: it negotiated
    /// none), nothing sent. False, and nothing changed, if the session is
    /// not in the Network phase or IPv6 is already enabled.
    pub fn restore_ipv6(&mut self, now_ms: u64, interface_id: u64, peer_interface_id: u64) -> bool {
        if self.phase != Phase::Network || self.reason.is_some() || self.ipv6.is_some() {
            return false;
        }
        self.ipv6 = Some(Ipv6Ids {
            ours: if interface_id == 0 {
                next_interface_id(u64::from(self.magic))
            } else {
                interface_id
            },
            send_ours: true,
            peer: (peer_interface_id != 0).then_some(peer_interface_id),
        });
        self.ipv6cp_started = true;
        self.ipv6cp.fsm.force_state(now_ms, State::Opened, 0);
        self.ipv6cp.last_req = self.ipv6cp_request();
        self.ipv6cp.seen_ack = true;
        true
    }

    /// Closes IPv6CP alone (Terminate-Request to the peer); IPv4 stays up.
    pub fn close_ipv6(&mut self, now_ms: u64) -> Output {
        if self.ipv6.is_some()
            && !matches!(self.ipv6cp.fsm.state(), State::Initial | State::Starting)
        {
            self.run(now_ms, Layer::Ipv6cp, Event::Close, &Rx::default());
        }
        self.finish()
    }

    /// The IPv6CP automaton's state.
    pub fn ipv6cp_state(&self) -> State {
        self.ipv6cp.fsm.state()
    }

    /// (our, the peer's) interface identifiers while IPv6CP is Opened: the
    /// link-local addresses are `fe80::` plus each. The peer's is 0 if it
    /// did not negotiate one.
    pub fn ipv6_interface_ids(&self) -> Option<(u64, u64)> {
        let ids = self.ipv6?;
        (self.ipv6cp.fsm.state() == State::Opened && self.reason.is_none())
            .then(|| (ids.ours, ids.peer.unwrap_or(0)))
    }

    /// Drop and protocol counters.
    pub fn counters(&self) -> &PppCounters {
        &self.counters
    }

    /// Puts LCP in `state` as if negotiation had led there, with our last
    /// Configure-Request outstanding under identifier 0x20.
    #[cfg(test)]
    pub(crate) fn force_lcp_state(&mut self, now_ms: u64, state: State, restart_counter: u32) {
        self.phase = if state == State::Opened {
            Phase::Authenticate
        } else {
            Phase::Establish
        };
        self.lcp.fsm.force_state(now_ms, state, restart_counter);
        self.lcp.last_req = self.lcp_request();
        self.lcp.req_id = 0x20;
        self.lcp.next_id = 0x21;
        self.lcp.seen_ack = false;
    }

    fn finish(&mut self) -> Output {
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
            self.out.events.push(PppEvent::Down { reason });
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
        self.retransmit_at = None;
        self.run(now_ms, Layer::Lcp, Event::Close, &Rx::default());
    }

    fn nego(&mut self, layer: Layer) -> &mut Negotiation {
        match layer {
            Layer::Lcp => &mut self.lcp,
            Layer::Ipcp => &mut self.ipcp,
            Layer::Ipv6cp => &mut self.ipv6cp,
        }
    }

    /// Feeds `event` to a layer's automaton and performs its actions.
    fn run(&mut self, now_ms: u64, layer: Layer, event: Event, rx: &Rx<'_>) {
        let Some(actions) = self.nego(layer).fsm.handle(now_ms, event) else {
            self.counters.illegal_events += 1;
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
                        Layer::Ipv6cp => self.ipv6cp_request(),
                    };
                    let n = self.nego(layer);
                    let id = n.take_id();
                    n.req_id = id;
                    n.seen_ack = false;
                    n.requests_sent += 1;
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
                    let why = self.reason.map_or("", DownReason::as_str);
                    self.send(
                        protocol,
                        emit_packet(Code::TerminateRequest.into(), id, why.as_bytes()),
                    );
                }
                Action::Sta => {
                    self.send(protocol, emit_packet(Code::TerminateAck.into(), rx.id, &[]))
                }
                Action::Scj => {
                    let id = self.nego(layer).take_id();
                    let room = usize::from(self.peer_mru).saturating_sub(4);
                    let rejected = &rx.packet[..rx.packet.len().min(room)];
                    self.send(protocol, emit_packet(Code::CodeReject.into(), id, rejected));
                    self.counters.code_rejects_sent += 1;
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
                (Layer::Ipcp, Action::Tlu) if !self.up_sent => {
                    if let Some(a) = self.addr {
                        self.up_sent = true;
                        self.out.events.push(PppEvent::Up { ipv4: a.peer });
                    }
                }
                (Layer::Ipcp, Action::Tlf) => {
                    self.close_with(now_ms, DownReason::NegotiationFailed)
                }
                _ => {}
            }
        }
    }

    fn lcp_up(&mut self, now_ms: u64) {
        self.phase = Phase::Authenticate;
        if self.cfg.echo_interval_ms > 0 {
            self.echo_at = Some(now_ms + self.cfg.echo_interval_ms);
        }
        self.auth_deadline = Some(now_ms + self.cfg.auth_timeout_ms);
        self.auth_stage = AuthStage::WaitingCredentials;
        if self.want_auth == Some(AuthProto::Chap) {
            self.new_challenge();
            self.send_challenge();
            self.challenges_left = self.cfg.max_configure.saturating_sub(1);
            self.retransmit_at = Some(now_ms + self.cfg.restart_ms);
        }
    }

    fn lcp_down(&mut self, now_ms: u64, event: Event) {
        self.echo_at = None;
        self.retransmit_at = None;
        if !matches!(self.ipcp.fsm.state(), State::Initial | State::Starting) {
            self.run(now_ms, Layer::Ipcp, Event::Down, &Rx::default());
        }
        if !matches!(self.ipv6cp.fsm.state(), State::Initial | State::Starting) {
            self.run(now_ms, Layer::Ipv6cp, Event::Down, &Rx::default());
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

    fn our_magic_field(&self) -> u32 {
        if self.want_magic { self.magic } else { 0 }
    }

    fn lcp_request(&self) -> Vec<u8> {
        let mut o = Vec::with_capacity(15);
        if let Some(mru) = self.want_mru {
            emit_option(&mut o, lcp_opt::MRU, &mru.to_be_bytes());
        }
        match self.want_auth {
            Some(AuthProto::Pap) => emit_option(&mut o, lcp_opt::AUTH_PROTOCOL, &[0xc0, 0x23]),
            Some(AuthProto::Chap) => emit_option(
                &mut o,
                lcp_opt::AUTH_PROTOCOL,
                &[0xc2, 0x23, lcp_opt::CHAP_MD5],
            ),
            None => {}
        }
        if self.want_magic {
            emit_option(&mut o, lcp_opt::MAGIC_NUMBER, &self.magic.to_be_bytes());
        }
        o
    }

    fn ipcp_request(&self) -> Vec<u8> {
        let mut o = Vec::with_capacity(6);
        if let (true, Some(a)) = (self.want_gateway, self.addr) {
            emit_option(&mut o, ipcp_opt::IP_ADDRESS, &a.gateway.octets());
        }
        o
    }

    /// On the peer's first LCP Configure-Request, while our only one is
    /// unanswered: sends ours again, unchanged (same identifier, RFC 1661
    /// section 5.1 allows it), ahead of the answer to the peer's. Our first
    /// request leaves right after the PADS, and pppd's rp-pppoe plugin only
    /// connects its PPPoE socket after the PADS, so it never sees that
    /// request; without the repeat, LCP waits a whole restart interval (3 s)
    /// before it opens. A peer that did see it acknowledges one of the two
    /// copies; the other Ack carries the same identifier and is discarded.
    /// Sent before our Ack, the copy reaches the peer before it can open, so
    /// it never restarts negotiation.
    fn repeat_lost_first_request(&mut self) {
        let lcp = &mut self.lcp;
        let first = !lcp.peer_requested;
        lcp.peer_requested = true;
        if first && lcp.fsm.state() == State::ReqSent && lcp.requests_sent == 1 && !lcp.seen_ack {
            let packet = emit_packet(Code::ConfigureRequest.into(), lcp.req_id, &lcp.last_req);
            self.counters.lcp_requests_repeated += 1;
            self.send(proto::LCP, packet);
        }
    }

    fn lcp_input(&mut self, now_ms: u64, payload: &[u8]) {
        let Ok(pkt) = parse_packet(payload) else {
            self.counters.malformed += 1;
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
                    self.counters.malformed += 1;
                    return;
                };
                self.repeat_lost_first_request();
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
                    self.counters.discarded += 1;
                    return;
                }
                self.lcp.seen_ack = true;
                self.lcp.naks_received = 0;
                self.lcp_event(now_ms, Event::Rca, &rx);
            }
            Code::ConfigureNak | Code::ConfigureReject => {
                if pkt.id != self.lcp.req_id || self.lcp.seen_ack {
                    self.counters.discarded += 1;
                    return;
                }
                let Ok(opts) = parse_options(pkt.data) else {
                    self.counters.malformed += 1;
                    return;
                };
                let reject = pkt.code == u8::from(Code::ConfigureReject);
                match self.apply_lcp_nak(&opts, reject) {
                    NakOutcome::Discard => self.counters.discarded += 1,
                    NakOutcome::Fatal => self.close_with(now_ms, DownReason::NegotiationFailed),
                    NakOutcome::Apply => {
                        self.lcp.seen_ack = true;
                        self.lcp_event(now_ms, Event::Rcn, &rx)
                    }
                }
            }
            Code::TerminateRequest => self.lcp_event(now_ms, Event::Rtr, &rx),
            Code::TerminateAck => self.lcp_event(now_ms, Event::Rta, &rx),
            Code::CodeReject => self.code_reject_received(now_ms, Layer::Lcp, pkt.data),
            Code::ProtocolReject => {
                let Some(rejected) = pkt.data.get(..2) else {
                    self.counters.malformed += 1;
                    return;
                };
                let rejected = u16::from_be_bytes([rejected[0], rejected[1]]);
                match rejected {
                    proto::LCP => self.lcp_event(now_ms, Event::RxjBad, &rx),
                    // Without IPCP or authentication the session is useless;
                    // IPCP is not told (its Terminate-Request would be rejected too).
                    proto::IPCP | proto::PAP | proto::CHAP => {
                        self.lcp_event(now_ms, Event::RxjGood, &rx);
                        self.close_with(now_ms, DownReason::NegotiationFailed);
                    }
                    // IPv6 refused: IPv6CP stops, IPv4 carries on.
                    proto::IPV6CP => {
                        self.lcp_event(now_ms, Event::RxjGood, &rx);
                        if self.ipv6cp_started {
                            self.run(now_ms, Layer::Ipv6cp, Event::RxjBad, &Rx::default());
                        }
                    }
                    _ => self.lcp_event(now_ms, Event::RxjGood, &rx),
                }
            }
            Code::EchoRequest => {
                let Some((magic, data)) = split_magic(pkt.data) else {
                    self.counters.malformed += 1;
                    return;
                };
                if self.want_magic && magic == self.magic {
                    // Our own request looped back (RFC 1661 section 6.4).
                    self.counters.discarded += 1;
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
            Code::EchoReply => {
                if split_magic(pkt.data).is_none() {
                    self.counters.malformed += 1;
                    return;
                }
                if self.lcp.fsm.state() == State::Opened {
                    self.counters.echo_replies_received += 1;
                    self.echo_outstanding = 0;
                }
                self.lcp_event(now_ms, Event::Rxr, &rx);
            }
            Code::DiscardRequest => self.lcp_event(now_ms, Event::Rxr, &rx),
            Code::Unknown(_) => self.lcp_event(now_ms, Event::Ruc, &rx),
        }
    }

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
            self.counters.malformed += 1;
            return;
        };
        // RFC 1661 section 5.6: rejecting a Configure or Terminate code
        // (or Code-Reject itself) is catastrophic.
        let ev = if (1..=7).contains(&code) {
            Event::RxjBad
        } else {
            Event::RxjGood
        };
        self.run(now_ms, layer, ev, &Rx::default());
    }

    /// Classifies the peer's LCP Configure-Request and builds the reply.
    fn check_lcp_request(
        &mut self,
        opts: &[ConfigOption<'_>],
        all: &[u8],
    ) -> (bool, (Code, Vec<u8>)) {
        let mut rej = Vec::new();
        let mut nak = Vec::new();
        let mut nak_raw = Vec::new();
        let mut mru = None;
        let mut magic = None;
        for o in opts {
            match (o.typ, o.raw.len()) {
                (lcp_opt::MRU, 4) => {
                    let v = o.u16().unwrap_or(0);
                    if v < MIN_MRU || v > self.cfg.mru {
                        let suggest = if v < MIN_MRU { MIN_MRU } else { self.cfg.mru };
                        emit_option(&mut nak, lcp_opt::MRU, &suggest.to_be_bytes());
                        nak_raw.extend_from_slice(o.raw);
                    } else {
                        mru = Some(v);
                    }
                }
                (lcp_opt::MAGIC_NUMBER, 6) => {
                    let v = o.u32().unwrap_or(0);
                    // Zero is illegal; our own value means a looped-back link
                    // (RFC 1661 section 6.4): Nak both with another number.
                    if v == 0 || (self.want_magic && v == self.magic) {
                        let mut suggest = next_magic(v ^ self.magic);
                        if suggest == self.magic {
                            suggest = next_magic(suggest);
                        }
                        emit_option(&mut nak, lcp_opt::MAGIC_NUMBER, &suggest.to_be_bytes());
                        nak_raw.extend_from_slice(o.raw);
                    } else {
                        magic = Some(v);
                    }
                }
                _ => rej.extend_from_slice(o.raw),
            }
        }
        self.reply_to_request(Layer::Lcp, rej, nak, nak_raw, all, |s| {
            s.peer_mru = mru.unwrap_or(1500);
            s.peer_magic = magic;
        })
    }

    /// Common Ack/Nak/Reject choice, with Max-Failure turning Naks into
    /// Rejects (RFC 1661 section 4.6).
    fn reply_to_request(
        &mut self,
        layer: Layer,
        rej: Vec<u8>,
        nak: Vec<u8>,
        nak_raw: Vec<u8>,
        all: &[u8],
        commit: impl FnOnce(&mut Self),
    ) -> (bool, (Code, Vec<u8>)) {
        let max_failure = self.cfg.max_failure;
        let n = self.nego(layer);
        if !rej.is_empty() {
            return (false, (Code::ConfigureReject, rej));
        }
        if !nak.is_empty() {
            if n.naks_sent >= max_failure {
                return (false, (Code::ConfigureReject, nak_raw));
            }
            n.naks_sent += 1;
            return (false, (Code::ConfigureNak, nak));
        }
        n.naks_sent = 0;
        commit(self);
        (true, (Code::ConfigureAck, all.to_vec()))
    }

    fn apply_lcp_nak(&mut self, opts: &[ConfigOption<'_>], reject: bool) -> NakOutcome {
        self.lcp.naks_received += 1;
        if self.lcp.naks_received > self.cfg.max_configure {
            return NakOutcome::Fatal;
        }
        if reject {
            let sent = parse_options(&self.lcp.last_req).unwrap_or_default();
            if opts.iter().any(|o| !sent.iter().any(|s| s.typ == o.typ)) {
                return NakOutcome::Discard;
            }
        }
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
                (lcp_opt::AUTH_PROTOCOL, true) => return NakOutcome::Fatal,
                (lcp_opt::AUTH_PROTOCOL, false) => {
                    if self.want_auth == Some(AuthProto::Chap)
                        && self.cfg.auth == AuthMethod::ChapThenPap
                    {
                        self.want_auth = Some(AuthProto::Pap);
                    } else {
                        return NakOutcome::Fatal;
                    }
                }
                // A Nak may suggest options we did not send; we do not want them.
                _ => {}
            }
        }
        NakOutcome::Apply
    }

    fn auth_input(&mut self, now_ms: u64, protocol: u16, payload: &[u8]) {
        let expected = match self.want_auth {
            Some(AuthProto::Pap) => proto::PAP,
            Some(AuthProto::Chap) => proto::CHAP,
            None => 0,
        };
        let Ok(pkt) = parse_packet(payload) else {
            self.counters.malformed += 1;
            return;
        };
        if protocol != expected {
            self.counters.discarded += 1;
            return;
        }
        let (user, credentials) = if protocol == proto::PAP {
            if pkt.code != pap_code::REQUEST {
                self.counters.discarded += 1;
                return;
            }
            let Ok(req) = parse_pap_request(pkt.data) else {
                self.counters.malformed += 1;
                return;
            };
            (
                req.peer_id,
                Credentials::Pap {
                    password: req.password.to_vec(),
                },
            )
        } else {
            if pkt.code != chap_code::RESPONSE || pkt.id != self.auth_id {
                self.counters.discarded += 1;
                return;
            }
            let Ok(resp) = parse_chap_value(pkt.data) else {
                self.counters.malformed += 1;
                return;
            };
            let Ok(response) = <[u8; 16]>::try_from(resp.value) else {
                self.counters.malformed += 1;
                return;
            };
            let challenge = self.challenge.to_vec();
            (
                resp.name,
                Credentials::Chap {
                    id: pkt.id,
                    challenge,
                    response,
                },
            )
        };
        match &self.auth_stage {
            AuthStage::WaitingCredentials if self.reason.is_none() => {}
            // The peer did not hear our verdict: repeat it (RFC 1334
            // section 2.2.2, RFC 1994 section 4.2).
            AuthStage::Accepted { message } => {
                let message = message.clone();
                self.send_auth_verdict(pkt.id, true, &message);
                return;
            }
            _ => {
                self.counters.discarded += 1;
                return;
            }
        }
        self.retransmit_at = None;
        let Ok(user) = String::from_utf8(user.to_vec()) else {
            // User names are compared as text by the AAA layer; bytes that
            // are not UTF-8 cannot name a subscriber.
            self.send_auth_verdict(pkt.id, false, b"");
            self.auth_stage = AuthStage::Failed;
            return self.close_with(now_ms, DownReason::AuthFailed);
        };
        self.auth_stage = AuthStage::Pending { id: pkt.id };
        self.out
            .events
            .push(PppEvent::Authenticate { user, credentials });
    }

    fn send_auth_verdict(&mut self, id: u8, accepted: bool, message: &[u8]) {
        if self.want_auth == Some(AuthProto::Pap) {
            let code = if accepted {
                pap_code::ACK
            } else {
                pap_code::NAK
            };
            let msg = &message[..message.len().min(255)];
            let mut data = vec![msg.len() as u8];
            data.extend_from_slice(msg);
            self.send(proto::PAP, emit_packet(code, id, &data));
        } else {
            let code = if accepted {
                chap_code::SUCCESS
            } else {
                chap_code::FAILURE
            };
            self.send(proto::CHAP, emit_packet(code, id, message));
        }
    }

    fn new_challenge(&mut self) {
        self.auth_id = self.auth_id.wrapping_add(1);
        for (i, chunk) in self.challenge.chunks_mut(8).enumerate() {
            let mut h = DefaultHasher::new();
            (self.challenge_seed, self.challenges_made, i).hash(&mut h);
            let v = h.finish().to_be_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        self.challenges_made += 1;
    }

    fn send_challenge(&mut self) {
        let data = emit_chap_value(&self.challenge, CHAP_NAME);
        self.send(
            proto::CHAP,
            emit_packet(chap_code::CHALLENGE, self.auth_id, &data),
        );
    }

    fn ask_address(&mut self) {
        if !self.need_address_asked {
            self.need_address_asked = true;
            self.out.events.push(PppEvent::NeedAddress);
        }
    }

    fn start_ipcp(&mut self, now_ms: u64) {
        self.ipcp_started = true;
        self.run(now_ms, Layer::Ipcp, Event::Up, &Rx::default());
        self.run(now_ms, Layer::Ipcp, Event::Open, &Rx::default());
    }

    fn ipcp_input(&mut self, now_ms: u64, payload: &[u8]) {
        let Ok(pkt) = parse_packet(payload) else {
            self.counters.malformed += 1;
            return;
        };
        if !self.ipcp_started {
            // Held until set_address: a 3 s retransmission would slow every
            // session down.
            if pkt.code == u8::from(Code::ConfigureRequest) && parse_options(pkt.data).is_ok() {
                self.pending_ipcp = Some(payload.to_vec());
                self.ask_address();
            } else {
                self.counters.discarded += 1;
            }
            return;
        }
        let rx = Rx {
            id: pkt.id,
            packet: payload,
            ..Rx::default()
        };
        match Code::from(pkt.code) {
            Code::ConfigureRequest => {
                let Ok(opts) = parse_options(pkt.data) else {
                    self.counters.malformed += 1;
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
                    self.counters.discarded += 1;
                    return;
                }
                self.ipcp.seen_ack = true;
                self.ipcp.naks_received = 0;
                self.run(now_ms, Layer::Ipcp, Event::Rca, &rx);
            }
            Code::ConfigureNak | Code::ConfigureReject => {
                if pkt.id != self.ipcp.req_id || self.ipcp.seen_ack {
                    self.counters.discarded += 1;
                    return;
                }
                let Ok(opts) = parse_options(pkt.data) else {
                    self.counters.malformed += 1;
                    return;
                };
                self.ipcp.naks_received += 1;
                if self.ipcp.naks_received > self.cfg.max_configure {
                    return self.close_with(now_ms, DownReason::NegotiationFailed);
                }
                if pkt.code == u8::from(Code::ConfigureReject) {
                    if opts.iter().any(|o| o.typ != ipcp_opt::IP_ADDRESS) {
                        self.counters.discarded += 1;
                        return;
                    }
                    if !opts.is_empty() {
                        self.want_gateway = false;
                    }
                }
                // A Nak of our own address is not followed: we are the gateway.
                self.ipcp.seen_ack = true;
                self.run(now_ms, Layer::Ipcp, Event::Rcn, &rx);
            }
            Code::TerminateRequest => self.run(now_ms, Layer::Ipcp, Event::Rtr, &rx),
            Code::TerminateAck => self.run(now_ms, Layer::Ipcp, Event::Rta, &rx),
            Code::CodeReject => self.code_reject_received(now_ms, Layer::Ipcp, pkt.data),
            _ => self.run(now_ms, Layer::Ipcp, Event::Ruc, &rx),
        }
    }

    /// Classifies the peer's IPCP Configure-Request (RFC 1332 section 3,
    /// RFC 1877 section 1) and builds the reply.
    fn check_ipcp_request(
        &mut self,
        opts: &[ConfigOption<'_>],
        all: &[u8],
    ) -> (bool, (Code, Vec<u8>)) {
        let Some(a) = self.addr else {
            return (false, (Code::ConfigureReject, all.to_vec()));
        };
        let mut rej = Vec::new();
        let mut nak = Vec::new();
        let mut nak_raw = Vec::new();
        let mut saw_addr = false;
        for o in opts {
            let wanted = match (o.typ, o.raw.len()) {
                (ipcp_opt::IP_ADDRESS, 6) => {
                    saw_addr = true;
                    Some(a.peer)
                }
                (ipcp_opt::PRIMARY_DNS, 6) => a.dns[0],
                (ipcp_opt::SECONDARY_DNS, 6) => a.dns[1],
                _ => None,
            };
            match wanted {
                None => rej.extend_from_slice(o.raw),
                Some(w) if o.value == w.octets() => {}
                Some(w) => {
                    emit_option(&mut nak, o.typ, &w.octets());
                    nak_raw.extend_from_slice(o.raw);
                }
            }
        }
        // A peer that does not ask for an address is told it once, as pppd
        // does (its `ipcp_reqci` appends CI_ADDR to the Nak).
        if !saw_addr && rej.is_empty() && !self.addr_hint_sent {
            self.addr_hint_sent = true;
            emit_option(&mut nak, ipcp_opt::IP_ADDRESS, &a.peer.octets());
        }
        self.reply_to_request(Layer::Ipcp, rej, nak, nak_raw, all, |_| {})
    }

    fn start_ipv6cp(&mut self, now_ms: u64) {
        if self.ipv6cp_started {
            return;
        }
        self.ipv6cp_started = true;
        self.run(now_ms, Layer::Ipv6cp, Event::Up, &Rx::default());
        self.run(now_ms, Layer::Ipv6cp, Event::Open, &Rx::default());
    }

    fn ipv6cp_request(&self) -> Vec<u8> {
        let mut o = Vec::with_capacity(10);
        if let Some(ids) = self.ipv6.filter(|i| i.send_ours) {
            emit_option(
                &mut o,
                ipv6cp_opt::INTERFACE_IDENTIFIER,
                &ids.ours.to_be_bytes(),
            );
        }
        o
    }

    /// IPv6CP packets once the Network phase started (RFC 5072: the RFC
    /// 1661 automaton with the Interface-Identifier option only).
    fn ipv6cp_input(&mut self, now_ms: u64, payload: &[u8]) {
        let Ok(pkt) = parse_packet(payload) else {
            self.counters.malformed += 1;
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
                    self.counters.malformed += 1;
                    return;
                };
                let (good, reply) = self.check_ipv6cp_request(&opts, pkt.data);
                let ev = if good { Event::RcrGood } else { Event::RcrBad };
                self.run(
                    now_ms,
                    Layer::Ipv6cp,
                    ev,
                    &Rx {
                        reply: Some(reply),
                        ..rx
                    },
                );
            }
            Code::ConfigureAck => {
                if pkt.id != self.ipv6cp.req_id
                    || self.ipv6cp.seen_ack
                    || pkt.data != self.ipv6cp.last_req
                {
                    self.counters.discarded += 1;
                    return;
                }
                self.ipv6cp.seen_ack = true;
                self.ipv6cp.naks_received = 0;
                self.run(now_ms, Layer::Ipv6cp, Event::Rca, &rx);
            }
            Code::ConfigureNak | Code::ConfigureReject => {
                if pkt.id != self.ipv6cp.req_id || self.ipv6cp.seen_ack {
                    self.counters.discarded += 1;
                    return;
                }
                let Ok(opts) = parse_options(pkt.data) else {
                    self.counters.malformed += 1;
                    return;
                };
                self.ipv6cp.naks_received += 1;
                if self.ipv6cp.naks_received > self.cfg.max_configure {
                    // IPv6 could not be agreed: IPv6CP gives up, IPv4 stays.
                    self.run(now_ms, Layer::Ipv6cp, Event::Close, &Rx::default());
                    return;
                }
                let reject = pkt.code == u8::from(Code::ConfigureReject);
                if opts
                    .iter()
                    .any(|o| o.typ != ipv6cp_opt::INTERFACE_IDENTIFIER)
                {
                    self.counters.discarded += 1;
                    return;
                }
                if let Some(ids) = self.ipv6.as_mut() {
                    for o in &opts {
                        if reject {
                            ids.send_ours = false;
                        } else if let Ok(v) = <[u8; 8]>::try_from(o.value) {
                            // The peer found ours in use: take its suggestion
                            // unless it is unusable (RFC 5072 section 4.1).
                            let v = u64::from_be_bytes(v);
                            if v != 0 && Some(v) != ids.peer {
                                ids.ours = v;
                            }
                        }
                    }
                }
                self.ipv6cp.seen_ack = true;
                self.run(now_ms, Layer::Ipv6cp, Event::Rcn, &rx);
            }
            Code::TerminateRequest => self.run(now_ms, Layer::Ipv6cp, Event::Rtr, &rx),
            Code::TerminateAck => self.run(now_ms, Layer::Ipv6cp, Event::Rta, &rx),
            Code::CodeReject => self.code_reject_received(now_ms, Layer::Ipv6cp, pkt.data),
            _ => self.run(now_ms, Layer::Ipv6cp, Event::Ruc, &rx),
        }
    }

    /// Classifies the peer's IPv6CP Configure-Request (RFC 5072 section
    /// 4.1): a zero identifier, or ours, is Naked with a suggestion; the
    /// IPv6-Compression-Protocol and anything else is rejected.
    fn check_ipv6cp_request(
        &mut self,
        opts: &[ConfigOption<'_>],
        all: &[u8],
    ) -> (bool, (Code, Vec<u8>)) {
        let Some(ids) = self.ipv6 else {
            return (false, (Code::ConfigureReject, all.to_vec()));
        };
        let mut rej = Vec::new();
        let mut nak = Vec::new();
        let mut nak_raw = Vec::new();
        let mut peer = None;
        for o in opts {
            match (o.typ, <[u8; 8]>::try_from(o.value)) {
                (ipv6cp_opt::INTERFACE_IDENTIFIER, Ok(v)) => {
                    let v = u64::from_be_bytes(v);
                    if v == 0 || v == ids.ours {
                        let mut suggest = next_interface_id(v ^ ids.ours ^ u64::from(self.magic));
                        if suggest == ids.ours {
                            suggest = next_interface_id(suggest);
                        }
                        emit_option(
                            &mut nak,
                            ipv6cp_opt::INTERFACE_IDENTIFIER,
                            &suggest.to_be_bytes(),
                        );
                        nak_raw.extend_from_slice(o.raw);
                    } else {
                        peer = Some(v);
                    }
                }
                _ => rej.extend_from_slice(o.raw),
            }
        }
        self.reply_to_request(Layer::Ipv6cp, rej, nak, nak_raw, all, |s| {
            if let Some(ids) = s.ipv6.as_mut() {
                ids.peer = peer;
            }
        })
    }

    fn protocol_reject(&mut self, protocol: u16, payload: &[u8]) {
        // RFC 1661 section 5.7: only in the LCP Opened state.
        if self.lcp.fsm.state() != State::Opened {
            self.counters.discarded += 1;
            return;
        }
        let room = usize::from(self.peer_mru).saturating_sub(6);
        let mut data = protocol.to_be_bytes().to_vec();
        data.extend_from_slice(&payload[..payload.len().min(room)]);
        let id = self.lcp.take_id();
        self.send(
            proto::LCP,
            emit_packet(Code::ProtocolReject.into(), id, &data),
        );
        self.counters.protocol_rejects_sent += 1;
    }
}

fn split_magic(data: &[u8]) -> Option<(u32, &[u8])> {
    let (m, rest) = data.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*m), rest))
}

/// Another non-zero interface identifier (splitmix64 of `x`).
fn next_interface_id(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    if z == 0 { 0x0200_5eff_fe00_0001 } else { z }
}

/// Another nonzero magic number (a fixed bijective mix; the caller seeds
/// the first one at random).
fn next_magic(m: u32) -> u32 {
    let x = (m ^ 0x9e37_79b9).rotate_left(13).wrapping_mul(0x85eb_ca6b);
    if x == 0 { 0x5a5a_5a5a } else { x }
}
