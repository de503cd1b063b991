//! Tests of status from the node reports: members, quorum, conditions, group
//! owners and their reasons, and the Events their transitions become.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};

use super::{
    NodeReport, Reports, cluster_notices, cluster_status, group_notices, group_status,
    recent_takeovers,
};
use crate::api::{
    GroupPhase, MemberState, PhaseTime, QuorumMode, QuorumState, RECENT_TAKEOVERS, ResourceState,
    TakeoverRecord,
};
use crate::contract::names;
use crate::operator::config::resolve_addresses;
use crate::operator::fixtures::{
    ClusterFixture, cluster, group, ip_of, lease, node_lease, reporting_lease, with_view,
};

#[test]
fn member_states_sync_and_quorum_come_from_the_node_leases() {
    let mut c = cluster().member("c").member("d");
    c.spec.quorum = QuorumMode::Majority;
    c.spec.members[3].paused = true;
    let leases = [
        node_lease("a", Duration::from_millis(300), "h1", true, &["web"]),
        node_lease("b", Duration::from_secs(30), "h0", false, &[]),
        node_lease("d", Duration::from_millis(100), "h1", true, &[]),
    ];
    let reports = Reports::from_leases("c", &leases);
    let status = cluster_status(&c, &[], Some("h1".into()), &reports, Timestamp::now());
    let states: Vec<_> = status
        .members
        .iter()
        .map(|m| (m.node.as_str(), m.state, m.synchronized))
        .collect();
    assert_eq!(
        states,
        [
            ("a", MemberState::Online, true),
            ("b", MemberState::Offline, false),
            ("c", MemberState::Unknown, false),
            ("d", MemberState::Paused, true),
        ]
    );
    assert_eq!(status.members[1].applied_config_hash.as_deref(), Some("h0"));
    assert_eq!(status.online_count, Some(1));
    assert_eq!(status.synced_count, Some(2));
    let quorum = status.quorum.clone().unwrap();
    assert_eq!((quorum.state, quorum.voters), (QuorumState::Quorate, 4));
    let condition = |t: &str| {
        status
            .conditions
            .iter()
            .find(|x| x.type_ == t)
            .unwrap()
            .clone()
    };
    assert_eq!(condition("Ready").status, "True");
    assert_eq!(condition("Degraded").status, "True");
    assert_eq!(condition("Degraded").reason, "MemberOffline");
    assert_eq!(condition("QuorumLost").status, "False");
    assert_eq!(condition("ConfigValid").status, "True");
    assert_eq!(status.observed_generation, Some(1));

    // Everyone silent: quorum lost, and the transitions become Events.
    let later = Timestamp::now() + Duration::from_secs(60);
    let mut c2 = c.clone();
    c2.status = Some(status.clone());
    let lost = cluster_status(&c2, &[], Some("h1".into()), &reports, later);
    assert_eq!(lost.quorum.clone().unwrap().state, QuorumState::Lost);
    // lastTransitionTime moves only with the status.
    let valid_before = condition("ConfigValid");
    let valid_after = lost
        .conditions
        .iter()
        .find(|x| x.type_ == "ConfigValid")
        .unwrap();
    assert_eq!(
        valid_before.last_transition_time,
        valid_after.last_transition_time
    );
    let reasons: Vec<_> = cluster_notices(&status, &lost)
        .iter()
        .map(|n| n.reason)
        .collect();
    // a (online) and d (paused) both stopped reporting.
    assert_eq!(reasons, ["MemberDown", "MemberDown", "QuorumLost"]);
    let back: Vec<_> = cluster_notices(&lost, &status)
        .iter()
        .map(|n| n.reason)
        .collect();
    assert_eq!(back, ["MemberUp", "QuorumRegained"]);
}

