//! The client's side of DHCPv4 (RFC 2131 section 4.4), sans-IO: DISCOVER,
//! OFFER, REQUEST, ACK (DORA), and RELEASE, as dhclient does them on an
//! access line.
//!
//! [`DhcpClient::start`] broadcasts a DISCOVER; the first OFFER for our
//! transaction and MAC is answered with a broadcast REQUEST naming its
//! server (option 54) and address (option 50); the ACK binds the lease
//! ([`DhcpClientEvent::Bound`]). A NAK starts over with a new DISCOVER.
//! DISCOVER and REQUEST are retransmitted on [`DhcpClient::tick`] with the
//! timeout doubling each time (RFC 2131 section 4.1). [`DhcpClient::release`]
//! gives the address back with a unicast RELEASE.
//!
//! The caller wraps each [`DhcpSend`] in UDP 68 -> 67, IPv4 and Ethernet,
//! and passes the UDP payloads of replies to [`DhcpClient::input`].

use std::net::Ipv4Addr;

use dhcproto::Encodable;
use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, OptionCode};

/// Settings of one DHCP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpClientConfig {
    /// The client's MAC (chaddr).
    pub mac: [u8; 6],
    /// Transaction id of the exchange.
    pub xid: u32,
    /// First retransmission timeout, doubled after each retransmission.
    /// Default 4000 ms (RFC 2131 section 4.1).
    pub timeout_ms: u64,
    /// DISCOVERs (and then REQUESTs) sent before giving up. Default 4.
    pub attempts: u32,
    /// Ask for broadcast replies (the BROADCAST flag), as a client without
    /// an address configured yet must on most stacks. Default true.
    pub broadcast: bool,
}

impl Default for DhcpClientConfig {
    fn default() -> Self {
        DhcpClientConfig {
            mac: [0; 6],
            xid: 0,
            timeout_ms: 4000,
            attempts: 4,
            broadcast: true,
        }
    }
}

/// One message to send (the UDP payload, client port 68 to server port 67).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpSend {
    /// The encoded DHCP message.
    pub bytes: Vec<u8>,
    /// IPv4 source: 0.0.0.0 until bound, then our address.
    pub src_ip: Ipv4Addr,
    /// IPv4 destination: 255.255.255.255, or the server for a RELEASE.
    pub dst_ip: Ipv4Addr,
    /// Send to the Ethernet broadcast address (else to the gateway's MAC).
    pub broadcast: bool,
}

/// A bound lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpLeaseInfo {
    /// Our address (yiaddr).
    pub ipv4: Ipv4Addr,
    /// The server identifier (option 54).
    pub server: Ipv4Addr,
    /// Default routers (option 3).
    pub routers: Vec<Ipv4Addr>,
    /// DNS servers (option 6).
    pub dns: Vec<Ipv4Addr>,
    /// Lease time (option 51), seconds.
    pub lease_time_s: Option<u32>,
}

/// Why the client gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DhcpFailure {
    /// No OFFER after every DISCOVER.
    NoOffer,
    /// No ACK (or NAK) after every REQUEST.
    NoAck,
}

impl DhcpFailure {
    /// A short label for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            DhcpFailure::NoOffer => "no_offer",
            DhcpFailure::NoAck => "no_ack",
        }
    }
}

/// Something the caller must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhcpClientEvent {
    /// ACK received: the lease is ours.
    Bound(DhcpLeaseInfo),
    /// NAK received: the client starts over (a DISCOVER goes with this event).
    Nak,
    /// The client gave up.
    Failed(DhcpFailure),
}

/// What a call produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DhcpClientOutput {
    /// Message to send, if any.
    pub send: Option<DhcpSend>,
    /// Event, if any.
    pub event: Option<DhcpClientEvent>,
}

/// Where the client stands (RFC 2131 figure 5, without renewal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DhcpClientState {
    /// Not started.
    Init,
    /// DISCOVER sent, waiting for an OFFER.
    Selecting,
    /// REQUEST sent, waiting for the ACK.
    Requesting,
    /// ACK received.
    Bound,
    /// Released, or given up.
    Ended,
}

/// One DHCP client. See the module docs.
#[derive(Debug, Clone)]
pub struct DhcpClient {
    cfg: DhcpClientConfig,
    state: DhcpClientState,
    offered: Option<(Ipv4Addr, Ipv4Addr)>,
    lease: Option<DhcpLeaseInfo>,
    deadline: Option<u64>,
    timeout_ms: u64,
    sent: u32,
}

impl DhcpClient {
    /// A client that has sent nothing yet.
    pub fn new(cfg: DhcpClientConfig) -> Self {
        DhcpClient {
            timeout_ms: cfg.timeout_ms,
            cfg,
            state: DhcpClientState::Init,
            offered: None,
            lease: None,
            deadline: None,
            sent: 0,
        }
    }

