//! [`Pipeline`]: the per-worker state and the burst loop.

use core::net::Ipv4Addr;

use super::{BURST, Counters, DropReason, PipelineConfig, SessionCommand, TokenBucket, Verdict};
use crate::packet::{Frame, MAX_PORTS, PortId};
use crate::session::{
    AccessKey, SessionEntry, SessionError, SessionId, SessionTable, Slot, UsageCounters,
};
use crate::wire::arp::{self, ArpOperation, ArpRepr};
use crate::wire::frame::{L2Header, write_arp};
use crate::wire::ipv4::{self, IpProtocol};
use crate::wire::{EtherType, EthernetAddress, ethernet};

/// DHCP server port (RFC 2131): subscriber frames to it go to the control plane.
const DHCP_SERVER_PORT: u16 = 67;
const NO_SLOT: Slot = Slot::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Verdict already decided in the classify stage.
    Done,
    /// Access-port IPv4 frame: look up by access key.
    Upstream,
    /// Core-port IPv4 frame: look up by destination address.
    Downstream,
}

/// Per-frame scratch state carried between the stages of one burst.
#[derive(Debug, Clone, Copy)]
struct Meta {
    stage: Stage,
    /// Offset of the IPv4 header in the frame.
    l3: usize,
    /// Packed access key (upstream) or destination address (downstream).
    key: u128,
    hash: u64,
    slot: Slot,
}

const META_INIT: Meta = Meta {
    stage: Stage::Done,
    l3: 0,
    key: 0,
    hash: 0,
    slot: NO_SLOT,
};

/// One worker's pipeline: configuration, session table, next-hop state, counters.
/// Single-threaded; the host applies [`SessionCommand`]s between bursts.
#[derive(Debug)]
pub struct Pipeline {
    cfg: PipelineConfig,
    access_mask: u32,
    sessions: SessionTable,
    counters: Counters,
    next_hop_mac: Option<EthernetAddress>,
    last_arp_ns: Option<u64>,
    redirect: TokenBucket,
}

impl Pipeline {
    /// A pipeline with an empty session table hashed with `hash_seed`.
    pub fn new(cfg: PipelineConfig, hash_seed: u64) -> Self {
        let access_mask = cfg
            .access_ports
            .iter()
            .filter(|p| usize::from(**p) < MAX_PORTS)
            .fold(0u32, |m, p| m | 1 << p);
        Pipeline {
            redirect: TokenBucket::new(cfg.redirect_pps),
            cfg,
            access_mask,
            sessions: SessionTable::new(hash_seed),
            counters: Counters::default(),
            next_hop_mac: None,
            last_arp_ns: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PipelineConfig {
        &self.cfg
    }

    /// The session table (read-only; change it with [`Pipeline::apply`]).
    pub fn sessions(&self) -> &SessionTable {
        &self.sessions
    }

    /// The next hop's MAC, once learned.
    pub fn next_hop_mac(&self) -> Option<EthernetAddress> {
        self.next_hop_mac
    }

    /// Sets (or forgets) the next hop's MAC, e.g. from static configuration.
    pub fn set_next_hop_mac(&mut self, mac: Option<EthernetAddress>) {
        self.next_hop_mac = mac;
    }

    /// True if `port` is an access port.
    #[inline]
    pub fn is_access_port(&self, port: PortId) -> bool {
        usize::from(port) < MAX_PORTS && self.access_mask & (1 << port) != 0
    }

    /// Counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Counters, writable (the host counts tx and injected frames).
    pub fn counters_mut(&mut self) -> &mut Counters {
        &mut self.counters
    }

    /// Number of sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Usage counters of session `id`.
    pub fn session_counters(&self, id: SessionId) -> Option<UsageCounters> {
        self.sessions.get(id).map(|e| e.counters)
    }

    /// Applies a session command. `Remove` returns the session's final counters (None if it
    /// did not exist); `Upsert` returns None (a rejected upsert is counted in
    /// [`Counters::session_rejects`]; use [`Pipeline::try_upsert`] to see the error).
    pub fn apply(&mut self, cmd: SessionCommand) -> Option<UsageCounters> {
        match cmd {
            SessionCommand::Upsert(e) => {
                // Counted inside try_upsert.
                let _ = self.try_upsert(e);
                None
            }
            SessionCommand::Remove(id) => self.sessions.remove(id).map(|e| e.counters),
        }
    }

    /// Inserts or updates a session, returning why it was refused.
    pub fn try_upsert(&mut self, entry: SessionEntry) -> Result<(), SessionError> {
        match self.sessions.upsert(entry) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.counters.session_rejects += 1;
                Err(e)
            }
        }
    }

