//! The witness vote of a two-node cluster across a change of witness (a new
//! `spec.witness` address, or a switch between the Kubernetes witness Lease and
//! `failover witness`): joint consensus, as in Raft's membership changes.
//!
//! Owns which witnesses a vote needs and the conjunction of their answers. Pure: it
//! is handed the witnesses of each configuration, the answers and the moment every
//! member was seen on this node's configuration; the shell asks the witnesses.
//!
//! # The rule
//!
//! A node that runs witness `Wn` after a configuration naming `Wo` (a change while it
//! runs) needs both: it asks `Wo` and `Wn`, and counts a witness vote only when both
//! granted it, until it has heard every other member's heartbeat carry its own
//! configuration hash. From then on only `Wn` counts. A grant counts only while
//! every witness needed now granted it: a hold of `Wo` alone stops counting the
//! moment `Wn` is needed too.
//!
//! # Why two members never both hold a witness vote
//!
//! Each witness grants one node at a time, so two votes counted at once must come
//! from disjoint sets of witnesses. The set a node needs is, at every moment:
//! - `{Wo}` on the old configuration (it never ran the new one);
//! - `{Wo, Wn}` once it changed while running, until it heard every member on the
//!   new configuration;
//! - `{Wn}` after that, or after a start on the new configuration.
//!
//! `{Wo}` and `{Wn}` are the only disjoint pair. A node drops `Wo` only after every
//! other member's heartbeat carried the new hash, that is after every member applied
//! the new configuration; applying it, a running member starts needing `Wn` too (a
//! grant of `Wo` alone stops counting), and it needs `Wo` until it too heard every
//! member on the new configuration. So once anyone needs `{Wn}` alone, nobody needs
//! `{Wo}` alone any more, unless a member restarted: see below.
//!
//! # A restart during a change
//!
//! A restarted agent knows only its configuration's witness: it needs `{Wn}` at once.
//! If a member still runs the old configuration then (its file not yet edited, or its
//! ClusterConfig watch behind), the two sets are disjoint. The restart holds do not
//! cover it: the agent's (no vote for `deadAfter` after a start) is about votes its
//! earlier incarnation gave, the witness process's (nothing granted for one hold after
//! its start) about holds it forgot, and after both the restarted node counts its own
//! vote and `Wn`'s. What remains, documented in docs/operations.md: a member restarted
//! while another still runs the old witness can, if the two lose each other before
//! that one applies the new configuration, hold the witness vote alongside it.

use std::net::SocketAddr;
use std::time::Duration;

/// The witness a configuration names (witness quorum only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WitnessRef {
    /// The Kubernetes witness Lease (Kubernetes mode without `spec.witness`).
    Lease,
    /// `failover witness` at this address (`spec.witness`).
    Process(SocketAddr),
}

impl std::fmt::Display for WitnessRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WitnessRef::Lease => f.write_str("the witness Lease"),
            WitnessRef::Process(addr) => write!(f, "failover witness at {addr}"),
        }
    }
}

/// One witness's answer, or the conjunction of several (times in local time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WitnessAnswer {
    /// Granted: the vote is surely this node's until then.
    pub held_until: Option<Duration>,
    /// Refused: another node holds it (or nothing is granted) until then, if known.
    pub other_until: Option<Duration>,
}

/// The conjunction of answers: granted until the earliest hold when every witness
/// granted; else refused until the latest known refusal (asking again earlier finds
/// that witness still refusing). No answer at all is a refusal.
pub fn joint_answer(answers: impl IntoIterator<Item = WitnessAnswer>) -> WitnessAnswer {
    let mut held: Option<Duration> = None;
    let mut refused = false;
    let mut other_until = None;
    for answer in answers {
        match answer.held_until {
            Some(until) => held = Some(held.map_or(until, |h| h.min(until))),
            None => {
                refused = true;
                other_until = other_until.max(answer.other_until);
            }
        }
    }
    if refused || held.is_none() {
        WitnessAnswer {
            held_until: None,
            other_until,
        }
    } else {
        WitnessAnswer {
            held_until: held,
            other_until: None,
        }
    }
}

/// The witnesses a node's vote needs and the state of asking them.
#[derive(Clone, Debug, Default)]
pub struct Witnesses {
    /// The running configuration's witness (`None`: no witness quorum).
    current: Option<WitnessRef>,
    /// Every witness a vote needs, in the order the configurations named them: the
    /// current one and those of the configurations run since the last time every
    /// member was seen on this node's.
    needed: Vec<WitnessRef>,
    /// The request in flight: each witness asked, with its answer once it came.
    asking: Option<Vec<(WitnessRef, Option<WitnessAnswer>)>>,
    /// The last joint grant: until when, and the witnesses that granted it.
    held: Option<(Duration, Vec<WitnessRef>)>,
}

