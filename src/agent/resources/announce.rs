//! The announcer of one held group: gratuitous ARP / unsolicited NA for each of its
//! VIPs, `count` times `spacing` apart right after takeover, then every
//! `refreshInterval` while the group is held.
//!
//! Owns only the timing of announcements. It must never add or remove an address:
//! the resource side aborts this task before it releases the VIPs, so no
//! announcement can leave for a VIP this node no longer holds.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::{Instrument, warn};

use crate::agent::metrics::Telemetry;
use crate::agent::vip::{BoundVip, VipDriver};
use crate::contract::model::Announcements;

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
