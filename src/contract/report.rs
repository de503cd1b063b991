//! What an agent reports in its node Lease and the operator reads back into status:
//! the values of the `failover.dev/view`, `failover.dev/owned` and
//! `failover.dev/takeovers` annotations (`names::VIEW`, `names::OWNED`,
//! `names::TAKEOVERS`), one type each for both sides, so the writer and the reader
//! cannot spell the JSON differently. The same report, whole, is what an agent
//! serves at `/state` ([`AgentState`]) and `kubectl failover --standalone` reads.
//!
//! Owns the JSON form of those values and the reason codes of resource states. It must never hold how they are gathered
//! (the agent's runtime) or what status makes of them (the operator's, the plugin's).

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::api::conditions::event;
use crate::api::{PhaseTime, ResourceState};
use crate::contract::names;
use crate::placement::Reason;

/// Reason code of a resource the agent accepts and reports but does not run in
/// this release (`workload`, `healthCheck`).
pub const NOT_RUN: &str = "NotRunInThisRelease";

/// Why a resource is in its state on the node that runs its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceReason {
    /// Waiting for the resources it depends on, or being brought online.
    Starting,
    /// Brought online.
    Started,
    /// Being taken offline.
    Stopping,
    /// Taken offline.
    Stopped,
    /// Its start failed.
    StartFailed,
    /// Its start took longer than the step timeout.
    StartTimedOut,
    /// Its stop took longer than the step timeout (what it holds expires or is
    /// taken by force).
    StopTimedOut,
    /// Not started: a resource it depends on failed.
    DependencyFailed,
    /// Accepted, not run in this release ([`NOT_RUN`]).
    NotRunInThisRelease,
    /// Its health check failed `failureThreshold` probes in a row.
    HealthCheckFailed,
    /// Its process exited without being asked to.
    ProcessExited,
    /// It failed again after `restartLimit` restarts within `restartPeriod`: the
    /// group fails over.
    RestartLimitReached,
}

impl ResourceReason {
    /// Every reason, in declaration order: a new reason goes here too, so the docs
    /// test (`tests/docs_truth.rs`) asks for its documentation.
    pub const ALL: [ResourceReason; 12] = [
        ResourceReason::Starting,
        ResourceReason::Started,
        ResourceReason::Stopping,
        ResourceReason::Stopped,
        ResourceReason::StartFailed,
        ResourceReason::StartTimedOut,
        ResourceReason::StopTimedOut,
        ResourceReason::DependencyFailed,
        ResourceReason::NotRunInThisRelease,
        ResourceReason::HealthCheckFailed,
        ResourceReason::ProcessExited,
        ResourceReason::RestartLimitReached,
    ];

    /// The stable code (report, status, logs, metrics).
    pub fn code(self) -> &'static str {
        match self {
            ResourceReason::Starting => "Starting",
            ResourceReason::Started => "Started",
            ResourceReason::Stopping => "Stopping",
            ResourceReason::Stopped => "Stopped",
            ResourceReason::StartFailed => "StartFailed",
            ResourceReason::StartTimedOut => "StartTimedOut",
            ResourceReason::StopTimedOut => "StopTimedOut",
            ResourceReason::DependencyFailed => "DependencyFailed",
            ResourceReason::NotRunInThisRelease => NOT_RUN,
            // The same words name the Warning Events of these failures.
            ResourceReason::HealthCheckFailed => event::HEALTH_CHECK_FAILED,
            ResourceReason::ProcessExited => event::PROCESS_EXITED,
            ResourceReason::RestartLimitReached => event::RESTART_LIMIT_REACHED,
        }
    }
}

/// The state of one resource of a group a node runs: JSON `{"name", "state",
/// "reason", "message", "restarts"}`. The reason is a code, kept as text so that a
/// reader older than the writer still reads a report with a code it does not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceReport {
    /// The resource's name in the group.
    pub name: String,
    /// Offline, Starting, Online, Stopping or Failed.
    pub state: ResourceState,
    /// Why ([`ResourceReason::code`]).
    pub reason: String,
    /// Its sentence (an error, a timeout), empty when the reason says it all.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Local restarts of the resource on this node.
    #[serde(default)]
    pub restarts: u32,
}

