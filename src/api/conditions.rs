//! Condition types and reason strings written into the status of the custom resources,
//! and the reasons of the Events and webhook notifications about them.
//!
//! Owns the vocabulary only: every `type` and `reason` the operator and agents put in a
//! `Condition` or an Event is a constant here, so a typo cannot create a second
//! spelling that dashboards, `kubectl wait --for=condition=...` and Event filters
//! would miss. Ownership reasons are placement's (`placement::Reason::code`), resource
//! reasons the report's (`contract::report::ResourceReason::code`). The `ALL` lists
//! let `tests/docs_truth.rs` hold the docs to this vocabulary. It must never hold
//! logic that decides a condition.

/// Condition type: the cluster (or group) is serving as configured.
pub const READY: &str = "Ready";
/// Condition type: the spec passed validation; `False` names the offending field
/// while the last valid configuration keeps running.
pub const CONFIG_VALID: &str = "ConfigValid";
/// Condition type: serving, but with less redundancy than configured (a member is
/// offline, paused or not synchronized, a heartbeat link is down, or quorum is
/// disabled).
pub const DEGRADED: &str = "Degraded";
/// Condition type: the members cannot form a quorum; owners have fenced themselves.
pub const QUORUM_LOST: &str = "QuorumLost";
/// Condition type: every live member runs the configuration the operator rendered
/// and none is outvoted; `False` names the members that do not.
pub const CONFIG_SYNCHRONIZED: &str = "ConfigSynchronized";
/// Every condition type.
pub const ALL: [&str; 5] = [
    READY,
    CONFIG_VALID,
    DEGRADED,
    QUORUM_LOST,
    CONFIG_SYNCHRONIZED,
];

/// Condition status value `True`.
pub const STATUS_TRUE: &str = "True";
/// Condition status value `False`.
pub const STATUS_FALSE: &str = "False";

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
    /// At least one member has not applied the current configuration.
    pub const CONFIG_NOT_SYNCHRONIZED: &str = "ConfigNotSynchronized";
    /// A live member reports a heartbeat link of a live member that carries none of
    /// its heartbeats (`Degraded`; the member stays alive over its other links).
    pub const HEARTBEAT_LINK_DOWN: &str = "HeartbeatLinkDown";
    /// Every live member runs the configuration the operator rendered
    /// (`ConfigSynchronized`).
    pub const ALL_MEMBERS_SYNCHRONIZED: &str = "AllMembersSynchronized";
    /// A live member runs another configuration than the one the operator rendered
    /// (`ConfigSynchronized`): its agent has not loaded it yet, or cannot.
    pub const CONFIG_MISMATCH: &str = "ConfigMismatch";
    /// A live member's agent reports that a majority of the members runs another
    /// configuration: it keeps its groups and takes no other (`ConfigSynchronized`;
    /// also the Warning Event when a member becomes outvoted).
    pub const CONFIG_OUTVOTED: &str = "ConfigOutvoted";
    /// A majority of voters (or the witness) is reachable.
    pub const QUORATE: &str = "Quorate";
    /// Fewer than a majority of voters is reachable.
    pub const NO_MAJORITY: &str = "NoMajority";
    /// Two-node cluster and the witness (the Lease, or `failover witness` at
    /// `spec.witness`) is held by the other side or unreachable.
    pub const WITNESS_UNAVAILABLE: &str = "WitnessUnavailable";
    /// `spec.quorum` is `none`: split brain is possible.
    pub const QUORUM_DISABLED: &str = "QuorumDisabled";
    /// The group is online on its owner (group `Ready`).
    pub const ONLINE: &str = "Online";
    /// The group is being brought online on its owner (group `Ready`).
    pub const MOVING: &str = "Moving";
    /// The group hit `spec.failoverLimit` and stays Failed until a person acts.
    pub const FAILOVER_LIMIT_REACHED: &str = "FailoverLimitReached";
    /// No member is eligible to own the group.
    pub const NO_ELIGIBLE_MEMBER: &str = "NoEligibleMember";

    /// Every condition reason.
    pub const ALL: [&str; 20] = [
        VALID,
        INVALID_SPEC,
        CLUSTER_NOT_FOUND,
        HEARTBEAT_PORT_CONFLICT,
        ALL_MEMBERS_ONLINE,
        MEMBER_OFFLINE,
        MEMBER_PAUSED,
        CONFIG_NOT_SYNCHRONIZED,
        HEARTBEAT_LINK_DOWN,
        ALL_MEMBERS_SYNCHRONIZED,
        CONFIG_MISMATCH,
        CONFIG_OUTVOTED,
        QUORATE,
        NO_MAJORITY,
        WITNESS_UNAVAILABLE,
        QUORUM_DISABLED,
        ONLINE,
        MOVING,
        FAILOVER_LIMIT_REACHED,
        NO_ELIGIBLE_MEMBER,
    ];
}