    /// Processes `frames[..n]` in place, writing `verdicts[..n]`, where
    /// `n = min(frames.len(), verdicts.len())`. Frames with `Forward` were rewritten and are
    /// ready to send; `ToControlPlane` frames are unchanged. Never panics, never allocates.
    pub fn process_burst(&mut self, now_ns: u64, frames: &mut [Frame], verdicts: &mut [Verdict]) {
        let n = frames.len().min(verdicts.len());
        let mut start = 0;
        while start < n {
            let end = (start + BURST).min(n);
            self.process_chunk(now_ns, &mut frames[start..end], &mut verdicts[start..end]);
            start = end;
        }
    }

    fn process_chunk(&mut self, now_ns: u64, frames: &mut [Frame], verdicts: &mut [Verdict]) {
        let n = frames.len().min(verdicts.len()).min(BURST);
        let mut meta = [META_INIT; BURST];
        let meta = &mut meta[..n];
        // Stage 1: parse and classify; decide everything that needs no table lookup.
        for ((m, f), v) in meta
            .iter_mut()
            .zip(frames.iter_mut())
            .zip(verdicts.iter_mut())
        {
            *m = self.classify(now_ns, f, v);
        }
        // Stage 2: hash all keys of the burst.
        for m in meta.iter_mut() {
            m.hash = match m.stage {
                Stage::Upstream => self.sessions.hash_access(m.key),
                Stage::Downstream => self.sessions.hash_ipv4(m.key as u32),
                Stage::Done => 0,
            };
        }
        // Stage 3: probe.
        for m in meta.iter_mut() {
            m.slot = match m.stage {
                Stage::Upstream => self.sessions.find_access(m.hash, m.key),
                Stage::Downstream => self.sessions.find_ipv4(m.hash, m.key as u32),
                Stage::Done => None,
            }
            .unwrap_or(NO_SLOT);
        }
        // Stage 4: check and rewrite.
        for ((m, f), v) in meta.iter().zip(frames.iter_mut()).zip(verdicts.iter_mut()) {
            match m.stage {
                Stage::Done => {}
                Stage::Upstream => *v = self.upstream(now_ns, f, m),
                Stage::Downstream => *v = self.downstream(f, m),
            }
        }
    }

    #[inline]
    fn drop(&mut self, reason: DropReason) -> Verdict {
        self.counters.count_drop(reason);
        Verdict::Drop(reason)
    }

    #[inline]
    fn redirect(&mut self, now_ns: u64) -> Verdict {
        if self.redirect.take(now_ns) {
            self.counters.redirected += 1;
            Verdict::ToControlPlane
        } else {
            self.drop(DropReason::RedirectRateLimited)
        }
    }

    fn classify(&mut self, now_ns: u64, frame: &mut Frame, out: &mut Verdict) -> Meta {
        let port = frame.port;
        self.counters.count_rx(port, frame.len());
        let mut m = META_INIT;
        let Ok((l2, l3)) = L2Header::parse(frame.data()) else {
            *out = self.drop(DropReason::Malformed);
            return m;
        };
        if port == self.cfg.core_port {
            match l2.ethertype {
                EtherType::Arp => *out = self.core_arp(frame, &l2, l3),
                EtherType::Ipv4 => {
                    if l2.dst != self.cfg.core_mac {
                        *out = self.drop(DropReason::NotForUs);
                        return m;
                    }
                    match valid_ipv4(frame.data(), l3) {
                        Some(h) => {
                            m.stage = Stage::Downstream;
                            m.key = u128::from(h.dst().to_bits());
                            m.l3 = l3;
                        }
                        None => *out = self.drop(DropReason::Malformed),
                    }
                }
                _ => *out = self.drop(DropReason::UnsupportedEtherType),
            }
        } else if self.is_access_port(port) {
            match l2.ethertype {
                EtherType::Arp | EtherType::PppoeDiscovery | EtherType::PppoeSession => {
                    *out = self.redirect(now_ns);
                }
                EtherType::Ipv4 => match valid_ipv4(frame.data(), l3) {
                    Some(h) if is_dhcp_to_server(h, &frame.data()[l3..]) => {
                        *out = self.redirect(now_ns);
                    }
                    Some(_) => {
                        m.stage = Stage::Upstream;
                        m.key = AccessKey::from_l2(port, &l2).pack();
                        m.l3 = l3;
                    }
                    None => *out = self.drop(DropReason::Malformed),
                },
                _ => *out = self.drop(DropReason::UnsupportedEtherType),
            }
        } else {
            *out = self.drop(DropReason::NotForUs);
        }
        m
    }

