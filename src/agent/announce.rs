//! The announcer of one held group: gratuitous ARP / unsolicited NA for each of its
//! VIPs, `count` times `spacing` apart right after takeover, then every
//! `refreshInterval` while the group is held.
//!
//! Owns only the timing of announcements. It must never add or remove an address:
//! the runtime aborts this task before it releases the VIPs, so no announcement can
//! leave for a VIP this node no longer holds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tracing::{Instrument, warn};

use super::metrics::Telemetry;
use super::vip::{BoundVip, VipDriver};
use crate::contract::model::Announcements;

/// When the failure that led to this takeover was detected, for the `arp_sent` phase.
#[derive(Clone, Copy, Debug)]
pub struct Detection {
    /// The agent's monotonic origin.
    pub start: Instant,
    /// Local time of the detection, relative to `start`.
    pub at: Duration,
}

/// Announces every VIP of `group` once. Failures are counted; the first round of a
/// takeover also logs them (a missing MAC or CAP_NET_RAW does not fix itself
/// between rounds).
pub async fn round(
    driver: &VipDriver,
    group: &str,
    vips: &[BoundVip],
    telemetry: &Telemetry,
    first: bool,
) {
    for bound in vips {
        if let Err(error) = driver.announce(bound, 1, Duration::ZERO).await {
            telemetry.metrics.vip_error("announce");
            if first {
                let error = crate::telemetry::error_report(&error);
                warn!(group, vip = %bound.vip(), %error, "cannot announce VIP");
            }
        }
    }
}

/// Repeats the announcements of `vips` of `group` after the first one, which the
/// caller sent: `count - 1` more, `spacing` apart, then every refresh interval.
/// Abort the handle to stop.
pub fn spawn(
    driver: VipDriver,
    group: String,
    vips: Vec<BoundVip>,
    settings: Announcements,
    telemetry: Arc<Telemetry>,
) -> JoinHandle<()> {
    let task = async move {
        for _ in 1..settings.count {
            tokio::time::sleep(settings.spacing).await;
            round(&driver, &group, &vips, &telemetry, false).await;
        }
        if let Some(refresh) = settings.refresh {
            loop {
                tokio::time::sleep(refresh).await;
                round(&driver, &group, &vips, &telemetry, false).await;
            }
        }
    };
    // In the caller's span, so its logs carry the cluster and node fields.
    tokio::spawn(task.in_current_span())
}
