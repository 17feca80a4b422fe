//! Ethdev ports: lookup, configuration (queues, RSS), start/stop, statistics.

use std::ffi::{CStr, CString};
use std::fmt;
use std::hint;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::queue::DpdkQueue;
use super::{DpdkError, Eal, Mempool, port_error, sys};
use crate::packet::PortId;
use crate::wire::EthernetAddress;

/// Ports with a live [`EthPort`] (or queues of one): a port is opened at most once.
static OPEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// Queue slots a port keeps at most (DPDK's `RTE_MAX_QUEUES_PER_PORT`).
const MAX_QUEUES: usize = 1024;

/// `EOPNOTSUPP`/`ENOTSUP`: the device lacks the operation.
const ENOTSUP: i32 = 95;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How to set a port up ([`EthPort::configure_and_start`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSetup {
    /// Receive queues (default 1).
    pub rx_queues: u16,
    /// Transmit queues (default 1).
    pub tx_queues: u16,
    /// Descriptors per receive queue (default 1024; the device may round it).
    pub rx_descriptors: u16,
    /// Descriptors per transmit queue (default 1024; the device may round it).
    pub tx_descriptors: u16,
    /// Receive side scaling to ask for (default none).
    pub rss: Option<RssSetup>,
    /// Receive frames for every destination MAC (default true; devices without a MAC
    /// filter already do).
    pub promiscuous: bool,
}

impl Default for PortSetup {
    fn default() -> Self {
        PortSetup {
            rx_queues: 1,
            tx_queues: 1,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            rss: None,
            promiscuous: true,
        }
    }
}

/// Receive side scaling: which hash, with which key, into which queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RssSetup {
    /// The 40-byte Toeplitz key.
    pub key: [u8; 40],
    /// `RTE_ETH_RSS_*` bits (e.g. `RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_L3_SRC_ONLY`).
    pub hash_functions: u64,
    /// The queue for each redirection-table entry, repeated to the device's table size
    /// (entry `i` of the device gets `reta[i % reta.len()]`).
    pub reta: Vec<u16>,
}

/// What became of the RSS a [`PortSetup`] asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RssOutcome {
    /// The device hashes as asked, with the given key and redirection table.
    Applied,
    /// The device cannot (hash functions, key size or redirection table): it started
    /// without RSS, so receive queue 0 gets all traffic (unless the device spreads frames
    /// over its queues its own way, e.g. `net_pcap` with one `rx_pcap` per queue).
    Unsupported,
    /// The setup asked for no RSS.
    NotRequested,
}

impl fmt::Display for RssOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RssOutcome::Applied => "applied",
            RssOutcome::Unsupported => "unsupported",
            RssOutcome::NotRequested => "not requested",
        })
    }
}

/// Link state (`rte_eth_link_get_nowait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStatus {
    /// The link is up.
    pub up: bool,
    /// Speed in Mbit/s (0 if unknown).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

/// Port counters (`rte_eth_stats_get`); all zero if the device cannot report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EthStats {
    /// Frames received.
    pub rx_packets: u64,
    /// Frames transmitted.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Frames the device dropped because its receive queues were full (`imissed`).
    pub rx_missed: u64,
    /// Erroneous frames received.
    pub rx_errors: u64,
    /// Failed transmissions.
    pub tx_errors: u64,
    /// Receive buffer allocation failures (mempool empty).
    pub rx_nombuf: u64,
}

/// The parts of `rte_eth_dev_info` the layer uses, read once when the port is opened.
#[derive(Debug, Clone)]
struct DevInfo {
    driver: String,
    max_rx_queues: u16,
    max_tx_queues: u16,
    reta_size: u16,
    hash_key_size: u8,
    rss_offloads: u64,
}

/// What [`EthPort::configure_and_start`] set up.
#[derive(Debug)]
struct Configured {
    rx_queues: u16,
    tx_queues: u16,
    /// The receive pool: the device's rings hold its buffers until the port is closed.
    _pool: Arc<Mempool>,
}

