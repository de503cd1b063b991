//! Tests of the reconcilers' IO against the mocked API server, which asserts every
//! request (method, path, body) in order and applies the API server's validation
//! rules to every write.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::{Context, GroupClusterRef, Settings, Stores, reconcile_cluster, reconcile_group};
use crate::api::{FailoverCluster, MemberState, ResourceGroup, load_documents};
use crate::contract::model::AgentConfig;
use crate::contract::names;
use crate::contract::render::render_config;
use crate::operator::build::{self, KEY_LEN};
use crate::operator::fixtures::{
    ClusterFixture, NS, cluster, group, lease, node, node_lease, resolved, settings, with_view,
};
use crate::operator::metrics::Metrics;
use crate::operator::notify::{Notifier, RetryPolicy};
use crate::operator::status::{Reports, cluster_status};
use crate::testing::apiserver::{ApiServerVerifier, mocked_client};

// ---------------------------------------------------------------- the operator's requests

/// The operator's requests on top of what the shared verifier checks of every
/// request: applies with its field manager, the Leases of its cluster by label,
/// status and Events.
impl ApiServerVerifier {
    /// An apply of `kind` at `path`, echoed back; returns the applied object.
    async fn apply(&mut self, path: &str) -> Value {
        let seen = self
            .expect(Method::PATCH, path, |body| (StatusCode::OK, body.clone()))
            .await;
        assert!(
            seen.query.contains("fieldManager=failover-operator"),
            "{}",
            seen.query
        );
        assert!(seen.query.contains("force=true"), "{}", seen.query);
        seen.body
    }

    async fn leases(&mut self, items: Vec<Lease>) {
        let seen = self
            .expect(Method::GET, "/apis/coordination.k8s.io/v1/namespaces/ns/leases", move |_| {
                (StatusCode::OK, json!({"apiVersion": "coordination.k8s.io/v1", "kind": "LeaseList", "metadata": {}, "items": items}))
            })
            .await;
        assert!(
            seen.query
                .contains("labelSelector=failover.dev%2Fcluster%3Dc"),
            "{}",
            seen.query
        );
    }

    /// The applies of every owned object of a valid cluster; returns them by kind.
    async fn owned_objects(&mut self) -> BTreeMap<&'static str, Value> {
        let mut applied = BTreeMap::new();
        for (kind, path) in [
            ("ConfigMap", "/api/v1/namespaces/ns/configmaps/c-config"),
            ("Secret", "/api/v1/namespaces/ns/secrets/c-heartbeat"),
            (
                "ServiceAccount",
                "/api/v1/namespaces/ns/serviceaccounts/c-agent",
            ),
            (
                "Role",
                "/apis/rbac.authorization.k8s.io/v1/namespaces/ns/roles/c-agent",
            ),
            (
                "RoleBinding",
                "/apis/rbac.authorization.k8s.io/v1/namespaces/ns/rolebindings/c-agent",
            ),
            (
                "DaemonSet",
                "/apis/apps/v1/namespaces/ns/daemonsets/c-agent",
            ),
        ] {
            let body = self.apply(path).await;
            assert_eq!(body["kind"], kind);
            assert_eq!(
                body["metadata"]["ownerReferences"][0]["uid"], "uid-c",
                "{kind}"
            );
            applied.insert(kind, body);
        }
        applied
    }

    /// The applies of the node Leases of `nodes`: metadata only, never a spec field.
    async fn node_leases(&mut self, nodes: &[&str]) {
        for node in nodes {
            let body = self
                .apply(&format!(
                    "/apis/coordination.k8s.io/v1/namespaces/ns/leases/c-node-{node}"
                ))
                .await;
            assert_eq!(body["metadata"]["labels"][names::CLUSTER_LABEL], "c");
            assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], "uid-c");
            assert!(body.get("spec").is_none(), "{body}");
        }
    }

    /// A GET of the ResourceGroup `name`, answered 404.
    async fn group_not_found(&mut self, name: &str) {
        self.not_found(&format!(
            "/apis/failover.dev/v1alpha1/namespaces/ns/resourcegroups/{name}"
        ))
        .await;
    }

    async fn status(&mut self, path: &str) -> Value {
        let seen = self
            .expect(Method::PATCH, path, |body| (StatusCode::OK, body.clone()))
            .await;
        assert!(
            seen.query.contains("fieldManager=failover-operator"),
            "{}",
            seen.query
        );
        assert_eq!(seen.body["apiVersion"], "failover.dev/v1alpha1");
        seen.body["status"].clone()
    }

    async fn event(&mut self) -> Value {
        let seen = self
            .expect(
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/ns/events",
                |body| (StatusCode::CREATED, body.clone()),
            )
            .await;
        assert_eq!(seen.method, Method::POST);
        seen.body
    }
}

/// A typed object as the stores hold it: read as its kind.
fn guarded<K: Clone>(object: &K) -> DeserializeGuard<K> {
    DeserializeGuard(Ok(object.clone()))
}

/// A ResourceGroup (any JSON, readable or not) as the group-to-cluster store holds it.
fn group_cluster_ref(group: &Value) -> DeserializeGuard<GroupClusterRef> {
    serde_json::from_value(group.clone()).unwrap()
}