impl Witnesses {
    /// A node that starts on a configuration naming `current`: it knows no other.
    pub fn new(current: Option<WitnessRef>) -> Self {
        Witnesses {
            current,
            needed: current.into_iter().collect(),
            asking: None,
            held: None,
        }
    }

    /// A new configuration names `current`. Returns whether a vote now needs a
    /// witness it did not need before on top of others (a change began or grew).
    pub fn configure(&mut self, current: Option<WitnessRef>) -> bool {
        self.current = current;
        match current {
            Some(witness) if !self.needed.contains(&witness) => {
                self.needed.push(witness);
                self.needed.len() > 1
            }
            _ => false,
        }
    }

    /// Every other member was heard on this node's configuration: only the current
    /// witness counts from now on. Returns the witnesses no longer needed.
    pub fn confirm(&mut self) -> Vec<WitnessRef> {
        let current = self.current;
        let (kept, dropped) = self.needed.iter().partition(|w| Some(**w) == current);
        self.needed = kept;
        dropped
    }

    /// Whether a vote needs more than one witness (a change in progress).
    pub fn changing(&self) -> bool {
        self.needed.len() > 1
    }

    /// The witnesses a vote needs now, the oldest first.
    pub fn needed(&self) -> &[WitnessRef] {
        &self.needed
    }

    /// Whether a request is in flight.
    pub fn pending(&self) -> bool {
        self.asking.is_some()
    }

    /// Starts a request: every witness needed now is to be asked (none without a
    /// witness; then nothing is in flight).
    pub fn ask(&mut self) -> Vec<WitnessRef> {
        if self.needed.is_empty() {
            return Vec::new();
        }
        self.asking = Some(self.needed.iter().map(|w| (*w, None)).collect());
        self.needed.clone()
    }

    /// One witness's answer. Once every witness asked has answered, the request is
    /// over: returns the joint answer, and a grant is kept with the witnesses that
    /// gave it. An answer of a witness not asked (nothing in flight, or not part of
    /// this request) is ignored.
    pub fn answer(&mut self, witness: WitnessRef, answer: WitnessAnswer) -> Option<WitnessAnswer> {
        let asking = self.asking.as_mut()?;
        let slot = asking.iter_mut().find(|(w, _)| *w == witness)?;
        slot.1 = Some(answer);
        if asking.iter().any(|(_, a)| a.is_none()) {
            return None;
        }
        let asked = self.asking.take()?;
        let joint = joint_answer(asked.iter().filter_map(|(_, a)| *a));
        self.held = joint
            .held_until
            .map(|until| (until, asked.into_iter().map(|(w, _)| w).collect()));
        Some(joint)
    }

