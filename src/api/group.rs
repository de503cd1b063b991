//! The `ResourceGroup` custom resource: what one node at a time owns (virtual IPs,
//! a pinned workload, health checks), in which order it starts, and how it fails
//! over and back.
//!
//! Owns the wire shape (serde + JSON schema + CEL rules the API server enforces),
//! the defaults (durations are [`KubeDuration`]s, parsed when the object is
//! deserialized), and typed accessors. It must never decide placement, and does no IO.

use ipnet::IpNet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::KubeDuration;

/// Pattern of a resource name (a DNS-1123 label, so it can appear in object names).
pub const RESOURCE_NAME_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// Pattern of a `HH:MM` time of day.
pub const TIME_OF_DAY_PATTERN: &str = "^([01][0-9]|2[0-3]):[0-5][0-9]$";
/// Pattern of an IANA time zone name ("UTC", "Europe/Berlin", "America/Argentina/Salta").
pub const TIME_ZONE_PATTERN: &str = "^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$";
/// Pattern of a Linux interface name (at most 15 bytes, no `/`, `:` or whitespace).
pub const INTERFACE_PATTERN: &str = "^[^/:\\s]{1,15}$";
/// Most resources in one group.
pub const MAX_RESOURCES: usize = 64;
/// Pattern of an environment variable name (as Kubernetes containers accept them).
pub const ENV_NAME_PATTERN: &str = "^[-._a-zA-Z][-._a-zA-Z0-9]*$";

/// Desired state of a resource group: a set of resources that one member of a
/// FailoverCluster owns at a time.
// The typed `printcolumn(...)` lists repeat keys such as `type_`, which clippy's
// duplicated_attributes lint mistakes for repeated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "failover.dev",
    version = "v1alpha1",
    kind = "ResourceGroup",
    namespaced,
    status = "ResourceGroupStatus",
    shortname = "rg",
    category = "failover",
    doc = "Virtual IPs, a pinned workload and health checks that one member of a FailoverCluster owns at a time, with ordered failover and failback.",
    derive = "PartialEq",
    // The name is the value of the `failover.dev/group` label of the group's Lease,
    // and a label value has at most 63 characters.
    validation = Rule::new("size(self.metadata.name) <= 63").message("metadata.name: at most 63 characters (it is the value of the failover.dev/group label)"),
    printcolumn(
        name = "Cluster",
        type_ = "string",
        description = "FailoverCluster the group runs on",
        json_path = ".spec.cluster"
    ),
    printcolumn(
        name = "Owner",
        type_ = "string",
        description = "Node that owns the group",
        json_path = ".status.owner"
    ),
    printcolumn(
        name = "Phase",
        type_ = "string",
        description = "Online, Pending, Moving or Failed",
        json_path = ".status.phase"
    ),
    printcolumn(
        name = "Epoch",
        type_ = "integer",
        description = "Ownership epoch, raised on every change of owner",
        json_path = ".status.epoch"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ResourceGroupSpec {
    /// Name of the FailoverCluster (same namespace) whose members run this group.
    #[schemars(length(min = 1, max = 253))]
    pub cluster: String,
    /// Ordered list of member nodes that may own the group, best first: failover
    /// cascades down the list. Empty means every member, by priority then name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub preferred_owners: Vec<String>,
    /// Manual move: pin the group to this member node. The current owner hands it
    /// over gracefully. Remove the field to return to automatic placement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Whether the group moves back when a better node returns.
    #[serde(default)]
    pub failback: FailbackSpec,
    /// At most `maxFailovers` failovers within `period`; one more and the group
    /// stays Failed until a person acts (or the period expires).
    #[serde(default)]
    pub failover_limit: FailoverLimitSpec,
    /// The resources of the group, 1 to 64, with unique names. They come online in
    /// dependency order and go offline in reverse.
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub resources: Vec<ResourceSpec>,
    /// A command run on each node where the group changes state (became owner,
    /// released, fenced, failed), with `FAILOVER_CLUSTER`, `FAILOVER_GROUP`,
    /// `FAILOVER_NODE`, `FAILOVER_TRANSITION`, `FAILOVER_REASON` and
    /// `FAILOVER_EPOCH` in its environment, killed after `timeout`. Runs off the
    /// heartbeat path, one transition after another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<HookSpec>,
}

/// A transition hook.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HookSpec {
    /// Program and arguments, e.g. `["/usr/local/bin/notify", "--quiet"]`; the
    /// program is looked up in the agent's `PATH`.
    #[schemars(length(min = 1, max = 64))]
    pub command: Vec<String>,
    /// How long one run may take before its process group is killed (default `30s`).
    #[serde(default = "default_hook_timeout")]
    pub timeout: KubeDuration,
}

