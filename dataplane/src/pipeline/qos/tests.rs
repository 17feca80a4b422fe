//! QoS behaviour of the pipeline with a simulated clock: shaped rate, priority, live rate
//! changes, frame pool accounting, the upstream policer, and the unchanged path of sessions
//! without a rate.

use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use crate::packet::{Frame, PortId};
use crate::pipeline::{
    BURST, DropReason, Pipeline, PipelineConfig, SchedulerConfig, SessionCommand, Verdict,
};
use crate::session::{AccessKey, SessionEntry, SessionIpv6, SessionQos, UsageCounters};
use crate::wire::frame::{L2Header, build_ipv4_udp};
use crate::wire::{EtherType, EthernetAddress, ipv4};

const ACCESS: PortId = 0;
const CORE: PortId = 1;
const GW_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x5e, 0x00, 0x01, 0x01]);
const CORE_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);
const NH_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]);
const SUB_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
const SUB_IP: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 10);
const INTERNET: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);
const SESSION: u64 = 0x77;
const MS: u64 = 1_000_000;
const SEC: u64 = 1_000 * MS;
/// UDP payload of the test frames: IPv4 length 1028 bytes.
const PAYLOAD: usize = 1000;
const IP_LEN: u64 = 28 + PAYLOAD as u64;
const DSCP_EF: u8 = 46;
const DSCP_BE: u8 = 0;

fn cfg() -> PipelineConfig {
    PipelineConfig {
        access_ports: vec![ACCESS],
        core_port: CORE,
        core_mac: CORE_MAC,
        core_ipv4: Ipv4Addr::new(198, 51, 100, 2),
        core_prefix_len: 24,
        next_hop: Ipv4Addr::new(198, 51, 100, 1),
        gateway_mac: GW_MAC,
        redirect_pps: 100,
        arp_retry_ns: SEC,
    }
}

fn sched(max_packets: u32) -> SchedulerConfig {
    SchedulerConfig {
        max_subscribers: 4,
        max_packets,
        class_queue_limit: [64, 256, 256, 256],
        drr_quantum: [0, 4 * 1514, 2 * 1514, 1514],
        port_rate_bps: None,
    }
}

fn session(qos: SessionQos) -> SessionEntry {
    SessionEntry {
        id: SESSION,
        access: AccessKey {
            port: ACCESS,
            svlan: 0,
            cvlan: 100,
            mac: SUB_MAC,
            pppoe_session: 0,
        },
        ipv4: SUB_IP,
        gate_open: true,
        qos,
        mtu: 0,
        mss_clamp: 0,
        acl: crate::acl::NO_ACL,
        counters: UsageCounters::default(),
        ipv6: SessionIpv6::NONE,
    }
}

fn dl(rate_bps: u64) -> SessionQos {
    SessionQos {
        dl_rate_bps: Some(rate_bps),
        ul_rate_bps: None,
    }
}

fn qos_pipeline(qos: SessionQos, max_packets: u32) -> Pipeline {
    let mut p = Pipeline::with_qos(cfg(), 9, sched(max_packets));
    p.set_next_hop_mac(Some(NH_MAC));
    p.apply_at(0, SessionCommand::Upsert(session(qos)));
    p
}

/// A downstream frame to the subscriber with DSCP `dscp`; `seq` goes in the UDP source port.
fn downstream(dscp: u8, seq: u16) -> Vec<u8> {
    let l2 = L2Header {
        dst: CORE_MAC,
        src: NH_MAC,
        svlan: None,
        cvlan: None,
        ethertype: EtherType::Ipv4,
    };
    let mut f = build_ipv4_udp(&l2, INTERNET, SUB_IP, seq, 40000, 64, &[0x5a; PAYLOAD]);
    f[15] = dscp << 2;
    ipv4::fill_checksum(&mut f[14..]);
    f
}

