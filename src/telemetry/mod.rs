//! Telemetry of the agent: the Prometheus metrics registry, the health state and
//! the tiny HTTP responder that serves `/metrics`, `/healthz` and `/readyz`.
//!
//! Owns the metric definitions (names, labels, buckets) and the health endpoints.
//! It must never decide anything: the agent runtime reports what happened, this
//! module only counts and shows it. Metric labels are bounded by the configuration
//! (member and group names, reason codes), never taken from the network.

pub mod http;
pub mod metrics;

use std::sync::atomic::{AtomicBool, Ordering};

pub use metrics::Metrics;

/// What the HTTP endpoints show: the metrics and whether the node is ready.
#[derive(Debug, Default)]
pub struct Telemetry {
    pub metrics: Metrics,
    /// Quorate: the node can take part in ownership decisions (`/readyz`).
    ready: AtomicBool,
}

impl Telemetry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}
