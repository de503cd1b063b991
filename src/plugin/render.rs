//! What `kubectl failover` prints: pure functions from the custom resources (as the
//! API server returned them) to a table for a person or JSON for a script.
//!
//! [`standalone`] prints the read verbs of a standalone cluster (the file and one
//! agent's `/state`) with the same helpers.
//!
//! Owns the layout of every verb's output and the JSON documents' shape. It must
//! never talk to the API server or read a clock: the caller passes `now`, so the same
//! objects always print the same text (the tests and docs/kubectl-plugin.md rely on
//! it).

use std::fmt::Write as _;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde::Serialize;

use crate::api::{
    FailoverCluster, LinksDown, MemberExplanation, MemberState, ResourceGroup, TakeoverRecord,
    Transition,
};

pub mod standalone;

/// The output format of every verb (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for a person.
    Table,
    /// One JSON document for a script.
    Json,
}

/// `status` as JSON: the cluster and its groups, fields named as in the CRDs.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusDocument<'a> {
    cluster: String,
    namespace: String,
    quorum: Option<&'a crate::api::QuorumStatus>,
    config_hash: Option<&'a str>,
    members: Vec<MemberRow<'a>>,
    groups: Vec<GroupRow<'a>>,
    conditions: &'a [Condition],
}

/// One member in `status`: the spec's priority and pause beside the observed state.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MemberRow<'a> {
    node: &'a str,
    priority: u32,
    paused: bool,
    state: Option<crate::api::MemberState>,
    synchronized: Option<bool>,
    applied_config_hash: Option<&'a str>,
    config_outvoted: bool,
    links_down: &'a [LinksDown],
    last_heartbeat: Option<&'a Time>,
    quarantined_until: Option<&'a Time>,
}

impl MemberRow<'_> {
    /// Whether its agent reports fresh (the members whose configuration counts).
    fn live(&self) -> bool {
        matches!(self.state, Some(MemberState::Online | MemberState::Paused))
    }
}

/// One group in `status`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupRow<'a> {
    name: &'a str,
    owner: Option<&'a str>,
    pinned_to: Option<&'a str>,
    phase: Option<crate::api::GroupPhase>,
    epoch: Option<u64>,
    failovers: u32,
    last_transition: Option<&'a Transition>,
}

fn name_of<K: kube::ResourceExt>(object: &K) -> String {
    object.name_any()
}

fn member_rows(cluster: &FailoverCluster) -> Vec<MemberRow<'_>> {
    let observed = cluster.status.as_ref().map(|s| s.members.as_slice());
    cluster
        .spec
        .members
        .iter()
        .map(|member| {
            let status = observed
                .unwrap_or_default()
                .iter()
                .find(|s| s.node == member.node);
            MemberRow {
                node: &member.node,
                priority: member.priority,
                paused: member.paused,
                state: status.map(|s| s.state),
                synchronized: status.map(|s| s.synchronized),
                applied_config_hash: status.and_then(|s| s.applied_config_hash.as_deref()),
                config_outvoted: status.is_some_and(|s| s.config_outvoted),
                links_down: status.map_or(&[], |s| s.links_down.as_slice()),
                last_heartbeat: status.and_then(|s| s.last_heartbeat.as_ref()),
                quarantined_until: status.and_then(|s| s.quarantined_until.as_ref()),
            }
        })
        .collect()
}

fn group_row(group: &ResourceGroup) -> GroupRow<'_> {
    let status = group.status.as_ref();
    GroupRow {
        name: group.metadata.name.as_deref().unwrap_or_default(),
        owner: status.and_then(|s| s.owner.as_deref()),
        pinned_to: group.spec.owner.as_deref(),
        phase: status.and_then(|s| s.phase),
        epoch: status.and_then(|s| s.epoch),
        failovers: status.map_or(0, |s| s.failovers),
        last_transition: status.and_then(|s| s.last_transition.as_ref()),
    }
}

/// How long ago `then` was, as kubectl prints ages (`850ms`, `42s`, `5m`, `3h`, `2d`).
fn age(now: Timestamp, then: &Time) -> String {
    let ms = now.duration_since(then.0).as_millis().max(0);
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{}s", ms / 1_000),
        60_000..3_600_000 => format!("{}m", ms / 60_000),
        3_600_000..86_400_000 => format!("{}h", ms / 3_600_000),
        _ => format!("{}d", ms / 86_400_000),
    }
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// A `LINKS DOWN` cell: the link indexes, comma-separated, or `-`.
fn link_list<T: ToString>(links: impl IntoIterator<Item = T>) -> String {
    let links: Vec<String> = links.into_iter().map(|l| l.to_string()).collect();
    if links.is_empty() {
        "-".to_owned()
    } else {
        links.join(",")
    }
}

