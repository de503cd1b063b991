//! The node Lease is the one channel from the agents to the operator: the agent writes
//! its report as annotations (`agent::kube::lease::node_lease`), the operator reads them
//! back (`operator::status::Reports::from_leases`). The annotation values are
//! `contract::report`'s types on both sides; this test keeps the whole round trip
//! (names, hash text, view with the failover counts, explanations, owned groups with their resources' states)
//! the same, and a report of an older agent, without resource states, still reads.

use std::collections::BTreeMap;

use failover::agent::kube::lease::node_lease;
use failover::agent::runtime::Report;
use failover::api::ResourceState;
use failover::contract::names;
use failover::contract::report::{Owned, ResourceReason, ResourceReport};
use failover::operator::status::Reports;
use failover::placement::Reason;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::ObjectMeta;

#[test]
fn what_an_agent_reports_is_what_the_operator_reads() {
    let since: Timestamp = "2026-12-01T05:00:00Z".parse().expect("timestamp");
    let report = Report {
        config_hash: 0x00ab_cdef_0123_4567,
        quorate: true,
        alive: vec!["a".into(), "b".into()],
        owned: BTreeMap::from([(
            "web".to_owned(),
            Owned {
                epoch: 7,
                reason: Reason::Failback,
                message: "a is back".into(),
                since: Some(since),
                resources: vec![
                    ResourceReport {
                        name: "service".into(),
                        state: ResourceState::Online,
                        reason: ResourceReason::Started.code().into(),
                        message: String::new(),
                        restarts: 0,
                    },
                    ResourceReport {
                        name: "vip".into(),
                        state: ResourceState::Failed,
                        reason: ResourceReason::StartTimedOut.code().into(),
                        message: "start took longer than 500ms".into(),
                        restarts: 2,
                    },
                ],
            },
        )]),
        explain: BTreeMap::from([("web".to_owned(), "a owns web".to_owned())]),
        failed: vec!["db".to_owned()],
        failovers: BTreeMap::from([("db".to_owned(), 3)]),
        config_mismatch: BTreeMap::from([("b".to_owned(), 0x12)]),
        config_outvoted: true,
    };
    // As the operator creates it: name and labels, no spec.
    let created = Lease {
        metadata: ObjectMeta {
            name: Some(names::node_lease("c", "a")),
            ..ObjectMeta::default()
        },
        ..Lease::default()
    };
    let written = node_lease(created, "a", 1, &report, Timestamp::now());

    let reports = Reports::from_leases("c", &[written]);
    let node = reports
        .nodes
        .get("a")
        .expect("the operator reads node a's report");
    assert_eq!(node.config_hash.as_deref(), Some("00abcdef01234567"));
    let view = node.view.as_ref().expect("view");
    assert!(view.quorate);
    assert_eq!(view.alive, ["a", "b"]);
    assert_eq!(view.failed, ["db"]);
    assert_eq!(view.failovers, BTreeMap::from([("db".to_owned(), 3)]));
    assert_eq!(
        view.config_mismatch,
        BTreeMap::from([("b".to_owned(), "0000000000000012".to_owned())])
    );
    assert!(view.config_outvoted);
    assert_eq!(
        node.explain.get("web").map(String::as_str),
        Some("a owns web")
    );
    assert_eq!(view.held, BTreeMap::from([("web".to_owned(), 7)]));
    // The same type on both sides: what the operator reads is what the agent owns.
    assert_eq!(node.owned, report.owned);
    assert!(node.renewed.is_some());
}

#[test]
fn an_older_agents_report_without_resource_states_still_reads() {
    let mut lease = Lease {
        metadata: ObjectMeta {
            name: Some(names::node_lease("c", "a")),
            ..ObjectMeta::default()
        },
        ..Lease::default()
    };
    lease.spec = Some(k8s_openapi::api::coordination::v1::LeaseSpec {
        renew_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
            Timestamp::now(),
        )),
        ..Default::default()
    });
    lease.metadata.annotations = Some(BTreeMap::from([(
        names::OWNED.to_owned(),
        r#"{"web":{"epoch":3,"reason":"Placed","message":"m","since":"2026-12-01T05:00:00Z"}}"#
            .to_owned(),
    )]));
    let reports = Reports::from_leases("c", &[lease]);
    let owned = &reports.nodes["a"].owned["web"];
    assert_eq!(owned.epoch, 3);
    assert!(owned.resources.is_empty());
}
