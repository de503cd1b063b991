//! The operator: turns FailoverCluster and ResourceGroup objects into a running,
//! self-reporting failover cluster (DESIGN.md section 2).
//!
//! Owns the controllers, leader election, the rendering of every object the agents
//! need and the aggregation of their reports into status. Pure parts: `config`,
//! `build`, `status`, `leader::decide`; IO: `reconcile`, `leader`, `metrics` and
//! [`run`]. What it shares with the agent (object names, the ClusterConfig format
//! and hash, the node Lease report, the client) is `contract`'s: it never imports
//! the agent. It must never write a spec, never write a Lease holder (that is the
//! agents' ledger) and never run controllers without the leader Lease.

pub mod build;
pub mod config;
pub mod leader;
pub mod metrics;
pub mod notify;
pub mod reconcile;
pub mod status;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, future};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::core::DeserializeGuard;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::utils::WatchStreamExt;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::{error, info, warn};

pub use build::AgentSettings;
pub use reconcile::{Context, Settings, Stores};

use self::metrics::Metrics;
use self::reconcile::{ClusterObject, GroupClusterRef, GroupObject};
use crate::api::{FailoverCluster, ResourceGroup};
use crate::contract::client::{ClientError, client_from};
use crate::contract::names;

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// No Kubernetes client could be made.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The metrics endpoint could not be bound.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Leadership was lost: exit rather than guess.
    #[error(transparent)]
    Leadership(#[from] leader::LeaderError),
}

/// Everything `failover operator` needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Kubeconfig to use instead of the in-cluster configuration / `$KUBECONFIG`.
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Namespace of the leader Lease (default: the client's default namespace).
    pub namespace: Option<String>,
    /// Watch only this namespace (default: all).
    pub watch_namespace: Option<String>,
    /// This replica's identity in the leader Lease.
    pub identity: String,
    /// Leader Lease duration.
    pub lease_duration: Duration,
    /// Where `/metrics`, `/healthz`, `/readyz` are served.
    pub metrics_addr: SocketAddr,
    /// Reconciler settings.
    pub settings: Settings,
}

async fn client(options: &Options) -> Result<Client, OperatorError> {
    Ok(client_from(options.kubeconfig.as_deref(), options.settings.api_timeout).await?)
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                warn!(%error, "cannot listen for SIGTERM");
                future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}

fn api_for<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The part of a Lease the operator reacts to: holder, epoch and the agents'
/// annotations — not the renewals, which would reconcile every cluster every second.
fn lease_content(lease: &Lease) -> Option<u64> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    lease.name_any().hash(&mut hasher);
    if let Some(spec) = &lease.spec {
        spec.holder_identity.hash(&mut hasher);
        spec.lease_transitions.hash(&mut hasher);
    }
    lease.annotations().hash(&mut hasher);
    Some(hasher.finish())
}

/// The part of a Node the ClusterConfig depends on: its addresses.
fn node_content(node: &Node) -> Option<u64> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    node.name_any().hash(&mut hasher);
    if let Some(addresses) = node.status.as_ref().and_then(|s| s.addresses.as_ref()) {
        for a in addresses {
            (&a.type_, &a.address).hash(&mut hasher);
        }
    }
    Some(hasher.finish())
}

/// Clusters (as references) in `store` that list `node` as a member.
fn clusters_with_node(
    store: &reflector::Store<ClusterObject>,
    node: &str,
) -> Vec<ObjectRef<ClusterObject>> {
    store
        .state_filter(|c| {
            c.0.as_ref()
                .is_ok_and(|c| c.spec.members.iter().any(|m| m.node == node))
        })
        .iter()
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}

/// What of a custom resource should trigger a reconciliation: the spec (through
/// `generation`), annotations (key rotation) and deletion — not status writes, which
/// would make every status write trigger the next reconciliation.
fn spec_or_annotations<K: Resource>(obj: &K) -> Option<u64> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    let metadata = obj.meta();
    metadata.generation.hash(&mut hasher);
    obj.annotations().hash(&mut hasher);
    metadata.deletion_timestamp.is_some().hash(&mut hasher);
    // The uid, so a recreated object with generation 1 triggers too.
    metadata.uid.hash(&mut hasher);
    Some(hasher.finish())
}