#[test]
fn invalid_config_keeps_the_last_hash_and_is_announced_once() {
    let c = cluster().hash("h1");
    let problems = resolve_addresses(&c.clone().member("ghost"), ip_of).unwrap_err();
    let status = cluster_status(
        &c,
        &problems,
        Some("h1".into()),
        &Reports::default(),
        Timestamp::now(),
    );
    let valid = status
        .conditions
        .iter()
        .find(|x| x.type_ == "ConfigValid")
        .unwrap();
    assert_eq!(
        (valid.status.as_str(), valid.reason.as_str()),
        ("False", "InvalidSpec")
    );
    assert!(
        valid.message.contains("spec.members[2].node"),
        "{}",
        valid.message
    );
    assert_eq!(status.config_hash.as_deref(), Some("h1"));
    let before = c.status.clone().unwrap();
    let notices = cluster_notices(&before, &status);
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].reason, "ConfigRejected");
    assert!(cluster_notices(&status, &status).is_empty());
}

/// Issue 12 item 7: a Failed group has no owner, and its group Lease still names
/// the last one; the members' views say it is Failed, and so does its phase.
#[test]
fn a_group_an_online_member_sees_failed_is_failed() {
    let c = cluster();
    let g = group("web", "10.77.0.100/24");
    let ledger = lease(
        &names::group_lease("c", "web"),
        Some("a"),
        Timestamp::now() - Duration::from_secs(5),
        &[(names::REASON, "OwnerLost"), (names::MESSAGE, "b died")],
    );
    let reporter = with_view(
        node_lease("b", Duration::from_millis(100), "h", true, &[]),
        json!({"quorate": true, "alive": ["b"], "held": {}, "failed": ["web"]}),
    );
    let reports = Reports::from_leases("c", &[ledger.clone(), reporter]);
    let status = group_status(&g, Some(&c), &[], &reports, Timestamp::now());
    assert_eq!(status.phase, Some(GroupPhase::Failed));
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "FailoverLimitReached")
    );
    // Without that report the group is only waiting for an owner.
    let reports = Reports::from_leases("c", &[ledger]);
    let status = group_status(&g, Some(&c), &[], &reports, Timestamp::now());
    assert_ne!(status.phase, Some(GroupPhase::Failed));
}

/// `status.failovers` is the count the members report (the owner's, which every
/// member adopts); an offline member's stale count does not show.
#[test]
fn group_status_shows_the_failovers_the_members_count() {
    let c = cluster().member("c");
    let g = group("web", "10.77.0.100/24");
    let reporting = |node: &str, age_ms: u64, count: u32| {
        let lease = node_lease(node, Duration::from_millis(age_ms), "h", true, &[]);
        with_view(lease, json!({"quorate": true, "failovers": {"web": count}}))
    };
    let leases = [
        reporting("a", 100, 2),
        reporting("b", 100, 1),
        reporting("c", 60_000, 5),
    ];
    let reports = Reports::from_leases("c", &leases);
    let status = group_status(&g, Some(&c), &[], &reports, Timestamp::now());
    assert_eq!(status.failovers, 2);
    // No member reports a count (an older agent): none shown.
    let reports = Reports::from_leases("c", &leases[..0]);
    let status = group_status(&g, Some(&c), &[], &reports, Timestamp::now());
    assert_eq!(status.failovers, 0);
}

#[test]
fn group_status_reads_the_ledger_and_explains_every_member() {
    let c = cluster();
    let mut g = group("web", "10.77.0.100/24");
    let t = Timestamp::now() - Duration::from_secs(5);
    let mut ledger = lease(
        &names::group_lease("c", "web"),
        Some("a"),
        t,
        &[
            (names::REASON, "OwnerLost"),
            (names::MESSAGE, "b was confirmed dead"),
        ],
    );
    ledger.spec.as_mut().unwrap().lease_transitions = Some(4);
    let leases = [
        ledger,
        node_lease("a", Duration::from_millis(100), "h", true, &["web"]),
    ];
    let reports = Reports::from_leases("c", &leases);
    let status = group_status(&g, Some(&c), &[], &reports, Timestamp::now());
    assert_eq!(status.owner.as_deref(), Some("a"));
    assert_eq!(status.epoch, Some(4));
    assert_eq!(status.phase, Some(GroupPhase::Online));
    let transition = status.last_transition.clone().unwrap();
    assert_eq!(transition.reason, "OwnerLost");
    assert_eq!(transition.message, "b was confirmed dead");
    assert_eq!(transition.time, Time(t));
    assert_eq!(status.members[0].reason, "a explains");
    assert!(status.members[0].eligible);
    assert_eq!(status.members[1].reason, "no report from its agent yet");
    assert!(!status.members[1].eligible);

    g.status = Some(crate::api::ResourceGroupStatus {
        owner: Some("b".into()),
        ..Default::default()
    });
    let notices = group_notices(g.status.as_ref().unwrap(), &status);
    assert_eq!(notices.len(), 1);
    assert_eq!((notices[0].reason, notices[0].warning), ("Failover", true));
    assert!(
        notices[0].note.starts_with("b -> a (epoch 4)"),
        "{}",
        notices[0].note
    );

    let missing = group_status(&g, None, &[], &Reports::default(), Timestamp::now());
    let valid = missing
        .conditions
        .iter()
        .find(|x| x.type_ == "ConfigValid")
        .unwrap();
    assert_eq!(valid.reason, "ClusterNotFound");
}

