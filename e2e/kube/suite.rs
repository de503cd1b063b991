//! Real-cluster tests of the operator and, through it, of the agents' Kubernetes
//! mode: CRDs, RBAC, DaemonSet, Leases and status against a real API server, with
//! faults (owner kill, operator restart, API outage) and the measured figures.
//!
//! Enabled by `FAILOVER_E2E_KUBECONFIG`; without it the test prints why it is skipped
//! and passes. One test runs every step in order (the steps share one FailoverCluster
//! on the same nodes and heartbeat port, so they cannot run in parallel). Whatever
//! happens, a guard stops the processes it started and deletes the namespace, the
//! cluster-scoped RBAC objects and the kubeconfig files it wrote (bounded).
//! See e2e/kube/README.md for what each step proves and how to run it.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, ResourceExt};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use failover::api::conditions as cond;
use failover::api::{FailoverCluster, ResourceGroup};
use failover::contract::names;
use failover::lab::sampler::{HolderReport, VipSampler};
use failover::operator::leader;

const MANAGER: &str = "failover-e2e";
const CLUSTER: &str = "e2e";
const SECOND_CLUSTER: &str = "e2e-second";
const GROUP: &str = "web";
/// The operator's ServiceAccount, as the chart names it for a release `failover-operator`.
const OPERATOR_SA: &str = "failover-operator";
const PORT: u16 = 7787;
const INTERVAL: &str = "200ms";
const DEAD_AFTER: &str = "1s";
const DEAD_AFTER_MS: u64 = 1000;
/// Leader Lease of the operators the test starts: short, so a killed leader's
/// successor takes over within seconds.
const OPERATOR_LEASE_SECS: u64 = 5;
const RESYNC_SECS: u64 = 2;

/// Each API request of the test itself (not the waits) is bounded by this.
const REQUEST_LIMIT: Duration = Duration::from_secs(10);
/// Objects the operator renders.
const WAIT_OBJECTS: Duration = Duration::from_secs(60);
/// Agents start (pods may pull an image) and report.
const WAIT_AGENTS: Duration = Duration::from_secs(180);
/// A takeover or a status update after a fault.
const WAIT_FAILOVER: Duration = Duration::from_secs(30);
/// The whole cleanup.
const CLEANUP_LIMIT: Duration = Duration::from_secs(90);
/// How often ordinary waits poll.
const POLL: Duration = Duration::from_millis(100);
/// How often the measurements and the restart sampler poll (their resolution).
const SAMPLE: Duration = Duration::from_millis(20);

/// Config changes measured, and the target of their p99 (apply → status shows
/// every member synchronized).
const CHANGES: usize = 20;
const PROPAGATION_TARGET_MS: f64 = 500.0;
/// Target: status.owner follows the successor's report within this.
const STATUS_TARGET_MS: f64 = 1000.0;
/// Bound on the time during an operator restart in which no member reports the
/// group (and, with namespaces, no namespace holds the VIP): none. Only the operator
/// restarts, so nothing may move; at the sampling resolution, one sample without a
/// holder fails the step.
const RESTART_GAP_BOUND_MS: f64 = 0.0;
/// How long the test samples after a new operator leads (its first reconciles).
const RESTART_SETTLE: Duration = Duration::from_secs(3 * RESYNC_SECS);
/// How long the API server stays down when the agents are pods (nothing to kill
/// without the API; the owner must keep serving).
const OUTAGE_HOLD: Duration = Duration::from_secs(10);
/// A takeover while the API is down must happen within deadAfter plus this.
const OUTAGE_TAKEOVER_SLACK_MS: u64 = 2000;
/// After SIGKILL the dead node's kernel keeps the VIP until its address lifetime
/// ends (whole seconds, 1 s with deadAfter 1s, removed by the kernel up to ~0.25 s
/// late; tests/lab_scenarios.rs uses the same bound); a live agent never overlaps.
const KILLED_OVERLAP_BOUND_MS: f64 = DEAD_AFTER_MS as f64 + 600.0;
/// Sentence every agent's explanation carries when its node cannot host the group
/// (`placement::Ineligible::Unable`: no interface has the VIP's subnet, or failed
/// checks). When every member says it, the group can never be placed.
const CANNOT_HOST: &str = "cannot host the group";

// ---------------------------------------------------------------------------
// Environment

/// Where the agents run.
#[derive(Debug, Clone, PartialEq)]
enum Agents {
    /// The DaemonSet's pods.
    Pods,
    /// One local process per member; `netns` is a network namespace name template
    /// (`{node}` replaced) the process runs in, whose VIP the test then samples.
    Local { netns: Option<String> },
}

/// What the environment says about the cluster under test.
#[derive(Debug, Clone)]
struct Env {
    kubeconfig: PathBuf,
    vip: String,
    image: String,
    agents: Agents,
    nodes: Option<Vec<String>>,
    api_stop: Option<String>,
    api_start: Option<String>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Env {
    /// The environment, or `None` after printing why the test is skipped. Panics at
    /// once (before touching the cluster) when a required variable is missing.
    fn read(test: &str) -> Option<Env> {
        let Some(kubeconfig) = var("FAILOVER_E2E_KUBECONFIG") else {
            // Straight to stderr, not through the test harness's capture, so the
            // skip shows in a plain `cargo test` too.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: set FAILOVER_E2E_KUBECONFIG=/path/to/kubeconfig to run the real-cluster tests (see e2e/kube/README.md)"
            );
            return None;
        };
        let vip = var("FAILOVER_E2E_VIP").unwrap_or_else(|| {
            panic!(
                "FAILOVER_E2E_VIP is required: an unused address, as ADDRESS/PREFIX, inside a subnet that an interface of every member node has (e.g. 10.0.0.250/32 when the members have 10.0.0.x/24); the agent only takes a VIP inside a subnet of its interfaces (see e2e/kube/README.md)"
            )
        });
        let (address, prefix) = vip
            .split_once('/')
            .unwrap_or_else(|| panic!("FAILOVER_E2E_VIP={vip}: expected ADDRESS/PREFIX"));
        address
            .parse::<std::net::IpAddr>()
            .unwrap_or_else(|e| panic!("FAILOVER_E2E_VIP={vip}: {address} is no IP address: {e}"));
        prefix.parse::<u8>().unwrap_or_else(|e| {
            panic!("FAILOVER_E2E_VIP={vip}: {prefix} is no prefix length: {e}")
        });
        let agents = match var("FAILOVER_E2E_AGENTS").as_deref() {
            None | Some("pods") => Agents::Pods,
            Some("local") => Agents::Local {
                netns: var("FAILOVER_E2E_NETNS"),
            },
            Some(other) => panic!("FAILOVER_E2E_AGENTS={other}: expected pods or local"),
        };
        if agents == Agents::Pods && var("FAILOVER_E2E_NETNS").is_some() {
            panic!("FAILOVER_E2E_NETNS needs FAILOVER_E2E_AGENTS=local");
        }
        let api_stop = var("FAILOVER_E2E_API_STOP");
        let api_start = var("FAILOVER_E2E_API_START");
        assert_eq!(
            api_stop.is_some(),
            api_start.is_some(),
            "set both FAILOVER_E2E_API_STOP and FAILOVER_E2E_API_START, or neither"
        );
        Some(Env {
            kubeconfig: PathBuf::from(kubeconfig),
            vip,
            image: var("FAILOVER_E2E_IMAGE").unwrap_or_else(|| "failover-operator:dev".to_owned()),
            agents,
            nodes: var("FAILOVER_E2E_NODES").map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
            api_stop,
            api_start,
        })
    }

    /// The VIP without its prefix, as `ip addr` shows it.
    fn vip_address(&self) -> &str {
        self.vip.split('/').next().unwrap_or(&self.vip)
    }

    /// The network namespace of `node`'s local agent, if the test knows it.
    fn netns(&self, node: &str) -> Option<String> {
        match &self.agents {
            Agents::Local {
                netns: Some(template),
            } => Some(template.replace("{node}", node)),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Waiting

/// Why a wait has not finished: still missing (keep polling), or a state that will
/// never turn into success (fail at once with the message).
#[derive(Debug)]
enum Wait {
    Missing(String),
    Fatal(String),
}

impl From<kube::Error> for Wait {
    fn from(error: kube::Error) -> Self {
        Wait::Missing(format!("API request failed: {error}"))
    }
}

fn missing<T>(what: impl Into<String>) -> Result<T, Wait> {
    Err(Wait::Missing(what.into()))
}

fn step(title: &str) {
    println!("\n=== {title}");
}

/// Polls `check` every `every` until it succeeds, fails for good, or `limit` passes;
/// each call of `check` is bounded by [`REQUEST_LIMIT`]. Prints what it waits for
/// and, on a timeout, panics naming what was still missing.
async fn wait_every<T>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut check: impl AsyncFnMut() -> Result<T, Wait>,
) -> T {
    println!("  waiting for {what} (at most {} s)", limit.as_secs());
    let start = Instant::now();
    let mut last;
    loop {
        match tokio::time::timeout(REQUEST_LIMIT, check()).await {
            Ok(Ok(value)) => {
                println!("  ok: {what} ({} ms)", start.elapsed().as_millis());
                return value;
            }
            Ok(Err(Wait::Missing(why))) => last = why,
            Ok(Err(Wait::Fatal(why))) => panic!("{what}: {why}"),
            Err(_) => last = format!("no answer within {} s", REQUEST_LIMIT.as_secs()),
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {} s waiting for {what}; still missing: {last}",
            limit.as_secs()
        );
        tokio::time::sleep(every).await;
    }
}

async fn wait_for<T>(
    what: &str,
    limit: Duration,
    check: impl AsyncFnMut() -> Result<T, Wait>,
) -> T {
    wait_every(what, limit, POLL, check).await
}

/// `name` of `api`, or `Missing` naming it.
async fn need<K>(api: &Api<K>, name: &str) -> Result<K, Wait>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    match api.get_opt(name).await? {
        Some(object) => Ok(object),
        None => missing(format!(
            "{} {name} does not exist",
            K::kind(&K::DynamicType::default())
        )),
    }
}

/// One API call of the test, bounded by [`REQUEST_LIMIT`].
async fn bounded<T>(what: &str, call: impl Future<Output = Result<T, kube::Error>>) -> T {
    match tokio::time::timeout(REQUEST_LIMIT, call).await {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => panic!("{what}: {error}"),
        Err(_) => panic!("{what}: no answer within {} s", REQUEST_LIMIT.as_secs()),
    }
}

fn ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 10_000.0).round() / 10.0
}

