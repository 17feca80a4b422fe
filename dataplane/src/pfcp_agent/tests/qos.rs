//! QER MBR -> [`SessionQos`]: at establishment and live through Update QER, down to the
//! worker's pipeline (a QoS pipeline shapes the session's downstream traffic).

use super::*;
use crate::pipeline::SchedulerConfig;
use crate::session::SessionQos;
use vbng_cups::pfcp::Mbr;

/// The contract's establishment with an MBR of `ul`/`dl` kbit/s on its QER.
fn establishment_with_mbr(ul_kbps: u64, dl_kbps: u64) -> SessionEstablishmentRequest {
    ipoe::establishment_request(&IpoeSession {
        rate: Some(Mbr { ul_kbps, dl_kbps }),
        ..subscriber()
    })
}

fn establish(a: &mut PfcpAgent, b: &mut PipelineBackend, req: SessionEstablishmentRequest) -> u64 {
    associate(a, b);
    let (_, resp) = exchange(a, b, &Message::SessionEstablishmentRequest(req), 2, Some(0));
    let Message::SessionEstablishmentResponse(r) = resp else {
        panic!("unexpected {resp:?}");
    };
    assert_eq!(r.cause, Cause::RequestAccepted);
    r.up_f_seid.expect("UP F-SEID").seid
}

/// Sends an Update QER for QER 1 and checks it was accepted.
fn update_qer(
    a: &mut PfcpAgent,
    b: &mut PipelineBackend,
    seid: u64,
    seq: u32,
    gate_status: Option<GateStatus>,
    mbr: Option<Mbr>,
) {
    let m = Message::SessionModificationRequest(ipoe::modify_qer_request(gate_status, mbr));
    let (_, resp) = exchange(a, b, &m, seq, Some(seid));
    assert!(
        matches!(resp, Message::SessionModificationResponse(ref r) if r.cause == Cause::RequestAccepted),
        "{resp:?}"
    );
}

/// The qos of the last entry the agent handed to the worker.
fn last_upsert_qos(b: &PipelineBackend) -> SessionQos {
    match b.log.last() {
        Some(SessionCommand::Upsert(e)) => e.qos,
        other => panic!("expected an upsert, found {other:?}"),
    }
}

const RATED: SessionQos = SessionQos {
    dl_rate_bps: Some(10_000_000),
    ul_rate_bps: Some(5_000_000),
};

#[test]
fn mbr_at_establishment_reaches_the_worker() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    let seid = establish(&mut a, &mut b, establishment_with_mbr(5_000, 10_000));
    assert_eq!(last_upsert_qos(&b), RATED);
    assert_eq!(b.pipeline.sessions().get(seid).unwrap().qos, RATED);
    assert_eq!(a.session(seid).unwrap().qos, RATED);
    // Without an MBR the session is unlimited, as before.
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    let seid = establish(&mut a, &mut b, establishment());
    assert_eq!(
        b.pipeline.sessions().get(seid).unwrap().qos,
        SessionQos::UNLIMITED
    );
}

#[test]
fn update_qer_changes_the_rate_live() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    let seid = establish(&mut a, &mut b, establishment_with_mbr(5_000, 10_000));
    let faster = SessionQos {
        dl_rate_bps: Some(20_000_000),
        ul_rate_bps: Some(20_000_000),
    };
    update_qer(
        &mut a,
        &mut b,
        seid,
        3,
        None,
        Some(Mbr {
            ul_kbps: 20_000,
            dl_kbps: 20_000,
        }),
    );
    assert_eq!(last_upsert_qos(&b), faster);
    assert_eq!(b.pipeline.sessions().get(seid).unwrap().qos, faster);

    // An Update QER without MBR (gate only) leaves the rate unchanged.
    update_qer(&mut a, &mut b, seid, 4, Some(GateStatus::CLOSED), None);
    let e = b.pipeline.sessions().get(seid).unwrap();
    assert!(!e.gate_open);
    assert_eq!(e.qos, faster);
    update_qer(&mut a, &mut b, seid, 5, Some(GateStatus::OPEN), None);

    // MBR ul=0, dl=0 lifts the limit.
    update_qer(
        &mut a,
        &mut b,
        seid,
        6,
        None,
        Some(Mbr {
            ul_kbps: 0,
            dl_kbps: 0,
        }),
    );
    assert_eq!(last_upsert_qos(&b), SessionQos::UNLIMITED);
    assert_eq!(
        b.pipeline.sessions().get(seid).unwrap().qos,
        SessionQos::UNLIMITED
    );
    // The same MBR again changes nothing: no command for the worker.
    let commands = b.log.len();
    update_qer(
        &mut a,
        &mut b,
        seid,
        7,
        None,
        Some(Mbr {
            ul_kbps: 0,
            dl_kbps: 0,
        }),
    );
    assert_eq!(b.log.len(), commands);
}

