//! Tests of the Kubernetes mode: the pure decisions and renderings, then the Lease
//! calls and the watches against the shared mocked API server (each expected request
//! checked and answered, every write checked against the API server's rules).

use std::collections::BTreeMap;
use std::time::Duration;

use http::{Method, Response, StatusCode};
use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use kube::client::Body;
use serde_json::{Value, json};

use super::lease::{self, LeaseError, Leases, Record, Verdict, WitnessAnswer};
use super::*;
use crate::agent::metrics::Phase;
use crate::agent::timeline::{Origin, Takeover};
use crate::contract::model::ConfigError;
use crate::contract::report::Owned;
use crate::placement::Reason;
use crate::testing::apiserver::{ApiServerVerifier, failure, mocked_client};

const NS: &str = "ns";

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

fn record(node: &str, epoch: u64) -> Record {
    Record {
        node: node.to_owned(),
        epoch,
        duration_secs: 1,
        reason: "OwnerLost".to_owned(),
        message: "n2 is not alive".to_owned(),
        since: "2026-12-01T04:00:00Z".parse().unwrap(),
    }
}

fn written(verdict: Verdict) -> Lease {
    match verdict {
        Verdict::Write(lease) => *lease,
        other => panic!("expected a write, got {other:?}"),
    }
}

fn spec(lease: &Lease) -> &LeaseSpec {
    lease.spec.as_ref().unwrap()
}

// ---------------------------------------------------------------- pure decisions

#[test]
fn group_record_is_written_over_a_lower_epoch() {
    let now = Timestamp::now();
    let mine = record("n1", 3);
    for written_before in [false, true] {
        let current = lease("c-group-web", "5", Some("n2"), Some(2));
        let taken = written(lease::record_group(&current, &mine, written_before, now));
        let s = spec(&taken);
        assert_eq!(s.holder_identity.as_deref(), Some("n1"));
        assert_eq!(s.lease_transitions, Some(3));
        assert_eq!(s.lease_duration_seconds, Some(1));
        assert_eq!(s.renew_time, Some(MicroTime(now)));
        // acquireTime: when the majority made n1 the owner, not when the API answered.
        assert_eq!(s.acquire_time, Some(MicroTime(mine.since)));
        // The resourceVersion read makes the write an update with a precondition.
        assert_eq!(taken.metadata.resource_version.as_deref(), Some("5"));
        let a = taken.metadata.annotations.as_ref().unwrap();
        assert_eq!(a["failover.dev/reason"], "OwnerLost");
        assert_eq!(a["failover.dev/message"], "n2 is not alive");
    }
    // The operator creates it empty: no holder, no transitions.
    let empty = lease("c-group-web", "1", None, None);
    written(lease::record_group(&empty, &record("n1", 1), false, now));
}

#[test]
fn group_record_renews_our_own_record_and_keeps_its_acquire_time() {
    let now = Timestamp::now();
    let mut own = lease("c-group-web", "5", Some("n1"), Some(7));
    own.spec.as_mut().unwrap().acquire_time = Some(MicroTime(Timestamp::UNIX_EPOCH));
    let renewed = written(lease::record_group(&own, &record("n1", 7), true, now));
    assert_eq!(
        spec(&renewed).acquire_time,
        Some(MicroTime(Timestamp::UNIX_EPOCH))
    );
    assert_eq!(spec(&renewed).renew_time, Some(MicroTime(now)));
}

#[test]
fn a_record_not_below_ours_is_a_floor_before_ours_was_written_and_supersedes_after() {
    let now = Timestamp::now();
    // Another node at a higher or the same epoch.
    for stored in [5, 9] {
        let current = lease("c-group-web", "5", Some("n2"), Some(stored));
        assert_eq!(
            lease::record_group(&current, &record("n1", 5), false, now),
            Verdict::Floor(u64::try_from(stored).unwrap()),
            "from before our take: a floor, never a fence"
        );
        assert_eq!(
            lease::record_group(&current, &record("n1", 5), true, now),
            Verdict::Superseded {
                holder: "n2".into(),
                epoch: u64::try_from(stored).unwrap()
            },
            "written over ours: someone took over since"
        );
    }
    // This node's own record from before its restart (finding 3: epoch 5, then 1).
    let stale = lease("c-group-web", "5", Some("n1"), Some(5));
    assert_eq!(
        lease::record_group(&stale, &record("n1", 1), false, now),
        Verdict::Floor(5)
    );
    // Even at the same epoch: a new take must not leave the record as it was.
    assert_eq!(
        lease::record_group(&stale, &record("n1", 5), false, now),
        Verdict::Floor(5)
    );
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
        owned: BTreeMap::from([(
            "web".into(),
            Owned {
                epoch: 4,
                reason: Reason::Failback,
                message: "web failed back from n2 to n1, which ranks higher".into(),
                since: Some("2026-12-01T04:00:00Z".parse().unwrap()),
                resources: Vec::new(),
            },
        )]),
        explain: BTreeMap::from([("web".into(), "n1 is the owner".into())]),
        failed: vec!["db".into()],
        failovers: BTreeMap::from([("db".into(), 2)]),
        config_mismatch: BTreeMap::new(),
        config_outvoted: false,
        links_down: BTreeMap::new(),
        takeovers: vec![takeover()],
    }
}