fn default_hook_timeout() -> KubeDuration {
    KubeDuration::from_secs(30)
}

/// Failback policy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.policy != 'Window' || (has(self.windows) && size(self.windows) > 0)").message("policy Window needs at least one entry in windows").field_path(".windows"))]
#[serde(rename_all = "camelCase")]
pub struct FailbackSpec {
    /// `Never` (default: a group stays where it failed over to), `Immediate` (move
    /// back once the better node has been stable for `stabilizeFor`) or `Window`
    /// (move back only inside one of `windows`).
    #[serde(default)]
    pub policy: FailbackPolicy,
    /// How long a returning better node must stay online before the group moves
    /// back to it (default `30s`).
    #[serde(default = "default_stabilize_for")]
    pub stabilize_for: KubeDuration,
    /// Daily time windows in which failback may happen (policy `Window`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub windows: Vec<FailbackWindow>,
    /// IANA time zone the windows are written in, e.g. `Europe/Berlin` (default `UTC`).
    #[serde(default = "default_time_zone")]
    #[schemars(length(min = 1, max = 64), regex(pattern = TIME_ZONE_PATTERN))]
    pub time_zone: String,
}

fn default_stabilize_for() -> KubeDuration {
    KubeDuration::from_secs(30)
}
fn default_time_zone() -> String {
    "UTC".to_owned()
}

impl Default for FailbackSpec {
    fn default() -> Self {
        Self {
            policy: FailbackPolicy::default(),
            stabilize_for: default_stabilize_for(),
            windows: Vec::new(),
            time_zone: default_time_zone(),
        }
    }
}

/// When a group returns to a better node.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum FailbackPolicy {
    /// Never move back automatically.
    #[default]
    Never,
    /// Move back after the better node has been stable for `stabilizeFor`.
    Immediate,
    /// Move back only inside a configured time window.
    Window,
}

/// A daily time window, `start` inclusive to `end` exclusive; a window whose end is
/// before its start runs over midnight.
// `start` and `end` carry a maxLength so the API server's CEL cost estimate for the
// comparison below stays small.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.start != self.end").message("end must differ from start (an empty window never opens)").field_path(".end"))]
#[serde(rename_all = "camelCase")]
pub struct FailbackWindow {
    /// Start time of day, `HH:MM` (24-hour clock).
    #[schemars(length(max = 5), regex(pattern = TIME_OF_DAY_PATTERN))]
    pub start: String,
    /// End time of day, `HH:MM` (24-hour clock).
    #[schemars(length(max = 5), regex(pattern = TIME_OF_DAY_PATTERN))]
    pub end: String,
    /// Days on which the window opens (by its start); empty means every day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 7))]
    pub days: Vec<Weekday>,
}

impl FailbackWindow {
    /// The parsed start as minutes after midnight.
    pub fn start_minute(&self) -> Result<u16, TimeOfDayError> {
        parse_time_of_day(&self.start)
    }
    /// The parsed end as minutes after midnight.
    pub fn end_minute(&self) -> Result<u16, TimeOfDayError> {
        parse_time_of_day(&self.end)
    }
}

/// A malformed `HH:MM` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid time of day {0:?}: expected HH:MM from 00:00 to 23:59")]
pub struct TimeOfDayError(pub String);

/// Parses `HH:MM` into minutes after midnight.
pub fn parse_time_of_day(text: &str) -> Result<u16, TimeOfDayError> {
    let err = || TimeOfDayError(text.to_owned());
    let (h, m) = text.split_once(':').ok_or_else(err)?;
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(h) || !two_digits(m) {
        return Err(err());
    }
    let h: u16 = h.parse().map_err(|_| err())?;
    let m: u16 = m.parse().map_err(|_| err())?;
    if h > 23 || m > 59 {
        return Err(err());
    }
    Ok(h * 60 + m)
}

