//! The virtual-IP side of this node: a VIP brought up with a finite kernel lifetime
//! and announced once at once, renewed, released, removed by force after a step
//! that timed out, and a per-group [`Announcer`] that repeats the announcements.
//!
//! Owns the VIP driver and the announcer tasks. The group supervisor decides when
//! (`supervisor.rs`); this file must never release a VIP while an announcer may
//! still announce it (the caller drops the announcer first), and never leave a VIP
//! whose start failed behind.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use super::announce;
use crate::agent::metrics::Telemetry;
use crate::agent::vip::{BoundVip, VipDriver, VipError, VirtualIp};
use crate::contract::model::Announcements;
use crate::telemetry::error_report;

/// The task that announces the online VIPs of one group, and the VIPs it
/// announces. Dropping it stops the announcements.
#[derive(Debug)]
pub struct Announcer {
    task: JoinHandle<()>,
    vips: Vec<BoundVip>,
}

impl Announcer {
    /// The VIPs this announcer announces.
    pub fn vips(&self) -> &[BoundVip] {
        &self.vips
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        // Abort first: no announcement may leave after the VIPs' release.
        self.task.abort();
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

    /// Sends the first announcement of every VIP of a group just brought up: until
    /// the neighbours' caches move, clients still send to the old owner.
    pub async fn announce_first(&self, group: &str, bound: &[BoundVip]) {
        announce::round(&self.driver, group, bound, &self.telemetry, true).await;
    }

    /// Starts announcing `bound` (whose first announcement went out) as
    /// `announcements` says; `None` when there is nothing to announce.
    pub fn announcer(
        &self,
        group: &str,
        bound: Vec<BoundVip>,
        announcements: Announcements,
    ) -> Option<Announcer> {
        if bound.is_empty() {
            return None;
        }
        let task = announce::spawn(
            self.driver.clone(),
            group.to_owned(),
            bound.clone(),
            announcements,
            self.telemetry.clone(),
        );
        Some(Announcer { task, vips: bound })
    }

    /// Renews the kernel lifetime of `bound`.
    pub async fn renew(&self, group: &str, bound: &BoundVip, lifetime: Duration) {
        if let Err(error) = self.driver.acquire(bound, lifetime).await {
            self.telemetry.metrics.vip_error("renew");
            error!(group, vip = %bound.vip(), error = %error_report(&error), "cannot renew VIP lifetime");
        }
    }

    /// Adds `vip` with `lifetime`; a failure is counted.
    pub async fn acquire(
        &self,
        group: &str,
        vip: &VirtualIp,
        lifetime: Duration,
    ) -> Result<BoundVip, VipError> {
        let result = async {
            let bound = self.driver.resolve(vip).await?;
            self.driver.acquire(&bound, lifetime).await?;
            Ok(bound)
        }
        .await;
        if let Err(error) = &result {
            self.telemetry.metrics.vip_error("acquire");
            error!(group, %vip, error = %error_report(error), "cannot bring the VIP up");
        }
        result
    }

    /// Removes `vip` from this node wherever it is: after a step that timed out,
    /// whose binding was lost with it.
    pub async fn remove(&self, group: &str, vip: &VirtualIp) {
        if let Err(error) = self.driver.remove_stale(std::slice::from_ref(vip)).await {
            self.telemetry.metrics.vip_error("release");
            error!(group, %vip, error = %error_report(&error), "cannot remove VIP; it expires with its lifetime");
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

    async fn prepare_announcements(&self, vip: &VirtualIp) -> Result<(), VipError> {
        let bound = self.driver.resolve(vip).await?;
        self.driver.prepare(&bound).await
    }

    /// Removes `bound` from its interface.
    pub async fn release(&self, group: &str, bound: &BoundVip) -> Result<(), VipError> {
        let result = self.driver.release(bound).await;
        if let Err(error) = &result {
            // The lifetime still removes it: we no longer renew it.
            self.telemetry.metrics.vip_error("release");
            error!(group, vip = %bound.vip(), error = %error_report(error), "cannot release VIP; it expires with its lifetime");
        }
        result
    }
}