/// A failover of web to n1, 3.5 ms from the detection to every resource online.
fn takeover() -> Takeover {
    Takeover {
        group: "web".into(),
        reason: Reason::OwnerLost,
        epoch: 4,
        origin: Origin::Detected,
        time: "2026-12-01T04:00:00Z".parse().unwrap(),
        phases: vec![
            (Phase::Decided, Duration::from_micros(400)),
            (Phase::Ledger, Duration::from_micros(2100)),
            (Phase::VipUp, Duration::from_micros(3000)),
            (Phase::ArpSent, Duration::from_micros(3120)),
            (Phase::Online, Duration::from_micros(3500)),
        ],
    }
}

#[test]
fn node_lease_annotations_follow_the_contract() {
    let a = report().node_report().annotations();
    assert_eq!(a["failover.dev/config-hash"], "00abcdef01234567");
    let view: Value = serde_json::from_str(&a["failover.dev/view"]).unwrap();
    assert_eq!(
        view,
        json!({"quorate": true, "alive": ["n1", "n2"], "held": {"web": 4}, "failed": ["db"],
               "failovers": {"db": 2}})
    );
    // A configuration mismatch shows in the view, the hashes as in config-hash.
    let outvoted = Report {
        config_mismatch: BTreeMap::from([("n2".into(), 0x12)]),
        config_outvoted: true,
        links_down: BTreeMap::from([("n3".into(), vec![1])]),
        ..report()
    };
    let a2 = outvoted.node_report().annotations();
    let view: Value = serde_json::from_str(&a2["failover.dev/view"]).unwrap();
    assert_eq!(view["configMismatch"], json!({"n2": "0000000000000012"}));
    assert_eq!(view["configOutvoted"], json!(true));
    assert_eq!(view["linksDown"], json!({"n3": [1]}));
    let explain: Value = serde_json::from_str(&a["failover.dev/explain"]).unwrap();
    assert_eq!(explain, json!({"web": "n1 is the owner"}));

    let owned: Value = serde_json::from_str(&a["failover.dev/owned"]).unwrap();
    assert_eq!(
        owned,
        json!({"web": {
            "epoch": 4,
            "reason": "Failback",
            "message": "web failed back from n2 to n1, which ranks higher",
            "since": "2026-12-01T04:00:00Z",
        }})
    );

    let takeovers: Value = serde_json::from_str(&a["failover.dev/takeovers"]).unwrap();
    assert_eq!(
        takeovers,
        json!([{"group": "web", "reason": "OwnerLost", "epoch": 4, "time": "2026-12-01T04:00:00Z",
                "phases": [{"phase": "decided", "ms": 0.4}, {"phase": "ledger", "ms": 2.1},
                           {"phase": "vip_up", "ms": 3.0}, {"phase": "arp_sent", "ms": 3.12},
                           {"phase": "online", "ms": 3.5}]}])
    );

    let now = Timestamp::now();
    let created = operator_node_lease();
    let l = lease::node_lease(created.clone(), "n1", 2, &report(), now);
    assert_eq!(spec(&l).holder_identity.as_deref(), Some("n1"));
    assert_eq!(spec(&l).lease_duration_seconds, Some(2));
    assert_eq!(spec(&l).renew_time, Some(MicroTime(now)));
    // What the operator wrote stays: name, labels, ownerReferences, resourceVersion.
    assert_eq!(l.metadata.name, created.metadata.name);
    assert_eq!(l.metadata.labels, created.metadata.labels);
    assert_eq!(
        l.metadata.owner_references,
        created.metadata.owner_references
    );
    assert_eq!(l.metadata.resource_version.as_deref(), Some("10"));
}

