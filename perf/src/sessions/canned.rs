//! The baseline server of `vbng-perf sessions`: a trivial responder on its own thread that
//! answers each client message with a canned reply over GTP-U, keeping no session state,
//! so that the emulator measured against it shows what the harness itself can do on this
//! machine (its sockets, client machines and frame handling) with the same traffic.
//!
//! PPPoE: PADI -> PADO (Host-Uniq echoed, a fixed AC-Cookie), PADR -> PADS (session id from
//! the client's MAC) and our LCP Configure-Request (MRU 1492, PAP, a magic number), LCP
//! Configure-Request -> Configure-Ack, PAP Authenticate-Request -> Authenticate-Ack and our
//! IPCP Configure-Request, IPCP Configure-Request for 0.0.0.0 -> Configure-Nak with an
//! address derived from the MAC and two DNS servers (as vbng-cp does with the run's
//! pool), IPCP Configure-Request with the address -> Configure-Ack
//! and an "established" notice, PADT -> a "deleted" notice. IPoE: DISCOVER -> OFFER,
//! REQUEST -> ACK and an "established" notice, RELEASE -> a "deleted" notice.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vbng_access::dhcproto::Encodable;
use vbng_access::dhcproto::v4::{DhcpOption, Message as Dhcp, MessageType, Opcode};
use vbng_access::ppp::proto;
use vbng_access::ppp::wire::{
    emit_option, emit_packet, ipcp_opt, lcp_opt, pap_code, parse_options, parse_packet,
};
use vbng_access::pppoe::wire::{self as pppoe_wire, Code, Tag};
use vbng_dataplane::wire::{EtherType, EthernetAddress, GtpuRepr, L2Header, frame};

use super::emulator::{client_of_mac, udp_payload_to_port};
use super::{Notice, NoticeKind};

/// The responder's MAC (the access concentrator / gateway).
const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x0c, 0x01];
/// Its address (IPCP peer address, DHCP server identifier and router).
const GATEWAY: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
/// The DNS servers it gives (two, as the vbng-cp run's pool has).
const DNS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
const DNS2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 54);

/// A running canned responder; stops when dropped.
#[derive(Debug)]
pub struct CannedResponder {
    /// Its GTP-U address (the emulator's server).
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CannedResponder {
    /// Binds 127.0.0.1:0 and starts answering; notices go to `notices`.
    pub fn start(notices: Sender<Notice>) -> std::io::Result<CannedResponder> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        super::grow_buffers(&socket);
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let addr = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("canned".into())
            .spawn(move || serve(&socket, &flag, &notices))?;
        Ok(CannedResponder {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for CannedResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The address handed to client `index`: 100.64.0.0/16 from .0.10 on.
fn address_of(index: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 10)) + (index & 0xffff))
}

fn serve(socket: &UdpSocket, stop: &AtomicBool, notices: &Sender<Notice>) {
    let mut buf = vec![0u8; 65_535];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, src)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Ok((gtpu, frame)) = GtpuRepr::parse_payload(&buf[..n]) else {
            continue;
        };
        let Ok((l2, off)) = L2Header::parse(frame) else {
            continue;
        };
        let Some(index) = client_of_mac(l2.src.0) else {
            continue;
        };
        let out = Replies {
            socket,
            dst: src,
            teid: gtpu.teid,
            l2,
        };
        let notice = match l2.ethertype {
            EtherType::PppoeDiscovery => out.discovery(index, &frame[off..]),
            EtherType::PppoeSession => out.ppp(index, &frame[off..]),
            EtherType::Ipv4 => out.dhcp(index, &frame[off..]),
            _ => None,
        };
        if let Some(kind) = notice {
            let _ = notices.send(Notice {
                kind,
                client: index,
                at: Instant::now(),
            });
        }
    }
}

struct Replies<'a> {
    socket: &'a UdpSocket,
    dst: SocketAddr,
    teid: u32,
    l2: L2Header,
}

