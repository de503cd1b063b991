//! Torture: a seeded random schedule of faults over a 3- or 5-node lab cluster with
//! several groups, watched throughout, folded into one JSON line of safety counters.
//!
//! The schedule is a pure function of the seed (same seed, same faults at the same
//! offsets: `schedule`), turned into timed actions (`actions`, pure); the runner
//! (`run`) applies them to a real lab while a sampler per VIP streams every node
//! namespace's address changes and a probe per VIP asks the client's questions (UDP
//! echo and ARP who-has). The verdict is computed afterwards from what was recorded
//! (`analyze`, pure and tested). Definitions of every counter are in docs/torture.md.
//!
//! Must never: run unbounded (duration is capped, every wait has a deadline), touch
//! anything outside its lab, or call a run clean whose final state it did not check.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::LabError;
use super::bench::{echo_args, parse_summary, tear_down, wait_each_held_once, wait_output};
use super::fault::{self, Direction, Filter, Signal};
use super::impls::{FailoverTiming, Impl, group_vip};
use super::load::CpuLoad;
use super::probe::{self, Sample};
use super::sampler::{Timeline, VipSampler};
use super::topology::{IFACE, Lab, node_v4, node_v6};
use crate::sim::rng::Rng;

/// Longest torture accepted (the probe's own limit bounds it too).
pub const MAX_DURATION: Duration = Duration::from_secs(570);
/// Loss of the random-loss fault, percent of every packet between members.
pub const RANDOM_LOSS_PCT: u8 = 30;
/// How late the kernel may remove an expired address: IPv4 checks lifetimes on a
/// timer rounded up to the next whole second.
pub const LIFETIME_SLACK: Duration = Duration::from_millis(1500);
/// Overlaps of two live holders this short are not counted as double holders: the
/// sampler timestamps each namespace's address changes when its own `ip monitor`
/// delivers them, so under load two namespaces' events can be misordered by a few
/// ms, and a clean handover (one releases, the other adds on hearing it, a datagram
/// later) can look like a 1–2 ms overlap. They stay listed in `Findings`.
pub const SKEW_TOLERANCE_MS: f64 = 5.0;
/// The watcher's time step when it folds the recordings.
const STEP_MS: f64 = 1.0;
/// UDP port of the echo responders.
const ECHO_PORT: u16 = 7000;

/// One fault of a schedule. Node numbers are 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// SIGKILL the agent; restart it after `down`.
    Kill { node: usize, down: Duration },
    /// SIGKILL `first`, then `second` `gap` later (when `second` is likely taking
    /// `first`'s groups over); restart both `down` after the second kill.
    CrashTakeover {
        first: usize,
        second: usize,
        gap: Duration,
        down: Duration,
    },
    /// SIGSTOP the agent for `length` (longer than deadAfter), then SIGCONT.
    Stop { node: usize, length: Duration },
    /// The node's interface down for `length`.
    LinkFlap { node: usize, length: Duration },
    /// `isolated` (a minority) cut off from the other members both ways.
    Partition {
        isolated: Vec<usize>,
        length: Duration,
    },
    /// Everything the node sends to the other members is lost.
    OneWayLoss { node: usize, length: Duration },
    /// Every member loses [`RANDOM_LOSS_PCT`] % of what it sends to the others.
    RandomLoss { length: Duration },
    /// SIGKILL every agent at once; restart them all together after `down`.
    RestartAll { down: Duration },
    /// Busy workers on every core.
    CpuBurst { length: Duration },
}

/// A fault at an offset from the start of the torture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub at: Duration,
    pub kind: FaultKind,
}

impl Fault {
    /// How long the fault lasts (until its last heal or restart).
    pub fn length(&self) -> Duration {
        match &self.kind {
            FaultKind::Kill { down, .. } | FaultKind::RestartAll { down } => *down,
            FaultKind::CrashTakeover { gap, down, .. } => *gap + *down,
            FaultKind::Stop { length, .. }
            | FaultKind::LinkFlap { length, .. }
            | FaultKind::Partition { length, .. }
            | FaultKind::OneWayLoss { length, .. }
            | FaultKind::RandomLoss { length }
            | FaultKind::CpuBurst { length } => *length,
        }
    }

    /// Whether the fault may move groups: everything but CPU load, which must not
    /// (a move during a CPU burst is unexplained).
    pub fn explains_moves(&self) -> bool {
        !matches!(self.kind, FaultKind::CpuBurst { .. })
    }

    /// Short name of the fault's kind.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            FaultKind::Kill { .. } => "kill",
            FaultKind::CrashTakeover { .. } => "crash-takeover",
            FaultKind::Stop { .. } => "sigstop",
            FaultKind::LinkFlap { .. } => "link-flap",
            FaultKind::Partition { .. } => "partition",
            FaultKind::OneWayLoss { .. } => "oneway-loss",
            FaultKind::RandomLoss { .. } => "random-loss-30",
            FaultKind::RestartAll { .. } => "restart-all",
            FaultKind::CpuBurst { .. } => "cpu-burst",
        }
    }

    /// The nodes the fault occupies (all for cluster-wide faults, none for CPU load).
    fn nodes(&self, members: usize) -> Vec<usize> {
        match &self.kind {
            FaultKind::Kill { node, .. }
            | FaultKind::Stop { node, .. }
            | FaultKind::LinkFlap { node, .. }
            | FaultKind::OneWayLoss { node, .. } => vec![*node],
            FaultKind::CrashTakeover { first, second, .. } => vec![*first, *second],
            FaultKind::Partition { isolated, .. } => isolated.clone(),
            FaultKind::RandomLoss { .. } | FaultKind::RestartAll { .. } => (1..=members).collect(),
            FaultKind::CpuBurst { .. } => Vec::new(),
        }
    }
}

