//! Webhook notifications: what the operator tells a person's pager or chat when a
//! group changes hands or the cluster loses quorum (issue 13, item 2).
//!
//! Pure parts: [`Notification::body`] renders one of the three formats of
//! `spec.notifications.webhook.format`, [`RetryPolicy::backoff`] the wait between
//! attempts. IO: [`Notifier`] owns one tokio task that drains a bounded queue and
//! posts with retries, so a slow or dead webhook never delays a reconciliation: a
//! full queue drops the notification and counts it. It must never decide what
//! happened: the reconcilers derive [`Notification`]s from the status transitions
//! they already publish as Events.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::metrics::Metrics;
use super::status::{cluster_notices, group_notices};
use crate::api::conditions::{event, webhook};
use crate::api::{FailoverClusterStatus, GroupPhase, ResourceGroupStatus, WebhookFormat};

/// Why a notification was not delivered: the `reason` label of
/// `failover_operator_notification_failures_total`.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The Secret's value is not an http(s) URL.
    #[error("the webhook URL is not a valid http or https URL")]
    InvalidUrl,
    /// No TLS roots could be loaded for https.
    #[error("cannot load TLS roots")]
    TlsRoots(#[source] Arc<std::io::Error>),
    /// The request could not be sent or its answer not read.
    #[error("request failed")]
    Request(#[source] hyper_util::client::legacy::Error),
    /// One attempt took longer than the policy's timeout.
    #[error("attempt timed out after {0:?}")]
    Timeout(Duration),
    /// The webhook answered with a status outside 2xx.
    #[error("webhook answered {0}")]
    Status(http::StatusCode),
    /// The queue to the sender task was full or closed.
    #[error("notification queue full")]
    QueueFull,
    /// The Secret or its key could not be read.
    #[error("cannot read the webhook Secret")]
    Secret,
}

impl NotifyError {
    /// The metric label: a fixed string, so the label set stays bounded.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidUrl => "invalid_url",
            Self::TlsRoots(_) => "tls",
            Self::Request(_) => "request",
            Self::Timeout(_) => "timeout",
            Self::Status(_) => "status",
            Self::QueueFull => "queue_full",
            Self::Secret => "secret",
        }
    }
}

/// One thing that happened, in the words every format shares.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Namespace of the cluster (and the group).
    pub namespace: String,
    /// FailoverCluster name.
    pub cluster: String,
    /// ResourceGroup name; `None` for cluster-wide transitions (quorum).
    pub group: Option<String>,
    /// What happened: the Event reason (`Failover`, `Failback`, `Moved`,
    /// `GroupFailed`, `GroupOffline`, `QuorumLost`, `QuorumRegained`).
    pub event: &'static str,
    /// Previous owner (or state).
    pub from: Option<String>,
    /// New owner (or state).
    pub to: Option<String>,
    /// The group's epoch after the transition.
    pub epoch: Option<u64>,
    /// The reason code the status carries (`OwnerLost`, `Failback`, ...).
    pub reason: String,
    /// The sentence.
    pub message: String,
    /// A problem a person should look at (alert severity, Warning Event).
    pub warning: bool,
    /// When the operator saw it.
    pub time: Timestamp,
    /// Set for a transition that ends a problem (quorum regained): an Alertmanager
    /// body resolves the alert instead of raising one.
    pub resolves: bool,
}

impl Notification {
    /// The request body in `format`.
    pub fn body(&self, format: WebhookFormat) -> Value {
        match format {
            WebhookFormat::Generic => json!({
                "namespace": self.namespace,
                "cluster": self.cluster,
                "group": self.group,
                "event": self.event,
                "from": self.from,
                "to": self.to,
                "epoch": self.epoch,
                "reason": self.reason,
                "message": self.message,
                "severity": self.severity(),
                "time": self.time.to_string(),
            }),
            WebhookFormat::Alertmanager => self.alertmanager(),
            WebhookFormat::Slack => json!({ "text": self.sentence() }),
        }
    }

