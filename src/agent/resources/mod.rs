//! The resource side of the agent: brings the resources of the groups this node
//! runs online and offline, keeps them alive while it holds them, and tells which
//! groups this node cannot host.
//!
//! [`Resources`] is the one seam between the event loop and a group's resources:
//! the loop calls [`Resources::start`], [`Resources::renew`] and [`Resources::stop`]
//! when the engine says so, [`Resources::reconfigure`] when the configuration
//! changes, and feeds [`Resources::unable`] back to the engine. A group's resources
//! are its virtual IPs (`vips.rs`) with their announcer (`announce.rs`); the
//! links of their interfaces are watched (`interfaces.rs`).
//! `health.rs` (health checks), `process.rs` (supervised processes) and `hook.rs`
//! (the transition hook) run the rest of a group, each off the heartbeat path in
//! tasks of their own, bounded in time.
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
#[cfg(test)]
mod tests;
mod vips;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use self::interfaces::Interfaces;
use self::vips::{HeldVips, Vips};
use super::metrics::{Phase, Telemetry};
use super::vip::VipError;
use crate::contract::model::AgentConfig;
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

/// The resources of every group this node runs, and what it can host.
pub struct Resources {
    vips: Vips,
    telemetry: Arc<Telemetry>,
    /// The event loop's monotonic origin: the local times here are relative to it.
    origin: Instant,
    /// The groups this node runs, with their resources as they came online.
    held: BTreeMap<String, HeldVips>,
    /// Groups whose VIPs this node cannot host (subnet absent).
    ineligible: BTreeSet<String>,
    /// The links of the VIPs' interfaces, and the groups whose one is down.
    interfaces: Interfaces,
    /// Groups whose start failed here, until the next eligibility check.
    start_failed: BTreeSet<String>,
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

    /// Brings a group's resources online as `config` defines them. `takeover` is
    /// the local time of the detected failure this start takes over from, for the
    /// takeover timeline.
    pub async fn start(
        &mut self,
        group: &str,
        config: &AgentConfig,
        takeover: Option<Duration>,
    ) -> Started {
        // The engine never starts a group twice without a stop in between; should it
        // ever, the old announcer must not outlive the VIPs it announces.
        if let Some(mut old) = self.held.remove(group) {
            old.stop_announcing();
        }
        let wanted = config.vips.get(group).cloned().unwrap_or_default();
        let Some(bound) = self
            .vips
            .bring_up(group, &wanted, config.vip_lifetime())
            .await
        else {
            self.start_failed.insert(group.to_owned());
            return Started::Failed;
        };
        let now = self.now();
        if let Some(at) = takeover {
            let since = now.saturating_sub(at).as_secs_f64();
            self.telemetry.metrics.phase(Phase::VipUp, since);
            info!(group, vip_up_ms = since * 1e3, "takeover: VIPs up");
        }
        self.vips.announce_first(group, &bound).await;
        if let Some(at) = takeover {
            let since = self.now().saturating_sub(at);
            self.telemetry
                .metrics
                .phase(Phase::ArpSent, since.as_secs_f64());
            info!(
                group,
                arp_sent_ms = since.as_secs_f64() * 1e3,
                "takeover: first announcement sent"
            );
        }
        info!(group, vips = bound.len(), "group online");
        let held = self.vips.hold(group, bound, config.announcements, now);
        self.held.insert(group.to_owned(), held);
        Started::Online
    }

    /// Keeps a held group's resources alive (the VIPs' kernel lifetime).
    pub async fn renew(&mut self, group: &str, config: &AgentConfig) {
        let now = self.now();
        let Some(held) = self.held.get_mut(group) else {
            return;
        };
        self.vips
            .renew(group, held, now, config.vip_lifetime())
            .await;
    }

    /// Takes a group's resources offline. A start that failed half-way already
    /// took back what it added: nothing to do then.
    pub async fn stop(&mut self, group: &str) {
        if let Some(held) = self.held.remove(group) {
            self.vips.release_all(group, held).await;
        }
    }

    /// Brings the groups this node keeps holding in line with `config`: resources
    /// it dropped go offline, resources it added come online, the others are not
    /// touched. Groups it removed are left to the engine, which stops them.
    pub async fn reconfigure(&mut self, config: &AgentConfig) {
        let lifetime = config.vip_lifetime();
        for (group, held) in &mut self.held {
            let Some(wanted) = config.vips.get(group) else {
                continue;
            };
            self.vips
                .update(group, held, wanted, lifetime, config.announcements)
                .await;
        }
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
        for (group, held) in std::mem::take(&mut self.held) {
            warn!(group, "releasing the group's VIPs at exit");
            self.vips.release_all(&group, held).await;
        }
        self.vips.clean_up(&config.all_vips()).await;
    }
}