/// Cluster size for a seed when none is given: 3 or 5 members.
pub fn members_for_seed(seed: u64) -> usize {
    if Rng::fork(seed, 1).below(2) == 0 {
        3
    } else {
        5
    }
}

/// The first preferred owner of group `k` (1-based) in the lab's multi-group
/// config (`impls::failover_yaml_groups`).
pub fn preferred_owner(k: usize, members: usize) -> usize {
    (k.max(1) - 1) % members.max(1) + 1
}

/// Quiet time at the end of a schedule: no fault starts or lasts into it, so the
/// cluster converges before the end.
pub fn quiet_tail(timing: &FailoverTiming) -> Duration {
    Duration::from_millis(timing.dead_after_ms * 3) + Duration::from_secs(1)
}

/// The seeded schedule (pure): faults start one after another, 2 intervals to 2
/// deadAfters apart, each on nodes no other fault occupies at the time, and all of
/// them end before the quiet tail.
pub fn schedule(
    seed: u64,
    members: usize,
    duration: Duration,
    timing: &FailoverTiming,
) -> Vec<Fault> {
    let mut rng = Rng::fork(seed, 2);
    let d = Duration::from_millis(timing.dead_after_ms.max(1));
    let iv = Duration::from_millis(timing.interval_ms.max(1));
    let end = duration.saturating_sub(quiet_tail(timing));
    let mut busy_until = vec![Duration::ZERO; members + 1];
    let mut faults = Vec::new();
    let mut t = d;
    // Bounded by time and by count.
    while t < end && faults.len() < 10_000 {
        let free: Vec<usize> = (1..=members).filter(|&n| busy_until[n] <= t).collect();
        let pick = |rng: &mut Rng, from: &[usize]| from[rng.below(from.len() as u64) as usize];
        let kind = match rng.below(9) {
            _ if free.is_empty() => FaultKind::CpuBurst {
                length: rng.between(d, d * 4),
            },
            0 => FaultKind::Kill {
                node: pick(&mut rng, &free),
                down: rng.between(d / 2, d * 3),
            },
            1 if free.len() >= 2 => {
                let first = pick(&mut rng, &free);
                let others: Vec<usize> = free.iter().copied().filter(|&n| n != first).collect();
                FaultKind::CrashTakeover {
                    first,
                    second: pick(&mut rng, &others),
                    gap: rng.between(d, d + iv * 3),
                    down: rng.between(d / 2, d * 2),
                }
            }
            2 => FaultKind::Stop {
                node: pick(&mut rng, &free),
                length: rng.between(d * 3 / 2, d * 3),
            },
            3 => FaultKind::LinkFlap {
                node: pick(&mut rng, &free),
                length: rng.between(iv, d * 3),
            },
            4 => {
                let minority = (members - 1) / 2;
                let size = 1 + rng.below(minority.min(free.len()) as u64) as usize;
                let mut pool = free.clone();
                let mut isolated = Vec::new();
                for _ in 0..size {
                    let k = rng.below(pool.len() as u64) as usize;
                    isolated.push(pool.remove(k));
                }
                isolated.sort_unstable();
                FaultKind::Partition {
                    isolated,
                    length: rng.between(d * 3 / 2, d * 4),
                }
            }
            5 => FaultKind::OneWayLoss {
                node: pick(&mut rng, &free),
                length: rng.between(d * 3 / 2, d * 4),
            },
            6 if free.len() == members => FaultKind::RandomLoss {
                length: rng.between(d * 2, d * 5),
            },
            7 if free.len() == members => FaultKind::RestartAll {
                down: rng.between(Duration::ZERO, d / 2),
            },
            _ => FaultKind::CpuBurst {
                length: rng.between(d, d * 4),
            },
        };
        let fault = Fault { at: t, kind };
        if t + fault.length() > end {
            break;
        }
        for n in fault.nodes(members) {
            busy_until[n] = t + fault.length();
        }
        faults.push(fault);
        t += rng.between(iv * 2, d * 2);
    }
    faults
}

/// One step the runner takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Kill(Vec<usize>),
    Start(Vec<usize>),
    Stop(usize),
    Cont(usize),
    Link(usize, bool),
    /// Drop `loss_pct` % of `node`'s traffic with `peers` in `direction`.
    Filter {
        node: usize,
        peers: Vec<usize>,
        direction: Direction,
        loss_pct: u8,
    },
    Clear(usize),
    Cpu(Duration),
}

