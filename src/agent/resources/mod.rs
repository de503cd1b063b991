//! The resource side of the agent: brings the resources of the groups this node
//! runs online and offline, keeps them alive while it holds them, and tells which
//! groups this node cannot host.
//!
//! [`Resources`] is the one seam between the event loop and a group's resources:
//! the loop calls [`Resources::start`], [`Resources::renew`] and [`Resources::stop`]
//! when the engine says so, [`Resources::reconfigure`] when the configuration
//! changes, and feeds [`Resources::unable`] back to the engine. A group's resources
//! come online in dependency order and go offline in reverse, one step at a time
//! with a timeout (`supervisor.rs`), each kind run by a driver ([`NodeDrivers`]):
//! virtual IPs (`vips.rs`) with their announcer (`announce.rs`), the links of
//! their interfaces watched (`interfaces.rs`); health checks (`health.rs`) and
//! supervised processes (`process.rs`), each watched by a task of its own off the
//! heartbeat path, which reports a failure as a [`ResourceEvent`]; `workload`
//! resources are reported as not run in this release. A failure is repaired in
//! place ([`Resources::repair`]: restart within the resource's `restartLimit`)
//! or, past the limit, makes the group unable here so that it fails over.
//! `hook.rs` runs the transition hook for the event loop.
//!
//! Owns the resources of this node's groups from their start to their stop. Must
//! never decide whether this node runs a group (the engine does), never start one
//! the loop did not ask for, and never keep anything of a group once its stop
//! returned. Every operation is awaited by the event loop: its order relative to
//! the engine's inputs is what keeps two nodes from holding a VIP at once.

mod announce;
pub mod health;
pub mod hook;
mod interfaces;
pub mod process;
mod supervisor;
#[cfg(test)]
mod tests;
mod vips;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use self::health::{Checker, Health, Probe, Schedule};
use self::interfaces::Interfaces;
use self::process::{CommandSpec, Exit, ProcessError, Stopped, Watched};
use self::supervisor::{Driver, GroupRun, Step};
use self::vips::{Announcer, Vips};
use super::metrics::{Metrics, Telemetry};
use super::vip::{BoundVip, VipError};
use crate::contract::model::AgentConfig;
use crate::contract::plan::{PlannedResource, ProbePlan, ProcessPlan, ResourceKind};
use crate::contract::report::{ResourceReason, ResourceReport};
use crate::placement::UnableReason;

/// How a group's start ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Started {
    /// Every resource of the group is online.
    Online(VipTimes),
    /// A resource could not come online: what had come up was taken back, and the
    /// group is unable here until the next eligibility check.
    Failed,
}

/// When a started group's last VIP came up and was first announced (local
/// monotonic time; `None` for a group without VIPs), for the takeover timeline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VipTimes {
    pub vip_up: Option<Duration>,
    pub arp_sent: Option<Duration>,
}

/// Why a resource could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("virtual IP")]
    Vip(#[source] VipError),
    #[error("process")]
    Process(#[source] ProcessError),
    #[error("{kind} resources are not run by the agent in this release")]
    NotRun { kind: &'static str },
}

/// What an online resource holds until it is stopped.
#[derive(Debug)]
pub enum Running {
    /// A VIP on an interface of this node.
    Vip(BoundVip),
    /// A health check's probing task (dropping it stops the probes).
    Check { run: u64, _checker: Checker },
    /// A supervised process and its watcher.
    Process { run: u64, process: Watched },
}

impl Running {
    /// Which start of a watched resource this is: a report of an earlier start
    /// (queued before a restart) must not count against the current one.
    fn run(&self) -> Option<u64> {
        match self {
            Running::Vip(_) => None,
            Running::Check { run, .. } | Running::Process { run, .. } => Some(*run),
        }
    }
}

/// Numbers the starts of watched resources, unique in this agent process.
static NEXT_RUN: AtomicU64 = AtomicU64::new(1);

/// What a watched resource reports by itself, from its own task.
#[derive(Debug)]
pub struct ResourceEvent {
    group: String,
    resource: String,
    run: u64,
    happened: Happened,
}

#[derive(Debug)]
enum Happened {
    /// The health check changed its verdict.
    Health(Health),
    /// The process exited without being asked to (or could not be waited for).
    Exited(Result<Exit, String>),
}

/// What the event loop learns from [`Resources::changed`].
#[derive(Debug)]
pub enum Change {
    /// A link or an address of this node changed.
    Links,
    /// A watched resource reported.
    Report(ResourceEvent),
}

/// Reports queued from the watching tasks to the event loop; a full queue makes a
/// checker wait, never the loop.
const EVENT_QUEUE: usize = 64;

/// A failure of a running resource and what was done about it, for the event
/// loop to tell (Event, hook, eligibility).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    pub group: String,
    pub resource: String,
    /// `HealthCheckFailed` or `ProcessExited`.
    pub reason: ResourceReason,
    /// The check's last error or the process's exit.
    pub message: String,
    /// Restarts of the resource within its period, this one included.
    pub restarts: u32,
    /// Past `restartLimit` (or the restart did not bring it back): the group is
    /// unable here and fails over.
    pub failed_over: bool,
}

/// The drivers of every kind of resource this node runs, for one step of one
/// group. They note when the group's VIPs came up and were first announced, for
/// the takeover timeline.
struct NodeDrivers<'a> {
    vips: &'a Vips,
    /// This node, and the cluster: told to the processes in their environment.
    node: &'a str,
    cluster: &'a str,
    /// Where the watched resources report.
    events: &'a mpsc::Sender<ResourceEvent>,
    metrics: &'a Metrics,
    lifetime: Duration,
    origin: Instant,
    /// When the last VIP came up, and was first announced, in this step.
    vip_times: VipTimes,
}