/// Nearest-rank percentile (`q` in 0..=1) of `values`; `None` when empty.
fn percentile(values: &[f64], q: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

/// Prints one measurement as a JSON line (`"measurement"` names it).
fn report(measurement: &str, mut fields: serde_json::Value) {
    fields["measurement"] = json!(measurement);
    println!("{fields}");
}

// ---------------------------------------------------------------------------
// Processes

/// A child process; stopped with SIGTERM (then SIGKILL) when dropped.
struct Process {
    name: String,
    child: Child,
}

impl Process {
    fn spawn(name: String, command: &mut Command) -> Process {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        println!("  started {name} (pid {})", child.id());
        Process { name, child }
    }

    fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then up to `limit` for it to exit, then SIGKILL.
    fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        println!(
            "  {} did not exit within {limit:?} of SIGTERM: SIGKILL",
            self.name
        );
        self.kill();
        self.child.wait().ok()
    }

    /// SIGKILL, and reap it.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.terminate(Duration::from_secs(10));
    }
}

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_failover")
}

// ---------------------------------------------------------------------------
// Kubernetes helpers

async fn client(path: &Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(path)
        .unwrap_or_else(|e| panic!("cannot read kubeconfig {}: {e}", path.display()));
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap_or_else(|e| panic!("unusable kubeconfig {}: {e}", path.display()));
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(REQUEST_LIMIT);
    Client::try_from(config).expect("a client from the kubeconfig")
}

/// Writes to `out` a copy of the kubeconfig at `source` whose current user acts as
/// `user` (`kubectl --as=USER`): the API server then authorizes every request as
/// that user alone. Needs the `impersonate` verb on the source user (cluster-admin).
fn impersonating_kubeconfig(source: &Path, user: &str, out: &Path) {
    let mut kubeconfig = Kubeconfig::read_from(source)
        .unwrap_or_else(|e| panic!("cannot read kubeconfig {}: {e}", source.display()));
    let current = kubeconfig
        .current_context
        .clone()
        .expect("the kubeconfig has a current-context");
    let context = kubeconfig
        .contexts
        .iter_mut()
        .find(|c| c.name == current)
        .and_then(|c| c.context.as_mut())
        .expect("the kubeconfig defines its current-context");
    let user_name = context
        .user
        .clone()
        .expect("the current context names a user");
    let mut auth = kubeconfig
        .auth_infos
        .iter()
        .find(|a| a.name == user_name)
        .cloned()
        .expect("the kubeconfig defines the current context's user");
    auth.name = format!("{user_name}-as-{user}");
    auth.auth_info
        .get_or_insert_with(Default::default)
        .impersonate = Some(user.to_owned());
    context.user = Some(auth.name.clone());
    kubeconfig.auth_infos.push(auth);
    let text = serde_yaml_ng::to_string(&kubeconfig).expect("kubeconfig serializes");
    std::fs::write(out, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o600))
        .expect("kubeconfig permissions");
}

fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// The `rules` of the `kind` document of a chart template. The chart's RBAC rules
/// are static YAML; only names and labels are templated, and those lines are left
/// out (the test names the objects itself). A template directive inside the rules
/// would change them, so it fails here instead of being guessed.
fn chart_rules(template: &str, kind: &str) -> Vec<PolicyRule> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("charts/failover-operator/templates")
        .join(template);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    for document in text.split("\n---") {
        let mut in_rules = false;
        let mut plain = String::new();
        for line in document.lines() {
            if line.starts_with("rules:") {
                in_rules = true;
            } else if !line.starts_with(' ') && !line.starts_with('-') && !line.is_empty() {
                in_rules = line.starts_with('#') && in_rules;
            }
            if line.contains("{{") {
                assert!(
                    !in_rules,
                    "{}: a template directive inside the rules ({line}); the suite reads the rules as plain YAML",
                    path.display()
                );
                continue;
            }
            plain.push_str(line);
            plain.push('\n');
        }
        let value: serde_json::Value = serde_yaml_ng::from_str(&plain)
            .unwrap_or_else(|e| panic!("{}: not YAML without its directives: {e}", path.display()));
        if value["kind"] == kind {
            let rules: Vec<PolicyRule> = serde_json::from_value(value["rules"].clone())
                .unwrap_or_else(|e| panic!("{}: rules of the {kind}: {e}", path.display()));
            assert!(
                !rules.is_empty(),
                "{}: the {kind} has no rules",
                path.display()
            );
            return rules;
        }
    }
    panic!("{}: no {kind} document", path.display())
}

/// Server-side applies `manifest` (with the test's field manager).
async fn apply<K>(api: &Api<K>, manifest: serde_json::Value)
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let name = manifest["metadata"]["name"]
        .as_str()
        .expect("the test's manifest has a name")
        .to_owned();
    let what = format!("apply {} {name}", manifest["kind"]);
    bounded(
        &what,
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&manifest),
        ),
    )
    .await;
}

fn object<K: DeserializeOwned>(value: serde_json::Value) -> K {
    serde_json::from_value(value).expect("the test's own manifest deserializes")
}

fn condition(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    type_: &str,
) -> Option<(String, String, String)> {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn cluster_condition(cluster: &FailoverCluster, type_: &str) -> Option<(String, String, String)> {
    condition(&cluster.status.as_ref()?.conditions, type_)
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
            "heartbeat": {"interval": interval, "deadAfter": DEAD_AFTER, "port": PORT},
        },
    })
}

/// One group a node reports running in its node Lease (`failover.dev/owned`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Owned {
    epoch: u64,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    since: Option<String>,
}

/// The groups a node Lease reports (empty when the annotation is absent; a
/// malformed annotation is a product bug and fails).
fn owned(lease: &Lease) -> BTreeMap<String, Owned> {
    match lease.annotations().get(names::OWNED) {
        None => BTreeMap::new(),
        Some(text) => serde_json::from_str(text).unwrap_or_else(|e| {
            panic!(
                "Lease {}: annotation {} is not {{group: {{epoch, reason, message, since}}}}: {e}: {text}",
                lease.name_any(),
                names::OWNED
            )
        }),
    }
}

fn lease_holder(lease: &Lease) -> Option<String> {
    lease
        .spec
        .as_ref()?
        .holder_identity
        .clone()
        .filter(|h| !h.is_empty())
}

fn lease_epoch(lease: &Lease) -> Option<i32> {
    lease.spec.as_ref()?.lease_transitions
}

/// What the API shows of the cluster's ownership at one moment.
#[derive(Debug, Clone)]
struct Snapshot {
    /// Since the start of the sampling.
    at_ms: f64,
    /// Node Leases by node.
    nodes: BTreeMap<String, Lease>,
    /// The group Lease: (uid, holder, epoch), `None` when it does not exist.
    group_lease: Option<(String, Option<String>, Option<i32>)>,
    config_hash: Option<String>,
    status_owner: Option<String>,
    status_epoch: Option<u64>,
}

impl Snapshot {
    /// Members whose agent reports running the group.
    fn holders(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, lease)| owned(lease).contains_key(GROUP))
            .map(|(node, _)| node.clone())
            .collect()
    }

    /// Members whose agent reports `hash` as applied.
    fn running(&self, hash: &str) -> usize {
        self.nodes
            .values()
            .filter(|l| l.annotations().get(names::CONFIG_HASH).map(String::as_str) == Some(hash))
            .count()
    }
}

/// The API objects a test run works with.
#[derive(Clone)]
struct Apis {
    clusters: Api<FailoverCluster>,
    groups: Api<ResourceGroup>,
    cms: Api<ConfigMap>,
    secrets: Api<Secret>,
    daemonsets: Api<DaemonSet>,
    leases: Api<Lease>,
    pods: Api<Pod>,
}

impl Apis {
    fn new(client: &Client, namespace: &str) -> Apis {
        Apis {
            clusters: Api::namespaced(client.clone(), namespace),
            groups: Api::namespaced(client.clone(), namespace),
            cms: Api::namespaced(client.clone(), namespace),
            secrets: Api::namespaced(client.clone(), namespace),
            daemonsets: Api::namespaced(client.clone(), namespace),
            leases: Api::namespaced(client.clone(), namespace),
            pods: Api::namespaced(client.clone(), namespace),
        }
    }

    async fn config_hash(&self, cluster: &str) -> Result<String, Wait> {
        let cm = need(&self.cms, &names::config_map(cluster)).await?;
        match cm.data.and_then(|d| d.get(names::HASH_KEY).cloned()) {
            Some(hash) => Ok(hash),
            None => missing(format!(
                "ConfigMap {} has no {}",
                names::config_map(cluster),
                names::HASH_KEY
            )),
        }
    }

    /// One snapshot (three requests: the Leases, the ConfigMap, the group).
    async fn snapshot(&self, nodes: &[String], t0: Instant) -> Result<Snapshot, Wait> {
        let leases = self.leases.list(&ListParams::default()).await?;
        let group_lease_name = names::group_lease(CLUSTER, GROUP);
        let mut snapshot = Snapshot {
            at_ms: ms(t0.elapsed()),
            nodes: BTreeMap::new(),
            group_lease: None,
            config_hash: None,
            status_owner: None,
            status_epoch: None,
        };
        for lease in leases.items {
            let name = lease.name_any();
            if name == group_lease_name {
                snapshot.group_lease = Some((
                    lease.uid().unwrap_or_default(),
                    lease_holder(&lease),
                    lease_epoch(&lease),
                ));
            } else if let Some(node) = nodes.iter().find(|n| names::node_lease(CLUSTER, n) == name)
            {
                snapshot.nodes.insert(node.clone(), lease);
            }
        }
        snapshot.config_hash = match self.config_hash(CLUSTER).await {
            Ok(hash) => Some(hash),
            Err(Wait::Missing(_)) => None,
            Err(fatal) => return Err(fatal),
        };
        let group = need(&self.groups, GROUP).await?;
        if let Some(status) = group.status {
            snapshot.status_owner = status.owner;
            snapshot.status_epoch = status.epoch;
        }
        Ok(snapshot)
    }

