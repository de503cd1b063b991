//! The `FailoverCluster` custom resource: which nodes form a cluster and how they
//! watch each other.
//!
//! Owns the wire shape (serde + JSON schema + CEL rules the API server enforces)
//! and the defaults. Durations are [`KubeDuration`]s, parsed when the object is
//! deserialized. It must never decide anything about membership or placement, and
//! does no IO.

use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::KubeDuration;

/// Desired state of a failover cluster: its members, heartbeat timing and quorum rule.
// The typed `printcolumn(...)` lists repeat keys such as `type_`, which clippy's
// duplicated_attributes lint mistakes for repeated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "failover.dev",
    version = "v1alpha1",
    kind = "FailoverCluster",
    namespaced,
    status = "FailoverClusterStatus",
    shortname = "fc",
    category = "failover",
    doc = "A set of Kubernetes nodes that own resource groups one node at a time and fail them over to each other in well under a second.",
    derive = "PartialEq",
    // The name is the value of the `failover.dev/cluster` label on every object the
    // operator renders, and a label value has at most 63 characters. (That a member's
    // node Lease `<cluster>-node-<node>` stays within 253 characters is checked by the
    // operator's validation: it sets ConfigValid=False and renders nothing.)
    validation = Rule::new("size(self.metadata.name) <= 63").message("metadata.name: at most 63 characters (it is the value of the failover.dev/cluster label)"),
    printcolumn(
        name = "Members",
        type_ = "integer",
        description = "Number of members",
        json_path = ".status.memberCount"
    ),
    printcolumn(
        name = "Online",
        type_ = "integer",
        description = "Members online",
        json_path = ".status.onlineCount"
    ),
    printcolumn(
        name = "Quorum",
        type_ = "string",
        description = "Quorum state",
        json_path = ".status.quorum.state"
    ),
    printcolumn(
        name = "Synced",
        type_ = "integer",
        description = "Members running the current configuration",
        json_path = ".status.syncedCount"
    ),
    // `-o wide`: why the configuration is not synchronized, why it is degraded.
    printcolumn(
        name = "Config",
        type_ = "string",
        description = "Reason of the ConfigSynchronized condition",
        json_path = ".status.conditions[?(@.type==\"ConfigSynchronized\")].reason",
        priority = 1
    ),
    printcolumn(
        name = "Degraded",
        type_ = "string",
        description = "Reason of the Degraded condition",
        json_path = ".status.conditions[?(@.type==\"Degraded\")].reason",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new("!has(self.quorum) || self.quorum == 'none' || size(self.members) >= 2").message("at least 2 voting members are needed unless spec.quorum is none").field_path(".members"),
    validation = Rule::new("!has(self.quorum) || self.quorum != 'witness' || size(self.members) == 2").message("quorum witness needs exactly 2 voting members").field_path(".quorum"),
    // Two votes of two: a survivor never has a majority, so the cluster can never fail over.
    validation = Rule::new("!has(self.quorum) || self.quorum != 'majority' || size(self.members) != 2").message("spec.quorum majority of 2 members can never fail over (a survivor has 1 vote of 2): use witness, 3 or more members, or none").field_path(".quorum"),
    // Link i of a member pairs with link i of every other member.
    validation = Rule::new("size(self.members) == 0 || self.members.all(m, (has(m.additionalAddresses) ? size(m.additionalAddresses) : 0) == (has(self.members[0].additionalAddresses) ? size(self.members[0].additionalAddresses) : 0))").message("every member must list the same number of additionalAddresses (link i of a member pairs with link i of every other member)").field_path(".members"),
    validation = Rule::new("!has(self.witness) || (has(self.quorum) && self.quorum == 'witness')").message("spec.witness is only used with spec.quorum witness").field_path(".witness")
)]
#[serde(rename_all = "camelCase")]
pub struct FailoverClusterSpec {
    /// The nodes of the cluster, 1 to 64. Every member is a voter, paused or not.
    /// Node names must be unique.
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["node".into()]))]
    pub members: Vec<MemberSpec>,
    /// How members watch each other (UDP heartbeats between the agents).
    #[serde(default)]
    pub heartbeat: HeartbeatSpec,
    /// How a partition decides it may act: `majority` (default; more than half of
    /// the members, so it needs 3 or more: with 2, a survivor never has a majority),
    /// `witness` (two members: a third vote breaks the tie — the `failover witness`
    /// process of `spec.witness`, or in Kubernetes without it the API server Lease) or
    /// `none` (explicit opt-out: split brain becomes possible; status warns).
    #[serde(default)]
    pub quorum: QuorumMode,
    /// Where the `failover witness` process of a `quorum: witness` cluster listens.
    /// Required for standalone agents. In Kubernetes optional: without it the
    /// witness is the Lease `<cluster>-witness`; with it the agents ask this
    /// process instead (a third location, e.g. when the API server runs on one of
    /// the two members).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness: Option<WitnessSpec>,
    /// Where to notify a person about failovers besides Kubernetes Events and metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<NotificationsSpec>,
    /// Flap protection: a member that fails too often is quarantined (not eligible
    /// to own groups) for a while instead of taking groups back and forth.
    #[serde(default)]
    pub quarantine: QuarantineSpec,
    /// How often the new owner announces a virtual IP (gratuitous ARP for IPv4,
    /// unsolicited Neighbor Advertisement for IPv6) so switches and neighbours
    /// update their caches.
    #[serde(default)]
    pub announcements: AnnouncementSpec,
    /// Treat a cordoned node (`kubectl cordon`, `kubectl drain`) like a paused
    /// member: it keeps voting but hands its groups over gracefully.
    #[serde(default)]
    pub treat_cordoned_as_paused: bool,
}