/// The node Lease as the operator creates it: labelled, owned by the cluster.
fn operator_node_lease() -> Lease {
    let mut l = lease("c-node-n1", "10", None, None);
    l.metadata.labels = Some(BTreeMap::from([(
        "failover.dev/cluster".to_owned(),
        "c".to_owned(),
    )]));
    l.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "failover.dev/v1alpha1".into(),
        kind: "FailoverCluster".into(),
        name: "c".into(),
        uid: "uid-1".into(),
        controller: Some(true),
        ..OwnerReference::default()
    }]);
    l
}

#[test]
fn node_lease_is_written_at_once_on_news_and_spaced_by_the_floor() {
    let renew = Duration::from_millis(250);
    let r = report();
    assert!(
        node_write_due(None, None, renew).is_none(),
        "config deleted: nothing"
    );
    let first = node_write_due(Some(&r), None, renew).unwrap();
    assert!(first <= Instant::now(), "the first report at once");
    let at = Instant::now();
    // Unchanged: the periodic renewal; explanations alone are no news.
    let mut same = r.clone();
    same.explain.insert("web".into(), "another sentence".into());
    assert_eq!(
        node_write_due(Some(&same), Some((at, Some(&r))), renew),
        Some(at + renew)
    );
    // Every kind of news: at the floor after the last write.
    let mut news = Vec::new();
    let mut n = r.clone();
    n.config_hash += 1;
    news.push(n);
    let mut n = r.clone();
    n.quorate = false;
    news.push(n);
    let mut n = r.clone();
    n.alive.pop();
    news.push(n);
    let mut n = r.clone();
    n.owned.get_mut("web").unwrap().epoch = 5;
    news.push(n);
    let mut n = r.clone();
    n.owned.clear();
    news.push(n);
    let mut n = r.clone();
    n.takeovers[0].epoch = 5;
    news.push(n);
    for n in &news {
        assert_eq!(
            node_write_due(Some(n), Some((at, Some(&r))), renew),
            Some(at + Duration::from_millis(100))
        );
    }
    // After a failed write: retried at the renewal period, however much changed.
    assert_eq!(
        node_write_due(Some(&news[0]), Some((at, None)), renew),
        Some(at + renew)
    );
}

#[test]
fn group_record_retries_back_off_up_to_a_bound() {
    let ms = |n| Duration::from_millis(n);
    let waits: Vec<Duration> = (1..=8).map(retry_after).collect();
    assert_eq!(
        waits,
        vec![
            ms(200),
            ms(400),
            ms(800),
            ms(1600),
            ms(3200),
            ms(5000),
            ms(5000),
            ms(5000)
        ]
    );
    assert_eq!(retry_after(u32::MAX), ms(5000));
}

