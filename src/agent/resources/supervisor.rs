//! The group supervisor: brings a group's resources online one step at a time in
//! start order (`contract::plan`, `dependsOn` first), takes them offline in the
//! reverse order, bounds every step by a timeout, and keeps each resource's state
//! (Offline / Starting / Online / Stopping / Failed) with its reason.
//!
//! Each kind of resource is run by a [`Driver`] (start, stop, and a forced clean-up
//! after a step that timed out); this module only sequences them, so a new kind
//! plugs in as a driver. Owns the per-resource states of the groups this node runs.
//! Must never start a resource before everything it depends on is online, never
//! take one offline while something that depends on it is online, and never wait on
//! a step longer than its timeout.

use std::fmt::Display;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::api::ResourceState;
use crate::contract::plan::PlannedResource;
use crate::contract::report::{ResourceReason, ResourceReport};

/// Runs one kind of resource (several kinds, dispatched on the resource's kind).
pub(super) trait Driver {
    /// What a started resource holds until it is stopped.
    type Running;
    type Error: Display;
    /// Brings `resource` online.
    async fn start(
        &mut self,
        group: &str,
        resource: &PlannedResource,
    ) -> Result<Self::Running, Self::Error>;
    /// Takes a started resource offline.
    async fn stop(
        &mut self,
        group: &str,
        resource: &PlannedResource,
        running: Self::Running,
    ) -> Result<(), Self::Error>;
    /// Removes whatever of `resource` a step that timed out may have left (the
    /// step's future was dropped with what it held).
    async fn clean(&mut self, group: &str, resource: &PlannedResource);
    /// How long a start or stop step of `resource` took (also one that failed or
    /// timed out), for the step histogram.
    fn took(&mut self, resource: &PlannedResource, step: Step, seconds: f64);
}

/// A step of a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Start,
    Stop,
}

impl Step {
    pub fn label(self) -> &'static str {
        match self {
            Step::Start => "start",
            Step::Stop => "stop",
        }
    }
}

/// One resource of a group on this node and its state.
#[derive(Debug)]
pub(super) struct Slot<R> {
    pub resource: PlannedResource,
    pub state: ResourceState,
    pub reason: ResourceReason,
    /// The error or timeout behind a failure; empty otherwise.
    pub message: String,
    /// Local restarts of the resource on this node.
    pub restarts: u32,
    running: Option<R>,
}

impl<R> Slot<R> {
    fn new(resource: PlannedResource) -> Self {
        let reason = if resource.kind.is_run() {
            ResourceReason::Stopped
        } else {
            ResourceReason::NotRunInThisRelease
        };
        Slot {
            resource,
            state: ResourceState::Offline,
            reason,
            message: String::new(),
            restarts: 0,
            running: None,
        }
    }

    /// What a started resource holds, while it is online.
    pub fn running(&self) -> Option<&R> {
        self.running.as_ref()
    }

    fn set(&mut self, state: ResourceState, reason: ResourceReason, message: String) {
        self.state = state;
        self.reason = reason;
        self.message = message;
    }

    /// Online, or accepted and not run: what depends on it may start.
    fn satisfied(&self) -> bool {
        self.state == ResourceState::Online || self.reason == ResourceReason::NotRunInThisRelease
    }

    fn report(&self) -> ResourceReport {
        let message = match (self.reason, self.message.is_empty()) {
            (ResourceReason::NotRunInThisRelease, true) => format!(
                "{} resources are not run by the agent in this release",
                self.resource.kind.label()
            ),
            _ => self.message.clone(),
        };
        ResourceReport {
            name: self.resource.name.clone(),
            state: self.state,
            reason: self.reason.code().to_owned(),
            message,
            restarts: self.restarts,
        }
    }
}

/// The resources of one group on this node, in start order.
#[derive(Debug)]
pub(super) struct GroupRun<R> {
    slots: Vec<Slot<R>>,
}

/// A resource that did not come online.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StartFailure {
    pub resource: String,
    pub reason: ResourceReason,
    pub message: String,
}

impl<R> GroupRun<R> {
    /// Every resource of `plan` (in start order) offline.
    pub fn new(plan: &[PlannedResource]) -> Self {
        GroupRun {
            slots: plan.iter().cloned().map(Slot::new).collect(),
        }
    }