/// One queue's synchronisation with [`PortShared::halt`], on its own cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(super) struct QueueSlot {
    /// A [`DpdkQueue`] for this queue exists.
    claimed: AtomicBool,
    /// The queue is inside an rx/tx burst.
    busy: AtomicBool,
}

/// The state a port's [`EthPort`] and its [`DpdkQueue`]s share. The last one dropped
/// stops and closes the device.
#[derive(Debug)]
pub(super) struct PortShared {
    pub(super) id: u16,
    pub(super) name: String,
    info: DevInfo,
    started: AtomicBool,
    slots: Box<[QueueSlot]>,
    configured: Mutex<Option<Configured>>,
}

impl PortShared {
    /// Marks queue `q` as inside a burst. Returns false (without marking) if the port is not
    /// started; then the caller must not touch the device.
    #[inline]
    pub(super) fn enter(&self, q: usize) -> bool {
        let slot = &self.slots[q];
        // SeqCst store then SeqCst load here, SeqCst store of `started` then SeqCst load of
        // `busy` in halt(): at least one side sees the other, so a burst never overlaps a
        // device stop.
        slot.busy.store(true, Ordering::SeqCst);
        if self.started.load(Ordering::SeqCst) {
            return true;
        }
        slot.busy.store(false, Ordering::Release);
        false
    }

    /// Ends the burst begun by a successful [`PortShared::enter`].
    #[inline]
    pub(super) fn leave(&self, q: usize) {
        self.slots[q].busy.store(false, Ordering::Release);
    }

    /// True while the device is started.
    #[inline]
    pub(super) fn is_started(&self) -> bool {
        self.started.load(Ordering::Relaxed)
    }

    /// Gives queue `q` up (its [`DpdkQueue`] is dropped).
    pub(super) fn release(&self, q: usize) {
        self.slots[q].claimed.store(false, Ordering::Release);
    }

    /// Stops the device after every burst in progress has returned.
    fn halt(&self) {
        if !self.started.swap(false, Ordering::SeqCst) {
            return;
        }
        for slot in self.slots.iter() {
            while slot.busy.load(Ordering::SeqCst) {
                hint::spin_loop();
            }
        }
        // SAFETY: the port is valid (open) and started, and no queue is inside a burst or
        // can enter one (started is false).
        unsafe { sys::rte_eth_dev_stop(self.id) };
    }
}

impl Drop for PortShared {
    fn drop(&mut self) {
        self.halt();
        // SAFETY: the port is open and stopped, and no queue of it exists any more (each
        // holds this shared state); close releases its queues and their buffers.
        unsafe { sys::rte_eth_dev_close(self.id) };
        lock(&OPEN).retain(|&id| id != self.id);
        // `configured` (with the receive pool's Arc) drops after this: after the close.
    }
}

/// One ethdev port. Only thread-safe control calls take `&self` (statistics, link, MAC,
/// handing out queues), so an `EthPort` may be shared between threads; configuration and
/// stop take `&mut self`.
///
/// Dropping it stops the device (after bursts in progress return); the device is closed once
/// every [`DpdkQueue`] taken from it is dropped too.
#[derive(Debug)]
pub struct EthPort {
    shared: Arc<PortShared>,
}

impl EthPort {
    /// Opens the port EAL created for device `name` (`rte_eth_dev_get_port_by_name`): the
    /// vdev name such as `net_af_packet0`, or a PCI address. A port is opened once per
    /// process at a time.
    pub fn by_name(eal: &Eal, name: &str) -> Result<EthPort, DpdkError> {
        let _ = eal;
        let c_name = CString::new(name)
            .map_err(|_| DpdkError::Invalid(format!("port name {name:?} contains a NUL byte")))?;
        let mut id = 0u16;
        // SAFETY: EAL is initialised; c_name is a valid string and id a valid out pointer.
        let ret = unsafe { sys::rte_eth_dev_get_port_by_name(c_name.as_ptr(), &mut id) };
        if ret != 0 {
            return Err(DpdkError::NoSuchPort {
                name: name.to_owned(),
            });
        }
        let info = dev_info(id, name)?;
        {
            let mut open = lock(&OPEN);
            if open.contains(&id) {
                return Err(DpdkError::Invalid(format!(
                    "port {name:?} is already open (one EthPort per port)"
                )));
            }
            open.push(id);
        }
        let slots = usize::from(info.max_rx_queues.max(info.max_tx_queues)).clamp(1, MAX_QUEUES);
        Ok(EthPort {
            shared: Arc::new(PortShared {
                id,
                name: name.to_owned(),
                info,
                started: AtomicBool::new(false),
                slots: (0..slots).map(|_| QueueSlot::default()).collect(),
                configured: Mutex::new(None),
            }),
        })
    }