/// One node of the cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(
    validation = Rule::new("!has(self.address) || isIP(self.address)").message("address must be an IPv4 or IPv6 address").field_path(".address"),
    validation = Rule::new("!has(self.additionalAddresses) || self.additionalAddresses.all(a, isIP(a))").message("additionalAddresses must be IPv4 or IPv6 addresses").field_path(".additionalAddresses")
)]
#[serde(rename_all = "camelCase")]
pub struct MemberSpec {
    /// Kubernetes node name (in standalone mode: the name the agent is started with).
    #[schemars(length(min = 1, max = 253))]
    pub node: String,
    /// Priority 0-255; higher wins when no preferred-owner list decides. Primary /
    /// Secondary / Backup are typically 200 / 100 / 50.
    #[serde(default = "default_priority")]
    #[schemars(range(min = 0, max = 255))]
    pub priority: u32,
    /// Maintenance mode: the member keeps voting but owns nothing; its groups are
    /// handed over gracefully.
    #[serde(default)]
    pub paused: bool,
    /// Address other members send heartbeats to (IPv4 or IPv6, no prefix length).
    /// Default: the node's InternalIP. Required when the agent runs standalone.
    /// This is heartbeat link 0; `additionalAddresses` adds more links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 45))]
    pub address: Option<String>,
    /// Further heartbeat addresses of this member, one per redundant link (at most
    /// 3), e.g. a dedicated cluster line besides the service network of `address`.
    /// `additionalAddresses[i]` is link i+1 and pairs with link i+1 of every other
    /// member, so every member lists the same number. Heartbeats go over every link;
    /// a member is alive while any link carries its heartbeats.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 3), inner(length(max = 45)))]
    pub additional_addresses: Vec<String>,
}

/// Most `additionalAddresses` of a member: with `address`, at most four links.
pub const MAX_ADDITIONAL_ADDRESSES: usize = 3;

/// The address of a standalone cluster's `failover witness`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("isIP(self.address)").message("address must be an IPv4 or IPv6 address").field_path(".address"))]
#[serde(rename_all = "camelCase")]
pub struct WitnessSpec {
    /// IPv4 or IPv6 address of the witness (no prefix length). Place it in a third
    /// location: not on a member's host, not behind only one member's switch.
    #[schemars(length(max = 45))]
    pub address: String,
    /// UDP port of the witness; default: `spec.heartbeat.port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
}

impl WitnessSpec {
    /// The parsed address.
    pub fn address(&self) -> Result<IpAddr, std::net::AddrParseError> {
        self.address.parse()
    }

    /// `address:port` as users write it (IPv6 in brackets), the port defaulting to
    /// `heartbeat_port`; the address as written when it does not parse.
    pub fn endpoint(&self, heartbeat_port: u16) -> String {
        let port = self.port.unwrap_or(heartbeat_port);
        match self.address() {
            Ok(ip) => std::net::SocketAddr::new(ip, port).to_string(),
            Err(_) => format!("{}:{port}", self.address),
        }
    }
}