#[test]
fn status_does_not_change_with_every_lease_renewal() {
    let c = cluster();
    let now = Timestamp::now();
    let reports = |age: Duration| {
        Reports::from_leases(
            "c",
            &[
                node_lease("a", age, "h", true, &[]),
                node_lease("b", age, "h", true, &[]),
            ],
        )
    };
    let first = cluster_status(&c, &[], Some("h".into()), &reports(Duration::ZERO), now);
    let mut c2 = c.clone();
    c2.status = Some(first.clone());
    // Renewed 10 s later: same state, heartbeat within the step, same status.
    let later = now + Duration::from_secs(10);
    let renewed = Reports::from_leases(
        "c",
        &[
            node_lease("a", Duration::ZERO, "h", true, &[]),
            node_lease("b", Duration::ZERO, "h", true, &[]),
        ],
    );
    let mut renewed_later = renewed.clone();
    for r in renewed_later.nodes.values_mut() {
        r.renewed = Some(later);
    }
    assert_eq!(
        cluster_status(&c2, &[], Some("h".into()), &renewed_later, later),
        first
    );
    // 40 s later the heartbeat moves.
    let much_later = now + Duration::from_secs(40);
    for r in renewed_later.nodes.values_mut() {
        r.renewed = Some(much_later);
    }
    let moved = cluster_status(&c2, &[], Some("h".into()), &renewed_later, much_later);
    assert_eq!(moved.members[0].last_heartbeat, Some(Time(much_later)));
}

#[test]
fn event_notes_are_cut_to_the_api_servers_byte_limit() {
    use super::{EVENT_NOTE_MAX_BYTES, truncate};
    let long = "é".repeat(1000); // 2000 bytes
    let cut = truncate(&long, EVENT_NOTE_MAX_BYTES);
    assert!(cut.len() <= EVENT_NOTE_MAX_BYTES, "{}", cut.len());
    assert!(cut.ends_with('…'));
    assert_eq!(truncate("short", EVENT_NOTE_MAX_BYTES), "short");
}

/// Issue 9, finding 6: in `quorum: none` no group Lease is written; the owner comes
/// from the node report.
#[test]
fn a_one_member_cluster_without_quorum_shows_its_owner_from_the_node_report() {
    let mut c = cluster();
    c.spec.members.truncate(1);
    c.spec.quorum = QuorumMode::None;
    let web = group("web", "10.77.0.100/24");
    let leases = [reporting_lease(
        "a",
        Duration::from_millis(100),
        json!({"web": {"epoch": 1, "reason": "Placed", "message": "a is the first eligible member", "since": "2026-12-01T05:00:00Z"}}),
    )];
    let status = group_status(
        &web,
        Some(&c),
        &[],
        &Reports::from_leases("c", &leases),
        Timestamp::now(),
    );
    assert_eq!(status.owner.as_deref(), Some("a"));
    assert_eq!(status.epoch, Some(1));
    assert_eq!(status.phase, Some(GroupPhase::Online));
    let transition = status.last_transition.clone().unwrap();
    assert_eq!(transition.reason, "Placed");
    assert_eq!(
        transition.time.0,
        "2026-12-01T05:00:00Z".parse::<Timestamp>().unwrap()
    );
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True", "{ready:?}");
    // Without any report, and without a Lease: Pending, no owner.
    let none = group_status(&web, Some(&c), &[], &Reports::default(), Timestamp::now());
    assert_eq!((none.owner, none.phase), (None, Some(GroupPhase::Pending)));
}

