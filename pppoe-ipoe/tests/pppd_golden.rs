//! Golden tests from real frames: pppd 2.4.9 (rp-pppoe plugin, in a
//! User-Mode Linux guest) against vbng-cp through vbng-up, captured on the
//! subscriber's line (see `tests/data/README.md`), one session with PAP and
//! one with CHAP-MD5.
//!
//! - Every captured frame parses with this crate's parsers, and emitting
//!   what was parsed gives back the same bytes (the formats are canonical
//!   once Ethernet padding after the PPPoE LENGTH is left out).
//! - Replaying pppd's side of a capture into a [`DiscoveryServer`] and a
//!   [`PppSession`] configured as vbng-cp was gives the server side of the
//!   capture: same frames, same codes, identifiers, options and order.
//!   Values that legitimately differ are set or compared loosely: the
//!   AC-Cookie (keyed by a random secret; pppd's PADR gets ours instead),
//!   the PPPoE session id, the CHAP challenge value (random), and where
//!   they come from the capture, our LCP magic number and the first CHAP
//!   identifier (both random in vbng-cp, both parameters of
//!   [`PppSession::new`]), the address IPCP hands out and the AAA verdict
//!   message. CHAP needs no hook: verifying the response is the caller's
//!   job, so the captured response (which answers the captured challenge)
//!   is simply accepted, as the AAA layer accepted it in the capture.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;

use vbng_access::ppp::wire::{
    self as ppp_wire, chap_code, emit_chap_value, emit_option, emit_packet, emit_pap_request,
    ipcp_opt, lcp_opt, pap_code, parse_chap_value, parse_options, parse_packet, parse_pap_request,
};
use vbng_access::ppp::{
    AuthMethod, Credentials, DownReason, Output, PppConfig, PppEvent, PppSession, proto,
};
use vbng_access::pppoe::wire::{self as pppoe_wire, Code, Tag};
use vbng_access::pppoe::{
    DiscoveryConfig, DiscoveryEvent, DiscoveryServer, ETHERTYPE_DISCOVERY, ETHERTYPE_SESSION,
    LineKey, SessionKey,
};

/// The user and secret of the lab's subscriber file (`[[users]]`).
const USER: &str = "ppp-user";
const PASSWORD: &[u8] = b"ppp-pass";

/// The reason vbng-cp gives in the PADT that ends a session.
const PADT_REASON: &str = "session ended";

// ---------------------------------------------------------------------------
// A classic pcap reader (the format tcpdump writes): a 24-byte file header
// whose magic gives the byte order and timestamp unit, then per packet a
// 16-byte record header (seconds, sub-seconds, captured length, original
// length) and the captured bytes.

/// One captured Ethernet frame.
#[derive(Debug, Clone)]
struct Frame {
    /// Capture time in microseconds since the epoch.
    at_us: u64,
    dst: [u8; 6],
    src: [u8; 6],
    ethertype: u16,
    /// Everything after the (untagged) Ethernet header, padding included.
    payload: Vec<u8>,
}

/// Link type of Ethernet captures (LINKTYPE_ETHERNET).
const LINKTYPE_ETHERNET: u32 = 1;

fn read_pcap(path: &Path) -> Vec<Frame> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(bytes.len() >= 24, "{}: no pcap file header", path.display());
    let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
    let (big_endian, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
        other => panic!(
            "{}: magic {other:02x?} is not classic pcap (pcapng? convert with `editcap -F pcap`)",
            path.display()
        ),
    };
    let word = |at: usize| {
        let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    assert_eq!(word(20), LINKTYPE_ETHERNET, "{}: link type", path.display());
    let mut frames = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        assert!(
            at + 16 <= bytes.len(),
            "{}: truncated record",
            path.display()
        );
        let (secs, fraction, caplen, origlen) =
            (word(at), word(at + 4), word(at + 8), word(at + 12));
        assert_eq!(caplen, origlen, "{}: a frame was cut short", path.display());
        let data = bytes
            .get(at + 16..at + 16 + caplen as usize)
            .unwrap_or_else(|| panic!("{}: truncated frame", path.display()));
        at += 16 + caplen as usize;
        assert!(data.len() >= 14, "{}: runt frame", path.display());
        let sub_us = if nanos { fraction / 1000 } else { fraction };
        frames.push(Frame {
            at_us: u64::from(secs) * 1_000_000 + u64::from(sub_us),
            dst: data[..6].try_into().expect("6 bytes"),
            src: data[6..12].try_into().expect("6 bytes"),
            ethertype: u16::from_be_bytes([data[12], data[13]]),
            payload: data[14..].to_vec(),
        });
    }
    frames
}

