//! Condition types and reason strings written into the status of the custom resources.
//!
//! Owns the vocabulary only: every `type` and `reason` the operator and agents put in a
//! `Condition` is a constant here, so a typo cannot create a second spelling that
//! dashboards and `kubectl wait --for=condition=...` would miss. It must never hold
//! logic that decides a condition.

/// Condition type: the cluster (or group) is serving as configured.
pub const READY: &str = "Ready";
/// Condition type: the spec passed validation; `False` names the offending field
/// while the last valid configuration keeps running.
pub const CONFIG_VALID: &str = "ConfigValid";
/// Condition type: serving, but with less redundancy than configured (a member is
/// offline, paused or quarantined, or quorum is disabled).
pub const DEGRADED: &str = "Degraded";
/// Condition type: the members cannot form a quorum; owners have fenced themselves.
pub const QUORUM_LOST: &str = "QuorumLost";

/// Condition status value `True`.
pub const STATUS_TRUE: &str = "True";
/// Condition status value `False`.
pub const STATUS_FALSE: &str = "False";
/// Condition status value `Unknown`.
pub const STATUS_UNKNOWN: &str = "Unknown";

/// Reasons, in CamelCase as the Kubernetes API conventions require.
pub mod reason {
    /// The spec validated.
    pub const VALID: &str = "Valid";
    /// The spec failed validation (the message names the field).
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// The group's `spec.cluster` names a FailoverCluster that does not exist.
    pub const CLUSTER_NOT_FOUND: &str = "ClusterNotFound";
    /// Two clusters sharing a node use the same heartbeat port.
    pub const HEARTBEAT_PORT_CONFLICT: &str = "HeartbeatPortConflict";
    /// Every member is online and synchronized.
    pub const ALL_MEMBERS_ONLINE: &str = "AllMembersOnline";
    /// At least one member is offline.
    pub const MEMBER_OFFLINE: &str = "MemberOffline";
    /// At least one member is paused (maintenance).
    pub const MEMBER_PAUSED: &str = "MemberPaused";
    /// At least one member is quarantined for flapping.
    pub const MEMBER_QUARANTINED: &str = "MemberQuarantined";
    /// At least one member has not applied the current configuration.
    pub const CONFIG_NOT_SYNCHRONIZED: &str = "ConfigNotSynchronized";
    /// A majority of voters (or the witness) is reachable.
    pub const QUORATE: &str = "Quorate";
    /// Fewer than a majority of voters is reachable.
    pub const NO_MAJORITY: &str = "NoMajority";
    /// Two-node cluster and the witness Lease is held by the other side or unreachable.
    pub const WITNESS_UNAVAILABLE: &str = "WitnessUnavailable";
    /// `spec.quorum` is `none`: split brain is possible.
    pub const QUORUM_DISABLED: &str = "QuorumDisabled";
    /// The group's owner was confirmed dead by a majority and a successor took over.
    pub const OWNER_FAILED: &str = "OwnerFailed";
    /// The owner left gracefully (pause, drain, upgrade) and handed the group over.
    pub const OWNER_LEFT: &str = "OwnerLeft";
    /// A resource health check exhausted its local restarts.
    pub const HEALTH_CHECK_FAILED: &str = "HealthCheckFailed";
    /// A better node returned and the failback policy allowed moving back.
    pub const FAILBACK: &str = "Failback";
    /// A person moved the group with `spec.owner`.
    pub const MANUAL_MOVE: &str = "ManualMove";
    /// The group hit `spec.failoverLimit` and stays Failed until a person acts.
    pub const FAILOVER_LIMIT_REACHED: &str = "FailoverLimitReached";
    /// No member is eligible to own the group.
    pub const NO_ELIGIBLE_MEMBER: &str = "NoEligibleMember";
}