impl FailoverClusterSpec {
    /// Whether the witness vote is the API server Lease `<cluster>-witness`:
    /// `quorum: witness` in Kubernetes without `spec.witness` (with it, the agents
    /// ask that `failover witness` process and the Lease is not used).
    pub fn uses_witness_lease(&self) -> bool {
        self.quorum == QuorumMode::Witness && self.witness.is_none()
    }
}

/// Default member priority.
pub const DEFAULT_PRIORITY: u32 = 100;
/// Highest member priority.
pub const MAX_PRIORITY: u32 = 255;

fn default_priority() -> u32 {
    DEFAULT_PRIORITY
}

impl MemberSpec {
    /// The member's heartbeat links in order, each as (field name, address text):
    /// link 0 is `address` (`None` until the operator resolves the node's
    /// InternalIP), then every `additionalAddresses` entry.
    pub fn links(&self) -> impl Iterator<Item = (String, Option<&str>)> {
        std::iter::once(("address".to_owned(), self.address.as_deref())).chain(
            self.additional_addresses
                .iter()
                .enumerate()
                .map(|(j, a)| (format!("additionalAddresses[{j}]"), Some(a.as_str()))),
        )
    }
}

/// Heartbeat timing between the agents.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(
    validation = Rule::new("duration(self.interval) >= duration('5ms')").message("interval must be at least 5ms").field_path(".interval"),
    validation = Rule::new("duration(self.deadAfter) > duration(self.interval)").message("deadAfter must be longer than interval").field_path(".deadAfter")
)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatSpec {
    /// How often every agent sends a heartbeat to every other member, e.g. `200ms`
    /// (default). As low as `5ms` on LANs that need the fastest failover.
    #[serde(default = "default_interval")]
    pub interval: KubeDuration,
    /// A member not heard from for this long is considered dead (default `1s`).
    /// Must be longer than `interval`; a few intervals absorb lost datagrams.
    #[serde(default = "default_dead_after")]
    pub dead_after: KubeDuration,
    /// UDP port the agents exchange heartbeats on (default 7707). Two clusters
    /// that share a node need different ports.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
}

/// Default heartbeat interval.
pub const DEFAULT_INTERVAL: KubeDuration = KubeDuration::from_millis(200);
/// Default heartbeat deadline.
pub const DEFAULT_DEAD_AFTER: KubeDuration = KubeDuration::from_millis(1_000);
/// Default heartbeat UDP port.
pub const DEFAULT_PORT: u16 = 7707;
/// Shortest heartbeat interval we accept.
pub const MIN_INTERVAL: Duration = Duration::from_millis(5);

fn default_interval() -> KubeDuration {
    DEFAULT_INTERVAL
}
fn default_dead_after() -> KubeDuration {
    DEFAULT_DEAD_AFTER
}
fn default_port() -> u16 {
    DEFAULT_PORT
}

impl Default for HeartbeatSpec {
    fn default() -> Self {
        Self {
            interval: default_interval(),
            dead_after: default_dead_after(),
            port: default_port(),
        }
    }
}

/// Quorum rule of a cluster.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "lowercase")]
pub enum QuorumMode {
    /// More than half of the members must be connected.
    #[default]
    Majority,
    /// Two-member clusters: the side holding the witness vote wins (the API
    /// server Lease in Kubernetes, `failover witness` standalone).
    Witness,
    /// No quorum: every partition acts on its own (split brain possible).
    None,
}

impl QuorumMode {
    /// The string used in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Majority => "majority",
            Self::Witness => "witness",
            Self::None => "none",
        }
    }
}

/// Notification targets.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NotificationsSpec {
    /// POST a JSON document to a webhook on every group transition that matters
    /// (failover, failback, move, failed, offline) and on quorum lost/regained; the
    /// URL is read from a Secret so it may carry a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookSpec>,
}

/// A webhook whose URL lives in a Secret.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSpec {
    /// The Secret (in the cluster's namespace) and key that hold the URL.
    pub secret_ref: SecretKeyRef,
    /// The body: `Generic` (this project's JSON document), `Alertmanager` (the
    /// `/api/v2/alerts` list) or `Slack` (an incoming webhook's `{"text": ...}`).
    #[serde(default)]
    pub format: WebhookFormat,
}

