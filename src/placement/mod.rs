//! Ownership rules: which member should own each resource group, and why.
//!
//! `placement(view, model, history, now)` is a pure, deterministic function (DESIGN.md
//! section 5). It never performs IO, reads a clock or keeps state: the caller passes
//! the node's view of its peers, the configuration, what has happened so far and the
//! time. Every decision carries a machine-readable [`Reason`] and a human sentence;
//! [`explain`] says for any member why it is or is not a group's owner.
//!
//! Placement only says what *should* be; whether a node may act on it (quorum, the
//! ledger, majority-confirmed death of the old owner) is the engine's business.

pub mod model;

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use jiff::Timestamp;

pub use model::{
    ClusterModel, DailyWindow, FailbackPolicy, FailoverLimit, GroupModel, MemberModel,
    QuarantinePolicy, QuorumMode,
};

/// The time a decision is made at: monotonic (for durations) and wall clock (for
/// failback windows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time since an arbitrary origin, the same origin as every other
    /// monotonic time in the view and history.
    pub mono: Duration,
    pub wall: Timestamp,
}

/// What a node knows of one member at the time of the decision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberStatus {
    /// A valid heartbeat arrived within `deadAfter`.
    pub alive: bool,
    /// Alive, and its last heartbeat shows it hears this node.
    pub connected: bool,
    /// Start of the member's current alive period.
    pub alive_since: Option<Duration>,
    /// It announced a graceful exit.
    pub leaving: bool,
    /// Groups it reports it cannot host, and why. Every node sees the same set: the
    /// member advertises it in its heartbeats.
    pub unable: BTreeMap<String, UnableReason>,
    /// It runs another configuration than a majority of the voters (for longer than
    /// a reload takes to reach every member): it keeps the groups it runs and takes
    /// no other (docs/operations.md, "One configuration on every member").
    pub config_outvoted: bool,
}

/// Why a member cannot host a group now. The member's agent tells its engine, the
/// engine advertises it in every heartbeat, and placement on every node treats the
/// member as not eligible for the group until it says it can again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnableReason {
    /// No interface of the member has the subnet of one of the group's VIPs.
    SubnetAbsent,
    /// The interface of one of the group's VIPs is down or lost its carrier.
    InterfaceDown,
    /// A resource of the group failed here: it could not be started, or its health
    /// check kept failing past the resource's restart limit.
    ResourceFailed,
}

impl UnableReason {
    /// Every reason, in wire order.
    pub const ALL: [UnableReason; 3] = [
        UnableReason::SubnetAbsent,
        UnableReason::InterfaceDown,
        UnableReason::ResourceFailed,
    ];

    /// The stable code (status, explanations).
    pub fn code(self) -> &'static str {
        match self {
            UnableReason::SubnetAbsent => "SubnetAbsent",
            UnableReason::InterfaceDown => "InterfaceDown",
            UnableReason::ResourceFailed => "ResourceFailed",
        }
    }

    fn sentence(self) -> &'static str {
        match self {
            UnableReason::SubnetAbsent => "no interface has the subnet of its VIPs",
            UnableReason::InterfaceDown => "the interface of its VIPs is down",
            UnableReason::ResourceFailed => "a resource of the group failed there",
        }
    }
}

/// A node's view of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct View {
    /// The node deciding. It counts itself alive and connected.
    pub me: String,
    /// Connected to a majority of voters (or holding the witness, or quorum `none`).
    pub quorate: bool,
    pub members: BTreeMap<String, MemberStatus>,
}

/// What has happened to one group, as far as this node knows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupHistory {
    /// The member currently running the group, if any.
    pub holder: Option<String>,
    /// The member that ran the group last and released it while alive (a planned
    /// move: failback, pause, leave, manual move), until another member runs it: the
    /// successor's decision names why the group moves.
    pub released_by: Option<String>,
    /// Monotonic times of automatic failovers (oldest first).
    pub failovers: VecDeque<Duration>,
    /// The group is Failed: a failover past its limit was refused and nobody has run
    /// it since. While nobody holds it and its count is at the limit, no member takes
    /// it, whatever else happens meanwhile (its last owner comes back, an agent
    /// restarts and sees no owner to fail over from); see [`decide`].
    pub failed: bool,
}

/// What has happened in the cluster, as far as this node knows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub groups: BTreeMap<String, GroupHistory>,
    /// Monotonic times at which each member failed (stopped being alive without
    /// announcing a graceful exit), oldest first.
    pub member_failures: BTreeMap<String, VecDeque<Duration>>,
}

