//! The desired objects of one FailoverCluster: ClusterConfig ConfigMap, heartbeat
//! Secret, agent DaemonSet, ServiceAccount, Role, RoleBinding and Leases (the
//! ConfigMap's payload is `contract::render`'s).
//!
//! Owns their shape (names per `contract::names`, labels, owner references,
//! the agent's security context and RBAC). It is pure: plain values in, objects
//! out; it must never call the API server, read the clock or draw random numbers
//! (callers pass `now` and fresh key bytes).

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet,
};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, HTTPGetAction, NodeAffinity, NodeSelector, NodeSelectorRequirement,
    NodeSelectorTerm, ObjectFieldSelector, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    SeccompProfile, Secret, SecurityContext, ServiceAccount, Toleration, Volume, VolumeMount,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};

use crate::api::duration::whole_seconds_up_i32;
use crate::api::{FailoverCluster, ResourceGroup};
use crate::contract::names;
use crate::contract::render::RenderedConfig;

/// How long the previous heartbeat key stays valid after a rotation: long enough
/// for every agent to see the new Secret (a watch event, or a relist after an API
/// outage) before heartbeats signed with the old key are refused.
pub const KEY_ROTATION_OVERLAP: Duration = Duration::from_secs(600);
/// Length of a generated heartbeat key.
pub const KEY_LEN: usize = 32;
/// Extra termination grace beyond `deadAfter`: the agent takes its resources
/// offline and announces `leaving` before it exits.
const LEAVE_GRACE_SECONDS: i64 = 5;

/// Operator settings that shape the agent pods.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSettings {
    /// Container image of the agent (the same image as the operator).
    pub image: String,
    /// `Always`, `IfNotPresent` or `Never`.
    pub pull_policy: String,
    /// The agent container's requests and limits; `None` = the built-in default
    /// (see [`default_agent_resources`]).
    pub resources: Option<ResourceRequirements>,
    /// SCHED_RR priority of the agent process (`FAILOVER_REALTIME_PRIORITY`, with
    /// CAP_SYS_NICE); 0 = normal priority.
    pub realtime_priority: u8,
}

/// Requests and limits of the agent container unless the operator is told otherwise.
/// No CPU limit on purpose: CFS throttling would delay heartbeats and cause false
/// failovers. Memory is bounded.
pub fn default_agent_resources() -> ResourceRequirements {
    let quantity = |q: &str| Quantity(q.to_owned());
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), quantity("50m")),
            ("memory".to_owned(), quantity("32Mi")),
        ])),
        limits: Some(BTreeMap::from([("memory".to_owned(), quantity("128Mi"))])),
        ..ResourceRequirements::default()
    }
}

/// The labels of every object of a cluster.
pub fn cluster_labels(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (names::CLUSTER_LABEL.to_owned(), cluster.to_owned()),
        (
            names::MANAGED_BY_LABEL.to_owned(),
            names::FIELD_MANAGER.to_owned(),
        ),
    ])
}

/// The labels that select the agent pods of a cluster.
fn agent_selector(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (names::APP_LABEL.to_owned(), names::APP_AGENT.to_owned()),
        (names::CLUSTER_LABEL.to_owned(), cluster.to_owned()),
    ])
}

fn agent_labels(cluster: &str) -> BTreeMap<String, String> {
    let mut labels = cluster_labels(cluster);
    labels.extend(agent_selector(cluster));
    labels
}

/// Metadata of an owned object: name, namespace, labels and the controller owner
/// reference to the cluster (garbage collection removes the object with it).
fn owned_meta(
    cluster: &FailoverCluster,
    name: String,
    labels: BTreeMap<String, String>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: cluster.namespace(),
        labels: Some(labels),
        owner_references: cluster.controller_owner_ref(&()).map(|r| vec![r]),
        ..ObjectMeta::default()
    }
}

/// Whole seconds of `deadAfter`, rounded up, at least 1 (Lease durations and the
/// termination grace are whole seconds).
pub fn dead_after_seconds(cluster: &FailoverCluster) -> i32 {
    whole_seconds_up_i32(cluster.spec.heartbeat.dead_after.get())
}

/// The ClusterConfig ConfigMap.
pub fn config_map(cluster: &FailoverCluster, rendered: &RenderedConfig) -> ConfigMap {
    ConfigMap {
        metadata: owned_meta(
            cluster,
            names::config_map(&cluster.name_any()),
            cluster_labels(&cluster.name_any()),
        ),
        data: Some({
            let mut data = BTreeMap::from([
                (names::CONFIG_KEY.to_owned(), rendered.yaml.clone()),
                (names::HASH_KEY.to_owned(), rendered.hash.clone()),
            ]);
            if !rendered.clear_failures.is_empty() {
                // A map of strings always serializes.
                data.insert(
                    names::CLEAR_FAILURES_KEY.to_owned(),
                    serde_json::json!(rendered.clear_failures).to_string(),
                );
            }
            data
        }),
        ..ConfigMap::default()
    }
}