/// A reflector-backed, predicate-filtered watch of a custom resource read as `K`:
/// its store holds every object (one that cannot be read as `K` too, as its
/// metadata and the error), the stream yields only spec, annotation and deletion
/// changes.
fn custom_resource_stream<K>(
    client: &Client,
    namespace: Option<&str>,
) -> (
    reflector::Store<DeserializeGuard<K>>,
    impl futures::Stream<Item = Result<DeserializeGuard<K>, watcher::Error>> + Send + 'static,
)
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + DeserializeOwned
        + Clone
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(
            api_for::<DeserializeGuard<K>>(client, namespace),
            watcher::Config::default(),
        )
        // Nothing reads managedFields: the stores need not hold them.
        .modify(|obj| obj.meta_mut().managed_fields = None),
    )
    .default_backoff()
    .applied_objects()
    .predicate_filter(spec_or_annotations, Default::default());
    (reader, stream)
}

/// The groups in `store` that name the cluster `name` in `namespace` (those that
/// cannot be read as a whole too: they are reported on themselves).
fn groups_of_cluster(
    store: &reflector::Store<DeserializeGuard<GroupClusterRef>>,
    namespace: Option<&str>,
    name: &str,
) -> Vec<ObjectRef<GroupObject>> {
    store
        .state_filter(|g| {
            g.meta().namespace.as_deref() == namespace
                && g.0.as_ref().is_ok_and(|g| g.spec.cluster == name)
        })
        .iter()
        .filter_map(|g| Some(ObjectRef::new(&g.name_any()).within(&g.namespace()?)))
        .collect()
}

/// The cluster a group names, if it can be read.
fn cluster_of_group(group: &DeserializeGuard<GroupClusterRef>) -> Option<ObjectRef<ClusterObject>> {
    let cluster = &group.0.as_ref().ok()?.spec.cluster;
    Some(ObjectRef::new(cluster).within(&group.namespace()?))
}

/// The cluster a Lease belongs to (by its label).
fn cluster_of_lease(lease: &Lease) -> Option<(String, String)> {
    Some((
        lease.labels().get(names::CLUSTER_LABEL)?.clone(),
        lease.namespace()?,
    ))
}

