//! ACLs named by Activate Predefined Rules: at establishment, live through Update PDR, and
//! across a reload of the ACL file; checked with real frames through the pipeline.

use super::*;
use crate::acl::{AclAction, AclRule, AclSpec, PortRange};
use crate::pipeline::DropReason;

/// "dns-only": subscribers may send UDP to port 53 and nothing else; everything reaches
/// them. "open": no rule, permit. The traffic of [`PipelineBackend::traffic`] is UDP to 53.
fn specs() -> Vec<AclSpec> {
    vec![
        AclSpec {
            name: "dns-only".into(),
            default_action: AclAction::Deny,
            ingress: vec![AclRule {
                action: AclAction::Permit,
                protocol: Some(17),
                dst_ports: PortRange::single(53),
                ..AclRule::default()
            }],
            egress: vec![AclRule {
                action: AclAction::Permit,
                ..AclRule::default()
            }],
        },
        AclSpec {
            name: "no-dns".into(),
            default_action: AclAction::Permit,
            ingress: vec![AclRule {
                action: AclAction::Deny,
                protocol: Some(17),
                dst_ports: PortRange::single(53),
                ..AclRule::default()
            }],
            egress: Vec::new(),
        },
        AclSpec {
            name: "open".into(),
            ..AclSpec::default()
        },
    ]
}

/// An agent and a pipeline that both hold [`specs`].
fn agent_with_acls() -> (PfcpAgent, PipelineBackend) {
    let set = Arc::new(AclSet::build(None, &specs(), None).unwrap());
    let mut b = PipelineBackend::new();
    b.pipeline.set_acls(set.clone());
    let cfg = agent().cfg.clone();
    (PfcpAgent::with_acls(cfg, set), b)
}