/// The shape of a webhook's body.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WebhookFormat {
    /// `{cluster, group, from, to, epoch, reason, message, time, ...}`.
    #[default]
    Generic,
    /// A list of one alert as Alertmanager's `POST /api/v2/alerts` takes it.
    Alertmanager,
    /// `{"text": ...}` as a Slack incoming webhook takes it.
    Slack,
}

/// A key in a Secret of the same namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret (default `url`).
    #[serde(default = "default_secret_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_secret_key() -> String {
    "url".to_owned()
}

/// Flap quarantine of members (after Windows Server Failover Clustering's node quarantine).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QuarantineSpec {
    /// Number of failures (member going offline) within `period` that quarantines
    /// it (default 3). 0 disables quarantine.
    #[serde(default = "default_quarantine_failures")]
    pub failures: u32,
    /// Window in which failures are counted (default `1h`).
    #[serde(default = "default_quarantine_period")]
    pub period: KubeDuration,
    /// How long a quarantined member stays ineligible to own groups (default `2h`).
    /// It keeps voting meanwhile.
    #[serde(default = "default_quarantine_duration")]
    pub duration: KubeDuration,
}

fn default_quarantine_failures() -> u32 {
    3
}
fn default_quarantine_period() -> KubeDuration {
    KubeDuration::from_secs(3_600)
}
fn default_quarantine_duration() -> KubeDuration {
    KubeDuration::from_secs(7_200)
}

impl Default for QuarantineSpec {
    fn default() -> Self {
        Self {
            failures: default_quarantine_failures(),
            period: default_quarantine_period(),
            duration: default_quarantine_duration(),
        }
    }
}

/// Repetition of gratuitous ARP / unsolicited Neighbor Advertisements for VIPs.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AnnouncementSpec {
    /// Announcements sent right after a VIP comes up (default 3, at least 1);
    /// repeats cover a switch that drops the first one.
    #[serde(default = "default_announce_count")]
    #[schemars(range(min = 1, max = 100))]
    pub count: u32,
    /// Pause between those announcements (default `100ms`).
    #[serde(default = "default_announce_spacing")]
    pub spacing: KubeDuration,
    /// While the owner holds a VIP, announce it again this often (default `1m`)
    /// so caches that expired or missed the takeover learn it; `0s` disables.
    #[serde(default = "default_announce_refresh")]
    pub refresh_interval: KubeDuration,
}

fn default_announce_count() -> u32 {
    3
}
fn default_announce_spacing() -> KubeDuration {
    KubeDuration::from_millis(100)
}
fn default_announce_refresh() -> KubeDuration {
    KubeDuration::from_secs(60)
}

impl Default for AnnouncementSpec {
    fn default() -> Self {
        Self {
            count: default_announce_count(),
            spacing: default_announce_spacing(),
            refresh_interval: default_announce_refresh(),
        }
    }
}

impl AnnouncementSpec {
    /// The refresh interval; `None` when refreshing is disabled (`0s`).
    pub fn refresh(&self) -> Option<Duration> {
        let refresh = self.refresh_interval.get();
        (!refresh.is_zero()).then_some(refresh)
    }
}

/// Observed state of a failover cluster, written by the operator.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct FailoverClusterStatus {
    /// Per-member state as the agents report it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["node".into()]))]
    pub members: Vec<MemberStatus>,
    /// Number of members in the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_count: Option<u32>,
    /// Number of members currently Online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_count: Option<u32>,
    /// Number of members that applied the current configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_count: Option<u32>,
    /// Hash of the configuration the operator rendered from the current spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// Whether the members can form a quorum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<QuorumStatus>,
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, ConfigValid, Degraded, QuorumLost, ConfigSynchronized.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// Observed state of one member.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    /// Node name of the member.
    pub node: String,
    /// Online, Offline, Paused or Unknown.
    pub state: MemberState,
    /// When the member's agent last reported in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat: Option<Time>,
    /// Hash of the configuration the member's agent runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_config_hash: Option<String>,
    /// Whether `appliedConfigHash` equals the cluster's current `configHash`.
    #[serde(default)]
    pub synchronized: bool,
    /// Set while the member is quarantined for flapping: until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantined_until: Option<Time>,
    /// The member's agent reports that a majority of the members runs another
    /// configuration than it does: it keeps the groups it runs and takes no other
    /// (docs/operations.md, "One configuration on every member"). Only a live
    /// member's report counts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub config_outvoted: bool,
    /// Heartbeat links of this member that carry none of its heartbeats, one entry
    /// per live member that reports so in its node Lease (`linksDown` of its view),
    /// in the order of `spec.members`: each names the member that sees it and the links it
    /// misses (0 = `address`, i = `additionalAddresses[i-1]`). Only while this member
    /// is live itself (the links of a dead member are not reported one by one) and
    /// only the reports of live members count. Empty while every live member hears
    /// it over every link.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links_down: Vec<LinksDown>,
}

