//! The takeover timeline: for each group this node takes, when each phase of the
//! takeover was reached — placement chose this node, a majority voted for it, its
//! VIPs were up, the first announcement left, every resource was online — timed
//! from the failure the takeover answers (when this node detected it) or, for a
//! takeover without one (a planned move, a failback, a first placement), from the
//! decision; and the last few finished takeovers of each group, for the node report.
//!
//! Owns those records. It is pure — the event loop passes the local monotonic time
//! and the wall clock — and must never observe metrics, log or publish: the loop
//! does that with a finished [`Takeover`], as its mode wants.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::metrics::Phase;
use crate::api::PhaseTime;
use crate::contract::report;
use crate::placement::Reason;

/// How many finished takeovers of each group the node reports: the last, and the
/// one before should the operator miss a node Lease write. The operator keeps the
/// history (`status.recentTakeovers`); the report only has to carry it there, and
/// stays small (a record is about 250 bytes of JSON).
pub const REPORTED_PER_GROUP: usize = 2;

/// What a takeover's times count from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// This node detected the failure of a peer (no heartbeat within `deadAfter`,
    /// or it left) shortly before placement chose it.
    Detected,
    /// Placement chose this node without a failure it detected.
    Decided,
}

impl Origin {
    /// How logs and Event notes name it.
    pub fn label(self) -> &'static str {
        match self {
            Origin::Detected => "detection",
            Origin::Decided => "decision",
        }
    }
}

/// A finished takeover: the group's resources came online here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Takeover {
    pub group: String,
    pub reason: Reason,
    pub epoch: u64,
    pub origin: Origin,
    /// When the origin happened (wall clock).
    pub time: Timestamp,
    /// Each phase reached, in order, with the time since the origin.
    pub phases: Vec<(Phase, Duration)>,
}

/// A duration in milliseconds, to the microsecond.
pub fn millis(d: Duration) -> f64 {
    // Whole microseconds as f64 are exact for any takeover's length.
    d.as_micros() as f64 / 1e3
}

impl Takeover {
    /// The time from the origin to `phase`, if it was reached.
    pub fn phase(&self, phase: Phase) -> Option<Duration> {
        self.phases
            .iter()
            .find(|(p, _)| *p == phase)
            .map(|(_, d)| *d)
    }

    /// As the node Lease reports it (`failover.dev/takeovers`).
    pub fn report(&self) -> report::Takeover {
        report::Takeover {
            group: self.group.clone(),
            reason: self.reason.code().to_owned(),
            epoch: self.epoch,
            time: Some(self.time),
            phases: self
                .phases
                .iter()
                .map(|&(phase, d)| PhaseTime {
                    phase: phase.label().to_owned(),
                    ms: millis(d),
                })
                .collect(),
        }
    }
}

/// A takeover in progress.
#[derive(Clone, Debug)]
struct Pending {
    origin: Origin,
    /// Local time of the origin.
    at: Duration,
    time: Timestamp,
    phases: Vec<(Phase, Duration)>,
}

impl Pending {
    /// Placement chose this node at local time `now` (wall clock `wall`), for the
    /// failure detected at `detected` if any.
    fn new(now: Duration, wall: Timestamp, detected: Option<Duration>) -> Self {
        let (origin, at) = match detected {
            Some(at) if at <= now => (Origin::Detected, at),
            _ => (Origin::Decided, now),
        };
        let ago = SignedDuration::try_from(now - at).unwrap_or(SignedDuration::ZERO);
        Pending {
            origin,
            at,
            time: wall.checked_sub(ago).unwrap_or(wall),
            phases: vec![(Phase::Decided, now - at)],
        }
    }
}

/// The takeovers of this node: in progress, and the last finished ones.
#[derive(Clone, Debug, Default)]
pub struct Timelines {
    pending: BTreeMap<String, Pending>,
    /// Newest first, at most [`REPORTED_PER_GROUP`] per group.
    finished: VecDeque<Takeover>,
}

impl Timelines {
    /// Placement chose this node for `group` at local time `now` (wall clock
    /// `wall`): a new timeline, from `detected` (the local time of the failure this
    /// choice answers) or from now. It replaces one of an earlier claim that did not
    /// lead to a start.
    pub fn decided(
        &mut self,
        group: &str,
        now: Duration,
        wall: Timestamp,
        detected: Option<Duration>,
    ) {
        self.pending
            .insert(group.to_owned(), Pending::new(now, wall, detected));
    }

    /// The takeover of `group` reached `phase` at local time `at` (ignored when no
    /// takeover of the group is in progress).
    pub fn reached(&mut self, group: &str, phase: Phase, at: Duration) {
        if let Some(pending) = self.pending.get_mut(group) {
            pending.phases.push((phase, at.saturating_sub(pending.at)));
        }
    }

    /// Every resource of `group` came online at local time `now` (wall clock
    /// `wall`): the takeover is finished and kept. The engine claims a group before
    /// it starts it; a start without a decision recorded here is timed as if
    /// placement had chosen this node when its start ended.
    pub fn online(
        &mut self,
        group: &str,
        reason: Reason,
        epoch: u64,
        now: Duration,
        wall: Timestamp,
    ) -> Takeover {
        let mut pending = self
            .pending
            .remove(group)
            .unwrap_or_else(|| Pending::new(now, wall, None));
        pending
            .phases
            .push((Phase::Online, now.saturating_sub(pending.at)));
        let takeover = Takeover {
            group: group.to_owned(),
            reason,
            epoch,
            origin: pending.origin,
            time: pending.time,
            phases: pending.phases,
        };
        self.finished.push_front(takeover.clone());
        let mut seen = 0;
        self.finished.retain(|t| {
            if t.group != group {
                return true;
            }
            seen += 1;
            seen <= REPORTED_PER_GROUP
        });
        takeover
    }