fn capture(name: &str) -> Vec<Frame> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let frames = read_pcap(&path);
    assert!(!frames.is_empty(), "{name}: no frames");
    frames
}

/// pppd's MAC: the source of the first PADI.
fn client_mac(frames: &[Frame]) -> [u8; 6] {
    frames
        .iter()
        .find(|f| f.ethertype == ETHERTYPE_DISCOVERY && f.payload.get(1) == Some(&0x09))
        .map(|f| f.src)
        .expect("a PADI in the capture")
}

// ---------------------------------------------------------------------------
// Parsing and re-emitting every frame.

/// The PPPoE payload of a frame without Ethernet padding: header and
/// LENGTH bytes.
fn pppoe_bytes(f: &Frame) -> &[u8] {
    let (h, _) = pppoe_wire::parse(&f.payload).expect("PPPoE header");
    &f.payload[..6 + usize::from(h.length)]
}

/// Parses one PPP control packet of `protocol` down to its fields and
/// emits it again; panics (naming `what`) when parsing fails or the bytes
/// differ.
fn round_trip_ppp(what: &str, protocol: u16, packet: &[u8]) {
    let p = parse_packet(packet).unwrap_or_else(|e| panic!("{what}: {e}"));
    let data = match protocol {
        proto::LCP | proto::IPCP => match ppp_wire::Code::from(p.code) {
            ppp_wire::Code::ConfigureRequest
            | ppp_wire::Code::ConfigureAck
            | ppp_wire::Code::ConfigureNak
            | ppp_wire::Code::ConfigureReject => {
                let opts = parse_options(p.data).unwrap_or_else(|e| panic!("{what}: {e}"));
                let mut out = Vec::new();
                for o in &opts {
                    emit_option(&mut out, o.typ, o.value);
                }
                out
            }
            _ => p.data.to_vec(),
        },
        proto::PAP if p.code == pap_code::REQUEST => {
            let r = parse_pap_request(p.data).unwrap_or_else(|e| panic!("{what}: {e}"));
            emit_pap_request(r.peer_id, r.password)
        }
        proto::CHAP if matches!(p.code, chap_code::CHALLENGE | chap_code::RESPONSE) => {
            let v = parse_chap_value(p.data).unwrap_or_else(|e| panic!("{what}: {e}"));
            emit_chap_value(v.value, v.name)
        }
        _ => p.data.to_vec(),
    };
    assert_eq!(
        emit_packet(p.code, p.id, &data),
        packet[..p.data.len() + 4],
        "{what}: parse -> emit changes the bytes"
    );
}

/// Checks every frame of a capture and returns a one-line description of
/// each, in order.
fn parse_and_round_trip(name: &str) -> Vec<String> {
    let frames = capture(name);
    let client = client_mac(&frames);
    let mut described = Vec::new();
    for (n, f) in frames.iter().enumerate() {
        let what = format!("{name} frame {}", n + 1);
        let (h, body) = pppoe_wire::parse(&f.payload).unwrap_or_else(|e| panic!("{what}: {e}"));
        let bytes = pppoe_bytes(f);
        assert_eq!(
            pppoe_wire::emit(h.code, h.session_id, body),
            bytes,
            "{what}: PPPoE header parse -> emit"
        );
        let side = if f.src == client { "pppd" } else { "vbng" };
        match f.ethertype {
            ETHERTYPE_DISCOVERY => {
                let tags = pppoe_wire::parse_tags(body).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(
                    pppoe_wire::emit_tags(&tags),
                    body,
                    "{what}: tags parse -> emit"
                );
                described.push(format!("{side} {}", describe_discovery(h.code, &tags)));
            }
            ETHERTYPE_SESSION => {
                assert_eq!(h.code, Code::Session, "{what}: session frame code");
                let (protocol, packet) = split_protocol(body);
                assert_ne!(protocol, proto::IPV4, "{what}: IP was to be left out");
                round_trip_ppp(&what, protocol, packet);
                described.push(format!("{side} {}", describe_ppp(protocol, packet)));
            }
            other => panic!("{what}: EtherType {other:#06x}"),
        }
    }
    described
}