/// The timed actions of a schedule, in time order (pure).
pub fn actions(faults: &[Fault], members: usize) -> Vec<(Duration, Action)> {
    let all: Vec<usize> = (1..=members).collect();
    let others = |n: usize| all.iter().copied().filter(|&m| m != n).collect::<Vec<_>>();
    let mut out = Vec::new();
    for f in faults {
        let end = f.at + f.length();
        match &f.kind {
            FaultKind::Kill { node, .. } => {
                out.push((f.at, Action::Kill(vec![*node])));
                out.push((end, Action::Start(vec![*node])));
            }
            FaultKind::CrashTakeover {
                first, second, gap, ..
            } => {
                out.push((f.at, Action::Kill(vec![*first])));
                out.push((f.at + *gap, Action::Kill(vec![*second])));
                out.push((end, Action::Start(vec![*first, *second])));
            }
            FaultKind::Stop { node, .. } => {
                out.push((f.at, Action::Stop(*node)));
                out.push((end, Action::Cont(*node)));
            }
            FaultKind::LinkFlap { node, .. } => {
                out.push((f.at, Action::Link(*node, false)));
                out.push((end, Action::Link(*node, true)));
            }
            FaultKind::Partition { isolated, .. } => {
                let rest: Vec<usize> = all
                    .iter()
                    .copied()
                    .filter(|n| !isolated.contains(n))
                    .collect();
                for &n in isolated {
                    out.push((
                        f.at,
                        Action::Filter {
                            node: n,
                            peers: rest.clone(),
                            direction: Direction::Both,
                            loss_pct: 100,
                        },
                    ));
                    out.push((end, Action::Clear(n)));
                }
            }
            FaultKind::OneWayLoss { node, .. } => {
                out.push((
                    f.at,
                    Action::Filter {
                        node: *node,
                        peers: others(*node),
                        direction: Direction::Outbound,
                        loss_pct: 100,
                    },
                ));
                out.push((end, Action::Clear(*node)));
            }
            FaultKind::RandomLoss { .. } => {
                for &n in &all {
                    // Outbound only: each packet crosses one filter, so it is lost
                    // with exactly this probability.
                    out.push((
                        f.at,
                        Action::Filter {
                            node: n,
                            peers: others(n),
                            direction: Direction::Outbound,
                            loss_pct: RANDOM_LOSS_PCT,
                        },
                    ));
                    out.push((end, Action::Clear(n)));
                }
            }
            FaultKind::RestartAll { .. } => {
                out.push((f.at, Action::Kill(all.clone())));
                out.push((end, Action::Start(all.clone())));
            }
            FaultKind::CpuBurst { length } => out.push((f.at, Action::Cpu(*length))),
        }
    }
    // Stable: at equal times, a fault's own order (kill before start) is kept.
    out.sort_by_key(|(at, _)| *at);
    out
}

/// What happened to a node's agent process, as the runner did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proc {
    Spawned,
    Killed,
    Stopped,
    Continued,
}

/// Everything recorded during a run, times in ms since the torture started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observations {
    pub members: usize,
    pub end_ms: f64,
    /// The kernel address lifetime of a VIP, ms.
    pub lifetime_ms: f64,
    /// `[vip][node - 1]`: when the node's namespace held the VIP.
    pub holdings: Vec<Vec<Timeline>>,
    /// `[node - 1]`: the agent's process events, in time order.
    pub procs: Vec<Vec<(f64, Proc)>>,
    /// `[node - 1]`: intervals during which the node's network was impaired (link
    /// down, a filter of any kind).
    pub impaired: Vec<Vec<(f64, f64)>>,
    /// Intervals during which moves are explained by a fault.
    pub explained: Vec<(f64, f64)>,
    /// `[vip]`: probe intervals with split brain on the wire: (time, answering nodes).
    pub split_brain: Vec<Vec<(f64, Vec<usize>)>>,
}

/// The torture's JSON line (exactly these keys, in this order).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TortureReport {
    pub seed: u64,
    pub duration_s: u64,
    pub faults: usize,
    pub split_brain_intervals: u64,
    pub double_holders: u64,
    pub ownerless_quorate_ms_max: f64,
    pub moves: u64,
    pub unexplained_moves: u64,
    pub orphaned_vips: u64,
}

impl TortureReport {
    /// Whether a safety counter is non-zero.
    pub fn unsafe_run(&self) -> bool {
        self.split_brain_intervals > 0
            || self.double_holders > 0
            || self.unexplained_moves > 0
            || self.orphaned_vips > 0
    }
}

/// What `analyze` finds besides the report: where the safety counters came from, and
/// counts attributed to nodes whose agent was dead or frozen (the kernel keeps a dead agent's VIP until its lifetime ends and
/// answers ARP for it meanwhile) — measured, printed, not part of the safety counters.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Findings {
    /// Probe intervals with two answerers where one answerer's agent was not live.
    pub dead_agent_split_brain_intervals: u64,
    /// Time two namespaces held one VIP while at most one of them had a live agent.
    pub dead_agent_overlap_ms: f64,
    /// Where the safety counters came from, to debug a failing seed: (VIP number,
    /// ms, nodes) of each split-brain interval, and of each double holder with how
    /// long it lasted (VIP number, start ms, length ms, nodes).
    pub double_holder_at: Vec<(usize, f64, f64, Vec<usize>)>,
    pub split_brain_at: Vec<(usize, f64, Vec<usize>)>,
}

/// A node's agent state at each step: running (and since when it runs: its spawn
/// or its last SIGCONT), and since when it is not running.
#[derive(Clone, Copy)]
struct AgentAt {
    running: bool,
    running_since_ms: f64,
    down_since_ms: f64,
}

fn agent_states(procs: &[(f64, Proc)], steps: usize) -> Vec<AgentAt> {
    let mut out = Vec::with_capacity(steps);
    let mut state = AgentAt {
        running: false,
        running_since_ms: f64::NEG_INFINITY,
        down_since_ms: f64::NEG_INFINITY,
    };
    let mut alive = false;
    let mut k = 0;
    for step in 0..steps {
        let t = step as f64 * STEP_MS;
        while k < procs.len() && procs[k].0 <= t {
            let (at, ev) = procs[k];
            match ev {
                Proc::Spawned => {
                    alive = true;
                    state.running_since_ms = at;
                    state.running = true;
                }
                Proc::Killed => {
                    if alive {
                        alive = false;
                        if state.running {
                            state.down_since_ms = at;
                        }
                        state.running = false;
                    }
                }
                Proc::Stopped => {
                    if state.running {
                        state.down_since_ms = at;
                    }
                    state.running = false;
                }
                Proc::Continued => {
                    state.running = alive;
                    state.running_since_ms = at;
                }
            }
            k += 1;
        }
        out.push(state);
    }
    out
}