/// The agent's view (`failover.dev/view`): JSON `{"quorate", "alive", "held",
/// "failed", "failovers", "configMismatch", "configOutvoted", "linksDown"}`;
/// `configMismatch` and `configOutvoted` are written only when there is a mismatch
/// (docs/operations.md, "One configuration on every member"), `linksDown` only while
/// a heartbeat link to a live peer is down (docs/operations.md, "Redundant
/// heartbeat links").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    /// Whether the agent is quorate.
    #[serde(default)]
    pub quorate: bool,
    /// Members it counts alive, itself included, sorted.
    #[serde(default)]
    pub alive: Vec<String>,
    /// Groups it holds, with their epochs.
    #[serde(default)]
    pub held: BTreeMap<String, u64>,
    /// Groups it sees Failed: a failover is due and the failover limit forbids it.
    #[serde(default)]
    pub failed: Vec<String>,
    /// Per group with a failover limit: its failovers within the period, as this
    /// node counts them (`status.failovers`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failovers: BTreeMap<String, u32>,
    /// Live peers that have run another configuration than this node for longer
    /// than the grace: the hash (as in `failover.dev/config-hash`) each runs.
    #[serde(
        default,
        rename = "configMismatch",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub config_mismatch: BTreeMap<String, String>,
    /// A majority of the members runs another configuration than this node: it
    /// keeps the groups it runs and takes no other.
    #[serde(
        default,
        rename = "configOutvoted",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub config_outvoted: bool,
    /// Live peers with heartbeat links that carried none of their heartbeats within
    /// deadAfter: the indexes of those links (0 = `address`, i =
    /// `additionalAddresses[i-1]`).
    #[serde(
        default,
        rename = "linksDown",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub links_down: BTreeMap<String, Vec<usize>>,
}

/// One group a node runs (a value of `failover.dev/owned`, keyed by group): JSON
/// `{"epoch", "reason", "message", "since", "resources"}`, the reason as its code,
/// the time in RFC 3339, the resources in start order. The agent always writes
/// `since`; a reader takes a report without one (or with an unreadable one) as one
/// that does not say when, and one without `resources` (an older agent) as one
/// that does not say how its resources are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owned {
    /// The ownership epoch (it may rise while the node runs the group, when the
    /// group's record was higher).
    pub epoch: u64,
    /// Why placement made this node the owner.
    pub reason: Reason,
    /// Its sentence.
    #[serde(default)]
    pub message: String,
    /// When this node took it (wall clock).
    #[serde(default, with = "rfc3339", skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// The state of each resource of the group here, in start order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceReport>,
}

/// One takeover a node made (an item of `failover.dev/takeovers`, newest first):
/// JSON `{"group", "reason", "epoch", "time", "phases": [{"phase", "ms"}]}`, the
/// reason as its code (kept as text, as a newer agent's code must still read), the
/// time in RFC 3339: when the takeover began (the detection of the failure it
/// answers, or placement's decision for a planned move), each phase with the
/// milliseconds since then. A record without a readable time reads as one that does
/// not say when (the operator skips it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Takeover {
    /// The group taken.
    pub group: String,
    /// Why placement made this node the owner ([`Reason::code`]).
    pub reason: String,
    /// The ownership epoch the node took the group at.
    pub epoch: u64,
    /// When the takeover began (wall clock).
    #[serde(default, with = "rfc3339")]
    pub time: Option<Timestamp>,
    /// Each phase reached, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<PhaseTime>,
}

/// One node's whole report: each field is the value of one node Lease annotation
/// ([`NodeReport::annotations`]), so the Lease and `/state` cannot say different
/// things.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeReport {
    /// The hash of the configuration the node runs (`failover.dev/config-hash`,
    /// as `model::hash_text` writes it).
    pub config_hash: String,
    /// `failover.dev/view`.
    pub view: View,
    /// `failover.dev/owned`: the groups the node runs.
    pub owned: BTreeMap<String, Owned>,
    /// `failover.dev/explain`: per group, why the node is or is not its owner.
    pub explain: BTreeMap<String, String>,
    /// `failover.dev/takeovers`: the node's last takeovers, newest first.
    pub takeovers: Vec<Takeover>,
}

impl NodeReport {
    /// The node Lease annotations: one per field, each its JSON (the hash as text).
    pub fn annotations(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (names::OWNED.to_owned(), json(&self.owned)),
            (names::CONFIG_HASH.to_owned(), self.config_hash.clone()),
            (names::VIEW.to_owned(), json(&self.view)),
            (names::EXPLAIN.to_owned(), json(&self.explain)),
            (names::TAKEOVERS.to_owned(), json(&self.takeovers)),
        ])
    }
}

/// What a running agent serves at `GET /state` on its `--metrics-addr`: its
/// [`NodeReport`] (the fields side by side, as in the node Lease) with the cluster
/// (`namespace/name`, as `model::cluster_id`) and the node it is, because a reader
/// must know whose view it holds: one member's, not the cluster's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentState {
    /// The cluster the agent runs.
    pub cluster: String,
    /// The member whose agent this is.
    pub node: String,
    /// Its report.
    #[serde(flatten)]
    pub report: NodeReport,
}

/// Largest `/state` document an agent sends and a reader accepts. A report grows
/// with the groups (an explanation and at most two takeovers each, well under
/// 2 KiB): 64 groups of 64 members are far below it, a runaway is refused.
pub const MAX_STATE_BYTES: usize = 4 * 1024 * 1024;

/// A report value as JSON, the keys of its objects sorted (through `Value`, as the
/// annotations have always been written). The values hold only strings, numbers,
/// booleans, lists and maps with string keys: serializing them cannot fail.
fn json(value: &impl Serialize) -> String {
    serde_json::to_value(value).unwrap_or_default().to_string()
}