fn split_protocol(body: &[u8]) -> (u16, &[u8]) {
    assert!(body.len() >= 2, "PPP frame without a protocol field");
    (u16::from_be_bytes([body[0], body[1]]), &body[2..])
}

// ---------------------------------------------------------------------------
// Descriptions: what a frame says, in the words the comparison uses.

fn describe_discovery(code: Code, tags: &[Tag]) -> String {
    let mut s = format!("{code:?}");
    for t in tags {
        let _ = match t {
            Tag::ServiceName(v) => write!(s, " service-name={:?}", String::from_utf8_lossy(v)),
            Tag::AcName(v) => write!(s, " ac-name={:?}", String::from_utf8_lossy(v)),
            Tag::HostUniq(v) => write!(s, " host-uniq={}", hex(v)),
            Tag::AcCookie(v) => write!(s, " ac-cookie=<{} bytes>", v.len()),
            Tag::GenericError(v) => write!(s, " generic-error={:?}", String::from_utf8_lossy(v)),
            other => write!(s, " {other:?}"),
        };
    }
    s
}

fn describe_ppp(protocol: u16, packet: &[u8]) -> String {
    let p = parse_packet(packet).expect("PPP packet");
    let name = match protocol {
        proto::LCP => "LCP",
        proto::IPCP => "IPCP",
        proto::PAP => "PAP",
        proto::CHAP => "CHAP",
        _ => "PPP",
    };
    let code = match (protocol, p.code) {
        (proto::PAP, pap_code::REQUEST) => "AuthReq".to_owned(),
        (proto::PAP, pap_code::ACK) => "AuthAck".to_owned(),
        (proto::PAP, pap_code::NAK) => "AuthNak".to_owned(),
        (proto::CHAP, chap_code::CHALLENGE) => "Challenge".to_owned(),
        (proto::CHAP, chap_code::RESPONSE) => "Response".to_owned(),
        (proto::CHAP, chap_code::SUCCESS) => "Success".to_owned(),
        (proto::CHAP, chap_code::FAILURE) => "Failure".to_owned(),
        (_, c) => format!("{:?}", ppp_wire::Code::from(c)),
    };
    let mut s = format!("{name} {code} id={}", p.id);
    if matches!(protocol, proto::LCP | proto::IPCP) && (1..=4).contains(&p.code) {
        for o in parse_options(p.data).expect("options") {
            let _ = write!(s, " <{} {}>", o.typ, hex(o.value));
        }
    } else if !p.data.is_empty() {
        let _ = write!(s, " {}", hex(p.data));
    }
    s
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Checks that each of `steps` (the start of a frame description) occurs
/// in `seen`, in this order: the capture holds a whole session.
fn assert_session_steps(name: &str, seen: &[String], steps: &[&str]) {
    let mut rest = seen.iter();
    for step in steps {
        assert!(
            rest.any(|line| line.starts_with(step)),
            "{name}: no {step:?} where expected in:\n{}",
            seen.join("\n")
        );
    }
}

#[test]
fn pap_capture_parses_and_round_trips() {
    let seen = parse_and_round_trip("pppd-pap.pcap");
    println!("{}", seen.join("\n"));
    assert_session_steps(
        "pppd-pap.pcap",
        &seen,
        &[
            "pppd Padi",
            "vbng Pado",
            "pppd Padr",
            "vbng Pads",
            "pppd LCP ConfigureNak",
            "vbng LCP ConfigureRequest",
            "pppd LCP ConfigureAck",
            "pppd PAP AuthReq",
            "vbng PAP AuthAck",
            "vbng IPCP ConfigureAck",
            "vbng LCP EchoRequest",
            "pppd LCP EchoReply",
            "pppd LCP TerminateRequest",
            "vbng LCP TerminateAck",
            "vbng Padt",
        ],
    );
    assert!(seen.iter().any(|l| l.starts_with("pppd LCP EchoRequest")));
}

#[test]
fn chap_capture_parses_and_round_trips() {
    let seen = parse_and_round_trip("pppd-chap.pcap");
    println!("{}", seen.join("\n"));
    assert_session_steps(
        "pppd-chap.pcap",
        &seen,
        &[
            "pppd Padi",
            "vbng Pado",
            "pppd Padr",
            "vbng Pads",
            "pppd LCP ConfigureAck",
            "vbng CHAP Challenge",
            "pppd CHAP Response",
            "vbng CHAP Success",
            "vbng IPCP ConfigureAck",
            "vbng LCP EchoRequest",
            "pppd LCP EchoReply",
            "pppd LCP TerminateRequest",
            "vbng LCP TerminateAck",
            "vbng Padt",
        ],
    );
    assert!(seen.iter().any(|l| l.starts_with("pppd LCP EchoRequest")));
}

// ---------------------------------------------------------------------------
// Replaying pppd's side into the server-side state machines.

/// A frame the server sent: EtherType and PPPoE bytes (header and LENGTH
/// bytes, no padding).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServerFrame {
    ethertype: u16,
    pppoe: Vec<u8>,
}