    /// Every member reports `hash` in status (synchronized) and is Online.
    async fn synchronized(&self, hash: &str, members: usize) -> Result<(), Wait> {
        let cluster = need(&self.clusters, CLUSTER).await?;
        let status = cluster.status.unwrap_or_default();
        let behind: Vec<String> = status
            .members
            .iter()
            .filter(|m| {
                !m.synchronized
                    || m.applied_config_hash.as_deref() != Some(hash)
                    || m.state != failover::api::MemberState::Online
            })
            .map(|m| {
                format!(
                    "{} {:?} running {:?}",
                    m.node, m.state, m.applied_config_hash
                )
            })
            .collect();
        if status.members.len() == members && behind.is_empty() {
            Ok(())
        } else {
            missing(format!(
                "status of {} members, not Online on {hash}: {}",
                status.members.len(),
                behind.join("; ")
            ))
        }
    }

    /// The group's owner in status; fails at once when the group can never be
    /// placed (invalid spec, or every member's agent says it cannot host it).
    async fn placed(&self, members: usize) -> Result<String, Wait> {
        let group = need(&self.groups, GROUP).await?;
        let status = group.status.unwrap_or_default();
        if let Some(owner) = status.owner {
            return Ok(owner);
        }
        if let Some((s, reason, message)) = condition(&status.conditions, cond::CONFIG_VALID)
            && s == cond::STATUS_FALSE
        {
            return Err(Wait::Fatal(format!(
                "ResourceGroup {GROUP} ConfigValid=False {reason}: {message}"
            )));
        }
        let said: Vec<String> = status
            .members
            .iter()
            .map(|m| format!("{}: {}", m.node, m.reason))
            .collect();
        if status.members.len() == members
            && status
                .members
                .iter()
                .all(|m| m.reason.contains(CANNOT_HOST))
        {
            return Err(Wait::Fatal(format!(
                "no member can host ResourceGroup {GROUP} (is FAILOVER_E2E_VIP inside a subnet of the members' interfaces?): {}",
                said.join("; ")
            )));
        }
        let ready = condition(&status.conditions, cond::READY)
            .map(|(s, r, m)| format!("Ready={s} {r}: {m}"))
            .unwrap_or_else(|| "no Ready condition".to_owned());
        missing(format!("no owner; {ready}; members: {}", said.join("; ")))
    }
}

/// With the agents in known namespaces, waits until exactly `holders` hold the VIP.
async fn wait_vip_held_by(run: &Run, holders: &[String], what: &str) {
    let namespaces: Option<Vec<String>> = run.nodes.iter().map(|n| run.env.netns(n)).collect();
    let Some(namespaces) = namespaces else {
        return;
    };
    let vip = run.env.vip_address().to_owned();
    wait_for(
        &format!("the VIP held by {what}"),
        WAIT_FAILOVER,
        async || {
            let now = failover::lab::sampler::holders(&namespaces, &vip)
                .map_err(|e| Wait::Fatal(format!("cannot read the namespaces' addresses: {e}")))?;
            if now == holders {
                Ok(())
            } else {
                missing(format!("held in {now:?}"))
            }
        },
    )
    .await;
}

/// Starts sampling which network namespaces hold the VIP, when the agents run in
/// known namespaces.
fn vip_sampler(env: &Env, nodes: &[String]) -> Option<VipSampler> {
    let namespaces: Option<Vec<String>> = nodes.iter().map(|n| env.netns(n)).collect();
    let namespaces = namespaces?;
    Some(
        VipSampler::start(&namespaces, env.vip_address())
            .unwrap_or_else(|e| panic!("cannot watch the VIP in {namespaces:?}: {e}")),
    )
}

/// Whether `report`'s timeline `index` holds the VIP at `at_ms`.
fn holds_at(report: &HolderReport, index: usize, at_ms: f64) -> bool {
    report.timelines[index]
        .iter()
        .take_while(|(t, _)| *t <= at_ms)
        .last()
        .is_some_and(|(_, holds)| *holds)
}

/// Longest stretch in `[from_ms, end]` during which no namespace held the VIP.
fn vip_gap_ms(report: &HolderReport, from_ms: f64) -> f64 {
    let mut changes: Vec<f64> = report
        .timelines
        .iter()
        .flat_map(|t| t.iter().map(|(at, _)| *at))
        .filter(|at| *at > from_ms)
        .collect();
    changes.push(report.end_ms);
    changes.sort_by(f64::total_cmp);
    let held = |at: f64| (0..report.timelines.len()).any(|i| holds_at(report, i, at));
    let mut longest = 0.0_f64;
    let mut empty_since = (!held(from_ms)).then_some(from_ms);
    for at in changes {
        match (empty_since, held(at)) {
            (Some(since), true) => {
                longest = longest.max(at - since);
                empty_since = None;
            }
            (None, false) => empty_since = Some(at),
            _ => {}
        }
    }
    if let Some(since) = empty_since {
        longest = longest.max(report.end_ms - since);
    }
    longest
}

/// When namespace `index` first held the VIP after `from_ms`.
fn vip_taken_at(report: &HolderReport, index: usize, from_ms: f64) -> Option<f64> {
    if holds_at(report, index, from_ms) {
        return Some(from_ms);
    }
    report.timelines[index]
        .iter()
        .find(|(t, holds)| *t > from_ms && *holds)
        .map(|(t, _)| *t)
}

// ---------------------------------------------------------------------------
// The run: what the test started, and the guard that removes it

struct Run {
    env: Env,
    client: Client,
    apis: Apis,
    namespace: String,
    nodes: Vec<String>,
    /// Kubeconfigs acting as the operator's and the agents' ServiceAccounts.
    dir: PathBuf,
    cluster_rbac: String,
    operators: Vec<(String, Process)>,
    agents: BTreeMap<String, Process>,
}

impl Run {
    fn operator_kubeconfig(&self) -> PathBuf {
        self.dir.join("operator.kubeconfig")
    }

    fn agent_kubeconfig(&self) -> PathBuf {
        self.dir.join("agent.kubeconfig")
    }

    /// Starts an operator replica acting as the chart's ServiceAccount.
    fn spawn_operator(&mut self, identity: &str) {
        let process = Process::spawn(
            format!("operator {identity}"),
            Command::new(binary())
                .args(["operator", "--kubeconfig"])
                .arg(self.operator_kubeconfig())
                .args([
                    "--namespace",
                    &self.namespace,
                    "--watch-namespace",
                    &self.namespace,
                ])
                .args(["--identity", identity])
                .args([
                    "--agent-image",
                    &self.env.image,
                    "--metrics-addr",
                    "127.0.0.1:0",
                ])
                .args(["--resync-secs", &RESYNC_SECS.to_string()])
                .args(["--lease-duration-secs", &OPERATOR_LEASE_SECS.to_string()]),
        );
        self.operators.push((identity.to_owned(), process));
    }

    fn operator(&mut self, identity: &str) -> &mut Process {
        self.operators
            .iter_mut()
            .find(|(id, _)| id == identity)
            .map(|(_, p)| p)
            .unwrap_or_else(|| panic!("the test started no operator {identity}"))
    }