/// An upstream frame from the subscriber (C-VLAN 100).
fn upstream() -> Vec<u8> {
    let l2 = L2Header {
        dst: GW_MAC,
        src: SUB_MAC,
        svlan: None,
        cvlan: Some(100),
        ethertype: EtherType::Ipv4,
    };
    build_ipv4_udp(&l2, SUB_IP, INTERNET, 40000, 53, 64, &[0x5a; PAYLOAD])
}

/// Runs `input` through the pipeline at `now` in one burst; returns the verdicts.
fn offer(p: &mut Pipeline, now: u64, port: PortId, input: &[Vec<u8>]) -> Vec<Verdict> {
    offer_sent(p, now, port, input).0
}

/// Like [`offer`], and also returns the frames forwarded at once (port and bytes, in order).
fn offer_sent(
    p: &mut Pipeline,
    now: u64,
    port: PortId,
    input: &[Vec<u8>],
) -> (Vec<Verdict>, Vec<Sent>) {
    let mut frames: Vec<Frame> = input
        .iter()
        .map(|b| {
            let mut f = Frame::new();
            f.set_data(b).unwrap();
            f.port = port;
            f
        })
        .collect();
    let mut verdicts = vec![Verdict::ToControlPlane; frames.len()];
    p.process_burst(now, &mut frames, &mut verdicts);
    let sent = forwarded(&frames, &verdicts);
    (verdicts, sent)
}

/// The buffers of `bufs` whose verdict is `Forward`: port and bytes, in order.
fn forwarded<B: crate::packet::PacketBuffer>(bufs: &[B], verdicts: &[Verdict]) -> Vec<Sent> {
    bufs.iter()
        .zip(verdicts)
        .filter_map(|(b, v)| match *v {
            Verdict::Forward(port) => Some((port, b.data().to_vec())),
            _ => None,
        })
        .collect()
}

/// One frame the shaper sent: port and bytes.
type Sent = (PortId, Vec<u8>);

fn drain(p: &mut Pipeline, now: u64, budget: usize) -> Vec<Sent> {
    let mut out = Vec::new();
    p.drain_shaped(now, budget, &mut |port, data| {
        out.push((port, data.to_vec()));
        true
    });
    out
}

/// DSCP of a sent (C-VLAN tagged) frame.
fn dscp_of(frame: &[u8]) -> u8 {
    frame[18 + 1] >> 2
}

/// UDP source port (the sequence number) of a sent frame.
fn seq_of(frame: &[u8]) -> u16 {
    u16::from_be_bytes([frame[18 + 20], frame[18 + 21]])
}

/// Offers downstream traffic at twice `rate_bps` in 100 us steps from 0 to `end_ns` and drains
/// like a worker; returns the IPv4 bytes the shaper sent (forwarded at once or drained) in
/// `[from_ns, end_ns)` and the number of frames offered.
fn shaped_bytes(p: &mut Pipeline, rate_bps: u64, from_ns: u64, end_ns: u64) -> (u64, u64) {
    const STEP: u64 = 100_000;
    let frame = downstream(DSCP_BE, 1);
    // Offered packets per step, in 1/1000 packet, to reach twice the rate.
    let per_step_milli = 2 * rate_bps * STEP / (IP_LEN * 8) * 1000 / SEC;
    let (mut credit, mut sent, mut offered) = (0u64, 0u64, 0u64);
    let mut now = 0;
    while now < end_ns {
        credit += per_step_milli;
        let n = (credit / 1000) as usize;
        credit %= 1000;
        offered += n as u64;
        for chunk in 0..n.div_ceil(BURST) {
            let k = (n - chunk * BURST).min(BURST);
            let (_, out) = offer_sent(p, now, CORE, &vec![frame.clone(); k]);
            if now >= from_ns {
                sent += out.len() as u64 * IP_LEN;
            }
        }
        loop {
            let out = drain(p, now, BURST);
            if now >= from_ns {
                sent += out.len() as u64 * IP_LEN;
            }
            if out.len() < BURST {
                break;
            }
        }
        now += STEP;
    }
    (sent, offered)
}