/// The heartbeat links of a member that one other member does not hear it over.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LinksDown {
    /// The member that hears nothing over these links (its agent reports it).
    pub seen_by: String,
    /// The link indexes, ascending: 0 = `address`, i = `additionalAddresses[i-1]`.
    pub links: Vec<u32>,
}

/// State of a member.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemberState {
    /// Heartbeats arrive; the member can own groups.
    Online,
    /// No heartbeat within `deadAfter`, or confirmed dead by a majority.
    Offline,
    /// In maintenance: votes, owns nothing.
    Paused,
    /// Not reported yet.
    Unknown,
}

/// Quorum as the operator sees it.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QuorumStatus {
    /// Quorate, Lost or Disabled.
    pub state: QuorumState,
    /// Number of voting members.
    pub voters: u32,
    /// Number of voting members connected to the largest partition.
    pub connected: u32,
}

/// Whether the cluster has quorum.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuorumState {
    /// A majority (or the witness holder) is connected.
    Quorate,
    /// No partition has quorum: owners have fenced themselves.
    Lost,
    /// `spec.quorum` is `none`.
    Disabled,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omitted_blocks_get_the_same_defaults_as_their_fields() {
        // `#[serde(default)]` on a block uses `Default`, an empty block uses the
        // per-field functions: both must agree, or the schema would show two defaults.
        let empty = serde_json::json!({});
        assert_eq!(
            serde_json::from_value::<HeartbeatSpec>(empty.clone()).unwrap(),
            HeartbeatSpec::default()
        );
        assert_eq!(
            serde_json::from_value::<QuarantineSpec>(empty.clone()).unwrap(),
            QuarantineSpec::default()
        );
        assert_eq!(
            serde_json::from_value::<AnnouncementSpec>(empty).unwrap(),
            AnnouncementSpec::default()
        );
    }

    #[test]
    fn durations_are_parsed_and_defaulted_when_deserialized() {
        let hb = HeartbeatSpec::default();
        assert_eq!(hb.interval.get(), Duration::from_millis(200));
        assert_eq!(hb.dead_after.get(), Duration::from_secs(1));
        let mut ann = AnnouncementSpec::default();
        assert_eq!(ann.refresh(), Some(Duration::from_secs(60)));
        ann.refresh_interval = KubeDuration::ZERO;
        assert_eq!(ann.refresh(), None);
        let q = QuarantineSpec::default();
        assert_eq!(q.period.get(), Duration::from_secs(3600));
        assert_eq!(q.duration.get(), Duration::from_secs(7200));
        // A malformed duration is an error of the whole object, naming the value.
        let error = serde_json::from_value::<AnnouncementSpec>(serde_json::json!({
            "spacing": "fast",
        }))
        .unwrap_err()
        .to_string();
        assert!(error.contains("invalid duration \"fast\""), "{error}");
    }

    #[test]
    fn links_are_address_then_additional_addresses() {
        let mut member: MemberSpec =
            serde_json::from_value(serde_json::json!({"node": "a"})).unwrap();
        assert_eq!(member.priority, DEFAULT_PRIORITY);
        let links: Vec<_> = member.links().collect();
        assert_eq!(links, [("address".to_owned(), None)]);
        member.address = Some("10.0.0.1".into());
        member.additional_addresses = vec!["192.168.7.1".into(), "fd77::1".into()];
        let links: Vec<_> = member.links().collect();
        assert_eq!(
            links,
            [
                ("address".to_owned(), Some("10.0.0.1")),
                ("additionalAddresses[0]".to_owned(), Some("192.168.7.1")),
                ("additionalAddresses[1]".to_owned(), Some("fd77::1")),
            ]
        );
    }

    #[test]
    fn quorum_mode_strings_match_serde() {
        for mode in [QuorumMode::Majority, QuorumMode::Witness, QuorumMode::None] {
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.as_str());
        }
    }
}
