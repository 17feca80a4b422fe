//! One customer's user plane: the `vbng-dataplane` pipeline between the access and core
//! virtio-net ports, built from the day-0 configuration, and its poll loop.

use alloc::vec;
use alloc::vec::Vec;

use vbng_dataplane::acl::NO_ACL;
use vbng_dataplane::nat::{Nat, NatConfig};
use vbng_dataplane::packet::{Frame, PortId};
use vbng_dataplane::pipeline::{BURST, Pipeline, PipelineConfig, SchedulerConfig, Verdict};
use vbng_dataplane::port::Port;
use vbng_dataplane::session::{AccessKey, SessionEntry, SessionIpv6, SessionQos, UsageCounters};
use vbng_dataplane::wire::arp::{ArpOperation, ArpRepr};
use vbng_dataplane::wire::frame::{L2Header, build_arp};
use vbng_dataplane::wire::{EtherType, EthernetAddress};

use crate::mgmt::Mgmt;
use crate::virtio::VirtioNet;
use vbng_day0::Config;

/// The access port's pipeline id.
pub const ACCESS: PortId = 0;
/// The core port's pipeline id.
pub const CORE: PortId = 1;
/// Session ids of the day-0 sessions start here.
const DAY0_SESSION_IDS: u64 = 1 << 48;

/// Why the instance could not be built.
#[derive(Debug)]
pub enum BuildError {
    /// The session at this position of the command line was refused (duplicate address
    /// or attachment).
    Session(usize),
    /// The NAT configuration was refused.
    Nat,
}

/// The pipeline and its two ports.
pub struct Instance {
    /// The pipeline.
    pub pipeline: Pipeline,
    /// Access (0) and core (1) ports.
    pub ports: [VirtioNet; 2],
    /// The management interface (PFCP, control-packet redirect), if the instance has one.
    pub mgmt: Option<Mgmt>,
    frames: Vec<Frame>,
    verdicts: Vec<Verdict>,
    gateway: EthernetAddress,
    unix_base_ns: u64,
    /// Frames forwarded (both directions).
    pub forwarded: u64,
    /// Access-side ARP requests answered.
    pub arp_replies: u64,
}

impl core::fmt::Display for BuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BuildError::Session(i) => write!(
                f,
                "session {} of the command line: its address or attachment is taken",
                i + 1
            ),
            BuildError::Nat => f.write_str("nat_pool: the NAT configuration was refused"),
        }
    }
}

impl core::fmt::Debug for Instance {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Instance({} sessions)", self.pipeline.session_count())
    }
}

