//! The order in which a group's resources come online and go offline: the
//! resources of a ResourceGroup sorted topologically by `dependsOn` (a resource
//! after everything it depends on), ties kept in spec order. Offline is the same
//! list backwards, so nothing goes down while something that depends on it is up.
//!
//! Owns that order and the per-resource description the agent runs. It is pure: it
//! must never start anything, and never accept what `api`'s validation rejects (a
//! cycle or an unknown target is a validation error before this runs; should one
//! reach it anyway, it is an error here too, never a partial order).

use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use super::model::VirtualIp;

/// What kind of resource the agent runs, with what it needs to run it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourceKind {
    /// A virtual IP the owner adds and announces.
    VirtualIp(VirtualIp),
    /// A Deployment/StatefulSet to pin on the owner: accepted, reported, not run by
    /// the agent in this release (workloads that follow the owner come with the
    /// next milestone).
    Workload,
    /// A probe the owner runs, off the heartbeat path.
    HealthCheck(CheckPlan),
    /// A command the owner starts, watches and stops (standalone only).
    Process(ProcessPlan),
}

impl ResourceKind {
    /// Whether the agent runs resources of this kind (the others are reported as
    /// [`NOT_RUN`](super::report::NOT_RUN)).
    pub fn is_run(&self) -> bool {
        !matches!(self, ResourceKind::Workload)
    }

    /// The kind's name as the spec spells it (logs, metrics).
    pub fn label(&self) -> &'static str {
        match self {
            ResourceKind::VirtualIp(_) => "virtualIP",
            ResourceKind::Workload => "workload",
            ResourceKind::HealthCheck(_) => "healthCheck",
            ResourceKind::Process(_) => "process",
        }
    }

    /// How often a failure of this resource is repaired in place before the group
    /// fails over; `None` for kinds that do not fail while online.
    pub fn restart_policy(&self) -> Option<RestartPolicy> {
        match self {
            ResourceKind::HealthCheck(check) => Some(check.restart),
            ResourceKind::Process(process) => Some(process.restart),
            ResourceKind::VirtualIp(_) | ResourceKind::Workload => None,
        }
    }
}

/// Restarts in place allowed within a sliding window before the group fails over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Restarts within `period`; the next failure fails the group over.
    pub limit: u32,
    pub period: Duration,
}

/// What a health check probes, with its host already chosen (its own, else the
/// group's first VIP, else localhost).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbePlan {
    /// A TCP connection opens.
    Tcp { host: String, port: u16 },
    /// An HTTP GET answers with a status in `statuses`.
    Http {
        host: String,
        port: u16,
        path: String,
        statuses: RangeInclusive<u16>,
    },
    /// A command exits 0.
    Exec { argv: Vec<String> },
}

/// A health check as the owner runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckPlan {
    pub probe: ProbePlan,
    pub interval: Duration,
    pub timeout: Duration,
    /// Failed probes in a row that make the check fail (at least 1).
    pub failure_threshold: u32,
    pub restart: RestartPolicy,
}

/// A supervised process as the owner runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessPlan {
    /// Program and arguments (`command` then `args`).
    pub argv: Vec<String>,
    /// Set on top of the agent's environment.
    pub env: Vec<(String, String)>,
    pub working_dir: Option<PathBuf>,
    /// SIGTERM to SIGKILL, already cut to the step timeout.
    pub stop_grace: Duration,
    pub restart: RestartPolicy,
}

/// A group's transition hook as the agent runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookPlan {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Longest one run may take.
    pub timeout: Duration,
}

/// One resource of a group as the agent runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedResource {
    /// Name, unique in the group.
    pub name: String,
    /// Names of the resources that must be online before it.
    pub depends_on: Vec<String>,
    pub kind: ResourceKind,
}

impl fmt::Display for PlannedResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.kind.label())
    }
}

/// Why resources cannot be put in order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("resource {resource:?} depends on {target:?}, which the group does not have")]
    UnknownTarget { resource: String, target: String },
    #[error("dependency cycle among {0:?}")]
    Cycle(Vec<String>),
}