/// Per step: (held at all, held by the live agent) for one node's VIP timeline. A
/// holding is live while the agent runs and the running agent added or renewed the
/// address since it started or was last resumed: what a killed predecessor left, or
/// what the kernel kept through a SIGSTOP, is not live until the agent renews it (it
/// renews a quarter lifetime apart, or removes it when it fenced).
fn holding_states(timeline: &Timeline, agent: &[AgentAt]) -> Vec<(bool, bool)> {
    let mut out = Vec::with_capacity(agent.len());
    let mut k = 0;
    let mut holds = false;
    let mut last_add = f64::NEG_INFINITY;
    for (step, a) in agent.iter().enumerate() {
        let t = step as f64 * STEP_MS;
        while k < timeline.len() && timeline[k].0 <= t {
            holds = timeline[k].1;
            if holds {
                last_add = timeline[k].0;
            }
            k += 1;
        }
        out.push((holds, holds && a.running && last_add >= a.running_since_ms));
    }
    out
}

fn inside(intervals: &[(f64, f64)], t: f64) -> bool {
    intervals.iter().any(|&(a, b)| a <= t && t <= b)
}

/// Folds the observations into the report's counters (pure).
pub fn analyze(obs: &Observations) -> (Counters, Findings) {
    let steps = (obs.end_ms / STEP_MS).max(0.0) as usize + 1;
    let n = obs.members;
    let agents: Vec<Vec<AgentAt>> = (0..n)
        .map(|i| agent_states(obs.procs.get(i).map_or(&[][..], |p| p), steps))
        .collect();
    let quorum = n / 2 + 1;
    let healthy: Vec<bool> = (0..steps)
        .map(|s| {
            let t = s as f64 * STEP_MS;
            (0..n)
                .filter(|&i| {
                    agents[i][s].running && !inside(obs.impaired.get(i).map_or(&[][..], |v| v), t)
                })
                .count()
                >= quorum
        })
        .collect();
    let mut c = Counters::default();
    let mut dead = Findings::default();
    for (v, timelines) in obs.holdings.iter().enumerate() {
        let states: Vec<Vec<(bool, bool)>> = (0..n)
            .map(|i| {
                let empty = Timeline::new();
                holding_states(timelines.get(i).unwrap_or(&empty), &agents[i])
            })
            .collect();
        let mut was_double = false;
        let mut ownerless_since: Option<f64> = None;
        let mut holder: Option<usize> = None;
        let mut orphaned = vec![false; n];
        for s in 0..steps {
            let t = s as f64 * STEP_MS;
            let live: Vec<usize> = (0..n).filter(|&i| states[i][s].1).collect();
            let any = (0..n).filter(|&i| states[i][s].0).count();
            // Safety: two live agents' namespaces hold the VIP.
            let double = live.len() >= 2;
            if double && !was_double {
                dead.double_holder_at
                    .push((v + 1, t, 0.0, live.iter().map(|i| i + 1).collect()));
            }
            if double && let Some(last) = dead.double_holder_at.last_mut() {
                last.2 += STEP_MS;
            }
            was_double = double;
            if any >= 2 && !double {
                dead.dead_agent_overlap_ms += STEP_MS;
            }
            // Orphans: held while the agent has been down longer than the lifetime.
            for i in 0..n {
                let a = agents[i][s];
                let orphan = states[i][s].0
                    && !a.running
                    && t - a.down_since_ms > obs.lifetime_ms + LIFETIME_SLACK.as_millis() as f64;
                if orphan && !orphaned[i] {
                    c.orphaned_vips += 1;
                }
                orphaned[i] = orphan;
            }
            // Liveness: a quorate healthy set and nobody live holds the VIP.
            if healthy[s] && live.is_empty() {
                let since = *ownerless_since.get_or_insert(t);
                c.ownerless_quorate_ms_max = c.ownerless_quorate_ms_max.max(t - since);
            } else {
                ownerless_since = None;
            }
            // Moves: the one live holder differs from the previous one.
            if let [only] = live[..] {
                if holder.is_some_and(|h| h != only) {
                    c.moves += 1;
                    if !inside(&obs.explained, t) {
                        c.unexplained_moves += 1;
                    }
                }
                holder = Some(only);
            }
        }
        for (t, answerers) in obs.split_brain.get(v).map_or(&[][..], |x| x) {
            let s = ((*t / STEP_MS).max(0.0) as usize).min(steps - 1);
            let all_live = answerers
                .iter()
                .all(|&node| node >= 1 && node <= n && states[node - 1][s].1);
            if all_live {
                c.split_brain_intervals += 1;
                dead.split_brain_at.push((v + 1, *t, answerers.clone()));
            } else {
                dead.dead_agent_split_brain_intervals += 1;
            }
        }
    }
    c.double_holders = dead
        .double_holder_at
        .iter()
        .filter(|(_, _, length, _)| *length > SKEW_TOLERANCE_MS)
        .count() as u64;
    c.ownerless_quorate_ms_max = c.ownerless_quorate_ms_max.round();
    (c, dead)
}

/// The counters `analyze` computes (the report without seed, duration and faults).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    pub split_brain_intervals: u64,
    pub double_holders: u64,
    pub ownerless_quorate_ms_max: f64,
    pub moves: u64,
    pub unexplained_moves: u64,
    pub orphaned_vips: u64,
}

/// How to torture.
#[derive(Debug, Clone)]
pub struct TortureOptions {
    pub seed: u64,
    pub duration: Duration,
    /// Members; `None` lets the seed choose 3 or 5.
    pub members: Option<usize>,
    pub groups: usize,
    pub timing: FailoverTiming,
    pub probe_interval: Duration,
    pub exe: PathBuf,
    pub work_dir: PathBuf,
}

/// The whole outcome of a run.
#[derive(Debug, Clone)]
pub struct TortureOutcome {
    pub report: TortureReport,
    pub findings: Findings,
    pub members: usize,
    pub schedule: Vec<Fault>,
    /// At the end every VIP was held by exactly one member, its group's first
    /// preferred owner (within the convergence bound).
    pub converged: bool,
}