/// Establishes the contract's subscriber with `acl` (associating first if needed), as
/// request `seq`.
fn establish_acl(
    a: &mut PfcpAgent,
    b: &mut PipelineBackend,
    acl: Option<&str>,
    seq: u32,
) -> SessionEstablishmentResponse {
    if !a.is_associated() {
        associate(a, b);
    }
    let req = ipoe::establishment_request(&IpoeSession {
        acl: acl.map(str::to_string),
        ..subscriber()
    });
    match exchange(
        a,
        b,
        &Message::SessionEstablishmentRequest(req),
        seq,
        Some(0),
    )
    .1
    {
        Message::SessionEstablishmentResponse(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

fn change_acl(
    a: &mut PfcpAgent,
    b: &mut PipelineBackend,
    seid: u64,
    seq: u32,
    old: Option<&str>,
    new: Option<&str>,
) -> Cause {
    let m = Message::SessionModificationRequest(ipoe::acl_change_request(old, new));
    match exchange(a, b, &m, seq, Some(seid)).1 {
        Message::SessionModificationResponse(r) => r.cause,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn the_named_acl_filters_the_session_both_ways() {
    let (mut a, mut b) = agent_with_acls();
    let r = establish_acl(&mut a, &mut b, Some("no-dns"), 2);
    assert_eq!(r.cause, Cause::RequestAccepted);
    let seid = r.up_f_seid.unwrap().seid;
    let id = a.acls().id("no-dns").unwrap();
    assert_eq!(b.pipeline.sessions().get(seid).unwrap().acl, id);
    // Upstream UDP to 53 is denied by the ingress rule; downstream is permitted by default.
    let [up, down] = b.traffic(10);
    assert_eq!(up, Verdict::Drop(DropReason::AclDenied));
    assert_eq!(down, Verdict::Forward(1));
    assert_eq!(b.pipeline.counters().drop_count(DropReason::AclDenied), 1);
    let hits: u64 = b.pipeline.acl_hits().iter().sum();
    assert_eq!(hits, 2, "one ingress rule hit, one egress default hit");
}

#[test]
fn update_pdr_switches_the_acl_live() {
    let (mut a, mut b) = agent_with_acls();
    let seid = establish_acl(&mut a, &mut b, Some("no-dns"), 2)
        .up_f_seid
        .unwrap()
        .seid;
    assert_eq!(b.traffic(10)[0], Verdict::Drop(DropReason::AclDenied));
    let cause = change_acl(&mut a, &mut b, seid, 3, Some("no-dns"), Some("dns-only"));
    assert_eq!(cause, Cause::RequestAccepted);
    assert_eq!(b.traffic(10), [Verdict::Forward(2), Verdict::Forward(1)]);
    // Removing the ACL altogether: everything forwards.
    let cause = change_acl(&mut a, &mut b, seid, 4, Some("dns-only"), None);
    assert_eq!(cause, Cause::RequestAccepted);
    assert_eq!(
        b.pipeline.sessions().get(seid).unwrap().acl,
        crate::acl::NO_ACL
    );
    let before = b.pipeline.acl_hits().iter().sum::<u64>();
    assert_eq!(b.traffic(10), [Verdict::Forward(2), Verdict::Forward(1)]);
    assert_eq!(b.pipeline.acl_hits().iter().sum::<u64>(), before);
}

#[test]
fn an_unknown_acl_fails_the_rules_and_changes_nothing() {
    let (mut a, mut b) = agent_with_acls();
    let r = establish_acl(&mut a, &mut b, Some("gold"), 2);
    assert_eq!(r.cause, Cause::RuleCreationModificationFailure);
    assert!(b.log.is_empty(), "nothing reached the worker");

    let seid = establish_acl(&mut a, &mut b, Some("no-dns"), 3)
        .up_f_seid
        .unwrap()
        .seid;
    let entry = *b.pipeline.sessions().get(seid).unwrap();
    let cause = change_acl(&mut a, &mut b, seid, 5, Some("no-dns"), Some("gold"));
    assert_eq!(cause, Cause::RuleCreationModificationFailure);
    assert_eq!(b.pipeline.sessions().get(seid), Some(&entry));
    // The agent kept the old rules too: the next valid change starts from them.
    let cause = change_acl(&mut a, &mut b, seid, 6, Some("no-dns"), Some("open"));
    assert_eq!(cause, Cause::RequestAccepted);
    assert_eq!(
        b.pipeline.sessions().get(seid).unwrap().acl,
        a.acls().id("open").unwrap()
    );
}

#[test]
fn two_acls_on_one_session_are_refused() {
    let (mut a, mut b) = agent_with_acls();
    associate(&mut a, &mut b);
    let mut req = ipoe::establishment_request(&IpoeSession {
        acl: Some("open".into()),
        ..subscriber()
    });
    req.create_pdrs[1].activate_predefined_rules = vec!["no-dns".into()];
    let (_, resp) = exchange(
        &mut a,
        &mut b,
        &Message::SessionEstablishmentRequest(req),
        2,
        Some(0),
    );
    assert!(
        matches!(resp, Message::SessionEstablishmentResponse(ref r) if r.cause == Cause::RuleCreationModificationFailure),
        "{resp:?}"
    );
}

#[test]
fn a_reloaded_file_applies_to_installed_sessions_unless_it_drops_one_in_use() {
    let (mut a, mut b) = agent_with_acls();
    let r = establish_acl(&mut a, &mut b, Some("no-dns"), 2);
    assert_eq!(r.cause, Cause::RequestAccepted);
    assert_eq!(b.traffic(10)[0], Verdict::Drop(DropReason::AclDenied));

    // "no-dns" now denies TCP only: the session's DNS passes, under the same id.
    let id = a.acls().id("no-dns").unwrap();
    let mut new = specs();
    new[1].ingress[0].protocol = Some(6);
    let set = a.replace_acls(None, &new, &mut b).unwrap();
    assert_eq!(set.id("no-dns"), Some(id));
    assert!(Arc::ptr_eq(b.pipeline.acls(), &set));
    assert_eq!(b.traffic(10), [Verdict::Forward(2), Verdict::Forward(1)]);

    // A file without "no-dns" is refused as a whole; the pipeline keeps the last set.
    let without: Vec<AclSpec> = specs().into_iter().filter(|s| s.name != "no-dns").collect();
    let err = a.replace_acls(None, &without, &mut b).unwrap_err();
    assert_eq!(
        err,
        AclReplaceError::InUse {
            name: "no-dns".into(),
            sessions: 1
        }
    );
    assert!(Arc::ptr_eq(b.pipeline.acls(), &set));
    // An ACL nobody uses may go; a global one applies to every session.
    let mut global = specs();
    global.retain(|s| s.name != "open");
    global.push(AclSpec {
        name: "bogons".into(),
        ingress: vec![AclRule {
            action: AclAction::Deny,
            dst: Some(crate::acl::IpPrefix::V4 {
                addr: Ipv4Addr::new(203, 0, 113, 0),
                len: 24,
            }),
            ..AclRule::default()
        }],
        ..AclSpec::default()
    });
    a.replace_acls(Some("bogons"), &global, &mut b).unwrap();
    assert_eq!(b.traffic(10)[0], Verdict::Drop(DropReason::AclDenied));
    assert_eq!(a.acls().id("no-dns"), Some(id));
    assert_eq!(a.acls().id("open"), None);
}
