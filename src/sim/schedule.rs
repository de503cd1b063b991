//! Fault schedules: a random one per seed, and the shrinking of a failing one to the
//! fewest faults that still show its violation.

use std::fmt;
use std::time::Duration;

use crate::placement::{FailoverLimit, UnableReason};

use super::SimConfig;
use super::report::RunReport;
use super::rng::Rng;
use super::world::run;

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
    /// Witness quorum: this member's configuration alone (its own file, standalone)
    /// names the next witness. Scripted only: the random schedules never change the
    /// witness (a restart during a change is the documented limit of the joint rule,
    /// see `engine::witnesses`).
    ChangeWitness(usize),
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