    /// Starts the local agent of `node` acting as the agents' ServiceAccount (in its
    /// network namespace when one is configured). Pods mode: nothing to start.
    fn spawn_agent(&mut self, node: &str) {
        if self.env.agents == Agents::Pods {
            return;
        }
        let mut command = match self.env.netns(node) {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &ns, binary()]);
                c
            }
            None => Command::new(binary()),
        };
        command
            .args(["agent", "--node", node, "--cluster", CLUSTER])
            .args(["--namespace", &self.namespace, "--kubeconfig"])
            .arg(self.agent_kubeconfig())
            .args(["--metrics-addr", ""]);
        let process = Process::spawn(format!("agent {node}"), &mut command);
        self.agents.insert(node.to_owned(), process);
    }

    /// Stops what the test started and deletes what it created, bounded by
    /// [`CLEANUP_LIMIT`]; prints what it could not remove.
    async fn cleanup(mut self) {
        step("cleanup");
        for (_, mut process) in std::mem::take(&mut self.operators) {
            process.terminate(Duration::from_secs(10));
        }
        for (_, mut process) in std::mem::take(&mut self.agents) {
            process.terminate(Duration::from_secs(10));
        }
        let work = async {
            let dp = DeleteParams::default();
            let namespaces: Api<Namespace> = Api::all(self.client.clone());
            if let Err(e) = namespaces.delete(&self.namespace, &dp).await {
                println!("  cannot delete namespace {}: {e}", self.namespace);
            }
            let roles: Api<ClusterRole> = Api::all(self.client.clone());
            if let Err(e) = roles.delete(&self.cluster_rbac, &dp).await {
                println!("  cannot delete ClusterRole {}: {e}", self.cluster_rbac);
            }
            let bindings: Api<ClusterRoleBinding> = Api::all(self.client.clone());
            if let Err(e) = bindings.delete(&self.cluster_rbac, &dp).await {
                println!(
                    "  cannot delete ClusterRoleBinding {}: {e}",
                    self.cluster_rbac
                );
            }
            loop {
                match namespaces.get_opt(&self.namespace).await {
                    Ok(None) => {
                        println!("  namespace {} deleted", self.namespace);
                        break;
                    }
                    Ok(Some(_)) | Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
        };
        if tokio::time::timeout(CLEANUP_LIMIT, work).await.is_err() {
            println!(
                "  namespace {} still terminating after {} s (deletion requested)",
                self.namespace,
                CLEANUP_LIMIT.as_secs()
            );
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            println!("  cannot remove {}: {e}", self.dir.display());
        }
    }
}

// ---------------------------------------------------------------------------
// The test

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_e2e() {
    let Some(env) = Env::read("real_cluster_e2e") else {
        return;
    };
    let client = client(&env.kubeconfig).await;
    step("CRDs");
    apply_crds(&client).await;
    let nodes = member_nodes(&client, &env).await;
    println!(
        "  members: {nodes:?}; agents: {:?}; VIP {}",
        env.agents, env.vip
    );

    let namespace = format!("failover-e2e-{}", std::process::id());
    let dir = std::env::temp_dir().join(&namespace);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    bounded(
        "create namespace",
        namespaces.create(
            &PostParams::default(),
            &object(json!({"metadata": {"name": namespace}})),
        ),
    )
    .await;
    let mut run = Run {
        apis: Apis::new(&client, &namespace),
        cluster_rbac: format!("{namespace}-operator"),
        env,
        client,
        namespace,
        nodes,
        dir,
        operators: Vec::new(),
        agents: BTreeMap::new(),
    };
    let outcome = AssertUnwindSafe(steps(&mut run)).catch_unwind().await;
    run.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn steps(run: &mut Run) {
    operator_rbac(run).await;
    step("operator on the chart's ClusterRole");
    run.spawn_operator("e2e-operator-a");
    create_cluster(run).await;
    let (hash, key) = rendered_objects(run).await;
    agents_on_their_role(run).await;
    synchronized_and_placed(run, &hash).await;
    let hash = propagation(run, &hash).await;
    let same = bounded(
        "get Secret",
        run.apis.secrets.get(&names::heartbeat_secret(CLUSTER)),
    )
    .await;
    assert_eq!(
        same.data
            .and_then(|d| d.get(names::KEY).cloned())
            .map(|k| k.0),
        Some(key),
        "the heartbeat key is never regenerated by a config change"
    );
    owner_kill(run, &hash).await;
    operator_restart(run, &hash).await;
    api_outage(run, &hash).await;
    rejections(run, &hash).await;
    deletion(run).await;
    operator_shutdown(run).await;
}

async fn apply_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crds");
    let mut crds = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("crds/ is readable") {
        let path = entry.expect("crds/ entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("CRD file is readable");
        let crd: CustomResourceDefinition = serde_yaml_ng::from_str(&text).expect("CRD YAML");
        let name = crd.name_any();
        bounded(
            &format!("apply CRD {name}"),
            api.patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&crd),
            ),
        )
        .await;
        crds.push(name);
    }
    for name in crds {
        wait_for(
            &format!("CRD {name} Established"),
            WAIT_OBJECTS,
            async || {
                let crd = need(&api, &name).await?;
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                if established {
                    Ok(())
                } else {
                    missing("not Established")
                }
            },
        )
        .await;
    }
}

async fn member_nodes(client: &Client, env: &Env) -> Vec<String> {
    let api: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let listed = bounded("list nodes", api.list(&ListParams::default())).await;
    let mut all: Vec<String> = listed.items.iter().map(ResourceExt::name_any).collect();
    all.sort();
    let nodes = match &env.nodes {
        Some(nodes) => nodes.clone(),
        None => all.iter().take(3).cloned().collect(),
    };
    assert!(!nodes.is_empty(), "the cluster has no nodes");
    for node in &nodes {
        assert!(
            all.contains(node),
            "FAILOVER_E2E_NODES names {node}, which is no Node of the cluster"
        );
    }
    nodes
}

/// The operator's RBAC exactly as the chart grants it, bound to a ServiceAccount in
/// the test namespace, and kubeconfigs that act as that ServiceAccount and as the
/// agents'. The API server must refuse the operator what the chart does not grant.
async fn operator_rbac(run: &mut Run) {
    step("operator RBAC from the chart (charts/failover-operator/templates)");
    let ns = run.namespace.clone();
    let subject = json!([{"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": ns}]);
    let name = run.cluster_rbac.clone();
    let election = "failover-operator-leader-election";
    let rbac = "rbac.authorization.k8s.io";
    apply(
        &Api::<ServiceAccount>::namespaced(run.client.clone(), &ns),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": OPERATOR_SA}}),
    )
    .await;
    apply(
        &Api::<ClusterRole>::all(run.client.clone()),
        json!({
            "apiVersion": format!("{rbac}/v1"), "kind": "ClusterRole", "metadata": {"name": name},
            "rules": chart_rules("clusterrole.yaml", "ClusterRole"),
        }),
    )
    .await;
    apply(
        &Api::<ClusterRoleBinding>::all(run.client.clone()),
        json!({
            "apiVersion": format!("{rbac}/v1"), "kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": name},
            "subjects": subject,
        }),
    )
    .await;
    apply(
        &Api::<Role>::namespaced(run.client.clone(), &ns),
        json!({
            "apiVersion": format!("{rbac}/v1"), "kind": "Role", "metadata": {"name": election},
            "rules": chart_rules("leader-election-role.yaml", "Role"),
        }),
    )
    .await;
    apply(
        &Api::<RoleBinding>::namespaced(run.client.clone(), &ns),
        json!({
            "apiVersion": format!("{rbac}/v1"), "kind": "RoleBinding", "metadata": {"name": election},
            "roleRef": {"apiGroup": rbac, "kind": "Role", "name": election},
            "subjects": subject,
        }),
    )
    .await;

    std::fs::create_dir_all(&run.dir).expect("a directory for the test's kubeconfigs");
    impersonating_kubeconfig(
        &run.env.kubeconfig,
        &service_account_user(&ns, OPERATOR_SA),
        &run.operator_kubeconfig(),
    );
    impersonating_kubeconfig(
        &run.env.kubeconfig,
        &service_account_user(&ns, &names::agent(CLUSTER)),
        &run.agent_kubeconfig(),
    );
    // The impersonation works: the operator may list FailoverClusters (RBAC takes a
    // moment to see new bindings), and may not create a Namespace (no such rule).
    let operator = client(&run.operator_kubeconfig()).await;
    let clusters: Api<FailoverCluster> = Api::namespaced(operator.clone(), &ns);
    wait_for(
        "the operator's ServiceAccount may list FailoverClusters",
        WAIT_OBJECTS,
        async || {
            clusters.list(&ListParams::default()).await?;
            Ok(())
        },
    )
    .await;
    // A dry run is authorized like the real request and creates nothing, so a
    // failing check leaves no Namespace behind.
    let namespaces: Api<Namespace> = Api::all(operator);
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let refused = namespaces
        .create(
            &dry_run,
            &object(json!({"metadata": {"name": format!("{ns}-forbidden")}})),
        )
        .await;
    assert!(
        matches!(refused, Err(kube::Error::Api(ref s)) if s.code == 403),
        "the operator's identity must not create Namespaces (is it cluster-admin?): {refused:?}"
    );
}

async fn create_cluster(run: &mut Run) {
    step("a FailoverCluster and a ResourceGroup");
    let pp = PostParams::default();
    bounded(
        "create FailoverCluster",
        run.apis.clusters.create(
            &pp,
            &object(cluster_manifest(CLUSTER, &run.nodes, INTERVAL)),
        ),
    )
    .await;
    bounded(
        "create ResourceGroup",
        run.apis.groups.create(&pp, &object(json!({
            "apiVersion": "failover.dev/v1alpha1", "kind": "ResourceGroup",
            "metadata": {"name": GROUP},
            "spec": {"cluster": CLUSTER, "resources": [{"name": "vip", "virtualIP": {"address": run.env.vip}}]},
        }))),
    )
    .await;
}

