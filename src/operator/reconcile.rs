//! The reconcilers of FailoverCluster and ResourceGroup, as a pipeline:
//! dereference (stores and a few reads) → validate (pure) → build (pure, `build`)
//! → apply (server-side apply as `failover-operator`) → status (pure, `status`); the
//! ClusterConfig itself is rendered by `contract::render`.
//!
//! Owns the IO of one reconciliation, its error kinds and the error policy, and the
//! typed stores it reads. The custom resources are read as
//! [`DeserializeGuard`]s: an object that cannot be read as its kind is kept as its
//! metadata and the deserialization error, and is reported on itself. It must never
//! write a spec, never write a Lease holder, never let one unreadable object fail
//! another's reconciliation, and never wait on the API server without a timeout.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, ObjectReference, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::DeserializeGuard;
use kube::core::error_boundary::InvalidObject;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::{debug, instrument, warn};

use super::build::{self, AgentSettings, KEY_LEN};
use super::config::{node_address, resolve_addresses};
use super::metrics::Metrics;
use super::notify::{
    Delivery, Notification, Notifier, NotifyError, Subject, cluster_notifications,
    group_notifications,
};
use super::status::{
    EVENT_NOTE_MAX_BYTES, Notice, Reports, cluster_notices, cluster_status, group_notices,
    group_status, truncate,
};
use crate::api::conditions::{self as cond, event};
use crate::api::{
    API_VERSION, FailoverCluster, GroupPhase, Problem, ResourceGroup, validate_cluster,
    validate_config, validate_group, validate_heartbeat_ports, validate_kubernetes,
};
use crate::contract::names;
use crate::contract::render::{RenderError, render_config};
use crate::telemetry::error_report;

/// Controller name of the FailoverCluster reconciler (metric label).
pub const CLUSTER_CONTROLLER: &str = "failovercluster";
/// Controller name of the ResourceGroup reconciler (metric label).
pub const GROUP_CONTROLLER: &str = "resourcegroup";
/// Longest wait between retries of a transient error.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Why a reconciliation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server answered with an error.
    #[error("{what}: API request failed")]
    Api {
        /// The request.
        what: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The API server did not answer in time.
    #[error("{what}: no answer within {timeout:?}")]
    Timeout {
        /// The request.
        what: String,
        /// The limit.
        timeout: Duration,
    },
    /// The ClusterConfig could not be rendered.
    #[error("cannot render the ClusterConfig")]
    Render(#[source] RenderError),
    /// No random bytes for a heartbeat key.
    #[error("cannot generate a heartbeat key")]
    Random(#[source] getrandom::Error),
    /// A namespaced custom resource came without a namespace.
    #[error("the object has no namespace")]
    NoNamespace,
    /// A group Lease names a group the API server has for this cluster but the store
    /// does not (yet): nothing is rendered from the store until it catches up.
    #[error("the ResourceGroup {group} exists but is not in the watch cache yet")]
    StoreBehind {
        /// The group.
        group: String,
    },
    /// The reflector stores have not been listed yet (operator start, relist).
    #[error("the watch caches have not been listed within {timeout:?}")]
    NotListed {
        /// How long it waited.
        timeout: Duration,
    },
}

impl Error {
    /// Metric label of the error kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Api { .. } => "api",
            Error::Timeout { .. } => "timeout",
            Error::Render(_) => "render",
            Error::Random(_) => "random",
            Error::NoNamespace => "no_namespace",
            Error::NotListed { .. } => "not_listed",
            Error::StoreBehind { .. } => "store_behind",
        }
    }

    /// Permanent errors do not go away by retrying: they wait for a change of the
    /// object. Timeouts, conflicts, throttling and server errors are transient.
    pub fn permanent(&self) -> bool {
        match self {
            Error::Api {
                source: kube::Error::Api(status),
                ..
            } => matches!(status.code, 400 | 403 | 404 | 422),
            Error::Api { .. }
            | Error::Timeout { .. }
            | Error::Random(_)
            | Error::NotListed { .. }
            | Error::StoreBehind { .. } => false,
            Error::Render(_) | Error::NoNamespace => true,
        }
    }
}