impl<'a> NodeDrivers<'a> {
    fn new(
        vips: &'a Vips,
        node: &'a str,
        events: &'a mpsc::Sender<ResourceEvent>,
        metrics: &'a Metrics,
        config: &'a AgentConfig,
        origin: Instant,
    ) -> Self {
        NodeDrivers {
            vips,
            node,
            metrics,
            cluster: &config.model.cluster,
            events,
            lifetime: config.vip_lifetime(),
            origin,
            vip_times: VipTimes::default(),
        }
    }

    /// Makes the reports of one start of a watched resource.
    fn reporter(
        group: &str,
        resource: &str,
        run: u64,
    ) -> impl Fn(Happened) -> ResourceEvent + Send + 'static {
        let (group, resource) = (group.to_owned(), resource.to_owned());
        move |happened| ResourceEvent {
            group: group.clone(),
            resource: resource.clone(),
            run,
            happened,
        }
    }
}

/// The probe a health check's plan describes.
fn probe(plan: &ProbePlan) -> Probe {
    match plan {
        ProbePlan::Tcp { host, port } => Probe::Tcp {
            host: host.clone(),
            port: *port,
        },
        ProbePlan::Http {
            host,
            port,
            path,
            statuses,
        } => Probe::Http {
            host: host.clone(),
            port: *port,
            path: path.clone(),
            statuses: statuses.clone(),
        },
        ProbePlan::Exec { argv } => Probe::Exec(CommandSpec::new(argv.iter().cloned())),
    }
}

