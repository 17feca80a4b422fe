//! vbng-day0: the per-customer vBNG's day-0 configuration, the kernel command line of the
//! vbng-uk image: whitespace-separated `key=value` words (QEMU's own, such as
//! `virtio_mmio.device=`, are read too). The image parses it at boot (a bad word stops the
//! boot with one line naming it); the vbng-vm launcher checks the words it is given with
//! the same parser before it starts anything. `no_std` + `alloc`.
//!
//! | key | meaning |
//! |---|---|
//! | `gateway_mac=02:00:5e:00:01:01` | the subscriber's default gateway MAC (access side) |
//! | `core_ip=198.51.100.2/24` | the instance's core address (answered in ARP) |
//! | `core_mac=52:54:00:00:00:02`, `mgmt_mac=...` | the core and management devices' MACs (read from the devices without them) |
//! | `virtio=qemu-legacy` | the launcher's promise that the devices are QEMU's virtio-net on the legacy transport, fresh and with 256-entry queues: brought up without a register read |
//! | `next_hop=198.51.100.1` | the core next hop (resolved by ARP) |
//! | `session=MAC,IPV4[,svlan=N][,cvlan=N][,pppoe=N][,ul=BPS][,dl=BPS][,mtu=N]` | a subscriber session (repeatable) |
//! | `nat_pool=PREFIX` | NAT44 outside prefix (repeatable); NAT is off without one |
//! | `nat_inside=PREFIX` | inside prefixes translated (default 100.64.0.0/10; repeatable) |
//! | `nat_block=N`, `nat_blocks=N` | ports per block (512), blocks per subscriber (4) |
//! | `unix_ms=N` | wall-clock time at boot, for NAT log timestamps |
//! | `mgmt_ip=192.0.2.2/24` | the management interface's address (third device): PFCP on UDP 8805 |
//! | `cp_gtpu=192.0.2.1:2152` | the control plane's GTP-U endpoint: control frames go there |
//! | `probe=write-text\|exec-data\|stack-guard` | checks the page protections by breaking them |
//! | `baseline=exit\|halt` | vbng-perf's baselines: exit at once, or only halt |
//! | `tsc_khz=N` | the TSC rate (the launcher measures the host's) |
//! | `verbose` | a line with the set-up times before the loop starts |

#![no_std]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::net::Ipv4Addr;
use core::str::FromStr;

use vbng_dataplane::nat::Ipv4Prefix;
use vbng_dataplane::wire::EthernetAddress;

/// One subscriber session.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    /// Subscriber MAC.
    pub mac: EthernetAddress,
    /// Subscriber IPv4 address.
    pub ipv4: Ipv4Addr,
    /// Outer VLAN, 0 for none.
    pub svlan: u16,
    /// Inner VLAN, 0 for none.
    pub cvlan: u16,
    /// PPPoE session id, 0 for IPoE.
    pub pppoe: u16,
    /// Upstream policing rate.
    pub ul_bps: Option<u64>,
    /// Downstream shaping rate.
    pub dl_bps: Option<u64>,
    /// Downstream MTU (0: none).
    pub mtu: u16,
}

/// A check of the page protections: the instance does something they must stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Writes to its own text.
    WriteText,
    /// Jumps into its data.
    ExecData,
    /// Recurses until the stack reaches its guard page.
    StackGuard,
}

/// The instance's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Access-side gateway MAC.
    pub gateway_mac: EthernetAddress,
    /// Core address and prefix length.
    pub core_ip: (Ipv4Addr, u8),
    /// Core next hop.
    pub next_hop: Ipv4Addr,
    /// The core device's MAC, if given (else read from the device).
    pub core_mac: Option<EthernetAddress>,
    /// The management device's MAC, if given.
    pub mgmt_mac: Option<EthernetAddress>,
    /// `virtio=qemu-legacy`: the devices may be brought up without reading a register.
    pub virtio_qemu_legacy: bool,
    /// Sessions.
    pub sessions: Vec<SessionSpec>,
    /// NAT outside prefixes.
    pub nat_pool: Vec<Ipv4Prefix>,
    /// NAT inside prefixes.
    pub nat_inside: Vec<Ipv4Prefix>,
    /// NAT ports per block.
    pub nat_block: u16,
    /// NAT blocks per subscriber.
    pub nat_blocks: u16,
    /// Wall clock at boot, ms since 1970.
    pub unix_ms: u64,
    /// virtio-mmio devices QEMU listed (`virtio_mmio.device=SIZE@ADDR:IRQ`): address, IRQ.
    pub virtio_mmio: Vec<(u64, u8)>,
    /// A page-protection check to run instead of forwarding.
    pub probe: Option<Probe>,
    /// Management interface address.
    pub mgmt_ip: Option<(Ipv4Addr, u8)>,
    /// The control plane's GTP-U endpoint.
    pub cp_gtpu: Option<core::net::SocketAddrV4>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            gateway_mac: EthernetAddress([0x02, 0x00, 0x5e, 0x00, 0x01, 0x01]),
            core_ip: (Ipv4Addr::new(198, 51, 100, 2), 24),
            next_hop: Ipv4Addr::new(198, 51, 100, 1),
            core_mac: None,
            mgmt_mac: None,
            virtio_qemu_legacy: false,
            sessions: Vec::new(),
            nat_pool: Vec::new(),
            nat_inside: Vec::new(),
            nat_block: 512,
            nat_blocks: 4,
            unix_ms: 0,
            virtio_mmio: Vec::new(),
            probe: None,
            mgmt_ip: None,
            cp_gtpu: None,
        }
    }
}