#[test]
fn a_watch_by_name_sees_deletion_and_absence_from_a_relist() {
    use kube::runtime::watcher::Event;
    let cm = config_map(&[]);
    let mut listed = false;
    let seen_all = |events: Vec<Event<ConfigMap>>, listed: &mut bool| -> Vec<Seen<ConfigMap>> {
        events.into_iter().filter_map(|e| seen(e, listed)).collect()
    };
    // Listed with the object, then deleted, then created again.
    let got = seen_all(
        vec![
            Event::Init,
            Event::InitApply(cm.clone()),
            Event::InitDone,
            Event::Delete(cm.clone()),
            Event::Apply(cm.clone()),
        ],
        &mut listed,
    );
    assert_eq!(
        got,
        vec![
            Seen::Present(cm.clone()),
            Seen::Absent,
            Seen::Present(cm.clone())
        ]
    );
    // Deleted while the watch was down: the relist does not find it.
    let got = seen_all(vec![Event::Init, Event::InitDone], &mut listed);
    assert_eq!(got, vec![Seen::Absent]);
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
    // Standalone, witness quorum needs the address of `failover witness`.
    let standalone = AgentConfig::from_yaml(CONFIG).unwrap_err();
    assert!(matches!(standalone, ConfigError::Invalid(_)));
    assert!(
        standalone.to_string().contains("spec.witness"),
        "{standalone}"
    );

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
        message: "why".into(),
        takeover: Takeover {
            reason,
            ..takeover()
        },
    };
    let (t, r, note) = event_for("n1", &took(Reason::OwnerLost));
    assert_eq!((t, r), (EventType::Warning, "Failover"));
    assert_eq!(
        note,
        "n1 took group web (OwnerLost): why; timeline from the detection: decided 0.4 ms, \
         ledger 2.1 ms, vip_up 3.0 ms, arp_sent 3.1 ms, online 3.5 ms"
    );
    // A planned move of a group without VIPs, timed from the decision.
    let moved = Notice::Took {
        message: "n2 leaves".into(),
        takeover: Takeover {
            reason: Reason::OwnerLeaving,
            origin: Origin::Decided,
            phases: vec![
                (Phase::Decided, Duration::ZERO),
                (Phase::Ledger, Duration::from_micros(1260)),
                (Phase::Online, Duration::from_micros(1800)),
            ],
            ..takeover()
        },
    };
    assert_eq!(
        event_for("n1", &moved).2,
        "n1 took group web (OwnerLeaving): n2 leaves; timeline from the decision: \
         decided 0.0 ms, ledger 1.3 ms, online 1.8 ms"
    );
    assert_eq!(event_for("n1", &took(Reason::Failback)).1, "Failback");
    // Every automatic failover is a Warning, not only a lost owner.
    let (t, r, _) = event_for("n1", &took(Reason::InterfaceDown));
    assert_eq!((t, r), (EventType::Warning, "Failover"));
    let (t, r, _) = event_for("n1", &took(Reason::OwnerPaused));
    assert_eq!((t, r), (EventType::Normal, "Moved"));
    assert_eq!(event_for("n1", &took(Reason::Placed)).1, "Placed");
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

fn leases() -> (Leases, ApiServerVerifier) {
    let (client, api) = mocked_client(NS);
    let leases = Leases {
        api: Api::namespaced(client, NS),
        cluster: "c".into(),
        node: "n1".into(),
        timeout: Duration::from_secs(10),
    };
    (leases, api)
}

/// Takes the next request, checks method and path, answers `status` with
/// `answer(body)`; returns its body.
async fn expect(
    api: &mut ApiServerVerifier,
    method: Method,
    path: &str,
    status: StatusCode,
    answer: impl FnOnce(&Value) -> Value,
) -> Value {
    api.expect(method, path, |body| (status, answer(body)))
        .await
        .body
}

fn to_json(lease: &Lease) -> Value {
    serde_json::to_value(lease).unwrap()
}

const GROUP: &str = "/apis/coordination.k8s.io/v1/namespaces/ns/leases/c-group-web";
const WITNESS: &str = "/apis/coordination.k8s.io/v1/namespaces/ns/leases/c-witness";
const NODE: &str = "/apis/coordination.k8s.io/v1/namespaces/ns/leases/c-node-n1";

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

/// A report of node n1: `owned` maps groups to epochs; the configuration has `groups`.
fn owning(groups: &[&str], owned: &[(&str, u64)]) -> Report {
    Report {
        config_hash: 1,
        quorate: true,
        alive: vec!["n1".into(), "n2".into()],
        owned: owned
            .iter()
            .map(|(g, epoch)| {
                let o = Owned {
                    epoch: *epoch,
                    reason: Reason::OwnerLost,
                    message: "web moves from n2 to n1: n2 is not alive".into(),
                    since: Some("2026-12-01T04:00:00Z".parse().unwrap()),
                    resources: Vec::new(),
                };
                ((*g).to_owned(), o)
            })
            .collect(),
        explain: groups
            .iter()
            .map(|g| ((*g).to_owned(), String::new()))
            .collect(),
        failed: Vec::new(),
        failovers: BTreeMap::new(),
        config_mismatch: BTreeMap::new(),
        config_outvoted: false,
        links_down: BTreeMap::new(),
        takeovers: Vec::new(),
    }
}

/// Starts the group-record writer of n1 with short API timeouts.
fn start_records(
    leases: Leases,
    first: Report,
) -> (watch::Sender<Option<Report>>, mpsc::Receiver<Update>) {
    let (reports_tx, reports) = watch::channel(Some(first));
    let (_timing_tx, timing) = watch::channel(Some(Timing {
        duration_secs: 1,
        timeout: Duration::from_millis(200),
        renew_every: Duration::from_millis(250),
    }));
    let (updates_tx, updates) = mpsc::channel(8);
    tokio::spawn(async move {
        // Keep the timing sender alive as long as the task.
        let _timing_tx = _timing_tx;
        record_groups(leases, reports, timing, updates_tx).await;
    });
    (reports_tx, updates)
}

