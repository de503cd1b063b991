//! Tests of leader election: the pure decision, and the Lease calls against the
//! mocked API server.

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::json;

use super::*;
use crate::operator::fixtures::NS;
use crate::testing::apiserver::{ApiServerVerifier, mocked_client};

fn spec(holder: Option<&str>, renewed: Timestamp, seconds: i32) -> LeaseSpec {
    LeaseSpec {
        holder_identity: holder.map(str::to_owned),
        renew_time: Some(MicroTime(renewed)),
        lease_duration_seconds: Some(seconds),
        ..LeaseSpec::default()
    }
}

#[test]
fn decisions() {
    let now: Timestamp = "2026-01-01T00:00:30Z".parse().unwrap();
    let recent: Timestamp = "2026-01-01T00:00:20Z".parse().unwrap();
    assert_eq!(decide(None, "a", now), Decision::Create);
    assert_eq!(
        decide(Some(&spec(Some("a"), recent, 15)), "a", now),
        Decision::Renew
    );
    assert_eq!(
        decide(Some(&spec(Some("b"), recent, 15)), "a", now),
        Decision::Wait { holder: "b".into() }
    );
    // Expired: renewed 10 s ago with a 5 s duration.
    assert_eq!(
        decide(Some(&spec(Some("b"), recent, 5)), "a", now),
        Decision::TakeOver
    );
    // Released.
    assert_eq!(
        decide(Some(&spec(None, recent, 15)), "a", now),
        Decision::TakeOver
    );
    assert_eq!(
        decide(Some(&spec(Some(""), recent, 15)), "a", now),
        Decision::TakeOver
    );
}

const LEADER: &str = "/apis/coordination.k8s.io/v1/namespaces/ns/leases/failover-operator-leader";

fn elector() -> (Elector, ApiServerVerifier) {
    let (client, api) = mocked_client(NS);
    let elector = Elector::new(
        kube::Api::namespaced(client, NS),
        "me".into(),
        Duration::from_secs(15),
        Duration::from_secs(5),
    );
    (elector, api)
}

#[tokio::test]
async fn leader_lease_is_created_then_released_by_compare_and_swap() {
    let (elector, mut api) = elector();
    let server = tokio::spawn(async move {
        api.not_found(LEADER).await;
        let created = api
            .expect(
                Method::POST,
                "/apis/coordination.k8s.io/v1/namespaces/ns/leases",
                |b| (StatusCode::CREATED, b.clone()),
            )
            .await
            .body;
        assert_eq!(created["metadata"]["name"], "failover-operator-leader");
        assert_eq!(created["spec"]["holderIdentity"], "me");
        assert_eq!(created["spec"]["leaseDurationSeconds"], 15);
        let mut held = created.clone();
        held["metadata"]["resourceVersion"] = json!("5");
        api.expect(Method::GET, LEADER, move |_| (StatusCode::OK, held))
            .await;
        let released = api
            .expect(Method::PUT, LEADER, |b| (StatusCode::OK, b.clone()))
            .await
            .body;
        assert_eq!(
            released["metadata"]["resourceVersion"], "5",
            "a compare-and-swap"
        );
        assert!(released["spec"].get("holderIdentity").is_none());
    });
    elector.acquire().await;
    elector.release().await;
    server.await.unwrap();
}

#[tokio::test]
async fn an_expired_leader_lease_is_taken_over_with_a_new_transition() {
    let (elector, mut api) = elector();
    let stale = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "failover-operator-leader", "namespace": NS, "resourceVersion": "9"},
        "spec": {"holderIdentity": "other", "leaseDurationSeconds": 15, "leaseTransitions": 3,
                 "renewTime": (Timestamp::now() - Duration::from_secs(60)).to_string()},
    });
    let server = tokio::spawn(async move {
        api.expect(Method::GET, LEADER, move |_| (StatusCode::OK, stale))
            .await;
        let taken = api
            .expect(Method::PUT, LEADER, |b| (StatusCode::OK, b.clone()))
            .await
            .body;
        assert_eq!(taken["spec"]["holderIdentity"], "me");
        assert_eq!(taken["spec"]["leaseTransitions"], 4);
        assert_eq!(taken["metadata"]["resourceVersion"], "9");
    });
    elector.acquire().await;
    server.await.unwrap();
}
