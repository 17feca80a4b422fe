//! A scripted PPPoE client for the control plane tests: discovery, LCP,
//! CHAP or PAP and IPCP as pppd 2.4.9 does them (MRU 1492 and a magic
//! number; IP-Address and both DNS asked as 0.0.0.0, rejected options
//! dropped), carried in GTP-U as a user plane redirects them.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use vbng_access::ppp::wire::{self as pw, emit_option, emit_packet, parse_options, parse_packet};
use vbng_access::ppp::{proto, wire::lcp_opt};
use vbng_access::pppoe::wire::{self as ow, Code, Tag};
use vbng_dataplane::wire::{EtherType, EthernetAddress, GtpuRepr, L2Header};

use super::gtpu;

/// A scripted PPPoE client behind an in-test user plane: the frames
/// pppd sends, over GTP-U to the control plane.
pub struct PppoeClient {
    /// The user plane's GTP-U socket.
    pub sock: UdpSocket,
    /// The control plane's GTP-U address.
    pub cp: SocketAddr,
    /// The client's MAC.
    pub mac: [u8; 6],
    /// The session id of the last PADS.
    pub session_id: u16,
}

impl PppoeClient {
    pub async fn send(&self, ethertype: EtherType, payload: &[u8]) {
        self.send_from(self.mac, ethertype, payload).await;
    }

    /// Send a frame as another client, `mac`, on the same line.
    pub async fn send_from(&self, mac: [u8; 6], ethertype: EtherType, payload: &[u8]) {
        let l2 = L2Header {
            dst: EthernetAddress([2, 0, 0x5e, 0, 1, 1]),
            src: EthernetAddress(mac),
            svlan: None,
            cvlan: Some(100),
            ethertype,
        };
        let mut frame = vec![0u8; l2.buffer_len()];
        l2.emit(&mut frame);
        frame.extend_from_slice(payload);
        self.sock.send_to(&gtpu(1, &frame), self.cp).await.unwrap();
    }

    pub async fn send_ppp(&self, protocol: u16, packet: &[u8]) {
        let mut body = protocol.to_be_bytes().to_vec();
        body.extend_from_slice(packet);
        let frame = ow::emit(Code::Session, self.session_id, &body);
        self.send(EtherType::PppoeSession, &frame).await;
    }

    /// Next frame to this client's MAC (frames to other MACs on the line
    /// are passed over, as a NIC does): (ethertype, PPPoE header, payload).
    pub async fn recv(&self, within: Duration) -> Option<(EtherType, ow::Header, Vec<u8>)> {
        let deadline = tokio::time::Instant::now() + within;
        let mut buf = [0u8; 4096];
        loop {
            let (n, _) = tokio::time::timeout_at(deadline, self.sock.recv_from(&mut buf))
                .await
                .ok()?
                .unwrap();
            let (_, frame) = GtpuRepr::parse_payload(&buf[..n]).unwrap();
            let (l2, off) = L2Header::parse(frame).unwrap();
            if l2.dst.0 != self.mac {
                continue;
            }
            assert_eq!(l2.cvlan, Some(100), "reply on the client's VLAN");
            let (h, payload) = ow::parse(&frame[off..]).unwrap();
            return Some((l2.ethertype, h, payload.to_vec()));
        }
    }

    /// Discovery: PADI, PADO, PADR (with the cookie), PADS.
    pub async fn discover(&mut self) {
        let tags = ow::emit_tags(&[
            Tag::ServiceName(Vec::new()),
            Tag::HostUniq(b"hu-1".to_vec()),
        ]);
        self.send(EtherType::PppoeDiscovery, &ow::emit(Code::Padi, 0, &tags))
            .await;
        let (_, h, payload) = self.recv(Duration::from_secs(3)).await.expect("PADO");
        assert_eq!(h.code, Code::Pado);
        let tags = ow::parse_tags(&payload).unwrap();
        let cookie = tags
            .iter()
            .find_map(|t| match t {
                Tag::AcCookie(c) => Some(c.clone()),
                _ => None,
            })
            .expect("AC-Cookie in the PADO");
        assert!(tags.contains(&Tag::HostUniq(b"hu-1".to_vec())));
        let padr = ow::emit_tags(&[
            Tag::ServiceName(Vec::new()),
            Tag::HostUniq(b"hu-1".to_vec()),
            Tag::AcCookie(cookie),
        ]);
        self.send(EtherType::PppoeDiscovery, &ow::emit(Code::Padr, 0, &padr))
            .await;
        let (_, h, _) = self.recv(Duration::from_secs(3)).await.expect("PADS");
        assert_eq!(h.code, Code::Pads);
        assert_ne!(h.session_id, 0);
        self.session_id = h.session_id;
    }

