//! Tests of the Kubernetes mode: the pure decisions and renderings, then the Lease
//! calls against kube's tower-test mock (each expected request checked and answered).

use std::collections::BTreeMap;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use kube::client::Body;
use serde_json::{Value, json};

use super::lease::{self, Claim, Leases, Refusal, Taken, WitnessAnswer};
use super::*;

const NS: &str = "ns";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/ns/leases";

fn lease(name: &str, rv: &str, holder: Option<&str>, transitions: Option<i32>) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(NS.to_owned()),
            resource_version: Some(rv.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_transitions: transitions,
            ..LeaseSpec::default()
        }),
    }
}

fn claim(node: &str, epoch: u64) -> Claim {
    Claim {
        node: node.to_owned(),
        epoch,
        duration_secs: 1,
        reason: "OwnerLost".to_owned(),
        message: "n2 is not alive".to_owned(),
    }
}

fn spec(lease: &Lease) -> &LeaseSpec {
    lease.spec.as_ref().unwrap()
}

// ---------------------------------------------------------------- pure decisions

#[test]
fn group_lease_is_taken_when_the_stored_epoch_is_lower() {
    let now = Timestamp::now();
    let current = lease("c-group-web", "5", Some("n2"), Some(2));
    let taken = lease::claim_group(&current, &claim("n1", 3), now).unwrap();
    let s = spec(&taken);
    assert_eq!(s.holder_identity.as_deref(), Some("n1"));
    assert_eq!(s.lease_transitions, Some(3));
    assert_eq!(s.lease_duration_seconds, Some(1));
    assert_eq!(s.renew_time, Some(MicroTime(now)));
    assert_eq!(s.acquire_time, Some(MicroTime(now)));
    // The resourceVersion read makes the write a compare-and-swap.
    assert_eq!(taken.metadata.resource_version.as_deref(), Some("5"));
    let a = taken.metadata.annotations.as_ref().unwrap();
    assert_eq!(a["failover.dev/reason"], "OwnerLost");
    assert_eq!(a["failover.dev/message"], "n2 is not alive");

    // The operator creates it empty: no holder, no transitions.
    let empty = lease("c-group-web", "1", None, None);
    assert!(lease::claim_group(&empty, &claim("n1", 1), now).is_ok());
}

#[test]
fn group_lease_refuses_a_stale_epoch_of_another_node_but_not_its_holder() {
    let now = Timestamp::now();
    let current = lease("c-group-web", "5", Some("n2"), Some(4));
    assert_eq!(
        lease::claim_group(&current, &claim("n1", 4), now),
        Err(Refusal::StaleEpoch {
            holder: "n2".into(),
            stored: 4
        })
    );
    assert!(lease::claim_group(&current, &claim("n1", 3), now).is_err());
    // The same holder renews or re-records (e.g. after its restart) and keeps its
    // acquireTime.
    let mut own = lease("c-group-web", "5", Some("n1"), Some(7));
    own.spec.as_mut().unwrap().acquire_time = Some(MicroTime(Timestamp::UNIX_EPOCH));
    let taken = lease::claim_group(&own, &claim("n1", 7), now).unwrap();
    assert_eq!(
        spec(&taken).acquire_time,
        Some(MicroTime(Timestamp::UNIX_EPOCH))
    );
}

#[test]
fn group_lease_renewal_only_touches_our_own_record() {
    let now = Timestamp::now();
    let ours = lease("g", "5", Some("n1"), Some(3));
    let renewed = lease::renew_group(&ours, "n1", 3, now).unwrap();
    assert_eq!(spec(&renewed).renew_time, Some(MicroTime(now)));
    assert_eq!(spec(&renewed).lease_transitions, Some(3));
    assert!(lease::renew_group(&ours, "n1", 2, now).is_none());
    assert!(lease::renew_group(&ours, "n2", 3, now).is_none());
}

#[test]
fn witness_held_until_is_conservative() {
    let sent = Duration::from_secs(10);
    assert_eq!(lease::held_until(sent, 1), Duration::from_millis(10_990));
    assert_eq!(lease::held_until(sent, 3), Duration::from_millis(12_970));
    // Shorter than the lease by exactly the drift allowance.
    let d = lease::held_until(Duration::ZERO, 100);
    assert_eq!(d, Duration::from_secs(99));
}

