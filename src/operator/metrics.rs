//! The operator's Prometheus metrics and its `/metrics`, `/healthz`, `/readyz`
//! endpoints.
//!
//! Owns the metric names and labels (controller and error kind: fixed strings, so
//! the label sets are bounded). It must never decide anything; the reconcilers
//! report, this module counts. The paths are served by the same responder as the
//! agent's (`telemetry::http`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::telemetry::http::{Endpoints, serve};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabel {
    controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabel {
    controller: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabel {
    namespace: String,
    cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotificationFailureLabel {
    namespace: String,
    cluster: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabel {
    namespace: String,
    group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

fn duration_histogram() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The operator's metrics and readiness.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ControllerLabel, Counter>,
    errors: Family<ErrorLabel, Counter>,
    duration: Family<ControllerLabel, Histogram, fn() -> Histogram>,
    managed: Family<KindLabel, Gauge>,
    config_valid: Family<ClusterLabel, Gauge>,
    group_failed: Family<GroupLabel, Gauge>,
    notifications: Family<ClusterLabel, Counter>,
    notification_failures: Family<NotificationFailureLabel, Counter>,
    leader: Gauge,
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("failover_operator");
        let m = Metrics {
            registry: Registry::default(),
            reconciles: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            managed: Family::default(),
            config_valid: Family::default(),
            group_failed: Family::default(),
            notifications: Family::default(),
            notification_failures: Family::default(),
            leader: Gauge::default(),
            ready: AtomicBool::new(false),
        };
        registry.register("reconciles", "Reconciliations run", m.reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciliations that failed, by error kind",
            m.errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconciliation took",
            m.duration.clone(),
        );
        registry.register(
            "managed_objects",
            "Custom resources the operator manages, by kind",
            m.managed.clone(),
        );
        registry.register(
            "cluster_config_valid",
            "0 while a FailoverCluster has ConfigValid=False (the last valid config keeps running)",
            m.config_valid.clone(),
        );
        registry.register(
            "group_failed",
            "1 while a ResourceGroup is in phase Failed (failover limit reached)",
            m.group_failed.clone(),
        );
        registry.register(
            "notifications",
            "Webhook notifications delivered",
            m.notifications.clone(),
        );
        registry.register(
            "notification_failures",
            "Webhook notifications given up on, by reason (after the last retry, or never queued)",
            m.notification_failures.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease",
            m.leader.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// A reconciliation of `controller` finished after `elapsed`.
    pub fn reconciled(&self, controller: &'static str, elapsed: Duration) {
        let label = ControllerLabel { controller };
        self.reconciles.get_or_create(&label).inc();
        self.duration
            .get_or_create(&label)
            .observe(elapsed.as_secs_f64());
    }

    /// A reconciliation failed with an error of `kind`.
    pub fn failed(&self, controller: &'static str, kind: &'static str) {
        self.errors
            .get_or_create(&ErrorLabel { controller, kind })
            .inc();
    }

    /// A webhook notification of a cluster was delivered.
    pub fn notification_sent(&self, namespace: &str, cluster: &str) {
        self.notifications
            .get_or_create(&ClusterLabel {
                namespace: namespace.to_owned(),
                cluster: cluster.to_owned(),
            })
            .inc();
    }

    /// A webhook notification of a cluster was given up on, for `reason`.
    pub fn notification_failed(&self, namespace: &str, cluster: &str, reason: &'static str) {
        self.notification_failures
            .get_or_create(&NotificationFailureLabel {
                namespace: namespace.to_owned(),
                cluster: cluster.to_owned(),
                reason,
            })
            .inc();
    }

    /// How many objects of `kind` the operator watches.
    pub fn managed(&self, kind: &'static str, count: usize) {
        self.managed
            .get_or_create(&KindLabel { kind })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Replaces the per-object state gauges with the objects that exist now (a
    /// deleted object's series goes away with it): `clusters` as (namespace, name,
    /// config valid), `groups` as (namespace, name, failed). Labels are object names,
    /// bounded by what the users created.
    pub fn object_states(
        &self,
        clusters: impl IntoIterator<Item = (String, String, bool)>,
        groups: impl IntoIterator<Item = (String, String, bool)>,
    ) {
        self.config_valid.clear();
        for (namespace, cluster, valid) in clusters {
            self.config_valid
                .get_or_create(&ClusterLabel { namespace, cluster })
                .set(i64::from(valid));
        }
        self.group_failed.clear();
        for (namespace, group, failed) in groups {
            self.group_failed
                .get_or_create(&GroupLabel { namespace, group })
                .set(i64::from(failed));
        }
    }

    /// Leadership gained or lost.
    pub fn leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Readiness: the process reached the API server and takes part in the election.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// The OpenMetrics text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

impl Endpoints for Metrics {
    fn metrics_text(&self) -> String {
        self.render()
    }

    fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

/// Binds `addr` and serves in a background task.
pub async fn spawn(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(serve(listener, metrics));
    Ok(bound)
}

#[cfg(test)]
mod tests;
