//! The decision engine of one node: membership + placement + the ownership ledger +
//! self-fencing, as one sans-IO state machine (DESIGN.md section 5).
//!
//! Inputs (a datagram, a timer, a config change, a leave request, the answer of the
//! resource layer or the witness, what the group's record outside the cluster says)
//! go in with the local monotonic time; outputs (datagrams to broadcast, resources to
//! start, renew or stop, witness requests, events) come out of [`Engine::poll_output`];
//! [`Engine::poll_timeout`] says when the engine wants to be woken. It owns no socket,
//! timer or thread.
//!
//! # Why two nodes never run the same group
//!
//! Every member votes. A vote ("grant") lets one node own one group; a voter gives it
//! to one node at a time and keeps it for `deadAfter` after the last heartbeat in
//! which that node still claimed the group. A node runs a group only while a
//! majority of votes (plus the witness in witness mode) is valid *by its own
//! conservative reckoning*: a vote counts until the send time of the heartbeat the
//! voter last echoed, plus `deadAfter` shortened by the clock-drift allowance. So at
//! any instant the votes a holder counts are a subset of the votes the voters really
//! give it, two majorities intersect, and two holders cannot overlap. The holder
//! stops its resources `fence_margin` before its count of valid votes falls below a
//! majority (self-fencing), so they are gone before any voter can vote again.
//!
//! Takeover needs no timeout beyond detection: when the owner dies, each voter's
//! vote lapses `deadAfter` after the owner's last heartbeat — the moment that voter
//! sees it dead — and the successor has a majority as soon as a majority of voters
//! saw the owner dead (majority-confirmed death). A graceful release (leave, pause,
//! failback, manual move) is announced in a heartbeat sent at once, which frees the
//! votes at once, so a planned move costs a few datagrams.
//!
//! # Epochs
//!
//! The quorate majority is the ledger, in every mode: no ownership change waits for
//! anything outside the cluster (the witness of a two-node cluster is a vote). Each
//! take carries an epoch above every epoch its voters know, so it rises with every
//! ownership change while any member remembers the last one. What outlives the
//! agents (the Kubernetes group Lease) is only a record of the majority's decisions;
//! fed back as [`Input::Recorded`] it is a floor, so the epoch keeps rising after
//! every agent restarted too.
//!
//! # Contested claims, and the ownerless stall of issue 10
//!
//! Nodes can disagree about placement, and not only for a moment: each keeps its own
//! history, and a node records the failures it saw of the others, never its own. With
//! flap quarantine (on by default: 3 failures in 1 h), agents on a busy machine that
//! run late now and then see each other flap, and each ranks the others last and
//! itself first. When the owner dies (or fences, when its voters' heartbeats came too
//! late), every survivor claims the group at once; a claimant keeps its own vote while
//! it claims, so none reaches a majority, and the group stayed ownerless until the
//! contest back-off (deadAfter plus two intervals, then one to three intervals) — and
//! again after the next fence, which on a busy machine at 10 ms / 30 ms comes every
//! second or so. So a claim now gives way at once to a claim of a member that ranks
//! higher in the group's order (`spec.owner` first), an order all nodes share: its
//! vote, and every vote held for it, moves to the higher-ranked claimant, which wins
//! within a round trip. A holder that hands a group over is not such a claimant: its
//! votes are free the moment it stops. And a back-off ends as soon as no other alive
//! member claims the group: a node that backed off from a contest with a holder it
//! could not reach, when that holder then died, used to wait the back-off out before
//! taking over.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use crate::membership::{
    Claim, ClaimState, DropReason, EncodeError, Grant, GroupFailovers, Keyring, Membership,
    Received, Unable,
};
use crate::placement::{
    self, ClusterModel, Decision, Decisions, GroupModel, History, MemberStatus, Now, QuorumMode,
    Reason, UnableReason, View,
};

mod votes;
mod witnesses;

use votes::CountedVote;
pub use witnesses::{WitnessAnswer, WitnessRef, Witnesses, joint_answer};

/// Allowance for the rate difference between two nodes' clocks. Real clocks drift by
/// less than 0.01%; a node counts a vote for 1% less than the voter keeps it.
pub const DRIFT_ALLOWANCE: f64 = 0.01;

/// Until when a witness vote of `duration`, asked for at local time `sent`, is
/// surely this node's: the witness (the Kubernetes Lease or `failover witness`)
/// counts the hold from some moment after `sent`, and our clock may run up to
/// [`DRIFT_ALLOWANCE`] slower than the witness's. The value of [`Input::Witness`]'s
/// `held_until` in both modes.
pub fn witness_held_until(sent: Duration, duration: Duration) -> Duration {
    sent + duration.mul_f64(1.0 - DRIFT_ALLOWANCE)
}

/// Failovers of one group a node remembers (and advertises) at most.
const MAX_FAILOVERS_KEPT: usize = 64;

/// How long members may run different configurations before it counts as a
/// mismatch: a reload reaches every member within about 500 ms (the standalone
/// file is polled every 500 ms, a ConfigMap watch is faster), so four times that.
pub const CONFIG_GRACE: Duration = Duration::from_secs(2);

/// Tunables of the engine that are not part of the cluster configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// How long before its votes lapse a holder starts to stop its resources: covers
    /// the time to stop them and a late timer.
    pub fence_margin: Duration,
    /// How long a peer may run another configuration than this node before it is a
    /// mismatch (reported, and counted for the majority rule of
    /// [`Engine::config_outvoted`]).
    pub config_grace: Duration,
}

impl EngineConfig {
    /// Defaults for a cluster's timing: an eighth of `deadAfter`, at least 3 ms
    /// (timer granularity plus a netlink round trip) and at most 100 ms.
    pub fn for_model(model: &ClusterModel) -> Self {
        let margin =
            (model.dead_after / 8).clamp(Duration::from_millis(3), Duration::from_millis(100));
        EngineConfig {
            fence_margin: margin,
            config_grace: CONFIG_GRACE,
        }
    }
}

/// Why a node stops a group's resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopCause {
    /// Placement moves the group (failback, manual move, pause, leave, unable).
    Release(Reason),
    /// Its votes are about to lapse (lost quorum, partition), or the group's record
    /// names another owner written after this node's own ([`Input::Superseded`]).
    Fence,
    /// The group left the configuration.
    Removed,
}

/// Something a person or a metric cares about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    PeerUp {
        node: String,
    },
    PeerDown {
        node: String,
        leaving: bool,
    },
    QuorumGained,
    QuorumLost,
    Dropped(DropReason),
    /// Placement chose this node; it asks the voters.
    Claimed {
        group: String,
        reason: Reason,
        message: String,
    },
    /// A majority voted for this node: the ledger (the quorate majority) made it
    /// the owner.
    Won {
        group: String,
        epoch: u64,
    },
    Fenced {
        group: String,
    },
    Released {
        group: String,
        reason: Reason,
    },
    /// A live peer has run another configuration than this node for longer than
    /// [`EngineConfig::config_grace`] (or moved on to yet another one).
    ConfigMismatch {
        node: String,
        theirs: u64,
        ours: u64,
    },
    /// That peer runs this node's configuration again, or is no longer heard.
    ConfigMismatchEnded {
        node: String,
    },
    /// A majority of the voters runs `majority`, not this node's configuration:
    /// this node keeps the groups it runs and takes no other.
    ConfigOutvoted {
        ours: u64,
        majority: u64,
    },
    /// This node's configuration is no longer outvoted.
    ConfigOutvotedEnded,
    /// The configuration names another witness: until every member is seen on this
    /// node's configuration, a witness vote needs all of these (old ones first).
    WitnessChangeBegan {
        needed: Vec<WitnessRef>,
    },
    /// Every member was seen on this node's configuration: these witnesses no
    /// longer count, only the configuration's own.
    WitnessChangeDone {
        dropped: Vec<WitnessRef>,
    },
}