/// A context on a mocked client with stores holding the given objects.
fn context(
    clusters: &[FailoverCluster],
    groups: &[Value],
    nodes: &[Node],
) -> (Arc<Context>, ApiServerVerifier) {
    let (client, api) = mocked_client(NS);
    let (stores, writers) = stores(clusters, groups, nodes);
    // The writers must outlive the test for the readers to stay valid.
    std::mem::forget(writers);
    context_with(client, stores, api)
}

/// The writers behind [`Stores`]: a test holding them plays the reflectors.
struct Writers {
    clusters: Writer<DeserializeGuard<FailoverCluster>>,
    groups: Writer<DeserializeGuard<ResourceGroup>>,
    group_clusters: Writer<DeserializeGuard<GroupClusterRef>>,
    nodes: Writer<Node>,
}

/// A complete list into `writer`, as a watcher's initial list delivers it (the
/// store is ready afterwards).
fn listed<K>(writer: &mut Writer<K>, objects: impl IntoIterator<Item = K>)
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    writer.apply_watcher_event(&watcher::Event::Init);
    for object in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(object));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
}

/// Stores listed with the given objects.
fn stores(clusters: &[FailoverCluster], groups: &[Value], nodes: &[Node]) -> (Stores, Writers) {
    let (stores, mut writers) = unlisted_stores();
    listed(&mut writers.clusters, clusters.iter().map(guarded));
    listed(
        &mut writers.groups,
        groups
            .iter()
            .map(|g| serde_json::from_value::<DeserializeGuard<ResourceGroup>>(g.clone()).unwrap()),
    );
    listed(
        &mut writers.group_clusters,
        groups.iter().map(group_cluster_ref),
    );
    listed(&mut writers.nodes, nodes.iter().cloned());
    (stores, writers)
}

/// Stores whose reflectors have not listed anything yet (an operator starting).
fn unlisted_stores() -> (Stores, Writers) {
    let writers = Writers {
        clusters: Writer::default(),
        groups: Writer::default(),
        group_clusters: Writer::default(),
        nodes: Writer::default(),
    };
    let stores = Stores {
        clusters: writers.clusters.as_reader(),
        groups: writers.groups.as_reader(),
        group_clusters: writers.group_clusters.as_reader(),
        nodes: writers.nodes.as_reader(),
    };
    (stores, writers)
}

/// A context on the mocked `client` over `stores`; `api` answers its requests.
fn context_with(
    client: Client,
    stores: Stores,
    api: ApiServerVerifier,
) -> (Arc<Context>, ApiServerVerifier) {
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "failover-operator".into(),
            instance: None,
        },
    );
    let settings = Settings {
        agent: settings(),
        api_timeout: Duration::from_secs(5),
        resync: Duration::from_secs(5),
    };
    let metrics = Arc::new(Metrics::default());
    (
        Arc::new(Context::new(
            client,
            recorder,
            metrics.clone(),
            settings,
            stores,
            Notifier::spawn(RetryPolicy::default(), metrics),
        )),
        api,
    )
}

fn group_json(g: &ResourceGroup) -> Value {
    serde_json::to_value(g).unwrap()
}

fn nodes() -> Vec<Node> {
    vec![
        node("a", Some("10.0.0.1")),
        node("b", Some("10.0.0.2")),
        node("c", Some("10.0.0.3")),
    ]
}

const CLUSTER_STATUS: &str = "/apis/failover.dev/v1alpha1/namespaces/ns/failoverclusters/c/status";

async fn run_cluster<F: std::future::Future<Output = ()> + Send + 'static>(
    ctx: Arc<Context>,
    c: &FailoverCluster,
    server: F,
) -> Action {
    let server = tokio::spawn(server);
    let action = reconcile_cluster(Arc::new(guarded(c)), ctx).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    action
}

#[tokio::test]
async fn create_applies_every_object_then_status() {
    let c = cluster();
    let web = group("web", "10.77.0.100/24");
    let (ctx, mut api) = context(std::slice::from_ref(&c), &[group_json(&web)], &nodes());
    let action = run_cluster(ctx, &c, async move {
        api.not_found("/api/v1/namespaces/ns/secrets/c-heartbeat")
            .await;
        api.leases(vec![]).await;
        let applied = api.owned_objects().await;
        let cm = &applied["ConfigMap"];
        let hash = cm["data"]["hash"].as_str().unwrap().to_owned();
        let (loaded, groups) = load_documents(cm["data"]["config.yaml"].as_str().unwrap()).unwrap();
        assert_eq!(loaded.spec.members[0].address.as_deref(), Some("10.0.0.1"));
        assert_eq!(groups.len(), 1);
        let key = applied["Secret"]["data"]["key"].as_str().unwrap();
        assert_eq!(key.len(), 44, "32 bytes in base64: {key}");
        assert_eq!(
            applied["DaemonSet"]["spec"]["template"]["spec"]["hostNetwork"],
            true
        );
        let lease = api
            .expect(
                Method::POST,
                "/apis/coordination.k8s.io/v1/namespaces/ns/leases",
                |b| (StatusCode::CREATED, b.clone()),
            )
            .await
            .body;
        assert_eq!(lease["metadata"]["name"], "c-group-web");
        assert!(lease["spec"].get("holderIdentity").is_none());
        api.node_leases(&["a", "b"]).await;
        let status = api.status(CLUSTER_STATUS).await;
        assert_eq!(status["configHash"], hash.as_str());
        assert_eq!(status["observedGeneration"], 1);
        assert_eq!(status["members"][0]["state"], "Unknown");
        let valid = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["type"] == "ConfigValid")
            .unwrap()
            .clone();
        assert_eq!(valid["status"], "True");
    })
    .await;
    assert_eq!(action, Action::requeue(Duration::from_secs(5)));
}

