//! Tests of what `failover ctl --standalone` prints: a configuration file and an
//! agent's `/state`, in; the exact text or JSON, out. docs/kubectl-plugin.md
//! ("Standalone") shows these outputs.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{explain, status, timeline};
use crate::api::{FailoverCluster, ResourceGroup, load_documents};
use crate::contract::report::AgentState;
use crate::plugin::Format;

/// The time every test prints at.
fn now() -> Timestamp {
    "2025-06-01T12:00:00Z".parse().unwrap()
}

/// The file every member runs: three members, `c` paused, `web` and `db` (pinned
/// to `b`).
pub const FILE: &str = "\
apiVersion: failover.dev/v1alpha1
kind: FailoverCluster
metadata:
  name: pair
spec:
  members:
    - {node: a, address: 10.0.0.1, priority: 200}
    - {node: b, address: 10.0.0.2, priority: 100}
    - {node: c, address: 10.0.0.3, priority: 50, paused: true}
---
apiVersion: failover.dev/v1alpha1
kind: ResourceGroup
metadata:
  name: web
spec:
  cluster: pair
  failoverLimit: {maxFailovers: 3, period: 1h}
  resources:
    - name: vip
      virtualIP: {address: 10.0.0.10/24}
---
apiVersion: failover.dev/v1alpha1
kind: ResourceGroup
metadata:
  name: db
spec:
  cluster: pair
  owner: b
  resources:
    - name: db-vip
      virtualIP: {address: 10.0.0.11/24}
";

/// The hash of [`FILE`], as `model::hash_text` writes it.
pub const FILE_HASH: &str = "2ac72d6c714d5bbc";

/// `a`'s `/state`: it took `web` when `b` was lost (`b` is back since, one of its
/// links is down), `c` is not alive.
pub fn state() -> Value {
    json!({
        "cluster": "default/pair",
        "node": "a",
        "configHash": FILE_HASH,
        "view": {"quorate": true, "alive": ["a", "b"], "held": {"web": 4}, "failed": [],
                 "failovers": {"web": 1}, "linksDown": {"b": [1]}},
        "owned": {"web": {"epoch": 4, "reason": "OwnerLost",
                          "message": "web moves from b to a: b is not alive (no heartbeat within deadAfter)",
                          "since": "2025-06-01T11:55:00Z",
                          "resources": [{"name": "vip", "state": "Online", "reason": "Started", "restarts": 0}]}},
        "explain": {"db": "a cannot own db: it is not spec.owner (b)",
                    "web": "a owns web: web stays on a: it is eligible and no better member asks for it"},
        "takeovers": [{"group": "web", "reason": "OwnerLost", "epoch": 4, "time": "2025-06-01T11:55:00Z",
                       "phases": [{"phase": "decided", "ms": 0.4}, {"phase": "ledger", "ms": 3.4},
                                  {"phase": "vip_up", "ms": 4.1}, {"phase": "arp_sent", "ms": 4.63},
                                  {"phase": "online", "ms": 212.3}]}],
    })
}

fn file() -> (FailoverCluster, Vec<ResourceGroup>) {
    let (cluster, mut groups) = load_documents(FILE).unwrap();
    groups.sort_by_key(kube::ResourceExt::name_any);
    (cluster, groups)
}

fn agent_state(value: Value) -> AgentState {
    serde_json::from_value(value).unwrap()
}

fn group<'a>(groups: &'a [ResourceGroup], name: &str) -> &'a ResourceGroup {
    groups
        .iter()
        .find(|g| g.metadata.name.as_deref() == Some(name))
        .unwrap()
}

/// The plugin hashes the file as the agent hashes the file it runs: equal files
/// show as equal.
#[test]
fn the_file_hash_is_the_one_an_agent_running_the_file_reports() {
    let config = crate::contract::model::AgentConfig::from_yaml(FILE).unwrap();
    assert_eq!(crate::contract::model::hash_text(config.hash), FILE_HASH);
}