/// What the engine asks its shell to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send this datagram to every other member.
    Broadcast(Vec<u8>),
    /// Bring the group's resources online (in dependency order), then report
    /// [`Input::Online`].
    Start {
        group: String,
        epoch: u64,
        reason: Reason,
        message: String,
    },
    /// Refresh what keeps the resources alive by themselves (the VIP lifetime).
    Renew {
        group: String,
    },
    /// Take the group's resources offline (reverse order), then report [`Input::Offline`].
    Stop {
        group: String,
        cause: StopCause,
    },
    /// Acquire or renew the witness vote of this witness and answer with
    /// [`Input::Witness`]. During a change of witness one comes per witness needed.
    WitnessRequest {
        witness: WitnessRef,
    },
    Event(Event),
}

/// What happens to the engine.
#[derive(Clone, Debug)]
pub enum Input<'a> {
    /// The timer of [`Engine::poll_timeout`] fired (or any other wake-up).
    Tick,
    /// A datagram that arrived over heartbeat link `link` (the index of the member's
    /// address it was received on: 0 for `address`, then `additionalAddresses`).
    Datagram { bytes: &'a [u8], link: usize },
    /// A new configuration (already validated), its hash and its witness (`None`
    /// without witness quorum).
    Configure {
        model: Arc<ClusterModel>,
        hash: u64,
        witness: Option<WitnessRef>,
    },
    /// Leave gracefully: hand every group over, then announce the exit.
    Leave,
    /// The group's resources are online.
    Online { group: String },
    /// The group's resources are offline.
    Offline { group: String },
    /// The group's record outside the cluster (the Kubernetes group Lease) names
    /// `epoch`. After every agent restarted, the engines' epochs start low again:
    /// this is the floor. The next take of the group gets a higher epoch, and a
    /// group this node runs at an epoch not above it moves to `epoch + 1` (same
    /// owner, a higher number), so recorded epochs never go back.
    Recorded { group: String, epoch: u64 },
    /// The group's record names another owner at an epoch at least `epoch`, written
    /// after this node's own record of its ownership at `epoch`: someone else took
    /// the group over since. The node fences the group (if it still runs it at
    /// `epoch`) and claims it again only after `deadAfter` + one interval.
    Superseded { group: String, epoch: u64 },
    /// Answer of `witness` to a [`Output::WitnessRequest`]: held until this local
    /// time (conservative), or refused because another node holds it until
    /// `other_until` (local time, if known).
    Witness {
        witness: WitnessRef,
        held_until: Option<Duration>,
        other_until: Option<Duration>,
    },
    /// Every group this node cannot host now, with why (VIP subnet absent, interface
    /// down, a resource failed); a group not named can be hosted (again). The node
    /// advertises the set in its heartbeats and placement on every node skips it for
    /// those groups: an owner that becomes unable hands the group over at once.
    Unable {
        groups: BTreeMap<String, UnableReason>,
    },
    /// The group's clear-failures value is `token` ([`clear_token`] of the
    /// `failover.dev/clear-failures` annotation). A token other than the one the
    /// node knows clears the group's failover count; the same one again changes
    /// nothing, so the shell may repeat it with every configuration.
    ClearFailures { group: String, token: u64 },
}

/// The token of a clear-failures value: a stable 64-bit FNV-1a hash, never 0 (0
/// means "never cleared").
pub fn clear_token(value: &str) -> u64 {
    let hash = value.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    hash.max(1)
}

/// The node's own progress with one group.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Local {
    /// Asking for votes since heartbeat `since_seq`.
    Claiming {
        since_seq: u64,
        since: Duration,
        reason: Reason,
        message: String,
    },
    Starting {
        since_seq: u64,
        epoch: u64,
    },
    Online {
        since_seq: u64,
        epoch: u64,
    },
    Stopping {
        epoch: u64,
    },
    /// Gave up a contested claim; tries again after `until`.
    Backoff {
        until: Duration,
    },
}

impl Local {
    /// Whether the node runs (or is starting or stopping) the group's resources.
    fn holds(&self) -> bool {
        matches!(
            self,
            Local::Starting { .. } | Local::Online { .. } | Local::Stopping { .. }
        )
    }

    fn claim(&self, known_epoch: u64) -> Option<(u64, ClaimState)> {
        match self {
            Local::Claiming { .. } => Some((known_epoch, ClaimState::Claiming)),
            Local::Starting { epoch, .. }
            | Local::Online { epoch, .. }
            | Local::Stopping { epoch } => Some((*epoch, ClaimState::Holding)),
            Local::Backoff { .. } => None,
        }
    }

    fn since_seq(&self) -> Option<u64> {
        match self {
            Local::Claiming { since_seq, .. }
            | Local::Starting { since_seq, .. }
            | Local::Online { since_seq, .. } => Some(*since_seq),
            _ => None,
        }
    }
}

/// This node's vote for one group.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Vote {
    holder: String,
    holder_incarnation: u64,
    epoch: u64,
    renewed_at: Duration,
}

/// The engine of one node.
#[derive(Debug)]
pub struct Engine {
    model: Arc<ClusterModel>,
    config: EngineConfig,
    membership: Membership,
    history: History,
    local: BTreeMap<String, Local>,
    votes: BTreeMap<String, Vote>,
    known_epoch: BTreeMap<String, u64>,
    unable: BTreeMap<String, UnableReason>,
    /// Per group, the clear-failures token its failover count starts from.
    clear_tokens: BTreeMap<String, u64>,
    /// Per group, the epoch of the take its failover count belongs to: this node's
    /// own take while (and after) it held the group, else the one of the record it
    /// adopted.
    count_epoch: BTreeMap<String, u64>,
    /// The witnesses a witness vote needs, and the last joint grant.
    witnesses: Witnesses,
    /// After a refused witness request, the next one waits until then.
    witness_retry_at: Duration,
    alive: BTreeMap<String, bool>,
    quorate: bool,
    decisions: Decisions,
    next_heartbeat: Duration,
    send_now: bool,
    /// Wall-clock offset: wall time = `wall_origin` + monotonic time.
    wall_origin: Timestamp,
    /// Before this local time the node gives no vote: an earlier incarnation of it may
    /// have voted, and those votes are forgotten but may still be counted by their
    /// holder for up to `deadAfter`.
    votes_from: Duration,
    /// Local time of the last step.
    last_step: Duration,
    /// When a graceful leave was asked for.
    leave_started: Option<Duration>,
    /// Per group, the highest epoch its record (the group Lease) was seen with.
    record_floor: BTreeMap<String, u64>,
    /// Per group superseded in its record: no claim before this local time.
    superseded_until: BTreeMap<String, Duration>,
    /// Per live peer that runs another configuration than this node: its hash, and
    /// since when it has differed without a break.
    config_skew: BTreeMap<String, (u64, Duration)>,
    /// The peers of `config_skew` past the grace: the mismatches, with their hashes.
    config_mismatch: BTreeMap<String, u64>,
    /// Members (this node included) whose configuration a majority outvotes.
    config_outvoted: BTreeSet<String>,
    outputs: VecDeque<Output>,
}