fn addresses(nodes: &[usize]) -> Vec<IpAddr> {
    nodes
        .iter()
        .flat_map(|&n| [IpAddr::V4(node_v4(n)), IpAddr::V6(node_v6(n))])
        .collect()
}

/// The MAC of `ns`'s lab interface (`ip -o link show`: `… link/ether aa:bb:… brd …`).
fn mac_of(lab: &Lab, ns: &str) -> Result<String, LabError> {
    let out = lab.exec(ns, "ip", &["-o", "link", "show", IFACE])?;
    out.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .map(str::to_string)
        .ok_or_else(|| LabError::Invalid {
            what: "link output".into(),
            detail: out.trim().to_string(),
        })
}

fn ms_since(base: Instant) -> f64 {
    base.elapsed().as_secs_f64() * 1000.0
}

/// Runs the torture on a fresh lab.
pub fn run(opts: &TortureOptions) -> Result<TortureOutcome, LabError> {
    if opts.duration.is_zero() || opts.duration > MAX_DURATION {
        return Err(LabError::Invalid {
            what: "duration".into(),
            detail: format!(
                "{} s (1..={} s)",
                opts.duration.as_secs(),
                MAX_DURATION.as_secs()
            ),
        });
    }
    let members = opts.members.unwrap_or_else(|| members_for_seed(opts.seed));
    if !(1..=9).contains(&members) || !(1..=20).contains(&opts.groups) {
        return Err(LabError::Invalid {
            what: "torture size".into(),
            detail: format!("{members} members, {} groups (1..=9, 1..=20)", opts.groups),
        });
    }
    let imp = Impl::parse("failover", opts.timing.clone(), vec![])?;
    imp.check_available(&opts.exe)?;
    let faults = schedule(opts.seed, members, opts.duration, &opts.timing);
    let steps = actions(&faults, members);
    let mut lab = Lab::up(members)?;
    let dir = opts.work_dir.join(lab.prefix());
    std::fs::create_dir_all(&dir).map_err(|e| LabError::io(dir.display().to_string(), e))?;
    let result = run_in(&mut lab, &imp, opts, &dir, members, &faults, &steps);
    tear_down(&mut lab, &dir)?;
    let (obs, converged) = result?;
    let (c, findings) = analyze(&obs);
    Ok(TortureOutcome {
        report: TortureReport {
            seed: opts.seed,
            duration_s: opts.duration.as_secs(),
            faults: faults.len(),
            split_brain_intervals: c.split_brain_intervals,
            double_holders: c.double_holders,
            ownerless_quorate_ms_max: c.ownerless_quorate_ms_max,
            moves: c.moves,
            unexplained_moves: c.unexplained_moves,
            orphaned_vips: c.orphaned_vips,
        },
        findings,
        members,
        schedule: faults,
        converged,
    })
}