#[test]
fn a_qos_worker_shapes_the_established_rate_and_follows_updates() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    let pcfg = b.pipeline.config().clone();
    b.pipeline = Pipeline::with_qos(
        pcfg,
        1,
        SchedulerConfig {
            max_subscribers: 8,
            max_packets: 64,
            ..SchedulerConfig::default()
        },
    );
    let seid = establish(&mut a, &mut b, establishment_with_mbr(5_000, 10_000));
    // Upstream policed but within its burst; downstream within the shaper's bucket leaves
    // at once (the conformant fast path).
    assert_eq!(b.traffic(100), [Verdict::Forward(2), Verdict::Forward(1)]);
    // Beyond the downlink burst (6250 bytes at 10 Mbit/s) downstream frames queue.
    let down: Vec<Verdict> = (0..5).map(|_| b.traffic(1400)[1]).collect();
    assert_eq!(
        down,
        [[Verdict::Forward(1); 4].as_slice(), &[Verdict::Queued]].concat()
    );
    let stats: Vec<_> = b.pipeline.qos_stats().collect();
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].id, seid);
    assert_eq!(stats[0].qos, RATED);
    assert_eq!(b.pipeline.shaped_backlog(), 1);

    // Lifted live: the queued frame stays until drained, then traffic bypasses the shaper.
    update_qer(
        &mut a,
        &mut b,
        seid,
        3,
        None,
        Some(Mbr {
            ul_kbps: 0,
            dl_kbps: 0,
        }),
    );
    assert_eq!(b.pipeline.shaped_backlog(), 1);
    let mut sent = Vec::new();
    b.pipeline.drain_shaped(0, 32, &mut |port, data| {
        sent.push((port, data.len()));
        true
    });
    assert_eq!(sent, [(1, 18 + 1428)]);
    assert_eq!(b.traffic(100), [Verdict::Forward(2), Verdict::Forward(1)]);

    // Deleting the session frees everything.
    let del = Message::SessionDeletionRequest(SessionDeletionRequest {});
    exchange(&mut a, &mut b, &del, 4, Some(seid));
    assert_eq!(b.pipeline.qos_pool(), Some((64, 64)));
    assert_eq!(b.pipeline.qos_stats().count(), 0);
}

#[test]
fn mbr_translation_is_kbps_times_1000_and_zero_is_unlimited() {
    assert_eq!(apply_mbr(None, 0), None);
    assert_eq!(apply_mbr(None, 10_000), Some(10_000_000));
    assert_eq!(apply_mbr(Some(5_000_000), 10_000), Some(5_000_000));
    assert_eq!(apply_mbr(Some(50_000_000), 10_000), Some(10_000_000));
    assert_eq!(apply_mbr(Some(7), 0), Some(7));
    // The largest 40-bit MBR (about 1.1 Pbit/s) does not overflow.
    let max = (1u64 << 40) - 1;
    assert_eq!(apply_mbr(None, max), Some(max * 1000));
    assert_eq!(apply_mbr(None, u64::MAX), Some(u64::MAX));
}