impl ServerFrame {
    fn describe(&self) -> String {
        let (h, body) = pppoe_wire::parse(&self.pppoe).expect("PPPoE header");
        if self.ethertype == ETHERTYPE_DISCOVERY {
            let tags = pppoe_wire::parse_tags(body).expect("tags");
            format!(
                "{} session={}",
                describe_discovery(h.code, &tags),
                h.session_id
            )
        } else {
            let (protocol, packet) = split_protocol(body);
            describe_ppp(protocol, packet)
        }
    }
}

/// What the replay takes from the server's side of the capture: values
/// vbng-cp chose at random or got from elsewhere (the pool, the AAA layer).
#[derive(Debug)]
struct ServerChoices {
    magic: u32,
    /// The identifier of the first CHAP Challenge.
    chap_id: Option<u8>,
    /// The message in PAP Authenticate-Ack or CHAP Success.
    verdict_message: String,
    /// The address IPCP gave pppd, our own address, and the DNS servers.
    peer: Ipv4Addr,
    gateway: Ipv4Addr,
    dns: [Option<Ipv4Addr>; 2],
}

fn server_choices(frames: &[Frame], client: [u8; 6]) -> ServerChoices {
    let mut magic = None;
    let mut chap_id = None;
    let mut verdict_message = None;
    let mut gateway = None;
    let mut acked_ipcp: Option<Vec<(u8, Vec<u8>)>> = None;
    for f in frames
        .iter()
        .filter(|f| f.src != client && f.ethertype == ETHERTYPE_SESSION)
    {
        let (_, body) = pppoe_wire::parse(&f.payload).expect("PPPoE header");
        let (protocol, packet) = split_protocol(body);
        let p = parse_packet(packet).expect("PPP packet");
        let options = || -> Vec<(u8, Vec<u8>)> {
            parse_options(p.data)
                .expect("options")
                .iter()
                .map(|o| (o.typ, o.value.to_vec()))
                .collect()
        };
        match (protocol, p.code) {
            (proto::LCP, 1) if magic.is_none() => {
                magic = options()
                    .iter()
                    .find(|(t, _)| *t == lcp_opt::MAGIC_NUMBER)
                    .map(|(_, v)| u32::from_be_bytes(v[..].try_into().expect("4 bytes")));
            }
            (proto::CHAP, chap_code::CHALLENGE) if chap_id.is_none() => chap_id = Some(p.id),
            (proto::CHAP, chap_code::SUCCESS) => {
                verdict_message = Some(String::from_utf8_lossy(p.data).into_owned());
            }
            (proto::PAP, pap_code::ACK) => {
                let (len, msg) = p.data.split_first().expect("PAP Msg-Length");
                verdict_message =
                    Some(String::from_utf8_lossy(&msg[..usize::from(*len)]).into_owned());
            }
            (proto::IPCP, 1) => {
                gateway = options()
                    .iter()
                    .find(|(t, _)| *t == ipcp_opt::IP_ADDRESS)
                    .map(|(_, v)| ipv4(v));
            }
            (proto::IPCP, 2) => acked_ipcp = Some(options()),
            _ => {}
        }
    }
    let acked = acked_ipcp.expect("the server acknowledged pppd's IPCP request");
    let find = |typ: u8| acked.iter().find(|(t, _)| *t == typ).map(|(_, v)| ipv4(v));
    ServerChoices {
        magic: magic.expect("the server's LCP request carries a magic number"),
        chap_id,
        verdict_message: verdict_message.expect("an authentication verdict"),
        peer: find(ipcp_opt::IP_ADDRESS).expect("pppd's acknowledged address"),
        gateway: gateway.expect("the server's IPCP request carries its address"),
        dns: [find(ipcp_opt::PRIMARY_DNS), find(ipcp_opt::SECONDARY_DNS)],
    }
}