async fn next_update(updates: &mut mpsc::Receiver<Update>) -> Update {
    tokio::time::timeout(Duration::from_secs(10), updates.recv())
        .await
        .expect("an update in time")
        .expect("the writer runs")
}

/// The engine took `web` while the API server was down (the takeover asks nothing
/// of it: the backend has no ledger call). The record follows once the API answers:
/// errors and an unanswered request are retried with backoff, then the write goes
/// through; nothing is asked of the engine.
#[tokio::test]
async fn the_record_is_written_when_the_api_server_comes_back() {
    let (leases, mut api) = leases();
    let started = Instant::now();
    let (reports, mut updates) = start_records(leases, owning(&["web"], &[("web", 3)]));
    expect(
        &mut api,
        Method::GET,
        GROUP,
        StatusCode::SERVICE_UNAVAILABLE,
        |_| failure(503, "ServiceUnavailable"),
    )
    .await;
    // The next one is never answered: it times out.
    let (_unanswered, _send) = api.next_request().await.unwrap();
    let stored = lease("c-group-web", "5", Some("n2"), Some(2));
    expect(&mut api, Method::GET, GROUP, StatusCode::OK, |_| {
        to_json(&stored)
    })
    .await;
    // Backoff 200 ms, timeout 200 ms, backoff 400 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
    let put = expect(&mut api, Method::PUT, GROUP, StatusCode::OK, Value::clone).await;
    assert_eq!(put["metadata"]["resourceVersion"], "5");
    assert_eq!(put["spec"]["holderIdentity"], "n1");
    assert_eq!(put["spec"]["leaseTransitions"], 3);
    assert_eq!(put["spec"]["acquireTime"], "2026-12-01T04:00:00.000000Z");
    assert_eq!(
        put["metadata"]["annotations"]["failover.dev/reason"],
        "OwnerLost"
    );
    assert!(updates.try_recv().is_err(), "nothing for the engine");

    // The configuration is deleted: no Lease is written or retried any more.
    reports.send_replace(None);
    let quiet = tokio::time::timeout(Duration::from_millis(1500), api.next_request()).await;
    assert!(
        quiet.is_err(),
        "no request after the configuration was deleted"
    );
}

/// Finding 3: every agent restarted with the group Lease at epoch 5. The writer
/// reads it as the engine's floor; and when the engine took the group at a low
/// epoch anyway (the read came too late), the holder's write raises the epoch above
/// the record before writing it.
#[tokio::test]
async fn a_restart_under_a_lease_at_a_high_epoch_raises_the_epoch_above_it() {
    let (leases, mut api) = leases();
    let (reports, mut updates) = start_records(leases, owning(&["web"], &[]));
    let stale = lease("c-group-web", "5", Some("n1"), Some(5));
    expect(&mut api, Method::GET, GROUP, StatusCode::OK, |_| {
        to_json(&stale)
    })
    .await;
    let floor = next_update(&mut updates).await;
    assert!(
        matches!(floor, Update::Engine(Input::Recorded { ref group, epoch: 5 }) if group == "web"),
        "{floor:?}"
    );
    // The engine took it at epoch 1 nonetheless.
    reports.send_replace(Some(owning(&["web"], &[("web", 1)])));
    expect(&mut api, Method::GET, GROUP, StatusCode::OK, |_| {
        to_json(&stale)
    })
    .await;
    let raise = next_update(&mut updates).await;
    assert!(
        matches!(raise, Update::Engine(Input::Recorded { ref group, epoch: 5 }) if group == "web"),
        "{raise:?}"
    );
    // The engine raised it to 6: that is what is recorded.
    reports.send_replace(Some(owning(&["web"], &[("web", 6)])));
    expect(&mut api, Method::GET, GROUP, StatusCode::OK, |_| {
        to_json(&stale)
    })
    .await;
    let put = expect(&mut api, Method::PUT, GROUP, StatusCode::OK, Value::clone).await;
    assert_eq!(put["spec"]["holderIdentity"], "n1");
    assert_eq!(put["spec"]["leaseTransitions"], 6);
}