#[tokio::test]
async fn a_spec_change_renders_a_new_hash_and_keeps_the_key() {
    let old = resolved(&cluster());
    let web = group("web", "10.77.0.100/24");
    let old_hash = render_config(&old, std::slice::from_ref(&web))
        .unwrap()
        .hash;
    let c = cluster().member("c").hash(&old_hash);
    let existing = build::heartbeat_secret(&c, None, Timestamp::now(), [9; KEY_LEN]).secret;
    let (ctx, mut api) = context(std::slice::from_ref(&c), &[group_json(&web)], &nodes());
    let mut ledger = build::leases(&c, std::slice::from_ref(&web));
    ledger.push(node_lease(
        "a",
        Duration::from_millis(200),
        &old_hash,
        true,
        &["web"],
    ));
    run_cluster(ctx, &c, async move {
        api.expect(Method::GET, "/api/v1/namespaces/ns/secrets/c-heartbeat", move |_| (StatusCode::OK, serde_json::to_value(&existing).unwrap()))
            .await;
        api.leases(ledger).await;
        let applied = api.owned_objects().await;
        let hash = applied["ConfigMap"]["data"]["hash"].as_str().unwrap().to_owned();
        assert_ne!(hash, old_hash);
        assert_eq!(applied["Secret"]["data"]["key"], json!(k8s_openapi::ByteString(vec![9; KEY_LEN])));
        let terms = &applied["DaemonSet"]["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
            ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
        assert_eq!(terms, &json!(["a", "b", "c"].map(|n| json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": [n]}]}))));
        // The group Lease exists: no create. a's node Lease (written by its agent)
        // gets the operator's labels and owner reference, b's and c's are created.
        // Status follows the new hash; a still runs the old one.
        api.node_leases(&["a", "b", "c"]).await;
        let status = api.status(CLUSTER_STATUS).await;
        assert_eq!(status["configHash"], hash.as_str());
        assert_eq!(status["members"][0]["appliedConfigHash"], old_hash.as_str());
        assert_eq!(status["members"][0]["synchronized"], false);
        assert_eq!(status["members"][0]["state"], "Online");
    })
    .await;
}

/// What the agents say in their node Leases of config sync and heartbeat links
/// reaches the patched status, and each transition one Event.
#[tokio::test]
async fn links_down_and_an_outvoted_member_reach_the_cluster_status() {
    let web = group("web", "10.77.0.100/24");
    let spec = cluster().member("c");
    let hash = render_config(&resolved(&spec), std::slice::from_ref(&web))
        .unwrap()
        .hash;
    let fresh = Duration::from_millis(100);
    // The status shown so far: all three online on the rendered configuration.
    let mut c = spec.clone();
    let quiet = ["a", "b", "c"].map(|n| node_lease(n, fresh, &hash, true, &[]));
    c.status = Some(cluster_status(
        &c,
        &[],
        Some(hash.clone()),
        &Reports::from_leases("c", &quiet),
        Timestamp::now(),
    ));
    let existing = build::heartbeat_secret(&c, None, Timestamp::now(), [9; KEY_LEN]).secret;
    let (ctx, mut api) = context(std::slice::from_ref(&c), &[group_json(&web)], &nodes());
    let mut leases = build::leases(&c, std::slice::from_ref(&web));
    leases.extend([
        with_view(
            node_lease("a", fresh, &hash, true, &[]),
            json!({"quorate": true, "alive": ["a", "b", "c"], "configMismatch": {"b": "0ld"},
                   "linksDown": {"b": [1]}}),
        ),
        with_view(
            node_lease("b", fresh, "0ld", true, &[]),
            json!({"quorate": true, "alive": ["a", "b", "c"], "configOutvoted": true,
                   "configMismatch": {"a": hash, "c": hash}}),
        ),
        node_lease("c", fresh, &hash, true, &[]),
    ]);
    run_cluster(ctx, &c, async move {
        api.expect(Method::GET, "/api/v1/namespaces/ns/secrets/c-heartbeat", move |_| {
            (StatusCode::OK, serde_json::to_value(&existing).unwrap())
        })
        .await;
        api.leases(leases).await;
        let applied = api.owned_objects().await;
        assert_eq!(applied["ConfigMap"]["data"]["hash"], hash.as_str());
        api.node_leases(&["a", "b", "c"]).await;
        let status = api.status(CLUSTER_STATUS).await;
        assert_eq!(status["members"][1]["configOutvoted"], true);
        assert_eq!(
            status["members"][1]["linksDown"],
            json!([{"seenBy": "a", "links": [1]}])
        );
        assert!(status["members"][0].get("linksDown").is_none(), "{status}");
        let synced = condition(&status, "ConfigSynchronized");
        assert_eq!(synced["status"], "False");
        assert_eq!(synced["reason"], "ConfigOutvoted");
        assert_eq!(
            condition(&status, "Degraded")["reason"],
            "ConfigNotSynchronized"
        );
        let outvoted = api.event().await;
        assert_eq!(
            (&outvoted["reason"], &outvoted["type"]),
            (&json!("ConfigOutvoted"), &json!("Warning"))
        );
        let link = api.event().await;
        assert_eq!(link["reason"], "HeartbeatLinkDown");
        assert_eq!(
            link["note"],
            "heartbeat link 1 of member b carries none of its heartbeats (seen by a); it stays alive over its other links"
        );
    })
    .await;
}

#[tokio::test]
async fn redundant_links_reach_the_agents_with_the_internal_ip_as_link_0() {
    let mut c = cluster();
    c.spec.members[0].additional_addresses = vec!["192.168.77.1".into()];
    c.spec.members[1].additional_addresses = vec!["192.168.77.2".into()];
    let web = group("web", "10.77.0.100/24");
    let (ctx, mut api) = context(std::slice::from_ref(&c), &[group_json(&web)], &nodes());
    run_cluster(ctx, &c, async move {
        api.not_found("/api/v1/namespaces/ns/secrets/c-heartbeat")
            .await;
        api.leases(vec![]).await;
        let applied = api.owned_objects().await;
        let text = applied["ConfigMap"]["data"]["config.yaml"]
            .as_str()
            .unwrap();
        // What the agent of b loads: both links of every member.
        let config = AgentConfig::from_cluster_yaml(text).unwrap();
        assert_eq!(
            config.links_of("b").unwrap(),
            [
                "10.0.0.2:7707".parse().unwrap(),
                "192.168.77.2:7707".parse().unwrap()
            ]
        );
        assert_eq!(config.links_of("a").unwrap().len(), 2);
        api.expect(
            Method::POST,
            "/apis/coordination.k8s.io/v1/namespaces/ns/leases",
            |b| (StatusCode::CREATED, b.clone()),
        )
        .await;
        api.node_leases(&["a", "b"]).await;
        let status = api.status(CLUSTER_STATUS).await;
        assert_eq!(condition(&status, "ConfigValid")["status"], "True");
    })
    .await;
}

#[tokio::test]
async fn an_internal_ip_that_repeats_another_members_link_is_rejected() {
    // b's InternalIP (its link 0) is also a's second link.
    let mut c = cluster();
    c.spec.members[0].additional_addresses = vec!["10.0.0.2".into()];
    c.spec.members[1].additional_addresses = vec!["192.168.77.2".into()];
    let web = group("web", "10.77.0.100/24");
    let (ctx, mut api) = context(std::slice::from_ref(&c), &[group_json(&web)], &nodes());
    run_cluster(ctx, &c, async move {
        api.not_found("/api/v1/namespaces/ns/secrets/c-heartbeat")
            .await;
        api.leases(vec![]).await;
        // Straight to status: nothing rendered.
        let status = api.status(CLUSTER_STATUS).await;
        let valid = condition(&status, "ConfigValid");
        assert_eq!(valid["status"], "False");
        let message = valid["message"].as_str().unwrap();
        assert!(
            message.contains("spec.members[1].address: 10.0.0.2 is already used by spec.members[0].additionalAddresses[0]"),
            "{message}"
        );
        api.event().await;
    })
    .await;
}

fn condition(status: &Value, kind: &str) -> Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["type"] == kind)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn an_invalid_spec_sets_config_valid_false_and_touches_no_object() {
    let c = cluster().member("ghost").hash("0123456789abcdef");
    let web = group("web", "10.77.0.100/24");
    let dup = group("dup", "10.77.0.100/24");
    let (ctx, mut api) = context(
        std::slice::from_ref(&c),
        &[group_json(&web), group_json(&dup)],
        &nodes(),
    );
    run_cluster(ctx, &c, async move {
        api.not_found("/api/v1/namespaces/ns/secrets/c-heartbeat")
            .await;
        api.leases(vec![]).await;
        // Straight to status: no ConfigMap, Secret, DaemonSet, RBAC or Lease write.
        let status = api.status(CLUSTER_STATUS).await;
        assert_eq!(
            status["configHash"], "0123456789abcdef",
            "the last valid config keeps running"
        );
        let valid = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["type"] == "ConfigValid")
            .unwrap()
            .clone();
        assert_eq!(valid["status"], "False");
        assert_eq!(valid["reason"], "InvalidSpec");
        let message = valid["message"].as_str().unwrap();
        assert!(message.contains("spec.members[2].node"), "{message}");
        assert!(
            message.contains("spec.resources[0].virtualIP.address"),
            "{message}"
        );
        let event = api.event().await;
        assert_eq!(event["reason"], "ConfigRejected");
        assert_eq!(event["type"], "Warning");
    })
    .await;
}

/// `spec.witness` names a `failover witness` process: valid in Kubernetes, it
/// reaches the agents in the ClusterConfig, and the witness Lease left from Lease
/// mode is deleted, never created, and not granted to the agents.
#[tokio::test]
async fn a_witness_process_replaces_the_witness_lease() {
    let c = cluster().witness_process("10.77.0.9");
    let web = group("web", "10.77.0.100/24");
    let mut leases = build::leases(&cluster().witness(), std::slice::from_ref(&web));
    assert!(leases.iter().any(|l| l.name_any() == "c-witness"));
    leases.push(node_lease("a", Duration::from_millis(100), "x", false, &[]));
    let existing = build::heartbeat_secret(&c, None, Timestamp::now(), [7; KEY_LEN]).secret;
    let (ctx, mut api) = context(std::slice::from_ref(&c), &[group_json(&web)], &nodes());
    run_cluster(ctx, &c, async move {
        api.expect(Method::GET, "/api/v1/namespaces/ns/secrets/c-heartbeat", move |_| (StatusCode::OK, serde_json::to_value(&existing).unwrap()))
            .await;
        api.leases(leases).await;
        let applied = api.owned_objects().await;
        let config = AgentConfig::from_cluster_yaml(
            applied["ConfigMap"]["data"]["config.yaml"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(
            config.witness,
            Some(std::net::SocketAddr::from(([10, 77, 0, 9], 7707)))
        );
        let role = applied["Role"].to_string();
        assert!(!role.contains("c-witness"), "{role}");
        api.expect(Method::DELETE, "/apis/coordination.k8s.io/v1/namespaces/ns/leases/c-witness", |_| {
            (StatusCode::OK, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}))
        })
        .await;
        api.node_leases(&["a", "b"]).await;
        let status = api.status(CLUSTER_STATUS).await;
        assert_eq!(condition(&status, "ConfigValid")["status"], "True");
        // No member reports quorum: the condition names the process, not a Lease.
        let lost = condition(&status, "QuorumLost");
        assert_eq!(lost["reason"], "WitnessUnavailable");
        assert_eq!(
            lost["message"],
            "no member holds quorum through the witness: `failover witness` at 10.77.0.9:7707"
        );
    })
    .await;
}

#[tokio::test]
async fn a_malformed_group_is_reported_on_itself_and_blocks_only_its_cluster_config() {
    let c = cluster();
    let mut bad = group_json(&group("bad", "10.77.0.100/24"));
    bad["spec"]["resources"] = json!("not a list");
    let (ctx, mut api) = context(
        std::slice::from_ref(&c),
        std::slice::from_ref(&bad),
        &nodes(),
    );
    let obj: DeserializeGuard<ResourceGroup> = serde_json::from_value(bad).unwrap();
    let server = tokio::spawn(async move {
        let status = api
            .status("/apis/failover.dev/v1alpha1/namespaces/ns/resourcegroups/bad/status")
            .await;
        assert_eq!(status["conditions"][0]["status"], "False");
        assert!(
            status["conditions"][0]["message"]
                .as_str()
                .unwrap()
                .contains("cannot be read")
        );
        assert_eq!(api.event().await["reason"], "ConfigRejected");
        api
    });
    let action = reconcile_group(Arc::new(obj), ctx.clone()).await.unwrap();
    assert_eq!(action, Action::await_change());
    let mut api = server.await.unwrap();
    run_cluster(ctx, &c, async move {
        api.not_found("/api/v1/namespaces/ns/secrets/c-heartbeat")
            .await;
        api.leases(vec![]).await;
        let status = api.status(CLUSTER_STATUS).await;
        let valid = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["type"] == "ConfigValid")
            .unwrap()
            .clone();
        assert!(
            valid["message"]
                .as_str()
                .unwrap()
                .contains("ResourceGroup/ns/bad"),
            "{valid}"
        );
        api.event().await;
    })
    .await;
}

#[tokio::test]
async fn deletion_leaves_cleanup_to_garbage_collection_and_removes_ledgers_of_deleted_groups() {
    // A cluster being deleted: nothing is written (owner references do the rest).
    let mut deleted = cluster();
    deleted.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    let (ctx, mut api) = context(std::slice::from_ref(&deleted), &[], &nodes());
    let action = reconcile_cluster(Arc::new(guarded(&deleted)), ctx.clone())
        .await
        .unwrap();
    assert_eq!(action, Action::await_change());
    drop(ctx);
    assert!(
        api.next_request().await.is_none(),
        "no request for a cluster being deleted"
    );

    // A group deleted: its ledger goes, the others stay.
    let c = cluster();
    let web = group("web", "10.77.0.100/24");
    let mut leases = build::leases(&c, &[web.clone(), group("old", "10.77.0.101/24")]);
    leases.push(node_lease("a", Duration::from_millis(100), "x", true, &[]));
    let existing = build::heartbeat_secret(&c, None, Timestamp::now(), [7; KEY_LEN]).secret;
    let (ctx, mut api) = context(std::slice::from_ref(&c), &[group_json(&web)], &nodes());
    run_cluster(ctx, &c, async move {
        api.expect(Method::GET, "/api/v1/namespaces/ns/secrets/c-heartbeat", move |_| (StatusCode::OK, serde_json::to_value(&existing).unwrap()))
            .await;
        api.leases(leases).await;
        // Not in the store: the API server is asked before its ledger goes.
        api.group_not_found("old").await;
        let applied = api.owned_objects().await;
        let role = applied["Role"].to_string();
        assert!(!role.contains("c-group-old"), "{role}");
        api.expect(Method::DELETE, "/apis/coordination.k8s.io/v1/namespaces/ns/leases/c-group-old", |_| {
            (StatusCode::OK, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}))
        })
        .await;
        api.node_leases(&["a", "b"]).await;
        api.status(CLUSTER_STATUS).await;
    })
    .await;
}