impl Instance {
    /// Builds the pipeline for `cfg` over `access` and `core`, programmed at run time
    /// through `mgmt` if given.
    pub fn new(
        cfg: &Config,
        access: VirtioNet,
        core: VirtioNet,
        mgmt: Option<Mgmt>,
        seed: u64,
    ) -> Result<Instance, BuildError> {
        let pcfg = PipelineConfig {
            access_ports: vec![ACCESS],
            core_port: CORE,
            core_mac: core.mac(),
            core_ipv4: cfg.core_ip.0,
            core_prefix_len: cfg.core_ip.1,
            next_hop: cfg.next_hop,
            gateway_mac: cfg.gateway_mac,
            // No control plane yet: control frames are answered here (ARP) or dropped.
            redirect_pps: 1000,
            arp_retry_ns: 1_000_000_000,
        };
        // The scheduler shapes and polices; sessions programmed later over PFCP may bring
        // rates too.
        let shaped = mgmt.is_some()
            || cfg
                .sessions
                .iter()
                .any(|s| s.dl_bps.is_some() || s.ul_bps.is_some());
        let mut pipeline = if shaped {
            // A customer's handful of sessions: a small frame pool (128 frames, 280 KB).
            let qos = SchedulerConfig {
                max_subscribers: 64,
                max_packets: 128,
                ..SchedulerConfig::default()
            };
            Pipeline::with_qos(pcfg, seed, qos)
        } else {
            Pipeline::new(pcfg, seed)
        };
        if !cfg.nat_pool.is_empty() {
            let nat_cfg = NatConfig {
                pool: cfg.nat_pool.clone(),
                block_size: cfg.nat_block,
                blocks_per_subscriber: cfg.nat_blocks,
                max_mappings: 4096,
                max_subscribers: 64,
                log_queue_len: 256,
                fragment_slots: 64,
                ..NatConfig::default()
            };
            let nat = Nat::new(&nat_cfg, seed ^ 0x9e37_79b9).map_err(|_| BuildError::Nat)?;
            pipeline.set_nat(nat, cfg.nat_inside.clone());
        }
        for (i, s) in cfg.sessions.iter().enumerate() {
            let pppoe = s.pppoe != 0;
            let entry = SessionEntry {
                // Far from the PFCP agent's ids, which count up from 1.
                id: DAY0_SESSION_IDS + i as u64,
                access: AccessKey {
                    port: ACCESS,
                    svlan: s.svlan,
                    cvlan: s.cvlan,
                    mac: s.mac,
                    pppoe_session: s.pppoe,
                },
                ipv4: s.ipv4,
                gate_open: true,
                qos: SessionQos {
                    dl_rate_bps: s.dl_bps,
                    ul_rate_bps: s.ul_bps,
                },
                mtu: if s.mtu != 0 {
                    s.mtu
                } else if pppoe {
                    1492
                } else {
                    0
                },
                mss_clamp: if pppoe { 1452 } else { 0 },
                acl: NO_ACL,
                counters: UsageCounters::default(),
                ipv6: SessionIpv6::NONE,
            };
            pipeline
                .try_upsert(entry)
                .map_err(|_| BuildError::Session(i))?;
        }
        Ok(Instance {
            pipeline,
            ports: [access, core],
            mgmt,
            frames: (0..BURST).map(|_| Frame::new()).collect(),
            verdicts: vec![Verdict::Drop(vbng_dataplane::pipeline::DropReason::Malformed); BURST],
            gateway: cfg.gateway_mac,
            unix_base_ns: cfg.unix_ms.saturating_mul(1_000_000),
            forwarded: 0,
            arp_replies: 0,
        })
    }

    /// One pass of the poll loop at `now_ns`: receive a burst on each port, run it through
    /// the pipeline, transmit; then the pipeline's own frames (ARP toward the next hop),
    /// the shaper's releases and the NAT's port-block log. Returns the frames handled.
    pub fn poll(&mut self, now_ns: u64) -> usize {
        let mut work = 0;
        for p in 0..self.ports.len() {
            let n = self.ports[p].recv_burst(&mut self.frames);
            if n == 0 {
                continue;
            }
            work += n;
            let (frames, verdicts) = (&mut self.frames[..n], &mut self.verdicts[..n]);
            self.pipeline.process_burst(now_ns, frames, verdicts);
            for (frame, verdict) in frames.iter().zip(verdicts.iter()) {
                match *verdict {
                    Verdict::Forward(out) => {
                        if let Some(port) = self.ports.get_mut(usize::from(out))
                            && port.send(frame.data()).is_ok()
                        {
                            self.forwarded += 1;
                        }
                    }
                    Verdict::ToControlPlane => match self.mgmt.as_mut() {
                        Some(m) if m.redirects() => m.redirect(frame.port, frame.data()),
                        _ => {
                            if let Some(reply) =
                                answer_access_arp(&self.pipeline, self.gateway, frame)
                            {
                                let _ = self.ports[usize::from(ACCESS)].send(&reply);
                                self.arp_replies += 1;
                            }
                        }
                    },
                    // One instance holds the whole NAT pool: never handed to another.
                    Verdict::Queued | Verdict::Drop(_) | Verdict::Handoff(_) => {}
                }
            }
        }
        if let Some(m) = self.mgmt.as_mut() {
            work += m.poll(
                now_ns,
                &mut self.pipeline,
                &mut self.ports[usize::from(ACCESS)],
            );
        }
        let ports = &mut self.ports;
        self.pipeline.drain_generated(now_ns, &mut |port, data| {
            if let Some(p) = ports.get_mut(usize::from(port)) {
                let _ = p.send(data);
            }
        });
        let mut shaped = 0u64;
        work += self
            .pipeline
            .drain_shaped(now_ns, BURST, &mut |port, data| {
                let sent = ports
                    .get_mut(usize::from(port))
                    .is_some_and(|p| p.send(data).is_ok());
                shaped += u64::from(sent);
                sent
            });
        self.forwarded += shaped;
        let base = self.unix_base_ns;
        if let Some(nat) = self.pipeline.nat_mut() {
            nat.drain_events(|e| {
                use core::fmt::Write as _;
                let mut out = crate::serial::Serial;
                let _ = out.write_str("nat-log ");
                let _ = e.write_json(base, &mut out);
                let _ = out.write_str("\n");
            });
        }
        for port in self.ports.iter_mut() {
            port.flush();
        }
        work
    }
}

