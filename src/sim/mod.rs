//! A deterministic simulator that drives real [`Engine`]s through crashes, restarts,
//! partitions (symmetric and one-way), loss, duplication, reordering, delay jitter,
//! clock drift, process pauses, starved processes, configuration changes and graceful
//! leaves on a virtual clock, and checks after every step that the ownership rules
//! hold.
//!
//! A paused agent (SIGSTOP) runs nothing until resumed; a starved one (busy cores)
//! runs its event loop only now and then. For both, the kernel keeps receiving:
//! datagrams, resource completions and API answers queue and are handled in a burst,
//! at the time the loop runs again, with the timer firing among them.
//!
//! One seed decides everything: the fault schedule (its own random stream) and the
//! network's behaviour (another stream). A run with a violation is reproduced by its
//! seed, and [`shrink`] removes faults from its schedule while the violation stays, to
//! print the shortest schedule that still shows it.
//!
//! What is checked (DESIGN.md section 5):
//! - **Safety**: no two running agents hold a group's resources at one virtual
//!   instant. A frozen (paused, or starved between two runs) agent's resources linger
//!   until their kernel lifetime runs out or the agent wakes and fences; such an
//!   overlap is not the protocol's to
//!   prevent and is reported separately (`lingering_overlap_ms`), and checked to stay
//!   within the address lifetime.
//! - **Liveness**: once faults stop changing and no loss or one-way block is in
//!   force (views may then legitimately disagree), a fully connected majority
//!   with an eligible member has every group online within `deadAfter + interval +
//!   start time` (plus the simulated network's delays and the clock-drift allowance,
//!   which the bound printed in the summary includes).
//! - **Liveness, eventually**: every run ends with a quiet tail: every fault is
//!   repaired, and from `deadAfter` (a rebooted agent's vote abstention) plus that
//!   bound after the repair until the end, every group must be online on exactly one
//!   node at every check (one per interval), whatever the faults left behind:
//!   fences, refused claims, back-offs, quarantines.
//! - **Stability**: every move has a cause in the world: the old owner was impaired
//!   (crash, pause, partition, loss, leave), the configuration changed, or the old
//!   owner released the group for a planned move that the configuration explains.
//! - **Failover limits** (some seeds set one, see [`failover_limit_for_seed`]): a
//!   group that failed over its limit's worth of times (counted here, from every
//!   start that is a failover since the last clear) may be Failed, offline, and is
//!   no liveness violation; a node that sees a group Failed before that is one.

pub mod rng;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::{DRIFT_ALLOWANCE, Engine, EngineConfig, Input, Output, StopCause};
use crate::membership::Keyring;
use crate::placement::{
    ClusterModel, FailbackPolicy, FailoverLimit, GroupModel, MemberModel, QuarantinePolicy,
    QuorumMode, Reason, UnableReason,
};
use rng::Rng;

/// The shape of one simulated run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub nodes: usize,
    pub groups: usize,
    pub interval: Duration,
    pub dead_after: Duration,
    pub quorum: QuorumMode,
    /// Model the Kubernetes mode's group Lease, the record of what the majority
    /// decided: each holder writes it an API round trip after it took the group
    /// (raising its epoch above the record first when the record is higher and not
    /// its own), and every agent reads it back as a floor when it boots.
    pub record: bool,
    /// Number of fault episodes per run.
    pub faults: usize,
    /// Time to start and to stop a group's resources.
    pub start_time: Duration,
    pub stop_time: Duration,
    /// One-way network delay range (jitter inside it reorders datagrams).
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Largest clock rate error of a node (0.004 = 0.4%).
    pub max_drift: f64,
    /// Lifetime of a VIP address in the kernel (renewed while held).
    pub address_lifetime: Duration,
    /// Longest time a starved agent's event loop waits for the CPU between two runs,
    /// in `deadAfter`s (above 1, a starved owner sometimes loses its votes).
    pub max_starve_lag: f64,
    /// Flap quarantine of members (`None`: off, the default: with the product's
    /// default quarantine the survivors' placements still differ for hours after
    /// flaps, and a racing claim can move a group without a cause the stability
    /// check accepts, e.g. `seed 2708` at 3 nodes and default timing).
    pub quarantine: Option<QuarantinePolicy>,
    /// Print every engine output (except heartbeats) to stderr, for reproducing a seed.
    pub trace: bool,
}

impl SimConfig {
    /// The default timing of the product (200 ms / 1 s) on a LAN.
    pub fn new(nodes: usize) -> Self {
        SimConfig {
            nodes,
            groups: 3,
            interval: Duration::from_millis(200),
            dead_after: Duration::from_secs(1),
            quorum: if nodes == 2 {
                QuorumMode::Witness
            } else {
                QuorumMode::Majority
            },
            record: false,
            faults: 6,
            start_time: Duration::from_millis(2),
            stop_time: Duration::from_millis(1),
            min_delay: Duration::from_micros(50),
            max_delay: Duration::from_micros(1500),
            max_drift: DRIFT_ALLOWANCE * 0.4,
            address_lifetime: Duration::from_secs(1),
            max_starve_lag: 1.5,
            quarantine: None,
            trace: false,
        }
    }

    /// The liveness bound checked: `deadAfter + interval + start time`, plus the
    /// network's delays and the drift allowance this simulation introduces.
    pub fn liveness_bound(&self) -> Duration {
        self.dead_after.mul_f64(1.0 + 2.0 * self.max_drift)
            + self.interval
            + self.start_time
            + self.stop_time
            + 4 * self.max_delay
    }
}

/// One fault or repair.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultOp {
    /// Power loss: the node and its resources vanish.
    Crash(usize),
    /// A crashed node boots and starts a new agent incarnation.
    Restart(usize),
    /// The agent process freezes (SIGSTOP, a hung runtime); its resources linger
    /// until their kernel lifetime ends.
    Pause(usize),
    Resume(usize),
    /// The agent is starved of CPU (busy cores): its event loop runs only now and
    /// then, about `lag` apart. In between, timers fire late and datagrams (and every
    /// other answer) queue in the kernel, to be handled in a burst when the loop runs
    /// again; the clock keeps going. Unlike a pause, the loop does run: at each run
    /// it sees the time, fences what lapsed, and sends what it has to.
    Starve {
        node: usize,
        lag: Duration,
    },
    /// The starved agent gets its CPU back.
    Unstarve(usize),
    /// These nodes cannot talk to the others (both directions).
    Partition(Vec<usize>),
    /// Datagrams from `from` to `to` are lost.
    OneWay {
        from: usize,
        to: usize,
    },
    /// This share of the node's outgoing datagrams is lost.
    Loss {
        node: usize,
        percent: u8,
    },
    /// Every link works again and loses nothing.
    Heal,
    /// The node's agent leaves gracefully (SIGTERM) and stays down until restarted.
    Leave(usize),
    /// Configuration change: pause or unpause a member.
    TogglePaused(usize),
    /// Configuration change: pin a group to a member, or unpin it.
    Pin {
        group: usize,
        node: Option<usize>,
    },
    /// A person clears the group's failover count (a new clear-failures value,
    /// passed on with the configuration).
    ClearFailures(usize),
    /// The node's agent reports it cannot host the group (a resource failed, the
    /// VIP's interface went down).
    Unable {
        node: usize,
        group: usize,
        reason: UnableReason,
    },
    /// The node can host the group again.
    Able {
        node: usize,
        group: usize,
    },
}