/// The command of a process resource: its environment gets `FAILOVER_CLUSTER`,
/// `FAILOVER_GROUP` and `FAILOVER_NODE` first, so that one configuration serves
/// every member (its own variables may override them).
fn command(plan: &ProcessPlan, cluster: &str, group: &str, node: &str) -> CommandSpec {
    let ours = [
        ("FAILOVER_CLUSTER", cluster),
        ("FAILOVER_GROUP", group),
        ("FAILOVER_NODE", node),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    CommandSpec {
        argv: plan.argv.clone(),
        env: ours.into_iter().chain(plan.env.iter().cloned()).collect(),
        working_dir: plan.working_dir.clone(),
    }
}

impl Driver for NodeDrivers<'_> {
    type Running = Running;
    type Error = ResourceError;

    async fn start(
        &mut self,
        group: &str,
        resource: &PlannedResource,
    ) -> Result<Running, ResourceError> {
        match &resource.kind {
            ResourceKind::VirtualIp(vip) => {
                let bound = self
                    .vips
                    .acquire(group, vip, self.lifetime)
                    .await
                    .map_err(ResourceError::Vip)?;
                self.vip_times.vip_up = Some(self.origin.elapsed());
                // Until the neighbours' caches move, clients still send to the old
                // owner: the first announcement goes out with the VIP.
                self.vips
                    .announce_first(group, std::slice::from_ref(&bound))
                    .await;
                self.vip_times.arp_sent = Some(self.origin.elapsed());
                Ok(Running::Vip(bound))
            }
            ResourceKind::HealthCheck(check) => {
                let run = NEXT_RUN.fetch_add(1, Ordering::Relaxed);
                let report = Self::reporter(group, &resource.name, run);
                let schedule = Schedule {
                    interval: check.interval,
                    timeout: check.timeout,
                    failure_threshold: check.failure_threshold,
                };
                let checker = Checker::spawn(
                    resource.name.clone(),
                    probe(&check.probe),
                    schedule,
                    self.events.clone(),
                    move |health| report(Happened::Health(health)),
                );
                Ok(Running::Check {
                    run,
                    _checker: checker,
                })
            }
            ResourceKind::Process(plan) => {
                let run = NEXT_RUN.fetch_add(1, Ordering::Relaxed);
                let report = Self::reporter(group, &resource.name, run);
                let command = command(plan, self.cluster, group, self.node);
                let process = Watched::start(&command, self.events.clone(), move |exit| {
                    report(Happened::Exited(exit))
                })
                .map_err(ResourceError::Process)?;
                info!(group, resource = %resource.name, pid = process.pid(), "process started");
                Ok(Running::Process { run, process })
            }
            // The supervisor starts no resource of a kind that is not run.
            kind @ ResourceKind::Workload => Err(ResourceError::NotRun { kind: kind.label() }),
        }
    }

    async fn stop(
        &mut self,
        group: &str,
        resource: &PlannedResource,
        running: Running,
    ) -> Result<(), ResourceError> {
        match running {
            Running::Vip(bound) => self
                .vips
                .release(group, &bound)
                .await
                .map_err(ResourceError::Vip),
            // Dropping the checker ends its probes.
            Running::Check { .. } => Ok(()),
            Running::Process { process, .. } => {
                let grace = match &resource.kind {
                    ResourceKind::Process(plan) => plan.stop_grace,
                    _ => Duration::ZERO,
                };
                let pid = process.pid();
                let stopped = process.stop(grace).await.map_err(ResourceError::Process)?;
                match stopped {
                    Stopped::Killed => {
                        warn!(group, resource = %resource.name, pid, ?grace, "process outlived its stop grace period; killed");
                    }
                    Stopped::AlreadyExited(exit) | Stopped::Terminated(exit) => {
                        info!(group, resource = %resource.name, pid, %exit, "process stopped");
                    }
                }
                Ok(())
            }
        }
    }

    fn took(&mut self, resource: &PlannedResource, step: Step, seconds: f64) {
        self.metrics
            .resource_step(resource.kind.label(), step.label(), seconds);
    }

    async fn clean(&mut self, group: &str, resource: &PlannedResource) {
        // A process whose stop overran was killed with its dropped handle; a check
        // ends with its dropped checker.
        if let ResourceKind::VirtualIp(vip) = &resource.kind {
            self.vips.remove(group, vip).await;
        }
    }
}

/// One group this node runs: its resources and the announcer of its VIPs.
struct HeldGroup {
    run: GroupRun<Running>,
    /// Dropped (aborted) before any VIP of the group is released.
    announcer: Option<Announcer>,
    /// Local time of the last renewal (or of the start).
    last_renew: Duration,
    /// Per resource: local times of its restarts in place (within its period).
    restarts: BTreeMap<String, VecDeque<Duration>>,
}

impl HeldGroup {
    /// Stops the announcements before resources go offline, if a VIP is among
    /// them: no announcement may leave for a VIP after its release.
    fn silence_for(&mut self, going: &[String]) {
        let releases_a_vip = self.run.slots().iter().any(|s| {
            going.contains(&s.resource.name) && matches!(s.running(), Some(Running::Vip(_)))
        });
        if releases_a_vip {
            drop(self.announcer.take());
        }
    }

    /// Has the announcer announce exactly the online VIPs: restarted whenever that
    /// list changed, a removal alone included.
    fn reannounce(&mut self, vips: &Vips, group: &str, config: &AgentConfig) {
        let after = self.online_vips();
        let unchanged = self
            .announcer
            .as_ref()
            .is_some_and(|a| a.vips() == after.as_slice());
        if !unchanged {
            self.announcer = vips.announcer(group, after, config.announcements);
        }
    }

    fn online_vips(&self) -> Vec<BoundVip> {
        self.run
            .slots()
            .iter()
            .filter_map(|s| {
                let Some(Running::Vip(bound)) = s.running() else {
                    return None;
                };
                Some(bound.clone())
            })
            .collect()
    }
}