    pub fn slots(&self) -> &[Slot<R>] {
        &self.slots
    }

    /// The states for the node Lease report, in start order.
    pub fn reports(&self) -> Vec<ResourceReport> {
        self.slots.iter().map(Slot::report).collect()
    }

    /// Brings every resource that is not online up, in start order, each step
    /// bounded by `timeout`. A resource whose dependency is not online is not
    /// started (`DependencyFailed`); one that fails is `Failed` with its reason.
    /// Returns the resources that did not come online (empty: all did).
    pub async fn start<D: Driver<Running = R>>(
        &mut self,
        driver: &mut D,
        group: &str,
        timeout: Duration,
    ) -> Vec<StartFailure> {
        let mut failures = Vec::new();
        for i in 0..self.slots.len() {
            let (done, rest) = self.slots.split_at_mut(i);
            let slot = &mut rest[0];
            if slot.state == ResourceState::Online || !slot.resource.kind.is_run() {
                continue;
            }
            let blocked = slot
                .resource
                .depends_on
                .iter()
                .find(|d| !done.iter().any(|s| &s.resource.name == *d && s.satisfied()));
            if let Some(dependency) = blocked {
                let message = format!("{dependency} is not online");
                warn!(group, resource = %slot.resource.name, dependency, "not started: a dependency is not online");
                slot.set(
                    ResourceState::Offline,
                    ResourceReason::DependencyFailed,
                    message.clone(),
                );
                failures.push(StartFailure {
                    resource: slot.resource.name.clone(),
                    reason: ResourceReason::DependencyFailed,
                    message,
                });
                continue;
            }
            slot.set(
                ResourceState::Starting,
                ResourceReason::Starting,
                String::new(),
            );
            let began = Instant::now();
            let outcome = tokio::time::timeout(timeout, driver.start(group, &slot.resource)).await;
            let ms = began.elapsed().as_secs_f64() * 1e3;
            driver.took(&slot.resource, Step::Start, ms / 1e3);
            let (reason, message) = match outcome {
                Ok(Ok(running)) => {
                    slot.running = Some(running);
                    slot.set(
                        ResourceState::Online,
                        ResourceReason::Started,
                        String::new(),
                    );
                    info!(group, resource = %slot.resource.name, kind = slot.resource.kind.label(), step = "start", ms, "resource online");
                    continue;
                }
                Ok(Err(error)) => (ResourceReason::StartFailed, error.to_string()),
                Err(_) => {
                    driver.clean(group, &slot.resource).await;
                    (
                        ResourceReason::StartTimedOut,
                        format!("start took longer than {timeout:?}"),
                    )
                }
            };
            error!(group, resource = %slot.resource.name, kind = slot.resource.kind.label(), step = "start", ms, reason = reason.code(), why = %message, "resource failed to come online");
            slot.set(ResourceState::Failed, reason, message.clone());
            failures.push(StartFailure {
                resource: slot.resource.name.clone(),
                reason,
                message,
            });
        }
        failures
    }

    /// Takes every started resource offline in reverse start order, each step
    /// bounded by `timeout` (a stop that overruns is cleaned up by force). A failed
    /// resource keeps its state and reason; the others end `Offline`.
    pub async fn stop<D: Driver<Running = R>>(
        &mut self,
        driver: &mut D,
        group: &str,
        timeout: Duration,
    ) {
        for slot in self.slots.iter_mut().rev() {
            stop_slot(slot, driver, group, timeout).await;
        }
    }

    /// The resources a new plan takes offline: those it drops or changes, and
    /// everything that depends on them, directly or not.
    pub fn going(&self, plan: &[PlannedResource]) -> Vec<String> {
        self.with_dependents(|slot| !plan.contains(&slot.resource))
    }

    /// The resources a restart of `targets` takes offline and brings back: the
    /// targets and everything that depends on them.
    pub fn restart_set(&self, targets: &[String]) -> Vec<String> {
        self.with_dependents(|slot| targets.contains(&slot.resource.name))
    }