#[test]
fn witness_is_taken_when_free_ours_or_expired_and_refused_with_the_expiry() {
    let now = Timestamp::now();
    let free = lease("c-witness", "1", None, None);
    let taken = lease::claim_witness(&free, "n1", 1, now).unwrap();
    assert_eq!(spec(&taken).holder_identity.as_deref(), Some("n1"));
    assert_eq!(spec(&taken).lease_transitions, Some(1));

    // Ours: a renewal, no new transition.
    let renewed = lease::claim_witness(&taken, "n1", 1, now).unwrap();
    assert_eq!(spec(&renewed).lease_transitions, Some(1));

    let mut other = lease("c-witness", "2", Some("n2"), Some(1));
    let s = other.spec.as_mut().unwrap();
    s.lease_duration_seconds = Some(2);
    s.renew_time = Some(MicroTime(now - jiff::SignedDuration::from_millis(500)));
    let expiry = now + jiff::SignedDuration::from_millis(1500);
    assert_eq!(
        lease::claim_witness(&other, "n1", 1, now),
        Err(Some(expiry))
    );
    // Expired: taken over, one more transition.
    let later = now + jiff::SignedDuration::from_secs(2);
    let taken = lease::claim_witness(&other, "n1", 1, later).unwrap();
    assert_eq!(spec(&taken).holder_identity.as_deref(), Some("n1"));
    assert_eq!(spec(&taken).lease_transitions, Some(2));
    // Another holder that does not say for how long: refused, expiry unknown.
    let vague = lease("c-witness", "3", Some("n2"), None);
    assert_eq!(lease::claim_witness(&vague, "n1", 1, now), Err(None));

    let local = Duration::from_secs(100);
    assert_eq!(
        lease::other_until(expiry, now, local),
        Duration::from_millis(101_500)
    );
    // An expiry in the past is now.
    assert_eq!(lease::other_until(now, expiry, local), local);
}

fn report() -> Report {
    Report {
        config_hash: 0x00ab_cdef_0123_4567,
        quorate: true,
        alive: vec!["n1".into(), "n2".into()],
        held: BTreeMap::from([("web".into(), 4)]),
        explain: BTreeMap::from([("web".into(), "n1 is the owner".into())]),
    }
}

#[test]
fn node_lease_annotations_follow_the_contract() {
    let a = lease::node_annotations(&report());
    assert_eq!(a["failover.dev/config-hash"], "00abcdef01234567");
    let view: Value = serde_json::from_str(&a["failover.dev/view"]).unwrap();
    assert_eq!(
        view,
        json!({"quorate": true, "alive": ["n1", "n2"], "held": {"web": 4}})
    );
    let explain: Value = serde_json::from_str(&a["failover.dev/explain"]).unwrap();
    assert_eq!(explain, json!({"web": "n1 is the owner"}));

    let now = Timestamp::now();
    let l = lease::node_lease(None, "c", "n1", 2, &report(), now);
    assert_eq!(l.metadata.name.as_deref(), Some("c-node-n1"));
    assert_eq!(
        l.metadata.labels.as_ref().unwrap()["failover.dev/cluster"],
        "c"
    );
    assert_eq!(spec(&l).holder_identity.as_deref(), Some("n1"));
    assert_eq!(spec(&l).lease_duration_seconds, Some(2));
    assert_eq!(spec(&l).renew_time, Some(MicroTime(now)));
}

#[test]
fn timing_follows_the_heartbeat_settings() {
    let yaml = |interval: &str, dead: &str| {
        CONFIG
            .replace("interval: 200ms", &format!("interval: {interval}"))
            .replace("deadAfter: 1s", &format!("deadAfter: {dead}"))
    };
    let t = Timing::of(&AgentConfig::from_cluster_yaml(CONFIG).unwrap().model);
    assert_eq!(
        t,
        Timing {
            duration_secs: 1,
            timeout: Duration::from_secs(1),
            renew_every: Duration::from_millis(250)
        }
    );
    let t = Timing::of(
        &AgentConfig::from_cluster_yaml(&yaml("2s", "4500ms"))
            .unwrap()
            .model,
    );
    assert_eq!(
        t,
        Timing {
            duration_secs: 5,
            timeout: Duration::from_secs(2),
            renew_every: Duration::from_secs(1)
        }
    );
    let t = Timing::of(
        &AgentConfig::from_cluster_yaml(&yaml("500ms", "1500ms"))
            .unwrap()
            .model,
    );
    assert_eq!(t.renew_every, Duration::from_millis(500));
    assert_eq!(t.duration_secs, 2);
}