/// Event reasons. The operator's Events are about the FailoverCluster (members,
/// quorum, configuration) and the ResourceGroup (owner changes); the agents' are
/// about the FailoverCluster (what the node did).
pub mod event {
    /// An automatic failover: the owner was lost, its VIPs' interface went down or a
    /// resource failed on it (a Warning).
    pub const FAILOVER: &str = "Failover";
    /// A better member took the group back under the failback policy.
    pub const FAILBACK: &str = "Failback";
    /// Any other change of owner: a manual move, the hand-over of a paused or leaving
    /// owner.
    pub const MOVED: &str = "Moved";
    /// A group without an owner got one.
    pub const PLACED: &str = "Placed";
    /// An agent stopped a group because its votes were about to lapse (a Warning).
    pub const FENCED: &str = "Fenced";
    /// Quorum was lost (a Warning).
    pub const QUORUM_LOST: &str = "QuorumLost";
    /// Quorum is back.
    pub const QUORUM_REGAINED: &str = "QuorumRegained";
    /// A member stopped reporting (a Warning).
    pub const MEMBER_DOWN: &str = "MemberDown";
    /// A member reports again.
    pub const MEMBER_UP: &str = "MemberUp";
    /// The spec failed validation (a Warning).
    pub const CONFIG_REJECTED: &str = "ConfigRejected";
    /// A member became outvoted: a majority runs another configuration, it takes
    /// no new group (a Warning; also the `ConfigSynchronized` reason).
    pub use super::reason::CONFIG_OUTVOTED;
    /// A member is no longer outvoted: it takes groups again.
    pub const CONFIG_OUTVOTE_ENDED: &str = "ConfigOutvoteEnded";
    /// A heartbeat link of a live member went down, as a live member reports it (a
    /// Warning; also the `Degraded` reason).
    pub use super::reason::HEARTBEAT_LINK_DOWN;
    /// Every heartbeat link of a live member carries its heartbeats again.
    pub const HEARTBEAT_LINK_UP: &str = "HeartbeatLinkUp";
    /// A health check of a group failed on its owner, which restarted what it
    /// checks in place (a Warning; also the resource's reason).
    pub const HEALTH_CHECK_FAILED: &str = "HealthCheckFailed";
    /// A process resource exited on the owner, which restarted it in place (a
    /// Warning; also the resource's reason).
    pub const PROCESS_EXITED: &str = "ProcessExited";
    /// A resource failed again past its `restartLimit`: the group fails over (a
    /// Warning; also the resource's reason).
    pub const RESTART_LIMIT_REACHED: &str = "RestartLimitReached";
    /// Every Event reason.
    pub const ALL: [&str; 17] = [
        FAILOVER,
        FAILBACK,
        MOVED,
        PLACED,
        FENCED,
        QUORUM_LOST,
        QUORUM_REGAINED,
        MEMBER_DOWN,
        MEMBER_UP,
        CONFIG_REJECTED,
        CONFIG_OUTVOTED,
        CONFIG_OUTVOTE_ENDED,
        HEARTBEAT_LINK_DOWN,
        HEARTBEAT_LINK_UP,
        HEALTH_CHECK_FAILED,
        PROCESS_EXITED,
        RESTART_LIMIT_REACHED,
    ];
}

/// The `event` of a webhook notification: the Event reasons a person hears about,
/// and two the group's phase gives.
pub mod webhook {
    pub use super::event::{FAILBACK, FAILOVER, MOVED, QUORUM_LOST, QUORUM_REGAINED};
    /// The group went to phase `Failed` (failover limit reached).
    pub const GROUP_FAILED: &str = "GroupFailed";
    /// The group lost its owner without going `Failed`.
    pub const GROUP_OFFLINE: &str = "GroupOffline";
    /// Every webhook event.
    pub const ALL: [&str; 7] = [
        FAILOVER,
        FAILBACK,
        MOVED,
        GROUP_FAILED,
        GROUP_OFFLINE,
        QUORUM_LOST,
        QUORUM_REGAINED,
    ];
}