/// Day of the week.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

/// Failover budget.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FailoverLimitSpec {
    /// Failovers allowed within `period` (default 3); the next failure leaves the
    /// group Failed. 0 means no automatic failover at all.
    #[serde(default = "default_max_failovers")]
    pub max_failovers: u32,
    /// Window in which failovers are counted (default `1h`); older ones expire.
    #[serde(default = "default_limit_period")]
    pub period: KubeDuration,
}

fn default_max_failovers() -> u32 {
    3
}
fn default_limit_period() -> KubeDuration {
    KubeDuration::from_secs(3_600)
}

impl Default for FailoverLimitSpec {
    fn default() -> Self {
        Self {
            max_failovers: default_max_failovers(),
            period: default_limit_period(),
        }
    }
}

/// One resource of a group: exactly one of `virtualIP`, `workload`, `process`,
/// `healthCheck`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("(has(self.virtualIP) ? 1 : 0) + (has(self.workload) ? 1 : 0) + (has(self.process) ? 1 : 0) + (has(self.healthCheck) ? 1 : 0) == 1").message("set exactly one of virtualIP, workload, process, healthCheck"))]
#[serde(rename_all = "camelCase")]
pub struct ResourceSpec {
    /// Name of the resource, unique in the group (lowercase letters, digits, `-`).
    #[schemars(length(min = 1, max = 63), regex(pattern = RESOURCE_NAME_PATTERN))]
    pub name: String,
    /// A virtual IP address the owner adds to its interface and announces.
    #[serde(default, rename = "virtualIP", skip_serializing_if = "Option::is_none")]
    pub virtual_ip: Option<VirtualIpSpec>,
    /// A Deployment or StatefulSet pinned to the owner node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadSpec>,
    /// A command the owner's agent starts, watches and stops (standalone clusters
    /// only; in Kubernetes use a workload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessSpec>,
    /// A probe the owner's agent runs; after `restartLimit` failed local restarts of
    /// the group the group fails over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckSpec>,
    /// Names of resources in this group that must be online before this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub depends_on: Vec<String>,
}

/// What kind of resource a [`ResourceSpec`] is, when exactly one kind is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ResourceKind<'a> {
    /// A virtual IP.
    VirtualIp(&'a VirtualIpSpec),
    /// A pinned workload.
    Workload(&'a WorkloadSpec),
    /// A supervised process.
    Process(&'a ProcessSpec),
    /// A health check.
    HealthCheck(&'a HealthCheckSpec),
}

impl ResourceSpec {
    /// The resource's kind, or `None` unless exactly one kind is set.
    pub fn kind(&self) -> Option<ResourceKind<'_>> {
        match (
            &self.virtual_ip,
            &self.workload,
            &self.process,
            &self.health_check,
        ) {
            (Some(v), None, None, None) => Some(ResourceKind::VirtualIp(v)),
            (None, Some(w), None, None) => Some(ResourceKind::Workload(w)),
            (None, None, Some(p), None) => Some(ResourceKind::Process(p)),
            (None, None, None, Some(h)) => Some(ResourceKind::HealthCheck(h)),
            _ => None,
        }
    }
}

/// A virtual IP address.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VirtualIpSpec {
    /// Address with prefix length, IPv4 (`10.77.0.100/24`) or IPv6 (`fd77::100/64`).
    #[schemars(length(min = 1, max = 49))]
    #[x_kube(validation = Rule::new("isCIDR(self)").message("address must be a CIDR such as 10.0.0.10/24 or fd00::10/64"))]
    pub address: String,
    /// Interface to add the address to. Default: the interface whose subnet
    /// contains the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = INTERFACE_PATTERN))]
    pub interface: Option<String>,
}

impl VirtualIpSpec {
    /// The parsed address with its prefix length.
    pub fn network(&self) -> Result<IpNet, ipnet::AddrParseError> {
        self.address.parse()
    }
}

/// A workload pinned to the owner node.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSpec {
    /// `Deployment` or `StatefulSet`.
    pub kind: WorkloadKind,
    /// Name of the workload in the group's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Kind of pinned workload.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    /// An apps/v1 Deployment.
    Deployment,
    /// An apps/v1 StatefulSet.
    StatefulSet,
}