/// A two-node witness cluster as the operator renders it (addresses resolved).
const CONFIG: &str = "apiVersion: failover.dev/v1alpha1
kind: FailoverCluster
metadata: {name: c, namespace: ns}
spec:
  members:
    - {node: n1, address: 10.0.0.1}
    - {node: n2, address: 10.0.0.2}
  quorum: witness
  heartbeat: {interval: 200ms, deadAfter: 1s, port: 7946}
---
apiVersion: failover.dev/v1alpha1
kind: ResourceGroup
metadata: {name: web, namespace: ns}
spec:
  cluster: c
  resources:
    - {name: vip, virtualIP: {address: 192.0.2.10/32}}
";

fn config_map(data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some("c-config".into()),
            namespace: Some(NS.into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "failover.dev/v1alpha1".into(),
                kind: "FailoverCluster".into(),
                name: "c".into(),
                uid: "uid-1".into(),
                controller: Some(true),
                ..OwnerReference::default()
            }]),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..ConfigMap::default()
    }
}

#[test]
fn config_map_loads_with_witness_quorum_and_clear_failures() {
    let standalone = AgentConfig::from_yaml(CONFIG).unwrap_err();
    assert!(matches!(standalone, ConfigError::WitnessStandalone));

    let (config, clear) = parse_config_map(&config_map(&[
        ("config.yaml", CONFIG),
        ("hash", "0000000000000000"), // differs: logged, the computed hash runs
        ("clear-failures.json", r#"{"web":"2026-11-22T02:00:00Z"}"#),
    ]))
    .unwrap();
    assert_eq!(config.model.quorum, crate::placement::QuorumMode::Witness);
    assert_eq!(
        config.hash,
        AgentConfig::from_cluster_yaml(CONFIG).unwrap().hash
    );
    assert_eq!(clear["web"], "2026-11-22T02:00:00Z");

    let (_, clear) = parse_config_map(&config_map(&[
        ("config.yaml", CONFIG),
        ("clear-failures.json", "not json"),
    ]))
    .unwrap();
    assert!(clear.is_empty());
    assert!(matches!(
        parse_config_map(&config_map(&[("hash", "x")])),
        Err(SourceError::Missing {
            key: "config.yaml",
            ..
        })
    ));
    let invalid = CONFIG.replace("deadAfter: 1s", "deadAfter: 10ms");
    assert!(matches!(
        parse_config_map(&config_map(&[("config.yaml", &invalid)])),
        Err(SourceError::Config { .. })
    ));

    let reference = cluster_reference(&config_map(&[])).unwrap();
    assert_eq!(reference.kind.as_deref(), Some("FailoverCluster"));
    assert_eq!(reference.name.as_deref(), Some("c"));
    assert_eq!(reference.namespace.as_deref(), Some("ns"));
    assert_eq!(reference.uid.as_deref(), Some("uid-1"));
}

#[test]
fn only_new_or_changed_clear_failures_values_clear() {
    let old = BTreeMap::from([
        ("a".to_owned(), "1".to_owned()),
        ("b".to_owned(), "1".to_owned()),
    ]);
    let new = BTreeMap::from([
        ("a".to_owned(), "1".to_owned()),
        ("b".to_owned(), "2".to_owned()),
        ("c".to_owned(), "1".to_owned()),
    ]);
    assert_eq!(cleared(&old, &new), vec!["b".to_owned(), "c".to_owned()]);
    assert!(cleared(&new, &new).is_empty());
}

#[test]
fn secret_gives_the_keyring_with_the_previous_key() {
    let secret = |data: &[(&str, &[u8])]| Secret {
        metadata: ObjectMeta {
            name: Some("c-heartbeat".into()),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), ByteString(v.to_vec())))
                .collect(),
        ),
        ..Secret::default()
    };
    let key = [7u8; 32];
    let old = [9u8; 32];
    let (_, raw) = parse_secret(&secret(&[("key", &key), ("previousKey", &old)])).unwrap();
    assert_eq!(raw, (key.to_vec(), Some(old.to_vec())));
    let (_, raw) = parse_secret(&secret(&[("key", &key)])).unwrap();
    assert_eq!(raw, (key.to_vec(), None));
    assert!(matches!(
        parse_secret(&secret(&[("key", b"short")])),
        Err(SourceError::Key { .. })
    ));
    assert!(matches!(
        parse_secret(&secret(&[])),
        Err(SourceError::Missing { key: "key", .. })
    ));
}

