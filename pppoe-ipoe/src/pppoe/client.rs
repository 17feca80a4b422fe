//! The host's side of PPPoE discovery (RFC 2516 section 5), sans-IO: what
//! a PPPoE client such as pppd's `pppoe.so` plugin sends.
//!
//! [`DiscoveryClient::start`] broadcasts a PADI; the first acceptable PADO
//! (matching Host-Uniq, no error tag) is answered with a unicast PADR that
//! echoes the AC-Cookie and Relay-Session-Id; the PADS gives the session
//! id. PADI and PADR are retransmitted on [`DiscoveryClient::tick`] with the
//! timeout doubling each time, as RFC 2516 section 5 suggests and pppd does.
//! [`DiscoveryClient::terminate`] sends the PADT that ends the session; a
//! PADT from the access concentrator ends it too.
//!
//! The caller strips the Ethernet header of frames with EtherType
//! [`ETHERTYPE_DISCOVERY`](super::ETHERTYPE_DISCOVERY), passes the source
//! MAC and the PPPoE packet to [`DiscoveryClient::input`], and sends each
//! returned [`DiscoveryFrame`] to its [`Destination`]. Time is monotonic
//! milliseconds passed in by the caller.

use super::wire::{Code, Tag, emit, emit_tags, parse, parse_tags};

/// Settings of one discovery client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryClientConfig {
    /// Host-Uniq sent in PADI and PADR; PADOs and PADSs must echo it.
    /// Empty: no Host-Uniq tag.
    pub host_uniq: Vec<u8>,
    /// Service-Name asked for; empty means any service.
    pub service_name: Vec<u8>,
    /// First retransmission timeout of PADI and PADR, doubled after each
    /// retransmission. Default 5000 ms (pppd's `PADI_TIMEOUT`).
    pub timeout_ms: u64,
    /// PADIs (and then PADRs) sent before giving up. Default 3 (pppd's
    /// `MAX_PADI_ATTEMPTS`).
    pub attempts: u32,
}

impl Default for DiscoveryClientConfig {
    fn default() -> Self {
        DiscoveryClientConfig {
            host_uniq: Vec::new(),
            service_name: Vec::new(),
            timeout_ms: 5000,
            attempts: 3,
        }
    }
}

/// Where a discovery frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// The Ethernet broadcast address (PADI).
    Broadcast,
    /// The access concentrator's MAC (PADR, PADT).
    Unicast([u8; 6]),
}

/// One frame to send: the whole PPPoE packet (header and tags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryFrame {
    /// Its Ethernet destination.
    pub destination: Destination,
    /// PPPoE header and payload, for EtherType 0x8863.
    pub packet: Vec<u8>,
}

/// Why discovery did not give a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiscoveryFailure {
    /// No acceptable PADO after every PADI.
    NoOffer,
    /// No PADS after every PADR.
    NoConfirmation,
    /// The PADS refused the session (an error tag, or session id 0).
    Refused,
}

impl DiscoveryFailure {
    /// A short label for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            DiscoveryFailure::NoOffer => "no_pado",
            DiscoveryFailure::NoConfirmation => "no_pads",
            DiscoveryFailure::Refused => "pads_refused",
        }
    }
}

/// Something the caller must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryClientEvent {
    /// PADS received: PPP may start on this session.
    SessionUp {
        /// SESSION_ID the access concentrator assigned.
        session_id: u16,
        /// The access concentrator's MAC.
        ac_mac: [u8; 6],
    },
    /// The access concentrator sent a PADT for our session.
    TerminatedByPeer,
    /// Discovery gave up.
    Failed(DiscoveryFailure),
}

/// What a call produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoveryClientOutput {
    /// Frame to send, if any.
    pub frame: Option<DiscoveryFrame>,
    /// Event, if any.
    pub event: Option<DiscoveryClientEvent>,
}