/// The resources in start order: each after everything it depends on; among the
/// resources whose dependencies are all placed, the first in spec order goes first
/// (so a group without `dependsOn` starts in spec order, as it always did).
pub fn start_order(resources: Vec<PlannedResource>) -> Result<Vec<PlannedResource>, PlanError> {
    let index: BTreeMap<&str, usize> = resources
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.as_str(), i))
        .collect();
    let mut waiting_on = vec![0usize; resources.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); resources.len()];
    for (i, r) in resources.iter().enumerate() {
        for target in &r.depends_on {
            let &t = index
                .get(target.as_str())
                .ok_or_else(|| PlanError::UnknownTarget {
                    resource: r.name.clone(),
                    target: target.clone(),
                })?;
            waiting_on[i] += 1;
            dependents[t].push(i);
        }
    }
    let mut order = Vec::with_capacity(resources.len());
    let mut placed = vec![false; resources.len()];
    // Quadratic in the group's resources (at most a few dozen): the lowest ready
    // index each round keeps ties in spec order without a priority queue.
    while order.len() < resources.len() {
        let Some(next) = (0..resources.len()).find(|&i| !placed[i] && waiting_on[i] == 0) else {
            let stuck = (0..resources.len())
                .filter(|&i| !placed[i])
                .map(|i| resources[i].name.clone())
                .collect();
            return Err(PlanError::Cycle(stuck));
        };
        placed[next] = true;
        order.push(next);
        for &d in &dependents[next] {
            waiting_on[d] -= 1;
        }
    }
    let mut slots: Vec<Option<PlannedResource>> = resources.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(name: &str, depends_on: &[&str]) -> PlannedResource {
        PlannedResource {
            name: name.to_owned(),
            depends_on: depends_on.iter().map(|d| (*d).to_owned()).collect(),
            kind: ResourceKind::Workload,
        }
    }

    fn names(order: &[PlannedResource]) -> Vec<&str> {
        order.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn without_dependencies_the_spec_order_stays() {
        let order = start_order(vec![
            resource("a", &[]),
            resource("b", &[]),
            resource("c", &[]),
        ])
        .unwrap();
        assert_eq!(names(&order), ["a", "b", "c"]);
    }

    #[test]
    fn a_resource_starts_after_what_it_depends_on() {
        // vip depends on the service, the check on the vip: written backwards.
        let order = start_order(vec![
            resource("check", &["vip"]),
            resource("vip", &["service"]),
            resource("service", &[]),
        ])
        .unwrap();
        assert_eq!(names(&order), ["service", "vip", "check"]);
        let stop: Vec<&str> = names(&order).into_iter().rev().collect();
        assert_eq!(stop, ["check", "vip", "service"]);
    }

    #[test]
    fn a_diamond_is_ordered_with_ties_in_spec_order() {
        let order = start_order(vec![
            resource("top", &["left", "right"]),
            resource("right", &["base"]),
            resource("left", &["base"]),
            resource("base", &[]),
            resource("free", &[]),
        ])
        .unwrap();
        assert_eq!(names(&order), ["base", "right", "left", "top", "free"]);
    }

    #[test]
    fn every_resource_comes_after_its_dependencies_in_any_spec_order() {
        let spec = [
            resource("a", &[]),
            resource("b", &["a"]),
            resource("c", &["a", "b"]),
            resource("d", &["c"]),
            resource("e", &["b", "d"]),
        ];
        // Every rotation and its reverse.
        for k in 0..spec.len() {
            for reversed in [false, true] {
                let mut input = spec.to_vec();
                input.rotate_left(k);
                if reversed {
                    input.reverse();
                }
                let order = start_order(input).unwrap();
                let at = |n: &str| order.iter().position(|r| r.name == n).unwrap();
                for r in &order {
                    for d in &r.depends_on {
                        assert!(
                            at(d) < at(&r.name),
                            "{d} before {} in {:?}",
                            r.name,
                            names(&order)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_cycle_or_an_unknown_target_is_an_error() {
        assert_eq!(
            start_order(vec![
                resource("a", &["b"]),
                resource("b", &["a"]),
                resource("c", &[])
            ]),
            Err(PlanError::Cycle(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            start_order(vec![resource("a", &["ghost"])]),
            Err(PlanError::UnknownTarget {
                resource: "a".into(),
                target: "ghost".into()
            })
        );
    }
}
