//! Status aggregation: what the agents report in their Leases, turned into
//! FailoverCluster and ResourceGroup status, and the Events worth telling a person.
//!
//! Owns the reading of the Lease annotations of the contract (their values are
//! `contract::report`'s types, the agent writes the same), member states, quorum,
//! conditions and the transitions that become Events. It is pure (the caller passes
//! `now` and the Leases) and must never write anything or decide ownership.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;

use crate::api::conditions::{self as cond, event, reason};
use crate::api::{
    FailoverCluster, FailoverClusterStatus, GroupPhase, LinksDown, MemberExplanation, MemberState,
    MemberStatus, Problem, QuorumMode, QuorumState, QuorumStatus, RECENT_TAKEOVERS, ResourceGroup,
    ResourceGroupStatus, ResourceStatus, TakeoverRecord, Transition,
};
use crate::contract::events::takeover_event;
use crate::contract::names;
use crate::contract::report::{Owned, ResourceReport, Takeover, View};
use crate::placement::Reason;

/// How often an agent renews its node Lease at the least (the contract: every
/// interval, at least every second). A Lease older than `deadAfter` plus this is stale.
pub const RENEW_PERIOD_MAX: Duration = Duration::from_secs(1);

/// `status.members[].lastHeartbeat` moves in steps of this much while the member's
/// state stays the same: status then changes (and is written) when something
/// happens, not on every Lease renewal. State changes show at once.
pub const HEARTBEAT_STATUS_STEP: jiff::SignedDuration = jiff::SignedDuration::from_secs(30);

/// What one agent reports through its node Lease.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeReport {
    /// Last renewal.
    pub renewed: Option<Timestamp>,
    /// Applied config hash.
    pub config_hash: Option<String>,
    /// Its view (absent or malformed: `None`).
    pub view: Option<View>,
    /// Per group: why it is or is not the owner.
    pub explain: BTreeMap<String, String>,
    /// The groups it runs now (absent or malformed annotation: none).
    pub owned: BTreeMap<String, Owned>,
    /// Its last takeovers, newest first (absent or malformed annotation: none).
    pub takeovers: Vec<Takeover>,
}

/// What a group Lease records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ledger {
    /// The owner node.
    pub holder: Option<String>,
    /// `leaseTransitions`.
    pub epoch: Option<u64>,
    /// Reason code of the last change.
    pub reason: Option<String>,
    /// Sentence of the last change.
    pub message: Option<String>,
    /// When the current holder acquired it.
    pub acquired: Option<Timestamp>,
}

/// The node reports and group ledgers of one cluster, from its labelled Leases.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reports {
    /// By node name.
    pub nodes: BTreeMap<String, NodeReport>,
    /// By group name.
    pub groups: BTreeMap<String, Ledger>,
}

impl Reports {
    /// Sorts a cluster's Leases by name prefix (node or group Lease); others are ignored.
    pub fn from_leases(cluster: &str, leases: &[Lease]) -> Self {
        let node_prefix = names::node_lease_prefix(cluster);
        let group_prefix = names::group_lease_prefix(cluster);
        let mut reports = Reports::default();
        for lease in leases {
            let name = lease.name_any();
            let spec = lease.spec.clone().unwrap_or_default();
            let annotations = lease.annotations();
            if let Some(node) = name.strip_prefix(&node_prefix) {
                // The operator creates every member's node Lease; one its agent has
                // never renewed is no report yet (the member is Unknown, not Offline).
                if spec.renew_time.is_none() {
                    continue;
                }
                reports.nodes.insert(
                    node.to_owned(),
                    NodeReport {
                        renewed: spec.renew_time.map(|t| t.0),
                        config_hash: annotations.get(names::CONFIG_HASH).cloned(),
                        view: annotations
                            .get(names::VIEW)
                            .and_then(|v| serde_json::from_str(v).ok()),
                        explain: annotations
                            .get(names::EXPLAIN)
                            .and_then(|v| serde_json::from_str(v).ok())
                            .unwrap_or_default(),
                        owned: annotations
                            .get(names::OWNED)
                            .and_then(|v| serde_json::from_str(v).ok())
                            .unwrap_or_default(),
                        takeovers: annotations
                            .get(names::TAKEOVERS)
                            .and_then(|v| serde_json::from_str(v).ok())
                            .unwrap_or_default(),
                    },
                );
            } else if let Some(group) = name.strip_prefix(&group_prefix) {
                reports.groups.insert(
                    group.to_owned(),
                    Ledger {
                        holder: spec.holder_identity.filter(|h| !h.is_empty()),
                        epoch: spec.lease_transitions.and_then(|t| u64::try_from(t).ok()),
                        reason: annotations.get(names::REASON).cloned(),
                        message: annotations.get(names::MESSAGE).cloned(),
                        acquired: spec.acquire_time.or(spec.renew_time).map(|t| t.0),
                    },
                );
            }
        }
        reports
    }
}

