//! DPDK ports end to end, on software devices inside this process.
//!
//! EAL starts once per process, so one test runs every check in sequence:
//! - the poll-mode driver libraries are loaded by `eal_init` (`-d`), and a second
//!   `eal_init` returns the same `Eal`;
//! - mempool accounting, `Mbuf` ownership, lcore registration of a plain thread;
//! - `net_ring` (a loopback: transmit queue i feeds receive queue i): frames sent through a
//!   `DpdkQueue` come back unchanged on two queue pairs, received buffers rewritten in place
//!   and sent as they are (the zero-copy `BufferPort` path) come back rewritten, stats / xstats / link agree, RSS is
//!   reported unsupported, dropping the port before its queues is safe and closes it;
//! - `net_null`: two queue pairs with RSS applied, reconfiguration, and a short rate
//!   measurement of the copy path against raw bursts (printed, not asserted);
//! - `net_pcap`: frames of a capture written here are received unchanged, frames sent are
//!   written to the output capture unchanged;
//! - `net_vhost` + `net_virtio_user` in the same process (the virtio side is probed after
//!   the vhost socket exists): frames cross both ways unchanged;
//! - `net_af_packet` on `lo` (root only): frames sent come back from the loopback.
//!
//! Built without the `dpdk` feature, the test prints `SKIPPED: <why>` and passes.

#[cfg(not(feature = "dpdk"))]
#[test]
fn dpdk_ports() {
    println!("SKIPPED: vbng-dataplane was built without the `dpdk` feature (no libdpdk)");
}

#[cfg(feature = "dpdk")]
mod with_dpdk {
    use std::fs;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use vbng_dataplane::host::dpdk::{
        self, BURST, DEFAULT_DATA_ROOM, DpdkError, DpdkQueue, Eal, EthPort, HEADROOM, Mbuf,
        MbufSlot, Mempool, PortSetup, RssOutcome, RssSetup, sys,
    };
    use vbng_dataplane::host::worker::WorkerPort;
    use vbng_dataplane::packet::{DATA_CAPACITY, Frame, PacketBuffer};
    use vbng_dataplane::port::{BufferPort, Port, PortError};