    fn upstream(&mut self, now_ns: u64, frame: &mut Frame, m: &Meta) -> Verdict {
        let Some(entry) = self.sessions.entry(m.slot) else {
            // Unknown subscriber: the control plane decides (DHCP, PPPoE, or nothing).
            return self.redirect(now_ns);
        };
        let (sess_ip, gate_open) = (entry.ipv4, entry.gate_open);
        let l3 = m.l3;
        let data = frame.data();
        if data.get(..6) != Some(&self.cfg.gateway_mac.0[..]) {
            return self.drop(DropReason::NotForUs);
        }
        // Validated (checksum included) in the classify stage.
        let Some(h) = ipv4_at(data, l3) else {
            return self.drop(DropReason::Malformed);
        };
        if h.src() != sess_ip {
            return self.drop(DropReason::AntiSpoof);
        }
        if !gate_open {
            return self.drop(DropReason::GateClosed);
        }
        if h.ttl() <= 1 {
            return self.drop(DropReason::TtlExceeded);
        }
        let Some(nh_mac) = self.next_hop_mac else {
            return self.drop(DropReason::NextHopUnresolved);
        };
        let total = usize::from(h.total_len());
        // Drop Ethernet padding, decrement TTL, then replace the tagged header by an
        // untagged one ending right before the IPv4 header.
        frame.truncate(l3 + total);
        if let Some(Ok(h)) = frame.data_mut().get_mut(l3..).map(ipv4::Header::parse_mut) {
            h.decrement_ttl();
        }
        frame.pull_front(l3 - ethernet::HEADER_LEN);
        let Ok(eth) = ethernet::Header::parse_mut(frame.data_mut()) else {
            return self.drop(DropReason::Malformed);
        };
        eth.set_dst(nh_mac);
        eth.set_src(self.cfg.core_mac);
        eth.set_ethertype(EtherType::Ipv4);
        if let Some(e) = self.sessions.entry_mut(m.slot) {
            e.counters.ul_packets += 1;
            e.counters.ul_bytes += total as u64;
        }
        self.counters.ul_forwarded += 1;
        Verdict::Forward(self.cfg.core_port)
    }

    fn downstream(&mut self, frame: &mut Frame, m: &Meta) -> Verdict {
        let Some(entry) = self.sessions.entry(m.slot) else {
            return self.drop(DropReason::NoSession);
        };
        let (access, gate_open) = (entry.access, entry.gate_open);
        if !gate_open {
            return self.drop(DropReason::GateClosed);
        }
        let l3 = m.l3;
        let Some(h) = ipv4_at(frame.data(), l3) else {
            return self.drop(DropReason::Malformed);
        };
        if h.ttl() <= 1 {
            return self.drop(DropReason::TtlExceeded);
        }
        let total = usize::from(h.total_len());
        frame.truncate(l3 + total);
        if let Some(Ok(h)) = frame.data_mut().get_mut(l3..).map(ipv4::Header::parse_mut) {
            h.decrement_ttl();
        }
        let (svlan, cvlan) = access.tags();
        let l2 = L2Header {
            dst: access.mac,
            src: self.cfg.gateway_mac,
            svlan,
            cvlan,
            ethertype: EtherType::Ipv4,
        };
        let new_len = l2.buffer_len();
        if new_len > l3 {
            if frame.push_front(new_len - l3).is_none() {
                return self.drop(DropReason::Malformed);
            }
        } else {
            frame.pull_front(l3 - new_len);
        }
        if frame.len() < new_len {
            return self.drop(DropReason::Malformed);
        }
        l2.emit(frame.data_mut());
        if let Some(e) = self.sessions.entry_mut(m.slot) {
            e.counters.dl_packets += 1;
            e.counters.dl_bytes += total as u64;
        }
        self.counters.dl_forwarded += 1;
        Verdict::Forward(access.port)
    }