#[test]
fn shaped_output_is_within_one_percent_of_the_rate() {
    for rate in [1_000_000, 10_000_000, 100_000_000, 1_000_000_000] {
        let mut p = qos_pipeline(dl(rate), 1024);
        // Measure one simulated second after 100 ms, once the initial burst is spent.
        let (bytes, offered) = shaped_bytes(&mut p, rate, 100 * MS, 1100 * MS);
        let measured = bytes * 8;
        let err = measured.abs_diff(rate) as f64 / rate as f64;
        assert!(err <= 0.01, "rate {rate}: measured {measured} bit/s");
        // Offered twice the rate: every frame was sent, dropped at the full queue (and
        // counted) or is still queued.
        let stats = p.qos_stats().next().unwrap();
        let c = stats.classes.unwrap()[3];
        assert_eq!(
            c.conformed_packets + c.dropped_packets + u64::from(c.depth_packets),
            offered
        );
        assert_eq!(u64::from(p.shaped_backlog()), u64::from(c.depth_packets));
        assert!(c.exceeded_packets > 0);
        assert_eq!(
            p.counters().drop_count(DropReason::QosQueueFull),
            c.dropped_packets
        );
        if rate >= 10_000_000 {
            // 1.1 s of 10 Mbit/s excess overflows the 256-frame queue.
            assert!(c.dropped_packets > 0);
        }
        let classes = stats.classes.unwrap();
        // Usage counts what left the shaper.
        let usage = p.session_counters(SESSION).unwrap();
        assert_eq!(usage.dl_packets, classes[3].conformed_packets);
        assert_eq!(usage.dl_bytes, classes[3].conformed_bytes);
    }
}

#[test]
fn a_port_buffer_is_copied_into_the_shaper_and_stays_with_its_owner() {
    use crate::packet::PacketBuffer;
    use crate::pipeline::tests::PortBuffer;
    let mut on_frames = qos_pipeline(dl(10_000_000), 64);
    let mut on_buffers = qos_pipeline(dl(10_000_000), 64);
    let input: Vec<Vec<u8>> = (0..8).map(|i| downstream(DSCP_BE, i)).collect();
    let (want_verdicts, mut want) = offer_sent(&mut on_frames, 0, CORE, &input);
    want.extend(drain(&mut on_frames, MS, BURST));
    let mut bufs: Vec<PortBuffer> = input
        .iter()
        .map(|b| PortBuffer::new(CORE, b, crate::packet::HEADROOM))
        .collect();
    let mut verdicts = vec![Verdict::ToControlPlane; bufs.len()];
    on_buffers.process_burst(0, &mut bufs, &mut verdicts);
    assert_eq!(verdicts, want_verdicts);
    assert_eq!(verdicts[6..], [Verdict::Queued; 2]);
    let mut got = forwarded(&bufs, &verdicts);
    // A queued buffer was copied: its owner still holds the (rewritten) bytes.
    assert_eq!(bufs[6].data().len(), want[6].1.len());
    got.extend(drain(&mut on_buffers, MS, BURST));
    assert_eq!(got, want);
    assert_eq!(on_buffers.counters(), on_frames.counters());
    assert_eq!(on_buffers.qos_pool(), on_frames.qos_pool());
}