/// A fault at a virtual time.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    pub at: Duration,
    pub op: FaultOp,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "t={:>9.3}ms {:?}",
            self.at.as_secs_f64() * 1000.0,
            self.op
        )
    }
}

/// What one run found.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    pub steps: u64,
    pub safety_violations: u64,
    pub liveness_violations: u64,
    pub unexplained_moves: u64,
    /// Takeover times from owner failure to successor online (virtual).
    pub takeovers: Vec<Duration>,
    /// Longest overlap between a frozen agent's lingering resources and a new owner.
    pub lingering_overlap: Duration,
    /// With `record`: every write of a group's record (group, node, epoch), in order.
    pub records: Vec<(String, usize, u64)>,
    /// With `record`: holders fenced because another node's record superseded theirs.
    pub superseded: u64,
    /// The first violation, described.
    pub first_violation: Option<String>,
}

impl RunReport {
    pub fn violations(&self) -> u64 {
        self.safety_violations + self.liveness_violations + self.unexplained_moves
    }
}

/// Generates a random fault schedule for `config` from `seed`.
pub fn schedule(config: &SimConfig, seed: u64) -> Vec<Fault> {
    let mut rng = Rng::fork(seed, 1);
    let n = config.nodes;
    let mut faults = Vec::new();
    let mut t = config.dead_after * 3;
    for _ in 0..config.faults {
        let node = rng.below(n as u64) as usize;
        let hold = rng.between(config.interval, config.dead_after * 4);
        let (op, undo) = match rng.below(12) {
            0 => (FaultOp::Crash(node), Some(FaultOp::Restart(node))),
            1 => (FaultOp::Pause(node), Some(FaultOp::Resume(node))),
            2 | 3 => {
                let size = 1 + rng.below((n as u64).saturating_sub(1).max(1)) as usize;
                let mut side: Vec<usize> = (0..n).collect();
                // Fisher-Yates on the prefix we keep.
                for i in 0..size.min(n) {
                    let j = i + rng.below((n - i) as u64) as usize;
                    side.swap(i, j);
                }
                side.truncate(size);
                side.sort_unstable();
                (FaultOp::Partition(side), Some(FaultOp::Heal))
            }
            4 => {
                let to = (node + 1 + rng.below((n as u64 - 1).max(1)) as usize) % n;
                (FaultOp::OneWay { from: node, to }, Some(FaultOp::Heal))
            }
            5 => (
                FaultOp::Loss {
                    node,
                    percent: 10 + rng.below(80) as u8,
                },
                Some(FaultOp::Heal),
            ),
            6 => (FaultOp::Leave(node), Some(FaultOp::Restart(node))),
            7 => (
                FaultOp::TogglePaused(node),
                Some(FaultOp::TogglePaused(node)),
            ),
            8 => {
                let group = rng.below(config.groups as u64) as usize;
                (
                    FaultOp::Pin {
                        group,
                        node: Some(node),
                    },
                    Some(FaultOp::Pin { group, node: None }),
                )
            }
            // Crash without repair for a while, then a pause of another node: two
            // faults at once.
            9 => (FaultOp::Crash(node), None),
            10 => (FaultOp::Pause(node), Some(FaultOp::Resume(node))),
            _ => (
                FaultOp::Starve {
                    node,
                    lag: rng.between(
                        config.interval / 2,
                        config.dead_after.mul_f64(config.max_starve_lag),
                    ),
                },
                Some(FaultOp::Unstarve(node)),
            ),
        };
        faults.push(Fault {
            at: t,
            op: op.clone(),
        });
        match undo {
            Some(undo) => {
                faults.push(Fault {
                    at: t + hold,
                    op: undo,
                });
                t += hold + rng.between(Duration::ZERO, config.dead_after * 3);
            }
            None => {
                let back = t + hold + config.dead_after * 2;
                faults.push(Fault {
                    at: back,
                    op: FaultOp::Restart(node),
                });
                t += rng.between(config.interval, config.dead_after * 2);
            }
        }
    }
    // Half the seeds make a node unable to host a group for a while, from a stream
    // of its own so that the other faults stay what they were.
    let mut unable = Rng::fork(seed, 5);
    if unable.chance(0.5) {
        let node = unable.below(n as u64) as usize;
        let group = unable.below(config.groups as u64) as usize;
        let reason = if unable.chance(0.5) {
            UnableReason::ResourceFailed
        } else {
            UnableReason::InterfaceDown
        };
        let at = unable.between(config.dead_after * 3, t.max(config.dead_after * 3));
        faults.push(Fault {
            at,
            op: FaultOp::Unable {
                node,
                group,
                reason,
            },
        });
        faults.push(Fault {
            at: at + unable.between(config.interval, config.dead_after * 4),
            op: FaultOp::Able { node, group },
        });
    }
    // Seeds with a failover limit get a clear now and then, from a stream of their
    // own.
    let mut clears = Rng::fork(seed, 4);
    if failover_limit_for_seed(seed).is_some() && clears.chance(0.5) {
        let last = faults.last().map_or(t, |f| f.at);
        faults.push(Fault {
            at: clears.between(config.dead_after * 3, last.max(config.dead_after * 3)),
            op: FaultOp::ClearFailures(clears.below(config.groups as u64) as usize),
        });
    }
    faults.sort_by_key(|f| f.at);
    faults
}

/// The failover limit a seed's run sets on every group: none for a quarter of the
/// seeds, else at most 1, 2 or 3 failovers per hour (a run never outlasts the
/// period, so the count only falls by a clear).
pub fn failover_limit_for_seed(seed: u64) -> Option<FailoverLimit> {
    match Rng::fork(seed, 3).below(4) {
        0 => None,
        max => Some(FailoverLimit {
            max: max as u32,
            period: Duration::from_secs(3600),
        }),
    }
}

/// Runs one simulation of `faults` with network randomness from `seed`.
pub fn run(config: &SimConfig, seed: u64, faults: &[Fault]) -> RunReport {
    let mut world = World::new(config.clone(), seed, faults);
    world.run();
    world.report
}

/// Removes faults from a failing schedule while it still fails; returns the
/// shortest failing schedule found and its report.
pub fn shrink(config: &SimConfig, seed: u64, faults: &[Fault]) -> (Vec<Fault>, RunReport) {
    let mut current = faults.to_vec();
    let mut report = run(config, seed, &current);
    let mut i = 0;
    // Bounded: each pass removes a fault or advances `i`.
    while i < current.len() {
        let mut candidate = current.clone();
        candidate.remove(i);
        let r = run(config, seed, &candidate);
        if r.violations() > 0 {
            current = candidate;
            report = r;
        } else {
            i += 1;
        }
    }
    (current, report)
}

fn group_name(i: usize) -> String {
    format!("g{i}")
}

fn node_name(i: usize) -> String {
    format!("n{}", i + 1)
}