/// Every object the operator renders, each waited for on its own. Returns the
/// config hash and the heartbeat key.
async fn rendered_objects(run: &mut Run) -> (String, Vec<u8>) {
    step("rendered objects (names of notes/k8s-contract.md)");
    let apis = run.apis.clone();
    let ns = run.namespace.clone();
    let members = run.nodes.len();
    let hash = wait_for(
        "ClusterConfig ConfigMap with a hash",
        WAIT_OBJECTS,
        async || apis.config_hash(CLUSTER).await,
    )
    .await;
    assert!(
        hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "hash {hash:?} is not 16 hex digits"
    );
    let cm = bounded("get ConfigMap", apis.cms.get(&names::config_map(CLUSTER))).await;
    let text = cm
        .data
        .and_then(|d| d.get(names::CONFIG_KEY).cloned())
        .expect("the ConfigMap has config.yaml");
    let (loaded, groups) = failover::api::load_documents(&text).expect("config.yaml loads");
    assert!(
        loaded.spec.members.iter().all(|m| m.address.is_some()),
        "every member has an address resolved from its Node's InternalIP: {:?}",
        loaded.spec.members
    );
    assert_eq!(groups.len(), 1, "the group is in the ClusterConfig");

    let secret_name = names::heartbeat_secret(CLUSTER);
    let key = wait_for(
        &format!("heartbeat Secret {secret_name}"),
        WAIT_OBJECTS,
        async || {
            let secret = need(&apis.secrets, &secret_name).await?;
            match secret.data.and_then(|d| d.get(names::KEY).cloned()) {
                Some(key) => Ok(key.0),
                None => missing("the Secret has no key"),
            }
        },
    )
    .await;
    assert_eq!(key.len(), 32, "the heartbeat key is 32 bytes");

    let agent = names::agent(CLUSTER);
    let ds = wait_for(
        &format!("agent DaemonSet {agent}"),
        WAIT_OBJECTS,
        async || need(&apis.daemonsets, &agent).await,
    )
    .await;
    assert_eq!(
        ds.owner_references().first().map(|o| o.name.as_str()),
        Some(CLUSTER),
        "the DaemonSet is owned by the cluster"
    );
    if run.env.agents == Agents::Pods {
        // The scheduler's view: exactly one agent pod per member (DaemonSet affinity).
        wait_for(
            "one agent pod scheduled per member",
            WAIT_OBJECTS,
            async || {
                let ds = need(&apis.daemonsets, &agent).await?;
                let scheduled = ds.status.map(|s| s.desired_number_scheduled).unwrap_or(0);
                if usize::try_from(scheduled).ok() == Some(members) {
                    Ok(())
                } else {
                    missing(format!("desiredNumberScheduled {scheduled} of {members}"))
                }
            },
        )
        .await;
    }
    let sa: Api<ServiceAccount> = Api::namespaced(run.client.clone(), &ns);
    let role: Api<Role> = Api::namespaced(run.client.clone(), &ns);
    let binding: Api<RoleBinding> = Api::namespaced(run.client.clone(), &ns);
    wait_for(
        &format!("agent ServiceAccount, Role and RoleBinding {agent}"),
        WAIT_OBJECTS,
        async || {
            need(&sa, &agent).await?;
            need(&role, &agent).await?;
            need(&binding, &agent).await?;
            Ok(())
        },
    )
    .await;
    let group_lease = names::group_lease(CLUSTER, GROUP);
    let lease = wait_for(
        &format!("group Lease {group_lease}"),
        WAIT_OBJECTS,
        async || need(&apis.leases, &group_lease).await,
    )
    .await;
    assert_eq!(
        lease.labels().get(names::CLUSTER_LABEL).map(String::as_str),
        Some(CLUSTER),
        "the group Lease carries the cluster label"
    );
    if members == 2 {
        let witness = names::witness_lease(CLUSTER);
        wait_for(
            &format!("witness Lease {witness}"),
            WAIT_OBJECTS,
            async || need(&apis.leases, &witness).await,
        )
        .await;
    }
    wait_for(
        "leader Lease held by e2e-operator-a",
        WAIT_OBJECTS,
        async || {
            let lease = need(&apis.leases, leader::LEASE_NAME).await?;
            match lease_holder(&lease) {
                Some(h) if h == "e2e-operator-a" => Ok(()),
                other => missing(format!("holder {other:?}")),
            }
        },
    )
    .await;
    wait_for(
        "status with the config hash and ConfigValid=True",
        WAIT_OBJECTS,
        async || {
            let c = need(&apis.clusters, CLUSTER).await?;
            let valid = cluster_condition(&c, cond::CONFIG_VALID);
            let shown = c.status.and_then(|s| s.config_hash);
            match valid {
                Some((s, _, _))
                    if s == cond::STATUS_TRUE && shown.as_deref() == Some(hash.as_str()) =>
                {
                    Ok(())
                }
                _ => missing(format!("configHash {shown:?}, ConfigValid {valid:?}")),
            }
        },
    )
    .await;
    (hash, key)
}

/// Starts the local agents on the agents' Role (pods use it already through the
/// DaemonSet's ServiceAccount) and checks what that Role refuses.
async fn agents_on_their_role(run: &mut Run) {
    step("agents on their Role");
    for node in run.nodes.clone() {
        run.spawn_agent(&node);
    }
    let agent = client(&run.agent_kubeconfig()).await;
    let cms: Api<ConfigMap> = Api::namespaced(agent.clone(), &run.namespace);
    let config = names::config_map(CLUSTER);
    wait_for(
        "the agents' ServiceAccount may read the ClusterConfig",
        WAIT_OBJECTS,
        async || need(&cms, &config).await.map(drop),
    )
    .await;
    let clusters: Api<FailoverCluster> = Api::namespaced(agent, &run.namespace);
    let refused = clusters.list(&ListParams::default()).await;
    assert!(
        matches!(refused, Err(kube::Error::Api(ref s)) if s.code == 403),
        "the agents' Role must not read FailoverClusters: {refused:?}"
    );
}

/// Every member Online on `hash` and the group placed.
async fn synchronized_and_placed(run: &mut Run, hash: &str) {
    step("every member synchronized, the group placed");
    let apis = run.apis.clone();
    let members = run.nodes.len();
    wait_for(
        &format!("every member of {CLUSTER} Online on {hash}"),
        WAIT_AGENTS,
        async || apis.synchronized(hash, members).await,
    )
    .await;
    let owner = wait_for(&format!("an owner of {GROUP}"), WAIT_AGENTS, async || {
        apis.placed(members).await
    })
    .await;
    println!("  {GROUP} runs on {owner}");
    let holder = run.env.netns(&owner);
    wait_vip_held_by(run, holder.as_slice(), &format!("{owner}'s namespace only")).await;
}

/// 20 config changes, each timed from the apply to every agent reporting the new
/// hash in its node Lease and to status showing every member synchronized.
async fn propagation(run: &mut Run, hash: &str) -> String {
    step("propagation: apply → all members synchronized, 20 changes");
    let apis = run.apis.clone();
    let nodes = run.nodes.clone();
    let mut previous = hash.to_owned();
    let (mut agents_ms, mut status_ms) = (Vec::new(), Vec::new());
    for change in 0..CHANGES {
        let interval = format!("{}ms", 150 + 5 * change);
        let t0 = Instant::now();
        bounded(
            "change the heartbeat interval",
            apis.clusters.patch(
                CLUSTER,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"heartbeat": {"interval": interval}}})),
            ),
        )
        .await;
        let mut rendered: Option<(f64, String)> = None;
        let mut agents: Option<f64> = None;
        let old = previous.clone();
        let (new_hash, rendered_ms, all_ms, shown_ms) = wait_every(
            &format!("change {change} (interval {interval}) on every member"),
            WAIT_FAILOVER,
            SAMPLE,
            async || {
                if rendered.is_none() {
                    let current = apis.config_hash(CLUSTER).await?;
                    if current == old {
                        return missing("the ConfigMap still has the old hash");
                    }
                    rendered = Some((ms(t0.elapsed()), current));
                }
                let Some((rendered_ms, new)) = rendered.clone() else {
                    return missing("no new hash");
                };
                if agents.is_none() {
                    let snapshot = apis.snapshot(&nodes, t0).await?;
                    if snapshot.running(&new) == nodes.len() {
                        agents = Some(snapshot.at_ms);
                    }
                }
                apis.synchronized(&new, nodes.len()).await?;
                let shown = ms(t0.elapsed());
                let Some(all) = agents else {
                    return missing("not every node Lease shows the new hash yet");
                };
                Ok((new, rendered_ms, all, shown))
            },
        )
        .await;
        report(
            "config_change",
            json!({
                "change": change, "interval": interval, "rendered_ms": rendered_ms,
                "agents_ms": all_ms, "status_ms": shown_ms, "resolution_ms": ms(SAMPLE),
            }),
        );
        agents_ms.push(all_ms);
        status_ms.push(shown_ms);
        previous = new_hash;
    }
    let p = |v: &[f64], q| percentile(v, q).expect("measured changes");
    let p99 = p(&status_ms, 0.99);
    report(
        "propagation",
        json!({
            "changes": CHANGES,
            "agents_p50_ms": p(&agents_ms, 0.5), "agents_p99_ms": p(&agents_ms, 0.99),
            "status_p50_ms": p(&status_ms, 0.5), "status_p99_ms": p99,
            "target_p99_ms": PROPAGATION_TARGET_MS, "met": p99 <= PROPAGATION_TARGET_MS,
        }),
    );
    if p99 > PROPAGATION_TARGET_MS {
        println!(
            "  TARGET MISSED: apply → status synchronized p99 {p99} ms > {PROPAGATION_TARGET_MS} ms"
        );
    }
    previous
}

/// How an agent was killed: the kind for the measurement line and, for a pod, the
/// uid of the pod that was deleted.
struct Killed {
    kind: &'static str,
    pod: Option<String>,
}

/// The agent pods of the cluster on `node`.
fn agent_pods_on(node: &str) -> ListParams {
    let selector = format!(
        "{}={},{}={CLUSTER}",
        names::APP_LABEL,
        names::APP_AGENT,
        names::CLUSTER_LABEL
    );
    ListParams::default()
        .labels(&selector)
        .fields(&format!("spec.nodeName={node}"))
}

/// Kills the agent of `node`: SIGKILL of the local process, or (pods) deleting its
/// pod with grace period 0, after which the kubelet stops the container.
async fn kill_agent(run: &mut Run, node: &str) -> Killed {
    match run.env.agents {
        Agents::Local { .. } => {
            run.agents
                .get_mut(node)
                .unwrap_or_else(|| panic!("no local agent of {node}"))
                .kill();
            Killed {
                kind: "sigkill-local-process",
                pod: None,
            }
        }
        Agents::Pods => {
            let pods = bounded("list agent pods", run.apis.pods.list(&agent_pods_on(node))).await;
            let pod = pods
                .items
                .first()
                .unwrap_or_else(|| panic!("no agent pod of {CLUSTER} on {node}"));
            let (uid, pod) = (pod.uid(), pod.name_any());
            let grace = DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            };
            bounded(
                &format!("delete pod {pod}"),
                run.apis.pods.delete(&pod, &grace),
            )
            .await;
            Killed {
                kind: "pod-delete-grace-0",
                pod: uid,
            }
        }
    }
}

/// Brings a killed agent back (local: a new process; pods: the DaemonSet makes a
/// new pod) and waits for every member to be Online on `hash` again, the group
/// placed and, with namespaces, the VIP in the owner's namespace only (the dead
/// node's address lifetime has run out).
async fn revive(run: &mut Run, node: &str, killed: &Killed, hash: &str) {
    run.spawn_agent(node);
    let apis = run.apis.clone();
    let members = run.nodes.len();
    if let Some(old) = &killed.pod {
        wait_for(
            &format!("a new agent pod on {node} running and ready"),
            WAIT_AGENTS,
            async || {
                let pods = apis.pods.list(&agent_pods_on(node)).await?;
                let ready = pods.items.iter().any(|p| {
                    p.uid().as_ref() != Some(old)
                        && p.status.as_ref().is_some_and(|s| {
                            s.phase.as_deref() == Some("Running")
                                && s.container_statuses
                                    .as_ref()
                                    .is_some_and(|c| c.iter().all(|c| c.ready))
                        })
                });
                if ready {
                    Ok(())
                } else {
                    missing(format!(
                        "{} agent pods on {node}, none new and ready",
                        pods.items.len()
                    ))
                }
            },
        )
        .await;
    }
    wait_for(
        &format!("{node} back and every member Online on {hash}"),
        WAIT_AGENTS,
        async || apis.synchronized(hash, members).await,
    )
    .await;
    let owner = wait_for(&format!("an owner of {GROUP}"), WAIT_FAILOVER, async || {
        apis.placed(members).await
    })
    .await;
    let holder = run.env.netns(&owner);
    wait_vip_held_by(run, holder.as_slice(), &format!("{owner}'s namespace only")).await;
}

