//! The virtual-IP resources of the groups this node runs: brought up in resource
//! order with a finite kernel lifetime, renewed a quarter lifetime apart, announced
//! by a per-group announcer, adjusted in place when the configuration changes, and
//! released on stop.
//!
//! Owns the bound VIPs of every held group and their announcer tasks. Must never
//! release a VIP while its announcer may still announce it (the announcer is aborted
//! first), and never leave a VIP of a failed start behind.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use super::announce;
use crate::agent::metrics::Telemetry;
use crate::agent::vip::{BoundVip, VipDriver, VipError, VirtualIp};
use crate::contract::model::Announcements;
use crate::telemetry::error_report;

/// The VIPs of one group this node holds and the task that announces them.
#[derive(Debug)]
pub struct HeldVips {
    bound: Vec<BoundVip>,
    announcer: Option<JoinHandle<()>>,
    /// Local time of the last renewal (or of the start).
    last_renew: Duration,
}

impl HeldVips {
    /// Stops announcing; the VIPs stay up until released.
    pub fn stop_announcing(&mut self) {
        if let Some(task) = self.announcer.take() {
            task.abort();
        }
    }
}

/// The VIP side of this node: the driver and the telemetry its failures count in.
pub struct Vips {
    driver: VipDriver,
    telemetry: Arc<Telemetry>,
}

impl Vips {
    /// Opens the driver in this thread's network namespace and removes every VIP of
    /// `vips` found on this node: what a crashed agent left behind must not answer
    /// for a VIP.
    pub async fn open(vips: &[VirtualIp], telemetry: Arc<Telemetry>) -> Result<Self, VipError> {
        let driver = VipDriver::new()?;
        let removed = driver.remove_stale(vips).await?;
        if removed > 0 {
            info!(removed, "removed stale VIPs left by an earlier run");
        }
        Ok(Self { driver, telemetry })
    }

    /// Brings `wanted` up in order with `lifetime`. On the first failure takes back
    /// what it added and returns `None`.
    pub async fn bring_up(
        &self,
        group: &str,
        wanted: &[VirtualIp],
        lifetime: Duration,
    ) -> Option<Vec<BoundVip>> {
        let mut bound = Vec::with_capacity(wanted.len());
        for vip in wanted {
            match self.acquire(vip, lifetime).await {
                Ok(b) => bound.push(b),
                Err(error) => {
                    self.telemetry.metrics.vip_error("acquire");
                    error!(group, error = %error_report(&error), "cannot bring the group's VIPs up; giving the group up here");
                    for b in &bound {
                        self.release(group, b).await;
                    }
                    return None;
                }
            }
        }
        Some(bound)
    }

    /// Sends the first announcement of every VIP of a group just brought up: until
    /// the neighbours' caches move, clients still send to the old owner.
    pub async fn announce_first(&self, group: &str, bound: &[BoundVip]) {
        announce::round(&self.driver, group, bound, &self.telemetry, true).await;
    }

    /// Starts the announcer of VIPs whose first announcement went out, and holds them
    /// from `now` on.
    pub fn hold(
        &self,
        group: &str,
        bound: Vec<BoundVip>,
        announcements: Announcements,
        now: Duration,
    ) -> HeldVips {
        let announcer = (!bound.is_empty()).then(|| self.announcer(group, &bound, announcements));
        HeldVips {
            bound,
            announcer,
            last_renew: now,
        }
    }

    fn announcer(
        &self,
        group: &str,
        bound: &[BoundVip],
        announcements: Announcements,
    ) -> JoinHandle<()> {
        announce::spawn(
            self.driver.clone(),
            group.to_owned(),
            bound.to_vec(),
            announcements,
            self.telemetry.clone(),
        )
    }

    /// Renews the VIPs' kernel lifetime. Renewing a quarter lifetime apart keeps the
    /// VIP up with room to spare while sparing netlink at 5 ms heartbeats; a killed
    /// agent's VIP still disappears within one lifetime.
    pub async fn renew(&self, group: &str, held: &mut HeldVips, now: Duration, lifetime: Duration) {
        if now.saturating_sub(held.last_renew) < lifetime / 4 {
            return;
        }
        held.last_renew = now;
        for b in &held.bound {
            if let Err(error) = self.driver.acquire(b, lifetime).await {
                self.telemetry.metrics.vip_error("renew");
                error!(group, error = %error_report(&error), "cannot renew VIP lifetime");
            }
        }
    }