/// Whether a node report is fresh: renewed within `deadAfter` + [`RENEW_PERIOD_MAX`].
fn online(report: Option<&NodeReport>, dead_after: Duration, now: Timestamp) -> bool {
    let Some(renewed) = report.and_then(|r| r.renewed) else {
        return false;
    };
    let age = now.duration_since(renewed);
    // A renewal "in the future" (clock skew between agent and operator) counts as fresh.
    Duration::try_from(age).map_or(true, |age| age <= dead_after + RENEW_PERIOD_MAX)
}

/// Whether a member in `state` reports fresh: its configuration, its view and what
/// it says of the others count.
fn is_live(state: MemberState) -> bool {
    matches!(state, MemberState::Online | MemberState::Paused)
}

/// Builds a condition, keeping `lastTransitionTime` when the status did not change.
fn condition(
    previous: &[Condition],
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let since = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map_or(Time(now), |c| c.last_transition_time.clone());
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time: since,
    }
}

fn bool_status(value: bool) -> &'static str {
    if value {
        cond::STATUS_TRUE
    } else {
        cond::STATUS_FALSE
    }
}

/// The ConfigValid condition's reason and message for a list of problems.
pub fn problems_message(problems: &[Problem]) -> (&'static str, String) {
    if problems.is_empty() {
        return (reason::VALID, "the spec is valid".to_owned());
    }
    let reason = if problems.iter().all(|p| p.path == "spec.heartbeat.port") {
        reason::HEARTBEAT_PORT_CONFLICT
    } else {
        reason::INVALID_SPEC
    };
    let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
    (
        reason,
        format!(
            "{}; the last valid configuration keeps running",
            list.join("; ")
        ),
    )
}