impl History {
    /// Failovers of `group` that still count at `now` under `limit`.
    pub fn failovers_in_period(&self, group: &str, limit: &FailoverLimit, now: Duration) -> usize {
        self.groups
            .get(group)
            .map(|g| {
                g.failovers
                    .iter()
                    .filter(|&&t| now.saturating_sub(t) < limit.period)
                    .count()
            })
            .unwrap_or(0)
    }

    /// Whether `member` is quarantined at `now` for flapping.
    pub fn quarantined(
        &self,
        member: &str,
        policy: Option<&QuarantinePolicy>,
        now: Duration,
    ) -> bool {
        let (Some(policy), Some(failures)) = (policy, self.member_failures.get(member)) else {
            return false;
        };
        let Some(&last) = failures.back() else {
            return false;
        };
        let recent = failures
            .iter()
            .filter(|&&t| last.saturating_sub(t) < policy.period)
            .count();
        recent >= policy.failures as usize && now.saturating_sub(last) < policy.duration
    }
}

/// Why a group has the owner it has (or none). Codes are stable: they appear in
/// status, Events and metrics labels. Serialized by variant name, which is the code
/// (the node Lease report carries it: `contract::report`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Reason {
    /// The group had no owner and goes to the first eligible member.
    Placed,
    /// The owner stays: it is eligible and nothing asks for a move.
    Kept,
    /// The owner is gone (not alive, not connected, its VIPs' subnet absent); the
    /// next eligible member takes over.
    OwnerLost,
    /// A resource of the group failed on the owner (start failed, or a health check
    /// past its restart limit): the owner hands the group over, the next eligible
    /// member takes it at once.
    ResourceFailed,
    /// The interface of the group's VIPs went down on the owner: it hands the group
    /// over, the next eligible member takes it at once.
    InterfaceDown,
    /// The owner was paused (maintenance): it hands the group over and the next
    /// eligible member takes it.
    OwnerPaused,
    /// The owner announced a graceful exit; the next member takes over at once.
    OwnerLeaving,
    /// A better member returned and failback policy lets it take the group back.
    Failback,
    /// `spec.owner` asks for this member.
    ManualMove,
    /// A better member is back but has not been alive for `stabilizeFor` yet.
    FailbackStabilizing,
    /// A better member is back but failback is only allowed in a window.
    FailbackOutsideWindow,
    /// A better member is back but failback policy is Never.
    FailbackDisabled,
    /// A failover is due but the group already failed over `maxFailovers` times
    /// within the period: it is Failed and stays offline (see [`decide`]).
    FailoverLimitReached,
    /// No member can run the group.
    NoEligibleMember,
    /// This node is not quorate and decides nothing.
    NotQuorate,
}

impl Reason {
    /// Every reason, in declaration order: a new reason goes here too, so the docs
    /// test (`tests/docs_truth.rs`) asks for its documentation.
    pub const ALL: [Reason; 15] = [
        Reason::Placed,
        Reason::Kept,
        Reason::OwnerLost,
        Reason::ResourceFailed,
        Reason::InterfaceDown,
        Reason::OwnerPaused,
        Reason::OwnerLeaving,
        Reason::Failback,
        Reason::ManualMove,
        Reason::FailbackStabilizing,
        Reason::FailbackOutsideWindow,
        Reason::FailbackDisabled,
        Reason::FailoverLimitReached,
        Reason::NoEligibleMember,
        Reason::NotQuorate,
    ];

    /// The reason whose code is `code`; `None` for text no reason has (a record
    /// written by another version).
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Placed => "Placed",
            Reason::Kept => "Kept",
            Reason::OwnerLost => "OwnerLost",
            Reason::ResourceFailed => "ResourceFailed",
            Reason::InterfaceDown => "InterfaceDown",
            Reason::OwnerPaused => "OwnerPaused",
            Reason::OwnerLeaving => "OwnerLeaving",
            Reason::Failback => "Failback",
            Reason::ManualMove => "ManualMove",
            Reason::FailbackStabilizing => "FailbackStabilizing",
            Reason::FailbackOutsideWindow => "FailbackOutsideWindow",
            Reason::FailbackDisabled => "FailbackDisabled",
            Reason::FailoverLimitReached => "FailoverLimitReached",
            Reason::NoEligibleMember => "NoEligibleMember",
            Reason::NotQuorate => "NotQuorate",
        }
    }

    /// Whether this reason moves a group away from a holder that is still able to
    /// run it (a planned, graceful move rather than a failover).
    pub fn is_planned_move(self) -> bool {
        matches!(self, Reason::Failback | Reason::ManualMove)
    }

    /// Whether a take for this reason is an automatic failover, counted against the
    /// group's failover limit: the owner died or could not run the group any more.
    /// Placements, planned moves and hand-overs of a leaving or paused owner are not.
    pub fn is_failover(self) -> bool {
        matches!(
            self,
            Reason::OwnerLost | Reason::ResourceFailed | Reason::InterfaceDown
        )
    }
}