    /// ARP on the core port: answer for the core address, learn the next hop.
    fn core_arp(&mut self, frame: &mut Frame, l2: &L2Header, l3: usize) -> Verdict {
        let core_mac = self.cfg.core_mac;
        let core_ip = self.cfg.core_ipv4;
        let Some(Ok(h)) = frame.data_mut().get_mut(l3..).map(arp::Header::parse_mut) else {
            return self.drop(DropReason::Malformed);
        };
        let (sender_ip, sender_mac) = (h.sender_ip(), h.sender_mac());
        if sender_ip == self.cfg.next_hop
            && sender_mac.is_unicast()
            && sender_mac != EthernetAddress::ZERO
            && self.next_hop_mac != Some(sender_mac)
        {
            self.next_hop_mac = Some(sender_mac);
            self.counters.arp_learned += 1;
        }
        match h.operation() {
            ArpOperation::Request if h.target_ip() == core_ip => {
                h.make_reply(core_mac, core_ip);
                if let Ok(eth) = ethernet::Header::parse_mut(frame.data_mut()) {
                    eth.set_dst(l2.src);
                    eth.set_src(core_mac);
                }
                self.counters.arp_replies += 1;
                Verdict::Forward(self.cfg.core_port)
            }
            ArpOperation::Reply if sender_ip == self.cfg.next_hop => {
                self.drop(DropReason::Consumed)
            }
            _ => self.drop(DropReason::NotForUs),
        }
    }

    /// Frames the pipeline originates: an ARP request for the next hop on the core port,
    /// while it is unresolved, at most once per [`PipelineConfig::arp_retry_ns`].
    pub fn drain_generated(&mut self, now_ns: u64, out: &mut dyn FnMut(PortId, &[u8])) {
        if self.next_hop_mac.is_some() || self.cfg.next_hop == Ipv4Addr::UNSPECIFIED {
            return;
        }
        if let Some(last) = self.last_arp_ns
            && now_ns >= last
            && now_ns - last < self.cfg.arp_retry_ns
        {
            return;
        }
        let l2 = L2Header {
            dst: EthernetAddress::BROADCAST,
            src: self.cfg.core_mac,
            svlan: None,
            cvlan: None,
            ethertype: EtherType::Arp,
        };
        let repr = ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: self.cfg.core_mac,
            source_protocol_addr: self.cfg.core_ipv4,
            target_hardware_addr: EthernetAddress::ZERO,
            target_protocol_addr: self.cfg.next_hop,
        };
        let mut buf = [0u8; 64];
        if let Ok(n) = write_arp(&mut buf, &l2, &repr) {
            self.last_arp_ns = Some(now_ns);
            self.counters.arp_requests += 1;
            out(self.cfg.core_port, &buf[..n]);
        }
    }
}

/// The IPv4 header at `data[l3..]` if it parses and its checksum verifies.
#[inline]
fn valid_ipv4(data: &[u8], l3: usize) -> Option<&ipv4::Header> {
    let ip = data.get(l3..)?;
    let h = ipv4::Header::parse(ip).ok()?;
    ipv4::verify_checksum(ip).then_some(h)
}

/// The IPv4 header at `data[l3..]` if it parses (no checksum check).
#[inline]
fn ipv4_at(data: &[u8], l3: usize) -> Option<&ipv4::Header> {
    ipv4::Header::parse(data.get(l3..)?).ok()
}

/// True for a first-fragment UDP datagram to port 67.
#[inline]
fn is_dhcp_to_server(h: &ipv4::Header, ip: &[u8]) -> bool {
    if h.protocol() != IpProtocol::Udp || h.frag_offset() != 0 {
        return false;
    }
    let hl = h.header_len();
    matches!(ip.get(hl + 2..hl + 4), Some(p) if u16::from_be_bytes([p[0], p[1]]) == DHCP_SERVER_PORT)
}