fn ipv4(v: &[u8]) -> Ipv4Addr {
    Ipv4Addr::from(<[u8; 4]>::try_from(v).expect("an IPv4 address option"))
}

/// vbng-cp's PPP settings at their defaults (`[pppoe]` left out), as in
/// the lab that made the captures.
fn cp_ppp_config() -> PppConfig {
    PppConfig {
        mru: 1492,
        auth: AuthMethod::ChapThenPap,
        echo_interval_ms: 10_000,
        echo_failures: 3,
        ..PppConfig::default()
    }
}

/// vbng-cp's discovery settings at their defaults; the cookie secret is
/// random there and arbitrary here.
fn cp_discovery_config() -> DiscoveryConfig {
    DiscoveryConfig {
        ac_name: "vbng".into(),
        cookie_secret: [0x42; 16],
        ..DiscoveryConfig::default()
    }
}

/// The replay's server: what vbng-cp's PPPoE task does with the state
/// machines, with the slow steps (AAA, address pool) answered at once.
struct Server {
    choices: ServerChoices,
    discovery: DiscoveryServer,
    line: LineKey,
    client: [u8; 6],
    cookie: Option<Vec<u8>>,
    session: Option<(SessionKey, PppSession)>,
    sent: Vec<ServerFrame>,
    authenticated: Vec<(String, Credentials)>,
    up: Option<Ipv4Addr>,
    down: Option<DownReason>,
}

impl Server {
    fn new(choices: ServerChoices, client: [u8; 6]) -> Server {
        Server {
            choices,
            discovery: DiscoveryServer::new(cp_discovery_config()),
            line: LineKey {
                up: 0,
                port: 0,
                svlan: 0,
                cvlan: 0,
            },
            client,
            cookie: None,
            session: None,
            sent: Vec::new(),
            authenticated: Vec::new(),
            up: None,
            down: None,
        }
    }

    /// Runs the PPP timers due by `now_ms` (echo requests, restarts).
    fn timers(&mut self, now_ms: u64) {
        while let Some((_, ppp)) = &mut self.session
            && let Some(due) = ppp.next_deadline().filter(|&d| d <= now_ms)
        {
            let out = ppp.tick(due);
            self.ppp_output(due, out);
        }
    }

