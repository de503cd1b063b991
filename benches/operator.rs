//! Operator benchmark: reconciles 1,000 FailoverClusters with 10 ResourceGroups each
//! against an in-process mock API server and reports the time and the memory.
//!
//! A plain `harness = false` binary rather than criterion: one measurement is a
//! whole fleet reconciliation (seconds, and memory that only grows once per
//! process), which criterion's many-iteration sampling neither needs nor reports.
//! Run: `cargo bench --bench operator` (options: `-- --clusters N --groups N
//! --concurrency N`). Without `--bench` (under `cargo test`) it runs 20 clusters as a
//! smoke test.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use http::{Method, Request, Response, StatusCode};
use k8s_openapi::api::core::v1::{Node, NodeAddress, NodeStatus};
use kube::Client;
use kube::api::ObjectMeta;
use kube::client::Body;
use kube::core::DeserializeGuard;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher;
use serde_json::{Value, json};

use failover::api::{FailoverCluster, ResourceGroup};
use failover::operator::metrics::Metrics;
use failover::operator::notify::{Notifier, RetryPolicy};
use failover::operator::reconcile::{GroupClusterRef, reconcile_cluster, reconcile_group};
use failover::operator::{AgentSettings, Context, Settings, Stores};

/// Answers every request the reconcilers make, as an empty API server would:
/// no Secret yet, no Leases, every write accepted and echoed.
async fn api_server(request: Request<Body>) -> Result<Response<Body>, std::convert::Infallible> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let bytes = request
        .into_body()
        .collect_bytes()
        .await
        .unwrap_or_default();
    let (status, body) = match method {
        Method::GET if path.ends_with("/leases") => (
            StatusCode::OK,
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "LeaseList", "metadata": {}, "items": []})
                .to_string()
                .into_bytes(),
        ),
        Method::GET => (
            StatusCode::NOT_FOUND,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "NotFound", "code": 404})
                .to_string()
                .into_bytes(),
        ),
        Method::POST => (StatusCode::CREATED, bytes.to_vec()),
        _ => (StatusCode::OK, bytes.to_vec()),
    };
    Ok(Response::builder()
        .status(status)
        .body(Body::from(body))
        .expect("static response parts"))
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn object<K: serde::de::DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).expect("fixture is a valid object")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary
    // without it, as a smoke test of a small fleet (the full fleet in a debug build
    // takes minutes, and its timings would mean nothing).
    let measuring = std::env::args().any(|a| a == "--bench");
    let clusters = arg("--clusters", if measuring { 1000 } else { 20 });
    let groups = arg("--groups", 10);
    let concurrency = arg("--concurrency", 16);
    let nodes = 100usize;
    let rss_start = rss_kib("VmRSS:");

    let mut cluster_writer: Writer<DeserializeGuard<FailoverCluster>> = Writer::default();
    let mut group_writer: Writer<DeserializeGuard<ResourceGroup>> = Writer::default();
    let mut group_cluster_writer: Writer<DeserializeGuard<GroupClusterRef>> = Writer::default();
    let mut node_writer: Writer<Node> = Writer::default();
    // Filled as a watcher's initial list fills them: the reconcilers wait until
    // every store is listed.
    cluster_writer.apply_watcher_event(&watcher::Event::Init);
    group_writer.apply_watcher_event(&watcher::Event::Init);
    group_cluster_writer.apply_watcher_event(&watcher::Event::Init);
    node_writer.apply_watcher_event(&watcher::Event::Init);
    for n in 0..nodes {
        node_writer.apply_watcher_event(&watcher::Event::InitApply(Node {
            metadata: ObjectMeta {
                name: Some(format!("node-{n}")),
                ..ObjectMeta::default()
            },
            status: Some(NodeStatus {
                addresses: Some(vec![NodeAddress {
                    type_: "InternalIP".into(),
                    address: format!("10.0.{}.{}", n / 250, n % 250 + 1),
                }]),
                ..NodeStatus::default()
            }),
            ..Node::default()
        }));
    }
    for c in 0..clusters {
        // Three members out of 100 nodes: clusters share nodes, so the heartbeat
        // port check has work to do; every cluster has its own port.
        let members: Vec<Value> = (0..3)
            .map(|m| json!({"node": format!("node-{}", (c + m * 7) % nodes)}))
            .collect();
        let cluster = object(json!({
            "apiVersion": "failover.dev/v1alpha1", "kind": "FailoverCluster",
            "metadata": {"name": format!("c{c}"), "namespace": format!("ns{}", c % 20), "uid": format!("uid-c{c}"), "generation": 1},
            "spec": {"members": members, "heartbeat": {"port": 10000 + c}},
        }));
        cluster_writer.apply_watcher_event(&watcher::Event::InitApply(cluster));
        for g in 0..groups {
            let n = c * groups + g;
            let group: Value = json!({
                "apiVersion": "failover.dev/v1alpha1", "kind": "ResourceGroup",
                "metadata": {"name": format!("c{c}-g{g}"), "namespace": format!("ns{}", c % 20), "uid": format!("uid-c{c}-g{g}"), "generation": 1},
                "spec": {"cluster": format!("c{c}"), "resources": [
                    {"name": "vip", "virtualIP": {"address": format!("10.{}.{}.{}/32", 100 + (n >> 16), (n >> 8) & 255, n & 255)}},
                    {"name": "check", "healthCheck": {"tcp": {"port": 80}}, "dependsOn": ["vip"]},
                ]},
            });
            group_cluster_writer
                .apply_watcher_event(&watcher::Event::InitApply(object(group.clone())));
            group_writer.apply_watcher_event(&watcher::Event::InitApply(object(group)));
        }
    }
    cluster_writer.apply_watcher_event(&watcher::Event::InitDone);
    group_writer.apply_watcher_event(&watcher::Event::InitDone);
    group_cluster_writer.apply_watcher_event(&watcher::Event::InitDone);
    node_writer.apply_watcher_event(&watcher::Event::InitDone);
    let stores = Stores {
        clusters: cluster_writer.as_reader(),
        groups: group_writer.as_reader(),
        group_clusters: group_cluster_writer.as_reader(),
        nodes: node_writer.as_reader(),
    };
    let rss_stores = rss_kib("VmRSS:");
    // The reconcilers get the stores' own objects, as the Controller passes them.
    let cluster_objects = stores.clusters.state();
    let group_objects = stores.groups.state();
    assert_eq!(cluster_objects.len(), clusters, "cluster names are unique");
    assert_eq!(
        group_objects.len(),
        clusters * groups,
        "group names are unique"
    );

    let client = Client::new(tower::service_fn(api_server), "default");
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "failover-operator".into(),
            instance: None,
        },
    );
    let settings = Settings {
        agent: AgentSettings {
            image: "failover:bench".into(),
            pull_policy: "IfNotPresent".into(),
            resources: None,
            realtime_priority: 50,
        },
        api_timeout: Duration::from_secs(30),
        resync: Duration::from_secs(5),
    };
    let metrics = Arc::new(Metrics::default());
    let ctx = Arc::new(Context::new(
        client,
        recorder,
        metrics.clone(),
        settings,
        stores,
        Notifier::spawn(RetryPolicy::default(), metrics.clone()),
    ));

    let started = Instant::now();
    let failures = futures::stream::iter(cluster_objects.iter().cloned())
        .map(|c| reconcile_cluster(c, ctx.clone()))
        .buffer_unordered(concurrency)
        .filter(|r| futures::future::ready(r.is_err()))
        .count()
        .await;
    let cluster_time = started.elapsed();
    let started = Instant::now();
    let group_failures = futures::stream::iter(group_objects.iter().cloned())
        .map(|g| reconcile_group(g, ctx.clone()))
        .buffer_unordered(concurrency)
        .filter(|r| futures::future::ready(r.is_err()))
        .count()
        .await;
    let group_time = started.elapsed();
    // The hop "node Lease change seen -> group status applied": one group reconcile
    // (list the cluster's Leases, apply the status) on its own, as the Controller
    // runs it when a node Lease changes; the API server's own latency comes on top.
    let mut hop: Vec<Duration> = Vec::new();
    for g in group_objects.iter().take(if measuring { 2000 } else { 20 }) {
        let started = Instant::now();
        let _ = reconcile_group(g.clone(), ctx.clone()).await;
        hop.push(started.elapsed());
    }
    hop.sort();
    let percentile = |p: f64| {
        hop.get(((hop.len() as f64 * p) as usize).min(hop.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let rss_end = rss_kib("VmRSS:");
    let hwm = rss_kib("VmHWM:");
    let reconciles = metrics
        .render()
        .lines()
        .filter(|l| l.starts_with("failover_operator_reconciles_total"))
        .map(str::to_owned)
        .collect::<Vec<_>>();

    println!(
        "operator bench: {clusters} FailoverClusters x {groups} ResourceGroups, {nodes} nodes, concurrency {concurrency}, mock API in process"
    );
    println!(
        "  clusters: {:.2} s total, {:.2} ms per reconcile (2 reads, 6 applies, {groups} Lease creates, 3 node Lease applies, 1 status apply each), {failures} failed",
        cluster_time.as_secs_f64(),
        cluster_time.as_secs_f64() * 1000.0 / clusters.max(1) as f64
    );
    println!(
        "  groups:   {:.2} s total, {:.3} ms per reconcile (1 read, 1 status apply each), {group_failures} failed",
        group_time.as_secs_f64(),
        group_time.as_secs_f64() * 1000.0 / group_objects.len().max(1) as f64
    );
    println!(
        "  node Lease change -> group status applied (one group reconcile, {} runs): p50 {:.3} ms, p99 {:.3} ms",
        hop.len(),
        percentile(0.5),
        percentile(0.99)
    );
    println!(
        "  memory: RSS {:.1} MiB at start, {:.1} MiB with the stores filled, {:.1} MiB after reconciling, peak {:.1} MiB",
        rss_start as f64 / 1024.0,
        rss_stores as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    for line in reconciles {
        println!("  {line}");
    }
}