    /// Removes the test's directory and EAL's runtime directory for `prefix` when dropped
    /// (also on panic).
    struct TempDir(PathBuf, String);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
            let _ = fs::remove_dir_all(Path::new("/var/run/dpdk").join(&self.1));
            if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR") {
                let _ = fs::remove_dir_all(Path::new(&run).join("dpdk").join(&self.1));
            }
        }
    }

    /// An Ethernet frame of `len` bytes: broadcast destination, source 02:00:00:00:00:<tag>,
    /// EtherType 0x88b5 (local experimental), then `tag`, the index and a byte pattern.
    fn frame(tag: u8, i: usize, len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len.max(20)];
        f[..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, tag]);
        f[12..14].copy_from_slice(&[0x88, 0xb5]);
        f[14] = tag;
        f[15..19].copy_from_slice(&(i as u32).to_be_bytes());
        for (k, b) in f[19..].iter_mut().enumerate() {
            *b = (k as u8) ^ (i as u8);
        }
        f
    }

    /// Writes a pcap file (microsecond timestamps, Ethernet link type).
    fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&65535u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        for (i, f) in frames.iter().enumerate() {
            out.extend_from_slice(&(i as u32).to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.extend_from_slice(f);
        }
        fs::write(path, out).unwrap();
    }

    /// Reads the frames of a little-endian pcap file (either timestamp resolution).
    fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
        let data = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        assert!(data.len() >= 24, "{}: no pcap header", path.display());
        let magic = u32::from_le_bytes(data[..4].try_into().unwrap());
        assert!(
            magic == 0xa1b2_c3d4 || magic == 0xa1b2_3c4d,
            "{}: unexpected pcap magic {magic:#x}",
            path.display()
        );
        let mut frames = Vec::new();
        let mut at = 24;
        while at + 16 <= data.len() {
            let caplen = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
            frames.push(data[at + 16..at + 16 + caplen].to_vec());
            at += 16 + caplen;
        }
        frames
    }

    /// Receives until `want` frames arrived or `timeout` passed; returns their bytes.
    fn receive(q: &mut DpdkQueue, want: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let mut frames: Vec<Frame> = (0..64).map(|_| Frame::new()).collect();
        let mut got = Vec::new();
        let deadline = Instant::now() + timeout;
        while got.len() < want && Instant::now() < deadline {
            let n = q.recv_burst(&mut frames);
            for f in &frames[..n] {
                got.push(f.data().to_vec());
            }
            if n == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        got
    }

    fn send_all(q: &mut DpdkQueue, frames: &[Vec<u8>]) {
        for f in frames {
            q.send(f).unwrap();
        }
        q.flush();
    }

    fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }

    #[test]
    fn dpdk_ports() {
        let pid = std::process::id();
        let prefix = format!("vbng-dpdk-test-{pid}");
        let dir = TempDir(std::env::temp_dir().join(&prefix), prefix.clone());
        fs::create_dir_all(&dir.0).unwrap();
        let rx_pcap = dir.0.join("in.pcap");
        let tx_pcap = dir.0.join("out.pcap");
        let vhost_sock = dir.0.join("vhost.sock");
        let pcap_frames: Vec<Vec<u8>> = [60, 64, 128, 1514, 300, 1000, 61]
            .iter()
            .enumerate()
            .map(|(i, &len)| frame(0x33, i, len))
            .collect();
        write_pcap(&rx_pcap, &pcap_frames);

        let mut args: Vec<String> = [
            "vbng-dpdk-test",
            "--no-huge",
            "-m",
            "256",
            "--no-pci",
            "--no-shconf",
            "-l",
            "0",
            "--log-level=*:error",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(format!("--file-prefix={prefix}"));
        args.push("--vdev=net_ring0".into());
        args.push("--vdev=net_null0".into());
        args.push(format!(
            "--vdev=net_pcap0,rx_pcap={},tx_pcap={}",
            rx_pcap.display(),
            tx_pcap.display()
        ));
        args.push(format!(
            "--vdev=net_vhost0,iface={},queues=1",
            vhost_sock.display()
        ));
        let started = Instant::now();
        let eal = match dpdk::eal_init(&args) {
            Ok(eal) => eal,
            Err(e) => panic!("eal_init failed: {e}"),
        };
        println!(
            "EAL up in {:?}, main lcore {}, {} ports",
            started.elapsed(),
            eal.main_lcore(),
            eal.port_count()
        );
        check_drivers_loaded(eal);
        // A second call returns the same EAL, whatever it is given.
        let again = dpdk::eal_init(&["other".to_string()]).unwrap();
        assert!(
            std::ptr::eq(eal, again),
            "second eal_init returned another Eal"
        );
        assert!(eal.port_count() >= 4);

        let pool = check_mempool_and_mbufs(eal);
        check_register_thread(eal, &pool);
        check_ring(eal, &pool);
        check_null(eal, &pool);
        check_pcap(eal, &pool, &pcap_frames, &tx_pcap);
        check_vhost_virtio(eal, &pool, &vhost_sock);
        check_af_packet(eal, &pool);
        assert_eq!(pool.in_use(), 0, "buffers leaked");
        println!("all DPDK checks passed");
    }

    /// Every PMD library the build found is mapped into the process after `eal_init`.
    fn check_drivers_loaded(eal: &Eal) {
        let maps = fs::read_to_string("/proc/self/maps").unwrap();
        assert!(!sys::PMD_LIBRARIES.is_empty());
        for (driver, lib) in sys::PMD_LIBRARIES {
            assert!(maps.contains(lib), "{driver}: {lib} is not loaded");
            assert!(
                eal.args().windows(2).any(|w| w[0] == "-d" && w[1] == *lib),
                "{lib} not given to EAL"
            );
            println!("driver {driver}: {lib} loaded");
        }
    }

    fn check_mempool_and_mbufs(eal: &Eal) -> Arc<Mempool> {
        let pool = Mempool::new(eal, "vbng_test", 8191, 256, DEFAULT_DATA_ROOM).unwrap();
        assert_eq!(pool.size(), 8191);
        assert_eq!(pool.available(), 8191);
        assert_eq!(pool.in_use(), 0);
        assert_eq!(pool.max_frame(), DATA_CAPACITY);
        // A second pool of the same name: DPDK's error, named and explained.
        let err = Mempool::new(eal, "vbng_test", 1024, 0, DEFAULT_DATA_ROOM).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("rte_pktmbuf_pool_create") && text.contains("exists"),
            "{text}"
        );
        assert!(matches!(
            Mempool::new(eal, "vbng_bad", 100, 512, DEFAULT_DATA_ROOM),
            Err(DpdkError::Invalid(_))
        ));

        let mut m = Mbuf::alloc(&pool).unwrap();
        assert!(m.is_empty());
        assert_eq!(pool.in_use(), 1);
        m.append(100).unwrap().copy_from_slice(&[7u8; 100]);
        m.data_mut()[0] = 1;
        assert_eq!(m.len(), 100);
        assert_eq!(m.pkt_len(), 100);
        assert_eq!(m.segments(), 1);
        assert_eq!(m.data()[..2], [1, 7]);
        assert!(m.append(u16::MAX).is_none(), "append beyond the tailroom");
        let raw = m.into_raw();
        assert_eq!(pool.in_use(), 1);
        // SAFETY: raw came from into_raw just above and is used nowhere else.
        let m = unsafe { Mbuf::from_raw(raw) };
        assert_eq!(m.data()[1], 7);
        drop(m);
        assert_eq!(pool.in_use(), 0);
        pool
    }

    fn check_register_thread(eal: &Eal, pool: &Arc<Mempool>) {
        // The EAL thread already has its lcore.
        assert_eq!(dpdk::register_thread().unwrap(), eal.main_lcore());
        let pool2 = Arc::clone(pool);
        let main = eal.main_lcore();
        let id = std::thread::spawn(move || {
            assert_eq!(dpdk::lcore_id(), None);
            let id = dpdk::register_thread().unwrap();
            assert_eq!(
                dpdk::register_thread().unwrap(),
                id,
                "second call re-registers"
            );
            assert_eq!(dpdk::lcore_id(), Some(id));
            // Buffers move between threads and go back to the pool through this lcore.
            let bufs: Vec<Mbuf> = (0..10).map(|_| Mbuf::alloc(&pool2).unwrap()).collect();
            assert_eq!(pool2.in_use(), 10);
            drop(bufs);
            id
        })
        .join()
        .unwrap();
        assert_ne!(id, main);
        assert_eq!(pool.in_use(), 0);
        println!("registered thread got lcore {id}");
    }

    fn check_ring(eal: &Eal, pool: &Arc<Mempool>) {
        let mut port = EthPort::by_name(eal, "net_ring0").unwrap();
        assert_eq!(port.driver(), "net_ring");
        assert!(matches!(
            EthPort::by_name(eal, "net_ring0"),
            Err(DpdkError::Invalid(_))
        ));
        assert!(matches!(
            EthPort::by_name(eal, "net_ring9"),
            Err(DpdkError::NoSuchPort { .. })
        ));
        let (max_rx, max_tx) = port.max_queues();
        println!(
            "net_ring: max queues rx {max_rx} tx {max_tx}, RSS IPv4 supported: {}",
            port.rss_supported(sys::RTE_ETH_RSS_IPV4)
        );
        assert!(max_rx >= 2 && max_tx >= 2);
        let setup = PortSetup {
            rx_queues: 2,
            tx_queues: 2,
            rx_descriptors: 512,
            tx_descriptors: 512,
            rss: Some(RssSetup {
                key: [0x6d; 40],
                hash_functions: sys::RTE_ETH_RSS_IPV4,
                reta: vec![0, 1],
            }),
            promiscuous: true,
        };
        // The ring device has no RSS: it still starts, and says so.
        assert_eq!(
            port.configure_and_start(&setup, pool).unwrap(),
            RssOutcome::Unsupported
        );
        assert!(port.is_started());
        let link = port.link();
        println!("net_ring link {link:?}, mac {}", port.mac());
        assert!(link.up);

        let mut q0 = port.queue(0, 3, pool);
        let mut q1 = port.queue(1, 4, pool);
        assert_eq!(q0.mac(), port.mac());
        // Handing out a queue twice panics (quietly here).
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let taken = catch_unwind(AssertUnwindSafe(|| port.queue(0, 3, pool)));
        std::panic::set_hook(hook);
        assert!(taken.is_err(), "a queue was handed out twice");
        assert!(matches!(
            port.configure_and_start(&setup, pool),
            Err(DpdkError::Invalid(_))
        ));

        // Queue pair 0: more than one burst, sizes from 60 to a full Frame.
        let sent: Vec<Vec<u8>> = (0..100)
            .map(|i| frame(0x10, i, [60, 64, 1514, DATA_CAPACITY][i % 4]))
            .collect();
        send_all(&mut q0, &sent);
        let mut frames: Vec<Frame> = (0..128).map(|_| Frame::new()).collect();
        let n = q0.recv_burst(&mut frames);
        assert_eq!(n, sent.len());
        for (f, s) in frames[..n].iter().zip(&sent) {
            assert_eq!(f.data(), &s[..]);
            assert_eq!(f.port, 3);
        }
        // Queue pair 1 is separate.
        let sent1: Vec<Vec<u8>> = (0..3).map(|i| frame(0x11, i, 64)).collect();
        send_all(&mut q1, &sent1);
        assert_eq!(q0.recv_burst(&mut frames), 0);
        let n = q1.recv_burst(&mut frames);
        assert_eq!(n, 3);
        assert!(
            frames[..3]
                .iter()
                .zip(&sent1)
                .all(|(f, s)| f.data() == &s[..])
        );
        assert_eq!(frames[0].port, 4);

        assert_eq!(
            q0.send(&vec![0u8; DATA_CAPACITY + 1]),
            Err(PortError::FrameTooLarge {
                len: DATA_CAPACITY + 1,
                max: DATA_CAPACITY
            })
        );
        assert_eq!(q0.tx_dropped(), 0);
        assert_eq!(q0.rx_lost(), 0);
        assert_eq!(q0.poll_fd(), None);

        let stats = port.stats();
        println!("net_ring stats {stats:?}");
        assert_eq!(stats.rx_packets, 103);
        assert_eq!(stats.tx_packets, 103);
        // net_ring counts packets only (rx_bytes and tx_bytes stay 0).
        let xstats = port.xstats();
        println!("net_ring xstats: {} counters", xstats.len());
        let good = xstats
            .iter()
            .find(|(name, _)| name == "rx_good_packets")
            .expect("rx_good_packets in xstats");
        assert_eq!(good.1, 103);

        check_buffer_path(&mut q0);

        // Raw bursts move buffers without copying.
        let m = {
            let mut m = Mbuf::alloc(pool).unwrap();
            m.append(60).unwrap().copy_from_slice(&frame(0x12, 0, 60));
            m.into_raw()
        };
        // SAFETY: m is a valid buffer we own; the device takes it.
        assert_eq!(unsafe { q0.tx_burst_raw(&mut [m]) }, 1);
        let mut raw = [std::ptr::null_mut(); 4];
        assert_eq!(q0.rx_burst_raw(&mut raw), 1);
        // SAFETY: raw[0] was just received and is ours.
        let m = unsafe { Mbuf::from_raw(raw[0]) };
        assert_eq!(m.data(), &frame(0x12, 0, 60)[..]);
        drop(m);

        // Drop the port before its queues: the device stops at once, closes with the last
        // queue, and the buffers all come back.
        q0.send(&sent[0]).unwrap();
        drop(port);
        assert_eq!(q0.recv_burst(&mut frames), 0);
        assert_eq!(q0.send(&sent[0]), Err(PortError::Down));
        q0.flush();
        assert_eq!(q0.tx_dropped(), 1, "the frame queued before the stop");
        assert_eq!(q0.rx_lost(), 1);
        drop(q0);
        drop(q1);
        assert!(matches!(
            EthPort::by_name(eal, "net_ring0"),
            Err(DpdkError::NoSuchPort { .. })
        ));
        assert_eq!(pool.in_use(), 0);
    }

    /// The zero-copy path on a `net_ring` queue (transmit feeds receive): received buffers
    /// are rewritten in place, half are sent as they are and come back rewritten, the other
    /// half are released (that the pool gets every buffer back is checked when the queues
    /// are gone: the queue's transmit stash holds some until then).
    fn check_buffer_path(q: &mut DpdkQueue) {
        let sent: Vec<Vec<u8>> = (0..40)
            .map(|i| frame(0x13, i, [60, 200, 1514][i % 3]))
            .collect();
        send_all(q, &sent);
        let mut bufs: Vec<MbufSlot> = (0..BURST).map(|_| q.empty_buffer()).collect();
        let mut seen = Vec::new();
        let mut expected_back = Vec::new();
        while seen.len() < sent.len() {
            let n = q.recv_buffers(&mut bufs);
            assert!(n > 0, "received {} of {}", seen.len(), sent.len());
            for b in &mut bufs[..n] {
                assert_eq!(b.port(), 3);
                let i = seen.len();
                seen.push(b.data().to_vec());
                // An 8-byte header pushed in front, 2 bytes of it pulled off, cut to 50.
                b.push_front(8).unwrap().copy_from_slice(&[0xa5; 8]);
                b.pull_front(2);
                b.truncate(50);
                assert_eq!(b.len(), 50);
                if i % 2 == 0 {
                    let mut want = vec![0xa5; 6];
                    want.extend_from_slice(&sent[i][..44]);
                    assert_eq!(b.data(), &want[..]);
                    q.send_buffer(b).unwrap();
                    assert!(!b.is_occupied(), "a sent buffer stays in its slot");
                    expected_back.push(want);
                } else {
                    let mut spare = Frame::new();
                    assert!(b.move_into(&mut spare));
                    assert_eq!(spare.data(), b.data());
                    assert_eq!(spare.port, 3);
                }
            }
            q.release(&mut bufs[..n]);
            assert!(bufs.iter().all(|b| !b.is_occupied()));
        }
        // Transmitted only now (fewer than a burst queued), so that the ring does not mix
        // them with the originals.
        q.flush();
        assert_eq!(seen, sent);
        assert_eq!(
            receive(q, expected_back.len(), Duration::from_secs(2)),
            expected_back
        );

        // A buffer sent as it came (its descriptor left as the driver wrote it) comes back
        // whole.
        send_all(q, &sent[2..3]);
        assert_eq!(q.recv_buffers(&mut bufs), 1);
        q.send_buffer(&mut bufs[0]).unwrap();
        q.flush();
        assert_eq!(receive(q, 1, Duration::from_secs(2)), vec![sent[2].clone()]);

        // Each change alone reaches the descriptor: a cut, a header pulled off, a header
        // pushed in front.
        send_all(q, &sent[1..4]);
        assert_eq!(q.recv_buffers(&mut bufs), 3);
        bufs[0].truncate(40);
        bufs[1].pull_front(14);
        bufs[2].push_front(4).unwrap().copy_from_slice(&[0x5a; 4]);
        for b in &mut bufs[..3] {
            q.send_buffer(b).unwrap();
        }
        q.flush();
        let pushed: Vec<u8> = [&[0x5a; 4][..], &sent[3][..]].concat();
        assert_eq!(
            receive(q, 3, Duration::from_secs(2)),
            vec![sent[1][..40].to_vec(), sent[2][14..].to_vec(), pushed]
        );

        // The headroom is DPDK's: pushing more fails and changes nothing.
        send_all(q, &sent[..1]);
        assert_eq!(q.recv_buffers(&mut bufs), 1);
        assert!(bufs[0].push_front(HEADROOM + 1).is_none());
        assert_eq!(bufs[0].data(), &sent[0][..]);
        bufs[0].pull_front(10_000);
        assert!(bufs[0].is_empty());
        drop(bufs);

        let mut empty = MbufSlot::empty();
        assert!(empty.data().is_empty() && empty.push_front(1).is_none());
        assert_eq!(q.send_buffer(&mut empty), Err(PortError::Down));
    }

    fn check_null(eal: &Eal, pool: &Arc<Mempool>) {
        let mut port = EthPort::by_name(eal, "net_null0").unwrap();
        assert_eq!(port.driver(), "net_null");
        let (max_rx, max_tx) = port.max_queues();
        let hash = sys::RTE_ETH_RSS_IPV4 | sys::RTE_ETH_RSS_NONFRAG_IPV4_UDP;
        println!(
            "net_null: max queues rx {max_rx} tx {max_tx}, reta {} entries, RSS {hash:#x} \
             supported: {}, with L3_SRC_ONLY: {}",
            port.reta_size(),
            port.rss_supported(hash),
            port.rss_supported(hash | sys::RTE_ETH_RSS_L3_SRC_ONLY)
        );
        let rss = RssSetup {
            key: [0x6d; 40],
            hash_functions: hash,
            reta: vec![0, 1],
        };
        let mut setup = PortSetup {
            rx_queues: 2,
            tx_queues: 2,
            rss: Some(rss.clone()),
            ..PortSetup::default()
        };
        let expected = if port.rss_supported(hash) {
            RssOutcome::Applied
        } else {
            RssOutcome::Unsupported
        };
        assert_eq!(port.configure_and_start(&setup, pool).unwrap(), expected);
        println!("net_null: RSS {expected} with 2 queues");
        {
            let mut q0 = port.queue(0, 0, pool);
            let mut q1 = port.queue(1, 0, pool);
            let mut frames: Vec<Frame> = (0..32).map(|_| Frame::new()).collect();
            assert_eq!(q0.recv_burst(&mut frames), 32);
            assert_eq!(frames[0].len(), 64);
            assert_eq!(q1.recv_burst(&mut frames[..8]), 8);
            q1.send(frames[0].data()).unwrap();
            q1.flush();
            assert_eq!(q1.tx_dropped(), 0);
        }
        // A redirection table naming a missing queue is refused before touching the device.
        setup.rss = Some(RssSetup {
            reta: vec![0, 2],
            ..rss
        });
        assert!(matches!(
            port.configure_and_start(&setup, pool),
            Err(DpdkError::Invalid(_))
        ));
        assert!(matches!(
            port.configure_and_start(
                &PortSetup {
                    rx_queues: max_rx.saturating_add(1),
                    ..PortSetup::default()
                },
                pool
            ),
            Err(DpdkError::Invalid(_))
        ));

        // One queue pair, no RSS, for the rate measurement.
        let outcome = port
            .configure_and_start(&PortSetup::default(), pool)
            .unwrap();
        assert_eq!(outcome, RssOutcome::NotRequested);
        let mut q = port.queue(0, 0, pool);
        measure(&mut q);
        drop(q);
        let stats = port.stats();
        assert!(stats.rx_packets > 0 && stats.tx_packets > 0);
        drop(port);
        assert_eq!(pool.in_use(), 0);
    }

    /// Frames per second through `DpdkQueue`'s copy path (recv_burst into Frames, send,
    /// flush) and through raw bursts (rx_burst_raw, tx_burst_raw), on net_null. Printed only.
    fn measure(q: &mut DpdkQueue) {
        let time = Duration::from_millis(500);
        let mut frames: Vec<Frame> = (0..32).map(|_| Frame::new()).collect();
        let start = Instant::now();
        let mut copied = 0u64;
        while start.elapsed() < time {
            for _ in 0..256 {
                let n = q.recv_burst(&mut frames);
                for f in &frames[..n] {
                    let _ = q.send(f.data());
                }
                q.flush();
                copied += n as u64;
            }
        }
        let copy_mpps = copied as f64 / start.elapsed().as_secs_f64() / 1e6;

        let mut raw = [std::ptr::null_mut(); 32];
        let start = Instant::now();
        let mut forwarded = 0u64;
        while start.elapsed() < time {
            for _ in 0..256 {
                let n = q.rx_burst_raw(&mut raw);
                // SAFETY: raw[..n] were just received and are ours.
                let sent = unsafe { q.tx_burst_raw(&mut raw[..n]) };
                for &m in &raw[sent..n] {
                    // SAFETY: the device did not take these; they are still ours.
                    drop(unsafe { Mbuf::from_raw(m) });
                }
                forwarded += n as u64;
            }
        }
        let raw_mpps = forwarded as f64 / start.elapsed().as_secs_f64() / 1e6;
        println!(
            "net_null 64-byte frames, one core: DpdkQueue copy path {copy_mpps:.1} Mpps, raw \
             rx/tx burst {raw_mpps:.1} Mpps ({} build)",
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
        );
    }

    fn check_pcap(eal: &Eal, pool: &Arc<Mempool>, expected: &[Vec<u8>], tx_pcap: &Path) {
        let mut port = EthPort::by_name(eal, "net_pcap0").unwrap();
        assert_eq!(port.driver(), "net_pcap");
        assert_eq!(
            port.configure_and_start(&PortSetup::default(), pool)
                .unwrap(),
            RssOutcome::NotRequested
        );
        let mut q = port.queue(0, 1, pool);
        let got = receive(&mut q, expected.len(), Duration::from_secs(2));
        assert_eq!(got.len(), expected.len(), "frames read from the capture");
        assert_eq!(got, expected, "frames differ from the capture");
        let out: Vec<Vec<u8>> = (0..5).map(|i| frame(0x44, i, 60 + i * 100)).collect();
        send_all(&mut q, &out);
        assert_eq!(q.tx_dropped(), 0);
        assert_eq!(port.stats().tx_packets, 5);
        drop(q);
        drop(port);
        assert_eq!(
            read_pcap(tx_pcap),
            out,
            "frames written to the output capture"
        );
    }

    fn check_vhost_virtio(eal: &Eal, pool: &Arc<Mempool>, sock: &Path) {
        let mut vhost = EthPort::by_name(eal, "net_vhost0").unwrap();
        assert_eq!(vhost.driver(), "net_vhost");
        vhost
            .configure_and_start(&PortSetup::default(), pool)
            .unwrap();
        // The vhost-user socket exists once the vhost port is configured; only then can the
        // virtio side connect, so it is added now rather than on the EAL command line.
        assert!(sock.exists(), "no vhost-user socket at {}", sock.display());
        eal.probe_device(&format!(
            "net_virtio_user0,path={},queues=1",
            sock.display()
        ))
        .unwrap();
        let mut virtio = EthPort::by_name(eal, "net_virtio_user0").unwrap();
        assert_eq!(virtio.driver(), "net_virtio_user");
        virtio
            .configure_and_start(&PortSetup::default(), pool)
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !(vhost.link().up && virtio.link().up) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        println!(
            "vhost link {:?}, virtio-user link {:?}",
            vhost.link(),
            virtio.link()
        );
        assert!(vhost.link().up, "vhost side never saw the virtio device");

        let mut qv = vhost.queue(0, 0, pool);
        let mut qu = virtio.queue(0, 1, pool);
        let to_vhost: Vec<Vec<u8>> = (0..40).map(|i| frame(0x55, i, 60 + i * 37)).collect();
        send_all(&mut qu, &to_vhost);
        assert_eq!(qu.tx_dropped(), 0);
        let got = receive(&mut qv, to_vhost.len(), Duration::from_secs(2));
        assert_eq!(got, to_vhost, "virtio-user -> vhost");
        let to_virtio: Vec<Vec<u8>> = (0..40).map(|i| frame(0x56, i, 1514 - i * 30)).collect();
        send_all(&mut qv, &to_virtio);
        assert_eq!(qv.tx_dropped(), 0);
        let got = receive(&mut qu, to_virtio.len(), Duration::from_secs(2));
        assert_eq!(got, to_virtio, "vhost -> virtio-user");
        let (sv, su) = (vhost.stats(), virtio.stats());
        println!("vhost stats {sv:?}, virtio-user stats {su:?}");
        assert_eq!(sv.rx_packets, 40);
        assert_eq!(su.rx_packets, 40);
        println!(
            "vhost xstats: {:?}",
            vhost.xstats().iter().take(4).collect::<Vec<_>>()
        );
        // The virtio side goes first: it talks to the vhost side while it closes.
        drop(qu);
        drop(virtio);
        drop(qv);
        drop(vhost);
    }

    fn check_af_packet(eal: &Eal, pool: &Arc<Mempool>) {
        if !is_root() {
            println!("SKIPPED (net_af_packet part): not root, cannot open a packet socket");
            return;
        }
        eal.probe_device("net_af_packet0,iface=lo").unwrap();
        let mut port = EthPort::by_name(eal, "net_af_packet0").unwrap();
        assert_eq!(port.driver(), "net_af_packet");
        port.configure_and_start(&PortSetup::default(), pool)
            .unwrap();
        let mut q = port.queue(0, 2, pool);
        let sent: Vec<Vec<u8>> = (0..4).map(|i| frame(0x66, i, 100)).collect();
        send_all(&mut q, &sent);
        // The loopback hands every frame back (other traffic on lo is ignored).
        let mut frames: Vec<Frame> = (0..32).map(|_| Frame::new()).collect();
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        while seen.len() < sent.len() && Instant::now() < deadline {
            let n = q.recv_burst(&mut frames);
            for f in &frames[..n] {
                if sent.iter().any(|s| s[..] == *f.data()) && !seen.contains(&f.data().to_vec()) {
                    seen.push(f.data().to_vec());
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(seen.len(), sent.len(), "frames back from lo");
        assert!(port.stats().tx_packets >= 4);
        println!("net_af_packet on lo: {} frames back", seen.len());
    }
}