    /// Stops the announcer, then releases every VIP of the group.
    pub async fn release_all(&self, group: &str, mut held: HeldVips) {
        // Abort first: no announcement may leave after the release.
        held.stop_announcing();
        for b in &held.bound {
            self.release(group, b).await;
        }
    }

    /// For a group this node keeps holding, removes the VIPs `wanted` no longer
    /// lists and adds the ones it introduced (announced at once, then by a new
    /// announcer); VIPs that stay are not touched.
    pub async fn update(
        &self,
        group: &str,
        held: &mut HeldVips,
        wanted: &[VirtualIp],
        lifetime: Duration,
        announcements: Announcements,
    ) {
        let (keep, drop): (Vec<BoundVip>, Vec<BoundVip>) = std::mem::take(&mut held.bound)
            .into_iter()
            .partition(|b| wanted.contains(b.vip()));
        for b in &drop {
            info!(group, vip = %b.vip(), "VIP removed from the group");
            self.release(group, b).await;
        }
        held.bound = keep;
        let added: Vec<&VirtualIp> = wanted
            .iter()
            .filter(|v| !held.bound.iter().any(|b| b.vip() == *v))
            .collect();
        let mut new = Vec::new();
        for vip in added {
            match self.acquire(vip, lifetime).await {
                Ok(b) => {
                    info!(group, %vip, "VIP added to the group");
                    new.push(b);
                }
                Err(error) => {
                    self.telemetry.metrics.vip_error("acquire");
                    error!(group, %vip, error = %error_report(&error), "cannot add the group's new VIP");
                }
            }
        }
        if !new.is_empty() {
            held.stop_announcing();
            held.bound.extend(new);
            self.announce_first(group, &held.bound).await;
            held.announcer = Some(self.announcer(group, &held.bound, announcements));
        }
    }

    /// Whether this node can host every VIP of `vips` (each one's subnet is on an
    /// interface); readies the announcements of those it can.
    pub async fn can_host(&self, group: &str, vips: &[VirtualIp]) -> bool {
        for vip in vips {
            let ok = match self.driver.eligible(vip).await {
                Ok(true) => {
                    // Ready the announcement socket now, not during a takeover.
                    if let Err(error) = self.prepare_announcements(vip).await {
                        warn!(group, %vip, error = %error_report(&error), "cannot prepare VIP announcements");
                    }
                    true
                }
                Ok(ok) => ok,
                Err(error) => {
                    warn!(group, %vip, error = %error_report(&error), "cannot check VIP eligibility");
                    false
                }
            };
            if !ok {
                return false;
            }
        }
        true
    }

    /// At exit: removes every VIP of `vips` still on this node and puts the
    /// interfaces' ARP settings back.
    pub async fn clean_up(&self, vips: &[VirtualIp]) {
        // Belt and braces: no VIP of the configuration stays on this node.
        if let Err(error) = self.driver.remove_stale(vips).await {
            error!(error = %error_report(&error), "cannot check for VIPs left at exit");
        }
        // Only a graceful exit gets here: after a crash the settings stay, so that the
        // dead agent's node keeps quiet about the VIPs its kernel still holds.
        if let Err(error) = self.driver.restore_kernel().await {
            error!(error = %error_report(&error), "cannot restore the interfaces' ARP settings at exit");
        }
    }

    async fn acquire(&self, vip: &VirtualIp, lifetime: Duration) -> Result<BoundVip, VipError> {
        let bound = self.driver.resolve(vip).await?;
        self.driver.acquire(&bound, lifetime).await?;
        Ok(bound)
    }

    async fn prepare_announcements(&self, vip: &VirtualIp) -> Result<(), VipError> {
        let bound = self.driver.resolve(vip).await?;
        self.driver.prepare(&bound).await
    }

    async fn release(&self, group: &str, bound: &BoundVip) {
        if let Err(error) = self.driver.release(bound).await {
            // The lifetime still removes it: we no longer renew it.
            self.telemetry.metrics.vip_error("release");
            error!(group, vip = %bound.vip(), error = %error_report(&error), "cannot release VIP; it expires with its lifetime");
        }
    }
}