/// The `Mismatch:` line: member `node` runs configuration `hash`; `advice` says
/// what to do about it.
fn mismatch_line(out: &mut String, node: &str, hash: &str, advice: &str) {
    let _ = writeln!(out, "Mismatch: {node} runs {hash} ({advice})");
}

/// The `Outvoted:` line of member `node`, in the words of its agent's log.
fn outvoted_line(out: &mut String, node: &str) {
    let _ = writeln!(
        out,
        "Outvoted: a majority runs another configuration: {node} keeps its groups and takes no other"
    );
}

/// Writes `rows` under `header` with every column as wide as its widest cell,
/// two spaces apart, the last column unpadded (kubectl's layout).
fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 < widths.len() {
                let _ = write!(text, "{cell:<width$}  ", width = widths[i]);
            } else {
                text.push_str(cell);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
}

fn json_text(value: &impl Serialize) -> String {
    // These documents hold only strings, numbers and objects with string keys:
    // serializing them cannot fail.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// `status`: the cluster's quorum, members and groups, each group's last transition.
pub fn status(
    cluster: &FailoverCluster,
    groups: &[ResourceGroup],
    now: Timestamp,
    format: Format,
) -> String {
    let status = cluster.status.as_ref();
    let members = member_rows(cluster);
    let group_rows: Vec<GroupRow<'_>> = groups.iter().map(group_row).collect();
    if format == Format::Json {
        return json_text(&StatusDocument {
            cluster: name_of(cluster),
            namespace: cluster.metadata.namespace.clone().unwrap_or_default(),
            quorum: status.and_then(|s| s.quorum.as_ref()),
            config_hash: status.and_then(|s| s.config_hash.as_deref()),
            members,
            groups: group_rows,
            conditions: status.map_or(&[], |s| s.conditions.as_slice()),
        });
    }
    let mut out = String::new();
    let quorum = match status.and_then(|s| s.quorum.as_ref()) {
        Some(q) => format!(
            "{:?} ({} of {} voters connected)",
            q.state, q.connected, q.voters
        ),
        None => "unknown (no status yet)".to_owned(),
    };
    let synced = members
        .iter()
        .filter(|m| m.synchronized == Some(true))
        .count();
    let _ = writeln!(out, "Cluster:  {}", name_of(cluster));
    let _ = writeln!(out, "Quorum:   {quorum}");
    let _ = writeln!(
        out,
        "Config:   {} ({synced} of {} members synchronized)",
        or_dash(status.and_then(|s| s.config_hash.as_deref())),
        members.len()
    );
    let rendered = status.and_then(|s| s.config_hash.as_deref());
    for m in members.iter().filter(|m| m.live()) {
        if m.synchronized == Some(false) {
            let advice = match rendered {
                Some(rendered) => format!(
                    "not the rendered {rendered}: its agent has not loaded it yet, or cannot: see its log"
                ),
                None => "no configuration is rendered yet".to_owned(),
            };
            mismatch_line(
                &mut out,
                m.node,
                m.applied_config_hash.unwrap_or("none it reports"),
                &advice,
            );
        }
    }
    for m in members.iter().filter(|m| m.config_outvoted) {
        outvoted_line(&mut out, m.node);
    }
    for condition in status.map_or(&[][..], |s| s.conditions.as_slice()) {
        let _ = writeln!(
            out,
            "{:<9} {} {}: {}",
            format!("{}:", condition.type_),
            condition.status,
            condition.reason,
            condition.message
        );
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|m| {
            vec![
                m.node.to_owned(),
                or_dash(m.state.map(|s| format!("{s:?}"))),
                m.priority.to_string(),
                m.paused.to_string(),
                or_dash(m.synchronized),
                or_dash(m.last_heartbeat.map(|t| age(now, t))),
                links_down_cell(m.links_down),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "MEMBER",
            "STATE",
            "PRIORITY",
            "PAUSED",
            "SYNCHRONIZED",
            "LAST HEARTBEAT",
            "LINKS DOWN",
        ],
        &rows,
    );
    out.push('\n');
    if group_rows.is_empty() {
        let _ = writeln!(out, "No ResourceGroup runs on {}.", name_of(cluster));
        return out;
    }
    let rows: Vec<Vec<String>> = group_rows
        .iter()
        .map(|g| {
            let owner = match (g.owner, g.pinned_to) {
                (owner, Some(pinned)) => format!("{} (pinned to {pinned})", or_dash(owner)),
                (owner, None) => or_dash(owner),
            };
            let last = g.last_transition.map_or_else(
                || "-".to_owned(),
                |t| format!("{} {} ago: {}", t.reason, age(now, &t.time), t.message),
            );
            vec![
                g.name.to_owned(),
                owner,
                or_dash(g.phase.map(|p| format!("{p:?}"))),
                or_dash(g.epoch),
                g.failovers.to_string(),
                last,
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "GROUP",
            "OWNER",
            "PHASE",
            "EPOCH",
            "FAILOVERS",
            "LAST TRANSITION",
        ],
        &rows,
    );
    out
}

/// The `LINKS DOWN` cell of a member: every link some live member does not hear it
/// over, and who (`1 (seen by a, c)`); `status.members[].linksDown` has each
/// member's own list.
fn links_down_cell(links_down: &[LinksDown]) -> String {
    let mut links: Vec<u32> = links_down.iter().flat_map(|d| d.links.clone()).collect();
    links.sort_unstable();
    links.dedup();
    if links.is_empty() {
        return link_list(links);
    }
    let seen_by: Vec<&str> = links_down.iter().map(|d| d.seen_by.as_str()).collect();
    format!("{} (seen by {})", link_list(links), seen_by.join(", "))
}

/// `explain GROUP` as JSON.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExplainDocument<'a> {
    group: &'a str,
    owner: Option<&'a str>,
    pinned_to: Option<&'a str>,
    phase: Option<crate::api::GroupPhase>,
    last_transition: Option<&'a Transition>,
    members: &'a [MemberExplanation],
}

/// `explain GROUP`: the owner, why it has it, and for every member whether it could
/// own the group and why (not), as the members' agents explain it.
pub fn explain(group: &ResourceGroup, now: Timestamp, format: Format) -> String {
    let row = group_row(group);
    let members = group
        .status
        .as_ref()
        .map_or(&[][..], |s| s.members.as_slice());
    if format == Format::Json {
        return json_text(&ExplainDocument {
            group: row.name,
            owner: row.owner,
            pinned_to: row.pinned_to,
            phase: row.phase,
            last_transition: row.last_transition,
            members,
        });
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Group:    {} (cluster {})",
        row.name, group.spec.cluster
    );
    let _ = writeln!(
        out,
        "Owner:    {}, phase {}, epoch {}",
        row.owner.unwrap_or("none"),
        or_dash(row.phase.map(|p| format!("{p:?}"))),
        or_dash(row.epoch)
    );
    if let Some(pinned) = row.pinned_to {
        let _ = writeln!(out, "Pinned:   to {pinned} by spec.owner");
    }
    if let Some(t) = row.last_transition {
        let _ = writeln!(
            out,
            "Because:  {} ({} ago): {}",
            t.reason,
            age(now, &t.time),
            t.message
        );
    }
    out.push('\n');
    if members.is_empty() {
        out.push_str("No member has explained itself yet (no report from the agents).\n");
        return out;
    }
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|m| {
            let owner = if row.owner == Some(m.node.as_str()) {
                "yes"
            } else {
                "no"
            };
            vec![
                m.node.clone(),
                owner.to_owned(),
                if m.eligible { "yes" } else { "no" }.to_owned(),
                m.reason.clone(),
            ]
        })
        .collect();
    table(&mut out, &["MEMBER", "OWNER", "ELIGIBLE", "WHY"], &rows);
    out
}

/// `timeline GROUP` as JSON: the records as they are in `status.recentTakeovers`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TimelineDocument<'a> {
    group: &'a str,
    recent_takeovers: &'a [TakeoverRecord],
}