/// The owner's agent is killed; a successor takes over. Measures kill → successor
/// reports the group, → group Lease, → status.owner (and → VIP, with namespaces).
async fn owner_kill(run: &mut Run, hash: &str) {
    step("owner kill: kill → status.owner");
    if run.nodes.len() < 2 {
        println!("  SKIPPED owner kill: one member has no successor");
        return;
    }
    let apis = run.apis.clone();
    let nodes = run.nodes.clone();
    let before = apis
        .snapshot(&nodes, Instant::now())
        .await
        .unwrap_or_else(|e| panic!("snapshot before the kill: {e:?}"));
    let owner = before
        .status_owner
        .clone()
        .expect("the group has an owner before the kill");
    let epoch = before.status_epoch.unwrap_or(0);
    let sampler = vip_sampler(&run.env, &nodes);
    let t0 = Instant::now();
    let kill_ms = sampler.as_ref().map(VipSampler::now_ms);
    let killed = kill_agent(run, &owner).await;
    let (mut report_at, mut lease_at) = (None, None);
    let (successor, report_ms, status_at, after) = wait_every(
        &format!("a successor of {owner} in its node Lease and in status.owner"),
        WAIT_FAILOVER,
        SAMPLE,
        async || {
            let s = apis.snapshot(&nodes, t0).await?;
            if report_at.is_none() && s.holders().iter().any(|h| *h != owner) {
                report_at = Some(s.at_ms);
            }
            if lease_at.is_none()
                && s.group_lease
                    .as_ref()
                    .and_then(|(_, h, _)| h.clone())
                    .is_some_and(|h| h != owner)
            {
                lease_at = Some(s.at_ms);
            }
            match (&s.status_owner, report_at) {
                (Some(new), Some(report)) if *new != owner => Ok((new.clone(), report, s.at_ms, s)),
                (other, _) => missing(format!(
                    "status.owner {other:?}; members reporting {GROUP} in {}: {:?}",
                    names::OWNED,
                    s.holders()
                )),
            }
        },
    )
    .await;
    let vip = sampler.map(|sampler| {
        // Let the dead node's address lifetime run out, so the overlap is measured whole.
        std::thread::sleep(Duration::from_millis(KILLED_OVERLAP_BOUND_MS as u64 + 500));
        let seen = sampler.stop();
        let index = nodes.iter().position(|n| *n == successor).expect("successor is a member");
        let from = kill_ms.unwrap_or(0.0);
        assert!(
            seen.dual_holder_ms <= KILLED_OVERLAP_BOUND_MS,
            "two namespaces held the VIP for {} ms (bound {KILLED_OVERLAP_BOUND_MS} ms, the dead node's address lifetime): {seen:?}",
            seen.dual_holder_ms
        );
        let taken = vip_taken_at(&seen, index, from)
            .map(|at| ((at - from) * 10.0).round() / 10.0)
            .unwrap_or_else(|| panic!("status names {successor}, but its namespace never held the VIP: {seen:?}"));
        (taken, seen.dual_holder_ms)
    });
    let lag = ((status_at - report_ms) * 10.0).round() / 10.0;
    report(
        "owner_kill",
        json!({
            "kill": killed.kind, "from": owner, "to": successor, "dead_after_ms": DEAD_AFTER_MS,
            "report_ms": report_ms, "lease_ms": lease_at, "status_ms": status_at,
            "vip_ms": vip.map(|v| v.0), "dual_holder_ms": vip.map(|v| v.1),
            "status_after_report_ms": lag,
            "target_status_ms": STATUS_TARGET_MS, "met": lag <= STATUS_TARGET_MS,
            "resolution_ms": ms(SAMPLE),
        }),
    );
    if lag > STATUS_TARGET_MS {
        println!("  TARGET MISSED: status.owner {lag} ms after the successor's report");
    }
    let new_epoch = after.status_epoch.unwrap_or(0);
    assert!(
        new_epoch > epoch,
        "the epoch rises on an ownership change: {epoch} → {new_epoch}"
    );
    revive(run, &owner, &killed, hash).await;
}

/// Polls snapshots until `stop` is set; returns them in order.
fn start_sampler(
    apis: Apis,
    nodes: Vec<String>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Result<Snapshot, String>>> {
    tokio::spawn(async move {
        let t0 = Instant::now();
        let mut seen = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let one = match tokio::time::timeout(REQUEST_LIMIT, apis.snapshot(&nodes, t0)).await {
                Ok(Ok(s)) => Ok(s),
                Ok(Err(Wait::Missing(e) | Wait::Fatal(e))) => {
                    Err(format!("{:.1} ms: {e}", ms(t0.elapsed())))
                }
                Err(_) => Err(format!("{:.1} ms: no answer", ms(t0.elapsed()))),
            };
            seen.push(one);
            tokio::time::sleep(SAMPLE).await;
        }
        seen
    })
}

/// Waits until `identity` holds the leader Lease, then samples for [`RESTART_SETTLE`].
async fn new_leader(run: &mut Run, identity: &str) {
    let leases = run.apis.leases.clone();
    wait_for(
        &format!("{identity} holding the leader Lease"),
        WAIT_FAILOVER,
        async || {
            let lease = need(&leases, leader::LEASE_NAME).await?;
            match lease_holder(&lease) {
                Some(h) if h == identity => Ok(()),
                other => missing(format!("holder {other:?}")),
            }
        },
    )
    .await;
    println!(
        "  sampling {} s of {identity}'s first reconciles",
        RESTART_SETTLE.as_secs()
    );
    tokio::time::sleep(RESTART_SETTLE).await;
}

/// The leader is killed (SIGKILL) and a standby takes over; then the new leader is
/// stopped (SIGTERM) and another standby takes over. Meanwhile nothing may move:
/// the group Lease is never deleted and its epoch never goes back, the ClusterConfig
/// keeps its hash, a member reports the group in every sample, and (with
/// namespaces) the VIP has a holder throughout.
async fn operator_restart(run: &mut Run, hash: &str) {
    step("operator restart while sampling the VIP holder and the group Lease");
    let nodes = run.nodes.clone();
    let sampler = vip_sampler(&run.env, &nodes);
    let stop = Arc::new(AtomicBool::new(false));
    let samples = start_sampler(run.apis.clone(), nodes.clone(), stop.clone());
    run.spawn_operator("e2e-operator-b");
    println!("  SIGKILL e2e-operator-a (the leader)");
    run.operator("e2e-operator-a").kill();
    new_leader(run, "e2e-operator-b").await;
    run.spawn_operator("e2e-operator-c");
    println!("  SIGTERM e2e-operator-b (the leader)");
    let status = run
        .operator("e2e-operator-b")
        .terminate(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "a leader exits 0 on SIGTERM: {status:?}"
    );
    new_leader(run, "e2e-operator-c").await;
    stop.store(true, Ordering::Relaxed);
    let samples = samples.await.expect("the sampler task ends");
    let vip = sampler.map(VipSampler::stop);

    let errors: Vec<&String> = samples.iter().filter_map(|s| s.as_ref().err()).collect();
    let samples: Vec<&Snapshot> = samples.iter().filter_map(|s| s.as_ref().ok()).collect();
    assert!(!samples.is_empty(), "no snapshot succeeded: {errors:?}");
    let first = samples[0];
    let (uid, holder, mut epoch) = first
        .group_lease
        .clone()
        .expect("the group Lease exists when the restart starts");
    let owner = first.status_owner.clone();
    // An ownerless stretch lasts from its first to its last ownerless sample, plus
    // one sampling period.
    let (mut gap_start, mut longest_gap) = (None::<f64>, 0.0_f64);
    let mut problems = Vec::new();
    for s in &samples {
        match &s.group_lease {
            None => problems.push(format!("{} ms: the group Lease is gone", s.at_ms)),
            Some((u, h, e)) => {
                if *u != uid {
                    problems.push(format!("{} ms: the group Lease was re-created", s.at_ms));
                }
                if *e < epoch {
                    problems.push(format!("{} ms: epoch went back {epoch:?} → {e:?}", s.at_ms));
                }
                epoch = epoch.max(*e);
                if *h != holder {
                    problems.push(format!(
                        "{} ms: group Lease holder {holder:?} → {h:?}",
                        s.at_ms
                    ));
                }
            }
        }
        if s.config_hash.as_deref() != Some(hash) {
            problems.push(format!(
                "{} ms: ClusterConfig hash {:?}, not {hash}",
                s.at_ms, s.config_hash
            ));
        }
        if s.status_owner != owner {
            problems.push(format!(
                "{} ms: status.owner {owner:?} → {:?}",
                s.at_ms, s.status_owner
            ));
        }
        if s.holders().is_empty() {
            let start = *gap_start.get_or_insert(s.at_ms);
            longest_gap = longest_gap.max(s.at_ms - start + ms(SAMPLE));
        } else {
            gap_start = None;
        }
    }
    let vip_gap = vip.as_ref().map(|v| vip_gap_ms(v, 0.0));
    report(
        "operator_restart",
        json!({
            "restarts": ["sigkill-leader", "sigterm-leader"], "samples": samples.len(),
            "failed_samples": errors.len(), "resolution_ms": ms(SAMPLE),
            "ownerless_ms": longest_gap, "vip_gap_ms": vip_gap,
            "dual_holder_ms": vip.as_ref().map(|v| v.dual_holder_ms),
            "bound_ms": RESTART_GAP_BOUND_MS,
        }),
    );
    if !errors.is_empty() {
        println!("  samples that failed (API errors, not counted): {errors:?}");
    }
    assert!(
        longest_gap <= RESTART_GAP_BOUND_MS,
        "no member reported {GROUP} for {longest_gap} ms while the operator restarted (bound {RESTART_GAP_BOUND_MS} ms)"
    );
    problems.truncate(20);
    assert!(
        problems.is_empty(),
        "the operator restart moved things (first 20): {problems:#?}"
    );
    if let Some(v) = vip {
        assert_eq!(
            v.dual_holder_ms, 0.0,
            "two namespaces held the VIP at once: {v:?}"
        );
        let gap = vip_gap.unwrap_or(0.0);
        assert!(
            gap <= RESTART_GAP_BOUND_MS,
            "the VIP had no holder for {gap} ms: {v:?}"
        );
    }
}

