//! The public API of failover-operator: the `FailoverCluster` and `ResourceGroup`
//! custom resources (group `failover.dev`, version `v1alpha1`), their validation,
//! the generated CRDs, and the loader for standalone YAML files.
//!
//! Owns the data model of DESIGN.md section 3. It must never talk to an API server
//! or the network; everything here is a pure function of its input, so the operator,
//! the standalone agent and the simulator share it.

pub mod cluster;
pub mod conditions;
pub mod crd;
pub mod docs;
pub mod duration;
pub mod group;
pub mod load;
pub mod validate;

pub use cluster::{
    AnnouncementSpec, FailoverCluster, FailoverClusterSpec, FailoverClusterStatus, HeartbeatSpec,
    LinksDown, MemberSpec, MemberState, MemberStatus, NotificationsSpec, QuarantineSpec,
    QuorumMode, QuorumState, QuorumStatus, SecretKeyRef, WebhookFormat, WebhookSpec, WitnessSpec,
};
pub use crd::{CrdError, crd_file_name, crds, crds_yaml};
pub use duration::{DurationError, KubeDuration};
pub use group::{
    EnvVar, ExecProbe, FailbackPolicy, FailbackSpec, FailbackWindow, FailoverLimitSpec, GroupPhase,
    HealthCheckSpec, HookSpec, HttpProbe, MemberExplanation, PhaseTime, ProcessSpec,
    RECENT_TAKEOVERS, ResourceGroup, ResourceGroupSpec, ResourceGroupStatus, ResourceKind,
    ResourceSpec, ResourceState, ResourceStatus, StatusRange, TakeoverRecord, TcpProbe, Transition,
    VirtualIpSpec, Weekday, WorkloadKind, WorkloadSpec,
};
pub use load::{LoadError, load_documents};
pub use validate::{
    InvalidConfig, Problem, into_result, validate_cluster, validate_config, validate_group,
    validate_heartbeat_ports, validate_kubernetes, validate_member_addresses, validate_standalone,
};

/// API group of the custom resources.
pub const GROUP: &str = "failover.dev";
/// API version of the custom resources.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` field value of the custom resources.
pub const API_VERSION: &str = "failover.dev/v1alpha1";
/// ResourceGroup annotation: any new value resets the group's failover count on
/// every member (Kubernetes mode: the operator passes it on in the ClusterConfig;
/// standalone: read from the group's document in the configuration file).
pub const CLEAR_FAILURES_ANNOTATION: &str = "failover.dev/clear-failures";

#[cfg(test)]
mod tests {
    use kube::Resource;

    use super::*;

    #[test]
    fn constants_match_the_derived_resources() {
        assert_eq!(FailoverCluster::group(&()), GROUP);
        assert_eq!(ResourceGroup::version(&()), VERSION);
        assert_eq!(FailoverCluster::api_version(&()), API_VERSION);
    }
}