    fn severity(&self) -> &'static str {
        if self.warning { "warning" } else { "info" }
    }

    /// One alert in the `/api/v2/alerts` list. The labels identify the alert (so a
    /// later QuorumRegained resolves the QuorumLost of the same cluster); a
    /// transition that is over when it is seen (a failover) is sent already ended,
    /// so Alertmanager notifies once and does not keep it firing.
    fn alertmanager(&self) -> Value {
        let alertname = match self.event {
            event::QUORUM_REGAINED => event::QUORUM_LOST,
            other => other,
        };
        let mut labels = json!({
            "alertname": format!("Failover{alertname}"),
            "namespace": self.namespace,
            "cluster": self.cluster,
            "severity": self.severity(),
            "reason": self.reason,
        });
        if let (Some(group), Some(map)) = (&self.group, labels.as_object_mut()) {
            map.insert("group".to_owned(), json!(group));
        }
        let mut alert = json!({
            "labels": labels,
            "annotations": {
                "summary": self.sentence(),
                "description": self.message,
            },
            "startsAt": self.time.to_string(),
        });
        let ends = self.resolves || self.group.is_some();
        if let (true, Some(map)) = (ends, alert.as_object_mut()) {
            map.insert("endsAt".to_owned(), json!(self.time.to_string()));
        }
        json!([alert])
    }

    /// A one-line summary for chat.
    fn sentence(&self) -> String {
        let subject = match &self.group {
            Some(group) => format!("{}/{} group {group}", self.namespace, self.cluster),
            None => format!("{}/{}", self.namespace, self.cluster),
        };
        let change = match (&self.from, &self.to) {
            (Some(from), Some(to)) => format!(" {from} -> {to}"),
            (None, Some(to)) => format!(" -> {to}"),
            (Some(from), None) => format!(" {from} ->"),
            (None, None) => String::new(),
        };
        let epoch = self
            .epoch
            .map(|e| format!(" (epoch {e})"))
            .unwrap_or_default();
        format!(
            "{}: {subject}{change}{epoch} [{}] {}",
            self.event, self.reason, self.message
        )
    }
}

/// Names a cluster or group in a [`Notification`].
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// Namespace of the cluster and its groups.
    pub namespace: &'a str,
    /// FailoverCluster name.
    pub cluster: &'a str,
}

/// The notifications a group's status change calls for: an owner change by the
/// Event the operator publishes for it (`Failover`, `Failback`, `Moved`; a first
/// placement is not sent), the group
/// going `Failed` (`GroupFailed`) and losing its owner otherwise (`GroupOffline`).
pub fn group_notifications(
    subject: Subject<'_>,
    group: &str,
    before: &ResourceGroupStatus,
    after: &ResourceGroupStatus,
    now: Timestamp,
) -> Vec<Notification> {
    let transition = after.last_transition.as_ref();
    let notification = |event: &'static str, warning: bool, to: Option<String>| Notification {
        namespace: subject.namespace.to_owned(),
        cluster: subject.cluster.to_owned(),
        group: Some(group.to_owned()),
        event,
        from: before.owner.clone(),
        to,
        epoch: after.epoch,
        reason: transition.map(|t| t.reason.clone()).unwrap_or_default(),
        message: transition.map(|t| t.message.clone()).unwrap_or_default(),
        warning,
        time: now,
        resolves: false,
    };
    let mut out = Vec::new();
    for notice in group_notices(before, after) {
        // The owner-change Events but a first placement (not news for a pager).
        if matches!(
            notice.reason,
            event::FAILOVER | event::FAILBACK | event::MOVED
        ) {
            out.push(notification(
                notice.reason,
                notice.warning,
                after.owner.clone(),
            ));
        }
    }
    let failed = |s: &ResourceGroupStatus| s.phase == Some(GroupPhase::Failed);
    if failed(after) && !failed(before) {
        out.push(notification(
            webhook::GROUP_FAILED,
            true,
            Some("Failed".to_owned()),
        ));
    } else if after.owner.is_none() && before.owner.is_some() {
        let to = after.phase.map(|p| format!("{p:?}"));
        out.push(notification(webhook::GROUP_OFFLINE, true, to));
    }
    out
}

/// The notifications a cluster's status change calls for: quorum lost or regained.
pub fn cluster_notifications(
    subject: Subject<'_>,
    before: &FailoverClusterStatus,
    after: &FailoverClusterStatus,
    now: Timestamp,
) -> Vec<Notification> {
    cluster_notices(before, after)
        .into_iter()
        .filter(|n| matches!(n.reason, event::QUORUM_LOST | event::QUORUM_REGAINED))
        .map(|n| Notification {
            namespace: subject.namespace.to_owned(),
            cluster: subject.cluster.to_owned(),
            group: None,
            event: n.reason,
            from: None,
            to: None,
            epoch: None,
            reason: n.reason.to_owned(),
            message: n.note,
            warning: n.warning,
            time: now,
            resolves: n.reason == event::QUORUM_REGAINED,
        })
        .collect()
}

/// One notification on its way to one URL.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The URL read from the Secret.
    pub url: String,
    /// The body format.
    pub format: WebhookFormat,
    /// What to say.
    pub notification: Notification,
}