fn mac(s: &str) -> Option<EthernetAddress> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(EthernetAddress(out))
}

fn prefix(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, l) = s.split_once('/').unwrap_or((s, "32"));
    let len = l.parse::<u8>().ok().filter(|&l| l <= 32)?;
    Some((Ipv4Addr::from_str(a).ok()?, len))
}

fn number<T: FromStr>(s: &str) -> Option<T> {
    s.parse().ok()
}

/// A rate: bits per second, with an optional k, M or G suffix.
fn rate(s: &str) -> Option<u64> {
    let (digits, mult) = match s.as_bytes().last()? {
        b'k' => (&s[..s.len() - 1], 1_000),
        b'M' => (&s[..s.len() - 1], 1_000_000),
        b'G' => (&s[..s.len() - 1], 1_000_000_000),
        _ => (s, 1),
    };
    digits
        .parse::<u64>()
        .ok()?
        .checked_mul(mult)
        .filter(|&r| r > 0)
}

fn session(s: &str) -> Option<SessionSpec> {
    let mut fields = s.split(',');
    let mac = mac(fields.next()?)?;
    let ipv4 = Ipv4Addr::from_str(fields.next()?).ok()?;
    let mut spec = SessionSpec {
        mac,
        ipv4,
        svlan: 0,
        cvlan: 0,
        pppoe: 0,
        ul_bps: None,
        dl_bps: None,
        mtu: 0,
    };
    for f in fields {
        let (k, v) = f.split_once('=')?;
        match k {
            "svlan" => spec.svlan = number(v).filter(|&n| (1..4095).contains(&n))?,
            "cvlan" => spec.cvlan = number(v).filter(|&n| (1..4095).contains(&n))?,
            "pppoe" => spec.pppoe = number(v).filter(|&n| n != 0 && n != 0xffff)?,
            "ul" => spec.ul_bps = Some(rate(v)?),
            "dl" => spec.dl_bps = Some(rate(v)?),
            "mtu" => spec.mtu = number(v).filter(|&n| n >= 576)?,
            _ => return None,
        }
    }
    Some(spec)
}

/// `virtio_mmio.device=512@0xfeb00e00:12`.
fn virtio_mmio(s: &str) -> Option<(u64, u8)> {
    let (_, rest) = s.split_once('@')?;
    let (addr, irq) = rest.split_once(':')?;
    let addr = u64::from_str_radix(addr.strip_prefix("0x")?, 16).ok()?;
    Some((addr, irq.parse().ok()?))
}

