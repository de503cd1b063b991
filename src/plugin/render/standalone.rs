//! What `failover ctl --standalone FILE` prints: the read verbs from the
//! configuration file (the spec every member runs) and one agent's `/state` (its
//! own view), in the layout and JSON conventions of the Kubernetes verbs.
//!
//! Owns that layout. A standalone cluster has no central status, so every output
//! names the member whose view it is and never claims more than that member knows:
//! who holds a group it does not hold is only in its explanation. Pure, like the
//! rest of `render`: the caller passes the file, the state and `now`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Serialize;

use super::{
    Format, TimelineDocument, age, json_text, link_list, mismatch_line, or_dash, outvoted_line,
    table, takeover_table,
};
use crate::api::{FailoverCluster, ResourceGroup, TakeoverRecord};
use crate::contract::model::{cluster_id, config_hash, hash_text};
use crate::contract::report::{AgentState, Owned};

/// `status --standalone` as JSON: the file's members and groups beside what the
/// agent of `node` sees, fields named as in its `/state`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusDocument<'a> {
    cluster: &'a str,
    /// Whose view this is.
    node: &'a str,
    quorate: bool,
    /// The hash of the configuration the agent runs.
    config_hash: &'a str,
    /// The hash of the file read: equal when the agent runs this file.
    file_config_hash: String,
    config_mismatch: &'a BTreeMap<String, String>,
    config_outvoted: bool,
    members: Vec<MemberRow<'a>>,
    groups: Vec<GroupRow<'a>>,
}

/// One member: the file's priority and pause beside the agent's view of it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MemberRow<'a> {
    node: &'a str,
    priority: u32,
    paused: bool,
    alive: bool,
    links_down: &'a [usize],
}

/// One group: the file's pin beside what the agent says of it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupRow<'a> {
    name: &'a str,
    /// Whether the agent runs it.
    held: bool,
    epoch: Option<u64>,
    pinned_to: Option<&'a str>,
    /// Failed in the agent's view (failover limit reached).
    failed: bool,
    /// Its failovers within the period, for a group with a failover limit.
    failovers: Option<u32>,
    /// The agent's ownership (reason, since, resources), when it holds it.
    owned: Option<&'a Owned>,
    /// Why the agent is or is not its owner.
    explain: Option<&'a str>,
}

fn group_row<'a>(group: &'a ResourceGroup, state: &'a AgentState) -> GroupRow<'a> {
    let name = group.metadata.name.as_deref().unwrap_or_default();
    let report = &state.report;
    let owned = report.owned.get(name);
    GroupRow {
        name,
        held: owned.is_some(),
        epoch: owned.map(|o| o.epoch),
        pinned_to: group.spec.owner.as_deref(),
        failed: report.view.failed.iter().any(|g| g == name),
        failovers: report.view.failovers.get(name).copied(),
        owned,
        explain: report.explain.get(name).map(String::as_str),
    }
}

/// The first line of every table: a standalone cluster has no central status.
fn whose_view(out: &mut String, state: &AgentState) {
    let _ = writeln!(
        out,
        "View:     member {}'s (its agent answered; standalone, every member has its own)",
        state.node
    );
}

/// How long ago `then` was, as [`age`] prints it.
fn age_of(now: Timestamp, then: Timestamp) -> String {
    age(now, &Time(then))
}

/// `reason AGE ago: message` of an ownership.
fn held_because(owned: &Owned, now: Timestamp) -> String {
    let since = owned
        .since
        .map_or_else(String::new, |t| format!(" {} ago", age_of(now, t)));
    format!("{}{since}: {}", owned.reason.code(), owned.message)
}