/// Settings of the reconcilers.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How the agent pods are built.
    pub agent: AgentSettings,
    /// Limit of every API request.
    pub api_timeout: Duration,
    /// How often status is refreshed from the Leases without any change.
    pub resync: Duration,
}

/// A FailoverCluster as the API server has it: typed, or why it cannot be.
pub type ClusterObject = DeserializeGuard<FailoverCluster>;
/// A ResourceGroup as the API server has it: typed, or why it cannot be.
pub type GroupObject = DeserializeGuard<ResourceGroup>;

/// A ResourceGroup read only as far as the cluster it names. A group that cannot
/// be read as a whole usually still names its cluster: that cluster must not render
/// a configuration without it (that would stop the group on every member), and it
/// is what a change of the group reconciles.
#[derive(kube::Resource, Deserialize, Clone, Debug)]
#[resource(inherit = ResourceGroup)]
pub struct GroupClusterRef {
    /// The group's metadata.
    pub metadata: ObjectMeta,
    /// The one field of the spec read.
    pub spec: GroupClusterRefSpec,
}

/// The part of a ResourceGroup spec that [`GroupClusterRef`] reads.
#[derive(Deserialize, Clone, Debug)]
pub struct GroupClusterRefSpec {
    /// `spec.cluster`: the FailoverCluster the group runs on.
    pub cluster: String,
}

/// The reflector stores the reconcilers read instead of listing.
#[derive(Clone)]
pub struct Stores {
    /// Every FailoverCluster, typed or why not.
    pub clusters: Store<ClusterObject>,
    /// Every ResourceGroup, typed or why not.
    pub groups: Store<GroupObject>,
    /// Every ResourceGroup as far as the cluster it names (also those that cannot be
    /// read as a whole).
    pub group_clusters: Store<DeserializeGuard<GroupClusterRef>>,
    /// Every Node.
    pub nodes: Store<Node>,
}

/// What every reconciliation shares.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Publishes Events.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Settings.
    pub settings: Settings,
    /// Reflector stores.
    pub stores: Stores,
    /// Sends `spec.notifications.webhook` notifications.
    pub notifier: Notifier,
    /// Consecutive transient failures per object, for the backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// A context.
    pub fn new(
        client: Client,
        recorder: Recorder,
        metrics: Arc<Metrics>,
        settings: Settings,
        stores: Stores,
        notifier: Notifier,
    ) -> Self {
        Self {
            client,
            recorder,
            metrics,
            settings,
            stores,
            notifier,
            failures: Mutex::default(),
        }
    }

    fn forget_failures(&self, key: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(key);
        }
    }
}

fn object_key<K: Resource>(obj: &K) -> String {
    obj.uid()
        .unwrap_or_else(|| format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any()))
}

impl Stores {
    /// Resolves once every store holds a complete list. Until then a missing
    /// ResourceGroup or Node may only not have been listed yet: a reconciliation
    /// that read it as absent would render a ClusterConfig without the group, delete
    /// its Lease and stop it on every member (issue 9, finding 2).
    pub async fn listed(&self) -> bool {
        let (clusters, groups, group_clusters, nodes) = tokio::join!(
            self.clusters.wait_until_ready(),
            self.groups.wait_until_ready(),
            self.group_clusters.wait_until_ready(),
            self.nodes.wait_until_ready(),
        );
        clusters.is_ok() && groups.is_ok() && group_clusters.is_ok() && nodes.is_ok()
    }

    /// The cluster the ResourceGroup `namespace/name` names, when it can be read.
    fn cluster_of_group(&self, namespace: &str, name: &str) -> Option<String> {
        let group = self
            .group_clusters
            .get(&ObjectRef::new(name).within(namespace))?;
        group.0.as_ref().ok().map(|g| g.spec.cluster.clone())
    }
}

/// Waits, bounded by the API timeout, until the stores are listed.
async fn stores_listed(ctx: &Context) -> Result<(), Error> {
    let timeout = ctx.settings.api_timeout;
    match tokio::time::timeout(timeout, ctx.stores.listed()).await {
        Ok(true) => Ok(()),
        Ok(false) | Err(_) => Err(Error::NotListed { timeout }),
    }
}