/// The status of a cluster. `config_hash` is the hash of the configuration the
/// members should run: the current one when the spec is valid, else the last valid.
pub fn cluster_status(
    cluster: &FailoverCluster,
    problems: &[Problem],
    config_hash: Option<String>,
    reports: &Reports,
    now: Timestamp,
) -> FailoverClusterStatus {
    let previous = cluster.status.clone().unwrap_or_default();
    let generation = cluster.metadata.generation;
    let dead_after = cluster.spec.heartbeat.dead_after.get();

    let mut members = Vec::new();
    for m in &cluster.spec.members {
        let report = reports.nodes.get(&m.node);
        let is_online = online(report, dead_after, now);
        let state = match (report, m.paused, is_online) {
            (None, _, _) => MemberState::Unknown,
            (Some(_), true, true) => MemberState::Paused,
            (Some(_), _, false) => MemberState::Offline,
            (Some(_), false, true) => MemberState::Online,
        };
        let applied = report.and_then(|r| r.config_hash.clone());
        let renewed = report.and_then(|r| r.renewed);
        let shown = previous
            .members
            .iter()
            .find(|p| p.node == m.node && p.state == state)
            .and_then(|p| p.last_heartbeat.clone());
        let last_heartbeat = match (renewed, shown) {
            (Some(renewed), Some(shown))
                if renewed.duration_since(shown.0) < HEARTBEAT_STATUS_STEP =>
            {
                Some(shown)
            }
            (renewed, _) => renewed.map(Time),
        };
        let live = is_live(state);
        members.push(MemberStatus {
            node: m.node.clone(),
            state,
            last_heartbeat,
            synchronized: applied.is_some() && applied == config_hash,
            applied_config_hash: applied,
            quarantined_until: None,
            config_outvoted: live
                && report
                    .and_then(|r| r.view.as_ref())
                    .is_some_and(|v| v.config_outvoted),
            links_down: if live {
                links_down(cluster, &m.node, reports, dead_after, now)
            } else {
                Vec::new()
            },
        });
    }
    let count = |f: &dyn Fn(&MemberStatus) -> bool| {
        u32::try_from(members.iter().filter(|m| f(m)).count()).unwrap_or(u32::MAX)
    };
    let voters = u32::try_from(members.len()).unwrap_or(u32::MAX);
    let up = count(&|m| is_live(m.state));
    let online_count = count(&|m| m.state == MemberState::Online);
    let synced = count(&|m| m.synchronized);

    // Connected voters: the largest set of live members one fresh agent hears
    // (itself included); without views, the number of fresh members.
    let member_names: Vec<&str> = cluster
        .spec
        .members
        .iter()
        .map(|m| m.node.as_str())
        .collect();
    let fresh_views: Vec<&View> = cluster
        .spec
        .members
        .iter()
        .filter(|m| online(reports.nodes.get(&m.node), dead_after, now))
        .filter_map(|m| reports.nodes.get(&m.node).and_then(|r| r.view.as_ref()))
        .collect();
    let connected = fresh_views
        .iter()
        .map(|v| {
            let heard = v
                .alive
                .iter()
                .filter(|a| member_names.contains(&a.as_str()))
                .count();
            u32::try_from(heard).unwrap_or(u32::MAX)
        })
        .max()
        .unwrap_or(up);
    let any_quorate = fresh_views.iter().any(|v| v.quorate);
    let quorum_state = match cluster.spec.quorum {
        QuorumMode::None => QuorumState::Disabled,
        _ if any_quorate => QuorumState::Quorate,
        QuorumMode::Majority if fresh_views.is_empty() && up * 2 > voters => QuorumState::Quorate,
        _ => QuorumState::Lost,
    };

    let prev = &previous.conditions;
    let (valid_reason, valid_message) = problems_message(problems);
    let config_valid = condition(
        prev,
        cond::CONFIG_VALID,
        bool_status(problems.is_empty()),
        valid_reason,
        valid_message,
        generation,
        now,
    );
    let (lost_reason, lost_message) = match (quorum_state, cluster.spec.quorum) {
        (QuorumState::Disabled, _) => (
            reason::QUORUM_DISABLED,
            "spec.quorum is none: split brain is possible".to_owned(),
        ),
        (QuorumState::Quorate, _) => (
            reason::QUORATE,
            format!("{connected} of {voters} voters connected"),
        ),
        (QuorumState::Lost, QuorumMode::Witness) => (
            reason::WITNESS_UNAVAILABLE,
            // Which witness: the one to look at differs (a Lease or a process).
            match &cluster.spec.witness {
                Some(w) => format!(
                    "no member holds quorum through the witness: `failover witness` at {}",
                    w.endpoint(cluster.spec.heartbeat.port)
                ),
                None => format!(
                    "no member holds quorum through the witness: the Lease {}",
                    names::witness_lease(&cluster.name_any())
                ),
            },
        ),
        (QuorumState::Lost, _) => (
            reason::NO_MAJORITY,
            format!("{connected} of {voters} voters connected; a majority is needed"),
        ),
    };
    let quorum_lost = condition(
        prev,
        cond::QUORUM_LOST,
        bool_status(quorum_state == QuorumState::Lost),
        lost_reason,
        lost_message.clone(),
        generation,
        now,
    );
    let not_online: Vec<&str> = members
        .iter()
        .filter(|m| m.state != MemberState::Online)
        .map(|m| m.node.as_str())
        .collect();
    let unsynced: Vec<&str> = members
        .iter()
        .filter(|m| !m.synchronized)
        .map(|m| m.node.as_str())
        .collect();
    let (degraded, degraded_reason, degraded_message) = if members
        .iter()
        .any(|m| matches!(m.state, MemberState::Offline | MemberState::Unknown))
    {
        (
            true,
            reason::MEMBER_OFFLINE,
            format!("not online: {}", not_online.join(", ")),
        )
    } else if members.iter().any(|m| m.state == MemberState::Paused) {
        (
            true,
            reason::MEMBER_PAUSED,
            format!("paused: {}", not_online.join(", ")),
        )
    } else if !unsynced.is_empty() {
        (
            true,
            reason::CONFIG_NOT_SYNCHRONIZED,
            format!(
                "not running the current configuration: {}",
                unsynced.join(", ")
            ),
        )
    } else if members.iter().any(|m| !m.links_down.is_empty()) {
        (
            true,
            reason::HEARTBEAT_LINK_DOWN,
            links_down_message(&members),
        )
    } else if quorum_state == QuorumState::Disabled {
        (true, reason::QUORUM_DISABLED, lost_message.clone())
    } else {
        (
            false,
            reason::ALL_MEMBERS_ONLINE,
            "every member is online and synchronized".to_owned(),
        )
    };
    let degraded = condition(
        prev,
        cond::DEGRADED,
        bool_status(degraded),
        degraded_reason,
        degraded_message,
        generation,
        now,
    );
    let (synchronized, sync_reason, sync_message) =
        config_synchronized(&members, config_hash.as_deref());
    let config_synchronized = condition(
        prev,
        cond::CONFIG_SYNCHRONIZED,
        bool_status(synchronized),
        sync_reason,
        sync_message,
        generation,
        now,
    );
    let ready = quorum_state != QuorumState::Lost && online_count > 0;
    let (ready_reason, ready_message) = if ready || quorum_state == QuorumState::Lost {
        (lost_reason, lost_message)
    } else {
        (reason::MEMBER_OFFLINE, "no member is online".to_owned())
    };
    let ready = condition(
        prev,
        cond::READY,
        bool_status(ready),
        ready_reason,
        ready_message,
        generation,
        now,
    );

    FailoverClusterStatus {
        members,
        member_count: Some(voters),
        online_count: Some(online_count),
        synced_count: Some(synced),
        config_hash,
        quorum: Some(QuorumStatus {
            state: quorum_state,
            voters,
            connected,
        }),
        observed_generation: generation,
        conditions: vec![
            ready,
            config_valid,
            degraded,
            quorum_lost,
            config_synchronized,
        ],
    }
}