/// A process the owner's agent runs (standalone clusters only).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProcessSpec {
    /// Program and its first arguments, e.g. `["/usr/sbin/nginx", "-g", "daemon off;"]`;
    /// the program is looked up in the agent's `PATH`.
    #[schemars(length(min = 1, max = 64))]
    pub command: Vec<String>,
    /// Further arguments, appended to `command`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub args: Vec<String>,
    /// Environment variables set on top of the agent's own environment, which the
    /// process inherits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub env: Vec<EnvVar>,
    /// Absolute working directory (default: the agent's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096), regex(pattern = "^/"))]
    pub working_dir: Option<String>,
    /// How long the process may take to exit after SIGTERM before it is killed with
    /// SIGKILL (default `400ms`). At most half of the cluster's `deadAfter`: the
    /// stop is a step of the agent's event loop, which sends no heartbeat
    /// meanwhile, so a longer grace is cut to that (with a warning at load).
    #[serde(default = "default_stop_grace_period")]
    pub stop_grace_period: KubeDuration,
    /// Restarts in place after the process exited by itself, within
    /// `restartPeriod`, before the group fails over (default 1; 0: fail over at
    /// the first exit).
    #[serde(default = "default_restart_limit")]
    pub restart_limit: u32,
    /// The window `restartLimit` counts in (default `10m`).
    #[serde(default = "default_restart_period")]
    pub restart_period: KubeDuration,
}

fn default_stop_grace_period() -> KubeDuration {
    KubeDuration::from_millis(400)
}

fn default_restart_period() -> KubeDuration {
    KubeDuration::from_secs(600)
}

/// An environment variable.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    /// Name of the variable (letters, digits, `_`, `-`, `.`; not starting with a digit).
    #[schemars(length(min = 1, max = 256), regex(pattern = ENV_NAME_PATTERN))]
    pub name: String,
    /// Value of the variable.
    #[serde(default)]
    pub value: String,
}

/// A health check run by the owner's agent: exactly one of `tcp`, `http`, `exec`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(
    validation = Rule::new("(has(self.tcp) ? 1 : 0) + (has(self.http) ? 1 : 0) + (has(self.exec) ? 1 : 0) == 1").message("set exactly one of tcp, http, exec"),
    validation = Rule::new("duration(self.timeout) <= duration(self.interval)").message("timeout must not exceed interval").field_path(".timeout")
)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckSpec {
    /// Succeeds when a TCP connection opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpProbe>,
    /// Succeeds on an HTTP status in `statusRange` (default 200 to 399).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpProbe>,
    /// Succeeds when a command exits 0; it is killed when it overruns `timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecProbe>,
    /// How often the probe runs (default `1s`).
    #[serde(default = "default_probe_interval")]
    pub interval: KubeDuration,
    /// How long one probe may take (default `500ms`, at most `interval`).
    #[serde(default = "default_probe_timeout")]
    pub timeout: KubeDuration,
    /// Restarts in place of what the check depends on (`dependsOn`; without it,
    /// the group's other resources) after the check failed, within
    /// `restartPeriod`, before the group fails over (default 1; 0: fail over at
    /// the first failure).
    #[serde(default = "default_restart_limit")]
    pub restart_limit: u32,
    /// The window `restartLimit` counts in (default `10m`).
    #[serde(default = "default_restart_period")]
    pub restart_period: KubeDuration,
    /// Failed probes in a row that make the check fail (default 3, at least 1).
    #[serde(default = "default_failure_threshold")]
    #[schemars(range(min = 1))]
    pub failure_threshold: u32,
}

fn default_failure_threshold() -> u32 {
    3
}

fn default_probe_interval() -> KubeDuration {
    KubeDuration::from_secs(1)
}
fn default_probe_timeout() -> KubeDuration {
    KubeDuration::from_millis(500)
}
fn default_restart_limit() -> u32 {
    1
}