/// Runs one API request under the timeout.
async fn call<T>(
    ctx: &Context,
    what: impl FnOnce() -> String,
    request: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(ctx.settings.api_timeout, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(Error::Api {
            what: what(),
            source,
        }),
        Err(_) => Err(Error::Timeout {
            what: what(),
            timeout: ctx.settings.api_timeout,
        }),
    }
}

/// Server-side apply of an owned object.
async fn apply<K>(ctx: &Context, namespace: &str, object: &K) -> Result<(), Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Serialize
        + DeserializeOwned
        + Clone
        + Debug,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    let name = object.name_any();
    let params = PatchParams::apply(names::FIELD_MANAGER).force();
    call(
        ctx,
        || format!("apply {} {namespace}/{name}", K::kind(&())),
        api.patch(&name, &params, &Patch::Apply(object)),
    )
    .await
    .map(drop)
}

/// Server-side apply of the status subresource of a `K`. The answer is read as a
/// [`DeserializeGuard`]: the status of an object that cannot be read is written too.
async fn apply_status<K>(
    ctx: &Context,
    namespace: &str,
    name: &str,
    status: serde_json::Value,
) -> Result<(), Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + DeserializeOwned
        + Clone
        + Debug,
{
    let api: Api<DeserializeGuard<K>> = Api::namespaced(ctx.client.clone(), namespace);
    let kind = K::kind(&());
    let body = serde_json::json!({
        "apiVersion": API_VERSION,
        "kind": kind,
        "status": status,
    });
    let params = PatchParams::apply(names::FIELD_MANAGER).force();
    call(
        ctx,
        || format!("apply {kind} {namespace}/{name} status"),
        api.patch_status(name, &params, &Patch::Apply(&body)),
    )
    .await
    .map(drop)
}

/// Publishes an Event about `reference`; a failure is logged, never fails the
/// reconciliation.
async fn publish(ctx: &Context, reference: &ObjectReference, notice: Notice) {
    let event = Event {
        type_: if notice.warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: notice.reason.to_owned(),
        // Agents' sentences and problem lists have no bound of their own.
        note: Some(truncate(&notice.note, EVENT_NOTE_MAX_BYTES)),
        action: notice.action.to_owned(),
        secondary: None,
    };
    match tokio::time::timeout(
        ctx.settings.api_timeout,
        ctx.recorder.publish(&event, reference),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(error)) => warn!(%error, reason = notice.reason, "cannot publish Event"),
        Err(_) => warn!(reason = notice.reason, "publishing an Event timed out"),
    }
}

/// Queues `notifications` for the cluster's webhook, if it has one. The URL is read
/// from its Secret on each transition (a rotated URL needs no restart); a Secret
/// that cannot be read is counted and logged, never fails the reconciliation.
async fn notify(ctx: &Context, cluster: &FailoverCluster, notifications: Vec<Notification>) {
    let Some(webhook) = cluster
        .spec
        .notifications
        .as_ref()
        .and_then(|n| n.webhook.as_ref())
    else {
        return;
    };
    if notifications.is_empty() {
        return;
    }
    let namespace = cluster.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let reference = &webhook.secret_ref;
    let url = match tokio::time::timeout(ctx.settings.api_timeout, secrets.get_opt(&reference.name))
        .await
    {
        Ok(Ok(secret)) => secret
            .and_then(|s| s.data)
            .and_then(|mut data| data.remove(&reference.key))
            .and_then(|value| String::from_utf8(value.0).ok())
            .map(|url| url.trim().to_owned()),
        Ok(Err(error)) => {
            warn!(%error, secret = %reference.name, "cannot read the webhook Secret");
            None
        }
        Err(_) => {
            warn!(secret = %reference.name, "reading the webhook Secret timed out");
            None
        }
    };
    for notification in notifications {
        match &url {
            Some(url) => ctx.notifier.submit(Delivery {
                url: url.clone(),
                format: webhook.format,
                notification,
            }),
            None => ctx.notifier.failed(&notification, &NotifyError::Secret),
        }
    }
}