/// Our record was written; at the renewal the Lease names another node at a higher
/// epoch: it was written after ours, so that node took over since: fence.
#[tokio::test]
async fn a_record_written_over_ours_fences_the_group() {
    let (leases, mut api) = leases();
    let (_reports, mut updates) = start_records(leases, owning(&["web"], &[("web", 6)]));
    let before = lease("c-group-web", "5", Some("n2"), Some(2));
    expect(&mut api, Method::GET, GROUP, StatusCode::OK, |_| {
        to_json(&before)
    })
    .await;
    expect(&mut api, Method::PUT, GROUP, StatusCode::OK, |b| {
        let mut stored = b.clone();
        stored["metadata"]["resourceVersion"] = json!("6");
        stored
    })
    .await;
    let over = lease("c-group-web", "7", Some("n2"), Some(7));
    expect(&mut api, Method::GET, GROUP, StatusCode::OK, |_| {
        to_json(&over)
    })
    .await;
    let fence = next_update(&mut updates).await;
    assert!(
        matches!(fence, Update::Engine(Input::Superseded { ref group, epoch: 6 }) if group == "web"),
        "{fence:?}"
    );
}

/// Finding 5: the operator creates and owns the node Lease. The agent never creates
/// it (a missing one is an error to retry), and its writes keep what the operator
/// wrote (ownerReferences included).
#[tokio::test]
async fn node_lease_is_never_created_and_keeps_the_operators_metadata() {
    let (leases, mut api) = leases();
    let server = tokio::spawn(async move {
        expect(&mut api, Method::GET, NODE, StatusCode::NOT_FOUND, |_| {
            failure(404, "NotFound")
        })
        .await;
        expect(&mut api, Method::GET, NODE, StatusCode::OK, |_| {
            to_json(&operator_node_lease())
        })
        .await;
        let put = expect(&mut api, Method::PUT, NODE, StatusCode::OK, |b| {
            let mut stored = b.clone();
            stored["metadata"]["resourceVersion"] = json!("11");
            stored
        })
        .await;
        assert_eq!(put["metadata"]["resourceVersion"], "10");
        assert_eq!(
            put["metadata"]["ownerReferences"][0]["kind"],
            "FailoverCluster"
        );
        assert_eq!(put["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(put["metadata"]["labels"]["failover.dev/cluster"], "c");
        assert_eq!(put["spec"]["holderIdentity"], "n1");
        let owned: Value = serde_json::from_str(
            put["metadata"]["annotations"]["failover.dev/owned"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(owned["web"]["epoch"], 4);
        assert_eq!(owned["web"]["reason"], "Failback");
        // A stale copy (409): read again and write again.
        expect(&mut api, Method::PUT, NODE, StatusCode::CONFLICT, |_| {
            failure(409, "Conflict")
        })
        .await;
        expect(&mut api, Method::GET, NODE, StatusCode::OK, |_| {
            to_json(&operator_node_lease())
        })
        .await;
        expect(&mut api, Method::PUT, NODE, StatusCode::OK, Value::clone).await;
        api
    });
    let missing = leases.renew_node(None, 1, &report()).await.unwrap_err();
    assert!(matches!(missing, LeaseError::Missing { .. }), "{missing:?}");
    let stored = leases.renew_node(None, 1, &report()).await.unwrap();
    leases.renew_node(Some(stored), 1, &report()).await.unwrap();
    let mut api = server.await.unwrap();
    drop(leases);
    assert!(api.next_request().await.is_none(), "never a POST");
}

#[tokio::test]
async fn watches_by_name_feed_the_config_and_the_keys() {
    let (client, mut api) = mocked_client(NS);
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
            let path = request.path;
            let query = request.query;
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

/// Finding 7: the ClusterConfig is deleted (its cluster was deleted): the loop is
/// told, once; when a ClusterConfig comes again, it runs again.
#[tokio::test]
async fn a_deleted_cluster_config_is_reported_and_a_new_one_runs() {
    let (client, mut api) = mocked_client(NS);
    let (updates_tx, mut updates) = mpsc::channel(8);
    let (timing_tx, _timing) = watch::channel(None);
    let (reference_tx, _reference) = watch::channel(None);
    tokio::spawn(watch_sources(
        client,
        NS.into(),
        "c".into(),
        updates_tx,
        timing_tx,
        reference_tx,
    ));
    let mut cm = config_map(&[("config.yaml", CONFIG)]);
    cm.metadata.resource_version = Some("1".into());
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        let mut config_watches = 0;
        // Lists of both objects, then the ConfigMap's watch: deleted, created again.
        while config_watches < 1 {
            let (request, send) = api.next_request().await.expect("a request");
            let path = request.path;
            let watching = request.query.contains("watch=true");
            let configs = path == "/api/v1/namespaces/ns/configmaps";
            let body = match (watching, configs) {
                (true, true) => {
                    config_watches += 1;
                    let mut again = cm.clone();
                    again.metadata.resource_version = Some("3".into());
                    [
                        json!({"type": "DELETED", "object": cm}),
                        json!({"type": "ADDED", "object": again}),
                    ]
                    .iter()
                    .map(|e| format!("{e}\n"))
                    .collect::<String>()
                }
                (true, false) => {
                    held.push(send);
                    continue;
                }
                (false, _) => {
                    let items = if configs { json!([cm]) } else { json!([]) };
                    json!({"apiVersion": "v1", "kind": "List",
                           "metadata": {"resourceVersion": "1"}, "items": items})
                    .to_string()
                }
            };
            send.send_response(
                Response::builder()
                    .body(Body::from(body.into_bytes()))
                    .unwrap(),
            );
        }
        (api, held)
    });
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match next_update(&mut updates).await {
            Update::Config(_) => seen.push("config"),
            Update::ConfigDeleted => seen.push("deleted"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["config", "deleted", "config"]);
    let _keep = server.await.unwrap();
}

/// The backend with a mocked API server, its updates channel, and `start`.
fn backend() -> (KubeBackend, ApiServerVerifier, mpsc::Receiver<Update>) {
    let (leases, api) = leases();
    let (updates, updates_rx) = mpsc::channel(4);
    let start = Instant::now();
    // The watch and report channels are not part of a witness request.
    let (_, timing) = watch::channel(None);
    let (reports, _) = watch::channel(None);
    let (notices, _) = mpsc::channel(1);
    let backend = KubeBackend {
        leases,
        witness: WitnessClient::new(updates.clone(), start),
        updates,
        timing,
        start,
        reports,
        notices,
    };
    (backend, api, updates_rx)
}

/// With `spec.witness` the witness request goes to `failover witness`, signed with
/// the heartbeat keys, and never to the API server; without it, to the Lease.
#[tokio::test]
async fn the_witness_is_the_process_of_spec_witness_else_the_lease() {
    let keys = Keyring::new(vec![7; 32], None).unwrap();
    let witness = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = witness.local_addr().unwrap().port();
    let with = AgentConfig::from_cluster_yaml(&CONFIG.replace(
        "quorum: witness\n",
        &format!("quorum: witness\n  witness: {{address: 127.0.0.1, port: {port}}}\n"),
    ))
    .unwrap();
    let (mut backend, mut api, mut updates) = backend();
    assert!(backend.witness_request(WitnessAsk {
        witness: WitnessRef::Process(std::net::SocketAddr::from(([127, 0, 0, 1], port))),
        config: &with,
        node: "n1",
        incarnation: 1,
        keys: &keys,
    }));
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(2), witness.recv(&mut buf))
        .await
        .expect("the request reaches the witness process")
        .unwrap();
    let request =
        crate::membership::witness::WitnessRequest::decode(&buf[..n], &with.model.cluster, &keys)
            .expect("signed with the heartbeat keys");
    assert_eq!(request.node, "n1");
    // Unanswered: an empty answer after the exchange's timeout, no API call.
    match updates.recv().await {
        Some(Update::Engine(Input::Witness {
            witness: WitnessRef::Process(_),
            held_until: None,
            other_until: None,
        })) => {}
        other => panic!("expected an empty witness answer, got {other:?}"),
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(50), api.next_request())
            .await
            .is_err(),
        "no API request for the witness"
    );

    let without = AgentConfig::from_cluster_yaml(CONFIG).unwrap();
    assert!(backend.witness_request(WitnessAsk {
        witness: WitnessRef::Lease,
        config: &without,
        node: "n1",
        incarnation: 1,
        keys: &keys,
    }));
    expect(&mut api, Method::GET, WITNESS, StatusCode::OK, |_| {
        to_json(&lease("c-witness", "1", None, None))
    })
    .await;
}