/// The resources of every group this node runs, and what it can host.
pub struct Resources {
    /// This node's name.
    node: String,
    vips: Vips,
    telemetry: Arc<Telemetry>,
    /// The event loop's monotonic origin: the local times here are relative to it.
    origin: Instant,
    /// The groups this node runs, with their resources as they came online.
    held: BTreeMap<String, HeldGroup>,
    /// Groups whose VIPs this node cannot host (subnet absent).
    ineligible: BTreeSet<String>,
    /// The links of the VIPs' interfaces, and the groups whose one is down.
    interfaces: Interfaces,
    /// Groups whose start failed here, or whose resource failed past its restart
    /// limit, until the next eligibility check.
    start_failed: BTreeSet<String>,
    /// Where the watched resources' tasks report, and the loop reads.
    events: mpsc::Sender<ResourceEvent>,
    reports: mpsc::Receiver<ResourceEvent>,
}

/// Shows the state of every resource of `run` in the metrics.
fn show_states(telemetry: &Telemetry, group: &str, run: &GroupRun<Running>) {
    for slot in run.slots() {
        telemetry
            .metrics
            .resource_state(group, &slot.resource.name, slot.state);
    }
}

/// How long one start or stop step of a resource may take: half of `deadAfter`.
/// The steps run in the event loop, which sends no heartbeat meanwhile; a step
/// that took `deadAfter` would have the peers take this node for dead.
pub fn step_timeout(config: &AgentConfig) -> Duration {
    config.model.dead_after / 2
}