impl Instance {
    /// Before halting: asks both devices for an interrupt on the next received frame.
    /// False if frames are already waiting (do not halt then).
    pub fn arm_interrupts(&mut self) -> bool {
        let mut waiting = false;
        for port in self.ports.iter_mut() {
            waiting |= port.arm_interrupts(true);
        }
        if let Some(m) = self.mgmt.as_mut() {
            waiting |= m.port_mut().arm_interrupts(true);
        }
        !waiting
    }

    /// After halting: back to polling without interrupts, and acknowledge what the
    /// devices raised (an edge-triggered pin left raised would never wake us again).
    pub fn disarm_interrupts(&mut self) {
        for port in self.ports.iter_mut() {
            port.arm_interrupts(false);
            port.ack_interrupt();
        }
        if let Some(m) = self.mgmt.as_mut() {
            m.port_mut().arm_interrupts(false);
            m.port_mut().ack_interrupt();
        }
    }

    /// How long the loop may halt at `now_ns`: until the shaper's next release, at most
    /// `max_ns` (timers such as next-hop ARP retries and NAT expiry run on each pass).
    /// None when that release is due already.
    pub fn idle_timeout_ns(&mut self, now_ns: u64, max_ns: u64) -> Option<u64> {
        let max_ns = match self.mgmt.as_mut() {
            Some(m) => max_ns.min(m.next_due_ms(now_ns).saturating_mul(1_000_000)),
            None => max_ns,
        };
        if max_ns == 0 {
            return None;
        }
        if self.pipeline.shaped_backlog() == 0 {
            return Some(max_ns);
        }
        match self.pipeline.shaper_next_wakeup_ns() {
            Some(at) if at > now_ns => Some((at - now_ns).min(max_ns)),
            Some(_) => None,
            // A backlog without a known release: look again soon.
            None => Some(max_ns.min(1_000_000)),
        }
    }
}

/// With no control plane in the instance, a session's ARP request for any address but its
/// own is answered with the gateway MAC (the subscriber's default gateway is us).
fn answer_access_arp(
    pipeline: &Pipeline,
    gateway: EthernetAddress,
    frame: &Frame,
) -> Option<Vec<u8>> {
    {
        if frame.port != ACCESS {
            return None;
        }
        let (l2, l3) = L2Header::parse(frame.data()).ok()?;
        if l2.ethertype != EtherType::Arp {
            return None;
        }
        let req = ArpRepr::parse(frame.data().get(l3..)?).ok()?;
        if req.operation != ArpOperation::Request
            || req.target_protocol_addr == req.source_protocol_addr
        {
            return None;
        }
        let slot = pipeline
            .sessions()
            .lookup_access(&AccessKey::from_l2(ACCESS, &l2))?;
        let entry = pipeline.sessions().entry(slot)?;
        if entry.ipv4 != req.source_protocol_addr {
            return None;
        }
        let reply_l2 = L2Header {
            dst: l2.src,
            src: gateway,
            svlan: l2.svlan,
            cvlan: l2.cvlan,
            ethertype: EtherType::Arp,
        };
        let reply = ArpRepr {
            operation: ArpOperation::Reply,
            source_hardware_addr: gateway,
            source_protocol_addr: req.target_protocol_addr,
            target_hardware_addr: req.source_hardware_addr,
            target_protocol_addr: req.source_protocol_addr,
        };
        Some(build_arp(&reply_l2, &reply))
    }
}