/// The decision for one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Who should run the group; `None` = nobody (offline or failed).
    pub owner: Option<String>,
    pub reason: Reason,
    /// A sentence for people.
    pub message: String,
}

/// Decisions for every group of the model, by group name.
pub type Decisions = BTreeMap<String, Decision>;

/// Why a member is not eligible for a group (or `None` when it is).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ineligible {
    NotMember,
    Paused,
    NotAlive,
    NotConnected,
    Leaving,
    Unable(UnableReason),
    /// Runs another configuration than a majority of the voters. It keeps a group it
    /// runs: see [`ineligibility_to_keep`].
    ConfigOutvoted,
}

impl Ineligible {
    fn sentence(self) -> String {
        let fixed = match self {
            Ineligible::NotMember => "is not a member of the cluster",
            Ineligible::Paused => "is paused",
            Ineligible::NotAlive => "is not alive (no heartbeat within deadAfter)",
            Ineligible::NotConnected => "does not hear this node (one-way connectivity)",
            Ineligible::Leaving => "is leaving the cluster",
            Ineligible::ConfigOutvoted => {
                "runs another configuration than a majority of the members"
            }
            Ineligible::Unable(why) => {
                return format!(
                    "reports it cannot host the group: {} ({})",
                    why.sentence(),
                    why.code()
                );
            }
        };
        fixed.to_string()
    }
}

/// The first reason why `member` cannot run `group` in `view`, if any.
pub fn ineligibility(
    view: &View,
    model: &ClusterModel,
    group: &GroupModel,
    member: &str,
) -> Option<Ineligible> {
    let Some(config) = model.member(member) else {
        return Some(Ineligible::NotMember);
    };
    if config.paused {
        return Some(Ineligible::Paused);
    }
    let status = view.members.get(member);
    let is_me = member == view.me;
    match status {
        None => Some(Ineligible::NotAlive),
        Some(s) if !is_me && !s.alive => Some(Ineligible::NotAlive),
        Some(s) if !is_me && !s.connected => Some(Ineligible::NotConnected),
        Some(s) if s.leaving => Some(Ineligible::Leaving),
        Some(s) => s
            .unable
            .get(&group.name)
            .map(|&why| Ineligible::Unable(why))
            .or(s.config_outvoted.then_some(Ineligible::ConfigOutvoted)),
    }
}

/// The first reason why `member`, which runs `group` (or just released it), cannot
/// run it any more. A member whose configuration is outvoted keeps what it runs:
/// moving a group because of a reload that has not reached every member yet would
/// be an outage for nothing, and whichever configuration is right, the group has
/// one owner.
fn ineligibility_to_keep(
    view: &View,
    model: &ClusterModel,
    group: &GroupModel,
    member: &str,
) -> Option<Ineligible> {
    ineligibility(view, model, group, member).filter(|p| *p != Ineligible::ConfigOutvoted)
}

/// The decision for every group.
pub fn placement(view: &View, model: &ClusterModel, history: &History, now: Now) -> Decisions {
    model
        .groups
        .iter()
        .map(|g| (g.name.clone(), decide(view, model, history, now, g)))
        .collect()
}

/// The decision for one group (what [`placement`] computes for each).
///
/// **Failed** (the failover limit): when the decision would be an automatic
/// failover ([`Reason::is_failover`]: the owner died, a resource failed on it, its
/// interface went down) and the group already failed over `maxFailovers` times within
/// `period`, nobody runs it: the owner stops it if it still runs it, no member starts
/// it, and the reason is [`Reason::FailoverLimitReached`]. The group stays so, held
/// by [`GroupHistory::failed`] once nobody runs it, until the oldest failover leaves
/// the period or a person clears the count: its last owner coming back or an agent
/// restarting is no reason to run it again. A group that has an owner is never
/// blocked by a move that is not a failover (failback, pause, leave, manual move),
/// and an owner that can keep the group keeps it.
pub fn decide(
    view: &View,
    model: &ClusterModel,
    history: &History,
    now: Now,
    group: &GroupModel,
) -> Decision {
    let decision = decide_without_limit(view, model, history, now, group);
    let Some(limit) = &group.failover_limit else {
        return decision;
    };
    let count = history.failovers_in_period(&group.name, limit, now.mono);
    let failed = history
        .groups
        .get(&group.name)
        .is_some_and(|g| g.failed && g.holder.is_none());
    let failover = decision.reason.is_failover();
    if count < limit.max as usize || !(failover || failed) {
        return decision;
    }
    let would = if failover {
        format!(" (it would have moved: {})", decision.message)
    } else {
        String::new()
    };
    Decision {
        owner: None,
        reason: Reason::FailoverLimitReached,
        message: format!(
            "{} failed over {count} times within {:?} (limit {}): it stays offline until the count expires or a person clears it{would}",
            group.name, limit.period, limit.max
        ),
    }
}

