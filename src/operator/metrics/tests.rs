//! Tests of the operator's metrics and health endpoints.

use std::time::Duration;

use super::Metrics;

#[test]
fn metrics_and_health_endpoints() {
    let metrics = Metrics::default();
    metrics.reconciled("failovercluster", Duration::from_millis(3));
    metrics.failed("failovercluster", "timeout");
    metrics.managed("FailoverCluster", 4);
    let get = |path: &str| {
        crate::telemetry::http::respond(format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes(), &metrics)
            .0
    };
    let scraped = get("/metrics");
    assert_eq!(scraped.status, 200);
    let body = scraped.body;
    assert!(
        body.contains("failover_operator_reconciles_total{controller=\"failovercluster\"} 1"),
        "{body}"
    );
    assert!(body.contains("failover_operator_reconcile_errors_total{controller=\"failovercluster\",kind=\"timeout\"} 1"), "{body}");
    assert!(
        body.contains(
            "failover_operator_reconcile_duration_seconds_count{controller=\"failovercluster\"} 1"
        ),
        "{body}"
    );
    assert!(
        body.contains("failover_operator_managed_objects{kind=\"FailoverCluster\"} 4"),
        "{body}"
    );
    metrics.object_states(
        [("ns".to_owned(), "edge".to_owned(), false)],
        [("ns".to_owned(), "web".to_owned(), true)],
    );
    let body = get("/metrics").body;
    assert!(
        body.contains(
            "failover_operator_cluster_config_valid{namespace=\"ns\",cluster=\"edge\"} 0"
        ),
        "{body}"
    );
    assert!(
        body.contains("failover_operator_group_failed{namespace=\"ns\",group=\"web\"} 1"),
        "{body}"
    );
    // A deleted object's series goes away with it.
    metrics.object_states([], []);
    assert!(!get("/metrics").body.contains("group=\"web\""));
    assert_eq!(get("/healthz").status, 200);
    assert_eq!(get("/readyz").status, 503);
    metrics.set_ready(true);
    assert_eq!(get("/readyz").status, 200);
    assert_eq!(get("/other").status, 404);
}