#[allow(clippy::too_many_arguments)]
fn run_in(
    lab: &mut Lab,
    imp: &Impl,
    opts: &TortureOptions,
    dir: &Path,
    members: usize,
    faults: &[Fault],
    steps: &[(Duration, Action)],
) -> Result<(Observations, bool), LabError> {
    let d = Duration::from_millis(opts.timing.dead_after_ms);
    let vips: Vec<_> = (1..=opts.groups).map(group_vip).collect();
    let nodes = lab.node_namespaces();
    let settle = Duration::from_secs(60);
    let echo_max = opts.duration + settle * 3;
    for i in 1..=members {
        let ns = lab.node_ns(i);
        lab.spawn(
            &ns,
            &opts.exe,
            &echo_args(ECHO_PORT, &format!("n{i}"), echo_max),
            None,
        )?;
    }
    let macs: Vec<String> = nodes
        .iter()
        .map(|ns| mac_of(lab, ns))
        .collect::<Result<_, _>>()?;
    imp.write_config_groups(dir, lab, &[], opts.groups)?;
    let mut pids = vec![0u32; members + 1];
    for (i, pid) in pids.iter_mut().enumerate().skip(1) {
        *pid = imp.start(lab, i, dir, &opts.exe)?;
    }
    wait_each_held_once(&nodes, &vips, settle)?;
    let samplers: Vec<VipSampler> = vips
        .iter()
        .map(|v| VipSampler::start(&nodes, &v.to_string()))
        .collect::<Result<_, _>>()?;
    // The probes end just after the torture (their summary and samples are written
    // when they end, so they cannot be cut short).
    let probe_length = opts.duration + Duration::from_secs(2);
    let client = lab.client_ns();
    let mut probes = Vec::new();
    for (k, vip) in vips.iter().enumerate() {
        let samples = dir.join(format!("probe-{k}.jsonl"));
        let mut args = vec![
            "lab".to_string(),
            "probe".into(),
            "--vip".into(),
            vip.to_string(),
            "--port".into(),
            ECHO_PORT.to_string(),
            "--interval-ms".into(),
            opts.probe_interval.as_millis().to_string(),
            "--duration-ms".into(),
            probe_length.as_millis().to_string(),
            "--samples".into(),
        ];
        args.push(samples.display().to_string());
        let started = Instant::now();
        probes.push((
            lab.spawn_piped(&client, &opts.exe, &args)?,
            samples,
            started,
        ));
    }
    let base = Instant::now();
    let offsets: Vec<f64> = samplers.iter().map(VipSampler::now_ms).collect();
    let mut procs: Vec<Vec<(f64, Proc)>> = vec![vec![(f64::NEG_INFINITY, Proc::Spawned)]; members];
    let mut impaired_since: Vec<Option<f64>> = vec![None; members];
    let mut impaired: Vec<Vec<(f64, f64)>> = vec![Vec::new(); members];
    let mut loads: Vec<CpuLoad> = Vec::new();
    for (at, action) in steps {
        let wait = at.saturating_sub(base.elapsed());
        std::thread::sleep(wait);
        let now = ms_since(base);
        tracing::info!(seed = opts.seed, at_ms = now, ?action, "torture action");
        match action {
            Action::Kill(list) => {
                let victims: Vec<u32> = list.iter().map(|&n| pids[n]).collect();
                fault::signal_all(&victims, Signal::Kill)?;
                for &n in list {
                    procs[n - 1].push((now, Proc::Killed));
                }
                // As a supervisor would, restart only once the old process is gone:
                // until then it may still hold the heartbeat port.
                fault::wait_exited(&victims, Duration::from_secs(5))?;
                lab.reap();
            }
            Action::Start(list) => {
                for &n in list {
                    pids[n] = imp.start(lab, n, dir, &opts.exe)?;
                    procs[n - 1].push((ms_since(base), Proc::Spawned));
                }
            }
            Action::Stop(n) => {
                fault::signal(pids[*n], Signal::Stop)?;
                procs[n - 1].push((now, Proc::Stopped));
            }
            Action::Cont(n) => {
                fault::signal(pids[*n], Signal::Cont)?;
                procs[n - 1].push((ms_since(base), Proc::Continued));
            }
            Action::Link(n, up) => {
                fault::set_link(&lab.node_ns(*n), IFACE, *up)?;
                mark(&mut impaired_since, &mut impaired, *n, !*up, now);
            }
            Action::Filter {
                node,
                peers,
                direction,
                loss_pct,
            } => {
                fault::apply_filter(
                    &lab.node_ns(*node),
                    &Filter {
                        peers: addresses(peers),
                        direction: *direction,
                        loss_pct: *loss_pct,
                    },
                )?;
                mark(&mut impaired_since, &mut impaired, *node, true, now);
            }
            Action::Clear(n) => {
                fault::clear_filter(&lab.node_ns(*n))?;
                mark(
                    &mut impaired_since,
                    &mut impaired,
                    *n,
                    false,
                    ms_since(base),
                );
            }
            Action::Cpu(length) => loads.push(CpuLoad::every_core(*length)),
        }
    }
    std::thread::sleep(opts.duration.saturating_sub(base.elapsed()));
    drop(loads);
    // Every fault healed itself before the quiet tail; the end state must be one
    // holder per VIP, each group on its first preferred member (all are up and
    // failback is immediate), reached within the liveness bound (with room for a
    // busy machine).
    let expected: Vec<String> = (1..=opts.groups)
        .map(|k| lab.node_ns(preferred_owner(k, members)))
        .collect();
    let deadline = Instant::now() + d * 3 + Duration::from_secs(10);
    let converged = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match wait_each_held_once(&nodes, &vips, left) {
            Ok(holders) if holders == expected => break true,
            Ok(holders) if Instant::now() >= deadline => {
                tracing::error!(
                    seed = opts.seed,
                    ?holders,
                    ?expected,
                    "torture ended on other owners"
                );
                break false;
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => {
                tracing::error!(seed = opts.seed, error = %e, "torture did not converge");
                break false;
            }
        }
    };
    let end_ms = ms_since(base);
    let mut holdings = Vec::new();
    for (sampler, offset) in samplers.into_iter().zip(&offsets) {
        let report = sampler.stop();
        holdings.push(
            report
                .timelines
                .into_iter()
                .map(|tl| tl.into_iter().map(|(at, h)| (at - offset, h)).collect())
                .collect(),
        );
    }
    for (n, since) in impaired_since.iter().enumerate() {
        if let Some(since) = since {
            impaired[n].push((*since, end_ms));
        }
    }
    let mut split_brain = Vec::new();
    for (child, samples_path, started) in probes {
        let offset = started.duration_since(base).as_secs_f64() * 1000.0;
        split_brain.push(split_brain_of(
            child,
            &samples_path,
            opts.probe_interval,
            offset,
            &macs,
            probe_length,
        )?);
    }
    let explained = faults
        .iter()
        .filter(|f| f.explains_moves())
        .map(|f| {
            let start = f.at.as_secs_f64() * 1000.0;
            let end = (f.at + f.length() + quiet_tail(&opts.timing)).as_secs_f64() * 1000.0;
            (start, end)
        })
        .collect();
    Ok((
        Observations {
            members,
            end_ms,
            lifetime_ms: (opts.timing.dead_after_ms.div_ceil(1000).max(1) * 1000) as f64,
            holdings,
            procs,
            impaired,
            explained,
            split_brain,
        },
        converged,
    ))
}

fn mark(
    since: &mut [Option<f64>],
    intervals: &mut [Vec<(f64, f64)>],
    node: usize,
    impaired: bool,
    now: f64,
) {
    let slot = &mut since[node - 1];
    match (impaired, *slot) {
        (true, None) => *slot = Some(now),
        (false, Some(start)) => {
            intervals[node - 1].push((start, now));
            *slot = None;
        }
        _ => {}
    }
}