/// The decision for one group, failover limit aside.
fn decide_without_limit(
    view: &View,
    model: &ClusterModel,
    history: &History,
    now: Now,
    group: &GroupModel,
) -> Decision {
    if !view.quorate {
        return Decision {
            owner: None,
            reason: Reason::NotQuorate,
            message: format!(
                "{} is not connected to a quorum and takes no part in placing {}",
                view.me, group.name
            ),
        };
    }
    let holder = history
        .groups
        .get(&group.name)
        .and_then(|g| g.holder.clone());
    let holder_problem = holder
        .as_deref()
        .map(|h| ineligibility_to_keep(view, model, group, h));
    let quarantine = model.quarantine.as_ref();
    let order = model.order(group);
    // Lazy: the first eligible members are usually at the head of the order, so most
    // groups look at one or two members, not all of them.
    let eligible = || {
        order
            .iter()
            .copied()
            .filter(|m| ineligibility(view, model, group, m).is_none())
    };
    // Quarantined members rank last: they take a group only when nobody else can.
    let best = eligible()
        .find(|m| !history.quarantined(m, quarantine, now.mono))
        .or_else(|| eligible().next());

    // Manual move: the pinned member wins while it is eligible.
    if let Some(pinned) = group.owner.as_deref()
        && if holder.as_deref() == Some(pinned) {
            ineligibility_to_keep(view, model, group, pinned).is_none()
        } else {
            ineligibility(view, model, group, pinned).is_none()
        }
    {
        let reason = if holder.as_deref() == Some(pinned) {
            Reason::Kept
        } else {
            Reason::ManualMove
        };
        return Decision {
            owner: Some(pinned.to_string()),
            reason,
            message: format!("{} is pinned to {pinned} by spec.owner", group.name),
        };
    }

    let Some(best) = best else {
        return Decision {
            owner: None,
            reason: Reason::NoEligibleMember,
            message: format!(
                "no member can run {}: {}",
                group.name,
                why_none(view, model, group)
            ),
        };
    };

    match (holder.as_deref(), holder_problem) {
        (Some(h), Some(None)) => {
            // The holder can keep running the group. Move it only for a failback.
            if h == best || rank(&order, h) < rank(&order, best) {
                return kept(group, h);
            }
            if history.quarantined(best, quarantine, now.mono) {
                return kept(group, h);
            }
            failback(view, group, now, h, best)
        }
        (Some(h), Some(Some(problem))) => moved(group, h, best, problem),
        // Released while alive: the successor says why it moves.
        _ => match history
            .groups
            .get(&group.name)
            .and_then(|g| g.released_by.as_deref())
            .filter(|r| *r != best)
        {
            Some(from) => match ineligibility_to_keep(view, model, group, from) {
                Some(problem) => moved(group, from, best, problem),
                None if rank(&order, best) < rank(&order, from) => Decision {
                    owner: Some(best.to_string()),
                    reason: Reason::Failback,
                    message: format!(
                        "{} failed back from {from} to {best}, which ranks higher",
                        group.name
                    ),
                },
                None => placed(group, best),
            },
            None => placed(group, best),
        },
    }
}

/// The group moves from `from`, which cannot run it any more, to `to`.
fn moved(group: &GroupModel, from: &str, to: &str, problem: Ineligible) -> Decision {
    Decision {
        owner: Some(to.to_string()),
        reason: match problem {
            Ineligible::Leaving => Reason::OwnerLeaving,
            Ineligible::Paused => Reason::OwnerPaused,
            Ineligible::Unable(UnableReason::ResourceFailed) => Reason::ResourceFailed,
            Ineligible::Unable(UnableReason::InterfaceDown) => Reason::InterfaceDown,
            _ => Reason::OwnerLost,
        },
        message: format!(
            "{} moves from {from} to {to}: {from} {}",
            group.name,
            problem.sentence()
        ),
    }
}