/// `status.members[].linksDown` of the live member `node`: what every other live
/// member's view says of its links, in the order of `spec.members`.
fn links_down(
    cluster: &FailoverCluster,
    node: &str,
    reports: &Reports,
    dead_after: Duration,
    now: Timestamp,
) -> Vec<LinksDown> {
    cluster
        .spec
        .members
        .iter()
        .filter(|o| o.node != node)
        .filter_map(|o| {
            let report = reports.nodes.get(&o.node);
            if !online(report, dead_after, now) {
                return None;
            }
            let mut links: Vec<u32> = report?
                .view
                .as_ref()?
                .links_down
                .get(node)?
                .iter()
                .filter_map(|&l| u32::try_from(l).ok())
                .collect();
            links.sort_unstable();
            links.dedup();
            (!links.is_empty()).then(|| LinksDown {
                seen_by: o.node.clone(),
                links,
            })
        })
        .collect()
}

/// The Degraded message of links down: who does not hear whom over which links.
fn links_down_message(members: &[MemberStatus]) -> String {
    let seen: Vec<String> = members
        .iter()
        .flat_map(|m| {
            m.links_down.iter().map(|d| {
                let links: Vec<String> = d.links.iter().map(u32::to_string).collect();
                let plural = if d.links.len() == 1 { "" } else { "s" };
                format!(
                    "{} does not hear {} over link{plural} {}",
                    d.seen_by,
                    m.node,
                    links.join(", ")
                )
            })
        })
        .collect();
    format!(
        "heartbeat links down (the members stay alive over their other links): {}",
        seen.join("; ")
    )
}