#[tokio::test]
async fn group_status_and_failover_event_from_the_ledger() {
    let c = cluster();
    let mut web = group("web", "10.77.0.100/24");
    web.status = Some(crate::api::ResourceGroupStatus {
        owner: Some("b".into()),
        epoch: Some(1),
        ..Default::default()
    });
    let mut ledger = lease(
        &names::group_lease("c", "web"),
        Some("a"),
        Timestamp::now(),
        &[(names::REASON, "OwnerLost"), (names::MESSAGE, "b died")],
    );
    ledger.spec.as_mut().unwrap().lease_transitions = Some(2);
    let leases = vec![
        ledger,
        node_lease("a", Duration::from_millis(100), "x", true, &["web"]),
    ];
    let (ctx, mut api) = context(std::slice::from_ref(&c), &[group_json(&web)], &nodes());
    let server = tokio::spawn(async move {
        api.leases(leases).await;
        let status = api
            .status("/apis/failover.dev/v1alpha1/namespaces/ns/resourcegroups/web/status")
            .await;
        assert_eq!(status["owner"], "a");
        assert_eq!(status["epoch"], 2);
        assert_eq!(status["phase"], "Online");
        assert_eq!(status["lastTransition"]["reason"], "OwnerLost");
        let event = api.event().await;
        assert_eq!(event["reason"], "Failover");
        assert_eq!(event["note"], "b -> a (epoch 2): b died");
    });
    reconcile_group(Arc::new(guarded(&web)), ctx).await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn a_failover_posts_to_the_webhook_read_from_the_secret() {
    use crate::api::{NotificationsSpec, SecretKeyRef, WebhookFormat, WebhookSpec};
    use crate::operator::notify::tests::{Answer, next_body, server};
    let (url, mut received) = server(vec![Answer::Status(200)]).await;
    let mut c = cluster();
    c.spec.notifications = Some(NotificationsSpec {
        webhook: Some(WebhookSpec {
            secret_ref: SecretKeyRef {
                name: "hook".into(),
                key: "target".into(),
            },
            format: WebhookFormat::Generic,
        }),
    });
    let mut web = group("web", "10.77.0.100/24");
    web.status = Some(crate::api::ResourceGroupStatus {
        owner: Some("b".into()),
        epoch: Some(1),
        ..Default::default()
    });
    let mut ledger = lease(
        &names::group_lease("c", "web"),
        Some("a"),
        Timestamp::now(),
        &[(names::REASON, "OwnerLost"), (names::MESSAGE, "b died")],
    );
    ledger.spec.as_mut().unwrap().lease_transitions = Some(2);
    let leases = vec![
        ledger,
        node_lease("a", Duration::from_millis(100), "x", true, &["web"]),
    ];
    let (ctx, mut api) = context(std::slice::from_ref(&c), &[group_json(&web)], &nodes());
    // A URL written with a trailing newline (`echo url > file`) still works.
    let secret = k8s_openapi::api::core::v1::Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("hook".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "target".to_owned(),
            k8s_openapi::ByteString(format!("{url}\n").into_bytes()),
        )])),
        ..Default::default()
    };
    let secret = serde_json::to_value(&secret).unwrap();
    let server = tokio::spawn(async move {
        api.leases(leases).await;
        api.status("/apis/failover.dev/v1alpha1/namespaces/ns/resourcegroups/web/status")
            .await;
        api.event().await;
        api.expect(
            Method::GET,
            "/api/v1/namespaces/ns/secrets/hook",
            move |_| (StatusCode::OK, secret),
        )
        .await;
    });
    reconcile_group(Arc::new(guarded(&web)), ctx).await.unwrap();
    server.await.unwrap();
    let body = next_body(&mut received).await;
    assert_eq!(body["event"], "Failover");
    assert_eq!(body["cluster"], "c");
    assert_eq!(body["group"], "web");
    assert_eq!(body["from"], "b");
    assert_eq!(body["to"], "a");
    assert_eq!(body["epoch"], 2);
    assert_eq!(body["reason"], "OwnerLost");
    assert_eq!(body["message"], "b died");
}