#[test]
fn notices_become_events_with_reasons() {
    let took = |reason| Notice::Took {
        group: "web".into(),
        reason,
        message: "why".into(),
    };
    let (t, r, note) = event_for("n1", &took(Reason::OwnerLost));
    assert_eq!((t, r), (EventType::Normal, "Failover"));
    assert_eq!(note, "n1 took group web (OwnerLost): why");
    assert_eq!(event_for("n1", &took(Reason::Failback)).1, "Failback");
    assert_eq!(event_for("n1", &took(Reason::Placed)).1, "GroupTaken");
    let (t, r, _) = event_for(
        "n1",
        &Notice::Fenced {
            group: "web".into(),
        },
    );
    assert_eq!((t, r), (EventType::Warning, "Fenced"));
    assert_eq!(event_for("n1", &Notice::QuorumLost).1, "QuorumLost");
    assert_eq!(event_for("n1", &Notice::QuorumGained).1, "QuorumRegained");
}

// ---------------------------------------------------------------- mocked API server

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn leases() -> (Leases, Handle) {
    let (mock, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(mock, NS);
    let leases = Leases {
        api: Api::namespaced(client, NS),
        cluster: "c".into(),
        node: "n1".into(),
        timeout: Duration::from_secs(10),
    };
    (leases, handle)
}

/// Takes the next request, checks method and path, answers; returns its body.
async fn expect(
    handle: &mut Handle,
    method: Method,
    path: &str,
    status: StatusCode,
    answer: impl FnOnce(&Value) -> Value,
) -> Value {
    let (request, send) = tokio::time::timeout(Duration::from_secs(10), handle.next_request())
        .await
        .unwrap_or_else(|_| panic!("no request; expected {method} {path}"))
        .unwrap_or_else(|| panic!("client gone; expected {method} {path}"));
    assert_eq!(
        (request.method(), request.uri().path()),
        (&method, path),
        "unexpected request"
    );
    let bytes = request.into_body().collect_bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    let reply = answer(&body);
    send.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&reply).unwrap()))
            .unwrap(),
    );
    body
}

fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": reason, "reason": reason, "code": code})
}

fn to_json(lease: &Lease) -> Value {
    serde_json::to_value(lease).unwrap()
}

const GROUP: &str = "/apis/coordination.k8s.io/v1/namespaces/ns/leases/c-group-web";
const WITNESS: &str = "/apis/coordination.k8s.io/v1/namespaces/ns/leases/c-witness";
const NODE: &str = "/apis/coordination.k8s.io/v1/namespaces/ns/leases/c-node-n1";

#[tokio::test]
async fn ledger_compare_and_swap_succeeds() {
    let (leases, mut api) = leases();
    let server = tokio::spawn(async move {
        let stored = lease("c-group-web", "5", None, None);
        expect(&mut api, Method::GET, GROUP, StatusCode::OK, |_| {
            to_json(&stored)
        })
        .await;
        let put = expect(&mut api, Method::PUT, GROUP, StatusCode::OK, Value::clone).await;
        assert_eq!(put["metadata"]["resourceVersion"], "5");
        assert_eq!(put["spec"]["holderIdentity"], "n1");
        assert_eq!(put["spec"]["leaseTransitions"], 3);
        assert_eq!(put["spec"]["leaseDurationSeconds"], 1);
        assert_eq!(
            put["metadata"]["annotations"]["failover.dev/reason"],
            "OwnerLost"
        );
    });
    assert_eq!(
        leases.take_group("web", &claim("n1", 3)).await.unwrap(),
        Taken::Granted
    );
    server.await.unwrap();
}