/// Where discovery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryClientState {
    /// Not started.
    Idle,
    /// PADI sent, waiting for a PADO.
    Initiating,
    /// PADR sent, waiting for the PADS.
    Requesting,
    /// PADS received: the session exists.
    Session,
    /// Over: terminated by either side, or failed.
    Ended,
}

/// The host's side of PPPoE discovery for one session. See the module docs.
#[derive(Debug, Clone)]
pub struct DiscoveryClient {
    cfg: DiscoveryClientConfig,
    state: DiscoveryClientState,
    ac_mac: [u8; 6],
    /// Tags echoed in the PADR: AC-Cookie and Relay-Session-Id of the PADO.
    echoed: Vec<Tag>,
    session_id: u16,
    deadline: Option<u64>,
    timeout_ms: u64,
    sent: u32,
}

impl DiscoveryClient {
    /// A client that has sent nothing yet.
    pub fn new(cfg: DiscoveryClientConfig) -> Self {
        DiscoveryClient {
            timeout_ms: cfg.timeout_ms,
            cfg,
            state: DiscoveryClientState::Idle,
            ac_mac: [0; 6],
            echoed: Vec::new(),
            session_id: 0,
            deadline: None,
            sent: 0,
        }
    }

    /// Broadcasts the first PADI. Does nothing unless [`Idle`](DiscoveryClientState::Idle).
    pub fn start(&mut self, now_ms: u64) -> DiscoveryClientOutput {
        if self.state != DiscoveryClientState::Idle {
            return DiscoveryClientOutput::default();
        }
        self.state = DiscoveryClientState::Initiating;
        self.sent = 0;
        self.timeout_ms = self.cfg.timeout_ms;
        self.transmit(now_ms)
    }

    /// One discovery packet from `src_mac` (the PPPoE header onwards).
    /// Malformed packets, packets for another host (Host-Uniq) and packets
    /// not expected in the current state are ignored.
    pub fn input(&mut self, now_ms: u64, src_mac: [u8; 6], packet: &[u8]) -> DiscoveryClientOutput {
        let Ok((header, payload)) = parse(packet) else {
            return DiscoveryClientOutput::default();
        };
        let Ok(tags) = parse_tags(payload) else {
            return DiscoveryClientOutput::default();
        };
        match (self.state, header.code) {
            (DiscoveryClientState::Initiating, Code::Pado) => {
                if !self.is_ours(&tags) || has_error(&tags) {
                    return DiscoveryClientOutput::default();
                }
                self.ac_mac = src_mac;
                self.echoed = tags
                    .into_iter()
                    .filter(|t| matches!(t, Tag::AcCookie(_) | Tag::RelaySessionId(_)))
                    .collect();
                self.state = DiscoveryClientState::Requesting;
                self.sent = 0;
                self.timeout_ms = self.cfg.timeout_ms;
                self.transmit(now_ms)
            }
            (DiscoveryClientState::Requesting, Code::Pads) => {
                if src_mac != self.ac_mac || !self.is_ours(&tags) {
                    return DiscoveryClientOutput::default();
                }
                self.deadline = None;
                if header.session_id == 0 || has_error(&tags) {
                    self.state = DiscoveryClientState::Ended;
                    return event(DiscoveryClientEvent::Failed(DiscoveryFailure::Refused));
                }
                self.session_id = header.session_id;
                self.state = DiscoveryClientState::Session;
                event(DiscoveryClientEvent::SessionUp {
                    session_id: self.session_id,
                    ac_mac: self.ac_mac,
                })
            }
            (DiscoveryClientState::Session, Code::Padt)
                if header.session_id == self.session_id && src_mac == self.ac_mac =>
            {
                self.state = DiscoveryClientState::Ended;
                event(DiscoveryClientEvent::TerminatedByPeer)
            }
            _ => DiscoveryClientOutput::default(),
        }
    }