/// Runs an outage command of the environment (`sh -c`), bounded.
fn run_command(what: &str, command: &str) {
    println!("  running {what}: {command}");
    let mut child = Command::new("sh")
        .args(["-c", command])
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "{what} ({command}) failed: {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} ({command}) did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn api_up(client: &Client) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(2), client.apiserver_version()).await,
        Ok(Ok(_))
    )
}

/// The API server stops. Local agents: the owner's agent is killed, and a
/// successor takes over without the API (its `since` lies between the kill and the
/// API's return). Pods: nothing can be killed without the API; the owner keeps
/// serving (same owner, same epoch and `since` afterwards).
async fn api_outage(run: &mut Run, hash: &str) {
    step("API server outage");
    let (Some(stop), Some(start)) = (run.env.api_stop.clone(), run.env.api_start.clone()) else {
        println!(
            "  SKIPPED API outage: set FAILOVER_E2E_API_STOP and FAILOVER_E2E_API_START to commands that stop and start the API server"
        );
        return;
    };
    let apis = run.apis.clone();
    let nodes = run.nodes.clone();
    let before = apis
        .snapshot(&nodes, Instant::now())
        .await
        .unwrap_or_else(|e| panic!("snapshot before the outage: {e:?}"));
    let owner = before
        .status_owner
        .clone()
        .expect("an owner before the outage");
    let owner_since = before
        .nodes
        .get(&owner)
        .and_then(|l| owned(l).get(GROUP).cloned());
    let owner_version = before.nodes.get(&owner).and_then(|l| l.resource_version());
    let epoch = before.group_lease.as_ref().and_then(|(_, _, e)| *e);
    let kill = matches!(run.env.agents, Agents::Local { .. }) && nodes.len() > 2;
    let sampler = vip_sampler(&run.env, &nodes);

    run_command("FAILOVER_E2E_API_STOP", &stop);
    let client = run.client.clone();
    wait_for(
        "the API server to stop answering",
        WAIT_FAILOVER,
        async || {
            if api_up(&client).await {
                missing("it still answers")
            } else {
                Ok(())
            }
        },
    )
    .await;
    let mut killed = None;
    if kill {
        let kill_ms = sampler.as_ref().map(VipSampler::now_ms);
        killed = Some((jiff::Timestamp::now(), kill_ms));
        println!("  SIGKILL the agent of {owner} while the API is down");
        kill_agent(run, &owner).await;
        tokio::time::sleep(Duration::from_millis(
            DEAD_AFTER_MS + OUTAGE_TAKEOVER_SLACK_MS,
        ))
        .await;
    } else {
        println!(
            "  holding the outage {} s; the owner must keep serving",
            OUTAGE_HOLD.as_secs()
        );
        tokio::time::sleep(OUTAGE_HOLD).await;
    }
    let down_until = jiff::Timestamp::now();
    run_command("FAILOVER_E2E_API_START", &start);
    wait_for("the API server to answer again", WAIT_AGENTS, async || {
        if api_up(&client).await {
            Ok(())
        } else {
            missing("no answer")
        }
    })
    .await;
    let vip = sampler.map(VipSampler::stop);
    if let Some(v) = &vip {
        assert!(
            v.dual_holder_ms <= KILLED_OVERLAP_BOUND_MS,
            "two namespaces held the VIP for {} ms during the outage (bound {KILLED_OVERLAP_BOUND_MS} ms): {v:?}",
            v.dual_holder_ms
        );
    }
    // The operator exits when it cannot renew its leader Lease: start one if none runs.
    if run.operators.iter_mut().all(|(_, p)| p.exited()) {
        println!(
            "  every operator exited during the outage (leader Lease lost): starting e2e-operator-d"
        );
        run.spawn_operator("e2e-operator-d");
    }
    match killed {
        Some((killed_at, kill_ms)) => {
            let (successor, since) = wait_for(
                "the successor's report after the outage",
                WAIT_FAILOVER,
                async || {
                    let s = apis.snapshot(&nodes, Instant::now()).await?;
                    let Some(successor) = s.holders().into_iter().find(|h| *h != owner) else {
                        return missing(format!("members reporting {GROUP}: {:?}", s.holders()));
                    };
                    let since = s
                        .nodes
                        .get(&successor)
                        .and_then(|l| owned(l).get(GROUP).and_then(|o| o.since.clone()));
                    match since.map(|t| t.parse::<jiff::Timestamp>()) {
                        Some(Ok(t)) => Ok((successor, t)),
                        Some(Err(e)) => Err(Wait::Fatal(format!(
                            "{successor}: since is no RFC 3339 time: {e}"
                        ))),
                        None => missing(format!("{successor} reports no since")),
                    }
                },
            )
            .await;
            let took = since.duration_since(killed_at);
            let took_ms = took.as_secs_f64() * 1000.0;
            let vip_ms = vip.as_ref().and_then(|v| {
                let index = nodes.iter().position(|n| *n == successor)?;
                let from = kill_ms?;
                vip_taken_at(v, index, from).map(|at| ((at - from) * 10.0).round() / 10.0)
            });
            report(
                "api_outage_takeover",
                json!({
                    "from": owner, "to": successor, "takeover_ms": (took_ms * 10.0).round() / 10.0,
                    "vip_ms": vip_ms, "bound_ms": DEAD_AFTER_MS + OUTAGE_TAKEOVER_SLACK_MS,
                }),
            );
            // `since` may be truncated to whole seconds: up to 1 s before the kill.
            assert!(
                since < down_until
                    && took_ms > -1000.0
                    && took_ms <= (DEAD_AFTER_MS + OUTAGE_TAKEOVER_SLACK_MS) as f64,
                "{successor} took {GROUP} over at {since}, {took_ms:.0} ms after the kill at {killed_at}; the API was down until {down_until}: the takeover must not wait for the API"
            );
            if vip.is_some() {
                let bound = (DEAD_AFTER_MS + OUTAGE_TAKEOVER_SLACK_MS) as f64;
                assert!(
                    vip_ms.is_some_and(|at| at <= bound),
                    "{successor}'s namespace must hold the VIP within {bound} ms of the kill, API or not: {vip_ms:?}"
                );
            }
            let leases = apis.leases.clone();
            let group_lease = names::group_lease(CLUSTER, GROUP);
            wait_for(
                "the group Lease recording the successor at a higher epoch",
                WAIT_FAILOVER,
                async || {
                    let lease = need(&leases, &group_lease).await?;
                    let (holder, now) = (lease_holder(&lease), lease_epoch(&lease));
                    if holder.as_deref() == Some(successor.as_str()) && now > epoch {
                        Ok(())
                    } else {
                        missing(format!("holder {holder:?} epoch {now:?} (was {epoch:?})"))
                    }
                },
            )
            .await;
            let killed = Killed {
                kind: "sigkill-local-process",
                pod: None,
            };
            revive(run, &owner, &killed, hash).await;
        }
        None => {
            let after = wait_for(
                "the owner's first node Lease write after the outage",
                WAIT_FAILOVER,
                async || {
                    let s = apis.snapshot(&nodes, Instant::now()).await?;
                    let version = s.nodes.get(&owner).and_then(|l| l.resource_version());
                    if version.is_some() && version != owner_version {
                        Ok(s)
                    } else {
                        missing(format!("{owner}'s node Lease unchanged since the outage"))
                    }
                },
            )
            .await;
            let since = after
                .nodes
                .get(&owner)
                .and_then(|l| owned(l).get(GROUP).cloned());
            report(
                "api_outage_hold",
                json!({
                    "owner": owner, "held_through": since.is_some() && since == owner_since,
                    "vip_gap_ms": vip.as_ref().map(|v| vip_gap_ms(v, 0.0)),
                }),
            );
            assert_eq!(
                after.status_owner.as_ref(),
                Some(&owner),
                "the owner keeps the group through the outage"
            );
            assert_eq!(
                since, owner_since,
                "the owner's report of {GROUP} is unchanged (no re-take)"
            );
            assert_eq!(
                after.group_lease.as_ref().and_then(|(_, _, e)| *e),
                epoch,
                "the epoch is unchanged"
            );
            let apis = run.apis.clone();
            let members = run.nodes.len();
            wait_for(
                &format!("every member Online on {hash}"),
                WAIT_AGENTS,
                async || apis.synchronized(hash, members).await,
            )
            .await;
        }
    }
}

