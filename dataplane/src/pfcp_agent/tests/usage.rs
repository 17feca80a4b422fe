//! Usage on demand: Query URR and QAURR in a Session Modification Request are answered with
//! immediate usage reports of the worker's live counters, without disturbing the session.

use super::*;
use vbng_cups::pfcp::{CreateUrr, PfcpSmReqFlags, ReportingTriggers, UsageReport};

/// The single report of an accepted query.
fn one_report(r: &SessionModificationResponse) -> UsageReport {
    assert_eq!(r.cause, Cause::RequestAccepted);
    assert_eq!(r.usage_reports.len(), 1, "{r:?}");
    r.usage_reports[0]
}

fn volume_of(c: UsageCounters) -> Option<VolumeMeasurement> {
    Some(VolumeMeasurement::from_counters(
        c.ul_packets,
        c.ul_bytes,
        c.dl_packets,
        c.dl_bytes,
    ))
}

#[test]
fn query_urr_reports_live_counters_that_rise_with_traffic() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    let seid = established(&mut a, &mut b);
    a.drain_events();
    b.log.clear();

    // Nothing forwarded yet: a report of zero.
    let r = one_report(&modify(
        &mut a,
        &mut b,
        ipoe::query_usage_request(),
        3,
        seid,
    ));
    assert_eq!((r.urr_id, r.ur_seqn), (ipoe::URR_ID, 0));
    assert_eq!(r.trigger, UsageReportTrigger::IMMER);
    assert_eq!(r.volume, volume_of(UsageCounters::default()));

    // One packet each way (IPv4 length 128), then the next query sees exactly them.
    assert_eq!(b.traffic(100), [Verdict::Forward(2), Verdict::Forward(1)]);
    let after_one = b.pipeline.session_counters(seid).unwrap();
    assert_eq!((after_one.ul_packets, after_one.dl_packets), (1, 1));
    let r = one_report(&modify(
        &mut a,
        &mut b,
        ipoe::query_usage_request(),
        4,
        seid,
    ));
    assert_eq!(r.ur_seqn, 1, "UR-SEQN counts the URR's reports");
    assert_eq!(r.volume, volume_of(after_one));
    assert!(r.volume.unwrap().ul_bytes > 0 && r.volume.unwrap().dl_bytes > 0);

    // The session kept forwarding; counters are cumulative across reports.
    assert_eq!(b.traffic(100), [Verdict::Forward(2), Verdict::Forward(1)]);
    let r = one_report(&modify(
        &mut a,
        &mut b,
        ipoe::query_usage_request(),
        5,
        seid,
    ));
    let v = r.volume.unwrap();
    assert_eq!((r.ur_seqn, v.ul_packets, v.dl_packets), (2, 2, 2));
    assert_eq!(v.ul_bytes, 2 * after_one.ul_bytes);
    assert_eq!(v.total_bytes, v.ul_bytes + v.dl_bytes);

    // Queries read counters only: no command reached the worker, no log line per query.
    assert!(b.log.is_empty(), "{:?}", b.log);
    assert_eq!(b.queried, vec![seid; 3]);
    assert!(a.drain_events().is_empty());
    assert_eq!(a.stats().usage_queries, 3);

    // The final report continues the numbering and holds the same running total.
    let del = Message::SessionDeletionRequest(SessionDeletionRequest {});
    let (_, resp) = exchange(&mut a, &mut b, &del, 6, Some(seid));
    let Message::SessionDeletionResponse(d) = resp else {
        panic!("unexpected {resp:?}");
    };
    assert_eq!(d.usage_reports.len(), 1);
    let fin = d.usage_reports[0];
    assert_eq!((fin.ur_seqn, fin.trigger), (3, UsageReportTrigger::TERMR));
    assert_eq!(fin.volume, r.volume);
}

#[test]
fn qaurr_reports_every_urr_after_the_modification() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    let seid = established(&mut a, &mut b);
    b.traffic(10);
    let counters = b.pipeline.session_counters(seid).unwrap();
    // Adds a second volume URR and a duration-only URR, and asks for all of them.
    let req = SessionModificationRequest {
        create_urrs: vec![
            CreateUrr {
                urr_id: 2,
                measurement_method: MeasurementMethod::VOLUM,
                reporting_triggers: ReportingTriggers::empty(),
                measurement_period: None,
            },
            CreateUrr {
                urr_id: 3,
                measurement_method: MeasurementMethod::DURAT,
                reporting_triggers: ReportingTriggers::empty(),
                measurement_period: None,
            },
        ],
        flags: Some(PfcpSmReqFlags::QAURR),
        ..Default::default()
    };
    let r = modify(&mut a, &mut b, req, 3, seid);
    assert_eq!(r.cause, Cause::RequestAccepted);
    let got: Vec<_> = r
        .usage_reports
        .iter()
        .map(|u| (u.urr_id, u.ur_seqn, u.trigger, u.volume))
        .collect();
    let imm = UsageReportTrigger::IMMER;
    assert_eq!(
        got,
        vec![
            (1, 0, imm, volume_of(counters)),
            (2, 0, imm, volume_of(counters)),
            // Nothing this user plane measures for a duration-only URR.
            (3, 0, imm, None),
        ]
    );
    // Not query-only: the change is logged.
    assert!(
        a.drain_events()
            .iter()
            .any(|e| matches!(e, AgentEvent::SessionModified { .. }))
    );

    // Query URR naming URR 2 twice (and QAURR clear): one report, the URR's second.
    let req = SessionModificationRequest {
        query_urrs: vec![2, 2],
        flags: Some(PfcpSmReqFlags::empty()),
        ..Default::default()
    };
    let r = one_report(&modify(&mut a, &mut b, req, 4, seid));
    assert_eq!((r.urr_id, r.ur_seqn), (2, 1));

    // Deletion reports the volume URRs, each numbered after its own reports.
    let del = Message::SessionDeletionRequest(SessionDeletionRequest {});
    let (_, resp) = exchange(&mut a, &mut b, &del, 5, Some(seid));
    let Message::SessionDeletionResponse(d) = resp else {
        panic!("unexpected {resp:?}");
    };
    let fin: Vec<_> = d
        .usage_reports
        .iter()
        .map(|u| (u.urr_id, u.ur_seqn))
        .collect();
    assert_eq!(fin, vec![(1, 1), (2, 2)]);
}