impl Resources {
    /// Opens the resource drivers and removes what a crashed agent left of
    /// `config`'s resources on this node. `origin` is the event loop's monotonic
    /// origin.
    pub async fn open(
        node: &str,
        config: &AgentConfig,
        telemetry: Arc<Telemetry>,
        origin: Instant,
    ) -> Result<Self, VipError> {
        let vips = Vips::open(&config.all_vips(), telemetry.clone()).await?;
        let interfaces = Interfaces::open().await.map_err(VipError::LinkWatch)?;
        let (events, reports) = mpsc::channel(EVENT_QUEUE);
        Ok(Self {
            node: node.to_owned(),
            events,
            reports,
            vips,
            telemetry,
            origin,
            held: BTreeMap::new(),
            ineligible: BTreeSet::new(),
            interfaces,
            start_failed: BTreeSet::new(),
        })
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// The groups whose resources are online here.
    pub fn held(&self) -> impl Iterator<Item = &str> {
        self.held.keys().map(String::as_str)
    }

    /// The state of each resource of a group this node runs, in start order.
    pub fn states(&self, group: &str) -> Vec<ResourceReport> {
        self.held
            .get(group)
            .map(|held| held.run.reports())
            .unwrap_or_default()
    }

    /// Brings a group's resources online in dependency order as `config` defines
    /// them.
    pub async fn start(&mut self, group: &str, config: &AgentConfig) -> Started {
        // The engine never starts a group twice without a stop in between; should it
        // ever, the old announcer must not outlive the VIPs it announces.
        drop(self.held.remove(group));
        let plan = config
            .resources
            .get(group)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut run = GroupRun::new(plan);
        let timeout = step_timeout(config);
        let mut drivers = NodeDrivers::new(
            &self.vips,
            &self.node,
            &self.events,
            &self.telemetry.metrics,
            config,
            self.origin,
        );
        let failures = run.start(&mut drivers, group, timeout).await;
        if !failures.is_empty() {
            run.stop(&mut drivers, group, timeout).await;
            show_states(&self.telemetry, group, &run);
            warn!(group, failed = %failures.iter().map(|f| f.resource.as_str()).collect::<Vec<_>>().join(","), "a resource did not come online; the group's resources are offline again, giving the group up here");
            self.start_failed.insert(group.to_owned());
            return Started::Failed;
        }
        let vip_times = drivers.vip_times;
        show_states(&self.telemetry, group, &run);
        let mut held = HeldGroup {
            run,
            announcer: None,
            last_renew: self.now(),
            restarts: BTreeMap::new(),
        };
        held.announcer = self
            .vips
            .announcer(group, held.online_vips(), config.announcements);
        info!(group, resources = plan.len(), "group online");
        self.held.insert(group.to_owned(), held);
        Started::Online(vip_times)
    }

    /// Keeps a held group's resources alive: renews the VIPs' kernel lifetime a
    /// quarter lifetime apart, which keeps them up with room to spare while
    /// sparing netlink at 5 ms heartbeats; a killed agent's VIP still disappears
    /// within one lifetime.
    pub async fn renew(&mut self, group: &str, config: &AgentConfig) {
        let now = self.now();
        let lifetime = config.vip_lifetime();
        let Some(held) = self.held.get_mut(group) else {
            return;
        };
        if now.saturating_sub(held.last_renew) < lifetime / 4 {
            return;
        }
        held.last_renew = now;
        for bound in held.online_vips() {
            self.vips.renew(group, &bound, lifetime).await;
        }
    }

    /// Takes a group's resources offline in reverse dependency order. A start
    /// that failed half-way already took back what it added: nothing to do then.
    pub async fn stop(&mut self, group: &str, config: &AgentConfig) {
        let Some(mut held) = self.held.remove(group) else {
            return;
        };
        // No announcement may leave after a VIP's release.
        drop(held.announcer.take());
        let mut drivers = NodeDrivers::new(
            &self.vips,
            &self.node,
            &self.events,
            &self.telemetry.metrics,
            config,
            self.origin,
        );
        held.run
            .stop(&mut drivers, group, step_timeout(config))
            .await;
        show_states(&self.telemetry, group, &held.run);
    }

    /// Brings the groups this node keeps holding in line with `config`: resources
    /// it dropped or changed go offline (with what depends on them), resources it
    /// added come online, the others are not touched. Groups it removed are left
    /// to the engine, which stops them.
    pub async fn reconfigure(&mut self, config: &AgentConfig) {
        let timeout = step_timeout(config);
        for (group, held) in &mut self.held {
            let Some(plan) = config.resources.get(group) else {
                continue;
            };
            let same = held.run.slots().iter().map(|s| &s.resource).eq(plan.iter());
            if same {
                continue;
            }
            let mut drivers = NodeDrivers::new(
                &self.vips,
                &self.node,
                &self.events,
                &self.telemetry.metrics,
                config,
                self.origin,
            );
            held.silence_for(&held.run.going(plan));
            let failures = held.run.replan(plan, &mut drivers, group, timeout).await;
            for failure in &failures {
                warn!(
                    group,
                    resource = failure.resource,
                    reason = failure.reason.code(),
                    why = %failure.message,
                    "a resource of the new configuration is not online"
                );
            }
            held.reannounce(&self.vips, group, config);
            show_states(&self.telemetry, group, &held.run);
        }
    }

    /// Acts on a report of a watched resource of a held group: a failed check or
    /// an exited process is restarted in place with what it covers (a check: the
    /// resources it depends on, else the group's other resources; a process:
    /// itself), and everything that depends on those, while the resource's restart
    /// limit allows; past it the group is unable here and fails over. Returns what
    /// happened, `None` for a report that needs nothing (a passing check, a report
    /// of an earlier start or of a group no longer held).
    pub async fn repair(&mut self, event: ResourceEvent, config: &AgentConfig) -> Option<Repair> {
        let ResourceEvent {
            group,
            resource,
            run,
            happened,
        } = event;
        let now = self.now();
        let held = self.held.get_mut(&group)?;
        let Some(slot) = held.run.slots().iter().find(|s| {
            s.resource.name == resource && s.running().and_then(Running::run) == Some(run)
        }) else {
            debug!(
                group,
                resource, "report of a resource start that is over; ignored"
            );
            return None;
        };
        let (reason, message) = match happened {
            Happened::Health(Health::Healthy) => {
                info!(group, resource, "health check passes");
                return None;
            }
            Happened::Health(Health::Unhealthy { reason }) => {
                (ResourceReason::HealthCheckFailed, reason)
            }
            Happened::Exited(Ok(exit)) => (ResourceReason::ProcessExited, exit.to_string()),
            Happened::Exited(Err(error)) => (ResourceReason::ProcessExited, error),
        };
        let policy = slot.resource.kind.restart_policy()?;
        let targets: Vec<String> = match &slot.resource.kind {
            ResourceKind::HealthCheck(_) if slot.resource.depends_on.is_empty() => held
                .run
                .slots()
                .iter()
                .filter(|s| !matches!(s.resource.kind, ResourceKind::HealthCheck(_)))
                .map(|s| s.resource.name.clone())
                .chain([resource.clone()])
                .collect(),
            ResourceKind::HealthCheck(_) => slot.resource.depends_on.clone(),
            _ => vec![resource.clone()],
        };
        let window = held.restarts.entry(resource.clone()).or_default();
        while window
            .front()
            .is_some_and(|&t| now.saturating_sub(t) >= policy.period)
        {
            window.pop_front();
        }
        let mut repair = Repair {
            group: group.clone(),
            resource: resource.clone(),
            reason,
            message,
            restarts: u32::try_from(window.len()).unwrap_or(u32::MAX),
            failed_over: true,
        };
        if repair.restarts < policy.limit {
            window.push_back(now);
            repair.restarts += 1;
            repair.failed_over = false;
            warn!(group, resource, reason = reason.code(), why = %repair.message, restart = repair.restarts, limit = policy.limit, restart_of = ?targets, "resource failed; restarting in place");
            held.run.failed(&resource, reason, repair.message.clone());
            let timeout = step_timeout(config);
            let mut drivers = NodeDrivers::new(
                &self.vips,
                &self.node,
                &self.events,
                &self.telemetry.metrics,
                config,
                self.origin,
            );
            held.silence_for(&held.run.restart_set(&targets));
            let failures = held
                .run
                .restart(&targets, &mut drivers, &group, timeout)
                .await;
            held.reannounce(&self.vips, &group, config);
            if let Some(failure) = failures.first() {
                repair.failed_over = true;
                repair.message = format!(
                    "{}; the restart did not bring {} back: {}",
                    repair.message, failure.resource, failure.message
                );
            }
        }
        if repair.failed_over {
            error!(
                group,
                resource,
                reason = reason.code(),
                why = %repair.message,
                restarts = repair.restarts,
                limit = policy.limit,
                "resource failed past its restart limit; the group fails over"
            );
            held.run.failed(
                &resource,
                ResourceReason::RestartLimitReached,
                repair.message.clone(),
            );
            self.start_failed.insert(group.clone());
        }
        self.telemetry.metrics.resource_failure(
            &group,
            &resource,
            reason.code(),
            repair.failed_over,
        );
        if let Some(held) = self.held.get(&group) {
            show_states(&self.telemetry, &group, &held.run);
        }
        Some(repair)
    }

    /// The VIPs the announcer of a held group announces.
    #[cfg(test)]
    fn announced(&self, group: &str) -> Vec<String> {
        self.held
            .get(group)
            .and_then(|h| h.announcer.as_ref())
            .map(|a| a.vips().iter().map(|b| b.vip().to_string()).collect())
            .unwrap_or_default()
    }

    /// Groups this node cannot host now. A down interface is named over the rest:
    /// it takes an IPv6 subnet along and fails a start.
    pub fn unable(&self) -> BTreeMap<String, UnableReason> {
        let absent = self
            .ineligible
            .iter()
            .map(|g| (g.clone(), UnableReason::SubnetAbsent));
        let failed = self
            .start_failed
            .iter()
            .map(|g| (g.clone(), UnableReason::ResourceFailed));
        let down = self
            .interfaces
            .down()
            .map(|g| (g.to_owned(), UnableReason::InterfaceDown));
        absent.chain(failed).chain(down).collect()
    }

    /// Gives the groups whose start failed here another chance.
    pub fn forget_failed_starts(&mut self) {
        self.start_failed.clear();
    }

    /// Resolves with the next change the event loop must act on: a link or an
    /// address of this node changed (time to check eligibility again), or a
    /// watched resource reported (for [`Resources::repair`]). Cancel-safe.
    pub async fn changed(&mut self) -> Change {
        tokio::select! {
            () = self.interfaces.changed() => Change::Links,
            // `self.events` keeps the channel open: `None` never comes.
            Some(event) = self.reports.recv() => Change::Report(event),
        }
    }
    /// Checks every group of `config` against this node's interfaces.
    pub async fn check_eligibility(&mut self, config: &AgentConfig) {
        self.interfaces.check(&config.vips, &self.telemetry.metrics);
        let mut ineligible = BTreeSet::new();
        for (group, vips) in &config.vips {
            if !self.vips.can_host(group, vips).await {
                ineligible.insert(group.clone());
            }
        }
        if ineligible != self.ineligible {
            for group in ineligible.difference(&self.ineligible) {
                warn!(
                    group,
                    "cannot host the group here: no interface has its VIP's subnet"
                );
            }
            self.ineligible = ineligible;
        }
    }

    /// Takes whatever is still held offline before the agent exits, then removes
    /// anything of `config`'s resources left on this node.
    pub async fn shutdown(&mut self, config: &AgentConfig) {
        let groups: Vec<String> = self.held.keys().cloned().collect();
        for group in groups {
            warn!(group, "taking the group's resources offline at exit");
            self.stop(&group, config).await;
        }
        self.vips.clean_up(&config.all_vips()).await;
    }
}