/// The ConfigSynchronized condition: whether every live member runs `rendered` and
/// none is outvoted; its reason and message.
fn config_synchronized(
    members: &[MemberStatus],
    rendered: Option<&str>,
) -> (bool, &'static str, String) {
    let Some(rendered) = rendered else {
        return (
            false,
            reason::CONFIG_MISMATCH,
            "no configuration is rendered yet (ConfigValid says why)".to_owned(),
        );
    };
    let live = members.iter().filter(|m| is_live(m.state));
    let mismatched: Vec<String> = live
        .clone()
        .filter(|m| m.applied_config_hash.as_deref() != Some(rendered))
        .map(|m| {
            format!(
                "{} runs {}",
                m.node,
                m.applied_config_hash
                    .as_deref()
                    .unwrap_or("none it reports")
            )
        })
        .collect();
    let outvoted: Vec<&str> = live
        .filter(|m| m.config_outvoted)
        .map(|m| m.node.as_str())
        .collect();
    let mismatch_message = format!(
        "not running the rendered configuration {rendered}: {}",
        mismatched.join(", ")
    );
    if !outvoted.is_empty() {
        let mut message = format!(
            "outvoted (a majority of the members runs another configuration; each keeps its groups and takes no other): {}",
            outvoted.join(", ")
        );
        if !mismatched.is_empty() {
            message = format!("{message}; {mismatch_message}");
        }
        (false, reason::CONFIG_OUTVOTED, message)
    } else if !mismatched.is_empty() {
        (false, reason::CONFIG_MISMATCH, mismatch_message)
    } else {
        (
            true,
            reason::ALL_MEMBERS_SYNCHRONIZED,
            format!("every live member runs the rendered configuration {rendered}"),
        )
    }
}