/// Reads a probe's samples and returns its split-brain intervals with the nodes that
/// answered in them, times shifted by `offset_ms` into the torture's time.
fn split_brain_of(
    child: std::process::Child,
    samples_path: &Path,
    interval: Duration,
    offset_ms: f64,
    macs: &[String],
    length: Duration,
) -> Result<Vec<(f64, Vec<usize>)>, LabError> {
    let stdout = wait_output(child, length + Duration::from_secs(15))?;
    parse_summary(&stdout)?;
    let text = std::fs::read_to_string(samples_path)
        .map_err(|e| LabError::io(samples_path.display().to_string(), e))?;
    let samples: Vec<Sample> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let iv_us = interval.as_micros() as u64;
    let rec = probe::record_from_samples(&samples, iv_us);
    let (arp_sb, udp_sb) = probe::split_brain_intervals(&rec);
    let node_of_name = |name: &str| name.strip_prefix('n').and_then(|i| i.parse::<usize>().ok());
    let node_of_mac = |mac: &str| macs.iter().position(|m| m == mac).map(|i| i + 1);
    let by_seq: std::collections::BTreeMap<u64, &Sample> =
        samples.iter().map(|s| (s.seq, s)).collect();
    let mut out = Vec::new();
    for k in arp_sb.union(&udp_sb) {
        let mut answerers: Vec<usize> = Vec::new();
        if let Some(s) = by_seq.get(k) {
            answerers.extend(s.arp_macs.iter().filter_map(|m| node_of_mac(m)));
        }
        if udp_sb.contains(k) {
            for seq in [k.saturating_sub(1), *k, k + 1] {
                if let Some(node) = by_seq.get(&seq).and_then(|s| s.node.as_deref()) {
                    answerers.extend(node_of_name(node));
                }
            }
        }
        answerers.sort_unstable();
        answerers.dedup();
        let at = offset_ms + (*k * iv_us) as f64 / 1000.0;
        out.push((at, answerers));
    }
    Ok(out)
}