#[tokio::test]
async fn ledger_conflict_rereads_and_refuses_when_another_node_won() {
    let (leases, mut api) = leases();
    let server = tokio::spawn(async move {
        let stored = lease("c-group-web", "5", None, None);
        expect(&mut api, Method::GET, GROUP, StatusCode::OK, |_| {
            to_json(&stored)
        })
        .await;
        expect(&mut api, Method::PUT, GROUP, StatusCode::CONFLICT, |_| {
            status(409, "Conflict")
        })
        .await;
        // Re-read: n2 recorded the same epoch in between: no second write.
        let won = lease("c-group-web", "6", Some("n2"), Some(3));
        expect(&mut api, Method::GET, GROUP, StatusCode::OK, |_| {
            to_json(&won)
        })
        .await;
        api
    });
    assert_eq!(
        leases.take_group("web", &claim("n1", 3)).await.unwrap(),
        Taken::Refused { recorded: Some(3) }
    );
    let mut api = server.await.unwrap();
    // Nothing else was sent.
    drop(leases);
    assert!(api.next_request().await.is_none());
}

#[tokio::test]
async fn ledger_two_conflicts_in_a_row_refuse() {
    let (leases, mut api) = leases();
    let server = tokio::spawn(async move {
        for rv in ["5", "6"] {
            let stored = lease("c-group-web", rv, None, None);
            expect(&mut api, Method::GET, GROUP, StatusCode::OK, |_| {
                to_json(&stored)
            })
            .await;
            expect(&mut api, Method::PUT, GROUP, StatusCode::CONFLICT, |_| {
                status(409, "Conflict")
            })
            .await;
        }
    });
    assert_eq!(
        leases.take_group("web", &claim("n1", 3)).await.unwrap(),
        Taken::Refused { recorded: None }
    );
    server.await.unwrap();
}

#[tokio::test]
async fn ledger_stale_epoch_is_refused_without_a_write() {
    let (leases, mut api) = leases();
    let server = tokio::spawn(async move {
        let stored = lease("c-group-web", "9", Some("n2"), Some(8));
        expect(&mut api, Method::GET, GROUP, StatusCode::OK, |_| {
            to_json(&stored)
        })
        .await;
        api
    });
    assert_eq!(
        leases.take_group("web", &claim("n1", 5)).await.unwrap(),
        Taken::Refused { recorded: Some(8) },
        "a stale claim learns the epoch the Lease holds"
    );
    let mut api = server.await.unwrap();
    drop(leases);
    assert!(api.next_request().await.is_none());
}

#[tokio::test]
async fn unanswered_ledger_request_is_refused_after_the_timeout() {
    let (leases, mut api) = leases();
    let (updates_tx, mut updates) = mpsc::channel(4);
    let (_timing_tx, timing) = watch::channel(Some(Timing {
        duration_secs: 1,
        timeout: Duration::from_millis(200),
        renew_every: Duration::from_secs(1),
    }));
    let (reports, _) = watch::channel(None);
    let (notices, _notices_rx) = mpsc::channel(4);
    let mut backend = KubeBackend {
        leases,
        updates: updates_tx,
        timing,
        start: Instant::now(),
        reports,
        notices,
    };
    assert!(backend.ledger_request("web".into(), 2, Reason::OwnerLost, "why".into()));
    // The API server takes the GET and never answers.
    let (_request, _send) = api.next_request().await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), updates.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        answer,
        Update::Engine(Input::Ledger { ref group, epoch: 2, granted: false, .. }) if group == "web"
    ));
}

#[tokio::test]
async fn witness_is_acquired_then_refused_with_the_other_holders_expiry() {
    let (leases, mut api) = leases();
    let server = tokio::spawn(async move {
        let free = lease("c-witness", "3", None, None);
        expect(&mut api, Method::GET, WITNESS, StatusCode::OK, |_| {
            to_json(&free)
        })
        .await;
        let put = expect(&mut api, Method::PUT, WITNESS, StatusCode::OK, Value::clone).await;
        assert_eq!(put["spec"]["holderIdentity"], "n1");
        assert_eq!(put["metadata"]["resourceVersion"], "3");

        let mut other = lease("c-witness", "4", Some("n2"), Some(2));
        let s = other.spec.as_mut().unwrap();
        s.renew_time = Some(MicroTime(Timestamp::now()));
        s.lease_duration_seconds = Some(10);
        expect(&mut api, Method::GET, WITNESS, StatusCode::OK, |_| {
            to_json(&other)
        })
        .await;
    });
    let sent = Duration::from_secs(50);
    let answer = leases.witness(1, sent, || sent).await.unwrap();
    assert_eq!(
        answer,
        WitnessAnswer {
            held_until: Some(lease::held_until(sent, 1)),
            other_until: None
        }
    );
    let answer = leases.witness(1, sent, || sent).await.unwrap();
    assert_eq!(answer.held_until, None);
    let other = answer.other_until.unwrap();
    assert!(
        other > sent + Duration::from_secs(8) && other <= sent + Duration::from_secs(10),
        "{other:?}"
    );
    server.await.unwrap();
}