/// The desired heartbeat Secret and when it must be looked at again.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretPlan {
    /// The Secret to apply.
    pub secret: Secret,
    /// Whether the key was generated or rotated now.
    pub new_key: bool,
    /// When the previous key expires and must be removed.
    pub revisit_after: Option<Duration>,
}

/// The heartbeat Secret: keeps the existing key; generates one (from `fresh_key`)
/// only when there is none, or when the cluster's `failover.dev/rotate-key`
/// annotation carries a value the Secret has not acted on yet; the previous key
/// then stays for [`KEY_ROTATION_OVERLAP`].
pub fn heartbeat_secret(
    cluster: &FailoverCluster,
    existing: Option<&Secret>,
    now: Timestamp,
    fresh_key: [u8; KEY_LEN],
) -> SecretPlan {
    let data = existing.and_then(|s| s.data.as_ref());
    let annotations = existing.map(|s| s.annotations());
    let current = data
        .and_then(|d| d.get(names::KEY))
        .filter(|k| k.0.len() >= 16);
    let requested = cluster.annotations().get(names::ROTATE_KEY);
    let acted_on = annotations.and_then(|a| a.get(names::ROTATE_KEY));
    let rotated_at = annotations
        .and_then(|a| a.get(names::ROTATED_AT))
        .and_then(|t| t.parse::<Timestamp>().ok());

    let (key, previous, rotated_at, new_key) = match current {
        None => (ByteString(fresh_key.to_vec()), None, now, true),
        Some(old) if requested.is_some() && requested != acted_on => {
            (ByteString(fresh_key.to_vec()), Some(old.clone()), now, true)
        }
        Some(old) => (
            old.clone(),
            data.and_then(|d| d.get(names::PREVIOUS_KEY)).cloned(),
            rotated_at.unwrap_or(now),
            false,
        ),
    };
    let overlap = jiff::SignedDuration::try_from(KEY_ROTATION_OVERLAP).unwrap_or_default();
    let expires = rotated_at.checked_add(overlap).unwrap_or(rotated_at);
    let previous = previous.filter(|_| now < expires);
    let revisit_after = previous
        .as_ref()
        .and_then(|_| Duration::try_from(expires.duration_since(now)).ok());

    let mut meta = owned_meta(
        cluster,
        names::heartbeat_secret(&cluster.name_any()),
        cluster_labels(&cluster.name_any()),
    );
    let mut secret_annotations =
        BTreeMap::from([(names::ROTATED_AT.to_owned(), rotated_at.to_string())]);
    if let Some(value) = requested {
        secret_annotations.insert(names::ROTATE_KEY.to_owned(), value.clone());
    }
    meta.annotations = Some(secret_annotations);
    let mut data = BTreeMap::from([(names::KEY.to_owned(), key)]);
    if let Some(previous) = previous {
        data.insert(names::PREVIOUS_KEY.to_owned(), previous);
    }
    SecretPlan {
        secret: Secret {
            metadata: meta,
            data: Some(data),
            type_: Some("Opaque".to_owned()),
            ..Secret::default()
        },
        new_key,
        revisit_after,
    }
}

/// The agents' ServiceAccount.
pub fn service_account(cluster: &FailoverCluster) -> ServiceAccount {
    ServiceAccount {
        metadata: owned_meta(
            cluster,
            names::agent(&cluster.name_any()),
            agent_labels(&cluster.name_any()),
        ),
        ..ServiceAccount::default()
    }
}

fn rule(group: &str, resource: &str, verbs: &[&str], names: Option<Vec<String>>) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(vec![resource.to_owned()]),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        resource_names: names,
        ..PolicyRule::default()
    }
}