impl Engine {
    /// A node `me` of `model`, started at local monotonic time `now` (wall clock
    /// `wall`), with a fresh `incarnation` larger than any earlier one of this node;
    /// `witness` is the configuration's witness (`None` without witness quorum).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        me: &str,
        model: Arc<ClusterModel>,
        config_hash: u64,
        witness: Option<WitnessRef>,
        config: EngineConfig,
        keys: Keyring,
        incarnation: u64,
        now: Duration,
        wall: Timestamp,
    ) -> Self {
        let membership = Membership::new(me, &model, config_hash, keys, incarnation);
        let model_dead_after = model.dead_after;
        let wall_origin = wall
            .checked_sub(jiff::SignedDuration::try_from(now).unwrap_or_default())
            .unwrap_or(wall);
        Engine {
            model,
            config,
            membership,
            history: History::default(),
            local: BTreeMap::new(),
            votes: BTreeMap::new(),
            known_epoch: BTreeMap::new(),
            unable: BTreeMap::new(),
            clear_tokens: BTreeMap::new(),
            count_epoch: BTreeMap::new(),
            witnesses: Witnesses::new(witness),
            witness_retry_at: Duration::ZERO,
            alive: BTreeMap::new(),
            quorate: false,
            decisions: Decisions::new(),
            next_heartbeat: now,
            send_now: true,
            wall_origin,
            votes_from: now + model_dead_after,
            last_step: now,
            leave_started: None,
            record_floor: BTreeMap::new(),
            superseded_until: BTreeMap::new(),
            config_skew: BTreeMap::new(),
            config_mismatch: BTreeMap::new(),
            config_outvoted: BTreeSet::new(),
            outputs: VecDeque::new(),
        }
    }

    pub fn me(&self) -> &str {
        self.membership.me()
    }

    pub fn model(&self) -> &ClusterModel {
        &self.model
    }

    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    /// The last placement decisions of this node.
    pub fn decisions(&self) -> &Decisions {
        &self.decisions
    }

    /// Replaces the heartbeat keys (a rotation), effective for the next datagram.
    pub fn set_keys(&mut self, keys: Keyring) {
        self.membership.set_keys(keys);
    }

    pub fn quorate(&self) -> bool {
        self.quorate
    }

    /// The witnesses a witness vote needs (more than one during a change).
    pub fn witnesses(&self) -> &Witnesses {
        &self.witnesses
    }

    /// The live peers that have run another configuration than this node for
    /// longer than the grace, with the hash each runs.
    pub fn config_mismatch(&self) -> &BTreeMap<String, u64> {
        &self.config_mismatch
    }

    /// Whether a majority of the voters runs another configuration than this node
    /// (mismatches past the grace only): it then keeps the groups it runs and takes
    /// no other, and every member's placement skips it for groups it does not run.
    pub fn config_outvoted(&self) -> bool {
        self.config_outvoted.contains(self.membership.me())
    }

    /// Groups whose resources this node runs or is starting or stopping.
    pub fn held_groups(&self) -> impl Iterator<Item = (&str, u64)> {
        self.local.iter().filter_map(|(g, l)| match l {
            Local::Starting { epoch, .. }
            | Local::Online { epoch, .. }
            | Local::Stopping { epoch } => Some((g.as_str(), *epoch)),
            _ => None,
        })
    }

    /// Whether the node runs nothing (after a leave: safe to exit).
    pub fn holds_nothing(&self) -> bool {
        !self.local.values().any(Local::holds)
    }

    /// Whether the node announced a graceful exit.
    pub fn leaving(&self) -> bool {
        self.membership.leaving()
    }

    /// Why `member` is or is not the owner of `group`, under this node's view.
    pub fn explain(&self, group: &str, member: &str, now: Duration) -> Option<String> {
        let g = self.model.group(group)?;
        Some(placement::explain(
            &self.view(now),
            &self.model,
            &self.history,
            self.now(now),
            g,
            member,
        ))
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The local time at which the engine must be ticked at the latest.
    pub fn poll_timeout(&self) -> Duration {
        let mut next = self.next_heartbeat;
        // Deadlines already passed were handled in the last step; only future ones wake.
        let last = self.last_step;
        let mut consider = |t: Duration| {
            if t > last {
                next = next.min(t)
            }
        };
        for (name, _) in self.membership.peers() {
            if let Some(t) = self.membership.alive_until(name) {
                consider(t);
            }
        }
        for vote in self.votes.values() {
            consider(vote.renewed_at + self.model.dead_after);
        }
        consider(self.votes_from);
        if let Some(t) = self.leave_started {
            consider(t + self.model.dead_after);
        }
        consider(self.witness_retry_at);
        for t in self.superseded_until.values() {
            consider(*t);
        }
        for (_, since) in self.config_skew.values() {
            consider(*since + self.config.config_grace);
        }
        if let Some(t) = self.witnesses.held_until() {
            consider(t.saturating_sub(self.model.dead_after.saturating_sub(self.model.interval)));
        }
        for (group, local) in &self.local {
            match local {
                Local::Backoff { until } => consider(*until),
                l => {
                    if let Some(since) = l.since_seq()
                        && let Some((until, _)) = self.lease(group, since)
                    {
                        consider(until.saturating_sub(self.config.fence_margin));
                    }
                }
            }
        }
        next
    }

    fn now(&self, mono: Duration) -> Now {
        let wall = self
            .wall_origin
            .checked_add(jiff::SignedDuration::try_from(mono).unwrap_or_default())
            .unwrap_or(self.wall_origin);
        Now { mono, wall }
    }

    /// Feeds one input at local monotonic time `now`.
    pub fn handle(&mut self, now: Duration, input: Input<'_>) {
        match input {
            Input::Tick => {}
            Input::Datagram { bytes, link } => match self.membership.receive(bytes, link, now) {
                // Its first copy (over another link) did all there is to do.
                Ok(Received::Duplicate) => {}
                Ok(Received::Fresh(hb)) => {
                    let sender = hb.sender.clone();
                    let claimed: Vec<(String, u64)> = hb
                        .claims
                        .iter()
                        .map(|c| (c.group.clone(), c.epoch))
                        .collect();
                    let granted: Vec<(String, u64)> = hb
                        .grants
                        .iter()
                        .map(|g| (g.group.clone(), g.epoch))
                        .collect();
                    for record in hb.failovers.clone() {
                        self.adopt_failovers(record, now);
                    }
                    for (group, epoch) in claimed.iter().chain(&granted) {
                        let known = self.known_epoch.entry(group.clone()).or_default();
                        *known = (*known).max(*epoch);
                    }
                    // A vote is renewed by every heartbeat of its holder that still
                    // claims the group.
                    let incarnation = self.membership.peer(&sender).map(|p| p.last.incarnation);
                    for (group, vote) in &mut self.votes {
                        if vote.holder == sender
                            && Some(vote.holder_incarnation) == incarnation
                            && claimed.iter().any(|(g, _)| g == group)
                        {
                            vote.renewed_at = now;
                        }
                    }
                }
                Err(reason) => self
                    .outputs
                    .push_back(Output::Event(Event::Dropped(reason))),
            },
            Input::Configure {
                model,
                hash,
                witness,
            } => {
                self.membership.reconfigure(&model, hash);
                if self.witnesses.configure(witness) {
                    self.outputs
                        .push_back(Output::Event(Event::WitnessChangeBegan {
                            needed: self.witnesses.needed().to_vec(),
                        }));
                }
                let groups: BTreeSet<&str> = model.groups.iter().map(|g| g.name.as_str()).collect();
                self.votes.retain(|g, _| groups.contains(g.as_str()));
                let removed: Vec<String> = self
                    .local
                    .keys()
                    .filter(|g| !groups.contains(g.as_str()))
                    .cloned()
                    .collect();
                for group in removed {
                    self.stop(&group, StopCause::Removed);
                }
                self.model = model;
                self.send_now = true;
            }
            Input::Leave => {
                self.leave_started.get_or_insert(now);
                self.membership.set_leaving();
                self.send_now = true;
            }
            Input::Online { group } => {
                if let Some(Local::Starting { since_seq, epoch }) = self.local.get(&group).cloned()
                {
                    self.local.insert(group, Local::Online { since_seq, epoch });
                }
            }
            Input::Offline { group } => {
                if matches!(self.local.get(&group), Some(Local::Stopping { .. })) {
                    self.local.remove(&group);
                    self.send_now = true;
                }
            }
            Input::Recorded { group, epoch } => self.recorded(&group, epoch),
            Input::Superseded { group, epoch } => {
                if let Some(Local::Starting { epoch: e, .. } | Local::Online { epoch: e, .. }) =
                    self.local.get(&group)
                    && *e == epoch
                {
                    self.outputs.push_back(Output::Event(Event::Fenced {
                        group: group.clone(),
                    }));
                    self.stop(&group, StopCause::Fence);
                    let until = now + self.model.dead_after + self.model.interval;
                    self.superseded_until.insert(group, until);
                }
            }
            Input::Witness {
                witness,
                held_until,
                other_until,
            } => {
                let answer = WitnessAnswer {
                    held_until,
                    other_until,
                };
                // During a change the vote is the conjunction of every witness
                // needed: nothing is decided until the last one answered.
                let Some(WitnessAnswer {
                    held_until,
                    other_until,
                }) = self.witnesses.answer(witness, answer)
                else {
                    self.step(now);
                    return;
                };
                // Refused: another node holds it; ask again the moment its lease
                // runs out (that is when a takeover needs it), or after an interval
                // when the shell cannot tell.
                if held_until.is_none() {
                    self.witness_retry_at = other_until
                        .filter(|t| *t > now)
                        .unwrap_or(now + self.model.interval)
                        .max(now + self.model.interval / 8);
                }
            }
            Input::Unable { groups } => {
                if groups != self.unable {
                    self.unable = groups;
                    self.send_now = true;
                }
            }
            Input::ClearFailures { group, token } => {
                if self.clear_tokens.get(&group) != Some(&token) {
                    self.clear_tokens.insert(group.clone(), token);
                    if let Some(g) = self.history.groups.get_mut(&group) {
                        g.failovers.clear();
                        g.failed = false;
                    }
                    self.send_now = true;
                }
            }
        }
        self.step(now);
    }

    /// This node's view of its peers.
    pub fn view(&self, now: Duration) -> View {
        let me = self.membership.me().to_string();
        let members = self
            .model
            .members
            .iter()
            .map(|m| {
                let status = if m.name == me {
                    MemberStatus {
                        alive: true,
                        connected: true,
                        alive_since: None,
                        leaving: self.membership.leaving(),
                        unable: self.unable.clone(),
                        config_outvoted: self.config_outvoted.contains(&m.name),
                    }
                } else {
                    let peer = self.membership.peer(&m.name);
                    let alive = self.membership.alive(&m.name, now);
                    MemberStatus {
                        alive,
                        connected: self.membership.connected(&m.name, now),
                        alive_since: peer.filter(|_| alive).map(|p| p.alive_since),
                        leaving: alive && peer.is_some_and(|p| p.last.leaving),
                        unable: peer
                            .filter(|_| alive)
                            .map(|p| {
                                p.last
                                    .unable
                                    .iter()
                                    .map(|u| (u.group.clone(), u.reason))
                                    .collect()
                            })
                            .unwrap_or_default(),
                        config_outvoted: alive && self.config_outvoted.contains(&m.name),
                    }
                };
                (m.name.clone(), status)
            })
            .collect();
        View {
            me,
            quorate: self.membership_quorate(now),
            members,
        }
    }

    fn witness_held(&self, now: Duration) -> bool {
        self.witnesses.held_until().is_some_and(|t| now < t)
    }

    fn membership_quorate(&self, now: Duration) -> bool {
        self.membership.quorate(now, self.witness_held(now))
    }

    /// When this node's majority of valid votes for `group` (claimed since heartbeat
    /// `since_seq`) lapses, and the highest epoch among those votes.
    fn lease(&self, group: &str, since_seq: u64) -> Option<(Duration, u64)> {
        let me = self.membership.me();
        let incarnation = self.membership.incarnation();
        let dead_after = self.model.dead_after;
        let counted = dead_after.mul_f64(1.0 - DRIFT_ALLOWANCE);
        let mut votes: Vec<CountedVote> = Vec::with_capacity(self.model.members.len() + 1);
        if let Some(v) = self.votes.get(group)
            && v.holder == me
            && v.holder_incarnation == incarnation
        {
            votes.push(CountedVote {
                until: v.renewed_at + counted,
                epoch: v.epoch,
            });
        }
        for (_, peer) in self.membership.peers() {
            let Some(grant) = peer.last.grants.iter().find(|g| {
                g.group == group && g.holder == me && g.holder_incarnation == incarnation
            }) else {
                continue;
            };
            let Some(echo) =
                peer.last.peers.iter().find(|r| {
                    r.node == me && r.incarnation == incarnation && r.last_seq >= since_seq
                })
            else {
                continue;
            };
            if let Some(sent) = self.membership.sent_at(echo.last_seq) {
                votes.push(CountedVote {
                    until: sent + counted,
                    epoch: grant.epoch,
                });
            }
        }
        if self.model.quorum == QuorumMode::Witness
            && let Some(until) = self.witnesses.held_until()
        {
            votes.push(CountedVote { until, epoch: 0 });
        }
        votes::majority(votes, votes::needed(&self.model))
    }

    fn lease_valid(&self, group: &str, since_seq: u64, now: Duration) -> Option<u64> {
        if self.model.quorum == QuorumMode::None {
            return Some(self.known_epoch.get(group).copied().unwrap_or(0));
        }
        self.lease(group, since_seq)
            .filter(|(until, _)| now + self.config.fence_margin < *until)
            .map(|(_, epoch)| epoch)
    }

    fn claims(&self, group: &str) -> bool {
        self.local.get(group).and_then(|l| l.claim(0)).is_some()
    }

    fn step(&mut self, now: Duration) {
        self.last_step = now;
        self.track_peers(now);
        self.track_config(now);
        self.track_witness_change();
        self.update_votes(now);
        let view = self.view(now);
        if view.quorate != self.quorate {
            self.quorate = view.quorate;
            self.outputs.push_back(Output::Event(if view.quorate {
                Event::QuorumGained
            } else {
                Event::QuorumLost
            }));
        }
        self.request_witness(now);
        self.track_holders(&view);
        self.decisions = placement::placement(&view, &self.model, &self.history, self.now(now));
        self.track_failed(&view);
        let groups: Vec<String> = self.model.groups.iter().map(|g| g.name.clone()).collect();
        for group in &groups {
            self.act(group, now);
        }
        // A group can also have been claimed for a name no longer decided (config
        // change while claiming): withdraw those claims.
        let stale: Vec<String> = self
            .local
            .iter()
            .filter(|(g, l)| !groups.contains(g) && !l.holds())
            .map(|(g, _)| g.clone())
            .collect();
        for group in stale {
            self.local.remove(&group);
        }
        self.update_votes(now);
        self.heartbeat(now);
    }

    fn track_peers(&mut self, now: Duration) {
        let me = self.membership.me().to_string();
        for m in self.model.members.iter().filter(|m| m.name != me) {
            let alive = self.membership.alive(&m.name, now);
            let was = self.alive.insert(m.name.clone(), alive).unwrap_or(false);
            if alive && !was {
                self.outputs.push_back(Output::Event(Event::PeerUp {
                    node: m.name.clone(),
                }));
            } else if !alive && was {
                let leaving = self
                    .membership
                    .peer(&m.name)
                    .is_some_and(|p| p.last.leaving);
                if !leaving {
                    let failures = self
                        .history
                        .member_failures
                        .entry(m.name.clone())
                        .or_default();
                    failures.push_back(now);
                    // Only the recent past matters for quarantine; keep the list short.
                    while failures.len() > 64 {
                        failures.pop_front();
                    }
                }
                self.outputs.push_back(Output::Event(Event::PeerDown {
                    node: m.name.clone(),
                    leaving,
                }));
            }
        }
    }

    /// Compares the configuration hash of every live peer with this node's, and
    /// applies the majority rule (docs/operations.md, "One configuration on every
    /// member"): a member whose hash differs from the one a majority of the voters
    /// runs is outvoted. Differences younger than the grace count as agreement, so a
    /// reload on its way to every member changes nothing; without a majority (two
    /// members, or an even split) nobody is outvoted.
    fn track_config(&mut self, now: Duration) {
        let me = self.membership.me();
        let ours = self.membership.config_hash();
        let grace = self.config.config_grace;
        let mut skew = BTreeMap::new();
        for m in self.model.members.iter().filter(|m| m.name != me) {
            let Some(peer) = self.membership.peer(&m.name) else {
                continue;
            };
            let theirs = peer.last.config_hash;
            if theirs == ours || !self.membership.alive(&m.name, now) {
                continue;
            }
            let since = self.config_skew.get(&m.name).map_or(now, |&(_, t)| t);
            skew.insert(m.name.clone(), (theirs, since));
        }
        let mismatch: BTreeMap<String, u64> = skew
            .iter()
            .filter(|(_, (_, since))| now >= *since + grace)
            .map(|(node, (theirs, _))| (node.clone(), *theirs))
            .collect();
        for (node, &theirs) in &mismatch {
            if self.config_mismatch.get(node) != Some(&theirs) {
                self.outputs.push_back(Output::Event(Event::ConfigMismatch {
                    node: node.clone(),
                    theirs,
                    ours,
                }));
            }
        }
        for node in self.config_mismatch.keys() {
            if !mismatch.contains_key(node) {
                self.outputs
                    .push_back(Output::Event(Event::ConfigMismatchEnded {
                        node: node.clone(),
                    }));
            }
        }
        // The hash each live voter runs, as far as it counts: this node's own for
        // itself and for every peer not past the grace.
        let runs: Vec<(&str, u64)> = self
            .model
            .members
            .iter()
            .filter(|m| m.name == me || self.membership.alive(&m.name, now))
            .map(|m| {
                (
                    m.name.as_str(),
                    mismatch.get(&m.name).copied().unwrap_or(ours),
                )
            })
            .collect();
        let majority = runs.iter().map(|&(_, h)| h).find(|&h| {
            runs.iter().filter(|&&(_, other)| other == h).count() > self.model.members.len() / 2
        });
        let outvoted: BTreeSet<String> = match majority {
            Some(majority) => runs
                .iter()
                .filter(|&&(_, h)| h != majority)
                .map(|&(name, _)| name.to_string())
                .collect(),
            None => BTreeSet::new(),
        };
        let was = self.config_outvoted.contains(me);
        match (was, majority.filter(|&h| h != ours)) {
            (false, Some(majority)) => self
                .outputs
                .push_back(Output::Event(Event::ConfigOutvoted { ours, majority })),
            (true, None) => self
                .outputs
                .push_back(Output::Event(Event::ConfigOutvotedEnded)),
            _ => {}
        }
        self.config_skew = skew;
        self.config_mismatch = mismatch;
        self.config_outvoted = outvoted;
    }

    /// Frees votes whose holder released, restarted or went silent, and gives free
    /// votes to the best claimant.
    fn update_votes(&mut self, now: Duration) {
        let me = self.membership.me().to_string();
        let dead_after = self.model.dead_after;
        let mut changed = false;
        let groups: Vec<String> = self.model.groups.iter().map(|g| g.name.clone()).collect();
        for group in &groups {
            if let Some(vote) = self.votes.get(group) {
                let keep = if vote.holder == me {
                    self.claims(group)
                } else {
                    let peer = self.membership.peer(&vote.holder);
                    now < vote.renewed_at + dead_after
                        && peer.is_some_and(|p| {
                            p.last.incarnation == vote.holder_incarnation
                                && p.last.claims.iter().any(|c| &c.group == group)
                        })
                };
                if keep {
                    if vote.holder == me
                        && let Some(v) = self.votes.get_mut(group)
                    {
                        v.renewed_at = now;
                    }
                    continue;
                }
                self.votes.remove(group);
                changed = true;
            }
            if now < self.votes_from {
                continue;
            }
            if let Some((holder, holder_incarnation, claimed_at)) = self.best_claimant(group, now) {
                let epoch = self.known_epoch.get(group).copied().unwrap_or(0) + 1;
                self.known_epoch.insert(group.clone(), epoch);
                self.votes.insert(
                    group.clone(),
                    Vote {
                        holder,
                        holder_incarnation,
                        epoch,
                        renewed_at: claimed_at,
                    },
                );
                changed = true;
            }
        }
        if changed {
            self.send_now = true;
        }
    }

    /// The claimant of `group` this node votes for: the first in the rank order
    /// among the alive members (this node included) that claim it, with the local
    /// time its claim was last heard. A vote runs from that time, not from now: a
    /// claimant that has gone silent must not be kept alive by a late vote.
    fn best_claimant(&self, group: &str, now: Duration) -> Option<(String, u64, Duration)> {
        let g = self.model.group(group)?;
        let me = self.membership.me();
        self.rank_order(g).into_iter().find_map(|m| {
            if m == me {
                return self
                    .claims(group)
                    .then(|| (m.to_string(), self.membership.incarnation(), now));
            }
            let peer = self.membership.peer(m)?;
            (self.membership.alive(m, now) && peer.last.claims.iter().any(|c| c.group == group))
                .then(|| (m.to_string(), peer.last.incarnation, peer.heard_at))
        })
    }

    /// In witness mode nobody needs the witness while both voters hear each other.
    /// Once the peer has been silent for two intervals (or announces it leaves), a
    /// node asks for the witness and keeps it fresh (renewed every interval, so that
    /// after its own death the lease lapses no later than its votes do). A node that
    /// runs groups asks one interval before one that does not, so that in a
    /// partition the side that serves keeps serving.
    fn request_witness(&mut self, now: Duration) {
        if self.model.quorum != QuorumMode::Witness
            || self.witnesses.pending()
            || now < self.witness_retry_at
        {
            return;
        }
        let me = self.membership.me();
        let interval = self.model.interval;
        let holds = self.local.values().any(Local::holds);
        let patience = if holds { 2 * interval } else { 3 * interval };
        // A peer that came (back) alive votes only after its restart hold, deadAfter
        // after its start, and its votes reach this node a heartbeat later. Until
        // then the groups this node runs may rest on the witness alone (it ran them
        // alone while the peer was away): keep the witness fresh, or its hold lapses
        // first and this node fences every group it runs.
        let rejoin = self.model.dead_after + 2 * interval;
        let peer_lost = self
            .membership
            .voters()
            .iter()
            .filter(|v| v.as_str() != me)
            .any(|v| {
                !self.membership.connected(v, now)
                    || self.membership.peer(v).is_some_and(|p| {
                        p.last.leaving
                            || now.saturating_sub(p.heard_at) >= patience
                            || (holds && now.saturating_sub(p.alive_since) < rejoin)
                    })
            });
        let fresh_until = now + self.model.dead_after.saturating_sub(interval);
        let fresh = self.witnesses.held_until().is_some_and(|t| t > fresh_until);
        if peer_lost && !fresh {
            for witness in self.witnesses.ask() {
                self.outputs.push_back(Output::WitnessRequest { witness });
            }
        }
    }

    /// Ends a change of witness once every other member's last heartbeat carried
    /// this node's configuration hash: each of them has applied this configuration,
    /// so each needs its witness (alone, or with the old ones while its own change
    /// lasts), and the old witnesses can go (the argument is in `witnesses.rs`). A
    /// member never heard keeps the change going: it may run the old witness.
    fn track_witness_change(&mut self) {
        if !self.witnesses.changing() {
            return;
        }
        let me = self.membership.me();
        let ours = self.membership.config_hash();
        let everyone = self.model.members.iter().filter(|m| m.name != me).all(|m| {
            self.membership
                .peer(&m.name)
                .is_some_and(|p| p.last.config_hash == ours)
        });
        if everyone {
            let dropped = self.witnesses.confirm();
            self.outputs
                .push_back(Output::Event(Event::WitnessChangeDone { dropped }));
        }
    }

    /// Records who holds each group as far as this node knows. A holder that died
    /// while holding stays the holder of record until another node takes the group
    /// over, so that placement explains the move as the owner's loss (and the new
    /// owner counts it as a failover, see [`Engine::begin_start`]); one that released the group
    /// while alive (a planned move) leaves no holder behind, only its name as
    /// `released_by`, so that the successor's reason says why (failback, pause).
    fn track_holders(&mut self, view: &View) {
        let me = self.membership.me().to_string();
        let alive = |m: &str| view.members.get(m).is_some_and(|s| s.alive);
        for g in &self.model.groups {
            let observed = if self.local.get(&g.name).is_some_and(Local::holds) {
                Some(me.clone())
            } else {
                self.membership
                    .peers()
                    .filter(|(name, _)| alive(name))
                    .filter_map(|(name, p)| {
                        p.last
                            .claims
                            .iter()
                            .find(|c| c.group == g.name && c.state == ClaimState::Holding)
                            .map(|c| (c.epoch, name.to_string()))
                    })
                    .max()
                    .map(|(_, name)| name)
            };
            let history = self.history.groups.entry(g.name.clone()).or_default();
            let previous = history.holder.take();
            if observed.is_some() {
                history.released_by = None;
                // Someone runs it: whatever this node (or a peer) saw, it is not Failed.
                history.failed = false;
            }
            history.holder = match (previous, observed) {
                (Some(_), Some(new)) => Some(new),
                (Some(old), None) if old != me && !alive(&old) => Some(old),
                (Some(old), None) => {
                    // Released while alive: placement tells why the group moves.
                    history.released_by = Some(old);
                    None
                }
                (None, observed) => observed,
            };
        }
    }

    /// Marks the groups that placement finds Failed while nobody runs them. From
    /// then on the group is offline for a reason of its own, not for the loss of an
    /// owner: the holder of record is forgotten, so that it coming back (a restarted
    /// agent that holds nothing looks like an owner that released the group) moves
    /// nothing, and once the count is cleared or expired the group is placed afresh.
    fn track_failed(&mut self, view: &View) {
        let alive = |m: &str| view.members.get(m).is_some_and(|s| s.alive);
        for (group, decision) in &self.decisions {
            if decision.reason != Reason::FailoverLimitReached {
                continue;
            }
            let Some(history) = self.history.groups.get_mut(group) else {
                continue;
            };
            if history.holder.as_deref().is_some_and(alive) {
                continue;
            }
            if !history.failed {
                history.failed = true;
                self.send_now = true;
            }
            history.holder = None;
            history.released_by = None;
        }
    }

    fn act(&mut self, group: &str, now: Duration) {
        let me = self.membership.me().to_string();
        let decision = self.decisions.get(group).cloned();
        let wanted = decision
            .as_ref()
            .is_some_and(|d| d.owner.as_deref() == Some(me.as_str()))
            && self.quorate
            && !self.membership.leaving();
        let held_off = self
            .superseded_until
            .get(group)
            .is_some_and(|&until| now < until);
        match self.local.get(group).cloned() {
            None => {
                if wanted && !held_off {
                    let Decision {
                        reason, message, ..
                    } = decision.unwrap_or_else(|| unreachable!());
                    self.local.insert(
                        group.to_string(),
                        Local::Claiming {
                            since_seq: self.membership.next_seq(),
                            since: now,
                            reason,
                            message: message.clone(),
                        },
                    );
                    self.outputs.push_back(Output::Event(Event::Claimed {
                        group: group.to_string(),
                        reason,
                        message,
                    }));
                    self.send_now = true;
                }
            }
            Some(Local::Backoff { until }) => {
                // A back-off lets the other claimant win; once no other alive member
                // claims the group (it died, or gave up), waiting on is only outage.
                if now >= until || !self.contested(group, now) {
                    self.local.remove(group);
                    self.act(group, now);
                }
            }
            Some(Local::Claiming {
                since_seq,
                since,
                reason,
                message,
            }) => {
                if !wanted {
                    self.local.remove(group);
                    self.send_now = true;
                } else if let Some(epoch) = self.lease_valid(group, since_seq, now) {
                    let epoch = self.take_epoch(group, epoch);
                    self.begin_start(group, since_seq, epoch, reason, message, now);
                } else if self.outranked(group, now) {
                    // Another claimant ranks higher: step back at once, so that this
                    // node's vote goes to it (see `outranked`).
                    self.back_off(group, now);
                } else if now.saturating_sub(since)
                    > self.model.dead_after + 2 * self.model.interval
                    && self.contested(group, now)
                {
                    // Contested: another node holds votes for it. Step back for a while
                    // that differs between nodes, so one of them wins the next round.
                    self.back_off(group, now);
                }
            }
            Some(Local::Starting { since_seq, .. }) | Some(Local::Online { since_seq, .. }) => {
                if self.lease_valid(group, since_seq, now).is_none() {
                    self.outputs.push_back(Output::Event(Event::Fenced {
                        group: group.to_string(),
                    }));
                    self.stop(group, StopCause::Fence);
                } else if self.quorate && !wanted {
                    let reason = decision
                        .map(|d| d.reason)
                        .unwrap_or(Reason::NoEligibleMember);
                    self.outputs.push_back(Output::Event(Event::Released {
                        group: group.to_string(),
                        reason,
                    }));
                    self.stop(group, StopCause::Release(reason));
                }
            }
            Some(Local::Stopping { .. }) => {}
        }
    }

    /// The members in the order in which they rank for `group`, the same on every
    /// node: the pinned member (`spec.owner`) first, then the group's order.
    fn rank_order<'a>(&'a self, group: &'a GroupModel) -> Vec<&'a str> {
        let mut order = self.model.order(group);
        if let Some(pinned) = group.owner.as_deref()
            && let Some(i) = order.iter().position(|m| *m == pinned)
        {
            let pinned = order.remove(i);
            order.insert(0, pinned);
        }
        order
    }

    /// Whether an alive member that ranks before this node for `group` asks for it
    /// too (claims it without holding it yet; a holder that hands the group over is
    /// waited for as before: its votes are free the moment it stops).
    ///
    /// Placement is a pure function of the view and the history, but each node keeps
    /// its own history, and it differs between nodes for long, not for a moment: a
    /// node records the failures it saw of the others, never its own. With flap
    /// quarantine (on by default), a busy machine whose agents are late now and then
    /// makes every node see every other one flap: each ranks the others last and
    /// itself first, and all of them claim the group. A claimant keeps its own vote
    /// while it claims, so no claimant reaches a majority, and the group stayed
    /// ownerless until the contest back-off (deadAfter plus two intervals, then one to
    /// three intervals), again after every fence. The rank order is the same on every
    /// node: the lower-ranked claimant steps back at once, its vote (and every vote
    /// held for it) goes to the higher-ranked one, which wins within a round trip.
    fn outranked(&self, group: &str, now: Duration) -> bool {
        let Some(g) = self.model.group(group) else {
            return false;
        };
        let me = self.membership.me();
        self.rank_order(g)
            .into_iter()
            .take_while(|m| *m != me)
            .any(|m| {
                self.membership.alive(m, now)
                    && self.membership.peer(m).is_some_and(|p| {
                        !p.last.leaving
                            && p.last
                                .claims
                                .iter()
                                .any(|c| c.group == group && c.state == ClaimState::Claiming)
                    })
            })
    }

    /// Whether another alive member claims `group` too.
    fn contested(&self, group: &str, now: Duration) -> bool {
        self.membership.peers().any(|(name, p)| {
            self.membership.alive(name, now) && p.last.claims.iter().any(|c| c.group == group)
        })
    }

    /// After a leave: whether the node may exit. It holds nothing, and it has stayed
    /// to vote until every group it could matter for is held elsewhere (its vote may
    /// be the one a successor's majority needs), or for `deadAfter` at most.
    pub fn ready_to_exit(&self, now: Duration) -> bool {
        if !self.membership.leaving() || !self.holds_nothing() {
            return false;
        }
        let handed_over = self.model.groups.iter().all(|g| {
            let held = self
                .history
                .groups
                .get(&g.name)
                .and_then(|h| h.holder.as_deref());
            held.is_some_and(|h| h != self.membership.me())
                || self
                    .decisions
                    .get(&g.name)
                    .is_none_or(|d| d.owner.is_none())
        });
        handed_over
            || self
                .leave_started
                .is_some_and(|t| now >= t + self.model.dead_after)
    }

    /// The epoch of a take whose majority's votes carry `voted`, raised above the
    /// group's record.
    fn take_epoch(&mut self, group: &str, voted: u64) -> u64 {
        let known = self.known_epoch.get(group).copied().unwrap_or(0);
        let floor = self.record_floor.get(group).map_or(0, |f| f + 1);
        let epoch = voted.max(floor);
        self.known_epoch.insert(group.to_string(), known.max(epoch));
        epoch
    }

    /// The group's record names `epoch`: raise the floor and what this node knows,
    /// and move a group it runs at an epoch not above it to `epoch + 1`.
    fn recorded(&mut self, group: &str, epoch: u64) {
        let floor = self.record_floor.entry(group.to_string()).or_default();
        *floor = (*floor).max(epoch);
        let known = self.known_epoch.entry(group.to_string()).or_default();
        *known = (*known).max(epoch);
        if let Some(Local::Starting { epoch: e, .. } | Local::Online { epoch: e, .. }) =
            self.local.get_mut(group)
            && *e <= epoch
        {
            *e = epoch + 1;
            *known = epoch + 1;
            self.count_epoch.insert(group.to_string(), epoch + 1);
            self.send_now = true;
        }
    }

    /// Starts a group the majority gave this node; a take that is a failover is
    /// counted here, by the new owner, whose heartbeats carry the count to the others
    /// under the take's epoch.
    fn begin_start(
        &mut self,
        group: &str,
        since_seq: u64,
        epoch: u64,
        reason: Reason,
        message: String,
        now: Duration,
    ) {
        if reason.is_failover() {
            let failovers = &mut self
                .history
                .groups
                .entry(group.to_string())
                .or_default()
                .failovers;
            failovers.push_back(now);
            // More than any limit can count is of no use; keep the list (and the
            // heartbeat that carries it) short.
            while failovers.len() > MAX_FAILOVERS_KEPT {
                failovers.pop_front();
            }
        }
        self.count_epoch.insert(group.to_string(), epoch);
        self.local
            .insert(group.to_string(), Local::Starting { since_seq, epoch });
        self.outputs.push_back(Output::Event(Event::Won {
            group: group.to_string(),
            epoch,
        }));
        self.outputs.push_back(Output::Start {
            group: group.to_string(),
            epoch,
            reason,
            message,
        });
        self.send_now = true;
    }

    fn back_off(&mut self, group: &str, now: Duration) {
        // A per-node, per-attempt spread of one to three intervals, derived from the
        // node name and the time so that it is deterministic and differs by node.
        let seed = self
            .membership
            .me()
            .bytes()
            .fold(now.as_micros() as u64, |h, b| {
                h.wrapping_mul(31).wrapping_add(u64::from(b))
            });
        let spread = self
            .model
            .interval
            .mul_f64(1.0 + (seed % 1000) as f64 / 500.0);
        self.local.insert(
            group.to_string(),
            Local::Backoff {
                until: now + spread,
            },
        );
        self.send_now = true;
    }

    fn stop(&mut self, group: &str, cause: StopCause) {
        let Some(local) = self.local.get(group) else {
            return;
        };
        match local {
            Local::Starting { epoch, .. } | Local::Online { epoch, .. } => {
                let epoch = *epoch;
                self.local
                    .insert(group.to_string(), Local::Stopping { epoch });
                self.outputs.push_back(Output::Stop {
                    group: group.to_string(),
                    cause,
                });
            }
            Local::Stopping { .. } => {}
            _ => {
                self.local.remove(group);
            }
        }
        self.send_now = true;
    }

    fn heartbeat(&mut self, now: Duration) {
        if !self.send_now && now < self.next_heartbeat {
            return;
        }
        // Renew what keeps the resources alive by themselves, on the heartbeat clock.
        if now >= self.next_heartbeat {
            for (group, local) in &self.local {
                if let Local::Online { .. } = local {
                    self.outputs.push_back(Output::Renew {
                        group: group.clone(),
                    });
                }
            }
        }
        let claims = self
            .local
            .iter()
            .filter_map(|(group, l)| {
                let known = self.known_epoch.get(group).copied().unwrap_or(0);
                l.claim(known).map(|(epoch, state)| Claim {
                    group: group.clone(),
                    epoch,
                    state,
                })
            })
            .collect();
        let grants = self
            .votes
            .iter()
            .map(|(group, v)| Grant {
                group: group.clone(),
                holder: v.holder.clone(),
                holder_incarnation: v.holder_incarnation,
                epoch: v.epoch,
            })
            .collect();
        let unable = self
            .unable
            .iter()
            .map(|(group, &reason)| Unable {
                group: group.clone(),
                reason,
            })
            .collect();
        let failovers = self.failover_records(now);
        match self
            .membership
            .heartbeat(now, claims, grants, unable, failovers)
        {
            Ok(bytes) => self.outputs.push_back(Output::Broadcast(bytes)),
            Err(e) => self.report_encode_error(e),
        }
        self.send_now = false;
        self.next_heartbeat = now + self.model.interval;
    }

    /// For each group with a failover limit that this node holds, or whose count or
    /// Failed state it knows: its failovers within the period (as ages), the epoch
    /// of the take they belong to, the clear token they count from, and whether the
    /// group is Failed. Not only the holder sends it: a Failed group has none, and a
    /// restarted agent must learn the count and the Failed state from any peer
    /// before it may claim.
    fn failover_records(&self, now: Duration) -> Vec<GroupFailovers> {
        self.model
            .groups
            .iter()
            .filter_map(|g| {
                let limit = g.failover_limit?;
                let history = self.history.groups.get(&g.name);
                let ages_ms: Vec<u64> = history
                    .map(|h| {
                        h.failovers
                            .iter()
                            .map(|&t| now.saturating_sub(t))
                            .filter(|age| *age < limit.period)
                            .map(|age| u64::try_from(age.as_millis()).unwrap_or(u64::MAX))
                            .collect()
                    })
                    .unwrap_or_default();
                let failed = history.is_some_and(|h| h.failed);
                let holds = self.local.get(&g.name).is_some_and(Local::holds);
                // A holder's empty count is news (a clear); anyone else's is the default.
                (holds || failed || !ages_ms.is_empty()).then(|| GroupFailovers {
                    group: g.name.clone(),
                    epoch: self.count_epoch.get(&g.name).copied().unwrap_or(0),
                    clear_token: self.clear_token(&g.name),
                    failed,
                    ages_ms,
                })
            })
            .collect()
    }

    /// Takes over the failover history a peer advertises, unless this node holds the
    /// group itself (its own count is the owner's), knows the count of a later take
    /// (a higher epoch), the two count from different clears (one of them has not
    /// seen the latest clear yet), or the group is not configured here. Records of
    /// the same take agree on the count; the group is Failed if either says so, as
    /// the peer may have seen the refused failover first.
    fn adopt_failovers(&mut self, record: GroupFailovers, now: Duration) {
        if self.model.group(&record.group).is_none()
            || self.local.get(&record.group).is_some_and(Local::holds)
            || self.clear_token(&record.group) != record.clear_token
        {
            return;
        }
        let known = self.count_epoch.entry(record.group.clone()).or_default();
        if record.epoch < *known {
            return;
        }
        let later_take = record.epoch > *known;
        *known = record.epoch;
        let mut times: Vec<Duration> = record
            .ages_ms
            .iter()
            .take(MAX_FAILOVERS_KEPT)
            .map(|&ms| now.saturating_sub(Duration::from_millis(ms)))
            .collect();
        times.sort_unstable();
        let history = self.history.groups.entry(record.group).or_default();
        history.failovers = times.into();
        history.failed = record.failed || (history.failed && !later_take);
    }

    /// The clear-failures token `group`'s failover count starts from (0: never cleared).
    pub fn clear_token(&self, group: &str) -> u64 {
        self.clear_tokens.get(group).copied().unwrap_or(0)
    }

    /// For each group with a failover limit: its failovers within the period at
    /// `now`, as this node counts them (its own, or the owner's it adopted).
    pub fn failover_counts(&self, now: Duration) -> impl Iterator<Item = (&str, usize)> {
        self.model.groups.iter().filter_map(move |g| {
            let limit = g.failover_limit.as_ref()?;
            let count = self.history.failovers_in_period(&g.name, limit, now);
            Some((g.name.as_str(), count))
        })
    }

    /// Groups that are Failed in this node's view: a failover is due and the group's
    /// failover limit forbids it, so no member runs it until the count expires or a
    /// person clears it.
    pub fn failed_groups(&self) -> impl Iterator<Item = &str> {
        self.decisions
            .iter()
            .filter(|(_, d)| d.owner.is_none() && d.reason == Reason::FailoverLimitReached)
            .map(|(g, _)| g.as_str())
    }

    fn report_encode_error(&mut self, error: EncodeError) {
        // Names are validated to fit; this only happens with a config beyond the
        // wire's limits, and is reported rather than crashing the node.
        tracing::error!(%error, node = self.membership.me(), "cannot encode heartbeat");
    }
}

#[cfg(test)]
mod tests;