#[test]
fn query_of_an_unknown_urr_is_rejected_and_changes_nothing() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    let seid = established(&mut a, &mut b);
    b.log.clear();
    let mut req = ipoe::modify_qer_request(Some(GateStatus::CLOSED), None);
    req.query_urrs = vec![1, 9];
    let r = modify(&mut a, &mut b, req, 3, seid);
    assert_eq!(r.cause, Cause::RuleCreationModificationFailure);
    assert!(r.usage_reports.is_empty());
    assert!(b.log.is_empty() && b.queried.is_empty());
    assert!(b.pipeline.sessions().get(seid).unwrap().gate_open);
    // Removing the URR in the same request leaves nothing to query either.
    let req = SessionModificationRequest {
        remove_urrs: vec![1],
        query_urrs: vec![1],
        ..Default::default()
    };
    let r = modify(&mut a, &mut b, req, 4, seid);
    assert_eq!(r.cause, Cause::RuleCreationModificationFailure);
    // The URR is still there: a plain query works and is the URR's first report.
    let r = one_report(&modify(
        &mut a,
        &mut b,
        ipoe::query_usage_request(),
        5,
        seid,
    ));
    assert_eq!(r.ur_seqn, 0);
}

#[test]
fn a_worker_that_does_not_answer_fails_the_request_before_any_change() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    let seid = established(&mut a, &mut b);
    b.log.clear();
    b.silent_queries = true;
    let mut req = ipoe::modify_qer_request(Some(GateStatus::CLOSED), None);
    req.flags = Some(PfcpSmReqFlags::QAURR);
    let r = modify(&mut a, &mut b, req, 3, seid);
    assert_eq!(r.cause, Cause::PfcpEntityInCongestion);
    assert!(r.usage_reports.is_empty());
    assert!(b.log.is_empty(), "gate change not applied: {:?}", b.log);
    assert!(b.pipeline.sessions().get(seid).unwrap().gate_open);
    // No report was sent, so no UR-SEQN was used.
    b.silent_queries = false;
    let r = one_report(&modify(
        &mut a,
        &mut b,
        ipoe::query_usage_request(),
        4,
        seid,
    ));
    assert_eq!(r.ur_seqn, 0);
}

#[test]
fn a_retransmitted_query_gets_the_same_report() {
    let (mut a, mut b) = (agent(), PipelineBackend::new());
    let seid = established(&mut a, &mut b);
    let bytes =
        Message::SessionModificationRequest(ipoe::query_usage_request()).encode(7, Some(seid));
    let first = a.handle(0, cp(), &bytes, &mut b);
    b.traffic(10);
    let second = a.handle(500, cp(), &bytes, &mut b);
    assert_eq!(first, second, "answered from the response cache");
    assert_eq!(b.queried.len(), 1, "the worker is asked once");
    let r = one_report(&modify(
        &mut a,
        &mut b,
        ipoe::query_usage_request(),
        8,
        seid,
    ));
    assert_eq!(r.ur_seqn, 1);
    assert_eq!(r.volume.unwrap().ul_packets, 1);
}

#[test]
fn usage_reports_number_each_urr_on_its_own() {
    let urr = |urr_id, m| CreateUrr {
        urr_id,
        measurement_method: m,
        ..CreateUrr::default()
    };
    let urrs = [
        urr(5, MeasurementMethod::VOLUM),
        urr(6, MeasurementMethod::DURAT | MeasurementMethod::VOLUM),
    ];
    let c = UsageCounters {
        ul_packets: 1,
        ul_bytes: 10,
        dl_packets: 2,
        dl_bytes: 20,
    };
    let mut seqns = UrSeqns::default();
    let t = UsageReportTrigger::IMMER;
    let first = usage_reports(&urrs[..1], &c, t, &mut seqns);
    assert_eq!(first[0].ur_seqn, 0);
    let both = usage_reports(&urrs, &c, t, &mut seqns);
    assert_eq!(
        both.iter()
            .map(|r| (r.urr_id, r.ur_seqn))
            .collect::<Vec<_>>(),
        vec![(5, 1), (6, 0)]
    );
    assert_eq!(both[1].volume, volume_of(c));
    assert_eq!(both[1].volume.unwrap().total_packets, 3);
}