#[test]
fn shaped_frames_are_rewritten_and_leave_on_the_access_port() {
    let mut p = qos_pipeline(dl(10_000_000), 64);
    // The default burst at 10 Mbit/s (6250 bytes) holds six frames: they leave at once
    // through the conformant fast path; the seventh waits for tokens in the shaper.
    let input: Vec<Vec<u8>> = (0..7).map(|i| downstream(DSCP_BE, 7 + i)).collect();
    let (v, mut out) = offer_sent(&mut p, 0, CORE, &input);
    assert_eq!(v[..6], [Verdict::Forward(ACCESS); 6]);
    assert_eq!(v[6], Verdict::Queued);
    assert_eq!(p.shaped_backlog(), 1);
    assert_eq!(p.qos_pool(), Some((63, 64)));
    assert!(drain(&mut p, 0, BURST).is_empty());
    out.extend(drain(&mut p, MS, BURST));
    assert_eq!(out.len(), 7);
    for (i, (port, f)) in out.iter().enumerate() {
        assert_eq!(*port, ACCESS);
        assert_eq!(&f[..6], &SUB_MAC.0);
        assert_eq!(&f[6..12], &GW_MAC.0);
        assert_eq!(&f[12..16], &[0x81, 0x00, 0x00, 100]);
        assert_eq!(f[18 + 8], 63, "TTL decremented");
        assert!(ipv4::verify_checksum(&f[18..]));
        assert_eq!(usize::from(seq_of(f)), 7 + i);
    }
    assert_eq!(p.qos_pool(), Some((64, 64)));
    // The caller transmits forwarded frames; the drain transmits (and counts) the queued one.
    assert_eq!(p.counters().ports[usize::from(ACCESS)].tx_packets, 1);
    assert_eq!(p.counters().dl_forwarded, 7);
    let c = p.qos_stats().next().unwrap().classes.unwrap()[3];
    assert_eq!((c.conformed_packets, c.exceeded_packets), (7, 1));
}

#[test]
fn expedited_keeps_its_latency_while_bulk_saturates() {
    let rate = 10_000_000;
    let mut p = qos_pipeline(dl(rate), 1024);
    // 300 ms of bulk at twice the rate: the queue is full and the bucket empty.
    shaped_bytes(&mut p, rate, 0, 300 * MS);
    assert_eq!(p.shaped_backlog(), 256);
    let t = 300 * MS;
    offer(
        &mut p,
        t,
        CORE,
        &[downstream(DSCP_BE, 1), downstream(DSCP_EF, 2)],
    );
    // The EF frame is the next one out, as soon as the bucket holds one frame's tokens:
    // within one frame time at the rate (plus the wheel's 1.024 us tick).
    let frame_ns = IP_LEN * 8 * SEC / rate;
    let mut now = t;
    loop {
        let out = drain(&mut p, now, 1);
        if let Some((_, f)) = out.first() {
            assert_eq!(dscp_of(f), DSCP_EF, "bulk frame left before the EF frame");
            assert_eq!(seq_of(f), 2);
            break;
        }
        now = p.shaper_next_wakeup_ns().unwrap().max(now + 1);
        assert!(
            now <= t + frame_ns + 2_048,
            "EF frame still waiting at {now}"
        );
    }
    assert!(p.shaped_backlog() > 0, "bulk still queued behind it");
}

#[test]
fn live_rate_change_keeps_the_queue_and_applies_the_new_rate() {
    let mut p = qos_pipeline(dl(1_000_000), 1024);
    let input: Vec<Vec<u8>> = (0..100).map(|i| downstream(DSCP_BE, i)).collect();
    let mut sent = Vec::new();
    for chunk in input.chunks(BURST) {
        let (v, out) = offer_sent(&mut p, 0, CORE, chunk);
        assert!(
            v.iter()
                .all(|v| matches!(v, Verdict::Queued | Verdict::Forward(ACCESS)))
        );
        sent.extend(out);
    }
    // The full bucket (3028 bytes) let two frames through at once.
    assert_eq!(sent.len(), 2);
    sent.extend(drain(&mut p, 0, BURST));
    let queued = p.shaped_backlog();
    assert_eq!(queued as usize, 100 - sent.len());

    // 20 Mbit/s from t = 1 ms: nothing lost, the queue drains at the new rate.
    let t = MS;
    p.apply_at(t, SessionCommand::Upsert(session(dl(20_000_000))));
    assert_eq!(p.shaped_backlog(), queued);
    let mut now = t;
    while p.shaped_backlog() > 0 {
        sent.extend(drain(&mut p, now, BURST));
        now += 10_000;
    }
    let seqs: Vec<u16> = sent.iter().map(|(_, f)| seq_of(f)).collect();
    assert_eq!(seqs, (0..100).collect::<Vec<u16>>(), "all sent, in order");
    // Bucket full at the change (burst 3028 bytes, two frames at most), the rest at 20
    // Mbit/s: 1028 bytes each 411 us, so about 95 frames take ~39 ms, not ~780 ms at 1 Mbit/s.
    let elapsed = now - t;
    let expected = (queued as u64 - 2) * IP_LEN * 8 * SEC / 20_000_000;
    assert!(
        elapsed.abs_diff(expected) < 2 * MS,
        "drained in {elapsed} ns, expected ~{expected}"
    );
    let stats = p.qos_stats().next().unwrap();
    assert_eq!(stats.qos, dl(20_000_000));
    assert_eq!(p.qos_pool(), Some((1024, 1024)));
}