/// What the schema and CEL refuse (422), and what only the operator sees.
async fn rejections(run: &mut Run, hash: &str) {
    step("rejections");
    let apis = run.apis.clone();
    let pp = PostParams::default();
    let mut bad = cluster_manifest("bad-interval", &run.nodes, "1ms");
    let err = apis
        .clusters
        .create(&pp, &object(bad.clone()))
        .await
        .expect_err("the API server refuses an interval below 5ms");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422),
        "{err:?}"
    );
    bad["metadata"]["name"] = json!("bad-witness");
    bad["spec"]["heartbeat"]["interval"] = json!(INTERVAL);
    bad["spec"]["members"] = json!([{"node": "x"}, {"node": "y"}, {"node": "z"}]);
    bad["spec"]["quorum"] = json!("witness");
    let err = apis
        .clusters
        .create(&pp, &object(bad))
        .await
        .expect_err("the API server refuses witness quorum with three members");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422),
        "{err:?}"
    );

    // An unknown node: ConfigValid=False naming the field, last valid config kept.
    let mut members: Vec<serde_json::Value> =
        run.nodes.iter().map(|n| json!({"node": n})).collect();
    members.push(json!({"node": "no-such-node-e2e"}));
    let unknown = members.len() - 1;
    bounded(
        "add an unknown member",
        apis.clusters.patch(
            CLUSTER,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"members": members, "quorum": "majority"}})),
        ),
    )
    .await;
    let message = wait_for("ConfigValid=False", WAIT_OBJECTS, async || {
        let c = need(&apis.clusters, CLUSTER).await?;
        match cluster_condition(&c, cond::CONFIG_VALID) {
            Some((s, _, m)) if s == cond::STATUS_FALSE => Ok(m),
            other => missing(format!("ConfigValid {other:?}")),
        }
    })
    .await;
    assert!(
        message.contains(&format!("spec.members[{unknown}].node")),
        "{message}"
    );
    assert_eq!(
        apis.config_hash(CLUSTER).await.ok().as_deref(),
        Some(hash),
        "the last valid ClusterConfig is kept"
    );

    // A second cluster on the same nodes and heartbeat port.
    bounded(
        "create the second cluster",
        apis.clusters.create(
            &pp,
            &object(cluster_manifest(SECOND_CLUSTER, &run.nodes, INTERVAL)),
        ),
    )
    .await;
    let reason = wait_for(
        "HeartbeatPortConflict on the second cluster",
        WAIT_OBJECTS,
        async || {
            let c = need(&apis.clusters, SECOND_CLUSTER).await?;
            match cluster_condition(&c, cond::CONFIG_VALID) {
                Some((s, r, _)) if s == cond::STATUS_FALSE => Ok(r),
                other => missing(format!("ConfigValid {other:?}")),
            }
        },
    )
    .await;
    assert_eq!(reason, cond::reason::HEARTBEAT_PORT_CONFLICT);
    assert!(
        bounded(
            "get ConfigMap",
            apis.cms.get_opt(&names::config_map(SECOND_CLUSTER))
        )
        .await
        .is_none(),
        "no ClusterConfig for the conflicting cluster"
    );
    bounded(
        "delete the second cluster",
        apis.clusters
            .delete(SECOND_CLUSTER, &DeleteParams::default()),
    )
    .await;
}

/// Deleting the cluster removes everything labelled with it (node, group and
/// witness Leases included) and takes the VIP offline; nothing comes back.
async fn deletion(run: &mut Run) {
    step("deletion");
    let apis = run.apis.clone();
    let ns = run.namespace.clone();
    let sa: Api<ServiceAccount> = Api::namespaced(run.client.clone(), &ns);
    let role: Api<Role> = Api::namespaced(run.client.clone(), &ns);
    let binding: Api<RoleBinding> = Api::namespaced(run.client.clone(), &ns);
    bounded(
        "delete the cluster",
        apis.clusters.delete(CLUSTER, &DeleteParams::foreground()),
    )
    .await;
    let selector = format!("{}={CLUSTER}", names::CLUSTER_LABEL);
    let mut lease_names = vec![
        names::group_lease(CLUSTER, GROUP),
        names::witness_lease(CLUSTER),
    ];
    lease_names.extend(run.nodes.iter().map(|n| names::node_lease(CLUSTER, n)));
    // Everything labelled with the cluster, and its Leases by name (in case one lost
    // its label).
    let gone = async || -> Result<(), Wait> {
        let lp = ListParams::default().labels(&selector);
        let mut left = labelled(&apis.leases, &lp).await?;
        left.extend(labelled(&apis.cms, &lp).await?);
        left.extend(labelled(&apis.secrets, &lp).await?);
        left.extend(labelled(&apis.daemonsets, &lp).await?);
        left.extend(labelled(&sa, &lp).await?);
        left.extend(labelled(&role, &lp).await?);
        left.extend(labelled(&binding, &lp).await?);
        for name in &lease_names {
            if apis.leases.get_opt(name).await?.is_some()
                && !left.contains(&format!("Lease {name}"))
            {
                left.push(format!("Lease {name} (without the label)"));
            }
        }
        if left.is_empty() {
            Ok(())
        } else {
            missing(format!("still there: {}", left.join(", ")))
        }
    };
    wait_for(
        &format!("every object labelled {selector} gone"),
        WAIT_FAILOVER,
        gone,
    )
    .await;
    wait_vip_held_by(run, &[], "no member (the agents' configuration is gone)").await;
    // Nothing re-creates them: the agents that still run write no Lease of a
    // cluster that is gone.
    tokio::time::sleep(Duration::from_millis(3 * DEAD_AFTER_MS)).await;
    if let Err(Wait::Missing(left) | Wait::Fatal(left)) = gone().await {
        panic!("objects of the deleted cluster came back: {left}");
    }
    let _ = bounded(
        "delete the group",
        apis.groups.delete(GROUP, &DeleteParams::default()),
    )
    .await;
}

/// "Kind name" of every object of `api` that `lp` selects.
async fn labelled<K>(api: &Api<K>, lp: &ListParams) -> Result<Vec<String>, Wait>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    Ok(api
        .list(lp)
        .await?
        .items
        .iter()
        .map(|o| format!("{kind} {}", o.name_any()))
        .collect())
}

/// SIGTERM stops the leader with exit status 0 and releases the leader Lease.
async fn operator_shutdown(run: &mut Run) {
    step("operator shutdown");
    let leases = run.apis.leases.clone();
    let leader_lease = bounded("get the leader Lease", leases.get(leader::LEASE_NAME)).await;
    let leader = lease_holder(&leader_lease).expect("an operator leads");
    // Standbys first, so the leader's release is not taken over at once.
    let identities: Vec<String> = run.operators.iter().map(|(id, _)| id.clone()).collect();
    for id in identities.iter().filter(|id| **id != leader) {
        run.operator(id).terminate(Duration::from_secs(30));
    }
    let status = run
        .operator(&leader)
        .terminate(Duration::from_secs(30))
        .expect("the operator's exit status");
    assert!(status.success(), "operator exit on SIGTERM: {status}");
    let lease = bounded("get the leader Lease", leases.get(leader::LEASE_NAME)).await;
    assert!(
        lease_holder(&lease).is_none(),
        "the leader Lease is released on SIGTERM: {lease:?}"
    );
}

// ---------------------------------------------------------------------------
// The suite's own helpers, checked without a cluster

#[test]
fn chart_rules_are_the_charts() {
    let operator = chart_rules("clusterrole.yaml", "ClusterRole");
    let leases = operator
        .iter()
        .find(|r| {
            r.resources
                .as_ref()
                .is_some_and(|r| r.contains(&"leases".to_owned()))
        })
        .expect("the chart's ClusterRole has a Lease rule");
    assert!(leases.verbs.contains(&"update".to_owned()), "{leases:?}");
    assert!(
        operator.iter().all(|r| !r.verbs.contains(&"*".to_owned())),
        "no wildcard verbs: {operator:?}"
    );
    let election = chart_rules("leader-election-role.yaml", "Role");
    assert!(
        election.iter().any(|r| r
            .resource_names
            .as_ref()
            .is_some_and(|n| n.contains(&leader::LEASE_NAME.to_owned()))),
        "{election:?}"
    );
}

#[test]
fn impersonating_kubeconfig_acts_as_the_user() {
    let dir = std::env::temp_dir().join(format!("failover-e2e-kubeconfig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let source = dir.join("admin");
    std::fs::write(
        &source,
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster: {server: 'https://127.0.0.1:6443', certificate-authority: ca.crt}\nusers:\n- name: admin\n  user: {token: secret-token}\ncontexts:\n- name: c\n  context: {cluster: k, user: admin}\n",
    )
    .expect("write kubeconfig");
    let out = dir.join("as-sa");
    impersonating_kubeconfig(&source, "system:serviceaccount:ns:sa", &out);
    let read = Kubeconfig::read_from(&out).expect("the written kubeconfig reads");
    let context = read.contexts[0].context.clone().expect("context");
    let user = context.user.expect("the context names a user");
    let auth = read
        .auth_infos
        .iter()
        .find(|a| a.name == user)
        .and_then(|a| a.auth_info.clone())
        .expect("the new user exists");
    assert_eq!(
        auth.impersonate.as_deref(),
        Some("system:serviceaccount:ns:sa")
    );
    assert!(auth.token.is_some(), "the credentials are kept");
    let ca = read.clusters[0]
        .cluster
        .as_ref()
        .and_then(|c| c.certificate_authority.clone());
    assert_eq!(
        ca,
        Some(dir.join("ca.crt").display().to_string()),
        "relative paths made absolute"
    );
    std::fs::remove_dir_all(&dir).expect("remove temp dir");
}

#[test]
fn percentiles_and_vip_gaps() {
    let values: Vec<f64> = (1..=20).map(f64::from).collect();
    assert_eq!(percentile(&values, 0.5), Some(10.0));
    assert_eq!(percentile(&values, 0.99), Some(20.0));
    assert_eq!(percentile(&[], 0.5), None);
    // n1 holds until 100, n2 from 130 (a 30 ms gap) to the end.
    let report = HolderReport {
        namespaces: vec!["n1".into(), "n2".into()],
        timelines: vec![
            vec![(0.0, true), (100.0, false)],
            vec![(0.0, false), (130.0, true)],
        ],
        end_ms: 200.0,
        dual_holder_ms: 0.0,
    };
    assert_eq!(vip_gap_ms(&report, 0.0), 30.0);
    assert_eq!(vip_taken_at(&report, 1, 50.0), Some(130.0));
    assert_eq!(vip_taken_at(&report, 0, 50.0), Some(50.0));
    assert!(!holds_at(&report, 0, 150.0));
}
