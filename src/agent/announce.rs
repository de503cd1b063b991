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
use tracing::{Instrument, info, warn};

use super::config::Announcements;
use super::vip::{BoundVip, VipDriver};
use crate::telemetry::Telemetry;
use crate::telemetry::metrics::Phase;

/// When the failure that led to this takeover was detected, for the `arp_sent` phase.
#[derive(Clone, Copy, Debug)]
pub struct Detection {
    /// The agent's monotonic origin.
    pub start: Instant,
    /// Local time of the detection, relative to `start`.
    pub at: Duration,
}

/// Starts announcing `vips` of `group`; abort the handle to stop.
pub fn spawn(
    driver: VipDriver,
    group: String,
    vips: Vec<BoundVip>,
    settings: Announcements,
    detection: Option<Detection>,
    telemetry: Arc<Telemetry>,
) -> JoinHandle<()> {
    let task = async move {
        let round = |first: bool| {
            let (driver, vips, telemetry, group) = (&driver, &vips, &telemetry, &group);
            async move {
                for bound in vips {
                    if let Err(error) = driver.announce(bound, 1, Duration::ZERO).await {
                        telemetry.metrics.vip_error("announce");
                        // Once per takeover is enough: a missing MAC or CAP_NET_RAW
                        // does not fix itself between rounds.
                        if first {
                            let error = crate::cli::error_report(&error);
                            warn!(group, vip = %bound.vip(), %error, "cannot announce VIP");
                        }
                    }
                }
            }
        };
        round(true).await;
        if let Some(d) = detection {
            let since = d.start.elapsed().saturating_sub(d.at);
            telemetry.metrics.phase(Phase::ArpSent, since.as_secs_f64());
            info!(
                group,
                arp_sent_ms = since.as_secs_f64() * 1e3,
                "takeover: first announcement sent"
            );
        }
        for _ in 1..settings.count {
            tokio::time::sleep(settings.spacing).await;
            round(false).await;
        }
        if let Some(refresh) = settings.refresh {
            loop {
                tokio::time::sleep(refresh).await;
                round(false).await;
            }
        }
    };
    // In the caller's span, so its logs carry the cluster and node fields.
    tokio::spawn(task.in_current_span())
}