/// An object that cannot be read as a `K`: say so on its status (conditions only)
/// and wait for someone to fix it.
async fn report_malformed<K>(
    ctx: &Context,
    obj: &DeserializeGuard<K>,
    invalid: &InvalidObject,
) -> Result<Action, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + DeserializeOwned
        + Clone
        + Debug,
{
    let namespace = obj.namespace().ok_or(Error::NoNamespace)?;
    let name = obj.name_any();
    let message = format!(
        "the object cannot be read as a {}: {}",
        K::kind(&()),
        invalid.error
    );
    warn!(%name, why = %message, "malformed object");
    let condition = serde_json::json!({
        "type": cond::CONFIG_VALID,
        "status": cond::STATUS_FALSE,
        "reason": cond::reason::INVALID_SPEC,
        "message": message,
        "lastTransitionTime": Timestamp::now().to_string(),
        "observedGeneration": obj.meta().generation,
    });
    apply_status::<K>(
        ctx,
        &namespace,
        &name,
        serde_json::json!({ "conditions": [condition] }),
    )
    .await?;
    publish(
        ctx,
        &obj.object_ref(&()),
        Notice {
            warning: true,
            reason: event::CONFIG_REJECTED,
            action: "Validate",
            note: message,
        },
    )
    .await;
    Ok(Action::await_change())
}

fn object_name(kind: &str, namespace: &str, name: &str) -> String {
    format!("{kind}/{namespace}/{name}")
}

/// The groups naming `cluster` in `namespace`, and a problem for each that cannot
/// be read (it blocks the cluster's configuration: leaving it out would stop it).
fn groups_of(ctx: &Context, namespace: &str, cluster: &str) -> (Vec<ResourceGroup>, Vec<Problem>) {
    let mut groups = Vec::new();
    let mut problems = Vec::new();
    // A scan of the store with borrowed comparisons only: cheap enough for tens of
    // thousands of groups (see benches/operator.rs).
    let mine = ctx.stores.groups.state_filter(|obj| {
        obj.meta().namespace.as_deref() == Some(namespace)
            && match &obj.0 {
                Ok(group) => group.spec.cluster == cluster,
                Err(invalid) => invalid.metadata.name.as_deref().is_some_and(|name| {
                    ctx.stores.cluster_of_group(namespace, name).as_deref() == Some(cluster)
                }),
            }
    });
    for obj in mine {
        match &obj.0 {
            Ok(group) => groups.push(group.clone()),
            Err(invalid) => problems.push(Problem {
                object: object_name("ResourceGroup", namespace, &obj.name_any()),
                path: "spec".to_owned(),
                message: format!("cannot be read ({}); see its status", invalid.error),
            }),
        }
    }
    groups.sort_by_key(ResourceExt::name_any);
    (groups, problems)
}

/// Heartbeat port conflicts of `cluster` with the clusters sharing one of its nodes.
fn port_problems(ctx: &Context, cluster: &FailoverCluster) -> Vec<Problem> {
    let nodes: HashSet<&str> = cluster
        .spec
        .members
        .iter()
        .map(|m| m.node.as_str())
        .collect();
    let port = cluster.spec.heartbeat.port;
    // Only clusters on a shared node with the same port can conflict; only those
    // few are copied out of the store.
    let mut sharing: Vec<FailoverCluster> = ctx
        .stores
        .clusters
        .state()
        .iter()
        .filter_map(|other| other.0.as_ref().ok())
        .filter(|other| {
            other.spec.heartbeat.port == port
                && (other.metadata.namespace != cluster.metadata.namespace
                    || other.metadata.name != cluster.metadata.name)
                && other
                    .spec
                    .members
                    .iter()
                    .any(|m| nodes.contains(m.node.as_str()))
        })
        .cloned()
        .collect();
    if sharing.is_empty() {
        return Vec::new();
    }
    sharing.push(cluster.clone());
    let me = object_name(
        "FailoverCluster",
        &cluster.namespace().unwrap_or_default(),
        &cluster.name_any(),
    );
    validate_heartbeat_ports(&sharing)
        .into_iter()
        .filter(|p| p.object == me)
        .collect()
}

