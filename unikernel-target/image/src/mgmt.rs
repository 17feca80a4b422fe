//! The management interface: the third virtio-net device, with its own IPv4 address on a
//! smoltcp stack. The control plane programs the instance over PFCP (UDP 8805) there, with
//! the same agent as the hosted vbng-up (`vbng_dataplane::pfcp_agent`), and control frames
//! (ARP, DHCP, PPPoE discovery) travel to and from it as G-PDUs (UDP 2152,
//! `vbng_dataplane::cpr`).

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::udp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint};
use vbng_cups::pfcp::{NodeId, RecoveryTimeStamp};
use vbng_dataplane::acl::AclSet;
use vbng_dataplane::cpr;
use vbng_dataplane::packet::{Frame, PortId};
use vbng_dataplane::pfcp_agent::{AgentConfig, PfcpAgent, SessionBackend};
use vbng_dataplane::pipeline::{Pipeline, SessionCommand};
use vbng_dataplane::port::Port;
use vbng_dataplane::session::{SessionEntry, SessionId, UsageCounters};

use crate::virtio::VirtioNet;

const PFCP_PORT: u16 = 8805;
const GTPU_PORT: u16 = 2152;
/// How often the agent's heartbeat timers run.
const AGENT_POLL_MS: u64 = 200;

/// The device as smoltcp sees it: one frame at a time through the virtio port.
struct Phy {
    port: VirtioNet,
    rx: Frame,
}

struct Rx<'a>(&'a Frame);

struct Tx<'a>(&'a mut VirtioNet);

impl RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0.data())
    }
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = [0u8; 1536];
        let len = len.min(buf.len());
        let r = f(&mut buf[..len]);
        let _ = self.0.send(&buf[..len]);
        r
    }
}

impl Device for Phy {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        let Phy { port, rx } = self;
        if port.recv_burst(core::slice::from_mut(rx)) == 1 {
            Some((Rx(&*rx), Tx(port)))
        } else {
            None
        }
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.port))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps.max_burst_size = Some(1);
        caps
    }
}

/// Session changes from the agent go straight into the pipeline: the loop and the agent
/// share one CPU, so there is no queue between them.
struct Backend<'a> {
    pipeline: &'a mut Pipeline,
    now_ns: u64,
}

impl SessionBackend for Backend<'_> {
    fn upsert(&mut self, entry: SessionEntry) -> bool {
        self.pipeline.try_upsert(entry).is_ok()
    }

    fn remove(&mut self, id: SessionId) -> Option<UsageCounters> {
        self.pipeline
            .apply_at(self.now_ns, SessionCommand::Remove(id))
    }

    fn query(&mut self, id: SessionId) -> Option<UsageCounters> {
        self.pipeline.session_counters(id)
    }

    fn set_acls(&mut self, acls: Arc<AclSet>) -> bool {
        self.pipeline.set_acls(acls);
        true
    }
}

/// Management interface settings.
#[derive(Debug, Clone, Copy)]
pub struct MgmtConfig {
    /// The instance's address and prefix length.
    pub ip: (Ipv4Addr, u8),
    /// Where control frames go (the CP's GTP-U endpoint); None keeps them local.
    pub cp_gtpu: Option<SocketAddrV4>,
    /// Wall clock at boot, ms since 1970 (the Recovery Time Stamp).
    pub unix_ms: u64,
}

/// The management interface and the PFCP agent.
pub struct Mgmt {
    phy: Phy,
    iface: Interface,
    sockets: SocketSet<'static>,
    pfcp: SocketHandle,
    gtpu: SocketHandle,
    agent: PfcpAgent,
    cp_gtpu: Option<SocketAddrV4>,
    next_agent_poll_ms: u64,
    /// smoltcp has sends queued or timers due.
    dirty: bool,
    gpdu: Vec<u8>,
    /// Control frames sent to the CP.
    pub redirected: u64,
    /// Control frames from the CP sent on the access port.
    pub injected: u64,
}

impl core::fmt::Debug for Mgmt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Mgmt({:?})", self.phy.port)
    }
}

fn udp_socket(port: u16) -> udp::Socket<'static> {
    let buffer =
        || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 32], vec![0; 64 * 1024]);
    let mut s = udp::Socket::new(buffer(), buffer());
    // Binding a fresh socket to a non-zero port cannot fail.
    let _ = s.bind(port);
    s
}

fn endpoint(a: SocketAddrV4) -> IpEndpoint {
    IpEndpoint::new(IpAddress::Ipv4(*a.ip()), a.port())
}