    /// LCP, authentication and IPCP as pppd does them; returns the address
    /// and DNS servers IPCP gave, or `None` if authentication failed.
    pub async fn negotiate(
        &self,
        user: &[u8],
        password: &[u8],
    ) -> Option<(Ipv4Addr, Vec<Ipv4Addr>)> {
        let mut ours = Vec::new();
        emit_option(&mut ours, lcp_opt::MRU, &1492u16.to_be_bytes());
        emit_option(
            &mut ours,
            lcp_opt::MAGIC_NUMBER,
            &0x1234_5678u32.to_be_bytes(),
        );
        self.send_ppp(proto::LCP, &emit_packet(1, 1, &ours)).await;
        let mut ipcp_req: Vec<u8> = Vec::new();
        for (t, v) in [(3u8, [0u8; 4]), (129, [0; 4]), (131, [0; 4])] {
            emit_option(&mut ipcp_req, t, &v);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "PPP negotiation did not finish within 20 s"
            );
            let (et, h, payload) = self
                .recv(Duration::from_secs(5))
                .await
                .expect("a PPP frame");
            if et == EtherType::PppoeDiscovery {
                assert_eq!(h.code, Code::Padt);
                return None;
            }
            let protocol = u16::from_be_bytes([payload[0], payload[1]]);
            let p = parse_packet(&payload[2..]).unwrap();
            match (protocol, p.code) {
                (proto::LCP, 1) => {
                    // The server's Configure-Request: acknowledge as is.
                    self.send_ppp(proto::LCP, &emit_packet(2, p.id, p.data))
                        .await;
                }
                (proto::LCP, 2) => {} // our request acknowledged
                (proto::LCP, 5) => {
                    self.send_ppp(proto::LCP, &emit_packet(6, p.id, &[])).await;
                    return None;
                }
                (proto::LCP, 9) => {
                    // Echo-Request: reply with our magic.
                    let mut d = 0x1234_5678u32.to_be_bytes().to_vec();
                    d.extend_from_slice(&p.data[4..]);
                    self.send_ppp(proto::LCP, &emit_packet(10, p.id, &d)).await;
                }
                (proto::CHAP, 1) => {
                    let c = pw::parse_chap_value(p.data).unwrap();
                    let r = vbng_aaa::radius::crypto::chap_password(p.id, password, c.value);
                    let resp = pw::emit_chap_value(&r[1..], user);
                    self.send_ppp(proto::CHAP, &emit_packet(2, p.id, &resp))
                        .await;
                }
                (proto::CHAP, 3) | (proto::PAP, 2) => {
                    // Authenticated: start IPCP asking for everything.
                    self.send_ppp(proto::IPCP, &emit_packet(1, 1, &ipcp_req))
                        .await;
                }
                (proto::CHAP, 4) | (proto::PAP, 3) => return None,
                (proto::IPCP, 1) => {
                    self.send_ppp(proto::IPCP, &emit_packet(2, p.id, p.data))
                        .await;
                }
                (proto::IPCP, 3) => {
                    // Nak with our address and DNS: ask again with them.
                    let opts = parse_options(p.data).unwrap();
                    let mut again = Vec::new();
                    for o in &opts {
                        emit_option(&mut again, o.typ, o.value);
                    }
                    ipcp_req = again;
                    self.send_ppp(
                        proto::IPCP,
                        &emit_packet(1, p.id.wrapping_add(1), &ipcp_req),
                    )
                    .await;
                }
                (proto::IPCP, 4) => {
                    // Configure-Reject (a DNS server the pool does not
                    // have): ask again without those options.
                    let rejected: Vec<u8> = parse_options(p.data)
                        .unwrap()
                        .iter()
                        .map(|o| o.typ)
                        .collect();
                    let kept: Vec<(u8, Vec<u8>)> = parse_options(&ipcp_req)
                        .unwrap()
                        .iter()
                        .filter(|o| !rejected.contains(&o.typ))
                        .map(|o| (o.typ, o.value.to_vec()))
                        .collect();
                    ipcp_req.clear();
                    for (t, v) in kept {
                        emit_option(&mut ipcp_req, t, &v);
                    }
                    self.send_ppp(
                        proto::IPCP,
                        &emit_packet(1, p.id.wrapping_add(1), &ipcp_req),
                    )
                    .await;
                }
                (proto::IPCP, 2) => {
                    let opts = parse_options(p.data).unwrap();
                    let ip = |t| {
                        opts.iter()
                            .find(|o| o.typ == t)
                            .map(|o| Ipv4Addr::new(o.value[0], o.value[1], o.value[2], o.value[3]))
                    };
                    let addr = ip(3).expect("IP-Address acknowledged");
                    let dns = [ip(129), ip(131)].into_iter().flatten().collect();
                    return Some((addr, dns));
                }
                (proto::PAP, _) | (proto::CHAP, _) | (proto::IPCP, _) | (proto::LCP, _) => {}
                // IPv6CP is negotiated afterwards (`negotiate_ipv6cp`).
                (proto::IPV6CP, _) => {}
                other => panic!("unexpected PPP frame {other:?}"),
            }
        }
    }
}