#[tokio::test]
async fn node_lease_is_created_then_renewed_with_annotations() {
    let (leases, mut api) = leases();
    let server = tokio::spawn(async move {
        expect(&mut api, Method::GET, NODE, StatusCode::NOT_FOUND, |_| {
            status(404, "NotFound")
        })
        .await;
        let created = expect(&mut api, Method::POST, LEASES, StatusCode::CREATED, |b| {
            let mut stored = b.clone();
            stored["metadata"]["resourceVersion"] = json!("10");
            stored
        })
        .await;
        assert_eq!(created["metadata"]["name"], "c-node-n1");
        assert_eq!(created["metadata"]["labels"]["failover.dev/cluster"], "c");
        assert_eq!(created["spec"]["holderIdentity"], "n1");
        assert_eq!(
            created["metadata"]["annotations"]["failover.dev/config-hash"],
            "00abcdef01234567"
        );
        // The renewal writes over what was stored, with its resourceVersion: no GET.
        let renewed = expect(&mut api, Method::PUT, NODE, StatusCode::OK, Value::clone).await;
        assert_eq!(renewed["metadata"]["resourceVersion"], "10");
        let view: Value = serde_json::from_str(
            renewed["metadata"]["annotations"]["failover.dev/view"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(view["quorate"], false);
        assert!(renewed["spec"]["renewTime"].is_string());
    });
    let stored = leases.renew_node(None, 1, &report()).await.unwrap();
    let mut later = report();
    later.quorate = false;
    leases.renew_node(Some(stored), 1, &later).await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn watches_by_name_feed_the_config_and_the_keys() {
    let (mock, mut api) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(mock, NS);
    let (updates_tx, mut updates) = mpsc::channel(8);
    let (timing_tx, timing) = watch::channel(None);
    let (reference_tx, reference) = watch::channel(None);
    tokio::spawn(watch_sources(
        client,
        NS.into(),
        "c".into(),
        updates_tx,
        timing_tx,
        reference_tx,
    ));
    let cm = config_map(&[("config.yaml", CONFIG)]);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("c-heartbeat".into()),
            namespace: Some(NS.into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "key".to_owned(),
            ByteString(vec![3; 32]),
        )])),
        ..Secret::default()
    };
    let server = tokio::spawn(async move {
        // Answer both initial lists (in whatever order they come); keep the watches
        // that follow open without events.
        let mut held = Vec::new();
        let mut lists = 0;
        while lists < 2 {
            let (request, send) = api.next_request().await.expect("a request");
            let path = request.uri().path().to_owned();
            let query = request.uri().query().unwrap_or_default().to_owned();
            if query.contains("watch=true") {
                held.push(send);
                continue;
            }
            let (name, items) = match path.as_str() {
                "/api/v1/namespaces/ns/configmaps" => ("c-config", json!([cm])),
                "/api/v1/namespaces/ns/secrets" => ("c-heartbeat", json!([secret])),
                other => panic!("unexpected request {other}?{query}"),
            };
            // Only its own object, as RBAC (resourceNames) allows.
            assert!(
                query.contains(&format!("fieldSelector=metadata.name%3D{name}")),
                "{query}"
            );
            send.send_response(
                Response::builder()
                    .body(Body::from(
                        serde_json::to_vec(&json!({
                            "apiVersion": "v1", "kind": "List",
                            "metadata": {"resourceVersion": "1"}, "items": items,
                        }))
                        .unwrap(),
                    ))
                    .unwrap(),
            );
            lists += 1;
        }
        (api, held)
    });
    let mut got_config = false;
    let mut got_keys = false;
    while !(got_config && got_keys) {
        let update = tokio::time::timeout(Duration::from_secs(10), updates.recv())
            .await
            .expect("an update")
            .expect("channel open");
        match update {
            Update::Config(config) => {
                assert_eq!(config.model.cluster, "ns/c");
                got_config = true;
            }
            Update::Keys(_) => got_keys = true,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(timing.borrow().unwrap().duration_secs, 1);
    assert_eq!(
        reference.borrow().as_ref().unwrap().name.as_deref(),
        Some("c")
    );
    let _keep = server.await.unwrap();
}