fn placed(group: &GroupModel, best: &str) -> Decision {
    Decision {
        owner: Some(best.to_string()),
        reason: Reason::Placed,
        message: format!(
            "{} is placed on {best}, the first eligible member in its order",
            group.name
        ),
    }
}

fn rank(order: &[&str], member: &str) -> usize {
    order
        .iter()
        .position(|m| *m == member)
        .unwrap_or(usize::MAX)
}

fn kept(group: &GroupModel, holder: &str) -> Decision {
    Decision {
        owner: Some(holder.to_string()),
        reason: Reason::Kept,
        message: format!(
            "{} stays on {holder}: it is eligible and no better member asks for it",
            group.name
        ),
    }
}

fn failback(view: &View, group: &GroupModel, now: Now, holder: &str, better: &str) -> Decision {
    let stay = |reason: Reason, why: String| Decision {
        owner: Some(holder.to_string()),
        reason,
        message: format!(
            "{} stays on {holder} although {better} ranks higher: {why}",
            group.name
        ),
    };
    let stable_for = view
        .members
        .get(better)
        .and_then(|s| s.alive_since)
        .map(|since| now.mono.saturating_sub(since));
    let stabilize_for = match &group.failback {
        FailbackPolicy::Never => return stay(Reason::FailbackDisabled, "failback is Never".into()),
        FailbackPolicy::Immediate { stabilize_for } => *stabilize_for,
        FailbackPolicy::Window {
            stabilize_for,
            windows,
            time_zone,
        } => {
            if !in_any_window(windows, time_zone, now.wall) {
                return stay(
                    Reason::FailbackOutsideWindow,
                    "failback is allowed only inside its windows".into(),
                );
            }
            *stabilize_for
        }
    };
    // The holder decides a failback and hands the group over; the returning node
    // waits for that release (it cannot see its own alive period as others see it).
    if better == view.me {
        return stay(
            Reason::FailbackStabilizing,
            format!("{better} waits for {holder} to hand the group over"),
        );
    }
    let stable = stable_for.is_some_and(|d| d >= stabilize_for);
    if !stable {
        return stay(
            Reason::FailbackStabilizing,
            format!("{better} must be alive for {stabilize_for:?} first"),
        );
    }
    Decision {
        owner: Some(better.to_string()),
        reason: Reason::Failback,
        message: format!(
            "{} fails back from {holder} to {better}, which ranks higher",
            group.name
        ),
    }
}

/// Whether `wall` lies in one of `windows` in `tz`.
pub fn in_any_window(windows: &[DailyWindow], tz: &jiff::tz::TimeZone, wall: Timestamp) -> bool {
    let local = wall.to_zoned(tz.clone());
    let time = local.time();
    let today = local.date().weekday();
    let yesterday = today.previous();
    windows.iter().any(|w| {
        let on = |day| w.days.is_empty() || w.days.contains(&day);
        if w.start <= w.end {
            on(today) && w.start <= time && time < w.end
        } else {
            // Wraps midnight: the part before midnight belongs to today's window,
            // the part after midnight to yesterday's.
            (on(today) && time >= w.start) || (on(yesterday) && time < w.end)
        }
    })
}

fn why_none(view: &View, model: &ClusterModel, group: &GroupModel) -> String {
    model
        .order(group)
        .iter()
        .filter_map(|m| {
            ineligibility(view, model, group, m).map(|p| format!("{m} {}", p.sentence()))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why `member` is or is not the owner of `group` under this node's view.
pub fn explain(
    view: &View,
    model: &ClusterModel,
    history: &History,
    now: Now,
    group: &GroupModel,
    member: &str,
) -> String {
    let decision = decide(view, model, history, now, group);
    if decision.owner.as_deref() == Some(member) {
        return format!("{member} owns {}: {}", group.name, decision.message);
    }
    if let Some(problem) = ineligibility(view, model, group, member) {
        return format!(
            "{member} cannot own {}: it {}",
            group.name,
            problem.sentence()
        );
    }
    if history.quarantined(member, model.quarantine.as_ref(), now.mono) {
        return format!(
            "{member} is quarantined after repeated failures and ranks last for {}",
            group.name
        );
    }
    match decision.owner {
        Some(owner) => format!(
            "{member} is eligible for {} but {owner} owns it: {}",
            group.name, decision.message
        ),
        None => format!("{member} does not own {}: {}", group.name, decision.message),
    }
}

#[cfg(test)]
mod tests;