impl Mgmt {
    /// Brings the interface up on `port` (its MAC from the device).
    pub fn new(port: VirtioNet, cfg: MgmtConfig, now_ns: u64) -> Mgmt {
        let mut phy = Phy {
            port,
            rx: Frame::new(),
        };
        let mac = phy.port.mac().0;
        let now = Instant::from_millis((now_ns / 1_000_000) as i64);
        let mut iface = Interface::new(
            IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(mac))),
            &mut phy,
            now,
        );
        iface.update_ip_addrs(|addrs| {
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(cfg.ip.0), cfg.ip.1));
        });
        let mut sockets = SocketSet::new(Vec::new());
        let pfcp = sockets.add(udp_socket(PFCP_PORT));
        let gtpu = sockets.add(udp_socket(GTPU_PORT));
        let agent = PfcpAgent::new(AgentConfig {
            node_id: NodeId::Ipv4(cfg.ip.0),
            pfcp_ipv4: cfg.ip.0,
            gtpu_ipv4: cfg.ip.0,
            access_ports: 1,
            recovery_time_stamp: RecoveryTimeStamp::from_unix_secs(cfg.unix_ms / 1000),
            heartbeat_interval_ms: 10_000,
            heartbeat_misses: 3,
        });
        Mgmt {
            phy,
            iface,
            sockets,
            pfcp,
            gtpu,
            agent,
            cp_gtpu: cfg.cp_gtpu,
            next_agent_poll_ms: 0,
            dirty: true,
            gpdu: vec![0; 2048 + 16],
            redirected: 0,
            injected: 0,
        }
    }

    /// True when control frames go to a control plane.
    pub fn redirects(&self) -> bool {
        self.cp_gtpu.is_some()
    }

    /// The device, for interrupt arming.
    pub fn port_mut(&mut self) -> &mut VirtioNet {
        &mut self.phy.port
    }

    /// Sends a control frame from access port `port` to the CP as a G-PDU.
    pub fn redirect(&mut self, port: PortId, frame: &[u8]) {
        let Some(cp) = self.cp_gtpu else { return };
        let Some(len) = cpr::encode_gpdu(port, frame, &mut self.gpdu) else {
            return;
        };
        let socket = self.sockets.get_mut::<udp::Socket>(self.gtpu);
        if socket.send_slice(&self.gpdu[..len], endpoint(cp)).is_ok() {
            self.redirected += 1;
            self.dirty = true;
        }
    }

    /// Runs the stack and the agent at `now_ns`: PFCP requests are answered (their
    /// session changes applied to `pipeline`), frames from the CP go out on `access`.
    /// Returns the datagrams handled.
    pub fn poll(&mut self, now_ns: u64, pipeline: &mut Pipeline, access: &mut VirtioNet) -> usize {
        let now_ms = now_ns / 1_000_000;
        let due = now_ms >= self.next_agent_poll_ms;
        if !self.dirty && !due && !self.phy.port.has_rx() {
            return 0;
        }
        let now = Instant::from_millis(now_ms as i64);
        self.iface.poll(now, &mut self.phy, &mut self.sockets);
        let mut work = 0;
        let mut replies: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
        let socket = self.sockets.get_mut::<udp::Socket>(self.pfcp);
        while let Ok((data, meta)) = socket.recv() {
            let IpAddress::Ipv4(ip) = meta.endpoint.addr;
            let from = SocketAddr::V4(SocketAddrV4::new(ip, meta.endpoint.port));
            let mut backend = Backend { pipeline, now_ns };
            replies.extend(self.agent.handle(now_ms, from, data, &mut backend));
            work += 1;
        }
        if due {
            self.next_agent_poll_ms = now_ms + AGENT_POLL_MS;
            replies.extend(self.agent.poll(now_ms));
        }
        for (to, bytes) in replies {
            if let SocketAddr::V4(to) = to {
                let _ = socket.send_slice(&bytes, endpoint(to));
            }
        }
        for event in self.agent.drain_events() {
            crate::println!("vbng-uk: pfcp: {event}");
        }
        let gtpu = self.sockets.get_mut::<udp::Socket>(self.gtpu);
        while let Ok((data, meta)) = gtpu.recv() {
            let from_cp = self
                .cp_gtpu
                .is_some_and(|cp| meta.endpoint.addr == IpAddress::Ipv4(*cp.ip()));
            if from_cp
                && let Ok((_, frame)) = cpr::decode_gpdu(data, 1)
                && access.send(frame).is_ok()
            {
                self.injected += 1;
            }
            work += 1;
        }
        self.iface.poll(now, &mut self.phy, &mut self.sockets);
        self.dirty = self
            .iface
            .poll_delay(now, &self.sockets)
            .is_some_and(|d| d.total_millis() == 0);
        self.phy.port.flush();
        work
    }

    /// Milliseconds until the stack or the agent needs a pass.
    pub fn next_due_ms(&mut self, now_ns: u64) -> u64 {
        let now_ms = now_ns / 1_000_000;
        let stack = self
            .iface
            .poll_delay(Instant::from_millis(now_ms as i64), &self.sockets)
            .map_or(u64::MAX, |d| d.total_millis());
        stack.min(self.next_agent_poll_ms.saturating_sub(now_ms))
    }
}