/// A TCP connect probe.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TcpProbe {
    /// Port to connect to.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// Host to connect to (default: the group's first virtual IP, else localhost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// An HTTP GET probe.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpProbe {
    /// Port to connect to.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// Host to connect to (default: the group's first virtual IP, else localhost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Path to request (default `/`).
    #[serde(default = "default_http_path")]
    #[schemars(regex(pattern = "^/"))]
    pub path: String,
    /// HTTP statuses that count as healthy (default 200 to 399). Accepted and
    /// validated; the agent does not run it yet.
    #[serde(default)]
    pub status_range: StatusRange,
}

fn default_http_path() -> String {
    "/".to_owned()
}

/// An inclusive range of HTTP statuses.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("self.min <= self.max").message("min must not exceed max").field_path(".max"))]
#[serde(rename_all = "camelCase")]
pub struct StatusRange {
    /// Lowest healthy status (default 200).
    #[serde(default = "default_status_min")]
    #[schemars(range(min = 100, max = 599))]
    pub min: u16,
    /// Highest healthy status (default 399).
    #[serde(default = "default_status_max")]
    #[schemars(range(min = 100, max = 599))]
    pub max: u16,
}

fn default_status_min() -> u16 {
    200
}
fn default_status_max() -> u16 {
    399
}

impl Default for StatusRange {
    fn default() -> Self {
        Self {
            min: default_status_min(),
            max: default_status_max(),
        }
    }
}

/// A command probe.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExecProbe {
    /// Program and arguments, e.g. `["pg_isready", "-q"]`; exit code 0 is healthy.
    #[schemars(length(min = 1, max = 64))]
    pub command: Vec<String>,
}

/// Observed state of a resource group.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ResourceGroupStatus {
    /// Node that owns the group now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Ownership epoch (the group Lease's transition count); raised on every change
    /// of owner, so a stale owner can be told apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// Online, Pending, Moving or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<GroupPhase>,
    /// State of each resource on the owner.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub resources: Vec<ResourceStatus>,
    /// Why the group last changed owner or phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition: Option<Transition>,
    /// Failovers counted against `spec.failoverLimit` in the current period, as the
    /// members report them.
    #[serde(default)]
    pub failovers: u32,
    /// For each member: whether it could own the group and why (not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["node".into()]))]
    pub members: Vec<MemberExplanation>,
    /// The last takeovers of the group, newest first (at most
    /// [`RECENT_TAKEOVERS`]), each phase by phase as the new owner timed it and
    /// reported it in its node Lease.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    pub recent_takeovers: Vec<TakeoverRecord>,
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready (the group runs on its owner), ConfigValid (the spec can run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// Lifecycle phase of a group.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupPhase {
    /// All resources are online on the owner.
    Online,
    /// Waiting for an eligible, quorate owner.
    Pending,
    /// Being handed over between nodes.
    Moving,
    /// The failover limit was reached: no member runs the group until the count
    /// expires or a person clears it.
    Failed,
}

/// State of one resource.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    /// Resource name from the spec.
    pub name: String,
    /// Online, Starting, Stopping, Offline or Failed.
    pub state: ResourceState,
    /// The reason code of its state, then the sentence if any, e.g.
    /// `StartTimedOut: start took longer than 500ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Local restarts used on the current owner.
    #[serde(default)]
    pub restarts: u32,
}

/// State of a resource on the owner.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResourceState {
    /// Up and healthy.
    Online,
    /// Coming up (waiting for dependencies or for the first successful probe).
    Starting,
    /// Going down.
    Stopping,
    /// Down.
    Offline,
    /// Down after failing.
    Failed,
}

/// A recorded transition.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    /// Placement's reason code, e.g. `OwnerLost`, `ManualMove`, `Failback`.
    pub reason: String,
    /// What happened, for a person.
    pub message: String,
    /// When it happened.
    pub time: Time,
}

/// How many takeovers `status.recentTakeovers` keeps.
pub const RECENT_TAKEOVERS: usize = 5;