    /// The takeover of `group` did not finish (its resources did not come online).
    pub fn abandon(&mut self, group: &str) {
        self.pending.remove(group);
    }

    /// The finished takeovers of the groups `keep` accepts, newest first.
    pub fn recent(&self, keep: impl Fn(&str) -> bool) -> Vec<Takeover> {
        self.finished
            .iter()
            .filter(|t| keep(&t.group))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn wall() -> Timestamp {
        "2026-12-01T05:00:10Z".parse().unwrap()
    }

    #[test]
    fn a_failover_is_timed_from_the_detection() {
        let mut t = Timelines::default();
        let detected = Duration::from_secs(100);
        t.decided("web", detected + MS, wall(), Some(detected));
        t.reached("web", Phase::Ledger, detected + 3 * MS);
        t.reached("web", Phase::VipUp, detected + 4 * MS);
        t.reached("web", Phase::ArpSent, detected + 5 * MS);
        let done = t.online("web", Reason::OwnerLost, 7, detected + 6 * MS, wall());
        assert_eq!(done.origin, Origin::Detected);
        assert_eq!(done.time, "2026-12-01T05:00:09.999Z".parse().unwrap());
        assert_eq!(
            done.phases,
            [
                (Phase::Decided, MS),
                (Phase::Ledger, 3 * MS),
                (Phase::VipUp, 4 * MS),
                (Phase::ArpSent, 5 * MS),
                (Phase::Online, 6 * MS),
            ]
        );
        assert_eq!(done.phase(Phase::VipUp), Some(4 * MS));
        let reported = done.report();
        assert_eq!(
            (reported.reason.as_str(), reported.epoch, reported.time),
            ("OwnerLost", 7, Some(done.time))
        );
        let ms: Vec<(&str, f64)> = reported
            .phases
            .iter()
            .map(|p| (p.phase.as_str(), p.ms))
            .collect();
        assert_eq!(
            ms,
            [
                ("decided", 1.0),
                ("ledger", 3.0),
                ("vip_up", 4.0),
                ("arp_sent", 5.0),
                ("online", 6.0)
            ]
        );
        assert_eq!(t.recent(|_| true), [done]);
    }

    #[test]
    fn a_planned_move_is_timed_from_the_decision() {
        let mut t = Timelines::default();
        let now = Duration::from_secs(5);
        t.decided("web", now, wall(), None);
        t.reached("web", Phase::Ledger, now + 2 * MS);
        // A group without VIPs: no vip_up nor arp_sent.
        let done = t.online("web", Reason::ManualMove, 3, now + 2 * MS + MS / 2, wall());
        assert_eq!((done.origin, done.time), (Origin::Decided, wall()));
        assert_eq!(
            done.phases,
            [
                (Phase::Decided, Duration::ZERO),
                (Phase::Ledger, 2 * MS),
                (Phase::Online, 2 * MS + MS / 2)
            ]
        );
        assert_eq!(done.report().phases[2].ms, 2.5);
    }

    #[test]
    fn a_new_claim_replaces_an_unfinished_one_and_a_failed_start_leaves_nothing() {
        let mut t = Timelines::default();
        t.decided("web", Duration::from_secs(1), wall(), None);
        t.reached("web", Phase::Ledger, Duration::from_secs(2));
        // The claim was lost; a later one starts a new timeline.
        t.decided("web", Duration::from_secs(9), wall(), None);
        let done = t.online("web", Reason::Placed, 1, Duration::from_secs(10), wall());
        assert_eq!(
            done.phases,
            [
                (Phase::Decided, Duration::ZERO),
                (Phase::Online, Duration::from_secs(1))
            ]
        );
        t.decided("db", Duration::from_secs(11), wall(), None);
        t.reached("db", Phase::Ledger, Duration::from_secs(12));
        t.abandon("db");
        // Phases of a group not being taken are no takeover.
        t.reached("db", Phase::VipUp, Duration::from_secs(12));
        assert_eq!(t.recent(|_| true).len(), 1);
        // A start without a decision recorded: timed from its end.
        let late: Timestamp = "2026-12-01T05:00:20Z".parse().unwrap();
        let done = t.online("db", Reason::Placed, 2, Duration::from_secs(13), late);
        assert_eq!((done.origin, done.time), (Origin::Decided, late));
        assert_eq!(
            done.phases,
            [
                (Phase::Decided, Duration::ZERO),
                (Phase::Online, Duration::ZERO)
            ]
        );
    }

    #[test]
    fn the_last_takeovers_of_each_group_are_kept_newest_first() {
        let mut t = Timelines::default();
        for epoch in 1..=4 {
            let now = Duration::from_secs(epoch);
            t.decided("web", now, wall(), None);
            t.online("web", Reason::Failback, epoch, now, wall());
            t.decided("db", now, wall(), None);
            t.online("db", Reason::Placed, epoch, now, wall());
        }
        let kept: Vec<(String, u64)> = t
            .recent(|_| true)
            .into_iter()
            .map(|t| (t.group, t.epoch))
            .collect();
        assert_eq!(
            kept,
            [
                ("db".to_owned(), 4),
                ("web".to_owned(), 4),
                ("db".to_owned(), 3),
                ("web".to_owned(), 3)
            ]
        );
        let web: Vec<u64> = t.recent(|g| g == "web").iter().map(|t| t.epoch).collect();
        assert_eq!(web, [4, 3]);
    }
}