/// The cluster of a simulation: priorities fall with the index; group i prefers node
/// i (mod n) first, so groups spread and failback is exercised.
pub fn sim_model(config: &SimConfig) -> ClusterModel {
    ClusterModel {
        cluster: "sim/cluster".into(),
        members: (0..config.nodes)
            .map(|i| MemberModel {
                name: node_name(i),
                priority: 200u8.saturating_sub((i * 10) as u8),
                paused: false,
            })
            .collect(),
        quorum: config.quorum,
        interval: config.interval,
        dead_after: config.dead_after,
        quarantine: config.quarantine,
        groups: (0..config.groups)
            .map(|g| GroupModel {
                name: group_name(g),
                preferred_owners: vec![node_name(g % config.nodes)],
                failback: if g % 2 == 0 {
                    FailbackPolicy::Immediate {
                        stabilize_for: config.interval * 2,
                    }
                } else {
                    FailbackPolicy::Never
                },
                failover_limit: None,
                owner: None,
            })
            .collect(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proc {
    Running,
    Paused,
    /// Starved of CPU: the event loop runs only at [`Ev::Slice`] instants; in between
    /// it is as frozen as a paused one.
    Starved,
    /// Powered off, or exited after a graceful leave.
    Down,
}

/// An input that reached a frozen or starved agent, handled when its event loop runs
/// again (the kernel keeps receiving datagrams and netlink answers meanwhile).
#[derive(Clone, Debug)]
enum Pending {
    Datagram(Vec<u8>),
    Online(String),
    Offline(String),
    Recorded {
        group: String,
        epoch: u64,
    },
    Superseded {
        group: String,
        epoch: u64,
    },
    Witness {
        held_until: Option<Duration>,
        other_until: Option<Duration>,
    },
    Configure {
        model: Arc<ClusterModel>,
        hash: u64,
        clears: Arc<BTreeMap<String, u64>>,
    },
    Unable(BTreeMap<String, UnableReason>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ResState {
    Starting,
    Online,
    Stopping,
}

#[derive(Clone, Debug)]
struct Resource {
    state: ResState,
    /// True time the kernel drops the address unless renewed.
    kernel_until: Duration,
    /// Its owner was frozen past its lease: the overlap is the kernel fence's.
    lingering: bool,
}

struct Node {
    engine: Option<Engine>,
    proc: Proc,
    /// Local clock: offset + rate × true time.
    offset: Duration,
    rate: f64,
    resources: BTreeMap<String, Resource>,
    timer_generation: u64,
    incarnations: u64,
    /// Inputs that reached a frozen or starved agent, in arrival order.
    backlog: Vec<Pending>,
    /// Identifies the current starvation episode (its slices).
    starve_generation: u64,
    /// Wait between two runs of a starved event loop (at most).
    starve_lag: Duration,
    /// When the last configuration sent to it arrives.
    config_due: Duration,
    /// The groups its agent cannot host (what it tells its engine).
    unable: BTreeMap<String, UnableReason>,
}

impl Node {
    fn local(&self, t: Duration) -> Duration {
        self.offset + t.mul_f64(self.rate)
    }

    fn true_time(&self, local: Duration) -> Duration {
        local.saturating_sub(self.offset).div_f64(self.rate)
    }
}

#[derive(Clone, Debug)]
enum Ev {
    Boot(usize),
    Fault(usize),
    /// End of the schedule: every node up, every link healed.
    Repair,
    Deliver {
        to: usize,
        bytes: Vec<u8>,
    },
    Timer {
        node: usize,
        generation: u64,
    },
    /// A starved node's event loop gets the CPU.
    Slice {
        node: usize,
        generation: u64,
    },
    ResourceDone {
        node: usize,
        group: String,
        incarnation: u64,
    },
    /// The holder's record write for a group reaches the API server.
    Record {
        node: usize,
        group: String,
        incarnation: u64,
    },
    /// A booted agent's read of every group's record reaches the API server.
    Floor {
        node: usize,
        incarnation: u64,
    },
    Witness {
        node: usize,
        local_sent: Duration,
        incarnation: u64,
    },
    Configure {
        node: usize,
        model: Arc<ClusterModel>,
        hash: u64,
        clears: Arc<BTreeMap<String, u64>>,
    },
    Liveness {
        fault_index: usize,
        recheck: bool,
    },
}

struct World {
    config: SimConfig,
    faults: Vec<Fault>,
    rng: Rng,
    now: Duration,
    seq: u64,
    queue: BinaryHeap<Reverse<(Duration, u64)>>,
    events: BTreeMap<u64, Ev>,
    nodes: Vec<Node>,
    model: ClusterModel,
    config_hash: u64,
    /// Links that drop everything: (from, to).
    blocked: BTreeSet<(usize, usize)>,
    /// Outgoing loss per node, percent.
    loss: BTreeMap<usize, u8>,
    duplicate: f64,
    keys: Keyring,
    /// With `record`: per group, the node and epoch its record names.
    records: BTreeMap<String, (usize, u64)>,
    /// With `record`: per (node, group), the epoch that node's current incarnation
    /// wrote into the record.
    written: BTreeMap<(usize, String), u64>,
    /// With `record`: the API server answers no record request in [from, until).
    api_down: Option<(Duration, Duration)>,
    witness: Option<(usize, Duration)>,
    /// Last time each node was touched by a fault (true time).
    impaired_at: BTreeMap<usize, Duration>,
    last_config_change: Option<Duration>,
    /// Per group: the last node that had it online, and when a holder failed.
    last_online: BTreeMap<String, usize>,
    /// Per group: the holder that failed and when, until another node has it online.
    failed_at: BTreeMap<String, (usize, Duration)>,
    /// Per group: the last planned release (node, reason, true time).
    released: BTreeMap<String, (usize, Reason, Duration)>,
    overlap_since: BTreeMap<String, Duration>,
    /// Check safety even with quorum `none` (to prove the checker sees split brain).
    force_safety_check: bool,
    /// Every start: when, where, which group, why.
    starts: Vec<(Duration, usize, String, Reason)>,
    /// The quiet tail already showed a liveness violation.
    tail_failed: bool,
    /// Per group: the clear-failures token of the last clear.
    clears: BTreeMap<String, u64>,
    /// Per group: starts that were failovers since the last clear.
    failovers: BTreeMap<String, u32>,
    report: RunReport,
}

/// The product's default flap quarantine (`spec.quarantine`: 3 failures within 1 h
/// quarantine a member for 2 h), for runs that enable it.
pub const DEFAULT_QUARANTINE: QuarantinePolicy = QuarantinePolicy {
    failures: 3,
    period: Duration::from_secs(3600),
    duration: Duration::from_secs(7200),
};

/// The `fault_index` of the quiet tail's liveness checks.
const TAIL: usize = usize::MAX;

impl World {
    fn new(config: SimConfig, seed: u64, faults: &[Fault]) -> Self {
        let mut rng = Rng::fork(seed, 2);
        let mut model = sim_model(&config);
        for g in &mut model.groups {
            g.failover_limit = failover_limit_for_seed(seed);
        }
        let nodes = (0..config.nodes)
            .map(|_| {
                let drift = (rng.unit() * 2.0 - 1.0) * config.max_drift;
                Node {
                    engine: None,
                    proc: Proc::Down,
                    offset: rng.between(Duration::ZERO, Duration::from_secs(1000)),
                    rate: 1.0 + drift,
                    resources: BTreeMap::new(),
                    timer_generation: 0,
                    incarnations: 0,
                    backlog: Vec::new(),
                    starve_generation: 0,
                    starve_lag: Duration::ZERO,
                    config_due: Duration::ZERO,
                    unable: BTreeMap::new(),
                }
            })
            .collect();
        let duplicate = if rng.chance(0.5) {
            rng.unit() * 0.05
        } else {
            0.0
        };
        let mut world = World {
            faults: faults.to_vec(),
            rng,
            now: Duration::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            nodes,
            model,
            config_hash: 1,
            blocked: BTreeSet::new(),
            loss: BTreeMap::new(),
            duplicate,
            keys: Keyring::new(b"simulation key, 32 bytes long!!!".to_vec(), None)
                .unwrap_or_else(|_| Keyring::insecure_public()),
            records: BTreeMap::new(),
            written: BTreeMap::new(),
            api_down: None,
            witness: None,
            impaired_at: BTreeMap::new(),
            last_config_change: None,
            last_online: BTreeMap::new(),
            failed_at: BTreeMap::new(),
            released: BTreeMap::new(),
            overlap_since: BTreeMap::new(),
            force_safety_check: false,
            starts: Vec::new(),
            tail_failed: false,
            clears: BTreeMap::new(),
            failovers: BTreeMap::new(),
            report: RunReport::default(),
            config,
        };
        for i in 0..world.nodes.len() {
            // Nodes boot a little apart, as real ones do.
            let at = world.rng.between(Duration::ZERO, world.config.interval);
            world.at(at, Ev::Boot(i));
        }
        for (i, f) in world.faults.clone().iter().enumerate() {
            world.at(f.at, Ev::Fault(i));
        }
        world
    }

    fn at(&mut self, t: Duration, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq)));
        self.events.insert(self.seq, ev);
    }

    /// When the quiet tail begins: every fault repaired.
    fn repair_at(&self) -> Duration {
        let last = self.faults.last().map(|f| f.at).unwrap_or_default();
        last + self.config.liveness_bound() + self.config.dead_after * 2
    }

    /// When every group must be online in the quiet tail: an agent rebooted at
    /// repair gives no vote for `deadAfter` (an earlier incarnation's votes may still
    /// count), then the liveness bound applies, whatever happened before.
    fn converged_by(&self) -> Duration {
        self.repair_at() + self.config.dead_after + self.config.liveness_bound()
    }

    /// End of the run: the quiet tail lasts a while after convergence, so that a
    /// group that comes online and is lost again (a stall after a fence) is seen.
    fn end(&self) -> Duration {
        self.converged_by() + self.config.dead_after * 3 + self.config.interval * 10
    }

    fn run(&mut self) {
        let end = self.end();
        self.at(self.repair_at(), Ev::Repair);
        self.run_until(end);
    }

    /// Processes events up to virtual time `end`.
    fn run_until(&mut self, end: Duration) {
        // Bounded: at most this many events, far above what a run needs.
        let mut budget: u64 = 50_000_000;
        while let Some(&Reverse((t, id))) = self.queue.peek() {
            if t > end || budget == 0 {
                break;
            }
            self.queue.pop();
            budget -= 1;
            self.now = t;
            let Some(ev) = self.events.remove(&id) else {
                continue;
            };
            self.dispatch(ev);
            self.check_safety();
        }
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Boot(n) => self.boot(n),
            Ev::Repair => {
                // End of the schedule: repair everything and require convergence.
                for n in 0..self.nodes.len() {
                    match self.nodes[n].proc {
                        Proc::Down => self.boot(n),
                        Proc::Paused | Proc::Starved => self.resume(n),
                        Proc::Running => {}
                    }
                }
                self.blocked.clear();
                self.loss.clear();
                let liveness = Ev::Liveness {
                    fault_index: TAIL,
                    recheck: false,
                };
                self.at(self.converged_by(), liveness);
            }
            Ev::Fault(i) => self.apply_fault(i),
            Ev::Deliver { to, bytes } => self.deliver(to, Pending::Datagram(bytes)),
            Ev::Timer { node, generation } => {
                // A frozen or starved loop sees its timer when it runs again: every
                // run starts with a look at the time (see `run_backlog`).
                if self.nodes[node].proc == Proc::Running
                    && self.nodes[node].timer_generation == generation
                {
                    self.feed(node, Input::Tick);
                }
            }
            Ev::Slice { node, generation } => {
                if self.nodes[node].proc == Proc::Starved
                    && self.nodes[node].starve_generation == generation
                {
                    self.run_backlog(node);
                    self.next_slice(node);
                }
            }
            Ev::ResourceDone {
                node,
                group,
                incarnation,
            } => self.resource_done(node, group, incarnation),
            Ev::Record {
                node,
                group,
                incarnation,
            } => {
                if let Some(retry) = self.api_retry() {
                    let ev = Ev::Record {
                        node,
                        group,
                        incarnation,
                    };
                    self.at(retry, ev);
                } else if self.alive_incarnation(node, incarnation) {
                    self.write_record(node, group, incarnation);
                }
            }
            Ev::Floor { node, incarnation } => {
                if let Some(retry) = self.api_retry() {
                    self.at(retry, Ev::Floor { node, incarnation });
                } else if self.alive_incarnation(node, incarnation) {
                    let floors: Vec<(String, u64)> = self
                        .records
                        .iter()
                        .map(|(g, &(_, epoch))| (g.clone(), epoch))
                        .collect();
                    for (group, epoch) in floors {
                        self.deliver(node, Pending::Recorded { group, epoch });
                    }
                }
            }
            Ev::Witness {
                node,
                local_sent,
                incarnation,
            } => {
                if self.alive_incarnation(node, incarnation) {
                    let (held_until, other_until) = match self.witness {
                        Some((holder, until)) if holder != node && until > self.now => {
                            let local_until = self.nodes[node].local(until);
                            (None, Some(local_until))
                        }
                        _ => {
                            self.witness = Some((node, self.now + self.config.dead_after));
                            let held =
                                local_sent + self.config.dead_after.mul_f64(1.0 - DRIFT_ALLOWANCE);
                            (Some(held), None)
                        }
                    };
                    self.deliver(
                        node,
                        Pending::Witness {
                            held_until,
                            other_until,
                        },
                    );
                }
            }
            Ev::Configure {
                node,
                model,
                hash,
                clears,
            } => self.deliver(
                node,
                Pending::Configure {
                    model,
                    hash,
                    clears,
                },
            ),
            Ev::Liveness {
                fault_index,
                recheck,
            } => {
                self.check_liveness(fault_index, recheck);
                // The quiet tail is checked every interval until the end (a
                // handover in flight gets its recheck), and counts once per run.
                let next = self.now + self.config.interval;
                let last = self.end().saturating_sub(self.recheck_delay());
                if fault_index == TAIL && !recheck && !self.tail_failed && next <= last {
                    self.at(
                        next,
                        Ev::Liveness {
                            fault_index,
                            recheck: false,
                        },
                    );
                }
            }
        }
    }

    /// While the simulated API server is down, when a record request is tried again.
    fn api_retry(&mut self) -> Option<Duration> {
        let (from, until) = self.api_down?;
        (from <= self.now && self.now < until).then(|| until + self.api_delay())
    }

    /// One API round trip of the simulated API server.
    fn api_delay(&mut self) -> Duration {
        self.rng
            .between(self.config.min_delay, self.config.max_delay * 2)
    }

    /// What the Kubernetes mode's record writer does for a group node `n` runs: write
    /// its epoch when the record is lower; when it is not lower and names something
    /// else, fence if this node's own record was written before (superseded), else
    /// take the record as a floor and write again.
    fn write_record(&mut self, n: usize, group: String, incarnation: u64) {
        let running = self.nodes[n]
            .resources
            .get(&group)
            .is_some_and(|r| r.state != ResState::Stopping);
        let held = self.nodes[n]
            .engine
            .as_ref()
            .and_then(|e| e.held_groups().find(|(g, _)| *g == group).map(|(_, e)| e));
        let (Some(epoch), true) = (held, running) else {
            return;
        };
        let key = (n, group.clone());
        match self.records.get(&group).copied() {
            Some((holder, recorded))
                if holder == n && recorded == epoch && self.written.get(&key) == Some(&epoch) => {}
            Some((_, recorded)) if recorded >= epoch => {
                if self.written.get(&key) == Some(&epoch) {
                    self.report.superseded += 1;
                    self.deliver(n, Pending::Superseded { group, epoch });
                } else {
                    self.deliver(
                        n,
                        Pending::Recorded {
                            group: group.clone(),
                            epoch: recorded,
                        },
                    );
                    let at = self.now + self.api_delay();
                    self.at(
                        at,
                        Ev::Record {
                            node: n,
                            group,
                            incarnation,
                        },
                    );
                }
            }
            _ => {
                self.records.insert(group.clone(), (n, epoch));
                self.written.insert(key, epoch);
                self.report.records.push((group, n, epoch));
            }
        }
    }

    /// Whether the agent incarnation that asked still exists (frozen or not): the
    /// API server answers it, and it reads the answer when it runs.
    fn alive_incarnation(&self, node: usize, incarnation: u64) -> bool {
        self.nodes[node].proc != Proc::Down && self.nodes[node].incarnations == incarnation
    }

    /// Hands an input to node `n`'s agent: at once if its event loop runs, later if
    /// it is frozen or starved, never if it is down.
    fn deliver(&mut self, n: usize, input: Pending) {
        match self.nodes[n].proc {
            Proc::Running => self.feed_pending(n, input),
            Proc::Paused | Proc::Starved => self.nodes[n].backlog.push(input),
            Proc::Down => {}
        }
    }

    fn feed_pending(&mut self, n: usize, input: Pending) {
        match input {
            Pending::Datagram(bytes) => self.feed(n, Input::Datagram(&bytes)),
            Pending::Online(group) => self.feed(n, Input::Online { group }),
            Pending::Offline(group) => self.feed(n, Input::Offline { group }),
            Pending::Recorded { group, epoch } => self.feed(n, Input::Recorded { group, epoch }),
            Pending::Superseded { group, epoch } => {
                self.feed(n, Input::Superseded { group, epoch })
            }
            Pending::Witness {
                held_until,
                other_until,
            } => self.feed(
                n,
                Input::Witness {
                    held_until,
                    other_until,
                },
            ),
            Pending::Configure {
                model,
                hash,
                clears,
            } => {
                // As the agent does: the configuration, then its clear values.
                self.feed(n, Input::Configure { model, hash });
                self.feed_clears(n, &clears);
            }
            Pending::Unable(groups) => self.feed(n, Input::Unable { groups }),
        }
    }

    /// A frozen or starved event loop runs: it handles what queued meanwhile, in
    /// arrival order, with its timer firing somewhere among them (an event loop
    /// polls its ready sources in no fixed order). What it fences is the kernel
    /// fence's overlap until stopped; what it keeps is its own again.
    fn run_backlog(&mut self, n: usize) {
        let backlog = std::mem::take(&mut self.nodes[n].backlog);
        let queued = backlog.len();
        let proc = self.nodes[n].proc;
        self.nodes[n].proc = Proc::Running;
        let tick_at = self.rng.below(queued as u64 + 1) as usize;
        for (i, input) in backlog.into_iter().enumerate() {
            if i == tick_at {
                self.feed(n, Input::Tick);
            }
            if self.nodes[n].proc != Proc::Running {
                // It exited (a leave completed) while catching up.
                break;
            }
            self.feed_pending(n, input);
        }
        if tick_at == queued && self.nodes[n].proc == Proc::Running {
            self.feed(n, Input::Tick);
        }
        for res in self.nodes[n].resources.values_mut() {
            res.lingering = res.state == ResState::Stopping;
        }
        if self.nodes[n].proc == Proc::Running {
            self.nodes[n].proc = proc;
        }
    }

    /// Schedules the next run of a starved node's event loop.
    fn next_slice(&mut self, n: usize) {
        let lag = self.nodes[n].starve_lag;
        let wait = self.rng.between(lag / 4, lag);
        let generation = self.nodes[n].starve_generation;
        self.at(
            self.now + wait,
            Ev::Slice {
                node: n,
                generation,
            },
        );
    }

    fn boot(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        node.proc = Proc::Running;
        node.incarnations += 1;
        node.starve_generation += 1;
        node.backlog.clear();
        // A new agent removes stale addresses of its config before anything else.
        node.resources.clear();
        let local = node.local(self.now);
        let incarnation = node.incarnations;
        let engine = Engine::new(
            &node_name(n),
            Arc::new(self.model.clone()),
            self.config_hash,
            EngineConfig::for_model(&self.model),
            self.keys.clone(),
            node.incarnations,
            local,
            jiff::Timestamp::UNIX_EPOCH,
        );
        node.engine = Some(engine);
        let clears = self.clears.clone();
        self.feed_clears(n, &clears);
        // A starting agent checks what it can host before it claims anything.
        let groups = self.nodes[n].unable.clone();
        self.feed(n, Input::Unable { groups });
        if self.config.record {
            self.written.retain(|(node, _), _| *node != n);
            let at = self.now + self.api_delay();
            self.at(
                at,
                Ev::Floor {
                    node: n,
                    incarnation,
                },
            );
        }
    }

    fn feed_clears(&mut self, n: usize, clears: &BTreeMap<String, u64>) {
        for (group, &token) in clears {
            let group = group.clone();
            self.feed(n, Input::ClearFailures { group, token });
        }
    }

    /// A frozen or starved agent runs normally again.
    fn resume(&mut self, n: usize) {
        self.nodes[n].proc = Proc::Running;
        self.nodes[n].starve_generation += 1;
        self.run_backlog(n);
    }

    fn mark(&mut self, nodes: impl IntoIterator<Item = usize>) {
        for n in nodes {
            self.impaired_at.insert(n, self.now);
        }
    }

    /// The holder `n` failed now (crash, freeze, isolation): time the takeover of
    /// what it held.
    fn holder_failed(&mut self, n: usize) {
        for g in self.nodes[n].resources.keys() {
            self.failed_at.entry(g.clone()).or_insert((n, self.now));
        }
    }

    fn apply_fault(&mut self, i: usize) {
        let op = self.faults[i].op.clone();
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        match op {
            FaultOp::Crash(n) => {
                self.mark([n]);
                self.holder_failed(n);
                let node = &mut self.nodes[n];
                node.proc = Proc::Down;
                node.engine = None;
                node.resources.clear();
            }
            FaultOp::Restart(n) => {
                if self.nodes[n].proc == Proc::Down {
                    self.mark([n]);
                    self.boot(n);
                }
            }
            FaultOp::Pause(n) => {
                if matches!(self.nodes[n].proc, Proc::Running | Proc::Starved) {
                    self.mark([n]);
                    self.holder_failed(n);
                    self.nodes[n].proc = Proc::Paused;
                    self.nodes[n].starve_generation += 1;
                }
            }
            FaultOp::Starve { node, lag } => {
                if self.nodes[node].proc == Proc::Running {
                    // Not a failure by itself: a starved owner may well keep its
                    // groups, so no takeover clock starts here.
                    self.mark([node]);
                    let state = &mut self.nodes[node];
                    state.proc = Proc::Starved;
                    state.starve_generation += 1;
                    state.starve_lag = lag;
                    self.next_slice(node);
                }
            }
            FaultOp::Unstarve(n) => {
                if self.nodes[n].proc == Proc::Starved {
                    self.mark([n]);
                    self.resume(n);
                }
            }
            FaultOp::Resume(n) => {
                if self.nodes[n].proc == Proc::Paused {
                    self.mark([n]);
                    self.resume(n);
                }
            }
            FaultOp::Partition(side) => {
                self.mark(all.clone());
                if side.len() < self.model.votes_needed() {
                    for &n in &side {
                        self.holder_failed(n);
                    }
                }
                for &a in &side {
                    for b in all.iter().filter(|b| !side.contains(b)) {
                        self.blocked.insert((a, *b));
                        self.blocked.insert((*b, a));
                    }
                }
            }
            FaultOp::OneWay { from, to } => {
                self.mark([from, to]);
                self.blocked.insert((from, to));
            }
            FaultOp::Loss { node, percent } => {
                self.mark([node]);
                self.loss.insert(node, percent);
            }
            FaultOp::Heal => {
                self.mark(all.clone());
                self.blocked.clear();
                self.loss.clear();
            }
            FaultOp::Leave(n) => {
                if self.nodes[n].proc == Proc::Running {
                    self.mark([n]);
                    self.feed(n, Input::Leave);
                }
            }
            FaultOp::TogglePaused(n) => {
                self.mark([n]);
                let m = &mut self.model.members[n];
                m.paused = !m.paused;
                self.reconfigure();
            }
            FaultOp::Pin { group, node } => {
                self.model.groups[group].owner = node.map(node_name);
                self.reconfigure();
            }
            FaultOp::Unable {
                node,
                group,
                reason,
            } => {
                self.mark([node]);
                self.nodes[node].unable.insert(group_name(group), reason);
                let groups = self.nodes[node].unable.clone();
                self.deliver(node, Pending::Unable(groups));
            }
            FaultOp::Able { node, group } => {
                self.mark([node]);
                self.nodes[node].unable.remove(&group_name(group));
                let groups = self.nodes[node].unable.clone();
                self.deliver(node, Pending::Unable(groups));
            }
            FaultOp::ClearFailures(group) => {
                let name = group_name(group);
                self.failovers.remove(&name);
                self.clears.insert(name, i as u64 + 1);
                self.reconfigure();
            }
        }
        let next = self.faults.get(i + 1).map(|f| f.at);
        let check_at = self.now + self.config.liveness_bound();
        if next.is_none_or(|t| t > check_at) {
            self.at(
                check_at,
                Ev::Liveness {
                    fault_index: i,
                    recheck: false,
                },
            );
        }
    }

    fn reconfigure(&mut self) {
        self.config_hash += 1;
        self.last_config_change = Some(self.now);
        let model = Arc::new(self.model.clone());
        let clears = Arc::new(self.clears.clone());
        for n in 0..self.nodes.len() {
            // The new config reaches nodes at slightly different times, but each node
            // gets the configurations in the order they were made (a watch does).
            let at = (self.now + self.rng.between(Duration::ZERO, self.config.max_delay * 4))
                .max(self.nodes[n].config_due);
            self.nodes[n].config_due = at;
            self.at(
                at,
                Ev::Configure {
                    node: n,
                    model: model.clone(),
                    hash: self.config_hash,
                    clears: clears.clone(),
                },
            );
        }
    }

    fn feed(&mut self, n: usize, input: Input<'_>) {
        let local = self.nodes[n].local(self.now);
        let Some(engine) = self.nodes[n].engine.as_mut() else {
            return;
        };
        engine.handle(local, input);
        self.report.steps += 1;
        let mut outputs = Vec::new();
        while let Some(o) = engine.poll_output() {
            outputs.push(o);
        }
        let wake = engine.poll_timeout();
        let leaving_done = engine.ready_to_exit(local);
        for o in outputs {
            self.output(n, o);
        }
        let node = &mut self.nodes[n];
        node.timer_generation += 1;
        let at = node.true_time(wake).max(self.now) + Duration::from_nanos(1);
        let generation = node.timer_generation;
        self.at(
            at,
            Ev::Timer {
                node: n,
                generation,
            },
        );
        if leaving_done {
            // The agent handed everything over and exits.
            let node = &mut self.nodes[n];
            node.proc = Proc::Down;
            node.engine = None;
        }
    }

    fn output(&mut self, n: usize, o: Output) {
        let incarnation = self.nodes[n].incarnations;
        if self.config.trace && !matches!(o, Output::Broadcast(_) | Output::Renew { .. }) {
            eprintln!(
                "t={:>10.3}ms {} {:?}",
                self.now.as_secs_f64() * 1000.0,
                node_name(n),
                o
            );
        }
        match o {
            Output::Broadcast(bytes) => {
                for to in 0..self.nodes.len() {
                    if to == n || self.blocked.contains(&(n, to)) {
                        continue;
                    }
                    let loss = self.loss.get(&n).copied().unwrap_or(0);
                    if self.rng.below(100) < u64::from(loss) {
                        continue;
                    }
                    let copies = if self.rng.chance(self.duplicate) {
                        2
                    } else {
                        1
                    };
                    for _ in 0..copies {
                        let delay = self
                            .rng
                            .between(self.config.min_delay, self.config.max_delay);
                        self.at(
                            self.now + delay,
                            Ev::Deliver {
                                to,
                                bytes: bytes.clone(),
                            },
                        );
                    }
                }
            }
            Output::Start { group, reason, .. } => {
                if self.config.record {
                    let at = self.now + self.api_delay();
                    self.at(
                        at,
                        Ev::Record {
                            node: n,
                            group: group.clone(),
                            incarnation,
                        },
                    );
                }
                self.check_move(n, &group, reason);
                if reason.is_failover() {
                    *self.failovers.entry(group.clone()).or_default() += 1;
                }
                self.starts.push((self.now, n, group.clone(), reason));
                let until = self.now + self.config.address_lifetime;
                self.nodes[n].resources.insert(
                    group.clone(),
                    Resource {
                        state: ResState::Starting,
                        kernel_until: until,
                        lingering: false,
                    },
                );
                let done = self.now + self.config.start_time;
                self.at(
                    done,
                    Ev::ResourceDone {
                        node: n,
                        group,
                        incarnation,
                    },
                );
            }
            Output::Renew { group } => {
                let until = self.now + self.config.address_lifetime;
                if let Some(r) = self.nodes[n].resources.get_mut(&group) {
                    r.kernel_until = until;
                }
            }
            Output::Stop { group, cause } => {
                if let StopCause::Release(reason) = cause {
                    self.released.insert(group.clone(), (n, reason, self.now));
                }
                if let Some(r) = self.nodes[n].resources.get_mut(&group) {
                    r.state = ResState::Stopping;
                }
                let done = self.now + self.config.stop_time;
                self.at(
                    done,
                    Ev::ResourceDone {
                        node: n,
                        group,
                        incarnation,
                    },
                );
            }
            Output::WitnessRequest => {
                let delay = self.api_delay();
                let local_sent = self.nodes[n].local(self.now);
                self.at(
                    self.now + delay,
                    Ev::Witness {
                        node: n,
                        local_sent,
                        incarnation,
                    },
                );
            }
            Output::Event(_) => {}
        }
    }

    fn resource_done(&mut self, n: usize, group: String, incarnation: u64) {
        if self.nodes[n].incarnations != incarnation {
            return;
        }
        let Some(res) = self.nodes[n].resources.get_mut(&group) else {
            return;
        };
        match res.state {
            ResState::Starting => {
                res.state = ResState::Online;
                self.last_online.insert(group.clone(), n);
                if let Some((failed, at)) = self.failed_at.remove(&group) {
                    // The same node regaining it (a short freeze) is no takeover.
                    if failed != n {
                        self.report.takeovers.push(self.now - at);
                    }
                }
                self.deliver(n, Pending::Online(group));
            }
            ResState::Stopping => {
                self.nodes[n].resources.remove(&group);
                self.deliver(n, Pending::Offline(group));
            }
            ResState::Online => {}
        }
    }

    /// Whether the resources of `group` on node `n` are present at this instant.
    fn present(&self, n: usize, res: &Resource) -> bool {
        match self.nodes[n].proc {
            Proc::Running => true,
            Proc::Paused | Proc::Starved => self.now < res.kernel_until,
            Proc::Down => false,
        }
    }

    fn check_safety(&mut self) {
        if self.config.quorum == QuorumMode::None && !self.force_safety_check {
            return;
        }
        // A frozen agent whose resources are still present keeps them as lingering
        // until they are stopped: that overlap belongs to the kernel fence.
        for node in self
            .nodes
            .iter_mut()
            .filter(|n| matches!(n.proc, Proc::Paused | Proc::Starved))
        {
            for res in node.resources.values_mut() {
                res.lingering = true;
            }
        }
        for g in 0..self.config.groups {
            let group = group_name(g);
            let mut running = Vec::new();
            let mut lingering = Vec::new();
            for (n, node) in self.nodes.iter().enumerate() {
                if let Some(res) = node.resources.get(&group) {
                    if !self.present(n, res) {
                        continue;
                    }
                    if res.lingering {
                        lingering.push(n);
                    } else {
                        running.push(n);
                    }
                }
            }
            if running.len() > 1 {
                self.report.safety_violations += 1;
                self.violation(format!(
                    "safety: {group} held by {:?} at once",
                    running.iter().map(|&n| node_name(n)).collect::<Vec<_>>()
                ));
            }
            if running.len() + lingering.len() > 1 {
                let since = *self.overlap_since.entry(group.clone()).or_insert(self.now);
                let overlap = self.now - since;
                self.report.lingering_overlap = self.report.lingering_overlap.max(overlap);
                if overlap
                    > self.config.address_lifetime + self.config.stop_time + self.config.max_delay
                {
                    self.report.safety_violations += 1;
                    self.violation(format!(
                        "safety: a frozen agent's {group} outlived its address lifetime ({overlap:?})"
                    ));
                }
            } else {
                self.overlap_since.remove(&group);
            }
        }
    }

    fn violation(&mut self, what: String) {
        if self.report.first_violation.is_none() {
            self.report.first_violation = Some(format!("{what} at t={:?}", self.now));
        }
    }

    /// A start on node `n`: is the move explained by the world?
    fn check_move(&mut self, n: usize, group: &str, reason: Reason) {
        let Some(&previous) = self.last_online.get(group) else {
            return;
        };
        if previous == n {
            return;
        }
        let window = self.config.dead_after * 3 + self.config.liveness_bound();
        let recent = |t: Duration| self.now.saturating_sub(t) <= window;
        let impaired = self.nodes[previous].proc != Proc::Running
            || self
                .blocked
                .iter()
                .any(|&(a, b)| a == previous || b == previous)
            || self.loss.contains_key(&previous)
            || self.impaired_at.get(&previous).is_some_and(|&t| recent(t))
            || self.impaired_at.get(&n).is_some_and(|&t| recent(t));
        let configured = self.last_config_change.is_some_and(recent);
        let planned = self.released.get(group).is_some_and(|&(from, why, t)| {
            from == previous && recent(t) && self.release_explained(group, why, n, previous)
        });
        if !(impaired || configured || planned) {
            self.report.unexplained_moves += 1;
            self.violation(format!(
                "stability: {group} moved from {} to {} ({}) with no cause",
                node_name(previous),
                node_name(n),
                reason.code()
            ));
        }
    }

    fn release_explained(&self, group: &str, why: Reason, to: usize, from: usize) -> bool {
        let Some(g) = self.model.group(group) else {
            return false;
        };
        match why {
            Reason::Failback => {
                let order = self.model.order(g);
                let rank = |n: usize| order.iter().position(|m| *m == node_name(n));
                rank(to) < rank(from)
            }
            Reason::ManualMove => g.owner.as_deref() == Some(node_name(to).as_str()),
            _ => false,
        }
    }

    fn check_liveness(&mut self, fault_index: usize, recheck: bool) {
        if fault_index == TAIL && self.tail_failed {
            return;
        }
        let n = self.nodes.len();
        let healthy = |a: usize, b: usize, w: &World| {
            !w.blocked.contains(&(a, b))
                && !w.blocked.contains(&(b, a))
                && !w.loss.contains_key(&a)
                && !w.loss.contains_key(&b)
        };
        let up: Vec<usize> = (0..n)
            .filter(|&i| self.nodes[i].proc == Proc::Running)
            .collect();
        // Liveness is promised for clean partitions only: while loss or a one-way
        // block is in force, views may legitimately disagree and nothing is checked.
        let asymmetric = !self.loss.is_empty()
            || self
                .blocked
                .iter()
                .any(|&(a, b)| !self.blocked.contains(&(b, a)));
        // A starved agent may keep its groups or lose them, by how late it runs: only
        // once it runs normally again is anything promised (and checked).
        let starved = self.nodes.iter().any(|n| n.proc == Proc::Starved);
        if asymmetric || starved {
            return;
        }
        // Components of running nodes over healthy links; only cliques are expected
        // to converge, and only those with enough votes (in witness mode, both sides
        // of a two-node split qualify, and the witness decides which one serves).
        let mut seen = BTreeSet::new();
        let mut quorate: Vec<usize> = Vec::new();
        for &start in &up {
            if seen.contains(&start) {
                continue;
            }
            let component: Vec<usize> = up
                .iter()
                .copied()
                .filter(|&b| b == start || healthy(start, b, self))
                .collect();
            seen.extend(component.iter().copied());
            let clique = component
                .iter()
                .all(|&a| component.iter().all(|&b| a == b || healthy(a, b, self)));
            let witness = usize::from(self.config.quorum == QuorumMode::Witness);
            if clique && component.len() + witness >= self.model.votes_needed() {
                quorate.extend(component);
            }
        }
        let mut missing = Vec::new();
        for g in 0..self.config.groups {
            let group = group_name(g);
            if !quorate.iter().any(|&m| {
                !self.model.members[m].paused && !self.nodes[m].unable.contains_key(&group)
            }) {
                continue;
            }
            let over_limit = self.over_limit(&group);
            let failed_early = quorate.iter().any(|&m| {
                self.nodes[m]
                    .engine
                    .as_ref()
                    .is_some_and(|e| e.failed_groups().any(|f| f == group))
            }) && !over_limit;
            if failed_early {
                missing.push(format!("{group} (Failed below its limit)"));
                continue;
            }
            if over_limit {
                // Failed is allowed (offline) and so is online: a node that missed
                // a failover in a partition counts fewer than this world does.
                continue;
            }
            let online = quorate.iter().filter(|&&m| {
                self.nodes[m]
                    .resources
                    .get(&group)
                    .is_some_and(|r| r.state == ResState::Online)
            });
            if online.count() != 1 {
                missing.push(group);
            }
        }
        if missing.is_empty() {
            return;
        }
        if !recheck {
            // A planned handover may be in flight at this instant: look again after
            // the time one takes.
            let again = self.now + self.recheck_delay();
            self.at(
                again,
                Ev::Liveness {
                    fault_index,
                    recheck: true,
                },
            );
            return;
        }
        self.report.liveness_violations += 1;
        if fault_index == TAIL {
            self.tail_failed = true;
            self.violation(format!(
                "liveness: {missing:?} not online in the quiet tail after the faults ({:?} after the repair at {:?})",
                self.now.saturating_sub(self.repair_at()),
                self.repair_at()
            ));
        } else {
            self.violation(format!(
                "liveness: {missing:?} not online in the quorate partition"
            ));
        }
    }

    /// Whether `group` failed over as often as its limit allows since the last clear.
    fn over_limit(&self, group: &str) -> bool {
        let count = self.failovers.get(group).copied().unwrap_or(0);
        self.model
            .group(group)
            .and_then(|g| g.failover_limit)
            .is_some_and(|limit| count >= limit.max)
    }

    /// How long a planned handover takes, after which a liveness check looks again.
    fn recheck_delay(&self) -> Duration {
        self.config.stop_time + self.config.start_time + 6 * self.config.max_delay
    }
}

/// Aggregate of many runs, as `failover simulate` prints it.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub runs: u64,
    pub nodes: usize,
    pub steps: u64,
    pub safety_violations: u64,
    pub liveness_violations: u64,
    pub unexplained_moves: u64,
    pub takeovers: Vec<Duration>,
    pub lingering_overlap: Duration,
}