impl PppoeClient {
    /// IPv6CP as pppd `+ipv6` does it, asking for interface identifier
    /// `iid` first: a Nak's suggestion is taken, the server's request
    /// acknowledged. Returns (ours as agreed, the server's).
    pub async fn negotiate_ipv6cp(&self, iid: u64) -> (u64, u64) {
        use vbng_access::ppp::wire::ipv6cp_opt;
        let request = |id: u8, iid: u64| {
            let mut o = Vec::new();
            emit_option(&mut o, ipv6cp_opt::INTERFACE_IDENTIFIER, &iid.to_be_bytes());
            emit_packet(1, id, &o)
        };
        let mut ours = iid;
        let mut id = 1u8;
        self.send_ppp(proto::IPV6CP, &request(id, ours)).await;
        let (mut acked, mut peer) = (false, None);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !(acked && peer.is_some()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "IPv6CP not done within 20 s"
            );
            let Some((et, _, payload)) = self.recv(Duration::from_secs(5)).await else {
                continue;
            };
            let protocol = u16::from_be_bytes([payload[0], payload[1]]);
            if et != EtherType::PppoeSession || protocol != proto::IPV6CP {
                continue;
            }
            let p = parse_packet(&payload[2..]).unwrap();
            let value = || {
                let opts = parse_options(p.data).unwrap();
                u64::from_be_bytes(opts[0].value.try_into().unwrap())
            };
            match p.code {
                1 => {
                    peer = Some(value());
                    self.send_ppp(proto::IPV6CP, &emit_packet(2, p.id, p.data))
                        .await;
                }
                2 if p.id == id => acked = true,
                3 if p.id == id => {
                    ours = value();
                    id += 1;
                    self.send_ppp(proto::IPV6CP, &request(id, ours)).await;
                }
                _ => {}
            }
        }
        (ours, peer.unwrap())
    }

    /// Send an IPv6 packet in a PPP 0x0057 frame.
    pub async fn send_ipv6(&self, packet: &[u8]) {
        self.send_ppp(proto::IPV6, packet).await;
    }

    /// The next IPv6 packet to this client within `within` (other frames
    /// are passed over).
    pub async fn recv_ipv6(&self, within: Duration) -> Option<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let (et, _, payload) = self.recv(left).await?;
            if et == EtherType::PppoeSession
                && u16::from_be_bytes([payload[0], payload[1]]) == proto::IPV6
            {
                return Some(payload[2..].to_vec());
            }
        }
    }
}