#[tokio::test]
async fn a_heartbeat_port_shared_with_an_earlier_cluster_on_the_same_node_is_rejected() {
    let mut first = FailoverCluster::new("first", cluster().spec);
    first.metadata.namespace = Some("other".into());
    first.metadata.uid = Some("uid-first".into());
    first.metadata.creation_timestamp = Some(Time("2026-01-01T00:00:00Z".parse().unwrap()));
    let mut c = cluster();
    c.metadata.creation_timestamp = Some(Time("2026-01-02T00:00:00Z".parse().unwrap()));
    // Another port on the same nodes is fine: only `first` shares port and nodes.
    let mut elsewhere = FailoverCluster::new("elsewhere", cluster().spec);
    elsewhere.metadata.namespace = Some(NS.into());
    elsewhere.spec.heartbeat.port = 7800;
    let (ctx, mut api) = context(&[first, c.clone(), elsewhere], &[], &nodes());
    run_cluster(ctx, &c, async move {
        api.not_found("/api/v1/namespaces/ns/secrets/c-heartbeat")
            .await;
        api.leases(vec![]).await;
        let status = api.status(CLUSTER_STATUS).await;
        let valid = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["type"] == "ConfigValid")
            .unwrap()
            .clone();
        assert_eq!(valid["reason"], "HeartbeatPortConflict");
        let message = valid["message"].as_str().unwrap();
        assert!(message.contains("FailoverCluster/other/first"), "{message}");
        assert!(!message.contains("elsewhere"), "{message}");
        api.event().await;
    })
    .await;
}