/// Parses the command line; the error names the offending word.
pub fn parse(cmdline: &str) -> Result<Config, String> {
    let mut c = Config::default();
    for word in cmdline.split_ascii_whitespace() {
        let Some((key, value)) = word.split_once('=') else {
            continue;
        };
        let ok = match key {
            "gateway_mac" => mac(value).map(|m| c.gateway_mac = m).is_some(),
            "core_ip" => prefix(value).map(|p| c.core_ip = p).is_some(),
            "next_hop" => Ipv4Addr::from_str(value).map(|a| c.next_hop = a).is_ok(),
            "core_mac" => mac(value).map(|m| c.core_mac = Some(m)).is_some(),
            "mgmt_mac" => mac(value).map(|m| c.mgmt_mac = Some(m)).is_some(),
            "virtio" => {
                c.virtio_qemu_legacy = value == "qemu-legacy";
                c.virtio_qemu_legacy
            }
            "session" => session(value).map(|s| c.sessions.push(s)).is_some(),
            "nat_pool" => prefix(value)
                .map(|(a, l)| c.nat_pool.push(Ipv4Prefix::new(a, l)))
                .is_some(),
            "nat_inside" => prefix(value)
                .map(|(a, l)| c.nat_inside.push(Ipv4Prefix::new(a, l)))
                .is_some(),
            "nat_block" => number(value).map(|n| c.nat_block = n).is_some(),
            "nat_blocks" => number(value).map(|n| c.nat_blocks = n).is_some(),
            "unix_ms" => number(value).map(|n| c.unix_ms = n).is_some(),
            "mgmt_ip" => prefix(value).map(|p| c.mgmt_ip = Some(p)).is_some(),
            "cp_gtpu" => value.parse().map(|a| c.cp_gtpu = Some(a)).is_ok(),
            "virtio_mmio.device" => virtio_mmio(value).map(|d| c.virtio_mmio.push(d)).is_some(),
            "probe" => {
                c.probe = match value {
                    "write-text" => Some(Probe::WriteText),
                    "exec-data" => Some(Probe::ExecData),
                    "stack-guard" => Some(Probe::StackGuard),
                    _ => None,
                };
                c.probe.is_some()
            }
            // Words for others (console=, QEMU's own) pass through.
            _ => true,
        };
        if !ok {
            return Err(alloc::format!("bad value in `{word}`"));
        }
    }
    if c.nat_inside.is_empty() {
        c.nat_inside
            .push(Ipv4Prefix::new(Ipv4Addr::new(100, 64, 0, 0), 10));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_launcher_line_parses() {
        let c = parse(
            "session=02:00:00:00:00:10,100.64.0.10,dl=4M,ul=512k,cvlan=100 nat_pool=203.0.113.0/28 \
             mgmt_ip=192.0.2.2/24 cp_gtpu=192.0.2.1:2152 tsc_khz=2445424 unix_ms=7 \
             virtio_mmio.device=512@0xfeb00e00:12 console=ttyS0 virtio=qemu-legacy \
             core_mac=52:54:00:00:00:02 mgmt_mac=52:54:00:00:00:03",
        )
        .expect("parses");
        let s = &c.sessions[0];
        assert_eq!(s.mac.0, [2, 0, 0, 0, 0, 0x10]);
        assert_eq!(s.ipv4, Ipv4Addr::new(100, 64, 0, 10));
        assert_eq!(
            (s.dl_bps, s.ul_bps, s.cvlan, s.svlan),
            (Some(4_000_000), Some(512_000), 100, 0)
        );
        assert_eq!(
            c.nat_pool,
            [Ipv4Prefix::new(Ipv4Addr::new(203, 0, 113, 0), 28)]
        );
        assert_eq!(
            c.nat_inside,
            [Ipv4Prefix::new(Ipv4Addr::new(100, 64, 0, 0), 10)]
        );
        assert_eq!(c.mgmt_ip, Some((Ipv4Addr::new(192, 0, 2, 2), 24)));
        assert_eq!(c.cp_gtpu, Some("192.0.2.1:2152".parse().unwrap()));
        assert_eq!(c.virtio_mmio, [(0xfeb0_0e00, 12)]);
        assert_eq!(c.unix_ms, 7);
        assert!(c.virtio_qemu_legacy);
        assert_eq!(c.core_mac.map(|m| m.0), Some([0x52, 0x54, 0, 0, 0, 2]));
        assert_eq!(c.mgmt_mac.map(|m| m.0), Some([0x52, 0x54, 0, 0, 0, 3]));
    }

    #[test]
    fn a_bad_word_is_named() {
        for (line, word) in [
            (
                "session=02:00:00:00:00:1,100.64.0.10",
                "session=02:00:00:00:00:1,100.64.0.10",
            ),
            (
                "session=02:00:00:00:00:10,100.64.0.10,dl=0",
                "session=02:00:00:00:00:10,100.64.0.10,dl=0",
            ),
            (
                "session=02:00:00:00:00:10,100.64.0.10,cvlan=4095",
                "session=02:00:00:00:00:10,100.64.0.10,cvlan=4095",
            ),
            (
                "session=02:00:00:00:00:10,100.64.0.10,colour=red",
                "session=02:00:00:00:00:10,100.64.0.10,colour=red",
            ),
            ("nat_pool=203.0.113.0/33", "nat_pool=203.0.113.0/33"),
            (
                "core_ip=198.51.100.2/24 next_hop=198.51.100",
                "next_hop=198.51.100",
            ),
            ("cp_gtpu=192.0.2.1", "cp_gtpu=192.0.2.1"),
            ("probe=write-data", "probe=write-data"),
            ("virtio=modern", "virtio=modern"),
            ("core_mac=52:54:00:00:00", "core_mac=52:54:00:00:00"),
        ] {
            let err = parse(line).expect_err(line);
            assert_eq!(err, alloc::format!("bad value in `{word}`"), "{line}");
        }
    }

    #[test]
    fn defaults_are_the_lab_addresses() {
        let c = parse("").unwrap();
        assert_eq!(c.core_ip, (Ipv4Addr::new(198, 51, 100, 2), 24));
        assert_eq!(c.next_hop, Ipv4Addr::new(198, 51, 100, 1));
        assert_eq!(c.gateway_mac.0, [2, 0, 0x5e, 0, 1, 1]);
        assert!(c.sessions.is_empty() && c.nat_pool.is_empty() && c.mgmt_ip.is_none());
        assert!(!c.virtio_qemu_legacy && c.core_mac.is_none() && c.mgmt_mac.is_none());
    }
}