    /// Broadcasts the first DISCOVER. Does nothing unless in [`Init`](DhcpClientState::Init).
    pub fn start(&mut self, now_ms: u64) -> DhcpClientOutput {
        if self.state != DhcpClientState::Init {
            return DhcpClientOutput::default();
        }
        self.select(now_ms)
    }

    /// The UDP payload of a reply. Anything that does not decode, is not a
    /// reply to our transaction and MAC, or is not expected now is ignored.
    pub fn input(&mut self, now_ms: u64, bytes: &[u8]) -> DhcpClientOutput {
        let Ok(msg) = super::decode(bytes) else {
            return DhcpClientOutput::default();
        };
        if msg.xid() != self.cfg.xid || msg.chaddr().get(..6) != Some(&self.cfg.mac[..]) {
            return DhcpClientOutput::default();
        }
        let server = match msg.opts().get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(s)) => Some(*s),
            _ => None,
        };
        match (self.state, msg.opts().msg_type()) {
            (DhcpClientState::Selecting, Some(MessageType::Offer)) => {
                let Some(server) = server else {
                    return DhcpClientOutput::default();
                };
                self.offered = Some((msg.yiaddr(), server));
                self.state = DhcpClientState::Requesting;
                self.sent = 0;
                self.timeout_ms = self.cfg.timeout_ms;
                self.transmit(now_ms)
            }
            (DhcpClientState::Requesting, Some(MessageType::Ack)) => {
                let Some((ipv4, offered_by)) = self.offered else {
                    return DhcpClientOutput::default();
                };
                if msg.yiaddr() != ipv4 {
                    return DhcpClientOutput::default();
                }
                let lease = DhcpLeaseInfo {
                    ipv4,
                    server: server.unwrap_or(offered_by),
                    routers: match msg.opts().get(OptionCode::Router) {
                        Some(DhcpOption::Router(r)) => r.clone(),
                        _ => Vec::new(),
                    },
                    dns: match msg.opts().get(OptionCode::DomainNameServer) {
                        Some(DhcpOption::DomainNameServer(d)) => d.clone(),
                        _ => Vec::new(),
                    },
                    lease_time_s: match msg.opts().get(OptionCode::AddressLeaseTime) {
                        Some(DhcpOption::AddressLeaseTime(t)) => Some(*t),
                        _ => None,
                    },
                };
                self.state = DhcpClientState::Bound;
                self.deadline = None;
                self.lease = Some(lease.clone());
                DhcpClientOutput {
                    send: None,
                    event: Some(DhcpClientEvent::Bound(lease)),
                }
            }
            (DhcpClientState::Requesting, Some(MessageType::Nak)) => {
                let mut out = self.select(now_ms);
                out.event = Some(DhcpClientEvent::Nak);
                out
            }
            _ => DhcpClientOutput::default(),
        }
    }

    /// Retransmissions and giving up, due at `now_ms`.
    pub fn tick(&mut self, now_ms: u64) -> DhcpClientOutput {
        match self.deadline {
            Some(d) if now_ms >= d => {}
            _ => return DhcpClientOutput::default(),
        }
        if self.sent >= self.cfg.attempts {
            let failure = if self.state == DhcpClientState::Selecting {
                DhcpFailure::NoOffer
            } else {
                DhcpFailure::NoAck
            };
            self.state = DhcpClientState::Ended;
            self.deadline = None;
            return DhcpClientOutput {
                send: None,
                event: Some(DhcpClientEvent::Failed(failure)),
            };
        }
        self.timeout_ms = self.timeout_ms.saturating_mul(2);
        self.transmit(now_ms)
    }

    /// Gives the address back: the RELEASE to send, unicast to the server.
    /// `None` unless bound.
    pub fn release(&mut self) -> Option<DhcpSend> {
        if self.state != DhcpClientState::Bound {
            return None;
        }
        let lease = self.lease.clone()?;
        self.state = DhcpClientState::Ended;
        let mut m = self.message(MessageType::Release, false);
        m.set_ciaddr(lease.ipv4);
        m.opts_mut()
            .insert(DhcpOption::ServerIdentifier(lease.server));
        Some(DhcpSend {
            bytes: m.to_vec().unwrap_or_default(),
            src_ip: lease.ipv4,
            dst_ip: lease.server,
            broadcast: false,
        })
    }

    /// When [`tick`](Self::tick) next has work, if ever.
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadline
    }

    /// Where the client stands.
    pub fn state(&self) -> DhcpClientState {
        self.state
    }

    /// The lease, once bound.
    pub fn lease(&self) -> Option<&DhcpLeaseInfo> {
        self.lease.as_ref()
    }

    fn select(&mut self, now_ms: u64) -> DhcpClientOutput {
        self.state = DhcpClientState::Selecting;
        self.offered = None;
        self.sent = 0;
        self.timeout_ms = self.cfg.timeout_ms;
        self.transmit(now_ms)
    }

    fn message(&self, kind: MessageType, broadcast: bool) -> Message {
        let mut m = Message::new(
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &self.cfg.mac,
        );
        m.set_xid(self.cfg.xid);
        if broadcast {
            m.set_flags(Flags::default().set_broadcast());
        }
        m.opts_mut().insert(DhcpOption::MessageType(kind));
        m
    }

    /// Sends the DISCOVER or REQUEST of the current state and arms the timer.
    fn transmit(&mut self, now_ms: u64) -> DhcpClientOutput {
        let mut m =
            if let (DhcpClientState::Requesting, Some((ip, server))) = (self.state, self.offered) {
                let mut m = self.message(MessageType::Request, self.cfg.broadcast);
                m.opts_mut().insert(DhcpOption::ServerIdentifier(server));
                m.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
                m
            } else {
                self.message(MessageType::Discover, self.cfg.broadcast)
            };
        m.opts_mut().insert(DhcpOption::ParameterRequestList(vec![
            OptionCode::SubnetMask,
            OptionCode::Router,
            OptionCode::DomainNameServer,
        ]));
        self.sent += 1;
        self.deadline = Some(now_ms + self.timeout_ms);
        DhcpClientOutput {
            send: Some(DhcpSend {
                bytes: m.to_vec().unwrap_or_default(),
                src_ip: Ipv4Addr::UNSPECIFIED,
                dst_ip: Ipv4Addr::BROADCAST,
                broadcast: true,
            }),
            event: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dhcpv4::{Authorization, ClientContext, ClientKey, DhcpServer, PoolConfig};

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 9];

    fn server_answer(server: &mut DhcpServer, now: u64, bytes: &[u8]) -> Option<Vec<u8>> {
        let msg = crate::dhcpv4::decode(bytes).expect("client message decodes");
        let key = ClientKey {
            up: 0,
            port: 1,
            svlan: 0,
            cvlan: 7,
            mac: MAC,
        };
        let ctx = ClientContext::from_message(key, &msg);
        let handled = server.handle(now, &ctx, &msg, &mut |_| Authorization::Allow {
            pool: "default".into(),
            fixed_ipv4: None,
        });
        handled
            .reply
            .map(|r| r.msg.to_vec().expect("reply encodes"))
    }

    fn client() -> DhcpClient {
        DhcpClient::new(DhcpClientConfig {
            mac: MAC,
            xid: 0x1234,
            ..Default::default()
        })
    }

    #[test]
    fn dora_and_release_against_the_server_side_in_memory() {
        let mut server = DhcpServer::new(vec![PoolConfig::default()]).unwrap();
        let mut c = client();
        let discover = c.start(0).send.expect("DISCOVER");
        assert!(discover.broadcast);
        let offer = server_answer(&mut server, 0, &discover.bytes).expect("OFFER");
        let request = c.input(1, &offer).send.expect("REQUEST");
        assert_eq!(c.state(), DhcpClientState::Requesting);
        let ack = server_answer(&mut server, 2, &request.bytes).expect("ACK");
        let Some(DhcpClientEvent::Bound(lease)) = c.input(3, &ack).event else {
            panic!("not bound");
        };
        assert_eq!(lease.ipv4, Ipv4Addr::new(100, 64, 0, 10));
        assert_eq!(lease.server, Ipv4Addr::new(100, 64, 0, 1));
        assert_eq!(lease.dns, vec![Ipv4Addr::new(192, 0, 2, 53)]);
        assert_eq!(server.leases().count(), 1);
        let release = c.release().expect("RELEASE");
        assert_eq!((release.src_ip, release.dst_ip), (lease.ipv4, lease.server));
        assert!(server_answer(&mut server, 4, &release.bytes).is_none());
        assert_eq!(server.leases().count(), 0);
        assert!(c.release().is_none());
    }

    #[test]
    fn retransmits_then_gives_up_and_ignores_strangers() {
        let mut c = client();
        c.start(0);
        assert_eq!(c.next_deadline(), Some(4000));
        assert!(c.tick(3999).send.is_none());
        assert!(c.tick(4000).send.is_some());
        assert_eq!(c.next_deadline(), Some(12_000));
        c.tick(12_000);
        c.tick(28_000);
        assert_eq!(
            c.tick(60_000).event,
            Some(DhcpClientEvent::Failed(DhcpFailure::NoOffer))
        );
        let mut c = client();
        c.start(0);
        assert_eq!(c.input(1, &[0; 10]), DhcpClientOutput::default());
        let mut other = Message::new(
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::new(1, 2, 3, 4),
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &MAC,
        );
        other.set_xid(99);
        other
            .opts_mut()
            .insert(DhcpOption::MessageType(MessageType::Offer));
        assert_eq!(
            c.input(1, &other.to_vec().unwrap()),
            DhcpClientOutput::default()
        );
    }
}
