//! Tests of what `kubectl failover` prints: the objects as the API server returns
//! them, in; the exact text or JSON, out. docs/kubectl-plugin.md shows these outputs.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{Format, explain, status, timeline};
use crate::api::{FailoverCluster, ResourceGroup};

/// The time every test prints at.
fn now() -> Timestamp {
    "2025-06-01T12:00:00Z".parse().unwrap()
}

/// `prod`: three members, `c` paused, as the operator reports it: `c` runs an older
/// configuration and is outvoted, heartbeat link 1 between `a` and `b` is down.
fn cluster() -> FailoverCluster {
    serde_json::from_value(json!({
        "apiVersion": "failover.dev/v1alpha1", "kind": "FailoverCluster",
        "metadata": {"name": "prod", "namespace": "ha"},
        "spec": {"members": [
            {"node": "a", "priority": 200},
            {"node": "b", "priority": 100},
            {"node": "c", "priority": 50, "paused": true},
        ]},
        "status": {
            "members": [
                {"node": "a", "state": "Online", "synchronized": true,
                 "appliedConfigHash": "5d41402abc4b",
                 "lastHeartbeat": "2025-06-01T11:59:59Z",
                 "linksDown": [{"seenBy": "b", "links": [1]}]},
                {"node": "b", "state": "Online", "synchronized": true,
                 "appliedConfigHash": "5d41402abc4b",
                 "lastHeartbeat": "2025-06-01T11:59:58Z",
                 "linksDown": [{"seenBy": "a", "links": [1]}]},
                {"node": "c", "state": "Paused", "synchronized": false,
                 "appliedConfigHash": "0c1d2e3f4a5b", "configOutvoted": true,
                 "lastHeartbeat": "2025-06-01T11:59:15Z"},
            ],
            "configHash": "5d41402abc4b",
            "quorum": {"state": "Quorate", "voters": 3, "connected": 3},
            "conditions": [{"type": "QuorumLost", "status": "False", "reason": "Quorate",
                            "message": "3 of 3 voters connected",
                            "lastTransitionTime": "2025-06-01T10:00:00Z"},
                           {"type": "ConfigSynchronized", "status": "False",
                            "reason": "ConfigOutvoted",
                            "message": "outvoted (a majority of the members runs another configuration; each keeps its groups and takes no other): c; not running the rendered configuration 5d41402abc4b: c runs 0c1d2e3f4a5b",
                            "lastTransitionTime": "2025-06-01T11:58:00Z"}],
        },
    }))
    .unwrap()
}

/// A cluster just created: no status at all.
fn fresh_cluster() -> FailoverCluster {
    serde_json::from_value(json!({
        "apiVersion": "failover.dev/v1alpha1", "kind": "FailoverCluster",
        "metadata": {"name": "prod", "namespace": "ha"},
        "spec": {"members": [{"node": "a"}, {"node": "b"}], "quorum": "none"},
    }))
    .unwrap()
}

fn group(name: &str, status: Value) -> ResourceGroup {
    let mut object = json!({
        "apiVersion": "failover.dev/v1alpha1", "kind": "ResourceGroup",
        "metadata": {"name": name, "namespace": "ha"},
        "spec": {"cluster": "prod", "resources": [
            {"name": "vip", "virtualIP": {"address": "10.0.0.10/24"}},
        ]},
    });
    if !status.is_null() {
        object["status"] = status;
    }
    serde_json::from_value(object).unwrap()
}

/// `web`: moved to `b` by hand, then taken by `a` when `b` was lost (`b` is back
/// since); the members' explanations as the agents word them, two takeovers.
fn web() -> ResourceGroup {
    group(
        "web",
        json!({
            "owner": "a", "epoch": 4, "phase": "Online", "failovers": 1,
            "lastTransition": {"reason": "OwnerLost",
                               "message": "web moves from b to a: b is not alive (no heartbeat within deadAfter)",
                               "time": "2025-06-01T11:55:00Z"},
            "members": [
                {"node": "a", "eligible": true, "reason": "a owns web: web stays on a: it is eligible and no better member asks for it"},
                {"node": "b", "eligible": true, "reason": "b is eligible for web but a owns it: web stays on a: it is eligible and no better member asks for it"},
                {"node": "c", "eligible": false, "reason": "c cannot own web: it is paused"},
            ],
            "recentTakeovers": [
                {"node": "a", "reason": "OwnerLost", "epoch": 4,
                 "time": "2025-06-01T11:55:00Z",
                 "phases": [{"phase": "decided", "ms": 0.4},
                            {"phase": "ledger", "ms": 3.4},
                            {"phase": "vip_up", "ms": 4.1},
                            {"phase": "arp_sent", "ms": 4.63},
                            {"phase": "online", "ms": 212.3}]},
                {"node": "b", "reason": "ManualMove", "epoch": 3,
                 "time": "2025-05-31T09:00:00Z"},
            ],
        }),
    )
}

/// `db`: no status yet, pinned to `b` by `spec.owner`.
fn db() -> ResourceGroup {
    let mut g = group("db", Value::Null);
    g.spec.owner = Some("b".to_owned());
    g
}