#[test]
fn lifting_the_limit_drains_in_order_then_bypasses() {
    let mut p = qos_pipeline(dl(1_000_000), 1024);
    let input: Vec<Vec<u8>> = (0..20).map(|i| downstream(DSCP_BE, i)).collect();
    let (_, mut sent) = offer_sent(&mut p, 0, CORE, &input);
    sent.extend(drain(&mut p, 0, BURST));
    assert!(p.shaped_backlog() > 10);
    // MBR ul=0, dl=0: unlimited. Queued frames stay, new ones queue behind them.
    p.apply_at(MS, SessionCommand::Upsert(session(SessionQos::UNLIMITED)));
    assert_eq!(
        offer(&mut p, MS, CORE, &[downstream(DSCP_BE, 20)]),
        [Verdict::Queued]
    );
    sent.extend(drain(&mut p, MS, BURST));
    let seqs: Vec<u16> = sent.iter().map(|(_, f)| seq_of(f)).collect();
    assert_eq!(seqs, (0..21).collect::<Vec<u16>>());
    assert_eq!(p.shaped_backlog(), 0);
    // Drained: the session left the scheduler and forwards directly.
    assert!(matches!(
        offer(&mut p, MS, CORE, &[downstream(DSCP_BE, 21)])[..],
        [Verdict::Forward(ACCESS)]
    ));
    let stats = p.qos_stats().next().unwrap();
    assert_eq!(stats.classes, None);
    assert_eq!(p.qos_pool(), Some((1024, 1024)));
}

#[test]
fn removal_frees_the_pooled_frames() {
    let mut p = qos_pipeline(dl(1_000_000), 128);
    let input: Vec<Vec<u8>> = (0..BURST as u16).map(|i| downstream(DSCP_BE, i)).collect();
    offer(&mut p, 0, CORE, &input);
    offer(&mut p, 0, CORE, &input);
    // Two frames left at once with the full bucket; 62 wait in the pool.
    assert_eq!(p.shaped_backlog(), 62);
    assert_eq!(p.qos_pool(), Some((66, 128)));
    let usage = p.apply_at(MS, SessionCommand::Remove(SESSION)).unwrap();
    assert_eq!((usage.dl_packets, usage.dl_bytes), (2, 2 * IP_LEN));
    assert_eq!(p.shaped_backlog(), 0);
    assert_eq!(p.qos_pool(), Some((128, 128)));
    assert_eq!(p.counters().drop_count(DropReason::NoSession), 62);
    assert_eq!(p.qos_stats().count(), 0);
    assert!(drain(&mut p, SEC, BURST).is_empty());
    // The shaper is free for the next session.
    p.apply_at(SEC, SessionCommand::Upsert(session(dl(1_000_000))));
    assert_eq!(
        offer(&mut p, SEC, CORE, &[downstream(DSCP_BE, 1)]),
        [Verdict::Forward(ACCESS)]
    );
    let c = p.qos_stats().next().unwrap().classes.unwrap()[3];
    assert_eq!(c.conformed_packets, 1, "a fresh shaper with a full bucket");
}