    /// Until when this node holds the witness vote: the last joint grant, if every
    /// witness needed now was part of it.
    pub fn held_until(&self) -> Option<Duration> {
        self.held
            .as_ref()
            .filter(|(_, granted)| self.needed.iter().all(|w| granted.contains(w)))
            .map(|(until, _)| *until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(last: u8) -> WitnessRef {
        WitnessRef::Process(SocketAddr::from(([192, 0, 2, last], 9000)))
    }

    fn granted(secs: u64) -> WitnessAnswer {
        WitnessAnswer {
            held_until: Some(Duration::from_secs(secs)),
            other_until: None,
        }
    }

    fn refused(secs: Option<u64>) -> WitnessAnswer {
        WitnessAnswer {
            held_until: None,
            other_until: secs.map(Duration::from_secs),
        }
    }

    #[test]
    fn the_joint_answer_is_a_grant_only_when_every_witness_granted() {
        assert_eq!(joint_answer([granted(5), granted(3)]), granted(3));
        assert_eq!(
            joint_answer([granted(5), refused(Some(7))]),
            refused(Some(7))
        );
        assert_eq!(
            joint_answer([refused(Some(4)), refused(None), refused(Some(9))]),
            refused(Some(9))
        );
        assert_eq!(joint_answer([granted(5), refused(None)]), refused(None));
        assert_eq!(joint_answer([]), refused(None));
    }

    #[test]
    fn without_a_change_one_witness_is_asked_and_its_grant_counts() {
        let mut w = Witnesses::new(Some(process(1)));
        assert!(!w.configure(Some(process(1))), "the same witness again");
        assert_eq!(w.ask(), vec![process(1)]);
        assert!(w.pending());
        assert_eq!(w.answer(process(1), granted(5)), Some(granted(5)));
        assert!(!w.pending());
        assert_eq!(w.held_until(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn during_a_change_both_witnesses_must_grant() {
        let mut w = Witnesses::new(Some(process(1)));
        assert!(w.configure(Some(process(2))), "a change begins");
        assert!(w.changing());
        assert_eq!(w.ask(), vec![process(1), process(2)]);
        // The new witness grants, the old one is held by the other member.
        assert_eq!(
            w.answer(process(2), granted(5)),
            None,
            "one answer is not all"
        );
        assert_eq!(
            w.answer(process(1), refused(Some(4))),
            Some(refused(Some(4)))
        );
        assert_eq!(w.held_until(), None);
        // Both grant: the vote counts until the earlier hold ends.
        w.ask();
        w.answer(process(1), granted(6));
        w.answer(process(2), granted(7));
        assert_eq!(w.held_until(), Some(Duration::from_secs(6)));
    }

    #[test]
    fn a_grant_of_the_old_witness_alone_stops_counting_when_the_change_begins() {
        let mut w = Witnesses::new(Some(process(1)));
        w.ask();
        // The configuration changes while the request is in flight: its answer
        // completes it, but one witness is not the two a vote needs now.
        w.configure(Some(process(2)));
        assert_eq!(w.answer(process(1), granted(5)), Some(granted(5)));
        assert_eq!(w.held_until(), None);
    }

    #[test]
    fn answers_not_asked_for_are_ignored() {
        let mut w = Witnesses::new(Some(process(1)));
        assert_eq!(w.answer(process(1), granted(5)), None, "nothing in flight");
        w.ask();
        assert_eq!(w.answer(process(2), granted(5)), None, "not asked");
        assert!(w.pending());
        assert_eq!(w.held_until(), None);
    }

    #[test]
    fn once_every_member_runs_the_new_configuration_only_the_new_witness_counts() {
        let mut w = Witnesses::new(Some(process(1)));
        w.configure(Some(process(2)));
        assert_eq!(w.confirm(), vec![process(1)]);
        assert!(!w.changing());
        assert_eq!(w.ask(), vec![process(2)]);
        w.answer(process(2), granted(5));
        assert_eq!(w.held_until(), Some(Duration::from_secs(5)));
        // Nothing left to drop.
        assert_eq!(w.confirm(), Vec::new());
    }

    #[test]
    fn a_joint_grant_keeps_counting_after_the_old_witness_is_dropped() {
        let mut w = Witnesses::new(Some(process(1)));
        w.configure(Some(process(2)));
        w.ask();
        w.answer(process(1), granted(5));
        w.answer(process(2), granted(6));
        w.confirm();
        assert_eq!(w.held_until(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn a_change_back_and_forth_needs_every_witness_named_since_the_last_confirmation() {
        let mut w = Witnesses::new(Some(process(1)));
        w.configure(Some(process(2)));
        // Back to the first witness before every member was seen on the second: a
        // member may run either, so both stay needed.
        assert!(!w.configure(Some(process(1))));
        assert_eq!(w.needed(), &[process(1), process(2)]);
        assert_eq!(w.confirm(), vec![process(2)]);
        assert_eq!(w.needed(), &[process(1)]);
    }

    /// Kubernetes mode: adding `spec.witness` switches from the Lease to the process
    /// through the same joint rule.
    #[test]
    fn a_switch_from_the_lease_to_the_process_is_a_change_like_any_other() {
        let mut w = Witnesses::new(Some(WitnessRef::Lease));
        assert!(w.configure(Some(process(1))));
        assert_eq!(w.ask(), vec![WitnessRef::Lease, process(1)]);
        w.answer(process(1), granted(5));
        assert_eq!(
            w.answer(WitnessRef::Lease, refused(None)),
            Some(refused(None))
        );
        assert_eq!(w.held_until(), None);
        assert_eq!(w.confirm(), vec![WitnessRef::Lease]);
        assert_eq!(w.ask(), vec![process(1)]);
    }

    /// A configuration without witness quorum needs no witness, but the witnesses a
    /// change still needs stay until every member was seen on it: a member may still
    /// run the witness configuration.
    #[test]
    fn leaving_witness_quorum_keeps_the_old_witness_until_confirmed() {
        let mut w = Witnesses::new(Some(process(1)));
        assert!(!w.configure(None));
        assert!(w.configure(Some(process(2))));
        assert_eq!(w.needed(), &[process(1), process(2)]);
        w.configure(None);
        assert_eq!(w.confirm(), vec![process(1), process(2)]);
        assert!(w.ask().is_empty(), "no witness, nothing in flight");
        assert!(!w.pending());
    }
}