/// Issue 9, finding 8: a failback is recorded with the reason the new owner reports,
/// as soon as it reports it, even while the group Lease still names the old owner;
/// the freshest report (highest epoch of a live member) wins.
#[test]
fn the_owner_and_its_reason_come_from_the_freshest_node_report() {
    let c = cluster().member("c");
    let mut web = group("web", "10.77.0.100/24");
    web.status = Some(crate::api::ResourceGroupStatus {
        owner: Some("b".into()),
        epoch: Some(6),
        ..Default::default()
    });
    let mut ledger = lease(
        &names::group_lease("c", "web"),
        Some("b"),
        Timestamp::now(),
        &[(names::REASON, "OwnerLost"), (names::MESSAGE, "a was lost")],
    );
    ledger.spec.as_mut().unwrap().lease_transitions = Some(6);
    let leases = [
        ledger,
        // a took the group back (epoch 7); b has not written yet that it let go.
        reporting_lease(
            "a",
            Duration::from_millis(50),
            json!({"web": {"epoch": 7, "reason": "Failback", "message": "a is back", "since": "2026-12-01T05:10:00Z"}}),
        ),
        reporting_lease(
            "b",
            Duration::from_millis(400),
            json!({"web": {"epoch": 6, "reason": "OwnerLost", "message": "a was lost", "since": "2026-12-01T05:00:00Z"}}),
        ),
        // c's report is stale (its agent is gone): ignored whatever it claims.
        reporting_lease(
            "c",
            Duration::from_secs(60),
            json!({"web": {"epoch": 9, "reason": "ManualMove", "message": "", "since": "2026-12-01T04:00:00Z"}}),
        ),
    ];
    let reports = Reports::from_leases("c", &leases);
    let status = group_status(&web, Some(&c), &[], &reports, Timestamp::now());
    assert_eq!(status.owner.as_deref(), Some("a"));
    assert_eq!(status.epoch, Some(7));
    assert_eq!(status.phase, Some(GroupPhase::Online));
    assert_eq!(status.last_transition.as_ref().unwrap().reason, "Failback");
    let notices = group_notices(web.status.as_ref().unwrap(), &status);
    assert_eq!(notices[0].reason, "Failback");
    assert_eq!(notices[0].note, "b -> a (epoch 7): a is back");

    // Takeover from a lost owner: a Failover warning.
    let leases = [reporting_lease(
        "c",
        Duration::from_millis(50),
        json!({"web": {"epoch": 7, "reason": "OwnerLost", "message": "b is gone"}}),
    )];
    let status = group_status(
        &web,
        Some(&c),
        &[],
        &Reports::from_leases("c", &leases),
        Timestamp::now(),
    );
    let notices = group_notices(web.status.as_ref().unwrap(), &status);
    assert_eq!((notices[0].reason, notices[0].warning), ("Failover", true));
    // Without a time of its own, the transition keeps the time shown before.
    let again = {
        let mut web = web.clone();
        web.status = Some(status.clone());
        group_status(
            &web,
            Some(&c),
            &[],
            &Reports::from_leases("c", &leases),
            Timestamp::now() + jiff::SignedDuration::from_secs(5),
        )
    };
    assert_eq!(again.last_transition, status.last_transition);
}