/// A group Lease as the agents leave it: held by `holder` at `epoch`.
fn held_ledger(c: &FailoverCluster, group: &ResourceGroup, holder: &str, epoch: i32) -> Lease {
    let mut lease = build::leases(c, std::slice::from_ref(group)).remove(0);
    let spec = lease.spec.as_mut().unwrap();
    spec.holder_identity = Some(holder.to_owned());
    spec.lease_transitions = Some(epoch);
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    spec.acquire_time = Some(MicroTime(Timestamp::now()));
    lease.metadata.annotations = Some(BTreeMap::from([(
        names::REASON.to_owned(),
        "Placed".to_owned(),
    )]));
    lease
}

/// A node Lease as the operator rendered it and its agent renews it.
fn adopted_node_lease(c: &FailoverCluster, node: &str, hash: &str, held: &[(&str, u64)]) -> Lease {
    let mut lease = build::node_leases(c)
        .into_iter()
        .find(|l| l.name_any() == names::node_lease("c", node))
        .unwrap();
    let view = json!({"quorate": true, "alive": ["a", "b"], "held": held.iter().map(|(g, e)| (g.to_string(), *e)).collect::<BTreeMap<_, _>>()});
    lease.metadata.annotations = Some(BTreeMap::from([
        (names::CONFIG_HASH.to_owned(), hash.to_owned()),
        (names::VIEW.to_owned(), view.to_string()),
    ]));
    lease.spec = Some(LeaseSpec {
        holder_identity: Some(node.to_owned()),
        renew_time: Some(MicroTime(Timestamp::now())),
        ..LeaseSpec::default()
    });
    lease
}