#[test]
fn full_queue_and_full_pool_drop_and_count() {
    // Class 0 holds 64 packets.
    let mut p = qos_pipeline(dl(1_000_000), 1024);
    let ef: Vec<Vec<u8>> = (0..BURST as u16).map(|i| downstream(DSCP_EF, i)).collect();
    let mut verdicts = Vec::new();
    for _ in 0..3 {
        verdicts.extend(offer(&mut p, 0, CORE, &ef));
    }
    let queued = verdicts.iter().filter(|v| **v == Verdict::Queued).count();
    assert_eq!(queued, 64);
    // The bucket's burst (two frames) left at once.
    let forwarded = verdicts
        .iter()
        .filter(|v| **v == Verdict::Forward(ACCESS))
        .count();
    assert_eq!(forwarded, 2);
    assert_eq!(
        verdicts.len() - queued - forwarded,
        p.counters().drop_count(DropReason::QosQueueFull) as usize
    );
    let classes = p.qos_stats().next().unwrap().classes.unwrap();
    assert_eq!(classes[0].dropped_packets, 30);
    assert_eq!(classes[0].depth_packets, 64);

    // A pool of 40 frames runs out before the best-effort queue (256) does.
    let mut p = qos_pipeline(dl(1_000_000), 40);
    let be: Vec<Vec<u8>> = (0..BURST as u16).map(|i| downstream(DSCP_BE, i)).collect();
    // Two frames leave at once, 30 are queued.
    offer(&mut p, 0, CORE, &be);
    let v = offer(&mut p, 0, CORE, &be);
    assert_eq!(v.iter().filter(|v| **v == Verdict::Queued).count(), 10);
    assert_eq!(p.qos_pool(), Some((0, 40)));
    let classes = p.qos_stats().next().unwrap().classes.unwrap();
    assert_eq!(classes[3].dropped_packets, 22);
    assert_eq!(p.counters().drop_count(DropReason::QosQueueFull), 22);
}

#[test]
fn upstream_policer_drops_above_the_rate_and_counts() {
    let rate = 1_000_000;
    let mut p = qos_pipeline(
        SessionQos {
            dl_rate_bps: None,
            ul_rate_bps: Some(rate),
        },
        64,
    );
    // 2 Mbit/s offered for one simulated second, one frame every 4.112 ms.
    let frame = upstream();
    let gap = IP_LEN * 8 * SEC / (2 * rate);
    let (mut passed, mut policed) = (0u64, 0u64);
    let mut now = 0;
    while now < SEC {
        match offer(&mut p, now, ACCESS, core::slice::from_ref(&frame))[..] {
            [Verdict::Forward(CORE)] => passed += 1,
            [Verdict::Drop(DropReason::Policed)] => policed += 1,
            ref other => panic!("unexpected {other:?}"),
        }
        now += gap;
    }
    // srTCM colour-blind: CIR bytes per second plus CBS + EBS (100 ms at the rate each).
    let burst = u64::from(super::policer_burst_bytes(rate));
    assert_eq!(burst, rate / 8 / 10);
    let allowed = (rate / 8 + 2 * burst) / IP_LEN;
    assert!(
        passed.abs_diff(allowed) <= 1,
        "passed {passed}, expected ~{allowed}"
    );
    assert_eq!(p.counters().drop_count(DropReason::Policed), policed);
    let stats = p.qos_stats().next().unwrap();
    assert_eq!(stats.policed_packets, policed);
    assert_eq!(stats.policer_passed_packets, passed);
    assert_eq!(stats.classes, None, "no downlink rate, no shaper");
    assert_eq!(p.session_counters(SESSION).unwrap().ul_packets, passed);
    // Downstream is not shaped.
    assert!(matches!(
        offer(&mut p, now, CORE, &[downstream(DSCP_BE, 1)])[..],
        [Verdict::Forward(ACCESS)]
    ));
    // A higher rate applies live.
    p.apply_at(
        now,
        SessionCommand::Upsert(session(SessionQos {
            dl_rate_bps: None,
            ul_rate_bps: Some(100_000_000),
        })),
    );
    let later = now + 100 * MS;
    let v = offer(&mut p, later, ACCESS, &vec![frame; 8]);
    assert!(v.iter().all(|v| *v == Verdict::Forward(CORE)), "{v:?}");
}

