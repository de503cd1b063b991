//! Real-cluster tests of the operator (and, through it, the agents' Kubernetes
//! mode). Enabled by `FAILOVER_E2E_KUBECONFIG`; without it every test prints why it
//! is skipped and passes. See e2e/kube/README.md for what they check and how to run.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use failover::api::{FailoverCluster, ResourceGroup};

const MANAGER: &str = "failover-e2e";
const WAIT: Duration = Duration::from_secs(180);

/// The kubeconfig of the test cluster, or `None` after printing why the test is skipped.
fn kubeconfig(test: &str) -> Option<PathBuf> {
    match std::env::var_os("FAILOVER_E2E_KUBECONFIG") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => {
            eprintln!(
                "SKIPPED {test}: set FAILOVER_E2E_KUBECONFIG=/path/to/kubeconfig to run the real-cluster tests (see e2e/kube/README.md)"
            );
            None
        }
    }
}

async fn client(path: &PathBuf) -> Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("readable kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("usable kubeconfig");
    Client::try_from(config).expect("client")
}

/// Polls `check` every 500 ms until it returns `Some` or [`WAIT`] passes.
async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A child process stopped with SIGTERM (then killed) when dropped.
struct Process(Child);

impl Process {
    fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        self.0.wait().ok()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.terminate();
        }
    }
}

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_failover")
}

fn spawn_operator(kubeconfig: &PathBuf, namespace: &str) -> Process {
    let image =
        std::env::var("FAILOVER_E2E_IMAGE").unwrap_or_else(|_| "failover-operator:dev".to_owned());
    let child = Command::new(binary())
        .args(["operator", "--kubeconfig"])
        .arg(kubeconfig)
        .args(["--namespace", namespace, "--watch-namespace", namespace])
        .args(["--agent-image", &image, "--metrics-addr", "127.0.0.1:0"])
        .args(["--resync-secs", "2"])
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn failover operator");
    Process(child)
}

/// Agents as local processes (`FAILOVER_E2E_AGENTS=local`), for clusters without
/// kubelets; otherwise the DaemonSet's pods are the agents.
fn spawn_agents(
    kubeconfig: &PathBuf,
    namespace: &str,
    cluster: &str,
    nodes: &[String],
) -> Vec<Process> {
    if std::env::var("FAILOVER_E2E_AGENTS").as_deref() != Ok("local") {
        return Vec::new();
    }
    nodes
        .iter()
        .map(|node| {
            let child = Command::new(binary())
                .args([
                    "agent",
                    "--node",
                    node,
                    "--cluster",
                    cluster,
                    "--namespace",
                    namespace,
                    "--kubeconfig",
                ])
                .arg(kubeconfig)
                .args(["--metrics-addr", ""])
                .spawn()
                .expect("spawn failover agent");
            Process(child)
        })
        .collect()
}

async fn apply_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crds");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("crds/") {
        let path = entry.expect("crds/ entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("CRD file");
        let crd: CustomResourceDefinition = serde_yaml_ng::from_str(&text).expect("CRD YAML");
        let name = crd.name_any();
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("apply CRD");
        names.push(name);
    }
    for name in names {
        let api = api.clone();
        wait_for(&format!("CRD {name} Established"), || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let crd = api.get(&name).await.ok()?;
                crd.status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            }
        })
        .await;
    }
}

async fn member_nodes(client: &Client) -> Vec<String> {
    if let Ok(list) = std::env::var("FAILOVER_E2E_NODES") {
        return list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
    }
    let nodes: Api<Node> = Api::all(client.clone());
    let mut names: Vec<String> = nodes
        .list(&ListParams::default())
        .await
        .expect("list nodes")
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    names.sort();
    names.truncate(3);
    names
}

fn cluster_manifest(name: &str, nodes: &[String], interval: &str) -> serde_json::Value {
    let quorum = match nodes.len() {
        1 => "none",
        2 => "witness",
        _ => "majority",
    };
    json!({
        "apiVersion": "failover.dev/v1alpha1", "kind": "FailoverCluster",
        "metadata": {"name": name},
        "spec": {
            "members": nodes.iter().map(|n| json!({"node": n})).collect::<Vec<_>>(),
            "quorum": quorum,
            "heartbeat": {"interval": interval, "deadAfter": "2s", "port": 7787},
        },
    })
}

fn status_of(cluster: &FailoverCluster, condition: &str) -> Option<(String, String, String)> {
    cluster
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == condition)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

async fn config_hash(cms: &Api<ConfigMap>, name: &str) -> Option<String> {
    cms.get_opt(name).await.ok()??.data?.get("hash").cloned()
}