/// The status the tests print is one the operator could write: the API server
/// (and readers of conditions) would take it.
#[test]
fn the_printed_status_is_one_the_api_server_takes() {
    use crate::testing::apiserver_rules::{conditions, status_schema, validate_against_schema};
    for c in [cluster(), fresh_cluster()] {
        let value = serde_json::to_value(&c.status).unwrap();
        if value.is_null() {
            continue;
        }
        let mut violations = validate_against_schema(&status_schema("FailoverCluster"), &value);
        violations.extend(conditions(&value["conditions"]));
        assert_eq!(violations, Vec::<String>::new());
    }
}

#[test]
fn status_table() {
    let text = status(&cluster(), &[db(), web()], now(), Format::Table);
    let expected = "\
Cluster:  prod
Quorum:   Quorate (3 of 3 voters connected)
Config:   5d41402abc4b (2 of 3 members synchronized)
Mismatch: c runs 0c1d2e3f4a5b (not the rendered 5d41402abc4b: its agent has not loaded it yet, or cannot: see its log)
Outvoted: a majority runs another configuration: c keeps its groups and takes no other
QuorumLost: False Quorate: 3 of 3 voters connected
ConfigSynchronized: False ConfigOutvoted: outvoted (a majority of the members runs another configuration; each keeps its groups and takes no other): c; not running the rendered configuration 5d41402abc4b: c runs 0c1d2e3f4a5b

MEMBER  STATE   PRIORITY  PAUSED  SYNCHRONIZED  LAST HEARTBEAT  LINKS DOWN
a       Online  200       false   true          1s              1 (seen by b)
b       Online  100       false   true          2s              1 (seen by a)
c       Paused  50        true    false         45s             -

GROUP  OWNER            PHASE   EPOCH  FAILOVERS  LAST TRANSITION
db     - (pinned to b)  -       -      0          -
web    a                Online  4      1          OwnerLost 5m ago: web moves from b to a: b is not alive (no heartbeat within deadAfter)
";
    assert_eq!(text, expected, "\n{text}");
}

#[test]
fn status_json_names_fields_as_the_crds() {
    let text = status(&cluster(), &[web()], now(), Format::Json);
    assert!(text.ends_with("}\n"), "{text}");
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["cluster"], "prod");
    assert_eq!(doc["namespace"], "ha");
    assert_eq!(
        doc["quorum"],
        json!({"state": "Quorate", "voters": 3, "connected": 3})
    );
    assert_eq!(doc["configHash"], "5d41402abc4b");
    assert_eq!(
        doc["members"][2],
        json!({"node": "c", "priority": 50, "paused": true, "state": "Paused",
               "synchronized": false, "appliedConfigHash": "0c1d2e3f4a5b",
               "configOutvoted": true, "linksDown": [],
               "lastHeartbeat": "2025-06-01T11:59:15Z", "quarantinedUntil": null})
    );
    assert_eq!(
        doc["members"][0]["linksDown"],
        json!([{"seenBy": "b", "links": [1]}])
    );
    assert_eq!(doc["members"][0]["configOutvoted"], false);
    assert_eq!(doc["groups"][0]["name"], "web");
    assert_eq!(doc["groups"][0]["owner"], "a");
    assert_eq!(doc["groups"][0]["pinnedTo"], Value::Null);
    assert_eq!(doc["groups"][0]["phase"], "Online");
    assert_eq!(doc["groups"][0]["epoch"], 4);
    assert_eq!(doc["groups"][0]["lastTransition"]["reason"], "OwnerLost");
    assert_eq!(doc["conditions"][0]["type"], "QuorumLost");
}

#[test]
fn status_of_a_fresh_cluster_says_there_is_no_status_yet() {
    let text = status(&fresh_cluster(), &[], now(), Format::Table);
    let expected = "\
Cluster:  prod
Quorum:   unknown (no status yet)
Config:   - (0 of 2 members synchronized)

MEMBER  STATE  PRIORITY  PAUSED  SYNCHRONIZED  LAST HEARTBEAT  LINKS DOWN
a       -      100       false   -             -               -
b       -      100       false   -             -               -

No ResourceGroup runs on prod.
";
    assert_eq!(text, expected, "\n{text}");

    let doc: Value =
        serde_json::from_str(&status(&fresh_cluster(), &[db()], now(), Format::Json)).unwrap();
    assert_eq!(doc["quorum"], Value::Null);
    assert_eq!(doc["configHash"], Value::Null);
    assert_eq!(doc["conditions"], json!([]));
    assert_eq!(doc["members"][0]["state"], Value::Null);
    assert_eq!(doc["groups"][0]["owner"], Value::Null);
    assert_eq!(doc["groups"][0]["pinnedTo"], "b");
    assert_eq!(doc["groups"][0]["failovers"], 0);
}

