//! The simulated world: nodes with their agents (real [`Engine`]s), resources and
//! local clocks, the network between them, the simulated API server and witness, and
//! the event queue on the virtual clock that applies the fault schedule. The checks
//! of the ownership rules it calls after every step are in `invariants`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::Arc;
use std::time::Duration;

use std::net::SocketAddr;

use crate::engine::{DRIFT_ALLOWANCE, Engine, EngineConfig, Input, Output, StopCause, WitnessRef};
use crate::membership::Keyring;
use crate::placement::QuorumMode;
use crate::placement::{ClusterModel, Reason, UnableReason};

use super::SimConfig;
use super::config::{group_name, node_name, sim_model};
use super::report::RunReport;
use super::rng::Rng;
use super::schedule::{Fault, FaultOp, failover_limit_for_seed};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Proc {
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
pub(super) enum Pending {
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
        witness: WitnessRef,
        held_until: Option<Duration>,
        other_until: Option<Duration>,
    },
    Configure {
        model: Arc<ClusterModel>,
        hash: u64,
        witness: Option<WitnessRef>,
        clears: Arc<BTreeMap<String, u64>>,
    },
    Unable(BTreeMap<String, UnableReason>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ResState {
    Starting,
    Online,
    Stopping,
}

#[derive(Clone, Debug)]
pub(super) struct Resource {
    pub(super) state: ResState,
    /// True time the kernel drops the address unless renewed.
    pub(super) kernel_until: Duration,
    /// Its owner was frozen past its lease: the overlap is the kernel fence's.
    pub(super) lingering: bool,
}

pub(super) struct Node {
    pub(super) engine: Option<Engine>,
    pub(super) proc: Proc,
    /// Local clock: offset + rate × true time.
    offset: Duration,
    rate: f64,
    pub(super) resources: BTreeMap<String, Resource>,
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
    pub(super) unable: BTreeMap<String, UnableReason>,
    /// The index of the witness its configuration names ([`FaultOp::ChangeWitness`]).
    witness: u8,
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
pub(super) enum Ev {
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
        witness: WitnessRef,
        local_sent: Duration,
        incarnation: u64,
    },
    Configure {
        node: usize,
        model: Arc<ClusterModel>,
        hash: u64,
        witness: Option<WitnessRef>,
        clears: Arc<BTreeMap<String, u64>>,
    },
    Liveness {
        fault_index: usize,
        recheck: bool,
    },
}

pub(super) struct World {
    pub(super) config: SimConfig,
    faults: Vec<Fault>,
    rng: Rng,
    pub(super) now: Duration,
    seq: u64,
    queue: BinaryHeap<Reverse<(Duration, u64)>>,
    events: BTreeMap<u64, Ev>,
    pub(super) nodes: Vec<Node>,
    pub(super) model: ClusterModel,
    config_hash: u64,
    /// Links that drop everything: (from, to).
    pub(super) blocked: BTreeSet<(usize, usize)>,
    /// Outgoing loss per node, percent.
    pub(super) loss: BTreeMap<usize, u8>,
    duplicate: f64,
    keys: Keyring,
    /// With `record`: per group, the node and epoch its record names.
    pub(super) records: BTreeMap<String, (usize, u64)>,
    /// With `record`: per (node, group), the epoch that node's current incarnation
    /// wrote into the record.
    written: BTreeMap<(usize, String), u64>,
    /// With `record`: the API server answers no record request in [from, until).
    pub(super) api_down: Option<(Duration, Duration)>,
    /// Per witness: the node that holds its vote, until when (true time).
    witnesses: BTreeMap<WitnessRef, (usize, Duration)>,
    /// Last time each node was touched by a fault (true time).
    pub(super) impaired_at: BTreeMap<usize, Duration>,
    pub(super) last_config_change: Option<Duration>,
    /// Per group: the last node that had it online, and when a holder failed.
    pub(super) last_online: BTreeMap<String, usize>,
    /// Per group: the holder that failed and when, until another node has it online.
    failed_at: BTreeMap<String, (usize, Duration)>,
    /// Per group: the last planned release (node, reason, true time).
    pub(super) released: BTreeMap<String, (usize, Reason, Duration)>,
    pub(super) overlap_since: BTreeMap<String, Duration>,
    /// Check safety even with quorum `none` (to prove the checker sees split brain).
    pub(super) force_safety_check: bool,
    /// Every start: when, where, which group, why.
    pub(super) starts: Vec<(Duration, usize, String, Reason)>,
    /// The quiet tail already showed a liveness violation.
    pub(super) tail_failed: bool,
    /// Per group: the clear-failures token of the last clear.
    pub(super) clears: BTreeMap<String, u64>,
    /// Per group: starts that were failovers since the last clear.
    pub(super) failovers: BTreeMap<String, u32>,
    pub(super) report: RunReport,
}

/// The `fault_index` of the quiet tail's liveness checks.
pub(super) const TAIL: usize = usize::MAX;

impl World {
    pub(super) fn new(config: SimConfig, seed: u64, faults: &[Fault]) -> Self {
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
                    witness: 0,
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
            witnesses: BTreeMap::new(),
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

    pub(super) fn at(&mut self, t: Duration, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq)));
        self.events.insert(self.seq, ev);
    }

    /// When the quiet tail begins: every fault repaired.
    pub(super) fn repair_at(&self) -> Duration {
        let last = self.faults.last().map(|f| f.at).unwrap_or_default();
        last + self.config.liveness_bound() + self.config.dead_after * 2
    }

    /// When every group must be online in the quiet tail: an agent rebooted at
    /// repair gives no vote for `deadAfter` (an earlier incarnation's votes may still
    /// count), then the liveness bound applies, whatever happened before.
    pub(super) fn converged_by(&self) -> Duration {
        self.repair_at() + self.config.dead_after + self.config.liveness_bound()
    }

    /// End of the run: the quiet tail lasts a while after convergence, so that a
    /// group that comes online and is lost again (a stall after a fence) is seen.
    pub(super) fn end(&self) -> Duration {
        self.converged_by() + self.config.dead_after * 3 + self.config.interval * 10
    }

    pub(super) fn run(&mut self) {
        let end = self.end();
        self.at(self.repair_at(), Ev::Repair);
        self.run_until(end);
    }

    /// Processes events up to virtual time `end`.
    pub(super) fn run_until(&mut self, end: Duration) {
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
                witness,
                local_sent,
                incarnation,
            } => {
                if self.alive_incarnation(node, incarnation) {
                    let (held_until, other_until) = match self.witnesses.get(&witness) {
                        Some(&(holder, until)) if holder != node && until > self.now => {
                            let local_until = self.nodes[node].local(until);
                            (None, Some(local_until))
                        }
                        _ => {
                            self.witnesses
                                .insert(witness, (node, self.now + self.config.dead_after));
                            let held =
                                local_sent + self.config.dead_after.mul_f64(1.0 - DRIFT_ALLOWANCE);
                            (Some(held), None)
                        }
                    };
                    self.deliver(
                        node,
                        Pending::Witness {
                            witness,
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
                witness,
                clears,
            } => self.deliver(
                node,
                Pending::Configure {
                    model,
                    hash,
                    witness,
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
            // The simulated network has one link between every two nodes.
            Pending::Datagram(bytes) => self.feed(
                n,
                Input::Datagram {
                    bytes: &bytes,
                    link: 0,
                },
            ),
            Pending::Online(group) => self.feed(n, Input::Online { group }),
            Pending::Offline(group) => self.feed(n, Input::Offline { group }),
            Pending::Recorded { group, epoch } => self.feed(n, Input::Recorded { group, epoch }),
            Pending::Superseded { group, epoch } => {
                self.feed(n, Input::Superseded { group, epoch })
            }
            Pending::Witness {
                witness,
                held_until,
                other_until,
            } => self.feed(
                n,
                Input::Witness {
                    witness,
                    held_until,
                    other_until,
                },
            ),
            Pending::Configure {
                model,
                hash,
                witness,
                clears,
            } => {
                // As the agent does: the configuration, then its clear values.
                self.feed(
                    n,
                    Input::Configure {
                        model,
                        hash,
                        witness,
                    },
                );
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
        // A restarted agent reads its own configuration: it knows its witness only.
        let (hash, witness) = (self.node_hash(n), self.witness_ref(n));
        let node = &mut self.nodes[n];
        let engine = Engine::new(
            &node_name(n),
            Arc::new(self.model.clone()),
            hash,
            witness,
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
            FaultOp::ChangeWitness(n) => {
                self.nodes[n].witness = self.nodes[n].witness.wrapping_add(1);
                self.last_config_change = Some(self.now);
                self.send_config(n);
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
        for n in 0..self.nodes.len() {
            self.send_config(n);
        }
    }

    /// Sends node `n` its configuration: the cluster's, with the witness its own
    /// names. It arrives a little later, but each node gets the configurations in
    /// the order they were made (a watch does).
    fn send_config(&mut self, n: usize) {
        let at = (self.now + self.rng.between(Duration::ZERO, self.config.max_delay * 4))
            .max(self.nodes[n].config_due);
        self.nodes[n].config_due = at;
        let event = Ev::Configure {
            node: n,
            model: Arc::new(self.model.clone()),
            hash: self.node_hash(n),
            witness: self.witness_ref(n),
            clears: Arc::new(self.clears.clone()),
        };
        self.at(at, event);
    }

    /// The hash of node `n`'s configuration: the cluster's version and its witness.
    fn node_hash(&self, n: usize) -> u64 {
        self.config_hash << 8 | u64::from(self.nodes[n].witness)
    }

    /// The witness node `n`'s configuration names: `failover witness` number
    /// `witness` (a documentation address per number).
    fn witness_ref(&self, n: usize) -> Option<WitnessRef> {
        (self.model.quorum == QuorumMode::Witness).then(|| {
            let last = self.nodes[n].witness.wrapping_add(1);
            WitnessRef::Process(SocketAddr::from(([192, 0, 2, last], 9000)))
        })
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
            Output::WitnessRequest { witness } => {
                let delay = self.api_delay();
                let local_sent = self.nodes[n].local(self.now);
                self.at(
                    self.now + delay,
                    Ev::Witness {
                        node: n,
                        witness,
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
}

/// Runs one simulation of `faults` with network randomness from `seed`.
pub fn run(config: &SimConfig, seed: u64, faults: &[Fault]) -> RunReport {
    let mut world = World::new(config.clone(), seed, faults);
    world.run();
    world.report
}
