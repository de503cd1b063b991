//! The bodies of the three formats, the backoff, and the sender against a local
//! HTTP server that answers what each test scripts.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::{Delivery, Notification, Notifier, RetryPolicy};
use crate::api::WebhookFormat;
use crate::operator::metrics::Metrics;

fn failover() -> Notification {
    Notification {
        namespace: "prod".into(),
        cluster: "db".into(),
        group: Some("primary".into()),
        event: "Failover",
        from: Some("node-a".into()),
        to: Some("node-b".into()),
        epoch: Some(7),
        reason: "OwnerLost".into(),
        message: "node-a stopped answering".into(),
        warning: true,
        time: "2026-12-01T10:00:00Z".parse().unwrap(),
        resolves: false,
    }
}

#[test]
fn generic_body_names_every_field() {
    assert_eq!(
        failover().body(WebhookFormat::Generic),
        json!({
            "namespace": "prod",
            "cluster": "db",
            "group": "primary",
            "event": "Failover",
            "from": "node-a",
            "to": "node-b",
            "epoch": 7,
            "reason": "OwnerLost",
            "message": "node-a stopped answering",
            "severity": "warning",
            "time": "2026-12-01T10:00:00Z",
        })
    );
}

#[test]
fn alertmanager_body_is_one_ended_alert_for_a_failover() {
    assert_eq!(
        failover().body(WebhookFormat::Alertmanager),
        json!([{
            "labels": {
                "alertname": "FailoverFailover",
                "namespace": "prod",
                "cluster": "db",
                "group": "primary",
                "severity": "warning",
                "reason": "OwnerLost",
            },
            "annotations": {
                "summary": "Failover: prod/db group primary node-a -> node-b (epoch 7) [OwnerLost] node-a stopped answering",
                "description": "node-a stopped answering",
            },
            "startsAt": "2026-12-01T10:00:00Z",
            "endsAt": "2026-12-01T10:00:00Z",
        }])
    );
}

#[test]
fn alertmanager_quorum_lost_fires_and_regained_resolves_the_same_alert() {
    let lost = Notification {
        group: None,
        event: "QuorumLost",
        from: None,
        to: None,
        epoch: None,
        reason: "QuorumLost".into(),
        ..failover()
    };
    let regained = Notification {
        event: "QuorumRegained",
        reason: "QuorumLost".into(),
        warning: true,
        resolves: true,
        ..lost.clone()
    };
    let lost = lost.body(WebhookFormat::Alertmanager);
    let regained = regained.body(WebhookFormat::Alertmanager);
    assert_eq!(lost[0]["labels"], regained[0]["labels"]);
    assert_eq!(lost[0]["labels"]["alertname"], "FailoverQuorumLost");
    assert!(lost[0].get("endsAt").is_none());
    assert_eq!(regained[0]["endsAt"], "2026-12-01T10:00:00Z");
}

#[test]
fn slack_body_is_one_line_of_text() {
    assert_eq!(
        failover().body(WebhookFormat::Slack),
        json!({"text": "Failover: prod/db group primary node-a -> node-b (epoch 7) [OwnerLost] node-a stopped answering"})
    );
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let policy = RetryPolicy {
        first_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(350),
        ..RetryPolicy::default()
    };
    let waits: Vec<_> = (1..=5).map(|n| policy.backoff(n).as_millis()).collect();
    assert_eq!(waits, [100, 200, 350, 350, 350]);
    assert_eq!(policy.backoff(u32::MAX), Duration::from_millis(350));
}

/// What the test server does with one request.
#[derive(Clone, Copy)]
pub(crate) enum Answer {
    Status(u16),
    Hang,
}

/// A server on 127.0.0.1 that answers requests with `answers` in order (the last
/// one repeated) and sends each request body it read on the channel.
pub(crate) async fn server(answers: Vec<Answer>) -> (String, mpsc::UnboundedReceiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (bodies, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        for n in 0.. {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let answer = answers[n.min(answers.len() - 1)];
            let bodies = bodies.clone();
            tokio::spawn(async move {
                let Some(body) = read_request(&mut stream).await else {
                    return;
                };
                let _ = bodies.send(body);
                match answer {
                    Answer::Status(code) => {
                        let response = format!(
                            "HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        );
                        let _ = stream.write_all(response.as_bytes()).await;
                    }
                    Answer::Hang => tokio::time::sleep(Duration::from_secs(60)).await,
                }
            });
        }
    });
    (url, received)
}

