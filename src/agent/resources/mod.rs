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
//! their interfaces watched (`interfaces.rs`); `workload`,
//! `healthCheck` and `process` resources are reported as not run in this release.
//! `health.rs` (health checks), `process.rs` (supervised processes) and `hook.rs`
//! (the transition hook) are the drivers for the rest of a group, each off the
//! heartbeat path in tasks of their own, bounded in time; the supervisor does not
//! run them yet.
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

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use self::interfaces::Interfaces;
use self::supervisor::{Driver, GroupRun};
use self::vips::{Announcer, Vips};
use super::metrics::{Phase, Telemetry};
use super::vip::{BoundVip, VipError};
use crate::contract::model::AgentConfig;
use crate::contract::plan::{PlannedResource, ResourceKind};
use crate::contract::report::ResourceReport;
use crate::placement::UnableReason;

/// How a group's start ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Started {
    /// Every resource of the group is online.
    Online,
    /// A resource could not come online: what had come up was taken back, and the
    /// group is unable here until the next eligibility check.
    Failed,
}

/// Why a resource could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("virtual IP")]
    Vip(#[source] VipError),
    #[error("{kind} resources are not run by the agent in this release")]
    NotRun { kind: &'static str },
}

/// What an online resource holds until it is stopped.
#[derive(Debug)]
pub enum Running {
    /// A VIP on an interface of this node.
    Vip(BoundVip),
}

/// The drivers of every kind of resource this node runs, for one step of one
/// group. They note when the group's VIPs came up and were first announced, for
/// the takeover timeline.
struct NodeDrivers<'a> {
    vips: &'a Vips,
    lifetime: Duration,
    origin: Instant,
    /// Local time the last VIP came up, and was first announced, in this step.
    vip_up: Option<Duration>,
    arp_sent: Option<Duration>,
}

impl<'a> NodeDrivers<'a> {
    fn new(vips: &'a Vips, config: &AgentConfig, origin: Instant) -> Self {
        NodeDrivers {
            vips,
            lifetime: config.vip_lifetime(),
            origin,
            vip_up: None,
            arp_sent: None,
        }
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
                self.vip_up = Some(self.origin.elapsed());
                // Until the neighbours' caches move, clients still send to the old
                // owner: the first announcement goes out with the VIP.
                self.vips
                    .announce_first(group, std::slice::from_ref(&bound))
                    .await;
                self.arp_sent = Some(self.origin.elapsed());
                Ok(Running::Vip(bound))
            }
            // The supervisor starts no resource of a kind that is not run.
            kind @ (ResourceKind::Workload | ResourceKind::HealthCheck | ResourceKind::Process) => {
                Err(ResourceError::NotRun { kind: kind.label() })
            }
        }
    }

    async fn stop(
        &mut self,
        group: &str,
        _: &PlannedResource,
        running: Running,
    ) -> Result<(), ResourceError> {
        match running {
            Running::Vip(bound) => self
                .vips
                .release(group, &bound)
                .await
                .map_err(ResourceError::Vip),
        }
    }

    async fn clean(&mut self, group: &str, resource: &PlannedResource) {
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
}

impl HeldGroup {
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
    /// Groups whose start failed here, until the next eligibility check.
    start_failed: BTreeSet<String>,
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
        config: &AgentConfig,
        telemetry: Arc<Telemetry>,
        origin: Instant,
    ) -> Result<Self, VipError> {
        let vips = Vips::open(&config.all_vips(), telemetry.clone()).await?;
        let interfaces = Interfaces::open().await.map_err(VipError::LinkWatch)?;
        Ok(Self {
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

    fn show_states(&self, group: &str, run: &GroupRun<Running>) {
        for slot in run.slots() {
            self.telemetry
                .metrics
                .resource_state(group, &slot.resource.name, slot.state);
        }
    }

    /// Brings a group's resources online in dependency order as `config` defines
    /// them. `takeover` is the local time of the detected failure this start takes
    /// over from, for the takeover timeline.
    pub async fn start(
        &mut self,
        group: &str,
        config: &AgentConfig,
        takeover: Option<Duration>,
    ) -> Started {
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
        let mut drivers = NodeDrivers::new(&self.vips, config, self.origin);
        let failures = run.start(&mut drivers, group, timeout).await;
        if !failures.is_empty() {
            run.stop(&mut drivers, group, timeout).await;
            self.show_states(group, &run);
            warn!(group, failed = %failures.iter().map(|f| f.resource.as_str()).collect::<Vec<_>>().join(","), "a resource did not come online; the group's resources are offline again, giving the group up here");
            self.start_failed.insert(group.to_owned());
            return Started::Failed;
        }
        let (vip_up, arp_sent) = (drivers.vip_up, drivers.arp_sent);
        if let Some(at) = takeover {
            let metrics = &self.telemetry.metrics;
            let since = |t: Duration| t.saturating_sub(at).as_secs_f64();
            if let (Some(up), Some(sent)) = (vip_up, arp_sent) {
                metrics.phase(Phase::VipUp, since(up));
                metrics.phase(Phase::ArpSent, since(sent));
                info!(
                    group,
                    vip_up_ms = since(up) * 1e3,
                    arp_sent_ms = since(sent) * 1e3,
                    "takeover: VIPs up and first announcement sent"
                );
            }
            let online = since(self.now());
            metrics.phase(Phase::Online, online);
            info!(
                group,
                online_ms = online * 1e3,
                "takeover: every resource online"
            );
        }
        self.show_states(group, &run);
        let mut held = HeldGroup {
            run,
            announcer: None,
            last_renew: self.now(),
        };
        held.announcer = self
            .vips
            .announcer(group, held.online_vips(), config.announcements);
        info!(group, resources = plan.len(), "group online");
        self.held.insert(group.to_owned(), held);
        Started::Online
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
        let mut drivers = NodeDrivers::new(&self.vips, config, self.origin);
        held.run
            .stop(&mut drivers, group, step_timeout(config))
            .await;
        self.show_states(group, &held.run);
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
            let mut drivers = NodeDrivers::new(&self.vips, config, self.origin);
            // No announcement may leave for a VIP after its release.
            let going = held.run.going(plan);
            let releases_a_vip = held.run.slots().iter().any(|s| {
                going.contains(&s.resource.name) && matches!(s.running(), Some(Running::Vip(_)))
            });
            if releases_a_vip {
                drop(held.announcer.take());
            }
            let failures = held.run.replan(plan, &mut drivers, group, timeout).await;
            for failure in &failures {
                warn!(
                    group,
                    resource = failure.resource,
                    reason = failure.reason.code(),
                    message = failure.message,
                    "a resource of the new configuration is not online"
                );
            }
            // The announcer announces exactly the online VIPs: restarted whenever
            // that list changes, a removal alone included.
            let after = held.online_vips();
            let unchanged = held
                .announcer
                .as_ref()
                .is_some_and(|a| a.vips() == after.as_slice());
            if !unchanged {
                held.announcer = self.vips.announcer(group, after, config.announcements);
            }
            for slot in held.run.slots() {
                self.telemetry
                    .metrics
                    .resource_state(group, &slot.resource.name, slot.state);
            }
        }
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

    /// Resolves when a link or an address of this node changed: time to check
    /// eligibility again.
    pub async fn links_changed(&mut self) {
        self.interfaces.changed().await;
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