impl Replies<'_> {
    fn send(&self, broadcast: bool, ethertype: EtherType, payload: &[u8]) {
        let l2 = L2Header {
            dst: if broadcast {
                EthernetAddress::BROADCAST
            } else {
                self.l2.src
            },
            src: EthernetAddress(MAC),
            ethertype,
            ..self.l2
        };
        let mut frame = vec![0u8; l2.buffer_len()];
        l2.emit(&mut frame);
        frame.extend_from_slice(payload);
        self.send_frame(&frame);
    }

    fn send_frame(&self, frame: &[u8]) {
        if let Ok(d) = GtpuRepr::g_pdu(self.teid).encapsulate(frame) {
            let _ = self.socket.send_to(&d, self.dst);
        }
    }

    fn send_ppp(&self, session_id: u16, protocol: u16, packet: &[u8]) {
        let mut body = protocol.to_be_bytes().to_vec();
        body.extend_from_slice(packet);
        self.send(
            false,
            EtherType::PppoeSession,
            &pppoe_wire::emit(Code::Session, session_id, &body),
        );
    }

    fn discovery(&self, index: u32, packet: &[u8]) -> Option<NoticeKind> {
        let (h, payload) = pppoe_wire::parse(packet).ok()?;
        let tags = pppoe_wire::parse_tags(payload).ok()?;
        let session_id = (index % 0xfffe) as u16 + 1;
        let host_uniq = tags.iter().find(|t| matches!(t, Tag::HostUniq(_))).cloned();
        let mut reply = vec![
            Tag::ServiceName(Vec::new()),
            Tag::AcName(b"canned".to_vec()),
        ];
        reply.extend(host_uniq);
        match h.code {
            Code::Padi => {
                reply.push(Tag::AcCookie(vec![1, 2, 3, 4]));
                let pado = pppoe_wire::emit(Code::Pado, 0, &pppoe_wire::emit_tags(&reply));
                self.send(false, EtherType::PppoeDiscovery, &pado);
                None
            }
            Code::Padr => {
                let pads = pppoe_wire::emit(Code::Pads, session_id, &pppoe_wire::emit_tags(&reply));
                self.send(false, EtherType::PppoeDiscovery, &pads);
                let mut lcp = Vec::new();
                emit_option(&mut lcp, lcp_opt::MRU, &1492u16.to_be_bytes());
                emit_option(&mut lcp, lcp_opt::AUTH_PROTOCOL, &proto::PAP.to_be_bytes());
                emit_option(
                    &mut lcp,
                    lcp_opt::MAGIC_NUMBER,
                    &0x0bad_cafeu32.to_be_bytes(),
                );
                self.send_ppp(session_id, proto::LCP, &emit_packet(1, 1, &lcp));
                None
            }
            Code::Padt => Some(NoticeKind::Deleted),
            _ => None,
        }
    }

    fn ppp(&self, index: u32, packet: &[u8]) -> Option<NoticeKind> {
        let (h, body) = pppoe_wire::parse(packet).ok()?;
        let protocol = u16::from_be_bytes([*body.first()?, *body.get(1)?]);
        let p = parse_packet(body.get(2..)?).ok()?;
        let sid = h.session_id;
        match (protocol, p.code) {
            (proto::LCP, 1) => self.send_ppp(sid, proto::LCP, &emit_packet(2, p.id, p.data)),
            (proto::LCP, 9) => {
                let mut reply = 0x0bad_cafeu32.to_be_bytes().to_vec();
                reply.extend_from_slice(p.data.get(4..).unwrap_or_default());
                self.send_ppp(sid, proto::LCP, &emit_packet(10, p.id, &reply));
            }
            (proto::LCP, 5) => self.send_ppp(sid, proto::LCP, &emit_packet(6, p.id, &[])),
            (proto::PAP, pap_code::REQUEST) => {
                self.send_ppp(sid, proto::PAP, &emit_packet(pap_code::ACK, p.id, &[0]));
                let mut ours = Vec::new();
                emit_option(&mut ours, ipcp_opt::IP_ADDRESS, &GATEWAY.octets());
                self.send_ppp(sid, proto::IPCP, &emit_packet(1, 1, &ours));
            }
            (proto::IPCP, 1) => {
                let opts = parse_options(p.data).ok()?;
                let mut nak = Vec::new();
                let mut rej = Vec::new();
                for o in &opts {
                    match o.typ {
                        ipcp_opt::IP_ADDRESS if o.value != address_of(index).octets() => {
                            emit_option(&mut nak, o.typ, &address_of(index).octets())
                        }
                        ipcp_opt::PRIMARY_DNS if o.value != DNS.octets() => {
                            emit_option(&mut nak, o.typ, &DNS.octets())
                        }
                        ipcp_opt::SECONDARY_DNS if o.value != DNS2.octets() => {
                            emit_option(&mut nak, o.typ, &DNS2.octets())
                        }
                        ipcp_opt::IP_ADDRESS | ipcp_opt::PRIMARY_DNS | ipcp_opt::SECONDARY_DNS => {}
                        _ => rej.extend_from_slice(o.raw),
                    }
                }
                let (code, data) = if !rej.is_empty() {
                    (4, rej)
                } else if !nak.is_empty() {
                    (3, nak)
                } else {
                    self.send_ppp(sid, proto::IPCP, &emit_packet(2, p.id, p.data));
                    return Some(NoticeKind::Established);
                };
                self.send_ppp(sid, proto::IPCP, &emit_packet(code, p.id, &data));
            }
            _ => {}
        }
        None
    }

    fn dhcp(&self, index: u32, ip: &[u8]) -> Option<NoticeKind> {
        let bytes = udp_payload_to_port(ip, 67)?;
        let msg = vbng_access::dhcpv4::decode(bytes).ok()?;
        let kind = match msg.opts().msg_type()? {
            MessageType::Discover => MessageType::Offer,
            MessageType::Request => MessageType::Ack,
            MessageType::Release => return Some(NoticeKind::Deleted),
            _ => return None,
        };
        let mut reply = Dhcp::new(
            Ipv4Addr::UNSPECIFIED,
            address_of(index),
            GATEWAY,
            Ipv4Addr::UNSPECIFIED,
            msg.chaddr(),
        );
        reply
            .set_opcode(Opcode::BootReply)
            .set_xid(msg.xid())
            .set_flags(msg.flags());
        let opts = reply.opts_mut();
        opts.insert(DhcpOption::MessageType(kind));
        opts.insert(DhcpOption::ServerIdentifier(GATEWAY));
        opts.insert(DhcpOption::AddressLeaseTime(3600));
        opts.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 0, 0)));
        opts.insert(DhcpOption::Router(vec![GATEWAY]));
        opts.insert(DhcpOption::DomainNameServer(vec![DNS, DNS2]));
        let l2 = L2Header {
            dst: EthernetAddress::BROADCAST,
            src: EthernetAddress(MAC),
            ..self.l2
        };
        let f = frame::build_ipv4_udp(
            &l2,
            GATEWAY,
            Ipv4Addr::BROADCAST,
            67,
            68,
            64,
            &reply.to_vec().ok()?,
        );
        self.send_frame(&f);
        (kind == MessageType::Ack).then_some(NoticeKind::Established)
    }
}