/// Issue 12: each resource's state, reason and restarts come from the owner's
/// report into `status.resources[]`; a report without them (an older agent) keeps
/// what status showed.
#[test]
fn resource_states_come_from_the_owners_report() {
    let c = cluster();
    let mut web = group("web", "10.77.0.100/24");
    let owned = json!({"web": {"epoch": 2, "reason": "Placed", "message": "m",
    "resources": [
        {"name": "vip", "state": "Online", "reason": "Started", "restarts": 0},
        {"name": "app", "state": "Offline", "reason": "NotRunInThisRelease",
         "message": "workload resources are not run by the agent in this release"},
        {"name": "svc", "state": "Failed", "reason": "StartTimedOut",
         "message": "start took longer than 500ms", "restarts": 2},
    ]}});
    let leases = [reporting_lease("a", Duration::from_millis(100), owned)];
    let status = group_status(
        &web,
        Some(&c),
        &[],
        &Reports::from_leases("c", &leases),
        Timestamp::now(),
    );
    let shown: Vec<(&str, ResourceState, Option<&str>, u32)> = status
        .resources
        .iter()
        .map(|r| (r.name.as_str(), r.state, r.message.as_deref(), r.restarts))
        .collect();
    assert_eq!(
        shown,
        [
            ("vip", ResourceState::Online, Some("Started"), 0),
            (
                "app",
                ResourceState::Offline,
                Some(
                    "NotRunInThisRelease: workload resources are not run by the agent in this release"
                ),
                0
            ),
            (
                "svc",
                ResourceState::Failed,
                Some("StartTimedOut: start took longer than 500ms"),
                2
            ),
        ]
    );
    web.status = Some(status.clone());
    let older = [reporting_lease(
        "a",
        Duration::from_millis(100),
        json!({"web": {"epoch": 2, "reason": "Placed", "message": "m"}}),
    )];
    let kept = group_status(
        &web,
        Some(&c),
        &[],
        &Reports::from_leases("c", &older),
        Timestamp::now(),
    );
    assert_eq!(kept.resources, status.resources);
}

fn record(node: &str, epoch: u64, time: &str, ms: f64) -> TakeoverRecord {
    TakeoverRecord {
        node: node.into(),
        reason: "OwnerLost".into(),
        epoch,
        time: Time(time.parse().unwrap()),
        phases: vec![PhaseTime {
            phase: "online".into(),
            ms,
        }],
    }
}

/// A member's report of its takeovers, as `failover.dev/takeovers` carries them.
fn reporting(takeovers: Value) -> NodeReport {
    NodeReport {
        takeovers: serde_json::from_value(takeovers).unwrap(),
        ..NodeReport::default()
    }
}

#[test]
fn recent_takeovers_merge_what_was_shown_with_what_the_members_report() {
    let shown = [record("a", 3, "2026-12-01T05:00:00Z", 4.0)];
    let phases = json!([{"phase": "online", "ms": 2.5}]);
    let reports = Reports {
        nodes: BTreeMap::from([
            (
                "a".to_owned(),
                reporting(json!([
                    {"group": "web", "reason": "Failback", "epoch": 5,
                     "time": "2026-12-01T05:02:00.250Z", "phases": phases},
                    {"group": "db", "reason": "Placed", "epoch": 9, "time": "2026-12-01T05:03:00Z"},
                    // Shown already, read back in whole seconds: shown as it was.
                    {"group": "web", "reason": "OwnerLost", "epoch": 3,
                     "time": "2026-12-01T05:00:00.900Z", "phases": phases},
                ])),
            ),
            (
                "b".to_owned(),
                reporting(json!([{"group": "web", "reason": "OwnerLost", "epoch": 4,
                                  "time": "2026-12-01T05:01:00Z", "phases": phases}])),
            ),
            (
                "c".to_owned(),
                reporting(json!([{"group": "web", "reason": "OwnerLost", "epoch": 6,
                                  "time": "not a time"}])),
            ),
        ]),
        groups: BTreeMap::new(),
    };
    let merged = recent_takeovers(&shown, "web", &reports);
    let seen: Vec<(&str, u64, &str)> = merged
        .iter()
        .map(|r| (r.node.as_str(), r.epoch, r.reason.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("a", 5, "Failback"),
            ("b", 4, "OwnerLost"),
            ("a", 3, "OwnerLost")
        ]
    );
    assert_eq!(merged[2], shown[0]);
    assert_eq!(
        merged[0].phases,
        [PhaseTime {
            phase: "online".into(),
            ms: 2.5
        }]
    );
    // What status shows reads back as it was written: merging again changes nothing.
    let written: Vec<TakeoverRecord> =
        serde_json::from_value(serde_json::to_value(&merged).unwrap()).unwrap();
    assert_eq!(recent_takeovers(&written, "web", &reports), written);
}