/// An optional timestamp as RFC 3339 text (jiff's `Display` and `FromStr`);
/// unreadable text reads as `None`.
mod rfc3339 {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        time: &Option<Timestamp>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match time {
            Some(time) => serializer.collect_str(time),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Timestamp>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        Ok(text.and_then(|t| t.parse().ok()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn owned_is_written_with_the_reason_code_and_an_rfc3339_time() {
        let owned = Owned {
            epoch: 7,
            reason: Reason::OwnerLeaving,
            message: "b leaves".into(),
            since: Some("2026-12-01T05:00:00Z".parse().unwrap()),
            resources: Vec::new(),
        };
        let value = serde_json::to_value(&owned).unwrap();
        assert_eq!(
            value,
            json!({"epoch": 7, "reason": "OwnerLeaving", "message": "b leaves", "since": "2026-12-01T05:00:00Z"})
        );
        assert_eq!(serde_json::from_value::<Owned>(value).unwrap(), owned);
    }

    #[test]
    fn owned_carries_each_resources_state_and_reads_without_them() {
        let owned = Owned {
            epoch: 2,
            reason: Reason::Placed,
            message: "m".into(),
            since: None,
            resources: vec![
                ResourceReport {
                    name: "vip".into(),
                    state: ResourceState::Online,
                    reason: ResourceReason::Started.code().into(),
                    message: String::new(),
                    restarts: 0,
                },
                ResourceReport {
                    name: "app".into(),
                    state: ResourceState::Offline,
                    reason: NOT_RUN.into(),
                    message: "workload resources are not run".into(),
                    restarts: 0,
                },
            ],
        };
        let value = serde_json::to_value(&owned).unwrap();
        assert_eq!(
            value["resources"],
            json!([
                {"name": "vip", "state": "Online", "reason": "Started", "restarts": 0},
                {"name": "app", "state": "Offline", "reason": "NotRunInThisRelease",
                 "message": "workload resources are not run", "restarts": 0},
            ])
        );
        assert_eq!(serde_json::from_value::<Owned>(value).unwrap(), owned);
        // An older agent's report has no resources; a newer reason code still reads.
        let old: Owned =
            serde_json::from_value(json!({"epoch": 1, "reason": "Placed", "message": "m"}))
                .unwrap();
        assert!(old.resources.is_empty());
        let newer: Owned = serde_json::from_value(json!({"epoch": 1, "reason": "Placed",
            "resources": [{"name": "x", "state": "Failed", "reason": "SomethingNew"}]}))
        .unwrap();
        assert_eq!(newer.resources[0].reason, "SomethingNew");
    }

    /// The reason is written by its serde name: it must be the stable code that
    /// status, Events and metrics show.
    #[test]
    fn every_reason_is_written_as_its_code() {
        for reason in Reason::ALL {
            assert_eq!(serde_json::to_value(reason).unwrap(), json!(reason.code()));
            let read: Reason = serde_json::from_value(json!(reason.code())).unwrap();
            assert_eq!(read, reason);
            assert_eq!(Reason::from_code(reason.code()), Some(reason));
        }
        assert_eq!(Reason::from_code("OwnerFailed"), None);
    }

    #[test]
    fn owned_without_a_readable_time_reads_without_one() {
        for value in [
            json!({"epoch": 3, "reason": "Placed", "message": "m"}),
            json!({"epoch": 3, "reason": "Placed", "message": "m", "since": "yesterday"}),
        ] {
            let owned: Owned = serde_json::from_value(value).unwrap();
            assert_eq!((owned.epoch, owned.since), (3, None));
        }
    }

    #[test]
    fn a_takeover_is_written_with_its_phases_and_reads_without_a_time() {
        let takeover = Takeover {
            group: "web".into(),
            reason: Reason::OwnerLost.code().into(),
            epoch: 4,
            time: Some("2026-12-01T05:00:00.250Z".parse().unwrap()),
            phases: vec![PhaseTime {
                phase: "online".into(),
                ms: 3.5,
            }],
        };
        let value = serde_json::to_value(&takeover).unwrap();
        assert_eq!(
            value,
            json!({"group": "web", "reason": "OwnerLost", "epoch": 4,
                   "time": "2026-12-01T05:00:00.25Z",
                   "phases": [{"phase": "online", "ms": 3.5}]})
        );
        assert_eq!(serde_json::from_value::<Takeover>(value).unwrap(), takeover);
        let timeless: Takeover = serde_json::from_value(
            json!({"group": "web", "reason": "SomethingNew", "epoch": 1, "time": "soon"}),
        )
        .unwrap();
        assert_eq!((timeless.time, timeless.phases.len()), (None, 0));
    }

    #[test]
    fn a_view_without_fields_reads_as_empty() {
        let view: View = serde_json::from_str("{}").unwrap();
        assert_eq!(view, View::default());
    }
}
