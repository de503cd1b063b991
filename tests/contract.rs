//! The node Lease is the one channel from the agents to the operator: the agent writes
//! its report as annotations (`agent::kube::lease::node_lease`), the operator reads them
//! back (`operator::status::Reports::from_leases`). The annotation values are
//! `contract::report`'s types on both sides; this test keeps the whole round trip
//! (names, hash text, view with the failover counts, explanations, owned groups with their resources' states,
//! the takeovers with their phases, down to status) the same, and a report of an older agent, without resource
//! states, still reads. The ClusterConfig is the channel the other way: `spec.witness`
//! must reach the agent through it, or the agents would ask a Lease the operator
//! no longer creates.

use std::collections::BTreeMap;
use std::time::Duration;

use failover::agent::kube::lease::node_lease;
use failover::agent::metrics::Phase;
use failover::agent::runtime::Report;
use failover::agent::timeline::{Origin, Takeover};
use failover::api::{ResourceState, load_documents};
use failover::contract::names;
use failover::contract::render::render_config;
use failover::contract::report::{Owned, ResourceReason, ResourceReport};
use failover::contract::source::parse_config_map;
use failover::operator::build;
use failover::operator::status::{Reports, recent_takeovers};
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
        links_down: BTreeMap::from([("b".to_owned(), vec![1])]),
        takeovers: vec![Takeover {
            group: "web".into(),
            reason: Reason::Failback,
            epoch: 7,
            origin: Origin::Decided,
            time: since,
            phases: vec![
                (Phase::Decided, Duration::ZERO),
                (Phase::Ledger, Duration::from_micros(1500)),
                (Phase::Online, Duration::from_micros(2250)),
            ],
        }],
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
    assert_eq!(view.links_down, BTreeMap::from([("b".to_owned(), vec![1])]));
    assert_eq!(
        node.explain.get("web").map(String::as_str),
        Some("a owns web")
    );
    assert_eq!(view.held, BTreeMap::from([("web".to_owned(), 7)]));
    // The same type on both sides: what the operator reads is what the agent owns.
    assert_eq!(node.owned, report.owned);
    let takeovers: Vec<_> = report.takeovers.iter().map(Takeover::report).collect();
    assert_eq!(node.takeovers, takeovers);
    assert!(node.renewed.is_some());
    // ...and what status shows of it.
    let shown = recent_takeovers(&[], "web", &reports);
    assert_eq!(shown.len(), 1);
    assert_eq!((shown[0].node.as_str(), shown[0].epoch), ("a", 7));
    assert_eq!(shown[0].reason, "Failback");
    assert_eq!(shown[0].time.0, since);
    let phases: Vec<(&str, f64)> = shown[0]
        .phases
        .iter()
        .map(|p| (p.phase.as_str(), p.ms))
        .collect();
    assert_eq!(
        phases,
        [("decided", 0.0), ("ledger", 1.5), ("online", 2.25)]
    );
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

/// examples/1 as applied in Kubernetes: the operator renders `spec.witness` into the
/// ClusterConfig, the agent reads it back as the address it asks, and the operator
/// neither creates the witness Lease nor lets the agents write it.
#[test]
fn spec_witness_travels_from_the_operator_to_the_agent() {
    let (mut cluster, groups) =
        load_documents(include_str!("../examples/1-active-passive-witness.yaml"))
            .expect("examples/1 loads");
    cluster.metadata.namespace = Some("ns".to_owned());
    let rendered = render_config(&cluster, &groups).expect("renders");
    let config_map = build::config_map(&cluster, &rendered);
    let (config, _) = parse_config_map(&config_map).expect("the agent loads it");
    let port = cluster.spec.heartbeat.port;
    assert_eq!(
        config.witness,
        Some(std::net::SocketAddr::from(([10, 77, 0, 13], port)))
    );
    let witness_lease = names::witness_lease("pair");
    assert!(
        build::leases(&cluster, &groups)
            .iter()
            .all(|l| l.metadata.name.as_deref() != Some(witness_lease.as_str()))
    );
    let role = build::role(&cluster, &groups);
    let rules = role.rules.expect("rules");
    assert!(
        rules
            .iter()
            .flat_map(|r| r.resource_names.iter().flatten())
            .all(|n| *n != witness_lease)
    );
}