    /// The resources that `first` picks and everything that depends on them,
    /// directly or not, in start order.
    fn with_dependents(&self, first: impl Fn(&Slot<R>) -> bool) -> Vec<String> {
        let mut picked: Vec<String> = Vec::new();
        // In start order a resource comes after its dependencies: one pass finds
        // everything that depends on a picked one.
        for slot in &self.slots {
            if first(slot) || slot.resource.depends_on.iter().any(|d| picked.contains(d)) {
                picked.push(slot.resource.name.clone());
            }
        }
        picked
    }

    /// Restarts `targets` in place: they and everything that depends on them go
    /// offline in reverse start order, then whatever is not online comes up in
    /// start order. Each target's restart count goes up. Returns the resources
    /// that did not come back.
    pub async fn restart<D: Driver<Running = R>>(
        &mut self,
        targets: &[String],
        driver: &mut D,
        group: &str,
        timeout: Duration,
    ) -> Vec<StartFailure> {
        let going = self.restart_set(targets);
        for slot in self.slots.iter_mut().rev() {
            if going.contains(&slot.resource.name) {
                stop_slot(slot, driver, group, timeout).await;
            }
            if targets.contains(&slot.resource.name) {
                slot.restarts += 1;
            }
        }
        self.start(driver, group, timeout).await
    }

    /// Marks an online resource as failed while it runs (its check failed or its
    /// process exited): it stays held until it is stopped or restarted.
    pub fn failed(&mut self, resource: &str, reason: ResourceReason, message: String) {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.resource.name == resource) {
            slot.set(ResourceState::Failed, reason, message);
        }
    }

    /// Adopts a new plan for a group that stays online here: resources it dropped
    /// or changed go offline with everything that depends on them (reverse of the
    /// old order), then whatever is not online comes up in the new order. The other
    /// resources are not touched.
    pub async fn replan<D: Driver<Running = R>>(
        &mut self,
        plan: &[PlannedResource],
        driver: &mut D,
        group: &str,
        timeout: Duration,
    ) -> Vec<StartFailure> {
        let going = self.going(plan);
        let mut old = std::mem::take(&mut self.slots);
        for slot in old.iter_mut().rev() {
            if going.contains(&slot.resource.name) {
                info!(group, resource = %slot.resource.name, "resource removed or changed, or depends on one that is");
                stop_slot(slot, driver, group, timeout).await;
            }
        }
        self.slots = plan
            .iter()
            .map(|resource| {
                match old
                    .iter()
                    .position(|s| &s.resource == resource && s.running.is_some())
                {
                    Some(i) => old.swap_remove(i),
                    None => Slot::new(resource.clone()),
                }
            })
            .collect();
        self.start(driver, group, timeout).await
    }
}