/// How hard the sender tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (the first one included).
    pub attempts: u32,
    /// Wait after the first failed attempt; doubles after each.
    pub first_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// The longest one attempt may take (connect, TLS, request and answer).
    pub attempt_timeout: Duration,
    /// Notifications waiting for the sender; more are dropped and counted.
    pub queue: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(10),
            queue: 256,
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `failed` (1-based).
    pub fn backoff(&self, failed: u32) -> Duration {
        let factor = 2u32.saturating_pow(failed.saturating_sub(1));
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

type Https = HttpClient<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An http and https client with the system's TLS roots (kube's choice as well).
fn https_client() -> std::io::Result<Https> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(HttpClient::builder(TokioExecutor::new()).build(connector))
}

/// The handle reconcilers submit to; cheap to clone.
#[derive(Debug, Clone)]
pub struct Notifier {
    queue: mpsc::Sender<Delivery>,
    metrics: Arc<Metrics>,
}

impl Notifier {
    /// Starts the sender task. When no TLS roots can be loaded, the operator still
    /// runs: every notification is then counted as failed (`tls`) and logged.
    pub fn spawn(policy: RetryPolicy, metrics: Arc<Metrics>) -> Self {
        let client = https_client().map_err(Arc::new);
        if let Err(error) = &client {
            warn!(error = %crate::telemetry::error_report(error.as_ref()), "cannot load TLS roots: webhooks will not be sent");
        }
        let (queue, mut receiver) = mpsc::channel::<Delivery>(policy.queue.max(1));
        let sender_metrics = metrics.clone();
        tokio::spawn(async move {
            while let Some(delivery) = receiver.recv().await {
                match &client {
                    Ok(client) => deliver(client, &policy, &sender_metrics, &delivery).await,
                    Err(error) => record_failure(
                        &sender_metrics,
                        &delivery.notification,
                        &NotifyError::TlsRoots(error.clone()),
                    ),
                }
            }
        });
        Self { queue, metrics }
    }

    /// Queues `delivery` without waiting: a full queue drops it and counts it.
    pub fn submit(&self, delivery: Delivery) {
        if let Err(error) = self.queue.try_send(delivery) {
            let delivery = match error {
                mpsc::error::TrySendError::Full(d) | mpsc::error::TrySendError::Closed(d) => d,
            };
            self.failed(&delivery.notification, &NotifyError::QueueFull);
        }
    }

    /// Counts and logs a notification that could not even be queued (its Secret
    /// could not be read, the queue was full).
    pub fn failed(&self, notification: &Notification, error: &NotifyError) {
        record_failure(&self.metrics, notification, error);
    }
}

fn record_failure(metrics: &Metrics, notification: &Notification, error: &NotifyError) {
    metrics.notification_failed(&notification.namespace, &notification.cluster, error.kind());
    warn!(
        namespace = %notification.namespace,
        cluster = %notification.cluster,
        group = notification.group.as_deref().unwrap_or(""),
        event = notification.event,
        error = %crate::telemetry::error_report(error),
        "webhook notification not delivered"
    );
}

/// Posts `delivery` until it succeeds or the policy's attempts are spent.
async fn deliver(client: &Https, policy: &RetryPolicy, metrics: &Metrics, delivery: &Delivery) {
    let notification = &delivery.notification;
    let body = Bytes::from(delivery.notification.body(delivery.format).to_string());
    let mut failed = 0;
    loop {
        match attempt(client, policy, &delivery.url, body.clone()).await {
            Ok(()) => {
                metrics.notification_sent(&notification.namespace, &notification.cluster);
                info!(
                    namespace = %notification.namespace,
                    cluster = %notification.cluster,
                    group = notification.group.as_deref().unwrap_or(""),
                    event = notification.event,
                    attempts = failed + 1,
                    "webhook notification delivered"
                );
                return;
            }
            Err(error) => {
                failed += 1;
                if failed >= policy.attempts.max(1) {
                    record_failure(metrics, notification, &error);
                    return;
                }
                let wait = policy.backoff(failed);
                warn!(
                    namespace = %notification.namespace,
                    cluster = %notification.cluster,
                    group = notification.group.as_deref().unwrap_or(""),
                    event = notification.event,
                    attempt = failed,
                    retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    error = %crate::telemetry::error_report(&error),
                    "webhook attempt failed"
                );
                tokio::time::sleep(wait).await;
            }
        }
    }
}

async fn attempt(
    client: &Https,
    policy: &RetryPolicy,
    url: &str,
    body: Bytes,
) -> Result<(), NotifyError> {
    let uri: http::Uri = url.parse().map_err(|_| NotifyError::InvalidUrl)?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(NotifyError::InvalidUrl);
    }
    let request = http::Request::post(uri)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .map_err(|_| NotifyError::InvalidUrl)?;
    let response = tokio::time::timeout(policy.attempt_timeout, client.request(request))
        .await
        .map_err(|_| NotifyError::Timeout(policy.attempt_timeout))?
        .map_err(NotifyError::Request)?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(NotifyError::Status(response.status()))
    }
}

#[cfg(test)]
pub(crate) mod tests;
