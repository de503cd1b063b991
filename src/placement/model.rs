//! The pure domain model the decision core works on: a cluster's members and groups
//! with parsed, typed settings. It knows nothing of Kubernetes; `api` converts the
//! custom resources into it after validation.

use std::time::Duration;

use jiff::civil::{Time as CivilTime, Weekday};
use jiff::tz::TimeZone;

/// How a cluster decides that a node may act.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuorumMode {
    /// A node acts only while connected to a majority of the voting members.
    Majority,
    /// Two voting members; a lease held outside the cluster (the API server) is the
    /// third vote that breaks ties.
    Witness,
    /// No quorum: every node acts on its own view. Split brain is possible; the user
    /// opted out explicitly.
    None,
}

/// One member node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberModel {
    pub name: String,
    /// 0–255, higher wins.
    pub priority: u8,
    /// In maintenance: votes, owns nothing.
    pub paused: bool,
}

/// One daily window in which failback is allowed. `end` before `start` wraps past
/// midnight (22:00–06:00); `days` empty means every day (the day the window starts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DailyWindow {
    pub start: CivilTime,
    pub end: CivilTime,
    pub days: Vec<Weekday>,
}

/// Whether a better node that returns takes a group back.
#[derive(Clone, Debug)]
pub enum FailbackPolicy {
    /// Never: the group stays where it is until that owner fails or a person moves it.
    Never,
    /// As soon as the better node has been alive for `stabilize_for`.
    Immediate { stabilize_for: Duration },
    /// Like `Immediate`, but only inside one of the windows, in `time_zone`.
    Window {
        stabilize_for: Duration,
        windows: Vec<DailyWindow>,
        time_zone: TimeZone,
    },
}

/// At most `max` automatic failovers within `period`; the next one is refused: the
/// group is Failed and stays offline until the count expires or a person clears it
/// (see [`crate::placement::decide`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailoverLimit {
    pub max: u32,
    pub period: Duration,
}

/// A member that failed `failures` times within `period` may not take groups back
/// (it ranks last) until `duration` after its last failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuarantinePolicy {
    pub failures: u32,
    pub period: Duration,
    pub duration: Duration,
}

/// One resource group, as placement sees it.
#[derive(Clone, Debug)]
pub struct GroupModel {
    pub name: String,
    /// Ordered preference; members not listed follow by priority, then name.
    pub preferred_owners: Vec<String>,
    pub failback: FailbackPolicy,
    pub failover_limit: Option<FailoverLimit>,
    /// Manual move: the group goes to this node while it is eligible.
    pub owner: Option<String>,
}

/// A cluster's whole configuration, as the decision core sees it.
#[derive(Clone, Debug)]
pub struct ClusterModel {
    /// Cluster id (`namespace/name`); heartbeats of other ids are foreign.
    pub cluster: String,
    pub members: Vec<MemberModel>,
    pub quorum: QuorumMode,
    pub interval: Duration,
    pub dead_after: Duration,
    pub quarantine: Option<QuarantinePolicy>,
    pub groups: Vec<GroupModel>,
}

impl ClusterModel {
    /// The member named `name`.
    pub fn member(&self, name: &str) -> Option<&MemberModel> {
        self.members.iter().find(|m| m.name == name)
    }

    /// Every member votes (paused ones too): the number of votes a majority needs,
    /// counting the witness as a third vote in witness mode.
    pub fn votes_needed(&self) -> usize {
        let voters = self.members.len() + usize::from(self.quorum == QuorumMode::Witness);
        voters / 2 + 1
    }

    /// The group named `name`.
    pub fn group(&self, name: &str) -> Option<&GroupModel> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The order in which members are considered for `group`: preferred owners in
    /// their order, then the other members by priority (higher first), then name.
    pub fn order<'a>(&'a self, group: &'a GroupModel) -> Vec<&'a str> {
        let mut order: Vec<&str> = Vec::with_capacity(self.members.len());
        for name in &group.preferred_owners {
            if self.member(name).is_some() && !order.contains(&name.as_str()) {
                order.push(name);
            }
        }
        let mut rest: Vec<&MemberModel> = self
            .members
            .iter()
            .filter(|m| !order.contains(&m.name.as_str()))
            .collect();
        rest.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.name.cmp(&b.name)));
        order.extend(rest.into_iter().map(|m| m.name.as_str()));
        order
    }
}
