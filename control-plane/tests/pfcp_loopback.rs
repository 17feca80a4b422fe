//! A real vbng-cp PFCP client against a minimal in-test PFCP user plane on
//! loopback: association, heartbeats both ways, session establishment, usage
//! queries and deletion, loss detection and restart detection.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{FAKE_USAGE, FakeUp, wait_for};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use vbng_cp::aaa::Rate;
use vbng_cp::config::{Config, UserPlaneConfig};
use vbng_cp::cups::{CupsError, Ipv6Prefixes, SubscriberSession, UpEvent, UpState, Usage};
use vbng_cp::metrics::Metrics;
use vbng_cups::pfcp::{Interface, Mbr, Message, MessageType};

async fn next_event(rx: &mut mpsc::UnboundedReceiver<UpEvent>) -> UpEvent {
    tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .expect("user plane event within 15 s")
        .expect("event channel open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn association_heartbeat_session_loss_and_restart() {
    let up = FakeUp::start(Ipv4Addr::new(127, 0, 0, 1)).await;
    let cp_socket = std::sync::Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let cp_addr: SocketAddr = cp_socket.local_addr().unwrap();
    let mut cfg = Config::default();
    cfg.pfcp.listen = cp_addr;
    cfg.pfcp.heartbeat_interval_s = 1;
    cfg.pfcp.heartbeat_misses = 2;
    cfg.pfcp.t1_ms = 200;
    cfg.pfcp.n1 = 1;
    cfg.user_planes = vec![UserPlaneConfig {
        name: "fake".into(),
        pfcp: up.addr,
        gtpu: None,
    }];
    let metrics = Metrics::default();
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let handles = vbng_cp::cups::start(&cfg, cp_socket, metrics.clone(), ev_tx, stop_rx);
    let h = handles[0].clone();

    // Association Setup, answered: state Up, an Up event, recovery known.
    assert_eq!(
        next_event(&mut ev_rx).await,
        UpEvent::Up {
            up: 0,
            restarted: false
        }
    );
    assert_eq!(h.status().state, UpState::Up);
    assert_eq!(h.status().recovery.map(|r| r.0), Some(3_900_000_000));
    let (src, _, assoc) = up.messages()[0].clone();
    assert_eq!(src, cp_addr);
    assert!(matches!(assoc, Message::AssociationSetupRequest(ref r)
        if r.node_id == vbng_cups::pfcp::NodeId::Ipv4(Ipv4Addr::LOCALHOST)));

    // Heartbeats CP -> UP.
    wait_for("a heartbeat request from the CP", || {
        up.messages()
            .iter()
            .any(|(_, h, _)| h.msg_type == MessageType::HeartbeatRequest)
            .then_some(())
    })
    .await;
    // Heartbeats UP -> CP are answered with the same sequence number.
    up.silent.store(true, Ordering::SeqCst); // keep our own recv loop out of the way
    let probe = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let hb = Message::HeartbeatRequest(vbng_cups::pfcp::HeartbeatRequest {
        recovery_time_stamp: vbng_cups::pfcp::RecoveryTimeStamp(3_900_000_000),
    });
    // From an unknown address the CP must not answer...
    probe.send_to(&hb.encode(77, None), cp_addr).await.unwrap();
    up.silent.store(false, Ordering::SeqCst);
    // ...from the UP it must.
    up.send_heartbeat(cp_addr, 0x4242).await;
    wait_for("the CP's heartbeat response", || {
        up.messages()
            .iter()
            .any(|(_, h, _)| h.msg_type == MessageType::HeartbeatResponse && h.sequence == 0x4242)
            .then_some(())
    })
    .await;

    // Session establishment as the contract says.
    let spec = SubscriberSession {
        cp_seid: 99,
        ipv4: Ipv4Addr::new(100, 64, 0, 10),
        mac: [2, 0, 0, 0, 0, 1],
        port: 2,
        svlan: 10,
        cvlan: 100,
        rate: Some(Rate {
            up_kbps: 2000,
            down_kbps: 8000,
        }),
        pppoe: None,
        acl: None,
        ipv6: None,
    };
    let up_seid = h.establish(&spec).await.expect("establishment accepted");
    assert_eq!(up_seid, 0x1001);
    let est = up
        .messages()
        .into_iter()
        .find_map(|(_, hd, m)| match m {
            Message::SessionEstablishmentRequest(r) => Some((hd, r)),
            _ => None,
        })
        .unwrap();
    assert_eq!(est.0.seid, Some(0), "establishment goes to SEID 0");
    let r = est.1;
    assert_eq!(r.cp_f_seid.seid, 99);
    assert_eq!(r.cp_f_seid.ipv4, Some(Ipv4Addr::LOCALHOST));
    assert_eq!(r.create_pdrs.len(), 2);
    let ul = r.create_pdrs.iter().find(|p| p.pdr_id == 1).unwrap();
    assert_eq!(ul.pdi.source_interface, Interface::Access);
    assert_eq!(ul.pdi.logical_port.as_deref(), Some(&b"2"[..]));
    let epf = ul.pdi.ethernet_packet_filter.as_ref().unwrap();
    assert_eq!((epf.s_tag, epf.c_tag), (Some(10), Some(100)));
    assert_eq!(epf.mac_address.as_ref().unwrap().source, Some(spec.mac));
    assert_eq!(
        (ul.far_id, &ul.urr_ids, &ul.qer_ids),
        (Some(1), &vec![1], &vec![1])
    );
    let dl = r.create_pdrs.iter().find(|p| p.pdr_id == 2).unwrap();
    assert_eq!(dl.pdi.source_interface, Interface::Core);
    assert!(dl.pdi.ue_ip_address.unwrap().is_destination);
    assert_eq!(r.create_fars.len(), 2);
    assert_eq!(
        r.create_qers[0].mbr,
        Some(Mbr {
            ul_kbps: 2000,
            dl_kbps: 8000
        })
    );

    // Usage on demand (RADIUS Interim-Update): a Session Modification
    // Request with Query URR 1 on the UP SEID; each answer reports more.
    let first = h.query_usage(up_seid).await.expect("query accepted");
    let second = h.query_usage(up_seid).await.expect("query accepted");
    let usage = |(ulp, ulb, dlp, dlb)| Usage {
        ul_bytes: ulb,
        dl_bytes: dlb,
        ul_packets: ulp,
        dl_packets: dlp,
    };
    assert_eq!(first, Some(usage(common::fake_query_usage(1))));
    assert_eq!(second, Some(usage(common::fake_query_usage(2))));
    assert!(second.unwrap().dl_bytes > first.unwrap().dl_bytes);
    let queries: Vec<_> = up
        .modification_requests()
        .into_iter()
        .filter(|(_, r)| r.queries_usage())
        .collect();
    assert_eq!(queries.len(), 2);
    for (seid, r) in &queries {
        assert_eq!(*seid, Some(up_seid), "query goes to the UP SEID");
        assert_eq!(r.query_urrs, vec![vbng_cp::cups::program::URR_ID]);
        assert!(r.update_qers.is_empty() && r.update_fars.is_empty());
    }
    // A user plane that refuses the query: the caller sees the cause.
    up.reject_modify.store(true, Ordering::SeqCst);
    assert!(matches!(
        h.query_usage(up_seid).await,
        Err(CupsError::Rejected { cause, .. }) if cause == vbng_cups::pfcp::Cause::RequestRejected
    ));
    up.reject_modify.store(false, Ordering::SeqCst);

    // IPv6 prefixes, live: Create PDR 3 and 4, then Remove and Create them
    // again with a delegated prefix, then Remove them; each a Session
    // Modification Request on the UP SEID. No change: nothing sent.
    let slaac = Ipv6Prefixes {
        prefix: Some(("2001:db8:100::".parse().unwrap(), 64)),
        delegated: None,
    };
    let with_pd = Ipv6Prefixes {
        delegated: Some(("2001:db8:200::".parse().unwrap(), 56)),
        ..slaac
    };
    let before = up.modification_requests().len();
    let v6_spec = |ipv6| SubscriberSession {
        ipv6,
        ..spec.clone()
    };
    h.set_ipv6(up_seid, &v6_spec(Some(slaac)), None)
        .await
        .expect("install accepted");
    h.set_ipv6(up_seid, &v6_spec(Some(with_pd)), Some(&slaac))
        .await
        .expect("replace accepted");
    h.set_ipv6(up_seid, &v6_spec(Some(with_pd)), Some(&with_pd))
        .await
        .expect("nothing to change");
    h.set_ipv6(up_seid, &v6_spec(None), Some(&with_pd))
        .await
        .expect("removal accepted");
    let sent: Vec<_> = up.modification_requests().split_off(before);
    assert_eq!(sent.len(), 3, "{sent:?}");
    for (seid, _) in &sent {
        assert_eq!(*seid, Some(up_seid));
    }
    let created = |r: &vbng_cups::pfcp::SessionModificationRequest| {
        r.create_pdrs.iter().map(|p| p.pdr_id).collect::<Vec<_>>()
    };
    assert_eq!(
        (sent[0].1.remove_pdrs.clone(), created(&sent[0].1)),
        (vec![], vec![3, 4])
    );
    assert_eq!(
        (sent[1].1.remove_pdrs.clone(), created(&sent[1].1)),
        (vec![3, 4], vec![3, 4])
    );
    assert_eq!(
        sent[1].1.create_pdrs[1].pdi.framed_ipv6_routes[0].to_string(),
        "2001:db8:200::/56"
    );
    assert_eq!(
        (sent[2].1.remove_pdrs.clone(), created(&sent[2].1)),
        (vec![3, 4], vec![])
    );
    // A refusal reaches the caller with its cause.
    up.reject_modify.store(true, Ordering::SeqCst);
    assert!(matches!(
        h.set_ipv6(up_seid, &v6_spec(Some(slaac)), None).await,
        Err(CupsError::Rejected { .. })
    ));
    up.reject_modify.store(false, Ordering::SeqCst);

    // Deletion: UP SEID in the header, usage report returned.
    let usage = h.delete(up_seid).await.expect("deletion accepted");
    let (ulp, ulb, dlp, dlb) = FAKE_USAGE;
    assert_eq!(
        usage,
        Some(Usage {
            ul_bytes: ulb,
            dl_bytes: dlb,
            ul_packets: ulp,
            dl_packets: dlp
        })
    );
    assert!(
        up.messages()
            .iter()
            .any(|(_, hd, m)| matches!(m, Message::SessionDeletionRequest(_))
                && hd.seid == Some(up_seid))
    );

    // Loss: the UP stops answering; after the missed heartbeats it is Down
    // and requests fail fast.
    up.silent.store(true, Ordering::SeqCst);
    assert_eq!(next_event(&mut ev_rx).await, UpEvent::Down { up: 0 });
    assert_eq!(h.status().state, UpState::Down);
    assert!(matches!(
        h.establish(&spec).await,
        Err(CupsError::NotAssociated(_))
    ));

    // Restart: the UP comes back with a new recovery time stamp; the CP
    // re-associates and reports the restart.
    up.recovery.store(3_900_000_100, Ordering::SeqCst);
    up.silent.store(false, Ordering::SeqCst);
    assert_eq!(
        next_event(&mut ev_rx).await,
        UpEvent::Up {
            up: 0,
            restarted: true
        }
    );
    assert_eq!(h.status().recovery.map(|r| r.0), Some(3_900_000_100));

    let text = vbng_cp::metrics::encode(&metrics.registry());
    assert!(text.contains("vbng_cp_pfcp_timeouts_total"), "{text}");
    assert!(
        text.contains("vbng_cp_user_plane_restarts_total{user_plane=\"fake\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("vbng_cp_pfcp_errors_total{reason=\"unknown_peer\"} 1"),
        "{text}"
    );
    let _ = stop_tx.send(true);
}