/// The status of a group from its ledger and the members' reports. `cluster` is
/// `None` when `spec.cluster` names no existing FailoverCluster.
pub fn group_status(
    group: &ResourceGroup,
    cluster: Option<&FailoverCluster>,
    problems: &[Problem],
    reports: &Reports,
    now: Timestamp,
) -> ResourceGroupStatus {
    let previous = group.status.clone().unwrap_or_default();
    let generation = group.metadata.generation;
    let prev = &previous.conditions;
    let name = group.name_any();
    let (valid_reason, valid_message) = match cluster {
        None => (
            reason::CLUSTER_NOT_FOUND,
            format!(
                "spec.cluster: FailoverCluster {:?} does not exist",
                group.spec.cluster
            ),
        ),
        Some(_) => problems_message(problems),
    };
    let config_valid = condition(
        prev,
        cond::CONFIG_VALID,
        bool_status(cluster.is_some() && problems.is_empty()),
        valid_reason,
        valid_message,
        generation,
        now,
    );
    let Some(cluster) = cluster else {
        let ready = condition(
            prev,
            cond::READY,
            cond::STATUS_FALSE,
            reason::CLUSTER_NOT_FOUND,
            "the group has no cluster to run on".to_owned(),
            generation,
            now,
        );
        return ResourceGroupStatus {
            phase: Some(GroupPhase::Pending),
            observed_generation: generation,
            conditions: vec![ready, config_valid],
            ..previous
        };
    };
    let dead_after = cluster.spec.heartbeat.dead_after.get();
    // The owner: the live member with the highest epoch that reports running the
    // group (fresh, written by the agent at once on every change, and present in
    // `quorum: none` too); only when no member says so, the group Lease.
    let reported = cluster
        .spec
        .members
        .iter()
        .filter(|m| online(reports.nodes.get(&m.node), dead_after, now))
        .filter_map(|m| {
            let owned = reports.nodes.get(&m.node)?.owned.get(&name)?;
            Some((m.node.clone(), owned))
        })
        .max_by(|(a, x), (b, y)| x.epoch.cmp(&y.epoch).then(b.cmp(a)));
    let reported_by_member = reported.is_some();
    // The owner's resource states; without an owner's report, the last ones shown.
    let resources = match &reported {
        Some((_, owned)) if !owned.resources.is_empty() => {
            owned.resources.iter().map(resource_status).collect()
        }
        _ => previous.resources.clone(),
    };
    let ledger = match reported {
        Some((node, owned)) => {
            let reason = owned.reason.code();
            let since = owned.since.or_else(|| {
                // Without a time of its own: the one shown for the same transition.
                previous
                    .last_transition
                    .as_ref()
                    .filter(|t| t.reason == reason && t.message == owned.message)
                    .map(|t| t.time.0)
            });
            Ledger {
                holder: Some(node),
                epoch: Some(owned.epoch),
                reason: Some(reason.to_owned()),
                message: Some(owned.message.clone()),
                acquired: Some(since.unwrap_or(now)),
            }
        }
        None => reports.groups.get(&name).cloned().unwrap_or_default(),
    };
    let owner_report = ledger.holder.as_ref().and_then(|h| reports.nodes.get(h));
    let owner_online = owner_report.is_some() && online(owner_report, dead_after, now);
    let owner_holds = reported_by_member
        || owner_report
            .and_then(|r| r.view.as_ref())
            .is_some_and(|v| v.held.contains_key(&name));
    // Failed on every node at once (the failover count travels in heartbeats): one
    // online member that says so is enough; the group Lease still names the last
    // owner, whose record is not a Failed group's.
    let seen_failed = cluster.spec.members.iter().any(|m| {
        let report = reports.nodes.get(&m.node);
        online(report, dead_after, now)
            && report
                .and_then(|r| r.view.as_ref())
                .is_some_and(|v| v.failed.contains(&name))
    });
    // Every member counts the same failovers (the owner's count travels in its
    // heartbeats); the highest an online member reports is the owner's or one that
    // has not expired yet on a slower clock.
    let failovers = cluster
        .spec
        .members
        .iter()
        .filter_map(|m| {
            let report = reports.nodes.get(&m.node);
            if !online(report, dead_after, now) {
                return None;
            }
            report?.view.as_ref()?.failovers.get(&name).copied()
        })
        .max()
        .unwrap_or(0);
    let failed = !reported_by_member
        && (seen_failed || ledger.reason.as_deref() == Some(reason::FAILOVER_LIMIT_REACHED));
    let phase = match (&ledger.holder, owner_online, owner_holds) {
        _ if failed => GroupPhase::Failed,
        (None, _, _) => GroupPhase::Pending,
        (Some(_), true, true) => GroupPhase::Online,
        (Some(_), _, _) => GroupPhase::Moving,
    };
    let members = cluster
        .spec
        .members
        .iter()
        .map(|m| {
            let report = reports.nodes.get(&m.node);
            let is_online = online(report, dead_after, now);
            let said = report.and_then(|r| r.explain.get(&name)).cloned();
            let reason = match (said, report) {
                (Some(sentence), _) if is_online => sentence,
                (_, None) => "no report from its agent yet".to_owned(),
                (_, Some(_)) if !is_online => "offline".to_owned(),
                (None, Some(_)) => "its agent gives no reason yet".to_owned(),
                (Some(sentence), Some(_)) => sentence,
            };
            MemberExplanation {
                node: m.node.clone(),
                eligible: is_online && !m.paused,
                reason,
            }
        })
        .collect();
    let last_transition = match (&ledger.reason, ledger.acquired) {
        (Some(r), Some(time)) => Some(Transition {
            reason: r.clone(),
            message: ledger.message.clone().unwrap_or_default(),
            time: Time(time),
        }),
        _ => previous.last_transition.clone(),
    };
    let (ready_status, ready_reason, ready_message) = match (phase, &ledger.holder) {
        (GroupPhase::Online, Some(owner)) => (true, reason::ONLINE, format!("online on {owner}")),
        (GroupPhase::Failed, _) => (
            false,
            reason::FAILOVER_LIMIT_REACHED,
            ledger.message.clone().unwrap_or_default(),
        ),
        (_, Some(owner)) => (
            false,
            reason::MOVING,
            format!("being brought online on {owner}"),
        ),
        (_, None) => (false, reason::NO_ELIGIBLE_MEMBER, "no owner yet".to_owned()),
    };
    let ready = condition(
        prev,
        cond::READY,
        bool_status(ready_status),
        ready_reason,
        ready_message,
        generation,
        now,
    );
    ResourceGroupStatus {
        owner: ledger.holder.clone(),
        epoch: ledger.epoch,
        phase: Some(phase),
        resources,
        last_transition,
        failovers,
        members,
        recent_takeovers: recent_takeovers(&previous.recent_takeovers, &name, reports),
        observed_generation: generation,
        conditions: vec![ready, config_valid],
    }
}