impl Summary {
    /// Adds another summary of the same configuration (another thread's runs).
    pub fn merge(&mut self, other: Summary) {
        self.runs += other.runs;
        self.steps += other.steps;
        self.safety_violations += other.safety_violations;
        self.liveness_violations += other.liveness_violations;
        self.unexplained_moves += other.unexplained_moves;
        self.takeovers.extend(other.takeovers);
        self.lingering_overlap = self.lingering_overlap.max(other.lingering_overlap);
    }

    /// Adds one run.
    pub fn add(&mut self, r: &RunReport) {
        self.merge(Summary {
            runs: 1,
            nodes: self.nodes,
            steps: r.steps,
            safety_violations: r.safety_violations,
            liveness_violations: r.liveness_violations,
            unexplained_moves: r.unexplained_moves,
            takeovers: r.takeovers.clone(),
            lingering_overlap: r.lingering_overlap,
        });
    }

    /// The one JSON line of `failover simulate`.
    pub fn json(&self, config: &SimConfig) -> String {
        let mut t: Vec<f64> = self
            .takeovers
            .iter()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        t.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            if t.is_empty() {
                0.0
            } else {
                t[((t.len() - 1) as f64 * p).round() as usize]
            }
        };
        serde_json::json!({
            "runs": self.runs,
            "nodes": self.nodes,
            "steps": self.steps,
            "safety_violations": self.safety_violations,
            "liveness_violations": self.liveness_violations,
            "unexplained_moves": self.unexplained_moves,
            "takeover_ms": {
                "p50": round(pct(0.5)),
                "p99": round(pct(0.99)),
                "max": round(t.last().copied().unwrap_or(0.0)),
                "samples": t.len(),
            },
            "lingering_overlap_ms_max": round(self.lingering_overlap.as_secs_f64() * 1000.0),
            "liveness_bound_ms": round(config.liveness_bound().as_secs_f64() * 1000.0),
            "interval_ms": config.interval.as_millis() as u64,
            "dead_after_ms": config.dead_after.as_millis() as u64,
        })
        .to_string()
    }
}