    fn discovery_frame(&mut self, now_ms: u64, payload: &[u8]) {
        let (h, body) = pppoe_wire::parse(payload).expect("PPPoE header");
        let request;
        let payload = if h.code == Code::Padr {
            // pppd echoes the captured server's cookie; give it ours, as it
            // would have done talking to this server.
            let mut tags = pppoe_wire::parse_tags(body).expect("PADR tags");
            let ours = self.cookie.clone().expect("a PADO before the PADR");
            for t in &mut tags {
                if let Tag::AcCookie(v) = t {
                    v.clone_from(&ours);
                }
            }
            request = pppoe_wire::emit(h.code, h.session_id, &pppoe_wire::emit_tags(&tags));
            &request[..]
        } else {
            payload
        };
        let out = self
            .discovery
            .handle(now_ms, self.line, self.client, payload);
        assert_eq!(out.dropped, None, "{:?} refused", h.code);
        if let Some(reply) = out.reply {
            let (rh, rbody) = pppoe_wire::parse(&reply).expect("our reply parses");
            if rh.code == Code::Pado {
                self.cookie = pppoe_wire::parse_tags(rbody)
                    .expect("PADO tags")
                    .into_iter()
                    .find_map(|t| match t {
                        Tag::AcCookie(v) => Some(v),
                        _ => None,
                    });
            }
            self.sent.push(ServerFrame {
                ethertype: ETHERTYPE_DISCOVERY,
                pppoe: reply,
            });
        }
        match out.event {
            Some(DiscoveryEvent::Opened { key, .. }) => {
                // vbng-cp's magic and CHAP seed are random: take the
                // captured magic, and a seed whose first identifier is the
                // captured Challenge's (the session counts up from seed[0]).
                let mut seed = [0x5a; 16];
                seed[0] = self.choices.chap_id.unwrap_or(1).wrapping_sub(1);
                let mut ppp = PppSession::new(cp_ppp_config(), self.choices.magic, seed);
                let out = ppp.start(now_ms);
                self.session = Some((key, ppp));
                self.ppp_output(now_ms, out);
            }
            Some(DiscoveryEvent::Closed { .. }) => self.session = None,
            None => {}
        }
    }

    fn session_frame(&mut self, now_ms: u64, payload: &[u8]) {
        let (_, body) = pppoe_wire::parse(payload).expect("PPPoE header");
        let (protocol, packet) = split_protocol(body);
        let (_, ppp) = self.session.as_mut().expect("a PPP frame before PADS");
        let out = ppp.input(now_ms, protocol, packet);
        self.ppp_output(now_ms, out);
    }

    /// Sends a PPP output's frames and acts on its events as vbng-cp does.
    fn ppp_output(&mut self, now_ms: u64, out: Output) {
        let Some((key, _)) = &self.session else {
            return;
        };
        let key = *key;
        for (protocol, packet) in out.frames {
            let mut body = protocol.to_be_bytes().to_vec();
            body.extend_from_slice(&packet);
            self.sent.push(ServerFrame {
                ethertype: ETHERTYPE_SESSION,
                pppoe: pppoe_wire::emit(Code::Session, key.session_id, &body),
            });
        }
        for event in out.events {
            let Some((_, ppp)) = &mut self.session else {
                return;
            };
            let next = match event {
                PppEvent::Authenticate { user, credentials } => {
                    if let Credentials::Chap { id, .. } = &credentials {
                        assert_eq!(Some(*id), self.choices.chap_id, "CHAP identifier");
                    }
                    self.authenticated.push((user, credentials));
                    ppp.auth_result(now_ms, true, &self.choices.verdict_message)
                }
                PppEvent::NeedAddress => {
                    let c = &self.choices;
                    ppp.set_address(now_ms, c.peer, c.gateway, c.dns)
                }
                PppEvent::Up { ipv4 } => {
                    self.up = Some(ipv4);
                    continue;
                }
                PppEvent::Down { reason } => {
                    self.down = Some(reason);
                    let padt = self
                        .discovery
                        .close(&key, PADT_REASON)
                        .expect("discovery holds the session");
                    self.sent.push(ServerFrame {
                        ethertype: ETHERTYPE_DISCOVERY,
                        pppoe: padt,
                    });
                    continue;
                }
            };
            self.ppp_output(now_ms, next);
        }
    }
}