/// `status.recentTakeovers`: the takeovers of `group` shown before and those the
/// members report (whichever members: a takeover by a node no longer in the cluster
/// happened all the same), each once by (node, epoch) — as shown first, so that a
/// written status reads back the same — newest first, at most [`RECENT_TAKEOVERS`].
/// A reported takeover without a readable time is left out.
pub fn recent_takeovers(
    shown: &[TakeoverRecord],
    group: &str,
    reports: &Reports,
) -> Vec<TakeoverRecord> {
    let reported = reports.nodes.iter().flat_map(|(node, report)| {
        report
            .takeovers
            .iter()
            .filter(|t| t.group == group)
            .filter_map(|t| {
                Some(TakeoverRecord {
                    node: node.clone(),
                    reason: t.reason.clone(),
                    epoch: t.epoch,
                    time: Time(t.time?),
                    phases: t.phases.clone(),
                })
            })
    });
    let mut merged: Vec<TakeoverRecord> = Vec::new();
    for record in shown.iter().cloned().chain(reported) {
        if !merged
            .iter()
            .any(|m| m.node == record.node && m.epoch == record.epoch)
        {
            merged.push(record);
        }
    }
    // Status keeps whole seconds (metav1.Time): within one second the epoch, which
    // every take raises, tells the order.
    merged.sort_by_key(|r| std::cmp::Reverse((r.time.0.as_second(), r.epoch)));
    merged.truncate(RECENT_TAKEOVERS);
    merged
}

/// A resource's state as its owner reports it; the message starts with the reason
/// code (`Started`, `StartTimedOut`, `NotRunInThisRelease`, ...).
fn resource_status(report: &ResourceReport) -> ResourceStatus {
    let message = if report.message.is_empty() {
        report.reason.clone()
    } else {
        format!("{}: {}", report.reason, report.message)
    };
    ResourceStatus {
        name: report.name.clone(),
        state: report.state,
        message: Some(message),
        restarts: report.restarts,
    }
}

/// An Event to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Warning (something a person should look at) or Normal.
    pub warning: bool,
    /// CamelCase reason.
    pub reason: &'static str,
    /// What the operator observed (CamelCase).
    pub action: &'static str,
    /// The sentence.
    pub note: String,
}

/// Events for a cluster status change: member down/up, member outvoted or no
/// longer, heartbeat links down/up, quorum lost/regained, configuration rejected.
pub fn cluster_notices(
    before: &FailoverClusterStatus,
    after: &FailoverClusterStatus,
) -> Vec<Notice> {
    let mut notices = Vec::new();
    for m in &after.members {
        let previous = before.members.iter().find(|b| b.node == m.node);
        if let Some(previous) = previous {
            notices.extend(member_notices(previous, m));
        }
        match (previous.map(|b| b.state), m.state) {
            (Some(MemberState::Online | MemberState::Paused), MemberState::Offline) => {
                notices.push(Notice {
                    warning: true,
                    reason: event::MEMBER_DOWN,
                    action: "ObserveMember",
                    note: format!("member {} stopped reporting", m.node),
                });
            }
            (Some(MemberState::Offline | MemberState::Unknown), MemberState::Online) => {
                notices.push(Notice {
                    warning: false,
                    reason: event::MEMBER_UP,
                    action: "ObserveMember",
                    note: format!("member {} is online", m.node),
                });
            }
            _ => {}
        }
    }
    let state = |s: &FailoverClusterStatus| s.quorum.as_ref().map(|q| q.state);
    match (state(before), state(after)) {
        (Some(QuorumState::Quorate), Some(QuorumState::Lost)) => notices.push(Notice {
            warning: true,
            reason: event::QUORUM_LOST,
            action: "ObserveQuorum",
            note: "the members lost quorum; owners fence themselves".to_owned(),
        }),
        (Some(QuorumState::Lost), Some(QuorumState::Quorate)) => notices.push(Notice {
            warning: false,
            reason: event::QUORUM_REGAINED,
            action: "ObserveQuorum",
            note: "the members are quorate again".to_owned(),
        }),
        _ => {}
    }
    if let Some(notice) = config_rejected(&before.conditions, &after.conditions) {
        notices.push(notice);
    }
    notices
}