/// One takeover of a group, as the node that took it timed it.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TakeoverRecord {
    /// Node that took the group.
    pub node: String,
    /// Why the group moved (the same reason codes as `lastTransition.reason`).
    pub reason: String,
    /// Ownership epoch the node took the group at.
    pub epoch: u64,
    /// When the takeover began: when the node detected the failure it answers (no
    /// heartbeat from a peer within `deadAfter`, or the peer left), or, without
    /// one (a planned move, a failback, a first placement), when placement chose
    /// the node.
    pub time: Time,
    /// Each phase reached, in order, with the milliseconds since `time`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<PhaseTime>,
}

/// A phase of a takeover and when it was reached.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PhaseTime {
    /// The phase: `decided` (placement chose the node), `ledger` (a majority
    /// voted for it), `vip_up` (its VIPs are on the interface), `arp_sent` (the
    /// first gratuitous ARP / unsolicited NA left) or `online` (every resource of
    /// the group is online); a group without VIPs has no `vip_up` nor `arp_sent`.
    pub phase: String,
    /// Milliseconds since the takeover began (to the microsecond).
    pub ms: f64,
}

/// Why a member is or is not the owner.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MemberExplanation {
    /// Node name of the member.
    pub node: String,
    /// Whether the member could own the group now.
    pub eligible: bool,
    /// Why, as the member's agent explains it (e.g. "b cannot own web: it is
    /// paused"), or "offline" / "no report from its agent yet".
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn omitted_blocks_get_the_same_defaults_as_their_fields() {
        let empty = serde_json::json!({});
        assert_eq!(
            serde_json::from_value::<FailbackSpec>(empty.clone()).unwrap(),
            FailbackSpec::default()
        );
        assert_eq!(
            serde_json::from_value::<FailoverLimitSpec>(empty).unwrap(),
            FailoverLimitSpec::default()
        );
    }

    #[test]
    fn time_of_day() {
        assert_eq!(parse_time_of_day("00:00"), Ok(0));
        assert_eq!(parse_time_of_day("23:59"), Ok(23 * 60 + 59));
        assert_eq!(parse_time_of_day("02:30"), Ok(150));
        for bad in ["24:00", "2:30", "02:60", "0230", "02:3x", "+2:30", ""] {
            assert_eq!(
                parse_time_of_day(bad),
                Err(TimeOfDayError(bad.to_owned())),
                "{bad}"
            );
        }
        let window = FailbackWindow {
            start: "22:00".into(),
            end: "02:00".into(),
            days: vec![Weekday::Fri],
        };
        assert_eq!(window.start_minute(), Ok(1320));
        assert_eq!(window.end_minute(), Ok(120));
    }

    #[test]
    fn resource_kind_requires_exactly_one() {
        let mut res: ResourceSpec = serde_json::from_value(serde_json::json!({
            "name": "vip",
            "virtualIP": {"address": "fd77::100/64"},
        }))
        .unwrap();
        let Some(ResourceKind::VirtualIp(vip)) = res.kind() else {
            panic!("{res:?}");
        };
        assert_eq!(vip.network().unwrap().prefix_len(), 64);
        res.workload = Some(WorkloadSpec {
            kind: WorkloadKind::Deployment,
            name: "x".into(),
        });
        assert_eq!(res.kind(), None);
        res.virtual_ip = None;
        assert!(matches!(res.kind(), Some(ResourceKind::Workload(_))));
    }

    #[test]
    fn field_names_on_the_wire() {
        let res: ResourceSpec = serde_json::from_value(serde_json::json!({
            "name": "check",
            "healthCheck": {"http": {"port": 8080}},
            "dependsOn": ["vip"],
        }))
        .unwrap();
        let hc = res.health_check.as_ref().unwrap();
        assert_eq!(hc.http.as_ref().unwrap().path, "/");
        assert_eq!(hc.interval.get(), Duration::from_secs(1));
        assert_eq!(hc.timeout.get(), Duration::from_millis(500));
        assert_eq!(hc.restart_limit, 1);
        let wire = serde_json::to_value(&res).unwrap();
        assert_eq!(wire["dependsOn"][0], "vip");
        assert_eq!(wire["healthCheck"]["restartLimit"], 1);
    }
}
