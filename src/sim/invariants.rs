//! The ownership rules the simulator checks after every step (DESIGN.md section 5):
//! safety (one holder at a time; a frozen agent's lingering resources bounded by
//! their address lifetime), liveness (every group online within the bound, after
//! each fault and in the quiet tail) and stability (every move has a cause).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::placement::{QuorumMode, Reason};

use super::config::{group_name, node_name};
use super::world::{Ev, Proc, ResState, Resource, TAIL, World};

impl World {
    /// Whether the resources of `group` on node `n` are present at this instant.
    fn present(&self, n: usize, res: &Resource) -> bool {
        match self.nodes[n].proc {
            Proc::Running => true,
            Proc::Paused | Proc::Starved => self.now < res.kernel_until,
            Proc::Down => false,
        }
    }

    pub(super) fn check_safety(&mut self) {
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
    pub(super) fn check_move(&mut self, n: usize, group: &str, reason: Reason) {
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

    pub(super) fn check_liveness(&mut self, fault_index: usize, recheck: bool) {
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
        let mut components: Vec<Vec<usize>> = Vec::new();
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
                components.push(component);
            }
        }
        // Once a side of a witness split holds the witness vote (its engine is
        // quorate), only that side is promised to serve: the other cannot, also when
        // the holder is unable to run a group. While neither holds it, both stay
        // candidates, so a witness that grants nobody is still a liveness failure.
        if components.len() > 1 {
            let holding: Vec<Vec<usize>> = components
                .iter()
                .filter(|component| {
                    component
                        .iter()
                        .any(|&m| self.nodes[m].engine.as_ref().is_some_and(|e| e.quorate()))
                })
                .cloned()
                .collect();
            if !holding.is_empty() {
                components = holding;
            }
        }
        let quorate: Vec<usize> = components.concat();
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
    pub(super) fn over_limit(&self, group: &str) -> bool {
        let count = self.failovers.get(group).copied().unwrap_or(0);
        self.model
            .group(group)
            .and_then(|g| g.failover_limit)
            .is_some_and(|limit| count >= limit.max)
    }

    /// How long a planned handover takes, after which a liveness check looks again.
    pub(super) fn recheck_delay(&self) -> Duration {
        self.config.stop_time + self.config.start_time + 6 * self.config.max_delay
    }
}