#[test]
fn recent_takeovers_are_the_newest_few_and_a_second_is_ordered_by_epoch() {
    let shown: Vec<TakeoverRecord> = (1..=4)
        .map(|e| record("a", e, &format!("2026-12-01T05:00:0{e}Z"), 1.0))
        .collect();
    let reports = Reports {
        nodes: BTreeMap::from([(
            "b".to_owned(),
            reporting(json!([
                {"group": "web", "reason": "OwnerLost", "epoch": 6, "time": "2026-12-01T05:00:09.100Z"},
                {"group": "web", "reason": "OwnerLost", "epoch": 5, "time": "2026-12-01T05:00:09.900Z"},
            ])),
        )]),
        groups: BTreeMap::new(),
    };
    let epochs: Vec<u64> = recent_takeovers(&shown, "web", &reports)
        .iter()
        .map(|r| r.epoch)
        .collect();
    assert_eq!(epochs, [6, 5, 4, 3, 2]);
    assert_eq!(RECENT_TAKEOVERS, 5);
}

#[test]
fn group_status_shows_the_takeovers_the_members_report() {
    let c = cluster();
    let web = group("web", "10.77.0.100/24");
    let mut lease = reporting_lease(
        "a",
        Duration::from_millis(100),
        json!({"web": {"epoch": 2, "reason": "Placed", "message": "m"}}),
    );
    lease.metadata.annotations.get_or_insert_default().insert(
        names::TAKEOVERS.to_owned(),
        json!([{"group": "web", "reason": "Placed", "epoch": 2, "time": "2026-12-01T05:00:00Z",
                "phases": [{"phase": "decided", "ms": 0.0}, {"phase": "online", "ms": 1.5}]}])
        .to_string(),
    );
    let status = group_status(
        &web,
        Some(&c),
        &[],
        &Reports::from_leases("c", &[lease]),
        Timestamp::now(),
    );
    assert_eq!(status.recent_takeovers.len(), 1);
    let shown = &status.recent_takeovers[0];
    assert_eq!((shown.node.as_str(), shown.epoch), ("a", 2));
    assert_eq!(
        shown.phases[1],
        PhaseTime {
            phase: "online".into(),
            ms: 1.5
        }
    );
}

/// Three members on two heartbeat links: b runs an older configuration (a and c
/// outvote it), link 1 between b and the others carries nothing, and d, offline,
/// still has an old view in its Lease.
fn split_cluster_leases() -> (
    crate::api::FailoverCluster,
    Vec<k8s_openapi::api::coordination::v1::Lease>,
) {
    let mut c = cluster().member("c").member("d");
    c.spec.quorum = QuorumMode::Majority;
    let fresh = Duration::from_millis(100);
    let leases = vec![
        with_view(
            node_lease("a", fresh, "h1", true, &[]),
            json!({"quorate": true, "alive": ["a", "b", "c"],
                   "configMismatch": {"b": "h0"}, "linksDown": {"b": [1]}}),
        ),
        with_view(
            node_lease("b", fresh, "h0", true, &[]),
            json!({"quorate": true, "alive": ["a", "b", "c"], "configOutvoted": true,
                   "configMismatch": {"a": "h1", "c": "h1"},
                   "linksDown": {"a": [1], "c": [1]}}),
        ),
        with_view(
            node_lease("c", fresh, "h1", true, &[]),
            json!({"quorate": true, "alive": ["a", "b", "c"],
                   "configMismatch": {"b": "h0"}, "linksDown": {"b": [1, 0]}}),
        ),
        // Offline: neither its outvote nor what it says of the others counts.
        with_view(
            node_lease("d", Duration::from_secs(60), "h0", true, &[]),
            json!({"quorate": true, "alive": ["d"], "configOutvoted": true,
                   "linksDown": {"a": [0, 1]}}),
        ),
    ];
    (c, leases)
}