    /// Retransmissions and giving up, due at `now_ms`.
    pub fn tick(&mut self, now_ms: u64) -> DiscoveryClientOutput {
        match self.deadline {
            Some(d) if now_ms >= d => {}
            _ => return DiscoveryClientOutput::default(),
        }
        if self.sent >= self.cfg.attempts {
            let failure = if self.state == DiscoveryClientState::Initiating {
                DiscoveryFailure::NoOffer
            } else {
                DiscoveryFailure::NoConfirmation
            };
            self.state = DiscoveryClientState::Ended;
            self.deadline = None;
            return event(DiscoveryClientEvent::Failed(failure));
        }
        self.timeout_ms = self.timeout_ms.saturating_mul(2);
        self.transmit(now_ms)
    }

    /// Ends the session: the PADT to send. `None` unless a session exists.
    pub fn terminate(&mut self) -> Option<DiscoveryFrame> {
        if self.state != DiscoveryClientState::Session {
            return None;
        }
        self.state = DiscoveryClientState::Ended;
        Some(DiscoveryFrame {
            destination: Destination::Unicast(self.ac_mac),
            packet: emit(Code::Padt, self.session_id, &[]),
        })
    }

    /// When [`tick`](Self::tick) next has work, if ever.
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadline
    }

    /// Where discovery stands.
    pub fn state(&self) -> DiscoveryClientState {
        self.state
    }

    /// The session id from the PADS (0 before).
    pub fn session_id(&self) -> u16 {
        self.session_id
    }

    /// The access concentrator's MAC (from its PADO; zero before).
    pub fn ac_mac(&self) -> [u8; 6] {
        self.ac_mac
    }

    fn is_ours(&self, tags: &[Tag]) -> bool {
        if self.cfg.host_uniq.is_empty() {
            return true;
        }
        tags.iter()
            .any(|t| matches!(t, Tag::HostUniq(h) if *h == self.cfg.host_uniq))
    }

    /// Sends the PADI or PADR of the current state and arms the timer.
    fn transmit(&mut self, now_ms: u64) -> DiscoveryClientOutput {
        let mut tags = vec![Tag::ServiceName(self.cfg.service_name.clone())];
        if !self.cfg.host_uniq.is_empty() {
            tags.push(Tag::HostUniq(self.cfg.host_uniq.clone()));
        }
        let (code, destination) = if self.state == DiscoveryClientState::Initiating {
            (Code::Padi, Destination::Broadcast)
        } else {
            tags.extend(self.echoed.iter().cloned());
            (Code::Padr, Destination::Unicast(self.ac_mac))
        };
        self.sent += 1;
        self.deadline = Some(now_ms + self.timeout_ms);
        DiscoveryClientOutput {
            frame: Some(DiscoveryFrame {
                destination,
                packet: emit(code, 0, &emit_tags(&tags)),
            }),
            event: None,
        }
    }
}

fn has_error(tags: &[Tag]) -> bool {
    tags.iter().any(|t| {
        matches!(
            t.typ(),
            super::wire::tag_type::SERVICE_NAME_ERROR
                | super::wire::tag_type::AC_SYSTEM_ERROR
                | super::wire::tag_type::GENERIC_ERROR
        )
    })
}