async fn stop_slot<R, D: Driver<Running = R>>(
    slot: &mut Slot<R>,
    driver: &mut D,
    group: &str,
    timeout: Duration,
) {
    let Some(running) = slot.running.take() else {
        return;
    };
    slot.set(
        ResourceState::Stopping,
        ResourceReason::Stopping,
        String::new(),
    );
    let began = Instant::now();
    let outcome = tokio::time::timeout(timeout, driver.stop(group, &slot.resource, running)).await;
    let ms = began.elapsed().as_secs_f64() * 1e3;
    driver.took(&slot.resource, Step::Stop, ms / 1e3);
    let message = match outcome {
        Ok(Ok(())) => {
            info!(group, resource = %slot.resource.name, kind = slot.resource.kind.label(), step = "stop", ms, "resource offline");
            String::new()
        }
        Ok(Err(error)) => {
            error!(group, resource = %slot.resource.name, step = "stop", ms, error = %error, "resource stop failed");
            error.to_string()
        }
        Err(_) => {
            driver.clean(group, &slot.resource).await;
            error!(group, resource = %slot.resource.name, step = "stop", ms, "resource stop timed out; cleaned up by force");
            slot.set(
                ResourceState::Offline,
                ResourceReason::StopTimedOut,
                format!("stop took longer than {timeout:?}"),
            );
            return;
        }
    };
    slot.set(ResourceState::Offline, ResourceReason::Stopped, message);
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::contract::model::VirtualIp;
    use crate::contract::plan::{ResourceKind, start_order};
    use crate::contract::report::NOT_RUN;

    /// A driver that records every call and hangs or fails where told.
    #[derive(Default)]
    struct Recorder {
        calls: Arc<Mutex<Vec<String>>>,
        hang_start: Option<&'static str>,
        hang_stop: Option<&'static str>,
        fail_start: Option<&'static str>,
    }

    impl Driver for Recorder {
        type Running = String;
        type Error = String;
        async fn start(&mut self, _: &str, r: &PlannedResource) -> Result<String, String> {
            self.calls.lock().unwrap().push(format!("start {}", r.name));
            if self.hang_start == Some(r.name.as_str()) {
                std::future::pending::<()>().await;
            }
            if self.fail_start == Some(r.name.as_str()) {
                return Err("refused".into());
            }
            Ok(r.name.clone())
        }
        async fn stop(
            &mut self,
            _: &str,
            r: &PlannedResource,
            running: String,
        ) -> Result<(), String> {
            assert_eq!(running, r.name);
            self.calls.lock().unwrap().push(format!("stop {}", r.name));
            if self.hang_stop == Some(r.name.as_str()) {
                std::future::pending::<()>().await;
            }
            Ok(())
        }
        async fn clean(&mut self, _: &str, r: &PlannedResource) {
            self.calls.lock().unwrap().push(format!("clean {}", r.name));
        }
        fn took(&mut self, _: &PlannedResource, _: Step, _: f64) {}
    }

    impl Recorder {
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.calls.lock().unwrap())
        }
    }

    fn vip(name: &str, last: u8, depends_on: &[&str]) -> PlannedResource {
        PlannedResource {
            name: name.into(),
            depends_on: depends_on.iter().map(|d| (*d).to_owned()).collect(),
            kind: ResourceKind::VirtualIp(VirtualIp {
                address: [10, 0, 0, last].into(),
                prefix_len: 24,
                interface: None,
            }),
        }
    }

    fn plan() -> Vec<PlannedResource> {
        // Written in an order that is not the start order.
        start_order(vec![
            vip("front", 3, &["middle"]),
            vip("middle", 2, &["base"]),
            vip("base", 1, &[]),
            PlannedResource {
                name: "app".into(),
                depends_on: vec!["base".into()],
                kind: ResourceKind::Workload,
            },
        ])
        .unwrap()
    }

    fn states(run: &GroupRun<String>) -> Vec<(String, ResourceState, &'static str)> {
        run.slots()
            .iter()
            .map(|s| (s.resource.name.clone(), s.state, s.reason.code()))
            .collect()
    }

    const STEP: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn starts_in_dependency_order_and_stops_in_reverse() {
        let mut driver = Recorder::default();
        let mut run = GroupRun::new(&plan());
        assert!(run.start(&mut driver, "g", STEP).await.is_empty());
        assert_eq!(driver.take(), ["start base", "start middle", "start front"]);
        assert_eq!(
            states(&run),
            [
                ("base".into(), ResourceState::Online, "Started"),
                ("middle".into(), ResourceState::Online, "Started"),
                ("front".into(), ResourceState::Online, "Started"),
                ("app".into(), ResourceState::Offline, NOT_RUN),
            ]
        );
        run.stop(&mut driver, "g", STEP).await;
        assert_eq!(driver.take(), ["stop front", "stop middle", "stop base"]);
        assert!(
            run.slots()
                .iter()
                .all(|s| s.state == ResourceState::Offline)
        );
        let reports = run.reports();
        assert_eq!(reports[3].reason, NOT_RUN);
        assert!(reports[3].message.contains("workload"), "{reports:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_start_times_out_is_cleaned_and_blocks_its_dependents() {
        let mut driver = Recorder {
            hang_start: Some("middle"),
            ..Recorder::default()
        };
        let mut run = GroupRun::new(&plan());
        let began = Instant::now();
        let failures = run.start(&mut driver, "g", STEP).await;
        // Paused time: the timeout fired after exactly one step timeout.
        assert_eq!(began.elapsed(), STEP);
        assert_eq!(
            driver.take(),
            ["start base", "start middle", "clean middle"]
        );
        assert_eq!(
            failures
                .iter()
                .map(|f| (f.resource.as_str(), f.reason))
                .collect::<Vec<_>>(),
            [
                ("middle", ResourceReason::StartTimedOut),
                ("front", ResourceReason::DependencyFailed)
            ]
        );
        assert_eq!(run.slots()[1].state, ResourceState::Failed);
        run.stop(&mut driver, "g", STEP).await;
        assert_eq!(driver.take(), ["stop base"]);
        // The failure stays visible after the stop.
        assert_eq!(run.slots()[1].reason, ResourceReason::StartTimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_stop_times_out_and_the_rest_still_stops_in_order() {
        let mut driver = Recorder {
            hang_stop: Some("middle"),
            ..Recorder::default()
        };
        let mut run = GroupRun::new(&plan());
        assert!(run.start(&mut driver, "g", STEP).await.is_empty());
        driver.take();
        run.stop(&mut driver, "g", STEP).await;
        assert_eq!(
            driver.take(),
            ["stop front", "stop middle", "clean middle", "stop base"]
        );
        assert_eq!(run.slots()[1].reason, ResourceReason::StopTimedOut);
        assert_eq!(run.slots()[1].state, ResourceState::Offline);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_start_is_reported_with_its_error() {
        let mut driver = Recorder {
            fail_start: Some("base"),
            ..Recorder::default()
        };
        let mut run = GroupRun::new(&plan());
        let failures = run.start(&mut driver, "g", STEP).await;
        assert_eq!(failures[0].reason, ResourceReason::StartFailed);
        assert_eq!(failures[0].message, "refused");
        // Nothing that depends on it started.
        assert_eq!(driver.take(), ["start base"]);
        let report = &run.reports()[0];
        assert_eq!(
            (
                report.state,
                report.reason.as_str(),
                report.message.as_str()
            ),
            (ResourceState::Failed, "StartFailed", "refused")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_plan_touches_only_what_changed() {
        let mut driver = Recorder::default();
        let mut run = GroupRun::new(&plan());
        assert!(run.start(&mut driver, "g", STEP).await.is_empty());
        driver.take();
        // front goes, middle changes its address, top is new on top of middle.
        let next = start_order(vec![
            vip("top", 4, &["middle"]),
            vip("middle", 9, &["base"]),
            vip("base", 1, &[]),
        ])
        .unwrap();
        assert!(run.replan(&next, &mut driver, "g", STEP).await.is_empty());
        assert_eq!(
            driver.take(),
            ["stop front", "stop middle", "start middle", "start top"]
        );
        assert!(run.slots().iter().all(|s| s.state == ResourceState::Online));
        // A change below a resource that stays restarts that resource too, after it.
        let again = start_order(vec![
            vip("top", 4, &["middle"]),
            vip("middle", 9, &["base"]),
            vip("base", 7, &[]),
        ])
        .unwrap();
        assert!(run.replan(&again, &mut driver, "g", STEP).await.is_empty());
        assert_eq!(
            driver.take(),
            [
                "stop top",
                "stop middle",
                "stop base",
                "start base",
                "start middle",
                "start top"
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_takes_the_targets_and_their_dependents_down_and_up_again() {
        let mut driver = Recorder::default();
        let mut run = GroupRun::new(&plan());
        assert!(run.start(&mut driver, "g", STEP).await.is_empty());
        driver.take();
        run.failed("middle", ResourceReason::HealthCheckFailed, "no".into());
        let targets = ["middle".to_owned()];
        assert_eq!(run.restart_set(&targets), ["middle", "front"]);
        assert!(
            run.restart(&targets, &mut driver, "g", STEP)
                .await
                .is_empty()
        );
        // base (below) and app (beside) are not touched.
        assert_eq!(
            driver.take(),
            ["stop front", "stop middle", "start middle", "start front"]
        );
        let restarts: Vec<u32> = run.slots().iter().map(|s| s.restarts).collect();
        let names: Vec<&str> = run
            .slots()
            .iter()
            .map(|s| s.resource.name.as_str())
            .collect();
        assert_eq!(names, ["base", "middle", "front", "app"]);
        assert_eq!(restarts, [0, 1, 0, 0], "only the target counts a restart");
        assert!(
            run.slots()
                .iter()
                .filter(|s| s.resource.kind.is_run())
                .all(|s| (s.state, s.reason) == (ResourceState::Online, ResourceReason::Started))
        );
    }
}