/// `timeline GROUP`: the last takeovers, newest first, phase by phase with the
/// milliseconds since the takeover began (`time`: the detection of the failure it
/// answers, or placement's choice when there was none).
pub fn timeline(group: &ResourceGroup, format: Format) -> String {
    let name = group.metadata.name.as_deref().unwrap_or_default();
    let takeovers = group
        .status
        .as_ref()
        .map_or(&[][..], |s| s.recent_takeovers.as_slice());
    if format == Format::Json {
        return json_text(&TimelineDocument {
            group: name,
            recent_takeovers: takeovers,
        });
    }
    if takeovers.is_empty() {
        return format!("{name}: no failover recorded\n");
    }
    takeover_table(name, takeovers)
}

/// The takeovers of group `name`, newest first, each a heading line and its phases.
fn takeover_table(name: &str, takeovers: &[TakeoverRecord]) -> String {
    let mut out = String::new();
    for (i, takeover) in takeovers.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "{} {} took {name} ({}), epoch {}",
            takeover.time.0.strftime("%Y-%m-%dT%H:%M:%SZ"),
            takeover.node,
            takeover.reason,
            takeover.epoch
        );
        let rows: Vec<Vec<String>> = takeover
            .phases
            .iter()
            .map(|p| vec![format!("  {}", p.phase), format!("{:.1} ms", p.ms)])
            .collect();
        if rows.is_empty() {
            out.push_str("  (no phase recorded)\n");
        } else {
            table(&mut out, &["  PHASE", "SINCE START"], &rows);
        }
    }
    out
}

#[cfg(test)]
mod tests;