/// Records the outcome of one reconciliation in the metrics and the backoff table.
fn finish<K: Resource>(
    ctx: &Context,
    controller: &'static str,
    obj: &K,
    started: Instant,
    result: &Result<Action, Error>,
) {
    ctx.metrics.reconciled(controller, started.elapsed());
    ctx.metrics
        .managed("FailoverCluster", ctx.stores.clusters.len());
    ctx.metrics
        .managed("ResourceGroup", ctx.stores.groups.len());
    ctx.metrics.object_states(
        ctx.stores.clusters.state().iter().map(|c| {
            // One that cannot be read is reported ConfigValid=False on itself.
            let valid = c.0.as_ref().is_ok_and(|c| {
                c.status
                    .iter()
                    .flat_map(|s| &s.conditions)
                    .find(|cond| cond.type_ == cond::CONFIG_VALID)
                    .is_none_or(|cond| cond.status != cond::STATUS_FALSE)
            });
            (c.namespace().unwrap_or_default(), c.name_any(), valid)
        }),
        ctx.stores.groups.state().iter().map(|g| {
            let failed = g
                .0
                .as_ref()
                .is_ok_and(|g| g.status.as_ref().and_then(|s| s.phase) == Some(GroupPhase::Failed));
            (g.namespace().unwrap_or_default(), g.name_any(), failed)
        }),
    );
    match result {
        Ok(_) => ctx.forget_failures(&object_key(obj)),
        Err(error) => ctx.metrics.failed(controller, error.kind()),
    }
}

/// Reconciles one FailoverCluster.
#[instrument(skip(obj, ctx), fields(namespace = obj.namespace(), name = obj.name_any()))]
pub async fn reconcile_cluster(
    obj: Arc<ClusterObject>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let result = cluster_pipeline(&obj, &ctx).await;
    finish(&ctx, CLUSTER_CONTROLLER, obj.as_ref(), started, &result);
    result
}