#[test]
fn sessions_without_a_rate_forward_as_before() {
    let unlimited = session(SessionQos::UNLIMITED);
    let rated = session(SessionQos {
        dl_rate_bps: Some(1_000_000),
        ul_rate_bps: Some(1_000_000),
    });
    let mut plain = Pipeline::new(cfg(), 9);
    plain.set_next_hop_mac(Some(NH_MAC));
    plain.apply(SessionCommand::Upsert(unlimited));
    let mut with_qos = qos_pipeline(SessionQos::UNLIMITED, 64);
    // Without QoS even a rated session forwards at once.
    let mut ignoring = Pipeline::new(cfg(), 9);
    ignoring.set_next_hop_mac(Some(NH_MAC));
    ignoring.apply(SessionCommand::Upsert(rated));
    for p in [&mut plain, &mut with_qos, &mut ignoring] {
        let mut frames = [Frame::new(), Frame::new()];
        frames[0].set_data(&downstream(DSCP_EF, 1)).unwrap();
        frames[0].port = CORE;
        frames[1].set_data(&upstream()).unwrap();
        frames[1].port = ACCESS;
        let mut v = [Verdict::Queued; 2];
        p.process_burst(0, &mut frames, &mut v);
        assert_eq!(v, [Verdict::Forward(ACCESS), Verdict::Forward(CORE)]);
        assert_eq!(p.shaped_backlog(), 0);
        assert_eq!(p.qos_stats().count(), 0);
        assert!(drain(p, SEC, BURST).is_empty());
    }
    assert_eq!(ignoring.qos_pool(), None);
    assert_eq!(ignoring.shaper_next_wakeup_ns(), None);
}

#[test]
fn shapers_beyond_the_limit_leave_sessions_unshaped() {
    let mut p = qos_pipeline(dl(1_000_000), 64);
    // sched() allows 4 shaped sessions; the first is SESSION.
    for n in 1..=4u8 {
        let mut e = session(dl(1_000_000));
        e.id = SESSION + u64::from(n);
        e.access.cvlan = 100 + u16::from(n);
        e.ipv4 = Ipv4Addr::new(100, 64, 1, n);
        p.apply_at(0, SessionCommand::Upsert(e));
    }
    assert_eq!(p.counters().qos_unshaped, 1);
    assert_eq!(p.session_count(), 5);
    // Freeing one lets the next upsert of the unshaped session take it.
    p.apply_at(0, SessionCommand::Remove(SESSION));
    let mut e = session(dl(2_000_000));
    e.id = SESSION + 4;
    e.access.cvlan = 104;
    e.ipv4 = Ipv4Addr::new(100, 64, 1, 4);
    p.apply_at(0, SessionCommand::Upsert(e));
    let shaped = p.qos_stats().filter(|s| s.classes.is_some()).count();
    assert_eq!(shaped, 4);
}

#[test]
fn next_wakeup_tells_when_a_waiting_subscriber_may_send() {
    let rate = 1_000_000;
    let mut p = qos_pipeline(dl(rate), 64);
    assert_eq!(p.shaper_next_wakeup_ns(), None, "no backlog");
    let input: Vec<Vec<u8>> = (0..5).map(|i| downstream(DSCP_BE, i)).collect();
    // The full bucket (3028 bytes) lets two frames through at once.
    let v = offer(&mut p, 0, CORE, &input);
    assert_eq!(v[..2], [Verdict::Forward(ACCESS); 2]);
    assert_eq!(v[2..], [Verdict::Queued; 3]);
    assert!(drain(&mut p, 0, BURST).is_empty());
    let t = p.shaper_next_wakeup_ns().expect("frames wait for tokens");
    // 1028 - (3028 - 2056) = 56 bytes missing: 448 us at 1 Mbit/s (rounded up to a tick).
    assert!((448_000..=448_000 + 1_024).contains(&t), "{t}");
    assert!(drain(&mut p, t - 2_048, BURST).is_empty(), "not before");
    assert_eq!(drain(&mut p, t, BURST).len(), 1);
}