/// The agents' Role: the fewest verbs the Kubernetes mode needs, limited by
/// resourceNames wherever the API allows it.
pub fn role(cluster: &FailoverCluster, groups: &[ResourceGroup]) -> Role {
    let name = cluster.name_any();
    let mut leases: Vec<String> = cluster
        .spec
        .members
        .iter()
        .map(|m| names::node_lease(&name, &m.node))
        .chain(
            groups
                .iter()
                .map(|g| names::group_lease(&name, &g.name_any())),
        )
        .collect();
    // The witness Lease only when it is the witness: an agent that asks a
    // `failover witness` process has no business writing it.
    if cluster.spec.uses_witness_lease() {
        leases.push(names::witness_lease(&name));
    }
    leases.sort();
    Role {
        metadata: owned_meta(cluster, names::agent(&name), agent_labels(&name)),
        rules: Some(vec![
            // The agent reads and watches its ClusterConfig to apply changes live; a
            // watch with a metadata.name field selector is authorized by resourceNames.
            rule(
                "",
                "configmaps",
                &["get", "list", "watch"],
                Some(vec![names::config_map(&name)]),
            ),
            // The heartbeat key, watched so a rotation reaches the agent without a restart.
            rule(
                "",
                "secrets",
                &["get", "list", "watch"],
                Some(vec![names::heartbeat_secret(&name)]),
            ),
            // Renewing its node Lease, writing the group records and taking the
            // witness: only this cluster's Leases, by name. The operator creates every
            // one of them, so the agent needs no `create` (which RBAC cannot limit by name).
            rule(
                "coordination.k8s.io",
                "leases",
                &["get", "update"],
                Some(leases),
            ),
            // Failover timeline Events (detected, decided, fenced, VIP up, ARP sent);
            // patch updates the count of a repeated Event.
            rule("events.k8s.io", "events", &["create", "patch"], None),
        ]),
    }
}

/// Binds the agents' Role to their ServiceAccount.
pub fn role_binding(cluster: &FailoverCluster) -> RoleBinding {
    let name = cluster.name_any();
    RoleBinding {
        metadata: owned_meta(cluster, names::agent(&name), agent_labels(&name)),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: names::agent(&name),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: names::agent(&name),
            namespace: cluster.namespace(),
            ..Subject::default()
        }]),
    }
}

/// A node selector term that matches the node named `node` only.
fn node_name_term(node: String) -> NodeSelectorTerm {
    NodeSelectorTerm {
        match_fields: Some(vec![NodeSelectorRequirement {
            key: "metadata.name".to_owned(),
            operator: "In".to_owned(),
            values: Some(vec![node]),
        }]),
        ..NodeSelectorTerm::default()
    }
}

