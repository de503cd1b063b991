//! The node Lease is the one channel from the agents to the operator: the agent writes
//! its report as annotations (`agent::kube::lease::node_lease`), the operator reads them
//! back (`operator::status::Reports::from_leases`). Each side has its own types, so
//! this test is what keeps the two spellings of the contract the same.

use std::collections::BTreeMap;

use failover::agent::kube::lease::node_lease;
use failover::agent::runtime::{Owned, Report};
use failover::operator::names;
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
                since,
            },
        )]),
        explain: BTreeMap::from([("web".to_owned(), "a owns web".to_owned())]),
        failed: vec!["db".to_owned()],
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
    assert_eq!(
        node.explain.get("web").map(String::as_str),
        Some("a owns web")
    );
    let owned = node.owned.get("web").expect("owned group web");
    assert_eq!(owned.epoch, 7);
    assert_eq!(owned.reason, "Failback");
    assert_eq!(owned.message, "a is back");
    assert_eq!(owned.since, Some(since));
    assert!(node.renewed.is_some());
}