#[test]
fn ages_as_kubectl_prints_them() {
    let mut c = cluster();
    let members = &mut c.status.as_mut().unwrap().members;
    let at = |s: &str| {
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            s.parse().unwrap(),
        ))
    };
    members[0].last_heartbeat = at("2025-06-01T11:59:59.150Z");
    members[1].last_heartbeat = at("2025-06-01T09:00:00Z");
    // Clock skew: a heartbeat "from the future" is 0ms old, not negative.
    members[2].last_heartbeat = at("2025-06-01T12:00:03Z");
    let text = status(&c, &[], now(), Format::Table);
    assert!(
        text.contains(
            "\na       Online  200       false   true          850ms           1 (seen by b)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "\nb       Online  100       false   true          3h              1 (seen by a)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("\nc       Paused  50        true    false         0ms             -\n"),
        "{text}"
    );
}

#[test]
fn explain_says_why_each_member_is_or_is_not_the_owner() {
    let text = explain(&web(), now(), Format::Table);
    let expected = "\
Group:    web (cluster prod)
Owner:    a, phase Online, epoch 4
Because:  OwnerLost (5m ago): web moves from b to a: b is not alive (no heartbeat within deadAfter)

MEMBER  OWNER  ELIGIBLE  WHY
a       yes    yes       a owns web: web stays on a: it is eligible and no better member asks for it
b       no     yes       b is eligible for web but a owns it: web stays on a: it is eligible and no better member asks for it
c       no     no        c cannot own web: it is paused
";
    assert_eq!(text, expected, "\n{text}");
}

#[test]
fn explain_json_keeps_the_members_explanations() {
    let doc: Value = serde_json::from_str(&explain(&web(), now(), Format::Json)).unwrap();
    assert_eq!(doc["group"], "web");
    assert_eq!(doc["owner"], "a");
    assert_eq!(doc["phase"], "Online");
    assert_eq!(
        doc["members"][2],
        json!({"node": "c", "eligible": false, "reason": "c cannot own web: it is paused"})
    );
}

#[test]
fn explain_of_a_group_without_status_shows_the_pin_and_no_reports() {
    let text = explain(&db(), now(), Format::Table);
    let expected = "\
Group:    db (cluster prod)
Owner:    none, phase -, epoch -
Pinned:   to b by spec.owner

No member has explained itself yet (no report from the agents).
";
    assert_eq!(text, expected, "\n{text}");
    let doc: Value = serde_json::from_str(&explain(&db(), now(), Format::Json)).unwrap();
    assert_eq!(doc["pinnedTo"], "b");
    assert_eq!(doc["members"], json!([]));
}

#[test]
fn timeline_phase_by_phase_in_milliseconds() {
    let text = timeline(&web(), Format::Table);
    let expected = "\
2025-06-01T11:55:00Z a took web (OwnerLost), epoch 4
  PHASE     SINCE START
  decided   0.4 ms
  ledger    3.4 ms
  vip_up    4.1 ms
  arp_sent  4.6 ms
  online    212.3 ms

2025-05-31T09:00:00Z b took web (ManualMove), epoch 3
  (no phase recorded)
";
    assert_eq!(text, expected, "\n{text}");
}

#[test]
fn timeline_json_is_the_recorded_takeovers() {
    let doc: Value = serde_json::from_str(&timeline(&web(), Format::Json)).unwrap();
    assert_eq!(doc["group"], "web");
    assert_eq!(
        doc["recentTakeovers"][0]["phases"][4],
        json!({"phase": "online", "ms": 212.3})
    );
    assert_eq!(doc["recentTakeovers"][1]["reason"], "ManualMove");
}

#[test]
fn timeline_of_a_group_that_never_failed_over() {
    assert_eq!(timeline(&db(), Format::Table), "db: no failover recorded\n");
    let doc: Value = serde_json::from_str(&timeline(&db(), Format::Json)).unwrap();
    assert_eq!(doc, json!({"group": "db", "recentTakeovers": []}));
}

/// A live member on a configuration while none is rendered (the spec was never
/// valid): the line says so instead of naming a rendered hash.
#[test]
fn a_mismatch_without_a_rendered_configuration() {
    let mut c = fresh_cluster();
    c.status = serde_json::from_value(json!({
        "members": [{"node": "a", "state": "Online", "synchronized": false,
                     "appliedConfigHash": "0c1d2e3f4a5b"},
                    {"node": "b", "state": "Offline", "synchronized": false}],
    }))
    .unwrap();
    let text = status(&c, &[], now(), Format::Table);
    assert!(
        text.contains("Config:   - (0 of 2 members synchronized)\nMismatch: a runs 0c1d2e3f4a5b (no configuration is rendered yet)\n\nMEMBER"),
        "{text}"
    );
}

/// docs/kubectl-plugin.md shows these very outputs.
#[test]
fn the_docs_show_these_outputs() {
    let docs = include_str!("../../../docs/kubectl-plugin.md");
    for output in [
        status(&cluster(), &[db(), web()], now(), Format::Table),
        status(&fresh_cluster(), &[], now(), Format::Table),
        explain(&web(), now(), Format::Table),
        timeline(&web(), Format::Table),
    ] {
        assert!(docs.contains(&output), "not in the docs:\n{output}");
    }
}
