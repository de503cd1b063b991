//! Object names, labels, annotations and data keys of the objects the operator
//! creates and the agent's Kubernetes mode reads and writes (the contract in
//! notes/k8s-contract.md).
//!
//! Owns every string both halves must spell the same way. It must never hold logic
//! beyond formatting a name.

/// Field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "failover-operator";

/// Label on every object the operator or the agents create for a cluster.
pub const CLUSTER_LABEL: &str = "failover.dev/cluster";
/// Label on group Leases: the ResourceGroup the Lease is the ledger of.
pub const GROUP_LABEL: &str = "failover.dev/group";
/// `app.kubernetes.io/name` label key.
pub const APP_LABEL: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/name` value of the agent objects.
pub const APP_AGENT: &str = "failover-agent";
/// `app.kubernetes.io/managed-by` label key.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// ConfigMap data key: the multi-document YAML the agent loads.
pub const CONFIG_KEY: &str = "config.yaml";
/// ConfigMap data key: the config hash, 16 lowercase hex digits.
pub const HASH_KEY: &str = "hash";
/// ConfigMap data key: JSON `{group: value}` of the `failover.dev/clear-failures`
/// annotation of each group that has one (absent when none has), so the agents,
/// which cannot read ResourceGroups, see a new value and clear the failure count.
pub const CLEAR_FAILURES_KEY: &str = "clear-failures.json";
/// ResourceGroup annotation: any new value resets the group's failover count.
pub const CLEAR_FAILURES: &str = crate::api::CLEAR_FAILURES_ANNOTATION;
/// Secret data key: the current heartbeat key.
pub const KEY: &str = "key";
/// Secret data key: the key before the last rotation, kept for the rotation period.
pub const PREVIOUS_KEY: &str = "previousKey";

/// Secret annotation: when the key was generated or rotated (RFC 3339).
pub const ROTATED_AT: &str = "failover.dev/rotated-at";
/// FailoverCluster annotation requesting a key rotation (any new value). The Secret
/// carries the value it last acted on under the same key, so one request rotates once.
pub const ROTATE_KEY: &str = "failover.dev/rotate-key";
/// Node Lease annotation: the config hash the agent runs.
pub const CONFIG_HASH: &str = "failover.dev/config-hash";
/// Node Lease annotation: the agent's view, JSON `{"quorate","alive","held"}`.
pub const VIEW: &str = "failover.dev/view";
/// Node Lease annotation: JSON `{group: {"epoch", "reason", "message", "since"}}` of
/// every group this node runs now: its ownership epoch, the placement reason code and
/// sentence of the transition that made this node the owner, and when (RFC 3339).
/// Written at once on every change, so status follows ownership without waiting for
/// a group Lease (and without one, in `quorum: none`).
pub const OWNED: &str = "failover.dev/owned";
/// Node Lease annotation: JSON `{group: sentence}` why the node is (not) the owner.
pub const EXPLAIN: &str = "failover.dev/explain";
/// Node Lease annotation: JSON `[{"group", "reason", "epoch", "time", "phases"}]`,
/// the last takeovers this node made, newest first, each phase by phase as it timed
/// them (`contract::report::Takeover`); at most a few per group, so it stays small.
pub const TAKEOVERS: &str = "failover.dev/takeovers";
/// Group Lease annotation: placement reason code of the last ownership change.
pub const REASON: &str = "failover.dev/reason";
/// Group Lease annotation: the sentence describing the last ownership change.
pub const MESSAGE: &str = "failover.dev/message";

/// The ClusterConfig ConfigMap.
pub fn config_map(cluster: &str) -> String {
    format!("{cluster}-config")
}

/// The heartbeat key Secret.
pub fn heartbeat_secret(cluster: &str) -> String {
    format!("{cluster}-heartbeat")
}

/// The agent DaemonSet, ServiceAccount, Role and RoleBinding (one name for all four).
pub fn agent(cluster: &str) -> String {
    format!("{cluster}-agent")
}

/// Prefix of the group Leases of a cluster.
pub fn group_lease_prefix(cluster: &str) -> String {
    format!("{cluster}-group-")
}

/// The ownership ledger Lease of a group.
pub fn group_lease(cluster: &str, group: &str) -> String {
    format!("{}{group}", group_lease_prefix(cluster))
}

/// The witness Lease (quorum `witness` only).
pub fn witness_lease(cluster: &str) -> String {
    format!("{cluster}-witness")
}

/// Prefix of the per-node heartbeat Leases of a cluster.
pub fn node_lease_prefix(cluster: &str) -> String {
    format!("{cluster}-node-")
}

/// The per-node heartbeat Lease the agent of `node` renews.
pub fn node_lease(cluster: &str, node: &str) -> String {
    format!("{}{node}", node_lease_prefix(cluster))
}