#[test]
fn status_table_is_one_members_view_beside_the_file() {
    let (cluster, groups) = file();
    let text = status(
        &cluster,
        &groups,
        &agent_state(state()),
        now(),
        Format::Table,
    );
    let expected = format!(
        "\
Cluster:  default/pair
View:     member a's (its agent answered; standalone, every member has its own)
Quorum:   Quorate (2 of 3 members alive)
Config:   {FILE_HASH} (the file's)

MEMBER  ALIVE  PRIORITY  PAUSED  LINKS DOWN
a       yes    200       false   -
b       yes    100       false   1
c       no     50        true    -

GROUP  HELD BY a  EPOCH  FAILOVERS  PINNED TO  WHY
db     no         -      -          b          a cannot own db: it is not spec.owner (b)
web    yes        4      1          -          OwnerLost 5m ago: web moves from b to a: b is not alive (no heartbeat within deadAfter)
"
    );
    assert_eq!(text, expected, "\n{text}");
}

#[test]
fn status_says_when_the_agent_runs_another_configuration() {
    let (cluster, groups) = file();
    let mut value = state();
    value["configHash"] = json!("0000000000000012");
    value["view"]["configMismatch"] = json!({"b": FILE_HASH});
    value["view"]["configOutvoted"] = json!(true);
    value["view"]["failed"] = json!(["db"]);
    value["view"]["quorate"] = json!(false);
    let text = status(&cluster, &groups, &agent_state(value), now(), Format::Table);
    let head = format!(
        "\
Cluster:  default/pair
View:     member a's (its agent answered; standalone, every member has its own)
Quorum:   Lost (2 of 3 members alive)
Config:   0000000000000012, not the file's {FILE_HASH}: a runs another configuration than this file
Mismatch: b runs {FILE_HASH} (keep the file equal on every member)
Outvoted: a majority runs another configuration: a keeps its groups and takes no other
"
    );
    assert!(text.starts_with(&head), "\n{text}");
    assert!(
        text.contains("\ndb     Failed     -      -          b          a cannot own db"),
        "\n{text}"
    );
}

#[test]
fn status_json_has_the_view_and_both_hashes() {
    let (cluster, groups) = file();
    let text = status(
        &cluster,
        &groups,
        &agent_state(state()),
        now(),
        Format::Json,
    );
    assert!(text.ends_with("}\n"), "{text}");
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["cluster"], "default/pair");
    assert_eq!(doc["node"], "a");
    assert_eq!(doc["quorate"], true);
    assert_eq!(doc["configHash"], FILE_HASH);
    assert_eq!(doc["fileConfigHash"], FILE_HASH);
    assert_eq!(
        doc["members"][1],
        json!({"node": "b", "priority": 100, "paused": false, "alive": true, "linksDown": [1]})
    );
    assert_eq!(doc["groups"][0]["name"], "db");
    assert_eq!(doc["groups"][0]["held"], false);
    assert_eq!(doc["groups"][0]["pinnedTo"], "b");
    assert_eq!(doc["groups"][0]["owned"], Value::Null);
    assert_eq!(doc["groups"][1]["held"], true);
    assert_eq!(doc["groups"][1]["epoch"], 4);
    assert_eq!(doc["groups"][1]["failovers"], 1);
    assert_eq!(doc["groups"][1]["owned"]["reason"], "OwnerLost");
    assert_eq!(doc["groups"][1]["owned"]["resources"][0]["state"], "Online");
}

#[test]
fn explain_a_held_group_with_its_resources() {
    let (_, groups) = file();
    let text = explain(
        group(&groups, "web"),
        &agent_state(state()),
        now(),
        Format::Table,
    );
    let expected = "\
Group:    web (cluster default/pair)
View:     member a's (its agent answered; standalone, every member has its own)
Held:     by a, epoch 4, OwnerLost 5m ago: web moves from b to a: b is not alive (no heartbeat within deadAfter)
Why:      a owns web: web stays on a: it is eligible and no better member asks for it

RESOURCE  STATE   REASON   RESTARTS  MESSAGE
vip       Online  Started  0         -
";
    assert_eq!(text, expected, "\n{text}");
}

#[test]
fn explain_a_group_held_elsewhere() {
    let (_, groups) = file();
    let text = explain(
        group(&groups, "db"),
        &agent_state(state()),
        now(),
        Format::Table,
    );
    let expected = "\
Group:    db (cluster default/pair)
View:     member a's (its agent answered; standalone, every member has its own)
Held:     not by a
Pinned:   to b by spec.owner
Why:      a cannot own db: it is not spec.owner (b)
";
    assert_eq!(text, expected, "\n{text}");
    let doc: Value = serde_json::from_str(&explain(
        group(&groups, "db"),
        &agent_state(state()),
        now(),
        Format::Json,
    ))
    .unwrap();
    assert_eq!(
        doc,
        json!({"cluster": "default/pair", "node": "a", "name": "db", "held": false,
               "epoch": null, "pinnedTo": "b", "failed": false, "failovers": null,
               "owned": null, "explain": "a cannot own db: it is not spec.owner (b)"})
    );
}

#[test]
fn timeline_is_the_agents_own_takeovers() {
    let state = agent_state(state());
    let text = timeline("web", &state, Format::Table);
    let expected = "\
2025-06-01T11:55:00Z a took web (OwnerLost), epoch 4
  PHASE     SINCE START
  decided   0.4 ms
  ledger    3.4 ms
  vip_up    4.1 ms
  arp_sent  4.6 ms
  online    212.3 ms
";
    assert_eq!(text, expected, "\n{text}");
    let doc: Value = serde_json::from_str(&timeline("web", &state, Format::Json)).unwrap();
    assert_eq!(doc["group"], "web");
    assert_eq!(doc["recentTakeovers"][0]["node"], "a");
    assert_eq!(
        doc["recentTakeovers"][0]["phases"][4],
        json!({"phase": "online", "ms": 212.3})
    );
    assert_eq!(
        timeline("db", &state, Format::Table),
        "db: no takeover by a recorded (standalone, each member keeps its own)\n"
    );
}

/// docs/kubectl-plugin.md ("Standalone") shows these very outputs.
#[test]
fn the_docs_show_these_outputs() {
    let docs = include_str!("../../../../docs/kubectl-plugin.md");
    let (cluster, groups) = file();
    let state = agent_state(state());
    for output in [
        status(&cluster, &groups, &state, now(), Format::Table),
        explain(group(&groups, "web"), &state, now(), Format::Table),
        explain(group(&groups, "db"), &state, now(), Format::Table),
        timeline("web", &state, Format::Table),
    ] {
        assert!(docs.contains(&output), "not in the docs:\n{output}");
    }
}