/// One fault as a JSON line, for `--print-schedule` and logs: offset and length in
/// ms, kind and nodes.
pub fn describe(fault: &Fault, members: usize) -> String {
    serde_json::json!({
        "at_ms": fault.at.as_millis() as u64,
        "length_ms": fault.length().as_millis() as u64,
        "kind": fault.kind_name(),
        "nodes": fault.nodes(members),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> FailoverTiming {
        FailoverTiming::default()
    }

    #[test]
    fn same_seed_same_schedule_other_seed_other_schedule() {
        let a = schedule(7, 5, Duration::from_secs(120), &timing());
        assert_eq!(a, schedule(7, 5, Duration::from_secs(120), &timing()));
        assert_ne!(a, schedule(8, 5, Duration::from_secs(120), &timing()));
        assert!(a.len() >= 20, "{} faults in 120 s", a.len());
        assert_eq!(members_for_seed(7), members_for_seed(7));
        assert!((0..20).map(members_for_seed).any(|m| m == 3));
        assert!((0..20).map(members_for_seed).any(|m| m == 5));
    }

    #[test]
    fn schedules_cover_every_kind_and_respect_their_bounds() {
        let t = timing();
        let d = Duration::from_millis(t.dead_after_ms);
        let mut kinds = std::collections::BTreeSet::new();
        for seed in 0..20 {
            let duration = Duration::from_secs(90);
            let faults = schedule(seed, 5, duration, &t);
            let mut busy: Vec<(usize, Duration, Duration)> = Vec::new();
            for f in &faults {
                kinds.insert(f.kind_name());
                assert!(f.at + f.length() <= duration - quiet_tail(&t), "{f:?}");
                if let FaultKind::Stop { length, .. } = f.kind {
                    assert!(length > d, "SIGSTOP longer than deadAfter");
                }
                if let FaultKind::Partition { isolated, .. } = &f.kind {
                    assert!(isolated.len() <= 2, "a minority of 5");
                }
                // No node carries two faults at once.
                for n in f.nodes(5) {
                    assert!(
                        !busy
                            .iter()
                            .any(|&(m, a, b)| m == n && a <= f.at && f.at < b),
                        "node {n} twice at {:?}",
                        f.at
                    );
                    busy.push((n, f.at, f.at + f.length()));
                }
            }
        }
        assert_eq!(kinds.len(), 9, "{kinds:?}");
    }

    #[test]
    fn actions_heal_what_they_break() {
        let faults = vec![
            Fault {
                at: Duration::from_secs(1),
                kind: FaultKind::CrashTakeover {
                    first: 1,
                    second: 2,
                    gap: Duration::from_secs(1),
                    down: Duration::from_secs(2),
                },
            },
            Fault {
                at: Duration::from_secs(2),
                kind: FaultKind::Partition {
                    isolated: vec![3],
                    length: Duration::from_secs(1),
                },
            },
        ];
        let acts = actions(&faults, 3);
        let at = |s: u64| Duration::from_secs(s);
        assert_eq!(acts[0], (at(1), Action::Kill(vec![1])));
        assert_eq!(acts[1], (at(2), Action::Kill(vec![2])));
        assert_eq!(
            acts[2],
            (
                at(2),
                Action::Filter {
                    node: 3,
                    peers: vec![1, 2],
                    direction: Direction::Both,
                    loss_pct: 100
                }
            )
        );
        assert_eq!(acts[3], (at(3), Action::Clear(3)));
        assert_eq!(acts[4], (at(4), Action::Start(vec![1, 2])));
        let loss = actions(
            &[Fault {
                at: at(0),
                kind: FaultKind::RandomLoss { length: at(1) },
            }],
            3,
        );
        assert!(loss.iter().any(|(_, a)| matches!(
            a,
            Action::Filter {
                loss_pct: 30,
                direction: Direction::Outbound,
                ..
            }
        )));
        assert_eq!(
            loss.iter()
                .filter(|(_, a)| matches!(a, Action::Clear(_)))
                .count(),
            3
        );
    }

    /// Three members, one VIP, 10 s: n1 holds it until killed at 2 s; n2 takes it
    /// at 3.2 s; the kernel removes n1's copy at 3.5 s.
    fn killed_owner() -> Observations {
        Observations {
            members: 3,
            end_ms: 10_000.0,
            lifetime_ms: 1000.0,
            holdings: vec![vec![
                vec![(-50.0, true), (3500.0, false)],
                vec![(-50.0, false), (3200.0, true)],
                vec![(-50.0, false)],
            ]],
            procs: vec![
                vec![(f64::NEG_INFINITY, Proc::Spawned), (2000.0, Proc::Killed)],
                vec![(f64::NEG_INFINITY, Proc::Spawned)],
                vec![(f64::NEG_INFINITY, Proc::Spawned)],
            ],
            impaired: vec![vec![], vec![], vec![]],
            explained: vec![(2000.0, 6000.0)],
            split_brain: vec![vec![(3300.0, vec![1, 2])]],
        }
    }

    #[test]
    fn a_killed_owner_is_a_dead_agent_overlap_not_a_double_holder() {
        let (c, dead) = analyze(&killed_owner());
        assert_eq!(c.double_holders, 0);
        assert_eq!(c.split_brain_intervals, 0);
        assert_eq!(dead.dead_agent_split_brain_intervals, 1);
        assert!((dead.dead_agent_overlap_ms - 301.0).abs() < 2.0, "{dead:?}");
        assert_eq!((c.moves, c.unexplained_moves, c.orphaned_vips), (1, 0, 0));
        assert!((c.ownerless_quorate_ms_max - 1200.0).abs() <= 1.0, "{c:?}");
    }

    #[test]
    fn two_live_holders_an_orphan_and_an_unexplained_move_are_counted() {
        let mut obs = killed_owner();
        // n1's copy outlives its lifetime (+ slack) by far: an orphan.
        obs.holdings[0][0] = vec![(-50.0, true), (6000.0, false)];
        let (c, _) = analyze(&obs);
        assert_eq!(c.orphaned_vips, 1);
        // n3 (live) takes the VIP while n2 still holds it, at 8 s, outside any window.
        let mut obs = killed_owner();
        obs.holdings[0][1] = vec![(-50.0, false), (3200.0, true), (8100.0, false)];
        obs.holdings[0][2] = vec![(-50.0, false), (8000.0, true)];
        obs.split_brain[0].push((8050.0, vec![2, 3]));
        let (c, _) = analyze(&obs);
        assert_eq!(c.double_holders, 1);
        assert_eq!(c.split_brain_intervals, 1);
        assert_eq!((c.moves, c.unexplained_moves), (2, 1));
    }

    #[test]
    fn a_stale_address_after_a_restart_is_not_live_until_renewed() {
        let mut obs = killed_owner();
        // n1 restarts at 2.5 s with its old address still there, n2 took over at 2.4 s;
        // n1's new agent removes the stale copy at 2.6 s.
        obs.procs[0].push((2500.0, Proc::Spawned));
        obs.holdings[0][0] = vec![(-50.0, true), (2600.0, false)];
        obs.holdings[0][1] = vec![(-50.0, false), (2400.0, true)];
        let (c, _) = analyze(&obs);
        assert_eq!(c.double_holders, 0);
        // A SIGSTOPped owner's copy is not live; after SIGCONT the kernel still has
        // it until the agent removes it (not live) or renews it (live again).
        let mut obs = killed_owner();
        obs.procs[0] = vec![
            (f64::NEG_INFINITY, Proc::Spawned),
            (2000.0, Proc::Stopped),
            (3300.0, Proc::Continued),
        ];
        obs.holdings[0][0] = vec![(-50.0, true), (3400.0, false)];
        let (c, dead) = analyze(&obs);
        assert_eq!(c.double_holders, 0, "removed after resuming");
        assert!(dead.dead_agent_overlap_ms >= 199.0, "{dead:?}");
        obs.holdings[0][0] = vec![(-50.0, true), (3350.0, true), (3400.0, false)];
        let (c, dead) = analyze(&obs);
        assert_eq!(
            c.double_holders, 1,
            "n1 renewed after resuming while n2 held"
        );
        assert_eq!(dead.double_holder_at, vec![(1, 3350.0, 50.0, vec![1, 2])]);
        // A handover whose two events arrived 2 ms out of order: listed, not counted.
        obs.holdings[0][0] = vec![(-50.0, true), (3350.0, true), (3352.0, false)];
        let (c, dead) = analyze(&obs);
        assert_eq!(c.double_holders, 0);
        assert_eq!(dead.double_holder_at, vec![(1, 3350.0, 2.0, vec![1, 2])]);
    }

    #[test]
    fn ownerless_counts_only_with_a_healthy_majority() {
        let mut obs = killed_owner();
        // n2 is cut off from 1.5 s to 5 s: with n1 dead no majority is healthy.
        obs.impaired[1] = vec![(1500.0, 5000.0)];
        obs.holdings[0][1] = vec![(-50.0, false), (5400.0, true)];
        let (c, _) = analyze(&obs);
        assert!((c.ownerless_quorate_ms_max - 400.0).abs() <= 3.0, "{c:?}");
    }

    #[test]
    fn preferred_owners_follow_the_lab_config() {
        let y = crate::lab::impls::failover_yaml_groups(5, &timing(), &[], 7);
        let (_, groups) = crate::api::load_documents(&y).unwrap();
        for (k, g) in groups.iter().enumerate() {
            assert_eq!(
                g.spec.preferred_owners[0],
                format!("n{}", preferred_owner(k + 1, 5))
            );
        }
    }

    #[test]
    fn the_report_has_exactly_the_issue_keys() {
        let r = TortureReport {
            seed: 1,
            duration_s: 60,
            faults: 3,
            split_brain_intervals: 0,
            double_holders: 0,
            ownerless_quorate_ms_max: 1200.0,
            moves: 4,
            unexplained_moves: 0,
            orphaned_vips: 0,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"seed":1,"duration_s":60,"faults":3,"split_brain_intervals":0,"double_holders":0,"ownerless_quorate_ms_max":1200.0,"moves":4,"unexplained_moves":0,"orphaned_vips":0}"#
        );
        assert!(!r.unsafe_run());
        assert!(
            TortureReport {
                orphaned_vips: 1,
                ..r
            }
            .unsafe_run()
        );
    }
}