async fn cluster_pipeline(obj: &ClusterObject, ctx: &Context) -> Result<Action, Error> {
    let cluster = match &obj.0 {
        Ok(cluster) => cluster,
        Err(invalid) => return report_malformed(ctx, obj, invalid).await,
    };
    if cluster.metadata.deletion_timestamp.is_some() {
        // Every object carries an owner reference: garbage collection removes them.
        return Ok(Action::await_change());
    }
    let namespace = cluster.namespace().ok_or(Error::NoNamespace)?;
    let name = cluster.name_any();
    stores_listed(ctx).await?;

    // Dereference.
    let (groups, unreadable) = groups_of(ctx, &namespace, &name);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let secret_name = names::heartbeat_secret(&name);
    let existing_secret = call(
        ctx,
        || format!("get Secret {namespace}/{secret_name}"),
        secrets.get_opt(&secret_name),
    )
    .await?;
    let leases: Api<Lease> = Api::namespaced(ctx.client.clone(), &namespace);
    let selector = format!("{}={name}", names::CLUSTER_LABEL);
    let lease_list = call(
        ctx,
        || format!("list Leases {namespace} {selector}"),
        leases.list(&ListParams::default().labels(&selector)),
    )
    .await?
    .items;

    // Validate.
    let mut problems = validate_config(cluster, &groups);
    problems.extend(validate_kubernetes(&groups));
    problems.extend(unreadable);
    problems.extend(port_problems(ctx, cluster));
    let resolved = resolve_addresses(cluster, |node| {
        node_address(ctx.stores.nodes.get(&ObjectRef::new(node)).as_deref())
    });
    let resolved = match resolved {
        Ok(resolved) => {
            // A node's InternalIP, now link 0, may repeat another member's address
            // or be of another IP family than the link's other addresses: the
            // agents would refuse such a configuration, so it is not rendered.
            if problems.is_empty() {
                problems.extend(validate_cluster(&resolved));
            }
            Some(resolved)
        }
        Err(unresolved) => {
            problems.extend(unresolved);
            None
        }
    };

    // Build and apply, only from a valid spec: otherwise every object, above all the
    // ClusterConfig, stays as the last valid spec left it.
    let mut requeue = ctx.settings.resync;
    let config_hash = match resolved.filter(|_| problems.is_empty()) {
        Some(resolved) => {
            let stale = stale_leases(ctx, &namespace, cluster, &groups, &lease_list).await?;
            let rendered = render_config(&resolved, &groups).map_err(Error::Render)?;
            let fresh_key = draw_key().map_err(Error::Random)?;
            let secret = build::heartbeat_secret(
                cluster,
                existing_secret.as_ref(),
                Timestamp::now(),
                fresh_key,
            );
            if secret.new_key {
                debug!("heartbeat key generated");
            }
            if let Some(after) = secret.revisit_after {
                requeue = requeue.min(after + Duration::from_secs(1));
            }
            apply(ctx, &namespace, &build::config_map(cluster, &rendered)).await?;
            apply(ctx, &namespace, &secret.secret).await?;
            apply(ctx, &namespace, &build::service_account(cluster)).await?;
            apply(ctx, &namespace, &build::role(cluster, &groups)).await?;
            apply(ctx, &namespace, &build::role_binding(cluster)).await?;
            apply(
                ctx,
                &namespace,
                &build::daemon_set(cluster, &ctx.settings.agent),
            )
            .await?;
            sync_leases(
                ctx,
                &namespace,
                cluster,
                &groups,
                &lease_list,
                &stale,
                &leases,
            )
            .await?;
            Some(rendered.hash)
        }
        None => cluster.status.as_ref().and_then(|s| s.config_hash.clone()),
    };

    // Status.
    let reports = Reports::from_leases(&name, &lease_list);
    let status = cluster_status(cluster, &problems, config_hash, &reports, Timestamp::now());
    // An unchanged status is not written: no write, no watch event for anyone.
    if cluster.status.as_ref() != Some(&status) {
        let body = serde_json::to_value(&status).unwrap_or_default();
        apply_status::<FailoverCluster>(ctx, &namespace, &name, body).await?;
    }
    let before = cluster.status.clone().unwrap_or_default();
    let reference = obj.object_ref(&());
    for notice in cluster_notices(&before, &status) {
        publish(ctx, &reference, notice).await;
    }
    let subject = Subject {
        namespace: &namespace,
        cluster: &name,
    };
    let notifications = cluster_notifications(subject, &before, &status, Timestamp::now());
    notify(ctx, cluster, notifications).await;
    Ok(Action::requeue(requeue))
}

/// Whether the ResourceGroup `group` is gone from `cluster`, asked of the API server
/// rather than the store: deleting a ledger stops the group on every member, so a
/// store that lags (or was not listed) must not be the reason.
async fn group_gone(
    ctx: &Context,
    namespace: &str,
    cluster: &str,
    group: &str,
) -> Result<bool, Error> {
    // Read only as far as the cluster it names; one that does not say counts as
    // gone from this cluster.
    let api: Api<DeserializeGuard<GroupClusterRef>> =
        Api::namespaced(ctx.client.clone(), namespace);
    let found = call(
        ctx,
        || format!("get ResourceGroup {namespace}/{group}"),
        api.get_opt(group),
    )
    .await?;
    Ok(found.is_none_or(|g| g.0.is_ok_and(|g| g.spec.cluster != cluster)))
}