/// A run that violated an invariant, with its shrunk fault schedule.
#[derive(Clone, Debug)]
pub struct FailedRun {
    pub seed: u64,
    pub trace: Vec<Fault>,
    pub violation: String,
}

impl fmt::Display for FailedRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed {}: {}", self.seed, self.violation)?;
        writeln!(f, "shrunk fault trace that reproduces it:")?;
        for fault in &self.trace {
            writeln!(f, "  {fault}")?;
        }
        Ok(())
    }
}

/// Runs `runs` simulations with seeds `seed`, `seed + 1`, … on `threads` threads.
pub fn simulate_many(
    config: &SimConfig,
    runs: u64,
    seed: u64,
    threads: usize,
) -> (Summary, Vec<FailedRun>) {
    let threads = threads.clamp(1, 64) as u64;
    let results: Vec<(Summary, Vec<FailedRun>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut summary = Summary {
                        nodes: config.nodes,
                        ..Summary::default()
                    };
                    let mut failed = Vec::new();
                    for i in (t..runs).step_by(threads as usize) {
                        let seed = seed.wrapping_add(i);
                        let faults = schedule(config, seed);
                        let report = run(config, seed, &faults);
                        summary.add(&report);
                        if report.violations() > 0 {
                            let (trace, shrunk) = shrink(config, seed, &faults);
                            failed.push(FailedRun {
                                seed,
                                trace,
                                violation: shrunk
                                    .first_violation
                                    .or(report.first_violation)
                                    .unwrap_or_default(),
                            });
                        }
                    }
                    (summary, failed)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    let mut total = Summary {
        nodes: config.nodes,
        ..Summary::default()
    };
    let mut failed = Vec::new();
    for (summary, f) in results {
        total.merge(summary);
        failed.extend(f);
    }
    failed.sort_by_key(|f| f.seed);
    (total, failed)
}

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests;