/// Whether our frame says what the captured one said, up to the values
/// that legitimately differ (see the module docs).
fn same_answer(ours: &ServerFrame, captured: &ServerFrame) -> bool {
    if ours.ethertype != captured.ethertype {
        return false;
    }
    let (oh, obody) = pppoe_wire::parse(&ours.pppoe).expect("ours");
    let (ch, cbody) = pppoe_wire::parse(&captured.pppoe).expect("captured");
    if oh.code != ch.code || (oh.session_id == 0) != (ch.session_id == 0) {
        return false;
    }
    if ours.ethertype == ETHERTYPE_DISCOVERY {
        let (ot, ct) = (
            pppoe_wire::parse_tags(obody).expect("ours"),
            pppoe_wire::parse_tags(cbody).expect("captured"),
        );
        return ot.len() == ct.len()
            && ot.iter().zip(&ct).all(|(o, c)| match (o, c) {
                (Tag::AcCookie(o), Tag::AcCookie(c)) => o.len() == c.len(),
                _ => o == c,
            });
    }
    let ((op, opkt), (cp, cpkt)) = (split_protocol(obody), split_protocol(cbody));
    let (o, c) = (
        parse_packet(opkt).expect("ours"),
        parse_packet(cpkt).expect("captured"),
    );
    if op != cp || o.code != c.code || o.id != c.id {
        return false;
    }
    if op == proto::CHAP && o.code == chap_code::CHALLENGE {
        let (ov, cv) = (
            parse_chap_value(o.data).expect("ours"),
            parse_chap_value(c.data).expect("captured"),
        );
        return ov.value.len() == cv.value.len() && ov.name == cv.name;
    }
    o.data == c.data
}

/// Replays a capture; returns the server and the captured server frames.
fn replay(name: &str) -> (Server, Vec<ServerFrame>) {
    let frames = capture(name);
    let client = client_mac(&frames);
    let mut server = Server::new(server_choices(&frames, client), client);
    // Capture time as the monotonic clock, from an arbitrary start.
    let start_us = frames[0].at_us;
    let clock = |f: &Frame| 1_000_000 + (f.at_us - start_us) / 1000;
    let mut captured = Vec::new();
    for f in &frames {
        let now_ms = clock(f);
        let bytes = pppoe_bytes(f).to_vec();
        if f.src != client {
            assert_eq!(f.dst, client, "{name}: a server frame to another host");
            captured.push(ServerFrame {
                ethertype: f.ethertype,
                pppoe: bytes,
            });
            // A server frame that no client frame explains came from a
            // timer. vbng-cp looks at its timers every 100 ms, so they fire
            // up to that late: run ours when the capture shows it did.
            if server.sent.len() < captured.len() {
                server.timers(now_ms);
            }
        } else if f.ethertype == ETHERTYPE_DISCOVERY {
            server.discovery_frame(now_ms, &bytes);
        } else {
            server.session_frame(now_ms, &bytes);
        }
    }
    let ok = server.sent.len() == captured.len()
        && server
            .sent
            .iter()
            .zip(&captured)
            .all(|(o, c)| same_answer(o, c));
    if !ok {
        let mut table = String::new();
        for n in 0..server.sent.len().max(captured.len()) {
            let o = server.sent.get(n).map_or("-".into(), ServerFrame::describe);
            let c = captured.get(n).map_or("-".into(), ServerFrame::describe);
            let mark = match (server.sent.get(n), captured.get(n)) {
                (Some(o), Some(c)) if same_answer(o, c) => ' ',
                _ => '*',
            };
            let _ = writeln!(table, "{mark} ours:     {o}\n  captured: {c}");
        }
        panic!("{name}: the replayed server's answers differ from the capture's:\n{table}");
    }
    (server, captured)
}

#[test]
fn pap_replay_gives_the_captured_answers() {
    let (server, _) = replay("pppd-pap.pcap");
    let password = PASSWORD.to_vec();
    assert_eq!(
        server.authenticated,
        [(USER.to_owned(), Credentials::Pap { password })]
    );
    assert_eq!(server.up, Some(server.choices.peer));
    assert_eq!(server.down, Some(DownReason::PeerTerminated));
}

#[test]
fn chap_replay_gives_the_captured_answers() {
    let (server, _) = replay("pppd-chap.pcap");
    assert!(
        matches!(
            &server.authenticated[..],
            [(user, Credentials::Chap { .. })] if user == USER
        ),
        "{:?}",
        server.authenticated
    );
    assert_eq!(server.up, Some(server.choices.peer));
    assert_eq!(server.down, Some(DownReason::PeerTerminated));
}