/// Server-side apply of the node Leases of the members whose Lease lacks the
/// cluster's labels or owner reference (metadata only: the agents own the spec and
/// the annotations), and deletion of the node Leases of former members.
async fn sync_node_leases(
    ctx: &Context,
    namespace: &str,
    cluster: &FailoverCluster,
    existing: &[Lease],
    api: &Api<Lease>,
) -> Result<(), Error> {
    let desired = build::node_leases(cluster);
    for lease in &desired {
        let name = lease.name_any();
        let current = existing.iter().find(|l| l.name_any() == name);
        let up_to_date = current.is_some_and(|current| {
            lease
                .labels()
                .iter()
                .all(|(k, v)| current.labels().get(k) == Some(v))
                && lease
                    .owner_references()
                    .iter()
                    .all(|o| current.owner_references().contains(o))
        });
        if !up_to_date {
            apply(ctx, namespace, lease).await?;
        }
    }
    let prefix = names::node_lease_prefix(&cluster.name_any());
    let wanted: HashSet<String> = desired.iter().map(ResourceExt::name_any).collect();
    for lease in existing {
        let name = lease.name_any();
        if !name.starts_with(&prefix)
            || lease.labels().contains_key(names::GROUP_LABEL)
            || wanted.contains(&name)
        {
            continue;
        }
        debug!(lease = %name, "deleting the node Lease of a former member");
        delete_lease(ctx, namespace, api, &name).await?;
    }
    Ok(())
}

async fn delete_lease(
    ctx: &Context,
    namespace: &str,
    api: &Api<Lease>,
    name: &str,
) -> Result<(), Error> {
    match call(
        ctx,
        || format!("delete Lease {namespace}/{name}"),
        api.delete(name, &DeleteParams::default()),
    )
    .await
    {
        Ok(_) => Ok(()),
        Err(Error::Api {
            source: kube::Error::Api(status),
            ..
        }) if status.is_not_found() => Ok(()),
        Err(error) => Err(error),
    }
}

/// A fresh heartbeat key that survives being saved to a key file: `failover
/// witness` (serving a Kubernetes cluster) reads the Secret's `key` from a file,
/// and key files lose trailing whitespace, so the last byte is drawn again until
/// it is none.
fn draw_key() -> Result<[u8; KEY_LEN], getrandom::Error> {
    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key)?;
    while key[KEY_LEN - 1].is_ascii_whitespace() {
        getrandom::fill(&mut key[KEY_LEN - 1..])?;
    }
    Ok(key)
}

/// Creates the missing group and witness Leases (empty: agents write the holder;
/// an existing Lease is never written, so its holder and epoch stay the agents')
/// and deletes the ledgers of groups the API server confirms are gone (and the
/// witness Lease when the witness is not the Lease).
async fn sync_leases(
    ctx: &Context,
    namespace: &str,
    cluster: &FailoverCluster,
    groups: &[ResourceGroup],
    existing: &[Lease],
    stale: &[String],
    api: &Api<Lease>,
) -> Result<(), Error> {
    let present: HashSet<String> = existing.iter().map(ResourceExt::name_any).collect();
    for lease in build::leases(cluster, groups) {
        let name = lease.name_any();
        if present.contains(&name) {
            continue;
        }
        match call(
            ctx,
            || format!("create Lease {namespace}/{name}"),
            api.create(&PostParams::default(), &lease),
        )
        .await
        {
            Ok(_) => {}
            // Created meanwhile (a stale list): what we wanted.
            Err(Error::Api {
                source: kube::Error::Api(status),
                ..
            }) if status.is_already_exists() => {}
            Err(error) => return Err(error),
        }
    }
    for name in stale {
        delete_lease(ctx, namespace, api, name).await?;
    }
    sync_node_leases(ctx, namespace, cluster, existing, api).await
}

/// The group and witness Leases of `cluster` to delete: ledgers of groups the API
/// server confirms are gone, and the witness Lease outside witness mode or when
/// `spec.witness` names a `failover witness` process instead. A ledger whose
/// group the API server still has for this cluster means the store is behind: an
/// error, before anything is rendered from it.
async fn stale_leases(
    ctx: &Context,
    namespace: &str,
    cluster: &FailoverCluster,
    groups: &[ResourceGroup],
    existing: &[Lease],
) -> Result<Vec<String>, Error> {
    let wanted: HashSet<String> = groups.iter().map(ResourceExt::name_any).collect();
    let cluster_name = cluster.name_any();
    let witness = names::witness_lease(&cluster_name);
    let mut stale = Vec::new();
    for lease in existing {
        let name = lease.name_any();
        match lease.labels().get(names::GROUP_LABEL) {
            Some(group) if !wanted.contains(group) => {
                if !group_gone(ctx, namespace, &cluster_name, group).await? {
                    return Err(Error::StoreBehind {
                        group: group.clone(),
                    });
                }
                stale.push(name);
            }
            Some(_) => {}
            // The witness Lease of a cluster that left witness mode or moved to a
            // `failover witness` process: a leftover holder would mislead a reader.
            None if name == witness && !cluster.spec.uses_witness_lease() => {
                stale.push(name);
            }
            None => {}
        }
    }
    Ok(stale)
}