/// `status --standalone`: the agent's quorum, whether it runs the file's
/// configuration, the members as it sees them and every group of the file.
pub fn status(
    cluster: &FailoverCluster,
    groups: &[ResourceGroup],
    state: &AgentState,
    now: Timestamp,
    format: Format,
) -> String {
    let view = &state.report.view;
    let file_hash = hash_text(config_hash(cluster, groups));
    let members: Vec<MemberRow<'_>> = cluster
        .spec
        .members
        .iter()
        .map(|m| MemberRow {
            node: &m.node,
            priority: m.priority,
            paused: m.paused,
            alive: view.alive.contains(&m.node),
            links_down: view.links_down.get(&m.node).map_or(&[], Vec::as_slice),
        })
        .collect();
    let rows: Vec<GroupRow<'_>> = groups.iter().map(|g| group_row(g, state)).collect();
    if format == Format::Json {
        return json_text(&StatusDocument {
            cluster: &state.cluster,
            node: &state.node,
            quorate: view.quorate,
            config_hash: &state.report.config_hash,
            file_config_hash: file_hash,
            config_mismatch: &view.config_mismatch,
            config_outvoted: view.config_outvoted,
            members,
            groups: rows,
        });
    }
    let mut out = String::new();
    let _ = writeln!(out, "Cluster:  {}", cluster_id(cluster));
    whose_view(&mut out, state);
    let alive = members.iter().filter(|m| m.alive).count();
    let _ = writeln!(
        out,
        "Quorum:   {} ({alive} of {} members alive)",
        // The words of the cluster's `status.quorum.state`.
        if view.quorate { "Quorate" } else { "Lost" },
        members.len()
    );
    let config = &state.report.config_hash;
    if *config == file_hash {
        let _ = writeln!(out, "Config:   {config} (the file's)");
    } else {
        let _ = writeln!(
            out,
            "Config:   {config}, not the file's {file_hash}: {} runs another configuration than this file",
            state.node
        );
    }
    for (peer, hash) in &view.config_mismatch {
        mismatch_line(&mut out, peer, hash, "keep the file equal on every member");
    }
    if view.config_outvoted {
        outvoted_line(&mut out, &state.node);
    }
    out.push('\n');
    let table_rows: Vec<Vec<String>> = members
        .iter()
        .map(|m| {
            vec![
                m.node.to_owned(),
                if m.alive { "yes" } else { "no" }.to_owned(),
                m.priority.to_string(),
                m.paused.to_string(),
                link_list(m.links_down),
            ]
        })
        .collect();
    table(
        &mut out,
        &["MEMBER", "ALIVE", "PRIORITY", "PAUSED", "LINKS DOWN"],
        &table_rows,
    );
    out.push('\n');
    if rows.is_empty() {
        let _ = writeln!(out, "No ResourceGroup in the file.");
        return out;
    }
    let held_by = format!("HELD BY {}", state.node);
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|g| {
            let held = match (g.held, g.failed) {
                (true, _) => "yes",
                (false, true) => "Failed",
                (false, false) => "no",
            };
            let why = match g.owned {
                Some(owned) => held_because(owned, now),
                None => or_dash(g.explain),
            };
            vec![
                g.name.to_owned(),
                held.to_owned(),
                or_dash(g.epoch),
                or_dash(g.failovers),
                or_dash(g.pinned_to),
                why,
            ]
        })
        .collect();
    table(
        &mut out,
        &["GROUP", &held_by, "EPOCH", "FAILOVERS", "PINNED TO", "WHY"],
        &table_rows,
    );
    out
}

/// `explain GROUP --standalone` as JSON.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExplainDocument<'a> {
    cluster: &'a str,
    node: &'a str,
    #[serde(flatten)]
    group: GroupRow<'a>,
}

/// `explain GROUP --standalone`: whether the agent runs GROUP and why (not), with
/// the state of each resource where it runs it. Only this member's explanation:
/// the others' are on their own agents.
pub fn explain(
    group: &ResourceGroup,
    state: &AgentState,
    now: Timestamp,
    format: Format,
) -> String {
    let row = group_row(group, state);
    if format == Format::Json {
        return json_text(&ExplainDocument {
            cluster: &state.cluster,
            node: &state.node,
            group: row,
        });
    }
    let mut out = String::new();
    let _ = writeln!(out, "Group:    {} (cluster {})", row.name, state.cluster);
    whose_view(&mut out, state);
    match row.owned {
        Some(owned) => {
            let _ = writeln!(
                out,
                "Held:     by {}, epoch {}, {}",
                state.node,
                owned.epoch,
                held_because(owned, now)
            );
        }
        None => {
            let _ = writeln!(out, "Held:     not by {}", state.node);
        }
    }
    if let Some(pinned) = row.pinned_to {
        let _ = writeln!(out, "Pinned:   to {pinned} by spec.owner");
    }
    if row.failed {
        let _ = writeln!(
            out,
            "Failed:   in {}'s view, {} failovers within the period (failover limit reached)",
            state.node,
            or_dash(row.failovers)
        );
    }
    let _ = writeln!(
        out,
        "Why:      {}",
        row.explain
            .unwrap_or("no explanation (the agent does not know the group: is its file this one?)")
    );
    let Some(owned) = row.owned.filter(|o| !o.resources.is_empty()) else {
        return out;
    };
    out.push('\n');
    let rows: Vec<Vec<String>> = owned
        .resources
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                format!("{:?}", r.state),
                r.reason.clone(),
                r.restarts.to_string(),
                if r.message.is_empty() {
                    "-".to_owned()
                } else {
                    r.message.clone()
                },
            ]
        })
        .collect();
    table(
        &mut out,
        &["RESOURCE", "STATE", "REASON", "RESTARTS", "MESSAGE"],
        &rows,
    );
    out
}

/// `timeline GROUP --standalone`: the agent's last takeovers of GROUP, in the
/// records and layout of the Kubernetes `timeline` (a record without a readable
/// time is left out there too). Only this member's: each keeps its own.
pub fn timeline(group: &str, state: &AgentState, format: Format) -> String {
    let records: Vec<TakeoverRecord> = state
        .report
        .takeovers
        .iter()
        .filter(|t| t.group == group)
        .filter_map(|t| {
            Some(TakeoverRecord {
                node: state.node.clone(),
                reason: t.reason.clone(),
                epoch: t.epoch,
                time: Time(t.time?),
                phases: t.phases.clone(),
            })
        })
        .collect();
    if format == Format::Json {
        return json_text(&TimelineDocument {
            group,
            recent_takeovers: &records,
        });
    }
    if records.is_empty() {
        return format!(
            "{group}: no takeover by {} recorded (standalone, each member keeps its own)\n",
            state.node
        );
    }
    takeover_table(group, &records)
}

// The plugin's IO tests serve the same file and state.
#[cfg(test)]
pub(in crate::plugin) mod tests;
