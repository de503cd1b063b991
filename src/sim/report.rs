//! What runs found: one run's report, the aggregate of many runs (the JSON line of
//! `failover simulate`), the failed runs with their shrunk schedules, and the runner
//! of many seeds on several threads.

use std::fmt;
use std::time::Duration;

use super::SimConfig;
use super::schedule::{Fault, schedule, shrink};
use super::world::run;

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