fn event(e: DiscoveryClientEvent) -> DiscoveryClientOutput {
    DiscoveryClientOutput {
        frame: None,
        event: Some(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pppoe::discovery::{DiscoveryConfig, DiscoveryEvent, DiscoveryServer, LineKey};

    const HOST: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const LINE: LineKey = LineKey {
        up: 0,
        port: 1,
        svlan: 0,
        cvlan: 100,
    };

    fn client() -> DiscoveryClient {
        DiscoveryClient::new(DiscoveryClientConfig {
            host_uniq: b"hu".to_vec(),
            ..Default::default()
        })
    }

    #[test]
    fn discovers_a_session_from_the_server_side_in_memory() {
        let mut server = DiscoveryServer::new(DiscoveryConfig::default());
        let mut c = client();
        let padi = c.start(0).frame.expect("PADI");
        assert_eq!(padi.destination, Destination::Broadcast);
        let pado = server
            .handle(0, LINE, HOST, &padi.packet)
            .reply
            .expect("PADO");
        let padr = c.input(1, [9; 6], &pado).frame.expect("PADR");
        assert_eq!(padr.destination, Destination::Unicast([9; 6]));
        assert_eq!(c.state(), DiscoveryClientState::Requesting);
        let out = server.handle(2, LINE, HOST, &padr.packet);
        let pads = out.reply.expect("PADS");
        let Some(DiscoveryEvent::Opened { key, .. }) = out.event else {
            panic!("no session opened: {:?}", out.event);
        };
        let up = c.input(3, [9; 6], &pads).event;
        assert_eq!(
            up,
            Some(DiscoveryClientEvent::SessionUp {
                session_id: key.session_id,
                ac_mac: [9; 6]
            })
        );
        let padt = c.terminate().expect("PADT");
        let closed = server.handle(4, LINE, HOST, &padt.packet).event;
        assert!(matches!(closed, Some(DiscoveryEvent::Closed { .. })));
        assert_eq!(c.state(), DiscoveryClientState::Ended);
    }

    #[test]
    fn retransmits_with_doubling_timeouts_then_gives_up() {
        let mut c = client();
        c.start(0);
        assert_eq!(c.next_deadline(), Some(5000));
        assert!(c.tick(4999).frame.is_none());
        assert!(c.tick(5000).frame.is_some());
        assert_eq!(c.next_deadline(), Some(15_000));
        assert!(c.tick(15_000).frame.is_some());
        let out = c.tick(35_000);
        assert_eq!(
            out.event,
            Some(DiscoveryClientEvent::Failed(DiscoveryFailure::NoOffer))
        );
        assert_eq!(c.next_deadline(), None);
    }

    #[test]
    fn ignores_offers_for_other_hosts_errors_and_garbage() {
        let mut c = client();
        c.start(0);
        let other = emit(
            Code::Pado,
            0,
            &emit_tags(&[Tag::HostUniq(b"xx".to_vec()), Tag::AcCookie(vec![1])]),
        );
        assert_eq!(c.input(1, [9; 6], &other), DiscoveryClientOutput::default());
        let error = emit(
            Code::Pado,
            0,
            &emit_tags(&[Tag::HostUniq(b"hu".to_vec()), Tag::GenericError(vec![])]),
        );
        assert_eq!(c.input(1, [9; 6], &error), DiscoveryClientOutput::default());
        assert_eq!(
            c.input(1, [9; 6], &[0x11]),
            DiscoveryClientOutput::default()
        );
        assert_eq!(c.state(), DiscoveryClientState::Initiating);
    }

    #[test]
    fn refused_pads_and_peer_padt() {
        let mut c = client();
        c.start(0);
        let pado = emit(Code::Pado, 0, &emit_tags(&[Tag::HostUniq(b"hu".to_vec())]));
        c.input(1, [9; 6], &pado);
        let refused = emit(Code::Pads, 0, &emit_tags(&[Tag::HostUniq(b"hu".to_vec())]));
        assert_eq!(
            c.input(2, [9; 6], &refused).event,
            Some(DiscoveryClientEvent::Failed(DiscoveryFailure::Refused))
        );

        let mut c = client();
        c.start(0);
        c.input(1, [9; 6], &pado);
        let pads = emit(Code::Pads, 7, &emit_tags(&[Tag::HostUniq(b"hu".to_vec())]));
        c.input(2, [9; 6], &pads);
        assert_eq!(c.session_id(), 7);
        let wrong = emit(Code::Padt, 8, &[]);
        assert_eq!(c.input(3, [9; 6], &wrong).event, None);
        let padt = emit(Code::Padt, 7, &[]);
        assert_eq!(
            c.input(3, [9; 6], &padt).event,
            Some(DiscoveryClientEvent::TerminatedByPeer)
        );
        assert!(c.terminate().is_none());
    }
}