/// Reads one request's head and its content-length body.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Value> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))?
        .trim()
        .parse()
        .ok()?;
    while buffer.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    serde_json::from_slice(&buffer[head_end..head_end + length]).ok()
}

fn quick() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
        attempt_timeout: Duration::from_secs(5),
        queue: 8,
    }
}

fn delivery(url: &str, format: WebhookFormat) -> Delivery {
    Delivery {
        url: url.to_owned(),
        format,
        notification: failover(),
    }
}

/// Waits (bounded) until `metrics` shows `needle`.
async fn metric_line(metrics: &Metrics, needle: &str) -> String {
    for _ in 0..500 {
        let text = metrics.render();
        if let Some(line) = text.lines().find(|l| l.contains(needle)) {
            return line.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no metric line with {needle} in\n{}", metrics.render());
}

pub(crate) async fn next_body(received: &mut mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("the server received no request")
        .expect("the server stopped")
}

#[tokio::test]
async fn each_format_is_posted_as_rendered() {
    let (url, mut received) = server(vec![Answer::Status(200)]).await;
    let metrics = Arc::new(Metrics::default());
    let notifier = Notifier::spawn(quick(), metrics.clone());
    for format in [
        WebhookFormat::Generic,
        WebhookFormat::Alertmanager,
        WebhookFormat::Slack,
    ] {
        notifier.submit(delivery(&url, format));
        assert_eq!(next_body(&mut received).await, failover().body(format));
    }
    metric_line(
        &metrics,
        "failover_operator_notifications_total{namespace=\"prod\",cluster=\"db\"} 3",
    )
    .await;
}

#[tokio::test]
async fn a_500_is_retried_until_success() {
    let (url, mut received) = server(vec![Answer::Status(500), Answer::Status(204)]).await;
    let metrics = Arc::new(Metrics::default());
    let notifier = Notifier::spawn(quick(), metrics.clone());
    notifier.submit(delivery(&url, WebhookFormat::Generic));
    next_body(&mut received).await;
    next_body(&mut received).await;
    let line = metric_line(&metrics, "failover_operator_notifications_total{").await;
    assert!(line.contains("cluster=\"db\""), "{line}");
    assert!(!metrics.render().contains("notification_failures_total{"));
}

#[tokio::test]
async fn the_sender_gives_up_after_the_cap_and_counts_it() {
    let (url, mut received) = server(vec![Answer::Status(503)]).await;
    let metrics = Arc::new(Metrics::default());
    let notifier = Notifier::spawn(quick(), metrics.clone());
    notifier.submit(delivery(&url, WebhookFormat::Slack));
    for _ in 0..3 {
        next_body(&mut received).await;
    }
    let line = metric_line(&metrics, "failover_operator_notification_failures_total{").await;
    assert!(line.contains("reason=\"status\""), "{line}");
    assert!(line.contains("cluster=\"db\""), "{line}");
    // No fourth attempt.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), received.recv())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_hung_webhook_is_a_timeout_per_attempt() {
    let (url, mut received) = server(vec![Answer::Hang]).await;
    let metrics = Arc::new(Metrics::default());
    let policy = RetryPolicy {
        attempts: 2,
        attempt_timeout: Duration::from_millis(100),
        ..quick()
    };
    let notifier = Notifier::spawn(policy, metrics.clone());
    notifier.submit(delivery(&url, WebhookFormat::Generic));
    next_body(&mut received).await;
    next_body(&mut received).await;
    let line = metric_line(&metrics, "failover_operator_notification_failures_total{").await;
    assert!(line.contains("reason=\"timeout\""), "{line}");
}

#[tokio::test]
async fn a_url_that_is_not_http_is_counted_not_sent() {
    let metrics = Arc::new(Metrics::default());
    let notifier = Notifier::spawn(
        RetryPolicy {
            attempts: 1,
            ..quick()
        },
        metrics.clone(),
    );
    notifier.submit(delivery("ftp://example.invalid/x", WebhookFormat::Generic));
    let line = metric_line(&metrics, "failover_operator_notification_failures_total{").await;
    assert!(line.contains("reason=\"invalid_url\""), "{line}");
}

#[test]
fn notifications_follow_the_status_transitions() {
    use super::{Subject, group_notifications};
    use crate::api::{GroupPhase, ResourceGroupStatus, Transition};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    let now = Timestamp::now();
    let subject = Subject {
        namespace: "prod",
        cluster: "db",
    };
    let online_on = |node: &str, reason: &str, epoch| ResourceGroupStatus {
        owner: Some(node.into()),
        epoch: Some(epoch),
        phase: Some(GroupPhase::Online),
        last_transition: Some(Transition {
            reason: reason.into(),
            message: "why".into(),
            time: Time(now),
        }),
        ..ResourceGroupStatus::default()
    };
    let a = online_on("node-a", "Placed", 1);
    let failed_over = online_on("node-b", "OwnerLost", 2);
    let events = |before: &ResourceGroupStatus, after: &ResourceGroupStatus| {
        group_notifications(subject, "primary", before, after, now)
            .into_iter()
            .map(|n| (n.event, n.warning))
            .collect::<Vec<_>>()
    };
    assert_eq!(events(&a, &failed_over), [("Failover", true)]);
    assert_eq!(
        events(&failed_over, &online_on("node-a", "Failback", 3)),
        [("Failback", false)]
    );
    // Every automatic failover is one (issue 13, item 2), not only a lost owner.
    assert_eq!(
        events(&a, &online_on("node-b", "InterfaceDown", 2)),
        [("Failover", true)]
    );
    assert_eq!(
        events(&a, &online_on("node-b", "ManualMove", 2)),
        [("Moved", false)]
    );
    assert_eq!(
        events(&a, &online_on("node-b", "OwnerLeaving", 2)),
        [("Moved", false)]
    );
    // A first placement is not sent.
    assert!(events(&ResourceGroupStatus::default(), &a).is_empty());
    let failed = ResourceGroupStatus {
        owner: None,
        phase: Some(GroupPhase::Failed),
        ..failed_over.clone()
    };
    assert_eq!(events(&failed_over, &failed), [("GroupFailed", true)]);
    let pending = ResourceGroupStatus {
        owner: None,
        phase: Some(GroupPhase::Pending),
        ..failed_over.clone()
    };
    assert_eq!(events(&failed_over, &pending), [("GroupOffline", true)]);
}

#[test]
fn quorum_lost_and_regained_are_the_cluster_notifications() {
    use super::{Subject, cluster_notifications};
    use crate::api::{FailoverClusterStatus, QuorumState, QuorumStatus};
    let now = Timestamp::now();
    let subject = Subject {
        namespace: "prod",
        cluster: "db",
    };
    let with = |state| FailoverClusterStatus {
        quorum: Some(QuorumStatus {
            state,
            voters: 3,
            connected: 2,
        }),
        ..FailoverClusterStatus::default()
    };
    let lost = cluster_notifications(
        subject,
        &with(QuorumState::Quorate),
        &with(QuorumState::Lost),
        now,
    );
    assert_eq!(
        lost.iter()
            .map(|n| (n.event, n.warning, n.resolves))
            .collect::<Vec<_>>(),
        [("QuorumLost", true, false)]
    );
    let regained = cluster_notifications(
        subject,
        &with(QuorumState::Lost),
        &with(QuorumState::Quorate),
        now,
    );
    assert_eq!(
        regained
            .iter()
            .map(|n| (n.event, n.warning, n.resolves))
            .collect::<Vec<_>>(),
        [("QuorumRegained", false, true)]
    );
    assert!(
        cluster_notifications(
            subject,
            &with(QuorumState::Lost),
            &with(QuorumState::Lost),
            now
        )
        .is_empty()
    );
}