/// Runs the controllers of the leader until shutdown or loss of leadership.
async fn run_controllers(
    client: Client,
    options: &Options,
    metrics: Arc<Metrics>,
    elector: &leader::Elector,
) -> Result<(), OperatorError> {
    let ns = options.watch_namespace.as_deref();
    let label_wc = watcher::Config::default().labels(names::CLUSTER_LABEL);
    // Each controller gets its own watches (streams cannot be shared without the
    // shared-stream API); the stores the reconcilers read come from the first set.
    let (cluster_store, cluster_stream) = custom_resource_stream::<FailoverCluster>(&client, ns);
    let (group_store, group_stream) = custom_resource_stream::<ResourceGroup>(&client, ns);
    // The cluster controller's watch of the groups reads them only as far as the
    // cluster they name: that maps a change of any group, readable or not, to its
    // cluster, and its store tells a cluster which unreadable groups are its own.
    let (group_cluster_store, groups_for_clusters) =
        custom_resource_stream::<GroupClusterRef>(&client, ns);
    let (_, clusters_for_groups) = custom_resource_stream::<FailoverCluster>(&client, ns);
    let (nodes, node_writer) = reflector::store::<Node>();
    let node_stream = reflector::reflector(
        node_writer,
        watcher(Api::<Node>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .applied_objects()
    .predicate_filter(node_content, Default::default());
    let lease_stream = || {
        watcher(api_for::<Lease>(&client, ns), label_wc.clone())
            .default_backoff()
            .applied_objects()
            .predicate_filter(lease_content, Default::default())
    };
    let stores = Stores {
        clusters: cluster_store.clone(),
        groups: group_store.clone(),
        group_clusters: group_cluster_store.clone(),
        nodes,
    };
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: names::FIELD_MANAGER.to_owned(),
            instance: Some(options.identity.clone()),
        },
    );
    let notifier = notify::Notifier::spawn(notify::RetryPolicy::default(), metrics.clone());
    let ctx = Arc::new(Context::new(
        client.clone(),
        recorder,
        metrics,
        options.settings.clone(),
        stores,
        notifier,
    ));

    let shutdown = shutdown_signal();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let cluster_controller = Controller::for_stream(cluster_stream, cluster_store.clone())
        .owns(api_for::<ConfigMap>(&client, ns), label_wc.clone())
        .owns(api_for::<Secret>(&client, ns), label_wc.clone())
        .owns(api_for::<DaemonSet>(&client, ns), label_wc.clone())
        .owns(api_for::<ServiceAccount>(&client, ns), label_wc.clone())
        .owns(api_for::<Role>(&client, ns), label_wc.clone())
        .owns(api_for::<RoleBinding>(&client, ns), label_wc.clone())
        .watches_stream(lease_stream(), |lease: Lease| {
            cluster_of_lease(&lease)
                .map(|(name, ns)| ObjectRef::<ClusterObject>::new(&name).within(&ns))
        })
        .watches_stream(groups_for_clusters, |g| cluster_of_group(&g))
        .watches_stream(node_stream, {
            let store = cluster_store.clone();
            move |node: Node| clusters_with_node(&store, &node.name_any())
        })
        .graceful_shutdown_on(stopped(stop_rx.clone()))
        .run(
            reconcile::reconcile_cluster,
            reconcile::error_policy,
            ctx.clone(),
        )
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(error = %crate::telemetry::error_report(&error), "cluster reconcile");
            }
        });
    let group_controller = Controller::for_stream(group_stream, group_store.clone())
        .watches_stream(lease_stream(), {
            let store = group_cluster_store.clone();
            move |lease: Lease| match cluster_of_lease(&lease) {
                Some((name, ns)) => groups_of_cluster(&store, Some(&ns), &name),
                None => Vec::new(),
            }
        })
        .watches_stream(clusters_for_groups, {
            let store = group_cluster_store.clone();
            move |cluster: ClusterObject| {
                groups_of_cluster(&store, cluster.namespace().as_deref(), &cluster.name_any())
            }
        })
        .graceful_shutdown_on(stopped(stop_rx))
        .run(reconcile::reconcile_group, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(error = %crate::telemetry::error_report(&error), "group reconcile");
            }
        });

    info!("controllers starting");
    let controllers = future::join(cluster_controller, group_controller);
    tokio::pin!(controllers);
    tokio::select! {
        _ = &mut controllers => Ok(()),
        lost = elector.hold() => {
            error!(error = %lost, "exiting: another replica may be writing now");
            Err(lost.into())
        }
        () = shutdown => {
            info!("SIGTERM: stopping the controllers");
            let _ = stop_tx.send(true);
            // Let in-flight reconciliations finish, but never longer than a Lease term.
            let _ = tokio::time::timeout(options.lease_duration, &mut controllers).await;
            elector.release().await;
            Ok(())
        }
    }
}

/// Runs the operator: metrics endpoint, leader election, then the controllers.
pub async fn run(options: Options) -> Result<(), OperatorError> {
    let metrics = Arc::new(Metrics::default());
    let bound = metrics::spawn(options.metrics_addr, metrics.clone())
        .await
        .map_err(|source| OperatorError::Listen {
            addr: options.metrics_addr,
            source,
        })?;
    info!(%bound, "serving /metrics, /healthz, /readyz");
    let client = client(&options).await?;
    let namespace = options
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let elector = leader::Elector::new(
        Api::namespaced(client.clone(), &namespace),
        options.identity.clone(),
        options.lease_duration,
        options.settings.api_timeout,
    );
    // Ready once the API server answers: a standby replica is ready too (it takes
    // part in the election), a replica that cannot reach the API server is not.
    let reach = async {
        loop {
            match tokio::time::timeout(options.settings.api_timeout, client.apiserver_version())
                .await
            {
                Ok(Ok(_)) => break,
                Ok(Err(error)) => warn!(%error, "API server not reachable yet"),
                Err(_) => warn!("API server did not answer in time"),
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        metrics.set_ready(true);
        elector.acquire().await;
    };
    tokio::select! {
        () = reach => {}
        () = shutdown_signal() => {
            info!("SIGTERM before leadership: exiting");
            return Ok(());
        }
    }
    metrics.leader(true);
    let result = run_controllers(client, &options, metrics.clone(), &elector).await;
    metrics.leader(false);
    result
}