fn condition_of(
    status: &crate::api::FailoverClusterStatus,
    type_: &str,
) -> (String, String, String) {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition"));
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

/// What a real API server (and the readers of conditions) would refuse in a status.
fn assert_writable(status: &crate::api::FailoverClusterStatus) {
    use crate::testing::apiserver_rules;
    let value = serde_json::to_value(status).unwrap();
    let mut violations = apiserver_rules::validate_against_schema(
        &apiserver_rules::status_schema("FailoverCluster"),
        &value,
    );
    violations.extend(apiserver_rules::conditions(&value["conditions"]));
    assert_eq!(violations, Vec::<String>::new(), "{value:#}");
}

#[test]
fn outvoted_members_and_links_down_reach_member_status() {
    let (c, leases) = split_cluster_leases();
    let reports = Reports::from_leases("c", &leases);
    let status = cluster_status(&c, &[], Some("h1".into()), &reports, Timestamp::now());
    assert_writable(&status);
    let outvoted: Vec<_> = status
        .members
        .iter()
        .map(|m| (m.node.as_str(), m.state, m.config_outvoted))
        .collect();
    assert_eq!(
        outvoted,
        [
            ("a", MemberState::Online, false),
            ("b", MemberState::Online, true),
            ("c", MemberState::Online, false),
            ("d", MemberState::Offline, false),
        ]
    );
    let links = |node: &str| {
        let member = status.members.iter().find(|m| m.node == node).unwrap();
        member
            .links_down
            .iter()
            .map(|d| (d.seen_by.clone(), d.links.clone()))
            .collect::<Vec<_>>()
    };
    // Per member that reports it, in spec order, links ascending; d is offline:
    // nothing of what it says counts, and nothing is said of it.
    assert_eq!(
        links("b"),
        [("a".to_owned(), vec![1]), ("c".to_owned(), vec![0, 1])]
    );
    assert_eq!(links("a"), [("b".to_owned(), vec![1])]);
    assert_eq!(links("c"), [("b".to_owned(), vec![1])]);
    assert_eq!(links("d"), []);

    let (synced, reason, message) = condition_of(&status, "ConfigSynchronized");
    assert_eq!(
        (synced.as_str(), reason.as_str()),
        ("False", "ConfigOutvoted")
    );
    assert_eq!(
        message,
        "outvoted (a majority of the members runs another configuration; each keeps its groups and takes no other): b; not running the rendered configuration h1: b runs h0"
    );
    // Degraded names the most pressing cause first: d is offline.
    assert_eq!(condition_of(&status, "Degraded").1, "MemberOffline");

    // As JSON, as the CRD names the fields.
    let value = serde_json::to_value(&status.members[1]).unwrap();
    assert_eq!(value["configOutvoted"], true);
    assert_eq!(
        value["linksDown"],
        json!([{"seenBy": "a", "links": [1]}, {"seenBy": "c", "links": [0, 1]}])
    );
    // Nothing to say: the fields are left out.
    let value = serde_json::to_value(&status.members[3]).unwrap();
    assert!(value.get("configOutvoted").is_none(), "{value}");
    assert!(value.get("linksDown").is_none(), "{value}");
}

#[test]
fn config_synchronized_names_the_members_on_another_configuration() {
    let (mut c, mut leases) = split_cluster_leases();
    c.spec.members.pop();
    leases.pop();
    // a and b on the rendered configuration, b no longer outvoted, neither reports a
    // link down; c has not reported a hash at all.
    leases[1] = node_lease("b", Duration::from_millis(100), "h1", true, &[]);
    leases[2]
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .remove(names::CONFIG_HASH);
    leases[0] = node_lease("a", Duration::from_millis(100), "h1", true, &[]);
    let reports = Reports::from_leases("c", &leases);
    let status = cluster_status(&c, &[], Some("h1".into()), &reports, Timestamp::now());
    assert_writable(&status);
    assert_eq!(
        condition_of(&status, "ConfigSynchronized"),
        (
            "False".to_owned(),
            "ConfigMismatch".to_owned(),
            "not running the rendered configuration h1: c runs none it reports".to_owned()
        )
    );
    // c's view still says b's links 0 and 1 are down.
    assert_eq!(condition_of(&status, "Degraded").1, "ConfigNotSynchronized");

    // Everyone on h1, links fine but c still does not hear b over links 0 and 1.
    leases[2] = with_view(
        node_lease("c", Duration::from_millis(100), "h1", true, &[]),
        json!({"quorate": true, "alive": ["a", "b", "c"], "linksDown": {"b": [0, 1]}, "configMismatch": {}}),
    );
    let reports = Reports::from_leases("c", &leases);
    let status = cluster_status(&c, &[], Some("h1".into()), &reports, Timestamp::now());
    assert_writable(&status);
    assert_eq!(
        condition_of(&status, "ConfigSynchronized"),
        (
            "True".to_owned(),
            "AllMembersSynchronized".to_owned(),
            "every live member runs the rendered configuration h1".to_owned()
        )
    );
    assert_eq!(
        condition_of(&status, "Degraded"),
        (
            "True".to_owned(),
            "HeartbeatLinkDown".to_owned(),
            "heartbeat links down (the members stay alive over their other links): c does not hear b over links 0, 1".to_owned()
        )
    );

    // Never rendered (an invalid spec from the start): nothing to be synchronized to.
    let status = cluster_status(&c, &[], None, &reports, Timestamp::now());
    let (synced, reason, _) = condition_of(&status, "ConfigSynchronized");
    assert_eq!(
        (synced.as_str(), reason.as_str()),
        ("False", "ConfigMismatch")
    );
}

#[test]
fn outvotes_and_links_become_one_event_per_transition() {
    use crate::testing::apiserver_rules::condition_reason;
    let (c, leases) = split_cluster_leases();
    let reports = Reports::from_leases("c", &leases);
    let now = Timestamp::now();
    // Before: every member online, nobody outvoted, every link up.
    let quiet = [
        node_lease("a", Duration::from_millis(100), "h1", true, &[]),
        node_lease("b", Duration::from_millis(100), "h1", true, &[]),
        node_lease("c", Duration::from_millis(100), "h1", true, &[]),
        node_lease("d", Duration::from_millis(100), "h1", true, &[]),
    ];
    let before = cluster_status(
        &c,
        &[],
        Some("h1".into()),
        &Reports::from_leases("c", &quiet),
        now,
    );
    let after = cluster_status(&c, &[], Some("h1".into()), &reports, now);
    let notices = cluster_notices(&before, &after);
    let seen: Vec<_> = notices
        .iter()
        .map(|n| (n.reason, n.warning, n.note.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (
                "HeartbeatLinkDown",
                true,
                "heartbeat link 1 of member a carries none of its heartbeats (seen by b); it stays alive over its other links"
            ),
            (
                "ConfigOutvoted",
                true,
                "member b runs h0: a majority of the members runs another configuration, so it keeps its groups and takes no other"
            ),
            (
                "HeartbeatLinkDown",
                true,
                "heartbeat links 0, 1 of member b carry none of its heartbeats (seen by a, c); it stays alive over its other links"
            ),
            (
                "HeartbeatLinkDown",
                true,
                "heartbeat link 1 of member c carries none of its heartbeats (seen by b); it stays alive over its other links"
            ),
            ("MemberDown", true, "member d stopped reporting"),
        ]
    );
    for notice in &notices {
        assert_eq!(condition_reason(notice.reason), Ok(()));
        assert!(notice.note.len() <= super::EVENT_NOTE_MAX_BYTES);
    }
    // Nothing changes: no Event. A second observer of the same link: no Event.
    let mut again = after.clone();
    assert_eq!(cluster_notices(&after, &again), []);
    again.members[0].links_down.push(crate::api::LinksDown {
        seen_by: "c".into(),
        links: vec![1],
    });
    assert_eq!(cluster_notices(&after, &again), []);
    // Back: one Normal Event each.
    let back = cluster_notices(&after, &before);
    let seen: Vec<_> = back.iter().map(|n| (n.reason, n.warning)).collect();
    assert_eq!(
        seen,
        [
            ("HeartbeatLinkUp", false),
            ("ConfigOutvoteEnded", false),
            ("HeartbeatLinkUp", false),
            ("HeartbeatLinkUp", false),
            ("MemberUp", false),
        ]
    );
    assert_eq!(
        back[1].note,
        "member b is no longer outvoted: it takes groups again"
    );
    // An outvoted member with links down that stops reporting: MemberDown only.
    let mut gone = after.clone();
    gone.members[1] = crate::api::MemberStatus {
        state: MemberState::Offline,
        config_outvoted: false,
        links_down: Vec::new(),
        ..after.members[1].clone()
    };
    let seen: Vec<_> = cluster_notices(&after, &gone)
        .iter()
        .map(|n| n.reason)
        .collect();
    assert_eq!(seen, ["MemberDown"]);
}