#[test]
fn under_rate_traffic_is_forwarded_at_once_and_counted_conformed() {
    let rate = 10_000_000;
    let mut p = qos_pipeline(dl(rate), 64);
    // One frame every 2 ms (4.1 Mbit/s) for one second, two classes.
    let mut now = 0;
    let mut n = 0u64;
    while now < SEC {
        let dscp = if n.is_multiple_of(4) {
            DSCP_EF
        } else {
            DSCP_BE
        };
        let (v, out) = offer_sent(&mut p, now, CORE, &[downstream(dscp, n as u16)]);
        assert_eq!(v, [Verdict::Forward(ACCESS)], "frame {n} at {now}");
        let f = &out[0].1;
        assert_eq!(&f[..6], &SUB_MAC.0);
        assert_eq!(&f[12..16], &[0x81, 0x00, 0x00, 100]);
        assert_eq!(f[18 + 8], 63, "TTL decremented");
        assert!(ipv4::verify_checksum(&f[18..]));
        assert_eq!(dscp_of(f), dscp);
        assert!(drain(&mut p, now, BURST).is_empty());
        n += 1;
        now += 2 * MS;
    }
    assert_eq!(p.shaped_backlog(), 0);
    assert_eq!(p.qos_pool(), Some((64, 64)), "the pool was never touched");
    let c = p.qos_stats().next().unwrap().classes.unwrap();
    let ef = n.div_ceil(4);
    assert_eq!(
        (c[0].conformed_packets, c[0].conformed_bytes),
        (ef, ef * IP_LEN)
    );
    assert_eq!(
        (c[3].conformed_packets, c[3].conformed_bytes),
        (n - ef, (n - ef) * IP_LEN)
    );
    assert!(
        c.iter()
            .all(|k| k.exceeded_packets == 0 && k.dropped_packets == 0)
    );
    let usage = p.session_counters(SESSION).unwrap();
    assert_eq!((usage.dl_packets, usage.dl_bytes), (n, n * IP_LEN));
    assert_eq!(p.counters().dl_forwarded, n);
}

#[test]
fn above_rate_queues_and_order_is_kept_across_the_fast_path() {
    // 1 Mbit/s (burst 3028 bytes, 1028-byte frames). Bursts above the rate at 0, 400 ms
    // and 800 ms, one frame every 20 ms (411 kbit/s) in between: frames go from the fast
    // path to the queue and back, and leave in the order they came.
    let mut p = qos_pipeline(dl(1_000_000), 64);
    let (mut sent, mut seq) = (Vec::new(), 0u16);
    let (mut forwarded, mut queued) = (0, 0);
    let mut now = 0;
    while now < 1200 * MS {
        let k = if now.is_multiple_of(400 * MS) {
            6
        } else if now.is_multiple_of(20 * MS) {
            1
        } else {
            0
        };
        if k > 0 {
            let input: Vec<Vec<u8>> = (seq..seq + k).map(|i| downstream(DSCP_BE, i)).collect();
            seq += k;
            let (v, out) = offer_sent(&mut p, now, CORE, &input);
            for v in &v {
                match v {
                    Verdict::Forward(ACCESS) => forwarded += 1,
                    Verdict::Queued => queued += 1,
                    other => panic!("unexpected {other:?}"),
                }
            }
            sent.extend(out);
        }
        sent.extend(drain(&mut p, now, BURST));
        now += MS;
    }
    assert!(
        forwarded > 20 && queued > 10,
        "{forwarded} forwarded, {queued} queued"
    );
    assert_eq!(p.shaped_backlog(), 0);
    let seqs: Vec<u16> = sent.iter().map(|(_, f)| seq_of(f)).collect();
    assert_eq!(seqs, (0..seq).collect::<Vec<u16>>(), "all sent, in order");
    let c = p.qos_stats().next().unwrap().classes.unwrap()[3];
    assert_eq!(c.conformed_packets, u64::from(seq));
    assert!(c.exceeded_packets > 0 && c.exceeded_packets <= queued);
    let usage = p.session_counters(SESSION).unwrap();
    assert_eq!(usage.dl_packets, u64::from(seq));
}
