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
//!
//! Files: `config` (the shape of a run and the simulated cluster), `schedule` (fault
//! schedules and their shrinking), `world` (nodes, network, API server and witness on
//! a virtual clock), `invariants` (the checks above), `report` (what runs found, and
//! the runner of many seeds).

mod config;
mod invariants;
mod report;

pub mod rng;
mod schedule;
mod world;

pub use config::{DEFAULT_QUARANTINE, SimConfig, sim_model};
pub use report::{FailedRun, RunReport, Summary, simulate_many};
pub use schedule::failover_limit_for_seed;
pub use schedule::{Fault, FaultOp, schedule, shrink};
pub use world::run;

#[cfg(test)]
mod tests;