/// Events for one member that was in the status before: it became outvoted or no
/// longer is, a link of it went down (any link not down before) or all are up
/// again. A member that is no longer live says nothing here: that is MemberDown.
fn member_notices(before: &MemberStatus, after: &MemberStatus) -> Vec<Notice> {
    let live = is_live(after.state);
    let mut notices = Vec::new();
    let node = &after.node;
    match (before.config_outvoted, after.config_outvoted) {
        (false, true) => notices.push(Notice {
            warning: true,
            reason: event::CONFIG_OUTVOTED,
            action: "ObserveConfig",
            note: format!(
                "member {node} runs {}: a majority of the members runs another configuration, so it keeps its groups and takes no other",
                after.applied_config_hash.as_deref().unwrap_or("a configuration it does not report")
            ),
        }),
        (true, false) if live => notices.push(Notice {
            warning: false,
            reason: event::CONFIG_OUTVOTE_ENDED,
            action: "ObserveConfig",
            note: format!("member {node} is no longer outvoted: it takes groups again"),
        }),
        _ => {}
    }
    let union = |m: &MemberStatus| {
        let mut links: Vec<u32> = m.links_down.iter().flat_map(|d| d.links.clone()).collect();
        links.sort_unstable();
        links.dedup();
        links
    };
    let (was, is) = (union(before), union(after));
    let new: Vec<String> = is
        .iter()
        .filter(|l| !was.contains(l))
        .map(u32::to_string)
        .collect();
    if !new.is_empty() {
        let seen_by: Vec<&str> = after
            .links_down
            .iter()
            .map(|d| d.seen_by.as_str())
            .collect();
        notices.push(Notice {
            warning: true,
            reason: event::HEARTBEAT_LINK_DOWN,
            action: "ObserveLinks",
            note: truncate(
                &format!(
                    "heartbeat {} {} of member {node} {} none of its heartbeats (seen by {}); it stays alive over its other links",
                    if new.len() == 1 { "link" } else { "links" },
                    new.join(", "),
                    if new.len() == 1 { "carries" } else { "carry" },
                    seen_by.join(", ")
                ),
                EVENT_NOTE_MAX_BYTES,
            ),
        });
    } else if !was.is_empty() && is.is_empty() && live {
        notices.push(Notice {
            warning: false,
            reason: event::HEARTBEAT_LINK_UP,
            action: "ObserveLinks",
            note: format!("every heartbeat link of member {node} carries its heartbeats again"),
        });
    }
    notices
}

/// A ConfigRejected Event when ConfigValid turns False or its message changes.
fn config_rejected(before: &[Condition], after: &[Condition]) -> Option<Notice> {
    let find = |list: &[Condition]| {
        list.iter()
            .find(|c| c.type_ == cond::CONFIG_VALID)
            .map(|c| (c.status.clone(), c.message.clone()))
    };
    let now = find(after)?;
    (now.0 == cond::STATUS_FALSE && find(before) != Some(now.clone())).then(|| Notice {
        warning: true,
        reason: event::CONFIG_REJECTED,
        action: "Validate",
        note: truncate(&now.1, EVENT_NOTE_MAX_BYTES),
    })
}

/// The longest Event note the API server takes: `NoteLengthLimit` in
/// pkg/apis/core/validation/events.go, counted in bytes.
pub const EVENT_NOTE_MAX_BYTES: usize = 1024;

/// `text` cut at a character boundary so that it, with the "…" that marks the cut,
/// has at most `max` bytes.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut at = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    format!("{}…", &text[..at])
}

/// Events for a group status change: failover or failback (owner change), config
/// rejected.
pub fn group_notices(before: &ResourceGroupStatus, after: &ResourceGroupStatus) -> Vec<Notice> {
    let mut notices = Vec::new();
    if after.owner.is_some() && after.owner != before.owner {
        let why = after.last_transition.as_ref();
        let code = why.map(|t| t.reason.as_str()).unwrap_or_default();
        let sentence = why.map(|t| t.message.clone()).unwrap_or_default();
        let to = after.owner.clone().unwrap_or_default();
        let note = match &before.owner {
            Some(from) => format!(
                "{from} -> {to} (epoch {}): {sentence}",
                after.epoch.unwrap_or(0)
            ),
            None => format!(
                "online on {to} (epoch {}): {sentence}",
                after.epoch.unwrap_or(0)
            ),
        };
        // By the reason code the new owner reports (placement's code, in its report
        // or the group Lease): a failback is a Failback whatever the previous status
        // showed, and the agent's Event for the same take says the same.
        let (warning, reason) = takeover_event(Reason::from_code(code));
        notices.push(Notice {
            warning,
            reason,
            action: "ObserveOwner",
            note,
        });
    }
    if let Some(notice) = config_rejected(&before.conditions, &after.conditions) {
        notices.push(notice);
    }
    notices
}

#[cfg(test)]
mod tests;