/// The agent DaemonSet: one pod on exactly the member nodes.
pub fn daemon_set(cluster: &FailoverCluster, settings: &AgentSettings) -> DaemonSet {
    let name = cluster.name_any();
    let port = i32::from(cluster.spec.heartbeat.port);
    let mut nodes: Vec<String> = cluster
        .spec
        .members
        .iter()
        .map(|m| m.node.clone())
        .collect();
    nodes.sort();
    nodes.dedup();
    let probe = |path: &str, period: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String("metrics".to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(3),
        ..Probe::default()
    };
    let quantity = |q: &str| Quantity(q.to_owned());
    // Real-time priority: busy cores on a member must not delay heartbeats; SCHED_RR
    // needs CAP_SYS_NICE, granted only when it is asked for.
    let mut capabilities = vec!["NET_ADMIN".to_owned(), "NET_RAW".to_owned()];
    let mut env = vec![EnvVar {
        name: "NODE_NAME".to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "spec.nodeName".to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }];
    if settings.realtime_priority > 0 {
        capabilities.push("SYS_NICE".to_owned());
        env.push(EnvVar {
            name: "FAILOVER_REALTIME_PRIORITY".to_owned(),
            value: Some(settings.realtime_priority.to_string()),
            ..EnvVar::default()
        });
    }
    let container = Container {
        name: "agent".to_owned(),
        image: Some(settings.image.clone()),
        image_pull_policy: Some(settings.pull_policy.clone()),
        // The metrics endpoint shares the heartbeat port number over TCP: with
        // hostNetwork, two clusters on one node need distinct ports, and the heartbeat
        // port is already checked for conflicts between such clusters.
        args: Some(vec![
            "agent".to_owned(),
            "--cluster".to_owned(),
            name.clone(),
            "--namespace".to_owned(),
            cluster.namespace().unwrap_or_default(),
            "--metrics-addr".to_owned(),
            format!("0.0.0.0:{port}"),
        ]),
        env: Some(env),
        ports: Some(vec![
            ContainerPort {
                name: Some("heartbeat".to_owned()),
                container_port: port,
                protocol: Some("UDP".to_owned()),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some("metrics".to_owned()),
                container_port: port,
                protocol: Some("TCP".to_owned()),
                ..ContainerPort::default()
            },
        ]),
        liveness_probe: Some(probe("/healthz", 10)),
        readiness_probe: Some(probe("/readyz", 5)),
        resources: Some(
            settings
                .resources
                .clone()
                .unwrap_or_else(default_agent_resources),
        ),
        // Root in the container, without privilege: Kubernetes grants added
        // capabilities only to the permitted/bounding sets, and a non-root process gets
        // them in its effective set only through file capabilities or ambient
        // capabilities, neither of which a pod spec can set. Root with every
        // capability dropped except NET_ADMIN (addresses), NET_RAW (ARP/NA) and, for
        // real-time priority, SYS_NICE, no privilege escalation and a read-only root
        // filesystem is the smallest grant that works.
        security_context: Some(SecurityContext {
            run_as_user: Some(0),
            run_as_non_root: Some(false),
            privileged: Some(false),
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                add: Some(capabilities),
                drop: Some(vec!["ALL".to_owned()]),
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                ..SeccompProfile::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: "tmp".to_owned(),
            mount_path: "/tmp".to_owned(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    let pod = PodSpec {
        service_account_name: Some(names::agent(&name)),
        host_network: Some(true),
        dns_policy: Some("ClusterFirstWithHostNet".to_owned()),
        termination_grace_period_seconds: Some(
            i64::from(dead_after_seconds(cluster)) + LEAVE_GRACE_SECONDS,
        ),
        // Exactly the member nodes: the same field the DaemonSet controller itself
        // uses to place a pod on a node. The API server takes exactly one value in a
        // `metadata.name` field requirement, so one term per member (terms are ORed).
        affinity: Some(Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: nodes.into_iter().map(node_name_term).collect(),
                }),
                ..NodeAffinity::default()
            }),
            ..Affinity::default()
        }),
        // Tolerate every taint. Safe because the node affinity above already limits
        // the pods to the nodes a person listed as members: listing a node is the
        // decision to run the agent there, whatever its taints (control-plane,
        // dedicated, ...). It also keeps the agent on a NotReady or unreachable node:
        // evicting it would take the node out of the cluster for an API-side reason
        // while its peers can still hear it.
        tolerations: Some(vec![Toleration {
            operator: Some("Exists".to_owned()),
            ..Toleration::default()
        }]),
        containers: vec![container],
        volumes: Some(vec![Volume {
            name: "tmp".to_owned(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(quantity("16Mi")),
                ..EmptyDirVolumeSource::default()
            }),
            ..Volume::default()
        }]),
        ..PodSpec::default()
    };
    DaemonSet {
        metadata: owned_meta(cluster, names::agent(&name), agent_labels(&name)),
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(agent_selector(&name)),
                ..LabelSelector::default()
            },
            // One node at a time: the agent leaves gracefully, its groups move, then
            // the next node restarts.
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(RollingUpdateDaemonSet {
                    max_unavailable: Some(IntOrString::Int(1)),
                    ..RollingUpdateDaemonSet::default()
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(agent_labels(&name)),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DaemonSetSpec::default()
        }),
        ..DaemonSet::default()
    }
}

fn empty_lease(cluster: &FailoverCluster, name: String, group: Option<&str>) -> Lease {
    let mut labels = cluster_labels(&cluster.name_any());
    if let Some(group) = group {
        labels.insert(names::GROUP_LABEL.to_owned(), group.to_owned());
    }
    Lease {
        metadata: owned_meta(cluster, name, labels),
        // No holder: only agents write the holder, by compare-and-swap.
        spec: Some(LeaseSpec {
            lease_duration_seconds: Some(dead_after_seconds(cluster)),
            ..LeaseSpec::default()
        }),
    }
}

/// The node Leases `<cluster>-node-<node>` of every member, as the operator applies
/// them: labels and the owner reference only (garbage collection removes them with
/// the cluster), no spec — the holder, renewals and the report annotations are the
/// agent's, and an apply without them never takes them over or clears them.
pub fn node_leases(cluster: &FailoverCluster) -> Vec<Lease> {
    let name = cluster.name_any();
    cluster
        .spec
        .members
        .iter()
        .map(|m| Lease {
            metadata: owned_meta(
                cluster,
                names::node_lease(&name, &m.node),
                cluster_labels(&name),
            ),
            spec: None,
        })
        .collect()
}

/// The Leases the operator creates (empty): one ledger per group, plus the witness
/// in `witness` mode when no `spec.witness` process replaces the Lease.
pub fn leases(cluster: &FailoverCluster, groups: &[ResourceGroup]) -> Vec<Lease> {
    let name = cluster.name_any();
    let mut leases: Vec<Lease> = groups
        .iter()
        .map(|g| {
            let group = g.name_any();
            empty_lease(cluster, names::group_lease(&name, &group), Some(&group))
        })
        .collect();
    if cluster.spec.uses_witness_lease() {
        leases.push(empty_lease(cluster, names::witness_lease(&name), None));
    }
    leases
}

#[cfg(test)]
mod tests;