    /// The DPDK port id.
    pub fn id(&self) -> u16 {
        self.shared.id
    }

    /// The device name the port was opened by.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The driver's name (`net_null`, `net_ring`, `net_virtio_user`, ...).
    pub fn driver(&self) -> String {
        self.shared.info.driver.clone()
    }

    /// The most receive and transmit queues the device supports.
    pub fn max_queues(&self) -> (u16, u16) {
        (
            self.shared.info.max_rx_queues,
            self.shared.info.max_tx_queues,
        )
    }

    /// True if the device can hash with all of `hash_functions` (`RTE_ETH_RSS_*` bits,
    /// checked against the device's `flow_type_rss_offloads`).
    pub fn rss_supported(&self, hash_functions: u64) -> bool {
        hash_functions != 0 && self.shared.info.rss_offloads & hash_functions == hash_functions
    }

    /// Size of the device's RSS redirection table (0 if it has none).
    pub fn reta_size(&self) -> u16 {
        self.shared.info.reta_size
    }

    /// True while the device is started.
    pub fn is_started(&self) -> bool {
        self.shared.is_started()
    }

    /// Configures the device with `setup` (queues, descriptors, RSS, promiscuous mode), sets
    /// up every receive queue on `pool` and starts it. A started port is stopped first. RSS
    /// the device cannot do is not an error: the port starts without it and the outcome says
    /// so.
    ///
    /// Fails if queues taken from an earlier configuration still exist, if the queue counts
    /// are 0 or above the device's maximum, if a redirection-table entry names a queue that
    /// does not exist, or if DPDK refuses a step.
    pub fn configure_and_start(
        &mut self,
        setup: &PortSetup,
        pool: &Arc<Mempool>,
    ) -> Result<RssOutcome, DpdkError> {
        let sh = &self.shared;
        let name = sh.name.as_str();
        if sh.slots.iter().any(|s| s.claimed.load(Ordering::Acquire)) {
            return Err(DpdkError::Invalid(format!(
                "port {name:?}: drop its queues before configuring it again"
            )));
        }
        let (max_rx, max_tx) = self.max_queues();
        if setup.rx_queues == 0 || setup.rx_queues > max_rx {
            return Err(DpdkError::Invalid(format!(
                "port {name:?} ({}) supports 1 to {max_rx} receive queues, asked for {}",
                sh.info.driver, setup.rx_queues
            )));
        }
        if setup.tx_queues == 0 || setup.tx_queues > max_tx {
            return Err(DpdkError::Invalid(format!(
                "port {name:?} ({}) supports 1 to {max_tx} transmit queues, asked for {}",
                sh.info.driver, setup.tx_queues
            )));
        }
        if setup.rx_descriptors == 0 || setup.tx_descriptors == 0 {
            return Err(DpdkError::Invalid(format!(
                "port {name:?}: descriptor counts must be at least 1"
            )));
        }
        if let Some(rss) = &setup.rss
            && (rss.reta.is_empty() || rss.reta.iter().any(|&q| q >= setup.rx_queues))
        {
            return Err(DpdkError::Invalid(format!(
                "port {name:?}: the RSS redirection table must name receive queues 0..{}, \
                 got {:?}",
                setup.rx_queues, rss.reta
            )));
        }
        sh.halt();
        *lock(&sh.configured) = None;

        let mut outcome = match &setup.rss {
            None => RssOutcome::NotRequested,
            Some(rss) => {
                let key_ok = matches!(sh.info.hash_key_size, 0 | 40);
                if self.rss_supported(rss.hash_functions) && key_ok {
                    RssOutcome::Applied
                } else {
                    RssOutcome::Unsupported
                }
            }
        };
        let mut key = setup.rss.as_ref().map_or([0u8; 40], |r| r.key);
        let mut conf = sys::rte_eth_conf::default();
        if let (RssOutcome::Applied, Some(rss)) = (outcome, &setup.rss) {
            conf.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf = sys::rte_eth_rss_conf {
                rss_key: key.as_mut_ptr(),
                rss_key_len: 40,
                rss_hf: rss.hash_functions,
            };
        }
        let id = sh.id;
        // SAFETY: the port is open and stopped; conf (and the key it points to) outlive the
        // call, which copies them.
        let ret =
            unsafe { sys::rte_eth_dev_configure(id, setup.rx_queues, setup.tx_queues, &conf) };
        if ret < 0 {
            return Err(port_error("rte_eth_dev_configure", name, -ret));
        }
        let (mut rxd, mut txd) = (setup.rx_descriptors, setup.tx_descriptors);
        // SAFETY: the port is configured; rxd and txd are valid in/out pointers.
        let ret = unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut rxd, &mut txd) };
        if ret < 0 {
            return Err(port_error("rte_eth_dev_adjust_nb_rx_tx_desc", name, -ret));
        }
        // SAFETY: the port is valid.
        let socket = unsafe { sys::rte_eth_dev_socket_id(id) };
        // SOCKET_ID_ANY (-1) is passed on as u32::MAX, which DPDK reads as "any".
        let socket = socket as u32;
        for q in 0..setup.rx_queues {
            // SAFETY: the port is configured with rx_queues queues; a null rxconf selects the
            // device defaults; the pool outlives the queue (kept in `configured` until the
            // port is closed).
            let ret = unsafe {
                sys::rte_eth_rx_queue_setup(id, q, rxd, socket, std::ptr::null(), pool.as_ptr())
            };
            if ret < 0 {
                return Err(port_error("rte_eth_rx_queue_setup", name, -ret));
            }
        }
        for q in 0..setup.tx_queues {
            // SAFETY: the port is configured with tx_queues queues; null txconf: defaults.
            let ret = unsafe { sys::rte_eth_tx_queue_setup(id, q, txd, socket, std::ptr::null()) };
            if ret < 0 {
                return Err(port_error("rte_eth_tx_queue_setup", name, -ret));
            }
        }
        if setup.promiscuous {
            // SAFETY: the port is configured.
            let ret = unsafe { sys::rte_eth_promiscuous_enable(id) };
            if ret < 0 && ret != -ENOTSUP {
                return Err(port_error("rte_eth_promiscuous_enable", name, -ret));
            }
        }
        // SAFETY: the port is configured and all its queues are set up.
        let ret = unsafe { sys::rte_eth_dev_start(id) };
        if ret < 0 {
            return Err(port_error("rte_eth_dev_start", name, -ret));
        }
        *lock(&sh.configured) = Some(Configured {
            rx_queues: setup.rx_queues,
            tx_queues: setup.tx_queues,
            _pool: Arc::clone(pool),
        });
        sh.started.store(true, Ordering::SeqCst);

        if let (RssOutcome::Applied, Some(rss)) = (outcome, &setup.rss) {
            outcome = self.program_rss(rss, &mut key)?;
        }
        Ok(outcome)
    }

    /// Writes the key and the redirection table into a started device. ENOTSUP from the
    /// device makes the outcome [`RssOutcome::Unsupported`].
    fn program_rss(&self, rss: &RssSetup, key: &mut [u8; 40]) -> Result<RssOutcome, DpdkError> {
        let (id, name) = (self.shared.id, self.shared.name.as_str());
        let mut conf = sys::rte_eth_rss_conf {
            rss_key: key.as_mut_ptr(),
            rss_key_len: 40,
            rss_hf: rss.hash_functions,
        };
        // SAFETY: the port is started; conf and the key outlive the call, which copies them.
        let ret = unsafe { sys::rte_eth_dev_rss_hash_update(id, &mut conf) };
        if ret == -ENOTSUP {
            return Ok(RssOutcome::Unsupported);
        }
        if ret < 0 {
            return Err(port_error("rte_eth_dev_rss_hash_update", name, -ret));
        }
        let size = usize::from(self.shared.info.reta_size);
        if size == 0 {
            // No table to program: the device spreads hashes over its queues itself.
            return Ok(RssOutcome::Applied);
        }
        let group = sys::RTE_ETH_RETA_GROUP_SIZE as usize;
        let mut table = vec![sys::rte_eth_rss_reta_entry64::default(); size.div_ceil(group)];
        for i in 0..size {
            let entry = &mut table[i / group];
            entry.mask |= 1u64 << (i % group);
            entry.reta[i % group] = rss.reta[i % rss.reta.len()];
        }
        // SAFETY: table holds size / 64 (rounded up) entries, as the call reads for a table
        // of `size` entries; it is copied.
        let ret = unsafe {
            sys::rte_eth_dev_rss_reta_update(id, table.as_mut_ptr(), self.shared.info.reta_size)
        };
        if ret == -ENOTSUP {
            return Ok(RssOutcome::Unsupported);
        }
        if ret < 0 {
            return Err(port_error("rte_eth_dev_rss_reta_update", name, -ret));
        }
        Ok(RssOutcome::Applied)
    }

    /// Receive and transmit queue `queue` as a [`DpdkQueue`] for one worker: received frames
    /// get port id `port_id_in_pipeline`, transmitted frames are copied into buffers from
    /// `pool`. If the port has fewer receive (transmit) queues than `queue + 1`, the
    /// returned queue only transmits (receives).
    ///
    /// # Panics
    /// If the port is not configured, if `queue` is not below the larger of its receive and
    /// transmit queue counts, or if a [`DpdkQueue`] for `queue` already exists (a DPDK queue
    /// must be driven by one thread).
    pub fn queue(&self, queue: u16, port_id_in_pipeline: PortId, pool: &Arc<Mempool>) -> DpdkQueue {
        let sh = &self.shared;
        let (rx, tx) = match lock(&sh.configured).as_ref() {
            Some(c) => (c.rx_queues, c.tx_queues),
            None => panic!("EthPort::queue: port {:?} is not configured", sh.name),
        };
        assert!(
            queue < rx.max(tx),
            "EthPort::queue: port {:?} has {rx} receive and {tx} transmit queues, asked for \
             queue {queue}",
            sh.name
        );
        let slot = &sh.slots[usize::from(queue)];
        assert!(
            !slot.claimed.swap(true, Ordering::AcqRel),
            "EthPort::queue: queue {queue} of port {:?} is already taken",
            sh.name
        );
        DpdkQueue::new(
            Arc::clone(sh),
            queue,
            queue < rx,
            queue < tx,
            port_id_in_pipeline,
            Arc::clone(pool),
            self.mac(),
        )
    }

    /// The device's MAC address (all zero if it cannot say).
    pub fn mac(&self) -> EthernetAddress {
        let mut addr = sys::rte_ether_addr::default();
        // SAFETY: the port is open; addr is a valid out pointer.
        let ret = unsafe { sys::rte_eth_macaddr_get(self.shared.id, &mut addr) };
        if ret < 0 {
            return EthernetAddress::ZERO;
        }
        EthernetAddress(addr.addr_bytes)
    }

    /// Link state, without waiting for the device to settle.
    pub fn link(&self) -> LinkStatus {
        let mut link = sys::rte_eth_link::default();
        // SAFETY: the port is open; link is a valid out pointer.
        let ret = unsafe { sys::rte_eth_link_get_nowait(self.shared.id, &mut link) };
        if ret < 0 {
            return LinkStatus::default();
        }
        let speed = link.link_speed;
        LinkStatus {
            up: u32::from(link.link_status()) == sys::RTE_ETH_LINK_UP,
            speed_mbps: if speed == sys::RTE_ETH_SPEED_NUM_UNKNOWN {
                0
            } else {
                speed
            },
            full_duplex: u32::from(link.link_duplex()) == sys::RTE_ETH_LINK_FULL_DUPLEX,
        }
    }

    /// Port counters.
    pub fn stats(&self) -> EthStats {
        let mut s = MaybeUninit::<sys::rte_eth_stats>::zeroed();
        // SAFETY: the port is open; s is a valid out pointer of the right type.
        let ret = unsafe { sys::rte_eth_stats_get(self.shared.id, s.as_mut_ptr()) };
        if ret < 0 {
            return EthStats::default();
        }
        // SAFETY: zero-initialised plain integers, filled in by the call.
        let s = unsafe { s.assume_init() };
        EthStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        }
    }

    /// The device's extended statistics as (name, value), in the device's order; empty if
    /// it has none or cannot report them.
    pub fn xstats(&self) -> Vec<(String, u64)> {
        let id = self.shared.id;
        // SAFETY: the port is open; a null array with size 0 asks for the count.
        let n = unsafe { sys::rte_eth_xstats_get_names(id, std::ptr::null_mut(), 0) };
        let Ok(n) = usize::try_from(n) else {
            return Vec::new();
        };
        let mut names = vec![sys::rte_eth_xstat_name { name: [0; 64] }; n];
        let mut values = vec![sys::rte_eth_xstat::default(); n];
        let len = n as u32;
        // SAFETY: names holds n entries as the call is told.
        let got = unsafe { sys::rte_eth_xstats_get_names(id, names.as_mut_ptr(), len) };
        // SAFETY: values holds n entries as the call is told.
        let got_values = unsafe { sys::rte_eth_xstats_get(id, values.as_mut_ptr(), len) };
        if got < 0 || got_values < 0 {
            return Vec::new();
        }
        let got = (got as usize).min(n);
        let got_values = (got_values as usize).min(n);
        values[..got_values]
            .iter()
            .filter_map(|v| {
                let name = names[..got].get(usize::try_from(v.id).ok()?)?;
                // SAFETY: the name array is NUL-terminated by DPDK (and zero-initialised).
                let text = unsafe { CStr::from_ptr(name.name.as_ptr()) };
                Some((text.to_string_lossy().into_owned(), v.value))
            })
            .collect()
    }

    /// Stops the device (`rte_eth_dev_stop`) after every burst in progress returns; its
    /// queues then receive nothing and refuse to send. [`EthPort::configure_and_start`]
    /// starts it again (once its queues are dropped).
    pub fn stop(&mut self) {
        self.shared.halt();
    }
}

impl Drop for EthPort {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads the device information the layer needs.
fn dev_info(id: u16, name: &str) -> Result<DevInfo, DpdkError> {
    let mut info = MaybeUninit::<sys::rte_eth_dev_info>::zeroed();
    // SAFETY: the port exists; info is a valid out pointer of the right type.
    let ret = unsafe { sys::rte_eth_dev_info_get(id, info.as_mut_ptr()) };
    if ret < 0 {
        return Err(port_error("rte_eth_dev_info_get", name, -ret));
    }
    // SAFETY: zero is a valid value for every field (integers and pointers), and the call
    // filled the struct in.
    let info = unsafe { info.assume_init() };
    let driver = if info.driver_name.is_null() {
        String::new()
    } else {
        // SAFETY: driver_name points to the driver's static NUL-terminated name.
        unsafe { CStr::from_ptr(info.driver_name) }
            .to_string_lossy()
            .into_owned()
    };
    Ok(DevInfo {
        driver,
        max_rx_queues: info.max_rx_queues,
        max_tx_queues: info.max_tx_queues,
        reta_size: info.reta_size,
        hash_key_size: info.hash_key_size,
        rss_offloads: info.flow_type_rss_offloads,
    })
}