/// Issue 9, finding 2: a restarted operator (new leader) must not reconcile before
/// its caches are listed, and then must neither delete a group Lease, nor render a
/// ClusterConfig without a group, nor write the holder or epoch of a Lease.
#[tokio::test]
async fn a_restarted_operator_waits_for_its_caches_and_keeps_every_ledger() {
    let web = group("web", "10.77.0.100/24");
    let db = group("db", "10.77.0.101/24");
    let groups = [db.clone(), web.clone()];
    let hash = render_config(&resolved(&cluster()), &groups).unwrap().hash;
    let c = cluster().hash(&hash);
    let secret = build::heartbeat_secret(&c, None, Timestamp::now(), [9; KEY_LEN]).secret;
    let existing = vec![
        held_ledger(&c, &web, "a", 5),
        held_ledger(&c, &db, "b", 3),
        adopted_node_lease(&c, "a", &hash, &[("web", 5)]),
        adopted_node_lease(&c, "b", &hash, &[("db", 3)]),
    ];

    let (client, api) = mocked_client(NS);
    let (stores, mut writers) = unlisted_stores();
    let (ctx, mut api) = context_with(client, stores, api);
    let reconcile = tokio::spawn(reconcile_cluster(Arc::new(guarded(&c)), ctx.clone()));
    // Nothing is read or written while the caches are not listed.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), api.next_request())
            .await
            .is_err(),
        "a request before the caches were listed"
    );
    listed(&mut writers.clusters, [guarded(&c)]);
    listed(&mut writers.groups, groups.iter().map(guarded));
    listed(
        &mut writers.group_clusters,
        groups.iter().map(|g| group_cluster_ref(&group_json(g))),
    );
    listed(&mut writers.nodes, nodes());

    let leases = existing.clone();
    let server = tokio::spawn(async move {
        api.expect(
            Method::GET,
            "/api/v1/namespaces/ns/secrets/c-heartbeat",
            move |_| (StatusCode::OK, serde_json::to_value(&secret).unwrap()),
        )
        .await;
        api.leases(leases).await;
        let applied = api.owned_objects().await;
        let cm = &applied["ConfigMap"];
        assert_eq!(
            cm["data"]["hash"],
            hash.as_str(),
            "the configuration is unchanged"
        );
        let (_, rendered) = load_documents(cm["data"]["config.yaml"].as_str().unwrap()).unwrap();
        let rendered: Vec<String> = rendered.iter().map(ResourceExt::name_any).collect();
        assert_eq!(
            rendered,
            ["db", "web"],
            "every group stays in the ClusterConfig"
        );
        // No Lease request at all: no create, no delete, no apply (the node Leases
        // already carry the labels and the owner reference). The next request is
        // the status; a Lease request would fail this expectation.
        let status = api.status(CLUSTER_STATUS).await;
        assert_eq!(status["syncedCount"], 2);
        api
    });
    reconcile.await.unwrap().unwrap();
    let mut api = server.await.unwrap();

    // The groups' status still names their holders and epochs.
    for (g, owner, epoch) in [(&web, "a", 5), (&db, "b", 3)] {
        let leases = existing.clone();
        let path = format!(
            "/apis/failover.dev/v1alpha1/namespaces/ns/resourcegroups/{}/status",
            g.name_any()
        );
        let server = tokio::spawn(async move {
            api.leases(leases).await;
            let status = api.status(&path).await;
            assert_eq!(status["owner"], owner);
            assert_eq!(status["epoch"], epoch);
            assert_eq!(status["phase"], "Online");
            api.event().await; // Placed: the fixture's group status had no owner
            api
        });
        reconcile_group(Arc::new(guarded(g)), ctx.clone())
            .await
            .unwrap();
        api = server.await.unwrap();
    }
}