/// Waits until every member reports `hash` as applied (agents follow the config).
async fn wait_synchronized(
    clusters: &Api<FailoverCluster>,
    name: &str,
    hash: &str,
    members: usize,
) {
    wait_for(
        &format!("every member of {name} running {hash}"),
        || async {
            let c = clusters.get(name).await.ok()?;
            let status = c.status?;
            (status.members.len() == members
                && status
                    .members
                    .iter()
                    .all(|m| m.synchronized && m.applied_config_hash.as_deref() == Some(hash)))
            .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn operator_renders_reports_rejects_and_cleans_up() {
    let Some(path) = kubeconfig("operator_renders_reports_rejects_and_cleans_up") else {
        return;
    };
    let client = client(&path).await;
    apply_crds(&client).await;

    let namespace = format!("failover-e2e-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap(),
        )
        .await
        .expect("create namespace");
    let nodes = member_nodes(&client).await;
    assert!(!nodes.is_empty(), "the cluster has no nodes");

    let mut operator = spawn_operator(&path, &namespace);
    let _agents = spawn_agents(&path, &namespace, "e2e", &nodes);

    let clusters: Api<FailoverCluster> = Api::namespaced(client.clone(), &namespace);
    let groups: Api<ResourceGroup> = Api::namespaced(client.clone(), &namespace);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), &namespace);
    let leases: Api<Lease> = Api::namespaced(client.clone(), &namespace);
    let pp = PostParams::default();

    // Create a cluster and a group.
    let vip = std::env::var("FAILOVER_E2E_VIP").unwrap_or_else(|_| "192.0.2.77/32".to_owned());
    clusters
        .create(
            &pp,
            &serde_json::from_value(cluster_manifest("e2e", &nodes, "200ms")).unwrap(),
        )
        .await
        .expect("create cluster");
    groups
        .create(&pp, &serde_json::from_value(json!({
            "apiVersion": "failover.dev/v1alpha1", "kind": "ResourceGroup",
            "metadata": {"name": "web"},
            "spec": {"cluster": "e2e", "resources": [{"name": "vip", "virtualIP": {"address": vip}}]},
        })).unwrap())
        .await
        .expect("create group");

    // Every owned object appears, with the contract's names.
    let hash = wait_for("ClusterConfig", || config_hash(&cms, "e2e-config")).await;
    assert_eq!(hash.len(), 16);
    let cm = cms.get("e2e-config").await.unwrap();
    let (loaded, loaded_groups) =
        failover::api::load_documents(&cm.data.unwrap()["config.yaml"]).expect("config.yaml loads");
    assert!(
        loaded.spec.members.iter().all(|m| m.address.is_some()),
        "addresses resolved from InternalIP"
    );
    assert_eq!(loaded_groups.len(), 1);
    let secret = secrets
        .get("e2e-heartbeat")
        .await
        .expect("heartbeat Secret");
    let key = secret.data.clone().unwrap()["key"].0.clone();
    assert_eq!(key.len(), 32);
    let ds = wait_for("agent DaemonSet", || async {
        daemonsets.get_opt("e2e-agent").await.ok()?
    })
    .await;
    assert_eq!(ds.owner_references()[0].name, "e2e");
    Api::<ServiceAccount>::namespaced(client.clone(), &namespace)
        .get("e2e-agent")
        .await
        .expect("ServiceAccount");
    Api::<Role>::namespaced(client.clone(), &namespace)
        .get("e2e-agent")
        .await
        .expect("Role");
    Api::<RoleBinding>::namespaced(client.clone(), &namespace)
        .get("e2e-agent")
        .await
        .expect("RoleBinding");
    let group_lease = wait_for("group Lease", || async {
        leases.get_opt("e2e-group-web").await.ok()?
    })
    .await;
    assert_eq!(group_lease.labels()["failover.dev/cluster"], "e2e");
    if nodes.len() == 2 {
        wait_for("witness Lease", || async {
            leases.get_opt("e2e-witness").await.ok()?
        })
        .await;
    }
    let leader = leases
        .get("failover-operator-leader")
        .await
        .expect("leader Lease");
    assert!(
        leader
            .spec
            .and_then(|s| s.holder_identity)
            .is_some_and(|h| !h.is_empty())
    );
    wait_for("status with the config hash", || async {
        let c = clusters.get("e2e").await.ok()?;
        let valid = status_of(&c, "ConfigValid")?;
        (c.status?.config_hash.as_deref() == Some(hash.as_str()) && valid.0 == "True").then_some(())
    })
    .await;

    // Agents apply the configuration and report its hash.
    wait_synchronized(&clusters, "e2e", &hash, nodes.len()).await;
    wait_for("group owner", || async {
        groups.get("web").await.ok()?.status?.owner
    })
    .await;

    // A config change reaches every member without a restart; the key stays.
    clusters
        .patch(
            "e2e",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"heartbeat": {"interval": "100ms"}}})),
        )
        .await
        .expect("change the heartbeat interval");
    let new_hash = wait_for("new ClusterConfig hash", || async {
        config_hash(&cms, "e2e-config").await.filter(|h| *h != hash)
    })
    .await;
    wait_synchronized(&clusters, "e2e", &new_hash, nodes.len()).await;
    let same = secrets.get("e2e-heartbeat").await.unwrap();
    assert_eq!(
        same.data.unwrap()["key"].0,
        key,
        "the key is never regenerated on reconcile"
    );

    // The API server rejects what the schema and CEL can see.
    let mut bad = cluster_manifest("bad-interval", &nodes, "1ms");
    let err = clusters
        .create(&pp, &serde_json::from_value(bad.clone()).unwrap())
        .await
        .expect_err("interval below 5ms");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422),
        "{err:?}"
    );
    bad["metadata"]["name"] = json!("bad-witness");
    bad["spec"]["heartbeat"]["interval"] = json!("200ms");
    bad["spec"]["members"] = json!([{"node": "x"}, {"node": "y"}, {"node": "z"}]);
    bad["spec"]["quorum"] = json!("witness");
    let err = clusters
        .create(&pp, &serde_json::from_value(bad).unwrap())
        .await
        .expect_err("witness with 3 members");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422),
        "{err:?}"
    );

    // The operator rejects what only it can see; the last valid config stays.
    let mut members: Vec<serde_json::Value> = nodes.iter().map(|n| json!({"node": n})).collect();
    members.push(json!({"node": "no-such-node-e2e"}));
    let unknown_index = members.len() - 1;
    clusters
        .patch(
            "e2e",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"members": members, "quorum": "majority"}})),
        )
        .await
        .expect("add an unknown node");
    let message = wait_for("ConfigValid=False", || async {
        let c = clusters.get("e2e").await.ok()?;
        let (status, _, message) = status_of(&c, "ConfigValid")?;
        (status == "False").then_some(message)
    })
    .await;
    assert!(
        message.contains(&format!("spec.members[{unknown_index}].node")),
        "{message}"
    );
    assert_eq!(
        config_hash(&cms, "e2e-config").await.as_deref(),
        Some(new_hash.as_str()),
        "last valid ClusterConfig kept"
    );
    // Heartbeat port conflict with a second cluster on the same nodes.
    clusters
        .create(
            &pp,
            &serde_json::from_value(cluster_manifest("e2e-second", &nodes, "200ms")).unwrap(),
        )
        .await
        .expect("second cluster");
    let reason = wait_for("HeartbeatPortConflict", || async {
        let c = clusters.get("e2e-second").await.ok()?;
        let (status, reason, _) = status_of(&c, "ConfigValid")?;
        (status == "False").then_some(reason)
    })
    .await;
    assert_eq!(reason, "HeartbeatPortConflict");
    assert!(
        cms.get_opt("e2e-second-config").await.unwrap().is_none(),
        "no config for the conflicting cluster"
    );
    clusters
        .delete("e2e-second", &DeleteParams::default())
        .await
        .expect("delete second");

    // Deletion: garbage collection removes every owned object.
    clusters
        .delete("e2e", &DeleteParams::foreground())
        .await
        .expect("delete cluster");
    wait_for("cleanup", || async {
        let gone = cms.get_opt("e2e-config").await.ok()?.is_none()
            && secrets.get_opt("e2e-heartbeat").await.ok()?.is_none()
            && daemonsets.get_opt("e2e-agent").await.ok()?.is_none()
            && leases.get_opt("e2e-group-web").await.ok()?.is_none();
        gone.then_some(())
    })
    .await;

    // Graceful shutdown releases the leader Lease.
    let status = operator.terminate().expect("operator exit status");
    assert!(status.success(), "operator exit: {status}");
    let leader = leases
        .get("failover-operator-leader")
        .await
        .expect("leader Lease");
    assert!(
        leader
            .spec
            .and_then(|s| s.holder_identity)
            .is_none_or(|h| h.is_empty()),
        "released on SIGTERM"
    );

    let _ = groups.delete("web", &DeleteParams::default()).await;
    let _ = namespaces
        .delete(&namespace, &DeleteParams::default())
        .await;
}