/// Reconciles the status of one ResourceGroup.
#[instrument(skip(obj, ctx), fields(namespace = obj.namespace(), name = obj.name_any()))]
pub async fn reconcile_group(obj: Arc<GroupObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = group_pipeline(&obj, &ctx).await;
    finish(&ctx, GROUP_CONTROLLER, obj.as_ref(), started, &result);
    result
}

async fn group_pipeline(obj: &GroupObject, ctx: &Context) -> Result<Action, Error> {
    let group = match &obj.0 {
        Ok(group) => group,
        Err(invalid) => return report_malformed(ctx, obj, invalid).await,
    };
    if group.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = group.namespace().ok_or(Error::NoNamespace)?;
    let name = group.name_any();
    // An unlisted cluster store would show the group's cluster as missing.
    stores_listed(ctx).await?;
    let cluster_ref = ObjectRef::new(&group.spec.cluster).within(&namespace);
    let cluster: Option<FailoverCluster> = ctx
        .stores
        .clusters
        .get(&cluster_ref)
        .and_then(|c| c.0.as_ref().ok().cloned());
    let (problems, reports) = match &cluster {
        Some(cluster) => {
            let leases: Api<Lease> = Api::namespaced(ctx.client.clone(), &namespace);
            let selector = format!("{}={}", names::CLUSTER_LABEL, cluster.name_any());
            let list = call(
                ctx,
                || format!("list Leases {namespace} {selector}"),
                leases.list(&ListParams::default().labels(&selector)),
            )
            .await?;
            let mut problems = validate_group(group, cluster);
            problems.extend(validate_kubernetes(std::slice::from_ref(group)));
            (
                problems,
                Reports::from_leases(&cluster.name_any(), &list.items),
            )
        }
        None => (Vec::new(), Reports::default()),
    };
    let status = group_status(
        group,
        cluster.as_ref(),
        &problems,
        &reports,
        Timestamp::now(),
    );
    let body = serde_json::to_value(&status).unwrap_or_default();
    apply_status::<ResourceGroup>(ctx, &namespace, &name, body).await?;
    let before = group.status.clone().unwrap_or_default();
    let reference = obj.object_ref(&());
    for notice in group_notices(&before, &status) {
        publish(ctx, &reference, notice).await;
    }
    if let Some(cluster) = &cluster {
        let subject = Subject {
            namespace: &namespace,
            cluster: &group.spec.cluster,
        };
        let notifications = group_notifications(subject, &name, &before, &status, Timestamp::now());
        notify(ctx, cluster, notifications).await;
    }
    Ok(Action::requeue(ctx.settings.resync))
}

/// What to do after a failed reconciliation: permanent errors wait for a change of
/// the object; transient ones retry with an exponential backoff (1 s doubling up to
/// five minutes) per object.
pub fn error_policy<K: Resource>(obj: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    let report = error_report(error);
    if error.permanent() {
        warn!(name = %obj.name_any(), error = %report, "reconcile failed; waiting for a change");
        return Action::await_change();
    }
    let attempt = ctx
        .failures
        .lock()
        .map(|mut failures| {
            let n = failures.entry(object_key(obj.as_ref())).or_insert(0);
            *n = n.saturating_add(1);
            *n
        })
        .unwrap_or(1);
    let delay = Duration::from_secs(1u64 << attempt.saturating_sub(1).min(9)).min(MAX_BACKOFF);
    warn!(name = %obj.name_any(), error = %report, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

#[cfg(test)]
mod tests;