/// A ledger whose group the store does not hold while the API server still has it
/// (a store behind the API server): the reconciliation stops before rendering or
/// deleting anything, and retries.
#[tokio::test]
async fn a_ledger_of_a_group_missing_only_from_the_store_is_kept_and_nothing_rendered() {
    let web = group("web", "10.77.0.100/24");
    let db = group("db", "10.77.0.101/24");
    let c = cluster();
    let secret = build::heartbeat_secret(&c, None, Timestamp::now(), [9; KEY_LEN]).secret;
    let existing = vec![held_ledger(&c, &web, "a", 5), held_ledger(&c, &db, "b", 3)];
    // The store lists web only.
    let (ctx, mut api) = context(std::slice::from_ref(&c), &[group_json(&web)], &nodes());
    let db_json = group_json(&db);
    let server = tokio::spawn(async move {
        api.expect(
            Method::GET,
            "/api/v1/namespaces/ns/secrets/c-heartbeat",
            move |_| (StatusCode::OK, serde_json::to_value(&secret).unwrap()),
        )
        .await;
        api.leases(existing).await;
        api.expect(
            Method::GET,
            "/apis/failover.dev/v1alpha1/namespaces/ns/resourcegroups/db",
            move |_| (StatusCode::OK, db_json.clone()),
        )
        .await;
        api
    });
    let result = reconcile_cluster(Arc::new(guarded(&c)), ctx.clone()).await;
    let error = result.unwrap_err();
    assert!(!error.permanent(), "{error}");
    assert!(error.to_string().contains("db"), "{error}");
    drop(ctx);
    let mut api = server.await.unwrap();
    assert!(api.next_request().await.is_none(), "nothing written");
}

/// Issue 9, finding 5: the operator renders every member's node Lease with an owner
/// reference to the cluster (garbage collection removes it with the cluster) and no
/// spec (the agent's), and deletes the node Lease of a member that left.
#[tokio::test]
async fn node_leases_belong_to_the_cluster_and_leave_with_their_member() {
    let c = cluster();
    let leases = build::node_leases(&c);
    let names: Vec<String> = leases.iter().map(ResourceExt::name_any).collect();
    assert_eq!(names, ["c-node-a", "c-node-b"]);
    for lease in &leases {
        assert_eq!(lease.spec, None);
        let owner = &lease.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("FailoverCluster", "uid-c", Some(true))
        );
        assert_eq!(lease.labels()[names::CLUSTER_LABEL], "c");
    }
    // Rendered but never renewed: no report yet, the member is Unknown.
    let status = cluster_status(
        &c,
        &[],
        None,
        &Reports::from_leases("c", &leases),
        Timestamp::now(),
    );
    assert_eq!(status.members[0].state, MemberState::Unknown);

    let web = group("web", "10.77.0.100/24");
    let hash = render_config(&resolved(&c), std::slice::from_ref(&web))
        .unwrap()
        .hash;
    let c = c.hash(&hash);
    let secret = build::heartbeat_secret(&c, None, Timestamp::now(), [9; KEY_LEN]).secret;
    let mut former = cluster().member("gone");
    former.metadata.uid = c.metadata.uid.clone();
    let existing = vec![
        held_ledger(&c, &web, "a", 1),
        adopted_node_lease(&c, "a", &hash, &[("web", 1)]),
        adopted_node_lease(&former, "gone", &hash, &[]),
    ];
    let (ctx, mut api) = context(std::slice::from_ref(&c), &[group_json(&web)], &nodes());
    run_cluster(ctx, &c, async move {
        api.expect(Method::GET, "/api/v1/namespaces/ns/secrets/c-heartbeat", move |_| {
            (StatusCode::OK, serde_json::to_value(&secret).unwrap())
        })
        .await;
        api.leases(existing).await;
        api.owned_objects().await;
        // a's Lease is up to date; b's is created; gone's is deleted.
        api.node_leases(&["b"]).await;
        api.expect(Method::DELETE, "/apis/coordination.k8s.io/v1/namespaces/ns/leases/c-node-gone", |_| {
            (StatusCode::OK, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}))
        })
        .await;
        api.status(CLUSTER_STATUS).await;
    })
    .await;
}

/// `failover witness` reads the Secret's key from a file, and key files lose
/// trailing whitespace: a drawn key never ends in any (over enough draws that a
/// plain random key would, about 2% of the time).
#[test]
fn a_fresh_key_survives_a_key_file() {
    for _ in 0..2000 {
        let key = super::draw_key().unwrap();
        assert!(!key[KEY_LEN - 1].is_ascii_whitespace(), "{key:?}");
    }
}
